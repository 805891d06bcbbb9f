//! The HTTP conventions of the REST gateway over real HTTP: CORS for the configured origins
//! (preflight and actual requests), compression negotiated by `Accept-Encoding`, strong ETags
//! with `If-None-Match` → 304, and `WWW-Authenticate` on 401.

use partners::config::ServerLimits;
use partners::grpc::pb;
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

use crate::support::*;

const APP: &str = "https://app.example";

async fn app() -> TestApp {
    TestApp::start_with(ServerLimits {
        cors_allowed_origins: vec![APP.to_owned()],
        ..ServerLimits::default()
    })
    .await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn cors_answers_preflights_and_marks_answers_for_allowed_origins_only() {
    let t = app().await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/partners", t.http());
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header(header::ORIGIN, APP)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "authorization, idempotency-key, content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert_eq!(preflight.status(), StatusCode::OK);
    let h = preflight.headers();
    assert_eq!(header(h, "access-control-allow-origin"), APP);
    let allowed = header(h, "access-control-allow-headers").to_ascii_lowercase();
    for name in ["authorization", "idempotency-key", "x-request-id"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(header(h, "access-control-allow-methods").contains("POST"));

    let actual = http
        .get(&url)
        .header(header::ORIGIN, APP)
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("get");
    assert_eq!(actual.status(), StatusCode::OK);
    assert_eq!(header(actual.headers(), "access-control-allow-origin"), APP);
    let exposed = header(actual.headers(), "access-control-expose-headers").to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id")
            && exposed.contains("location")
            && exposed.contains("ratelimit-remaining"),
        "{exposed}"
    );

    let other = http
        .get(&url)
        .header(header::ORIGIN, "https://elsewhere.example")
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("get");
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // Without configured origins there is no CORS at all.
    let plain = TestApp::start().await;
    let answer = http
        .get(format!("{}/api/v1/partners", plain.http()))
        .header(header::ORIGIN, APP)
        .bearer_auth(&plain.world.user_key_a)
        .send()
        .await
        .expect("get");
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn large_answers_are_compressed_when_the_client_accepts_it() {
    let t = app().await;
    for i in 0..12 {
        t.simple_partner(&format!("Compressible Partner {i}"), &["pos"])
            .await;
    }
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/partners?per_page=50", t.http());
    let get = |encoding: &'static str| {
        http.get(&url)
            .bearer_auth(&t.world.user_key_a)
            .header(header::ACCEPT_ENCODING, encoding)
            .send()
    };
    let identity = get("identity").await.expect("get");
    assert!(identity.headers().get(header::CONTENT_ENCODING).is_none());
    let plain = identity.bytes().await.expect("body");
    assert!(
        plain.len() > 1024,
        "a body worth compressing: {}",
        plain.len()
    );
    for (encoding, magic) in [("gzip", &[0x1f, 0x8b][..]), ("br", &[][..])] {
        let answer = get(encoding).await.expect("get");
        assert_eq!(header(answer.headers(), "content-encoding"), encoding);
        let body = answer.bytes().await.expect("body");
        assert!(body.starts_with(magic), "{encoding}");
        assert!(
            body.len() < plain.len() / 2,
            "{encoding}: {} of {}",
            body.len(),
            plain.len()
        );
    }
    // A small answer goes as it is.
    let small = http
        .get(format!("{}/healthz", t.http()))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .expect("healthz");
    assert!(small.headers().get(header::CONTENT_ENCODING).is_none());
}

#[tokio::test]
async fn gets_carry_a_strong_etag_and_revalidate_with_304() {
    let t = app().await;
    let p = t.simple_partner("Tagged", &["pos"]).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/partners/{}", t.http(), p.id);
    let first = http
        .get(&url)
        .bearer_auth(&t.world.user_key_a)
        .send()
        .await
        .expect("get");
    assert_eq!(first.status(), StatusCode::OK);
    let tag = header(first.headers(), "etag").to_owned();
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() > 2,
        "{tag}"
    );
    assert_eq!(
        header(first.headers(), "cache-control"),
        "private, no-cache"
    );
    let revalidate = || {
        http.get(&url)
            .bearer_auth(&t.world.user_key_a)
            .header(header::IF_NONE_MATCH, &tag)
            .send()
    };
    let unchanged = revalidate().await.expect("get");
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(unchanged.headers(), "etag"), tag);
    assert!(unchanged.bytes().await.expect("body").is_empty());

    t.rename(p.id, "Tagged Anew").await;
    let changed = revalidate().await.expect("get");
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(header(changed.headers(), "etag"), tag);
}

#[tokio::test]
async fn unauthenticated_answers_name_the_bearer_scheme() {
    let t = app().await;
    let answer = reqwest::Client::new()
        .get(format!("{}/api/v1/partners", t.http()))
        .send()
        .await
        .expect("get");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(header(answer.headers(), "www-authenticate").starts_with("Bearer"));
}

#[tokio::test]
async fn grpc_answers_compressed_when_the_client_asks() {
    use tonic::codec::CompressionEncoding;
    let t = TestApp::start().await;
    let p = t.simple_partner("Squeezed", &["pos"]).await;
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let mut client = t
            .client()
            .send_compressed(encoding)
            .accept_compressed(encoding);
        let answer = client
            .get_partner(with_key(
                pb::GetPartnerRequest {
                    id: p.id,
                    ..Default::default()
                },
                &t.world.user_key_a,
            ))
            .await
            .expect("compressed call");
        let used = answer
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(used, encoding.to_string(), "{encoding:?}");
        assert_eq!(answer.into_inner().name, "Squeezed");
    }
}
