//! `loadgen seed`: the large, skewed benchmark data set (see `BENCHMARKS.md`).
//!
//! Here: the sizes ([`Scale`]), the load ([`seed`]) and the keys ([`create_keys`]); the SQL of
//! each step is in `steps`, the word lists in `words`.
//!
//! Everything is generated inside Postgres with `INSERT … SELECT … FROM generate_series(…)`: no row
//! crosses the wire, so the default set (100,000 partners, 5,000,000 click events, …) loads in
//! minutes. Every "random" choice is a deterministic hash of the row number (`hashint8extended`,
//! a different salt per attribute), so two loads of the same [`Scale`] produce the same rows.
//!
//! Shape of the data (defaults; every count is a [`Scale`] flag):
//! - **partners**: names of two to four words from fixed lists, so a search on one word
//!   ([`SEARCH_WORD`]) matches about 2.5% of them; one in a thousand carries one of a handful of
//!   rare words. 1–3 of twelve categories with a popularity skew (`pos` and `payments` most
//!   common); exactly 5% (every 20th id) are wholesalers with 1–3 wholesaler categories; 1–3 of
//!   fifteen country codes (skewed towards `DE`); status 80% available, 12% coming_soon, 8%
//!   unavailable; 90% active; none deleted.
//! - **businesses** and **users**: user `n ≤ businesses` belongs to business `n` (every business
//!   has a user), the others to a business picked with a quadratic skew (business 1 is the
//!   largest).
//! - **integrations**, **preferences**, **partner-user links**: pairs drawn with a skew towards low
//!   business and partner ids, de-duplicated on their unique keys, then cut to the requested
//!   count (the real counts are printed; they are lower only when the requested count is close
//!   to the number of possible pairs).
//! - **click events**: 20% of them on the first 1% of partner ids (the "hot" partners), the rest
//!   spread uniformly over the other partners; 70% `website`, 30% `video`; each by a uniformly
//!   chosen user with that user's business; `created_at` increasing with the id over the past
//!   year (`click_days`). Their secondary indexes and the rollups' are dropped for the load and
//!   built again after it from their own definitions (a sort per index instead of a random
//!   insert per row: 50,000,000 events load in minutes), and the hourly rollups are computed
//!   from the loaded events, as `partners rebuild-click-rollups` does.
//! - **counters**: `website_clicks`, `video_clicks` and `users_count` are computed from the same
//!   generators before the partners are inserted, so they equal the counts of the rows (no
//!   UPDATE of 100,000 freshly loaded rows, hence no bloat).
//!
//! The load wipes every data table first (`TRUNCATE … RESTART IDENTITY CASCADE`, API keys
//! included), runs in one transaction, and finishes with `VACUUM (ANALYZE)` of the tables.
//! When the connecting role is a superuser, foreign-key triggers are skipped for the transaction
//! (`SET LOCAL session_replication_role = replica`); the data is consistent by construction and
//! a few cheap range checks confirm it.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Uuid as SqlUuid};
use uuid::Uuid;

use crate::service_sql;
use crate::{Error, Result};

mod steps;
mod words;

use steps::{HELPERS, generation_steps};

/// A word of about 2.5% of partner names, for a selective `search`.
pub const SEARCH_WORD: &str = "harbor";
/// The two most common categories (a filter on both is "any of").
pub const COMMON_CATEGORIES: [&str; 2] = ["pos", "payments"];
/// The most common country code.
pub const COMMON_COUNTRY: &str = "DE";
/// Principal recorded on the generated click events.
pub const SEED_PRINCIPAL: &str = "service:seed-bench";

/// Size of the benchmark data set.
#[derive(Debug, Clone, clap::Args)]
pub struct Scale {
    /// Number of partners.
    #[arg(long, default_value_t = 100_000)]
    pub partners: i64,
    /// Number of businesses.
    #[arg(long, default_value_t = 1_000)]
    pub businesses: i64,
    /// Number of users.
    #[arg(long, default_value_t = 50_000)]
    pub users: i64,
    /// Number of partner integrations (unique per business and partner).
    #[arg(long, default_value_t = 200_000)]
    pub integrations: i64,
    /// Number of partner preferences (unique per business and partner).
    #[arg(long, default_value_t = 100_000)]
    pub preferences: i64,
    /// Number of partner-user links (unique per partner and user).
    #[arg(long, default_value_t = 500_000)]
    pub links: i64,
    /// Number of click events (`--clicks 50000000` for the click analytics' scale rows).
    #[arg(long, default_value_t = 5_000_000)]
    pub clicks: i64,
    /// Days of history the click events span, ending now (one monthly partition per month of
    /// it): `--clicks 50000000 --click-days 3650` keeps the default's events per day.
    #[arg(long, default_value_t = 365)]
    pub click_days: i64,
}

