//! EXPLAIN (ANALYZE, BUFFERS) of the SQL of the scenarios, written to a plans file (never to
//! BENCHMARKS.md): every statement of the list scenarios, both the service's (while its list copy
//! is current) and the SQL path's, GetPartner's batch statement and the include loaders, built by
//! the service's own builders with the bind values inlined (`service_sql`), run through `psql`.
//! A list statement whose plan scans `partners` sequentially, or could not be taken, is reported.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use loadgen::service_sql::{self, Context, List, ListCopy};

use crate::database::DataSet;
use crate::scenarios::{NEWEST_SORT, newest_request};
use crate::settings::BenchResult;

/// Where psql comes from, for the error when it is missing.
const INSTALL_HINT: &str = "psql comes with Postgres: `apt-get install postgresql-client`";

/// Fails with the install hint when psql cannot be run.
pub fn require_psql() -> BenchResult<()> {
    match Command::new("psql")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "psql --version failed ({}); {INSTALL_HINT}",
            out.status
        )),
        Err(e) => Err(format!("cannot run psql: {e}; {INSTALL_HINT}")),
    }
}

fn psql_explain(database_url: &str, sql: &str) -> BenchResult<String> {
    let out = Command::new("psql")
        .arg(database_url)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}; {INSTALL_HINT}"))?;
    if !out.status.success() {
        return Err(format!(
            "EXPLAIN failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The ids of the rows of `sql` (a statement with an `id` column).
fn ids_of(conn: &mut PgConnection, sql: &str) -> QueryResult<Vec<i64>> {
    diesel::sql_query(sql)
        .load::<Id>(conn)
        .map(|rows| rows.into_iter().map(|r| r.id).collect())
}

/// EXPLAINs one statement of a list into the plans file; a plan with a `Seq Scan on partners`,
/// or one that could not be taken (the index use is then unverified), goes into `seq_scans`.
fn explain_list_part(
    database_url: &str,
    title: &str,
    part: &str,
    sql: &str,
    seq_scans: &mut Vec<String>,
    write: &mut impl FnMut(&str) -> BenchResult<()>,
) -> BenchResult<()> {
    let plan = psql_explain(database_url, sql).unwrap_or_else(|e| {
        seq_scans.push(format!("{title} ({part}): {e}"));
        e
    });
    if plan.contains("Seq Scan on partners") {
        seq_scans.push(format!("{title} ({part})"));
    }
    write(&format!("== {title}: {part}\n{sql}\n\n{plan}\n"))
}

/// Writes the plans to `path`; returns the list queries that scan `partners` sequentially or
/// whose plan could not be taken. `deep_page` is the deep ListWholesalers row's page.
pub fn collect_plans(
    conn: &mut PgConnection,
    database_url: &str,
    data: &DataSet,
    path: &Path,
    deep_page: i64,
) -> BenchResult<Vec<String>> {
    let context = data.context();
    let lists = [
        (
            "ListPartners (scenario filters + search)".to_owned(),
            List::PartnersSearch,
        ),
        (
            "ListAvailablePartners page 1".to_owned(),
            List::Available(1),
        ),
        ("ListWholesalers page 1".to_owned(), List::Wholesalers(1)),
        (
            format!("ListWholesalers page {deep_page}"),
            List::Wholesalers(deep_page),
        ),
    ];
    let mut file = std::fs::File::create(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut write = |text: &str| {
        file.write_all(text.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    write(&format!(
        "-- EXPLAIN (ANALYZE, BUFFERS) of the SQL of the load scenarios, business id {} and user \
         id {} in context.\n\n",
        data.business_id, data.user_id
    ))?;
    let mut seq_scans = Vec::new();
    let mut page_ids: Vec<i64> = Vec::new();
    let copy = ListCopy::load(conn)?;
    for (title, list) in lists {
        let mut parts = Vec::new();
        if list == List::PartnersSearch {
            let indexed = copy.search_page_statement(conn, context)?;
            page_ids = ids_of(conn, &format!("SELECT s.id FROM ({indexed}) s")).unwrap_or_default();
            parts.push((
                "page query of the page the service cut from the search index's matches with the \
                 business's cached preferences (known_page_sql; what the service runs while its \
                 index is current)",
                indexed,
            ));
            parts.push((
                "the business's preferred partners (load_preferred_sql; run once per preference \
                 version of the business, then cached)",
                service_sql::preferred_statement(data.business_id),
            ));
        } else {
            let sql = copy
                .page_statement(conn, list, context)?
                .ok_or_else(|| format!("the search index does not cut the page of {title}"))?;
            parts.push((
                "page query of the page the service cut from the search index's matches \
                 (known_page_sql; what the service runs while its index is current: the index \
                 tells the total)",
                sql,
            ));
        }
        let sql_path = "SQL path, when the search index is stale or off: ";
        let page_part = format!("{sql_path}page query (list_page_sql)");
        let count_part = format!(
            "{sql_path}count query (list_count_sql; run when the page cannot tell the total)"
        );
        parts.push((
            &page_part,
            service_sql::sql_path_page_statement(list, context),
        ));
        parts.push((
            &count_part,
            service_sql::sql_path_count_statement(list, context),
        ));
        for (part, sql) in &parts {
            explain_list_part(database_url, &title, part, sql, &mut seq_scans, &mut write)?;
        }
    }
    // The newest row's list: a chosen order without a search takes the SQL path under the
    // search version (the copy tells the total): the page's ids, then their rows.
    let title = format!("ListPartners sort={NEWEST_SORT} page 1");
    let request = newest_request();
    let ids_sql = copy
        .ordered_ids_statement(conn, &request, context)
        .map_err(|e| format!("{title}: {e}"))?;
    let newest_ids = ids_of(conn, &ids_sql).map_err(|e| format!("{title}: {e}"))?;
    let rows_sql = copy
        .ordered_rows_statement(&request, context, &newest_ids)
        .map_err(|e| format!("{title}: {e}"))?;
    let parts = [
        (
            "page ids (guarded_page_ids_sql; the copy tells the total)",
            ids_sql,
        ),
        (
            "the page's rows (known_page_sql, same transaction)",
            rows_sql,
        ),
    ];
    for (part, sql) in &parts {
        explain_list_part(database_url, &title, part, sql, &mut seq_scans, &mut write)?;
    }
    explain_point_reads(database_url, data, context, &page_ids, &mut write)?;
    Ok(seq_scans)
}

/// GetPartner's batch statement and the include loaders of the ListPartners page `page_ids`.
fn explain_point_reads(
    database_url: &str,
    data: &DataSet,
    context: Context,
    page_ids: &[i64],
    write: &mut impl FnMut(&str) -> BenchResult<()>,
) -> BenchResult<()> {
    // GetPartner: the statement the partner reader runs, here for a batch of 16 keys spread over
    // the partners (the service binds the arrays; here they are literals).
    let step = (data.max_partner_id / 16).max(1);
    let ids: Vec<i64> = (1..=16).map(|i| i * step).collect();
    let sql = service_sql::get_partner_batch_statement(&ids, context);
    let plan = psql_explain(database_url, &sql).unwrap_or_else(|e| e);
    write(&format!(
        "== GetPartner, a batch of 16 keys (find_many_sql)\n{sql}\n\n{plan}\n"
    ))?;
    // Include loaders for the ListPartners page.
    let includes = [
        (
            "include=users (load_users_sql) for the ListPartners page",
            service_sql::users_include_statement(page_ids, data.business_id),
        ),
        (
            "include=partner_integrations (load_integrations_sql) for the ListPartners page",
            service_sql::integrations_include_statement(page_ids, data.business_id),
        ),
    ];
    for (title, sql) in includes {
        let plan = psql_explain(database_url, &sql).unwrap_or_else(|e| e);
        write(&format!("== {title}\n{sql}\n\n{plan}\n"))?;
    }
    Ok(())
}

/// The deep ListWholesalers page of the data set: 40, or the last page when it has fewer
/// wholesalers (smoke).
pub fn deep_page(data: &DataSet) -> i32 {
    ((data.wholesalers + 24) / 25).clamp(1, 40) as i32
}
