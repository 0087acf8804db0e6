//! What the gateway tells its operators: Prometheus metrics through the `metrics` facade
//! (rendered by `metrics-exporter-prometheus` on the admin listener), structured logs
//! through `tracing`, and the audit log of key operations.
//!
//! Recording stays off locks on the data path: each core resolves its metric handles once
//! ([`CoreMetrics`], thread-local caches for the crypto counters) and then only does atomic
//! adds on them; the registry's own map is touched the first time a label set is seen.
//! Names follow the Prometheus conventions: a `twofold_` prefix, base units (`_bytes`,
//! `_seconds`), `_total` on counters.

use crate::envelope::aead::Layer;
use crate::envelope::segment::Crypted;
use metrics::{Counter, Gauge, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

/// Requests by S3 operation and HTTP status code.
pub const REQUESTS_TOTAL: &str = "twofold_requests_total";
/// Request duration, head read to last byte written, by operation.
pub const REQUEST_DURATION_SECONDS: &str = "twofold_request_duration_seconds";
/// Head read to the first byte of the response, by operation.
pub const TIME_TO_FIRST_BYTE_SECONDS: &str = "twofold_time_to_first_byte_seconds";
/// Requests being served now.
pub const REQUESTS_IN_FLIGHT: &str = "twofold_requests_in_flight";
/// Bytes read from clients (heads and bodies, as on the wire).
pub const CLIENT_RECEIVED_BYTES_TOTAL: &str = "twofold_client_received_bytes_total";
/// Bytes written to clients.
pub const CLIENT_SENT_BYTES_TOTAL: &str = "twofold_client_sent_bytes_total";
/// Bytes written to the backend.
pub const BACKEND_SENT_BYTES_TOTAL: &str = "twofold_backend_sent_bytes_total";
/// Bytes read from the backend.
pub const BACKEND_RECEIVED_BYTES_TOTAL: &str = "twofold_backend_received_bytes_total";
/// Plaintext bytes each layer sealed (the outer layer seals the inner layer's output).
pub const SEALED_BYTES_TOTAL: &str = "twofold_sealed_bytes_total";
/// Bytes each layer opened and verified.
pub const OPENED_BYTES_TOTAL: &str = "twofold_opened_bytes_total";
/// Custodian (HSM) operations by layer and kind.
pub const HSM_OPERATIONS_TOTAL: &str = "twofold_hsm_operations_total";
/// Custodian operation latency.
pub const HSM_OPERATION_DURATION_SECONDS: &str = "twofold_hsm_operation_duration_seconds";
/// Failed custodian operations.
pub const HSM_ERRORS_TOTAL: &str = "twofold_hsm_errors_total";
/// When each custodian last answered an operation successfully, by layer (Unix seconds).
pub const HSM_LAST_SUCCESS_TIMESTAMP_SECONDS: &str = "twofold_hsm_last_success_timestamp_seconds";
/// Unwraps refused without a custodian call: the header named a KEK that is not configured.
pub const KEK_REFUSED_TOTAL: &str = "twofold_kek_refused_total";
/// Reads of objects under a destroyed (crypto-shredded) key, refused.
pub const SHREDDED_READS_TOTAL: &str = "twofold_shredded_reads_total";
/// Bucket-key cache hits.
pub const KEY_CACHE_HITS_TOTAL: &str = "twofold_key_cache_hits_total";
/// Bucket-key cache misses.
pub const KEY_CACHE_MISSES_TOTAL: &str = "twofold_key_cache_misses_total";
/// Bucket keys held in the clear, all cores together.
pub const KEY_CACHE_ENTRIES: &str = "twofold_key_cache_entries";
/// Requests refused by authentication or authorisation, by reason.
pub const AUTH_FAILURES_TOTAL: &str = "twofold_auth_failures_total";
/// Stored objects that failed verification, by reason.
pub const INTEGRITY_FAILURES_TOTAL: &str = "twofold_integrity_failures_total";
/// Backend exchanges that failed, by kind.
pub const BACKEND_ERRORS_TOTAL: &str = "twofold_backend_errors_total";
/// SIGHUP reloads of the client-facing certificate, by result (`ok`, `failed`).
pub const TLS_RELOADS_TOTAL: &str = "twofold_tls_reloads_total";
/// Client TLS handshakes that failed, by reason (`error`, `timeout`).
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "twofold_tls_handshake_failures_total";
/// Client connections open now, by listener (`s3`, `admin`).
pub const CONNECTIONS_OPEN: &str = "twofold_connections_open";
/// Client connections accepted and admitted, by listener.
pub const CONNECTIONS_ACCEPTED_TOTAL: &str = "twofold_connections_accepted_total";
/// Client connections refused at accept, by listener and reason (`core_limit`,
/// `client_limit`).
pub const CONNECTIONS_REFUSED_TOTAL: &str = "twofold_connections_refused_total";
/// Client connections closed by a deadline, by listener and reason (`idle_timeout`,
/// `head_timeout`, `body_timeout`, `send_timeout`).
pub const CONNECTIONS_CLOSED_TOTAL: &str = "twofold_connections_closed_total";
/// Failed accepts, by kind (`fd_limit`: out of file descriptors or kernel memory, after
/// which the listener pauses; `other`).
pub const ACCEPT_ERRORS_TOTAL: &str = "twofold_accept_errors_total";
/// 1 when `/readyz` last said ready, else 0.
pub const READY: &str = "twofold_ready";
/// Probes of the backend and both custodians made for `/readyz` (each one backend request
/// and one call per PKCS#11 custodian).
pub const READINESS_PROBES_TOTAL: &str = "twofold_readiness_probes_total";
/// Reads of objects Twofold did not write, served as they are under `pass-through`, by
/// operation.
pub const PASSTHROUGH_READS_TOTAL: &str = "twofold_passthrough_reads_total";
/// CopyObjects of format version 1 objects with REPLACE, sealed again as version 2, by
/// result (`ok`, `failed`).
pub const FORMAT_CONVERSIONS_TOTAL: &str = "twofold_format_conversions_total";
/// Always 1, labelled with the version.
pub const BUILD_INFO: &str = "twofold_build_info";

/// Buckets of the request-duration and time-to-first-byte histograms, in seconds.
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];
/// Buckets of the HSM latency histogram, in seconds.
const HSM_BUCKETS_SECONDS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];
/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder (once; later calls
/// return the same handle) and describes every metric.
pub fn install_metrics() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(REQUEST_DURATION_SECONDS.into()),
                    LATENCY_BUCKETS_SECONDS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(TIME_TO_FIRST_BYTE_SECONDS.into()),
                        LATENCY_BUCKETS_SECONDS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(HSM_OPERATION_DURATION_SECONDS.into()),
                        HSM_BUCKETS_SECONDS,
                    )
                });
            let builder = match builder {
                Ok(b) => b,
                // Only an empty bucket list fails, and the lists above are constants.
                Err(_) => PrometheusBuilder::new(),
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics stays empty");
            }
            describe();
            crate::envelope::segment::set_byte_counter(crypto_bytes);
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("twofold-metrics".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS_TOTAL,
        "Requests answered, by S3 operation and HTTP status code."
    );
    describe_histogram!(
        REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from a request's head to its last response byte."
    );
    describe_histogram!(
        TIME_TO_FIRST_BYTE_SECONDS,
        Unit::Seconds,
        "Time from a request's head to the first byte of its response."
    );
    describe_gauge!(REQUESTS_IN_FLIGHT, "Requests being served.");
    describe_counter!(
        CLIENT_RECEIVED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes read from clients."
    );
    describe_counter!(
        CLIENT_SENT_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes written to clients."
    );
    describe_counter!(
        BACKEND_SENT_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes written to the S3 backend."
    );
    describe_counter!(
        BACKEND_RECEIVED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes read from the S3 backend."
    );
    describe_counter!(
        SEALED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes sealed by each encryption layer."
    );
    describe_counter!(
        OPENED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes opened and verified by each encryption layer."
    );
    describe_counter!(
        HSM_OPERATIONS_TOTAL,
        "Key custodian operations (bucket-key wrap and unwrap), by layer and kind."
    );
    describe_histogram!(
        HSM_OPERATION_DURATION_SECONDS,
        Unit::Seconds,
        "Key custodian operation latency."
    );
    describe_counter!(
        HSM_ERRORS_TOTAL,
        "Key custodian operations that failed, by layer and kind."
    );
    describe_gauge!(
        HSM_LAST_SUCCESS_TIMESTAMP_SECONDS,
        Unit::Seconds,
        "When each custodian last answered an operation successfully (Unix time)."
    );
    describe_counter!(
        KEK_REFUSED_TOTAL,
        "Bucket-key unwraps refused without a custodian call: the object's or upload's header named a key-encryption key that is not configured."
    );
    describe_counter!(
        SHREDDED_READS_TOTAL,
        "Reads refused because the object's key was destroyed (crypto-shredded)."
    );
    describe_counter!(KEY_CACHE_HITS_TOTAL, "Bucket-key cache hits.");
    describe_counter!(KEY_CACHE_MISSES_TOTAL, "Bucket-key cache misses.");
    describe_gauge!(
        KEY_CACHE_ENTRIES,
        "Bucket keys held in the clear in the per-core caches."
    );
    describe_counter!(
        AUTH_FAILURES_TOTAL,
        "Requests refused by authentication or authorisation, by reason."
    );
    describe_counter!(
        INTEGRITY_FAILURES_TOTAL,
        "Stored objects that failed verification, by reason."
    );
    describe_counter!(
        BACKEND_ERRORS_TOTAL,
        "Backend exchanges that failed, by kind."
    );
    describe_counter!(
        TLS_RELOADS_TOTAL,
        "SIGHUP reloads of the client-facing TLS certificate, by result."
    );
    describe_counter!(
        TLS_HANDSHAKE_FAILURES_TOTAL,
        "Client TLS handshakes that failed or timed out, by reason."
    );
    describe_gauge!(CONNECTIONS_OPEN, "Client connections open, by listener.");
    describe_counter!(
        CONNECTIONS_ACCEPTED_TOTAL,
        "Client connections accepted and admitted, by listener."
    );
    describe_counter!(
        CONNECTIONS_REFUSED_TOTAL,
        "Client connections refused because a connection cap was reached, by listener and reason."
    );
    describe_counter!(
        CONNECTIONS_CLOSED_TOTAL,
        "Client connections closed because a deadline passed, by listener and reason."
    );
    describe_counter!(
        ACCEPT_ERRORS_TOTAL,
        "Failed accepts, by kind; fd_limit pauses the listener briefly."
    );
    describe_gauge!(READY, "1 when the gateway last found itself ready, else 0.");
    describe_counter!(
        READINESS_PROBES_TOTAL,
        "Probes of the backend and the custodians made for /readyz."
    );
    describe_counter!(
        PASSTHROUGH_READS_TOTAL,
        "Reads of unencrypted objects served as they are (pass-through), by operation."
    );
    describe_counter!(
        FORMAT_CONVERSIONS_TOTAL,
        "Format version 1 objects copied with REPLACE and sealed again as version 2, by result."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label.");
}

