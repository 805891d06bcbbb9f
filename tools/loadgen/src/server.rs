//! The server under test: which `partners` binary (`--server-bin`, else the workspace's, built
//! first), its child process on two free loopback ports with its log in a file, readiness
//! (`grpc.health.v1` SERVING), and its stop (SIGTERM, drain, exit status).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Endpoint;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::settings::{BenchResult, profile_dir};

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

/// The `partners serve` child process; stopped with SIGTERM on drop.
pub struct Server {
    child: Option<Child>,
    /// Its process id.
    pub pid: u32,
    /// Its gRPC address, `127.0.0.1:port`.
    pub grpc_addr: String,
    /// Its REST address, `127.0.0.1:port`.
    pub http_addr: String,
    /// Its log (stdout and stderr).
    pub log: PathBuf,
}

impl Server {
    /// Starts `binary serve --no-migrate` on `database_url` and two free ports, its log in
    /// `out_dir/load-server.log`. The environment reaches it (`RUST_LOG`, `PARTNERS_*`).
    pub fn start(binary: &Path, database_url: &str, out_dir: &Path) -> BenchResult<Server> {
        Server::start_with(binary, database_url, out_dir, "load-server.log", &[])
    }

    /// [`Server::start`] with its log in `out_dir/log_name` and `extra_args` after the others
    /// (a second process on the same database, e.g. without its copy).
    pub fn start_with(
        binary: &Path,
        database_url: &str,
        out_dir: &Path,
        log_name: &str,
        extra_args: &[&str],
    ) -> BenchResult<Server> {
        let (grpc_port, http_port) = free_ports()?;
        let grpc_addr = format!("127.0.0.1:{grpc_port}");
        let http_addr = format!("127.0.0.1:{http_port}");
        let log = out_dir.join(log_name);
        let file = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err_file = file
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let child = Command::new(binary)
            .args([
                "serve",
                "--no-migrate",
                "--grpc-addr",
                &grpc_addr,
                "--http-addr",
                &http_addr,
            ])
            .args(extra_args)
            .env("DATABASE_URL", database_url)
            // Several servers may run at once: none takes the default metrics port.
            .env("PARTNERS_METRICS_ADDR", "off")
            // No balancer to wait for: stop at once (an explicit setting wins).
            .env(
                "PARTNERS_SHUTDOWN_DELAY_MS",
                std::env::var("PARTNERS_SHUTDOWN_DELAY_MS").unwrap_or_else(|_| "0".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err_file))
            .spawn()
            .map_err(|e| format!("cannot start {} serve: {e}", binary.display()))?;
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

    /// The state of the server's copy once it is loaded, waited for at most `limit` after
    /// SERVING (the server listens once its copy is loaded or after its DB checkout timeout,
    /// whichever comes first, so a large directory's copy may still be loading), as its log
    /// tells: the first "search index loaded" line, or a warning that the load failed or stepped
    /// aside (a failed first load is retried only when a list asks for the copy).
    pub fn wait_copy_loaded(&mut self, limit: Duration) -> CopyState {
        if std::env::var("PARTNERS_SEARCH_INDEX_MAX_PARTNERS").is_ok_and(|v| v.trim() == "0") {
            return CopyState::Off;
        }
        let deadline = Instant::now() + limit;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(load) = text.lines().find_map(CopyLoad::parse) {
                return CopyState::Loaded(load);
            }
            let warning = text.lines().find(|l| {
                l.contains("search index: more partners than it may hold")
                    || l.contains("search index: load failed")
            });
            if let Some(line) = warning {
                // The message without the timestamp and level.
                let from = line.find("search index:").unwrap_or(0);
                return CopyState::Failed(line[from..].to_owned());
            }
            if !text.contains("listening on") {
                // Its "listening" lines are missing too: the log is filtered above info.
                return CopyState::Unknown("no info lines in the server log (RUST_LOG?)".into());
            }
            if self.exited().is_some() {
                return CopyState::Unknown("the server exited".into());
            }
            if Instant::now() > deadline {
                return CopyState::Unknown(format!(
                    "no \"search index loaded\" line after {} s",
                    limit.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status, when the server has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits until `grpc.health.v1.Health/Check` answers SERVING (at most 60 s).
    pub async fn wait_serving(&mut self) -> BenchResult<()> {
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
    pub fn stop(&mut self) -> String {
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

/// The state of a server's copy (its search index) after start, from its log.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyState {
    /// Loaded, with these figures.
    Loaded(CopyLoad),
    /// Off (`PARTNERS_SEARCH_INDEX_MAX_PARTNERS=0`): every list by SQL, as asked.
    Off,
    /// Not loaded: the server's warning (the load failed, or the directory is beyond the limit).
    Failed(String),
    /// Not known from the log, and why.
    Unknown(String),
}

impl std::fmt::Display for CopyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyState::Loaded(load) => write!(f, "{load}"),
            CopyState::Off => f.write_str("off"),
            CopyState::Failed(why) => write!(f, "NOT LOADED: {why}"),
            CopyState::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}

/// The server's load of its copy, as its log line "search index loaded" tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopyLoad {
    /// Partners in the copy.
    pub partners: u64,
    /// Its heap, MiB.
    pub mib: f64,
    /// The load's time, ms.
    pub ms: u64,
}

impl CopyLoad {
    /// The load of a "search index loaded" line: text (`partners=100000 mib="14.3" ms=512`) or
    /// JSON (`"partners":100000,"mib":"14.3","ms":512`).
    pub fn parse(line: &str) -> Option<CopyLoad> {
        if !line.contains("search index loaded") {
            return None;
        }
        let field = |key: &str| -> Option<&str> {
            [format!("{key}="), format!("\"{key}\":")]
                .iter()
                .find_map(|prefix| {
                    let at = line
                        .match_indices(prefix.as_str())
                        // A whole key: `ms=` must not match inside `items=`.
                        .find(|(i, _)| *i == 0 || !line.as_bytes()[i - 1].is_ascii_alphanumeric())?
                        .0;
                    let rest = line[at + prefix.len()..].trim_start_matches('"');
                    let end = rest
                        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                        .unwrap_or(rest.len());
                    Some(&rest[..end])
                })
                .filter(|v| !v.is_empty())
        };
        Some(CopyLoad {
            partners: field("partners")?.parse().ok()?,
            mib: field("mib")?.parse().ok()?,
            ms: field("ms")?.parse().ok()?,
        })
    }

    /// Heap bytes per partner.
    pub fn bytes_per_partner(&self) -> f64 {
        self.mib * 1_048_576.0 / self.partners.max(1) as f64
    }
}

impl std::fmt::Display for CopyLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} partners, {:.1} MiB ({:.0} bytes per partner), loaded in {:.2} s",
            self.partners,
            self.mib,
            self.bytes_per_partner(),
            self.ms as f64 / 1000.0
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server binary of a run: `explicit` as given (`--server-bin`), else the workspace's
/// `partners` binary, built first by cargo in this binary's target directory and profile (so the
/// server measured is the one of the sources; a no-op when it is up to date).
pub fn server_binary(explicit: Option<&Path>) -> BenchResult<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            return Err(format!("--server-bin {}: no such file", path.display()));
        }
        return Ok(path.to_path_buf());
    }
    let dir = profile_dir().ok_or("cannot tell where this binary is (std::env::current_exe)")?;
    let built = dir.join(format!("partners{}", std::env::consts::EXE_SUFFIX));
    let profile = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map(cargo_profile)
        .ok_or_else(|| format!("{}: not a cargo profile directory", dir.display()))?;
    let hint = format!(
        "build it with `cargo build -p partners --profile {profile}` and run again, or name a          server binary with --server-bin PATH"
    );
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let target_dir = dir.parent().ok_or_else(|| hint.clone())?;
    if !manifest.is_file() {
        return Err(format!(
            "the workspace of this build ({}) is gone; {hint}",
            manifest.display()
        ));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("load: building the server: cargo build -p partners --profile {profile} …");
    // Selecting loadgen too resolves the features as for loadgen's own build, so the server's
    // dependencies are those already built for it (only the `partners` binary is linked).
    let status = Command::new(&cargo)
        .args(["build", "-p", "loadgen", "-p", "partners"])
        .args(["--bin", "partners", "--profile", &profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}; {hint}", cargo.to_string_lossy()))?;
    if !status.success() {
        return Err(format!(
            "cargo build of the server failed ({status}); {hint}"
        ));
    }
    if !built.is_file() {
        return Err(format!("cargo built no {}; {hint}", built.display()));
    }
    Ok(built)
}

/// The cargo profile that builds into the profile directory `dir_name` (`debug` is `dev`'s).
fn cargo_profile(dir_name: &str) -> String {
    match dir_name {
        "debug" => "dev".to_owned(),
        name => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_is_told_by_the_directory() {
        assert_eq!(cargo_profile("debug"), "dev");
        assert_eq!(cargo_profile("release"), "release");
        assert_eq!(cargo_profile("profiling"), "profiling");
    }

    #[test]
    fn the_copy_load_is_read_from_the_log_line() {
        let text = "2025-01-01T00:00:00.000Z  INFO partners::serving::lists::copy: search index \
                    loaded partners=100000 version=7 mib=\"14.9\" ms=512";
        let load = CopyLoad::parse(text).expect("a load");
        assert_eq!(
            load,
            CopyLoad {
                partners: 100_000,
                mib: 14.9,
                ms: 512
            }
        );
        assert!((load.bytes_per_partner() - 156.2).abs() < 0.1);
        let json = r#"{"timestamp":"x","level":"INFO","fields":{"message":"search index loaded","partners":1000000,"version":3,"mib":"162.0","ms":3400}}"#;
        assert_eq!(CopyLoad::parse(json).map(|l| l.ms), Some(3400));
        assert_eq!(CopyLoad::parse("search index: load failed"), None);
        assert_eq!(CopyLoad::parse("search index loaded partners=5"), None);
    }

    #[test]
    fn a_missing_server_binary_is_named() {
        let err = server_binary(Some(Path::new("/nonexistent/partners"))).unwrap_err();
        assert!(err.contains("--server-bin /nonexistent/partners"), "{err}");
    }
}
