//! The authentication layer: every call to a `partners.v1` service (health and reflection are
//! exempt) must carry `authorization: Bearer <key>`. The layer authenticates the key, applies the
//! key's rate limit, reads `x-user-uuid`, and puts the [`Caller`] into the request's extensions,
//! where handlers find it ([`Caller::of`]); a refused call never reaches a handler. A failed
//! authentication counts against the client's address (`crate::auth::client`); past its budget
//! the address gets RESOURCE_EXHAUSTED.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderMap;
use tower::{Layer, Service};
use uuid::Uuid;

use crate::auth::{
    AddressLimiter, Authenticator, KeyLimiter, RateState, TrustedProxies, bearer, parse_key,
};
use crate::error::{Error, Result};
use crate::grpc::scope::{Caller, USER_HEADER};

/// Path prefix of the services that need a key.
const API_PREFIX: &str = "/partners.v1.";

/// What authentication needs: the keys, the per-key limits, the failure limits per address and
/// the proxies trusted to name the client.
#[derive(Clone)]
pub struct Guard {
    /// Keys to principals.
    pub auth: Authenticator,
    /// Calls per key.
    pub limiter: Arc<KeyLimiter>,
    /// Failed authentications per client address.
    pub failures: Arc<AddressLimiter>,
    /// Whose `x-forwarded-for` is believed.
    pub trusted: TrustedProxies,
}

/// Wraps a service with [`Authenticate`].
#[derive(Clone)]
pub struct AuthLayer {
    guard: Guard,
}

impl AuthLayer {
    /// Authenticates and limits with `guard`.
    pub fn new(guard: Guard) -> Self {
        AuthLayer { guard }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            guard: self.guard.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    guard: Guard,
}

impl<S, B, R> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if !request.uri().path().starts_with(API_PREFIX) {
            return Box::pin(self.inner.call(request));
        }
        // The clone that was not polled ready stays behind (tower's usual swap).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let guard = self.guard.clone();
        let peer = request
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr())
            .map(|addr| addr.ip());
        Box::pin(async move {
            // Where the key stands against its rate limit, told on the answer (also a refusal).
            let mut rate = None;
            let outcome = match caller(&guard.auth, &guard.limiter, request.headers(), &mut rate)
                .await
            {
                Err(Error::Unauthenticated) => match guard.trusted.client(peer, request.headers()) {
                    Some(client) => guard
                        .failures
                        .take(&client)
                        .inspect_err(|_| {
                            metrics::counter!("partners_rate_limited_total", "limit" => "address")
                                .increment(1);
                        })
                        .and(Err(Error::Unauthenticated)),
                    None => Err(Error::Unauthenticated),
                },
                other => other,
            };
            match outcome {
                Ok(caller) => {
                    tracing::Span::current().record("principal", caller.principal.kind());
                    request.extensions_mut().insert(caller);
                    let mut response = inner.call(request).await?;
                    if let Some(rate) = rate {
                        rate.write(response.headers_mut());
                    }
                    Ok(response)
                }
                Err(err) => {
                    let mut response = err.into_status().into_http();
                    response.extensions_mut().insert(super::log::CallerRefused);
                    if let Some(rate) = rate {
                        rate.write(response.headers_mut());
                    }
                    Ok(response)
                }
            }
        })
    }
}

/// The caller of a request: its key authenticated, within its rate limit, with the user it acts
/// for. Missing, malformed, unknown and revoked keys are all the same UNAUTHENTICATED. Once the
/// key is known, `rate` says where it stands against its limit.
async fn caller(
    auth: &Authenticator,
    limiter: &KeyLimiter,
    headers: &HeaderMap,
    rate: &mut Option<RateState>,
) -> Result<Caller> {
    let authorization = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let failed = |kind: &'static str| {
        metrics::counter!("partners_auth_failures_total", "kind" => kind).increment(1);
        Error::Unauthenticated
    };
    let token = bearer(authorization).ok_or_else(|| failed("missing"))?;
    let (prefix, secret) = parse_key(token).ok_or_else(|| failed("malformed"))?;
    let principal = match auth.authenticate(prefix, secret).await {
        Err(Error::Unauthenticated) => return Err(failed("unknown_or_revoked")),
        other => other?,
    };
    match limiter.check(prefix) {
        Ok(state) => *rate = state,
        Err(refused) => {
            metrics::counter!("partners_rate_limited_total", "limit" => "key").increment(1);
            *rate = limiter.exhausted();
            return Err(refused);
        }
    }
    let acting_user = match headers.get(USER_HEADER) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .ok_or_else(|| Error::invalid(USER_HEADER, "must be a UUID"))?,
        ),
    };
    Ok(Caller {
        principal,
        acting_user,
    })
}
