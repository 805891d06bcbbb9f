//! Process assembly: the database handle, the service logic, the gRPC server behind its one
//! middleware stack, the REST gateway calling the same stack in process, the database probe that
//! drives health, and graceful shutdown. Used by `partners serve` and by the integration tests, so
//! both run the same code.
//!
//! Shutdown, in order: health NOT_SERVING and `/readyz` 503 at once, while everything goes on
//! serving for the shutdown delay (HTTP/1.x answers carry `Connection: close` meanwhile), so that
//! balancers and Kubernetes endpoints stop sending before anything closes; then the listeners
//! close, the change events' watch streams end, idle connections are closed and HTTP/2 ones get a
//! GOAWAY, and in-flight calls get until the drain deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt};

use crate::auth::{AddressLimiter, Authenticator, KeyLimiter, TrustedProxies};
use crate::config::{DbConfig, ServerLimits};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::gateway::draining::{self, Draining};
use crate::gateway::{self, Gateway, Transport, TransportError};
use crate::grpc::{self, layer};
use crate::metrics;
use crate::serving::Services;

/// How often idle rate-limit buckets are dropped.
const LIMITER_SHRINK_INTERVAL: Duration = Duration::from_secs(60);
/// Streams a gRPC connection may make the server reset (peer protocol errors) before it is sent
/// GOAWAY `ENHANCE_YOUR_CALM` (hyper's default).
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// Streams reset by the client before the server accepted them, at once, before GOAWAY (h2's
/// default).
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;

/// A running service.
pub struct RunningApp {
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// Where the REST gateway listens, when started.
    pub http_addr: Option<SocketAddr>,
    http: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
    /// The service logic (lists, reads, clicks, caches), for tests and tools that inspect it.
    pub services: Services,
    health: Health,
    draining: Draining,
    background: Vec<JoinHandle<()>>,
    grpc_shutdown: oneshot::Sender<()>,
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    shutdown_delay: Duration,
    drain_timeout: Duration,
}

/// Health as reported by `grpc.health.v1` (and so `/readyz`): SERVING while the database answers
/// and the process is not shutting down. One lock orders the probe's updates and the shutdown's,
/// so a probe that finishes late never turns a stopping process SERVING again.
#[derive(Clone)]
struct Health {
    reporter: HealthReporter,
    state: Arc<tokio::sync::Mutex<HealthState>>,
}

struct HealthState {
    database_up: bool,
    stopping: bool,
}

impl Health {
    async fn new(reporter: HealthReporter, database_up: bool) -> Health {
        grpc::set_health(&reporter, database_up).await;
        Health {
            reporter,
            state: Arc::new(tokio::sync::Mutex::new(HealthState {
                database_up,
                stopping: false,
            })),
        }
    }

    /// Records what the probe found.
    async fn database(&self, up: bool) {
        let mut state = self.state.lock().await;
        state.database_up = up;
        grpc::set_health(&self.reporter, up && !state.stopping).await;
    }

    /// NOT_SERVING from now on.
    async fn stopping(&self) {
        let mut state = self.state.lock().await;
        state.stopping = true;
        grpc::set_health(&self.reporter, false).await;
    }
}

/// Starts the service on an already bound gRPC listener, and the REST gateway (calling the
/// service in process) on `http_listener` when given.
pub async fn start(
    db_config: &DbConfig,
    limits: &ServerLimits,
    grpc_listener: TcpListener,
    http_listener: Option<TcpListener>,
) -> Result<RunningApp> {
    start_with_metrics(db_config, limits, grpc_listener, http_listener, None).await
}

