//! Format version 1 objects through CopyObject. With `x-amz-metadata-directive: REPLACE`
//! the copy is sealed again as a version 2 object (the gateway reads and verifies the
//! source and writes the copy itself): the same plaintext byte for byte, whatever the
//! source's shape (single-part, multipart aligned or unaligned, any segment size), the
//! request's metadata sealed, the source's checksum kept. With COPY it stays version 1.
//! A source that fails verification anywhere fails the copy with the integrity error of a
//! GET and leaves the destination as it was, whether the copy answered at once or was
//! kept alive.
//!
//! The gateway writes only version 2, so the version 1 objects are made here with the
//! keyring's version 1 sealing on the gateway's own tokens, and stored through the
//! backend's own S3 API (the file runs on every backend).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumMode, MetadataDirective, TaggingDirective,
    VersioningConfiguration,
};
use base64::Engine;
use std::collections::HashMap;
use twofold::envelope::header::FORMAT_VERSION_WRAPPED;
use twofold::envelope::layout::{SegmentSize, stored_len};
use twofold::envelope::record::padding_len;
use twofold::envelope::{ObjectName, checksum_record, objmeta, record};
use twofold::keys::{Keyring, block_on};
use twofold::s3::checksum::{ChecksumAlgorithm, checksum};
use twofold_tests::admin::Scrape;
use twofold_tests::backend::BackendKind;
use twofold_tests::gateway::{
    Options, RawRequest, TestGateway, create_bucket, exists, get, put, status_code,
};
use twofold_tests::{random_bytes, seal_part, segment_4k, settings};

const BUCKET: &str = "v1-copy";
const MIB: usize = 1024 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const CONVERSIONS: &str = "twofold_format_conversions_total";
const INTEGRITY_FAILURES: &str = "twofold_integrity_failures_total";

/// A version 1 object as the backend stores it.
struct V1 {
    plain: Vec<u8>,
    stored: Vec<u8>,
    /// User metadata, the gateway's (`twofold`...) and the client's in the clear.
    metadata: HashMap<String, String>,
}

/// A keyring on the gateway's own tokens that seals `seg`-byte segments.
fn keyring(gw: &TestGateway, seg: SegmentSize) -> Keyring {
    gw.custody().keyring(settings(seg))
}

/// A single-part version 1 object of `plain` for `key`, with the SHA-256 of its plaintext
/// sealed as its checksum record, and the client's metadata `owner` in the clear.
fn v1_single(ring: &Keyring, key: &str, plain: Vec<u8>) -> V1 {
    let name = ObjectName {
        bucket: BUCKET,
        key,
    };
    let (header, keys) = block_on(ring.seal_new_in(name, None, FORMAT_VERSION_WRAPPED)).unwrap();
    assert_eq!(header.version(), 1);
    let stored = seal_part(&header, &keys, 0, &plain);
    let cipher = checksum_record::cipher(&header, &keys).unwrap();
    let digest = checksum(ChecksumAlgorithm::Sha256, &plain);
    let sealed = checksum_record::seal(
        &cipher,
        &checksum_record::StoredChecksum::full_object(ChecksumAlgorithm::Sha256, digest),
    )
    .unwrap();
    let metadata = HashMap::from([
        (objmeta::METADATA_NAME.to_owned(), objmeta::encode(&header)),
        (objmeta::CHECKSUM_METADATA_NAME.to_owned(), sealed),
        ("owner".to_owned(), "v1-owner-in-the-clear".to_owned()),
    ]);
    V1 {
        plain,
        stored,
        metadata,
    }
}

