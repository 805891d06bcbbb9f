//! Keeps the lists' copy and the preference cache current by following the change log
//! (migration 12, `crate::model::change`): on every replica, a thread of its own listens for
//! `NOTIFY partner_changes` and, on each, reads the changes after the copy's sequence and the
//! partners they changed in one statement (one snapshot, one round trip: `partner::followed`) and
//! lays them over the copy ([`View::apply`]): one partner's row, never a full reload for
//! a routine write. A preference change (one business's cached set is read again), a backlog or a
//! full load take a read-only repeatable-read transaction instead. It also reads every
//! [`CATCH_UP`] and whenever a list found the copy behind (its [`Doorbell`]), so a lost
//! notification (its connection cut) only delays. Between looks it sleeps in `poll(2)` on its
//! connection's socket and the doorbell: no wakeups while nothing happens. Each notification
//! also wakes the change events' tail reader (`crate::serving::events`), so the process keeps one
//! listener however many streams watch. A notification also marks the copy stale until the
//! follower is current again (`Inner::stale`), a hint the lists use to skip a try that would fail.
//!
//! A full load happens only at start, when a write skipped the triggers (`reset_version`), when
//! the copy fell behind the log's retention, or when a batch is larger than [`MAX_BATCH`].
//! Exactness does not depend on any of this: every statement built from the copy is guarded by
//! its search version (see [`super`]).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

use super::Inner;
use super::copy::Snapshot;
use super::delta::View;
use crate::db::Db;
use crate::db::watchdog::{self, Socket, Watchdog};
use crate::error::Result;
use crate::model::change::{self, Change, ChangeKind, LogState};
use crate::model::partner;

/// The follower reads the log at least this often (woken sooner by notifications).
pub const CATCH_UP: Duration = Duration::from_secs(1);

/// How often the follower looks for notifications when its connection's socket is unknown
/// (`/proc` missing, see `crate::db::watchdog`): it cannot wait on it, so it polls the connection
/// (a non-blocking read, a few µs).
const LISTEN_POLL: Duration = Duration::from_millis(1);

/// Most changes applied as one batch; a longer backlog is cheaper to load in full.
pub const MAX_BATCH: i64 = 20_000;

/// Shortest time between two full loads (a reset signal repeated in a burst loads once).
const MIN_LOAD_INTERVAL: Duration = Duration::from_secs(1);

/// How long the follower waits before it counts the partners again, when there were more than
/// the copy may hold (`--search-index-max-partners`): meanwhile lists are served by SQL alone.
pub const TOO_BIG_PAUSE: Duration = Duration::from_secs(60);

/// What one look at the log did.
enum Step {
    /// Nothing new.
    Current,
    /// Changes laid over the copy: the new version, how many changes, the age of the oldest.
    Applied(View, usize, Duration),
    /// A full load, and why.
    Loaded(Box<Snapshot>, &'static str),
    /// More live partners than the copy may hold.
    TooBig(i64),
    /// A full load is due but the last one was less than [`MIN_LOAD_INTERVAL`] ago.
    LoadLater,
}

/// Wakes the follower: lists ring it when they found the copy behind. One end of a socket pair,
/// the follower waits on the other; the follower also wakes when this end closes (the lists are
/// gone) and then ends. Own code: a pair of sockets and `poll(2)` is all the follower's blocking
/// thread needs, and the async runtimes' reactors cannot wait on libpq's socket for it.
pub(super) struct Doorbell(UnixStream);

impl Doorbell {
    /// The bell and the end the follower waits on.
    pub(super) fn pair() -> std::io::Result<(Doorbell, UnixStream)> {
        let (bell, door) = UnixStream::pair()?;
        bell.set_nonblocking(true)?;
        door.set_nonblocking(true)?;
        Ok((Doorbell(bell), door))
    }

