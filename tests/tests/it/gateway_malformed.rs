//! Requests no well-behaved client sends, over a raw socket: a garbage request line, heads
//! over the size and count limits, an over-long URL, conflicting or broken framing, a body
//! cut off by the client, broken aws-chunked framing. Each gets an S3 XML error document with
//! the status S3 (or RFC 9112) gives, nothing reaches the backend, and the gateway goes on
//! serving.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::time::Duration;
use twofold::sigv4::PayloadMode;
use twofold_tests::gateway::{TestGateway, aws_chunked_signed, create_bucket, exists, get, put};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp::{self, Response};

const BUCKET: &str = "malformed";

fn host(gw: &TestGateway) -> (String, String) {
    ("host".to_owned(), gw.addr().to_string())
}

/// Sends raw bytes and checks the answer is an S3 error document with `status`.
#[track_caller]
fn expect_error(gw: &TestGateway, bytes: &[u8], status: u16) -> Response {
    let resp = rawhttp::exchange(gw.addr(), bytes, false);
    assert_eq!(
        resp.status,
        status,
        "for {:?}: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(120)]),
        resp.text()
    );
    resp.assert_is_s3_error_document();
    resp
}

/// The gateway still answers a well-formed, signed request.
async fn still_serving(gw: &TestGateway) {
    let s3 = gw.client();
    let plain = random_bytes(1000);
    put(&s3, BUCKET, "alive", plain.clone()).await;
    assert_eq!(get(&s3, BUCKET, "alive").await, plain);
}

