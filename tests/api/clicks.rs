//! CreatePartnerClickEvent: counters in the same transaction, idempotency, validation.

use partners::grpc::pb;
use tonic::Code;

use crate::support::*;

fn click(id: i64, kind: pb::EventType, request_id: &str) -> pb::CreatePartnerClickEventRequest {
    pb::CreatePartnerClickEventRequest {
        id,
        event_type: kind as i32,
        request_id: request_id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn click_events_are_stored_and_counted() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Clicky", &["pos"]).await;
    let event = t
        .client()
        .create_partner_click_event(with_key(
            click(p.id, pb::EventType::Website, ""),
            &t.world.user_key_a,
        ))
        .await
        .expect("click")
        .into_inner();
    assert!(event.id > 0);
    assert_eq!(event.partner_id, p.id);
    assert_eq!(event.event_type, pb::EventType::Website as i32);
    assert_eq!(event.user_uuid, t.world.user_a.to_string());
    assert_eq!(event.business_uuid, t.world.business_a.to_string());
    t.client()
        .create_partner_click_event(with_key(
            click(p.id, pb::EventType::Video, ""),
            &t.world.user_key_a,
        ))
        .await
        .expect("video");
    let got = t
        .client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: p.id,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("get")
        .into_inner();
    let stats = got.stats.expect("stats");
    assert_eq!(
        (stats.clicks, stats.website_clicks, stats.video_clicks),
        (2, 1, 1)
    );
    assert_eq!(
        t.count(&format!(
            "SELECT count(*) AS n FROM partner_click_events WHERE partner_id = {}",
            p.id
        )),
        2
    );
}

#[tokio::test]
async fn request_id_makes_click_events_idempotent() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Once", &["pos"]).await;
    let first = t
        .client()
        .create_partner_click_event(with_key(
            click(p.id, pb::EventType::Website, "req-1"),
            &t.world.user_key_a,
        ))
        .await
        .expect("first")
        .into_inner();
    let replay = t
        .client()
        .create_partner_click_event(with_key(
            click(p.id, pb::EventType::Website, "req-1"),
            &t.world.user_key_a,
        ))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(replay, first);
    let conflict = t
        .client()
        .create_partner_click_event(with_key(
            click(p.id, pb::EventType::Video, "req-1"),
            &t.world.user_key_a,
        ))
        .await
        .expect_err("different body");
    assert_code(&conflict, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    // Keys are per caller: another user may use the same key.
    let other = t
        .client()
        .create_partner_click_event(with_key(
            click(p.id, pb::EventType::Website, "req-1"),
            &t.world.user_key_b,
        ))
        .await
        .expect("other user")
        .into_inner();
    assert_ne!(other.id, first.id);
    assert_eq!(t.count("SELECT website_clicks AS n FROM partners"), 2);
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_click_events"), 2);
}

#[tokio::test]
async fn concurrent_click_events_keep_counters_equal_to_events() {
    let t = TestApp::start().await;
    let a = t.simple_partner("A", &["pos"]).await;
    let b = t.simple_partner("B", &["pos"]).await;
    let mut tasks = Vec::new();
    for i in 0..120 {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        let id = if i % 3 == 0 { a.id } else { b.id };
        let kind = if i % 2 == 0 {
            pb::EventType::Website
        } else {
            pb::EventType::Video
        };
        // Every 10th request is sent twice with the same key.
        let request_id = format!("k{}", i - i % 10 * ((i % 10 == 1) as i32));
        tasks.push(tokio::spawn(async move {
            client
                .create_partner_click_event(with_key(click(id, kind, &request_id), &key))
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => ok += 1,
            Err(status) => assert_eq!(status.code(), Code::AlreadyExists, "{status:?}"),
        }
    }
    assert_eq!(
        ok, 108,
        "each reused key with a different body is rejected once"
    );
    let events = t.count("SELECT count(*) AS n FROM partner_click_events");
    let counted = t.count("SELECT sum(website_clicks + video_clicks)::bigint AS n FROM partners");
    assert_eq!(events, counted);
    let mismatched = t.count(
        "SELECT count(*) AS n FROM partners p WHERE p.website_clicks <> (SELECT count(*) FROM partner_click_events e \
         WHERE e.partner_id = p.id AND e.event_type = 'website') OR p.video_clicks <> (SELECT count(*) FROM \
         partner_click_events e WHERE e.partner_id = p.id AND e.event_type = 'video')",
    );
    assert_eq!(mismatched, 0);
}

#[tokio::test]
async fn click_event_errors() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Target", &["pos"]).await;
    let cases = [
        (click(0, pb::EventType::Website, ""), "id"),
        (click(p.id, pb::EventType::Unspecified, ""), "event_type"),
        (
            pb::CreatePartnerClickEventRequest {
                event_type: 7,
                ..click(p.id, pb::EventType::Website, "")
            },
            "event_type",
        ),
        (
            click(p.id, pb::EventType::Website, &"k".repeat(201)),
            "request_id",
        ),
        (
            pb::CreatePartnerClickEventRequest {
                business_uuid: "nope".into(),
                ..click(p.id, pb::EventType::Website, "")
            },
            "business_uuid",
        ),
    ];
    for (req, field) in cases {
        let status = t
            .client()
            .create_partner_click_event(with_key(req, &t.world.user_key_a))
            .await
            .expect_err(field);
        assert_invalid(&status, &[field]);
    }
    let missing = t
        .client()
        .create_partner_click_event(with_key(
            click(p.id + 99, pb::EventType::Video, "x"),
            &t.world.user_key_a,
        ))
        .await
        .expect_err("missing");
    assert_code(&missing, Code::NotFound, "NOT_FOUND");
    // A user key naming another business: NOT_FOUND, nothing stored.
    let other = t
        .client()
        .create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                business_uuid: t.world.business_b.to_string(),
                ..click(p.id, pb::EventType::Video, "")
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("other business");
    assert_code(&other, Code::NotFound, "NOT_FOUND");
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_click_events"), 0);
}

#[tokio::test]
async fn service_keys_click_with_or_without_a_user() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Svc", &["pos"]).await;
    let anonymous = t
        .client()
        .create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                business_uuid: t.world.business_b.to_string(),
                ..click(p.id, pb::EventType::Website, "")
            },
            &t.world.service_key,
        ))
        .await
        .expect("service click")
        .into_inner();
    assert_eq!(anonymous.user_uuid, "");
    assert_eq!(anonymous.business_uuid, t.world.business_b.to_string());
    let for_user = t
        .client()
        .create_partner_click_event(as_user(
            click(p.id, pb::EventType::Video, ""),
            &t.world.service_key,
            t.world.user_a,
        ))
        .await
        .expect("as user")
        .into_inner();
    assert_eq!(for_user.user_uuid, t.world.user_a.to_string());
    assert_eq!(for_user.business_uuid, t.world.business_a.to_string());
}

