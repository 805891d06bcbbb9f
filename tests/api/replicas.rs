//! Three real `partners serve` processes on one fresh database behind a real HAProxy, configured
//! from `scripts/replicas-haproxy.cfg.in` (the file `scripts/replicas.sh` uses): started at the
//! same moment (migrations applied once), rolling restarts under a mixed REST and gRPC load with
//! no failed request, one event for a click key sent to two replicas at once, and counters equal
//! to events afterwards. Needs Debian's `haproxy` (`.ci/run` installs it); never skipped.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use partners::grpc::pb;
use partners::grpc::pb::partner_admin_service_client::PartnerAdminServiceClient;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;
use tokio::process::{Child, Command};

use crate::support::*;

/// The replicas' not-ready delay: several of HAProxy's check intervals.
const SHUTDOWN_DELAY_MS: u64 = 1000;
/// HAProxy's check interval (`fall 1`, `rise 2` in the configuration).
const CHECK_INTER_MS: u64 = 200;
/// Rolling restarts of all three replicas.
const ROUNDS: usize = 2;
const HAPROXY_CONFIG: &str = include_str!("../../scripts/replicas-haproxy.cfg.in");

/// Fails loudly when HAProxy is missing: this test is part of CI and is never skipped.
fn require_haproxy() {
    let found = std::process::Command::new("haproxy")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "the `haproxy` binary is missing: install it with `apt-get install haproxy` (.ci/run does)"
    );
}

/// One `partners serve` process; killed if still running when dropped.
struct Replica {
    name: &'static str,
    http: u16,
    grpc: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn start(&mut self, database_url: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("replica log");
        let child = Command::new(env!("CARGO_BIN_EXE_partners"))
            .args([
                "serve",
                "--grpc-addr",
                &format!("127.0.0.1:{}", self.grpc),
                "--http-addr",
                &format!("127.0.0.1:{}", self.http),
            ])
            .env("DATABASE_URL", database_url)
            .env("PARTNERS_SHUTDOWN_DELAY_MS", SHUTDOWN_DELAY_MS.to_string())
            .env("PARTNERS_METRICS_ADDR", "off")
            .env("RUST_LOG", "warn,partners::db=info,partners::app=info")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn partners serve");
        self.child = Some(child);
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let url = format!("http://127.0.0.1:{}/readyz", self.http);
        let started = Instant::now();
        loop {
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{} did not become ready: {}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal_term(&self) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("running replica");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running replica");
        tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .expect("exit within the delay and the drain deadline")
            .expect("wait")
    }
}

/// The HAProxy process and its admin socket; killed when dropped.
struct Haproxy {
    _child: Child,
    socket: PathBuf,
}

impl Haproxy {
    fn start(dir: &Path, rest: u16, grpc: u16, replicas: &[Replica]) -> Haproxy {
        let mut config = HAPROXY_CONFIG
            .replace("@DIR@", &dir.display().to_string())
            .replace("@CHECK_INTER_MS@", &CHECK_INTER_MS.to_string())
            .replace("@REST_PORT@", &rest.to_string())
            .replace("@GRPC_PORT@", &grpc.to_string());
        for (i, r) in replicas.iter().enumerate() {
            config = config
                .replace(&format!("@R{}_HTTP@", i + 1), &r.http.to_string())
                .replace(&format!("@R{}_GRPC@", i + 1), &r.grpc.to_string());
        }
        assert!(!config.contains('@'), "every placeholder filled: {config}");
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy log");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn haproxy");
        Haproxy {
            _child: child,
            socket: dir.join("haproxy.sock"),
        }
    }

