//! Cursor pagination (issue 22, part 3): `page_token` / `next_page_token` on the three lists,
//! over gRPC and REST. A walk by tokens gives the numbered pages' order in every sort; a token is
//! bound to its query and signed; a walk while partners are created and deleted returns every
//! partner that existed throughout exactly once; a page deep in the list reads a page's rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::RunQueryDsl;
use partners::grpc::pb;
use partners::model::partner::{
    After, KeyValue, ListKind, ListQuery, Scope, SortField, keyset_page_sql,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tonic::{Code, Status};

use crate::integration::rest;
use crate::support::*;

/// A list request of one of the three lists.
#[derive(Clone)]
enum Req {
    Partners(pb::ListPartnersRequest),
    Available(pb::ListAvailablePartnersRequest),
    Wholesalers(pb::ListWholesalersRequest),
}

impl Req {
    fn partners(sort: &str, search: &str) -> Req {
        Req::Partners(pb::ListPartnersRequest {
            sort: sort.into(),
            search: search.into(),
            ..Default::default()
        })
    }

    /// The same request with a page size, a page token and optionally a page number.
    async fn call(
        &self,
        t: &TestApp,
        key: &str,
        per_page: i32,
        token: &str,
        page: Option<i32>,
    ) -> Result<(Vec<i64>, pb::PageMeta), Status> {
        let mut client = t.client();
        let (partners, meta) = match self.clone() {
            Req::Partners(mut r) => {
                (r.per_page, r.page_token, r.page) = (Some(per_page), token.into(), page);
                let a = client.list_partners(with_key(r, key)).await?.into_inner();
                (a.partners, a.meta)
            }
            Req::Available(mut r) => {
                (r.per_page, r.page_token, r.page) = (Some(per_page), token.into(), page);
                let a = client
                    .list_available_partners(with_key(r, key))
                    .await?
                    .into_inner();
                (a.partners, a.meta)
            }
            Req::Wholesalers(mut r) => {
                (r.per_page, r.page_token, r.page) = (Some(per_page), token.into(), page);
                let a = client
                    .list_wholesalers(with_key(r, key))
                    .await?
                    .into_inner();
                (a.partners, a.meta)
            }
        };
        Ok((partners.iter().map(|p| p.id).collect(), meta.expect("meta")))
    }

    /// Every page by tokens, `per_page` at a time, checking each page's meta on the way.
    async fn walk(&self, t: &TestApp, key: &str, per_page: i32) -> Vec<i64> {
        let (mut ids, first) = self.call(t, key, per_page, "", None).await.expect("page 1");
        let total = first.total.expect("the first page has the total");
        let mut token = first.next_page_token;
        let mut page = 1;
        while !token.is_empty() {
            let (more, meta) = self
                .call(t, key, per_page, &token, None)
                .await
                .expect("next page");
            page += 1;
            assert_eq!(meta.page, page, "a token carries its page number");
            assert_eq!((meta.total, meta.total_pages), (None, None));
            assert!(!more.is_empty(), "a token never leads to an empty page");
            ids.extend(more);
            token = meta.next_page_token;
        }
        assert_eq!(
            ids.len() as i64,
            total,
            "the walk has the first page's total"
        );
        ids
    }

    /// The whole list on one numbered page.
    async fn all(&self, t: &TestApp, key: &str) -> Vec<i64> {
        let (ids, meta) = self.call(t, key, 100, "", None).await.expect("all");
        assert!(meta.next_page_token.is_empty(), "one page holds them all");
        assert_eq!(meta.total, Some(ids.len() as i64));
        ids
    }
}

/// 23 partners: names with ties (three `Cursor Same`), every third a wholesaler, every fourth
/// preferred by business A, clicks with ties (id % 3), users counts all 0; created one by one.
async fn seed(t: &TestApp) -> Vec<pb::Partner> {
    let mut made = Vec::new();
    for i in 0..23usize {
        let name = if i % 7 == 3 {
            "Cursor Same".to_owned()
        } else {
            format!("Cursor {:02}", (i * 11) % 23)
        };
        let mut categories = vec!["pos".to_owned()];
        if i % 3 == 0 {
            categories.push("wholesaler".to_owned());
        }
        made.push(
            t.partner(pb::Partner {
                name,
                categories,
                active: true,
                status: pb::PartnerStatus::Available as i32,
                ..Default::default()
            })
            .await,
        );
    }
    for p in made.iter().step_by(4) {
        t.prefer(t.world.business_a, p.id).await;
    }
    t.count("WITH u AS (UPDATE partners SET website_clicks = id % 3 RETURNING 1) SELECT count(*) AS n FROM u");
    made
}

#[tokio::test]
async fn walks_by_token_give_the_numbered_order_in_every_sort() {
    let t = TestApp::start().await;
    seed(&t).await;
    let key = t.world.user_key_a.clone();
    let shapes = [
        ("default order, preferred first", Req::partners("", "")),
        ("by name", Req::partners("name", "")),
        ("newest", Req::partners("-created_at", "")),
        (
            "clicks with ties, then newest",
            Req::partners("-clicks,-created_at", ""),
        ),
        ("users count (all equal)", Req::partners("-users_count", "")),
        ("searched", Req::partners("", "cursor 1")),
        (
            "available, by name descending",
            Req::Available(pb::ListAvailablePartnersRequest {
                sort: "-name".into(),
                ..Default::default()
            }),
        ),
        (
            "wholesalers, updated",
            Req::Wholesalers(pb::ListWholesalersRequest {
                sort: "-updated_at".into(),
                ..Default::default()
            }),
        ),
    ];
    for (shape, req) in shapes {
        let all = req.all(&t, &key).await;
        assert!(all.len() > 3, "{shape}: {} partners", all.len());
        for per_page in [1, 4] {
            assert_eq!(
                req.walk(&t, &key, per_page).await,
                all,
                "{shape}, {per_page} a page"
            );
        }
    }
    // A walk may change its page size; a token's page follows the numbered page it continues.
    let req = Req::partners("name", "");
    let all = req.all(&t, &key).await;
    let (page2, meta2) = req.call(&t, &key, 5, "", Some(2)).await.expect("page 2");
    assert_eq!(page2, all[5..10]);
    let (next, meta3) = req
        .call(&t, &key, 3, &meta2.next_page_token, None)
        .await
        .expect("after page 2");
    assert_eq!(next, all[10..13]);
    assert_eq!(meta3.page, 3);
    let stats = t.app.as_ref().expect("app").services.lists.stats();
    assert!(stats.cursor_pages > 0, "{stats:?}");
}

#[tokio::test]
async fn tokens_are_bound_to_their_query_and_signed() {
    let t = TestApp::start().await;
    seed(&t).await;
    let key = t.world.user_key_a.clone();
    let by_name = Req::partners("name", "");
    let (_, meta) = by_name.call(&t, &key, 4, "", None).await.expect("page 1");
    let token = meta.next_page_token;
    assert!(!token.is_empty());

    let refused = |result: Result<(Vec<i64>, pb::PageMeta), Status>, field: &str| {
        let status = result.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_invalid(&status, &[field]);
    };
    // Another sort, another filter, another search, another list, another business.
    refused(
        Req::partners("-name", "")
            .call(&t, &key, 4, &token, None)
            .await,
        "page_token",
    );
    let mut filtered = pb::ListPartnersRequest {
        sort: "name".into(),
        ..Default::default()
    };
    filtered.filter = Some(pb::ListPartnersFilter {
        categories: vec!["wholesaler".into()],
        ..Default::default()
    });
    refused(
        Req::Partners(filtered)
            .call(&t, &key, 4, &token, None)
            .await,
        "page_token",
    );
    refused(
        Req::partners("name", "cursor")
            .call(&t, &key, 4, &token, None)
            .await,
        "page_token",
    );
    let wholesalers = Req::Wholesalers(pb::ListWholesalersRequest {
        sort: "name".into(),
        ..Default::default()
    });
    refused(
        wholesalers.call(&t, &key, 4, &token, None).await,
        "page_token",
    );
    refused(
        by_name.call(&t, &t.world.user_key_b, 4, &token, None).await,
        "page_token",
    );
    // Altered: every byte flipped in turn is refused; so is garbage and a token with a page.
    let bytes = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
    for i in 0..bytes.len() {
        let mut altered = bytes.clone();
        altered[i] ^= 0x01;
        refused(
            by_name
                .call(&t, &key, 4, &URL_SAFE_NO_PAD.encode(&altered), None)
                .await,
            "page_token",
        );
    }
    refused(
        by_name.call(&t, &key, 4, "not a token", None).await,
        "page_token",
    );
    refused(by_name.call(&t, &key, 4, &token, Some(2)).await, "page");
    // The same query, any page size: accepted.
    let (next, _) = by_name
        .call(&t, &key, 7, &token, None)
        .await
        .expect("same query");
    assert_eq!(next.len(), 7);
}

/// Walks a list by tokens while another task creates partners and deletes others, and checks
/// that every partner that existed throughout was returned exactly once and none twice.
async fn walk_during_writes(t: &TestApp, req: Req, lasting: &[i64], doomed: Vec<i64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (created, deleted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let writer = {
        let (stop, created, deleted) = (stop.clone(), created.clone(), deleted.clone());
        let mut admin = t.admin();
        let service_key = t.world.service_key.clone();
        tokio::spawn(async move {
            let mut doomed = doomed.into_iter();
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                n += 1;
                // Names spread over the whole order: before and after the walk's position.
                let name = format!("Walk {:03} new", (n * 37) % 100);
                admin
                    .create_partner(with_key(
                        pb::CreatePartnerRequest {
                            partner: Some(pb::Partner {
                                name,
                                categories: vec!["pos".into()],
                                active: true,
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        &service_key,
                    ))
                    .await
                    .expect("create during the walk");
                created.fetch_add(1, Ordering::Relaxed);
                if let Some(id) = doomed.next() {
                    admin
                        .delete_partner(with_key(pb::DeletePartnerRequest { id }, &service_key))
                        .await
                        .expect("delete during the walk");
                    deleted.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };
    let key = t.world.user_key_a.clone();
    let (mut seen, first) = req.call(t, &key, 3, "", None).await.expect("page 1");
    let (created_at_start, deleted_at_start) = (
        created.load(Ordering::Relaxed),
        deleted.load(Ordering::Relaxed),
    );
    let mut token = first.next_page_token;
    while !token.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let (ids, meta) = req.call(t, &key, 3, &token, None).await.expect("page");
        seen.extend(ids);
        token = meta.next_page_token;
    }
    let writes = (
        created.load(Ordering::Relaxed) - created_at_start,
        deleted.load(Ordering::Relaxed) - deleted_at_start,
    );
    stop.store(true, Ordering::Release);
    writer.await.expect("writer");
    assert!(
        writes.0 >= 5 && writes.1 >= 5,
        "writes during the walk: {writes:?}"
    );

    let mut times: HashMap<i64, usize> = HashMap::new();
    for id in &seen {
        *times.entry(*id).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "returned more than once: {twice:?}");
    let missed: Vec<_> = lasting
        .iter()
        .filter(|id| !times.contains_key(id))
        .collect();
    assert!(missed.is_empty(), "lasting partners missed: {missed:?}");
}

#[tokio::test]
async fn a_walk_while_partners_are_created_and_deleted_returns_each_lasting_one_once() {
    let t = TestApp::start().await;
    let (mut lasting, mut doomed) = (Vec::new(), Vec::new());
    for i in 0..90u64 {
        let p = t
            .simple_partner(&format!("Walk {:03}", (i * 53) % 100), &["pos"])
            .await;
        if i % 3 == 0 {
            doomed.push(p.id);
        } else {
            lasting.push(p.id);
        }
        if i % 5 == 0 {
            t.prefer(t.world.business_a, p.id).await;
        }
    }
    // Deletions in an order unrelated to the list's: from the end of the creation order.
    doomed.reverse();
    let half = doomed.len() / 2;
    walk_during_writes(&t, Req::partners("", ""), &lasting, doomed[..half].to_vec()).await;
    walk_during_writes(
        &t,
        Req::partners("-created_at", ""),
        &lasting,
        doomed[half..].to_vec(),
    )
    .await;
}

#[tokio::test]
async fn rest_walks_by_links_next_and_reports_bad_tokens() {
    let t = TestApp::start().await;
    seed(&t).await;
    let key = t.world.user_key_a.clone();
    let (status, all) = rest(
        &t,
        Method::GET,
        "/api/v1/partners?sort=-created_at&per_page=100",
        &key,
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ids = |doc: &Value| -> Vec<String> {
        doc["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|r| r["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let expected = ids(&all);

    let mut path = "/api/v1/partners?sort=-created_at&per_page=5".to_owned();
    let (mut walked, mut pages) = (Vec::new(), 0);
    loop {
        let (status, doc) = rest(&t, Method::GET, &path, &key, None, &[]).await;
        assert_eq!(status, StatusCode::OK, "{doc}");
        pages += 1;
        walked.extend(ids(&doc));
        if pages == 1 {
            assert_eq!(doc["meta"]["total"], expected.len());
            assert!(doc["links"]["last"].is_string());
        } else {
            assert!(doc["meta"].get("total").is_none(), "{doc}");
            assert!(doc["links"]["last"].is_null(), "{doc}");
            assert_eq!(doc["meta"]["page"], pages);
            let this = doc["links"]["self"].as_str().expect("self");
            assert!(this.contains("page_token="), "{this}");
        }
        match doc["links"]["next"].as_str() {
            Some(next) => {
                assert!(
                    next.contains("page_token=") && !next.contains("&page="),
                    "{next}"
                );
                let token = doc["meta"]["next_page_token"].as_str().expect("token");
                assert!(next.ends_with(token), "{next} carries {token}");
                path = next.to_owned();
            }
            None => {
                assert!(doc["meta"]["next_page_token"].is_null());
                break;
            }
        }
    }
    assert_eq!(walked, expected);

    let (status, doc) = rest(
        &t,
        Method::GET,
        "/api/v1/partners?sort=-created_at&page_token=AAAAAAAAAAAAAAAAAAAAAAAAAA",
        &key,
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(
        doc["errors"][0]["source"]["parameter"], "page_token",
        "{doc}"
    );
    let (_, first) = rest(
        &t,
        Method::GET,
        "/api/v1/partners?per_page=2",
        &key,
        None,
        &[],
    )
    .await;
    let token = first["meta"]["next_page_token"].as_str().expect("token");
    let (status, doc) = rest(
        &t,
        Method::GET,
        &format!("/api/v1/partners?per_page=2&page=2&page_token={token}"),
        &key,
        None,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{doc}");
    assert_eq!(doc["errors"][0]["source"]["parameter"], "page", "{doc}");
}

/// Rows the plan's scans of the walked tables read (`Actual Rows` × loops over every scan of
/// `partners` and `partner_preferred_rows`; the preferences' lookups are the planner's choice
/// of join and are left out).
fn rows_read(plan: &Value) -> f64 {
    let walked = plan["Relation Name"]
        .as_str()
        .is_some_and(|r| r == "partners" || r == "partner_preferred_rows");
    let own = if walked {
        plan["Actual Rows"].as_f64().unwrap_or(0.0) * plan["Actual Loops"].as_f64().unwrap_or(1.0)
    } else {
        0.0
    };
    own + plan["Plans"]
        .as_array()
        .map_or(0.0, |children| children.iter().map(rows_read).sum())
}

#[tokio::test]
async fn a_page_deep_in_the_list_reads_about_a_page_of_rows() {
    use diesel::connection::SimpleConnection;
    let t = TestApp::start().await;
    // 20,000 partners by SQL, all created in one statement (every created_at equal: the ties a
    // keyset must walk past), names with 2,000 ties each of ten values.
    t.db.conn()
        .batch_execute(
            "INSERT INTO partners (name, categories) \
             SELECT 'Deep ' || (g % 10), ARRAY['pos'] FROM generate_series(1, 20000) g; \
             ANALYZE partners;",
        )
        .expect("seed");
    #[derive(diesel::QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        plan: String,
    }
    let deep_id = t.count("SELECT id AS n FROM partners ORDER BY id OFFSET 15000 LIMIT 1");
    let created = t.count(
        "SELECT (extract(epoch FROM created_at) * 1000000)::bigint AS n FROM partners LIMIT 1",
    );
    // Business A prefers every 50th partner: 400 preferred, 19,600 others.
    let business = t.count(&format!(
        "SELECT id AS n FROM businesses WHERE uuid = '{}'",
        t.world.business_a
    ));
    t.db.conn()
        .batch_execute(&format!(
            "INSERT INTO partner_preferences (business_id, partner_id) \
             SELECT {business}, id FROM partners WHERE id % 50 = 0; ANALYZE;"
        ))
        .expect("preferences");
    let name = || KeyValue::Text("Deep 7".into());
    let created = KeyValue::Time(chrono::DateTime::from_timestamp_micros(created).expect("time"));
    let shapes = [
        (vec![(SortField::Name, false)], None, None, name()),
        (vec![(SortField::CreatedAt, true)], None, None, created),
        // The default order: preferred first, without and with a business, in either group.
        (vec![], None, None, name()),
        (vec![], Some(business), Some(true), name()),
        (vec![], Some(business), Some(false), name()),
    ];
    for (sort, business_id, preferred, value) in shapes {
        let scope = Scope {
            business_id,
            user_id: None,
        };
        let mut q = ListQuery::new(ListKind::All, scope, 1, 25);
        q.sort = sort.clone();
        let after = After {
            preferred,
            values: vec![value],
            id: deep_id,
        };
        assert!(after.fits(&q));
        let sql = keyset_page_sql(&q, &after, 26).with_literals();
        let plan: Plan = diesel::sql_query(format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))
            .get_result::<Plan>(&mut t.db.conn())
            .expect("explain");
        let plan: Value = serde_json::from_str(&plan.plan).expect("json plan");
        let read = rows_read(&plan[0]["Plan"]);
        // At most three parts of at most 26 rows, then the page's 26 joined with their context.
        assert!(
            read <= 26.0 * 5.0,
            "{sort:?} {preferred:?}: {read} rows read\n{plan:#}"
        );
    }
}
