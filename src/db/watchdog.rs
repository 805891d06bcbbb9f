//! Deadlines for blocking database calls: a call that a hung upstream would hold forever is
//! abandoned for good by shutting its connection's socket down from outside the blocked thread.
//!
//! libpq waits for an answer without a deadline of its own. `statement_timeout` is enforced by
//! the server, keepalives and `tcp_user_timeout` by the kernel, and none of them fires when the
//! peer acknowledges every byte but never answers (a pooler or proxy that lost its upstream
//! without telling its clients). The thread then waits forever, holding its pooled connection,
//! and the runtime waits for that thread at exit. So every blocking call is [`Watchdog::arm`]ed
//! with a budget; a thread of ours shuts the socket down once the budget is spent (or at once, on
//! [`Watchdog::cut_all`], when the health probe finds the database gone). libpq's read then ends,
//! the call fails UNAVAILABLE, the connection is dropped and the thread is free: repeated hangs do
//! not pile up threads or descriptors.
//!
//! Diesel does not expose libpq's connection (`PQsocket`), so [`establish`] finds the socket when
//! the connection is made: connects are serialised, and the socket that appears in
//! `/proc/self/fd` during one, connected to the database's port, is its socket. Its inode is kept
//! and checked again before a cut, so a reused descriptor number is never touched; and a socket is
//! only cut while its call is armed, that is while its connection is alive. A connect is watched
//! too: libpq's `connect_timeout` bounds the handshake, but Diesel's session statements that follow
//! it inside `establish` have no deadline, so a connect that outlives its budget has the sockets it
//! opened cut. Where `/proc` is missing no socket is found and calls keep only the async side's
//! deadline (see `Db::run`).

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use diesel::ConnectionResult;
use diesel::pg::PgConnection;
use diesel::prelude::*;

/// How often the watchdog looks for spent budgets.
const TICK: Duration = Duration::from_millis(100);

/// The socket of one database connection, as found when it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    fd: RawFd,
    inode: u64,
}

impl Socket {
    /// The descriptor, open while its connection lives (to wait on it, never to close it).
    pub fn fd(&self) -> RawFd {
        self.fd
    }
}

/// Watches the calls of one database handle (one `Db` and its clones): [`Watchdog::cut_all`]
/// reaches only those, so several services in one process (the tests) do not cut each other.
///
/// It also keeps the handle's connection generation: [`Watchdog::cut_all`] starts a new one, and
/// connections made before it are dropped at their next use ([`Watchdog::is_current`]), since an
/// idle connection may be hung as well and only a call on it would find out, a budget later.
#[derive(Debug, Clone)]
pub struct Watchdog {
    owner: u64,
    generation: Arc<AtomicU64>,
}

/// A call being watched; dropping it (the call ended) disarms the watchdog.
#[must_use = "the call is watched only while this guard lives"]
pub struct Armed {
    id: Option<u64>,
}

struct Entry {
    owner: u64,
    socket: Socket,
    deadline: Instant,
}

#[derive(Default)]
struct Registry {
    armed: HashMap<u64, Entry>,
    next_id: u64,
}

/// The connect in progress (connects are serialised): what was open before it, where it leads,
/// and when it is abandoned.
struct Connecting {
    before: Vec<Socket>,
    port: u16,
    deadline: Instant,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
static CONNECTING: Mutex<()> = Mutex::new(());
static IN_PROGRESS: Mutex<Option<Connecting>> = Mutex::new(None);
static OWNERS: AtomicU64 = AtomicU64::new(0);
static TICKER: OnceLock<()> = OnceLock::new();

fn registry() -> MutexGuard<'static, Option<Registry>> {
    // A panic while holding the lock leaves the map consistent (inserts and removes only).
    REGISTRY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for Watchdog {
    fn default() -> Self {
        Self::new()
    }
}

impl Watchdog {
    /// A watchdog for a new database handle.
    pub fn new() -> Watchdog {
        TICKER.get_or_init(|| {
            if let Err(error) = std::thread::Builder::new()
                .name("partners-watchdog".into())
                .spawn(tick_forever)
            {
                tracing::error!(error.message = %error, "cannot start the database watchdog");
            }
        });
        Watchdog {
            owner: OWNERS.fetch_add(1, Ordering::Relaxed),
            generation: Arc::default(),
        }
    }

