//! BatchCreatePartnerClickEvents over gRPC and REST: a result per event, replays across calls,
//! counters exact with concurrent single and batch calls.

use partners::grpc::pb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::Code;

use crate::support::*;

pub fn entry(partner_id: i64, kind: pb::EventType, request_id: &str) -> pb::ClickEventEntry {
    pb::ClickEventEntry {
        partner_id,
        event_type: kind as i32,
        request_id: request_id.into(),
        ..Default::default()
    }
}

pub async fn batch(
    t: &TestApp,
    key: &str,
    events: Vec<pb::ClickEventEntry>,
) -> Vec<pb::click_event_result::Result> {
    t.client()
        .batch_create_partner_click_events(with_key(
            pb::BatchCreatePartnerClickEventsRequest { events },
            key,
        ))
        .await
        .expect("batch")
        .into_inner()
        .results
        .into_iter()
        .map(|r| r.result.expect("every event has a result"))
        .collect()
}

fn event(result: &pb::click_event_result::Result) -> &pb::ClickEvent {
    match result {
        pb::click_event_result::Result::Event(e) => e,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The code, reason and violated fields of a failed event.
fn failure(result: &pb::click_event_result::Result) -> (Code, String, Vec<String>) {
    match result {
        pb::click_event_result::Result::Error(e) => (
            Code::from_i32(e.code),
            e.reason.clone(),
            e.field_violations.iter().map(|v| v.field.clone()).collect(),
        ),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// (website, video) counters of a partner, and its stored events.
fn counted(t: &TestApp, partner_id: i64) -> (i64, i64, i64) {
    (
        t.count(&format!(
            "SELECT website_clicks AS n FROM partners WHERE id = {partner_id}"
        )),
        t.count(&format!(
            "SELECT video_clicks AS n FROM partners WHERE id = {partner_id}"
        )),
        t.count(&format!(
            "SELECT count(*) AS n FROM partner_click_events WHERE partner_id = {partner_id}"
        )),
    )
}

#[tokio::test]
async fn a_batch_answers_each_event_and_one_bad_event_fails_alone() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Batchy", &["pos"]).await;
    let key = &t.world.user_key_a;
    // A key used before for another body: that event alone is ALREADY_EXISTS.
    batch(&t, key, vec![entry(p.id, pb::EventType::Video, "taken")]).await;
    let results = batch(
        &t,
        key,
        vec![
            entry(p.id, pb::EventType::Website, "b-0"),
            entry(0, pb::EventType::Unspecified, ""),
            entry(999_999, pb::EventType::Website, ""),
            entry(p.id, pb::EventType::Website, "taken"),
            pb::ClickEventEntry {
                user_uuid: t.world.user_b.to_string(),
                ..entry(p.id, pb::EventType::Video, "")
            },
            entry(p.id, pb::EventType::Video, ""),
        ],
    )
    .await;
    assert_eq!(results.len(), 6);
    let first = event(&results[0]);
    assert_eq!(
        (first.partner_id, first.event_type, first.user_uuid.as_str()),
        (
            p.id,
            pb::EventType::Website as i32,
            t.world.user_a.to_string().as_str()
        )
    );
    assert_eq!(first.business_uuid, t.world.business_a.to_string());
    assert_eq!(
        failure(&results[1]),
        (
            Code::InvalidArgument,
            "INVALID_ARGUMENT".into(),
            vec!["events[1].partner_id".into(), "events[1].event_type".into()]
        )
    );
    assert_eq!(
        failure(&results[2]),
        (
            Code::NotFound,
            "NOT_FOUND".into(),
            vec!["events[2].partner_id".into()]
        )
    );
    assert_eq!(
        failure(&results[3]),
        (Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED".into(), vec![])
    );
    // A user key may not record clicks of another user.
    assert_eq!(failure(&results[4]).0, Code::PermissionDenied);
    assert_eq!(event(&results[5]).event_type, pb::EventType::Video as i32);
    // Counters and events: the first call's video, and events 0 and 5.
    assert_eq!(counted(&t, p.id), (1, 2, 3));
}

#[tokio::test]
async fn a_batch_of_no_or_too_many_events_fails_as_a_whole() {
    let t = TestApp::start().await;
    for n in [0, 1001] {
        let status = t
            .client()
            .batch_create_partner_click_events(with_key(
                pb::BatchCreatePartnerClickEventsRequest {
                    events: vec![entry(1, pb::EventType::Website, ""); n],
                },
                &t.world.service_key,
            ))
            .await
            .expect_err("wrong size");
        assert_invalid(&status, &["events"]);
    }
}

#[tokio::test]
async fn request_ids_replay_across_batch_and_single_calls() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Replay", &["pos"]).await;
    let key = &t.world.service_key;
    let first = batch(
        &t,
        key,
        vec![
            entry(p.id, pb::EventType::Website, "r-1"),
            entry(p.id, pb::EventType::Video, "r-2"),
            // The same key twice in one call: the second is a replay of the first.
            entry(p.id, pb::EventType::Website, "r-1"),
        ],
    )
    .await;
    assert_eq!(event(&first[0]), event(&first[2]));
    let second = batch(
        &t,
        key,
        vec![
            entry(p.id, pb::EventType::Website, "r-1"),
            entry(p.id, pb::EventType::Website, "r-3"),
        ],
    )
    .await;
    assert_eq!(event(&second[0]), event(&first[0]));
    assert_ne!(event(&second[1]).id, event(&first[0]).id);
    // The single-event call shares the keys of its caller.
    let single = t
        .client()
        .create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                id: p.id,
                event_type: pb::EventType::Video as i32,
                request_id: "r-2".into(),
                ..Default::default()
            },
            key,
        ))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(&single, event(&first[1]));
    assert_eq!(counted(&t, p.id), (2, 1, 3));
    assert_eq!(
        t.count("SELECT count(*) AS n FROM partner_click_events WHERE idempotency_key IS NOT NULL"),
        3
    );
}

