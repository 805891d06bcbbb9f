//! `partners.v1.PartnerAdminService`: directory administration, for service keys only.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use tonic::{Request, Response, Status};

use super::context::AppState;
use super::pb::partner_admin_service_server::PartnerAdminService;
use super::{convert, pb, validate};
use crate::error::{Error, Result};
use crate::model::partner::{self, Scope};
use crate::model::{business, relation};

/// Implementation of `PartnerAdminService`.
#[derive(Clone)]
pub struct AdminApi {
    state: AppState,
}

impl AdminApi {
    /// A service over the shared state.
    pub fn new(state: AppState) -> Self {
        AdminApi { state }
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// A unique violation on `external_id` is the caller's conflict, not an internal error.
fn external_id_conflict(err: DieselError) -> Error {
    match &err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("partners_external_id_key") =>
        {
            Error::AlreadyExists {
                reason: "EXTERNAL_ID_TAKEN",
                message: "another partner has this external_id".into(),
            }
        }
        _ => err.into(),
    }
}

async fn read_partner(state: &AppState, id: i64) -> Result<pb::Partner> {
    state
        .db
        .run(move |conn| Ok(partner::find(conn, id, Scope::default())?))
        .await?
        .map(|r| convert::partner(r, false, false))
        .ok_or(Error::NotFound("partner"))
}

async fn existing_business(state: &AppState, uuid: uuid::Uuid) -> Result<i64> {
    state
        .business_id(uuid)
        .await?
        .ok_or(Error::NotFound("business"))
}

#[tonic::async_trait]
impl PartnerAdminService for AdminApi {
    async fn create_partner(
        &self,
        request: Request<pb::CreatePartnerRequest>,
    ) -> RpcResult<pb::Partner> {
        self.state
            .rpc("CreatePartner", request, |caller, req| async move {
                caller.require_service()?;
                let new = validate::create_partner(&req)?;
                let id = caller
                    .state
                    .db
                    .run(move |conn| partner::insert(conn, &new).map_err(external_id_conflict))
                    .await?;
                read_partner(&caller.state, id).await
            })
            .await
    }

    async fn update_partner(
        &self,
        request: Request<pb::UpdatePartnerRequest>,
    ) -> RpcResult<pb::Partner> {
        self.state
            .rpc("UpdatePartner", request, |caller, req| async move {
                caller.require_service()?;
                let (id, changes) = validate::update_partner(&req)?;
                let updated = caller
                    .state
                    .db
                    .run(move |conn| {
                        partner::update(conn, id, &changes).map_err(external_id_conflict)
                    })
                    .await?;
                if !updated {
                    return Err(Error::NotFound("partner"));
                }
                read_partner(&caller.state, id).await
            })
            .await
    }

    async fn delete_partner(&self, request: Request<pb::DeletePartnerRequest>) -> RpcResult<()> {
        self.state
            .rpc("DeletePartner", request, |caller, req| async move {
                caller.require_service()?;
                let id = validate::partner_id(req.id)?;
                let deleted = caller
                    .state
                    .db
                    .run(move |conn| Ok(partner::soft_delete(conn, id)?))
                    .await?;
                if deleted {
                    Ok(())
                } else {
                    Err(Error::NotFound("partner"))
                }
            })
            .await
    }

    async fn upsert_business(
        &self,
        request: Request<pb::UpsertBusinessRequest>,
    ) -> RpcResult<pb::Business> {
        self.state
            .rpc("UpsertBusiness", request, |caller, req| async move {
                caller.require_service()?;
                let (uuid, name, country) = validate::upsert_business(&req)?;
                let row = caller
                    .state
                    .db
                    .run(move |conn| Ok(business::upsert(conn, uuid, &name, country.as_deref())?))
                    .await?;
                Ok(convert::business(row))
            })
            .await
    }

    async fn upsert_user(&self, request: Request<pb::UpsertUserRequest>) -> RpcResult<pb::User> {
        self.state
            .rpc("UpsertUser", request, |caller, req| async move {
                caller.require_service()?;
                let (uuid, business_uuid, email, name) = validate::upsert_user(&req)?;
                let business_id = existing_business(&caller.state, business_uuid).await?;
                let row = caller
                    .state
                    .db
                    .run(move |conn| {
                        Ok(business::upsert_user(
                            conn,
                            uuid,
                            business_id,
                            &email,
                            &name,
                        )?)
                    })
                    .await?;
                caller.state.forget_user(uuid);
                Ok(convert::user(row))
            })
            .await
    }

    async fn set_partner_integration(
        &self,
        request: Request<pb::SetPartnerIntegrationRequest>,
    ) -> RpcResult<pb::PartnerIntegration> {
        self.state
            .rpc("SetPartnerIntegration", request, |caller, req| async move {
                caller.require_service()?;
                let (partner_id, business_uuid, status) = validate::set_integration(&req)?;
                let business_id = existing_business(&caller.state, business_uuid).await?;
                let row = caller
                    .state
                    .db
                    .run(move |conn| {
                        if !partner::exists(conn, partner_id)? {
                            return Err(Error::NotFound("partner"));
                        }
                        Ok(relation::set_integration(
                            conn,
                            business_id,
                            partner_id,
                            status,
                        )?)
                    })
                    .await?;
                Ok(pb::PartnerIntegration {
                    id: row.id,
                    partner_id: row.partner_id,
                    business_uuid: business_uuid.to_string(),
                    status: convert::integration_status(&row.status) as i32,
                    created_at: Some(convert::timestamp(row.created_at)),
                    updated_at: Some(convert::timestamp(row.updated_at)),
                })
            })
            .await
    }

    async fn set_partner_preference(
        &self,
        request: Request<pb::SetPartnerPreferenceRequest>,
    ) -> RpcResult<pb::SetPartnerPreferenceResponse> {
        self.state
            .rpc("SetPartnerPreference", request, |caller, req| async move {
                caller.require_service()?;
                let (partner_id, business_uuid) = validate::set_preference(&req)?;
                let business_id = existing_business(&caller.state, business_uuid).await?;
                let preferred = req.preferred;
                caller
                    .state
                    .db
                    .run(move |conn| {
                        if !partner::exists(conn, partner_id)? {
                            return Err(Error::NotFound("partner"));
                        }
                        Ok(relation::set_preference(
                            conn,
                            business_id,
                            partner_id,
                            preferred,
                        )?)
                    })
                    .await?;
                Ok(pb::SetPartnerPreferenceResponse {
                    partner_id,
                    business_uuid: business_uuid.to_string(),
                    preferred,
                })
            })
            .await
    }
}
