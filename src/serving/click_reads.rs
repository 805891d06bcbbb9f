//! What the click analytics reads keep per process: the time zone names Postgres knows (loaded
//! once; the buckets are computed by Postgres, so its zone data decides what a zone is) and the
//! events' page tokens (signed by [`PageTokens`]).

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::grpc::validate::click_stats::TOKEN_BYTES;
use crate::model::click_stats;
use crate::serving::tokens::PageTokens;

/// The name the events' tokens are signed under.
const LIST: &str = "partner_click_events|v1|";

/// The per-process state of the click reads; cheap to clone.
#[derive(Clone)]
pub struct ClickReads {
    db: Db,
    zones: Arc<OnceCell<HashSet<String>>>,
    tokens: PageTokens,
}

impl ClickReads {
    /// State on `db` (zones loaded on first use), signing with `tokens`.
    pub fn new(db: Db, tokens: PageTokens) -> ClickReads {
        ClickReads {
            db,
            zones: Arc::default(),
            tokens,
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

    /// The token continuing after the event (`at_micros`, `id`) of the list named by `filters`.
    pub async fn sign(&self, filters: &str, at_micros: i64, id: i64) -> Result<[u8; TOKEN_BYTES]> {
        let mut cursor = [0u8; 16];
        cursor[..8].copy_from_slice(&at_micros.to_be_bytes());
        cursor[8..].copy_from_slice(&id.to_be_bytes());
        let signed = self.tokens.sign(LIST, filters, &cursor).await?;
        <[u8; TOKEN_BYTES]>::try_from(signed)
            .map_err(|_| Error::Internal("click token of another length".into()))
    }

    /// The cursor of a token signed for the list named by `filters`; INVALID_ARGUMENT on
    /// `page_token` for one that was altered or belongs to other filters.
    pub async fn open(&self, filters: &str, token: &[u8; TOKEN_BYTES]) -> Result<(i64, i64)> {
        let cursor = self.tokens.open(LIST, filters, token).await?;
        let at = i64::from_be_bytes(cursor[..8].try_into().unwrap_or_default());
        let id = i64::from_be_bytes(cursor[8..16].try_into().unwrap_or_default());
        Ok((at, id))
    }
}
