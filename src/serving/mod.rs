//! Service logic between the gRPC handlers and the model: the lists (planner and in-memory copy),
//! GetPartner's coalesced point reads, the click events' group commit, the change events' feed
//! and watch streams, the page tokens, and the cached lookups of who a call acts for. Handlers reach all of it through [`Services`].

pub(crate) mod click_ingest;
pub mod click_partitions;
pub(crate) mod click_reads;
pub(crate) mod context;
pub mod events;
pub mod lists;
pub(crate) mod point_reads;
pub mod tokens;

use std::time::Duration;

use crate::config::ServerLimits;
use crate::db::Db;
use crate::model::{change, partner};
use click_ingest::ClickIngest;
use context::Context;
use events::Events;
use lists::Lists;
use point_reads::PointReads;
use tokens::PageTokens;

/// Largest number of click events written in one transaction.
pub const CLICK_BATCH: usize = 256;
/// Most click events waiting for one writer before callers get RESOURCE_EXHAUSTED.
pub const CLICK_QUEUE: usize = 4096;
/// Largest number of GetPartner keys answered by one statement.
pub const READ_BATCH: usize = 64;
/// Most GetPartner keys waiting for a statement before callers get RESOURCE_EXHAUSTED.
pub const READ_QUEUE: usize = 4096;

/// Everything the handlers use; cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The database (for the handlers' own statements: writes, existence checks).
    pub(crate) db: Db,
    /// The three lists (public for tests that look at the copy's counters).
    pub lists: Lists,
    /// GetPartner's reads.
    pub(crate) reads: PointReads,
    /// Click events' group commit.
    pub(crate) clicks: ClickIngest,
    /// The click analytics reads' zone names and page tokens.
    pub(crate) click_reads: click_reads::ClickReads,
    /// The page tokens of the lists (and of the click events' list).
    pub(crate) tokens: PageTokens,
    /// Businesses and users by uuid.
    pub(crate) context: Context,
    /// The webhooks' settings (the dispatcher runs on its own).
    pub(crate) webhooks: std::sync::Arc<crate::config::WebhookSettings>,
    /// The change events' feed and watch streams.
    pub events: Events,
}

impl Services {
    /// Starts the background tasks (list copy follower, change-log retention, click partition
    /// upkeep, point reader, click writers, webhook dispatcher) on `db`.
    pub fn start(db: Db, limits: &ServerLimits) -> Services {
        let retention = Duration::from_secs(u64::from(limits.change_log_retention_hours) * 3600);
        tokio::spawn(prune_changes(db.clone(), retention));
        tokio::spawn(prune_create_requests(db.clone()));
        tokio::spawn(click_partitions::maintain(
            db.clone(),
            limits.click_retention_months,
        ));
        if let Err(err) = crate::webhooks::dispatch::start(db.clone(), limits.webhooks.dispatch()) {
            tracing::error!(error.message = %err, "webhooks: no dispatcher");
        }
        let lists = Lists::start(db.clone(), limits.search_index_max_partners);
        let tokens = PageTokens::new(db.clone());
        Services {
            events: Events::start(db.clone(), lists.log_moved(), limits.events_heartbeat()),
            lists,
            reads: PointReads::start(db.clone(), limits.read_batches(), READ_BATCH, READ_QUEUE),
            clicks: ClickIngest::start(
                db.clone(),
                limits.click_writers,
                Duration::from_millis(limits.click_linger_ms),
                CLICK_BATCH,
                CLICK_QUEUE,
            ),
            click_reads: click_reads::ClickReads::new(db.clone(), tokens.clone()),
            tokens,
            context: Context::new(db.clone(), limits.key_cache_ttl()),
            webhooks: std::sync::Arc::new(limits.webhooks.clone()),
            db,
        }
    }

    /// Waits until the lists' copy is loaded (or its first load failed), at most `limit`.
    pub async fn ready(&self, limit: Duration) -> bool {
        self.lists.ready(limit).await
    }
}

/// How often the change log's retention runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// How long CreatePartner's request ids are kept (a retry later than that creates again).
pub const CREATE_REQUEST_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Deletes CreatePartner's request ids older than [`CREATE_REQUEST_RETENTION`], in batches of
/// 10,000, every [`PRUNE_EVERY`]; replicas may run it at once.
async fn prune_create_requests(db: Db) {
    let secs = CREATE_REQUEST_RETENTION.as_secs() as i64;
    loop {
        tokio::time::sleep(PRUNE_EVERY).await;
        loop {
            let deleted = db
                .run(move |conn| Ok(partner::prune_create_requests(conn, secs, 10_000)?))
                .await;
            match deleted {
                Ok(10_000) => continue,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error.message = %err, "create request ids: retention failed");
                }
            }
            break;
        }
    }
}

/// Deletes the change log's rows older than `retention`, in batches of 10,000, every
/// [`PRUNE_EVERY`] (one delete per batch: writers never wait on it). Replicas may run it at
/// once: a second delete finds the rows gone.
async fn prune_changes(db: Db, retention: Duration) {
    let secs = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    loop {
        tokio::time::sleep(PRUNE_EVERY).await;
        loop {
            match db
                .run(move |conn| Ok(change::prune(conn, secs, 10_000)?))
                .await
            {
                Ok(10_000) => continue,
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "change log: old changes deleted"),
                Err(err) => {
                    tracing::warn!(error.message = %err, "change log: retention failed");
                }
            }
            break;
        }
    }
}
