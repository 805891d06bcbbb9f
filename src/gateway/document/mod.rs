//! JSON:API documents built from gRPC messages: partner resources (with `relationships` only for
//! what was included), de-duplicated `included`, list `meta` and `links`, click events, and the
//! change events' feed pages.
//!
//! Partner documents are serialised straight from the messages (typed views that borrow their
//! strings) rather than through a `serde_json::Value` tree: building and dropping that tree was a
//! quarter of the server's CPU on REST lists (BENCHMARKS.md). Fields are declared in
//! alphabetical order, so the output is the one a `Value` object (sorted keys) gave.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

mod clicks;
mod events;
pub use clicks::{
    click_batch_document, click_batch_request, click_batch_source, click_event_document,
    click_event_resource,
};
pub use events::{EventListDocument, event_list_document, event_resource_json};

use crate::grpc::convert::{self, struct_to_json};
use crate::grpc::pb;
use crate::model::partner::Includes;
use crate::model::{EventType, IntegrationStatus, PartnerStatus};

pub(crate) fn time(ts: &Option<prost_types::Timestamp>) -> Option<String> {
    ts.as_ref()
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// REST spelling of a partner status (`None` for an unknown value).
pub fn partner_status_name(status: i32) -> Option<&'static str> {
    convert::partner_status(status).map(PartnerStatus::as_str)
}

/// REST spelling → enum value; unknown names map to -1 so the gRPC layer rejects them.
pub fn partner_status_value(name: &str) -> i32 {
    PartnerStatus::parse(name).map_or(-1, |s| pb::PartnerStatus::from(s) as i32)
}

/// REST spelling of an integration status (`None` for an unknown value).
pub fn integration_status_name(status: i32) -> Option<&'static str> {
    convert::integration_status(status).map(IntegrationStatus::as_str)
}

/// REST spelling of an event type (`None` for an unknown value).
pub fn event_type_name(event_type: i32) -> Option<&'static str> {
    convert::event_type(event_type).map(EventType::as_str)
}

/// REST spelling → event type value; unknown names map to -1 so the gRPC layer rejects them.
pub fn event_type_value(name: &str) -> i32 {
    EventType::parse(name).map_or(-1, |e| pb::EventType::from(e) as i32)
}

/// A resource linkage: `{"id": …, "type": …}`.
#[derive(Serialize)]
pub(super) struct Linkage<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'a str,
}

#[derive(Serialize)]
struct ToMany<'a> {
    data: Vec<Linkage<'a>>,
}

#[derive(Serialize)]
struct Relationships<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    partner_integrations: Option<ToMany<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<ToMany<'a>>,
}

// The OpenAPI schema `PartnerStats` is derived from this type.
/// A partner's counters.
#[derive(Serialize, ToSchema)]
#[schema(as = PartnerStats)]
pub struct Stats {
    #[schema(minimum = 0)]
    clicks: i64,
    #[schema(minimum = 0)]
    users_count: i64,
    #[schema(minimum = 0)]
    video_clicks: i64,
    #[schema(minimum = 0)]
    website_clicks: i64,
}

#[derive(Serialize)]
struct PartnerAttributes<'a> {
    active: bool,
    categories: &'a [String],
    connected: Option<bool>,
    country_codes: &'a [String],
    created_at: Option<String>,
    /// Only on soft-deleted partners (`show_deleted` lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<String>,
    description: &'a str,
    email: &'a str,
    external_id: Option<&'a str>,
    integration_status: Option<&'static str>,
    logo_url: &'a str,
    metadata: Value,
    name: &'a str,
    preferred: Option<bool>,
    stats: Stats,
    status: Option<&'static str>,
    tags: &'a [String],
    updated_at: Option<String>,
    video_url: &'a str,
    website_url: &'a str,
    wholesaler_categories: &'a [String],
}

