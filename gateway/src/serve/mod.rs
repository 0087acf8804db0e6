//! `twofold serve`: the gateway. One thread per core, each pinned and running its own
//! compio runtime (io_uring) with its own `SO_REUSEPORT` listener, backend connection pool
//! and bucket-key caches; nothing on the data path is shared between cores
//! (`docs/adr/0001-runtime.md`, `docs/request-lifecycle.md`).
//!
//! The modules import only downward, leaf first (besides the request context, `Request`,
//! `Core` and the small helpers of this module, which all use):
//!
//! 1. `io` (the connection), `backend` (the backend pool), `body` (a client's body);
//! 2. `error` (the edge error, [`Failure`], and integrity reporting);
//! 3. `respond` (answers shared by the object operations), `stored` (a stored object being
//!    read), `keepalive` (an answer kept alive while long work runs);
//! 4. `part_checksum` (checksums of multipart parts);
//! 5. `unaligned` (multipart objects' layout records: the rewrite at Complete, reads,
//!    listings);
//! 6. `passthrough` (operations forwarded as they are, listings' sizes rewritten),
//!    `bucket_encryption` (the bucket encryption operations, answered from the
//!    configuration);
//! 7. `object` (PutObject, GetObject, HeadObject, CopyObject, GetObjectAttributes);
//! 8. `multipart` (the multipart upload operations);
//! 9. `console` (the operators' web console: sessions, pages, its JSON answers);
//! 10. `admin` (the admin listener, which serves the console).

pub mod admin;
pub mod backend;
pub mod body;
mod bucket_encryption;
pub mod console;
mod error;
pub mod io;
mod keepalive;
mod multipart;
mod object;
mod part_checksum;
mod passthrough;
mod respond;
mod stored;
mod unaligned;

use crate::config::{BackendTransport, ListenerTls, ServeSettings};
use crate::http::{Limits, RequestHead, ResponseHead};
use crate::keys::{Custodian, Keyring, KeyringSettings};
use crate::s3::{Address, Query, S3Code, S3Error, S3Op};
use crate::sigv4::{self, RequestParts, Secret, Verified};
use backend::Backend;
pub(crate) use error::Failure;
use io::{Conn, HeadError};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Most query parameters accepted on one request.
pub const QUERY_PARAMS_MAX: usize = 64;
/// How often an idle accept loop checks whether the gateway is stopping.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often a stopping core looks whether its requests in flight have finished.
const DRAIN_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// S3 error codes that mean the request was refused by authentication or authorisation.
const AUTH_FAILURE_CODES: &[S3Code] = &[
    S3Code::AccessDenied,
    S3Code::SignatureDoesNotMatch,
    S3Code::InvalidAccessKeyId,
    S3Code::RequestTimeTooSkewed,
    S3Code::AuthorizationHeaderMalformed,
    S3Code::AuthorizationQueryParametersError,
    S3Code::ExpiredToken,
    S3Code::InvalidToken,
    S3Code::MissingSecurityHeader,
];
/// Longest a client may take over its TLS handshake before the connection is dropped.
pub const TLS_HANDSHAKE_TIMEOUT_SECS: u64 = 10;
/// How long a listener pauses after an accept failed for want of file descriptors or
/// memory (nginx pauses 500 ms; shorter here, since closing connections free descriptors
/// continuously).
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// One core's state, shared by the connections of that core only.
pub struct Core {
    settings: Arc<ServeSettings>,
    keyring: Keyring,
    backend: Backend,
    limits: Limits,
    core_id: usize,
    /// The client-facing TLS acceptor of this core; `None` for plain HTTP.
    tls: Option<crate::tls::CoreAcceptor>,
    requests: Cell<u64>,
    /// This core's metric handles.
    pub(crate) metrics: crate::telemetry::CoreMetrics,
    /// Requests being served on this core now.
    in_flight: Cell<usize>,
    /// Set when the gateway begins to stop (SIGTERM): responses say `Connection: close`
    /// and connections close after their current request.
    stopping: Arc<AtomicBool>,
    /// Segments per part of multipart objects read with ranges, by (bucket, key, ETag).
    part_sizes: std::cell::RefCell<std::collections::HashMap<(String, String, String), u64>>,
    /// Plaintext sizes of objects with a layout record, for listings, by (bucket, key and
    /// version, ETag).
    layout_sizes: std::cell::RefCell<std::collections::HashMap<(String, String, String), u64>>,
    /// Segment buffers kept between requests.
    pub(crate) buffers: BufferPool,
    /// Single-part objects this core has answered a ranged GET for, by (bucket, key,
    /// version query), so that the next range of the same object needs no HEAD first.
    pub(crate) seen_objects:
        std::cell::RefCell<std::collections::HashMap<(String, String, String), object::SeenObject>>,
    /// This core's open client connections, for the connection caps.
    connections: std::cell::RefCell<crate::limits::ConnectionTable>,
}

