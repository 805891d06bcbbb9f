//! `loadgen events`: the change events' figures (issue 21) on a small database of its own.
//!
//! 1. Watch latency: `--watchers` WatchPartnerEvents streams on one server process (over
//!    connections of 50 streams each) while partners are renamed at `--rename-rate`; each
//!    receipt's latency is its wall clock minus the event's `occurred_at` (the database's clock
//!    when the change row was written, just before the commit; same host), so it covers the
//!    commit, the notification, the tail reader's read and the stream. Also the renames'
//!    UpdatePartner latency meanwhile.
//! 2. Write cost: UpdatePartner latency, one caller, with the change-log trigger of migration 13
//!    (no partner snapshot) and of migration 14 (the snapshot), installed in turn in the database
//!    (`CREATE OR REPLACE FUNCTION` from the migrations' own text), in alternating pairs (ABBA)
//!    so that drift of the shared machine falls on both.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use partners::grpc::pb;
use partners::grpc::pb::partner_admin_service_client::PartnerAdminServiceClient;
use partners::grpc::pb::partner_event_service_client::PartnerEventServiceClient;
use partners::grpc::pb::watch_partner_events_response::Kind;
use tonic::Request;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::closed_loop::{ms, new_histogram};
use crate::database::{connect, exec, scalar};
use crate::scenarios::rename_request;
use crate::server::{Server, server_binary};
use crate::settings::{BenchResult, default_out_dir};

/// The migration whose trigger writes the partner snapshot; its `down.sql` holds the trigger of
/// migration 13's log (no snapshot).
const UP: &str =
    include_str!("../../../migrations/2026-12-06-000014_partner_event_snapshots/up.sql");
const DOWN: &str =
    include_str!("../../../migrations/2026-12-06-000014_partner_event_snapshots/down.sql");

/// Partners renamed in turn.
const PARTNERS: usize = 100;
/// Streams per HTTP/2 connection.
const STREAMS_PER_CONNECTION: usize = 50;

/// Options of `loadgen events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Postgres database of the run (dropped and created again).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1/partners_events_bench"
    )]
    pub database_url: String,
    /// Concurrent watch streams on the server process.
    #[arg(long, default_value_t = 200)]
    pub watchers: usize,
    /// Renames made while they watch.
    #[arg(long, default_value_t = 200)]
    pub renames: usize,
    /// Renames per second while they watch.
    #[arg(long, default_value_t = 20.0)]
    pub rename_rate: f64,
    /// Pairs (ABBA rounds) of the write-cost comparison.
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// UpdatePartner calls per half of a round.
    #[arg(long, default_value_t = 500)]
    pub writes: usize,
    /// The server binary [default: the workspace's, built first].
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
}

/// The `CREATE OR REPLACE FUNCTION partner_changes_from_partners` statement of `sql`.
fn trigger_function(sql: &str) -> BenchResult<&str> {
    let start = sql
        .find("CREATE OR REPLACE FUNCTION partner_changes_from_partners")
        .ok_or("the migration has no partner_changes_from_partners")?;
    let body = &sql[start..];
    let first = body.find("$$").ok_or("no function body")?;
    let end = first + 2 + body[first + 2..].find("$$;").ok_or("no end of the body")? + 3;
    Ok(&body[..end])
}

fn with_key<T>(message: T, auth: &MetadataValue<Ascii>) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", auth.clone());
    request
}

fn summary(h: &Histogram<u64>) -> String {
    format!(
        "p50 {:.2} ms  p95 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (n={})",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.len()
    )
}

