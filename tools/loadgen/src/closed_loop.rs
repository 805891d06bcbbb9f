//! The closed loop that drives the service: N tasks each sending a call, waiting for its answer
//! and sending the next, for a warm-up and then the measured window; latency of each successful
//! call in a per-task `hdrhistogram` (µs), merged; failed calls counted with a few samples.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::open_loop::Paced;
use crate::sampling::RssSampler;

/// xorshift64: a fast, seedable PRNG (no `rand` crate here).
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
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
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An empty latency histogram: 1 µs to 10 min, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds are valid")
}

/// Microseconds as milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// What one baseline or scenario measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Successful calls per second over the measured window.
    pub rps: f64,
    /// Latency of successful calls, µs (empty when unknown).
    pub hist: Histogram<u64>,
    /// Failed calls (warm-up included).
    pub errors: u64,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
    /// Successful calls including the warm-up (acknowledged click events).
    pub ok_total: u64,
    /// Peak VmRSS of the server during the scenario, KiB.
    pub peak_rss_kib: Option<u64>,
    /// Extra information (pgbench's own latency average).
    pub note: String,
    /// The calls an open loop sent in the background of the row (writes or clicks), if any.
    pub background: Option<Paced>,
}

impl Measured {
    /// The latency at quantile `q`, ms (`None` when nothing was recorded).
    pub fn p(&self, q: f64) -> Option<f64> {
        (!self.hist.is_empty()).then(|| ms(self.hist.value_at_quantile(q)))
    }
    /// The p99 latency, ms (infinite when nothing was recorded).
    pub fn p99(&self) -> f64 {
        self.p(0.99).unwrap_or(f64::INFINITY)
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
pub async fn closed_loop<F, Fut>(
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
        background: None,
    }
}
