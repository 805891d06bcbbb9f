//! Database outages through the proxy: answers stay quick (gRPC UNAVAILABLE, REST 503), health
//! and readiness follow the database, and everything recovers without a restart.

use std::time::{Duration, Instant};

use partners::config::{DbConfig, ServerLimits};
use partners::grpc::pb;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::proxy::{Mode, Proxy};
use crate::support::*;

async fn via_proxy() -> (TestApp, Proxy) {
    let proxy = Proxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let addr = proxy.addr;
    let t = TestApp::start_with_db(ServerLimits::default(), |db| {
        DbConfig::for_url(format!("postgres://postgres@{addr}/{}", db.name))
    })
    .await;
    (t, proxy)
}

async fn serving(t: &TestApp) -> bool {
    HealthClient::new(t.channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status == ServingStatus::Serving as i32)
        .unwrap_or(false)
}

async fn ready(t: &TestApp) -> u16 {
    reqwest::get(format!("{}/readyz", t.http()))
        .await
        .expect("readyz")
        .status()
        .as_u16()
}

/// Polls `check` until it holds, returning how long it took (panics after `limit`).
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

async fn outage_and_recovery(mode: Mode) {
    let (t, proxy) = via_proxy().await;
    let p = t.simple_partner("Survivor", &["pos"]).await;
    let get = || {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        async move {
            client
                .get_partner(with_key(
                    pb::GetPartnerRequest {
                        id: p.id,
                        ..Default::default()
                    },
                    &key,
                ))
                .await
        }
    };
    get().await.expect("healthy");

    proxy.set(mode);
    let started = Instant::now();
    let status = get().await.expect_err("database cut");
    let grpc_answer = started.elapsed();
    assert_code(&status, Code::Unavailable, "UNAVAILABLE");
    assert!(
        grpc_answer < Duration::from_secs(4),
        "gRPC answered after {grpc_answer:?}"
    );
    let started = Instant::now();
    let rest = reqwest::Client::new()
        .get(format!("{}/api/v1/partners/{}", t.http(), p.id))
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("http");
    let rest_answer = started.elapsed();
    assert_eq!(rest.status().as_u16(), 503);
    assert!(
        rest_answer < Duration::from_secs(4),
        "REST answered after {rest_answer:?}"
    );
    let not_serving = within(Duration::from_secs(5), "NOT_SERVING", || async {
        !serving(&t).await
    })
    .await;
    assert_eq!(ready(&t).await, 503);

    proxy.set(Mode::Pass);
    let recovered = within(Duration::from_secs(5), "recovery", || async {
        get().await.is_ok()
    })
    .await;
    within(Duration::from_secs(5), "SERVING", || async {
        serving(&t).await
    })
    .await;
    assert_eq!(ready(&t).await, 200);
    // Every pooled connection works again (dead ones were dropped, not handed out).
    for _ in 0..40 {
        get().await.expect("after recovery");
    }
    eprintln!(
        "outage {mode:?}: gRPC answer {grpc_answer:?}, REST answer {rest_answer:?}, NOT_SERVING after {not_serving:?}, recovered after {recovered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_database_gives_quick_unavailable_and_recovers() {
    outage_and_recovery(Mode::Refuse).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholed_database_gives_quick_unavailable_and_recovers() {
    outage_and_recovery(Mode::Blackhole).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_database_gives_quick_unavailable_and_recovers() {
    outage_and_recovery(Mode::Hang).await;
}

/// Outcome counts of the write-loss test.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    acknowledged: usize,
    failed: usize,
    unknown: usize,
    retries: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_click_is_lost_when_the_database_is_cut() {
    let (t, proxy) = via_proxy().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(t.simple_partner(&format!("P{i}"), &["pos"]).await.id);
    }
    let stop_at = Instant::now() + Duration::from_millis(4500);
    let mut workers = Vec::new();
    for w in 0..16 {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        let ids = ids.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut acked = Vec::new();
            let mut i = 0;
            while Instant::now() < stop_at {
                i += 1;
                let request_id = format!("w{w}-{i}");
                let partner = ids[(w + i) % ids.len()];
                tally.sent += 1;
                let mut outcome = None;
                // A client that retries with the same key until it gets a definite answer.
                for attempt in 0..30 {
                    if attempt > 0 {
                        tally.retries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let request = pb::CreatePartnerClickEventRequest {
                        id: partner,
                        event_type: pb::EventType::Website as i32,
                        request_id: request_id.clone(),
                        ..Default::default()
                    };
                    match client
                        .create_partner_click_event(with_key(request, &key))
                        .await
                    {
                        Ok(event) => {
                            outcome = Some(Ok(event.into_inner().id));
                            break;
                        }
                        Err(s)
                            if matches!(
                                s.code(),
                                Code::Unavailable
                                    | Code::DeadlineExceeded
                                    | Code::ResourceExhausted
                            ) =>
                        {
                            outcome = Some(Err(true));
                        }
                        Err(s) => panic!("unexpected answer: {s:?}"),
                    }
                }
                match outcome {
                    Some(Ok(id)) => {
                        tally.acknowledged += 1;
                        acked.push((request_id, id));
                    }
                    Some(Err(_)) | None => tally.unknown += 1,
                }
            }
            (tally, acked)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.set(Mode::Refuse);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    proxy.set(Mode::Pass);
    tokio::time::sleep(Duration::from_millis(800)).await;
    proxy.set(Mode::Blackhole);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    proxy.set(Mode::Pass);

    let mut total = Tally::default();
    let mut acked = Vec::new();
    for worker in workers {
        let (tally, mut list) = worker.await.expect("worker");
        total.sent += tally.sent;
        total.acknowledged += tally.acknowledged;
        total.failed += tally.failed;
        total.unknown += tally.unknown;
        total.retries += tally.retries;
        acked.append(&mut list);
    }
    let stored = t.count("SELECT count(*) AS n FROM partner_click_events");
    let distinct = t.count("SELECT count(DISTINCT idempotency_key) AS n FROM partner_click_events");
    let mut lost = 0;
    for (key, id) in &acked {
        let found = t.count(&format!(
            "SELECT count(*) AS n FROM partner_click_events WHERE idempotency_key = '{key}' AND id = {id}"
        ));
        if found != 1 {
            lost += 1;
        }
    }
    let duplicated = stored - distinct;
    let mismatched = t.count(
        "SELECT count(*) AS n FROM partners p WHERE p.website_clicks <> \
         (SELECT count(*) FROM partner_click_events e WHERE e.partner_id = p.id)",
    );
    eprintln!(
        "write-loss: sent {} acknowledged {} failed {} unknown {} retries {} stored {} lost {lost} duplicated {duplicated} counter mismatches {mismatched}",
        total.sent, total.acknowledged, total.failed, total.unknown, total.retries, stored
    );
    assert!(total.retries > 0, "the cut was felt");
    assert!(total.acknowledged > 0);
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0);
    assert_eq!(mismatched, 0);
    assert!(stored as usize >= total.acknowledged && stored as usize <= total.sent);
}
