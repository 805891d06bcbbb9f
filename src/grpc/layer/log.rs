//! The call log: one span per call (method, code, duration, principal, request id, and the cause
//! of an internal error, recorded by [`crate::error::Error::into_status`]) and one line when the
//! call ends, at a level chosen from its code: client errors at info, refusals for load or outage
//! at warn, server errors at error; health and reflection at debug. A refusal of the caller's own
//! excess (a rate limit, marked [`CallerRefused`] by the authentication layer) is a client error:
//! at info, so a flood of them does not become a flood of warnings.
//!
//! Own code rather than tower-http's `TraceLayer`: a gRPC call's code arrives in the trailers
//! (or in the headers of a trailers-only answer), and `TraceLayer` reports the time to the
//! headers and the body's time apart, so it cannot write the one line with the call's whole
//! duration and final code.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use tonic::Code;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field};

/// Marks an answer that refused the caller for its own excess (a rate limit).
#[derive(Debug, Clone, Copy)]
pub struct CallerRefused;

/// Wraps a service with [`CallLog`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CallLogLayer;

impl<S> Layer<S> for CallLogLayer {
    type Service = CallLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallLog { inner }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct CallLog<S> {
    inner: S,
}

/// One call in progress: its span, path and start; logs once when finished (or dropped).
struct Call {
    span: Span,
    uri: http::Uri,
    api: bool,
    started: Instant,
    finished: bool,
    caller_refused: bool,
    metrics: Arc<MethodMetrics>,
}

/// `(service, method)` of a gRPC path `/package.Service/Method`.
fn service_and_method(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", path))
}

/// The server-streaming methods; every other RPC here is unary.
const SERVER_STREAMING: [&str; 1] = ["/partners.v1.PartnerEventService/WatchPartnerEvents"];

/// The `grpc_type` label of the method at `path` (go-grpc-prometheus's spelling).
fn grpc_type(path: &str) -> &'static str {
    if SERVER_STREAMING.contains(&path) {
        "server_stream"
    } else {
        "unary"
    }
}

/// Most methods whose metric handles are kept (the services' methods; a client calling made-up
/// paths cannot grow the map past it, its calls are then recorded without the cache).
const CACHED_METHODS: usize = 64;

/// A method's metric handles, looked up once: a call then records without building labels or
/// hashing them into the registry.
struct MethodMetrics {
    started: metrics::Counter,
    /// Messages received and sent (a unary call: one each, the answer only when OK, as
    /// go-grpc-prometheus counts them).
    received: metrics::Counter,
    sent: metrics::Counter,
    handling: metrics::Histogram,
    /// `grpc_server_handled_total` by code, registered at the code's first use.
    handled: [OnceLock<metrics::Counter>; 17],
    labels: Vec<metrics::Label>,
    /// Whether the recorder was installed when the handles were made (before, they record
    /// nothing and are made again once it is).
    recording: bool,
}

impl MethodMetrics {
    fn new(path: &str) -> MethodMetrics {
        let (service, method) = service_and_method(path);
        let labels = vec![
            metrics::Label::new("grpc_type", grpc_type(path)),
            metrics::Label::new("grpc_service", service.to_owned()),
            metrics::Label::new("grpc_method", method.to_owned()),
        ];
        MethodMetrics {
            started: metrics::counter!("grpc_server_started_total", labels.clone()),
            received: metrics::counter!("grpc_server_msg_received_total", labels.clone()),
            sent: metrics::counter!("grpc_server_msg_sent_total", labels.clone()),
            handling: metrics::histogram!("grpc_server_handling_seconds", labels.clone()),
            handled: Default::default(),
            labels,
            recording: crate::metrics::recording(),
        }
    }

    /// The metrics of the method at `path`.
    fn of(path: &str) -> Arc<MethodMetrics> {
        static CACHE: OnceLock<RwLock<HashMap<String, Arc<MethodMetrics>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(RwLock::default);
        if let Some(found) = cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(path)
            .filter(|found| found.recording == crate::metrics::recording())
        {
            return found.clone();
        }
        let made = Arc::new(MethodMetrics::new(path));
        let mut map = cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() < CACHED_METHODS {
            map.insert(path.to_owned(), made.clone());
        }
        made
    }

