//! Bounded includes (issue 22, part 8): `include=users` and `include=partner_integrations` carry
//! at most 20 resources per partner with the relationship's total (gRPC `*_total`, REST
//! relationship `meta.total.expect("total")`), and ListPartnerUsers / `GET /api/v1/partners/{id}/users` page
//! through all of them with the include's business isolation.

use diesel::PgConnection;
use partners::grpc::pb;
use partners::model::{business, relation};
use reqwest::{Method, StatusCode};
use tonic::Code;
use uuid::Uuid;

use crate::bulk::rest;
use crate::support::*;

/// Creates `n` users of the business `business` named `<prefix>00`.. and connects them to
/// `partner_id`; their uuids, by name.
fn connect_users(
    conn: &mut PgConnection,
    business: Uuid,
    prefix: &str,
    n: usize,
    partner_id: i64,
) -> Vec<String> {
    let business_id = business::id_by_uuid(conn, business)
        .expect("query")
        .expect("business");
    (0..n)
        .map(|i| {
            let uuid = Uuid::new_v4();
            let name = format!("{prefix}{i:02}");
            let user = business::upsert_user(
                conn,
                uuid,
                business_id,
                &format!("{name}@example.com"),
                &name,
            )
            .expect("user");
            relation::connect(conn, partner_id, user.id).expect("connect");
            uuid.to_string()
        })
        .collect()
}

