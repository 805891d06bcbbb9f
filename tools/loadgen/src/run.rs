//! `loadgen run`: one run of the load generator, in order: the server binary and the tools, the
//! data and keys, the server, the baselines, the scenarios, the plans, the pgbench click rows and
//! the click scenario with its checks, then the verdicts and the report.
//!
//! Exit status: non-zero on any error, counter or acknowledgement mismatch, or server failure;
//! with `--check-targets` also on a missed target.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use diesel::pg::PgConnection;
use loadgen::service_sql::ListCopy;

use crate::changing::{self, Changing, RENAME_ROW};
use crate::closed_loop::Measured;
use crate::database::{self, DataSet, Keys, connect, exec, scalar};
use crate::open_loop::Paced;
use crate::pgbench::{
    self, CEILING_BATCH, CEILING_CLIENTS, CEILING_ROW, PgbenchKind, SWEEP_BATCHES, SWEEP_ROW,
    run_pgbench,
};
use crate::plans::{self, collect_plans};
use crate::report::{Row, Variant, print_changing_table, print_cpu_table, print_table, report_row};
use crate::sampling::{CpuSnapshot, PostgresSampler, cpu_split, proc_status_kib};
use crate::scenarios::{Clients, ListShape, Load};
use crate::server::{CopyState, Server, server_binary};
use crate::settings::{BenchResult, Settings};
use crate::targets::{self, Judging};

/// Runs the rows one after the other, each with its CPU split, and keeps them.
pub struct RowRunner<'a> {
    /// The run's settings.
    pub settings: &'a Settings,
    /// The database's name, to tell this run's postgres backends from others'.
    database: String,
    /// The main server's process id.
    pub pid: u32,
    /// The rows so far.
    pub rows: Vec<Row>,
}

impl RowRunner<'_> {
    /// Runs the row `name` with `conc` callers when `--only` selects it.
    fn run(&mut self, name: &str, conc: usize, f: impl FnOnce() -> BenchResult<Measured>) {
        if self.settings.selected(name) {
            self.run_on(self.pid, name, conc, None, f);
        }
    }

    /// Runs the row `name` (selected or not) with `conc` callers of the server `pid`, whose CPU
    /// the row's split counts; `variant` when it varies a quiet row.
    pub fn run_on(
        &mut self,
        pid: u32,
        name: &str,
        conc: usize,
        variant: Option<Variant>,
        f: impl FnOnce() -> BenchResult<Measured>,
    ) {
        eprintln!("load: running {name} (c={conc}) …");
        let postgres = PostgresSampler::start(&self.database);
        let before = CpuSnapshot::take(pid);
        let result = f();
        let after = CpuSnapshot::take(pid);
        let postgres = postgres.finish();
        let mut row = Row::new(name, conc, result);
        row.cpu = row
            .measured
            .as_ref()
            .map(|m| cpu_split(before, after, postgres, m.ok_total + m.errors));
        row.variant = variant;
        report_row(&row);
        self.rows.push(row);
    }

    /// What the last row's background loop did, if it had one.
    pub fn last_background(&self) -> Option<&Paced> {
        self.rows
            .last()
            .and_then(|r| r.measured.as_ref())
            .and_then(|m| m.background.as_ref())
    }

    /// Runs the quiet row of `shape` when `--only` selects it or one of its rows of a changing
    /// directory (their ratios need it).
    fn list_row(&mut self, load: &Load, shape: ListShape, conc: usize) {
        let name = shape.name();
        let wanted = std::iter::once(name.clone())
            .chain(changing::variant_names(&name, self.settings))
            .any(|n| self.settings.selected(&n));
        if wanted {
            self.run_on(self.pid, &name, conc, None, || Ok(load.list(shape, conc)));
        }
    }
}

