//! Cursor pages (keyset pagination, AIP-158): the page after a given row of a list, in the list's
//! order, found by where that row sorts rather than by an offset, so a page costs the same at
//! any depth and a walk neither skips nor repeats a partner while others are created or deleted.
//!
//! A list's order is its sort keys then `id` (ListPartners' default order with a business puts
//! the business's preferred partners first: the preference is then the leading key). The rows
//! after `(k1, …, kn, id)` are the union of n + 1 disjoint parts: part j holds the rows equal to
//! the cursor on k1..kj and strictly after it on the next key. Each part is a range of the order's
//! index (`partners_name_id_idx`, the `created_at`/`updated_at`/`users_count` indexes of
//! migration 11), walked for at most a page, so mixed directions (`created_at DESC, id ASC`,
//! which no row comparison expresses) cost what `name, id` does. The parts' rows are then
//! ordered and cut once more, and only the page's rows are joined with their context.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;

use super::list::{
    preference_decides, preferred_first, push_filters, push_order, push_preferred_rows,
};
use super::query::{ListQuery, SortField};
use super::record::{
    CONTEXT_COLUMNS, PARTNER_COLUMNS, PartnerRecord, push_context_joins, push_preference_join,
};
use crate::db::sql::{Bind, Sql};

/// One sort key's value at a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    /// `name`
    Text(String),
    /// `clicks`, `users_count`
    Int(i64),
    /// `created_at`, `updated_at` (µs, as stored)
    Time(DateTime<Utc>),
}

/// Where a walk stopped: the last row's place in its list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    /// In ListPartners' default order with a business in scope: whether the row is one of the
    /// business's preferred partners (they come first). `None` in every other order.
    pub preferred: Option<bool>,
    /// The row's values of the list's sort keys ([`order_keys`]), in order.
    pub values: Vec<KeyValue>,
    /// The row's id (the last key of every order).
    pub id: i64,
}

/// The sort keys of `q`'s order before `id`: its `sort`, or `name` for the default order.
pub fn order_keys(q: &ListQuery) -> Vec<(SortField, bool)> {
    if q.sort.is_empty() {
        vec![(SortField::Name, false)]
    } else {
        q.sort.clone()
    }
}

/// Whether the business's preference leads `q`'s order (ListPartners' default order, with a
/// business in scope and no preference filter; a filter leaves one group only).
pub fn grouped(q: &ListQuery) -> bool {
    preferred_first(q) && q.preferred.is_none() && q.scope.business_id.is_some()
}

impl After {
    /// The place of `row` in `q`'s order.
    pub fn of(q: &ListQuery, row: &PartnerRecord) -> After {
        After {
            preferred: grouped(q).then_some(row.preferred),
            values: order_keys(q)
                .into_iter()
                .map(|(field, _)| match field {
                    SortField::Name => KeyValue::Text(row.name.clone()),
                    SortField::CreatedAt => KeyValue::Time(row.created_at),
                    SortField::UpdatedAt => KeyValue::Time(row.updated_at),
                    SortField::Clicks => KeyValue::Int(row.website_clicks + row.video_clicks),
                    SortField::UsersCount => KeyValue::Int(row.users_count),
                })
                .collect(),
            id: row.id,
        }
    }

    /// Whether this cursor has the shape of `q`'s order (its keys' kinds, the preference group).
    pub fn fits(&self, q: &ListQuery) -> bool {
        let keys = order_keys(q);
        self.preferred.is_some() == grouped(q)
            && self.values.len() == keys.len()
            && keys.iter().zip(&self.values).all(|((field, _), value)| {
                matches!(
                    (field, value),
                    (SortField::Name, KeyValue::Text(_))
                        | (
                            SortField::CreatedAt | SortField::UpdatedAt,
                            KeyValue::Time(_)
                        )
                        | (SortField::Clicks | SortField::UsersCount, KeyValue::Int(_))
                )
            })
    }

    /// The cursor as bytes (the payload of a page token): a format byte, the group (0 none,
    /// 1 not preferred, 2 preferred), the values (a tag byte each, then 8 bytes, or a 4-byte
    /// length and UTF-8 for text), then the id.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8, self.preferred.map_or(0, |p| 1 + u8::from(p))];
        out.push(u8::try_from(self.values.len()).unwrap_or(u8::MAX));
        for value in &self.values {
            match value {
                KeyValue::Text(s) => {
                    out.push(0);
                    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(0).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                KeyValue::Int(n) => {
                    out.push(1);
                    out.extend_from_slice(&n.to_be_bytes());
                }
                KeyValue::Time(t) => {
                    out.push(2);
                    out.extend_from_slice(&t.timestamp_micros().to_be_bytes());
                }
            }
        }
        out.extend_from_slice(&self.id.to_be_bytes());
        out
    }

