//! The gateway's routes, one file per domain: the three lists, one partner, a batch of partners,
//! a partner's users, click events, user connections, the batch writes, the export, the admin writes, the change events' feed, the webhooks, and
//! the operations endpoints. Each handler carries its `#[utoipa::path]`; `super::api` registers
//! them with `routes!`, which adds each to the router and to the OpenAPI document at once. This
//! file holds what the handlers share: the JSON:API response helpers, the documented-parameter
//! declarations and the 404/405 fallbacks.

pub mod admin;
pub mod batch;
pub mod bulk;
pub mod click_reads;
pub mod clicks;
pub mod connect;
pub mod events;
pub mod export;
pub mod health;
pub mod lists;
pub mod partner;
pub mod users;
pub mod webhooks;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::document::{self, PageRef};
use super::errors::{ApiError, ApiErrors, JSON_API, Source};
use super::params::Params;
use crate::grpc::pb;
use crate::model::partner::Includes;

/// What a handler answers: a document, or JSON:API errors.
pub type Reply = Result<Response, ApiErrors>;

/// Declares a route's documented parameters as a type for `#[utoipa::path(params(...))]`: the
/// `{id}` path segment (when `id`), the query parameters of its `Accepts` (so what is documented
/// is what the route accepts) and the request headers it reads.
macro_rules! route_params {
    ($(#[$doc:meta])* $name:ident, id: $id:expr, accepts: $accepts:expr, headers: [$($header:ident),*]) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoParams for $name {
            fn into_params(
                _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
            ) -> Vec<utoipa::openapi::path::Parameter> {
                crate::gateway::openapi::route_parameters(
                    $id,
                    &$accepts,
                    &[$(crate::gateway::openapi::RequestHeader::$header),*],
                )
            }
        }
    };
}
pub(crate) use route_params;

/// A JSON:API response.
pub fn json_api(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error.message = %e, "response document not serialisable");
            return ApiErrors::from(vec![ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "INTERNAL".into(),
                detail: "internal error".into(),
                source: Source::None,
            }])
            .into_response();
        }
    };
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_API));
    response
}

/// A JSON:API response with a `Location` header (201 Created).
fn created(body: &impl serde::Serialize, location: &str) -> Response {
    let mut response = json_api(StatusCode::CREATED, body);
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// A partner document without included resources (the writes and connections answer this).
fn partner_response(partner: &pb::Partner) -> Response {
    json_api(
        StatusCode::OK,
        &document::partner_document(partner, Includes::default()),
    )
}

/// The URLs of a list's pages: the request's parameters but its page (number or token), then
/// the page's number or token.
fn page_link(path: &str, params: &Params) -> impl Fn(PageRef<'_>) -> String {
    let pairs = params.link_pairs();
    let asked = params.string("page_token");
    let path = path.to_owned();
    move |page| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            query.append_pair(k, v);
        }
        match page {
            PageRef::This(_) if !asked.is_empty() => query.append_pair("page_token", &asked),
            PageRef::Number(n) | PageRef::This(n) => query.append_pair("page", &n.to_string()),
            PageRef::Token(token) => query.append_pair("page_token", token),
        };
        format!("{path}?{}", query.finish())
    }
}

/// A list document with links to the other pages of the same request.
fn list_response(
    path: &str,
    params: &Params,
    included: Includes,
    partners: &[pb::Partner],
    meta: Option<pb::PageMeta>,
) -> Response {
    let meta = meta.unwrap_or_default();
    let link = page_link(path, params);
    json_api(
        StatusCode::OK,
        &document::list_document(partners, &meta, included, &link),
    )
}

/// The answer to a path no route serves.
pub async fn not_found() -> ApiErrors {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route").into()
}

/// The answer to a method the path's route does not serve.
pub async fn method_not_allowed() -> ApiErrors {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this route does not accept that method",
    )
    .into()
}
