//! Pages cut from the copy: the matches of an unsearched list (found once per copy and filter),
//! the exact totals, and the page in the SQL path's order, with the business's preferred
//! partners first where the preference orders the list or filtering on it.

use std::sync::Arc;

use moka::sync::Cache;

use super::copy::Snapshot;
use super::delta::View;
use super::merged::Merged;
use super::preferences::Preferred;
use crate::model::PartnerStatus;
use crate::model::partner::{self, FacetField, Facets, ListKind, ListQuery, SortField};

fn weight<T>(values: &[T]) -> u32 {
    u32::try_from(values.len() + 1).unwrap_or(u32::MAX)
}

/// The matches of the unsearched lists asked for so far in a loaded snapshot: positions (in
/// list order) of the partners matching a list's kind and filters; moka, bounded by the values
/// held. A loaded snapshot never changes, so these stay true while changes are laid over it.
pub(crate) struct Positions {
    by_key: Cache<CountKey, Arc<Vec<u32>>>,
    /// Where a business's preferred partners are among a list's positions (indices into them,
    /// ascending), by key and preference version: found once per snapshot, so a version of the
    /// copy only walks them ([`Merged::indices_of_kept`]) where it would look up each partner in
    /// the snapshot's million ids and positions again.
    preferred: Cache<(CountKey, i64), Arc<Vec<u32>>>,
}

impl Default for Positions {
    fn default() -> Self {
        Positions {
            by_key: Cache::builder()
                .max_capacity(MAX_HELD_MATCHES)
                .weigher(|_, found: &Arc<Vec<u32>>| weight(found))
                .build(),
            preferred: Cache::builder()
                .max_capacity(MAX_HELD_MATCHES / 2)
                .weigher(|_, found: &Arc<Vec<u32>>| weight(found))
                .build(),
        }
    }
}

/// The matches of the unsearched lists asked for so far in one version of the copy (its
/// snapshot's positions with the changes laid over), as keys in list order ([`Key`]). A clone
/// shares the caches.
#[derive(Clone)]
pub(crate) struct Matches {
    by_key: Cache<CountKey, Arc<Merged>>,
    /// The indices (into the matches of a key) of a business's preferred partners, by key and
    /// preference version (versions are unique over all businesses: migration 10).
    preferred: Cache<(CountKey, i64), Arc<Vec<usize>>>,
    /// The facets of an unsearched list without a preference filter, by key and fields.
    pub(super) facets: Cache<(CountKey, Vec<FacetField>), Arc<Facets>>,
}

impl Default for Matches {
    fn default() -> Self {
        Matches {
            by_key: Cache::builder()
                .max_capacity(MAX_HELD_MATCHES)
                .weigher(|_, found: &Arc<Merged>| {
                    u32::try_from(found.held() + 1).unwrap_or(u32::MAX)
                })
                .build(),
            preferred: Cache::builder()
                .max_capacity(MAX_HELD_MATCHES / 2)
                .weigher(|_, found: &Arc<Vec<usize>>| weight(found))
                .build(),
            facets: Cache::new(MAX_HELD_FACETS),
        }
    }
}

/// A list's kind and filters (categories, excluded categories, wholesaler categories, country
/// codes, statuses; active), as the key of a count.
pub(super) type CountKey = (ListKind, [Vec<String>; 4], Vec<PartnerStatus>, Option<bool>);

/// Most lists' facets kept per version of the copy.
const MAX_HELD_FACETS: u64 = 256;

/// Most match positions kept per snapshot over all filters (4 bytes each; as many keys per
/// version, 8 bytes each, and half as many preferred indices).
const MAX_HELD_MATCHES: u64 = 2_000_000;

impl Snapshot {
    /// The positions (in list order) of the partners matching `q`'s kind and filters, the
    /// preference and the search aside. Found once per snapshot and filter (concurrent first
    /// asks of one filter wait for one scan), within [`MAX_HELD_MATCHES`] positions.
    pub(super) fn positions(&self, q: &ListQuery) -> Arc<Vec<u32>> {
        self.matches.by_key.get_with(count_key(q), || {
            let filter = self.filter(q);
            Arc::new(
                (0u32..)
                    .zip(&self.partners)
                    .filter(|(_, entry)| filter.matches(self, entry))
                    .map(|(position, _)| position)
                    .collect(),
            )
        })
    }
}

