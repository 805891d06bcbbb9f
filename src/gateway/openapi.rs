//! The OpenAPI 3.1 document of the REST gateway, served at `GET /api/v1/openapi.json`.
//!
//! Written by hand with `serde_json::json!`. Parameters, headers, request bodies, error responses
//! and schemas used more than once live under `components` and are referenced with `$ref`; the
//! tests at the bottom check that every route is present and every reference resolves.

use serde_json::{Map, Value, json};

/// Media type of every JSON:API document.
const JSON_API: &str = "application/vnd.api+json";
/// Plain JSON: health checks, this document, and the other accepted request body type.
const JSON: &str = "application/json";

/// Error responses under `components/responses`: status, component name, description.
const ERRORS: [(u16, &str, &str); 11] = [
    (
        400,
        "BadRequest",
        "The request is invalid: one error per offending query parameter, header or body field \
         (code `INVALID_ARGUMENT`), or a failed precondition such as a service key connecting \
         without `X-User-Uuid` (code `USER_REQUIRED`).",
    ),
    (
        401,
        "Unauthorized",
        "Missing, malformed, unknown or revoked API key.",
    ),
    (
        403,
        "Forbidden",
        "The API key may not do this (admin operations need a service key).",
    ),
    (
        404,
        "NotFound",
        "The partner, business or user does not exist or is not visible to the caller.",
    ),
    (
        409,
        "Conflict",
        "A conflicting resource exists: the `Idempotency-Key` was already used with a different \
         body (`IDEMPOTENCY_KEY_REUSED`), or the `external_id` is taken (`EXTERNAL_ID_TAKEN`).",
    ),
    (413, "PayloadTooLarge", "The request body is over 64 KiB."),
    (
        415,
        "UnsupportedMediaType",
        "The request body is neither `application/json` nor `application/vnd.api+json`.",
    ),
    (
        429,
        "TooManyRequests",
        "Too many requests (rate limit or saturated connection pool); retry after `Retry-After` \
         seconds.",
    ),
    (
        500,
        "InternalError",
        "An unexpected failure; the detail is always `internal error`.",
    ),
    (
        503,
        "ServiceUnavailable",
        "The database is unreachable or overloaded; retry after `Retry-After` seconds.",
    ),
    (
        504,
        "GatewayTimeout",
        "The request ran past its time limit.",
    ),
];

/// Errors any partner operation may return once authenticated and validated.
const COMMON_ERRORS: [u16; 6] = [400, 401, 429, 500, 503, 504];

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

/// The OpenAPI 3.1 document of the REST gateway.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Partners service REST gateway",
            "version": "1.0.0",
            "description": INFO_DESCRIPTION,
        },
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "partners", "description": "Browsing partners, click events, connections."},
            {"name": "admin", "description": "Creating, updating and deleting partners."},
            {"name": "operations", "description": "Health checks and this document."},
        ],
        "paths": paths(),
        "components": components(),
    })
}

// ---------------------------------------------------------------------------------------------
// Small builders
// ---------------------------------------------------------------------------------------------

/// An object from `(key, value)` pairs (keeps large literals out of `json!`'s recursion).
fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value))
            .collect(),
    )
}

/// `{"$ref": "#/components/{section}/{name}"}`.
fn reference(section: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{section}/{name}") })
}

fn schema_ref(name: &str) -> Value {
    reference("schemas", name)
}

