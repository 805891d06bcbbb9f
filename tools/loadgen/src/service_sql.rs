//! The one module of the load tools that reaches into the service library's internals: the SQL
//! the service runs (the list planner's statements, and the model's other statement builders,
//! with the bind values written as literals for EXPLAIN and pgbench), its in-memory list copy and
//! preference cache (loaded as the server loads them, so the planner picks the statements the
//! server picks), its request validation, its click batch statement, its key creation and its
//! database creation.
//!
//! Everything else in `loadgen` uses only the generated gRPC client and messages
//! (`partners::grpc::pb`), `partners::config` and `partners::db::run_migrations`. When the
//! service's internal paths move, this file alone is re-pointed; its functions speak in the load
//! tools' own terms ([`Context`], [`List`], SQL text) so that no service type leaks out of it.

use diesel::pg::PgConnection;
use partners::config::DbConfig;
use partners::grpc::pb;
use partners::grpc::validate::ListRequest;
use partners::model::click_event::INSERT_BATCH;
use partners::model::partner::{
    ListKind, ListQuery, Scope, find_many_sql, known_page_sql, list_count_sql, list_page_sql,
    load_integrations_sql, load_preferred_sql, load_users_sql,
};
use partners::serving::lists::copy::Snapshot;
use partners::serving::lists::planner::plan;
use partners::serving::lists::preferences::{MAX_PER_BUSINESS, PreferenceCache};
use partners::serving::lists::{Plan, View};

use crate::data::{COMMON_CATEGORIES, COMMON_COUNTRY, SEARCH_WORD};
use crate::{Error, Result};

/// Partners per page of every list scenario.
const PER_PAGE: i64 = 25;

/// The business and user in context of every scenario (the benchmark user's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// The business in context.
    pub business_id: i64,
    /// The user in context.
    pub user_id: i64,
}

impl Context {
    fn scope(self) -> Scope {
        Scope {
            business_id: Some(self.business_id),
            user_id: Some(self.user_id),
        }
    }
}

/// A list of the scenarios, in the service's default order, 25 per page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// ListPartners with the scenario's filters and search: the two most common categories, the
    /// most common country and the search word, page 1.
    PartnersSearch,
    /// ListAvailablePartners, no filter, at this page.
    Available(i64),
    /// ListWholesalers at this page.
    Wholesalers(i64),
}

impl List {
    /// The query the service runs for this list with `context`.
    fn query(self, context: Context) -> ListQuery {
        let scope = context.scope();
        match self {
            List::PartnersSearch => {
                let mut query = ListQuery::new(ListKind::All, scope, 1, PER_PAGE);
                query.categories = COMMON_CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
                query.country_codes = vec![COMMON_COUNTRY.to_owned()];
                query.search = Some(SEARCH_WORD.to_owned());
                query
            }
            List::Available(page) => ListQuery::new(ListKind::Available, scope, page, PER_PAGE),
            List::Wholesalers(page) => ListQuery::new(ListKind::Wholesalers, scope, page, PER_PAGE),
        }
    }
}

/// The service's in-memory copy of the directory and its preference cache, loaded from the
/// database as the server loads them, so the planner picks the statements the server picks.
pub struct ListCopy {
    snapshot: View,
    preferences: PreferenceCache,
}

impl ListCopy {
    /// Loads the copy from `conn`.
    pub fn load(conn: &mut PgConnection) -> Result<ListCopy> {
        let snapshot =
            Snapshot::load(conn).map_err(|e| Error::new(format!("search index: {e}")))?;
        Ok(ListCopy {
            snapshot: View::new(snapshot),
            preferences: PreferenceCache::default(),
        })
    }

    /// The plan of `q` and its first statement, as the server plans it while its copy is current.
    fn planned(&self, conn: &mut PgConnection, q: &ListQuery) -> Result<(Plan, String)> {
        let planned = plan(conn, q, &self.snapshot, &self.preferences)
            .map_err(|e| Error::new(format!("plan: {e}")))?;
        let sql = planned.statement(q, &self.snapshot).with_literals();
        Ok((planned, sql))
    }

    /// The page statement the service runs for [`List::PartnersSearch`] while its copy is
    /// current: `known_page_sql` with the page the service cuts from the copy's matches on this
    /// data and the business's preferences (loaded as its preference cache loads them).
    pub fn search_page_statement(
        &self,
        conn: &mut PgConnection,
        context: Context,
    ) -> Result<String> {
        match self.planned(conn, &List::PartnersSearch.query(context))? {
            (Plan::CutPage { .. }, sql) => Ok(sql),
            (other, _) => Err(Error::new(format!(
                "the copy does not cut the ListPartners scenario's page: {other:?}"
            ))),
        }
    }

