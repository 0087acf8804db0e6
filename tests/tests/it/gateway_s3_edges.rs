//! Answers at the edges of S3 operations, each as S3 gives it: a conditional PUT whose
//! condition fails is 412 PreconditionFailed whatever the size of its body, and nothing is
//! stored; UploadPartCopy of a range that reaches past its source is refused, not clamped.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use twofold_tests::backend::BackendKind;
use twofold_tests::gateway::{
    RawRequest, TestGateway, create_bucket, exists, get, put, status_code,
};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp;

const BUCKET: &str = "s3-edges";
const MIB: usize = 1024 * 1024;
/// Bodies large enough that a backend which checks a condition before reading the body
/// answers while the gateway is still sending it.
const LARGE_BODIES: [usize; 2] = [MIB, 8 * MIB];
/// An ETag no object has.
const OTHER_ETAG: &str = "\"0123456789abcdef0123456789abcdef\"";

/// Whether the backend honours `If-None-Match: *` on PUT (one that does not implement
/// conditional writes stores the object anyway). Probed with a key of its own, written
/// directly to the backend.
async fn backend_honours_put_conditions(gw: &TestGateway) -> bool {
    let backend = gw.backend_client();
    let probe = |body: &'static [u8]| {
        backend
            .put_object()
            .bucket(BUCKET)
            .key("condition-probe")
            .if_none_match("*")
            .body(body.to_vec().into())
            .send()
    };
    probe(b"first").await.unwrap();
    match probe(b"second").await {
        Ok(_) => false,
        Err(e) => {
            assert_eq!(status_code(&e).0, 412, "backend PUT If-None-Match: {e:?}");
            true
        }
    }
}

/// Regression: a conditional PUT of 1 MiB or more whose condition failed was answered
/// 502: the backend refused it before reading the body and closed the connection, the
/// gateway's next write of the sealed body failed, and that failure was the answer. The
/// backend's 412 is the answer now, the object is left as it was, and the client's
/// connection ends cleanly (its unread body is drained, then closed).
#[tokio::test]
async fn conditional_put_of_a_large_body_that_fails_is_precondition_failed() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    if !backend_honours_put_conditions(&gw).await {
        twofold_tests::backend::report_skip(
            gw.backend_kind(),
            "the backend ignores If-None-Match on PUT: no condition to fail",
        );
        return;
    }
    let kept = random_bytes(1000);
    put(&s3, BUCKET, "kept", kept.clone()).await;
    for len in LARGE_BODIES {
        let refused = s3
            .put_object()
            .bucket(BUCKET)
            .key("kept")
            .if_match(OTHER_ETAG)
            .body(random_bytes(len).into())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_code(&refused),
            (412, "PreconditionFailed".to_owned()),
            "If-Match of another ETag, {len} bytes: {refused:?}"
        );
        let refused = s3
            .put_object()
            .bucket(BUCKET)
            .key("kept")
            .if_none_match("*")
            .body(random_bytes(len).into())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_code(&refused),
            (412, "PreconditionFailed".to_owned()),
            "If-None-Match: * on an object that exists, {len} bytes: {refused:?}"
        );
        // The same client goes on: nothing of the refused body is taken for a request.
        assert_eq!(get(&s3, BUCKET, "kept").await, kept, "{len} bytes");
    }
    // A condition that holds still stores.
    s3.put_object()
        .bucket(BUCKET)
        .key("new")
        .if_none_match("*")
        .body(random_bytes(MIB).into())
        .send()
        .await
        .unwrap();
    assert!(exists(&s3, BUCKET, "new").await);
}

/// The other side of the refusal: a large PUT whose `If-Match` names the object's ETag is
/// stored, its whole body sent.
#[tokio::test]
async fn conditional_put_of_a_large_body_that_holds_is_stored() {
    let gw = TestGateway::start();
    if gw.skip_on(
        &[BackendKind::Ceph],
        "Ceph 16 compares If-Match on PUT with the stored ETag without its quotes, so an \
         ETag as S3 gives it (quoted) never matches: 412",
    ) {
        return;
    }
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let etag = put(&s3, BUCKET, "kept", random_bytes(1000)).await;
    let plain = random_bytes(8 * MIB);
    s3.put_object()
        .bucket(BUCKET)
        .key("kept")
        .if_match(&etag)
        .body(plain.clone().into())
        .send()
        .await
        .unwrap();
    assert!(get(&s3, BUCKET, "kept").await == plain);
}