#[tokio::test]
async fn garbage_and_malformed_heads() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    let h = gw.addr().to_string();
    for (what, bytes, status) in [
        ("garbage request line", b"HELLO\r\n\r\n".to_vec(), 400),
        (
            "binary garbage",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two spaces",
            format!("GET  / HTTP/1.1\r\nhost: {h}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "HTTP/2.0",
            format!("GET / HTTP/2.0\r\nhost: {h}\r\n\r\n").into_bytes(),
            505,
        ),
        (
            "bare LF",
            format!("GET / HTTP/1.1\nhost: {h}\n\n").into_bytes(),
            400,
        ),
        (
            "obsolete line folding",
            format!("GET / HTTP/1.1\r\nhost: {h}\r\nx-a: 1\r\n  folded\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "space before colon",
            format!("GET / HTTP/1.1\r\nhost : {h}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "control byte in a value",
            format!("GET / HTTP/1.1\r\nhost: {h}\r\nx-a: a\x01b\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "no Host",
            b"GET /malformed/k HTTP/1.1\r\n\r\n".to_vec(),
            400,
        ),
        (
            "two Hosts",
            format!("GET / HTTP/1.1\r\nhost: {h}\r\nhost: {h}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "absolute-form target",
            format!("GET http://{h}/ HTTP/1.1\r\nhost: {h}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "bad Content-Length",
            format!("PUT /malformed/k HTTP/1.1\r\nhost: {h}\r\ncontent-length: 12x\r\n\r\n")
                .into_bytes(),
            400,
        ),
        (
            "two different Content-Lengths",
            format!(
                "PUT /malformed/k HTTP/1.1\r\nhost: {h}\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello"
            )
            .into_bytes(),
            400,
        ),
        (
            "Content-Length and Transfer-Encoding",
            format!(
                "PUT /malformed/k HTTP/1.1\r\nhost: {h}\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .into_bytes(),
            400,
        ),
        (
            "unknown transfer coding",
            format!("PUT /malformed/k HTTP/1.1\r\nhost: {h}\r\ntransfer-encoding: gzip\r\n\r\n")
                .into_bytes(),
            501,
        ),
        (
            "fragment in the target",
            format!("GET /malformed/k#frag HTTP/1.1\r\nhost: {h}\r\n\r\n").into_bytes(),
            400,
        ),
        (
            "bad percent-encoding",
            format!("GET /malformed/%zz HTTP/1.1\r\nhost: {h}\r\n\r\n").into_bytes(),
            400,
        ),
    ] {
        let resp = rawhttp::exchange(gw.addr(), &bytes, false);
        assert_eq!(resp.status, status, "{what}: {}", resp.text());
        resp.assert_is_s3_error_document();
    }
    assert!(!exists(&gw.client(), BUCKET, "k").await);
    still_serving(&gw).await;
}

#[tokio::test]
async fn head_over_16_kib_is_431() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    let (hn, hv) = host(&gw);
    let big = "a".repeat(17 * 1024);
    let bytes = rawhttp::head(
        "GET",
        "/",
        &[(hn.clone(), hv.clone()), ("x-big".into(), big)],
    );
    let resp = expect_error(&gw, &bytes, 431);
    assert_eq!(
        resp.s3_code().as_deref(),
        Some("RequestHeaderSectionTooLarge")
    );
    // Many medium headers adding up to more than 16 KiB.
    let mut headers = vec![(hn.clone(), hv.clone())];
    for i in 0..40 {
        headers.push((format!("x-h{i}"), "b".repeat(500)));
    }
    expect_error(&gw, &rawhttp::head("GET", "/", &headers), 431);
    // Just under the limit is not refused for its size.
    let mut headers = vec![(hn, hv)];
    headers.push(("x-pad".into(), "c".repeat(15 * 1024)));
    let resp = rawhttp::exchange(gw.addr(), &rawhttp::head("GET", "/", &headers), false);
    assert_ne!(resp.status, 431, "{}", resp.text());
    still_serving(&gw).await;
}

#[tokio::test]
async fn too_many_headers_is_431() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    let mut headers = vec![host(&gw)];
    for i in 0..120 {
        headers.push((format!("x-n{i}"), "v".into()));
    }
    let resp = expect_error(&gw, &rawhttp::head("GET", "/", &headers), 431);
    assert_eq!(
        resp.s3_code().as_deref(),
        Some("RequestHeaderSectionTooLarge")
    );
    still_serving(&gw).await;
}

#[tokio::test]
async fn url_over_8_kib_is_414() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    let target = format!("/{BUCKET}/{}", "k".repeat(9 * 1024));
    let resp = expect_error(&gw, &rawhttp::head("GET", &target, &[host(&gw)]), 414);
    assert_eq!(resp.s3_code().as_deref(), Some("InvalidURI"));
    let target = format!("/{BUCKET}/k?{}", "q=1&".repeat(2500));
    expect_error(&gw, &rawhttp::head("GET", &target, &[host(&gw)]), 414);
    still_serving(&gw).await;
}

#[tokio::test]
async fn key_over_1024_bytes_is_refused() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let key = "k".repeat(1025);
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(random_bytes(10).into())
        .send()
        .await
        .unwrap_err();
    let (status, _) = twofold_tests::gateway::status_code(&e);
    assert_eq!(status, 400, "{e:?}");
}

/// Sends a PUT head announcing `len` bytes and only `sent` of them, then half-closes (the
/// client will send no more) and reads the answer, if any.
fn truncated_put(
    gw: &TestGateway,
    key: &str,
    signed: &[(&str, &str)],
    payload: PayloadMode,
    body: &[u8],
    sent: usize,
    half_close: bool,
) -> Option<Response> {
    let path = format!("/{BUCKET}/{key}");
    let (mut headers, _) = gw.sign(gw.admin(), "PUT", &path, None, signed, payload);
    headers.push(("content-length".into(), body.len().to_string()));
    let mut conn = rawhttp::connect(gw.addr());
    conn.write_all(&rawhttp::head("PUT", &path, &headers))
        .unwrap();
    conn.write_all(&body[..sent]).unwrap();
    if half_close {
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        rawhttp::read_response(&mut conn, false).ok()
    } else {
        drop(conn);
        // Give the gateway time to see the connection end.
        std::thread::sleep(Duration::from_millis(500));
        None
    }
}

#[tokio::test]
async fn a_body_cut_off_by_the_client_stores_nothing() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let old = random_bytes(2000);
    put(&s3, BUCKET, "existing", old.clone()).await;
    let plain = random_bytes(300_000);
    for sent in [0usize, 1, 65_536, 65_537, 299_999] {
        for half_close in [true, false] {
            for key in ["fresh", "existing"] {
                if let Some(resp) = truncated_put(
                    &gw,
                    key,
                    &[],
                    PayloadMode::Unsigned,
                    &plain,
                    sent,
                    half_close,
                ) {
                    assert_eq!(resp.status, 400, "cut at {sent}: {}", resp.text());
                    resp.assert_is_s3_error_document();
                }
                assert!(
                    !exists(&s3, BUCKET, "fresh").await,
                    "cut at {sent} (half-close {half_close}): stored"
                );
                assert_eq!(
                    get(&s3, BUCKET, "existing").await,
                    old,
                    "cut at {sent} (half-close {half_close}): old object changed"
                );
            }
        }
    }
    gw.assert_no_plaintext_in_backend(&[&plain]);
    still_serving(&gw).await;
}

#[tokio::test]
async fn an_aws_chunked_body_cut_off_stores_nothing() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(200_000);
    let path = format!("/{BUCKET}/cut");
    let (mut headers, signer) = gw.sign(
        gw.admin(),
        "PUT",
        &path,
        None,
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "200000"),
        ],
        PayloadMode::StreamingSigned,
    );
    let body = aws_chunked_signed(&plain, 65_536, &mut signer.unwrap());
    headers.push(("content-length".into(), body.len().to_string()));
    // Everything but the final zero-length chunk.
    let cut = body.len() - 90;
    let mut conn = rawhttp::connect(gw.addr());
    conn.write_all(&rawhttp::head("PUT", &path, &headers))
        .unwrap();
    conn.write_all(&body[..cut]).unwrap();
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    if let Ok(resp) = rawhttp::read_response(&mut conn, false) {
        assert_eq!(resp.status, 400, "{}", resp.text());
        resp.assert_is_s3_error_document();
    }
    assert!(!exists(&s3, BUCKET, "cut").await);
    gw.assert_no_plaintext_in_backend(&[&plain]);
}