/// A multipart version 1 object of `parts` for `key`: the parts' sealed bodies laid end to
/// end and, where a part but the last is not whole segments, the layout record and the
/// marker padding version 1 gives such an object.
fn v1_multipart(ring: &Keyring, key: &str, parts: &[Vec<u8>]) -> V1 {
    let name = ObjectName {
        bucket: BUCKET,
        key,
    };
    let upload_id: [u8; 16] = random_bytes(16).try_into().unwrap();
    let (header, keys) =
        block_on(ring.seal_new_in(name, Some(upload_id), FORMAT_VERSION_WRAPPED)).unwrap();
    let mut stored = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        stored.extend(seal_part(&header, &keys, i as u32 + 1, p));
    }
    let mut metadata =
        HashMap::from([(objmeta::METADATA_NAME.to_owned(), objmeta::encode(&header))]);
    let sizes: Vec<u64> = parts.iter().map(|p| p.len() as u64).collect();
    if record::needs_record(&sizes, header.segment_size) {
        let sealed = record::seal(&header, &keys, &sizes).unwrap();
        metadata.insert(objmeta::LAYOUT_METADATA_NAME.to_owned(), B64.encode(sealed));
        let pad = padding_len(stored.len() as u64, header.segment_size) as usize;
        stored.extend(random_bytes(pad));
    }
    V1 {
        plain: parts.concat(),
        stored,
        metadata,
    }
}

/// Stores `bytes` with `metadata` as `key` through the backend's own API; the version id
/// the backend gives it, on a versioned bucket.
async fn store(
    gw: &TestGateway,
    key: &str,
    bytes: &[u8],
    metadata: &HashMap<String, String>,
) -> Option<String> {
    gw.backend_client()
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .content_type("text/v1-type")
        .set_metadata(Some(metadata.clone()))
        .body(bytes.to_vec().into())
        .send()
        .await
        .unwrap_or_else(|e| panic!("backend PUT {key}: {e:?}"))
        .version_id
}

/// The format version byte of the header the backend holds for `key`.
async fn stored_version(gw: &TestGateway, key: &str) -> u8 {
    let head = gw.backend_head(BUCKET, key).await;
    let value = head.metadata().unwrap()[objmeta::METADATA_NAME].clone();
    B64.decode(value).unwrap()[4]
}

/// CopyObject `from` → `to` with REPLACE and the metadata the tests check for.
async fn copy_replace(
    s3: &Client,
    from: &str,
    to: &str,
) -> Result<
    aws_sdk_s3::operation::copy_object::CopyObjectOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::copy_object::CopyObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
> {
    s3.copy_object()
        .bucket(BUCKET)
        .key(to)
        .copy_source(format!("{BUCKET}/{from}"))
        .metadata_directive(MetadataDirective::Replace)
        .content_type("application/x-replaced-secret-type")
        .cache_control("private, replaced-secret-cache")
        .metadata("owner", "replaced-secret-owner")
        .metadata("project", "replaced-secret-project")
        .send()
        .await
}

/// The metadata [`copy_replace`] gives, as HEAD shows it.
async fn assert_replaced(s3: &Client, key: &str) {
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.content_type(),
        Some("application/x-replaced-secret-type")
    );
    assert_eq!(head.cache_control(), Some("private, replaced-secret-cache"));
    let want = HashMap::from([
        ("owner".to_owned(), "replaced-secret-owner".to_owned()),
        ("project".to_owned(), "replaced-secret-project".to_owned()),
    ]);
    assert_eq!(head.metadata().cloned().unwrap_or_default(), want, "{key}");
    assert_eq!(
        head.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms:dsse")
    );
}

fn admin_gateway(limits: twofold::limits::Limits) -> TestGateway {
    TestGateway::start_with(Options {
        admin_listener: true,
        limits,
        ..Default::default()
    })
}

