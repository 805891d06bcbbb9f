//! The change log (migration 12) and the copies that follow it: what is logged, commit order
//! when transactions commit out of insert order, lost notifications, a second server, retention.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use partners::app::{self, RunningApp};
use partners::config::{DbConfig, ServerLimits};
use partners::grpc::pb;
use partners::model::change::{self, ChangeKind};
use partners::model::partner;
use partners::serving::lists::ListStats;

use crate::proxy::{Mode, Proxy};
use crate::support::*;

fn stats(app: &RunningApp) -> ListStats {
    app.services.lists.stats()
}

fn log(t: &TestApp) -> Vec<change::Change> {
    change::after(&mut t.db.conn(), 0, 1000).expect("read the log")
}

/// Waits until `app`'s copy applied every change committed so far.
async fn followed(t: &TestApp, app: &RunningApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let last = t.count("SELECT coalesce(max(sequence), 0) AS n FROM partner_changes");
        if stats(app).sequence == last as u64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "copy behind {last}: {:?}",
            stats(app)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn search(t: &TestApp, term: &str, filter: Option<pb::ListPartnersFilter>) -> Vec<String> {
    let page = t
        .client()
        .list_partners(with_key(
            pb::ListPartnersRequest {
                search: term.to_owned(),
                filter,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("list")
        .into_inner();
    names(&page.partners)
}

fn rename(partner_id: i64, name: &str) -> pb::UpdatePartnerRequest {
    pb::UpdatePartnerRequest {
        partner: Some(pb::Partner {
            id: partner_id,
            name: name.to_owned(),
            tags: vec!["renamed".into()],
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["name".into(), "tags".into()],
        }),
    }
}

#[tokio::test]
async fn every_directory_write_is_logged_once_counters_never() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Logged Co", &["pos"]).await;
    t.admin()
        .update_partner(with_key(rename(p.id, "Logged Two"), &t.world.service_key))
        .await
        .expect("rename");
    t.prefer(t.world.business_a, p.id).await;
    t.integrate(t.world.business_a, p.id, pb::IntegrationStatus::Active)
        .await;
    t.integrate(t.world.business_a, p.id, pb::IntegrationStatus::Active)
        .await; // unchanged: not logged
    t.connect(&t.world.user_key_a, p.id).await;
    t.client()
        .create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                id: p.id,
                event_type: pb::EventType::Website as i32,
                request_id: "changes-1".into(),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("click"); // a counter: not logged
    t.client()
        .disconnect_user(with_key(
            pb::DisconnectUserRequest { id: p.id },
            &t.world.user_key_a,
        ))
        .await
        .expect("disconnect");
    t.admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id: p.id },
            &t.world.service_key,
        ))
        .await
        .expect("delete");

    let rows = log(&t);
    let kinds: Vec<ChangeKind> = rows.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::PartnerCreated,
            ChangeKind::PartnerUpdated,
            ChangeKind::PreferenceUpdated,
            ChangeKind::IntegrationUpdated,
            ChangeKind::UserConnected,
            ChangeKind::UserDisconnected,
            ChangeKind::PartnerDeleted,
        ]
    );
    assert!(rows.iter().all(|c| c.partner_id == p.id));
    assert_eq!(rows[1].changed_fields, ["name", "tags"]);
    let sequences: Vec<i64> = rows.iter().map(|c| c.sequence).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]));
    let business_a = t.count(&format!(
        "SELECT id AS n FROM businesses WHERE uuid = '{}'",
        t.world.business_a
    ));
    for c in &rows[2..6] {
        assert_eq!(c.business_id, Some(business_a), "{c:?}");
    }
    assert!(rows[4].user_id.is_some() && rows[4].user_id == rows[5].user_id);
    assert_eq!((rows[0].business_id, rows[6].business_id), (None, None));
}

