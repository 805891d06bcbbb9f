//! The click analytics reads over gRPC and REST: time series buckets (zeros, a non-UTC zone
//! across a daylight-saving change, a half-hour zone), top partners, raw events by cursor, and
//! business isolation of each.

use diesel::connection::SimpleConnection;
use partners::grpc::pb;
use prost_types::Timestamp;
use tonic::Code;

use crate::click_batch::{batch, entry};
use crate::support::*;

fn at(rfc3339: &str) -> Option<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).expect("time");
    Some(Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    })
}

fn text(t: &Option<Timestamp>) -> String {
    let t = t.as_ref().expect("time");
    chrono::DateTime::from_timestamp(t.seconds, 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%MZ")
        .to_string()
}

/// Rollup rows as the batch statement writes them: (partner, business uuid or none, type, hour, clicks).
fn rollups(t: &TestApp, rows: &[(i64, Option<uuid::Uuid>, &str, &str, i64)]) {
    let values: Vec<String> = rows
        .iter()
        .map(|(p, b, kind, hour, n)| {
            let business = b.map_or("0".to_owned(), |b| {
                format!("(SELECT id FROM businesses WHERE uuid = '{b}')")
            });
            format!("({p}, {business}, '{kind}', '{hour}', {n})")
        })
        .collect();
    t.db.conn()
        .batch_execute(&format!(
            "INSERT INTO partner_click_rollups (partner_id, business_id, event_type, hour, clicks) VALUES {}",
            values.join(", ")
        ))
        .expect("rollups");
}

/// (start, clicks, website, video) of each bucket.
fn buckets(r: &pb::GetPartnerClickStatsResponse) -> Vec<(String, i64, i64, i64)> {
    r.buckets
        .iter()
        .map(|b| {
            let c = b.counts.expect("counts");
            (text(&b.start), c.clicks, c.website_clicks, c.video_clicks)
        })
        .collect()
}

async fn stats(
    t: &TestApp,
    key: &str,
    request: pb::GetPartnerClickStatsRequest,
) -> Result<pb::GetPartnerClickStatsResponse, tonic::Status> {
    t.client()
        .get_partner_click_stats(with_key(request, key))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn day_buckets_follow_the_zone_across_a_daylight_saving_change_with_zeros() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Series", &["pos"]).await;
    let (a, b) = (Some(t.world.business_a), Some(t.world.business_b));
    // Berlin leaves summer time on 2026-10-25 at 01:00 UTC: that day has 25 hours, from
    // 2026-10-24T22:00Z to 2026-10-25T23:00Z.
    rollups(
        &t,
        &[
            (p.id, a, "website", "2026-10-24T21:00Z", 1), // 23:00 on the 24th
            (p.id, a, "website", "2026-10-24T22:00Z", 2), // midnight: the 25th
            (p.id, a, "video", "2026-10-25T22:00Z", 3),   // 23:00 CET, still the 25th
            (p.id, a, "website", "2026-10-25T23:00Z", 4), // midnight: the 26th
            (p.id, b, "website", "2026-10-25T12:00Z", 50), // another business
        ],
    );
    let request = pb::GetPartnerClickStatsRequest {
        partner_id: p.id,
        since: at("2026-10-24T00:00:00Z"),
        until: at("2026-10-28T00:00:00Z"),
        bucket: pb::ClickBucket::Day as i32,
        time_zone: "Europe/Berlin".into(),
        ..Default::default()
    };
    let answer = stats(&t, &t.world.user_key_a, request.clone())
        .await
        .expect("stats");
    assert_eq!(
        buckets(&answer),
        [
            ("2026-10-23T22:00Z".into(), 1, 1, 0),
            ("2026-10-24T22:00Z".into(), 5, 2, 3),
            ("2026-10-25T23:00Z".into(), 4, 4, 0),
            ("2026-10-26T23:00Z".into(), 0, 0, 0),
            ("2026-10-27T23:00Z".into(), 0, 0, 0),
        ]
    );
    assert_eq!(answer.totals.expect("totals").clicks, 10);
    assert_eq!(answer.business_uuid, t.world.business_a.to_string());
    // The other business's user sees its own clicks only; a service key sees all.
    let other = stats(&t, &t.world.user_key_b, request.clone())
        .await
        .expect("stats");
    assert_eq!(other.totals.expect("totals").clicks, 50);
    let all = stats(&t, &t.world.service_key, request.clone())
        .await
        .expect("stats");
    assert_eq!(all.totals.expect("totals").clicks, 60);
    // A user key naming another business finds nothing to show.
    let hidden = stats(
        &t,
        &t.world.user_key_a,
        pb::GetPartnerClickStatsRequest {
            business_uuid: t.world.business_b.to_string(),
            ..request.clone()
        },
    )
    .await
    .expect_err("another business");
    assert_eq!(hidden.code(), Code::NotFound);
    // In UTC the same clicks fall into other days.
    let utc = stats(
        &t,
        &t.world.service_key,
        pb::GetPartnerClickStatsRequest {
            time_zone: String::new(),
            ..request
        },
    )
    .await
    .expect("stats");
    assert_eq!(
        buckets(&utc).into_iter().map(|b| b.1).collect::<Vec<_>>(),
        [3, 57, 0, 0]
    );
}

#[tokio::test]
async fn hour_buckets_of_a_half_hour_zone_start_at_half_past() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Kolkata", &["pos"]).await;
    rollups(
        &t,
        &[
            (p.id, None, "website", "2026-10-24T00:00Z", 1),
            (p.id, None, "video", "2026-10-24T02:00Z", 2),
        ],
    );
    let answer = stats(
        &t,
        &t.world.service_key,
        pb::GetPartnerClickStatsRequest {
            partner_id: p.id,
            since: at("2026-10-24T00:00:00Z"),
            until: at("2026-10-24T03:00:00Z"),
            bucket: pb::ClickBucket::Hour as i32,
            time_zone: "Asia/Kolkata".into(),
            ..Default::default()
        },
    )
    .await
    .expect("stats");
    // Each hour counts in the bucket it starts in.
    assert_eq!(
        buckets(&answer),
        [
            ("2026-10-23T23:30Z".into(), 1, 1, 0),
            ("2026-10-24T00:30Z".into(), 0, 0, 0),
            ("2026-10-24T01:30Z".into(), 2, 0, 2),
            ("2026-10-24T02:30Z".into(), 0, 0, 0),
        ]
    );
}

