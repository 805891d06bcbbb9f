//! The statements of the lists' in-memory copy (`crate::serving::lists`): each is guarded by the
//! search version the copy was loaded at (migration 9) and, where the business's cached
//! preferences decide the page, by that business's preference version (migration 10), so an answer
//! is exact or empty, never stale. Also the version reads and the rows the copy is built from.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};

use super::list::{
    preference_decides, preferred_first, push_filters, push_limit, push_order, push_page_limit,
    push_partner_filters, push_preferred_filter,
};
use super::query::ListQuery;
use super::record::{
    CONTEXT_COLUMNS, PARTNER_COLUMNS, PartnerRecord, push_context_joins, push_preference_join,
};
use crate::db::schema::partners;
use crate::db::sql::{Bind, Sql};
use crate::model::PartnerStatus;

/// The ids of a list's page, in the list's order, as of search version `version`: none unless
/// the database, in the statement's snapshot, is at that version (the search index then knows
/// the list's exact total; see `crate::search`). The statement reads `partners` alone (plus the
/// preference when it filters), so planning it, which Postgres does on every call for a
/// `LIMIT`/`OFFSET` with binds, is cheap; [`list_page_at`] joins the page's rows afterwards.
/// Without `version`, the page as the statement's snapshot has it (see [`moved`]).
pub fn guarded_page_ids_sql(q: &ListQuery, version: Option<i64>) -> Sql {
    let mut sql = Sql::new("SELECT p.id FROM partners p");
    if preference_decides(q) {
        push_preference_join(&mut sql, q.scope);
    }
    push_filters(&mut sql, q);
    push_version_guard(&mut sql, version);
    push_order(&mut sql, q);
    push_limit(&mut sql, q);
    sql
}

/// A list's page at search `version`: its ids ([`guarded_page_ids_sql`]), then their rows with
/// context ([`known_page_sql`], a statement Postgres plans once per connection), both in one
/// read-only repeatable-read transaction, so the rows are those of the snapshot that ordered
/// them (counters included). Empty when the database moved past `version` or the page is
/// empty. One statement with both parts took ~0.75 ms to plan on each call against ~0.5 ms to
/// run (measured; see docs/history/).
pub fn list_page_at(
    conn: &mut PgConnection,
    q: &ListQuery,
    version: i64,
) -> QueryResult<Vec<PartnerRecord>> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| page_in_snapshot(conn, q, Some(version)))
}

