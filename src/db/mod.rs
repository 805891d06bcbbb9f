//! Database access: the connection pool, the one async→Diesel bridge ([`Db::run`]), database
//! creation, embedded migrations (under an advisory lock) and the liveness probe behind health.

pub mod schema;

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection, Pool};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::config::DbConfig;
use crate::error::{Error, Result};

/// Migrations compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Advisory lock key held while migrating, so concurrent starts do not race.
const MIGRATION_LOCK_KEY: i64 = 0x7061_7274_6e65_7273; // "partners"

type PgPool = Pool<Manager>;

/// A pooled connection plus a flag set when a call saw it fail at the transport level, so the
/// pool drops it instead of handing a dead connection to the next call (Diesel only reports
/// connections with a broken transaction).
pub struct PoolConn {
    pg: PgConnection,
    broken: bool,
}

/// Diesel's connection manager, with [`PoolConn::broken`] honoured.
struct Manager(ConnectionManager<PgConnection>);

impl ManageConnection for Manager {
    type Connection = PoolConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PoolConn, Self::Error> {
        Ok(PoolConn {
            pg: self.0.connect()?,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), Self::Error> {
        self.0.is_valid(&mut conn.pg)
    }

    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        conn.broken || self.0.has_broken(&mut conn.pg)
    }
}

/// Shared handle to the database: a pool plus a semaphore sized like it, so blocking threads never
/// pile up waiting for connections, and the health flag kept by the probe.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    permits: Arc<Semaphore>,
    list_permits: Arc<Semaphore>,
    checkout_timeout: Duration,
    health: Arc<watch::Sender<bool>>,
    probe_conn: Arc<std::sync::Mutex<Option<PgConnection>>>,
    url: Arc<str>,
    statement_timeout: Duration,
}

#[derive(Debug)]
struct SessionSettings {
    statement_timeout_ms: u64,
}

impl CustomizeConnection<PoolConn, diesel::r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut PoolConn) -> Result<(), diesel::r2d2::Error> {
        conn.pg
            .batch_execute(&format!(
                "SET statement_timeout = {}; SET application_name = 'partners'",
                self.statement_timeout_ms
            ))
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

impl Db {
    /// Builds the pool without waiting for the database (connections are made on demand).
    pub fn new(config: &DbConfig) -> Db {
        let url = config.connection_url();
        let manager = Manager(ConnectionManager::<PgConnection>::new(url.clone()));
        let size = config.db_pool_size.max(1);
        let pool = Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_timeout(config.checkout_timeout())
            .test_on_check_out(false)
            .connection_customizer(Box::new(SessionSettings {
                statement_timeout_ms: config.db_statement_timeout_ms,
            }))
            .build_unchecked(manager);
        Db {
            pool,
            permits: Arc::new(Semaphore::new(size as usize)),
            list_permits: Arc::new(Semaphore::new(config.list_concurrency())),
            checkout_timeout: config.checkout_timeout(),
            health: Arc::new(watch::Sender::new(true)),
            probe_conn: Arc::default(),
            url: url.into(),
            statement_timeout: Duration::from_millis(config.db_statement_timeout_ms),
        }
    }

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
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = pool.get_timeout(timeout)?;
            let result = f(&mut conn.pg);
            if matches!(result, Err(Error::Unavailable(_))) {
                conn.broken = true;
            }
            result
        });
        // A call never waits on a database that stopped answering: it ends when the probe sees
        // the outage, or at the latest after two statement timeouts (a black-holed network does
        // not end a statement by itself until `tcp_user_timeout`).
        let mut health = self.health.subscribe();
        let limit = self.checkout_timeout + self.statement_timeout * 2 + Duration::from_secs(1);
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

    /// Runs a list query (see [`Db::run`]) in the list lane: at most `list_concurrency` of them
    /// at once, the others wait their turn (first come, first served) up to the checkout timeout.
    /// Lists cost milliseconds of database CPU; run all at once they time-slice the cores and each
    /// takes as long as the slowest, while point reads and click batches keep their own slots.
    pub async fn run_list<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let _turn = self
            .take_turn(
                &self.list_permits,
                "server busy: too many list queries waiting",
            )
            .await?;
        self.run(f).await
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

    /// How long a call waits for a slot or a connection before it is refused.
    pub fn checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }

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

/// Splits `postgres://…/name?params` into the URL of the `postgres` maintenance database and `name`.
fn maintenance_url(url: &str) -> Option<(String, String)> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://")? + 3;
    let slash = base[scheme_end..].rfind('/')? + scheme_end;
    let name = &base[slash + 1..];
    if name.is_empty() {
        return None;
    }
    let mut maint = format!("{}/postgres", &base[..slash]);
    if let Some(q) = query {
        maint.push('?');
        maint.push_str(q);
    }
    Some((maint, name.to_owned()))
}

/// Creates the database named in the URL if it does not exist yet.
pub fn create_database_if_missing(config: &DbConfig) -> Result<()> {
    let url = config.connection_url();
    if PgConnection::establish(&url).is_ok() {
        return Ok(());
    }
    let (maint, name) = maintenance_url(&url)
        .ok_or_else(|| Error::Internal("DATABASE_URL names no database".into()))?;
    let mut conn = PgConnection::establish(&maint)
        .map_err(|e| Error::Internal(format!("cannot connect to Postgres: {e}")))?;
    let exists: bool = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "EXISTS (SELECT 1 FROM pg_database WHERE datname = {})",
        quote_literal(&name)
    )))
    .get_result(&mut conn)?;
    if !exists {
        let created = conn.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name)));
        // Another process may have created it in the meantime.
        if let Err(e) = created
            && !e.to_string().contains("already exists")
        {
            return Err(e.into());
        }
        tracing::info!(database = %name, "created database");
    }
    Ok(())
}

/// Applies pending migrations under an advisory lock; returns how many ran.
pub fn run_migrations(config: &DbConfig) -> Result<usize> {
    let mut conn = PgConnection::establish(&config.connection_url())
        .map_err(|e| Error::Internal(format!("cannot connect to Postgres: {e}")))?;
    conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|v| v.len())
        .map_err(|e| Error::Internal(format!("migration failed: {e}")));
    conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))?;
    let applied = applied?;
    if applied > 0 {
        tracing::info!(migrations = applied, "applied migrations");
    }
    Ok(applied)
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_url_keeps_parameters() {
        let (maint, name) =
            maintenance_url("postgres://u@h:5432/partners?connect_timeout=3").expect("parsed");
        assert_eq!(maint, "postgres://u@h:5432/postgres?connect_timeout=3");
        assert_eq!(name, "partners");
        assert!(maintenance_url("postgres://h/").is_none());
    }
}
