//! The rows of a changing directory (issue 18): every list shape of the read rows measured again
//! while partners are renamed through the admin API at a steady rate, while click events arrive
//! at a steady rate, and against a second server process without its copy; and the time a rename
//! made through one server process takes to show in another's search.
//!
//! The background loops are open loops ([`crate::open_loop`]): a write rate that slowed down with
//! the service would hide what the writes do to the lists. Each rename row's renames are undone
//! through the admin API after the row (unmeasured), so that every run starts from the seeded
//! names; the renamed partners are checked to carry exactly the acknowledged names before, and
//! their own names after.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use hdrhistogram::Histogram;
use loadgen::data::SEARCH_WORD;
use partners::grpc::pb;
use tokio::runtime::Runtime;

use crate::closed_loop::{Measured, XorShift, new_histogram};
use crate::database::{DataSet, scalar};
use crate::report::{Variant, VariantKind};
use crate::run::RowRunner;
use crate::scenarios::{Background, Clients, ListShape, Load, rename_request, status_text};
use crate::server::Server;
use crate::settings::{BenchResult, Settings};

/// The row of the rename seen by a second server process.
pub const RENAME_ROW: &str = "rename seen by 2nd process";
/// How often the second process is searched for a rename, start to start at most (the answer
/// itself takes longer when the list does).
const PROBE_POLL: Duration = Duration::from_millis(2);
/// A rename not found by then counts as an error of the rename row.
const PROBE_LIMIT: Duration = Duration::from_secs(10);
/// Concurrent admin calls undoing a row's renames.
const RESTORE_TASKS: usize = 4;

/// A rate as written in row names: `20`, `1000`, `2.5`.
fn rate_text(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate}")
    }
}

/// The row of `shape` (its quiet row's name) under `rate` renames per second.
pub fn writes_row(shape: &str, rate: f64) -> String {
    format!("{shape} + {} writes/s", rate_text(rate))
}

/// The row of `shape` under `rate` click events per second, `per_call` a call.
pub fn clicks_row(shape: &str, rate: f64, per_call: usize) -> String {
    match per_call {
        0 | 1 => format!("{shape} + {} clicks/s", rate_text(rate)),
        n => format!("{shape} + {} clicks/s ({n} a call)", rate_text(rate)),
    }
}

/// The row of `shape` against the server without its copy.
pub fn copy_off_row(shape: &str) -> String {
    format!("{shape} copy off")
}

/// The names of the rows of a changing directory of the quiet row `shape`.
pub fn variant_names(shape: &str, settings: &Settings) -> [String; 3] {
    [
        writes_row(shape, settings.write_rate),
        clicks_row(shape, settings.click_rate, settings.click_batch),
        copy_off_row(shape),
    ]
}

/// One rename of a writes row or of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// The partner.
    pub id: i64,
    /// Its new name.
    pub name: String,
}

