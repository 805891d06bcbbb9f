//! Who a call acts for: businesses and users by uuid, cached (moka: bounded, with a TTL, evicting
//! by frequency and recency, never all at once) so a warm call costs no database round trip while
//! changes made elsewhere are seen within the TTL.

use std::time::Duration;

use moka::sync::Cache;
use uuid::Uuid;

use crate::db::Db;
use crate::error::Result;
use crate::model::business;

/// Most businesses and users each cache holds.
const CAPACITY: u64 = 100_000;

/// A user's ids: `(user id, business id, business uuid)`.
pub type UserIds = (i64, i64, Uuid);

/// Cached lookups of businesses and users; cheap to clone.
#[derive(Clone)]
pub struct Context {
    db: Db,
    /// Business ids by uuid (only found ones: a business is never deleted).
    businesses: Cache<Uuid, i64>,
    /// Users by uuid, `None` for an unknown uuid (a user may be created or moved meanwhile, so
    /// both answers live for the key TTL only; a TTL of zero caches nothing).
    users: Option<Cache<Uuid, Option<UserIds>>>,
}

impl Context {
    /// Caches whose user entries live for `ttl` (business entries at least a minute).
    pub fn new(db: Db, ttl: Duration) -> Self {
        Context {
            db,
            businesses: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl.max(Duration::from_secs(60)))
                .build(),
            users: (!ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(CAPACITY)
                    .time_to_live(ttl)
                    .build()
            }),
        }
    }

    /// The id of a business by uuid.
    pub async fn business_id(&self, uuid: Uuid) -> Result<Option<i64>> {
        if let Some(hit) = self.businesses.get(&uuid) {
            return Ok(Some(hit));
        }
        let id = self
            .db
            .run(move |conn| Ok(business::id_by_uuid(conn, uuid)?))
            .await?;
        if let Some(id) = id {
            self.businesses.insert(uuid, id);
        }
        Ok(id)
    }

    /// A user's ids by uuid.
    pub async fn user(&self, uuid: Uuid) -> Result<Option<UserIds>> {
        if let Some(hit) = self.users.as_ref().and_then(|c| c.get(&uuid)) {
            return Ok(hit);
        }
        let found = self
            .db
            .run(move |conn| Ok(business::user_by_uuid(conn, uuid)?))
            .await?
            .map(|u| (u.id, u.business_id, u.business_uuid));
        if let Some(users) = &self.users {
            users.insert(uuid, found);
        }
        Ok(found)
    }

    /// Forgets a cached user (after it changed in this process).
    pub fn forget_user(&self, uuid: Uuid) {
        if let Some(users) = &self.users {
            users.invalidate(&uuid);
        }
    }
}