fn string() -> Value {
    json!({"type": "string"})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn date_time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn count() -> Value {
    json!({"type": "integer", "format": "int64", "minimum": 0})
}

/// A string that must be exactly `value` (a JSON:API resource type).
fn constant(value: &str) -> Value {
    json!({"type": "string", "const": value})
}

/// A decimal resource id.
fn numeric_id() -> Value {
    json!({"type": "string", "pattern": "^[1-9][0-9]*$"})
}

/// `schema` or `null`.
fn or_null(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

/// Characters no text field may hold (C0 and C1 controls; Postgres cannot store NUL).
const NO_CONTROLS: &str = "\\u0000-\\u001F\\u007F-\\u009F";

/// A single-line text without control characters, with at least one non-space character.
fn single_line(min: usize, max: usize) -> Value {
    let pattern = if min == 0 {
        format!("^[^{NO_CONTROLS}]*$")
    } else {
        format!("^[^{NO_CONTROLS}]*[^\\s{NO_CONTROLS}][^{NO_CONTROLS}]*$")
    };
    json!({"type": "string", "minLength": min, "maxLength": max, "pattern": pattern})
}

/// One value of an array filter or label list.
fn label() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": format!("^[^{NO_CONTROLS}]+$")})
}

/// Any JSON value without NUL characters (the `metadata` values).
fn json_value() -> Value {
    json!({
        "anyOf": [
            {"type": "string", "pattern": "^[^\\u0000]*$"},
            {"type": "number", "exclusiveMinimum": -1e300, "exclusiveMaximum": 1e300},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": schema_ref("JsonValue")},
            schema_ref("JsonObject"),
        ]
    })
}

/// Response headers: `X-Request-Id`, then the named ones (component names drop the dashes).
fn headers(extra: &[&str]) -> Value {
    Value::Object(
        std::iter::once("X-Request-Id")
            .chain(extra.iter().copied())
            .map(|name| {
                (
                    name.to_owned(),
                    reference("headers", &name.replace('-', "")),
                )
            })
            .collect(),
    )
}

/// A success response with a JSON:API body.
fn json_api(description: &str, schema: &str, extra_headers: &[&str]) -> Value {
    json!({
        "description": description,
        "headers": headers(extra_headers),
        "content": {JSON_API: {"schema": schema_ref(schema)}},
    })
}

/// A success response with a plain JSON body.
fn plain_json(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "headers": headers(&[]),
        "content": {JSON: {"schema": schema}},
    })
}

/// The responses of an operation: its success response, then references to its error responses.
fn responses(status: u16, success: Value, errors: &[u16]) -> Value {
    let mut map = Map::new();
    map.insert(status.to_string(), success);
    for (code, name, _) in ERRORS.iter().filter(|(code, _, _)| errors.contains(code)) {
        map.insert(code.to_string(), reference("responses", name));
    }
    Value::Object(map)
}

/// `COMMON_ERRORS` plus `extra`.
fn errors(extra: &[u16]) -> Vec<u16> {
    COMMON_ERRORS.iter().chain(extra).copied().collect()
}

/// An operation whose parameters are all `components/parameters` references.
fn operation(
    id: &str,
    tag: &str,
    summary: &str,
    description: &str,
    parameters: &[&str],
    responses: Value,
) -> Value {
    let parameters: Vec<Value> = parameters
        .iter()
        .map(|name| reference("parameters", name))
        .collect();
    json!({
        "operationId": id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "responses": responses,
    })
}

