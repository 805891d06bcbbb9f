//! Webhook endpoints and deliveries over REST (service keys only), each route one call of
//! `partners.v1.WebhookAdminService`:
//! - `POST /api/v1/webhook_endpoints` (create; the document's `meta.secret` shows the secret once),
//!   `GET` (list, `page_size` and `page_token`);
//! - `GET`, `PATCH` (the attributes present), `DELETE /api/v1/webhook_endpoints/{id}`;
//! - `POST /api/v1/webhook_endpoints/{id}/rotate_secret`;
//! - `GET /api/v1/webhook_endpoints/{id}/deliveries` (`filter[state]`, `page_size`, `page_token`)
//!   and `POST .../deliveries/{delivery_id}/retry`.
//!
//! The documents are typed here, and their OpenAPI schemas derived from the same types.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{Reply, created, json_api};
use crate::gateway::Gateway;
use crate::gateway::errors::{ApiError, ApiErrors, Source, query_source};
use crate::gateway::extract::{NOTHING, data_object, query_params, read_json};
use crate::gateway::openapi::webhooks::{
    DeliveryListParams, DeliveryParams, EndpointCreateRequest, EndpointListParams, EndpointParams,
    EndpointUpdateRequest,
};
use crate::gateway::openapi::{
    CommonErrors, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
};
use crate::gateway::params::Accepts;
use crate::grpc::pb;

const ENDPOINTS: &str = "/api/v1/webhook_endpoints";

/// A webhook endpoint resource.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct EndpointResource {
    #[schema(pattern = "^[1-9][0-9]*$")]
    id: String,
    #[schema(pattern = "^webhook_endpoints$")]
    r#type: &'static str,
    attributes: EndpointAttributes,
}

/// A webhook endpoint's attributes.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpointAttributes)]
pub struct EndpointAttributes {
    url: String,
    description: String,
    /// Event types sent; empty: every type.
    event_types: Vec<String>,
    paused: bool,
    /// `requested` or `failing` while paused.
    paused_reason: Option<String>,
    /// Since when every attempt has failed.
    #[schema(format = DateTime)]
    failing_since: Option<String>,
    #[schema(format = DateTime)]
    created_at: Option<String>,
    #[schema(format = DateTime)]
    updated_at: Option<String>,
}

/// The secret, shown when an endpoint is created or its secret rotated.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookSecret)]
pub struct SecretMeta {
    /// `whsec_...`: verifies the deliveries' `webhook-signature`.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]+=*$")]
    secret: String,
    /// Until then the previous secret signs deliveries too (rotation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    previous_secret_expires_at: Option<String>,
}

/// One endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpointDocument)]
pub struct EndpointDocument {
    data: EndpointResource,
    /// Present when the answer shows a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<SecretMeta>,
}

/// Links of a list page.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookListLinks)]
pub struct ListLinks {
    /// The next page; null on the last.
    next: Option<String>,
}

/// The cursor of a list page.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookListMeta)]
pub struct ListMeta {
    /// Empty on the last page.
    next_page_token: String,
}

/// A page of endpoints.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpointList)]
pub struct EndpointList {
    data: Vec<EndpointResource>,
    links: ListLinks,
    meta: ListMeta,
}

/// A delivery resource: one event for one endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryResource {
    #[schema(pattern = "^[1-9][0-9]*$")]
    id: String,
    #[schema(pattern = "^webhook_deliveries$")]
    r#type: &'static str,
    attributes: DeliveryAttributes,
}

/// A delivery's attributes.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDeliveryAttributes)]
pub struct DeliveryAttributes {
    /// The event's position in the change log.
    sequence: i64,
    event_type: String,
    partner_id: String,
    /// The `webhook-id` header, the same on every attempt.
    message_id: String,
    /// `pending`, `delivered` or `failed`.
    state: &'static str,
    attempts: i32,
    /// HTTP status of the last attempt; null when none answered.
    last_status_code: Option<i32>,
    last_error: Option<String>,
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: Option<String>,
    #[schema(format = DateTime)]
    delivered_at: Option<String>,
}

/// One delivery.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDeliveryDocument)]
pub struct DeliveryDocument {
    data: DeliveryResource,
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDeliveryList)]
pub struct DeliveryList {
    data: Vec<DeliveryResource>,
    links: ListLinks,
    meta: ListMeta,
}

