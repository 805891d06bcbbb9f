//! The OpenAPI 3.1 document of the REST gateway, served at `GET /api/v1/openapi.json`.
//!
//! Produced by utoipa: the paths and operations come from each handler's `#[utoipa::path]`,
//! registered with the router by `routes!` in `super::api`, so the document and the router have
//! one source. This file holds the root (info, tags, security) and the shared pieces: the error
//! responses under `components/responses`, the documented query parameters and request headers,
//! and the `X-Request-Id` response header that the middleware puts on every response. The JSON:API
//! schemas are in [`schemas`].

pub mod schemas;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn, ParameterStyle};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, RefOr, Required,
};
use utoipa::{IntoResponses, Modify, ToResponse, ToSchema};

use super::errors::JSON_API;
use super::params::Accepts;
use schemas::{NO_CONTROLS, label, uuid};

const INFO_DESCRIPTION: &str = "JSON:API gateway over the partners gRPC API.\n\n\
Responses are `application/vnd.api+json` unless stated otherwise. Request bodies may be sent as \
`application/json` or `application/vnd.api+json` and must not exceed 64 KiB. List endpoints also \
accept their parameters as a JSON object body (`{\"filter\": {\"categories\": [\"x\"]}, \"page\": 2}`); \
the query string wins on conflict.\n\n\
Authenticate with an API key as a bearer token. User keys act for their own user and business. \
Service keys name the business with `business_uuid` and act for a user with `X-User-Uuid`; the \
admin operations need a service key.\n\n\
Errors are JSON:API error documents whose `code` is an UPPER_SNAKE reason. 429 and 503 responses \
carry `Retry-After`; every response may carry `X-Request-Id`.";

/// The document's root: info, tags, security, and the components no route names itself.
pub fn root() -> OpenApi {
    let tag = |name: &str, description: &str| {
        TagBuilder::new()
            .name(name)
            .description(Some(description))
            .build()
    };
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some("An API key: `Authorization: Bearer <key>`."))
        .build();
    let components = ComponentsBuilder::new()
        .security_scheme("bearerAuth", SecurityScheme::Http(bearer))
        .schemas_from_iter(schemas::all())
        .responses_from_iter(ERRORS.iter().map(|e| (e.name, e.response())));
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Partners service REST gateway")
                .version("1.0.0")
                .description(Some(INFO_DESCRIPTION)),
        )
        .tags(Some([
            tag("partners", "Browsing partners, click events, connections."),
            tag("admin", "Creating, updating and deleting partners."),
            tag("operations", "Health checks and this document."),
        ]))
        .security(Some([SecurityRequirement::new(
            "bearerAuth",
            Vec::<String>::new(),
        )]))
        .components(Some(components.build()))
        .build()
}

/// The served document (built once).
pub fn document() -> Value {
    static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
        let mut openapi = super::api().into_openapi();
        RequestIdHeader.modify(&mut openapi);
        serde_json::to_value(&openapi).unwrap_or_else(|e| {
            tracing::error!(error.message = %e, "OpenAPI document not serialisable");
            Value::Null
        })
    });
    DOCUMENT.clone()
}

/// Every documented operation as `(METHOD, path template)`, from the document itself; the router
/// serves exactly these (both come from the same `routes!`).
pub fn operations() -> Vec<(String, String)> {
    let document = document();
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flat_map(|item| item.keys()) {
            if method != "parameters" {
                operations.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    operations
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// Adds `X-Request-Id` to every response: the middleware sets it on all of them.
struct RequestIdHeader;

impl Modify for RequestIdHeader {
    fn modify(&self, openapi: &mut OpenApi) {
        let header = || {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("Identifier of the request, for correlating logs."))
                .build()
        };
        let add = |response: &mut RefOr<Response>| {
            if let RefOr::T(response) = response {
                response.headers.insert("X-Request-Id".to_owned(), header());
            }
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                operation.responses.responses.values_mut().for_each(add);
            }
        }
        if let Some(components) = &mut openapi.components {
            components.responses.values_mut().for_each(add);
        }
    }
}

/// One error response under `components/responses`.
struct ErrorResponse {
    status: u16,
    name: &'static str,
    description: &'static str,
}

impl ErrorResponse {
    /// A JSON:API error document; 429 and 503 also carry `Retry-After`.
    fn response(&self) -> Response {
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
        const ERRORS: &[ErrorResponse] = &[
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

// ---------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------

/// A request header an operation documents.
#[derive(Debug, Clone, Copy)]
pub enum RequestHeader {
    /// `X-User-Uuid`: the user a service key acts for.
    UserUuid,
    /// `X-Request-Id`: the client's request id.
    RequestId,
    /// `Idempotency-Key`: makes a click event idempotent.
    IdempotencyKey,
}

/// The documented parameters of a route: the `{id}` path segment (when `id`), a query
/// parameter for each name `accepts` lists (in its order), then `headers`.
pub fn parameters(id: bool, accepts: &Accepts, headers: &[RequestHeader]) -> Vec<Parameter> {
    let path_id = id.then(|| {
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("Partner id."))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::Custom("int64".into())))
                    .minimum(Some(1)),
            ))
            .build()
    });
    // A name without documentation below is still listed (bare), so an accepted parameter is
    // never left out; a test checks that every parameter is described.
    let bare = |name: String| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .build()
    };
    let scalars = (accepts.scalars.iter())
        .map(|name| scalar(name).unwrap_or_else(|| bare((*name).to_owned())));
    let arrays = (accepts.array_filters.iter())
        .map(|f| array_filter(f).unwrap_or_else(|| bare(format!("filter[{f}][]"))));
    let booleans = (accepts.bool_filters.iter())
        .map(|f| bool_filter(f).unwrap_or_else(|| bare(format!("filter[{f}]"))));
    path_id
        .into_iter()
        .chain(scalars)
        .chain(arrays)
        .chain(booleans)
        .chain(headers.iter().map(|h| header(*h)))
        .collect()
}

