//! Standard Webhooks signatures (standardwebhooks.com): a secret is `whsec_` and the base64 of
//! its key; a message is signed as `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under
//! the key; `webhook-signature` lists one signature per valid secret, separated by spaces (two
//! while a rotated secret's overlap lasts).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The prefix of a secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Bytes of a new secret's key.
const KEY_BYTES: usize = 32;

/// A new secret (`whsec_` + base64 of 32 random bytes).
pub fn new_secret() -> Result<String> {
    let mut key = [0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| Error::Internal(format!("random secret: {e}")))?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(key)))
}

/// The key of `secret`; `None` when it is not a `whsec_` secret.
fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX)?)
        .ok()
        .filter(|k| !k.is_empty())
}

/// The signature (`v1,<base64>`) of a message under `secret`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let key = key(secret).ok_or_else(|| Error::Internal("malformed webhook secret".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|e| Error::Internal(format!("webhook key: {e}")))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` value: the message signed under each of `secrets`.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    let signatures = secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Result<Vec<_>>>()?;
    Ok(signatures.join(" "))
}

/// Whether `header` holds a valid signature of the message under `secret` (what a receiver
/// checks; the tests' receiver uses it).
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Ok(expected) = sign(secret, id, timestamp, body) else {
        return false;
    };
    header.split(' ').any(|candidate| {
        use subtle::ConstantTimeEq;
        candidate.len() == expected.len()
            && bool::from(candidate.as_bytes().ct_eq(expected.as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries.
    #[test]
    fn signs_as_the_specification_does() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let signature = sign(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .expect("sign");
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn both_secrets_sign_during_a_rotation() {
        let (old, new) = (new_secret().expect("old"), new_secret().expect("new"));
        assert_ne!(old, new);
        assert!(old.starts_with(SECRET_PREFIX) && key(&old).is_some_and(|k| k.len() == 32));
        let value = header(&[&new, &old], "msg_1", 1, b"{}").expect("header");
        assert!(verify(&old, "msg_1", 1, b"{}", &value));
        assert!(verify(&new, "msg_1", 1, b"{}", &value));
        assert!(
            !verify(&new, "msg_1", 2, b"{}", &value),
            "timestamp is signed"
        );
        assert!(!verify(&new, "msg_1", 1, b"{ }", &value), "body is signed");
        assert!(sign("not-a-secret", "m", 1, b"").is_err());
    }
}
