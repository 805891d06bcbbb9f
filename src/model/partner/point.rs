//! Point reads: live partners by id with the context columns of each key's own scope, many keys
//! in one statement (the coalesced GetPartner reads of `crate::serving::point_reads`), and
//! BatchGetPartners' read of partners by id or external id in one scope ([`find_batch`]).

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::record::{PARTNER_COLUMNS, PartnerRecord, Scope};
use crate::db::schema::partners;
use crate::db::sql::{Bind, Sql};

/// One live partner with its context columns (the statement of [`find_many`] with one key).
pub fn find(conn: &mut PgConnection, id: i64, scope: Scope) -> QueryResult<Option<PartnerRecord>> {
    Ok(find_many(conn, &[(id, scope)])?
        .pop()
        .map(|found| found.record))
}

/// A row of [`find_many`]: the 1-based position of its key in the request, and the partner.
#[derive(Debug, Clone, QueryableByName)]
pub struct Found {
    #[diesel(sql_type = BigInt)]
    pub slot: i64,
    #[diesel(embed)]
    pub record: PartnerRecord,
}

/// Live partners by `(id, scope)` keys, each with the context columns of its own scope, in one
/// statement (the keys travel as three arrays). Missing or deleted partners have no row; the
/// others come back tagged with their key's 1-based position.
pub fn find_many(conn: &mut PgConnection, keys: &[(i64, Scope)]) -> QueryResult<Vec<Found>> {
    find_many_sql(keys).into_query().load(conn)
}

/// The statement of [`find_many`].
pub fn find_many_sql(keys: &[(i64, Scope)]) -> Sql {
    // The context columns are subqueries rather than joins: each is then one probe of its table's
    // (business or partner, partner or user) key, where a join lets the planner scan every
    // preference, integration and link of the partner and filter them. The arrays pass through a
    // fenced subquery (`OFFSET 0`), so no plan sees their length: the plan of a batch of one costs
    // the same as the cached generic plan, which Postgres then keeps instead of planning each
    // batch anew (0.15–0.3 ms per statement).
    let mut sql = Sql::new("SELECT q.slot, ");
    sql.push(PARTNER_COLUMNS)
        .push(KEYED_CONTEXT_COLUMNS)
        .push(" FROM (SELECT ")
        .bind(Bind::I64Array(keys.iter().map(|k| k.0).collect()))
        .push(" AS ids, ")
        .bind(Bind::OptI64Array(
            keys.iter().map(|k| k.1.business_id).collect(),
        ))
        .push(" AS businesses, ")
        .bind(Bind::OptI64Array(
            keys.iter().map(|k| k.1.user_id).collect(),
        ))
        .push(
            " AS users OFFSET 0) k CROSS JOIN LATERAL unnest(k.ids, k.businesses, k.users) \
             WITH ORDINALITY AS q(id, business_id, user_id, slot) \
             JOIN partners p ON p.id = q.id WHERE p.deleted_at IS NULL",
        );
    sql
}

/// The context columns of `partners p` for the business and user of the key `q`, each one probe
/// of its table's key, and the NULL total of a point read.
const KEYED_CONTEXT_COLUMNS: &str = ", EXISTS (SELECT 1 FROM partner_preferences pp \
     WHERE pp.business_id = q.business_id AND pp.partner_id = p.id) AS preferred, \
     (SELECT pi.status FROM partner_integrations pi \
     WHERE pi.business_id = q.business_id AND pi.partner_id = p.id) AS integration_status, \
     EXISTS (SELECT 1 FROM partner_users pu \
     WHERE pu.partner_id = p.id AND pu.user_id = q.user_id) AS connected, \
     NULL::bigint AS total_count";

/// One key of [`find_batch`]: a partner id or an external id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartnerKey {
    /// `partners.id`
    Id(i64),
    /// `partners.external_id`
    External(String),
}

/// Live partners by `keys` (ids or external ids) with the context columns of `scope`, in one
/// statement; each row is tagged with the 1-based position of its key, keys without a live
/// partner have no row (BatchGetPartners).
pub fn find_batch(
    conn: &mut PgConnection,
    keys: &[PartnerKey],
    scope: Scope,
) -> QueryResult<Vec<Found>> {
    find_batch_sql(keys, scope).into_query().load(conn)
}

/// The statement of [`find_batch`]: the keys travel as two arrays of equal length (an id or an
/// external id in each slot); an external id is resolved by its unique index, then every key
/// joins its partner by primary key.
pub fn find_batch_sql(keys: &[PartnerKey], scope: Scope) -> Sql {
    let ids = keys
        .iter()
        .map(|k| match k {
            PartnerKey::Id(id) => Some(*id),
            PartnerKey::External(_) => None,
        })
        .collect();
    let external_ids = keys
        .iter()
        .map(|k| match k {
            PartnerKey::Id(_) => None,
            PartnerKey::External(e) => Some(e.clone()),
        })
        .collect();
    let mut sql = Sql::new("SELECT q.slot, ");
    sql.push(PARTNER_COLUMNS)
        .push(KEYED_CONTEXT_COLUMNS)
        .push(" FROM (SELECT k.id, k.external_id, k.slot, ")
        .bind(Bind::OptI64(scope.business_id))
        .push(" AS business_id, ")
        .bind(Bind::OptI64(scope.user_id))
        .push(" AS user_id FROM unnest(")
        .bind(Bind::OptI64Array(ids))
        .push(", ")
        .bind(Bind::OptTextArray(external_ids))
        .push(
            ") WITH ORDINALITY AS k(id, external_id, slot)) q \
             JOIN partners p ON p.id = coalesce(q.id, \
             (SELECT e.id FROM partners e WHERE e.external_id = q.external_id)) \
             WHERE p.deleted_at IS NULL",
        );
    sql
}

/// Whether a live partner with this id exists.
pub fn exists(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        partners::table
            .filter(partners::id.eq(id))
            .filter(partners::deleted_at.is_null()),
    ))
    .get_result(conn)
}