/// Sets one more field of an operation.
fn with(mut operation: Value, key: &str, value: Value) -> Value {
    if let Some(map) = operation.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
    operation
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

const LIST_PARAMETERS: [&str; 6] = [
    "BusinessUuid",
    "Include",
    "Search",
    "Page",
    "PerPage",
    "Sort",
];

fn paths() -> Value {
    let list_partners = operation(
        "listPartners",
        "partners",
        "List partners",
        "A page of the partners visible to the business, filtered, searched and sorted. \
         Service keys must pass `business_uuid`; user keys default to their own business.",
        &[
            LIST_PARAMETERS.as_slice(),
            &[
                "FilterCategories",
                "FilterExcludedCategories",
                "FilterWholesalerCategories",
                "FilterCountryCodes",
                "FilterPreferred",
                "FilterActive",
                "XUserUuid",
                "XRequestId",
            ],
        ]
        .concat(),
        responses(
            200,
            json_api("A page of partners.", "PartnerList", &[]),
            &errors(&[404]),
        ),
    );
    let list_available = operation(
        "listAvailablePartners",
        "partners",
        "List available partners",
        "Like `listPartners`, restricted to partners that are available or coming soon.",
        &[
            LIST_PARAMETERS.as_slice(),
            &[
                "FilterCategories",
                "FilterStatus",
                "XUserUuid",
                "XRequestId",
            ],
        ]
        .concat(),
        responses(
            200,
            json_api("A page of partners.", "PartnerList", &[]),
            &errors(&[404]),
        ),
    );
    let list_wholesalers = operation(
        "listWholesalers",
        "partners",
        "List wholesalers",
        "A page of the partners that are wholesalers.",
        &[
            "BusinessUuid",
            "Include",
            "Page",
            "PerPage",
            "Sort",
            "XUserUuid",
            "XRequestId",
        ],
        responses(
            200,
            json_api("A page of wholesalers.", "PartnerList", &[]),
            &errors(&[404]),
        ),
    );
    let get_partner = operation(
        "getPartner",
        "partners",
        "Get a partner",
        "One partner, as seen by the business (and user) in context.",
        &["BusinessUuid", "Include", "XUserUuid", "XRequestId"],
        responses(
            200,
            json_api("The partner.", "PartnerDocument", &[]),
            &errors(&[404]),
        ),
    );
    let create_partner = with(
        operation(
            "createPartner",
            "admin",
            "Create a partner",
            "Creates a partner; `name` is required. Service keys only.",
            &["XRequestId"],
            responses(
                201,
                json_api("The created partner.", "PartnerDocument", &["Location"]),
                &errors(&[403, 409, 413, 415]),
            ),
        ),
        "requestBody",
        reference("requestBodies", "PartnerCreate"),
    );
    let update_partner = with(
        operation(
            "updatePartner",
            "admin",
            "Update a partner",
            "Updates exactly the attributes present in the body (at least one). Service keys only.",
            &["XRequestId"],
            responses(
                200,
                json_api("The updated partner.", "PartnerDocument", &[]),
                &errors(&[403, 404, 409, 413, 415]),
            ),
        ),
        "requestBody",
        reference("requestBodies", "PartnerUpdate"),
    );
    let delete_partner = operation(
        "deletePartner",
        "admin",
        "Delete a partner",
        "Soft-deletes a partner. Service keys only.",
        &["XRequestId"],
        responses(
            204,
            json!({"description": "Deleted.", "headers": headers(&[])}),
            &errors(&[403, 404]),
        ),
    );
    let click_event = with(
        operation(
            "createPartnerClickEvent",
            "partners",
            "Record a click on a partner",
            "Records a website or video click by the business (and user) in context. With an \
             `Idempotency-Key`, a replay with the same body returns 201 with the first event, and \
             a reuse with a different body fails with 409.",
            &["BusinessUuid", "IdempotencyKey", "XUserUuid", "XRequestId"],
            responses(
                201,
                json_api("The click event.", "ClickEventDocument", &["Location"]),
                &errors(&[404, 409, 413, 415]),
            ),
        ),
        "requestBody",
        reference("requestBodies", "ClickEvent"),
    );
    let connect = operation(
        "connectPartner",
        "partners",
        "Connect the current user",
        "Connects the user in context to the partner; no body. Needs a user: a user key, or a \
         service key with `X-User-Uuid` (otherwise 400 `USER_REQUIRED`).",
        &["XUserUuid", "XRequestId"],
        responses(
            200,
            json_api("The partner.", "PartnerDocument", &[]),
            &errors(&[404]),
        ),
    );
    let disconnect = operation(
        "disconnectPartner",
        "partners",
        "Disconnect the current user",
        "Disconnects the user in context from the partner. Needs a user: a user key, or a \
         service key with `X-User-Uuid` (otherwise 400 `USER_REQUIRED`).",
        &["XUserUuid", "XRequestId"],
        responses(
            200,
            json_api("The partner.", "PartnerDocument", &[]),
            &errors(&[404]),
        ),
    );
    let healthz = json!({
        "operationId": "healthz",
        "tags": ["operations"],
        "summary": "Liveness",
        "security": [],
        "responses": {"200": plain_json("The process is up.", schema_ref("Health"))},
    });
    let readyz = json!({
        "operationId": "readyz",
        "tags": ["operations"],
        "summary": "Readiness",
        "description": "Ready when the database answers.",
        "security": [],
        "responses": {
            "200": plain_json("Ready to serve.", schema_ref("Readiness")),
            "503": plain_json("Not ready (`{\"status\": \"unavailable\"}`).", schema_ref("Readiness")),
        },
    });
    let openapi = json!({
        "operationId": "openapi",
        "tags": ["operations"],
        "summary": "This OpenAPI document",
        "security": [],
        "responses": {
            "200": plain_json(
                "The OpenAPI 3.1 document of this gateway.",
                json!({"type": "object"}),
            ),
        },
    });
    let id = [reference("parameters", "PartnerId")];
    json!({
        "/api/v1/partners": {"get": list_partners, "post": create_partner},
        "/api/v1/partners/available": {"get": list_available},
        "/api/v1/partners/wholesalers": {"get": list_wholesalers},
        "/api/v1/partners/{id}": {
            "parameters": id,
            "get": get_partner,
            "patch": update_partner,
            "delete": delete_partner,
        },
        "/api/v1/partners/{id}/click_event": {"parameters": id, "post": click_event},
        "/api/v1/partners/{id}/connect": {
            "parameters": id,
            "patch": connect,
            "delete": disconnect,
        },
        "/healthz": {"get": healthz},
        "/readyz": {"get": readyz},
        "/api/v1/openapi.json": {"get": openapi},
    })
}

// ---------------------------------------------------------------------------------------------
// Components
// ---------------------------------------------------------------------------------------------

fn components() -> Value {
    json!({
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key: `Authorization: Bearer <key>`.",
            },
        },
        "parameters": parameters(),
        "headers": {
            "XRequestId": {
                "description": "Identifier of the request, for correlating logs.",
                "schema": {"type": "string"},
            },
            "Location": {
                "description": "URL of the created resource.",
                "schema": {"type": "string"},
            },
            "RetryAfter": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 1},
            },
        },
        "requestBodies": request_bodies(),
        "responses": error_responses(),
        "schemas": schemas(),
    })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": schema})
}

