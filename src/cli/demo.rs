//! `partners seed-demo`: a small, idempotent demo data set in which every filter shows something,
//! plus a fresh service key and user key for trying the API.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use partners::auth;
use partners::db::schema::partners as partner_rows;
use partners::error::Result;
use partners::model::click_event::{self, NewClickEvent};
use partners::model::partner::NewPartner;
use partners::model::{EventType, IntegrationStatus, PartnerStatus, business, relation};

/// The demo business of the printed user key.
pub const DEMO_BUSINESS: Uuid = Uuid::from_u128(0x0b0b_0001_0000_4000_8000_0000_0000_0001);
/// A second business, to show isolation.
pub const OTHER_BUSINESS: Uuid = Uuid::from_u128(0x0b0b_0002_0000_4000_8000_0000_0000_0002);
/// The demo user (of [`DEMO_BUSINESS`]).
pub const DEMO_USER: Uuid = Uuid::from_u128(0x0a0a_0001_0000_4000_8000_0000_0000_0001);

/// What `seed-demo` prints.
#[derive(Debug, Clone)]
pub struct DemoKeys {
    pub service_key: String,
    pub user_key: String,
    pub business_uuid: Uuid,
    pub partner_ids: Vec<i64>,
}

struct DemoPartner {
    external_id: &'static str,
    name: &'static str,
    categories: &'static [&'static str],
    wholesaler_categories: &'static [&'static str],
    countries: &'static [&'static str],
    status: PartnerStatus,
    active: bool,
}

const PARTNERS: &[DemoPartner] = &[
    DemoPartner {
        external_id: "demo-cashflow",
        name: "CashFlow POS",
        categories: &["pos"],
        wholesaler_categories: &[],
        countries: &["DE", "AT"],
        status: PartnerStatus::Available,
        active: true,
    },
    DemoPartner {
        external_id: "demo-ledgerly",
        name: "Ledgerly",
        categories: &["accounting"],
        wholesaler_categories: &[],
        countries: &["DE", "GB"],
        status: PartnerStatus::Available,
        active: true,
    },
    DemoPartner {
        external_id: "demo-paynow",
        name: "PayNow",
        categories: &["payments", "pos"],
        wholesaler_categories: &[],
        countries: &["GB", "FR"],
        status: PartnerStatus::Available,
        active: true,
    },
    DemoPartner {
        external_id: "demo-fastfood-delivery",
        name: "FastFood Delivery",
        categories: &["delivery"],
        wholesaler_categories: &[],
        countries: &["DE"],
        status: PartnerStatus::ComingSoon,
        active: true,
    },
    DemoPartner {
        external_id: "demo-metro-drinks",
        name: "Metro Drinks",
        categories: &["wholesaler"],
        wholesaler_categories: &["beverages"],
        countries: &["DE", "AT"],
        status: PartnerStatus::Available,
        active: true,
    },
    DemoPartner {
        external_id: "demo-green-produce",
        name: "Green Produce Co",
        categories: &["wholesaler", "delivery"],
        wholesaler_categories: &["produce", "dairy"],
        countries: &["DE"],
        status: PartnerStatus::Available,
        active: true,
    },
    DemoPartner {
        external_id: "demo-bakery-supply",
        name: "Bakery Supply 100%",
        categories: &["wholesaler"],
        wholesaler_categories: &["bakery"],
        countries: &["FR"],
        status: PartnerStatus::ComingSoon,
        active: true,
    },
    DemoPartner {
        external_id: "demo-taxmate",
        name: "TaxMate",
        categories: &["accounting"],
        wholesaler_categories: &[],
        countries: &["AT"],
        status: PartnerStatus::Unavailable,
        active: true,
    },
    DemoPartner {
        external_id: "demo-oldpos",
        name: "OldPOS Classic",
        categories: &["pos"],
        wholesaler_categories: &[],
        countries: &["DE"],
        status: PartnerStatus::Available,
        active: false,
    },
    DemoPartner {
        external_id: "demo-reserve-it",
        name: "Reserve_It",
        categories: &["reservations"],
        wholesaler_categories: &[],
        countries: &["GB", "DE"],
        status: PartnerStatus::Available,
        active: true,
    },
    DemoPartner {
        external_id: "demo-staffplan",
        name: "StaffPlan",
        categories: &["scheduling"],
        wholesaler_categories: &[],
        countries: &["DE", "GB", "FR"],
        status: PartnerStatus::ComingSoon,
        active: true,
    },
    DemoPartner {
        external_id: "demo-wine-direct",
        name: "Wine Direct",
        categories: &["wholesaler"],
        wholesaler_categories: &["beverages", "wine"],
        countries: &["FR", "DE"],
        status: PartnerStatus::Available,
        active: false,
    },
];

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| (*s).to_owned()).collect()
}

