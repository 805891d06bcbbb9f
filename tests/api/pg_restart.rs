//! A real Postgres restart and a real crash under click writers: the service runs on a private
//! cluster (`pg_cluster`), 16 clients (half gRPC, half REST) send click events, each with its own
//! request id / `Idempotency-Key` and retried with the same id until a definite answer, while the
//! cluster is stopped and started again (`pg_ctl -m fast`) and then killed (SIGKILL to the
//! postmaster) and started again (crash recovery). Afterwards every acknowledged event is stored
//! exactly once and every partner's counters equal its events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use partners::config::{DbConfig, ServerLimits};
use partners::grpc::pb;
use serde_json::json;
use tonic::Code;

use crate::pg_cluster::PgCluster;
use crate::support::*;

/// Writers at once; the first half call gRPC, the others REST.
const WRITERS: usize = 16;
/// Pause between two attempts of the same event.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// An event not acknowledged this long after its first attempt counts as unknown (and fails the
/// test: the service must recover by itself).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// What one writer saw.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    acknowledged: usize,
    /// Definite refusals (answers that are not worth a retry): none expected.
    failed: Vec<String>,
    /// Events still without a definite answer after `GIVE_UP_AFTER`.
    unknown: usize,
    retries: usize,
    /// Longest time from an event's first attempt to its acknowledgement.
    longest_wait: Duration,
    /// (idempotency key, event id) of every acknowledged event.
    acked: Vec<(String, i64)>,
}

/// One attempt's outcome.
enum Attempt {
    Acknowledged(i64),
    Retry,
    Failed(String),
}

async fn grpc_attempt(
    client: &mut pb::partner_service_client::PartnerServiceClient<tonic::transport::Channel>,
    key: &str,
    partner: i64,
    request_id: &str,
) -> Attempt {
    let request = pb::CreatePartnerClickEventRequest {
        id: partner,
        event_type: pb::EventType::Website as i32,
        request_id: request_id.to_owned(),
        ..Default::default()
    };
    match client
        .create_partner_click_event(with_key(request, key))
        .await
    {
        Ok(event) => Attempt::Acknowledged(event.into_inner().id),
        Err(s)
            if matches!(
                s.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted
            ) =>
        {
            Attempt::Retry
        }
        Err(s) => Attempt::Failed(format!("gRPC {:?}: {}", s.code(), s.message())),
    }
}

async fn rest_attempt(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    partner: i64,
    request_id: &str,
) -> Attempt {
    let body = json!({"data": {"type": "partner_click_events",
        "attributes": {"event_type": "website"},
        "relationships": {"partner": {"data": {"id": partner.to_string(), "type": "partner"}}}}});
    let sent = http
        .post(format!("{base}/api/v1/partners/{partner}/click_event"))
        .bearer_auth(key)
        .header("Idempotency-Key", request_id)
        .json(&body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        // No answer heard (connection reset, timeout): the outcome is unknown, retry.
        Err(_) => return Attempt::Retry,
    };
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    match status {
        201 => {
            let document: serde_json::Value = match serde_json::from_str(&text) {
                Ok(document) => document,
                Err(e) => {
                    return Attempt::Failed(format!("REST 201 with a bad body ({e}): {text}"));
                }
            };
            match document["data"]["id"]
                .as_str()
                .and_then(|id| id.parse().ok())
            {
                Some(id) => Attempt::Acknowledged(id),
                None => Attempt::Failed(format!("REST 201 without an id: {text}")),
            }
        }
        429 | 503 | 504 => Attempt::Retry,
        _ => Attempt::Failed(format!("REST {status}: {text}")),
    }
}

