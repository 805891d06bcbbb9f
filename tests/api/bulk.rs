//! Bulk changes (issue 22, part 6): BatchUpdatePartners and BatchModifyPartners, all or nothing,
//! over gRPC and REST, with one change event per partner.

use partners::grpc::pb;
use partners::grpc::pb::partner_event_service_client::PartnerEventServiceClient;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tonic::Code;

use crate::support::*;

/// One REST call with a JSON body (or none): status and JSON answer (`Value::Null` when empty).
pub async fn rest(
    t: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Client::new()
        .request(method, format!("{}{path}", t.http()))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("http call");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

fn update(partner: pb::Partner, paths: &[&str]) -> pb::UpdatePartnerRequest {
    pb::UpdatePartnerRequest {
        partner: Some(partner),
        update_mask: mask(paths),
    }
}

fn rename(id: i64, name: &str) -> pb::UpdatePartnerRequest {
    update(
        pb::Partner {
            id,
            name: name.to_owned(),
            ..Default::default()
        },
        &["name"],
    )
}

async fn batch_update(
    t: &TestApp,
    requests: Vec<pb::UpdatePartnerRequest>,
    key: &str,
) -> Result<Vec<pb::Partner>, tonic::Status> {
    t.admin()
        .batch_update_partners(with_key(pb::BatchUpdatePartnersRequest { requests }, key))
        .await
        .map(|r| r.into_inner().partners)
}

async fn batch_modify(
    t: &TestApp,
    request: pb::BatchModifyPartnersRequest,
    key: &str,
) -> Result<Vec<i64>, tonic::Status> {
    t.admin()
        .batch_modify_partners(with_key(request, key))
        .await
        .map(|r| r.into_inner().changed_ids)
}

async fn get(t: &TestApp, id: i64) -> pb::Partner {
    t.client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id,
                ..Default::default()
            },
            &t.world.service_key,
        ))
        .await
        .expect("get")
        .into_inner()
}

/// The newest change sequence so far.
fn last_sequence(t: &TestApp) -> i64 {
    t.count("SELECT coalesce(max(sequence), 0) AS n FROM partner_changes")
}