/// Two transactions: the first to write (smaller id) commits last. Its change gets the later
/// sequence, so a reader that walked past the first commit's sequence still finds it; a reader
/// walking by insert id would have skipped it. Both changes reach the copy.
#[tokio::test]
async fn a_change_committed_late_is_never_skipped() {
    let t = TestApp::start().await;
    let app = t.app.as_ref().expect("running");
    let x = t.simple_partner("Harbor Late", &["pos"]).await;
    let y = t.simple_partner("Plain Early", &["pos"]).await;
    followed(&t, app).await;
    let preferred = Some(pb::ListPartnersFilter {
        preferred: Some(true),
        ..Default::default()
    });
    assert!(search(&t, "harbor", preferred.clone()).await.is_empty());
    let business_a = t.count(&format!(
        "SELECT id AS n FROM businesses WHERE uuid = '{}'",
        t.world.business_a
    ));

    let mut first = t.db.conn();
    first.batch_execute("BEGIN").expect("begin");
    first
        .batch_execute(&format!(
            "INSERT INTO partner_preferences (business_id, partner_id) VALUES ({business_a}, {})",
            x.id
        ))
        .expect("prefer, uncommitted");
    let mut second = t.db.conn();
    second
        .batch_execute(&format!(
            "UPDATE partners SET name = 'Harbor Renamed' WHERE id = {}",
            y.id
        ))
        .expect("rename, committed");

    followed(&t, app).await;
    let seen = stats(app).sequence as i64;
    assert_eq!(
        search(&t, "harbor", None).await,
        ["Harbor Late", "Harbor Renamed"]
    );
    first.batch_execute("COMMIT").expect("commit late");

    let rows = change::after(&mut t.db.conn(), seen - 1, 10).expect("log");
    let (renamed, preference) = (&rows[0], &rows[1]);
    assert_eq!(
        (renamed.kind, preference.kind),
        (ChangeKind::PartnerUpdated, ChangeKind::PreferenceUpdated)
    );
    assert!(preference.sequence > seen, "committed last, numbered last");
    let id_of = |sequence: i64| {
        t.count(&format!(
            "SELECT id AS n FROM partner_changes WHERE sequence = {sequence}"
        ))
    };
    assert!(
        id_of(preference.sequence) < id_of(renamed.sequence),
        "written first: `WHERE id > last` would have skipped it"
    );

    followed(&t, app).await;
    let served = stats(app).served;
    assert_eq!(
        search(&t, "harbor", preferred).await,
        ["Harbor Late"],
        "the late preference reached the copy's cached set"
    );
    assert_eq!(stats(app).served, served + 1, "answered by the copy");
    assert_eq!(stats(app).loads, 1, "followed, never reloaded");
}

async fn via_proxy() -> (TestApp, Proxy) {
    let proxy = Proxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let addr = proxy.addr;
    let t = TestApp::start_with_db(ServerLimits::default(), |db| {
        DbConfig::for_url(format!("postgres://postgres@{addr}/{}", db.name))
    })
    .await;
    (t, proxy)
}

