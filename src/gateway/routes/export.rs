//! The export (service keys only): `GET /api/v1/partners/export` (ExportPartners) streams every
//! partner matching ListPartners' filters and search, in id order, as CSV (`Accept: text/csv`) or
//! NDJSON (`Accept: application/x-ndjson`, also for `*/*` or no `Accept`), with chunked transfer;
//! any other `Accept` is 406. Each gRPC message becomes one body chunk when the HTTP connection
//! asks for more, so the gateway holds at most a message at a time and the server's producer
//! waits while the client does not read. An error after the first bytes ends the body abruptly
//! (no terminating chunk): a client never takes a truncated export for a whole one.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use tokio_stream::StreamExt;

use super::{Reply, route_params};
use crate::gateway::Gateway;
use crate::gateway::conventions::Streamed;
use crate::gateway::document::export::{csv_header, csv_row, ndjson_line};
use crate::gateway::errors::{ApiError, ApiErrors};
use crate::gateway::extract::{check, params_source, query_params};
use crate::gateway::openapi::{CommonErrors, Forbidden, NotFound};
use crate::gateway::params::Accepts;
use crate::grpc::pb;

const EXPORT: Accepts = Accepts {
    scalars: &[
        "business_uuid",
        "search",
        "filter[updated_since]",
        "filter[created_since]",
    ],
    array_filters: &[
        "categories",
        "excluded_categories",
        "wholesaler_categories",
        "country_codes",
        "status",
        "ids",
        "external_ids",
        "tags",
        "all_tags",
    ],
    bool_filters: &["preferred", "active"],
    statuses: &["available", "coming_soon", "unavailable"],
};

route_params!(
    /// Parameters of `exportPartners`.
    ExportParams,
    id: false,
    accepts: EXPORT,
    headers: [RequestId]
);

/// The export's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/csv`
    Csv,
    /// `application/x-ndjson`
    Ndjson,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }
}

/// The format `Accept` asks for: the acceptable media range with the highest `q` (the first of
/// equals); NDJSON without `Accept`; 406 when no range is acceptable.
pub fn negotiate(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(Format::Ndjson);
    };
    let mut best: Option<(f32, Format)> = None;
    for range in accept.to_str().unwrap_or_default().split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "application/x-ndjson" | "application/*" | "*/*" => Format::Ndjson,
            "text/csv" | "text/*" => Format::Csv,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
            best = Some((q, format));
        }
    }
    best.map(|(_, f)| f).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "NOT_ACCEPTABLE",
            "the export is text/csv or application/x-ndjson: ask for one in Accept",
        )
    })
}

/// The bytes of one streamed message in `format`.
fn render(message: &pb::ExportPartnersResponse, format: Format) -> Result<Bytes, tonic::Status> {
    match format {
        Format::Csv => {
            let mut out = String::new();
            for p in &message.partners {
                csv_row(p, &mut out);
            }
            Ok(Bytes::from(out))
        }
        Format::Ndjson => {
            let mut out = Vec::new();
            for p in &message.partners {
                ndjson_line(p, &mut out).map_err(|e| {
                    tracing::error!(error.message = %e, "export line not serialisable");
                    tonic::Status::internal("internal error")
                })?;
            }
            Ok(Bytes::from(out))
        }
    }
}

/// `GET /api/v1/partners/export`: ExportPartners.
#[utoipa::path(
    get,
    path = "/api/v1/partners/export",
    tag = "admin",
    operation_id = "exportPartners",
    summary = "Export partners as CSV or NDJSON",
    description = "Every partner matching the filters and search of `listPartners`, in id order, \
                   streamed (chunked) as CSV (`Accept: text/csv`; a header line, lists and metadata \
                   as JSON text) or NDJSON (`Accept: application/x-ndjson`, the default; one \
                   partner resource per line). `filter[preferred]` needs `business_uuid`. An error \
                   after the first line ends the body without its last chunk. Service keys only.",
    params(ExportParams),
    responses(
        (status = 200, description = "The partners, in id order.",
         content(
            (String = "text/csv"),
            (String = "application/x-ndjson"),
         )),
        CommonErrors,
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 406, description = "`Accept` names neither format.",
         body = crate::gateway::openapi::schemas::Errors, content_type = "application/vnd.api+json"),
    ),
)]
pub async fn export_partners(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    let params = query_params(query, &EXPORT)?;
    let format = negotiate(&headers).map_err(ApiErrors::from)?;
    let mut errors = Vec::new();
    let request = pb::ExportPartnersRequest {
        business_uuid: params.string("business_uuid"),
        search: params.string("search"),
        filter: Some(pb::ListPartnersFilter {
            categories: params.list("filter[categories]"),
            excluded_categories: params.list("filter[excluded_categories]"),
            wholesaler_categories: params.list("filter[wholesaler_categories]"),
            country_codes: params.list("filter[country_codes]"),
            preferred: params.boolean("filter[preferred]", &mut errors),
            active: params.boolean("filter[active]", &mut errors),
            record: super::lists::record_filter(&params, &mut errors),
            status: super::lists::statuses(&params),
        }),
    };
    check(errors)?;
    let stream = gw
        .call(
            gw.partners(),
            &headers,
            request,
            &params_source(&params),
            |mut client, request| async move { client.export_partners(request).await },
        )
        .await?;
    let lines = stream.map(move |message| message.and_then(|m| render(&m, format)));
    let body = match format {
        Format::Csv => Body::from_stream(tokio_stream::once(Ok(csv_header())).chain(lines)),
        Format::Ndjson => Body::from_stream(lines),
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(Streamed);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Result<Format, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).expect("value"));
        negotiate(&headers)
    }

    #[test]
    fn accept_picks_the_preferred_acceptable_format() {
        assert_eq!(negotiate(&HeaderMap::new()).ok(), Some(Format::Ndjson));
        assert_eq!(accept("text/csv").ok(), Some(Format::Csv));
        assert_eq!(accept("application/x-ndjson").ok(), Some(Format::Ndjson));
        assert_eq!(accept("*/*").ok(), Some(Format::Ndjson));
        assert_eq!(
            accept("application/x-ndjson;q=0.5, text/csv").ok(),
            Some(Format::Csv)
        );
        assert_eq!(accept("text/html, text/*;q=0.1").ok(), Some(Format::Csv));
        for refused in ["application/json", "text/csv;q=0", "image/png, text/html"] {
            let err = accept(refused).expect_err(refused);
            assert_eq!(err.status, StatusCode::NOT_ACCEPTABLE, "{refused}");
        }
    }
}
