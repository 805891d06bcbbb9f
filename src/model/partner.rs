//! Partners: the row type, the three list queries and the point read (all with the business/user
//! context columns), the include loaders (one query per relationship per page), and admin writes.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use super::sql::{Bind, Sql, escape_like};
use crate::db::schema::partners;

/// Who is asking: the business and user in context (database ids), if any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    /// Business in context.
    pub business_id: Option<i64>,
    /// User in context.
    pub user_id: Option<i64>,
}

/// A partner row with the context columns of the business/user in scope.
#[derive(Debug, Clone, QueryableByName)]
pub struct PartnerRecord {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub logo_url: String,
    #[diesel(sql_type = Text)]
    pub website_url: String,
    #[diesel(sql_type = Text)]
    pub video_url: String,
    #[diesel(sql_type = Array<Text>)]
    pub categories: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub wholesaler_categories: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub country_codes: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub tags: Vec<String>,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Bool)]
    pub active: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub external_id: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub metadata: serde_json::Value,
    #[diesel(sql_type = BigInt)]
    pub website_clicks: i64,
    #[diesel(sql_type = BigInt)]
    pub video_clicks: i64,
    #[diesel(sql_type = BigInt)]
    pub users_count: i64,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
    /// Preferred by the business in scope (false without a business).
    #[diesel(sql_type = Bool)]
    pub preferred: bool,
    /// Integration status with the business in scope.
    #[diesel(sql_type = Nullable<Text>)]
    pub integration_status: Option<String>,
    /// Connected to the user in scope (false without a user).
    #[diesel(sql_type = Bool)]
    pub connected: bool,
    /// Exact size of the whole list, when the page query could tell it.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total_count: Option<i64>,
}

/// Which of the three list operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// ListPartners: every live partner.
    All,
    /// ListAvailablePartners: active, status available or coming_soon.
    Available,
    /// ListWholesalers: categories contain `wholesaler`.
    Wholesalers,
}

/// A sortable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// `name`
    Name,
    /// `created_at`
    CreatedAt,
    /// `updated_at`
    UpdatedAt,
    /// `clicks` (website + video)
    Clicks,
    /// `users_count`
    UsersCount,
}

impl SortField {
    /// Parses an API sort key.
    pub fn parse(key: &str) -> Option<SortField> {
        Some(match key {
            "name" => SortField::Name,
            "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            "clicks" => SortField::Clicks,
            "users_count" => SortField::UsersCount,
            _ => return None,
        })
    }

    fn column(self) -> &'static str {
        match self {
            SortField::Name => "p.name",
            SortField::CreatedAt => "p.created_at",
            SortField::UpdatedAt => "p.updated_at",
            SortField::Clicks => "p.clicks",
            SortField::UsersCount => "p.users_count",
        }
    }
}

/// A validated list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Which list.
    pub kind: ListKind,
    /// Context.
    pub scope: Scope,
    /// Any of these categories.
    pub categories: Vec<String>,
    /// None of these categories.
    pub excluded_categories: Vec<String>,
    /// Any of these wholesaler categories.
    pub wholesaler_categories: Vec<String>,
    /// Any of these country codes (upper case).
    pub country_codes: Vec<String>,
    /// Any of these statuses (database spelling).
    pub statuses: Vec<String>,
    /// Preferred by the business in scope.
    pub preferred: Option<bool>,
    /// Active flag.
    pub active: Option<bool>,
    /// Trimmed name substring.
    pub search: Option<String>,
    /// Sort keys, `true` = descending; empty = the list's default order.
    pub sort: Vec<(SortField, bool)>,
    /// 1-based page.
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

impl ListQuery {
    /// A list of `kind` in `scope` with no filter, no search and the default order.
    pub fn new(kind: ListKind, scope: Scope, page: i64, per_page: i64) -> Self {
        ListQuery {
            kind,
            scope,
            categories: Vec::new(),
            excluded_categories: Vec::new(),
            wholesaler_categories: Vec::new(),
            country_codes: Vec::new(),
            statuses: Vec::new(),
            preferred: None,
            active: None,
            search: None,
            sort: Vec::new(),
            page,
            per_page,
        }
    }
}

const PARTNER_COLUMNS: &str = "p.id, p.name, p.description, p.email, p.logo_url, p.website_url, \
     p.video_url, p.categories, p.wholesaler_categories, p.country_codes, p.tags, p.status, \
     p.active, p.external_id, p.metadata, p.website_clicks, p.video_clicks, p.users_count, \
     p.created_at, p.updated_at";

