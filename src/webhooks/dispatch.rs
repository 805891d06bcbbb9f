//! The dispatcher, one task per replica: every [`POLL`], and as soon as one of its attempts ends,
//! it looks (one statement) whether the change log moved past the fan-out's position or an attempt
//! is due; turns new changes into
//! deliveries ([`webhook::fan_out`]), leases due attempts ([`webhook::claim`]) and sends each as a
//! signed POST, recording its outcome ([`webhook::record`]). Every state is in Postgres, so a
//! replica that dies mid-attempt leaves a lease that runs out, and another replica (or this one,
//! restarted) sends the attempt again: at least once.
//!
//! An attempt: `POST url` with the event's JSON, `webhook-id` (the same on every attempt),
//! `webhook-timestamp` and `webhook-signature` (`crate::webhooks::signature`), at most
//! [`WebhookConfig::timeout`], no redirects followed, at most [`MAX_RESPONSE_BYTES`] of the
//! answer read. 2xx is delivered; a timeout, a connection error, 429 or 5xx is tried again after
//! the schedule's next delay (with ±10% jitter; a longer `Retry-After` wins), until the schedule
//! ends; any other answer fails the delivery at once.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Bool;
use tokio::sync::{Notify, Semaphore};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::change::Event;
use crate::model::webhook::{self, Attempt, Outcome};

/// How often a replica looks for work.
pub const POLL: Duration = Duration::from_millis(100);
/// Most attempts one replica runs at once.
const MAX_IN_FLIGHT: usize = 64;
/// Changes turned into deliveries per pass.
const FAN_OUT_BATCH: i64 = 500;
/// Most of an answer's body read (the rest is not waited for).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// A lease outlasts the attempt's timeout by this much.
const LEASE_MARGIN: Duration = Duration::from_secs(2);

/// The dispatcher's settings (`--webhook-*`).
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Delays before each attempt after the first; the delivery fails after the last.
    pub schedule: Vec<Duration>,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// Attempts in flight per endpoint, over all replicas.
    pub per_endpoint: u32,
    /// An endpoint failing this long is paused.
    pub pause_after: Duration,
    /// Whether `http` and internal addresses are allowed (tests, local development).
    pub allow_insecure_targets: bool,
}

/// Starts the dispatcher on `db`.
pub fn start(db: Db, config: WebhookConfig) -> Result<()> {
    let mut client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .user_agent(concat!("partners-webhooks/", env!("CARGO_PKG_VERSION")));
    if !config.allow_insecure_targets {
        client = client
            .https_only(true)
            .dns_resolver(Arc::new(super::targets::PublicResolver));
    }
    let client = client
        .build()
        .map_err(|e| Error::Internal(format!("webhook client: {e}")))?;
    tokio::spawn(run(db, Arc::new(config), client));
    Ok(())
}

#[derive(QueryableByName)]
struct Work {
    #[diesel(sql_type = Bool)]
    changes: bool,
    #[diesel(sql_type = Bool)]
    due: bool,
}

async fn run(db: Db, config: Arc<WebhookConfig>, client: reqwest::Client) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let ended = Arc::new(Notify::new());
    // Logged when passes start failing (a database outage) and when they work again, not on
    // every pass.
    let mut failing = false;
    loop {
        match pass(&db, &config, &client, &in_flight, &ended).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("webhooks: dispatching again");
            }
            Ok(()) => {}
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error.message = %err, "webhooks: dispatch stopped");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = ended.notified() => {}
        }
    }
}

/// One look for work: fan-out, then the due attempts this replica has room for.
async fn pass(
    db: &Db,
    config: &Arc<WebhookConfig>,
    client: &reqwest::Client,
    in_flight: &Arc<Semaphore>,
    ended: &Arc<Notify>,
) -> Result<()> {
    let work = db
        .run(|conn| {
            Ok(diesel::sql_query(
                "SELECT coalesce((SELECT max(sequence) FROM partner_changes), 0) \
                   > (SELECT last_sequence FROM webhook_dispatch_state) AS changes, \
                 EXISTS (SELECT 1 FROM webhook_deliveries \
                   WHERE state = 'pending' AND next_attempt_at <= now()) AS due",
            )
            .get_result::<Work>(conn)?)
        })
        .await?;
    if work.changes {
        while db
            .run(|conn| Ok(webhook::fan_out(conn, FAN_OUT_BATCH, &payload)?))
            .await?
            == FAN_OUT_BATCH as usize
        {}
    }
    if !work.due && !work.changes {
        return Ok(());
    }
    let room = in_flight.available_permits();
    if room == 0 {
        return Ok(());
    }
    let lease = i64::try_from((config.timeout + LEASE_MARGIN).as_secs()).unwrap_or(i64::MAX);
    let per_endpoint = i64::from(config.per_endpoint.max(1));
    let attempts = db
        .run(move |conn| Ok(webhook::claim(conn, room as i64, per_endpoint, lease)?))
        .await?;
    for attempt in attempts {
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            break;
        };
        let (db, config, client, ended) =
            (db.clone(), config.clone(), client.clone(), ended.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let outcome = send(&client, &config, &attempt).await;
            let pause_after = i64::try_from(config.pause_after.as_secs()).unwrap_or(i64::MAX);
            let (endpoint, id) = (attempt.endpoint_id, attempt.id);
            let recorded = db
                .run(move |conn| Ok(webhook::record(conn, endpoint, id, &outcome, pause_after)?))
                .await;
            if let Err(err) = recorded {
                // The lease runs out and the attempt is made again.
                tracing::warn!(error.message = %err, webhook.endpoint = endpoint, "webhooks: outcome not recorded");
            }
            // The endpoint has room again, and the partner's next event may be due.
            ended.notify_one();
        });
    }
    Ok(())
}

