//! The gateway's one middleware stack, applied to every route (and to the 404/405 fallbacks),
//! built from `tower-http` layers. From the outside in:
//!
//! 1. request id: a client's `X-Request-Id` is kept when it is 1..200 visible ASCII characters,
//!    otherwise a UUID v4 is made (`SetRequestIdLayer`); it goes to the gRPC call as metadata and
//!    back on the response (`PropagateRequestIdLayer`);
//! 2. trace (`TraceLayer`): one span and one log line per request with the method, the route
//!    template (never the raw path with its ids), the status, the duration in ms and the request
//!    id; never a body or a key. 5xx are logged at warn (500 at error), the rest at info;
//! 3. the JSON:API rendering of what the two layers below answer on their own;
//! 4. body limit (`RequestBodyLimitLayer`): 64 KiB, answered 413 `PAYLOAD_TOO_LARGE` (a
//!    `Content-Length` over the limit here, a longer streamed body where the handler reads it);
//! 5. timeout (`TimeoutLayer`): the whole request, a little longer than the call's deadline so
//!    that the call's own 504 comes first; answered 504 `DEADLINE_EXCEEDED`.
//!
//! Hand-made, and why: step 3, because tower-http's timeout and limit layers answer with an empty
//! or `text/plain` body and the API promises JSON:API error documents; and the check of a
//! client's request id, because `SetRequestIdLayer` keeps whatever a client sent.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower::util::MapResponseLayer;
use tower_http::limit::{RequestBodyLimitLayer, ResponseBody};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetRequestHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::{Span, field};

use super::errors::{ApiErrors, JSON_API};
use super::extract::payload_too_large;
use super::{Gateway, MAX_BODY_BYTES, deadline_exceeded};

/// The request id header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How much longer than the call's deadline a whole request may take (reading the body,
/// decoding, rendering).
const TIMEOUT_MARGIN: Duration = Duration::from_secs(1);

/// Wraps every route of `router` in the stack; `call_timeout` is the gRPC call's deadline.
pub fn wrap(router: Router<Gateway>, call_timeout: Duration) -> Router<Gateway> {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestHeaderLayer::overriding(
                X_REQUEST_ID,
                replace_invalid_request_id,
            ))
            .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(log_response)
                    .on_body_chunk(())
                    .on_eos(())
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
            .layer(axum::middleware::from_fn(record_metrics))
            .layer(MapResponseLayer::new(render_layer_answers))
            .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::GATEWAY_TIMEOUT,
                call_timeout + TIMEOUT_MARGIN,
            )),
    )
}

/// Whether a client's request id is kept: 1..200 visible ASCII characters.
fn valid_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 200 && bytes.iter().all(u8::is_ascii_graphic)
}

/// A fresh id in place of an invalid client id (`None` keeps the header as it is; a missing one
/// is made by `SetRequestIdLayer`).
fn replace_invalid_request_id<B>(request: &Request<B>) -> Option<HeaderValue> {
    let sent = request.headers().get(X_REQUEST_ID)?;
    if valid_request_id(sent) {
        return None;
    }
    HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok()
}

/// The request's span: method, route template and request id; status and duration come later.
fn request_span<B>(request: &Request<B>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "http",
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        otel.status_code = field::Empty,
        http.method = %request.method(),
        http.route = %route,
        http.status = field::Empty,
        duration_ms = field::Empty,
        request_id = %request_id,
        trace_id = field::Empty,
    );
    crate::telemetry::continue_trace(&span, request.headers());
    span
}

/// Counts the request and its duration (to the response's headers) by method, route template
/// (never the raw path) and status.
async fn record_metrics(request: Request<Body>, next: axum::middleware::Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_str().to_owned()),
    ];
    metrics::histogram!("http_server_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_server_requests_total", &labels).increment(1);
    response
}

/// The request's one log line, at a level chosen from the status.
fn log_response<B>(response: &Response<B>, latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.status", status.as_u16());
    span.record("duration_ms", latency.as_secs_f64() * 1000.0);
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("request failed");
    } else if status.is_server_error() {
        tracing::warn!("request failed");
    } else {
        tracing::info!("request done");
    }
}

