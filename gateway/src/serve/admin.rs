//! The admin listener: `/metrics` (Prometheus text exposition), `/healthz` (the process is
//! alive and its cores go round their loops) and `/readyz` (the backend answers and every
//! key custodian has a working session). It runs on a thread and a compio runtime of its
//! own, with its own backend connection, so probing never touches the cores' data path.
//! `/metrics` and the probes are meant for 127.0.0.1 or a management network: they have no
//! authentication and tell nothing secret. Under `/console` it serves the operators' web
//! console (`super::console`), which has its own logins. With `[admin] tls` the listener
//! speaks HTTPS only.
//!
//! `/readyz` answers from a probe at most [`READINESS_REUSE`] old: probes within that time
//! (and probes that arrive while one is running) share its result, so a flood of them costs
//! at most one backend request and one HSM round per [`READINESS_REUSE`]. Stopping is never
//! cached: a stopping gateway answers 503 at once.

use super::Heartbeats;
use super::backend::Backend;
use super::io::{Conn, HeadError};
use crate::config::ServeSettings;
use crate::http::{Limits, ResponseHead};
use crate::keys::Custodian;
use metrics_exporter_prometheus::PrometheusHandle;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one readiness probe (backend or custodian) may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// A core whose loop has not gone round for this long makes `/healthz` fail.
pub const CORE_STALL_LIMIT: Duration = Duration::from_secs(10);
/// How often an idle admin accept loop looks whether the gateway has stopped.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Open connections the admin listener serves at once; more are closed at accept. A
/// Prometheus server and a few probes need a handful.
pub const ADMIN_CONNECTIONS_MAX: usize = 64;
/// Deadlines of admin connections: a scrape or probe sends its whole head at once.
const ADMIN_DEADLINES: crate::limits::Deadlines = crate::limits::Deadlines {
    idle: Duration::from_secs(30),
    head: Duration::from_secs(5),
    read_gap: Duration::from_secs(5),
    write_gap: Duration::from_secs(10),
};
/// How long one readiness probe's result answers `/readyz`.
pub const READINESS_REUSE: Duration = Duration::from_secs(1);
/// How often a `/readyz` that found a probe running looks whether its result is in.
const READINESS_WAIT_POLL: Duration = Duration::from_millis(10);

/// The result of one probe of the backend and both custodians.
#[derive(Debug, Clone)]
struct Readiness {
    at: Instant,
    ready: bool,
    report: String,
}

/// Clears the "a probe is running" mark however the probe ends.
struct ProbingGuard<'a>(&'a Cell<bool>);

impl Drop for ProbingGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

struct Admin {
    backend: Backend,
    inner: Custodian,
    outer: Custodian,
    metrics: PrometheusHandle,
    heartbeats: Arc<Heartbeats>,
    stopping: Arc<AtomicBool>,
    /// Connections open now.
    open: std::cell::Cell<usize>,
    connections: crate::telemetry::ConnectionMetrics,
    /// The last probe's result.
    last_probe: RefCell<Option<Readiness>>,
    /// Whether a probe is running now.
    probing: Cell<bool>,
    /// The web console, when configured.
    console: Option<super::console::Console>,
    /// HTTPS, when configured.
    tls: Option<crate::tls::CoreAcceptor>,
}

/// What the admin listener shares with the gateway's cores.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The custodians `/readyz` probes.
    pub(crate) inner: Custodian,
    pub(crate) outer: Custodian,
    /// The cores' heartbeats.
    pub(crate) heartbeats: Arc<Heartbeats>,
    /// Set while the gateway drains: `/readyz` answers 503.
    pub(crate) stopping: Arc<AtomicBool>,
    /// Set when the admin thread is to end.
    pub(crate) done: Arc<AtomicBool>,
    /// The backend's TLS client configuration, if the backend is reached over TLS.
    pub(crate) backend_tls: Option<Arc<rustls::ClientConfig>>,
    /// What the web console needs, when the configuration has one.
    pub(crate) console: Option<super::console::ConsoleParts>,
    /// The admin listener's certificate, when it speaks HTTPS ([`load_tls`]).
    pub(crate) tls: Option<Arc<crate::tls::ServerTls>>,
}

