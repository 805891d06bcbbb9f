//! Group commit of click events. Handlers hand events to one writer task, which takes everything
//! queued (up to a batch limit), writes it in one transaction with the counter updates, and answers
//! each caller only after the commit. Throughput is then not bounded by one fsync per event.

use std::collections::{HashSet, VecDeque};

use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::click_event::{self, ClickOutcome, NewClickEvent};

struct Job {
    event: NewClickEvent,
    reply: oneshot::Sender<Result<ClickOutcome>>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone)]
pub struct ClickIngest {
    tx: mpsc::Sender<Job>,
}

impl ClickIngest {
    /// Starts the writer task. `max_batch` bounds one transaction, `queue` the waiting events.
    pub fn start(db: Db, max_batch: usize, queue: usize) -> ClickIngest {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(writer(db, rx, max_batch.max(1)));
        ClickIngest { tx }
    }

    /// Records one event; returns once its batch has committed (or failed).
    pub async fn record(&self, event: NewClickEvent) -> Result<ClickOutcome> {
        let (reply, answer) = oneshot::channel();
        self.tx
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
        let events: Vec<NewClickEvent> = batch.iter().map(|j| j.event.clone()).collect();
        let result = db
            .transaction(move |conn| Ok(click_event::insert_batch(conn, &events)?))
            .await;
        match result {
            Ok(outcomes) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                tracing::warn!(error.message = %err, events = batch.len(), "click batch failed");
                for job in batch {
                    let _ = job.reply.send(Err(err.clone()));
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
