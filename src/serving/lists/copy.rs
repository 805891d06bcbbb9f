//! The lists' in-memory copy: what the lists filter and search on (each live partner's lowered
//! name, categories, wholesaler categories, country codes, status and active flag) in the lists'
//! `name, id` order, loaded in one snapshot with the search version and the change-log position
//! it reflects. A loaded snapshot never changes: the changes made since are laid over it
//! ([`super::delta`]), and [`super::follower`] keeps both current.

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::pg::PgRowByRowLoadingMode;
use diesel::prelude::*;

use super::paging::Positions;
use super::trigram::trigram;
use crate::error::{Error, Result};
use crate::model::partner::{self, ListKind, ListQuery, SearchRow};
use crate::model::{PartnerStatus, change};

/// The partners' searchable columns at one search version.
pub struct Snapshot {
    pub(super) version: i64,
    /// The change-log sequence of the same database snapshot (every change up to it is in).
    pub(super) sequence: i64,
    /// Whether `lower()` of this database maps `A`–`Z` to `a`–`z` (then an ASCII term lowered
    /// here matches as Postgres would lower it).
    pub(super) ascii_lower: bool,
    /// Each partner's `lower(name)` followed by a NUL (which Postgres text never contains, so a
    /// match never spans two names), in list order.
    pub(super) names: Vec<u8>,
    /// Where each partner's name starts in `names`.
    pub(super) starts: Vec<u32>,
    /// Every byte trigram of the names, sorted; the positions (in list order) of the partners
    /// whose name holds `trigrams[k]` are `postings[trigram_ends[k - 1]..trigram_ends[k]]`. A
    /// term of three bytes or more is looked for only in the names holding all its trigrams.
    pub(super) trigrams: Vec<u32>,
    pub(super) trigram_ends: Vec<u32>,
    pub(super) postings: Vec<u32>,
    pub(super) partners: Vec<Entry>,
    /// `(id, position)` of every partner, by id.
    pub(super) by_id: Vec<(i64, u32)>,
    /// Interned values of every partner's arrays (see [`Entry::arrays`]).
    pub(super) values: Vec<u32>,
    pub(super) dictionary: HashMap<String, u32>,
    /// The matches (positions, in list order) of the unsearched lists asked for so far (see
    /// [`Snapshot::positions`]).
    pub(super) matches: Positions,
}

pub(super) struct Entry {
    pub(super) id: i64,
    /// Offsets in [`Snapshot::values`]: categories `[0]..[1]`, wholesaler categories
    /// `[1]..[2]`, country codes `[2]..[3]`.
    pub(super) arrays: [u32; 4],
    pub(super) status: PartnerStatus,
    pub(super) active: bool,
}

/// A list filter's values, interned. `None` = not filtering; a value this snapshot never saw
/// matches no partner.
type Wanted = Option<Vec<u32>>;

pub(super) struct Filter {
    categories: Wanted,
    excluded_categories: Vec<u32>,
    wholesaler_categories: Wanted,
    country_codes: Wanted,
    statuses: Option<Vec<PartnerStatus>>,
    active: Option<bool>,
    /// A category that must be there (`wholesaler`, for ListWholesalers), as a one-value
    /// "any of".
    required_category: Wanted,
}

impl Snapshot {
    /// Reads the copy from the database in one snapshot (with the version and the change-log
    /// position it reflects).
    pub fn load(conn: &mut PgConnection) -> Result<Snapshot> {
        conn.build_transaction()
            .read_only()
            .repeatable_read()
            .run(Snapshot::load_in)
    }

    /// [`Snapshot::load`] on a connection already in a repeatable-read transaction.
    pub fn load_in(conn: &mut PgConnection) -> Result<Snapshot> {
        let log = change::state(conn)?;
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
        // Sorted in memory, and streamed a row at a time (no result set of every partner in
        // the client's memory). A million partners take seconds, longer than the statement
        // timeout meant for calls: this read, in the background, has a minute.
        conn.batch_execute("SET LOCAL work_mem = '64MB'; SET LOCAL statement_timeout = '60s'")?;
        let rows = partner::search_rows_sql()
            .into_query()
            .load_iter::<SearchRow, PgRowByRowLoadingMode>(conn)?;
        let mut snapshot = Snapshot::build(
            log.search_version,
            ascii_lower,
            rows.map(|row| row.map_err(Error::from)),
        )?;
        snapshot.sequence = log.last;
        Ok(snapshot)
    }

