//! Webhooks end to end: a real HTTP receiver on 127.0.0.1 (insecure targets allowed) gets the
//! change events signed as the Standard Webhooks specification says, retried with growing delays,
//! failed after the schedule and re-sent on request; secrets rotate with an overlap; user keys and
//! internal targets are refused; a server killed mid-delivery delivers after its restart, and two
//! servers deliver each attempt once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use partners::config::{ServerLimits, WebhookSettings, parse_schedule};
use partners::grpc::pb;
use partners::grpc::pb::webhook_admin_service_client::WebhookAdminServiceClient;
use partners::webhooks::signature;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::*;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    fn signed_by(&self, secret: &str) -> bool {
        signature::verify(
            secret,
            &self.id,
            self.timestamp,
            self.body.as_bytes(),
            &self.signature,
        )
    }
}

/// A webhook receiver: records every request and answers the statuses of `script` in turn (200
/// once it is spent), after `delay`.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
    delay: Arc<Mutex<Duration>>,
    /// Requests being answered now, and the most at once.
    busy: Arc<Mutex<(usize, usize)>>,
    url: String,
}

impl Receiver {
    async fn start(script: &[u16]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
        let receiver = Receiver {
            got: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().rev().copied().collect())),
            delay: Arc::default(),
            busy: Arc::default(),
            url,
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    state.got.lock().expect("lock").push(Received {
                        at: Instant::now(),
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
                        signature: header("webhook-signature"),
                        body,
                    });
                    {
                        let mut busy = state.busy.lock().expect("lock");
                        busy.0 += 1;
                        busy.1 = busy.1.max(busy.0);
                    }
                    let delay = *state.delay.lock().expect("lock");
                    tokio::time::sleep(delay).await;
                    state.busy.lock().expect("lock").0 -= 1;
                    let status = state.script.lock().expect("lock").pop().unwrap_or(200);
                    StatusCode::from_u16(status).expect("status")
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.expect("receiver") });
        receiver
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// The requests once there are at least `n` (at most `within`).
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < within,
                "{} of {n} requests within {within:?}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn settings(schedule: &str) -> ServerLimits {
    ServerLimits {
        webhooks: WebhookSettings {
            retry_schedule: parse_schedule(schedule).expect("schedule"),
            timeout_ms: 2_000,
            allow_insecure_targets: true,
            ..WebhookSettings::default()
        },
        ..ServerLimits::default()
    }
}

fn webhooks(t: &TestApp) -> WebhookAdminServiceClient<Channel> {
    WebhookAdminServiceClient::new(t.channel.clone())
}

async fn create(t: &TestApp, url: &str, types: &[&str]) -> pb::CreateWebhookEndpointResponse {
    webhooks(t)
        .create_webhook_endpoint(with_key(
            pb::CreateWebhookEndpointRequest {
                endpoint: Some(pb::WebhookEndpoint {
                    url: url.into(),
                    event_types: types.iter().map(|s| (*s).to_owned()).collect(),
                    description: "test receiver".into(),
                    ..Default::default()
                }),
            },
            &t.world.service_key,
        ))
        .await
        .expect("create endpoint")
        .into_inner()
}

async fn deliveries(t: &TestApp, endpoint: i64) -> Vec<pb::WebhookDelivery> {
    webhooks(t)
        .list_webhook_deliveries(with_key(
            pb::ListWebhookDeliveriesRequest {
                endpoint_id: endpoint,
                ..Default::default()
            },
            &t.world.service_key,
        ))
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries
}

