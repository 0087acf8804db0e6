//! Named keys: a request that names a KMS key id (`x-amz-server-side-encryption-aws-kms-key-id`,
//! with `aws:kms:dsse` or `aws:kms`) has its object sealed under that key's KEK in each
//! custodian, and every answer about the object (PUT, HEAD, GET, CopyObject,
//! CreateMultipartUpload, UploadPart, UploadPartCopy, Complete) names the key. An unknown
//! id is `KMS.NotFoundException`, a key the credential may not use `AccessDenied`, and
//! neither stores anything.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use twofold::envelope::aead::Layer;
use twofold::envelope::objmeta;
use twofold::keys::named::DEFAULT_KEY_ID;
use twofold::s3::Grants;
use twofold_tests::gateway::{
    Credential, Options, TestGateway, client_for, completed, create_bucket, get, named_key_label,
    status_code,
};
use twofold_tests::random_bytes;

const BUCKET: &str = "named-keys";
const FINANCE: &str = "alias/finance";
const LEGAL: &str = "alias/legal";
const MIB: usize = 1 << 20;

/// The KEK labels of the stored object's header, as the backend holds it.
async fn stored_keks(gw: &TestGateway, key: &str) -> (String, String) {
    let head = gw.backend_head(BUCKET, key).await;
    let value = head.metadata().unwrap().get("twofold").unwrap().clone();
    let header = objmeta::decode(&value).unwrap();
    (header.inner.kek_id.clone(), header.outer.kek_id.clone())
}

fn keks_of(id: &str) -> (String, String) {
    (
        named_key_label(id, Layer::Inner),
        named_key_label(id, Layer::Outer),
    )
}

async fn put_under(s3: &Client, key: &str, body: Vec<u8>, key_id: Option<&str>) -> Option<String> {
    let mut req = s3
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(body.into())
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse);
    if let Some(id) = key_id {
        req = req.ssekms_key_id(id);
    }
    let out = req.send().await.unwrap();
    assert_eq!(
        out.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKmsDsse)
    );
    out.ssekms_key_id().map(str::to_owned)
}

/// HEAD and GET name the key; GET gives the body back.
async fn assert_read_under(s3: &Client, key: &str, body: &[u8], key_id: &str) {
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.ssekms_key_id(), Some(key_id), "HEAD of {key}");
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKmsDsse)
    );
    let out = s3
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(out.ssekms_key_id(), Some(key_id), "GET of {key}");
    assert!(out.body.collect().await.unwrap().to_vec() == body);
}

fn gateway() -> (TestGateway, Credential) {
    let restricted = Credential::random("NOKEYS");
    let mut configured = restricted.configured(None, Grants::default());
    configured.key_ids = Some(Vec::new());
    let gw = TestGateway::start_with(Options {
        named_keys: vec![FINANCE.to_owned(), LEGAL.to_owned()],
        extra_credentials: vec![configured],
        ..Default::default()
    });
    (gw, restricted)
}

