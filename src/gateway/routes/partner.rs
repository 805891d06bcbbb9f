//! One partner: `GET /api/v1/partners/{id}` (GetPartner), with the business (and user) in
//! context and the relationships named in `include`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use super::{Reply, json_api, route_params};
use crate::gateway::Gateway;
use crate::gateway::document;
use crate::gateway::extract::{params_source, partner_id, read_params};
use crate::gateway::openapi::PartnerAnswer;
use crate::gateway::params::Accepts;
use crate::grpc::pb;
use crate::model::partner::Includes;

const GET_PARTNER: Accepts = Accepts {
    scalars: &["business_uuid", "include"],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};

route_params!(
    /// Parameters of `getPartner`.
    GetPartnerParams,
    id: true,
    accepts: GET_PARTNER,
    headers: [UserUuid, RequestId]
);

/// `GET /api/v1/partners/{id}`: GetPartner.
#[utoipa::path(
    get,
    path = "/api/v1/partners/{id}",
    tag = "partners",
    operation_id = "getPartner",
    summary = "Get a partner",
    description = "One partner, as seen by the business (and user) in context.",
    params(GetPartnerParams),
    responses(PartnerAnswer)
)]
pub async fn get_partner(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &GET_PARTNER).await?;
    let request = pb::GetPartnerRequest {
        id: partner_id(path)?,
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
    };
    let included = Includes::from_names(&request.include);
    let partner = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &params_source(&params),
            |mut client, request| async move { client.get_partner(request).await },
        )
        .await?;
    Ok(json_api(
        StatusCode::OK,
        &document::partner_document(&partner, included),
    ))
}
