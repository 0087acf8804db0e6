//! SSE-C: an object written with a customer-provided key opens only with both custodians
//! and that key. Each operation behaves as S3 does: 400 without the key (or with one for
//! an object that has none), 403 with a wrong one, the key's MD5 echoed; copies take the
//! source's key in the copy-source headers and bind the copy to the destination's (or to
//! none); multipart uploads need the key for every part and at Complete; listings show
//! plaintext sizes; the backend never sees the key or the plaintext.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use aws_sdk_s3::Client;
use base64::Engine;
use md5::Digest;
use twofold_tests::gateway::{TestGateway, completed, create_bucket, status_code};
use twofold_tests::random_bytes;

const BUCKET: &str = "sse-c";

/// Builders of requests that take a customer key, given one as `(key, MD5)` in base64.
trait Keyed {
    fn keyed(self, c: &(String, String)) -> Self;
}

macro_rules! keyed {
    ($($op:ident :: $builder:ident),*) => {$(
        impl Keyed for aws_sdk_s3::operation::$op::builders::$builder {
            fn keyed(self, c: &(String, String)) -> Self {
                self.sse_customer_algorithm("AES256")
                    .sse_customer_key(&c.0)
                    .sse_customer_key_md5(&c.1)
            }
        }
    )*};
}

keyed!(
    put_object::PutObjectFluentBuilder,
    get_object::GetObjectFluentBuilder,
    head_object::HeadObjectFluentBuilder,
    copy_object::CopyObjectFluentBuilder,
    create_multipart_upload::CreateMultipartUploadFluentBuilder,
    upload_part::UploadPartFluentBuilder,
    upload_part_copy::UploadPartCopyFluentBuilder,
    complete_multipart_upload::CompleteMultipartUploadFluentBuilder
);
const MIB: usize = 1 << 20;

/// A customer key: (key, MD5), both base64, as the SDK sends them.
fn customer(byte: u8) -> (String, String) {
    let key = [byte; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    (b64.encode(key), b64.encode(md5::Md5::digest(key)))
}

async fn put_c(s3: &Client, key: &str, body: &[u8], c: &(String, String)) {
    let out = s3
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(body.to_vec().into())
        .keyed(c)
        .send()
        .await
        .unwrap();
    assert_eq!(out.sse_customer_algorithm(), Some("AES256"));
    assert_eq!(out.sse_customer_key_md5(), Some(c.1.as_str()));
}

/// GET with `c` (or without a key): the body, or the error's status and code.
async fn get_c(
    s3: &Client,
    key: &str,
    c: Option<&(String, String)>,
) -> Result<Vec<u8>, (u16, String)> {
    let mut req = s3.get_object().bucket(BUCKET).key(key);
    if let Some(c) = c {
        req = req.keyed(c);
    }
    match req.send().await {
        Ok(out) => {
            if let Some(c) = c {
                assert_eq!(out.sse_customer_key_md5(), Some(c.1.as_str()));
            }
            Ok(out.body.collect().await.unwrap().to_vec())
        }
        Err(e) => Err(status_code(&e)),
    }
}

async fn head_status(s3: &Client, key: &str, c: Option<&(String, String)>) -> u16 {
    let mut req = s3.head_object().bucket(BUCKET).key(key);
    if let Some(c) = c {
        req = req.keyed(c);
    }
    match req.send().await {
        Ok(out) => {
            assert_eq!(out.sse_customer_algorithm(), Some("AES256"));
            200
        }
        Err(e) => status_code(&e).0,
    }
}

#[tokio::test]
async fn an_object_under_a_customer_key_opens_only_with_it() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let (a, b) = (customer(1), customer(2));
    let body = random_bytes(300_000);
    put_c(&s3, "obj", &body, &a).await;

    assert!(get_c(&s3, "obj", Some(&a)).await.unwrap() == body);
    assert_eq!(get_c(&s3, "obj", None).await.unwrap_err().0, 400);
    assert_eq!(
        get_c(&s3, "obj", Some(&b)).await.unwrap_err(),
        (403, "AccessDenied".to_owned())
    );
    assert_eq!(head_status(&s3, "obj", Some(&a)).await, 200);
    assert_eq!(head_status(&s3, "obj", None).await, 400);
    assert_eq!(head_status(&s3, "obj", Some(&b)).await, 403);
    let range = s3
        .get_object()
        .bucket(BUCKET)
        .key("obj")
        .range("bytes=100000-100099")
        .keyed(&a)
        .send()
        .await
        .unwrap();
    assert!(range.body.collect().await.unwrap().to_vec() == body[100_000..100_100]);

    // A key whose MD5 is not the one sent stores nothing.
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("bad-md5")
        .body(b"x".to_vec().into())
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&a.0)
        .sse_customer_key_md5(&b.1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400);
    assert_eq!(head_status(&s3, "bad-md5", Some(&a)).await, 404);

    // An object without a customer key refuses one.
    s3.put_object()
        .bucket(BUCKET)
        .key("plain")
        .body(body.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(get_c(&s3, "plain", Some(&a)).await.unwrap_err().0, 400);

    // Copies: the source's key opens it, the copy is bound to the destination's, or none.
    let copy =
        |to: &'static str, dest: Option<&(String, String)>, src: Option<&(String, String)>| {
            let mut req = s3
                .copy_object()
                .bucket(BUCKET)
                .key(to)
                .copy_source(format!("{BUCKET}/obj"));
            if let Some(c) = src {
                req = req
                    .copy_source_sse_customer_algorithm("AES256")
                    .copy_source_sse_customer_key(&c.0)
                    .copy_source_sse_customer_key_md5(&c.1);
            }
            if let Some(c) = dest {
                req = req.keyed(c);
            }
            req.send()
        };
    assert_eq!(
        status_code(&copy("no-src-key", Some(&b), None).await.unwrap_err()).0,
        400
    );
    assert_eq!(
        status_code(&copy("wrong-src-key", None, Some(&b)).await.unwrap_err()).0,
        403
    );
    let out = copy("to-b", Some(&b), Some(&a)).await.unwrap();
    assert_eq!(out.sse_customer_key_md5(), Some(b.1.as_str()));
    assert!(get_c(&s3, "to-b", Some(&b)).await.unwrap() == body);
    assert_eq!(get_c(&s3, "to-b", Some(&a)).await.unwrap_err().0, 403);
    copy("to-plain", None, Some(&a)).await.unwrap();
    assert!(get_c(&s3, "to-plain", None).await.unwrap() == body);

    gw.assert_no_plaintext_in_backend(&[&body]);
    // The backend stored no customer key: its own HEAD needs none.
    let stored = gw.backend_head(BUCKET, "obj").await;
    assert!(stored.sse_customer_algorithm().is_none());
}

