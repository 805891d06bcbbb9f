//! A private Postgres cluster for tests that stop, restart or crash their database: `initdb` into a
//! temporary directory, served on a free port of 127.0.0.1 with its socket inside that directory,
//! so the shared server every other test uses is never touched. Stopped and removed on drop.
//!
//! The binaries come from Debian's server package (`/usr/lib/postgresql/<version>/bin`, the highest
//! version present). Postgres refuses to run as root, so when the tests run as root every `initdb`
//! and `pg_ctl` runs as the `postgres` OS user (`runuser -u postgres --`) in a directory it owns.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::support::free_ports;

/// How long a start (crash recovery included) or a stop may take.
const PG_CTL_TIMEOUT_S: u32 = 30;

/// A Postgres cluster of the test's own.
pub struct PgCluster {
    bin: PathBuf,
    root: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PgCluster {
    /// Creates (`initdb`, trust authentication, user `postgres`) and starts a cluster. Durability
    /// settings stay at their safe values: `fsync` and `synchronous_commit` on.
    pub fn start() -> PgCluster {
        let bin = bin_dir();
        let as_postgres = running_as_root();
        let root = std::env::temp_dir().join(format!("partners-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&root).expect("create the cluster's directory");
        let cluster = PgCluster {
            data: root.join("data"),
            port: free_ports(1)[0],
            bin,
            root,
            as_postgres,
        };
        if as_postgres {
            run_checked(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&cluster.root),
                "chown the cluster's directory to postgres",
            );
        }
        cluster.pg(
            "initdb",
            &[
                "-D",
                path_str(&cluster.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--no-locale",
                "-E",
                "UTF8",
            ],
        );
        let settings = format!(
            "\n# partners tests (tests/api/pg_cluster.rs)\n\
             listen_addresses = '127.0.0.1'\n\
             port = {port}\n\
             unix_socket_directories = '{socket}'\n\
             fsync = on\n\
             synchronous_commit = on\n\
             full_page_writes = on\n\
             max_connections = 60\n\
             shared_buffers = 32MB\n\
             logging_collector = off\n",
            port = cluster.port,
            socket = path_str(&cluster.root),
        );
        let conf = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
        text.push_str(&settings);
        std::fs::write(&conf, text).expect("write postgresql.conf");
        cluster.start_server();
        cluster
    }

    /// Server URL without a database, as `support::server_url` gives for the shared server.
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Starts the stopped (or killed) cluster and waits until it accepts connections; after a
    /// kill that includes crash recovery. Returns how long it took.
    pub fn start_server(&self) -> Duration {
        let started = Instant::now();
        // After a SIGKILL of the postmaster its backends exit on their own once they notice; a
        // start while one still holds the shared memory fails, so try again until the deadline.
        let deadline = started + Duration::from_secs(u64::from(PG_CTL_TIMEOUT_S));
        loop {
            let log = self.root.join("postgres.log");
            let timeout = PG_CTL_TIMEOUT_S.to_string();
            let output = self.pg_output(
                "pg_ctl",
                &[
                    "-D",
                    path_str(&self.data),
                    "-l",
                    path_str(&log),
                    "-w",
                    "-t",
                    &timeout,
                    "-s",
                    "start",
                ],
            );
            if output.status.success() {
                return started.elapsed();
            }
            assert!(
                Instant::now() < deadline,
                "pg_ctl start failed: {}\n{}\nserver log:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Fast shutdown (`pg_ctl -m fast`: sessions are ended, a checkpoint is written); returns how
    /// long it took.
    pub fn stop_fast(&self) -> Duration {
        let started = Instant::now();
        self.pg_ctl_stop("fast");
        started.elapsed()
    }

    /// SIGKILL to the postmaster (a crash: no checkpoint, its backends orphaned until they
    /// notice); returns once the postmaster is gone.
    pub fn kill_postmaster(&self) {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .expect("postmaster.pid of a running cluster");
        let pid: u32 = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("postmaster pid");
        run_checked(
            Command::new("kill").arg("-KILL").arg(pid.to_string()),
            "kill -9 the postmaster",
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while process_alive(pid) {
            assert!(
                Instant::now() < deadline,
                "postmaster {pid} survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn pg_ctl_stop(&self, mode: &str) {
        let timeout = PG_CTL_TIMEOUT_S.to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data),
                "-m",
                mode,
                "-w",
                "-t",
                &timeout,
                "-s",
                "stop",
            ],
        );
    }

    /// Runs one of the cluster's binaries (as `postgres` when we are root); panics on failure.
    fn pg(&self, program: &str, args: &[&str]) {
        let output = self.pg_output(program, args);
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_output(&self, program: &str, args: &[&str]) -> std::process::Output {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .current_dir(&self.root)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: the data is thrown away next.
        if self.data.join("postmaster.pid").exists() {
            let _ = self.pg_output(
                "pg_ctl",
                &["-D", path_str(&self.data), "-m", "immediate", "-w", "stop"],
            );
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The `bin` directory of the highest Postgres version installed by Debian's server package.
fn bin_dir() -> PathBuf {
    let hint = "Postgres server binaries not found in /usr/lib/postgresql/<version>/bin: install \
                them with `apt-get install postgresql` (the tests start a private cluster with \
                initdb and pg_ctl)";
    let versions = std::fs::read_dir("/usr/lib/postgresql").unwrap_or_else(|_| panic!("{hint}"));
    versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| panic!("{hint}"))
}

fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("run `id -u`");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Whether `pid` is a live process (a zombie left for a reaper counts as gone).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
    }
}

fn run_checked(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}
