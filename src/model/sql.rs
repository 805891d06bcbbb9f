//! A small builder for dynamic SQL with positional binds, run through Diesel's boxed `sql_query`.
//! Used by the list queries, whose WHERE and ORDER BY clauses depend on the request.

use diesel::pg::Pg;
use diesel::query_builder::BoxedSqlQuery;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};

/// One bound value.
#[derive(Debug, Clone)]
pub enum Bind {
    /// `bigint`
    I64(i64),
    /// `bigint`, possibly NULL
    OptI64(Option<i64>),
    /// `text`
    Text(String),
    /// `text[]`
    TextArray(Vec<String>),
    /// `bigint[]`
    I64Array(Vec<i64>),
    /// `boolean`
    Bool(bool),
}

/// SQL text plus its binds, numbered `$1..` in push order.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    /// Starts with the given text.
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            binds: Vec::new(),
        }
    }

    /// Appends raw SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `bind` (with an explicit cast, so Postgres never guesses).
    pub fn bind(&mut self, bind: Bind) -> &mut Self {
        let cast = match bind {
            Bind::I64(_) | Bind::OptI64(_) => "bigint",
            Bind::Text(_) => "text",
            Bind::TextArray(_) => "text[]",
            Bind::I64Array(_) => "bigint[]",
            Bind::Bool(_) => "boolean",
        };
        self.binds.push(bind);
        self.text
            .push_str(&format!("${}::{cast}", self.binds.len()));
        self
    }

    /// The SQL text (for EXPLAIN and logs; never contains bound values).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Builds the Diesel query.
    pub fn into_query(self) -> BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery> {
        let mut query = diesel::sql_query(self.text).into_boxed::<Pg>();
        for bind in self.binds {
            query = match bind {
                Bind::I64(v) => query.bind::<BigInt, _>(v),
                Bind::OptI64(v) => query.bind::<Nullable<BigInt>, _>(v),
                Bind::Text(v) => query.bind::<Text, _>(v),
                Bind::TextArray(v) => query.bind::<Array<Text>, _>(v),
                Bind::I64Array(v) => query.bind::<Array<BigInt>, _>(v),
                Bind::Bool(v) => query.bind::<Bool, _>(v),
            };
        }
        query
    }
}

/// Escapes `%`, `_` and `\` so a LIKE pattern matches them literally.
pub fn escape_like(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 4);
    for ch in input.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_are_numbered_in_order() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(Bind::I64(1))
            .push(" AND b = ")
            .bind(Bind::Text("x".into()));
        assert_eq!(sql.text(), "SELECT 1 WHERE a = $1::bigint AND b = $2::text");
    }

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