#[derive(Serialize)]
pub(super) struct PartnerResource<'a> {
    attributes: PartnerAttributes<'a>,
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    relationships: Option<Relationships<'a>>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct UserAttributes<'a> {
    email: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct IntegrationAttributes<'a> {
    business_uuid: &'a str,
    created_at: Option<String>,
    status: Option<&'static str>,
    updated_at: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum IncludedAttributes<'a> {
    User(UserAttributes<'a>),
    Integration(IntegrationAttributes<'a>),
}

#[derive(Serialize)]
struct IncludedResource<'a> {
    attributes: IncludedAttributes<'a>,
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// Collects included resources once each.
#[derive(Default)]
pub(super) struct IncludedSet<'a> {
    seen: HashSet<(&'static str, String)>,
    items: Vec<IncludedResource<'a>>,
}

impl<'a> IncludedSet<'a> {
    fn add(
        &mut self,
        kind: &'static str,
        id: &str,
        attributes: impl FnOnce() -> IncludedAttributes<'a>,
    ) {
        if self.seen.insert((kind, id.to_owned())) {
            self.items.push(IncludedResource {
                attributes: attributes(),
                id: id.to_owned(),
                kind,
            });
        }
    }
}

pub(super) fn partner_resource<'a>(
    p: &'a pb::Partner,
    included: Includes,
    set: &mut IncludedSet<'a>,
) -> PartnerResource<'a> {
    let stats = p.stats.unwrap_or_default();
    let attributes = PartnerAttributes {
        active: p.active,
        categories: &p.categories,
        connected: p.connected,
        country_codes: &p.country_codes,
        created_at: time(&p.created_at),
        deleted_at: time(&p.deleted_at),
        description: &p.description,
        email: &p.email,
        external_id: p.external_id.as_deref(),
        integration_status: integration_status_name(p.integration_status),
        logo_url: &p.logo_url,
        metadata: p
            .metadata
            .as_ref()
            .map_or_else(|| json!({}), struct_to_json),
        name: &p.name,
        preferred: p.preferred,
        stats: Stats {
            clicks: stats.clicks,
            users_count: stats.users_count,
            video_clicks: stats.video_clicks,
            website_clicks: stats.website_clicks,
        },
        status: partner_status_name(p.status),
        tags: &p.tags,
        updated_at: time(&p.updated_at),
        video_url: &p.video_url,
        website_url: &p.website_url,
        wholesaler_categories: &p.wholesaler_categories,
    };
    let relationships = included.any().then(|| Relationships {
        users: included.users.then(|| ToMany {
            data: p
                .users
                .iter()
                .map(|u| {
                    set.add("user", &u.uuid, || {
                        IncludedAttributes::User(UserAttributes {
                            email: &u.email,
                            name: &u.name,
                        })
                    });
                    Linkage {
                        id: u.uuid.clone(),
                        kind: "user",
                    }
                })
                .collect(),
        }),
        partner_integrations: included.partner_integrations.then(|| ToMany {
            data: p
                .partner_integrations
                .iter()
                .map(|i| {
                    let id = i.id.to_string();
                    set.add("partner_integration", &id, || {
                        IncludedAttributes::Integration(IntegrationAttributes {
                            business_uuid: &i.business_uuid,
                            created_at: time(&i.created_at),
                            status: integration_status_name(i.status),
                            updated_at: time(&i.updated_at),
                        })
                    });
                    Linkage {
                        id,
                        kind: "partner_integration",
                    }
                })
                .collect(),
        }),
    });
    PartnerResource {
        attributes,
        id: p.id.to_string(),
        relationships,
        kind: "partner",
    }
}

/// `{"data": partner, "included": [...]}` (`included` only when asked for).
#[derive(Serialize)]
pub struct PartnerDocument<'a> {
    data: PartnerResource<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    included: Option<Vec<IncludedResource<'a>>>,
}

/// A single partner's document.
pub fn partner_document(p: &pb::Partner, included: Includes) -> PartnerDocument<'_> {
    let mut set = IncludedSet::default();
    let data = partner_resource(p, included, &mut set);
    PartnerDocument {
        data,
        included: included.any().then_some(set.items),
    }
}

/// Whether an upsert created its partner.
#[derive(Serialize)]
struct UpsertMeta {
    created: bool,
}

/// An upserted partner: `{"data": partner, "meta": {"created": …}}`.
#[derive(Serialize)]
pub struct UpsertDocument<'a> {
    data: PartnerResource<'a>,
    meta: UpsertMeta,
}

/// The document of an UpsertPartner answer.
pub fn upsert_document(p: &pb::Partner, created: bool) -> UpsertDocument<'_> {
    let mut set = IncludedSet::default();
    UpsertDocument {
        data: partner_resource(p, Includes::default(), &mut set),
        meta: UpsertMeta { created },
    }
}

/// The keys of a batch read that found no live partner.
#[derive(Serialize)]
struct BatchMeta<'a> {
    missing_external_ids: &'a [String],
    missing_ids: Vec<String>,
}

/// The partners of a batch read, with the keys it missed in `meta`.
#[derive(Serialize)]
pub struct BatchDocument<'a> {
    data: Vec<PartnerResource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    included: Option<Vec<IncludedResource<'a>>>,
    meta: BatchMeta<'a>,
}

