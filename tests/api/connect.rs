//! ConnectUser and DisconnectUser.

use partners::grpc::pb;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn connect_and_disconnect_are_idempotent_and_counted() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Linkable", &["pos"]).await;
    for _ in 0..2 {
        let got = t.connect(&t.world.user_key_a, p.id).await;
        assert_eq!(got.connected, Some(true));
        assert_eq!(got.stats.expect("stats").users_count, 1);
    }
    let got = t.connect(&t.world.user_key_b, p.id).await;
    assert_eq!(got.stats.expect("stats").users_count, 2);
    for _ in 0..2 {
        let got = t
            .client()
            .disconnect_user(with_key(
                pb::DisconnectUserRequest { id: p.id },
                &t.world.user_key_a,
            ))
            .await
            .expect("disconnect")
            .into_inner();
        assert_eq!(got.connected, Some(false));
        assert_eq!(got.stats.expect("stats").users_count, 1);
    }
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_users"), 1);
}

#[tokio::test]
async fn connecting_needs_a_user_and_a_live_partner() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Linkable", &["pos"]).await;
    let status = t
        .client()
        .connect_user(with_key(
            pb::ConnectUserRequest { id: p.id },
            &t.world.service_key,
        ))
        .await
        .expect_err("no user");
    assert_code(&status, Code::FailedPrecondition, "USER_REQUIRED");
    let got = t
        .client()
        .connect_user(as_user(
            pb::ConnectUserRequest { id: p.id },
            &t.world.service_key,
            t.world.user_b,
        ))
        .await
        .expect("as user")
        .into_inner();
    assert_eq!(got.connected, Some(true));
    let status = t
        .client()
        .connect_user(as_user(
            pb::ConnectUserRequest { id: p.id },
            &t.world.service_key,
            uuid::Uuid::new_v4(),
        ))
        .await
        .expect_err("unknown user");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
    let status = t
        .client()
        .connect_user(with_key(
            pb::ConnectUserRequest { id: p.id + 50 },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("missing partner");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
    let status = t
        .client()
        .disconnect_user(with_key(
            pb::DisconnectUserRequest { id: p.id + 50 },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("missing partner");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
    let status = t
        .client()
        .connect_user(with_key(
            pb::ConnectUserRequest { id: -1 },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("bad id");
    assert_invalid(&status, &["id"]);
    let status = t
        .client()
        .disconnect_user(with_key(
            pb::DisconnectUserRequest { id: 0 },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("bad id");
    assert_invalid(&status, &["id"]);
}