/// Once the proxy passes again: the first calls may meet pooled connections the cut killed
/// (UNAVAILABLE, which clients retry); wait until lists answer.
async fn until_lists_answer(t: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let req = pb::ListPartnersRequest::default();
    while let Err(status) = t
        .client()
        .list_partners(with_key(req.clone(), &t.world.user_key_a))
        .await
    {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(Instant::now() < deadline, "lists still fail: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes straight to the database (not through the proxy).
fn rename_directly(t: &TestApp, id: i64, name: &str) {
    t.db.conn()
        .batch_execute(&format!(
            "UPDATE partners SET name = '{name}' WHERE id = {id}"
        ))
        .expect("rename directly");
}

#[tokio::test]
async fn a_lost_notification_only_delays() {
    let (t, proxy) = via_proxy().await;
    let app = t.app.as_ref().expect("running");
    let p = t.simple_partner("Quiet Co", &["pos"]).await;
    followed(&t, app).await;
    // Every connection through the proxy is cut, the listener's too: the notification of this
    // write reaches nobody.
    proxy.set(Mode::Refuse);
    tokio::time::sleep(Duration::from_millis(200)).await;
    rename_directly(&t, p.id, "Harbor Found");
    proxy.set(Mode::Pass);
    followed(&t, app).await;
    until_lists_answer(&t).await;
    assert_eq!(search(&t, "harbor", None).await, ["Harbor Found"]);
    assert_eq!(stats(app).loads, 1, "caught up from the log, no reload");
}

#[tokio::test]
async fn a_copy_behind_the_retention_loads_in_full() {
    let (t, proxy) = via_proxy().await;
    let app = t.app.as_ref().expect("running");
    let p = t.simple_partner("Pruned Co", &["pos"]).await;
    followed(&t, app).await;
    proxy.set(Mode::Refuse);
    tokio::time::sleep(Duration::from_millis(200)).await;
    rename_directly(&t, p.id, "Harbor Pruned");
    let mut conn = t.db.conn();
    assert_eq!(change::prune(&mut conn, 0, 1000).expect("prune"), 2);
    let last = change::state(&mut conn).expect("state");
    assert_eq!(last.pruned_through, last.last);
    proxy.set(Mode::Pass);
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats(app).loads < 2 {
        assert!(Instant::now() < deadline, "no full load: {:?}", stats(app));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until_lists_answer(&t).await;
    assert_eq!(search(&t, "harbor", None).await, ["Harbor Pruned"]);
    assert_eq!(stats(app).sequence as i64, last.last);
}

#[tokio::test]
async fn retention_deletes_only_old_changes_and_says_how_far() {
    let t = TestApp::start().await;
    for name in ["Old One", "Old Two", "New Three"] {
        t.simple_partner(name, &["pos"]).await;
    }
    let mut conn = t.db.conn();
    conn.batch_execute(
        "UPDATE partner_changes SET occurred_at = now() - interval '4 days' \
         WHERE sequence <= 2",
    )
    .expect("age two changes");
    assert_eq!(change::prune(&mut conn, 72 * 3600, 1).expect("prune"), 1);
    assert_eq!(change::prune(&mut conn, 72 * 3600, 10).expect("prune"), 1);
    assert_eq!(change::prune(&mut conn, 72 * 3600, 10).expect("prune"), 0);
    let state = change::state(&mut conn).expect("state");
    assert_eq!((state.pruned_through, state.last), (2, 3));
    let left: Vec<i64> = change::after(&mut conn, 0, 10)
        .expect("log")
        .iter()
        .map(|c| c.sequence)
        .collect();
    assert_eq!(left, [3]);
    // A writer is never held up by a cleanup in progress.
    conn.batch_execute("BEGIN; DELETE FROM partner_changes WHERE sequence = 3;")
        .expect("cleanup in progress");
    let started = Instant::now();
    t.simple_partner("Written Meanwhile", &["pos"]).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    conn.batch_execute("ROLLBACK").expect("rollback");
}

#[tokio::test]
async fn a_second_server_sees_a_write_within_a_second() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Before Rename", &["pos"]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let other = app::start(
        &DbConfig::for_url(&t.db.url),
        &ServerLimits::default(),
        listener,
        None,
    )
    .await
    .expect("second server");
    let mut other_client =
        pb::partner_service_client::PartnerServiceClient::new(channel_to(other.grpc_addr).await);
    followed(&t, &other).await;
    t.admin()
        .update_partner(with_key(
            rename(p.id, "Harbor Elsewhere"),
            &t.world.service_key,
        ))
        .await
        .expect("rename on the first server");
    let renamed = Instant::now();
    loop {
        let page = other_client
            .list_partners(with_key(
                pb::ListPartnersRequest {
                    search: "elsewhere".into(),
                    ..Default::default()
                },
                &t.world.user_key_a,
            ))
            .await
            .expect("list on the second server")
            .into_inner();
        if names(&page.partners) == ["Harbor Elsewhere"] {
            break;
        }
        assert!(
            renamed.elapsed() < Duration::from_secs(1),
            "not seen in 1 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let s = stats(&other);
    assert_eq!(s.loads, 1, "followed, not reloaded: {s:?}");
    assert!(s.deltas >= 1 && s.served >= 1, "{s:?}");
    other.shutdown().await.expect("stop the second server");
}

#[derive(QueryableByName)]
struct Seq {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    sequence: i64,
}

#[test]
fn the_log_reads_in_commit_order_from_any_position() {
    let db = TestDb::new();
    let mut conn: PgConnection = db.conn();
    conn.batch_execute(
        "INSERT INTO partners (name) VALUES ('A'), ('B'), ('C'); \
         UPDATE partners SET name = 'A2' WHERE name = 'A';",
    )
    .expect("writes");
    let all: Vec<Seq> = diesel::sql_query("SELECT sequence FROM partner_changes ORDER BY id")
        .load(&mut conn)
        .expect("log");
    assert_eq!(all.len(), 4);
    for from in 0..4 {
        let read = change::after(&mut conn, from, 2).expect("after");
        let got: Vec<i64> = read.iter().map(|c| c.sequence).collect();
        let want: Vec<i64> = all
            .iter()
            .map(|s| s.sequence)
            .filter(|&s| s > from)
            .take(2)
            .collect();
        assert_eq!(got, want);
    }
}

/// The follower's one statement (`partner::followed`) reads what its three parts read in one
/// snapshot: the log's state, the changes after a position (at most a limit), and the live
/// partners the `partner.*` changes among them name, in list order.
#[test]
fn the_followers_one_statement_reads_what_its_parts_read() {
    let db = TestDb::new();
    let mut conn: PgConnection = db.conn();
    conn.batch_execute(
        "INSERT INTO partners (name, categories) VALUES ('Delta', '{pos}'), ('Bravo', '{}'), \
         ('Alpha', '{crm}'), ('Charlie', '{pos,crm}'); \
         UPDATE partners SET name = 'Echo' WHERE name = 'Alpha'; \
         UPDATE partners SET deleted_at = now() WHERE name = 'Bravo';",
    )
    .expect("writes");
    let last = change::state(&mut conn).expect("state").last;
    assert_eq!(change::after(&mut conn, 0, 100).expect("log").len(), 6);
    for from in 0..=last {
        for limit in [1, 3, 100] {
            let got = partner::followed(&mut conn, from, limit).expect("followed");
            conn.transaction(|conn| {
                diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    .execute(conn)?;
                let state = change::state(conn)?;
                let changes = change::after(conn, from, limit)?;
                let ids = change::partners_named(&changes);
                let placed: Vec<partner::PlacedRow> =
                    partner::placed_rows_sql(&ids).into_query().load(conn)?;
                assert_eq!(got.state, state, "from {from}, limit {limit}");
                assert_eq!(got.changes, changes, "from {from}, limit {limit}");
                assert_eq!(got.placed, placed, "from {from}, limit {limit}");
                diesel::QueryResult::Ok(())
            })
            .expect("the parts");
        }
    }
    // Past the end: the state alone.
    let tail = partner::followed(&mut conn, last, 10).expect("followed");
    assert!(tail.changes.is_empty() && tail.placed.is_empty());
    assert_eq!(tail.state.last, last);
    // In list order, each after the live partner before it (Bravo is deleted, Alpha renamed).
    let all = partner::followed(&mut conn, 0, 100).expect("followed");
    let names: Vec<&str> = all
        .placed
        .iter()
        .map(|p| p.partner.lower_name.as_str())
        .collect();
    assert_eq!(names, ["charlie", "delta", "echo"]);
    let after: Vec<Option<i64>> = all.placed.iter().map(|p| p.after).collect();
    assert_eq!(after[0], None);
    assert_eq!(after[1], Some(all.placed[0].partner.id));
    assert_eq!(after[2], Some(all.placed[1].partner.id));
}
