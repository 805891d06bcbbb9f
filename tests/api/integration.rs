//! Integration features (issue 22): BatchGetPartners, RestorePartner with `show_deleted` lists,
//! idempotent CreatePartner (`request_id` / `Idempotency-Key`) and UpsertPartner, each over gRPC
//! and REST, including concurrent creates and upserts of one key.

use partners::grpc::pb;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::*;

/// A partner with a name and an external id.
fn with_external_id(name: &str, external_id: Option<&str>) -> pb::Partner {
    pb::Partner {
        name: name.to_owned(),
        categories: vec!["pos".into()],
        active: true,
        external_id: external_id.map(str::to_owned),
        ..Default::default()
    }
}

/// One REST call: status and JSON body (`Value::Null` when empty).
pub(crate) async fn rest(
    t: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = Client::new()
        .request(method, format!("{}{path}", t.http()))
        .bearer_auth(key);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
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

fn ids_of(partners: &[pb::Partner]) -> Vec<i64> {
    partners.iter().map(|p| p.id).collect()
}

async fn delete(t: &TestApp, id: i64) {
    t.admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id },
            &t.world.service_key,
        ))
        .await
        .expect("delete");
}

async fn restore(t: &TestApp, id: i64, key: &str) -> Result<pb::Partner, tonic::Status> {
    t.admin()
        .restore_partner(with_key(pb::RestorePartnerRequest { id }, key))
        .await
        .map(tonic::Response::into_inner)
}

