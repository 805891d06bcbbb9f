//! Change events (issue 21): the feed over gRPC and REST walked while writes commit out of order,
//! its filters and validation, service keys only, the watch stream (a rename within the bound, a
//! reconnect without gaps, heartbeats, the end at shutdown), expired sequences, and 200 watchers
//! on one database listener.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use partners::config::ServerLimits;
use partners::grpc::pb;
use partners::grpc::pb::partner_event_service_client::PartnerEventServiceClient;
use partners::grpc::pb::watch_partner_events_response::Kind;
use reqwest::StatusCode;
use serde_json::Value;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

use crate::support::*;

fn events(channel: &Channel) -> PartnerEventServiceClient<Channel> {
    PartnerEventServiceClient::new(channel.clone())
}

async fn page(
    t: &TestApp,
    after: i64,
    page_size: i32,
    types: &[&str],
    partner_ids: &[i64],
) -> pb::ListPartnerEventsResponse {
    events(&t.channel)
        .list_partner_events(with_key(
            pb::ListPartnerEventsRequest {
                after_sequence: after,
                page_size: Some(page_size),
                types: types.iter().map(|s| (*s).to_owned()).collect(),
                partner_ids: partner_ids.to_vec(),
            },
            &t.world.service_key,
        ))
        .await
        .expect("list events")
        .into_inner()
}

/// Walks the feed from `after` in pages of `size` until nothing newer: the events and the cursor.
async fn walk(t: &TestApp, mut after: i64, size: i32) -> (Vec<pb::PartnerEvent>, i64) {
    let mut seen = Vec::new();
    loop {
        let page = page(t, after, size, &[], &[]).await;
        assert!(
            page.next_after_sequence >= after,
            "the cursor never goes back"
        );
        seen.extend(page.events);
        if page.next_after_sequence == after {
            return (seen, after);
        }
        after = page.next_after_sequence;
    }
}

fn sequences(events: &[pb::PartnerEvent]) -> Vec<i64> {
    events.iter().map(|e| e.sequence).collect()
}

