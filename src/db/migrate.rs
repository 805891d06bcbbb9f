//! Database creation and the embedded migrations, applied under an advisory lock so concurrent
//! starts do not race.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use percent_encoding::percent_decode_str;
use url::Url;

use crate::config::DbConfig;
use crate::error::{Error, Result};

/// Migrations compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Advisory lock key held while migrating, so concurrent starts do not race.
const MIGRATION_LOCK_KEY: i64 = 0x7061_7274_6e65_7273; // "partners"

/// Splits `postgres://…/name?params` into the URL of the `postgres` maintenance database (same
/// server, user and parameters) and `name`.
fn maintenance_url(url: &str) -> Option<(String, String)> {
    let mut url = Url::parse(url).ok()?;
    let name = percent_decode_str(url.path().trim_start_matches('/'))
        .decode_utf8()
        .ok()?
        .into_owned();
    if name.is_empty() || name.contains('/') {
        return None;
    }
    url.set_path("/postgres");
    Some((url.into(), name))
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
        // Another process may have created it in the meantime ("already exists"), or be
        // creating it at this moment (replicas started together: the catalog's unique index).
        match conn.batch_execute(&format!("CREATE DATABASE {}", quote_ident(&name))) {
            Ok(()) => tracing::info!(database = %name, "created database"),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {}
            Err(e) if e.to_string().contains("already exists") => {}
            Err(e) => return Err(e.into()),
        }
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
        let (_, spaced) = maintenance_url("postgres://h/my%20db").expect("parsed");
        assert_eq!(spaced, "my db");
    }
}
