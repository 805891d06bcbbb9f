//! Click event documents: one event (`click_event_document`), and in bulk: the request document of `POST /api/v1/partner_click_events/batch`
//! decoded into BatchCreatePartnerClickEvents, the REST source of each of its fields, and the
//! answer (`data[i]` the event or null, `meta.errors` the errors of the events that failed).

use serde_json::{Map, Value, json};
use tonic::Code;

use super::{event_type_name, event_type_value, time};
use crate::gateway::errors::{ApiError, ApiErrors, Source, http_status};
use crate::grpc::pb;

/// A click event resource document.
pub fn click_event_document(e: &pb::ClickEvent) -> Value {
    json!({ "data": click_event_resource(e) })
}

/// A click event resource.
pub fn click_event_resource(e: &pb::ClickEvent) -> Value {
    let user = if e.user_uuid.is_empty() {
        Value::Null
    } else {
        json!({"type": "user", "id": e.user_uuid})
    };
    json!({
        "id": e.id.to_string(),
        "type": "partner_click_events",
        "attributes": {
            "event_type": event_type_name(e.event_type),
            "created_at": time(&e.created_at),
        },
        "relationships": {
            "partner": {"data": {"type": "partner", "id": e.partner_id.to_string()}},
            "user": {"data": user},
        },
    })
}

/// The events of a batch document (`{"data": [event, …]}`). What gRPC checks (the values of ids,
/// uuids, event types, request ids; the number of events) is passed on as it came, so that it
/// fails the one event; a document whose shape is wrong (no array, an element that is no click
/// event, a value of the wrong JSON type, a wrong resource type) is a 400. The OpenAPI schema
/// (`openapi::clicks`) describes exactly this shape.
pub fn click_batch_request(body: &Option<Value>) -> Result<Vec<pb::ClickEventEntry>, ApiErrors> {
    let items = body
        .as_ref()
        .and_then(|b| b.get("data"))
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::bad_pointer("/data", "must be an array of click events"))?;
    let mut errors = Vec::new();
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match entry(i, item) {
            Ok(entry) => events.push(entry),
            Err((pointer, detail)) => errors.push(ApiError::bad_pointer(&pointer, detail)),
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors.into())
    }
}

fn entry(i: usize, item: &Value) -> Result<pb::ClickEventEntry, (String, &'static str)> {
    let base = format!("/data/{i}");
    let at = |path: &str| format!("{base}{path}");
    let object = item
        .as_object()
        .ok_or_else(|| (base.clone(), "must be a click event object"))?;
    if object.get("type").and_then(Value::as_str) != Some("partner_click_events") {
        return Err((at("/type"), "must be \"partner_click_events\""));
    }
    let empty = Map::new();
    let attributes = match object.get("attributes") {
        None => &empty,
        Some(Value::Object(a)) => a,
        Some(_) => return Err((at("/attributes"), "must be an object")),
    };
    let event_type = match attributes.get("event_type") {
        None => pb::EventType::Unspecified as i32,
        Some(Value::String(s)) => event_type_value(s),
        Some(_) => return Err((at("/attributes/event_type"), "must be a string")),
    };
    let request_id = match attributes.get("request_id") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err((at("/attributes/request_id"), "must be a string")),
    };
    let relationships = match object.get("relationships") {
        Some(Value::Object(r)) => r,
        _ => return Err((at("/relationships"), "must name the partner")),
    };
    let linked = |name: &str| -> Result<Option<String>, (String, &'static str)> {
        let Some(link) = relationships.get(name) else {
            return Ok(None);
        };
        match link.get("data") {
            Some(Value::Null) => Ok(None),
            Some(Value::Object(data)) => {
                if data.get("type").and_then(Value::as_str) != Some(name) {
                    return Err((
                        at(&format!("/relationships/{name}/data/type")),
                        "must be the relationship's resource type",
                    ));
                }
                match data.get("id") {
                    Some(Value::String(id)) => Ok(Some(id.clone())),
                    _ => Err((
                        at(&format!("/relationships/{name}/data/id")),
                        "must be a string",
                    )),
                }
            }
            _ => Err((
                at(&format!("/relationships/{name}/data")),
                "must be a resource identifier",
            )),
        }
    };
    let partner_id = linked("partner")?
        .ok_or_else(|| (at("/relationships/partner"), "is required"))?
        .parse::<i64>()
        .unwrap_or(0);
    Ok(pb::ClickEventEntry {
        partner_id,
        event_type,
        request_id,
        user_uuid: linked("user")?.unwrap_or_default(),
        business_uuid: linked("business")?.unwrap_or_default(),
    })
}

