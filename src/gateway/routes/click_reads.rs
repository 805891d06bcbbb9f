//! The click analytics reads: `GET /api/v1/partners/{id}/click_stats` (GetPartnerClickStats),
//! `GET /api/v1/partner_click_stats/top_partners` (ListTopPartnersByClicks) and
//! `GET /api/v1/partner_click_events` (ListPartnerClickEvents). Times are RFC 3339 parameters;
//! the rules are the gRPC layer's.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{Reply, json_api, page_link, route_params};
use crate::gateway::Gateway;
use crate::gateway::document::{PageRef, click_event_resource, time};
use crate::gateway::errors::{ApiError, Source, query_source};
use crate::gateway::extract::{check, partner_id, query_params};
use crate::gateway::openapi::clicks::{ClickEventPage, ClickStatsDocument, TopPartnersDocument};
use crate::gateway::openapi::{CommonErrors, NotFound};
use crate::gateway::params::{Accepts, Params};
use crate::grpc::pb;

const STATS: Accepts = Accepts {
    scalars: &["since", "until", "bucket", "time_zone", "business_uuid"],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};
const TOP: Accepts = Accepts {
    scalars: &["since", "until", "business_uuid", "page", "per_page"],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};
const EVENTS: Accepts = Accepts {
    scalars: &[
        "partner_id",
        "business_uuid",
        "since",
        "until",
        "page_size",
        "page_token",
    ],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};

route_params!(
    /// Parameters of `getPartnerClickStats`.
    StatsParams,
    id: true,
    accepts: STATS,
    headers: [UserUuid, RequestId]
);
route_params!(
    /// Parameters of `listTopPartnersByClicks`.
    TopParams,
    id: false,
    accepts: TOP,
    headers: [UserUuid, RequestId]
);
route_params!(
    /// Parameters of `listPartnerClickEvents`.
    EventsParams,
    id: false,
    accepts: EVENTS,
    headers: [UserUuid, RequestId]
);

/// An optional RFC 3339 time parameter.
fn time_param(
    params: &Params,
    name: &str,
    errors: &mut Vec<ApiError>,
) -> Option<prost_types::Timestamp> {
    let raw = params.string(name);
    if raw.is_empty() {
        return None;
    }
    match chrono::DateTime::parse_from_rfc3339(&raw) {
        Ok(t) => Some(prost_types::Timestamp {
            seconds: t.timestamp(),
            nanos: t.timestamp_subsec_nanos() as i32,
        }),
        Err(_) => {
            errors.push(ApiError::bad_request(
                params.source(name),
                format!("{name} must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"),
            ));
            None
        }
    }
}

fn counts(c: Option<pb::ClickCounts>) -> Value {
    let c = c.unwrap_or_default();
    json!({"clicks": c.clicks, "website_clicks": c.website_clicks, "video_clicks": c.video_clicks})
}

fn bucket_name(value: i32) -> &'static str {
    match pb::ClickBucket::try_from(value) {
        Ok(pb::ClickBucket::Hour) => "hour",
        Ok(pb::ClickBucket::Week) => "week",
        Ok(pb::ClickBucket::Month) => "month",
        _ => "day",
    }
}