#[tokio::test]
async fn a_v1_object_copied_with_replace_becomes_v2_with_the_requests_metadata() {
    let gw = admin_gateway(Default::default());
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    // 4 KiB segments: the copy is cut into the gateway's 64 KiB ones.
    let v1 = v1_single(
        &keyring(&gw, segment_4k()),
        "old",
        random_bytes(3 * MIB + 17),
    );
    store(&gw, "old", &v1.stored, &v1.metadata).await;
    assert_eq!(stored_version(&gw, "old").await, 1);
    assert!(
        get(&s3, BUCKET, "old").await == v1.plain,
        "the gateway reads v1"
    );

    let before = Scrape::take(gw.admin_addr()).sum(CONVERSIONS, &[("result", "ok")]);
    let out = copy_replace(&s3, "old", "new").await.unwrap();
    assert_eq!(
        out.server_side_encryption().map(|s| s.as_str()),
        Some("aws:kms:dsse")
    );
    let result = out.copy_object_result().unwrap();
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("new")
        .send()
        .await
        .unwrap();
    assert_eq!(
        result.e_tag(),
        head.e_tag(),
        "the result's ETag is the object's"
    );
    assert!(result.last_modified().is_some());
    // (The metrics are the test process's: other tests' conversions count too.)
    let after = Scrape::take(gw.admin_addr()).sum(CONVERSIONS, &[("result", "ok")]);
    assert!(after > before, "{before} -> {after}");

    assert_eq!(stored_version(&gw, "new").await, 2);
    assert!(get(&s3, BUCKET, "new").await == v1.plain);
    assert_replaced(&s3, "new").await;
    // The source's checksum came along, sealed for the copy.
    let sha = s3
        .get_object()
        .bucket(BUCKET)
        .key("new")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let want = checksum(ChecksumAlgorithm::Sha256, &v1.plain).to_base64();
    assert_eq!(sha.checksum_sha256(), Some(want.as_str()));
    // The backend holds the new object's metadata sealed only.
    let raw = gw.backend_head(BUCKET, "new").await;
    assert!(
        raw.metadata()
            .unwrap()
            .keys()
            .all(|k| k.starts_with("twofold"))
    );
    assert!(raw.content_type() != Some("application/x-replaced-secret-type"));

    // Onto itself: the object becomes version 2 in place.
    copy_replace(&s3, "old", "old").await.unwrap();
    assert_eq!(stored_version(&gw, "old").await, 2);
    assert!(get(&s3, BUCKET, "old").await == v1.plain);
    assert_replaced(&s3, "old").await;
    gw.assert_no_plaintext_in_backend(&[
        &v1.plain,
        b"replaced-secret-owner",
        b"replaced-secret-project",
        b"application/x-replaced-secret-type",
    ]);
}

#[tokio::test]
async fn a_v1_object_copied_with_copy_stays_v1() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let v1 = v1_single(
        &keyring(&gw, SegmentSize::DEFAULT),
        "old",
        random_bytes(200_000),
    );
    store(&gw, "old", &v1.stored, &v1.metadata).await;
    s3.copy_object()
        .bucket(BUCKET)
        .key("copied")
        .copy_source(format!("{BUCKET}/old"))
        .send()
        .await
        .unwrap();
    assert_eq!(stored_version(&gw, "copied").await, 1);
    assert!(get(&s3, BUCKET, "copied").await == v1.plain);
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/v1-type"));
    assert_eq!(
        head.metadata().unwrap().get("owner").map(String::as_str),
        Some("v1-owner-in-the-clear")
    );
}

/// A version 2 object is copied by the backend under either directive: the copy's stored
/// body is the source's (the same backend ETag, the MD5 of the stored bytes).
#[tokio::test]
async fn a_v2_object_is_copied_by_the_backend_under_either_directive() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(300_000);
    put(&s3, BUCKET, "v2", plain.clone()).await;
    copy_replace(&s3, "v2", "replaced").await.unwrap();
    s3.copy_object()
        .bucket(BUCKET)
        .key("copied")
        .copy_source(format!("{BUCKET}/v2"))
        .send()
        .await
        .unwrap();
    let source = backend_etag(&gw, "v2").await;
    for key in ["replaced", "copied"] {
        assert_eq!(backend_etag(&gw, key).await, source, "{key}");
        assert_eq!(stored_version(&gw, key).await, 2, "{key}");
        assert!(get(&s3, BUCKET, key).await == plain, "{key}");
    }
    assert_replaced(&s3, "replaced").await;
}