/// Counts a reload of the client-facing certificate (off the data path: the signal thread).
pub fn tls_reload(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    metrics::counter!(TLS_RELOADS_TOTAL, "result" => result).increment(1);
}

/// Counts a client TLS handshake that failed (a plain-HTTP client, a client that does not
/// trust the certificate, a scanner) or did not finish in time. Only at handshake time,
/// never per request.
pub fn tls_handshake_failure(reason: &'static str) {
    metrics::counter!(TLS_HANDSHAKE_FAILURES_TOTAL, "reason" => reason).increment(1);
}

/// One listener's connection counters, resolved once per listener and core.
#[derive(Debug, Clone)]
pub struct ConnectionMetrics {
    listener: &'static str,
    /// Open connections.
    pub open: Gauge,
    /// Admitted connections.
    pub accepted: Counter,
}

impl ConnectionMetrics {
    /// The counters of `listener` (`s3` or `admin`).
    pub fn new(listener: &'static str) -> Self {
        Self {
            listener,
            open: metrics::gauge!(CONNECTIONS_OPEN, "listener" => listener),
            accepted: metrics::counter!(CONNECTIONS_ACCEPTED_TOTAL, "listener" => listener),
        }
    }

    /// Counts a connection refused at accept (rare: not worth a cached handle).
    pub fn refused(&self, reason: &'static str) {
        metrics::counter!(CONNECTIONS_REFUSED_TOTAL, "listener" => self.listener, "reason" => reason)
            .increment(1);
    }