    /// Wakes the follower (a full pair already will wake it: a failed write is no loss).
    pub(super) fn ring(&self) {
        let _ = (&self.0).write(&[1]);
    }
}

/// Starts following the log on a thread of its own, with a connection of its own (LISTEN
/// and the reads), for as long as the lists exist: a change is laid over the copy without
/// waiting for a runtime thread, a pool turn or a connection checkout. `door` is the follower's
/// end of [`Inner`]'s doorbell (`None`: it could not be made, the follower polls instead).
pub(super) fn start(db: &Db, inner: &Arc<Inner>, door: Option<UnixStream>) {
    let url = db.url().to_owned();
    let watchdog = db.watchdog().clone();
    let weak = Arc::downgrade(inner);
    std::thread::Builder::new()
        .name("partners-follow".into())
        .spawn(move || follow(&url, &watchdog, &weak, door.as_ref()))
        .expect("spawn the change-log follower");
}

/// Sleeps until a notification may be waiting on `socket`, the doorbell `door` rang (or its bell
/// is gone), or `timeout` passed; without the socket or the doorbell to wait on, at most
/// [`LISTEN_POLL`]. Returns whether the socket hung up or failed (the connection is lost: no
/// point waiting on it again).
fn wait(socket: Option<RawFd>, door: Option<&UnixStream>, timeout: Duration) -> bool {
    let timeout = match (socket, door) {
        (Some(_), Some(_)) => timeout,
        _ => timeout.min(LISTEN_POLL),
    };
    let mut fds: Vec<libc::pollfd> = [door.map(AsRawFd::as_raw_fd), socket]
        .into_iter()
        .flatten()
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Rounded up: a wait of 0.4 ms must not become a busy loop of zero-timeout polls.
    let ms = libc::c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a valid array of `fds.len()` entries for the whole call; the descriptors
    // are open (the doorbell's end is borrowed; the socket's connection is owned by the caller,
    // which is blocked here); poll(2) only reads them. An error (EINTR) just ends the wait.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if let Some(mut door) = door {
        let mut rung = [0u8; 64];
        while matches!(door.read(&mut rung), Ok(1..)) {}
    }
    let lost = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
    socket.is_some_and(|fd| fds.iter().any(|p| p.fd == fd && p.revents & lost != 0))
}

/// The follower's statement timeout: a full load of a million partners takes seconds; deltas
/// take milliseconds.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one look may go unanswered before the watchdog cuts the follower's connection (a
/// hung upstream; an outage the probe sees cuts it at once).
const LOOK_BUDGET: Duration = Duration::from_secs(65);

fn connect(
    url: &str,
    watchdog: &Watchdog,
) -> std::result::Result<(PgConnection, Option<Socket>, u64), String> {
    let generation = watchdog.generation();
    let (mut conn, socket) = watchdog::establish(url).map_err(|e| e.to_string())?;
    let _armed = watchdog.arm(socket, LOOK_BUDGET);
    // JIT off as on the pool's connections (`crate::db::pool`): the look's one statement is
    // estimated for a backlog of `MAX_BATCH` changes, above `jit_above_cost`, and compiling it
    // took ~0.5 s on every look.
    conn.batch_execute(&format!(
        "SET statement_timeout = {}; SET jit = off; LISTEN partner_changes",
        STATEMENT_TIMEOUT.as_millis()
    ))
    .map_err(|e| e.to_string())?;
    Ok((conn, socket, generation))
}