    /// `show stat` from the admin socket: one map per proxy row (`pxname`, `svname`, `status`,
    /// counters), empty while the socket is not there yet.
    fn stat(&self) -> Vec<HashMap<String, String>> {
        let Ok(mut socket) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return Vec::new();
        };
        let mut text = String::new();
        if socket.write_all(b"show stat\n").is_err() || socket.read_to_string(&mut text).is_err() {
            return Vec::new();
        }
        let mut lines = text.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return Vec::new();
        };
        let names: Vec<&str> = header.split(',').collect();
        lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                names
                    .iter()
                    .zip(l.split(','))
                    .map(|(k, v)| ((*k).to_owned(), v.to_owned()))
                    .collect()
            })
            .collect()
    }

    /// Whether `server` is in service (`UP`) in both backends, and whether it is out (`DOWN`)
    /// of both.
    fn in_and_out(&self, server: &str) -> (bool, bool) {
        let rows = self.stat();
        let status = |backend: &str| {
            rows.iter()
                .find(|r| r["pxname"] == backend && r["svname"] == server)
                .map(|r| r["status"].clone())
                .unwrap_or_default()
        };
        let (rest, grpc) = (status("replicas_rest"), status("replicas_grpc"));
        (
            rest == "UP" && grpc == "UP",
            rest == "DOWN" && grpc == "DOWN",
        )
    }

    async fn wait_until(&self, server: &str, up: bool, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let (is_up, is_down) = self.in_and_out(server);
            if (up && is_up) || (!up && is_down) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "HAProxy did not see {server} {} within {limit:?}: {:?}",
                if up { "UP" } else { "DOWN" },
                self.stat()
                    .iter()
                    .map(|r| format!("{}/{} {}", r["pxname"], r["svname"], r["status"]))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What the load saw: requests sent and failed, with the first failures described.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    failed: AtomicU64,
    clicks_acknowledged: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    fn fail(&self, what: String) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = self.failures.lock().expect("failures");
        if failures.len() < 20 {
            failures.push(what);
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

fn click_body(partner: i64, kind: &str) -> serde_json::Value {
    serde_json::json!({"data": {"type": "partner_click_events", "attributes": {"event_type": kind},
        "relationships": {"partner": {"data": {"id": partner.to_string(), "type": "partner"}}}}})
}

/// A REST caller through HAProxy: point reads, lists, clicks (each with its own
/// `Idempotency-Key`) on the hot partners, connects and disconnects, in turn.
async fn rest_worker(
    worker: usize,
    base: String,
    keys: Vec<String>,
    partners: Vec<i64>,
    hot: Vec<i64>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = &keys[n % keys.len()];
        let hot_partner = hot[n % hot.len()];
        let (label, request) = match n % 6 {
            0 | 3 => (
                "get",
                http.get(format!(
                    "{base}/api/v1/partners/{}",
                    partners[n % partners.len()]
                )),
            ),
            1 => (
                "list",
                http.get(format!(
                    "{base}/api/v1/partners?per_page=5&page={}",
                    n % 3 + 1
                )),
            ),
            2 | 5 => (
                "click",
                http.post(format!("{base}/api/v1/partners/{hot_partner}/click_event"))
                    .header("Idempotency-Key", format!("rest-{worker}-{n}"))
                    .json(&click_body(
                        hot_partner,
                        if n % 4 == 1 { "video" } else { "website" },
                    )),
            ),
            _ => {
                let url = format!("{base}/api/v1/partners/{hot_partner}/connect");
                if n % 12 < 6 {
                    ("connect", http.patch(url))
                } else {
                    ("disconnect", http.delete(url))
                }
            }
        };
        match request.bearer_auth(key).send().await {
            Ok(r) if r.status().is_success() => {
                if label == "click" {
                    tally.clicks_acknowledged.fetch_add(1, Ordering::Relaxed);
                }
                // Read the whole body: a response cut short is a failure too.
                match r.bytes().await {
                    Ok(_) => tally.ok(),
                    Err(e) => tally.fail(format!("REST {label}: body cut: {e}")),
                }
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                tally.fail(format!("REST {label}: {status} {body}"));
            }
            Err(e) => tally.fail(format!("REST {label}: {e:?}")),
        }
    }
}

/// A gRPC caller through HAProxy's h2c frontend, on one HTTP/2 connection.
async fn grpc_worker(
    worker: usize,
    addr: String,
    key: String,
    partners: Vec<i64>,
    hot: Vec<i64>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let channel = tonic::transport::Channel::from_shared(addr)
        .expect("uri")
        .connect()
        .await
        .expect("connect to HAProxy");
    let mut client = PartnerServiceClient::new(channel);
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let hot_partner = hot[n % hot.len()];
        let (label, result) = match n % 4 {
            0 => (
                "GetPartner",
                client
                    .get_partner(with_key(
                        pb::GetPartnerRequest {
                            id: partners[n % partners.len()],
                            ..Default::default()
                        },
                        &key,
                    ))
                    .await
                    .map(|_| ()),
            ),
            1 => (
                "ListWholesalers",
                client
                    .list_wholesalers(with_key(
                        pb::ListWholesalersRequest {
                            per_page: Some(5),
                            ..Default::default()
                        },
                        &key,
                    ))
                    .await
                    .map(|_| ()),
            ),
            2 => {
                let result = client
                    .create_partner_click_event(with_key(
                        pb::CreatePartnerClickEventRequest {
                            id: hot_partner,
                            event_type: pb::EventType::Website as i32,
                            request_id: format!("grpc-{worker}-{n}"),
                            ..Default::default()
                        },
                        &key,
                    ))
                    .await
                    .map(|_| ());
                if result.is_ok() {
                    tally.clicks_acknowledged.fetch_add(1, Ordering::Relaxed);
                }
                ("CreatePartnerClickEvent", result)
            }
            _ => (
                "ConnectUser",
                client
                    .connect_user(with_key(pb::ConnectUserRequest { id: hot_partner }, &key))
                    .await
                    .map(|_| ()),
            ),
        };
        match result {
            Ok(()) => tally.ok(),
            Err(status) => tally.fail(format!(
                "gRPC {label}: {:?} {}",
                status.code(),
                status.message()
            )),
        }
    }
}

