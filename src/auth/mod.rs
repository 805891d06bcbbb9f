//! API keys and principals. Keys look like `pk_<prefix>_<secret>`; only the SHA-256 of the secret
//! is stored and it is compared in constant time ([`key`]). [`Authenticator`] turns a key into a
//! [`Principal`] through a bounded cache; [`KeyLimiter`] holds the per-key rate limits and
//! [`AddressLimiter`] the failed authentications per client address ([`client`]). Every failure
//! is the same UNAUTHENTICATED (RESOURCE_EXHAUSTED once an address failed too often).

pub(crate) mod authenticator;
pub mod client;
pub mod key;
pub(crate) mod limiter;

use uuid::Uuid;

pub use authenticator::{Authenticator, LOOKUPS_PER_SECOND};
pub use client::TrustedProxies;
pub use key::{bearer, create_key, generate_key, hash_secret, parse_key};
pub use limiter::{AddressLimiter, KeyLimiter, RATE_LIMIT_HEADERS, RateState};

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
        /// The user's id.
        user_id: i64,
        /// The user's uuid.
        user_uuid: Uuid,
        /// The user's business's id.
        business_id: i64,
        /// The user's business's uuid.
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

    /// `service` or `user`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Service { .. } => "service",
            Principal::User { .. } => "user",
        }
    }
}
