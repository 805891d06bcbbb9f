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
//! A job is one call's events for one writer: a single event (CreatePartnerClickEvent) or the
//! events of a BatchCreatePartnerClickEvents that belong to that writer's shard, so batch calls
//! and single calls share the same statements. A job is never split over two statements.
//!
//! The events that arrive while a writer's statement runs form its next batch, so under a busy
//! load batches grow by themselves. Clicks that arrive one a call at a steady pace do not pile up
//! like that: each would pay a statement of its own (~0.3 ms of Postgres, about five events'
//! worth), and 1,000 of them a second took a third of two cores from everything else. So a
//! writer holding fewer than [`LINGER_FROM`] events *lingers*: it waits up to the linger
//! (`--click-linger-ms`) for [`LINGER_FILL`] events before it writes. It does not linger over a
//! batch of a few events or more, as under callers that keep it busy (their events are written at
//! once), and a linger that gathered nothing (a lone caller waiting for its own answer; nobody else
//! sending) makes the writer write at once for [`LINGER_BACKOFF`], so a caller that sends one
//! click after another pays the linger about once a second, not on every click. (Waiting for as
//! many events as the previous batch held instead kept batches as small as they were; waiting
//! 1.5 ms on every batch left a third of the machine idle under 32 callers.)

use std::collections::{HashSet, VecDeque};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::model::click_event::{self, ClickOutcome, NewClickEvent};

/// Writes of one batch before a conflict (deadlock, serialization failure) reaches its callers.
const MAX_ATTEMPTS: u32 = 5;
/// A writer holding fewer events than this lingers for more (see the module doc).
const LINGER_FROM: usize = 3;
/// A linger ends once the writer holds this many events.
const LINGER_FILL: usize = 16;
/// How long a writer writes at once after a linger that gathered nothing.
const LINGER_BACKOFF: Duration = Duration::from_secs(1);

struct Job {
    events: Vec<NewClickEvent>,
    reply: oneshot::Sender<Result<Vec<ClickOutcome>>>,
    /// The job's places in its writer's queue (one per event), given back when it is written.
    _queued: OwnedSemaphorePermit,
}

/// One writer's queue: the jobs, and the events they hold (bounded).
struct Shard {
    jobs: mpsc::UnboundedSender<Job>,
    room: Arc<Semaphore>,
    capacity: usize,
}

/// Handle to the writer tasks; cheap to clone.
#[derive(Clone)]
pub struct ClickIngest {
    shards: Arc<Vec<Shard>>,
}

impl ClickIngest {
    /// Starts `writers` writer tasks, each lingering up to `linger` for more events when it holds
    /// few (zero: never). `max_batch` bounds one transaction, `queue` the events waiting for each
    /// writer.
    pub fn start(
        db: Db,
        writers: usize,
        linger: Duration,
        max_batch: usize,
        queue: usize,
    ) -> ClickIngest {
        let shards = (0..writers.max(1))
            .map(|_| {
                let (jobs, rx) = mpsc::unbounded_channel();
                tokio::spawn(writer(db.clone(), rx, linger, max_batch.max(1)));
                Shard {
                    jobs,
                    room: Arc::new(Semaphore::new(queue.max(1))),
                    capacity: queue.max(1),
                }
            })
            .collect();
        ClickIngest {
            shards: Arc::new(shards),
        }
    }

