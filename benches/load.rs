//! Load generator of the Partners service (`harness = false`; see `BENCHMARKS.md`).
//!
//! ```sh
//! # Full run: seeds the large data set into partners_bench, then 10 s per scenario.
//! cargo bench --bench load
//! # Reuse the data already loaded (fresh keys are created through the library).
//! cargo bench --bench load -- --skip-seed
//! # Exit non-zero when a target of the performance issue is missed.
//! cargo bench --bench load -- --skip-seed --check-targets
//! # CI smoke run: tiny data in partners_bench_smoke, 1 s per scenario, concurrency 4.
//! cargo bench --profile dev --bench load -- --smoke
//! # Only some rows (substrings of the row names), e.g. while tuning one query.
//! cargo bench --bench load -- --skip-seed --only wholesalers
//! ```
//!
//! What one run does:
//! 1. `partners seed-bench` (the binary of this package) loads the data set, unless `--skip-seed`;
//!    its `key=value` output gives the keys and the business/user in context. With `--skip-seed`
//!    the bench creates fresh keys itself with `partners::bench_data::create_keys`.
//! 2. Starts `partners serve --no-migrate` on two free 127.0.0.1 ports as a child process (its
//!    log goes to `$CARGO_TARGET_TMPDIR/load-server.log`; `RUST_LOG` and `PARTNERS_*` variables
//!    of the environment reach it) and waits until `grpc.health.v1` says SERVING.
//! 3. Runs the baselines (health Check over tonic; `pgbench -M prepared` point select; `pgbench`
//!    one-row INSERT per transaction into `bench_insert_baseline`, a copy of
//!    `partner_click_events` without foreign keys), the floors and ceilings of the targets (the
//!    ListPartners page statement alone under pgbench; the service's click batch statement under
//!    pgbench) and the scenarios, each for a fixed duration
//!    after a short warm-up, with a fixed number of tokio tasks in a closed loop. Latency is
//!    recorded in microseconds in one `hdrhistogram` per task, merged at the end; only successful
//!    calls are recorded, failed ones are counted. The server's VmRSS is sampled every 50 ms.
//! 4. After the click scenario, checks in SQL that every partner's counters equal the counts of
//!    its events and links, and that the number of acknowledged events equals the number of new
//!    rows (a mismatch always fails the run).
//! 5. Writes EXPLAIN (ANALYZE, BUFFERS) of the SQL of the list scenarios (built with
//!    `partners::model::partner`'s builders, bind values inlined: the statements the service runs
//!    while its search index is current, `known_page_sql`, and those of
//!    its SQL path, `list_page_sql` / `list_count_sql`), of GetPartner and of the include loaders
//!    to `$CARGO_TARGET_TMPDIR/load-plans.txt`, and checks that no list query scans `partners`
//!    sequentially.
//! 6. Prints one table (scenario, concurrency, req/s, p50/p99/p99.9, errors, peak RSS, baseline,
//!    ratio, target, PASS/FAIL) and a summary line. Exit status: non-zero on any error, counter or
//!    acknowledgement mismatch, or server failure; with `--check-targets` also on a missed target.

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use hdrhistogram::Histogram;
use partners::bench_data::{self, COMMON_CATEGORIES, COMMON_COUNTRY, SEARCH_WORD, Scale};
use partners::grpc::pb;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;
use partners::grpc::validate::ListRequest;
use partners::model::partner::{
    ListKind, ListQuery, Scope, find_many_sql, guarded_page_ids_sql, known_page_sql,
    list_count_sql, list_page_sql, load_integrations_sql, load_preferred_sql, load_users_sql,
};
use partners::serving::lists::copy::Snapshot;
use partners::serving::lists::paging::arrange;
use partners::serving::lists::preferences::{MAX_PER_BUSINESS, PreferenceCache};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

type BenchResult<T> = Result<T, String>;

/// The row of the directory's default list (not a scenario of the performance issue).
const BROWSE_ROW: &str = "gRPC ListPartners browse";
/// The row of the newest partners first (`sort=-created_at`; not a scenario of the issue).
const NEWEST_ROW: &str = "gRPC ListPartners newest";
/// The order of [`NEWEST_ROW`].
const NEWEST_SORT: &str = "-created_at";

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1/partners_bench";
const SMOKE_DATABASE_URL: &str = "postgres://postgres@127.0.0.1/partners_bench_smoke";
/// pgbench of the Debian/Ubuntu packages; `pgbench` on the PATH elsewhere.
const PGBENCH: &str = "/usr/bin/pgbench";
/// Share of pgbench transactions written to its per-transaction log (for the percentiles).
const PGBENCH_SAMPLING_RATE: &str = "0.1";
/// Kernel clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`: 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;
/// The RSS limit of the issue, in MiB.
const RSS_LIMIT_MIB: f64 = 150.0;

#[derive(Debug, Parser)]
#[command(
    name = "load",
    about = "Load generator of the Partners service (see BENCHMARKS.md)"
)]
struct Args {
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
    /// Size of the data set loaded by `seed-bench` (ignored with --smoke or --skip-seed).
    #[command(flatten)]
    scale: Scale,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The resolved settings of one run.
#[derive(Debug, Clone)]
struct Settings {
    database_url: String,
    duration: Duration,
    warmup: Duration,
    concurrency: usize,
    list_concurrency: usize,
    grpc_connections: usize,
    skip_seed: bool,
    smoke: bool,
    check_targets: bool,
    only: Vec<String>,
    scale: Scale,
}

impl Settings {
    fn from_args(args: Args) -> Settings {
        let smoke = args.smoke;
        let concurrency = args
            .concurrency
            .unwrap_or(if smoke { 4 } else { 32 })
            .max(1);
        Settings {
            database_url: args.database_url.unwrap_or_else(|| {
                if smoke {
                    SMOKE_DATABASE_URL.to_owned()
                } else {
                    DEFAULT_DATABASE_URL.to_owned()
                }
            }),
            duration: Duration::from_secs(
                args.duration_secs
                    .unwrap_or(if smoke { 1 } else { 10 })
                    .max(1),
            ),
            warmup: Duration::from_secs_f64(
                args.warmup_secs
                    .unwrap_or(if smoke { 0.2 } else { 1.0 })
                    .clamp(0.0, 600.0),
            ),
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
        }
    }

