//! The change events' feed: `GET /api/v1/partner_events` (ListPartnerEvents, service keys only),
//! a page of `partner_events` in sequence order whose `links.next` carries the cursor.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use super::{Reply, json_api, route_params};
use crate::gateway::Gateway;
use crate::gateway::document;
use crate::gateway::errors::{ApiError, Source, query_source};
use crate::gateway::extract::{check, query_params};
use crate::gateway::openapi::resources::PartnerEventList;
use crate::gateway::openapi::{CommonErrors, Forbidden};
use crate::gateway::params::{Accepts, Params};
use crate::grpc::pb;

const PATH: &str = "/api/v1/partner_events";

const LIST_EVENTS: Accepts = Accepts {
    scalars: &["after", "limit"],
    array_filters: &["type", "partner_id"],
    bool_filters: &[],
    statuses: &[],
};

route_params!(
    /// Parameters of `listPartnerEvents`.
    ListEventsParams,
    id: false,
    accepts: LIST_EVENTS,
    headers: [RequestId]
);

/// REST source of a field of ListPartnerEventsRequest.
fn events_source(field: &str) -> Source {
    match field {
        "after_sequence" => Source::Parameter("after".into()),
        "page_size" => Source::Parameter("limit".into()),
        "types" => Source::Parameter("filter[type]".into()),
        "partner_ids" => Source::Parameter("filter[partner_id]".into()),
        other => query_source(other),
    }
}

/// The partner ids of `filter[partner_id]`, each an integer.
fn partner_ids(params: &Params, errors: &mut Vec<ApiError>) -> Vec<i64> {
    let mut ids = Vec::new();
    for raw in params.list("filter[partner_id]") {
        match raw.trim().parse::<i64>() {
            Ok(id) => ids.push(id),
            Err(_) => {
                errors.push(ApiError::bad_parameter(
                    "filter[partner_id]",
                    "values must be integers",
                ));
                break;
            }
        }
    }
    ids
}

/// The URL of the page after `after`, with the request's other parameters.
fn page_link(params: &Params) -> impl Fn(i64) -> String {
    let pairs: Vec<(String, String)> = params
        .link_pairs()
        .into_iter()
        .filter(|(name, _)| name != "after")
        .map(|(name, value)| {
            // Filters always in their repeatable form, so one value is not split at commas.
            if name.starts_with("filter[") && !name.ends_with("[]") {
                (format!("{name}[]"), value)
            } else {
                (name, value)
            }
        })
        .collect();
    move |after| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("after", &after.to_string());
        for (k, v) in &pairs {
            query.append_pair(k, v);
        }
        format!("{PATH}?{}", query.finish())
    }
}

/// `GET /api/v1/partner_events`: ListPartnerEvents.
#[utoipa::path(
    get,
    path = "/api/v1/partner_events",
    tag = "events",
    operation_id = "listPartnerEvents",
    summary = "List change events",
    description = "The change events after the sequence `after`, in sequence order (the change \
                   log: partners created, updated, deleted or restored, integrations, \
                   preferences and user links). Follow `links.next` to walk on: no event is \
                   skipped or repeated, also while writes commit out of order. A sequence older \
                   than the log's retention answers 400 `EVENTS_EXPIRED` (resync). Service keys \
                   only.",
    params(ListEventsParams),
    responses(
        (status = 200, description = "A page of events.", body = PartnerEventList,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
    ),
)]
pub async fn list_events(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    let params = query_params(query, &LIST_EVENTS)?;
    let mut errors = Vec::new();
    let request = pb::ListPartnerEventsRequest {
        after_sequence: params.int64("after", &mut errors).unwrap_or(0),
        page_size: params.int("limit", &mut errors),
        types: params.list("filter[type]"),
        partner_ids: partner_ids(&params, &mut errors),
    };
    check(errors)?;
    let after = request.after_sequence;
    let page = gw
        .call(
            gw.events(),
            &headers,
            request,
            &events_source,
            |mut client, request| async move { client.list_partner_events(request).await },
        )
        .await?;
    let link = page_link(&params);
    Ok(json_api(
        StatusCode::OK,
        &document::event_list_document(&page.events, after, page.next_after_sequence, &link),
    ))
}
