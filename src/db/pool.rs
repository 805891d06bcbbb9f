//! The connection pool: r2d2 over Diesel's manager, built without waiting for the database, with
//! `statement_timeout` set on every new connection, each connection's socket known to the
//! [`super::watchdog`], and connections that failed at the transport level dropped instead of
//! handed to the next call.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ManageConnection, Pool, R2D2Connection};
use tokio::sync::{Semaphore, watch};

use super::Db;
use super::watchdog::{self, Socket, Watchdog};
use crate::config::DbConfig;

/// How much longer than its statement timeout a statement may go unanswered before the watchdog
/// cuts its connection.
pub(super) const CUT_MARGIN: Duration = Duration::from_secs(1);

pub(super) type PgPool = Pool<Manager>;

/// A pooled connection plus a flag set when a call saw it fail at the transport level, so the
/// pool drops it instead of handing a dead connection to the next call (Diesel only reports
/// connections with a broken transaction).
pub struct PoolConn {
    pub(super) pg: PgConnection,
    pub(super) broken: bool,
    /// The connection's socket, for the watchdog (`None` when it could not be found).
    pub(super) socket: Option<Socket>,
    /// The watchdog's generation when it was made: an older one is not handed out again.
    generation: u64,
}

/// Connects (finding the socket), sets the session, and tells the pool which connections broke.
pub(super) struct Manager {
    url: String,
    statement_timeout: Duration,
    watchdog: Watchdog,
}

impl ManageConnection for Manager {
    type Connection = PoolConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PoolConn, Self::Error> {
        let generation = self.watchdog.generation();
        let (mut pg, socket) =
            watchdog::establish(&self.url).map_err(diesel::r2d2::Error::ConnectionError)?;
        // The session settings are a statement too: a hang here would hold a pool thread.
        let _armed = self
            .watchdog
            .arm(socket, self.statement_timeout + CUT_MARGIN);
        // No JIT: every statement of the service is a few index probes or a bounded page, which
        // run in well under a millisecond, while compiling one whose estimate crosses
        // `jit_above_cost` (a join with a never-analysed one-row table did) takes 10-30 ms.
        pg.batch_execute(&format!(
            "SET statement_timeout = {}; SET application_name = 'partners'; SET jit = off",
            self.statement_timeout.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)?;
        if crate::telemetry::tracing_enabled() {
            diesel::Connection::set_instrumentation(
                &mut pg,
                crate::telemetry::QuerySpans::default(),
            );
        }
        Ok(PoolConn {
            pg,
            broken: false,
            socket,
            generation,
        })
    }

    /// Called at each checkout: costs no round trip; refuses a connection made before the last
    /// outage (r2d2 drops it and takes or makes another).
    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), Self::Error> {
        if self.watchdog.is_current(conn.generation) {
            Ok(())
        } else {
            Err(diesel::r2d2::Error::QueryError(
                diesel::result::Error::BrokenTransactionManager,
            ))
        }
    }

    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        conn.broken
            || std::thread::panicking()
            || !self.watchdog.is_current(conn.generation)
            || conn.pg.is_broken()
    }
}

/// The pool's connections, for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    /// Open connections.
    pub connections: u32,
    /// Open connections not in use.
    pub idle: u32,
}

impl Db {
    /// Builds the pool without waiting for the database (connections are made on demand).
    pub fn new(config: &DbConfig) -> Db {
        let url = config.connection_url();
        let statement_timeout = Duration::from_millis(config.db_statement_timeout_ms);
        let watchdog = Watchdog::new();
        let manager = Manager {
            url: url.clone(),
            statement_timeout,
            watchdog: watchdog.clone(),
        };
        let size = config.db_pool_size.max(1);
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(config.checkout_timeout())
            .test_on_check_out(true)
            .build_unchecked(manager);
        Db {
            pool,
            permits: Arc::new(Semaphore::new(size as usize)),
            list_permits: Arc::new(Semaphore::new(config.list_concurrency())),
            checkout_timeout: config.checkout_timeout(),
            health: Arc::new(watch::Sender::new(true)),
            probe_conn: Arc::default(),
            url: url.into(),
            statement_timeout,
            watchdog,
            answers: Arc::default(),
        }
    }

    /// How long a call waits for a slot or a connection before it is refused.
    pub fn checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }

    /// The connection URL, for the few tasks that need a connection of their own (the health
    /// probe, the change-log listener).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The pool's connections: all of them and the idle ones.
    pub fn pool_state(&self) -> PoolState {
        let state = self.pool.state();
        PoolState {
            connections: state.connections,
            idle: state.idle_connections,
        }
    }

    /// The watchdog of this handle's calls, for the tasks with connections of their own.
    pub(crate) fn watchdog(&self) -> &Watchdog {
        &self.watchdog
    }
}
