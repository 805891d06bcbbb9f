//! The load generator's own SQL on the benchmark database: the data set (seeded, or keys made
//! for the loaded one), its facts the scenarios need, the page-cache prewarm, and the check after
//! the click scenario that every partner's counters equal its events and links.

use std::collections::HashMap;
use std::time::Instant;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use loadgen::data::{self, Scale};
use loadgen::service_sql::Context;
use partners::config::DbConfig;

use crate::settings::BenchResult;

/// `key=value` lines of the seed / `create_keys`.
pub type Keys = HashMap<String, String>;

/// Creates the database when missing and applies the service's migrations, as `partners serve`
/// does, then loads the data set of `scale` and creates keys for it (see [`data::seed`]): the
/// `key=value` lines of `loadgen seed`.
pub fn seed(database_url: &str, scale: &Scale) -> BenchResult<Vec<(String, String)>> {
    let config = DbConfig::for_url(database_url);
    loadgen::service_sql::create_database_if_missing(&config)?;
    partners::db::run_migrations(&config).map_err(|e| format!("migrate: {e}"))?;
    let url = config.connection_url();
    let mut conn = PgConnection::establish(&url)
        .map_err(|e| format!("cannot connect to {database_url}: {e}"))?;
    Ok(data::seed(&mut conn, scale)?)
}

/// Applies pending migrations (data loaded by an earlier commit may lack this one's) and creates
/// fresh keys for the data already loaded (see [`data::create_keys`]).
pub fn keys_for_loaded_data(database_url: &str) -> BenchResult<Keys> {
    partners::db::run_migrations(&DbConfig::for_url(database_url))
        .map_err(|e| format!("migrate: {e}"))?;
    let mut conn = connect(database_url)?;
    let lines = data::create_keys(&mut conn).map_err(|e| format!("create keys: {e}"))?;
    Ok(lines.into_iter().collect())
}

/// A connection to `url` as given.
pub fn connect(url: &str) -> BenchResult<PgConnection> {
    PgConnection::establish(url).map_err(|e| format!("cannot connect to {url}: {e}"))
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The `n` column of the one row of `sql`.
pub fn scalar(conn: &mut PgConnection, sql: &str) -> BenchResult<i64> {
    diesel::sql_query(sql)
        .get_result::<N>(conn)
        .map(|r| r.n)
        .map_err(|e| format!("`{sql}`: {e}"))
}

/// Runs `sql` (one or more statements).
pub fn exec(conn: &mut PgConnection, sql: &str) -> BenchResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(sql).map_err(|e| format!("`{sql}`: {e}"))
}

/// Reads every table and index of the benchmark database once (`pg_prewarm`, mode `read`), so
/// the rows start with the data in the OS page cache. On this VM the page cache does not keep the
/// database between runs: a cold run read 1.8 GB at ~90 MB/s, and a single cold index probe took
/// ~5 ms, which made the first rows of a run measure the disk. Without the extension (Debian's
/// `postgresql-contrib`) the run goes on cold, with a warning.
pub fn prewarm(conn: &mut PgConnection) {
    let started = Instant::now();
    let warmed = exec(conn, "CREATE EXTENSION IF NOT EXISTS pg_prewarm").and_then(|()| {
        exec(
            conn,
            "SELECT pg_prewarm(c.oid, 'read') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't', 'm')",
        )
    });
    match warmed {
        Ok(()) => eprintln!(
            "load: read the database into the page cache in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("load: WARNING: no prewarm ({e}); the first rows may read the disk"),
    }
}

fn key<'a>(keys: &'a Keys, name: &str) -> BenchResult<&'a str> {
    keys.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("seed output has no `{name}` line"))
}

/// The facts the scenarios need about the data set.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// The user key the scenarios call with.
    pub user_key: String,
    /// The service key of the admin calls (renames).
    pub service_key: String,
    /// The business in context (the user's).
    pub business_uuid: String,
    /// The user in context.
    pub user_uuid: String,
    /// Id of the business in context.
    pub business_id: i64,
    /// Id of the user in context.
    pub user_id: i64,
    /// The largest partner id.
    pub max_partner_id: i64,
    /// The largest user id.
    pub max_user_id: i64,
    /// Live partners.
    pub partners: i64,
    /// Live wholesalers.
    pub wholesalers: i64,
    /// Click events.
    pub click_rows: i64,
}

