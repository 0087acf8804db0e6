//! Every way a client can send a PutObject body, and every way it can be wrong:
//!
//! - a signed SHA-256 payload and `UNSIGNED-PAYLOAD` (from the AWS SDK, which is shown to
//!   have sent them);
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (aws-chunked, every chunk signed), hand-built
//!   with the gateway's own signer over a raw socket, as the SDK for Rust no longer sends it;
//! - `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with a checksum trailer (what boto3 and the aws CLI
//!   send by default over https), hand-built;
//! - `Expect: 100-continue` (what boto3 sends over plain http);
//! - a body that does not hash to its signed SHA-256, a bad chunk signature, a wrong
//!   trailer checksum: each refused with the S3 error clients expect, and nothing stored,
//!   not even over an existing object.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use twofold::s3::checksum::{ChecksumAlgorithm, checksum};
use twofold::sigv4::PayloadMode;
use twofold_tests::gateway::{
    TestGateway, aws_chunked_signed, aws_chunked_unsigned, create_bucket, exists, get, put,
};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp::{self, Response};

const BUCKET: &str = "payload";

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut out = [0u8; 32];
    out.copy_from_slice(&sha2::Sha256::digest(data));
    out
}

/// A PUT whose signed headers are `signed` plus the three the signer adds, with `body`
/// sent as it is (Content-Length unsigned, as clients do).
fn raw_put(
    gw: &TestGateway,
    key: &str,
    signed: &[(&str, &str)],
    payload: PayloadMode,
    body: impl FnOnce(Option<twofold::sigv4::ChunkSigner>) -> Vec<u8>,
) -> Response {
    try_raw_put(gw, key, signed, payload, body)
        .unwrap_or_else(|e| panic!("PUT {key}: no answer: {e}"))
}

/// [`raw_put`] for a request that may be refused before its body ends (see
/// [`rawhttp::try_exchange`]).
fn try_raw_put(
    gw: &TestGateway,
    key: &str,
    signed: &[(&str, &str)],
    payload: PayloadMode,
    body: impl FnOnce(Option<twofold::sigv4::ChunkSigner>) -> Vec<u8>,
) -> std::io::Result<Response> {
    let path = format!("/{BUCKET}/{key}");
    let (mut headers, signer) = gw.sign(gw.admin(), "PUT", &path, None, signed, payload);
    let body = body(signer);
    headers.push(("content-length".into(), body.len().to_string()));
    let mut bytes = rawhttp::head("PUT", &path, &headers);
    bytes.extend_from_slice(&body);
    rawhttp::try_exchange(gw.addr(), &bytes, false)
}

#[tokio::test]
async fn signed_sha256_payload_from_the_sdk() {
    let gw = TestGateway::start();
    let conf = gw
        .config_builder(gw.admin())
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .build();
    let rec = twofold_tests::gateway::Recorder::default();
    let conf = conf.to_builder().interceptor(rec.clone()).build();
    let s3 = aws_sdk_s3::Client::from_conf(conf);
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(200_000);
    rec.clear();
    put(&s3, BUCKET, "signed", plain.clone()).await;
    let sent = rec.last();
    assert_eq!(
        sent.header("x-amz-content-sha256"),
        Some(hex::encode(sha256(&plain)).as_str()),
        "{sent:?}"
    );
    assert!(
        sent.headers
            .iter()
            .all(|(n, _)| !n.starts_with("x-amz-checksum"))
    );
    assert_eq!(get(&s3, BUCKET, "signed").await, plain);
    gw.assert_no_plaintext_in_backend(&[&plain]);
}

#[tokio::test]
async fn unsigned_payload_from_the_sdk() {
    let gw = TestGateway::start();
    let (s3, rec) = gw.recording_client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(100_000);
    rec.clear();
    s3.put_object()
        .bucket(BUCKET)
        .key("unsigned")
        .body(plain.clone().into())
        .customize()
        .disable_payload_signing()
        .send()
        .await
        .unwrap();
    assert_eq!(
        rec.last().header("x-amz-content-sha256"),
        Some("UNSIGNED-PAYLOAD")
    );
    assert_eq!(get(&s3, BUCKET, "unsigned").await, plain);
}

#[tokio::test]
async fn unsigned_payload_raw() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(65_537);
    let resp = raw_put(&gw, "u", &[], PayloadMode::Unsigned, |_| plain.clone());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get(&s3, BUCKET, "u").await, plain);
}