    /// Events waiting for a writer (all shards).
    pub fn queued(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.capacity - s.room.available_permits())
            .sum()
    }

    /// Records one event; returns once its batch has committed (or failed).
    pub async fn record(&self, event: NewClickEvent) -> Result<ClickOutcome> {
        let shard = self.shard(event.partner_id);
        let outcomes = self.submit(shard, vec![event])?.await;
        outcomes?
            .pop()
            .ok_or(Error::Internal("click writer answered no event".into()))
    }

    /// Records many events (their idempotency keys distinct per principal): one job per writer
    /// whose shard holds some of them, submitted together before any is awaited, so that a full
    /// queue refuses the call before anything is written. Returns each event's outcome in input
    /// order; a writer's failure is the outcome of its events only.
    pub async fn record_many(
        &self,
        events: Vec<NewClickEvent>,
    ) -> Result<Vec<Result<ClickOutcome>>> {
        let mut by_shard: Vec<(Vec<usize>, Vec<NewClickEvent>)> =
            (0..self.shards.len()).map(|_| Default::default()).collect();
        let count = events.len();
        for (index, event) in events.into_iter().enumerate() {
            let shard = &mut by_shard[self.shard(event.partner_id)];
            shard.0.push(index);
            shard.1.push(event);
        }
        let mut pending = Vec::new();
        for (shard, (indexes, events)) in by_shard.into_iter().enumerate() {
            if !events.is_empty() {
                pending.push((indexes, self.submit(shard, events)?));
            }
        }
        let mut outcomes: Vec<Result<ClickOutcome>> = (0..count)
            .map(|_| Err(Error::Internal("click writer answered no event".into())))
            .collect();
        for (indexes, answer) in pending {
            match answer.await {
                Ok(answered) => {
                    for (index, outcome) in indexes.into_iter().zip(answered) {
                        outcomes[index] = Ok(outcome);
                    }
                }
                Err(err) => {
                    for index in indexes {
                        outcomes[index] = Err(err.clone());
                    }
                }
            }
        }
        Ok(outcomes)
    }

    fn shard(&self, partner_id: i64) -> usize {
        partner_id.unsigned_abs() as usize % self.shards.len()
    }

    /// Queues a job on `shard`; the future answers once its batch has committed (or failed).
    fn submit(
        &self,
        shard: usize,
        events: Vec<NewClickEvent>,
    ) -> Result<impl Future<Output = Result<Vec<ClickOutcome>>> + use<>> {
        let (reply, answer) = oneshot::channel();
        let shard = &self.shards[shard];
        let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
        let queued = shard
            .room
            .clone()
            .try_acquire_many_owned(count)
            .map_err(|_| Error::ResourceExhausted {
                message: "too many click events waiting to be written",
                retry_after: std::time::Duration::from_secs(1),
            })?;
        shard
            .jobs
            .send(Job {
                events,
                reply,
                _queued: queued,
            })
            .map_err(|_| Error::Unavailable("shutting down"))?;
        Ok(async move {
            answer
                .await
                .map_err(|_| Error::Unavailable("click writer stopped"))?
        })
    }
}

async fn writer(db: Db, mut rx: mpsc::UnboundedReceiver<Job>, linger: Duration, max_batch: usize) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    let mut lingers = Lingers::new(linger);
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
        lingers.gather(&mut waiting, &mut rx).await;
        let batch = take_batch(&mut waiting, max_batch);
        if batch.is_empty() {
            continue;
        }
        let mut events = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        for job in batch {
            replies.push((job.events.len(), job.reply));
            events.extend(job.events);
        }
        metrics::histogram!("partners_click_batch_size").record(events.len() as f64);
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
                let mut outcomes = outcomes.into_iter();
                for (count, reply) in replies {
                    let _ = reply.send(Ok(outcomes.by_ref().take(count).collect()));
                }
            }
            Err(err) => {
                tracing::warn!(error.message = %err, events = events.len(), "click batch failed");
                for (_, reply) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
    }
}

/// When a writer lingers (see the module doc), and what its lingers gathered.
struct Lingers {
    window: Duration,
    /// After a linger that gathered nothing: no linger before this.
    quiet_until: Option<Instant>,
}

impl Lingers {
    fn new(window: Duration) -> Lingers {
        Lingers {
            window,
            quiet_until: None,
        }
    }

    /// Whether a writer holding `held` events lingers now.
    fn wanted(&self, held: usize, now: Instant) -> bool {
        !self.window.is_zero()
            && held < LINGER_FROM
            && self.quiet_until.is_none_or(|until| now >= until)
    }

