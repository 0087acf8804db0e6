//! Client authentication and authorisation at the gateway: SigV4 with a wrong secret, an
//! unknown key, a stale clock; a credential limited to one bucket used on another;
//! presigned GET and PUT URLs made by the AWS SDK, and the same URLs expired or altered.
//! Every refusal is an S3 error document, and a refused PUT stores nothing.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::presigning::{PresignedRequest, PresigningConfig};
use std::time::Duration;
use twofold_tests::gateway::{
    Credential, LIMITED_BUCKET, TestGateway, create_bucket, exists, get, put, status_code,
};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp::{self, Response};

// Not "auth": Ceph RGW serves /auth as its Swift authentication endpoint.
const BUCKET: &str = "auth-checks";

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    let bad = Credential {
        access_key_id: gw.admin().access_key_id.clone(),
        secret: "not-the-secret".to_owned(),
    };
    let s3 = gw.client_as(&bad);
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("k")
        .body(random_bytes(100).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (403, "SignatureDoesNotMatch".to_owned()),
        "{e:?}"
    );
    assert!(!exists(&gw.client(), BUCKET, "k").await);
    let e = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (403, "SignatureDoesNotMatch".to_owned()));
    let e = s3.list_buckets().send().await.unwrap_err();
    assert_eq!(status_code(&e), (403, "SignatureDoesNotMatch".to_owned()));
}

#[tokio::test]
async fn unknown_key_is_invalid_access_key_id() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    let s3 = gw.client_as(&Credential::random("NOBODY"));
    let e = s3
        .put_object()
        .bucket(BUCKET)
        .key("k")
        .body(random_bytes(100).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (403, "InvalidAccessKeyId".to_owned()),
        "{e:?}"
    );
    assert!(!exists(&gw.client(), BUCKET, "k").await);
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (403, "InvalidAccessKeyId".to_owned()));
    // The backend's own credential is not a client credential.
    let e = gw
        .client_as(&Credential {
            access_key_id: "BACKEND".into(),
            secret: "x".into(),
        })
        .list_buckets()
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 403);
}

#[tokio::test]
async fn unsigned_and_stale_requests_are_refused() {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    put(&gw.client(), BUCKET, "k", random_bytes(100)).await;
    let path = format!("/{BUCKET}/k");

    // No signature at all.
    let host = gw.addr().to_string();
    let resp = rawhttp::exchange(
        gw.addr(),
        &rawhttp::head("GET", &path, &[("host".into(), host.clone())]),
        false,
    );
    assert_eq!(resp.status, 403, "{resp:?}");
    resp.assert_is_s3_error_document();

    // Signed an hour ago: outside the 15-minute window.
    let cred = gw.admin();
    let input = twofold::sigv4::SigningInput::<&str, &str> {
        method: "GET",
        host: &host,
        path: &path,
        query: twofold::sigv4::Query::None,
        headers: &[],
        payload: twofold::sigv4::PayloadMode::Unsigned,
    };
    let out = twofold::sigv4::sign(
        &input,
        &cred.access_key_id,
        &twofold::sigv4::Secret::new(cred.secret.clone()),
        "us-east-1",
        std::time::SystemTime::now() - Duration::from_secs(3600),
    )
    .unwrap();
    let mut headers = vec![("host".to_owned(), host.clone())];
    headers.extend(
        out.headers()
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let resp = rawhttp::exchange(gw.addr(), &rawhttp::head("GET", &path, &headers), false);
    resp.assert_s3_error(403, "RequestTimeTooSkewed");

    // Signed for another region.
    let out = twofold::sigv4::sign(
        &input,
        &cred.access_key_id,
        &twofold::sigv4::Secret::new(cred.secret.clone()),
        "eu-west-3",
        std::time::SystemTime::now(),
    )
    .unwrap();
    let mut headers = vec![("host".to_owned(), host)];
    headers.extend(
        out.headers()
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    let resp = rawhttp::exchange(gw.addr(), &rawhttp::head("GET", &path, &headers), false);
    assert!(resp.status == 400 || resp.status == 403, "{resp:?}");
    resp.assert_is_s3_error_document();
}

#[tokio::test]
async fn a_credential_limited_to_one_bucket() {
    let gw = TestGateway::start();
    let admin = gw.client();
    let limited = gw.client_as(gw.limited());
    create_bucket(&admin, LIMITED_BUCKET).await;
    create_bucket(&admin, "other").await;
    let theirs = random_bytes(1000);
    put(&admin, "other", "secret", theirs.clone()).await;

    // Its own bucket: everything works.
    let mine = random_bytes(70_000);
    put(&limited, LIMITED_BUCKET, "mine", mine.clone()).await;
    assert_eq!(get(&limited, LIMITED_BUCKET, "mine").await, mine);
    let listed = limited
        .list_objects_v2()
        .bucket(LIMITED_BUCKET)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);

    // Another bucket: AccessDenied for every kind of request, and nothing changes.
    let denied = |what: &str, status: u16, code: &str| {
        assert_eq!(
            (status, code),
            (403, "AccessDenied"),
            "{what} on another bucket"
        );
    };
    let e = limited
        .get_object()
        .bucket("other")
        .key("secret")
        .send()
        .await
        .unwrap_err();
    let (s, c) = status_code(&e);
    denied("GetObject", s, &c);
    let e = limited
        .head_object()
        .bucket("other")
        .key("secret")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 403, "HeadObject on another bucket");
    let e = limited
        .put_object()
        .bucket("other")
        .key("planted")
        .body(random_bytes(100).into())
        .send()
        .await
        .unwrap_err();
    let (s, c) = status_code(&e);
    denied("PutObject", s, &c);
    let e = limited
        .list_objects_v2()
        .bucket("other")
        .send()
        .await
        .unwrap_err();
    let (s, c) = status_code(&e);
    denied("ListObjectsV2", s, &c);
    let e = limited
        .delete_object()
        .bucket("other")
        .key("secret")
        .send()
        .await
        .unwrap_err();
    let (s, c) = status_code(&e);
    denied("DeleteObject", s, &c);
    let e = limited
        .create_bucket()
        .bucket("limited-new")
        .send()
        .await
        .unwrap_err();
    let (s, c) = status_code(&e);
    denied("CreateBucket", s, &c);
    // Copying out of a bucket it may not read, into one it may write.
    let e = limited
        .copy_object()
        .bucket(LIMITED_BUCKET)
        .key("stolen")
        .copy_source("other/secret")
        .send()
        .await
        .unwrap_err();
    let (s, c) = status_code(&e);
    denied("CopyObject from another bucket", s, &c);
    assert!(!exists(&admin, LIMITED_BUCKET, "stolen").await);
    assert!(!exists(&admin, "other", "planted").await);
    assert_eq!(get(&admin, "other", "secret").await, theirs);
}

