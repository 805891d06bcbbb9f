//! `partners.v1.PartnerAdminService`: directory administration, for service keys only. Each
//! handler checks the caller's kind, validates its request into a named type (`super::validate`)
//! and runs the model's writes (`crate::model`) through the database bridge.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::pb::partner_admin_service_server::PartnerAdminService;
use super::scope::Caller;
use super::validate::{
    BatchModify, BatchUpdate, BusinessUpsert, IntegrationSet, MAX_FILTER_VALUES, PartnerCreate,
    PartnerUpdate, PartnerUpsert, PreferenceSet, UserUpsert, partner_id,
};
use super::{convert, pb};
use crate::error::{Error, PreconditionViolation, Result};
use crate::model::partner::{
    self, CreateOnce, Modification, NewPartner, PartnerChanges, PartnerKey, Restored, Scope,
};
use crate::model::{business, relation};
use crate::serving::Services;

/// Implementation of `PartnerAdminService`.
#[derive(Clone)]
pub struct AdminApi {
    services: Services,
}

impl AdminApi {
    /// A service over the shared services.
    pub fn new(services: Services) -> Self {
        AdminApi { services }
    }

    /// The partner as written (no business context).
    async fn read_partner(&self, id: i64) -> Result<pb::Partner> {
        self.services
            .db
            .run(move |conn| Ok(partner::find(conn, id, Scope::default())?))
            .await?
            .map(|r| convert::partner(r, false, false))
            .ok_or(Error::NotFound("partner"))
    }