/// The data set and keys: seeded (with the load time), or keys for the loaded data.
fn data_and_keys(settings: &Settings) -> BenchResult<(Keys, Option<f64>)> {
    if settings.skip_seed {
        // Data loaded by an earlier commit may lack this one's migrations (the server below
        // starts with --no-migrate).
        let keys = database::keys_for_loaded_data(&settings.database_url)?;
        let mut conn = connect(&settings.database_url)?;
        // Earlier click runs left new row versions and cleared visibility-map bits on partners;
        // vacuum so that every run's read scenarios start from the same kind of state.
        let vacuum = Instant::now();
        exec(
            &mut conn,
            "VACUUM (ANALYZE) partners, partner_preferences, partner_integrations, partner_users",
        )?;
        eprintln!(
            "load: --skip-seed: vacuumed the partner tables in {:.1} s",
            vacuum.elapsed().as_secs_f64()
        );
        Ok((keys, None))
    } else {
        let started = Instant::now();
        eprintln!("load: seeding {} …", settings.database_url);
        let lines = database::seed(&settings.database_url, &settings.scale)?;
        Ok((
            lines.into_iter().collect(),
            Some(started.elapsed().as_secs_f64()),
        ))
    }
}

/// Runs the load generator with `settings`.
pub fn run(settings: &Settings) -> BenchResult<ExitCode> {
    let started = Instant::now();
    let tmp = settings.out_dir.clone();
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut hard_failures: Vec<String> = Vec::new();

    // 0. The tools and the server binary, before minutes of seeding.
    pgbench::require()?;
    plans::require_psql()?;
    let server_bin = server_binary(settings.server_bin.as_deref())?;
    eprintln!("load: server binary {}", server_bin.display());

    // 1. Data and keys.
    let (keys, seed_seconds) = data_and_keys(settings)?;
    let mut conn = connect(&settings.database_url)?;
    database::prewarm(&mut conn);
    let data = database::describe_data(&mut conn, &keys)?;
    if let Some(s) = seed_seconds {
        eprintln!("load: seed took {s:.1} s");
    }
    eprintln!(
        "load: {} partners (max id {}), {} click events; user {} of business {}",
        data.partners, data.max_partner_id, data.click_rows, data.user_uuid, data.business_uuid
    );

    // 2. The server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let mut server = Server::start(&server_bin, &settings.database_url, &tmp)?;
    runtime.block_on(server.wait_serving())?;
    // A large directory's copy may still be loading when the server listens: the quiet rows
    // must not time its load.
    let copy = server.wait_copy_loaded(std::time::Duration::from_secs(120));
    eprintln!(
        "load: server pid {} on grpc {} http {} (log {}); its copy: {copy}",
        server.pid,
        server.grpc_addr,
        server.http_addr,
        server.log.display(),
    );
    if let CopyState::Failed(_) = &copy {
        eprintln!(
            "load: WARNING: the server's copy is not loaded: its rows measure the SQL path, not \
             the copy"
        );
    }
    let clients = runtime.block_on(Clients::connect(
        &server.grpc_addr,
        &server.http_addr,
        settings.grpc_connections,
        &data.user_key,
        Some(&data.service_key),
    ))?;
    let load = Load {
        runtime: &runtime,
        clients,
        warmup: settings.warmup,
        duration: settings.duration,
        pid: server.pid,
        background: None,
    };
    let mut runner = RowRunner {
        settings,
        database: settings.database_name(),
        pid: server.pid,
        rows: Vec::new(),
    };

    // 3. Baselines; 4. scenarios.
    baselines(&mut runner, &load, &mut conn, &data, &tmp)?;
    let deep_page = plans::deep_page(&data);
    let names = read_scenarios(&mut runner, &load, &data, &tmp, deep_page);

    // 5. Plans of the list queries in the state the read scenarios ran in.
    let want_plans = settings.selected("plans") || settings.only.is_empty();
    let plans_path = tmp.join("load-plans.txt");
    let plans_after_path = tmp.join("load-plans-after-clicks.txt");
    let plans = |conn: &mut PgConnection, path: &Path| -> Option<Vec<String>> {
        if !want_plans {
            return None;
        }
        let deep = i64::from(deep_page);
        match collect_plans(conn, &settings.database_url, &data, path, deep) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("load: plans not collected: {e}");
                None
            }
        }
    };
    let seq_scans = plans(&mut conn, &plans_path);

    // 6. The lists again, changed: against a second process without its copy (quiet, next to
    // the quiet rows); under clicks; under renames; then a rename across two processes. Clicks
    // before renames: after the last rename the copy may be stale for a while (reloads pause),
    // which would taint rows after it, while what the clicks leave (new row versions) is what
    // the writes rows' directory would see anyway.
    let changing = Changing {
        load: &load,
        runtime: &runtime,
        data: &data,
        shapes: ListShape::all(deep_page),
        server_bin: &server_bin,
        out_dir: &tmp,
    };
    changing.copy_off_rows(&mut runner, &mut hard_failures)?;
    changing.click_rows(&mut runner, &mut conn, &mut hard_failures)?;
    changing.write_rows(&mut runner, &mut conn, &mut hard_failures)?;
    changing.rename_row(&mut runner, &mut conn, &mut hard_failures)?;

    // 7. The click rows last: their counter updates change the partners table (new row
    // versions, cleared visibility-map bits), which the read scenarios should not see.
    let click_check = click_rows(
        &mut runner,
        &load,
        &mut conn,
        &data,
        &tmp,
        &mut hard_failures,
    )?;
    let seq_scans_after = if click_check.is_some() {
        plans(&mut conn, &plans_after_path)
    } else {
        None
    };

    // 8. Peak memory, stop.
    let hwm_kib = proc_status_kib(server.pid, "VmHWM:");
    let alive = server.exited().is_none();
    let stop_status = server.stop();
    if !alive {
        hard_failures.push(format!("the server died during the run ({stop_status})"));
    }
    drop(load);
    drop(runtime);

    // 9. Ratios and targets.
    let mut rows = runner.rows;
    let judging = Judging {
        concurrency: settings.concurrency,
        list_concurrency: settings.list_concurrency,
        deep_name: &names.deep,
        list_floor_name: &names.list_floor,
        click_check,
    };
    targets::judge(&mut rows, &judging, &mut hard_failures);
    let transport = targets::transport_ratios(&rows);

    // Extra rows: index use and peak memory of the whole run.
    let seq_scans = match (seq_scans, seq_scans_after) {
        (Some(mut a), Some(b)) => {
            a.extend(b.into_iter().map(|s| format!("{s} after clicks")));
            Some(a)
        }
        (a, b) => a.or(b),
    };
    if let Some(scans) = &seq_scans {
        rows.push(targets::index_use_row(scans, settings.smoke));
    }
    rows.push(targets::peak_memory_row(hwm_kib));
    rows.extend(targets::copy_rows(&copy));

    print_table(&rows);
    print_cpu_table(&rows);
    print_changing_table(&rows);
    println!("copy (search index) of the server: {copy}");
    if let Some(m) = rows
        .iter()
        .find(|r| r.name == RENAME_ROW)
        .and_then(|r| r.measured.as_ref())
    {
        println!(
            "rename seen by the 2nd process: {} ({}; from the rename's acknowledgement by \
             process 1 to the answer of process 2's search that has it)",
            changing::percentiles_text(&m.hist),
            m.note
        );
    }
    if !transport.is_empty() {
        println!(
            "req/s relative to health Check at the same concurrency: {}",
            transport.join(", ")
        );
    }
    if let Some(line) = targets::click_bound(&rows, settings.concurrency) {
        println!("{line}");
    }
    if let Some(line) = targets::click_cost_fit(&rows, settings.concurrency) {
        println!("{line}");
    }
    if let Some((acked, new_rows)) = click_check {
        println!(
            "click events: {acked} acknowledged, {new_rows} new rows; counters checked for every partner"
        );
    }
    if seq_scans.is_some() {
        println!(
            "plans: {} (before the click scenario), {} (after it)",
            plans_path.display(),
            plans_after_path.display()
        );
    }
    println!(
        "server log: {}; server stop: {stop_status}",
        server.log.display()
    );
    if let Some(s) = seed_seconds {
        println!("seed: {s:.1} s");
    }

    let missed: Vec<&str> = rows
        .iter()
        .filter(|r| r.pass == Some(false))
        .map(|r| r.name.as_str())
        .collect();
    let passed = rows.iter().filter(|r| r.pass == Some(true)).count();
    for f in &hard_failures {
        println!("FAILURE: {f}");
    }
    println!(
        "load: {} rows PASS, {} FAIL{}; {} failures (errors/mismatches); total {:.0} s{}",
        passed,
        missed.len(),
        if missed.is_empty() {
            String::new()
        } else {
            format!(" ({})", missed.join(", "))
        },
        hard_failures.len(),
        started.elapsed().as_secs_f64(),
        if settings.smoke { " [smoke]" } else { "" }
    );
    if !hard_failures.is_empty() || (settings.check_targets && !missed.is_empty()) {
        Ok(ExitCode::FAILURE)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// The baselines: health Check and pgbench point select at each concurrency used, pgbench
/// one-row inserts into a copy of the events table without foreign keys (dropped after).
fn baselines(
    runner: &mut RowRunner,
    load: &Load,
    conn: &mut PgConnection,
    data: &DataSet,
    tmp: &Path,
) -> BenchResult<()> {
    let settings = runner.settings;
    let (c, lc) = (settings.concurrency, settings.list_concurrency);
    let mut concurrencies = vec![c];
    if lc != c {
        concurrencies.push(lc);
    }
    for &conc in &concurrencies {
        let name = format!("baseline: health Check c={conc}");
        runner.run(&name, conc, || Ok(load.health(conc)));
    }
    for &conc in &concurrencies {
        let name = format!("baseline: pgbench select c={conc}");
        runner.run(&name, conc, || {
            run_pgbench(settings, data, &PgbenchKind::PointSelect, conc, tmp)
        });
    }
    let insert_name = format!("baseline: pgbench insert c={c}");
    if settings.selected(&insert_name) {
        exec(conn, crate::pgbench::INSERT_BASELINE_TABLE)?;
        runner.run(&insert_name, c, || {
            run_pgbench(settings, data, &PgbenchKind::Insert, c, tmp)
        });
        exec(conn, "DROP TABLE IF EXISTS bench_insert_baseline;")?;
    }
    Ok(())
}

/// Names of the rows whose names depend on the data or the settings.
struct RowNames {
    /// The deep ListWholesalers row.
    deep: String,
    /// The ListPartners floor row.
    list_floor: String,
}

/// The read scenarios, and the list target's floor (the scenario's page statement alone under
/// pgbench).
fn read_scenarios(
    runner: &mut RowRunner,
    load: &Load,
    data: &DataSet,
    tmp: &Path,
    deep_page: i32,
) -> RowNames {
    let settings = runner.settings;
    let (c, lc) = (settings.concurrency, settings.list_concurrency);
    let max_id = data.max_partner_id.max(1);
    runner.run("gRPC GetPartner", c, || Ok(load.get_partner(c, max_id)));
    // ListPartners rows at the list concurrency, each with its own request.
    runner.list_row(load, ListShape::Search, lc);
    // Not a scenario of the issue: the directory's default list (no search, no filter, the
    // business's preferred partners first), page 1 of 25, as a client browsing it asks.
    runner.list_row(load, ListShape::Browse, lc);
    // The same with three facets counted over every match (the facets' cost).
    runner.list_row(load, ListShape::BrowseFacets, lc);
    // Not a scenario either: a list in an order the caller picks (newest first), which takes
    // the SQL path (Postgres orders and pages; the copy tells the total).
    runner.list_row(load, ListShape::Newest, lc);
    // The database's own floor for the list target: the scenario's page statement (the one the
    // service runs while its search index is current) alone under pgbench at the same
    // concurrency (no includes, no service, no load generator).
    let list_floor = format!("floor: pgbench ListPartners c={lc}");
    runner.run(&list_floor, lc, || {
        let mut conn = connect(&settings.database_url)?;
        let copy = ListCopy::load(&mut conn)?;
        let sql = copy.search_page_statement(&mut conn, data.context())?;
        let line = format!(
            "{};\n",
            sql.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        run_pgbench(settings, data, &PgbenchKind::ListPage(line), lc, tmp)
    });
    runner.list_row(load, ListShape::Available, c);
    // The deep page: 40, or the last page when the data set has fewer wholesalers (smoke).
    let deep = format!("gRPC ListWholesalers page {deep_page}");
    let pages: Vec<i32> = if deep_page > 1 {
        vec![1, deep_page]
    } else {
        vec![1]
    };
    for page in pages {
        runner.list_row(load, ListShape::Wholesalers(page), c);
    }
    runner.run(
        "REST GetPartner",
        c,
        || Ok(load.rest_get_partner(c, max_id)),
    );
    runner.list_row(load, ListShape::RestSearch, lc);
    RowNames { deep, list_floor }
}

/// The click rows: the database's own ceiling for the click design (the service's batch
/// statement under pgbench; its counters stay consistent: the statement bumps them), the sweep
/// when `--only` selects it, then the click scenario and its checks (acknowledged events equal
/// new rows; every partner's counters equal its events and links). Returns the acknowledged
/// events and new rows when the click scenario ran.
fn click_rows(
    runner: &mut RowRunner,
    load: &Load,
    conn: &mut PgConnection,
    data: &DataSet,
    tmp: &Path,
    hard_failures: &mut Vec<String>,
) -> BenchResult<Option<(u64, i64)>> {
    let settings = runner.settings;
    let c = settings.concurrency;
    let click_name = "gRPC CreatePartnerClickEvent";
    // Then, only on request (a minute more), the same statement at other batch sizes.
    let mut batch_rows = vec![(format!("{CEILING_ROW} c={CEILING_CLIENTS}"), CEILING_BATCH)];
    if !settings.only.is_empty() {
        batch_rows
            .extend(SWEEP_BATCHES.map(|n| (format!("{SWEEP_ROW}{n} c={CEILING_CLIENTS}"), n)));
    }
    for (name, n) in batch_rows {
        runner.run(&name, CEILING_CLIENTS, || {
            run_pgbench(
                settings,
                data,
                &PgbenchKind::ClickBatch(n),
                CEILING_CLIENTS,
                tmp,
            )
        });
    }
    if !settings.selected(click_name) {
        return Ok(None);
    }
    let max_event_before = scalar(
        conn,
        "SELECT coalesce(max(id), 0) AS n FROM partner_click_events",
    )?;
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let max_id = data.max_partner_id.max(1);
    runner.run(click_name, c, || Ok(load.clicks(c, max_id, nonce)));
    // Verification: acknowledged events vs new rows, counters vs events and links.
    let new_rows = scalar(
        conn,
        &format!("SELECT count(*) AS n FROM partner_click_events WHERE id > {max_event_before}"),
    )?;
    let acked = runner
        .rows
        .last()
        .and_then(|r| r.measured.as_ref())
        .map_or(0, |m| m.ok_total);
    eprintln!(
        "load: click events acknowledged {acked}, new rows in partner_click_events {new_rows}"
    );
    if acked as i64 != new_rows {
        hard_failures.push(format!(
            "{acked} click events acknowledged but {new_rows} new rows"
        ));
    }
    let mismatches = database::verify_counters(conn)?;
    if mismatches > 0 {
        hard_failures.push(format!(
            "{mismatches} partners with counters unequal to their events/links"
        ));
    }
    Ok(Some((acked, new_rows)))
}
