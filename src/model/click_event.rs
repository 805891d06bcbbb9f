//! Click events, written in batches: one statement inserts a whole batch, skips events whose
//! partner is gone or whose idempotency key is taken, and bumps the partners' counters and the
//! hourly rollups, all committed together (group commit).

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};

use super::EventType;
use crate::db::sql::{Bind, Sql};

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewClickEvent {
    pub partner_id: i64,
    pub user_id: Option<i64>,
    pub business_id: Option<i64>,
    /// What was clicked.
    pub event_type: EventType,
    /// Who sent it; idempotency keys are unique per principal.
    pub principal: String,
    pub idempotency_key: Option<String>,
    /// Digest of what the event says, to tell a replay from a conflicting reuse of a key.
    pub fingerprint: String,
}

/// What happened to one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickOutcome {
    /// Stored now.
    Created { id: i64, created_at: DateTime<Utc> },
    /// The key was used before with the same body: the first event.
    Replayed { id: i64, created_at: DateTime<Utc> },
    /// The key was used before with a different body.
    KeyConflict,
    /// No live partner with that id.
    PartnerNotFound,
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = BigInt)]
    ord: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    event_id: Option<i64>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    created_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Existing {
    #[diesel(sql_type = Text)]
    principal: String,
    #[diesel(sql_type = Text)]
    idempotency_key: String,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    fingerprint: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

/// The batch statement; its binds are the batch's columns as arrays, in this order (partner ids,
/// user ids, business ids, event types, principals, idempotency keys, fingerprints). Public for
/// the load generator, which runs it under pgbench to measure the database's own ceiling.
///
/// One statement writes everything of the batch, so it commits as a whole even in autocommit:
/// the idempotency keys (`partner_click_requests`, unique across the events' monthly
/// partitions; migration 17), the events of live partners whose key is new or absent, the
/// partners' counters, and the hourly rollups (`partner_click_rollups`, migration 18).
///
/// Lock order, so that batches written at the same time by several writers or replicas never
/// deadlock: first a transaction-scoped advisory lock per partner of the batch (class
/// 1667329088, the partner id's `hashint8`), taken in sorted order before anything else (`guard`
/// is a one-time filter of `live`, read in full: `count`, not `EXISTS`, which would stop at the
/// first row), so two batches sharing a partner run one after the other and never wait for each
/// other's rows (partner rows and rollup rows are the partner's); then the keys are inserted in
/// (principal, idempotency key) order, so batches that share keys wait for them in one order.
/// (Locking the partner rows in id order with `FOR NO KEY UPDATE` instead was not enough:
/// Postgres still reported a deadlock between two batches on a partner row's tuple lock in about
/// every other run of `replicas::`, ~1,000 clicks with connects on the same partners; with the
/// advisory locks, none so far.)
pub const INSERT_BATCH: [&str; 8] = [
    "WITH input AS (
    SELECT nextval('partner_click_events_id_seq') AS id, t.*
    FROM unnest(",
    ", ",
    ", ",
    ", ",
    ", ",
    ", ",
    ", ",
    ") WITH ORDINALITY AS t(partner_id, user_id, business_id, event_type, principal, idempotency_key, fingerprint, ord)
), guard AS MATERIALIZED (
    SELECT pg_advisory_xact_lock(1667329088, x.h) FROM (
        SELECT DISTINCT hashint8(partner_id) AS h FROM input ORDER BY h
    ) x
), live AS MATERIALIZED (
    SELECT i.* FROM input i JOIN partners p ON p.id = i.partner_id AND p.deleted_at IS NULL
    WHERE (SELECT count(*) FROM guard) >= 0
), keyed AS (
    INSERT INTO partner_click_requests (principal, idempotency_key, event_id, fingerprint, created_at)
    SELECT l.principal, l.idempotency_key, l.id, l.fingerprint, now()
    FROM live l
    WHERE l.idempotency_key IS NOT NULL
    ORDER BY l.principal, l.idempotency_key, l.ord
    ON CONFLICT (principal, idempotency_key) DO NOTHING
    RETURNING event_id
), ins AS (
    INSERT INTO partner_click_events
        (id, partner_id, user_id, business_id, event_type, principal, idempotency_key, fingerprint, created_at)
    SELECT l.id, l.partner_id, l.user_id, l.business_id, l.event_type, l.principal, l.idempotency_key, l.fingerprint, now()
    FROM live l
    WHERE l.idempotency_key IS NULL OR l.id IN (SELECT event_id FROM keyed)
    RETURNING id, partner_id, business_id, event_type, created_at
), bump AS (
    UPDATE partners p
    SET website_clicks = p.website_clicks + c.website, video_clicks = p.video_clicks + c.video
    FROM (SELECT partner_id,
                 count(*) FILTER (WHERE event_type = 'website') AS website,
                 count(*) FILTER (WHERE event_type = 'video') AS video
          FROM ins GROUP BY partner_id ORDER BY partner_id) c
    WHERE p.id = c.partner_id
    RETURNING p.id
), roll AS (
    INSERT INTO partner_click_rollups AS r (partner_id, business_id, event_type, hour, clicks)
    SELECT partner_id, coalesce(business_id, 0), event_type, date_trunc('hour', created_at, 'UTC'), count(*)
    FROM ins GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (partner_id, hour, business_id, event_type) DO UPDATE SET clicks = r.clicks + excluded.clicks
    RETURNING r.partner_id
)
SELECT i.ord, ins.id AS event_id, ins.created_at
FROM input i LEFT JOIN ins ON ins.id = i.id
ORDER BY i.ord",
];

fn insert_batch_sql(events: &[NewClickEvent]) -> Sql {
    let binds = [
        Bind::I64Array(events.iter().map(|e| e.partner_id).collect()),
        Bind::OptI64Array(events.iter().map(|e| e.user_id).collect()),
        Bind::OptI64Array(events.iter().map(|e| e.business_id).collect()),
        Bind::TextArray(
            events
                .iter()
                .map(|e| e.event_type.as_str().to_owned())
                .collect(),
        ),
        Bind::TextArray(events.iter().map(|e| e.principal.clone()).collect()),
        Bind::OptTextArray(events.iter().map(|e| e.idempotency_key.clone()).collect()),
        Bind::TextArray(events.iter().map(|e| e.fingerprint.clone()).collect()),
    ];
    let mut sql = Sql::new(INSERT_BATCH[0]);
    for (bind, text) in binds.into_iter().zip(&INSERT_BATCH[1..]) {
        sql.bind(bind).push(text);
    }
    sql
}

fn find_by_keys_sql(keys: &[(usize, String, String)]) -> Sql {
    let mut sql = Sql::new(
        "SELECT e.principal, e.idempotency_key, e.event_id AS id, e.fingerprint, e.created_at \
         FROM partner_click_requests e JOIN unnest(",
    );
    sql.bind(Bind::TextArray(keys.iter().map(|k| k.1.clone()).collect()))
        .push(", ")
        .bind(Bind::TextArray(keys.iter().map(|k| k.2.clone()).collect()))
        .push(
            ") AS k(principal, idempotency_key) \
             ON e.principal = k.principal AND e.idempotency_key = k.idempotency_key",
        );
    sql
}

/// Inserts a batch; outcomes in input order. The events, keys, counters and rollups are written
/// by one statement, so they commit together even in autocommit; the follow-up lookup of skipped
/// keys only reads committed keys. A key repeated within the batch stores its first event; the
/// others are answered as replays of it (or conflicts, for another body).
pub fn insert_batch(
    conn: &mut PgConnection,
    events: &[NewClickEvent],
) -> QueryResult<Vec<ClickOutcome>> {
    let rows: Vec<Inserted> = insert_batch_sql(events).into_query().load(conn)?;

    let mut outcomes = vec![ClickOutcome::PartnerNotFound; events.len()];
    let mut skipped_keys = Vec::new();
    for row in rows {
        let index = (row.ord - 1) as usize;
        match (row.event_id, row.created_at) {
            (Some(id), Some(created_at)) => {
                outcomes[index] = ClickOutcome::Created { id, created_at };
            }
            _ => {
                if let Some(key) = &events[index].idempotency_key {
                    skipped_keys.push((index, events[index].principal.clone(), key.clone()));
                }
            }
        }
    }
    if skipped_keys.is_empty() {
        return Ok(outcomes);
    }
    let existing: Vec<Existing> = find_by_keys_sql(&skipped_keys).into_query().load(conn)?;
    for (index, principal, key) in skipped_keys {
        let found = existing
            .iter()
            .find(|e| e.principal == principal && e.idempotency_key == key);
        if let Some(first) = found {
            outcomes[index] = if first.fingerprint == events[index].fingerprint {
                ClickOutcome::Replayed {
                    id: first.id,
                    created_at: first.created_at,
                }
            } else {
                ClickOutcome::KeyConflict
            };
        }
    }
    Ok(outcomes)
}
