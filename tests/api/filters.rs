//! The list filters on what a syncing service knows (issue 22, part 2): `ids`, `external_ids`,
//! `tags` (any of), `all_tags` (all of), `updated_since`, `created_since` on all three lists, and
//! `status` on ListPartners, over gRPC and REST, with their violations.

use partners::grpc::pb;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tonic::Code;

use crate::integration::rest;
use crate::support::*;

/// Eight partners: tags `red`/`blue`/`green` in turns, external ids `ext-0`..`ext-7`, every third
/// unavailable, every other a wholesaler; created one after the other.
async fn seed(t: &TestApp) -> Vec<pb::Partner> {
    let mut made = Vec::new();
    for i in 0..8usize {
        let tags = match i % 3 {
            0 => vec!["red".to_owned()],
            1 => vec!["red".to_owned(), "blue".to_owned()],
            _ => vec!["green".to_owned()],
        };
        let mut categories = vec!["pos".to_owned()];
        if i % 2 == 0 {
            categories.push("wholesaler".to_owned());
        }
        let status = if i % 3 == 2 {
            pb::PartnerStatus::Unavailable
        } else {
            pb::PartnerStatus::Available
        };
        made.push(
            t.partner(pb::Partner {
                name: format!("Filter Partner {i}"),
                categories,
                tags,
                external_id: Some(format!("ext-{i}")),
                status: status as i32,
                active: true,
                ..Default::default()
            })
            .await,
        );
    }
    made
}

fn ids(partners: &[pb::Partner]) -> Vec<i64> {
    let mut ids: Vec<i64> = partners.iter().map(|p| p.id).collect();
    ids.sort_unstable();
    ids
}

fn list(record: pb::RecordFilter) -> pb::ListPartnersRequest {
    pb::ListPartnersRequest {
        filter: Some(pb::ListPartnersFilter {
            record: Some(record),
            ..Default::default()
        }),
        per_page: Some(100),
        ..Default::default()
    }
}

async fn list_ids(t: &TestApp, req: pb::ListPartnersRequest) -> (Vec<i64>, i64) {
    let page = t
        .client()
        .list_partners(with_key(req, &t.world.user_key_a))
        .await
        .expect("list")
        .into_inner();
    (
        ids(&page.partners),
        page.meta.expect("meta").total.expect("total"),
    )
}