impl Default for Scale {
    /// The full data set of the performance issue.
    fn default() -> Self {
        Scale {
            partners: 100_000,
            businesses: 1_000,
            users: 50_000,
            integrations: 200_000,
            preferences: 100_000,
            links: 500_000,
            clicks: 5_000_000,
            click_days: 365,
        }
    }
}

impl Scale {
    /// The tiny set of the CI smoke run.
    pub fn smoke() -> Self {
        Scale {
            partners: 2_000,
            businesses: 20,
            users: 500,
            integrations: 2_000,
            preferences: 1_000,
            links: 3_000,
            clicks: 20_000,
            click_days: 365,
        }
    }

    fn validate(&self) -> Result<()> {
        let at_least_one = [
            ("partners", self.partners),
            ("businesses", self.businesses),
            ("users", self.users),
        ];
        for (field, value) in at_least_one {
            if !(1..=1_000_000_000).contains(&value) {
                return Err(Error::new(format!(
                    "--{field} must be between 1 and 1000000000"
                )));
            }
        }
        let non_negative = [
            ("integrations", self.integrations),
            ("preferences", self.preferences),
            ("links", self.links),
            ("clicks", self.clicks),
        ];
        for (field, value) in non_negative {
            if !(0..=1_000_000_000).contains(&value) {
                return Err(Error::new(format!(
                    "--{field} must be between 0 and 1000000000"
                )));
            }
        }
        if !(1..=36_500).contains(&self.click_days) {
            return Err(Error::new("--click-days must be between 1 and 36500"));
        }
        Ok(())
    }
}

/// Runs one step, logs its duration, and names it in the error.
fn step(conn: &mut PgConnection, name: &str, sql: &str) -> Result<()> {
    let started = Instant::now();
    conn.batch_execute(sql)
        .map_err(|e| Error::new(format!("seed step `{name}`: {e}")))?;
    tracing::info!(
        step = name,
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "seed step done"
    );
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    v: bool,
}

fn count(conn: &mut PgConnection, sql: &str) -> Result<i64> {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .map(|c| c.n)
        .map_err(|e| Error::new(format!("seed `{sql}`: {e}")))
}