    /// Builds a snapshot from rows already in list order (for tests).
    #[cfg(test)]
    pub(super) fn from_rows(
        version: i64,
        rows: impl IntoIterator<Item = SearchRow>,
    ) -> Result<Snapshot> {
        Snapshot::build(version, true, rows.into_iter().map(Ok))
    }

    pub(super) fn build(
        version: i64,
        ascii_lower: bool,
        rows: impl IntoIterator<Item = Result<SearchRow>>,
    ) -> Result<Snapshot> {
        let mut snapshot = Snapshot {
            version,
            sequence: 0,
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
            matches: Positions::default(),
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
        let status = row.status;
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

    /// `q`'s kind and filters with the values this snapshot knows.
    pub(super) fn filter(&self, q: &ListQuery) -> Filter {
        Filter::new(q, |v| self.dictionary.get(v).copied())
    }

    pub(super) fn array(&self, entry: &Entry, which: usize) -> &[u32] {
        &self.values[entry.arrays[which] as usize..entry.arrays[which + 1] as usize]
    }

    /// The interned values' spellings, by number.
    pub(super) fn words(&self) -> Vec<&str> {
        let mut words = vec![""; self.dictionary.len()];
        for (word, &n) in &self.dictionary {
            words[n as usize] = word;
        }
        words
    }
}

impl Filter {
    /// `q`'s kind and filters, with `intern` numbering a value (`None`: never seen, so it
    /// matches no partner).
    pub(super) fn new(q: &ListQuery, intern: impl Fn(&str) -> Option<u32>) -> Filter {
        let wanted = |values: &[String]| -> Wanted {
            if values.is_empty() {
                return None;
            }
            Some(values.iter().filter_map(|v| intern(v)).collect())
        };
        let mut statuses = (!q.statuses.is_empty()).then(|| q.statuses.clone());
        let mut active = q.active;
        let mut required_category = None;
        match q.kind {
            ListKind::All => {}
            ListKind::Available => {
                // active AND status IN (available, coming_soon), on top of the request's own
                let open = [PartnerStatus::Available, PartnerStatus::ComingSoon];
                statuses = Some(match statuses {
                    Some(asked) => asked.into_iter().filter(|s| open.contains(s)).collect(),
                    None => open.to_vec(),
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

    pub(super) fn matches(&self, snapshot: &Snapshot, entry: &Entry) -> bool {
        self.accepts(
            [
                snapshot.array(entry, 0),
                snapshot.array(entry, 1),
                snapshot.array(entry, 2),
            ],
            entry.status,
            entry.active,
        )
    }

    /// Whether a partner with these interned categories, wholesaler categories and country
    /// codes, status and active flag matches.
    pub(super) fn accepts(&self, arrays: [&[u32]; 3], status: PartnerStatus, active: bool) -> bool {
        let any = |wanted: &Wanted, have: &[u32]| match wanted {
            None => true,
            Some(wanted) => have.iter().any(|v| wanted.contains(v)),
        };
        let [categories, wholesaler_categories, country_codes] = arrays;
        self.active.is_none_or(|a| a == active)
            && self.statuses.as_ref().is_none_or(|s| s.contains(&status))
            && any(&self.categories, categories)
            && any(&self.required_category, categories)
            && !categories
                .iter()
                .any(|c| self.excluded_categories.contains(c))
            && any(&self.wholesaler_categories, wholesaler_categories)
            && any(&self.country_codes, country_codes)
    }
}

/// Snapshots and queries for the copy's unit tests.
#[cfg(test)]
pub(super) mod fixtures {
    use super::*;
    use crate::model::partner::Scope;
    use crate::serving::lists::delta::View;

    pub fn row(
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
            status: PartnerStatus::parse(status).expect("a status"),
            active: id % 5 != 0,
        }
    }

    pub fn snapshot() -> View {
        View::new(snapshot_rows())
    }

    pub fn snapshot_rows() -> Snapshot {
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

    pub fn query(kind: ListKind, search: &str) -> ListQuery {
        let mut q = ListQuery::new(kind, Scope::default(), 1, 25);
        q.search = Some(search.to_owned());
        q
    }
}
