//! Keys with `.` or `..` segments, or beginning with `/`, cannot reach another bucket.
//!
//! A review found that with two tenants on the dev backend (s3s-fs, which joins bucket and key
//! as paths), tenant A, granted only `bucket-a`, overwrote and then deleted tenant B's object
//! with `PUT`/`DELETE /bucket-a/../bucket-b/secret.txt`, signed by the gateway's backend
//! identity. Every test here sends such a key in one more form, signed by tenant A over a raw
//! socket (an SDK would normalise some of them), expects 400 InvalidArgument (MalformedXML for
//! what no parser should guess at), and checks on the backend that B's object is unchanged.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use twofold::s3::Grants;
use twofold_tests::gateway::{
    Credential, Options, RawRequest, TestGateway, create_bucket, exists, put,
};
use twofold_tests::rawhttp::Response;

const BUCKET_A: &str = "bucket-a";
const BUCKET_B: &str = "bucket-b";
const SECRET: &str = "secret.txt";

/// Two tenants, each granted one bucket, B's secret stored.
struct Tenants {
    gw: TestGateway,
    a: Credential,
    secret_stored: Vec<u8>,
}

async fn tenants() -> Tenants {
    let a = Credential::random("TENANTA");
    let b = Credential::random("TENANTB");
    let gw = TestGateway::start_with(Options {
        extra_credentials: vec![
            a.configured(Some(&[BUCKET_A]), Grants::default()),
            b.configured(Some(&[BUCKET_B]), Grants::default()),
        ],
        ..Options::default()
    });
    let (sa, sb) = (gw.client_as(&a), gw.client_as(&b));
    create_bucket(&sa, BUCKET_A).await;
    create_bucket(&sb, BUCKET_B).await;
    put(
        &sb,
        BUCKET_B,
        SECRET,
        b"tenant B's secret, not A's".to_vec(),
    )
    .await;
    put(&sa, BUCKET_A, "mine", b"tenant A's own object".to_vec()).await;
    let secret_stored = gw.stored(BUCKET_B, SECRET).unwrap();
    Tenants {
        gw,
        a,
        secret_stored,
    }
}

impl Tenants {
    fn send(&self, req: RawRequest<'_>) -> Response {
        self.gw.send_signed(&self.a, &req)
    }

    /// B's object is on the backend, byte for byte as before, and is B's only object.
    async fn assert_b_untouched(&self, what: &str) {
        assert_eq!(
            self.gw.stored(BUCKET_B, SECRET).as_deref(),
            Some(&self.secret_stored[..]),
            "{what}: tenant B's object changed or went"
        );
        let listed = self
            .gw
            .backend_client()
            .list_objects_v2()
            .bucket(BUCKET_B)
            .send()
            .await
            .unwrap();
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, [SECRET], "{what}: bucket-b on the backend");
    }
}

#[track_caller]
fn assert_invalid_argument(resp: &Response, what: &str) {
    assert_eq!(resp.status, 400, "{what}: {}", resp.text());
    resp.assert_s3_error(400, "InvalidArgument");
}

/// Keys (as written in the path after `/bucket-a/`) that a path join takes to bucket-b.
const CROSSING_KEYS: &[&str] = &[
    "../bucket-b/secret.txt",
    "%2E%2E/bucket-b/secret.txt",
    "%2e%2E%2Fbucket-b%2Fsecret.txt",
    ".%2e/bucket-b/secret.txt",
    "x/../../bucket-b/secret.txt",
    "./../bucket-b/secret.txt",
    "/bucket-b/secret.txt",
    "%2Fbucket-b/secret.txt",
    "..%5Cbucket-b%5Csecret.txt",
];

#[tokio::test]
async fn regression_path_style_dot_segments_cannot_overwrite_or_delete_another_bucket() {
    let t = tenants().await;
    for key in CROSSING_KEYS {
        let path = format!("/{BUCKET_A}/{key}");
        for (method, body) in [("PUT", &b"overwritten by A"[..]), ("DELETE", b"")] {
            let resp = t.send(RawRequest {
                method,
                path: &path,
                body,
                ..RawRequest::default()
            });
            assert_invalid_argument(&resp, &format!("{method} {path}"));
        }
    }
    t.assert_b_untouched("path-style").await;
}

#[tokio::test]
async fn regression_virtual_hosted_dot_segments_cannot_overwrite_or_delete_another_bucket() {
    let t = tenants().await;
    let host = format!("{BUCKET_A}.localhost:{}", t.gw.port());
    for key in CROSSING_KEYS {
        let path = format!("/{key}");
        for (method, body) in [("PUT", &b"overwritten by A"[..]), ("DELETE", b"")] {
            let resp = t.send(RawRequest {
                method,
                path: &path,
                host: Some(&host),
                body,
                ..RawRequest::default()
            });
            assert_invalid_argument(&resp, &format!("{method} {host}{path}"));
        }
    }
    t.assert_b_untouched("virtual-hosted").await;
}

