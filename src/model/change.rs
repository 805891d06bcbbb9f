//! The change log (migration 12): one row per change of what a list or a partner read shows,
//! written by triggers in the writing transaction and numbered at commit, in commit order. A
//! reader keeps the last sequence it applied and asks for the rows after it ([`after`]); since a
//! snapshot that sees a sequence sees every smaller one, it never skips a change. A reader whose
//! last sequence is below [`LogState::pruned_through`] has lost changes to the retention and
//! reloads in full.
//!
//! The same rows are the change events other services read ([`events`], migration 14 adds the
//! partner as it was after each `partner.*` change): one snapshot gives a page and how far it
//! reaches, so a reader that walks by `next_after` never skips or repeats an event.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::sql::{Bind, Sql};

use super::PartnerStatus;
use super::enums::text_enum;
use super::partner::PartnerRecord;
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use std::fmt;

text_enum! {
    /// What a change-log row records.
    ChangeKind {
        PartnerCreated = "partner.created",
        PartnerUpdated = "partner.updated",
        PartnerDeleted = "partner.deleted",
        PartnerRestored = "partner.restored",
        IntegrationUpdated = "partner_integration.updated",
        PreferenceUpdated = "partner_preference.updated",
        UserConnected = "partner_user.connected",
        UserDisconnected = "partner_user.disconnected",
    }
}

impl ChangeKind {
    /// Whether the change is to the partner's own row (what the lists filter and search on may
    /// have changed).
    pub fn is_partner(self) -> bool {
        matches!(
            self,
            ChangeKind::PartnerCreated
                | ChangeKind::PartnerUpdated
                | ChangeKind::PartnerDeleted
                | ChangeKind::PartnerRestored
        )
    }
}

/// The partners the `partner.*` changes among `changes` name, in id order, once each (the
/// partners whose rows a copy of the lists must read again).
pub fn partners_named(changes: &[Change]) -> Vec<i64> {
    let mut partners: Vec<i64> = changes
        .iter()
        .filter(|c| c.kind.is_partner())
        .map(|c| c.partner_id)
        .collect();
    partners.sort_unstable();
    partners.dedup();
    partners
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Change {
    #[diesel(sql_type = BigInt)]
    pub sequence: i64,
    #[diesel(sql_type = Text)]
    pub kind: ChangeKind,
    #[diesel(sql_type = BigInt)]
    pub partner_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub business_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_id: Option<i64>,
    #[diesel(sql_type = Array<Text>)]
    pub changed_fields: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
}

/// Where the log stands in the reader's snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct LogState {
    /// The highest sequence committed (the pruned position when the log is empty).
    #[diesel(sql_type = BigInt)]
    pub last: i64,
    /// Every change up to this sequence may have been deleted by the retention.
    #[diesel(sql_type = BigInt)]
    pub pruned_through: i64,
    /// The search version of the same snapshot (migration 9).
    #[diesel(sql_type = BigInt)]
    pub search_version: i64,
    /// The search version at which a write that skips triggers last asked every copy to reload
    /// in full (migration 12).
    #[diesel(sql_type = BigInt)]
    pub reset_version: i64,
}

/// See [`LogState`].
pub fn state(conn: &mut PgConnection) -> QueryResult<LogState> {
    diesel::sql_query(STATE_SQL).get_result(conn)
}

/// The statement of [`state`] (one row).
pub const STATE_SQL: &str = "SELECT greatest((SELECT max(sequence) FROM partner_changes), c.pruned_through) AS last, \
     c.pruned_through, s.version AS search_version, s.reset_version \
     FROM partner_change_state c CROSS JOIN partner_search_state s";

/// The columns of [`Change`], as [`after`] reads them from `partner_changes`.
pub const CHANGE_COLUMNS: &str =
    "sequence, kind, partner_id, business_id, user_id, changed_fields, occurred_at";

/// The committed changes after `sequence`, in order, at most `limit`.
pub fn after(conn: &mut PgConnection, sequence: i64, limit: i64) -> QueryResult<Vec<Change>> {
    after_sql(sequence, limit).into_query().load(conn)
}

