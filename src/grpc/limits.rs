//! A server layer that reports an over-size request message as RESOURCE_EXHAUSTED (as grpc-go
//! does) with an `ErrorInfo`, instead of tonic's bare OUT_OF_RANGE.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use http_body_util::BodyExt;
use http_body_util::combinators::MapFrame;
use tower::{Layer, Service};

use crate::error::Error;

/// Wraps a service with [`Oversize`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OversizeLayer;

impl<S> Layer<S> for OversizeLayer {
    type Service = Oversize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Oversize { inner }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub struct Oversize<S> {
    inner: S,
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

impl<S, B, R> Service<http::Request<B>> for Oversize<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: http_body::Body<Data = Bytes>,
{
    type Response = http::Response<RewrittenBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let (mut parts, body) = future.await?.into_parts();
            rewrite(&mut parts.headers); // a trailers-only answer
            let body = body.map_frame(rewrite_frame as fn(Frame<Bytes>) -> Frame<Bytes>);
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

fn rewrite(headers: &mut HeaderMap) {
    let out_of_range = headers.get("grpc-status").is_some_and(|v| v == "11");
    let too_large = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .is_some_and(|m| m.contains("message length too large"));
    if !(out_of_range && too_large) {
        return;
    }
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    let status = Error::MessageTooLarge.into_status();
    if status.add_header(headers).is_err() {
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
