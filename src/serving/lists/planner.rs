//! The list planner: [`plan`] decides how a list is answered and names the statements it runs
//! ([`Plan`], [`Plan::statement`]); [`Lists::run`] runs them, and takes the SQL path when a
//! guarded statement finds that the database moved past the copy. Every list request's SQL is one
//! hop from here, in `crate::model::partner`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use diesel::pg::PgConnection;

use super::delta::View;
use super::exactness::{Answered, Checked};
use super::paging::{arrange, in_list_order};
use super::preferences::{PreferenceCache, Preferred};
use super::trigram::MAX_ORDERED_BY_SQL;
use super::{ListQuery, Lists};
use crate::db::sql::Sql;
use crate::error::Result;
use crate::model::partner::{self, After, Facets, Includes, Loaded, PartnerRecord};

/// A page of records and the list's exact total.
pub type Page = (Vec<PartnerRecord>, i64);

/// A list's answer: the page with its includes, the exact total (`None` on a page after a
/// cursor), the facets asked for, and where the next page starts (`None` on the last page).
#[derive(Debug)]
pub struct ListPage {
    /// The page's partners and their includes.
    pub loaded: Loaded,
    /// The list's exact total (pages reached by `page` number only).
    pub total: Option<i64>,
    /// The counts `facets` asked for.
    pub facets: Facets,
    /// The cursor after the page's last row, when more rows follow.
    pub next: Option<After>,
}

/// How a list is answered, with the statements it runs.
#[derive(Debug)]
pub enum Plan {
    /// The copy has the matches (`search`: a search's matches in list order; `None`: an unsearched
    /// list in list order, whose matches the copy keeps per filter) and cuts the page, with the
    /// business's cached preferences where they order or filter it (`preferred`); Postgres joins
    /// the page's rows: [`partner::known_page_sql`], guarded by the copy's search version and the
    /// set's preference version.
    CutPage {
        /// The search's matches, in list order.
        search: Option<Vec<i64>>,
        /// The business and its preferred partners, when the preference decides the page.
        preferred: Option<(i64, Arc<Preferred>)>,
    },
    /// The copy has a search's matches but the business prefers more partners than the cache
    /// holds: Postgres orders and pages the matches, [`partner::candidates_page_sql`].
    OrderMatches(Vec<i64>),
    /// An unsearched list in another order: Postgres finds the page's ids,
    /// [`partner::guarded_page_ids_sql`], and joins their rows, [`partner::known_page_sql`], in one
    /// snapshot; the copy tells the exact total.
    FindPage {
        /// The list's total, counted in the copy.
        total: i64,
    },
    /// SQL alone: [`partner::list_page_sql`] and, when the page does not tell the total,
    /// [`partner::list_count_sql`] (see [`partner::list`]).
    Sql,
}

/// How `q` is answered with `snapshot`: the planner's one decision. Loads the business's
/// preferred partners into `preferences` when they order or filter the page. A `show_deleted`
/// list (admin) takes the SQL path: the copy holds live partners only; so does a list filtered on
/// ids, external ids, tags or change times, which the copy does not hold.
pub fn plan(
    conn: &mut PgConnection,
    q: &ListQuery,
    snapshot: &View,
    preferences: &PreferenceCache,
) -> Result<Plan> {
    if q.show_deleted || q.records.is_set() {
        return Ok(Plan::Sql);
    }
    let search = snapshot.candidates(q);
    if search.is_some() || in_list_order(q) {
        let business = q
            .scope
            .business_id
            .filter(|_| partner::preference_decides(q));
        let preferred = match business {
            Some(business) => preferences.get(conn, business)?,
            None => None,
        };
        if business.is_none() || preferred.as_ref().is_some_and(|p| p.complete()) {
            return Ok(Plan::CutPage {
                search,
                preferred: business.zip(preferred),
            });
        }
    }
    if let Some(ids) = search {
        return Ok(if ids.len() <= MAX_ORDERED_BY_SQL {
            Plan::OrderMatches(ids)
        } else {
            Plan::Sql
        });
    }
    Ok(match snapshot.count(q) {
        Some(total) => Plan::FindPage {
            total: total as i64,
        },
        None => Plan::Sql,
    })
}

