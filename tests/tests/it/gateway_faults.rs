//! What the gateway does when something other than the client is wrong: the backend down
//! (an S3 error, 502 or 503, quickly, and service again once it is back); stored bytes
//! altered, truncated or swapped between objects (the read fails, and no byte of a segment
//! that did not verify ever reaches the client); objects in the backend that Twofold did
//! not write (refused clearly by default, served as they are under `pass-through`); and
//! virtual-hosted-style addressing.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use twofold::config::UnencryptedObjects;
use twofold::envelope::layout::SegmentSize;
use twofold::sigv4::PayloadMode;
use twofold_tests::backend::Capability;
use twofold_tests::gateway::{
    ConnectTo, Options, TestGateway, create_bucket, get, put, sign_for, status_code,
};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp::{self, Response};

const BUCKET: &str = "faults";
/// Stored bytes of one full 64 KiB segment.
const STORED_SEGMENT: usize = SegmentSize::DEFAULT.stored_bytes() as usize;
/// A bound on any answer the gateway owes when the backend is gone.
const PROMPT: Duration = Duration::from_secs(15);

/// A signed raw GET (or HEAD) of `key` with extra signed headers.
fn raw_get(gw: &TestGateway, method: &str, key: &str, extra: &[(&str, &str)]) -> Response {
    let path = format!("/{BUCKET}/{key}");
    let (headers, _) = gw.sign(
        gw.admin(),
        method,
        &path,
        None,
        extra,
        PayloadMode::Unsigned,
    );
    rawhttp::exchange(
        gw.addr(),
        &rawhttp::head(method, &path, &headers),
        method == "HEAD",
    )
}

fn flip_stored_byte(gw: &TestGateway, key: &str, offset: usize) {
    let mut bytes = gw.stored(BUCKET, key).unwrap();
    bytes[offset] ^= 0x40;
    gw.overwrite_stored(BUCKET, key, &bytes);
}

#[tokio::test]
async fn backend_down_is_a_prompt_s3_error_and_service_resumes() {
    let mut gw = TestGateway::start();
    if gw.skip_unless(Capability::StopStart, "stops and restarts the backend") {
        return;
    }
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(100_000);
    put(&s3, BUCKET, "k", plain.clone()).await;
    // Warm the gateway's backend connection pool, so stale pooled connections are tried.
    for _ in 0..4 {
        get(&s3, BUCKET, "k").await;
    }
    gw.stop_backend();

    let bad_gateway = |what: &str, status: u16| {
        assert!(
            status == 502 || status == 503,
            "{what} with the backend down: {status}"
        );
    };
    let e = tokio::time::timeout(
        PROMPT,
        s3.put_object()
            .bucket(BUCKET)
            .key("new")
            .body(random_bytes(70_000).into())
            .send(),
    )
    .await
    .expect("PUT hung with the backend down")
    .unwrap_err();
    bad_gateway("PUT", status_code(&e).0);
    let e = tokio::time::timeout(PROMPT, s3.get_object().bucket(BUCKET).key("k").send())
        .await
        .expect("GET hung with the backend down")
        .unwrap_err();
    bad_gateway("GET", status_code(&e).0);
    let e = tokio::time::timeout(
        PROMPT,
        s3.get_object()
            .bucket(BUCKET)
            .key("k")
            .range("bytes=5-10")
            .send(),
    )
    .await
    .expect("ranged GET hung with the backend down")
    .unwrap_err();
    bad_gateway("ranged GET", status_code(&e).0);
    let e = tokio::time::timeout(PROMPT, s3.head_object().bucket(BUCKET).key("k").send())
        .await
        .expect("HEAD hung with the backend down")
        .unwrap_err();
    bad_gateway("HEAD", status_code(&e).0);
    let e = tokio::time::timeout(PROMPT, s3.list_objects_v2().bucket(BUCKET).send())
        .await
        .expect("LIST hung with the backend down")
        .unwrap_err();
    bad_gateway("ListObjectsV2", status_code(&e).0);
    // Raw, to see the error document itself.
    let resp = raw_get(&gw, "GET", "k", &[]);
    bad_gateway("raw GET", resp.status);
    resp.assert_is_s3_error_document();

    gw.restart_backend();
    // The first requests may meet connections the gateway still holds to the old backend;
    // within a few tries it must be serving again.
    let mut ok = false;
    for _ in 0..5 {
        if let Ok(out) = s3.get_object().bucket(BUCKET).key("k").send().await {
            assert_eq!(out.body.collect().await.unwrap().to_vec(), plain);
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        ok,
        "the gateway does not serve again after the backend came back"
    );
    put(&s3, BUCKET, "after", random_bytes(10)).await;
}

#[tokio::test]
async fn a_flipped_byte_in_the_first_segment_fails_before_any_byte() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(3 * 65_536 + 5);
    put(&s3, BUCKET, "t", plain.clone()).await;
    flip_stored_byte(&gw, "t", 100);
    let resp = raw_get(&gw, "GET", "t", &[]);
    resp.assert_s3_error(500, "InternalError");
    // Through the SDK too.
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("t")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 500, "{e:?}");
    let resp = raw_get(&gw, "GET", "t", &[("range", "bytes=0-9")]);
    assert_eq!(
        resp.status,
        500,
        "ranged GET over the damage: {}",
        resp.text()
    );
    // HEAD does not read the body: it still answers, with the plaintext size.
    let resp = raw_get(&gw, "HEAD", "t", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-length"),
        Some(plain.len().to_string().as_str())
    );
}