/// The context columns (`preferred`, `integration_status`, `connected`) of `partners p`.
const CONTEXT_COLUMNS: &str = ", (pp.partner_id IS NOT NULL) AS preferred, \
     pi.status AS integration_status, (pu.user_id IS NOT NULL) AS connected";

fn push_preference_join(sql: &mut Sql, scope: Scope) {
    sql.push(" LEFT JOIN partner_preferences pp ON pp.partner_id = p.id AND pp.business_id = ")
        .bind(Bind::OptI64(scope.business_id));
}

/// Appends the joins behind [`CONTEXT_COLUMNS`] for `scope`.
fn push_context_joins(sql: &mut Sql, scope: Scope) {
    push_preference_join(sql, scope);
    sql.push(" LEFT JOIN partner_integrations pi ON pi.partner_id = p.id AND pi.business_id = ")
        .bind(Bind::OptI64(scope.business_id))
        .push(" LEFT JOIN partner_users pu ON pu.partner_id = p.id AND pu.user_id = ")
        .bind(Bind::OptI64(scope.user_id));
}

fn push_filters(sql: &mut Sql, q: &ListQuery) {
    sql.push(" WHERE p.deleted_at IS NULL");
    match q.kind {
        ListKind::All => {}
        ListKind::Available => {
            sql.push(" AND p.active AND p.status IN ('available', 'coming_soon')");
        }
        ListKind::Wholesalers => {
            sql.push(" AND p.categories @> ARRAY['wholesaler']");
        }
    }
    // Categories and countries together: the (category, country) pairs, one facet each, so the
    // search index decodes one short list per pair (see migration 6).
    let facets = facet_pairs(&q.categories, &q.country_codes);
    let none = Vec::new();
    let (categories, country_codes) = match &facets {
        Some(_) => (&none, &none),
        None => (&q.categories, &q.country_codes),
    };
    if let Some(facets) = facets {
        sql.push(" AND p.facets && ").bind(Bind::TextArray(facets));
    }
    let arrays = [
        (categories, " AND p.categories && "),
        (&q.wholesaler_categories, " AND p.wholesaler_categories && "),
        (country_codes, " AND p.country_codes && "),
    ];
    for (values, clause) in arrays {
        if !values.is_empty() {
            sql.push(clause).bind(Bind::TextArray(values.clone()));
        }
    }
    if !q.excluded_categories.is_empty() {
        sql.push(" AND NOT (p.categories && ")
            .bind(Bind::TextArray(q.excluded_categories.clone()))
            .push(")");
    }
    if !q.statuses.is_empty() {
        sql.push(" AND p.status = ANY(")
            .bind(Bind::TextArray(q.statuses.clone()))
            .push(")");
    }
    if let Some(active) = q.active {
        sql.push(" AND p.active = ").bind(Bind::Bool(active));
    }
    push_preferred_filter(sql, q);
    if let Some(search) = &q.search {
        sql.push(" AND lower(p.name) LIKE lower(")
            .bind(Bind::Text(format!("%{}%", escape_like(search))))
            .push(")");
    }
}

/// `AND` the preference filter of `q` (on the `pp` join), if any.
fn push_preferred_filter(sql: &mut Sql, q: &ListQuery) {
    match q.preferred {
        Some(true) => {
            sql.push(" AND pp.partner_id IS NOT NULL");
        }
        Some(false) => {
            sql.push(" AND pp.partner_id IS NULL");
        }
        None => {}
    }
}

/// The page's `LIMIT`/`OFFSET`.
fn push_limit(sql: &mut Sql, q: &ListQuery) {
    sql.push(" LIMIT ")
        .bind(Bind::I64(q.per_page))
        .push(" OFFSET ")
        .bind(Bind::I64((q.page - 1).saturating_mul(q.per_page)));
}

/// The page's `LIMIT`/`OFFSET`, closing the inner query of the page statements, and the join of
/// the page's ids with their rows.
fn push_page_limit(sql: &mut Sql, q: &ListQuery) {
    push_limit(sql, q);
    sql.push(") page JOIN partners p ON p.id = page.id");
}

/// Most (category, country) pairs a filter is turned into; beyond it the two arrays are used.
const MAX_FACETS: usize = 256;

/// The `category@CC` facets matching any of `categories` in any of `country_codes`, as stored in
/// `partners.facets`; `None` unless both are given (and their pairs are at most [`MAX_FACETS`]).
fn facet_pairs(categories: &[String], country_codes: &[String]) -> Option<Vec<String>> {
    let pairs = categories.len() * country_codes.len();
    if pairs == 0 || pairs > MAX_FACETS {
        return None;
    }
    Some(
        categories
            .iter()
            .flat_map(|c| country_codes.iter().map(move |cc| format!("{c}@{cc}")))
            .collect(),
    )
}

