//! The OpenAPI 3.1 document of the REST gateway, served at `GET /api/v1/openapi.json`.
//!
//! Produced by utoipa: the paths and operations come from each handler's `#[utoipa::path]`,
//! registered with the router by `routes!` in `super::api`, so the document and the router have
//! one source. This file holds the document's root (info, tags, security, the components no route
//! names itself), the `X-Request-Id` response header that the middleware puts on every response,
//! and [`operations`]. The shared pieces the routes name: [`responses`] (error responses),
//! [`parameters`] (query parameters and request headers), and the schemas in [`schemas`] (shared
//! blocks, errors), [`resources`] (answered documents) and [`bodies`] (request bodies).

pub mod bodies;
pub mod bulk;
pub mod clicks;
pub mod parameters;
pub mod resources;
pub mod responses;
pub mod schemas;
pub mod webhooks;

use std::sync::LazyLock;

use serde_json::Value;
use utoipa::Modify;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, RefOr};

pub use parameters::{RequestHeader, route_parameters};
use responses::ERRORS;
pub use responses::{
    BadRequest, CommonErrors, Conflict, Forbidden, GatewayTimeout, InternalError, NotFound,
    PartnerAnswer, PayloadTooLarge, ServiceUnavailable, TooManyRequests, Unauthorized,
    UnsupportedMediaType,
};

const INFO_DESCRIPTION: &str = "JSON:API gateway over the partners gRPC API.\n\n\
Responses are `application/vnd.api+json` unless stated otherwise. Request bodies may be sent as \
`application/json` or `application/vnd.api+json` and must not exceed 64 KiB. List endpoints also \
accept their parameters as a JSON object body (`{\"filter\": {\"categories\": [\"x\"]}, \"page\": 2}`); \
the query string wins on conflict.\n\n\
Authenticate with an API key as a bearer token. User keys act for their own user and business. \
Service keys name the business with `business_uuid` and act for a user with `X-User-Uuid`; the \
admin operations need a service key.\n\n\
Errors are JSON:API error documents whose `code` is an UPPER_SNAKE reason. 429 and 503 responses \
carry `Retry-After`; every response may carry `X-Request-Id`. With rate limits on, the answers to \
an authenticated request carry the key's `RateLimit-Limit` (its burst), `RateLimit-Remaining` and \
`RateLimit-Reset` (seconds until the burst is whole again), as in the IETF draft.";

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
            tag(
                "webhooks",
                "Endpoints that receive the change events (Standard Webhooks), their deliveries.",
            ),
            tag(
                "events",
                "Change events for services that keep copies of partners.",
            ),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PATHS: [&str; 26] = [
        "/api/v1/partners",
        "/api/v1/partners/available",
        "/api/v1/partners/wholesalers",
        "/api/v1/partners/batch",
        "/api/v1/partners/batch_update",
        "/api/v1/partners/batch_modify",
        "/api/v1/partners/export",
        "/api/v1/partners/{id}/restore",
        "/api/v1/partners/by_external_id/{external_id}",
        "/api/v1/partners/{id}",
        "/api/v1/partners/{id}/click_event",
        "/api/v1/partner_click_events/batch",
        "/api/v1/partners/{id}/click_stats",
        "/api/v1/partner_click_stats/top_partners",
        "/api/v1/partner_click_events",
        "/api/v1/partners/{id}/connect",
        "/api/v1/partners/{id}/users",
        "/api/v1/webhook_endpoints",
        "/api/v1/webhook_endpoints/{id}",
        "/api/v1/webhook_endpoints/{id}/rotate_secret",
        "/api/v1/webhook_endpoints/{id}/deliveries",
        "/api/v1/webhook_endpoints/{id}/deliveries/{delivery_id}/retry",
        "/api/v1/partner_events",
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
        assert_eq!(operations().len(), 33);
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
        assert_eq!(ids.len(), 33);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 33, "operation ids must be unique");
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

    /// A created partner names its URL; a click event has none to read it back from, so its 201
    /// documents no `Location` (one that does not answer would mislead clients).
    #[test]
    fn created_responses_name_the_new_resource_when_it_can_be_read() {
        let doc = document();
        for (path, located) in [
            ("/api/v1/partners", true),
            ("/api/v1/partners/{id}/click_event", false),
        ] {
            let created = &doc["paths"][path]["post"]["responses"]["201"];
            assert!(created.is_object(), "{path}");
            assert_eq!(
                created["headers"]["Location"].is_object(),
                located,
                "post {path}"
            );
        }
    }
}