#[tokio::test]
async fn streaming_signed_payload() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let mut plaintexts = Vec::new();
    let mut failed = Vec::new();
    for (len, chunk) in [
        (0usize, 65_536usize),
        (1, 65_536),
        (65_536, 65_536),
        (65_537, 8192),
        (200_001, 65_536),
        // Chunks that straddle the 64 KiB segment boundaries.
        (200_001, 8193),
        (200_001, 10_000),
        (200_001, 65_535),
        (200_001, 65_537),
        (200_001, 100_000),
        (200_001, 1 << 20),
        // Below the 8 KiB minimum AWS sets for all but the last chunk; S3 refuses with
        // 400, the gateway may accept.
        (100_000, 1000),
    ] {
        let key = format!("chunked-{len}-{chunk}");
        let plain = random_bytes(len);
        let decoded = len.to_string();
        let resp = raw_put(
            &gw,
            &key,
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", &decoded),
            ],
            PayloadMode::StreamingSigned,
            |signer| aws_chunked_signed(&plain, chunk, &mut signer.unwrap()),
        );
        if resp.status != 200 {
            failed.push(format!("{key}: {} {}", resp.status, resp.text()));
            continue;
        }
        let got = get(&s3, BUCKET, &key).await;
        if got != plain {
            failed.push(format!("{key}: content ({} bytes back)", got.len()));
        }
        plaintexts.push(plain);
    }
    let refs: Vec<&[u8]> = plaintexts.iter().map(Vec::as_slice).collect();
    gw.assert_no_plaintext_in_backend(&refs);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[tokio::test]
async fn streaming_unsigned_payload_with_checksum_trailers() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    for a in ChecksumAlgorithm::ALL {
        for len in [0usize, 1, 65_536, 150_000] {
            let key = format!("trailer-{}-{len}", a.name());
            let plain = random_bytes(len);
            let value = checksum(a, &plain).to_base64();
            let decoded = len.to_string();
            let resp = raw_put(
                &gw,
                &key,
                &[
                    ("content-encoding", "aws-chunked"),
                    ("x-amz-decoded-content-length", &decoded),
                    ("x-amz-trailer", a.header_name()),
                    ("x-amz-sdk-checksum-algorithm", a.name()),
                ],
                PayloadMode::StreamingUnsignedTrailer,
                |_| aws_chunked_unsigned(&plain, 65_536, &[(a.header_name(), &value)]),
            );
            assert_eq!(resp.status, 200, "{key}: {}", resp.text());
            assert_eq!(
                resp.header(a.header_name()),
                Some(value.as_str()),
                "{key}: the PUT response gives the checksum back"
            );
            let got = get(&s3, BUCKET, &key).await;
            assert!(
                got == plain,
                "{key}: content ({} bytes back; trailer bytes must not be stored)",
                got.len()
            );
        }
    }
}

