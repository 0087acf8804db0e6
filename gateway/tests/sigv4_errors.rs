//! SigV4 verification failures: each way a request can be stale, tampered with, misrouted
//! or malformed gives the S3 error S3 gives. Requests are made with the gateway's own
//! signer (which `sigv4_vectors.rs` pins to the AWS examples) and then changed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use twofold::sigv4::canonical;
use twofold::sigv4::{
    AuthError, AuthMethod, PayloadMode, Query, RequestParts, Secret, SigningInput, SigningKey,
    Verified, presign, sign, verify,
};

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HOST: &str = "gateway.example:8443";
const REGION: &str = "eu-west-1";
/// 2025-01-01T00:00:00Z.
const T0: u64 = 1_735_689_600;

type Headers = Vec<(String, Vec<u8>)>;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn lookup(k: &str) -> Option<Secret> {
    (k == AKID).then(|| Secret::new(SECRET))
}

/// A signed request: method, target, headers (the signer's three added).
struct Req {
    method: &'static str,
    target: String,
    headers: Headers,
}

impl Req {
    fn verify_at(&self, now: u64) -> Result<Verified, AuthError> {
        verify(
            &RequestParts {
                method: self.method,
                target: &self.target,
                headers: &self.headers,
            },
            at(now),
            &[REGION, "us-east-1"],
            &lookup,
        )
    }

    fn verify(&self) -> Result<Verified, AuthError> {
        self.verify_at(T0)
    }

    fn set(&mut self, name: &str, value: &str) {
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(h) => h.1 = value.as_bytes().to_vec(),
            None => self.headers.push((name.into(), value.as_bytes().to_vec())),
        }
    }

    fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

fn signed_with(
    method: &'static str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    payload: PayloadMode,
    secret: &str,
    region: &str,
) -> Req {
    let mut headers: Headers = vec![("Host".into(), HOST.as_bytes().to_vec())];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())),
    );
    let out = sign(
        &SigningInput {
            method,
            host: HOST,
            path,
            query: if query.is_empty() {
                Query::None
            } else {
                Query::Raw(query)
            },
            headers: &headers,
            payload,
        },
        AKID,
        &Secret::new(secret),
        region,
        at(T0),
    )
    .unwrap();
    for (n, v) in out.headers() {
        headers.push((n.to_owned(), v.as_bytes().to_vec()));
    }
    Req {
        method,
        target: if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        },
        headers,
    }
}

fn signed(method: &'static str, path: &str, query: &str, extra: &[(&str, &str)]) -> Req {
    signed_with(
        method,
        path,
        query,
        extra,
        PayloadMode::Unsigned,
        SECRET,
        REGION,
    )
}

fn code(r: Result<Verified, AuthError>) -> &'static str {
    r.err().map_or("ok", |e| e.s3_code().as_str())
}

