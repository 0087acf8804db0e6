//! The S3 server behind a [`crate::gateway::TestGateway`], chosen by the environment:
//! `TWOFOLD_TEST_BACKEND` = `s3s-fs` (the default: Twofold's embedded dev backend on a
//! folder of the test), `ceph` (a running Ceph RGW; each test gateway gets a user of its own
//! RGW tenant, so that the tests' fixed bucket names do not collide) or `moto` (each test
//! gateway starts a `moto_server` of its own: moto has one bucket namespace per server).
//! The endpoint and credentials come from the env file the backend's script wrote
//! (`TWOFOLD_TEST_BACKEND_ENV`, see tests/backends/README.md), or from the environment.
//!
//! Tests that need what only some backends have say so with
//! [`crate::gateway::TestGateway::skip_unless`], which prints why a test was skipped and,
//! when `TWOFOLD_TEST_SKIPS` names a file, adds the line there for the run's summary.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::gateway::Credential;

/// How long a `moto_server` may take to answer its first request.
pub const MOTO_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at starting a `moto_server` (a free port may be taken before it binds it).
pub const MOTO_START_ATTEMPTS: usize = 3;

/// Which S3 server the test gateways store into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// s3s-fs, embedded in the test process, on a folder of the test.
    S3sFs,
    /// A Ceph RGW started by tests/backends/ceph.sh.
    Ceph,
    /// moto's `moto_server`, one per test gateway.
    Moto,
}

/// What a test may need of the backend beyond the S3 API every backend speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Its stored objects are files the test can read and change (s3s-fs's folder, with
    /// its hidden metadata and part files).
    BackendFolder,
    /// It can be stopped and started again on the same address within one test.
    StopStart,
    /// It checks request signatures (moto accepts any).
    SignatureChecks,
    /// It checks the `x-amz-checksum-*` values it is sent and stores them (Ceph 16
    /// does neither).
    ChecksumChecks,
}

impl BackendKind {
    /// The backend `TWOFOLD_TEST_BACKEND` names (s3s-fs when unset); panics on an unknown
    /// name rather than testing something else than asked.
    pub fn from_env() -> Self {
        static KIND: OnceLock<BackendKind> = OnceLock::new();
        *KIND.get_or_init(|| match std::env::var("TWOFOLD_TEST_BACKEND").as_deref() {
            Err(_) | Ok("" | "s3s-fs") => Self::S3sFs,
            Ok("ceph") => Self::Ceph,
            Ok("moto") => Self::Moto,
            Ok(other) => panic!("TWOFOLD_TEST_BACKEND={other}: expected s3s-fs, ceph or moto"),
        })
    }

    /// `s3s-fs`, `ceph` or `moto`.
    pub fn name(self) -> &'static str {
        match self {
            Self::S3sFs => "s3s-fs",
            Self::Ceph => "ceph",
            Self::Moto => "moto",
        }
    }

    /// Whether this backend has `cap`.
    pub fn has(self, cap: Capability) -> bool {
        match cap {
            Capability::BackendFolder | Capability::StopStart => self == Self::S3sFs,
            Capability::SignatureChecks => self != Self::Moto,
            Capability::ChecksumChecks => self != Self::Ceph,
        }
    }
}

/// Reports a skipped test: `skipped: TEST on BACKEND: REASON` on stderr and, when
/// `TWOFOLD_TEST_SKIPS` names a file, appended to it.
pub fn report_skip(kind: BackendKind, reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("an unnamed test")
        .to_owned();
    let line = format!("skipped: {test} on {}: {reason}", kind.name());
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("TWOFOLD_TEST_SKIPS") {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let exe = exe.split('-').next().unwrap_or_default().to_owned();
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{exe}: {line}"));
        if let Err(e) = appended {
            panic!("recording the skip in {}: {e}", Path::new(&path).display());
        }
    }
}

/// The variables of the backend's env file (`KEY=VALUE` lines), over the process's own.
fn backend_env() -> &'static BTreeMap<String, String> {
    static ENV: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut vars: BTreeMap<String, String> = std::env::vars().collect();
        if let Some(path) = std::env::var_os("TWOFOLD_TEST_BACKEND_ENV") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!(
                    "reading TWOFOLD_TEST_BACKEND_ENV={}: {e}",
                    Path::new(&path).display()
                )
            });
            for line in text.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    vars.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
        vars
    })
}

fn var(name: &str) -> String {
    backend_env().get(name).cloned().unwrap_or_else(|| {
        panic!(
            "{name} is not set: start the backend with tests/backends/{}.sh and point \
             TWOFOLD_TEST_BACKEND_ENV at its env file",
            BackendKind::from_env().name()
        )
    })
}

/// `127.0.0.1:PORT` of an `http://127.0.0.1:PORT` endpoint.
fn endpoint_addr(endpoint: &str) -> SocketAddr {
    endpoint
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("backend endpoint {endpoint}: expected http://IP:PORT"))
}

