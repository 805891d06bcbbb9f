//! A small builder for dynamic SQL with positional binds, used by the partner reads, whose WHERE
//! and ORDER BY clauses depend on the request. Unlike Diesel's `sql_query`, the built query is a
//! cacheable prepared statement (keyed by its text and bind types): Postgres parses and plans each
//! distinct shape once per connection instead of on every call.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Untyped};
use diesel::{QueryResult, RunQueryDsl};

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
    /// `bigint[]` with NULL elements
    OptI64Array(Vec<Option<i64>>),
    /// `text[]` with NULL elements
    OptTextArray(Vec<Option<String>>),
    /// `boolean`
    Bool(bool),
    /// `timestamptz`
    Time(chrono::DateTime<chrono::Utc>),
}

/// A piece of SQL: text, or the index of a bind.
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Bind(usize),
}

/// SQL text plus its binds, numbered `$1..` in push order.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    parts: Vec<Part>,
    binds: Vec<Bind>,
}

impl Bind {
    fn cast(&self) -> &'static str {
        match self {
            Bind::I64(_) | Bind::OptI64(_) => "bigint",
            Bind::Text(_) => "text",
            Bind::TextArray(_) | Bind::OptTextArray(_) => "text[]",
            Bind::I64Array(_) | Bind::OptI64Array(_) => "bigint[]",
            Bind::Bool(_) => "boolean",
            Bind::Time(_) => "timestamptz",
        }
    }
}

impl Sql {
    /// Starts with the given text.
    pub fn new(text: &str) -> Self {
        let mut sql = Sql::default();
        sql.push(text);
        sql
    }

    /// Appends raw SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        match self.parts.last_mut() {
            Some(Part::Text(last)) => last.push_str(text),
            _ => self.parts.push(Part::Text(text.to_owned())),
        }
        self
    }

    /// Appends a placeholder for `bind` (with an explicit cast, so Postgres never guesses).
    pub fn bind(&mut self, bind: Bind) -> &mut Self {
        let cast = bind.cast();
        self.binds.push(bind);
        self.parts.push(Part::Bind(self.binds.len() - 1));
        self.parts.push(Part::Text(format!("::{cast}")));
        self
    }

    /// Appends `other`'s text and binds (its placeholders numbered after this one's).
    pub fn append(&mut self, other: Sql) -> &mut Self {
        let offset = self.binds.len();
        self.binds.extend(other.binds);
        for part in other.parts {
            match part {
                Part::Text(text) => {
                    self.push(&text);
                }
                Part::Bind(i) => self.parts.push(Part::Bind(i + offset)),
            }
        }
        self
    }

    /// The SQL text with `$n` placeholders, as Postgres receives it (never contains bound values).
    pub fn text(&self) -> String {
        self.render(|i, _| format!("${}", i + 1))
    }

    /// The text with each bind written by `bind` (given its index and value).
    fn render(&self, bind: impl Fn(usize, &Bind) -> String) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Bind(i) => out.push_str(&bind(*i, &self.binds[*i])),
            }
        }
        out
    }

    /// The SQL with every bind written as a literal, for EXPLAIN (by hand, or the load tools' plans)
    /// (never run by the service: its queries always bind).
    pub fn with_literals(&self) -> String {
        fn text(v: &str) -> String {
            format!("'{}'", v.replace('\'', "''"))
        }
        // The placeholder's cast follows in the text (`$1::bigint[]`), so an empty array is typed.
        fn array<T>(items: &[T], item: impl Fn(&T) -> String) -> String {
            let items: Vec<String> = items.iter().map(item).collect();
            format!("ARRAY[{}]", items.join(", "))
        }
        let opt_i64 = |v: &Option<i64>| v.map_or("NULL".to_owned(), |v| v.to_string());
        self.render(|_, bind| match bind {
            Bind::I64(v) => v.to_string(),
            Bind::OptI64(v) => opt_i64(v),
            Bind::Text(v) => text(v),
            Bind::TextArray(v) => array(v, |s| text(s)),
            Bind::I64Array(v) => array(v, i64::to_string),
            Bind::OptI64Array(v) => array(v, opt_i64),
            Bind::OptTextArray(v) => array(v, |s| s.as_deref().map_or("NULL".to_owned(), text)),
            Bind::Bool(v) => v.to_string(),
            Bind::Time(v) => text(&v.to_rfc3339()),
        })
    }

    /// Builds the Diesel query (a cacheable prepared statement).
    pub fn into_query(self) -> Prepared {
        Prepared(self)
    }
}

/// A [`Sql`] ready to run; Diesel caches its prepared statement per connection.
#[derive(Debug, Clone)]
pub struct Prepared(Sql);

impl QueryId for Prepared {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared {}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        for part in &self.0.parts {
            match part {
                Part::Text(text) => out.push_sql(text),
                Part::Bind(i) => match &self.0.binds[*i] {
                    Bind::I64(v) => out.push_bind_param::<BigInt, _>(v)?,
                    Bind::OptI64(v) => out.push_bind_param::<Nullable<BigInt>, _>(v)?,
                    Bind::Text(v) => out.push_bind_param::<Text, _>(v)?,
                    Bind::TextArray(v) => out.push_bind_param::<Array<Text>, _>(v)?,
                    Bind::I64Array(v) => out.push_bind_param::<Array<BigInt>, _>(v)?,
                    Bind::OptI64Array(v) => out.push_bind_param::<Array<Nullable<BigInt>>, _>(v)?,
                    Bind::OptTextArray(v) => out.push_bind_param::<Array<Nullable<Text>>, _>(v)?,
                    Bind::Bool(v) => out.push_bind_param::<Bool, _>(v)?,
                    Bind::Time(v) => out.push_bind_param::<Timestamptz, _>(v)?,
                },
            }
        }
        Ok(())
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
    fn literals_replace_the_binds() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(Bind::OptI64(None))
            .push(" AND b && ")
            .bind(Bind::TextArray(vec!["it's".into(), "x".into()]))
            .push(" AND c = ")
            .bind(Bind::I64(7));
        assert_eq!(
            sql.with_literals(),
            "SELECT 1 WHERE a = NULL::bigint AND b && ARRAY['it''s', 'x']::text[] AND c = 7::bigint"
        );
    }

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
