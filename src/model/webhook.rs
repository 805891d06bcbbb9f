//! Webhook endpoints and deliveries (migration 16). An endpoint gets the change log's events
//! after the log's position at its creation ([`Endpoint::after_sequence`]); [`fan_out`] turns new
//! changes into one delivery per matching endpoint (one replica at a time, under the dispatch
//! state's row lock); [`claim`] leases due attempts to one replica (`FOR UPDATE SKIP LOCKED`),
//! at most a given number in flight per endpoint; [`record`] stores an attempt's outcome. A lease
//! that runs out (its replica died) makes the attempt due again.
//!
//! A partner's events to an endpoint go in sequence order: an event made while an earlier one of
//! the same partner to the same endpoint is pending waits (`next_attempt_at` = infinity), and the
//! outcome that ends the earlier one (delivered or failed) makes the next one due. So the due
//! attempts are one range of an index, whatever the backlog.
//!
//! The three commit with `synchronous_commit = off` ([`without_flush`]): a Postgres crash may lose
//! their last fraction of a second, and each loss only repeats work (a fan-out pass runs again;
//! a lease taken is not, so the attempt is made again; an outcome is not, so a delivered event may
//! be sent again), which at-least-once delivery allows. Waiting for the WAL flush twice per
//! attempt would bound an endpoint's deliveries by the disk's flush rate.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};

use super::change::{Event, EventFilter, EventRow};

/// An endpoint as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct Endpoint {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Array<Text>)]
    pub event_types: Vec<String>,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub previous_secret: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// `requested` or `failing`; none when deliveries run.
    #[diesel(sql_type = Nullable<Text>)]
    pub paused_reason: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub failing_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub after_sequence: i64,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, secret, previous_secret, \
     previous_secret_until, paused_reason, failing_since, after_sequence, created_at, updated_at";

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub paused: bool,
}

/// Changes to an endpoint (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Pausing sets the reason `requested`; resuming clears the reason and the failure clock.
    pub paused: Option<bool>,
}

