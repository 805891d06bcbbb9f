//! The one middleware stack of the gRPC server, in the order a call passes it: the call log
//! ([`log`]), the deadline and transport statuses ([`transport_status`]), authentication
//! ([`auth`]). The same stack serves TCP clients and the in-process REST gateway.

pub mod auth;
pub mod log;
pub mod transport_status;

use std::time::Duration;

use tower::ServiceBuilder;
use tower::layer::util::{Identity, Stack};

use auth::{AuthLayer, Guard};
use log::CallLogLayer;
use transport_status::TransportStatusLayer;

/// The stack's type (outermost layer last).
pub type CallStack = Stack<AuthLayer, Stack<TransportStatusLayer, Stack<CallLogLayer, Identity>>>;

/// Builds the stack: calls end at `timeout` at the latest; keys are checked and limited by
/// `guard`.
pub fn stack(guard: Guard, timeout: Duration) -> CallStack {
    ServiceBuilder::new()
        .layer(CallLogLayer)
        .layer(TransportStatusLayer { timeout })
        .layer(AuthLayer::new(guard))
        .into_inner()
}
