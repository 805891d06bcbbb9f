//! The Partners service: the partner directory of a B2B platform, served over gRPC
//! (`partners.v1.PartnerService`, `partners.v1.PartnerAdminService`) on Postgres via Diesel.
//!
//! Path of a call: `proto/` → [`grpc`] handler (auth, validation) → [`model`] query → SQL, with
//! [`db::Db::run`] as the one bridge from async handlers to blocking Diesel.

pub mod app;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod grpc;
pub mod ingest;
pub mod model;
pub mod preferences;
pub mod rate_limit;
pub mod reads;
pub mod search;
pub mod telemetry;
