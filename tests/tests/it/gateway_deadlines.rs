//! Regression: the gateway had no deadlines and no connection caps. A client that sent half
//! a request head, a few bytes of a body, or nothing more after one request held its
//! connection (and a 64 KiB buffer) for ever; a backend that never answered or never read
//! held the client's request for ever; any number of connections from one address were
//! admitted; and once out of file descriptors the accept loop failed and retried at once,
//! spinning a core. Each test here reproduces one of those and checks the deadline or cap
//! that now ends it, with the numbers it measured printed on stderr.
//!
//! The tests take turns ([`SERIAL`]): the latencies and CPU times they measure should not
//! include each other's load. Each runs in a process of its own
//! (`crate::ran_in_own_process`, taken with the turn): the connection counts they check
//! are the process's metrics recorder's, which any other gateway of the process counts into.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use twofold::devbackend::DevBackend;
use twofold::envelope::aead::Layer;
use twofold::limits::{Deadlines, Limits};
use twofold::sigv4::PayloadMode;
use twofold_tests::admin::Scrape;
use twofold_tests::gateway::{
    Credential, Options, TestGateway, client_for, create_bucket, loopback0, put, sign_for,
    status_code,
};
use twofold_tests::{random_bytes, rawhttp};

/// One test at a time (see the module documentation).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BUCKET: &str = "deadlines";
const SECOND: Duration = Duration::from_secs(1);
/// How late after its deadline a connection may be closed on a loaded two-core machine.
const CLOSE_MARGIN: Duration = Duration::from_secs(3);

fn sha256_empty() -> [u8; 32] {
    hex::decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        .unwrap()
        .try_into()
        .unwrap()
}

fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

/// The `p`-th percentile (0..=100) of sorted `v`.
fn percentile(v: &[Duration], p: usize) -> Duration {
    v[(v.len() - 1) * p / 100]
}

/// The status code and S3 error code of the first response in `bytes`.
fn status_and_code(bytes: &[u8]) -> (u16, Option<String>) {
    let text = String::from_utf8_lossy(bytes);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let code = rawhttp::xml_value(&text, "Code").map(str::to_owned);
    (status, code)
}

/// The length of the first whole response (head and Content-Length body) in `buf`, once
/// all of it is there.
fn first_response_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (buf.len() >= head_end + len).then_some(head_end + len)
}