#[tokio::test]
async fn objects_are_sealed_under_the_key_they_name() {
    let (gw, restricted) = gateway();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let body = random_bytes(300_000);
    assert_eq!(
        put_under(&s3, "finance", body.clone(), Some(FINANCE))
            .await
            .as_deref(),
        Some(FINANCE)
    );
    assert_eq!(stored_keks(&gw, "finance").await, keks_of(FINANCE));
    assert_read_under(&s3, "finance", &body, FINANCE).await;
    // No key named: the default, under the custodians' own KEKs.
    assert_eq!(
        put_under(&s3, "plain", body.clone(), None).await.as_deref(),
        Some(DEFAULT_KEY_ID)
    );
    assert_read_under(&s3, "plain", &body, DEFAULT_KEY_ID).await;
    // Another gateway of the deployment (its own caches and sessions) reads it too.
    let other = gw.start_another();
    let out = other
        .client()
        .get_object()
        .bucket(BUCKET)
        .key("finance")
        .send()
        .await;
    assert!(out.unwrap().body.collect().await.unwrap().to_vec() == body);

    // A copy takes the key the copy request names (the default without one), as in S3.
    let copy = |to: &'static str, key_id: Option<&'static str>| {
        let mut req = s3
            .copy_object()
            .bucket(BUCKET)
            .key(to)
            .copy_source(format!("{BUCKET}/finance"));
        if let Some(id) = key_id {
            req = req
                .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
                .ssekms_key_id(id);
        }
        req.send()
    };
    let out = copy("to-legal", Some(LEGAL)).await.unwrap();
    assert_eq!(out.ssekms_key_id(), Some(LEGAL));
    assert_eq!(stored_keks(&gw, "to-legal").await, keks_of(LEGAL));
    assert_read_under(&s3, "to-legal", &body, LEGAL).await;
    let out = copy("to-default", None).await.unwrap();
    assert_eq!(out.ssekms_key_id(), Some(DEFAULT_KEY_ID));
    assert_read_under(&s3, "to-default", &body, DEFAULT_KEY_ID).await;
    gw.assert_no_plaintext_in_backend(&[&body]);
    drop(restricted);
}

#[tokio::test]
async fn unknown_or_forbidden_keys_are_refused_and_store_nothing() {
    let (gw, restricted) = gateway();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let attempt = |s3: &Client, key: &'static str, sse, id: &'static str| {
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(b"never stored".to_vec().into())
            .server_side_encryption(sse)
            .ssekms_key_id(id)
            .send()
    };
    let e = attempt(
        &s3,
        "unknown",
        ServerSideEncryption::AwsKmsDsse,
        "alias/nope",
    )
    .await
    .unwrap_err();
    assert_eq!(status_code(&e), (400, "KMS.NotFoundException".to_owned()));
    // A key id with SSE-S3 is no request for a KMS key.
    let e = attempt(&s3, "aes", ServerSideEncryption::Aes256, FINANCE)
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (400, "InvalidArgument".to_owned()));
    // An encryption context that is no base64 of a JSON object of strings, or one without
    // a KMS request, is refused, not dropped.
    for (sse, context) in [
        (Some(ServerSideEncryption::AwsKmsDsse), "bm90IGpzb24="),
        (Some(ServerSideEncryption::AwsKmsDsse), "eyJhIjoxfQ=="),
        (None, "eyJhIjoiYiJ9"),
        (Some(ServerSideEncryption::Aes256), "eyJhIjoiYiJ9"),
    ] {
        let e = s3
            .put_object()
            .bucket(BUCKET)
            .key("context")
            .body(b"never stored".to_vec().into())
            .set_server_side_encryption(sse)
            .ssekms_encryption_context(context)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_code(&e),
            (400, "InvalidArgument".to_owned()),
            "{context}"
        );
    }
    // A credential whose grant holds no named key: the default only.
    let limited = client_for(&gw.endpoint(), &restricted);
    let e = attempt(
        &limited,
        "forbidden",
        ServerSideEncryption::AwsKmsDsse,
        FINANCE,
    )
    .await
    .unwrap_err();
    assert_eq!(status_code(&e), (403, "AccessDenied".to_owned()));
    let e = limited
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("forbidden-mp")
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id(FINANCE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (403, "AccessDenied".to_owned()));
    assert_eq!(
        put_under(&limited, "allowed", b"x".to_vec(), Some(DEFAULT_KEY_ID))
            .await
            .as_deref(),
        Some(DEFAULT_KEY_ID)
    );
    for key in ["unknown", "aes", "context", "forbidden"] {
        let e = s3.head_object().bucket(BUCKET).key(key).send().await;
        assert!(e.is_err(), "{key} was stored");
    }
}

