//! REST errors: JSON:API error documents, and the one mapping from a gRPC `Status` to HTTP
//! (grpc-gateway's table), turning each `BadRequest` field violation into one error object whose
//! `source` names the REST parameter, body pointer or header.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt;

/// Media type of every gateway response.
pub const JSON_API: &str = "application/vnd.api+json";

/// Where in the request an error points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A query (or path) parameter.
    Parameter(String),
    /// A JSON pointer into the body.
    Pointer(String),
    /// A request header.
    Header(String),
    /// Nowhere in particular.
    None,
}

/// One JSON:API error object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    pub source: Source,
}

impl ApiError {
    /// A 400 with a source.
    pub fn bad_request(source: Source, detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_ARGUMENT".into(),
            detail: detail.into(),
            source,
        }
    }

    /// A 400 naming a query parameter.
    pub fn bad_parameter(name: &str, detail: impl Into<String>) -> Self {
        Self::bad_request(Source::Parameter(name.to_owned()), detail)
    }

    /// A 400 pointing into the body.
    pub fn bad_pointer(pointer: &str, detail: impl Into<String>) -> Self {
        Self::bad_request(Source::Pointer(pointer.to_owned()), detail)
    }

    /// An error without a source.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_owned(),
            detail: detail.into(),
            source: Source::None,
        }
    }

    /// The error object.
    pub fn to_json(&self) -> Value {
        let mut object = json!({
            "status": self.status.as_u16().to_string(),
            "code": self.code,
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "detail": self.detail,
        });
        let source = match &self.source {
            Source::Parameter(p) => Some(json!({"parameter": p})),
            Source::Pointer(p) => Some(json!({"pointer": p})),
            Source::Header(h) => Some(json!({"header": h})),
            Source::None => None,
        };
        if let Some(source) = source {
            object["source"] = source;
        }
        object
    }
}

/// A failed REST call: one or more errors sharing the first one's status.
#[derive(Debug, Clone)]
pub struct ApiErrors {
    pub errors: Vec<ApiError>,
    /// Seconds for `Retry-After` (429/503).
    pub retry_after: Option<u64>,
}

impl From<ApiError> for ApiErrors {
    fn from(error: ApiError) -> Self {
        ApiErrors {
            errors: vec![error],
            retry_after: None,
        }
    }
}

impl From<Vec<ApiError>> for ApiErrors {
    fn from(errors: Vec<ApiError>) -> Self {
        ApiErrors {
            errors,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiErrors {
    fn into_response(self) -> Response {
        let status = self
            .errors
            .first()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, |e| e.status);
        let body = json!({"errors": self.errors.iter().map(ApiError::to_json).collect::<Vec<_>>()});
        let mut response = (status, body.to_string()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_API));
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: the scheme the client must use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"partners\""),
            );
        }
        response
    }
}

/// HTTP status of a gRPC code (grpc-gateway's mapping).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Maps a gRPC status to REST errors; `source_of` turns a request field path into its REST source.
pub fn from_status(
    status: &tonic::Status,
    source_of: &(dyn Fn(&str) -> Source + Sync),
) -> ApiErrors {
    let http = http_status(status.code());
    let details = status.get_error_details();
    let code = details
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_else(|| format!("{:?}", status.code()).to_uppercase());
    let retry_after = details
        .retry_info()
        .and_then(|r| r.retry_delay)
        .map(|d| d.as_secs().max(1))
        .or(
            (http == StatusCode::TOO_MANY_REQUESTS || http == StatusCode::SERVICE_UNAVAILABLE)
                .then_some(1),
        );
    let violations = details
        .bad_request()
        .map(|b| b.field_violations.clone())
        .unwrap_or_default();
    let detail = if http == StatusCode::INTERNAL_SERVER_ERROR {
        "internal error".to_owned()
    } else {
        status.message().to_owned()
    };
    let errors = if violations.is_empty() {
        vec![ApiError {
            status: http,
            code,
            detail,
            source: Source::None,
        }]
    } else {
        violations
            .iter()
            .map(|v| ApiError {
                status: http,
                code: code.clone(),
                detail: format!("{}: {}", v.field, v.description),
                source: source_of(&v.field),
            })
            .collect()
    };
    ApiErrors {
        errors,
        retry_after,
    }
}

/// Source of a field of the list/get requests: `filter.categories` → `filter[categories]`.
pub fn query_source(field: &str) -> Source {
    match field {
        "x-user-uuid" => Source::Header("X-User-Uuid".into()),
        // `filter.record.tags` (the record filters' own message) is `filter[tags]` too.
        other => {
            match (other.strip_prefix("filter.record.")).or_else(|| other.strip_prefix("filter.")) {
                Some(filter) => Source::Parameter(format!("filter[{filter}]")),
                None => Source::Parameter(other.to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Violation};

    #[test]
    fn field_violations_become_one_error_each() {
        let status = Error::InvalidArgument(vec![
            Violation {
                field: "filter.categories".into(),
                description: "bad".into(),
            },
            Violation {
                field: "per_page".into(),
                description: "bad".into(),
            },
        ])
        .into_status();
        let errors = from_status(&status, &query_source);
        let sources: Vec<Source> = errors.errors.iter().map(|e| e.source.clone()).collect();
        assert_eq!(
            sources,
            [
                Source::Parameter("filter[categories]".into()),
                Source::Parameter("per_page".into())
            ]
        );
        assert!(
            errors
                .errors
                .iter()
                .all(|e| e.status == StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn grpc_codes_map_like_grpc_gateway() {
        assert_eq!(
            http_status(Code::FailedPrecondition),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(http_status(Code::AlreadyExists), StatusCode::CONFLICT);
        assert_eq!(
            http_status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            http_status(Code::DeadlineExceeded),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
