//! PartnerAdminService's requests: CreatePartner → [`PartnerCreate`], UpdatePartner →
//! [`PartnerUpdate`], UpsertPartner → [`PartnerUpsert`], and the other upserts and relation
//! settings ([`BusinessUpsert`], [`UserUpsert`], [`IntegrationSet`], [`PreferenceSet`]).

use uuid::Uuid;

use super::{Checker, MAX_METADATA_BYTES, UPDATABLE_FIELDS};
use crate::error::{Error, Result};
use crate::grpc::{convert, pb};
use crate::model::partner::{NewPartner, PartnerChanges};
use crate::model::{IntegrationStatus, PartnerStatus};

/// The partner status a request names, or a violation (unspecified and unknown values alike).
fn status(c: &mut Checker, value: i32) -> Option<PartnerStatus> {
    let status = convert::partner_status(value);
    if status.is_none() {
        c.add(
            "partner.status",
            "must be available, coming_soon or unavailable",
        );
    }
    status
}

fn external_id(c: &mut Checker, value: &Option<String>) -> Option<String> {
    match value.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) if v.chars().count() > 200 || v.chars().any(char::is_control) => {
            c.add(
                "partner.external_id",
                "must have 1 to 200 printable characters",
            );
            None
        }
        Some(v) => Some(v.to_owned()),
    }
}

/// Largest magnitude of a number in `metadata`: Postgres prints `jsonb` numbers in full decimal,
/// and numbers near `f64::MAX` would not read back.
pub const MAX_METADATA_NUMBER: f64 = 1e300;

/// Whether a JSON value holds something `jsonb` cannot store and give back: a NUL character, or a
/// number of magnitude `MAX_METADATA_NUMBER` or more.
fn unstorable(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Number(n) => n.as_f64().is_none_or(|f| f.abs() >= MAX_METADATA_NUMBER),
        serde_json::Value::Array(items) => items.iter().any(unstorable),
        serde_json::Value::Object(map) => {
            map.iter().any(|(k, v)| k.contains('\0') || unstorable(v))
        }
        _ => false,
    }
}

fn metadata(c: &mut Checker, value: &Option<prost_types::Struct>) -> serde_json::Value {
    let json = value
        .as_ref()
        .map(convert::struct_to_json)
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    if unstorable(&json) {
        c.add(
            "partner.metadata",
            "must not contain NUL characters or numbers of magnitude 1e300 or more",
        );
    } else if json.to_string().len() > MAX_METADATA_BYTES {
        c.add(
            "partner.metadata",
            format!("must serialize to at most {MAX_METADATA_BYTES} bytes"),
        );
    }
    json
}

/// The fields of `p` as a new partner; `name` must have at least `name_min` characters.
fn new_partner(c: &mut Checker, p: &pb::Partner, name_min: usize) -> NewPartner {
    let status = if p.status == 0 {
        PartnerStatus::Available
    } else {
        status(c, p.status).unwrap_or(PartnerStatus::Available)
    };
    NewPartner {
        name: c.text("partner.name", &p.name, name_min, 200),
        description: c.text("partner.description", &p.description, 0, 5000),
        email: c.email("partner.email", &p.email, false),
        logo_url: c.url("partner.logo_url", &p.logo_url),
        website_url: c.url("partner.website_url", &p.website_url),
        video_url: c.url("partner.video_url", &p.video_url),
        categories: c.list("partner.categories", &p.categories),
        wholesaler_categories: c.list("partner.wholesaler_categories", &p.wholesaler_categories),
        country_codes: c.country_codes("partner.country_codes", &p.country_codes),
        tags: c.list("partner.tags", &p.tags),
        status,
        active: p.active,
        external_id: external_id(c, &p.external_id),
        metadata: metadata(c, &p.metadata),
    }
}

/// A validated CreatePartner: the partner and the caller's idempotency key.
#[derive(Debug, Clone)]
pub struct PartnerCreate {
    /// The partner to create.
    pub partner: NewPartner,
    /// The caller's request id (AIP-155), if any.
    pub request_id: Option<String>,
}

impl TryFrom<&pb::CreatePartnerRequest> for PartnerCreate {
    type Error = Error;

    fn try_from(req: &pb::CreatePartnerRequest) -> Result<Self> {
        let mut c = Checker::default();
        let partner = match &req.partner {
            Some(p) => new_partner(&mut c, p, 1),
            None => {
                c.add("partner", "is required");
                NewPartner::empty()
            }
        };
        let request_id = c.request_id(&req.request_id);
        c.finish(PartnerCreate {
            partner,
            request_id,
        })
    }
}