    /// The current connection generation (record it when a connection is made).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether a connection made in `generation` may still be used.
    pub fn is_current(&self, generation: u64) -> bool {
        generation == self.generation()
    }

    /// Watches a call on the connection whose socket is `socket`: once `budget` is spent, the
    /// socket is shut down. A connection whose socket is unknown is not watched.
    pub fn arm(&self, socket: Option<Socket>, budget: Duration) -> Armed {
        let Some(socket) = socket else {
            return Armed { id: None };
        };
        let mut guard = registry();
        let registry = guard.get_or_insert_with(Registry::default);
        let id = registry.next_id;
        registry.next_id += 1;
        registry.armed.insert(
            id,
            Entry {
                owner: self.owner,
                socket,
                deadline: Instant::now() + budget,
            },
        );
        Armed { id: Some(id) }
    }

    /// Cuts every call of this handle now (the database is gone: their callers were answered
    /// UNAVAILABLE already) and starts a new connection generation. Returns how many calls.
    pub fn cut_all(&self) -> usize {
        self.generation.fetch_add(1, Ordering::AcqRel);
        cut_where(|entry| entry.owner == self.owner)
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if let Some(id) = self.id
            && let Some(registry) = registry().as_mut()
        {
            registry.armed.remove(&id);
        }
    }
}

fn tick_forever() {
    loop {
        std::thread::sleep(TICK);
        let now = Instant::now();
        let cut = cut_where(|entry| entry.deadline <= now) + cut_connect(now);
        if cut > 0 {
            tracing::warn!(
                connections = cut,
                "database calls past their deadline abandoned: connections cut"
            );
        }
    }
}

/// Shuts down the sockets of the armed calls matching `pred` and disarms them. Runs under the
/// registry's lock, so no call can end (and its connection close) meanwhile.
fn cut_where(pred: impl Fn(&Entry) -> bool) -> usize {
    let mut guard = registry();
    let Some(registry) = guard.as_mut() else {
        return 0;
    };
    let due: Vec<u64> = registry
        .armed
        .iter()
        .filter(|(_, entry)| pred(entry))
        .map(|(id, _)| *id)
        .collect();
    for id in &due {
        if let Some(entry) = registry.armed.remove(id) {
            shut_down(entry.socket);
        }
    }
    due.len()
}

fn in_progress() -> MutexGuard<'static, Option<Connecting>> {
    IN_PROGRESS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Cuts the sockets of the connect in progress if it outlived its budget.
fn cut_connect(now: Instant) -> usize {
    let mut guard = in_progress();
    let Some(connecting) = guard.as_ref().filter(|c| c.deadline <= now) else {
        return 0;
    };
    let opened: Vec<Socket> = sockets()
        .into_iter()
        .filter(|s| !connecting.before.contains(s) && leads_to(s.fd, connecting.port))
        .collect();
    for socket in &opened {
        shut_down(*socket);
    }
    *guard = None;
    opened.len()
}

fn shut_down(socket: Socket) {
    // The descriptor number may only be touched while it is still this socket.
    if socket_inode(socket.fd) != Some(socket.inode) {
        return;
    }
    // SAFETY: the descriptor is open (its inode was just read) and stays open while the
    // registry's lock is held: the connection owning it closes only after its call disarmed.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.fd) };
    let _ = socket2::SockRef::from(&fd).shutdown(std::net::Shutdown::Both);
}

/// Connects like `PgConnection::establish` and finds the connection's socket (see the module
/// doc). Connects are serialised for that; they are rare (pooled connections live long). A
/// connect still running a second after the URL's `connect_timeout` is cut.
pub fn establish(url: &str) -> ConnectionResult<(PgConnection, Option<Socket>)> {
    let _one_at_a_time = CONNECTING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = sockets();
    let (port, connect_timeout) = endpoint(url);
    *in_progress() = Some(Connecting {
        before: before.clone(),
        port,
        deadline: Instant::now() + connect_timeout + Duration::from_secs(1),
    });
    let conn = PgConnection::establish(url);
    *in_progress() = None;
    let conn = conn?;
    let new: Vec<Socket> = sockets()
        .into_iter()
        .filter(|s| !before.contains(s))
        .collect();
    let to_database: Vec<Socket> = new
        .iter()
        .copied()
        .filter(|s| leads_to(s.fd, port))
        .collect();
    let socket = match (to_database.as_slice(), new.as_slice()) {
        ([one], _) | ([], [one]) => Some(*one),
        _ => None,
    };
    Ok((conn, socket))
}

/// The sockets open in this process.
fn sockets() -> Vec<Socket> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let fd: RawFd = entry.ok()?.file_name().to_str()?.parse().ok()?;
        Some(Socket {
            fd,
            inode: socket_inode(fd)?,
        })
    })
    .collect()
}