/// [`start`], and Prometheus metrics (`GET /metrics`) on `metrics_listener` when given.
pub async fn start_with_metrics(
    db_config: &DbConfig,
    limits: &ServerLimits,
    grpc_listener: TcpListener,
    http_listener: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
) -> Result<RunningApp> {
    let db = Db::new(db_config);
    let services = Services::start(db.clone(), limits);
    // Serve once the lists' copy is there (or its first load failed): searches are then fast
    // from the first call. A database that is down does not hold the start-up longer than this.
    services.ready(db_config.checkout_timeout()).await;

    let (reporter, health_service) = tonic_health::server::health_reporter();
    let up = db.ping(grpc::PROBE_TIMEOUT).await;
    let health = Health::new(reporter, up).await;
    let probe = tokio::spawn(probe_loop(db.clone(), health.clone(), up));

    let (rate, burst) = limits.rate_limit_share();
    let guard = layer::auth::Guard {
        auth: Authenticator::new(db.clone(), limits.key_cache_ttl()),
        limiter: Arc::new(KeyLimiter::new(rate, burst)),
        failures: Arc::new(AddressLimiter::failures(
            limits.auth_failures_per_second,
            limits.auth_failure_burst,
        )),
        trusted: TrustedProxies::new(&limits.trusted_proxies),
    };
    let shrink = tokio::spawn(shrink_loop(guard.clone()));
    let stack = layer::stack(guard.clone(), limits.request_timeout());
    let routes = grpc::routes(services.clone(), health_service)
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let draining = Draining::default();
    let (http_addr, http) = match http_listener {
        None => (None, None),
        Some(listener) => {
            let addr = listener
                .local_addr()
                .map_err(|e| Error::Internal(format!("listener: {e}")))?;
            let gateway = Gateway::in_process(
                in_process_transport(&stack, routes.clone()),
                limits.request_timeout(),
            )
            .with_cors_origins(&limits.cors_allowed_origins);
            let router =
                draining::close_connections_when(gateway::router(gateway), draining.clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(gateway::serve_with(
                listener,
                router,
                limits.http_serving(),
                async {
                    let _ = stopped.await;
                },
            ));
            tracing::info!(http.addr = %addr, "REST gateway listening on {addr}");
            (Some(addr), Some((stop, task)))
        }
    };
    let grpc_addr = grpc_listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("listener: {e}")))?;
    let incoming = TcpIncoming::from(grpc_listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let (grpc_shutdown, shutdown_rx) = oneshot::channel::<()>();
    let server = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        // HTTP/2 reset floods: hyper's limits, set here because tonic passes its own `None`
        // (no limit) for streams reset by the server on a peer's protocol errors ("MadeYouReset");
        // streams the client resets before they are accepted (rapid reset) keep h2's 20.
        .http2_max_local_error_reset_streams(Some(H2_MAX_LOCAL_ERROR_RESETS))
        .http2_max_pending_accept_reset_streams(Some(H2_MAX_PENDING_ACCEPT_RESETS))
        .layer(stack)
        .add_routes(routes);
    let grpc_task = tokio::spawn(server.serve_with_incoming_shutdown(incoming, async {
        let _ = shutdown_rx.await;
    }));
    tracing::info!(grpc.addr = %grpc_addr, "gRPC server listening on {grpc_addr}");
    // Scraped until the end of the drain (stopped with the other background tasks).
    let metrics_task = match metrics_listener {
        None => None,
        Some(listener) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(metrics.addr = %addr, "metrics on http://{addr}/metrics");
            }
            let router = metrics::router(db.clone(), services.clone());
            Some(tokio::spawn(async move {
                if let Err(error) = metrics::serve(listener, router, std::future::pending()).await {
                    tracing::error!(error.message = %error, "metrics listener failed");
                }
            }))
        }
    };

    Ok(RunningApp {
        grpc_addr,
        http_addr,
        http,
        services,
        health,
        draining,
        background: [probe, shrink].into_iter().chain(metrics_task).collect(),
        grpc_shutdown,
        grpc_task,
        shutdown_delay: limits.shutdown_delay(),
        drain_timeout: limits.drain_timeout(),
    })
}

/// The gRPC routes behind the same middleware stack as the TCP server, as the in-process
/// transport of the REST gateway (same codec, same layers, no socket).
fn in_process_transport(stack: &layer::CallStack, routes: tonic::service::Routes) -> Transport {
    type Request = http::Request<tonic::body::Body>;
    let service = ServiceExt::<Request>::map_response(stack.layer(routes.prepare()), |response| {
        response.map(tonic::body::Body::new)
    });
    let service =
        ServiceExt::<Request>::map_err(service, |never| -> TransportError { match never {} });
    BoxCloneSyncService::new(service)
}

