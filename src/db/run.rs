//! The one bridge from async handlers to blocking Diesel: [`Db::run`] takes a turn (a semaphore
//! sized like the pool, so blocking threads never pile up waiting for connections), checks a
//! connection out in a blocking thread, and never waits on a database that stopped answering: the
//! caller is answered when the probe sees the outage or the call's deadline passes, and the
//! [`super::watchdog`] cuts the connection then, so the thread does not stay behind.
//! List queries take a turn in their own, narrower lane first ([`Db::run_list`]).

use std::sync::Arc;
use std::time::Duration;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Db;
use crate::error::{Error, Result};

impl Db {
    /// Runs `f` on a pooled connection in a blocking thread. Waits at most the checkout timeout
    /// for a slot (then RESOURCE_EXHAUSTED) and for a connection (then UNAVAILABLE); fails fast with
    /// UNAVAILABLE while the probe reports the database down. A panic in `f` is re-raised here.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if !self.is_healthy() {
            return Err(Error::Unavailable("database unreachable"));
        }
        let permit = self
            .take_turn(
                &self.permits,
                "server busy: all database connections are in use",
            )
            .await?;
        let pool = self.pool.clone();
        let timeout = self.checkout_timeout;
        let watchdog = self.watchdog.clone();
        let budget = self.call_budget();
        let answers = self.answers.clone();
        let span = crate::telemetry::span_for_blocking();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _span = span.enter();
            let checkout = std::time::Instant::now();
            let conn = pool.get_timeout(timeout);
            metrics::histogram!("db_checkout_wait_seconds")
                .record(checkout.elapsed().as_secs_f64());
            let mut conn =
                conn.inspect_err(|_| metrics::counter!("db_checkout_timeouts_total").increment(1))?;
            let armed = watchdog.arm(conn.socket, budget);
            let result = f(&mut conn.pg);
            drop(armed); // before the connection can close (see the watchdog's module doc)
            if matches!(result, Err(Error::Unavailable(_))) {
                conn.broken = true;
            } else {
                answers.record();
            }
            if let Err(error) = &result {
                metrics::counter!("db_calls_failed_total", "class" => error.reason()).increment(1);
            }
            result
        });
        // A call never waits on a database that stopped answering: it ends when the probe sees
        // the outage, or at the latest once its budget is spent (a black-holed network does not
        // end a statement by itself until `tcp_user_timeout`, a hung upstream never does); the
        // watchdog cuts its connection at the same moment.
        let mut health = self.health.subscribe();
        let limit = self.checkout_timeout + budget;
        tokio::select! {
            joined = task => match joined {
                Ok(result) => result,
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => Err(Error::Unavailable("shutting down")),
            },
            _ = health.wait_for(|up| !*up) => Err(Error::Unavailable("database unreachable")),
            () = tokio::time::sleep(limit) => Err(Error::Unavailable("database did not answer in time")),
        }
    }

    /// How long one call may hold its connection: a transaction of several statements may take
    /// longer than one statement's timeout, so two of them, plus the watchdog's margin.
    fn call_budget(&self) -> Duration {
        self.statement_timeout * 2 + super::pool::CUT_MARGIN
    }

    /// Runs a list query (see [`Db::run`]) in the list lane: at most `list_concurrency` of them
    /// at once, the others wait their turn (first come, first served) up to the checkout timeout.
    /// Lists cost milliseconds of database CPU; run all at once they time-slice the cores and each
    /// takes as long as the slowest, while point reads and click batches keep their own slots.
    pub async fn run_list<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let _turn = self.list_turn().await?;
        self.run(f).await
    }

    /// A turn in the list lane (see [`Db::run_list`]), for a list that runs more than one call
    /// in it: held across them, a second call does not queue again behind the lists that came
    /// after the first.
    pub async fn list_turn(&self) -> Result<OwnedSemaphorePermit> {
        self.take_turn(
            &self.list_permits,
            "server busy: too many list queries waiting",
        )
        .await
    }

    /// Waits at most the checkout timeout for a permit of `permits`, then RESOURCE_EXHAUSTED.
    async fn take_turn(
        &self,
        permits: &Arc<Semaphore>,
        busy: &'static str,
    ) -> Result<OwnedSemaphorePermit> {
        tokio::time::timeout(self.checkout_timeout, permits.clone().acquire_owned())
            .await
            .map_err(|_| Error::ResourceExhausted {
                message: busy,
                retry_after: Duration::from_secs(1),
            })?
            .map_err(|_| Error::Unavailable("database pool closed"))
    }

    /// Runs `f` inside a transaction (see [`Db::run`]).
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(|conn| conn.transaction(f)).await
    }
}
