//! Search in the copy: the partners whose lowered name holds a term, found through byte-trigram
//! posting lists (then the term in each name), in list order, with the list's filters applied.

use memchr::memmem;

use super::copy::Snapshot;
use super::delta::View;
use crate::model::partner::{ListQuery, SortField};

/// Most matches of a search the copy orders and pages; beyond it the SQL path is used. (A
/// million partners hold ~25,000 matches of a common word; ordering them here costs ~0.1 ms.)
pub const MAX_CANDIDATES: usize = 50_000;

/// Most matches handed to Postgres to order (when the business prefers more partners than its
/// cached set holds, [`super::Plan::OrderMatches`]); beyond it the SQL path is used.
pub const MAX_ORDERED_BY_SQL: usize = 5_000;

impl Snapshot {
    /// Positions of the partners whose name holds `key`, in list order.
    pub(super) fn postings_of(&self, key: u32) -> Option<&[u32]> {
        let k = self.trigrams.binary_search(&key).ok()?;
        let start = if k == 0 { 0 } else { self.trigram_ends[k - 1] };
        Some(&self.postings[start as usize..self.trigram_ends[k] as usize])
    }

    /// Positions (in list order) of the partners whose lowered name holds `needle` and that
    /// `keep` accepts; `None` when more than `limit` are.
    fn search(
        &self,
        needle: &[u8],
        finder: &memmem::Finder<'_>,
        keep: impl Fn(usize) -> bool,
        limit: usize,
    ) -> Option<Vec<u32>> {
        let mut found = Vec::new();
        let mut take = |position: usize| {
            if !keep(position) {
                return true;
            }
            if found.len() == limit {
                return false;
            }
            found.push(position as u32);
            true
        };
        if needle.len() >= 3 {
            // The names holding every trigram of the term, then the term itself in each.
            for position in self.holding_trigrams_of(needle) {
                let position = position as usize;
                if finder.find(self.name(position)).is_some() && !take(position) {
                    return None;
                }
            }
        } else {
            // Too short for trigrams: one scan of all names, each match once.
            let (mut from, mut first) = (0, 0);
            while let Some(offset) = finder.find(&self.names[from..]) {
                let at = from + offset;
                let position = first + gallop(&self.starts[first..], |s| s as usize <= at) - 1;
                if !take(position) {
                    return None;
                }
                first = position + 1;
                from = match self.starts.get(first) {
                    Some(&next) => next as usize,
                    None => break,
                };
            }
        }
        Some(found)
    }

    /// The lowered name of the partner at `position`.
    pub(super) fn name(&self, position: usize) -> &[u8] {
        let start = self.starts[position] as usize;
        let end = self
            .starts
            .get(position + 1)
            .map_or(self.names.len(), |&next| next as usize);
        &self.names[start..end - 1]
    }

    /// Positions of the partners whose name holds every trigram of `needle` (three bytes or
    /// more), in list order: the shortest lists intersected first.
    fn holding_trigrams_of(&self, needle: &[u8]) -> Vec<u32> {
        let mut keys: Vec<u32> = needle.windows(3).map(trigram).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut lists = Vec::with_capacity(keys.len());
        for key in keys {
            match self.postings_of(key) {
                Some(list) => lists.push(list),
                None => return Vec::new(),
            }
        }
        lists.sort_by_key(|list| list.len());
        let Some((shortest, others)) = lists.split_first() else {
            return Vec::new();
        };
        let mut held = shortest.to_vec();
        for list in others {
            let mut rest: &[u32] = list;
            held.retain(|&position| {
                rest = &rest[gallop(rest, |p| p < position)..];
                rest.first() == Some(&position)
            });
        }
        held
    }
}