fn header(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "header", "description": description, "schema": schema})
}

/// A repeatable array filter (`filter[x][]=a&filter[x][]=b`).
fn array_filter(name: &str, description: &str, items: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "style": "form",
        "explode": true,
        "schema": {"type": "array", "items": items, "maxItems": 50},
    })
}

/// A boolean filter; `1` and `0` are accepted too.
fn bool_filter(name: &str, description: &str) -> Value {
    query(
        name,
        &format!("{description} Accepts `true`, `false`, `1` or `0`."),
        json!({"type": "string", "enum": ["true", "false", "1", "0"]}),
    )
}

fn parameters() -> Value {
    object([
        (
            "PartnerId",
            json!({
                "name": "id",
                "in": "path",
                "required": true,
                "description": "Partner id.",
                "schema": {"type": "integer", "format": "int64", "minimum": 1},
            }),
        ),
        (
            "BusinessUuid",
            query(
                "business_uuid",
                "Business in context. Required for service keys; user keys default to their own \
                 business. Empty means none.",
                json!({"anyOf": [uuid(), {"type": "string", "maxLength": 0}]}),
            ),
        ),
        (
            "Include",
            json!({
                "name": "include",
                "in": "query",
                "description": "Comma-separated related resources to include: `users`, \
                                `partner_integrations`.",
                "schema": {
                    "type": "string",
                    "pattern": "^((users|partner_integrations)(,(users|partner_integrations))*)?$",
                },
                "example": "users,partner_integrations",
            }),
        ),
        (
            "Search",
            query(
                "search",
                "Case-insensitive substring of the partner name; 1 to 100 characters after \
                 trimming (empty means no search). `%`, `_` and `\\` match literally.",
                json!({
                    "type": "string",
                    "maxLength": 100,
                    "pattern": format!("^([^{NO_CONTROLS}]*[^\\s{NO_CONTROLS}][^{NO_CONTROLS}]*)?$"),
                }),
            ),
        ),
        (
            "Page",
            query(
                "page",
                "Page number, from 1.",
                json!({"type": "integer", "format": "int32", "minimum": 1, "default": 1}),
            ),
        ),
        (
            "PerPage",
            query(
                "per_page",
                "Page size.",
                json!({
                    "type": "integer",
                    "format": "int32",
                    "minimum": 1,
                    "maximum": 100,
                    "default": 25,
                }),
            ),
        ),
        (
            "Sort",
            json!({
                "name": "sort",
                "in": "query",
                "description": "Comma-separated sort keys, each once: `name`, `created_at`, \
                                `updated_at`, `clicks`, `users_count`; prefix `-` for descending.",
                "schema": {
                    "type": "string",
                    "pattern": "^(-?(name|created_at|updated_at|clicks|users_count)(,-?(name|created_at|updated_at|clicks|users_count))*)?$",
                },
                "example": "-clicks,name",
            }),
        ),
        (
            "FilterCategories",
            array_filter(
                "filter[categories][]",
                "Partners in any of these categories. `filter[categories]=a,b` (comma-separated) \
                 is accepted as well and merges with this form.",
                label(),
            ),
        ),
        (
            "FilterExcludedCategories",
            array_filter(
                "filter[excluded_categories][]",
                "Partners in none of these categories.",
                label(),
            ),
        ),
        (
            "FilterWholesalerCategories",
            array_filter(
                "filter[wholesaler_categories][]",
                "Partners in any of these wholesaler categories.",
                label(),
            ),
        ),
        (
            "FilterCountryCodes",
            array_filter(
                "filter[country_codes][]",
                "Partners serving any of these countries (ISO 3166-1 alpha-2, any case).",
                json!({"type": "string", "pattern": "^[A-Za-z]{2}$"}),
            ),
        ),
        (
            "FilterStatus",
            array_filter(
                "filter[status][]",
                "Partners with any of these statuses.",
                json!({"type": "string", "enum": ["available", "coming_soon"]}),
            ),
        ),
        (
            "FilterPreferred",
            bool_filter(
                "filter[preferred]",
                "Only partners the business prefers (`true`) or does not (`false`).",
            ),
        ),
        (
            "FilterActive",
            bool_filter(
                "filter[active]",
                "Only active (`true`) or inactive (`false`) partners.",
            ),
        ),
        (
            "XUserUuid",
            header(
                "X-User-Uuid",
                "With a service key: the user to act for. Ignored for user keys.",
                uuid(),
            ),
        ),
        (
            "XRequestId",
            header(
                "X-Request-Id",
                "Client-chosen request identifier, for correlating logs.",
                string(),
            ),
        ),
        (
            "IdempotencyKey",
            header(
                "Idempotency-Key",
                "Makes the request idempotent: a replay with the same body returns the first \
                 result; a different body with the same key is a 409.",
                json!({"type": "string", "maxLength": 200, "pattern": "^[!-~ ]*$"}),
            ),
        ),
    ])
}