    /// The page statement the service runs for an unsearched `list` while its copy is current:
    /// `known_page_sql` with the page the copy cuts (the copy tells the total); `None` when the
    /// copy does not cut that page.
    pub fn page_statement(
        &self,
        conn: &mut PgConnection,
        list: List,
        context: Context,
    ) -> Result<Option<String>> {
        Ok(match self.planned(conn, &list.query(context))? {
            (Plan::CutPage { .. }, sql) => Some(sql),
            _ => None,
        })
    }

    /// The first statement of a list in a chosen order (`request`, validated as the service
    /// validates it): the page's ids under the copy's version (`guarded_page_ids_sql`).
    pub fn ordered_ids_statement(
        &self,
        conn: &mut PgConnection,
        request: &pb::ListPartnersRequest,
        context: Context,
    ) -> Result<String> {
        match self.planned(conn, &ordered_query(request, context)?)? {
            (Plan::FindPage { .. }, sql) => Ok(sql),
            (other, _) => Err(Error::new(format!(
                "the service does not find this page by its ids: {other:?}"
            ))),
        }
    }

    /// The second statement of a list in a chosen order: the rows of the page's `ids`
    /// (`known_page_sql`, in the same transaction).
    pub fn ordered_rows_statement(
        &self,
        request: &pb::ListPartnersRequest,
        context: Context,
        ids: &[i64],
    ) -> Result<String> {
        let q = ordered_query(request, context)?;
        Ok(known_page_sql(&q, ids, Some(self.snapshot.version()), None).with_literals())
    }
}

/// `request` validated by the service, with `context` in scope.
fn ordered_query(request: &pb::ListPartnersRequest, context: Context) -> Result<ListQuery> {
    let mut q = ListRequest::try_from(request)
        .map_err(|e| Error::new(e.to_string()))?
        .query;
    q.scope = context.scope();
    Ok(q)
}

/// The SQL path's page statement of `list` (run when the copy is stale or off).
pub fn sql_path_page_statement(list: List, context: Context) -> String {
    list_page_sql(&list.query(context)).with_literals()
}

/// The SQL path's count statement of `list` (run when the page cannot tell the total).
pub fn sql_path_count_statement(list: List, context: Context) -> String {
    list_count_sql(&list.query(context)).with_literals()
}

/// The statement loading a business's preferred partners (once per preference version).
pub fn preferred_statement(business_id: i64) -> String {
    load_preferred_sql(business_id, MAX_PER_BUSINESS).with_literals()
}

/// The statement of a batch of GetPartner reads of `ids`, each with `context`.
pub fn get_partner_batch_statement(ids: &[i64], context: Context) -> String {
    let keys: Vec<(i64, Scope)> = ids.iter().map(|&id| (id, context.scope())).collect();
    find_many_sql(&keys).with_literals()
}

/// The `include=users` loader of a page of `partner_ids` for `business_id`.
pub fn users_include_statement(partner_ids: &[i64], business_id: i64) -> String {
    load_users_sql(partner_ids, Some(business_id)).with_literals()
}

/// The `include=partner_integrations` loader of a page of `partner_ids` for `business_id`.
pub fn integrations_include_statement(partner_ids: &[i64], business_id: i64) -> String {
    load_integrations_sql(partner_ids, Some(business_id)).with_literals()
}

/// The service's click batch statement as text around its seven binds (partner ids, user ids,
/// business ids, event types, principals, idempotency keys, fingerprints; each an array).
pub fn click_batch_parts() -> &'static [&'static str] {
    &INSERT_BATCH
}

/// Creates an API key as `partners keys create` does (a user key when `user_id` is set) and
/// returns it.
pub fn create_key(conn: &mut PgConnection, user_id: Option<i64>, name: &str) -> Result<String> {
    partners::auth::create_key(conn, user_id, name)
        .map_err(|e| Error::new(format!("create key `{name}`: {e}")))
}

/// Creates the database of `config` when it does not exist, as `partners serve` does.
pub fn create_database_if_missing(config: &DbConfig) -> Result<()> {
    partners::db::create_database_if_missing(config)
        .map_err(|e| Error::new(format!("create database: {e}")))
}