/// Most objects a core remembers for ranged GETs; the memory is cleared when it is full.
pub(crate) const SEEN_OBJECTS_MAX: usize = 4096;

/// Most buffers a core keeps between requests.
const POOL_BUFFERS_MAX: usize = 64;
/// Largest buffer a core keeps (buffers for larger segment sizes are allocated each time).
const POOL_BUFFER_BYTES_MAX: usize = (1 << 20) + 64 * 1024;

/// Segment buffers a core keeps between requests, so that streaming a body allocates and
/// zero-fills nothing in steady state. Bounded: at most [`POOL_BUFFERS_MAX`] buffers of at
/// most [`POOL_BUFFER_BYTES_MAX`] bytes each per core.
///
/// A buffer comes back with the bytes of its previous use in it. Every user fills the part
/// it reads before reading it (a body or backend read, or a seal or open that writes its
/// whole output), as with a fresh buffer it would have to; nothing is sent from a range
/// that was not written in this request.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: std::cell::RefCell<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// A buffer of `len` bytes.
    pub(crate) fn take(&self, len: usize) -> Vec<u8> {
        let mut free = self.free.borrow_mut();
        match free.iter().rposition(|b| b.capacity() >= len) {
            Some(i) => {
                let mut b = free.swap_remove(i);
                b.resize(len, 0);
                b
            }
            None => vec![0u8; len],
        }
    }

    /// Gives a buffer back for later requests.
    pub(crate) fn give(&self, b: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        if b.capacity() <= POOL_BUFFER_BYTES_MAX && free.len() < POOL_BUFFERS_MAX {
            free.push(b);
        }
    }
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("core_id", &self.core_id)
            .finish_non_exhaustive()
    }
}

/// A running gateway; dropping it (or [`ServeHandle::stop`]) stops it.
#[derive(Debug)]
pub struct ServeHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    heartbeats: Arc<Heartbeats>,
    admin: Option<(SocketAddr, std::thread::JoinHandle<()>)>,
    /// The admin listener's certificate, when it speaks HTTPS.
    admin_tls: Option<Arc<crate::tls::ServerTls>>,
    admin_done: Arc<AtomicBool>,
    tls: Option<Arc<crate::tls::ServerTls>>,
}

/// When each core's loop last went round, in milliseconds since the gateway started: the
/// watchdog pings systemd only while every core keeps beating.
#[derive(Debug)]
pub struct Heartbeats {
    started: std::time::Instant,
    beats: Vec<std::sync::atomic::AtomicU64>,
}

impl Heartbeats {
    fn new(cores: usize) -> Self {
        Self {
            started: std::time::Instant::now(),
            beats: (0..cores).map(|_| Default::default()).collect(),
        }
    }

    fn beat(&self, core: usize) {
        if let Some(b) = self.beats.get(core) {
            b.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }

    /// Whether every core has gone round its loop within `within`.
    pub fn all_within(&self, within: Duration) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        let limit = within.as_millis() as u64;
        self.beats
            .iter()
            .all(|b| now.saturating_sub(b.load(Ordering::Relaxed)) <= limit)
    }

    /// Milliseconds since each core last went round its loop.
    pub fn ages_ms(&self) -> Vec<u64> {
        let now = self.started.elapsed().as_millis() as u64;
        self.beats
            .iter()
            .map(|b| now.saturating_sub(b.load(Ordering::Relaxed)))
            .collect()
    }
}