    /// The id of an existing business; NOT_FOUND otherwise.
    async fn existing_business(&self, uuid: Uuid) -> Result<i64> {
        self.services
            .context
            .business_id(uuid)
            .await?
            .ok_or(Error::NotFound("business"))
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// The service caller of `request`; PERMISSION_DENIED for user keys.
fn service_caller<T>(request: &Request<T>) -> Result<Caller> {
    let caller = Caller::of(request)?;
    caller.require_service()?;
    Ok(caller)
}

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

/// The digest stored with a CreatePartner request id, telling a retry (same digest) from a
/// reuse of the id with another partner: the lowercase hex SHA-256 of the validated partner as
/// JSON (every field, in a fixed order).
fn create_fingerprint(new: &NewPartner) -> String {
    let text = serde_json::json!([
        new.name,
        new.description,
        new.email,
        new.logo_url,
        new.website_url,
        new.video_url,
        new.categories,
        new.wholesaler_categories,
        new.country_codes,
        new.tags,
        new.status.as_str(),
        new.active,
        new.external_id,
        new.metadata,
    ])
    .to_string();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// NOT_FOUND naming the keys of `requested` that are not in `live` (ascending), each as
/// `name(position, id)` says, the first 20 of them.
fn missing(requested: &[i64], live: &[i64], name: impl Fn(usize, i64) -> String) -> Error {
    let keys = requested
        .iter()
        .enumerate()
        .filter(|(_, id)| live.binary_search(id).is_err())
        .take(20)
        .map(|(i, id)| name(i, *id))
        .collect();
    Error::NotFoundMany {
        resource: "partner",
        keys,
    }
}

/// The error of a restore whose external id another partner holds (or took meanwhile).
fn external_id_taken(external_id: &str, holder: Option<i64>) -> Error {
    let subject = holder.map_or_else(|| "partners".to_owned(), |id| format!("partners/{id}"));
    let by = holder.map_or_else(String::new, |id| format!(" by partner {id}"));
    Error::FailedPrecondition {
        reason: "EXTERNAL_ID_TAKEN",
        message: format!(
            "the partner's external_id {external_id:?} is taken{by}; free it or change it first"
        ),
        violation: Some(PreconditionViolation {
            kind: "EXTERNAL_ID_TAKEN",
            subject,
            description: format!("external_id {external_id:?} is in use{by}"),
        }),
    }
}

#[tonic::async_trait]
impl PartnerAdminService for AdminApi {
    async fn create_partner(
        &self,
        request: Request<pb::CreatePartnerRequest>,
    ) -> RpcResult<pb::Partner> {
        let caller = service_caller(&request)?;
        let PartnerCreate {
            partner: new,
            request_id,
        } = PartnerCreate::try_from(request.get_ref())?;
        let Some(request_id) = request_id else {
            let id = self
                .services
                .db
                .run(move |conn| partner::insert(conn, &new).map_err(external_id_conflict))
                .await?;
            return Ok(Response::new(self.read_partner(id).await?));
        };
        let principal = caller.principal.idempotency_scope();
        let fingerprint = create_fingerprint(&new);
        let outcome = self
            .services
            .db
            .transaction(move |conn| {
                partner::insert_once(conn, &new, &principal, &request_id, &fingerprint)
                    .map_err(external_id_conflict)
            })
            .await?;
        match outcome {
            CreateOnce::Created(id) | CreateOnce::Replayed(id) => {
                Ok(Response::new(self.read_partner(id).await?))
            }
            CreateOnce::KeyReused => Err(Error::AlreadyExists {
                reason: "IDEMPOTENCY_KEY_REUSED",
                message: "request_id was already used to create a different partner".into(),
            }
            .into()),
        }
    }

    async fn upsert_partner(
        &self,
        request: Request<pb::UpsertPartnerRequest>,
    ) -> RpcResult<pb::UpsertPartnerResponse> {
        service_caller(&request)?;
        let upsert = PartnerUpsert::try_from(request.get_ref())?;
        let (id, created) = self
            .services
            .db
            .run(move |conn| {
                if !upsert.partner.name.is_empty() {
                    return partner::upsert(conn, &upsert.partner, &upsert.changes)
                        .map_err(external_id_conflict);
                }
                // No name: update only; creating needs one.
                match partner::update_by_external_id(conn, &upsert.external_id, &upsert.changes)? {
                    Some(id) => Ok((id, false)),
                    None => Err(Error::invalid(
                        "partner.name",
                        "is required: no partner has this external_id, so the upsert creates one",
                    )),
                }
            })
            .await?;
        Ok(Response::new(pb::UpsertPartnerResponse {
            partner: Some(self.read_partner(id).await?),
            created,
        }))
    }

    async fn restore_partner(
        &self,
        request: Request<pb::RestorePartnerRequest>,
    ) -> RpcResult<pb::Partner> {
        service_caller(&request)?;
        let id = partner_id(request.get_ref().id)?;
        self.services
            .db
            .transaction(move |conn| match partner::restore(conn, id) {
                Ok(Restored::Restored) => Ok(()),
                Ok(Restored::Missing) => Err(Error::NotFound("partner")),
                Ok(Restored::NotDeleted) => Err(Error::AlreadyExists {
                    reason: "PARTNER_NOT_DELETED",
                    message: "the partner is not deleted".into(),
                }),
                Ok(Restored::ExternalIdTaken {
                    external_id,
                    holder,
                }) => Err(external_id_taken(&external_id, holder)),
                Err(err) => Err(err.into()),
            })
            .await?;
        Ok(Response::new(self.read_partner(id).await?))
    }

    async fn update_partner(
        &self,
        request: Request<pb::UpdatePartnerRequest>,
    ) -> RpcResult<pb::Partner> {
        service_caller(&request)?;
        let PartnerUpdate { id, changes } = PartnerUpdate::try_from(request.get_ref())?;
        let updated = self
            .services
            .db
            .run(move |conn| partner::update(conn, id, &changes).map_err(external_id_conflict))
            .await?;
        if !updated {
            return Err(Error::NotFound("partner").into());
        }
        Ok(Response::new(self.read_partner(id).await?))
    }

    async fn batch_update_partners(
        &self,
        request: Request<pb::BatchUpdatePartnersRequest>,
    ) -> RpcResult<pb::BatchUpdatePartnersResponse> {
        service_caller(&request)?;
        let batch = BatchUpdate::try_from(request.get_ref())?;
        let records = self
            .services
            .db
            .transaction(move |conn| {
                let ids: Vec<i64> = batch.updates.iter().map(|u| u.id).collect();
                let live = partner::lock_live(conn, &ids)?;
                if live.len() < ids.len() {
                    return Err(missing(&ids, &live, |i, id| {
                        format!("requests[{i}] (id {id})")
                    }));
                }
                let updates: Vec<(i64, &PartnerChanges)> =
                    batch.updates.iter().map(|u| (u.id, &u.changes)).collect();
                partner::update_many(conn, &updates).map_err(external_id_conflict)?;
                let keys: Vec<PartnerKey> = ids.into_iter().map(PartnerKey::Id).collect();
                let mut found = partner::find_batch(conn, &keys, Scope::default())?;
                found.sort_by_key(|f| f.slot);
                Ok(found)
            })
            .await?;
        Ok(Response::new(pb::BatchUpdatePartnersResponse {
            partners: records
                .into_iter()
                .map(|f| convert::partner(f.record, false, false))
                .collect(),
        }))
    }

    async fn batch_modify_partners(
        &self,
        request: Request<pb::BatchModifyPartnersRequest>,
    ) -> RpcResult<pb::BatchModifyPartnersResponse> {
        service_caller(&request)?;
        let batch = BatchModify::try_from(request.get_ref())?;
        let changed = self
            .services
            .db
            .transaction(move |conn| {
                let live = partner::lock_live(conn, &batch.ids)?;
                if live.len() < batch.ids.len() {
                    return Err(missing(&batch.ids, &live, |_, id| format!("id {id}")));
                }
                let modification = Modification {
                    add_tags: batch.add_tags,
                    remove_tags: batch.remove_tags,
                    status: batch.status,
                    active: batch.active,
                };
                let changed = partner::modify_many(conn, &batch.ids, &modification)?;
                let over: Vec<String> = changed
                    .iter()
                    .filter(|m| m.tags as usize > MAX_FILTER_VALUES)
                    .map(|m| m.id.to_string())
                    .collect();
                if !over.is_empty() {
                    return Err(Error::invalid(
                        "add_tags",
                        format!(
                            "would give partners {} more than {MAX_FILTER_VALUES} tags",
                            over.join(", ")
                        ),
                    ));
                }
                Ok(changed)
            })
            .await?;
        Ok(Response::new(pb::BatchModifyPartnersResponse {
            changed_ids: changed.into_iter().map(|m| m.id).collect(),
        }))
    }

    async fn delete_partner(&self, request: Request<pb::DeletePartnerRequest>) -> RpcResult<()> {
        service_caller(&request)?;
        let id = partner_id(request.get_ref().id)?;
        let deleted = self
            .services
            .db
            .run(move |conn| Ok(partner::soft_delete(conn, id)?))
            .await?;
        if !deleted {
            return Err(Error::NotFound("partner").into());
        }
        Ok(Response::new(()))
    }

    async fn upsert_business(
        &self,
        request: Request<pb::UpsertBusinessRequest>,
    ) -> RpcResult<pb::Business> {
        service_caller(&request)?;
        let upsert = BusinessUpsert::try_from(request.get_ref())?;
        let row = self
            .services
            .db
            .run(move |conn| {
                Ok(business::upsert(
                    conn,
                    upsert.uuid,
                    &upsert.name,
                    upsert.country_code.as_deref(),
                )?)
            })
            .await?;
        Ok(Response::new(convert::business(row)))
    }

    async fn upsert_user(&self, request: Request<pb::UpsertUserRequest>) -> RpcResult<pb::User> {
        service_caller(&request)?;
        let upsert = UserUpsert::try_from(request.get_ref())?;
        let business_id = self.existing_business(upsert.business_uuid).await?;
        let uuid = upsert.uuid;
        let row = self
            .services
            .db
            .run(move |conn| {
                Ok(business::upsert_user(
                    conn,
                    upsert.uuid,
                    business_id,
                    &upsert.email,
                    &upsert.name,
                )?)
            })
            .await?;
        self.services.context.forget_user(uuid);
        Ok(Response::new(convert::user(row)))
    }

    async fn set_partner_integration(
        &self,
        request: Request<pb::SetPartnerIntegrationRequest>,
    ) -> RpcResult<pb::PartnerIntegration> {
        service_caller(&request)?;
        let set = IntegrationSet::try_from(request.get_ref())?;
        let business_id = self.existing_business(set.business_uuid).await?;
        let row = self
            .services
            .db
            .run(move |conn| {
                if !partner::exists(conn, set.partner_id)? {
                    return Err(Error::NotFound("partner"));
                }
                Ok(relation::set_integration(
                    conn,
                    business_id,
                    set.partner_id,
                    set.status,
                )?)
            })
            .await?;
        Ok(Response::new(pb::PartnerIntegration {
            id: row.id,
            partner_id: row.partner_id,
            business_uuid: set.business_uuid.to_string(),
            status: pb::IntegrationStatus::from(row.status) as i32,
            created_at: Some(convert::timestamp(row.created_at)),
            updated_at: Some(convert::timestamp(row.updated_at)),
        }))
    }

    async fn set_partner_preference(
        &self,
        request: Request<pb::SetPartnerPreferenceRequest>,
    ) -> RpcResult<pb::SetPartnerPreferenceResponse> {
        service_caller(&request)?;
        let set = PreferenceSet::try_from(request.get_ref())?;
        let business_id = self.existing_business(set.business_uuid).await?;
        self.services
            .db
            .run(move |conn| {
                if !partner::exists(conn, set.partner_id)? {
                    return Err(Error::NotFound("partner"));
                }
                Ok(relation::set_preference(
                    conn,
                    business_id,
                    set.partner_id,
                    set.preferred,
                )?)
            })
            .await?;
        Ok(Response::new(pb::SetPartnerPreferenceResponse {
            partner_id: set.partner_id,
            business_uuid: set.business_uuid.to_string(),
            preferred: set.preferred,
        }))
    }
}
