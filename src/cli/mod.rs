//! The subcommands of the `partners` binary: [`serve`] (the service, or the gateway alone),
//! [`keys`] (create and revoke API keys) and [`demo`] (the demo data set).

pub mod demo;
pub mod keys;
pub mod serve;

use diesel::{Connection, PgConnection};
use partners::config::DbConfig;
use partners::db;
use partners::error::{Error, Result};

/// A connection for the management subcommands.
pub fn connect(config: &DbConfig) -> Result<PgConnection> {
    PgConnection::establish(&config.connection_url())
        .map_err(|e| Error::Internal(format!("cannot connect to Postgres: {e}")))
}

/// Creates the database if it is missing and applies pending migrations.
pub fn prepare_database(config: &DbConfig) -> Result<()> {
    db::create_database_if_missing(config)?;
    db::run_migrations(config)?;
    Ok(())
}