impl View {
    /// Ids of every partner matching `q`'s kind, filters and search (the preference aside), in
    /// list order; `None` when the copy cannot answer `q` (see the module docs).
    pub fn candidates(&self, q: &ListQuery) -> Option<Vec<i64>> {
        let search = q.search.as_deref()?;
        let ordered = q.sort.is_empty() || q.sort == [(SortField::Name, false)];
        if !ordered || !self.base.ascii_lower || !search.is_ascii() || search.is_empty() {
            return None;
        }
        let needle = search.to_ascii_lowercase();
        let finder = memmem::Finder::new(needle.as_bytes());
        let filter = self.filter(q);
        let (base, delta) = (&*self.base, &*self.delta);
        let keep = |position: usize| {
            !delta.is_removed(position as u32) && filter.matches(base, &base.partners[position])
        };
        let positions = base.search(needle.as_bytes(), &finder, keep, MAX_CANDIDATES)?;
        let changed: Vec<_> = delta
            .matching(&filter)
            .filter(|&key| {
                let entry = &delta.entries[(key & 0xffff_ffff) as usize - 1];
                finder.find(entry.lower_name.as_bytes()).is_some()
            })
            .collect();
        if positions.len() + changed.len() > MAX_CANDIDATES {
            return None;
        }
        let keys = self.merge(positions.into_iter(), changed);
        Some(keys.into_iter().map(|key| self.id(key)).collect())
    }
}

/// A byte trigram as a number.
pub(super) fn trigram(bytes: &[u8]) -> u32 {
    u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2])
}

