//! Bulk changes (issue 22, part 6): BatchUpdatePartners and BatchModifyPartners, all or nothing,
//! over gRPC and REST, with one change event per partner.

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

use crate::support::*;

/// One REST call with a JSON body (or none): status and JSON answer (`Value::Null` when empty).
pub async fn rest(
    t: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Client::new()
        .request(method, format!("{}{path}", t.http()))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("http call");
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}