/// Sends one attempt and says how it ended.
async fn send(client: &reqwest::Client, config: &WebhookConfig, attempt: &Attempt) -> Outcome {
    let timestamp = chrono::Utc::now().timestamp();
    let mut secrets = vec![attempt.secret.as_str()];
    secrets.extend(attempt.previous_secret.as_deref());
    let body = attempt.payload.as_bytes();
    let signature = match super::signature::header(&secrets, &attempt.message_id, timestamp, body) {
        Ok(signature) => signature,
        Err(err) => {
            return Outcome::Failed {
                status: None,
                error: err.to_string(),
            };
        }
    };
    let sent = client
        .post(&attempt.url)
        .header("content-type", "application/json")
        .header("webhook-id", &attempt.message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(attempt.payload.clone())
        .send()
        .await;
    let retry = |status: Option<i32>, error: String, retry_after: Option<Duration>| match next_delay(
        &config.schedule,
        attempt.attempts,
        retry_after,
    ) {
        Some(delay) => Outcome::Retry {
            status,
            error,
            delay_secs: delay.as_secs_f64(),
        },
        None => Outcome::Failed { status, error },
    };
    let mut response = match sent {
        Ok(response) => response,
        Err(err) => {
            let kind = if err.is_timeout() {
                "timed out"
            } else if err.is_connect() {
                "connection failed"
            } else {
                "request failed"
            };
            return retry(None, kind.to_owned(), None);
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // Read at most MAX_RESPONSE_BYTES of the answer, then let the connection go.
    let mut read = 0usize;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            _ => break,
        }
    }
    let code = i32::from(status.as_u16());
    if status.is_success() {
        Outcome::Delivered { status: code }
    } else if status.as_u16() == 429 || status.is_server_error() {
        retry(Some(code), format!("answered {code}"), retry_after)
    } else {
        Outcome::Failed {
            status: Some(code),
            error: format!("answered {code}"),
        }
    }
}

/// The delay before the attempt after attempt number `made` (1-based), or `None` when the
/// schedule is spent: the schedule's delay with ±10% jitter, or `retry_after` when longer (at
/// most a day).
fn next_delay(schedule: &[Duration], made: i32, retry_after: Option<Duration>) -> Option<Duration> {
    let index = usize::try_from(made.max(1) - 1).ok()?;
    let planned = *schedule.get(index)?;
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    let jitter = 0.9 + 0.2 * f64::from(byte[0]) / 255.0;
    let delay = planned.mul_f64(jitter);
    Some(match retry_after {
        Some(asked) if asked > delay => asked.min(Duration::from_secs(86_400)),
        _ => delay,
    })
}

/// The body of an event's deliveries: `{"type", "timestamp", "sequence", "data"}`, with the
/// event's JSON:API `partner_events` resource in `data` (as the feed shows it: a partner event
/// holds the partner as it was after the change).
fn payload(event: &Event) -> serde_json::Value {
    let timestamp = event
        .occurred_at
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let kind = event.kind.as_str();
    let data =
        crate::gateway::document::event_resource_json(&crate::grpc::convert::event(event.clone()));
    serde_json::json!({
        "type": kind,
        "timestamp": timestamp,
        "sequence": event.sequence,
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_schedule_with_jitter_then_end() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(300)];
        let first = next_delay(&schedule, 1, None).expect("second attempt");
        assert!((4.5..=5.5).contains(&first.as_secs_f64()), "{first:?}");
        let second = next_delay(&schedule, 2, None).expect("third attempt");
        assert!(
            (270.0..=330.0).contains(&second.as_secs_f64()),
            "{second:?}"
        );
        assert_eq!(next_delay(&schedule, 3, None), None, "schedule spent");
        let asked = next_delay(&schedule, 1, Some(Duration::from_secs(60))).expect("retry");
        assert_eq!(asked, Duration::from_secs(60), "a longer Retry-After wins");
        let capped = next_delay(&schedule, 1, Some(Duration::from_secs(1 << 30))).expect("retry");
        assert_eq!(capped, Duration::from_secs(86_400));
    }
}