/// `GET /api/v1/partners/{id}/click_stats`: GetPartnerClickStats.
#[utoipa::path(
    get,
    path = "/api/v1/partners/{id}/click_stats",
    tag = "partners",
    operation_id = "getPartnerClickStats",
    summary = "A partner's clicks over time",
    description = "The partner's clicks in [since, until) (default: the 30 days before now), in \
                   buckets of an hour, day (default), ISO week or month of an IANA time zone \
                   (default UTC), split by event type, empty buckets as zeros. The first and last \
                   buckets are whole. A user key sees its business's clicks; a service key all, \
                   or `business_uuid`'s.",
    params(StatsParams),
    responses(
        (status = 200, description = "The time series.", body = ClickStatsDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn click_stats(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    let params = query_params(query, &STATS)?;
    let id = partner_id(path)?;
    let mut errors = Vec::new();
    let since = time_param(&params, "since", &mut errors);
    let until = time_param(&params, "until", &mut errors);
    let bucket = match params.list("bucket").first().map(String::as_str) {
        None => pb::ClickBucket::Unspecified as i32,
        Some("day") => pb::ClickBucket::Day as i32,
        Some("hour") => pb::ClickBucket::Hour as i32,
        Some("week") => pb::ClickBucket::Week as i32,
        Some("month") => pb::ClickBucket::Month as i32,
        Some(_) => -1,
    };
    check(errors)?;
    let request = pb::GetPartnerClickStatsRequest {
        partner_id: id,
        since,
        until,
        bucket,
        time_zone: params.string("time_zone"),
        business_uuid: params.string("business_uuid"),
    };
    let source = |field: &str| match field {
        "partner_id" => Source::Parameter("id".into()),
        other => query_source(other),
    };
    let r = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &source,
            |mut client, request| async move { client.get_partner_click_stats(request).await },
        )
        .await?;
    let buckets: Vec<Value> = r
        .buckets
        .iter()
        .map(|b| {
            let mut value = counts(b.counts);
            value["start"] = json!(time(&b.start));
            value
        })
        .collect();
    let business = (!r.business_uuid.is_empty()).then_some(r.business_uuid.clone());
    Ok(json_api(
        StatusCode::OK,
        &json!({"data": {
            "id": r.partner_id.to_string(),
            "type": "partner_click_stats",
            "attributes": {
                "since": time(&r.since),
                "until": time(&r.until),
                "bucket": bucket_name(r.bucket),
                "time_zone": r.time_zone,
                "business_uuid": business,
                "buckets": buckets,
                "totals": counts(r.totals),
            },
        }}),
    ))
}

/// `GET /api/v1/partner_click_stats/top_partners`: ListTopPartnersByClicks.
#[utoipa::path(
    get,
    path = "/api/v1/partner_click_stats/top_partners",
    tag = "partners",
    operation_id = "listTopPartnersByClicks",
    summary = "The partners with the most clicks",
    description = "Live partners with clicks in [since, until) (whole UTC hours; default the 30 \
                   days before now, at most 366 days), most clicks first then by id, with counts \
                   by event type. A user key counts its business's clicks; a service key all, or \
                   `business_uuid`'s.",
    params(TopParams),
    responses(
        (status = 200, description = "A page of partners.", body = TopPartnersDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn top_partners(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    const PATH: &str = "/api/v1/partner_click_stats/top_partners";
    let params = query_params(query, &TOP)?;
    let mut errors = Vec::new();
    let request = pb::ListTopPartnersByClicksRequest {
        since: time_param(&params, "since", &mut errors),
        until: time_param(&params, "until", &mut errors),
        page: params.int("page", &mut errors),
        per_page: params.int("per_page", &mut errors),
        business_uuid: params.string("business_uuid"),
    };
    check(errors)?;
    let r = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &query_source,
            |mut client, request| async move { client.list_top_partners_by_clicks(request).await },
        )
        .await?;
    let meta = r.meta.unwrap_or_default();
    let link = page_link(PATH, &params);
    let data: Vec<Value> = r
        .partners
        .iter()
        .map(|p| {
            let mut attributes = counts(p.counts);
            attributes["name"] = json!(p.name);
            json!({"id": p.partner_id.to_string(), "type": "partner_click_totals", "attributes": attributes})
        })
        .collect();
    let last = meta.total_pages.unwrap_or(1).max(1);
    Ok(json_api(
        StatusCode::OK,
        &json!({
            "data": data,
            "meta": {"page": meta.page, "per_page": meta.per_page, "total": meta.total,
                     "total_pages": meta.total_pages},
            "links": {
                "self": link(PageRef::This(meta.page)),
                "first": link(PageRef::Number(1)),
                "prev": (meta.page > 1).then(|| link(PageRef::Number(meta.page - 1))),
                "next": (meta.page < last).then(|| link(PageRef::Number(meta.page + 1))),
                "last": link(PageRef::Number(last)),
            },
        }),
    ))
}

/// `GET /api/v1/partner_click_events`: ListPartnerClickEvents.
#[utoipa::path(
    get,
    path = "/api/v1/partner_click_events",
    tag = "partners",
    operation_id = "listPartnerClickEvents",
    summary = "Raw click events, newest first",
    description = "The click events of a partner (`partner_id`) and/or a business in \
                   [since, until) (default the 30 days before now), newest first. `links.next` \
                   (and `meta.next_page_token`) continues the list; a token is signed and good \
                   for the same partner and business only. A user key sees its business's events.",
    params(EventsParams),
    responses(
        (status = 200, description = "A page of click events.", body = ClickEventPage,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn click_events(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    const PATH: &str = "/api/v1/partner_click_events";
    let params = query_params(query, &EVENTS)?;
    let mut errors = Vec::new();
    let request = pb::ListPartnerClickEventsRequest {
        // gRPC reads 0 as "no partner"; a REST `partner_id=0` names none and is rejected there.
        partner_id: match params.int64("partner_id", &mut errors) {
            None => 0,
            Some(0) => -1,
            Some(id) => id,
        },
        business_uuid: params.string("business_uuid"),
        since: time_param(&params, "since", &mut errors),
        until: time_param(&params, "until", &mut errors),
        page_size: match params.int("page_size", &mut errors) {
            None => 0,
            Some(0) => -1, // 0 is gRPC's default; a REST page_size=0 is out of range
            Some(n) => n,
        },
        page_token: params.string("page_token"),
    };
    check(errors)?;
    let r = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &query_source,
            |mut client, request| async move { client.list_partner_click_events(request).await },
        )
        .await?;
    let next = (!r.next_page_token.is_empty()).then(|| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.link_pairs() {
            if k != "page_token" {
                query.append_pair(&k, &v);
            }
        }
        query.append_pair("page_token", &r.next_page_token);
        format!("{PATH}?{}", query.finish())
    });
    let token = (!r.next_page_token.is_empty()).then_some(r.next_page_token.clone());
    Ok(json_api(
        StatusCode::OK,
        &json!({
            "data": r.events.iter().map(click_event_resource).collect::<Vec<_>>(),
            "meta": {"next_page_token": token},
            "links": {"next": next},
        }),
    ))
}
