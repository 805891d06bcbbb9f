//! What the machine's processes cost during a row, read from `/proc`: the server's resident
//! memory (peak, sampled every 50 ms), and the CPU time of the server, of this process (with
//! pgbench, its waited-for child), of the benchmark database's postgres processes and of the whole
//! machine, split per row.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Kernel clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`: 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// A `VmRSS:`-style field of /proc/<pid>/status, in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
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
pub struct PostgresSampler {
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

    /// Starts sampling the postgres processes of `database`.
    pub fn start(database: &str) -> PostgresSampler {
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

    /// Stops sampling; the CPU ticks the processes spent since the start.
    pub fn finish(self) -> u64 {
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
pub struct CpuSnapshot {
    server: u64,
    client: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl CpuSnapshot {
    /// The counters now, with the server `server_pid`.
    pub fn take(server_pid: u32) -> CpuSnapshot {
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
pub struct CpuSplit {
    /// The server.
    pub server: f64,
    /// This process and its waited-for children (the load generator, pgbench).
    pub client: f64,
    /// The benchmark database's postgres processes.
    pub postgres: f64,
    /// Busy in other processes (other databases' backends, other programs).
    pub other: f64,
    /// Idle.
    pub idle: f64,
    /// Server CPU per call, µs.
    pub server_us_per_call: Option<f64>,
    /// CPU of this process (the load generator's clients, or pgbench) per call, µs.
    pub client_us_per_call: Option<f64>,
    /// CPU of the benchmark database's postgres processes per call, µs.
    pub postgres_us_per_call: Option<f64>,
}

/// The split of the machine's CPU between `before` and `after`, with `postgres` ticks of the
/// benchmark database's processes and `calls` calls in the row.
pub fn cpu_split(before: CpuSnapshot, after: CpuSnapshot, postgres: u64, calls: u64) -> CpuSplit {
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

/// Samples the server's VmRSS every 50 ms until stopped; returns the peak.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Option<u64>>,
}

impl RssSampler {
    /// Starts sampling the process `pid` (on the tokio runtime).
    pub fn start(pid: u32) -> RssSampler {
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

    /// Stops sampling; the peak, KiB.
    pub async fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.ok().flatten()
    }
}