#[tokio::test]
async fn list_buckets_with_a_limited_credential_names_only_its_buckets() {
    let gw = TestGateway::start();
    let admin = gw.client();
    create_bucket(&admin, LIMITED_BUCKET).await;
    create_bucket(&admin, "another-tenant").await;
    let limited = gw.client_as(gw.limited());
    match limited.list_buckets().send().await {
        Ok(out) => {
            let names: Vec<&str> = out.buckets().iter().filter_map(|b| b.name()).collect();
            assert!(
                !names.contains(&"another-tenant"),
                "a credential limited to [{LIMITED_BUCKET}] sees other buckets' names: {names:?}"
            );
        }
        Err(e) => assert_eq!(status_code(&e).0, 403, "{e:?}"),
    }
}

/// Sends a presigned request over a raw connection (any body given).
fn send_presigned(gw: &TestGateway, req: &PresignedRequest, body: &[u8]) -> Response {
    let uri = req.uri();
    let target = &uri[uri.find("://").map(|i| i + 3).unwrap()..];
    let target = &target[target.find('/').unwrap()..];
    let mut headers: Vec<(String, String)> = vec![("host".into(), gw.addr().to_string())];
    headers.extend(
        req.headers()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
            .map(|(n, v)| (n.to_owned(), v.to_owned())),
    );
    if req.method() == "PUT" {
        headers.push(("content-length".into(), body.len().to_string()));
    }
    let mut bytes = rawhttp::head(req.method(), target, &headers);
    bytes.extend_from_slice(body);
    rawhttp::exchange(gw.addr(), &bytes, req.method() == "HEAD")
}

