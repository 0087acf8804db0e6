//! What the gateway gives away and what it claims: error answers carry the S3 code, a
//! generic message and the request id, never a custodian's or token's label nor the
//! backend's socket errors; `/readyz` probes in a burst cost a bounded number of HSM and
//! backend calls; a pass-through object is never labelled as encrypted, and each read of
//! one is counted.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::envelope::aead::Layer;
use twofold::keys::CustodianSpec;
use twofold::sigv4::PayloadMode;
use twofold_tests::gateway::{TestGateway, create_bucket, put};
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
    let mut header = twofold::objmeta::decode(&meta[twofold::objmeta::METADATA_NAME]).unwrap();
    header.inner.kek_id = kek_id.to_owned();
    meta.insert(
        twofold::objmeta::METADATA_NAME.to_owned(),
        twofold::objmeta::encode(&header),
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
