//! Diesel queries, one file per table group. Functions take `&mut PgConnection` and return
//! `QueryResult`; the gRPC layer runs them through [`crate::db::Db::run`].

pub mod api_key;
pub mod business;
pub mod click_event;
pub mod partner;
pub mod relation;
pub mod sql;
