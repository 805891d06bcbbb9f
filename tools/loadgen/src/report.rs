//! The report: one row per baseline, scenario and check, printed as it finishes (stderr) and at
//! the end as the results table and the CPU table (stdout, Markdown).

use crate::closed_loop::Measured;
use crate::sampling::CpuSplit;
use crate::settings::BenchResult;

/// Width of the scenario column (the longest row names are those of a changing directory).
const NAME_WIDTH: usize = 44;

/// What a row of a changing directory changes against its quiet row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantKind {
    /// Partners renamed through the admin API in the background.
    Writes,
    /// Click events arriving in the background.
    Clicks,
    /// The same list against a second server process without its copy.
    CopyOff,
}

/// A row that measures a list shape again, changed: its quiet row and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The name of the same shape's quiet row (same run).
    pub quiet: String,
    /// What changed.
    pub kind: VariantKind,
}

impl Variant {
    /// `Some` variant of the quiet row `quiet`.
    pub fn new(quiet: &str, kind: VariantKind) -> Option<Variant> {
        Some(Variant {
            quiet: quiet.to_owned(),
            kind,
        })
    }
}

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
    /// The quiet row this row varies, when it is a row of a changing directory.
    pub variant: Option<Variant>,
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
            variant: None,
        }
    }
}

/// Prints the row's figures (or its failure) as it finishes, on stderr.
pub fn report_row(row: &Row) {
    match (&row.measured, &row.failure) {
        (Some(m), _) => {
            eprintln!(
                "load: {:<NAME_WIDTH$} c={:<3} {:>9.1} req/s  p50 {:>7} ms  p99 {:>7} ms  errors {}{}{}{}",
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
                },
                background_text(row)
            );
        }
        (None, Some(e)) => eprintln!("load: {:<NAME_WIDTH$} FAILED: {e}", row.name),
        (None, None) => {}
    }
}

/// What the row's background loop did, with its error samples, or nothing.
fn background_text(row: &Row) -> String {
    let Some(paced) = row.measured.as_ref().and_then(|m| m.background.as_ref()) else {
        return String::new();
    };
    let what = match row.variant.as_ref().map(|v| v.kind) {
        Some(VariantKind::Clicks) => "clicks",
        _ => "writes",
    };
    let mut text = format!("; {}", paced.summary(what));
    if !paced.error_samples.is_empty() {
        text.push_str(&format!(" (e.g. {})", paced.error_samples.join(" | ")));
    }
    text
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
        "| {:<NAME_WIDTH$} | {:>8} | {:>6} | {:>10} | {:>7} | {:>6} | {:>14} | {:>16} |",
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
        "-".repeat(NAME_WIDTH + 2),
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
            "| {:<NAME_WIDTH$} | {:>8.1} | {:>6.1} | {:>10.1} | {:>7.1} | {:>6.1} | {:>14} | {:>16} |",
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
        "| {:<NAME_WIDTH$} | {:>4} | {:>9} | {:>8} | {:>8} | {:>8} | {:>6} | {:>8} | {:<28} | {:>7} | {:<40} | {:<6} |",
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
        "-".repeat(NAME_WIDTH + 2),
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
            "| {:<NAME_WIDTH$} | {:>4} | {:>9} | {:>8} | {:>8} | {:>8} | {:>6} | {:>8} | {:<28} | {:>7} | {:<40} | {:<6} |",
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

/// `value` with `digits` decimals and its ratio to `base` (`412.3 (19.20×)`), `-` when unknown.
fn with_ratio(value: Option<f64>, base: Option<f64>, digits: usize) -> String {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 && b.is_finite() => format!("{v:.digits$} ({:.2}×)", v / b),
        (Some(v), _) => format!("{v:.digits$}"),
        _ => "-".to_owned(),
    }
}

/// Prints each list shape's quiet row beside its rows of a changing directory: p99 and req/s
/// with their ratios to the quiet row, the background rate reached and its errors, and the
/// copy-off p99 against the copy-on one (Markdown).
pub fn print_changing_table(rows: &[Row]) {
    let mut quiet_names: Vec<&str> = Vec::new();
    for row in rows {
        if let Some(v) = &row.variant
            && !quiet_names.contains(&v.quiet.as_str())
        {
            quiet_names.push(&v.quiet);
        }
    }
    if quiet_names.is_empty() {
        return;
    }
    println!(
        "Lists while the directory changes (ratios to the quiet row of the same run; copy off: to \
         the copy-on quiet row):"
    );
    println!(
        "| {:<28} | {:>9} | {:>11} | {:>18} | {:>18} | {:>18} | {:>18} | {:>18} | {:>18} | {:>18} |",
        "list",
        "quiet p99",
        "quiet req/s",
        "writes: p99 ms",
        "writes: req/s",
        "writes/s (err)",
        "clicks: p99 ms",
        "clicks: req/s",
        "clicks/s (err)",
        "copy off: p99 ms"
    );
    println!(
        "|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}|",
        "-".repeat(30),
        "-".repeat(11),
        "-".repeat(13),
        "-".repeat(20),
        "-".repeat(20),
        "-".repeat(20),
        "-".repeat(20),
        "-".repeat(20),
        "-".repeat(20),
        "-".repeat(20)
    );
    for quiet_name in quiet_names {
        let quiet = rows
            .iter()
            .find(|r| r.name == quiet_name)
            .and_then(|r| r.measured.as_ref());
        let of = |kind: VariantKind| {
            rows.iter()
                .find(|r| {
                    r.variant
                        .as_ref()
                        .is_some_and(|v| v.quiet == quiet_name && v.kind == kind)
                })
                .and_then(|r| r.measured.as_ref())
        };
        let p99 = |m: Option<&Measured>| m.and_then(|m| m.p(0.99));
        let rps = |m: Option<&Measured>| m.map(|m| m.rps);
        let reached = |m: Option<&Measured>| {
            m.and_then(|m| m.background.as_ref())
                .map_or("-".into(), |p| {
                    format!("{:.1} ({})", p.achieved(), p.errors)
                })
        };
        let (writes, clicks, off) = (
            of(VariantKind::Writes),
            of(VariantKind::Clicks),
            of(VariantKind::CopyOff),
        );
        println!(
            "| {:<28} | {:>9} | {:>11} | {:>18} | {:>18} | {:>18} | {:>18} | {:>18} | {:>18} | {:>18} |",
            quiet_name,
            fmt_opt(p99(quiet), 2),
            fmt_opt(rps(quiet), 1),
            with_ratio(p99(writes), p99(quiet), 2),
            with_ratio(rps(writes), rps(quiet), 1),
            reached(writes),
            with_ratio(p99(clicks), p99(quiet), 2),
            with_ratio(rps(clicks), rps(quiet), 1),
            reached(clicks),
            with_ratio(p99(off), p99(quiet), 2)
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_carries_its_ratio_when_the_base_is_known() {
        assert_eq!(with_ratio(Some(410.0), Some(20.0), 1), "410.0 (20.50×)");
        assert_eq!(with_ratio(Some(5.0), None, 2), "5.00");
        assert_eq!(with_ratio(Some(5.0), Some(0.0), 2), "5.00");
        assert_eq!(with_ratio(None, Some(1.0), 2), "-");
    }
}