impl Snapshot {
    /// The indices into [`Snapshot::positions`] of `q` of the partners in `preferred` (those in
    /// this snapshot), ascending; found once per snapshot, filters and preference version.
    fn preferred_positions(&self, q: &ListQuery, preferred: &Preferred) -> Arc<Vec<u32>> {
        let key = (count_key(q), preferred.version);
        self.matches.preferred.get_with(key, || {
            let positions = self.positions(q);
            let mut indices: Vec<u32> = (preferred.ids().iter())
                .filter_map(|id| self.by_id.binary_search_by_key(id, |&(id, _)| id).ok())
                .filter_map(|at| positions.binary_search(&self.by_id[at].1).ok())
                .map(|index| index as u32)
                .collect();
            indices.sort_unstable();
            Arc::new(indices)
        })
    }
}

impl View {
    /// How many partners match `q`'s kind and filters, for a list without a search term or a
    /// preference filter (`None` otherwise). Counted once per version and filter.
    pub fn count(&self, q: &ListQuery) -> Option<usize> {
        if q.preferred.is_some() {
            return None;
        }
        self.matches(q).map(|m| m.len())
    }

    /// The ids of `q`'s page and the total, for a list without a search term in list order (the
    /// default order, or `name` ascending), as the SQL path would order them: when the preference
    /// orders (ListPartners' default: preferred first) or filters the list, with the business's
    /// set `preferred` (none = no business in context, which prefers nothing). `None` for other
    /// lists.
    pub fn page(&self, q: &ListQuery, preferred: Option<&Preferred>) -> Option<(Vec<i64>, i64)> {
        if !in_list_order(q) {
            return None;
        }
        let matches = self.matches(q)?;
        let id = |index: usize| self.id(matches.get(index));
        if !partner::preference_decides(q) {
            return Some((
                page_range(q, matches.len()).map(id).collect(),
                matches.len() as i64,
            ));
        }
        let per_page = usize::try_from(q.per_page).unwrap_or(0);
        let from = usize::try_from((q.page - 1).saturating_mul(q.per_page)).unwrap_or(usize::MAX);
        // Where the preferred matches are among all matches (ascending indices into `matches`).
        let chosen = self.preferred_indices(q, &matches, preferred);
        let others = matches.len() - chosen.len();
        let (total, ids) = match q.preferred {
            Some(true) => (
                chosen.len(),
                chosen
                    .iter()
                    .skip(from)
                    .take(per_page)
                    .map(|&i| id(i))
                    .collect(),
            ),
            Some(false) => (
                others,
                others_than(&chosen, matches.len(), from, per_page)
                    .map(id)
                    .collect(),
            ),
            // Preferred first, each part in list order.
            None => {
                let first: Vec<i64> = chosen
                    .iter()
                    .skip(from)
                    .take(per_page)
                    .map(|&i| id(i))
                    .collect();
                let rest = per_page - first.len();
                let skip = from.saturating_sub(chosen.len());
                let ids = first
                    .into_iter()
                    .chain(others_than(&chosen, matches.len(), skip, rest).map(id))
                    .collect();
                (matches.len(), ids)
            }
        };
        Some((ids, total as i64))
    }

    /// The indices into `matches` (those of `q`'s filters) of the partners in `preferred`,
    /// ascending; found once per version, filters and preference version.
    fn preferred_indices(
        &self,
        q: &ListQuery,
        matches: &Merged,
        preferred: Option<&Preferred>,
    ) -> Arc<Vec<usize>> {
        let Some(preferred) = preferred else {
            return Arc::default();
        };
        let key = (count_key(q), preferred.version);
        self.matches.preferred.get_with(key, || {
            // The snapshot's preferred matches still there, then the changed ones.
            let kept = self.base.preferred_positions(q, preferred);
            let mut indices = matches.indices_of_kept(&kept);
            let changed = (0..self.delta.entries.len())
                .filter(|&index| preferred.contains(self.delta.entries[index].id))
                .filter_map(|index| matches.index_of(self.delta.entry_key(index)));
            indices.extend(changed);
            indices.sort_unstable();
            Arc::new(indices)
        })
    }

    /// The partners matching `q`'s kind and filters (in list order), the preference aside, for a
    /// list without a search term (`None` otherwise): the snapshot's positions without the
    /// partners changed since, merged with the changed partners that match ([`Merged`]: built in
    /// O(changes) per version, the snapshot's positions found once).
    pub(super) fn matches(&self, q: &ListQuery) -> Option<Arc<Merged>> {
        if q.search.is_some() {
            return None;
        }
        Some(self.matches.by_key.get_with(count_key(q), || {
            let positions = self.base.positions(q);
            let filter = self.filter(q);
            Arc::new(Merged::new(
                positions,
                self.delta.removed_positions(),
                self.delta.matching(&filter).collect(),
            ))
        }))
    }
}

