//! The Partners service: the partner directory of a B2B platform, served over gRPC
//! (`partners.v1.PartnerService`, `PartnerAdminService`, `PartnerEventService`) and a JSON:API REST gateway,
//! on Postgres via Diesel.
//!
//! The modules read as the architecture, from the wire down:
//! - [`grpc`]: generated code, the middleware stack (call log, deadline, authentication),
//!   validation into named request types, the three services' handlers, conversions;
//! - [`gateway`]: the REST gateway, beside [`grpc`]: each route makes one gRPC call;
//! - [`serving`]: service logic: the lists (planner and in-memory copy), coalesced point reads,
//!   click group commit, the change events' feed and watch streams, cached lookups of businesses
//!   and users;
//! - [`auth`]: API keys, the authenticator and the per-key rate limits;
//! - [`model`]: Diesel records and queries per table group;
//! - [`db`]: the pool, the one async→Diesel bridge ([`db::Db::run`]), migrations, health probe;
//! - [`app`] assembles a running process; [`config`], [`error`], [`telemetry`] (logs) and
//!   [`metrics`] (Prometheus) are shared.
//!
//! The public API is what the binary, the integration tests and the load tools
//! (`tools/loadgen`) use: [`app::start`], [`config`], [`grpc::pb`] (messages and clients),
//! [`db::run_migrations`], and the model's records and statements.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod gateway;
pub mod grpc;
pub mod metrics;
pub mod model;
pub mod serving;
pub mod telemetry;