    /// Counts a connection closed by a deadline.
    pub fn closed(&self, reason: &'static str) {
        metrics::counter!(CONNECTIONS_CLOSED_TOTAL, "listener" => self.listener, "reason" => reason)
            .increment(1);
    }

    /// Counts a failed accept.
    pub fn accept_error(&self, kind: &'static str) {
        metrics::counter!(ACCEPT_ERRORS_TOTAL, "listener" => self.listener, "kind" => kind)
            .increment(1);
    }
}

/// A layer's label value.
pub fn layer_label(layer: Layer) -> &'static str {
    match layer {
        Layer::Inner => "inner",
        Layer::Outer => "outer",
    }
}

/// Byte counters of one side of a connection: what was read and what was written.
#[derive(Debug, Clone)]
pub struct Meter {
    /// Bytes read.
    pub received: Counter,
    /// Bytes written.
    pub sent: Counter,
}

impl Meter {
    /// The client side.
    pub fn client() -> Self {
        Self {
            received: metrics::counter!(CLIENT_RECEIVED_BYTES_TOTAL),
            sent: metrics::counter!(CLIENT_SENT_BYTES_TOTAL),
        }
    }

    /// The backend side.
    pub fn backend() -> Self {
        Self {
            received: metrics::counter!(BACKEND_RECEIVED_BYTES_TOTAL),
            sent: metrics::counter!(BACKEND_SENT_BYTES_TOTAL),
        }
    }
}

