//! S3 additional checksums and Content-MD5 through the gateway, with the AWS SDK for Rust
//! computing them (an implementation independent of the gateway's):
//!
//! - each of CRC32, CRC32C, CRC64NVME, SHA1, SHA256 as a header (in-memory bodies: the SDK
//!   signs the payload hash and sends `x-amz-checksum-*`) and as an aws-chunked trailer
//!   (streaming bodies: over plain http the SDK sends
//!   `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`); complaint 2 (CRC64NVME trailers rejected,
//!   trailer bytes written into the object, empty bodies) is covered by these;
//! - a wrong checksum or Content-MD5 is 400 BadDigest and stores nothing, not even over an
//!   existing object;
//! - GET and HEAD with checksum mode give back the checksum the object was stored with, and
//!   the SDK validates it against the body it receives; for a trailer checksum too, on a
//!   small body (held back until the trailer verified) and a large one (recorded by a copy
//!   of the object onto itself), with the ETag the PUT gave unchanged on HEAD, GET and in
//!   listings;
//! - the SDK's default (a CRC32 trailer on a streaming PutObject) is returned likewise.
//! - the backend's copy of the checksum is sealed (no algorithm, no value in the clear), and
//!   a record moved from another object, altered, or written in the clear fails the
//!   requests that ask for it.
//!
//! Each test asserts, from the requests the SDK really sent, that it exercised the mode it
//! is named for.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use twofold::s3::checksum::{ChecksumAlgorithm, checksum};
use twofold::sigv4::PayloadMode;
use twofold_tests::checksum_of;
use twofold_tests::checksums::sdk_alg;
use twofold_tests::gateway::{
    TestGateway, aws_chunked_unsigned, create_bucket, exists, get, put, status_code,
};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp;

const BUCKET: &str = "checksums";