    /// The cursor of [`After::encode`]'s bytes, all of them; `None` for any other bytes.
    pub fn decode(bytes: &[u8]) -> Option<After> {
        let mut r = Reader(bytes);
        if r.take(1)? != [1] {
            return None;
        }
        let preferred = match r.take(1)?[0] {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return None,
        };
        let count = r.take(1)?[0];
        let mut values = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            values.push(match r.take(1)?[0] {
                0 => {
                    let len = u32::from_be_bytes(r.take(4)?.try_into().ok()?);
                    let text = r.take(usize::try_from(len).ok()?)?;
                    KeyValue::Text(String::from_utf8(text.to_vec()).ok()?)
                }
                1 => KeyValue::Int(r.i64()?),
                2 => KeyValue::Time(DateTime::from_timestamp_micros(r.i64()?)?),
                _ => return None,
            });
        }
        let id = r.i64()?;
        r.0.is_empty().then_some(After {
            preferred,
            values,
            id,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// One key of the order, with the cursor's value.
enum Term {
    /// The preference group (preferred first), the cursor's group.
    Group(bool),
    /// A column of `partners p`, descending or not, the cursor's value.
    Column(&'static str, bool, Bind),
}

impl Term {
    /// Whether any row sorts strictly after the cursor on this key.
    fn passable(&self) -> bool {
        !matches!(self, Term::Group(false))
    }

    /// `AND` the key equal to the cursor's (`rows`: on `partner_preferred_rows n`).
    fn push_equal(&self, sql: &mut Sql, rows: bool) {
        match self {
            Term::Group(true) if rows => {}
            Term::Group(true) => {
                sql.push(" AND pp.partner_id IS NOT NULL");
            }
            Term::Group(false) => {
                sql.push(" AND pp.partner_id IS NULL");
            }
            Term::Column(column, _, value) => {
                sql.push(&format!(" AND {} = ", on(column, rows)))
                    .bind(value.clone());
            }
        }
    }

    /// `AND` the key strictly after the cursor's (see [`Term::passable`]).
    fn push_after(&self, sql: &mut Sql, rows: bool) {
        match self {
            Term::Group(_) => {
                sql.push(" AND pp.partner_id IS NULL");
            }
            Term::Column(column, desc, value) => {
                let op = if *desc { "<" } else { ">" };
                sql.push(&format!(" AND {} {op} ", on(column, rows)))
                    .bind(value.clone());
            }
        }
    }
}

/// `column` of `partners p`, or its copy in `partner_preferred_rows n` (`rows`; the default order's
/// keys only: name and id).
fn on(column: &'static str, rows: bool) -> &'static str {
    match column {
        "p.name" if rows => "n.name",
        "p.id" if rows => "n.partner_id",
        other => other,
    }
}

fn bind(value: &KeyValue) -> Bind {
    match value {
        KeyValue::Text(s) => Bind::Text(s.clone()),
        KeyValue::Int(n) => Bind::I64(*n),
        KeyValue::Time(t) => Bind::Time(*t),
    }
}

/// The page of at most `limit` rows of `q` after `after` (which must fit `q`: [`After::fits`]),
/// in `q`'s order, with context and no total.
pub fn keyset_page_sql(q: &ListQuery, after: &After, limit: i64) -> Sql {
    let mut terms = Vec::new();
    if let Some(group) = after.preferred {
        terms.push(Term::Group(group));
    }
    for ((field, desc), value) in order_keys(q).into_iter().zip(&after.values) {
        terms.push(Term::Column(field.column(), desc, bind(value)));
    }
    terms.push(Term::Column("p.id", false, Bind::I64(after.id)));
    let grouped = after.preferred.is_some();

    let mut sql = Sql::new("SELECT ");
    sql.push(PARTNER_COLUMNS)
        .push(CONTEXT_COLUMNS)
        .push(", NULL::bigint AS total_count FROM (SELECT u.id FROM (");
    // The id can always be passed, so there is at least one part.
    let parts = (0..terms.len()).filter(|&j| terms[j].passable());
    // The preferred group's parts read the business's preferred partners by name
    // (`partner_preferred_rows`, migration 13) where it holds what the list filters on, rather
    // than walking every partner by name for the few preferred ones.
    let rows_hold = q.search.is_none() && !q.show_deleted && !q.records.is_set();
    for (n, j) in parts.enumerate() {
        if n > 0 {
            sql.push(" UNION ALL ");
        }
        let rows = rows_hold && matches!(terms[0], Term::Group(true)) && j > 0;
        if rows {
            sql.push("(SELECT n.partner_id AS id, TRUE AS g, n.name AS k0, n.partner_id AS kid");
            push_preferred_rows(&mut sql, q, q.scope.business_id);
        } else {
            sql.push("(SELECT p.id, ");
            push_key_columns(&mut sql, q, grouped);
            sql.push(" FROM partners p");
            if preference_decides(q) {
                push_preference_join(&mut sql, q.scope);
            }
            push_filters(&mut sql, q);
        }
        for term in &terms[..j] {
            term.push_equal(&mut sql, rows);
        }
        terms[j].push_after(&mut sql, rows);
        // Ordered by the keys the part leaves free only: a key fixed by an equality (or the
        // group, fixed in every part) in the ORDER BY would keep Postgres from walking the
        // index of the others and make it sort every match.
        let free: Vec<String> = terms[j..]
            .iter()
            .filter_map(|term| match term {
                Term::Group(_) => None,
                Term::Column(column, desc, _) => Some(format!(
                    "{}{}",
                    on(column, rows),
                    if *desc { " DESC" } else { "" }
                )),
            })
            .collect();
        sql.push(" ORDER BY ")
            .push(&free.join(", "))
            .push(" LIMIT ")
            .bind(Bind::I64(limit))
            .push(")");
    }
    sql.push(") u ORDER BY ");
    push_union_order(&mut sql, q, grouped);
    sql.push(" LIMIT ")
        .bind(Bind::I64(limit))
        .push(") page JOIN partners p ON p.id = page.id");
    push_context_joins(&mut sql, q.scope);
    push_order(&mut sql, q);
    sql
}

/// The parts' key columns, named `g` (the group) and `k0`, `k1`, … for the union's order.
fn push_key_columns(sql: &mut Sql, q: &ListQuery, grouped: bool) {
    if grouped {
        sql.push("(pp.partner_id IS NOT NULL) AS g, ");
    }
    for (i, (field, _)) in order_keys(q).iter().enumerate() {
        sql.push(&format!("{} AS k{i}, ", field.column()));
    }
    sql.push("p.id AS kid");
}

fn push_union_order(sql: &mut Sql, q: &ListQuery, grouped: bool) {
    if grouped {
        sql.push("u.g DESC, ");
    }
    for (i, (_, desc)) in order_keys(q).iter().enumerate() {
        sql.push(&format!("u.k{i}{}, ", if *desc { " DESC" } else { "" }));
    }
    sql.push("u.kid");
}

/// Runs [`keyset_page_sql`].
pub fn keyset_page(
    conn: &mut PgConnection,
    q: &ListQuery,
    after: &After,
    limit: i64,
) -> QueryResult<Vec<PartnerRecord>> {
    keyset_page_sql(q, after, limit).into_query().load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::partner::{ListKind, Scope};

    fn query(sort: Vec<(SortField, bool)>, business: Option<i64>) -> ListQuery {
        let mut q = ListQuery::new(
            ListKind::All,
            Scope {
                business_id: business,
                user_id: None,
            },
            1,
            10,
        );
        q.sort = sort;
        q
    }

    #[test]
    fn cursors_round_trip_and_refuse_other_bytes() {
        let after = After {
            preferred: Some(true),
            values: vec![
                KeyValue::Text("Ärger & Co".into()),
                KeyValue::Int(-3),
                KeyValue::Time(DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap()),
            ],
            id: 42,
        };
        let bytes = after.encode();
        assert_eq!(After::decode(&bytes), Some(after));
        for cut in 0..bytes.len() {
            assert_eq!(After::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(After::decode(&longer), None);
        let mut other_format = bytes;
        other_format[0] = 2;
        assert_eq!(After::decode(&other_format), None);
    }

    #[test]
    fn a_cursor_fits_the_order_it_came_from() {
        let by_name = After {
            preferred: None,
            values: vec![KeyValue::Text("a".into())],
            id: 1,
        };
        assert!(by_name.fits(&query(vec![], None)));
        assert!(by_name.fits(&query(vec![(SortField::Name, true)], Some(1))));
        assert!(
            !by_name.fits(&query(vec![], Some(1))),
            "grouped by preference"
        );
        assert!(!by_name.fits(&query(vec![(SortField::Clicks, false)], None)));
        assert!(!by_name.fits(&query(
            vec![(SortField::Name, false), (SortField::Clicks, false)],
            None
        )));
    }

    #[test]
    fn each_part_fixes_the_keys_before_it_and_passes_one() {
        let q = query(vec![(SortField::CreatedAt, true)], None);
        let after = After {
            preferred: None,
            values: vec![KeyValue::Time(DateTime::from_timestamp_micros(5).unwrap())],
            id: 9,
        };
        let text = keyset_page_sql(&q, &after, 11).text();
        assert_eq!(text.matches(" UNION ALL ").count(), 1, "{text}");
        assert!(text.contains("AND p.created_at = $"), "{text}");
        assert!(text.contains("AND p.id > $"), "{text}");
        assert!(text.contains("AND p.created_at < $"), "{text}");
        assert!(!text.contains("OFFSET"), "{text}");

        // The last preferred partner: the rest of the preferred ones, then every other one.
        let grouped = query(vec![], Some(7));
        let after = After {
            preferred: Some(false),
            values: vec![KeyValue::Text("m".into())],
            id: 3,
        };
        let text = keyset_page_sql(&grouped, &after, 11).text();
        assert_eq!(text.matches("(SELECT p.id, ").count(), 2, "{text}");
        assert_eq!(
            text.matches("AND pp.partner_id IS NULL").count(),
            2,
            "{text}"
        );
    }
}
