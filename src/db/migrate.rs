//! Database creation and the embedded migrations, applied under an advisory lock so concurrent
//! starts do not race.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DbConfig;
use crate::error::{Error, Result};

/// Migrations compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Advisory lock key held while migrating, so concurrent starts do not race.
const MIGRATION_LOCK_KEY: i64 = 0x7061_7274_6e65_7273; // "partners"

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
