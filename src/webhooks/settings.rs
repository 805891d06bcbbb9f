//! The webhook deliveries' settings (`--webhook-*`, flattened into `partners serve`'s flags by
//! `crate::config::ServerLimits`) and the retry schedule's syntax.

use std::time::Duration;

/// Settings of the webhook deliveries (`crate::webhooks`).
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookSettings {
    /// Delays between a delivery's attempts (the first is immediate), comma-separated with a unit
    /// each (ms, s, m, h); after the last the delivery has failed.
    #[arg(
        long = "webhook-retry-schedule",
        env = "PARTNERS_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h",
        value_parser = parse_schedule
    )]
    pub retry_schedule: Schedule,
    /// One attempt's time limit, in milliseconds.
    #[arg(
        long = "webhook-timeout-ms",
        env = "PARTNERS_WEBHOOK_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub timeout_ms: u64,
    /// Attempts in flight per endpoint, over all replicas.
    #[arg(
        long = "webhook-max-in-flight-per-endpoint",
        env = "PARTNERS_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT",
        default_value_t = 4
    )]
    pub per_endpoint: u32,
    /// An endpoint whose attempts have all failed for this many hours is paused.
    #[arg(
        long = "webhook-pause-after-hours",
        env = "PARTNERS_WEBHOOK_PAUSE_AFTER_HOURS",
        default_value_t = 120
    )]
    pub pause_after_hours: u64,
    /// How long a rotated secret still signs deliveries, in seconds.
    #[arg(
        long = "webhook-secret-overlap-secs",
        env = "PARTNERS_WEBHOOK_SECRET_OVERLAP_SECS",
        default_value_t = 86_400
    )]
    pub secret_overlap_secs: u64,
    /// Allow `http` endpoints and internal addresses (loopback, private networks): for tests and
    /// local development only.
    #[arg(
        long = "webhook-allow-insecure-targets",
        env = "PARTNERS_WEBHOOK_ALLOW_INSECURE_TARGETS"
    )]
    pub allow_insecure_targets: bool,
}

/// A retry schedule: the delays between attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

/// Parses `5s,5m,30m` (units ms, s, m, h) into a [`Schedule`].
pub fn parse_schedule(text: &str) -> std::result::Result<Schedule, String> {
    let mut delays = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let digits = part
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(part.len());
        let (number, unit) = part.split_at(digits);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{part:?}: a number and a unit (ms, s, m, h)"))?;
        delays.push(match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(format!("{part:?}: the unit must be ms, s, m or h")),
        });
    }
    if delays.len() > 20 {
        return Err("at most 20 retries".into());
    }
    Ok(Schedule(delays))
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            retry_schedule: parse_schedule("5s,5m,30m,2h,5h,10h").unwrap_or(Schedule(Vec::new())),
            timeout_ms: 10_000,
            per_endpoint: 4,
            pause_after_hours: 120,
            secret_overlap_secs: 86_400,
            allow_insecure_targets: false,
        }
    }
}

impl WebhookSettings {
    /// The dispatcher's configuration.
    pub fn dispatch(&self) -> crate::webhooks::WebhookConfig {
        crate::webhooks::WebhookConfig {
            schedule: self.retry_schedule.0.clone(),
            timeout: Duration::from_millis(self.timeout_ms.max(1)),
            per_endpoint: self.per_endpoint.max(1),
            pause_after: Duration::from_secs(self.pause_after_hours.saturating_mul(3600)),
            allow_insecure_targets: self.allow_insecure_targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedules_parse_with_units() {
        assert_eq!(
            parse_schedule("5s, 5m,2h,250ms"),
            Ok(Schedule(vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200),
                Duration::from_millis(250),
            ]))
        );
        assert_eq!(parse_schedule(""), Ok(Schedule(Vec::new())), "no retries");
        for bad in ["5", "5d", "s", "-1s", "1.5s"] {
            assert!(parse_schedule(bad).is_err(), "{bad}");
        }
    }
}
