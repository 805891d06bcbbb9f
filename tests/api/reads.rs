//! ListPartners, ListAvailablePartners, ListWholesalers and GetPartner.

use partners::grpc::pb;
use tonic::Code;

use crate::support::*;

fn list_req(business: &uuid::Uuid) -> pb::ListPartnersRequest {
    pb::ListPartnersRequest {
        business_uuid: business.to_string(),
        ..Default::default()
    }
}

#[tokio::test]
async fn list_partners_puts_preferred_first_and_carries_business_context() {
    let t = TestApp::start().await;
    let zeta = t.simple_partner("Zeta Pay", &["payments"]).await;
    let alpha = t.simple_partner("Alpha POS", &["pos"]).await;
    let mid = t.simple_partner("Mid Books", &["accounting"]).await;
    t.prefer(t.world.business_a, zeta.id).await;
    t.prefer(t.world.business_b, alpha.id).await;
    t.integrate(t.world.business_a, alpha.id, pb::IntegrationStatus::Active)
        .await;
    t.connect(&t.world.user_key_a, mid.id).await;

    let page = t
        .client()
        .list_partners(with_key(
            pb::ListPartnersRequest::default(),
            &t.world.user_key_a,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(
        names(&page.partners),
        ["Zeta Pay", "Alpha POS", "Mid Books"]
    );
    let p = &page.partners;
    assert_eq!(
        (p[0].preferred, p[1].preferred, p[2].preferred),
        (Some(true), Some(false), Some(false))
    );
    assert_eq!(
        p[1].integration_status,
        pb::IntegrationStatus::Active as i32
    );
    assert_eq!(
        p[0].integration_status,
        pb::IntegrationStatus::Unspecified as i32
    );
    assert_eq!((p[0].connected, p[2].connected), (Some(false), Some(true)));
    assert_eq!(p[2].stats.as_ref().expect("stats").users_count, 1);
    let meta = page.meta.expect("meta");
    assert_eq!(
        (
            meta.page,
            meta.per_page,
            meta.total.expect("total"),
            meta.total_pages.expect("total pages")
        ),
        (1, 25, 3, 1)
    );

    // The same list for business B: its own preference, no user context for a service key.
    let page = t
        .client()
        .list_partners(with_key(
            list_req(&t.world.business_b),
            &t.world.service_key,
        ))
        .await
        .expect("list b")
        .into_inner();
    assert_eq!(
        names(&page.partners),
        ["Alpha POS", "Mid Books", "Zeta Pay"]
    );
    assert_eq!(page.partners[0].preferred, Some(true));
    assert_eq!(page.partners[0].integration_status, 0);
    assert_eq!(page.partners[0].connected, None);
}

#[tokio::test]
async fn list_partners_filters_combine_as_documented() {
    let t = TestApp::start().await;
    let mk =
        |name: &str, cats: &[&str], wcats: &[&str], countries: &[&str], active: bool| pb::Partner {
            name: name.into(),
            categories: cats.iter().map(|s| s.to_string()).collect(),
            wholesaler_categories: wcats.iter().map(|s| s.to_string()).collect(),
            country_codes: countries.iter().map(|s| s.to_string()).collect(),
            active,
            ..Default::default()
        };
    let pos = t.partner(mk("Pos One", &["pos"], &[], &["DE"], true)).await;
    t.partner(mk("Books Two", &["accounting"], &[], &["GB"], true))
        .await;
    t.partner(mk(
        "Drinks Three",
        &["wholesaler"],
        &["beverages"],
        &["AT", "DE"],
        true,
    ))
    .await;
    t.partner(mk("Old Four", &["pos", "legacy"], &[], &["FR"], false))
        .await;
    t.prefer(t.world.business_a, pos.id).await;

    let cases: Vec<(pb::ListPartnersFilter, Vec<&str>)> = vec![
        (
            pb::ListPartnersFilter {
                categories: vec!["pos".into(), "accounting".into()],
                ..Default::default()
            },
            vec!["Pos One", "Books Two", "Old Four"],
        ),
        (
            pb::ListPartnersFilter {
                excluded_categories: vec!["legacy".into(), "wholesaler".into()],
                ..Default::default()
            },
            vec!["Pos One", "Books Two"],
        ),
        (
            pb::ListPartnersFilter {
                wholesaler_categories: vec!["beverages".into()],
                ..Default::default()
            },
            vec!["Drinks Three"],
        ),
        (
            pb::ListPartnersFilter {
                country_codes: vec!["de".into()],
                ..Default::default()
            },
            vec!["Pos One", "Drinks Three"],
        ),
        (
            pb::ListPartnersFilter {
                preferred: Some(true),
                ..Default::default()
            },
            vec!["Pos One"],
        ),
        (
            pb::ListPartnersFilter {
                preferred: Some(false),
                ..Default::default()
            },
            vec!["Books Two", "Drinks Three", "Old Four"],
        ),
        (
            pb::ListPartnersFilter {
                active: Some(false),
                ..Default::default()
            },
            vec!["Old Four"],
        ),
        (
            pb::ListPartnersFilter {
                categories: vec!["pos".into()],
                active: Some(true),
                country_codes: vec!["DE".into()],
                ..Default::default()
            },
            vec!["Pos One"],
        ),
    ];
    for (filter, expected) in cases {
        let mut req = list_req(&t.world.business_a);
        req.filter = Some(filter.clone());
        let page = t
            .client()
            .list_partners(with_key(req, &t.world.service_key))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(names(&page.partners), expected, "filter {filter:?}");
        assert_eq!(
            page.meta.expect("meta").total.expect("total"),
            expected.len() as i64
        );
    }
}

/// Categories and countries together match partners having one of the categories in one of the
/// countries (the index asks for `category@CC` pairs): categories holding `@` are no exception,
/// and the pairs follow an update of either list.
#[tokio::test]
async fn categories_and_countries_together_match_pairs_and_follow_updates() {
    let t = TestApp::start().await;
    let mk = |name: &str, cats: &[&str], countries: &[&str]| pb::Partner {
        name: name.into(),
        categories: cats.iter().map(|s| s.to_string()).collect(),
        country_codes: countries.iter().map(|s| s.to_string()).collect(),
        active: true,
        ..Default::default()
    };
    t.partner(mk("Alpha", &["pos", "a@b"], &["DE", "AT"])).await;
    let bravo = t.partner(mk("Bravo", &["pos"], &["FR"])).await;
    t.partner(mk("Charlie", &["payments"], &["DE"])).await;
    t.partner(mk("Delta", &["a"], &[])).await;
    t.partner(mk("Echo", &["a@DE"], &["AT"])).await;

    let list = |cats: &[&str], countries: &[&str], search: &str| {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        let req = pb::ListPartnersRequest {
            filter: Some(pb::ListPartnersFilter {
                categories: cats.iter().map(|s| s.to_string()).collect(),
                country_codes: countries.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            search: search.into(),
            ..Default::default()
        };
        async move {
            let page = client
                .list_partners(with_key(req, &key))
                .await
                .expect("list")
                .into_inner();
            let total = page.meta.expect("meta").total.expect("total");
            let names: Vec<String> = page.partners.into_iter().map(|p| p.name).collect();
            assert_eq!(total, names.len() as i64, "total matches the page");
            names
        }
    };
    assert_eq!(list(&["pos"], &["DE"], "").await, ["Alpha"]);
    assert_eq!(
        list(&["pos", "payments"], &["DE", "fr"], "").await,
        ["Alpha", "Bravo", "Charlie"]
    );
    assert_eq!(list(&["a@b"], &["AT"], "").await, ["Alpha"]);
    assert_eq!(list(&["a"], &["DE"], "").await, Vec::<String>::new());
    assert_eq!(list(&["a@DE"], &["AT"], "").await, ["Echo"]);
    assert_eq!(list(&["pos", "payments"], &["DE"], "ar").await, ["Charlie"]);

    let mut admin = t.admin();
    admin
        .update_partner(with_key(
            pb::UpdatePartnerRequest {
                partner: Some(pb::Partner {
                    id: bravo.id,
                    country_codes: vec!["DE".into()],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["country_codes".into()],
                }),
            },
            &t.world.service_key,
        ))
        .await
        .expect("update");
    assert_eq!(list(&["pos"], &["DE"], "").await, ["Alpha", "Bravo"]);
    assert_eq!(list(&["pos"], &["FR"], "").await, Vec::<String>::new());
}

#[tokio::test]
async fn search_is_a_case_insensitive_literal_substring() {
    let t = TestApp::start().await;
    for name in [
        "100% Organic",
        "100 Percent",
        "a_b Supplies",
        "axb Supplies",
        r"Back\Slash",
    ] {
        t.simple_partner(name, &["x"]).await;
    }
    let cases = [
        ("%", vec!["100% Organic"]),
        ("_", vec!["a_b Supplies"]),
        (r"\", vec![r"Back\Slash"]),
        ("  organic ", vec!["100% Organic"]),
        ("SUPPLIES", vec!["a_b Supplies", "axb Supplies"]),
        ("nothing-like-this", vec![]),
    ];
    for (search, expected) in cases {
        let mut req = list_req(&t.world.business_a);
        req.search = search.into();
        let page = t
            .client()
            .list_partners(with_key(req, &t.world.service_key))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(names(&page.partners), expected, "search {search:?}");
    }
}

#[tokio::test]
async fn paging_has_exact_totals_and_stable_order() {
    let t = TestApp::start().await;
    // Same names: the id breaks ties.
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(t.simple_partner("Same Name", &["x"]).await.id);
    }
    let mut seen = Vec::new();
    for page_no in 1..=4 {
        let mut req = list_req(&t.world.business_a);
        req.page = Some(page_no);
        req.per_page = Some(3);
        let page = t
            .client()
            .list_partners(with_key(req, &t.world.service_key))
            .await
            .expect("list")
            .into_inner();
        let meta = page.meta.expect("meta");
        assert_eq!(
            (
                meta.page,
                meta.per_page,
                meta.total.expect("total"),
                meta.total_pages.expect("total pages")
            ),
            (page_no, 3, 7, 3)
        );
        let expected_len = match page_no {
            1 | 2 => 3,
            3 => 1,
            _ => 0,
        };
        assert_eq!(page.partners.len(), expected_len);
        seen.extend(page.partners.iter().map(|p| p.id));
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn sort_orders_by_the_given_keys_with_id_last() {
    let t = TestApp::start().await;
    let a = t.simple_partner("Able", &["x"]).await;
    let b = t.simple_partner("Baker", &["x"]).await;
    let c = t.simple_partner("Charlie", &["x"]).await;
    for (partner, clicks) in [(&b, 2), (&c, 1)] {
        for _ in 0..clicks {
            t.client()
                .create_partner_click_event(with_key(
                    pb::CreatePartnerClickEventRequest {
                        id: partner.id,
                        event_type: pb::EventType::Website as i32,
                        ..Default::default()
                    },
                    &t.world.user_key_a,
                ))
                .await
                .expect("click");
        }
    }
    let order = |sort: &str| {
        let mut req = list_req(&t.world.business_a);
        req.sort = sort.into();
        let client = t.client();
        let key = t.world.service_key.clone();
        async move {
            let mut client = client;
            names(
                &client
                    .list_partners(with_key(req, &key))
                    .await
                    .expect("list")
                    .into_inner()
                    .partners,
            )
        }
    };
    assert_eq!(order("-clicks").await, ["Baker", "Charlie", "Able"]);
    assert_eq!(order("clicks,-name").await, ["Able", "Charlie", "Baker"]);
    assert_eq!(order("-name").await, ["Charlie", "Baker", "Able"]);
    assert_eq!(order("created_at").await, ["Able", "Baker", "Charlie"]);
    // The orders the sort indexes serve (migration 11), both directions, ties by id ascending.
    assert_eq!(order("-created_at").await, ["Charlie", "Baker", "Able"]);
    assert_eq!(order("-updated_at").await, ["Charlie", "Baker", "Able"]);
    assert_eq!(order("-users_count").await, ["Able", "Baker", "Charlie"]);
    assert_eq!(
        order("users_count,-name").await,
        ["Charlie", "Baker", "Able"]
    );
    let _ = a;
}

#[tokio::test]
async fn list_partners_rejects_each_bad_field() {
    let t = TestApp::start().await;
    let base = || list_req(&uuid::Uuid::nil());
    let filter = |f: pb::ListPartnersFilter| pb::ListPartnersRequest {
        filter: Some(f),
        ..base()
    };
    let too_many: Vec<String> = (0..51).map(|i| format!("c{i}")).collect();
    let cases: Vec<(pb::ListPartnersRequest, &str)> = vec![
        (
            pb::ListPartnersRequest {
                business_uuid: "not-a-uuid".into(),
                ..base()
            },
            "business_uuid",
        ),
        (
            pb::ListPartnersRequest {
                page: Some(0),
                ..base()
            },
            "page",
        ),
        (
            pb::ListPartnersRequest {
                per_page: Some(0),
                ..base()
            },
            "per_page",
        ),
        (
            pb::ListPartnersRequest {
                per_page: Some(101),
                ..base()
            },
            "per_page",
        ),
        (
            pb::ListPartnersRequest {
                search: "   ".into(),
                ..base()
            },
            "search",
        ),
        (
            pb::ListPartnersRequest {
                search: "x".repeat(101),
                ..base()
            },
            "search",
        ),
        (
            pb::ListPartnersRequest {
                include: vec!["owners".into()],
                ..base()
            },
            "include",
        ),
        (
            pb::ListPartnersRequest {
                sort: "price".into(),
                ..base()
            },
            "sort",
        ),
        (
            filter(pb::ListPartnersFilter {
                categories: too_many.clone(),
                ..Default::default()
            }),
            "filter.categories",
        ),
        (
            filter(pb::ListPartnersFilter {
                excluded_categories: vec!["".into()],
                ..Default::default()
            }),
            "filter.excluded_categories",
        ),
        (
            filter(pb::ListPartnersFilter {
                wholesaler_categories: vec!["x".repeat(65)],
                ..Default::default()
            }),
            "filter.wholesaler_categories",
        ),
        (
            filter(pb::ListPartnersFilter {
                country_codes: vec!["DEU".into()],
                ..Default::default()
            }),
            "filter.country_codes",
        ),
    ];
    for (req, field) in cases {
        let status = t
            .client()
            .list_partners(with_key(req, &t.world.service_key))
            .await
            .expect_err(field);
        assert_invalid(&status, &[field]);
    }
}

#[tokio::test]
async fn business_context_rules_for_service_and_user_keys() {
    let t = TestApp::start().await;
    t.simple_partner("Only", &["x"]).await;
    // A service key must name the business of ListPartners.
    let status = t
        .client()
        .list_partners(with_key(
            pb::ListPartnersRequest::default(),
            &t.world.service_key,
        ))
        .await
        .expect_err("required");
    assert_invalid(&status, &["business_uuid"]);
    // An unknown business is NOT_FOUND.
    let status = t
        .client()
        .list_partners(with_key(
            list_req(&uuid::Uuid::new_v4()),
            &t.world.service_key,
        ))
        .await
        .expect_err("unknown");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
    // A user key naming another (existing) business gets NOT_FOUND, like a missing one.
    let status = t
        .client()
        .list_partners(with_key(list_req(&t.world.business_b), &t.world.user_key_a))
        .await
        .expect_err("other business");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
    // Naming its own business is fine.
    let page = t
        .client()
        .list_partners(with_key(list_req(&t.world.business_a), &t.world.user_key_a))
        .await
        .expect("own business")
        .into_inner();
    assert_eq!(page.partners.len(), 1);
    // The other reads apply the same rule.
    let status = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest {
                business_uuid: t.world.business_b.to_string(),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("other business");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
}

#[tokio::test]
async fn includes_carry_only_the_business_in_context() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Shared", &["pos"]).await;
    t.connect(&t.world.user_key_a, p.id).await;
    t.connect(&t.world.user_key_a2, p.id).await;
    t.connect(&t.world.user_key_b, p.id).await;
    t.integrate(t.world.business_a, p.id, pb::IntegrationStatus::Pending)
        .await;
    t.integrate(t.world.business_b, p.id, pb::IntegrationStatus::Failed)
        .await;
    let include = vec!["users".to_owned(), "partner_integrations".to_owned()];

    let page = t
        .client()
        .list_partners(with_key(
            pb::ListPartnersRequest {
                include: include.clone(),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("list")
        .into_inner();
    let got = &page.partners[0];
    let mut users: Vec<String> = got.users.iter().map(|u| u.uuid.clone()).collect();
    users.sort();
    let mut expected = vec![t.world.user_a.to_string(), t.world.user_a2.to_string()];
    expected.sort();
    assert_eq!(users, expected);
    assert!(
        got.users
            .iter()
            .all(|u| u.business_uuid == t.world.business_a.to_string())
    );
    assert_eq!(got.partner_integrations.len(), 1);
    assert_eq!(
        got.partner_integrations[0].business_uuid,
        t.world.business_a.to_string()
    );
    assert_eq!(got.stats.as_ref().expect("stats").users_count, 3);

    let one = t
        .client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: p.id,
                include,
                ..Default::default()
            },
            &t.world.user_key_b,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(one.users.len(), 1);
    assert_eq!(one.users[0].uuid, t.world.user_b.to_string());
    assert_eq!(
        one.partner_integrations[0].status,
        pb::IntegrationStatus::Failed as i32
    );

    // Without an include nothing is loaded.
    let bare = t
        .client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: p.id,
                ..Default::default()
            },
            &t.world.user_key_b,
        ))
        .await
        .expect("get")
        .into_inner();
    assert!(bare.users.is_empty() && bare.partner_integrations.is_empty());
}

#[tokio::test]
async fn available_lists_active_available_and_coming_soon_only() {
    let t = TestApp::start().await;
    let mk = |name: &str, status: pb::PartnerStatus, active: bool, cat: &str| pb::Partner {
        name: name.into(),
        status: status as i32,
        active,
        categories: vec![cat.into()],
        ..Default::default()
    };
    t.partner(mk("A Ready", pb::PartnerStatus::Available, true, "pos"))
        .await;
    t.partner(mk("B Soon", pb::PartnerStatus::ComingSoon, true, "pos"))
        .await;
    t.partner(mk("C Gone", pb::PartnerStatus::Unavailable, true, "pos"))
        .await;
    t.partner(mk("D Inactive", pb::PartnerStatus::Available, false, "pos"))
        .await;
    t.partner(mk(
        "E Books",
        pb::PartnerStatus::Available,
        true,
        "accounting",
    ))
    .await;
    let list = |filter: Option<pb::ListAvailablePartnersFilter>, search: &str| {
        let mut client = t.client();
        let req = pb::ListAvailablePartnersRequest {
            filter,
            search: search.into(),
            ..Default::default()
        };
        let key = t.world.user_key_a.clone();
        async move {
            client
                .list_available_partners(with_key(req, &key))
                .await
                .map(|r| names(&r.into_inner().partners))
        }
    };
    assert_eq!(
        list(None, "").await.expect("all"),
        ["A Ready", "B Soon", "E Books"]
    );
    let soon = pb::ListAvailablePartnersFilter {
        status: vec![pb::PartnerStatus::ComingSoon as i32],
        ..Default::default()
    };
    assert_eq!(list(Some(soon), "").await.expect("soon"), ["B Soon"]);
    let pos = pb::ListAvailablePartnersFilter {
        categories: vec!["pos".into()],
        ..Default::default()
    };
    assert_eq!(
        list(Some(pos), "").await.expect("pos"),
        ["A Ready", "B Soon"]
    );
    assert_eq!(list(None, "books").await.expect("search"), ["E Books"]);
    let bad = pb::ListAvailablePartnersFilter {
        status: vec![pb::PartnerStatus::Unavailable as i32],
        ..Default::default()
    };
    assert_invalid(
        &list(Some(bad), "").await.expect_err("bad status"),
        &["filter.status"],
    );
    let bad = pb::ListAvailablePartnersFilter {
        categories: vec!["".into()],
        ..Default::default()
    };
    assert_invalid(
        &list(Some(bad), "").await.expect_err("bad category"),
        &["filter.categories"],
    );
}

#[tokio::test]
async fn wholesalers_lists_only_wholesalers_with_paging() {
    let t = TestApp::start().await;
    t.simple_partner("Not A Wholesaler", &["pos"]).await;
    for name in ["W1", "W2", "W3"] {
        t.simple_partner(name, &["wholesaler", "food"]).await;
    }
    let page = t
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
        .expect("list")
        .into_inner();
    assert_eq!(names(&page.partners), ["W3"]);
    assert_eq!(page.meta.expect("meta").total.expect("total"), 3);
    let status = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest {
                per_page: Some(1000),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("per_page");
    assert_invalid(&status, &["per_page"]);
    let status = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest {
                include: vec!["users,".into()],
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("include");
    assert_invalid(&status, &["include"]);
}

#[tokio::test]
async fn get_partner_finds_live_partners_only() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Findable", &["pos"]).await;
    let got = t
        .client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: p.id,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.name, "Findable");
    assert_eq!(got.preferred, Some(false));
    assert_eq!(got.connected, Some(false));
    let missing = t
        .client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: p.id + 1000,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("missing");
    assert_code(&missing, Code::NotFound, "NOT_FOUND");
    for (req, field) in [
        (
            pb::GetPartnerRequest {
                id: 0,
                ..Default::default()
            },
            "id",
        ),
        (
            pb::GetPartnerRequest {
                id: p.id,
                business_uuid: "x".into(),
                ..Default::default()
            },
            "business_uuid",
        ),
        (
            pb::GetPartnerRequest {
                id: p.id,
                include: vec!["nope".into()],
                ..Default::default()
            },
            "include",
        ),
    ] {
        let status = t
            .client()
            .get_partner(with_key(req, &t.world.user_key_a))
            .await
            .expect_err(field);
        assert_invalid(&status, &[field]);
    }
    t.admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id: p.id },
            &t.world.service_key,
        ))
        .await
        .expect("delete");
    let gone = t
        .client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: p.id,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("deleted");
    assert_code(&gone, Code::NotFound, "NOT_FOUND");
}

/// Plain GetPartner calls made at the same time share one statement; each still gets its own
/// partner and the preference, integration and connection of its own business and user. The
/// table lock holds the first statement, so the other calls queue and are read together. With
/// two statements allowed, the second starts once a backlog has formed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_share_a_statement_and_keep_their_own_context() {
    for read_batches in [1, 2] {
        concurrent_reads(partners::config::ServerLimits {
            read_batches,
            ..Default::default()
        })
        .await;
    }
}

async fn concurrent_reads(limits: partners::config::ServerLimits) {
    let t = TestApp::start_with(limits).await;
    let (a, b) = (t.world.business_a, t.world.business_b);
    let p1 = t.simple_partner("One", &["pos"]).await;
    let p2 = t.simple_partner("Two", &["pos"]).await;
    let p3 = t.simple_partner("Three", &["pos"]).await;
    t.prefer(a, p1.id).await;
    t.prefer(b, p2.id).await;
    t.integrate(a, p2.id, pb::IntegrationStatus::Active).await;
    t.connect(&t.world.user_key_a, p3.id).await;
    let missing = p3.id + 1000;
    // (key, business named in the request, business in context, acting user is user A)
    let callers = [
        (t.world.user_key_a.clone(), String::new(), Some(a), true),
        (t.world.service_key.clone(), b.to_string(), Some(b), false),
        (t.world.service_key.clone(), String::new(), None, false),
    ];
    for (key, business, _, _) in &callers {
        let warm = pb::GetPartnerRequest {
            id: p1.id,
            business_uuid: business.clone(),
            include: Vec::new(),
        };
        t.client()
            .get_partner(with_key(warm, key))
            .await
            .expect("warm the caches");
    }

    let lock = TableLock::take(&t.db.url, "partners");
    let mut calls = Vec::new();
    for round in 0..3 {
        for (c, (key, business, context, user_a)) in callers.iter().enumerate() {
            for id in [p1.id, p2.id, p3.id, missing] {
                let mut client = t.client();
                let request = with_key(
                    pb::GetPartnerRequest {
                        id,
                        business_uuid: business.clone(),
                        include: Vec::new(),
                    },
                    key,
                );
                let expected = (id, *context, *user_a);
                calls.push(tokio::spawn(async move {
                    let got = client.get_partner(request).await;
                    (round, c, expected, got)
                }));
            }
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    lock.release();

    for call in calls {
        let (round, c, (id, context, user_a), got) = call.await.expect("join");
        let what = format!("round {round}, caller {c}, partner {id}");
        if id == missing {
            assert_code(&got.expect_err(&what), Code::NotFound, "NOT_FOUND");
            continue;
        }
        let got = got.expect(&what).into_inner();
        assert_eq!(got.id, id, "{what}");
        let preferred = context.map(|bz| (bz == a && id == p1.id) || (bz == b && id == p2.id));
        assert_eq!(got.preferred, preferred, "{what}");
        let integrated = context == Some(a) && id == p2.id;
        let status = if integrated {
            pb::IntegrationStatus::Active
        } else {
            pb::IntegrationStatus::Unspecified
        };
        assert_eq!(got.integration_status, status as i32, "{what}");
        let connected = user_a.then_some(id == p3.id);
        assert_eq!(got.connected, connected, "{what}");
    }
}

/// Links carry the user's business: when a user moves to another business, `include=users` of
/// each business follows (the link's business moves with the user).
#[tokio::test]
async fn a_user_who_moves_business_takes_their_links_along() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Movable", &["pos"]).await;
    t.connect(&t.world.user_key_a2, p.id).await;
    let users_seen_by = |business: uuid::Uuid| {
        let mut client = t.client();
        let key = t.world.service_key.clone();
        async move {
            let got = client
                .get_partner(with_key(
                    pb::GetPartnerRequest {
                        id: p.id,
                        business_uuid: business.to_string(),
                        include: vec!["users".into()],
                    },
                    &key,
                ))
                .await
                .expect("get")
                .into_inner();
            got.users
                .iter()
                .map(|u| (u.uuid.clone(), u.business_uuid.clone()))
                .collect::<Vec<_>>()
        }
    };
    let a2 = t.world.user_a2.to_string();
    let (a, b) = (t.world.business_a, t.world.business_b);
    assert_eq!(users_seen_by(a).await, vec![(a2.clone(), a.to_string())]);
    assert_eq!(users_seen_by(b).await, vec![]);

    t.admin()
        .upsert_user(with_key(
            pb::UpsertUserRequest {
                uuid: a2.clone(),
                business_uuid: b.to_string(),
                email: "moved@example.com".into(),
                name: "Moved".into(),
            },
            &t.world.service_key,
        ))
        .await
        .expect("move the user");
    assert_eq!(users_seen_by(a).await, vec![]);
    assert_eq!(users_seen_by(b).await, vec![(a2, b.to_string())]);
    assert_eq!(
        t.count(
            "SELECT count(*) AS n FROM partner_users pu JOIN users u ON u.id = pu.user_id \
             WHERE pu.business_id <> u.business_id"
        ),
        0
    );
}
