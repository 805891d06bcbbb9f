//! The click events' monthly partitions (migration 17) and the hourly rollups' repair
//! (migration 18): which partitions exist, creating the months ahead, dropping the months past
//! the retention (with their idempotency keys), and rebuilding the rollups from the events.
//! Partition names are `partner_click_events_pYYYYMM`, built here from dates, never from input.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Text, Timestamptz};

/// Advisory lock (transaction scope) held by the partition maintenance, so that of several
/// replicas one at a time creates or drops partitions.
const MAINTENANCE_LOCK: i64 = 0x636c_6963_6b70_6172; // "clickpar"

/// What one maintenance run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Months whose partition was created.
    pub created: Vec<NaiveDate>,
    /// Months whose partition was dropped.
    pub dropped: Vec<NaiveDate>,
    /// False when another process held the maintenance lock (nothing was done).
    pub ran: bool,
}

/// The first day of `t`'s month (UTC).
pub fn month_of(t: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap_or(NaiveDate::MIN)
}

fn partition_name(month: NaiveDate) -> String {
    format!(
        "partner_click_events_p{:04}{:02}",
        month.year(),
        month.month()
    )
}

fn parse_partition(name: &str) -> Option<NaiveDate> {
    let digits = name.strip_prefix("partner_click_events_p")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::from_ymd_opt(digits[..4].parse().ok()?, digits[4..].parse().ok()?, 1)
}

/// The months that have a partition, oldest first.
pub fn partitions(conn: &mut PgConnection) -> QueryResult<Vec<NaiveDate>> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let names: Vec<Name> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'partner_click_events'::regclass",
    )
    .load(conn)?;
    let mut months: Vec<NaiveDate> = names
        .iter()
        .filter_map(|n| parse_partition(&n.name))
        .collect();
    months.sort();
    Ok(months)
}

/// Creates `month`'s partition unless it exists; true when created.
pub fn create(conn: &mut PgConnection, month: NaiveDate) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Created {
        #[diesel(sql_type = Bool)]
        created: bool,
    }
    let row: Created =
        diesel::sql_query("SELECT partner_click_events_create_partition($1) AS created")
            .bind::<Date, _>(month)
            .get_result(conn)?;
    Ok(row.created)
}

/// Creates the partitions of `now`'s month and the `ahead` months after it, and, with a
/// retention of `retention_months` (> 0), drops each month's partition all of which is older
/// than that ([`prune_keys`] then removes their idempotency keys). One transaction under an advisory lock
/// (other replicas skip their run meanwhile), with a lock timeout: a drop waits for the
/// partition's in-flight inserts, never for long; what times out is done on the next run.
pub fn maintain(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    ahead: u32,
    retention_months: u32,
) -> QueryResult<Maintenance> {
    conn.transaction(|conn| {
        #[derive(QueryableByName)]
        struct Locked {
            #[diesel(sql_type = Bool)]
            locked: bool,
        }
        let lock: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(MAINTENANCE_LOCK)
            .get_result(conn)?;
        if !lock.locked {
            return Ok(Maintenance::default());
        }
        conn.batch_execute("SET LOCAL lock_timeout = '3s'")?;
        let mut report = Maintenance {
            ran: true,
            ..Maintenance::default()
        };
        let current = month_of(now);
        for n in 0..=ahead {
            let month = current + Months::new(n);
            if create(conn, month)? {
                report.created.push(month);
            }
        }
        if retention_months > 0 {
            // A month is dropped once its end is `retention_months` behind now.
            let horizon = now
                .checked_sub_months(Months::new(retention_months))
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            for month in partitions(conn)? {
                let end = month + Months::new(1);
                if end.and_hms_opt(0, 0, 0).map(|e| e.and_utc()) <= Some(horizon) {
                    conn.batch_execute(&format!("DROP TABLE {}", partition_name(month)))?;
                    report.dropped.push(month);
                }
            }
        }
        Ok(report)
    })
}

/// Deletes up to `batch` idempotency keys older than the oldest partition (their events were
/// dropped by retention; a replay of such a key records a new event); returns how many.
pub fn prune_keys(conn: &mut PgConnection, batch: i64) -> QueryResult<usize> {
    let Some(oldest) = partitions(conn)?.first().copied() else {
        return Ok(0);
    };
    let before = oldest
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    diesel::sql_query(
        "DELETE FROM partner_click_requests WHERE ctid IN (SELECT ctid FROM partner_click_requests \
         WHERE created_at < $1 LIMIT $2)",
    )
    .bind::<Timestamptz, _>(before)
    .bind::<BigInt, _>(batch)
    .execute(conn)
}

/// Recomputes the rollups from the events kept (from the oldest partition's month on; the
/// rollups of dropped months stay as they are). Inserts wait meanwhile (the events table is
/// locked in SHARE mode), so the rollups equal the events when it commits. Returns the rollup
/// rows written.
pub fn rebuild_rollups(conn: &mut PgConnection) -> QueryResult<usize> {
    conn.transaction(|conn| {
        conn.batch_execute("LOCK TABLE partner_click_events IN SHARE MODE")?;
        let from = partitions(conn)?
            .first()
            .and_then(|m| m.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        diesel::sql_query("DELETE FROM partner_click_rollups WHERE hour >= $1")
            .bind::<Timestamptz, _>(from)
            .execute(conn)?;
        diesel::sql_query(
            "INSERT INTO partner_click_rollups (partner_id, business_id, event_type, hour, clicks) \
             SELECT partner_id, coalesce(business_id, 0), event_type, \
                    date_trunc('hour', created_at, 'UTC'), count(*) \
             FROM partner_click_events WHERE created_at >= $1 GROUP BY 1, 2, 3, 4",
        )
        .bind::<Timestamptz, _>(from)
        .execute(conn)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_and_reject_others() {
        let month = NaiveDate::from_ymd_opt(2026, 3, 1).expect("date");
        assert_eq!(partition_name(month), "partner_click_events_p202603");
        assert_eq!(parse_partition(&partition_name(month)), Some(month));
        assert_eq!(parse_partition("partner_click_events_p2026133"), None);
        assert_eq!(parse_partition("partner_click_events_p202613"), None);
        assert_eq!(parse_partition("other"), None);
    }
}
