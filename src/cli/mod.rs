//! The subcommands of the `partners` binary: [`serve`] (the service, or the gateway alone),
//! [`keys`] (create and revoke API keys), [`demo`] (the demo data set) and the click rollups'
//! repair ([`rebuild_click_rollups`]).

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

/// `rebuild-click-rollups`: recomputes the hourly click rollups from the events kept.
pub fn rebuild_click_rollups(config: &DbConfig) -> Result<()> {
    prepare_database(config)?;
    let mut conn = connect(config)?;
    let rows = partners::model::click_partition::rebuild_rollups(&mut conn)?;
    println!("rollup_rows={rows}");
    Ok(())
}
