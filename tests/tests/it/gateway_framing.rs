//! Regression: request smuggling (CL.0) and HEAD error bodies. GET, HEAD, CopyObject and
//! GetObjectAttributes never read a request body, and UploadPartCopy and
//! AbortMultipartUpload returned before reading it, on a connection kept alive: the unread
//! body was parsed as the next request. A signed `GET /b/a` with `Content-Length: N` whose
//! body was a complete signed `GET /b/secret` got two answers on one connection, the second
//! with the secret's plaintext; behind a proxy that pools upstream connections across
//! users, one user would receive another's decrypted object. And an error answer to a HEAD
//! carried its XML body, which the client reads as the start of the next response.
//!
//! Now the connection closes whenever a request's body was not read to its end, whatever
//! the handler and whatever the path (success or any early error), and answers to HEAD
//! carry no body.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::time::Duration;
use twofold::sigv4::PayloadMode;
use twofold_tests::gateway::{Credential, TestGateway, create_bucket, put};
use twofold_tests::rawhttp;

const BUCKET: &str = "framing";
/// How long a connection kept open must stay quiet to show no second answer comes.
const QUIET: Duration = Duration::from_secs(2);
/// Plaintext of the object the smuggled request asks for: must never come back.
const SECRET: &[u8] = b"SECRET-PLAINTEXT-OF-ANOTHER-USER-0123456789";

/// One request that must get exactly one answer however long its body.
struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    query: Option<String>,
    headers: Vec<(&'static str, String)>,
    cred: Credential,
    /// Corrupt the request's signature after signing.
    bad_signature: bool,
}

impl Case {
    fn new(what: &'static str, method: &'static str, path: &str, cred: &Credential) -> Self {
        Self {
            what,
            method,
            path: path.to_owned(),
            query: None,
            headers: Vec::new(),
            cred: cred.clone(),
            bad_signature: false,
        }
    }

    fn query(mut self, q: &str) -> Self {
        self.query = Some(q.to_owned());
        self
    }

    fn header(mut self, n: &'static str, v: &str) -> Self {
        self.headers.push((n, v.to_owned()));
        self
    }
}

/// A complete, signed `GET` of the secret object.
fn smuggled(gw: &TestGateway) -> Vec<u8> {
    let path = format!("/{BUCKET}/secret");
    let (headers, _) = gw.sign(gw.admin(), "GET", &path, None, &[], PayloadMode::Unsigned);
    rawhttp::head("GET", &path, &headers)
}

/// `case` with the smuggled request as its body, signed (UNSIGNED-PAYLOAD).
fn with_smuggled_body(gw: &TestGateway, case: &Case) -> Vec<u8> {
    let body = smuggled(gw);
    let signed: Vec<(&str, &str)> = case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (mut headers, _) = gw.sign(
        &case.cred,
        case.method,
        &case.path,
        case.query.as_deref(),
        &signed,
        PayloadMode::Unsigned,
    );
    if case.bad_signature {
        let auth = headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .unwrap();
        let last = auth.1.pop().unwrap();
        auth.1.push(if last == '0' { '1' } else { '0' });
    }
    headers.push(("content-length".into(), body.len().to_string()));
    let target = match &case.query {
        Some(q) => format!("{}?{q}", case.path),
        None => case.path.clone(),
    };
    let mut bytes = rawhttp::head(case.method, &target, &headers);
    bytes.extend_from_slice(&body);
    bytes
}

/// Sends `bytes` and reads everything until the gateway closes or stays quiet for
/// [`QUIET`] (a handler that read the body to its end keeps the connection): returns all
/// of it.
fn everything_until_close(gw: &TestGateway, bytes: &[u8]) -> Vec<u8> {
    let mut s = rawhttp::connect(gw.addr());
    s.set_read_timeout(Some(QUIET)).unwrap();
    s.write_all(bytes).unwrap();
    let mut all = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
    all
}

fn status_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .filter(|l| l.starts_with("HTTP/1.1 "))
        .map(str::to_owned)
        .collect()
}

async fn setup() -> (TestGateway, String, String) {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    put(&s3, BUCKET, "secret", SECRET.to_vec()).await;
    put(
        &s3,
        BUCKET,
        "a",
        b"the object a, which anyone here may read".to_vec(),
    )
    .await;
    let mut uploads = Vec::new();
    for key in ["mp", "mp-abort"] {
        let up = s3
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        uploads.push(up.upload_id().unwrap().to_owned());
    }
    let abort = uploads.pop().unwrap();
    let mp = uploads.pop().unwrap();
    (gw, mp, abort)
}