/// Stores a new endpoint with `secret`; it gets the events committed after this moment.
pub fn insert(conn: &mut PgConnection, new: &NewEndpoint, secret: &str) -> QueryResult<Endpoint> {
    diesel::sql_query(format!(
        "INSERT INTO webhook_endpoints (url, description, event_types, secret, paused_reason, \
         after_sequence) VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN 'requested' END, \
         greatest((SELECT max(sequence) FROM partner_changes), \
         (SELECT pruned_through FROM partner_change_state))) RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind::<Text, _>(&new.url)
    .bind::<Text, _>(&new.description)
    .bind::<Array<Text>, _>(&new.event_types)
    .bind::<Text, _>(secret)
    .bind::<diesel::sql_types::Bool, _>(new.paused)
    .get_result(conn)
}

/// The endpoint `id`.
pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<Endpoint>> {
    diesel::sql_query(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
    ))
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()
}

/// Endpoints with an id above `after_id`, by id, at most `limit`.
pub fn list(conn: &mut PgConnection, after_id: i64, limit: i64) -> QueryResult<Vec<Endpoint>> {
    diesel::sql_query(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind::<BigInt, _>(after_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// Applies `changes` to endpoint `id`; `None` when there is no such endpoint.
pub fn update(
    conn: &mut PgConnection,
    id: i64,
    changes: &EndpointChanges,
) -> QueryResult<Option<Endpoint>> {
    diesel::sql_query(format!(
        "UPDATE webhook_endpoints SET url = coalesce($2, url), \
         description = coalesce($3, description), event_types = coalesce($4, event_types), \
         paused_reason = CASE WHEN $5 IS NULL THEN paused_reason \
                              WHEN $5 THEN coalesce(paused_reason, 'requested') END, \
         failing_since = CASE WHEN $5 = false THEN NULL ELSE failing_since END, \
         updated_at = now() WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind::<BigInt, _>(id)
    .bind::<Nullable<Text>, _>(&changes.url)
    .bind::<Nullable<Text>, _>(&changes.description)
    .bind::<Nullable<Array<Text>>, _>(&changes.event_types)
    .bind::<Nullable<diesel::sql_types::Bool>, _>(changes.paused)
    .get_result(conn)
    .optional()
}

/// Deletes endpoint `id` and its deliveries; whether it existed.
pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::sql_query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind::<BigInt, _>(id)
        .execute(conn)?;
    Ok(n > 0)
}

/// Gives endpoint `id` the secret `secret`; the current one stays valid for `overlap_secs`.
pub fn rotate(
    conn: &mut PgConnection,
    id: i64,
    secret: &str,
    overlap_secs: i64,
) -> QueryResult<Option<Endpoint>> {
    diesel::sql_query(format!(
        "UPDATE webhook_endpoints SET previous_secret = secret, secret = $2, \
         previous_secret_until = now() + make_interval(secs => $3), updated_at = now() \
         WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind::<BigInt, _>(id)
    .bind::<Text, _>(secret)
    .bind::<BigInt, _>(overlap_secs)
    .get_result(conn)
    .optional()
}

/// A delivery as stored (without its payload).
#[derive(Debug, Clone, QueryableByName)]
pub struct Delivery {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub endpoint_id: i64,
    #[diesel(sql_type = BigInt)]
    pub sequence: i64,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = BigInt)]
    pub partner_id: i64,
    #[diesel(sql_type = Text)]
    pub message_id: String,
    /// `pending`, `delivered` or `failed`.
    #[diesel(sql_type = Text)]
    pub state: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    pub next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Integer>)]
    pub last_status: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, sequence, event_type, partner_id, message_id, \
     state, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at";

/// The deliveries of endpoint `endpoint_id` (in `state`, if given), newest event first, below
/// `before_id` (0: from the newest), at most `limit`.
pub fn deliveries(
    conn: &mut PgConnection,
    endpoint_id: i64,
    state: Option<&str>,
    before_id: i64,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    diesel::sql_query(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 \
         AND ($2::text IS NULL OR state = $2) AND ($3 = 0 OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind::<BigInt, _>(endpoint_id)
    .bind::<Nullable<Text>, _>(state)
    .bind::<BigInt, _>(before_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// Makes a failed delivery pending again, due now, with a fresh retry schedule; `None` when
/// endpoint `endpoint_id` has no delivery `id` in state `failed`.
pub fn retry(conn: &mut PgConnection, endpoint_id: i64, id: i64) -> QueryResult<Option<Delivery>> {
    diesel::sql_query(format!(
        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = now(), \
         leased_until = NULL WHERE id = $1 AND endpoint_id = $2 AND state = 'failed' \
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(endpoint_id)
    .get_result(conn)
    .optional()
}

/// The delivery `id` of endpoint `endpoint_id`.
pub fn find_delivery(
    conn: &mut PgConnection,
    endpoint_id: i64,
    id: i64,
) -> QueryResult<Option<Delivery>> {
    diesel::sql_query(format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1 AND endpoint_id = $2"
    ))
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(endpoint_id)
    .get_result(conn)
    .optional()
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = BigInt)]
    last_sequence: i64,
}

/// One pass of the fan-out: up to `limit` change events after the dispatch position become
/// deliveries for the endpoints that take them, each with the payload `payload` makes (in the
/// same transaction); answers how many events were taken. Another replica's pass in progress makes
/// this one take none. A position behind the log's retention skips to what is left (those
/// changes are gone; logged).
pub fn fan_out(
    conn: &mut PgConnection,
    limit: i64,
    payload: &dyn Fn(&Event) -> serde_json::Value,
) -> QueryResult<usize> {
    without_flush(conn, |conn| {
        let Some(position) = diesel::sql_query(
            "SELECT last_sequence FROM webhook_dispatch_state FOR UPDATE SKIP LOCKED",
        )
        .get_result::<Position>(conn)
        .optional()?
        else {
            return Ok(0);
        };
        let pruned = super::change::state(conn)?.pruned_through;
        if position.last_sequence < pruned {
            tracing::error!(
                webhooks.position = position.last_sequence,
                log.pruned_through = pruned,
                "webhook fan-out fell behind the change log's retention: events skipped"
            );
        }
        let changes: Vec<Event> = super::change::events_sql(
            position.last_sequence.max(pruned),
            limit,
            &EventFilter::default(),
        )
        .into_query()
        .load::<EventRow>(conn)?
        .into_iter()
        .map(Event::from)
        .collect();
        let Some(last) = changes.last().map(|c| c.sequence) else {
            return Ok(0);
        };
        let endpoints: Vec<Endpoint> = diesel::sql_query(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE after_sequence < $1"
        ))
        .bind::<BigInt, _>(last)
        .load(conn)?;
        for change in &changes {
            let kind = change.kind.to_string();
            let takers: Vec<i64> = endpoints
                .iter()
                .filter(|e| e.after_sequence < change.sequence)
                .filter(|e| e.event_types.is_empty() || e.event_types.contains(&kind))
                .map(|e| e.id)
                .collect();
            if takers.is_empty() {
                continue;
            }
            let body = payload(change);
            diesel::sql_query(
                "INSERT INTO webhook_deliveries (endpoint_id, sequence, event_type, partner_id, \
                 message_id, payload, next_attempt_at) \
                 SELECT e, $2, $3, $4, 'msg_' || e || '_' || $2, $5, \
                   CASE WHEN EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.endpoint_id = e \
                     AND p.partner_id = $4 AND p.state = 'pending' AND p.sequence < $2) \
                   THEN 'infinity'::timestamptz ELSE now() END \
                 FROM unnest($1::bigint[]) AS e ON CONFLICT (endpoint_id, sequence) DO NOTHING",
            )
            .bind::<Array<BigInt>, _>(&takers)
            .bind::<BigInt, _>(change.sequence)
            .bind::<Text, _>(&kind)
            .bind::<BigInt, _>(change.partner_id)
            .bind::<diesel::sql_types::Jsonb, _>(&body)
            .execute(conn)?;
        }
        diesel::sql_query("UPDATE webhook_dispatch_state SET last_sequence = $1")
            .bind::<BigInt, _>(last)
            .execute(conn)?;
        Ok(changes.len())
    })
}

/// An attempt leased to this replica: what to send, where, signed with which secrets.
#[derive(Debug, Clone, QueryableByName)]
pub struct Attempt {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub endpoint_id: i64,
    #[diesel(sql_type = Text)]
    pub message_id: String,
    #[diesel(sql_type = Text)]
    pub payload: String,
    /// This attempt's number (1 for the first).
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub secret: String,
    /// The previous secret while its overlap lasts.
    #[diesel(sql_type = Nullable<Text>)]
    pub previous_secret: Option<String>,
}

/// Leases up to `limit` due attempts for `lease_secs`: never a partner's event to an endpoint
/// while an earlier one of the same partner to the same endpoint is pending, at most
/// `per_endpoint` leased per endpoint (those of other replicas count), none for paused endpoints.
pub fn claim(
    conn: &mut PgConnection,
    limit: i64,
    per_endpoint: i64,
    lease_secs: i64,
) -> QueryResult<Vec<Attempt>> {
    without_flush(conn, |conn| {
        claim_sql(conn, limit, per_endpoint, lease_secs)
    })
}

fn claim_sql(
    conn: &mut PgConnection,
    limit: i64,
    per_endpoint: i64,
    lease_secs: i64,
) -> QueryResult<Vec<Attempt>> {
    diesel::sql_query(
        "WITH room AS ( \
           SELECT e.id AS endpoint_id, $2 - (SELECT count(*) FROM webhook_deliveries l \
             WHERE l.endpoint_id = e.id AND l.state = 'pending' AND l.leased_until > now()) AS free \
           FROM webhook_endpoints e WHERE e.paused_reason IS NULL), \
         due AS ( \
           SELECT c.id FROM room CROSS JOIN LATERAL ( \
             SELECT d.id FROM webhook_deliveries d \
             WHERE d.endpoint_id = room.endpoint_id AND d.state = 'pending' \
               AND d.next_attempt_at <= now() \
               AND (d.leased_until IS NULL OR d.leased_until < now()) \
             ORDER BY d.next_attempt_at, d.sequence LIMIT greatest(room.free, 0) \
             FOR UPDATE SKIP LOCKED) c \
           LIMIT $1) \
         UPDATE webhook_deliveries d \
         SET leased_until = now() + make_interval(secs => $3), attempts = d.attempts + 1 \
         FROM due, webhook_endpoints e \
         WHERE d.id = due.id AND e.id = d.endpoint_id \
         RETURNING d.id, d.endpoint_id, d.message_id, d.payload::text AS payload, d.attempts, \
           e.url, e.secret, \
           CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret",
    )
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(per_endpoint)
    .bind::<BigInt, _>(lease_secs)
    .load(conn)
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered { status: i32 },
    /// Another try after `delay_secs`.
    Retry {
        status: Option<i32>,
        error: String,
        delay_secs: f64,
    },
    /// No more tries.
    Failed { status: Option<i32>, error: String },
}

/// Stores the outcome of attempt `id` of endpoint `endpoint_id`. A failure starts the endpoint's
/// failure clock (a success stops it); an endpoint failing for longer than `pause_after_secs` is
/// paused (`failing`).
pub fn record(
    conn: &mut PgConnection,
    endpoint_id: i64,
    id: i64,
    outcome: &Outcome,
    pause_after_secs: i64,
) -> QueryResult<()> {
    without_flush(conn, |conn| {
        let (state, status, error, delay) = match outcome {
            Outcome::Delivered { status } => ("delivered", Some(*status), None, 0.0),
            Outcome::Retry {
                status,
                error,
                delay_secs,
            } => ("pending", *status, Some(error.as_str()), *delay_secs),
            Outcome::Failed { status, error } => ("failed", *status, Some(error.as_str()), 0.0),
        };
        diesel::sql_query(
            "UPDATE webhook_deliveries SET state = $2, last_status = $3, last_error = $4, \
             leased_until = NULL, next_attempt_at = now() + make_interval(secs => $5), \
             delivered_at = CASE WHEN $2 = 'delivered' THEN now() END WHERE id = $1",
        )
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(state)
        .bind::<Nullable<Integer>, _>(status)
        .bind::<Nullable<Text>, _>(error)
        .bind::<diesel::sql_types::Double, _>(delay)
        .execute(conn)?;
        if state != "pending" {
            // The partner's next event to this endpoint may go now.
            diesel::sql_query(
                "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = ( \
                   SELECT n.id FROM webhook_deliveries d JOIN webhook_deliveries n \
                     ON n.endpoint_id = d.endpoint_id AND n.partner_id = d.partner_id \
                   WHERE d.id = $1 AND n.state = 'pending' AND n.sequence > d.sequence \
                   ORDER BY n.sequence LIMIT 1) AND next_attempt_at = 'infinity'",
            )
            .bind::<BigInt, _>(id)
            .execute(conn)?;
        }
        if state == "delivered" {
            diesel::sql_query(
                "UPDATE webhook_endpoints SET failing_since = NULL \
                 WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind::<BigInt, _>(endpoint_id)
            .execute(conn)?;
        } else {
            diesel::sql_query(
                "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()), \
                 paused_reason = CASE WHEN failing_since < now() - make_interval(secs => $2) \
                   THEN coalesce(paused_reason, 'failing') ELSE paused_reason END \
                 WHERE id = $1",
            )
            .bind::<BigInt, _>(endpoint_id)
            .bind::<BigInt, _>(pause_after_secs)
            .execute(conn)?;
        }
        Ok(())
    })
}

/// Runs `f` in a transaction that commits without waiting for the WAL flush (see the module
/// documentation for why that is safe here).
fn without_flush<T>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    conn.transaction(|conn| {
        diesel::sql_query("SET LOCAL synchronous_commit = off").execute(conn)?;
        f(conn)
    })
}