/// Reads `s` until the server closes it (end of stream or reset), at most `limit`: what
/// was read, and whether it closed.
async fn read_until_closed(s: &mut tokio::net::TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Err(_) => return (out, false),
            Ok(Ok(0) | Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One attacking connection: how long the server let it wait from the moment its
/// deadline started, what it answered, and whether it closed at all.
#[derive(Debug)]
struct Attack {
    waited: Duration,
    answer: Vec<u8>,
    closed: bool,
}

/// Half a request head, then nothing: the head deadline runs from accept.
async fn half_head(addr: SocketAddr, give_up: Duration) -> Attack {
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /deadlines/small HTTP/1.1\r\nHost: 127.0.0.1\r\nx-amz-da")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut s, give_up).await;
    Attack {
        waited: started.elapsed(),
        answer,
        closed,
    }
}

/// A whole PUT head announcing `Content-Length: 100000`, then 10 body bytes, then nothing:
/// the body gap deadline runs from the last bytes sent.
async fn slow_body(addr: SocketAddr, head: Vec<u8>, give_up: Duration) -> Attack {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&head).await.unwrap();
    s.write_all(b"0123456789").await.unwrap();
    let started = Instant::now();
    let (answer, closed) = read_until_closed(&mut s, give_up).await;
    Attack {
        waited: started.elapsed(),
        answer,
        closed,
    }
}

/// One whole signed GET, its whole answer read, then nothing: the keep-alive idle deadline
/// runs from the end of the answer.
async fn idle_keepalive(addr: SocketAddr, request: Vec<u8>, give_up: Duration) -> Attack {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&request).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let answered = loop {
        if let Some(len) = first_response_len(&got) {
            break len;
        }
        let n = tokio::time::timeout(give_up, s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the answer: {got:?}");
        got.extend_from_slice(&chunk[..n]);
    };
    let started = Instant::now();
    let (rest, closed) = read_until_closed(&mut s, give_up).await;
    let mut answer = got;
    answer.extend_from_slice(&rest);
    assert_eq!(first_response_len(&answer), Some(answered));
    Attack {
        waited: started.elapsed(),
        answer,
        closed,
    }
}

#[track_caller]
fn assert_closed_in_time(what: &str, attacks: &[Attack], deadline: Duration) {
    let mut waits: Vec<Duration> = attacks.iter().map(|a| a.waited).collect();
    waits.sort();
    eprintln!(
        "{what}: {} connections closed after min {:?}, p50 {:?}, max {:?} (deadline {deadline:?})",
        attacks.len(),
        waits[0],
        percentile(&waits, 50),
        waits[waits.len() - 1],
    );
    for (i, a) in attacks.iter().enumerate() {
        assert!(
            a.closed,
            "{what} #{i}: still open after {:?}; got {:?}",
            a.waited,
            String::from_utf8_lossy(&a.answer)
        );
        assert!(
            a.waited <= deadline + CLOSE_MARGIN,
            "{what} #{i}: closed only after {:?} (deadline {deadline:?})",
            a.waited
        );
        // Not before its deadline either (a little slack for when the clock started).
        assert!(
            a.waited + Duration::from_millis(200) >= deadline,
            "{what} #{i}: closed after {:?}, before its deadline {deadline:?}",
            a.waited
        );
    }
}

#[tokio::test]
async fn slow_heads_slow_bodies_and_idle_keepalives_are_closed_while_a_client_is_served() {
    const HALF_HEADS: usize = 200;
    const SLOW_BODIES: usize = 100;
    const IDLE_KEEPALIVES: usize = 100;
    const GET_LATENCY_MAX: Duration = Duration::from_secs(3);
    let _serial = SERIAL.lock().await;
    if crate::ran_in_own_process() {
        return;
    }
    let deadlines = Deadlines {
        idle: SECOND,
        head: SECOND,
        read_gap: SECOND,
        write_gap: 2 * SECOND,
    };
    let gw = TestGateway::start_with(Options {
        admin_listener: true,
        limits: Limits {
            client: deadlines,
            connections_per_core_max: 4096,
            connections_per_client_per_core_max: 0,
            ..Limits::default()
        },
        ..Options::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let small = random_bytes(1000);
    put(&s3, BUCKET, "small", small.clone()).await;
    let before = Scrape::take(gw.admin_addr());

    let addr = gw.addr();
    let give_up = Duration::from_secs(10);
    let done = Arc::new(AtomicUsize::new(0));
    let mut heads = tokio::task::JoinSet::new();
    let mut bodies = tokio::task::JoinSet::new();
    let mut idles = tokio::task::JoinSet::new();
    for _ in 0..HALF_HEADS {
        let done = done.clone();
        heads.spawn(async move {
            let a = half_head(addr, give_up).await;
            done.fetch_add(1, Ordering::SeqCst);
            a
        });
    }
    for i in 0..SLOW_BODIES {
        let path = format!("/{BUCKET}/slow-{i}");
        let (mut headers, _) = gw.sign(gw.admin(), "PUT", &path, None, &[], PayloadMode::Unsigned);
        headers.push(("content-length".into(), "100000".into()));
        let head = rawhttp::head("PUT", &path, &headers);
        let done = done.clone();
        bodies.spawn(async move {
            let a = slow_body(addr, head, give_up).await;
            done.fetch_add(1, Ordering::SeqCst);
            a
        });
    }
    for _ in 0..IDLE_KEEPALIVES {
        let path = format!("/{BUCKET}/small");
        let empty = PayloadMode::Sha256(sha256_empty());
        let (headers, _) = gw.sign(gw.admin(), "GET", &path, None, &[], empty);
        let request = rawhttp::head("GET", &path, &headers);
        let done = done.clone();
        idles.spawn(async move {
            let a = idle_keepalive(addr, request, give_up).await;
            done.fetch_add(1, Ordering::SeqCst);
            a
        });
    }

    // A well-behaved client meanwhile, until every attacking connection has ended.
    let total = HALF_HEADS + SLOW_BODIES + IDLE_KEEPALIVES;
    let mut latencies = Vec::new();
    let storm = Instant::now();
    while done.load(Ordering::SeqCst) < total && storm.elapsed() < give_up + SECOND {
        let t = Instant::now();
        let got = twofold_tests::gateway::get(&s3, BUCKET, "small").await;
        latencies.push(t.elapsed());
        assert_eq!(got, small, "GET {} returned other bytes", latencies.len());
    }
    latencies.sort();
    eprintln!(
        "client GETs during the attack: {} in {:?}, latency p50 {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        storm.elapsed(),
        percentile(&latencies, 50),
        percentile(&latencies, 99),
        latencies[latencies.len() - 1],
    );
    assert!(latencies.len() >= 10, "only {} GETs", latencies.len());
    assert!(
        latencies[latencies.len() - 1] <= GET_LATENCY_MAX,
        "a GET took {:?}",
        latencies[latencies.len() - 1]
    );

    let heads: Vec<Attack> = heads.join_all().await;
    let bodies: Vec<Attack> = bodies.join_all().await;
    let idles: Vec<Attack> = idles.join_all().await;
    assert_closed_in_time("half heads", &heads, deadlines.head);
    assert_closed_in_time("slow bodies", &bodies, deadlines.read_gap);
    assert_closed_in_time("idle keep-alives", &idles, deadlines.idle);
    for (i, a) in bodies.iter().enumerate() {
        let (status, code) = status_and_code(&a.answer);
        assert_eq!(
            (status, code.as_deref()),
            (400, Some("RequestTimeout")),
            "slow body #{i}: {}",
            String::from_utf8_lossy(&a.answer)
        );
    }
    for (i, a) in idles.iter().enumerate() {
        let len = first_response_len(&a.answer).unwrap();
        assert_eq!(status_and_code(&a.answer).0, 200, "idle keep-alive #{i}");
        assert_eq!(
            a.answer.len(),
            len,
            "idle keep-alive #{i}: bytes after the answer"
        );
        assert!(a.answer.ends_with(&small), "idle keep-alive #{i}: body");
    }

    let after = Scrape::take(gw.admin_addr());
    let closed = |reason| {
        delta(
            &before,
            &after,
            "twofold_connections_closed_total",
            &[("listener", "s3"), ("reason", reason)],
        )
    };
    let (head_closed, body_closed, idle_closed) = (
        closed("head_timeout"),
        closed("body_timeout"),
        closed("idle_timeout"),
    );
    eprintln!(
        "closed by deadline: head_timeout +{head_closed}, body_timeout +{body_closed}, idle_timeout +{idle_closed}"
    );
    assert!(head_closed >= HALF_HEADS as f64);
    assert!(body_closed >= SLOW_BODIES as f64);
    assert!(idle_closed >= IDLE_KEEPALIVES as f64);
}

/// How a [`StalledBackend`] treats each connection.
#[derive(Debug, Clone, Copy)]
enum Stall {
    /// Reads (and discards) everything, never answers.
    NeverAnswers,
    /// Reads nothing and never answers.
    NeverReads,
    /// Reads the request head, answers a 200 head announcing a 100,000-byte XML body, sends
    /// five bytes of it, then nothing more (and reads and discards the rest).
    HeadThenStalls,
}

/// A backend in the test process that stalls as told. Its threads and connections last
/// until the test process ends.
#[derive(Debug)]
struct StalledBackend {
    addr: SocketAddr,
}

impl StalledBackend {
    fn start(stall: Stall) -> Self {
        let l = TcpListener::bind(loopback0()).unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || Self::hold(stall, s));
            }
        });
        Self { addr }
    }

    fn hold(stall: Stall, mut s: TcpStream) {
        let mut buf = vec![0u8; 64 * 1024];
        match stall {
            Stall::NeverAnswers => {}
            Stall::NeverReads => {
                std::thread::sleep(Duration::from_secs(120));
                return;
            }
            Stall::HeadThenStalls => {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\n\
                      content-length: 100000\r\n\r\n<?xml",
                );
            }
        }
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// A gateway of `gw`'s deployment in front of `backend`, with 1 s backend deadlines.
fn gateway_before(gw: &TestGateway, backend: &StalledBackend) -> twofold_tests::gateway::Gateway {
    gw.try_start_another_with(|s| {
        s.backend_addr = backend.addr.to_string();
        s.backend_host = backend.addr.to_string();
        s.limits.backend = Deadlines {
            idle: SECOND,
            head: SECOND,
            read_gap: SECOND,
            write_gap: SECOND,
        };
        s.limits.backend_connect = SECOND;
    })
    .unwrap()
}