/// The ids of a REST list page and its total.
async fn rest_ids(t: &TestApp, path: &str) -> (StatusCode, Vec<i64>, Value) {
    let (status, body) = rest(t, Method::GET, path, &t.world.user_key_a, None, &[]).await;
    let mut found: Vec<i64> = body["data"]
        .as_array()
        .map(|data| {
            data.iter()
                .filter_map(|r| r["id"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    (status, found, body)
}

#[tokio::test]
async fn lists_filter_on_ids_external_ids_tags_times_and_status() {
    let t = TestApp::start().await;
    let made = seed(&t).await;
    let pick = |which: &[usize]| ids(&which.iter().map(|&i| made[i].clone()).collect::<Vec<_>>());
    let record = |f: fn(&mut pb::RecordFilter)| {
        let mut r = pb::RecordFilter::default();
        f(&mut r);
        r
    };

    let by_ids = list_ids(&t, list(record(|r| r.ids = vec![]))).await;
    assert_eq!(by_ids.1, made.len() as i64, "no filter: all");
    let mut only = pb::RecordFilter {
        ids: vec![made[1].id, made[3].id, 999_999],
        ..Default::default()
    };
    assert_eq!(list_ids(&t, list(only.clone())).await, (pick(&[1, 3]), 2));
    only.ids.clear();
    only.external_ids = vec!["ext-2".into(), "ext-4".into(), "nope".into()];
    assert_eq!(list_ids(&t, list(only)).await, (pick(&[2, 4]), 2));

    let any = record(|r| r.tags = vec!["blue".into(), "green".into()]);
    assert_eq!(list_ids(&t, list(any)).await.0, pick(&[1, 2, 4, 5, 7]));
    let all = record(|r| r.all_tags = vec!["red".into(), "blue".into()]);
    assert_eq!(list_ids(&t, list(all)).await, (pick(&[1, 4, 7]), 3));

    // Times: created at or after the fifth; updated at or after a later rename.
    let since = |p: &pb::Partner, at: fn(&pb::Partner) -> &Option<prost_types::Timestamp>| {
        at(p).expect("a time")
    };
    let created = pb::RecordFilter {
        created_since: Some(since(&made[5], |p| &p.created_at)),
        ..Default::default()
    };
    assert_eq!(list_ids(&t, list(created)).await.0, pick(&[5, 6, 7]));
    let renamed = t.rename(made[0].id, "Filter Partner 0 renamed").await;
    let updated = pb::RecordFilter {
        updated_since: Some(since(&renamed, |p| &p.updated_at)),
        ..Default::default()
    };
    assert_eq!(list_ids(&t, list(updated)).await, (pick(&[0]), 1));

    // Status on ListPartners, with a record filter and a search.
    let mut req = list(record(|r| r.tags = vec!["green".into(), "red".into()]));
    req.search = "filter partner".into();
    let f = req.filter.as_mut().expect("filter");
    f.status = vec![pb::PartnerStatus::Unavailable as i32];
    assert_eq!(list_ids(&t, req).await, (pick(&[2, 5]), 2));

    // The other two lists take the record filters too.
    let available = t
        .client()
        .list_available_partners(with_key(
            pb::ListAvailablePartnersRequest {
                filter: Some(pb::ListAvailablePartnersFilter {
                    record: Some(record(|r| r.all_tags = vec!["red".into()])),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("available")
        .into_inner();
    assert_eq!(ids(&available.partners), pick(&[0, 1, 3, 4, 6, 7]));
    let wholesalers = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest {
                filter: Some(record(|r| r.tags = vec!["red".into()])),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("wholesalers")
        .into_inner();
    assert_eq!(ids(&wholesalers.partners), pick(&[0, 4, 6]));

    // REST: the same filters in the bracket families, and the comma form.
    let path = format!(
        "/api/v1/partners?filter[tags][]=blue&filter[tags][]=green&filter[ids]={},{},{}",
        made[1].id, made[2].id, made[3].id
    );
    let (status, found, body) = rest_ids(&t, &path).await;
    assert_eq!((status, found), (StatusCode::OK, pick(&[1, 2])), "{body}");
    assert_eq!(body["meta"]["total"], 2);
    let created_at = made[6].created_at.expect("created");
    let time = chrono::DateTime::from_timestamp(created_at.seconds, created_at.nanos as u32)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let path = format!(
        "/api/v1/partners/wholesalers?filter[created_since]={time}&filter[external_ids][]=ext-6"
    );
    let (status, found, body) = rest_ids(&t, &path).await;
    assert_eq!((status, found), (StatusCode::OK, pick(&[6])), "{body}");
    let path = "/api/v1/partners?filter[status][]=unavailable&filter[all_tags][]=green";
    let (status, found, _) = rest_ids(&t, path).await;
    assert_eq!((status, found), (StatusCode::OK, pick(&[2, 5])));
    let (status, found, _) = rest_ids(&t, "/api/v1/partners/available?filter[tags]=blue").await;
    assert_eq!((status, found), (StatusCode::OK, pick(&[1, 4, 7])));
}

#[tokio::test]
async fn bad_filter_values_are_field_violations() {
    let t = TestApp::start().await;
    let too_many: Vec<i64> = (1..=101).collect();
    let req = list(pb::RecordFilter {
        ids: too_many,
        external_ids: vec![String::new()],
        tags: vec!["x".repeat(65)],
        all_tags: vec!["ok".into()],
        updated_since: Some(prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        }),
        created_since: None,
    });
    let status = t
        .client()
        .list_partners(with_key(req, &t.world.user_key_a))
        .await
        .expect_err("invalid");
    assert_invalid(
        &status,
        &[
            "filter.record.ids",
            "filter.record.external_ids",
            "filter.record.tags",
            "filter.record.updated_since",
        ],
    );
    let mut req = list(pb::RecordFilter::default());
    req.filter.as_mut().expect("filter").status = vec![0];
    let status = t
        .client()
        .list_partners(with_key(req, &t.world.user_key_a))
        .await
        .expect_err("invalid");
    assert_invalid(&status, &["filter.status"]);
    let status = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest {
                filter: Some(pb::RecordFilter {
                    ids: vec![0],
                    ..Default::default()
                }),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_invalid(&status, &["filter.ids"]);

    for (path, parameter) in [
        (
            "/api/v1/partners?filter[updated_since]=yesterday",
            "filter[updated_since]",
        ),
        (
            "/api/v1/partners/available?filter[ids][]=one",
            "filter[ids]",
        ),
        ("/api/v1/partners?filter[tags][]=", "filter[tags]"),
    ] {
        let (status, _, body) = rest_ids(&t, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(
            body["errors"][0]["source"]["parameter"], parameter,
            "{body}"
        );
    }
}

/// Facets of ListPartners and ListAvailablePartners: counted in the copy or by Postgres, equal
/// to a server without the copy, for filters, searches and the preference; the counts match the
/// seeded data; REST answers them in `meta.facets`; an unknown field is a violation.
#[tokio::test]
async fn facets_count_the_matches_exactly() {
    let t = TestApp::start().await;
    let made = seed(&t).await;
    t.prefer(t.world.business_a, made[1].id).await;
    let (other, sql) = crate::search_index::sql_only(&t).await;
    let all = ["categories", "country_codes", "status", "tags"].map(String::from);
    let requests = [
        pb::ListPartnersRequest {
            facets: all[..3].to_vec(),
            ..Default::default()
        },
        pb::ListPartnersRequest {
            facets: all.to_vec(),
            search: "partner 1".into(),
            ..Default::default()
        },
        pb::ListPartnersRequest {
            facets: vec!["status".into(), "categories".into()],
            filter: Some(pb::ListPartnersFilter {
                categories: vec!["wholesaler".into()],
                preferred: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    for req in requests {
        let by_copy = (t
            .client()
            .list_partners(with_key(req.clone(), &t.world.user_key_a))
            .await)
            .expect("list")
            .into_inner();
        let by_sql = (sql
            .clone()
            .list_partners(with_key(req.clone(), &t.world.user_key_a))
            .await)
            .expect("list (sql)")
            .into_inner();
        assert_eq!(by_copy, by_sql, "{req:?}");
        let meta = by_copy.meta.expect("meta");
        assert_eq!(meta.facets.len(), req.facets.len(), "{req:?}");
    }
    let page = (t.client())
        .list_partners(with_key(
            pb::ListPartnersRequest {
                facets: all.to_vec(),
                per_page: Some(1),
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("list")
        .into_inner();
    let facets = page.meta.expect("meta").facets;
    let values = |field: &str| -> Vec<(String, i64)> {
        let facet = facets.iter().find(|f| f.field == field).expect("facet");
        facet
            .values
            .iter()
            .map(|v| (v.value.clone(), v.count))
            .collect()
    };
    let pairs = |items: &[(&str, i64)]| -> Vec<(String, i64)> {
        items.iter().map(|(v, n)| ((*v).to_owned(), *n)).collect()
    };
    assert_eq!(
        values("categories"),
        pairs(&[("pos", 8), ("wholesaler", 4)])
    );
    assert_eq!(
        values("status"),
        pairs(&[("available", 6), ("unavailable", 2)])
    );
    assert_eq!(
        values("tags"),
        pairs(&[("red", 6), ("blue", 3), ("green", 2)])
    );
    assert!(values("country_codes").is_empty());

    let available = (t.client())
        .list_available_partners(with_key(
            pb::ListAvailablePartnersRequest {
                facets: vec!["tags".into()],
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("available")
        .into_inner();
    let tags = &available.meta.expect("meta").facets[0];
    assert_eq!(tags.field, "tags");
    assert_eq!(tags.values[0].value, "red");
    assert_eq!(tags.values[0].count, 6);

    let (status, _, body) = rest_ids(&t, "/api/v1/partners?facets=status,tags&per_page=1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["meta"]["facets"]["status"][0]["value"], "available");
    assert_eq!(body["meta"]["facets"]["status"][0]["count"], 6);
    assert_eq!(body["meta"]["facets"]["tags"][2]["value"], "green");
    let (status, _, body) = rest_ids(&t, "/api/v1/partners?facets=colour").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["source"]["parameter"], "facets");
    other.shutdown().await.expect("stop sql-only app");
}
