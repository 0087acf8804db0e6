//! Browser-form uploads (POST Object with a SigV4 POST policy), sent over a raw socket the
//! way a browser sends them: the file is sealed like a PutObject and reads back through the
//! gateway, the backend holds no plaintext, and every broken condition, signature or
//! credential is refused with S3's error and nothing stored.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use std::time::{Duration, SystemTime};
use twofold::s3::post_form;
use twofold::s3::post_policy;
use twofold::sigv4::{Secret, sign_post_policy};
use twofold_tests::gateway::{Credential, REGION, TestGateway, create_bucket, get};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp::{self, Response, xml_value};

const BUCKET: &str = "post-uploads";
const BOUNDARY: &str = "----twofoldFormBoundaryQ3b7";
/// The gateway's limit on a form's whole body (`serve::object::post::POST_FORM_BYTES_MAX`:
/// 5 GiB of file and 64 KiB of fields).
const POST_FORM_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024 + 64 * 1024;
const MIB: usize = 1024 * 1024;

/// `YYYY-MM-DDTHH:MM:SSZ` of `t`.
fn iso(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    DateTime::from_secs(i64::try_from(secs).unwrap())
        .fmt(DateTimeFormat::DateTime)
        .unwrap()
}

/// A form as a browser page would hold it: the fields its policy was made for.
struct FormSpec {
    /// Signs it (and is named in `x-amz-credential`).
    cred: Credential,
    /// The policy's `expiration`.
    expiration: SystemTime,
    /// The policy's conditions, besides those on the signature's own fields.
    conditions: Vec<String>,
    /// The form's fields, besides the signature's own.
    fields: Vec<(String, String)>,
    /// Replaces the computed signature when set.
    signature: Option<String>,
}

