//! The targets of the performance issue: each row judged against its baseline (PASS, FAIL or
//! n/a), and the click bound and click cost fit printed under the tables.

use crate::changing::RENAME_ROW;
use crate::closed_loop::Measured;
use crate::pgbench::{CEILING_ROW, SWEEP_ROW, click_batch_of};
use crate::report::{Row, VariantKind};
use crate::scenarios::{BROWSE_ROW, NEWEST_ROW};
use crate::server::CopyState;

/// The RSS limit of the issue, in MiB.
pub const RSS_LIMIT_MIB: f64 = 150.0;

// Issue 18's targets (lists while the directory changes).
/// Under the write rate: a list's p99 at most this × its quiet p99 …
const WRITES_P99_MAX: f64 = 1.5;
/// … and its throughput at least this × its quiet throughput.
const WRITES_RPS_MIN: f64 = 0.7;
/// Under the click rate: a list's p99 at most this × its quiet p99.
const CLICKS_P99_MAX: f64 = 1.5;
/// Without the copy: a list's p99 at most this × its p99 with the copy.
const COPY_OFF_P99_MAX: f64 = 4.0;
/// A rename found by the other process's search within this, at p95 (ms).
const RENAME_P95_MAX_MS: f64 = 100.0;
/// The copy's heap per partner, at most (bytes; the target at 1,000,000 partners).
const COPY_BYTES_MAX: f64 = 300.0;
/// The copy's load, at most (seconds; the target at 1,000,000 partners).
const COPY_LOAD_MAX_S: f64 = 10.0;
/// A background loop must have reached this share of its rate for its row to be judged a pass:
/// a row whose writes did not arrive proves nothing about writes.
const DELIVERED_MIN: f64 = 0.95;

/// The ratio, target and verdict of a row of a changing directory of `kind` measured as `m`,
/// against its quiet row `quiet`: p99 ratio (and throughput ratio under writes) within the
/// issue's bounds, the background rate delivered, RSS within its limit.
fn variant_verdict(
    m: &Measured,
    kind: VariantKind,
    quiet: Option<&Measured>,
    rss_ok: bool,
) -> (Option<f64>, String, Option<bool>) {
    let p99_ratio = quiet.map(|q| m.p99() / q.p99());
    let rps_ratio = quiet.map(|q| m.rps / q.rps);
    let delivered = m
        .background
        .as_ref()
        .map(|p| p.achieved() >= DELIVERED_MIN * p.rate);
    match kind {
        VariantKind::Writes => (
            p99_ratio,
            format!(
                "p99≤{WRITES_P99_MAX}×, req/s≥{WRITES_RPS_MIN}× quiet ({})",
                rps_ratio.map_or("-".into(), |r| format!("{r:.2}×"))
            ),
            all_of(&[
                p99_ratio.map(|r| r <= WRITES_P99_MAX),
                rps_ratio.map(|r| r >= WRITES_RPS_MIN),
                delivered,
                Some(rss_ok),
            ]),
        ),
        VariantKind::Clicks => (
            p99_ratio,
            format!("p99≤{CLICKS_P99_MAX}× quiet, clicks delivered"),
            all_of(&[
                p99_ratio.map(|r| r <= CLICKS_P99_MAX),
                delivered,
                Some(rss_ok),
            ]),
        ),
        VariantKind::CopyOff => (
            p99_ratio,
            format!("p99≤{COPY_OFF_P99_MAX}× copy on, RSS≤150"),
            all_of(&[p99_ratio.map(|r| r <= COPY_OFF_P99_MAX), Some(rss_ok)]),
        ),
    }
}

/// A row that states a check without a measurement of its own.
fn check_row(name: &str, target: String, pass: Option<bool>) -> Row {
    Row {
        name: name.into(),
        concurrency: 0,
        measured: None,
        failure: None,
        baseline: None,
        ratio: None,
        target,
        pass,
        rss_mib: None,
        cpu: None,
        variant: None,
    }
}