/// A validated UpsertPartner: the partner as it would be created, and the changes made to the
/// existing one with its external id.
#[derive(Debug, Clone)]
pub struct PartnerUpsert {
    /// The key.
    pub external_id: String,
    /// The partner to create when none has the external id (its `name` may be empty when the
    /// mask leaves it out: then the call only updates).
    pub partner: NewPartner,
    /// The fields the mask names (all but `external_id` for an empty mask), for an update.
    pub changes: PartnerChanges,
}

impl TryFrom<&pb::UpsertPartnerRequest> for PartnerUpsert {
    type Error = Error;

    fn try_from(req: &pb::UpsertPartnerRequest) -> Result<Self> {
        let mut c = Checker::default();
        let Some(p) = &req.partner else {
            c.add("partner", "is required");
            return c.finish(PartnerUpsert {
                external_id: String::new(),
                partner: NewPartner::empty(),
                changes: PartnerChanges::default(),
            });
        };
        let mut paths: Vec<&str> = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if paths.is_empty() {
            paths = UPDATABLE_FIELDS
                .iter()
                .copied()
                .filter(|f| *f != "external_id")
                .collect();
        }
        // A name is needed to create, unless the mask leaves it out (an update of other fields
        // that creates only with a name).
        let name_min = if paths.contains(&"name") || !p.name.trim().is_empty() {
            1
        } else {
            0
        };
        let partner = new_partner(&mut c, p, name_min);
        let external_id = match &partner.external_id {
            Some(e) => e.clone(),
            None => {
                if p.external_id.as_deref().is_none_or(|e| e.trim().is_empty()) {
                    c.add("partner.external_id", "is required: it names the partner");
                }
                String::new()
            }
        };
        let mut ch = PartnerChanges::default();
        for path in paths {
            let new = &partner;
            match path {
                "name" => ch.name = Some(new.name.clone()),
                "description" => ch.description = Some(new.description.clone()),
                "email" => ch.email = Some(new.email.clone()),
                "logo_url" => ch.logo_url = Some(new.logo_url.clone()),
                "website_url" => ch.website_url = Some(new.website_url.clone()),
                "video_url" => ch.video_url = Some(new.video_url.clone()),
                "categories" => ch.categories = Some(new.categories.clone()),
                "wholesaler_categories" => {
                    ch.wholesaler_categories = Some(new.wholesaler_categories.clone())
                }
                "country_codes" => ch.country_codes = Some(new.country_codes.clone()),
                "tags" => ch.tags = Some(new.tags.clone()),
                "status" => ch.status = Some(new.status),
                "active" => ch.active = Some(new.active),
                "metadata" => ch.metadata = Some(new.metadata.clone()),
                "external_id" => c.add(
                    "update_mask",
                    "external_id names the partner of an upsert and cannot be changed by it",
                ),
                other => c.add(
                    "update_mask",
                    format!(
                        "unknown field {other:?}; updatable: {}",
                        UPDATABLE_FIELDS.join(", ")
                    ),
                ),
            }
        }
        c.finish(PartnerUpsert {
            external_id,
            partner,
            changes: ch,
        })
    }
}

/// A validated UpdatePartner: the partner and the fields its mask names.
#[derive(Debug, Clone)]
pub struct PartnerUpdate {
    /// The partner.
    pub id: i64,
    /// The new values of the named fields.
    pub changes: PartnerChanges,
}

impl TryFrom<&pb::UpdatePartnerRequest> for PartnerUpdate {
    type Error = Error;

    fn try_from(req: &pb::UpdatePartnerRequest) -> Result<Self> {
        let mut c = Checker::default();
        let Some(p) = &req.partner else {
            c.add("partner", "is required");
            return c.finish(PartnerUpdate {
                id: 0,
                changes: PartnerChanges::default(),
            });
        };
        let id = c.positive_id("partner.id", p.id);
        let paths = req
            .update_mask
            .as_ref()
            .map(|m| m.paths.clone())
            .unwrap_or_default();
        if paths.is_empty() {
            c.add("update_mask", "must name at least one field");
        }
        let mut ch = PartnerChanges::default();
        for path in &paths {
            match path.as_str() {
                "name" => ch.name = Some(c.text("partner.name", &p.name, 1, 200)),
                "description" => {
                    ch.description = Some(c.text("partner.description", &p.description, 0, 5000))
                }
                "email" => ch.email = Some(c.email("partner.email", &p.email, false)),
                "logo_url" => ch.logo_url = Some(c.url("partner.logo_url", &p.logo_url)),
                "website_url" => {
                    ch.website_url = Some(c.url("partner.website_url", &p.website_url))
                }
                "video_url" => ch.video_url = Some(c.url("partner.video_url", &p.video_url)),
                "categories" => ch.categories = Some(c.list("partner.categories", &p.categories)),
                "wholesaler_categories" => {
                    ch.wholesaler_categories =
                        Some(c.list("partner.wholesaler_categories", &p.wholesaler_categories))
                }
                "country_codes" => {
                    ch.country_codes =
                        Some(c.country_codes("partner.country_codes", &p.country_codes))
                }
                "tags" => ch.tags = Some(c.list("partner.tags", &p.tags)),
                "status" => ch.status = status(&mut c, p.status),
                "active" => ch.active = Some(p.active),
                "external_id" => ch.external_id = Some(external_id(&mut c, &p.external_id)),
                "metadata" => ch.metadata = Some(metadata(&mut c, &p.metadata)),
                other => c.add(
                    "update_mask",
                    format!(
                        "unknown field {other:?}; updatable: {}",
                        UPDATABLE_FIELDS.join(", ")
                    ),
                ),
            }
        }
        c.finish(PartnerUpdate { id, changes: ch })
    }
}

