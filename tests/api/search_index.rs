//! The lists' in-memory copy (`src/serving/lists`): lists it answers equal the SQL path's
//! answers, and writes (through the API or straight to the database) are seen by the very next
//! list, which the copy answers once the follower laid the change over it (no full reload).

use std::time::{Duration, Instant};

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use partners::app::{self, RunningApp};
use partners::config::{DbConfig, ServerLimits};
use partners::grpc::pb;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;
use partners::serving::lists::ListStats as SearchStats;
use tonic::transport::Channel;

use crate::support::*;

/// A second server on the test's database that answers every list by SQL.
pub(crate) async fn sql_only(t: &TestApp) -> (RunningApp, PartnerServiceClient<Channel>) {
    let limits = ServerLimits {
        search_index_max_partners: 0,
        ..ServerLimits::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app = app::start(&DbConfig::for_url(&t.db.url), &limits, listener, None)
        .await
        .expect("start sql-only app");
    let channel = channel_to(app.grpc_addr).await;
    (app, PartnerServiceClient::new(channel))
}

fn stats(t: &TestApp) -> SearchStats {
    t.app.as_ref().expect("running").services.lists.stats()
}

fn db_version(t: &TestApp) -> i64 {
    t.count("SELECT version AS n FROM partner_search_state")
}

fn search_req(search: &str) -> pb::ListPartnersRequest {
    pb::ListPartnersRequest {
        search: search.to_owned(),
        ..Default::default()
    }
}

/// ListPartners with only a search term, as the holder of `key`.
async fn search_as(t: &TestApp, search: &str, key: &str) -> pb::ListPartnersResponse {
    t.client()
        .list_partners(with_key(search_req(search), key))
        .await
        .expect("list")
        .into_inner()
}

/// Lists (which notice a stale copy) until the index holds the database's current version.
async fn until_index_is_current(t: &TestApp) {
    until_current_with(t, &t.world.user_key_a).await
}

/// Waits until the copy has applied every change in the log (the follower also refreshed the
/// cached preference sets a change names).
async fn until_followed(t: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let last = t.count("SELECT coalesce(max(sequence), 0) AS n FROM partner_changes");
        if stats(t).sequence == last as u64 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "follower behind {last}: {:?}",
            stats(t)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn until_current_with(t: &TestApp, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let current = t.app.as_ref().expect("running").services.lists.version();
        if current == Some(db_version(t)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "index at {current:?}, database at {}",
            db_version(t)
        );
        search_as(t, "a", key).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const WORDS: [&str; 8] = [
    "Harbor",
    "HARBOUR",
    "Müller",
    "100%",
    "Har_bor",
    r"Back\Slash",
    "Supply",
    "über",
];
const CATEGORIES: [&str; 5] = ["pos", "payments", "accounting", "wholesaler", "delivery"];
const COUNTRIES: [&str; 3] = ["DE", "AT", "FR"];

/// 60 partners with names, categories, countries, statuses and active flags that cover every
/// filter; business A prefers every third.
async fn seed(t: &TestApp) -> Vec<pb::Partner> {
    let mut made = Vec::new();
    for i in 0..60usize {
        let name = format!(
            "{} {} {}",
            WORDS[i % WORDS.len()],
            WORDS[(i / 3 + 1) % WORDS.len()],
            i % 7
        );
        let categories: Vec<String> = [i % 5, (i * 3 + 1) % 5]
            .iter()
            .map(|&c| CATEGORIES[c].to_owned())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let wholesaler = categories.iter().any(|c| c == "wholesaler");
        let status = [
            pb::PartnerStatus::Available,
            pb::PartnerStatus::ComingSoon,
            pb::PartnerStatus::Unavailable,
        ][i % 3];
        let partner = t
            .partner(pb::Partner {
                name,
                categories,
                wholesaler_categories: if wholesaler {
                    vec![["produce", "drinks"][i % 2].to_owned()]
                } else {
                    Vec::new()
                },
                country_codes: vec![COUNTRIES[i % 3].to_owned()],
                active: i % 4 != 0,
                status: status as i32,
                ..Default::default()
            })
            .await;
        if i % 3 == 0 {
            t.prefer(t.world.business_a, partner.id).await;
        }
        made.push(partner);
    }
    made
}

/// The list requests compared: every search term with every filter, both orders the index keeps
/// and two it does not, first pages, a middle page and a page past the end.
fn requests() -> Vec<pb::ListPartnersRequest> {
    let searches = [
        "", "harbor", "HAR", "100%", "_", r"\", "r s", "zzz", "über", "a", "müller", " 3",
    ];
    let filters = [
        pb::ListPartnersFilter::default(),
        pb::ListPartnersFilter {
            categories: vec!["pos".into(), "payments".into()],
            ..Default::default()
        },
        pb::ListPartnersFilter {
            categories: vec!["pos".into(), "wholesaler".into()],
            country_codes: vec!["de".into()],
            ..Default::default()
        },
        pb::ListPartnersFilter {
            excluded_categories: vec!["wholesaler".into(), "nowhere".into()],
            ..Default::default()
        },
        pb::ListPartnersFilter {
            wholesaler_categories: vec!["produce".into()],
            ..Default::default()
        },
        pb::ListPartnersFilter {
            preferred: Some(true),
            ..Default::default()
        },
        pb::ListPartnersFilter {
            preferred: Some(false),
            active: Some(true),
            ..Default::default()
        },
        pb::ListPartnersFilter {
            active: Some(false),
            categories: vec!["unknown".into()],
            ..Default::default()
        },
    ];
    let mut out = Vec::new();
    for search in searches {
        for filter in &filters {
            for (sort, page, per_page) in [
                ("", 1, 25),
                ("name", 1, 4),
                ("", 2, 3),
                ("-clicks,name", 1, 4),
                ("-created_at", 2, 3),
            ] {
                out.push(pb::ListPartnersRequest {
                    search: search.to_owned(),
                    filter: Some(filter.clone()),
                    sort: sort.to_owned(),
                    page: Some(page),
                    per_page: Some(per_page),
                    include: if page == 2 {
                        vec!["users".into(), "partner_integrations".into()]
                    } else {
                        Vec::new()
                    },
                    // Facets counted in the copy (or by Postgres, with tags) on the first pages.
                    facets: match (page, per_page) {
                        (1, 25) => vec!["categories".into(), "status".into()],
                        (1, 4) if sort.is_empty() || sort == "name" => {
                            vec!["country_codes".into(), "tags".into()]
                        }
                        _ => Vec::new(),
                    },
                    ..Default::default()
                });
            }
        }
        for (sort, page) in [
            ("-name", 1),
            ("-clicks,name", 1),
            ("", 40),
            ("-created_at", 1),
            ("-created_at", 2),
            ("users_count,-name", 1),
        ] {
            out.push(pb::ListPartnersRequest {
                search: search.to_owned(),
                sort: sort.to_owned(),
                page: Some(page),
                ..Default::default()
            });
        }
    }
    out
}

/// Runs `indexed` (a call to the server with the index), then `by_sql` (the same call to the
/// SQL-only server); asserts that the answers are equal and that the index answered the first.
async fn served_alike<T: PartialEq + std::fmt::Debug>(
    t: &TestApp,
    what: &str,
    indexed: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    by_sql: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> T {
    let before = stats(t).served;
    let indexed = indexed.await.expect("call (index)").into_inner();
    assert_eq!(stats(t).served, before + 1, "index served {what}");
    let by_sql = by_sql.await.expect("call (sql)").into_inner();
    assert_eq!(indexed, by_sql, "{what}");
    indexed
}

/// Whether the index should answer `req`: in an order it keeps (the default or `name`), an
/// ASCII term or none (any page, also one past the end: the copy and the business's cached
/// preferences tell the total); without a term in another order, unless filtered on the
/// preference (the copy counts the total, Postgres finds the page); everything else takes the
/// SQL path.
fn index_covers(req: &pb::ListPartnersRequest) -> bool {
    let by_preference = req.filter.as_ref().is_some_and(|f| f.preferred.is_some());
    let kept_order = req.sort.is_empty() || req.sort == "name";
    if req.search.trim().is_empty() {
        return kept_order || !by_preference;
    }
    req.search.trim().is_ascii() && kept_order
}

#[tokio::test]
async fn index_answers_lists_exactly_as_sql_does() {
    let t = TestApp::start().await;
    seed(&t).await;
    t.connect(&t.world.user_key_a, 1).await;
    let (other, mut sql) = sql_only(&t).await;
    until_index_is_current(&t).await;

    let mut served = 0;
    for (key, business) in [
        (&t.world.user_key_a, String::new()),
        (&t.world.service_key, t.world.business_b.to_string()),
    ] {
        for mut req in requests() {
            req.business_uuid = business.clone();
            let before = stats(&t);
            let indexed = t
                .client()
                .list_partners(with_key(req.clone(), key))
                .await
                .expect("list (index)")
                .into_inner();
            let after = stats(&t);
            let by_sql = sql
                .list_partners(with_key(req.clone(), key))
                .await
                .expect("list (sql)")
                .into_inner();
            assert_eq!(indexed, by_sql, "{req:?}");
            let answered = after.served - before.served;
            assert_eq!(
                answered,
                u64::from(index_covers(&req)),
                "index served {req:?}"
            );
            served += answered;
        }
    }
    assert!(served > 250, "the index answered {served} lists");
    assert_eq!(stats(&t).loads, 1, "the seed was followed change by change");
    assert!(stats(&t).deltas > 0);
    assert_eq!(
        stats(&t).preference_loads,
        2,
        "each business's preferences loaded once"
    );
    assert_eq!(other.services.lists.stats(), SearchStats::default());

    // ListAvailablePartners: the kind's own conditions, with and without a status filter.
    for status in [vec![], vec![pb::PartnerStatus::ComingSoon as i32]] {
        for search in ["", "harbor", "1", "zzz"] {
            let req = pb::ListAvailablePartnersRequest {
                search: search.to_owned(),
                filter: Some(pb::ListAvailablePartnersFilter {
                    categories: vec!["pos".into(), "delivery".into()],
                    status: status.clone(),
                    record: None,
                }),
                ..Default::default()
            };
            let mut client = t.client();
            served_alike(
                &t,
                &format!("{req:?}"),
                client.list_available_partners(with_key(req.clone(), &t.world.user_key_a)),
                sql.list_available_partners(with_key(req.clone(), &t.world.user_key_a)),
            )
            .await;
        }
    }
    // ListWholesalers (never searched): pages and totals from the copy, except by clicks.
    for (page, per_page, sort) in [(1, 5, ""), (2, 5, ""), (3, 5, "-clicks"), (9, 5, "")] {
        let req = pb::ListWholesalersRequest {
            page: Some(page),
            per_page: Some(per_page),
            sort: sort.to_owned(),
            ..Default::default()
        };
        let mut client = t.client();
        let indexed = served_alike(
            &t,
            &format!("{req:?}"),
            client.list_wholesalers(with_key(req.clone(), &t.world.user_key_a)),
            sql.list_wholesalers(with_key(req.clone(), &t.world.user_key_a)),
        )
        .await;
        assert!(indexed.meta.expect("meta").total.expect("total") > 5);
    }
    other.shutdown().await.expect("stop sql-only app");
}

#[tokio::test]
async fn writes_are_seen_by_the_next_list() {
    let t = TestApp::start().await;
    let made = seed(&t).await;
    until_index_is_current(&t).await;
    let list = |search: &'static str| search_as(&t, search, &t.world.user_key_a);
    let served = stats(&t).served;
    let first = list("harbor").await;
    assert_eq!(stats(&t).served, served + 1);
    let total = first.meta.expect("meta").total.expect("total");
    assert!(total > 0);

    // Renamed through the admin API: found at once (the copy is trusted only once it holds the
    // change), and served by the copy without a full reload.
    let loads = stats(&t).loads;
    let renamed = made
        .iter()
        .find(|p| !p.name.to_lowercase().contains("harbor"))
        .expect("a partner without the word");
    t.rename(renamed.id, "Zz New Harbor Co").await;
    let page = list("harbor").await;
    assert_eq!(page.meta.expect("meta").total.expect("total"), total + 1);
    assert!(names(&page.partners).contains(&"Zz New Harbor Co".to_owned()));
    until_index_is_current(&t).await;
    let page = list("harbor").await;
    assert!(names(&page.partners).contains(&"Zz New Harbor Co".to_owned()));
    assert!(stats(&t).served > served + 1, "answered by the copy");

    // Deleted through the admin API: gone at once.
    let gone = first.partners[0].clone();
    t.admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id: gone.id },
            &t.world.service_key,
        ))
        .await
        .expect("delete");
    let page = list("harbor").await;
    assert_eq!(page.meta.expect("meta").total.expect("total"), total);
    assert!(!page.partners.iter().any(|p| p.id == gone.id));

    // Written by another process straight to the table: seen at once as well.
    until_index_is_current(&t).await;
    let version = db_version(&t);
    t.db.conn()
        .batch_execute(&format!(
            "UPDATE partners SET categories = '{{}}', status = 'coming_soon' WHERE id = {}",
            renamed.id
        ))
        .expect("update by hand");
    assert_eq!(db_version(&t), version + 1, "the trigger moved the version");
    let filtered = |t: &TestApp| {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        async move {
            client
                .list_available_partners(with_key(
                    pb::ListAvailablePartnersRequest {
                        search: "zz new".into(),
                        filter: Some(pb::ListAvailablePartnersFilter {
                            status: vec![pb::PartnerStatus::ComingSoon as i32],
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    &key,
                ))
                .await
                .expect("available")
                .into_inner()
        }
    };
    assert_eq!(names(&filtered(&t).await.partners), ["Zz New Harbor Co"]);
    until_index_is_current(&t).await;
    let served = stats(&t).served;
    assert_eq!(names(&filtered(&t).await.partners), ["Zz New Harbor Co"]);
    assert_eq!(stats(&t).served, served + 1, "answered by the copy");
    assert_eq!(
        stats(&t).loads,
        loads,
        "changes laid over, never a full reload"
    );

    // Totals the copy counts (no search) follow writes at once too.
    let wholesalers = |t: &TestApp| {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        async move {
            client
                .list_wholesalers(with_key(pb::ListWholesalersRequest::default(), &key))
                .await
                .expect("wholesalers")
                .into_inner()
                .meta
                .expect("meta")
                .total
                .expect("total")
        }
    };
    until_index_is_current(&t).await;
    let served = stats(&t).served;
    let before = wholesalers(&t).await;
    assert_eq!(stats(&t).served, served + 1, "total from the copy");
    t.simple_partner("Yet Another Wholesaler", &["wholesaler"])
        .await;
    assert_eq!(wholesalers(&t).await, before + 1);

    // Counters do not move the version: clicks and connects leave the copy current, and the
    // lists it answers carry the new counts.
    until_index_is_current(&t).await;
    let version = db_version(&t);
    let clicked = page.partners[0].id;
    t.client()
        .create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                id: clicked,
                event_type: pb::EventType::Website as i32,
                request_id: "search-index-1".into(),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("click");
    t.connect(&t.world.user_key_a, clicked).await;
    assert_eq!(db_version(&t), version);
    let served = stats(&t).served;
    let page = list("harbor").await;
    assert_eq!(stats(&t).served, served + 1);
    let partner = page
        .partners
        .iter()
        .find(|p| p.id == clicked)
        .expect("clicked partner listed");
    let counters = partner.stats.as_ref().expect("stats");
    assert_eq!((counters.website_clicks, counters.users_count), (1, 1));
    assert_eq!(partner.connected, Some(true));
}

#[tokio::test]
async fn a_directory_larger_than_the_limit_is_served_by_sql() {
    let t = TestApp::start_with(ServerLimits {
        search_index_max_partners: 10,
        ..ServerLimits::default()
    })
    .await;
    for i in 0..11 {
        t.simple_partner(&format!("Harbor {i:02}"), &["pos"]).await;
    }
    let search = &t.app.as_ref().expect("running").services.lists;
    // The follower drops the copy once it holds more than 10 partners, and does not load it
    // again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while search.version().is_some() {
        assert!(Instant::now() < deadline, "the copy was not dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = search.stats();
    let page = search_as(&t, "harbor", &t.world.user_key_a).await;
    assert_eq!(page.meta.expect("meta").total.expect("total"), 11);
    let page = search_as(&t, "harbor", &t.world.user_key_a).await;
    assert_eq!(page.meta.expect("meta").total.expect("total"), 11);
    assert_eq!(search.version(), None);
    assert_eq!(search.stats().loads, 1);
    assert_eq!(search.stats().served, before.served);
    assert_eq!(search.stats().fell_back, before.fell_back + 2);
}

/// A business's preferences are cached for the pages of searches; a preference written through
/// the API or straight to the table reorders the very next page (the cached set is not trusted
/// past its version), which the index still serves after one reload of that business's set.
#[tokio::test]
async fn preference_writes_are_seen_by_the_next_list() {
    let t = TestApp::start().await;
    let mut made = Vec::new();
    for name in ["Harbor A", "Harbor B", "Harbor C", "Harbor D", "Elsewhere"] {
        made.push(t.simple_partner(name, &["pos"]).await);
    }
    until_index_is_current(&t).await;
    let (_other, mut sql) = sql_only(&t).await;
    // The first page of two, as the index and as SQL answer it (they must agree), and the
    // index's counters around the call.
    let mut page_of_list = async |search: &str, filter: Option<pb::ListPartnersFilter>| {
        let req = pb::ListPartnersRequest {
            search: search.into(),
            per_page: Some(2),
            filter,
            ..Default::default()
        };
        let before = stats(&t);
        let indexed = t
            .client()
            .list_partners(with_key(req.clone(), &t.world.user_key_a))
            .await
            .expect("list (index)")
            .into_inner();
        let after = stats(&t);
        assert_eq!(after.served, before.served + 1, "index served {req:?}");
        let by_sql = sql
            .list_partners(with_key(req.clone(), &t.world.user_key_a))
            .await
            .expect("list (sql)")
            .into_inner();
        assert_eq!(indexed, by_sql, "{req:?}");
        let total = indexed.meta.expect("meta").total.expect("total");
        (
            names(&indexed.partners),
            total,
            after.preference_loads - before.preference_loads,
        )
    };
    let preferred_only = Some(pb::ListPartnersFilter {
        preferred: Some(true),
        ..Default::default()
    });

    // A list loaded business A's set (this one, or one that waited for the copy); the next
    // ones find it in the cache.
    assert_eq!(
        page_of_list("harbor", None).await.0,
        ["Harbor A".to_owned(), "Harbor B".to_owned()]
    );
    assert!(stats(&t).preference_loads >= 1);
    assert_eq!(
        page_of_list("harbor", None).await,
        (vec!["Harbor A".to_owned(), "Harbor B".to_owned()], 4, 0),
        "from the cache"
    );

    // Through the API: Harbor D is preferred, so it comes first. The set is read again by the
    // list if it comes before the follower, else by the follower (counted here once followed).
    let loads = stats(&t).preference_loads;
    t.prefer(t.world.business_a, made[3].id).await;
    assert_eq!(
        page_of_list("harbor", None).await.0,
        ["Harbor D".to_owned(), "Harbor A".to_owned()]
    );
    until_followed(&t).await;
    assert!((1..=2).contains(&(stats(&t).preference_loads - loads)));
    assert_eq!(
        page_of_list("harbor", preferred_only.clone()).await,
        (vec!["Harbor D".to_owned()], 1, 0)
    );
    // Lists without a search term are cut from the same set.
    assert_eq!(
        page_of_list("", None).await,
        (vec!["Harbor D".to_owned(), "Elsewhere".to_owned()], 5, 0)
    );

    // Straight to the table by another process: seen at once as well.
    let version = |t: &TestApp| {
        t.count(&format!(
            "SELECT preferences_version AS n FROM businesses WHERE uuid = '{}'",
            t.world.business_a
        ))
    };
    let before = version(&t);
    t.db.conn()
        .batch_execute(&format!(
            "INSERT INTO partner_preferences (business_id, partner_id) \
             SELECT id, {} FROM businesses WHERE uuid = '{}'",
            made[2].id, t.world.business_a
        ))
        .expect("prefer by hand");
    assert_ne!(version(&t), before, "the trigger moved the version");
    assert_eq!(
        page_of_list("harbor", preferred_only.clone()).await.0,
        ["Harbor C".to_owned(), "Harbor D".to_owned()]
    );
    // Once followed, the set in the cache is current: the next list loads nothing.
    until_followed(&t).await;
    assert_eq!(
        page_of_list("harbor", preferred_only.clone()).await,
        (vec!["Harbor C".to_owned(), "Harbor D".to_owned()], 2, 0)
    );
    t.db.conn()
        .batch_execute("DELETE FROM partner_preferences")
        .expect("unprefer by hand");
    assert_eq!(
        page_of_list("harbor", preferred_only.clone()).await.0,
        Vec::<String>::new()
    );
    until_followed(&t).await;
    assert_eq!(
        page_of_list("", preferred_only.clone()).await,
        (vec![], 0, 0)
    );
    assert_eq!(
        page_of_list("harbor", None).await,
        (vec!["Harbor A".to_owned(), "Harbor B".to_owned()], 4, 0)
    );

    // Other businesses' preferences leave this one's set alone.
    t.prefer(t.world.business_b, made[1].id).await;
    until_followed(&t).await;
    assert_eq!(page_of_list("harbor", None).await.2, 0);
}

#[tokio::test]
async fn a_missing_version_row_means_sql_answers() {
    let t = TestApp::start().await;
    for name in ["Harbor One", "Harbor Two", "Elsewhere"] {
        t.simple_partner(name, &["pos"]).await;
    }
    until_index_is_current(&t).await;
    t.db.conn()
        .batch_execute("DELETE FROM partner_search_state")
        .expect("delete the version row");
    let before = stats(&t);
    for _ in 0..2 {
        let page = search_as(&t, "harbor", &t.world.user_key_a).await;
        assert_eq!(names(&page.partners), ["Harbor One", "Harbor Two"]);
    }
    let after = stats(&t);
    assert_eq!(after.served, before.served);
    assert_eq!(after.fell_back, before.fell_back + 2);
}

#[tokio::test]
async fn seed_bench_tells_running_indexes() {
    // The benchmark data generator (`loadgen seed`) writes with triggers off (replica mode) and
    // moves the version itself.
    let t = TestApp::start().await;
    let before = db_version(&t);
    let mut conn = t.db.conn();
    let out = loadgen::data::seed(&mut conn, &loadgen::data::Scale::smoke()).expect("seed");
    let user_key = out
        .iter()
        .find(|(k, _)| k == "user_key")
        .map(|(_, v)| v.clone())
        .expect("user key");
    assert!(db_version(&t) > before);
    let expected: i64 = diesel::sql_query(
        "SELECT count(*) AS n FROM partners WHERE deleted_at IS NULL AND lower(name) LIKE '%harbor%'",
    )
    .get_result::<Count>(&mut conn)
    .expect("count")
    .n;
    until_current_with(&t, &user_key).await;
    let served = stats(&t).served;
    let page = search_as(&t, "Harbor", &user_key).await;
    assert_eq!(page.meta.expect("meta").total.expect("total"), expected);
    assert!(expected > 0);
    assert_eq!(stats(&t).served, served + 1);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Bursts of concurrent writes of every kind (renames that move partners in list order, new
/// categories and countries, creations, deletions, preferences), each followed at once by lists
/// compared with the SQL path: the copy is mid-way through following the log, yet every answer is
/// exact; it follows change by change (one full load) and rebuilds itself once many changed.
#[tokio::test]
async fn lists_during_bursts_of_writes_equal_the_sql_path() {
    let t = TestApp::start().await;
    let mut live = seed(&t).await;
    let (other, mut sql) = sql_only(&t).await;
    until_index_is_current(&t).await;
    let requests = requests();
    let (mut compared, mut covered) = (0, 0);
    for round in 0..30usize {
        let mut writes = Vec::new();
        for k in 0..4usize {
            let i = round * 4 + k;
            let target = live[(i * 7) % live.len()].id;
            let admin = t.admin();
            let key = t.world.service_key.clone();
            let business = t.world.business_a.to_string();
            let write = match i % 6 {
                0 | 1 => {
                    // A name that lands elsewhere in list order and matches other searches.
                    let name = format!("{} {} {i}", WORDS[(i * 5) % 8], WORDS[(i + 3) % 8]);
                    pb::Partner {
                        id: target,
                        name,
                        ..Default::default()
                    }
                }
                2 => pb::Partner {
                    id: target,
                    categories: vec![CATEGORIES[i % 5].into(), format!("new-{}", i % 3)],
                    country_codes: vec![["PL", "DE"][i % 2].into()],
                    status: pb::PartnerStatus::ComingSoon as i32,
                    active: i % 4 == 0,
                    ..Default::default()
                },
                _ => pb::Partner::default(),
            };
            writes.push(tokio::spawn(async move {
                let mut admin = admin;
                match i % 6 {
                    0..=2 => {
                        let paths: Vec<String> = if i % 6 == 2 {
                            ["categories", "country_codes", "status", "active"]
                                .map(String::from)
                                .to_vec()
                        } else {
                            vec!["name".into()]
                        };
                        admin
                            .update_partner(with_key(
                                pb::UpdatePartnerRequest {
                                    partner: Some(write),
                                    update_mask: Some(prost_types::FieldMask { paths }),
                                },
                                &key,
                            ))
                            .await
                            .expect("update");
                        None
                    }
                    3 => Some(
                        admin
                            .create_partner(with_key(
                                pb::CreatePartnerRequest {
                                    request_id: String::new(),
                                    partner: Some(pb::Partner {
                                        name: format!("Harbor Burst {i}"),
                                        categories: vec!["pos".into()],
                                        country_codes: vec!["DE".into()],
                                        active: true,
                                        status: pb::PartnerStatus::Available as i32,
                                        ..Default::default()
                                    }),
                                },
                                &key,
                            ))
                            .await
                            .expect("create")
                            .into_inner(),
                    ),
                    4 => {
                        admin
                            .set_partner_preference(with_key(
                                pb::SetPartnerPreferenceRequest {
                                    partner_id: target,
                                    business_uuid: business,
                                    preferred: i % 12 < 6,
                                },
                                &key,
                            ))
                            .await
                            .expect("prefer");
                        None
                    }
                    _ => None,
                }
            }));
        }
        for write in writes {
            if let Some(made) = write.await.expect("write task") {
                live.push(made);
            }
        }
        if round % 3 == 2 {
            let gone = live.remove((round * 11) % live.len());
            t.admin()
                .delete_partner(with_key(
                    pb::DeletePartnerRequest { id: gone.id },
                    &t.world.service_key,
                ))
                .await
                .expect("delete");
        }
        for req in requests.iter().skip(round * 7).step_by(53).take(10) {
            let indexed = t
                .client()
                .list_partners(with_key(req.clone(), &t.world.user_key_a))
                .await
                .expect("list (copy)")
                .into_inner();
            let by_sql = sql
                .list_partners(with_key(req.clone(), &t.world.user_key_a))
                .await
                .expect("list (sql)")
                .into_inner();
            assert_eq!(indexed, by_sql, "round {round}: {req:?}");
            compared += 1;
            covered += u64::from(index_covers(req));
        }
    }
    assert!(compared >= 250, "{compared} lists compared");
    let s = stats(&t);
    assert_eq!(s.loads, 1, "followed change by change: {s:?}");
    assert!(s.compactions >= 1, "rebuilt once many changed: {s:?}");
    // Every list the copy covers is answered by it, but for those that found it behind and
    // still found it behind after waiting for the follower.
    assert!(
        s.served + s.waited >= covered && covered > 100,
        "the copy answered {covered} covered lists: {s:?}"
    );
    other.shutdown().await.expect("stop sql-only app");
}

/// While the follower is held up (a test transaction locks the log's state table, which the
/// follower reads first and no list reads), the copy is behind every write. A list that no
/// change since touches is still answered by the copy, exactly as SQL answers it; a list a
/// change does touch waits for the follower, then takes the SQL path, also exact.
#[tokio::test]
async fn lists_no_change_touches_are_answered_by_a_copy_behind_the_database() {
    let t = TestApp::start().await;
    seed(&t).await;
    let (other, mut sql) = sql_only(&t).await;
    until_index_is_current(&t).await;
    until_followed(&t).await;
    let key = t.world.user_key_a.clone();
    let list = |sort: &str, search: &str, filter: Option<pb::ListPartnersFilter>| {
        pb::ListPartnersRequest {
            sort: sort.into(),
            search: search.into(),
            filter,
            per_page: Some(10),
            ..Default::default()
        }
    };
    let not_preferred = Some(pb::ListPartnersFilter {
        preferred: Some(false),
        ..Default::default()
    });
    let requests = [
        list("", "", None),                      // preferred first, then by name
        list("name", "", None),                  // by name
        list("", "harbor", None),                // a search
        list("-created_at", "", None),           // the database finds the page
        list("name", "", not_preferred.clone()), // the preference filters
    ];
    let compare = |sql: &mut PartnerServiceClient<Channel>, req: pb::ListPartnersRequest| {
        let (mut copy, mut sql, key) = (t.client(), sql.clone(), key.clone());
        async move {
            let by_copy = copy.list_partners(with_key(req.clone(), &key)).await;
            let by_sql = sql.list_partners(with_key(req.clone(), &key)).await;
            let by_copy = by_copy.expect("list (copy)").into_inner();
            assert_eq!(by_copy, by_sql.expect("list (sql)").into_inner(), "{req:?}");
            by_copy
        }
    };
    // A partner on the last page by name that business A does not prefer and whose name lacks
    // the search term: renamed so that it keeps its place, it touches none of the lists above.
    let by_name = compare(&mut sql, list("name", "", not_preferred.clone())).await;
    let all = by_name.meta.expect("meta").total.expect("total");
    let last_page = i32::try_from((all + 9) / 10).expect("pages");
    let mut last = list("name", "", not_preferred);
    last.page = Some(last_page);
    let last = compare(&mut sql, last).await.partners;
    let far = last
        .iter()
        .rev()
        .find(|p| !p.name.to_ascii_lowercase().contains("harbor"))
        .expect("a partner far from every first page")
        .clone();
    assert!(last_page > 1, "{all} partners");

    let mut holder = t.db.conn();
    holder
        .batch_execute("BEGIN; LOCK TABLE partner_change_state IN ACCESS EXCLUSIVE MODE")
        .expect("hold the follower");
    t.rename(far.id, &format!("{} z", far.name)).await;
    let before = stats(&t);
    for req in &requests {
        compare(&mut sql, req.clone()).await;
    }
    let after = stats(&t);
    assert_eq!(
        after.unaffected,
        before.unaffected + requests.len() as u64,
        "every list answered by the copy behind the database: {after:?}"
    );
    assert_eq!(after.fell_back, before.fell_back, "{after:?}");
    assert_eq!(
        after.sequence, before.sequence,
        "the follower is held: {after:?}"
    );

    // A partner renamed to sort first touches the lists by name: each waits for the follower,
    // which is held, and SQL answers it.
    let moved = by_name.partners.last().expect("a page").id;
    t.rename(moved, "0 First").await;
    let page = compare(&mut sql, requests[1].clone()).await;
    assert_eq!(page.partners[0].name, "0 First");
    let touched = stats(&t);
    assert_eq!(touched.fell_back, after.fell_back + 1, "{touched:?}");
    assert_eq!(touched.unaffected, after.unaffected, "{touched:?}");

    holder
        .batch_execute("COMMIT")
        .expect("release the follower");
    until_followed(&t).await;
    assert_eq!(compare(&mut sql, requests[1].clone()).await, page);
    let followed = stats(&t);
    assert_eq!(followed.fell_back, touched.fell_back, "{followed:?}");
    assert_eq!(followed.loads, 1, "followed, not reloaded: {followed:?}");
    other.shutdown().await.expect("stop sql-only app");
}

/// A partner deleted outright (an operator's `DELETE`; the service only soft-deletes) leaves no
/// change row: the statement resets the copies (migration 20), so no list is answered from a
/// copy that still holds the partner.
#[tokio::test]
async fn a_partner_deleted_outright_reloads_the_copy() {
    let t = TestApp::start().await;
    let made = seed(&t).await;
    until_index_is_current(&t).await;
    let loads = stats(&t).loads;
    let total = |page: pb::ListPartnersResponse| page.meta.expect("meta").total.expect("total");
    let before = total(search_as(&t, "", &t.world.user_key_a).await);
    let gone = made.last().expect("partners").id;
    t.db.conn()
        .batch_execute(&format!(
            "DELETE FROM partner_preferences WHERE partner_id = {gone}; \
             DELETE FROM partners WHERE id = {gone}"
        ))
        .expect("delete outright");
    assert_eq!(
        total(search_as(&t, "", &t.world.user_key_a).await),
        before - 1
    );
    until_index_is_current(&t).await;
    assert!(stats(&t).loads > loads, "loaded in full: {:?}", stats(&t));
}
