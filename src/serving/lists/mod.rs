//! The three lists. A list request is validated into a [`ListQuery`] (in `crate::grpc::validate`);
//! [`Lists::run`] asks the planner ([`planner`]) how to answer it and runs the statements it names.
//!
//! Most lists are answered with the help of an in-memory copy ([`copy`]) of what lists filter and
//! search on, in the lists' `name, id` order:
//! - With a search term, the copy finds the matching partners ([`trigram`]), orders them by the
//!   business's preference ([`preferences`] caches each business's preferred partners) and cuts
//!   the page ([`paging`]); Postgres only joins the page's rows with their context.
//! - Without one, the copy finds the list's matches once per snapshot and filter (and where a
//!   business's preferred partners are among them); a version of the copy lays only its changes
//!   over them ([`merged`]), so a write costs the next list O(changes), not O(matches). In list
//!   order the copy cuts the page, in other orders Postgres finds the page and the copy tells the
//!   exact total (no count query over tens of thousands of rows).
//!
//! The copy follows the change log ([`follower`]): each change is laid over the loaded snapshot
//! within milliseconds of its commit ([`delta`]), on every replica. Exactness never depends on
//! that: the copy carries the search version it reflects (migration 9: every write to those
//! columns moves the version in its own transaction), and every statement built from it answers
//! only if its own snapshot is still at that version (and at the preference version of the
//! business's cached set, migration 10). A call that finds the copy behind reads what moved since
//! in one snapshot with its page, and keeps the copy's answer when no change touches it
//! ([`exactness`]); otherwise it waits for the follower (at most [`WAIT_FOR_FOLLOWER`]) and tries
//! again, and takes the SQL path ([`partner::list`]) only if the copy is still behind.
//! The SQL path also serves whatever the copy does not cover: a term that is not ASCII (the copy
//! lowers terms itself), a search in an order other than the default or `name`, more than
//! [`trigram::MAX_CANDIDATES`] matches (or more than [`trigram::MAX_ORDERED_BY_SQL`] for a business
//! whose preferences are too many to cache), an unsearched list filtered on the preference in another
//! order, and everything in a directory larger than `--search-index-max-partners`.

pub mod copy;
pub mod delta;
pub mod exactness;
pub mod facets;
mod follower;
pub mod merged;
pub mod paging;
pub mod planner;
pub mod preferences;
pub mod trigram;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::db::Db;
pub use crate::model::partner::{ListKind, ListQuery, SortField};
pub use delta::View;
pub use planner::{ListPage, Plan};
use preferences::PreferenceCache;

/// Longest a list waits for the follower to bring the copy up to the database before it takes
/// the SQL path (the follower is usually there within a few milliseconds of a commit).
pub const WAIT_FOR_FOLLOWER: Duration = Duration::from_millis(100);

/// How the lists were answered and how the copy follows the log: counters since start and the
/// latest lag, read by tests and exposed to the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Lists answered with the copy.
    pub served: u64,
    /// Lists that took the SQL path (copy missing, behind or not covering them).
    pub fell_back: u64,
    /// Lists that found the copy behind the database and waited for the follower.
    pub waited: u64,
    /// Lists answered with the copy although the database had moved past it: no change since
    /// touched their answer ([`exactness`]).
    pub unaffected: u64,
    /// Pages after a page token's cursor (keyset pages: always Postgres, never counted in
    /// `served` or `fell_back`).
    pub cursor_pages: u64,
    /// Full loads of the copy.
    pub loads: u64,
    /// How long the last full load took, in ms.
    pub load_ms_last: u64,
    /// Batches of changes laid over the copy.
    pub deltas: u64,
    /// Changes applied from the log.
    pub changes: u64,
    /// Rebuilds of the copy in memory once many partners changed.
    pub compactions: u64,
    /// Age of the oldest change of the last batch when it was applied, in ms (how far the copy
    /// was behind the log, in time).
    pub lag_ms: u64,
    /// Changes the copy was behind the log when the follower last looked (the batch it then
    /// applied; 0 when it found nothing new).
    pub lag_changes: u64,
    /// The log sequence the copy reflects (0 before the first load).
    pub sequence: u64,
    /// Loads of a business's preferred partners (see [`preferences`]).
    pub preference_loads: u64,
}

/// The follower's counters (see [`ListStats`]).
#[derive(Default)]
struct FollowStats {
    loads: AtomicU64,
    load_ms_last: AtomicU64,
    deltas: AtomicU64,
    changes: AtomicU64,
    compactions: AtomicU64,
    lag_ms: AtomicU64,
    lag_changes: AtomicU64,
}

