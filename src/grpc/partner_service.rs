//! `partners.v1.PartnerService`: the seven seed operations, BatchGetPartners,
//! BatchCreatePartnerClickEvents (its logic in `super::click_batch`) and the click analytics
//! reads (`super::click_reads`). Each handler
//! takes the [`Caller`] the auth layer found, validates its request into a named type
//! (`super::validate`), resolves the business and user in context, and calls the service logic
//! (`crate::serving`) or, for the connections, the model directly.

use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::pb::partner_service_server::PartnerService;
use super::scope::{CallScope, Caller};
use super::validate::{
    BatchRead, ClickBatch, ClickRequest, EventsQuery, ListRequest, PartnerRead, PartnerUsersRead,
    StatsQuery, TopQuery, partner_id,
};
use super::{convert, pb};
use crate::error::{Error, Result};
use crate::model::click_event::{ClickOutcome, NewClickEvent};
use crate::model::partner::{self, Includes, Loaded, PartnerKey};
use crate::model::relation;
use crate::serving::Services;

/// Implementation of `PartnerService`.
#[derive(Clone)]
pub struct PartnerApi {
    services: Services,
}

impl PartnerApi {
    /// A service over the shared services.
    pub fn new(services: Services) -> Self {
        PartnerApi { services }
    }

    /// Runs a validated list in the caller's scope (`business_required`: ListPartners needs one).
    async fn list(
        &self,
        caller: &Caller,
        request: ListRequest,
        business_required: bool,
    ) -> Result<(Vec<pb::Partner>, pb::PageMeta)> {
        let scope = caller
            .scope(
                &self.services.context,
                request.business_uuid,
                business_required,
            )
            .await?;
        let mut query = request.query;
        query.scope = scope.scope;
        let tokens = &self.services.tokens;
        if let Some(token) = &request.page_token {
            let (page, after) = tokens.open_list(&query, token).await?;
            query.page = page;
            query.after = Some(after);
        }
        let binding = query.binding();
        let (page, per_page) = (query.page, query.per_page);
        let answer = self.services.lists.list(query, request.includes).await?;
        let next_page_token = match &answer.next {
            Some(after) => tokens.list_token(&binding, page + 1, after).await?,
            None => String::new(),
        };
        let to_i32 = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
        Ok((
            partners(answer.loaded, scope),
            pb::PageMeta {
                page: to_i32(page),
                per_page: to_i32(per_page),
                total: answer.total,
                total_pages: answer.total.map(|t| to_i32((t + per_page - 1) / per_page)),
                facets: answer
                    .facets
                    .into_iter()
                    .map(|(field, values)| pb::Facet {
                        field: field.as_str().to_owned(),
                        values: values
                            .into_iter()
                            .map(|(value, count)| pb::FacetValue { value, count })
                            .collect(),
                    })
                    .collect(),
                next_page_token,
            },
        ))
    }

    /// One partner as seen in `scope`, with includes; NOT_FOUND when missing or deleted.
    async fn partner(&self, id: i64, scope: CallScope, includes: Includes) -> Result<pb::Partner> {
        let loaded = self.services.reads.get(id, scope.scope, includes).await?;
        partners(loaded, scope)
            .pop()
            .ok_or(Error::NotFound("partner"))
    }

