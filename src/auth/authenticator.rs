//! [`Authenticator`]: API key → [`Principal`], with two bounded caches in front of the database
//! (moka: TTL, eviction by frequency and recency). Known prefixes and unknown ones are cached
//! apart, so a flood of made-up prefixes can only evict other made-up prefixes, never a real key.
//! Revocation and new keys are seen within the TTL.

use std::time::Duration;

use moka::sync::Cache;
use subtle::ConstantTimeEq;

use super::Principal;
use super::key::hash_secret;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::KeyKind;
use crate::model::api_key::{self, StoredKey};

/// Most known keys cached.
const KNOWN_KEYS: u64 = 10_000;
/// Most unknown prefixes cached.
const UNKNOWN_PREFIXES: u64 = 100_000;

/// What the caches know of a prefix.
#[derive(Clone)]
pub struct KeyCache {
    /// Stored keys by prefix (revoked ones too, so their callers cost no lookup either).
    known: Cache<String, StoredKey>,
    /// Prefixes no key has.
    unknown: Cache<String, ()>,
}

impl KeyCache {
    /// Caches keeping entries for `ttl`, or `None` when `ttl` is zero (no caching).
    pub fn new(ttl: Duration) -> Option<KeyCache> {
        (!ttl.is_zero()).then(|| KeyCache {
            known: Cache::builder()
                .max_capacity(KNOWN_KEYS)
                .time_to_live(ttl)
                .build(),
            unknown: Cache::builder()
                .max_capacity(UNKNOWN_PREFIXES)
                .time_to_live(ttl)
                .build(),
        })
    }

    /// `Some(found)` when the prefix is cached (`found`: the key, or `None` for no key).
    pub fn get(&self, prefix: &str) -> Option<Option<StoredKey>> {
        if let Some(key) = self.known.get(prefix) {
            return Some(Some(key));
        }
        self.unknown.get(prefix).map(|()| None)
    }

    /// Remembers what the database said of `prefix`.
    pub fn insert(&self, prefix: &str, found: Option<StoredKey>) {
        match found {
            Some(key) => self.known.insert(prefix.to_owned(), key),
            None => self.unknown.insert(prefix.to_owned(), ()),
        }
    }
}

/// Turns keys into principals, with a short-lived cache in front of the database.
#[derive(Clone)]
pub struct Authenticator {
    db: Db,
    cache: Option<KeyCache>,
}

impl Authenticator {
    /// An authenticator whose cache honours changes within `ttl`.
    pub fn new(db: Db, ttl: Duration) -> Self {
        Authenticator {
            db,
            cache: KeyCache::new(ttl),
        }
    }

    /// Authenticates a key given as its prefix and secret (see `super::key::parse_key`).
    pub async fn authenticate(&self, prefix: &str, secret: &str) -> Result<Principal> {
        let stored = match self.cache.as_ref().and_then(|c| c.get(prefix)) {
            Some(stored) => stored,
            None => {
                let owned = prefix.to_owned();
                let stored = self
                    .db
                    .run(move |conn| {
                        let found = api_key::find_by_prefix(conn, &owned)?;
                        if let Some(k) = &found
                            && k.revoked_at.is_none()
                        {
                            api_key::touch(conn, k.id)?;
                        }
                        Ok(found)
                    })
                    .await?;
                if let Some(cache) = &self.cache {
                    cache.insert(prefix, stored.clone());
                }
                stored
            }
        };
        let stored = stored.ok_or(Error::Unauthenticated)?;
        let matches: bool = hash_secret(secret)
            .as_slice()
            .ct_eq(stored.secret_hash.as_slice())
            .into();
        if !matches || stored.revoked_at.is_some() {
            return Err(Error::Unauthenticated);
        }
        match (stored.kind, stored.user) {
            (KeyKind::Service, _) => Ok(Principal::Service { name: stored.name }),
            (KeyKind::User, Some((user_id, user_uuid, business_id, business_uuid))) => {
                Ok(Principal::User {
                    user_id,
                    user_uuid,
                    business_id,
                    business_uuid,
                })
            }
            (KeyKind::User, None) => Err(Error::Unauthenticated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(prefix: &str) -> StoredKey {
        StoredKey {
            id: 1,
            prefix: prefix.to_owned(),
            secret_hash: vec![0; 32],
            kind: KeyKind::Service,
            name: "svc".into(),
            revoked_at: None,
            user: None,
        }
    }

    #[test]
    fn unknown_prefixes_never_evict_known_keys() {
        let cache = KeyCache::new(Duration::from_secs(60)).expect("cache");
        cache.insert("known0001", Some(stored("known0001")));
        for i in 0..(UNKNOWN_PREFIXES * 2) {
            cache.insert(&format!("junk{i:08}"), None);
        }
        cache.known.run_pending_tasks();
        cache.unknown.run_pending_tasks();
        assert!(
            matches!(cache.get("known0001"), Some(Some(k)) if k.prefix == "known0001"),
            "the real key is still cached"
        );
        assert!(cache.unknown.entry_count() <= UNKNOWN_PREFIXES);
        assert!(
            KeyCache::new(Duration::ZERO).is_none(),
            "a zero TTL caches nothing"
        );
    }
}
