//! GetPartner's reads. A read with includes is one hand-off to the database (the record, then one
//! query per relationship). The common read, without includes, is coalesced: the call hands its
//! key (partner, business, user) to a reader task instead of taking a blocking thread and a
//! connection each.
//! The reader runs at most `in_flight` statements at once; while they run, new keys queue, and the
//! next statement answers every key waiting (up to a batch limit) in one blocking hand-off and one
//! round trip. An idle service answers a lone call at once (a batch of one); a busy one pays the
//! hand-off, the checkout and the statement's fixed cost once per batch instead of once per call.
//! A read still waiting for a statement after the checkout timeout gets RESOURCE_EXHAUSTED, as a
//! call waiting for a connection does; one whose statement runs waits for its answer.
//!
//! BatchGetPartners' reads ([`PointReads::get_batch`]) are batches already: one hand-off, one
//! statement for the keys, then one query per relationship for the partners found.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tracing::{Instrument, Span};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::partner::{self, Includes, Loaded, PartnerKey, PartnerRecord, Scope};

/// Keys that must be waiting before a second statement starts while one runs: a smaller batch
/// costs the database more per key than it saves in waiting.
const MIN_BACKLOG: usize = 8;

struct Job {
    id: i64,
    scope: Scope,
    /// Set when the job joins a statement.
    taken: Arc<AtomicBool>,
    reply: oneshot::Sender<Result<Option<PartnerRecord>>>,
    /// The caller's span, with traces on (see [`batch_span`]).
    span: Span,
}

/// Handle to the reader task; cheap to clone.
#[derive(Clone)]
pub struct PointReads {
    db: Db,
    queue: mpsc::Sender<Job>,
    wait: std::time::Duration,
    /// Told when at least [`MIN_BACKLOG`] keys wait.
    backlog: Arc<Notify>,
}

impl PointReads {
    /// Starts the reader: at most `in_flight` statements at once, `max_batch` keys per statement,
    /// `queue` keys waiting.
    pub fn start(db: Db, in_flight: usize, max_batch: usize, queue: usize) -> PointReads {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let wait = db.checkout_timeout();
        let backlog = Arc::new(Notify::new());
        let limits = (in_flight.max(1), max_batch.max(1));
        tokio::spawn(reader(db.clone(), rx, limits, backlog.clone()));
        PointReads {
            db,
            queue: tx,
            wait,
            backlog,
        }
    }

    /// The live partner `id` as seen in `scope`, with the relationships in `includes`;
    /// NOT_FOUND when it is missing or deleted.
    pub async fn get(&self, id: i64, scope: Scope, includes: Includes) -> Result<Loaded> {
        if !includes.any() {
            // The common read: coalesced with the other plain reads of the moment.
            let record = self
                .find(id, scope)
                .await?
                .ok_or(Error::NotFound("partner"))?;
            return Ok(Loaded {
                records: vec![record],
                ..Loaded::default()
            });
        }
        self.db
            .run(move |conn| {
                let record = partner::find(conn, id, scope)?.ok_or(Error::NotFound("partner"))?;
                Ok(partner::with_includes(
                    conn,
                    vec![record],
                    scope.business_id,
                    includes,
                )?)
            })
            .await
    }

    /// The live partners named by `keys` as seen in `scope`, with the relationships in
    /// `includes`: the partners in key order, each once (at its first key), and for each key
    /// whether it found a live partner.
    pub async fn get_batch(
        &self,
        keys: Vec<PartnerKey>,
        scope: Scope,
        includes: Includes,
    ) -> Result<(Loaded, Vec<bool>)> {
        self.db
            .run(move |conn| {
                let mut found = partner::find_batch(conn, &keys, scope)?;
                found.sort_by_key(|f| f.slot);
                let mut hit = vec![false; keys.len()];
                let mut records: Vec<PartnerRecord> = Vec::with_capacity(found.len());
                for f in found {
                    if let Some(slot) = usize::try_from(f.slot - 1)
                        .ok()
                        .and_then(|i| hit.get_mut(i))
                    {
                        *slot = true;
                    }
                    if !records.iter().any(|r| r.id == f.record.id) {
                        records.push(f.record);
                    }
                }
                let loaded = partner::with_includes(conn, records, scope.business_id, includes)?;
                Ok((loaded, hit))
            })
            .await
    }