/// The inode of the socket open as `fd`, if `fd` is a socket.
fn socket_inode(fd: RawFd) -> Option<u64> {
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    target
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Whether the socket `fd` is connected to the database: a Unix socket, or TCP to `port`.
fn leads_to(fd: RawFd, port: u16) -> bool {
    // SAFETY: `fd` was listed as open a moment ago by this thread, which holds `CONNECTING`; the
    // borrow only reads the peer address (a closed or reused number gives an error or a
    // different peer, never harm).
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let Ok(peer) = socket2::SockRef::from(&fd).peer_addr() else {
        return false;
    };
    peer.domain() == socket2::Domain::UNIX || peer.as_socket().is_some_and(|a| a.port() == port)
}

/// The database port named by a connection URL (libpq's default 5432) and its `connect_timeout`
/// (10 s when not given).
fn endpoint(url: &str) -> (u16, Duration) {
    let parsed = url::Url::parse(url).ok();
    let param = |name: &str| {
        parsed.as_ref().and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        })
    };
    let port = param("port")
        .and_then(|p| u16::try_from(p).ok())
        .or(parsed.as_ref().and_then(|u| u.port()))
        .unwrap_or(5432);
    let connect_timeout = Duration::from_secs(param("connect_timeout").unwrap_or(10));
    (port, connect_timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_and_connect_timeout_come_from_the_url() {
        let secs = Duration::from_secs;
        assert_eq!(endpoint("postgres://h/db"), (5432, secs(10)));
        assert_eq!(
            endpoint("postgres://h:6432/db?connect_timeout=3"),
            (6432, secs(3))
        );
        assert_eq!(endpoint("postgres://h:6432/db?port=7000"), (7000, secs(10)));
    }

    #[test]
    fn a_listed_socket_is_found_and_a_file_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
        let found = sockets();
        assert!(found.iter().any(|s| s.fd == fd), "{found:?}");
        assert!(leads_to(fd, port));
        assert!(!leads_to(fd, port.wrapping_add(1)));
        let file = std::fs::File::open("/proc/self/status").expect("open");
        assert_eq!(socket_inode(std::os::fd::AsRawFd::as_raw_fd(&file)), None);
    }

    #[test]
    fn a_spent_budget_shuts_the_socket_down() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let _server_side = listener.accept().expect("accept");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
        let socket = Socket {
            fd,
            inode: socket_inode(fd).expect("a socket"),
        };
        let watchdog = Watchdog::new();
        let _armed = watchdog.arm(Some(socket), Duration::from_millis(200));
        let started = Instant::now();
        // Nothing is ever sent: only the watchdog can end this read.
        let read = client.read(&mut [0u8; 1]).expect("read");
        assert_eq!(read, 0, "end of file after the cut");
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