    /// Whether the row named `name` is selected by `--only`.
    fn selected(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers: PRNG, ports, /proc, histograms.

/// xorshift64: a fast, seedable PRNG (no `rand` crate here).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // splitmix-style scrambling so that consecutive seeds give unrelated streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        XorShift((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Two distinct free ports on 127.0.0.1 (bound, read, released).
fn free_ports() -> BenchResult<(u16, u16)> {
    let a = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let b = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let pa = a
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?
        .port();
    let pb = b
        .local_addr()
        .map_err(|e| format!("local_addr: {e}"))?
        .port();
    Ok((pa, pb))
}

/// A `VmRSS:`-style field of /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User + system CPU of a process in clock ticks (/proc/<pid>/stat fields 14 and 15); with
/// `children`, plus the CPU of its terminated, waited-for children (fields 16 and 17).
fn cpu_ticks(pid: &str, children: bool) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`: state is field 3, so field n is at index n - 3.
    let fields: Vec<u64> = text
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let own = fields.get(10)? + fields.get(11)?;
    Some(if children {
        own + fields.get(12)? + fields.get(13)?
    } else {
        own
    })
}

/// Postgres processes that work for the benchmark database: its backends and autovacuum
/// workers (their titles name the database) and the shared writers (WAL writer, checkpointer,
/// background writer). Other databases' backends (e.g. a test suite running meanwhile) are not.
fn postgres_ours(pid: &str, database: &str) -> Option<bool> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if comm.trim() != "postgres" {
        return None;
    }
    let title = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let title = title.replace('\0', " ");
    Some(
        title.contains(&format!(" {database} "))
            || ["walwriter", "checkpointer", "background writer"]
                .iter()
                .any(|w| title.contains(w)),
    )
}

/// CPU ticks of the benchmark database's postgres processes, sampled every 100 ms on a thread
/// so that backends living only during the row (pgbench's) are counted up to their last sample.
struct PostgresSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl PostgresSampler {
    fn scan(database: &str) -> HashMap<String, u64> {
        let mut out = HashMap::new();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return out;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let ours = postgres_ours(pid, database) == Some(true);
            if let Some(ticks) = ours.then(|| cpu_ticks(pid, false)).flatten() {
                out.insert(pid.to_owned(), ticks);
            }
        }
        out
    }

    fn start(database: &str) -> PostgresSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let database = database.to_owned();
        let baseline = PostgresSampler::scan(&database);
        let handle = std::thread::spawn(move || {
            let mut last = baseline.clone();
            loop {
                let done = flag.load(Ordering::Relaxed);
                last.extend(PostgresSampler::scan(&database));
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            last.iter()
                .map(|(pid, t)| t.saturating_sub(baseline.get(pid).copied().unwrap_or(0)))
                .sum()
        });
        PostgresSampler { stop, handle }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

/// `(busy, total)` ticks of the whole machine from the `cpu` line of /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let total: u64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// CPU counters at one instant: the server, this process (with its waited-for children, i.e.
/// pgbench) and the whole machine.
#[derive(Debug, Clone, Copy)]
struct CpuSnapshot {
    server: u64,
    client: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuSnapshot {
    fn take(server_pid: u32) -> CpuSnapshot {
        let (machine_busy, machine_total) = machine_ticks();
        CpuSnapshot {
            server: cpu_ticks(&server_pid.to_string(), false).unwrap_or(0),
            client: cpu_ticks("self", true).unwrap_or(0),
            machine_busy,
            machine_total,
        }
    }
}

/// Where the machine's CPU went during one row, in % of all cores.
#[derive(Debug, Clone, Copy)]
struct CpuSplit {
    server: f64,
    client: f64,
    postgres: f64,
    /// Busy in other processes (other databases' backends, other programs).
    other: f64,
    idle: f64,
    /// Server CPU per call, µs.
    server_us_per_call: Option<f64>,
    /// CPU of this process (the load generator's clients, or pgbench) per call, µs.
    client_us_per_call: Option<f64>,
    /// CPU of the benchmark database's postgres processes per call, µs.
    postgres_us_per_call: Option<f64>,
}

fn cpu_split(before: CpuSnapshot, after: CpuSnapshot, postgres: u64, calls: u64) -> CpuSplit {
    let total = after
        .machine_total
        .saturating_sub(before.machine_total)
        .max(1) as f64;
    let pct = |ticks: u64| 100.0 * ticks as f64 / total;
    let server = after.server.saturating_sub(before.server);
    let client = after.client.saturating_sub(before.client);
    let busy = after.machine_busy.saturating_sub(before.machine_busy);
    let per_call =
        |ticks: u64| (calls > 0).then(|| ticks as f64 / CLOCK_TICKS * 1e6 / calls as f64);
    CpuSplit {
        server: pct(server),
        client: pct(client),
        postgres: pct(postgres),
        other: pct(busy.saturating_sub(server + client + postgres)),
        idle: 100.0 - pct(busy),
        server_us_per_call: per_call(server),
        client_us_per_call: per_call(client),
        postgres_us_per_call: per_call(postgres),
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds are valid")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

// ---------------------------------------------------------------------------------------------
// Measurements.

/// What one baseline or scenario measured.
#[derive(Debug, Clone)]
struct Measured {
    /// Successful calls per second over the measured window.
    rps: f64,
    /// Latency of successful calls, µs (empty when unknown).
    hist: Histogram<u64>,
    /// Failed calls (warm-up included).
    errors: u64,
    /// A few distinct error messages.
    error_samples: Vec<String>,
    /// Successful calls including the warm-up (acknowledged click events).
    ok_total: u64,
    /// Peak VmRSS of the server during the scenario, KiB.
    peak_rss_kib: Option<u64>,
    /// Extra information (pgbench's own latency average).
    note: String,
}

impl Measured {
    fn p(&self, q: f64) -> Option<f64> {
        (!self.hist.is_empty()).then(|| ms(self.hist.value_at_quantile(q)))
    }
    fn p99(&self) -> f64 {
        self.p(0.99).unwrap_or(f64::INFINITY)
    }
}

/// Samples the server's VmRSS every 50 ms until stopped; returns the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Option<u64>>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            let mut peak = proc_status_kib(pid, "VmRSS:");
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Some(kib) = proc_status_kib(pid, "VmRSS:") {
                    peak = Some(peak.map_or(kib, |p| p.max(kib)));
                }
            }
            peak
        });
        RssSampler { stop, handle }
    }

    async fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.ok().flatten()
    }
}

/// Per-task tallies of a closed loop.
struct TaskTally {
    hist: Histogram<u64>,
    ok_measured: u64,
    ok_total: u64,
    errors: u64,
    samples: Vec<String>,
}

/// Runs `concurrency` tasks calling `call` in a closed loop: warm-up, then the measured window.
/// `call` gets the task number and the task's PRNG and returns the call's future.
async fn closed_loop<F, Fut>(
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: u32,
    call: F,
) -> Measured
where
    F: Fn(usize, &mut XorShift) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let sampler = RssSampler::start(server_pid);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let seed_base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift::new(seed_base ^ (task as u64 + 1).wrapping_mul(0x2545_F491));
            let mut t = TaskTally {
                hist: new_histogram(),
                ok_measured: 0,
                ok_total: 0,
                errors: 0,
                samples: Vec::new(),
            };
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let outcome = call(task, &mut rng).await;
                let us = t0.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
                match outcome {
                    Ok(()) => {
                        t.ok_total += 1;
                        if t0 >= measure_from {
                            t.ok_measured += 1;
                            t.hist.saturating_record(us.max(1));
                        }
                    }
                    Err(e) => {
                        t.errors += 1;
                        if t.samples.len() < 3 && !t.samples.contains(&e) {
                            t.samples.push(e);
                        }
                    }
                }
            }
            t
        }));
    }
    let mut hist = new_histogram();
    let (mut ok_measured, mut ok_total, mut errors) = (0u64, 0u64, 0u64);
    let mut error_samples: Vec<String> = Vec::new();
    for task in tasks {
        match task.await {
            Ok(t) => {
                hist.add(&t.hist).expect("histograms have the same bounds");
                ok_measured += t.ok_measured;
                ok_total += t.ok_total;
                errors += t.errors;
                for s in t.samples {
                    if error_samples.len() < 5 && !error_samples.contains(&s) {
                        error_samples.push(s);
                    }
                }
            }
            Err(e) => {
                errors += 1;
                error_samples.push(format!("load task panicked: {e}"));
            }
        }
    }
    let peak_rss_kib = sampler.finish().await;
    Measured {
        rps: ok_measured as f64 / duration.as_secs_f64(),
        hist,
        errors,
        error_samples,
        ok_total,
        peak_rss_kib,
        note: String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// The server under test.

/// The `partners serve` child process; stopped with SIGTERM on drop.
struct Server {
    child: Option<Child>,
    pid: u32,
    grpc_addr: String,
    http_addr: String,
    log: PathBuf,
}

impl Server {
    fn start(database_url: &str, tmp: &Path) -> BenchResult<Server> {
        let (grpc_port, http_port) = free_ports()?;
        let grpc_addr = format!("127.0.0.1:{grpc_port}");
        let http_addr = format!("127.0.0.1:{http_port}");
        let log = tmp.join("load-server.log");
        let file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err_file = file
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        // PARTNERS_BENCH_SERVER names another build of the server, to compare two builds on the
        // same data in alternating runs.
        let binary = std::env::var_os("PARTNERS_BENCH_SERVER")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_partners").into());
        let child = Command::new(binary)
            .args([
                "serve",
                "--no-migrate",
                "--grpc-addr",
                &grpc_addr,
                "--http-addr",
                &http_addr,
            ])
            .env("DATABASE_URL", database_url)
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(|e| format!("cannot start partners serve: {e}"))?;
        let pid = child.id();
        Ok(Server {
            child: Some(child),
            pid,
            grpc_addr,
            http_addr,
            log,
        })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until `grpc.health.v1.Health/Check` answers SERVING (at most 60 s).
    async fn wait_serving(&mut self) -> BenchResult<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let uri = format!("http://{}", self.grpc_addr);
        loop {
            if let Some(status) = self.exited() {
                return Err(format!(
                    "partners serve exited early ({status}); log tail:\n{}",
                    self.log_tail()
                ));
            }
            let endpoint = Endpoint::from_shared(uri.clone()).map_err(|e| format!("{uri}: {e}"))?;
            if let Ok(channel) = endpoint.connect().await {
                let answer = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await;
                if answer.is_ok_and(|r| r.into_inner().status == ServingStatus::Serving as i32) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "partners serve not SERVING after 60 s; log tail:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then up to 20 s for the drain, then SIGKILL. Returns the exit status text.
    fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return "already stopped".into();
        };
        if let Ok(Some(status)) = child.try_wait() {
            return format!("had exited: {status}");
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        "killed after 20 s without exiting".into()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Data set and database helpers.

/// `key=value` lines of `seed-bench` / `create_keys`.
type Keys = HashMap<String, String>;

fn seed(settings: &Settings) -> BenchResult<(Keys, f64)> {
    let s = &settings.scale;
    let started = Instant::now();
    eprintln!("load: seeding {} …", settings.database_url);
    let output = Command::new(env!("CARGO_BIN_EXE_partners"))
        .arg("seed-bench")
        .args(["--partners", &s.partners.to_string()])
        .args(["--businesses", &s.businesses.to_string()])
        .args(["--users", &s.users.to_string()])
        .args(["--integrations", &s.integrations.to_string()])
        .args(["--preferences", &s.preferences.to_string()])
        .args(["--links", &s.links.to_string()])
        .args(["--clicks", &s.clicks.to_string()])
        .env("DATABASE_URL", &settings.database_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run partners seed-bench: {e}"))?;
    if !output.status.success() {
        return Err(format!("partners seed-bench failed: {}", output.status));
    }
    let keys = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok((keys, started.elapsed().as_secs_f64()))
}

fn connect(url: &str) -> BenchResult<PgConnection> {
    PgConnection::establish(url).map_err(|e| format!("cannot connect to {url}: {e}"))
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn scalar(conn: &mut PgConnection, sql: &str) -> BenchResult<i64> {
    diesel::sql_query(sql)
        .get_result::<N>(conn)
        .map(|r| r.n)
        .map_err(|e| format!("`{sql}`: {e}"))
}

fn exec(conn: &mut PgConnection, sql: &str) -> BenchResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(sql).map_err(|e| format!("`{sql}`: {e}"))
}

/// Reads every table and index of the benchmark database once (`pg_prewarm`, mode `read`), so
/// the rows start with the data in the OS page cache. On this VM the page cache does not keep the
/// database between runs: a cold run read 1.8 GB at ~90 MB/s, and a single cold index probe took
/// ~5 ms, which made the first rows of a run measure the disk. Without the extension (Debian's
/// `postgresql-contrib`) the run goes on cold, with a warning.
fn prewarm(conn: &mut PgConnection) {
    let started = Instant::now();
    let warmed = exec(conn, "CREATE EXTENSION IF NOT EXISTS pg_prewarm").and_then(|()| {
        exec(
            conn,
            "SELECT pg_prewarm(c.oid, 'read') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't', 'm')",
        )
    });
    match warmed {
        Ok(()) => eprintln!(
            "load: read the database into the page cache in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => eprintln!("load: WARNING: no prewarm ({e}); the first rows may read the disk"),
    }
}

fn key<'a>(keys: &'a Keys, name: &str) -> BenchResult<&'a str> {
    keys.get(name)
        .map(String::as_str)
        .ok_or_else(|| format!("seed output has no `{name}` line"))
}

/// The facts the scenarios need about the data set.
#[derive(Debug, Clone)]
struct DataSet {
    user_key: String,
    business_uuid: String,
    user_uuid: String,
    business_id: i64,
    user_id: i64,
    max_partner_id: i64,
    max_user_id: i64,
    partners: i64,
    wholesalers: i64,
    click_rows: i64,
}

fn describe_data(conn: &mut PgConnection, keys: &Keys) -> BenchResult<DataSet> {
    let user_uuid = key(keys, "user_uuid")?.to_owned();
    let business_uuid = key(keys, "business_uuid")?.to_owned();
    // uuids come from our own seed output; still, only hex digits and dashes reach the SQL.
    let clean = |u: &str| u.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if !clean(&user_uuid) || !clean(&business_uuid) {
        return Err("malformed uuid in the seed output".into());
    }
    Ok(DataSet {
        user_key: key(keys, "user_key")?.to_owned(),
        user_id: scalar(
            conn,
            &format!("SELECT id AS n FROM users WHERE uuid = '{user_uuid}'"),
        )?,
        business_id: scalar(
            conn,
            &format!("SELECT id AS n FROM businesses WHERE uuid = '{business_uuid}'"),
        )?,
        business_uuid,
        user_uuid,
        max_partner_id: scalar(conn, "SELECT coalesce(max(id), 0) AS n FROM partners")?,
        max_user_id: scalar(conn, "SELECT coalesce(max(id), 0) AS n FROM users")?,
        partners: scalar(
            conn,
            "SELECT count(*) AS n FROM partners WHERE deleted_at IS NULL",
        )?,
        wholesalers: scalar(
            conn,
            "SELECT count(*) AS n FROM partners WHERE deleted_at IS NULL \
             AND categories @> ARRAY['wholesaler']",
        )?,
        click_rows: scalar(conn, "SELECT count(*) AS n FROM partner_click_events")?,
    })
}

// ---------------------------------------------------------------------------------------------
// pgbench baselines.

enum PgbenchKind {
    PointSelect,
    Insert,
    /// The service's own click batch statement with this many events per transaction.
    ClickBatch(usize),
    /// The page query of the ListPartners scenario, exactly as the service builds it (binds
    /// inlined), on one line.
    ListPage(String),
}

/// Events per transaction of the click ceiling row (what the service's writers reach at best with
/// 32 callers).
const CEILING_BATCH: usize = 32;

/// pgbench clients of the click ceiling row (the best of 1, 2 and 4 on this machine).
const CEILING_CLIENTS: usize = 4;

/// Events per transaction of the sweep rows (run only when asked for, `--only sweep`): the click
/// statement at other batch sizes, so that its Postgres cost splits into a part per event and a
/// part per statement (see [`click_cost_fit`]).
const SWEEP_BATCHES: [usize; 6] = [1, 2, 4, 8, 16, 64];

/// Row names of the click statement under pgbench: the ceiling row, and the sweep rows followed by
/// their batch size.
const CEILING_ROW: &str = "ceiling: pgbench click batch";
const SWEEP_ROW: &str = "sweep: pgbench click n=";

/// Events per statement of a ceiling or sweep row, from its name; `None` for other rows.
fn click_batch_of(name: &str) -> Option<usize> {
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
    let parts = partners::model::click_event::INSERT_BATCH;
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

fn run_pgbench(
    settings: &Settings,
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
        let program = if Path::new(PGBENCH).exists() {
            PGBENCH
        } else {
            "pgbench"
        };
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
            .arg(&settings.database_url)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
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
    })
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

/// Clients shared by the scenarios.
#[derive(Clone)]
struct Clients {
    channels: Vec<Channel>,
    http: reqwest::Client,
    http_base: String,
    auth: MetadataValue<Ascii>,
    auth_header: String,
}

impl Clients {
    fn partner(&self, task: usize) -> PartnerServiceClient<Channel> {
        PartnerServiceClient::new(self.channels[task % self.channels.len()].clone())
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.auth.clone());
        request
    }
}

fn status_text(s: tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

async fn rest_get(http: &reqwest::Client, url: String, auth: &str) -> Result<(), String> {
    let response = http
        .get(url)
        .header("authorization", auth)
        .send()
        .await
        .map_err(|e| format!("http: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("http body: {e}"))?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ))
    }
}

/// The partner of a click: 20% on the first 1% of ids (the seed's hot partners), the rest on
/// the other ids.
fn skewed_partner(rng: &mut XorShift, max_id: i64) -> i64 {
    let max_id = max_id.max(1) as u64;
    let hot = (max_id / 100).max(1);
    if max_id <= hot || rng.unit() < 0.2 {
        1 + rng.below(hot) as i64
    } else {
        (hot + 1 + rng.below(max_id - hot)) as i64
    }
}

/// The filters of the ListPartners scenarios (gRPC and REST).
fn list_partners_request() -> pb::ListPartnersRequest {
    pb::ListPartnersRequest {
        business_uuid: String::new(),
        include: vec!["users".into(), "partner_integrations".into()],
        filter: Some(pb::ListPartnersFilter {
            categories: COMMON_CATEGORIES.iter().map(|c| (*c).to_owned()).collect(),
            country_codes: vec![COMMON_COUNTRY.to_owned()],
            ..Default::default()
        }),
        search: SEARCH_WORD.to_owned(),
        page: None,
        per_page: None,
        sort: String::new(),
    }
}

fn rest_list_partners_path() -> String {
    let mut query = String::new();
    for c in COMMON_CATEGORIES {
        query.push_str(&format!("filter%5Bcategories%5D%5B%5D={c}&"));
    }
    format!(
        "/api/v1/partners?{query}filter%5Bcountry_codes%5D%5B%5D={COMMON_COUNTRY}&search={SEARCH_WORD}\
         &include=users,partner_integrations"
    )
}

/// One row of the result table.
struct Row {
    name: String,
    concurrency: usize,
    measured: Option<Measured>,
    failure: Option<String>,
    baseline: Option<String>,
    ratio: Option<f64>,
    target: String,
    pass: Option<bool>,
    /// Peak server RSS during the row, MiB.
    rss_mib: Option<f64>,
    /// CPU split of the row (warm-up included).
    cpu: Option<CpuSplit>,
}

impl Row {
    fn new(name: &str, concurrency: usize, result: BenchResult<Measured>) -> Row {
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

fn report_row(row: &Row) {
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

// ---------------------------------------------------------------------------------------------
// Click verification.

#[derive(QueryableByName, Debug)]
struct Mismatch {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    website_clicks: i64,
    #[diesel(sql_type = BigInt)]
    video_clicks: i64,
    #[diesel(sql_type = BigInt)]
    website_events: i64,
    #[diesel(sql_type = BigInt)]
    video_events: i64,
    #[diesel(sql_type = BigInt)]
    users_count: i64,
    #[diesel(sql_type = BigInt)]
    links: i64,
}

const COUNTER_CHECK: &str = "\
SELECT p.id, p.website_clicks, p.video_clicks,
       coalesce(e.website, 0) AS website_events, coalesce(e.video, 0) AS video_events,
       p.users_count, coalesce(l.links, 0) AS links
FROM partners p
LEFT JOIN (SELECT partner_id,
                  count(*) FILTER (WHERE event_type = 'website') AS website,
                  count(*) FILTER (WHERE event_type = 'video') AS video
           FROM partner_click_events GROUP BY partner_id) e ON e.partner_id = p.id
LEFT JOIN (SELECT partner_id, count(*) AS links FROM partner_users GROUP BY partner_id) l
       ON l.partner_id = p.id
WHERE p.website_clicks <> coalesce(e.website, 0) OR p.video_clicks <> coalesce(e.video, 0)
   OR p.users_count <> coalesce(l.links, 0)
ORDER BY p.id";

/// Checks the counters of every partner; returns the number of mismatching partners.
fn verify_counters(conn: &mut PgConnection) -> BenchResult<usize> {
    let started = Instant::now();
    let rows: Vec<Mismatch> = diesel::sql_query(COUNTER_CHECK)
        .load(conn)
        .map_err(|e| format!("counter check: {e}"))?;
    for m in rows.iter().take(20) {
        eprintln!(
            "load: MISMATCH partner {}: website_clicks {} vs {} events, video_clicks {} vs {} \
             events, users_count {} vs {} links",
            m.id,
            m.website_clicks,
            m.website_events,
            m.video_clicks,
            m.video_events,
            m.users_count,
            m.links
        );
    }
    eprintln!(
        "load: counter check of every partner: {} mismatching ({:.1} s)",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(rows.len())
}

// ---------------------------------------------------------------------------------------------
// EXPLAIN plans.

fn psql_explain(database_url: &str, sql: &str) -> BenchResult<String> {
    let out = Command::new("psql")
        .arg(database_url)
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
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

/// The business and user in context of every scenario.
fn data_scope(data: &DataSet) -> Scope {
    Scope {
        business_id: Some(data.business_id),
        user_id: Some(data.user_id),
    }
}

/// The query the service runs for the ListPartners scenario's request (two categories, a
/// country, the search word, page 1 of 25, business and user in context).
fn list_partners_query(data: &DataSet) -> ListQuery {
    let mut query = ListQuery::new(ListKind::All, data_scope(data), 1, 25);
    query.categories = COMMON_CATEGORIES.iter().map(|c| (*c).to_owned()).collect();
    query.country_codes = vec![COMMON_COUNTRY.to_owned()];
    query.search = Some(SEARCH_WORD.to_owned());
    query
}

/// The page statement the service runs for the ListPartners scenario while its search index is
/// current (`known_page_sql` with the page the service cuts from the matches the index finds on
/// this data and the business's preferences, bind values inlined).
fn list_partners_statement(
    conn: &mut PgConnection,
    data: &DataSet,
    snapshot: &Snapshot,
) -> BenchResult<String> {
    let q = list_partners_query(data);
    let ids = snapshot
        .candidates(&q)
        .ok_or("the search index does not cover the ListPartners scenario")?;
    let preferred = PreferenceCache::default()
        .get(conn, data.business_id)
        .map_err(|e| format!("preferences: {e}"))?
        .filter(|p| p.complete())
        .ok_or("the business in context is missing or has too many preferences to cache")?;
    let (page_ids, _) = arrange(&q, &ids, Some(&preferred));
    let guard = Some((data.business_id, preferred.version));
    Ok(known_page_sql(&q, &page_ids, snapshot.version(), guard).with_literals())
}

/// The newest row's request: the newest partners first, otherwise the defaults.
fn newest_request() -> pb::ListPartnersRequest {
    pb::ListPartnersRequest {
        sort: NEWEST_SORT.into(),
        ..Default::default()
    }
}

/// EXPLAINs one statement of a list into the plans file; a plan with a `Seq Scan on partners`,
/// or one that could not be taken (the index use is then unverified), goes into `seq_scans`.
fn explain_list_part(
    settings: &Settings,
    title: &str,
    part: &str,
    sql: &str,
    seq_scans: &mut Vec<String>,
    write: &mut impl FnMut(&str) -> BenchResult<()>,
) -> BenchResult<()> {
    let plan = psql_explain(&settings.database_url, sql).unwrap_or_else(|e| {
        seq_scans.push(format!("{title} ({part}): {e}"));
        e
    });
    if plan.contains("Seq Scan on partners") {
        seq_scans.push(format!("{title} ({part})"));
    }
    write(&format!("== {title}: {part}\n{sql}\n\n{plan}\n"))
}

/// Writes the plans to `path`; returns the list queries that scan `partners` sequentially or
/// whose plan could not be taken.
fn collect_plans(
    conn: &mut PgConnection,
    settings: &Settings,
    data: &DataSet,
    path: &Path,
    deep_page: i64,
) -> BenchResult<Vec<String>> {
    let scope = data_scope(data);
    let base = |kind: ListKind, page: i64| ListQuery::new(kind, scope, page, 25);
    let queries = [
        (
            "ListPartners (scenario filters + search)".to_owned(),
            list_partners_query(data),
        ),
        (
            "ListAvailablePartners page 1".to_owned(),
            base(ListKind::Available, 1),
        ),
        (
            "ListWholesalers page 1".to_owned(),
            base(ListKind::Wholesalers, 1),
        ),
        (
            format!("ListWholesalers page {deep_page}"),
            base(ListKind::Wholesalers, deep_page),
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
    let snapshot = Snapshot::load(conn).map_err(|e| format!("search index: {e}"))?;
    for (title, q) in &queries {
        let page = list_page_sql(q).with_literals();
        let count = list_count_sql(q).with_literals();
        let mut parts = Vec::new();
        if q.kind == ListKind::All {
            let indexed = list_partners_statement(conn, data, &snapshot)?;
            page_ids = diesel::sql_query(format!("SELECT s.id FROM ({indexed}) s"))
                .load::<Id>(conn)
                .map(|rows| rows.into_iter().map(|r| r.id).collect())
                .unwrap_or_default();
            parts.push((
                "page query of the page the service cut from the search index's matches with the \
                 business's cached preferences (known_page_sql; what the service runs while its \
                 index is current)",
                indexed,
            ));
            parts.push((
                "the business's preferred partners (load_preferred_sql; run once per preference \
                 version of the business, then cached)",
                load_preferred_sql(data.business_id, MAX_PER_BUSINESS).with_literals(),
            ));
        } else {
            let (ids, _) = snapshot
                .page(q, None)
                .ok_or_else(|| format!("the search index does not cut the page of {title}"))?;
            parts.push((
                "page query of the page the service cut from the search index's matches \
                 (known_page_sql; what the service runs while its index is current: the index \
                 tells the total)",
                known_page_sql(q, &ids, snapshot.version(), None).with_literals(),
            ));
        }
        let sql_path = "SQL path, when the search index is stale or off: ";
        let page_part = format!("{sql_path}page query (list_page_sql)");
        let count_part = format!(
            "{sql_path}count query (list_count_sql; run when the page cannot tell the total)"
        );
        parts.push((&page_part, page));
        parts.push((&count_part, count));
        for (part, sql) in &parts {
            explain_list_part(settings, title, part, sql, &mut seq_scans, &mut write)?;
        }
    }
    // The newest row's list: a chosen order without a search takes the SQL path under the
    // search version (the copy tells the total): the page's ids, then their rows.
    let title = format!("ListPartners sort={NEWEST_SORT} page 1");
    let mut newest = ListRequest::try_from(&newest_request())
        .map_err(|e| format!("{title}: {e}"))?
        .query;
    newest.scope = scope;
    let ids_sql = guarded_page_ids_sql(&newest, snapshot.version()).with_literals();
    let newest_ids: Vec<i64> = diesel::sql_query(&ids_sql)
        .load::<Id>(conn)
        .map(|rows| rows.into_iter().map(|r| r.id).collect())
        .map_err(|e| format!("{title}: {e}"))?;
    let parts = [
        (
            "page ids (guarded_page_ids_sql; the copy tells the total)",
            ids_sql,
        ),
        (
            "the page's rows (known_page_sql, same transaction)",
            known_page_sql(&newest, &newest_ids, snapshot.version(), None).with_literals(),
        ),
    ];
    for (part, sql) in &parts {
        explain_list_part(settings, &title, part, sql, &mut seq_scans, &mut write)?;
    }
    // GetPartner: the statement the partner reader runs, here for a batch of 16 keys spread over
    // the partners (the service binds the arrays; here they are literals).
    let step = (data.max_partner_id / 16).max(1);
    let keys: Vec<(i64, Scope)> = (1..=16).map(|i| (i * step, scope)).collect();
    let sql = find_many_sql(&keys).with_literals();
    let plan = psql_explain(&settings.database_url, &sql).unwrap_or_else(|e| e);
    write(&format!(
        "== GetPartner, a batch of 16 keys (find_many_sql)\n{sql}\n\n{plan}\n"
    ))?;
    // Include loaders for the ListPartners page.
    let business = Some(data.business_id);
    let includes = [
        (
            "include=users (load_users_sql) for the ListPartners page",
            load_users_sql(&page_ids, business).with_literals(),
        ),
        (
            "include=partner_integrations (load_integrations_sql) for the ListPartners page",
            load_integrations_sql(&page_ids, business).with_literals(),
        ),
    ];
    for (title, sql) in includes {
        let plan = psql_explain(&settings.database_url, &sql).unwrap_or_else(|e| e);
        write(&format!("== {title}\n{sql}\n\n{plan}\n"))?;
    }
    Ok(seq_scans)
}

// ---------------------------------------------------------------------------------------------
// The run.

/// PASS when every criterion holds, FAIL when one fails, n/a (`None`) when a criterion could not
/// be evaluated (its baseline was not run, e.g. with `--only`) and none failed.
fn all_of(criteria: &[Option<bool>]) -> Option<bool> {
    if criteria.contains(&Some(false)) {
        Some(false)
    } else if criteria.iter().all(Option::is_some) {
        Some(true)
    } else {
        None
    }
}

/// What every click bound adds to the statement's Postgres CPU per event: a gRPC call that does no
/// work at all (the health Check's server and client µs per call at `concurrency`), with the
/// machine's cores and the click target (1.5 × the one-row-insert rate).
struct NoOpCall {
    cores: usize,
    server_us: f64,
    client_us: f64,
    insert_rps: f64,
}

impl NoOpCall {
    fn from_rows(rows: &[Row], concurrency: usize) -> Option<NoOpCall> {
        let find = |name: String| rows.iter().find(|r| r.name == name);
        let health = find(format!("baseline: health Check c={concurrency}"))?.cpu?;
        let insert = find(format!("baseline: pgbench insert c={concurrency}"))?;
        Some(NoOpCall {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            server_us: health.server_us_per_call?,
            client_us: health.client_us_per_call?,
            insert_rps: insert.measured.as_ref()?.rps,
        })
    }

    /// Events per second with `postgres_us` of Postgres per event and nothing else on the cores.
    fn bound(&self, postgres_us: f64) -> f64 {
        self.cores as f64 * 1e6 / (postgres_us.max(0.0) + self.server_us + self.client_us)
    }

    fn target(&self) -> f64 {
        1.5 * self.insert_rps
    }
}

/// The most click events per second any server could acknowledge on this machine with the
/// design's click statement: every core busy, each event costing the ceiling row's Postgres CPU
/// (the service's statement, 32 events per transaction) plus a gRPC call that does no work at all
/// (the health Check's server and client CPU per call). Against the click target (1.5 × the
/// one-row-insert rate) it tells whether the target is reachable in this run's phase.
fn click_bound(rows: &[Row], concurrency: usize) -> Option<String> {
    let call = NoOpCall::from_rows(rows, concurrency)?;
    let ceiling = rows.iter().find(|r| r.name.starts_with(CEILING_ROW))?.cpu?;
    let postgres = ceiling.postgres_us_per_call?;
    let (bound, target) = (call.bound(postgres), call.target());
    let verdict = if bound < target {
        "out of reach in this phase, whatever the server does"
    } else {
        "not excluded by this bound"
    };
    Some(format!(
        "click bound: at most {bound:.0} events/s = {} cores / ({postgres:.0} µs of Postgres per \
         event (ceiling row) + {:.0} µs server + {:.0} µs client per gRPC call doing \
         nothing (health Check c={concurrency})); click target {target:.0} events/s (1.5 × \
         {:.0}): {verdict}",
        call.cores, call.server_us, call.client_us, call.insert_rps
    ))
}

/// The click statement's Postgres CPU per event at `n` events per statement, fitted as
/// `per_event + per_statement / n` by least squares over the ceiling and sweep rows (at least
/// three batch sizes). `per_event` is what no batch size gets below: with it, the click bound of
/// batches of any size, against the click target.
fn click_cost_fit(rows: &[Row], concurrency: usize) -> Option<String> {
    let points: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            let n = click_batch_of(&r.name)?;
            Some((1.0 / n as f64, r.cpu?.postgres_us_per_call?))
        })
        .collect();
    if points.len() < 3 {
        return None;
    }
    let count = points.len() as f64;
    let (mean_x, mean_y) = points
        .iter()
        .fold((0.0, 0.0), |(x, y), p| (x + p.0 / count, y + p.1 / count));
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let per_statement = sxy / sxx;
    let per_event = mean_y - per_statement * mean_x;
    let mut line = format!(
        "click statement cost (fit over {} batch sizes): {per_event:.0} µs of Postgres per event \
         + {per_statement:.0} µs per statement",
        points.len()
    );
    if let Some(call) = NoOpCall::from_rows(rows, concurrency) {
        line.push_str(&format!(
            "; with batches of any size at most {:.0} events/s = {} cores / ({per_event:.0} + \
             {:.0} + {:.0}) µs, against the click target {:.0}",
            call.bound(per_event),
            call.cores,
            call.server_us,
            call.client_us,
            call.target()
        ));
    }
    Some(line)
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
}

fn print_cpu_table(rows: &[Row]) {
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

fn print_table(rows: &[Row]) {
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

fn main() -> ExitCode {
    let settings = Settings::from_args(Args::parse());
    match run(&settings) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("load: {e}");
            println!("load: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(settings: &Settings) -> BenchResult<ExitCode> {
    let started = Instant::now();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut hard_failures: Vec<String> = Vec::new();

    // 1. Data and keys.
    let (keys, seed_seconds) = if settings.skip_seed {
        // Data loaded by an earlier commit may lack this one's migrations (the server below
        // starts with --no-migrate).
        partners::db::run_migrations(&partners::config::DbConfig::for_url(&settings.database_url))
            .map_err(|e| format!("migrate: {e}"))?;
        let mut conn = connect(&settings.database_url)?;
        let lines = bench_data::create_keys(&mut conn).map_err(|e| format!("create keys: {e}"))?;
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
        (lines.into_iter().collect::<Keys>(), None)
    } else {
        let (keys, seconds) = seed(settings)?;
        (keys, Some(seconds))
    };
    let mut conn = connect(&settings.database_url)?;
    prewarm(&mut conn);
    let data = describe_data(&mut conn, &keys)?;
    if let Some(s) = seed_seconds {
        eprintln!("load: seed-bench took {s:.1} s");
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
    let mut server = Server::start(&settings.database_url, &tmp)?;
    runtime.block_on(server.wait_serving())?;
    eprintln!(
        "load: server pid {} on grpc {} http {} (log {})",
        server.pid,
        server.grpc_addr,
        server.http_addr,
        server.log.display()
    );
    let clients = runtime.block_on(async {
        let mut channels = Vec::new();
        for _ in 0..settings.grpc_connections {
            let channel = Endpoint::from_shared(format!("http://{}", server.grpc_addr))
                .map_err(|e| format!("endpoint: {e}"))?
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| format!("connect {}: {e}", server.grpc_addr))?;
            channels.push(channel);
        }
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let auth_header = format!("Bearer {}", data.user_key);
        let auth: MetadataValue<Ascii> = auth_header
            .parse()
            .map_err(|e| format!("key is not valid metadata: {e}"))?;
        Ok::<_, String>(Clients {
            channels,
            http,
            http_base: format!("http://{}", server.http_addr),
            auth,
            auth_header,
        })
    })?;

    let c = settings.concurrency;
    let lc = settings.list_concurrency;
    let (warmup, duration, pid) = (settings.warmup, settings.duration, server.pid);
    let mut concurrencies = vec![c];
    if lc != c {
        concurrencies.push(lc);
    }
    let mut rows: Vec<Row> = Vec::new();
    // The database name, to tell this run's postgres backends from others'.
    let database = settings
        .database_url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let run_row = |rows: &mut Vec<Row>,
                   name: &str,
                   conc: usize,
                   f: &mut dyn FnMut() -> BenchResult<Measured>| {
        if !settings.selected(name) {
            return;
        }
        eprintln!("load: running {name} (c={conc}) …");
        let postgres = PostgresSampler::start(&database);
        let before = CpuSnapshot::take(pid);
        let result = f();
        let after = CpuSnapshot::take(pid);
        let postgres = postgres.finish();
        let mut row = Row::new(name, conc, result);
        row.cpu = row
            .measured
            .as_ref()
            .map(|m| cpu_split(before, after, postgres, m.ok_total + m.errors));
        report_row(&row);
        rows.push(row);
    };

    // 3. Baselines.
    for &conc in &concurrencies {
        let name = format!("baseline: health Check c={conc}");
        run_row(&mut rows, &name, conc, &mut || {
            let channels = clients.channels.clone();
            Ok(runtime.block_on(closed_loop(
                conc,
                warmup,
                duration,
                pid,
                move |task, _rng| {
                    let mut client = HealthClient::new(channels[task % channels.len()].clone());
                    async move {
                        let r = client
                            .check(HealthCheckRequest {
                                service: String::new(),
                            })
                            .await
                            .map_err(status_text)?;
                        if r.into_inner().status == ServingStatus::Serving as i32 {
                            Ok(())
                        } else {
                            Err("not SERVING".into())
                        }
                    }
                },
            )))
        });
    }
    for &conc in &concurrencies {
        let name = format!("baseline: pgbench select c={conc}");
        run_row(&mut rows, &name, conc, &mut || {
            run_pgbench(settings, &data, &PgbenchKind::PointSelect, conc, &tmp)
        });
    }
    let insert_name = format!("baseline: pgbench insert c={c}");
    if settings.selected(&insert_name) {
        exec(
            &mut conn,
            "DROP TABLE IF EXISTS bench_insert_baseline;
             CREATE TABLE bench_insert_baseline
                 (LIKE partner_click_events INCLUDING CONSTRAINTS INCLUDING INDEXES);
             ALTER TABLE bench_insert_baseline
                 ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY,
                 ALTER COLUMN created_at SET DEFAULT now();",
        )?;
        run_row(&mut rows, &insert_name, c, &mut || {
            run_pgbench(settings, &data, &PgbenchKind::Insert, c, &tmp)
        });
        exec(&mut conn, "DROP TABLE IF EXISTS bench_insert_baseline;")?;
    }

    // 4. Scenarios.
    let max_id = data.max_partner_id.max(1);
    run_row(&mut rows, "gRPC GetPartner", c, &mut || {
        let clients = clients.clone();
        Ok(
            runtime.block_on(closed_loop(c, warmup, duration, pid, move |task, rng| {
                let mut client = clients.partner(task);
                let request = clients.request(pb::GetPartnerRequest {
                    id: 1 + rng.below(max_id as u64) as i64,
                    business_uuid: String::new(),
                    include: Vec::new(),
                });
                async move {
                    client
                        .get_partner(request)
                        .await
                        .map(|_| ())
                        .map_err(status_text)
                }
            })),
        )
    });
    // ListPartners rows at the list concurrency, each with its own request.
    let list_partners_row =
        |rows: &mut Vec<Row>, name: &str, request: fn() -> pb::ListPartnersRequest| {
            run_row(rows, name, lc, &mut || {
                let clients = clients.clone();
                Ok(
                    runtime.block_on(closed_loop(lc, warmup, duration, pid, move |task, _rng| {
                        let mut client = clients.partner(task);
                        let request = clients.request(request());
                        async move {
                            client
                                .list_partners(request)
                                .await
                                .map(|_| ())
                                .map_err(status_text)
                        }
                    })),
                )
            })
        };
    list_partners_row(&mut rows, "gRPC ListPartners", list_partners_request);
    // Not a scenario of the issue: the directory's default list (no search, no filter, the
    // business's preferred partners first), page 1 of 25, as a client browsing it asks.
    list_partners_row(&mut rows, BROWSE_ROW, pb::ListPartnersRequest::default);
    // Not a scenario either: a list in an order the caller picks (newest first), which takes
    // the SQL path (Postgres orders and pages; the copy tells the total).
    list_partners_row(&mut rows, NEWEST_ROW, newest_request);
    // The database's own floor for the list target: the scenario's page statement (the one the
    // service runs while its search index is current) alone under pgbench at the same
    // concurrency (no includes, no service, no load generator).
    let list_floor_name = format!("floor: pgbench ListPartners c={lc}");
    run_row(&mut rows, &list_floor_name, lc, &mut || {
        let mut conn = connect(&settings.database_url)?;
        let snapshot = Snapshot::load(&mut conn).map_err(|e| format!("search index: {e}"))?;
        let sql = list_partners_statement(&mut conn, &data, &snapshot)?;
        let line = format!(
            "{};\n",
            sql.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        run_pgbench(settings, &data, &PgbenchKind::ListPage(line), lc, &tmp)
    });
    run_row(&mut rows, "gRPC ListAvailablePartners", c, &mut || {
        let clients = clients.clone();
        Ok(
            runtime.block_on(closed_loop(c, warmup, duration, pid, move |task, _rng| {
                let mut client = clients.partner(task);
                let request = clients.request(pb::ListAvailablePartnersRequest::default());
                async move {
                    client
                        .list_available_partners(request)
                        .await
                        .map(|_| ())
                        .map_err(status_text)
                }
            })),
        )
    });
    // The deep page: 40, or the last page when the data set has fewer wholesalers (smoke).
    let deep_page = ((data.wholesalers + 24) / 25).clamp(1, 40) as i32;
    let deep_name = format!("gRPC ListWholesalers page {deep_page}");
    let pages: Vec<i32> = if deep_page > 1 {
        vec![1, deep_page]
    } else {
        vec![1]
    };
    for page in pages {
        let name = format!("gRPC ListWholesalers page {page}");
        run_row(&mut rows, &name, c, &mut || {
            let clients = clients.clone();
            Ok(
                runtime.block_on(closed_loop(c, warmup, duration, pid, move |task, _rng| {
                    let mut client = clients.partner(task);
                    let request = clients.request(pb::ListWholesalersRequest {
                        page: Some(page),
                        per_page: Some(25),
                        ..Default::default()
                    });
                    async move {
                        let r = client
                            .list_wholesalers(request)
                            .await
                            .map_err(status_text)?;
                        if r.into_inner().partners.is_empty() {
                            Err(format!("page {page} is empty"))
                        } else {
                            Ok(())
                        }
                    }
                })),
            )
        });
    }
    run_row(&mut rows, "REST GetPartner", c, &mut || {
        let clients = clients.clone();
        Ok(
            runtime.block_on(closed_loop(c, warmup, duration, pid, move |_task, rng| {
                let http = clients.http.clone();
                let url = format!(
                    "{}/api/v1/partners/{}",
                    clients.http_base,
                    1 + rng.below(max_id as u64)
                );
                let auth = clients.auth_header.clone();
                async move { rest_get(&http, url, &auth).await }
            })),
        )
    });
    let list_path = rest_list_partners_path();
    run_row(&mut rows, "REST ListPartners", lc, &mut || {
        let clients = clients.clone();
        let list_path = list_path.clone();
        Ok(runtime.block_on(closed_loop(
            lc,
            warmup,
            duration,
            pid,
            move |_task, _rng| {
                let http = clients.http.clone();
                let url = format!("{}{}", clients.http_base, list_path);
                let auth = clients.auth_header.clone();
                async move { rest_get(&http, url, &auth).await }
            },
        )))
    });

    // 5. Plans of the list queries in the state the read scenarios ran in.
    let want_plans = settings.selected("plans") || settings.only.is_empty();
    let plans_path = tmp.join("load-plans.txt");
    let plans_after_path = tmp.join("load-plans-after-clicks.txt");
    let plans = |conn: &mut PgConnection, path: &Path| -> Option<Vec<String>> {
        if !want_plans {
            return None;
        }
        match collect_plans(conn, settings, &data, path, i64::from(deep_page)) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("load: plans not collected: {e}");
                None
            }
        }
    };
    let seq_scans = plans(&mut conn, &plans_path);

    // 6. The click scenario last: its counter updates change the partners table (new row
    // versions, cleared visibility-map bits), which the read scenarios should not see.
    let click_name = "gRPC CreatePartnerClickEvent";
    let mut click_check: Option<(u64, i64)> = None;
    // The database's own ceiling for the click design: the service's batch statement under
    // pgbench, no service and no load generator (its counters stay consistent: the statement
    // bumps them).
    // Then, only on request (a minute more), the same statement at other batch sizes.
    let mut batch_rows = vec![(format!("{CEILING_ROW} c={CEILING_CLIENTS}"), CEILING_BATCH)];
    if !settings.only.is_empty() {
        batch_rows
            .extend(SWEEP_BATCHES.map(|n| (format!("{SWEEP_ROW}{n} c={CEILING_CLIENTS}"), n)));
    }
    for (name, n) in batch_rows {
        run_row(&mut rows, &name, CEILING_CLIENTS, &mut || {
            run_pgbench(
                settings,
                &data,
                &PgbenchKind::ClickBatch(n),
                CEILING_CLIENTS,
                &tmp,
            )
        });
    }
    if settings.selected(click_name) {
        let max_event_before = scalar(
            &mut conn,
            "SELECT coalesce(max(id), 0) AS n FROM partner_click_events",
        )?;
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        run_row(&mut rows, click_name, c, &mut || {
            let clients = clients.clone();
            let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
            Ok(
                runtime.block_on(closed_loop(c, warmup, duration, pid, move |task, rng| {
                    let mut client = clients.partner(task);
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let event_type = if rng.unit() < 0.7 {
                        pb::EventType::Website
                    } else {
                        pb::EventType::Video
                    };
                    let request = clients.request(pb::CreatePartnerClickEventRequest {
                        id: skewed_partner(rng, max_id),
                        event_type: event_type as i32,
                        request_id: format!("load-{nonce}-{task}-{n}"),
                        business_uuid: String::new(),
                    });
                    async move {
                        client
                            .create_partner_click_event(request)
                            .await
                            .map(|_| ())
                            .map_err(status_text)
                    }
                })),
            )
        });
        // Verification: acknowledged events vs new rows, counters vs events and links.
        let new_rows = scalar(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM partner_click_events WHERE id > {max_event_before}"
            ),
        )?;
        let acked = rows
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
        let mismatches = verify_counters(&mut conn)?;
        if mismatches > 0 {
            hard_failures.push(format!(
                "{mismatches} partners with counters unequal to their events/links"
            ));
        }
        click_check = Some((acked, new_rows));
    }
    let seq_scans_after = if click_check.is_some() {
        plans(&mut conn, &plans_after_path)
    } else {
        None
    };

    // 7. Peak memory, stop.
    let hwm_kib = proc_status_kib(server.pid, "VmHWM:");
    let alive = server.exited().is_none();
    let stop_status = server.stop();
    if !alive {
        hard_failures.push(format!("the server died during the run ({stop_status})"));
    }
    drop(runtime);

    // 8. Ratios and targets.
    let find = |rows: &[Row], name: &str| -> Option<Measured> {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.measured.clone())
    };
    let select_name = |conc: usize| format!("baseline: pgbench select c={conc}");
    let health_name = |conc: usize| format!("baseline: health Check c={conc}");
    let grpc_get = find(&rows, "gRPC GetPartner");
    let grpc_list = find(&rows, "gRPC ListPartners");
    let whole_p1 = find(&rows, "gRPC ListWholesalers page 1");
    let snapshot: Vec<(String, Option<Measured>)> = rows
        .iter()
        .map(|r| (r.name.clone(), r.measured.clone()))
        .collect();
    let lookup = |name: &str| {
        snapshot
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, m)| m.clone())
    };
    for row in &mut rows {
        let Some(m) = row.measured.clone() else {
            row.pass = Some(false);
            continue;
        };
        let rss_ok = m
            .peak_rss_kib
            .is_none_or(|k| k as f64 / 1024.0 <= RSS_LIMIT_MIB);
        let rps_ratio = |base: Option<Measured>| base.map(|b| m.rps / b.rps);
        let (baseline, ratio, target, pass): (Option<String>, Option<f64>, String, Option<bool>) =
            match row.name.as_str() {
                "gRPC GetPartner" => {
                    let r = rps_ratio(lookup(&select_name(c)));
                    (
                        Some(select_name(c).trim_start_matches("baseline: ").into()),
                        r,
                        "≥0.25× tps, p99≤5ms, RSS≤150".into(),
                        all_of(&[r.map(|r| r >= 0.25), Some(m.p99() <= 5.0), Some(rss_ok)]),
                    )
                }
                "gRPC ListPartners" => (
                    Some(select_name(lc).trim_start_matches("baseline: ").into()),
                    rps_ratio(lookup(&select_name(lc))),
                    "p99≤20ms, RSS≤150".into(),
                    Some(m.p99() <= 20.0 && rss_ok),
                ),
                BROWSE_ROW | NEWEST_ROW => (
                    Some(select_name(lc).trim_start_matches("baseline: ").into()),
                    rps_ratio(lookup(&select_name(lc))),
                    "RSS≤150".into(),
                    Some(rss_ok),
                ),
                "gRPC ListAvailablePartners" | "gRPC ListWholesalers page 1" => (
                    Some(select_name(c).trim_start_matches("baseline: ").into()),
                    rps_ratio(lookup(&select_name(c))),
                    "RSS≤150".into(),
                    Some(rss_ok),
                ),
                n if n == deep_name => {
                    let r = whole_p1.as_ref().map(|p1| m.p99() / p1.p99());
                    (
                        Some("Wholesalers page 1 (p99)".into()),
                        r,
                        "p99 ≤2× page 1 p99, RSS≤150".into(),
                        all_of(&[r.map(|r| r <= 2.0), Some(rss_ok)]),
                    )
                }
                n if n == list_floor_name => {
                    let r = grpc_list.as_ref().map(|g| m.p99() / g.p99());
                    (
                        Some("gRPC ListPartners (p99)".into()),
                        r,
                        "(info: the list target's floor)".into(),
                        None,
                    )
                }
                n if click_batch_of(n).is_some() => {
                    let name = format!("baseline: pgbench insert c={c}");
                    (
                        Some(name.trim_start_matches("baseline: ").into()),
                        rps_ratio(lookup(&name)),
                        if n.starts_with(SWEEP_ROW) {
                            "(events/s; the statement at n events)".into()
                        } else {
                            "(events/s; the click target's ceiling)".into()
                        },
                        None,
                    )
                }
                "gRPC CreatePartnerClickEvent" => {
                    let name = format!("baseline: pgbench insert c={c}");
                    let r = rps_ratio(lookup(&name));
                    let consistent = click_check.is_some_and(|(a, n)| a as i64 == n)
                        && !hard_failures.iter().any(|f| f.contains("counters"));
                    (
                        Some(name.trim_start_matches("baseline: ").into()),
                        r,
                        "≥1.5× tps, counters exact, RSS≤150".into(),
                        all_of(&[r.map(|r| r >= 1.5), Some(consistent), Some(rss_ok)]),
                    )
                }
                "REST GetPartner" => {
                    let r = grpc_get.as_ref().map(|g| m.rps / g.rps);
                    (
                        Some("gRPC GetPartner".into()),
                        r,
                        "≥0.5× gRPC req/s, RSS≤150".into(),
                        all_of(&[r.map(|r| r >= 0.5), Some(rss_ok)]),
                    )
                }
                "REST ListPartners" => {
                    let r = grpc_list.as_ref().map(|g| m.rps / g.rps);
                    (
                        Some("gRPC ListPartners".into()),
                        r,
                        "RSS≤150".into(),
                        Some(rss_ok),
                    )
                }
                name if name.starts_with("baseline: health") => (None, None, String::new(), None),
                _ => (None, None, String::new(), None),
            };
        row.baseline = baseline;
        row.ratio = ratio;
        row.target = target;
        row.pass = pass;
        if m.errors > 0 {
            hard_failures.push(format!(
                "{}: {} errors ({})",
                row.name,
                m.errors,
                m.error_samples.join(" | ")
            ));
        }
    }
    for row in &rows {
        if let Some(e) = &row.failure {
            hard_failures.push(format!("{}: {e}", row.name));
        }
    }
    // Transport ratio of each gRPC/REST scenario (informational).
    let transport: Vec<String> = rows
        .iter()
        .filter(|r| r.name.starts_with("gRPC") || r.name.starts_with("REST"))
        .filter_map(|r| {
            let m = r.measured.as_ref()?;
            let h = lookup(&health_name(r.concurrency))?;
            Some(format!("{} {:.3}", r.name, m.rps / h.rps))
        })
        .collect();

    // Extra rows: index use and peak memory of the whole run.
    let seq_scans = match (seq_scans, seq_scans_after) {
        (Some(mut a), Some(b)) => {
            a.extend(b.into_iter().map(|s| format!("{s} after clicks")));
            Some(a)
        }
        (a, b) => a.or(b),
    };
    if let Some(scans) = &seq_scans {
        rows.push(Row {
            name: "list queries use an index".into(),
            concurrency: 0,
            measured: None,
            failure: None,
            baseline: None,
            ratio: None,
            target: match (scans.is_empty(), settings.smoke) {
                (true, _) => "no Seq Scan on partners".into(),
                // The planner rightly scans tables of a few pages: judged on the full data only.
                (false, true) => format!("smoke data, not judged: {}", scans.join(", ")),
                (false, false) => format!("Seq Scan or no plan: {}", scans.join(", ")),
            },
            pass: (!settings.smoke || scans.is_empty()).then_some(scans.is_empty()),
            rss_mib: None,
            cpu: None,
        });
    }
    let hwm_mib = hwm_kib.map(|k| k as f64 / 1024.0);
    rows.push(Row {
        name: "server VmHWM (whole run)".into(),
        concurrency: 0,
        measured: None,
        failure: None,
        baseline: None,
        ratio: None,
        target: "VmHWM ≤150 MiB".into(),
        pass: hwm_mib.map(|m| m <= RSS_LIMIT_MIB),
        rss_mib: hwm_mib,
        cpu: None,
    });

    print_table(&rows);
    print_cpu_table(&rows);
    if !transport.is_empty() {
        println!(
            "req/s relative to health Check at the same concurrency: {}",
            transport.join(", ")
        );
    }
    if let Some(line) = click_bound(&rows, c) {
        println!("{line}");
    }
    if let Some(line) = click_cost_fit(&rows, c) {
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
        println!("seed-bench: {s:.1} s");
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