fn query(
    name: &str,
    description: &str,
    schema: impl Into<RefOr<utoipa::openapi::Schema>>,
) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .description(Some(description))
        .schema(Some(schema))
}

fn int32(minimum: i32, default: i32) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::Custom("int32".into())))
        .minimum(Some(minimum))
        .default(Some(default.into()))
}

/// A scalar query parameter (`None` for a name without documentation).
fn scalar(name: &str) -> Option<Parameter> {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let keys = |keys: &str| format!("^({keys}(,{keys})*)?$");
    let parameter = match name {
        "business_uuid" => query(
            name,
            "Business in context. Required for service keys; user keys default to their own \
             business. Empty means none.",
            AnyOfBuilder::new()
                .item(uuid())
                .item(string().max_length(Some(0))),
        ),
        "include" => query(
            name,
            "Comma-separated related resources to include: `users`, `partner_integrations`.",
            string().pattern(Some(keys("(users|partner_integrations)"))),
        )
        .example(Some("users,partner_integrations".into())),
        "search" => query(
            name,
            "Case-insensitive substring of the partner name; 1 to 100 characters after \
             trimming (empty means no search). `%`, `_` and `\\` match literally.",
            string().max_length(Some(100)).pattern(Some(format!(
                "^([^{NO_CONTROLS}]*[^\\s{NO_CONTROLS}][^{NO_CONTROLS}]*)?$"
            ))),
        ),
        "page" => query(name, "Page number, from 1.", int32(1, 1)),
        "per_page" => query(name, "Page size.", int32(1, 25).maximum(Some(100))),
        "sort" => query(
            name,
            "Comma-separated sort keys, each once: `name`, `created_at`, `updated_at`, \
             `clicks`, `users_count`; prefix `-` for descending.",
            string().pattern(Some(keys(
                "-?(name|created_at|updated_at|clicks|users_count)",
            ))),
        )
        .example(Some("-clicks,name".into())),
        _ => return None,
    };
    Some(parameter.build())
}

/// A repeatable array filter (`filter[x][]=a&filter[x][]=b`).
fn array_filter(filter: &str) -> Option<Parameter> {
    let (description, items) = match filter {
        "categories" => (
            "Partners in any of these categories. `filter[categories]=a,b` (comma-separated) \
             is accepted as well and merges with this form.",
            label(),
        ),
        "excluded_categories" => ("Partners in none of these categories.", label()),
        "wholesaler_categories" => ("Partners in any of these wholesaler categories.", label()),
        "country_codes" => (
            "Partners serving any of these countries (ISO 3166-1 alpha-2, any case).",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z]{2}$")),
        ),
        "status" => (
            "Partners with any of these statuses.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["available", "coming_soon"])),
        ),
        _ => return None,
    };
    let schema = ArrayBuilder::new().items(items).max_items(Some(50));
    Some(
        query(&format!("filter[{filter}][]"), description, schema)
            .style(Some(ParameterStyle::Form))
            .explode(Some(true))
            .build(),
    )
}

/// A boolean filter; `1` and `0` are accepted too.
fn bool_filter(filter: &str) -> Option<Parameter> {
    let description = match filter {
        "preferred" => "Only partners the business prefers (`true`) or does not (`false`).",
        "active" => "Only active (`true`) or inactive (`false`) partners.",
        _ => return None,
    };
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["true", "false", "1", "0"]));
    Some(
        query(
            &format!("filter[{filter}]"),
            &format!("{description} Accepts `true`, `false`, `1` or `0`."),
            schema,
        )
        .build(),
    )
}