    /// Links (`connect`) or unlinks the caller's user and a partner, then reads the partner.
    async fn set_connection(
        &self,
        caller: &Caller,
        partner_id: i64,
        connect: bool,
    ) -> Result<pb::Partner> {
        let scope = caller.scope(&self.services.context, None, false).await?;
        let user_id = scope.scope.user_id.ok_or(Error::FailedPrecondition {
            reason: "USER_REQUIRED",
            message:
                "connecting needs a user: use a user key, or send x-user-uuid with a service key"
                    .into(),
            violation: None,
        })?;
        self.services
            .db
            .transaction(move |conn| {
                if !partner::exists(conn, partner_id)? {
                    return Err(Error::NotFound("partner"));
                }
                if connect {
                    relation::connect(conn, partner_id, user_id)?;
                } else {
                    relation::disconnect(conn, partner_id, user_id)?;
                }
                Ok(())
            })
            .await?;
        self.partner(partner_id, scope, Includes::default()).await
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// A read's records as messages, with the context fields of `scope`.
fn partners(loaded: Loaded, scope: CallScope) -> Vec<pb::Partner> {
    convert::partners(loaded, scope.with_business(), scope.with_user())
}

/// The digest stored with an event that has an idempotency key, telling a replay (same digest)
/// from a conflicting reuse of the key. Its text is `<partner id>|<event type>|<user>|<business>`,
/// an id written `Some(<decimal id>)` and an absent one `None` (the spelling of the first stored
/// events, kept so that their replays still match); the digest is the lowercase hex of that
/// text's SHA-256.
pub(super) fn fingerprint(event: &NewClickEvent) -> String {
    let id = |id: Option<i64>| id.map_or_else(|| "None".to_owned(), |id| format!("Some({id})"));
    let text = format!(
        "{}|{}|{}|{}",
        event.partner_id,
        event.event_type,
        id(event.user_id),
        id(event.business_id)
    );
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[tonic::async_trait]
impl PartnerService for PartnerApi {
    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> RpcResult<pb::ListPartnersResponse> {
        let caller = Caller::of(&request)?;
        let valid = ListRequest::try_from(request.get_ref())?;
        if valid.query.show_deleted {
            caller.require_service()?;
        }
        let (partners, meta) = self.list(&caller, valid, true).await?;
        Ok(Response::new(pb::ListPartnersResponse {
            partners,
            meta: Some(meta),
        }))
    }

    async fn list_available_partners(
        &self,
        request: Request<pb::ListAvailablePartnersRequest>,
    ) -> RpcResult<pb::ListAvailablePartnersResponse> {
        let caller = Caller::of(&request)?;
        let valid = ListRequest::try_from(request.get_ref())?;
        let (partners, meta) = self.list(&caller, valid, false).await?;
        Ok(Response::new(pb::ListAvailablePartnersResponse {
            partners,
            meta: Some(meta),
        }))
    }

    async fn list_wholesalers(
        &self,
        request: Request<pb::ListWholesalersRequest>,
    ) -> RpcResult<pb::ListWholesalersResponse> {
        let caller = Caller::of(&request)?;
        let valid = ListRequest::try_from(request.get_ref())?;
        let (partners, meta) = self.list(&caller, valid, false).await?;
        Ok(Response::new(pb::ListWholesalersResponse {
            partners,
            meta: Some(meta),
        }))
    }

    async fn get_partner(&self, request: Request<pb::GetPartnerRequest>) -> RpcResult<pb::Partner> {
        let caller = Caller::of(&request)?;
        let read = PartnerRead::try_from(request.get_ref())?;
        let scope = caller
            .scope(&self.services.context, read.business_uuid, false)
            .await?;
        Ok(Response::new(
            self.partner(read.id, scope, read.includes).await?,
        ))
    }

    async fn batch_get_partners(
        &self,
        request: Request<pb::BatchGetPartnersRequest>,
    ) -> RpcResult<pb::BatchGetPartnersResponse> {
        let caller = Caller::of(&request)?;
        let read = BatchRead::try_from(request.get_ref())?;
        let scope = caller
            .scope(&self.services.context, read.business_uuid, false)
            .await?;
        let (loaded, hit) = self
            .services
            .reads
            .get_batch(read.keys.clone(), scope.scope, read.includes)
            .await?;
        let mut response = pb::BatchGetPartnersResponse {
            partners: partners(loaded, scope),
            ..Default::default()
        };
        for (key, found) in read.keys.into_iter().zip(hit) {
            match key {
                _ if found => {}
                PartnerKey::Id(id) => response.missing_ids.push(id),
                PartnerKey::External(e) => response.missing_external_ids.push(e),
            }
        }
        Ok(Response::new(response))
    }

    async fn list_partner_users(
        &self,
        request: Request<pb::ListPartnerUsersRequest>,
    ) -> RpcResult<pb::ListPartnerUsersResponse> {
        let caller = Caller::of(&request)?;
        let read = PartnerUsersRead::try_from(request.get_ref())?;
        let scope = caller
            .scope(&self.services.context, read.business_uuid, false)
            .await?;
        let business_id = scope.scope.business_id;
        let (users, total) = self
            .services
            .db
            .run(move |conn| {
                if !partner::exists(conn, read.id)? {
                    return Err(Error::NotFound("partner"));
                }
                let page = partner::partner_users_page(
                    conn,
                    read.id,
                    business_id,
                    read.page,
                    read.per_page,
                )?;
                Ok(page)
            })
            .await?;
        let total_pages = (total + read.per_page - 1) / read.per_page;
        Ok(Response::new(pb::ListPartnerUsersResponse {
            users: users.into_iter().map(convert::partner_user).collect(),
            meta: Some(pb::PageMeta {
                page: read.page as i32,
                per_page: read.per_page as i32,
                total: Some(total),
                total_pages: Some(total_pages.min(i64::from(i32::MAX)) as i32),
                facets: Vec::new(),
                next_page_token: String::new(),
            }),
        }))
    }

    type ExportPartnersStream = crate::grpc::export::ExportStream;

    async fn export_partners(
        &self,
        request: Request<pb::ExportPartnersRequest>,
    ) -> RpcResult<Self::ExportPartnersStream> {
        crate::grpc::export::export(&self.services, request).await
    }

    async fn create_partner_click_event(
        &self,
        request: Request<pb::CreatePartnerClickEventRequest>,
    ) -> RpcResult<pb::ClickEvent> {
        let caller = Caller::of(&request)?;
        let click = ClickRequest::try_from(request.get_ref())?;
        let scope = caller
            .scope(&self.services.context, click.business_uuid, false)
            .await?;
        let mut event = NewClickEvent {
            partner_id: click.partner_id,
            user_id: scope.scope.user_id,
            business_id: scope.scope.business_id,
            event_type: click.event_type,
            principal: caller.principal.idempotency_scope(),
            idempotency_key: click.request_id,
            fingerprint: String::new(),
        };
        event.fingerprint = fingerprint(&event);
        let (id, created_at) = match self.services.clicks.record(event).await? {
            ClickOutcome::Created { id, created_at }
            | ClickOutcome::Replayed { id, created_at } => (id, created_at),
            ClickOutcome::KeyConflict => {
                return Err(Error::AlreadyExists {
                    reason: "IDEMPOTENCY_KEY_REUSED",
                    message: "request_id was already used for a different click event".into(),
                }
                .into());
            }
            ClickOutcome::PartnerNotFound => return Err(Error::NotFound("partner").into()),
        };
        Ok(Response::new(convert::click_event(
            id,
            click.partner_id,
            click.event_type,
            &scope,
            created_at,
        )))
    }

    async fn get_partner_click_stats(
        &self,
        request: Request<pb::GetPartnerClickStatsRequest>,
    ) -> RpcResult<pb::GetPartnerClickStatsResponse> {
        let caller = Caller::of(&request)?;
        let query = StatsQuery::try_from(request.get_ref())?;
        Ok(Response::new(
            super::click_reads::stats(&self.services, &caller, query).await?,
        ))
    }

    async fn list_top_partners_by_clicks(
        &self,
        request: Request<pb::ListTopPartnersByClicksRequest>,
    ) -> RpcResult<pb::ListTopPartnersByClicksResponse> {
        let caller = Caller::of(&request)?;
        let query = TopQuery::try_from(request.get_ref())?;
        Ok(Response::new(
            super::click_reads::top(&self.services, &caller, query).await?,
        ))
    }

    async fn list_partner_click_events(
        &self,
        request: Request<pb::ListPartnerClickEventsRequest>,
    ) -> RpcResult<pb::ListPartnerClickEventsResponse> {
        let caller = Caller::of(&request)?;
        let query = EventsQuery::try_from(request.get_ref())?;
        Ok(Response::new(
            super::click_reads::events(&self.services, &caller, query).await?,
        ))
    }

    async fn batch_create_partner_click_events(
        &self,
        request: Request<pb::BatchCreatePartnerClickEventsRequest>,
    ) -> RpcResult<pb::BatchCreatePartnerClickEventsResponse> {
        let caller = Caller::of(&request)?;
        let batch = ClickBatch::try_from(request.get_ref())?;
        Ok(Response::new(
            super::click_batch::record(&self.services, &caller, batch).await?,
        ))
    }

    async fn connect_user(
        &self,
        request: Request<pb::ConnectUserRequest>,
    ) -> RpcResult<pb::Partner> {
        let caller = Caller::of(&request)?;
        let id = partner_id(request.get_ref().id)?;
        Ok(Response::new(self.set_connection(&caller, id, true).await?))
    }

    async fn disconnect_user(
        &self,
        request: Request<pb::DisconnectUserRequest>,
    ) -> RpcResult<pb::Partner> {
        let caller = Caller::of(&request)?;
        let id = partner_id(request.get_ref().id)?;
        Ok(Response::new(
            self.set_connection(&caller, id, false).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventType;

    /// Stored events carry fingerprints written by earlier builds: the digest stays lowercase hex
    /// of SHA-256 over the same text.
    #[test]
    fn fingerprints_are_lowercase_hex_sha256_of_the_event_text() {
        let event = NewClickEvent {
            partner_id: 42,
            user_id: Some(7),
            business_id: None,
            event_type: EventType::Video,
            principal: "user:x".into(),
            idempotency_key: Some("k".into()),
            fingerprint: String::new(),
        };
        let expected: String = Sha256::digest(b"42|video|Some(7)|None")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(fingerprint(&event), expected);
        assert_eq!(expected.len(), 64);
    }
}
