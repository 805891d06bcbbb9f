//! The change events' documents: a feed page and one event's `partner_events` resource (also the
//! `data` of a webhook's body).

use serde::Serialize;
use serde_json::Value;

use super::{IncludedSet, Linkage, PartnerResource, partner_resource, time};
use crate::grpc::pb;
use crate::model::partner::Includes;

#[derive(Serialize)]
struct EventAttributes<'a> {
    business_uuid: Option<&'a str>,
    changed_fields: &'a [String],
    event_type: &'a str,
    occurred_at: Option<String>,
    partner: Option<PartnerResource<'a>>,
    partner_id: i64,
    sequence: i64,
    user_uuid: Option<&'a str>,
}

#[derive(Serialize)]
struct EventRelationships {
    partner: ToOne,
}

#[derive(Serialize)]
struct ToOne {
    data: Linkage<'static>,
}

#[derive(Serialize)]
struct EventResource<'a> {
    attributes: EventAttributes<'a>,
    id: String,
    relationships: EventRelationships,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct EventLinks {
    next: String,
    #[serde(rename = "self")]
    this: String,
}

#[derive(Serialize)]
struct EventMeta {
    next_after: i64,
}

/// A page of the change events' feed.
#[derive(Serialize)]
pub struct EventListDocument<'a> {
    data: Vec<EventResource<'a>>,
    links: EventLinks,
    meta: EventMeta,
}

/// A page of change events; `link` builds the URL of the page after a sequence (`self` is the
/// page after `after`, `next` the one after `next_after`). A `partner.*` event's `partner` is
/// the partner resource as GetPartner answers it without a business in context.
pub fn event_list_document<'a>(
    events: &'a [pb::PartnerEvent],
    after: i64,
    next_after: i64,
    link: &dyn Fn(i64) -> String,
) -> EventListDocument<'a> {
    EventListDocument {
        data: events.iter().map(event_resource).collect(),
        links: EventLinks {
            next: link(next_after),
            this: link(after),
        },
        meta: EventMeta { next_after },
    }
}

/// One change event as a JSON:API `partner_events` resource (the `data` of a webhook's body).
pub fn event_resource_json(event: &pb::PartnerEvent) -> Value {
    serde_json::to_value(event_resource(event)).unwrap_or(Value::Null)
}

/// A change event's resource.
fn event_resource(e: &pb::PartnerEvent) -> EventResource<'_> {
    fn non_empty(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    EventResource {
        attributes: EventAttributes {
            business_uuid: non_empty(&e.business_uuid),
            changed_fields: &e.changed_fields,
            event_type: &e.r#type,
            occurred_at: time(&e.occurred_at),
            partner: e
                .partner
                .as_ref()
                .map(|p| partner_resource(p, Includes::default(), &mut IncludedSet::default())),
            partner_id: e.partner_id,
            sequence: e.sequence,
            user_uuid: non_empty(&e.user_uuid),
        },
        id: e.sequence.to_string(),
        relationships: EventRelationships {
            partner: ToOne {
                data: Linkage {
                    id: e.partner_id.to_string(),
                    kind: "partner",
                },
            },
        },
        kind: "partner_events",
    }
}
