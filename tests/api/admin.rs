//! PartnerAdminService: writes, validation, permissions.

use partners::grpc::pb;
use tonic::Code;

use crate::support::*;

fn valid_partner() -> pb::Partner {
    pb::Partner {
        name: "  Full Partner  ".into(),
        description: "Everything set".into(),
        email: "hi@full.example".into(),
        logo_url: "https://full.example/logo.png".into(),
        website_url: "https://full.example".into(),
        video_url: "https://full.example/v".into(),
        categories: vec!["pos".into(), "wholesaler".into()],
        wholesaler_categories: vec!["beverages".into()],
        country_codes: vec!["de".into(), "AT".into()],
        tags: vec!["new".into()],
        status: pb::PartnerStatus::ComingSoon as i32,
        active: true,
        external_id: Some("ext-1".into()),
        metadata: Some(partners::grpc::convert::json_to_struct(
            &serde_json::json!({"tier": "gold", "seats": 3}),
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_partner_stores_every_field() {
    let t = TestApp::start().await;
    let created = t.partner(valid_partner()).await;
    assert!(created.id > 0);
    assert_eq!(created.name, "Full Partner");
    assert_eq!(created.country_codes, ["AT", "DE"]);
    assert_eq!(created.status, pb::PartnerStatus::ComingSoon as i32);
    assert_eq!(created.external_id.as_deref(), Some("ext-1"));
    assert_eq!(
        partners::grpc::convert::struct_to_json(created.metadata.as_ref().expect("metadata")),
        serde_json::json!({"tier": "gold", "seats": 3})
    );
    assert_eq!(created.stats.expect("stats").clicks, 0);
    // Defaults: status available.
    let minimal = t
        .partner(pb::Partner {
            name: "Minimal".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(minimal.status, pb::PartnerStatus::Available as i32);
    // external_id is unique.
    let dup = t
        .admin()
        .create_partner(with_key(
            pb::CreatePartnerRequest {
                request_id: String::new(),
                partner: Some(valid_partner()),
            },
            &t.world.service_key,
        ))
        .await
        .expect_err("duplicate external id");
    assert_code(&dup, Code::AlreadyExists, "EXTERNAL_ID_TAKEN");
}

#[tokio::test]
async fn create_partner_rejects_each_bad_field() {
    let t = TestApp::start().await;
    let cases: Vec<(pb::Partner, &str)> = vec![
        (
            pb::Partner {
                name: " ".into(),
                ..valid_partner()
            },
            "partner.name",
        ),
        (
            pb::Partner {
                name: "x".repeat(201),
                ..valid_partner()
            },
            "partner.name",
        ),
        (
            pb::Partner {
                description: "x".repeat(5001),
                ..valid_partner()
            },
            "partner.description",
        ),
        (
            pb::Partner {
                email: "not-an-email".into(),
                ..valid_partner()
            },
            "partner.email",
        ),
        (
            pb::Partner {
                logo_url: "ftp://x".into(),
                ..valid_partner()
            },
            "partner.logo_url",
        ),
        (
            pb::Partner {
                website_url: "javascript:alert(1)".into(),
                ..valid_partner()
            },
            "partner.website_url",
        ),
        (
            pb::Partner {
                video_url: "https://x y".into(),
                ..valid_partner()
            },
            "partner.video_url",
        ),
        (
            pb::Partner {
                categories: vec!["".into()],
                ..valid_partner()
            },
            "partner.categories",
        ),
        (
            pb::Partner {
                wholesaler_categories: vec!["x".repeat(65)],
                ..valid_partner()
            },
            "partner.wholesaler_categories",
        ),
        (
            pb::Partner {
                country_codes: vec!["Germany".into()],
                ..valid_partner()
            },
            "partner.country_codes",
        ),
        (
            pb::Partner {
                tags: (0..51).map(|i| i.to_string()).collect(),
                ..valid_partner()
            },
            "partner.tags",
        ),
        (
            pb::Partner {
                status: 9,
                ..valid_partner()
            },
            "partner.status",
        ),
        (
            pb::Partner {
                external_id: Some("x".repeat(201)),
                ..valid_partner()
            },
            "partner.external_id",
        ),
        (
            pb::Partner {
                metadata: Some(partners::grpc::convert::json_to_struct(
                    &serde_json::json!({"blob": "x".repeat(17000)}),
                )),
                ..valid_partner()
            },
            "partner.metadata",
        ),
    ];
    for (partner, field) in cases {
        let status = t
            .admin()
            .create_partner(with_key(
                pb::CreatePartnerRequest {
                    request_id: String::new(),
                    partner: Some(partner),
                },
                &t.world.service_key,
            ))
            .await
            .expect_err(field);
        assert_invalid(&status, &[field]);
    }
    let status = t
        .admin()
        .create_partner(with_key(
            pb::CreatePartnerRequest {
                partner: None,
                request_id: String::new(),
            },
            &t.world.service_key,
        ))
        .await
        .expect_err("missing partner");
    assert_invalid(&status, &["partner"]);
}

#[tokio::test]
async fn update_partner_changes_only_masked_fields() {
    let t = TestApp::start().await;
    let created = t.partner(valid_partner()).await;
    let update = |partner: pb::Partner, paths: &[&str]| {
        let mut admin = t.admin();
        let req = pb::UpdatePartnerRequest {
            partner: Some(partner),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| p.to_string()).collect(),
            }),
        };
        let key = t.world.service_key.clone();
        async move {
            admin
                .update_partner(with_key(req, &key))
                .await
                .map(|r| r.into_inner())
        }
    };
    let changed = update(
        pb::Partner {
            id: created.id,
            name: "Renamed".into(),
            active: false,
            email: "ignored@x.example".into(),
            external_id: None,
            ..Default::default()
        },
        &["name", "active", "external_id"],
    )
    .await
    .expect("update");
    assert_eq!(changed.name, "Renamed");
    assert!(!changed.active);
    assert_eq!(changed.external_id, None);
    assert_eq!(changed.email, "hi@full.example", "unmasked field kept");
    assert_eq!(changed.categories, created.categories);

    let status = update(
        pb::Partner {
            id: created.id,
            ..Default::default()
        },
        &[],
    )
    .await
    .expect_err("empty mask");
    assert_invalid(&status, &["update_mask"]);
    let status = update(
        pb::Partner {
            id: created.id,
            ..Default::default()
        },
        &["clicks"],
    )
    .await
    .expect_err("bad path");
    assert_invalid(&status, &["update_mask"]);
    let status = update(
        pb::Partner {
            id: created.id,
            ..Default::default()
        },
        &["status"],
    )
    .await
    .expect_err("status");
    assert_invalid(&status, &["partner.status"]);
    let status = update(
        pb::Partner {
            id: 0,
            ..Default::default()
        },
        &["name"],
    )
    .await
    .expect_err("id");
    assert_invalid(&status, &["partner.id", "partner.name"]);
    let status = update(
        pb::Partner {
            id: created.id + 9,
            name: "X".into(),
            ..Default::default()
        },
        &["name"],
    )
    .await
    .expect_err("missing");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
}

#[tokio::test]
async fn delete_partner_hides_it_everywhere() {
    let t = TestApp::start().await;
    let p = t.simple_partner("Doomed", &["wholesaler"]).await;
    t.simple_partner("Stays", &["wholesaler"]).await;
    t.admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id: p.id },
            &t.world.service_key,
        ))
        .await
        .expect("delete");
    let lists = t
        .client()
        .list_wholesalers(with_key(
            pb::ListWholesalersRequest::default(),
            &t.world.user_key_a,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(names(&lists.partners), ["Stays"]);
    let again = t
        .admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id: p.id },
            &t.world.service_key,
        ))
        .await
        .expect_err("twice");
    assert_code(&again, Code::NotFound, "NOT_FOUND");
    let click = t
        .client()
        .create_partner_click_event(with_key(
            pb::CreatePartnerClickEventRequest {
                id: p.id,
                event_type: pb::EventType::Website as i32,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect_err("click on deleted");
    assert_code(&click, Code::NotFound, "NOT_FOUND");
    let status = t
        .admin()
        .delete_partner(with_key(
            pb::DeletePartnerRequest { id: 0 },
            &t.world.service_key,
        ))
        .await
        .expect_err("bad id");
    assert_invalid(&status, &["id"]);
    assert_eq!(
        t.count("SELECT count(*) AS n FROM partners WHERE deleted_at IS NOT NULL"),
        1
    );
}

#[tokio::test]
async fn businesses_users_integrations_and_preferences() {
    let t = TestApp::start().await;
    let key = t.world.service_key.clone();
    let business = uuid::Uuid::new_v4();
    let b = t
        .admin()
        .upsert_business(with_key(
            pb::UpsertBusinessRequest {
                uuid: business.to_string(),
                name: "Gamma".into(),
                country_code: "fr".into(),
            },
            &key,
        ))
        .await
        .expect("business")
        .into_inner();
    assert_eq!((b.name.as_str(), b.country_code.as_str()), ("Gamma", "FR"));
    let b = t
        .admin()
        .upsert_business(with_key(
            pb::UpsertBusinessRequest {
                uuid: business.to_string(),
                name: "Gamma 2".into(),
                country_code: "".into(),
            },
            &key,
        ))
        .await
        .expect("update business")
        .into_inner();
    assert_eq!((b.name.as_str(), b.country_code.as_str()), ("Gamma 2", ""));
    for (req, fields) in [
        (
            pb::UpsertBusinessRequest {
                uuid: "".into(),
                name: "x".into(),
                country_code: "".into(),
            },
            vec!["uuid"],
        ),
        (
            pb::UpsertBusinessRequest {
                uuid: business.to_string(),
                name: "".into(),
                country_code: "FRA".into(),
            },
            vec!["name", "country_code"],
        ),
    ] {
        let status = t
            .admin()
            .upsert_business(with_key(req, &key))
            .await
            .expect_err("invalid");
        assert_invalid(&status, &fields);
    }

    let user = uuid::Uuid::new_v4();
    let u = t
        .admin()
        .upsert_user(with_key(
            pb::UpsertUserRequest {
                uuid: user.to_string(),
                business_uuid: business.to_string(),
                email: "g@gamma.example".into(),
                name: "Gil".into(),
            },
            &key,
        ))
        .await
        .expect("user")
        .into_inner();
    assert_eq!(u.business_uuid, business.to_string());
    let status = t
        .admin()
        .upsert_user(with_key(
            pb::UpsertUserRequest {
                uuid: user.to_string(),
                business_uuid: uuid::Uuid::new_v4().to_string(),
                email: "g@gamma.example".into(),
                name: "Gil".into(),
            },
            &key,
        ))
        .await
        .expect_err("unknown business");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
    let status = t
        .admin()
        .upsert_user(with_key(
            pb::UpsertUserRequest {
                uuid: "u".into(),
                business_uuid: "".into(),
                email: "nope".into(),
                name: "".into(),
            },
            &key,
        ))
        .await
        .expect_err("invalid user");
    assert_invalid(&status, &["uuid", "business_uuid", "email", "name"]);

    let p = t.simple_partner("Integrated", &["pos"]).await;
    let integration = t
        .admin()
        .set_partner_integration(with_key(
            pb::SetPartnerIntegrationRequest {
                partner_id: p.id,
                business_uuid: business.to_string(),
                status: pb::IntegrationStatus::Inactive as i32,
            },
            &key,
        ))
        .await
        .expect("integration")
        .into_inner();
    assert_eq!(integration.status, pb::IntegrationStatus::Inactive as i32);
    for (req, code) in [
        (
            pb::SetPartnerIntegrationRequest {
                partner_id: p.id + 5,
                business_uuid: business.to_string(),
                status: 1,
            },
            Code::NotFound,
        ),
        (
            pb::SetPartnerIntegrationRequest {
                partner_id: p.id,
                business_uuid: uuid::Uuid::new_v4().to_string(),
                status: 1,
            },
            Code::NotFound,
        ),
        (
            pb::SetPartnerIntegrationRequest {
                partner_id: 0,
                business_uuid: "x".into(),
                status: 0,
            },
            Code::InvalidArgument,
        ),
    ] {
        let status = t
            .admin()
            .set_partner_integration(with_key(req, &key))
            .await
            .expect_err("integration error");
        assert_eq!(status.code(), code);
    }
    let status = t
        .admin()
        .set_partner_integration(with_key(
            pb::SetPartnerIntegrationRequest {
                partner_id: 0,
                business_uuid: "x".into(),
                status: 0,
            },
            &key,
        ))
        .await
        .expect_err("invalid");
    assert_invalid(&status, &["partner_id", "business_uuid", "status"]);

    let pref = |preferred: bool| pb::SetPartnerPreferenceRequest {
        partner_id: p.id,
        business_uuid: business.to_string(),
        preferred,
    };
    assert!(
        t.admin()
            .set_partner_preference(with_key(pref(true), &key))
            .await
            .expect("prefer")
            .into_inner()
            .preferred
    );
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_preferences"), 1);
    assert!(
        !t.admin()
            .set_partner_preference(with_key(pref(false), &key))
            .await
            .expect("unprefer")
            .into_inner()
            .preferred
    );
    assert_eq!(t.count("SELECT count(*) AS n FROM partner_preferences"), 0);
    let status = t
        .admin()
        .set_partner_preference(with_key(
            pb::SetPartnerPreferenceRequest {
                partner_id: -3,
                business_uuid: "".into(),
                preferred: true,
            },
            &key,
        ))
        .await
        .expect_err("invalid");
    assert_invalid(&status, &["partner_id", "business_uuid"]);
    let status = t
        .admin()
        .set_partner_preference(with_key(
            pb::SetPartnerPreferenceRequest {
                partner_id: p.id + 7,
                ..pref(true)
            },
            &key,
        ))
        .await
        .expect_err("missing partner");
    assert_code(&status, Code::NotFound, "NOT_FOUND");
}

#[tokio::test]
async fn admin_rpcs_refuse_user_keys() {
    let t = TestApp::start().await;
    let key = t.world.user_key_a.clone();
    let mut admin = t.admin();
    let denied = [
        admin
            .create_partner(with_key(
                pb::CreatePartnerRequest {
                    request_id: String::new(),
                    partner: Some(valid_partner()),
                },
                &key,
            ))
            .await
            .map(|_| ()),
        admin
            .update_partner(with_key(pb::UpdatePartnerRequest::default(), &key))
            .await
            .map(|_| ()),
        admin
            .delete_partner(with_key(pb::DeletePartnerRequest { id: 1 }, &key))
            .await
            .map(|_| ()),
        admin
            .upsert_business(with_key(pb::UpsertBusinessRequest::default(), &key))
            .await
            .map(|_| ()),
        admin
            .upsert_user(with_key(pb::UpsertUserRequest::default(), &key))
            .await
            .map(|_| ()),
        admin
            .set_partner_integration(with_key(pb::SetPartnerIntegrationRequest::default(), &key))
            .await
            .map(|_| ()),
        admin
            .set_partner_preference(with_key(pb::SetPartnerPreferenceRequest::default(), &key))
            .await
            .map(|_| ()),
    ];
    for result in denied {
        assert_code(
            &result.expect_err("user key"),
            Code::PermissionDenied,
            "PERMISSION_DENIED",
        );
    }
    assert_eq!(t.count("SELECT count(*) AS n FROM partners"), 0);
}