#[tokio::test]
async fn garbage_aws_chunked_framing_is_400_and_stores_nothing() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(100_000);
    let sig = "0".repeat(64);
    let variants: Vec<(&str, Vec<u8>)> = vec![
        (
            "not hex",
            b"zz;chunk-signature=00\r\nabc\r\n0\r\n\r\n".to_vec(),
        ),
        ("no signature", {
            let mut b = format!("{:x}\r\n", plain.len()).into_bytes();
            b.extend_from_slice(&plain);
            b.extend_from_slice(b"\r\n0\r\n\r\n");
            b
        }),
        ("size larger than the data", {
            let mut b = format!("{:x};chunk-signature={sig}\r\n", plain.len() + 10).into_bytes();
            b.extend_from_slice(&plain);
            b.extend_from_slice(format!("\r\n0;chunk-signature={sig}\r\n\r\n").as_bytes());
            b
        }),
        ("missing CRLF after data", {
            let mut b = format!("{:x};chunk-signature={sig}\r\n", plain.len()).into_bytes();
            b.extend_from_slice(&plain);
            b.extend_from_slice(format!("0;chunk-signature={sig}\r\n\r\n").as_bytes());
            b
        }),
        ("huge size", {
            let mut b = format!("ffffffffffffffffff;chunk-signature={sig}\r\n").into_bytes();
            b.extend_from_slice(&plain);
            b
        }),
        ("endless size line", vec![b'1'; 8192]),
    ];
    for (what, body) in variants {
        let path = format!("/{BUCKET}/garbage");
        let (mut headers, _) = gw.sign(
            gw.admin(),
            "PUT",
            &path,
            None,
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", "100000"),
            ],
            PayloadMode::StreamingSigned,
        );
        headers.push(("content-length".into(), body.len().to_string()));
        let mut bytes = rawhttp::head("PUT", &path, &headers);
        bytes.extend_from_slice(&body);
        match rawhttp::try_exchange(gw.addr(), &bytes, false) {
            Ok(resp) => {
                assert!(
                    resp.status == 400 || resp.status == 403,
                    "{what}: {} {}",
                    resp.status,
                    resp.text()
                );
                resp.assert_is_s3_error_document();
            }
            // Refused before the body ended: the answer may be lost to a reset.
            Err(e) => {
                assert!(rawhttp::is_reset(&e), "{what}: {e}");
                eprintln!("note: {what}: connection reset before the answer was read");
            }
        }
        assert!(!exists(&s3, BUCKET, "garbage").await, "{what}");
    }
    gw.assert_no_plaintext_in_backend(&[&plain]);
    still_serving(&gw).await;
}