/// State shared by the handle and the follower.
struct Inner {
    enabled: bool,
    max_partners: u64,
    current: RwLock<Option<Arc<View>>>,
    /// Set by lists that found the copy behind (the follower looks at once), who also ring
    /// the bell if they set it.
    wanted: AtomicBool,
    bell: Option<follower::Doorbell>,
    /// Set while the database is known to be past the copy (the follower heard a commit, or a
    /// list found the copy behind) until the follower installs a version or finds the copy
    /// current: a list whose page the copy cut then reads what moved with its page at once
    /// instead of first trying the guarded page, which would find no row. A hint only: either
    /// way the answer is exact.
    stale: AtomicBool,
    /// The search version of the copy installed last (0: none).
    applied: watch::Sender<i64>,
    served: AtomicU64,
    fell_back: AtomicU64,
    waited: AtomicU64,
    unaffected: AtomicU64,
    cursor_pages: AtomicU64,
    stats: FollowStats,
    /// The businesses' preferred partners, for the pages cut from the copy.
    preferences: PreferenceCache,
    /// Finished looks at the log (successful or not).
    attempts: watch::Sender<u64>,
    /// Moves on every notification the follower hears: something committed to the log (the
    /// change events' tail reader waits on it, `crate::serving::events`).
    log_moved: watch::Sender<u64>,
}

impl Inner {
    fn view(&self) -> Option<Arc<View>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn install(&self, view: View) {
        let version = view.version;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(view));
        self.applied.send_replace(version);
        // Current as of the look's snapshot; a later commit's notification sets it again.
        self.stale.store(false, Ordering::Relaxed);
    }

    fn clear(&self) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
        self.applied.send_replace(0);
    }
}

/// Handle to the lists' copy and planner; cheap to clone.
#[derive(Clone)]
pub struct Lists {
    db: Db,
    inner: Arc<Inner>,
}

impl Lists {
    /// Starts the copy for at most `max_partners` live partners (0 = off: every list takes the
    /// SQL path). Its first load runs in the background; lists take the SQL path until it is
    /// there (see [`Lists::ready`]).
    pub fn start(db: Db, max_partners: u64) -> Lists {
        let enabled = max_partners > 0;
        let (bell, door) = match enabled.then(follower::Doorbell::pair) {
            Some(Ok((bell, door))) => (Some(bell), Some(door)),
            Some(Err(error)) => {
                tracing::warn!(error.message = %error, "search index: no doorbell, the follower polls");
                (None, None)
            }
            None => (None, None),
        };
        let inner = Arc::new(Inner {
            enabled,
            max_partners,
            current: RwLock::new(None),
            wanted: AtomicBool::new(false),
            bell,
            stale: AtomicBool::new(false),
            applied: watch::Sender::new(0),
            served: AtomicU64::new(0),
            fell_back: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            unaffected: AtomicU64::new(0),
            cursor_pages: AtomicU64::new(0),
            stats: FollowStats::default(),
            preferences: PreferenceCache::default(),
            attempts: watch::Sender::new(0),
            log_moved: watch::Sender::new(0),
        });
        if enabled {
            follower::start(&db, &inner, door);
        }
        Lists { db, inner }
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

    /// A receiver that changes whenever the follower hears a commit to the change log (the
    /// process's one LISTEN connection); `None` when the copy, and so the follower, is off.
    pub fn log_moved(&self) -> Option<watch::Receiver<u64>> {
        self.inner.enabled.then(|| self.inner.log_moved.subscribe())
    }

    /// Counters since start.
    pub fn stats(&self) -> ListStats {
        let f = &self.inner.stats;
        ListStats {
            served: self.inner.served.load(Ordering::Relaxed),
            fell_back: self.inner.fell_back.load(Ordering::Relaxed),
            waited: self.inner.waited.load(Ordering::Relaxed),
            unaffected: self.inner.unaffected.load(Ordering::Relaxed),
            cursor_pages: self.inner.cursor_pages.load(Ordering::Relaxed),
            loads: f.loads.load(Ordering::Relaxed),
            load_ms_last: f.load_ms_last.load(Ordering::Relaxed),
            deltas: f.deltas.load(Ordering::Relaxed),
            changes: f.changes.load(Ordering::Relaxed),
            compactions: f.compactions.load(Ordering::Relaxed),
            lag_ms: f.lag_ms.load(Ordering::Relaxed),
            lag_changes: f.lag_changes.load(Ordering::Relaxed),
            sequence: self
                .snapshot()
                .map_or(0, |v| u64::try_from(v.sequence).unwrap_or(0)),
            preference_loads: self.inner.preferences.loads(),
        }
    }

    /// The search version of the copy, if one is loaded.
    pub fn version(&self) -> Option<i64> {
        self.snapshot().map(|s| s.version)
    }

    /// Waits until the copy reflects search version `version` or later, at most `limit`;
    /// returns whether it does.
    pub async fn caught_up(&self, version: i64, limit: Duration) -> bool {
        let mut applied = self.inner.applied.subscribe();
        tokio::time::timeout(limit, applied.wait_for(|v| *v >= version))
            .await
            .is_ok()
    }

    fn snapshot(&self) -> Option<Arc<View>> {
        self.inner.view()
    }

    /// The copy at `version` is behind the database: wake the follower.
    fn behind(&self) {
        self.inner.stale.store(true, Ordering::Relaxed);
        if !self.inner.wanted.swap(true, Ordering::AcqRel)
            && let Some(bell) = &self.inner.bell
        {
            bell.ring();
        }
    }
}