#[tokio::test]
async fn clicks_recorded_now_show_in_the_default_range_and_bad_requests_name_their_field() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Now", &["pos"]).await;
    batch(
        &t,
        &t.world.user_key_a,
        vec![
            entry(p.id, pb::EventType::Website, ""),
            entry(p.id, pb::EventType::Video, ""),
        ],
    )
    .await;
    let answer = stats(
        &t,
        &t.world.user_key_a,
        pb::GetPartnerClickStatsRequest {
            partner_id: p.id,
            ..Default::default()
        },
    )
    .await
    .expect("stats");
    assert_eq!(answer.bucket, pb::ClickBucket::Day as i32);
    assert!(
        (30..=31).contains(&answer.buckets.len()),
        "{}",
        answer.buckets.len()
    );
    let last = answer.buckets.last().and_then(|b| b.counts);
    assert_eq!(last.map(|c| c.clicks), Some(2));
    let bad = |request| async {
        stats(&t, &t.world.user_key_a, request)
            .await
            .expect_err("bad")
    };
    let status = bad(pb::GetPartnerClickStatsRequest {
        partner_id: p.id,
        since: at("2026-10-24T00:00:00Z"),
        until: at("2026-10-24T00:00:00Z"),
        ..Default::default()
    })
    .await;
    assert_invalid(&status, &["since"]);
    let status = bad(pb::GetPartnerClickStatsRequest {
        partner_id: p.id,
        time_zone: "Mars/Olympus_Mons".into(),
        ..Default::default()
    })
    .await;
    assert_invalid(&status, &["time_zone"]);
    let status = bad(pb::GetPartnerClickStatsRequest {
        partner_id: 999_999,
        ..Default::default()
    })
    .await;
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn top_partners_come_most_clicked_first_per_business_and_paged() {
    let t = TestApp::start().await;
    let x = t.simple_partner("X", &["pos"]).await;
    let y = t.simple_partner("Y", &["pos"]).await;
    let z = t.simple_partner("Z", &["pos"]).await;
    let (a, b) = (Some(t.world.business_a), Some(t.world.business_b));
    rollups(
        &t,
        &[
            (x.id, a, "website", "2026-10-24T10:00Z", 3),
            (y.id, a, "website", "2026-10-24T10:00Z", 2),
            (y.id, a, "video", "2026-10-24T11:00Z", 3),
            (z.id, a, "video", "2026-10-24T12:00Z", 3),
            (z.id, b, "website", "2026-10-24T12:00Z", 100),
            (x.id, a, "website", "2026-10-30T12:00Z", 100), // outside the range
        ],
    );
    let top = |key: &str, page: i32, business: &str| {
        let mut client = t.client();
        let request = with_key(
            pb::ListTopPartnersByClicksRequest {
                business_uuid: business.to_owned(),
                since: at("2026-10-24T00:00:00Z"),
                until: at("2026-10-25T00:00:00Z"),
                page: Some(page),
                per_page: Some(2),
            },
            key,
        );
        async move {
            client
                .list_top_partners_by_clicks(request)
                .await
                .expect("top")
                .into_inner()
        }
    };
    let rows = |r: &pb::ListTopPartnersByClicksResponse| -> Vec<(i64, i64, i64, i64)> {
        r.partners
            .iter()
            .map(|p| {
                let c = p.counts.expect("counts");
                (p.partner_id, c.clicks, c.website_clicks, c.video_clicks)
            })
            .collect()
    };
    let first = top(&t.world.user_key_a, 1, "").await;
    // y has 5; x and z 3 each, x first by id.
    assert_eq!(rows(&first), [(y.id, 5, 2, 3), (x.id, 3, 3, 0)]);
    let meta = first.meta.expect("meta");
    assert_eq!(
        (
            meta.total.expect("total"),
            meta.total_pages.expect("total pages")
        ),
        (3, 2)
    );
    let second = top(&t.world.user_key_a, 2, "").await;
    assert_eq!(rows(&second), [(z.id, 3, 0, 3)]);
    assert_eq!(second.partners[0].name, "Z");
    // A page past the end still tells the total.
    let past = top(&t.world.user_key_a, 3, "").await;
    assert!(past.partners.is_empty());
    assert_eq!(past.meta.expect("meta").total, Some(3));
    // Business b's user sees b's clicks only; a service key all, or one business's.
    assert_eq!(
        rows(&top(&t.world.user_key_b, 1, "").await),
        [(z.id, 100, 100, 0)]
    );
    assert_eq!(
        rows(&top(&t.world.service_key, 1, "").await),
        [(z.id, 103, 100, 3), (y.id, 5, 2, 3)]
    );
    assert_eq!(
        rows(&top(&t.world.service_key, 1, &t.world.business_b.to_string()).await),
        [(z.id, 100, 100, 0)]
    );
}

