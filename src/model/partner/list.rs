//! The three lists as SQL alone (the path every list can take): the filters and orders of a
//! validated list query ([`super::query`]), the page statement and the exact count.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::query::{ListKind, ListQuery, SortField};
use super::record::{
    CONTEXT_COLUMNS, PARTNER_COLUMNS, PartnerRecord, push_context_joins, push_preference_join,
};
use crate::db::sql::{Bind, Sql, escape_like};

pub(super) fn push_filters(sql: &mut Sql, q: &ListQuery) {
    push_partner_filters(sql, q, true);
}

/// The filters of `q` on `partners p`, with its preference filter (on the `pp` join) when
/// `preference`.
pub(super) fn push_partner_filters(sql: &mut Sql, q: &ListQuery, preference: bool) {
    sql.push(if q.show_deleted {
        " WHERE TRUE"
    } else {
        " WHERE p.deleted_at IS NULL"
    });
    push_kind(sql, q, "p");
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
    push_column_filters(sql, q, "p", categories, country_codes);
    push_record_filters(sql, q);
    if preference {
        push_preferred_filter(sql, q);
    }
    if let Some(search) = &q.search {
        sql.push(" AND lower(p.name) LIKE lower(")
            .bind(Bind::Text(format!("%{}%", escape_like(search))))
            .push(")");
    }
}

/// `AND` the conditions of the list's kind on the table `alias` (partners or the groups of
/// migration 13, which have the same columns).
fn push_kind(sql: &mut Sql, q: &ListQuery, alias: &str) {
    match q.kind {
        ListKind::All => {}
        ListKind::Available => {
            sql.push(&format!(
                " AND {alias}.active AND {alias}.status IN ('available', 'coming_soon')"
            ));
        }
        ListKind::Wholesalers => {
            sql.push(&format!(" AND {alias}.categories @> ARRAY['wholesaler']"));
        }
    }
}

/// `AND` the array, status and active filters of `q` on the table `alias`, with `categories`
/// and `country_codes` in place of the query's own (empty where facets replace them).
fn push_column_filters(
    sql: &mut Sql,
    q: &ListQuery,
    alias: &str,
    categories: &[String],
    country_codes: &[String],
) {
    let arrays = [
        (categories, "categories"),
        (&q.wholesaler_categories[..], "wholesaler_categories"),
        (country_codes, "country_codes"),
    ];
    for (values, column) in arrays {
        if !values.is_empty() {
            sql.push(&format!(" AND {alias}.{column} && "))
                .bind(Bind::TextArray(values.to_vec()));
        }
    }
    if !q.excluded_categories.is_empty() {
        sql.push(&format!(" AND NOT ({alias}.categories && "))
            .bind(Bind::TextArray(q.excluded_categories.clone()))
            .push(")");
    }
    if !q.statuses.is_empty() {
        sql.push(&format!(" AND {alias}.status = ANY("))
            .bind(Bind::TextArray(
                q.statuses.iter().map(|s| s.as_str().to_owned()).collect(),
            ))
            .push(")");
    }
    if let Some(active) = q.active {
        sql.push(&format!(" AND {alias}.active = "))
            .bind(Bind::Bool(active));
    }
}

