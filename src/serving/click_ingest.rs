//! Group commit of click events. Handlers hand events to writer tasks, each of which takes
//! everything queued for it (up to a batch limit), writes it with the counter updates in one
//! statement (its own transaction), and answers each caller only after the commit. Throughput is
//! then not bounded by one fsync per event. Events are sharded over the writers by partner id,
//! so two batches of one process never update the same partner row while their commits
//! overlap. Batches of other replicas do: the statement takes its locks in one fixed order
//! (advisory locks on its partners, sorted, then keys in order; `model::click_event::INSERT_BATCH`),
//! so they wait for each other but never deadlock; a conflict Postgres reports all the same is
//! written again here and reaches callers only after five attempts.
//!
//! A writer does not wait for more events before it writes: the events that arrive while its
//! statement runs form the next batch, so batches grow with the load by themselves. (A fixed
//! gather window of 1.5 ms left a third of the machine idle under 32 callers.)

use std::collections::{HashSet, VecDeque};

use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::click_event::{self, ClickOutcome, NewClickEvent};

/// Writes of one batch before a conflict (deadlock, serialization failure) reaches its callers.
const MAX_ATTEMPTS: u32 = 5;

struct Job {
    event: NewClickEvent,
    reply: oneshot::Sender<Result<ClickOutcome>>,
}

/// Handle to the writer tasks; cheap to clone.
#[derive(Clone)]
pub struct ClickIngest {
    shards: std::sync::Arc<Vec<mpsc::Sender<Job>>>,
}

impl ClickIngest {
    /// Starts `writers` writer tasks. `max_batch` bounds one transaction, `queue` the events
    /// waiting for each writer.
    pub fn start(db: Db, writers: usize, max_batch: usize, queue: usize) -> ClickIngest {
        let shards = (0..writers.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(queue.max(1));
                tokio::spawn(writer(db.clone(), rx, max_batch.max(1)));
                tx
            })
            .collect();
        ClickIngest {
            shards: std::sync::Arc::new(shards),
        }
    }

    /// Events waiting for a writer (all shards).
    pub fn queued(&self) -> usize {
        self.shards
            .iter()
            .map(|tx| tx.max_capacity() - tx.capacity())
            .sum()
    }

    /// Records one event; returns once its batch has committed (or failed).
    pub async fn record(&self, event: NewClickEvent) -> Result<ClickOutcome> {
        let (reply, answer) = oneshot::channel();
        let shard = event.partner_id.unsigned_abs() as usize % self.shards.len();
        self.shards[shard]
            .try_send(Job { event, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::ResourceExhausted {
                    message: "too many click events waiting to be written",
                    retry_after: std::time::Duration::from_secs(1),
                },
                mpsc::error::TrySendError::Closed(_) => Error::Unavailable("shutting down"),
            })?;
        answer
            .await
            .map_err(|_| Error::Unavailable("click writer stopped"))?
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        // Everything that queued while the previous batch was written goes into this one.
        while waiting.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        let batch = take_batch(&mut waiting, max_batch);
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!("partners_click_batch_size").record(batch.len() as f64);
        let (events, replies): (Vec<NewClickEvent>, Vec<_>) =
            batch.into_iter().map(|j| (j.event, j.reply)).unzip();
        let events = std::sync::Arc::new(events);
        // The batch statement locks in a fixed order, so a deadlock or serialization failure is
        // not expected; should Postgres report one, the batch is simply written again.
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let events = events.clone();
            // No BEGIN/COMMIT around it: the batch is one statement, atomic on its own, and its
            // answer arrives after its commit (two round trips fewer per batch).
            let result = db
                .run(move |conn| Ok(click_event::insert_batch(conn, &events)?))
                .await;
            match result {
                Err(Error::Unavailable(crate::error::CONFLICT)) if attempts < MAX_ATTEMPTS => {
                    tracing::warn!(
                        attempt = attempts,
                        "click batch conflicted: writing it again"
                    );
                    continue;
                }
                other => break other,
            }
        };
        match result {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                tracing::warn!(error.message = %err, events = replies.len(), "click batch failed");
                for reply in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}

/// Takes up to `max` jobs whose callers still wait, with at most one job per idempotency key
/// (a repeated key waits for the next batch, where it meets the stored first event).
fn take_batch(waiting: &mut VecDeque<Job>, max: usize) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut keys = HashSet::new();
    let mut deferred = VecDeque::new();
    while let Some(job) = waiting.pop_front() {
        if job.reply.is_closed() {
            continue; // the caller gave up (deadline): nothing was acknowledged, write nothing
        }
        let duplicate = job
            .event
            .idempotency_key
            .as_ref()
            .is_some_and(|k| !keys.insert((job.event.principal.clone(), k.clone())));
        if duplicate || batch.len() >= max {
            deferred.push_back(job);
        } else {
            batch.push(job);
        }
    }
    *waiting = deferred;
    batch
}
