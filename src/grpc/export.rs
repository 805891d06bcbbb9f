//! ExportPartners (PartnerService, service keys only): every partner matching ListPartners'
//! filters and search, streamed in id order. The request is validated by ListPartners' own rules
//! (it is turned into a ListPartnersRequest first), then a producer task reads keyset chunks of
//! [`EXPORT_CHUNK_ROWS`] (`crate::model::partner::export_chunk`), one statement and one pooled
//! connection each, and sends messages of at most [`MESSAGE_PARTNERS`] partners into a channel of
//! [`CHANNEL_MESSAGES`]: while the client does not read, the channel is full and the producer
//! waits, holding no connection, so memory stays bounded by the channel whatever the export's
//! size. A client that goes away closes the channel and the producer stops at its next send.

use std::pin::Pin;

use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use super::scope::Caller;
use super::validate::ListRequest;
use super::{convert, pb};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::partner::{self, ListQuery};
use crate::serving::Services;

/// Rows read by one statement of an export.
pub const EXPORT_CHUNK_ROWS: i64 = 1000;
/// Most partners in one streamed message.
pub const MESSAGE_PARTNERS: usize = 500;
/// Messages waiting for the client at most (the backpressure bound).
pub const CHANNEL_MESSAGES: usize = 2;

/// The messages of an export.
pub type ExportStream =
    Pin<Box<dyn Stream<Item = Result<pb::ExportPartnersResponse, Status>> + Send>>;

/// The export request as the ListPartners request whose filters and search it shares.
fn as_list_request(req: &pb::ExportPartnersRequest) -> pb::ListPartnersRequest {
    pb::ListPartnersRequest {
        business_uuid: req.business_uuid.clone(),
        filter: req.filter.clone(),
        search: req.search.clone(),
        ..Default::default()
    }
}

/// Validates an ExportPartners call and starts its producer.
pub async fn export(
    services: &Services,
    request: Request<pb::ExportPartnersRequest>,
) -> Result<Response<ExportStream>, Status> {
    let caller = Caller::of(&request)?;
    caller.require_service()?;
    let valid = ListRequest::try_from(&as_list_request(request.get_ref()))?;
    if valid.query.preferred.is_some() && valid.business_uuid.is_none() {
        return Err(Error::invalid("filter.preferred", "needs a business_uuid").into());
    }
    let scope = caller
        .scope(&services.context, valid.business_uuid, false)
        .await?;
    let mut query = valid.query;
    query.scope = scope.scope;
    let (tx, rx) = mpsc::channel(CHANNEL_MESSAGES);
    let context = (scope.with_business(), scope.with_user());
    let producer = produce(services.db.clone(), query, context, tx);
    tokio::spawn(producer.instrument(tracing::Span::current()));
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

/// Reads the export's chunks in id order and sends them, waiting while the channel is full.
async fn produce(
    db: Db,
    query: ListQuery,
    (with_business, with_user): (bool, bool),
    tx: mpsc::Sender<Result<pb::ExportPartnersResponse, Status>>,
) {
    let mut after = 0;
    loop {
        let q = query.clone();
        let chunk = db
            .run_list(move |conn| Ok(partner::export_chunk(conn, &q, after, EXPORT_CHUNK_ROWS)?))
            .await;
        let records = match chunk {
            Ok(records) => records,
            Err(err) => {
                let _ = tx.send(Err(err.into())).await;
                return;
            }
        };
        let last_chunk = (records.len() as i64) < EXPORT_CHUNK_ROWS;
        if let Some(last) = records.last() {
            after = last.id;
        }
        let mut partners = records
            .into_iter()
            .map(|r| convert::partner(r, with_business, with_user))
            .peekable();
        while partners.peek().is_some() {
            let message = pb::ExportPartnersResponse {
                partners: partners.by_ref().take(MESSAGE_PARTNERS).collect(),
            };
            if tx.send(Ok(message)).await.is_err() {
                return; // the client went away
            }
        }
        if last_chunk {
            return;
        }
    }
}
