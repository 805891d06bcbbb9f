//! Logging and traces.
//!
//! Logs: `tracing` to stderr, text by default, JSON lines with `PARTNERS_LOG_FORMAT=json`; the
//! level comes from `RUST_LOG` (default `info`).
//!
//! Traces: off unless the standard OpenTelemetry variables configure them
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SDK_DISABLED=true`
//! or `OTEL_TRACES_EXPORTER=none` keep them off). Then the spans the service already makes for its
//! logs become OpenTelemetry spans, exported over OTLP/gRPC by the SDK's batch processor:
//! - `http`: one per REST request (the gateway's middleware), server kind, its parent taken from
//!   a W3C `traceparent`/`tracestate` the client sent;
//! - `rpc`: one per gRPC call (the call log), server kind, its parent taken from the call's
//!   metadata; the gateway writes its own span's context there ([`inject`]), so a REST request's
//!   call, in process or to a remote server, is the HTTP span's child;
//! - `db.query`: one per statement a call runs (Diesel's instrumentation on pooled connections:
//!   [`QuerySpans`]), client kind, with the statement's text, whose values are all binds and so
//!   never in it.
//!
//! The other variables (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//! and `_ARG`, `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `_HEADERS`, `_COMPRESSION`) are read by
//! the SDK and the exporter. The service name defaults to `partners`. A traced span records its
//! `trace_id`, so every JSON line logged in a traced request carries it.
//!
//! With traces off the spans are what they were (the `db.query` spans, at debug level for the
//! exporter only, are not even made), and nothing is extracted or injected.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter};

/// Whether spans are exported (set once by [`init`]).
static TRACING: AtomicBool = AtomicBool::new(false);

/// The target of the statement spans ([`QuerySpans`]).
const QUERY_TARGET: &str = "partners::db::query";

/// Longest statement text a span carries (the lists' statements are long; the start names them).
const MAX_QUERY_TEXT: usize = 2048;

/// Whether spans are exported to an OTLP endpoint.
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Keeps the trace exporter alive; dropping it exports the spans still queued.
#[must_use = "dropping it stops the trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// The exporter's own runtime: the OTLP client is a tonic channel, which needs one, and the
    /// service's runtimes come and go with the subcommands.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("partners: trace export at exit: {e}");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether the environment asks for traces (see the module documentation).
fn traces_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let is = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
}

/// The tracer provider exporting over OTLP/gRPC, and the runtime its client runs on.
fn provider() -> Result<(SdkTracerProvider, tokio::runtime::Runtime), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-export")
        .enable_all()
        .build()
        .map_err(|e| format!("trace export runtime: {e}"))?;
    let _entered = runtime.enter();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    if !named {
        resource = resource.with_service_name("partners");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    Ok((provider, runtime))
}

/// Installs the global subscriber: the log output, and the trace export when configured. Call
/// once, first thing; a second call installs nothing.
pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("PARTNERS_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_filter(filter)
            .boxed()
    } else {
        logs.with_ansi(false).with_filter(filter).boxed()
    };
    let mut telemetry = Telemetry {
        provider: None,
        runtime: None,
    };
    let mut failure = None;
    let traces = if traces_configured() {
        match provider() {
            Ok((provider, runtime)) => {
                let tracer = provider.tracer("partners");
                telemetry.provider = Some(provider);
                telemetry.runtime = Some(runtime);
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_location(false)
                        .with_threads(false)
                        .with_target(false)
                        .with_level(false)
                        .with_filter(filter::filter_fn(exported)),
                )
            }
            Err(e) => {
                failure = Some(e);
                None
            }
        }
    } else {
        None
    };
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    if installed && telemetry.provider.is_some() {
        TRACING.store(true, Ordering::Relaxed);
        tracing::info!("exporting traces over OTLP");
    }
    if let Some(e) = failure {
        tracing::error!(error.message = %e, "traces not exported");
    }
    telemetry
}

/// The spans the exporter sees: the service's own spans at info and above (the requests and
/// calls; health checks and reflection are at debug) and the statement spans. No events: the
/// logs carry those.
fn exported(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span()
        && meta.target().starts_with("partners")
        && (*meta.level() <= Level::INFO || meta.target() == QUERY_TARGET)
}