/// The follower's loop: looks at the log when notified, when a list found the copy behind, and
/// every [`CATCH_UP`]; otherwise waits ([`wait`]).
fn follow(url: &str, watchdog: &Watchdog, inner: &Weak<Inner>, door: Option<&UnixStream>) {
    let mut conn: Option<(PgConnection, Option<Socket>, u64)> = None;
    let mut reconnect_pause = Duration::from_millis(100);
    let mut last_load: Option<Instant> = None;
    let mut next_look = Instant::now();
    // Until when notifications are ignored: after an error, a full load not yet due, or a
    // directory too large for the copy (each look would count every partner again).
    let mut hold_until: Option<Instant> = None;
    loop {
        let Some(lists) = inner.upgrade() else {
            return;
        };
        if conn
            .as_ref()
            .is_some_and(|(_, _, generation)| !watchdog.is_current(*generation))
        {
            // Made before an outage: it may hang without ever saying so.
            conn = None;
        }
        let Some((c, socket, _)) = conn.as_mut() else {
            match connect(url, watchdog) {
                Ok(c) => {
                    conn = Some(c);
                    reconnect_pause = Duration::from_millis(100);
                    // Notifications sent meanwhile are lost: look now (unless holding off).
                    if hold_until.is_none() {
                        next_look = next_look.min(Instant::now());
                    }
                }
                Err(error) => {
                    tracing::debug!(error.message = %error, "change-log follower: cannot connect");
                    lists.attempts.send_modify(|n| *n += 1);
                    drop(lists);
                    std::thread::sleep(reconnect_pause);
                    reconnect_pause = (reconnect_pause * 2).min(Duration::from_secs(5));
                }
            }
            continue;
        };
        let mut woken = lists.wanted.swap(false, Ordering::AcqRel);
        let mut broken = false;
        let mut notified = false;
        for notification in c.notifications_iter() {
            match notification {
                Ok(_) => notified = true,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        if notified {
            woken = true;
            lists.stale.store(true, Ordering::Relaxed);
            // The change events' tail reader reads the log at once (it has no listener).
            lists.log_moved.send_modify(|n| *n = n.wrapping_add(1));
        }
        if broken {
            tracing::debug!("change-log follower: connection lost, reconnecting");
            conn = None;
            continue;
        }
        let now = Instant::now();
        let held = hold_until.is_some_and(|until| now < until);
        if !((woken && !held) || now >= next_look) {
            let socket = socket.map(|s| s.fd());
            drop(lists);
            if wait(socket, door, next_look - now) {
                tracing::debug!("change-log follower: connection hung up, reconnecting");
                conn = None;
            }
            continue;
        }
        let may_load = last_load.is_none_or(|at| at.elapsed() >= MIN_LOAD_INTERVAL);
        let limit = i64::try_from(lists.max_partners).unwrap_or(i64::MAX);
        let started = Instant::now();
        next_look = started + CATCH_UP;
        hold_until = None;
        let armed = watchdog.arm(*socket, LOOK_BUDGET);
        let looked = look(c, lists.view(), &lists, may_load, limit);
        drop(armed);
        match looked {
            Ok(Step::Current) => {
                lists.stats.lag_changes.store(0, Ordering::Relaxed);
                lists.stale.store(false, Ordering::Relaxed);
            }
            Ok(Step::LoadLater) => {
                next_look = last_load.map_or(started, |at| at + MIN_LOAD_INTERVAL);
                hold_until = Some(next_look);
            }
            Ok(Step::Applied(view, _, _)) if view.len() as u64 > lists.max_partners => {
                tracing::warn!(
                    partners = view.len(),
                    limit,
                    "search index: more partners than it may hold, lists use SQL"
                );
                lists.clear();
                next_look = started + TOO_BIG_PAUSE;
                hold_until = Some(next_look);
            }
            Ok(Step::Applied(view, changes, age)) => {
                let stats = &lists.stats;
                stats.deltas.fetch_add(1, Ordering::Relaxed);
                stats.changes.fetch_add(changes as u64, Ordering::Relaxed);
                stats
                    .lag_ms
                    .store(age.as_millis() as u64, Ordering::Relaxed);
                let view = if view.due_for_compaction() {
                    stats.compactions.fetch_add(1, Ordering::Relaxed);
                    compact(view)
                } else {
                    view
                };
                lists.install(view);
            }
            Ok(Step::Loaded(snapshot, why)) => {
                last_load = Some(Instant::now());
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(
                    partners = snapshot.len(),
                    version = snapshot.version,
                    sequence = snapshot.sequence,
                    mib = format!("{:.1}", snapshot.heap_bytes() as f64 / 1048576.0),
                    ms,
                    reason = why,
                    "search index loaded"
                );
                lists.stats.loads.fetch_add(1, Ordering::Relaxed);
                lists.stats.load_ms_last.store(ms, Ordering::Relaxed);
                lists.install(View::new(*snapshot));
            }
            Ok(Step::TooBig(live)) => {
                tracing::warn!(
                    partners = live,
                    limit,
                    "search index: more partners than it may hold, lists use SQL"
                );
                lists.clear();
                next_look = started + TOO_BIG_PAUSE;
                hold_until = Some(next_look);
            }
            Err(err) => {
                tracing::warn!(error.message = %err, "search index: following the change log failed");
                // Start over on a fresh connection (a broken one fails every statement).
                conn = None;
                next_look = started + MIN_LOAD_INTERVAL;
                hold_until = Some(next_look);
            }
        }
        lists.attempts.send_modify(|n| *n += 1);
    }
}

/// Rebuilds the copy in memory (the old version serves meanwhile); keeps the changes laid over
/// if that fails.
fn compact(view: View) -> View {
    let started = Instant::now();
    match view.compacted() {
        Ok(compacted) => {
            tracing::info!(
                partners = compacted.len(),
                ms = started.elapsed().as_millis() as u64,
                "search index compacted"
            );
            compacted
        }
        Err(error) => {
            tracing::warn!(error.message = %error, "search index: compaction failed, changes stay laid over");
            view
        }
    }
}

/// One look at the log on `conn`, in one read-only snapshot. A routine look is one statement
/// (`partner::followed`: the log's state, the changes after the copy and the partners they
/// changed; one round trip where a transaction takes five, so lists find the copy behind for
/// less time after each write). A look that needs more than that statement reads (a full load,
/// a backlog, a business's preference set to read again) is made in a transaction.
fn look(
    conn: &mut PgConnection,
    held: Option<Arc<View>>,
    inner: &Inner,
    may_load: bool,
    limit: i64,
) -> Result<Step> {
    if let Some(view) = &held {
        let followed = partner::followed(conn, view.sequence, MAX_BATCH + 1)?;
        if !needs_transaction(view, &followed) {
            return advance(inner, view, followed);
        }
    }
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(|conn| {
            let Some(view) = held else {
                return load_unless_held(conn, may_load, limit, "start");
            };
            let followed = partner::followed(conn, view.sequence, MAX_BATCH + 1)?;
            if let Some(reason) = reload_reason(&view, &followed.state) {
                return load_unless_held(conn, may_load, limit, reason);
            }
            if followed.changes.len() as i64 > MAX_BATCH {
                return load(conn, limit, "backlog");
            }
            for c in &followed.changes {
                if c.kind == ChangeKind::PreferenceUpdated
                    && let Some(business) = c.business_id
                {
                    inner.preferences.refresh(conn, business)?;
                }
            }
            advance(inner, &view, followed)
        })
}

/// Whether a look at `view` needs more than `followed` read (see [`look`]).
fn needs_transaction(view: &View, followed: &partner::Followed) -> bool {
    reload_reason(view, &followed.state).is_some()
        || followed.changes.len() as i64 > MAX_BATCH
        || followed
            .changes
            .iter()
            .any(|c| c.kind == ChangeKind::PreferenceUpdated)
}

/// The copy at `view` moved to where `followed` found the log.
fn advance(inner: &Inner, view: &View, followed: partner::Followed) -> Result<Step> {
    let log = followed.state;
    if log.last == view.sequence && log.search_version == view.version {
        return Ok(Step::Current);
    }
    note_lag(inner, view, &log);
    let changes = followed.changes;
    let partners = change::partners_named(&changes);
    let next = if partners.is_empty() {
        view.moved_to(log.search_version, log.last)
    } else {
        view.apply(&partners, followed.placed, log.search_version, log.last)?
    };
    Ok(Step::Applied(next, changes.len(), oldest_age(&changes)))
}

/// Records how many changes the copy at `view` is behind the log.
fn note_lag(inner: &Inner, view: &View, log: &LogState) {
    let behind = u64::try_from(log.last - view.sequence).unwrap_or(0);
    inner.stats.lag_changes.store(behind, Ordering::Relaxed);
}

/// How long ago the oldest of `changes` occurred.
fn oldest_age(changes: &[Change]) -> Duration {
    changes.first().map_or(Duration::ZERO, |c| {
        (Utc::now() - c.occurred_at).to_std().unwrap_or_default()
    })
}

/// Why the copy at `view` must be loaded in full, if it must.
fn reload_reason(view: &View, log: &LogState) -> Option<&'static str> {
    if log.reset_version > view.version {
        Some("a write skipped the change log")
    } else if view.sequence < log.pruned_through {
        Some("behind the change log's retention")
    } else {
        None
    }
}

/// A full load for `why`, unless the last one was too recent ([`Step::LoadLater`]).
fn load_unless_held(
    conn: &mut PgConnection,
    may_load: bool,
    limit: i64,
    why: &'static str,
) -> Result<Step> {
    if !may_load {
        return Ok(Step::LoadLater);
    }
    load(conn, limit, why)
}

fn load(conn: &mut PgConnection, limit: i64, why: &'static str) -> Result<Step> {
    let live = partner::live_count(conn)?;
    if live > limit {
        return Ok(Step::TooBig(live));
    }
    Ok(Step::Loaded(Box::new(Snapshot::load_in(conn)?), why))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How long `wait` took, up to `timeout` (the socket did not hang up).
    fn timed(socket: Option<RawFd>, door: Option<&UnixStream>, timeout: Duration) -> Duration {
        let started = Instant::now();
        assert!(!wait(socket, door, timeout));
        started.elapsed()
    }

    #[test]
    fn the_follower_sleeps_until_its_socket_or_doorbell_wakes_it() {
        let (bell, door) = Doorbell::pair().unwrap();
        // A socket pair stands in for the database connection's socket.
        let (mut server, client) = UnixStream::pair().unwrap();
        let socket = Some(client.as_raw_fd());
        let long = Duration::from_secs(10);

        // Nothing happens: the whole timeout passes (no wakeup every millisecond).
        let idle = timed(socket, Some(&door), Duration::from_millis(50));
        assert!(idle >= Duration::from_millis(50), "{idle:?}");

        // A ring wakes it at once, and is used up by that wake.
        bell.ring();
        bell.ring();
        assert!(timed(socket, Some(&door), long) < Duration::from_secs(5));
        let after = timed(socket, Some(&door), Duration::from_millis(50));
        assert!(after >= Duration::from_millis(50), "{after:?}");

        // Bytes on the socket (a notification) wake it; they are left for libpq to read.
        server.write_all(b"N").unwrap();
        assert!(timed(socket, Some(&door), long) < Duration::from_secs(5));
        assert!(timed(socket, Some(&door), long) < Duration::from_secs(5));

        // The lists gone (the bell dropped): it wakes, to end. (A fresh, quiet socket; its
        // other end stays open, so only the doorbell can wake it.)
        let (server, client) = UnixStream::pair().unwrap();
        drop(bell);
        assert!(timed(Some(client.as_raw_fd()), Some(&door), long) < Duration::from_secs(5));
        assert!(!wait(Some(client.as_raw_fd()), Some(&door), Duration::ZERO));

        // The connection's other end gone: it wakes and says so.
        drop(server);
        let (_bell, door) = Doorbell::pair().unwrap();
        assert!(wait(Some(client.as_raw_fd()), Some(&door), long));
    }

    #[test]
    fn without_a_socket_or_doorbell_the_follower_polls() {
        let (_bell, door) = Doorbell::pair().unwrap();
        let long = Duration::from_secs(10);
        assert!(timed(None, Some(&door), long) < Duration::from_secs(1));
        let (_server, client) = UnixStream::pair().unwrap();
        assert!(timed(Some(client.as_raw_fd()), None, long) < Duration::from_secs(1));
    }
}