fn time(t: &Option<prost_types::Timestamp>) -> Option<String> {
    let t = t.as_ref()?;
    let at = chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)?;
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

fn endpoint_resource(e: pb::WebhookEndpoint) -> EndpointResource {
    EndpointResource {
        id: e.id.to_string(),
        r#type: "webhook_endpoints",
        attributes: EndpointAttributes {
            failing_since: time(&e.failing_since),
            created_at: time(&e.create_time),
            updated_at: time(&e.update_time),
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            paused: e.paused,
            paused_reason: (!e.paused_reason.is_empty()).then_some(e.paused_reason),
        },
    }
}

fn delivery_resource(d: pb::WebhookDelivery) -> DeliveryResource {
    let state = match pb::WebhookDeliveryState::try_from(d.state) {
        Ok(pb::WebhookDeliveryState::Pending) => "pending",
        Ok(pb::WebhookDeliveryState::Delivered) => "delivered",
        _ => "failed",
    };
    DeliveryResource {
        id: d.id.to_string(),
        r#type: "webhook_deliveries",
        attributes: DeliveryAttributes {
            sequence: d.sequence,
            partner_id: d.partner_id.to_string(),
            state,
            attempts: d.attempts,
            last_status_code: (d.last_status_code != 0).then_some(d.last_status_code),
            last_error: (!d.last_error.is_empty()).then_some(d.last_error),
            next_attempt_at: time(&d.next_attempt_time),
            created_at: time(&d.create_time),
            delivered_at: time(&d.deliver_time),
            event_type: d.event_type,
            message_id: d.message_id,
        },
    }
}

/// REST source of a request field: the body's attributes, the path ids, the query.
fn source(field: &str) -> Source {
    match field {
        "endpoint" => Source::Pointer("/data".into()),
        "id" | "endpoint.id" | "endpoint_id" => Source::Parameter("id".into()),
        "delivery_id" => Source::Parameter("delivery_id".into()),
        "update_mask" => Source::Pointer("/data/attributes".into()),
        "state" => Source::Parameter("filter[state]".into()),
        other => match other.strip_prefix("endpoint.") {
            Some(attribute) => {
                let (name, index) = match attribute.split_once('[') {
                    Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
                    None => (attribute, None),
                };
                let mut pointer = format!("/data/attributes/{name}");
                if let Some(i) = index {
                    pointer.push('/');
                    pointer.push_str(i);
                }
                Source::Pointer(pointer)
            }
            None => query_source(other),
        },
    }
}

/// A positive id from a path segment named `name`.
fn path_id(raw: Option<String>, name: &str) -> Result<i64, ApiErrors> {
    raw.and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_parameter(name, format!("{name} must be a positive integer")).into()
        })
}

fn one_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiErrors> {
    path_id(path.ok().map(|Path(p)| p), "id")
}

/// The endpoint write attributes of a body, and the names present.
fn endpoint_from_body(
    body: &Option<Value>,
) -> Result<(pb::WebhookEndpoint, Vec<String>), ApiErrors> {
    let data = data_object(body, "webhook_endpoints")?;
    let mut endpoint = pb::WebhookEndpoint::default();
    let mut present = Vec::new();
    let Some(attributes) = data.get("attributes") else {
        return Ok((endpoint, present));
    };
    let attributes = attributes
        .as_object()
        .ok_or_else(|| ApiError::bad_pointer("/data/attributes", "must be an object"))?;
    let mut errors = Vec::new();
    for (name, value) in attributes {
        let pointer = format!("/data/attributes/{name}");
        let wrong = |what: &str| ApiError::bad_pointer(&pointer, format!("must be {what}"));
        match name.as_str() {
            "url" | "description" => match value.as_str() {
                Some(text) if name == "url" => endpoint.url = text.to_owned(),
                Some(text) => endpoint.description = text.to_owned(),
                None => errors.push(wrong("a string")),
            },
            "event_types" => match value.as_array() {
                Some(items) if items.iter().all(Value::is_string) => {
                    endpoint.event_types = items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                }
                _ => errors.push(wrong("an array of strings")),
            },
            "paused" => match value.as_bool() {
                Some(paused) => endpoint.paused = paused,
                None => errors.push(wrong("a boolean")),
            },
            _ => errors.push(ApiError::bad_pointer(
                &pointer,
                "unknown attribute; known: url, description, event_types, paused",
            )),
        }
        present.push(name.clone());
    }
    if errors.is_empty() {
        Ok((endpoint, present))
    } else {
        Err(errors.into())
    }
}

