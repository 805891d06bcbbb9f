//! The REST gateway over real HTTP: the seed's request shapes, whole JSON:API documents, each
//! error class, isolation, and the remote (`partners gateway --upstream`) transport.

use partners::grpc::pb;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::support::*;

struct Rest<'a> {
    t: &'a TestApp,
    http: Client,
}

impl<'a> Rest<'a> {
    fn new(t: &'a TestApp) -> Self {
        Rest {
            t,
            http: Client::new(),
        }
    }

    fn request(&self, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.t.http()))
            .bearer_auth(key)
    }

    async fn send(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let response = builder.send().await.expect("http call");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, headers, body)
    }

    async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        let (status, headers, body) = self.send(self.request(Method::GET, path, key)).await;
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/vnd.api+json"),
            "{path}"
        );
        (status, body)
    }
}

fn error_sources(body: &Value) -> Vec<Value> {
    body["errors"]
        .as_array()
        .expect("errors array")
        .iter()
        .map(|e| e.get("source").cloned().unwrap_or(Value::Null))
        .collect()
}

async fn demo(t: &TestApp) -> (pb::Partner, pb::Partner) {
    let pos = t
        .partner(pb::Partner {
            name: "Pos Partner".into(),
            description: "Point of sale".into(),
            website_url: "https://pos.example".into(),
            categories: vec!["pos".into()],
            country_codes: vec!["DE".into()],
            active: true,
            external_id: Some("ext-pos".into()),
            ..Default::default()
        })
        .await;
    let wholesaler = t
        .partner(pb::Partner {
            name: "Drinks Wholesale".into(),
            categories: vec!["wholesaler".into()],
            wholesaler_categories: vec!["beverages".into()],
            status: pb::PartnerStatus::ComingSoon as i32,
            active: true,
            ..Default::default()
        })
        .await;
    t.prefer(t.world.business_a, wholesaler.id).await;
    t.integrate(t.world.business_a, pos.id, pb::IntegrationStatus::Active)
        .await;
    t.integrate(t.world.business_b, pos.id, pb::IntegrationStatus::Failed)
        .await;
    t.connect(&t.world.user_key_a, pos.id).await;
    t.connect(&t.world.user_key_a, wholesaler.id).await;
    t.connect(&t.world.user_key_b, pos.id).await;
    (pos, wholesaler)
}

