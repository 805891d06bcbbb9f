//! The includes of a page or a point read: connected users and integrations of the given partners,
//! one query per relationship for the whole page, restricted to the business in context.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::sql::{Bind, Sql};
use crate::model::IntegrationStatus;

/// A connected user of a partner (for `include=users`).
#[derive(Debug, Clone, QueryableByName)]
pub struct PartnerUserRecord {
    #[diesel(sql_type = BigInt)]
    pub partner_id: i64,
    #[diesel(sql_type = SqlUuid)]
    pub uuid: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub business_uuid: Uuid,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// Connected users of the given partners, restricted to `business_id` when set. One query.
pub fn load_users(
    conn: &mut PgConnection,
    partner_ids: &[i64],
    business_id: Option<i64>,
) -> QueryResult<Vec<PartnerUserRecord>> {
    load_users_sql(partner_ids, business_id)
        .into_query()
        .load(conn)
}

/// The statement of [`load_users`].
pub fn load_users_sql(partner_ids: &[i64], business_id: Option<i64>) -> Sql {
    // Links carry the user's business, so a business's links of the page's partners come from
    // `partner_users_partner_business_idx` alone; then each user is looked up by primary key.
    let mut sql = Sql::new(
        "SELECT pu.partner_id, u.uuid, b.uuid AS business_uuid, u.email, u.name, u.created_at, \
         u.updated_at FROM partner_users pu JOIN users u ON u.id = pu.user_id \
         JOIN businesses b ON b.id = pu.business_id WHERE pu.partner_id = ANY(",
    );
    sql.bind(Bind::I64Array(partner_ids.to_vec())).push(")");
    if let Some(business_id) = business_id {
        sql.push(" AND pu.business_id = ")
            .bind(Bind::I64(business_id));
    }
    sql.push(" ORDER BY pu.partner_id, u.name, u.id");
    sql
}

/// An integration of a partner (for `include=partner_integrations`).
#[derive(Debug, Clone, QueryableByName)]
pub struct IntegrationRecord {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub partner_id: i64,
    #[diesel(sql_type = SqlUuid)]
    pub business_uuid: Uuid,
    #[diesel(sql_type = Text)]
    pub status: IntegrationStatus,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// Integrations of the given partners, restricted to `business_id` when set. One query.
pub fn load_integrations(
    conn: &mut PgConnection,
    partner_ids: &[i64],
    business_id: Option<i64>,
) -> QueryResult<Vec<IntegrationRecord>> {
    load_integrations_sql(partner_ids, business_id)
        .into_query()
        .load(conn)
}

/// The statement of [`load_integrations`].
pub fn load_integrations_sql(partner_ids: &[i64], business_id: Option<i64>) -> Sql {
    let mut sql = Sql::new(
        "SELECT pi.id, pi.partner_id, b.uuid AS business_uuid, pi.status, pi.created_at, \
         pi.updated_at FROM partner_integrations pi JOIN businesses b ON b.id = pi.business_id \
         WHERE pi.partner_id = ANY(",
    );
    sql.bind(Bind::I64Array(partner_ids.to_vec())).push(")");
    if let Some(business_id) = business_id {
        sql.push(" AND pi.business_id = ")
            .bind(Bind::I64(business_id));
    }
    sql.push(" ORDER BY pi.partner_id, pi.id");
    sql
}

/// Which relationships a read loads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Includes {
    /// `users`
    pub users: bool,
    /// `partner_integrations`
    pub partner_integrations: bool,
}

impl Includes {
    /// The relationship names an `include` may hold.
    pub const NAMES: [&'static str; 2] = ["users", "partner_integrations"];

    /// Marks the relationship `name`; false for a name that is not one of [`Includes::NAMES`].
    pub fn add(&mut self, name: &str) -> bool {
        match name {
            "users" => self.users = true,
            "partner_integrations" => self.partner_integrations = true,
            _ => return false,
        }
        true
    }

    /// The known relationships among `names` (unknown names are left to validation).
    pub fn from_names(names: &[String]) -> Self {
        let mut includes = Includes::default();
        for name in names {
            includes.add(name);
        }
        includes
    }

    /// Whether any relationship is wanted.
    pub fn any(self) -> bool {
        self.users || self.partner_integrations
    }
}

/// Records plus their requested relationships.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The partners, in the read's order.
    pub records: Vec<super::PartnerRecord>,
    /// Their connected users (of the business in context, if any), by partner.
    pub users: Vec<PartnerUserRecord>,
    /// Their integrations (with the business in context, if any), by partner.
    pub integrations: Vec<IntegrationRecord>,
}

/// Loads the requested relationships of `records` (one query per relationship, for the whole
/// page) on the connection that loaded them, so a read is one hand-off to the database.
pub fn with_includes(
    conn: &mut PgConnection,
    records: Vec<super::PartnerRecord>,
    business_id: Option<i64>,
    includes: Includes,
) -> QueryResult<Loaded> {
    let ids: Vec<i64> = records.iter().map(|r| r.id).collect();
    let wanted = !ids.is_empty();
    let users = if wanted && includes.users {
        load_users(conn, &ids, business_id)?
    } else {
        Vec::new()
    };
    let integrations = if wanted && includes.partner_integrations {
        load_integrations(conn, &ids, business_id)?
    } else {
        Vec::new()
    };
    Ok(Loaded {
        records,
        users,
        integrations,
    })
}
