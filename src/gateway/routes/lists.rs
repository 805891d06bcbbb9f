//! The three partner lists: `GET /api/v1/partners` (ListPartners), `/partners/available`
//! (ListAvailablePartners) and `/partners/wholesalers` (ListWholesalers). Each reads its query
//! (or GET body) parameters, makes one gRPC call and answers a page with `meta` and `links`.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;

use super::{Reply, list_response, route_params};
use crate::gateway::Gateway;
use crate::gateway::document;
use crate::gateway::errors::ApiError;
use crate::gateway::extract::{check, params_source, read_params};
use crate::gateway::openapi::resources::PartnerList;
use crate::gateway::openapi::{CommonErrors, Forbidden, NotFound};
use crate::gateway::params::{Accepts, Params};
use crate::grpc::{convert, pb};
use crate::model::partner::Includes;

const LIST_PARTNERS: Accepts = Accepts {
    scalars: &[
        "business_uuid",
        "include",
        "search",
        "page",
        "page_token",
        "per_page",
        "sort",
        "facets",
        "filter[updated_since]",
        "filter[created_since]",
    ],
    array_filters: &[
        "categories",
        "excluded_categories",
        "wholesaler_categories",
        "country_codes",
        "status",
        "ids",
        "external_ids",
        "tags",
        "all_tags",
    ],
    bool_filters: &["preferred", "active", "show_deleted"],
    statuses: &["available", "coming_soon", "unavailable"],
};

route_params!(
    /// Parameters of `listPartners`.
    ListPartnersParams,
    id: false,
    accepts: LIST_PARTNERS,
    headers: [UserUuid, RequestId]
);

/// `GET /api/v1/partners`: ListPartners.
#[utoipa::path(
    get,
    path = "/api/v1/partners",
    tag = "partners",
    operation_id = "listPartners",
    summary = "List partners",
    description = "A page of the partners visible to the business, filtered, searched and sorted. \
                   Service keys must pass `business_uuid`; user keys default to their own business. \
                   `filter[show_deleted]=true` (service keys) lists soft-deleted partners too, with \
                   their `deleted_at`.",
    params(ListPartnersParams),
    responses(
        (status = 200, description = "A page of partners.", body = PartnerList,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    ),
)]
pub async fn list_partners(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &LIST_PARTNERS).await?;
    let mut errors = Vec::new();
    let request = pb::ListPartnersRequest {
        facets: params.comma_list("facets"),
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
        search: params.string("search"),
        page: params.int("page", &mut errors),
        per_page: params.int("per_page", &mut errors),
        sort: params.string("sort"),
        page_token: params.string("page_token"),
        show_deleted: params
            .boolean("filter[show_deleted]", &mut errors)
            .unwrap_or(false),
        filter: Some(pb::ListPartnersFilter {
            categories: params.list("filter[categories]"),
            excluded_categories: params.list("filter[excluded_categories]"),
            wholesaler_categories: params.list("filter[wholesaler_categories]"),
            country_codes: params.list("filter[country_codes]"),
            preferred: params.boolean("filter[preferred]", &mut errors),
            active: params.boolean("filter[active]", &mut errors),
            record: record_filter(&params, &mut errors),
            status: statuses(&params),
        }),
    };
    check(errors)?;
    let included = Includes::from_names(&request.include);
    let page = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &params_source(&params),
            |mut client, request| async move { client.list_partners(request).await },
        )
        .await?;
    Ok(list_response(
        "/api/v1/partners",
        &params,
        included,
        &page.partners,
        page.meta,
    ))
}

const LIST_AVAILABLE: Accepts = Accepts {
    scalars: &[
        "business_uuid",
        "include",
        "search",
        "page",
        "page_token",
        "per_page",
        "sort",
        "facets",
        "filter[updated_since]",
        "filter[created_since]",
    ],
    array_filters: &[
        "categories",
        "status",
        "ids",
        "external_ids",
        "tags",
        "all_tags",
    ],
    bool_filters: &[],
    statuses: &["available", "coming_soon"],
};

route_params!(
    /// Parameters of `listAvailablePartners`.
    ListAvailableParams,
    id: false,
    accepts: LIST_AVAILABLE,
    headers: [UserUuid, RequestId]
);

