//! Logs of the real binary (JSON format, debug level): one line per RPC with method, code and
//! duration, and never an API key or its secret.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use partners::grpc::pb;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;
use tokio::io::AsyncReadExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_each_rpc_and_never_contain_keys() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Logged", &["pos"]).await;
    let served = spawn_serve(
        &t.db.url,
        &[("PARTNERS_LOG_FORMAT", "json"), ("RUST_LOG", "debug")],
        true,
    )
    .await;
    let mut child = served.child;
    let ports = [served.grpc_port, served.http_port];
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{}", ports[1]);
    let mut client = PartnerServiceClient::connect(format!("http://127.0.0.1:{}", ports[0]))
        .await
        .expect("connect");
    let (prefix, secret) = partners::auth::parse_key(&t.world.user_key_a).expect("key");
    let wrong = format!("pk_{prefix}_{}", "f".repeat(48));
    for key in [
        t.world.user_key_a.as_str(),
        t.world.service_key.as_str(),
        wrong.as_str(),
    ] {
        let _ = client
            .get_partner(with_key(
                pb::GetPartnerRequest {
                    id: p.id,
                    ..Default::default()
                },
                key,
            ))
            .await;
        let _ = http
            .get(format!("{base}/api/v1/partners/{}", p.id))
            .bearer_auth(key)
            .send()
            .await;
        let _ = http
            .post(format!("{base}/api/v1/partners/{}/click_event", p.id))
            .bearer_auth(key)
            .header("idempotency-key", "log-test")
            .json(&serde_json::json!({"data": {"type": "partner_click_events", "attributes": {"event_type": "website"}}}))
            .send()
            .await;
    }
    // An internal error: the include's table is gone. The client learns nothing of the cause; the
    // log has it once, on the call's line.
    t.db.conn()
        .batch_execute("ALTER TABLE partner_integrations RENAME TO partner_integrations_gone")
        .expect("rename");
    let failed = client
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: p.id,
                include: vec!["partner_integrations".into()],
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("the include's table is gone");
    assert_eq!(failed.code(), tonic::Code::Internal);
    assert_eq!(failed.message(), "internal error");
    let pid = child.id().expect("pid").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut logs = String::new();
    tokio::time::timeout(Duration::from_secs(15), stderr.read_to_string(&mut logs))
        .await
        .expect("logs end at exit")
        .expect("read logs");
    child.wait().await.expect("exit");

    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.len() > 5, "{logs}");
    for secret_text in [
        t.world.user_key_a.as_str(),
        t.world.service_key.as_str(),
        secret,
        &wrong,
    ] {
        assert!(!logs.contains(secret_text), "a key leaked into the logs");
    }
    let rpc_line = lines
        .iter()
        .find(|l| l["message"] == "GetPartner done")
        .unwrap_or_else(|| panic!("no GetPartner line: {logs}"));
    let span = &rpc_line["span"];
    assert_eq!(span["rpc.method"], "GetPartner");
    assert_eq!(span["rpc.code"], "Ok");
    assert!(
        span["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{rpc_line}"
    );
    let refused = lines
        .iter()
        .find(|l| l["span"]["rpc.code"] == "Unauthenticated")
        .unwrap_or_else(|| panic!("no refused call logged: {logs}"));
    assert_eq!(refused["level"], "INFO");
    let with_cause: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| {
            l.to_string()
                .contains("partner_integrations\\\" does not exist")
        })
        .collect();
    assert_eq!(with_cause.len(), 1, "the cause is logged once: {logs}");
    assert_eq!(with_cause[0]["level"], "ERROR");
    assert_eq!(with_cause[0]["message"], "GetPartner failed");
    assert_eq!(with_cause[0]["span"]["rpc.code"], "Internal");
}
