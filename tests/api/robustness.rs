//! Overload, deadlines, statement timeouts and graceful shutdown. Slowness is made real by holding
//! an exclusive lock on `partners` from another connection, so queries block inside Postgres.

use std::time::{Duration, Instant};

use partners::config::{DbConfig, ServerLimits};
use partners::grpc::pb;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::support::*;

/// Resident memory of this process (server and clients), in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn get(id: i64) -> pb::GetPartnerRequest {
    pb::GetPartnerRequest {
        id,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_waits_a_bounded_time_then_resource_exhausted() {
    let t = TestApp::start_with_db(ServerLimits::default(), |db| DbConfig {
        db_pool_size: 2,
        db_checkout_timeout_ms: 150,
        ..DbConfig::for_url(&db.url)
    })
    .await;
    let p = t.simple_partner("Busy", &["pos"]).await;
    let lock = TableLock::take(&t.db.url, "partners");
    let rss_before = rss_mib();
    let started = Instant::now();
    let mut calls = Vec::new();
    for i in 0..60 {
        let mut client = t.client();
        let key = if i % 2 == 0 {
            t.world.user_key_a.clone()
        } else {
            t.world.service_key.clone()
        };
        calls.push(tokio::spawn(async move {
            let begun = Instant::now();
            let result = client.get_partner(with_key(get(p.id), &key)).await;
            (result.map(|_| ()).map_err(|s| s.code()), begun.elapsed())
        }));
    }
    let http = reqwest::Client::new();
    let mut rest = Vec::new();
    for _ in 0..20 {
        let request = http
            .get(format!("{}/api/v1/partners/{}", t.http(), p.id))
            .bearer_auth(&t.world.user_key_a)
            .send();
        rest.push(tokio::spawn(async move {
            request.await.map(|r| r.status().as_u16())
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    lock.release();
    let (mut ok, mut exhausted, mut slowest_refusal) = (0, 0, Duration::ZERO);
    for call in calls {
        let (result, took) = call.await.expect("join");
        match result {
            Ok(()) => ok += 1,
            Err(Code::ResourceExhausted) => {
                exhausted += 1;
                slowest_refusal = slowest_refusal.max(took);
            }
            Err(code) => panic!("unexpected {code:?}"),
        }
    }
    let mut statuses = std::collections::BTreeMap::new();
    for r in rest {
        *statuses
            .entry(r.await.expect("join").expect("http"))
            .or_insert(0) += 1;
    }
    let rss_growth = rss_mib() - rss_before;
    eprintln!(
        "overload: grpc ok {ok} resource_exhausted {exhausted} (slowest refusal {slowest_refusal:?}); rest statuses {statuses:?}; elapsed {:?}; RSS growth {rss_growth:.1} MiB",
        started.elapsed()
    );
    assert!(
        rss_growth < 64.0,
        "memory stays bounded under overload: grew {rss_growth:.1} MiB"
    );
    // The calls that got one of the two connections finished once the lock was gone.
    assert!(exhausted > 0 && ok + statuses.get(&200).copied().unwrap_or(0) > 0);
    assert!(
        slowest_refusal < Duration::from_millis(900),
        "refusals are quick"
    );
    assert!(
        statuses.keys().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains_key(&429));
    // Serves normally right after.
    for _ in 0..10 {
        t.client()
            .get_partner(with_key(get(p.id), &t.world.user_key_a))
            .await
            .expect("after overload");
    }
}

/// Lists run in a lane of `db_list_concurrency` slots: a list waits there (then
/// RESOURCE_EXHAUSTED after the checkout timeout) while point reads keep their own connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_queue_in_their_lane_while_point_reads_go_on() {
    let t = TestApp::start_with_db(ServerLimits::default(), |db| DbConfig {
        db_pool_size: 4,
        db_list_concurrency: 1,
        db_checkout_timeout_ms: 400,
        ..DbConfig::for_url(&db.url)
    })
    .await;
    let p = t.simple_partner("Lane", &["pos"]).await;
    let key = t.world.user_key_a.clone();
    // Warm the key cache: with `businesses` locked below, only the include query blocks.
    t.client()
        .get_partner(with_key(get(p.id), &key))
        .await
        .expect("warm");
    let list = || pb::ListPartnersRequest {
        include: vec!["partner_integrations".into()],
        ..Default::default()
    };
    let lock = TableLock::take(&t.db.url, "businesses");

    let mut first_client = t.client();
    let first_request = with_key(list(), &key);
    let first = tokio::spawn(async move { first_client.list_partners(first_request).await });
    tokio::time::sleep(Duration::from_millis(150)).await;

    let waited = Instant::now();
    let second = t
        .client()
        .list_partners(with_key(list(), &key))
        .await
        .expect_err("the lane is taken");
    let waited = waited.elapsed();
    assert_code(&second, Code::ResourceExhausted, "RESOURCE_EXHAUSTED");
    assert!(
        waited >= Duration::from_millis(350) && waited < Duration::from_millis(1500),
        "the second list waited for the lane about the checkout timeout: {waited:?}"
    );

    let point = Instant::now();
    let got = t
        .client()
        .get_partner(with_key(get(p.id), &key))
        .await
        .expect("point reads do not wait for the lane");
    assert_eq!(got.into_inner().id, p.id);
    assert!(point.elapsed() < Duration::from_millis(350));

    lock.release();
    let page = first
        .await
        .expect("join")
        .expect("the first list finishes once unblocked")
        .into_inner();
    assert_eq!(
        page.partners.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![p.id]
    );
    t.client()
        .list_partners(with_key(list(), &key))
        .await
        .expect("the lane is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_ends_at_the_deadline() {
    // The server's own deadline (a client deadline is enforced by the client library too).
    let t = TestApp::start_with(ServerLimits {
        request_timeout_ms: 300,
        ..ServerLimits::default()
    })
    .await;
    let p = t.simple_partner("Slow", &["pos"]).await;
    let lock = TableLock::take(&t.db.url, "partners");
    let request = with_key(get(p.id), &t.world.user_key_a);
    let started = Instant::now();
    let status = t.client().get_partner(request).await.expect_err("deadline");
    let took = started.elapsed();
    lock.release();
    assert_code(&status, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    assert!(took < Duration::from_millis(900), "ended after {took:?}");
    t.client()
        .get_partner(with_key(get(p.id), &t.world.user_key_a))
        .await
        .expect("serves after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_ends_a_slow_query_and_the_connection_stays_usable() {
    let t = TestApp::start_with_db(ServerLimits::default(), |db| DbConfig {
        db_pool_size: 1,
        db_statement_timeout_ms: 300,
        ..DbConfig::for_url(&db.url)
    })
    .await;
    let p = t.simple_partner("Slow", &["pos"]).await;
    let pids = |t: &TestApp| {
        t.count(&format!(
            "SELECT coalesce(max(pid), 0)::bigint AS n FROM pg_stat_activity WHERE application_name = 'partners' AND datname = '{}'",
            t.db.name
        ))
    };
    let before = pids(&t);
    assert!(before > 0);
    let lock = TableLock::take(&t.db.url, "partners");
    let started = Instant::now();
    let status = t
        .client()
        .get_partner(with_key(get(p.id), &t.world.user_key_a))
        .await
        .expect_err("timeout");
    let took = started.elapsed();
    lock.release();
    assert_code(&status, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    t.client()
        .get_partner(with_key(get(p.id), &t.world.user_key_a))
        .await
        .expect("same pool works");
    assert_eq!(
        pids(&t),
        before,
        "the one pooled connection was reused, not replaced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_calls_and_refuses_new_ones() {
    let mut t = TestApp::start().await;
    let p = t.simple_partner("Draining", &["pos"]).await;
    let lock = TableLock::take(&t.db.url, "partners");
    let mut in_flight = Vec::new();
    for _ in 0..30 {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        in_flight.push(tokio::spawn(async move {
            client.get_partner(with_key(get(p.id), &key)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let app = t.app.take().expect("running");
    let grpc_addr = app.grpc_addr;
    let mut watch = HealthClient::new(t.channel.clone())
        .watch(HealthCheckRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let first = watch
        .message()
        .await
        .expect("stream")
        .expect("first status");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let shutdown = tokio::spawn(app.shutdown());
    let next = tokio::time::timeout(Duration::from_secs(1), watch.message())
        .await
        .expect("health changes first")
        .expect("stream")
        .expect("status");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    drop(watch);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::net::TcpStream::connect(grpc_addr).await.is_err(),
        "new connections refused"
    );
    lock.release();
    let mut failed = 0;
    for call in in_flight {
        if call.await.expect("join").is_err() {
            failed += 1;
        }
    }
    let started = Instant::now();
    shutdown
        .await
        .expect("join")
        .expect("clean shutdown within the drain deadline");
    eprintln!(
        "shutdown: 30 in flight, {failed} failed, drained {:?} after the last call",
        started.elapsed()
    );
    assert_eq!(failed, 0);
}

/// The shutdown delay: not ready at once (gRPC health NOT_SERVING, `/readyz` 503) while calls on
/// existing and new connections are still answered, HTTP/1.1 answers closing their connection;
/// the listeners close only after the delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delay_reports_not_ready_and_serves_on() {
    let delay = Duration::from_millis(1000);
    let mut t = TestApp::start_with(ServerLimits {
        shutdown_delay_ms: delay.as_millis() as u64,
        ..ServerLimits::default()
    })
    .await;
    let p = t.simple_partner("Stopping", &["pos"]).await;
    let http = reqwest::Client::new();
    let partner_url = format!("{}/api/v1/partners/{}", t.http(), p.id);
    let before = http
        .get(&partner_url)
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("before");
    assert_eq!(before.status(), 200);
    assert!(before.headers().get("connection").is_none());
    let (base, grpc_addr) = (t.http(), t.grpc_addr());
    let app = t.app.take().expect("running");
    let started = Instant::now();
    let shutdown = tokio::spawn(app.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;

    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 503, "not ready during the delay");
    let health = HealthClient::new(channel_to(grpc_addr).await)
        .check(HealthCheckRequest::default())
        .await
        .expect("health check on a new connection")
        .into_inner();
    assert_eq!(health.status, ServingStatus::NotServing as i32);
    let during = http
        .get(&partner_url)
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("REST during the delay");
    assert_eq!(during.status(), 200);
    assert_eq!(during.headers()["connection"], "close");
    t.client()
        .get_partner(with_key(get(p.id), &t.world.user_key_a))
        .await
        .expect("gRPC on the existing connection during the delay");
    assert!(started.elapsed() < delay, "checked within the delay");

    shutdown
        .await
        .expect("join")
        .expect("clean shutdown after the delay");
    let took = started.elapsed();
    assert!(
        took >= delay,
        "the listeners closed after the delay: {took:?}"
    );
    assert!(
        tokio::net::TcpStream::connect(grpc_addr).await.is_err(),
        "closed after the delay"
    );
}

/// SIGTERM to the real binary: not ready during the shutdown delay (its default), a second
/// SIGTERM cuts the delay short, exit 0 within the drain deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_binary_cleanly() {
    let db = TestDb::new();
    let ports = free_ports(2);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_partners"))
        .args([
            "serve",
            "--grpc-addr",
            &format!("127.0.0.1:{}", ports[0]),
            "--http-addr",
            &format!("127.0.0.1:{}", ports[1]),
        ])
        .env("DATABASE_URL", &db.url)
        .env("PARTNERS_METRICS_ADDR", "off")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("spawn");
    let url = format!("http://127.0.0.1:{}/readyz", ports[1]);
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.id().expect("pid").to_string();
    let term = || {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
    };
    term();
    // The default delay (5 s): not ready, still alive and serving.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ready = reqwest::get(&url).await.expect("readyz during the delay");
    assert_eq!(ready.status(), 503);
    let alive = reqwest::get(format!("http://127.0.0.1:{}/healthz", ports[1]))
        .await
        .expect("healthz during the delay");
    assert_eq!(alive.status(), 200);
    // A second signal ends the delay.
    let second = Instant::now();
    term();
    let status = tokio::time::timeout(Duration::from_secs(12), child.wait())
        .await
        .expect("exited within the drain deadline")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        second.elapsed() < Duration::from_secs(3),
        "the second signal skipped the delay: exit {:?} after it",
        second.elapsed()
    );
}