/// The same refusal to a client that sends its whole body before it reads the answer (as
/// curl does): the gateway drains the body it did not read, so the 412 is heard.
#[tokio::test]
async fn conditional_put_refused_early_is_heard_by_a_client_that_sends_everything_first() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    if !backend_honours_put_conditions(&gw).await {
        twofold_tests::backend::report_skip(
            gw.backend_kind(),
            "the backend ignores If-None-Match on PUT: no condition to fail",
        );
        return;
    }
    let kept = random_bytes(1000);
    put(&s3, BUCKET, "kept", kept.clone()).await;
    let body = random_bytes(8 * MIB);
    let resp = gw.send_signed(
        gw.admin(),
        &RawRequest {
            method: "PUT",
            path: &format!("/{BUCKET}/kept"),
            headers: &[("if-none-match", "*")],
            body: &body,
            ..RawRequest::default()
        },
    );
    resp.assert_s3_error(412, "PreconditionFailed");
    let signed = gw.sign(
        gw.admin(),
        "PUT",
        &format!("/{BUCKET}/kept"),
        None,
        &[("if-match", OTHER_ETAG)],
        twofold::sigv4::PayloadMode::Unsigned,
    );
    let mut headers = signed.0;
    headers.push(("content-length".into(), body.len().to_string()));
    let mut bytes = rawhttp::head("PUT", &format!("/{BUCKET}/kept"), &headers);
    bytes.extend_from_slice(&body);
    let resp = rawhttp::send_then_read(gw.addr(), &bytes, false)
        .unwrap_or_else(|e| panic!("the 412 was not heard: {e}"));
    resp.assert_s3_error(412, "PreconditionFailed");
    assert_eq!(get(&s3, BUCKET, "kept").await, kept);
}

/// Regression: UploadPartCopy with an `x-amz-copy-source-range` reaching past the end of
/// its source copied the bytes there are (the range clamped, as a GET's range is). S3
/// refuses it, 400 InvalidArgument, and no part is stored.
#[tokio::test]
async fn upload_part_copy_of_a_range_past_the_source_is_refused() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let source = random_bytes(100_000);
    put(&s3, BUCKET, "source", source.clone()).await;
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("copied")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let copy = |range: &'static str| {
        s3.upload_part_copy()
            .bucket(BUCKET)
            .key("copied")
            .upload_id(id)
            .part_number(1)
            .copy_source(format!("{BUCKET}/source"))
            .copy_source_range(range)
            .send()
    };
    for range in [
        "bytes=0-100000",
        "bytes=99999-100000",
        "bytes=100000-100001",
        "bytes=0-999999",
        "bytes=200000-",
    ] {
        let e = copy(range).await.unwrap_err();
        assert_eq!(
            status_code(&e),
            (400, "InvalidArgument".to_owned()),
            "{range}: {e:?}"
        );
        assert_eq!(
            e.message(),
            Some("Range specified is not valid for source object of size: 100000"),
            "{range}"
        );
    }
    let e = copy("bytes=-10").await.unwrap_err();
    assert_eq!(
        status_code(&e),
        (400, "InvalidArgument".to_owned()),
        "{e:?}"
    );
    let parts = s3
        .list_parts()
        .bucket(BUCKET)
        .key("copied")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    assert!(
        parts.parts().is_empty(),
        "a refused copy stored a part: {parts:?}"
    );

    // A range that ends at the source's last byte is copied.
    let copied = copy("bytes=50000-99999").await.unwrap();
    let etag = copied.copy_part_result().unwrap().e_tag().unwrap();
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("copied")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(get(&s3, BUCKET, "copied").await == source[50_000..]);
}
