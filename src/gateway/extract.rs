//! Request decoding shared by the routes: the query (and GET body) parameters, the JSON body with
//! its 413/415/400 rules, the `{id}` path segment, JSON:API `data` objects (click events, partner
//! attributes), and the mapping of a request field back to where it came from. Only shape is
//! checked here; the rules on values live in the gRPC layer.

use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use super::MAX_BODY_BYTES;
use super::document;
use super::errors::{ApiError, ApiErrors, JSON_API, Source, query_source};
use super::params::{Accepts, Params};
use crate::grpc::pb;

/// What a route that takes no query parameter accepts.
pub const NOTHING: Accepts = Accepts {
    scalars: &[],
    array_filters: &[],
    bool_filters: &[],
    statuses: &[],
};

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v == JSON_API)
}

/// Reads the body: at most 64 KiB (413), JSON content type when non-empty (415), valid JSON (400).
/// The size is bounded by the body limit layer (see `middleware`); a body it cuts off, or any
/// other failure to read the body, is answered 413 here.
pub async fn read_json(headers: &HeaderMap, body: Body) -> Result<Option<Value>, ApiErrors> {
    let bytes: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|_| payload_too_large())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send application/json or application/vnd.api+json",
        )
        .into());
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_pointer("", format!("malformed JSON: {e}")).into())
}

/// The 413 error of a body over [`MAX_BODY_BYTES`].
pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!("the body exceeds {MAX_BODY_BYTES} bytes"),
    )
}

/// Query parameters merged with those of an optional JSON body (the query wins).
pub async fn read_params(
    headers: &HeaderMap,
    query: Option<String>,
    body: Body,
    accepts: &Accepts,
) -> Result<Params, ApiErrors> {
    let mut params = query_params(query, accepts)?;
    if let Some(json) = read_json(headers, body).await? {
        params.merge_missing(Params::from_body(&json, accepts)?);
    }
    Ok(params)
}

/// Query parameters only (routes whose body, if any, is a document).
pub fn query_params(query: Option<String>, accepts: &Accepts) -> Result<Params, ApiErrors> {
    Ok(Params::from_query(query.as_deref().unwrap_or(""), accepts)?)
}

/// The `Idempotency-Key` header as a gRPC `request_id` (empty when absent); its rules (length,
/// printable) are the gRPC layer's.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiErrors> {
    match headers.get("idempotency-key") {
        None => Ok(String::new()),
        Some(v) => Ok(v
            .to_str()
            .map_err(|_| {
                ApiError::bad_request(
                    Source::Header("Idempotency-Key".into()),
                    "must be visible ASCII",
                )
            })?
            .to_owned()),
    }
}

/// The partner id of the path (`{id}`): an integer, else 400 naming `id`.
pub fn partner_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiErrors> {
    let raw = path.map(|Path(p)| p).unwrap_or_default();
    raw.parse::<i64>()
        .map_err(|_| ApiError::bad_parameter("id", "the partner id must be an integer").into())
}

/// Maps a request field to its REST source: the query parameter, or the body pointer it came from.
pub fn params_source(params: &Params) -> impl Fn(&str) -> Source + Sync + '_ {
    move |field| match query_source(field) {
        Source::Parameter(name) => params.source(&name),
        other => other,
    }
}

/// `Ok` when no error was collected.
pub fn check(errors: Vec<ApiError>) -> Result<(), ApiErrors> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.into())
    }
}

/// The JSON:API `data` object of a body, with its `type` checked.
pub fn data_object<'a>(
    body: &'a Option<Value>,
    expected_type: &str,
) -> Result<&'a serde_json::Map<String, Value>, ApiErrors> {
    let data = body
        .as_ref()
        .and_then(|b| b.get("data"))
        .ok_or_else(|| {
            ApiError::bad_pointer("/data", "a JSON:API document with `data` is required")
        })?
        .as_object()
        .ok_or_else(|| ApiError::bad_pointer("/data", "must be an object"))?;
    match data.get("type").and_then(Value::as_str) {
        Some(t) if t == expected_type => Ok(data),
        _ => Err(ApiError::bad_pointer("/data/type", format!("must be {expected_type:?}")).into()),
    }
}