/// One core's metric handles, resolved once per label set.
#[derive(Debug)]
pub struct CoreMetrics {
    /// Requests being served.
    pub in_flight: Gauge,
    /// Client-side byte counters, shared by the core's client connections.
    pub client: Meter,
    /// Backend-side byte counters.
    pub backend: Meter,
    /// Client connection counters of the S3 listener.
    pub connections: ConnectionMetrics,
    requests: RefCell<HashMap<(&'static str, u16), Counter>>,
    latency: RefCell<HashMap<&'static str, (Histogram, Histogram)>>,
    reasons: RefCell<HashMap<(&'static str, &'static str), Counter>>,
}

impl Default for CoreMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CoreMetrics {
    /// Handles on the installed recorder (no-ops if none is installed).
    pub fn new() -> Self {
        Self {
            in_flight: metrics::gauge!(REQUESTS_IN_FLIGHT),
            client: Meter::client(),
            backend: Meter::backend(),
            connections: ConnectionMetrics::new("s3"),
            requests: RefCell::default(),
            latency: RefCell::default(),
            reasons: RefCell::default(),
        }
    }

    /// Counts an answered request with its duration and time to first byte (`None`: no
    /// byte of a response was written).
    pub fn request(
        &self,
        operation: &'static str,
        status: u16,
        duration: Duration,
        first_byte: Option<Duration>,
    ) {
        self.requests
            .borrow_mut()
            .entry((operation, status))
            .or_insert_with(|| {
                metrics::counter!(REQUESTS_TOTAL, "operation" => operation, "code" => status.to_string())
            })
            .increment(1);
        let mut latency = self.latency.borrow_mut();
        let (total, ttfb) = latency.entry(operation).or_insert_with(|| {
            (
                metrics::histogram!(REQUEST_DURATION_SECONDS, "operation" => operation),
                metrics::histogram!(TIME_TO_FIRST_BYTE_SECONDS, "operation" => operation),
            )
        });
        total.record(duration.as_secs_f64());
        if let Some(t) = first_byte {
            ttfb.record(t.as_secs_f64());
        }
    }

