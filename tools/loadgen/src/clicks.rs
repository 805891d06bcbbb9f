//! `loadgen clicks`: the click analytics' scale rows (issue 23) on a loaded database (`loadgen
//! seed --clicks N`, in a database of its own per size).
//!
//! 1. Sizes: the click events' partitions (heap and indexes) and the hourly rollups. Then
//!    `VACUUM (ANALYZE)` of the partners and the rollups (as `run --skip-seed`) and the read
//!    rows' tables read into the page cache (`pg_prewarm`).
//! 2. Reads first, on the data as loaded, at `--read-concurrency`, each with the health Check's
//!    p99 at the same concurrency as its baseline, over the last 30 whole days (UTC):
//!    GetPartnerClickStats by day of skewed partners and ListTopPartnersByClicks (page 1 of 25)
//!    with the user key (business 1's clicks), and ListTopPartnersByClicks over every business
//!    with the service key.
//! 3. `--pairs` rounds of ingest rows, each against the one-row-insert baseline of the same round
//!    (pgbench, one INSERT per commit into a copy of the events table, same indexes):
//!    CreatePartnerClickEvent one event per call and BatchCreatePartnerClickEvents with `--batch`
//!    events per call, both from a lean HTTP/2 driver (the `h2` crate on one thread, bodies
//!    encoded before the row: partners skewed as in the load generator's click scenario, 70%
//!    website, no `request_id`), and the single call from h2load (one body: one partner) for the
//!    driver's CPU per call beside h2load's. Every row prints its CPU per call: server, driver,
//!    Postgres. The calls carry the key of a user of the last business, so that their events
//!    (all today) stay out of later runs' reads.
//! 4. The exactness check: acknowledged events (the drivers' successful calls, h2load's 2xx
//!    answers) = the new event rows = the counters' growth of every partner = the rollups' growth.
//! 5. The oldest partition dropped through the service's own upkeep
//!    (`model::click_partition::maintain`, with a `now` and retention that expire that month
//!    alone) and its keys pruned: the time of each (skipped with `--keep-partitions`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{Months, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use partners::grpc::pb;
use partners::grpc::pb::partner_service_client::PartnerServiceClient;
use prost::Message;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::closed_loop::{Measured, XorShift, closed_loop, ms};
use crate::database::{DataSet, connect, exec, keys_for_loaded_data, scalar};
use crate::pgbench::{INSERT_BASELINE_TABLE, PgbenchKind, Timing, run_pgbench_on};
use crate::sampling::{CpuSnapshot, CpuSplit, PostgresSampler, cpu_split};
use crate::scenarios::{Clients, skewed_partner, status_text};
use crate::server::{Server, server_binary};
use crate::settings::{BenchResult, default_out_dir};

const CREATE_PATH: &str = "/partners.v1.PartnerService/CreatePartnerClickEvent";
const BATCH_PATH: &str = "/partners.v1.PartnerService/BatchCreatePartnerClickEvents";
/// Distinct encoded bodies a driver cycles through.
const BODIES: usize = 4096;

/// Options of `loadgen clicks`.
#[derive(Debug, clap::Args)]
pub struct ClicksArgs {
    /// Postgres database loaded by `loadgen seed` (its oldest click partition is dropped at the
    /// end unless --keep-partitions).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1/partners_bench")]
    pub database_url: String,
    /// Measured seconds of each row.
    #[arg(long, default_value_t = 6)]
    pub duration_secs: u64,
    /// Unmeasured seconds before each gRPC row.
    #[arg(long, default_value_t = 1)]
    pub warmup_secs: u64,
    /// Callers (HTTP/2 streams) of the single-event rows and pgbench clients of the baseline.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Callers of the batch row.
    #[arg(long, default_value_t = 8)]
    pub batch_concurrency: usize,
    /// Events per BatchCreatePartnerClickEvents call (1..1000).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Callers of the read rows.
    #[arg(long, default_value_t = 8)]
    pub read_concurrency: usize,
    /// HTTP/2 connections of the drivers (h2load: `-c`).
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Rounds of the ingest rows (each with its own baseline).
    #[arg(long, default_value_t = 2)]
    pub pairs: usize,
    /// Do not drop the oldest partition at the end.
    #[arg(long)]
    pub keep_partitions: bool,
    /// The server binary [default: the workspace's, built first].
    #[arg(long, value_name = "PATH")]
    pub server_bin: Option<PathBuf>,
}