/// The page's ids and the list's total cut from the copy: among a search's matches (`search`),
/// or among the matches of an unsearched list's filters, with the business's `preferred` partners
/// where they order or filter the page.
fn cut(
    q: &ListQuery,
    snapshot: &View,
    search: Option<&[i64]>,
    preferred: Option<&Preferred>,
) -> (Vec<i64>, i64) {
    match search {
        Some(ids) => arrange(q, ids, preferred),
        None => snapshot.page(q, preferred).unwrap_or_default(),
    }
}

impl Plan {
    /// The first statement the plan runs for `q` with `snapshot` (for EXPLAIN: the load tools
    /// write its plan; operators can too). [`Plan::FindPage`]'s second statement is
    /// [`partner::known_page_sql`] with the ids the first one returns.
    pub fn statement(&self, q: &ListQuery, snapshot: &View) -> Sql {
        match self {
            Plan::CutPage { search, preferred } => {
                let set = preferred.as_ref().map(|(_, p)| &**p);
                let (ids, _) = cut(q, snapshot, search.as_deref(), set);
                let guard = preferred.as_ref().map(|(b, p)| (*b, p.version));
                partner::known_page_sql(q, &ids, Some(snapshot.version), guard)
            }
            Plan::OrderMatches(ids) => partner::candidates_page_sql(q, ids, snapshot.version),
            Plan::FindPage { .. } => partner::guarded_page_ids_sql(q, Some(snapshot.version)),
            Plan::Sql => partner::list_page_sql(q),
        }
    }
}

/// What running a plan gave.
enum Answer {
    Page(Page),
    /// The database moved past the copy (it is at this search version).
    Behind(i64),
    /// The SQL path must answer.
    Sql,
}

impl Lists {
    /// Answers a validated list with its includes: a turn in the database's list lane, then one
    /// hand-off (the page as planned, then one query per relationship for the whole page). When
    /// a change since the copy touches the list, waits for the follower (at most
    /// [`super::WAIT_FOR_FOLLOWER`]) and tries once more in the same turn, with the SQL path as
    /// the fallback. With the facets `query` asks for ([`Lists::facets`]). A page after a page
    /// token's cursor takes [`Lists::after_cursor`].
    pub async fn list(&self, query: ListQuery, includes: Includes) -> Result<ListPage> {
        // One turn in the list lane for both tries: the second does not queue again.
        let _turn = self.db.list_turn().await?;
        if let Some(after) = query.after.clone() {
            return self.after_cursor(query, after, includes).await;
        }
        let lists = self.clone();
        let q = query.clone();
        let first = self
            .db
            .run(move |conn| match lists.try_copy(conn, &q)? {
                Answer::Page(page) => Ok(Ok(lists.numbered(conn, &q, page, includes)?)),
                Answer::Behind(version) => Ok(Err(version)),
                Answer::Sql => {
                    lists.fell_back();
                    let page = partner::list(conn, &q)?;
                    Ok(Ok(lists.numbered(conn, &q, page, includes)?))
                }
            })
            .await?;
        let version = match first {
            Ok(answer) => return Ok(answer),
            Err(version) => version,
        };
        self.inner.waited.fetch_add(1, Ordering::Relaxed);
        self.caught_up(version, super::WAIT_FOR_FOLLOWER).await;
        let lists = self.clone();
        self.db
            .run(move |conn| {
                let page = lists.run(conn, &query)?;
                lists.numbered(conn, &query, page, includes)
            })
            .await
    }

    /// A page reached by number with its includes and facets; its total tells whether more
    /// follow (then the next page's cursor is its last row's place).
    fn numbered(
        &self,
        conn: &mut PgConnection,
        q: &ListQuery,
        (records, total): Page,
        includes: Includes,
    ) -> Result<ListPage> {
        let loaded = partner::with_includes(conn, records, q.scope.business_id, includes)?;
        let more = q.page.saturating_mul(q.per_page) < total;
        let next = (loaded.records.last())
            .filter(|_| more)
            .map(|r| After::of(q, r));
        Ok(ListPage {
            loaded,
            total: Some(total),
            facets: self.facets(conn, q)?,
            next,
        })
    }

