//! The options of `loadgen run` and the settings of one run resolved from them (smoke defaults,
//! the output directory, the server binary given or not).

use std::path::PathBuf;
use std::time::Duration;

use loadgen::data::Scale;

/// The database of a full run.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1/partners_bench";
/// The database of a smoke run.
pub const SMOKE_DATABASE_URL: &str = "postgres://postgres@127.0.0.1/partners_bench_smoke";

/// Result of the load generator's steps; the error says what failed.
pub type BenchResult<T> = Result<T, String>;

/// Options of `loadgen run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Postgres database of the run [default: postgres://postgres@127.0.0.1/partners_bench,
    /// partners_bench_smoke with --smoke].
    #[arg(long)]
    database_url: Option<String>,
    /// Measured seconds per scenario [default: 10, 1 with --smoke].
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Concurrent callers (closed loop) [default: 32, 4 with --smoke].
    #[arg(long)]
    concurrency: Option<usize>,
    /// Concurrent callers of the ListPartners scenarios [default: 8, 4 with --smoke].
    #[arg(long)]
    list_concurrency: Option<usize>,
    /// Unmeasured warm-up before each scenario, in seconds [default: 1, 0.2 with --smoke].
    #[arg(long)]
    warmup_secs: Option<f64>,
    /// gRPC connections (HTTP/2) shared by the callers; caller i uses connection i mod n.
    #[arg(long, default_value_t = 4)]
    grpc_connections: usize,
    /// Reuse the data already in the database (creates fresh keys only).
    #[arg(long)]
    skip_seed: bool,
    /// CI smoke mode: tiny data, short scenarios; fails only on errors or mismatches.
    #[arg(long)]
    smoke: bool,
    /// Exit non-zero when a target of the performance issue is missed.
    #[arg(long)]
    check_targets: bool,
    /// Run only the rows whose name contains one of these (comma separated) substrings.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The `partners` binary to start as the server under test [default: the one cargo builds
    /// for the workspace in loadgen's own target directory and profile; `run` builds it first].
    #[arg(long, value_name = "PATH")]
    server_bin: Option<PathBuf>,
    /// Directory of the server's log, the plans and pgbench's scripts [default: the `tmp`
    /// directory of loadgen's target directory, e.g. target/tmp].
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Partner renames per second (admin API, open loop) in the background of the "+ N
    /// writes/s" rows.
    #[arg(long, default_value_t = 20.0)]
    write_rate: f64,
    /// Click events per second (open loop) in the background of the "+ N clicks/s" rows
    /// [default: 1000, 100 with --smoke: the debug build's server answers ~300 clicks/s in all,
    /// and a smoke row proves the row runs, not the rate].
    #[arg(long)]
    click_rate: Option<f64>,
    /// Click events per call in the background of the "+ N clicks/s" rows: 1 sends
    /// CreatePartnerClickEvent, more sends BatchCreatePartnerClickEvents at the click rate / this
    /// many calls per second (as a collector that buffers clicks would; rows then say "(M a call)").
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    click_batch: u16,
    /// Renames timed by the "rename seen by 2nd process" row [default: 200, 5 with --smoke].
    #[arg(long)]
    rename_probes: Option<usize>,
    /// Size of the data set loaded by the seed (ignored with --smoke or --skip-seed).
    #[command(flatten)]
    scale: Scale,
}

/// The resolved settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The database of the run.
    pub database_url: String,
    /// Measured time of each row.
    pub duration: Duration,
    /// Unmeasured time before each row.
    pub warmup: Duration,
    /// Callers of most rows.
    pub concurrency: usize,
    /// Callers of the ListPartners rows.
    pub list_concurrency: usize,
    /// HTTP/2 connections shared by the gRPC callers.
    pub grpc_connections: usize,
    /// Reuse the loaded data.
    pub skip_seed: bool,
    /// CI smoke mode.
    pub smoke: bool,
    /// Fail on a missed target.
    pub check_targets: bool,
    /// Substrings selecting rows (empty: every row but the sweep).
    pub only: Vec<String>,
    /// Size of the data set to load.
    pub scale: Scale,
    /// `--server-bin`: the server binary to start as given (not built).
    pub server_bin: Option<PathBuf>,
    /// Where the server's log, the plans and the pgbench scripts go.
    pub out_dir: PathBuf,
    /// Renames per second behind the writes rows.
    pub write_rate: f64,
    /// Click events per second behind the clicks rows.
    pub click_rate: f64,
    /// Click events per call behind the clicks rows (1: CreatePartnerClickEvent; more: batches).
    pub click_batch: usize,
    /// Renames timed by the rename row.
    pub rename_probes: usize,
    /// Measured time of each row of a changing directory (shorter in smoke runs, which only
    /// prove the rows run: eighteen of them would double the smoke run).
    pub changing_duration: Duration,
    /// Unmeasured time before each row of a changing directory.
    pub changing_warmup: Duration,
}