#[tokio::test]
async fn get_partner_document_is_complete() {
    let t = TestApp::start().await;
    let (pos, _) = demo(&t).await;
    let rest = Rest::new(&t);
    let (status, body) = rest
        .get(
            &format!(
                "/api/v1/partners/{}?include=users,partner_integrations",
                pos.id
            ),
            &t.world.user_key_a,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let integration_id = body["included"][1]["id"].clone();
    let expected = json!({
        "data": {
            "id": pos.id.to_string(),
            "type": "partner",
            "attributes": {
                "name": "Pos Partner", "description": "Point of sale", "email": "", "logo_url": "",
                "website_url": "https://pos.example", "video_url": "", "categories": ["pos"],
                "wholesaler_categories": [], "country_codes": ["DE"], "tags": [], "status": "available",
                "active": true, "external_id": "ext-pos", "metadata": {},
                "stats": {"clicks": 0, "website_clicks": 0, "video_clicks": 0, "users_count": 2},
                "preferred": false, "integration_status": "active", "connected": true,
                "created_at": "<time>", "updated_at": "<time>"
            },
            "relationships": {
                "users": {"data": [{"type": "user", "id": t.world.user_a.to_string()}],
                          "links": {"related": format!("/api/v1/partners/{}/users", pos.id)},
                          "meta": {"total": 1}},
                "partner_integrations": {"data": [{"type": "partner_integration", "id": integration_id}],
                                         "meta": {"total": 1}}
            }
        },
        "included": [
            {"type": "user", "id": t.world.user_a.to_string(), "attributes": {"name": "Ann", "email": "ann@alpha.example"}},
            {"type": "partner_integration", "id": integration_id, "attributes": {
                "status": "active", "business_uuid": t.world.business_a.to_string(),
                "created_at": "<time>", "updated_at": "<time>"}}
        ]
    });
    assert_eq!(normalize(body), expected);
}

#[tokio::test]
async fn list_partners_accepts_the_seed_shapes_and_links_keep_filters() {
    let t = TestApp::start().await;
    let (pos, wholesaler) = demo(&t).await;
    for name in ["Aaa Extra", "Bbb Extra"] {
        t.simple_partner(name, &["pos"]).await;
    }
    let rest = Rest::new(&t);
    let b = t.world.business_a;
    // Bracket array form, comma form, boolean, paging.
    let (status, body) = rest
        .get(
            &format!("/api/v1/partners?business_uuid={b}&filter[categories][]=pos&filter[categories][]=wholesaler&filter[active]=1&per_page=2&page=1&include=users"),
            &t.world.service_key,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids[0], wholesaler.id.to_string(), "preferred first");
    let mut meta = body["meta"].clone();
    let token = meta["next_page_token"].take();
    assert_eq!(
        meta,
        json!({"page": 1, "per_page": 2, "total": 4, "total_pages": 2, "next_page_token": null})
    );
    let next = body["links"]["next"].as_str().expect("next link");
    assert!(
        next.contains("filter%5Bcategories%5D%5B%5D=pos")
            && next.ends_with(&format!("page_token={}", token.as_str().expect("token"))),
        "{next}"
    );
    assert_eq!(body["links"]["prev"], Value::Null);
    // Included users are listed once even when shared by several partners.
    let included = body["included"].as_array().expect("included");
    assert_eq!(included.len(), 1, "{included:?}");
    // Following the next link gives the rest.
    let (_, page2) = rest.get(next, &t.world.service_key).await;
    assert_eq!(page2["data"].as_array().expect("data").len(), 2);
    assert_eq!(page2["links"]["next"], Value::Null);
    assert!(
        page2["links"]["prev"]
            .as_str()
            .expect("prev")
            .contains("page=1")
    );

    let (_, comma) = rest
        .get(&format!("/api/v1/partners?business_uuid={b}&filter[categories]=pos,wholesaler&filter[preferred]=true"), &t.world.service_key)
        .await;
    assert_eq!(comma["meta"]["total"], 1);
    // The seed's JSON body on GET (query wins on conflict).
    let (status, _, body) = rest
        .send(
            rest.request(Method::GET, "/api/v1/partners?per_page=1", &t.world.user_key_a)
                .header("content-type", "application/json")
                .body(json!({"filter": {"country_codes": ["de"], "preferred": false}, "search": "pos", "per_page": 50}).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["per_page"], 1);
    assert_eq!(body["data"][0]["id"], pos.id.to_string());
    assert_eq!(body["meta"]["total"], 1);
}

#[tokio::test]
async fn available_and_wholesalers_routes() {
    let t = TestApp::start().await;
    let (_, wholesaler) = demo(&t).await;
    let rest = Rest::new(&t);
    let (status, body) = rest
        .get(
            "/api/v1/partners/available?filter[status][]=coming_soon",
            &t.world.user_key_a,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().expect("data").len(), 1);
    assert_eq!(body["data"][0]["attributes"]["status"], "coming_soon");
    let (status, body) = rest
        .get(
            "/api/v1/partners/available?filter[status][]=gone",
            &t.world.user_key_a,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_sources(&body),
        [json!({"parameter": "filter[status]"})]
    );
    let (status, body) = rest
        .get(
            "/api/v1/partners/wholesalers?page=1&per_page=10",
            &t.world.user_key_a,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["id"], wholesaler.id.to_string());
    assert_eq!(body["data"][0]["attributes"]["preferred"], true);
    let (status, body) = rest
        .get("/api/v1/partners/wholesalers?search=x", &t.world.user_key_a)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_sources(&body), [json!({"parameter": "search"})]);
}

#[tokio::test]
async fn click_events_through_rest() {
    let t = TestApp::start().await;
    let (pos, _) = demo(&t).await;
    let rest = Rest::new(&t);
    let path = format!("/api/v1/partners/{}/click_event", pos.id);
    let seed_shape = json!({"data": {"type": "partner_click_events", "attributes": {"event_type": "website"},
        "relationships": {"partner": {"id": pos.id.to_string(), "type": "partner"}}}});
    let post = |body: &Value, key: Option<&str>| {
        let mut builder = rest
            .request(Method::POST, &path, &t.world.user_key_a)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            builder = builder.header("idempotency-key", key);
        }
        rest.send(builder)
    };
    let (status, headers, first) = post(&seed_shape, Some("rest-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let event_id = first["data"]["id"].as_str().expect("id").to_owned();
    // No Location: a click event has no URL to read it back from.
    assert!(headers.get("location").is_none(), "{headers:?}");
    assert_eq!(
        normalize(first.clone()),
        json!({"data": {"id": event_id, "type": "partner_click_events",
            "attributes": {"event_type": "website", "created_at": "<time>"},
            "relationships": {"partner": {"data": {"type": "partner", "id": pos.id.to_string()}},
                              "user": {"data": {"type": "user", "id": t.world.user_a.to_string()}}}}})
    );
    let (status, _, replay) = post(&seed_shape, Some("rest-1")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay, first);
    let json_api_shape = json!({"data": {"type": "partner_click_events", "attributes": {"event_type": "video"},
        "relationships": {"partner": {"data": {"id": pos.id.to_string(), "type": "partner"}}}}});
    let (status, _, conflict) = post(&json_api_shape, Some("rest-1")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert_eq!(conflict["errors"][0]["code"], "IDEMPOTENCY_KEY_REUSED");
    let (status, _, _) = post(&json_api_shape, None).await;
    assert_eq!(status, StatusCode::CREATED);

    let bad_cases = [
        (
            json!({"data": {"type": "clicks", "attributes": {"event_type": "website"}}}),
            "/data/type",
        ),
        (
            json!({"data": {"type": "partner_click_events", "attributes": {"event_type": "hover"}}}),
            "/data/attributes/event_type",
        ),
        (
            json!({"data": {"type": "partner_click_events", "attributes": {}}}),
            "/data/attributes/event_type",
        ),
        (
            json!({"data": {"type": "partner_click_events", "attributes": {"event_type": "website"},
            "relationships": {"partner": {"data": {"id": "999999", "type": "partner"}}}}}),
            "/data/relationships/partner/data/id",
        ),
        (
            json!({"data": {"type": "partner_click_events", "attributes": {"event_type": "website"},
            "relationships": {"partner": {"id": pos.id.to_string(), "type": "user"}}}}),
            "/data/relationships/partner/type",
        ),
        (json!({"nothing": true}), "/data"),
    ];
    for (body, pointer) in bad_cases {
        let (status, _, answer) = post(&body, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(
            error_sources(&answer),
            [json!({"pointer": pointer})],
            "{body}"
        );
    }
    let (status, _, answer) = post(&seed_shape, Some(&"k".repeat(201))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_sources(&answer),
        [json!({"header": "Idempotency-Key"})]
    );
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_click_events"), 2);
    assert_eq!(
        t.count(&format!(
            "SELECT website_clicks + video_clicks AS n FROM partners WHERE id = {}",
            pos.id
        )),
        2
    );
}

#[tokio::test]
async fn connect_disconnect_and_admin_routes() {
    let t = TestApp::start().await;
    let rest = Rest::new(&t);
    let create = json!({"data": {"type": "partner", "attributes": {"name": "Rest Made", "categories": ["pos"],
        "country_codes": ["at"], "status": "coming_soon", "active": true, "metadata": {"k": "v"}}}});
    let (status, headers, created) = rest
        .send(
            rest.request(Method::POST, "/api/v1/partners", &t.world.service_key)
                .header("content-type", "application/vnd.api+json")
                .body(create.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/api/v1/partners/{id}").as_str())
    );
    assert_eq!(
        created["data"]["attributes"]["country_codes"],
        json!(["AT"])
    );
    assert_eq!(created["data"]["attributes"]["metadata"], json!({"k": "v"}));

    let (status, _, updated) = rest
        .send(rest.request(Method::PATCH, &format!("/api/v1/partners/{id}"), &t.world.service_key)
            .header("content-type", "application/json")
            .body(json!({"data": {"type": "partner", "id": id, "attributes": {"name": "Rest Renamed"}}}).to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["data"]["attributes"]["name"], "Rest Renamed");
    assert_eq!(updated["data"]["attributes"]["status"], "coming_soon");
    let (status, _, bad) = rest
        .send(
            rest.request(
                Method::PATCH,
                &format!("/api/v1/partners/{id}"),
                &t.world.service_key,
            )
            .header("content-type", "application/json")
            .body(
                json!({"data": {"type": "partner", "attributes": {"email": "nope", "colour": 1}}})
                    .to_string(),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_sources(&bad),
        [json!({"pointer": "/data/attributes/colour"})]
    );
    let (status, _, bad) = rest
        .send(rest.request(Method::PATCH, &format!("/api/v1/partners/{id}"), &t.world.service_key)
            .header("content-type", "application/json")
            .body(json!({"data": {"type": "partner", "attributes": {"email": "nope", "status": "gone"}}}).to_string()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_sources(&bad),
        [
            json!({"pointer": "/data/attributes/email"}),
            json!({"pointer": "/data/attributes/status"})
        ]
    );

    // Connect (the seed sends a JSON body with PATCH) and disconnect.
    let (status, _, connected) = rest
        .send(
            rest.request(
                Method::PATCH,
                &format!("/api/v1/partners/{id}/connect"),
                &t.world.user_key_a,
            )
            .header("content-type", "application/json")
            .body("{}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{connected}");
    assert_eq!(connected["data"]["attributes"]["connected"], true);
    assert_eq!(connected["data"]["attributes"]["stats"]["users_count"], 1);
    let (status, _, disconnected) = rest
        .send(rest.request(
            Method::DELETE,
            &format!("/api/v1/partners/{id}/connect"),
            &t.world.user_key_a,
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(disconnected["data"]["attributes"]["connected"], false);
    let (status, _, needs_user) = rest
        .send(rest.request(
            Method::PATCH,
            &format!("/api/v1/partners/{id}/connect"),
            &t.world.service_key,
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(needs_user["errors"][0]["code"], "USER_REQUIRED");

    // Admin routes refuse user keys; delete is soft and answers 204.
    let (status, _, denied) = rest
        .send(rest.request(
            Method::DELETE,
            &format!("/api/v1/partners/{id}"),
            &t.world.user_key_a,
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{denied}");
    let (status, _, body) = rest
        .send(rest.request(
            Method::DELETE,
            &format!("/api/v1/partners/{id}"),
            &t.world.service_key,
        ))
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = rest
        .get(&format!("/api/v1/partners/{id}"), &t.world.user_key_a)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn client_mistakes_get_json_api_4xx_errors() {
    let t = TestApp::start().await;
    demo(&t).await;
    let rest = Rest::new(&t);
    let key = t.world.user_key_a.clone();
    let cases: Vec<(&str, StatusCode, Vec<Value>)> = vec![
        (
            "/api/v1/partners?colour=red",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "colour"})],
        ),
        (
            "/api/v1/partners?filter[size]=3",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "filter[size]"})],
        ),
        (
            "/api/v1/partners?page=1&page=2",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "page"})],
        ),
        (
            "/api/v1/partners?page=two",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "page"})],
        ),
        (
            "/api/v1/partners?page=0",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "page"})],
        ),
        (
            "/api/v1/partners?per_page=101&include=owners",
            StatusCode::BAD_REQUEST,
            vec![
                json!({"parameter": "include"}),
                json!({"parameter": "per_page"}),
            ],
        ),
        (
            "/api/v1/partners?filter[preferred]=maybe",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "filter[preferred]"})],
        ),
        (
            "/api/v1/partners?filter[country_codes][]=DEU",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "filter[country_codes]"})],
        ),
        (
            "/api/v1/partners?sort=price",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "sort"})],
        ),
        (
            "/api/v1/partners/abc",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "id"})],
        ),
        (
            "/api/v1/partners/0",
            StatusCode::BAD_REQUEST,
            vec![json!({"parameter": "id"})],
        ),
        (
            "/api/v1/partners/999999",
            StatusCode::NOT_FOUND,
            vec![Value::Null],
        ),
        (
            "/api/v1/nothing/here",
            StatusCode::NOT_FOUND,
            vec![Value::Null],
        ),
    ];
    for (path, status, sources) in cases {
        let (got, body) = rest.get(path, &key).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(error_sources(&body), sources, "{path}");
        assert_eq!(body["errors"][0]["status"], status.as_u16().to_string());
    }
    // Unauthenticated and wrong method.
    let (status, _, body) = rest
        .send(rest.http.get(format!("{}/api/v1/partners", t.http())))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["errors"][0]["code"], "UNAUTHENTICATED");
    let (status, headers, body) = rest
        .send(rest.request(Method::PUT, "/api/v1/partners", &key))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/vnd.api+json")
    );
    // Body problems: malformed JSON, too large, wrong content type.
    let post = |content_type: &'static str, body: String| {
        rest.send(
            rest.request(Method::POST, "/api/v1/partners/1/click_event", &key)
                .header("content-type", content_type)
                .body(body),
        )
    };
    let (status, _, body) = post("application/json", "{not json".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = post(
        "application/json",
        format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024)),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let (status, _, body) = post("text/plain", "{}".into()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
}