impl ServeHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Reads the client-facing certificate and key again (what SIGHUP does). New
    /// connections get the new certificate; open ones keep theirs. On failure the old
    /// certificate stays in use. `Ok(false)` when the gateway serves plain HTTP.
    pub fn reload_tls(&self) -> Result<bool, crate::tls::TlsError> {
        match &self.tls {
            Some(t) => t.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// The client-facing certificate state, for a reload trigger that outlives `&self`
    /// (the SIGHUP thread) and for counters; `None` for plain HTTP.
    pub fn server_tls(&self) -> Option<Arc<crate::tls::ServerTls>> {
        self.tls.clone()
    }

    /// The admin listener's certificate state (reloaded with the client one on SIGHUP);
    /// `None` for plain HTTP.
    pub fn admin_tls(&self) -> Option<Arc<crate::tls::ServerTls>> {
        self.admin_tls.clone()
    }

    /// Stops accepting, lets the requests in flight finish (up to the configured
    /// shutdown grace), and waits for the cores' threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// The admin listener's address, if it has one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(|(a, _)| *a)
    }

    /// The flag that stops the gateway when set (for signal handlers and the admin side):
    /// no new connections, requests in flight finish within the shutdown grace. Set
    /// [`ServeHandle::drain_flag`] first.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The flag that starts a stop when set: `/readyz` answers 503, every response says
    /// `Connection: close`, and connections close after their current request, while new
    /// connections are still accepted (until the stop flag is set).
    pub fn drain_flag(&self) -> Arc<AtomicBool> {
        self.draining.clone()
    }

    /// The cores' heartbeats.
    pub fn heartbeats(&self) -> Arc<Heartbeats> {
        self.heartbeats.clone()
    }

    /// Waits until the gateway stops (it runs until the process ends or `stop`).
    pub fn wait(mut self) {
        self.shutdown_after_stop();
    }

    /// Waits for the cores (they stop once the stop flag is set), then ends the admin
    /// listener.
    fn shutdown_after_stop(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.admin_done.store(true, Ordering::SeqCst);
        if let Some((_, t)) = self.admin.take() {
            let _ = t.join();
        }
    }

    fn shutdown(&mut self) {
        self.draining.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        self.shutdown_after_stop();
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Starts the gateway on `settings.listen` with the two custodians: binds one listener per
/// core, loads the TLS configurations, starts the admin listener when one is configured,
/// then one thread per core.
pub fn start(
    settings: ServeSettings,
    inner: Custodian,
    outer: Custodian,
    keyring: KeyringSettings,
) -> std::io::Result<ServeHandle> {
    start_with_console(settings, inner, outer, keyring, None)
}

/// [`start`], with the web console on the admin listener when `settings` configure one.
pub fn start_with_console(
    settings: ServeSettings,
    inner: Custodian,
    outer: Custodian,
    keyring: KeyringSettings,
    console: Option<console::ConsoleParts>,
) -> std::io::Result<ServeHandle> {
    let cores = core_count(settings.cores);
    let (addr, listeners) = bind_listeners(settings.listen, cores)?;
    let (server_tls, backend_tls) = load_tls(&settings)?;
    let settings = Arc::new(settings);
    let stop = Arc::new(AtomicBool::new(false));
    let draining = Arc::new(AtomicBool::new(false));
    let heartbeats = Arc::new(Heartbeats::new(cores));
    crate::telemetry::install_metrics();
    let admin_done = Arc::new(AtomicBool::new(false));
    let admin_tls = admin::load_tls(&settings)?;
    let admin = match settings.admin_listen {
        Some(a) => Some(admin::start(
            a,
            &settings,
            admin::Shared {
                inner: inner.clone(),
                outer: outer.clone(),
                heartbeats: heartbeats.clone(),
                stopping: draining.clone(),
                done: admin_done.clone(),
                backend_tls: backend_tls.clone(),
                console,
                tls: admin_tls.clone(),
            },
        )?),
        None => None,
    };
    let core_start = CoreStart {
        settings,
        stop: stop.clone(),
        draining: draining.clone(),
        heartbeats: heartbeats.clone(),
        inner,
        outer,
        keyring,
        server_tls: server_tls.clone(),
        backend_tls,
    };
    let threads = listeners
        .into_iter()
        .enumerate()
        .map(|(core_id, l)| spawn_core(core_start.clone(), core_id, l))
        .collect::<std::io::Result<Vec<_>>>()?;
    tracing::info!(%addr, cores, "gateway listening");
    Ok(ServeHandle {
        addr,
        stop,
        draining,
        threads,
        heartbeats,
        admin,
        admin_done,
        tls: server_tls,
        admin_tls,
    })
}

/// The CPUs this process may run on (1 when that cannot be told).
fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The number of cores to run: as configured, or one per available CPU for 0.
fn core_count(configured: usize) -> usize {
    if configured == 0 {
        available_cpus()
    } else {
        configured
    }
}

/// Binds `cores` listeners sharing one port: the first fixes the port (when 0 was asked
/// for), the others share it. Returns the address listened on and the listeners.
fn bind_listeners(
    asked: SocketAddr,
    cores: usize,
) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = listener(asked)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..cores {
        listeners.push(listener(addr)?);
    }
    Ok((addr, listeners))
}

/// The listener's TLS server configuration and the backend's TLS client configuration,
/// for those the settings ask for.
type TlsConfigs = (
    Option<Arc<crate::tls::ServerTls>>,
    Option<Arc<rustls::ClientConfig>>,
);

/// Loads the listener's certificate and the backend's CA bundle, where TLS is configured.
fn load_tls(settings: &ServeSettings) -> std::io::Result<TlsConfigs> {
    let to_io = |e: crate::tls::TlsError| std::io::Error::other(e.to_string());
    let server_tls = match &settings.listener_tls {
        ListenerTls::Tls { cert, key } => Some(Arc::new(
            crate::tls::ServerTls::load(cert, key).map_err(to_io)?,
        )),
        ListenerTls::PlainHttp => None,
    };
    let backend_tls = match &settings.backend_transport {
        BackendTransport::Tls { ca_bundle, .. } => {
            Some(crate::tls::client_config(ca_bundle.as_deref()).map_err(to_io)?)
        }
        BackendTransport::PlainHttp => None,
    };
    Ok((server_tls, backend_tls))
}

/// What each core's thread starts from: the shared settings, flags and configurations.
#[derive(Clone)]
struct CoreStart {
    /// The gateway's settings.
    settings: Arc<ServeSettings>,
    /// Set to stop accepting connections.
    stop: Arc<AtomicBool>,
    /// Set while the gateway drains.
    draining: Arc<AtomicBool>,
    /// The cores' heartbeats.
    heartbeats: Arc<Heartbeats>,
    /// The inner custodian.
    inner: Custodian,
    /// The outer custodian.
    outer: Custodian,
    /// The keyring's settings.
    keyring: KeyringSettings,
    /// The listener's TLS configuration, if clients connect over TLS.
    server_tls: Option<Arc<crate::tls::ServerTls>>,
    /// The backend's TLS client configuration, if the backend is reached over TLS.
    backend_tls: Option<Arc<rustls::ClientConfig>>,
}

/// Starts core `core_id`'s thread, which serves `l` (see [`run_core`]).
fn spawn_core(
    start: CoreStart,
    core_id: usize,
    l: std::net::TcpListener,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("twofold-core-{core_id}"))
        .spawn(move || run_core(start, core_id, l))
}

