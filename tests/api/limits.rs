//! Per-key rate limiting over gRPC and REST.

use partners::config::ServerLimits;
use partners::grpc::pb;
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::*;

#[tokio::test]
async fn keys_over_their_rate_get_resource_exhausted_and_429_with_retry_after() {
    let limits = ServerLimits {
        rate_limit_per_second: 1,
        rate_limit_burst: 3,
        ..ServerLimits::default()
    };
    let t = TestApp::start_with(limits).await;
    let call = || {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        async move {
            client
                .list_wholesalers(with_key(pb::ListWholesalersRequest::default(), &key))
                .await
        }
    };
    for _ in 0..3 {
        call().await.expect("within burst");
    }
    let status = call().await.expect_err("over the limit");
    assert_code(&status, Code::ResourceExhausted, "RESOURCE_EXHAUSTED");
    assert!(
        status.get_error_details().retry_info().is_some(),
        "RetryInfo tells when to retry"
    );
    // Other keys are not affected; REST shares the key's bucket and answers 429 + Retry-After.
    t.client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest::default(),
            &t.world.user_key_b,
        ))
        .await
        .expect("another key");
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/partners/wholesalers", t.http()))
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("http");
    assert_eq!(response.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=2).contains(&retry_after));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "RESOURCE_EXHAUSTED");
}
