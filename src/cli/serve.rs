//! `partners serve` (migrations, then the service until SIGTERM/SIGINT) and `partners gateway`
//! (the REST gateway alone, calling a remote gRPC server).

use std::time::Duration;

use partners::config::{DbConfig, ServeConfig};
use partners::error::{Error, Result};
use partners::{app, db, gateway};

/// Settings of `partners gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// URL of the gRPC server, e.g. http://127.0.0.1:50051.
    #[arg(long, env = "PARTNERS_UPSTREAM")]
    upstream: String,
    /// Address of the REST listener.
    #[arg(long, env = "PARTNERS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    http_addr: std::net::SocketAddr,
    /// Number of HTTP/2 connections to the upstream.
    #[arg(long, env = "PARTNERS_UPSTREAM_CHANNELS", default_value_t = 4)]
    channels: usize,
    /// Deadline of each upstream call, in milliseconds.
    #[arg(long, env = "PARTNERS_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    request_timeout_ms: u64,
}

/// How long the exit waits for blocking threads after the drain.
const EXIT_GRACE: Duration = Duration::from_secs(1);

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Runtime::new().map_err(|e| Error::Internal(format!("tokio runtime: {e}")))
}

/// `partners serve`.
pub fn serve(db_config: DbConfig, config: ServeConfig) -> Result<()> {
    let runtime = runtime()?;
    let outcome = runtime.block_on(async move {
        if config.no_migrate {
            db::create_database_if_missing(&db_config)?;
        } else {
            let cfg = db_config.clone();
            tokio::task::spawn_blocking(move || super::prepare_database(&cfg))
                .await
                .map_err(|e| Error::Internal(format!("migration task: {e}")))??;
        }
        let listener = tokio::net::TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|e| Error::Internal(format!("cannot bind {}: {e}", config.grpc_addr)))?;
        let http_listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .map_err(|e| Error::Internal(format!("cannot bind {}: {e}", config.http_addr)))?;
        let metrics_listener = match config.metrics_addr()? {
            None => None,
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::Internal(format!("cannot bind {addr}: {e}")))?,
            ),
        };
        let running = app::start_with_metrics(
            &db_config,
            &config.limits,
            listener,
            Some(http_listener),
            metrics_listener,
        )
        .await?;
        shutdown_signal().await;
        tracing::info!("shutdown requested: not ready, then draining");
        // A second signal skips the rest of the not-ready delay.
        running.shutdown_or_sooner(shutdown_signal()).await
    });
    // A blocking thread still waiting on the database (a hung upstream, before the watchdog cut
    // its connection) must not hold the exit: dropping the runtime would wait for it.
    runtime.shutdown_timeout(EXIT_GRACE);
    outcome
}

/// `partners gateway`.
pub fn gateway(args: GatewayArgs) -> Result<()> {
    runtime()?.block_on(async move {
        let gateway = gateway::Gateway::remote(
            &args.upstream,
            args.channels,
            Duration::from_millis(args.request_timeout_ms.max(1)),
        )
        .map_err(Error::Internal)?;
        let listener = tokio::net::TcpListener::bind(args.http_addr)
            .await
            .map_err(|e| Error::Internal(format!("cannot bind {}: {e}", args.http_addr)))?;
        tracing::info!(http.addr = %args.http_addr, upstream = %args.upstream, "REST gateway listening");
        gateway::serve(listener, gateway::router(gateway), shutdown_signal())
            .await
            .map_err(|e| Error::Internal(format!("REST gateway: {e}")))
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
