//! The copy between two full loads: a loaded [`Snapshot`] (never changed once loaded) and the
//! partners changed since, laid over it ([`Delta`]). [`View`] is what the planner reads: one
//! version of the copy, with the search version and the change-log sequence it reflects.
//!
//! A changed partner leaves its place in the snapshot (its position is marked removed) and, if
//! it is live, is held with its new values and its place in list order: the snapshot position of
//! the nearest unchanged partner before it (its anchor), and its rank among the changed partners
//! with the same anchor, as Postgres orders them (the database's collation decides: the copy
//! never compares names itself). A list's matches are the
//! snapshot's positions that were not removed merged with the changed partners that match, by
//! [`Key`]. [`View::apply`] reads a batch of changed partners in the same database snapshot as
//! the log position it moves to; once many partners changed, [`View::compacted`] builds a new
//! snapshot in memory (no database read).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::copy::{Filter, Snapshot};
use super::paging::Matches;
use crate::error::{Error, Result};
use crate::model::PartnerStatus;
use crate::model::partner::{ListQuery, PlacedRow, SearchRow};

/// A partner's place in a version of the copy, in list order: a snapshot position `p` is
/// `(p + 1) << 32`; the changed partner at index `i` of [`Delta::entries`], anchored after
/// position `a`, is `(a + 1) << 32 | (i + 1)` (anchored before every position: `i + 1`). Entries
/// are kept sorted by key, so the index orders the changed partners sharing an anchor.
pub type Key = u64;

const LOW: u64 = 0xffff_ffff;

/// The key of snapshot position `position`.
pub(super) fn base_key(position: u32) -> Key {
    (u64::from(position) + 1) << 32
}

/// Most changed partners laid over a snapshot before the copy is rebuilt in memory: a search
/// scans every changed name (~1 µs per thousand), and a rebuild costs about as much as reading
/// every name once, so a small directory is rebuilt sooner (a sixteenth of it, at least 64).
pub fn compact_after(partners: usize) -> usize {
    (partners / 16).clamp(64, 4096)
}

/// A changed live partner as the copy holds it.
#[derive(Debug, Clone)]
pub(super) struct Changed {
    pub(super) id: i64,
    /// The snapshot position of the nearest unchanged live partner before it in list order
    /// (`None`: none is).
    anchor: Option<u32>,
    pub(super) lower_name: Box<str>,
    /// Interned categories, wholesaler categories and country codes.
    arrays: [Box<[u32]>; 3],
    status: PartnerStatus,
    active: bool,
}

/// The partners changed since a snapshot was loaded.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// Snapshot positions whose partner changed (a bit per position).
    removed: Vec<u64>,
    removed_count: usize,
    /// The changed partners that are live, sorted by key.
    pub(super) entries: Vec<Changed>,
    /// Index in `entries` by partner id.
    by_id: HashMap<i64, u32>,
    /// Every partner changed since the snapshot (live or not).
    changed: HashSet<i64>,
    /// Values the snapshot's dictionary lacks, numbered after it.
    extra_values: HashMap<String, u32>,
}

impl Delta {
    pub(super) fn is_removed(&self, position: u32) -> bool {
        self.removed
            .get(position as usize / 64)
            .is_some_and(|word| word >> (position % 64) & 1 == 1)
    }

    fn remove(&mut self, position: u32) {
        let word = position as usize / 64;
        if self.removed.len() <= word {
            self.removed.resize(word + 1, 0);
        }
        if !self.is_removed(position) {
            self.removed[word] |= 1 << (position % 64);
            self.removed_count += 1;
        }
    }