/// A BatchGetPartners answer: the partners in request order, `meta.missing_ids` (as strings, like
/// resource ids) and `meta.missing_external_ids`.
pub fn batch_document(
    batch: &pb::BatchGetPartnersResponse,
    included: Includes,
) -> BatchDocument<'_> {
    let mut set = IncludedSet::default();
    let data = batch
        .partners
        .iter()
        .map(|p| partner_resource(p, included, &mut set))
        .collect();
    BatchDocument {
        data,
        included: included.any().then_some(set.items),
        meta: BatchMeta {
            missing_external_ids: &batch.missing_external_ids,
            missing_ids: batch.missing_ids.iter().map(i64::to_string).collect(),
        },
    }
}

#[derive(Serialize)]
struct Links {
    first: String,
    last: String,
    next: Option<String>,
    prev: Option<String>,
    #[serde(rename = "self")]
    this: String,
}

#[derive(Serialize)]
struct Meta {
    page: i32,
    per_page: i32,
    total: i64,
    total_pages: i32,
}

/// A page of partners with `meta` and `links`.
#[derive(Serialize)]
pub struct ListDocument<'a> {
    data: Vec<PartnerResource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    included: Option<Vec<IncludedResource<'a>>>,
    links: Links,
    meta: Meta,
}

/// A page of partners with meta and links. `link` builds the URL of a page number.
pub fn list_document<'a>(
    partners: &'a [pb::Partner],
    meta: &pb::PageMeta,
    included: Includes,
    link: &dyn Fn(i32) -> String,
) -> ListDocument<'a> {
    let mut set = IncludedSet::default();
    let data = partners
        .iter()
        .map(|p| partner_resource(p, included, &mut set))
        .collect();
    let last = meta.total_pages.max(1);
    ListDocument {
        data,
        included: included.any().then_some(set.items),
        links: Links {
            first: link(1),
            last: link(last),
            next: (meta.page < last).then(|| link(meta.page + 1)),
            prev: (meta.page > 1).then(|| link((meta.page - 1).min(last))),
            this: link(meta.page),
        },
        meta: Meta {
            page: meta.page,
            per_page: meta.per_page,
            total: meta.total,
            total_pages: meta.total_pages,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(id: i64, user: &str, integration: i64) -> pb::Partner {
        let ts = Some(prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5_000,
        });
        pb::Partner {
            id,
            name: format!("P\"{id}\u{e9}"),
            categories: vec!["pos".into()],
            status: pb::PartnerStatus::ComingSoon as i32,
            external_id: Some("ext".into()),
            preferred: Some(true),
            created_at: ts,
            users: vec![pb::User {
                uuid: user.into(),
                email: "a@b.example".into(),
                name: "A".into(),
                ..Default::default()
            }],
            partner_integrations: vec![pb::PartnerIntegration {
                id: integration,
                partner_id: id,
                status: pb::IntegrationStatus::Active as i32,
                created_at: ts,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// The typed documents give what a `Value` object gives: the same members, keys sorted.
    #[test]
    fn documents_serialise_with_sorted_keys_and_included_once() {
        let partners = [partner(1, "u1", 10), partner(2, "u1", 11)];
        let meta = pb::PageMeta {
            page: 2,
            per_page: 2,
            total: 5,
            total_pages: 3,
        };
        let all = Includes {
            users: true,
            partner_integrations: true,
        };
        let link = |page: i32| format!("/p?page={page}");
        let text = serde_json::to_string(&list_document(&partners, &meta, all, &link)).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value.to_string(), text, "keys sorted at every level");
        assert_eq!(value["included"].as_array().unwrap().len(), 3, "u1 once");
        assert_eq!(value["links"]["prev"], "/p?page=1");
        assert_eq!(value["links"]["next"], "/p?page=3");
        assert_eq!(value["data"][0]["attributes"]["status"], "coming_soon");
        assert_eq!(value["data"][0]["attributes"]["connected"], Value::Null);
        assert_eq!(
            value["data"][1]["relationships"]["partner_integrations"]["data"][0],
            json!({"id": "11", "type": "partner_integration"})
        );
        assert_eq!(
            value["data"][0]["attributes"]["created_at"],
            "2023-11-14T22:13:20.000005Z"
        );

        let single = serde_json::to_value(partner_document(&partners[0], Includes::default()));
        let single = single.unwrap();
        assert!(single.get("included").is_none());
        assert!(single["data"].get("relationships").is_none());
    }
}