/// The change events after `after` as `(type, partner, changed fields)`, by partner.
async fn events_after(t: &TestApp, after: i64) -> Vec<(String, i64, Vec<String>)> {
    let page = PartnerEventServiceClient::new(t.channel.clone())
        .list_partner_events(with_key(
            pb::ListPartnerEventsRequest {
                after_sequence: after,
                page_size: Some(1000),
                ..Default::default()
            },
            &t.world.service_key,
        ))
        .await
        .expect("events")
        .into_inner();
    let mut events: Vec<_> = page
        .events
        .into_iter()
        .map(|e| (e.r#type, e.partner_id, e.changed_fields))
        .collect();
    events.sort_by_key(|e| e.1);
    events
}

fn updated(id: i64, fields: &[&str]) -> (String, i64, Vec<String>) {
    let fields = fields.iter().map(|f| (*f).to_owned()).collect();
    ("partner.updated".to_owned(), id, fields)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_update_is_all_or_nothing_names_the_bad_item_and_logs_each_partner() {
    let t = TestApp::start().await;
    let key = t.world.service_key.clone();
    let mut ids = Vec::new();
    for name in ["P0", "P1", "P2", "P3"] {
        ids.push(t.simple_partner(name, &["pos"]).await.id);
    }
    let holder = t
        .partner(pb::Partner {
            name: "Holder".into(),
            external_id: Some("taken".into()),
            ..Default::default()
        })
        .await;
    let gone = t.simple_partner("Gone", &["pos"]).await.id;
    t.admin()
        .delete_partner(with_key(pb::DeletePartnerRequest { id: gone }, &key))
        .await
        .expect("delete");
    let before = last_sequence(&t);
    let countries = |id: i64, codes: &[&str]| {
        update(
            pb::Partner {
                id,
                country_codes: codes.iter().map(|c| (*c).to_owned()).collect(),
                ..Default::default()
            },
            &["country_codes"],
        )
    };

    // One invalid item: nothing written, the violation names the item.
    let err = batch_update(
        &t,
        vec![
            rename(ids[0], "Renamed"),
            countries(ids[1], &["de"]),
            rename(ids[2], "Also"),
            countries(ids[3], &["DEU"]),
        ],
        &key,
    )
    .await
    .expect_err("invalid item");
    assert_invalid(&err, &["requests[3].partner.country_codes"]);
    let err = batch_update(&t, vec![rename(ids[0], "A"), rename(ids[0], "B")], &key)
        .await
        .expect_err("same partner twice");
    assert_invalid(&err, &["requests[1].partner.id"]);
    // Missing and deleted partners: NOT_FOUND naming them, nothing written.
    let err = batch_update(
        &t,
        vec![
            rename(ids[0], "Renamed"),
            rename(999_999, "X"),
            rename(gone, "Y"),
        ],
        &key,
    )
    .await
    .expect_err("missing");
    assert_code(&err, Code::NotFound, "NOT_FOUND");
    assert!(
        err.message()
            .contains(&format!("requests[1] (id 999999), requests[2] (id {gone})")),
        "{err:?}"
    );
    // A conflict found by the statement (another partner's external id) rolls everything back.
    let taken = update(
        pb::Partner {
            id: ids[1],
            external_id: Some("taken".into()),
            ..Default::default()
        },
        &["external_id"],
    );
    let err = batch_update(&t, vec![rename(ids[0], "Renamed"), taken], &key)
        .await
        .expect_err("external id taken");
    assert_code(&err, Code::AlreadyExists, "EXTERNAL_ID_TAKEN");
    assert_eq!(get(&t, ids[0]).await.name, "P0", "nothing was written");
    assert_eq!(
        get(&t, holder.id).await.external_id.as_deref(),
        Some("taken")
    );
    assert_eq!(events_after(&t, before).await, [], "no change was logged");
    // Service keys only.
    let err = batch_update(&t, vec![rename(ids[0], "X")], &t.world.user_key_a)
        .await
        .expect_err("user key");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = batch_update(&t, Vec::new(), &key).await.expect_err("empty");
    assert_invalid(&err, &["requests"]);

    // Each item with its own mask, in one transaction; answered in request order.
    let written = batch_update(
        &t,
        vec![
            countries(ids[2], &["de", "at"]),
            rename(ids[0], "Renamed"),
            update(
                pb::Partner {
                    id: ids[1],
                    status: pb::PartnerStatus::ComingSoon as i32,
                    active: false,
                    name: "ignored: not in the mask".into(),
                    ..Default::default()
                },
                &["status", "active"],
            ),
        ],
        &key,
    )
    .await
    .expect("batch update");
    let seen: Vec<(i64, &str, &[String], i32, bool)> = written
        .iter()
        .map(|p| {
            (
                p.id,
                p.name.as_str(),
                &p.country_codes[..],
                p.status,
                p.active,
            )
        })
        .collect();
    let (de_at, none) = (["AT".to_owned(), "DE".to_owned()], Vec::<String>::new());
    let (available, soon) = (
        pb::PartnerStatus::Available as i32,
        pb::PartnerStatus::ComingSoon as i32,
    );
    assert_eq!(
        seen,
        [
            (ids[2], "P2", &de_at[..], available, true),
            (ids[0], "Renamed", &none[..], available, true),
            (ids[1], "P1", &none[..], soon, false),
        ]
    );
    assert_eq!(get(&t, ids[0]).await.name, "Renamed");
    // One change event per partner, naming its own changed fields.
    assert_eq!(
        events_after(&t, before).await,
        [
            updated(ids[0], &["name"]),
            updated(ids[1], &["active", "status"]),
            updated(ids[2], &["country_codes"]),
        ]
    );

    // The largest batch goes through at once; one more item is refused.
    let many: Vec<i64> = (0..1000).map(|i| ids[0] + 1000 + i).collect();
    t.count(&format!(
        "WITH i AS (INSERT INTO partners (id, name) \
         SELECT g, 'bulk ' || g FROM generate_series({}, {}) g RETURNING id) \
         SELECT count(*) AS n FROM i",
        many[0], many[999]
    ));
    let requests: Vec<_> = many
        .iter()
        .map(|id| rename(*id, &format!("big {id}")))
        .collect();
    let started = std::time::Instant::now();
    let written = batch_update(&t, requests.clone(), &key)
        .await
        .expect("1000 updates");
    assert_eq!(written.len(), 1000);
    assert!(written.iter().all(|p| p.name == format!("big {}", p.id)));
    eprintln!("1000 updates: {:?}", started.elapsed());
    let mut too_many = requests;
    too_many.push(rename(ids[3], "one more"));
    let err = batch_update(&t, too_many, &key).await.expect_err("1001");
    assert_invalid(&err, &["requests"]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_modify_changes_tags_status_and_active_all_or_nothing() {
    let t = TestApp::start().await;
    let key = t.world.service_key.clone();
    let tagged = |name: &str, tags: &[&str]| pb::Partner {
        name: name.to_owned(),
        tags: tags.iter().map(|s| (*s).to_owned()).collect(),
        active: true,
        ..Default::default()
    };
    let a = t.partner(tagged("A", &["old", "keep"])).await.id;
    let b = t.partner(tagged("B", &["keep"])).await.id;
    let full: Vec<String> = (0..49).map(|i| format!("t{i:02}")).collect();
    let crowded = t
        .partner(pb::Partner {
            tags: full.clone(),
            ..tagged("Crowded", &[])
        })
        .await
        .id;
    let before = last_sequence(&t);
    let modify = |ids: Vec<i64>, add: &[&str], remove: &[&str]| pb::BatchModifyPartnersRequest {
        ids,
        add_tags: add.iter().map(|s| (*s).to_owned()).collect(),
        remove_tags: remove.iter().map(|s| (*s).to_owned()).collect(),
        status: Some(pb::PartnerStatus::ComingSoon as i32),
        active: None,
    };

    // A missing partner or a tag count over 50: nothing changes.
    let err = batch_modify(&t, modify(vec![a, 999_999], &["new"], &[]), &key)
        .await
        .expect_err("missing");
    assert_code(&err, Code::NotFound, "NOT_FOUND");
    assert!(err.message().contains("id 999999"), "{err:?}");
    let err = batch_modify(&t, modify(vec![a, crowded], &["x1", "x2"], &[]), &key)
        .await
        .expect_err("too many tags");
    assert_invalid(&err, &["add_tags"]);
    assert!(err.message().contains(&crowded.to_string()), "{err:?}");
    assert_eq!(get(&t, a).await.tags, ["keep", "old"]);
    assert_eq!(events_after(&t, before).await, []);
    let err = batch_modify(&t, modify(vec![a], &["x"], &[]), &t.world.user_key_a)
        .await
        .expect_err("user key");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Added and removed in one statement; removal wins; answered the partners changed.
    let changed = batch_modify(&t, modify(vec![b, a, b], &["new", "old"], &["old"]), &key)
        .await
        .expect("modify");
    assert_eq!(changed, [a, b]);
    for id in [a, b] {
        let p = get(&t, id).await;
        assert_eq!(p.tags, ["keep", "new"]);
        assert_eq!(p.status, pb::PartnerStatus::ComingSoon as i32);
        assert!(p.active);
    }
    assert_eq!(
        events_after(&t, before).await,
        [
            updated(a, &["status", "tags"]),
            updated(b, &["status", "tags"])
        ]
    );
    // The same change again changes nothing and logs nothing.
    let after = last_sequence(&t);
    let again = batch_modify(&t, modify(vec![a, b], &["new"], &["old"]), &key)
        .await
        .expect("again");
    assert_eq!(again, Vec::<i64>::new());
    let deactivate = pb::BatchModifyPartnersRequest {
        ids: vec![a, crowded],
        active: Some(false),
        ..Default::default()
    };
    assert_eq!(
        batch_modify(&t, deactivate, &key).await.expect("active"),
        [a, crowded]
    );
    assert_eq!(
        events_after(&t, after).await,
        [updated(a, &["active"]), updated(crowded, &["active"])]
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_writes_over_rest() {
    let t = TestApp::start().await;
    let key = t.world.service_key.clone();
    let a = t.simple_partner("A", &["pos"]).await.id;
    let b = t.simple_partner("B", &["pos"]).await.id;
    let item = |id: i64, attributes: Value| json!({"type": "partner", "id": id.to_string(), "attributes": attributes});
    let post = |path: &'static str, body: Value, key: String| {
        let t = &t;
        async move { rest(t, Method::POST, path, &key, Some(body)).await }
    };

    let (status, doc) = post(
        "/api/v1/partners/batch_update",
        json!({"data": [item(a, json!({"name": "A2"})), item(b, json!({"country_codes": ["DEU"]}))]}),
        key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(
        doc["errors"][0]["source"],
        json!({"pointer": "/data/1/attributes/country_codes"})
    );
    let (status, doc) = post(
        "/api/v1/partners/batch_update",
        json!({"data": [item(a, json!({"name": "A2"})), {"type": "partner", "attributes": {"name": "x"}}]}),
        key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(doc["errors"][0]["source"], json!({"pointer": "/data/1/id"}));
    let (status, doc) = post(
        "/api/v1/partners/batch_update",
        json!({"data": [item(a, json!({"colour": "red"}))]}),
        key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(
        doc["errors"][0]["source"],
        json!({"pointer": "/data/0/attributes/colour"})
    );
    let (status, doc) = post(
        "/api/v1/partners/batch_update",
        json!({"data": [item(a, json!({"name": "A2"})), item(999_999, json!({"name": "x"}))]}),
        key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{doc}");
    assert_eq!(get(&t, a).await.name, "A", "nothing was written");

    let (status, doc) = post(
        "/api/v1/partners/batch_update",
        json!({"data": [item(b, json!({"tags": ["x"], "active": false})), item(a, json!({"name": "A2"}))]}),
        key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let rows: Vec<(Value, Value, Value)> = doc["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| {
            (
                p["id"].clone(),
                p["attributes"]["name"].clone(),
                p["attributes"]["tags"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (json!(b.to_string()), json!("B"), json!(["x"])),
            (json!(a.to_string()), json!("A2"), json!([])),
        ]
    );

    let modification = |ids: Value| {
        json!({"data": {"type": "partner_batch_modification",
                        "attributes": {"ids": ids, "add_tags": ["vip"], "status": "unavailable"}}})
    };
    let (status, doc) = post(
        "/api/v1/partners/batch_modify",
        modification(json!([a.to_string(), b.to_string()])),
        key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(
        doc,
        json!({"meta": {"changed_ids": [a.to_string(), b.to_string()]}})
    );
    assert_eq!(get(&t, b).await.tags, ["vip", "x"]);
    let (status, doc) = post(
        "/api/v1/partners/batch_modify",
        modification(json!([a.to_string(), "x"])),
        key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(
        doc["errors"][0]["source"],
        json!({"pointer": "/data/attributes/ids/1"})
    );
    let (status, doc) = post(
        "/api/v1/partners/batch_modify",
        modification(json!(["0"])),
        key.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(
        doc["errors"][0]["source"],
        json!({"pointer": "/data/attributes/ids/0"})
    );
    let (status, _) = post(
        "/api/v1/partners/batch_modify",
        modification(json!([a.to_string()])),
        t.world.user_key_a.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let empty = json!({"data": {"type": "partner_batch_modification",
                                "attributes": {"ids": [a.to_string()], "add_tags": [], "active": true}}});
    let (status, doc) = post("/api/v1/partners/batch_modify", empty, key.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(
        doc["errors"][0]["source"],
        json!({"pointer": "/data/attributes/add_tags"})
    );
    t.stop().await;
}
