//! Page tokens: a cursor's bytes followed by an HMAC-SHA256 signature (truncated to 16 bytes)
//! over the list's name, the query the token is bound to and the cursor. The key is made by
//! migration 18 and read once from the database, so every replica checks every other's tokens;
//! a token altered, forged or used with other filters fails with INVALID_ARGUMENT on
//! `page_token`. Used by the partner lists ([`PageTokens::list_token`]) and by
//! ListPartnerClickEvents.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::click_stats;
use crate::model::partner::{After, ListQuery};

/// Bytes of a token's signature.
pub const MAC_BYTES: usize = 16;

/// The name the partner lists' tokens are signed under.
const LISTS: &str = "partners|v1|";

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

    /// The token of page `page` of the list `binding` names ([`ListQuery::binding`]), which
    /// starts after `after`: the page's number (4 bytes), then [`After::encode`]'s bytes, signed,
    /// in URL-safe base64.
    pub async fn list_token(&self, binding: &str, page: i64, after: &After) -> Result<String> {
        let mut cursor = u32::try_from(page)
            .unwrap_or(u32::MAX)
            .to_be_bytes()
            .to_vec();
        cursor.extend(after.encode());
        Ok(URL_SAFE_NO_PAD.encode(self.sign(LISTS, binding, &cursor).await?))
    }

    /// The page number and cursor of a [`PageTokens::list_token`] of `q`'s list (its binding,
    /// its order); INVALID_ARGUMENT on `page_token` for anything else.
    pub async fn open_list(&self, q: &ListQuery, token: &[u8]) -> Result<(i64, After)> {
        let cursor = self.open(LISTS, &q.binding(), token).await?;
        cursor
            .split_first_chunk::<4>()
            .and_then(|(page, after)| {
                Some((i64::from(u32::from_be_bytes(*page)), After::decode(after)?))
            })
            .filter(|(_, after)| after.fits(q))
            .ok_or_else(|| Error::invalid("page_token", NOT_OURS))
    }
}