/// The W3C trace-context propagator (`traceparent`, `tracestate`).
fn propagator() -> &'static TraceContextPropagator {
    static PROPAGATOR: OnceLock<TraceContextPropagator> = OnceLock::new();
    PROPAGATOR.get_or_init(TraceContextPropagator::new)
}

/// Reads trace context from HTTP headers (gRPC metadata are headers too).
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Writes trace context into a call's metadata.
struct Metadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for Metadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::AsciiMetadataValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Makes `span` (just made, with an empty `trace_id` field) the child of the trace context in
/// `headers`, if they carry a valid one, and records its trace id when the trace is sampled. Does
/// nothing with traces off.
pub fn continue_trace(span: &Span, headers: &http::HeaderMap) {
    if !tracing_enabled() || span.is_disabled() {
        return;
    }
    let parent = propagator().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    // A trace that is not sampled is not kept anywhere: its id would name nothing.
    if span_context.is_sampled() {
        span.record(
            "trace_id",
            field::display(span_context.trace_id().to_string()),
        );
    }
}

/// Writes the current span's trace context into an outgoing call's metadata. Does nothing with
/// traces off.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    if !tracing_enabled() {
        return;
    }
    let context = Span::current().context();
    if context.span().span_context().is_valid() {
        propagator().inject_context(&context, &mut Metadata(metadata));
    }
}

/// The span a blocking database call runs in: the caller's, with traces on; none otherwise (so
/// entering it costs nothing).
pub fn span_for_blocking() -> Span {
    if tracing_enabled() {
        Span::current()
    } else {
        Span::none()
    }
}

/// Diesel instrumentation making one `db.query` span per statement run inside a sampled trace (a
/// statement of a background task outside any span is not traced). Installed on pooled
/// connections with traces on.
#[derive(Debug, Default)]
pub struct QuerySpans {
    current: Option<Span>,
}

impl Instrumentation for QuerySpans {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                // Only inside a call's span, and only when its trace is sampled: rendering the
                // statement costs more than the statement's round trip on a point read.
                let parent = Span::current();
                if parent.is_none() || !parent.context().span().span_context().is_sampled() {
                    return;
                }
                let span = tracing::debug_span!(
                    target: QUERY_TARGET,
                    "db.query",
                    otel.name = field::Empty,
                    otel.kind = "client",
                    otel.status_code = field::Empty,
                    db.system.name = "postgresql",
                    db.operation.name = field::Empty,
                    db.query.text = field::Empty,
                );
                if !span.is_disabled() {
                    let text = query.to_string();
                    // Diesel's rendering lists the bind values after the text: never kept.
                    let text = text.split(" -- binds: ").next().unwrap_or_default().trim();
                    let operation = text
                        .split_whitespace()
                        .next()
                        .unwrap_or("SQL")
                        .to_ascii_uppercase();
                    span.record("otel.name", field::display(&operation));
                    span.record("db.operation.name", field::display(&operation));
                    span.record("db.query.text", truncated(text, MAX_QUERY_TEXT));
                }
                self.current = Some(span);
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                if let Some(span) = self.current.take()
                    && error.is_some()
                {
                    span.record("otel.status_code", "error");
                }
            }
            _ => {}
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exporter_sees_service_spans_and_statements_only() {
        use tracing::callsite::Identifier;
        // Metadata needs a callsite; these are built for the check only.
        struct Site;
        impl tracing::Callsite for Site {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unreachable!()
            }
        }
        static SITE: Site = Site;
        let meta = |target: &'static str, level: Level, kind: tracing::metadata::Kind| {
            tracing::Metadata::new(
                "x",
                target,
                level,
                None,
                None,
                None,
                tracing::field::FieldSet::new(&[], Identifier(&SITE)),
                kind,
            )
        };
        use tracing::metadata::Kind;
        assert!(exported(&meta(
            "partners::gateway",
            Level::INFO,
            Kind::SPAN
        )));
        assert!(exported(&meta(QUERY_TARGET, Level::DEBUG, Kind::SPAN)));
        assert!(!exported(&meta("partners::grpc", Level::DEBUG, Kind::SPAN)));
        assert!(!exported(&meta("h2::proto", Level::INFO, Kind::SPAN)));
        assert!(!exported(&meta(
            "partners::gateway",
            Level::INFO,
            Kind::EVENT
        )));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncated("abc", 5), "abc");
        assert_eq!(truncated("abcdef", 3), "abc");
        assert_eq!(truncated("aé", 2), "a");
    }
}
