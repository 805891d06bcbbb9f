//! The REST gateway under `/api/v1`: each route decodes its JSON:API request, makes exactly one
//! gRPC call through the generated client, and renders the answer as a JSON:API document. It holds
//! no business rules: values are validated by the gRPC service, so REST and gRPC callers see the
//! same rules. The transport is either the in-process service (`serve`) or a few TCP channels to a
//! remote server (`partners gateway --upstream`).
//!
//! Where things live:
//! - this file: [`Gateway`] (transports, round robin, the one `Gateway::call` helper with the
//!   deadline) and the router's assembly ([`router`], [`serve`]);
//! - [`server`]: the HTTP server (connection limit, header timeout, graceful drain);
//! - [`routes`]: the handlers, one file per domain, each with its `#[utoipa::path]`;
//! - [`extract`]: request decoding shared by the routes; [`params`]: the query-string grammar;
//! - [`document`] and [`errors`]: JSON:API documents and error mapping;
//! - [`middleware`]: the one layer stack (request id, trace, body limit, timeout);
//! - [`draining`]: `Connection: close` on HTTP/1.x answers while the process shuts down;
//! - [`openapi`]: the document's root; its paths come from the same `routes!` that build the
//!   router, so a route cannot be served undocumented or documented unserved.

pub mod conventions;
pub mod document;
pub mod draining;
pub mod errors;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod params;
pub mod routes;
mod server;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use tonic::metadata::AsciiMetadataValue;
use tower::BoxError;
use tower::util::BoxCloneSyncService;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::client::FORWARDED_FOR;
use crate::grpc::pb::partner_admin_service_client::PartnerAdminServiceClient;
use crate::grpc::pb::partner_event_service_client::PartnerEventServiceClient;
use crate::grpc::pb::partner_service_client::PartnerServiceClient;
use crate::grpc::pb::webhook_admin_service_client::WebhookAdminServiceClient;
use errors::{ApiError, ApiErrors, Source, from_status};
pub use server::ServeOptions;

// The body decoders, also at their former path (the fuzz targets call them).
pub use extract::{click_event_type, partner_from_attributes};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A gRPC transport: the in-process service or a channel, behind one type.
pub type Transport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    TransportError,
>;

/// A failure to reach the gRPC service (a concrete type keeps handler futures `Send`).
#[derive(Debug)]
pub struct TransportError(BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "transport: {}", self.0)
    }
}

/// tonic looks for a status in the error's sources: one inside (an unreachable upstream's
/// UNAVAILABLE) is the call's status.
impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Shared gateway state: transports (round robin) and the per-call deadline.
#[derive(Clone)]
pub struct Gateway {
    transports: Arc<Vec<Transport>>,
    next: Arc<AtomicUsize>,
    timeout: Duration,
    /// Origins allowed by CORS (none: CORS off).
    cors_origins: Arc<[http::HeaderValue]>,
}

impl Gateway {
    /// Calls the in-process gRPC service through `transport` (same codec, services and layers,
    /// no socket).
    pub fn in_process(transport: Transport, timeout: Duration) -> Gateway {
        Gateway {
            transports: Arc::new(vec![transport]),
            next: Arc::default(),
            timeout,
            cors_origins: Arc::new([]),
        }
    }

    /// Calls a remote gRPC server over `channels` lazily connected TCP channels.
    pub fn remote(upstream: &str, channels: usize, timeout: Duration) -> Result<Gateway, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(upstream.to_owned())
            .map_err(|e| format!("invalid upstream {upstream:?}: {e}"))?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        let transports = (0..channels.max(1))
            .map(|_| {
                let channel = endpoint.connect_lazy();
                // tonic reports a transport error (upstream refused, unreachable) as UNKNOWN;
                // handed a status, it keeps it: UNAVAILABLE, 503 for the REST client.
                BoxCloneSyncService::new(tower::ServiceExt::map_err(channel, |e| {
                    tracing::warn!(error.message = %e, "gRPC upstream unreachable");
                    TransportError(BoxError::from(tonic::Status::unavailable(
                        "upstream unreachable",
                    )))
                }))
            })
            .collect();
        Ok(Gateway {
            transports: Arc::new(transports),
            next: Arc::default(),
            timeout,
            cors_origins: Arc::new([]),
        })
    }

    /// Allows browsers on `origins` to call the gateway (CORS); an origin that is not a valid
    /// header value is skipped with a warning.
    pub fn with_cors_origins(mut self, origins: &[String]) -> Gateway {
        self.cors_origins = origins
            .iter()
            .filter_map(|origin| {
                let value = http::HeaderValue::from_str(origin.trim()).ok();
                if value.is_none() {
                    tracing::warn!(origin = %origin, "CORS: not a valid origin, skipped");
                }
                value
            })
            .collect();
        self
    }

    /// The next transport, round robin.
    fn transport(&self) -> Transport {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.transports.len();
        self.transports[i].clone()
    }

    fn partners(&self) -> PartnerServiceClient<Transport> {
        PartnerServiceClient::new(self.transport())
    }

    fn admin(&self) -> PartnerAdminServiceClient<Transport> {
        PartnerAdminServiceClient::new(self.transport())
    }

    fn webhooks(&self) -> WebhookAdminServiceClient<Transport> {
        WebhookAdminServiceClient::new(self.transport())
    }

    fn events(&self) -> PartnerEventServiceClient<Transport> {
        PartnerEventServiceClient::new(self.transport())
    }

    /// Makes one gRPC call with `client`: `message` with the caller's metadata forwarded from
    /// `headers` and the deadline set, awaited within the deadline; failures are mapped with
    /// `source_of` (a request field path → where it is in the REST request).
    async fn call<C, Req, Resp, Fut>(
        &self,
        client: C,
        headers: &HeaderMap,
        message: Req,
        source_of: &(dyn Fn(&str) -> Source + Sync),
        call: impl FnOnce(C, tonic::Request<Req>) -> Fut,
    ) -> Result<Resp, ApiErrors>
    where
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let request = Forward::new(headers, self).request(message);
        match tokio::time::timeout(self.timeout, call(client, request)).await {
            Ok(Ok(response)) => {
                conventions::keep_rate_limit(response.metadata());
                Ok(response.into_inner())
            }
            Ok(Err(status)) => {
                conventions::keep_rate_limit(status.metadata());
                Err(from_status(&status, source_of))
            }
            Err(_) => Err(deadline_exceeded().into()),
        }
    }
}