/// `AND` the filters of `q` on what only `partners p` holds: ids, external ids, tags and change
/// times (each served by an index: the primary key, the external id's unique index, the tags'
/// GIN index of migration 21, and the `created_at`/`updated_at` indexes of migration 11).
fn push_record_filters(sql: &mut Sql, q: &ListQuery) {
    let r = &q.records;
    if !r.ids.is_empty() {
        sql.push(" AND p.id = ANY(")
            .bind(Bind::I64Array(r.ids.clone()))
            .push(")");
    }
    if !r.external_ids.is_empty() {
        sql.push(" AND p.external_id = ANY(")
            .bind(Bind::TextArray(r.external_ids.clone()))
            .push(")");
    }
    if !r.tags.is_empty() {
        sql.push(" AND p.tags && ")
            .bind(Bind::TextArray(r.tags.clone()));
    }
    if !r.all_tags.is_empty() {
        sql.push(" AND p.tags @> ")
            .bind(Bind::TextArray(r.all_tags.clone()));
    }
    if let Some(since) = r.updated_since {
        sql.push(" AND p.updated_at >= ").bind(Bind::Time(since));
    }
    if let Some(since) = r.created_since {
        sql.push(" AND p.created_at >= ").bind(Bind::Time(since));
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

/// The page query of a list on the SQL path: the page's ids are found first, ordered, offset and
/// limited, and only those rows are then joined with their context, so a deep page does not pay
/// the joins of the rows it skips. No statement sorts every match of a large list:
///
/// - the default order of ListPartners (the business's preferred partners first) takes the
///   first `page * per_page` preferred matches from the walk of the business's preferred
///   partners by name (`partner_preferred_rows`, migration 13) and as many of the others from
///   the walk of `partners_name_id_idx` with an anti-join on the preferences, and orders only
///   those ([`split_page_sql`]);
/// - a list of the preferred partners alone in name order walks the former ([`preferred_page_sql`]);
/// - every other list walks the index of its order, as the rows it skips and the preference
///   filter allow ([`page_sql`]).
///
/// The exact total comes with the page: from the same scan with a search (the matching set is
/// small and read whole anyway, `count(*) OVER ()`), else from the groups of migration 13 and
/// the business's preferred partners where they tell it ([`push_total`]), evaluated once in the
/// page's snapshot. Otherwise the total is left NULL and [`list`] runs [`list_count_sql`].
///
/// A `show_deleted` list takes [`page_sql`] and counts by a scan: the groups and the preferred
/// rows of migration 13 hold live partners only.
pub fn list_page_sql(q: &ListQuery) -> Sql {
    if q.show_deleted || q.records.is_set() {
        return page_sql(q);
    }
    match q.scope.business_id {
        Some(business) if q.search.is_none() && preferred_first(q) && q.preferred.is_none() => {
            split_page_sql(q, business)
        }
        Some(business) if q.search.is_none() && q.preferred == Some(true) && in_name_order(q) => {
            preferred_page_sql(q, business)
        }
        _ => page_sql(q),
    }
}

/// Whether `q` lists in `name, id` order among the partners it keeps (the default order of every
/// list, the preference aside, or `sort=name`).
fn in_name_order(q: &ListQuery) -> bool {
    q.sort.is_empty() || q.sort == [(SortField::Name, false)]
}

/// `SELECT` the page's rows with context for the ids of `page` (the inner query, pushed by
/// `inner`, which closes with the page's `LIMIT`/`OFFSET`), in the list's order.
fn page_with_context(q: &ListQuery, inner: impl FnOnce(&mut Sql)) -> Sql {
    let mut sql = Sql::new("SELECT ");
    sql.push(PARTNER_COLUMNS)
        .push(CONTEXT_COLUMNS)
        .push(", page.total_count FROM (");
    inner(&mut sql);
    sql.push(") page JOIN partners p ON p.id = page.id");
    push_context_joins(&mut sql, q.scope);
    push_order(&mut sql, q);
    sql
}

/// `q` in its default order, the business's preferred partners first, without a search. Each
/// part gives at most the `page * per_page` first of its matches, in `name, id` order by an
/// index walk, and only those are ordered and paged: the preferred part walks
/// `partner_preferred_rows_order_idx` (the business's preferred live partners by name, with the
/// columns the filters read), the other walks `partners_name_id_idx` and skips the preferred
/// ones with an anti-join on the preferences. The parts are disjoint and together hold every
/// match.
fn split_page_sql(q: &ListQuery, business: i64) -> Sql {
    let enough = q.page.saturating_mul(q.per_page);
    page_with_context(q, |sql| {
        sql.push("SELECT u.id, ");
        push_total_or_null(sql, q);
        sql.push(" AS total_count FROM ((SELECT n.partner_id AS id, 0 AS part, n.name");
        push_preferred_rows(sql, q, Some(business));
        sql.push(" ORDER BY n.name, n.partner_id LIMIT ")
            .bind(Bind::I64(enough))
            .push(") UNION ALL (SELECT p.id, 1, p.name FROM partners p");
        push_partner_filters(sql, q, false);
        sql.push(
            " AND NOT EXISTS (SELECT FROM partner_preferences pp \
             WHERE pp.business_id = ",
        )
        .bind(Bind::I64(business))
        .push(" AND pp.partner_id = p.id) ORDER BY p.name, p.id LIMIT ")
        .bind(Bind::I64(enough))
        .push(")) u ORDER BY u.part, u.name, u.id");
        push_limit(sql, q);
    })
}

/// `q` filtered on the business's preferred partners, in name order, without a search: a walk
/// of `partner_preferred_rows_order_idx`.
fn preferred_page_sql(q: &ListQuery, business: i64) -> Sql {
    page_with_context(q, |sql| {
        sql.push("SELECT n.partner_id AS id, ");
        push_total_or_null(sql, q);
        sql.push(" AS total_count");
        push_preferred_rows(sql, q, Some(business));
        sql.push(" ORDER BY n.name, n.partner_id");
        push_limit(sql, q);
    })
}

/// `FROM` the preferred live partners of `business` (`partner_preferred_rows n`, migration 13)
/// matching the filters of `q` but the preference and the search. The table has the partners'
/// own columns, so the countries are filtered on as they are (`facets` holds the same pairs).
pub(super) fn push_preferred_rows(sql: &mut Sql, q: &ListQuery, business: Option<i64>) {
    sql.push(" FROM partner_preferred_rows n WHERE n.business_id = ")
        .bind(Bind::OptI64(business));
    push_kind(sql, q, "n");
    push_column_filters(sql, q, "n", &q.categories, &q.country_codes);
}

/// Every other list: the page's ids from `partners` alone, plus the preference when it orders or
/// filters. When the preference filters, every match has the same preference, so the inner
/// order leaves it out and the walk of the order's index can stop after the page.
fn page_sql(q: &ListQuery) -> Sql {
    page_with_context(q, |sql| {
        sql.push("SELECT p.id, ");
        if q.search.is_some() {
            sql.push("count(*) OVER ()");
        } else {
            push_total_or_null(sql, q);
        }
        sql.push(" AS total_count FROM partners p");
        if preference_decides(q) {
            push_preference_join(sql, q.scope);
        }
        push_filters(sql, q);
        if preferred_first(q) && (q.preferred.is_some() || q.scope.business_id.is_none()) {
            sql.push(" ORDER BY p.name, p.id");
        } else {
            push_order(sql, q);
        }
        push_limit(sql, q);
    })
}

/// The exact total of `q` as a scalar subquery where [`push_total`] tells it, else `NULL`.
fn push_total_or_null(sql: &mut Sql, q: &ListQuery) {
    if !push_total(sql, q) {
        sql.push("NULL::bigint");
    }
}

/// Pushes a scalar subquery counting the matches of `q` without scanning them all, and tells
/// whether it did (nothing is pushed otherwise): without a search or a country filter, the sum
/// over the groups of migration 13 that the filters match; the preferred partners among them
/// counted from the business's preferred partners (`partner_preferred_rows`). The rest (a search, countries without the preference
/// filter) is counted by [`list_count_sql`]'s scan.
fn push_total(sql: &mut Sql, q: &ListQuery) -> bool {
    if q.search.is_some() || q.show_deleted || q.records.is_set() {
        return false;
    }
    let grouped = q.country_codes.is_empty();
    match q.preferred {
        None if grouped => push_groups_total(sql, q),
        Some(true) => push_preferred_total(sql, q),
        Some(false) if grouped => {
            sql.push("(");
            push_groups_total(sql, q);
            sql.push(" - ");
            push_preferred_total(sql, q);
            sql.push(")");
        }
        _ => return false,
    }
    true
}

/// The live partners matching `q`'s filters (neither a search nor countries), the preference
/// aside: the sum over the matching groups.
fn push_groups_total(sql: &mut Sql, q: &ListQuery) {
    sql.push("(SELECT coalesce(sum(g.partners), 0)::bigint FROM partner_list_groups g WHERE TRUE");
    push_kind(sql, q, "g");
    push_column_filters(sql, q, "g", &q.categories, &[]);
    sql.push(")");
}

/// The business's preferred partners matching `q`'s filters (no search).
fn push_preferred_total(sql: &mut Sql, q: &ListQuery) {
    sql.push("(SELECT count(*)");
    push_preferred_rows(sql, q, q.scope.business_id);
    sql.push(")");
}

/// The exact-count query of a list: [`push_total`]'s subquery where it tells the total, else
/// a scan of the matches (joining the preference only when filtering on it).
pub fn list_count_sql(q: &ListQuery) -> Sql {
    let mut sql = Sql::new("SELECT ");
    if push_total(&mut sql, q) {
        sql.push(" AS total");
        return sql;
    }
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