/// Binds the admin listener and starts its thread. The thread ends when `shared.done` is
/// set.
pub(crate) fn start(
    addr: SocketAddr,
    settings: &ServeSettings,
    shared: Shared,
) -> std::io::Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let Shared {
        inner,
        outer,
        heartbeats,
        stopping,
        done,
        backend_tls,
        console,
        tls,
    } = shared;
    let https = tls.is_some();
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let has_console = settings.console.is_some();
    let settings = settings.clone();
    let metrics = crate::telemetry::install_metrics();
    let thread = std::thread::Builder::new()
        .name("twofold-admin".into())
        .spawn(move || {
            let rt = match compio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the admin listener's runtime");
                    return;
                }
            };
            let console = match (settings.console.clone(), console) {
                (Some(c), Some(parts)) => Some(super::console::Console::new(
                    c,
                    parts,
                    (inner.clone(), outer.clone()),
                    tls.is_some(),
                )),
                _ => None,
            };
            let admin = Rc::new(Admin {
                backend: Backend::new(
                    &settings,
                    backend_tls.map(|c| crate::tls::core_client_config(&c)),
                ),
                console,
                tls: tls.map(crate::tls::CoreAcceptor::new),
                inner,
                outer,
                metrics,
                heartbeats,
                stopping,
                open: std::cell::Cell::new(0),
                connections: crate::telemetry::ConnectionMetrics::new("admin"),
                last_probe: RefCell::new(None),
                probing: Cell::new(false),
            });
            rt.block_on(accept_loop(admin, listener, done));
        })?;
    tracing::info!(
        addr = %local,
        console = has_console,
        https,
        "admin listener on /metrics, /healthz, /readyz"
    );
    Ok((local, thread))
}

/// The admin listener's certificate, when `[admin] tls` is configured.
pub(crate) fn load_tls(
    settings: &ServeSettings,
) -> std::io::Result<Option<Arc<crate::tls::ServerTls>>> {
    match &settings.admin_tls {
        crate::config::ListenerTls::Tls { cert, key } => Ok(Some(Arc::new(
            crate::tls::ServerTls::load(cert, key)
                .map_err(|e| std::io::Error::other(format!("admin.tls: {e}")))?,
        ))),
        crate::config::ListenerTls::PlainHttp => Ok(None),
    }
}

async fn accept_loop(admin: Rc<Admin>, l: std::net::TcpListener, done: Arc<AtomicBool>) {
    let listener = match compio::net::TcpListener::from_std(l) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot use the admin listener");
            return;
        }
    };
    let mut accept = Box::pin(listener.accept());
    while !done.load(Ordering::SeqCst) {
        let Some(result) = super::or_tick(accept.as_mut(), POLL_INTERVAL).await else {
            continue;
        };
        match result {
            Ok((stream, peer)) => admit(&admin, stream, peer),
            Err(e) => super::accept_failed(&admin.connections, &e).await,
        }
        accept = Box::pin(listener.accept());
    }
}

/// Serves a new connection, or closes it at once above [`ADMIN_CONNECTIONS_MAX`].
fn admit(admin: &Rc<Admin>, stream: compio::net::TcpStream, peer: SocketAddr) {
    if admin.open.get() >= ADMIN_CONNECTIONS_MAX {
        admin.connections.refused("core_limit");
        return;
    }
    admin.open.set(admin.open.get() + 1);
    admin.connections.accepted.increment(1);
    admin.connections.open.increment(1.0);
    let admin = admin.clone();
    let acceptor = admin.tls.as_ref().map(|t| t.acceptor());
    compio::runtime::spawn(async move {
        let conn = match acceptor {
            None => Some(Conn::new(stream)),
            Some(acceptor) => super::handshake(acceptor, stream)
                .await
                .map(|tls| Conn::from_stream(super::io::Stream::Tls(Box::new(tls)))),
        };
        if let Some(conn) = conn {
            serve(&admin, conn.with_deadlines(ADMIN_DEADLINES), peer).await;
        }
        admin.open.set(admin.open.get() - 1);
        admin.connections.open.decrement(1.0);
    })
    .detach();
}

