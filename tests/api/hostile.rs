//! A sweep of malformed requests over every REST route: no answer is a 5xx, nothing panics, and
//! the server keeps serving.

use reqwest::{Method, StatusCode};

use crate::support::*;

#[tokio::test]
async fn malformed_requests_on_every_route_never_get_a_5xx() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Target", &["pos"]).await;
    let http = reqwest::Client::new();
    let ids = [
        "1",
        "abc",
        "-1",
        "0",
        "99999999999999999999",
        "%ZZ",
        "1%00",
        "1.5",
        &p.id.to_string(),
    ];
    let queries = [
        "",
        "page=x&per_page=-5",
        "%%%&&==",
        "filter[=1&filter]=2&filter[categories][][]=3",
        "include=,,,&sort=,-,--name",
        "search=%00%01%02",
        "business_uuid=not-a-uuid&filter[preferred]=yes",
        "after=99999999999999999999&limit=-1&filter[type][]=%00&filter[partner_id][]=x",
    ];
    let long_value = format!("filter[categories][]={}", "x".repeat(10_000));
    let bodies: Vec<(Option<&str>, Vec<u8>)> = vec![
        (Some("application/json"), b"{".to_vec()),
        (Some("application/json"), b"[]".to_vec()),
        (Some("application/json"), b"null".to_vec()),
        (Some("application/json"), b"{\"data\": []}".to_vec()),
        (
            Some("application/json"),
            b"{\"data\": {\"type\": 5, \"attributes\": []}}".to_vec(),
        ),
        (
            Some("application/json"),
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
        ),
        (Some("application/json"), vec![0xff, 0xfe, 0x00, 0x7b]),
        (Some("text/plain"), b"{}".to_vec()),
        (Some("application/json; charset=utf-16"), b"{}".to_vec()),
        (None, b"{\"filter\": 1}".to_vec()),
        (
            Some("application/vnd.api+json"),
            b"{\"filter\": {\"categories\": {\"a\": 1}}, \"page\": [1]}".to_vec(),
        ),
    ];
    let keys = [
        format!("Bearer {}", t.world.service_key),
        format!("Bearer {}", t.world.user_key_a),
        "Bearer pk_zzzz".to_owned(),
        "garbage".to_owned(),
    ];
    let (mut sent, mut by_status) = (0, std::collections::BTreeMap::new());
    let routes = partners::gateway::openapi::operations();
    assert_eq!(routes.len(), 33, "every route is swept: {routes:?}");
    for (n, (method, template)) in routes.iter().enumerate() {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        for (i, id) in ids.iter().enumerate() {
            for (j, query) in queries.iter().chain([&long_value.as_str()]).enumerate() {
                let url = format!(
                    "{}{}?{query}",
                    t.http(),
                    template.replace("{id}", id).replace("{external_id}", id)
                );
                let (content_type, body) = &bodies[(i + j + n) % bodies.len()];
                let mut request = http
                    .request(method.clone(), url)
                    .header("authorization", &keys[(i + j) % keys.len()])
                    .header("x-user-uuid", if j % 3 == 0 { "nope" } else { "" })
                    .body(body.clone());
                if let Some(ct) = content_type {
                    request = request.header("content-type", *ct);
                }
                let status = request.send().await.expect("answer").status();
                sent += 1;
                *by_status.entry(status.as_u16()).or_insert(0) += 1;
                assert!(
                    !status.is_server_error(),
                    "{method} {template} id={id} query={query:.40}: {status}"
                );
            }
        }
    }
    eprintln!("hostile sweep: {sent} requests, statuses {by_status:?}");
    let ok = http
        .get(format!("{}/api/v1/partners/{}", t.http(), p.id))
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("still serving");
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn nul_and_control_characters_are_client_errors_not_500s() {
    let t = TestApp::start().await;
    let http = reqwest::Client::new();
    let b = t.world.business_a;
    for query in [
        "search=a%00b",
        "search=%07",
        "filter[categories][]=a%00",
        "sort=name%00",
    ] {
        let status = http
            .get(format!(
                "{}/api/v1/partners?business_uuid={b}&{query}",
                t.http()
            ))
            .bearer_auth(&t.world.service_key)
            .send()
            .await
            .expect("answer")
            .status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }
    for attributes in [
        serde_json::json!({"name": "a\u{0}b"}),
        serde_json::json!({"name": "ok", "description": "line\u{0}"}),
        serde_json::json!({"name": "ok", "email": "a\u{0}@b.example"}),
        serde_json::json!({"name": "ok", "metadata": {"k": "a\u{0}b"}}),
        serde_json::json!({"name": "ok", "metadata": {"k\u{0}": 1}}),
        serde_json::json!({"name": "ok", "external_id": "x\u{0}"}),
        serde_json::json!({"name": "ok", "metadata": {"huge": 1.7976931348623155e308}}),
    ] {
        let status = http
            .post(format!("{}/api/v1/partners", t.http()))
            .bearer_auth(&t.world.service_key)
            .json(&serde_json::json!({"data": {"type": "partner", "attributes": attributes}}))
            .send()
            .await
            .expect("answer")
            .status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{attributes}");
    }
    // Newlines and tabs are fine in a description.
    let status = http
        .post(format!("{}/api/v1/partners", t.http()))
        .bearer_auth(&t.world.service_key)
        .json(&serde_json::json!({"data": {"type": "partner", "attributes": {"name": "ok", "description": "a\nb\tc"}}}))
        .send()
        .await
        .expect("answer")
        .status();
    assert_eq!(status, StatusCode::CREATED);
}
