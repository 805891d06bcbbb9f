//! PartnerService's point requests: GetPartner → [`PartnerRead`], BatchGetPartners →
//! [`BatchRead`], ListPartnerUsers → [`PartnerUsersRead`], CreatePartnerClickEvent →
//! [`ClickRequest`], and the partner id of ConnectUser / DisconnectUser / DeletePartner /
//! RestorePartner.

use uuid::Uuid;

use super::Checker;
use crate::error::{Error, Result};
use crate::grpc::{convert, pb};
use crate::model::EventType;
use crate::model::partner::{Includes, PartnerKey};

/// Most keys (ids and external ids together) of one BatchGetPartners.
pub const MAX_BATCH_KEYS: usize = 100;

/// A validated GetPartner.
#[derive(Debug, Clone, Copy)]
pub struct PartnerRead {
    /// The partner.
    pub id: i64,
    /// The business named in the request, if any.
    pub business_uuid: Option<Uuid>,
    /// Relationships to load.
    pub includes: Includes,
}

impl TryFrom<&pb::GetPartnerRequest> for PartnerRead {
    type Error = Error;

    fn try_from(req: &pb::GetPartnerRequest) -> Result<Self> {
        let mut c = Checker::default();
        let id = c.positive_id("id", req.id);
        let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
        let includes = c.includes(&req.include);
        c.finish(PartnerRead {
            id,
            business_uuid,
            includes,
        })
    }
}

/// A validated ListPartnerUsers.
#[derive(Debug, Clone, Copy)]
pub struct PartnerUsersRead {
    /// The partner.
    pub id: i64,
    /// The business named in the request, if any.
    pub business_uuid: Option<Uuid>,
    /// Page number (1-based).
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

impl TryFrom<&pb::ListPartnerUsersRequest> for PartnerUsersRead {
    type Error = Error;

    fn try_from(req: &pb::ListPartnerUsersRequest) -> Result<Self> {
        let mut c = Checker::default();
        let id = c.positive_id("id", req.id);
        let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
        let (page, per_page) = (c.page(req.page), c.per_page(req.per_page));
        c.finish(PartnerUsersRead {
            id,
            business_uuid,
            page,
            per_page,
        })
    }
}

/// A validated BatchGetPartners: its keys in request order (ids, then external ids).
#[derive(Debug, Clone)]
pub struct BatchRead {
    /// The partners asked for.
    pub keys: Vec<PartnerKey>,
    /// The business named in the request, if any.
    pub business_uuid: Option<Uuid>,
    /// Relationships to load.
    pub includes: Includes,
}

impl TryFrom<&pb::BatchGetPartnersRequest> for BatchRead {
    type Error = Error;

    fn try_from(req: &pb::BatchGetPartnersRequest) -> Result<Self> {
        let mut c = Checker::default();
        let count = req.ids.len() + req.external_ids.len();
        if count == 0 {
            c.add("ids", "name at least one partner in ids or external_ids");
        } else if count > MAX_BATCH_KEYS {
            c.add(
                if req.ids.len() > req.external_ids.len() {
                    "ids"
                } else {
                    "external_ids"
                },
                format!("ids and external_ids must have at most {MAX_BATCH_KEYS} values together"),
            );
        }
        let mut keys = Vec::with_capacity(count.min(MAX_BATCH_KEYS));
        for (i, id) in req.ids.iter().enumerate() {
            keys.push(PartnerKey::Id(c.positive_id(&format!("ids[{i}]"), *id)));
        }
        for (i, external_id) in req.external_ids.iter().enumerate() {
            let valid = external_id_value(&mut c, &format!("external_ids[{i}]"), external_id);
            keys.push(PartnerKey::External(valid.unwrap_or_default()));
        }
        let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
        let includes = c.includes(&req.include);
        c.finish(BatchRead {
            keys,
            business_uuid,
            includes,
        })
    }
}

/// An external id: 1..200 printable characters, trimmed; `None` (with a violation) otherwise.
pub(super) fn external_id_value(c: &mut Checker, field: &str, value: &str) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 200 || trimmed.chars().any(char::is_control)
    {
        c.add(field, "must have 1 to 200 printable characters");
        return None;
    }
    Some(trimmed.to_owned())
}

/// A validated CreatePartnerClickEvent.
#[derive(Debug, Clone)]
pub struct ClickRequest {
    /// The partner clicked.
    pub partner_id: i64,
    /// What was clicked.
    pub event_type: EventType,
    /// The caller's idempotency key, if any.
    pub request_id: Option<String>,
    /// The business named in the request, if any.
    pub business_uuid: Option<Uuid>,
}

impl TryFrom<&pb::CreatePartnerClickEventRequest> for ClickRequest {
    type Error = Error;

    fn try_from(req: &pb::CreatePartnerClickEventRequest) -> Result<Self> {
        let mut c = Checker::default();
        let partner_id = c.positive_id("id", req.id);
        let event_type = convert::event_type(req.event_type).unwrap_or_else(|| {
            c.add("event_type", "must be website or video");
            EventType::Website
        });
        let request_id = c.request_id(&req.request_id);
        let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
        c.finish(ClickRequest {
            partner_id,
            event_type,
            request_id,
            business_uuid,
        })
    }
}

/// Validates the partner id of ConnectUser, DisconnectUser, DeletePartner and RestorePartner.
pub fn partner_id(id: i64) -> Result<i64> {
    let mut c = Checker::default();
    let id = c.positive_id("id", id);
    c.finish(id)
}
