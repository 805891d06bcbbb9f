//! A partner's users: `GET /api/v1/partners/{id}/users` (ListPartnerUsers), a page of the users
//! connected to the partner, with the isolation of `include=users` (a user key sees its business's
//! users; a service key those of `business_uuid`, or every business's without one).

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use super::{Reply, json_api, page_link, route_params};
use crate::gateway::Gateway;
use crate::gateway::document;
use crate::gateway::extract::{check, params_source, partner_id, read_params};
use crate::gateway::openapi::bulk::PartnerUserList;
use crate::gateway::openapi::{CommonErrors, NotFound};
use crate::gateway::params::Accepts;
use crate::grpc::pb;

const LIST_USERS: Accepts = Accepts {
    scalars: &["business_uuid", "page", "per_page"],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};

route_params!(
    /// Parameters of `listPartnerUsers`.
    ListUsersParams,
    id: true,
    accepts: LIST_USERS,
    headers: [UserUuid, RequestId]
);

/// `GET /api/v1/partners/{id}/users`: ListPartnerUsers.
#[utoipa::path(
    get,
    path = "/api/v1/partners/{id}/users",
    tag = "partners",
    operation_id = "listPartnerUsers",
    summary = "List a partner's users",
    description = "A page of the users connected to the partner, by name: a user key sees its own \
                   business's users, a service key those of `business_uuid`, or every business's \
                   without one. `include=users` carries at most 20 per partner and links here.",
    params(ListUsersParams),
    responses(
        (status = 200, description = "A page of users.", body = PartnerUserList,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn list_partner_users(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &LIST_USERS).await?;
    let id = partner_id(path)?;
    let mut errors = Vec::new();
    let request = pb::ListPartnerUsersRequest {
        id,
        business_uuid: params.string("business_uuid"),
        page: params.int("page", &mut errors),
        per_page: params.int("per_page", &mut errors),
    };
    check(errors)?;
    let page = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &params_source(&params),
            |mut client, request| async move { client.list_partner_users(request).await },
        )
        .await?;
    let path = format!("/api/v1/partners/{id}/users");
    let link = page_link(&path, &params);
    let meta = page.meta.unwrap_or_default();
    Ok(json_api(
        StatusCode::OK,
        &document::user_list_document(&page.users, &meta, &link),
    ))
}
