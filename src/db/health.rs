//! The liveness probe behind health: a ping on a dedicated connection (not the pool, so a
//! saturated pool does not look like an outage). [`Db::run`] fails fast while the probe says the
//! database is down, and ends a call already waiting as soon as it does.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;

use super::Db;

impl Db {
    /// Whether the last probe reached the database.
    pub fn is_healthy(&self) -> bool {
        *self.health.borrow()
    }

    /// Pings the database on a dedicated connection (not the pool, so a saturated pool does not
    /// look like an outage), bounded by `timeout`; records and returns reachability.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let slot = self.probe_conn.clone();
        let url = self.url.clone();
        let ping = tokio::task::spawn_blocking(move || {
            let Ok(mut guard) = slot.try_lock() else {
                return false; // the previous ping still hangs
            };
            if guard.is_none() {
                *guard = PgConnection::establish(&url).ok();
            }
            let ok = guard.as_mut().is_some_and(|conn| {
                conn.batch_execute("SET statement_timeout = 2000; SELECT 1")
                    .is_ok()
            });
            if !ok {
                *guard = None;
            }
            ok
        });
        let up = matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(true)));
        self.health
            .send_if_modified(|current| std::mem::replace(current, up) != up);
        up
    }
}
