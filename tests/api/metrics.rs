//! Prometheus metrics of a server with a metrics listener, after a mixed run: every family is
//! there with values that follow the calls made, labelled by route templates (never raw paths),
//! and no key appears.

use std::collections::HashMap;

use partners::app;
use partners::config::{DbConfig, ServerLimits};
use partners::grpc::pb;
use tonic::Code;

use crate::support::*;

/// `name{labels}` → value, for every sample line.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the samples of `name` whose labels include every `label="value"` of `with`.
fn total(samples: &HashMap<String, f64>, name: &str, with: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            (series.as_str() == name || series.starts_with(&format!("{name}{{")))
                && with.iter().all(|l| series.contains(l))
        })
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_every_family_after_a_mixed_run() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Measured", &["pos"]).await;
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (grpc, http, metrics) = (
        bind().await.expect("bind"),
        bind().await.expect("bind"),
        bind().await.expect("bind"),
    );
    let metrics_addr = metrics.local_addr().expect("addr");
    let server = app::start_with_metrics(
        &DbConfig::for_url(&t.db.url),
        &ServerLimits::default(),
        grpc,
        Some(http),
        Some(metrics),
    )
    .await
    .expect("server with metrics");
    let mut client =
        pb::partner_service_client::PartnerServiceClient::new(channel_to(server.grpc_addr).await);
    let get = |id| {
        with_key(
            pb::GetPartnerRequest {
                id,
                ..Default::default()
            },
            &t.world.user_key_a,
        )
    };
    for _ in 0..3 {
        client.get_partner(get(p.id)).await.expect("get");
    }
    let missing = client
        .get_partner(get(p.id + 1_000))
        .await
        .expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    client
        .list_partners(with_key(
            pb::ListPartnersRequest::default(),
            &t.world.user_key_a,
        ))
        .await
        .expect("list");
    client
        .create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                id: p.id,
                event_type: pb::EventType::Website as i32,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("click");
    let made_up = client
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: p.id,
                ..Default::default()
            },
            "pk_0123456789ab_0123456789abcdef0123456789abcdef",
        ))
        .await
        .expect_err("made-up key");
    assert_eq!(made_up.code(), Code::Unauthenticated);
    // A watch stream: labelled server_stream, each message counted.
    let mut watch = pb::partner_event_service_client::PartnerEventServiceClient::new(
        channel_to(server.grpc_addr).await,
    )
    .watch_partner_events(with_key(
        pb::WatchPartnerEventsRequest::default(),
        &t.world.service_key,
    ))
    .await
    .expect("watch")
    .into_inner();
    watch
        .message()
        .await
        .expect("stream")
        .expect("the creation");
    drop(watch);
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.http_addr.expect("http"));
    for path in [
        format!("/api/v1/partners/{}", p.id),
        "/api/v1/partners".into(),
    ] {
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(&t.world.user_key_a)
            .send()
            .await
            .expect("rest");
        assert_eq!(response.status().as_u16(), 200, "{path}");
    }
    let unauthenticated = http
        .get(format!("{base}/api/v1/partners"))
        .send()
        .await
        .expect("rest");
    assert_eq!(unauthenticated.status().as_u16(), 401);

    let text = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    let s = samples(&text);
    let get_partner = [
        "grpc_service=\"partners.v1.PartnerService\"",
        "grpc_method=\"GetPartner\"",
        "grpc_type=\"unary\"",
    ];
    assert!(total(&s, "grpc_server_started_total", &get_partner) >= 5.0);
    let ok = [get_partner.as_slice(), &["grpc_code=\"OK\""]].concat();
    assert!(total(&s, "grpc_server_handled_total", &ok) >= 3.0, "{text}");
    let not_found = [get_partner.as_slice(), &["grpc_code=\"NotFound\""]].concat();
    assert!(total(&s, "grpc_server_handled_total", &not_found) >= 1.0);
    assert!(total(&s, "grpc_server_handling_seconds_count", &get_partner) >= 5.0);
    // A unary call: one message in, one out when it answers OK.
    assert_eq!(
        total(&s, "grpc_server_msg_received_total", &get_partner),
        total(&s, "grpc_server_started_total", &get_partner)
    );
    assert_eq!(
        total(&s, "grpc_server_msg_sent_total", &get_partner),
        total(&s, "grpc_server_handled_total", &ok)
    );
    assert!(total(&s, "grpc_server_handling_seconds_bucket", &["le=\"+Inf\""]) >= 5.0);
    let watched = [
        "grpc_service=\"partners.v1.PartnerEventService\"",
        "grpc_method=\"WatchPartnerEvents\"",
        "grpc_type=\"server_stream\"",
    ];
    assert_eq!(
        total(&s, "grpc_server_started_total", &watched),
        1.0,
        "{text}"
    );
    assert!(
        total(&s, "grpc_server_msg_sent_total", &watched) >= 1.0,
        "{text}"
    );
    let rest_get = [
        "method=\"GET\"",
        "route=\"/api/v1/partners/{id}\"",
        "status=\"200\"",
    ];
    assert!(
        total(&s, "http_server_requests_total", &rest_get) >= 1.0,
        "{text}"
    );
    assert!(total(&s, "http_server_request_duration_seconds_count", &rest_get) >= 1.0);
    assert!(
        total(
            &s,
            "http_server_requests_total",
            &["route=\"/api/v1/partners\"", "status=\"401\""]
        ) >= 1.0
    );
    assert!(
        !text.contains(&format!("/api/v1/partners/{}\"", p.id)),
        "a raw path became a label"
    );
    assert!(total(&s, "db_pool_connections", &["state=\"idle\""]) >= 0.0);
    assert!(
        s.keys().any(|k| k.starts_with("db_pool_connections{")),
        "{text}"
    );
    assert!(total(&s, "db_checkout_wait_seconds_count", &[]) >= 1.0);
    assert!(s.contains_key("db_checkout_timeouts_total"), "{text}");
    assert_eq!(s.get("db_up"), Some(&1.0));
    assert!(total(&s, "partners_click_batch_size_count", &[]) >= 1.0);
    // A lone click makes its writer linger (and gather nothing).
    assert!(total(&s, "partners_click_lingers_total", &["outcome=\"nothing\""]) >= 1.0);
    assert!(total(&s, "partners_read_batch_size_count", &[]) >= 1.0);
    assert!(s.contains_key("partners_click_queue_depth"));
    assert_eq!(
        s.get("partners_events_streams"),
        Some(&0.0),
        "the watch ended"
    );
    assert!(
        s.get("partners_events_tail_sequence")
            .is_some_and(|v| *v >= 1.0)
    );
    assert!(total(&s, "partners_lists_total", &["answered_by=\"copy\""]) >= 1.0);
    assert!(
        s.keys()
            .any(|k| k.starts_with("partners_lists_total{answered_by=\"sql\""))
    );
    assert!(s.contains_key("partners_lists_copy_lag_seconds"));
    assert!(total(&s, "partners_lists_copy_loads_total", &[]) >= 1.0);
    assert!(
        total(
            &s,
            "partners_auth_failures_total",
            &["kind=\"unknown_or_revoked\""]
        ) >= 1.0
    );
    assert!(total(&s, "partners_auth_failures_total", &["kind=\"missing\""]) >= 1.0);
    assert!(
        s.keys()
            .any(|k| k.starts_with("partners_rate_limited_total{"))
    );
    assert_eq!(
        total(&s, "partners_build_info", &["version=\"", "git_sha=\""]),
        1.0,
        "{text}"
    );
    assert!(!text.contains("pk_"), "a key in the metrics");
    server.shutdown().await.expect("shutdown");
}