/// [`list_page_at`]'s two statements, in the caller's transaction; without `version`, the page
/// of the transaction's snapshot.
pub fn page_in_snapshot(
    conn: &mut PgConnection,
    q: &ListQuery,
    version: Option<i64>,
) -> QueryResult<Vec<PartnerRecord>> {
    let ids: Vec<i64> = guarded_page_ids_sql(q, version)
        .into_query()
        .load::<PageId>(conn)?
        .into_iter()
        .map(|r| r.id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    list_known_page(conn, q, &ids, version, None)
}

#[derive(QueryableByName)]
struct PageId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The one-time filter of the guarded statements: the database is at search `version` (none:
/// no guard, for a statement whose snapshot [`moved`] vouched for).
fn push_version_guard(sql: &mut Sql, version: Option<i64>) {
    if let Some(version) = version {
        sql.push(" AND (SELECT s.version FROM partner_search_state s) = ")
            .bind(Bind::I64(version));
    }
}

/// The page query of a list whose matching partners are already known (the search index of
/// `crate::search` found them): `ids` are every live partner matching `q`'s filters and search,
/// the preference aside, in the list's `name, id` order, as of search version `version`. Only
/// the preference is joined for all of them (it orders or filters); the page's rows are then
/// joined with their context as in [`list_page_sql`]. The statement returns no row unless the
/// database, in the statement's own snapshot, is still at `version`: then `ids` are exactly the
/// partners the filters match in that snapshot, and the page and its total are exact.
/// Only for orders the index keeps: the default one or `name` ascending.
pub fn candidates_page_sql(q: &ListQuery, ids: &[i64], version: i64) -> Sql {
    let preferred_first = preferred_first(q);
    let mut sql = Sql::new("SELECT ");
    sql.push(PARTNER_COLUMNS)
        .push(CONTEXT_COLUMNS)
        .push(
            ", page.total_count FROM (SELECT c.id, c.ord, count(*) OVER () AS total_count \
             FROM unnest(",
        )
        .bind(Bind::I64Array(ids.to_vec()))
        .push(") WITH ORDINALITY AS c(id, ord)");
    if preference_decides(q) {
        sql.push(" LEFT JOIN partner_preferences pp ON pp.partner_id = c.id AND pp.business_id = ")
            .bind(Bind::OptI64(q.scope.business_id));
    }
    sql.push(" WHERE TRUE");
    push_version_guard(&mut sql, Some(version));
    push_preferred_filter(&mut sql, q);
    let order = if preferred_first {
        " ORDER BY (pp.partner_id IS NOT NULL) DESC, c.ord"
    } else {
        " ORDER BY c.ord"
    };
    sql.push(order);
    push_page_limit(&mut sql, q);
    push_context_joins(&mut sql, q.scope);
    sql.push(if preferred_first {
        " ORDER BY (pp.partner_id IS NOT NULL) DESC, page.ord"
    } else {
        " ORDER BY page.ord"
    });
    sql
}

/// Runs [`candidates_page_sql`]: the page and the exact total, or `None` when no row came back
/// (the database moved past `version`, the page lies past the end, or the preference filter left
/// nothing); the caller then asks [`search_version`] or falls back to [`list`].
pub fn list_candidates(
    conn: &mut PgConnection,
    q: &ListQuery,
    ids: &[i64],
    version: i64,
) -> QueryResult<Option<(Vec<PartnerRecord>, i64)>> {
    let rows: Vec<PartnerRecord> = candidates_page_sql(q, ids, version)
        .into_query()
        .load(conn)?;
    Ok(rows
        .first()
        .and_then(|r| r.total_count)
        .map(|total| (rows, total)))
}

/// The rows of a page whose ids are already known and ordered (`page_ids`: the search index
/// found the matches, and ordered and paged them with the business's cached preferences), with
/// their context, in that order. The statement returns no row unless the database, in the
/// statement's own snapshot, is still at search version `version` and, with `preferences`
/// (business id, preference version), that business's preferences are still at that version
/// (migration 10): then every id is a live partner and the page is exact.
pub fn known_page_sql(
    q: &ListQuery,
    page_ids: &[i64],
    version: Option<i64>,
    preferences: Option<(i64, i64)>,
) -> Sql {
    page_rows_sql(Sql::new("SELECT "), q, page_ids, "", version, preferences)
}

/// [`known_page_sql`] after `sql` (a select list's start) and with `join` after the context's.
fn page_rows_sql(
    mut sql: Sql,
    q: &ListQuery,
    page_ids: &[i64],
    join: &str,
    version: Option<i64>,
    preferences: Option<(i64, i64)>,
) -> Sql {
    sql.push(PARTNER_COLUMNS)
        .push(CONTEXT_COLUMNS)
        .push(", NULL::bigint AS total_count FROM unnest(")
        .bind(Bind::I64Array(page_ids.to_vec()))
        .push(") WITH ORDINALITY AS page(id, ord) JOIN partners p ON p.id = page.id");
    push_context_joins(&mut sql, q.scope);
    sql.push(join).push(" WHERE TRUE");
    push_version_guard(&mut sql, version);
    if let Some((business_id, preferences_version)) = preferences {
        sql.push(" AND (SELECT b.preferences_version FROM businesses b WHERE b.id = ")
            .bind(Bind::I64(business_id))
            .push(") = ")
            .bind(Bind::I64(preferences_version));
    }
    sql.push(" ORDER BY page.ord");
    sql
}

/// Runs [`known_page_sql`]: the page's rows, or none when a version moved.
pub fn list_known_page(
    conn: &mut PgConnection,
    q: &ListQuery,
    page_ids: &[i64],
    version: Option<i64>,
    preferences: Option<(i64, i64)>,
) -> QueryResult<Vec<PartnerRecord>> {
    known_page_sql(q, page_ids, version, preferences)
        .into_query()
        .load(conn)
}

/// What moved in the database since the copy's log position, as one list sees it, read in the
/// snapshot of the statement ([`moved_sql`]): the versions, and the partners changed since in a
/// way a list can see (created, deleted, restored, or a filtered, searched or ordered column
/// updated), with those of them that match the list now and those that sort before its page's
/// last partner now. The copy's statements are guarded by one search version for the whole
/// directory; this lets a list whose answer no change touched keep the copy's answer
/// (`crate::serving::lists::exactness` decides), instead of waiting for the follower.
#[derive(Debug, Clone, QueryableByName)]
pub struct Moved {
    /// `None` (and `reset` too) when the search state row is missing: nothing is vouched for.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub search: Option<i64>,
    /// The search version of the last write that left no change rows (migration 12).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub reset: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub preferences: Option<i64>,
    #[diesel(sql_type = Array<BigInt>)]
    pub changed: Vec<i64>,
    /// Changed partners live and matching the list's kind, filters and search now.
    #[diesel(sql_type = Array<BigInt>)]
    pub matching: Vec<i64>,
    /// Changed partners whose `(name, id)` sorts before the page's last partner's now.
    #[diesel(sql_type = Array<BigInt>)]
    pub before_end: Vec<i64>,
}

/// The statement of [`moved`]: the changes after log position `sequence`, the preference
/// version of `business_id`, and `end`, the page's last partner (none: no order is asked about).
pub fn moved_sql(q: &ListQuery, sequence: i64, business_id: Option<i64>, end: Option<i64>) -> Sql {
    // Scalar subqueries and `unnest` joins keep the plan a few index probes, and its estimated
    // cost low enough that Postgres does not JIT-compile it (a join with the one-row state table,
    // never analysed, was estimated at 1,810 rows and compiled for 30 ms).
    let mut sql = Sql::new(
        "SELECT (SELECT s.version FROM partner_search_state s) AS search, \
         (SELECT s.reset_version FROM partner_search_state s) AS reset, \
         (SELECT b.preferences_version FROM businesses b WHERE b.id = ",
    );
    sql.bind(Bind::OptI64(business_id)).push(
        ") AS preferences, ch.ids AS changed, ARRAY(SELECT p.id \
             FROM unnest(ch.ids) AS x(id) JOIN partners p ON p.id = x.id",
    );
    push_partner_filters(&mut sql, q, false);
    sql.push(") AS matching, ");
    match end {
        Some(end) => {
            sql.push(
                "ARRAY(SELECT p.id FROM unnest(ch.ids) AS x(id) JOIN partners p ON p.id = x.id \
                 JOIN partners e ON e.id = ",
            )
            .bind(Bind::I64(end))
            .push(" WHERE (p.name, p.id) < (e.name, e.id)) AS before_end");
        }
        None => {
            sql.push("'{}'::bigint[] AS before_end");
        }
    }
    sql.push(
        " FROM (SELECT coalesce(array_agg(DISTINCT c.partner_id), '{}') AS ids \
         FROM partner_changes c WHERE c.sequence > ",
    )
    .bind(Bind::I64(sequence))
    .push(
        " AND c.kind LIKE 'partner.%' AND (c.kind <> 'partner.updated' \
         OR c.changed_fields && ARRAY['name', 'categories', 'wholesaler_categories', \
         'country_codes', 'status', 'active', 'deleted_at'])) ch",
    );
    sql
}

/// See [`Moved`].
pub fn moved(
    conn: &mut PgConnection,
    q: &ListQuery,
    sequence: i64,
    business_id: Option<i64>,
    end: Option<i64>,
) -> QueryResult<Moved> {
    moved_sql(q, sequence, business_id, end)
        .into_query()
        .get_result(conn)
}

/// A row of [`moved_with_page_sql`]: what moved (the same on every row) and a page's partner.
#[derive(Debug, QueryableByName)]
pub struct MovedRow {
    #[diesel(embed)]
    pub moved: Moved,
    #[diesel(embed)]
    pub record: PartnerRecord,
}

/// [`moved_sql`] and, in the same snapshot, the rows of the partners `page_ids` (in that order,
/// with their context, as [`known_page_sql`] joins them, unguarded): one statement where the
/// check and the rows would be two in a repeatable-read transaction (four round trips).
pub fn moved_with_page_sql(
    q: &ListQuery,
    sequence: i64,
    business_id: Option<i64>,
    end: Option<i64>,
    page_ids: &[i64],
) -> Sql {
    let mut lead = Sql::new("WITH m AS MATERIALIZED (");
    lead.append(moved_sql(q, sequence, business_id, end))
        .push(") SELECT m.search, m.reset, m.preferences, m.changed, m.matching, m.before_end, ");
    page_rows_sql(lead, q, page_ids, " CROSS JOIN m", None, None)
}

/// Runs [`moved_with_page_sql`]: what moved and the page's rows, or `None` when none of the
/// page's partners has a row (nothing tells what moved then).
pub fn moved_with_page(
    conn: &mut PgConnection,
    q: &ListQuery,
    sequence: i64,
    business_id: Option<i64>,
    end: Option<i64>,
    page_ids: &[i64],
) -> QueryResult<Option<(Moved, Vec<PartnerRecord>)>> {
    let rows: Vec<MovedRow> = moved_with_page_sql(q, sequence, business_id, end, page_ids)
        .into_query()
        .load(conn)?;
    let moved = rows.first().map(|row| row.moved.clone());
    Ok(moved.map(|moved| (moved, rows.into_iter().map(|row| row.record).collect())))
}

/// The search version and, for `business_id`, its preference version, read in one snapshot
/// (`None` where the row is missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Versions {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub search: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub preferences: Option<i64>,
}

/// See [`Versions`].
pub fn versions(conn: &mut PgConnection, business_id: Option<i64>) -> QueryResult<Versions> {
    let mut sql = Sql::new(
        "SELECT (SELECT s.version FROM partner_search_state s) AS search, \
         (SELECT b.preferences_version FROM businesses b WHERE b.id = ",
    );
    sql.bind(Bind::OptI64(business_id)).push(") AS preferences");
    sql.into_query().get_result(conn)
}

/// A business's preferred partners as of its preference version (migration 10), read in one
/// snapshot: the ids in ascending order, at most `limit` + 1 of them (more than `limit` tells
/// the caller the set is too large to keep).
#[derive(Debug, Clone, QueryableByName)]
pub struct PreferredRecord {
    #[diesel(sql_type = BigInt)]
    pub version: i64,
    #[diesel(sql_type = Array<BigInt>)]
    pub partner_ids: Vec<i64>,
}

/// See [`PreferredRecord`]; `None` when the business does not exist.
pub fn load_preferred(
    conn: &mut PgConnection,
    business_id: i64,
    limit: usize,
) -> QueryResult<Option<PreferredRecord>> {
    load_preferred_sql(business_id, limit)
        .into_query()
        .get_result(conn)
        .optional()
}

/// The statement of [`load_preferred`].
pub fn load_preferred_sql(business_id: i64, limit: usize) -> Sql {
    let mut sql = Sql::new(
        "SELECT b.preferences_version AS version, ARRAY(SELECT pp.partner_id \
         FROM partner_preferences pp WHERE pp.business_id = b.id ORDER BY pp.partner_id LIMIT ",
    );
    sql.bind(Bind::I64(i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1))
        .push(") AS partner_ids FROM businesses b WHERE b.id = ")
        .bind(Bind::I64(business_id));
    sql
}

/// The current search version (migration 9): it moves with every write to a column that lists
/// filter or search on. `None` if its row was removed (then no search index is trusted).
pub fn search_version(conn: &mut PgConnection) -> QueryResult<Option<i64>> {
    use crate::db::schema::partner_search_state::dsl::{partner_search_state, version};
    partner_search_state.select(version).first(conn).optional()
}

/// How many partners are live (not deleted).
pub fn live_count(conn: &mut PgConnection) -> QueryResult<i64> {
    partners::table
        .filter(partners::deleted_at.is_null())
        .count()
        .get_result(conn)
}

/// What the search index keeps of a live partner (see [`search_rows_sql`]).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct SearchRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// `lower(name)`, as Postgres lowers it.
    #[diesel(sql_type = Text)]
    pub lower_name: String,
    #[diesel(sql_type = Array<Text>)]
    pub categories: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub wholesaler_categories: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub country_codes: Vec<String>,
    #[diesel(sql_type = Text)]
    pub status: PartnerStatus,
    #[diesel(sql_type = Bool)]
    pub active: bool,
}