#[test]
fn signer_and_verifier_agree() {
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: &[Case<'_>] = &[
        ("/", "", &[]),
        ("/bucket", "list-type=2&prefix=a%2Fb&max-keys=10", &[]),
        (
            "/bucket/key%20with%20spaces",
            "",
            &[("Content-Type", "text/plain")],
        ),
        (
            "/bucket/%E2%82%AC/%2A",
            "uploads=",
            &[("x-amz-meta-a", "  x   y ")],
        ),
        (
            "/bucket/k",
            "partNumber=1&uploadId=abc~def",
            &[("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
        ),
        (
            "/b/k",
            "",
            &[("X-Amz-Meta-Twice", "1"), ("x-amz-meta-twice", "2")],
        ),
        ("/b//double//slash/./and/..", "", &[]),
    ];
    for (path, query, extra) in cases {
        let r = signed("PUT", path, query, extra);
        let ok = r
            .verify()
            .unwrap_or_else(|e| panic!("{path}?{query}: {e:?}"));
        assert_eq!(ok.access_key_id, AKID);
        assert_eq!(ok.region, REGION);
        assert_eq!(ok.method, AuthMethod::Header);
        assert!(ok.signed_headers.contains(&"host".to_owned()));
    }
}

#[test]
fn tampered_header_is_signature_mismatch() {
    let mut r = signed(
        "PUT",
        "/b/k",
        "",
        &[("x-amz-meta-a", "1"), ("Content-Type", "a/b")],
    );
    r.set("x-amz-meta-a", "2");
    match r.verify() {
        Err(AuthError::SignatureDoesNotMatch { detail: Some(d) }) => {
            assert!(d.canonical_request.contains("x-amz-meta-a:2"));
            assert!(d.string_to_sign.starts_with("AWS4-HMAC-SHA256\n"));
        }
        other => panic!("{other:?}"),
    }
    let mut r = signed("PUT", "/b/k", "", &[("Content-Type", "a/b")]);
    r.set("Content-Type", "a/c");
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
    let mut r = signed("PUT", "/b/k", "", &[]);
    r.method = "DELETE";
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
    let mut r = signed("PUT", "/b/k", "", &[]);
    r.set("host", "other.example");
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
}

#[test]
fn tampered_path_or_query_is_signature_mismatch() {
    let mut r = signed("GET", "/b/k", "versionId=1", &[]);
    r.target = "/b/k?versionId=2".into();
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
    let mut r = signed("GET", "/b/k", "versionId=1", &[]);
    r.target = "/b/k?versionId=1&acl".into();
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
    let mut r = signed("GET", "/b/k", "", &[]);
    r.target = "/b/K".into();
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
    // Query parameters in another order, and encoded differently, are the same request.
    let mut r = signed("GET", "/b", "a=1&b=%7E", &[]);
    r.target = "/b?b=~&a=1".into();
    r.verify().unwrap();
}

#[test]
fn tampered_payload_hash_and_body() {
    let body = b"hello";
    let hash: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body)
        .as_ref()
        .try_into()
        .unwrap();
    let r = signed_with(
        "PUT",
        "/b/k",
        "",
        &[],
        PayloadMode::Sha256(hash),
        SECRET,
        REGION,
    );
    let ok = r.verify().unwrap();
    ok.payload.check_body_sha256(&hash).unwrap();
    let other: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"hellO")
        .as_ref()
        .try_into()
        .unwrap();
    let err = ok.payload.check_body_sha256(&other).unwrap_err();
    assert_eq!(err.s3_code().as_str(), "XAmzContentSHA256Mismatch");
    assert_eq!(err.http_status(), 400);

    let mut r2 = signed_with(
        "PUT",
        "/b/k",
        "",
        &[],
        PayloadMode::Sha256(hash),
        SECRET,
        REGION,
    );
    r2.set("x-amz-content-sha256", &hex::encode(other));
    assert_eq!(code(r2.verify()), "SignatureDoesNotMatch");
    let mut r3 = signed("PUT", "/b/k", "", &[]);
    r3.set("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER");
    assert_eq!(code(r3.verify()), "SignatureDoesNotMatch");
    let mut r4 = signed("PUT", "/b/k", "", &[]);
    r4.set("x-amz-content-sha256", "NOT-A-HASH");
    assert_eq!(code(r4.verify()), "InvalidRequest");
}

#[test]
fn clock_skew() {
    let r = signed("GET", "/b/k", "", &[]);
    r.verify_at(T0 + 900).unwrap();
    r.verify_at(T0 - 900).unwrap();
    for now in [T0 + 901, T0 - 901, T0 + 86_400] {
        let err = r.verify_at(now).unwrap_err();
        assert_eq!(err.s3_code().as_str(), "RequestTimeTooSkewed");
        assert_eq!(err.http_status(), 403);
        assert!(matches!(
            err,
            AuthError::RequestTimeTooSkewed { request_time, .. } if request_time == at(T0)
        ));
    }
}