#[tokio::test]
async fn streaming_unsigned_payload_with_boto3_sized_chunks() {
    // botocore's aws-chunked wrapper sends 1 MiB chunks (and the Java SDK v2 128 KiB ones):
    // chunks that do not end where the gateway's 64 KiB segments end.
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let mut failed = Vec::new();
    for (len, chunk) in [
        (150_000usize, 1usize << 20),
        (3 << 20, 1 << 20),
        (300_000, 128 << 10),
    ] {
        let key = format!("boto3-{len}-{chunk}");
        let plain = random_bytes(len);
        let value = checksum(ChecksumAlgorithm::Crc32, &plain).to_base64();
        let decoded = len.to_string();
        let resp = raw_put(
            &gw,
            &key,
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", &decoded),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
                ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ],
            PayloadMode::StreamingUnsignedTrailer,
            |_| aws_chunked_unsigned(&plain, chunk, &[("x-amz-checksum-crc32", &value)]),
        );
        if resp.status != 200 {
            failed.push(format!("{key}: {} {}", resp.status, resp.text()));
            continue;
        }
        let got = get(&s3, BUCKET, &key).await;
        if got != plain {
            failed.push(format!("{key}: content ({} bytes back)", got.len()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[tokio::test]
async fn streaming_unsigned_payload_with_a_wrong_trailer_stores_nothing() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let old = random_bytes(1000);
    put(&s3, BUCKET, "existing", old.clone()).await;
    for a in ChecksumAlgorithm::ALL {
        for key in ["fresh", "existing"] {
            let plain = random_bytes(140_000);
            let wrong = checksum(a, b"something else").to_base64();
            let resp = raw_put(
                &gw,
                key,
                &[
                    ("content-encoding", "aws-chunked"),
                    ("x-amz-decoded-content-length", "140000"),
                    ("x-amz-trailer", a.header_name()),
                ],
                PayloadMode::StreamingUnsignedTrailer,
                |_| aws_chunked_unsigned(&plain, 65_536, &[(a.header_name(), &wrong)]),
            );
            resp.assert_s3_error(400, "BadDigest");
            gw.assert_no_plaintext_in_backend(&[&plain]);
        }
        assert!(!exists(&s3, BUCKET, "fresh").await, "{}", a.name());
        assert_eq!(get(&s3, BUCKET, "existing").await, old, "{}", a.name());
    }
}

#[tokio::test]
async fn trailer_that_was_not_declared_or_is_missing() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(10_000);
    let value = checksum(ChecksumAlgorithm::Crc32, &plain).to_base64();
    // Declared, not sent.
    let resp = raw_put(
        &gw,
        "missing-trailer",
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "10000"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ],
        PayloadMode::StreamingUnsignedTrailer,
        |_| aws_chunked_unsigned(&plain, 65_536, &[]),
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    resp.assert_is_s3_error_document();
    assert!(!exists(&s3, BUCKET, "missing-trailer").await);
    // Sent, not declared.
    let resp = raw_put(
        &gw,
        "undeclared-trailer",
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "10000"),
        ],
        PayloadMode::StreamingUnsignedTrailer,
        |_| aws_chunked_unsigned(&plain, 65_536, &[("x-amz-checksum-crc32", &value)]),
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    resp.assert_is_s3_error_document();
    assert!(!exists(&s3, BUCKET, "undeclared-trailer").await);
}

#[tokio::test]
async fn decoded_length_that_disagrees_with_the_chunks() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(10_000);
    for (key, declared) in [("longer", "10001"), ("shorter", "9999")] {
        let result = try_raw_put(
            &gw,
            key,
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", declared),
            ],
            PayloadMode::StreamingSigned,
            |signer| aws_chunked_signed(&plain, 4096, &mut signer.unwrap()),
        );
        match result {
            Ok(resp) => {
                assert_eq!(resp.status, 400, "{key}: {}", resp.text());
                resp.assert_is_s3_error_document();
            }
            Err(e) => assert!(rawhttp::is_reset(&e), "{key}: {e}"),
        }
        assert!(!exists(&s3, BUCKET, key).await, "{key}");
    }
    gw.assert_no_plaintext_in_backend(&[&plain]);
}

#[tokio::test]
async fn tampered_body_with_a_signed_payload_hash_stores_nothing() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let old = random_bytes(3000);
    put(&s3, BUCKET, "existing", old.clone()).await;
    for len in [1usize, 65_536, 200_000] {
        for key in ["fresh", "existing"] {
            let signed = random_bytes(len);
            let mut sent = signed.clone();
            let at = len - 1;
            sent[at] ^= 0x01; // the last byte: caught only at the very end
            let resp = raw_put(&gw, key, &[], PayloadMode::Sha256(sha256(&signed)), |_| {
                sent.clone()
            });
            resp.assert_s3_error(400, "XAmzContentSHA256Mismatch");
            gw.assert_no_plaintext_in_backend(&[&sent]);
        }
        assert!(!exists(&s3, BUCKET, "fresh").await, "{len}");
        assert_eq!(get(&s3, BUCKET, "existing").await, old, "{len}");
    }
}

#[tokio::test]
async fn bad_chunk_signatures_store_nothing() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let old = random_bytes(3000);
    put(&s3, BUCKET, "existing", old.clone()).await;
    let plain = random_bytes(200_000);
    // Which signature to spoil: the first chunk's, a middle one's, the final empty chunk's.
    for spoil in ["first", "middle", "final", "data"] {
        for key in ["fresh", "existing"] {
            let result = try_raw_put(
                &gw,
                key,
                &[
                    ("content-encoding", "aws-chunked"),
                    ("x-amz-decoded-content-length", "200000"),
                ],
                PayloadMode::StreamingSigned,
                |signer| {
                    let mut body = aws_chunked_signed(&plain, 65_536, &mut signer.unwrap());
                    let sigs: Vec<usize> = body
                        .windows(16)
                        .enumerate()
                        .filter(|(_, w)| *w == b"chunk-signature=")
                        .map(|(i, _)| i + 16)
                        .collect();
                    match spoil {
                        "first" => body[sigs[0]] = flip_hex(body[sigs[0]]),
                        "middle" => body[sigs[2]] = flip_hex(body[sigs[2]]),
                        "final" => {
                            let i = *sigs.last().unwrap();
                            body[i] = flip_hex(body[i]);
                        }
                        // Data changed, signatures left: the chunk no longer matches its own.
                        _ => {
                            let i = sigs[1] + 64 + 2 + 100;
                            body[i] ^= 0x80;
                        }
                    }
                    body
                },
            );
            rawhttp::assert_refused(
                result,
                403,
                "SignatureDoesNotMatch",
                &format!("{spoil} signature spoilt, {key}"),
            );
            gw.assert_no_plaintext_in_backend(&[&plain]);
        }
        assert!(!exists(&s3, BUCKET, "fresh").await, "{spoil}");
        assert_eq!(get(&s3, BUCKET, "existing").await, old, "{spoil}");
    }
}