    fn reason(&self, metric: &'static str, label: &'static str, reason: &'static str) {
        self.reasons
            .borrow_mut()
            .entry((metric, reason))
            .or_insert_with(|| metrics::counter!(metric, label => reason))
            .increment(1);
    }

    /// Counts a request refused by authentication or authorisation.
    pub fn auth_failure(&self, reason: &'static str) {
        self.reason(AUTH_FAILURES_TOTAL, "reason", reason);
    }

    /// Counts a stored object that failed verification.
    pub fn integrity_failure(&self, reason: &'static str) {
        self.reason(INTEGRITY_FAILURES_TOTAL, "reason", reason);
    }

    /// Counts a failed backend exchange.
    pub fn backend_error(&self, kind: &'static str) {
        self.reason(BACKEND_ERRORS_TOTAL, "kind", kind);
    }
}

/// The four crypto counters of this thread, resolved on first use.
struct CryptoCounters {
    sealed: [Counter; 2],
    opened: [Counter; 2],
}

thread_local! {
    static CRYPTO: CryptoCounters = CryptoCounters {
        sealed: [
            metrics::counter!(SEALED_BYTES_TOTAL, "layer" => "inner"),
            metrics::counter!(SEALED_BYTES_TOTAL, "layer" => "outer"),
        ],
        opened: [
            metrics::counter!(OPENED_BYTES_TOTAL, "layer" => "inner"),
            metrics::counter!(OPENED_BYTES_TOTAL, "layer" => "outer"),
        ],
    };
}

fn layer_index(layer: Layer) -> usize {
    match layer {
        Layer::Inner => 0,
        Layer::Outer => 1,
    }
}

/// The envelope's [`ByteCounter`](crate::envelope::segment::ByteCounter): bytes sealed or
/// opened by one layer.
fn crypto_bytes(what: Crypted, layer: Layer, bytes: usize) {
    match what {
        Crypted::Sealed => sealed(layer, bytes),
        Crypted::Opened => opened(layer, bytes),
    }
}

/// Counts bytes sealed by one layer.
pub fn sealed(layer: Layer, bytes: usize) {
    CRYPTO.with(|c| c.sealed[layer_index(layer)].increment(bytes as u64));
}

/// Counts bytes opened (and verified) by one layer.
pub fn opened(layer: Layer, bytes: usize) {
    CRYPTO.with(|c| c.opened[layer_index(layer)].increment(bytes as u64));
}

/// Counts one custodian operation (`kind`: `wrap`, `unwrap` or `check`) and its latency.
pub fn hsm_operation(layer: Layer, kind: &'static str, elapsed: Duration, ok: bool) {
    let layer = layer_label(layer);
    metrics::counter!(HSM_OPERATIONS_TOTAL, "layer" => layer, "kind" => kind).increment(1);
    metrics::histogram!(HSM_OPERATION_DURATION_SECONDS, "layer" => layer, "kind" => kind)
        .record(elapsed.as_secs_f64());
    if ok {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!(HSM_LAST_SUCCESS_TIMESTAMP_SECONDS, "layer" => layer).set(now);
    } else {
        metrics::counter!(HSM_ERRORS_TOTAL, "layer" => layer, "kind" => kind).increment(1);
    }
}

/// Integrity failures kept for the console, the newest last ([`integrity_events`]).
pub const INTEGRITY_EVENTS_KEPT: usize = 50;

/// One stored object that failed verification, as the console lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntegrityEvent {
    /// When (Unix seconds).
    pub at: u64,
    /// The request id the client was answered with.
    pub request_id: String,
    /// The request's method.
    pub method: String,
    /// Bucket and key of the object.
    pub bucket: String,
    /// The object's key.
    pub key: String,
    /// The metric's `reason` label.
    pub reason: &'static str,
    /// What failed.
    pub detail: String,
}

