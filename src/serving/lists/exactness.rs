//! Whether a list answered from the copy is exact although the database moved past it.
//!
//! The copy's statements are guarded by one search version for the whole directory, so between
//! a commit and the follower's install of it (a few milliseconds) every list finds the copy
//! behind. Most of those lists are not touched by the change: a partner renamed in another
//! category, a page far from the renamed partner's old and new places. When the guard fails, the
//! planner reads what moved since the copy's log position ([`partner::moved`]) and the page's
//! rows in one snapshot ([`Lists::unless_affected`], in one statement for a page of known ids:
//! [`Lists::unless_affected_with`]); [`View::unaffected`] then tells whether every change leaves
//! the answer as the copy gives it. Only a list a change does touch waits for the follower.
//!
//! A changed partner leaves a list's answer as it was when it is in the list neither before (in
//! the copy) nor now (in the database), or in it both times with its places, before and now,
//! after the page's last partner (and the list's total the same). The database tells "now" (the
//! list's filters and search on the current row, and the order against the page's last partner,
//! in its own collation); the copy tells "before". Writes that left no change rows (a reset,
//! migration 12) are never vouched for.

use std::sync::atomic::Ordering;

use diesel::pg::PgConnection;

use super::Lists;
use super::delta::{Key, View};
use super::preferences::Preferred;
use crate::error::Result;
use crate::model::partner::{self, ListQuery, Moved, PartnerRecord};

/// Where a list's answer stands, for [`View::unaffected`].
#[derive(Clone, Copy)]
pub struct Answered<'a> {
    /// The page's last partner when the copy cut the page in list order (`name, id`, the
    /// business's preferred partners first in the default order); `None` when the page was found
    /// by the database in another order or is past the end, so only the total is the copy's.
    pub end: Option<i64>,
    /// The business's preferred partners, when they order or filter the list.
    pub preferred: Option<&'a Preferred>,
}

impl View {
    /// Whether the database as `moved` saw it still gives `q` the answer this copy gives
    /// (`answered`): no write skipped the change log since this copy, and no changed partner
    /// enters, leaves or moves within the list up to the page's end.
    pub fn unaffected(&self, q: &ListQuery, moved: &Moved, answered: Answered<'_>) -> bool {
        if moved.reset.is_none_or(|reset| reset > self.version) {
            return false; // a write skipped the log, or the state row is gone
        }
        let prefers = |id: i64| answered.preferred.is_some_and(|p| p.contains(id));
        let end_key = answered.end.map(|end| (end, self.key_of(end)));
        let matching_key = self.matcher(q);
        moved.changed.iter().all(|&id| {
            match (q.preferred, answered.preferred) {
                (Some(_), None) => return false, // the preference filters, its set is unknown
                (Some(wanted), Some(_)) if prefers(id) != wanted => return true, // never listed
                _ => {}
            }
            let before = matching_key(id);
            let now = moved.matching.contains(&id);
            match (before, now) {
                (None, false) => true,
                (Some(_), false) | (None, true) => false, // the total moves
                (Some(old), true) => match end_key {
                    None => true, // the total holds; the database found the page
                    Some((end, _)) if end == id => false,
                    Some((_, None)) => false,
                    Some((end, Some(end_old))) => {
                        let grouped = partner::preferred_first(q) && answered.preferred.is_some();
                        if grouped && prefers(id) != prefers(end) {
                            // In the other group: before the page's end iff in the first group.
                            !prefers(id)
                        } else {
                            old > end_old && !moved.before_end.contains(&id)
                        }
                    }
                },
            }
        })
    }

    /// For `q`, the key of a partner if it is live in this copy and matches `q`'s kind, filters
    /// and search (the preference aside); the filter and the lowered term are made once.
    fn matcher(&self, q: &ListQuery) -> impl Fn(i64) -> Option<Key> + '_ {
        let filter = self.filter(q);
        let needle = q.search.as_deref().map(str::to_ascii_lowercase);
        move |id| {
            let key = self.key_of(id)?;
            self.holds(key, &filter, needle.as_deref().map(str::as_bytes))
                .then_some(key)
        }
    }
}

/// What [`Lists::unless_affected`] found.
pub(super) enum Checked<T> {
    /// Nothing since the copy touches the list's answer: the rows read in the same snapshot.
    Exact(T),
    /// A change touches it (or the set of preferences moved): the versions now.
    Moved(partner::Versions),
}

impl Lists {
    /// In one snapshot: what moved since `snapshot` ([`partner::moved`]) and, when none of it
    /// touches `q`'s answer ([`View::unaffected`]) and the business's preference version is still
    /// `guard`'s, the rows `rows` reads (by statements without the version guard).
    pub(super) fn unless_affected<T>(
        &self,
        conn: &mut PgConnection,
        q: &ListQuery,
        snapshot: &View,
        guard: Option<(i64, i64)>,
        answered: Answered<'_>,
        rows: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T>,
    ) -> Result<Checked<T>> {
        let business = guard.map(|(b, _)| b);
        let sequence = snapshot.sequence();
        Ok(conn
            .build_transaction()
            .read_only()
            .repeatable_read()
            .run(|conn| {
                let moved = partner::moved(conn, q, sequence, business, answered.end)?;
                match self.judge(q, snapshot, guard, answered, &moved) {
                    Some(now) => Ok(Checked::Moved(now)),
                    None => rows(conn).map(Checked::Exact),
                }
            })?)
    }