/// A validated UpsertBusiness.
#[derive(Debug, Clone)]
pub struct BusinessUpsert {
    /// The business.
    pub uuid: Uuid,
    /// Its name.
    pub name: String,
    /// Its country (upper case), if given.
    pub country_code: Option<String>,
}

impl TryFrom<&pb::UpsertBusinessRequest> for BusinessUpsert {
    type Error = Error;

    fn try_from(req: &pb::UpsertBusinessRequest) -> Result<Self> {
        let mut c = Checker::default();
        let uuid = c.required_uuid("uuid", &req.uuid);
        let name = c.text("name", &req.name, 1, 200);
        let country_code = c.country_code("country_code", &req.country_code);
        c.finish(BusinessUpsert {
            uuid,
            name,
            country_code,
        })
    }
}

/// A validated UpsertUser.
#[derive(Debug, Clone)]
pub struct UserUpsert {
    /// The user.
    pub uuid: Uuid,
    /// The user's business (must exist).
    pub business_uuid: Uuid,
    /// E-mail address.
    pub email: String,
    /// Name.
    pub name: String,
}

impl TryFrom<&pb::UpsertUserRequest> for UserUpsert {
    type Error = Error;

    fn try_from(req: &pb::UpsertUserRequest) -> Result<Self> {
        let mut c = Checker::default();
        let uuid = c.required_uuid("uuid", &req.uuid);
        let business_uuid = c.required_uuid("business_uuid", &req.business_uuid);
        let email = c.email("email", &req.email, true);
        let name = c.text("name", &req.name, 1, 200);
        c.finish(UserUpsert {
            uuid,
            business_uuid,
            email,
            name,
        })
    }
}

/// A validated SetPartnerIntegration.
#[derive(Debug, Clone, Copy)]
pub struct IntegrationSet {
    /// The partner.
    pub partner_id: i64,
    /// The business (must exist).
    pub business_uuid: Uuid,
    /// The integration's new status.
    pub status: IntegrationStatus,
}

impl TryFrom<&pb::SetPartnerIntegrationRequest> for IntegrationSet {
    type Error = Error;

    fn try_from(req: &pb::SetPartnerIntegrationRequest) -> Result<Self> {
        let mut c = Checker::default();
        let partner_id = c.positive_id("partner_id", req.partner_id);
        let business_uuid = c.required_uuid("business_uuid", &req.business_uuid);
        let status = convert::integration_status(req.status).unwrap_or_else(|| {
            c.add("status", "must be pending, active, inactive or failed");
            IntegrationStatus::Pending
        });
        c.finish(IntegrationSet {
            partner_id,
            business_uuid,
            status,
        })
    }
}

/// A validated SetPartnerPreference.
#[derive(Debug, Clone, Copy)]
pub struct PreferenceSet {
    /// The partner.
    pub partner_id: i64,
    /// The business (must exist).
    pub business_uuid: Uuid,
    /// Preferred (`true`) or not.
    pub preferred: bool,
}

impl TryFrom<&pb::SetPartnerPreferenceRequest> for PreferenceSet {
    type Error = Error;

    fn try_from(req: &pb::SetPartnerPreferenceRequest) -> Result<Self> {
        let mut c = Checker::default();
        let partner_id = c.positive_id("partner_id", req.partner_id);
        let business_uuid = c.required_uuid("business_uuid", &req.business_uuid);
        c.finish(PreferenceSet {
            partner_id,
            business_uuid,
            preferred: req.preferred,
        })
    }
}

impl NewPartner {
    fn empty() -> Self {
        NewPartner {
            name: String::new(),
            description: String::new(),
            email: String::new(),
            logo_url: String::new(),
            website_url: String::new(),
            video_url: String::new(),
            categories: Vec::new(),
            wholesaler_categories: Vec::new(),
            country_codes: Vec::new(),
            tags: Vec::new(),
            status: PartnerStatus::Available,
            active: false,
            external_id: None,
            metadata: serde_json::Value::Null,
        }
    }
}
