//! The three lists as SQL alone (the path every list can take): the validated list query, its
//! filters and orders, the page statement and the exact count.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::record::{
    CONTEXT_COLUMNS, PARTNER_COLUMNS, PartnerRecord, Scope, push_context_joins,
    push_preference_join,
};
use crate::db::sql::{Bind, Sql, escape_like};
use crate::model::PartnerStatus;

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

    pub(super) fn column(self) -> &'static str {
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
    /// Any of these statuses.
    pub statuses: Vec<PartnerStatus>,
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

pub(super) fn push_filters(sql: &mut Sql, q: &ListQuery) {
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
            .bind(Bind::TextArray(
                q.statuses.iter().map(|s| s.as_str().to_owned()).collect(),
            ))
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
pub(super) fn push_preferred_filter(sql: &mut Sql, q: &ListQuery) {
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
pub(super) fn push_limit(sql: &mut Sql, q: &ListQuery) {
    sql.push(" LIMIT ")
        .bind(Bind::I64(q.per_page))
        .push(" OFFSET ")
        .bind(Bind::I64((q.page - 1).saturating_mul(q.per_page)));
}

/// The page's `LIMIT`/`OFFSET`, closing the inner query of the page statements, and the join of
/// the page's ids with their rows.
pub(super) fn push_page_limit(sql: &mut Sql, q: &ListQuery) {
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

pub(super) fn push_order(sql: &mut Sql, q: &ListQuery) {
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

/// The page query of a list on the SQL path. The page's ids are found first,
/// ordered, offset and limited on `partners` alone (plus the preference when it orders or
/// filters); only those rows are then joined with their context, so a deep page does not pay the
/// joins of the rows it skips. With a search the matching set is small and read whole anyway, so
/// the exact total comes from the same scan (`count(*) OVER ()`) instead of a second query.
pub fn list_page_sql(q: &ListQuery) -> Sql {
    page_sql(q)
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
