//! The error responses under `components/responses` (one type each, for
//! `#[utoipa::path(responses(...))]`), and [`CommonErrors`], the six any partner operation may
//! answer.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, ToResponse, ToSchema};

use super::schemas;
use crate::gateway::errors::JSON_API;

/// One error response under `components/responses`.
pub(super) struct ErrorResponse {
    status: u16,
    pub(super) name: &'static str,
    description: &'static str,
}

impl ErrorResponse {
    /// A JSON:API error document; 429 and 503 also carry `Retry-After`, 429 the key's
    /// `RateLimit-*` fields.
    pub(super) fn response(&self) -> Response {
        let mut response = ResponseBuilder::new()
            .description(self.description)
            .content(
                JSON_API,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schemas::Errors::name())))
                    .build(),
            );
        if matches!(self.status, 429 | 503) {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(1)),
                    )
                    .description(Some("Seconds to wait before retrying."))
                    .build(),
            );
        }
        if self.status == 429 {
            for (name, description) in [
                (
                    "RateLimit-Limit",
                    "The key's burst: calls it may make at once.",
                ),
                (
                    "RateLimit-Remaining",
                    "Calls left of the burst (0 when refused).",
                ),
                ("RateLimit-Reset", "Seconds until the burst is whole again."),
            ] {
                response = response.header(
                    name,
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::Integer)
                                .minimum(Some(0)),
                        )
                        .description(Some(description))
                        .build(),
                );
            }
        }
        response.build()
    }

    fn reference(&self) -> RefOr<Response> {
        Ref::from_response_name(self.name).into()
    }
}

/// Declares the error responses: a type per response for `#[utoipa::path(responses(...))]`,
/// and the table `ERRORS` that puts them under `components/responses`.
macro_rules! error_responses {
    ($($(#[$doc:meta])* $status:literal $name:ident $description:literal;)*) => {
        pub(super) const ERRORS: &[ErrorResponse] = &[
            $(ErrorResponse { status: $status, name: stringify!($name), description: $description },)*
        ];

        $(
            $(#[$doc])*
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    let error = ErrorResponse {
                        status: $status,
                        name: stringify!($name),
                        description: $description,
                    };
                    (stringify!($name), error.response().into())
                }
            }
        )*
    };
}

error_responses! {
    /// 400.
    400 BadRequest "The request is invalid: one error per offending query parameter, header or \
        body field (code `INVALID_ARGUMENT`), or a failed precondition such as a service key \
        connecting without `X-User-Uuid` (code `USER_REQUIRED`).";
    /// 401.
    401 Unauthorized "Missing, malformed, unknown or revoked API key.";
    /// 403.
    403 Forbidden "The API key may not do this (admin operations need a service key).";
    /// 404.
    404 NotFound "The partner, business or user does not exist or is not visible to the caller.";
    /// 409.
    409 Conflict "A conflicting resource exists: the `Idempotency-Key` was already used with a \
        different body (`IDEMPOTENCY_KEY_REUSED`), or the `external_id` is taken \
        (`EXTERNAL_ID_TAKEN`).";
    /// 413.
    413 PayloadTooLarge "The request body is over 64 KiB.";
    /// 415.
    415 UnsupportedMediaType "The request body is neither `application/json` nor \
        `application/vnd.api+json`.";
    /// 429.
    429 TooManyRequests "Too many requests (rate limit or saturated connection pool); retry after \
        `Retry-After` seconds.";
    /// 500.
    500 InternalError "An unexpected failure; the detail is always `internal error`.";
    /// 503.
    503 ServiceUnavailable "The database is unreachable or overloaded; retry after `Retry-After` \
        seconds.";
    /// 504.
    504 GatewayTimeout "The request ran past its time limit.";
}

/// The errors any partner operation may answer once authenticated and validated:
/// 400, 401, 429, 500, 503 and 504.
pub struct CommonErrors;

impl IntoResponses for CommonErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        ERRORS
            .iter()
            .filter(|e| matches!(e.status, 400 | 401 | 429 | 500 | 503 | 504))
            .map(|e| (e.status.to_string(), e.reference()))
            .collect()
    }
}

/// The answer of the routes that answer one partner (GetPartner, ConnectUser, DisconnectUser):
/// 200 with the partner's document, the [`CommonErrors`] and 404.
pub struct PartnerAnswer;

impl IntoResponses for PartnerAnswer {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut responses = CommonErrors::responses();
        let partner = ResponseBuilder::new()
            .description("The partner.")
            .content(
                JSON_API,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(
                        super::resources::PartnerDocument::name(),
                    )))
                    .build(),
            )
            .build();
        responses.insert("200".to_owned(), partner.into());
        responses.extend(
            ERRORS
                .iter()
                .filter(|e| e.status == 404)
                .map(|e| (e.status.to_string(), e.reference())),
        );
        responses
    }
}
