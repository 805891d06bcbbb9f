//! The Partners service: the partner directory of a B2B platform, served over gRPC
//! (`partners.v1.PartnerService`, `PartnerAdminService`, `PartnerEventService`,
//! `WebhookAdminService`) and a JSON:API REST gateway, on Postgres via Diesel.
//!
//! The modules read as the architecture, from the wire down:
//! - [`grpc`]: generated code, the middleware stack (call log, deadline, authentication),
//!   validation into named request types, the four services' handlers, conversions;
//! - [`gateway`]: the REST gateway, beside [`grpc`]: each route makes one gRPC call;
//! - [`serving`]: service logic: the lists (planner and in-memory copy), coalesced point reads,
//!   click group commit, the change events' feed and watch streams, cached lookups of businesses
//!   and users;
//! - [`auth`]: API keys, the authenticator and the per-key rate limits;
//! - [`model`]: Diesel records and queries per table group;
//! - [`db`]: the pool, the one async→Diesel bridge ([`db::Db::run`]), migrations, health probe;
//! - [`webhooks`]: the webhook dispatcher, signatures and the targets' rules;
//! - [`app`] assembles a running process; [`config`], [`error`], [`telemetry`] (logs and
//!   traces) and [`metrics`] (Prometheus) are shared.
//!
//! The path of one call, `GetPartner`: `grpc/layer/log.rs` opens the call's span and writes its
//! one line at the end; `grpc/layer/transport_status.rs` bounds it by the deadline;
//! `grpc/layer/auth.rs` authenticates the key, applies its rate limit and puts the `Caller` in the
//! request's extensions; `grpc/partner_service.rs::get_partner` validates into `PartnerRead`
//! (`grpc/validate/partner.rs`), resolves the business and user in context (`grpc/scope.rs`) and
//! asks `serving/point_reads.rs`, which answers the reads waiting at that moment with one
//! statement (`model/partner/point.rs::find_many_sql`) through `Db::run` (`db/run.rs`).
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
pub mod webhooks;
