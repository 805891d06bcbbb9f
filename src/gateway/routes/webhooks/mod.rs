//! Webhook endpoints and deliveries over REST (service keys only), each route one call of
//! `partners.v1.WebhookAdminService`:
//! - `POST /api/v1/webhook_endpoints` (create; the document's `meta.secret` shows the secret once),
//!   `GET` (list, `page_size` and `page_token`);
//! - `GET`, `PATCH` (the attributes present), `DELETE /api/v1/webhook_endpoints/{id}`;
//! - `POST /api/v1/webhook_endpoints/{id}/rotate_secret`;
//! - `GET /api/v1/webhook_endpoints/{id}/deliveries` (`filter[state]`, `page_size`, `page_token`)
//!   and `POST .../deliveries/{delivery_id}/retry`.
//!
//! The documents are typed in [`documents`], and their OpenAPI schemas derived from the same types.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

mod documents;
mod request;

use super::{Reply, created, json_api};
use crate::gateway::Gateway;
use crate::gateway::errors::ApiError;
use crate::gateway::extract::{NOTHING, query_params, read_json};
use crate::gateway::openapi::webhooks::{
    DeliveryListParams, DeliveryParams, EndpointCreateRequest, EndpointListParams, EndpointParams,
    EndpointUpdateRequest,
};
use crate::gateway::openapi::{
    CommonErrors, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType,
};
use crate::gateway::params::Accepts;
use crate::grpc::pb;
use documents::{
    DeliveryDocument, DeliveryList, EndpointDocument, EndpointList, ListLinks, ListMeta,
    SecretMeta, delivery_resource, endpoint_resource, time,
};
use request::{endpoint_from_body, next_link, one_id, page_size, path_id, source};

const ENDPOINTS: &str = "/api/v1/webhook_endpoints";

pub(crate) const LIST_ENDPOINTS: Accepts = Accepts {
    scalars: &["page_size", "page_token"],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};

pub(crate) const LIST_DELIVERIES: Accepts = Accepts {
    scalars: &["page_size", "page_token", "filter[state]"],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
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
