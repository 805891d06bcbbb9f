//! Reads of click analytics: a partner's time series and the top partners from the hourly rollups
//! (migration 18; never the raw events), a page of raw events (newest first, keyset on
//! (created_at, id)), the zone names Postgres knows, and the page tokens' key.

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use uuid::Uuid;

use super::EventType;

/// One bucket of a time series.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct BucketRow {
    #[diesel(sql_type = Timestamptz)]
    pub start: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub website: i64,
    #[diesel(sql_type = BigInt)]
    pub video: i64,
}

/// What a time series counts.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub partner_id: i64,
    /// Only this business's clicks (`None`: all).
    pub business_id: Option<i64>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// `hour`, `day`, `week` or `month`.
    pub unit: &'static str,
    /// A zone Postgres knows.
    pub time_zone: String,
}

/// Every bucket of `q`'s range in order (empty ones as zeros). Day, week and month buckets are
/// the zone's calendar (a local series, each start converted to its instant, so days stay whole
/// across daylight-saving changes); hour buckets are consecutive hours from the zone's hour
/// containing `since`. A rollup hour counts in the bucket it starts in.
pub fn series(conn: &mut PgConnection, q: &SeriesQuery) -> QueryResult<Vec<BucketRow>> {
    let business = if q.business_id.is_some() {
        "AND r.business_id = $6"
    } else {
        ""
    };
    let (series, bucket) = if q.unit == "hour" {
        (
            "SELECT s AS start, s + interval '1 hour' AS next
             FROM generate_series(date_trunc('hour', $2, $4), $3 - interval '1 microsecond',
                                  interval '1 hour') AS s",
            "date_bin(interval '1 hour', r.hour, (SELECT min(start) FROM series))",
        )
    } else {
        (
            "SELECT l AT TIME ZONE $4 AS start, (l + ('1 ' || $5)::interval) AT TIME ZONE $4 AS next
             FROM generate_series(date_trunc($5, $2 AT TIME ZONE $4), $3 AT TIME ZONE $4,
                                  ('1 ' || $5)::interval) AS l
             WHERE l AT TIME ZONE $4 < $3",
            "date_trunc($5, r.hour, $4)",
        )
    };
    let sql = format!(
        "WITH series AS MATERIALIZED ({series}),
         counts AS (
             SELECT {bucket} AS start,
                    sum(r.clicks) FILTER (WHERE r.event_type = 'website') AS website,
                    sum(r.clicks) FILTER (WHERE r.event_type = 'video') AS video
             FROM partner_click_rollups r
             WHERE r.partner_id = $1 {business}
               AND r.hour >= (SELECT min(start) FROM series) AND r.hour < (SELECT max(next) FROM series)
             GROUP BY 1)
         SELECT s.start, coalesce(c.website, 0)::bigint AS website, coalesce(c.video, 0)::bigint AS video
         FROM series s LEFT JOIN counts c ON c.start = s.start
         ORDER BY s.start"
    );
    diesel::sql_query(sql)
        .bind::<BigInt, _>(q.partner_id)
        .bind::<Timestamptz, _>(q.since)
        .bind::<Timestamptz, _>(q.until)
        .bind::<Text, _>(&q.time_zone)
        .bind::<Text, _>(q.unit)
        .bind::<BigInt, _>(q.business_id.unwrap_or(0))
        .load(conn)
}

/// A partner's clicks in a range.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct TopRow {
    #[diesel(sql_type = BigInt)]
    pub partner_id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub website: i64,
    #[diesel(sql_type = BigInt)]
    pub video: i64,
}

/// The live partners with clicks in [since, until) (whole hours), most first then by id: one
/// page, and how many there are. One statement: the rollups of the range are summed per partner
/// once, and the page carries the count of all of them (`count(*) OVER ()`); only a page past
/// the end (no row to carry it) counts in a second statement. Without parallel workers (each
/// would build the whole per-partner hash again: three times the CPU for the same answer), and
/// summing `int4` (an hour's clicks of one partner, business and type; an `int8` state per
/// partner instead of a `numeric` one, so the hash stays in `work_mem`).
pub fn top(
    conn: &mut PgConnection,
    business_id: Option<i64>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<TopRow>, i64)> {
    let business = if business_id.is_some() {
        "AND r.business_id = $3"
    } else {
        ""
    };
    let totals = format!(
        "WITH totals AS (
             SELECT r.partner_id,
                    coalesce(sum(r.clicks::int4) FILTER (WHERE r.event_type = 'website'), 0) AS website,
                    coalesce(sum(r.clicks::int4) FILTER (WHERE r.event_type = 'video'), 0) AS video
             FROM partner_click_rollups r
             WHERE r.hour >= $1 AND r.hour < $2 {business}
             GROUP BY r.partner_id)"
    );
    conn.transaction(|conn| {
        conn.batch_execute("SET LOCAL max_parallel_workers_per_gather = 0")?;
        top_statements(conn, &totals, business_id, since, until, limit, offset)
    })
}