async fn probe_loop(db: Db, health: Health, mut last: bool) {
    loop {
        tokio::time::sleep(grpc::PROBE_INTERVAL).await;
        let up = db.ping(grpc::PROBE_TIMEOUT).await;
        if up != last {
            if up {
                tracing::info!("database reachable again: SERVING");
            } else {
                tracing::warn!("database unreachable: NOT_SERVING");
            }
            health.database(up).await;
            last = up;
        }
    }
}

async fn shrink_loop(guard: layer::auth::Guard) {
    loop {
        tokio::time::sleep(LIMITER_SHRINK_INTERVAL).await;
        guard.limiter.shrink();
        guard.failures.shrink();
    }
}

impl RunningApp {
    /// Graceful shutdown (the module's doc has the order): not ready at once, serving on for the
    /// shutdown delay, then the listeners close and in-flight calls get until the drain deadline
    /// to finish. Errors if the deadline passed. The database probe runs until the end: a call
    /// waiting on a database that went away ends when it notices (it cannot report SERVING).
    pub async fn shutdown(self) -> Result<()> {
        self.shutdown_or_sooner(std::future::pending()).await
    }

    /// [`RunningApp::shutdown`], with the shutdown delay cut short when `sooner` completes (a
    /// second signal).
    pub async fn shutdown_or_sooner(mut self, sooner: impl Future<Output = ()>) -> Result<()> {
        self.health.stopping().await;
        self.draining.start();
        if !self.shutdown_delay.is_zero() {
            let delay_ms = self.shutdown_delay.as_millis();
            tracing::info!(
                shutdown.delay_ms = delay_ms,
                "not ready; serving on for {delay_ms} ms before closing the listeners"
            );
            tokio::select! {
                () = tokio::time::sleep(self.shutdown_delay) => {}
                () = sooner => tracing::info!("second signal: closing the listeners now"),
            }
        }
        let background = std::mem::take(&mut self.background);
        let drained = self.drain().await;
        for task in &background {
            task.abort();
        }
        drained
    }

    /// Closes the listeners and waits for the calls in flight, until the drain deadline.
    async fn drain(self) -> Result<()> {
        // Watch streams never end by themselves: they end now (UNAVAILABLE, clients resume
        // elsewhere from their last sequence), so the drain waits only for calls that finish.
        self.services.events.stop();
        let _ = self.grpc_shutdown.send(());
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        if let Some((stop, task)) = self.http {
            let _ = stop.send(());
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(Ok(()))) => tracing::info!("REST gateway drained"),
                Ok(Ok(Err(e))) => return Err(Error::Internal(format!("REST gateway: {e}"))),
                Ok(Err(e)) => return Err(Error::Internal(format!("REST task: {e}"))),
                Err(_) => {
                    return Err(Error::Internal(
                        "drain deadline passed with REST calls in flight".into(),
                    ));
                }
            }
        }
        match tokio::time::timeout_at(deadline, self.grpc_task).await {
            Ok(Ok(Ok(()))) => {
                tracing::info!("gRPC server drained");
                let s = self.services.lists.stats();
                tracing::info!(
                    served = s.served,
                    fell_back = s.fell_back,
                    waited = s.waited,
                    unaffected = s.unaffected,
                    loads = s.loads,
                    deltas = s.deltas,
                    changes = s.changes,
                    compactions = s.compactions,
                    "lists since start: answered by the copy, by SQL, after waiting for the copy"
                );
                Ok(())
            }
            Ok(Ok(Err(e))) => Err(Error::Internal(format!("gRPC server: {e}"))),
            Ok(Err(e)) => Err(Error::Internal(format!("gRPC task: {e}"))),
            Err(_) => Err(Error::Internal(
                "drain deadline passed with calls in flight".into(),
            )),
        }
    }
}