#[tokio::test]
async fn v1_objects_of_every_shape_and_size_convert_byte_for_byte() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let ring = keyring(&gw, SegmentSize::DEFAULT);
    let cases = [
        ("empty", v1_single(&ring, "empty", Vec::new())),
        ("one-byte", v1_single(&ring, "one-byte", random_bytes(1))),
        (
            "one-segment",
            v1_single(&ring, "one-segment", random_bytes(64 * 1024)),
        ),
        (
            "aligned",
            v1_multipart(
                &ring,
                "aligned",
                &[random_bytes(5 * MIB), random_bytes(MIB + 3)],
            ),
        ),
        (
            "unaligned",
            v1_multipart(
                &ring,
                "unaligned",
                &[random_bytes(100_000), random_bytes(70_001), random_bytes(5)],
            ),
        ),
        (
            "empty-last-part",
            v1_multipart(
                &ring,
                "empty-last-part",
                &[random_bytes(100_001), Vec::new()],
            ),
        ),
    ];
    for (key, v1) in &cases {
        store(&gw, key, &v1.stored, &v1.metadata).await;
        assert!(get(&s3, BUCKET, key).await == v1.plain, "{key}: v1 read");
        let to = format!("{key}-v2");
        copy_replace(&s3, key, &to)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e:?}"));
        assert_eq!(stored_version(&gw, &to).await, 2, "{key}");
        assert!(get(&s3, BUCKET, &to).await == v1.plain, "{key}: v2 read");
        let stored = gw.backend_head(BUCKET, &to).await.content_length().unwrap();
        assert_eq!(
            stored as u64,
            stored_len(v1.plain.len() as u64, SegmentSize::DEFAULT),
            "{key}: a single-part object"
        );
    }
    let plains: Vec<&[u8]> = cases.iter().map(|(_, v)| v.plain.as_slice()).collect();
    gw.assert_no_plaintext_in_backend(&plains);
}

/// `v1` with one byte flipped at `at` in its stored body.
fn tampered(v1: &V1, at: usize) -> Vec<u8> {
    let mut bytes = v1.stored.clone();
    bytes[at] ^= 0x20;
    bytes
}

#[tokio::test]
async fn a_tampered_v1_source_fails_the_conversion_and_leaves_the_destination_as_it_was() {
    let gw = admin_gateway(Default::default());
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let ring = keyring(&gw, SegmentSize::DEFAULT);
    let single = v1_single(&ring, "bad", random_bytes(3 * MIB));
    let unaligned = v1_multipart(&ring, "bad", &[random_bytes(100_001), random_bytes(9)]);
    let with = |v1: &V1, name: &str, flip: fn(&mut String)| {
        let mut metadata = v1.metadata.clone();
        flip(metadata.get_mut(name).unwrap());
        metadata
    };
    // A stored byte in the first segment; in the last, after every other segment went to
    // the backend; the layout record; the checksum record.
    let cases = [
        (
            "first segment",
            &single,
            tampered(&single, 10),
            single.metadata.clone(),
        ),
        (
            "last segment",
            &single,
            tampered(&single, single.stored.len() - 40),
            single.metadata.clone(),
        ),
        (
            "layout record",
            &unaligned,
            unaligned.stored.clone(),
            with(&unaligned, objmeta::LAYOUT_METADATA_NAME, flip_char),
        ),
        (
            "checksum record",
            &single,
            single.stored.clone(),
            with(&single, objmeta::CHECKSUM_METADATA_NAME, flip_char),
        ),
    ];
    let failed = || Scrape::take(gw.admin_addr()).sum(CONVERSIONS, &[("result", "failed")]);
    let failed_before = failed();
    for (what, v1, bytes, metadata) in &cases {
        store(&gw, "bad", bytes, metadata).await;
        if what.ends_with("segment") {
            assert_eq!(get_status(&s3, "bad").await.0, 500, "{what}: GET");
        }
        assert_conversion_refused(&gw, &s3, what).await;
        // Put back as it was, it converts: the tampering was the only fault.
        store(&gw, "bad", &v1.stored, &v1.metadata).await;
        copy_replace(&s3, "bad", "good").await.unwrap();
        assert!(get(&s3, BUCKET, "good").await == v1.plain, "{what}");
    }
    // At least: the metrics are the test process's, other tests' conversions count too.
    assert!(failed() - failed_before >= 12.0);
}

