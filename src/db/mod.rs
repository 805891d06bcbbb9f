//! Database access: the connection pool ([`pool`]), the one async→Diesel bridge ([`Db::run`], in
//! [`run`]), the liveness probe behind health ([`health`]), the deadlines that free threads held
//! by a hung upstream ([`watchdog`]), database creation and embedded migrations ([`migrate`]), the
//! SQL builder of the dynamic statements ([`sql`]) and Diesel's table definitions ([`schema`]).

mod health;
mod migrate;
mod pool;
mod run;
pub mod schema;
pub mod sql;
pub mod watchdog;

use std::sync::Arc;
use std::time::Duration;

use diesel::pg::PgConnection;
use tokio::sync::{Semaphore, watch};

pub use migrate::{MIGRATIONS, create_database_if_missing, run_migrations};
pub use pool::PoolState;

/// The probe's own connection and its socket.
type ProbeConn = (PgConnection, Option<watchdog::Socket>);

/// Shared handle to the database: a pool plus a semaphore sized like it, so blocking threads never
/// pile up waiting for connections, and the health flag kept by the probe. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: pool::PgPool,
    permits: Arc<Semaphore>,
    list_permits: Arc<Semaphore>,
    checkout_timeout: Duration,
    health: Arc<watch::Sender<bool>>,
    probe_conn: Arc<std::sync::Mutex<Option<ProbeConn>>>,
    url: Arc<str>,
    statement_timeout: Duration,
    watchdog: watchdog::Watchdog,
    /// When a call last got an answer from the database (see [`health::Answers`]).
    answers: Arc<health::Answers>,
}