/// A core's thread: its own runtime, pinned to one CPU, and its own [`Core`]; accepts on
/// `l` until the stop flag is set, then lets the requests in flight finish.
fn run_core(start: CoreStart, core_id: usize, l: std::net::TcpListener) {
    let mut builder = compio::runtime::RuntimeBuilder::new();
    builder.thread_affinity(std::iter::once(core_id % available_cpus()).collect());
    let rt = match builder.build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(core = core_id, error = %e, "cannot start the core's runtime");
            return;
        }
    };
    let stop = start.stop.clone();
    let heartbeats = start.heartbeats.clone();
    let core = Rc::new(new_core(start, core_id));
    rt.block_on(async {
        accept_loop(core.clone(), l, &stop, &heartbeats).await;
        drain(&core, &heartbeats).await;
    });
}

/// A core's keyring: its own caches, over the custodians, with the configured keys.
fn core_keyring(start: &CoreStart) -> Keyring {
    let ring = Keyring::new(start.inner.clone(), start.outer.clone(), start.keyring);
    match &start.settings.named_keys {
        Some(named) => ring.with_named_keys(named.clone()),
        None => ring,
    }
}

/// Core `core_id`'s state: its backend pool, TLS acceptor, keyring and caches, all empty.
fn new_core(start: CoreStart, core_id: usize) -> Core {
    let keyring = core_keyring(&start);
    Core {
        backend: Backend::new(
            &start.settings,
            start
                .backend_tls
                .map(|c| crate::tls::core_client_config(&c)),
        ),
        tls: start.server_tls.map(crate::tls::CoreAcceptor::new),
        settings: start.settings,
        keyring,
        limits: Limits::default(),
        core_id,
        requests: Cell::new(0),
        metrics: crate::telemetry::CoreMetrics::new(),
        in_flight: Cell::new(0),
        stopping: start.draining,
        part_sizes: Default::default(),
        buffers: BufferPool::default(),
        seen_objects: Default::default(),
        layout_sizes: Default::default(),
        connections: Default::default(),
    }
}

/// After the listener closed: lets this core's requests in flight finish, up to the
/// shutdown grace. Idle keep-alive connections are closed when the runtime ends.
async fn drain(core: &Core, heartbeats: &Heartbeats) {
    let deadline = std::time::Instant::now() + core.settings.shutdown_grace;
    if core.in_flight.get() > 0 {
        tracing::info!(
            core = core.core_id,
            in_flight = core.in_flight.get(),
            "stopping: letting requests in flight finish"
        );
    }
    while core.in_flight.get() > 0 && std::time::Instant::now() < deadline {
        heartbeats.beat(core.core_id);
        compio::time::sleep(DRAIN_POLL_INTERVAL).await;
    }
    if core.in_flight.get() > 0 {
        tracing::warn!(
            core = core.core_id,
            in_flight = core.in_flight.get(),
            "shutdown grace over: cutting the requests still in flight"
        );
    }
}

async fn accept_loop(
    core: Rc<Core>,
    l: std::net::TcpListener,
    stop: &AtomicBool,
    heartbeats: &Heartbeats,
) {
    let listener = match compio::net::TcpListener::from_std(l) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(core = core.core_id, error = %e, "cannot use the listener");
            return;
        }
    };
    // One accept stays in flight across the stop checks: cancelling an accept that the
    // kernel has just completed would drop the new connection unanswered.
    let mut accept = Box::pin(listener.accept());
    while !stop.load(Ordering::SeqCst) {
        heartbeats.beat(core.core_id);
        let Some(result) = or_tick(accept.as_mut(), STOP_POLL_INTERVAL).await else {
            continue;
        };
        match result {
            Ok((stream, peer)) => admit(&core, stream, peer),
            Err(e) => accept_failed(&core.metrics.connections, &e).await,
        }
        accept = Box::pin(listener.accept());
    }
}

