//! Each business's set of preferred partners, cached so the lists' copy can order and filter a
//! search's matches itself ("preferred first", `filter[preferred]`) and hand Postgres only the
//! page's ids. A set is loaded with its business's preference version (migration 10: every
//! statement changing a business's preferences gives it a fresh version in the same
//! transaction), and a page statement built from it answers only while its own snapshot is
//! still at that version, so a cached set is never trusted past a change. A set that moved is
//! dropped and loaded again by the call that noticed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::pg::PgConnection;
use moka::sync::Cache;

use crate::model::partner;

/// Most preferences one business may have for its set to be cached; a larger set is marked as
/// such and its lists let Postgres join the preference (as without the cache).
pub const MAX_PER_BUSINESS: usize = 100_000;

/// Most preferences cached over all businesses (8 bytes each).
pub const MAX_TOTAL: usize = 1_000_000;

/// A business's preferred partners at one preference version.
#[derive(Debug)]
pub struct Preferred {
    /// The business's preference version the set was read at.
    pub version: i64,
    /// Ascending partner ids; empty when `complete` is false.
    ids: Vec<i64>,
    /// False when the business has more than [`MAX_PER_BUSINESS`] preferences (not held).
    complete: bool,
}

impl Preferred {
    /// The set `ids` (any order) read at `version`; not held beyond [`MAX_PER_BUSINESS`] ids.
    pub fn new(version: i64, mut ids: Vec<i64>) -> Preferred {
        let complete = ids.len() <= MAX_PER_BUSINESS;
        if complete {
            ids.sort_unstable();
        } else {
            ids = Vec::new();
        }
        Preferred {
            version,
            ids,
            complete,
        }
    }

    /// Whether the set is held (the business has at most [`MAX_PER_BUSINESS`] preferences).
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// The preferred partners' ids, ascending (empty unless [`Self::complete`]).
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// Whether the business prefers `partner_id` (only meaningful when [`Self::complete`]).
    pub fn contains(&self, partner_id: i64) -> bool {
        self.ids.binary_search(&partner_id).is_ok()
    }
}

/// The cache (moka: bounded by the ids held, evicting by frequency and recency); shared by every
/// call.
pub struct PreferenceCache {
    sets: Cache<i64, Arc<Preferred>>,
    loads: AtomicU64,
}

impl Default for PreferenceCache {
    fn default() -> Self {
        PreferenceCache {
            sets: Cache::builder()
                .max_capacity(MAX_TOTAL as u64)
                .weigher(|_, set: &Arc<Preferred>| {
                    u32::try_from(set.ids.len() + 1).unwrap_or(u32::MAX)
                })
                .build(),
            loads: AtomicU64::new(0),
        }
    }
}

impl PreferenceCache {
    /// The set of `business_id`, from the cache or loaded on `conn`; `None` when the business
    /// does not exist.
    pub fn get(
        &self,
        conn: &mut PgConnection,
        business_id: i64,
    ) -> diesel::QueryResult<Option<Arc<Preferred>>> {
        if let Some(found) = self.sets.get(&business_id) {
            return Ok(Some(found));
        }
        let Some(record) = partner::load_preferred(conn, business_id, MAX_PER_BUSINESS)? else {
            return Ok(None);
        };
        self.loads.fetch_add(1, Ordering::Relaxed);
        let preferred = Arc::new(Preferred::new(record.version, record.partner_ids));
        self.sets.insert(business_id, preferred.clone());
        Ok(Some(preferred))
    }

    /// Reads the set of `business_id` again on `conn` if it is cached (the follower, on a
    /// preference change: the next list finds it current).
    pub fn refresh(&self, conn: &mut PgConnection, business_id: i64) -> diesel::QueryResult<()> {
        if !self.sets.contains_key(&business_id) {
            return Ok(());
        }
        match partner::load_preferred(conn, business_id, MAX_PER_BUSINESS)? {
            Some(record) => {
                self.loads.fetch_add(1, Ordering::Relaxed);
                let preferred = Arc::new(Preferred::new(record.version, record.partner_ids));
                self.sets.insert(business_id, preferred);
            }
            None => self.sets.invalidate(&business_id),
        }
        Ok(())
    }

    /// Drops the set of `business_id` read at `version` (the database moved past it).
    pub fn forget(&self, business_id: i64, version: i64) {
        if self
            .sets
            .get(&business_id)
            .is_some_and(|p| p.version == version)
        {
            self.sets.invalidate(&business_id);
        }
    }

    /// Sets loaded since start.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }
}
