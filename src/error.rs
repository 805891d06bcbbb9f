//! The one domain error type and its mapping to `tonic::Status`.
//!
//! Every fallible path of the service returns [`Error`]. The gRPC layer turns it into a `Status`
//! with `google.rpc.ErrorInfo` (always) and `google.rpc.BadRequest` (for invalid arguments) through
//! [`Error::into_status`]; the REST gateway maps the resulting `Status` once more to HTTP. Internal
//! errors reach clients as a bare "internal error"; their cause is recorded on the call's span and
//! logged once, with the call's line (`crate::grpc::layer::log`).

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// Domain of every `ErrorInfo` this service emits.
pub const ERROR_DOMAIN: &str = "partners.v1";

/// One invalid request field: its path in the request message and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Field path in the request message, e.g. `filter.categories` or `per_page`.
    pub field: String,
    /// Human-readable description of the problem.
    pub description: String,
}

/// A precondition a call failed (`google.rpc.PreconditionFailure`): what kind, on what subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreconditionViolation {
    /// UPPER_SNAKE type of the precondition, e.g. `EXTERNAL_ID_TAKEN`.
    pub kind: &'static str,
    /// What failed it, e.g. `partners/42`.
    pub subject: String,
    /// Human-readable description.
    pub description: String,
}

/// Everything that can go wrong while serving a call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is malformed; one entry per offending field.
    #[error("invalid argument")]
    InvalidArgument(Vec<Violation>),
    /// The named resource does not exist (or is not visible to the caller).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Some resources a batch names do not exist: the batch did nothing.
    #[error("{resource} not found: {}", keys.join(", "))]
    NotFoundMany {
        /// The kind of resource.
        resource: &'static str,
        /// Where the batch names each missing one, e.g. `requests[3] (id 42)`.
        keys: Vec<String>,
    },
    /// Missing, malformed, unknown or revoked API key.
    #[error("missing or invalid API key")]
    Unauthenticated,
    /// The caller is known but may not do this.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// A conflicting resource exists (idempotency key reuse, unique external id).
    #[error("{message}")]
    AlreadyExists {
        /// UPPER_SNAKE reason.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// The call is well-formed but the system is not in a state that allows it.
    #[error("{message}")]
    FailedPrecondition {
        /// UPPER_SNAKE reason.
        reason: &'static str,
        /// Human-readable message.
        message: String,
        /// The failed precondition, when the call can name it.
        violation: Option<PreconditionViolation>,
    },
    /// Too many calls: a rate limit or a saturated pool; retry after the given delay.
    #[error("{message}")]
    ResourceExhausted {
        /// Human-readable message.
        message: &'static str,
        /// Suggested delay before retrying.
        retry_after: Duration,
    },
    /// A request message is larger than the server accepts.
    #[error("request message larger than 1 MiB")]
    MessageTooLarge,
    /// The database is unreachable or overloaded.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// A statement ran past its time limit.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// A bug or an unexpected failure; the text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Message of the UNAVAILABLE given for a serialization failure or deadlock (safe to retry).
pub const CONFLICT: &str = "database conflict, retry";

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An invalid-argument error for a single field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![Violation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// The UPPER_SNAKE reason carried in `ErrorInfo`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::NotFound(_) | Error::NotFoundMany { .. } => "NOT_FOUND",
            Error::Unauthenticated => "UNAUTHENTICATED",
            Error::PermissionDenied(_) => "PERMISSION_DENIED",
            Error::AlreadyExists { reason, .. } => reason,
            Error::FailedPrecondition { reason, .. } => reason,
            Error::ResourceExhausted { .. } => "RESOURCE_EXHAUSTED",
            Error::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Error::Unavailable(_) => "UNAVAILABLE",
            Error::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) | Error::NotFoundMany { .. } => Code::NotFound,
            Error::Unauthenticated => Code::Unauthenticated,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::AlreadyExists { .. } => Code::AlreadyExists,
            Error::FailedPrecondition { .. } => Code::FailedPrecondition,
            Error::ResourceExhausted { .. } | Error::MessageTooLarge => Code::ResourceExhausted,
            Error::Unavailable(_) => Code::Unavailable,
            Error::DeadlineExceeded => Code::DeadlineExceeded,
            Error::Internal(_) => Code::Internal,
        }
    }

    /// Converts into a `Status` with rich error details. The cause of an internal error is
    /// recorded on the current span (the call's), whose line logs it.
    pub fn into_status(self) -> Status {
        let code = self.code();
        let reason = self.reason();
        let mut metadata = HashMap::new();
        let message = match &self {
            Error::InvalidArgument(violations) => {
                let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
                metadata.insert("fields".to_owned(), fields.join(","));
                match violations.as_slice() {
                    [one] => format!("invalid {}: {}", one.field, one.description),
                    _ => format!("invalid arguments: {}", fields.join(", ")),
                }
            }
            Error::NotFound(what) => {
                metadata.insert("resource".to_owned(), (*what).to_owned());
                self.to_string()
            }
            Error::NotFoundMany { resource, .. } => {
                metadata.insert("resource".to_owned(), (*resource).to_owned());
                self.to_string()
            }
            Error::Internal(text) => {
                tracing::Span::current().record("error.message", text.as_str());
                "internal error".to_owned()
            }
            _ => self.to_string(),
        };
        let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
        match self {
            Error::InvalidArgument(violations) => {
                details.set_bad_request(
                    violations
                        .into_iter()
                        .map(|v| FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
            }
            Error::ResourceExhausted { retry_after, .. } => {
                details.set_retry_info(Some(retry_after));
            }
            Error::FailedPrecondition {
                violation: Some(v), ..
            } => {
                details.set_precondition_failure(vec![tonic_types::PreconditionViolation::new(
                    v.kind,
                    v.subject,
                    v.description,
                )]);
            }
            _ => {}
        }
        Status::with_error_details(code, message, details)
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        err.into_status()
    }
}

impl From<diesel::result::Error> for Error {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error as D};
        match err {
            D::NotFound => Error::NotFound("resource"),
            D::DatabaseError(Kind::ClosedConnection, _) => {
                Error::Unavailable("database connection lost")
            }
            D::DatabaseError(Kind::SerializationFailure, _) => Error::Unavailable(CONFLICT),
            D::DatabaseError(_, info) if info.message().contains("deadlock detected") => {
                Error::Unavailable(CONFLICT)
            }
            D::DatabaseError(_, info) if is_statement_timeout(info.message()) => {
                Error::DeadlineExceeded
            }
            D::DatabaseError(_, info) if is_connection_failure(info.message()) => {
                Error::Unavailable("database connection lost")
            }
            other => Error::Internal(format!("database: {other}")),
        }
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(_: diesel::r2d2::PoolError) -> Self {
        Error::Unavailable("database unreachable")
    }
}

fn is_statement_timeout(message: &str) -> bool {
    message.contains("statement timeout") || message.contains("canceling statement")
}

fn is_connection_failure(message: &str) -> bool {
    const MARKERS: [&str; 6] = [
        "server closed the connection",
        "terminating connection",
        "connection to server",
        "could not connect",
        "no connection to the server",
        "the database system is",
    ];
    MARKERS.iter().any(|m| message.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations_and_reason() {
        let status = Error::invalid("per_page", "must be between 1 and 100").into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations[0].field, "per_page");
        assert_eq!(
            details.error_info().expect("error info").reason,
            "INVALID_ARGUMENT"
        );
    }

    #[test]
    fn internal_errors_hide_their_text() {
        let status = Error::Internal("secret table xyz exploded".into()).into_status();
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
