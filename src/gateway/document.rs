//! JSON:API documents built from gRPC messages: partner resources (with `relationships` only for
//! what was included), de-duplicated `included`, list `meta` and `links`, click events.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use crate::grpc::convert::struct_to_json;
use crate::grpc::pb;

fn time(ts: &Option<prost_types::Timestamp>) -> Value {
    ts.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map_or(Value::Null, |t| {
            Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        })
}

/// REST spelling of a partner status.
pub fn partner_status_name(status: i32) -> Value {
    match pb::PartnerStatus::try_from(status) {
        Ok(pb::PartnerStatus::Available) => json!("available"),
        Ok(pb::PartnerStatus::ComingSoon) => json!("coming_soon"),
        Ok(pb::PartnerStatus::Unavailable) => json!("unavailable"),
        _ => Value::Null,
    }
}

/// REST spelling → enum value; unknown names map to -1 so the gRPC layer rejects them.
pub fn partner_status_value(name: &str) -> i32 {
    match name {
        "available" => pb::PartnerStatus::Available as i32,
        "coming_soon" => pb::PartnerStatus::ComingSoon as i32,
        "unavailable" => pb::PartnerStatus::Unavailable as i32,
        _ => -1,
    }
}

fn integration_status_name(status: i32) -> Value {
    match pb::IntegrationStatus::try_from(status) {
        Ok(pb::IntegrationStatus::Pending) => json!("pending"),
        Ok(pb::IntegrationStatus::Active) => json!("active"),
        Ok(pb::IntegrationStatus::Inactive) => json!("inactive"),
        Ok(pb::IntegrationStatus::Failed) => json!("failed"),
        _ => Value::Null,
    }
}

/// REST spelling of an event type.
pub fn event_type_name(event_type: i32) -> Value {
    match pb::EventType::try_from(event_type) {
        Ok(pb::EventType::Website) => json!("website"),
        Ok(pb::EventType::Video) => json!("video"),
        _ => Value::Null,
    }
}

/// Which relationships the request asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct Included {
    pub users: bool,
    pub partner_integrations: bool,
}

impl Included {
    /// From the raw `include` values.
    pub fn from_values(values: &[String]) -> Self {
        Included {
            users: values.iter().any(|v| v == "users"),
            partner_integrations: values.iter().any(|v| v == "partner_integrations"),
        }
    }

    fn any(&self) -> bool {
        self.users || self.partner_integrations
    }
}

/// Collects included resources once each.
#[derive(Default)]
struct IncludedSet {
    seen: HashSet<(String, String)>,
    items: Vec<Value>,
}

impl IncludedSet {
    fn add(&mut self, kind: &str, id: String, attributes: Value) {
        if self.seen.insert((kind.to_owned(), id.clone())) {
            self.items
                .push(json!({"type": kind, "id": id, "attributes": attributes}));
        }
    }
}

fn partner_resource(p: &pb::Partner, included: Included, set: &mut IncludedSet) -> Value {
    let stats = p.stats.unwrap_or_default();
    let attributes = json!({
        "name": p.name,
        "description": p.description,
        "email": p.email,
        "logo_url": p.logo_url,
        "website_url": p.website_url,
        "video_url": p.video_url,
        "categories": p.categories,
        "wholesaler_categories": p.wholesaler_categories,
        "country_codes": p.country_codes,
        "tags": p.tags,
        "status": partner_status_name(p.status),
        "active": p.active,
        "external_id": p.external_id,
        "metadata": p.metadata.as_ref().map_or_else(|| json!({}), struct_to_json),
        "stats": {
            "clicks": stats.clicks,
            "website_clicks": stats.website_clicks,
            "video_clicks": stats.video_clicks,
            "users_count": stats.users_count,
        },
        "preferred": p.preferred,
        "integration_status": integration_status_name(p.integration_status),
        "connected": p.connected,
        "created_at": time(&p.created_at),
        "updated_at": time(&p.updated_at),
    });
    let mut resource = json!({"id": p.id.to_string(), "type": "partner", "attributes": attributes});
    if included.any() {
        let mut relationships = Map::new();
        if included.users {
            let data: Vec<Value> = p
                .users
                .iter()
                .map(|u| {
                    set.add(
                        "user",
                        u.uuid.clone(),
                        json!({"name": u.name, "email": u.email}),
                    );
                    json!({"type": "user", "id": u.uuid})
                })
                .collect();
            relationships.insert("users".into(), json!({"data": data}));
        }
        if included.partner_integrations {
            let data: Vec<Value> = p
                .partner_integrations
                .iter()
                .map(|i| {
                    set.add(
                        "partner_integration",
                        i.id.to_string(),
                        json!({
                            "status": integration_status_name(i.status),
                            "business_uuid": i.business_uuid,
                            "created_at": time(&i.created_at),
                            "updated_at": time(&i.updated_at),
                        }),
                    );
                    json!({"type": "partner_integration", "id": i.id.to_string()})
                })
                .collect();
            relationships.insert("partner_integrations".into(), json!({"data": data}));
        }
        resource["relationships"] = Value::Object(relationships);
    }
    resource
}

/// `{"data": partner, "included": [...]}`.
pub fn partner_document(p: &pb::Partner, included: Included) -> Value {
    let mut set = IncludedSet::default();
    let data = partner_resource(p, included, &mut set);
    let mut doc = json!({"data": data});
    if included.any() {
        doc["included"] = Value::Array(set.items);
    }
    doc
}

/// A page of partners with meta and links. `link` builds the URL of a page number.
pub fn list_document(
    partners: &[pb::Partner],
    meta: &pb::PageMeta,
    included: Included,
    link: &dyn Fn(i32) -> String,
) -> Value {
    let mut set = IncludedSet::default();
    let data: Vec<Value> = partners
        .iter()
        .map(|p| partner_resource(p, included, &mut set))
        .collect();
    let last = meta.total_pages.max(1);
    let mut doc = json!({
        "data": data,
        "meta": {
            "page": meta.page,
            "per_page": meta.per_page,
            "total": meta.total,
            "total_pages": meta.total_pages,
        },
        "links": {
            "self": link(meta.page),
            "first": link(1),
            "prev": (meta.page > 1).then(|| link((meta.page - 1).min(last))),
            "next": (meta.page < last).then(|| link(meta.page + 1)),
            "last": link(last),
        },
    });
    if included.any() {
        doc["included"] = Value::Array(set.items);
    }
    doc
}

/// A click event resource document.
pub fn click_event_document(e: &pb::ClickEvent) -> Value {
    let user = if e.user_uuid.is_empty() {
        Value::Null
    } else {
        json!({"type": "user", "id": e.user_uuid})
    };
    json!({
        "data": {
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
        }
    })
}