/// A JSON:API resource id (always a string).
pub fn id_text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Checks `relationships.partner` (`{id, type}` or `{data: {id, type}}`) against the path id.
fn check_partner_relationship(
    data: &serde_json::Map<String, Value>,
    id: i64,
) -> Result<(), ApiErrors> {
    let relationships = match data.get("relationships") {
        None => return Ok(()),
        Some(Value::Object(r)) => r,
        Some(_) => {
            return Err(ApiError::bad_pointer("/data/relationships", "must be an object").into());
        }
    };
    let Some(partner) = relationships.get("partner") else {
        return Ok(());
    };
    // `{data: {id, type}}` when `data` is an object (or the partner has no `id` of its own: then
    // `data` is what was meant); otherwise `{id, type}`, whose extra members are ignored as the
    // schema allows.
    let (object, base) = match partner.get("data") {
        Some(inner) if inner.is_object() || partner.get("id").is_none() => {
            (inner, "/data/relationships/partner/data")
        }
        _ => (partner, "/data/relationships/partner"),
    };
    let mut errors = Vec::new();
    if !object.is_object() {
        errors.push(ApiError::bad_pointer(
            base,
            "must be an object with id and type",
        ));
        return check(errors);
    }
    if let Some(t) = object.get("type")
        && t.as_str() != Some("partner")
    {
        errors.push(ApiError::bad_pointer(
            &format!("{base}/type"),
            "must be \"partner\"",
        ));
    }
    match object.get("id").and_then(id_text) {
        Some(text) if text == id.to_string() => {}
        Some(_) => errors.push(ApiError::bad_pointer(
            &format!("{base}/id"),
            "must match the partner id in the path",
        )),
        None => errors.push(ApiError::bad_pointer(
            &format!("{base}/id"),
            "must be the partner id as a string",
        )),
    }
    check(errors)
}

/// Decodes a click-event document (`relationships.partner` as `{id, type}` or `{data: {id, type}}`)
/// into the event type value sent to gRPC (unknown names become -1, rejected there).
pub fn click_event_type(body: &Option<Value>, id: i64) -> Result<i32, ApiErrors> {
    let data = data_object(body, "partner_click_events")?;
    let event_type = match data.get("attributes").and_then(|a| a.get("event_type")) {
        None | Some(Value::Null) => pb::EventType::Unspecified as i32,
        Some(Value::String(s)) => document::event_type_value(s),
        Some(_) => {
            return Err(
                ApiError::bad_pointer("/data/attributes/event_type", "must be a string").into(),
            );
        }
    };
    check_partner_relationship(data, id)?;
    Ok(event_type)
}