impl Settings {
    /// The settings of `args`: the defaults of a full or a smoke run filled in.
    pub fn from_args(args: RunArgs) -> Settings {
        let smoke = args.smoke;
        let concurrency = args
            .concurrency
            .unwrap_or(if smoke { 4 } else { 32 })
            .max(1);
        let duration = Duration::from_secs(
            args.duration_secs
                .unwrap_or(if smoke { 1 } else { 10 })
                .max(1),
        );
        let warmup = Duration::from_secs_f64(
            args.warmup_secs
                .unwrap_or(if smoke { 0.2 } else { 1.0 })
                .clamp(0.0, 600.0),
        );
        Settings {
            database_url: args
                .database_url
                .unwrap_or_else(|| default_database_url(smoke).to_owned()),
            duration,
            warmup,
            concurrency,
            list_concurrency: args
                .list_concurrency
                .unwrap_or(if smoke { 4 } else { 8 })
                .max(1),
            grpc_connections: args.grpc_connections.max(1),
            skip_seed: args.skip_seed,
            smoke,
            check_targets: args.check_targets,
            only: args.only.into_iter().filter(|s| !s.is_empty()).collect(),
            scale: if smoke { Scale::smoke() } else { args.scale },
            server_bin: args.server_bin,
            out_dir: args.out_dir.unwrap_or_else(default_out_dir),
            write_rate: args.write_rate.clamp(0.1, 10_000.0),
            click_rate: args
                .click_rate
                .unwrap_or(if smoke { 100.0 } else { 1000.0 })
                .clamp(0.1, 100_000.0),
            click_batch: usize::from(args.click_batch),
            rename_probes: args
                .rename_probes
                .unwrap_or(if smoke { 5 } else { 200 })
                .max(1),
            changing_duration: if smoke {
                Duration::from_millis(500)
            } else {
                duration
            },
            changing_warmup: if smoke {
                Duration::from_millis(100)
            } else {
                warmup
            },
        }
    }

    /// Whether the row named `name` is selected by `--only`.
    pub fn selected(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }

    /// The database's name (the URL's last path segment), to tell this run's postgres backends
    /// from others'.
    pub fn database_name(&self) -> String {
        self.database_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

/// The database of a full run, or of a smoke run.
pub fn default_database_url(smoke: bool) -> &'static str {
    if smoke {
        SMOKE_DATABASE_URL
    } else {
        DEFAULT_DATABASE_URL
    }
}

/// The directory cargo put this binary in (`target/<profile>`), when it can be told.
pub fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.parent().map(PathBuf::from)
}

/// `target/tmp` beside the profile directory of this binary (where `cargo bench` kept its files),
/// else `loadgen` in the system's temporary directory.
pub fn default_out_dir() -> PathBuf {
    profile_dir()
        .and_then(|dir| dir.parent().map(|target| target.join("tmp")))
        .unwrap_or_else(|| std::env::temp_dir().join("loadgen"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn settings(args: &[&str]) -> Settings {
        let cli = Cli::parse_from(std::iter::once("run").chain(args.iter().copied()));
        Settings::from_args(cli.run)
    }

    #[test]
    fn smoke_mode_has_its_own_defaults() {
        let s = settings(&["--smoke"]);
        assert_eq!(s.database_url, SMOKE_DATABASE_URL);
        assert_eq!((s.concurrency, s.list_concurrency), (4, 4));
        assert_eq!(s.duration, Duration::from_secs(1));
        assert_eq!(s.scale.partners, Scale::smoke().partners);
        assert_eq!(s.changing_duration, Duration::from_millis(500));
        assert_eq!((s.rename_probes, s.click_rate), (5, 100.0));
        let full = settings(&[]);
        assert_eq!(full.database_url, DEFAULT_DATABASE_URL);
        assert_eq!((full.concurrency, full.list_concurrency), (32, 8));
        assert_eq!(full.changing_duration, full.duration);
        assert_eq!((full.write_rate, full.click_rate), (20.0, 1000.0));
        assert_eq!(full.rename_probes, 200);
    }

    #[test]
    fn only_selects_rows_by_substring() {
        let s = settings(&["--only", "GetPartner,pgbench select"]);
        assert!(s.selected("gRPC GetPartner"));
        assert!(s.selected("baseline: pgbench select c=32"));
        assert!(!s.selected("gRPC ListPartners"));
        assert!(settings(&[]).selected("anything"));
    }

    #[test]
    fn the_database_name_is_the_last_path_segment() {
        let s = settings(&[
            "--database-url",
            "postgres://u@h:5432/bench_db?sslmode=disable",
        ]);
        assert_eq!(s.database_name(), "bench_db");
    }
}
