//! A server layer that fixes two statuses tonic's transport produces without our error details:
//! an over-size request message becomes RESOURCE_EXHAUSTED (as grpc-go does) instead of a bare
//! OUT_OF_RANGE. It also enforces the call deadline (the server's request timeout, or the client's
//! shorter `grpc-timeout`) and answers DEADLINE_EXCEEDED (tonic's own timeout says CANCELLED).
//! Both get an `ErrorInfo`, like every other error of the service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use http_body_util::BodyExt;
use http_body_util::combinators::MapFrame;
use tower::{Layer, Service};

use crate::error::Error;

/// Wraps a service with [`TransportStatus`], ending calls after `timeout` at the latest.
#[derive(Debug, Clone, Copy)]
pub struct TransportStatusLayer {
    /// The server's deadline for every call.
    pub timeout: Duration,
}

impl<S> Layer<S> for TransportStatusLayer {
    type Service = TransportStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TransportStatus {
            inner,
            timeout: self.timeout,
        }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct TransportStatus<S> {
    inner: S,
    timeout: Duration,
}

/// Parses a `grpc-timeout` value (`<digits><H|M|S|m|u|n>`).
fn grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Response body whose trailers pass through [`rewrite`].
pub type RewrittenBody<R> = MapFrame<R, fn(Frame<Bytes>) -> Frame<Bytes>>;

fn rewrite_frame(frame: Frame<Bytes>) -> Frame<Bytes> {
    match frame.into_trailers() {
        Ok(mut trailers) => {
            rewrite(&mut trailers);
            Frame::trailers(trailers)
        }
        Err(frame) => frame,
    }
}

impl<S, B, R> Service<http::Request<B>> for TransportStatus<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: http_body::Body<Data = Bytes> + Default,
{
    type Response = http::Response<RewrittenBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let client_deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(grpc_timeout);
        let deadline = client_deadline.map_or(self.timeout, |d| d.min(self.timeout));
        let future = self.inner.call(request);
        Box::pin(async move {
            let Ok(response) = tokio::time::timeout(deadline, future).await else {
                let expired = Error::DeadlineExceeded.into_status().into_http::<R>();
                let (parts, body) = expired.into_parts();
                let body = body.map_frame(rewrite_frame as fn(Frame<Bytes>) -> Frame<Bytes>);
                return Ok(http::Response::from_parts(parts, body));
            };
            let (mut parts, body) = response?.into_parts();
            rewrite(&mut parts.headers); // a trailers-only answer
            let body = body.map_frame(rewrite_frame as fn(Frame<Bytes>) -> Frame<Bytes>);
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

fn rewrite(headers: &mut HeaderMap) {
    let code = headers.get("grpc-status").map(|v| v.as_bytes().to_vec());
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let replacement = match code.as_deref() {
        Some(b"11") if message.contains("message length too large") => Error::MessageTooLarge,
        Some(b"1") if message == "Timeout expired" => Error::DeadlineExceeded,
        _ => return,
    };
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    let status = replacement.into_status();
    if status.add_header(headers).is_err() {
        headers.insert("grpc-status", http::HeaderValue::from_static("2"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(grpc_timeout("300m"), Some(Duration::from_millis(300)));
        assert_eq!(grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(grpc_timeout("5x"), None);
        assert_eq!(grpc_timeout(""), None);
    }

    #[test]
    fn only_the_oversize_status_is_rewritten() {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", "11".parse().expect("value"));
        headers.insert(
            "grpc-message",
            "Error, decoded message length too large: found 2 bytes, the limit is: 1 bytes"
                .parse()
                .expect("value"),
        );
        rewrite(&mut headers);
        assert_eq!(
            headers.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"8"[..])
        );
        assert!(headers.contains_key("grpc-status-details-bin"));

        let mut other = HeaderMap::new();
        other.insert("grpc-status", "11".parse().expect("value"));
        other.insert("grpc-message", "page out of range".parse().expect("value"));
        rewrite(&mut other);
        assert_eq!(
            other.get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"11"[..])
        );
    }
}
