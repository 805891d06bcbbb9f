//! Partition upkeep of the click events: [`FIRST_RUN_AFTER`] after start (the start-up's own
//! reads have their connections first; the migration made three months ahead) and then every
//! [`MAINTAIN_EVERY`], creates the monthly partitions of this month and the next
//! [`MONTHS_AHEAD`] (so that inserts always find their month), and with `--click-retention-months` drops the months past it and prunes their
//! idempotency keys in batches. Every replica runs it; an advisory lock lets one at a time work
//! (`model::click_partition::maintain`). Counters and rollups are never touched.

use std::time::Duration;

use crate::db::Db;
use crate::model::click_partition;

/// When the first upkeep runs after start.
pub const FIRST_RUN_AFTER: Duration = Duration::from_secs(3);
/// How often the upkeep runs.
pub const MAINTAIN_EVERY: Duration = Duration::from_secs(3600);
/// Months after the current one whose partitions exist ahead of time.
pub const MONTHS_AHEAD: u32 = 3;
/// Idempotency keys deleted per statement.
const KEY_BATCH: i64 = 10_000;

/// Runs one upkeep: partitions, then (with a retention) the keys of dropped months.
pub async fn run_once(db: &Db, retention_months: u32) -> crate::error::Result<()> {
    let report = db
        .run(move |conn| {
            Ok(click_partition::maintain(
                conn,
                chrono::Utc::now(),
                MONTHS_AHEAD,
                retention_months,
            )?)
        })
        .await?;
    for month in &report.created {
        tracing::info!(month = %month, "click events: partition created");
    }
    for month in &report.dropped {
        tracing::info!(month = %month, "click events: partition dropped (retention)");
    }
    if retention_months > 0 && report.ran {
        loop {
            let pruned = db
                .run(|conn| Ok(click_partition::prune_keys(conn, KEY_BATCH)?))
                .await?;
            if pruned < KEY_BATCH as usize {
                break;
            }
        }
    }
    Ok(())
}

/// The upkeep loop (spawned by `Services::start`).
pub async fn maintain(db: Db, retention_months: u32) {
    tokio::time::sleep(FIRST_RUN_AFTER).await;
    loop {
        if let Err(err) = run_once(&db, retention_months).await {
            tracing::warn!(error.message = %err, "click events: partition upkeep failed");
        }
        tokio::time::sleep(MAINTAIN_EVERY).await;
    }
}