#[test]
fn unknown_key_wrong_secret_wrong_region() {
    let r = signed_with(
        "GET",
        "/",
        "",
        &[],
        PayloadMode::Unsigned,
        "not-the-secret",
        REGION,
    );
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
    let mut r = signed("GET", "/", "", &[]);
    let auth = String::from_utf8(
        r.headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap()
    .replace(AKID, "AKIANOTKNOWN");
    r.set("authorization", &auth);
    let err = r.verify().unwrap_err();
    assert_eq!(err, AuthError::InvalidAccessKeyId);
    assert_eq!(err.http_status(), 403);
    let r = signed_with(
        "GET",
        "/",
        "",
        &[],
        PayloadMode::Unsigned,
        SECRET,
        "ap-south-2",
    );
    let err = r.verify().unwrap_err();
    assert_eq!(err.s3_code().as_str(), "AuthorizationHeaderMalformed");
    assert!(err.to_string().contains("ap-south-2"));
    // Another accepted region works.
    signed_with(
        "GET",
        "/",
        "",
        &[],
        PayloadMode::Unsigned,
        SECRET,
        "us-east-1",
    )
    .verify()
    .unwrap();
}

/// Builds an Authorization header by hand with the real signature for the given parts.
fn hand_signed(
    target: &str,
    headers: &[(&str, &str)],
    signed_headers: &[&str],
    scope_date: &str,
    service: &str,
    timestamp: &str,
) -> Req {
    let hs: Headers = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
        .collect();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let cq = canonical::canonical_query(&canonical::parse_query(query).unwrap(), |_| false);
    let cr = canonical::canonical_request(
        "GET",
        path.as_bytes(),
        &cq,
        &hs,
        signed_headers,
        b"UNSIGNED-PAYLOAD",
    )
    .unwrap();
    let scope = canonical::scope(scope_date, REGION, service);
    let sts = canonical::string_to_sign(timestamp, &scope, &cr);
    let sig = SigningKey::derive(&Secret::new(SECRET), scope_date, REGION, service).sign(&sts);
    let mut r = Req {
        method: "GET",
        target: target.to_owned(),
        headers: hs,
    };
    r.set(
        "Authorization",
        &format!(
            "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders={}, Signature={sig}",
            signed_headers.join(";")
        ),
    );
    r
}

#[test]
fn host_must_be_signed_and_x_amz_headers_too() {
    let ts = "20250101T000000Z";
    let base = [
        ("Host", HOST),
        ("x-amz-date", ts),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ];
    hand_signed(
        "/",
        &base,
        &["host", "x-amz-content-sha256", "x-amz-date"],
        "20250101",
        "s3",
        ts,
    )
    .verify()
    .unwrap();
    let r = hand_signed(
        "/",
        &base,
        &["x-amz-content-sha256", "x-amz-date"],
        "20250101",
        "s3",
        ts,
    );
    assert_eq!(code(r.verify()), "AuthorizationHeaderMalformed");
    let r = hand_signed("/", &base, &["host", "x-amz-date"], "20250101", "s3", ts);
    assert_eq!(code(r.verify()), "AccessDenied");
    let mut r = signed("GET", "/", "", &[]);
    r.set("x-amz-server-side-encryption-customer-algorithm", "AES256");
    assert_eq!(code(r.verify()), "AccessDenied");
    // Unsigned non-x-amz headers are fine.
    let mut r = signed("GET", "/", "", &[]);
    r.set("User-Agent", "aws-cli/2.23");
    r.set("x-amzn-trace-id", "Root=1");
    r.verify().unwrap();
}

#[test]
fn scope_checks() {
    let ts = "20250101T000000Z";
    let base = [
        ("Host", HOST),
        ("x-amz-date", ts),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ];
    let signed_headers = ["host", "x-amz-content-sha256", "x-amz-date"];
    let r = hand_signed("/", &base, &signed_headers, "20241231", "s3", ts);
    assert_eq!(code(r.verify()), "AuthorizationHeaderMalformed");
    let r = hand_signed(
        "/",
        &base,
        &signed_headers,
        "20250101",
        "s3-object-lambda",
        ts,
    );
    assert_eq!(code(r.verify()), "AuthorizationHeaderMalformed");
    // A signed header missing from the request.
    let r = hand_signed("/", &base, &signed_headers, "20250101", "s3", ts);
    let mut r2 = Req {
        method: r.method,
        target: r.target.clone(),
        headers: r.headers.clone(),
    };
    let auth = String::from_utf8(
        r.headers
            .iter()
            .find(|(n, _)| n == "Authorization")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap()
    .replace("SignedHeaders=host;", "SignedHeaders=content-md5;host;");
    r2.set("Authorization", &auth);
    assert_eq!(code(r2.verify()), "AccessDenied");
}

#[test]
fn header_shape_errors() {
    let mut r = signed("GET", "/", "", &[]);
    r.remove("x-amz-content-sha256");
    let err = r.verify().unwrap_err();
    assert_eq!(err.s3_code().as_str(), "InvalidRequest");
    assert!(err.to_string().contains("x-amz-content-sha256"));

    let mut r = signed("GET", "/", "", &[]);
    r.remove("x-amz-date");
    assert_eq!(
        r.verify().unwrap_err(),
        AuthError::AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    );
    let mut r = signed("GET", "/", "", &[]);
    r.set("x-amz-date", "2025-01-01T00:00:00Z");
    assert_eq!(code(r.verify()), "AccessDenied");

    let mut r = signed("GET", "/", "", &[]);
    r.set(
        "Authorization",
        "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
    );
    assert_eq!(code(r.verify()), "InvalidRequest");

    let mut r = signed("GET", "/", "", &[]);
    let auth = r
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .unwrap()
        .1
        .clone();
    r.headers.push(("Authorization".into(), auth));
    assert_eq!(code(r.verify()), "InvalidRequest");

    let mut r = signed("GET", "/", "", &[]);
    r.target = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256".into();
    assert_eq!(code(r.verify()), "InvalidRequest");

    let mut r = signed("GET", "/", "", &[]);
    r.remove("authorization");
    assert_eq!(code(r.verify()), "AccessDenied");

    let mut r = signed("GET", "/", "", &[]);
    let auth = String::from_utf8(
        r.headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    r.set(
        "authorization",
        &auth
            .to_uppercase()
            .replace("AWS4-HMAC-SHA256 CREDENTIAL", "AWS4-HMAC-SHA256 Credential"),
    );
    assert!(r.verify().is_err());

    // A signature in upper-case hex is not the signature.
    let mut r = signed("GET", "/", "", &[]);
    let auth = String::from_utf8(
        r.headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    let (head, sig) = auth.split_once("Signature=").unwrap();
    r.set(
        "authorization",
        &format!("{head}Signature={}", sig.to_uppercase()),
    );
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");

    let mut r = signed("GET", "/", "", &[]);
    r.target = "http://gateway.example/".into();
    assert_eq!(code(r.verify()), "InvalidRequest");
}

#[test]
fn date_header_instead_of_x_amz_date() {
    // No x-amz-date: the Date header is the request time; the string to sign holds it in
    // ISO 8601 basic form.
    let date = "Wed, 01 Jan 2025 00:00:00 GMT";
    let headers = [
        ("Host", HOST),
        ("Date", date),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ];
    let r = hand_signed(
        "/b/k",
        &headers,
        &["date", "host", "x-amz-content-sha256"],
        "20250101",
        "s3",
        "20250101T000000Z",
    );
    let ok = r.verify().unwrap();
    assert_eq!(ok.request_time, at(T0));
    let mut bad = Req {
        method: r.method,
        target: r.target.clone(),
        headers: r.headers.clone(),
    };
    bad.set("Date", "Wed, 01 Jan 2025 00:00:01 GMT");
    assert_eq!(code(bad.verify()), "SignatureDoesNotMatch");
}

fn presigned_req(expires: u64, now: u64, query: &str, extra: &[(&str, &str)]) -> Req {
    let mut headers: Headers = vec![("Host".into(), HOST.as_bytes().to_vec())];
    headers.extend(
        extra
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec())),
    );
    let q = presign(
        &SigningInput {
            method: "GET",
            host: HOST,
            path: "/b/k",
            query: if query.is_empty() {
                Query::None
            } else {
                Query::Raw(query)
            },
            headers: &headers,
            payload: PayloadMode::Unsigned,
        },
        AKID,
        &Secret::new(SECRET),
        REGION,
        at(now),
        expires,
    )
    .unwrap();
    Req {
        method: "GET",
        target: format!("/b/k?{q}"),
        headers,
    }
}

#[test]
fn presigned_urls() {
    let r = presigned_req(3600, T0, "versionId=7", &[]);
    let ok = r.verify_at(T0 + 3600).unwrap();
    assert_eq!(
        ok.method,
        AuthMethod::Presigned {
            expires_at: at(T0 + 3600)
        }
    );
    assert_eq!(
        r.verify_at(T0 + 3601).unwrap_err(),
        AuthError::AccessDenied("Request has expired")
    );
    // Not yet valid beyond the skew allowance.
    r.verify_at(T0 - 900).unwrap();
    assert_eq!(code(r.verify_at(T0 - 901)), "RequestTimeTooSkewed");
    // The full week is allowed; more is not.
    presigned_req(604_800, T0, "", &[])
        .verify_at(T0 + 604_800)
        .unwrap();
    let mut r = presigned_req(60, T0, "", &[]);
    r.target = r.target.replace("X-Amz-Expires=60", "X-Amz-Expires=604801");
    assert_eq!(code(r.verify()), "AuthorizationQueryParametersError");
    // X-Amz-Expires=0 has expired whenever it comes, even signed in the same second or
    // by a clock ahead of the gateway's (S3: 403 AccessDenied, as for any expired URL).
    let r = presigned_req(0, T0, "", &[]);
    for now in [T0, T0 - 10, T0 + 1] {
        assert_eq!(
            r.verify_at(now).unwrap_err(),
            AuthError::AccessDenied("Request has expired"),
            "X-Amz-Expires=0 at T0{:+}",
            i64::try_from(now).unwrap() - i64::try_from(T0).unwrap()
        );
    }
    presigned_req(1, T0, "", &[]).verify_at(T0 + 1).unwrap();

    // Tampering.
    let mut r = presigned_req(60, T0, "versionId=7", &[]);
    r.target = r.target.replace("versionId=7", "versionId=8");
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
    let mut r = presigned_req(60, T0, "", &[]);
    r.target = r.target.replace("X-Amz-Expires=60", "X-Amz-Expires=600");
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
    let mut r = presigned_req(60, T0, "", &[]);
    r.target.push_str("&acl=");
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");

    // A signed extra header must come as signed; unsigned x-amz-* headers are refused.
    let r = presigned_req(60, T0, "", &[("x-amz-meta-a", "1")]);
    r.verify().unwrap();
    let mut r2 = presigned_req(60, T0, "", &[("x-amz-meta-a", "1")]);
    r2.set("x-amz-meta-a", "2");
    assert_eq!(code(r2.verify()), "SignatureDoesNotMatch");
    let mut r3 = presigned_req(60, T0, "", &[]);
    r3.set("x-amz-acl", "public-read");
    assert_eq!(code(r3.verify()), "AccessDenied");

    // Host not signed.
    let mut r = presigned_req(60, T0, "", &[]);
    r.target = r.target.replace(
        "X-Amz-SignedHeaders=host",
        "X-Amz-SignedHeaders=x-amz-meta-a",
    );
    assert_eq!(code(r.verify()), "AuthorizationQueryParametersError");

    // Missing, repeated and malformed parameters.
    let mut r = presigned_req(60, T0, "", &[]);
    r.target = r.target.replace("&X-Amz-Date=", "&X-Amz-Datf=");
    assert_eq!(code(r.verify()), "AuthorizationQueryParametersError");
    let mut r = presigned_req(60, T0, "", &[]);
    r.target.push_str("&X-Amz-Expires=60");
    assert_eq!(code(r.verify()), "AuthorizationQueryParametersError");
    let mut r = presigned_req(60, T0, "", &[]);
    r.target = r.target.replace(
        "X-Amz-Algorithm=AWS4-HMAC-SHA256",
        "X-Amz-Algorithm=AWS4-HMAC-SHA1",
    );
    assert_eq!(code(r.verify()), "AuthorizationQueryParametersError");
    let mut r = presigned_req(60, T0, "", &[]);
    r.target = r.target.replace("%2Feu-west-1%2F", "%2Fus-west-2%2F");
    assert_eq!(code(r.verify()), "AuthorizationQueryParametersError");
    let mut r = presigned_req(60, T0, "", &[]);
    r.target = r.target.replace("X-Amz-Expires=60", "X-Amz-Expires=-1");
    assert_eq!(code(r.verify()), "AuthorizationQueryParametersError");
    let mut r = presigned_req(60, T0, "", &[]);
    r.target = r.target.replace(AKID, "AKIANOTKNOWN");
    assert_eq!(code(r.verify()), "InvalidAccessKeyId");
}

#[test]
fn streaming_modes_give_a_chunk_signer() {
    for (mode, signer) in [
        (PayloadMode::StreamingSigned, true),
        (PayloadMode::StreamingSignedTrailer, true),
        (PayloadMode::StreamingUnsignedTrailer, false),
        (PayloadMode::Unsigned, false),
    ] {
        let r = signed_with(
            "PUT",
            "/b/k",
            "",
            &[
                ("x-amz-decoded-content-length", "5"),
                ("Content-Encoding", "aws-chunked"),
            ],
            mode,
            SECRET,
            REGION,
        );
        let ok = r.verify().unwrap();
        assert_eq!(ok.payload, mode);
        assert_eq!(ok.decoded_content_length, Some(5));
        assert_eq!(ok.chunk_signer.is_some(), signer, "{mode:?}");
    }
    let mut r = signed(
        "PUT",
        "/b/k",
        "",
        &[("x-amz-decoded-content-length", "five")],
    );
    r.verify().unwrap_err();
    r.set("x-amz-decoded-content-length", "5");
    assert_eq!(code(r.verify()), "SignatureDoesNotMatch");
}

#[test]
fn error_codes_and_statuses() {
    use std::borrow::Cow;
    let table: Vec<(AuthError, &str, u16)> = vec![
        (AuthError::AccessDenied("x"), "AccessDenied", 403),
        (
            AuthError::SignatureDoesNotMatch { detail: None },
            "SignatureDoesNotMatch",
            403,
        ),
        (AuthError::InvalidAccessKeyId, "InvalidAccessKeyId", 403),
        (
            AuthError::AuthorizationHeaderMalformed(Cow::Borrowed("x")),
            "AuthorizationHeaderMalformed",
            400,
        ),
        (
            AuthError::AuthorizationQueryParametersError(Cow::Borrowed("x")),
            "AuthorizationQueryParametersError",
            400,
        ),
        (
            AuthError::RequestTimeTooSkewed {
                request_time: at(0),
                server_time: at(0),
            },
            "RequestTimeTooSkewed",
            403,
        ),
        (
            AuthError::MissingSecurityHeader("x"),
            "MissingSecurityHeader",
            400,
        ),
        (
            AuthError::InvalidRequest(Cow::Borrowed("x")),
            "InvalidRequest",
            400,
        ),
        (
            AuthError::XAmzContentSHA256Mismatch {
                client_computed: [0; 32],
                gateway_computed: [1; 32],
            },
            "XAmzContentSHA256Mismatch",
            400,
        ),
        (
            AuthError::IncompleteSignature("x"),
            "IncompleteSignature",
            400,
        ),
    ];
    for (e, c, s) in table {
        assert_eq!(e.s3_code().as_str(), c);
        assert_eq!(e.http_status(), s, "{c}");
    }
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let r = signed_with(
        "PUT",
        "/b/k",
        "",
        &[],
        PayloadMode::StreamingSigned,
        SECRET,
        REGION,
    );
    let ok = r.verify().unwrap();
    let shown = format!("{ok:?} {:?}", Secret::new(SECRET));
    assert!(!shown.contains(SECRET));
    assert!(!shown.contains("wJalr"));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,60}",
            proptest::collection::vec(
                proptest::sample::select(vec![
                    "/",
                    "?",
                    "&",
                    "=",
                    "%",
                    "%2",
                    "%2F",
                    "+",
                    "a",
                    "X-Amz-Algorithm",
                    "X-Amz-Credential",
                    "X-Amz-Date",
                    "X-Amz-Expires",
                    "X-Amz-SignedHeaders",
                    "X-Amz-Signature",
                    "AWS4-HMAC-SHA256",
                    "AKIAIOSFODNN7EXAMPLE",
                    "20250101",
                    "20250101T000000Z",
                    "eu-west-1",
                    "s3",
                    "aws4_request",
                    "host",
                    ";",
                    ",",
                    " ",
                    "Credential=",
                    "SignedHeaders=",
                    "Signature=",
                    "0123456789abcdef",
                ]),
                0..24
            )
            .prop_map(|parts| parts.concat()),
        ]
    }

    proptest! {
        #[test]
        fn verify_never_panics(
            method in prop_oneof![Just("GET".to_owned()), Just("PUT".to_owned()), ".{0,5}"],
            target in text(),
            slash in any::<bool>(),
            headers in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("authorization".to_owned()),
                        Just("host".to_owned()),
                        Just("x-amz-date".to_owned()),
                        Just("date".to_owned()),
                        Just("x-amz-content-sha256".to_owned()),
                        Just("x-amz-decoded-content-length".to_owned()),
                        "[a-zA-Z-]{0,12}",
                    ],
                    prop_oneof![text().prop_map(String::into_bytes), proptest::collection::vec(any::<u8>(), 0..40)],
                ),
                0..8
            ),
            now in any::<u64>(),
        ) {
            let target = if slash { format!("/{target}") } else { target };
            let req = RequestParts { method: &method, target: &target, headers: &headers };
            let _ = verify(&req, at(now % (1 << 40)), &[REGION], &lookup);
        }

        #[test]
        fn signing_then_verifying_any_path_and_query(
            path in "/[a-zA-Z0-9 /$&+,:;=?@~!*'()%._-]{0,40}",
            query in proptest::collection::vec(("[a-zA-Z0-9 /$&+,:;=?@~._-]{0,12}", "[a-zA-Z0-9 /$&+,:;=?@~._-]{0,12}"), 0..5),
            meta in "[ -~]{0,30}",
        ) {
            // The gateway sends the path normalised and the query from decoded pairs.
            let Some(path) = canonical::normalize_path(&path) else { return Ok(()) };
            let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut raw = Vec::new();
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 { raw.push("&".to_owned()); }
                let enc = |s: &str| String::from_utf8(canonical::canonical_query(&[(s, "")], |_| false)).unwrap().trim_end_matches('=').to_owned();
                raw.push(format!("{}={}", enc(k), enc(v)));
            }
            let raw = raw.concat();
            let mut headers: Headers = vec![("Host".into(), HOST.as_bytes().to_vec()), ("x-amz-meta-m".into(), meta.clone().into_bytes())];
            let out = sign(
                &SigningInput { method: "PUT", host: HOST, path: &path, query: Query::Pairs(&pairs), headers: &headers, payload: PayloadMode::Unsigned },
                AKID, &Secret::new(SECRET), REGION, at(T0),
            ).unwrap();
            for (n, v) in out.headers() {
                headers.push((n.to_owned(), v.as_bytes().to_vec()));
            }
            let target = if raw.is_empty() { path.clone() } else { format!("{path}?{raw}") };
            let req = RequestParts { method: "PUT", target: &target, headers: &headers };
            prop_assert!(verify(&req, at(T0), &[REGION], &lookup).is_ok(), "{target}");
        }
    }
}