fn upsert_partner(conn: &mut PgConnection, p: &DemoPartner) -> QueryResult<i64> {
    let slug = p.external_id.trim_start_matches("demo-");
    let new = NewPartner {
        name: p.name.to_owned(),
        description: format!("{} — demo partner.", p.name),
        email: format!("hello@{slug}.example"),
        logo_url: format!("https://{slug}.example/logo.png"),
        website_url: format!("https://{slug}.example"),
        video_url: format!("https://video.example/{slug}"),
        categories: strings(p.categories),
        wholesaler_categories: strings(p.wholesaler_categories),
        country_codes: strings(p.countries),
        tags: vec!["demo".to_owned()],
        status: p.status,
        active: p.active,
        external_id: Some(p.external_id.to_owned()),
        metadata: serde_json::json!({"source": "seed-demo"}),
    };
    let inserted: Option<i64> = diesel::insert_into(partner_rows::table)
        .values(&new)
        .on_conflict(partner_rows::external_id)
        .do_nothing()
        .returning(partner_rows::id)
        .get_result(conn)
        .optional()?;
    match inserted {
        Some(id) => Ok(id),
        None => partner_rows::table
            .filter(partner_rows::external_id.eq(p.external_id))
            .select(partner_rows::id)
            .first(conn),
    }
}

/// `partners seed-demo`: migrates, loads the demo data and prints the keys as shell assignments.
pub fn run(config: &partners::config::DbConfig) -> Result<()> {
    super::prepare_database(config)?;
    let keys = seed(&mut super::connect(config)?)?;
    println!("service_key={}", keys.service_key);
    println!("user_key={}", keys.user_key);
    println!("business_uuid={}", keys.business_uuid);
    if let Some(id) = keys.partner_ids.first() {
        println!("partner_id={id}");
    }
    Ok(())
}

/// Loads the demo data (idempotent) and creates a new service key and user key.
pub fn seed(conn: &mut PgConnection) -> Result<DemoKeys> {
    conn.transaction(|conn| {
        let demo = business::upsert(conn, DEMO_BUSINESS, "Acme Bistro GmbH", Some("DE"))?;
        let other = business::upsert(conn, OTHER_BUSINESS, "Rival Diner Ltd", Some("GB"))?;
        let user = business::upsert_user(conn, DEMO_USER, demo.id, "ada@acme.example", "Ada Demo")?;
        let colleague = business::upsert_user(
            conn,
            Uuid::from_u128(0x0a0a_0002_0000_4000_8000_0000_0000_0002),
            demo.id,
            "bob@acme.example",
            "Bob Demo",
        )?;
        let rival = business::upsert_user(
            conn,
            Uuid::from_u128(0x0a0a_0003_0000_4000_8000_0000_0000_0003),
            other.id,
            "eve@rival.example",
            "Eve Rival",
        )?;

        let mut ids = Vec::new();
        for p in PARTNERS {
            ids.push(upsert_partner(conn, p)?);
        }
        relation::set_integration(conn, demo.id, ids[0], IntegrationStatus::Active)?;
        relation::set_integration(conn, demo.id, ids[1], IntegrationStatus::Pending)?;
        relation::set_integration(conn, other.id, ids[0], IntegrationStatus::Failed)?;
        relation::set_preference(conn, demo.id, ids[1], true)?;
        relation::set_preference(conn, demo.id, ids[4], true)?;
        relation::set_preference(conn, other.id, ids[2], true)?;
        relation::connect(conn, ids[0], user.id)?;
        relation::connect(conn, ids[0], colleague.id)?;
        relation::connect(conn, ids[0], rival.id)?;
        relation::connect(conn, ids[4], user.id)?;

        let clicks: Vec<NewClickEvent> = [
            (0, EventType::Website),
            (0, EventType::Website),
            (0, EventType::Video),
            (4, EventType::Website),
        ]
        .iter()
        .enumerate()
        .map(|(n, (i, kind))| NewClickEvent {
            partner_id: ids[*i],
            user_id: Some(user.id),
            business_id: Some(demo.id),
            event_type: *kind,
            principal: "service:seed-demo".to_owned(),
            idempotency_key: Some(format!("seed-demo-{n}")),
            fingerprint: format!("seed-demo-{n}"),
        })
        .collect();
        click_event::insert_batch(conn, &clicks)?;

        Ok(DemoKeys {
            service_key: auth::create_key(conn, None, "seed-demo")?,
            user_key: auth::create_key(conn, Some(user.id), "seed-demo user")?,
            business_uuid: DEMO_BUSINESS,
            partner_ids: ids,
        })
    })
}