/// CopyObject from a dot-segment source would copy B's object into A's bucket, where A can
/// read it.
#[tokio::test]
async fn regression_copy_source_with_dot_segments_cannot_read_another_bucket() {
    let t = tenants().await;
    for source in [
        "bucket-a/../bucket-b/secret.txt",
        "/bucket-a/%2E%2E/bucket-b/secret.txt",
        "bucket-a%2F%2e%2e%2Fbucket-b%2Fsecret.txt",
        "bucket-a//bucket-b/secret.txt",
    ] {
        let resp = t.send(RawRequest {
            method: "PUT",
            path: "/bucket-a/stolen",
            headers: &[("x-amz-copy-source", source)],
            ..RawRequest::default()
        });
        assert_invalid_argument(&resp, &format!("CopyObject from {source}"));
    }
    assert!(t.gw.stored(BUCKET_A, "stolen").is_none());
    assert!(!exists(&t.gw.client(), BUCKET_A, "stolen").await);
    t.assert_b_untouched("CopyObject").await;
}

#[tokio::test]
async fn regression_upload_part_copy_source_with_dot_segments_cannot_read_another_bucket() {
    let t = tenants().await;
    let upload =
        t.gw.client_as(&t.a)
            .create_multipart_upload()
            .bucket(BUCKET_A)
            .key("parts")
            .send()
            .await
            .unwrap();
    let id = upload.upload_id().unwrap();
    let query = format!("partNumber=1&uploadId={}", percent_encode(id));
    for source in [
        "bucket-a/../bucket-b/secret.txt",
        "bucket-a/%2E%2E%2Fbucket-b%2Fsecret.txt",
        "bucket-a//bucket-b/secret.txt",
    ] {
        let resp = t.send(RawRequest {
            method: "PUT",
            path: "/bucket-a/parts",
            query: Some(&query),
            headers: &[("x-amz-copy-source", source)],
            ..RawRequest::default()
        });
        assert_invalid_argument(&resp, &format!("UploadPartCopy from {source}"));
    }
    t.assert_b_untouched("UploadPartCopy").await;
}

fn delete_body(key_xml: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Object><Key>{key_xml}</Key></Object><Quiet>true</Quiet></Delete>"
    )
}

fn delete_objects(t: &Tenants, body: &str) -> Response {
    use md5::Digest as _;
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
    t.send(RawRequest {
        method: "POST",
        path: "/bucket-a",
        query: Some("delete="),
        headers: &[("content-md5", &md5), ("content-type", "application/xml")],
        body: body.as_bytes(),
        ..RawRequest::default()
    })
}

#[tokio::test]
async fn regression_delete_objects_keys_with_dot_segments_cannot_delete_in_another_bucket() {
    let t = tenants().await;
    for key in [
        "../bucket-b/secret.txt",
        "&#46;&#46;/bucket-b/secret.txt",
        "&#x2E;.&#x2F;bucket-b&#47;secret.txt",
        "<![CDATA[../bucket-b/secret.txt]]>",
        "/bucket-b/secret.txt",
        " ../bucket-b/secret.txt ",
    ] {
        let resp = delete_objects(&t, &delete_body(key));
        assert_invalid_argument(&resp, &format!("DeleteObjects <Key>{key}</Key>"));
    }
    let with_entity = format!(
        "<!DOCTYPE Delete [<!ENTITY up \"..\">]>{}",
        delete_body("&up;/bucket-b/secret.txt")
    );
    delete_objects(&t, &with_entity).assert_s3_error(400, "MalformedXML");
    t.assert_b_untouched("DeleteObjects").await;
    // An ordinary DeleteObjects still deletes.
    let resp = delete_objects(&t, &delete_body("mine"));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(t.gw.stored(BUCKET_A, "mine").is_none());
}

#[tokio::test]
async fn regression_listing_prefixes_with_dot_segments_are_refused() {
    let t = tenants().await;
    for query in [
        "prefix=..%2Fbucket-b%2F",
        "prefix=%2E%2E",
        "list-type=2&prefix=..%2Fbucket-b",
        "list-type=2&start-after=..%2Fbucket-b%2Fa",
        "marker=%2Fbucket-b",
        "key-marker=..%2Fbucket-b&uploads=",
    ] {
        let resp = t.send(RawRequest {
            method: "GET",
            path: "/bucket-a",
            query: Some(query),
            ..RawRequest::default()
        });
        assert_invalid_argument(&resp, &format!("GET /bucket-a?{query}"));
    }
    // A prefix ending in a single dot is the start of hidden names, and stays allowed.
    let resp = t.send(RawRequest {
        method: "GET",
        path: "/bucket-a",
        query: Some("list-type=2&prefix=."),
        ..RawRequest::default()
    });
    assert_eq!(resp.status, 200, "{}", resp.text());
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
