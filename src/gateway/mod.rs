//! The REST gateway under `/api/v1`: each route decodes its JSON:API request, makes exactly one
//! gRPC call through the generated client, and renders the answer as a JSON:API document. It holds
//! no business rules: values are validated by the gRPC service, so REST and gRPC callers see the
//! same rules. The transport is either the in-process service (`serve`) or a few TCP channels to a
//! remote server (`partners gateway --upstream`).

pub mod document;
pub mod errors;
pub mod openapi;
pub mod params;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};
use tonic::metadata::AsciiMetadataValue;
use tower::BoxError;
use tower::util::BoxCloneSyncService;
use tracing::{Instrument, field};

use crate::grpc::pb;
use crate::grpc::pb::partner_admin_service_client::PartnerAdminServiceClient;
use crate::grpc::pb::partner_service_client::PartnerServiceClient;
use document::Included;
use errors::{ApiError, ApiErrors, JSON_API, Source, from_status, query_source};
use params::{Accepts, Params};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route of the gateway, as `(method, path template)`; the OpenAPI document must list each.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/partners"),
    ("POST", "/api/v1/partners"),
    ("GET", "/api/v1/partners/available"),
    ("GET", "/api/v1/partners/wholesalers"),
    ("GET", "/api/v1/partners/{id}"),
    ("PATCH", "/api/v1/partners/{id}"),
    ("DELETE", "/api/v1/partners/{id}"),
    ("POST", "/api/v1/partners/{id}/click_event"),
    ("PATCH", "/api/v1/partners/{id}/connect"),
    ("DELETE", "/api/v1/partners/{id}/connect"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
];

/// A gRPC transport: the in-process service or a channel, behind one type.
pub type Transport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    TransportError,
>;

/// A failure to reach the gRPC service (a concrete type keeps handler futures `Send`).
#[derive(Debug)]
pub struct TransportError(BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "transport: {}", self.0)
    }
}

impl std::error::Error for TransportError {}

/// Shared gateway state: transports (round robin) and the per-call deadline.
#[derive(Clone)]
pub struct Gateway {
    transports: Arc<Vec<Transport>>,
    next: Arc<AtomicUsize>,
    timeout: Duration,
}

impl Gateway {
    /// Calls the in-process gRPC service through `transport` (same codec, services and layers,
    /// no socket).
    pub fn in_process(transport: Transport, timeout: Duration) -> Gateway {
        Gateway {
            transports: Arc::new(vec![transport]),
            next: Arc::default(),
            timeout,
        }
    }

    /// Calls a remote gRPC server over `channels` lazily connected TCP channels.
    pub fn remote(upstream: &str, channels: usize, timeout: Duration) -> Result<Gateway, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(upstream.to_owned())
            .map_err(|e| format!("invalid upstream {upstream:?}: {e}"))?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        let transports = (0..channels.max(1))
            .map(|_| {
                let channel = endpoint.connect_lazy();
                BoxCloneSyncService::new(tower::ServiceExt::map_err(channel, |e| {
                    TransportError(BoxError::from(e))
                }))
            })
            .collect();
        Ok(Gateway {
            transports: Arc::new(transports),
            next: Arc::default(),
            timeout,
        })
    }

    fn transport(&self) -> Transport {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.transports.len();
        self.transports[i].clone()
    }

    fn partners(&self) -> PartnerServiceClient<Transport> {
        PartnerServiceClient::new(self.transport())
    }

    fn admin(&self) -> PartnerAdminServiceClient<Transport> {
        PartnerAdminServiceClient::new(self.transport())
    }

    /// Awaits one gRPC call within the deadline; maps failures with `source_of`.
    async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
        source_of: &(dyn Fn(&str) -> Source + Sync),
    ) -> Result<T, ApiErrors> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(from_status(&status, source_of)),
            Err(_) => Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "DEADLINE_EXCEEDED",
                "the call did not finish in time",
            )
            .into()),
        }
    }
}

/// Caller identity forwarded as gRPC metadata.
struct Forward {
    authorization: Option<AsciiMetadataValue>,
    user: Option<AsciiMetadataValue>,
    request_id: Option<AsciiMetadataValue>,
    timeout: Duration,
}