#[tokio::test]
async fn presigned_get_and_put() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(3 * 65_536 + 5);

    // PUT through a presigned URL.
    let put_req = s3
        .put_object()
        .bucket(BUCKET)
        .key("pre")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    assert!(put_req.uri().contains("X-Amz-Signature="));
    let resp = send_presigned(&gw, &put_req, &plain);
    assert_eq!(resp.status, 200, "presigned PUT: {}", resp.text());
    assert!(resp.header("etag").is_some());
    assert_eq!(get(&s3, BUCKET, "pre").await, plain);
    gw.assert_no_plaintext_in_backend(&[&plain]);

    // GET through a presigned URL.
    let get_req = s3
        .get_object()
        .bucket(BUCKET)
        .key("pre")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let resp = send_presigned(&gw, &get_req, b"");
    assert_eq!(resp.status, 200, "presigned GET: {}", resp.text());
    assert!(resp.body == plain, "presigned GET body");
    assert_eq!(
        resp.header("x-amz-server-side-encryption"),
        Some("aws:kms:dsse")
    );

    // A ranged presigned GET (the range header is not signed).
    let uri = get_req.uri();
    let target = &uri[uri.find("://").unwrap() + 3..];
    let target = &target[target.find('/').unwrap()..];
    let resp = rawhttp::exchange(
        gw.addr(),
        &rawhttp::head(
            "GET",
            target,
            &[
                ("host".into(), gw.addr().to_string()),
                ("range".into(), "bytes=100-199".into()),
            ],
        ),
        false,
    );
    assert_eq!(resp.status, 206, "{}", resp.text());
    assert!(resp.body == plain[100..200]);

    // The URL of one key does not open another.
    let other = target.replace("/pre?", "/other?");
    let resp = rawhttp::exchange(
        gw.addr(),
        &rawhttp::head("GET", &other, &[("host".into(), gw.addr().to_string())]),
        false,
    );
    resp.assert_s3_error(403, "SignatureDoesNotMatch");

    // Nor does an altered signature.
    let last = target.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &target[..target.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let resp = rawhttp::exchange(
        gw.addr(),
        &rawhttp::head("GET", &flipped, &[("host".into(), gw.addr().to_string())]),
        false,
    );
    resp.assert_s3_error(403, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn expired_presigned_urls_are_access_denied() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(1000);
    put(&s3, BUCKET, "k", plain).await;
    let one_second = PresigningConfig::expires_in(Duration::from_secs(1)).unwrap();
    let get_req = s3
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .presigned(one_second.clone())
        .await
        .unwrap();
    let put_req = s3
        .put_object()
        .bucket(BUCKET)
        .key("late")
        .presigned(one_second)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let resp = send_presigned(&gw, &get_req, b"");
    resp.assert_s3_error(403, "AccessDenied");
    let resp = send_presigned(&gw, &put_req, &random_bytes(500));
    resp.assert_s3_error(403, "AccessDenied");
    assert!(!exists(&s3, BUCKET, "late").await);
}

/// Regression: a presigned URL with `X-Amz-Expires=0` was accepted within the second it was
/// signed in. S3 answers it as expired (403 AccessDenied, "Request has expired") whenever
/// it comes; a negative or over-a-week `X-Amz-Expires` is 400
/// AuthorizationQueryParametersError, with S3's messages.
#[tokio::test]
async fn presigned_url_valid_for_zero_seconds_has_expired() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    put(&s3, BUCKET, "k", random_bytes(100)).await;
    let zero = PresigningConfig::expires_in(Duration::ZERO).unwrap();
    let get_req = s3
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .presigned(zero.clone())
        .await
        .unwrap();
    assert!(
        get_req.uri().contains("X-Amz-Expires=0&"),
        "{}",
        get_req.uri()
    );
    let resp = send_presigned(&gw, &get_req, b"");
    resp.assert_s3_error(403, "AccessDenied");
    assert_eq!(
        rawhttp::xml_value(&resp.text(), "Message"),
        Some("Request has expired")
    );
    let put_req = s3
        .put_object()
        .bucket(BUCKET)
        .key("zero")
        .presigned(zero)
        .await
        .unwrap();
    let resp = send_presigned(&gw, &put_req, &random_bytes(500));
    resp.assert_s3_error(403, "AccessDenied");
    assert!(!exists(&s3, BUCKET, "zero").await);

    // The value is checked before the signature, so the URL changed here is refused for
    // its X-Amz-Expires, not for its signature.
    let uri = get_req.uri();
    let target = &uri[uri.find("://").unwrap() + 3..];
    let target = &target[target.find('/').unwrap()..];
    for (expires, message) in [
        ("-1", "X-Amz-Expires must be non-negative"),
        ("soon", "X-Amz-Expires should be a number"),
        (
            "604801",
            "X-Amz-Expires must be less than a week (in seconds); that is, the given \
             X-Amz-Expires must be less than 604800 seconds",
        ),
    ] {
        let changed = target.replace("X-Amz-Expires=0&", &format!("X-Amz-Expires={expires}&"));
        let resp = rawhttp::exchange(
            gw.addr(),
            &rawhttp::head("GET", &changed, &[("host".into(), gw.addr().to_string())]),
            false,
        );
        resp.assert_s3_error(400, "AuthorizationQueryParametersError");
        assert_eq!(
            rawhttp::xml_value(&resp.text(), "Message"),
            Some(message),
            "X-Amz-Expires={expires}"
        );
    }
}

#[tokio::test]
async fn presigned_url_of_a_limited_credential_on_another_bucket() {
    let gw = TestGateway::start();
    let admin = gw.client();
    create_bucket(&admin, "other").await;
    put(&admin, "other", "k", random_bytes(100)).await;
    let limited = gw.client_as(gw.limited());
    let req = limited
        .get_object()
        .bucket("other")
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let resp = send_presigned(&gw, &req, b"");
    resp.assert_s3_error(403, "AccessDenied");
}