#[tokio::test]
async fn broken_http_chunked_framing_is_400_and_stores_nothing() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let path = format!("/{BUCKET}/te");

    // A plain body without a length: S3 wants Content-Length (411).
    let (mut headers, _) = gw.sign(gw.admin(), "PUT", &path, None, &[], PayloadMode::Unsigned);
    headers.push(("transfer-encoding".into(), "chunked".into()));
    let mut bytes = rawhttp::head("PUT", &path, &headers);
    bytes.extend_from_slice(b"3\r\nabc\r\n0\r\n\r\n");
    rawhttp::exchange(gw.addr(), &bytes, false).assert_s3_error(411, "MissingContentLength");
    assert!(!exists(&s3, BUCKET, "te").await);

    // aws-chunked inside HTTP chunked (the length is x-amz-decoded-content-length), with
    // the outer framing broken.
    let inner = b"3\r\nabc\r\n0\r\n\r\n";
    for (what, body) in [
        ("not hex", b"zz\r\nabc\r\n0\r\n\r\n".to_vec()),
        ("no CRLF after data", {
            let mut b = format!("{:x}\r\n", inner.len()).into_bytes();
            b.extend_from_slice(inner);
            b.extend_from_slice(b"X\r\n0\r\n\r\n");
            b
        }),
        ("overflowing size", b"fffffffffffffffffffff\r\n".to_vec()),
    ] {
        let (mut headers, _) = gw.sign(
            gw.admin(),
            "PUT",
            &path,
            None,
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", "3"),
            ],
            PayloadMode::StreamingUnsignedTrailer,
        );
        headers.push(("transfer-encoding".into(), "chunked".into()));
        let mut bytes = rawhttp::head("PUT", &path, &headers);
        bytes.extend_from_slice(&body);
        let resp = rawhttp::exchange(gw.addr(), &bytes, false);
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        resp.assert_is_s3_error_document();
        assert!(!exists(&s3, BUCKET, "te").await, "{what}");
    }
}

#[tokio::test]
async fn more_body_than_announced_is_not_stored_as_the_object() {
    // Bytes after the announced Content-Length are the next request on the connection,
    // never part of the object.
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(1000);
    let path = format!("/{BUCKET}/exact");
    let (mut headers, _) = gw.sign(gw.admin(), "PUT", &path, None, &[], PayloadMode::Unsigned);
    headers.push(("content-length".into(), "1000".into()));
    let mut bytes = rawhttp::head("PUT", &path, &headers);
    bytes.extend_from_slice(&plain);
    bytes.extend_from_slice(b"GARBAGE AFTER THE BODY\r\n\r\n");
    let mut conn = rawhttp::connect(gw.addr());
    conn.write_all(&bytes).unwrap();
    let first = rawhttp::read_response(&mut conn, false).unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    // The extra bytes are read as a (malformed) next request.
    if let Ok(second) = rawhttp::read_response(&mut conn, false) {
        assert_eq!(second.status, 400, "{}", second.text());
        second.assert_is_s3_error_document();
    }
    assert_eq!(get(&s3, BUCKET, "exact").await, plain);
}

#[tokio::test]
async fn unknown_operations_and_methods() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    for method in ["PATCH", "BREW"] {
        let path = format!("/{BUCKET}/k");
        let (headers, _) = gw.sign(gw.admin(), method, &path, None, &[], PayloadMode::Unsigned);
        let resp = rawhttp::exchange(gw.addr(), &rawhttp::head(method, &path, &headers), false);
        assert!(
            resp.status == 405 || resp.status == 501 || resp.status == 400,
            "{method}: {} {}",
            resp.status,
            resp.text()
        );
        resp.assert_is_s3_error_document();
    }
    // SelectObjectContent would hand back stored ciphertext: refused outright.
    let path = format!("/{BUCKET}/k");
    let query = "select&select-type=2";
    let body = b"<SelectObjectContentRequest/>".to_vec();
    let (mut headers, _) = gw.sign(
        gw.admin(),
        "POST",
        &path,
        Some(query),
        &[],
        PayloadMode::Unsigned,
    );
    headers.push(("content-length".into(), body.len().to_string()));
    let mut bytes = rawhttp::head("POST", &format!("{path}?{query}"), &headers);
    bytes.extend_from_slice(&body);
    let resp = rawhttp::exchange(gw.addr(), &bytes, false);
    resp.assert_s3_error(501, "NotImplemented");
    still_serving(&gw).await;
}