async fn serve(admin: &Admin, mut conn: Conn, peer: SocketAddr) {
    let limits = Limits::default();
    let mut first = true;
    loop {
        conn.begin_request();
        let head = match conn.read_request_head(&limits, first).await {
            Ok(Some(h)) => h,
            Ok(None) | Err(HeadError::Io(_)) | Err(HeadError::Http(_)) => break,
        };
        first = false;
        conn.start_body(&head);
        let path = head.path();
        let answer = match &admin.console {
            Some(console) if path == "/console" || path.starts_with("/console/") => {
                match read_body(&mut conn, &head).await {
                    Ok(body) => {
                        console
                            .handle(&console_request(&head, &body, peer), admin)
                            .await
                    }
                    Err((status, why)) => Answer::text(status, why),
                }
            }
            _ => probes(admin, &head).await,
        };
        let mut out = ResponseHead::new(answer.status);
        out.push_header("content-type", answer.content_type.as_bytes().to_vec());
        out.push_header("content-length", answer.body.len().to_string().into_bytes());
        for (name, value) in &answer.headers {
            out.push_header(name, value.as_bytes().to_vec());
        }
        if !answer.headers.iter().any(|(n, _)| *n == "cache-control") {
            out.push_header("cache-control", b"no-store".to_vec());
        }
        let mut bytes = Vec::with_capacity(256 + answer.body.len());
        if out.write(&mut bytes).is_err() {
            break;
        }
        if !conn.is_head_request() {
            bytes.extend_from_slice(&answer.body);
        }
        // A body left unread (refused as too large) ends the connection.
        if conn.write_all(bytes).await.0.is_err() || !head.keep_alive() || !conn.request_body_read()
        {
            break;
        }
    }
    if let Some(wait) = conn.timed_out() {
        admin.connections.closed(wait.label());
    }
    conn.shutdown().await;
}

use super::console::Answer;

impl Answer {
    fn text(status: u16, body: impl Into<String>) -> Self {
        Answer {
            status,
            content_type: "text/plain",
            headers: Vec::new(),
            body: body.into().into_bytes(),
        }
    }
}

/// `/metrics`, `/healthz`, `/readyz`.
async fn probes(admin: &Admin, head: &crate::http::RequestHead) -> Answer {
    let (status, content_type, body) = match (head.method.as_str(), head.path()) {
        ("GET", "/metrics") => (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            admin.metrics.render(),
        ),
        ("GET", "/healthz") => healthz(admin),
        ("GET", "/readyz") => readyz(admin).await,
        ("GET", _) => (
            404,
            "text/plain",
            "not found: /metrics, /healthz, /readyz\n".into(),
        ),
        _ => (405, "text/plain", "only GET\n".into()),
    };
    Answer {
        status,
        content_type,
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

/// The body of a console request: at most [`super::console::CONSOLE_BODY_BYTES_MAX`], with a
/// Content-Length.
async fn read_body(
    conn: &mut Conn,
    head: &crate::http::RequestHead,
) -> Result<Vec<u8>, (u16, &'static str)> {
    let len = match head.body_kind() {
        Ok(crate::http::BodyKind::None) => 0,
        Ok(crate::http::BodyKind::ContentLength(n)) => n,
        Ok(_) | Err(_) => return Err((411, "the console needs a Content-Length\n")),
    };
    if len > super::console::CONSOLE_BODY_BYTES_MAX {
        return Err((413, "request body too large\n"));
    }
    let len = len as usize;
    let (res, body) = conn.read_exact_into(vec![0; len], 0..len).await;
    res.map_err(|_| (400, "the request body ended early\n"))?;
    Ok(body)
}

fn console_request<'a>(
    head: &'a crate::http::RequestHead,
    body: &'a [u8],
    remote: SocketAddr,
) -> super::console::Request<'a> {
    super::console::Request {
        method: head.method.as_str(),
        path: head.path(),
        cookie: head.header_str("cookie"),
        csrf: head.header_str(super::console::CSRF_HEADER),
        body,
        remote,
    }
}