    /// The live partner `id` with the context columns of `scope`, or `None` (coalesced).
    async fn find(&self, id: i64, scope: Scope) -> Result<Option<PartnerRecord>> {
        let (reply, mut answer) = oneshot::channel();
        let taken = Arc::new(AtomicBool::new(false));
        let job = Job {
            id,
            scope,
            taken: taken.clone(),
            reply,
            span: crate::telemetry::span_for_blocking(),
        };
        self.queue.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::ResourceExhausted {
                message: "too many partner reads waiting",
                retry_after: std::time::Duration::from_secs(1),
            },
            mpsc::error::TrySendError::Closed(_) => Error::Unavailable("shutting down"),
        })?;
        if self.queue.max_capacity() - self.queue.capacity() >= MIN_BACKLOG {
            self.backlog.notify_one();
        }
        let answered = match tokio::time::timeout(self.wait, &mut answer).await {
            Ok(answered) => answered,
            Err(_) if !taken.load(Ordering::Acquire) => {
                // Dropping `answer` tells the reader not to read for this job.
                return Err(Error::ResourceExhausted {
                    message: "server busy: too many partner reads waiting",
                    retry_after: std::time::Duration::from_secs(1),
                });
            }
            Err(_) => answer.await,
        };
        answered.map_err(|_| Error::Unavailable("partner reader stopped"))?
    }
}

async fn reader(
    db: Db,
    mut rx: mpsc::Receiver<Job>,
    (in_flight, max_batch): (usize, usize),
    backlog: Arc<Notify>,
) {
    let turns = Arc::new(Semaphore::new(in_flight));
    let done = Arc::new(Notify::new());
    loop {
        // Take a turn first: while every turn is taken, keys pile up and form the next batch.
        let Ok(turn) = turns.clone().acquire_owned().await else {
            return;
        };
        // With a statement still running, start another only for a backlog worth it; otherwise
        // the keys wait for the running one to finish and go together.
        if in_flight - turns.available_permits() > 1 && rx.len() < MIN_BACKLOG {
            tokio::select! {
                () = done.notified() => {}
                () = backlog.notified() => {}
            }
        }
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A caller that gave up (deadline, cancellation) is not read for.
        batch.retain(|job| !job.reply.is_closed());
        for job in &batch {
            job.taken.store(true, Ordering::Release);
        }
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!("partners_read_batch_size").record(batch.len() as f64);
        let db = db.clone();
        let done = done.clone();
        let span = batch_span(&batch);
        tokio::spawn(
            async move {
                let _turn = turn;
                let _done = NotifyOnDrop(done);
                let keys: Vec<(i64, Scope)> = batch.iter().map(|job| (job.id, job.scope)).collect();
                let found = db
                    .run(move |conn| Ok(partner::find_many(conn, &keys)?))
                    .await;
                answer(batch, found);
            }
            .instrument(span),
        );
    }
}

/// The span of a batch's statement, with traces on: a child of the first caller's call, linked
/// to the other callers' (one statement answers them all).
fn batch_span(batch: &[Job]) -> Span {
    if !crate::telemetry::tracing_enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        parent: &batch[0].span,
        "point_reads",
        otel.name = "partner point reads",
        keys = batch.len(),
    );
    for job in &batch[1..] {
        span.follows_from(&job.span);
    }
    span
}

/// Tells the reader a statement has finished (also when its task unwinds).
struct NotifyOnDrop(Arc<Notify>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Sends each job its row (by 1-based slot), `None` when the statement had none, or the error.
fn answer(batch: Vec<Job>, found: Result<Vec<partner::Found>>) {
    match found {
        Ok(rows) => {
            let mut by_slot: HashMap<i64, PartnerRecord> =
                rows.into_iter().map(|f| (f.slot, f.record)).collect();
            for (slot, job) in (1..).zip(batch) {
                let _ = job.reply.send(Ok(by_slot.remove(&slot)));
            }
        }
        Err(err) => {
            for job in batch {
                let _ = job.reply.send(Err(err.clone()));
            }
        }
    }
}
