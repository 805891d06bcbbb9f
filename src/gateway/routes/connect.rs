//! User connections: `PATCH /api/v1/partners/{id}/connect` (ConnectUser) and `DELETE` on the
//! same path (DisconnectUser). Both are idempotent, take no body and answer the partner.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;

use super::{Reply, partner_response, route_params};
use crate::gateway::errors::query_source;
use crate::gateway::extract::{NOTHING, partner_id, query_params, read_json};
use crate::gateway::openapi::resources::PartnerDocument;
use crate::gateway::openapi::{CommonErrors, NotFound};
use crate::gateway::{Forward, Gateway};
use crate::grpc::pb;

route_params!(
    /// Parameters of `connectPartner` and `disconnectPartner`.
    ConnectParams,
    id: true,
    accepts: NOTHING,
    headers: [UserUuid, RequestId]
);

/// The request shared by both methods: no query, the path id, and a body that is checked for
/// limits and well-formedness only (nothing is read from it).
async fn connection_request(
    path: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    query: Option<String>,
    body: Body,
) -> Result<i64, crate::gateway::errors::ApiErrors> {
    query_params(query, &NOTHING)?;
    let id = partner_id(path)?;
    read_json(headers, body).await?;
    Ok(id)
}

/// `PATCH /api/v1/partners/{id}/connect`: ConnectUser.
#[utoipa::path(
    patch,
    path = "/api/v1/partners/{id}/connect",
    tag = "partners",
    operation_id = "connectPartner",
    summary = "Connect the current user",
    description = "Connects the user in context to the partner; no body. Needs a user: a user key, or a \
                   service key with `X-User-Uuid` (otherwise 400 `USER_REQUIRED`).",
    params(ConnectParams),
    responses(
        (status = 200, description = "The partner.", body = PartnerDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn connect(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let id = connection_request(path, &headers, query, body).await?;
    let forward = Forward::new(&headers, &gw);
    let partner = gw
        .call(
            gw.partners()
                .connect_user(forward.request(pb::ConnectUserRequest { id })),
            &query_source,
        )
        .await?;
    Ok(partner_response(&partner))
}

/// `DELETE /api/v1/partners/{id}/connect`: DisconnectUser.
#[utoipa::path(
    delete,
    path = "/api/v1/partners/{id}/connect",
    tag = "partners",
    operation_id = "disconnectPartner",
    summary = "Disconnect the current user",
    description = "Disconnects the user in context from the partner. Needs a user: a user key, or a \
                   service key with `X-User-Uuid` (otherwise 400 `USER_REQUIRED`).",
    params(ConnectParams),
    responses(
        (status = 200, description = "The partner.", body = PartnerDocument,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn disconnect(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let id = connection_request(path, &headers, query, body).await?;
    let forward = Forward::new(&headers, &gw);
    let partner = gw
        .call(
            gw.partners()
                .disconnect_user(forward.request(pb::DisconnectUserRequest { id })),
            &query_source,
        )
        .await?;
    Ok(partner_response(&partner))
}
