//! Per-call plumbing shared by both services: the shared state, authentication of the caller, the
//! business/user scope of a call, and the wrapper that gives every RPC one span with its method,
//! status code and duration.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};
use tracing::{Instrument, field};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal};
use crate::cache::TtlCache;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::ingest::ClickIngest;
use crate::model::{business, partner::Scope};
use crate::rate_limit::RateLimiter;
use crate::reads::PartnerReads;
use crate::search::SearchIndex;

/// Metadata key naming the user a service key acts for.
pub const USER_HEADER: &str = "x-user-uuid";

/// `(user id, business id, business uuid)` of a user.
type UserIds = (i64, i64, Uuid);

/// State shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub auth: Authenticator,
    pub clicks: ClickIngest,
    pub reads: PartnerReads,
    pub search: SearchIndex,
    limiter: Arc<RateLimiter>,
    businesses: Arc<TtlCache<Uuid, Option<i64>>>,
    users: Arc<TtlCache<Uuid, Option<UserIds>>>,
}

impl AppState {
    /// Builds the state; `ttl` bounds how stale key and user lookups may be.
    pub fn new(
        db: Db,
        ttl: Duration,
        clicks: ClickIngest,
        reads: PartnerReads,
        search: SearchIndex,
        limiter: RateLimiter,
    ) -> Self {
        AppState {
            limiter: Arc::new(limiter),
            auth: Authenticator::new(db.clone(), ttl),
            businesses: Arc::new(TtlCache::new(ttl.max(Duration::from_secs(60)), 100_000)),
            users: Arc::new(TtlCache::new(ttl, 100_000)),
            db,
            clicks,
            reads,
            search,
        }
    }

    /// Runs one RPC: authenticates, calls `handler`, logs one line with method, code and
    /// duration, and maps the error to a `Status`.
    pub async fn rpc<Req, Resp, F, Fut>(
        &self,
        method: &'static str,
        request: Request<Req>,
        handler: F,
    ) -> Result<Response<Resp>, Status>
    where
        F: FnOnce(Caller, Req) -> Fut,
        Fut: Future<Output = Result<Resp>>,
    {
        let span = tracing::info_span!(
            "rpc",
            rpc.method = method,
            rpc.code = field::Empty,
            duration_ms = field::Empty,
            principal = field::Empty,
            request_id = field::Empty,
        );
        let started = Instant::now();
        if let Some(id) = request
            .metadata()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
        {
            span.record("request_id", id);
        }
        async move {
            let outcome = async {
                let caller = self.caller(request.metadata()).await?;
                tracing::Span::current().record("principal", caller.principal_kind());
                handler(caller, request.into_inner()).await
            }
            .await;
            let code = outcome.as_ref().map_or_else(Error::code, |_| Code::Ok);
            let span = tracing::Span::current();
            span.record("rpc.code", field::debug(code));
            span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
            match code {
                Code::Internal | Code::Unknown | Code::DataLoss => {
                    tracing::error!("{method} failed")
                }
                Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => {
                    tracing::warn!("{method} not served")
                }
                _ => tracing::info!("{method} done"),
            }
            outcome.map(Response::new).map_err(Error::into_status)
        }
        .instrument(span)
        .await
    }

    async fn caller(&self, metadata: &MetadataMap) -> Result<Caller> {
        let authorization = metadata.get("authorization").and_then(|v| v.to_str().ok());
        let principal = self.auth.authenticate(authorization).await?;
        if let Some((prefix, _)) =
            crate::auth::bearer(authorization).and_then(crate::auth::parse_key)
        {
            self.limiter.check(prefix)?;
        }
        let acting_user = match metadata.get(USER_HEADER) {
            None => None,
            Some(value) => {
                let parsed = value
                    .to_str()
                    .ok()
                    .and_then(|s| Uuid::parse_str(s.trim()).ok());
                match parsed {
                    Some(uuid) => Some(uuid),
                    None => return Err(Error::invalid(USER_HEADER, "must be a UUID")),
                }
            }
        };
        Ok(Caller {
            state: self.clone(),
            principal,
            acting_user,
        })
    }