/// A required request body accepted as JSON or JSON:API.
fn request_body(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "required": true,
        "content": {
            JSON: {"schema": schema_ref(schema)},
            JSON_API: {"schema": schema_ref(schema)},
        },
    })
}

fn request_bodies() -> Value {
    object([
        (
            "PartnerCreate",
            request_body("The new partner.", "PartnerCreateRequest"),
        ),
        (
            "PartnerUpdate",
            request_body("The attributes to change.", "PartnerUpdateRequest"),
        ),
        (
            "ClickEvent",
            request_body("The click event.", "ClickEventRequest"),
        ),
    ])
}

fn error_responses() -> Value {
    Value::Object(
        ERRORS
            .iter()
            .map(|(status, name, description)| {
                let extra: &[&str] = if matches!(status, 429 | 503) {
                    &["Retry-After"]
                } else {
                    &[]
                };
                (
                    (*name).to_owned(),
                    json!({
                        "description": description,
                        "headers": headers(extra),
                        "content": {JSON_API: {"schema": schema_ref("Errors")}},
                    }),
                )
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

fn schemas() -> Value {
    object([
        ("JsonValue", json_value()),
        (
            "JsonObject",
            json!({
                "type": "object",
                "propertyNames": {"pattern": "^[^\\u0000]*$"},
                "additionalProperties": schema_ref("JsonValue"),
            }),
        ),
        ("Partner", partner()),
        ("PartnerAttributes", partner_attributes()),
        (
            "PartnerStats",
            json!({
                "type": "object",
                "required": ["clicks", "website_clicks", "video_clicks", "users_count"],
                "properties": {
                    "clicks": count(),
                    "website_clicks": count(),
                    "video_clicks": count(),
                    "users_count": count(),
                },
            }),
        ),
        (
            "PartnerRelationships",
            json!({
                "type": "object",
                "description": "Only the relationships named in `include`.",
                "properties": {
                    "users": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "data": {"type": "array", "items": schema_ref("UserIdentifier")},
                        },
                    },
                    "partner_integrations": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "data": {
                                "type": "array",
                                "items": schema_ref("PartnerIntegrationIdentifier"),
                            },
                        },
                    },
                },
            }),
        ),
        (
            "PartnerStatus",
            json!({"type": "string", "enum": ["available", "coming_soon", "unavailable"]}),
        ),
        (
            "IntegrationStatus",
            json!({"type": "string", "enum": ["pending", "active", "inactive", "failed"]}),
        ),
        (
            "PartnerIdentifier",
            json!({
                "type": "object",
                "required": ["type", "id"],
                "properties": {"type": constant("partner"), "id": numeric_id()},
            }),
        ),
        (
            "UserIdentifier",
            json!({
                "type": "object",
                "required": ["type", "id"],
                "properties": {"type": constant("user"), "id": uuid()},
            }),
        ),
        (
            "PartnerIntegrationIdentifier",
            json!({
                "type": "object",
                "required": ["type", "id"],
                "properties": {"type": constant("partner_integration"), "id": numeric_id()},
            }),
        ),
        (
            "IncludedResource",
            json!({
                "oneOf": [schema_ref("IncludedUser"), schema_ref("IncludedPartnerIntegration")],
                "discriminator": {
                    "propertyName": "type",
                    "mapping": {
                        "user": "#/components/schemas/IncludedUser",
                        "partner_integration": "#/components/schemas/IncludedPartnerIntegration",
                    },
                },
            }),
        ),
        (
            "IncludedUser",
            json!({
                "type": "object",
                "required": ["type", "id", "attributes"],
                "properties": {
                    "type": constant("user"),
                    "id": uuid(),
                    "attributes": {
                        "type": "object",
                        "required": ["name", "email"],
                        "properties": {"name": string(), "email": string()},
                    },
                },
            }),
        ),
        (
            "IncludedPartnerIntegration",
            json!({
                "type": "object",
                "required": ["type", "id", "attributes"],
                "properties": {
                    "type": constant("partner_integration"),
                    "id": numeric_id(),
                    "attributes": {
                        "type": "object",
                        "required": ["status", "business_uuid", "created_at", "updated_at"],
                        "properties": {
                            "status": schema_ref("IntegrationStatus"),
                            "business_uuid": uuid(),
                            "created_at": date_time(),
                            "updated_at": date_time(),
                        },
                    },
                },
            }),
        ),
        (
            "PartnerDocument",
            json!({
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": schema_ref("Partner"),
                    "included": included(),
                },
            }),
        ),
        ("PartnerList", partner_list()),
        ("PartnerWriteAttributes", partner_write_attributes()),
        (
            "PartnerCreateRequest",
            partner_write_request(json!({
                "allOf": [schema_ref("PartnerWriteAttributes")],
                "required": ["name"],
            })),
        ),
        (
            "PartnerUpdateRequest",
            partner_write_request(json!({
                "allOf": [schema_ref("PartnerWriteAttributes")],
                "minProperties": 1,
                "description": "Only the attributes present are updated.",
            })),
        ),
        ("ClickEventRequest", click_event_request()),
        ("ClickEventDocument", click_event_document()),
        (
            "Errors",
            json!({
                "type": "object",
                "required": ["errors"],
                "properties": {
                    "errors": {"type": "array", "minItems": 1, "items": schema_ref("Error")},
                },
            }),
        ),
        ("Error", error()),
        (
            "Health",
            json!({
                "type": "object",
                "required": ["status"],
                "properties": {"status": constant("ok")},
            }),
        ),
        (
            "Readiness",
            json!({
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"type": "string", "enum": ["ready", "unavailable"]}},
            }),
        ),
    ])
}