#[tokio::test]
async fn a_request_body_is_never_parsed_as_a_request() {
    let (gw, upload, abort_upload) = setup().await;
    let admin = gw.admin().clone();
    let limited = gw.limited().clone();
    let obj = |k: &str| format!("/{BUCKET}/{k}");
    let enc = |q: &str| {
        q.replace('/', "%2F")
            .replace('+', "%2B")
            .replace('=', "%3D")
    };
    let copy_source = format!("/{BUCKET}/a");
    let cases = vec![
        Case::new("GetObject", "GET", &obj("a"), &admin),
        Case::new("HeadObject", "HEAD", &obj("a"), &admin),
        Case::new("GetObject with a range", "GET", &obj("a"), &admin).header("range", "bytes=0-3"),
        Case::new("GetObjectAttributes", "GET", &obj("a"), &admin)
            .query("attributes=")
            .header("x-amz-object-attributes", "ObjectSize"),
        Case::new("CopyObject", "PUT", &obj("copy"), &admin)
            .header("x-amz-copy-source", &copy_source),
        Case::new("UploadPartCopy", "PUT", &obj("mp"), &admin)
            .query(&format!("partNumber=1&uploadId={}", enc(&upload)))
            .header("x-amz-copy-source", &copy_source),
        Case::new("ListParts", "GET", &obj("mp"), &admin)
            .query(&format!("uploadId={}", enc(&upload))),
        Case::new("AbortMultipartUpload", "DELETE", &obj("mp-abort"), &admin)
            .query(&format!("uploadId={}", enc(&abort_upload))),
        Case::new("DeleteObject", "DELETE", &obj("gone"), &admin),
        Case::new("ListObjectsV2", "GET", &format!("/{BUCKET}"), &admin).query("list-type=2"),
        Case::new("HeadBucket", "HEAD", &format!("/{BUCKET}"), &admin),
        Case::new("ListBuckets", "GET", "/", &admin),
        // Early errors.
        Case::new("GetObject of a missing key", "GET", &obj("missing"), &admin),
        Case::new(
            "HeadObject of a missing key",
            "HEAD",
            &obj("missing"),
            &admin,
        ),
        Case::new("an unsatisfiable range", "GET", &obj("a"), &admin)
            .header("range", "bytes=100000-"),
        Case::new("a failed precondition", "GET", &obj("a"), &admin).header("if-match", "\"0123\""),
        Case::new(
            "a bucket the credential may not use",
            "GET",
            &obj("a"),
            &limited,
        ),
        Case::new(
            "a POST to a bucket that is no form (PostObject refused)",
            "POST",
            &format!("/{BUCKET}"),
            &admin,
        ),
        Case::new("SelectObjectContent", "POST", &obj("a"), &admin).query("select=&select-type=2"),
        Case::new("UploadPart of an unknown upload", "PUT", &obj("mp"), &admin)
            .query("partNumber=1&uploadId=tf1.bogus"),
        Case {
            bad_signature: true,
            ..Case::new("a bad signature", "GET", &obj("a"), &admin)
        },
    ];
    for case in &cases {
        let bytes = with_smuggled_body(&gw, case);
        let all = everything_until_close(&gw, &bytes);
        let lines = status_lines(&all);
        assert_eq!(
            lines.len(),
            1,
            "{}: expected exactly one answer, got {lines:?}",
            case.what
        );
        assert!(
            !all.windows(SECRET.len()).any(|w| w == SECRET),
            "{}: the smuggled request's object came back",
            case.what
        );
        eprintln!("{}: {}", case.what, lines[0]);
    }
}

/// Reads one response head, then whatever else arrives within a short wait: (head, rest).
fn head_and_what_follows(s: &mut std::net::TcpStream) -> (String, String) {
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(_) if all.windows(4).any(|w| w == b"\r\n\r\n") => break,
            Err(e) => panic!("no answer: {e}"),
        }
    }
    s.set_read_timeout(Some(rawhttp::IO_TIMEOUT)).unwrap();
    let text = String::from_utf8_lossy(&all).into_owned();
    let end = text.find("\r\n\r\n").map_or(text.len(), |i| i + 4);
    (text[..end].to_owned(), text[end..].to_owned())
}

#[tokio::test]
async fn an_error_answer_to_head_has_no_body_and_the_connection_goes_on() {
    let (gw, _, _) = setup().await;
    let mut s = rawhttp::connect(gw.addr());
    let admin = gw.admin().clone();
    let limited = gw.limited().clone();
    // A missing key, an allowed HEAD, a bucket the credential may not use (the gateway's
    // own AccessDenied answer), a missing key again.
    for (key, cred, status) in [
        ("missing", &admin, 404),
        ("a", &admin, 200),
        ("a", &limited, 403),
        ("missing", &admin, 404),
    ] {
        let path = format!("/{BUCKET}/{key}");
        let (headers, _) = gw.sign(cred, "HEAD", &path, None, &[], PayloadMode::Unsigned);
        s.write_all(&rawhttp::head("HEAD", &path, &headers))
            .unwrap();
        let (head, after) = head_and_what_follows(&mut s);
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status}")),
            "HEAD {key}: {head}"
        );
        assert_eq!(after, "", "HEAD {key}: bytes after the answer's head");
    }
    // The next answer on the same connection starts where it should: a GET's status line
    // and the object's bytes, not the tail of an error document.
    let path = format!("/{BUCKET}/a");
    let (headers, _) = gw.sign(gw.admin(), "GET", &path, None, &[], PayloadMode::Unsigned);
    s.write_all(&rawhttp::head("GET", &path, &headers)).unwrap();
    let resp = rawhttp::read_response(&mut s, false).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.body, b"the object a, which anyone here may read");
}

#[tokio::test]
async fn a_head_refused_for_its_signature_has_no_body() {
    let (gw, _, _) = setup().await;
    let path = format!("/{BUCKET}/a");
    let (mut headers, _) = gw.sign(gw.admin(), "HEAD", &path, None, &[], PayloadMode::Unsigned);
    let auth = headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .unwrap();
    auth.1.pop();
    auth.1.push('x');
    let mut s = rawhttp::connect(gw.addr());
    s.write_all(&rawhttp::head("HEAD", &path, &headers))
        .unwrap();
    // Read whatever comes until the gateway closes or goes quiet: a head and nothing else.
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    let head_end = text.find("\r\n\r\n").unwrap() + 4;
    assert_eq!(&text[head_end..], "", "a HEAD answer carried a body");
}