fn get(id: i64, business: Option<Uuid>, include: &[&str]) -> pb::GetPartnerRequest {
    pb::GetPartnerRequest {
        id,
        business_uuid: business.map(|b| b.to_string()).unwrap_or_default(),
        include: include.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn users_page(
    id: i64,
    business: Option<Uuid>,
    page: i32,
    per_page: i32,
) -> pb::ListPartnerUsersRequest {
    pb::ListPartnerUsersRequest {
        id,
        business_uuid: business.map(|b| b.to_string()).unwrap_or_default(),
        page: Some(page),
        per_page: Some(per_page),
    }
}

fn uuids(users: &[pb::User]) -> Vec<String> {
    users.iter().map(|u| u.uuid.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn includes_carry_at_most_twenty_with_the_total_and_list_partner_users_pages_the_rest() {
    let t = TestApp::start().await;
    let w = &t.world;
    let popular = t.simple_partner("Popular", &["pos"]).await;
    let quiet = t.simple_partner("Quiet", &["pos"]).await;
    let mut conn = t.db.conn();
    let a_users = connect_users(&mut conn, w.business_a, "a", 25, popular.id);
    let b_users = connect_users(&mut conn, w.business_b, "b", 3, popular.id);
    connect_users(&mut conn, w.business_b, "q", 1, quiet.id);
    let every: Vec<String> = a_users.iter().chain(&b_users).cloned().collect();

    // A service key without a business: every business's users, the first 20 by name.
    let all = t
        .client()
        .get_partner(with_key(
            get(popular.id, None, &["users", "partner_integrations"]),
            &w.service_key,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(uuids(&all.users), every[..20]);
    assert_eq!(all.users_total, Some(28));
    assert_eq!(all.partner_integrations_total, Some(0));
    // A business in context: its users only.
    let a = t
        .client()
        .get_partner(with_key(
            get(popular.id, Some(w.business_a), &["users"]),
            &w.service_key,
        ))
        .await
        .expect("get a")
        .into_inner();
    assert_eq!(uuids(&a.users), a_users[..20]);
    assert_eq!(
        (a.users_total, a.partner_integrations_total),
        (Some(25), None)
    );
    let b = t
        .client()
        .get_partner(with_key(get(popular.id, None, &["users"]), &w.user_key_b))
        .await
        .expect("get b")
        .into_inner();
    assert_eq!(uuids(&b.users), b_users);
    assert_eq!(b.users_total, Some(3));
    // Without the include: no total.
    let plain = t
        .client()
        .get_partner(with_key(get(popular.id, None, &[]), &w.user_key_b))
        .await
        .expect("plain")
        .into_inner();
    assert_eq!((plain.users_total, plain.users.len()), (None, 0));

    // A list page: one statement per relationship, each partner bounded on its own.
    let page = t
        .client()
        .list_available_partners(with_key(
            pb::ListAvailablePartnersRequest {
                include: vec!["users".into()],
                ..Default::default()
            },
            &w.service_key,
        ))
        .await
        .expect("list")
        .into_inner();
    let totals: Vec<(String, usize, Option<i64>)> = page
        .partners
        .iter()
        .map(|p| (p.name.clone(), p.users.len(), p.users_total))
        .collect();
    assert_eq!(
        totals,
        [
            ("Popular".into(), 20, Some(28)),
            ("Quiet".into(), 1, Some(1))
        ]
    );

    // ListPartnerUsers pages through all of them, by name, with the same isolation.
    let mut walked = Vec::new();
    for n in 1..=3 {
        let page = t
            .client()
            .list_partner_users(with_key(
                users_page(popular.id, None, n, 10),
                &w.service_key,
            ))
            .await
            .expect("users page")
            .into_inner();
        let meta = page.meta.expect("meta");
        assert_eq!(
            (
                meta.page,
                meta.total.expect("total"),
                meta.total_pages.expect("total pages")
            ),
            (n, 28, 3)
        );
        walked.extend(uuids(&page.users));
    }
    assert_eq!(walked, every);
    let past = t
        .client()
        .list_partner_users(with_key(
            users_page(popular.id, None, 9, 10),
            &w.service_key,
        ))
        .await
        .expect("past the end")
        .into_inner();
    assert!(past.users.is_empty());
    assert_eq!(past.meta.expect("meta").total.expect("total"), 28);
    let own = t
        .client()
        .list_partner_users(with_key(
            users_page(popular.id, None, 1, 100),
            &w.user_key_b,
        ))
        .await
        .expect("user key")
        .into_inner();
    assert_eq!(uuids(&own.users), b_users);
    let scoped = t
        .client()
        .list_partner_users(with_key(
            users_page(popular.id, Some(w.business_a), 1, 5),
            &w.service_key,
        ))
        .await
        .expect("scoped")
        .into_inner();
    assert_eq!(uuids(&scoped.users), a_users[..5]);
    assert_eq!(scoped.meta.expect("meta").total.expect("total"), 25);
    // Another business's uuid with a user key, a missing partner, bad paging.
    let other = t
        .client()
        .list_partner_users(with_key(
            users_page(popular.id, Some(w.business_a), 1, 5),
            &w.user_key_b,
        ))
        .await
        .expect_err("other business");
    assert_eq!(other.code(), Code::NotFound);
    let missing = t
        .client()
        .list_partner_users(with_key(users_page(999_999, None, 1, 5), &w.service_key))
        .await
        .expect_err("missing partner");
    assert_eq!(missing.code(), Code::NotFound);
    let bad = t
        .client()
        .list_partner_users(with_key(users_page(0, None, 0, 101), &w.service_key))
        .await
        .expect_err("bad paging");
    assert_invalid(&bad, &["id", "page", "per_page"]);

    // REST: the relationship's meta.total.expect("total") and related link, the users' page.
    let (status, doc) = rest(
        &t,
        Method::GET,
        &format!("/api/v1/partners/{}?include=users", popular.id),
        &w.user_key_a,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let users = &doc["data"]["relationships"]["users"];
    assert_eq!(users["data"].as_array().expect("data").len(), 20);
    assert_eq!(users["meta"], serde_json::json!({"total": 25}));
    assert_eq!(
        users["links"]["related"],
        format!("/api/v1/partners/{}/users", popular.id)
    );
    assert_eq!(doc["included"].as_array().expect("included").len(), 20);
    let (status, doc) = rest(
        &t,
        Method::GET,
        &format!("/api/v1/partners/{}/users?page=3&per_page=10", popular.id),
        &w.user_key_a,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let ids: Vec<&str> = doc["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|u| u["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, a_users[20..]);
    assert_eq!(
        normalize(doc["data"][0].clone()),
        serde_json::json!({
            "type": "user", "id": a_users[20],
            "attributes": {"name": "a20", "email": "a20@example.com",
                           "business_uuid": w.business_a.to_string(),
                           "created_at": "<time>", "updated_at": "<time>"}
        })
    );
    assert_eq!(
        doc["meta"],
        serde_json::json!({"page": 3, "per_page": 10, "total": 25, "total_pages": 3})
    );
    assert_eq!(doc["links"]["next"], serde_json::Value::Null);
    assert_eq!(
        doc["links"]["prev"],
        format!("/api/v1/partners/{}/users?per_page=10&page=2", popular.id)
    );
    let (status, doc) = rest(
        &t,
        Method::GET,
        &format!("/api/v1/partners/{}/users?per_page=0", popular.id),
        &w.user_key_a,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(doc["errors"][0]["source"]["parameter"], "per_page");
    t.stop().await;
}