/// Changes one base64url character of a metadata value (to another base64url one).
fn flip_char(value: &mut String) {
    let mut bytes = std::mem::take(value).into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    *value = String::from_utf8(bytes).unwrap();
}

/// The conversion of the tampered `bad` fails with a GET's integrity error, counted, and
/// writes nothing: an object at the destination stays as it was, none is created, and
/// the source stays version 1.
async fn assert_conversion_refused(gw: &TestGateway, s3: &Client, what: &str) {
    let old = random_bytes(1000);
    put(s3, BUCKET, "kept", old.clone()).await;
    let kept_etag = backend_etag(gw, "kept").await;
    let failures = Scrape::take(gw.admin_addr()).sum(INTEGRITY_FAILURES, &[]);
    let e = copy_replace(s3, "bad", "kept").await.unwrap_err();
    assert_eq!(status_code(&e), (500, "InternalError".to_owned()), "{what}");
    let counted = Scrape::take(gw.admin_addr()).sum(INTEGRITY_FAILURES, &[]);
    assert!(counted > failures, "{what}");
    assert!(get(s3, BUCKET, "kept").await == old, "{what}: overwritten");
    assert_eq!(backend_etag(gw, "kept").await, kept_etag, "{what}");
    assert!(copy_replace(s3, "bad", "absent").await.is_err());
    assert!(!exists(s3, BUCKET, "absent").await, "{what}");
    assert!(copy_replace(s3, "bad", "bad").await.is_err());
    assert_eq!(stored_version(gw, "bad").await, 1, "{what}");
}

/// The backend's ETag of `key`.
async fn backend_etag(gw: &TestGateway, key: &str) -> Option<String> {
    gw.backend_head(BUCKET, key)
        .await
        .e_tag()
        .map(str::to_owned)
}

/// The status and code of a GET of `key` that must fail (at once, or with the body cut).
async fn get_status(s3: &Client, key: &str) -> (u16, String) {
    match s3.get_object().bucket(BUCKET).key(key).send().await {
        Err(e) => status_code(&e),
        Ok(out) => {
            assert!(out.body.collect().await.is_err(), "{key}: read whole");
            (500, "InternalError".to_owned())
        }
    }
}

