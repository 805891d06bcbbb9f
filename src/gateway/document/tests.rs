//! The documents' serialisation: sorted keys, included resources once, relationship totals.

use super::*;

fn partner(id: i64, user: &str, integration: i64) -> pb::Partner {
    let ts = Some(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 5_000,
    });
    pb::Partner {
        id,
        name: format!("P\"{id}\u{e9}"),
        categories: vec!["pos".into()],
        status: pb::PartnerStatus::ComingSoon as i32,
        external_id: Some("ext".into()),
        preferred: Some(true),
        created_at: ts,
        users: vec![pb::User {
            uuid: user.into(),
            email: "a@b.example".into(),
            name: "A".into(),
            ..Default::default()
        }],
        partner_integrations: vec![pb::PartnerIntegration {
            id: integration,
            partner_id: id,
            status: pb::IntegrationStatus::Active as i32,
            created_at: ts,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The typed documents give what a `Value` object gives: the same members, keys sorted.
#[test]
fn documents_serialise_with_sorted_keys_and_included_once() {
    let partners = [partner(1, "u1", 10), partner(2, "u1", 11)];
    let meta = pb::PageMeta {
        page: 2,
        per_page: 2,
        total: Some(5),
        total_pages: Some(3),
        facets: Vec::new(),
        next_page_token: "tok".into(),
    };
    let all = Includes {
        users: true,
        partner_integrations: true,
    };
    let link = |page: PageRef<'_>| match page {
        PageRef::Number(n) | PageRef::This(n) => format!("/p?page={n}"),
        PageRef::Token(t) => format!("/p?page_token={t}"),
    };
    let text = serde_json::to_string(&list_document(&partners, &meta, all, &link)).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value.to_string(), text, "keys sorted at every level");
    assert_eq!(value["included"].as_array().unwrap().len(), 3, "u1 once");
    assert_eq!(value["links"]["prev"], "/p?page=1");
    assert_eq!(value["links"]["next"], "/p?page_token=tok");
    assert_eq!(value["links"]["last"], "/p?page=3");
    assert_eq!(value["meta"]["next_page_token"], "tok");
    assert_eq!(value["data"][0]["attributes"]["status"], "coming_soon");
    assert_eq!(value["data"][0]["attributes"]["connected"], Value::Null);
    assert_eq!(
        value["data"][1]["relationships"]["partner_integrations"]["data"][0],
        json!({"id": "11", "type": "partner_integration"})
    );
    // Without a total from the server, a relationship counts what it carries.
    assert_eq!(
        value["data"][0]["relationships"]["users"],
        json!({"data": [{"id": "u1", "type": "user"}], "links": {"related": "/api/v1/partners/1/users"},
               "meta": {"total": 1}})
    );
    let mut bounded = partner(3, "u2", 12);
    bounded.users_total = Some(142);
    let one = serde_json::to_value(partner_document(&bounded, all)).unwrap();
    assert_eq!(one["data"]["relationships"]["users"]["meta"]["total"], 142);
    assert_eq!(
        value["data"][0]["attributes"]["created_at"],
        "2023-11-14T22:13:20.000005Z"
    );

    let single = serde_json::to_value(partner_document(&partners[0], Includes::default()));
    let single = single.unwrap();
    assert!(single.get("included").is_none());
    assert!(single["data"].get("relationships").is_none());
}
