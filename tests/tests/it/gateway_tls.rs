//! TLS on both sides of the gateway, with certificates generated here (rcgen):
//! - aws-sdk-s3 over HTTPS trusting the generated CA puts, gets and uploads multipart; a
//!   client that does not trust the CA fails; plain HTTP to the TLS listener gets no HTTP;
//! - reloading the certificate: new connections see the new one, a connection opened
//!   before keeps working; a broken reload (bad PEM, missing file, key that does not match)
//!   keeps the old certificate; SIGHUP to the real `twofold serve` binary reloads it;
//! - the gateway to an HTTPS backend (s3s-fs behind a TLS front) trusting a `ca_bundle`,
//!   and a backend whose certificate it does not trust: the client gets a 502 and nothing
//!   is stored.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use twofold::config::{BackendTransport, ListenerTls};
use twofold_tests::gateway::{
    Credential, Gateway, TestGateway, config_builder, create_bucket, get, put, sign_for,
    status_code,
};
use twofold_tests::random_bytes;

const BUCKET: &str = "tls";

/// A generated certificate authority.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("Twofold test CA {name}"));
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `localhost` and 127.0.0.1: (certificate PEM, key PEM).
    fn leaf(&self) -> (String, String) {
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// Files of one certificate set in a folder: ca.pem, cert.pem, key.pem.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Writes `name`, readable by its owner only (the gateway refuses secret files that
    /// are not).
    fn write(&self, name: &str, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(self.path(name), text).unwrap();
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    fn listener(&self) -> ListenerTls {
        ListenerTls::Tls {
            cert: self.path("cert.pem"),
            key: self.path("key.pem"),
        }
    }
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A gateway on the test backend serving HTTPS with `files`' cert.pem and key.pem.
fn tls_gateway(tg: &TestGateway, files: &Files) -> Gateway {
    tg.try_start_another_with(|s| s.listener_tls = files.listener())
        .unwrap()
}

/// An SDK client of `https://localhost:PORT` trusting only `ca_pem`.
fn https_client(addr: SocketAddr, cred: &Credential, ca_pem: &str) -> Client {
    use aws_smithy_http_client::tls;
    let trust = tls::TrustStore::empty().with_pem_certificate(ca_pem.as_bytes());
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap(),
        )
        .build_https();
    let endpoint = format!("https://localhost:{}", addr.port());
    Client::from_conf(config_builder(&endpoint, cred).http_client(http).build())
}

/// A blocking rustls client connection to `addr` trusting `ca_pem`, handshake done.
fn raw_tls(
    addr: SocketAddr,
    ca_pem: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der_of(ca_pem).into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).unwrap();
    }
    s
}

