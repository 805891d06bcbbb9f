//! PartnerEventService's requests: ListPartnerEvents and WatchPartnerEvents → [`EventQuery`]
//! (where to start, how many per read, which events).

use super::{Checker, MAX_FILTER_VALUES};
use crate::error::{Error, Result};
use crate::grpc::pb;
use crate::model::change::{ChangeKind, EventFilter};

/// Largest page of ListPartnerEvents.
pub const MAX_PAGE_SIZE: i32 = 1000;
/// Default page of ListPartnerEvents.
pub const DEFAULT_PAGE_SIZE: i32 = 100;
/// Most partner ids in one filter.
pub const MAX_PARTNER_IDS: usize = 100;

/// A validated feed or watch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Events with a larger sequence.
    pub after: i64,
    /// Most events per read.
    pub limit: i64,
    /// Which events.
    pub filter: EventFilter,
}

impl Checker {
    fn after_sequence(&mut self, after: i64) -> i64 {
        if after < 0 {
            self.add("after_sequence", "must not be negative");
            return 0;
        }
        after
    }

    fn event_filter(&mut self, types: &[String], partner_ids: &[i64]) -> EventFilter {
        let mut kinds = Vec::new();
        if types.len() > MAX_FILTER_VALUES {
            self.add(
                "types",
                format!("must have at most {MAX_FILTER_VALUES} values"),
            );
        } else {
            for name in types {
                match ChangeKind::parse(name) {
                    Some(kind) => kinds.push(kind),
                    None => {
                        let allowed: Vec<&str> =
                            ChangeKind::ALL.iter().map(|k| k.as_str()).collect();
                        self.add(
                            "types",
                            format!(
                                "unknown event type {:?}; allowed: {}",
                                name.chars().take(64).collect::<String>(),
                                allowed.join(", ")
                            ),
                        );
                        break;
                    }
                }
            }
        }
        kinds.sort();
        kinds.dedup();
        let mut ids = Vec::new();
        if partner_ids.len() > MAX_PARTNER_IDS {
            self.add(
                "partner_ids",
                format!("must have at most {MAX_PARTNER_IDS} values"),
            );
        } else if partner_ids.iter().any(|id| *id < 1) {
            self.add("partner_ids", "values must be positive integers");
        } else {
            ids = partner_ids.to_vec();
            ids.sort_unstable();
            ids.dedup();
        }
        EventFilter {
            kinds,
            partner_ids: ids,
        }
    }
}

impl TryFrom<&pb::ListPartnerEventsRequest> for EventQuery {
    type Error = Error;

    fn try_from(req: &pb::ListPartnerEventsRequest) -> Result<Self> {
        let mut c = Checker::default();
        let after = c.after_sequence(req.after_sequence);
        let limit = match req.page_size {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Some(_) => {
                c.add(
                    "page_size",
                    format!("must be between 1 and {MAX_PAGE_SIZE}"),
                );
                DEFAULT_PAGE_SIZE
            }
        };
        let filter = c.event_filter(&req.types, &req.partner_ids);
        c.finish(EventQuery {
            after,
            limit: i64::from(limit),
            filter,
        })
    }
}

impl TryFrom<&pb::WatchPartnerEventsRequest> for EventQuery {
    type Error = Error;

    fn try_from(req: &pb::WatchPartnerEventsRequest) -> Result<Self> {
        let mut c = Checker::default();
        let after = c.after_sequence(req.after_sequence);
        let filter = c.event_filter(&req.types, &req.partner_ids);
        c.finish(EventQuery {
            after,
            limit: i64::from(MAX_PAGE_SIZE),
            filter,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("not invalid: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_filters_are_normalised() {
        let q = EventQuery::try_from(&pb::ListPartnerEventsRequest {
            after_sequence: 7,
            page_size: None,
            types: vec![
                "partner.updated".into(),
                "partner.created".into(),
                "partner.updated".into(),
            ],
            partner_ids: vec![3, 1, 3],
        })
        .expect("valid");
        assert_eq!(q.after, 7);
        assert_eq!(q.limit, 100);
        assert_eq!(
            q.filter.kinds,
            [ChangeKind::PartnerCreated, ChangeKind::PartnerUpdated]
        );
        assert_eq!(q.filter.partner_ids, [1, 3]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let err = EventQuery::try_from(&pb::ListPartnerEventsRequest {
            after_sequence: -1,
            page_size: Some(1001),
            types: vec!["partner.renamed".into()],
            partner_ids: vec![0],
        })
        .expect_err("invalid");
        assert_eq!(
            fields(err),
            ["after_sequence", "page_size", "types", "partner_ids"]
        );
        let err = EventQuery::try_from(&pb::WatchPartnerEventsRequest {
            after_sequence: 0,
            types: vec![String::new()],
            partner_ids: vec![],
        })
        .expect_err("invalid");
        assert_eq!(fields(err), ["types"]);
    }
}
