//! A bucket grant is the bucket's data, not its administration.
//!
//! Every request is re-signed with the gateway's all-powerful backend identity, so a
//! credential granted a bucket could set its policy or ACLs (opening it to principals who
//! bypass the gateway and write plaintext), its replication, logging, object lock, ...: each
//! of these now needs the credential's `read_config` or `admin` grant, and is refused with
//! 403 AccessDenied without it, before anything reaches the backend. With the grant the
//! request reaches the backend (s3s-fs implements no bucket configuration, so its answer is
//! 501 NotImplemented: proof that it got there).

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::s3::Grants;
use twofold_tests::gateway::{
    Credential, Options, RawRequest, TestGateway, create_bucket, exists, put,
};
use twofold_tests::rawhttp::Response;

const BUCKET: &str = "granted";

/// A gateway with three credentials on [`BUCKET`]: data only, read_config, admin.
struct Setup {
    gw: TestGateway,
    data: Credential,
    reader: Credential,
    admin: Credential,
}

async fn setup() -> Setup {
    let data = Credential::random("DATA");
    let reader = Credential::random("READER");
    let admin = Credential::random("BUCKETADMIN");
    let read_config = Grants {
        read_config: true,
        admin: false,
    };
    let gw = TestGateway::start_with(Options {
        extra_credentials: vec![
            data.configured(Some(&[BUCKET]), Grants::default()),
            reader.configured(Some(&[BUCKET]), read_config),
            admin.configured(Some(&[BUCKET]), Grants::ADMIN),
        ],
        ..Options::default()
    });
    create_bucket(&gw.client_as(&data), BUCKET).await;
    put(&gw.client_as(&data), BUCKET, "k", b"an object".to_vec()).await;
    Setup {
        gw,
        data,
        reader,
        admin,
    }
}

