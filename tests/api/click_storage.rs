//! Click event storage: the migration to monthly partitions moves every event once, retention
//! drops old months and leaves counters and rollups, rollups equal the events and can be rebuilt,
//! and idempotency holds across two server processes.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use diesel_migrations::MigrationHarness;
use partners::config::DbConfig;
use partners::db;
use partners::grpc::pb;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;

use crate::click_batch::{assert_click_totals_match, batch, entry};
use crate::support::*;

/// The rows of `sql` (one bigint column `n`), in order.
fn numbers(conn: &mut PgConnection, sql: &str) -> Vec<i64> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .load::<N>(conn)
        .expect("query")
        .into_iter()
        .map(|r| r.n)
        .collect()
}

#[test]
fn the_partition_migration_moves_every_event_once() {
    let name = format!("partners_mig_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", server_url());
    db::create_database_if_missing(&DbConfig::for_url(&url)).expect("create database");
    let mut conn = PgConnection::establish(&url).expect("connect");
    for _ in 0..16 {
        conn.run_next_migration(db::MIGRATIONS)
            .expect("migrations up to 16");
    }
    // Events over five months (some keyed), as the unpartitioned table held them.
    conn.batch_execute(
        "INSERT INTO partners (name, website_clicks, video_clicks) VALUES ('Old', 0, 0), ('Older', 0, 0);
         INSERT INTO partner_click_events
             (partner_id, business_id, event_type, principal, idempotency_key, fingerprint, created_at)
         SELECT 1 + i % 2, CASE WHEN i % 3 = 0 THEN NULL ELSE 7 END,
                CASE WHEN i % 4 = 0 THEN 'video' ELSE 'website' END, 'user:x',
                CASE WHEN i % 5 = 0 THEN 'key-' || i END, 'f' || i,
                now() - make_interval(days => i % 150, hours => i % 24)
         FROM generate_series(1, 2000) AS i;
         UPDATE partners p SET
             website_clicks = (SELECT count(*) FROM partner_click_events e WHERE e.partner_id = p.id AND event_type = 'website'),
             video_clicks = (SELECT count(*) FROM partner_click_events e WHERE e.partner_id = p.id AND event_type = 'video');",
    )
    .expect("old events");
    let before = numbers(
        &mut conn,
        "SELECT id AS n FROM partner_click_events ORDER BY id",
    );
    let digest = "SELECT hashtext(string_agg(concat_ws('|', id, partner_id, user_id, business_id, event_type, \
                  principal, idempotency_key, fingerprint, created_at), ',' ORDER BY id))::bigint AS n \
                  FROM partner_click_events";
    let content = numbers(&mut conn, digest);
    conn.run_pending_migrations(db::MIGRATIONS)
        .expect("migrate the rest");

    assert_eq!(
        numbers(
            &mut conn,
            "SELECT id AS n FROM partner_click_events ORDER BY id"
        ),
        before
    );
    assert_eq!(numbers(&mut conn, digest), content, "every column kept");
    assert_eq!(
        numbers(
            &mut conn,
            "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'partner_click_events'::regclass"
        )[0],
        // 150 days back reach five or six months; plus three ahead.
        numbers(
            &mut conn,
            "SELECT (extract(year FROM age(date_trunc('month', now()), date_trunc('month', min(created_at)))) * 12 \
             + extract(month FROM age(date_trunc('month', now()), date_trunc('month', min(created_at)))))::bigint + 4 AS n \
             FROM partner_click_events"
        )[0]
    );
    // Nothing was left in the parent or a wrong month.
    assert_eq!(
        numbers(
            &mut conn,
            "SELECT count(*) AS n FROM ONLY partner_click_events"
        ),
        [0]
    );
    assert_eq!(
        numbers(
            &mut conn,
            "SELECT count(*) AS n FROM partner_click_requests"
        ),
        [400]
    );
    // Rollups were built from the moved events.
    assert_eq!(
        numbers(
            &mut conn,
            "SELECT sum(clicks)::bigint AS n FROM partner_click_rollups"
        ),
        [2000]
    );
    // New ids continue after the moved ones.
    let next = numbers(
        &mut conn,
        "INSERT INTO partner_click_events (partner_id, event_type, principal, fingerprint) \
         VALUES (1, 'video', 'user:x', 'f') RETURNING id AS n",
    );
    assert!(next[0] > *before.last().expect("ids"));
    drop(conn);
    let mut admin = PgConnection::establish(&format!("{}/postgres", server_url())).expect("admin");
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .expect("drop");
}