/// A file holding `data`, for a streaming (aws-chunked) upload.
async fn streaming_body(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> ByteStream {
    let path = dir.path().join(name);
    std::fs::write(&path, data).unwrap();
    ByteStream::from_path(&path).await.unwrap()
}

#[tokio::test]
async fn each_algorithm_as_a_header() {
    let gw = TestGateway::start();
    let (s3, rec) = gw.recording_client();
    create_bucket(&s3, BUCKET).await;
    for (a, len) in ChecksumAlgorithm::ALL
        .into_iter()
        .flat_map(|a| [(a, 100_000), (a, LARGE_BYTES)])
    {
        let key = format!("header-{}-{len}", a.name());
        let plain = random_bytes(len);
        let want = checksum(a, &plain).to_base64();
        rec.clear();
        let out = s3
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_algorithm(sdk_alg(a))
            .body(plain.clone().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {}: {e:?}", a.name()));
        let sent = rec.last();
        assert_eq!(
            sent.header(a.header_name()),
            Some(want.as_str()),
            "{}: the SDK sent the checksum as a header",
            a.name()
        );
        assert!(
            sent.header("content-encoding").is_none()
                && sent
                    .header("x-amz-content-sha256")
                    .is_some_and(|v| v.len() == 64),
            "{}: a signed, not chunked, payload: {sent:?}",
            a.name()
        );
        assert_eq!(checksum_of!(out, a), Some(want.clone()), "PUT response");

        let got = s3
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(checksum_of!(got, a), Some(want.clone()), "GET {}", a.name());
        // Collecting the body makes the SDK check it against the checksum.
        let body = got.body.collect().await.unwrap().to_vec();
        assert_eq!(body, plain);
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            checksum_of!(head, a),
            Some(want.clone()),
            "HEAD {}",
            a.name()
        );
        // A ranged GET carries no whole-object checksum (as in S3).
        let ranged = s3
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .range("bytes=0-9")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(checksum_of!(ranged, a), None, "ranged GET {}", a.name());
        assert_eq!(ranged.body.collect().await.unwrap().to_vec(), plain[..10]);
    }
}

#[tokio::test]
async fn each_algorithm_as_a_signed_aws_chunked_trailer() {
    let gw = TestGateway::start();
    let (s3, rec) = gw.recording_client();
    create_bucket(&s3, BUCKET).await;
    let dir = tempfile::tempdir().unwrap();
    for a in ChecksumAlgorithm::ALL {
        // Held back whole (up to 256 KiB stored) and streamed then copied (3 MiB).
        for len in [0usize, 1, 65_536, 200_001, LARGE_BYTES] {
            let key = format!("trailer-{}-{len}", a.name());
            let plain = random_bytes(len);
            let want = checksum(a, &plain).to_base64();
            rec.clear();
            let out = s3
                .put_object()
                .bucket(BUCKET)
                .key(&key)
                .checksum_algorithm(sdk_alg(a))
                .body(streaming_body(&dir, &key, &plain).await)
                .send()
                .await
                .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"));
            let sent = rec.last();
            assert_eq!(
                sent.header("x-amz-content-sha256"),
                Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
                "{key}: {sent:?}"
            );
            assert_eq!(sent.header("content-encoding"), Some("aws-chunked"));
            assert_eq!(sent.header("x-amz-trailer"), Some(a.header_name()));
            assert_eq!(
                sent.header("x-amz-decoded-content-length"),
                Some(len.to_string().as_str())
            );
            assert_eq!(
                checksum_of!(out, a),
                Some(want.clone()),
                "{key}: PUT response"
            );

            // The object is the payload: no framing, no trailer bytes in it.
            let got = get(&s3, BUCKET, &key).await;
            assert!(got == plain, "{key}: content ({} bytes back)", got.len());
            let head = s3
                .head_object()
                .bucket(BUCKET)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(head.content_length(), Some(len as i64), "{key}: size");
            assert_eq!(checksum_of!(head, a), Some(want.clone()), "{key}: HEAD");
            let got = s3
                .get_object()
                .bucket(BUCKET)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(checksum_of!(got, a), Some(want.clone()), "{key}: GET");
            assert_eq!(got.e_tag(), out.e_tag(), "{key}: GET ETag");
            assert_eq!(head.e_tag(), out.e_tag(), "{key}: HEAD ETag");
            // The SDK checks the body against the checksum as it collects it.
            assert!(got.body.collect().await.unwrap().to_vec() == plain, "{key}");
        }
    }
}

/// Bodies larger than what the gateway holds back whole: streamed to the backend, their
/// trailer checksum recorded afterwards.
const LARGE_BYTES: usize = 3 * 1024 * 1024;

/// Checks that a ListObjectsV2 of [`BUCKET`] gives `key` the ETag `etag`, where it gives
/// one: s3s-fs (the test backend) lists objects without ETags, and the gateway passes
/// listings on with the backend's ETags.
#[track_caller]
fn assert_listed_etag(listed: Option<String>, etag: &Option<String>, key: &str) {
    if let Some(listed) = listed {
        assert_eq!(Some(&listed), etag.as_ref(), "{key}: listed ETag");
    }
}

/// The ETag of `key` in a ListObjectsV2 of [`BUCKET`] (panics if `key` is not listed).
async fn listed_etag(s3: &aws_sdk_s3::Client, key: &str) -> Option<String> {
    let out = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(key)
        .send()
        .await
        .unwrap();
    let listed = out
        .contents()
        .iter()
        .find(|o| o.key() == Some(key))
        .unwrap_or_else(|| panic!("{key} is not listed"));
    listed.e_tag().map(str::to_owned)
}

#[tokio::test]
async fn sdk_default_trailer_checksum_is_returned_with_checksum_mode() {
    // The SDK's defaults (no checksum asked for): a streaming body goes out aws-chunked
    // with a CRC32 trailer, which the gateway must record with the object.
    let gw = TestGateway::start();
    let (s3, rec) = gw.recording_client();
    create_bucket(&s3, BUCKET).await;
    let dir = tempfile::tempdir().unwrap();
    for len in [10_000usize, LARGE_BYTES] {
        let key = format!("default-{len}");
        let plain = random_bytes(len);
        let want = checksum(ChecksumAlgorithm::Crc32, &plain).to_base64();
        rec.clear();
        let put = s3
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(streaming_body(&dir, &key, &plain).await)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"));
        let sent = rec.last();
        assert_eq!(
            sent.header("x-amz-trailer"),
            Some("x-amz-checksum-crc32"),
            "{key}: the SDK sent its default CRC32 as a trailer: {sent:?}"
        );
        assert_eq!(put.checksum_crc32(), Some(want.as_str()), "{key}: PUT");
        let etag = put.e_tag().map(str::to_owned);
        assert!(etag.is_some(), "{key}: PUT has an ETag");

        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(head.checksum_crc32(), Some(want.as_str()), "{key}: HEAD");
        let got = s3
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(got.checksum_crc32(), Some(want.as_str()), "{key}: GET");
        // The ETag the client was given is the object's, wherever it is read.
        assert_eq!(head.e_tag().map(str::to_owned), etag, "{key}: HEAD ETag");
        assert_eq!(got.e_tag().map(str::to_owned), etag, "{key}: GET ETag");
        assert_listed_etag(listed_etag(&s3, &key).await, &etag, &key);
        assert!(got.body.collect().await.unwrap().to_vec() == plain, "{key}");
        // Without checksum mode, no checksum (as in S3).
        let plain_head = s3
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            plain_head.checksum_crc32(),
            None,
            "{key}: HEAD without mode"
        );
    }
}