impl Forward {
    fn new(headers: &HeaderMap, gateway: &Gateway) -> Forward {
        let ascii = |name: &str| {
            headers.get(name).map(|v| {
                AsciiMetadataValue::try_from(v.as_bytes())
                    .unwrap_or_else(|_| AsciiMetadataValue::from_static("invalid"))
            })
        };
        Forward {
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| AsciiMetadataValue::try_from(v.as_bytes()).ok()),
            user: ascii("x-user-uuid"),
            request_id: ascii("x-request-id"),
            timeout: gateway.timeout,
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let metadata = request.metadata_mut();
        if let Some(v) = &self.authorization {
            metadata.insert("authorization", v.clone());
        }
        if let Some(v) = &self.user {
            metadata.insert("x-user-uuid", v.clone());
        }
        if let Some(v) = &self.request_id {
            metadata.insert("x-request-id", v.clone());
        }
        request.set_timeout(self.timeout);
        request
    }
}

/// A JSON:API response.
fn json_api(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error.message = %e, "response document not serialisable");
            return ApiErrors::from(vec![ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "INTERNAL".into(),
                detail: "internal error".into(),
                source: Source::None,
            }])
            .into_response();
        }
    };
    let mut response = (status, bytes).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_API));
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v == JSON_API)
}

/// Reads the body: at most 64 KiB (413), JSON content type when non-empty (415), valid JSON (400).
async fn read_json(headers: &HeaderMap, body: Body) -> Result<Option<Value>, ApiErrors> {
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!("the body exceeds {MAX_BODY_BYTES} bytes"),
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send application/json or application/vnd.api+json",
        )
        .into());
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ApiError::bad_pointer("", format!("malformed JSON: {e}")).into())
}

/// Query parameters merged with those of an optional JSON body (the query wins).
async fn read_params(
    headers: &HeaderMap,
    query: Option<String>,
    body: Body,
    accepts: &Accepts,
) -> Result<Params, ApiErrors> {
    let mut params = Params::from_query(query.as_deref().unwrap_or(""), accepts)?;
    if let Some(json) = read_json(headers, body).await? {
        params.merge_missing(Params::from_body(&json, accepts)?);
    }
    Ok(params)
}

fn partner_id(path: Result<Path<String>, PathRejection>) -> Result<i64, ApiErrors> {
    let raw = path.map(|Path(p)| p).unwrap_or_default();
    raw.parse::<i64>()
        .map_err(|_| ApiError::bad_parameter("id", "the partner id must be an integer").into())
}

fn params_source(params: &Params) -> impl Fn(&str) -> Source + Sync + '_ {
    move |field| match query_source(field) {
        Source::Parameter(name) => params.source(&name),
        other => other,
    }
}

fn check(errors: Vec<ApiError>) -> Result<(), ApiErrors> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.into())
    }
}

fn page_link(path: &str, params: &Params) -> impl Fn(i32) -> String {
    let pairs = params.link_pairs();
    let path = path.to_owned();
    move |page| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            query.append_pair(k, v);
        }
        query.append_pair("page", &page.to_string());
        format!("{path}?{}", query.finish())
    }
}

type Reply = Result<Response, ApiErrors>;

/// A list document with links to the other pages of the same request.
fn list_response(
    path: &str,
    params: &Params,
    included: Included,
    partners: &[pb::Partner],
    meta: Option<pb::PageMeta>,
) -> Response {
    let meta = meta.unwrap_or_default();
    let link = page_link(path, params);
    json_api(
        StatusCode::OK,
        &document::list_document(partners, &meta, included, &link),
    )
}

const LIST_PARTNERS: Accepts = Accepts {
    scalars: &[
        "business_uuid",
        "include",
        "search",
        "page",
        "per_page",
        "sort",
    ],
    array_filters: &[
        "categories",
        "excluded_categories",
        "wholesaler_categories",
        "country_codes",
    ],
    bool_filters: &["preferred", "active"],
};

async fn list_partners(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &LIST_PARTNERS).await?;
    let mut errors = Vec::new();
    let request = pb::ListPartnersRequest {
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
        search: params.string("search"),
        page: params.int("page", &mut errors),
        per_page: params.int("per_page", &mut errors),
        sort: params.string("sort"),
        filter: Some(pb::ListPartnersFilter {
            categories: params.list("filter[categories]"),
            excluded_categories: params.list("filter[excluded_categories]"),
            wholesaler_categories: params.list("filter[wholesaler_categories]"),
            country_codes: params.list("filter[country_codes]"),
            preferred: params.boolean("filter[preferred]", &mut errors),
            active: params.boolean("filter[active]", &mut errors),
        }),
    };
    check(errors)?;
    let included = Included::from_values(&request.include);
    let forward = Forward::new(&headers, &gw);
    let page = gw
        .call(
            gw.partners().list_partners(forward.request(request)),
            &params_source(&params),
        )
        .await?;
    Ok(list_response(
        "/api/v1/partners",
        &params,
        included,
        &page.partners,
        page.meta,
    ))
}

