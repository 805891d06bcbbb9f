//! `partners.v1.WebhookAdminService`: webhook endpoints and their deliveries, for service keys
//! only. Deliveries themselves are made by `crate::webhooks::dispatch`.

use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::pb;
use super::pb::webhook_admin_service_server::WebhookAdminService;
use super::scope::Caller;
use super::validate::webhooks::{
    DeliveryPage, EndpointPage, endpoint_create, endpoint_update, id as valid_id, page_token,
};
use crate::error::{Error, Result};
use crate::model::webhook::{self, Delivery, Endpoint};
use crate::serving::Services;
use crate::webhooks::signature;

/// Implementation of `WebhookAdminService`.
#[derive(Clone)]
pub struct WebhookApi {
    services: Services,
}

impl WebhookApi {
    /// A service over the shared services.
    pub fn new(services: Services) -> Self {
        WebhookApi { services }
    }

    fn allow_insecure(&self) -> bool {
        self.services.webhooks.allow_insecure_targets
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

fn service_caller<T>(request: &Request<T>) -> Result<()> {
    Caller::of(request)?.require_service()
}

/// An endpoint as the API shows it (never its secrets).
fn endpoint(e: Endpoint) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        id: e.id,
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        paused: e.paused_reason.is_some(),
        paused_reason: e.paused_reason.unwrap_or_default(),
        failing_since: e.failing_since.map(timestamp),
        create_time: Some(timestamp(e.created_at)),
        update_time: Some(timestamp(e.updated_at)),
    }
}

fn delivery(d: Delivery) -> pb::WebhookDelivery {
    let state = match d.state.as_str() {
        "pending" => pb::WebhookDeliveryState::Pending,
        "delivered" => pb::WebhookDeliveryState::Delivered,
        _ => pb::WebhookDeliveryState::Failed,
    };
    pb::WebhookDelivery {
        id: d.id,
        endpoint_id: d.endpoint_id,
        sequence: d.sequence,
        event_type: d.event_type,
        partner_id: d.partner_id,
        message_id: d.message_id,
        state: state as i32,
        attempts: d.attempts,
        last_status_code: d.last_status.unwrap_or_default(),
        last_error: d.last_error.unwrap_or_default(),
        next_attempt_time: (state == pb::WebhookDeliveryState::Pending)
            .then(|| timestamp(d.next_attempt_at)),
        create_time: Some(timestamp(d.created_at)),
        deliver_time: d.delivered_at.map(timestamp),
    }
}

const NO_ENDPOINT: Error = Error::NotFound("webhook endpoint");