#[tokio::test]
async fn a_flipped_byte_in_a_later_segment_cuts_the_response() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(3 * 65_536 + 5);
    for (key, segment) in [("mid", 2usize), ("last", 3)] {
        put(&s3, BUCKET, key, plain.clone()).await;
        flip_stored_byte(&gw, key, segment * STORED_SEGMENT + 7);
        let resp = raw_get(&gw, "GET", key, &[]);
        if resp.status == 200 {
            // The head went out after segment 0 verified: the body must then be cut short,
            // and hold only plaintext of segments that verified.
            assert!(resp.truncated, "{key}: a complete-looking response");
            assert!(
                resp.body.len() <= segment * 65_536,
                "{key}: {} bytes released, past the damaged segment {segment}",
                resp.body.len()
            );
            assert!(resp.body == plain[..resp.body.len()], "{key}: wrong bytes");
        } else {
            resp.assert_s3_error(500, "InternalError");
        }
        // The SDK sees a failure, never the whole object.
        let result = match s3.get_object().bucket(BUCKET).key(key).send().await {
            Ok(out) => out.body.collect().await.map(|b| b.to_vec()),
            Err(e) => {
                assert_eq!(status_code(&e).0, 500);
                continue;
            }
        };
        assert!(
            result.is_err(),
            "{key}: the SDK got a whole body from a damaged object"
        );
        // A range that stays clear of the damage still reads.
        let resp = raw_get(&gw, "GET", key, &[("range", "bytes=0-99")]);
        assert_eq!(resp.status, 206, "{key}: {}", resp.text());
        assert!(resp.body == plain[..100]);
    }
}

#[tokio::test]
async fn a_truncated_stored_object_never_reads_as_complete() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(3 * 65_536 + 5);
    for (key, cut) in [
        ("one-byte", 1usize),
        ("final-segment", 5 + 32),
        ("segment-and-final", 5 + 32 + STORED_SEGMENT),
    ] {
        put(&s3, BUCKET, key, plain.clone()).await;
        let stored = gw.stored(BUCKET, key).unwrap();
        gw.overwrite_stored(BUCKET, key, &stored[..stored.len() - cut]);
        let resp = raw_get(&gw, "GET", key, &[]);
        if resp.status == 200 {
            assert!(resp.truncated, "{key}: a complete-looking response");
            assert!(resp.body == plain[..resp.body.len()], "{key}: wrong bytes");
        } else {
            assert_eq!(resp.status, 500, "{key}: {}", resp.text());
            resp.assert_is_s3_error_document();
        }
    }
}

#[tokio::test]
async fn an_object_moved_under_another_name_does_not_open() {
    // Stored bytes and metadata of one object put, by someone with backend access, under
    // another key: the keys are bound to bucket and key, so it must not open.
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let a = random_bytes(70_000);
    let b = random_bytes(70_000);
    put(&s3, BUCKET, "a", a.clone()).await;
    put(&s3, BUCKET, "b", b.clone()).await;
    // Copy a's stored bytes and its metadata over b's, straight into the backend.
    let backend = gw.backend_client();
    let src = backend
        .get_object()
        .bucket(BUCKET)
        .key("a")
        .send()
        .await
        .unwrap();
    let meta = src.metadata().cloned().unwrap_or_default();
    let body = src.body.collect().await.unwrap().to_vec();
    assert!(meta.contains_key("twofold"), "metadata of a: {meta:?}");
    backend
        .put_object()
        .bucket(BUCKET)
        .key("b")
        .set_metadata(Some(meta))
        .body(body.into())
        .send()
        .await
        .unwrap();
    let resp = raw_get(&gw, "GET", "b", &[]);
    assert_eq!(resp.status, 500, "{}", resp.text());
    resp.assert_is_s3_error_document();
    assert!(!resp.body.windows(16).any(|w| a.windows(16).any(|x| x == w)));
    // a itself still reads.
    assert_eq!(get(&s3, BUCKET, "a").await, a);
}

#[tokio::test]
async fn unencrypted_backend_objects_are_refused_by_default() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = b"written straight to the backend, not through Twofold".to_vec();
    gw.backend_client()
        .put_object()
        .bucket(BUCKET)
        .key("legacy.txt")
        .body(plain.clone().into())
        .send()
        .await
        .unwrap();
    let resp = raw_get(&gw, "GET", "legacy.txt", &[]);
    resp.assert_s3_error(403, "InvalidObjectState");
    assert!(
        resp.text().contains("not written through Twofold"),
        "the error says why: {}",
        resp.text()
    );
    assert!(!resp.text().contains("written straight"));
    let e = s3
        .head_object()
        .bucket(BUCKET)
        .key("legacy.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 403);
    let resp = raw_get(&gw, "GET", "legacy.txt", &[("range", "bytes=0-4")]);
    resp.assert_s3_error(403, "InvalidObjectState");
}

