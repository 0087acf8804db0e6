//! Regression: a request refused in the middle of its body lost its error answer at a
//! client that sends its whole body before it reads. The gateway closed with request bytes
//! unread, its kernel answered them with a reset, and the client's write failed before it
//! ever read the answer (with an immediate close, every such client here failed in its
//! first round). The gateway now closes such connections lingeringly: it shuts its write
//! side, then reads and discards what the client still sends, within bounds, so the client
//! finishes sending and reads the whole S3 error document.
//!
//! Each case is repeated, half the rounds with a client that reads while it sends.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::sigv4::PayloadMode;
use twofold_tests::gateway::{TestGateway, aws_chunked_signed, create_bucket, exists};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp;

const BUCKET: &str = "lingering";
/// Rounds of each case.
const ROUNDS: usize = 10;
/// Body sent after the point where the request is refused: more than the two sockets'
/// buffers hold on loopback, so that the client is still writing when the answer comes.
const BODY_BYTES: usize = 16 * 1024 * 1024;

/// Even rounds: the client sends everything, then reads; odd rounds: it reads while it
/// sends (see [`rawhttp::send_then_read`], [`rawhttp::try_exchange`]).
fn exchange(round: usize, bytes: &[u8], gw: &TestGateway) -> std::io::Result<rawhttp::Response> {
    if round.is_multiple_of(2) {
        rawhttp::send_then_read(gw.addr(), bytes, false)
    } else {
        rawhttp::try_exchange(gw.addr(), bytes, false)
    }
}

#[track_caller]
fn assert_whole_error(result: std::io::Result<rawhttp::Response>, code: &str, what: &str) {
    let resp = result.unwrap_or_else(|e| panic!("{what}: the error answer was lost: {e}"));
    assert_eq!(resp.status, 403, "{what}: {}", resp.text());
    resp.assert_is_s3_error_document();
    assert_eq!(resp.s3_code().as_deref(), Some(code), "{what}");
}

#[tokio::test]
async fn bad_chunk_signature_answer_reaches_a_client_that_sends_its_whole_body() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    let plain = random_bytes(BODY_BYTES);
    let len = plain.len().to_string();
    for round in 0..ROUNDS {
        let path = format!("/{BUCKET}/chunk-{round}");
        let (mut headers, signer) = gw.sign(
            gw.admin(),
            "PUT",
            &path,
            None,
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", &len),
            ],
            PayloadMode::StreamingSigned,
        );
        let mut body = aws_chunked_signed(&plain, 65_536, &mut signer.unwrap());
        // One hex digit of the first chunk's signature changed.
        let at = body.iter().position(|&b| b == b'=').unwrap() + 1;
        body[at] = if body[at] == b'0' { b'1' } else { b'0' };
        headers.push(("content-length".into(), body.len().to_string()));
        let mut bytes = rawhttp::head("PUT", &path, &headers);
        bytes.extend_from_slice(&body);
        let what = format!("round {round}, bad chunk signature");
        assert_whole_error(exchange(round, &bytes, &gw), "SignatureDoesNotMatch", &what);
        assert!(!exists(&gw.client(), BUCKET, &format!("chunk-{round}")).await);
    }
}

#[tokio::test]
async fn bad_request_signature_answer_reaches_a_client_that_sends_its_whole_body() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    let plain = random_bytes(BODY_BYTES);
    for round in 0..ROUNDS {
        let path = format!("/{BUCKET}/sig-{round}");
        let (mut headers, _) = gw.sign(gw.admin(), "PUT", &path, None, &[], PayloadMode::Unsigned);
        // The last hex digit of the request signature changed.
        let auth = headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .unwrap();
        let last = auth.1.pop().unwrap();
        auth.1.push(if last == '0' { '1' } else { '0' });
        headers.push(("content-length".into(), plain.len().to_string()));
        let mut bytes = rawhttp::head("PUT", &path, &headers);
        bytes.extend_from_slice(&plain);
        let what = format!("round {round}, bad request signature");
        assert_whole_error(exchange(round, &bytes, &gw), "SignatureDoesNotMatch", &what);
        assert!(!exists(&gw.client(), BUCKET, &format!("sig-{round}")).await);
    }
}
