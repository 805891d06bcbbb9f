//! Change events for other services (issue 21): the feed's pages ([`Events::page`]) and the
//! watch streams ([`Events::watch`]), both read from the change log (`crate::model::change`).
//!
//! One task per process, the tail reader ([`follow_tail`]), reads each new stretch of the log
//! once, when the lists' follower hears `NOTIFY partner_changes` (its one LISTEN connection, see
//! `super::lists`) or at the latest every [`CATCH_UP`] ([`CATCH_UP_WITHOUT_LISTENER`] when the
//! lists' copy, and so its listener, is off), and publishes it as the [`Tail`] on a `watch`
//! channel. Every stream filters the tail in memory: a commit costs one read of the log however
//! many streams watch (and nothing while none does). A stream behind the tail (a replay, or one too slow to see every tail)
//! reads its pages through the pool instead, until it reaches the tail. Either way it moves by
//! sequence, which the log numbers in commit order, so it never skips nor repeats an event.
//!
//! Streams end with UNAVAILABLE when the server drains ([`Events::stop`]), so the drain never
//! waits for them, and with FAILED_PRECONDITION `EVENTS_EXPIRED` when they ask for events the
//! retention deleted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::grpc::validate::EventQuery;
use crate::model::change::{self, Event, EventFilter, EventPage};

/// The tail reader reads the log at least this often while the lists' follower wakes it.
pub const CATCH_UP: Duration = Duration::from_secs(1);

/// How often the tail reader reads the log when no listener wakes it (the lists' copy is off).
pub const CATCH_UP_WITHOUT_LISTENER: Duration = Duration::from_millis(50);

/// Most events the tail reader and a stream behind the tail read at once.
pub const READ_BATCH: i64 = 1000;

/// Longest a draining server waits to queue a stream's final UNAVAILABLE.
const SHUTDOWN_SEND: Duration = Duration::from_secs(1);

/// Messages a stream may have waiting for its client before it waits too.
const STREAM_BUFFER: usize = 64;

/// The newest stretch of the log the tail reader read: every event in `(after, through]`.
#[derive(Debug, Default)]
pub struct Tail {
    /// The stretch starts after this sequence.
    pub after: i64,
    /// Every event up to this sequence is in the stretch or before it.
    pub through: i64,
    /// The stretch's events, in sequence order.
    pub events: Vec<Event>,
}

/// What a watch stream sends.
#[derive(Debug, Clone)]
pub enum Watched {
    /// The next event.
    Event(Box<Event>),
    /// Nothing was sent for the heartbeat interval; every event up to `after` was sent or
    /// filtered out.
    Heartbeat {
        /// Where the stream stands.
        after: i64,
    },
}

/// The feed and the watch streams; cheap to clone.
#[derive(Clone)]
pub struct Events {
    db: Db,
    tail: watch::Receiver<Arc<Tail>>,
    stopping: Arc<watch::Sender<bool>>,
    heartbeat: Duration,
    watching: Arc<Watchers>,
}

/// The streams open: while there is none, the tail reader reads nothing; the first one wakes it.
#[derive(Default)]
struct Watchers {
    count: AtomicUsize,
    first: Notify,
}

/// Counts a stream in [`Watchers`] while it lives.
struct Watching(Arc<Watchers>);