#[tokio::test]
async fn unencrypted_backend_objects_pass_through_when_allowed() {
    let gw = TestGateway::start_with(Options {
        unencrypted_objects: UnencryptedObjects::PassThrough,
        ..Options::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(100_000);
    gw.backend_client()
        .put_object()
        .bucket(BUCKET)
        .key("legacy.bin")
        .content_type("application/x-legacy")
        .body(plain.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, BUCKET, "legacy.bin").await, plain);
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("legacy.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(100_000));
    assert_eq!(head.content_type(), Some("application/x-legacy"));
    // Objects written through the gateway are still encrypted beside it.
    let mine = random_bytes(50_000);
    put(&s3, BUCKET, "new.bin", mine.clone()).await;
    assert_eq!(get(&s3, BUCKET, "new.bin").await, mine);
    gw.assert_no_plaintext_in_backend(&[&mine]);
    // A range of a pass-through object is that range.
    let r = s3
        .get_object()
        .bucket(BUCKET)
        .key("legacy.bin")
        .range("bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.content_range(),
        Some("bytes 1000-1999/100000"),
        "ranged GET of a pass-through object"
    );
    let body = r.body.collect().await.unwrap().to_vec();
    assert!(
        body == plain[1000..2000],
        "ranged GET of a pass-through object: {} bytes back",
        body.len()
    );
}

#[tokio::test]
async fn virtual_hosted_style_raw() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, "vhost").await;
    let host = format!("vhost.localhost:{}", gw.port());
    let plain = random_bytes(70_000);
    let (mut headers, _) = sign_for(
        &host,
        gw.admin(),
        "PUT",
        "/dir/key.bin",
        None,
        &[],
        PayloadMode::Unsigned,
    );
    headers.push(("content-length".into(), plain.len().to_string()));
    let mut bytes = rawhttp::head("PUT", "/dir/key.bin", &headers);
    bytes.extend_from_slice(&plain);
    let resp = rawhttp::exchange(gw.addr(), &bytes, false);
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Stored where a path-style request would have put it.
    assert_eq!(get(&s3, "vhost", "dir/key.bin").await, plain);

    let (headers, _) = sign_for(
        &host,
        gw.admin(),
        "GET",
        "/dir/key.bin",
        None,
        &[("range", "bytes=65530-65545")],
        PayloadMode::Unsigned,
    );
    let resp = rawhttp::exchange(
        gw.addr(),
        &rawhttp::head("GET", "/dir/key.bin", &headers),
        false,
    );
    assert_eq!(resp.status, 206, "{}", resp.text());
    assert!(resp.body == plain[65_530..=65_545]);

    // A bucket listing: the path is just "/".
    let (headers, _) = sign_for(
        &host,
        gw.admin(),
        "GET",
        "/",
        Some("list-type=2&prefix=dir%2F"),
        &[],
        PayloadMode::Unsigned,
    );
    let resp = rawhttp::exchange(
        gw.addr(),
        &rawhttp::head("GET", "/?list-type=2&prefix=dir%2F", &headers),
        false,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(rawhttp::xml_value(&resp.text(), "Key"), Some("dir/key.bin"));
    assert_eq!(rawhttp::xml_value(&resp.text(), "Size"), Some("70000"));
}

#[tokio::test]
async fn virtual_hosted_style_from_the_sdk() {
    // bucket.localhost does not resolve here; the client is pointed at the gateway's
    // address while keeping the Host header it signed (`vhost.localhost:PORT`).
    let gw = TestGateway::start();
    create_bucket(&gw.client(), "vhost").await;
    let (rec_client, rec) = {
        let rec = twofold_tests::gateway::Recorder::default();
        let conf = twofold_tests::gateway::config_builder(
            &format!("http://localhost:{}", gw.port()),
            gw.admin(),
        )
        .force_path_style(false)
        .interceptor(ConnectTo { addr: gw.addr() })
        .interceptor(rec.clone())
        .build();
        (aws_sdk_s3::Client::from_conf(conf), rec)
    };
    let plain = random_bytes(100_000);
    put(&rec_client, "vhost", "sdk.bin", plain.clone()).await;
    let sent = rec.last();
    assert_eq!(
        sent.header("host"),
        Some(format!("vhost.localhost:{}", gw.port()).as_str()),
        "{sent:?}"
    );
    assert_eq!(get(&rec_client, "vhost", "sdk.bin").await, plain);
    assert_eq!(get(&gw.client(), "vhost", "sdk.bin").await, plain);
    let listed = rec_client
        .list_objects_v2()
        .bucket("vhost")
        .send()
        .await
        .unwrap();
    let sizes: Vec<(&str, i64)> = listed
        .contents()
        .iter()
        .map(|o| (o.key().unwrap(), o.size().unwrap()))
        .collect();
    assert_eq!(sizes, [("sdk.bin", 100_000)]);
}
