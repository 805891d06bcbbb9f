//! User connections: `PATCH /api/v1/partners/{id}/connect` (ConnectUser) and `DELETE` on the
//! same path (DisconnectUser). Both are idempotent, take no body and answer the partner.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;

use super::{Reply, partner_response, route_params};
use crate::gateway::Gateway;
use crate::gateway::errors::query_source;
use crate::gateway::extract::{NOTHING, partner_id, query_params, read_json};
use crate::gateway::openapi::PartnerAnswer;
use crate::grpc::pb;

route_params!(
    /// Parameters of `connectPartner` and `disconnectPartner`.
    ConnectParams,
    id: true,
    accepts: NOTHING,
    headers: [UserUuid, RequestId]
);

/// Both methods: no query, the path id, and a body that is checked for limits and
/// well-formedness only (nothing is read from it); then ConnectUser (`connect`) or DisconnectUser,
/// answered with the partner.
async fn set_connection(
    gw: Gateway,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    query: Option<String>,
    body: Body,
    connect: bool,
) -> Reply {
    query_params(query, &NOTHING)?;
    let id = partner_id(path)?;
    read_json(&headers, body).await?;
    let partner = if connect {
        gw.call(
            gw.partners(),
            &headers,
            pb::ConnectUserRequest { id },
            &query_source,
            |mut client, request| async move { client.connect_user(request).await },
        )
        .await?
    } else {
        gw.call(
            gw.partners(),
            &headers,
            pb::DisconnectUserRequest { id },
            &query_source,
            |mut client, request| async move { client.disconnect_user(request).await },
        )
        .await?
    };
    Ok(partner_response(&partner))
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
    responses(PartnerAnswer)
)]
pub async fn connect(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    set_connection(gw, path, headers, query, body, true).await
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
    responses(PartnerAnswer)
)]
pub async fn disconnect(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    set_connection(gw, path, headers, query, body, false).await
}
