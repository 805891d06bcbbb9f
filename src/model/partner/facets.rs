//! A list's facets on the SQL path: its matches (filters, search and preference, as
//! [`super::list_page_sql`] keeps them) counted per value of each asked field, in one statement,
//! whatever the number of values. The lists' copy counts them itself when it can
//! (`crate::serving::lists`).

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::list::push_filters;
use super::query::{FacetField, Facets, ListQuery, facet_values};
use super::record::push_preference_join;
use crate::db::sql::Sql;

/// The statement of [`facets`]: `(field, value, n)` rows.
pub fn facets_sql(q: &ListQuery) -> Sql {
    let mut sql = Sql::new("SELECT f.field, f.value, count(*) AS n FROM (SELECT ");
    let columns: Vec<&str> = q.facets.iter().map(|f| f.as_str()).collect();
    sql.push(
        &columns
            .iter()
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
    .push(" FROM partners p");
    if q.preferred.is_some() {
        push_preference_join(&mut sql, q.scope);
    }
    push_filters(&mut sql, q);
    sql.push(") m CROSS JOIN LATERAL (");
    let parts: Vec<String> = q
        .facets
        .iter()
        .map(|f| match f {
            FacetField::Status => "SELECT 'status'::text AS field, m.status AS value".to_owned(),
            array => {
                let c = array.as_str();
                format!("SELECT '{c}'::text AS field, v AS value FROM unnest(m.{c}) v")
            }
        })
        .collect();
    sql.push(&parts.join(" UNION ALL "))
        .push(") f GROUP BY f.field, f.value");
    sql
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    field: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `q`'s facets counted by Postgres (empty when none is asked).
pub fn facets(conn: &mut PgConnection, q: &ListQuery) -> QueryResult<Facets> {
    if q.facets.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<Counted> = facets_sql(q).into_query().load(conn)?;
    Ok(q.facets
        .iter()
        .map(|&field| {
            let values = rows
                .iter()
                .filter(|r| r.field == field.as_str())
                .map(|r| (r.value.clone(), r.n))
                .collect();
            (field, facet_values(values))
        })
        .collect())
}
