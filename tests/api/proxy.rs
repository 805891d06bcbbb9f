//! A TCP proxy between the service and Postgres, to cut the database in tests: `Refuse` closes
//! the listener and every connection (connects are refused); `Blackhole` keeps connections open
//! but forwards nothing (packets swallowed, no reset). `Pass` restores normal service and drops
//! whatever was held. `Hang` is a pooler that lost its upstream without telling its clients: it
//! accepts connections and reads every byte sent (the client's kernel sees them acknowledged)
//! but never answers, and the connections it hung stay hung after `Pass`, until their client
//! closes them; only new connections pass again.

use std::net::SocketAddr;

use tokio::io::copy;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Refuse,
    Blackhole,
    Hang,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (mode, _) = watch::channel(Mode::Pass);
        let task = tokio::spawn(accept_loop(listener, addr, upstream, mode.clone()));
        Proxy { addr, mode, task }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
) {
    let mut changes = mode.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((client, _)) = accepted {
                    tokio::spawn(handle(client, upstream, mode.subscribe()));
                }
            }
            _ = until(&mut changes, |m| *m == Mode::Refuse) => {
                drop(listener);
                until(&mut changes, |m| *m != Mode::Refuse).await;
                listener = loop {
                    match TcpListener::bind(addr).await {
                        Ok(l) => break l,
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                    }
                };
            }
        }
    }
}

async fn handle(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Refuse => return,
        Mode::Blackhole => {
            let _held = client;
            until(&mut mode, |m| *m != Mode::Blackhole).await;
            return;
        }
        Mode::Hang => {
            let (mut client_read, _client_write) = client.into_split();
            absorb(&mut client_read).await;
            return;
        }
        Mode::Pass => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let outcome = tokio::select! {
        _ = copy(&mut client_read, &mut server_write) => None,
        _ = copy(&mut server_read, &mut client_write) => None,
        now = until(&mut mode, |m| *m != Mode::Pass) => Some(now),
    };
    match outcome {
        Some(Mode::Blackhole) => {
            // Hold every socket, forward nothing, until the network "comes back"; then drop them.
            until(&mut mode, |m| *m != Mode::Blackhole).await;
        }
        Some(Mode::Hang) => {
            // The upstream is gone; the client is never told.
            drop((server_read, server_write));
            absorb(&mut client_read).await;
        }
        _ => {}
    }
}

/// Reads and discards everything the client sends until it closes the connection.
async fn absorb(client: &mut tokio::net::tcp::OwnedReadHalf) {
    let mut sink = tokio::io::sink();
    let _ = copy(client, &mut sink).await;
}

/// Waits until the mode satisfies `pred` and returns it (a closed channel counts as `Pass`).
async fn until(rx: &mut watch::Receiver<Mode>, pred: impl FnMut(&Mode) -> bool) -> Mode {
    rx.wait_for(pred).await.map(|m| *m).unwrap_or(Mode::Pass)
}