/// Sends `head` and `body` (from another thread) and reads one answer: what came (or the
/// error), and when. Then ends the connection.
fn exchange_timed(
    addr: SocketAddr,
    head: Vec<u8>,
    body: Vec<u8>,
) -> (std::io::Result<rawhttp::Response>, Duration) {
    let mut s = rawhttp::connect(addr);
    let mut w = s.try_clone().unwrap();
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&head);
        let _ = w.write_all(&body);
    });
    let got = rawhttp::read_response(&mut s, false);
    let took = started.elapsed();
    let _ = s.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    (got, took)
}

#[tokio::test]
async fn a_stalled_backend_answers_504_within_its_deadline() {
    let _serial = SERIAL.lock().await;
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start();
    // The backend's head deadline is 1 s; a 504 must come after it, and soon after it.
    let within = |took: Duration| (SECOND..=4 * SECOND).contains(&took);

    // A backend that takes the request and never answers: GET and HEAD through the SDK.
    let silent = StalledBackend::start(Stall::NeverAnswers);
    let g = gateway_before(&gw, &silent);
    let s3 = g.client();
    let t = Instant::now();
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap_err();
    let took = t.elapsed();
    eprintln!(
        "GET, backend never answers: {:?} after {took:?}",
        status_code(&e)
    );
    assert_eq!(status_code(&e), (504, "InternalError".to_owned()));
    assert!(within(took), "took {took:?}");
    let t = Instant::now();
    let e = s3
        .head_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap_err();
    let took = t.elapsed();
    eprintln!(
        "HEAD, backend never answers: {:?} after {took:?}",
        status_code(&e).0
    );
    assert_eq!(status_code(&e).0, 504);
    assert!(within(took), "took {took:?}");
    g.stop();

    // A backend that never reads: a 64 MiB PUT cannot be written to it.
    let deaf = StalledBackend::start(Stall::NeverReads);
    let g = gateway_before(&gw, &deaf);
    let path = format!("/{BUCKET}/big");
    let body = random_bytes(64 << 20);
    let (mut headers, _) = sign_for(
        &g.addr().to_string(),
        gw.admin(),
        "PUT",
        &path,
        None,
        &[],
        PayloadMode::Unsigned,
    );
    headers.push(("content-length".into(), body.len().to_string()));
    let (got, took) = exchange_timed(g.addr(), rawhttp::head("PUT", &path, &headers), body);
    eprintln!(
        "64 MiB PUT, backend never reads: {} after {took:?}",
        describe(&got)
    );
    // The answer comes once a write to the backend has made no progress for 1 s, after
    // the sockets' buffers between them filled.
    assert!(took <= 10 * SECOND, "took {took:?}");
    match got {
        Ok(r) => r.assert_s3_error(504, "InternalError"),
        Err(e) => assert!(rawhttp::is_reset(&e), "no answer: {e}"),
    }
    g.stop();
}

