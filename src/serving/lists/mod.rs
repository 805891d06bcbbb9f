//! The three lists. A list request is validated into a [`ListQuery`] (in `crate::grpc::validate`);
//! [`Lists::run`] asks the planner ([`planner`]) how to answer it and runs the statements it names.
//!
//! Most lists are answered with the help of an in-memory copy ([`copy`]) of what lists filter and
//! search on, in the lists' `name, id` order:
//! - With a search term, the copy finds the matching partners ([`trigram`]), orders them by the
//!   business's preference ([`preferences`] caches each business's preferred partners) and cuts
//!   the page ([`paging`]); Postgres only joins the page's rows with their context.
//! - Without one, the copy finds the list's matches once per snapshot and filter; in list order it
//!   cuts the page, in other orders Postgres finds the page and the copy tells the exact total (no
//!   count query over tens of thousands of rows).
//!
//! Exactness never depends on the copy being fresh. The copy is loaded with the search version it
//! reflects (migration 9: every write to those columns moves the version in its own transaction),
//! and every statement built from it answers only if its own snapshot is still at that version
//! (and at the preference version of the business's cached set, migration 10). Otherwise (another
//! process or call changed a partner), the call takes the SQL path ([`partner::list`]) and the
//! copy is reloaded in the background (pausing between loads, see [`copy::MIN_RELOAD_INTERVAL`]).
//! The SQL path also serves whatever the copy does not cover: a term that is not ASCII (the copy
//! lowers terms itself), a search in an order other than the default or `name`, more than
//! [`trigram::MAX_CANDIDATES`] matches, an unsearched list filtered on the preference in another
//! order, and everything in a directory larger than `--search-index-max-partners`.

pub mod copy;
pub mod paging;
pub mod planner;
pub mod preferences;
pub mod trigram;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::db::Db;
pub use crate::model::partner::{ListKind, ListQuery, SortField};
use copy::Snapshot;
pub use planner::Plan;
use preferences::PreferenceCache;

/// How many lists the copy answered, and how many it handed to the SQL path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Lists answered with the copy.
    pub served: u64,
    /// Lists that took the SQL path (copy missing, stale or not covering them).
    pub fell_back: u64,
    /// Loads of the copy.
    pub loads: u64,
    /// Loads of a business's preferred partners (see [`preferences`]).
    pub preference_loads: u64,
}

/// State shared by the handle and the loader task.
struct Inner {
    enabled: bool,
    max_partners: u64,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Told when the copy is missing or stale.
    wanted: Notify,
    served: AtomicU64,
    fell_back: AtomicU64,
    loads: AtomicU64,
    /// The businesses' preferred partners, for the pages cut from the copy.
    preferences: PreferenceCache,
    /// Finished load attempts (successful or not).
    attempts: watch::Sender<u64>,
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
            tokio::spawn(copy::loader(db.clone(), inner.clone()));
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

    /// Counters since start.
    pub fn stats(&self) -> ListStats {
        ListStats {
            served: self.inner.served.load(Ordering::Relaxed),
            fell_back: self.inner.fell_back.load(Ordering::Relaxed),
            loads: self.inner.loads.load(Ordering::Relaxed),
            preference_loads: self.inner.preferences.loads(),
        }
    }

    /// The search version of the loaded copy, if any.
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
}
