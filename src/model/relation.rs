//! Business↔partner and user↔partner relations: integrations, preferences, connections.
//! Connections keep `partners.users_count` in step, in the caller's transaction.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::upsert::excluded;

use super::IntegrationStatus;
use crate::db::schema::{
    partner_integrations, partner_preferences, partner_users, partners, users,
};

/// An integration row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = partner_integrations)]
pub struct Integration {
    pub id: i64,
    pub business_id: i64,
    pub partner_id: i64,
    pub status: IntegrationStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Creates or updates the integration of a business with a partner.
pub fn set_integration(
    conn: &mut PgConnection,
    business_id: i64,
    partner_id: i64,
    status: IntegrationStatus,
) -> QueryResult<Integration> {
    diesel::insert_into(partner_integrations::table)
        .values((
            partner_integrations::business_id.eq(business_id),
            partner_integrations::partner_id.eq(partner_id),
            partner_integrations::status.eq(status),
        ))
        .on_conflict((
            partner_integrations::business_id,
            partner_integrations::partner_id,
        ))
        .do_update()
        .set((
            partner_integrations::status.eq(excluded(partner_integrations::status)),
            partner_integrations::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Integration::as_returning())
        .get_result(conn)
}

/// Marks (`true`) or unmarks a partner as preferred by a business. Idempotent.
pub fn set_preference(
    conn: &mut PgConnection,
    business_id: i64,
    partner_id: i64,
    preferred: bool,
) -> QueryResult<()> {
    if preferred {
        diesel::insert_into(partner_preferences::table)
            .values((
                partner_preferences::business_id.eq(business_id),
                partner_preferences::partner_id.eq(partner_id),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
    } else {
        diesel::delete(
            partner_preferences::table
                .filter(partner_preferences::business_id.eq(business_id))
                .filter(partner_preferences::partner_id.eq(partner_id)),
        )
        .execute(conn)?;
    }
    Ok(())
}

/// Connects a user to a partner; bumps `users_count` only when the link is new. Run in a transaction.
pub fn connect(conn: &mut PgConnection, partner_id: i64, user_id: i64) -> QueryResult<bool> {
    // The link carries the user's business (kept equal by a composite foreign key).
    let inserted = diesel::insert_into(partner_users::table)
        .values(users::table.filter(users::id.eq(user_id)).select((
            partner_id.into_sql::<BigInt>(),
            users::id,
            users::business_id,
        )))
        .into_columns((
            partner_users::partner_id,
            partner_users::user_id,
            partner_users::business_id,
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if inserted == 1 {
        diesel::update(partners::table.find(partner_id))
            .set(partners::users_count.eq(partners::users_count + 1))
            .execute(conn)?;
    }
    Ok(inserted == 1)
}

/// Disconnects a user from a partner; lowers `users_count` only when a link was removed.
pub fn disconnect(conn: &mut PgConnection, partner_id: i64, user_id: i64) -> QueryResult<bool> {
    let deleted = diesel::delete(
        partner_users::table
            .filter(partner_users::partner_id.eq(partner_id))
            .filter(partner_users::user_id.eq(user_id)),
    )
    .execute(conn)?;
    if deleted == 1 {
        diesel::update(partners::table.find(partner_id))
            .set(partners::users_count.eq(partners::users_count - 1))
            .execute(conn)?;
    }
    Ok(deleted == 1)
}