/// `GET /api/v1/partners/available`: ListAvailablePartners.
#[utoipa::path(
    get,
    path = "/api/v1/partners/available",
    tag = "partners",
    operation_id = "listAvailablePartners",
    summary = "List available partners",
    description = "Like `listPartners`, restricted to partners that are available or coming soon.",
    params(ListAvailableParams),
    responses(
        (status = 200, description = "A page of partners.", body = PartnerList,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn list_available(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &LIST_AVAILABLE).await?;
    let mut errors = Vec::new();
    let request = pb::ListAvailablePartnersRequest {
        facets: params.comma_list("facets"),
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
        search: params.string("search"),
        page: params.int("page", &mut errors),
        per_page: params.int("per_page", &mut errors),
        sort: params.string("sort"),
        page_token: params.string("page_token"),
        filter: Some(pb::ListAvailablePartnersFilter {
            categories: params.list("filter[categories]"),
            status: statuses(&params),
            record: record_filter(&params, &mut errors),
        }),
    };
    check(errors)?;
    let included = Includes::from_names(&request.include);
    let page = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &params_source(&params),
            |mut client, request| async move { client.list_available_partners(request).await },
        )
        .await?;
    Ok(list_response(
        "/api/v1/partners/available",
        &params,
        included,
        &page.partners,
        page.meta,
    ))
}

const LIST_WHOLESALERS: Accepts = Accepts {
    scalars: &[
        "business_uuid",
        "include",
        "page",
        "page_token",
        "per_page",
        "sort",
        "filter[updated_since]",
        "filter[created_since]",
    ],
    array_filters: &["ids", "external_ids", "tags", "all_tags"],
    bool_filters: &[],
    statuses: &[],
};

route_params!(
    /// Parameters of `listWholesalers`.
    ListWholesalersParams,
    id: false,
    accepts: LIST_WHOLESALERS,
    headers: [UserUuid, RequestId]
);

/// `GET /api/v1/partners/wholesalers`: ListWholesalers.
#[utoipa::path(
    get,
    path = "/api/v1/partners/wholesalers",
    tag = "partners",
    operation_id = "listWholesalers",
    summary = "List wholesalers",
    description = "A page of the partners that are wholesalers.",
    params(ListWholesalersParams),
    responses(
        (status = 200, description = "A page of wholesalers.", body = PartnerList,
         content_type = "application/vnd.api+json"),
        CommonErrors,
        (status = 404, response = NotFound),
    ),
)]
pub async fn list_wholesalers(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &LIST_WHOLESALERS).await?;
    let mut errors = Vec::new();
    let request = pb::ListWholesalersRequest {
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
        page: params.int("page", &mut errors),
        per_page: params.int("per_page", &mut errors),
        sort: params.string("sort"),
        page_token: params.string("page_token"),
        filter: record_filter(&params, &mut errors),
    };
    check(errors)?;
    let included = Includes::from_names(&request.include);
    let page = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &params_source(&params),
            |mut client, request| async move { client.list_wholesalers(request).await },
        )
        .await?;
    Ok(list_response(
        "/api/v1/partners/wholesalers",
        &params,
        included,
        &page.partners,
        page.meta,
    ))
}

/// `filter[status][]` as the gRPC enum (an unknown name is left for the gRPC layer to reject).
pub(super) fn statuses(params: &Params) -> Vec<i32> {
    let values = params.list("filter[status]");
    values
        .iter()
        .map(|s| document::partner_status_value(s))
        .collect()
}

/// The ids, external ids, tags and change times every list takes (`None` when none is given).
pub(super) fn record_filter(
    params: &Params,
    errors: &mut Vec<ApiError>,
) -> Option<pb::RecordFilter> {
    let time =
        |name: &str, errors: &mut Vec<ApiError>| params.time(name, errors).map(convert::timestamp);
    let filter = pb::RecordFilter {
        ids: params.int64_list("filter[ids]", errors),
        external_ids: params.list("filter[external_ids]"),
        tags: params.list("filter[tags]"),
        all_tags: params.list("filter[all_tags]"),
        updated_since: time("filter[updated_since]", errors),
        created_since: time("filter[created_since]", errors),
    };
    (filter != pb::RecordFilter::default()).then_some(filter)
}