/// `(method, query, body)` of a request on [`BUCKET`].
type Op = (&'static str, &'static str, &'static str);

const READ_CONFIG_OPS: &[Op] = &[
    ("GET", "acl=", ""),
    ("GET", "policy=", ""),
    ("GET", "versioning=", ""),
    ("GET", "lifecycle=", ""),
    ("GET", "replication=", ""),
    ("GET", "object-lock=", ""),
];

const ADMIN_OPS: &[Op] = &[
    (
        "PUT",
        "policy=",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::granted/*"}]}"#,
    ),
    ("PUT", "acl=", ""),
    (
        "PUT",
        "versioning=",
        "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
    ),
    ("PUT", "replication=", "<ReplicationConfiguration/>"),
    ("PUT", "logging=", "<BucketLoggingStatus/>"),
    ("PUT", "notification=", "<NotificationConfiguration/>"),
    ("PUT", "object-lock=", "<ObjectLockConfiguration/>"),
    ("PUT", "website=", "<WebsiteConfiguration/>"),
    ("DELETE", "cors=", ""),
    ("DELETE", "policy=", ""),
    ("GET", "session=", ""),
];

fn send_op(gw: &TestGateway, cred: &Credential, (method, query, body): Op) -> Response {
    gw.send_signed(
        cred,
        &RawRequest {
            method,
            path: "/granted",
            query: Some(query),
            body: body.as_bytes(),
            ..RawRequest::default()
        },
    )
}

#[track_caller]
fn assert_denied(resp: &Response, what: &str) {
    resp.assert_s3_error(403, "AccessDenied");
    assert!(
        resp.text().contains("<Message>Access Denied</Message>"),
        "{what}"
    );
}

#[track_caller]
fn assert_passed(resp: &Response, what: &str) {
    assert_ne!(
        resp.s3_code().as_deref(),
        Some("AccessDenied"),
        "{what}: {}",
        resp.text()
    );
}

#[tokio::test]
async fn reading_configuration_needs_read_config() {
    let s = setup().await;
    for &op in READ_CONFIG_OPS {
        let what = format!("{} ?{}", op.0, op.1);
        assert_denied(&send_op(&s.gw, &s.data, op), &what);
        assert_passed(&send_op(&s.gw, &s.reader, op), &what);
        assert_passed(&send_op(&s.gw, &s.admin, op), &what);
    }
}

#[tokio::test]
async fn regression_a_bucket_grant_cannot_change_bucket_configuration() {
    let s = setup().await;
    for &op in ADMIN_OPS {
        let what = format!("{} ?{}", op.0, op.1);
        assert_denied(&send_op(&s.gw, &s.data, op), &what);
        assert_denied(&send_op(&s.gw, &s.reader, op), &what);
        assert_passed(&send_op(&s.gw, &s.admin, op), &what);
    }
}

#[tokio::test]
async fn data_operations_need_no_grant() {
    let s = setup().await;
    for (method, query) in [("GET", "location="), ("GET", "list-type=2"), ("HEAD", "")] {
        let resp = s.gw.send_signed(
            &s.data,
            &RawRequest {
                method,
                path: "/granted",
                query: (!query.is_empty()).then_some(query),
                ..RawRequest::default()
            },
        );
        assert_eq!(resp.status, 200, "{method} ?{query}: {}", resp.text());
    }
    let tagged =
        s.gw.client_as(&s.data)
            .put_object_tagging()
            .bucket(BUCKET)
            .key("k")
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .tag_set(
                        aws_sdk_s3::types::Tag::builder()
                            .key("t")
                            .value("v")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await;
    if let Err(e) = tagged {
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
        assert_ne!(code.as_deref(), Some("AccessDenied"), "{e:?}");
    }
}

/// Headers that open an object or bucket to others, lock it, or bypass a lock.
#[tokio::test]
async fn regression_grant_acl_and_lock_headers_need_admin() {
    let s = setup().await;
    for headers in [
        &[(
            "x-amz-grant-read",
            "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
        )][..],
        &[("x-amz-grant-full-control", "id=\"someone-else\"")],
        &[("x-amz-acl", "public-read")],
        &[("x-amz-acl", "public-read-write")],
        &[
            ("x-amz-object-lock-mode", "COMPLIANCE"),
            (
                "x-amz-object-lock-retain-until-date",
                "2099-01-01T00:00:00Z",
            ),
        ],
    ] {
        let put = |cred| {
            s.gw.send_signed(
                cred,
                &RawRequest {
                    method: "PUT",
                    path: "/granted/opened",
                    headers,
                    body: b"would be public",
                    ..RawRequest::default()
                },
            )
        };
        assert_denied(&put(&s.data), &format!("PutObject {headers:?}"));
        assert_denied(&put(&s.reader), &format!("PutObject {headers:?}"));
        assert!(s.gw.stored(BUCKET, "opened").is_none(), "{headers:?}");
    }
    // A private canned ACL is no grant to anyone.
    let resp = s.gw.send_signed(
        &s.data,
        &RawRequest {
            method: "PUT",
            path: "/granted/private",
            headers: &[("x-amz-acl", "private")],
            body: b"private",
            ..RawRequest::default()
        },
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    // The admin may.
    let resp = s.gw.send_signed(
        &s.admin,
        &RawRequest {
            method: "PUT",
            path: "/granted/opened",
            headers: &[("x-amz-acl", "public-read")],
            body: b"the admin's choice",
            ..RawRequest::default()
        },
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test]
async fn regression_bypass_governance_retention_needs_admin() {
    let s = setup().await;
    for (method, query, body) in [
        ("DELETE", None, &b""[..]),
        (
            "PUT",
            Some("retention="),
            b"<Retention><Mode>GOVERNANCE</Mode></Retention>",
        ),
    ] {
        let resp = s.gw.send_signed(
            &s.data,
            &RawRequest {
                method,
                path: "/granted/k",
                query,
                headers: &[("x-amz-bypass-governance-retention", "true")],
                body,
                ..RawRequest::default()
            },
        );
        assert_denied(&resp, &format!("{method} {query:?} bypassing governance"));
    }
    let delete = aws_sdk_s3::types::Delete::builder()
        .objects(
            aws_sdk_s3::types::ObjectIdentifier::builder()
                .key("k")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e =
        s.gw.client_as(&s.data)
            .delete_objects()
            .bucket(BUCKET)
            .delete(delete)
            .bypass_governance_retention(true)
            .send()
            .await
            .unwrap_err();
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&e),
        Some("AccessDenied")
    );
    assert!(s.gw.stored(BUCKET, "k").is_some());
    assert!(exists(&s.gw.client(), BUCKET, "k").await);
}

#[tokio::test]
async fn regression_public_or_locked_bucket_creation_needs_admin() {
    let data = Credential::random("DATA");
    let gw = TestGateway::start_with(Options {
        extra_credentials: vec![data.configured(None, Grants::default())],
        ..Options::default()
    });
    for (bucket, headers) in [
        ("public-bucket", &[("x-amz-acl", "public-read-write")][..]),
        (
            "granting-bucket",
            &[(
                "x-amz-grant-write",
                "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
            )],
        ),
        (
            "locked-bucket",
            &[("x-amz-bucket-object-lock-enabled", "true")],
        ),
        ("acl-bucket", &[("x-amz-object-ownership", "ObjectWriter")]),
    ] {
        let path = format!("/{bucket}");
        let resp = gw.send_signed(
            &data,
            &RawRequest {
                method: "PUT",
                path: &path,
                headers,
                ..RawRequest::default()
            },
        );
        assert_denied(&resp, &format!("CreateBucket {headers:?}"));
        let on_backend = gw
            .backend_client()
            .head_bucket()
            .bucket(bucket)
            .send()
            .await;
        assert!(on_backend.is_err(), "{bucket} was created on the backend");
    }
    // Without those headers, creating a bucket is data access.
    let resp = gw.send_signed(
        &data,
        &RawRequest {
            method: "PUT",
            path: "/plain-bucket",
            headers: &[("x-amz-acl", "private")],
            ..RawRequest::default()
        },
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
}