const LIST_AVAILABLE: Accepts = Accepts {
    scalars: &[
        "business_uuid",
        "include",
        "search",
        "page",
        "per_page",
        "sort",
    ],
    array_filters: &["categories", "status"],
    bool_filters: &[],
};

async fn list_available(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &LIST_AVAILABLE).await?;
    let mut errors = Vec::new();
    let request = pb::ListAvailablePartnersRequest {
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
        search: params.string("search"),
        page: params.int("page", &mut errors),
        per_page: params.int("per_page", &mut errors),
        sort: params.string("sort"),
        filter: Some(pb::ListAvailablePartnersFilter {
            categories: params.list("filter[categories]"),
            status: params
                .list("filter[status]")
                .iter()
                .map(|s| document::partner_status_value(s))
                .collect(),
        }),
    };
    check(errors)?;
    let included = Included::from_values(&request.include);
    let forward = Forward::new(&headers, &gw);
    let page = gw
        .call(
            gw.partners()
                .list_available_partners(forward.request(request)),
            &params_source(&params),
        )
        .await?;
    Ok(list_response(
        "/api/v1/partners/available",
        &params,
        included,
        &page.partners,
        page.meta,
    ))
}

const LIST_WHOLESALERS: Accepts = Accepts {
    scalars: &["business_uuid", "include", "page", "per_page", "sort"],
    array_filters: &[],
    bool_filters: &[],
};

async fn list_wholesalers(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &LIST_WHOLESALERS).await?;
    let mut errors = Vec::new();
    let request = pb::ListWholesalersRequest {
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
        page: params.int("page", &mut errors),
        per_page: params.int("per_page", &mut errors),
        sort: params.string("sort"),
    };
    check(errors)?;
    let included = Included::from_values(&request.include);
    let forward = Forward::new(&headers, &gw);
    let page = gw
        .call(
            gw.partners().list_wholesalers(forward.request(request)),
            &params_source(&params),
        )
        .await?;
    Ok(list_response(
        "/api/v1/partners/wholesalers",
        &params,
        included,
        &page.partners,
        page.meta,
    ))
}

const GET_PARTNER: Accepts = Accepts {
    scalars: &["business_uuid", "include"],
    array_filters: &[],
    bool_filters: &[],
};

async fn get_partner(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = read_params(&headers, query, body, &GET_PARTNER).await?;
    let request = pb::GetPartnerRequest {
        id: partner_id(path)?,
        business_uuid: params.string("business_uuid"),
        include: params.comma_list("include"),
    };
    let included = Included::from_values(&request.include);
    let forward = Forward::new(&headers, &gw);
    let partner = gw
        .call(
            gw.partners().get_partner(forward.request(request)),
            &params_source(&params),
        )
        .await?;
    Ok(json_api(
        StatusCode::OK,
        &document::partner_document(&partner, included),
    ))
}

const CONTEXT_ONLY: Accepts = Accepts {
    scalars: &["business_uuid"],
    array_filters: &[],
    bool_filters: &[],
};

const NOTHING: Accepts = Accepts {
    scalars: &[],
    array_filters: &[],
    bool_filters: &[],
};

/// The JSON:API `data` object of a body, with its `type` checked.
fn data_object<'a>(
    body: &'a Option<Value>,
    expected_type: &str,
) -> Result<&'a serde_json::Map<String, Value>, ApiErrors> {
    let data = body
        .as_ref()
        .and_then(|b| b.get("data"))
        .ok_or_else(|| {
            ApiError::bad_pointer("/data", "a JSON:API document with `data` is required")
        })?
        .as_object()
        .ok_or_else(|| ApiError::bad_pointer("/data", "must be an object"))?;
    match data.get("type").and_then(Value::as_str) {
        Some(t) if t == expected_type => Ok(data),
        _ => Err(ApiError::bad_pointer("/data/type", format!("must be {expected_type:?}")).into()),
    }
}

/// A JSON:API resource id (always a string).
fn id_text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

