//! Conversions between the domain and protobuf: records to messages (a read's records with their
//! includes attached, in [`partners`]), the domain enums to and from their wire numbers, and JSON ↔
//! `google.protobuf.Struct`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use prost_types::value::Kind;

use super::pb;
use crate::model::business::{Business, UserWithBusiness};
use crate::model::change::Event;
use crate::model::partner::{IntegrationRecord, Loaded, PartnerRecord, PartnerUserRecord};
use crate::model::{EventType, IntegrationStatus, PartnerStatus};

/// chrono → protobuf timestamp.
pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        // A leap second's nanoseconds run past 10^9 in chrono; a protobuf timestamp has none.
        nanos: t.timestamp_subsec_nanos().min(999_999_999) as i32,
    }
}

/// A recorded click event → message, with the uuids of the scope it was recorded in.
pub fn click_event(
    id: i64,
    partner_id: i64,
    event_type: EventType,
    scope: &super::scope::CallScope,
    created_at: DateTime<Utc>,
) -> pb::ClickEvent {
    pb::ClickEvent {
        id,
        partner_id,
        event_type: pb::EventType::from(event_type) as i32,
        user_uuid: scope.user_uuid.map(|u| u.to_string()).unwrap_or_default(),
        business_uuid: scope
            .business_uuid
            .map(|u| u.to_string())
            .unwrap_or_default(),
        created_at: Some(timestamp(created_at)),
    }
}

impl From<PartnerStatus> for pb::PartnerStatus {
    fn from(status: PartnerStatus) -> Self {
        match status {
            PartnerStatus::Available => pb::PartnerStatus::Available,
            PartnerStatus::ComingSoon => pb::PartnerStatus::ComingSoon,
            PartnerStatus::Unavailable => pb::PartnerStatus::Unavailable,
        }
    }
}

impl From<IntegrationStatus> for pb::IntegrationStatus {
    fn from(status: IntegrationStatus) -> Self {
        match status {
            IntegrationStatus::Pending => pb::IntegrationStatus::Pending,
            IntegrationStatus::Active => pb::IntegrationStatus::Active,
            IntegrationStatus::Inactive => pb::IntegrationStatus::Inactive,
            IntegrationStatus::Failed => pb::IntegrationStatus::Failed,
        }
    }
}

impl From<EventType> for pb::EventType {
    fn from(event_type: EventType) -> Self {
        match event_type {
            EventType::Website => pb::EventType::Website,
            EventType::Video => pb::EventType::Video,
        }
    }
}

/// The partner status of a wire number (`None` for unspecified or unknown numbers).
pub fn partner_status(value: i32) -> Option<PartnerStatus> {
    PartnerStatus::ALL
        .iter()
        .copied()
        .find(|s| pb::PartnerStatus::from(*s) as i32 == value)
}

/// The integration status of a wire number (`None` for unspecified or unknown numbers).
pub fn integration_status(value: i32) -> Option<IntegrationStatus> {
    IntegrationStatus::ALL
        .iter()
        .copied()
        .find(|s| pb::IntegrationStatus::from(*s) as i32 == value)
}

/// The event type of a wire number (`None` for unspecified or unknown numbers).
pub fn event_type(value: i32) -> Option<EventType> {
    EventType::ALL
        .iter()
        .copied()
        .find(|e| pb::EventType::from(*e) as i32 == value)
}

/// A partner record → message. `with_business` / `with_user` say which context fields are set.
pub fn partner(r: PartnerRecord, with_business: bool, with_user: bool) -> pb::Partner {
    pb::Partner {
        id: r.id,
        name: r.name,
        description: r.description,
        email: r.email,
        logo_url: r.logo_url,
        website_url: r.website_url,
        video_url: r.video_url,
        categories: r.categories,
        wholesaler_categories: r.wholesaler_categories,
        country_codes: r.country_codes,
        tags: r.tags,
        status: pb::PartnerStatus::from(r.status) as i32,
        active: r.active,
        external_id: r.external_id,
        metadata: Some(json_to_struct(&r.metadata)),
        stats: Some(pb::PartnerStats {
            clicks: r.website_clicks + r.video_clicks,
            website_clicks: r.website_clicks,
            video_clicks: r.video_clicks,
            users_count: r.users_count,
        }),
        preferred: with_business.then_some(r.preferred),
        integration_status: r.integration_status.map_or(
            pb::IntegrationStatus::Unspecified,
            pb::IntegrationStatus::from,
        ) as i32,
        connected: with_user.then_some(r.connected),
        created_at: Some(timestamp(r.created_at)),
        updated_at: Some(timestamp(r.updated_at)),
        deleted_at: r.deleted_at.map(timestamp),
        users: Vec::new(),
        partner_integrations: Vec::new(),
        users_total: None,
        partner_integrations_total: None,
    }
}

