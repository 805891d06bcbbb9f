//! ExportPartners' statement: the next chunk of a list's matches after a partner id, in id order
//! (keyset: `p.id > $after ORDER BY p.id LIMIT $n`, a walk of the primary key), with the list's
//! filters and search ([`super::list`]) and the context columns of its scope. Each chunk costs
//! the same at any depth, and no statement reads more than one chunk's rows.

use diesel::pg::PgConnection;
use diesel::prelude::*;

use super::list::push_filters;
use super::query::ListQuery;
use super::record::{CONTEXT_COLUMNS, PARTNER_COLUMNS, PartnerRecord, push_context_joins};
use crate::db::sql::{Bind, Sql};

/// Up to `limit` partners matching `q` with an id above `after`, in id order.
pub fn export_chunk(
    conn: &mut PgConnection,
    q: &ListQuery,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<PartnerRecord>> {
    export_chunk_sql(q, after, limit).into_query().load(conn)
}

/// The statement of [`export_chunk`].
pub fn export_chunk_sql(q: &ListQuery, after: i64, limit: i64) -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(PARTNER_COLUMNS)
        .push(CONTEXT_COLUMNS)
        .push(", NULL::bigint AS total_count FROM partners p");
    push_context_joins(&mut sql, q.scope);
    push_filters(&mut sql, q);
    sql.push(" AND p.id > ")
        .bind(Bind::I64(after))
        .push(" ORDER BY p.id LIMIT ")
        .bind(Bind::I64(limit));
    sql
}