#[tokio::test]
async fn rest_never_shows_another_business() {
    let t = TestApp::start().await;
    let (pos, _) = demo(&t).await;
    let rest = Rest::new(&t);
    let b = t.world.business_b;
    for path in [
        format!("/api/v1/partners?business_uuid={b}"),
        format!("/api/v1/partners/available?business_uuid={b}"),
        format!("/api/v1/partners/wholesalers?business_uuid={b}"),
        format!("/api/v1/partners/{}?business_uuid={b}", pos.id),
    ] {
        let (status, body) = rest.get(&path, &t.world.user_key_a).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, body) = rest
        .get(
            &format!(
                "/api/v1/partners/{}?include=users,partner_integrations",
                pos.id
            ),
            &t.world.user_key_b,
        )
        .await;
    let included: Vec<&Value> = body["included"]
        .as_array()
        .expect("included")
        .iter()
        .collect();
    assert_eq!(included.len(), 2, "{included:?}");
    assert_eq!(included[0]["id"], t.world.user_b.to_string());
    assert_eq!(included[1]["attributes"]["business_uuid"], b.to_string());
    assert_eq!(body["data"]["attributes"]["integration_status"], "failed");
}

#[tokio::test]
async fn request_ids_health_and_readiness() {
    let t = TestApp::start().await;
    let rest = Rest::new(&t);
    let (_, headers, _) = rest
        .send(
            rest.request(
                Method::GET,
                "/api/v1/partners/wholesalers",
                &t.world.user_key_a,
            )
            .header("x-request-id", "trace-me-1"),
        )
        .await;
    assert_eq!(
        headers.get("x-request-id").and_then(|v| v.to_str().ok()),
        Some("trace-me-1")
    );
    let (_, headers, _) = rest
        .send(rest.request(
            Method::GET,
            "/api/v1/partners/wholesalers",
            &t.world.user_key_a,
        ))
        .await;
    let made = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("generated id");
    assert!(uuid::Uuid::parse_str(made).is_ok());
    let (status, _, body) = rest
        .send(rest.http.get(format!("{}/healthz", t.http())))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, _, body) = rest
        .send(rest.http.get(format!("{}/readyz", t.http())))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ready"})));
}

