//! The lists' SQL path (the copy off): every page and total equals a full sort of every match,
//! before and after writes that move partners across the order, and the narrow tables it reads
//! (migration 13) stay equal to what they derive from, also after writes that skip triggers.

use diesel::connection::SimpleConnection;
use partners::config::ServerLimits;
use partners::grpc::pb;

use crate::support::*;

/// A server that answers every list by SQL.
async fn sql_only() -> TestApp {
    TestApp::start_with(ServerLimits {
        search_index_max_partners: 0,
        ..ServerLimits::default()
    })
    .await
}

/// Rows of `partner_list_groups` and `partner_preferred_rows` that differ from what they derive
/// from (0 when the tables agree).
fn derived_differences(t: &TestApp) -> i64 {
    let groups = "SELECT categories, wholesaler_categories, status, active, count(*)::bigint \
                  FROM partners WHERE deleted_at IS NULL GROUP BY 1, 2, 3, 4";
    let stored_groups = "SELECT categories, wholesaler_categories, status, active, partners \
                         FROM partner_list_groups WHERE partners > 0";
    let preferred = "SELECT pp.business_id, pp.partner_id, p.name, p.categories, \
                     p.wholesaler_categories, p.country_codes, p.status, p.active \
                     FROM partner_preferences pp JOIN partners p ON p.id = pp.partner_id \
                     WHERE p.deleted_at IS NULL";
    let stored_preferred = "SELECT business_id, partner_id, name, categories, \
                            wholesaler_categories, country_codes, status, active \
                            FROM partner_preferred_rows";
    let differences = |a: &str, b: &str| {
        t.count(&format!(
            "SELECT count(*) AS n FROM (({a} EXCEPT ALL {b}) UNION ALL ({b} EXCEPT ALL {a})) d"
        ))
    };
    differences(groups, stored_groups) + differences(preferred, stored_preferred)
}

const NAMES: [&str; 10] = [
    "Harbor", "harbor", "Alpha", "Zulu", "Müller", "Echo", "echo", "Beta", "Ärger", "Delta",
];
const CATEGORIES: [&str; 4] = ["pos", "accounting", "wholesaler", "payments"];
const COUNTRIES: [&str; 3] = ["DE", "AT", "FR"];