/// Checks `relationships.partner` (`{id, type}` or `{data: {id, type}}`) against the path id.
fn check_partner_relationship(
    data: &serde_json::Map<String, Value>,
    id: i64,
) -> Result<(), ApiErrors> {
    let relationships = match data.get("relationships") {
        None => return Ok(()),
        Some(Value::Object(r)) => r,
        Some(_) => {
            return Err(ApiError::bad_pointer("/data/relationships", "must be an object").into());
        }
    };
    let Some(partner) = relationships.get("partner") else {
        return Ok(());
    };
    let (object, base) = match partner.get("data") {
        Some(inner) => (inner, "/data/relationships/partner/data"),
        None => (partner, "/data/relationships/partner"),
    };
    let mut errors = Vec::new();
    if !object.is_object() {
        errors.push(ApiError::bad_pointer(
            base,
            "must be an object with id and type",
        ));
        return check(errors);
    }
    if let Some(t) = object.get("type")
        && t.as_str() != Some("partner")
    {
        errors.push(ApiError::bad_pointer(
            &format!("{base}/type"),
            "must be \"partner\"",
        ));
    }
    match object.get("id").and_then(id_text) {
        Some(text) if text == id.to_string() => {}
        Some(_) => errors.push(ApiError::bad_pointer(
            &format!("{base}/id"),
            "must match the partner id in the path",
        )),
        None => errors.push(ApiError::bad_pointer(
            &format!("{base}/id"),
            "must be the partner id as a string",
        )),
    }
    check(errors)
}

/// Decodes a click-event document (`relationships.partner` as `{id, type}` or `{data: {id, type}}`)
/// into the event type value sent to gRPC (unknown names become -1, rejected there).
pub fn click_event_type(body: &Option<Value>, id: i64) -> Result<i32, ApiErrors> {
    let data = data_object(body, "partner_click_events")?;
    let event_type = match data.get("attributes").and_then(|a| a.get("event_type")) {
        None | Some(Value::Null) => pb::EventType::Unspecified as i32,
        Some(Value::String(s)) => match s.as_str() {
            "website" => pb::EventType::Website as i32,
            "video" => pb::EventType::Video as i32,
            _ => -1,
        },
        Some(_) => {
            return Err(
                ApiError::bad_pointer("/data/attributes/event_type", "must be a string").into(),
            );
        }
    };
    check_partner_relationship(data, id)?;
    Ok(event_type)
}