    /// [`Lists::unless_affected`] with the rows of the partners `page_ids` (not empty), in one
    /// statement ([`partner::moved_with_page`]): a list that finds the copy behind costs one
    /// more statement, not a transaction of four round trips.
    pub(super) fn unless_affected_with(
        &self,
        conn: &mut PgConnection,
        q: &ListQuery,
        snapshot: &View,
        guard: Option<(i64, i64)>,
        answered: Answered<'_>,
        page_ids: &[i64],
    ) -> Result<Checked<Vec<PartnerRecord>>> {
        let business = guard.map(|(b, _)| b);
        let sequence = snapshot.sequence();
        let found = partner::moved_with_page(conn, q, sequence, business, answered.end, page_ids)?;
        let Some((moved, rows)) = found else {
            let rows =
                |conn: &mut PgConnection| partner::list_known_page(conn, q, page_ids, None, None);
            return self.unless_affected(conn, q, snapshot, guard, answered, rows);
        };
        Ok(match self.judge(q, snapshot, guard, answered, &moved) {
            Some(now) => Checked::Moved(now),
            None => Checked::Exact(rows),
        })
    }

    /// Whether `moved` (read in one snapshot with the rows) leaves the copy's answer of `q`
    /// exact: `None` when it does (counted when the database had moved on), otherwise the
    /// versions it read.
    fn judge(
        &self,
        q: &ListQuery,
        snapshot: &View,
        guard: Option<(i64, i64)>,
        answered: Answered<'_>,
        moved: &partner::Moved,
    ) -> Option<partner::Versions> {
        let now = partner::Versions {
            search: moved.search,
            preferences: moved.preferences,
        };
        if now.preferences != guard.map(|(_, v)| v) || !snapshot.unaffected(q, moved, answered) {
            return Some(now);
        }
        if moved.search != Some(snapshot.version) {
            self.inner.unaffected.fetch_add(1, Ordering::Relaxed);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::partner::{ListKind, Scope};
    use crate::serving::lists::copy::fixtures::{query, snapshot};

    fn moved(changed: &[i64], matching: &[i64], before_end: &[i64]) -> Moved {
        Moved {
            search: Some(2),
            reset: Some(0),
            preferences: None,
            changed: changed.to_vec(),
            matching: matching.to_vec(),
            before_end: before_end.to_vec(),
        }
    }

    fn page(view: &View, q: &ListQuery) -> Vec<i64> {
        view.page(q, None).expect("in list order").0
    }

    #[test]
    fn a_change_outside_the_list_leaves_it() {
        let view = snapshot();
        let q = ListQuery::new(ListKind::Wholesalers, Scope::default(), 1, 25);
        let outside = (1..=6)
            .find(|&id| view.matcher(&q)(id).is_none())
            .expect("a partner outside the wholesalers");
        let answered = Answered {
            end: None,
            preferred: None,
        };
        assert!(view.unaffected(&q, &moved(&[outside], &[], &[]), answered));
        // It enters the list now: the total moves.
        assert!(!view.unaffected(&q, &moved(&[outside], &[outside], &[]), answered));
        // A write that left no change rows is never vouched for.
        let mut reset = moved(&[], &[], &[]);
        reset.reset = Some(view.version + 1);
        assert!(!view.unaffected(&q, &reset, answered));
    }

    #[test]
    fn a_member_moving_behind_the_page_leaves_it_and_ahead_of_its_end_does_not() {
        let view = snapshot();
        let mut q = ListQuery::new(ListKind::All, Scope::default(), 1, 2);
        q.sort = vec![(partner::SortField::Name, false)];
        let all = page(
            &view,
            &ListQuery::new(ListKind::All, Scope::default(), 1, 100),
        );
        let first_page = page(&view, &q);
        let end = *first_page.last().expect("a page");
        let last = *all.last().expect("partners");
        let answered = Answered {
            end: Some(end),
            preferred: None,
        };
        // The last partner renamed and still behind the page: nothing moves on page 1.
        assert!(view.unaffected(&q, &moved(&[last], &[last], &[]), answered));
        // Renamed to sort before the page's end: the page moves.
        assert!(!view.unaffected(&q, &moved(&[last], &[last], &[last]), answered));
        // A partner of the page renamed, wherever it goes: the page may move.
        assert!(!view.unaffected(
            &q,
            &moved(&[first_page[0]], &[first_page[0]], &[]),
            answered
        ));
        assert!(!view.unaffected(&q, &moved(&[end], &[end], &[]), answered));
        // Deleted: the total moves.
        assert!(!view.unaffected(&q, &moved(&[last], &[], &[]), answered));
    }

    #[test]
    fn a_search_member_is_one_whose_name_holds_the_term() {
        let view = snapshot();
        let q = query(ListKind::All, "a");
        let members = view.candidates(&q).expect("a search the copy answers");
        for id in 1..=6 {
            assert_eq!(
                view.matcher(&q)(id).is_some(),
                members.contains(&id),
                "partner {id}"
            );
        }
    }
}
