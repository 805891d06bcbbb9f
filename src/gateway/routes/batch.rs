//! Partners by id and external id: `GET /api/v1/partners/batch?ids=1,2&external_ids=a,b`
//! (BatchGetPartners), with the business (and user) in context and `include`, as GetPartner.
//! The path is a static segment, so the router prefers it to `/partners/{id}` (a partner id is
//! never `batch`). External ids are comma-separated: one holding a comma can only be looked up
//! over gRPC.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use super::{Reply, json_api, route_params};
use crate::gateway::Gateway;
use crate::gateway::document;
use crate::gateway::errors::ApiError;
use crate::gateway::extract::{params_source, read_params};
use crate::gateway::openapi::resources::PartnerBatch;
use crate::gateway::openapi::{CommonErrors, NotFound};
use crate::gateway::params::{Accepts, Params};
use crate::grpc::pb;
use crate::model::partner::Includes;

const BATCH_GET: Accepts = Accepts {
    scalars: &["ids", "external_ids", "business_uuid", "include"],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};

route_params!(
    /// Parameters of `batchGetPartners`.
    BatchGetParams,
    id: false,
    accepts: BATCH_GET,
    headers: [UserUuid, RequestId]
);

/// The comma-separated values of `name` (none when absent), kept as sent: the gRPC layer trims
/// and checks them.
fn values(params: &Params, name: &str) -> Vec<String> {
    let raw = params.string(name);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(',').map(str::to_owned).collect()
}

/// `ids`: comma-separated decimal integers (their range is the gRPC layer's rule).
fn ids(params: &Params) -> Result<Vec<i64>, ApiError> {
    values(params, "ids")
        .iter()
        .map(|v| {
            let digits = v.strip_prefix('-').unwrap_or(v);
            let parsed = (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse::<i64>().ok())
                .flatten();
            parsed.ok_or_else(|| {
                ApiError::bad_request(
                    params.source("ids"),
                    "ids must be comma-separated partner ids",
                )
            })
        })
        .collect()
}

/// `GET /api/v1/partners/batch`: BatchGetPartners.
#[utoipa::path(
    get,
    path = "/api/v1/partners/batch",
    tag = "partners",
    operation_id = "batchGetPartners",
    summary = "Get partners by ids and external ids",
    description = "Up to 100 partners named by `ids` and/or `external_ids` (at least one key), as \
                   `getPartner` sees them, in request order (ids first; a partner named twice comes \
                   once). Keys without a live partner are listed in `meta.missing_ids` and \
                   `meta.missing_external_ids`; they are not an error.",
    params(BatchGetParams),
    responses(
        (status = 200, description = "The partners found and the keys missing.", body = PartnerBatch,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn batch_get_partners(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &BATCH_GET).await?;
    let request = pb::BatchGetPartnersRequest {
        ids: ids(&params)?,
        external_ids: values(&params, "external_ids"),
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
    };
    let included = Includes::from_names(&request.include);
    let source = |field: &str| {
        let name = field.split('[').next().unwrap_or(field);
        match name {
            "ids" | "external_ids" => params.source(name),
            _ => params_source(&params)(field),
        }
    };
    let batch = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &source,
            |mut client, request| async move { client.batch_get_partners(request).await },
        )
        .await?;
    Ok(json_api(
        StatusCode::OK,
        &document::batch_document(&batch, included),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::errors::Source;

    #[test]
    fn ids_are_decimal_integers_without_signs_or_spaces() {
        let parse = |q: &str| ids(&Params::from_query(q, &BATCH_GET).expect("query"));
        assert_eq!(parse("ids=1,007,-3").expect("ids"), [1, 7, -3]);
        for bad in [
            "ids=+1",
            "ids=1,,2",
            "ids=%201",
            "ids=x",
            "ids=99999999999999999999",
        ] {
            let err = parse(bad).expect_err(bad);
            assert_eq!(err.source, Source::Parameter("ids".into()));
        }
        assert!(parse("").expect("none").is_empty());
    }
}