    /// The id of a business by uuid (cached).
    pub async fn business_id(&self, uuid: Uuid) -> Result<Option<i64>> {
        if let Some(hit) = self.businesses.get(&uuid) {
            return Ok(hit);
        }
        let id = self
            .db
            .run(move |conn| Ok(business::id_by_uuid(conn, uuid)?))
            .await?;
        if id.is_some() {
            self.businesses.insert(uuid, id);
        }
        Ok(id)
    }

    /// `(user id, business id, business uuid)` of a user by uuid (cached for the key TTL).
    async fn user(&self, uuid: Uuid) -> Result<Option<UserIds>> {
        if let Some(hit) = self.users.get(&uuid) {
            return Ok(hit);
        }
        let found = self
            .db
            .run(move |conn| Ok(business::user_by_uuid(conn, uuid)?))
            .await?
            .map(|u| (u.id, u.business_id, u.business_uuid));
        self.users.insert(uuid, found);
        Ok(found)
    }

    /// Forgets a cached user (after it changed in this process).
    pub fn forget_user(&self, uuid: Uuid) {
        self.users.remove(&uuid);
    }
}

/// The authenticated caller of one RPC.
pub struct Caller {
    pub state: AppState,
    pub principal: Principal,
    acting_user: Option<Uuid>,
}

/// The business and user a call acts in, with their uuids.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallScope {
    pub scope: Scope,
    pub business_uuid: Option<Uuid>,
    pub user_uuid: Option<Uuid>,
}

impl Caller {
    fn principal_kind(&self) -> &'static str {
        match self.principal {
            Principal::Service { .. } => "service",
            Principal::User { .. } => "user",
        }
    }

    /// PERMISSION_DENIED unless a service key is calling.
    pub fn require_service(&self) -> Result<()> {
        match self.principal {
            Principal::Service { .. } => Ok(()),
            Principal::User { .. } => Err(Error::PermissionDenied(
                "administration needs a service key",
            )),
        }
    }

    /// Resolves the call's scope from the requested business (if any). A user key, or a service
    /// key acting for a user, may only name the user's own business: anything else is NOT_FOUND.
    /// With `business_required`, a service key not acting for a user must name a business.
    pub async fn scope(
        &self,
        requested: Option<Uuid>,
        business_required: bool,
    ) -> Result<CallScope> {
        let user = match &self.principal {
            Principal::User {
                user_id,
                user_uuid,
                business_id,
                business_uuid,
            } => Some((*user_id, *user_uuid, *business_id, *business_uuid)),
            Principal::Service { .. } => match self.acting_user {
                None => None,
                Some(uuid) => {
                    let (user_id, business_id, business_uuid) = self
                        .state
                        .user(uuid)
                        .await?
                        .ok_or(Error::NotFound("user"))?;
                    Some((user_id, uuid, business_id, business_uuid))
                }
            },
        };
        if let Some((user_id, user_uuid, business_id, business_uuid)) = user {
            if requested.is_some_and(|r| r != business_uuid) {
                return Err(Error::NotFound("business"));
            }
            return Ok(CallScope {
                scope: Scope {
                    business_id: Some(business_id),
                    user_id: Some(user_id),
                },
                business_uuid: Some(business_uuid),
                user_uuid: Some(user_uuid),
            });
        }
        match requested {
            None if business_required => Err(Error::invalid("business_uuid", "is required")),
            None => Ok(CallScope::default()),
            Some(uuid) => {
                let id = self
                    .state
                    .business_id(uuid)
                    .await?
                    .ok_or(Error::NotFound("business"))?;
                Ok(CallScope {
                    scope: Scope {
                        business_id: Some(id),
                        user_id: None,
                    },
                    business_uuid: Some(uuid),
                    user_uuid: None,
                })
            }
        }
    }
}
