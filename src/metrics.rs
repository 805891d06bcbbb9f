//! Prometheus metrics: the `metrics` facade, recorded where things happen (the gRPC call log,
//! the REST middleware, `Db::run`, the click writers, the point reads, authentication), rendered
//! by `metrics-exporter-prometheus` on a listener of its own (`--metrics-addr`, `GET /metrics`).
//! Values that already live elsewhere (the pool's state, the database probe, the lists' copy
//! counters) are read when scraped. Without a listener no recorder is installed and every
//! recording is a no-op.
//!
//! Names: gRPC as go-grpc-prometheus (`grpc_server_*`, labels `grpc_type`, `grpc_service`,
//! `grpc_method`, `grpc_code`); REST as OpenTelemetry's HTTP conventions
//! (`http_server_request_duration_seconds`, labels `method`, `route`, `status`); ours under
//! `partners_*` and `db_*`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::Db;
use crate::serving::Services;

/// Seconds buckets of the latency histograms (1 ms to 10 s).
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the batch-size histograms.
const SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Set once the recorder is installed.
static RECORDING: AtomicBool = AtomicBool::new(false);

/// Whether metrics are recorded (a listener was started in this process).
pub fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

/// The process's recorder (one per process: the `metrics` facade is global).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZES))
                .map(PrometheusBuilder::build_recorder);
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    // Fails only when another recorder is installed (then ours records nothing).
                    if metrics::set_global_recorder(recorder).is_err() {
                        tracing::warn!("a metrics recorder was installed already");
                    }
                    RECORDING.store(true, Ordering::Relaxed);
                    metrics::gauge!(
                        "partners_build_info",
                        "version" => env!("CARGO_PKG_VERSION"),
                        "git_sha" => env!("PARTNERS_GIT_SHA"),
                    )
                    .set(1.0);
                    // Families that count rare events are shown (at 0) before the first one.
                    metrics::counter!("db_checkout_timeouts_total").increment(0);
                    for limit in ["key", "address"] {
                        metrics::counter!("partners_rate_limited_total", "limit" => limit)
                            .increment(0);
                    }
                    Some(handle)
                }
                Err(error) => {
                    tracing::error!(error.message = %error, "metrics: cannot build the recorder");
                    None
                }
            }
        })
        .as_ref()
}

/// What a scrape reads besides the recorded values.
#[derive(Clone)]
struct Scraped {
    db: Db,
    services: Services,
}

/// The metrics listener's router: `GET /metrics`. Installs the recorder.
pub fn router(db: Db, services: Services) -> Router {
    handle();
    Router::new()
        .route("/metrics", get(render))
        .with_state(Scraped { db, services })
}

async fn render(State(scraped): State<Scraped>) -> impl IntoResponse {
    let Some(handle) = handle() else {
        return (StatusCode::SERVICE_UNAVAILABLE, String::new()).into_response();
    };
    let pool = scraped.db.pool_state();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(pool.idle as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(pool.connections.saturating_sub(pool.idle) as f64);
    metrics::gauge!("db_up").set(if scraped.db.is_healthy() { 1.0 } else { 0.0 });
    let lists = scraped.services.lists.stats();
    metrics::counter!("partners_lists_total", "answered_by" => "copy").absolute(lists.served);
    metrics::counter!("partners_lists_total", "answered_by" => "sql").absolute(lists.fell_back);
    metrics::counter!("partners_lists_total", "answered_by" => "cursor")
        .absolute(lists.cursor_pages);
    metrics::counter!("partners_lists_waited_for_copy_total").absolute(lists.waited);
    metrics::counter!("partners_lists_unaffected_by_changes_total").absolute(lists.unaffected);
    metrics::counter!("partners_lists_copy_loads_total").absolute(lists.loads);
    metrics::counter!("partners_lists_copy_changes_total").absolute(lists.changes);
    metrics::gauge!("partners_lists_copy_lag_seconds").set(lists.lag_ms as f64 / 1000.0);
    metrics::gauge!("partners_lists_copy_lag_changes").set(lists.lag_changes as f64);
    metrics::gauge!("partners_click_queue_depth").set(scraped.services.clicks.queued() as f64);
    let events = &scraped.services.events;
    metrics::gauge!("partners_events_streams").set(events.streams() as f64);
    metrics::gauge!("partners_events_tail_sequence").set(events.tail_sequence() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Serves the metrics router on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