impl FormSpec {
    fn new(gw: &TestGateway, key: &str) -> Self {
        FormSpec {
            cred: gw.admin().clone(),
            expiration: SystemTime::now() + Duration::from_secs(600),
            conditions: vec![
                format!(r#"{{"bucket": "{BUCKET}"}}"#),
                r#"["starts-with", "$key", "uploads/"]"#.to_owned(),
                r#"["content-length-range", 1, 10485760]"#.to_owned(),
            ],
            fields: vec![("key".to_owned(), key.to_owned())],
            signature: None,
        }
    }

    fn field(mut self, name: &str, value: &str, condition: Option<&str>) -> Self {
        self.fields.push((name.to_owned(), value.to_owned()));
        if let Some(c) = condition {
            self.conditions.push(c.to_owned());
        }
        self
    }

    /// The form body and its Content-Type.
    fn body(&self, filename: &str, data: &[u8]) -> Vec<u8> {
        let now = SystemTime::now();
        let amz_date: String = iso(now)
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let day = &amz_date[..8];
        let credential = format!("{}/{day}/{REGION}/s3/aws4_request", self.cred.access_key_id);
        let mut conditions = self.conditions.clone();
        conditions.push(r#"{"x-amz-algorithm": "AWS4-HMAC-SHA256"}"#.to_owned());
        conditions.push(format!(r#"{{"x-amz-credential": "{credential}"}}"#));
        conditions.push(format!(r#"{{"x-amz-date": "{amz_date}"}}"#));
        let json = format!(
            r#"{{"expiration": "{}", "conditions": [{}]}}"#,
            iso(self.expiration),
            conditions.join(", ")
        );
        let policy = post_policy::encode(&json);
        let signature = self.signature.clone().unwrap_or_else(|| {
            sign_post_policy(
                &Secret::new(self.cred.secret.as_str()),
                day,
                REGION,
                &policy,
            )
        });
        let mut fields: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        fields.extend([
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-credential", credential.as_str()),
            ("x-amz-date", amz_date.as_str()),
            ("Policy", policy.as_str()),
            ("X-Amz-Signature", signature.as_str()),
        ]);
        post_form::encode(BOUNDARY, &fields, filename, data)
    }
}

/// POSTs a form body to the bucket, as a browser would (no Authorization header).
fn post(gw: &TestGateway, body: &[u8]) -> Response {
    let headers = vec![
        ("host".to_owned(), gw.addr().to_string()),
        (
            "content-type".to_owned(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
        ("content-length".to_owned(), body.len().to_string()),
    ];
    let mut bytes = rawhttp::head("POST", &format!("/{BUCKET}"), &headers);
    bytes.extend_from_slice(body);
    rawhttp::exchange(gw.addr(), &bytes, false)
}

async fn gateway() -> TestGateway {
    let gw = TestGateway::start();
    create_bucket(&gw.client(), BUCKET).await;
    gw
}

#[tokio::test]
async fn a_browser_form_upload_is_sealed_and_reads_back() {
    let gw = gateway().await;
    let data = random_bytes(200_000);
    let form = FormSpec::new(&gw, "uploads/${filename}")
        .field(
            "Content-Type",
            "image/png",
            Some(r#"["starts-with", "$Content-Type", "image/"]"#),
        )
        .field(
            "x-amz-meta-colour",
            "blue",
            Some(r#"{"x-amz-meta-colour": "blue"}"#),
        )
        .field(
            "success_action_status",
            "201",
            Some(r#"{"success_action_status": "201"}"#),
        )
        .field("x-ignore-tracking", "anything", None);
    let resp = post(&gw, &form.body("cat.png", &data));
    assert_eq!(resp.status, 201, "{}", resp.text());
    let xml = resp.text();
    assert_eq!(xml_value(&xml, "Key"), Some("uploads/cat.png"), "{xml}");
    assert_eq!(xml_value(&xml, "Bucket"), Some(BUCKET), "{xml}");
    let etag = resp.header("etag").unwrap().to_owned();
    assert_eq!(
        xml_value(&xml, "ETag").map(|e| e.replace("&quot;", "\"")),
        Some(etag.clone())
    );
    assert_eq!(
        resp.header("x-amz-server-side-encryption"),
        Some("aws:kms:dsse")
    );

    let s3 = gw.client();
    assert_eq!(get(&s3, BUCKET, "uploads/cat.png").await, data);
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("uploads/cat.png")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(head.content_length(), Some(data.len() as i64));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("colour"))
            .map(String::as_str),
        Some("blue")
    );
    gw.assert_no_plaintext_in_backend(&[&data]);
}

#[tokio::test]
async fn the_answer_follows_success_action_redirect_and_status() {
    let gw = gateway().await;
    let data = random_bytes(1000);
    let plain = post(&gw, &FormSpec::new(&gw, "uploads/default").body("f", &data));
    assert_eq!(plain.status, 204, "{}", plain.text());
    assert!(plain.header("etag").is_some());
    let redirect = FormSpec::new(&gw, "uploads/redirected").field(
        "success_action_redirect",
        "https://app.example/done",
        Some(r#"["starts-with", "$success_action_redirect", "https://app.example/"]"#),
    );
    let resp = post(&gw, &redirect.body("f", &data));
    assert_eq!(resp.status, 303, "{}", resp.text());
    let location = resp.header("location").unwrap();
    assert!(
        location.starts_with(&format!(
            "https://app.example/done?bucket={BUCKET}&key=uploads%2Fredirected&etag=%22"
        )),
        "{location}"
    );
    let s3 = gw.client();
    assert_eq!(get(&s3, BUCKET, "uploads/redirected").await, data);
    assert_eq!(get(&s3, BUCKET, "uploads/default").await, data);
}

#[tokio::test]
async fn each_broken_form_is_refused_and_nothing_is_stored() {
    let gw = gateway().await;
    let small = random_bytes(100);
    let stranger = Credential::random("STRANGER");
    let cases: Vec<(&str, FormSpec, Vec<u8>, u16, &str)> = vec![
        (
            "expired",
            {
                let mut f = FormSpec::new(&gw, "uploads/expired");
                f.expiration = SystemTime::now() - Duration::from_secs(60);
                f
            },
            small.clone(),
            403,
            "AccessDenied",
        ),
        (
            "wrong signature",
            FormSpec {
                signature: Some("0".repeat(64)),
                ..FormSpec::new(&gw, "uploads/badsig")
            },
            small.clone(),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "unknown credential",
            FormSpec {
                cred: stranger.clone(),
                ..FormSpec::new(&gw, "uploads/stranger")
            },
            small.clone(),
            403,
            "InvalidAccessKeyId",
        ),
        (
            "eq mismatch",
            FormSpec::new(&gw, "uploads/eq").field(
                "Content-Type",
                "text/html",
                Some(r#"["eq", "$Content-Type", "text/plain"]"#),
            ),
            small.clone(),
            403,
            "AccessDenied",
        ),
        (
            "starts-with mismatch",
            FormSpec::new(&gw, "elsewhere/key"),
            small.clone(),
            403,
            "AccessDenied",
        ),
        (
            "too small",
            FormSpec::new(&gw, "uploads/empty"),
            Vec::new(),
            400,
            "EntityTooSmall",
        ),
        (
            "too large for the policy",
            {
                let mut f = FormSpec::new(&gw, "uploads/big");
                f.conditions[2] = r#"["content-length-range", 1, 50]"#.to_owned();
                f
            },
            small.clone(),
            400,
            "EntityTooLarge",
        ),
        (
            "field not in the policy",
            FormSpec::new(&gw, "uploads/extra").field("x-amz-meta-sneaky", "1", None),
            small.clone(),
            403,
            "AccessDenied",
        ),
        (
            "wrong bucket",
            {
                let mut f = FormSpec::new(&gw, "uploads/bucket");
                f.conditions[0] = r#"{"bucket": "another-bucket"}"#.to_owned();
                f
            },
            small.clone(),
            403,
            "AccessDenied",
        ),
        (
            "dot segment in the key",
            FormSpec::new(&gw, "uploads/../escape"),
            small.clone(),
            400,
            "InvalidArgument",
        ),
        (
            "streamed, over the policy's content-length-range",
            FormSpec::new(&gw, "uploads/huge"),
            random_bytes(10 * MIB + 1),
            400,
            "EntityTooLarge",
        ),
    ];
    for (what, form, data, status, code) in cases {
        let key = form.fields[0].1.clone();
        let resp = post(&gw, &form.body("f", &data));
        assert_eq!(
            (resp.status, resp.s3_code().as_deref()),
            (status, Some(code)),
            "{what}: {}",
            resp.text()
        );
        assert!(
            gw.stored(BUCKET, &key).is_none(),
            "{what}: {key} was stored"
        );
    }
}

#[tokio::test]
async fn a_credential_may_post_only_to_its_buckets() {
    let gw = gateway().await;
    let form = FormSpec {
        cred: gw.limited().clone(),
        ..FormSpec::new(&gw, "uploads/limited")
    };
    let resp = post(&gw, &form.body("f", b"limited credential"));
    resp.assert_s3_error(403, "AccessDenied");
    assert!(gw.stored(BUCKET, "uploads/limited").is_none());
}

#[tokio::test]
async fn a_post_that_is_no_form_is_refused() {
    let gw = gateway().await;
    let body = b"not a form";
    let headers = vec![
        ("host".to_owned(), gw.addr().to_string()),
        ("content-type".to_owned(), "text/plain".to_owned()),
        ("content-length".to_owned(), body.len().to_string()),
    ];
    let mut bytes = rawhttp::head("POST", &format!("/{BUCKET}"), &headers);
    bytes.extend_from_slice(body);
    rawhttp::exchange(gw.addr(), &bytes, false).assert_s3_error(400, "MalformedPOSTRequest");
    // A body over the gateway's form limit is refused before it is read.
    let headers = vec![
        ("host".to_owned(), gw.addr().to_string()),
        (
            "content-type".to_owned(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
        (
            "content-length".to_owned(),
            (POST_FORM_BYTES_MAX + 1).to_string(),
        ),
    ];
    let head_only = rawhttp::head("POST", &format!("/{BUCKET}"), &headers);
    rawhttp::exchange(gw.addr(), &head_only, false).assert_s3_error(400, "EntityTooLarge");
    // A form without a policy is an anonymous upload: refused.
    let anon = post_form::encode(BOUNDARY, &[("key", "uploads/anon")], "f", b"data");
    post(&gw, &anon).assert_s3_error(403, "AccessDenied");
    assert!(gw.stored(BUCKET, "uploads/anon").is_none());
}

/// The signature and policy are checked before the file is read: a forged form is answered
/// once its fields arrived, without waiting for (or holding) its file.
#[tokio::test]
async fn a_forged_form_is_refused_before_its_file_is_read() {
    let gw = gateway().await;
    let form = FormSpec {
        signature: Some("0".repeat(64)),
        ..FormSpec::new(&gw, "uploads/forged")
    };
    let body = form.body("f", &random_bytes(4 * 1024 * 1024));
    let headers = vec![
        ("host".to_owned(), gw.addr().to_string()),
        (
            "content-type".to_owned(),
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
        ("content-length".to_owned(), body.len().to_string()),
    ];
    // Only the first 100 KiB are sent; the answer comes all the same.
    let mut bytes = rawhttp::head("POST", &format!("/{BUCKET}"), &headers);
    bytes.extend_from_slice(&body[..100 * 1024]);
    rawhttp::exchange(gw.addr(), &bytes, false).assert_s3_error(403, "SignatureDoesNotMatch");
    assert!(gw.stored(BUCKET, "uploads/forged").is_none());
}

/// A form over 5 MiB is streamed: its file is sealed as it arrives, in bounded memory; one
/// whose file is not its last part, or that ends otherwise than with the closing
/// delimiter, stores nothing.
#[tokio::test]
async fn a_large_form_is_streamed_and_one_that_does_not_end_with_its_file_stores_nothing() {
    let gw = gateway().await;
    let data = random_bytes(8 * MIB + 3);
    let form = FormSpec::new(&gw, "uploads/streamed").field(
        "success_action_status",
        "201",
        Some(r#"{"success_action_status": "201"}"#),
    );
    let resp = post(&gw, &form.body("big.bin", &data));
    assert_eq!(resp.status, 201, "{}", resp.text());
    let got = twofold_tests::gateway::get(&gw.client(), BUCKET, "uploads/streamed").await;
    assert!(got == data, "the streamed file reads back");
    gw.assert_no_plaintext_in_backend(&[&data]);

    // A field after the file: its part would be taken into the file; refused instead.
    let form = FormSpec::new(&gw, "uploads/trailing");
    let mut body = form.body("big.bin", &data);
    let closing = format!("\r\n--{BOUNDARY}--\r\n");
    body.truncate(body.len() - closing.len());
    body.extend_from_slice(
        format!(
            "\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"after\"\r\n\r\nv{closing}"
        )
        .as_bytes(),
    );
    let resp = post(&gw, &body);
    assert_eq!(
        (resp.status, resp.s3_code().as_deref()),
        (400, Some("MalformedPOSTRequest")),
        "{}",
        resp.text()
    );
    assert!(gw.stored(BUCKET, "uploads/trailing").is_none());
    // No CRLF after the closing delimiter: the last bytes are not what the stream expects.
    let form = FormSpec::new(&gw, "uploads/no-crlf");
    let mut body = form.body("big.bin", &data);
    body.truncate(body.len() - 2);
    let resp = post(&gw, &body);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(gw.stored(BUCKET, "uploads/no-crlf").is_none());
}