fn types(events: &[pb::PartnerEvent]) -> Vec<&str> {
    events.iter().map(|e| e.r#type.as_str()).collect()
}

async fn watch(
    channel: &Channel,
    key: &str,
    after: i64,
) -> Result<Streaming<pb::WatchPartnerEventsResponse>, tonic::Status> {
    events(channel)
        .watch_partner_events(with_key(
            pb::WatchPartnerEventsRequest {
                after_sequence: after,
                ..Default::default()
            },
            key,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// The next event of `stream` (heartbeats skipped), within `limit`.
async fn next_event(
    stream: &mut Streaming<pb::WatchPartnerEventsResponse>,
    limit: Duration,
) -> pb::PartnerEvent {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let message = tokio::time::timeout_at(deadline, stream.message())
            .await
            .expect("an event in time")
            .expect("stream open")
            .expect("stream not ended");
        if let Some(Kind::Event(event)) = message.kind {
            return event;
        }
    }
}

fn last_sequence(t: &TestApp) -> i64 {
    t.count("SELECT coalesce(max(sequence), 0) AS n FROM partner_changes")
}

/// Two transactions cross: the first to write commits last and is numbered last. A walk that
/// passed the first commit still finds it; walked again from 0 the feed gives the same events,
/// each once, in sequence order. A partner event carries the partner as GetPartner answers it.
#[tokio::test]
async fn the_feed_walks_every_event_once_while_commits_cross() {
    let t = TestApp::start().await;
    let x = t.simple_partner("Harbor", &["pos"]).await;
    let y = t.simple_partner("Plain", &["pos"]).await;
    let (first, cursor) = walk(&t, 0, 1).await;
    assert_eq!(types(&first), ["partner.created", "partner.created"]);
    let read = t
        .client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: x.id,
                ..Default::default()
            },
            &t.world.service_key,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        first[0].partner.as_ref(),
        Some(&read),
        "the GetPartner resource"
    );
    assert!(first[0].changed_fields.is_empty() && first[0].business_uuid.is_empty());

    let business_a = t.count(&format!(
        "SELECT id AS n FROM businesses WHERE uuid = '{}'",
        t.world.business_a
    ));
    let mut late = t.db.conn();
    late.batch_execute("BEGIN").expect("begin");
    late.batch_execute(&format!(
        "INSERT INTO partner_preferences (business_id, partner_id) VALUES ({business_a}, {})",
        x.id
    ))
    .expect("prefer, uncommitted");
    t.db.conn()
        .batch_execute(&format!(
            "UPDATE partners SET name = 'Plain Renamed' WHERE id = {}",
            y.id
        ))
        .expect("rename, committed");
    let (second, cursor) = walk(&t, cursor, 1).await;
    assert_eq!(types(&second), ["partner.updated"]);
    assert_eq!(second[0].changed_fields, ["name"]);
    let renamed = second[0]
        .partner
        .as_ref()
        .expect("the partner after the change");
    assert_eq!((renamed.id, renamed.name.as_str()), (y.id, "Plain Renamed"));

    late.batch_execute("COMMIT").expect("commit late");
    let (third, _) = walk(&t, cursor, 1).await;
    assert_eq!(types(&third), ["partner_preference.updated"]);
    assert_eq!(third[0].business_uuid, t.world.business_a.to_string());
    assert_eq!(
        third[0].partner, None,
        "only partner.* events carry the partner"
    );
    assert!(third[0].sequence > second[0].sequence, "numbered at commit");

    let walked: Vec<i64> = [first, second, third]
        .iter()
        .flat_map(|events| sequences(events))
        .collect();
    let (again, _) = walk(&t, 0, 1000).await;
    assert_eq!(sequences(&again), walked, "no event skipped or repeated");
    assert!(walked.windows(2).all(|w| w[0] < w[1]));
}

/// Type and partner filters, the cursor past filtered-out events, validation, and user keys
/// refused on gRPC and REST; the REST page and its `links.next`.
#[tokio::test]
async fn filters_validation_service_keys_and_the_rest_feed() {
    let t = TestApp::start().await;
    let a = t.simple_partner("Alder", &["pos"]).await;
    let b = t.simple_partner("Birch", &["pos"]).await;
    t.rename(a.id, "Alder Two").await;
    t.integrate(t.world.business_a, b.id, pb::IntegrationStatus::Active)
        .await;
    t.connect(&t.world.user_key_a, a.id).await;
    let last = last_sequence(&t);

    let renames = page(&t, 0, 100, &["partner.updated"], &[]).await;
    assert_eq!(types(&renames.events), ["partner.updated"]);
    assert_eq!(
        renames.next_after_sequence, last,
        "past what the filter left out"
    );
    let of_b = page(&t, 0, 100, &[], &[b.id]).await;
    assert_eq!(
        types(&of_b.events),
        ["partner.created", "partner_integration.updated"]
    );
    assert_eq!(of_b.events[1].business_uuid, t.world.business_a.to_string());
    let links = page(&t, 0, 100, &["partner_user.connected"], &[]).await;
    assert_eq!(links.events[0].user_uuid, t.world.user_a.to_string());
    assert_eq!(links.events[0].partner_id, a.id);
    let first = page(&t, 0, 2, &[], &[]).await;
    assert_eq!(first.events.len(), 2);
    assert_eq!(
        first.next_after_sequence, first.events[1].sequence,
        "a full page"
    );

    let mut client = events(&t.channel);
    let invalid = |after, page_size, types: &[&str], ids: &[i64]| {
        with_key(
            pb::ListPartnerEventsRequest {
                after_sequence: after,
                page_size,
                types: types.iter().map(|s| (*s).to_owned()).collect(),
                partner_ids: ids.to_vec(),
            },
            &t.world.service_key,
        )
    };
    let status = client
        .list_partner_events(invalid(-1, Some(0), &["partner.renamed"], &[0]))
        .await
        .expect_err("invalid");
    assert_invalid(
        &status,
        &["after_sequence", "page_size", "types", "partner_ids"],
    );
    let status = client
        .list_partner_events(invalid(0, Some(1001), &[], &[]))
        .await
        .expect_err("invalid");
    assert_invalid(&status, &["page_size"]);

    let refused = client
        .list_partner_events(with_key(
            pb::ListPartnerEventsRequest::default(),
            &t.world.user_key_a,
        ))
        .await
        .expect_err("user key");
    assert_code(&refused, Code::PermissionDenied, "PERMISSION_DENIED");
    let refused = watch(&t.channel, &t.world.user_key_a, 0)
        .await
        .expect_err("user key");
    assert_code(&refused, Code::PermissionDenied, "PERMISSION_DENIED");

    let http = reqwest::Client::new();
    let get = |path: String, key: &str| {
        let request = http.get(format!("{}{path}", t.http())).bearer_auth(key);
        async move {
            let response = request.send().await.expect("http call");
            let status = response.status();
            (status, response.json::<Value>().await.expect("json"))
        }
    };
    let (status, body) = get("/api/v1/partner_events".into(), &t.world.user_key_a).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = get(
        "/api/v1/partner_events?limit=0&filter[type][]=nope".into(),
        &t.world.service_key,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let sources: Vec<&Value> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| &e["source"]["parameter"])
        .collect();
    assert_eq!(sources, ["limit", "filter[type]"]);

    let renamed = &renames.events[0];
    let (status, body) = get(
        "/api/v1/partner_events?limit=5&filter[type][]=partner.updated".into(),
        &t.world.service_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = serde_json::json!({
        "data": [{
            "type": "partner_events",
            "id": renamed.sequence.to_string(),
            "attributes": {
                "sequence": renamed.sequence,
                "event_type": "partner.updated",
                "partner_id": a.id,
                "business_uuid": null,
                "user_uuid": null,
                "occurred_at": "<time>",
                "changed_fields": ["name"],
                "partner": body["data"][0]["attributes"]["partner"].clone(),
            },
            "relationships": {"partner": {"data": {"type": "partner", "id": a.id.to_string()}}},
        }],
        "meta": {"next_after": last},
        "links": {
            "self": "/api/v1/partner_events?after=0&filter%5Btype%5D%5B%5D=partner.updated&limit=5",
            "next": format!(
                "/api/v1/partner_events?after={last}&filter%5Btype%5D%5B%5D=partner.updated&limit=5"
            ),
        },
    });
    let mut got = body.clone();
    got["data"][0]["attributes"]["occurred_at"] = "<time>".into();
    assert_eq!(got, expected);
    let partner = &body["data"][0]["attributes"]["partner"];
    assert_eq!(partner["type"], "partner");
    assert_eq!(partner["attributes"]["name"], "Alder Two");
    assert_eq!(
        partner["attributes"]["preferred"],
        Value::Null,
        "no business in context"
    );
    let (status, next) = get(
        body["links"]["next"].as_str().expect("next").to_owned(),
        &t.world.service_key,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(next["data"], serde_json::json!([]), "nothing newer");
    assert_eq!(next["meta"]["next_after"], last);
}

/// A watcher receives a rename within the bound; reconnecting after the last sequence it
/// received, it gets what committed meanwhile, in order, without gaps or repeats.
#[tokio::test]
async fn a_watcher_sees_a_rename_in_time_and_resumes_without_gaps() {
    let t = TestApp::start().await;
    let x = t.simple_partner("Watched", &["pos"]).await;
    let mut stream = watch(&t.channel, &t.world.service_key, last_sequence(&t))
        .await
        .expect("watch");
    let started = Instant::now();
    t.rename(x.id, "Watched Once").await;
    let event = next_event(&mut stream, Duration::from_secs(2)).await;
    let latency = started.elapsed();
    assert_eq!(event.r#type, "partner.updated");
    assert_eq!(event.partner.expect("partner").name, "Watched Once");
    assert!(
        latency < Duration::from_secs(1),
        "rename to receipt (the update's own call included): {latency:?}"
    );
    drop(stream);

    let resume = event.sequence;
    t.rename(x.id, "Watched Twice").await;
    let z = t.simple_partner("Zeta", &["pos"]).await;
    t.rename(x.id, "Watched Thrice").await;
    let mut stream = watch(&t.channel, &t.world.service_key, resume)
        .await
        .expect("watch again");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_event(&mut stream, Duration::from_secs(2)).await);
    }
    let (walked, _) = walk(&t, resume, 100).await;
    assert_eq!(
        sequences(&got),
        sequences(&walked),
        "the feed's events, each once"
    );
    let names: Vec<String> = got
        .iter()
        .map(|e| e.partner.as_ref().expect("partner").name.clone())
        .collect();
    assert_eq!(names, ["Watched Twice", "Zeta", "Watched Thrice"]);
    assert_eq!(got[1].partner_id, z.id);

    // Live again: a new event after the replay; a deletion carries the partner as it was.
    t.rename(x.id, "Watched Live").await;
    let live = next_event(&mut stream, Duration::from_secs(2)).await;
    assert!(live.sequence > got[2].sequence);
    t.admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id: x.id },
            &t.world.service_key,
        ))
        .await
        .expect("delete");
    let deleted = next_event(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(deleted.r#type, "partner.deleted");
    assert_eq!(deleted.partner.expect("partner").name, "Watched Live");
}

/// A sequence older than the retention: the feed and the watch end with EVENTS_EXPIRED, REST
/// answers 400 with that code; 0 (the oldest retained) and a current sequence still work.
#[tokio::test]
async fn an_expired_sequence_gets_events_expired() {
    let t = TestApp::start().await;
    let x = t.simple_partner("Old", &["pos"]).await;
    t.rename(x.id, "Older").await;
    let last = last_sequence(&t);
    t.db.conn()
        .batch_execute(&format!(
            "DELETE FROM partner_changes; UPDATE partner_change_state SET pruned_through = {last}"
        ))
        .expect("retention passed");

    let status = events(&t.channel)
        .list_partner_events(with_key(
            pb::ListPartnerEventsRequest {
                after_sequence: 1,
                ..Default::default()
            },
            &t.world.service_key,
        ))
        .await
        .expect_err("expired");
    assert_code(&status, Code::FailedPrecondition, "EVENTS_EXPIRED");
    let mut stream = watch(&t.channel, &t.world.service_key, last - 1)
        .await
        .expect("the stream starts");
    let status = stream.message().await.expect_err("ends with a status");
    assert_code(&status, Code::FailedPrecondition, "EVENTS_EXPIRED");
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/partner_events?after=1", t.http()))
        .bearer_auth(&t.world.service_key)
        .send()
        .await
        .expect("http");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "EVENTS_EXPIRED");

    let from_the_start = page(&t, 0, 10, &[], &[]).await;
    assert!(from_the_start.events.is_empty(), "0: the oldest retained");
    assert_eq!(from_the_start.next_after_sequence, last);
    let current = page(&t, last, 10, &[], &[]).await;
    assert!(current.events.is_empty());
    assert_eq!(current.next_after_sequence, last);
}