/// Every live partner's searchable columns in the lists' `name, id` order (the database's own
/// collation decides it, as in the list queries).
pub fn search_rows_sql() -> Sql {
    Sql::new(
        "SELECT p.id, lower(p.name) AS lower_name, p.categories, p.wholesaler_categories, \
         p.country_codes, p.status, p.active FROM partners p WHERE p.deleted_at IS NULL \
         ORDER BY p.name, p.id",
    )
}

/// A changed partner's searchable columns and the partner right before it in list order among
/// those the copy holds unchanged (`None`: none is), for the copy's changes
/// (`crate::serving::lists::delta`).
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct PlacedRow {
    #[diesel(embed)]
    pub partner: SearchRow,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub after: Option<i64>,
}

/// The live partners among `ids` as [`PlacedRow`]s in list order, each with the live partner
/// right before it (an index walk backwards from it on `partners_name_id_idx`, in the
/// database's collation).
pub fn placed_rows_sql(ids: &[i64]) -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(PLACED_COLUMNS)
        .push(" FROM partners c WHERE c.deleted_at IS NULL AND c.id = ANY(")
        .bind(Bind::I64Array(ids.to_vec()))
        .push(") ORDER BY c.name, c.id");
    sql
}

/// The columns of a [`PlacedRow`] of the partner `c`.
pub(super) const PLACED_COLUMNS: &str = "c.id, lower(c.name) AS lower_name, c.categories, \
    c.wholesaler_categories, c.country_codes, c.status, c.active, (SELECT p.id FROM partners p \
    WHERE p.deleted_at IS NULL AND (p.name, p.id) < (c.name, c.id) \
    ORDER BY p.name DESC, p.id DESC LIMIT 1) AS after";
