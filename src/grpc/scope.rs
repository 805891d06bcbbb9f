//! Who calls and for whom: the [`Caller`] (put into each API call's request extensions by the auth
//! layer, `crate::grpc::layer::auth`) and the business and user a call acts in ([`CallScope`]).

use tonic::Request;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::model::partner::Scope;
use crate::serving::context::Context;

/// Metadata key naming the user a service key acts for.
pub const USER_HEADER: &str = "x-user-uuid";

/// The authenticated caller of one RPC.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's principal.
    pub principal: Principal,
    /// The user a service key acts for (`x-user-uuid`), if any.
    pub acting_user: Option<Uuid>,
}

/// The business and user a call acts in, with their uuids.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallScope {
    /// Database ids of the business and user in context.
    pub scope: Scope,
    /// The business's uuid.
    pub business_uuid: Option<Uuid>,
    /// The user's uuid.
    pub user_uuid: Option<Uuid>,
}

impl CallScope {
    /// Whether a business is in context (then partners carry `preferred`, `integration_status`).
    pub fn with_business(&self) -> bool {
        self.scope.business_id.is_some()
    }

    /// Whether a user is in context (then partners carry `connected`).
    pub fn with_user(&self) -> bool {
        self.scope.user_id.is_some()
    }
}

impl Caller {
    /// The caller the auth layer found for `request` (UNAUTHENTICATED if none was).
    pub fn of<T>(request: &Request<T>) -> Result<Caller> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or(Error::Unauthenticated)
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
        context: &Context,
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
                    let (user_id, business_id, business_uuid) =
                        context.user(uuid).await?.ok_or(Error::NotFound("user"))?;
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
                let id = context
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
