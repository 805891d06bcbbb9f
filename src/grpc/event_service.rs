//! `partners.v1.PartnerEventService`: the change events, for service keys only. Each handler
//! checks the caller's kind, validates its request into an [`EventQuery`] (`super::validate`)
//! and asks the events service (`crate::serving::events`) for a page or a stream.

use std::pin::Pin;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::pb::partner_event_service_server::PartnerEventService;
use super::scope::Caller;
use super::validate::EventQuery;
use super::{convert, pb};
use crate::serving::Services;
use crate::serving::events::Watched;

/// Implementation of `PartnerEventService`.
#[derive(Clone)]
pub struct EventApi {
    services: Services,
}

impl EventApi {
    /// A service over the shared services.
    pub fn new(services: Services) -> Self {
        EventApi { services }
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// The messages of a watch stream.
pub type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchPartnerEventsResponse, Status>> + Send>>;

/// The service and method labels of the watch stream's metrics.
const WATCH_LABELS: [(&str, &str); 3] = [
    ("grpc_type", "server_stream"),
    ("grpc_service", "partners.v1.PartnerEventService"),
    ("grpc_method", "WatchPartnerEvents"),
];

#[tonic::async_trait]
impl PartnerEventService for EventApi {
    async fn list_partner_events(
        &self,
        request: Request<pb::ListPartnerEventsRequest>,
    ) -> RpcResult<pb::ListPartnerEventsResponse> {
        Caller::of(&request)?.require_service()?;
        let query = EventQuery::try_from(request.get_ref())?;
        let page = self.services.events.page(&query).await?;
        Ok(Response::new(pb::ListPartnerEventsResponse {
            events: page.events.into_iter().map(convert::event).collect(),
            next_after_sequence: page.next_after,
        }))
    }

    type WatchPartnerEventsStream = WatchStream;

    async fn watch_partner_events(
        &self,
        request: Request<pb::WatchPartnerEventsRequest>,
    ) -> RpcResult<Self::WatchPartnerEventsStream> {
        Caller::of(&request)?.require_service()?;
        let query = EventQuery::try_from(request.get_ref())?;
        let sent = metrics::counter!("grpc_server_msg_sent_total", &WATCH_LABELS);
        let messages = ReceiverStream::new(self.services.events.watch(query)).map(move |m| {
            let kind = match m? {
                Watched::Event(event) => {
                    pb::watch_partner_events_response::Kind::Event(convert::event(*event))
                }
                Watched::Heartbeat { after } => {
                    pb::watch_partner_events_response::Kind::Heartbeat(pb::Heartbeat {
                        time: Some(convert::timestamp(chrono::Utc::now())),
                        after_sequence: after,
                    })
                }
            };
            sent.increment(1);
            Ok(pb::WatchPartnerEventsResponse { kind: Some(kind) })
        });
        Ok(Response::new(Box::pin(messages)))
    }
}