/// Runs both measurements and prints their figures.
pub fn run(args: &EventsArgs) -> BenchResult<std::process::ExitCode> {
    let binary = server_binary(args.server_bin.as_deref())?;
    let (base, name) = args
        .database_url
        .rsplit_once('/')
        .ok_or("--database-url must name a database")?;
    let mut admin = connect(&format!("{base}/postgres"))?;
    exec(
        &mut admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    command(&binary, &args.database_url, &["migrate"])?;
    let key = command(
        &binary,
        &args.database_url,
        &["keys", "create", "--service", "events-bench"],
    )?;
    let auth: MetadataValue<Ascii> = format!("Bearer {}", key.trim())
        .parse()
        .map_err(|e| format!("key: {e}"))?;
    let out = default_out_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut server =
        Server::start_with(&binary, &args.database_url, &out, "events-server.log", &[])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let result = runtime.block_on(async {
        server.wait_serving().await?;
        measure(args, &server.grpc_addr, &auth).await
    });
    let stopped = server.stop();
    result?;
    println!("server: {stopped}");
    Ok(std::process::ExitCode::SUCCESS)
}

/// Runs `binary args` on `database_url`; its stdout.
fn command(binary: &Path, database_url: &str, args: &[&str]) -> BenchResult<String> {
    let out = std::process::Command::new(binary)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {}: {}",
            binary.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn channel(addr: &str) -> BenchResult<Channel> {
    Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("{addr}: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("connect {addr}: {e}"))
}

async fn measure(args: &EventsArgs, addr: &str, auth: &MetadataValue<Ascii>) -> BenchResult<()> {
    let writer = channel(addr).await?;
    let mut admin = PartnerAdminServiceClient::new(writer.clone());
    let mut ids = Vec::new();
    for i in 0..PARTNERS {
        let partner = pb::Partner {
            name: format!("Event Bench {i:03}"),
            description: "A supplier of the benchmark, with a description of a few hundred \
                          characters as the directory's partners have: what it sells, where it \
                          delivers, how businesses integrate with it, and what its terms are. "
                .repeat(2),
            email: format!("partner{i}@example.com"),
            website_url: format!("https://partner{i}.example.com"),
            categories: vec!["pos".into(), "accounting".into()],
            country_codes: vec!["DE".into(), "AT".into()],
            tags: vec!["bench".into(), "events".into()],
            active: true,
            status: pb::PartnerStatus::Available as i32,
            metadata: Some(partners::grpc::convert::json_to_struct(
                &serde_json_value_metadata(i),
            )),
            ..Default::default()
        };
        let created = admin
            .create_partner(with_key(
                pb::CreatePartnerRequest {
                    partner: Some(partner),
                    ..Default::default()
                },
                auth,
            ))
            .await
            .map_err(|e| format!("create partner: {e}"))?
            .into_inner();
        ids.push(created.id);
    }

    // 1. Watch latency.
    let mut db = connect(&args.database_url)?;
    let after = scalar(
        &mut db,
        "SELECT coalesce(max(sequence), 0) AS n FROM partner_changes",
    )?;
    let connections = args.watchers.div_ceil(STREAMS_PER_CONNECTION).max(1);
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(channel(addr).await?);
    }
    let mut watchers = Vec::new();
    for i in 0..args.watchers {
        let mut client = PartnerEventServiceClient::new(channels[i % connections].clone());
        let mut stream = client
            .watch_partner_events(with_key(
                pb::WatchPartnerEventsRequest {
                    after_sequence: after,
                    ..Default::default()
                },
                auth,
            ))
            .await
            .map_err(|e| format!("watch: {e}"))?
            .into_inner();
        let expected = args.renames;
        watchers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(expected);
            while latencies.len() < expected {
                let message =
                    match tokio::time::timeout(Duration::from_secs(10), stream.message()).await {
                        Ok(Ok(Some(message))) => message,
                        _ => break,
                    };
                if let Some(Kind::Event(event)) = message.kind {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default();
                    let at = event.occurred_at.unwrap_or_default();
                    let occurred = Duration::new(at.seconds.max(0) as u64, at.nanos.max(0) as u32);
                    latencies.push(now.saturating_sub(occurred).as_micros() as u64);
                }
            }
            latencies
        }));
    }
    // Every stream has done its first read before the renames start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let interval = Duration::from_secs_f64(1.0 / args.rename_rate.max(0.1));
    let mut renames = new_histogram();
    let mut next = Instant::now();
    for i in 0..args.renames {
        next += interval;
        tokio::time::sleep_until(next.into()).await;
        let id = ids[i % ids.len()];
        let started = Instant::now();
        admin
            .update_partner(with_key(
                rename_request(id, &format!("Event Bench {i:05} watched")),
                auth,
            ))
            .await
            .map_err(|e| format!("rename: {e}"))?;
        renames
            .record(started.elapsed().as_micros().max(1) as u64)
            .ok();
    }
    let mut receipts = new_histogram();
    let mut short = 0;
    for watcher in watchers {
        let latencies = watcher.await.map_err(|e| format!("watcher: {e}"))?;
        short += args.renames - latencies.len();
        for us in latencies {
            receipts.record(us.max(1)).ok();
        }
    }
    drop(channels);
    println!(
        "watch latency, commit to receipt, {} watchers x {} renames at {}/s: {}{}",
        args.watchers,
        args.renames,
        args.rename_rate,
        summary(&receipts),
        if short > 0 {
            format!("  MISSING {short} receipts")
        } else {
            String::new()
        }
    );
    println!(
        "UpdatePartner meanwhile (one caller, {}/s): {}",
        args.rename_rate,
        summary(&renames)
    );

    // 2. Write cost: the trigger of migration 13 (A) and of migration 14 (B), ABBA.
    let without = trigger_function(DOWN)?;
    let with = trigger_function(UP)?;
    let mut totals = [new_histogram(), new_histogram()];
    let mut n = 0usize;
    for round in 0..args.rounds {
        let order: [usize; 2] = if round.is_multiple_of(2) {
            [0, 1]
        } else {
            [1, 0]
        };
        let mut round_figures = [String::new(), String::new()];
        for variant in order {
            exec(&mut db, if variant == 0 { without } else { with })?;
            let mut h = new_histogram();
            for _ in 0..args.writes {
                let id = ids[n % ids.len()];
                n += 1;
                let started = Instant::now();
                admin
                    .update_partner(with_key(
                        rename_request(id, &format!("Event Bench {n:06}")),
                        auth,
                    ))
                    .await
                    .map_err(|e| format!("update: {e}"))?;
                h.record(started.elapsed().as_micros().max(1) as u64).ok();
            }
            round_figures[variant] = format!(
                "p50 {:.3} p99 {:.3}",
                ms(h.value_at_quantile(0.5)),
                ms(h.value_at_quantile(0.99))
            );
            totals[variant].add(&h).ok();
        }
        println!(
            "UpdatePartner round {}: without snapshot {} ms | with snapshot {} ms",
            round + 1,
            round_figures[0],
            round_figures[1]
        );
    }
    exec(&mut db, with)?;
    println!(
        "UpdatePartner without the snapshot (migration 13's trigger): {}",
        summary(&totals[0])
    );
    println!(
        "UpdatePartner with the snapshot (migration 14's trigger):    {}",
        summary(&totals[1])
    );
    let rows = scalar(
        &mut db,
        "SELECT avg(pg_column_size(partner))::bigint AS n FROM partner_changes WHERE partner IS NOT NULL",
    )?;
    println!("snapshot size: {rows} bytes per partner change (avg, TOAST-compressed size)");
    Ok(())
}

/// A small metadata object, as partners carry.
fn serde_json_value_metadata(i: usize) -> serde_json::Value {
    serde_json::json!({"tier": if i.is_multiple_of(2) { "gold" } else { "silver" }, "seats": i, "region": "eu-central"})
}