/// A list's `links.next`, carrying the token (and the other query parameters).
fn next_link(path: &str, pairs: &[(&str, String)], token: &str) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            query.append_pair(k, v);
        }
    }
    query.append_pair("page_token", token);
    Some(format!("{path}?{}", query.finish()))
}

/// The page size of a query, 0 when absent (the server's default).
fn page_size(params: &crate::gateway::params::Params) -> Result<i32, ApiErrors> {
    let mut errors = Vec::new();
    let size = params.int("page_size", &mut errors).unwrap_or(0);
    if errors.is_empty() {
        Ok(size)
    } else {
        Err(errors.into())
    }
}

pub(crate) const LIST_ENDPOINTS: Accepts = Accepts {
    scalars: &["page_size", "page_token"],
    array_filters: &[],
    bool_filters: &[],
};

pub(crate) const LIST_DELIVERIES: Accepts = Accepts {
    scalars: &["page_size", "page_token", "filter[state]"],
    array_filters: &[],
    bool_filters: &[],
};

/// `POST /api/v1/webhook_endpoints`: CreateWebhookEndpoint.
#[utoipa::path(
    post,
    path = "/api/v1/webhook_endpoints",
    tag = "webhooks",
    operation_id = "createWebhookEndpoint",
    summary = "Create a webhook endpoint",
    description = "Creates an endpoint (`url` required: `https`, a public host) that gets the change \
events committed after it, signed as the Standard Webhooks specification says. `meta.secret` is \
shown only here. Service keys only.",
    request_body(
        description = "The endpoint.",
        content(
            (EndpointCreateRequest = "application/json"),
            (EndpointCreateRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 201, description = "The endpoint and its secret.", body = EndpointDocument,
         content_type = "application/vnd.api+json",
         headers(("Location" = String, description = "URL of the endpoint."))),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn create_endpoint(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NOTHING)?;
    let body = read_json(&headers, body).await?;
    let (endpoint, _) = endpoint_from_body(&body)?;
    let made = gw
        .call(
            gw.webhooks(),
            &headers,
            pb::CreateWebhookEndpointRequest {
                endpoint: Some(endpoint),
            },
            &source,
            |mut client, request| async move { client.create_webhook_endpoint(request).await },
        )
        .await?;
    let endpoint = made.endpoint.unwrap_or_default();
    let location = format!("{ENDPOINTS}/{}", endpoint.id);
    Ok(created(
        &EndpointDocument {
            data: endpoint_resource(endpoint),
            meta: Some(SecretMeta {
                secret: made.secret,
                previous_secret_expires_at: None,
            }),
        },
        &location,
    ))
}

/// `GET /api/v1/webhook_endpoints`: ListWebhookEndpoints.
#[utoipa::path(
    get,
    path = "/api/v1/webhook_endpoints",
    tag = "webhooks",
    operation_id = "listWebhookEndpoints",
    summary = "List webhook endpoints",
    description = "Endpoints by id, a page at a time (`links.next`). Service keys only.",
    params(EndpointListParams),
    responses(
        (status = 200, description = "A page of endpoints.", body = EndpointList,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
    ),
)]
pub async fn list_endpoints(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    let params = query_params(query, &LIST_ENDPOINTS)?;
    let request = pb::ListWebhookEndpointsRequest {
        page_size: page_size(&params)?,
        page_token: params.string("page_token"),
    };
    let page = gw
        .call(
            gw.webhooks(),
            &headers,
            request,
            &source,
            |mut client, request| async move { client.list_webhook_endpoints(request).await },
        )
        .await?;
    let size = params.string("page_size");
    Ok(json_api(
        StatusCode::OK,
        &EndpointList {
            links: ListLinks {
                next: next_link(ENDPOINTS, &[("page_size", size)], &page.next_page_token),
            },
            meta: ListMeta {
                next_page_token: page.next_page_token,
            },
            data: page.endpoints.into_iter().map(endpoint_resource).collect(),
        },
    ))
}

