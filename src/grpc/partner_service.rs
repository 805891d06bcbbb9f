//! `partners.v1.PartnerService`: the seven seed operations.

use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use super::context::{AppState, CallScope};
use super::pb::partner_service_server::PartnerService;
use super::validate::{self, Includes, ListRequest};
use super::{convert, pb};
use crate::error::{Error, Result};
use crate::model::click_event::{ClickOutcome, NewClickEvent};
use crate::model::partner::{self, PartnerRecord};
use crate::model::relation;

/// Implementation of `PartnerService`.
#[derive(Clone)]
pub struct PartnerApi {
    state: AppState,
}

impl PartnerApi {
    /// A service over the shared state.
    pub fn new(state: AppState) -> Self {
        PartnerApi { state }
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// Records plus their requested relationships, loaded on one connection.
struct Loaded {
    records: Vec<PartnerRecord>,
    users: Vec<partner::PartnerUserRecord>,
    integrations: Vec<partner::IntegrationRecord>,
}

/// Loads the requested relationships of `records` (one query per relationship, for the whole
/// page) on the connection that loaded them, so a read is one hand-off to the database.
fn with_includes(
    conn: &mut diesel::PgConnection,
    records: Vec<PartnerRecord>,
    business_id: Option<i64>,
    includes: Includes,
) -> Result<Loaded> {
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let wanted = !ids.is_empty();
    let users = if wanted && includes.users {
        partner::load_users(conn, &ids, business_id)?
    } else {
        Vec::new()
    };
    let integrations = if wanted && includes.partner_integrations {
        partner::load_integrations(conn, &ids, business_id)?
    } else {
        Vec::new()
    };
    Ok(Loaded {
        records,
        users,
        integrations,
    })
}

/// Converts loaded records to messages with their relationships attached.
fn hydrate(loaded: Loaded, scope: CallScope) -> Vec<pb::Partner> {
    let with_business = scope.scope.business_id.is_some();
    let with_user = scope.scope.user_id.is_some();
    let mut partners: Vec<pb::Partner> = loaded
        .records
        .into_iter()
        .map(|r| convert::partner(r, with_business, with_user))
        .collect();
    let position = |id: i64, partners: &[pb::Partner]| partners.iter().position(|p| p.id == id);
    for user in loaded.users {
        if let Some(i) = position(user.partner_id, &partners) {
            partners[i].users.push(convert::partner_user(user));
        }
    }
    for integration in loaded.integrations {
        if let Some(i) = position(integration.partner_id, &partners) {
            partners[i]
                .partner_integrations
                .push(convert::integration(integration));
        }
    }
    partners
}

async fn run_list(
    state: &AppState,
    request: ListRequest,
    scope: CallScope,
) -> Result<(Vec<pb::Partner>, pb::PageMeta)> {
    let mut query = request.query;
    query.scope = scope.scope;
    let (page, per_page) = (query.page, query.per_page);
    let includes = request.includes;
    let search = state.search.clone();
    let (loaded, total) = state
        .db
        .run_list(move |conn| {
            let (records, total) = search.list(conn, &query)?;
            let loaded = with_includes(conn, records, query.scope.business_id, includes)?;
            Ok((loaded, total))
        })
        .await?;
    let partners = hydrate(loaded, scope);
    let total_pages = (total + per_page - 1) / per_page;
    Ok((
        partners,
        pb::PageMeta {
            page: page as i32,
            per_page: per_page as i32,
            total,
            total_pages: total_pages.min(i64::from(i32::MAX)) as i32,
        },
    ))
}

/// Loads one partner as seen in `scope`, with includes; NOT_FOUND when missing or deleted.
async fn load_partner(
    state: &AppState,
    id: i64,
    scope: CallScope,
    includes: Includes,
) -> Result<pb::Partner> {
    let business_id = scope.scope.business_id;
    if !includes.users && !includes.partner_integrations {
        // The common read: coalesced with the other plain reads of the moment.
        let record = state
            .reads
            .find(id, scope.scope)
            .await?
            .ok_or(Error::NotFound("partner"))?;
        let loaded = Loaded {
            records: vec![record],
            users: Vec::new(),
            integrations: Vec::new(),
        };
        return hydrate(loaded, scope)
            .pop()
            .ok_or(Error::NotFound("partner"));
    }
    let loaded = state
        .db
        .run(move |conn| {
            let record = partner::find(conn, id, scope.scope)?.ok_or(Error::NotFound("partner"))?;
            with_includes(conn, vec![record], business_id, includes)
        })
        .await?;
    hydrate(loaded, scope)
        .pop()
        .ok_or(Error::NotFound("partner"))
}

fn fingerprint(event: &NewClickEvent) -> String {
    let text = format!(
        "{}|{}|{:?}|{:?}",
        event.partner_id, event.event_type, event.user_id, event.business_id
    );
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(text.as_bytes()) {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

#[tonic::async_trait]
impl PartnerService for PartnerApi {
    async fn list_partners(
        &self,
        request: Request<pb::ListPartnersRequest>,
    ) -> RpcResult<pb::ListPartnersResponse> {
        self.state
            .rpc("ListPartners", request, |caller, req| async move {
                let valid = validate::list_partners(&req)?;
                let scope = caller.scope(valid.business_uuid, true).await?;
                let (partners, meta) = run_list(&caller.state, valid, scope).await?;
                Ok(pb::ListPartnersResponse {
                    partners,
                    meta: Some(meta),
                })
            })
            .await
    }

    async fn list_available_partners(
        &self,
        request: Request<pb::ListAvailablePartnersRequest>,
    ) -> RpcResult<pb::ListAvailablePartnersResponse> {
        self.state
            .rpc("ListAvailablePartners", request, |caller, req| async move {
                let valid = validate::list_available(&req)?;
                let scope = caller.scope(valid.business_uuid, false).await?;
                let (partners, meta) = run_list(&caller.state, valid, scope).await?;
                Ok(pb::ListAvailablePartnersResponse {
                    partners,
                    meta: Some(meta),
                })
            })
            .await
    }

    async fn list_wholesalers(
        &self,
        request: Request<pb::ListWholesalersRequest>,
    ) -> RpcResult<pb::ListWholesalersResponse> {
        self.state
            .rpc("ListWholesalers", request, |caller, req| async move {
                let valid = validate::list_wholesalers(&req)?;
                let scope = caller.scope(valid.business_uuid, false).await?;
                let (partners, meta) = run_list(&caller.state, valid, scope).await?;
                Ok(pb::ListWholesalersResponse {
                    partners,
                    meta: Some(meta),
                })
            })
            .await
    }

    async fn get_partner(&self, request: Request<pb::GetPartnerRequest>) -> RpcResult<pb::Partner> {
        self.state
            .rpc("GetPartner", request, |caller, req| async move {
                let (id, business, includes) = validate::get_partner(&req)?;
                let scope = caller.scope(business, false).await?;
                load_partner(&caller.state, id, scope, includes).await
            })
            .await
    }

    async fn create_partner_click_event(
        &self,
        request: Request<pb::CreatePartnerClickEventRequest>,
    ) -> RpcResult<pb::ClickEvent> {
        self.state
            .rpc(
                "CreatePartnerClickEvent",
                request,
                |caller, req| async move {
                    let valid = validate::click_event(&req)?;
                    let scope = caller.scope(valid.business_uuid, false).await?;
                    let mut event = NewClickEvent {
                        partner_id: valid.partner_id,
                        user_id: scope.scope.user_id,
                        business_id: scope.scope.business_id,
                        event_type: valid.event_type.to_owned(),
                        principal: caller.principal.idempotency_scope(),
                        idempotency_key: valid.request_id,
                        fingerprint: String::new(),
                    };
                    event.fingerprint = fingerprint(&event);
                    let (id, created_at) = match caller.state.clicks.record(event).await? {
                        ClickOutcome::Created { id, created_at }
                        | ClickOutcome::Replayed { id, created_at } => (id, created_at),
                        ClickOutcome::KeyConflict => {
                            return Err(Error::AlreadyExists {
                                reason: "IDEMPOTENCY_KEY_REUSED",
                                message: "request_id was already used for a different click event"
                                    .into(),
                            });
                        }
                        ClickOutcome::PartnerNotFound => return Err(Error::NotFound("partner")),
                    };
                    Ok(pb::ClickEvent {
                        id,
                        partner_id: valid.partner_id,
                        event_type: convert::event_type(valid.event_type) as i32,
                        user_uuid: scope.user_uuid.map(|u| u.to_string()).unwrap_or_default(),
                        business_uuid: scope
                            .business_uuid
                            .map(|u| u.to_string())
                            .unwrap_or_default(),
                        created_at: Some(convert::timestamp(created_at)),
                    })
                },
            )
            .await
    }

    async fn connect_user(
        &self,
        request: Request<pb::ConnectUserRequest>,
    ) -> RpcResult<pb::Partner> {
        self.state
            .rpc("ConnectUser", request, |caller, req| async move {
                let id = validate::partner_id(req.id)?;
                set_connection(&caller.state, caller.scope(None, false).await?, id, true).await
            })
            .await
    }

    async fn disconnect_user(
        &self,
        request: Request<pb::DisconnectUserRequest>,
    ) -> RpcResult<pb::Partner> {
        self.state
            .rpc("DisconnectUser", request, |caller, req| async move {
                let id = validate::partner_id(req.id)?;
                set_connection(&caller.state, caller.scope(None, false).await?, id, false).await
            })
            .await
    }
}

async fn set_connection(
    state: &AppState,
    scope: CallScope,
    partner_id: i64,
    connect: bool,
) -> Result<pb::Partner> {
    let user_id = scope.scope.user_id.ok_or(Error::FailedPrecondition {
        reason: "USER_REQUIRED",
        message: "connecting needs a user: use a user key, or send x-user-uuid with a service key"
            .into(),
    })?;
    state
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
    load_partner(state, partner_id, scope, Includes::default()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored events carry fingerprints written by earlier builds: the digest stays lowercase hex
    /// of SHA-256 over the same text.
    #[test]
    fn fingerprints_are_lowercase_hex_sha256_of_the_event_text() {
        let event = NewClickEvent {
            partner_id: 42,
            user_id: Some(7),
            business_id: None,
            event_type: "video".into(),
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