/// After a failed accept. Out of file descriptors or kernel memory, the pending
/// connection stays in the backlog and the next accept would fail at once: pause
/// [`ACCEPT_PAUSE`] (as nginx does) so that the loop never spins, and let connections that
/// close or time out make room. Any other failure (the peer gone already) just goes on.
pub(crate) async fn accept_failed(
    metrics: &crate::telemetry::ConnectionMetrics,
    e: &std::io::Error,
) {
    let resource = matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    );
    if !resource {
        metrics.accept_error("other");
        return;
    }
    metrics.accept_error("fd_limit");
    tracing::warn!(error = %e, pause_ms = ACCEPT_PAUSE.as_millis() as u64, "cannot accept: out of file descriptors or memory");
    compio::time::sleep(ACCEPT_PAUSE).await;
}

/// Admits a new connection within the core's caps and serves it, or refuses it.
fn admit(core: &Rc<Core>, stream: compio::net::TcpStream, peer: SocketAddr) {
    let limits = &core.settings.limits;
    let admitted = core.connections.borrow_mut().admit(peer.ip(), limits);
    let metrics = &core.metrics.connections;
    if let Err(refusal) = admitted {
        metrics.refused(refusal.label());
        let plain = core.tls.is_none();
        compio::runtime::spawn(refuse(stream, plain, limits.client)).detach();
        return;
    }
    metrics.accepted.increment(1);
    metrics.open.increment(1.0);
    let slot = Slot {
        core: core.clone(),
        client: peer.ip(),
    };
    // The acceptor is taken now, so a reload affects connections accepted after it and
    // never one already open.
    let acceptor = core.tls.as_ref().map(|t| t.acceptor());
    compio::runtime::spawn(async move {
        let _ = stream.set_nodelay(true);
        let core = slot.core.clone();
        let conn = match acceptor {
            None => Conn::new(stream),
            Some(acceptor) => match handshake(acceptor, stream).await {
                Some(tls) => Conn::from_stream(io::Stream::Tls(Box::new(tls))),
                None => return,
            },
        };
        let conn = conn
            .with_meter(core.metrics.client.clone())
            .with_deadlines(core.settings.limits.client)
            .with_closing(core.stopping.clone());
        serve_connection(core, conn).await;
        drop(slot);
    })
    .detach();
}

/// A client TLS handshake within [`TLS_HANDSHAKE_TIMEOUT_SECS`]. A failed or slow one (a
/// plain-HTTP client, an untrusting client, a scanner) just ends the connection.
async fn handshake(
    acceptor: compio::tls::TlsAcceptor,
    stream: compio::net::TcpStream,
) -> Option<compio::tls::TlsStream<compio::net::TcpStream>> {
    let handshake = compio::time::timeout(
        Duration::from_secs(TLS_HANDSHAKE_TIMEOUT_SECS),
        acceptor.accept(stream),
    );
    match handshake.await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(_)) => {
            crate::telemetry::tls_handshake_failure("error");
            None
        }
        Err(_) => {
            crate::telemetry::tls_handshake_failure("timeout");
            None
        }
    }
}

/// Refuses a connection over a cap: plain HTTP gets S3's `503 SlowDown` (which SDKs
/// retry with back-off) within the send deadline, without its request being read; TLS is
/// closed before any handshake (a refusal must cost less than service).
async fn refuse(stream: compio::net::TcpStream, plain: bool, deadlines: crate::limits::Deadlines) {
    if plain {
        let mut conn = Conn::new(stream).with_deadlines(deadlines);
        write_error(&mut conn, &S3Error::slow_down(), true).await;
        conn.shutdown().await;
    }
}

/// An admitted connection's place in its core's [`crate::limits::ConnectionTable`], given
/// back when the connection ends.
struct Slot {
    core: Rc<Core>,
    client: std::net::IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.core.connections.borrow_mut().release(self.client);
        self.core.metrics.connections.open.decrement(1.0);
    }
}

/// Waits for `fut` at most `tick`: `Some` with its output, or `None` when the tick came
/// first. `fut` is left pending, not dropped, so that an accept the kernel has just
/// completed is not lost (the accept loops go round with the same one).
pub(crate) async fn or_tick<T>(
    mut fut: std::pin::Pin<&mut impl std::future::Future<Output = T>>,
    tick: Duration,
) -> Option<T> {
    let mut tick = Box::pin(compio::time::sleep(tick));
    std::future::poll_fn(|cx| {
        use std::future::Future;
        if let std::task::Poll::Ready(r) = fut.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(r));
        }
        if tick.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    })
    .await
}

/// Whether a connection can carry another request after this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    KeepAlive,
    Close,
}

fn request_id(core: &Core) -> String {
    let n = core.requests.get() + 1;
    core.requests.set(n);
    format!("{:02X}{:014X}", core.core_id, n)
}