#[tokio::test]
async fn service_keys_record_events_of_named_users_and_businesses() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Named", &["pos"]).await;
    let results = batch(
        &t,
        &t.world.service_key,
        vec![
            pb::ClickEventEntry {
                user_uuid: t.world.user_b.to_string(),
                ..entry(p.id, pb::EventType::Website, "")
            },
            pb::ClickEventEntry {
                business_uuid: t.world.business_a.to_string(),
                ..entry(p.id, pb::EventType::Website, "")
            },
            entry(p.id, pb::EventType::Website, ""),
            pb::ClickEventEntry {
                user_uuid: uuid::Uuid::new_v4().to_string(),
                ..entry(p.id, pb::EventType::Website, "")
            },
        ],
    )
    .await;
    let scope = |r| {
        let e = event(r);
        (e.user_uuid.clone(), e.business_uuid.clone())
    };
    assert_eq!(
        scope(&results[0]),
        (t.world.user_b.to_string(), t.world.business_b.to_string())
    );
    assert_eq!(
        scope(&results[1]),
        (String::new(), t.world.business_a.to_string())
    );
    assert_eq!(scope(&results[2]), (String::new(), String::new()));
    assert_eq!(
        failure(&results[3]),
        (
            Code::NotFound,
            "NOT_FOUND".into(),
            vec!["events[3].user_uuid".into()]
        )
    );
}

#[tokio::test]
async fn concurrent_batch_and_single_calls_keep_counters_exact() {
    let t = TestApp::start().await;
    let a = t.simple_partner("A", &["pos"]).await;
    let b = t.simple_partner("B", &["pos"]).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let mut client = t.client();
        let key = t.world.service_key.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // Batch n has keys 20n..20n+24: five of them again in batch n + 1.
                let events = (0..25)
                    .map(|j| {
                        let k = i / 2 * 20 + j;
                        let id = if k % 3 == 0 { a.id } else { b.id };
                        entry(id, pb::EventType::Website, &format!("k-{k}"))
                    })
                    .collect();
                client
                    .batch_create_partner_click_events(with_key(
                        pb::BatchCreatePartnerClickEventsRequest { events },
                        &key,
                    ))
                    .await
                    .map(|_| ())
            } else {
                client
                    .create_partner_click_event(with_key(
                        pb::CreatePartnerClickEventRequest {
                            id: if i % 3 == 0 { a.id } else { b.id },
                            event_type: pb::EventType::Video as i32,
                            ..Default::default()
                        },
                        &key,
                    ))
                    .await
                    .map(|_| ())
            }
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("call");
    }
    let events = t.count("SELECT count(*) AS n FROM partner_click_events");
    let counters = t.count("SELECT sum(website_clicks + video_clicks)::bigint AS n FROM partners");
    assert_eq!(counters, events);
    // 20 batches of 25 keys, overlapping by 5 with the next one: 20 * 20 + 5 distinct keys.
    assert_eq!(
        t.count("SELECT count(DISTINCT idempotency_key) AS n FROM partner_click_events"),
        405
    );
    assert_eq!(events, 405 + 20);
    assert_click_totals_match(&t);
}