/// 36 partners: repeated names (ties broken by id), every category, country, status and active
/// flag; business A prefers every third.
async fn seed(t: &TestApp) -> Vec<pb::Partner> {
    let mut made = Vec::new();
    for i in 0..36usize {
        let mut categories = vec![CATEGORIES[i % 4].to_owned()];
        if i % 5 == 0 {
            categories.push(CATEGORIES[(i / 5) % 4].to_owned());
        }
        let wholesaler = categories.iter().any(|c| c == "wholesaler");
        let partner = t
            .partner(pb::Partner {
                name: format!("{} {}", NAMES[i % NAMES.len()], i % 3),
                categories,
                wholesaler_categories: if wholesaler {
                    vec![["produce", "drinks"][i % 2].to_owned()]
                } else {
                    Vec::new()
                },
                country_codes: vec![COUNTRIES[i % 3].to_owned()],
                active: i % 7 != 0,
                status: [
                    pb::PartnerStatus::Available,
                    pb::PartnerStatus::ComingSoon,
                    pb::PartnerStatus::Unavailable,
                ][(i / 2) % 3] as i32,
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

/// A ListPartners filter with the SQL condition on `partners p` (and `pp`, the business's
/// preference) that selects the same partners.
fn filters() -> Vec<(pb::ListPartnersFilter, &'static str)> {
    let v = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    vec![
        (pb::ListPartnersFilter::default(), "TRUE"),
        (
            pb::ListPartnersFilter {
                categories: v(&["accounting"]),
                ..Default::default()
            },
            "p.categories && '{accounting}'",
        ),
        (
            pb::ListPartnersFilter {
                categories: v(&["pos", "payments"]),
                excluded_categories: v(&["wholesaler"]),
                active: Some(true),
                ..Default::default()
            },
            "p.categories && '{pos,payments}' AND NOT p.categories && '{wholesaler}' AND p.active",
        ),
        (
            pb::ListPartnersFilter {
                wholesaler_categories: v(&["produce"]),
                ..Default::default()
            },
            "p.wholesaler_categories && '{produce}'",
        ),
        (
            pb::ListPartnersFilter {
                country_codes: v(&["DE"]),
                ..Default::default()
            },
            "p.country_codes && '{DE}'",
        ),
        (
            pb::ListPartnersFilter {
                categories: v(&["pos", "accounting"]),
                country_codes: v(&["AT", "DE"]),
                ..Default::default()
            },
            "p.categories && '{pos,accounting}' AND p.country_codes && '{AT,DE}'",
        ),
        (
            pb::ListPartnersFilter {
                preferred: Some(true),
                ..Default::default()
            },
            "pp.partner_id IS NOT NULL",
        ),
        (
            pb::ListPartnersFilter {
                preferred: Some(true),
                categories: v(&["pos", "wholesaler"]),
                country_codes: v(&["DE", "FR"]),
                ..Default::default()
            },
            "pp.partner_id IS NOT NULL AND p.categories && '{pos,wholesaler}' \
             AND p.country_codes && '{DE,FR}'",
        ),
        (
            pb::ListPartnersFilter {
                preferred: Some(false),
                active: Some(false),
                ..Default::default()
            },
            "pp.partner_id IS NULL AND NOT p.active",
        ),
        (
            pb::ListPartnersFilter {
                preferred: Some(false),
                country_codes: v(&["AT"]),
                ..Default::default()
            },
            "pp.partner_id IS NULL AND p.country_codes && '{AT}'",
        ),
    ]
}

/// The orders compared: the API's sort and the SQL order it stands for.
const ORDERS: [(&str, &str); 4] = [
    ("", "(pp.partner_id IS NOT NULL) DESC, p.name, p.id"),
    ("name", "p.name, p.id"),
    ("-created_at", "p.created_at DESC, p.id"),
    ("-name", "p.name DESC, p.id"),
];

/// The ids matching `condition` in `order`, for business A, by sorting every match.
fn reference(t: &TestApp, business: i64, condition: &str, order: &str) -> Vec<i64> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    diesel::sql_query(format!(
        "SELECT p.id FROM partners p LEFT JOIN partner_preferences pp \
         ON pp.partner_id = p.id AND pp.business_id = {business} \
         WHERE p.deleted_at IS NULL AND {condition} ORDER BY {order}"
    ))
    .load::<Id>(&mut t.db.conn())
    .expect("reference")
    .into_iter()
    .map(|r| r.id)
    .collect()
}

/// Every page (3 per page, and one past the end) of every filter in every order, as business A's
/// user, equals the reference; so do ListAvailablePartners and ListWholesalers.
async fn assert_pages_match_reference(t: &TestApp) {
    let business = t.count(&format!(
        "SELECT id AS n FROM businesses WHERE uuid = '{}'",
        t.world.business_a
    ));
    for (filter, condition) in filters() {
        for (sort, order) in ORDERS {
            let expected = reference(t, business, condition, order);
            let per_page = 3;
            let pages = expected.len() as i32 / per_page + 2;
            let mut got = Vec::new();
            for page in 1..=pages {
                let req = pb::ListPartnersRequest {
                    filter: Some(filter.clone()),
                    sort: sort.to_owned(),
                    page: Some(page),
                    per_page: Some(per_page),
                    ..Default::default()
                };
                let answer = t
                    .client()
                    .list_partners(with_key(req.clone(), &t.world.user_key_a))
                    .await
                    .expect("list")
                    .into_inner();
                assert_eq!(
                    answer.meta.expect("meta").total.expect("total"),
                    expected.len() as i64,
                    "total of {req:?}"
                );
                got.extend(answer.partners.iter().map(|p| p.id));
            }
            assert_eq!(got, expected, "{filter:?} sort {sort:?}");
        }
    }
    let available = reference(
        t,
        business,
        "p.active AND p.status IN ('available', 'coming_soon') AND p.categories && '{pos,accounting}'",
        "p.name, p.id",
    );
    let answer = t
        .client()
        .list_available_partners(with_key(
            pb::ListAvailablePartnersRequest {
                filter: Some(pb::ListAvailablePartnersFilter {
                    categories: vec!["pos".into(), "accounting".into()],
                    status: Vec::new(),
                    record: None,
                }),
                per_page: Some(100),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("available")
        .into_inner();
    assert_eq!(
        answer.meta.expect("meta").total.expect("total"),
        available.len() as i64
    );
    assert_eq!(
        answer.partners.iter().map(|p| p.id).collect::<Vec<_>>(),
        available
    );
    let wholesalers = reference(
        t,
        business,
        "p.categories @> '{wholesaler}'",
        "p.name, p.id",
    );
    let answer = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest {
                page: Some(2),
                per_page: Some(2),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("wholesalers")
        .into_inner();
    assert_eq!(
        answer.meta.expect("meta").total.expect("total"),
        wholesalers.len() as i64
    );
    assert_eq!(
        answer.partners.iter().map(|p| p.id).collect::<Vec<_>>(),
        wholesalers[2..4]
    );
}

async fn update(t: &TestApp, partner: pb::Partner, fields: &[&str]) {
    t.admin()
        .update_partner(with_key(
            pb::UpdatePartnerRequest {
                partner: Some(partner),
                update_mask: Some(prost_types::FieldMask {
                    paths: fields.iter().map(|f| (*f).to_owned()).collect(),
                }),
            },
            &t.world.service_key,
        ))
        .await
        .expect("update");
}

#[tokio::test]
async fn sql_path_pages_equal_a_full_sort_through_writes() {
    let t = sql_only().await;
    let made = seed(&t).await;
    assert_eq!(derived_differences(&t), 0);
    assert_pages_match_reference(&t).await;

    // A preferred partner renamed to the front and another to the back; a non-preferred one moved
    // to other categories and countries; one deactivated, made unavailable; a preferred one
    // deleted; preferences added and removed.
    let mut renamed = made[3].clone();
    renamed.name = "AAA first".into();
    update(&t, renamed, &["name"]).await;
    let mut renamed = made[6].clone();
    renamed.name = "zzz last".into();
    update(&t, renamed, &["name"]).await;
    let mut moved = made[4].clone();
    moved.categories = vec!["accounting".into(), "wholesaler".into()];
    moved.wholesaler_categories = vec!["produce".into()];
    moved.country_codes = vec!["AT".into(), "DE".into()];
    update(
        &t,
        moved,
        &["categories", "wholesaler_categories", "country_codes"],
    )
    .await;
    let mut off = made[9].clone();
    off.active = false;
    off.status = pb::PartnerStatus::Unavailable as i32;
    update(&t, off, &["active", "status"]).await;
    t.admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id: made[12].id },
            &t.world.service_key,
        ))
        .await
        .expect("delete");
    t.prefer(t.world.business_a, made[5].id).await;
    t.admin()
        .set_partner_preference(with_key(
            pb::SetPartnerPreferenceRequest {
                partner_id: made[15].id,
                business_uuid: t.world.business_a.to_string(),
                preferred: false,
            },
            &t.world.service_key,
        ))
        .await
        .expect("unprefer");
    assert_eq!(derived_differences(&t), 0);
    assert_pages_match_reference(&t).await;
}

#[tokio::test]
async fn narrow_tables_follow_writes_that_skip_triggers() {
    let t = sql_only().await;
    seed(&t).await;
    assert_eq!(derived_differences(&t), 0);

    // A bulk loader in replica mode (as `loadgen seed`): triggers off, then the version moved by
    // hand (migration 9), which rebuilds the narrow tables in the same transaction.
    let mut conn = t.db.conn();
    conn.batch_execute(
        "BEGIN; SET LOCAL session_replication_role = replica; \
         INSERT INTO partners (name, categories, country_codes) \
         SELECT 'Loaded ' || i, ARRAY['pos'], ARRAY['DE'] FROM generate_series(1, 20) i; \
         UPDATE partners SET categories = ARRAY['accounting'] WHERE name LIKE 'Harbor%'; \
         INSERT INTO partner_preferences (business_id, partner_id) \
         SELECT b.id, p.id FROM businesses b, partners p \
         WHERE p.name LIKE 'Loaded 1%' ON CONFLICT DO NOTHING;",
    )
    .expect("replica writes");
    // Seen from the loader's own transaction: the tables do not know yet.
    let stale = {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT coalesce(sum(partners), 0)::bigint AS n FROM partner_list_groups")
            .get_result::<N>(&mut conn)
            .expect("groups")
            .n
    };
    assert_eq!(stale, 36, "triggers were off");
    conn.batch_execute("SELECT partners_search_changed(); COMMIT;")
        .expect("version moved");
    assert_eq!(derived_differences(&t), 0);
    assert_eq!(
        t.count("SELECT sum(partners)::bigint AS n FROM partner_list_groups"),
        56
    );
    assert_pages_match_reference(&t).await;

    // TRUNCATE empties them (their own triggers, triggers on).
    t.db.conn()
        .batch_execute("TRUNCATE partners CASCADE")
        .expect("truncate");
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_list_groups"), 0);
    assert_eq!(
        t.count("SELECT count(*) AS n FROM partner_preferred_rows"),
        0
    );
}