/// 200 watchers on one process receive the same rename, while the process holds no more
/// database connections than its pool, its probe and the lists' one listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_watchers_cost_one_listener() {
    let t = TestApp::start().await;
    let x = t.simple_partner("Crowd", &["pos"]).await;
    let after = last_sequence(&t);
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(channel_to(t.grpc_addr()).await);
    }
    let mut streams = Vec::new();
    for i in 0..200 {
        streams.push(
            watch(&channels[i % 4], &t.world.service_key, after)
                .await
                .expect("watch"),
        );
    }
    let started = Instant::now();
    t.rename(x.id, "Crowd Renamed").await;
    let receipts: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let event = next_event(&mut stream, Duration::from_secs(5)).await;
                (event.sequence, started.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for receipt in receipts {
        let (sequence, latency) = receipt.await.expect("watcher");
        assert_eq!(sequence, after + 1);
        latencies.push(latency);
    }
    latencies.sort();
    let backends = t.count(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
         AND pid <> pg_backend_pid()",
    );
    eprintln!(
        "200 watchers: slowest receipt {:?} (the update's call included), {backends} backends",
        latencies[199]
    );
    // The pool, the probe, the lists' listener: never one per stream.
    let pool = i64::from(partners::config::DbConfig::for_url("postgres://x").db_pool_size);
    assert!(backends <= pool + 2, "{backends} database connections");
}