/// A read's records → messages, each with its included users and integrations attached and,
/// for each relationship loaded, its total. `with_business` / `with_user` say which context
/// fields are set.
pub fn partners(loaded: Loaded, with_business: bool, with_user: bool) -> Vec<pb::Partner> {
    let includes = loaded.includes;
    let mut partners: Vec<pb::Partner> = loaded
        .records
        .into_iter()
        .map(|r| {
            let mut p = partner(r, with_business, with_user);
            p.users_total = includes.users.then_some(0);
            p.partner_integrations_total = includes.partner_integrations.then_some(0);
            p
        })
        .collect();
    let position = |id: i64, partners: &[pb::Partner]| partners.iter().position(|p| p.id == id);
    for user in loaded.users {
        if let Some(i) = position(user.partner_id, &partners) {
            partners[i].users_total = Some(user.total);
            partners[i].users.push(partner_user(user));
        }
    }
    for integration in loaded.integrations {
        if let Some(i) = position(integration.partner_id, &partners) {
            partners[i].partner_integrations_total = Some(integration.total);
            partners[i]
                .partner_integrations
                .push(self::integration(integration));
        }
    }
    partners
}

/// An included user → message.
pub fn partner_user(u: PartnerUserRecord) -> pb::User {
    pb::User {
        uuid: u.uuid.to_string(),
        business_uuid: u.business_uuid.to_string(),
        email: u.email,
        name: u.name,
        created_at: Some(timestamp(u.created_at)),
        updated_at: Some(timestamp(u.updated_at)),
    }
}

/// An included integration → message.
pub fn integration(i: IntegrationRecord) -> pb::PartnerIntegration {
    pb::PartnerIntegration {
        id: i.id,
        partner_id: i.partner_id,
        business_uuid: i.business_uuid.to_string(),
        status: pb::IntegrationStatus::from(i.status) as i32,
        created_at: Some(timestamp(i.created_at)),
        updated_at: Some(timestamp(i.updated_at)),
    }
}

/// A change event → message; a `partner.*` event carries the partner as a read without business
/// or user context returns it.
pub fn event(e: Event) -> pb::PartnerEvent {
    pb::PartnerEvent {
        sequence: e.sequence,
        r#type: e.kind.as_str().to_owned(),
        partner_id: e.partner_id,
        business_uuid: e.business_uuid.map(|u| u.to_string()).unwrap_or_default(),
        user_uuid: e.user_uuid.map(|u| u.to_string()).unwrap_or_default(),
        occurred_at: Some(timestamp(e.occurred_at)),
        partner: e.partner.map(|r| partner(r, false, false)),
        changed_fields: e.changed_fields,
    }
}

/// A business row → message.
pub fn business(b: Business) -> pb::Business {
    pb::Business {
        uuid: b.uuid.to_string(),
        name: b.name,
        country_code: b.country_code.unwrap_or_default(),
        created_at: Some(timestamp(b.created_at)),
        updated_at: Some(timestamp(b.updated_at)),
    }
}

/// A user row → message.
pub fn user(u: UserWithBusiness) -> pb::User {
    pb::User {
        uuid: u.uuid.to_string(),
        business_uuid: u.business_uuid.to_string(),
        email: u.email,
        name: u.name,
        created_at: Some(timestamp(u.created_at)),
        updated_at: Some(timestamp(u.updated_at)),
    }
}

/// JSON → protobuf value.
pub fn json_to_value(v: &serde_json::Value) -> prost_types::Value {
    use serde_json::Value as J;
    let kind = match v {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        J::Object(_) => Kind::StructValue(json_to_struct(v)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// A JSON object → `Struct` (anything else → empty struct).
pub fn json_to_struct(v: &serde_json::Value) -> prost_types::Struct {
    let fields: BTreeMap<String, prost_types::Value> = match v {
        serde_json::Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), json_to_value(v)))
            .collect(),
        _ => BTreeMap::new(),
    };
    prost_types::Struct { fields }
}

/// Protobuf value → JSON (non-finite numbers become null).
pub fn value_to_json(v: &prost_types::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::BoolValue(b)) => J::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                J::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n).map_or(J::Null, J::Number)
            }
        }
        Some(Kind::StringValue(s)) => J::String(s.clone()),
        Some(Kind::ListValue(list)) => J::Array(list.values.iter().map(value_to_json).collect()),
        Some(Kind::StructValue(s)) => struct_to_json(s),
    }
}

/// `Struct` → JSON object.
pub fn struct_to_json(s: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_numbers_map_to_the_domain_and_back() {
        for s in PartnerStatus::ALL {
            assert_eq!(partner_status(pb::PartnerStatus::from(*s) as i32), Some(*s));
        }
        for s in IntegrationStatus::ALL {
            assert_eq!(
                integration_status(pb::IntegrationStatus::from(*s) as i32),
                Some(*s)
            );
        }
        for e in EventType::ALL {
            assert_eq!(event_type(pb::EventType::from(*e) as i32), Some(*e));
        }
        assert_eq!(partner_status(0), None, "unspecified");
        assert_eq!(event_type(-1), None);
    }

    #[test]
    fn metadata_round_trips_through_struct() {
        let json = serde_json::json!({"tier": "gold", "seats": 5, "ratio": 0.5, "tags": ["a", null], "nested": {"ok": true}});
        assert_eq!(struct_to_json(&json_to_struct(&json)), json);
    }
}