#[tokio::test]
async fn remote_gateway_calls_the_grpc_server_over_tcp() {
    let t = TestApp::start().await;
    let (pos, _) = demo(&t).await;
    let gateway = partners::gateway::Gateway::remote(
        &format!("http://{}", t.grpc_addr()),
        2,
        std::time::Duration::from_secs(5),
    )
    .expect("gateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(partners::gateway::serve(
        listener,
        partners::gateway::router(gateway),
        async {
            let _ = stopped.await;
        },
    ));
    let client = Client::new();
    for _ in 0..3 {
        let response = client
            .get(format!("http://{addr}/api/v1/partners/{}", pos.id))
            .bearer_auth(&t.world.user_key_a)
            .send()
            .await
            .expect("call");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["data"]["attributes"]["name"], "Pos Partner");
    }
    let response = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.status(), StatusCode::OK);
    let _ = stop.send(());
    server.await.expect("join").expect("serve");
}

#[tokio::test]
async fn remote_gateway_answers_503_when_its_upstream_is_unreachable() {
    // A port nothing listens on: connections are refused.
    let closed = free_ports(1)[0];
    let gateway = partners::gateway::Gateway::remote(
        &format!("http://127.0.0.1:{closed}"),
        1,
        std::time::Duration::from_secs(5),
    )
    .expect("gateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(partners::gateway::serve(
        listener,
        partners::gateway::router(gateway),
        std::future::pending(),
    ));
    let response = Client::new()
        .get(format!("http://{addr}/api/v1/partners/1"))
        .bearer_auth("pk_0123456789ab_0123456789abcdef0123")
        .send()
        .await
        .expect("call");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
}