/// The statement of [`after`].
pub fn after_sql(sequence: i64, limit: i64) -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(CHANGE_COLUMNS)
        .push(" FROM partner_changes WHERE sequence > ")
        .bind(Bind::I64(sequence))
        .push(" ORDER BY sequence LIMIT ")
        .bind(Bind::I64(limit));
    sql
}

/// Deletes up to `batch` changes that occurred more than `retention_secs` ago and records the
/// highest sequence deleted; returns how many were deleted. Writers never wait on it (old rows
/// only; the state row is the cleanups' own).
pub fn prune(conn: &mut PgConnection, retention_secs: i64, batch: i64) -> QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Deleted {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut sql = Sql::new(
        "WITH gone AS (DELETE FROM partner_changes WHERE id IN (SELECT id FROM partner_changes \
         WHERE sequence IS NOT NULL AND occurred_at < now() - make_interval(secs => ",
    );
    sql.bind(Bind::I64(retention_secs))
        .push(") ORDER BY occurred_at LIMIT ")
        .bind(Bind::I64(batch))
        .push(
            ") RETURNING sequence), \
             moved AS (UPDATE partner_change_state \
             SET pruned_through = greatest(pruned_through, (SELECT max(sequence) FROM gone)) \
             WHERE EXISTS (SELECT 1 FROM gone)) \
             SELECT count(*) AS n FROM gone",
        );
    let deleted: Deleted = sql.into_query().get_result(conn)?;
    Ok(usize::try_from(deleted.n).unwrap_or(0))
}

/// A change as an event: the change with the uuids of its business and user and, for the
/// `partner.*` kinds, the partner's columns as they were after it (migration 14; `None` for
/// other kinds and for rows written before that migration).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub sequence: i64,
    #[diesel(sql_type = Text)]
    pub kind: ChangeKind,
    #[diesel(sql_type = BigInt)]
    pub partner_id: i64,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub business_uuid: Option<Uuid>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub user_uuid: Option<Uuid>,
    #[diesel(sql_type = Array<Text>)]
    pub changed_fields: Vec<String>,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub partner: Option<serde_json::Value>,
}

/// Which events a reader wants (empty: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these kinds.
    pub kinds: Vec<ChangeKind>,
    /// Only these partners.
    pub partner_ids: Vec<i64>,
}

impl EventFilter {
    /// Whether `event` passes the filter (the same test as the statement's).
    pub fn matches(&self, kind: ChangeKind, partner_id: i64) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.partner_ids.is_empty() || self.partner_ids.contains(&partner_id))
    }
}

/// A change event: an [`EventRow`] with its partner snapshot read into a record (as a read
/// without business or user context returns it).
#[derive(Debug, Clone)]
pub struct Event {
    pub sequence: i64,
    pub kind: ChangeKind,
    pub partner_id: i64,
    pub business_uuid: Option<Uuid>,
    pub user_uuid: Option<Uuid>,
    pub changed_fields: Vec<String>,
    pub occurred_at: DateTime<Utc>,
    /// The partner after the change (`partner.*` kinds).
    pub partner: Option<PartnerRecord>,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Event {
        let partner = row.partner.and_then(|json| {
            serde_json::from_value::<Snapshot>(json)
                .inspect_err(|error| {
                    tracing::warn!(
                        sequence = row.sequence,
                        error.message = %error,
                        "change log: a partner snapshot does not read back, event sent without it"
                    );
                })
                .ok()
                .and_then(Snapshot::into_record)
        });
        Event {
            sequence: row.sequence,
            kind: row.kind,
            partner_id: row.partner_id,
            business_uuid: row.business_uuid,
            user_uuid: row.user_uuid,
            changed_fields: row.changed_fields,
            occurred_at: row.occurred_at,
            partner,
        }
    }
}