fn peer_leaf(s: &rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> Vec<u8> {
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

/// Sends a signed ListBuckets on `s` and returns the status line and whole response.
fn list_buckets(
    s: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    addr: SocketAddr,
    cred: &Credential,
) -> String {
    let host = format!("localhost:{}", addr.port());
    let (headers, _) = sign_for(
        &host,
        cred,
        "GET",
        "/",
        None,
        &[],
        twofold::sigv4::PayloadMode::Unsigned,
    );
    let mut req = String::from("GET / HTTP/1.1\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.flush().unwrap();
    // Read the head, then the Content-Length body.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed after {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn sdk_over_https_puts_gets_and_uploads_multipart() {
    let tg = TestGateway::start();
    let ca = Ca::new("a");
    let files = Files::new();
    let (cert, key) = ca.leaf();
    files.write("cert.pem", &cert);
    files.write("key.pem", &key);
    let gw = tls_gateway(&tg, &files);
    let s3 = https_client(gw.addr(), tg.admin(), &ca.pem);
    create_bucket(&s3, BUCKET).await;

    let small = random_bytes(100_000);
    put(&s3, BUCKET, "small", small.clone()).await;
    assert_eq!(get(&s3, BUCKET, "small").await, small);

    let parts = [random_bytes(5 * 1024 * 1024), random_bytes(70_001)];
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("multi")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut done = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(BUCKET)
            .key("multi")
            .upload_id(id)
            .part_number(n)
            .body(data.clone().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {n}: {e:?}"));
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("multi")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let whole = [parts[0].as_slice(), parts[1].as_slice()].concat();
    assert_eq!(get(&s3, BUCKET, "multi").await, whole);
    tg.assert_no_plaintext_in_backend(&[&small, &parts[0], &parts[1]]);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails() {
    let tg = TestGateway::start();
    let ca = Ca::new("a");
    let other = Ca::new("other");
    let files = Files::new();
    let (cert, key) = ca.leaf();
    files.write("cert.pem", &cert);
    files.write("key.pem", &key);
    let gw = tls_gateway(&tg, &files);
    // Trusting another CA: the handshake fails, no request is answered.
    let s3 = https_client(gw.addr(), tg.admin(), &other.pem);
    let e = s3.list_buckets().send().await.unwrap_err();
    assert!(
        e.raw_response().is_none(),
        "an HTTP answer came through an untrusted certificate: {e:?}"
    );
    // The same client set-up trusting the right CA works (so the failure above is the CA).
    let s3 = https_client(gw.addr(), tg.admin(), &ca.pem);
    s3.list_buckets().send().await.unwrap();
}

#[test]
fn plain_http_to_the_tls_listener_gets_no_http_answer() {
    let tg = TestGateway::start();
    let ca = Ca::new("a");
    let files = Files::new();
    let (cert, key) = ca.leaf();
    files.write("cert.pem", &cert);
    files.write("key.pem", &key);
    let gw = tls_gateway(&tg, &files);
    let mut tcp = TcpStream::connect(gw.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    // The gateway ends the connection (an alert at most); a timeout would fail here.
    let _ = tcp.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    // And the SDK over plain HTTP fails the same way.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s3 = twofold_tests::gateway::client_for(&format!("http://{}", gw.addr()), tg.admin());
    let e = rt.block_on(s3.list_buckets().send()).unwrap_err();
    assert!(e.raw_response().is_none(), "{e:?}");
}

#[test]
fn reload_serves_the_new_certificate_and_keeps_open_connections() {
    let tg = TestGateway::start();
    let ca = Ca::new("a");
    let files = Files::new();
    let (cert1, key1) = ca.leaf();
    files.write("cert.pem", &cert1);
    files.write("key.pem", &key1);
    let gw = tls_gateway(&tg, &files);
    let addr = gw.addr();

    let mut before = raw_tls(addr, &ca.pem);
    assert_eq!(peer_leaf(&before), der_of(&cert1));
    let first = list_buckets(&mut before, addr, tg.admin());
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");

    let (cert2, key2) = ca.leaf();
    files.write("cert.pem", &cert2);
    files.write("key.pem", &key2);
    assert!(gw.handle().reload_tls().unwrap());

    // New connections (to any core: a few of them) see the new certificate.
    for _ in 0..6 {
        let s = raw_tls(addr, &ca.pem);
        assert_eq!(peer_leaf(&s), der_of(&cert2));
    }
    // The connection opened before the reload still works, on the old certificate.
    let again = list_buckets(&mut before, addr, tg.admin());
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert_eq!(peer_leaf(&before), der_of(&cert1));
    let tls = gw.handle().server_tls().unwrap();
    assert_eq!((tls.generation(), tls.reloads_failed()), (1, 0));
}

#[test]
fn a_broken_reload_keeps_the_old_certificate() {
    let tg = TestGateway::start();
    let ca = Ca::new("a");
    let files = Files::new();
    let (cert1, key1) = ca.leaf();
    files.write("cert.pem", &cert1);
    files.write("key.pem", &key1);
    let gw = tls_gateway(&tg, &files);
    let addr = gw.addr();
    let (cert2, key2) = ca.leaf();

    // 1. A certificate file that is not PEM.
    files.write("cert.pem", "not a certificate\n");
    let e = gw.handle().reload_tls().unwrap_err();
    assert!(e.to_string().contains("cert.pem"), "{e}");
    // 2. A key that does not match the certificate.
    files.write("cert.pem", &cert2);
    files.write("key.pem", &key1);
    let e = gw.handle().reload_tls().unwrap_err();
    assert!(e.to_string().contains("key.pem"), "{e}");
    // 3. A missing key file.
    std::fs::remove_file(files.path("key.pem")).unwrap();
    gw.handle().reload_tls().unwrap_err();

    let s = raw_tls(addr, &ca.pem);
    assert_eq!(peer_leaf(&s), der_of(&cert1));
    let tls = gw.handle().server_tls().unwrap();
    assert_eq!((tls.generation(), tls.reloads_failed()), (0, 3));

    // Fixed files load on the next reload.
    files.write("key.pem", &key2);
    gw.handle().reload_tls().unwrap();
    assert_eq!(peer_leaf(&raw_tls(addr, &ca.pem)), der_of(&cert2));
}

/// A TLS front for the test backend: terminates TLS with `cert`/`key` and passes the bytes
/// to `to` (s3s-fs), counting completed handshakes.
struct TlsFront {
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
    _thread: std::thread::JoinHandle<()>,
}

impl TlsFront {
    fn start(cert: &str, key: &str, to: SocketAddr) -> Self {
        use rustls_pki_types::pem::PemObject;
        let chain =
            vec![rustls_pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()];
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let count = handshakes.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    let count = count.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(socket).await else {
                            return;
                        };
                        count.fetch_add(1, Ordering::SeqCst);
                        let Ok(mut plain) = tokio::net::TcpStream::connect(to).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    });
                }
            });
        });
        Self {
            addr,
            handshakes,
            _thread: thread,
        }
    }
}