    /// The page after a page token's cursor: always Postgres ([`partner::keyset_page_sql`]), one
    /// statement that walks at most a page of the order's index whatever the depth; no total.
    async fn after_cursor(
        &self,
        query: ListQuery,
        after: After,
        includes: Includes,
    ) -> Result<ListPage> {
        self.inner.cursor_pages.fetch_add(1, Ordering::Relaxed);
        let lists = self.clone();
        self.db
            .run(move |conn| {
                let per_page = usize::try_from(query.per_page).unwrap_or(0);
                let mut records = partner::keyset_page(conn, &query, &after, query.per_page + 1)?;
                let more = records.len() > per_page;
                records.truncate(per_page);
                let next = records
                    .last()
                    .filter(|_| more)
                    .map(|r| After::of(&query, r));
                let loaded =
                    partner::with_includes(conn, records, query.scope.business_id, includes)?;
                Ok(ListPage {
                    loaded,
                    total: None,
                    facets: lists.facets(conn, &query)?,
                    next,
                })
            })
            .await
    }

    /// `q`'s facets (none when it asks for none): counted in the copy while the database is at
    /// the copy's search version (and the business's set at its preference version, where the
    /// preference filters), which one more look at the versions tells; otherwise, or for what
    /// the copy does not hold, by Postgres ([`partner::facets`]). Exact either way.
    pub fn facets(&self, conn: &mut PgConnection, q: &ListQuery) -> Result<Facets> {
        if q.facets.is_empty() {
            return Ok(Vec::new());
        }
        let covered = self.inner.enabled && !q.show_deleted && !q.records.is_set();
        if let Some(view) = self.snapshot().filter(|_| covered) {
            let business = q.scope.business_id.filter(|_| q.preferred.is_some());
            let set = match business {
                Some(b) => self.inner.preferences.get(conn, b)?,
                None => None,
            };
            let now = partner::versions(conn, business)?;
            let set_holds = set
                .as_ref()
                .map(|p| p.complete() && now.preferences == Some(p.version));
            if now.search == Some(view.version)
                && set_holds != Some(false)
                && let Some(facets) = view.facets(q, set.as_deref())
            {
                return Ok(facets);
            }
        }
        Ok(partner::facets(conn, q)?)
    }

    /// Runs a list on the caller's connection (in its blocking thread): as planned with the copy
    /// when there is one and it is still current in the statements' snapshot, otherwise by SQL.
    pub fn run(&self, conn: &mut PgConnection, q: &ListQuery) -> Result<Page> {
        if let Answer::Page(page) = self.try_copy(conn, q)? {
            return Ok(page);
        }
        self.fell_back();
        Ok(partner::list(conn, q)?)
    }