/// One printed row.
struct Row {
    name: String,
    /// Events per second.
    rate: f64,
    /// Events per call.
    per_call: usize,
    /// Rate / the round's baseline (ingest) or p99 / the baseline's p99 (reads).
    ratio: Option<(f64, &'static str)>,
    p50: Option<f64>,
    p99: Option<f64>,
    cpu: Option<CpuSplit>,
    errors: u64,
    note: String,
}

fn print_row(r: &Row) {
    let lat = match (r.p50, r.p99) {
        (Some(a), Some(b)) => format!("p50 {a:.2} ms  p99 {b:.2} ms"),
        _ => "-".into(),
    };
    let ratio = r
        .ratio
        .map(|(v, what)| format!("{v:.3} × {what}"))
        .unwrap_or_else(|| "-".into());
    let cpu = r
        .cpu
        .map(|c| {
            let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
            format!(
                "µs/call server {} driver {} postgres {}; machine: server {:.0}% driver {:.0}% postgres {:.0}% other {:.0}% idle {:.0}%",
                f(c.server_us_per_call),
                f(c.client_us_per_call),
                f(c.postgres_us_per_call),
                c.server,
                c.client,
                c.postgres,
                c.other,
                c.idle
            )
        })
        .unwrap_or_default();
    let unit = if r.per_call > 1 {
        format!("events/s ({} per call)", r.per_call)
    } else {
        "/s".into()
    };
    println!(
        "{:<48} {:>10.1} {unit:<22} {ratio:<28} {lat:<30} errors {}  {cpu}{}",
        r.name,
        r.rate,
        r.errors,
        if r.note.is_empty() {
            String::new()
        } else {
            format!("  [{}]", r.note)
        }
    );
}

/// The gRPC frame of `message` (uncompressed).
fn grpc_frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u8(0);
    out.put_u32(body.len() as u32);
    out.extend_from_slice(&body);
    out.freeze()
}

fn event_type(rng: &mut XorShift) -> i32 {
    if rng.unit() < 0.7 {
        pb::EventType::Website as i32
    } else {
        pb::EventType::Video as i32
    }
}

/// Bodies of single clicks as the click scenario sends them (without `request_id`).
fn single_bodies(max_id: i64, seed: u64) -> Vec<Bytes> {
    let mut rng = XorShift::new(seed);
    (0..BODIES)
        .map(|_| {
            let partner = skewed_partner(&mut rng, max_id);
            grpc_frame(&pb::CreatePartnerClickEventRequest {
                id: partner,
                event_type: event_type(&mut rng),
                request_id: String::new(),
                business_uuid: String::new(),
            })
        })
        .collect()
}

/// Bodies of batches of `n` such clicks.
fn batch_bodies(max_id: i64, n: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = XorShift::new(seed);
    (0..BODIES / 16)
        .map(|_| {
            let events = (0..n)
                .map(|_| pb::ClickEventEntry {
                    partner_id: skewed_partner(&mut rng, max_id),
                    event_type: event_type(&mut rng),
                    ..Default::default()
                })
                .collect();
            grpc_frame(&pb::BatchCreatePartnerClickEventsRequest { events })
        })
        .collect()
}

/// A lean gRPC client: HTTP/2 connections of the `h2` crate, pre-encoded bodies, answers read
/// to their trailers (the status checked; a batch's answer decoded to check every result).
#[derive(Clone)]
struct Lean {
    connections: Vec<h2::client::SendRequest<Bytes>>,
    create: http::Uri,
    batch: http::Uri,
    auth: http::HeaderValue,
}

