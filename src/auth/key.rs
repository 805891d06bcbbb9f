//! The API key format `pk_<prefix>_<secret>`: generating a key (shown once, only the SHA-256 of
//! the secret is stored), parsing one, and reading it from an `authorization: Bearer` value.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::api_key;

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
    Ok(hex::encode(buf))
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