/// A signed ListObjectsV2 of [`BUCKET`] through `g`: what came back, and when.
fn list_timed(
    gw: &TestGateway,
    g: &twofold_tests::gateway::Gateway,
) -> (std::io::Result<rawhttp::Response>, Duration) {
    let path = format!("/{BUCKET}");
    let query = "list-type=2";
    let empty = PayloadMode::Sha256(sha256_empty());
    let (headers, _) = sign_for(
        &g.addr().to_string(),
        gw.admin(),
        "GET",
        &path,
        Some(query),
        &[],
        empty,
    );
    let head = rawhttp::head("GET", &format!("{path}?{query}"), &headers);
    exchange_timed(g.addr(), head, Vec::new())
}

fn describe(got: &std::io::Result<rawhttp::Response>) -> String {
    match got {
        Ok(r) => format!(
            "{} {:?} (body {} bytes, cut: {})",
            r.status,
            r.s3_code(),
            r.body.len(),
            r.truncated
        ),
        Err(e) => format!("no answer ({e})"),
    }
}

/// Listings pass through the gateway (`serve/passthrough.rs`), which buffers the backend's
/// answer and rewrites the sizes in it: a backend that stalls there is past a deadline as
/// much as one that stalls on a GET.
#[tokio::test]
async fn a_backend_stalled_in_a_listing_answers_504() {
    let _serial = SERIAL.lock().await;
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start();
    let mut answers = Vec::new();
    for stall in [Stall::NeverAnswers, Stall::HeadThenStalls] {
        let backend = StalledBackend::start(stall);
        let g = gateway_before(&gw, &backend);
        let (got, took) = list_timed(&gw, &g);
        eprintln!(
            "ListObjectsV2, {stall:?}: {} after {took:?}",
            describe(&got)
        );
        answers.push((stall, got, took));
        g.stop();
    }
    for (stall, got, took) in answers {
        assert!(took <= 4 * SECOND, "{stall:?}: took {took:?}");
        // The gateway buffers a listing before it answers: a 504 before any head of its
        // own, never a whole-looking answer, never a hang.
        got.unwrap().assert_s3_error(504, "InternalError");
    }
}

