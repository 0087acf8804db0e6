//! Object metadata and server-side-encryption headers through the gateway: the client's own
//! metadata and content headers round-trip; the gateway's `x-amz-meta-twofold*` entries
//! never reach a client and cannot be set by one; every object response says
//! `x-amz-server-side-encryption: aws:kms:dsse`; SSE requests Twofold cannot honour (SSE-C,
//! a named KMS key) are refused with 400 and store nothing.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::types::ServerSideEncryption;
use twofold_tests::gateway::{TestGateway, create_bucket, exists, put, status_code};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp;

const BUCKET: &str = "meta";

#[tokio::test]
async fn client_metadata_and_content_headers_round_trip() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(70_000);
    s3.put_object()
        .bucket(BUCKET)
        .key("doc.pdf")
        .body(plain.clone().into())
        .content_type("application/pdf")
        .cache_control("max-age=3600, private")
        .content_disposition("attachment; filename=\"report.pdf\"")
        .content_language("de-CH")
        .metadata("owner", "alice")
        .metadata("project-code", "X-42")
        .send()
        .await
        .unwrap();

    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("doc.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/pdf"));
    assert_eq!(head.cache_control(), Some("max-age=3600, private"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"report.pdf\"")
    );
    assert_eq!(head.content_language(), Some("de-CH"));
    let meta = head.metadata().unwrap();
    assert_eq!(meta.get("owner").map(String::as_str), Some("alice"));
    assert_eq!(meta.get("project-code").map(String::as_str), Some("X-42"));
    assert!(
        meta.keys().all(|k| !k.starts_with("twofold")),
        "HEAD shows the gateway's own metadata: {meta:?}"
    );
    assert_eq!(meta.len(), 2, "HEAD metadata: {meta:?}");
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKmsDsse)
    );

    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("doc.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/pdf"));
    assert_eq!(got.cache_control(), Some("max-age=3600, private"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"report.pdf\"")
    );
    let meta = got.metadata().unwrap().clone();
    assert_eq!(meta.len(), 2, "GET metadata: {meta:?}");
    assert!(meta.keys().all(|k| !k.starts_with("twofold")), "{meta:?}");
    assert_eq!(
        got.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKmsDsse)
    );
    assert_eq!(got.body.collect().await.unwrap().to_vec(), plain);

    // The ranged path builds its response differently; it must show the same.
    let ranged = s3
        .get_object()
        .bucket(BUCKET)
        .key("doc.pdf")
        .range("bytes=10-20")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.content_type(), Some("application/pdf"));
    assert_eq!(ranged.metadata().unwrap().len(), 2);
    assert_eq!(
        ranged.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKmsDsse)
    );
}

#[tokio::test]
async fn no_response_carries_twofold_metadata() {
    // Raw, so that no SDK filtering hides a header.
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    put(&s3, BUCKET, "k", random_bytes(100)).await;
    let path = format!("/{BUCKET}/k");
    for (method, range) in [("HEAD", None), ("GET", None), ("GET", Some("bytes=1-2"))] {
        let extra: Vec<(&str, &str)> = range.iter().map(|r| ("range", *r)).collect();
        let (headers, _) = gw.sign(
            gw.admin(),
            method,
            &path,
            None,
            &extra,
            twofold::sigv4::PayloadMode::Unsigned,
        );
        let resp = rawhttp::exchange(
            gw.addr(),
            &rawhttp::head(method, &path, &headers),
            method == "HEAD",
        );
        assert!(
            resp.status == 200 || resp.status == 206,
            "{method}: {resp:?}"
        );
        let leaked: Vec<&(String, String)> = resp
            .headers
            .iter()
            .filter(|(n, _)| n.starts_with("x-amz-meta-twofold"))
            .collect();
        assert!(leaked.is_empty(), "{method} {range:?} leaks {leaked:?}");
        assert_eq!(
            resp.header("x-amz-server-side-encryption"),
            Some("aws:kms:dsse"),
            "{method} {range:?}"
        );
    }
}

#[tokio::test]
async fn put_response_says_dsse() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let out = s3
        .put_object()
        .bucket(BUCKET)
        .key("k")
        .body(random_bytes(10).into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKmsDsse)
    );
}

#[tokio::test]
async fn client_cannot_set_twofold_metadata() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    for name in ["twofold", "twofold-checksum", "TwoFold-x"] {
        let e = s3
            .put_object()
            .bucket(BUCKET)
            .key("forged")
            .metadata(name, "AAAA")
            .body(random_bytes(100).into())
            .send()
            .await
            .unwrap_err();
        let (status, code) = status_code(&e);
        assert_eq!(status, 400, "x-amz-meta-{name}: {e:?}");
        assert_eq!(code, "InvalidArgument", "x-amz-meta-{name}");
        assert!(!exists(&s3, BUCKET, "forged").await, "x-amz-meta-{name}");
    }
    // On a copy with REPLACE too, and on multipart creation.
    put(&s3, BUCKET, "src", random_bytes(100)).await;
    let e = s3
        .copy_object()
        .bucket(BUCKET)
        .key("forged")
        .copy_source(format!("{BUCKET}/src"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("twofold", "AAAA")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400, "{e:?}");
    let e = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("forged")
        .metadata("twofold", "AAAA")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400, "{e:?}");
    assert!(!exists(&s3, BUCKET, "forged").await);
}

#[tokio::test]
async fn sse_requests() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;

    // DSSE (and SSE-S3 / SSE-KMS without a key: Twofold does more than asked) is accepted.
    for sse in [
        ServerSideEncryption::AwsKmsDsse,
        ServerSideEncryption::Aes256,
        ServerSideEncryption::AwsKms,
    ] {
        let key = format!("sse-{}", sse.as_str());
        let out = s3
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .server_side_encryption(sse.clone())
            .body(random_bytes(1000).into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("SSE {sse:?}: {e:?}"));
        assert_eq!(
            out.server_side_encryption(),
            Some(&ServerSideEncryption::AwsKmsDsse)
        );
        assert!(exists(&s3, BUCKET, &key).await);
    }

    // A named KMS key cannot be honoured.
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("kms-key")
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id("arn:aws:kms:us-east-1:111122223333:key/abcd")
        .body(random_bytes(1000).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400, "KMS key id: {e:?}");
    assert!(!exists(&s3, BUCKET, "kms-key").await);

    // SSE-C (gateway_sse_c) cannot be combined with another encryption request, as in S3.
    let customer_key = [7u8; 32];
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key_md5 = b64.encode(md5_of(&customer_key));
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("sse-c")
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64.encode(customer_key))
        .sse_customer_key_md5(&key_md5)
        .body(random_bytes(1000).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400, "SSE-C PUT: {e:?}");
    assert!(!exists(&s3, BUCKET, "sse-c").await);

    // An unknown SSE value is refused.
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("sse-odd")
        .server_side_encryption(ServerSideEncryption::from("rot13"))
        .body(random_bytes(10).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400, "unknown SSE: {e:?}");
    assert!(!exists(&s3, BUCKET, "sse-odd").await);

    // A GET with SSE-C headers of an object without a customer key is refused, as in S3.
    put(&s3, BUCKET, "plain", random_bytes(10)).await;
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("plain")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64.encode(customer_key))
        .sse_customer_key_md5(&key_md5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400, "SSE-C GET: {e:?}");
}

fn md5_of(data: &[u8]) -> Vec<u8> {
    use md5::Digest;
    md5::Md5::digest(data).to_vec()
}
