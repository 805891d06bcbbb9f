//! Click events: `POST /api/v1/partners/{id}/click_event` (CreatePartnerClickEvent), with the
//! `Idempotency-Key` header as the request id; answers 201 with the event. And
//! `POST /api/v1/partner_click_events/batch` (BatchCreatePartnerClickEvents): 200 with a result
//! per event. No `Location`: a click
//! event has no URL of its own to read it back (its partner's counters show it).

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use super::{Reply, json_api, route_params};
use crate::gateway::Gateway;
use crate::gateway::document;
use crate::gateway::errors::Source;
use crate::gateway::extract::{
    click_event_type, idempotency_key, params_source, partner_id, query_params, read_json,
};
use crate::gateway::openapi::bodies::ClickEventRequest;
use crate::gateway::openapi::clicks::{ClickEventBatchDocument, ClickEventBatchRequest};
use crate::gateway::openapi::resources::ClickEventDocument;
use crate::gateway::openapi::{
    CommonErrors, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType,
};
use crate::gateway::params::Accepts;
use crate::grpc::pb;

const CONTEXT_ONLY: Accepts = Accepts {
    scalars: &["business_uuid"],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};

route_params!(
    /// Parameters of `createPartnerClickEvent`.
    ClickEventParams,
    id: true,
    accepts: CONTEXT_ONLY,
    headers: [IdempotencyKey, UserUuid, RequestId]
);

/// `POST /api/v1/partners/{id}/click_event`: CreatePartnerClickEvent.
#[utoipa::path(
    post,
    path = "/api/v1/partners/{id}/click_event",
    tag = "partners",
    operation_id = "createPartnerClickEvent",
    summary = "Record a click on a partner",
    description = "Records a website or video click by the business (and user) in context. With an \
                   `Idempotency-Key`, a replay with the same body returns 201 with the first event, and \
                   a reuse with a different body fails with 409.",
    params(ClickEventParams),
    request_body(
        description = "The click event.",
        content(
            (ClickEventRequest = "application/json"),
            (ClickEventRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 201, description = "The click event.", body = ClickEventDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn click_event(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = query_params(query, &CONTEXT_ONLY)?;
    let id = partner_id(path)?;
    let body = read_json(&headers, body).await?;
    let event_type = click_event_type(&body, id)?;
    let request_id = idempotency_key(&headers)?;
    let request = pb::CreatePartnerClickEventRequest {
        id,
        event_type,
        request_id,
        business_uuid: params.string("business_uuid"),
    };
    let source = |field: &str| match field {
        "event_type" => Source::Pointer("/data/attributes/event_type".into()),
        "request_id" => Source::Header("Idempotency-Key".into()),
        other => params_source(&params)(other),
    };
    let event = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &source,
            |mut client, request| async move { client.create_partner_click_event(request).await },
        )
        .await?;
    Ok(json_api(
        StatusCode::CREATED,
        &document::click_event_document(&event),
    ))
}

const NO_PARAMETERS: Accepts = Accepts {
    scalars: &[],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};

route_params!(
    /// Parameters of `batchCreatePartnerClickEvents`.
    ClickBatchParams,
    id: false,
    accepts: NO_PARAMETERS,
    headers: [UserUuid, RequestId]
);

/// `POST /api/v1/partner_click_events/batch`: BatchCreatePartnerClickEvents.
#[utoipa::path(
    post,
    path = "/api/v1/partner_click_events/batch",
    tag = "partners",
    operation_id = "batchCreatePartnerClickEvents",
    summary = "Record many click events",
    description = "Records up to 1,000 click events (within the 64 KiB body limit: about 500 \
                   events; gRPC takes 1,000 in any case), each checked and written on its own: \
                   `data[i]` is event i, or null when it failed, and `meta.errors` says why (their \
                   `source.pointer` points into the request). One bad event never fails the \
                   others. An event's `request_id` makes it idempotent across calls: a replay \
                   answers the first event, a reuse with a different body fails that event with \
                   `IDEMPOTENCY_KEY_REUSED`. Events without a user of their own are the \
                   `X-User-Uuid` user's (service keys).",
    params(ClickBatchParams),
    request_body(
        description = "The events.",
        content(
            (ClickEventBatchRequest = "application/json"),
            (ClickEventBatchRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 200, description = "One result per event.", body = ClickEventBatchDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn batch_click_events(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NO_PARAMETERS)?;
    let body = read_json(&headers, body).await?;
    let request = pb::BatchCreatePartnerClickEventsRequest {
        events: document::click_batch_request(&body)?,
    };
    let response = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &document::click_batch_source,
            |mut client, request| async move {
                client.batch_create_partner_click_events(request).await
            },
        )
        .await?;
    Ok(json_api(
        StatusCode::OK,
        &document::click_batch_document(&response),
    ))
}
