//! The gRPC API: generated code ([`pb`]), the middleware stack ([`layer`]), the three service
//! implementations ([`partner_service`], [`admin_service`], [`event_service`]) with the caller's scope ([`scope`]),
//! validation ([`validate`]) and conversions ([`convert`]), ExportPartners' producer ([`export`]),
//! and the routes of the tonic server (health, reflection v1 + v1alpha, message size limits).

mod admin_service;
mod click_batch;
mod click_reads;
pub mod convert;
mod event_service;
pub mod export;
pub(crate) mod layer;
mod partner_service;
pub(crate) mod scope;
pub mod validate;
mod webhook_service;

use std::time::Duration;
use tonic::codec::CompressionEncoding;

use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Code generated from `proto/partners/v1/partners.proto` and `partner_events.proto`.
pub mod pb {
    #![allow(missing_docs)]
    #![expect(
        clippy::large_enum_variant,
        reason = "generated: a watch message holds an event or a small heartbeat; boxing the \
                  event would change the generated API for one allocation saved per heartbeat"
    )]
    tonic::include_proto!("partners.v1");

    /// Encoded descriptor set of `partners.v1` and its imports, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/partners_descriptor.bin"));
}

use crate::serving::Services;
use pb::partner_admin_service_server::PartnerAdminServiceServer;
use pb::partner_event_service_server::PartnerEventServiceServer;
use pb::partner_service_server::PartnerServiceServer;
use pb::webhook_admin_service_server::WebhookAdminServiceServer;

/// Largest request message the server decodes.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Names under which health is reported ("" is the whole server).
pub const HEALTH_SERVICES: [&str; 5] = [
    "",
    "partners.v1.PartnerService",
    "partners.v1.PartnerAdminService",
    "partners.v1.WebhookAdminService",
    "partners.v1.PartnerEventService",
];

/// Sets the health of every reported service.
pub async fn set_health(reporter: &HealthReporter, serving: bool) {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in HEALTH_SERVICES {
        reporter.set_service_status(name, status).await;
    }
}

/// Every gRPC service of the process: the API, health and reflection.
pub fn routes(
    services: Services,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> Result<Routes, tonic_reflection::server::Error> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    // gzip and zstd: accepted when a client sends them, used for answers when a client asks
    // (`grpc-accept-encoding`); a client that asks for neither gets answers as they are.
    let partners = PartnerServiceServer::new(partner_service::PartnerApi::new(services.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd);
    let webhooks =
        WebhookAdminServiceServer::new(webhook_service::WebhookApi::new(services.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd);
    let events = PartnerEventServiceServer::new(event_service::EventApi::new(services.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd);
    let admin = PartnerAdminServiceServer::new(admin_service::AdminApi::new(services))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd);
    Ok(Routes::new(health)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(partners)
        .add_service(admin)
        .add_service(webhooks)
        .add_service(events))
}

/// How often the database probe behind health runs, and how long one probe may take.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Longest time one probe may take before the database counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1250);