    /// Lingers if wanted: waits until `waiting` holds [`LINGER_FILL`] events or the window ends.
    async fn gather(&mut self, waiting: &mut VecDeque<Job>, rx: &mut mpsc::UnboundedReceiver<Job>) {
        let now = Instant::now();
        let mut held: usize = waiting.iter().map(|job| job.events.len()).sum();
        if !self.wanted(held, now) {
            return;
        }
        let before = held;
        let deadline = now + self.window;
        while held < LINGER_FILL {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => {
                    held += job.events.len();
                    waiting.push_back(job);
                }
                // Shutting down (the next receive ends the writer) or the window is over.
                Ok(None) | Err(_) => break,
            }
        }
        let gathered = held > before;
        metrics::counter!(
            "partners_click_lingers_total",
            "outcome" => if gathered { "gathered" } else { "nothing" }
        )
        .increment(1);
        self.quiet_until = (!gathered).then(|| Instant::now() + LINGER_BACKOFF);
    }
}

/// Takes jobs whose callers still wait, up to `max` events (a job larger than `max` goes alone),
/// with at most one event per idempotency key: a job repeating a key of the batch waits for the
/// next one, where it meets the stored first event.
fn take_batch(waiting: &mut VecDeque<Job>, max: usize) -> Vec<Job> {
    let mut batch = Vec::new();
    let mut events = 0;
    let mut keys = HashSet::new();
    let mut deferred = VecDeque::new();
    while let Some(job) = waiting.pop_front() {
        if job.reply.is_closed() {
            continue; // the caller gave up (deadline): nothing was acknowledged, write nothing
        }
        let job_keys: Vec<(String, String)> = job
            .events
            .iter()
            .filter_map(|e| Some((e.principal.clone(), e.idempotency_key.clone()?)))
            .collect();
        let duplicate = job_keys.iter().any(|k| keys.contains(k));
        let full = events > 0 && events + job.events.len() > max;
        if duplicate || full {
            deferred.push_back(job);
            continue;
        }
        keys.extend(job_keys);
        events += job.events.len();
        batch.push(job);
    }
    *waiting = deferred;
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventType;

    fn job() -> Job {
        let (reply, _) = oneshot::channel();
        let room = Arc::new(Semaphore::new(1));
        Job {
            events: vec![NewClickEvent {
                partner_id: 1,
                user_id: None,
                business_id: None,
                event_type: EventType::Website,
                principal: "test".into(),
                idempotency_key: None,
                fingerprint: String::new(),
            }],
            reply,
            _queued: room.try_acquire_owned().expect("room"),
        }
    }

    #[tokio::test]
    async fn a_linger_that_gathers_nothing_pauses_lingering() {
        let (_jobs, mut rx) = mpsc::unbounded_channel();
        let mut lingers = Lingers::new(Duration::from_millis(5));
        let mut waiting = VecDeque::from([job()]);
        assert!(lingers.wanted(1, Instant::now()));
        lingers.gather(&mut waiting, &mut rx).await;
        assert_eq!(waiting.len(), 1);
        let now = Instant::now();
        assert!(
            !lingers.wanted(1, now),
            "a lone caller is not made to wait again"
        );
        assert!(lingers.wanted(1, now + LINGER_BACKOFF));
    }

    #[tokio::test]
    async fn a_linger_ends_once_it_holds_enough_events() {
        let (jobs, mut rx) = mpsc::unbounded_channel();
        for _ in 0..LINGER_FILL + 4 {
            jobs.send(job()).expect("send");
        }
        // A window that would outlast the test: the linger must end by filling up.
        let mut lingers = Lingers::new(Duration::from_secs(3600));
        let mut waiting = VecDeque::from([job()]);
        lingers.gather(&mut waiting, &mut rx).await;
        assert_eq!(waiting.len(), LINGER_FILL);
        assert_eq!(rx.len(), 5, "the rest waits for the next batch");
        let now = Instant::now();
        assert!(
            lingers.wanted(LINGER_FROM - 1, now),
            "it gathered: lingering goes on"
        );
        assert!(
            !lingers.wanted(LINGER_FROM, now),
            "no linger over a larger batch"
        );
        assert!(
            !Lingers::new(Duration::ZERO).wanted(1, now),
            "zero turns lingering off"
        );
    }
}