/// A connection to `to` from source address `from` (any 127.0.0.0/8 address is loopback).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((from, 0))).unwrap();
    let s = sock.connect(to).await.unwrap().into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(rawhttp::IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(rawhttp::IO_TIMEOUT)).unwrap();
    s
}

/// Whether `s` has nothing to read now (an admitted connection waits for its request; a
/// refused one has its 503 waiting).
fn nothing_to_read(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let quiet = matches!((&*s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    quiet
}

#[track_caller]
fn assert_refused(s: &mut TcpStream, what: &str) {
    let r = rawhttp::read_response(s, false).unwrap_or_else(|e| panic!("{what}: {e}"));
    r.assert_s3_error(503, "SlowDown");
    assert_eq!(r.header("connection"), Some("close"), "{what}");
    assert!(rawhttp::closed_by_peer(s), "{what}: not closed");
}

/// A signed ListBuckets on `s`, which must be answered 200.
#[track_caller]
fn assert_served(gw: &TestGateway, s: &mut TcpStream, what: &str) {
    let empty = PayloadMode::Sha256(sha256_empty());
    let (headers, _) = gw.sign(gw.admin(), "GET", "/", None, &[], empty);
    s.write_all(&rawhttp::head("GET", "/", &headers)).unwrap();
    let r = rawhttp::read_response(s, false).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(r.status, 200, "{what}: {}", r.text());
}

#[tokio::test]
async fn connections_over_the_caps_are_refused_with_slowdown_and_service_resumes() {
    const CORE_MAX: usize = 20;
    const CLIENT_MAX: usize = 10;
    let _serial = SERIAL.lock().await;
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start_with(Options {
        admin_listener: true,
        cores: 1,
        limits: Limits {
            connections_per_core_max: CORE_MAX,
            connections_per_client_per_core_max: CLIENT_MAX,
            ..Limits::default()
        },
        ..Options::default()
    });
    let addr = gw.addr();
    let (a, b, c) = ([127, 0, 0, 1], [127, 0, 0, 2], [127, 0, 0, 3]);
    let before = Scrape::take(gw.admin_addr());

    let mut from_a = Vec::new();
    for _ in 0..CLIENT_MAX {
        from_a.push(connect_from(a, addr).await);
    }
    // The eleventh from one address is over the per-client cap.
    let mut over = connect_from(a, addr).await;
    assert_refused(&mut over, "11th connection from 127.0.0.1");
    let mut from_b = Vec::new();
    for _ in 0..CLIENT_MAX {
        from_b.push(connect_from(b, addr).await);
    }
    // Twenty open: a third address is over the core cap.
    let mut over = connect_from(c, addr).await;
    assert_refused(&mut over, "a connection from 127.0.0.3 with 20 open");
    std::thread::sleep(Duration::from_millis(200));
    for (i, s) in from_a.iter().chain(&from_b).enumerate() {
        assert!(nothing_to_read(s), "held connection #{i} was answered");
    }
    // The admitted ones are served.
    assert_served(&gw, &mut from_a[0], "first connection from 127.0.0.1");
    assert_served(&gw, &mut from_b[9], "tenth connection from 127.0.0.2");

    let after = Scrape::take(gw.admin_addr());
    let refused = |reason| {
        delta(
            &before,
            &after,
            "twofold_connections_refused_total",
            &[("listener", "s3"), ("reason", reason)],
        )
    };
    let accepted = delta(
        &before,
        &after,
        "twofold_connections_accepted_total",
        &[("listener", "s3")],
    );
    eprintln!(
        "refused: client_limit +{}, core_limit +{}; accepted +{accepted}",
        refused("client_limit"),
        refused("core_limit")
    );
    assert_eq!(refused("client_limit"), 1.0);
    assert_eq!(refused("core_limit"), 1.0);
    assert_eq!(accepted, (2 * CLIENT_MAX) as f64);

    // Five from 127.0.0.1 close: the SDK (from 127.0.0.1) is served again, once the
    // gateway has seen them go.
    from_a.truncate(CLIENT_MAX - 5);
    let s3 = gw.client();
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        match s3.list_buckets().send().await {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(status_code(&e), (503, "SlowDown".to_owned()));
                assert!(started.elapsed() < 5 * SECOND, "still refused: {e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    eprintln!(
        "after 5 closed: served after {tries} tries, {:?}",
        started.elapsed()
    );
    // All closed: a third address is served too.
    drop(from_a);
    drop(from_b);
    let started = Instant::now();
    loop {
        let mut s = connect_from(c, addr).await;
        if nothing_to_read(&s) {
            assert_served(&gw, &mut s, "127.0.0.3 after the others closed");
            break;
        }
        assert!(started.elapsed() < 5 * SECOND, "127.0.0.3 still refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- Descriptor exhaustion, with `twofold serve` as a process of its own ----

/// The workspace's `twofold` binary, next to the test binaries' folder (as
/// tests/tests/it/gateway_process.rs finds it).
fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("twofold");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p gateway` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// Open files allowed to the gateway process: far fewer than the connects it gets.
const GATEWAY_OPEN_FILES_MAX: usize = 400;
/// Connects in the storm, from two child processes.
const STORM_CONNECTS: usize = 20_000;
/// How long the storm's connections are held.
const STORM_HOLD_SECS: u64 = 10;

/// A deployment on disk (backend, tokens, secrets, `twofold.toml` with `limits`) and
/// `twofold serve` running on it with [`GATEWAY_OPEN_FILES_MAX`] open files.
struct Serve {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
    client: Credential,
    _backend: DevBackend,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(limits: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("twofold-deadlines-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let backend_cred = Credential::random("BACKEND");
        let backend = DevBackend::start(
            loopback0(),
            &d.join("backend"),
            &backend_cred.access_key_id,
            &backend_cred.secret,
        )
        .unwrap();
        let client = Credential::random("CLIENT");
        write_private(&d.join("backend.secret"), &backend_cred.secret);
        write_private(&d.join("client.secret"), &client.secret);
        let text = format!(
            "{}[server]\nlisten = \"127.0.0.1:0\"\ncores = 2\nplain_http = true\n\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n\n\
             [backend]\nendpoint = \"http://{}\"\nplain_http = true\naccess_key_id = \"{}\"\n\
             secret_access_key = {{ file = \"backend.secret\" }}\n\n\
             [[credential]]\naccess_key_id = \"{}\"\nsecret_access_key = {{ file = \"client.secret\" }}\n\
             buckets = [\"*\"]\n\n[limits]\n{limits}",
            custodian_blocks(),
            backend.addr(),
            backend_cred.access_key_id,
            client.access_key_id,
        );
        std::fs::write(d.join("twofold.toml"), text).unwrap();
        let mut child = Command::new("bash")
            .args([
                "-c",
                &format!("ulimit -n {GATEWAY_OPEN_FILES_MAX} && exec \"$0\" serve --config \"$1\""),
            ])
            .arg(binary())
            .arg("twofold.toml")
            .current_dir(d)
            .env_remove("SOFTHSM2_CONF")
            .env("TWOFOLD_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (addr, admin) = listening_addresses(&mut child);
        Self {
            child,
            addr,
            admin,
            client,
            _backend: backend,
            _dir: dir,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a secret file readable by its owner only, as the gateway requires.
fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The `[custodian.*]` sections for two fresh tokens.
fn custodian_blocks() -> String {
    let custody = twofold_tests::Custody::new("dl");
    [Layer::Outer, Layer::Inner]
        .into_iter()
        .map(|layer| custody.config_table(layer))
        .collect()
}

/// The S3 and admin addresses `twofold serve` prints; its stdout is drained afterwards.
fn listening_addresses(child: &mut Child) -> (SocketAddr, SocketAddr) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut addr, mut admin) = (None, None);
    while addr.is_none() || admin.is_none() {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("twofold serve ended before it listened"))
            .unwrap();
        let after = |marker: &str| {
            line.split(marker)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|a| a.parse::<SocketAddr>().ok())
        };
        if line.contains("admin listener") {
            admin = after("http://");
        } else if line.contains("gateway on") {
            addr = after("http://");
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (addr.unwrap(), admin.unwrap())
}

/// One storm child: `n` non-blocking connects to `port` from the addresses `net.1` to
/// `net.200`, held until `hold` seconds after they were all made. Prints `ready` then.
const STORM_SCRIPT: &str = r#"
import socket, sys, time
port, net, n, hold = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
IP_BIND_ADDRESS_NO_PORT = 24
socks, failed = [], 0
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((f"{net}.{i % 200 + 1}", 0))
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        failed += 1
    socks.append(s)
print(f"ready {len(socks)} {failed}", flush=True)
time.sleep(hold)
"#;

fn start_storm_child(port: u16, net: &str, n: usize) -> (Child, String) {
    let mut child = Command::new("python3")
        .args(["-c", STORM_SCRIPT])
        .args([
            port.to_string(),
            net.to_owned(),
            n.to_string(),
            STORM_HOLD_SECS.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "storm child said {line:?}");
    (child, line.trim().to_owned())
}

/// CPU time (user and system) of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name: state is field 3, utime 14 and stime 15.
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    let per_sec: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Duration::from_secs_f64(ticks as f64 / per_sec as f64)
}

/// One signed ListBuckets on a fresh connection, with short timeouts: what happened.
fn probe(serve: &Serve, timeout: Duration) -> String {
    let s = match TcpStream::connect_timeout(&serve.addr, timeout) {
        Ok(s) => s,
        Err(e) => return format!("no connection: {e}"),
    };
    let mut s = s;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.set_write_timeout(Some(timeout)).unwrap();
    let empty = PayloadMode::Sha256(sha256_empty());
    let (headers, _) = sign_for(
        &serve.addr.to_string(),
        &serve.client,
        "GET",
        "/",
        None,
        &[],
        empty,
    );
    if let Err(e) = s.write_all(&rawhttp::head("GET", "/", &headers)) {
        return format!("write failed: {e}");
    }
    match rawhttp::read_response(&mut s, false) {
        Ok(r) => format!("{} {}", r.status, r.s3_code().unwrap_or_default()),
        Err(e) => format!("no answer: {e}"),
    }
}

#[tokio::test]
async fn twenty_thousand_idle_connects_neither_spin_the_gateway_nor_starve_clients() {
    const CPU_SHARE_MAX: f64 = 0.5;
    let _serial = SERIAL.lock().await;
    if crate::ran_in_own_process() {
        return;
    }
    let serve = Serve::start(
        "connections_per_core_max = 2048\nconnections_per_client_per_core_max = 0\n\
         request_head_timeout_secs = 3\n",
    );
    let s3 = client_for(&format!("http://{}", serve.addr), &serve.client);
    create_bucket(&s3, BUCKET).await;
    let pid = serve.child.id();
    let port = serve.addr.port();

    let started = Instant::now();
    let (mut one, said_one) = start_storm_child(port, "127.0.1", STORM_CONNECTS / 2);
    let (mut two, said_two) = start_storm_child(port, "127.0.2", STORM_CONNECTS / 2);
    eprintln!(
        "storm: {STORM_CONNECTS} connects made in {:?} ({said_one}; {said_two})",
        started.elapsed()
    );

    // While the connections are held: the gateway's CPU over 3 s.
    std::thread::sleep(Duration::from_millis(500));
    let (cpu_before, t) = (cpu_time(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let (cpu, wall) = (cpu_time(pid) - cpu_before, t.elapsed());
    let share = cpu.as_secs_f64() / wall.as_secs_f64();
    eprintln!(
        "gateway CPU during the storm: {cpu:?} in {wall:?} = {:.1}% of one core",
        share * 100.0
    );
    // A client during the storm. Not asserted: the storm fills the listeners' accept
    // queues (2 x 1024) faster than a gateway with 400 descriptors and a 3 s head
    // deadline empties them, and the kernel drops a SYN while its queue is full, so a
    // new client may only get a connection after a retransmitted SYN, seconds later.
    // Service must come back once the storm ends (asserted below).
    let t = Instant::now();
    let during = probe(&serve, Duration::from_secs(3));
    eprintln!(
        "a request during the storm: {during} after {:?}",
        t.elapsed()
    );

    assert!(one.wait().unwrap().success());
    assert!(two.wait().unwrap().success());
    let storm_ended = Instant::now();
    let mut tries = 0;
    let served_after = loop {
        tries += 1;
        let t = Instant::now();
        let said = probe(&serve, Duration::from_secs(3));
        if said.starts_with("200") {
            break storm_ended.elapsed();
        }
        eprintln!(
            "after the storm, try {tries}: {said} after {:?}",
            t.elapsed()
        );
        assert!(
            storm_ended.elapsed() < Duration::from_secs(15),
            "not served {:?} after the storm: {said}",
            storm_ended.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("after the storm: served {served_after:?} after it ended ({tries} tries)");
    put(&s3, BUCKET, "after", b"after the storm".to_vec()).await;

    let scrape = Scrape::take(serve.admin);
    let fd_limit = scrape.sum(
        "twofold_accept_errors_total",
        &[("listener", "s3"), ("kind", "fd_limit")],
    );
    let head_closed = scrape.sum(
        "twofold_connections_closed_total",
        &[("listener", "s3"), ("reason", "head_timeout")],
    );
    let accepted = scrape.sum("twofold_connections_accepted_total", &[("listener", "s3")]);
    eprintln!(
        "metrics: accept errors fd_limit {fd_limit}, accepted {accepted}, closed head_timeout {head_closed}"
    );
    assert!(
        share < CPU_SHARE_MAX,
        "the gateway used {:.0}% of a core while out of descriptors",
        share * 100.0
    );
    assert!(fd_limit > 0.0, "no accept failed for want of descriptors");
    eprintln!("whole test: {:?}", started.elapsed());
}