#[tokio::test]
async fn retention_drops_old_months_and_keeps_counters_and_rollups() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Kept", &["pos"]).await;
    batch(
        &t,
        &t.world.user_key_a,
        vec![
            entry(p.id, pb::EventType::Website, "now-1"),
            entry(p.id, pb::EventType::Video, ""),
        ],
    )
    .await;
    // A click of six months ago, as the service would have written it then.
    t.db.conn()
        .batch_execute(&format!(
            "SELECT partner_click_events_create_partition((now() - interval '6 months')::date);
             INSERT INTO partner_click_events (partner_id, event_type, principal, idempotency_key, fingerprint, created_at)
             VALUES ({id}, 'website', 'user:x', 'old-1', 'f', now() - interval '6 months');
             INSERT INTO partner_click_requests (principal, idempotency_key, event_id, fingerprint, created_at)
             SELECT 'user:x', 'old-1', max(id), 'f', now() - interval '6 months' FROM partner_click_events;
             INSERT INTO partner_click_rollups (partner_id, business_id, event_type, hour, clicks)
             VALUES ({id}, 0, 'website', date_trunc('hour', now() - interval '6 months', 'UTC'), 1);
             UPDATE partners SET website_clicks = website_clicks + 1 WHERE id = {id};",
            id = p.id
        ))
        .expect("old click");
    let partitions =
        "SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'partner_click_events'::regclass";
    let before = t.count(partitions);
    // A second process with a retention of two months: its upkeep drops the old month at start.
    let served = spawn_serve(
        &t.db.url,
        &[("PARTNERS_CLICK_RETENTION_MONTHS", "2")],
        false,
    )
    .await;
    // The upkeep drops the partition, then prunes the dropped month's keys in statements of
    // their own: wait for both before the process is stopped.
    let keys = "SELECT count(*) AS n FROM partner_click_requests";
    let started = std::time::Instant::now();
    while t.count(partitions) != before - 1 || t.count(keys) != 1 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "old partition or its keys not dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(served);
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_click_events"), 2);
    assert_eq!(
        t.count(&format!(
            "SELECT (website_clicks + video_clicks)::bigint AS n FROM partners WHERE id = {}",
            p.id
        )),
        3,
        "counters keep the dropped month"
    );
    assert_eq!(
        t.count("SELECT sum(clicks)::bigint AS n FROM partner_click_rollups"),
        3,
        "rollups keep the dropped month"
    );
    // The dropped month's key went with it; today's stays.
    assert_eq!(t.count(keys), 1);
}

#[tokio::test]
async fn rollups_equal_events_and_the_rebuild_command_repairs_them() {
    let t = TestApp::start().await;
    let a = t.simple_partner("A", &["pos"]).await;
    let b = t.simple_partner("B", &["pos"]).await;
    let events = (0..30)
        .map(|i| {
            let id = if i % 2 == 0 { a.id } else { b.id };
            let kind = if i % 3 == 0 {
                pb::EventType::Video
            } else {
                pb::EventType::Website
            };
            entry(id, kind, "")
        })
        .collect();
    batch(&t, &t.world.user_key_a, events).await;
    batch(
        &t,
        &t.world.service_key,
        vec![entry(a.id, pb::EventType::Website, "")],
    )
    .await;
    assert_click_totals_match(&t);
    // Damage the rollups, then repair them with the command.
    t.db.conn()
        .batch_execute(
            "DELETE FROM partner_click_rollups WHERE event_type = 'video'; \
             UPDATE partner_click_rollups SET clicks = clicks + 5",
        )
        .expect("damage");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_partners"))
        .arg("rebuild-click-rollups")
        .env("DATABASE_URL", &t.db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    // (a, b) x (website, video) with a business, and a's website click without one.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "rollup_rows=5");
    assert_click_totals_match(&t);
}

#[tokio::test]
async fn request_ids_replay_across_two_server_processes() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Twice", &["pos"]).await;
    let other = spawn_serve(&t.db.url, &[], false).await;
    let mut clients = [
        t.client(),
        PartnerServiceClient::new(
            channel_to(
                format!("127.0.0.1:{}", other.grpc_port)
                    .parse()
                    .expect("addr"),
            )
            .await,
        ),
    ];
    let mut answers = Vec::new();
    for client in &mut clients {
        let results = client
            .batch_create_partner_click_events(with_key(
                pb::BatchCreatePartnerClickEventsRequest {
                    events: vec![
                        entry(p.id, pb::EventType::Website, "both-1"),
                        entry(p.id, pb::EventType::Video, "both-2"),
                    ],
                },
                &t.world.service_key,
            ))
            .await
            .expect("batch")
            .into_inner()
            .results;
        answers.push(results);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_click_events"), 2);
    assert_click_totals_match(&t);
}
