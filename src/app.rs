//! Process assembly: starts the gRPC server (and, later, the REST gateway) on given listeners with
//! the database probe that drives health, and shuts everything down gracefully. Used by
//! `partners serve` and by the integration tests, so both run the same code.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

use crate::config::{DbConfig, ServerLimits};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::gateway::{self, Gateway};
use crate::grpc::{self, context::AppState};
use crate::ingest::ClickIngest;
use crate::rate_limit::RateLimiter;
use crate::reads::PartnerReads;
use crate::search::SearchIndex;

/// Largest number of click events written in one transaction.
pub const CLICK_BATCH: usize = 256;
/// Most click events waiting for one writer before callers get RESOURCE_EXHAUSTED.
pub const CLICK_QUEUE: usize = 4096;
/// Largest number of GetPartner keys answered by one statement.
pub const READ_BATCH: usize = 64;
/// Most GetPartner keys waiting for a statement before callers get RESOURCE_EXHAUSTED.
pub const READ_QUEUE: usize = 4096;

/// A running service.
pub struct RunningApp {
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// Where the REST gateway listens, when started.
    pub http_addr: Option<SocketAddr>,
    http: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
    /// Shared state (database handle, caches).
    pub state: AppState,
    reporter: HealthReporter,
    probe: JoinHandle<()>,
    grpc_shutdown: oneshot::Sender<()>,
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    drain_timeout: Duration,
}

/// Starts the service on an already bound gRPC listener, and the REST gateway (calling the
/// service in process) on `http_listener` when given.
pub async fn start(
    db_config: &DbConfig,
    limits: &ServerLimits,
    grpc_listener: TcpListener,
    http_listener: Option<TcpListener>,
) -> Result<RunningApp> {
    let db = Db::new(db_config);
    let clicks = ClickIngest::start(db.clone(), limits.click_writers, CLICK_BATCH, CLICK_QUEUE);
    let limiter = RateLimiter::new(limits.rate_limit_per_second, limits.rate_limit_burst);
    let reads = PartnerReads::start(db.clone(), limits.read_batches(), READ_BATCH, READ_QUEUE);
    let search = SearchIndex::start(db.clone(), limits.search_index_max_partners);
    // Serve once the search index is there (or its first load failed): searches are then fast
    // from the first call. A database that is down does not hold the start-up longer than this.
    search.ready(db_config.checkout_timeout()).await;
    let state = AppState::new(
        db.clone(),
        limits.key_cache_ttl(),
        clicks,
        reads,
        search,
        limiter,
    );

    let (reporter, health) = tonic_health::server::health_reporter();
    let up = db.ping(grpc::PROBE_TIMEOUT).await;
    grpc::set_health(&reporter, up).await;
    let probe = tokio::spawn(probe_loop(db.clone(), reporter.clone(), up));

    let routes = grpc::routes(state.clone(), health)
        .map_err(|e| Error::Internal(format!("reflection: {e}")))?;
    let (http_addr, http) = match http_listener {
        None => (None, None),
        Some(listener) => {
            let addr = listener
                .local_addr()
                .map_err(|e| Error::Internal(format!("listener: {e}")))?;
            let gateway = Gateway::in_process(routes.clone(), limits.request_timeout());
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(gateway::serve(listener, gateway::router(gateway), async {
                let _ = stopped.await;
            }));
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
        .layer(grpc::transport_status::TransportStatusLayer {
            timeout: limits.request_timeout(),
        })
        .add_routes(routes);
    let grpc_task = tokio::spawn(server.serve_with_incoming_shutdown(incoming, async {
        let _ = shutdown_rx.await;
    }));
    tracing::info!(grpc.addr = %grpc_addr, "gRPC server listening on {grpc_addr}");

    Ok(RunningApp {
        grpc_addr,
        http_addr,
        http,
        state,
        reporter,
        probe,
        grpc_shutdown,
        grpc_task,
        drain_timeout: limits.drain_timeout(),
    })
}

async fn probe_loop(db: Db, reporter: HealthReporter, mut last: bool) {
    loop {
        tokio::time::sleep(grpc::PROBE_INTERVAL).await;
        let up = db.ping(grpc::PROBE_TIMEOUT).await;
        if up != last {
            if up {
                tracing::info!("database reachable again: SERVING");
            } else {
                tracing::warn!("database unreachable: NOT_SERVING");
            }
            grpc::set_health(&reporter, up).await;
            last = up;
        }
    }
}

impl RunningApp {
    /// Graceful shutdown: health NOT_SERVING first, then the listener closes and in-flight calls
    /// get until the drain deadline to finish. Errors if the deadline passed.
    pub async fn shutdown(self) -> Result<()> {
        self.probe.abort();
        grpc::set_health(&self.reporter, false).await;
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