/// A gateway (plain HTTP towards the client) whose backend is `front` over HTTPS,
/// trusting `ca_bundle`.
fn gateway_to_tls_backend(
    tg: &TestGateway,
    front: &TlsFront,
    ca_bundle: &Path,
) -> std::io::Result<Gateway> {
    let port = front.addr.port();
    tg.try_start_another_with(|s| {
        s.backend_addr = front.addr.to_string();
        s.backend_host = format!("localhost:{port}");
        s.backend_transport = BackendTransport::Tls {
            ca_bundle: Some(ca_bundle.to_path_buf()),
            server_name: "localhost".to_owned(),
        };
    })
}

#[tokio::test]
async fn the_gateway_talks_https_to_a_backend_it_trusts() {
    let tg = TestGateway::start();
    let ca = Ca::new("backend");
    let files = Files::new();
    files.write("ca.pem", &ca.pem);
    let (cert, key) = ca.leaf();
    let front = TlsFront::start(&cert, &key, tg.backend_addr());
    let gw = gateway_to_tls_backend(&tg, &front, &files.path("ca.pem")).unwrap();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let data = random_bytes(300_000);
    put(&s3, BUCKET, "over-tls", data.clone()).await;
    assert_eq!(get(&s3, BUCKET, "over-tls").await, data);
    assert!(front.handshakes.load(Ordering::SeqCst) >= 1);
    assert!(tg.stored(BUCKET, "over-tls").is_some());
    tg.assert_no_plaintext_in_backend(&[&data]);
}

#[tokio::test]
async fn an_untrusted_backend_certificate_gives_502_and_stores_nothing() {
    let tg = TestGateway::start();
    create_bucket(&tg.client(), BUCKET).await;
    let trusted = Ca::new("trusted");
    let impostor = Ca::new("impostor");
    let files = Files::new();
    files.write("ca.pem", &trusted.pem);
    let (cert, key) = impostor.leaf();
    let front = TlsFront::start(&cert, &key, tg.backend_addr());
    let gw = gateway_to_tls_backend(&tg, &front, &files.path("ca.pem")).unwrap();
    let s3 = gw.client();
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("never")
        .body(random_bytes(10_000).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 502, "{e:?}");
    let e = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 502, "{e:?}");
    assert_eq!(front.handshakes.load(Ordering::SeqCst), 0);
    assert!(tg.stored(BUCKET, "never").is_none());
}

#[test]
fn a_missing_ca_bundle_stops_the_gateway_from_starting() {
    let tg = TestGateway::start();
    let ca = Ca::new("backend");
    let (cert, key) = ca.leaf();
    let front = TlsFront::start(&cert, &key, tg.backend_addr());
    let e = gateway_to_tls_backend(&tg, &front, Path::new("/nonexistent/ca.pem")).unwrap_err();
    assert!(e.to_string().contains("ca.pem"), "{e}");
}

/// The `twofold` binary, built if it is not there yet (the tests of this crate do not
/// build it themselves).
fn twofold_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/PROFILE/deps/it-HASH
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-q", "-p", "gateway", "--bin", "twofold"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "building the twofold binary");
    profile_dir.join("twofold")
}

