//! API keys and principals. Keys look like `pk_<prefix>_<secret>`; only the SHA-256 of the secret
//! is stored and it is compared in constant time. Every failure is the same UNAUTHENTICATED.
//! Lookups are cached for a short TTL, so revocation is honoured within seconds.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::cache::TtlCache;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::api_key::{self, StoredKey};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A trusted internal service.
    Service {
        /// The key's name.
        name: String,
    },
    /// A platform user; the business in context is the user's.
    User {
        user_id: i64,
        user_uuid: Uuid,
        business_id: i64,
        business_uuid: Uuid,
    },
}

impl Principal {
    /// Stable identity for idempotency keys.
    pub fn idempotency_scope(&self) -> String {
        match self {
            Principal::Service { name } => format!("service:{name}"),
            Principal::User { user_uuid, .. } => format!("user:{user_uuid}"),
        }
    }
}

/// A freshly generated key: the full text (shown once) and what is stored.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// `pk_<prefix>_<secret>`.
    pub key: String,
    /// Lookup prefix.
    pub prefix: String,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Generates a new random key.
pub fn generate_key() -> Result<GeneratedKey> {
    let prefix = random_hex(6)?;
    let secret = random_hex(24)?;
    Ok(GeneratedKey {
        key: format!("pk_{prefix}_{secret}"),
        secret_hash: hash_secret(&secret),
        prefix,
    })
}

/// Generates a key, stores its prefix and hash (a user key when `user_id` is set) and returns the
/// full key, which is shown once and never stored.
pub fn create_key(
    conn: &mut diesel::PgConnection,
    user_id: Option<i64>,
    name: &str,
) -> Result<String> {
    let generated = generate_key()?;
    api_key::insert(
        conn,
        &generated.prefix,
        &generated.secret_hash,
        user_id,
        name,
    )?;
    Ok(generated.key)
}

/// SHA-256 of a secret.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits `pk_<prefix>_<secret>`; `None` when malformed.
pub fn parse_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("pk_")?;
    let (prefix, secret) = rest.split_once('_')?;
    let ok = |s: &str, min, max| {
        (min..=max).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(prefix, 8, 32) && ok(secret, 16, 128)).then_some((prefix, secret))
}

/// Extracts the key from an `authorization: Bearer …` value.
pub fn bearer(value: Option<&str>) -> Option<&str> {
    let value = value?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Turns keys into principals, with a short-lived cache in front of the database.
#[derive(Clone)]
pub struct Authenticator {
    db: Db,
    cache: Arc<TtlCache<String, Option<StoredKey>>>,
}

impl Authenticator {
    /// An authenticator whose cache honours changes within `ttl`.
    pub fn new(db: Db, ttl: Duration) -> Self {
        Authenticator {
            db,
            cache: Arc::new(TtlCache::new(ttl, 10_000)),
        }
    }

    /// Authenticates an `authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal> {
        let key = bearer(authorization).ok_or(Error::Unauthenticated)?;
        let (prefix, secret) = parse_key(key).ok_or(Error::Unauthenticated)?;
        let stored = match self.cache.get(&prefix.to_owned()) {
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
                self.cache.insert(prefix.to_owned(), stored.clone());
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
        match (stored.kind.as_str(), stored.user) {
            ("service", _) => Ok(Principal::Service { name: stored.name }),
            ("user", Some((user_id, user_uuid, business_id, business_uuid))) => {
                Ok(Principal::User {
                    user_id,
                    user_uuid,
                    business_id,
                    business_uuid,
                })
            }
            _ => Err(Error::Unauthenticated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back() {
        let generated = generate_key().expect("key");
        let (prefix, secret) = parse_key(&generated.key).expect("parses");
        assert_eq!(prefix, generated.prefix);
        assert_eq!(hash_secret(secret), generated.secret_hash);
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for bad in [
            "",
            "pk_",
            "pk_abc_def",
            "sk_0123456789ab_0123456789abcdef0123",
            "pk_0123456789AB_0123456789abcdef0123",
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }
}