/// A user of a tenant of its own on the Ceph RGW of the env file: its own bucket
/// namespace (path-style requests it signs name its tenant's buckets by their plain
/// names). Made with `radosgw-admin` (about 1 s); left in the cluster, which the run
/// throws away.
pub fn ceph_tenant_user() -> (SocketAddr, Credential) {
    let addr = endpoint_addr(&var("CEPH_S3_ENDPOINT"));
    let conf = var("CEPH_CONF");
    let tenant = format!("t{}", hex::encode(crate::random_bytes(8)));
    let cred = Credential::random("CEPH");
    let out = Command::new("radosgw-admin")
        .args(["--conf", &conf, "user", "create", "--tenant", &tenant])
        .args(["--uid", "twofold", "--display-name", "twofold"])
        .args([
            "--access-key",
            &cred.access_key_id,
            "--secret",
            &cred.secret,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running radosgw-admin: {e}"));
    assert!(
        out.status.success(),
        "radosgw-admin user create --tenant {tenant}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (addr, cred)
}

/// A `moto_server` of one test gateway, killed when dropped.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    addr: SocketAddr,
}

impl MotoServer {
    /// Starts one on a free loopback port, its output in `log`, and waits until it answers.
    /// The program is `TWOFOLD_MOTO_SERVER`, else the venv tests/backends/moto.sh makes.
    pub fn start(log: &Path) -> Self {
        let program = backend_env()
            .get("TWOFOLD_MOTO_SERVER")
            .map_or_else(default_moto_server, PathBuf::from);
        let mut last = String::new();
        for _ in 0..MOTO_START_ATTEMPTS {
            match Self::try_start(&program, log) {
                Ok(server) => return server,
                Err(e) => last = e,
            }
        }
        let tail = std::fs::read_to_string(log).unwrap_or_default();
        panic!("starting {}: {last}\n{tail}", program.display());
    }

    fn try_start(program: &Path, log: &Path) -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawning: {e} (run tests/backends/moto.sh venv)"))?;
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let started = Instant::now();
        while started.elapsed() < MOTO_START_TIMEOUT {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("moto_server exited: {status}"));
            }
            if answers(server.addr) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "no answer on port {port} in {MOTO_START_TIMEOUT:?}"
        ))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Errors here mean it is gone already.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn default_moto_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/backends-venvs/moto/bin/moto_server")
}

/// Whether an HTTP server at `addr` answers `GET /` at all.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// Runs the future `make` returns to its end on a thread of its own with its own runtime:
/// backend reads for the synchronous helpers, callable from inside a test's runtime. The
/// future must use a client made with [`own_http_client`]: the SDK's default HTTP client
/// is shared, and a pooled connection of it is driven by a task of the runtime this call
/// blocks (a deadlock on a backend that keeps connections alive).
pub fn block_on_thread<T, F>(make: impl FnOnce() -> F + Send) -> T
where
    F: std::future::Future<Output = T>,
    T: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("a runtime for a backend read: {e}"))
                .block_on(make())
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Every bucket of the backend user `s3` signs as, every object in it.
async fn every_key(s3: &aws_sdk_s3::Client) -> Vec<(String, String)> {
    let buckets = s3
        .list_buckets()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListBuckets on the backend: {e:?}"));
    let mut out = Vec::new();
    for bucket in buckets.buckets().iter().filter_map(|b| b.name()) {
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListObjectsV2 {bucket} on the backend: {e:?}"));
            for key in page.contents().iter().filter_map(|o| o.key()) {
                out.push((bucket.to_owned(), key.to_owned()));
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
    }
    out
}

/// The body of every object of the backend user `s3` signs as, named `s3://bucket/key`, and
/// its metadata (`name: value` lines), named `s3://bucket/key (metadata)`.
pub async fn every_object(s3: aws_sdk_s3::Client) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (bucket, key) in every_key(&s3).await {
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {bucket}/{key} on the backend: {e:?}"));
        let meta: String = got
            .metadata()
            .into_iter()
            .flatten()
            .map(|(n, v)| format!("{n}: {v}\n"))
            .collect();
        let body = got
            .body
            .collect()
            .await
            .unwrap_or_else(|e| panic!("reading {bucket}/{key} on the backend: {e:?}"))
            .to_vec();
        let name = format!("s3://{bucket}/{key}");
        out.push((
            PathBuf::from(format!("{name} (metadata)")),
            meta.into_bytes(),
        ));
        out.push((PathBuf::from(name), body));
    }
    out
}

/// The parts of every unfinished multipart upload of the backend user `s3` signs as:
/// `bucket/key upload ID part N`, and `ETAG SIZE` as bytes.
pub async fn listed_parts(s3: aws_sdk_s3::Client) -> Vec<(String, Vec<u8>)> {
    let buckets = s3
        .list_buckets()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListBuckets on the backend: {e:?}"));
    let mut out = Vec::new();
    for bucket in buckets.buckets().iter().filter_map(|b| b.name()) {
        let uploads = s3
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListMultipartUploads {bucket} on the backend: {e:?}"));
        for upload in uploads.uploads() {
            let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            let parts = s3
                .list_parts()
                .bucket(bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListParts {bucket}/{key} on the backend: {e:?}"));
            for p in parts.parts() {
                let name = format!(
                    "{bucket}/{key} upload {id} part {}",
                    p.part_number().unwrap_or_default()
                );
                let print = format!(
                    "{} {}",
                    p.e_tag().unwrap_or_default(),
                    p.size().unwrap_or_default()
                );
                out.push((name, print.into_bytes()));
            }
        }
    }
    out
}

/// An HTTP client with a connection pool of its own, for [`block_on_thread`].
pub fn own_http_client() -> aws_sdk_s3::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new().build_http()
}