async fn batch(
    t: &TestApp,
    request: pb::BatchGetPartnersRequest,
    key: &str,
) -> Result<pb::BatchGetPartnersResponse, tonic::Status> {
    t.client()
        .batch_get_partners(with_key(request, key))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn batch_get_returns_found_partners_in_request_order_and_lists_missing_keys() {
    let t = TestApp::start().await;
    let p1 = t.partner(with_external_id("One", Some("crm-1"))).await;
    let p2 = t.partner(with_external_id("Two", Some("crm-2"))).await;
    let p3 = t.partner(with_external_id("Three", None)).await;
    let gone = t.partner(with_external_id("Gone", Some("crm-4"))).await;
    delete(&t, gone.id).await;
    t.prefer(t.world.business_a, p2.id).await;
    t.connect(&t.world.user_key_a, p1.id).await;

    let request = pb::BatchGetPartnersRequest {
        ids: vec![p3.id, 999_999, gone.id, p3.id],
        external_ids: vec![
            "crm-2".into(),
            "nope".into(),
            "crm-1".into(),
            "crm-4".into(),
        ],
        include: vec!["users".into()],
        ..Default::default()
    };
    let a = batch(&t, request.clone(), &t.world.user_key_a)
        .await
        .expect("batch");
    // Request order (ids, then external ids), each partner once; missing keys are no error.
    assert_eq!(ids_of(&a.partners), [p3.id, p2.id, p1.id]);
    assert_eq!(a.missing_ids, [999_999, gone.id]);
    assert_eq!(a.missing_external_ids, ["nope", "crm-4"]);
    // GetPartner's context and includes: the business's preference, the user's connection.
    assert_eq!(a.partners[1].preferred, Some(true));
    assert_eq!(a.partners[2].connected, Some(true));
    let users: Vec<&str> = a.partners[2]
        .users
        .iter()
        .map(|u| u.uuid.as_str())
        .collect();
    assert_eq!(users, [t.world.user_a.to_string()]);

    // Isolation: another business's user sees its own context and none of A's users.
    let b = batch(&t, request.clone(), &t.world.user_key_b)
        .await
        .expect("batch as b");
    assert_eq!(ids_of(&b.partners), [p3.id, p2.id, p1.id]);
    assert_eq!(b.partners[1].preferred, Some(false));
    assert_eq!(b.partners[2].connected, Some(false));
    assert!(b.partners.iter().all(|p| p.users.is_empty()));
    let other = pb::BatchGetPartnersRequest {
        business_uuid: t.world.business_b.to_string(),
        ..request.clone()
    };
    let err = batch(&t, other, &t.world.user_key_a)
        .await
        .expect_err("another business");
    assert_code(&err, Code::NotFound, "NOT_FOUND");
    // A service key names the business.
    let service = pb::BatchGetPartnersRequest {
        business_uuid: t.world.business_a.to_string(),
        ..request
    };
    let s = batch(&t, service, &t.world.service_key)
        .await
        .expect("service");
    assert_eq!(s.partners[1].preferred, Some(true));

    // Validation: every bad key named, the limit, an empty request.
    let bad = pb::BatchGetPartnersRequest {
        ids: vec![1, 0],
        external_ids: vec![" ".into(), "x".repeat(201)],
        include: vec!["bogus".into()],
        ..Default::default()
    };
    let err = batch(&t, bad, &t.world.user_key_a).await.expect_err("bad");
    assert_invalid(
        &err,
        &["ids[1]", "external_ids[0]", "external_ids[1]", "include"],
    );
    let too_many = pb::BatchGetPartnersRequest {
        ids: (1..=60).collect(),
        external_ids: (0..41).map(|i| format!("e{i}")).collect(),
        ..Default::default()
    };
    let err = batch(&t, too_many, &t.world.user_key_a)
        .await
        .expect_err("101 keys");
    assert_invalid(&err, &["ids"]);
    let err = batch(&t, Default::default(), &t.world.user_key_a)
        .await
        .expect_err("no keys");
    assert_invalid(&err, &["ids"]);
}

#[tokio::test]
async fn batch_get_over_rest_answers_partners_and_missing_keys() {
    let t = TestApp::start().await;
    let p1 = t.partner(with_external_id("One", Some("crm-1"))).await;
    let p2 = t.partner(with_external_id("Two", Some("crm 2"))).await;
    t.prefer(t.world.business_a, p2.id).await;
    let key = &t.world.user_key_a;
    let path = format!(
        "/api/v1/partners/batch?ids={},424242&external_ids=crm%202,crm-9&include=partner_integrations",
        p1.id
    );
    let (status, body) = rest(&t, Method::GET, &path, key, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [p1.id.to_string(), p2.id.to_string()]);
    assert_eq!(
        body["meta"],
        json!({"missing_ids": ["424242"], "missing_external_ids": ["crm-9"]})
    );
    assert_eq!(body["data"][1]["attributes"]["preferred"], true);
    assert_eq!(body["included"], json!([]));

    // The static segment wins over `/partners/{id}`; errors point at the parameter.
    for (query, parameter) in [
        ("", "ids"),
        ("?ids=1,x", "ids"),
        ("?ids=0", "ids"),
        ("?external_ids=a,,b", "external_ids"),
        ("?ids=1&colour=red", "colour"),
    ] {
        let path = format!("/api/v1/partners/batch{query}");
        let (status, body) = rest(&t, Method::GET, &path, key, None, &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(
            body["errors"][0]["source"],
            json!({"parameter": parameter}),
            "{query}"
        );
    }
    let many = (1..=101)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (status, _) = rest(
        &t,
        Method::GET,
        &format!("/api/v1/partners/batch?ids={many}"),
        key,
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn restore_undeletes_with_the_external_id_and_the_lists_follow() {
    let t = TestApp::start().await;
    let service = t.world.service_key.clone();
    let p = t
        .partner(with_external_id("Phoenix Supplies", Some("r-1")))
        .await;
    let search = |term: &str| pb::ListPartnersRequest {
        search: term.to_owned(),
        ..Default::default()
    };
    let list = |request: pb::ListPartnersRequest| {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        async move {
            client
                .list_partners(with_key(request, &key))
                .await
                .expect("list")
                .into_inner()
        }
    };
    assert_eq!(ids_of(&list(search("phoenix")).await.partners), [p.id]);
    delete(&t, p.id).await;
    assert!(list(search("phoenix")).await.partners.is_empty());

    let stats = || t.app.as_ref().expect("running").services.lists.stats();
    let restored = restore(&t, p.id, &service).await.expect("restore");
    assert_eq!(restored.external_id.as_deref(), Some("r-1"));
    assert_eq!(restored.deleted_at, None);
    // The change log has it, and the copy follows: the restored partner is listed again, by the
    // copy (not the SQL fallback).
    assert_eq!(
        t.count(&format!(
            "SELECT count(*) AS n FROM partner_changes WHERE kind = 'partner.restored' AND partner_id = {}",
            p.id
        )),
        1
    );
    let before = stats();
    assert_eq!(ids_of(&list(search("phoenix")).await.partners), [p.id]);
    assert_eq!(stats().served, before.served + 1, "the copy answered");
    assert_eq!(stats().fell_back, before.fell_back);

    // Not deleted: a clear error. Missing: NOT_FOUND. User keys: PERMISSION_DENIED.
    let err = restore(&t, p.id, &service).await.expect_err("live");
    assert_code(&err, Code::AlreadyExists, "PARTNER_NOT_DELETED");
    let err = restore(&t, 987_654, &service).await.expect_err("missing");
    assert_code(&err, Code::NotFound, "NOT_FOUND");
    let err = restore(&t, p.id, &t.world.user_key_a)
        .await
        .expect_err("user key");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = restore(&t, 0, &service).await.expect_err("bad id");
    assert_invalid(&err, &["id"]);

    // The external id was taken meanwhile: FAILED_PRECONDITION naming the holder.
    delete(&t, p.id).await;
    let taker = t.partner(with_external_id("Taker", Some("r-1"))).await;
    let err = restore(&t, p.id, &service).await.expect_err("taken");
    assert_code(&err, Code::FailedPrecondition, "EXTERNAL_ID_TAKEN");
    let details = err.get_error_details();
    let violation = &details
        .precondition_failure()
        .expect("PreconditionFailure")
        .violations[0];
    assert_eq!(violation.r#type, "EXTERNAL_ID_TAKEN");
    assert_eq!(violation.subject, format!("partners/{}", taker.id));

    // Admin lists show deleted partners on request, with their deletion time.
    let admin_list = |show_deleted: bool| pb::ListPartnersRequest {
        business_uuid: t.world.business_a.to_string(),
        search: "phoenix".into(),
        show_deleted,
        ..Default::default()
    };
    let mut client = t.client();
    let shown = client
        .list_partners(with_key(admin_list(true), &service))
        .await
        .expect("show_deleted")
        .into_inner();
    assert_eq!(ids_of(&shown.partners), [p.id]);
    assert!(shown.partners[0].deleted_at.is_some());
    assert_eq!(shown.meta.expect("meta").total.expect("total"), 1);
    // Unsearched, in the default order (the business's preferred first): every partner, exact.
    t.prefer(t.world.business_a, taker.id).await;
    let all = client
        .list_partners(with_key(
            pb::ListPartnersRequest {
                search: String::new(),
                ..admin_list(true)
            },
            &service,
        ))
        .await
        .expect("all")
        .into_inner();
    assert_eq!(ids_of(&all.partners), [taker.id, p.id]);
    assert_eq!(all.partners[0].preferred, Some(true));
    assert_eq!(
        all.meta.expect("meta").total.expect("total"),
        t.count("SELECT count(*) AS n FROM partners")
    );
    let hidden = client
        .list_partners(with_key(admin_list(false), &service))
        .await
        .expect("live only")
        .into_inner();
    assert!(hidden.partners.is_empty());
    let err = client
        .list_partners(with_key(
            pb::ListPartnersRequest {
                show_deleted: true,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("user key");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn restore_and_show_deleted_over_rest() {
    let t = TestApp::start().await;
    let key = t.world.service_key.clone();
    let p = t
        .partner(with_external_id("Rest Restored", Some("rr-1")))
        .await;
    delete(&t, p.id).await;
    let list = format!(
        "/api/v1/partners?business_uuid={}&search=restored&filter[show_deleted]=true",
        t.world.business_a
    );
    let (status, body) = rest(&t, Method::GET, &list, &key, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"][0]["id"], p.id.to_string());
    assert!(body["data"][0]["attributes"]["deleted_at"].is_string());
    let (status, _) = rest(&t, Method::GET, &list, &t.world.user_key_a, None, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let path = format!("/api/v1/partners/{}/restore", p.id);
    let (status, body) = rest(&t, Method::POST, &path, &key, None, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["attributes"]["external_id"], "rr-1");
    assert!(body["data"]["attributes"].get("deleted_at").is_none());
    let (status, body) = rest(&t, Method::POST, &path, &key, None, &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["errors"][0]["code"], "PARTNER_NOT_DELETED");

    delete(&t, p.id).await;
    let taker = t.partner(with_external_id("Taker", Some("rr-1"))).await;
    let (status, body) = rest(&t, Method::POST, &path, &key, None, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["code"], "EXTERNAL_ID_TAKEN");
    let detail = body["errors"][0]["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&format!("partner {}", taker.id)),
        "{detail}"
    );
}

fn create_request(name: &str, request_id: &str) -> pb::CreatePartnerRequest {
    pb::CreatePartnerRequest {
        partner: Some(with_external_id(name, None)),
        request_id: request_id.to_owned(),
    }
}

#[tokio::test]
async fn create_with_a_request_id_happens_once() {
    let t = TestApp::start().await;
    let key = t.world.service_key.clone();
    let create = |request: pb::CreatePartnerRequest| {
        let mut admin = t.admin();
        let key = key.clone();
        async move {
            admin
                .create_partner(with_key(request, &key))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let first = create(create_request("Once", "req-1"))
        .await
        .expect("first");
    let again = create(create_request("Once", "req-1"))
        .await
        .expect("replay");
    assert_eq!(again.id, first.id);
    let err = create(create_request("Other", "req-1"))
        .await
        .expect_err("reused");
    assert_code(&err, Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED");
    let err = create(create_request("Bad", &"k".repeat(201)))
        .await
        .expect_err("long id");
    assert_invalid(&err, &["request_id"]);
    // Ten concurrent calls with one new id make one partner and all answer it.
    let racers: Vec<_> = (0..10)
        .map(|_| tokio::spawn(create(create_request("Racer", "req-2"))))
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for racer in racers {
        ids.insert(racer.await.expect("task").expect("create").id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        t.count("SELECT count(*) AS n FROM partners WHERE name IN ('Once', 'Racer')"),
        2
    );
    // The retention forgets old ids (here: all of them, past a retention of 0 s); a later call
    // with a forgotten id creates again.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let pruned =
        partners::model::partner::prune_create_requests(&mut t.db.conn(), 0, 1).expect("prune");
    assert_eq!(pruned, 1, "one per batch");
    partners::model::partner::prune_create_requests(&mut t.db.conn(), 0, 100).expect("prune");
    assert_eq!(
        t.count("SELECT count(*) AS n FROM partner_create_requests"),
        0
    );
    let later = create(create_request("Once", "req-1"))
        .await
        .expect("after retention");
    assert_ne!(later.id, first.id);
    // REST: the Idempotency-Key header.
    let body = json!({"data": {"type": "partner", "attributes": {"name": "Rest Once"}}});
    let send = |body: Value| {
        rest(
            &t,
            Method::POST,
            "/api/v1/partners",
            &key,
            Some(body),
            &[("Idempotency-Key", "rest-1")],
        )
    };
    let (status, first) = send(body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, replay) = send(body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(replay["data"]["id"], first["data"]["id"]);
    let (status, conflict) =
        send(json!({"data": {"type": "partner", "attributes": {"name": "Rest Twice"}}})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(conflict["errors"][0]["code"], "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        t.count("SELECT count(*) AS n FROM partners WHERE name LIKE 'Rest %'"),
        1
    );
}

fn upsert_request(partner: pb::Partner, mask: &[&str]) -> pb::UpsertPartnerRequest {
    pb::UpsertPartnerRequest {
        partner: Some(partner),
        update_mask: Some(prost_types::FieldMask {
            paths: mask.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

#[tokio::test]
async fn upsert_creates_or_updates_by_external_id_and_concurrent_upserts_make_one_partner() {
    let t = TestApp::start().await;
    let key = t.world.service_key.clone();
    let upsert = |request: pb::UpsertPartnerRequest| {
        let mut admin = t.admin();
        let key = key.clone();
        async move {
            admin
                .upsert_partner(with_key(request, &key))
                .await
                .map(tonic::Response::into_inner)
        }
    };
    let created = upsert(upsert_request(
        with_external_id("Synced", Some("sync-1")),
        &[],
    ))
    .await
    .expect("create");
    assert!(created.created);
    let partner = created.partner.expect("partner");
    let changed = pb::Partner {
        name: String::new(),
        tags: vec!["synced".into()],
        ..with_external_id("", Some("sync-1"))
    };
    let updated = upsert(upsert_request(changed.clone(), &["tags"]))
        .await
        .expect("update");
    assert!(!updated.created);
    let after = updated.partner.expect("partner");
    assert_eq!((after.id, after.name.as_str()), (partner.id, "Synced"));
    assert_eq!(after.tags, ["synced"]);

    // Validation: the key is required and fixed; creating needs a name.
    let err = upsert(upsert_request(with_external_id("No key", None), &[]))
        .await
        .expect_err("no key");
    assert_invalid(&err, &["partner.external_id"]);
    let err = upsert(upsert_request(changed.clone(), &["external_id"]))
        .await
        .expect_err("key in mask");
    assert_invalid(&err, &["update_mask"]);
    let nameless = pb::Partner {
        external_id: Some("sync-new".into()),
        ..changed
    };
    let err = upsert(upsert_request(nameless, &["tags"]))
        .await
        .expect_err("cannot create without a name");
    assert_invalid(&err, &["partner.name"]);
    let err = t
        .admin()
        .upsert_partner(with_key(
            upsert_request(with_external_id("X", Some("x")), &[]),
            &t.world.user_key_a,
        ))
        .await
        .expect_err("user key");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Twenty simultaneous upserts of one new external id: one partner, created once.
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let partner = with_external_id(&format!("Racer {i}"), Some("race-1"));
            tokio::spawn(upsert(upsert_request(partner, &[])))
        })
        .collect();
    let mut answers = Vec::new();
    for racer in racers {
        answers.push(racer.await.expect("task").expect("upsert"));
    }
    assert_eq!(answers.iter().filter(|a| a.created).count(), 1);
    let ids: std::collections::BTreeSet<i64> = answers
        .iter()
        .map(|a| a.partner.as_ref().expect("partner").id)
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        t.count("SELECT count(*) AS n FROM partners WHERE external_id = 'race-1'"),
        1
    );

    // REST: PUT by external id, 201 then 200, the attributes present as the mask.
    let path = "/api/v1/partners/by_external_id/rest-sync";
    let body =
        json!({"data": {"type": "partner", "attributes": {"name": "Rest Sync", "tags": ["a"]}}});
    let (status, first) = rest(&t, Method::PUT, path, &key, Some(body), &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["meta"], json!({"created": true}));
    assert_eq!(first["data"]["attributes"]["external_id"], "rest-sync");
    let body =
        json!({"data": {"type": "partner", "attributes": {"tags": ["b"], "external_id": null}}});
    let (status, second) = rest(&t, Method::PUT, path, &key, Some(body), &[]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["meta"], json!({"created": false}));
    assert_eq!(second["data"]["id"], first["data"]["id"]);
    assert_eq!(second["data"]["attributes"]["name"], "Rest Sync");
    assert_eq!(second["data"]["attributes"]["tags"], json!(["b"]));
    let body = json!({"data": {"type": "partner", "attributes": {"external_id": "other"}}});
    let (status, err) = rest(&t, Method::PUT, path, &key, Some(body), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        err["errors"][0]["source"],
        json!({"pointer": "/data/attributes/external_id"})
    );
}
