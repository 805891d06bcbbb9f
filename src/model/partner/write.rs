//! Administration writes: create (once per request id: [`insert_once`]), update with changed
//! fields only, upsert by external id, soft delete and restore.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Bool;

use crate::db::schema::{partner_create_requests, partners};
use crate::model::PartnerStatus;

/// Values of a new partner.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = partners)]
pub struct NewPartner {
    pub name: String,
    pub description: String,
    pub email: String,
    pub logo_url: String,
    pub website_url: String,
    pub video_url: String,
    pub categories: Vec<String>,
    pub wholesaler_categories: Vec<String>,
    pub country_codes: Vec<String>,
    pub tags: Vec<String>,
    pub status: PartnerStatus,
    pub active: bool,
    pub external_id: Option<String>,
    pub metadata: serde_json::Value,
}

/// Changed fields of a partner (`None` = unchanged).
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = partners)]
pub struct PartnerChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub email: Option<String>,
    pub logo_url: Option<String>,
    pub website_url: Option<String>,
    pub video_url: Option<String>,
    pub categories: Option<Vec<String>>,
    pub wholesaler_categories: Option<Vec<String>>,
    pub country_codes: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub status: Option<PartnerStatus>,
    pub active: Option<bool>,
    pub external_id: Option<Option<String>>,
    pub metadata: Option<serde_json::Value>,
}

/// Inserts a partner and returns its id.
pub fn insert(conn: &mut PgConnection, new: &NewPartner) -> QueryResult<i64> {
    diesel::insert_into(partners::table)
        .values(new)
        .returning(partners::id)
        .get_result(conn)
}

