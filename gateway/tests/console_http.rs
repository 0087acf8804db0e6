//! The console's doors over real HTTP, on a gateway started in-process with key-file
//! custodians: what is refused without a login, with a wrong password, with a read-only
//! operator and without the CSRF token; that refusals do nothing and are audited; and that
//! no answer holds a secret. (The browser tests in tests/console/ drive the pages, the
//! session expiry and the jobs against a working backend.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use twofold::config::{Config, PasswordHash};
use twofold::envelope::aead::Layer;
use twofold::keys::Custodian;

const ADMIN_PW: &str = "the admin's long password";
const VIEWER_PW: &str = "the viewer's long password";
const BACKEND_SECRET: &str = "backend-secret-never-shown";
const CLIENT_SECRET: &str = "client-secret-never-shown";

struct Answer {
    status: u16,
    head: String,
    body: String,
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    Answer {
        status: head[9..12].parse().unwrap(),
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.head
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

/// Logs in; the session cookie.
fn login(addr: SocketAddr, name: &str, password: &str) -> Option<String> {
    let form = format!("name={name}&password={}", password.replace(' ', "+"));
    let a = http(
        addr,
        "POST",
        "/console/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        &form,
    );
    assert_eq!(a.status, 303);
    let cookie = header(&a, "set-cookie")?;
    assert!(
        cookie.contains("httponly") && cookie.contains("samesite=strict"),
        "{cookie}"
    );
    Some(cookie.split(';').next().unwrap().to_owned())
}

fn csrf(addr: SocketAddr, cookie: &str) -> String {
    let a = http(
        addr,
        "GET",
        "/console/api/session",
        &[("cookie", cookie)],
        "",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    v["csrf"].as_str().unwrap().to_owned()
}

fn config(dir: &Path) -> Config {
    for (layer, name) in [(Layer::Inner, "inner.key"), (Layer::Outer, "outer.key")] {
        twofold::keys::custodian::create_key_file(&dir.join(name), layer).unwrap();
    }
    let admin = PasswordHash::generate(ADMIN_PW, 100_000).unwrap();
    let viewer = PasswordHash::generate(VIEWER_PW, 100_000).unwrap();
    let text = format!(
        r#"
[custodian.outer]
kind = "key-file"
key_file = "outer.key"
[custodian.inner]
kind = "key-file"
key_file = "inner.key"
[server]
listen = "127.0.0.1:0"
plain_http = true
[backend]
endpoint = "http://127.0.0.1:9"
plain_http = true
access_key_id = "backend"
secret_access_key = {{ dev_plaintext = "{BACKEND_SECRET}" }}
[[credential]]
access_key_id = "client"
secret_access_key = {{ dev_plaintext = "{CLIENT_SECRET}" }}
buckets = ["*"]
[admin]
listen = "127.0.0.1:0"
[console]
state_dir = "console"
[[console.operator]]
name = "admin"
password_hash = "{admin}"
act = true
[[console.operator]]
name = "viewer"
password_hash = "{viewer}"
"#
    );
    let path = dir.join("twofold.toml");
    std::fs::write(&path, &text).unwrap();
    Config::load(&path).unwrap()
}

#[test]
fn the_console_refuses_audits_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let settings = config.serve.clone().unwrap();
    let outer = Custodian::open(Layer::Outer, &config.outer).unwrap();
    let inner = Custodian::open(Layer::Inner, &config.inner).unwrap();
    let store = twofold::jobs::JobStore::open(&dir.path().join("console")).unwrap();
    let config = Arc::new(config);
    let runner = twofold::job_runner::Runner::new(
        config.clone(),
        settings.clone(),
        (inner.clone(), outer.clone()),
        store.clone(),
    );
    let parts = twofold::serve::console::ConsoleParts {
        config: config.clone(),
        launcher: Arc::new(runner),
    };
    let handle =
        twofold::serve::start_with_console(settings, inner, outer, config.keyring, Some(parts))
            .unwrap();
    let addr = handle.admin_addr().unwrap();
    let mut answers = Vec::new();

    // No login: answers 401, pages send to the login page, actions do nothing.
    let a = http(addr, "GET", "/console/api/overview", &[], "");
    assert_eq!(a.status, 401);
    let a = http(addr, "GET", "/console/overview", &[], "");
    assert_eq!(
        (a.status, header(&a, "location")),
        (303, Some("/console/login"))
    );
    let job = r#"{"kind":"report"}"#;
    let a = http(
        addr,
        "POST",
        "/console/api/jobs",
        &[("content-type", "application/json")],
        job,
    );
    assert_eq!(a.status, 401);
    assert!(store.list().is_empty());
    // A forged cookie is no session.
    let a = http(
        addr,
        "GET",
        "/console/api/jobs",
        &[("cookie", &format!("twofold_console={}", "ab".repeat(32)))],
        "",
    );
    assert_eq!(a.status, 401);

    // A wrong password, and an unknown name.
    assert!(login(addr, "admin", "not the password").is_none());
    assert!(login(addr, "nobody", ADMIN_PW).is_none());

    // The read-only operator sees everything and can do nothing.
    let viewer = login(addr, "viewer", VIEWER_PW).unwrap();
    let token = csrf(addr, &viewer);
    for page in ["overview", "custodians", "keys", "jobs", "configuration"] {
        let a = http(
            addr,
            "GET",
            &format!("/console/{page}"),
            &[("cookie", &viewer)],
            "",
        );
        assert_eq!(a.status, 200);
        assert!(
            header(&a, "content-security-policy")
                .unwrap()
                .contains("script-src 'self'")
        );
        answers.push(a.body);
        let a = http(
            addr,
            "GET",
            &format!("/console/api/{page}"),
            &[("cookie", &viewer)],
            "",
        );
        assert_eq!(a.status, 200, "{page}: {}", a.body);
        answers.push(a.body);
    }
    let a = http(
        addr,
        "POST",
        "/console/api/jobs",
        &[
            ("cookie", &viewer),
            ("x-twofold-csrf", &token),
            ("content-type", "application/json"),
        ],
        job,
    );
    assert_eq!(a.status, 403);
    assert!(a.body.contains("read-only"), "{}", a.body);
    assert!(store.list().is_empty());

    // The acting operator needs the CSRF token.
    let admin = login(addr, "admin", ADMIN_PW).unwrap();
    let token = csrf(addr, &admin);
    let a = http(
        addr,
        "POST",
        "/console/api/jobs",
        &[("cookie", &admin), ("content-type", "application/json")],
        job,
    );
    assert_eq!(a.status, 403);
    let a = http(
        addr,
        "POST",
        "/console/api/jobs",
        &[
            ("cookie", &admin),
            ("x-twofold-csrf", "0"),
            ("content-type", "application/json"),
        ],
        job,
    );
    assert_eq!(a.status, 403);
    assert!(store.list().is_empty());
    // Malformed and hostile requests.
    for body in [
        "{",
        r#"{"kind":"rewrap","bucket":"../x"}"#,
        r#"{"kind":"shred","key_id":"alias/twofold-default","version":1,"confirm":"no"}"#,
        r#"{"kind":"report","extra":1}"#,
    ] {
        let a = http(
            addr,
            "POST",
            "/console/api/jobs",
            &[
                ("cookie", &admin),
                ("x-twofold-csrf", &token),
                ("content-type", "application/json"),
            ],
            body,
        );
        assert!(
            a.status == 400 || a.status == 409,
            "{body}: {} {}",
            a.status,
            a.body
        );
    }
    let a = http(
        addr,
        "POST",
        "/console/api/jobs/..%2Fx/pause",
        &[("cookie", &admin), ("x-twofold-csrf", &token)],
        "",
    );
    assert_eq!(a.status, 404);
    let big = "x".repeat(9 * 1024);
    let a = http(
        addr,
        "POST",
        "/console/api/jobs",
        &[("cookie", &admin), ("x-twofold-csrf", &token)],
        &big,
    );
    assert_eq!(a.status, 413);
    assert!(store.list().is_empty());
    // With it, a job starts (and fails: there is no backend), recorded with its operator.
    let a = http(
        addr,
        "POST",
        "/console/api/jobs",
        &[
            ("cookie", &admin),
            ("x-twofold-csrf", &token),
            ("content-type", "application/json"),
        ],
        job,
    );
    assert_eq!(a.status, 201, "{}", a.body);
    let jobs = store.list();
    assert_eq!((jobs.len(), jobs[0].operator.as_str()), (1, "admin"));
    assert_eq!(jobs[0].origin, "console");

    // A run of the command line shows, and pauses, as the console's own do.
    let cli = twofold::job_runner::cli_job(
        &config,
        twofold::jobs::JobKind::Rewrap,
        twofold::jobs::JobParams {
            bucket: Some("photos".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let a = http(addr, "GET", "/console/api/jobs", &[("cookie", &admin)], "");
    assert!(
        a.body.contains(&cli.id()) && a.body.contains(r#""origin":"cli""#),
        "{}",
        a.body
    );
    let pause = format!("/console/api/jobs/{}/pause", cli.id());
    let a = http(
        addr,
        "POST",
        &pause,
        &[
            ("cookie", &viewer),
            ("x-twofold-csrf", &csrf(addr, &viewer)),
        ],
        "",
    );
    assert_eq!(a.status, 403);
    std::thread::sleep(twofold::jobs::JOB_CONTROL_POLL);
    assert!(!cli.paused());
    let a = http(
        addr,
        "POST",
        &pause,
        &[("cookie", &admin), ("x-twofold-csrf", &token)],
        "",
    );
    assert_eq!(a.status, 200, "{}", a.body);
    std::thread::sleep(twofold::jobs::JOB_CONTROL_POLL);
    assert!(cli.paused());
    assert_eq!(
        store.get(&cli.id()).unwrap().state,
        twofold::jobs::JobState::Paused
    );
    cli.finish(Ok(vec!["done".into()]));
    let a = http(
        addr,
        "POST",
        &pause,
        &[("cookie", &admin), ("x-twofold-csrf", &token)],
        "",
    );
    assert_eq!(a.status, 409, "a finished job does not pause");

    // Every refusal is audited.
    let a = http(addr, "GET", "/console/api/audit", &[("cookie", &admin)], "");
    answers.push(a.body.clone());
    let audit: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    let refused = |who: &str, action: &str| {
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["operator"] == who && e["action"] == action && e["outcome"] == "refused")
    };
    assert!(refused("-", "GET /console/api/overview"));
    assert!(refused("-", "job_start"));
    assert!(refused("admin", "login"));
    assert!(refused("-", "login"));
    assert!(refused("viewer", "job_start"));
    assert!(refused("admin", "job_start"));
    let file = std::fs::read_to_string(dir.path().join("console/audit.jsonl")).unwrap();
    assert!(file.lines().count() >= 8, "{file}");

    // Logout ends the session.
    let a = http(
        addr,
        "POST",
        "/console/logout",
        &[
            ("cookie", &viewer),
            ("x-twofold-csrf", &csrf(addr, &viewer)),
        ],
        "",
    );
    assert_eq!(a.status, 200);
    assert_eq!(
        http(addr, "GET", "/console/api/jobs", &[("cookie", &viewer)], "").status,
        401
    );

    // No secret in any answer.
    let keys: Vec<String> = ["inner.key", "outer.key"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.path().join(f))
                .unwrap()
                .trim()
                .to_owned()
        })
        .collect();
    let hashes = std::fs::read_to_string(dir.path().join("twofold.toml")).unwrap();
    let hashes: Vec<&str> = hashes
        .lines()
        .filter_map(|l| l.strip_prefix("password_hash = \""))
        .collect();
    let metrics = http(addr, "GET", "/metrics", &[], "").body;
    answers.push(metrics);
    for body in &answers {
        for secret in [
            ADMIN_PW,
            VIEWER_PW,
            BACKEND_SECRET,
            CLIENT_SECRET,
            &admin[16..],
            &viewer[16..],
        ]
        .into_iter()
        .chain(keys.iter().map(String::as_str))
        .chain(hashes.iter().map(|h| h.split('$').nth(3).unwrap()))
        {
            assert!(!body.contains(secret), "a secret in an answer: {body}");
        }
    }
    handle.stop();
}