/// Group commit: events that arrive while a batch is being written go out together in the next
/// one. With the events table locked, 40 concurrent events wait behind the first batch of each
/// of the two writers and are then written by one more statement per writer.
#[tokio::test]
async fn events_waiting_for_a_writer_share_one_transaction() {
    let t = TestApp::start().await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D"] {
        ids.push(t.simple_partner(name, &["pos"]).await.id);
    }
    let key = t.world.user_key_a.clone();
    // The first call of a key looks it up; later calls use the cache.
    t.client()
        .create_partner_click_event(with_key(
            click(ids[0], pb::EventType::Website, "warm"),
            &key,
        ))
        .await
        .expect("warm the key cache");

    let lock = TableLock::take(&t.db.url, "partner_click_events");
    let mut calls = Vec::new();
    for i in 0..40 {
        let mut client = t.client();
        let request = with_key(
            click(ids[i % ids.len()], pb::EventType::Video, &format!("e{i}")),
            &key,
        );
        calls.push(tokio::spawn(async move {
            client.create_partner_click_event(request).await
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    lock.release();

    let mut event_ids = std::collections::HashSet::new();
    for call in calls {
        let event = call.await.expect("join").expect("click acknowledged");
        event_ids.insert(event.into_inner().id);
    }
    assert_eq!(event_ids.len(), 40, "every event has its own id");
    let condition = "FROM partner_click_events WHERE idempotency_key <> 'warm'";
    assert_eq!(t.count(&format!("SELECT count(*) AS n {condition}")), 40);
    let transactions = t.count(&format!(
        "SELECT count(DISTINCT xmin::text) AS n {condition}"
    ));
    assert!(
        (2..=4).contains(&transactions),
        "40 events written by {transactions} transactions"
    );
    assert_eq!(
        t.count("SELECT sum(video_clicks)::bigint AS n FROM partners"),
        40
    );
}

/// Clicks that arrive one a call at a steady pace (one every 5 ms, all for one partner, so one
/// writer) share statements: a writer holding a lone event lingers up to 20 ms for more, where
/// it would otherwise write each alone.
#[tokio::test]
async fn paced_single_clicks_share_statements() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Paced", &["pos"]).await;
    let key = t.world.user_key_a.clone();
    let mut calls = Vec::new();
    for i in 0..40u64 {
        let mut client = t.client();
        let request = with_key(click(p.id, pb::EventType::Website, &format!("p{i}")), &key);
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5 * i)).await;
            client.create_partner_click_event(request).await
        }));
    }
    for call in calls {
        call.await.expect("join").expect("click acknowledged");
    }
    let condition = format!("FROM partner_click_events WHERE partner_id = {}", p.id);
    assert_eq!(t.count(&format!("SELECT count(*) AS n {condition}")), 40);
    let transactions = t.count(&format!(
        "SELECT count(DISTINCT xmin::text) AS n {condition}"
    ));
    assert!(
        transactions <= 16,
        "40 paced events written by {transactions} transactions"
    );
}