/// An idle stream gets heartbeats at the configured interval, saying where it stands, outlives
/// the request timeout, and ends with UNAVAILABLE when the server drains, without holding the
/// drain up.
#[tokio::test]
async fn idle_streams_get_heartbeats_and_end_at_shutdown() {
    // The request timeout bounds a call's answer, not a stream's life.
    let t = TestApp::start_with(ServerLimits {
        events_heartbeat_ms: 100,
        request_timeout_ms: 150,
        ..Default::default()
    })
    .await;
    t.simple_partner("Quiet", &["pos"]).await;
    let last = last_sequence(&t);
    let mut stream = watch(&t.channel, &t.world.service_key, 0)
        .await
        .expect("watch");
    let created = next_event(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(created.sequence, last);
    let started = Instant::now();
    for _ in 0..3 {
        let message = tokio::time::timeout(Duration::from_secs(2), stream.message())
            .await
            .expect("in time")
            .expect("open")
            .expect("a message");
        match message.kind {
            Some(Kind::Heartbeat(beat)) => assert_eq!(beat.after_sequence, last),
            other => panic!("not a heartbeat: {other:?}"),
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(1),
        "three heartbeats 100 ms apart took {waited:?}"
    );

    let stopping = Instant::now();
    t.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "the drain did not wait"
    );
    let ended = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => break None,
            Err(status) => break Some(status.code()),
        }
    };
    assert_eq!(ended, Some(Code::Unavailable));
}

/// With the lists' copy off there is no listener: the tail reader polls the log, and a watcher
/// still gets a rename within the bound.
#[tokio::test]
async fn without_the_lists_copy_a_watcher_still_gets_events_in_time() {
    let t = TestApp::start_with(ServerLimits {
        search_index_max_partners: 0,
        ..Default::default()
    })
    .await;
    let x = t.simple_partner("Polled", &["pos"]).await;
    let mut stream = watch(&t.channel, &t.world.service_key, last_sequence(&t))
        .await
        .expect("watch");
    let started = Instant::now();
    t.rename(x.id, "Polled Renamed").await;
    let event = next_event(&mut stream, Duration::from_secs(2)).await;
    assert_eq!(event.partner.expect("partner").name, "Polled Renamed");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