/// A kept-alive conversion (`limits.complete_keepalive_after_secs = 0`): `200 OK` at once,
/// then the CopyObjectResult, or for a tampered source an error document, and the
/// destination unchanged.
#[tokio::test]
async fn a_kept_alive_conversion_answers_200_then_its_result_or_its_error() {
    let gw = admin_gateway(twofold::limits::Limits {
        complete_keepalive_after: std::time::Duration::ZERO,
        ..Default::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let v1 = v1_single(
        &keyring(&gw, SegmentSize::DEFAULT),
        "old",
        random_bytes(MIB + 1),
    );
    store(&gw, "old", &v1.stored, &v1.metadata).await;
    let copy = |to: &'static str| RawRequest {
        method: "PUT",
        path: to,
        query: None,
        host: None,
        headers: &[
            ("x-amz-copy-source", "/v1-copy/old"),
            ("x-amz-metadata-directive", "REPLACE"),
            ("content-type", "text/kept-alive"),
            ("connection", "close"),
        ],
        body: b"",
    };
    let resp = gw.send_signed(gw.admin(), &copy("/v1-copy/new"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    let body = String::from_utf8_lossy(&resp.body);
    assert!(body.contains("<CopyObjectResult"), "{body}");
    assert!(body.contains("</CopyObjectResult>"), "{body}");
    assert!(!body.contains("<Error>"), "{body}");
    assert_eq!(stored_version(&gw, "new").await, 2);
    assert!(get(&s3, BUCKET, "new").await == v1.plain);
    // The SDK reads such an answer as any other.
    copy_replace(&s3, "old", "sdk").await.unwrap();
    assert!(get(&s3, BUCKET, "sdk").await == v1.plain);

    store(
        &gw,
        "old",
        &tampered(&v1, v1.stored.len() - 40),
        &v1.metadata,
    )
    .await;
    let old = random_bytes(1000);
    put(&s3, BUCKET, "kept", old.clone()).await;
    let resp = gw.send_signed(gw.admin(), &copy("/v1-copy/kept"));
    assert_eq!(resp.status, 200);
    let body = String::from_utf8_lossy(&resp.body);
    assert!(body.contains("<Error><Code>InternalError</Code>"), "{body}");
    assert!(!body.contains("<CopyObjectResult"), "{body}");
    assert!(get(&s3, BUCKET, "kept").await == old);
    // The SDK sees the error in the 200's body.
    assert!(copy_replace(&s3, "old", "kept").await.is_err());
    assert!(get(&s3, BUCKET, "kept").await == old);
}

#[tokio::test]
async fn copy_source_conditions_and_grants_hold_for_a_conversion() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let v1 = v1_single(
        &keyring(&gw, SegmentSize::DEFAULT),
        "old",
        random_bytes(70_000),
    );
    store(&gw, "old", &v1.stored, &v1.metadata).await;
    let etag = s3
        .head_object()
        .bucket(BUCKET)
        .key("old")
        .send()
        .await
        .unwrap();
    let etag = etag.e_tag().unwrap().to_owned();
    let modified = gw.backend_head(BUCKET, "old").await;
    let modified = modified.last_modified().unwrap().secs();
    let date = |secs: i64| aws_sdk_s3::primitives::DateTime::from_secs(secs);
    let base = || {
        s3.copy_object()
            .bucket(BUCKET)
            .key("new")
            .copy_source(format!("{BUCKET}/old"))
            .metadata_directive(MetadataDirective::Replace)
    };
    let refused = [
        base().copy_source_if_match("\"0123-0\"").send().await,
        base().copy_source_if_none_match(&etag).send().await,
        base()
            .copy_source_if_unmodified_since(date(modified - 3600))
            .send()
            .await,
        base()
            .copy_source_if_modified_since(date(modified + 3600))
            .send()
            .await,
    ];
    for (i, r) in refused.into_iter().enumerate() {
        let e = r.unwrap_err();
        assert_eq!(status_code(&e).0, 412, "condition {i}: {e:?}");
    }
    assert!(!exists(&s3, BUCKET, "new").await);
    base().copy_source_if_match(&etag).send().await.unwrap();
    base()
        .copy_source_if_unmodified_since(date(modified + 3600))
        .copy_source_if_modified_since(date(modified - 3600))
        .send()
        .await
        .unwrap();
    assert!(get(&s3, BUCKET, "new").await == v1.plain);

    // A credential that may not read the source's bucket copies nothing from it.
    let limited = gw.client_as(gw.limited());
    let e = limited
        .copy_object()
        .bucket(twofold_tests::gateway::LIMITED_BUCKET)
        .key("stolen")
        .copy_source(format!("{BUCKET}/old"))
        .metadata_directive(MetadataDirective::Replace)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 403);
}

#[tokio::test]
async fn a_version_of_a_v1_object_named_by_its_version_id_converts() {
    let gw = TestGateway::start();
    if gw.skip_on(&[BackendKind::S3sFs], "s3s-fs has no versioning") {
        return;
    }
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    s3.put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let ring = keyring(&gw, SegmentSize::DEFAULT);
    let first = v1_single(&ring, "old", random_bytes(100_000));
    let second = v1_single(&ring, "old", random_bytes(50_000));
    let first_id = store(&gw, "old", &first.stored, &first.metadata)
        .await
        .unwrap();
    store(&gw, "old", &second.stored, &second.metadata).await;
    let out = s3
        .copy_object()
        .bucket(BUCKET)
        .key("new")
        .copy_source(format!("{BUCKET}/old?versionId={first_id}"))
        .metadata_directive(MetadataDirective::Replace)
        .send()
        .await
        .unwrap();
    assert_eq!(out.copy_source_version_id(), Some(first_id.as_str()));
    assert!(out.version_id().is_some());
    assert_eq!(stored_version(&gw, "new").await, 2);
    assert!(get(&s3, BUCKET, "new").await == first.plain);
    // Onto itself: the current version converts, the earlier ones stay as they were.
    copy_replace(&s3, "old", "old").await.unwrap();
    assert_eq!(stored_version(&gw, "old").await, 2);
    assert!(get(&s3, BUCKET, "old").await == second.plain);
    let kept = s3
        .get_object()
        .bucket(BUCKET)
        .key("old")
        .version_id(&first_id)
        .send()
        .await
        .unwrap();
    assert!(kept.body.collect().await.unwrap().to_vec() == first.plain);
}

#[tokio::test]
async fn a_conversion_copies_or_replaces_the_tags_as_the_tagging_directive_says() {
    let gw = TestGateway::start();
    if gw.skip_on(&[BackendKind::S3sFs], "s3s-fs keeps no object tags") {
        return;
    }
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let v1 = v1_single(
        &keyring(&gw, SegmentSize::DEFAULT),
        "old",
        random_bytes(10_000),
    );
    gw.backend_client()
        .put_object()
        .bucket(BUCKET)
        .key("old")
        .set_metadata(Some(v1.metadata.clone()))
        .tagging("team=blue&stage=old")
        .body(v1.stored.clone().into())
        .send()
        .await
        .unwrap();
    copy_replace(&s3, "old", "copied-tags").await.unwrap();
    s3.copy_object()
        .bucket(BUCKET)
        .key("replaced-tags")
        .copy_source(format!("{BUCKET}/old"))
        .metadata_directive(MetadataDirective::Replace)
        .tagging_directive(TaggingDirective::Replace)
        .tagging("stage=new")
        .send()
        .await
        .unwrap();
    let tags = |key: &'static str| {
        let s3 = s3.clone();
        async move {
            let out = s3
                .get_object_tagging()
                .bucket(BUCKET)
                .key(key)
                .send()
                .await
                .unwrap();
            let mut tags: Vec<(String, String)> = out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect();
            tags.sort();
            tags
        }
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        tags("copied-tags").await,
        [pair("stage", "old"), pair("team", "blue")]
    );
    assert_eq!(tags("replaced-tags").await, [pair("stage", "new")]);
    assert_eq!(stored_version(&gw, "replaced-tags").await, 2);
}