fn flip_hex(c: u8) -> u8 {
    if c == b'0' { b'1' } else { b'0' }
}

#[tokio::test]
async fn swapped_chunks_are_refused() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(3 * 8192);
    let result = try_raw_put(
        &gw,
        "swapped",
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "24576"),
        ],
        PayloadMode::StreamingSigned,
        |signer| {
            let body = aws_chunked_signed(&plain, 8192, &mut signer.unwrap());
            // Each full chunk is "2000;chunk-signature=<64>\r\n" + 8192 + "\r\n".
            let frame = 4 + 17 + 64 + 2 + 8192 + 2;
            let mut out = Vec::new();
            out.extend_from_slice(&body[frame..2 * frame]);
            out.extend_from_slice(&body[..frame]);
            out.extend_from_slice(&body[2 * frame..]);
            out
        },
    );
    rawhttp::assert_refused(result, 403, "SignatureDoesNotMatch", "swapped chunks");
    assert!(!exists(&s3, BUCKET, "swapped").await);
}

#[tokio::test]
async fn expect_100_continue_with_a_signed_payload_and_checksum_header() {
    // What boto3 sends over plain http: signed payload hash, x-amz-checksum-crc32 header and
    // Expect: 100-continue. The gateway must send 100 Continue before the client sends the
    // body (boto3 waits up to a second, then sends anyway).
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(150_000);
    let crc = checksum(ChecksumAlgorithm::Crc32, &plain).to_base64();
    let path = format!("/{BUCKET}/continued");
    let (mut headers, _) = gw.sign(
        gw.admin(),
        "PUT",
        &path,
        None,
        &[("x-amz-checksum-crc32", &crc)],
        PayloadMode::Sha256(sha256(&plain)),
    );
    headers.push(("content-length".into(), plain.len().to_string()));
    headers.push(("expect".into(), "100-continue".into()));
    let mut conn = rawhttp::connect(gw.addr());
    conn.write_all(&rawhttp::head("PUT", &path, &headers))
        .unwrap();
    let interim = rawhttp::read_response(&mut conn, false).unwrap();
    assert_eq!(interim.status, 100, "{interim:?}");
    conn.write_all(&plain).unwrap();
    let resp = rawhttp::read_response(&mut conn, false).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    assert_eq!(get(&s3, BUCKET, "continued").await, plain);

    // A request refused before its body (wrong signature) gets its error instead of 100
    // Continue, and nothing is stored.
    let (mut headers, _) = gw.sign(
        &twofold_tests::gateway::Credential {
            access_key_id: gw.admin().access_key_id.clone(),
            secret: "wrong".into(),
        },
        "PUT",
        &path,
        None,
        &[],
        PayloadMode::Sha256(sha256(&plain)),
    );
    headers.push(("content-length".into(), plain.len().to_string()));
    headers.push(("expect".into(), "100-continue".into()));
    let mut conn = rawhttp::connect(gw.addr());
    conn.write_all(&rawhttp::head(
        "PUT",
        &path.replace("continued", "refused"),
        &headers,
    ))
    .unwrap();
    let resp = rawhttp::read_response(&mut conn, false).unwrap();
    resp.assert_s3_error(403, "SignatureDoesNotMatch");
    assert!(!exists(&s3, BUCKET, "refused").await);
}

#[tokio::test]
async fn http_chunked_transfer_encoding_with_aws_chunked_inside() {
    // Some clients send an aws-chunked body with Transfer-Encoding: chunked instead of a
    // Content-Length: the two framings nest.
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(100_000);
    let path = format!("/{BUCKET}/te");
    let (mut headers, signer) = gw.sign(
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
    let inner = aws_chunked_signed(&plain, 16_384, &mut signer.unwrap());
    headers.push(("transfer-encoding".into(), "chunked".into()));
    let mut bytes = rawhttp::head("PUT", &path, &headers);
    for part in inner.chunks(10_007) {
        bytes.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        bytes.extend_from_slice(part);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    let resp = rawhttp::exchange(gw.addr(), &bytes, false);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get(&s3, BUCKET, "te").await, plain);
}
