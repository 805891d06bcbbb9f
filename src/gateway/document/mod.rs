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
pub mod export;
mod pages;
mod users;
pub use clicks::{
    click_batch_document, click_batch_request, click_batch_source, click_event_document,
    click_event_resource,
};
pub use events::{EventListDocument, event_list_document, event_resource_json};
pub use pages::PageRef;
use pages::{Links, Meta, page_links, page_meta};
pub use users::{UserListDocument, user_list_document};

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

/// A to-many relationship: the first related resources (at most
/// `crate::model::partner::MAX_INCLUDED_PER_PARTNER`), a link to all of them where one exists,
/// and their total.
#[derive(Serialize)]
struct ToMany<'a> {
    data: Vec<Linkage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    links: Option<RelatedLink>,
    meta: RelationshipMeta,
}

/// `links.related` of a relationship: the paged list of all its resources.
#[derive(Serialize)]
struct RelatedLink {
    related: String,
}

/// `meta` of a relationship: how many resources it holds in all.
#[derive(Serialize)]
struct RelationshipMeta {
    total: i64,
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
            links: Some(RelatedLink {
                related: format!("/api/v1/partners/{}/users", p.id),
            }),
            meta: RelationshipMeta {
                total: p.users_total.unwrap_or(p.users.len() as i64),
            },
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
            links: None,
            meta: RelationshipMeta {
                total: p
                    .partner_integrations_total
                    .unwrap_or(p.partner_integrations.len() as i64),
            },
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

/// `{"data": [partners]}` without included resources (the batch writes answer this).
#[derive(Serialize)]
pub struct PartnersDocument<'a> {
    data: Vec<PartnerResource<'a>>,
}

/// The document of partners written by a batch, in order.
pub fn partners_document(partners: &[pb::Partner]) -> PartnersDocument<'_> {
    let mut set = IncludedSet::default();
    PartnersDocument {
        data: partners
            .iter()
            .map(|p| partner_resource(p, Includes::default(), &mut set))
            .collect(),
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
pub struct ListDocument<'a> {
    data: Vec<PartnerResource<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    included: Option<Vec<IncludedResource<'a>>>,
    links: Links,
    meta: Meta,
}

/// A page a link leads to.
/// A page of partners with meta and links. `link` builds the URL of a page.
pub fn list_document<'a>(
    partners: &'a [pb::Partner],
    meta: &pb::PageMeta,
    included: Includes,
    link: &dyn Fn(PageRef<'_>) -> String,
) -> ListDocument<'a> {
    let mut set = IncludedSet::default();
    let data = partners
        .iter()
        .map(|p| partner_resource(p, included, &mut set))
        .collect();
    ListDocument {
        data,
        included: included.any().then_some(set.items),
        links: page_links(meta, link),
        meta: page_meta(meta, true),
    }
}

#[cfg(test)]
mod tests;