/// The error of a request that ran past its deadline (the call's or the whole request's).
fn deadline_exceeded() -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "DEADLINE_EXCEEDED",
        "the call did not finish in time",
    )
}

/// Caller identity forwarded as gRPC metadata.
struct Forward {
    authorization: Option<AsciiMetadataValue>,
    user: Option<AsciiMetadataValue>,
    request_id: Option<AsciiMetadataValue>,
    /// The client's address, as the gateway's server wrote it (`crate::auth::client`).
    client: Option<AsciiMetadataValue>,
    timeout: Duration,
}

impl Forward {
    fn new(headers: &HeaderMap, gateway: &Gateway) -> Forward {
        let ascii = |name: &str| {
            headers.get(name).map(|v| {
                AsciiMetadataValue::try_from(v.as_bytes())
                    .unwrap_or_else(|_| AsciiMetadataValue::from_static("invalid"))
            })
        };
        Forward {
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| AsciiMetadataValue::try_from(v.as_bytes()).ok()),
            user: ascii("x-user-uuid"),
            request_id: ascii("x-request-id"),
            client: headers
                .get(FORWARDED_FOR)
                .and_then(|v| AsciiMetadataValue::try_from(v.as_bytes()).ok()),
            timeout: gateway.timeout,
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if let Some(v) = &self.authorization {
            metadata.insert("authorization", v.clone());
        }
        if let Some(v) = &self.user {
            metadata.insert("x-user-uuid", v.clone());
        }
        if let Some(v) = &self.request_id {
            metadata.insert("x-request-id", v.clone());
        }
        if let Some(v) = &self.client {
            metadata.insert(FORWARDED_FOR, v.clone());
        }
        crate::telemetry::inject(metadata);
        request.set_timeout(self.timeout);
        request
    }
}

/// Every route with its OpenAPI operation: the one source of both the router and the document.
/// Handlers sharing a path are registered together.
fn api() -> OpenApiRouter<Gateway> {
    use routes::{
        admin, batch, bulk, click_reads, clicks, connect, events, export, health, lists, partner,
        users, webhooks,
    };
    OpenApiRouter::with_openapi(openapi::root())
        .routes(routes!(lists::list_partners, admin::create_partner))
        .routes(routes!(lists::list_available))
        .routes(routes!(lists::list_wholesalers))
        .routes(routes!(batch::batch_get_partners))
        .routes(routes!(export::export_partners))
        .routes(routes!(bulk::batch_update))
        .routes(routes!(bulk::batch_modify))
        .routes(routes!(admin::restore_partner))
        .routes(routes!(admin::upsert_partner))
        .routes(routes!(
            partner::get_partner,
            admin::update_partner,
            admin::delete_partner
        ))
        .routes(routes!(users::list_partner_users))
        .routes(routes!(clicks::click_event))
        .routes(routes!(clicks::batch_click_events))
        .routes(routes!(click_reads::click_stats))
        .routes(routes!(click_reads::top_partners))
        .routes(routes!(click_reads::click_events))
        .routes(routes!(connect::connect, connect::disconnect))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::retry_delivery))
        .routes(routes!(events::list_events))
        .routes(routes!(health::openapi_json))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// The axum router of the gateway: the documented routes, JSON:API 404/405 answers for the rest,
/// and the middleware stack around all of them.
pub fn router(gateway: Gateway) -> Router {
    let (router, _) = api().split_for_parts();
    let router = router
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed);
    let router = middleware::wrap(router, gateway.timeout);
    conventions::wrap(router, &gateway.cors_origins).with_state(gateway)
}

/// Serves the router on `listener` with the default connection handling ([`ServeOptions`])
/// until `shutdown` completes, then stops accepting and drains: idle HTTP/1.1 connections are
/// closed, busy ones after their answer (`Connection: close`), HTTP/2 connections get a GOAWAY
/// (hyper's graceful shutdown, per connection).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router, ServeOptions::default(), shutdown).await
}

/// [`serve`] with the given connection handling: header timeout (slow clients) and connection
/// limit.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, router, options, shutdown).await
}
