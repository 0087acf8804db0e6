//! A header that names a key-encryption key the gateway is not configured with is refused
//! before any custodian call: in an upload id by the id's MAC, in an object's stored
//! metadata by the custodian's list of configured KEKs (counted in `/metrics`,
//! `twofold_kek_refused_total`). No label probing of the token, no custodian load from
//! forged headers. In a process of its own (`crate::ran_in_own_process`): the metrics
//! recorder is per process.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use twofold::envelope::objmeta;
use twofold_tests::admin::Scrape;
use twofold_tests::gateway::{
    Options, TestGateway, create_bucket, create_upload, put, status_code, upload_part,
};
use twofold_tests::random_bytes;

const REFUSED: &str = "twofold_kek_refused_total";
const CUSTODIAN_OPS: &str = "twofold_hsm_operations_total";

/// Scrapes until `name` has grown by `by` since `before` (the count moves after the answer
/// is written), or 10 s have passed.
fn scrape_when(admin: std::net::SocketAddr, before: &Scrape, name: &str, by: f64) -> Scrape {
    let started = Instant::now();
    loop {
        let s = Scrape::take(admin);
        if s.sum(name, &[]) - before.sum(name, &[]) >= by
            || started.elapsed() > Duration::from_secs(10)
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn headers_naming_an_unconfigured_kek_are_refused_without_a_custodian_call() {
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start_with(Options {
        admin_listener: true,
        cores: 1,
        ..Options::default()
    });
    let admin = gw.admin_addr();
    let s3 = gw.client();
    create_bucket(&s3, "kek").await;

    // An upload id whose header names another KEK: its MAC no longer holds, so it is
    // refused before anything of the header is used, custodians untouched.
    let id = create_upload(&s3, "kek", "upload").await;
    let mut fields: Vec<String> = id.split('.').map(str::to_owned).collect();
    assert_eq!(fields.len(), 5, "{id}");
    let mut header = objmeta::decode(&fields[2]).unwrap();
    header.outer.kek_id = "no-such-key".into();
    fields[2] = objmeta::encode(&header);
    let forged = fields.join(".");
    let before = Scrape::take(admin);
    let e = upload_part(&s3, ("kek", "upload", &forged), 1, random_bytes(1000))
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (404, "NoSuchUpload".to_owned()), "{e:?}");
    let after = scrape_when(admin, &before, "twofold_requests_total", 1.0);
    assert_eq!(
        after.sum(CUSTODIAN_OPS, &[]),
        before.sum(CUSTODIAN_OPS, &[])
    );
    // The id the gateway issued still works.
    upload_part(&s3, ("kek", "upload", &id), 1, random_bytes(1000))
        .await
        .unwrap();

    // An object whose stored header was rewritten by the backend to name another KEK: the
    // GET fails with a generic 500 (the label is not echoed), refused before the custodian.
    put(&s3, "kek", "object", random_bytes(5000)).await;
    let backend = gw.backend_client();
    let head = backend
        .head_object()
        .bucket("kek")
        .key("object")
        .send()
        .await
        .unwrap();
    let stored = head.metadata().unwrap().get("twofold").unwrap().clone();
    let mut header = objmeta::decode(&stored).unwrap();
    header.outer.kek_id = "label-probe".into();
    backend
        .copy_object()
        .bucket("kek")
        .key("object")
        .copy_source("kek/object")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("twofold", objmeta::encode(&header))
        .send()
        .await
        .unwrap();
    let before = Scrape::take(admin);
    let e = s3
        .get_object()
        .bucket("kek")
        .key("object")
        .send()
        .await
        .unwrap_err();
    let (status, code) = status_code(&e);
    assert_eq!((status, code.as_str()), (500, "InternalError"), "{e:?}");
    assert!(!format!("{e:?}").contains("label-probe"), "{e:?}");
    let after = scrape_when(admin, &before, REFUSED, 1.0);
    assert_eq!(after.sum(REFUSED, &[]) - before.sum(REFUSED, &[]), 1.0);
    assert_eq!(
        after.sum(CUSTODIAN_OPS, &[]),
        before.sum(CUSTODIAN_OPS, &[])
    );
}