fn top_statements(
    conn: &mut PgConnection,
    totals: &str,
    business_id: Option<i64>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<TopRow>, i64)> {
    #[derive(QueryableByName)]
    struct Total {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    #[derive(QueryableByName)]
    struct PageRow {
        #[diesel(sql_type = BigInt)]
        partner_id: i64,
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = BigInt)]
        website: i64,
        #[diesel(sql_type = BigInt)]
        video: i64,
        #[diesel(sql_type = BigInt)]
        total_count: i64,
    }
    let rows: Vec<PageRow> = diesel::sql_query(format!(
        "{totals}
         SELECT t.partner_id, p.name, t.website, t.video, count(*) OVER () AS total_count
         FROM totals t JOIN partners p ON p.id = t.partner_id AND p.deleted_at IS NULL
         ORDER BY t.website + t.video DESC, t.partner_id
         LIMIT $4 OFFSET $5"
    ))
    .bind::<Timestamptz, _>(since)
    .bind::<Timestamptz, _>(until)
    .bind::<BigInt, _>(business_id.unwrap_or(0))
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load(conn)?;
    if let Some(first) = rows.first() {
        let total = first.total_count;
        let page = rows
            .into_iter()
            .map(|r| TopRow {
                partner_id: r.partner_id,
                name: r.name,
                website: r.website,
                video: r.video,
            })
            .collect();
        return Ok((page, total));
    }
    if offset == 0 {
        return Ok((Vec::new(), 0));
    }
    let total: Total = diesel::sql_query(format!(
        "{totals}
         SELECT count(*) AS n
         FROM totals t JOIN partners p ON p.id = t.partner_id AND p.deleted_at IS NULL"
    ))
    .bind::<Timestamptz, _>(since)
    .bind::<Timestamptz, _>(until)
    .bind::<BigInt, _>(business_id.unwrap_or(0))
    .get_result(conn)?;
    Ok((Vec::new(), total.n))
}

/// A stored click event with the uuids of its user and business.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub partner_id: i64,
    #[diesel(sql_type = Text)]
    pub event_type: EventType,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub user_uuid: Option<Uuid>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub business_uuid: Option<Uuid>,
}

/// Which events a page lists.
#[derive(Debug, Clone)]
pub struct EventFilter {
    pub partner_id: Option<i64>,
    pub business_id: Option<i64>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Continue after this (created_at, id), exclusive.
    pub before: Option<(DateTime<Utc>, i64)>,
}

/// Up to `limit` events of `f`, newest first (ties by id, descending).
pub fn events(conn: &mut PgConnection, f: &EventFilter, limit: i64) -> QueryResult<Vec<EventRow>> {
    let mut conditions = String::new();
    if f.partner_id.is_some() {
        conditions.push_str(" AND e.partner_id = $3");
    }
    if f.business_id.is_some() {
        conditions.push_str(" AND e.business_id = $4");
    }
    if f.before.is_some() {
        conditions.push_str(" AND (e.created_at, e.id) < ($5, $6)");
    }
    let (at, id) = f.before.unwrap_or((f.until, 0));
    diesel::sql_query(format!(
        "SELECT e.id, e.partner_id, e.event_type, e.created_at, u.uuid AS user_uuid, b.uuid AS business_uuid
         FROM partner_click_events e
         LEFT JOIN users u ON u.id = e.user_id
         LEFT JOIN businesses b ON b.id = e.business_id
         WHERE e.created_at >= $1 AND e.created_at < $2{conditions}
         ORDER BY e.created_at DESC, e.id DESC
         LIMIT $7"
    ))
    .bind::<Timestamptz, _>(f.since)
    .bind::<Timestamptz, _>(f.until)
    .bind::<BigInt, _>(f.partner_id.unwrap_or(0))
    .bind::<BigInt, _>(f.business_id.unwrap_or(0))
    .bind::<Timestamptz, _>(at)
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// The names of the time zones Postgres knows (`pg_timezone_names`).
pub fn time_zone_names(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let names: Vec<Name> = diesel::sql_query("SELECT name FROM pg_timezone_names").load(conn)?;
    Ok(names.into_iter().map(|n| n.name).collect())
}

/// The key of the events' page tokens (migration 18).
pub fn token_key(conn: &mut PgConnection) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = Text)]
        secret: String,
    }
    let key: Key =
        diesel::sql_query("SELECT secret FROM partner_click_token_key").get_result(conn)?;
    Ok(key.secret)
}