#[tokio::test]
async fn a_multipart_upload_under_a_customer_key_needs_it_for_every_part_and_complete() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let (a, b) = (customer(3), customer(4));
    let source = random_bytes(MIB + 5);
    put_c(&s3, "source", &source, &b).await;
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .keyed(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(up.sse_customer_key_md5(), Some(a.1.as_str()));
    let id = up.upload_id().unwrap();
    let first = random_bytes(5 * MIB + 3);
    let part = |c: Option<&(String, String)>| {
        let mut req = s3
            .upload_part()
            .bucket(BUCKET)
            .key("mp")
            .upload_id(id)
            .part_number(1)
            .body(first.clone().into());
        if let Some(c) = c {
            req = req.keyed(c);
        }
        req.send()
    };
    assert_eq!(status_code(&part(None).await.unwrap_err()).0, 400);
    assert_eq!(status_code(&part(Some(&b)).await.unwrap_err()).0, 403);
    let p1 = part(Some(&a)).await.unwrap();
    assert_eq!(p1.sse_customer_key_md5(), Some(a.1.as_str()));
    let p2 = s3
        .upload_part_copy()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .part_number(2)
        .copy_source(format!("{BUCKET}/source"))
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&b.0)
        .copy_source_sse_customer_key_md5(&b.1)
        .keyed(&a)
        .send()
        .await
        .unwrap();
    let parts = completed(&[
        p1.e_tag().unwrap(),
        p2.copy_part_result().unwrap().e_tag().unwrap(),
    ]);
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .multipart_upload(parts)
        .keyed(&a)
        .send()
        .await
        .unwrap();
    let mut want = first.clone();
    want.extend_from_slice(&source);
    assert!(get_c(&s3, "mp", Some(&a)).await.unwrap() == want);
    assert_eq!(get_c(&s3, "mp", None).await.unwrap_err().0, 400);
    let second = s3
        .get_object()
        .bucket(BUCKET)
        .key("mp")
        .part_number(2)
        .keyed(&a)
        .send()
        .await
        .unwrap();
    assert!(second.body.collect().await.unwrap().to_vec() == source);
    // Listings show the plaintext size without the key.
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.contents()[0].size(),
        Some(i64::try_from(want.len()).unwrap())
    );
    gw.assert_no_plaintext_in_backend(&[&first, &source]);
}