/// Renders the timeout's and the body limit's own answers (not JSON:API) as JSON:API errors.
/// Every answer of a handler with these statuses is JSON:API already and passes unchanged.
fn render_layer_answers(response: Response<ResponseBody<Body>>) -> Response {
    let json_api = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == JSON_API);
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE if !json_api => {
            ApiErrors::from(payload_too_large()).into_response()
        }
        StatusCode::GATEWAY_TIMEOUT if !json_api => {
            ApiErrors::from(deadline_exceeded()).into_response()
        }
        _ => response.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Bytes;
    use tower::ServiceExt;

    use super::*;

    /// A gateway whose upstream is never reached by these tests.
    fn router(call_timeout: Duration) -> Router {
        let gateway = Gateway::remote("http://127.0.0.1:9", 1, call_timeout).expect("gateway");
        crate::gateway::router(gateway)
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_is_a_json_api_504() {
        // A body that never ends: the handler waits on it until the layer's timeout.
        let body = Body::from_stream(tokio_stream::pending::<Result<Bytes, std::io::Error>>());
        let request = Request::post("/api/v1/partners/1/click_event")
            .header(header::CONTENT_TYPE, "application/json")
            .header(X_REQUEST_ID, "slow-1")
            .body(body)
            .expect("request");
        let response = router(Duration::from_millis(10))
            .oneshot(request)
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], JSON_API);
        assert_eq!(response.headers()[X_REQUEST_ID], "slow-1");
        let body = json(response).await;
        assert_eq!(body["errors"][0]["code"], "DEADLINE_EXCEEDED");
        assert_eq!(body["errors"][0]["status"], "504");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_a_json_api_413() {
        let request = Request::post("/api/v1/partners")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, MAX_BODY_BYTES + 1)
            .body(Body::from(vec![b' '; MAX_BODY_BYTES + 1]))
            .expect("request");
        let response = router(Duration::from_secs(5))
            .oneshot(request)
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], JSON_API);
        assert!(response.headers().contains_key(X_REQUEST_ID));
        let body = json(response).await;
        assert_eq!(body["errors"][0]["code"], "PAYLOAD_TOO_LARGE");
        assert_eq!(body["errors"][0]["detail"], "the body exceeds 65536 bytes");
    }

    #[test]
    fn request_ids_are_kept_only_when_short_visible_ascii() {
        for (id, kept) in [
            ("trace-me-1", true),
            ("a", true),
            ("", false),
            ("has space", false),
            ("tab\there", false),
        ] {
            let value = HeaderValue::from_str(id).expect("header value");
            assert_eq!(valid_request_id(&value), kept, "{id:?}");
        }
        let long = HeaderValue::from_str(&"x".repeat(201)).expect("header value");
        assert!(!valid_request_id(&long));
        let max = HeaderValue::from_str(&"x".repeat(200)).expect("header value");
        assert!(valid_request_id(&max));
        let non_ascii = HeaderValue::from_bytes(b"caf\xc3\xa9").expect("header value");
        assert!(!valid_request_id(&non_ascii));
    }

    #[test]
    fn invalid_client_ids_are_replaced_by_a_uuid() {
        let request = Request::builder()
            .header(X_REQUEST_ID, "not valid")
            .body(())
            .expect("request");
        let made = replace_invalid_request_id(&request).expect("a replacement");
        assert!(uuid::Uuid::parse_str(made.to_str().expect("ascii")).is_ok());
        let request = Request::builder()
            .header(X_REQUEST_ID, "ok-1")
            .body(())
            .expect("request");
        assert!(replace_invalid_request_id(&request).is_none());
        let request = Request::builder().body(()).expect("request");
        assert!(replace_invalid_request_id(&request).is_none());
    }

    /// A log sink for one test.
    #[derive(Clone, Default)]
    struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("logs").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A subscriber that wants nothing but keeps every callsite's interest at "sometimes".
    struct Sometimes;

    impl tracing::Subscriber for Sometimes {
        fn register_callsite(
            &self,
            _: &'static tracing::Metadata<'static>,
        ) -> tracing::subscriber::Interest {
            tracing::subscriber::Interest::sometimes()
        }
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            false
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test]
    async fn one_line_per_request_with_the_route_template_and_never_the_key() {
        let logs = Logs::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || sink.clone())
            .finish();
        // A callsite's interest is cached over all dispatchers alive when it is first met: a
        // test thread meeting the request span's callsite while no subscriber wanted it caches
        // "never", and this thread's subscriber would not see the span. A dispatcher that is
        // always alive and always answers "sometimes" keeps any callsite from being cached as
        // "never" (each span then asks the thread's own dispatcher); asking every callsite again
        // mends those cached before it existed.
        static SOMETIMES: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        SOMETIMES.get_or_init(|| tracing::Dispatch::new(Sometimes));
        let _guard = tracing::subscriber::set_default(subscriber);
        tracing::callsite::rebuild_interest_cache();
        let request = Request::get("/api/v1/partners/4242?include=users")
            .header(header::AUTHORIZATION, "Bearer pk_abcd_secretsecret")
            .header(X_REQUEST_ID, "logged-1")
            .body(Body::empty())
            .expect("request");
        // The upstream is unreachable: the call fails with a 503, logged at warn.
        let response = router(Duration::from_secs(5))
            .oneshot(request)
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        let done: Vec<_> = lines
            .iter()
            .filter(|l| l["fields"]["message"] == "request failed")
            .collect();
        assert_eq!(done.len(), 1, "{text}");
        assert!(!text.contains("response failed"), "one line only: {text}");
        let span = &done[0]["span"];
        assert_eq!(done[0]["level"], "WARN");
        assert_eq!(span["http.method"], "GET");
        assert_eq!(span["http.route"], "/api/v1/partners/{id}");
        assert_eq!(span["http.status"], 503);
        assert_eq!(span["request_id"], "logged-1");
        assert!(span["duration_ms"].as_f64().is_some(), "{span}");
        assert!(!text.contains("secret"), "a key leaked: {text}");
        assert!(!text.contains("4242"), "the raw path leaked: {text}");
    }
}
