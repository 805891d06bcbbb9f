//! API keys: creation (only the SHA-256 of the secret is stored), lookup by prefix, revocation.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use super::KeyKind;
use crate::db::schema::{api_keys, businesses, users};

/// A stored key with the user (and business) it acts as, for user keys.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub id: i64,
    pub prefix: String,
    pub secret_hash: Vec<u8>,
    pub kind: KeyKind,
    pub name: String,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `(user id, user uuid, business id, business uuid)` for user keys.
    pub user: Option<(i64, Uuid, i64, Uuid)>,
}

type KeyTuple = (
    i64,
    String,
    Vec<u8>,
    KeyKind,
    String,
    Option<DateTime<Utc>>,
    Option<i64>,
    Option<Uuid>,
    Option<i64>,
    Option<Uuid>,
);

/// The key with this prefix, revoked or not.
pub fn find_by_prefix(conn: &mut PgConnection, prefix: &str) -> QueryResult<Option<StoredKey>> {
    let row: Option<KeyTuple> = api_keys::table
        .left_join(users::table.left_join(businesses::table))
        .filter(api_keys::prefix.eq(prefix))
        .select((
            api_keys::id,
            api_keys::prefix,
            api_keys::secret_hash,
            api_keys::kind,
            api_keys::name,
            api_keys::revoked_at,
            users::id.nullable(),
            users::uuid.nullable(),
            users::business_id.nullable(),
            businesses::uuid.nullable(),
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|t| StoredKey {
        id: t.0,
        prefix: t.1,
        secret_hash: t.2,
        kind: t.3,
        name: t.4,
        revoked_at: t.5,
        user: match (t.6, t.7, t.8, t.9) {
            (Some(a), Some(b), Some(c), Some(d)) => Some((a, b, c, d)),
            _ => None,
        },
    }))
}

/// The prefixes of every stored key (revoked ones too).
pub fn all_prefixes(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    api_keys::table.select(api_keys::prefix).load(conn)
}

/// Stores a new key. `user_id` is set for user keys, `None` for service keys.
pub fn insert(
    conn: &mut PgConnection,
    prefix: &str,
    secret_hash: &[u8],
    user_id: Option<i64>,
    name: &str,
) -> QueryResult<i64> {
    let kind = if user_id.is_some() {
        KeyKind::User
    } else {
        KeyKind::Service
    };
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::prefix.eq(prefix),
            api_keys::secret_hash.eq(secret_hash),
            api_keys::kind.eq(kind),
            api_keys::user_id.eq(user_id),
            api_keys::name.eq(name),
        ))
        .returning(api_keys::id)
        .get_result(conn)
}

/// Revokes the key with this prefix; false when no unrevoked key has it.
pub fn revoke(conn: &mut PgConnection, prefix: &str) -> QueryResult<bool> {
    let n = diesel::update(
        api_keys::table
            .filter(api_keys::prefix.eq(prefix))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(diesel::dsl::now))
    .execute(conn)?;
    Ok(n == 1)
}

/// Records that a key was used (called on cache refresh, not on every call).
pub fn touch(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::update(api_keys::table.find(id))
        .set(api_keys::last_used_at.eq(diesel::dsl::now))
        .execute(conn)?;
    Ok(())
}