/// `n` in base 26 with the letters a–z, at least `min_len` letters (padded with `a`).
fn letters(mut n: u64, min_len: usize) -> String {
    let mut out = Vec::new();
    while n > 0 || out.len() < min_len {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

/// `word` with its first letter upper case.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// First words of the names that join the search, spread over the alphabet (so the renamed
/// partners land all over the name order) and none containing the search word.
const SPREAD_WORDS: [&str; 12] = [
    "Amber", "Birch", "Cobalt", "Ember", "Granite", "Indigo", "Kestrel", "Mosaic", "Onyx",
    "Quartz", "Topaz", "Willow",
];

/// The renames of one writes row: `count` distinct partners, alternately
/// - a partner drawn from all ids `1..=max_id`, renamed to a name holding the search word (it
///   joins the search scenario's matches when its filters match, at a place in the name order
///   set by a first word spread over the alphabet), and
/// - a partner whose name holds the search word (`search_ids`; any id once they are used up),
///   renamed to a name without it that sorts before every seeded name (it leaves the search's
///   matches and moves to page 1 of the lists in name order when it is on them),
///
/// so that the writes change what the measured lists show, not only rows nobody reads.
/// Deterministic in `seed`. Shorter than `count` only when the partners run out.
pub fn plan_renames(seed: u64, count: usize, max_id: i64, search_ids: &[i64]) -> Vec<Rename> {
    let mut rng = XorShift::new(seed);
    let mut used = std::collections::HashSet::new();
    let max_id = max_id.max(0) as u64;
    let mut pool: Vec<i64> = search_ids.to_vec();
    let mut renames = Vec::with_capacity(count);
    let word = capitalized(SEARCH_WORD);
    for k in 0..count as u64 {
        let joins_search = k % 2 == 0;
        let mut id = None;
        if !joins_search {
            // Draw from the search's matches without replacement.
            while !pool.is_empty() && id.is_none() {
                let i = rng.below(pool.len() as u64) as usize;
                let candidate = pool.swap_remove(i);
                if used.insert(candidate) {
                    id = Some(candidate);
                }
            }
        }
        // Random ids, a bounded number of draws: on a tiny directory the plan may end early.
        for _ in 0..64 {
            if id.is_some() || max_id == 0 {
                break;
            }
            let candidate = 1 + rng.below(max_id) as i64;
            if used.insert(candidate) {
                id = Some(candidate);
            }
        }
        let Some(id) = id else { break };
        let tag = capitalized(&letters(k, 3));
        let name = if joins_search {
            let first = SPREAD_WORDS[rng.below(SPREAD_WORDS.len() as u64) as usize];
            format!("{first} {word} {tag}")
        } else {
            format!("Aardvark {tag} Labs")
        };
        renames.push(Rename { id, name });
    }
    renames
}

/// A search term found in no seeded name and in no other probe's: `zq`, letters of a hash of
/// `nonce` (other runs) and the letters of `i` (other probes of this run).
pub fn probe_token(nonce: u64, i: u64) -> String {
    let mut rng = XorShift::new(nonce);
    format!("zq{}{}", letters(rng.below(26u64.pow(6)), 6), letters(i, 3))
}

/// p50, p95, p99 and the largest value of `hist` (µs) in ms, as text.
pub fn percentiles_text(hist: &Histogram<u64>) -> String {
    if hist.is_empty() {
        return "no values".into();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(hist.value_at_quantile(0.50)),
        ms(hist.value_at_quantile(0.95)),
        ms(hist.value_at_quantile(0.99)),
        ms(hist.max())
    )
}

#[derive(QueryableByName)]
struct IdName {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The current names of the partners `ids`.
fn names_of(conn: &mut PgConnection, ids: &[i64]) -> BenchResult<HashMap<i64, String>> {
    let rows: Vec<IdName> = diesel::sql_query("SELECT id, name FROM partners WHERE id = ANY($1)")
        .bind::<Array<BigInt>, _>(ids)
        .load(conn)
        .map_err(|e| format!("partner names: {e}"))?;
    Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
}

/// The live partners whose name holds the search word.
fn search_matches(conn: &mut PgConnection) -> BenchResult<Vec<i64>> {
    let rows: Vec<Id> = diesel::sql_query(format!(
        "SELECT id FROM partners WHERE deleted_at IS NULL AND lower(name) LIKE '%{SEARCH_WORD}%' \
         ORDER BY id"
    ))
    .load(conn)
    .map_err(|e| format!("search matches: {e}"))?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Renames through `clients`' admin service, `RESTORE_TASKS` at a time; the failures, in words.
async fn rename_all(clients: &Clients, renames: Vec<Rename>) -> Vec<String> {
    let mut chunks: Vec<Vec<Rename>> = vec![Vec::new(); RESTORE_TASKS];
    for (i, r) in renames.into_iter().enumerate() {
        chunks[i % RESTORE_TASKS].push(r);
    }
    let mut tasks = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let clients = clients.clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut admin = clients.admin(i);
            for r in chunk {
                let outcome = match clients.service_request(rename_request(r.id, &r.name)) {
                    Ok(request) => admin.update_partner(request).await.map_err(status_text),
                    Err(e) => Err(e),
                };
                if let Err(e) = outcome {
                    failures.push(format!("partner {}: {e}", r.id));
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        match task.await {
            Ok(f) => failures.extend(f),
            Err(e) => failures.push(format!("restore task panicked: {e}")),
        }
    }
    failures
}

/// What a writes row left behind, checked and undone: every partner of `plan` must carry its
/// planned name or its original one, as many the planned name as renames were acknowledged; then
/// the originals are written back through the admin API and checked. The problems, in words.
fn check_and_restore(
    conn: &mut PgConnection,
    runtime: &Runtime,
    clients: &Clients,
    plan: &[Rename],
    originals: &HashMap<i64, String>,
    acknowledged: u64,
) -> BenchResult<Vec<String>> {
    let ids: Vec<i64> = plan.iter().map(|r| r.id).collect();
    let now = names_of(conn, &ids)?;
    let mut problems = Vec::new();
    let mut renamed = 0u64;
    let mut restore = Vec::new();
    for r in plan {
        let original = originals.get(&r.id).cloned().unwrap_or_default();
        match now.get(&r.id) {
            Some(name) if *name == r.name => {
                renamed += 1;
                restore.push(Rename {
                    id: r.id,
                    name: original,
                });
            }
            Some(name) if *name == original => {}
            other => problems.push(format!(
                "partner {} is named {other:?}, neither {:?} (renamed) nor {original:?}",
                r.id, r.name
            )),
        }
    }
    if renamed != acknowledged {
        problems.push(format!(
            "{acknowledged} renames acknowledged but {renamed} partners carry their new name"
        ));
    }
    let started = Instant::now();
    let count = restore.len();
    problems.extend(runtime.block_on(rename_all(clients, restore)));
    let after = names_of(conn, &ids)?;
    let unrestored = plan
        .iter()
        .filter(|r| after.get(&r.id) != originals.get(&r.id))
        .count();
    if unrestored > 0 {
        problems.push(format!("{unrestored} partners not back at their own name"));
    }
    eprintln!(
        "load: {count} renames undone in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(problems)
}

/// What the rows of a changing directory need from the run.
pub struct Changing<'a> {
    /// The main server's load (its clients carry the service key too).
    pub load: &'a Load<'a>,
    /// The runtime of every call.
    pub runtime: &'a Runtime,
    /// The data set.
    pub data: &'a DataSet,
    /// The list shapes of the run.
    pub shapes: Vec<ListShape>,
    /// The server binary, for the second processes.
    pub server_bin: &'a Path,
    /// Where the second processes' logs go.
    pub out_dir: &'a Path,
}

impl Changing<'_> {
    fn concurrency(&self, runner: &RowRunner, shape: ListShape) -> usize {
        if shape.at_list_concurrency() {
            runner.settings.list_concurrency
        } else {
            runner.settings.concurrency
        }
    }

    /// The main load with the rows' timing of a changing directory and `background`.
    fn load_with(&self, runner: &RowRunner, background: Option<Background>) -> Load<'_> {
        Load {
            warmup: runner.settings.changing_warmup,
            duration: runner.settings.changing_duration,
            background,
            ..self.load.clone()
        }
    }

    /// A second `partners serve` on the same database (`extra_args` added), SERVING, with its
    /// clients; `log_name` in the output directory.
    fn second_server(
        &self,
        runner: &RowRunner,
        log_name: &str,
        extra_args: &[&str],
    ) -> BenchResult<(Server, Clients)> {
        let mut server = Server::start_with(
            self.server_bin,
            &runner.settings.database_url,
            self.out_dir,
            log_name,
            extra_args,
        )?;
        self.runtime.block_on(server.wait_serving())?;
        let clients = self.runtime.block_on(Clients::connect(
            &server.grpc_addr,
            &server.http_addr,
            runner.settings.grpc_connections,
            &self.data.user_key,
            Some(&self.data.service_key),
        ))?;
        Ok((server, clients))
    }

    /// Each list shape against a second server process started without its copy
    /// (`--search-index-max-partners 0`) on the same database: its SQL path alone.
    pub fn copy_off_rows(
        &self,
        runner: &mut RowRunner,
        hard_failures: &mut Vec<String>,
    ) -> BenchResult<()> {
        let wanted: Vec<ListShape> = self
            .shapes
            .iter()
            .copied()
            .filter(|s| runner.settings.selected(&copy_off_row(&s.name())))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let (mut server, clients) = self.second_server(
            runner,
            "load-server-copy-off.log",
            &["--search-index-max-partners", "0"],
        )?;
        eprintln!(
            "load: copy-off server pid {} (log {})",
            server.pid,
            server.log.display()
        );
        let load = Load {
            clients,
            pid: server.pid,
            ..self.load_with(runner, None)
        };
        for shape in wanted {
            let conc = self.concurrency(runner, shape);
            let variant = Variant::new(&shape.name(), VariantKind::CopyOff);
            runner.run_on(
                server.pid,
                &copy_off_row(&shape.name()),
                conc,
                variant,
                || Ok(load.list(shape, conc)),
            );
        }
        stop_second(&mut server, "copy-off server", hard_failures);
        Ok(())
    }

    /// Each list shape while click events arrive at the click rate (open loop); the events
    /// acknowledged must equal the new rows.
    pub fn click_rows(
        &self,
        runner: &mut RowRunner,
        conn: &mut PgConnection,
        hard_failures: &mut Vec<String>,
    ) -> BenchResult<()> {
        let (rate, per_call) = (runner.settings.click_rate, runner.settings.click_batch);
        for shape in self.shapes.clone() {
            let name = clicks_row(&shape.name(), rate, per_call);
            if !runner.settings.selected(&name) {
                continue;
            }
            let before = scalar(
                conn,
                "SELECT coalesce(max(id), 0) AS n FROM partner_click_events",
            )?;
            let nonce = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let load = self.load_with(
                runner,
                Some(Background::Clicks {
                    rate,
                    per_call,
                    max_id: self.data.max_partner_id.max(1),
                    nonce,
                }),
            );
            let conc = self.concurrency(runner, shape);
            let variant = Variant::new(&shape.name(), VariantKind::Clicks);
            runner.run_on(runner.pid, &name, conc, variant, || {
                Ok(load.list(shape, conc))
            });
            // A batch call counts as acknowledged only when every event of it was stored.
            let acked = runner.last_background().map_or(0, |p| p.ok) * per_call as u64;
            let new_rows = scalar(
                conn,
                &format!("SELECT count(*) AS n FROM partner_click_events WHERE id > {before}"),
            )?;
            if acked as i64 != new_rows {
                hard_failures.push(format!(
                    "{name}: {acked} click events acknowledged but {new_rows} new rows"
                ));
            }
        }
        Ok(())
    }

    /// Each list shape while partners are renamed through the admin API at the write rate (open
    /// loop); after each row the renames are checked and undone.
    pub fn write_rows(
        &self,
        runner: &mut RowRunner,
        conn: &mut PgConnection,
        hard_failures: &mut Vec<String>,
    ) -> BenchResult<()> {
        let rate = runner.settings.write_rate;
        let mut search_ids: Option<Vec<i64>> = None;
        for (index, shape) in self.shapes.clone().into_iter().enumerate() {
            let name = writes_row(&shape.name(), rate);
            if !runner.settings.selected(&name) {
                continue;
            }
            let ids = match &search_ids {
                Some(ids) => ids,
                None => search_ids.insert(search_matches(conn)?),
            };
            let span = runner.settings.changing_warmup + runner.settings.changing_duration;
            // The loop sends one call per 1/rate over the span, the first at once.
            let count = (rate * span.as_secs_f64()).ceil() as usize + 2;
            // The same partners every run (the names are restored after the row).
            let seed = 0x5eed_0000 + index as u64;
            let plan = plan_renames(seed, count, self.data.max_partner_id, ids);
            let plan_ids: Vec<i64> = plan.iter().map(|r| r.id).collect();
            let originals = names_of(conn, &plan_ids)?;
            let load = self.load_with(
                runner,
                Some(Background::Renames {
                    rate,
                    plan: Arc::new(plan.clone()),
                }),
            );
            let conc = self.concurrency(runner, shape);
            let variant = Variant::new(&shape.name(), VariantKind::Writes);
            runner.run_on(runner.pid, &name, conc, variant, || {
                Ok(load.list(shape, conc))
            });
            let acked = runner.last_background().map_or(0, |p| p.ok);
            let problems = check_and_restore(
                conn,
                self.runtime,
                &self.load.clients,
                &plan,
                &originals,
                acked,
            )?;
            hard_failures.extend(problems.into_iter().map(|p| format!("{name}: {p}")));
        }
        Ok(())
    }

    /// Two server processes on one database: `probes` times, a partner renamed through the
    /// main process's admin API to a fresh search token, the second process searched for it
    /// every [`PROBE_POLL`] until its ListPartners finds it; the time from the rename's
    /// acknowledgement to the answer that finds it, per probe. Each name is restored (through the
    /// main process, unmeasured) before the next probe.
    pub fn rename_row(
        &self,
        runner: &mut RowRunner,
        conn: &mut PgConnection,
        hard_failures: &mut Vec<String>,
    ) -> BenchResult<()> {
        if !runner.settings.selected(RENAME_ROW) {
            return Ok(());
        }
        let probes = runner.settings.rename_probes;
        let (mut server, searcher) = self.second_server(runner, "load-server-2.log", &[])?;
        // Its copy loaded (or not at all): otherwise the first probes would time its load.
        let copy = server.wait_copy_loaded(Duration::from_secs(120));
        eprintln!(
            "load: second server pid {} (log {}); its copy: {copy}",
            server.pid,
            server.log.display(),
        );
        let plan = plan_renames(0x9a0b_e5e5, probes, self.data.max_partner_id, &[]);
        let ids: Vec<i64> = plan.iter().map(|r| r.id).collect();
        let originals = names_of(conn, &ids)?;
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        let admin = self.load.clients.clone();
        let runtime = self.runtime;
        let mut restore_failures = Vec::new();
        runner.run_on(server.pid, RENAME_ROW, 1, None, || {
            let started = Instant::now();
            let mut hist = new_histogram();
            let (mut errors, mut samples, mut polls) = (0u64, Vec::new(), 0u64);
            for (i, r) in plan.iter().enumerate() {
                let token = probe_token(nonce, i as u64);
                let outcome = runtime.block_on(probe(
                    &admin,
                    &searcher,
                    r.id,
                    &format!("Probe {token}"),
                    &token,
                ));
                match outcome {
                    Ok((seen, n)) => {
                        polls += n;
                        let us = seen.as_micros().min(u128::from(u64::MAX)) as u64;
                        hist.saturating_record(us.max(1));
                    }
                    Err(e) => {
                        errors += 1;
                        if samples.len() < 3 {
                            samples.push(e);
                        }
                    }
                }
                let original = originals.get(&r.id).cloned().unwrap_or_default();
                restore_failures.extend(runtime.block_on(rename_all(
                    &admin,
                    vec![Rename {
                        id: r.id,
                        name: original,
                    }],
                )));
            }
            let found = hist.len();
            Ok(Measured {
                rps: plan.len() as f64 / started.elapsed().as_secs_f64().max(1e-9),
                hist,
                errors,
                error_samples: samples,
                ok_total: found,
                peak_rss_kib: None,
                note: format!(
                    "{found} of {} renames found, {:.1} searches per rename, every {} ms",
                    plan.len(),
                    polls as f64 / found.max(1) as f64,
                    PROBE_POLL.as_millis()
                ),
                background: None,
            })
        });
        hard_failures.extend(
            restore_failures
                .into_iter()
                .map(|f| format!("{RENAME_ROW}: restore {f}")),
        );
        let after = names_of(conn, &ids)?;
        let unrestored = ids
            .iter()
            .filter(|id| after.get(id) != originals.get(id))
            .count();
        if unrestored > 0 {
            hard_failures.push(format!(
                "{RENAME_ROW}: {unrestored} partners not back at their own name"
            ));
        }
        stop_second(&mut server, "second server", hard_failures);
        Ok(())
    }
}

/// One probe: renames `id` to `name` through `admin`, then searches `searcher` for `token` until
/// the partner is in the answer. The time from the acknowledgement to that answer, and the
/// searches it took.
async fn probe(
    admin: &Clients,
    searcher: &Clients,
    id: i64,
    name: &str,
    token: &str,
) -> Result<(Duration, u64), String> {
    admin
        .admin(0)
        .update_partner(admin.service_request(rename_request(id, name))?)
        .await
        .map_err(|e| format!("rename of partner {id}: {}", status_text(e)))?;
    let acknowledged = Instant::now();
    let mut client = searcher.partner(0);
    let mut searches = 0u64;
    loop {
        let sent = Instant::now();
        let answer = client
            .list_partners(searcher.request(pb::ListPartnersRequest {
                search: token.to_owned(),
                ..Default::default()
            }))
            .await
            .map_err(|e| format!("search for {token}: {}", status_text(e)))?;
        searches += 1;
        if answer.into_inner().partners.iter().any(|p| p.id == id) {
            return Ok((acknowledged.elapsed(), searches));
        }
        if acknowledged.elapsed() > PROBE_LIMIT {
            return Err(format!(
                "partner {id} renamed to {token:?} not found by the second process after {} s",
                PROBE_LIMIT.as_secs()
            ));
        }
        tokio::time::sleep_until((sent + PROBE_POLL).into()).await;
    }
}

/// Stops a second server process; a failed stop (it died, or did not drain) is a failure.
fn stop_second(server: &mut Server, what: &str, hard_failures: &mut Vec<String>) {
    let died = server.exited();
    let status = server.stop();
    let clean = died.is_none() && status == "exit status: 0";
    if !clean {
        hard_failures.push(format!("{what} (pid {}): stop {status}", server.pid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_count_in_base_26() {
        assert_eq!(letters(0, 3), "aaa");
        assert_eq!(letters(27, 1), "bb");
        assert_eq!(letters(26u64.pow(3), 3), "baaa");
    }

    #[test]
    fn row_names_carry_the_rates() {
        assert_eq!(
            writes_row("gRPC ListPartners", 20.0),
            "gRPC ListPartners + 20 writes/s"
        );
        assert_eq!(
            clicks_row("REST ListPartners", 1000.0, 1),
            "REST ListPartners + 1000 clicks/s"
        );
        assert_eq!(
            clicks_row("REST ListPartners", 1000.0, 100),
            "REST ListPartners + 1000 clicks/s (100 a call)"
        );
        assert_eq!(writes_row("x", 2.5), "x + 2.5 writes/s");
        assert_eq!(
            copy_off_row("gRPC ListWholesalers page 40"),
            "gRPC ListWholesalers page 40 copy off"
        );
    }

    #[test]
    fn a_rename_plan_alternates_joining_and_leaving_the_search() {
        let search_ids: Vec<i64> = (1..=1000).filter(|i| i % 40 == 0).collect();
        let plan = plan_renames(7, 40, 1000, &search_ids);
        assert_eq!(plan.len(), 40);
        let distinct: std::collections::HashSet<i64> = plan.iter().map(|r| r.id).collect();
        assert_eq!(distinct.len(), 40, "each partner renamed once");
        for (k, r) in plan.iter().enumerate() {
            assert!((1..=1000).contains(&r.id));
            assert!(!r.name.is_empty() && r.name.len() <= 200);
            let has_word = r.name.to_lowercase().contains(SEARCH_WORD);
            if k % 2 == 0 {
                assert!(has_word, "{r:?} joins the search");
            } else {
                assert!(!has_word, "{r:?} leaves the search");
                assert!(search_ids.contains(&r.id), "{r:?} was a match");
                // Before every seeded name ("Alpine …" is the first of them).
                assert!(r.name.as_str() < "Alpine", "{r:?}");
            }
        }
        assert_eq!(
            plan,
            plan_renames(7, 40, 1000, &search_ids),
            "deterministic"
        );
        assert_ne!(plan, plan_renames(8, 40, 1000, &search_ids));
    }

    #[test]
    fn a_rename_plan_ends_when_the_partners_run_out() {
        // 10 partners, 2 of them matching the search: at most 10 renames, then none.
        let plan = plan_renames(1, 30, 10, &[3, 7]);
        assert!(plan.len() <= 10 && plan.len() >= 8, "{plan:?}");
        let distinct: std::collections::HashSet<i64> = plan.iter().map(|r| r.id).collect();
        assert_eq!(distinct.len(), plan.len());
        assert!(plan_renames(1, 5, 0, &[]).is_empty());
    }

    #[test]
    fn probe_tokens_are_fresh_searchable_words() {
        let a = probe_token(42, 0);
        let b = probe_token(42, 1);
        let c = probe_token(43, 0);
        assert!(a != b && a != c && b != c);
        for t in [&a, &b, &c] {
            assert!(t.len() >= 11, "{t}");
            assert!(t.bytes().all(|b| b.is_ascii_lowercase()), "{t}");
            assert!(!t.contains(SEARCH_WORD));
        }
    }

    #[test]
    fn percentiles_are_told_in_ms() {
        let mut h = new_histogram();
        for us in 1..=100u64 {
            h.record(us * 1000).unwrap();
        }
        let text = percentiles_text(&h);
        assert!(
            text.starts_with("p50 50.0 ms, p95 95.0 ms, p99 99.0 ms"),
            "{text}"
        );
        assert_eq!(percentiles_text(&new_histogram()), "no values");
    }
}
