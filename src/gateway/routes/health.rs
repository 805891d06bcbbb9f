//! The operations routes (tag `operations`, no key needed): liveness `GET /healthz`, readiness
//! `GET /readyz` (the gRPC health check: SERVING while the database answers) and this gateway's
//! OpenAPI document `GET /api/v1/openapi.json`. They answer plain JSON.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic_health::pb::health_check_response::ServingStatus;
use utoipa::ToSchema;

use crate::gateway::{Gateway, openapi};

/// How long readiness waits for the health check.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// The liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(inline)]
    status: Alive,
}

/// `ok` while the process is up.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Alive {
    /// The process is up.
    Ok,
}

/// The readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(inline)]
    status: Ready,
}

/// Whether the service can serve.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    /// The database answers.
    Ready,
    /// The database does not answer (or the check timed out).
    Unavailable,
}

/// `GET /healthz`: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    summary = "Liveness",
    security(),
    responses(
        (status = 200, description = "The process is up.", body = Health,
         content_type = "application/json"),
    ),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: Alive::Ok })
}

/// `GET /readyz`: ready when the database answers.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    summary = "Readiness",
    description = "Ready when the database answers.",
    security(),
    responses(
        (status = 200, description = "Ready to serve.", body = Readiness,
         content_type = "application/json"),
        (status = 503, description = "Not ready (`{\"status\": \"unavailable\"}`).", body = Readiness,
         content_type = "application/json"),
    ),
)]
pub async fn readyz(State(gw): State<Gateway>) -> Response {
    let mut client = tonic_health::pb::health_client::HealthClient::new(gw.transport());
    let check = client.check(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    });
    let serving = matches!(
        tokio::time::timeout(READINESS_TIMEOUT, check).await,
        Ok(Ok(r)) if r.get_ref().status == ServingStatus::Serving as i32
    );
    if serving {
        Json(Readiness {
            status: Ready::Ready,
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: Ready::Unavailable,
            }),
        )
            .into_response()
    }
}

/// `GET /api/v1/openapi.json`: this gateway's OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    summary = "This OpenAPI document",
    security(),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this gateway.", body = Object,
         content_type = "application/json"),
    ),
)]
pub async fn openapi_json() -> Json<serde_json::Value> {
    Json(openapi::document())
}
