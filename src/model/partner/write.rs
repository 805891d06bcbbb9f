//! Administration writes: create, update with changed fields only, soft delete.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use crate::db::schema::partners;
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

/// Soft-deletes a live partner (and frees its external id); false when it does not exist.
pub fn soft_delete(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::update(
        partners::table
            .filter(partners::id.eq(id))
            .filter(partners::deleted_at.is_null()),
    )
    .set((
        partners::deleted_at.eq(diesel::dsl::now),
        partners::updated_at.eq(diesel::dsl::now),
        partners::external_id.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
