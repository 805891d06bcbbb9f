//! Batch writes (run each in a transaction): the live partners of a batch locked in id order
//! ([`lock_live`]), many updates with their own fields in one statement ([`update_many`]), and
//! one tag/status/active change of many partners in one statement ([`modify_many`]). The change
//! log's row triggers (migration 12) log each changed partner on its own.

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use serde_json::{Map, Value, json};

use super::write::PartnerChanges;
use crate::db::sql::{Bind, Sql};
use crate::model::PartnerStatus;

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Locks the live partners among `ids` (in id order, so concurrent batches never deadlock on
/// each other) and returns their ids, ascending.
pub fn lock_live(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    let mut sql = Sql::new("SELECT id FROM partners WHERE id = ANY(");
    sql.bind(Bind::I64Array(ids.to_vec()))
        .push(") AND deleted_at IS NULL ORDER BY id FOR UPDATE");
    let rows: Vec<Id> = sql.into_query().load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// The changes of one update as a JSON object holding only the fields set (`external_id: null`
/// clears it), plus the partner's `id`.
fn changes_json(id: i64, ch: &PartnerChanges) -> Value {
    let mut item = Map::new();
    item.insert("id".into(), json!(id));
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            item.insert(key.into(), value);
        }
    };
    put("name", ch.name.as_ref().map(|v| json!(v)));
    put("description", ch.description.as_ref().map(|v| json!(v)));
    put("email", ch.email.as_ref().map(|v| json!(v)));
    put("logo_url", ch.logo_url.as_ref().map(|v| json!(v)));
    put("website_url", ch.website_url.as_ref().map(|v| json!(v)));
    put("video_url", ch.video_url.as_ref().map(|v| json!(v)));
    put("categories", ch.categories.as_ref().map(|v| json!(v)));
    let wholesaler = ch.wholesaler_categories.as_ref().map(|v| json!(v));
    put("wholesaler_categories", wholesaler);
    put("country_codes", ch.country_codes.as_ref().map(|v| json!(v)));
    put("tags", ch.tags.as_ref().map(|v| json!(v)));
    put("status", ch.status.map(|s| json!(s.as_str())));
    put("active", ch.active.map(|v| json!(v)));
    put("external_id", ch.external_id.as_ref().map(|v| json!(v)));
    put("metadata", ch.metadata.clone());
    Value::Object(item)
}

const TEXT_COLUMNS: [&str; 8] = [
    "name",
    "description",
    "email",
    "logo_url",
    "website_url",
    "video_url",
    "status",
    "external_id",
];
const ARRAY_COLUMNS: [&str; 4] = [
    "categories",
    "wholesaler_categories",
    "country_codes",
    "tags",
];

/// The statement of [`update_many`]: the updates travel as one JSON array; each column takes
/// the item's value when the item has the key, else keeps its own.
pub fn update_many_sql(updates: &[(i64, &PartnerChanges)]) -> Sql {
    let items: Vec<Value> = updates
        .iter()
        .map(|(id, ch)| changes_json(*id, ch))
        .collect();
    let mut sql = Sql::new("UPDATE partners p SET ");
    let set = |column: &str, value: &str| {
        format!("{column} = CASE WHEN v.e ? '{column}' THEN {value} ELSE p.{column} END, ")
    };
    for column in TEXT_COLUMNS {
        sql.push(&set(column, &format!("v.e->>'{column}'")));
    }
    for column in ARRAY_COLUMNS {
        let value = format!(
            "ARRAY(SELECT a.x FROM jsonb_array_elements_text(v.e->'{column}') \
             WITH ORDINALITY AS a(x, n) ORDER BY a.n)"
        );
        sql.push(&set(column, &value));
    }
    sql.push(&set("active", "(v.e->'active')::boolean"))
        .push(&set("metadata", "v.e->'metadata'"))
        .push(
            "updated_at = now() FROM (SELECT (e->>'id')::bigint AS id, e \
             FROM jsonb_array_elements(",
        )
        .bind(Bind::Text(Value::Array(items).to_string()))
        .push(
            "::jsonb) AS e) v WHERE p.id = v.id AND p.deleted_at IS NULL \
             RETURNING p.id",
        );
    sql
}

/// Applies each `(id, changes)` to its live partner in one statement; the ids updated (a
/// missing or deleted partner is not).
pub fn update_many(
    conn: &mut PgConnection,
    updates: &[(i64, &PartnerChanges)],
) -> QueryResult<Vec<i64>> {
    let rows: Vec<Id> = update_many_sql(updates).into_query().load(conn)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// One change of many partners: tags added and removed (removal wins), status and active set.
#[derive(Debug, Clone, Default)]
pub struct Modification {
    /// Tags to add.
    pub add_tags: Vec<String>,
    /// Tags to remove.
    pub remove_tags: Vec<String>,
    /// The new status, if any.
    pub status: Option<PartnerStatus>,
    /// The new active flag, if any.
    pub active: Option<bool>,
}

/// A partner a modification changed, with its tag count after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct Modified {
    /// The partner.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// How many tags it has now.
    #[diesel(sql_type = Integer)]
    pub tags: i32,
}

/// The statement of [`modify_many`]: the new values computed from each row, written only where
/// they differ (a partner that has them already is neither touched nor logged).
pub fn modify_many_sql(ids: &[i64], m: &Modification) -> Sql {
    let mut sql = Sql::new(
        "UPDATE partners p SET tags = n.tags, status = n.status, active = n.active, \
         updated_at = now() FROM (SELECT q.id, ARRAY(SELECT DISTINCT t FROM unnest(q.tags || ",
    );
    sql.bind(Bind::TextArray(m.add_tags.clone()))
        .push(") AS t WHERE t <> ALL(")
        .bind(Bind::TextArray(m.remove_tags.clone()))
        .push(") ORDER BY t) AS tags, ");
    match m.status {
        Some(status) => sql.bind(Bind::Text(status.as_str().to_owned())),
        None => sql.push("q.status"),
    };
    sql.push(" AS status, ");
    match m.active {
        Some(active) => sql.bind(Bind::Bool(active)),
        None => sql.push("q.active"),
    };
    sql.push(" AS active FROM partners q WHERE q.id = ANY(")
        .bind(Bind::I64Array(ids.to_vec()))
        .push(
            ") AND q.deleted_at IS NULL) n WHERE p.id = n.id \
             AND (p.tags, p.status, p.active) IS DISTINCT FROM (n.tags, n.status, n.active) \
             RETURNING p.id, cardinality(p.tags) AS tags",
        );
    sql
}

/// Applies `m` to the live partners among `ids` in one statement; the partners it changed.
pub fn modify_many(
    conn: &mut PgConnection,
    ids: &[i64],
    m: &Modification,
) -> QueryResult<Vec<Modified>> {
    let mut rows: Vec<Modified> = modify_many_sql(ids, m).into_query().load(conn)?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}