/// Cheap checks that the generated foreign keys point at existing rows (ranges via indexes).
fn check_ranges(conn: &mut PgConnection, scale: &Scale) -> Result<()> {
    // (what, table, column, largest valid id)
    let ranges = [
        (
            "click events outside the partner range",
            "partner_click_events",
            "partner_id",
            scale.partners,
        ),
        (
            "links outside the partner range",
            "partner_users",
            "partner_id",
            scale.partners,
        ),
        (
            "links outside the user range",
            "partner_users",
            "user_id",
            scale.users,
        ),
        (
            "users outside the business range",
            "users",
            "business_id",
            scale.businesses,
        ),
    ];
    let checks = ranges.map(|(what, table, column, max)| {
        (
            what,
            format!(
                "SELECT count(*) AS n FROM (SELECT min({column}) AS lo, max({column}) AS hi \
                 FROM {table}) r WHERE r.lo < 1 OR r.hi > {max}"
            ),
        )
    });
    for (what, sql) in checks {
        if count(conn, &sql)? != 0 {
            return Err(Error::new(format!("seed: {what}")));
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct KeyUser {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    uuid: Uuid,
    #[diesel(sql_type = SqlUuid)]
    business_uuid: Uuid,
    #[diesel(sql_type = Text)]
    business_name: String,
}

/// Creates a service key (`seed-bench`) and a user key for the benchmark user: the first user of
/// the first (and largest) business. Returns the `key=value` lines of [`seed`] except the
/// timing; usable on an already loaded database (`loadgen run --skip-seed` and `loadgen plans`
/// do so).
pub fn create_keys(conn: &mut PgConnection) -> Result<Vec<(String, String)>> {
    let internal =
        |what: &str, e: diesel::result::Error| Error::new(format!("seed keys ({what}): {e}"));
    let user: KeyUser = diesel::sql_query(
        "SELECT u.id, u.uuid, b.uuid AS business_uuid, b.name AS business_name FROM users u \
         JOIN businesses b ON b.id = u.business_id \
         WHERE u.business_id = (SELECT min(id) FROM businesses) ORDER BY u.id LIMIT 1",
    )
    .get_result(conn)
    .optional()
    .map_err(|e| internal("find the user", e))?
    .ok_or_else(|| Error::new("seed keys: no user in the first business"))?;
    let service_key = service_sql::create_key(conn, None, "seed-bench")?;
    let user_key = service_sql::create_key(conn, Some(user.id), "seed-bench user")?;
    let partners = count(
        conn,
        "SELECT count(*) AS n FROM partners WHERE deleted_at IS NULL",
    )?;
    let max_partner_id = count(conn, "SELECT coalesce(max(id), 0) AS n FROM partners")?;
    tracing::info!(business = %user.business_name, user = %user.uuid, "benchmark keys created");
    Ok(vec![
        ("service_key".into(), service_key),
        ("user_key".into(), user_key),
        ("business_uuid".into(), user.business_uuid.to_string()),
        ("user_uuid".into(), user.uuid.to_string()),
        ("partners".into(), partners.to_string()),
        ("max_partner_id".into(), max_partner_id.to_string()),
    ])
}

/// Loads the data set (replacing every row of the data tables, API keys included) and creates a
/// service key and a user key; returns `key=value` lines to print: `service_key`, `user_key`,
/// `business_uuid` (the user's business), `user_uuid`, `partners`, `max_partner_id`, the real
/// row counts of the other tables, the search word, and `seconds` (load time).
pub fn seed(conn: &mut PgConnection, scale: &Scale) -> Result<Vec<(String, String)>> {
    scale.validate()?;
    let started = Instant::now();
    tracing::info!(?scale, "seed: loading");
    let steps = generation_steps(scale);
    conn.transaction::<_, Error, _>(|conn| {
        let superuser =
            diesel::sql_query("SELECT rolsuper AS v FROM pg_roles WHERE rolname = current_user")
                .get_result::<Flag>(conn)
                .map(|f| f.v)
                .unwrap_or(false);
        step(
            conn,
            "settings and helpers",
            &format!(
                "SET LOCAL work_mem = '256MB'; SET LOCAL maintenance_work_mem = '512MB'; \
                 SET LOCAL synchronous_commit = off;{}{HELPERS}",
                if superuser {
                    // Foreign-key triggers off for this transaction: the rows are consistent
                    // by construction (checked below).
                    " SET LOCAL session_replication_role = replica;"
                } else {
                    ""
                }
            ),
        )?;
        step(
            conn,
            "truncate",
            "TRUNCATE partner_click_events, partner_click_requests, partner_click_rollups, \
             partner_users, partner_preferences, \
             partner_integrations, api_keys, partners, users, businesses RESTART IDENTITY CASCADE;",
        )?;
        for (name, sql) in &steps {
            step(conn, name, sql)?;
        }
        // Triggers are off in replica mode: tell running services' search indexes (migration 9).
        step(conn, "search version", "SELECT partners_search_changed();")?;
        check_ranges(conn, scale)
    })?;
    let loaded = started.elapsed();
    tracing::info!(
        seconds = format!("{:.1}", loaded.as_secs_f64()),
        "seed: rows committed"
    );
    step(
        conn,
        "vacuum analyze",
        "VACUUM (ANALYZE) businesses, users, partners, partner_users, partner_integrations, \
         partner_preferences, partner_click_events, partner_click_rollups, api_keys;",
    )?;

    let mut out = create_keys(conn)?;
    let counts = [
        ("businesses", "SELECT count(*) AS n FROM businesses"),
        ("users", "SELECT count(*) AS n FROM users"),
        (
            "integrations",
            "SELECT count(*) AS n FROM partner_integrations",
        ),
        (
            "preferences",
            "SELECT count(*) AS n FROM partner_preferences",
        ),
        ("links", "SELECT count(*) AS n FROM partner_users"),
        ("clicks", "SELECT count(*) AS n FROM partner_click_events"),
        (
            "wholesalers",
            "SELECT count(*) AS n FROM partners WHERE categories @> ARRAY['wholesaler']",
        ),
    ];
    for (key, sql) in counts {
        out.push((key.to_owned(), count(conn, sql)?.to_string()));
    }
    let search_matches = count(
        conn,
        &format!("SELECT count(*) AS n FROM partners WHERE lower(name) LIKE '%{SEARCH_WORD}%'"),
    )?;
    out.push(("search_word".into(), SEARCH_WORD.to_owned()));
    out.push(("search_matches".into(), search_matches.to_string()));
    let seconds = started.elapsed().as_secs_f64();
    out.push(("seconds".into(), format!("{seconds:.1}")));
    tracing::info!(seconds = format!("{seconds:.1}"), "seed: done");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_issue() {
        let s = Scale::default();
        assert_eq!(
            (s.partners, s.businesses, s.users, s.integrations),
            (100_000, 1_000, 50_000, 200_000)
        );
        assert_eq!(
            (s.preferences, s.links, s.clicks),
            (100_000, 500_000, 5_000_000)
        );
        assert!(Scale::smoke().validate().is_ok());
    }
}