/// How many lines of `text` contain `needle`.
fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restarts_behind_haproxy_fail_no_request() {
    require_haproxy();
    let test_started = Instant::now();
    // A database nobody created yet: the three replicas create and migrate it together.
    let db = TestDb::uncreated();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&db.name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ports = free_ports(8);
    let mut replicas: Vec<Replica> = ["r1", "r2", "r3"]
        .into_iter()
        .enumerate()
        .map(|(i, name)| Replica {
            name,
            http: ports[2 * i],
            grpc: ports[2 * i + 1],
            log: dir.join(format!("{name}.log")),
            child: None,
        })
        .collect();
    let (rest_port, grpc_port) = (ports[6], ports[7]);
    let http = reqwest::Client::new();

    // Started at the same moment: the migrations run once, under the advisory lock.
    for r in &mut replicas {
        r.start(&db.url);
    }
    for r in &replicas {
        r.wait_ready(&http).await;
    }
    let logs: Vec<String> = replicas
        .iter()
        .map(|r| std::fs::read_to_string(&r.log).expect("log"))
        .collect();
    let applying: Vec<usize> = logs
        .iter()
        .map(|l| lines_with(l, "applied migrations"))
        .collect();
    assert_eq!(
        applying.iter().sum::<usize>(),
        1,
        "one replica applied the migrations: {applying:?}"
    );
    let creating: usize = logs.iter().map(|l| lines_with(l, "created database")).sum();
    assert_eq!(creating, 1, "one replica created the database");
    let mut conn = db.conn();
    let stored = {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
            .get_result::<N>(&mut conn)
            .expect("migrations table")
            .n
    };
    let applied_line = logs
        .iter()
        .flat_map(|l| l.lines())
        .find(|l| l.contains("applied migrations"));
    assert!(
        applied_line.is_some_and(|l| l.contains(&format!("migrations={stored}"))),
        "all {stored} migrations applied by that one replica: {applied_line:?}"
    );

    let haproxy = Haproxy::start(&dir, rest_port, grpc_port, &replicas);
    for r in &replicas {
        haproxy
            .wait_until(r.name, true, Duration::from_secs(10))
            .await;
    }
    let base = format!("http://127.0.0.1:{rest_port}");
    let grpc_addr = format!("http://127.0.0.1:{grpc_port}");

    // The directory: 12 partners (3 of them hot, 4 wholesalers), created through HAProxy.
    let world = make_world(&mut conn);
    let channel = channel_to(format!("127.0.0.1:{grpc_port}").parse().expect("addr")).await;
    let mut admin = PartnerAdminServiceClient::new(channel);
    let mut partners = Vec::new();
    for i in 0..12 {
        let categories = if i % 3 == 0 {
            vec!["wholesaler".to_owned()]
        } else {
            vec!["pos".to_owned()]
        };
        let partner = admin
            .create_partner(with_key(
                pb::CreatePartnerRequest {
                    request_id: String::new(),
                    partner: Some(pb::Partner {
                        name: format!("Replicated {i:02}"),
                        categories,
                        active: true,
                        status: pb::PartnerStatus::Available as i32,
                        ..Default::default()
                    }),
                },
                &world.service_key,
            ))
            .await
            .expect("create partner")
            .into_inner();
        partners.push(partner.id);
    }
    let hot: Vec<i64> = partners[..3].to_vec();

    // The mixed load: 8 REST callers and 3 gRPC callers, each one request at a time.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut workers = Vec::new();
    let user_keys = vec![
        world.user_key_a.clone(),
        world.user_key_a2.clone(),
        world.user_key_b.clone(),
    ];
    for w in 0..8 {
        workers.push(tokio::spawn(rest_worker(
            w,
            base.clone(),
            user_keys.clone(),
            partners.clone(),
            hot.clone(),
            stop.clone(),
            tally.clone(),
        )));
    }
    for (w, key) in user_keys.iter().enumerate() {
        workers.push(tokio::spawn(grpc_worker(
            w,
            grpc_addr.clone(),
            key.clone(),
            partners.clone(),
            hot.clone(),
            stop.clone(),
            tally.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Rolling restarts: SIGTERM, HAProxy takes the replica out while it still serves, it exits
    // 0, starts again, and is back in before the next one goes.
    let mut rounds = Vec::new();
    for round in 1..=ROUNDS {
        let (sent_before, failed_before) = tally.counts();
        let mut out_after = Vec::new();
        for r in &mut replicas {
            r.signal_term();
            let out = haproxy
                .wait_until(r.name, false, Duration::from_secs(5))
                .await;
            assert!(
                !r.exited(),
                "{} was out of HAProxy before it stopped serving (after {out:?})",
                r.name
            );
            out_after.push(out);
            let status = r.wait_exit().await;
            assert!(status.success(), "{} exit status {status:?}", r.name);
            r.start(&db.url);
            r.wait_ready(&http).await;
            haproxy
                .wait_until(r.name, true, Duration::from_secs(10))
                .await;
        }
        let (sent, failed) = tally.counts();
        rounds.push((round, sent - sent_before, failed - failed_before, out_after));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("load worker");
    }
    let (sent, failed) = tally.counts();
    for (round, sent, failed, out) in &rounds {
        eprintln!(
            "replicas: round {round}: {sent} requests, {failed} failed; HAProxy took each replica out {out:?} after its SIGTERM"
        );
    }
    let backends: Vec<String> = haproxy
        .stat()
        .iter()
        .filter(|r| r["svname"] == "BACKEND")
        .map(|r| {
            format!(
                "{}: retries {} redispatches {} connection errors {} response errors {} 5xx {}",
                r["pxname"], r["wretr"], r["wredis"], r["econ"], r["eresp"], r["hrsp_5xx"]
            )
        })
        .collect();
    eprintln!("replicas: HAProxy {backends:?}");
    let failures = tally.failures.lock().expect("failures").clone();
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed during the rolling restarts: {failures:#?}"
    );
    assert!(sent > 500, "the load ran: {sent} requests");

    // The same click key sent to two replicas at once: one event, both callers get it.
    let mut same_key = 0;
    for k in 0..10 {
        let partner = hot[k % hot.len()];
        let send = |r: &Replica| {
            http.post(format!(
                "http://127.0.0.1:{}/api/v1/partners/{partner}/click_event",
                r.http
            ))
            .bearer_auth(&world.user_key_a)
            .header("Idempotency-Key", format!("both-{k}"))
            .json(&click_body(partner, "website"))
            .send()
        };
        let (a, b) = tokio::join!(send(&replicas[0]), send(&replicas[1]));
        let id = |r: reqwest::Result<reqwest::Response>| async move {
            let r = r.expect("answer");
            assert!(r.status().is_success(), "{}", r.status());
            let doc: serde_json::Value = r.json().await.expect("JSON");
            doc["data"]["id"].as_str().expect("event id").to_owned()
        };
        let (a, b) = (id(a).await, id(b).await);
        assert_eq!(a, b, "both callers of key both-{k} get the one event");
        same_key += 1;
    }
    let count = |sql: &str| {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(sql)
            .get_result::<N>(&mut db.conn())
            .expect("count")
            .n
    };
    assert_eq!(
        count("SELECT count(*) AS n FROM partner_click_events WHERE idempotency_key LIKE 'both-%'"),
        same_key
    );

    // Every partner's counters equal its events and links; every acknowledged click is stored.
    let mismatched = count(
        "SELECT count(*) AS n FROM partners p WHERE \
           p.website_clicks <> (SELECT count(*) FROM partner_click_events e \
                                WHERE e.partner_id = p.id AND e.event_type = 'website') \
        OR p.video_clicks <> (SELECT count(*) FROM partner_click_events e \
                              WHERE e.partner_id = p.id AND e.event_type = 'video') \
        OR p.users_count <> (SELECT count(*) FROM partner_users u WHERE u.partner_id = p.id)",
    );
    assert_eq!(
        mismatched, 0,
        "partners whose counters differ from their rows"
    );
    let acknowledged = tally.clicks_acknowledged.load(Ordering::Relaxed) as i64;
    assert_eq!(
        count("SELECT count(*) AS n FROM partner_click_events"),
        acknowledged + same_key,
        "every acknowledged click stored once"
    );
    // No batch conflict happened inside either (the lock order), not even a retried one.
    let conflicts: usize = replicas
        .iter()
        .map(|r| {
            lines_with(
                &std::fs::read_to_string(&r.log).unwrap_or_default(),
                "conflicted",
            )
        })
        .sum();
    eprintln!(
        "replicas: {sent} requests ({acknowledged} clicks), {failed} failed, {conflicts} batch conflicts retried; wall time {:?}",
        test_started.elapsed()
    );
    assert_eq!(
        conflicts,
        0,
        "click batches conflicted (see {})",
        dir.display()
    );
    drop(haproxy);
    drop(replicas);
    let _ = std::fs::remove_dir_all(&dir);
}
