//! pgbench rows: the baselines (point select, one-row insert), the list target's floor (the
//! scenario's page statement alone), and the click target's ceiling and sweep (the service's click
//! batch statement at 1-64 events per transaction); tps and per-transaction latencies parsed from
//! pgbench's output and its sampled transaction log.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use loadgen::service_sql;

use crate::closed_loop::{Measured, new_histogram};
use crate::database::DataSet;
use crate::settings::{BenchResult, Settings};

/// pgbench of the Debian/Ubuntu packages; `pgbench` on the PATH elsewhere.
const PGBENCH: &str = "/usr/bin/pgbench";
/// Share of pgbench transactions written to its per-transaction log (for the percentiles).
const PGBENCH_SAMPLING_RATE: &str = "0.1";
/// Where pgbench comes from, for the error when it is missing.
const INSTALL_HINT: &str = "pgbench comes with Postgres: `apt-get install postgresql` (Debian's \
     postgresql-<version> package; /usr/bin/pgbench is in postgresql-client-common)";

/// What a pgbench row runs.
pub enum PgbenchKind {
    /// `SELECT * FROM partners WHERE id = :id`, a random id.
    PointSelect,
    /// One single-row INSERT per transaction into `bench_insert_baseline`.
    Insert,
    /// The service's own click batch statement with this many events per transaction.
    ClickBatch(usize),
    /// The page query of the ListPartners scenario, exactly as the service builds it (binds
    /// inlined), on one line.
    ListPage(String),
}

/// Events per transaction of the click ceiling row (what the service's writers reach at best with
/// 32 callers).
pub const CEILING_BATCH: usize = 32;

/// pgbench clients of the click ceiling row (the best of 1, 2 and 4 on this machine).
pub const CEILING_CLIENTS: usize = 4;

/// Events per transaction of the sweep rows (run only when asked for, `--only sweep`): the click
/// statement at other batch sizes, so that its Postgres cost splits into a part per event and a
/// part per statement (see `targets::click_cost_fit`).
pub const SWEEP_BATCHES: [usize; 6] = [1, 2, 4, 8, 16, 64];

/// Row names of the click statement under pgbench: the ceiling row, and the sweep rows followed by
/// their batch size.
pub const CEILING_ROW: &str = "ceiling: pgbench click batch";
/// See [`CEILING_ROW`].
pub const SWEEP_ROW: &str = "sweep: pgbench click n=";

/// pgbench of the Debian/Ubuntu packages, else `pgbench` on the PATH.
fn program() -> &'static str {
    if Path::new(PGBENCH).exists() {
        PGBENCH
    } else {
        "pgbench"
    }
}

/// Fails with the install hint when pgbench cannot be run.
pub fn require() -> BenchResult<()> {
    let program = program();
    match Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{program} --version failed ({}): {}; {INSTALL_HINT}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run {program}: {e}; {INSTALL_HINT}")),
    }
}