#[tonic::async_trait]
impl WebhookAdminService for WebhookApi {
    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> RpcResult<pb::CreateWebhookEndpointResponse> {
        service_caller(&request)?;
        let new = endpoint_create(request.get_ref(), self.allow_insecure())?;
        let secret = signature::new_secret()?;
        let kept = secret.clone();
        let created = self
            .services
            .db
            .run(move |conn| Ok(webhook::insert(conn, &new, &kept)?))
            .await?;
        Ok(Response::new(pb::CreateWebhookEndpointResponse {
            endpoint: Some(endpoint(created)),
            secret,
        }))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> RpcResult<pb::ListWebhookEndpointsResponse> {
        service_caller(&request)?;
        let page = EndpointPage::try_from(request.get_ref())?;
        let mut rows = self
            .services
            .db
            .run(move |conn| Ok(webhook::list(conn, page.after_id, page.limit + 1)?))
            .await?;
        let more = rows.len() as i64 > page.limit;
        rows.truncate(page.limit as usize);
        let next_page_token = match rows.last() {
            Some(last) if more => page_token("endpoints", last.id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListWebhookEndpointsResponse {
            endpoints: rows.into_iter().map(endpoint).collect(),
            next_page_token,
        }))
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<pb::GetWebhookEndpointRequest>,
    ) -> RpcResult<pb::WebhookEndpoint> {
        service_caller(&request)?;
        let id = valid_id("id", request.get_ref().id)?;
        let found = self
            .services
            .db
            .run(move |conn| Ok(webhook::find(conn, id)?))
            .await?
            .ok_or(NO_ENDPOINT)?;
        Ok(Response::new(endpoint(found)))
    }

    async fn update_webhook_endpoint(
        &self,
        request: Request<pb::UpdateWebhookEndpointRequest>,
    ) -> RpcResult<pb::WebhookEndpoint> {
        service_caller(&request)?;
        let (id, changes) = endpoint_update(request.get_ref(), self.allow_insecure())?;
        let updated = self
            .services
            .db
            .run(move |conn| Ok(webhook::update(conn, id, &changes)?))
            .await?
            .ok_or(NO_ENDPOINT)?;
        Ok(Response::new(endpoint(updated)))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> RpcResult<()> {
        service_caller(&request)?;
        let id = valid_id("id", request.get_ref().id)?;
        let deleted = self
            .services
            .db
            .run(move |conn| Ok(webhook::delete(conn, id)?))
            .await?;
        if !deleted {
            return Err(NO_ENDPOINT.into());
        }
        Ok(Response::new(()))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> RpcResult<pb::RotateWebhookSecretResponse> {
        service_caller(&request)?;
        let id = valid_id("id", request.get_ref().id)?;
        let secret = signature::new_secret()?;
        let kept = secret.clone();
        let overlap = i64::try_from(self.services.webhooks.secret_overlap_secs).unwrap_or(i64::MAX);
        let rotated = self
            .services
            .db
            .run(move |conn| Ok(webhook::rotate(conn, id, &kept, overlap)?))
            .await?
            .ok_or(NO_ENDPOINT)?;
        let until = rotated.previous_secret_until.map(timestamp);
        Ok(Response::new(pb::RotateWebhookSecretResponse {
            endpoint: Some(endpoint(rotated)),
            secret,
            previous_secret_expire_time: until,
        }))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> RpcResult<pb::ListWebhookDeliveriesResponse> {
        service_caller(&request)?;
        let page = DeliveryPage::try_from(request.get_ref())?;
        let (mut rows, exists) = self
            .services
            .db
            .run(move |conn| {
                let rows = webhook::deliveries(
                    conn,
                    page.endpoint_id,
                    page.state,
                    page.before_id,
                    page.limit + 1,
                )?;
                let exists = !rows.is_empty() || webhook::find(conn, page.endpoint_id)?.is_some();
                Ok((rows, exists))
            })
            .await?;
        if !exists {
            return Err(NO_ENDPOINT.into());
        }
        let more = rows.len() as i64 > page.limit;
        rows.truncate(page.limit as usize);
        let next_page_token = match rows.last() {
            Some(last) if more => page_token("deliveries", last.id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            deliveries: rows.into_iter().map(delivery).collect(),
            next_page_token,
        }))
    }

    async fn retry_webhook_delivery(
        &self,
        request: Request<pb::RetryWebhookDeliveryRequest>,
    ) -> RpcResult<pb::WebhookDelivery> {
        service_caller(&request)?;
        let req = request.get_ref();
        let (endpoint_id, id) = (
            valid_id("endpoint_id", req.endpoint_id)?,
            valid_id("delivery_id", req.delivery_id)?,
        );
        let retried = self
            .services
            .db
            .run(move |conn| {
                if let Some(retried) = webhook::retry(conn, endpoint_id, id)? {
                    return Ok(Ok(retried));
                }
                Ok(Err(webhook::find_delivery(conn, endpoint_id, id)?))
            })
            .await?;
        match retried {
            Ok(retried) => Ok(Response::new(delivery(retried))),
            Err(None) => Err(Error::NotFound("webhook delivery").into()),
            Err(Some(_)) => Err(Error::FailedPrecondition {
                reason: "DELIVERY_NOT_FAILED",
                message: "only a failed delivery can be retried".into(),
                violation: None,
            }
            .into()),
        }
    }
}