impl DataSet {
    /// The business and user in context, for the service's statements.
    pub fn context(&self) -> Context {
        Context {
            business_id: self.business_id,
            user_id: self.user_id,
        }
    }
}

/// The facts of the loaded data set, with the keys and the user and business in context of
/// `keys`.
pub fn describe_data(conn: &mut PgConnection, keys: &Keys) -> BenchResult<DataSet> {
    let user_uuid = key(keys, "user_uuid")?.to_owned();
    let business_uuid = key(keys, "business_uuid")?.to_owned();
    // uuids come from our own seed output; still, only hex digits and dashes reach the SQL.
    let clean = |u: &str| u.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !clean(&user_uuid) || !clean(&business_uuid) {
        return Err("malformed uuid in the seed output".into());
    }
    Ok(DataSet {
        user_key: key(keys, "user_key")?.to_owned(),
        service_key: key(keys, "service_key")?.to_owned(),
        user_id: scalar(
            conn,
            &format!("SELECT id AS n FROM users WHERE uuid = '{user_uuid}'"),
        )?,
        business_id: scalar(
            conn,
            &format!("SELECT id AS n FROM businesses WHERE uuid = '{business_uuid}'"),
        )?,
        business_uuid,
        user_uuid,
        max_partner_id: scalar(conn, "SELECT coalesce(max(id), 0) AS n FROM partners")?,
        max_user_id: scalar(conn, "SELECT coalesce(max(id), 0) AS n FROM users")?,
        partners: scalar(
            conn,
            "SELECT count(*) AS n FROM partners WHERE deleted_at IS NULL",
        )?,
        wholesalers: scalar(
            conn,
            "SELECT count(*) AS n FROM partners WHERE deleted_at IS NULL \
             AND categories @> ARRAY['wholesaler']",
        )?,
        click_rows: scalar(conn, "SELECT count(*) AS n FROM partner_click_events")?,
    })
}

// ---------------------------------------------------------------------------------------------
// Click verification.

#[derive(QueryableByName, Debug)]
struct Mismatch {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    website_clicks: i64,
    #[diesel(sql_type = BigInt)]
    video_clicks: i64,
    #[diesel(sql_type = BigInt)]
    website_events: i64,
    #[diesel(sql_type = BigInt)]
    video_events: i64,
    #[diesel(sql_type = BigInt)]
    users_count: i64,
    #[diesel(sql_type = BigInt)]
    links: i64,
}

const COUNTER_CHECK: &str = "\
SELECT p.id, p.website_clicks, p.video_clicks,
       coalesce(e.website, 0) AS website_events, coalesce(e.video, 0) AS video_events,
       p.users_count, coalesce(l.links, 0) AS links
FROM partners p
LEFT JOIN (SELECT partner_id,
                  count(*) FILTER (WHERE event_type = 'website') AS website,
                  count(*) FILTER (WHERE event_type = 'video') AS video
           FROM partner_click_events GROUP BY partner_id) e ON e.partner_id = p.id
LEFT JOIN (SELECT partner_id, count(*) AS links FROM partner_users GROUP BY partner_id) l
       ON l.partner_id = p.id
WHERE p.website_clicks <> coalesce(e.website, 0) OR p.video_clicks <> coalesce(e.video, 0)
   OR p.users_count <> coalesce(l.links, 0)
ORDER BY p.id";

/// Checks the counters of every partner; returns the number of mismatching partners.
pub fn verify_counters(conn: &mut PgConnection) -> BenchResult<usize> {
    let started = Instant::now();
    let rows: Vec<Mismatch> = diesel::sql_query(COUNTER_CHECK)
        .load(conn)
        .map_err(|e| format!("counter check: {e}"))?;
    for m in rows.iter().take(20) {
        eprintln!(
            "load: MISMATCH partner {}: website_clicks {} vs {} events, video_clicks {} vs {} \
             events, users_count {} vs {} links",
            m.id,
            m.website_clicks,
            m.website_events,
            m.video_clicks,
            m.video_events,
            m.users_count,
            m.links
        );
    }
    eprintln!(
        "load: counter check of every partner: {} mismatching ({:.1} s)",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(rows.len())
}
