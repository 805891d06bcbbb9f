//! Page tokens: a cursor's bytes followed by an HMAC-SHA256 signature (truncated to 16 bytes)
//! over the list's name, the query the token is bound to and the cursor. The key is made by
//! migration 18 and read once from the database, so every replica checks every other's tokens;
//! a token altered, forged or used with other filters fails with INVALID_ARGUMENT on
//! `page_token`. Used by the partner lists and by ListPartnerClickEvents.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::click_stats;

/// Bytes of a token's signature.
pub const MAC_BYTES: usize = 16;

/// The message of a token that does not open.
const NOT_OURS: &str =
    "is not a token of this list (or the list's filters, search or sort changed)";

/// The signing key, loaded on first use; cheap to clone.
#[derive(Clone)]
pub struct PageTokens {
    db: Db,
    key: Arc<OnceCell<Vec<u8>>>,
}

impl PageTokens {
    /// Tokens signed with the key stored in `db`.
    pub fn new(db: Db) -> PageTokens {
        PageTokens {
            db,
            key: Arc::default(),
        }
    }

    async fn mac(&self, list: &str, query: &str, cursor: &[u8]) -> Result<Hmac<Sha256>> {
        let key = self
            .key
            .get_or_try_init(|| async {
                let secret = self
                    .db
                    .run(|conn| Ok(click_stats::token_key(conn)?))
                    .await?;
                Ok::<_, Error>(secret.into_bytes())
            })
            .await?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| Error::Internal("page token key unusable".into()))?;
        mac.update(list.as_bytes());
        mac.update(query.as_bytes());
        mac.update(cursor);
        Ok(mac)
    }

    /// `cursor` followed by its signature for the list `list` (a name with a version, e.g.
    /// `partners|v1|`) and the query `query`.
    pub async fn sign(&self, list: &str, query: &str, cursor: &[u8]) -> Result<Vec<u8>> {
        let mac = self.mac(list, query, cursor).await?.finalize().into_bytes();
        let mut token = cursor.to_vec();
        token.extend_from_slice(&mac[..MAC_BYTES]);
        Ok(token)
    }

    /// The cursor of a token [`PageTokens::sign`] made for `list` and `query`; INVALID_ARGUMENT
    /// on `page_token` for anything else.
    pub async fn open<'t>(&self, list: &str, query: &str, token: &'t [u8]) -> Result<&'t [u8]> {
        let Some(split) = token.len().checked_sub(MAC_BYTES) else {
            return Err(Error::invalid("page_token", NOT_OURS));
        };
        let (cursor, signature) = token.split_at(split);
        self.mac(list, query, cursor)
            .await?
            .verify_truncated_left(signature)
            .map_err(|_| Error::invalid("page_token", NOT_OURS))?;
        Ok(cursor)
    }
}
