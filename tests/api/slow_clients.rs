//! Slow and hostile connections: clients sending a request header one byte at a time (or nothing)
//! are closed at the REST gateway's header timeout and do not hold up other callers; the
//! gateway's connection limit makes extra clients wait for a free slot; a shutdown does not wait
//! for slow clients; an HTTP/2 rapid-reset burst (HEADERS then RST_STREAM, in a tight loop) on
//! the gRPC port does not stall a normal caller, and a client making the server reset streams
//! ("MadeYouReset") is cut off.

use std::time::{Duration, Instant};

use partners::config::ServerLimits;
use partners::grpc::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A request header a slow client sends one byte at a time.
const SLOW_HEADER: &[u8] =
    b"GET /api/v1/partners/1 HTTP/1.1\r\nHost: slow.example\r\nAccept: */*\r\nX-Slow: yes\r\n\r\n";

/// Opens a connection that sends `SLOW_HEADER` one byte every `pause` (nothing at all when
/// `silent`) and returns how long after connecting the server closed it (`None`: still open at
/// `give_up`).
async fn slow_client(
    addr: std::net::SocketAddr,
    pause: Duration,
    silent: bool,
    give_up: Duration,
) -> Option<Duration> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    slow_on(stream, Instant::now(), pause, silent, give_up).await
}

/// [`slow_client`] on a connection opened at `connected`.
async fn slow_on(
    mut stream: TcpStream,
    connected: Instant,
    pause: Duration,
    silent: bool,
    give_up: Duration,
) -> Option<Duration> {
    let mut sent = 0;
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                // An answer (a 408 or an error page) is fine; the close is what counts.
                Ok(n) if n > 0 => continue,
                _ => return Some(connected.elapsed()),
            },
            () = tokio::time::sleep(pause) => {
                if connected.elapsed() > give_up {
                    return None;
                }
                if !silent && sent < SLOW_HEADER.len() {
                    if stream.write_all(&SLOW_HEADER[sent..=sent]).await.is_err() {
                        return Some(connected.elapsed());
                    }
                    sent += 1;
                }
            }
        }
    }
}

