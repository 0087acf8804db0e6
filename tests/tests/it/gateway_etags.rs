//! Regression: rclone and s3cmd failed every upload through Twofold ("corrupted on
//! transfer: md5 hash differ", "MD5 Sums don't match!"): the gateway returned the backend's
//! ETag, the MD5 of the ciphertext, which looks exactly like an MD5 of the plaintext and is
//! not. Every ETag a client sees is now either one with a `-` (never taken for an MD5) or
//! none, the same in every answer about the object, and conditional requests with it work
//! (docs/adr/0004-etags.md). tests/clients runs rclone and s3cmd themselves.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use twofold_tests::backend::report_skip;
use twofold_tests::gateway::{TestGateway, create_bucket, put, status_code};
use twofold_tests::random_bytes;

const BUCKET: &str = "etags";
const PART_BYTES: usize = 5 * 1024 * 1024;

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// An ETag no client takes for the MD5 of the content: it has a `-`, and it is not the
/// MD5 of the plaintext.
#[track_caller]
fn assert_not_md5_shaped(etag: &str, plain: &[u8]) {
    let inner = etag.trim_matches('"');
    assert!(inner.contains('-'), "ETag {etag} looks like an MD5");
    assert_ne!(inner, md5_hex(plain));
    assert!(
        !(inner.len() == 32 && inner.chars().all(|c| c.is_ascii_hexdigit())),
        "ETag {etag} matches rclone's MD5 pattern"
    );
}

#[tokio::test]
async fn a_single_part_object_has_one_etag_that_is_not_md5_shaped_everywhere() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(100_000);
    let etag = put(&s3, BUCKET, "single", plain.clone()).await;
    assert_not_md5_shaped(&etag, &plain);
    // The backend's own ETag is the suffix's base.
    let backend = gw
        .backend_client()
        .head_object()
        .bucket(BUCKET)
        .key("single")
        .send()
        .await
        .unwrap();
    assert_eq!(
        etag,
        format!("\"{}-0\"", backend.e_tag().unwrap().trim_matches('"'))
    );
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("single")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    let get = s3
        .get_object()
        .bucket(BUCKET)
        .key("single")
        .send()
        .await
        .unwrap();
    assert_eq!(get.e_tag(), Some(etag.as_str()));
    let attrs = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("single")
        .object_attributes(aws_sdk_s3::types::ObjectAttributes::Etag)
        .send()
        .await
        .unwrap();
    // GetObjectAttributes gives the ETag without quotes, as S3 does.
    assert_eq!(attrs.e_tag(), Some(etag.trim_matches('"')));
    // Listings: s3s-fs lists no ETags at all; where a listing has one, it is the same.
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    for o in listed.contents() {
        if let Some(e) = o.e_tag() {
            assert_eq!(e, etag, "listed ETag of {:?}", o.key());
        }
    }
    // A copy's result ETag is the one its HEAD shows.
    let copy = s3
        .copy_object()
        .bucket(BUCKET)
        .key("copy")
        .copy_source(format!("{BUCKET}/single"))
        .send()
        .await
        .unwrap();
    let copy_etag = copy
        .copy_object_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    assert_not_md5_shaped(&copy_etag, &plain);
    let copy_head = s3
        .head_object()
        .bucket(BUCKET)
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(copy_head.e_tag(), Some(copy_etag.as_str()));
}

/// Whether the backend itself answers a GET whose `If-Match` does not hold with 412.
async fn backend_evaluates_conditions(gw: &TestGateway) -> bool {
    let r = gw
        .backend_client()
        .get_object()
        .bucket(BUCKET)
        .key("cond")
        .if_match("\"no-such-etag\"")
        .send()
        .await;
    matches!(&r, Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412))
}

#[tokio::test]
async fn conditions_with_the_client_etag_work() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(10_000);
    let etag = put(&s3, BUCKET, "cond", plain.clone()).await;
    let other = "\"0123456789abcdef0123456789abcdef-0\"";
    if !backend_evaluates_conditions(&gw).await {
        report_skip(
            gw.backend_kind(),
            "the backend ignores If-Match and If-None-Match",
        );
        return;
    }
    // If-Match with the ETag: served; with another: 412.
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("cond")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), plain);
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("cond")
        .if_match(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 412);
    // If-None-Match with the ETag: 304; with another: 200. (Lists of tags are mapped too,
    // see the unit tests of `s3::etag`; Ceph 16 does not take lists.)
    let e = s3
        .head_object()
        .bucket(BUCKET)
        .key("cond")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 304);
    s3.head_object()
        .bucket(BUCKET)
        .key("cond")
        .if_none_match(other)
        .send()
        .await
        .unwrap();
    // A copy conditioned on the source's ETag.
    s3.copy_object()
        .bucket(BUCKET)
        .key("cond-copy")
        .copy_source(format!("{BUCKET}/cond"))
        .copy_source_if_match(&etag)
        .send()
        .await
        .unwrap();
    // The gateway judges the copy-source conditions itself (moto and Ceph 16 ignore them).
    let e = s3
        .copy_object()
        .bucket(BUCKET)
        .key("cond-copy-2")
        .copy_source(format!("{BUCKET}/cond"))
        .copy_source_if_match(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 412);
}

#[tokio::test]
async fn parts_and_multipart_objects_have_etags_that_are_not_md5_shaped() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let data = [random_bytes(PART_BYTES), random_bytes(1000)];
    let mut parts = Vec::new();
    for (i, d) in data.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(BUCKET)
            .key("mp")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(d.clone()))
            .send()
            .await
            .unwrap();
        let etag = out.e_tag().unwrap().to_owned();
        // s3cmd compares each part's ETag with the part's MD5 unless it has a `-`.
        assert_not_md5_shaped(&etag, d);
        parts.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    // ListParts shows the same ETags as UploadPart returned.
    let listed = s3
        .list_parts()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    // (s3s-fs lists parts without ETags.)
    for (l, p) in listed.parts().iter().zip(&parts) {
        if let Some(e) = l.e_tag() {
            assert_eq!(Some(e), p.e_tag(), "part {:?}", l.part_number());
        }
    }
    // Complete takes the parts' ETags as the client got them.
    let done = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let etag = done.e_tag().unwrap().to_owned();
    // A multipart ETag (the rewrite's part count; the client's is in the layout record).
    assert!(etag.trim_matches('"').contains('-'), "{etag}");
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("mp")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(body, [data[0].as_slice(), data[1].as_slice()].concat());
}
