//! The includes of a page or a point read: connected users and integrations of the given partners,
//! one query per relationship for the whole page, restricted to the business in context, at most
//! [`MAX_INCLUDED_PER_PARTNER`] per partner (a window function bounds them), each row carrying
//! its relationship's total; and the paged users of one partner (ListPartnerUsers).

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::db::sql::{Bind, Sql};
use crate::model::IntegrationStatus;

/// Most related resources of one relationship an include carries per partner; the relationship's
/// total comes with them, and ListPartnerUsers pages through the rest.
pub const MAX_INCLUDED_PER_PARTNER: i64 = 20;

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
    /// How many users the partner's relationship holds in all (the include carries at most
    /// [`MAX_INCLUDED_PER_PARTNER`]).
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

/// Connected users of the given partners, restricted to `business_id` when set, the first
/// [`MAX_INCLUDED_PER_PARTNER`] of each by name. One query.
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
    // The window numbers each partner's users by name and counts them; only the first
    // MAX_INCLUDED_PER_PARTNER leave the statement.
    let mut sql = Sql::new(
        "SELECT partner_id, uuid, business_uuid, email, name, created_at, updated_at, total \
         FROM (SELECT pu.partner_id, u.uuid, b.uuid AS business_uuid, u.email, u.name, \
         u.created_at, u.updated_at, u.id, \
         row_number() OVER (PARTITION BY pu.partner_id ORDER BY u.name, u.id) AS rank, \
         count(*) OVER (PARTITION BY pu.partner_id) AS total \
         FROM partner_users pu JOIN users u ON u.id = pu.user_id \
         JOIN businesses b ON b.id = pu.business_id WHERE pu.partner_id = ANY(",
    );
    sql.bind(Bind::I64Array(partner_ids.to_vec())).push(")");
    if let Some(business_id) = business_id {
        sql.push(" AND pu.business_id = ")
            .bind(Bind::I64(business_id));
    }
    sql.push(") ranked WHERE rank <= ")
        .bind(Bind::I64(MAX_INCLUDED_PER_PARTNER))
        .push(" ORDER BY partner_id, name, id");
    sql
}

/// One page of the users connected to `partner_id` (of `business_id` only, when set), by name
/// then id, and how many there are in all. Two statements (the page, the count).
pub fn partner_users_page(
    conn: &mut PgConnection,
    partner_id: i64,
    business_id: Option<i64>,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<PartnerUserRecord>, i64)> {
    let mut sql = Sql::new(
        "SELECT pu.partner_id, u.uuid, b.uuid AS business_uuid, u.email, u.name, u.created_at, \
         u.updated_at, count(*) OVER () AS total FROM partner_users pu \
         JOIN users u ON u.id = pu.user_id JOIN businesses b ON b.id = pu.business_id \
         WHERE pu.partner_id = ",
    );
    sql.bind(Bind::I64(partner_id));
    push_business(&mut sql, business_id);
    sql.push(" ORDER BY u.name, u.id LIMIT ")
        .bind(Bind::I64(per_page))
        .push(" OFFSET ")
        .bind(Bind::I64((page - 1).saturating_mul(per_page)));
    let users: Vec<PartnerUserRecord> = sql.into_query().load(conn)?;
    if let Some(total) = users.first().map(|u| u.total) {
        return Ok((users, total));
    }
    // Past the last page (or none): the count alone.
    let mut count = Sql::new("SELECT count(*) AS n FROM partner_users pu WHERE pu.partner_id = ");
    count.bind(Bind::I64(partner_id));
    push_business(&mut count, business_id);
    let total: Count = count.into_query().get_result(conn)?;
    Ok((users, total.n))
}

/// `AND` the link's business, when one is in context.
fn push_business(sql: &mut Sql, business_id: Option<i64>) {
    if let Some(business_id) = business_id {
        sql.push(" AND pu.business_id = ")
            .bind(Bind::I64(business_id));
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
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
    /// How many integrations the partner's relationship holds in all.
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

/// Integrations of the given partners, restricted to `business_id` when set, the first
/// [`MAX_INCLUDED_PER_PARTNER`] of each by id. One query.
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
        "SELECT id, partner_id, business_uuid, status, created_at, updated_at, total FROM \
         (SELECT pi.id, pi.partner_id, b.uuid AS business_uuid, pi.status, pi.created_at, \
         pi.updated_at, row_number() OVER (PARTITION BY pi.partner_id ORDER BY pi.id) AS rank, \
         count(*) OVER (PARTITION BY pi.partner_id) AS total \
         FROM partner_integrations pi JOIN businesses b ON b.id = pi.business_id \
         WHERE pi.partner_id = ANY(",
    );
    sql.bind(Bind::I64Array(partner_ids.to_vec())).push(")");
    if let Some(business_id) = business_id {
        sql.push(" AND pi.business_id = ")
            .bind(Bind::I64(business_id));
    }
    sql.push(") ranked WHERE rank <= ")
        .bind(Bind::I64(MAX_INCLUDED_PER_PARTNER))
        .push(" ORDER BY partner_id, id");
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
    /// The relationships loaded (their totals are set on every partner, 0 for none).
    pub includes: Includes,
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
        includes,
    })
}