#[tokio::test]
async fn click_events_walk_newest_first_by_signed_cursor_without_repeats() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Walk", &["pos"]).await;
    let q = t.simple_partner("Other", &["pos"]).await;
    for _ in 0..3 {
        let events = (0..8)
            .map(|i| entry(if i == 7 { q.id } else { p.id }, pb::EventType::Website, ""))
            .collect();
        batch(&t, &t.world.user_key_a, events).await;
    }
    batch(
        &t,
        &t.world.user_key_b,
        vec![entry(p.id, pb::EventType::Video, "")],
    )
    .await;
    let list = |key: &str, partner_id: i64, token: String| {
        let mut client = t.client();
        let request = with_key(
            pb::ListPartnerClickEventsRequest {
                partner_id,
                page_size: 4,
                page_token: token,
                ..Default::default()
            },
            key,
        );
        async move {
            client
                .list_partner_click_events(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = list(&t.world.user_key_a, p.id, token).await.expect("page");
        pages += 1;
        for e in &page.events {
            assert_eq!(
                (e.partner_id, e.business_uuid.as_str()),
                (p.id, t.world.business_a.to_string().as_str())
            );
        }
        seen.extend(
            page.events
                .iter()
                .map(|e| (e.created_at.map(|c| (c.seconds, c.nanos)), e.id)),
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        assert!(pages < 10, "the walk ends");
    }
    // 21 of business a on p, in (created_at, id) descending order, none twice.
    assert_eq!(seen.len(), 21);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    sorted.dedup();
    assert_eq!(seen, sorted);
    // Business b's user sees its one event on p; a service key all 22.
    let b = list(&t.world.user_key_b, p.id, String::new())
        .await
        .expect("b");
    assert_eq!(b.events.len(), 1);
    assert_eq!(b.events[0].user_uuid, t.world.user_b.to_string());
    // A token is bound to its list and cannot be altered.
    let first = list(&t.world.user_key_a, p.id, String::new())
        .await
        .expect("page");
    let other_list = list(&t.world.user_key_a, q.id, first.next_page_token.clone())
        .await
        .expect_err("token of another list");
    assert_invalid(&other_list, &["page_token"]);
    let mut altered = first.next_page_token.into_bytes();
    altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
    let tampered = list(
        &t.world.user_key_a,
        p.id,
        String::from_utf8(altered).expect("ascii"),
    )
    .await
    .expect_err("altered token");
    assert_invalid(&tampered, &["page_token"]);
    // A service key must name a partner or a business.
    let unscoped = list(&t.world.service_key, 0, String::new())
        .await
        .expect_err("nothing named");
    assert_invalid(&unscoped, &["partner_id"]);
}

#[tokio::test]
async fn the_click_reads_answer_over_rest_with_isolation() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Rest reads", &["pos"]).await;
    let a = Some(t.world.business_a);
    rollups(
        &t,
        &[
            (p.id, a, "website", "2026-10-24T22:00Z", 2),
            (
                p.id,
                Some(t.world.business_b),
                "video",
                "2026-10-24T22:00Z",
                7,
            ),
        ],
    );
    for _ in 0..3 {
        batch(
            &t,
            &t.world.user_key_a,
            vec![entry(p.id, pb::EventType::Video, "")],
        )
        .await;
    }
    let http = reqwest::Client::new();
    let get = |path: String, key: String| {
        let request = http.get(format!("{}{path}", t.http())).bearer_auth(key);
        async move {
            let response = request.send().await.expect("answer");
            let status = response.status();
            (
                status,
                response.json::<serde_json::Value>().await.expect("json"),
            )
        }
    };
    let (status, doc) = get(
        format!(
            "/api/v1/partners/{}/click_stats?since=2026-10-24T00:00:00Z&until=2026-10-26T00:00:00Z&time_zone=Europe/Berlin",
            p.id
        ),
        t.world.user_key_a.clone(),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{doc}");
    let attributes = &doc["data"]["attributes"];
    assert_eq!(attributes["bucket"], "day");
    assert_eq!(attributes["business_uuid"], t.world.business_a.to_string());
    assert_eq!(
        attributes["buckets"],
        serde_json::json!([
            {"start": "2026-10-23T22:00:00Z", "clicks": 0, "website_clicks": 0, "video_clicks": 0},
            {"start": "2026-10-24T22:00:00Z", "clicks": 2, "website_clicks": 2, "video_clicks": 0},
            {"start": "2026-10-25T23:00:00Z", "clicks": 0, "website_clicks": 0, "video_clicks": 0}
        ])
    );
    let (status, doc) = get(
        format!("/api/v1/partners/{}/click_stats?bucket=fortnight", p.id),
        t.world.user_key_a.clone(),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(doc["errors"][0]["source"]["parameter"], "bucket");
    // Top partners: business b's user counts b's clicks only.
    let (_, doc) = get(
        "/api/v1/partner_click_stats/top_partners?since=2026-10-24T00:00:00Z&until=2026-10-26T00:00:00Z".into(),
        t.world.user_key_b.clone(),
    )
    .await;
    assert_eq!(doc["data"][0]["attributes"]["clicks"], 7, "{doc}");
    assert_eq!(doc["meta"]["total"], 1);
    // The events, two per page, followed by links.next; b's user sees none of a's.
    let mut path = format!(
        "/api/v1/partner_click_events?partner_id={}&page_size=2",
        p.id
    );
    let mut ids = Vec::new();
    loop {
        let (status, doc) = get(path.clone(), t.world.user_key_a.clone()).await;
        assert_eq!(status, reqwest::StatusCode::OK, "{doc}");
        ids.extend(
            doc["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|e| e["id"].clone()),
        );
        match doc["links"]["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(ids.len(), 3);
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let (_, doc) = get(
        format!("/api/v1/partner_click_events?partner_id={}", p.id),
        t.world.user_key_b.clone(),
    )
    .await;
    assert_eq!(doc["data"], serde_json::json!([]));
}
