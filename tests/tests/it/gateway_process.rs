//! The `twofold` binary run as an operator (or systemd) runs it: `check-config` on good
//! and broken files, and `twofold serve --config` as a process of its own in front of a
//! real s3s-fs backend and SoftHSM2 tokens: SIGTERM in the middle of an upload stops new
//! connections, reports not ready, lets the upload finish and store, then exits cleanly;
//! systemd's READY and STOPPING notifications arrive on `$NOTIFY_SOCKET`.
//!
//! The binary is the workspace's `target/.../twofold`, built by `cargo test --workspace`
//! (or `cargo build -p gateway`).

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use twofold::devbackend::DevBackend;
use twofold::envelope::aead::Layer;
use twofold::sigv4::PayloadMode;
use twofold_tests::gateway::{Credential, client_for, loopback0, sign_for};
use twofold_tests::{admin, random_bytes};

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

/// A deployment on disk: backend, tokens, secrets and `twofold.toml`.
struct Deployment {
    dir: tempfile::TempDir,
    backend: DevBackend,
    client: Credential,
}

impl Deployment {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("twofold-proc-")
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
        let custody = twofold_tests::Custody::new("proc");
        let client = Credential::random("CLIENT");
        write_private(&d.join("backend.secret"), &backend_cred.secret);
        write_private(&d.join("client.secret"), &client.secret);
        let block = |layer| custody.config_table(layer);
        let text = format!(
            "{}{}[server]\nlisten = \"127.0.0.1:0\"\ncores = 2\nshutdown_grace_secs = 20\ndrain_notice_secs = 2\nplain_http = true\n\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n\n\
             [backend]\nendpoint = \"http://{}\"\nplain_http = true\naccess_key_id = \"{}\"\n\
             secret_access_key = {{ file = \"backend.secret\" }}\n\n\
             [[credential]]\naccess_key_id = \"{}\"\nsecret_access_key = {{ file = \"client.secret\" }}\n\
             buckets = [\"*\"]\n",
            block(Layer::Outer),
            block(Layer::Inner),
            backend.addr(),
            backend_cred.access_key_id,
            client.access_key_id,
        );
        std::fs::write(d.join("twofold.toml"), text).unwrap();
        Self {
            dir,
            backend,
            client,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> String {
        std::fs::read_to_string(self.path().join("twofold.toml")).unwrap()
    }
}

/// Writes a secret file readable by its owner only, as the gateway requires.
fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .current_dir(dir)
        .env_remove("SOFTHSM2_CONF")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn check_config_accepts_a_good_file_and_names_what_is_wrong_in_a_bad_one() {
    let dep = Deployment::new();
    let d = dep.path();
    let out = run(d, &["check-config", "twofold.toml"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("twofold.toml: ok"), "{said}");

    let good = dep.config();
    let line_of = |needle: &str| {
        good.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap()
    };
    let cases: Vec<(&str, String, String)> = vec![
        (
            "unknown field",
            good.replace("cores = 2", "cores = 2\ncolour = \"blue\""),
            format!("line {}", line_of("cores = 2") + 1),
        ),
        (
            "bad value",
            good.replace("shutdown_grace_secs = 20", "shutdown_grace_secs = 99999"),
            format!(
                "broken.toml:{}: server.shutdown_grace_secs",
                line_of("shutdown_grace_secs")
            ),
        ),
        (
            "bad admin address",
            good.replace(
                "listen = \"127.0.0.1:0\"\n\n[backend]",
                "listen = \"everywhere\"\n\n[backend]",
            ),
            "admin.listen".to_owned(),
        ),
        (
            "missing secret file",
            good.replace("file = \"client.secret\"", "file = \"nowhere.secret\""),
            format!(
                "broken.toml:{}: credential[0].secret_access_key",
                line_of("client.secret")
            ),
        ),
        (
            "missing PIN file",
            good.replacen(".pin\"", ".gone\"", 1),
            ".gone".to_owned(),
        ),
        (
            "wrong type",
            good.replace("cores = 2", "cores = \"two\""),
            format!("line {}", line_of("cores = 2")),
        ),
    ];
    for (what, text, named) in cases {
        std::fs::write(d.join("broken.toml"), &text).unwrap();
        let out = run(d, &["check-config", "broken.toml"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: not one line: {err}");
        assert!(
            err.contains(&named),
            "{what}: does not say {named:?}: {err}"
        );
    }
    let out = run(d, &["check-config", "nowhere.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("nowhere.toml"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// Runs the binary with `args` and waits at most `within` for it to exit; kills it and
/// fails the test if it is still running then (a `serve` that should have refused to start).
fn run_expecting_exit(dir: &Path, args: &[&str], within: Duration) -> std::process::Output {
    let mut child = Command::new(binary())
        .current_dir(dir)
        .env_remove("SOFTHSM2_CONF")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > within {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} kept running: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Copies `from` to `to` with permission bits `mode`.
fn copy_with_mode(from: &Path, to: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// PIN files and `{ file = ... }` secrets were read whatever their mode, while key files
/// had to be 0600. A world-readable PIN file and a group-readable secret file are now
/// refused by `check-config` and by `serve`, in one line naming the file and the fix.
#[test]
fn world_readable_pin_file_and_group_readable_secret_file_are_refused_at_check_and_start() {
    let dep = Deployment::new();
    let d = dep.path();
    let good = dep.config();
    let pin = good
        .lines()
        .find_map(|l| l.strip_prefix("pin_file = \""))
        .and_then(|r| r.strip_suffix('"'))
        .unwrap()
        .to_owned();
    copy_with_mode(Path::new(&pin), &d.join("exposed.pin"), 0o644);
    copy_with_mode(&d.join("client.secret"), &d.join("group.secret"), 0o640);
    let cases = [
        (
            "world-readable PIN file",
            good.replacen(&pin, "exposed.pin", 1),
            "exposed.pin",
        ),
        (
            "group-readable secret file",
            good.replace("file = \"client.secret\"", "file = \"group.secret\""),
            "group.secret",
        ),
    ];
    for (what, text, named) in cases {
        assert_ne!(text, good, "{what}: the configuration did not change");
        std::fs::write(d.join("bad.toml"), &text).unwrap();
        for args in [
            &["check-config", "bad.toml"][..],
            &["serve", "--config", "bad.toml", "--admin-listen", "off"],
        ] {
            let out = run_expecting_exit(d, args, Duration::from_secs(30));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: {args:?} accepted it");
            assert!(!err.contains("panicked"), "{what}: {err}");
            assert_eq!(err.lines().count(), 1, "{what}: not one line: {err}");
            assert!(err.contains(named), "{what}: does not name the file: {err}");
            assert!(
                err.contains("chmod 600"),
                "{what}: does not say the fix: {err}"
            );
        }
    }
}

/// A running `twofold serve`: the child and the addresses it printed.
struct Serve {
    child: Child,
    addr: SocketAddr,
    admin: Option<SocketAddr>,
}

impl Serve {
    fn start(dep: &Deployment, notify: Option<&Path>) -> Self {
        Self::start_with(dep, notify, &[])
    }

    fn start_with(dep: &Deployment, notify: Option<&Path>, args: &[&str]) -> Self {
        let (child, addr, admin) = Self::spawn(dep, notify, args);
        Self { child, addr, admin }
    }

    /// The admin listener's address; panics when it has none.
    fn admin(&self) -> SocketAddr {
        self.admin
            .unwrap_or_else(|| panic!("twofold serve printed no admin listener"))
    }

    /// Starts `twofold serve --config twofold.toml ARGS...` and reads what it printed up to
    /// its "gateway on" line (the admin listener, when there is one, is printed before).
    fn spawn(
        dep: &Deployment,
        notify: Option<&Path>,
        args: &[&str],
    ) -> (Child, SocketAddr, Option<SocketAddr>) {
        let mut cmd = Command::new(binary());
        cmd.current_dir(dep.path())
            .env_remove("SOFTHSM2_CONF")
            .env("TWOFOLD_LOG", "info")
            .args(["serve", "--config", "twofold.toml"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(n) = notify {
            cmd.env("NOTIFY_SOCKET", n);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut addr, mut admin) = (None, None);
        while addr.is_none() {
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
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        (child, addr.unwrap(), admin)
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} failed");
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < within, "twofold serve did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sigterm_lets_an_upload_in_flight_finish_then_exits() {
    let dep = Deployment::new();
    let notify_path = dep.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut serve = Serve::start(&dep, Some(&notify_path));
    let mut buf = [0u8; 256];
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    assert_eq!(admin::get(serve.admin(), "/readyz").0, 200);

    let s3 = client_for(&format!("http://{}", serve.addr), &dep.client);
    s3.create_bucket().bucket("drain").send().await.unwrap();
    // An object of several segments, read during the drain notice.
    let earlier = random_bytes(300_000);
    s3.put_object()
        .bucket("drain")
        .key("earlier")
        .body(earlier.clone().into())
        .send()
        .await
        .unwrap();

    // Half of a 3 MiB upload, then SIGTERM.
    let body = random_bytes(3 << 20);
    let len = body.len().to_string();
    let (headers, _) = sign_for(
        &serve.addr.to_string(),
        &dep.client,
        "PUT",
        "/drain/in-flight",
        None,
        &[("content-length", &len)],
        PayloadMode::Unsigned,
    );
    let mut sock = TcpStream::connect(serve.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = "PUT /drain/in-flight HTTP/1.1\r\n".to_owned();
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).unwrap();
    let half = body.len() / 2;
    sock.write_all(&body[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    serve.signal("TERM");

    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    // Stopping: not ready at once; new connections for the drain notice (2 s), then none.
    let started = Instant::now();
    loop {
        let (status, said) = admin::get(serve.admin(), "/readyz");
        if status == 503 {
            assert!(said.contains("stopping"), "{said}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "/readyz stayed {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // During the notice, a new connection is still served, told to close, and closed:
    // its client goes elsewhere next time instead of meeting a closed connection.
    let (headers, _) = sign_for(
        &serve.addr.to_string(),
        &dep.client,
        "GET",
        "/drain/earlier",
        None,
        &[],
        PayloadMode::Unsigned,
    );
    let mut late = TcpStream::connect(serve.addr).unwrap();
    late.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = "GET /drain/earlier HTTP/1.1\r\n".to_owned();
    for (n, v) in &headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str("\r\n");
    late.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = late.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    // A GET of several segments during the drain notice comes whole (regression: the head
    // with `Connection: close` added went out of a new buffer, and the GET went on with
    // that one and failed on its second segment).
    assert!(
        answer[head_end..] == earlier[..],
        "the GET during the drain notice gave {} of {} bytes",
        answer.len() - head_end,
        earlier.len()
    );
    let refused = Instant::now();
    loop {
        if TcpStream::connect(serve.addr).is_err() {
            break;
        }
        assert!(
            refused.elapsed() < Duration::from_secs(10),
            "still accepting connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The upload in flight finishes and is stored.
    sock.write_all(&body[half..]).unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = sock.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed without an answer");
        response.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nconnection: close\r\n"),
        "a response while stopping must say Connection: close: {text}"
    );
    let status = serve.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");

    // What it stored opens through a new gateway process.
    drop(serve);
    let serve = Serve::start(&dep, None);
    let s3 = client_for(&format!("http://{}", serve.addr), &dep.client);
    let got = s3
        .get_object()
        .bucket("drain")
        .key("in-flight")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert!(
        got.as_ref() == body.as_slice(),
        "the finished upload does not read back"
    );
    let _ = &dep.backend;
}

/// A loopback port nothing listens on (as far as anyone can tell before using it).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts `twofold serve ARGS...` and checks that it serves S3 with no admin listener:
/// none printed, and nothing accepts connections on `admin_port`.
async fn assert_serves_without_admin(dep: &Deployment, args: &[&str], admin_port: u16) {
    let serve = Serve::start_with(dep, None, args);
    assert_eq!(
        serve.admin, None,
        "an admin listener was started ({args:?})"
    );
    let s3 = client_for(&format!("http://{}", serve.addr), &dep.client);
    s3.list_buckets().send().await.unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", admin_port)).is_err(),
        "something listens on the admin port ({args:?})"
    );
}

/// The README documents `twofold serve ... --admin-listen ADDR|off`, but `off` was refused
/// as an invalid address. Both it and `[admin] listen = "off"` now mean no admin listener.
#[tokio::test]
async fn admin_listen_off_on_the_command_line_or_in_the_file_starts_no_admin_listener() {
    let dep = Deployment::new();
    let port = free_port();
    let on = dep.config().replace(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\nlisten = \"127.0.0.1:{port}\""),
    );
    assert_ne!(
        on,
        dep.config(),
        "the test configuration has no [admin] listen"
    );
    std::fs::write(dep.path().join("twofold.toml"), &on).unwrap();
    assert_serves_without_admin(&dep, &["--admin-listen", "off"], port).await;

    let off = on.replace(&format!("\"127.0.0.1:{port}\""), "\"off\"");
    std::fs::write(dep.path().join("twofold.toml"), &off).unwrap();
    assert_serves_without_admin(&dep, &[], port).await;
}