fn included() -> Value {
    json!({
        "type": "array",
        "description": "Present only when `include` was requested.",
        "items": schema_ref("IncludedResource"),
    })
}

fn partner() -> Value {
    json!({
        "type": "object",
        "required": ["id", "type", "attributes"],
        "properties": {
            "id": numeric_id(),
            "type": constant("partner"),
            "attributes": schema_ref("PartnerAttributes"),
            "relationships": schema_ref("PartnerRelationships"),
        },
    })
}

fn partner_attributes() -> Value {
    let properties = object([
        ("name", string()),
        ("description", string()),
        ("email", string()),
        ("logo_url", string()),
        ("website_url", string()),
        ("video_url", string()),
        ("categories", strings()),
        ("wholesaler_categories", strings()),
        ("country_codes", strings()),
        ("tags", strings()),
        ("status", schema_ref("PartnerStatus")),
        ("active", json!({"type": "boolean"})),
        ("external_id", json!({"type": ["string", "null"]})),
        ("metadata", json!({"type": "object"})),
        ("stats", schema_ref("PartnerStats")),
        (
            "preferred",
            json!({
                "type": ["boolean", "null"],
                "description": "Whether the business in context prefers the partner; null \
                                without a business in context.",
            }),
        ),
        (
            "integration_status",
            json!({
                "description": "The business's integration with the partner, if any.",
                "oneOf": [schema_ref("IntegrationStatus"), {"type": "null"}],
            }),
        ),
        (
            "connected",
            json!({
                "type": ["boolean", "null"],
                "description": "Whether the user in context is connected; null without a user \
                                in context.",
            }),
        ),
        ("created_at", date_time()),
        ("updated_at", date_time()),
    ]);
    let required: Vec<&String> = properties
        .as_object()
        .map(|map| map.keys().collect())
        .unwrap_or_default();
    json!({"type": "object", "required": required, "properties": properties})
}