#[tokio::test]
async fn a_multipart_upload_is_sealed_under_the_key_it_names() {
    let (gw, _) = gateway();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let source = random_bytes(MIB);
    put_under(&s3, "source", source.clone(), Some(FINANCE)).await;
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id(LEGAL)
        .send()
        .await
        .unwrap();
    assert_eq!(up.ssekms_key_id(), Some(LEGAL));
    let id = up.upload_id().unwrap();
    let first = random_bytes(5 * MIB);
    let p1 = s3
        .upload_part()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(first.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(p1.ssekms_key_id(), Some(LEGAL));
    let p2 = s3
        .upload_part_copy()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .part_number(2)
        .copy_source(format!("{BUCKET}/source"))
        .send()
        .await
        .unwrap();
    assert_eq!(p2.ssekms_key_id(), Some(LEGAL));
    let done = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(p1.e_tag().unwrap())
                        .build(),
                )
                .parts(
                    CompletedPart::builder()
                        .part_number(2)
                        .e_tag(p2.copy_part_result().unwrap().e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(done.ssekms_key_id(), Some(LEGAL));
    assert_eq!(stored_keks(&gw, "mp").await, keks_of(LEGAL));
    let mut want = first.clone();
    want.extend_from_slice(&source);
    assert_read_under(&s3, "mp", &want, LEGAL).await;
    assert!(get(&s3, BUCKET, "mp").await == want);
    gw.assert_no_plaintext_in_backend(&[&first, &source]);
}

/// GetBucketEncryption's default rule: its algorithm and key.
async fn rule(s3: &Client, bucket: &str) -> (ServerSideEncryption, Option<String>) {
    let out = s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rule = out.server_side_encryption_configuration().unwrap().rules()[0].clone();
    let by_default = rule
        .apply_server_side_encryption_by_default()
        .unwrap()
        .clone();
    (
        by_default.sse_algorithm().clone(),
        by_default.kms_master_key_id().map(str::to_owned),
    )
}

/// A bucket's default key (`[[bucket]] default_key_id`): what its objects are sealed under
/// when their requests name no key, and what GetBucketEncryption answers. A
/// PutBucketEncryption of that is done; one of anything else is refused (the setting
/// lives in the configuration); DeleteBucketEncryption leaves it.
#[tokio::test]
async fn a_bucket_default_key_seals_what_names_none_and_is_reported() {
    let gw = TestGateway::start_with(Options {
        named_keys: vec![FINANCE.to_owned()],
        bucket_defaults: vec![(BUCKET.to_owned(), FINANCE.to_owned())],
        ..Default::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    create_bucket(&s3, "plain-bucket").await;
    let body = random_bytes(70_000);
    let out = s3
        .put_object()
        .bucket(BUCKET)
        .key("no-header")
        .body(body.clone().into())
        .send()
        .await
        .unwrap();
    assert_eq!(out.ssekms_key_id(), Some(FINANCE));
    assert_eq!(stored_keks(&gw, "no-header").await, keks_of(FINANCE));
    assert_read_under(&s3, "no-header", &body, FINANCE).await;
    // A key the request names wins.
    let named = put_under(&s3, "named", body.clone(), Some(DEFAULT_KEY_ID)).await;
    assert_eq!(named.as_deref(), Some(DEFAULT_KEY_ID));

    assert_eq!(
        rule(&s3, BUCKET).await,
        (ServerSideEncryption::AwsKmsDsse, Some(FINANCE.to_owned()))
    );
    assert_eq!(
        rule(&s3, "plain-bucket").await,
        (
            ServerSideEncryption::AwsKmsDsse,
            Some(DEFAULT_KEY_ID.to_owned())
        )
    );
    let put = |bucket: &'static str, key: &'static str| {
        use aws_sdk_s3::types::{
            ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
            ServerSideEncryptionRule,
        };
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::AwsKmsDsse)
            .kms_master_key_id(key)
            .build()
            .unwrap();
        let config = ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(by_default)
                    .build(),
            )
            .build()
            .unwrap();
        s3.put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(config)
            .send()
    };
    put(BUCKET, FINANCE).await.unwrap();
    let e = put(BUCKET, DEFAULT_KEY_ID).await.unwrap_err();
    assert_eq!(status_code(&e), (400, "InvalidRequest".to_owned()));
    let e = put("plain-bucket", "alias/nope").await.unwrap_err();
    assert_eq!(status_code(&e), (400, "KMS.NotFoundException".to_owned()));
    s3.delete_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(rule(&s3, BUCKET).await.1.as_deref(), Some(FINANCE));
    let e = s3
        .get_bucket_encryption()
        .bucket("no-such-bucket-here")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (404, "NoSuchBucket".to_owned()));
}

/// The encryption context of the object as the gateway answers it on HEAD.
fn head_context(gw: &TestGateway, key: &str) -> Option<String> {
    let path = format!("/{BUCKET}/{key}");
    let resp = gw.send_signed(
        gw.admin(),
        &twofold_tests::gateway::RawRequest {
            method: "HEAD",
            path: &path,
            query: None,
            host: None,
            headers: &[],
            body: b"",
        },
    );
    assert_eq!(resp.status, 200, "HEAD {key}");
    resp.header("x-amz-server-side-encryption-context")
        .map(str::to_owned)
}

#[tokio::test]
async fn an_encryption_context_is_sealed_with_the_object_and_answered_back() {
    use base64::Engine;
    let (gw, _) = gateway();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let apollo = b64.encode(r#"{"project":"apollo-context-9f3"}"#);
    let gemini = b64.encode(r#"{"project":"gemini"}"#);
    let body = random_bytes(100_000);
    let out = s3
        .put_object()
        .bucket(BUCKET)
        .key("ctx")
        .body(body.clone().into())
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id(FINANCE)
        .ssekms_encryption_context(&apollo)
        .send()
        .await
        .unwrap();
    assert_eq!(out.ssekms_encryption_context(), Some(apollo.as_str()));
    assert_eq!(head_context(&gw, "ctx").as_deref(), Some(apollo.as_str()));
    assert_read_under(&s3, "ctx", &body, FINANCE).await;
    // Sealed: the backend holds neither the context nor its base64 in the clear.
    let stored = gw.backend_head(BUCKET, "ctx").await;
    let clear = format!("{:?}", stored.metadata());
    assert!(
        !clear.contains("apollo") && !clear.contains(&apollo),
        "{clear}"
    );

    // A copy keeps the source's context, or takes the one its request gives.
    let copy = |to: &'static str, context: Option<&str>| {
        s3.copy_object()
            .bucket(BUCKET)
            .key(to)
            .copy_source(format!("{BUCKET}/ctx"))
            .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
            .set_ssekms_encryption_context(context.map(str::to_owned))
            .send()
    };
    copy("kept", None).await.unwrap();
    assert_eq!(head_context(&gw, "kept").as_deref(), Some(apollo.as_str()));
    let out = copy("changed", Some(&gemini)).await.unwrap();
    assert_eq!(out.ssekms_encryption_context(), Some(gemini.as_str()));
    assert_eq!(
        head_context(&gw, "changed").as_deref(),
        Some(gemini.as_str())
    );

    // A multipart upload takes it at its start.
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("ctx-mp")
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_encryption_context(&gemini)
        .send()
        .await
        .unwrap();
    assert_eq!(up.ssekms_encryption_context(), Some(gemini.as_str()));
    let id = up.upload_id().unwrap();
    let p1 = s3
        .upload_part()
        .bucket(BUCKET)
        .key("ctx-mp")
        .upload_id(id)
        .part_number(1)
        .body(body.clone().into())
        .send()
        .await
        .unwrap();
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("ctx-mp")
        .upload_id(id)
        .multipart_upload(completed(&[p1.e_tag().unwrap()]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head_context(&gw, "ctx-mp").as_deref(),
        Some(gemini.as_str())
    );
    // Objects stored without one answer none.
    put_under(&s3, "no-ctx", b"x".to_vec(), None).await;
    assert_eq!(head_context(&gw, "no-ctx"), None);
}