async fn serve_connection(core: Rc<Core>, mut conn: Conn) {
    // Whether the connection ends with request bytes maybe unread (an error answer, or a
    // body the handler did not read).
    let mut unread = false;
    let mut first = true;
    // While the gateway drains, a request that arrives is still served, and its response
    // says `Connection: close` (`Conn::with_closing`); the loop ends after it.
    loop {
        conn.begin_request();
        let head = match conn.read_request_head(&core.limits, first).await {
            Ok(Some(h)) => h,
            Ok(None) | Err(HeadError::Io(_)) => break,
            Err(HeadError::Http(e)) => {
                let rid = request_id(&core);
                let err = S3Error::from_http(&e).with_request_id(rid);
                write_error(&mut conn, &err, true).await;
                core.metrics
                    .request("Malformed", err.status, Duration::ZERO, None);
                unread = true;
                break;
            }
        };
        first = false;
        conn.start_body(&head);
        let outcome = serve_request(&core, &mut conn, &head).await;
        // A body not read to its end is never parsed as the next request.
        if outcome == Outcome::Close || !head.keep_alive() || !conn.request_body_read() {
            unread = true;
            break;
        }
        // A response that said `Connection: close` (a draining gateway) ends it too.
        if conn.told_close() {
            break;
        }
    }
    match conn.timed_out() {
        // A peer that ran out of time sends nothing more worth waiting for.
        Some(wait) => {
            core.metrics.connections.closed(wait.label());
            conn.shutdown().await;
        }
        None if unread => conn.linger_close().await,
        None => conn.shutdown().await,
    }
}