/// `GET /api/v1/webhook_endpoints/{id}`: GetWebhookEndpoint.
#[utoipa::path(
    get,
    path = "/api/v1/webhook_endpoints/{id}",
    tag = "webhooks",
    operation_id = "getWebhookEndpoint",
    summary = "Get a webhook endpoint",
    description = "One endpoint (never its secret). Service keys only.",
    params(EndpointParams),
    responses(
        (status = 200, description = "The endpoint.", body = EndpointDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn get_endpoint(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    query_params(query, &NOTHING)?;
    let id = one_id(path)?;
    let endpoint = gw
        .call(
            gw.webhooks(),
            &headers,
            pb::GetWebhookEndpointRequest { id },
            &source,
            |mut client, request| async move { client.get_webhook_endpoint(request).await },
        )
        .await?;
    Ok(endpoint_response(endpoint))
}

fn endpoint_response(endpoint: pb::WebhookEndpoint) -> axum::response::Response {
    json_api(
        StatusCode::OK,
        &EndpointDocument {
            data: endpoint_resource(endpoint),
            meta: None,
        },
    )
}

/// `PATCH /api/v1/webhook_endpoints/{id}`: UpdateWebhookEndpoint.
#[utoipa::path(
    patch,
    path = "/api/v1/webhook_endpoints/{id}",
    tag = "webhooks",
    operation_id = "updateWebhookEndpoint",
    summary = "Update a webhook endpoint",
    description = "Changes exactly the attributes present (at least one): `url`, `description`, \
`event_types`, `paused` (false resumes, also after a pause for failures). Service keys only.",
    params(EndpointParams),
    request_body(
        description = "The attributes to change.",
        content(
            (EndpointUpdateRequest = "application/json"),
            (EndpointUpdateRequest = "application/vnd.api+json"),
        ),
    ),
    responses(
        (status = 200, description = "The endpoint.", body = EndpointDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
    ),
)]
pub async fn update_endpoint(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    query_params(query, &NOTHING)?;
    let id = one_id(path)?;
    let body = read_json(&headers, body).await?;
    let (mut endpoint, present) = endpoint_from_body(&body)?;
    endpoint.id = id;
    let updated = gw
        .call(
            gw.webhooks(),
            &headers,
            pb::UpdateWebhookEndpointRequest {
                endpoint: Some(endpoint),
                update_mask: Some(prost_types::FieldMask { paths: present }),
            },
            &source,
            |mut client, request| async move { client.update_webhook_endpoint(request).await },
        )
        .await?;
    Ok(endpoint_response(updated))
}

/// `DELETE /api/v1/webhook_endpoints/{id}`: DeleteWebhookEndpoint.
#[utoipa::path(
    delete,
    path = "/api/v1/webhook_endpoints/{id}",
    tag = "webhooks",
    operation_id = "deleteWebhookEndpoint",
    summary = "Delete a webhook endpoint",
    description = "Deletes the endpoint and its deliveries. Service keys only.",
    params(EndpointParams),
    responses(
        (status = 204, description = "Deleted."),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn delete_endpoint(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    query_params(query, &NOTHING)?;
    let id = one_id(path)?;
    gw.call(
        gw.webhooks(),
        &headers,
        pb::DeleteWebhookEndpointRequest { id },
        &source,
        |mut client, request| async move { client.delete_webhook_endpoint(request).await },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/webhook_endpoints/{id}/rotate_secret`: RotateWebhookSecret.
#[utoipa::path(
    post,
    path = "/api/v1/webhook_endpoints/{id}/rotate_secret",
    tag = "webhooks",
    operation_id = "rotateWebhookSecret",
    summary = "Rotate a webhook endpoint's secret",
    description = "Gives the endpoint a new secret (`meta.secret`, shown only here); the old one \
signs deliveries too until `meta.previous_secret_expires_at`. Service keys only.",
    params(EndpointParams),
    responses(
        (status = 200, description = "The endpoint and its new secret.", body = EndpointDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn rotate_secret(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    query_params(query, &NOTHING)?;
    let id = one_id(path)?;
    let rotated = gw
        .call(
            gw.webhooks(),
            &headers,
            pb::RotateWebhookSecretRequest { id },
            &source,
            |mut client, request| async move { client.rotate_webhook_secret(request).await },
        )
        .await?;
    Ok(json_api(
        StatusCode::OK,
        &EndpointDocument {
            data: endpoint_resource(rotated.endpoint.unwrap_or_default()),
            meta: Some(SecretMeta {
                secret: rotated.secret,
                previous_secret_expires_at: time(&rotated.previous_secret_expire_time),
            }),
        },
    ))
}

/// `GET /api/v1/webhook_endpoints/{id}/deliveries`: ListWebhookDeliveries.
#[utoipa::path(
    get,
    path = "/api/v1/webhook_endpoints/{id}/deliveries",
    tag = "webhooks",
    operation_id = "listWebhookDeliveries",
    summary = "List a webhook endpoint's deliveries",
    description = "Deliveries, newest event first, a page at a time (`links.next`), optionally in \
one `filter[state]`. Service keys only.",
    params(DeliveryListParams),
    responses(
        (status = 200, description = "A page of deliveries.", body = DeliveryList,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn list_deliveries(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    let params = query_params(query, &LIST_DELIVERIES)?;
    let endpoint_id = one_id(path)?;
    let state_name = params.string("filter[state]");
    let state = match state_name.as_str() {
        "" => pb::WebhookDeliveryState::Unspecified,
        "pending" => pb::WebhookDeliveryState::Pending,
        "delivered" => pb::WebhookDeliveryState::Delivered,
        "failed" => pb::WebhookDeliveryState::Failed,
        _ => {
            return Err(ApiError::bad_parameter(
                "filter[state]",
                "must be pending, delivered or failed",
            )
            .into());
        }
    };
    let request = pb::ListWebhookDeliveriesRequest {
        endpoint_id,
        state: state as i32,
        page_size: page_size(&params)?,
        page_token: params.string("page_token"),
    };
    let page = gw
        .call(
            gw.webhooks(),
            &headers,
            request,
            &source,
            |mut client, request| async move { client.list_webhook_deliveries(request).await },
        )
        .await?;
    let path = format!("{ENDPOINTS}/{endpoint_id}/deliveries");
    let pairs = [
        ("filter[state]", state_name),
        ("page_size", params.string("page_size")),
    ];
    Ok(json_api(
        StatusCode::OK,
        &DeliveryList {
            links: ListLinks {
                next: next_link(&path, &pairs, &page.next_page_token),
            },
            meta: ListMeta {
                next_page_token: page.next_page_token,
            },
            data: page.deliveries.into_iter().map(delivery_resource).collect(),
        },
    ))
}

/// `POST /api/v1/webhook_endpoints/{id}/deliveries/{delivery_id}/retry`: RetryWebhookDelivery.
#[utoipa::path(
    post,
    path = "/api/v1/webhook_endpoints/{id}/deliveries/{delivery_id}/retry",
    tag = "webhooks",
    operation_id = "retryWebhookDelivery",
    summary = "Send a failed delivery again",
    description = "Makes a failed delivery pending again with a fresh retry schedule; 400 \
`DELIVERY_NOT_FAILED` for a delivery that has not failed. Service keys only.",
    params(DeliveryParams),
    responses(
        (status = 200, description = "The delivery, pending.", body = DeliveryDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn retry_delivery(
    State(gw): State<Gateway>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    query_params(query, &NOTHING)?;
    let (endpoint, delivery) = match path {
        Ok(Path((e, d))) => (Some(e), Some(d)),
        Err(_) => (None, None),
    };
    let endpoint_id = path_id(endpoint, "id")?;
    let delivery_id = path_id(delivery, "delivery_id")?;
    let retried = gw
        .call(
            gw.webhooks(),
            &headers,
            pb::RetryWebhookDeliveryRequest {
                endpoint_id,
                delivery_id,
            },
            &source,
            |mut client, request| async move { client.retry_webhook_delivery(request).await },
        )
        .await?;
    Ok(json_api(
        StatusCode::OK,
        &DeliveryDocument {
            data: delivery_resource(retried),
        },
    ))
}