    /// Counts a list the SQL path answers although the copy is on.
    fn fell_back(&self) {
        if self.inner.enabled {
            self.inner.fell_back.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs a list with the copy, if there is one and it covers the list.
    fn try_copy(&self, conn: &mut PgConnection, q: &ListQuery) -> Result<Answer> {
        if !self.inner.enabled {
            return Ok(Answer::Sql);
        }
        let Some(snapshot) = self.snapshot() else {
            return Ok(Answer::Sql);
        };
        let plan = plan(conn, q, &snapshot, &self.inner.preferences)?;
        let answer = self.answer(conn, q, &snapshot, plan)?;
        match answer {
            Answer::Page(_) => {
                self.inner.served.fetch_add(1, Ordering::Relaxed);
            }
            Answer::Behind(_) => self.behind(),
            Answer::Sql => {}
        }
        Ok(answer)
    }

    /// Runs `plan`. A guarded statement that returns no row is followed by a look at the
    /// version: if the database is still at the copy's version now, it was when the statement
    /// ran (versions only grow), so the empty page is the truth; otherwise the copy is behind.
    fn answer(
        &self,
        conn: &mut PgConnection,
        q: &ListQuery,
        snapshot: &View,
        plan: Plan,
    ) -> Result<Answer> {
        let behind = |conn: &mut PgConnection| -> Result<Option<i64>> {
            let now = partner::search_version(conn)?;
            Ok((now != Some(snapshot.version)).then(|| now.unwrap_or(i64::MAX)))
        };
        match plan {
            Plan::CutPage { search, preferred } => {
                let cut =
                    |preferred: Option<&Preferred>| cut(q, snapshot, search.as_deref(), preferred);
                self.cut_page(conn, q, snapshot, preferred, cut)
            }
            Plan::OrderMatches(ids) => {
                if !ids.is_empty()
                    && let Some(answer) = partner::list_candidates(conn, q, &ids, snapshot.version)?
                {
                    return Ok(Answer::Page(answer));
                }
                if let Some(version) = behind(conn)? {
                    return Ok(Answer::Behind(version));
                }
                // Nothing at all matches, or an empty first page: the total is 0. The total of an
                // empty later page (under a preference filter) is the SQL path's to tell.
                Ok(if ids.is_empty() || q.page == 1 {
                    Answer::Page((Vec::new(), 0))
                } else {
                    Answer::Sql
                })
            }
            Plan::FindPage { total } => {
                let rows = partner::list_page_at(conn, q, snapshot.version)?;
                if !rows.is_empty() {
                    return Ok(Answer::Page((rows, total)));
                }
                // No row: the database moved, or the page lies past the end. The database's
                // page is exact with the copy's total unless a change moved the total.
                let answered = Answered {
                    end: None,
                    preferred: None,
                };
                let page = |conn: &mut PgConnection| partner::page_in_snapshot(conn, q, None);
                Ok(
                    match self.unless_affected(conn, q, snapshot, None, answered, page)? {
                        Checked::Exact(rows) => Answer::Page((rows, total)),
                        Checked::Moved(now) => Answer::Behind(now.search.unwrap_or(i64::MAX)),
                    },
                )
            }
            Plan::Sql => Ok(Answer::Sql),
        }
    }

    /// A page cut from the copy: `cut` gives the page's ids and the total from the business's
    /// cached preferences (`business`: its id and set, when the preference decides), and
    /// [`partner::list_known_page`] joins the rows, answering only while the search version and
    /// the set's preference version both hold. When the set moved, it is loaded again and the
    /// page cut once more; when the search version moved, the copy is behind.
    fn cut_page(
        &self,
        conn: &mut PgConnection,
        q: &ListQuery,
        snapshot: &View,
        mut business: Option<(i64, Arc<Preferred>)>,
        cut: impl Fn(Option<&Preferred>) -> (Vec<i64>, i64),
    ) -> Result<Answer> {
        for attempt in 0..2 {
            let (page_ids, total) = cut(business.as_ref().map(|(_, p)| &**p));
            let guard = business.as_ref().map(|(b, p)| (*b, p.version));
            // While the database is known to be past the copy, the guarded page would find no
            // row: read what moved with the page at once (one statement, not two).
            let stale = attempt == 0 && self.inner.stale.load(Ordering::Relaxed);
            if !page_ids.is_empty() && !stale {
                let version = Some(snapshot.version);
                let rows = partner::list_known_page(conn, q, &page_ids, version, guard)?;
                if !rows.is_empty() {
                    debug_assert_eq!(rows.len(), page_ids.len());
                    return Ok(Answer::Page((rows, total)));
                }
            }
            // No row (or not tried): a version moved, or the page lies past the end. The page
            // is still exact unless a change since the copy touches it.
            let answered = Answered {
                end: page_ids.last().copied(),
                preferred: business.as_ref().map(|(_, p)| &**p),
            };
            let checked = match page_ids.is_empty() {
                true => self.unless_affected(conn, q, snapshot, guard, answered, |_| Ok(vec![]))?,
                false => {
                    self.unless_affected_with(conn, q, snapshot, guard, answered, &page_ids)?
                }
            };
            let now = match checked {
                Checked::Exact(rows) if rows.len() == page_ids.len() => {
                    return Ok(Answer::Page((rows, total)));
                }
                Checked::Exact(_) => return Ok(Answer::Sql), // ids without rows: not the copy's
                Checked::Moved(now) => now,
            };
            if now.search != Some(snapshot.version) {
                return Ok(Answer::Behind(now.search.unwrap_or(i64::MAX)));
            }
            match guard {
                Some((b, version)) if now.preferences != Some(version) => {
                    self.inner.preferences.forget(b, version);
                    let reloaded = self.inner.preferences.get(conn, b)?;
                    business = match reloaded {
                        Some(p) if p.complete() => Some((b, p)),
                        _ => return Ok(Answer::Sql),
                    };
                }
                // Both versions hold, so nothing moved and the page was exact: not reached.
                _ => return Ok(Answer::Sql),
            }
        }
        Ok(Answer::Sql)
    }
}