/// The rows of the server's copy: heap bytes per partner and load time, against the issue's
/// targets at 1,000,000 partners (judged at any size: neither grows with it per partner). A copy
/// that did not load fails its load time; one off (as asked) has no rows; one whose state the
/// log does not tell is not judged.
pub fn copy_rows(copy: &CopyState) -> Vec<Row> {
    let load_row = |target: String, pass| check_row("copy: load time", target, pass);
    let load = match copy {
        CopyState::Loaded(load) => load,
        CopyState::Off => return Vec::new(),
        CopyState::Failed(why) => {
            return vec![load_row(
                format!("≤{COPY_LOAD_MAX_S:.0} s: not loaded ({why})"),
                Some(false),
            )];
        }
        CopyState::Unknown(why) => {
            return vec![load_row(
                format!("≤{COPY_LOAD_MAX_S:.0} s: unknown ({why})"),
                None,
            )];
        }
    };
    let bytes = load.bytes_per_partner();
    let seconds = load.ms as f64 / 1000.0;
    vec![
        check_row(
            "copy: heap per partner",
            format!(
                "≤{COPY_BYTES_MAX:.0} B: {bytes:.0} B ({:.1} MiB, {} partners)",
                load.mib, load.partners
            ),
            Some(bytes <= COPY_BYTES_MAX),
        ),
        load_row(
            format!(
                "≤{COPY_LOAD_MAX_S:.0} s: {seconds:.2} s ({} partners)",
                load.partners
            ),
            Some(seconds <= COPY_LOAD_MAX_S),
        ),
    ]
}

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
pub fn click_bound(rows: &[Row], concurrency: usize) -> Option<String> {
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
pub fn click_cost_fit(rows: &[Row], concurrency: usize) -> Option<String> {
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

/// What judging the rows needs besides the rows.
pub struct Judging<'a> {
    /// Callers of most rows.
    pub concurrency: usize,
    /// Callers of the ListPartners rows.
    pub list_concurrency: usize,
    /// Name of the deep ListWholesalers row.
    pub deep_name: &'a str,
    /// Name of the ListPartners floor row.
    pub list_floor_name: &'a str,
    /// Acknowledged click events and new rows, when the click row ran.
    pub click_check: Option<(u64, i64)>,
}

/// Sets each row's baseline, ratio, target and verdict; adds every row's errors and failure to
/// `hard_failures` (which already holds the click checks' mismatches).
pub fn judge(rows: &mut [Row], judging: &Judging, hard_failures: &mut Vec<String>) {
    let Judging {
        concurrency: c,
        list_concurrency: lc,
        deep_name,
        list_floor_name,
        click_check,
    } = *judging;
    let find = |rows: &[Row], name: &str| -> Option<Measured> {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.measured.clone())
    };
    let select_name = |conc: usize| format!("baseline: pgbench select c={conc}");
    let grpc_get = find(rows, "gRPC GetPartner");
    let grpc_list = find(rows, "gRPC ListPartners");
    let whole_p1 = find(rows, "gRPC ListWholesalers page 1");
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
    for row in rows.iter_mut() {
        let Some(m) = row.measured.clone() else {
            row.pass = Some(false);
            continue;
        };
        let rss_ok = m
            .peak_rss_kib
            .is_none_or(|k| k as f64 / 1024.0 <= RSS_LIMIT_MIB);
        let rps_ratio = |base: Option<Measured>| base.map(|b| m.rps / b.rps);
        let (baseline, ratio, target, pass): (Option<String>, Option<f64>, String, Option<bool>) =
            if let Some(variant) = &row.variant {
                let quiet = lookup(&variant.quiet);
                let (ratio, target, pass) =
                    variant_verdict(&m, variant.kind, quiet.as_ref(), rss_ok);
                (Some(variant.quiet.clone()), ratio, target, pass)
            } else {
                match row.name.as_str() {
                    RENAME_ROW => {
                        let p95 = m.p(0.95);
                        (
                            None,
                            None,
                            format!(
                                "p95≤{RENAME_P95_MAX_MS:.0}ms (p95 {})",
                                p95.map_or("-".into(), |v| format!("{v:.1} ms"))
                            ),
                            p95.map(|v| v <= RENAME_P95_MAX_MS),
                        )
                    }
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
                    name if name.starts_with("baseline: health") => {
                        (None, None, String::new(), None)
                    }
                    _ => (None, None, String::new(), None),
                }
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
        if let Some(paced) = m.background.as_ref().filter(|p| p.errors > 0) {
            hard_failures.push(format!(
                "{}: {} background calls failed ({})",
                row.name,
                paced.errors,
                paced.error_samples.join(" | ")
            ));
        }
    }
    for row in rows.iter() {
        if let Some(e) = &row.failure {
            hard_failures.push(format!("{}: {e}", row.name));
        }
    }
}

/// req/s of each gRPC and REST row relative to the health Check at the same concurrency (rows of
/// a changing directory left out: their throughput is compared with their quiet rows').
pub fn transport_ratios(rows: &[Row]) -> Vec<String> {
    let lookup = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.measured.clone())
    };
    let health_name = |conc: usize| format!("baseline: health Check c={conc}");
    rows.iter()
        .filter(|r| r.name.starts_with("gRPC") || r.name.starts_with("REST"))
        .filter(|r| r.variant.is_none())
        .filter_map(|r| {
            let m = r.measured.as_ref()?;
            let h = lookup(&health_name(r.concurrency))?;
            Some(format!("{} {:.3}", r.name, m.rps / h.rps))
        })
        .collect()
}