/// A raw PutObject with `STREAMING-UNSIGNED-PAYLOAD-TRAILER` and the trailer `value`.
fn unsigned_trailer_put(
    gw: &TestGateway,
    key: &str,
    a: ChecksumAlgorithm,
    plain: &[u8],
    value: &str,
) -> rawhttp::Response {
    let path = format!("/{BUCKET}/{key}");
    let decoded = plain.len().to_string();
    let (mut headers, _) = gw.sign(
        gw.admin(),
        "PUT",
        &path,
        None,
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", &decoded),
            ("x-amz-trailer", a.header_name()),
            ("x-amz-sdk-checksum-algorithm", a.name()),
        ],
        PayloadMode::StreamingUnsignedTrailer,
    );
    let body = aws_chunked_unsigned(plain, 65_536, &[(a.header_name(), value)]);
    headers.push(("content-length".into(), body.len().to_string()));
    let mut bytes = rawhttp::head("PUT", &path, &headers);
    bytes.extend_from_slice(&body);
    rawhttp::exchange(gw.addr(), &bytes, false)
}

#[tokio::test]
async fn unsigned_trailer_checksum_is_stored_and_a_wrong_one_is_refused() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    for a in ChecksumAlgorithm::ALL {
        for len in [30_000usize, LARGE_BYTES] {
            let key = format!("unsigned-{}-{len}", a.name());
            let plain = random_bytes(len);
            let want = checksum(a, &plain).to_base64();
            let resp = unsigned_trailer_put(&gw, &key, a, &plain, &want);
            assert_eq!(resp.status, 200, "{key}: {}", resp.text());
            assert_eq!(resp.header(a.header_name()), Some(want.as_str()), "{key}");
            let etag = resp.header("etag").map(str::to_owned);
            let head = s3
                .head_object()
                .bucket(BUCKET)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(checksum_of!(head, a), Some(want.clone()), "{key}: HEAD");
            assert_eq!(head.e_tag().map(str::to_owned), etag, "{key}: HEAD ETag");
            assert_listed_etag(listed_etag(&s3, &key).await, &etag, &key);

            // A wrong value: BadDigest, and the object stays as it was.
            let other = random_bytes(len);
            let wrong = checksum(a, b"not the body").to_base64();
            let resp = unsigned_trailer_put(&gw, &key, a, &other, &wrong);
            resp.assert_s3_error(400, "BadDigest");
            assert!(get(&s3, BUCKET, &key).await == plain, "{key}: unchanged");
            let head = s3
                .head_object()
                .bucket(BUCKET)
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            assert_eq!(checksum_of!(head, a), Some(want.clone()), "{key}: kept");
            assert_eq!(head.e_tag().map(str::to_owned), etag, "{key}: same ETag");
            // And nothing under a new name.
            let fresh = format!("{key}-fresh");
            let resp = unsigned_trailer_put(&gw, &fresh, a, &other, &wrong);
            resp.assert_s3_error(400, "BadDigest");
            assert!(!exists(&s3, BUCKET, &fresh).await, "{fresh}");
            assert!(gw.stored(BUCKET, &fresh).is_none(), "{fresh}");
            if len < LARGE_BYTES {
                // (Slow for 3 MiB in a debug build; the large case is covered by
                // `gw.stored` above and by the object that stayed unchanged.)
                gw.assert_no_plaintext_in_backend(&[&other]);
            }
        }
    }
}

