//! The `partners` binary: migrate, seed-demo (idempotent, prints usable keys), keys create/revoke.

use std::process::Command;

use partners::grpc::pb;
use tonic::Code;

use crate::support::*;

fn partners_cli(db_url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_partners"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run partners");
    assert!(
        out.status.success(),
        "partners {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn value<'a>(output: &'a str, key: &str) -> &'a str {
    output
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {output}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_and_keys_commands_work_end_to_end() {
    let t = TestApp::start().await;
    let first = partners_cli(&t.db.url, &["seed-demo"]);
    let second = partners_cli(&t.db.url, &["seed-demo"]);
    assert_eq!(
        t.count("SELECT count(*) AS n FROM partners WHERE external_id LIKE 'demo-%'"),
        12,
        "idempotent"
    );
    assert_ne!(
        value(&first, "user_key"),
        value(&second, "user_key"),
        "fresh keys each run"
    );
    let user_key = value(&second, "user_key");
    let business = value(&second, "business_uuid");

    // The demo data gives every list something to show.
    let page = t
        .client()
        .list_partners(with_key(pb::ListPartnersRequest::default(), user_key))
        .await
        .expect("demo user key works")
        .into_inner();
    assert_eq!(page.meta.expect("meta").total.expect("total"), 12);
    assert!(page.partners[0].preferred == Some(true));
    let available = t
        .client()
        .list_available_partners(with_key(
            pb::ListAvailablePartnersRequest {
                business_uuid: business.into(),
                ..Default::default()
            },
            value(&second, "service_key"),
        ))
        .await
        .expect("service key works")
        .into_inner();
    assert!(
        available
            .partners
            .iter()
            .any(|p| p.status == pb::PartnerStatus::ComingSoon as i32)
    );
    let wholesalers = t
        .client()
        .list_wholesalers(with_key(pb::ListWholesalersRequest::default(), user_key))
        .await
        .expect("wholesalers")
        .into_inner();
    assert_eq!(wholesalers.meta.expect("meta").total.expect("total"), 4);

    let key = partners_cli(&t.db.url, &["keys", "create", "--service", "billing"]);
    let key = key.trim();
    t.client()
        .list_wholesalers(with_key(pb::ListWholesalersRequest::default(), key))
        .await
        .expect("new service key works");
    let user_key2 = partners_cli(
        &t.db.url,
        &["keys", "create", "--user", &t.world.user_b.to_string()],
    );
    let (prefix, _) = partners::auth::parse_key(user_key2.trim()).expect("key format");
    partners_cli(&t.db.url, &["keys", "revoke", prefix]);
    let status = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest::default(),
            user_key2.trim(),
        ))
        .await
        .expect_err("revoked before first use");
    assert_code(&status, Code::Unauthenticated, "UNAUTHENTICATED");
}