/// The last [`INTEGRITY_EVENTS_KEPT`] integrity failures of the process. Written only when
/// a stored object fails verification, never on the path of a good request.
static INTEGRITY_EVENTS: std::sync::Mutex<std::collections::VecDeque<IntegrityEvent>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// Keeps `event` among the last integrity failures.
pub fn record_integrity_event(event: IntegrityEvent) {
    let mut kept = INTEGRITY_EVENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if kept.len() == INTEGRITY_EVENTS_KEPT {
        kept.pop_front();
    }
    kept.push_back(event);
}

/// The last integrity failures, the newest first.
pub fn integrity_events() -> Vec<IntegrityEvent> {
    let kept = INTEGRITY_EVENTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    kept.iter().rev().cloned().collect()
}

/// Counts a key-cache lookup (`cache`: `seal` or `open` for bucket keys, `epoch` for epoch
/// keys).
pub fn key_cache(cache: &'static str, hit: bool) {
    if hit {
        metrics::counter!(KEY_CACHE_HITS_TOTAL, "cache" => cache).increment(1);
    } else {
        metrics::counter!(KEY_CACHE_MISSES_TOTAL, "cache" => cache).increment(1);
    }
}

/// Moves the cache-size gauge by the change of one core's cache.
pub fn key_cache_entries(cache: &'static str, before: usize, after: usize) {
    let g = metrics::gauge!(KEY_CACHE_ENTRIES, "cache" => cache);
    if after >= before {
        g.increment((after - before) as f64);
    } else {
        g.decrement((before - after) as f64);
    }
}

/// Keeps the log writer thread flushing until the process ends.
static LOG_GUARD: std::sync::Mutex<Option<tracing_appender::non_blocking::WorkerGuard>> =
    std::sync::Mutex::new(None);

/// Writes out the log lines still queued (call before the process exits).
pub fn finish_logging() {
    let guard = LOG_GUARD.lock().map(|mut g| g.take()).unwrap_or(None);
    drop(guard);
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (for journald/Loki/Elasticsearch pipelines).
    Json,
}

/// Sets up `tracing` for the process: events at `level` and above (a `tracing` filter
/// such as `info` or `info,twofold::access=warn`; `TWOFOLD_LOG` in the environment wins),
/// written to stderr, where systemd's journal collects them. A second call does nothing.
pub fn init_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("TWOFOLD_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // A writer thread of its own, so that a slow journal never stalls a core; not lossy:
    // audit lines must not be dropped, so a full queue holds the caller back instead.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("twofold-log")
        .finish(std::io::stderr());
    match LOG_GUARD.lock() {
        Ok(mut slot) if slot.is_none() => *slot = Some(guard),
        _ => return,
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// [`key_fingerprint`] of a header's bucket-key reference: of the wrapped key (format v1),
/// or of the epoch and salt (format v2).
pub fn bucket_key_fingerprint(reference: &crate::envelope::header::BucketKeyRef) -> String {
    use crate::envelope::header::BucketKeyRef;
    match reference {
        BucketKeyRef::Wrapped(wrapped) => key_fingerprint(wrapped),
        BucketKeyRef::Derived { epoch, salt } => {
            let mut b = epoch.to_be_bytes().to_vec();
            b.extend_from_slice(salt);
            key_fingerprint(&b)
        }
    }
}

/// A short, stable, non-secret name for a wrapped bucket key: the first 8 bytes of the
/// SHA-256 of its wrapped form, in hex. Audit lines use it to say which key was used.
pub fn key_fingerprint(wrapped: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(wrapped);
    hex::encode(&d[..8])
}
