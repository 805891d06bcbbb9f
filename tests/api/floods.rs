//! Hostile floods of keys: made-up keys cost no database round trip once the stored prefixes are
//! known (shown with the key table locked: a lookup would wait), a new key still works within a
//! moment, and failed authentications are limited per client address, which no client can
//! disguise through the REST gateway.

use std::time::{Duration, Instant};

use partners::config::ServerLimits;
use partners::grpc::pb;
use tonic::Code;

use crate::support::*;

/// A well-formed key no one has (a new prefix each time).
fn made_up_key() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("pk_{}_{}", &hex[..12], &hex[12..])
}

async fn get(t: &TestApp, key: &str, id: i64) -> Result<pb::Partner, tonic::Status> {
    t.client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id,
                ..Default::default()
            },
            key,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_keys_are_refused_without_a_database_lookup() {
    let limits = ServerLimits {
        auth_failures_per_second: 0,
        ..ServerLimits::default()
    };
    let t = TestApp::start_with(limits).await;
    let p = t.simple_partner("Flooded", &["pos"]).await;
    get(&t, &t.world.user_key_a, p.id).await.expect("valid key");
    // The first made-up key loads the stored prefixes.
    let first = get(&t, &made_up_key(), p.id).await.expect_err("made up");
    assert_eq!(first.code(), Code::Unauthenticated);

    // A lookup would now wait for the lock (up to the statement timeout).
    let lock = TableLock::take(&t.db.url, "api_keys");
    let started = Instant::now();
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let client = t.client();
            let key = made_up_key();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut client = client;
                let outcome = client
                    .get_partner(with_key(
                        pb::GetPartnerRequest {
                            id: p.id,
                            ..Default::default()
                        },
                        &key,
                    ))
                    .await;
                (outcome.map(|_| ()), started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let quick = calls.iter().filter(|c| c.is_finished()).count();
    // The real key is still known (cached) while the table is locked.
    get(&t, &t.world.user_key_a, p.id)
        .await
        .expect("a known key during the flood");
    lock.release();
    for call in calls {
        let (outcome, _) = call.await.expect("join");
        let status = outcome.expect_err("made up keys are refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    eprintln!(
        "floods: 200 made-up keys with the key table locked: {quick} answered without waiting \
         for it, the rest once it was released ({:?})",
        started.elapsed()
    );
    // Only the lookup budget's calls (a burst as large as the rate) waited for the lock.
    let budget = 2 * partners::auth::LOOKUPS_PER_SECOND as usize;
    assert!(
        quick >= 200 - budget,
        "only {quick} of 200 answered without waiting"
    );

    // A key created now works within a couple of reload periods.
    let mut conn = t.db.conn();
    let new_key = partners::auth::create_key(&mut conn, None, "new").expect("create key");
    let created = Instant::now();
    while get(&t, &new_key, p.id).await.is_err() {
        assert!(
            created.elapsed() < Duration::from_secs(3),
            "a new key still refused after {:?}",
            created.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("floods: a new key worked after {:?}", created.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_are_limited_per_address() {
    let limits = ServerLimits {
        auth_failures_per_second: 1,
        auth_failure_burst: 5,
        ..ServerLimits::default()
    };
    let t = TestApp::start_with(limits).await;
    let p = t.simple_partner("Guarded", &["pos"]).await;
    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(
            get(&t, &made_up_key(), p.id)
                .await
                .expect_err("made up")
                .code(),
        );
    }
    assert_eq!(codes[..5], [Code::Unauthenticated; 5], "{codes:?}");
    assert_eq!(codes[5..], [Code::ResourceExhausted; 3], "{codes:?}");
    // A valid key from the same address is not refused.
    get(&t, &t.world.user_key_a, p.id)
        .await
        .expect("a valid key from a limited address");

    // Through the gateway the client is the connection's peer: claiming another address in
    // `x-forwarded-for` does not buy a fresh budget.
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let response = http
            .get(format!("{}/api/v1/partners/{}", t.http(), p.id))
            .bearer_auth(made_up_key())
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .send()
            .await
            .expect("http");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [429, 429, 429]);
    let ok = http
        .get(format!("{}/api/v1/partners/{}", t.http(), p.id))
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("http");
    assert_eq!(ok.status().as_u16(), 200);
}