fn partner_list() -> Value {
    let link = json!({"type": "string", "format": "uri-reference"});
    let optional_link = json!({"type": ["string", "null"], "format": "uri-reference"});
    json!({
        "type": "object",
        "required": ["data", "meta", "links"],
        "properties": {
            "data": {"type": "array", "items": schema_ref("Partner")},
            "included": included(),
            "meta": {
                "type": "object",
                "required": ["page", "per_page", "total", "total_pages"],
                "properties": {
                    "page": count(),
                    "per_page": count(),
                    "total": count(),
                    "total_pages": count(),
                },
            },
            "links": {
                "type": "object",
                "required": ["self", "first", "last", "prev", "next"],
                "properties": {
                    "self": link,
                    "first": link,
                    "last": link,
                    "prev": optional_link,
                    "next": optional_link,
                },
            },
        },
    })
}

fn partner_write_attributes() -> Value {
    let labels = json!({"type": ["array", "null"], "items": label(), "maxItems": 50});
    let url = json!({
        "type": ["string", "null"],
        "maxLength": 2048,
        "pattern": format!("^(https?://[^\\s{NO_CONTROLS}]+)?$"),
        "description": "An http(s) URL, or empty/null for none.",
    });
    let mut name = single_line(1, 200);
    name["description"] = json!("Display name (trimmed).");
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "name": name,
            "description": {
                "type": ["string", "null"],
                "maxLength": 5000,
                "pattern": "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$",
            },
            "email": {
                "type": ["string", "null"],
                "maxLength": 320,
                "pattern": format!("^([^@\\s{NO_CONTROLS}]+@[^\\s{NO_CONTROLS}]+)?$"),
                "description": "An e-mail address, or empty/null for none.",
            },
            "logo_url": url,
            "website_url": url,
            "video_url": url,
            "categories": labels,
            "wholesaler_categories": labels,
            "tags": labels,
            "country_codes": {
                "type": ["array", "null"],
                "maxItems": 50,
                "items": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
                "description": "ISO 3166-1 alpha-2 codes, any case; stored upper-case.",
            },
            "status": schema_ref("PartnerStatus"),
            "active": {"type": "boolean"},
            "external_id": {
                "type": ["string", "null"],
                "maxLength": 200,
                "pattern": format!("^[^{NO_CONTROLS}]*$"),
                "description": "The caller's own reference; empty or null clears it.",
            },
            "metadata": {
                "anyOf": [schema_ref("JsonObject"), {"type": "null"}],
                "description": "Free-form JSON object of at most 16 KiB serialized (no NUL characters).",
            },
        },
    })
}

