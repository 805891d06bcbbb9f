//! Validation of the `WebhookAdminService` requests. Endpoint URLs are checked against the
//! delivery targets' rules (`crate::webhooks::targets`), which depend on
//! `--webhook-allow-insecure-targets`: hence the `check` functions taking it, beside `TryFrom`
//! for the rest.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::Checker;
use crate::error::{Error, Result};
use crate::grpc::pb;
use crate::model::change::ChangeKind;
use crate::model::webhook::{EndpointChanges, NewEndpoint};

/// Largest page of endpoints or deliveries.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Default page of endpoints or deliveries.
pub const DEFAULT_PAGE_SIZE: i32 = 50;
/// Fields an UpdateWebhookEndpoint mask may name.
pub const UPDATABLE: [&str; 4] = ["url", "description", "event_types", "paused"];

impl Checker {
    fn endpoint_url(&mut self, field: &str, url: &str, allow_insecure: bool) -> String {
        let url = url.trim();
        if url.is_empty() {
            self.add(field, "is required");
        } else if let Err(problem) = crate::webhooks::targets::check_url(url, allow_insecure) {
            self.add(field, problem);
        }
        url.to_owned()
    }

    fn event_types(&mut self, field: &str, types: &[String]) -> Vec<String> {
        let mut kept: Vec<String> = Vec::new();
        for (i, t) in types.iter().enumerate() {
            match ChangeKind::parse(t) {
                Some(kind) => {
                    let name = kind.to_string();
                    if !kept.contains(&name) {
                        kept.push(name);
                    }
                }
                None => self.add(
                    &format!("{field}[{i}]"),
                    format!("unknown event type {t:?}; known: {}", known_types()),
                ),
            }
        }
        kept
    }

    fn page_size(&mut self, field: &str, size: i32) -> i64 {
        match size {
            0 => i64::from(DEFAULT_PAGE_SIZE),
            1..=MAX_PAGE_SIZE => i64::from(size),
            _ => {
                self.add(
                    field,
                    format!("must be 1 to {MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE})"),
                );
                0
            }
        }
    }

    /// The id a page token carries (0: none, the first page); `kind` binds it to its list.
    fn page_token(&mut self, field: &str, token: &str, kind: &str) -> i64 {
        if token.is_empty() {
            return 0;
        }
        let id = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| {
                let (k, id) = text.split_once(':')?;
                (k == kind).then(|| id.parse::<i64>().ok()).flatten()
            })
            .filter(|id| *id > 0);
        match id {
            Some(id) => id,
            None => {
                self.add(field, "is not a token of this list");
                0
            }
        }
    }
}

/// The known event types, for messages.
fn known_types() -> String {
    ChangeKind::ALL
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A positive id in `field`.
pub fn id(field: &str, value: i64) -> Result<i64> {
    let mut c = Checker::default();
    let id = c.positive_id(field, value);
    c.finish(id)
}

/// The page token of a list of `kind` continuing after (or before) `id`.
pub fn page_token(kind: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

/// A validated CreateWebhookEndpoint.
pub fn endpoint_create(
    req: &pb::CreateWebhookEndpointRequest,
    allow_insecure: bool,
) -> Result<NewEndpoint> {
    let mut c = Checker::default();
    let Some(e) = &req.endpoint else {
        c.add("endpoint", "is required");
        return c.finish(NewEndpoint {
            url: String::new(),
            description: String::new(),
            event_types: Vec::new(),
            paused: false,
        });
    };
    let new = NewEndpoint {
        url: c.endpoint_url("endpoint.url", &e.url, allow_insecure),
        description: c.text("endpoint.description", &e.description, 0, 500),
        event_types: c.event_types("endpoint.event_types", &e.event_types),
        paused: e.paused,
    };
    c.finish(new)
}

/// A validated UpdateWebhookEndpoint: the endpoint's id and its changes.
pub fn endpoint_update(
    req: &pb::UpdateWebhookEndpointRequest,
    allow_insecure: bool,
) -> Result<(i64, EndpointChanges)> {
    let mut c = Checker::default();
    let Some(e) = &req.endpoint else {
        c.add("endpoint", "is required");
        return c.finish((0, EndpointChanges::default()));
    };
    let id = c.positive_id("endpoint.id", e.id);
    let paths = req
        .update_mask
        .as_ref()
        .map(|m| m.paths.clone())
        .unwrap_or_default();
    if paths.is_empty() {
        c.add("update_mask", "must name at least one field");
    }
    let mut changes = EndpointChanges::default();
    for path in &paths {
        match path.as_str() {
            "url" => changes.url = Some(c.endpoint_url("endpoint.url", &e.url, allow_insecure)),
            "description" => {
                changes.description = Some(c.text("endpoint.description", &e.description, 0, 500))
            }
            "event_types" => {
                changes.event_types = Some(c.event_types("endpoint.event_types", &e.event_types))
            }
            "paused" => changes.paused = Some(e.paused),
            other => c.add(
                "update_mask",
                format!(
                    "unknown field {other:?}; updatable: {}",
                    UPDATABLE.join(", ")
                ),
            ),
        }
    }
    c.finish((id, changes))
}

/// A validated ListWebhookEndpoints: (after id, page size).
impl TryFrom<&pb::ListWebhookEndpointsRequest> for EndpointPage {
    type Error = Error;

    fn try_from(req: &pb::ListWebhookEndpointsRequest) -> Result<Self> {
        let mut c = Checker::default();
        let limit = c.page_size("page_size", req.page_size);
        let after_id = c.page_token("page_token", &req.page_token, "endpoints");
        c.finish(EndpointPage { after_id, limit })
    }
}

/// A page of endpoints: those after `after_id`, at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct EndpointPage {
    pub after_id: i64,
    pub limit: i64,
}

/// A page of one endpoint's deliveries: in `state` (all if `None`), below `before_id` (0: from
/// the newest), at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryPage {
    pub endpoint_id: i64,
    pub state: Option<&'static str>,
    pub before_id: i64,
    pub limit: i64,
}