/// `take` indices into a list of `len` matches that are not in `chosen` (ascending), skipping
/// the first `skip` of them.
fn others_than(
    chosen: &[usize],
    len: usize,
    skip: usize,
    take: usize,
) -> impl Iterator<Item = usize> {
    // The index of the `skip`-th match not chosen: the least `i` with `i = skip + (chosen
    // indices ≤ i)` (a fixed point reached from below).
    let mut start = skip;
    loop {
        let next = skip.saturating_add(chosen.partition_point(|&c| c <= start));
        if next == start {
            break;
        }
        start = next;
    }
    let mut pending = chosen.partition_point(|&c| c < start);
    (start..len)
        .filter(move |&i| {
            while pending < chosen.len() && chosen[pending] < i {
                pending += 1;
            }
            chosen.get(pending) != Some(&i)
        })
        .take(take)
}

/// The kind and filters of `q`, the preference aside.
pub(super) fn count_key(q: &ListQuery) -> CountKey {
    (
        q.kind,
        [
            q.categories.clone(),
            q.excluded_categories.clone(),
            q.wholesaler_categories.clone(),
            q.country_codes.clone(),
        ],
        q.statuses.clone(),
        q.active,
    )
}

/// Whether `q` has no search term and the list order (the default order, or `name` ascending):
/// then [`Snapshot::page`] cuts its page.
pub(super) fn in_list_order(q: &ListQuery) -> bool {
    q.search.is_none() && (q.sort.is_empty() || q.sort == [(SortField::Name, false)])
}

/// The ids of `q`'s page among `ids` (every match of the search, in list order) and the
/// total: the preference filter applied and, in the default order, the business's preferred
/// partners first (`preferred`: the business's set when the preference decides; none = no
/// business in context, which prefers nothing), as the SQL path orders them.
pub fn arrange(q: &ListQuery, ids: &[i64], preferred: Option<&Preferred>) -> (Vec<i64>, i64) {
    let prefers = |id: i64| preferred.is_some_and(|p| p.contains(id));
    let kept = ids
        .iter()
        .copied()
        .filter(|&id| q.preferred.is_none_or(|wanted| prefers(id) == wanted));
    let ordered: Vec<i64> = if partner::preferred_first(q) && preferred.is_some() {
        let (first, rest): (Vec<i64>, Vec<i64>) = kept.partition(|&id| prefers(id));
        first.into_iter().chain(rest).collect()
    } else {
        kept.collect()
    };
    (
        ordered[page_range(q, ordered.len())].to_vec(),
        ordered.len() as i64,
    )
}