async fn click_event(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    let params = Params::from_query(query.as_deref().unwrap_or(""), &CONTEXT_ONLY)?;
    let id = partner_id(path)?;
    let body = read_json(&headers, body).await?;
    let event_type = click_event_type(&body, id)?;
    let request_id = match headers.get("idempotency-key") {
        None => String::new(),
        Some(v) => v
            .to_str()
            .map_err(|_| {
                ApiError::bad_request(
                    Source::Header("Idempotency-Key".into()),
                    "must be visible ASCII",
                )
            })?
            .to_owned(),
    };
    let request = pb::CreatePartnerClickEventRequest {
        id,
        event_type,
        request_id,
        business_uuid: params.string("business_uuid"),
    };
    let forward = Forward::new(&headers, &gw);
    let source = |field: &str| match field {
        "event_type" => Source::Pointer("/data/attributes/event_type".into()),
        "request_id" => Source::Header("Idempotency-Key".into()),
        other => params_source(&params)(other),
    };
    let event = gw
        .call(
            gw.partners()
                .create_partner_click_event(forward.request(request)),
            &source,
        )
        .await?;
    let mut response = json_api(StatusCode::CREATED, &document::click_event_document(&event));
    if let Ok(location) =
        HeaderValue::from_str(&format!("/api/v1/partners/{id}/click_event/{}", event.id))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn connect(
    State(gw): State<Gateway>,
    method: Method,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    Params::from_query(query.as_deref().unwrap_or(""), &NOTHING)?;
    let id = partner_id(path)?;
    read_json(&headers, body).await?; // limits and well-formedness only; nothing is read from it
    let forward = Forward::new(&headers, &gw);
    let partner = if method == Method::DELETE {
        gw.call(
            gw.partners()
                .disconnect_user(forward.request(pb::DisconnectUserRequest { id })),
            &query_source,
        )
        .await?
    } else {
        gw.call(
            gw.partners()
                .connect_user(forward.request(pb::ConnectUserRequest { id })),
            &query_source,
        )
        .await?
    };
    Ok(json_api(
        StatusCode::OK,
        &document::partner_document(&partner, Included::default()),
    ))
}

/// Decodes partner attributes into a message and the list of attributes present.
pub fn partner_from_attributes(
    data: &serde_json::Map<String, Value>,
) -> Result<(pb::Partner, Vec<String>), ApiErrors> {
    let mut partner = pb::Partner::default();
    let mut present = Vec::new();
    let mut errors = Vec::new();
    let Some(attributes) = data.get("attributes") else {
        return Ok((partner, present));
    };
    let Some(attributes) = attributes.as_object() else {
        return Err(ApiError::bad_pointer("/data/attributes", "must be an object").into());
    };
    for (key, value) in attributes {
        let pointer = format!("/data/attributes/{key}");
        let text = || match value {
            Value::String(s) => Some(s.clone()),
            Value::Null => Some(String::new()),
            _ => None,
        };
        let list = || match value {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect(),
            Value::Null => Some(Vec::new()),
            _ => None,
        };
        let ok = match key.as_str() {
            "name" => text().map(|v| partner.name = v).is_some(),
            "description" => text().map(|v| partner.description = v).is_some(),
            "email" => text().map(|v| partner.email = v).is_some(),
            "logo_url" => text().map(|v| partner.logo_url = v).is_some(),
            "website_url" => text().map(|v| partner.website_url = v).is_some(),
            "video_url" => text().map(|v| partner.video_url = v).is_some(),
            "categories" => list().map(|v| partner.categories = v).is_some(),
            "wholesaler_categories" => list().map(|v| partner.wholesaler_categories = v).is_some(),
            "country_codes" => list().map(|v| partner.country_codes = v).is_some(),
            "tags" => list().map(|v| partner.tags = v).is_some(),
            "status" => value
                .as_str()
                .map(|s| partner.status = document::partner_status_value(s))
                .is_some(),
            "active" => value.as_bool().map(|b| partner.active = b).is_some(),
            "external_id" => match value {
                Value::Null => true,
                Value::String(s) => {
                    partner.external_id = Some(s.clone());
                    true
                }
                _ => false,
            },
            "metadata" => match value {
                Value::Object(_) => {
                    partner.metadata = Some(crate::grpc::convert::json_to_struct(value));
                    true
                }
                Value::Null => true,
                _ => false,
            },
            _ => {
                errors.push(ApiError::bad_pointer(
                    &pointer,
                    format!("unknown attribute {key:?}"),
                ));
                continue;
            }
        };
        if ok {
            present.push(key.clone());
        } else {
            errors.push(ApiError::bad_pointer(&pointer, "has the wrong type"));
        }
    }
    check(errors)?;
    Ok((partner, present))
}

fn admin_source(field: &str) -> Source {
    match field {
        "partner" => Source::Pointer("/data".into()),
        "partner.id" | "id" => Source::Parameter("id".into()),
        "update_mask" => Source::Pointer("/data/attributes".into()),
        other => match other.strip_prefix("partner.") {
            Some(attribute) => Source::Pointer(format!("/data/attributes/{attribute}")),
            None => query_source(other),
        },
    }
}

async fn create_partner(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    Params::from_query(query.as_deref().unwrap_or(""), &NOTHING)?;
    let body = read_json(&headers, body).await?;
    let data = data_object(&body, "partner")?;
    let (partner, _) = partner_from_attributes(data)?;
    let forward = Forward::new(&headers, &gw);
    let created = gw
        .call(
            gw.admin()
                .create_partner(forward.request(pb::CreatePartnerRequest {
                    partner: Some(partner),
                })),
            &admin_source,
        )
        .await?;
    let mut response = json_api(
        StatusCode::CREATED,
        &document::partner_document(&created, Included::default()),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/partners/{}", created.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn update_partner(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Reply {
    Params::from_query(query.as_deref().unwrap_or(""), &NOTHING)?;
    let id = partner_id(path)?;
    let body = read_json(&headers, body).await?;
    let data = data_object(&body, "partner")?;
    if let Some(body_id) = data.get("id")
        && id_text(body_id) != Some(id.to_string())
    {
        return Err(
            ApiError::bad_pointer("/data/id", "must match the partner id in the path").into(),
        );
    }
    let (mut partner, present) = partner_from_attributes(data)?;
    partner.id = id;
    let forward = Forward::new(&headers, &gw);
    let request = pb::UpdatePartnerRequest {
        partner: Some(partner),
        update_mask: Some(prost_types::FieldMask { paths: present }),
    };
    let updated = gw
        .call(
            gw.admin().update_partner(forward.request(request)),
            &admin_source,
        )
        .await?;
    Ok(json_api(
        StatusCode::OK,
        &document::partner_document(&updated, Included::default()),
    ))
}

async fn delete_partner(
    State(gw): State<Gateway>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Reply {
    Params::from_query(query.as_deref().unwrap_or(""), &NOTHING)?;
    let id = partner_id(path)?;
    let forward = Forward::new(&headers, &gw);
    gw.call(
        gw.admin()
            .delete_partner(forward.request(pb::DeletePartnerRequest { id })),
        &admin_source,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

async fn readyz(State(gw): State<Gateway>) -> Response {
    let mut client = tonic_health::pb::health_client::HealthClient::new(gw.transport());
    let check = client.check(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    });
    let serving = matches!(
        tokio::time::timeout(Duration::from_secs(2), check).await,
        Ok(Ok(r)) if r.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    if serving {
        axum::Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable"})),
        )
            .into_response()
    }
}

async fn openapi_json() -> Response {
    axum::Json(openapi::document()).into_response()
}

async fn not_found() -> ApiErrors {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route").into()
}

async fn method_not_allowed() -> ApiErrors {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "this route does not accept that method",
    )
    .into()
}

/// Takes or makes the request id, returns it, and logs one line per request (never a body or key).
async fn trace_requests(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert("x-request-id", value);
    }
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "http",
        http.method = %request.method(),
        http.path = %path,
        http.status = field::Empty,
        duration_ms = field::Empty,
        request_id = %id,
    );
    let started = Instant::now();
    async move {
        let mut response = next.run(request).await;
        let status = response.status();
        let span = tracing::Span::current();
        span.record("http.status", status.as_u16());
        span.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
        if status.is_server_error() {
            tracing::warn!("request failed");
        } else {
            tracing::info!("request done");
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
    .instrument(span)
    .await
}

/// The axum router of the gateway.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/api/v1/partners", get(list_partners).post(create_partner))
        .route("/api/v1/partners/available", get(list_available))
        .route("/api/v1/partners/wholesalers", get(list_wholesalers))
        .route(
            "/api/v1/partners/{id}",
            get(get_partner)
                .patch(update_partner)
                .delete(delete_partner),
        )
        .route("/api/v1/partners/{id}/click_event", post(click_event))
        .route(
            "/api/v1/partners/{id}/connect",
            patch(connect).delete(connect),
        )
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(trace_requests))
        .with_state(gateway)
}

/// Serves the router on `listener` until `shutdown` completes, then drains connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Arbitrary JSON values, a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    "(data|type|attributes|relationships|partner|id|event_type|name|.{0,6})",
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn click_body_decoding_never_panics_and_only_reports_400(body in any_json(), id in any::<i64>()) {
            if let Err(errors) = click_event_type(&Some(body), id) {
                prop_assert!(errors.errors.iter().all(|e| e.status == StatusCode::BAD_REQUEST));
                prop_assert!(errors.errors.iter().all(|e| matches!(e.source, Source::Pointer(_))));
            }
        }

        #[test]
        fn well_formed_click_documents_decode(
            id in 1i64..i64::MAX,
            kind in prop_oneof![Just("website"), Just("video")],
            nested in any::<bool>(),
        ) {
            let partner = json!({"id": id.to_string(), "type": "partner"});
            let relationship = if nested { json!({"data": partner}) } else { partner };
            let body = json!({"data": {"type": "partner_click_events", "attributes": {"event_type": kind},
                "relationships": {"partner": relationship}}});
            let expected = if kind == "website" { pb::EventType::Website } else { pb::EventType::Video };
            prop_assert_eq!(click_event_type(&Some(body), id).ok(), Some(expected as i32));
        }

        #[test]
        fn partner_attribute_decoding_never_panics(attributes in any_json()) {
            let data = json!({"type": "partner", "attributes": attributes});
            let object = data.as_object().expect("object");
            if let Ok((_, present)) = partner_from_attributes(object) {
                let keys: Vec<String> = data["attributes"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                prop_assert!(present.iter().all(|p| keys.contains(p)));
            }
        }
    }
}