    fn finished(&self, code: Code, seconds: f64) {
        self.handling.record(seconds);
        if code == Code::Ok {
            self.sent.increment(1);
        }
        let slot = &self.handled[(code as usize).min(16)];
        slot.get_or_init(|| {
            let mut labels = self.labels.clone();
            labels.push(metrics::Label::new("grpc_code", code_name(code)));
            metrics::counter!("grpc_server_handled_total", labels)
        })
        .increment(1);
    }
}

/// The code's name as go-grpc-prometheus writes it (Go's `codes.Code.String()`), which
/// dashboards match.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The span of a call, from `$level_span` (`info_span` or `debug_span`).
macro_rules! call_span {
    ($level_span:ident, $path:expr, $method:expr) => {
        tracing::$level_span!(
            "rpc",
            otel.name = $path,
            otel.kind = "server",
            otel.status_code = field::Empty,
            rpc.system = "grpc",
            rpc.method = $method,
            rpc.code = field::Empty,
            duration_ms = field::Empty,
            principal = field::Empty,
            request_id = field::Empty,
            error.message = field::Empty,
            trace_id = field::Empty,
        )
    };
}

impl Call {
    fn new(headers: &HeaderMap, uri: &http::Uri) -> Call {
        let (service, method) = service_and_method(uri.path());
        let api = service.starts_with("partners.");
        // Health checks and reflection come often (probes) and say little: their span and line
        // exist at debug level only, and cost nothing above it.
        let path = uri.path().trim_start_matches('/');
        let span = if api {
            call_span!(info_span, path, method)
        } else {
            call_span!(debug_span, path, method)
        };
        crate::telemetry::continue_trace(&span, headers);
        if !span.is_disabled()
            && let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok())
        {
            span.record("request_id", id);
        }
        let metrics = MethodMetrics::of(uri.path());
        metrics.started.increment(1);
        metrics.received.increment(1);
        Call {
            metrics,
            span,
            uri: uri.clone(),
            api,
            started: Instant::now(),
            finished: false,
            caller_refused: false,
        }
    }

    /// Writes the call's line with `code`.
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.metrics
            .finished(code, self.started.elapsed().as_secs_f64());
        if self.span.is_disabled() {
            return;
        }
        let _entered = self.span.enter();
        self.span.record("rpc.code", field::debug(code));
        self.span
            .record("duration_ms", self.started.elapsed().as_secs_f64() * 1000.0);
        let (_, method) = service_and_method(self.uri.path());
        match code {
            _ if !self.api => tracing::debug!("{method} done"),
            Code::Internal | Code::Unknown | Code::DataLoss => {
                self.span.record("otel.status_code", "error");
                tracing::error!("{method} failed")
            }
            Code::ResourceExhausted if self.caller_refused => tracing::info!("{method} refused"),
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
                tracing::warn!("{method} not served")
            }
            _ => tracing::info!("{method} done"),
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // The client went away before the call's end.
        self.finish(Code::Cancelled);
    }
}

/// The code of `grpc-status`, if the headers or trailers carry one.
fn grpc_code(headers: &HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

impl<S, B, R> Service<http::Request<B>> for CallLog<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Body<Data = Bytes> + Unpin,
{
    type Response = http::Response<LoggedBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut call = Call::new(request.headers(), request.uri());
        let span = call.span.clone();
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let response = match future.await {
                    Ok(response) => response,
                    Err(err) => {
                        call.finish(Code::Unknown);
                        return Err(err);
                    }
                };
                let (parts, body) = response.into_parts();
                call.caller_refused = parts.extensions.get::<CallerRefused>().is_some();
                // A trailers-only answer (every error) carries its code in the headers.
                let call = match grpc_code(&parts.headers) {
                    Some(code) => {
                        call.finish(code);
                        None
                    }
                    None => Some(call),
                };
                Ok(http::Response::from_parts(
                    parts,
                    LoggedBody { inner: body, call },
                ))
            }
            .instrument(span),
        )
    }
}

/// A response body that finishes its call's line at the trailers.
pub struct LoggedBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for LoggedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let end = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame.trailers_ref().map(grpc_code),
            Poll::Ready(Some(Err(_))) => Some(Some(Code::Unknown)),
            Poll::Ready(None) => Some(None),
            Poll::Pending => None,
        };
        if let Some(code) = end
            && let Some(mut call) = self.call.take()
        {
            call.finish(code.unwrap_or(Code::Unknown));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
