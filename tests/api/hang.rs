//! A hung upstream (the proxy's `Hang` mode: bytes acknowledged, never answered, the hung
//! connections never closed) against the real binary: calls answer 503 quickly, the service
//! answers 200 again soon after the restore without a restart, repeated hangs leave threads and
//! descriptors where they were, and SIGTERM during a hang still exits cleanly in time.

use std::time::{Duration, Instant};

use crate::proxy::{Mode, Proxy};
use crate::support::*;

/// The real binary, its database reached through the proxy.
struct Served {
    child: tokio::process::Child,
    http: String,
}

impl Served {
    async fn start(proxy: &Proxy, db: &TestDb) -> Served {
        let ports = free_ports(2);
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_partners"))
            .args([
                "serve",
                "--no-migrate",
                "--grpc-addr",
                &format!("127.0.0.1:{}", ports[0]),
                "--http-addr",
                &format!("127.0.0.1:{}", ports[1]),
            ])
            .env(
                "DATABASE_URL",
                // libpq's shortest connect timeout: a connect the hang caught ends sooner.
                format!(
                    "postgres://postgres@{}/{}?connect_timeout=2",
                    proxy.addr, db.name
                ),
            )
            .env("PARTNERS_SHUTDOWN_DELAY_MS", "0")
            .env("PARTNERS_METRICS_ADDR", "off")
            .env("RUST_LOG", "error")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn partners serve");
        let served = Served {
            child,
            http: format!("http://127.0.0.1:{}", ports[1]),
        };
        let started = Instant::now();
        while reqwest::get(format!("{}/readyz", served.http))
            .await
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(started.elapsed() < Duration::from_secs(20), "never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        served
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Threads and open descriptors of the process.
    fn threads_and_fds(&self) -> (usize, usize) {
        let count = |what: &str| {
            std::fs::read_dir(format!("/proc/{}/{what}", self.pid()))
                .expect("read /proc")
                .count()
        };
        (count("task"), count("fd"))
    }
}

/// The status of a GetPartner through REST (0 when there was no answer within 15 s).
async fn get(http: &reqwest::Client, base: &str, key: &str, id: i64) -> u16 {
    http.get(format!("{base}/api/v1/partners/{id}"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Sends `calls` GetPartners at once and returns their statuses.
async fn burst(http: &reqwest::Client, base: &str, key: &str, id: i64, calls: usize) -> Vec<u16> {
    let calls: Vec<_> = (0..calls)
        .map(|_| {
            let (http, base, key) = (http.clone(), base.to_owned(), key.to_owned());
            tokio::spawn(async move { get(&http, &base, &key, id).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for call in calls {
        statuses.push(call.await.expect("join"));
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_database_is_abandoned_recovered_from_and_leaves_nothing_behind() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Hung", &["pos"]).await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let mut served = Served::start(&proxy, &t.db).await;
    // No kept-alive connections: the descriptors counted are the server's own.
    let (http, base, key) = (
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client"),
        served.http.clone(),
        t.world.user_key_a.clone(),
    );
    // Warm up as a cycle loads it: the pool and the blocking threads there before counting.
    for _ in 0..3 {
        assert!(
            burst(&http, &base, &key, p.id, 9)
                .await
                .iter()
                .all(|s| *s == 200)
        );
    }
    let baseline = served.threads_and_fds();

    let cycles = 20;
    let (mut slowest_503, mut slowest_200) = (Duration::ZERO, Duration::ZERO);
    for cycle in 0..cycles {
        proxy.set(Mode::Hang);
        let hung_at = Instant::now();
        // Calls in flight when the upstream hangs, and one watched for its answer.
        let in_flight = tokio::spawn({
            let (http, base, key) = (http.clone(), base.clone(), key.clone());
            async move { burst(&http, &base, &key, p.id, 8).await }
        });
        let status = get(&http, &base, &key, p.id).await;
        let answered = hung_at.elapsed();
        assert_eq!(status, 503, "cycle {cycle}: a call during the hang");
        assert!(
            answered < Duration::from_secs(2),
            "cycle {cycle}: 503 after {answered:?}"
        );
        slowest_503 = slowest_503.max(answered);
        for status in in_flight.await.expect("join") {
            assert!(matches!(status, 200 | 503), "cycle {cycle}: {status}");
        }

        proxy.set(Mode::Pass);
        let restored_at = Instant::now();
        loop {
            // Every call of a burst must succeed: no connection hung before is handed out.
            let statuses = burst(&http, &base, &key, p.id, 8).await;
            if statuses.iter().all(|s| *s == 200) {
                break;
            }
            assert!(
                restored_at.elapsed() < Duration::from_secs(10),
                "cycle {cycle}: still {statuses:?} {:?} after the restore",
                restored_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        slowest_200 = slowest_200.max(restored_at.elapsed());
        eprintln!(
            "hang: cycle {cycle}: 503 after {answered:?}, all 200 after {:?}",
            restored_at.elapsed()
        );
    }

    // Idle blocking threads end after tokio's keep-alive (10 s): wait for it.
    let settled = Instant::now();
    let mut now = served.threads_and_fds();
    while now.0 > baseline.0 + 2 || now.1 > baseline.1 + 2 {
        assert!(
            settled.elapsed() < Duration::from_secs(20),
            "after {cycles} hangs: threads and fds {now:?}, baseline {baseline:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        now = served.threads_and_fds();
    }
    eprintln!(
        "hang: {cycles} cycles, slowest 503 {slowest_503:?} after the hang, slowest all-200 burst \
         {slowest_200:?} after the restore; threads/fds baseline {baseline:?}, after {now:?}"
    );

    // SIGTERM while the upstream hangs, with calls waiting on it: a clean exit within the drain
    // deadline (10 s).
    proxy.set(Mode::Hang);
    let in_flight = tokio::spawn({
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        async move { burst(&http, &base, &key, p.id, 8).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &served.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let signalled = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(10), served.child.wait())
        .await
        .expect("exited within the drain deadline")
        .expect("wait");
    assert!(status.success(), "exit status {status:?}");
    eprintln!(
        "hang: SIGTERM during a hang exited {status} after {:?}",
        signalled.elapsed()
    );
    let _ = in_flight.await;
    proxy.set(Mode::Pass);
}
