//! What the gateway gives away and what it claims: error answers carry the S3 code, a
//! generic message and the request id, never a custodian's or token's label nor the
//! backend's socket errors; `/readyz` probes in a burst cost a bounded number of HSM and
//! backend calls; a pass-through object is never labelled as encrypted, and each read of
//! one is counted.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::config::UnencryptedObjects;
use twofold::envelope::aead::Layer;
use twofold::keys::CustodianSpec;
use twofold::sigv4::PayloadMode;
use twofold_tests::admin::Scrape;
use twofold_tests::gateway::{Options, TestGateway, create_bucket, put};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp::{self, Response, xml_value};

const BUCKET: &str = "hygiene";

/// A signed raw request of `key` (GET, HEAD...).
fn raw(gw: &TestGateway, method: &str, key: &str) -> Response {
    let path = format!("/{BUCKET}/{key}");
    let (headers, _) = gw.sign(gw.admin(), method, &path, None, &[], PayloadMode::Unsigned);
    rawhttp::exchange(
        gw.addr(),
        &rawhttp::head(method, &path, &headers),
        method == "HEAD",
    )
}

/// Panics unless `resp` is a server error document whose RequestId is the response's
/// `x-amz-request-id`, and none of `secrets` appears in it.
#[track_caller]
fn assert_server_error_without(resp: &Response, secrets: &[&str]) {
    assert!(
        (500..600).contains(&resp.status),
        "status {}: {}",
        resp.status,
        resp.text()
    );
    resp.assert_is_s3_error_document();
    let text = resp.text();
    let rid = resp.header("x-amz-request-id").unwrap();
    assert!(!rid.is_empty());
    assert_eq!(xml_value(&text, "RequestId"), Some(rid), "{text}");
    for secret in secrets {
        assert!(
            !text.to_lowercase().contains(&secret.to_lowercase()),
            "{secret:?} reached the client: {text}"
        );
    }
}

fn token_label(gw: &TestGateway, layer: Layer) -> String {
    match gw.custody().spec(layer) {
        CustodianSpec::Pkcs11 { token_label, .. } => token_label.clone(),
        CustodianSpec::KeyFile { key_id, .. } => key_id.clone(),
    }
}

/// Rewrites the backend object's header so that its inner layer names KEK `kek_id`.
async fn forge_kek_label(gw: &TestGateway, key: &str, kek_id: &str) {
    let backend = gw.backend_client();
    let stored = backend
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let mut meta = stored.metadata().cloned().unwrap_or_default();
    let body = stored.body.collect().await.unwrap().into_bytes();
    let mut header =
        twofold::envelope::objmeta::decode(&meta[twofold::envelope::objmeta::METADATA_NAME])
            .unwrap();
    header.inner.kek_id = kek_id.to_owned();
    meta.insert(
        twofold::envelope::objmeta::METADATA_NAME.to_owned(),
        twofold::envelope::objmeta::encode(&header),
    );
    backend
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .set_metadata(Some(meta))
        .body(body.into())
        .send()
        .await
        .unwrap();
}

/// The answer to an object whose header names a KEK the custodian does not have used to be
/// `500 … no key "no-such-key" on PKCS#11 token "…"`: key and token labels in the
/// client's hands.
#[tokio::test]
async fn unknown_kek_label_in_a_forged_header_does_not_reach_the_client() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    put(&s3, BUCKET, "forged", random_bytes(5000)).await;
    forge_kek_label(&gw, "forged", "no-such-key").await;
    let inner = token_label(&gw, Layer::Inner);
    let outer = token_label(&gw, Layer::Outer);
    let resp = raw(&gw, "GET", "forged");
    assert_server_error_without(
        &resp,
        &[
            "no-such-key",
            &inner,
            &outer,
            "pkcs#11",
            "token",
            "custodian",
            "kek",
        ],
    );
}

/// With the backend gone, the answer used to carry the socket error (`Storage backend: …
/// Connection refused (os error 111)`).
#[tokio::test]
async fn backend_connection_errors_do_not_reach_the_client() {
    let mut gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    put(&s3, BUCKET, "k", random_bytes(5000)).await;
    let backend = gw.backend_addr();
    gw.stop_backend();
    let resp = raw(&gw, "GET", "k");
    assert_server_error_without(
        &resp,
        &[
            "refused",
            "os error",
            "connection",
            "reset",
            "io error",
            "tls",
            &backend.to_string(),
            &backend.port().to_string(),
        ],
    );
}

fn passthrough_reads(scrape: &Scrape, operation: &str) -> f64 {
    scrape.sum(
        "twofold_passthrough_reads_total",
        &[("operation", operation)],
    )
}

/// Under `unencrypted_objects = "pass-through"`, a plaintext object was answered with
/// `x-amz-server-side-encryption: aws:kms:dsse`, and its reads left no trace. It is now
/// never labelled as encrypted (GET, ranged GET, HEAD, CopyObject), and every read of it
/// is counted by operation.
#[tokio::test]
async fn pass_through_objects_are_not_labelled_encrypted_and_each_read_is_counted() {
    // In a process of its own: it counts the process's pass-through reads exactly, and
    // other files' tests (gateway_faults) read pass-through objects too.
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start_with(Options {
        unencrypted_objects: UnencryptedObjects::PassThrough,
        admin_listener: true,
        ..Options::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(10_000);
    gw.backend_client()
        .put_object()
        .bucket(BUCKET)
        .key("legacy")
        .body(plain.clone().into())
        .send()
        .await
        .unwrap();
    let admin = gw.admin_addr();

    let before = Scrape::take(admin);
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("legacy")
        .send()
        .await
        .unwrap();
    assert_eq!(got.server_side_encryption(), None, "GET");
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &plain[..]
    );
    let ranged = s3
        .get_object()
        .bucket(BUCKET)
        .key("legacy")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.server_side_encryption(), None, "ranged GET");
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("legacy")
        .send()
        .await
        .unwrap();
    assert_eq!(head.server_side_encryption(), None, "HEAD");
    let raw_head = raw(&gw, "HEAD", "legacy");
    assert_eq!(raw_head.status, 200);
    assert_eq!(raw_head.header("x-amz-server-side-encryption"), None);
    let copy = s3
        .copy_object()
        .bucket(BUCKET)
        .key("legacy-copy")
        .copy_source(format!("{BUCKET}/legacy"))
        .send()
        .await
        .unwrap();
    assert_eq!(copy.server_side_encryption(), None, "CopyObject");
    let after = Scrape::take(admin);
    for (operation, reads) in [("GetObject", 2.0), ("HeadObject", 2.0), ("CopyObject", 1.0)] {
        assert_eq!(
            passthrough_reads(&after, operation) - passthrough_reads(&before, operation),
            reads,
            "{operation}"
        );
    }

    // Objects written through the gateway still say they are encrypted.
    put(&s3, BUCKET, "sealed", random_bytes(100)).await;
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("sealed")
        .send()
        .await
        .unwrap();
    assert!(head.server_side_encryption().is_some());
    let unchanged = Scrape::take(admin);
    assert_eq!(
        passthrough_reads(&unchanged, "HeadObject"),
        passthrough_reads(&after, "HeadObject")
    );
}
