//! The connection pool: r2d2 over Diesel's manager, built without waiting for the database, with
//! `statement_timeout` set on every new connection, and connections that failed at the transport
//! level dropped instead of handed to the next call.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection, Pool};
use tokio::sync::{Semaphore, watch};

use super::Db;
use crate::config::DbConfig;

pub(super) type PgPool = Pool<Manager>;

/// A pooled connection plus a flag set when a call saw it fail at the transport level, so the
/// pool drops it instead of handing a dead connection to the next call (Diesel only reports
/// connections with a broken transaction).
pub struct PoolConn {
    pub(super) pg: PgConnection,
    pub(super) broken: bool,
}

/// Diesel's connection manager, with [`PoolConn::broken`] honoured.
pub(super) struct Manager(ConnectionManager<PgConnection>);

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

    /// How long a call waits for a slot or a connection before it is refused.
    pub fn checkout_timeout(&self) -> Duration {
        self.checkout_timeout
    }

    /// The connection URL, for the few tasks that need a connection of their own (the health
    /// probe, the change-log listener).
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}
