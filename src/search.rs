//! The search index: an in-memory copy of what lists filter and search on (each live partner's
//! lowered name, categories, wholesaler categories, country codes, status and active flag, in
//! the lists' `name, id` order). It serves two kinds of list:
//!
//! - With a search term, the copy finds the matching partners (byte-trigram posting lists, then
//!   the term in each name) instead of the trigram index and a recheck of every match's heap
//!   row. The matches are ordered by the business's preference and cut to the page here, with
//!   the business's preferred partners from `crate::preferences`; Postgres only joins the
//!   page's rows with their context ([`partner::known_page_sql`]). For a business with more
//!   preferences than that cache holds, Postgres orders and pages the matches
//!   ([`partner::candidates_page_sql`]).
//! - Without one, the copy finds the list's matches (once per snapshot and filter). In list
//!   order (each list's default, ListPartners' preferred first included, or `name`), it cuts
//!   the page, with the business's cached preferences where they order or filter, and Postgres
//!   joins its rows ([`partner::known_page_sql`]); in other orders Postgres finds the page and
//!   the copy tells the exact total, so no count query runs over tens of thousands of rows
//!   ([`partner::list_page_at`]).
//!
//! Exactness never depends on the copy being fresh. The copy is loaded with the search version
//! it reflects (migration 9: every write to those columns moves the version in its own
//! transaction), and the page statement answers only if its own snapshot is still at that
//! version (and at the preference version of the business's cached set, migration 10).
//! Otherwise (another process or call changed a partner), the call takes the SQL path of
//! [`partner::list`] and the copy is reloaded in the background (pausing between loads, see
//! [`MIN_RELOAD_INTERVAL`]). The SQL path also serves whatever the copy does not cover: a term
//! that is not ASCII (the copy lowers terms itself), a search in an order other than the default
//! or `name`, more than [`MAX_CANDIDATES`] matches, an unsearched list filtered on the
//! preference in another order, and the lists of a business with more preferences than
//! `crate::preferences` holds, where the preference decides.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::pg::PgRowByRowLoadingMode;
use diesel::prelude::*;
use memchr::memmem;
use tokio::sync::{Notify, watch};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::partner::{self, ListKind, ListQuery, PartnerRecord, SearchRow, SortField};
use crate::preferences::{PreferenceCache, Preferred};

/// Most matches of a search the copy orders and pages; beyond it the SQL path is used.
pub const MAX_CANDIDATES: usize = 5_000;

/// Shortest time between two loads of the copy (writes in bursts reload it once). After a load
/// the loader also waits [`RELOAD_PAUSE_FACTOR`] times as long as the load took, so frequent
/// writes cost at most a tenth of a core in reloads (lists take the SQL path meanwhile).
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// See [`MIN_RELOAD_INTERVAL`].
pub const RELOAD_PAUSE_FACTOR: u32 = 10;

/// How long the loader waits before it counts the partners again, when there were more than the
/// index may hold (`--search-index-max-partners`): meanwhile lists are served by SQL alone.
pub const TOO_BIG_PAUSE: Duration = Duration::from_secs(60);

/// The partners' searchable columns at one search version.
pub struct Snapshot {
    version: i64,
    /// Whether `lower()` of this database maps `A`–`Z` to `a`–`z` (then an ASCII term lowered
    /// here matches as Postgres would lower it).
    ascii_lower: bool,
    /// Each partner's `lower(name)` followed by a NUL (which Postgres text never contains, so a
    /// match never spans two names), in list order.
    names: Vec<u8>,
    /// Where each partner's name starts in `names`.
    starts: Vec<u32>,
    /// Every byte trigram of the names, sorted; the positions (in list order) of the partners
    /// whose name holds `trigrams[k]` are `postings[trigram_ends[k - 1]..trigram_ends[k]]`. A
    /// term of three bytes or more is looked for only in the names holding all its trigrams.
    trigrams: Vec<u32>,
    trigram_ends: Vec<u32>,
    postings: Vec<u32>,
    partners: Vec<Entry>,
    /// `(id, position)` of every partner, by id.
    by_id: Vec<(i64, u32)>,
    /// Interned values of every partner's arrays (see [`Entry::arrays`]).
    values: Vec<u32>,
    dictionary: HashMap<String, u32>,
    /// The matches (positions, in list order) of the unsearched lists asked for so far (see
    /// [`Snapshot::matches`]).
    matches: Mutex<Matches>,
}

