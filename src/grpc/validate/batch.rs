//! PartnerAdminService's batches: BatchUpdatePartners → [`BatchUpdate`] (each item checked by
//! UpdatePartner's own rules, [`PartnerUpdate`], its violations prefixed with `requests[i].`) and
//! BatchModifyPartners → [`BatchModify`].

use std::collections::HashMap;

use super::{Checker, PartnerUpdate};
use crate::error::{Error, Result};
use crate::grpc::{convert, pb};
use crate::model::PartnerStatus;

/// Most items of one batch write (updates, or ids to modify).
pub const MAX_BATCH_WRITES: usize = 1000;
/// Most violations one batch reports (the first ones, in item order): a status carries them
/// all in its details, which must stay far below the transport's header limits.
pub const MAX_REPORTED_VIOLATIONS: usize = 100;

/// A validated BatchUpdatePartners: the updates in request order, each on another partner.
#[derive(Debug, Clone, Default)]
pub struct BatchUpdate {
    /// The updates.
    pub updates: Vec<PartnerUpdate>,
}

impl TryFrom<&pb::BatchUpdatePartnersRequest> for BatchUpdate {
    type Error = Error;

    fn try_from(req: &pb::BatchUpdatePartnersRequest) -> Result<Self> {
        let mut c = Checker::default();
        if req.requests.is_empty() || req.requests.len() > MAX_BATCH_WRITES {
            c.add(
                "requests",
                format!("must have 1 to {MAX_BATCH_WRITES} items"),
            );
            return c.finish(BatchUpdate::default());
        }
        let mut updates = Vec::with_capacity(req.requests.len());
        let mut first_of: HashMap<i64, usize> = HashMap::new();
        let mut reported = 0;
        for (i, item) in req.requests.iter().enumerate() {
            if reported >= MAX_REPORTED_VIOLATIONS {
                c.add("requests", "has more invalid items (not listed)");
                break;
            }
            match PartnerUpdate::try_from(item) {
                Ok(update) => {
                    if let Some(j) = first_of.get(&update.id) {
                        c.add(
                            &format!("requests[{i}].partner.id"),
                            format!("names the same partner as requests[{j}]"),
                        );
                        reported += 1;
                    } else {
                        first_of.insert(update.id, i);
                    }
                    updates.push(update);
                }
                Err(Error::InvalidArgument(violations)) => {
                    reported += violations.len();
                    for v in violations {
                        c.add(&format!("requests[{i}].{}", v.field), v.description);
                    }
                }
                Err(other) => return Err(other),
            }
        }
        c.finish(BatchUpdate { updates })
    }
}

/// A validated BatchModifyPartners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchModify {
    /// The partners, ascending, each once.
    pub ids: Vec<i64>,
    /// Tags to add (sorted, each once).
    pub add_tags: Vec<String>,
    /// Tags to remove (sorted, each once).
    pub remove_tags: Vec<String>,
    /// The new status, if any.
    pub status: Option<PartnerStatus>,
    /// The new active flag, if any.
    pub active: Option<bool>,
}

impl TryFrom<&pb::BatchModifyPartnersRequest> for BatchModify {
    type Error = Error;

    fn try_from(req: &pb::BatchModifyPartnersRequest) -> Result<Self> {
        let mut c = Checker::default();
        if req.ids.is_empty() || req.ids.len() > MAX_BATCH_WRITES {
            c.add("ids", format!("must have 1 to {MAX_BATCH_WRITES} values"));
        } else if let Some(i) = req.ids.iter().position(|id| *id < 1) {
            c.add(&format!("ids[{i}]"), "must be a positive integer");
        }
        let mut ids = req.ids.clone();
        ids.sort_unstable();
        ids.dedup();
        let add_tags = c.list("add_tags", &req.add_tags);
        let remove_tags = c.list("remove_tags", &req.remove_tags);
        let status = req.status.and_then(|value| {
            let status = convert::partner_status(value);
            if status.is_none() {
                c.add("status", "must be available, coming_soon or unavailable");
            }
            status
        });
        let nothing = add_tags.is_empty() && remove_tags.is_empty();
        if nothing && req.status.is_none() && req.active.is_none() {
            c.add(
                "add_tags",
                "nothing to change: give add_tags, remove_tags, status or active",
            );
        }
        c.finish(BatchModify {
            ids,
            add_tags,
            remove_tags,
            status,
            active: req.active,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(id: i64, country: &str) -> pb::UpdatePartnerRequest {
        pb::UpdatePartnerRequest {
            partner: Some(pb::Partner {
                id,
                country_codes: vec![country.into()],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["country_codes".into()],
            }),
        }
    }

    fn fields(err: Error) -> Vec<String> {
        let Error::InvalidArgument(v) = err else {
            panic!("expected invalid argument");
        };
        v.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn item_violations_are_named_by_their_index() {
        let req = pb::BatchUpdatePartnersRequest {
            requests: vec![
                update(1, "de"),
                update(2, "DEU"),
                update(1, "at"),
                update(0, "x"),
            ],
        };
        let err = BatchUpdate::try_from(&req).expect_err("invalid");
        assert_eq!(
            fields(err),
            [
                "requests[1].partner.country_codes",
                "requests[2].partner.id",
                "requests[3].partner.id",
                "requests[3].partner.country_codes",
            ]
        );
        let ok = BatchUpdate::try_from(&pb::BatchUpdatePartnersRequest {
            requests: vec![update(1, "de"), update(2, "at")],
        })
        .expect("valid");
        assert_eq!(ok.updates.len(), 2);
        assert_eq!(ok.updates[0].changes.country_codes, Some(vec!["DE".into()]));
    }

    #[test]
    fn batches_are_bounded() {
        let none = pb::BatchUpdatePartnersRequest::default();
        assert_eq!(
            fields(BatchUpdate::try_from(&none).expect_err("empty")),
            ["requests"]
        );
        let many = pb::BatchModifyPartnersRequest {
            ids: (1..=1001).collect(),
            active: Some(true),
            ..Default::default()
        };
        assert_eq!(
            fields(BatchModify::try_from(&many).expect_err("many")),
            ["ids"]
        );
    }

    #[test]
    fn a_modification_needs_a_change_and_valid_ids() {
        let req = pb::BatchModifyPartnersRequest {
            ids: vec![3, -1],
            status: Some(0),
            ..Default::default()
        };
        let err = BatchModify::try_from(&req).expect_err("invalid");
        assert_eq!(fields(err), ["ids[1]", "status"]);
        let empty = pb::BatchModifyPartnersRequest {
            ids: vec![1],
            ..Default::default()
        };
        assert_eq!(
            fields(BatchModify::try_from(&empty).expect_err("no-op")),
            ["add_tags"]
        );
        let ok = BatchModify::try_from(&pb::BatchModifyPartnersRequest {
            ids: vec![5, 2, 5],
            add_tags: vec!["b".into(), "a".into()],
            active: Some(false),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(ok.ids, [2, 5]);
        assert_eq!(ok.add_tags, ["a", "b"]);
    }
}