/// Not a check, a timing: a 64 MiB version 1 object converted through the gateway, beside
/// the reads and writes it is made of. Run it on a release build:
/// `cargo test --release -p twofold-tests --test it -- --ignored --nocapture gateway_copy_v1::`.
#[tokio::test]
#[ignore = "a timing, not a check"]
async fn time_the_conversion_of_a_64_mib_object() {
    const RUNS: usize = 5;
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let v1 = v1_single(
        &keyring(&gw, SegmentSize::DEFAULT),
        "old",
        random_bytes(64 * MIB),
    );
    store(&gw, "old", &v1.stored, &v1.metadata).await;
    let mut times: HashMap<&str, Vec<f64>> = HashMap::new();
    for _ in 0..RUNS {
        let t = std::time::Instant::now();
        assert!(get(&s3, BUCKET, "old").await.len() == v1.plain.len());
        times
            .entry("GET of the v1 object")
            .or_default()
            .push(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        put(&s3, BUCKET, "put", v1.plain.clone()).await;
        times
            .entry("PUT of its plaintext")
            .or_default()
            .push(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        s3.copy_object()
            .bucket(BUCKET)
            .key("copied")
            .copy_source(format!("{BUCKET}/old"))
            .send()
            .await
            .unwrap();
        times
            .entry("server-side copy (COPY)")
            .or_default()
            .push(t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        copy_replace(&s3, "old", "new").await.unwrap();
        times
            .entry("conversion (REPLACE)")
            .or_default()
            .push(t.elapsed().as_secs_f64());
    }
    let mut rows: Vec<_> = times.into_iter().collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    for (what, mut t) in rows {
        t.sort_by(f64::total_cmp);
        let median = t[RUNS / 2];
        let rate = 64.0 / 1024.0 / median;
        println!("{what:28} median {median:.3} s ({rate:.2} GiB/s), runs {t:.3?}");
    }
}
