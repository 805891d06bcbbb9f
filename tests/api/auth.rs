//! API keys: every failure is the same UNAUTHENTICATED; revocation is honoured within the cache TTL.

use partners::config::ServerLimits;
use partners::grpc::pb;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Status};

use crate::support::*;

async fn every_rpc(t: &TestApp, auth: Option<&str>) -> Vec<Result<(), Status>> {
    fn req<T>(message: T, auth: Option<&str>) -> Request<T> {
        let mut r = Request::new(message);
        if let Some(value) = auth {
            r.metadata_mut().insert(
                "authorization",
                MetadataValue::try_from(value).expect("ascii"),
            );
        }
        r
    }
    let (mut c, mut a) = (t.client(), t.admin());
    vec![
        c.list_partners(req(pb::ListPartnersRequest::default(), auth))
            .await
            .map(|_| ()),
        c.list_available_partners(req(pb::ListAvailablePartnersRequest::default(), auth))
            .await
            .map(|_| ()),
        c.list_wholesalers(req(pb::ListWholesalersRequest::default(), auth))
            .await
            .map(|_| ()),
        c.get_partner(req(
            pb::GetPartnerRequest {
                id: 1,
                ..Default::default()
            },
            auth,
        ))
        .await
        .map(|_| ()),
        c.create_partner_click_event(req(
            pb::CreatePartnerClickEventRequest {
                id: 1,
                event_type: 1,
                ..Default::default()
            },
            auth,
        ))
        .await
        .map(|_| ()),
        c.connect_user(req(pb::ConnectUserRequest { id: 1 }, auth))
            .await
            .map(|_| ()),
        c.disconnect_user(req(pb::DisconnectUserRequest { id: 1 }, auth))
            .await
            .map(|_| ()),
        a.create_partner(req(pb::CreatePartnerRequest::default(), auth))
            .await
            .map(|_| ()),
        a.update_partner(req(pb::UpdatePartnerRequest::default(), auth))
            .await
            .map(|_| ()),
        a.delete_partner(req(pb::DeletePartnerRequest { id: 1 }, auth))
            .await
            .map(|_| ()),
        a.upsert_business(req(pb::UpsertBusinessRequest::default(), auth))
            .await
            .map(|_| ()),
        a.upsert_user(req(pb::UpsertUserRequest::default(), auth))
            .await
            .map(|_| ()),
        a.set_partner_integration(req(pb::SetPartnerIntegrationRequest::default(), auth))
            .await
            .map(|_| ()),
        a.set_partner_preference(req(pb::SetPartnerPreferenceRequest::default(), auth))
            .await
            .map(|_| ()),
    ]
}

#[tokio::test]
async fn bad_keys_get_the_same_unauthenticated_on_every_rpc() {
    let t = TestApp::start().await;
    let real = t.world.service_key.clone();
    let (prefix, _) = partners::auth::parse_key(&real).expect("parse");
    let wrong_secret = format!("pk_{prefix}_{}", "0".repeat(48));
    let unknown = format!("pk_{}_{}", "a".repeat(12), "b".repeat(48));
    let bad: Vec<Option<String>> = vec![
        None,
        Some("".into()),
        Some("Bearer".into()),
        Some(format!("Basic {real}")),
        Some("Bearer not-a-key".into()),
        Some(format!("Bearer {wrong_secret}")),
        Some(format!("Bearer {unknown}")),
    ];
    let mut messages = std::collections::HashSet::new();
    for auth in &bad {
        for result in every_rpc(&t, auth.as_deref()).await {
            let status = result.expect_err("must be refused");
            assert_code(&status, Code::Unauthenticated, "UNAUTHENTICATED");
            messages.insert(status.message().to_owned());
        }
    }
    assert_eq!(
        messages.len(),
        1,
        "one message for every failure: {messages:?}"
    );
    assert_eq!(t.count("SELECT count(*) AS n FROM partners"), 0);
}

#[tokio::test]
async fn revoked_keys_stop_working_within_the_cache_ttl() {
    let limits = ServerLimits {
        key_cache_ttl_ms: 200,
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
    call().await.expect("valid key works");
    let (prefix, _) = partners::auth::parse_key(&t.world.user_key_a).expect("parse");
    let mut conn = t.db.conn();
    assert!(partners::model::api_key::revoke(&mut conn, prefix).expect("revoke"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let status = call().await.expect_err("revoked");
    assert_code(&status, Code::Unauthenticated, "UNAUTHENTICATED");
}

#[tokio::test]
async fn keys_are_stored_as_hashes_only() {
    let t = TestApp::start().await;
    let (_, secret) = partners::auth::parse_key(&t.world.service_key).expect("parse");
    let leaked = t.count(&format!(
        "SELECT count(*) AS n FROM api_keys WHERE encode(secret_hash, 'hex') LIKE '%{secret}%' OR name LIKE '%{secret}%'"
    ));
    assert_eq!(leaked, 0);
    assert_eq!(
        t.count("SELECT count(*) AS n FROM api_keys WHERE length(secret_hash) = 32"),
        4
    );
}

#[tokio::test]
async fn x_user_uuid_must_be_a_known_uuid() {
    let t = TestApp::start().await;
    let mut req = with_key(pb::ListWholesalersRequest::default(), &t.world.service_key);
    req.metadata_mut()
        .insert("x-user-uuid", MetadataValue::from_static("nope"));
    let status = t
        .client()
        .list_wholesalers(req)
        .await
        .expect_err("malformed");
    assert_invalid(&status, &["x-user-uuid"]);
    let status = t
        .client()
        .list_wholesalers(as_user(
            pb::ListWholesalersRequest::default(),
            &t.world.service_key,
            uuid::Uuid::new_v4(),
        ))
        .await
        .expect_err("unknown");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
    // Acting for a user brings the user's business into context.
    let p = t.simple_partner("Seen", &["wholesaler"]).await;
    t.prefer(t.world.business_b, p.id).await;
    let page = t
        .client()
        .list_wholesalers(as_user(
            pb::ListWholesalersRequest::default(),
            &t.world.service_key,
            t.world.user_b,
        ))
        .await
        .expect("as user b")
        .into_inner();
    assert_eq!(page.partners[0].preferred, Some(true));
    assert_eq!(page.partners[0].connected, Some(false));
}