impl TryFrom<&pb::ListWebhookDeliveriesRequest> for DeliveryPage {
    type Error = Error;

    fn try_from(req: &pb::ListWebhookDeliveriesRequest) -> Result<Self> {
        let mut c = Checker::default();
        let endpoint_id = c.positive_id("endpoint_id", req.endpoint_id);
        let state = match pb::WebhookDeliveryState::try_from(req.state) {
            Ok(pb::WebhookDeliveryState::Unspecified) => None,
            Ok(pb::WebhookDeliveryState::Pending) => Some("pending"),
            Ok(pb::WebhookDeliveryState::Delivered) => Some("delivered"),
            Ok(pb::WebhookDeliveryState::Failed) => Some("failed"),
            Err(_) => {
                c.add("state", "unknown delivery state");
                None
            }
        };
        let limit = c.page_size("page_size", req.page_size);
        let before_id = c.page_token("page_token", &req.page_token, "deliveries");
        c.finish(DeliveryPage {
            endpoint_id,
            state,
            before_id,
            limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn an_endpoint_needs_a_safe_url_and_known_event_types() {
        let request = |url: &str, types: &[&str]| pb::CreateWebhookEndpointRequest {
            endpoint: Some(pb::WebhookEndpoint {
                url: url.into(),
                event_types: types.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            }),
        };
        let ok = endpoint_create(
            &request(
                "https://hooks.example.com/p",
                &["partner.updated", "partner.updated"],
            ),
            false,
        )
        .expect("valid");
        assert_eq!(ok.event_types, ["partner.updated"], "duplicates dropped");
        let err = endpoint_create(&request("http://10.0.0.1/", &["partner.renamed"]), false)
            .expect_err("invalid");
        assert_eq!(fields(err), ["endpoint.url", "endpoint.event_types[0]"]);
        assert!(endpoint_create(&request("http://127.0.0.1:9/", &[]), true).is_ok());
        assert_eq!(
            fields(
                endpoint_create(&pb::CreateWebhookEndpointRequest { endpoint: None }, false)
                    .expect_err("missing")
            ),
            ["endpoint"]
        );
    }

    #[test]
    fn page_tokens_belong_to_their_list() {
        let token = page_token("deliveries", 42);
        let page = DeliveryPage::try_from(&pb::ListWebhookDeliveriesRequest {
            endpoint_id: 1,
            page_token: token.clone(),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!((page.before_id, page.limit), (42, 50));
        let err = EndpointPage::try_from(&pb::ListWebhookEndpointsRequest {
            page_size: 500,
            page_token: token,
        })
        .expect_err("another list's token");
        assert_eq!(fields(err), ["page_size", "page_token"]);
    }
}