/// The row "list queries use an index": PASS without a list statement in `scans` (plans with a
/// `Seq Scan on partners`, or not taken); not judged on smoke data, where the planner rightly
/// scans tables of a few pages.
pub fn index_use_row(scans: &[String], smoke: bool) -> Row {
    check_row(
        "list queries use an index",
        match (scans.is_empty(), smoke) {
            (true, _) => "no Seq Scan on partners".into(),
            // The planner rightly scans tables of a few pages: judged on the full data only.
            (false, true) => format!("smoke data, not judged: {}", scans.join(", ")),
            (false, false) => format!("Seq Scan or no plan: {}", scans.join(", ")),
        },
        (!smoke || scans.is_empty()).then_some(scans.is_empty()),
    )
}

/// The row of the server's peak memory over the whole run (`VmHWM`, KiB when known).
pub fn peak_memory_row(hwm_kib: Option<u64>) -> Row {
    let hwm_mib = hwm_kib.map(|k| k as f64 / 1024.0);
    Row {
        rss_mib: hwm_mib,
        ..check_row(
            "server VmHWM (whole run)",
            "VmHWM ≤150 MiB".into(),
            hwm_mib.map(|m| m <= RSS_LIMIT_MIB),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::closed_loop::new_histogram;
    use crate::open_loop::Paced;
    use crate::server::CopyLoad;
    use std::time::Duration;

    #[test]
    fn a_verdict_fails_on_any_failure_and_is_na_when_unknown() {
        assert_eq!(all_of(&[Some(true), Some(true)]), Some(true));
        assert_eq!(all_of(&[Some(true), None, Some(false)]), Some(false));
        assert_eq!(all_of(&[Some(true), None]), None);
    }

    /// A row's measurement: every call at `p99_ms`, `rps` per second, and a background loop of
    /// `rate` per second that delivered `achieved` per second.
    fn measured(p99_ms: u64, rps: f64, background: Option<(f64, f64)>) -> Measured {
        let mut hist = new_histogram();
        hist.record(p99_ms * 1000).unwrap();
        Measured {
            rps,
            hist,
            errors: 0,
            error_samples: Vec::new(),
            ok_total: 0,
            peak_rss_kib: None,
            note: String::new(),
            background: background.map(|(rate, achieved)| Paced {
                rate,
                window: Duration::from_secs(10),
                ok_in_window: (achieved * 10.0) as u64,
                sent: 0,
                ok: 0,
                errors: 0,
                skipped: 0,
                error_samples: Vec::new(),
                hist: new_histogram(),
            }),
        }
    }

    #[test]
    fn a_list_under_writes_keeps_its_p99_and_throughput() {
        let quiet = measured(20, 1000.0, None);
        let verdict = |m: Measured| variant_verdict(&m, VariantKind::Writes, Some(&quiet), true);
        let (ratio, _, pass) = verdict(measured(30, 700.0, Some((20.0, 20.0))));
        assert!((ratio.unwrap() - 1.5).abs() < 0.01);
        assert_eq!(pass, Some(true));
        // p99 too high; throughput too low; writes not delivered.
        assert_eq!(
            verdict(measured(31, 900.0, Some((20.0, 20.0)))).2,
            Some(false)
        );
        assert_eq!(
            verdict(measured(20, 690.0, Some((20.0, 20.0)))).2,
            Some(false)
        );
        assert_eq!(
            verdict(measured(20, 1000.0, Some((20.0, 18.0)))).2,
            Some(false)
        );
        // Without the quiet row (not run): not judged.
        let m = measured(20, 1000.0, Some((20.0, 20.0)));
        assert_eq!(variant_verdict(&m, VariantKind::Writes, None, true).2, None);
    }

    #[test]
    fn clicks_judge_the_p99_only_and_copy_off_allows_four_times() {
        let quiet = measured(20, 1000.0, None);
        let clicks = measured(30, 100.0, Some((1000.0, 990.0)));
        assert_eq!(
            variant_verdict(&clicks, VariantKind::Clicks, Some(&quiet), true).2,
            Some(true)
        );
        let off = |p99| {
            variant_verdict(
                &measured(p99, 10.0, None),
                VariantKind::CopyOff,
                Some(&quiet),
                true,
            )
        };
        // (The histogram keeps 3 significant digits: 80 ms against 20 ms lands a hair above 4.)
        assert_eq!(off(79).2, Some(true));
        assert_eq!(off(82).2, Some(false));
    }

    #[test]
    fn a_failed_background_call_fails_the_run_whatever_the_targets() {
        let quiet = Row::new("gRPC ListPartners", 8, Ok(measured(20, 1000.0, None)));
        let mut under = measured(20, 1000.0, Some((20.0, 20.0)));
        if let Some(p) = under.background.as_mut() {
            p.errors = 2;
            p.error_samples = vec!["NotFound: partner".into()];
        }
        let mut writes = Row::new("gRPC ListPartners + 20 writes/s", 8, Ok(under));
        writes.variant = crate::report::Variant::new("gRPC ListPartners", VariantKind::Writes);
        let mut rows = vec![quiet, writes];
        let mut failures = Vec::new();
        let judging = Judging {
            concurrency: 32,
            list_concurrency: 8,
            deep_name: "gRPC ListWholesalers page 40",
            list_floor_name: "floor: pgbench ListPartners c=8",
            click_check: None,
        };
        judge(&mut rows, &judging, &mut failures);
        assert_eq!(rows[1].baseline.as_deref(), Some("gRPC ListPartners"));
        assert_eq!(rows[1].pass, Some(true), "the figures themselves hold");
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert!(failures[0].contains("2 background calls failed (NotFound: partner)"));
    }

    #[test]
    fn the_copy_rows_judge_bytes_per_partner_and_load_time() {
        let rows = copy_rows(&CopyState::Loaded(CopyLoad {
            partners: 1_000_000,
            mib: 162.0,
            ms: 3400,
        }));
        assert_eq!(rows[0].pass, Some(true), "{}", rows[0].target);
        assert!(rows[0].target.contains("170 B"), "{}", rows[0].target);
        assert_eq!(rows[1].pass, Some(true));
        let slow = copy_rows(&CopyState::Loaded(CopyLoad {
            partners: 1_000_000,
            mib: 300.0,
            ms: 10_500,
        }));
        assert_eq!((slow[0].pass, slow[1].pass), (Some(false), Some(false)));
        let failed = copy_rows(&CopyState::Failed("search index: load failed".into()));
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].pass, Some(false));
        assert!(copy_rows(&CopyState::Off).is_empty());
        assert_eq!(copy_rows(&CopyState::Unknown("x".into()))[0].pass, None);
    }
}
