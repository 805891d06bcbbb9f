//! The report: one row per baseline, scenario and check, printed as it finishes (stderr) and at
//! the end as the results table and the CPU table (stdout, Markdown).

use crate::closed_loop::Measured;
use crate::sampling::CpuSplit;
use crate::settings::BenchResult;

/// One row of the result table.
pub struct Row {
    /// The row's name (`--only` matches substrings of it).
    pub name: String,
    /// Callers (pgbench clients), 0 for the checks.
    pub concurrency: usize,
    /// What the row measured, unless it failed.
    pub measured: Option<Measured>,
    /// Why the row failed.
    pub failure: Option<String>,
    /// The row it is compared with.
    pub baseline: Option<String>,
    /// The ratio to the baseline.
    pub ratio: Option<f64>,
    /// The target, in words.
    pub target: String,
    /// PASS, FAIL or n/a (`None`).
    pub pass: Option<bool>,
    /// Peak server RSS during the row, MiB.
    pub rss_mib: Option<f64>,
    /// CPU split of the row (warm-up included).
    pub cpu: Option<CpuSplit>,
}

impl Row {
    /// The row of `name` with its result, not yet judged.
    pub fn new(name: &str, concurrency: usize, result: BenchResult<Measured>) -> Row {
        let (measured, failure) = match result {
            Ok(m) => (Some(m), None),
            Err(e) => (None, Some(e)),
        };
        let rss_mib = measured
            .as_ref()
            .and_then(|m: &Measured| m.peak_rss_kib)
            .map(|k| k as f64 / 1024.0);
        Row {
            name: name.to_owned(),
            concurrency,
            measured,
            failure,
            baseline: None,
            ratio: None,
            target: String::new(),
            pass: None,
            rss_mib,
            cpu: None,
        }
    }
}

/// Prints the row's figures (or its failure) as it finishes, on stderr.
pub fn report_row(row: &Row) {
    match (&row.measured, &row.failure) {
        (Some(m), _) => {
            eprintln!(
                "load: {:<34} c={:<3} {:>9.1} req/s  p50 {:>7} ms  p99 {:>7} ms  errors {}{}{}",
                row.name,
                row.concurrency,
                m.rps,
                m.p(0.5).map_or("-".into(), |v| format!("{v:.2}")),
                m.p(0.99).map_or("-".into(), |v| format!("{v:.2}")),
                m.errors,
                if m.note.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", m.note)
                },
                if m.error_samples.is_empty() {
                    String::new()
                } else {
                    format!(" (e.g. {})", m.error_samples.join(" | "))
                }
            );
        }
        (None, Some(e)) => eprintln!("load: {:<34} FAILED: {e}", row.name),
        (None, None) => {}
    }
}

/// `v` with `digits` decimals, `-` when unknown.
fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
}

/// Prints where the machine's CPU went during each row (Markdown).
pub fn print_cpu_table(rows: &[Row]) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "CPU during each row, % of all {cores} cores (warm-up included). load = this process and \
         pgbench; postgres = the benchmark database's backends and the WAL writer, checkpointer and \
         background writer; other = every other process (e.g. another database's backends):"
    );
    println!(
        "| {:<34} | {:>8} | {:>6} | {:>10} | {:>7} | {:>6} | {:>14} | {:>16} |",
        "scenario",
        "server %",
        "load %",
        "postgres %",
        "other %",
        "idle %",
        "server µs/call",
        "postgres µs/call"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|{}|{}|",
        "-".repeat(36),
        "-".repeat(10),
        "-".repeat(8),
        "-".repeat(12),
        "-".repeat(9),
        "-".repeat(8),
        "-".repeat(16),
        "-".repeat(18)
    );
    for row in rows {
        let Some(cpu) = row.cpu else { continue };
        println!(
            "| {:<34} | {:>8.1} | {:>6.1} | {:>10.1} | {:>7.1} | {:>6.1} | {:>14} | {:>16} |",
            row.name,
            cpu.server,
            cpu.client,
            cpu.postgres,
            cpu.other,
            cpu.idle,
            fmt_opt(cpu.server_us_per_call, 0),
            fmt_opt(cpu.postgres_us_per_call, 0)
        );
    }
    println!();
}

/// Prints the results table (Markdown).
pub fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| {:<34} | {:>4} | {:>9} | {:>8} | {:>8} | {:>8} | {:>6} | {:>8} | {:<28} | {:>7} | {:<40} | {:<6} |",
        "scenario",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "RSS MiB",
        "baseline",
        "ratio",
        "target",
        "result"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|",
        "-".repeat(36),
        "-".repeat(6),
        "-".repeat(11),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(8),
        "-".repeat(10),
        "-".repeat(30),
        "-".repeat(9),
        "-".repeat(42),
        "-".repeat(8)
    );
    for row in rows {
        let m = row.measured.as_ref();
        let result = match row.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None if !row.target.is_empty() => "n/a",
            None => "",
        };
        println!(
            "| {:<34} | {:>4} | {:>9} | {:>8} | {:>8} | {:>8} | {:>6} | {:>8} | {:<28} | {:>7} | {:<40} | {:<6} |",
            row.name,
            if row.concurrency == 0 {
                "-".to_owned()
            } else {
                row.concurrency.to_string()
            },
            fmt_opt(m.map(|m| m.rps), 1),
            fmt_opt(m.and_then(|m| m.p(0.5)), 2),
            fmt_opt(m.and_then(|m| m.p(0.99)), 2),
            fmt_opt(m.and_then(|m| m.p(0.999)), 2),
            m.map_or(
                if row.failure.is_some() {
                    "FAILED".into()
                } else {
                    "-".into()
                },
                |m| m.errors.to_string()
            ),
            fmt_opt(row.rss_mib, 1),
            row.baseline.clone().unwrap_or_else(|| "-".into()),
            fmt_opt(row.ratio, 3),
            row.target,
            result
        );
    }
    println!();
}