    /// The snapshot positions whose partner changed, ascending.
    pub(super) fn removed_positions(&self) -> impl Iterator<Item = u32> + '_ {
        (0u32..)
            .zip(&self.removed)
            .filter(|(_, word)| **word != 0)
            .flat_map(|(w, &word)| {
                let mut bits = word;
                std::iter::from_fn(move || {
                    let bit = (bits != 0).then(|| bits.trailing_zeros())?;
                    bits &= bits - 1;
                    Some(w * 64 + bit)
                })
            })
    }

    pub(super) fn entry_key(&self, index: usize) -> Key {
        let anchor = self.entries[index].anchor.map_or(0, |a| u64::from(a) + 1);
        anchor << 32 | (index as u64 + 1)
    }

    /// The keys of the changed partners matching `filter`, ascending.
    pub(super) fn matching<'a>(&'a self, filter: &'a Filter) -> impl Iterator<Item = Key> + 'a {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                let [c, w, cc] = &e.arrays;
                filter.accepts([c, w, cc], e.status, e.active)
            })
            .map(|(index, _)| self.entry_key(index))
    }
}

/// One version of the copy.
pub struct View {
    pub(super) base: Arc<Snapshot>,
    pub(super) delta: Arc<Delta>,
    /// The search version this version reflects (migration 9).
    pub(super) version: i64,
    /// The last change-log sequence applied.
    pub(super) sequence: i64,
    /// Matches of the unsearched lists asked for so far in this version.
    pub(super) matches: Matches,
}

impl View {
    /// A freshly loaded snapshot, nothing laid over it.
    pub fn new(base: Snapshot) -> View {
        View {
            version: base.version,
            sequence: base.sequence,
            base: Arc::new(base),
            delta: Arc::default(),
            matches: Matches::default(),
        }
    }

    /// The search version this copy reflects.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// The last change-log sequence applied.
    pub fn sequence(&self) -> i64 {
        self.sequence
    }

    /// Live partners in the copy.
    pub fn len(&self) -> usize {
        self.base.len() - self.delta.removed_count + self.delta.entries.len()
    }

    /// Whether the copy holds no partner.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Partners changed since the snapshot was loaded.
    pub fn changed(&self) -> usize {
        self.delta.changed.len()
    }

    /// Whether enough partners changed to rebuild the snapshot ([`compact_after`]).
    pub fn due_for_compaction(&self) -> bool {
        self.changed() > compact_after(self.base.len())
    }

    /// Bytes held by the copy (approximately).
    pub fn heap_bytes(&self) -> usize {
        let d = &self.delta;
        self.base.heap_bytes()
            + d.removed.capacity() * 8
            + d.entries
                .iter()
                .map(|e| 64 + e.lower_name.len())
                .sum::<usize>()
            + (d.by_id.capacity() + d.changed.capacity()) * 16
    }

    /// `q`'s kind and filters with the values this version knows.
    pub(super) fn filter(&self, q: &ListQuery) -> Filter {
        Filter::new(q, |v| self.intern(v))
    }

    fn intern(&self, value: &str) -> Option<u32> {
        let base = self.base.dictionary.get(value);
        base.or_else(|| self.delta.extra_values.get(value)).copied()
    }

    /// The partner id at `key`.
    pub(super) fn id(&self, key: Key) -> i64 {
        match key & LOW {
            0 => self.base.partners[(key >> 32) as usize - 1].id,
            index => self.delta.entries[index as usize - 1].id,
        }
    }

    /// The key of partner `id`, if it is live in this version.
    pub(super) fn key_of(&self, id: i64) -> Option<Key> {
        if let Some(&index) = self.delta.by_id.get(&id) {
            return Some(self.delta.entry_key(index as usize));
        }
        if self.delta.changed.contains(&id) {
            return None; // changed and gone
        }
        let at = self
            .base
            .by_id
            .binary_search_by_key(&id, |&(id, _)| id)
            .ok()?;
        Some(base_key(self.base.by_id[at].1))
    }

    /// The interned categories, wholesaler categories and country codes and the status of the
    /// partner at `key`.
    pub(super) fn values(&self, key: Key) -> ([&[u32]; 3], PartnerStatus) {
        match key & LOW {
            0 => {
                let entry = &self.base.partners[(key >> 32) as usize - 1];
                let array = |i| self.base.array(entry, i);
                ([array(0), array(1), array(2)], entry.status)
            }
            index => {
                let e = &self.delta.entries[index as usize - 1];
                let [c, w, cc] = &e.arrays;
                ([&c[..], &w[..], &cc[..]], e.status)
            }
        }
    }

