//! What the click analytics reads keep per process: the time zone names Postgres knows (loaded
//! once; the buckets are computed by Postgres, so its zone data decides what a zone is) and the
//! key of the events' page tokens (loaded once from the database, where all replicas share it),
//! with the tokens' signing and checking.

use std::collections::HashSet;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::grpc::validate::click_stats::TOKEN_BYTES;
use crate::model::click_stats;

/// Bytes of a token's signature (HMAC-SHA256, truncated).
const MAC_BYTES: usize = 16;

/// The per-process state of the click reads; cheap to clone.
#[derive(Clone)]
pub struct ClickReads {
    db: Db,
    zones: Arc<OnceCell<HashSet<String>>>,
    key: Arc<OnceCell<Vec<u8>>>,
}

impl ClickReads {
    /// State on `db`, loaded on first use.
    pub fn new(db: Db) -> ClickReads {
        ClickReads {
            db,
            zones: Arc::default(),
            key: Arc::default(),
        }
    }

    /// INVALID_ARGUMENT on `time_zone` unless Postgres knows the zone.
    pub async fn check_time_zone(&self, name: &str) -> Result<()> {
        let zones = self
            .zones
            .get_or_try_init(|| async {
                let names = self
                    .db
                    .run(|conn| Ok(click_stats::time_zone_names(conn)?))
                    .await?;
                Ok::<_, Error>(names.into_iter().collect::<HashSet<String>>())
            })
            .await?;
        if zones.contains(name) {
            Ok(())
        } else {
            Err(Error::invalid(
                "time_zone",
                "is not a known IANA time zone (e.g. UTC, Europe/Berlin)",
            ))
        }
    }

    async fn key(&self) -> Result<&[u8]> {
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
        Ok(key)
    }

    fn mac(key: &[u8], filters: &str, at_micros: i64, id: i64) -> Result<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| Error::Internal("click token key unusable".into()))?;
        mac.update(b"partner_click_events|v1|");
        mac.update(filters.as_bytes());
        mac.update(&at_micros.to_be_bytes());
        mac.update(&id.to_be_bytes());
        Ok(mac)
    }

    /// The token continuing after the event (`at_micros`, `id`) of the list named by `filters`.
    pub async fn sign(&self, filters: &str, at_micros: i64, id: i64) -> Result<[u8; TOKEN_BYTES]> {
        let mac = Self::mac(self.key().await?, filters, at_micros, id)?;
        let mut token = [0u8; TOKEN_BYTES];
        token[..8].copy_from_slice(&at_micros.to_be_bytes());
        token[8..16].copy_from_slice(&id.to_be_bytes());
        token[16..].copy_from_slice(&mac.finalize().into_bytes()[..MAC_BYTES]);
        Ok(token)
    }

    /// The cursor of a token signed for the list named by `filters`; INVALID_ARGUMENT on
    /// `page_token` for one that was altered or belongs to other filters.
    pub async fn open(&self, filters: &str, token: &[u8; TOKEN_BYTES]) -> Result<(i64, i64)> {
        let mut at = [0u8; 8];
        let mut id = [0u8; 8];
        at.copy_from_slice(&token[..8]);
        id.copy_from_slice(&token[8..16]);
        let (at, id) = (i64::from_be_bytes(at), i64::from_be_bytes(id));
        Self::mac(self.key().await?, filters, at, id)?
            .verify_truncated_left(&token[16..])
            .map_err(|_| Error::invalid("page_token", "is not a token of this list"))?;
        Ok((at, id))
    }
}