/// Events per statement of a ceiling or sweep row, from its name; `None` for other rows.
pub fn click_batch_of(name: &str) -> Option<usize> {
    if name.starts_with(CEILING_ROW) {
        return Some(CEILING_BATCH);
    }
    name.strip_prefix(SWEEP_ROW)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// A pgbench script running the service's click batch statement (`click_event::INSERT_BATCH`) on
/// `n` events per transaction: partners skewed like the scenario (20% on the first 1%), each
/// client on its own residue of partner ids (like the service's partner-sharded writers, so two
/// clients never wait on one partner row), user and business 1, 70% website, distinct keys.
fn click_batch_script(n: usize) -> String {
    let series = format!("FROM generate_series(1, {n})");
    let shard = |range: &str| {
        format!(
            "1 + (:client_id)::bigint + (:clients)::bigint \
             * floor(random() * greatest(({range})::bigint / (:clients)::bigint, 1))::bigint"
        )
    };
    let binds = [
        format!(
            "(SELECT array_agg(CASE WHEN random() < 0.2 THEN {} ELSE {} END) {series})",
            shard(":hot"),
            shard(":max")
        ),
        format!("(SELECT array_agg(1::bigint) {series})"),
        format!("(SELECT array_agg(1::bigint) {series})"),
        format!(
            "(SELECT array_agg(CASE WHEN random() < 0.7 THEN 'website' ELSE 'video' END) {series})"
        ),
        format!("(SELECT array_agg('pgbench-ceiling'::text) {series})"),
        format!("(SELECT array_agg(gen_random_uuid()::text) {series})"),
        format!("(SELECT array_agg('pgbench'::text) {series})"),
    ];
    let parts = service_sql::click_batch_parts();
    let mut sql = parts[0].to_owned();
    for (bind, text) in binds.iter().zip(&parts[1..]) {
        sql.push_str(bind);
        sql.push_str(text);
    }
    // pgbench reads a script line by line; one statement per line.
    format!(
        "{};\n",
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// Runs pgbench with `kind`'s script at `concurrency` for the warm-up, then for the measured
/// duration with its transaction log; `tmp` holds the script and the log.
pub fn run_pgbench(
    settings: &Settings,
    data: &DataSet,
    kind: &PgbenchKind,
    concurrency: usize,
    tmp: &Path,
) -> BenchResult<Measured> {
    let timing = Timing {
        database_url: &settings.database_url,
        warmup: settings.warmup,
        duration: settings.duration,
    };
    run_pgbench_on(&timing, data, kind, concurrency, tmp)
}

/// Where and how long a pgbench row runs.
pub struct Timing<'a> {
    /// The database.
    pub database_url: &'a str,
    /// Unmeasured run first (none when zero).
    pub warmup: Duration,
    /// The measured run.
    pub duration: Duration,
}

/// The `bench_insert_baseline` table of the one-row-insert baseline: a copy of
/// `partner_click_events` (columns, constraints, indexes) without foreign keys or partitions.
pub const INSERT_BASELINE_TABLE: &str = "DROP TABLE IF EXISTS bench_insert_baseline;
     CREATE TABLE bench_insert_baseline
         (LIKE partner_click_events INCLUDING CONSTRAINTS INCLUDING INDEXES);
     ALTER TABLE bench_insert_baseline
         ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY,
         ALTER COLUMN created_at SET DEFAULT now();
     -- The events' key index moved to partner_click_requests (migration 17); the
     -- baseline keeps one, as the one-row insert it stands for had.
     CREATE UNIQUE INDEX ON bench_insert_baseline (principal, idempotency_key);";

/// [`run_pgbench`] with the database and durations given.
pub fn run_pgbench_on(
    settings: &Timing<'_>,
    data: &DataSet,
    kind: &PgbenchKind,
    concurrency: usize,
    tmp: &Path,
) -> BenchResult<Measured> {
    let ceiling;
    let (label, script) = match kind {
        PgbenchKind::PointSelect => (
            "select",
            "\\set id random(1, :max)\nSELECT * FROM partners WHERE id = :id;\n",
        ),
        PgbenchKind::ClickBatch(n) => {
            ceiling = click_batch_script(*n);
            ("click-batch", ceiling.as_str())
        }
        PgbenchKind::ListPage(sql) => ("list-page", sql.as_str()),
        PgbenchKind::Insert => (
            "insert",
            "\\set pid random(1, :max)\n\\set uid random(1, :users)\n\
             INSERT INTO bench_insert_baseline (partner_id, user_id, business_id, event_type, \
             principal, idempotency_key, fingerprint) VALUES (:pid, :uid, 1, 'website', \
             'pgbench', 'pgbench-' || gen_random_uuid(), 'pgbench');\n",
            // (no `:` inside the literals: pgbench takes `:word` for a variable even there)
        ),
    };
    let script_path = tmp.join(format!("pgbench-{label}.sql"));
    std::fs::write(&script_path, script)
        .map_err(|e| format!("cannot write {}: {e}", script_path.display()))?;
    let threads = concurrency.min(2);
    let run = |seconds: u64, log_dir: Option<&Path>| -> BenchResult<String> {
        let program = program();
        let mut cmd = Command::new(program);
        // Like the service on loopback (see `DbConfig::connection_url`): no TLS.
        cmd.env("PGSSLMODE", "disable");
        cmd.args(["-n", "-M", "prepared"])
            .args(["-c", &concurrency.to_string(), "-j", &threads.to_string()])
            .args(["-T", &seconds.to_string()])
            .args(["-D", &format!("max={}", data.max_partner_id.max(1))])
            .args(["-D", &format!("users={}", data.max_user_id.max(1))])
            .args(["-D", &format!("hot={}", (data.max_partner_id / 100).max(1))])
            .args(["-D", &format!("clients={concurrency}")])
            .arg("-f")
            .arg(&script_path);
        if let Some(dir) = log_dir {
            cmd.arg("-l")
                .arg(format!("--sampling-rate={PGBENCH_SAMPLING_RATE}"))
                .arg(format!("--log-prefix={}", dir.join("pgbench").display()));
        }
        let out = cmd
            .arg(settings.database_url)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}; {INSTALL_HINT}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "pgbench {label} failed ({}): {}{}",
                out.status,
                text,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(text)
    };
    if !settings.warmup.is_zero() {
        run(settings.warmup.as_secs().max(1), None)?;
    }
    let log_dir = tmp.join(format!("pgbench-log-{label}-{concurrency}"));
    let _ = std::fs::remove_dir_all(&log_dir);
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| format!("cannot create {}: {e}", log_dir.display()))?;
    let text = run(settings.duration.as_secs().max(1), Some(&log_dir))?;
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = ") && l.contains("without initial connection time"))
        .and_then(|l| l.trim_start_matches("tps = ").split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("no `tps = … (without initial connection time)` in:\n{text}"))?;
    let failed = text
        .lines()
        .find(|l| l.starts_with("number of failed transactions:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let avg = text
        .lines()
        .find(|l| l.starts_with("latency average = "))
        .and_then(|l| {
            l.trim_start_matches("latency average = ")
                .split_whitespace()
                .next()
        })
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    // Per-transaction log lines: client_id transaction_no time_us script_no epoch epoch_us.
    let mut hist = new_histogram();
    let mut ok = 0u64;
    let entries = std::fs::read_dir(&log_dir)
        .map_err(|e| format!("cannot list {}: {e}", log_dir.display()))?;
    for entry in entries.flatten() {
        let file = std::fs::File::open(entry.path())
            .map_err(|e| format!("cannot open {}: {e}", entry.path().display()))?;
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            if let Some(us) = line
                .split_whitespace()
                .nth(2)
                .and_then(|v| v.parse::<u64>().ok())
            {
                hist.saturating_record(us.max(1));
                ok += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&log_dir);
    let processed = text
        .lines()
        .find(|l| l.starts_with("number of transactions actually processed:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(ok);
    let per_transaction = match kind {
        PgbenchKind::ClickBatch(n) => *n,
        _ => 1,
    };
    Ok(Measured {
        rps: tps * per_transaction as f64,
        hist,
        errors: failed,
        error_samples: Vec::new(),
        ok_total: processed * per_transaction as u64,
        peak_rss_kib: None,
        note: if per_transaction > 1 {
            format!(
                "{tps:.1} transactions/s of {per_transaction} events; latency per transaction, pgbench average {avg:.3} ms"
            )
        } else {
            format!("pgbench latency average {avg:.3} ms")
        },
        background: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_are_read_from_the_row_names() {
        let ceiling = format!("{CEILING_ROW} c={CEILING_CLIENTS}");
        assert_eq!(click_batch_of(&ceiling), Some(CEILING_BATCH));
        assert_eq!(click_batch_of(&format!("{SWEEP_ROW}16 c=4")), Some(16));
        assert_eq!(click_batch_of("gRPC CreatePartnerClickEvent"), None);
    }

    #[test]
    fn the_click_script_is_the_service_statement_on_one_line() {
        let script = click_batch_script(4);
        assert!(script.ends_with(";\n"));
        assert_eq!(script.lines().count(), 1);
        let first_words: Vec<&str> = service_sql::click_batch_parts()[0]
            .split_whitespace()
            .collect();
        assert!(script.starts_with(&first_words.join(" ")));
        assert_eq!(script.matches("FROM generate_series(1, 4)").count(), 7);
    }
}