impl Lean {
    async fn connect(addr: &str, n: usize, key: &str) -> BenchResult<Lean> {
        let mut connections = Vec::new();
        for _ in 0..n.max(1) {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect {addr}: {e}"))?;
            tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
            let (send, conn) = h2::client::Builder::new()
                .initial_window_size(1 << 20)
                .initial_connection_window_size(1 << 24)
                .handshake(tcp)
                .await
                .map_err(|e| format!("h2 handshake {addr}: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            connections.push(send);
        }
        let uri = |path: &str| {
            format!("http://{addr}{path}")
                .parse::<http::Uri>()
                .map_err(|e| format!("uri: {e}"))
        };
        Ok(Lean {
            connections,
            create: uri(CREATE_PATH)?,
            batch: uri(BATCH_PATH)?,
            auth: format!("Bearer {key}")
                .parse()
                .map_err(|e| format!("key: {e}"))?,
        })
    }

    /// One unary call (CreatePartnerClickEvent, or the batch) on connection `task mod n`; the
    /// answer's message bytes.
    async fn call(&self, task: usize, batch: bool, body: Bytes) -> Result<Bytes, String> {
        let send = self.connections[task % self.connections.len()].clone();
        let mut send = send.ready().await.map_err(|e| format!("h2 ready: {e}"))?;
        let request = http::Request::builder()
            .method("POST")
            .uri(if batch { &self.batch } else { &self.create }.clone())
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", self.auth.clone())
            .body(())
            .map_err(|e| format!("request: {e}"))?;
        let (response, mut stream) = send
            .send_request(request, false)
            .map_err(|e| format!("send: {e}"))?;
        stream
            .send_data(body, true)
            .map_err(|e| format!("send body: {e}"))?;
        let response = response.await.map_err(|e| format!("answer: {e}"))?;
        let (parts, mut recv) = response.into_parts();
        let status_of = |h: &http::HeaderMap| {
            h.get("grpc-status")
                .map(|v| v.to_str().unwrap_or("?").to_owned())
        };
        if let Some(status) = status_of(&parts.headers).filter(|s| s != "0") {
            return Err(format!("grpc-status {status}"));
        }
        let mut data = BytesMut::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(|e| format!("body: {e}"))?;
            let _ = recv.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = recv
            .trailers()
            .await
            .map_err(|e| format!("trailers: {e}"))?;
        let status = trailers
            .as_ref()
            .and_then(status_of)
            .or_else(|| status_of(&parts.headers));
        match status.as_deref() {
            Some("0") if data.len() >= 5 => Ok(data.freeze().slice(5..)),
            Some("0") => Err("answer without a message".into()),
            other => Err(format!("grpc-status {other:?}")),
        }
    }
}

/// What a row's CPU and closed loop measured.
struct Timed {
    measured: Measured,
    cpu: CpuSplit,
}

/// Runs `f` with the CPU split of the server, this process (and its waited children) and the
/// database's backends taken around it; `calls` gives the calls made (for the per-call figures).
fn timed(
    server_pid: u32,
    database: &str,
    f: impl FnOnce() -> BenchResult<Measured>,
    calls: impl Fn(&Measured) -> u64,
) -> BenchResult<Timed> {
    let before = CpuSnapshot::take(server_pid);
    let pg = PostgresSampler::start(database);
    let measured = f();
    let pg_ticks = pg.finish();
    let after = CpuSnapshot::take(server_pid);
    let measured = measured?;
    let cpu = cpu_split(before, after, pg_ticks, calls(&measured));
    Ok(Timed { measured, cpu })
}

/// h2load's figures of one run.
struct H2load {
    succeeded: u64,
    seconds: f64,
    mean_ms: Option<f64>,
}

fn run_h2load(
    args: &ClicksArgs,
    addr: &str,
    key: &str,
    body: &Path,
    requests: u64,
) -> BenchResult<H2load> {
    let streams = args.concurrency.div_ceil(args.connections.max(1)).max(1);
    let out = Command::new("h2load")
        .args(["-c", &args.connections.to_string()])
        .args(["-m", &streams.to_string(), "-t", "1"])
        .args(["-n", &requests.to_string()])
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .args(["-H", &format!("authorization: Bearer {key}")])
        .arg("-d")
        .arg(body)
        .arg(format!("http://{addr}{CREATE_PATH}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run h2load (apt-get install nghttp2-client): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("h2load failed: {text}"));
    }
    let seconds = text
        .lines()
        .find_map(|l| l.strip_prefix("finished in "))
        .and_then(|l| l.split('s').next())
        .and_then(|v| v.parse::<f64>().ok())
        .ok_or_else(|| format!("h2load: no `finished in`: {text}"))?;
    let succeeded = text
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .and_then(|l| {
            l.trim_start_matches("status codes:")
                .split_whitespace()
                .next()
        })
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| format!("h2load: no `status codes`: {text}"))?;
    let mean_ms = text
        .lines()
        .find(|l| l.trim_start().starts_with("time for request:"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|v| {
            v.strip_suffix("ms")
                .and_then(|n| n.parse::<f64>().ok())
                .or_else(|| {
                    v.strip_suffix("us")
                        .and_then(|n| n.parse::<f64>().ok())
                        .map(|u| u / 1000.0)
                })
        });
    Ok(H2load {
        succeeded,
        seconds,
        mean_ms,
    })
}

#[derive(QueryableByName)]
struct PartnerCount {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Every partner's website + video counter.
fn counters(conn: &mut PgConnection) -> BenchResult<std::collections::HashMap<i64, i64>> {
    let rows: Vec<PartnerCount> =
        diesel::sql_query("SELECT id, website_clicks + video_clicks AS n FROM partners")
            .load(conn)
            .map_err(|e| format!("counters: {e}"))?;
    Ok(rows.into_iter().map(|r| (r.id, r.n)).collect())
}

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = Text)]
    what: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Sizes of the click tables, bytes, and their row estimates.
fn sizes(conn: &mut PgConnection) -> BenchResult<Vec<(String, i64)>> {
    diesel::sql_query(
        "WITH parts AS (SELECT inhrelid AS r FROM pg_inherits
                        WHERE inhparent = 'partner_click_events'::regclass)
         SELECT 'events partitions' AS what, count(*)::bigint AS n FROM parts
         UNION ALL SELECT 'events rows (estimate)', sum(greatest(c.reltuples, 0))::bigint
             FROM parts JOIN pg_class c ON c.oid = parts.r
         UNION ALL SELECT 'events heap bytes', sum(pg_table_size(r))::bigint FROM parts
         UNION ALL SELECT 'events index bytes', sum(pg_indexes_size(r))::bigint FROM parts
         UNION ALL SELECT 'rollups rows (estimate)',
             greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'partner_click_rollups'::regclass
         UNION ALL SELECT 'rollups heap bytes', pg_table_size('partner_click_rollups')
         UNION ALL SELECT 'rollups index bytes', pg_indexes_size('partner_click_rollups')
         UNION ALL SELECT 'idempotency keys heap+index bytes', pg_total_relation_size('partner_click_requests')",
    )
    .load::<Size>(conn)
    .map(|rows| rows.into_iter().map(|r| (r.what, r.n)).collect())
    .map_err(|e| format!("sizes: {e}"))
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

/// Runs the rows and prints them.
pub fn run(args: &ClicksArgs) -> BenchResult<std::process::ExitCode> {
    if !(1..=1000).contains(&args.batch) {
        return Err("--batch must be between 1 and 1000".into());
    }
    crate::pgbench::require()?;
    let binary = server_binary(args.server_bin.as_deref())?;
    let url = args.database_url.clone();
    let database = url
        .rsplit_once('/')
        .map(|(_, n)| n.split('?').next().unwrap_or(n).to_owned())
        .ok_or("--database-url must name a database")?;
    let keys = keys_for_loaded_data(&url)?;
    let key = |k: &str| {
        keys.get(k)
            .cloned()
            .ok_or_else(|| format!("no {k} from the keys"))
    };
    let (user_key, service_key) = (key("user_key")?, key("service_key")?);
    let mut conn = connect(&url)?;
    let max_id = scalar(&mut conn, "SELECT coalesce(max(id), 0) AS n FROM partners")?;
    // The ingest's clicks come from a user of the last business, so that they never count in
    // the reads of business 1 (the user key's) in later runs on the same data.
    let ingest_user = scalar(
        &mut conn,
        "SELECT id AS n FROM users WHERE business_id = (SELECT max(id) FROM businesses) \
         ORDER BY id LIMIT 1",
    )?;
    let ingest_key =
        loadgen::service_sql::create_key(&mut conn, Some(ingest_user), "clicks-bench ingest")?;
    let data = DataSet {
        user_key: user_key.clone(),
        service_key: service_key.clone(),
        business_uuid: key("business_uuid")?,
        user_uuid: key("user_uuid")?,
        business_id: 0,
        user_id: 0,
        max_partner_id: max_id,
        max_user_id: scalar(&mut conn, "SELECT coalesce(max(id), 0) AS n FROM users")?,
        partners: 0,
        wholesalers: 0,
        click_rows: 0,
    };
    let out = default_out_dir();
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "clicks: database {database}; {} s rows after {} s warm-up; RUST_LOG of the server: {}",
        args.duration_secs,
        args.warmup_secs,
        std::env::var("RUST_LOG").unwrap_or_else(|_| "(unset: info)".into())
    );
    println!("sizes before the ingest:");
    for (what, n) in sizes(&mut conn)? {
        if what.ends_with("bytes") {
            println!("  {what:<36} {}", mib(n));
        } else {
            println!("  {what:<36} {n}");
        }
    }

    // The state the exactness check compares with.
    let first_new_id = scalar(
        &mut conn,
        "SELECT coalesce(max(id), 0) + 1 AS n FROM partner_click_events",
    )?;
    let counters_before = counters(&mut conn)?;
    let hour_from = Utc::now() - chrono::Duration::hours(1);
    let rollup_sum = |conn: &mut PgConnection| -> BenchResult<i64> {
        #[derive(QueryableByName)]
        struct S {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(
            "SELECT coalesce(sum(clicks), 0)::bigint AS n FROM partner_click_rollups \
             WHERE hour >= date_trunc('hour', $1::timestamptz, 'UTC')",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(hour_from)
        .get_result::<S>(conn)
        .map(|s| s.n)
        .map_err(|e| format!("rollups: {e}"))
    };
    let rollups_before = rollup_sum(&mut conn)?;

    // The read rows' tables into the page cache (the database is larger than the cache holds
    // after the load of another size: cold pages would make the reads measure the disk).
    // As `run --skip-seed` does: earlier runs' clicks left the partners' pages changed since
    // the last vacuum (their counters), and the reads join every partner with clicks.
    exec(
        &mut conn,
        "VACUUM (ANALYZE) partners, partner_click_rollups",
    )?;
    let started = Instant::now();
    exec(&mut conn, "CREATE EXTENSION IF NOT EXISTS pg_prewarm")?;
    exec(
        &mut conn,
        "SELECT pg_prewarm(c.oid, 'read') FROM pg_class c
         WHERE c.oid IN ('partners'::regclass, 'partner_click_rollups'::regclass)
            OR c.oid IN (SELECT indexrelid FROM pg_index
                         WHERE indrelid IN ('partners'::regclass, 'partner_click_rollups'::regclass))",
    )?;
    println!(
        "prewarm: partners and the rollups with their indexes read in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    exec(&mut conn, INSERT_BASELINE_TABLE)?;
    let mut server = Server::start_with(&binary, &url, &out, "clicks-server.log", &[])?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(server.wait_serving())?;
    let pid = server.pid;
    let warmup = Duration::from_secs(args.warmup_secs);
    let duration = Duration::from_secs(args.duration_secs);
    // Reads first, on the data as loaded (the ingest below adds its events in the current
    // hour, as many as a month of the 5M set holds).
    let reads = (|| -> BenchResult<Vec<Row>> {
        let rc = args.read_concurrency;
        // The last 30 whole days (UTC): a dashboard's range, and one that the events of earlier
        // runs' ingest (all today) do not reach.
        let until = Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .ok_or("midnight")?
            .and_utc();
        let range = (
            Some(partners::grpc::convert::timestamp(
                until - chrono::Duration::days(30),
            )),
            Some(partners::grpc::convert::timestamp(until)),
        );
        let clients = runtime.block_on(Clients::connect(
            &server.grpc_addr,
            &server.http_addr,
            args.connections,
            &user_key,
            Some(&service_key),
        ))?;
        let channel: Channel = runtime.block_on(async {
            Endpoint::from_shared(format!("http://{}", server.grpc_addr))
                .map_err(|e| format!("endpoint: {e}"))?
                .connect()
                .await
                .map_err(|e| format!("connect: {e}"))
        })?;
        let service_auth: MetadataValue<Ascii> = format!("Bearer {service_key}")
            .parse()
            .map_err(|e| format!("key: {e}"))?;
        let mut out = Vec::new();
        let health = crate::scenarios::Load {
            runtime: &runtime,
            clients: clients.clone(),
            warmup,
            duration,
            pid,
            background: None,
        }
        .health(rc);
        let base_p99 = health.p99();
        out.push(Row {
            name: format!("baseline: health Check c={rc}"),
            rate: health.rps,
            per_call: 1,
            ratio: Some((1.0, "baseline p99")),
            p50: health.p(0.5),
            p99: health.p(0.99),
            cpu: None,
            errors: health.errors,
            note: String::new(),
        });
        let read_row = |name: String, m: Timed| Row {
            name,
            rate: m.measured.rps,
            per_call: 1,
            ratio: Some((m.measured.p99() / base_p99, "health p99")),
            p50: m.measured.p(0.5),
            p99: m.measured.p(0.99),
            cpu: Some(m.cpu),
            errors: m.measured.errors,
            note: m.measured.error_samples.join("; "),
        };
        let c = clients.clone();
        let stats = timed(
            pid,
            &database,
            || {
                Ok(
                    runtime.block_on(closed_loop(rc, warmup, duration, pid, move |task, rng| {
                        let mut client = c.partner(task);
                        let request = c.request(pb::GetPartnerClickStatsRequest {
                            partner_id: skewed_partner(rng, max_id),
                            bucket: pb::ClickBucket::Day as i32,
                            time_zone: "UTC".into(),
                            since: range.0,
                            until: range.1,
                            ..Default::default()
                        });
                        async move {
                            let r = client
                                .get_partner_click_stats(request)
                                .await
                                .map_err(status_text)?;
                            let n = r.into_inner().buckets.len();
                            if (30..=31).contains(&n) {
                                Ok(())
                            } else {
                                Err(format!("{n} buckets"))
                            }
                        }
                    })),
                )
            },
            |m| m.ok_total,
        )?;
        out.push(read_row(
            format!("GetPartnerClickStats 30 days by day (user key) c={rc}"),
            stats,
        ));
        let c = clients.clone();
        let top = timed(
            pid,
            &database,
            || {
                Ok(
                    runtime.block_on(closed_loop(rc, warmup, duration, pid, move |task, _rng| {
                        let mut client = c.partner(task);
                        let request = c.request(pb::ListTopPartnersByClicksRequest {
                            since: range.0,
                            until: range.1,
                            ..Default::default()
                        });
                        async move {
                            let r = client
                                .list_top_partners_by_clicks(request)
                                .await
                                .map_err(status_text)?;
                            if r.into_inner().partners.is_empty() {
                                Err("no partners".into())
                            } else {
                                Ok(())
                            }
                        }
                    })),
                )
            },
            |m| m.ok_total,
        )?;
        out.push(read_row(
            format!("ListTopPartnersByClicks 30 days (user key: its business) c={rc}"),
            top,
        ));
        let ch = channel.clone();
        let auth = service_auth.clone();
        let all = timed(
            pid,
            &database,
            || {
                Ok(
                    runtime.block_on(closed_loop(2, warmup, duration, pid, move |_task, _rng| {
                        let mut client = PartnerServiceClient::new(ch.clone());
                        let mut request = tonic::Request::new(pb::ListTopPartnersByClicksRequest {
                            since: range.0,
                            until: range.1,
                            ..Default::default()
                        });
                        request.metadata_mut().insert("authorization", auth.clone());
                        async move {
                            client
                                .list_top_partners_by_clicks(request)
                                .await
                                .map(|_| ())
                                .map_err(status_text)
                        }
                    })),
                )
            },
            |m| m.ok_total,
        )?;
        out.push(read_row(
            "ListTopPartnersByClicks 30 days (service key: all businesses) c=2".into(),
            all,
        ));
        Ok(out)
    })();

    let result = (|| -> BenchResult<(Vec<Row>, u64)> {
        // The lean driver runs on one thread (no hand-offs between workers).
        let lean_rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        let lean = lean_rt.block_on(Lean::connect(
            &server.grpc_addr,
            args.connections,
            &ingest_key,
        ))?;
        let singles = Arc::new(single_bodies(max_id, 0x5eed_0001));
        let batches = Arc::new(batch_bodies(max_id, args.batch, 0x5eed_0002));
        // h2load's body: one click on a partner of the cold range.
        let h2load_body = out.join("clicks-h2load-body.bin");
        std::fs::write(
            &h2load_body,
            grpc_frame(&pb::CreatePartnerClickEventRequest {
                id: (max_id / 2).max(1),
                event_type: pb::EventType::Website as i32,
                request_id: String::new(),
                business_uuid: String::new(),
            }),
        )
        .map_err(|e| format!("{}: {e}", h2load_body.display()))?;
        let mut rows = Vec::new();
        let mut acknowledged = 0u64;
        for round in 1..=args.pairs {
            let timing = Timing {
                database_url: &url,
                warmup: Duration::ZERO,
                duration,
            };
            let base = timed(
                pid,
                &database,
                || run_pgbench_on(&timing, &data, &PgbenchKind::Insert, args.concurrency, &out),
                |m| m.ok_total,
            )?;
            let baseline = base.measured.rps;
            rows.push(Row {
                name: format!("{round}: baseline pgbench insert c={}", args.concurrency),
                rate: baseline,
                per_call: 1,
                ratio: Some((1.0, "baseline")),
                p50: base.measured.p(0.5),
                p99: base.measured.p(0.99),
                cpu: Some(base.cpu),
                errors: base.measured.errors,
                note: base.measured.note.clone(),
            });
            print_row(rows.last().expect("row"));

            // One event per call, lean driver.
            let counter = Arc::new(AtomicU64::new(0));
            let (l, b, c) = (lean.clone(), singles.clone(), counter.clone());
            let single = timed(
                pid,
                &database,
                || {
                    Ok(lean_rt.block_on(closed_loop(
                        args.concurrency,
                        warmup,
                        duration,
                        pid,
                        move |task, _rng| {
                            let l = l.clone();
                            let body =
                                b[(c.fetch_add(1, Ordering::Relaxed) as usize) % b.len()].clone();
                            async move { l.call(task, false, body).await.map(|_| ()) }
                        },
                    )))
                },
                |m| m.ok_total,
            )?;
            acknowledged += single.measured.ok_total;
            rows.push(ingest_row(
                format!(
                    "{round}: CreatePartnerClickEvent lean c={}",
                    args.concurrency
                ),
                &single,
                1,
                baseline,
            ));
            print_row(rows.last().expect("row"));

            // One event per call, h2load (one body), as many calls as the lean row made in its
            // measured window (a fixed count: h2load's timed mode cancels the calls in flight
            // at its end, whose events may be committed unacknowledged).
            let h2load_calls = ((single.measured.rps * duration.as_secs_f64()) as u64).max(1000);
            let mut h2 = None;
            let from_h2load = timed(
                pid,
                &database,
                || {
                    let r = run_h2load(
                        args,
                        &server.grpc_addr,
                        &ingest_key,
                        &h2load_body,
                        h2load_calls,
                    )?;
                    let m = Measured {
                        rps: r.succeeded as f64 / r.seconds.max(1e-9),
                        hist: crate::closed_loop::new_histogram(),
                        errors: 0,
                        error_samples: Vec::new(),
                        ok_total: r.succeeded,
                        peak_rss_kib: None,
                        note: r
                            .mean_ms
                            .map(|v| format!("h2load mean {v:.2} ms, one partner"))
                            .unwrap_or_default(),
                        background: None,
                    };
                    h2 = Some(r);
                    Ok(m)
                },
                |m| m.ok_total,
            )?;
            acknowledged += h2.map_or(0, |r| r.succeeded);
            rows.push(ingest_row(
                format!(
                    "{round}: CreatePartnerClickEvent h2load c={}",
                    args.concurrency
                ),
                &from_h2load,
                1,
                baseline,
            ));
            print_row(rows.last().expect("row"));

            // Many events per call, lean driver; every result must be an event.
            let counter = Arc::new(AtomicU64::new(0));
            let (l, b, c) = (lean.clone(), batches.clone(), counter.clone());
            let n = args.batch;
            let batch = timed(
                pid,
                &database,
                || {
                    Ok(lean_rt.block_on(closed_loop(
                        args.batch_concurrency,
                        warmup,
                        duration,
                        pid,
                        move |task, _rng| {
                            let l = l.clone();
                            let body =
                                b[(c.fetch_add(1, Ordering::Relaxed) as usize) % b.len()].clone();
                            async move {
                                let answer = l.call(task, true, body).await?;
                                let r = pb::BatchCreatePartnerClickEventsResponse::decode(answer)
                                    .map_err(|e| format!("decode: {e}"))?;
                                let recorded = r
                                    .results
                                    .iter()
                                    .filter(|x| {
                                        matches!(
                                            x.result,
                                            Some(pb::click_event_result::Result::Event(_))
                                        )
                                    })
                                    .count();
                                if recorded == n && r.results.len() == n {
                                    Ok(())
                                } else {
                                    Err(format!("{recorded} of {n} events recorded"))
                                }
                            }
                        },
                    )))
                },
                |m| m.ok_total,
            )?;
            acknowledged += batch.measured.ok_total * n as u64;
            rows.push(ingest_row(
                format!(
                    "{round}: BatchCreatePartnerClickEvents lean c={}",
                    args.batch_concurrency
                ),
                &batch,
                n,
                baseline,
            ));
            print_row(rows.last().expect("row"));
        }
        Ok((rows, acknowledged))
    })();
    let (mut rows, acknowledged) = match result {
        Ok(v) => v,
        Err(e) => {
            server.stop();
            return Err(e);
        }
    };
    exec(&mut conn, "DROP TABLE IF EXISTS bench_insert_baseline")?;

    // Exactness: acknowledged = new rows = counters' growth (per partner) = rollups' growth.
    let check = (|| -> BenchResult<String> {
        let per_partner: Vec<PartnerCount> = diesel::sql_query(
            "SELECT partner_id AS id, count(*)::bigint AS n FROM partner_click_events \
             WHERE id >= $1 GROUP BY partner_id",
        )
        .bind::<BigInt, _>(first_new_id)
        .load(&mut conn)
        .map_err(|e| format!("new events: {e}"))?;
        let new_rows: i64 = per_partner.iter().map(|r| r.n).sum();
        let after = counters(&mut conn)?;
        let events: std::collections::HashMap<i64, i64> =
            per_partner.iter().map(|r| (r.id, r.n)).collect();
        let mismatched = after
            .iter()
            .filter(|(id, n)| {
                **n - counters_before.get(id).copied().unwrap_or(0)
                    != events.get(id).copied().unwrap_or(0)
            })
            .count();
        let rollups = rollup_sum(&mut conn)? - rollups_before;
        let line = format!(
            "acknowledged {acknowledged}, new event rows {new_rows}, rollups +{rollups}, \
             partners whose counters' growth differs from their new events: {mismatched}"
        );
        if acknowledged as i64 == new_rows && rollups == new_rows && mismatched == 0 {
            Ok(format!("exact: {line}"))
        } else {
            Err(format!("MISMATCH: {line}"))
        }
    })();

    let stopped = server.stop();
    let check = check?;
    let reads = reads?;
    println!("{check}");
    for r in &reads {
        print_row(r);
    }
    rows.extend(reads);
    println!("server: {stopped}");

    println!("sizes after the ingest:");
    for (what, n) in sizes(&mut conn)? {
        if what.ends_with("bytes") {
            println!("  {what:<36} {}", mib(n));
        } else {
            println!("  {what:<36} {n}");
        }
    }
    if !args.keep_partitions {
        drop_oldest(&mut conn)?;
    }
    let failed = rows.iter().any(|r| r.errors > 0);
    Ok(if failed {
        println!("clicks: FAILED: calls failed (see errors)");
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

fn ingest_row(name: String, t: &Timed, per_call: usize, baseline: f64) -> Row {
    let rate = t.measured.rps * per_call as f64;
    let mut note = t.measured.note.clone();
    if per_call > 1
        && let Some(c) = t.cpu.server_us_per_call
    {
        note = format!("server {:.1} µs per event", c / per_call as f64);
    }
    if !t.measured.error_samples.is_empty() {
        note = format!("{note} {}", t.measured.error_samples.join("; "));
    }
    Row {
        name,
        rate,
        per_call,
        ratio: Some((rate / baseline.max(1e-9), "pgbench insert")),
        p50: t.measured.p(0.5),
        p99: t.measured.p(0.99),
        cpu: Some(t.cpu),
        errors: t.measured.errors,
        note,
    }
}

/// Drops the oldest partition through the service's upkeep (`now` one month after that
/// partition's end, retention one month: only it has expired), then prunes its keys.
fn drop_oldest(conn: &mut PgConnection) -> BenchResult<()> {
    use partners::model::click_partition;
    let months = click_partition::partitions(conn).map_err(|e| format!("partitions: {e}"))?;
    let Some(oldest) = months.first().copied() else {
        println!("drop: no partition");
        return Ok(());
    };
    if months.len() < 2 {
        println!("drop: one partition only, kept");
        return Ok(());
    }
    let name = format!("partner_click_events_p{}", oldest.format("%Y%m"));
    let rows = scalar(
        conn,
        &format!(
            "SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE relname = '{name}'"
        ),
    )?;
    let bytes = scalar(
        conn,
        &format!("SELECT pg_total_relation_size('{name}') AS n"),
    )?;
    let now = (oldest + Months::new(2))
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .ok_or("date")?;
    let started = Instant::now();
    let report = click_partition::maintain(conn, now, 0, 1).map_err(|e| format!("drop: {e}"))?;
    let dropped_in = started.elapsed();
    let started = Instant::now();
    let mut pruned = 0;
    loop {
        let n = click_partition::prune_keys(conn, 10_000).map_err(|e| format!("prune: {e}"))?;
        pruned += n;
        if n < 10_000 {
            break;
        }
    }
    let pruned_in = started.elapsed();
    println!(
        "drop: {} month(s) dropped ({:?}); {name}: ~{rows} rows, {} with indexes; upkeep transaction {:.1} ms; \
         {pruned} keys pruned in {:.1} ms",
        report.dropped.len(),
        report.dropped,
        mib(bytes),
        ms(dropped_in.as_micros() as u64),
        ms(pruned_in.as_micros() as u64),
    );
    Ok(())
}