    /// Every interned value's spelling, by number (the snapshot's, then the changes' own).
    pub(super) fn spellings(&self) -> Vec<&str> {
        let mut words = self.base.words();
        words.resize(words.len() + self.delta.extra_values.len(), "");
        for (word, &n) in &self.delta.extra_values {
            words[n as usize] = word;
        }
        words
    }

    /// Whether the partner at `key` passes `filter` and, with a `needle` (a lowered search
    /// term), holds it in its lowered name.
    pub(super) fn holds(&self, key: Key, filter: &Filter, needle: Option<&[u8]>) -> bool {
        let has = |name: &[u8]| needle.is_none_or(|n| memchr::memmem::find(name, n).is_some());
        match key & LOW {
            0 => {
                let position = (key >> 32) as usize - 1;
                filter.matches(&self.base, &self.base.partners[position])
                    && has(self.base.name(position))
            }
            index => {
                let e = &self.delta.entries[index as usize - 1];
                let [c, w, cc] = &e.arrays;
                filter.accepts([c, w, cc], e.status, e.active) && has(e.lower_name.as_bytes())
            }
        }
    }

    /// Snapshot `positions` (ascending) that were not removed, merged with `extra` keys
    /// (ascending) into one list in list order.
    pub(super) fn merge(&self, positions: impl Iterator<Item = u32>, extra: Vec<Key>) -> Vec<Key> {
        let mut merged = Vec::with_capacity(extra.len() + positions.size_hint().0);
        let mut extra = extra.into_iter().peekable();
        for position in positions.filter(|&p| !self.delta.is_removed(p)) {
            let key = base_key(position);
            while let Some(e) = extra.next_if(|&e| e < key) {
                merged.push(e);
            }
            merged.push(key);
        }
        merged.extend(extra);
        merged
    }

    /// This version, unchanged in content, at a later search version and sequence (changes that
    /// left every partner's searchable columns as they were): shares everything, the matches
    /// found so far included.
    pub(super) fn moved_to(&self, version: i64, sequence: i64) -> View {
        View {
            base: self.base.clone(),
            delta: self.delta.clone(),
            version,
            sequence,
            matches: self.matches.clone(),
        }
    }

    /// This version with the partners `ids` changed, as of the database snapshot where the
    /// search version is `version` and the log's last sequence `sequence`: `ids` must hold every
    /// partner a change after [`View::sequence`] names (up to `sequence`), and `rows` the live
    /// ones among them as `partner::placed_rows_sql` reads them in that snapshot (in list order,
    /// each with the live partner right before it).
    ///
    /// Taken in that order, each goes right after that partner: after it in the entries if it is
    /// changed too (placed already, being before it), else first among the entries anchored at
    /// its snapshot position.
    pub(super) fn apply(
        &self,
        ids: &[i64],
        rows: Vec<PlacedRow>,
        version: i64,
        sequence: i64,
    ) -> Result<View> {
        let mut delta = (*self.delta).clone();
        let batch: HashSet<i64> = ids.iter().copied().collect();
        for &id in ids {
            if delta.changed.insert(id)
                && let Ok(at) = self.base.by_id.binary_search_by_key(&id, |&(id, _)| id)
            {
                let position = self.base.by_id[at].1;
                delta.remove(position);
                // The entries anchored at it now follow the nearest position before it that is
                // still there (they stay where they are among the entries).
                let before = (0..position).rev().find(|&p| !delta.is_removed(p));
                for entry in delta
                    .entries
                    .iter_mut()
                    .filter(|e| e.anchor == Some(position))
                {
                    entry.anchor = before;
                }
            }
        }
        delta.entries.retain(|e| !batch.contains(&e.id));
        for placed in rows {
            let index_of = |entries: &[Changed], id: i64| entries.iter().position(|e| e.id == id);
            let (at, anchor) = match placed.after {
                None => (0, None),
                Some(before) => match index_of(&delta.entries, before) {
                    Some(i) => (i + 1, delta.entries[i].anchor),
                    None if delta.changed.contains(&before) => {
                        return Err(Error::Internal(format!(
                            "search index: partner {before} changed but is not held"
                        )));
                    }
                    None => {
                        let at = self
                            .base
                            .by_id
                            .binary_search_by_key(&before, |&(id, _)| id)
                            .map_err(|_| {
                                Error::Internal(format!(
                                    "search index: partner {before} is unchanged since the load but not in it"
                                ))
                            })?;
                        let position = self.base.by_id[at].1;
                        let first = delta
                            .entries
                            .partition_point(|e| e.anchor.is_none_or(|a| a < position));
                        (first, Some(position))
                    }
                },
            };
            let entry = self.changed_entry(&mut delta, placed.partner, anchor);
            delta.entries.insert(at, entry);
        }
        delta.by_id = (0u32..)
            .zip(&delta.entries)
            .map(|(i, e)| (e.id, i))
            .collect();
        Ok(View {
            base: self.base.clone(),
            delta: Arc::new(delta),
            version,
            sequence,
            matches: Matches::default(),
        })
    }