fn push_order(sql: &mut Sql, q: &ListQuery) {
    sql.push(" ORDER BY ");
    if q.sort.is_empty() {
        if preferred_first(q) {
            sql.push("(pp.partner_id IS NOT NULL) DESC, ");
        }
        sql.push("p.name, p.id");
        return;
    }
    for (field, desc) in &q.sort {
        sql.push(field.column())
            .push(if *desc { " DESC, " } else { " ASC, " });
    }
    sql.push("p.id");
}

/// Whether the page's ids depend on the preference (default order of ListPartners, or a filter).
pub fn preference_decides(q: &ListQuery) -> bool {
    q.preferred.is_some() || preferred_first(q)
}

/// The page query of a list (exposed for EXPLAIN in benchmarks). The page's ids are found first,
/// ordered, offset and limited on `partners` alone (plus the preference when it orders or
/// filters); only those rows are then joined with their context, so a deep page does not pay the
/// joins of the rows it skips. With a search the matching set is small and read whole anyway, so
/// the exact total comes from the same scan (`count(*) OVER ()`) instead of a second query.
pub fn list_page_sql(q: &ListQuery) -> Sql {
    page_sql(q)
}

/// The ids of a list's page, in the list's order, as of search version `version`: none unless
/// the database, in the statement's snapshot, is at that version (the search index then knows
/// the list's exact total; see `crate::search`). The statement reads `partners` alone (plus the
/// preference when it filters), so planning it, which Postgres does on every call for a
/// `LIMIT`/`OFFSET` with binds, is cheap; [`list_page_at`] joins the page's rows afterwards.
pub fn guarded_page_ids_sql(q: &ListQuery, version: i64) -> Sql {
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
/// run (BENCHMARKS-HISTORY.md, run CC).
pub fn list_page_at(
    conn: &mut PgConnection,
    q: &ListQuery,
    version: i64,
) -> QueryResult<Vec<PartnerRecord>> {
    conn.build_transaction()
        .repeatable_read()
        .read_only()
        .run(|conn| {
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
        })
}

#[derive(QueryableByName)]
struct PageId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The one-time filter of the guarded statements: the database is at search `version`.
fn push_version_guard(sql: &mut Sql, version: i64) {
    sql.push(" AND (SELECT s.version FROM partner_search_state s) = ")
        .bind(Bind::I64(version));
}

fn page_sql(q: &ListQuery) -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(PARTNER_COLUMNS)
        .push(CONTEXT_COLUMNS)
        .push(", page.total_count FROM (SELECT p.id, ")
        .push(if q.search.is_some() {
            "count(*) OVER () AS total_count"
        } else {
            "NULL::bigint AS total_count"
        })
        .push(" FROM partners p");
    if preference_decides(q) {
        push_preference_join(&mut sql, q.scope);
    }
    push_filters(&mut sql, q);
    push_order(&mut sql, q);
    push_page_limit(&mut sql, q);
    push_context_joins(&mut sql, q.scope);
    push_order(&mut sql, q);
    sql
}

/// The exact-count query of a list (joins the preference only when filtering on it).
pub fn list_count_sql(q: &ListQuery) -> Sql {
    let mut sql = Sql::new("SELECT count(*) AS total FROM partners p");
    if q.preferred.is_some() {
        sql.push(" LEFT JOIN partner_preferences pp ON pp.partner_id = p.id AND pp.business_id = ")
            .bind(Bind::OptI64(q.scope.business_id));
    }
    push_filters(&mut sql, q);
    sql
}

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// Runs a list: the page and the exact total.
pub fn list(conn: &mut PgConnection, q: &ListQuery) -> QueryResult<(Vec<PartnerRecord>, i64)> {
    let rows: Vec<PartnerRecord> = list_page_sql(q).into_query().load(conn)?;
    let first = (q.page - 1).saturating_mul(q.per_page);
    let total = if let Some(total) = rows.first().and_then(|r| r.total_count) {
        total
    } else if q.page == 1 && (rows.len() as i64) < q.per_page {
        // A short first page already tells the total.
        rows.len() as i64
    } else {
        list_count_sql(q)
            .into_query()
            .get_result::<Total>(conn)?
            .total
    };
    debug_assert!(rows.is_empty() || first < total);
    Ok((rows, total))
}

