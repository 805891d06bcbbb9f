//! Webhooks following the Standard Webhooks specification: endpoints managed through
//! `partners.v1.WebhookAdminService` (`crate::grpc`), the change log's events delivered to them
//! at least once by the [`dispatch`]er, signed ([`signature`]), to public addresses only
//! ([`targets`]). The state lives in Postgres (`crate::model::webhook`, migration 16).

pub mod dispatch;
pub mod settings;
pub mod signature;
pub mod targets;

pub use dispatch::WebhookConfig;