/// Decodes partner attributes into a message and the list of attributes present.
pub fn partner_from_attributes(
    data: &serde_json::Map<String, Value>,
) -> Result<(pb::Partner, Vec<String>), ApiErrors> {
    let mut partner = pb::Partner::default();
    let mut present = Vec::new();
    let mut errors = Vec::new();
    let Some(attributes) = data.get("attributes") else {
        return Ok((partner, present));
    };
    let Some(attributes) = attributes.as_object() else {
        return Err(ApiError::bad_pointer("/data/attributes", "must be an object").into());
    };
    for (key, value) in attributes {
        let pointer = format!("/data/attributes/{key}");
        let text = || match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => Some(String::new()),
            _ => None,
        };
        let list = || match value {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect(),
            Value::Null => Some(Vec::new()),
            _ => None,
        };
        let ok = match key.as_str() {
            "name" => text().map(|v| partner.name = v).is_some(),
            "description" => text().map(|v| partner.description = v).is_some(),
            "email" => text().map(|v| partner.email = v).is_some(),
            "logo_url" => text().map(|v| partner.logo_url = v).is_some(),
            "website_url" => text().map(|v| partner.website_url = v).is_some(),
            "video_url" => text().map(|v| partner.video_url = v).is_some(),
            "categories" => list().map(|v| partner.categories = v).is_some(),
            "wholesaler_categories" => list().map(|v| partner.wholesaler_categories = v).is_some(),
            "country_codes" => list().map(|v| partner.country_codes = v).is_some(),
            "tags" => list().map(|v| partner.tags = v).is_some(),
            "status" => value
                .as_str()
                .map(|s| partner.status = document::partner_status_value(s))
                .is_some(),
            "active" => value.as_bool().map(|b| partner.active = b).is_some(),
            "external_id" => match value {
                Value::Null => true,
                Value::String(s) => {
                    partner.external_id = Some(s.clone());
                    true
                }
                _ => false,
            },
            "metadata" => match value {
                Value::Object(_) => {
                    partner.metadata = Some(crate::grpc::convert::json_to_struct(value));
                    true
                }
                Value::Null => true,
                _ => false,
            },
            _ => {
                errors.push(ApiError::bad_pointer(
                    &pointer,
                    format!("unknown attribute {key:?}"),
                ));
                continue;
            }
        };
        if ok {
            present.push(key.clone());
        } else {
            errors.push(ApiError::bad_pointer(&pointer, "has the wrong type"));
        }
    }
    check(errors)?;
    Ok((partner, present))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// `{id, type}` with an extra `data` member that is not an object is the `{id, type}` form
    /// (the schema's first alternative); `data` alone must be an object.
    #[test]
    fn a_partner_linkage_reads_data_only_when_it_is_the_object_form() {
        let event = |partner: Value| {
            Some(json!({"data": {"type": "partner_click_events",
                "attributes": {"event_type": "video"},
                "relationships": {"partner": partner}}}))
        };
        let linkage = json!({"id": "1", "type": "partner", "data": [1]});
        assert!(click_event_type(&event(linkage), 1).is_ok());
        let nested = json!({"data": {"id": "1", "type": "partner"}});
        assert!(click_event_type(&event(nested), 1).is_ok());
        let errors = click_event_type(&event(json!({"data": [1]})), 1).expect_err("not an object");
        assert_eq!(
            errors.errors[0].source,
            Source::Pointer("/data/relationships/partner/data".into())
        );
    }

    /// Arbitrary JSON values, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    "(data|type|attributes|relationships|partner|id|event_type|name|.{0,6})",
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn click_body_decoding_never_panics_and_only_reports_400(body in any_json(), id in any::<i64>()) {
            if let Err(errors) = click_event_type(&Some(body), id) {
                prop_assert!(errors.errors.iter().all(|e| e.status == StatusCode::BAD_REQUEST));
                prop_assert!(errors.errors.iter().all(|e| matches!(e.source, Source::Pointer(_))));
            }
        }

        #[test]
        fn well_formed_click_documents_decode(
            id in 1i64..i64::MAX,
            kind in prop_oneof![Just("website"), Just("video")],
            nested in any::<bool>(),
        ) {
            let partner = json!({"id": id.to_string(), "type": "partner"});
            let relationship = if nested { json!({"data": partner}) } else { partner };
            let body = json!({"data": {"type": "partner_click_events", "attributes": {"event_type": kind},
                "relationships": {"partner": relationship}}});
            let expected = if kind == "website" { pb::EventType::Website } else { pb::EventType::Video };
            prop_assert_eq!(click_event_type(&Some(body), id).ok(), Some(expected as i32));
        }

        #[test]
        fn partner_attribute_decoding_never_panics(attributes in any_json()) {
            let data = json!({"type": "partner", "attributes": attributes});
            let object = data.as_object().expect("object");
            if let Ok((_, present)) = partner_from_attributes(object) {
                let keys: Vec<String> = data["attributes"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                prop_assert!(present.iter().all(|p| keys.contains(p)));
            }
        }
    }
}
