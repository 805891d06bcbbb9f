//! PartnerService's point requests: GetPartner → [`PartnerRead`], CreatePartnerClickEvent →
//! [`ClickRequest`], and the partner id of ConnectUser / DisconnectUser / DeletePartner.

use uuid::Uuid;

use super::{Checker, MAX_REQUEST_ID_CHARS};
use crate::error::{Error, Result};
use crate::grpc::{convert, pb};
use crate::model::EventType;
use crate::model::partner::Includes;

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
        let request_id = if req.request_id.is_empty() {
            None
        } else {
            let chars = req.request_id.chars().count();
            if chars > MAX_REQUEST_ID_CHARS || req.request_id.chars().any(char::is_control) {
                c.add(
                    "request_id",
                    format!("must have 1 to {MAX_REQUEST_ID_CHARS} printable characters"),
                );
            }
            Some(req.request_id.clone())
        };
        let business_uuid = c.optional_uuid("business_uuid", &req.business_uuid);
        c.finish(ClickRequest {
            partner_id,
            event_type,
            request_id,
            business_uuid,
        })
    }
}

/// Validates the partner id of ConnectUser, DisconnectUser and DeletePartner.
pub fn partner_id(id: i64) -> Result<i64> {
    let mut c = Checker::default();
    let id = c.positive_id("id", id);
    c.finish(id)
}
