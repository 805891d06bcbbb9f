//! The webhook routes' documents: endpoint and delivery resources, single documents (with the
//! secret's `meta` where one is shown), list pages, typed here so that their OpenAPI schemas are
//! derived from the types that render them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::grpc::pb;

/// A webhook endpoint resource.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct EndpointResource {
    #[schema(pattern = "^[1-9][0-9]*$")]
    pub(super) id: String,
    #[schema(pattern = "^webhook_endpoints$")]
    pub(super) r#type: &'static str,
    pub(super) attributes: EndpointAttributes,
}

/// A webhook endpoint's attributes.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpointAttributes)]
pub struct EndpointAttributes {
    pub(super) url: String,
    pub(super) description: String,
    /// Event types sent; empty: every type.
    pub(super) event_types: Vec<String>,
    pub(super) paused: bool,
    /// `requested` or `failing` while paused.
    pub(super) paused_reason: Option<String>,
    /// Since when every attempt has failed.
    #[schema(format = DateTime)]
    pub(super) failing_since: Option<String>,
    #[schema(format = DateTime)]
    pub(super) created_at: Option<String>,
    #[schema(format = DateTime)]
    pub(super) updated_at: Option<String>,
}

/// The secret, shown when an endpoint is created or its secret rotated.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookSecret)]
pub struct SecretMeta {
    /// `whsec_...`: verifies the deliveries' `webhook-signature`.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]+=*$")]
    pub(super) secret: String,
    /// Until then the previous secret signs deliveries too (rotation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub(super) previous_secret_expires_at: Option<String>,
}

/// One endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpointDocument)]
pub struct EndpointDocument {
    pub(super) data: EndpointResource,
    /// Present when the answer shows a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) meta: Option<SecretMeta>,
}

/// Links of a list page.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookListLinks)]
pub struct ListLinks {
    /// The next page; null on the last.
    pub(super) next: Option<String>,
}

/// The cursor of a list page.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookListMeta)]
pub struct ListMeta {
    /// Empty on the last page.
    pub(super) next_page_token: String,
}

/// A page of endpoints.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookEndpointList)]
pub struct EndpointList {
    pub(super) data: Vec<EndpointResource>,
    pub(super) links: ListLinks,
    pub(super) meta: ListMeta,
}

/// A delivery resource: one event for one endpoint.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryResource {
    #[schema(pattern = "^[1-9][0-9]*$")]
    pub(super) id: String,
    #[schema(pattern = "^webhook_deliveries$")]
    pub(super) r#type: &'static str,
    pub(super) attributes: DeliveryAttributes,
}

/// A delivery's attributes.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDeliveryAttributes)]
pub struct DeliveryAttributes {
    /// The event's position in the change log.
    pub(super) sequence: i64,
    pub(super) event_type: String,
    pub(super) partner_id: String,
    /// The `webhook-id` header, the same on every attempt.
    pub(super) message_id: String,
    /// `pending`, `delivered` or `failed`.
    pub(super) state: &'static str,
    pub(super) attempts: i32,
    /// HTTP status of the last attempt; null when none answered.
    pub(super) last_status_code: Option<i32>,
    pub(super) last_error: Option<String>,
    #[schema(format = DateTime)]
    pub(super) next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub(super) created_at: Option<String>,
    #[schema(format = DateTime)]
    pub(super) delivered_at: Option<String>,
}

/// One delivery.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDeliveryDocument)]
pub struct DeliveryDocument {
    pub(super) data: DeliveryResource,
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
#[schema(as = WebhookDeliveryList)]
pub struct DeliveryList {
    pub(super) data: Vec<DeliveryResource>,
    pub(super) links: ListLinks,
    pub(super) meta: ListMeta,
}

pub(super) fn time(t: &Option<prost_types::Timestamp>) -> Option<String> {
    let t = t.as_ref()?;
    let at = chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?)?;
    Some(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

pub(super) fn endpoint_resource(e: pb::WebhookEndpoint) -> EndpointResource {
    EndpointResource {
        id: e.id.to_string(),
        r#type: "webhook_endpoints",
        attributes: EndpointAttributes {
            failing_since: time(&e.failing_since),
            created_at: time(&e.create_time),
            updated_at: time(&e.update_time),
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            paused: e.paused,
            paused_reason: (!e.paused_reason.is_empty()).then_some(e.paused_reason),
        },
    }
}

pub(super) fn delivery_resource(d: pb::WebhookDelivery) -> DeliveryResource {
    let state = match pb::WebhookDeliveryState::try_from(d.state) {
        Ok(pb::WebhookDeliveryState::Pending) => "pending",
        Ok(pb::WebhookDeliveryState::Delivered) => "delivered",
        _ => "failed",
    };
    DeliveryResource {
        id: d.id.to_string(),
        r#type: "webhook_deliveries",
        attributes: DeliveryAttributes {
            sequence: d.sequence,
            partner_id: d.partner_id.to_string(),
            state,
            attempts: d.attempts,
            last_status_code: (d.last_status_code != 0).then_some(d.last_status_code),
            last_error: (!d.last_error.is_empty()).then_some(d.last_error),
            next_attempt_at: time(&d.next_attempt_time),
            created_at: time(&d.create_time),
            delivered_at: time(&d.deliver_time),
            event_type: d.event_type,
            message_id: d.message_id,
        },
    }
}
