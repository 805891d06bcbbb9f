//! Businesses (tenants) and their users: lookups by uuid and upserts.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::upsert::excluded;
use uuid::Uuid;

use crate::db::schema::{businesses, users};

/// A business row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = businesses)]
pub struct Business {
    pub id: i64,
    pub uuid: Uuid,
    pub name: String,
    pub country_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user row with its business's uuid.
#[derive(Debug, Clone)]
pub struct UserWithBusiness {
    pub id: i64,
    pub uuid: Uuid,
    pub business_id: i64,
    pub business_uuid: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The id of a business by uuid.
pub fn id_by_uuid(conn: &mut PgConnection, uuid: Uuid) -> QueryResult<Option<i64>> {
    businesses::table
        .filter(businesses::uuid.eq(uuid))
        .select(businesses::id)
        .first(conn)
        .optional()
}

/// Creates or updates a business by uuid.
pub fn upsert(
    conn: &mut PgConnection,
    uuid: Uuid,
    name: &str,
    country_code: Option<&str>,
) -> QueryResult<Business> {
    diesel::insert_into(businesses::table)
        .values((
            businesses::uuid.eq(uuid),
            businesses::name.eq(name),
            businesses::country_code.eq(country_code),
        ))
        .on_conflict(businesses::uuid)
        .do_update()
        .set((
            businesses::name.eq(excluded(businesses::name)),
            businesses::country_code.eq(excluded(businesses::country_code)),
            businesses::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Business::as_returning())
        .get_result(conn)
}

type UserTuple = (
    i64,
    Uuid,
    i64,
    Uuid,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn user_from_tuple(t: UserTuple) -> UserWithBusiness {
    UserWithBusiness {
        id: t.0,
        uuid: t.1,
        business_id: t.2,
        business_uuid: t.3,
        email: t.4,
        name: t.5,
        created_at: t.6,
        updated_at: t.7,
    }
}

/// A user (with business uuid) by uuid.
pub fn user_by_uuid(conn: &mut PgConnection, uuid: Uuid) -> QueryResult<Option<UserWithBusiness>> {
    users::table
        .inner_join(businesses::table)
        .filter(users::uuid.eq(uuid))
        .select((
            users::id,
            users::uuid,
            users::business_id,
            businesses::uuid,
            users::email,
            users::name,
            users::created_at,
            users::updated_at,
        ))
        .first::<UserTuple>(conn)
        .optional()
        .map(|o| o.map(user_from_tuple))
}

/// Creates or updates a user by uuid (moving it to `business_id` if it changed).
pub fn upsert_user(
    conn: &mut PgConnection,
    uuid: Uuid,
    business_id: i64,
    email: &str,
    name: &str,
) -> QueryResult<UserWithBusiness> {
    diesel::insert_into(users::table)
        .values((
            users::uuid.eq(uuid),
            users::business_id.eq(business_id),
            users::email.eq(email),
            users::name.eq(name),
        ))
        .on_conflict(users::uuid)
        .do_update()
        .set((
            users::business_id.eq(excluded(users::business_id)),
            users::email.eq(excluded(users::email)),
            users::name.eq(excluded(users::name)),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    user_by_uuid(conn, uuid)?.ok_or(diesel::result::Error::NotFound)
}
