//! The gateway's side of a shutdown: once the process is draining (a signal arrived), every
//! HTTP/1.x answer carries `Connection: close`, so hyper closes the connection right after it and
//! the client knows not to reuse it. Kept-alive clients (a balancer's pooled connections
//! included) then leave a stopping replica one answer at a time, instead of finding their idle
//! connection closed under a request they have just sent. HTTP/2 connections get their GOAWAY
//! when the listener closes (hyper's graceful shutdown).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;

/// Whether the process is draining; cheap to clone, shared by the gateway and the shutdown.
#[derive(Clone, Debug, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// From now on, HTTP/1.x answers close their connection.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Draining::start`] was called.
    pub fn started(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Wraps `router` so that its HTTP/1.x answers carry `Connection: close` once `draining` started.
pub fn close_connections_when(router: Router, draining: Draining) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        draining,
        close_when_draining,
    ))
}

async fn close_when_draining(
    State(draining): State<Draining>,
    request: Request,
    next: Next,
) -> Response {
    // `Connection` is not allowed in HTTP/2 (hyper drops it with a warning).
    let http1 = request.version() < Version::HTTP_2;
    let mut response = next.run(request).await;
    // Checked after the handler: a call that began before the signal closes its connection too.
    if http1 && draining.started() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn http1_answers_close_their_connection_once_draining() {
        let draining = Draining::default();
        let router = close_connections_when(
            Router::new().route("/", get(|| async { "ok" })),
            draining.clone(),
        );
        let call = |version| {
            let request = Request::get("/")
                .version(version)
                .body(Body::empty())
                .expect("request");
            router.clone().oneshot(request)
        };
        let before = call(Version::HTTP_11).await.expect("answer");
        assert!(!before.headers().contains_key(header::CONNECTION));
        draining.start();
        let after = call(Version::HTTP_11).await.expect("answer");
        assert_eq!(after.headers()[header::CONNECTION], "close");
        let http2 = call(Version::HTTP_2).await.expect("answer");
        assert!(!http2.headers().contains_key(header::CONNECTION));
    }
}