/// Whether the default order of `q` puts the business's preferred partners first.
pub fn preferred_first(q: &ListQuery) -> bool {
    q.kind == ListKind::All && q.sort.is_empty()
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
    push_version_guard(&mut sql, version);
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
    version: i64,
    preferences: Option<(i64, i64)>,
) -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(PARTNER_COLUMNS)
        .push(CONTEXT_COLUMNS)
        .push(", NULL::bigint AS total_count FROM unnest(")
        .bind(Bind::I64Array(page_ids.to_vec()))
        .push(") WITH ORDINALITY AS page(id, ord) JOIN partners p ON p.id = page.id");
    push_context_joins(&mut sql, q.scope);
    sql.push(" WHERE TRUE");
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
    version: i64,
    preferences: Option<(i64, i64)>,
) -> QueryResult<Vec<PartnerRecord>> {
    known_page_sql(q, page_ids, version, preferences)
        .into_query()
        .load(conn)
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
#[derive(Debug, Clone, QueryableByName)]
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
    pub status: String,
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
        .push(
            ", EXISTS (SELECT 1 FROM partner_preferences pp \
             WHERE pp.business_id = q.business_id AND pp.partner_id = p.id) AS preferred, \
             (SELECT pi.status FROM partner_integrations pi \
             WHERE pi.business_id = q.business_id AND pi.partner_id = p.id) AS integration_status, \
             EXISTS (SELECT 1 FROM partner_users pu \
             WHERE pu.partner_id = p.id AND pu.user_id = q.user_id) AS connected, \
             NULL::bigint AS total_count FROM (SELECT ",
        )
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

/// Whether a live partner with this id exists.
pub fn exists(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        partners::table
            .filter(partners::id.eq(id))
            .filter(partners::deleted_at.is_null()),
    ))
    .get_result(conn)
}

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
    pub status: String,
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

/// Values of a new partner.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = partners)]
pub struct NewPartner {
    pub name: String,
    pub description: String,
    pub email: String,
    pub logo_url: String,
    pub website_url: String,
    pub video_url: String,
    pub categories: Vec<String>,
    pub wholesaler_categories: Vec<String>,
    pub country_codes: Vec<String>,
    pub tags: Vec<String>,
    pub status: String,
    pub active: bool,
    pub external_id: Option<String>,
    pub metadata: serde_json::Value,
}

/// Changed fields of a partner (`None` = unchanged).
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = partners)]
pub struct PartnerChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub email: Option<String>,
    pub logo_url: Option<String>,
    pub website_url: Option<String>,
    pub video_url: Option<String>,
    pub categories: Option<Vec<String>>,
    pub wholesaler_categories: Option<Vec<String>>,
    pub country_codes: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub status: Option<String>,
    pub active: Option<bool>,
    pub external_id: Option<Option<String>>,
    pub metadata: Option<serde_json::Value>,
}

/// Inserts a partner and returns its id.
pub fn insert(conn: &mut PgConnection, new: &NewPartner) -> QueryResult<i64> {
    diesel::insert_into(partners::table)
        .values(new)
        .returning(partners::id)
        .get_result(conn)
}

/// Applies changes to a live partner; false when it does not exist.
pub fn update(conn: &mut PgConnection, id: i64, changes: &PartnerChanges) -> QueryResult<bool> {
    let n = diesel::update(
        partners::table
            .filter(partners::id.eq(id))
            .filter(partners::deleted_at.is_null()),
    )
    .set((changes, partners::updated_at.eq(diesel::dsl::now)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Soft-deletes a live partner (and frees its external id); false when it does not exist.
pub fn soft_delete(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::update(
        partners::table
            .filter(partners::id.eq(id))
            .filter(partners::deleted_at.is_null()),
    )
    .set((
        partners::deleted_at.eq(diesel::dsl::now),
        partners::updated_at.eq(diesel::dsl::now),
        partners::external_id.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facets_pair_every_category_with_every_country() {
        let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            facet_pairs(&v(&["pos", "a@b"]), &v(&["DE", "AT"])),
            Some(v(&["pos@DE", "pos@AT", "a@b@DE", "a@b@AT"]))
        );
        assert_eq!(facet_pairs(&v(&["pos"]), &[]), None);
        assert_eq!(facet_pairs(&[], &v(&["DE"])), None);
        let many: Vec<String> = (0..17).map(|i| format!("c{i}")).collect();
        let countries: Vec<String> = (0..16).map(|i| format!("C{i}")).collect();
        assert_eq!(facet_pairs(&many, &countries), None, "past MAX_FACETS");
        assert_eq!(
            facet_pairs(&many[..16], &countries).map(|f| f.len()),
            Some(256)
        );
    }
}
