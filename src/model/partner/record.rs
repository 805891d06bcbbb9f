//! The partner row as every read returns it: the partner's columns plus the context columns of the
//! business and user in scope (`preferred`, `integration_status`, `connected`), and the SQL
//! fragments that select and join them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};

use crate::db::sql::{Bind, Sql};
use crate::model::{IntegrationStatus, PartnerStatus};

/// Who is asking: the business and user in context (database ids), if any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    /// Business in context.
    pub business_id: Option<i64>,
    /// User in context.
    pub user_id: Option<i64>,
}

/// A partner row with the context columns of the business/user in scope.
#[derive(Debug, Clone, QueryableByName)]
pub struct PartnerRecord {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub logo_url: String,
    #[diesel(sql_type = Text)]
    pub website_url: String,
    #[diesel(sql_type = Text)]
    pub video_url: String,
    #[diesel(sql_type = Array<Text>)]
    pub categories: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub wholesaler_categories: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub country_codes: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub tags: Vec<String>,
    #[diesel(sql_type = Text)]
    pub status: PartnerStatus,
    #[diesel(sql_type = Bool)]
    pub active: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub external_id: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub metadata: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    pub website_clicks: i64,
    #[diesel(sql_type = BigInt)]
    pub video_clicks: i64,
    #[diesel(sql_type = BigInt)]
    pub users_count: i64,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    /// When the partner was soft-deleted (only `show_deleted` lists return deleted partners).
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Preferred by the business in scope (false without a business).
    #[diesel(sql_type = Bool)]
    pub preferred: bool,
    /// Integration status with the business in scope.
    #[diesel(sql_type = Nullable<Text>)]
    pub integration_status: Option<IntegrationStatus>,
    /// Connected to the user in scope (false without a user).
    #[diesel(sql_type = Bool)]
    pub connected: bool,
    /// Exact size of the whole list, when the page query could tell it.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total_count: Option<i64>,
}

pub(super) const PARTNER_COLUMNS: &str = "p.id, p.name, p.description, p.email, p.logo_url, p.website_url, \
     p.video_url, p.categories, p.wholesaler_categories, p.country_codes, p.tags, p.status, \
     p.active, p.external_id, p.metadata, p.website_clicks, p.video_clicks, p.users_count, \
     p.created_at, p.updated_at, p.deleted_at";

/// The context columns (`preferred`, `integration_status`, `connected`) of `partners p`.
pub(super) const CONTEXT_COLUMNS: &str = ", (pp.partner_id IS NOT NULL) AS preferred, \
     pi.status AS integration_status, (pu.user_id IS NOT NULL) AS connected";

pub(super) fn push_preference_join(sql: &mut Sql, scope: Scope) {
    sql.push(" LEFT JOIN partner_preferences pp ON pp.partner_id = p.id AND pp.business_id = ")
        .bind(Bind::OptI64(scope.business_id));
}

/// Appends the joins behind [`CONTEXT_COLUMNS`] for `scope`.
pub(super) fn push_context_joins(sql: &mut Sql, scope: Scope) {
    push_preference_join(sql, scope);
    sql.push(" LEFT JOIN partner_integrations pi ON pi.partner_id = p.id AND pi.business_id = ")
        .bind(Bind::OptI64(scope.business_id))
        .push(" LEFT JOIN partner_users pu ON pu.partner_id = p.id AND pu.user_id = ")
        .bind(Bind::OptI64(scope.user_id));
}