/// The partner columns of a snapshot (`to_jsonb` of the row, migration 14); other keys are
/// ignored, so a later column does not break older readers.
#[derive(Debug, serde::Deserialize)]
struct Snapshot {
    id: i64,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    logo_url: String,
    #[serde(default)]
    website_url: String,
    #[serde(default)]
    video_url: String,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    wholesaler_categories: Vec<String>,
    #[serde(default)]
    country_codes: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    status: String,
    active: bool,
    external_id: Option<String>,
    #[serde(default)]
    metadata: serde_json::Value,
    #[serde(default)]
    website_clicks: i64,
    #[serde(default)]
    video_clicks: i64,
    #[serde(default)]
    users_count: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default)]
    deleted_at: Option<DateTime<Utc>>,
}

impl Snapshot {
    fn into_record(self) -> Option<PartnerRecord> {
        Some(PartnerRecord {
            id: self.id,
            name: self.name,
            description: self.description,
            email: self.email,
            logo_url: self.logo_url,
            website_url: self.website_url,
            video_url: self.video_url,
            categories: self.categories,
            wholesaler_categories: self.wholesaler_categories,
            country_codes: self.country_codes,
            tags: self.tags,
            status: PartnerStatus::parse(&self.status)?,
            active: self.active,
            external_id: self.external_id,
            metadata: self.metadata,
            website_clicks: self.website_clicks,
            video_clicks: self.video_clicks,
            users_count: self.users_count,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            preferred: false,
            integration_status: None,
            connected: false,
            total_count: None,
        })
    }
}

/// One page of events, read in one snapshot.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events after the requested sequence, in sequence order.
    pub events: Vec<Event>,
    /// Where the next page starts: the last event's sequence when the page is full, else the
    /// highest sequence committed in the snapshot (every event up to it was seen, since a
    /// snapshot that sees a sequence sees every smaller one). Never below the requested one.
    pub next_after: i64,
    /// Events up to this sequence may have been deleted by the retention.
    pub pruned_through: i64,
    /// The requested sequence (not 0, the start) is below `pruned_through`: events after it may
    /// be lost, and the page is empty.
    pub expired: bool,
}

/// The events after `sequence` passing `filter`, at most `limit`, in one read-only snapshot
/// (`sequence` 0: from the oldest retained event).
pub fn events(
    conn: &mut PgConnection,
    sequence: i64,
    limit: i64,
    filter: &EventFilter,
) -> QueryResult<EventPage> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let log = state(conn)?;
            // 0 asks for the oldest retained event: nothing a reader had is lost.
            if sequence != 0 && sequence < log.pruned_through {
                return Ok(EventPage {
                    events: Vec::new(),
                    next_after: sequence,
                    pruned_through: log.pruned_through,
                    expired: true,
                });
            }
            let rows: Vec<EventRow> = events_sql(sequence, limit, filter)
                .into_query()
                .load(conn)?;
            let events: Vec<Event> = rows.into_iter().map(Event::from).collect();
            let full = events.len() as i64 >= limit;
            let last_seen = events.last().map_or(sequence, |e| e.sequence);
            let next_after = if full {
                last_seen
            } else {
                last_seen.max(log.last).max(sequence)
            };
            Ok(EventPage {
                events,
                next_after,
                pruned_through: log.pruned_through,
                expired: false,
            })
        })
}

/// The statement of [`events`]' page.
pub fn events_sql(sequence: i64, limit: i64, filter: &EventFilter) -> Sql {
    let mut sql = Sql::new(
        "SELECT c.sequence, c.kind, c.partner_id, b.uuid AS business_uuid, u.uuid AS user_uuid, \
         c.changed_fields, c.occurred_at, c.partner \
         FROM partner_changes c \
         LEFT JOIN businesses b ON b.id = c.business_id \
         LEFT JOIN users u ON u.id = c.user_id \
         WHERE c.sequence > ",
    );
    sql.bind(Bind::I64(sequence));
    if !filter.kinds.is_empty() {
        sql.push(" AND c.kind = ANY(").bind(Bind::TextArray(
            filter.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
        ));
        sql.push(")");
    }
    if !filter.partner_ids.is_empty() {
        sql.push(" AND c.partner_id = ANY(")
            .bind(Bind::I64Array(filter.partner_ids.clone()));
        sql.push(")");
    }
    sql.push(" ORDER BY c.sequence LIMIT ")
        .bind(Bind::I64(limit));
    sql
}
