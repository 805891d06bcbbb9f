//! The open loop that loads the service in the background of a row: calls sent at a fixed rate
//! (call k is due `k / rate` seconds after the start), whatever the answers take, each on its own
//! task. A closed loop would slow down with the service and so hide what a steady write rate does
//! to the lists; this one keeps the rate, and says which rate it reached and what failed.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::closed_loop::new_histogram;

/// What the open loop sent and got back.
#[derive(Debug, Clone)]
pub struct Paced {
    /// The rate asked for, calls per second.
    pub rate: f64,
    /// The measured window (the row's, not the warm-up).
    pub window: Duration,
    /// Calls sent during the measured window that succeeded.
    pub ok_in_window: u64,
    /// Calls sent (warm-up included).
    pub sent: u64,
    /// Successful calls (warm-up included).
    pub ok: u64,
    /// Failed calls (warm-up included).
    pub errors: u64,
    /// Calls not sent because `max_in_flight` calls were still waiting for their answer: the
    /// service fell so far behind that the loop could not keep its rate.
    pub skipped: u64,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
    /// Latency of the successful calls, µs.
    pub hist: Histogram<u64>,
}

impl Paced {
    /// Successful calls per second sent during the measured window: the rate the service was
    /// really under while the row measured.
    pub fn achieved(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ok_in_window as f64 / secs
        } else {
            0.0
        }
    }

    /// One line: rate reached, errors, skipped calls, latency.
    pub fn summary(&self, what: &str) -> String {
        let p = |q: f64| {
            if self.hist.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.1}", self.hist.value_at_quantile(q) as f64 / 1000.0)
            }
        };
        format!(
            "{what} {:.1}/s of {:.0}/s ({} sent, {} errors, {} skipped), p50 {} ms p99 {} ms",
            self.achieved(),
            self.rate,
            self.sent,
            self.errors,
            self.skipped,
            p(0.5),
            p(0.99)
        )
    }
}

/// When call `k` is due, `start` being call 0's time.
pub fn due(start: Instant, rate: f64, k: u64) -> Instant {
    start + Duration::from_secs_f64(k as f64 / rate)
}

/// Sends `call(k)` for k = 0, 1, … at `rate` per second from now until `end`, at most
/// `max_in_flight` unanswered at once; counts the calls sent in `[measure_from, end)` towards the
/// achieved rate. Returns once every call sent has been answered.
pub async fn open_loop<F, Fut>(
    rate: f64,
    measure_from: Instant,
    end: Instant,
    max_in_flight: usize,
    call: F,
) -> Paced
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let start = Instant::now();
    let window = end.saturating_duration_since(measure_from.max(start));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let mut skipped = 0u64;
    let mut k = 0u64;
    loop {
        let at = due(start, rate, k);
        if at >= end || rate <= 0.0 {
            break;
        }
        // Behind schedule (a late timer, a busy runtime): send at once, so the average rate holds.
        tokio::time::sleep_until(at.into()).await;
        if in_flight.load(Ordering::Relaxed) >= max_in_flight {
            skipped += 1;
        } else {
            in_flight.fetch_add(1, Ordering::Relaxed);
            let fut = call(k);
            let counter = in_flight.clone();
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let outcome = fut.await;
                counter.fetch_sub(1, Ordering::Relaxed);
                (sent, sent.elapsed(), outcome)
            }));
        }
        k += 1;
    }
    let mut paced = Paced {
        rate,
        window,
        ok_in_window: 0,
        sent: tasks.len() as u64,
        ok: 0,
        errors: 0,
        skipped,
        error_samples: Vec::new(),
        hist: new_histogram(),
    };
    for task in tasks {
        let (sent, took, outcome) = match task.await {
            Ok(done) => done,
            Err(e) => (
                Instant::now(),
                Duration::ZERO,
                Err(format!("task panicked: {e}")),
            ),
        };
        match outcome {
            Ok(()) => {
                paced.ok += 1;
                if sent >= measure_from {
                    paced.ok_in_window += 1;
                }
                let us = took.as_micros().min(u128::from(u64::MAX)) as u64;
                paced.hist.saturating_record(us.max(1));
            }
            Err(e) => {
                paced.errors += 1;
                if paced.error_samples.len() < 3 && !paced.error_samples.contains(&e) {
                    paced.error_samples.push(e);
                }
            }
        }
    }
    paced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_due_at_a_fixed_rate() {
        let start = Instant::now();
        assert_eq!(due(start, 20.0, 0), start);
        assert_eq!(due(start, 20.0, 1), start + Duration::from_millis(50));
        assert_eq!(
            due(start, 1000.0, 2500),
            start + Duration::from_millis(2500)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_loop_keeps_its_rate_and_counts_the_window_only() {
        let start = Instant::now();
        let measure_from = start + Duration::from_millis(200);
        let end = start + Duration::from_millis(700);
        let paced = open_loop(200.0, measure_from, end, 64, |k| async move {
            if k % 50 == 7 {
                Err(format!("call {k} fails"))
            } else {
                Ok(())
            }
        })
        .await;
        // 0.7 s at 200/s: 140 calls, 3 of them failing (k = 7, 57, 107).
        assert!((138..=141).contains(&paced.sent), "{paced:?}");
        assert_eq!(paced.errors, 3);
        assert_eq!(paced.error_samples.len(), 3);
        assert_eq!(paced.ok + paced.errors, paced.sent);
        assert_eq!(paced.skipped, 0);
        // The window is 0.5 s: about 100 calls (k = 40..139), less the two failing in it (k = 57
        // and 107).
        assert!((0.5..0.52).contains(&paced.window.as_secs_f64()));
        assert!((95..=99).contains(&paced.ok_in_window), "{paced:?}");
        assert!((190.0..=198.0).contains(&paced.achieved()), "{paced:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_beyond_the_in_flight_limit_are_skipped_not_queued() {
        let start = Instant::now();
        let end = start + Duration::from_millis(300);
        // Each call takes longer than the whole loop: only the first 4 are ever in flight.
        let paced = open_loop(100.0, start, end, 4, |_| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            Ok(())
        })
        .await;
        assert_eq!(paced.sent, 4);
        assert!(paced.skipped >= 25, "{paced:?}");
        assert_eq!(paced.ok, 4);
    }
}