/// Latency figures of a list of call durations.
fn figures(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    format!(
        "{} calls, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        samples.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// GET one partner over REST until `until`; the durations of the calls (each must succeed).
async fn rest_calls(t: &TestApp, partner: i64, until: Instant) -> Vec<Duration> {
    let http = reqwest::Client::new();
    let mut samples = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        let response = http
            .get(format!("{}/api/v1/partners/{partner}", t.http()))
            .bearer_auth(&t.world.user_key_a)
            .send()
            .await
            .expect("a normal caller is answered");
        assert_eq!(response.status().as_u16(), 200);
        samples.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_at_the_header_timeout_and_others_are_served() {
    const SLOW: usize = 800;
    const SILENT: usize = 200;
    let timeout = Duration::from_millis(1500);
    let t = TestApp::start_with(ServerLimits {
        http_header_timeout_ms: timeout.as_millis() as u64,
        ..ServerLimits::default()
    })
    .await;
    let partner = t.simple_partner("Patient", &["pos"]).await.id;
    let addr = t.app.as_ref().expect("running").http_addr.expect("gateway");

    // All connected first: the property is about connections already open, not a connect burst.
    let mut clients = Vec::new();
    for i in 0..SLOW + SILENT {
        let stream = TcpStream::connect(addr).await.expect("connect");
        // One byte every 200 ms: the header would take ~16 s to arrive.
        clients.push(tokio::spawn(slow_on(
            stream,
            Instant::now(),
            Duration::from_millis(200),
            i >= SLOW,
            Duration::from_secs(10),
        )));
    }
    let opened = Instant::now();
    let mut during = rest_calls(&t, partner, opened + timeout.mul_f32(1.5)).await;

    let mut closed = Vec::new();
    for client in clients {
        closed.push(client.await.expect("slow client"));
    }
    let still_open = closed.iter().filter(|c| c.is_none()).count();
    let mut closed: Vec<Duration> = closed.into_iter().flatten().collect();
    closed.sort();
    eprintln!(
        "slow clients: {SLOW} sending a header one byte per 200 ms + {SILENT} silent, header \
         timeout {timeout:?}: closed after {:.2?} (first) .. {:.2?} (last), {still_open} still \
         open; a normal REST caller meanwhile: {}",
        closed.first().copied().unwrap_or_default(),
        closed.last().copied().unwrap_or_default(),
        figures(&mut during)
    );
    assert_eq!(still_open, 0, "slow connections left open");
    assert!(
        closed[0] >= timeout.mul_f32(0.8),
        "closed before the header timeout: {:?}",
        closed[0]
    );
    assert!(
        *closed.last().expect("closed") < timeout * 3,
        "closed long after the header timeout: {closed:?}"
    );
    assert!(during.len() >= 10, "the normal caller was served");
    assert!(
        *during.last().expect("calls") < Duration::from_secs(1),
        "a normal call waited behind the slow clients: {during:?}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_wait_for_a_free_slot() {
    let timeout = Duration::from_millis(1000);
    let t = TestApp::start_with(ServerLimits {
        http_header_timeout_ms: timeout.as_millis() as u64,
        http_max_connections: 20,
        ..ServerLimits::default()
    })
    .await;
    let addr = t.app.as_ref().expect("running").http_addr.expect("gateway");
    // Twenty silent connections take every slot until the header timeout closes them.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::spawn(slow_client(
            addr,
            Duration::from_millis(50),
            true,
            Duration::from_secs(10),
        )));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let status = reqwest::get(format!("{}/healthz", t.http()))
        .await
        .expect("served once a slot is free")
        .status();
    let waited = started.elapsed();
    assert_eq!(status.as_u16(), 200);
    for client in silent {
        assert!(client.await.expect("silent client").is_some());
    }
    eprintln!("connection limit 20: the 21st connection was served after {waited:.2?}");
    assert!(
        waited >= timeout.mul_f32(0.6),
        "served at once although every slot was taken: {waited:?}"
    );
    assert!(waited < timeout * 3, "waited too long: {waited:?}");
    // With the slots free again, a caller is served at once.
    let started = Instant::now();
    reqwest::get(format!("{}/healthz", t.http()))
        .await
        .expect("healthz");
    assert!(started.elapsed() < Duration::from_millis(500));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_does_not_wait_for_slow_clients() {
    // A header timeout far beyond the drain deadline: only closing them at once ends in time.
    let t = TestApp::start_with(ServerLimits {
        http_header_timeout_ms: 60_000,
        drain_timeout_ms: 3_000,
        ..ServerLimits::default()
    })
    .await;
    let addr = t.app.as_ref().expect("running").http_addr.expect("gateway");
    let mut clients = Vec::new();
    for i in 0..50 {
        clients.push(tokio::spawn(slow_client(
            addr,
            Duration::from_millis(100),
            i % 2 == 0,
            Duration::from_secs(20),
        )));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    t.stop().await;
    let took = started.elapsed();
    for client in clients {
        assert!(client.await.expect("slow client").is_some(), "left open");
    }
    eprintln!("shutdown with 50 slow clients connected: {took:.2?}");
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}

/// What the rapid-reset client did.
#[derive(Debug, Default)]
struct Burst {
    streams: u64,
    connections: u64,
    /// Connections the server ended (GOAWAY or reset) while we were still sending.
    ended_by_server: u64,
    /// Of those, ended with GOAWAY `ENHANCE_YOUR_CALM` (h2's reset-flood limit).
    calm_down: u64,
}

/// Opens HTTP/2 connections to `addr` and, on each, sends GetPartner HEADERS immediately
/// followed by RST_STREAM(CANCEL), in batches of 100 with no pause, until `until`; reconnects
/// whenever the server ends the connection.
async fn rapid_reset(addr: std::net::SocketAddr, key: String, until: Instant) -> Burst {
    let mut burst = Burst::default();
    while Instant::now() < until {
        let Ok(tcp) = TcpStream::connect(addr).await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let Ok((mut send, connection)) = h2::client::handshake(tcp).await else {
            continue;
        };
        burst.connections += 1;
        let driver = tokio::spawn(connection);
        let mut ended: Option<h2::Error> = None;
        'connection: while Instant::now() < until {
            for _ in 0..100 {
                send = match send.ready().await {
                    Ok(send) => send,
                    Err(e) => {
                        ended = Some(e);
                        break 'connection;
                    }
                };
                let request = http::Request::builder()
                    .method("POST")
                    .uri(format!(
                        "http://{addr}/partners.v1.PartnerService/GetPartner"
                    ))
                    .header("content-type", "application/grpc")
                    .header("te", "trailers")
                    .header("authorization", format!("Bearer {key}"))
                    .body(())
                    .expect("request");
                match send.send_request(request, false) {
                    Ok((_response, mut stream)) => {
                        stream.send_reset(h2::Reason::CANCEL);
                        burst.streams += 1;
                    }
                    Err(e) => {
                        ended = Some(e);
                        break 'connection;
                    }
                }
            }
            tokio::task::yield_now().await;
        }
        if let Some(e) = ended {
            burst.ended_by_server += 1;
            if e.is_go_away() && e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) {
                burst.calm_down += 1;
            }
        }
        driver.abort();
    }
    burst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_burst_does_not_stall_other_grpc_callers() {
    let t = TestApp::start().await;
    let partner = t.simple_partner("Steady", &["pos"]).await.id;
    let calls = |until: Instant| {
        let mut client = t.client();
        let key = t.world.user_key_a.clone();
        async move {
            let mut samples = Vec::new();
            while Instant::now() < until {
                let started = Instant::now();
                client
                    .get_partner(with_key(
                        pb::GetPartnerRequest {
                            id: partner,
                            ..Default::default()
                        },
                        &key,
                    ))
                    .await
                    .expect("a normal caller is answered");
                samples.push(started.elapsed());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        }
    };
    let mut before = calls(Instant::now() + Duration::from_secs(1)).await;

    let burst_for = Duration::from_secs(3);
    let (addr, key) = (t.grpc_addr(), t.world.service_key.clone());
    // The attacker runs on a thread and runtime of its own, as a separate client would.
    let attacker = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(rapid_reset(addr, key, Instant::now() + burst_for))
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut during = calls(Instant::now() + burst_for - Duration::from_millis(400)).await;
    let burst = attacker.join().expect("attacker");
    let mut after = calls(Instant::now() + Duration::from_millis(500)).await;

    eprintln!(
        "rapid reset on the gRPC port: {} streams opened and reset ({:.0}/s) over {} connections \
         ({} ended by the server, {} with GOAWAY ENHANCE_YOUR_CALM); a normal caller's \
         GetPartner before: {}; during: {}; after: {}",
        burst.streams,
        burst.streams as f64 / burst_for.as_secs_f64(),
        burst.connections,
        burst.ended_by_server,
        burst.calm_down,
        figures(&mut before),
        figures(&mut during),
        figures(&mut after)
    );
    assert!(burst.streams > 1_000, "the burst was a burst: {burst:?}");
    // The server cuts a connection that resets streams faster than it accepts them.
    assert!(burst.calm_down > 0, "no connection was cut off: {burst:?}");
    assert!(during.len() >= 20, "the normal caller kept being served");
    assert!(
        *during.last().expect("calls") < Duration::from_secs(1),
        "a normal call stalled during the burst: {during:?}"
    );
    t.stop().await;
}

/// One HTTP/2 frame: its header (length, type, flags, stream) and payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame length");
    let mut frame = len.to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

/// An HPACK literal field without indexing (a new name, or a static table index below 15).
fn hpack_literal(block: &mut Vec<u8>, name: Result<u8, &str>, value: &str) {
    match name {
        Ok(index) => block.push(index),
        Err(name) => {
            block.push(0);
            block.push(u8::try_from(name.len()).expect("short name"));
            block.extend(name.as_bytes());
        }
    }
    assert!(value.len() < 127, "value fits a one-byte length");
    block.push(value.len() as u8);
    block.extend(value.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_making_the_grpc_server_reset_streams_is_cut_off() {
    // "MadeYouReset": each stream carries a frame the server must answer with RST_STREAM (a
    // window overflow); past the limit the server ends the connection with GOAWAY.
    let t = TestApp::start().await;
    let mut stream = TcpStream::connect(t.grpc_addr()).await.expect("connect");
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    stream
        .write_all(&h2_frame(0x4, 0, 0, &[]))
        .await
        .expect("settings");
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    hpack_literal(&mut block, Ok(4), "/partners.v1.PartnerService/GetPartner");
    hpack_literal(&mut block, Ok(1), "localhost");
    hpack_literal(&mut block, Err("content-type"), "application/grpc");
    hpack_literal(&mut block, Err("te"), "trailers");
    hpack_literal(
        &mut block,
        Err("authorization"),
        &format!("Bearer {}", t.world.service_key),
    );
    const STREAMS: u32 = 1_500;
    let mut burst = Vec::new();
    for i in 0..STREAMS {
        let id = 2 * i + 1;
        burst.extend(h2_frame(0x1, 0x4, id, &block)); // HEADERS, END_HEADERS, stream open
        // A WINDOW_UPDATE overflowing the stream's window: a stream error (FLOW_CONTROL_ERROR).
        burst.extend(h2_frame(0x8, 0, id, &0x7fff_ffffu32.to_be_bytes()));
    }
    // The server's SETTINGS first (acknowledged), then the burst.
    let mut header = [0u8; 9];
    loop {
        stream.read_exact(&mut header).await.expect("server frame");
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).await.expect("payload");
        if header[3] == 0x4 && header[4] & 0x1 == 0 {
            break;
        }
    }
    stream
        .write_all(&h2_frame(0x4, 0x1, 0, &[]))
        .await
        .expect("settings ack");
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&burst).await;
        writer
    });
    let mut resets = 0;
    let mut goaway = None;
    let read = async {
        let mut header = [0u8; 9];
        while reader.read_exact(&mut header).await.is_ok() {
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0u8; len];
            if reader.read_exact(&mut payload).await.is_err() {
                break;
            }
            match header[3] {
                0x3 => resets += 1,
                0x7 => {
                    goaway = Some((
                        u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
                        String::from_utf8_lossy(&payload[8..]).into_owned(),
                    ));
                    break;
                }
                _ => {}
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
    drop(write.await);
    eprintln!(
        "made-you-reset on the gRPC port: {STREAMS} streams, each with a frame the server \
         answers with RST_STREAM: {resets} RST_STREAM received, then GOAWAY {goaway:?} \
         (11 = ENHANCE_YOUR_CALM)"
    );
    assert_eq!(
        goaway.as_ref().map(|g| g.0),
        Some(11),
        "no GOAWAY ENHANCE_YOUR_CALM after {resets} resets"
    );
    assert!(
        resets <= 1_024 + 1,
        "reset {resets} streams before cutting off"
    );
    // Other callers are served as before.
    t.client()
        .get_partner(with_key(
            pb::GetPartnerRequest {
                id: t.simple_partner("After", &["pos"]).await.id,
                ..Default::default()
            },
            &t.world.user_key_a,
        ))
        .await
        .expect("served");
    t.stop().await;
}
