//! The REST gateway's HTTP server: the accept loop with a limit on open connections, a deadline
//! for each request header (slow clients), HTTP/1.1 and h2c through hyper's automatic builder,
//! and the graceful drain on shutdown. It serves any axum [`Router`]; the routes live elsewhere.
//!
//! Slow clients: a connection that sends nothing within the header timeout is closed before
//! hyper sees it (hyper's automatic builder waits for the first bytes without a deadline), and
//! hyper's HTTP/1 `header_read_timeout` closes one whose header is not complete within the
//! timeout (on a kept-alive connection the timer runs from the end of the previous response, so
//! it also bounds how long an idle connection stays open).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::net::IpAddr;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::auth::TrustedProxies;
use crate::auth::client::FORWARDED_FOR;

/// The first bytes of every HTTP/2 (h2c prior knowledge) connection.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// At most one warning about the connection limit per this interval.
const LIMIT_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// How the gateway treats its connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// A connection must send its first bytes, and an HTTP/1 request its whole header, within
    /// this time; otherwise it is closed.
    pub header_timeout: Duration,
    /// Most connections open at once; beyond it, new connections wait in the listen backlog.
    pub max_connections: usize,
    /// Peers whose `x-forwarded-for` names the client; for anyone else the gateway writes the
    /// peer's address there (see `crate::auth::client`).
    pub trusted: TrustedProxies,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            trusted: TrustedProxies::default(),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then closes the listener, lets every
/// connection finish the request it is answering (idle ones, and ones that never sent a whole
/// request, are closed at once) and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let slots = Arc::new(Semaphore::new(
        options.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    // Every connection holds a receiver: a send asks them to close, `closed()` says all are.
    let (closing, closing_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut warned: Option<Instant> = None;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if warned.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_INTERVAL) {
                    warned = Some(Instant::now());
                    tracing::warn!(
                        http.max_connections = options.max_connections,
                        "REST gateway at its connection limit ({}): new connections wait",
                        options.max_connections
                    );
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                }
            }
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            header_timeout: options.header_timeout,
            closing: closing_rx.clone(),
            client: ClientOf {
                peer: peer.ip(),
                trusted: options.trusted.clone(),
            },
        };
        tokio::spawn(async move {
            connection.run(stream).await;
            drop(slot);
        });
    }
    drop(listener);
    drop(closing_rx);
    let _ = closing.send(());
    closing.closed().await;
    Ok(())
}

/// One accepted connection.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    header_timeout: Duration,
    closing: watch::Receiver<()>,
    client: ClientOf,
}

/// Names the client of a connection's requests in `x-forwarded-for`, for the authentication
/// layer's limits (a client cannot claim another address unless its peer is a trusted proxy).
#[derive(Clone)]
struct ClientOf {
    peer: IpAddr,
    trusted: TrustedProxies,
}

impl ClientOf {
    fn stamp<B>(&self, request: &mut http::Request<B>) {
        let client = self
            .trusted
            .client(Some(self.peer), request.headers())
            .unwrap_or(self.peer);
        if let Ok(value) = http::HeaderValue::from_str(&client.to_string()) {
            request.headers_mut().insert(FORWARDED_FOR, value);
        }
    }
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        tokio::select! {
            started = request_started(&stream, self.header_timeout) => {
                if !started {
                    return;
                }
            }
            _ = self.closing.changed() => return,
        }
        // Whether hyper has handed a request to the router yet: a connection that never did
        // (a slow client still sending its first header) has nothing to finish on shutdown.
        let served = Arc::new(AtomicBool::new(false));
        let router = self.router;
        let seen = served.clone();
        let client = self.client;
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut request: http::Request<hyper::body::Incoming>| {
                seen.store(true, Ordering::Relaxed);
                client.stamp(&mut request);
                tower::ServiceExt::oneshot(router.clone(), request)
            },
        ));
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service);
        let mut conn = pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = self.closing.changed() => {}
        }
        if !served.load(Ordering::Relaxed) {
            return;
        }
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

/// Waits for a connection's first bytes (the whole HTTP/2 preface when they start it) at most
/// `within`; false when none came or the peer closed.
async fn request_started(stream: &TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut first = [0u8; H2_PREFACE.len()];
    loop {
        match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
            Err(_) | Ok(Err(_)) | Ok(Ok(0)) => return false,
            Ok(Ok(n)) if n == H2_PREFACE.len() || first[..n] != H2_PREFACE[..n] => return true,
            // A partial HTTP/2 preface (rare: it fits in one segment): `peek` answers at once
            // while the bytes are there, so wait a little before looking again.
            Ok(Ok(_)) if Instant::now() >= deadline => return false,
            Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// An accept error: a connection that failed before we took it is skipped; anything else (out
/// of descriptors) is logged and retried after a pause, as axum's own server does.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "REST gateway: accept failed: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