#[tokio::test]
async fn wrong_checksum_header_is_bad_digest_and_nothing_is_stored() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let old = random_bytes(5000);
    for a in ChecksumAlgorithm::ALL {
        let plain = random_bytes(70_000);
        // The checksum of other bytes: well-formed, wrong.
        let wrong = checksum(a, b"not the body").to_base64();
        let req = s3
            .put_object()
            .bucket(BUCKET)
            .key("new")
            .body(plain.clone().into());
        let req = match a {
            ChecksumAlgorithm::Crc32 => req.checksum_crc32(&wrong),
            ChecksumAlgorithm::Crc32c => req.checksum_crc32_c(&wrong),
            ChecksumAlgorithm::Crc64Nvme => req.checksum_crc64_nvme(&wrong),
            ChecksumAlgorithm::Sha1 => req.checksum_sha1(&wrong),
            ChecksumAlgorithm::Sha256 => req.checksum_sha256(&wrong),
        };
        let e = req.send().await.unwrap_err();
        assert_eq!(
            status_code(&e),
            (400, "BadDigest".to_owned()),
            "{}: {e:?}",
            a.name()
        );
        assert!(!exists(&s3, BUCKET, "new").await, "{}", a.name());
        assert!(gw.stored(BUCKET, "new").is_none(), "{}", a.name());

        // Over an existing object: the old one stays, whole.
        put(&s3, BUCKET, "old", old.clone()).await;
        let req = s3
            .put_object()
            .bucket(BUCKET)
            .key("old")
            .body(plain.clone().into());
        let req = match a {
            ChecksumAlgorithm::Crc32 => req.checksum_crc32(&wrong),
            ChecksumAlgorithm::Crc32c => req.checksum_crc32_c(&wrong),
            ChecksumAlgorithm::Crc64Nvme => req.checksum_crc64_nvme(&wrong),
            ChecksumAlgorithm::Sha1 => req.checksum_sha1(&wrong),
            ChecksumAlgorithm::Sha256 => req.checksum_sha256(&wrong),
        };
        let e = req.send().await.unwrap_err();
        assert_eq!(status_code(&e).0, 400, "{}: {e:?}", a.name());
        assert_eq!(get(&s3, BUCKET, "old").await, old, "{}", a.name());
        gw.assert_no_plaintext_in_backend(&[&plain]);
    }
}

#[tokio::test]
async fn content_md5() {
    use base64::Engine;
    use md5::Digest;
    let b64 = base64::engine::general_purpose::STANDARD;
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(100_000);
    let right = b64.encode(md5::Md5::digest(&plain));
    let wrong = b64.encode(md5::Md5::digest(b"other bytes"));

    s3.put_object()
        .bucket(BUCKET)
        .key("md5-right")
        .content_md5(&right)
        .body(plain.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, BUCKET, "md5-right").await, plain);

    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("md5-wrong")
        .content_md5(&wrong)
        .body(plain.clone().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (400, "BadDigest".to_owned()), "{e:?}");
    assert!(!exists(&s3, BUCKET, "md5-wrong").await);

    // Over an existing object: it stays.
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("md5-right")
        .content_md5(&wrong)
        .body(random_bytes(10).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400, "{e:?}");
    assert_eq!(get(&s3, BUCKET, "md5-right").await, plain);

    // Not base64 / not 16 bytes.
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("md5-bad")
        .content_md5("not-base64!!")
        .body(plain.clone().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400, "{e:?}");
    assert!(!exists(&s3, BUCKET, "md5-bad").await);
}