/// See [`Snapshot::matches`].
#[derive(Default)]
struct Matches {
    by_key: HashMap<CountKey, Arc<Vec<u32>>>,
    /// The indices (into the matches of a key) of a business's preferred partners, by key and
    /// preference version (versions are unique over all businesses: migration 10).
    preferred: HashMap<(CountKey, i64), Arc<Vec<usize>>>,
    /// Positions and indices held over all keys.
    held: usize,
}

impl Matches {
    /// Makes room for `n` more held values (drops everything when they would not fit).
    fn room_for(&mut self, n: usize) {
        if self.by_key.len() + self.preferred.len() >= MAX_COUNTS
            || self.held + n > MAX_HELD_MATCHES
        {
            self.by_key.clear();
            self.preferred.clear();
            self.held = 0;
        }
        self.held += n;
    }
}

/// A list's kind and filters (categories, excluded categories, wholesaler categories, country
/// codes, statuses; active), as the key of a count.
type CountKey = (ListKind, [Vec<String>; 5], Option<bool>);

/// Most filters whose matches are kept per snapshot (all are dropped when it is reached).
const MAX_COUNTS: usize = 4096;

/// Most match positions kept per snapshot over all filters (4 bytes each; all are dropped when a
/// new filter's matches would pass it).
const MAX_HELD_MATCHES: usize = 2_000_000;

struct Entry {
    id: i64,
    /// Offsets in [`Snapshot::values`]: categories `[0]..[1]`, wholesaler categories
    /// `[1]..[2]`, country codes `[2]..[3]`.
    arrays: [u32; 4],
    status: u32,
    active: bool,
}

/// A list filter's values, interned. `None` = not filtering; a value this snapshot never saw
/// matches no partner.
type Wanted = Option<Vec<u32>>;

struct Filter {
    categories: Wanted,
    excluded_categories: Vec<u32>,
    wholesaler_categories: Wanted,
    country_codes: Wanted,
    statuses: Wanted,
    active: Option<bool>,
    /// A category that must be there (`wholesaler`, for ListWholesalers), as a one-value
    /// "any of".
    required_category: Wanted,
}

impl Snapshot {
    /// Reads the copy from the database in one snapshot (with the version it reflects).
    pub fn load(conn: &mut PgConnection) -> Result<Snapshot> {
        conn.build_transaction()
            .read_only()
            .repeatable_read()
            .run(|conn| {
                let version = partner::search_version(conn)?.ok_or_else(|| {
                    Error::Internal("search index: partner_search_state has no row".into())
                })?;
                #[derive(QueryableByName)]
                struct Flag {
                    #[diesel(sql_type = diesel::sql_types::Bool)]
                    v: bool,
                }
                let ascii_lower = diesel::sql_query(
                    "SELECT lower('ABCDEFGHIJKLMNOPQRSTUVWXYZ') = 'abcdefghijklmnopqrstuvwxyz' AS v",
                )
                .get_result::<Flag>(conn)?
                .v;
                // Sorted in memory, and streamed a row at a time (no result set of every
                // partner in the client's memory).
                conn.batch_execute("SET LOCAL work_mem = '64MB'")?;
                let rows = partner::search_rows_sql()
                    .into_query()
                    .load_iter::<SearchRow, PgRowByRowLoadingMode>(conn)?;
                Snapshot::build(version, ascii_lower, rows.map(|row| row.map_err(Error::from)))
            })
    }

    /// Builds a snapshot from rows already in list order (for tests).
    #[cfg(test)]
    fn from_rows(version: i64, rows: impl IntoIterator<Item = SearchRow>) -> Result<Snapshot> {
        Snapshot::build(version, true, rows.into_iter().map(Ok))
    }

