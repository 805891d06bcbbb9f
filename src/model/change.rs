//! The change log (migration 12): one row per change of what a list or a partner read shows,
//! written by triggers in the writing transaction and numbered at commit, in commit order. A
//! reader keeps the last sequence it applied and asks for the rows after it ([`after`]); since a
//! snapshot that sees a sequence sees every smaller one, it never skips a change. A reader whose
//! last sequence is below [`LogState::pruned_through`] has lost changes to the retention and
//! reloads in full.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz};

use crate::db::sql::{Bind, Sql};

use super::enums::text_enum;
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
    diesel::sql_query(
        "SELECT greatest((SELECT max(sequence) FROM partner_changes), c.pruned_through) AS last, \
         c.pruned_through, s.version AS search_version, s.reset_version \
         FROM partner_change_state c CROSS JOIN partner_search_state s",
    )
    .get_result(conn)
}

/// The committed changes after `sequence`, in order, at most `limit`.
pub fn after(conn: &mut PgConnection, sequence: i64, limit: i64) -> QueryResult<Vec<Change>> {
    after_sql(sequence, limit).into_query().load(conn)
}

/// The statement of [`after`].
pub fn after_sql(sequence: i64, limit: i64) -> Sql {
    let mut sql = Sql::new(
        "SELECT sequence, kind, partner_id, business_id, user_id, changed_fields, occurred_at \
         FROM partner_changes WHERE sequence > ",
    );
    sql.bind(Bind::I64(sequence))
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