#[test]
fn sighup_reloads_the_certificate_of_twofold_serve() {
    let tg = TestGateway::start();
    let bin = twofold_binary();
    let ca = Ca::new("a");
    let files = Files::new();
    let (cert1, key1) = ca.leaf();
    files.write("cert.pem", &cert1);
    files.write("key.pem", &key1);
    files.write("backend.secret", "unused-by-this-test");
    files.write("client.secret", &tg.admin().secret);
    let custody = tg.custody();
    let custodian = |name: &str, spec: &twofold::keys::CustodianSpec| match spec {
        twofold::keys::CustodianSpec::Pkcs11 {
            module,
            token_label,
            key_label,
            pin,
            ..
        } => {
            let twofold::keys::PinSource::File(pin_file) = pin else {
                panic!("the test custody uses PIN files: {pin:?}")
            };
            format!(
                "[custodian.{name}]\nkind = \"pkcs11\"\nmodule = {module:?}\ntoken_label = {token_label:?}\n\
                 key_label = {key_label:?}\npin_file = {pin_file:?}\n\n"
            )
        }
        other => panic!("unexpected custodian {other:?}"),
    };
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (port, admin_port) = (free_port(), free_port());
    let config = format!(
        "{}{}[server]\nlisten = \"127.0.0.1:{port}\"\ncores = 2\n\
         tls = {{ cert = \"cert.pem\", key = \"key.pem\" }}\n\n\
         [admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\n\
         [backend]\nendpoint = \"http://{}\"\nplain_http = true\naccess_key_id = \"unused\"\n\
         secret_access_key = {{ file = \"backend.secret\" }}\n\n\
         [[credential]]\naccess_key_id = \"{}\"\nsecret_access_key = {{ file = \"client.secret\" }}\n\
         buckets = [\"*\"]\n",
        custodian("outer", custody.spec(twofold::envelope::aead::Layer::Outer)),
        custodian("inner", custody.spec(twofold::envelope::aead::Layer::Inner)),
        tg.backend_addr(),
        tg.admin().access_key_id,
    );
    files.write("twofold.toml", &config);
    // check-config loads the certificate and key as serve would.
    let check = |what: &str| {
        std::process::Command::new(&bin)
            .arg("check-config")
            .arg(files.path("twofold.toml"))
            .output()
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    };
    let out = check("good");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("listen https://127.0.0.1:{port}")),
        "{out:?}"
    );
    let (stray_cert, _) = ca.leaf();
    files.write("cert.pem", &stray_cert);
    let out = check("mismatched key");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("server.tls"), "{err}");
    files.write("cert.pem", &cert1);
    let mut child = std::process::Command::new(&bin)
        .args(["serve", "--config"])
        .arg(files.path("twofold.toml"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "twofold serve did not start"
        );
        assert!(child.try_wait().unwrap().is_none(), "twofold serve exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(peer_leaf(&raw_tls(addr, &ca.pem)), der_of(&cert1));
        let (cert2, key2) = ca.leaf();
        files.write("cert.pem", &cert2);
        files.write("key.pem", &key2);
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        assert_eq!(send_sighup(pid), 0);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if peer_leaf(&raw_tls(addr, &ca.pem)) == der_of(&cert2) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "SIGHUP did not bring the new certificate"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let admin: SocketAddr = format!("127.0.0.1:{admin_port}").parse().unwrap();
        let scrape = twofold_tests::admin::Scrape::take(admin);
        assert_eq!(
            scrape.sum("twofold_tls_reloads_total", &[("result", "ok")]),
            1.0
        );
        // A client that gives up on the handshake is counted, not answered.
        drop(TcpStream::connect(addr).unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while twofold_tests::admin::Scrape::take(admin)
            .sum("twofold_tls_handshake_failures_total", &[])
            < 1.0
        {
            assert!(
                std::time::Instant::now() < deadline,
                "a failed handshake was not counted"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }));
    let _ = child.kill();
    let _ = child.wait();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[allow(unsafe_code)]
fn send_sighup(pid: libc::pid_t) -> i32 {
    // SAFETY: kill(2) takes no pointers; `pid` is a child process this test spawned and
    // has not reaped yet, so the signal cannot reach another process.
    unsafe { libc::kill(pid, libc::SIGHUP) }
}
