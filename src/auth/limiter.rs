//! Per-key rate limits: one GCRA bucket per API key prefix (`governor`, keyed). Over the limit, a
//! call gets RESOURCE_EXHAUSTED (REST 429) with the time to wait. Only authenticated keys get a
//! bucket, and buckets idle long enough to be full again are dropped by [`KeyLimiter::shrink`],
//! so the map is bounded by the keys in use. The buckets are per process: N replicas would allow
//! N times the rate, so each process is given its share of the configured limit
//! (`--rate-limit-replicas N`, [`crate::config::ServerLimits::rate_limit_share`]), and the N
//! shares together keep the configured rate when the balancer spreads a key's calls evenly.
//!
//! The same buckets, keyed by client address ([`AddressLimiter`]), limit failed authentications:
//! an address past its budget of failures gets RESOURCE_EXHAUSTED instead of UNAUTHENTICATED.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{Error, Result};

/// Token buckets keyed by `K`; `None` inside when limiting is off.
pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    clock: DefaultClock,
    refusal: &'static str,
}

/// Calls per API key prefix.
pub type KeyLimiter = Limiter<String>;

/// Failed authentications per client address.
pub type AddressLimiter = Limiter<IpAddr>;

impl KeyLimiter {
    /// `per_second` calls per key on average, bursts up to `burst`; a rate of 0 turns limiting off.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Limiter::with(per_second, burst, "rate limit of this API key exceeded")
    }

    /// Takes one call's worth for `key`, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<()> {
        self.take(&key.to_owned())
    }
}

impl AddressLimiter {
    /// `per_second` failed authentications per address on average, bursts up to `burst`; a
    /// rate of 0 turns limiting off.
    pub fn failures(per_second: u32, burst: u32) -> Self {
        Limiter::with(
            per_second,
            burst,
            "too many failed authentications from this address",
        )
    }
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn with(per_second: u32, burst: u32, refusal: &'static str) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Limiter {
            limiter,
            clock: DefaultClock::default(),
            refusal,
        }
    }

    /// Takes one unit for `key`, or says how long to wait.
    pub fn take(&self, key: &K) -> Result<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Error::ResourceExhausted {
                message: self.refusal,
                retry_after: wait.max(Duration::from_millis(1)),
            }
        })
    }

    /// Drops the buckets of keys idle long enough to be full again.
    pub fn shrink(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Keys with a bucket.
    pub fn len(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
    }

    /// Whether no key has a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refuses_then_refills() {
        let limiter = KeyLimiter::new(20, 3);
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
        assert!(KeyLimiter::new(0, 0).check("k").is_ok(), "0 disables");
    }

    /// Three processes, each with its share of a global 300/s (burst 30), called in turn as a
    /// round-robin balancer would: together they allow the global limit, not three times it.
    #[test]
    fn replica_shares_keep_the_global_limit() {
        use std::time::Instant;

        use crate::config::ServerLimits;

        let allowed = |replicas: u32| {
            let limits = ServerLimits {
                rate_limit_per_second: 300,
                rate_limit_burst: 30,
                rate_limit_replicas: replicas,
                ..ServerLimits::default()
            };
            let (rate, burst) = limits.rate_limit_share();
            let processes: Vec<KeyLimiter> = (0..3).map(|_| KeyLimiter::new(rate, burst)).collect();
            let started = Instant::now();
            let mut allowed = 0u32;
            while started.elapsed() < Duration::from_millis(400) {
                for process in &processes {
                    allowed += u32::from(process.check("k").is_ok());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            (allowed, started.elapsed().as_secs_f64())
        };
        let (shared, secs) = allowed(3);
        let global = 30.0 + 300.0 * secs;
        assert!(
            f64::from(shared) <= global + 3.0 && f64::from(shared) >= 0.8 * global,
            "3 shares allowed {shared} calls in {secs:.3} s; the global limit allows {global:.0}"
        );
        let (unshared, secs) = allowed(1);
        assert!(
            f64::from(unshared) > 2.0 * (30.0 + 300.0 * secs),
            "without shares 3 processes allow about 3 times the limit: {unshared} in {secs:.3} s"
        );
    }

    #[test]
    fn idle_buckets_are_dropped() {
        let limiter = KeyLimiter::new(1000, 2);
        limiter.check("a").expect("first call");
        limiter.check("b").expect("first call");
        assert_eq!(limiter.len(), 2);
        std::thread::sleep(Duration::from_millis(20));
        limiter.shrink();
        assert!(limiter.is_empty(), "full buckets are forgotten");
    }
}
