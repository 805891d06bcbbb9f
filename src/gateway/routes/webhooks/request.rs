//! What the webhook routes read from a request: the path ids, the endpoint attributes of a body
//! (and which are present, for an update's mask), page sizes, and where each request field came
//! from for error sources; and the `links.next` of a list page.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use serde_json::Value;

use crate::gateway::errors::{ApiError, ApiErrors, Source, query_source};
use crate::gateway::extract::data_object;
use crate::grpc::pb;

/// REST source of a request field: the body's attributes, the path ids, the query.
pub(super) fn source(field: &str) -> Source {
    match field {
        "endpoint" => Source::Pointer("/data".into()),
        "id" | "endpoint.id" | "endpoint_id" => Source::Parameter("id".into()),
        "delivery_id" => Source::Parameter("delivery_id".into()),
        "update_mask" => Source::Pointer("/data/attributes".into()),
        "state" => Source::Parameter("filter[state]".into()),
        other => match other.strip_prefix("endpoint.") {
            Some(attribute) => {
                let (name, index) = match attribute.split_once('[') {
                    Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
                    None => (attribute, None),
                };
                let mut pointer = format!("/data/attributes/{name}");
                if let Some(i) = index {
                    pointer.push('/');
                    pointer.push_str(i);
                }
                Source::Pointer(pointer)
            }
            None => query_source(other),
        },
    }
}

/// A positive id from a path segment named `name`.
pub(super) fn path_id(raw: Option<String>, name: &str) -> Result<i64, ApiErrors> {
    raw.and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            ApiError::bad_parameter(name, format!("{name} must be a positive integer")).into()
        })
}

pub(super) fn one_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiErrors> {
    path_id(path.ok().map(|Path(p)| p), "id")
}

/// The endpoint write attributes of a body, and the names present.
pub(super) fn endpoint_from_body(
    body: &Option<Value>,
) -> Result<(pb::WebhookEndpoint, Vec<String>), ApiErrors> {
    let data = data_object(body, "webhook_endpoints")?;
    let mut endpoint = pb::WebhookEndpoint::default();
    let mut present = Vec::new();
    let Some(attributes) = data.get("attributes") else {
        return Ok((endpoint, present));
    };
    let attributes = attributes
        .as_object()
        .ok_or_else(|| ApiError::bad_pointer("/data/attributes", "must be an object"))?;
    let mut errors = Vec::new();
    for (name, value) in attributes {
        let pointer = format!("/data/attributes/{name}");
        let wrong = |what: &str| ApiError::bad_pointer(&pointer, format!("must be {what}"));
        match name.as_str() {
            "url" | "description" => match value.as_str() {
                Some(text) if name == "url" => endpoint.url = text.to_owned(),
                Some(text) => endpoint.description = text.to_owned(),
                None => errors.push(wrong("a string")),
            },
            "event_types" => match value.as_array() {
                Some(items) if items.iter().all(Value::is_string) => {
                    endpoint.event_types = items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                }
                _ => errors.push(wrong("an array of strings")),
            },
            "paused" => match value.as_bool() {
                Some(paused) => endpoint.paused = paused,
                None => errors.push(wrong("a boolean")),
            },
            _ => errors.push(ApiError::bad_pointer(
                &pointer,
                "unknown attribute; known: url, description, event_types, paused",
            )),
        }
        present.push(name.clone());
    }
    if errors.is_empty() {
        Ok((endpoint, present))
    } else {
        Err(errors.into())
    }
}

/// A list's `links.next`, carrying the token (and the other query parameters).
pub(super) fn next_link(path: &str, pairs: &[(&str, String)], token: &str) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            query.append_pair(k, v);
        }
    }
    query.append_pair("page_token", token);
    Some(format!("{path}?{}", query.finish()))
}

/// The page size of a query, 0 when absent (the server's default).
pub(super) fn page_size(params: &crate::gateway::params::Params) -> Result<i32, ApiErrors> {
    let mut errors = Vec::new();
    let size = params.int("page_size", &mut errors).unwrap_or(0);
    if errors.is_empty() {
        Ok(size)
    } else {
        Err(errors.into())
    }
}
