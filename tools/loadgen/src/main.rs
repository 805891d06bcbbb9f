//! `loadgen`: the benchmark data generator and load generator of the Partners service (see
//! `BENCHMARKS.md`).
//!
//! ```sh
//! # Full run: seeds the large data set into partners_bench, then 10 s per row.
//! cargo run -p loadgen --release -- run
//! # Reuse the data already loaded (fresh keys are created).
//! cargo run -p loadgen --release -- run --skip-seed
//! # Exit non-zero when a target of the performance issue is missed.
//! cargo run -p loadgen --release -- run --skip-seed --check-targets
//! # CI smoke run: tiny data in partners_bench_smoke, 1 s per row, concurrency 4.
//! cargo run -p loadgen -- run --smoke
//! # Only some rows (substrings of the row names), e.g. while tuning one query.
//! cargo run -p loadgen --release -- run --skip-seed --only wholesalers
//! # Another build of the server on the same data (before/after pairs).
//! cargo run -p loadgen --release -- run --skip-seed --server-bin /tmp/partners-before
//! # The rows of a changing directory of one list (quiet, copy off, + clicks/s, + writes/s).
//! cargo run -p loadgen --release -- run --skip-seed --only "gRPC ListPartners browse"
//! # The scale rows: 1,000,000 partners in their own database.
//! cargo run -p loadgen --release -- seed --partners 1000000 \
//!     --database-url postgres://postgres@127.0.0.1/partners_bench_1m
//! cargo run -p loadgen --release -- run --skip-seed \
//!     --database-url postgres://postgres@127.0.0.1/partners_bench_1m
//! # The change events: watch latency with 200 watchers, write cost of the partner snapshot.
//! cargo run -p loadgen --release -- events
//! # The click analytics at scale: 50,000,000 events in a database of their own, then the rows.
//! cargo run -p loadgen --release -- seed --clicks 50000000 \
//!     --database-url postgres://postgres@127.0.0.1/partners_bench_clicks50m
//! RUST_LOG=warn cargo run -p loadgen --release -- clicks \
//!     --database-url postgres://postgres@127.0.0.1/partners_bench_clicks50m
//! # The data set alone; the EXPLAIN plans alone.
//! cargo run -p loadgen --release -- seed
//! cargo run -p loadgen --release -- plans
//! ```
//!
//! Modules: `settings` (options), `database` (the data set, its facts, the counter check),
//! `server` (the server's binary and child process), `closed_loop` (callers and histograms),
//! `sampling` (RSS and CPU from /proc), `scenarios` (what each row's callers send), `open_loop`
//! (calls at a fixed rate behind a row), `changing` (the rows of a changing directory), `pgbench`
//! (baselines, floor, ceiling, sweep), `plans` (EXPLAIN to a file), `targets` (verdicts, click
//! bound), `report` (tables), `run` (one run, in order), `events` (the change events' figures), `clicks` (the click analytics' scale rows); the data generator and the service's
//! SQL are in the library (`loadgen::data`, `loadgen::service_sql`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use loadgen::data::Scale;
use tracing_subscriber::EnvFilter;

mod changing;
mod clicks;
mod closed_loop;
mod database;
mod events;
mod open_loop;
mod pgbench;
mod plans;
mod report;
mod run;
mod sampling;
mod scenarios;
mod server;
mod settings;
mod targets;

use settings::{BenchResult, RunArgs, Settings, default_database_url, default_out_dir};

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Benchmark data generator and load generator of the Partners service (see BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the large, skewed benchmark data set (replacing every row of the data tables, API
    /// keys included) and print keys and counts as key=value lines (progress on stderr).
    Seed(SeedArgs),
    /// Seed (unless --skip-seed), start the server, run the baselines and scenarios, and print
    /// the results table.
    Run(RunArgs),
    /// Write EXPLAIN (ANALYZE, BUFFERS) of the scenarios' SQL on the loaded data to a file
    /// (creates fresh keys; no server, no load).
    Plans(PlansArgs),
    /// The change events' figures on a database of their own: watch-stream latency with many
    /// watchers, and UpdatePartner latency with and without the partner snapshot's trigger.
    Events(events::EventsArgs),
    /// The click analytics' scale rows on loaded data (`seed --clicks N`): single-event and
    /// batch ingest against the one-row-insert baseline of the same round, the exactness of
    /// counters and rollups, the reads' p99, table sizes, and the drop of the oldest partition.
    Clicks(clicks::ClicksArgs),
}

#[derive(Debug, clap::Args)]
struct SeedArgs {
    /// Postgres database to load (created when missing, migrated).
    #[arg(long, default_value = settings::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Sizes of the data set.
    #[command(flatten)]
    scale: Scale,
}

#[derive(Debug, clap::Args)]
struct PlansArgs {
    /// Postgres database with the loaded data [default: partners_bench, partners_bench_smoke
    /// with --smoke].
    #[arg(long)]
    database_url: Option<String>,
    /// The smoke run's database.
    #[arg(long)]
    smoke: bool,
    /// The plans file [default: load-plans.txt in the tmp directory of loadgen's target
    /// directory, e.g. target/tmp/load-plans.txt].
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// Progress of the data generator on stderr; `LOADGEN_LOG` sets the filter (default: loadgen's
/// own info lines), so `RUST_LOG`, meant for the server, leaves the load generator quiet.
fn init_logging() {
    let filter =
        EnvFilter::try_from_env("LOADGEN_LOG").unwrap_or_else(|_| EnvFilter::new("loadgen=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

fn seed(args: &SeedArgs) -> BenchResult<ExitCode> {
    for (key, value) in database::seed(&args.database_url, &args.scale)? {
        println!("{key}={value}");
    }
    Ok(ExitCode::SUCCESS)
}

fn plans_only(args: &PlansArgs) -> BenchResult<ExitCode> {
    plans::require_psql()?;
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| default_database_url(args.smoke).to_owned());
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| default_out_dir().join("load-plans.txt"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let keys = database::keys_for_loaded_data(&url)?;
    let mut conn = database::connect(&url)?;
    let data = database::describe_data(&mut conn, &keys)?;
    let deep_page = i64::from(plans::deep_page(&data));
    let seq_scans = plans::collect_plans(&mut conn, &url, &data, &path, deep_page)?;
    println!("plans: {}", path.display());
    if seq_scans.is_empty() {
        println!("list queries use an index: no Seq Scan on partners");
    } else {
        println!(
            "list queries with a Seq Scan on partners or no plan: {}",
            seq_scans.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Seed(args) => seed(&args),
        Command::Run(args) => run::run(&Settings::from_args(args)),
        Command::Plans(args) => plans_only(&args),
        Command::Events(args) => events::run(&args),
        Command::Clicks(args) => clicks::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("load: {e}");
            println!("load: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