/// Sends events until `stop`, each retried with the same id until a definite answer.
async fn writer(t: &TestApp, w: usize, partners: Vec<i64>, stop: Arc<AtomicBool>) -> Tally {
    let mut client = t.client();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("http client");
    let base = t.http();
    let key = t.world.user_key_a.clone();
    let mut tally = Tally::default();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let request_id = format!("restart-w{w}-{i}");
        let partner = partners[(w + i) % partners.len()];
        tally.sent += 1;
        let first = Instant::now();
        loop {
            let attempt = if w < WRITERS / 2 {
                grpc_attempt(&mut client, &key, partner, &request_id).await
            } else {
                rest_attempt(&http, &base, &key, partner, &request_id).await
            };
            match attempt {
                Attempt::Acknowledged(id) => {
                    tally.acknowledged += 1;
                    tally.longest_wait = tally.longest_wait.max(first.elapsed());
                    tally.acked.push((request_id, id));
                    break;
                }
                Attempt::Failed(what) => {
                    tally.failed.push(format!("{request_id}: {what}"));
                    break;
                }
                Attempt::Retry if first.elapsed() > GIVE_UP_AFTER => {
                    tally.unknown += 1;
                    break;
                }
                Attempt::Retry => {
                    tally.retries += 1;
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_click_is_lost_across_a_postgres_restart_and_a_crash() {
    let started = Instant::now();
    let cluster = PgCluster::start();
    let db = TestDb::migrated_on(&cluster.server_url());
    let db_config = DbConfig::for_url(&db.url);
    let t = Arc::new(TestApp::start_on(db, ServerLimits::default(), &db_config).await);
    let mut partners = Vec::new();
    for i in 0..5 {
        partners.push(t.simple_partner(&format!("Restart {i}"), &["pos"]).await.id);
    }
    let ready = started.elapsed();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (t, partners, stop) = (t.clone(), partners.clone(), stop.clone());
            tokio::spawn(async move { writer(&t, w, partners, stop).await })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (stop_took, start_took) = tokio::task::block_in_place(|| {
        let stopped = cluster.stop_fast();
        (stopped, cluster.start_server())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let crash_down = tokio::task::block_in_place(|| {
        let killed = Instant::now();
        cluster.kill_postmaster();
        cluster.start_server();
        killed.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total = Tally::default();
    for writer in writers {
        let tally = writer.await.expect("writer");
        total.sent += tally.sent;
        total.acknowledged += tally.acknowledged;
        total.failed.extend(tally.failed);
        total.unknown += tally.unknown;
        total.retries += tally.retries;
        total.longest_wait = total.longest_wait.max(tally.longest_wait);
        total.acked.extend(tally.acked);
    }

    let stored = t.count("SELECT count(*) AS n FROM partner_click_events") as usize;
    let distinct =
        t.count("SELECT count(DISTINCT idempotency_key) AS n FROM partner_click_events") as usize;
    let found = {
        use diesel::RunQueryDsl;
        use diesel::sql_types::{BigInt, Text};
        #[derive(diesel::QueryableByName)]
        struct Event {
            #[diesel(sql_type = Text)]
            key: String,
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        diesel::sql_query(
            "SELECT idempotency_key AS key, id FROM partner_click_events \
             WHERE idempotency_key IS NOT NULL",
        )
        .load::<Event>(&mut t.db.conn())
        .expect("stored events")
        .into_iter()
        .map(|e| (e.key, e.id))
        .collect::<std::collections::HashMap<_, _>>()
    };
    let lost = total
        .acked
        .iter()
        .filter(|(key, id)| found.get(key) != Some(id))
        .count();
    let duplicated = stored - distinct;
    let mismatched = t.count(
        "SELECT count(*) AS n FROM partners p WHERE p.website_clicks + p.video_clicks <> \
         (SELECT count(*) FROM partner_click_events e WHERE e.partner_id = p.id)",
    );
    eprintln!(
        "pg-restart: cluster and service ready in {ready:.1?}; restart: fast stop {stop_took:.2?} + \
         start {start_took:.2?}; crash: SIGKILL to accepting again (recovery) {crash_down:.2?}; \
         writers {WRITERS} (gRPC {}, REST {}): sent {} acknowledged {} failed {} unknown {} \
         retries {} longest wait for an acknowledgement {:.2?}; stored {stored} lost {lost} \
         duplicated {duplicated} counter mismatches {mismatched}; total {:.1?}",
        WRITERS / 2,
        WRITERS - WRITERS / 2,
        total.sent,
        total.acknowledged,
        total.failed.len(),
        total.unknown,
        total.retries,
        total.longest_wait,
        started.elapsed()
    );
    assert!(
        total.failed.is_empty(),
        "definite failures: {:?}",
        total.failed
    );
    assert_eq!(total.unknown, 0, "events never acknowledged");
    assert!(total.retries > 0, "the restart and the crash were felt");
    assert_eq!(total.acknowledged, total.sent);
    assert_eq!(lost, 0, "acknowledged events missing");
    assert_eq!(duplicated, 0, "events stored twice");
    assert_eq!(stored, total.acknowledged);
    assert_eq!(
        mismatched, 0,
        "partners whose counters differ from their events"
    );

    Arc::into_inner(t).expect("writers done").stop().await;
    drop(cluster);
}