/// One request whose head has been read: handled, answered, counted and logged.
async fn serve_request(core: &Core, conn: &mut Conn, head: &RequestHead) -> Outcome {
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let rid = request_id(core);
    let operation = Cell::new("Unknown");
    core.in_flight.set(core.in_flight.get() + 1);
    core.metrics.in_flight.increment(1.0);
    let span = tracing::info_span!("request", id = %rid);
    let outcome = async {
        match handle(core, conn, head, &rid, &operation).await {
            Ok(o) => o,
            Err(f) => {
                if AUTH_FAILURE_CODES.contains(&f.error.code) {
                    core.metrics.auth_failure(f.error.code.as_str());
                }
                tracing::debug!(cause = ?f.cause, "request failed");
                let err = f.error.with_request_id(rid.clone());
                // A response head already went out (its body failed mid-way): no error
                // document can follow it, only the end of the connection (the client sees a
                // short body).
                if conn.response().status != 0 {
                    tracing::warn!(
                        status = err.status,
                        code = err.code.as_str(),
                        detail = err.detail().unwrap_or(""),
                        "request failed after its response head was sent"
                    );
                    return Outcome::Close;
                }
                // Closed when the failure says so, the client asked for it, or the request
                // body was not read to its end (its bytes must not be taken for a request).
                let close = f.close || !head.keep_alive() || !conn.request_body_read();
                write_error(conn, &err, close).await;
                if close {
                    Outcome::Close
                } else {
                    Outcome::KeepAlive
                }
            }
        }
    }
    .instrument(span)
    .await;
    core.in_flight.set(core.in_flight.get().saturating_sub(1));
    core.metrics.in_flight.decrement(1.0);
    let mark = conn.response();
    let elapsed = started.elapsed();
    core.metrics.request(
        operation.get(),
        mark.status,
        elapsed,
        mark.first_byte
            .map(|t| t.saturating_duration_since(started)),
    );
    tracing::info!(
        target: "twofold::access",
        id = %rid,
        operation = operation.get(),
        method = %head.method,
        // The path only: a presigned URL's query is a bearer credential.
        path = %head.target.split('?').next().unwrap_or(""),
        status = mark.status,
        duration_ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
    outcome
}

/// Writes an S3 error document; as the answer to a HEAD, the head alone.
pub(crate) async fn write_error(conn: &mut Conn, err: &S3Error, close: bool) {
    // The detail is for operators only; the span gives it the request id.
    if let Some(detail) = err.detail() {
        tracing::warn!(
            status = err.status,
            code = err.code.as_str(),
            detail,
            "request failed"
        );
    }
    let mut head = err.response_head();
    if close {
        head.push_header("connection", b"close".to_vec());
    }
    let mut out = Vec::with_capacity(512 + err.xml_len());
    if head.write(&mut out).is_err() {
        return;
    }
    if !conn.is_head_request() {
        err.write_xml(&mut out);
    }
    let _ = conn.write_all(out).await;
}

/// Writes a response head (and, for small bodies, the body after it).
pub(crate) async fn write_response(
    conn: &mut Conn,
    head: &ResponseHead,
    body: &[u8],
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(512 + body.len());
    head.write(&mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    out.extend_from_slice(body);
    conn.write_all(out).await.0
}

fn auth_error(e: &sigv4::AuthError) -> S3Error {
    S3Error::new(e.http_status(), e.s3_code(), e.to_string())
}

/// Authenticates the request against the configured credentials.
fn authenticate(core: &Core, head: &RequestHead) -> Result<Verified, S3Error> {
    let creds = &core.settings.credentials;
    let lookup = |ak: &str| {
        creds
            .iter()
            .find(|c| c.access_key_id == ak)
            .map(|c| Secret::new(c.secret.0.as_str()))
    };
    let parts = RequestParts {
        method: &head.method,
        target: &head.target,
        headers: &head.headers,
    };
    sigv4::verify(
        &parts,
        std::time::SystemTime::now(),
        &[core.settings.region.as_str()],
        &lookup,
    )
    .map_err(|e| auth_error(&e))
}

/// The bucket and key a request names, and its query (listing parameters checked).
fn address_and_query(core: &Core, head: &RequestHead) -> Result<(Address, Query), Failure> {
    let address = crate::s3::resolve(
        head.header_str("host"),
        &head.target,
        &core.settings.base_domains,
    )
    .map_err(|e| Failure::keep(e.into()))?;
    let query =
        Query::parse(head.query(), QUERY_PARAMS_MAX).map_err(|e| Failure::keep(e.into()))?;
    crate::s3::check_listing_query(&query).map_err(|e| Failure::keep(e.into()))?;
    Ok((address, query))
}

/// One request: address, authentication, authorisation, then the operation.
async fn handle(
    core: &Core,
    conn: &mut Conn,
    head: &RequestHead,
    rid: &str,
    operation: &Cell<&'static str>,
) -> Result<Outcome, Failure> {
    // An error before the body is read needs no close here: the connection closes
    // whenever a request's body was not read to its end (`serve_connection`).
    let (address, query) = address_and_query(core, head)?;
    let op = S3Op::from_request(head, &address, &query);
    operation.set(op.name());
    // A browser form carries its credentials in its body, not its head.
    if op == S3Op::PostObject {
        let req = object::PostRequest::new(core, head, &address, &query, rid);
        return object::post(&req, conn).await;
    }
    let verified =
        authenticate(core, head).map_err(|e| Failure::keep(e.with_resource(address.resource())))?;
    core.settings
        .credentials
        .iter()
        .find(|c| c.access_key_id == verified.access_key_id)
        .map_or(Err(crate::s3::Denied::Bucket), |c| {
            c.authorise(address.bucket.as_deref(), op, &head.headers)
        })
        .map_err(|e| Failure::keep(S3Error::from(e).with_resource(address.resource())))?;
    // Entity tags clients send back are in their form; the backend knows its own.
    let head = &*etag_conditions_to_backend(head);
    let ctx = Request {
        core,
        head,
        address: &address,
        query: &query,
        verified: &verified,
        rid,
    };
    match op {
        S3Op::PutObject => object::put(&ctx, conn).await,
        S3Op::GetObject => object::get(&ctx, conn, false).await,
        S3Op::HeadObject => object::get(&ctx, conn, true).await,
        S3Op::ListObjects | S3Op::ListObjectsV2 | S3Op::ListObjectVersions => {
            passthrough::forward(&ctx, conn, true).await
        }
        S3Op::CopyObject => object::copy(&ctx, conn).await,
        S3Op::Other {
            name: name @ ("GetBucketEncryption" | "PutBucketEncryption" | "DeleteBucketEncryption"),
        } => bucket_encryption::bucket_encryption(&ctx, conn, name).await,
        S3Op::Other {
            name: "SelectObjectContent" | "GetObjectTorrent",
        } => Err(Failure::keep(S3Error::not_implemented().with_message(
            "This operation would expose stored ciphertext and is not supported through Twofold",
        ))),
        S3Op::CreateMultipartUpload => multipart::create(&ctx, conn).await,
        S3Op::UploadPart => multipart::upload_part(&ctx, conn).await,
        S3Op::CompleteMultipartUpload => multipart::complete(&ctx, conn).await,
        S3Op::AbortMultipartUpload => multipart::abort_or_list(&ctx, conn, false).await,
        S3Op::ListParts => multipart::abort_or_list(&ctx, conn, true).await,
        S3Op::ListMultipartUploads => multipart::list_uploads(&ctx, conn).await,
        S3Op::DeleteObjects => passthrough::delete_objects(&ctx, conn).await,
        S3Op::GetObjectAttributes => object::attributes(&ctx, conn).await,
        S3Op::UploadPartCopy => multipart::upload_part_copy(&ctx, conn).await,
        S3Op::Unknown => Err(Failure::keep(S3Error::method_not_allowed())),
        _ => passthrough::forward(&ctx, conn, false).await,
    }
}

/// The request with the entity tags of its conditional headers in the backend's form
/// ([`crate::s3::etag`]); the request itself when it has none to map. After
/// authentication: the signature covers the client's values.
fn etag_conditions_to_backend(head: &RequestHead) -> std::borrow::Cow<'_, RequestHead> {
    use crate::s3::etag::{CONDITION_HEADERS, condition_to_backend};
    fn mapped(v: &[u8]) -> Option<String> {
        match condition_to_backend(std::str::from_utf8(v).ok()?) {
            std::borrow::Cow::Owned(m) => Some(m),
            std::borrow::Cow::Borrowed(_) => None,
        }
    }
    let needs = head
        .headers
        .iter()
        .any(|(n, v)| CONDITION_HEADERS.contains(&n.as_str()) && mapped(v).is_some());
    if !needs {
        return std::borrow::Cow::Borrowed(head);
    }
    let mut out = head.clone();
    for (n, v) in out.headers.iter_mut() {
        if CONDITION_HEADERS.contains(&n.as_str())
            && let Some(m) = mapped(v)
        {
            *v = m.into_bytes();
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Everything a handler needs about the request.
pub(crate) struct Request<'a> {
    pub(crate) core: &'a Core,
    pub(crate) head: &'a RequestHead,
    pub(crate) address: &'a Address,
    pub(crate) query: &'a Query,
    pub(crate) verified: &'a Verified,
    pub(crate) rid: &'a str,
}

/// The object a CopyObject or UploadPartCopy reads, from its `x-amz-copy-source` header.
pub(crate) fn copy_source(ctx: &Request<'_>) -> Result<crate::s3::CopySource, S3Error> {
    let source = ctx
        .head
        .header_str("x-amz-copy-source")
        .ok_or_else(|| S3Error::invalid_argument("x-amz-copy-source is missing"))?;
    Ok(crate::s3::parse_copy_source(source)?)
}

/// Whether the request's credentials may read `bucket` (a copy's source bucket: the
/// request's own bucket was authorised before the operation ran).
pub(crate) fn may_read(ctx: &Request<'_>, bucket: &str) -> bool {
    ctx.core
        .settings
        .credentials
        .iter()
        .find(|c| c.access_key_id == ctx.verified.access_key_id)
        .is_some_and(|c| c.allows(bucket))
}

/// Whether the request's credentials may seal new objects under the key whose own id is
/// `key_id` (the default key: always).
pub(crate) fn may_use_key(ctx: &Request<'_>, key_id: &str) -> bool {
    let default = &ctx.core.keyring.named_keys().default.id;
    ctx.core
        .settings
        .credentials
        .iter()
        .find(|c| c.access_key_id == ctx.verified.access_key_id)
        .is_some_and(|c| c.may_use_key(key_id, default))
}

/// Percent-encodes a path-style backend path `/bucket[/key]`: every byte but the
/// unreserved ones and `/` is encoded.
pub(crate) fn backend_path(bucket: Option<&str>, key: Option<&str>) -> String {
    let mut out = String::from("/");
    if let Some(b) = bucket {
        out.push_str(&encode(b, false));
        if let Some(k) = key {
            out.push('/');
            out.push_str(&encode(k, true));
        }
    }
    out
}

/// RFC 3986 percent-encoding of all but unreserved bytes (and `/` when `keep_slash`).
pub(crate) fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The client's query without the presigned-URL parameters, encoded for the backend.
pub(crate) fn backend_query(query: &Query, drop: &[&str]) -> Option<String> {
    let parts: Vec<String> = query
        .params()
        .iter()
        .filter(|(k, _)| !k.starts_with("X-Amz-") && !drop.contains(&k.as_str()))
        .map(|(k, v)| {
            if v.is_empty() {
                encode(k, false)
            } else {
                format!("{}={}", encode(k, false), encode(v, false))
            }
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("&"))
}

#[cfg(test)]
mod buffer_pool_tests {
    use super::{BufferPool, POOL_BUFFER_BYTES_MAX, POOL_BUFFERS_MAX};

    #[test]
    fn a_buffer_given_back_is_taken_again_at_the_length_asked() {
        let pool = BufferPool::default();
        let mut b = pool.take(100);
        assert_eq!(b.len(), 100);
        b[0] = 7;
        let at = b.as_ptr();
        pool.give(b);
        let b = pool.take(60);
        assert_eq!((b.len(), b.as_ptr()), (60, at));
        pool.give(b);
        // Longer than its length, within its capacity: the tail is zero-filled.
        let b = pool.take(100);
        assert_eq!((b.len(), b.as_ptr(), b[99]), (100, at, 0));
        pool.give(b);
        // Larger than any buffer held: a new one.
        let big = pool.take(1000);
        assert_ne!(big.as_ptr(), at);
        assert_eq!(pool.free.borrow().len(), 1);
    }

    #[test]
    fn the_pool_is_bounded_in_count_and_buffer_size() {
        let pool = BufferPool::default();
        for _ in 0..POOL_BUFFERS_MAX + 10 {
            pool.give(vec![0u8; 16]);
        }
        pool.give(vec![0u8; POOL_BUFFER_BYTES_MAX + 1]);
        let held = pool.free.borrow();
        assert_eq!(held.len(), POOL_BUFFERS_MAX);
        assert!(held.iter().all(|b| b.capacity() <= POOL_BUFFER_BYTES_MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_cores_means_one_per_available_cpu() {
        assert_eq!(core_count(3), 3);
        assert_eq!(core_count(0), available_cpus());
        assert!(core_count(0) >= 1);
    }
}
