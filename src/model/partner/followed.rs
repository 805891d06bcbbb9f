//! The change-log follower's one statement (`crate::serving::lists::follower`): where the log
//! stands, the changes after the copy's sequence and the partners they changed, read together so
//! they share one snapshot and one round trip.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz};

use super::guarded::{PLACED_COLUMNS, PlacedRow, SearchRow};
use crate::db::sql::{Bind, Sql};
use crate::model::PartnerStatus;
use crate::model::change::{self, Change, ChangeKind, LogState};

/// What the change-log follower needs of one snapshot: where the log stands, the changes after
/// the copy's sequence, and the changed partners as [`PlacedRow`]s (see [`followed`]).
#[derive(Debug, Clone)]
pub struct Followed {
    pub state: LogState,
    /// At most the `limit` asked for, in sequence order.
    pub changes: Vec<Change>,
    /// The live partners named by the `partner.*` changes among `changes`, in list order.
    pub placed: Vec<PlacedRow>,
}

/// One row of [`followed_sql`]: the log's state on every row, then either a change or a placed
/// partner (or, when nothing changed, neither).
#[derive(QueryableByName)]
struct FollowedRow {
    #[diesel(embed)]
    state: LogState,
    #[diesel(sql_type = Nullable<BigInt>)]
    sequence: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    kind: Option<ChangeKind>,
    #[diesel(sql_type = Nullable<BigInt>)]
    partner_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    business_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    user_id: Option<i64>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    changed_fields: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    occurred_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    lower_name: Option<String>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    categories: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    wholesaler_categories: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    country_codes: Option<Vec<String>>,
    #[diesel(sql_type = Nullable<Text>)]
    status: Option<PartnerStatus>,
    #[diesel(sql_type = Nullable<Bool>)]
    active: Option<bool>,
    #[diesel(sql_type = Nullable<BigInt>)]
    after: Option<i64>,
}

/// The statement of [`followed`]: [`change::STATE_SQL`], [`change::after_sql`] and
/// [`super::placed_rows_sql`] for the `partner.*` changes, as one statement, so one snapshot and one
/// round trip (a transaction around the three would take five).
fn followed_sql(sequence: i64, limit: i64) -> Sql {
    let partner_kinds: Vec<String> = ChangeKind::ALL
        .iter()
        .filter(|k| k.is_partner())
        .map(|k| k.as_str().to_owned())
        .collect();
    let mut sql = Sql::new("WITH st AS (");
    sql.push(change::STATE_SQL)
        .push("), ch AS MATERIALIZED (SELECT ")
        .push(change::CHANGE_COLUMNS)
        .push(" FROM partner_changes WHERE sequence > ")
        .bind(Bind::I64(sequence))
        .push(" ORDER BY sequence LIMIT ")
        .bind(Bind::I64(limit))
        .push(
            "), x AS (SELECT 1 AS part, sequence AS ord, sequence, kind, partner_id, \
             business_id, user_id, changed_fields, occurred_at, NULL::bigint AS id, \
             NULL::text AS lower_name, NULL::text[] AS categories, \
             NULL::text[] AS wholesaler_categories, NULL::text[] AS country_codes, \
             NULL::text AS status, NULL::boolean AS active, NULL::bigint AS after FROM ch \
             UNION ALL SELECT 2, row_number() OVER (ORDER BY c.name, c.id), NULL, NULL, NULL, \
             NULL, NULL, NULL, NULL, ",
        )
        .push(PLACED_COLUMNS)
        .push(
            " FROM partners c WHERE c.deleted_at IS NULL AND c.id IN \
             (SELECT partner_id FROM ch WHERE kind = ANY(",
        )
        .bind(Bind::TextArray(partner_kinds))
        .push("))) SELECT st.*, x.* FROM st LEFT JOIN x ON true ORDER BY x.part, x.ord");
    sql
}

/// Where the log stands, the changes after `sequence` (at most `limit`), and the partners they
/// changed, read in one statement (so in one snapshot: the rows are exactly as of the state's
/// search version and last sequence).
pub fn followed(conn: &mut PgConnection, sequence: i64, limit: i64) -> QueryResult<Followed> {
    let rows: Vec<FollowedRow> = followed_sql(sequence, limit).into_query().load(conn)?;
    let Some(state) = rows.first().map(|r| r.state) else {
        return Err(diesel::result::Error::NotFound);
    };
    let mut followed = Followed {
        state,
        changes: Vec::new(),
        placed: Vec::new(),
    };
    for row in rows {
        if let (Some(sequence), Some(kind), Some(partner_id), Some(occurred_at)) =
            (row.sequence, row.kind, row.partner_id, row.occurred_at)
        {
            followed.changes.push(Change {
                sequence,
                kind,
                partner_id,
                business_id: row.business_id,
                user_id: row.user_id,
                changed_fields: row.changed_fields.unwrap_or_default(),
                occurred_at,
            });
        } else if let (Some(id), Some(lower_name), Some(status), Some(active)) =
            (row.id, row.lower_name, row.status, row.active)
        {
            followed.placed.push(PlacedRow {
                partner: SearchRow {
                    id,
                    lower_name,
                    categories: row.categories.unwrap_or_default(),
                    wholesaler_categories: row.wholesaler_categories.unwrap_or_default(),
                    country_codes: row.country_codes.unwrap_or_default(),
                    status,
                    active,
                },
                after: row.after,
            });
        }
    }
    Ok(followed)
}
