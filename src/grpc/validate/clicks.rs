//! Click events in bulk: BatchCreatePartnerClickEvents → [`ClickBatch`]. The call as a whole is
//! rejected only when its size is wrong; each event is checked on its own, so that its violations
//! (named `events[i].field`) become that event's result and not the call's.

use uuid::Uuid;

use super::Checker;
use crate::error::{Error, Result, Violation};
use crate::grpc::{convert, pb};
use crate::model::EventType;

/// Most events in one BatchCreatePartnerClickEvents.
pub const MAX_BATCH_EVENTS: usize = 1000;

/// One valid event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEvent {
    /// The partner clicked.
    pub partner_id: i64,
    /// What was clicked.
    pub event_type: EventType,
    /// The caller's idempotency key, if any.
    pub request_id: Option<String>,
    /// The user named for the event (service keys), if any.
    pub user_uuid: Option<Uuid>,
    /// The business named for the event, if any.
    pub business_uuid: Option<Uuid>,
}

/// A validated BatchCreatePartnerClickEvents: each event, or its violations.
#[derive(Debug, Clone)]
pub struct ClickBatch {
    /// In request order.
    pub events: Vec<Result<BatchEvent>>,
}

impl TryFrom<&pb::BatchCreatePartnerClickEventsRequest> for ClickBatch {
    type Error = Error;

    fn try_from(req: &pb::BatchCreatePartnerClickEventsRequest) -> Result<Self> {
        if req.events.is_empty() || req.events.len() > MAX_BATCH_EVENTS {
            return Err(Error::invalid(
                "events",
                format!("must have 1 to {MAX_BATCH_EVENTS} events"),
            ));
        }
        let events = req
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| event(i, e))
            .collect();
        Ok(ClickBatch { events })
    }
}

/// Checks `events[i]`; violations name their field with the event's index.
fn event(i: usize, e: &pb::ClickEventEntry) -> Result<BatchEvent> {
    let mut c = Checker::default();
    let partner_id = c.positive_id("partner_id", e.partner_id);
    let event_type = convert::event_type(e.event_type).unwrap_or_else(|| {
        c.add("event_type", "must be website or video");
        EventType::Website
    });
    let request_id = c.request_id(&e.request_id);
    let user_uuid = c.optional_uuid("user_uuid", &e.user_uuid);
    let business_uuid = c.optional_uuid("business_uuid", &e.business_uuid);
    c.finish(BatchEvent {
        partner_id,
        event_type,
        request_id,
        user_uuid,
        business_uuid,
    })
    .map_err(|err| prefixed(i, err))
}

/// `err` with its field violations named from the request root (`events[i].field`).
pub fn prefixed(i: usize, err: Error) -> Error {
    match err {
        Error::InvalidArgument(violations) => Error::InvalidArgument(
            violations
                .into_iter()
                .map(|v| Violation {
                    field: format!("events[{i}].{}", v.field),
                    description: v.description,
                })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(partner_id: i64, event_type: pb::EventType) -> pb::ClickEventEntry {
        pb::ClickEventEntry {
            partner_id,
            event_type: event_type as i32,
            ..Default::default()
        }
    }

    #[test]
    fn each_event_reports_its_own_violations_by_index() {
        let req = pb::BatchCreatePartnerClickEventsRequest {
            events: vec![
                entry(1, pb::EventType::Website),
                entry(0, pb::EventType::Unspecified),
                pb::ClickEventEntry {
                    user_uuid: "nope".into(),
                    ..entry(2, pb::EventType::Video)
                },
            ],
        };
        let batch = ClickBatch::try_from(&req).expect("the call is well-formed");
        assert!(batch.events[0].is_ok());
        let fields = |r: &Result<BatchEvent>| match r {
            Err(Error::InvalidArgument(v)) => v.iter().map(|v| v.field.clone()).collect(),
            _ => Vec::new(),
        };
        assert_eq!(
            fields(&batch.events[1]),
            ["events[1].partner_id", "events[1].event_type"]
        );
        assert_eq!(fields(&batch.events[2]), ["events[2].user_uuid"]);
    }

    #[test]
    fn a_batch_needs_one_to_a_thousand_events() {
        for n in [0, MAX_BATCH_EVENTS + 1] {
            let req = pb::BatchCreatePartnerClickEventsRequest {
                events: vec![entry(1, pb::EventType::Website); n],
            };
            assert!(matches!(
                ClickBatch::try_from(&req),
                Err(Error::InvalidArgument(v)) if v[0].field == "events"
            ));
        }
    }
}
