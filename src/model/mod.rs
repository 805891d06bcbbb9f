//! Diesel records and queries, one module per table group. Functions take `&mut PgConnection` and
//! return `QueryResult`; callers run them through [`crate::db::Db::run`]. [`enums`] holds the
//! text-stored value sets.

pub mod api_key;
pub mod business;
pub mod change;
pub mod click_event;
pub mod click_partition;
pub mod click_stats;
pub mod enums;
pub mod partner;
pub mod relation;
pub mod webhook;

pub use enums::{EventType, IntegrationStatus, KeyKind, PartnerStatus};
