//! Per-key rate limiting: a token bucket per API key prefix. Over the limit, a call gets
//! RESOURCE_EXHAUSTED (REST 429) with a retry delay.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Token buckets keyed by key prefix; a rate of 0 disables limiting.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `per_second` calls per key on average, bursts up to `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<()> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            buckets.clear();
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            refilled: now,
        });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / self.per_second;
        Err(Error::ResourceExhausted {
            message: "rate limit of this API key exceeded",
            retry_after: Duration::from_secs_f64(wait.max(0.001)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses_then_refills() {
        let limiter = RateLimiter::new(20, 3);
        for _ in 0..3 {
            limiter.check("k").expect("within burst");
        }
        assert!(matches!(
            limiter.check("k"),
            Err(Error::ResourceExhausted { .. })
        ));
        limiter.check("other").expect("keys are independent");
        std::thread::sleep(Duration::from_millis(60));
        limiter.check("k").expect("refilled");
        assert!(RateLimiter::new(0, 0).check("k").is_ok(), "0 disables");
    }
}
