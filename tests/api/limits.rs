//! Per-key rate limiting over gRPC and REST, and the `RateLimit-*` fields that tell a key where
//! it stands.

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
    let field = |metadata: &tonic::metadata::MetadataMap, name: &str| -> u64 {
        metadata
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metadata:?}"))
    };
    for remaining in [2, 1, 0] {
        let answer = call().await.expect("within burst");
        let metadata = answer.metadata();
        assert_eq!(field(metadata, "ratelimit-limit"), 3);
        assert_eq!(field(metadata, "ratelimit-remaining"), remaining);
        // Full again after one second per call taken (a second may pass between calls).
        let reset = field(metadata, "ratelimit-reset");
        assert!(
            (3 - remaining - 1..=3 - remaining).contains(&reset),
            "{reset}"
        );
    }
    let status = call().await.expect_err("over the limit");
    assert_code(&status, Code::ResourceExhausted, "RESOURCE_EXHAUSTED");
    assert_eq!(field(status.metadata(), "ratelimit-remaining"), 0);
    assert_eq!(field(status.metadata(), "ratelimit-limit"), 3);
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
    let header = |response: &reqwest::Response, name: &str| -> u64 {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {:?}", response.headers()))
    };
    assert_eq!(header(&response, "ratelimit-limit"), 3);
    assert_eq!(header(&response, "ratelimit-remaining"), 0);
    assert!((2..=3).contains(&header(&response, "ratelimit-reset")));
    // A served REST call tells the same (key b took one call over gRPC above).
    let served = reqwest::Client::new()
        .get(format!("{}/api/v1/partners/wholesalers", t.http()))
        .bearer_auth(&t.world.user_key_b)
        .send()
        .await
        .expect("http");
    assert_eq!(served.status(), reqwest::StatusCode::OK);
    assert_eq!(header(&served, "ratelimit-limit"), 3);
    assert_eq!(header(&served, "ratelimit-remaining"), 1);
    assert!((1..=2).contains(&header(&served, "ratelimit-reset")));
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["errors"][0]["code"], "RESOURCE_EXHAUSTED");
}