/// Applies changes to a live partner; false when it does not exist.
pub fn update(conn: &mut PgConnection, id: i64, changes: &PartnerChanges) -> QueryResult<bool> {
    let n = diesel::update(
        partners::table
            .filter(partners::id.eq(id))
            .filter(partners::deleted_at.is_null()),
    )
    .set((changes, partners::updated_at.eq(diesel::dsl::now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Soft-deletes a live partner; false when it does not exist. Its external id is freed for other
/// partners and kept in `deleted_external_id` for [`restore`].
pub fn soft_delete(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::update(
        partners::table
            .filter(partners::id.eq(id))
            .filter(partners::deleted_at.is_null()),
    )
    .set((
        partners::deleted_at.eq(diesel::dsl::now),
        partners::updated_at.eq(diesel::dsl::now),
        partners::deleted_external_id.eq(partners::external_id),
        partners::external_id.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// The partner is live again (with its external id, if it had one).
    Restored,
    /// No partner has this id.
    Missing,
    /// The partner is not deleted.
    NotDeleted,
    /// Another partner took the deleted partner's external id. The caller must roll back: when
    /// the partner took it concurrently (`holder` unknown), the failed update aborted the
    /// transaction.
    ExternalIdTaken {
        /// The deleted partner's external id.
        external_id: String,
        /// The live partner that has it now, when known.
        holder: Option<i64>,
    },
}

/// Undeletes a soft-deleted partner and gives it back its external id, unless another partner
/// holds it now. Run it in a transaction: the partner row is locked first. A partner that takes
/// the external id concurrently makes the update fail on `partners_external_id_key`, reported as
/// [`Restored::ExternalIdTaken`] too.
pub fn restore(conn: &mut PgConnection, id: i64) -> QueryResult<Restored> {
    let row: Option<(Option<DateTime<Utc>>, Option<String>)> = partners::table
        .filter(partners::id.eq(id))
        .select((partners::deleted_at, partners::deleted_external_id))
        .for_update()
        .first(conn)
        .optional()?;
    let external_id = match row {
        None => return Ok(Restored::Missing),
        Some((None, _)) => return Ok(Restored::NotDeleted),
        Some((Some(_), external_id)) => external_id,
    };
    if let Some(external_id) = external_id.clone() {
        let holder: Option<i64> = partners::table
            .filter(partners::external_id.eq(&external_id))
            .select(partners::id)
            .first(conn)
            .optional()?;
        if holder.is_some() {
            return Ok(Restored::ExternalIdTaken {
                external_id,
                holder,
            });
        }
    }
    let restored = diesel::update(partners::table.filter(partners::id.eq(id)))
        .set((
            partners::deleted_at.eq(None::<DateTime<Utc>>),
            partners::updated_at.eq(diesel::dsl::now),
            partners::external_id.eq(&external_id),
            partners::deleted_external_id.eq(None::<String>),
        ))
        .execute(conn);
    match (restored, external_id) {
        (Ok(_), _) => Ok(Restored::Restored),
        (Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)), Some(e))
            if info.constraint_name() == Some("partners_external_id_key") =>
        {
            Ok(Restored::ExternalIdTaken {
                external_id: e,
                holder: None,
            })
        }
        (Err(err), _) => Err(err),
    }
}

/// Creates the partner with `new.external_id` (which must be set) or, when a partner has it,
/// applies `changes` to that one, in one statement (`INSERT … ON CONFLICT (external_id) DO
/// UPDATE`): concurrent upserts of one external id make one partner. Returns the partner's id and
/// whether it was created.
pub fn upsert(
    conn: &mut PgConnection,
    new: &NewPartner,
    changes: &PartnerChanges,
) -> QueryResult<(i64, bool)> {
    diesel::insert_into(partners::table)
        .values(new)
        .on_conflict(partners::external_id)
        .do_update()
        .set((changes, partners::updated_at.eq(diesel::dsl::now)))
        .returning((partners::id, diesel::dsl::sql::<Bool>("xmax = 0")))
        .get_result(conn)
}

/// Applies `changes` to the live partner with `external_id`; its id, or `None` when there is
/// none (an upsert that could not create: it has no name).
pub fn update_by_external_id(
    conn: &mut PgConnection,
    external_id: &str,
    changes: &PartnerChanges,
) -> QueryResult<Option<i64>> {
    diesel::update(partners::table.filter(partners::external_id.eq(external_id)))
        .set((changes, partners::updated_at.eq(diesel::dsl::now)))
        .returning(partners::id)
        .get_result(conn)
        .optional()
}

/// What [`insert_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOnce {
    /// The request id was new: this partner was created.
    Created(i64),
    /// A call with this request id and the same partner created this one before.
    Replayed(i64),
    /// The request id was used for another partner.
    KeyReused,
}

/// Creates a partner once per `(principal, request_id)` (AIP-155); run it in a transaction. The
/// request's row is claimed first: a concurrent call with the same id waits for this one's
/// commit, then finds the row and replays (same `fingerprint`) or reports the reuse.
pub fn insert_once(
    conn: &mut PgConnection,
    new: &NewPartner,
    principal: &str,
    request_id: &str,
    fingerprint: &str,
) -> QueryResult<CreateOnce> {
    use partner_create_requests::dsl as r;
    let claimed = diesel::insert_into(r::partner_create_requests)
        .values((
            r::principal.eq(principal),
            r::request_id.eq(request_id),
            r::fingerprint.eq(fingerprint),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if claimed == 1 {
        let id = insert(conn, new)?;
        diesel::update(r::partner_create_requests.find((principal, request_id)))
            .set(r::partner_id.eq(id))
            .execute(conn)?;
        return Ok(CreateOnce::Created(id));
    }
    let (first, partner): (String, Option<i64>) = r::partner_create_requests
        .find((principal, request_id))
        .select((r::fingerprint, r::partner_id))
        .first(conn)?;
    Ok(match partner {
        Some(id) if first == fingerprint => CreateOnce::Replayed(id),
        _ => CreateOnce::KeyReused,
    })
}

/// Deletes up to `batch` request ids of creates older than `retention_secs`; how many went.
pub fn prune_create_requests(
    conn: &mut PgConnection,
    retention_secs: i64,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM partner_create_requests WHERE (principal, request_id) IN \
         (SELECT principal, request_id FROM partner_create_requests \
          WHERE created_at < now() - make_interval(secs => $1) LIMIT $2)",
    )
    .bind::<diesel::sql_types::Double, _>(retention_secs as f64)
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
}