#[tokio::test]
async fn checksum_on_get_is_validated_by_the_sdk_on_a_multi_segment_object() {
    // The SDK's response-checksum validation (on by default) recomputes the CRC32 over the
    // whole body: a gateway that returned the right checksum with a wrong body, or the
    // wrong checksum, would fail here.
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(5 * 65_536 + 3);
    s3.put_object()
        .bucket(BUCKET)
        .key("k")
        .checksum_algorithm(sdk_alg(ChecksumAlgorithm::Crc32))
        .body(plain.clone().into())
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert!(got.checksum_crc32().is_some());
    assert_eq!(got.body.collect().await.unwrap().to_vec(), plain);
}

/// The checksum's metadata entry as the backend stores it.
async fn stored_checksum_entry(gw: &TestGateway, key: &str) -> String {
    let raw = gw.backend_head(BUCKET, key).await;
    raw.metadata()
        .and_then(|m| m.get("twofold-checksum"))
        .cloned()
        .unwrap_or_else(|| panic!("{key}: no checksum recorded"))
}

/// Replaces the backend object's checksum entry with `value`, leaving the body and the
/// rest of its metadata as they are (what a tampering backend can do).
async fn set_stored_checksum_entry(gw: &TestGateway, key: &str, value: &str) {
    let backend = gw.backend_client();
    let raw = gw.backend_head(BUCKET, key).await;
    let mut meta = raw.metadata().cloned().unwrap_or_default();
    meta.insert("twofold-checksum".into(), value.into());
    backend
        .copy_object()
        .bucket(BUCKET)
        .key(key)
        .copy_source(format!("{BUCKET}/{key}"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .set_metadata(Some(meta))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_backend_never_sees_the_checksum_and_a_tampered_one_is_refused() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let dir = tempfile::tempdir().unwrap();
    // The three ways a checksum is recorded: a header, a trailer on a body held back, a
    // trailer on a streamed body (recorded by a copy).
    let cases = [
        ("header", ChecksumAlgorithm::Sha256, 1000usize, false),
        ("held", ChecksumAlgorithm::Crc32, 1000, true),
        ("streamed", ChecksumAlgorithm::Crc64Nvme, LARGE_BYTES, true),
    ];
    let mut plains = Vec::new();
    for (key, a, len, streaming) in cases {
        let plain = random_bytes(len);
        let want = checksum(a, &plain).to_base64();
        let body = if streaming {
            streaming_body(&dir, key, &plain).await
        } else {
            plain.clone().into()
        };
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_algorithm(sdk_alg(a))
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {key}: {e:?}"));
        let entry = stored_checksum_entry(&gw, key).await;
        assert!(
            !entry.contains(&want) && !entry.contains(a.name()) && !entry.contains(':'),
            "{key}: the backend's metadata shows the checksum: {entry}"
        );
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(checksum_of!(head, a), Some(want), "{key}: HEAD");
        plains.push(plain);
    }

    // A record from another object, an altered one, or a checksum in the clear as a
    // backend could write it: refused (an integrity failure) with checksum mode, on HEAD,
    // GET and GetObjectAttributes.
    let moved = stored_checksum_entry(&gw, "held").await;
    let mut altered = stored_checksum_entry(&gw, "header").await.into_bytes();
    altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let plain_crc = format!(
        "CRC32:{}",
        checksum(ChecksumAlgorithm::Crc32, &plains[0]).to_base64()
    );
    for forged in [moved, altered, plain_crc] {
        set_stored_checksum_entry(&gw, "header", &forged).await;
        let e = s3
            .head_object()
            .bucket(BUCKET)
            .key("header")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_code(&e).0, 500, "HEAD with {forged}: {e:?}");
        let e = s3
            .get_object()
            .bucket(BUCKET)
            .key("header")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_code(&e).0, 500, "GET with {forged}: {e:?}");
        let e = s3
            .get_object_attributes()
            .bucket(BUCKET)
            .key("header")
            .object_attributes(aws_sdk_s3::types::ObjectAttributes::Checksum)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_code(&e).0, 500, "attributes with {forged}: {e:?}");
        // Without checksum mode the record is not read (the SDK's GetObject asks for it
        // by default, so its plain GET fails too).
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key("header")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(1000), "{forged}");
    }
    gw.assert_no_plaintext_in_backend(&plains.iter().map(Vec::as_slice).collect::<Vec<_>>());
}
