//! The HTTP conventions web clients expect, around the gateway's routes: CORS for the configured
//! origins (`--cors-allowed-origins`; off when empty; preflights answered here), response
//! compression (gzip, br) negotiated by `Accept-Encoding` for bodies over 1 KiB, and a strong
//! `ETag` on successful GETs with `If-None-Match` answered 304 and `Cache-Control: private,
//! no-cache` (a client may keep the document but must revalidate it), and the key's rate limit in
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (IETF draft) on every answer to
//! an authenticated call, 429 included, copied from the call's metadata (`crate::auth::RateState`).
//!
//! The ETag is taken over the body as sent (after compression), so each encoding has its own
//! strong validator, as RFC 9110 wants of a strong ETag. Streamed answers (the export, marked
//! [`Streamed`]) get neither: hashing them would hold the whole body.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::Gateway;
use super::middleware::X_REQUEST_ID;
use crate::auth::RATE_LIMIT_HEADERS;

tokio::task_local! {
    /// The rate-limit fields of the request's gRPC call, kept by [`keep_rate_limit`].
    static RATE_LIMIT: std::cell::RefCell<Vec<(HeaderName, HeaderValue)>>;
}

/// Keeps the rate-limit fields of a call's answer (`metadata`) for the request's response. Does
/// nothing outside a request (no [`rate_limit`] around it).
pub fn keep_rate_limit(metadata: &tonic::metadata::MetadataMap) {
    let _ = RATE_LIMIT.try_with(|kept| {
        let mut kept = kept.borrow_mut();
        kept.clear();
        for name in RATE_LIMIT_HEADERS {
            if let Some(value) = metadata
                .get(name)
                .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            {
                kept.push((HeaderName::from_static(name), value));
            }
        }
    });
}

/// Writes the rate-limit fields the request's call answered onto its response.
async fn rate_limit(request: Request<Body>, next: Next) -> Response {
    let (mut response, kept) = RATE_LIMIT
        .scope(std::cell::RefCell::new(Vec::new()), async {
            let response = next.run(request).await;
            (response, RATE_LIMIT.with(|kept| kept.take()))
        })
        .await;
    for (name, value) in kept {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Marks a response whose body is streamed: no ETag (it would buffer the body).
#[derive(Debug, Clone, Copy)]
pub struct Streamed;

/// Bodies smaller than this are sent as they are.
const COMPRESS_ABOVE: u16 = 1024;
/// Largest body an ETag is computed for (larger ones, none of ours, go without).
const ETAG_MAX_BODY: usize = 16 << 20;
/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(600);

/// Wraps `router` (whose routes are already in the middleware stack) in the conventions.
pub fn wrap(router: Router<Gateway>, cors_origins: &[HeaderValue]) -> Router<Gateway> {
    let compression = CompressionLayer::new()
        .gzip(true)
        .br(true)
        .compress_when(DefaultPredicate::new().and(SizeAbove::new(COMPRESS_ABOVE)));
    let router = router
        .layer(axum::middleware::from_fn(rate_limit))
        .layer(compression)
        .layer(axum::middleware::from_fn(etag));
    if cors_origins.is_empty() {
        return router;
    }
    router.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(cors_origins.iter().cloned()))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                X_REQUEST_ID,
                HeaderName::from_static("x-user-uuid"),
            ])
            .expose_headers([
                X_REQUEST_ID,
                header::LOCATION,
                header::RETRY_AFTER,
                header::ETAG,
                HeaderName::from_static(RATE_LIMIT_HEADERS[0]),
                HeaderName::from_static(RATE_LIMIT_HEADERS[1]),
                HeaderName::from_static(RATE_LIMIT_HEADERS[2]),
            ])
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

/// Adds the ETag and `Cache-Control` to a successful GET, and answers 304 when the client's
/// `If-None-Match` names it.
async fn etag(request: Request<Body>, next: Next) -> Response {
    let conditional = (request.method() == Method::GET)
        .then(|| request.headers().get(header::IF_NONE_MATCH).cloned());
    let response = next.run(request).await;
    let Some(if_none_match) = conditional else {
        return response;
    };
    if response.status() != StatusCode::OK || response.extensions().get::<Streamed>().is_some() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ETAG_MAX_BODY).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let digest = hex::encode(&Sha256::digest(&bytes)[..16]);
    let Ok(tag) = HeaderValue::from_str(&format!("\"{digest}\"")) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.insert(header::ETAG, tag.clone());
    parts.headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    let matches = if_none_match
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == "*" || t.as_bytes() == tag.as_bytes())
        });
    if matches {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}
