//! The liveness probe behind health: a ping on a dedicated connection (not the pool, so a
//! saturated pool does not look like an outage). [`Db::run`] fails fast while the probe says the
//! database is down, and ends a call already waiting as soon as it does; a failed ping also cuts
//! the connections of the calls still running (their callers were answered), so no thread waits
//! on a hung upstream.

use std::time::Duration;

use diesel::connection::SimpleConnection;

use super::Db;
use super::pool::CUT_MARGIN;
use super::watchdog;

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
        let watchdog = self.watchdog.clone();
        let ping = tokio::task::spawn_blocking(move || {
            let Ok(mut guard) = slot.try_lock() else {
                return false; // the previous ping still hangs
            };
            if guard.is_none() {
                *guard = watchdog::establish(&url).ok();
            }
            let ok = guard.as_mut().is_some_and(|(conn, socket)| {
                let _armed = watchdog.arm(*socket, timeout + CUT_MARGIN);
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
        if !up {
            let cut = self.watchdog.cut_all();
            if cut > 0 {
                tracing::warn!(
                    connections = cut,
                    "database unreachable: calls in flight abandoned, their connections cut"
                );
            }
        }
        up
    }
}