/// The endpoint's deliveries once `done` holds for them (at most 10 s).
async fn deliveries_when(
    t: &TestApp,
    endpoint: i64,
    done: impl Fn(&[pb::WebhookDelivery]) -> bool,
) -> Vec<pb::WebhookDelivery> {
    let started = Instant::now();
    loop {
        let found = deliveries(t, endpoint).await;
        if done(&found) {
            return found;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{found:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn delivered(d: &pb::WebhookDelivery) -> bool {
    d.state == pb::WebhookDeliveryState::Delivered as i32
}

#[tokio::test]
async fn an_update_arrives_signed_at_the_receiver() {
    let t = TestApp::start_with(settings("50ms")).await;
    let p = t.simple_partner("Hooked", &["pos"]).await;
    let receiver = Receiver::start(&[]).await;
    let created = create(&t, &receiver.url, &["partner.updated"]).await;
    let endpoint = created.endpoint.expect("endpoint");
    assert!(created.secret.starts_with("whsec_"));
    assert!(endpoint.event_types == ["partner.updated"] && !endpoint.paused);

    t.rename(p.id, "Hooked Renamed").await;
    t.simple_partner("Not an update", &["pos"]).await; // partner.created: not subscribed
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    let first = &got[0];
    assert!(first.signed_by(&created.secret), "{first:?}");
    assert!(!first.signed_by(&signature::new_secret().expect("other")));
    let body = first.json();
    assert_eq!(body["type"], "partner.updated");
    let sequence = body["sequence"].as_i64().expect("sequence");
    assert_eq!(first.id, format!("msg_{}_{sequence}", endpoint.id));
    let event = &body["data"];
    assert_eq!(event["type"], "partner_events");
    assert_eq!(event["attributes"]["partner_id"], p.id);
    assert_eq!(event["attributes"]["event_type"], "partner.updated");
    assert_eq!(
        event["attributes"]["changed_fields"],
        serde_json::json!(["name"])
    );
    assert_eq!(
        event["attributes"]["partner"]["attributes"]["name"],
        "Hooked Renamed"
    );
    let now = chrono::Utc::now().timestamp();
    assert!((now - 60..=now).contains(&first.timestamp));

    let listed = deliveries_when(&t, endpoint.id, |d| d.iter().any(delivered)).await;
    assert_eq!(listed.len(), 1, "only the subscribed type: {listed:#?}");
    assert_eq!((listed[0].attempts, listed[0].last_status_code), (1, 200));
    assert_eq!(listed[0].message_id, first.id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.got().len(), 1, "delivered once");
}

#[tokio::test]
async fn failing_receivers_get_retries_on_schedule_and_failed_deliveries_can_be_resent() {
    let t = TestApp::start_with(settings("100ms,400ms")).await;
    let p = t.simple_partner("Flaky", &["pos"]).await;
    // 500 twice, then 200: three attempts.
    let receiver = Receiver::start(&[500, 500]).await;
    let endpoint = create(&t, &receiver.url, &[])
        .await
        .endpoint
        .expect("endpoint");
    t.rename(p.id, "Flaky Two").await;
    let got = receiver.wait_for(3, Duration::from_secs(5)).await;
    assert!(
        got.iter().all(|r| r.id == got[0].id),
        "one webhook-id for every attempt"
    );
    let (first_gap, second_gap) = (got[1].at - got[0].at, got[2].at - got[1].at);
    // The schedule's delays (±10% jitter) are lower bounds: a busy machine only adds to them.
    assert!(
        first_gap >= Duration::from_millis(85) && second_gap >= Duration::from_millis(350),
        "{first_gap:?}, {second_gap:?}"
    );
    let listed = deliveries_when(&t, endpoint.id, |d| d.iter().all(delivered)).await;
    assert_eq!((listed[0].attempts, listed[0].last_status_code), (3, 200));

    // 503 on both attempts (the schedule has one retry here): failed, then re-sent on request.
    let t2 = TestApp::start_with(settings("50ms")).await;
    let p2 = t2.simple_partner("Down", &["pos"]).await;
    let receiver = Receiver::start(&[503, 503]).await;
    let endpoint = create(&t2, &receiver.url, &[])
        .await
        .endpoint
        .expect("endpoint");
    t2.rename(p2.id, "Down Two").await;
    let failed = deliveries_when(&t2, endpoint.id, |d| {
        d.iter()
            .any(|d| d.state == pb::WebhookDeliveryState::Failed as i32)
    })
    .await;
    assert_eq!((failed[0].attempts, failed[0].last_status_code), (2, 503));
    assert_eq!(failed[0].last_error, "answered 503");
    let mut client = webhooks(&t2);
    let retried = client
        .retry_webhook_delivery(with_key(
            pb::RetryWebhookDeliveryRequest {
                endpoint_id: endpoint.id,
                delivery_id: failed[0].id,
            },
            &t2.world.service_key,
        ))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(retried.state, pb::WebhookDeliveryState::Pending as i32);
    let listed = deliveries_when(&t2, endpoint.id, |d| d.iter().all(delivered)).await;
    assert_eq!(listed[0].attempts, 1, "a fresh schedule");
    let again = client
        .retry_webhook_delivery(with_key(
            pb::RetryWebhookDeliveryRequest {
                endpoint_id: endpoint.id,
                delivery_id: failed[0].id,
            },
            &t2.world.service_key,
        ))
        .await
        .expect_err("delivered: nothing to retry");
    assert_code(&again, Code::FailedPrecondition, "DELIVERY_NOT_FAILED");
    assert_eq!(receiver.got().len(), 3);
}

#[tokio::test]
async fn a_partners_events_arrive_in_order_and_an_endpoint_gets_at_most_its_share_at_once() {
    let mut limits = settings("300ms");
    limits.webhooks.per_endpoint = 2;
    let t = TestApp::start_with(limits).await;
    let mut partners = Vec::new();
    for i in 0..6 {
        partners.push(t.simple_partner(&format!("Ordered {i}"), &["pos"]).await);
    }
    // The first attempt fails: the partner's next event waits for it to be delivered.
    let receiver = Receiver::start(&[500]).await;
    *receiver.delay.lock().expect("lock") = Duration::from_millis(150);
    create(&t, &receiver.url, &["partner.updated"]).await;
    t.rename(partners[0].id, "Ordered 0, first").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    t.rename(partners[0].id, "Ordered 0, second").await;
    for p in &partners[1..] {
        t.rename(p.id, &format!("{} renamed", p.name)).await;
    }
    let got = receiver.wait_for(8, Duration::from_secs(10)).await;
    let sequences: Vec<i64> = got
        .iter()
        .map(|r| r.json())
        .filter(|b| b["data"]["attributes"]["partner_id"] == partners[0].id)
        .filter_map(|b| b["sequence"].as_i64())
        .collect();
    assert_eq!(
        sequences.len(),
        3,
        "partner 0's two events, the first sent twice: {sequences:?}"
    );
    assert_eq!(
        sequences[0], sequences[1],
        "the failed first event is retried first"
    );
    assert!(
        sequences[1] < sequences[2],
        "then the second: {sequences:?}"
    );
    let most = receiver.busy.lock().expect("lock").1;
    assert!(
        most <= 2,
        "at most 2 attempts at once per endpoint, saw {most}"
    );
    assert_eq!(most, 2, "the share is used");
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_paused() {
    let mut limits = settings("20ms,20ms,20ms");
    limits.webhooks.pause_after_hours = 0;
    let t = TestApp::start_with(limits).await;
    let p = t.simple_partner("Failing", &["pos"]).await;
    let receiver = Receiver::start(&[500; 10]).await;
    let id = create(&t, &receiver.url, &[]).await.endpoint.expect("e").id;
    t.rename(p.id, "Failing Still").await;
    let started = Instant::now();
    loop {
        let endpoint = webhooks(&t)
            .get_webhook_endpoint(with_key(
                pb::GetWebhookEndpointRequest { id },
                &t.world.service_key,
            ))
            .await
            .expect("get")
            .into_inner();
        if endpoint.paused {
            assert_eq!(endpoint.paused_reason, "failing");
            assert!(endpoint.failing_since.is_some());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{endpoint:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let attempts = receiver.got().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.got().len(), attempts, "no attempts while paused");
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_until_the_overlap_ends() {
    let t = TestApp::start_with(settings("50ms")).await;
    let p = t.simple_partner("Rotating", &["pos"]).await;
    let receiver = Receiver::start(&[]).await;
    let created = create(&t, &receiver.url, &["partner.updated"]).await;
    let id = created.endpoint.expect("endpoint").id;
    let rotated = webhooks(&t)
        .rotate_webhook_secret(with_key(
            pb::RotateWebhookSecretRequest { id },
            &t.world.service_key,
        ))
        .await
        .expect("rotate")
        .into_inner();
    assert_ne!(rotated.secret, created.secret);
    assert!(rotated.previous_secret_expire_time.is_some());
    t.rename(p.id, "Rotated").await;
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert!(got[0].signed_by(&rotated.secret) && got[0].signed_by(&created.secret));
    assert_eq!(got[0].signature.split(' ').count(), 2);
}

#[tokio::test]
async fn endpoints_are_for_service_keys_and_public_https_targets() {
    let t = TestApp::start().await; // insecure targets not allowed
    let mut client = webhooks(&t);
    let request = |url: &str| pb::CreateWebhookEndpointRequest {
        endpoint: Some(pb::WebhookEndpoint {
            url: url.into(),
            ..Default::default()
        }),
    };
    for url in [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost:8443/x",
    ] {
        let status = client
            .create_webhook_endpoint(with_key(request(url), &t.world.service_key))
            .await
            .expect_err(url);
        assert_invalid(&status, &["endpoint.url"]);
    }
    let status = client
        .create_webhook_endpoint(with_key(
            request("https://hooks.example.com/x"),
            &t.world.user_key_a,
        ))
        .await
        .expect_err("user key");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .list_webhook_endpoints(with_key(
            pb::ListWebhookEndpointsRequest::default(),
            &t.world.user_key_a,
        ))
        .await
        .expect_err("user key");
    assert_eq!(status.code(), Code::PermissionDenied);

    // The endpoint's life: create, list, pause, get, delete.
    let created = client
        .create_webhook_endpoint(with_key(
            request("https://hooks.example.com/x"),
            &t.world.service_key,
        ))
        .await
        .expect("public https")
        .into_inner();
    let id = created.endpoint.expect("endpoint").id;
    let paused = client
        .update_webhook_endpoint(with_key(
            pb::UpdateWebhookEndpointRequest {
                endpoint: Some(pb::WebhookEndpoint {
                    id,
                    paused: true,
                    description: "ignored: not in the mask".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["paused".into()],
                }),
            },
            &t.world.service_key,
        ))
        .await
        .expect("pause")
        .into_inner();
    assert!(paused.paused && paused.paused_reason == "requested" && paused.description.is_empty());
    let listed = client
        .list_webhook_endpoints(with_key(
            pb::ListWebhookEndpointsRequest::default(),
            &t.world.service_key,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.endpoints.len(), 1);
    assert!(listed.next_page_token.is_empty());
    client
        .delete_webhook_endpoint(with_key(
            pb::DeleteWebhookEndpointRequest { id },
            &t.world.service_key,
        ))
        .await
        .expect("delete");
    let gone = client
        .get_webhook_endpoint(with_key(
            pb::GetWebhookEndpointRequest { id },
            &t.world.service_key,
        ))
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
}

/// Starts `partners serve` on `db_url` with webhooks to internal targets allowed.
async fn serve(db_url: &str, timeout_ms: u64) -> (tokio::process::Child, u16) {
    let timeout = timeout_ms.to_string();
    let served = spawn_serve(
        db_url,
        &[
            ("PARTNERS_WEBHOOK_ALLOW_INSECURE_TARGETS", "true"),
            ("PARTNERS_WEBHOOK_TIMEOUT_MS", &timeout),
            ("PARTNERS_WEBHOOK_RETRY_SCHEDULE", "100ms,100ms,100ms"),
            ("RUST_LOG", "warn"),
        ],
        false,
    )
    .await;
    (served.child, served.grpc_port)
}

/// Renames partner `id` through the gRPC server on `port`.
async fn rename_on(port: u16, key: &str, id: i64, name: &str) {
    let channel = channel_to(format!("127.0.0.1:{port}").parse().expect("addr")).await;
    pb::partner_admin_service_client::PartnerAdminServiceClient::new(channel)
        .update_partner(with_key(
            pb::UpdatePartnerRequest {
                partner: Some(pb::Partner {
                    id,
                    name: name.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
            },
            key,
        ))
        .await
        .expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_a_killed_server_and_two_servers_send_each_attempt_once() {
    let mut t = TestApp::start_with(settings("50ms")).await;
    let mut partners = Vec::new();
    for i in 0..10 {
        partners.push(t.simple_partner(&format!("Replica {i}"), &["pos"]).await);
    }
    let receiver = Receiver::start(&[]).await;
    create(&t, &receiver.url, &["partner.updated"]).await;
    // Only the spawned servers dispatch from here on.
    if let Some(app) = t.app.take() {
        app.shutdown().await.expect("clean shutdown");
    }
    let key = t.world.service_key.clone();

    // The first attempt hangs at the receiver; its server is killed (-9) meanwhile.
    *receiver.delay.lock().expect("lock") = Duration::from_secs(3);
    let (mut first, grpc) = serve(&t.db.url, 1_000).await;
    rename_on(grpc, &key, partners[0].id, "Killed Mid-Delivery").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    first.start_kill().expect("kill -9");
    first.wait().await.expect("exit");
    *receiver.delay.lock().expect("lock") = Duration::ZERO;

    // Two servers: the killed attempt is made again once its lease ends, and nine more renames,
    // made through either, are each delivered once.
    let (_a, grpc_a) = serve(&t.db.url, 1_000).await;
    let (_b, grpc_b) = serve(&t.db.url, 1_000).await;
    for (i, p) in partners.iter().enumerate().skip(1) {
        let port = if i % 2 == 0 { grpc_a } else { grpc_b };
        rename_on(port, &key, p.id, &format!("Twice Served {i}")).await;
    }
    receiver.wait_for(11, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for r in receiver.got() {
        *by_id.entry(r.id).or_default() += 1;
    }
    assert_eq!(
        by_id.len(),
        partners.len(),
        "every event delivered: {by_id:?}"
    );
    let twice: Vec<_> = by_id.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(
        twice.len(),
        1,
        "the killed attempt is made again, every other attempt once: {by_id:?}"
    );
    assert_eq!(*twice[0].1, 2);
}

#[tokio::test]
async fn endpoints_and_deliveries_over_rest() {
    let t = TestApp::start_with(settings("50ms")).await;
    let p = t.simple_partner("Restful", &["pos"]).await;
    let receiver = Receiver::start(&[]).await;
    let http = reqwest::Client::new();
    let api = format!("{}/api/v1/webhook_endpoints", t.http());
    let body = |attributes: serde_json::Value| serde_json::json!({"data": {"type": "webhook_endpoints", "attributes": attributes}});

    let refused = http
        .post(&api)
        .bearer_auth(&t.world.user_key_a)
        .json(&body(serde_json::json!({"url": receiver.url})))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 403);
    let invalid = http
        .post(&api)
        .bearer_auth(&t.world.service_key)
        .json(&body(
            serde_json::json!({"url": receiver.url, "event_types": ["partner.renamed"]}),
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(invalid.status(), 400);
    let errors: serde_json::Value = invalid.json().await.expect("json");
    assert_eq!(
        errors["errors"][0]["source"]["pointer"],
        "/data/attributes/event_types/0"
    );

    let created = http
        .post(&api)
        .bearer_auth(&t.world.service_key)
        .json(&body(serde_json::json!({
            "url": receiver.url, "event_types": ["partner.updated"], "paused": true
        })))
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let created: serde_json::Value = created.json().await.expect("json");
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/api/v1/webhook_endpoints/{id}"));
    let secret = created["meta"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_eq!(created["data"]["attributes"]["paused_reason"], "requested");

    // Paused: the rename waits; resumed: it arrives.
    t.rename(p.id, "Restful Renamed").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(receiver.got().is_empty(), "paused endpoints get nothing");
    let resumed: serde_json::Value = http
        .patch(format!("{api}/{id}"))
        .bearer_auth(&t.world.service_key)
        .json(&body(serde_json::json!({"paused": false})))
        .send()
        .await
        .expect("patch")
        .json()
        .await
        .expect("json");
    assert_eq!(resumed["data"]["attributes"]["paused"], false);
    assert!(
        resumed.get("meta").is_none(),
        "no secret outside create and rotate"
    );
    let got = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert!(got[0].signed_by(&secret));

    let deliveries_url = format!("{api}/{id}/deliveries?filter[state]=delivered");
    let started = Instant::now();
    let listed = loop {
        let listed: serde_json::Value = http
            .get(&deliveries_url)
            .bearer_auth(&t.world.service_key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if listed["data"].as_array().is_some_and(|d| !d.is_empty()) {
            break listed;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let delivery = &listed["data"][0];
    assert_eq!(delivery["type"], "webhook_deliveries");
    assert_eq!(delivery["attributes"]["last_status_code"], 200);
    assert_eq!(delivery["attributes"]["message_id"], got[0].id.as_str());
    assert!(listed["links"]["next"].is_null());

    let not_failed = http
        .post(format!(
            "{api}/{id}/deliveries/{}/retry",
            delivery["id"].as_str().expect("id")
        ))
        .bearer_auth(&t.world.service_key)
        .send()
        .await
        .expect("retry");
    assert_eq!(not_failed.status(), 400);
    let errors: serde_json::Value = not_failed.json().await.expect("json");
    assert_eq!(errors["errors"][0]["code"], "DELIVERY_NOT_FAILED");

    let rotated: serde_json::Value = http
        .post(format!("{api}/{id}/rotate_secret"))
        .bearer_auth(&t.world.service_key)
        .send()
        .await
        .expect("rotate")
        .json()
        .await
        .expect("json");
    assert_ne!(rotated["meta"]["secret"], secret.as_str());
    assert!(rotated["meta"]["previous_secret_expires_at"].is_string());

    let listed: serde_json::Value = http
        .get(&api)
        .bearer_auth(&t.world.service_key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
    let deleted = http
        .delete(format!("{api}/{id}"))
        .bearer_auth(&t.world.service_key)
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 204);
    let gone = http
        .get(format!("{api}/{id}"))
        .bearer_auth(&t.world.service_key)
        .send()
        .await
        .expect("get");
    assert_eq!(gone.status(), 404);
}