/// `{"data": {"type": "partner", "attributes": ...}}`.
fn partner_write_request(attributes: Value) -> Value {
    json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["type", "attributes"],
                "properties": {
                    "type": {"type": "string", "enum": ["partner"]},
                    "attributes": attributes,
                },
            },
        },
    })
}

fn click_event_request() -> Value {
    json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["type", "attributes"],
                "properties": {
                    "type": {"type": "string", "enum": ["partner_click_events"]},
                    "attributes": {
                        "type": "object",
                        "required": ["event_type"],
                        "properties": {
                            "event_type": {"type": "string", "enum": ["website", "video"]},
                        },
                    },
                    "relationships": {
                        "type": "object",
                        "properties": {
                            "partner": {
                                "description": "If given, its id must equal the path id.",
                                "oneOf": [
                                    schema_ref("PartnerIdentifier"),
                                    {
                                        "type": "object",
                                        "required": ["data"],
                                        "properties": {"data": schema_ref("PartnerIdentifier")},
                                    },
                                ],
                            },
                        },
                    },
                },
            },
        },
    })
}

fn click_event_document() -> Value {
    let event = json!({
        "type": "object",
        "required": ["id", "type", "attributes", "relationships"],
        "properties": {
            "id": string(),
            "type": constant("partner_click_events"),
            "attributes": {
                "type": "object",
                "required": ["event_type", "created_at"],
                "properties": {
                    "event_type": {"type": "string", "enum": ["website", "video"]},
                    "created_at": date_time(),
                },
            },
            "relationships": {
                "type": "object",
                "required": ["partner", "user"],
                "properties": {
                    "partner": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {"data": schema_ref("PartnerIdentifier")},
                    },
                    "user": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {"data": or_null(schema_ref("UserIdentifier"))},
                    },
                },
            },
        },
    });
    json!({"type": "object", "required": ["data"], "properties": {"data": event}})
}

fn error() -> Value {
    json!({
        "type": "object",
        "required": ["status", "code", "title", "detail"],
        "properties": {
            "status": {
                "type": "string",
                "pattern": "^[1-5][0-9]{2}$",
                "description": "The HTTP status, as a string.",
                "examples": ["400"],
            },
            "code": {
                "type": "string",
                "pattern": "^[A-Z][A-Z0-9_]*$",
                "description": "UPPER_SNAKE reason.",
                "examples": ["INVALID_ARGUMENT", "NOT_FOUND", "IDEMPOTENCY_KEY_REUSED"],
            },
            "title": {"type": "string", "description": "The HTTP reason phrase."},
            "detail": {"type": "string"},
            "source": {
                "type": "object",
                "description": "What in the request the error is about: one of these keys.",
                "minProperties": 1,
                "maxProperties": 1,
                "properties": {
                    "parameter": {"type": "string", "description": "A query or path parameter."},
                    "pointer": {"type": "string", "description": "A JSON pointer into the body."},
                    "header": {"type": "string", "description": "A request header."},
                },
                "additionalProperties": false,
            },
        },
    })
}

#[cfg(test)]
mod tests {
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
        let paths = doc["paths"].as_object().expect("paths is an object");
        let mut ids = Vec::new();
        for (path, item) in paths {
            let public = matches!(
                path.as_str(),
                "/healthz" | "/readyz" | "/api/v1/openapi.json"
            );
            for (method, op) in item.as_object().expect("path item is an object") {
                if method == "parameters" {
                    continue;
                }
                assert_eq!(op.get("security").is_some(), public, "{method} {path}");
                if public {
                    assert_eq!(op["security"], json!([]), "{method} {path}");
                } else {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}");
                }
                ids.push(op["operationId"].as_str().expect("operationId").to_owned());
            }
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
            assert!(header.get("$ref").is_some(), "{name}");
        }
        let filter = &doc["components"]["parameters"]["FilterCategories"];
        assert_eq!(filter["name"], "filter[categories][]");
        assert_eq!(filter["explode"], true);
        assert_eq!(filter["schema"]["items"]["maxLength"], 64);
    }
}