/// Counters = events = rollups, per partner and event type (and rollups per hour and business).
pub fn assert_click_totals_match(t: &TestApp) {
    for (column, kind) in [("website_clicks", "website"), ("video_clicks", "video")] {
        assert_eq!(
            t.count(&format!(
                "SELECT count(*) AS n FROM partners p WHERE {column} <> \
                 (SELECT count(*) FROM partner_click_events e WHERE e.partner_id = p.id AND e.event_type = '{kind}') \
                 OR {column} <> (SELECT coalesce(sum(clicks), 0) FROM partner_click_rollups r \
                                 WHERE r.partner_id = p.id AND r.event_type = '{kind}')"
            )),
            0,
            "{kind}: counters, events and rollups differ"
        );
    }
    assert_eq!(
        t.count(
            "SELECT count(*) AS n FROM (SELECT partner_id, coalesce(business_id, 0) AS b, event_type, \
             date_trunc('hour', created_at, 'UTC') AS hour, count(*) AS clicks FROM partner_click_events \
             GROUP BY 1, 2, 3, 4) e FULL JOIN partner_click_rollups r \
             ON (r.partner_id, r.business_id, r.event_type, r.hour, r.clicks) = (e.partner_id, e.b, e.event_type, e.hour, e.clicks) \
             WHERE r.partner_id IS NULL OR e.partner_id IS NULL"
        ),
        0,
        "rollups differ from the events' hourly counts"
    );
}

#[tokio::test]
async fn rest_batch_answers_each_event_with_pointers_into_the_request() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Rest batch", &["pos"]).await;
    let http = reqwest::Client::new();
    let event = |id: &str, kind: &str| {
        json!({"type": "partner_click_events", "attributes": {"event_type": kind, "request_id": format!("rest-{id}-{kind}")},
               "relationships": {"partner": {"data": {"type": "partner", "id": id}}}})
    };
    let body = json!({"data": [event(&p.id.to_string(), "website"), event("999999", "video"),
                               event(&p.id.to_string(), "bogus")]});
    let send = || {
        http.post(format!("{}/api/v1/partner_click_events/batch", t.http()))
            .bearer_auth(&t.world.user_key_a)
            .header("content-type", "application/vnd.api+json")
            .body(body.to_string())
            .send()
    };
    let response = send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let mut doc: Value = response.json().await.expect("json");
    let id = doc["data"][0]["id"].clone();
    doc["data"][0]["id"] = json!("<id>");
    doc["data"][0]["attributes"]["created_at"] = json!("<time>");
    assert_eq!(
        doc,
        json!({
            "data": [
                {"id": "<id>", "type": "partner_click_events",
                 "attributes": {"event_type": "website", "created_at": "<time>"},
                 "relationships": {"partner": {"data": {"type": "partner", "id": p.id.to_string()}},
                                   "user": {"data": {"type": "user", "id": t.world.user_a.to_string()}}}},
                null,
                null
            ],
            "meta": {"errors": [
                {"status": "404", "code": "NOT_FOUND", "title": "Not Found",
                 "detail": "events[1].partner_id: no live partner with this id",
                 "source": {"pointer": "/data/1/relationships/partner/data/id"}, "meta": {"index": 1}},
                {"status": "400", "code": "INVALID_ARGUMENT", "title": "Bad Request",
                 "detail": "events[2].event_type: must be website or video",
                 "source": {"pointer": "/data/2/attributes/event_type"}, "meta": {"index": 2}}
            ]}
        })
    );
    // The same document again: the first event is a replay (same id), nothing more is counted.
    let again: Value = send().await.expect("answer").json().await.expect("json");
    assert_eq!(again["data"][0]["id"], id);
    assert_eq!(counted(&t, p.id), (1, 0, 1));
    // A malformed document fails as a whole.
    let status = http
        .post(format!("{}/api/v1/partner_click_events/batch", t.http()))
        .bearer_auth(&t.world.user_key_a)
        .header("content-type", "application/json")
        .body(r#"{"data": [{"type": "partner"}]}"#)
        .send()
        .await
        .expect("answer")
        .status();
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