fn header(header: RequestHeader) -> Parameter {
    let (name, description, schema) = match header {
        RequestHeader::UserUuid => (
            "X-User-Uuid",
            "With a service key: the user to act for. Ignored for user keys.",
            uuid(),
        ),
        RequestHeader::RequestId => (
            "X-Request-Id",
            "Client-chosen request identifier, for correlating logs.",
            ObjectBuilder::new().schema_type(Type::String),
        ),
        RequestHeader::IdempotencyKey => (
            "Idempotency-Key",
            "Makes the request idempotent: a replay with the same body returns the first \
             result; a different body with the same key is a 409.",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(200))
                .pattern(Some("^[!-~ ]*$")),
        ),
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PATHS: [&str; 9] = [
        "/api/v1/partners",
        "/api/v1/partners/available",
        "/api/v1/partners/wholesalers",
        "/api/v1/partners/{id}",
        "/api/v1/partners/{id}/click_event",
        "/api/v1/partners/{id}/connect",
        "/healthz",
        "/readyz",
        "/api/v1/openapi.json",
    ];

    /// Every `$ref` string (and discriminator mapping target) in `value`.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    match (key.as_str(), child) {
                        ("$ref", Value::String(target)) => out.push(target),
                        ("mapping", Value::Object(mapping)) => {
                            out.extend(mapping.values().filter_map(Value::as_str));
                        }
                        _ => refs(child, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
            _ => {}
        }
    }

    /// Every operation of the document as `(method, path, operation)`.
    fn each_operation(doc: &Value) -> Vec<(String, String, Value)> {
        let paths = doc["paths"].as_object().expect("paths is an object");
        let mut all = Vec::new();
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("path item is an object") {
                if method != "parameters" {
                    all.push((method.clone(), path.clone(), op.clone()));
                }
            }
        }
        all
    }

    #[test]
    fn every_route_is_documented() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths is an object");
        for path in PATHS {
            assert!(paths.contains_key(path), "{path} is missing");
        }
        assert_eq!(
            paths.len(),
            PATHS.len(),
            "unexpected paths: {:?}",
            paths.keys()
        );
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "Partners service REST gateway");
        assert_eq!(operations().len(), 13);
    }

    #[test]
    fn every_ref_resolves_to_a_component() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(
            found.len() > 50,
            "suspiciously few references: {}",
            found.len()
        );
        for target in found {
            let pointer = target
                .strip_prefix("#/components/")
                .map(|rest| format!("/components/{rest}"))
                .unwrap_or_else(|| panic!("{target} does not point into components"));
            assert!(doc.pointer(&pointer).is_some(), "{target} does not resolve");
        }
    }

    #[test]
    fn only_operations_endpoints_are_public() {
        let doc = document();
        let mut ids = Vec::new();
        for (method, path, op) in each_operation(&doc) {
            let public = matches!(
                path.as_str(),
                "/healthz" | "/readyz" | "/api/v1/openapi.json"
            );
            assert_eq!(op.get("security").is_some(), public, "{method} {path}");
            if public {
                assert_eq!(op["security"], json!([]), "{method} {path}");
            } else {
                assert!(op["responses"].get("401").is_some(), "{method} {path}");
            }
            ids.push(op["operationId"].as_str().expect("operationId").to_owned());
        }
        assert_eq!(ids.len(), 13);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 13, "operation ids must be unique");
    }

    #[test]
    fn retry_after_is_documented_on_429_and_503() {
        let doc = document();
        for name in ["TooManyRequests", "ServiceUnavailable"] {
            let header = &doc["components"]["responses"][name]["headers"]["Retry-After"];
            assert_eq!(header["schema"]["minimum"], 1, "{name}");
        }
        let list = &doc["paths"]["/api/v1/partners"]["get"]["parameters"];
        let filter = list
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "filter[categories][]")
            .expect("filter[categories][]");
        assert_eq!(filter["explode"], true);
        assert_eq!(filter["schema"]["items"]["maxLength"], 64);
    }

    #[test]
    fn every_response_carries_x_request_id_and_every_parameter_is_described() {
        let doc = document();
        for (method, path, op) in each_operation(&doc) {
            for (status, response) in op["responses"].as_object().expect("responses") {
                let response = match response["$ref"].as_str() {
                    Some(target) => doc
                        .pointer(target.trim_start_matches('#'))
                        .expect("resolves"),
                    None => response,
                };
                assert!(
                    response["headers"]["X-Request-Id"].is_object(),
                    "{method} {path} {status}"
                );
            }
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                assert!(
                    parameter["description"].is_string() && parameter["schema"].is_object(),
                    "{method} {path}: {parameter}"
                );
            }
        }
    }

    #[test]
    fn created_responses_name_the_new_resource() {
        let doc = document();
        for (path, method) in [
            ("/api/v1/partners", "post"),
            ("/api/v1/partners/{id}/click_event", "post"),
        ] {
            let created = &doc["paths"][path][method]["responses"]["201"];
            assert!(
                created["headers"]["Location"].is_object(),
                "{method} {path}"
            );
        }
    }
}
