//! Per-key rate limits: one GCRA bucket per API key prefix (`governor`, keyed). Over the limit, a
//! call gets RESOURCE_EXHAUSTED (REST 429) with the time to wait. Only authenticated keys get a
//! bucket, and buckets idle long enough to be full again are dropped by [`KeyLimiter::shrink`],
//! so the map is bounded by the keys in use. The buckets are per process: N replicas would allow
//! N times the rate, so each process is given its share of the configured limit
//! (`--rate-limit-replicas N`, [`crate::config::ServerLimits::rate_limit_share`]), and the N
//! shares together keep the configured rate when the balancer spreads a key's calls evenly.
//!
//! A key's calls are told where they stand ([`RateState`]): the gRPC answer carries it as
//! `ratelimit-limit`, `ratelimit-remaining` and `ratelimit-reset` metadata, which the gateway
//! copies to the IETF draft's `RateLimit-Limit` / `-Remaining` / `-Reset` headers.
//!
//! The same buckets, keyed by client address ([`AddressLimiter`]), limit failed authentications:
//! an address past its budget of failures gets RESOURCE_EXHAUSTED instead of UNAUTHENTICATED.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http::HeaderMap;

use crate::error::{Error, Result};

/// Buckets keyed by `K`, each decision answering the bucket's state.
type Buckets<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// Token buckets keyed by `K`; `None` inside when limiting is off.
pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: Option<Buckets<K>>,
    quota: Option<Quota>,
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

    /// Takes one call's worth for `key` and answers where the key stands (`None` when limiting
    /// is off), or says how long to wait.
    pub fn check(&self, key: &str) -> Result<Option<RateState>> {
        self.take(&key.to_owned())
    }

    /// Where a refused key stands: nothing left, the bucket full again after [`RateState::reset`].
    pub fn exhausted(&self) -> Option<RateState> {
        let quota = self.quota?;
        Some(RateState::of(quota, 0))
    }
}

/// A key's rate limit as the IETF draft's `RateLimit` fields tell it: the bucket's size
/// (`limit`), what is left of it (`remaining`) and the seconds until it is full again (`reset`,
/// rounded up; a refused call's `Retry-After` says when one more call is allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    pub reset: u64,
}

/// The metadata (and header) names of [`RateState`]'s fields.
pub const RATE_LIMIT_HEADERS: [&str; 3] =
    ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"];

impl RateState {
    fn of(quota: Quota, remaining: u32) -> RateState {
        let limit = quota.burst_size().get();
        let empty = limit.saturating_sub(remaining);
        let refill = quota.replenish_interval() * empty;
        RateState {
            limit,
            remaining,
            reset: refill.as_secs() + u64::from(refill.subsec_nanos() > 0),
        }
    }

    /// Writes the three fields into `headers` (gRPC metadata or HTTP headers).
    pub fn write(&self, headers: &mut HeaderMap) {
        let values = [u64::from(self.limit), u64::from(self.remaining), self.reset];
        for (name, value) in RATE_LIMIT_HEADERS.into_iter().zip(values) {
            headers.insert(name, http::HeaderValue::from(value));
        }
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
                .with_middleware::<StateInformationMiddleware>()
        });
        Limiter {
            quota: NonZeroU32::new(per_second).map(|rate| {
                Quota::per_second(rate)
                    .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
            }),
            limiter,
            clock: DefaultClock::default(),
            refusal,
        }
    }

    /// Takes one unit for `key` and answers the bucket's state after it (`None` when limiting
    /// is off), or says how long to wait.
    pub fn take(&self, key: &K) -> Result<Option<RateState>> {
        let Some(limiter) = &self.limiter else {
            return Ok(None);
        };
        let taken = limiter.check_key(key).map(|snapshot| {
            Some(RateState::of(
                snapshot.quota(),
                snapshot.remaining_burst_capacity(),
            ))
        });
        taken.map_err(|not_until| {
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
        assert!(
            matches!(KeyLimiter::new(0, 0).check("k"), Ok(None)),
            "0 disables"
        );
        assert_eq!(KeyLimiter::new(0, 0).exhausted(), None);
    }

    #[test]
    fn each_call_tells_what_is_left_and_when_the_bucket_is_full() {
        let limiter = KeyLimiter::new(2, 4);
        let state = |remaining, reset| {
            Some(RateState {
                limit: 4,
                remaining,
                reset,
            })
        };
        // 2 per second: each call taken is half a second until full, rounded up.
        assert_eq!(limiter.check("k").expect("1"), state(3, 1));
        assert_eq!(limiter.check("k").expect("2"), state(2, 1));
        assert_eq!(limiter.check("k").expect("3"), state(1, 2));
        assert_eq!(limiter.check("k").expect("4"), state(0, 2));
        assert!(limiter.check("k").is_err());
        assert_eq!(limiter.exhausted(), state(0, 2));
        let mut headers = HeaderMap::new();
        state(1, 2).expect("state").write(&mut headers);
        assert_eq!(headers["ratelimit-limit"], "4");
        assert_eq!(headers["ratelimit-remaining"], "1");
        assert_eq!(headers["ratelimit-reset"], "2");
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