#[tokio::test]
async fn openapi_lists_every_route_the_router_serves() {
    let t = TestApp::start().await;
    let rest = Rest::new(&t);
    let (status, _, served) = rest
        .send(rest.http.get(format!("{}/api/v1/openapi.json", t.http())))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, partners::gateway::openapi::document());
    // The documented operations are exactly the API's routes.
    let mut operations = partners::gateway::openapi::operations();
    operations.sort();
    let mut expected = [
        ("GET", "/api/v1/partners"),
        ("POST", "/api/v1/partners"),
        ("GET", "/api/v1/partners/available"),
        ("GET", "/api/v1/partners/wholesalers"),
        ("GET", "/api/v1/partners/batch"),
        ("POST", "/api/v1/partners/batch_update"),
        ("POST", "/api/v1/partners/batch_modify"),
        ("GET", "/api/v1/partners/export"),
        ("GET", "/api/v1/partners/{id}"),
        ("PATCH", "/api/v1/partners/{id}"),
        ("DELETE", "/api/v1/partners/{id}"),
        ("POST", "/api/v1/partners/{id}/restore"),
        ("PUT", "/api/v1/partners/by_external_id/{external_id}"),
        ("POST", "/api/v1/partners/{id}/click_event"),
        ("POST", "/api/v1/partner_click_events/batch"),
        ("GET", "/api/v1/partners/{id}/click_stats"),
        ("GET", "/api/v1/partner_click_stats/top_partners"),
        ("GET", "/api/v1/partner_click_events"),
        ("PATCH", "/api/v1/partners/{id}/connect"),
        ("DELETE", "/api/v1/partners/{id}/connect"),
        ("GET", "/api/v1/partners/{id}/users"),
        ("GET", "/api/v1/webhook_endpoints"),
        ("POST", "/api/v1/webhook_endpoints"),
        ("GET", "/api/v1/webhook_endpoints/{id}"),
        ("PATCH", "/api/v1/webhook_endpoints/{id}"),
        ("DELETE", "/api/v1/webhook_endpoints/{id}"),
        ("POST", "/api/v1/webhook_endpoints/{id}/rotate_secret"),
        ("GET", "/api/v1/webhook_endpoints/{id}/deliveries"),
        (
            "POST",
            "/api/v1/webhook_endpoints/{id}/deliveries/{delivery_id}/retry",
        ),
        ("GET", "/api/v1/partner_events"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    ]
    .map(|(method, path)| (method.to_owned(), path.to_owned()));
    expected.sort();
    assert_eq!(operations, expected);
    for (method, path) in &operations {
        let operation = &served["paths"][path][method.to_ascii_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {path} is missing from openapi.json"
        );
        // The route really exists in the router: neither "no such route" nor 405.
        let url = path
            .replace("{id}", "1")
            .replace("{external_id}", "x")
            .replace("{delivery_id}", "1");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, _, body) = rest
            .send(rest.request(method.clone(), &url, &t.world.service_key))
            .await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {url}");
        assert_ne!(
            body["errors"][0]["detail"], "no such route",
            "{method} {url}"
        );
    }
    // And nothing in openapi.json is missing from the route list.
    let documented: usize = served["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| {
            item.as_object()
                .expect("path item")
                .keys()
                .filter(|k| *k != "parameters")
                .count()
        })
        .sum();
    assert_eq!(documented, operations.len());
}