/// The REST source of a field of the batch request (`events[3].partner_id` →
/// `/data/3/relationships/partner/data/id`).
pub fn click_batch_source(field: &str) -> Source {
    let Some(rest) = field.strip_prefix("events[") else {
        return Source::Pointer("/data".into());
    };
    let Some((index, name)) = rest.split_once("].") else {
        return Source::Pointer("/data".into());
    };
    let path = match name {
        "partner_id" => "/relationships/partner/data/id",
        "user_uuid" => "/relationships/user/data/id",
        "business_uuid" => "/relationships/business/data/id",
        "event_type" => "/attributes/event_type",
        "request_id" => "/attributes/request_id",
        _ => "",
    };
    Source::Pointer(format!("/data/{index}{path}"))
}

/// The answer: `data[i]` is event i (null when it failed) and `meta.errors` holds one JSON:API
/// error object per failed event and field, pointing into the request (`meta.index` = i).
pub fn click_batch_document(response: &pb::BatchCreatePartnerClickEventsResponse) -> Value {
    let mut data = Vec::with_capacity(response.results.len());
    let mut errors = Vec::new();
    for (i, result) in response.results.iter().enumerate() {
        match &result.result {
            Some(pb::click_event_result::Result::Event(event)) => {
                data.push(click_event_resource(event));
            }
            Some(pb::click_event_result::Result::Error(error)) => {
                data.push(Value::Null);
                errors.extend(event_errors(i, error));
            }
            None => data.push(Value::Null),
        }
    }
    json!({"data": data, "meta": {"errors": errors}})
}

fn event_errors(i: usize, error: &pb::ClickEventError) -> Vec<Value> {
    let status = http_status(Code::from_i32(error.code));
    let object = |detail: String, source: Source| {
        let mut value = ApiError {
            status,
            code: error.reason.clone(),
            detail,
            source,
        }
        .to_json();
        value["meta"] = json!({"index": i});
        value
    };
    if error.field_violations.is_empty() {
        return vec![object(
            error.message.clone(),
            Source::Pointer(format!("/data/{i}")),
        )];
    }
    error
        .field_violations
        .iter()
        .map(|v| {
            object(
                format!("{}: {}", v.field, v.description),
                click_batch_source(&v.field),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_point_into_the_request_document() {
        assert_eq!(
            click_batch_source("events[3].partner_id"),
            Source::Pointer("/data/3/relationships/partner/data/id".into())
        );
        assert_eq!(
            click_batch_source("events[0].event_type"),
            Source::Pointer("/data/0/attributes/event_type".into())
        );
        assert_eq!(
            click_batch_source("events"),
            Source::Pointer("/data".into())
        );
    }

    #[test]
    fn malformed_elements_fail_the_document_but_bad_values_pass_on() {
        let body = Some(json!({"data": [
            {"type": "partner_click_events", "attributes": {"event_type": "nope"},
             "relationships": {"partner": {"data": {"type": "partner", "id": "x"}}}},
        ]}));
        let events = click_batch_request(&body).expect("decodes");
        assert_eq!((events[0].partner_id, events[0].event_type), (0, -1));
        let body = Some(json!({"data": [{"type": "partner"}]}));
        assert!(click_batch_request(&body).is_err());
        assert!(click_batch_request(&Some(json!({"data": {}}))).is_err());
    }
}