/// The indices of `q`'s page in a list of `len` entries (empty past the end).
pub(super) fn page_range(q: &ListQuery, len: usize) -> std::ops::Range<usize> {
    let per_page = usize::try_from(q.per_page).unwrap_or(0);
    let from = usize::try_from((q.page - 1).saturating_mul(q.per_page))
        .unwrap_or(usize::MAX)
        .min(len);
    from..from.saturating_add(per_page).min(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::partner::Scope;
    use crate::serving::lists::copy::fixtures::{query, snapshot};

    #[test]
    fn counts_unsearched_lists_once_per_filter() {
        let s = snapshot();
        let all = ListQuery::new(ListKind::All, Scope::default(), 1, 25);
        assert_eq!(s.count(&all), Some(6));
        let mut pos = all.clone();
        pos.categories = vec!["pos".into()];
        pos.country_codes = vec!["DE".into()];
        assert_eq!(s.count(&pos), Some(3));
        assert_eq!(
            s.count(&ListQuery::new(ListKind::Available, Scope::default(), 3, 2)),
            Some(4)
        );
        assert_eq!(
            s.count(&ListQuery::new(
                ListKind::Wholesalers,
                Scope::default(),
                1,
                25
            )),
            Some(1)
        );
        s.matches.by_key.run_pending_tasks();
        assert_eq!(s.matches.by_key.entry_count(), 4);
        assert_eq!(s.count(&pos), Some(3), "from the cache");
        s.matches.by_key.run_pending_tasks();
        assert_eq!(s.matches.by_key.entry_count(), 4);
        let mut preferred = all.clone();
        preferred.preferred = Some(true);
        assert_eq!(
            s.count(&preferred),
            None,
            "the preference is in the database"
        );
        assert_eq!(
            s.count(&query(ListKind::All, "harbor")),
            None,
            "searches are counted by SQL"
        );
    }

    #[test]
    fn arranges_pages_as_the_sql_path_orders_them() {
        let ids = [10, 11, 12, 13, 14, 15];
        let preferred = Preferred::new(1, vec![14, 11, 99]);
        let mut q = ListQuery::new(ListKind::All, Scope::default(), 1, 4);
        // Default order of ListPartners: preferred first, each group in list order.
        assert_eq!(
            arrange(&q, &ids, Some(&preferred)),
            (vec![11, 14, 10, 12], 6)
        );
        q.page = 2;
        assert_eq!(arrange(&q, &ids, Some(&preferred)), (vec![13, 15], 6));
        q.page = 3;
        assert_eq!(arrange(&q, &ids, Some(&preferred)), (vec![], 6));
        q.page = i64::MAX;
        assert_eq!(arrange(&q, &ids, Some(&preferred)), (vec![], 6));
        // No business in context: nothing is preferred.
        q.page = 1;
        assert_eq!(arrange(&q, &ids, None), (vec![10, 11, 12, 13], 6));
        // The preference filter, both ways, and without a business.
        q.preferred = Some(true);
        assert_eq!(arrange(&q, &ids, Some(&preferred)), (vec![11, 14], 2));
        assert_eq!(arrange(&q, &ids, None), (vec![], 0));
        q.preferred = Some(false);
        assert_eq!(
            arrange(&q, &ids, Some(&preferred)),
            (vec![10, 12, 13, 15], 4)
        );
        // An explicit `name` order and the other lists keep list order.
        q.preferred = None;
        q.sort = vec![(SortField::Name, false)];
        assert_eq!(
            arrange(&q, &ids, Some(&preferred)),
            (vec![10, 11, 12, 13], 6)
        );
        let wholesalers = ListQuery::new(ListKind::Wholesalers, Scope::default(), 2, 5);
        assert_eq!(arrange(&wholesalers, &ids, Some(&preferred)), (vec![15], 6));
    }

    #[test]
    fn cuts_unsearched_pages_as_arrange_cuts_the_matches() {
        let s = snapshot();
        let in_order: Vec<i64> = s.base.partners.iter().map(|e| e.id).collect();
        let mut q = ListQuery::new(ListKind::All, Scope::default(), 1, 25);
        let preferred = Preferred::new(1, vec![5, 4, 99]);
        assert_eq!(
            s.page(&q, Some(&preferred)),
            Some((vec![5, 4, 3, 1, 2, 6], 6))
        );
        assert_eq!(s.page(&q, None), Some((in_order.clone(), 6)));
        q.search = Some("harbor".into());
        assert_eq!(
            s.page(&q, None),
            None,
            "searches are cut from their candidates"
        );
        q.search = None;
        q.sort = vec![(SortField::Name, true)];
        assert_eq!(s.page(&q, None), None, "not the list order");
        // Every preferred subset, filter, page size and page: the same cut as `arrange` over
        // all matches in list order.
        for subset in 0u32..64 {
            let ids: Vec<i64> = (0..6)
                .filter(|bit| subset & (1 << bit) != 0)
                .map(|bit| in_order[bit])
                .collect();
            // (Versions are unique, as the database hands them out.)
            let preferred = Preferred::new(100 + i64::from(subset), ids);
            for filter in [None, Some(true), Some(false)] {
                for sort in [vec![], vec![(SortField::Name, false)]] {
                    for (page, per_page) in
                        [(1, 25), (1, 2), (2, 2), (3, 2), (4, 2), (2, 4), (9, 1)]
                    {
                        let mut q = ListQuery::new(ListKind::All, Scope::default(), page, per_page);
                        q.preferred = filter;
                        q.sort = sort.clone();
                        assert_eq!(
                            s.page(&q, Some(&preferred)),
                            Some(arrange(&q, &in_order, Some(&preferred))),
                            "{subset:06b} {filter:?} {sort:?} page {page} of {per_page}"
                        );
                    }
                }
            }
        }
        // Other kinds: their own conditions, in list order, whatever the preference.
        let available = ListQuery::new(ListKind::Available, Scope::default(), 1, 2);
        assert_eq!(s.page(&available, Some(&preferred)), Some((vec![3, 1], 4)));
    }
}
