//! [`Authenticator`]: API key → [`Principal`], with two bounded caches in front of the database
//! (moka: TTL, eviction by frequency and recency). Known prefixes and unknown ones are cached
//! apart, so a flood of made-up prefixes can only evict other made-up prefixes, never a real key.
//! Revocation and new keys are seen within the TTL.
//!
//! A flood of made-up prefixes, each new, would still cost a lookup each; so the set of every
//! stored prefix is held too ([`KnownPrefixes`]), reloaded (one statement) when a prefix outside
//! it comes and the set is older than [`PREFIXES_REFRESH`]. A prefix outside a fresh set may
//! still be a key created since: it is looked up, but only [`LOOKUPS_PER_SECOND`] such lookups a
//! second are made; beyond them, during a flood, it is refused without a database round trip
//! (and a real new key works once the set is reloaded, within a second).

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
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
/// Shortest time between two reloads of the stored prefixes.
pub const PREFIXES_REFRESH: Duration = Duration::from_secs(1);
/// Lookups per second of prefixes outside a fresh set (a burst as large is allowed).
pub const LOOKUPS_PER_SECOND: u32 = 10;

/// The prefixes of every stored key, reloaded on demand at most once per [`PREFIXES_REFRESH`].
struct KnownPrefixes {
    set: RwLock<HashSet<String>>,
    /// When the set was loaded, in ms since [`epoch`] + 1 (0: never).
    loaded_ms: AtomicU64,
    /// One reload at a time; callers that waited check the new set.
    reloading: tokio::sync::Mutex<()>,
    /// Lookups of prefixes outside a fresh set.
    lookups: DefaultDirectRateLimiter,
}

impl Default for KnownPrefixes {
    fn default() -> Self {
        let rate = NonZeroU32::new(LOOKUPS_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        KnownPrefixes {
            set: RwLock::default(),
            loaded_ms: AtomicU64::new(0),
            reloading: tokio::sync::Mutex::new(()),
            lookups: RateLimiter::direct(Quota::per_second(rate)),
        }
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl KnownPrefixes {
    fn contains(&self, prefix: &str) -> bool {
        self.set
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(prefix)
    }

    fn fresh(&self) -> bool {
        let loaded = self.loaded_ms.load(Ordering::Acquire);
        loaded != 0
            && epoch().elapsed().as_millis() as u64 + 1 - loaded
                < PREFIXES_REFRESH.as_millis() as u64
    }

    fn add(&self, prefix: &str) {
        self.set
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(prefix.to_owned());
    }

    /// Whether `prefix` is worth a lookup: in the set (reloaded first if stale), or, outside a
    /// fresh set, while the lookup budget lasts.
    async fn may_exist(&self, db: &Db, prefix: &str) -> Result<bool> {
        if self.contains(prefix) {
            return Ok(true);
        }
        if !self.fresh() {
            let _one = self.reloading.lock().await;
            if !self.fresh() {
                let prefixes = db.run(|conn| Ok(api_key::all_prefixes(conn)?)).await?;
                *self
                    .set
                    .write()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    prefixes.into_iter().collect();
                self.loaded_ms
                    .store(epoch().elapsed().as_millis() as u64 + 1, Ordering::Release);
                return Ok(self.contains(prefix));
            }
            if self.contains(prefix) {
                return Ok(true);
            }
        }
        Ok(self.lookups.check().is_ok())
    }
}

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
    /// Held when caching is on (with no cache, every call asks the database).
    prefixes: Option<Arc<KnownPrefixes>>,
}

impl Authenticator {
    /// An authenticator whose cache honours changes within `ttl`.
    pub fn new(db: Db, ttl: Duration) -> Self {
        let cache = KeyCache::new(ttl);
        Authenticator {
            db,
            prefixes: cache.is_some().then(Arc::default),
            cache,
        }
    }

    /// Authenticates a key given as its prefix and secret (see `super::key::parse_key`).
    pub async fn authenticate(&self, prefix: &str, secret: &str) -> Result<Principal> {
        let stored = match self.cache.as_ref().and_then(|c| c.get(prefix)) {
            Some(stored) => stored,
            None => {
                if let Some(prefixes) = &self.prefixes
                    && !prefixes.may_exist(&self.db, prefix).await?
                {
                    return Err(Error::Unauthenticated);
                }
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
                if let (Some(prefixes), Some(_)) = (&self.prefixes, &stored) {
                    prefixes.add(prefix);
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
