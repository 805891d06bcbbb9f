//! Tenant isolation matrix: with a user key of business A, every route and RPC, aimed at business
//! B's objects, answers NOT_FOUND / 404, and no successful answer carries B's uuids.

use partners::grpc::pb;
use reqwest::Method;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn a_user_key_never_sees_another_business() {
    let t = TestApp::start().await;
    let shared = t.simple_partner("Shared", &["pos", "wholesaler"]).await;
    // Business B's data on the shared partner: preference, integration, a connected user, clicks.
    t.prefer(t.world.business_b, shared.id).await;
    t.integrate(t.world.business_b, shared.id, pb::IntegrationStatus::Active)
        .await;
    t.connect(&t.world.user_key_b, shared.id).await;
    t.client()
        .create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                id: shared.id,
                event_type: 1,
                request_id: "b-1".into(),
                ..Default::default()
            },
            &t.world.user_key_b,
        ))
        .await
        .expect("b click");
    let key = t.world.user_key_a.clone();
    let b = t.world.business_b.to_string();
    let foreign = [t.world.business_b.to_string(), t.world.user_b.to_string()];
    let include = vec!["users".to_owned(), "partner_integrations".to_owned()];

    // gRPC, naming business B: NOT_FOUND everywhere it can be named.
    let mut c = t.client();
    let named: Vec<Result<(), tonic::Status>> = vec![
        c.list_partners(with_key(
            pb::ListPartnersRequest {
                business_uuid: b.clone(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .map(|_| ()),
        c.list_available_partners(with_key(
            pb::ListAvailablePartnersRequest {
                business_uuid: b.clone(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .map(|_| ()),
        c.list_wholesalers(with_key(
            pb::ListWholesalersRequest {
                business_uuid: b.clone(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .map(|_| ()),
        c.get_partner(with_key(
            pb::GetPartnerRequest {
                id: shared.id,
                business_uuid: b.clone(),
                include: include.clone(),
            },
            &key,
        ))
        .await
        .map(|_| ()),
        c.create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                id: shared.id,
                event_type: 1,
                business_uuid: b.clone(),
                ..Default::default()
            },
            &key,
        ))
        .await
        .map(|_| ()),
    ];
    for result in named {
        assert_code(
            &result.expect_err("foreign business"),
            Code::NotFound,
            "NOT_FOUND",
        );
    }
    // gRPC, own context (even when claiming B's user via x-user-uuid, which user keys cannot use):
    // answers succeed and never mention B.
    let own = [
        format!(
            "{:?}",
            c.list_partners(as_user(
                pb::ListPartnersRequest {
                    include: include.clone(),
                    ..Default::default()
                },
                &key,
                t.world.user_b
            ))
            .await
            .expect("list")
            .into_inner()
        ),
        format!(
            "{:?}",
            c.list_available_partners(with_key(
                pb::ListAvailablePartnersRequest {
                    include: include.clone(),
                    ..Default::default()
                },
                &key
            ))
            .await
            .expect("available")
            .into_inner()
        ),
        format!(
            "{:?}",
            c.list_wholesalers(with_key(
                pb::ListWholesalersRequest {
                    include: include.clone(),
                    ..Default::default()
                },
                &key
            ))
            .await
            .expect("wholesalers")
            .into_inner()
        ),
        format!(
            "{:?}",
            c.get_partner(as_user(
                pb::GetPartnerRequest {
                    id: shared.id,
                    include: include.clone(),
                    ..Default::default()
                },
                &key,
                t.world.user_b
            ))
            .await
            .expect("get")
            .into_inner()
        ),
        format!(
            "{:?}",
            c.connect_user(as_user(
                pb::ConnectUserRequest { id: shared.id },
                &key,
                t.world.user_b
            ))
            .await
            .expect("connect")
            .into_inner()
        ),
        format!(
            "{:?}",
            c.disconnect_user(with_key(pb::DisconnectUserRequest { id: shared.id }, &key))
                .await
                .expect("disconnect")
                .into_inner()
        ),
        format!(
            "{:?}",
            c.create_partner_click_event(as_user(
                pb::CreatePartnerClickEventRequest {
                    id: shared.id,
                    event_type: 2,
                    ..Default::default()
                },
                &key,
                t.world.user_b
            ))
            .await
            .expect("click")
            .into_inner()
        ),
    ];
    for answer in &own {
        for uuid in &foreign {
            assert!(
                !answer.contains(uuid.as_str()),
                "B's uuid {uuid} leaked: {answer}"
            );
        }
        assert!(
            !answer.contains("preferred: Some(true)") && !answer.contains("integration_status: 2"),
            "B's context leaked: {answer}"
        );
    }
    // B's connection is still B's: A's disconnect did not touch it.
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_users"), 1);

    // REST, the same matrix.
    let http = reqwest::Client::new();
    let id = shared.id;
    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (
            Method::GET,
            format!("/api/v1/partners?business_uuid={b}&include=users,partner_integrations"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/partners/available?business_uuid={b}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/partners/wholesalers?business_uuid={b}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/partners/{id}?business_uuid={b}&include=users"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/partners/{id}/click_event?business_uuid={b}"),
            Some(
                serde_json::json!({"data": {"type": "partner_click_events", "attributes": {"event_type": "video"}}}),
            ),
        ),
    ];
    for (method, path, body) in routes {
        let mut request = http
            .request(method.clone(), format!("{}{path}", t.http()))
            .bearer_auth(&key);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.expect("http");
        assert_eq!(response.status().as_u16(), 404, "{method} {path}");
    }
    for path in [
        "/api/v1/partners?include=users,partner_integrations".to_owned(),
        "/api/v1/partners/available?include=users,partner_integrations".to_owned(),
        "/api/v1/partners/wholesalers?include=users,partner_integrations".to_owned(),
        format!("/api/v1/partners/{id}?include=users,partner_integrations"),
    ] {
        let response = http
            .get(format!("{}{path}", t.http()))
            .bearer_auth(&key)
            .header("x-user-uuid", t.world.user_b.to_string())
            .send()
            .await
            .expect("http");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let text = response.text().await.expect("body");
        for uuid in &foreign {
            assert!(
                !text.contains(uuid.as_str()),
                "B's uuid leaked through {path}: {text}"
            );
        }
    }
    // Admin routes refuse user keys.
    for (method, path) in [
        (Method::POST, "/api/v1/partners".to_owned()),
        (Method::PATCH, format!("/api/v1/partners/{id}")),
        (Method::DELETE, format!("/api/v1/partners/{id}")),
    ] {
        let response = http
            .request(method.clone(), format!("{}{path}", t.http()))
            .bearer_auth(&key)
            .json(&serde_json::json!({"data": {"type": "partner", "attributes": {"name": "x"}}}))
            .send()
            .await
            .expect("http");
        assert_eq!(response.status().as_u16(), 403, "{method} {path}");
    }
}