    fn changed_entry(&self, delta: &mut Delta, row: SearchRow, anchor: Option<u32>) -> Changed {
        let mut intern = |value: String| -> u32 {
            if let Some(&n) = self.base.dictionary.get(&value) {
                return n;
            }
            let next = (self.base.dictionary.len() + delta.extra_values.len()) as u32;
            *delta.extra_values.entry(value).or_insert(next)
        };
        let mut list =
            |values: Vec<String>| -> Box<[u32]> { values.into_iter().map(&mut intern).collect() };
        Changed {
            id: row.id,
            anchor,
            lower_name: row.lower_name.into(),
            arrays: [
                list(row.categories),
                list(row.wholesaler_categories),
                list(row.country_codes),
            ],
            status: row.status,
            active: row.active,
        }
    }

    /// This version as a new snapshot, built in memory from the old one and the changes.
    pub(super) fn compacted(&self) -> Result<View> {
        let mut words: Vec<&str> = self.base.words();
        words.resize(words.len() + self.delta.extra_values.len(), "");
        for (word, &n) in &self.delta.extra_values {
            words[n as usize] = word;
        }
        let strings = |values: &[u32]| -> Vec<String> {
            values
                .iter()
                .map(|&v| words[v as usize].to_owned())
                .collect()
        };
        let keys = self.merge(
            0..self.base.partners.len() as u32,
            (0..self.delta.entries.len())
                .map(|i| self.delta.entry_key(i))
                .collect(),
        );
        let rows = keys.into_iter().map(|key| {
            Ok(match key & LOW {
                0 => {
                    let position = (key >> 32) as usize - 1;
                    let e = &self.base.partners[position];
                    SearchRow {
                        id: e.id,
                        lower_name: String::from_utf8_lossy(self.base.name(position)).into_owned(),
                        categories: strings(self.base.array(e, 0)),
                        wholesaler_categories: strings(self.base.array(e, 1)),
                        country_codes: strings(self.base.array(e, 2)),
                        status: e.status,
                        active: e.active,
                    }
                }
                index => {
                    let e = &self.delta.entries[index as usize - 1];
                    SearchRow {
                        id: e.id,
                        lower_name: e.lower_name.to_string(),
                        categories: strings(&e.arrays[0]),
                        wholesaler_categories: strings(&e.arrays[1]),
                        country_codes: strings(&e.arrays[2]),
                        status: e.status,
                        active: e.active,
                    }
                }
            })
        });
        let mut base = Snapshot::build(self.version, self.base.ascii_lower, rows)?;
        base.sequence = self.sequence;
        Ok(View::new(base))
    }
}