impl super::console::Live for Admin {
    async fn readiness(&self) -> (bool, Vec<String>) {
        let probe = recent_probe(self).await;
        let ready = probe.ready && !self.stopping.load(Ordering::SeqCst);
        (ready, probe.report.lines().map(str::to_owned).collect())
    }

    fn cores(&self) -> Vec<(u64, bool)> {
        let limit = CORE_STALL_LIMIT.as_millis() as u64;
        self.heartbeats
            .ages_ms()
            .into_iter()
            .map(|ms| (ms, ms <= limit))
            .collect()
    }

    fn metrics(&self) -> String {
        self.metrics.render()
    }
}

fn healthz(admin: &Admin) -> (u16, &'static str, String) {
    if admin.heartbeats.all_within(CORE_STALL_LIMIT) {
        (200, "text/plain", "ok\n".into())
    } else {
        (
            503,
            "text/plain",
            format!(
                "a core has not gone round its loop for {} s\n",
                CORE_STALL_LIMIT.as_secs()
            ),
        )
    }
}

/// Ready only if the backend and both custodians answer (from a probe at most
/// [`READINESS_REUSE`] old) and the gateway is not stopping.
async fn readyz(admin: &Admin) -> (u16, &'static str, String) {
    let (ready, report) = if admin.stopping.load(Ordering::SeqCst) {
        (false, "gateway: stopping\n".to_owned())
    } else {
        let probe = recent_probe(admin).await;
        (probe.ready, probe.report)
    };
    metrics::gauge!(crate::telemetry::READY).set(if ready { 1.0 } else { 0.0 });
    if ready {
        (200, "text/plain", format!("ready\n{report}"))
    } else {
        (503, "text/plain", format!("not ready\n{report}"))
    }
}

/// The last probe's result if it is recent enough; else the result of a new probe, made by
/// this call or, when one is running already, by that one.
async fn recent_probe(admin: &Admin) -> Readiness {
    loop {
        if let Some(last) = admin.last_probe.borrow().as_ref()
            && last.at.elapsed() < READINESS_REUSE
        {
            return last.clone();
        }
        if !admin.probing.replace(true) {
            let _guard = ProbingGuard(&admin.probing);
            let (ready, report) = probe(admin).await;
            let result = Readiness {
                at: Instant::now(),
                ready,
                report,
            };
            *admin.last_probe.borrow_mut() = Some(result.clone());
            return result;
        }
        compio::time::sleep(READINESS_WAIT_POLL).await;
    }
}

/// Probes the backend and both custodians: whether all answered, and a line about each.
async fn probe(admin: &Admin) -> (bool, String) {
    metrics::counter!(crate::telemetry::READINESS_PROBES_TOTAL).increment(1);
    let mut report = String::new();
    let mut ready = true;
    let backend = compio::time::timeout(
        PROBE_TIMEOUT,
        admin
            .backend
            .simple("GET", "/", None, Vec::new(), Vec::new()),
    )
    .await;
    match backend {
        Ok(Ok((head, _))) if head.status < 500 => {
            report.push_str(&format!("backend: ok (HTTP {})\n", head.status));
        }
        Ok(Ok((head, _))) => {
            ready = false;
            report.push_str(&format!("backend: failing (HTTP {})\n", head.status));
        }
        Ok(Err(e)) => {
            ready = false;
            report.push_str(&format!("backend: unreachable: {e}\n"));
        }
        Err(_) => {
            ready = false;
            report.push_str(&format!(
                "backend: no answer within {} s\n",
                PROBE_TIMEOUT.as_secs()
            ));
        }
    }
    for custodian in [&admin.outer, &admin.inner] {
        let layer = custodian.layer();
        match compio::time::timeout(PROBE_TIMEOUT, custodian.check()).await {
            Ok(Ok(())) => report.push_str(&format!("custodian {layer}: ok\n")),
            Ok(Err(e)) => {
                ready = false;
                report.push_str(&format!("custodian {layer}: failing: {e}\n"));
            }
            Err(_) => {
                ready = false;
                report.push_str(&format!(
                    "custodian {layer}: no answer within {} s\n",
                    PROBE_TIMEOUT.as_secs()
                ));
            }
        }
    }
    (ready, report)
}
