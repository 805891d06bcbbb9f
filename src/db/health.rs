//! The liveness probe behind health: a ping on a dedicated connection (not the pool, so a
//! saturated pool does not look like an outage). [`Db::run`] fails fast while the probe says the
//! database is down, and ends a call already waiting as soon as it does; a failed ping also cuts
//! the connections of the calls still running (their callers were answered), so no thread waits
//! on a hung upstream. A ping that times out while other calls got answers meanwhile is a busy
//! machine, not an outage, and changes nothing.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
        let started = Answers::now();
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
        let up = match tokio::time::timeout(timeout, ping).await {
            Ok(Ok(answered)) => answered,
            // Too slow; but if calls were answered meanwhile, the database is there.
            Err(_) => self.answers.since(started),
            Ok(Err(_)) => false,
        };
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

/// When a call last got an answer from the database, in microseconds since the first use.
#[derive(Debug, Default)]
pub(super) struct Answers(AtomicU64);

impl Answers {
    fn now() -> u64 {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let epoch = *EPOCH.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Notes that a call got an answer (an error from the database counts: it answered).
    pub(super) fn record(&self) {
        self.0.fetch_max(Self::now(), Ordering::Relaxed);
    }

    /// Whether a call got an answer after `instant` (a value of [`Answers::now`]).
    fn since(&self, instant: u64) -> bool {
        self.0.load(Ordering::Relaxed) > instant
    }
}