impl Watching {
    fn new(watchers: &Arc<Watchers>) -> Watching {
        if watchers.count.fetch_add(1, Ordering::AcqRel) == 0 {
            watchers.first.notify_one();
        }
        Watching(watchers.clone())
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Events {
    /// Starts the tail reader on `db`, woken by `log_moved` (the lists' follower's
    /// notifications) when there is one. Idle streams send a heartbeat every `heartbeat`.
    pub fn start(db: Db, log_moved: Option<watch::Receiver<u64>>, heartbeat: Duration) -> Events {
        let (tail_tx, tail) = watch::channel(Arc::new(Tail::default()));
        let stopping = Arc::new(watch::Sender::new(false));
        let watching = Arc::new(Watchers::default());
        tokio::spawn(follow_tail(
            db.clone(),
            log_moved,
            tail_tx,
            stopping.subscribe(),
            watching.clone(),
        ));
        Events {
            db,
            tail,
            stopping,
            heartbeat: heartbeat.max(Duration::from_millis(10)),
            watching,
        }
    }

    /// One page of the feed; EVENTS_EXPIRED when `query.after` is older than the retention.
    pub async fn page(&self, query: &EventQuery) -> Result<EventPage> {
        read_page(&self.db, query.after, query.limit, query.filter.clone()).await
    }

    /// A watch stream from `query.after`: its messages, ending with an error (UNAVAILABLE when
    /// the server drains, EVENTS_EXPIRED) or when the receiver is dropped.
    pub fn watch(&self, query: EventQuery) -> mpsc::Receiver<Result<Watched>> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let stream = Stream {
            _watching: Watching::new(&self.watching),
            db: self.db.clone(),
            tail: self.tail.clone(),
            stopping: self.stopping.subscribe(),
            heartbeat: self.heartbeat,
            tx,
        };
        tokio::spawn(stream.run(query));
        rx
    }

    /// Watch streams open now.
    pub fn streams(&self) -> usize {
        self.watching.count.load(Ordering::Acquire)
    }

    /// Every event up to this sequence has been read by the tail reader (0 before its first
    /// read, and while no stream watches it keeps where it stopped).
    pub fn tail_sequence(&self) -> i64 {
        self.tail.borrow().through
    }

    /// Ends every watch stream (the server drains) and the tail reader.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }
}

/// A page through the pool, EVENTS_EXPIRED when the retention passed `after`.
async fn read_page(db: &Db, after: i64, limit: i64, filter: EventFilter) -> Result<EventPage> {
    let page = db
        .run(move |conn| Ok(change::events(conn, after, limit, &filter)?))
        .await?;
    if page.expired {
        return Err(Error::FailedPrecondition {
            reason: "EVENTS_EXPIRED",
            message: format!(
                "events after sequence {after} may have been deleted by the retention (through \
                 {}): resync and resume from a newer sequence",
                page.pruned_through
            ),
            violation: None,
        });
    }
    Ok(page)
}

/// The tail reader (see the module doc).
async fn follow_tail(
    db: Db,
    mut log_moved: Option<watch::Receiver<u64>>,
    tail: watch::Sender<Arc<Tail>>,
    mut stopping: watch::Receiver<bool>,
    watching: Arc<Watchers>,
) {
    let catch_up = if log_moved.is_some() {
        CATCH_UP
    } else {
        CATCH_UP_WITHOUT_LISTENER
    };
    let mut through: Option<i64> = None;
    loop {
        if *stopping.borrow() {
            return;
        }
        if watching.count.load(Ordering::Acquire) == 0 {
            // Nobody watches: nothing to read. The first stream reads its start from the
            // database itself; the tail starts again from the log's end.
            through = None;
        }
        // Read until a page is not full (a burst of commits is read in batches).
        while watching.count.load(Ordering::Acquire) > 0 {
            let after = match through {
                // Without a listener, a poll that finds the log where it was reads no page.
                Some(after) if log_moved.is_none() => {
                    match db.run(|conn| Ok(change::state(conn)?.last)).await {
                        Ok(last) if last > after => after,
                        _ => break,
                    }
                }
                Some(after) => after,
                None => match db.run(|conn| Ok(change::state(conn)?)).await {
                    Ok(log) => {
                        through = Some(log.last);
                        tail.send_replace(Arc::new(Tail {
                            after: log.last,
                            through: log.last,
                            events: Vec::new(),
                        }));
                        log.last
                    }
                    Err(_) => break,
                },
            };
            match db
                .run(move |conn| {
                    Ok(change::events(
                        conn,
                        after,
                        READ_BATCH,
                        &EventFilter::default(),
                    )?)
                })
                .await
            {
                Ok(page) if page.expired => {
                    // Behind the retention (the database was away for days): start again from
                    // the log's end; streams behind it find out when they read.
                    through = None;
                }
                Ok(page) => {
                    let full = page.events.len() as i64 >= READ_BATCH;
                    if page.next_after > after {
                        through = Some(page.next_after);
                        tail.send_replace(Arc::new(Tail {
                            after,
                            through: page.next_after,
                            events: page.events,
                        }));
                    }
                    if full {
                        continue;
                    }
                }
                Err(error) => {
                    tracing::debug!(error.message = %error, "change events: reading the log failed");
                }
            }
            break;
        }
        let moved = async {
            match log_moved.as_mut() {
                Some(moved) => {
                    if moved.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = moved => {}
            () = tokio::time::sleep(catch_up) => {}
            () = watching.first.notified() => {}
            _ = stopping.changed() => {}
        }
    }
}

/// One watch stream's task.
struct Stream {
    _watching: Watching,
    db: Db,
    tail: watch::Receiver<Arc<Tail>>,
    stopping: watch::Receiver<bool>,
    heartbeat: Duration,
    tx: mpsc::Sender<Result<Watched>>,
}

impl Stream {
    /// Sends `message`; false when the client is gone or the server drains.
    async fn send(&mut self, message: Result<Watched>) -> bool {
        tokio::select! {
            sent = self.tx.send(message) => sent.is_ok(),
            _ = self.stopping.wait_for(|stop| *stop) => false,
        }
    }

    /// Serves the stream; when the server drains, ends it with UNAVAILABLE (given a moment to
    /// reach a slow client's buffer).
    async fn run(mut self, query: EventQuery) {
        self.serve(query).await;
        if *self.stopping.borrow() {
            let unavailable = Err(Error::Unavailable("server shutting down"));
            let _ = tokio::time::timeout(SHUTDOWN_SEND, self.tx.send(unavailable)).await;
        }
    }

    async fn serve(&mut self, query: EventQuery) {
        let EventQuery {
            after: mut cursor,
            limit,
            filter,
        } = query;
        let mut idle_since = Instant::now();
        // The first read goes to the database whatever the tail holds: it checks the requested
        // sequence against the retention.
        let mut checked = false;
        loop {
            if *self.stopping.borrow() {
                return;
            }
            let tail = self.tail.borrow_and_update().clone();
            if cursor < tail.after || !checked {
                // Behind the tail: pages through the pool.
                match read_page(&self.db, cursor, limit, filter.clone()).await {
                    Ok(page) => {
                        checked = true;
                        for event in page.events {
                            if !self.send(Ok(Watched::Event(Box::new(event)))).await {
                                return;
                            }
                            idle_since = Instant::now();
                        }
                        if page.next_after > cursor {
                            cursor = page.next_after;
                            continue;
                        }
                    }
                    Err(error) => {
                        let _ = self.send(Err(error)).await;
                        return;
                    }
                }
            } else if cursor < tail.through {
                for event in tail.events.iter().filter(|e| e.sequence > cursor) {
                    if filter.matches(event.kind, event.partner_id) {
                        if !self.send(Ok(Watched::Event(Box::new(event.clone())))).await {
                            return;
                        }
                        idle_since = Instant::now();
                    }
                }
                cursor = tail.through;
                continue;
            }
            tokio::select! {
                changed = self.tail.changed() => {
                    if changed.is_err() {
                        let _ = self.send(Err(Error::Unavailable("server shutting down"))).await;
                        return;
                    }
                }
                _ = self.stopping.changed() => {}
                () = tokio::time::sleep_until(idle_since + self.heartbeat) => {
                    if !self.send(Ok(Watched::Heartbeat { after: cursor })).await {
                        return;
                    }
                    idle_since = Instant::now();
                }
                () = self.tx.closed() => return,
            }
        }
    }
}