    fn build(
        version: i64,
        ascii_lower: bool,
        rows: impl IntoIterator<Item = Result<SearchRow>>,
    ) -> Result<Snapshot> {
        let mut snapshot = Snapshot {
            version,
            ascii_lower,
            names: Vec::new(),
            starts: Vec::new(),
            trigrams: Vec::new(),
            trigram_ends: Vec::new(),
            postings: Vec::new(),
            partners: Vec::new(),
            by_id: Vec::new(),
            values: Vec::new(),
            dictionary: HashMap::new(),
            matches: Mutex::default(),
        };
        // `(trigram << 32) | position` of every name, turned into the lists once all are in.
        let mut pairs = Vec::new();
        for row in rows {
            snapshot.push(row?, &mut pairs)?;
        }
        snapshot.finish(pairs);
        Ok(snapshot)
    }

    /// Builds the trigram lists from the pairs gathered by [`Snapshot::push`].
    fn finish(&mut self, mut pairs: Vec<u64>) {
        pairs.sort_unstable();
        pairs.dedup(); // a trigram twice in one name
        self.postings = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let (key, position) = ((pair >> 32) as u32, pair as u32);
            if self.trigrams.last() != Some(&key) {
                if !self.trigrams.is_empty() {
                    self.trigram_ends.push(self.postings.len() as u32);
                }
                self.trigrams.push(key);
            }
            self.postings.push(position);
        }
        if !self.trigrams.is_empty() {
            self.trigram_ends.push(self.postings.len() as u32);
        }
        self.by_id = (0u32..)
            .zip(&self.partners)
            .map(|(position, e)| (e.id, position))
            .collect();
        self.by_id.sort_unstable();
        self.names.shrink_to_fit();
        self.values.shrink_to_fit();
        self.partners.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.trigrams.shrink_to_fit();
        self.trigram_ends.shrink_to_fit();
    }

    /// Positions of the partners whose name holds `key`, in list order.
    fn postings_of(&self, key: u32) -> Option<&[u32]> {
        let k = self.trigrams.binary_search(&key).ok()?;
        let start = if k == 0 { 0 } else { self.trigram_ends[k - 1] };
        Some(&self.postings[start as usize..self.trigram_ends[k] as usize])
    }

    fn push(&mut self, row: SearchRow, pairs: &mut Vec<u64>) -> Result<()> {
        let too_big = || Error::Internal("search index: more than 4 GiB of names".into());
        let start = u32::try_from(self.names.len()).map_err(|_| too_big())?;
        let position = u64::from(self.partners.len() as u32);
        pairs.extend(
            row.lower_name
                .as_bytes()
                .windows(3)
                .map(|w| u64::from(trigram(w)) << 32 | position),
        );
        self.names.extend_from_slice(row.lower_name.as_bytes());
        self.names.push(0);
        u32::try_from(self.names.len()).map_err(|_| too_big())?;
        self.starts.push(start);
        let mut arrays = [0u32; 4];
        arrays[0] = self.values.len() as u32;
        for (i, list) in [row.categories, row.wholesaler_categories, row.country_codes]
            .into_iter()
            .enumerate()
        {
            for value in list {
                let id = self.intern(value);
                self.values.push(id);
            }
            arrays[i + 1] = self.values.len() as u32;
        }
        let status = self.intern(row.status);
        self.partners.push(Entry {
            id: row.id,
            arrays,
            status,
            active: row.active,
        });
        Ok(())
    }

    fn intern(&mut self, value: String) -> u32 {
        let next = self.dictionary.len() as u32;
        *self.dictionary.entry(value).or_insert(next)
    }

    /// The search version this copy reflects.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Live partners in the copy.
    pub fn len(&self) -> usize {
        self.partners.len()
    }

    /// Whether the copy holds no partner.
    pub fn is_empty(&self) -> bool {
        self.partners.is_empty()
    }

    /// Bytes held by the copy (approximately).
    pub fn heap_bytes(&self) -> usize {
        self.names.capacity()
            + self.starts.capacity() * 4
            + (self.trigrams.capacity() + self.trigram_ends.capacity() + self.postings.capacity())
                * 4
            + self.values.capacity() * 4
            + self.partners.capacity() * std::mem::size_of::<Entry>()
            + self.by_id.capacity() * std::mem::size_of::<(i64, u32)>()
            + self.dictionary.keys().map(|k| k.len() + 32).sum::<usize>()
    }

    /// How many partners match `q`'s kind and filters, for a list without a search term or a
    /// preference filter (`None` otherwise). Counted once per snapshot and filter.
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
        let id = |index: usize| self.partners[matches[index] as usize].id;
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
                Self::others(&chosen, matches.len(), from, per_page)
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
                    .chain(Self::others(&chosen, matches.len(), skip, rest).map(id))
                    .collect();
                (matches.len(), ids)
            }
        };
        Some((ids, total as i64))
    }

    /// The indices into `matches` (those of `q`'s filters) of the partners in `preferred`,
    /// ascending; found once per snapshot, filters and preference version.
    fn preferred_indices(
        &self,
        q: &ListQuery,
        matches: &[u32],
        preferred: Option<&Preferred>,
    ) -> Arc<Vec<usize>> {
        let Some(preferred) = preferred else {
            return Arc::default();
        };
        let key = (count_key(q), preferred.version);
        if let Some(found) = self.lock_matches().preferred.get(&key) {
            return found.clone();
        }
        let mut indices: Vec<usize> = preferred
            .ids()
            .iter()
            .filter_map(|id| {
                let at = self.by_id.binary_search_by_key(id, |&(id, _)| id).ok()?;
                matches.binary_search(&self.by_id[at].1).ok()
            })
            .collect();
        indices.sort_unstable();
        let indices = Arc::new(indices);
        let mut cached = self.lock_matches();
        cached.room_for(indices.len());
        cached.preferred.insert(key, indices.clone());
        indices
    }

    fn lock_matches(&self) -> std::sync::MutexGuard<'_, Matches> {
        self.matches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `take` indices into a list of `len` matches that are not in `chosen` (ascending), skipping
    /// the first `skip` of them.
    fn others(
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

    /// The positions (in list order) of the partners matching `q`'s kind and filters, the
    /// preference aside, for a list without a search term (`None` otherwise). Found once per
    /// snapshot and filter, within [`MAX_COUNTS`] filters and [`MAX_HELD_MATCHES`] positions.
    fn matches(&self, q: &ListQuery) -> Option<Arc<Vec<u32>>> {
        if q.search.is_some() {
            return None;
        }
        let key = count_key(q);
        let mut matches = self.lock_matches();
        if let Some(found) = matches.by_key.get(&key) {
            return Some(found.clone());
        }
        let filter = self.filter(q);
        let found: Arc<Vec<u32>> = Arc::new(
            (0u32..)
                .zip(&self.partners)
                .filter(|(_, entry)| filter.matches(self, entry))
                .map(|(position, _)| position)
                .collect(),
        );
        matches.room_for(found.len());
        matches.by_key.insert(key, found.clone());
        Some(found)
    }

    /// Ids of every partner matching `q`'s kind, filters and search (the preference aside), in
    /// list order; `None` when the copy cannot answer `q` (see the module docs).
    pub fn candidates(&self, q: &ListQuery) -> Option<Vec<i64>> {
        let search = q.search.as_deref()?;
        let ordered = q.sort.is_empty() || q.sort == [(SortField::Name, false)];
        if !ordered || !self.ascii_lower || !search.is_ascii() || search.is_empty() {
            return None;
        }
        let needle = search.to_ascii_lowercase();
        let finder = memmem::Finder::new(needle.as_bytes());
        let filter = self.filter(q);
        let mut found = Vec::new();
        let mut keep = |position: usize| {
            if !filter.matches(self, &self.partners[position]) {
                return true;
            }
            if found.len() == MAX_CANDIDATES {
                return false;
            }
            found.push(self.partners[position].id);
            true
        };
        if needle.len() >= 3 {
            // The names holding every trigram of the term, then the term itself in each.
            for position in self.holding_trigrams_of(needle.as_bytes()) {
                let position = position as usize;
                if finder.find(self.name(position)).is_some() && !keep(position) {
                    return None;
                }
            }
        } else {
            // Too short for trigrams: one scan of all names, each match once.
            let (mut from, mut first) = (0, 0);
            while let Some(offset) = finder.find(&self.names[from..]) {
                let at = from + offset;
                let position = first + gallop(&self.starts[first..], |s| s as usize <= at) - 1;
                if !keep(position) {
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
    fn name(&self, position: usize) -> &[u8] {
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

    fn filter(&self, q: &ListQuery) -> Filter {
        let wanted = |values: &[String]| -> Wanted {
            if values.is_empty() {
                return None;
            }
            Some(
                values
                    .iter()
                    .filter_map(|v| self.dictionary.get(v).copied())
                    .collect(),
            )
        };
        let mut statuses = wanted(&q.statuses);
        let mut active = q.active;
        let mut required_category = None;
        match q.kind {
            ListKind::All => {}
            ListKind::Available => {
                // active AND status IN (available, coming_soon), on top of the request's own
                let open =
                    wanted(&["available".to_owned(), "coming_soon".to_owned()]).unwrap_or_default();
                statuses = Some(match statuses {
                    Some(asked) => asked.into_iter().filter(|s| open.contains(s)).collect(),
                    None => open,
                });
                if active == Some(false) {
                    statuses = Some(Vec::new());
                }
                active = Some(true);
            }
            ListKind::Wholesalers => {
                required_category = wanted(&["wholesaler".to_owned()]);
            }
        }
        Filter {
            categories: wanted(&q.categories),
            excluded_categories: wanted(&q.excluded_categories).unwrap_or_default(),
            wholesaler_categories: wanted(&q.wholesaler_categories),
            country_codes: wanted(&q.country_codes),
            statuses,
            active,
            required_category,
        }
    }

    fn array(&self, entry: &Entry, which: usize) -> &[u32] {
        &self.values[entry.arrays[which] as usize..entry.arrays[which + 1] as usize]
    }
}

impl Filter {
    fn matches(&self, snapshot: &Snapshot, entry: &Entry) -> bool {
        let any = |wanted: &Wanted, have: &[u32]| match wanted {
            None => true,
            Some(wanted) => have.iter().any(|v| wanted.contains(v)),
        };
        let categories = snapshot.array(entry, 0);
        self.active.is_none_or(|a| a == entry.active)
            && self
                .statuses
                .as_ref()
                .is_none_or(|s| s.contains(&entry.status))
            && any(&self.categories, categories)
            && any(&self.required_category, categories)
            && !categories
                .iter()
                .any(|c| self.excluded_categories.contains(c))
            && any(&self.wholesaler_categories, snapshot.array(entry, 1))
            && any(&self.country_codes, snapshot.array(entry, 2))
    }
}

/// The kind and filters of `q`, the preference aside.
fn count_key(q: &ListQuery) -> CountKey {
    (
        q.kind,
        [
            q.categories.clone(),
            q.excluded_categories.clone(),
            q.wholesaler_categories.clone(),
            q.country_codes.clone(),
            q.statuses.clone(),
        ],
        q.active,
    )
}

/// Whether `q` has no search term and the list order (the default order, or `name` ascending):
/// then [`Snapshot::page`] cuts its page.
fn in_list_order(q: &ListQuery) -> bool {
    q.search.is_none() && (q.sort.is_empty() || q.sort == [(SortField::Name, false)])
}

/// A byte trigram as a number.
fn trigram(bytes: &[u8]) -> u32 {
    u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2])
}

/// How many leading values of `sorted` satisfy `below` (true for a prefix), found by an
/// exponential search from the start: cheaper than a binary search over all when the answer is
/// near the start, as it is for the in-order walks above.
fn gallop(sorted: &[u32], below: impl Fn(u32) -> bool) -> usize {
    let mut bound = 1;
    while bound < sorted.len() && below(sorted[bound]) {
        bound *= 2;
    }
    let low = bound / 2;
    let high = bound.min(sorted.len());
    low + sorted[low..high].partition_point(|&v| below(v))
}

/// How many lists the index answered, and how many it handed to the SQL path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Lists answered from the copy.
    pub served: u64,
    /// Lists that took the SQL path (copy missing, stale or not covering them).
    pub fell_back: u64,
    /// Loads of the copy.
    pub loads: u64,
    /// Loads of a business's preferred partners (see `crate::preferences`).
    pub preference_loads: u64,
}

struct Inner {
    enabled: bool,
    max_partners: u64,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Told when the copy is missing or stale.
    wanted: Notify,
    served: AtomicU64,
    fell_back: AtomicU64,
    loads: AtomicU64,
    /// The businesses' preferred partners, for the pages of searches.
    preferences: PreferenceCache,
    /// Finished load attempts (successful or not).
    attempts: watch::Sender<u64>,
}

/// Handle to the search index; cheap to clone.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

impl SearchIndex {
    /// Starts the index for at most `max_partners` live partners (0 = off: every list takes the
    /// SQL path). Its first load runs in the background; lists take the SQL path until it is
    /// there (see [`SearchIndex::ready`]).
    pub fn start(db: Db, max_partners: u64) -> SearchIndex {
        let enabled = max_partners > 0;
        let inner = Arc::new(Inner {
            enabled,
            max_partners,
            current: RwLock::new(None),
            wanted: Notify::new(),
            served: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            preferences: PreferenceCache::default(),
            attempts: watch::Sender::new(0),
        });
        if enabled {
            inner.wanted.notify_one();
            tokio::spawn(loader(db, inner.clone()));
        }
        SearchIndex { inner }
    }

    /// Waits until the first load has been tried (loaded, or failed: then lists use SQL until a
    /// later load succeeds), at most `limit`. Returns whether a copy is loaded.
    pub async fn ready(&self, limit: Duration) -> bool {
        if self.inner.enabled {
            let mut attempts = self.inner.attempts.subscribe();
            let _ = tokio::time::timeout(limit, attempts.wait_for(|n| *n > 0)).await;
        }
        self.version().is_some()
    }

    /// Counters since start.
    pub fn stats(&self) -> SearchStats {
        SearchStats {
            served: self.inner.served.load(Ordering::Relaxed),
            fell_back: self.inner.fell_back.load(Ordering::Relaxed),
            loads: self.inner.loads.load(Ordering::Relaxed),
            preference_loads: self.inner.preferences.loads(),
        }
    }

    /// The version of the loaded copy, if any.
    pub fn version(&self) -> Option<i64> {
        self.snapshot().map(|s| s.version)
    }

    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Forgets the copy at `version` (the database moved on) and asks for a new one.
    fn stale(&self, version: i64) {
        let mut current = self
            .inner
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if current.as_ref().is_some_and(|s| s.version == version) {
            *current = None;
        }
        drop(current);
        self.inner.wanted.notify_one();
    }

    /// Runs a list (on the caller's connection, in its blocking thread): from the copy when it
    /// covers `q` and is current in the page statement's snapshot, otherwise by [`partner::list`].
    pub fn list(
        &self,
        conn: &mut PgConnection,
        q: &ListQuery,
    ) -> Result<(Vec<PartnerRecord>, i64)> {
        if !self.inner.enabled {
            return Ok(partner::list(conn, q)?);
        }
        match self.snapshot() {
            None => self.inner.wanted.notify_one(),
            Some(snapshot) => {
                if let Some(answer) = self.answer_with(conn, q, &snapshot)? {
                    self.inner.served.fetch_add(1, Ordering::Relaxed);
                    return Ok(answer);
                }
            }
        }
        self.inner.fell_back.fetch_add(1, Ordering::Relaxed);
        Ok(partner::list(conn, q)?)
    }

    /// The list answered with the copy's help, or `None` for the SQL path. A guarded statement
    /// that returns no row is followed by a look at the version: if the database is still at the
    /// copy's version now, it was when the statement ran (versions only grow), so the empty
    /// page is the truth; otherwise the copy is stale.
    fn answer_with(
        &self,
        conn: &mut PgConnection,
        q: &ListQuery,
        snapshot: &Snapshot,
    ) -> Result<Option<(Vec<PartnerRecord>, i64)>> {
        let current = |conn: &mut PgConnection| -> Result<bool> {
            let current = partner::search_version(conn)? == Some(snapshot.version);
            if !current {
                self.stale(snapshot.version);
            }
            Ok(current)
        };
        let candidates = snapshot.candidates(q);
        if candidates.is_some() || in_list_order(q) {
            // The copy has the matches: with the business's preferences at hand (or none
            // needed), the page is ordered and cut here and Postgres joins its rows.
            let business = q
                .scope
                .business_id
                .filter(|_| partner::preference_decides(q));
            let preferred = match business {
                Some(business) => self.inner.preferences.get(conn, business)?,
                None => None,
            };
            if business.is_none() || preferred.as_ref().is_some_and(|p| p.complete()) {
                let cut = |preferred: Option<&Preferred>| match &candidates {
                    Some(ids) => arrange(q, ids, preferred),
                    None => snapshot.page(q, preferred).unwrap_or_default(),
                };
                return self.known_page(conn, q, snapshot, business.zip(preferred), cut);
            }
        }
        if let Some(ids) = candidates {
            // Too many preferences to hold: Postgres orders and pages the matches.
            if !ids.is_empty()
                && let Some(answer) = partner::list_candidates(conn, q, &ids, snapshot.version)?
            {
                return Ok(Some(answer));
            }
            // Nothing at all matches, or an empty first page: the total is 0. The total of an
            // empty later page (under a preference filter) is the SQL path's to tell.
            let empty = ids.is_empty() || q.page == 1;
            return Ok((current(conn)? && empty).then(|| (Vec::new(), 0)));
        }
        if let Some(total) = snapshot.count(q) {
            // No search: Postgres finds the page, the copy knows the total (no count query).
            let total = total as i64;
            let rows = partner::list_page_at(conn, q, snapshot.version)?;
            if !rows.is_empty() || current(conn)? {
                return Ok(Some((rows, total)));
            }
        }
        Ok(None)
    }
}

impl SearchIndex {
    /// A page cut here: `cut` gives the page's ids and the total from the business's cached
    /// preferences (`business`: its id and set, when the preference decides), and
    /// [`partner::list_known_page`] joins the rows, answering only while the search version and
    /// the set's preference version both hold. When the set moved, it is loaded again and the
    /// page cut once more; when the search version moved, the SQL path answers (`None`).
    fn known_page(
        &self,
        conn: &mut PgConnection,
        q: &ListQuery,
        snapshot: &Snapshot,
        mut business: Option<(i64, Arc<Preferred>)>,
        cut: impl Fn(Option<&Preferred>) -> (Vec<i64>, i64),
    ) -> Result<Option<(Vec<PartnerRecord>, i64)>> {
        for _ in 0..2 {
            let (page_ids, total) = cut(business.as_ref().map(|(_, p)| &**p));
            let guard = business.as_ref().map(|(b, p)| (*b, p.version));
            if !page_ids.is_empty() {
                let rows = partner::list_known_page(conn, q, &page_ids, snapshot.version, guard)?;
                if !rows.is_empty() {
                    debug_assert_eq!(rows.len(), page_ids.len());
                    return Ok(Some((rows, total)));
                }
            }
            // No row: a version moved, or the page lies past the end.
            let now = partner::versions(conn, guard.map(|(b, _)| b))?;
            if now.search != Some(snapshot.version) {
                self.stale(snapshot.version);
                return Ok(None);
            }
            match guard {
                Some((b, version)) if now.preferences != Some(version) => {
                    self.inner.preferences.forget(b, version);
                    let reloaded = self.inner.preferences.get(conn, b)?;
                    business = match reloaded {
                        Some(p) if p.complete() => Some((b, p)),
                        _ => return Ok(None),
                    };
                }
                // Both versions hold: the page is empty (rows for it would have come back).
                _ => return Ok(page_ids.is_empty().then(|| (Vec::new(), total))),
            }
        }
        Ok(None)
    }
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
fn page_range(q: &ListQuery, len: usize) -> std::ops::Range<usize> {
    let per_page = usize::try_from(q.per_page).unwrap_or(0);
    let from = usize::try_from((q.page - 1).saturating_mul(q.per_page))
        .unwrap_or(usize::MAX)
        .min(len);
    from..from.saturating_add(per_page).min(len)
}

enum Load {
    /// The copy held is current (asked again meanwhile).
    Current,
    Loaded(Box<Snapshot>),
    /// More live partners than the index may hold.
    TooBig(i64),
}

/// Loads the copy whenever asked and the database has moved past it, with the pauses of
/// [`MIN_RELOAD_INTERVAL`] and [`TOO_BIG_PAUSE`].
async fn loader(db: Db, inner: Arc<Inner>) {
    let limit = i64::try_from(inner.max_partners).unwrap_or(i64::MAX);
    loop {
        inner.wanted.notified().await;
        let started = Instant::now();
        let held = inner
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.version);
        let loaded = db
            .run(move |conn| {
                if held.is_some() && held == partner::search_version(conn)? {
                    return Ok(Load::Current);
                }
                let live = partner::live_count(conn)?;
                if live > limit {
                    return Ok(Load::TooBig(live));
                }
                Snapshot::load(conn).map(|s| Load::Loaded(Box::new(s)))
            })
            .await;
        let mut pause = MIN_RELOAD_INTERVAL;
        match loaded {
            Ok(Load::Current) => {}
            Ok(Load::TooBig(live)) => {
                tracing::warn!(
                    partners = live,
                    limit,
                    "search index: more partners than it may hold, lists use SQL"
                );
                pause = TOO_BIG_PAUSE;
            }
            Ok(Load::Loaded(snapshot)) => {
                pause = pause.max(started.elapsed() * RELOAD_PAUSE_FACTOR);
                tracing::info!(
                    partners = snapshot.len(),
                    version = snapshot.version,
                    mib = format!("{:.1}", snapshot.heap_bytes() as f64 / 1048576.0),
                    ms = started.elapsed().as_millis() as u64,
                    "search index loaded"
                );
                inner.loads.fetch_add(1, Ordering::Relaxed);
                *inner.current.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(Arc::from(snapshot));
            }
            Err(err) => {
                tracing::warn!(error.message = %err, "search index: load failed, lists use SQL");
            }
        }
        inner.attempts.send_modify(|n| *n += 1);
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::partner::Scope;

    fn row(
        id: i64,
        name: &str,
        categories: &[&str],
        countries: &[&str],
        status: &str,
    ) -> SearchRow {
        let v = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        SearchRow {
            id,
            lower_name: name.to_lowercase(),
            categories: v(categories),
            wholesaler_categories: if categories.contains(&"wholesaler") {
                v(&["produce"])
            } else {
                Vec::new()
            },
            country_codes: v(countries),
            status: status.to_owned(),
            active: id % 5 != 0,
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot::from_rows(
            7,
            vec![
                row(3, "Alpha Harbor", &["pos"], &["DE"], "available"),
                row(
                    1,
                    "Harbor Foods",
                    &["wholesaler", "pos"],
                    &["AT", "DE"],
                    "coming_soon",
                ),
                row(5, "harbor harbor", &["payments"], &["DE"], "available"),
                row(2, "Portside", &["pos"], &["DE"], "available"),
                row(4, "Zed Harbour", &["pos"], &["FR"], "unavailable"),
                row(6, "100% Harb", &["accounting"], &[], "available"),
            ],
        )
        .expect("snapshot")
    }

    fn query(kind: ListKind, search: &str) -> ListQuery {
        let mut q = ListQuery::new(kind, Scope::default(), 1, 25);
        q.search = Some(search.to_owned());
        q
    }

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
        let s = Snapshot::from_rows(1, rows).expect("snapshot");
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
        q.statuses = vec!["available".into()];
        q.active = Some(true);
        assert_eq!(s.candidates(&q), Some(vec![3, 6]));
        q.active = Some(false);
        assert_eq!(s.candidates(&q), Some(vec![5]));
    }

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
        assert_eq!(s.matches.lock().expect("matches").by_key.len(), 4);
        assert_eq!(s.count(&pos), Some(3), "from the cache");
        assert_eq!(s.matches.lock().expect("matches").by_key.len(), 4);
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
    fn kinds_add_their_own_conditions() {
        let s = snapshot();
        let available = query(ListKind::Available, "harb");
        assert_eq!(s.candidates(&available), Some(vec![3, 1, 6]));
        let mut coming = query(ListKind::Available, "harb");
        coming.statuses = vec!["coming_soon".into(), "unavailable".into()];
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

        let many = Snapshot::from_rows(
            1,
            (0..=MAX_CANDIDATES as i64).map(|i| row(i + 1, "same", &["pos"], &["DE"], "available")),
        )
        .expect("snapshot");
        assert_eq!(many.candidates(&query(ListKind::All, "same")), None);
        let mut fewer = query(ListKind::All, "same");
        fewer.active = Some(false);
        assert_eq!(
            many.candidates(&fewer).map(|ids| ids.len()),
            Some(MAX_CANDIDATES / 5)
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
        let in_order: Vec<i64> = s.partners.iter().map(|e| e.id).collect();
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