/// Two batches written at the same moment (two writers or two replicas) with the same keys and
/// partners in opposite orders: both commit, no deadlock (keys are inserted, partner rows
/// locked, in one fixed order), each key is one event that both batches answer with.
#[test]
fn opposite_batches_at_once_never_deadlock() {
    use diesel::RunQueryDsl;
    use partners::model::EventType;
    use partners::model::click_event::{self, ClickOutcome, NewClickEvent};

    let db = TestDb::new();
    let count = |sql: &str| {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(sql)
            .load::<N>(&mut db.conn())
            .expect("query")
            .into_iter()
            .map(|r| r.n)
            .collect::<Vec<i64>>()
    };
    let partners = count(
        "INSERT INTO partners (name) SELECT 'Hot ' || g FROM generate_series(1, 8) g \
         RETURNING id AS n",
    );
    let mut deadlocks = 0;
    for round in 0..15 {
        let forward: Vec<NewClickEvent> = (0..64)
            .map(|i| NewClickEvent {
                partner_id: partners[i % partners.len()],
                user_id: None,
                business_id: None,
                event_type: EventType::Website,
                principal: "service:replicas".into(),
                idempotency_key: Some(format!("r{round}-k{i}")),
                fingerprint: format!("f{i}"),
            })
            .collect();
        let backward: Vec<NewClickEvent> = forward.iter().rev().cloned().collect();
        let barrier = std::sync::Barrier::new(2);
        let run = |events: &[NewClickEvent]| {
            let mut conn = db.conn();
            barrier.wait();
            click_event::insert_batch(&mut conn, events)
        };
        let (a, b) = std::thread::scope(|s| {
            let run = &run;
            let a = s.spawn(move || run(&forward));
            let b = s.spawn(move || run(&backward));
            (a.join().expect("join"), b.join().expect("join"))
        });
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                eprintln!("round {round}: {:?} / {:?}", a.err(), b.err());
                deadlocks += 1;
                continue;
            }
        };
        let id = |o: &ClickOutcome| match o {
            ClickOutcome::Created { id, .. } | ClickOutcome::Replayed { id, .. } => *id,
            other => panic!("unexpected {other:?}"),
        };
        for (i, first) in a.iter().enumerate() {
            assert_eq!(id(first), id(&b[b.len() - 1 - i]), "one event per key");
        }
    }
    assert_eq!(deadlocks, 0, "batches deadlocked");
    let mismatches = count(
        "SELECT count(*) AS n FROM partners p WHERE p.website_clicks <> \
         (SELECT count(*) FROM partner_click_events e WHERE e.partner_id = p.id)",
    );
    assert_eq!(mismatches, [0], "counters equal events");
    assert_eq!(
        count("SELECT count(*) AS n FROM partner_click_events"),
        [15 * 64]
    );
}