/// How many leading values of `sorted` satisfy `below` (true for a prefix), found by an
/// exponential search from the start: cheaper than a binary search over all when the answer is
/// near the start, as it is for the in-order walks above.
pub(super) fn gallop(sorted: &[u32], below: impl Fn(u32) -> bool) -> usize {
    let mut bound = 1;
    while bound < sorted.len() && below(sorted[bound]) {
        bound *= 2;
    }
    let low = bound / 2;
    let high = bound.min(sorted.len());
    low + sorted[low..high].partition_point(|&v| below(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PartnerStatus;
    use crate::model::partner::{ListKind, Scope};
    use crate::serving::lists::copy::fixtures::{query, row, snapshot};

    #[test]
    fn finds_each_matching_name_once_in_list_order() {
        let s = snapshot();
        assert_eq!(
            s.candidates(&query(ListKind::All, "HARBOR")),
            Some(vec![3, 1, 5])
        );
        assert_eq!(
            s.candidates(&query(ListKind::All, "harb")),
            Some(vec![3, 1, 5, 4, 6])
        );
        assert_eq!(s.candidates(&query(ListKind::All, "0% h")), Some(vec![6]));
        assert_eq!(
            s.candidates(&query(ListKind::All, "rbor fo")),
            Some(vec![1])
        );
        assert_eq!(s.candidates(&query(ListKind::All, "nowhere")), Some(vec![]));
        // no match across two names
        assert_eq!(
            s.candidates(&query(ListKind::All, "harborport")),
            Some(vec![])
        );
    }

    #[test]
    fn every_term_finds_what_a_substring_test_finds() {
        let names = [
            "alpha harbor",
            "harbor foods",
            "harbor harbor",
            "portside",
            "zed harbour",
            "100% harb",
            "aaa",
            "aaaa",
            "abab",
            "a_b",
            "x\\y",
            "müller",
            "",
            "ab",
            "b",
        ];
        let rows = names
            .iter()
            .enumerate()
            .map(|(i, n)| row(i as i64 + 1, n, &["pos"], &["DE"], "available"));
        let s = View::new(Snapshot::from_rows(1, rows).expect("snapshot"));
        let terms = [
            "a", "b", "h", "ab", "aa", "aaa", "aaaa", "aaaaa", "bab", "abab", "harbor", "or", "r ",
            " h", "_", "a_b", "\\", "%", "% h", "ller", "rbour", "zz", "foods", "ds",
        ];
        for term in terms {
            let expected: Vec<i64> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| n.contains(term))
                .map(|(i, _)| i as i64 + 1)
                .collect();
            assert_eq!(
                s.candidates(&query(ListKind::All, term)),
                Some(expected),
                "{term:?}"
            );
        }
    }

    #[test]
    fn gallop_counts_the_prefix() {
        let values = [1, 3, 3, 7, 9, 12, 20, 21, 22, 40];
        for x in 0..45 {
            let expected = values.iter().filter(|&&v| v < x).count();
            assert_eq!(gallop(&values, |v| v < x), expected, "{x}");
        }
        assert_eq!(gallop(&[], |_| true), 0);
    }

    #[test]
    fn applies_every_filter_of_the_sql_path() {
        let s = snapshot();
        let mut q = query(ListKind::All, "harb");
        q.categories = vec!["pos".into()];
        q.country_codes = vec!["DE".into()];
        assert_eq!(s.candidates(&q), Some(vec![3, 1]));
        q.excluded_categories = vec!["wholesaler".into()];
        assert_eq!(s.candidates(&q), Some(vec![3]));

        let mut q = query(ListKind::All, "harb");
        q.categories = vec!["unknown".into()];
        assert_eq!(
            s.candidates(&q),
            Some(vec![]),
            "an unknown value matches nothing"
        );
        q.categories.push("payments".into());
        assert_eq!(s.candidates(&q), Some(vec![5]));

        let mut q = query(ListKind::All, "harb");
        q.wholesaler_categories = vec!["produce".into()];
        assert_eq!(s.candidates(&q), Some(vec![1]));

        let mut q = query(ListKind::All, "harb");
        q.statuses = vec![PartnerStatus::Available];
        q.active = Some(true);
        assert_eq!(s.candidates(&q), Some(vec![3, 6]));
        q.active = Some(false);
        assert_eq!(s.candidates(&q), Some(vec![5]));
    }

    #[test]
    fn kinds_add_their_own_conditions() {
        let s = snapshot();
        let available = query(ListKind::Available, "harb");
        assert_eq!(s.candidates(&available), Some(vec![3, 1, 6]));
        let mut coming = query(ListKind::Available, "harb");
        coming.statuses = vec![PartnerStatus::ComingSoon, PartnerStatus::Unavailable];
        assert_eq!(s.candidates(&coming), Some(vec![1]));
        coming.active = Some(false);
        assert_eq!(s.candidates(&coming), Some(vec![]));
        assert_eq!(
            s.candidates(&query(ListKind::Wholesalers, "harb")),
            Some(vec![1])
        );
    }

    #[test]
    fn leaves_what_it_cannot_answer_to_sql() {
        let s = snapshot();
        assert_eq!(
            s.candidates(&ListQuery::new(ListKind::All, Scope::default(), 1, 25)),
            None
        );
        assert_eq!(
            s.candidates(&query(ListKind::All, "härbor")),
            None,
            "non-ASCII term"
        );
        let mut q = query(ListKind::All, "harb");
        q.sort = vec![(SortField::Clicks, true)];
        assert_eq!(s.candidates(&q), None);
        q.sort = vec![(SortField::Name, true)];
        assert_eq!(
            s.candidates(&q),
            None,
            "descending names tie-break on ascending ids"
        );
        q.sort = vec![(SortField::Name, false)];
        assert_eq!(s.candidates(&q), Some(vec![3, 1, 5, 4, 6]));

        let many = View::new(
            Snapshot::from_rows(
                1,
                (0..=MAX_CANDIDATES as i64)
                    .map(|i| row(i + 1, "same", &["pos"], &["DE"], "available")),
            )
            .expect("snapshot"),
        );
        assert_eq!(many.candidates(&query(ListKind::All, "same")), None);
        let mut fewer = query(ListKind::All, "same");
        fewer.active = Some(false);
        assert_eq!(
            many.candidates(&fewer).map(|ids| ids.len()),
            Some(MAX_CANDIDATES / 5)
        );
    }
}
