//! SigV4 known answers: the AWS test suite's S3-applicable cases and the S3 API Reference
//! examples (`tests/vectors/sigv4/`), through the verifier, the signer, the presigner, the
//! chunk-signature chain and the aws-chunked decoder.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use twofold::sigv4::awschunked::{Decoder, Step, parse_declared_trailers};
use twofold::sigv4::canonical;
use twofold::sigv4::{
    AuthMethod, ChunkSigner, PayloadMode, Query, RequestParts, Secret, SigningInput, SigningKey,
    presign, sign, verify,
};

const SUITE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/vectors/sigv4/aws-sigv4-test-suite.json"
);
const S3: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/vectors/sigv4/s3-examples.json"
);

/// 2013-05-24T00:00:00Z, the time of every S3 example.
const S3_EXAMPLE_SECS: u64 = 1_369_353_600;

fn load(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn headers(v: &Value) -> Vec<(String, Vec<u8>)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| (s(&h[0]).to_owned(), s(&h[1]).as_bytes().to_vec()))
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn example_lookup(v: &Value) -> impl Fn(&str) -> Option<Secret> + use<> {
    let akid = s(&v["access_key_id"]).to_owned();
    let secret = s(&v["secret_access_key"]).to_owned();
    move |k: &str| (k == akid).then(|| Secret::new(secret.clone()))
}

#[test]
fn aws_sigv4_test_suite() {
    let v = load(SUITE);
    let secret = Secret::new(s(&v["secret_access_key"]));
    let timestamp = s(&v["timestamp"]);
    let region = s(&v["region"]);
    let service = s(&v["service"]);
    let scope = canonical::scope(&timestamp[..8], region, service);
    let key = SigningKey::derive(&secret, &timestamp[..8], region, service);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 20);
    for case in cases {
        let name = s(&case["name"]);
        let (path, query) = s(&case["target"])
            .split_once('?')
            .unwrap_or((s(&case["target"]), ""));
        let params = canonical::parse_query(query).unwrap();
        let cq = canonical::canonical_query(&params, |_| false);
        let signed: Vec<&str> = s(&case["signed_headers"]).split(';').collect();
        let cr = canonical::canonical_request(
            s(&case["method"]),
            path.as_bytes(),
            &cq,
            &headers(&case["headers"]),
            &signed,
            sha256_hex(s(&case["body"]).as_bytes()).as_bytes(),
        )
        .unwrap();
        let sts = canonical::string_to_sign(timestamp, &scope, &cr);
        assert_eq!(key.sign(&sts), s(&case["signature"]), "{name}");
    }
}

#[test]
fn aws_suite_header_trim_canonical_form() {
    // The canonical request the suite gives for get-header-value-trim.
    let h: Vec<(&str, &[u8])> = vec![
        ("Host", b"example.amazonaws.com"),
        ("My-Header1", b" value1"),
        ("My-Header2", b" \"a   b   c\""),
        ("X-Amz-Date", b"20150830T123600Z"),
    ];
    let cr = canonical::canonical_request(
        "GET",
        b"/",
        b"",
        &h,
        &["host", "my-header1", "my-header2", "x-amz-date"],
        b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(cr).unwrap(),
        "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n\
         x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn s3_header_examples_canonical_strings() {
    let v = load(S3);
    let cases = v["header_auth"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = s(&case["name"]);
        let target = s(&case["target"]);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = canonical::normalize_path(path).unwrap();
        let cq = canonical::canonical_query(&canonical::parse_query(query).unwrap(), |_| false);
        let auth = s(&case["authorization"]);
        let signed: Vec<&str> = auth
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .split(';')
            .collect();
        let hs = headers(&case["headers"]);
        let payload = hs
            .iter()
            .find(|(n, _)| n == "x-amz-content-sha256")
            .unwrap()
            .1
            .clone();
        let cr = canonical::canonical_request(
            s(&case["method"]),
            path.as_bytes(),
            &cq,
            &hs,
            &signed,
            &payload,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(cr.clone()).unwrap(),
            s(&case["canonical_request"]),
            "{name}"
        );
        let scope = canonical::scope("20130524", "us-east-1", "s3");
        let sts = canonical::string_to_sign("20130524T000000Z", &scope, &cr);
        assert_eq!(
            String::from_utf8(sts).unwrap(),
            s(&case["string_to_sign"]),
            "{name}"
        );
        assert_eq!(
            sha256_hex(s(&case["body"]).as_bytes()),
            String::from_utf8(payload).unwrap(),
            "{name}: body hash"
        );
    }
}

#[test]
fn s3_header_examples_verify() {
    let v = load(S3);
    let lookup = example_lookup(&v);
    for case in v["header_auth"].as_array().unwrap() {
        let name = s(&case["name"]);
        let mut hs = headers(&case["headers"]);
        hs.push((
            "Authorization".into(),
            s(&case["authorization"]).as_bytes().to_vec(),
        ));
        let req = RequestParts {
            method: s(&case["method"]),
            target: s(&case["target"]),
            headers: &hs,
        };
        for skew in [0, 899, 15 * 60] {
            let ok = verify(&req, at(S3_EXAMPLE_SECS + skew), &["us-east-1"], &lookup)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_eq!(ok.access_key_id, "AKIAIOSFODNN7EXAMPLE");
            assert_eq!(ok.method, AuthMethod::Header);
            assert_eq!(ok.region, "us-east-1");
            assert_eq!(ok.request_time, at(S3_EXAMPLE_SECS));
            let body_hash =
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s(&case["body"]).as_bytes());
            let body_hash: [u8; 32] = body_hash.as_ref().try_into().unwrap();
            assert_eq!(ok.payload, PayloadMode::Sha256(body_hash));
            ok.payload.check_body_sha256(&body_hash).unwrap();
            assert!(ok.chunk_signer.is_none());
        }
    }
}

#[test]
fn s3_header_examples_sign() {
    let v = load(S3);
    let secret = Secret::new(s(&v["secret_access_key"]));
    for case in v["header_auth"].as_array().unwrap() {
        let name = s(&case["name"]);
        let hs = headers(&case["headers"]);
        let host = std::str::from_utf8(&hs.iter().find(|(n, _)| n == "Host").unwrap().1)
            .unwrap()
            .to_owned();
        let target = s(&case["target"]);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = canonical::normalize_path(path).unwrap();
        let payload = PayloadMode::parse(
            &hs.iter()
                .find(|(n, _)| n == "x-amz-content-sha256")
                .unwrap()
                .1,
        )
        .unwrap();
        let input = SigningInput {
            method: s(&case["method"]),
            host: &host,
            path: &path,
            query: if query.is_empty() {
                Query::None
            } else {
                Query::Raw(query)
            },
            headers: &hs,
            payload,
        };
        let out = sign(
            &input,
            "AKIAIOSFODNN7EXAMPLE",
            &secret,
            "us-east-1",
            at(S3_EXAMPLE_SECS),
        )
        .unwrap();
        assert_eq!(out.signature, s(&case["signature"]), "{name}");
        // The documentation writes the components without a space after the commas.
        assert_eq!(
            out.authorization.replace(", ", ","),
            s(&case["authorization"]),
            "{name}"
        );
        assert_eq!(out.x_amz_date, "20130524T000000Z");
    }
}

#[test]
fn s3_presigned_example_verifies() {
    let v = load(S3);
    let lookup = example_lookup(&v);
    let case = &v["presigned"];
    let hs = headers(&case["headers"]);
    let req = RequestParts {
        method: "GET",
        target: s(&case["target"]),
        headers: &hs,
    };
    for now in [S3_EXAMPLE_SECS, S3_EXAMPLE_SECS + 86_400] {
        let ok = verify(&req, at(now), &["us-east-1"], &lookup).unwrap();
        assert_eq!(
            ok.method,
            AuthMethod::Presigned {
                expires_at: at(S3_EXAMPLE_SECS + 86_400)
            }
        );
        assert_eq!(ok.payload, PayloadMode::Unsigned);
    }
    let err = verify(&req, at(S3_EXAMPLE_SECS + 86_401), &["us-east-1"], &lookup).unwrap_err();
    assert_eq!(err.s3_code().as_str(), "AccessDenied");

    // The intermediate strings.
    let (path, query) = s(&case["target"]).split_once('?').unwrap();
    let params = canonical::parse_query(query).unwrap();
    let cq = canonical::canonical_query(&params, |k| k == b"X-Amz-Signature");
    let cr = canonical::canonical_request(
        "GET",
        path.as_bytes(),
        &cq,
        &hs,
        &["host"],
        b"UNSIGNED-PAYLOAD",
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(cr.clone()).unwrap(),
        s(&case["canonical_request"])
    );
    let sts = canonical::string_to_sign(
        "20130524T000000Z",
        &canonical::scope("20130524", "us-east-1", "s3"),
        &cr,
    );
    assert_eq!(String::from_utf8(sts).unwrap(), s(&case["string_to_sign"]));
}

#[test]
fn s3_presigned_example_presign() {
    let v = load(S3);
    let case = &v["presigned"];
    let secret = Secret::new(s(&v["secret_access_key"]));
    let input = SigningInput::<&str, &[u8]> {
        method: "GET",
        host: "examplebucket.s3.amazonaws.com",
        path: "/test.txt",
        query: Query::None,
        headers: &[],
        payload: PayloadMode::Unsigned,
    };
    let q = presign(
        &input,
        "AKIAIOSFODNN7EXAMPLE",
        &secret,
        "us-east-1",
        at(S3_EXAMPLE_SECS),
        case["expires"].as_u64().unwrap(),
    )
    .unwrap();
    assert_eq!(format!("/test.txt?{q}"), s(&case["target"]));
}

/// Builds an aws-chunked body from the vector's chunk list (data is `a` repeated) and
/// optional trailer lines.
fn chunked_body(case: &Value, trailer_lines: &[String]) -> Vec<u8> {
    let mut body = Vec::new();
    for c in case["chunks"].as_array().unwrap() {
        let size = usize::try_from(c["size"].as_u64().unwrap()).unwrap();
        body.extend_from_slice(
            format!("{size:x};chunk-signature={}\r\n", s(&c["signature"])).as_bytes(),
        );
        if size > 0 {
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
    }
    for line in trailer_lines {
        body.extend_from_slice(line.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"\r\n");
    body
}

fn decode_all(
    dec: &mut Decoder,
    body: &[u8],
    piece: usize,
) -> (Vec<u8>, twofold::sigv4::awschunked::Trailers) {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for part in body.chunks(piece) {
        buf.extend_from_slice(part);
        let mut pos = 0;
        loop {
            let (n, step) = dec.decode(&buf[pos..]).unwrap();
            pos += n;
            match step {
                Step::Data(d) => out.extend_from_slice(d),
                Step::NeedMore => break,
                Step::Done { trailers } => {
                    assert_eq!(pos, buf.len());
                    return (out, trailers);
                }
            }
        }
        buf.drain(..pos);
    }
    (out, dec.finish().unwrap().unwrap())
}

#[test]
fn s3_chunked_example() {
    let v = load(S3);
    let lookup = example_lookup(&v);
    let case = &v["chunked"];
    let hs = headers(&case["headers"]);
    let req = RequestParts {
        method: "PUT",
        target: s(&case["target"]),
        headers: &hs,
    };
    let ok = verify(&req, at(S3_EXAMPLE_SECS), &["us-east-1"], &lookup).unwrap();
    assert_eq!(ok.payload, PayloadMode::StreamingSigned);
    assert_eq!(ok.decoded_content_length, Some(66_560));
    let signer = ok.chunk_signer.clone().unwrap();
    assert_eq!(signer.previous_signature(), s(&case["seed_signature"]));

    // The chain reproduces the documented chunk signatures.
    let mut chain = signer.clone();
    for c in case["chunks"].as_array().unwrap() {
        let data = vec![b'a'; usize::try_from(c["size"].as_u64().unwrap()).unwrap()];
        assert_eq!(sha256_hex(&data), s(&c["data_sha256"]));
        assert_eq!(chain.sign_chunk(&data), s(&c["signature"]));
    }

    // The documented body decodes, in any piece size.
    let body = chunked_body(case, &[]);
    assert_eq!(body.len() as u64, case["body_length"].as_u64().unwrap());
    for piece in [1, 7, 100, 4096, 65_536, body.len()] {
        let mut dec = Decoder::new(
            ok.payload,
            Some(signer.clone()),
            ok.decoded_content_length,
            &[],
        )
        .unwrap();
        let (data, trailers) = decode_all(&mut dec, &body, piece);
        assert_eq!(data, vec![b'a'; 66_560], "piece {piece}");
        assert!(trailers.is_empty());
    }
}

#[test]
fn s3_chunked_trailer_example() {
    let v = load(S3);
    let lookup = example_lookup(&v);
    let case = &v["chunked_trailer"];
    let hs = headers(&case["headers"]);
    let req = RequestParts {
        method: "PUT",
        target: s(&case["target"]),
        headers: &hs,
    };
    let ok = verify(&req, at(S3_EXAMPLE_SECS), &["us-east-1"], &lookup).unwrap();
    assert_eq!(ok.payload, PayloadMode::StreamingSignedTrailer);
    let signer: ChunkSigner = ok.chunk_signer.clone().unwrap();
    assert_eq!(signer.previous_signature(), s(&case["seed_signature"]));

    let mut chain = signer.clone();
    for c in case["chunks"].as_array().unwrap() {
        let data = vec![b'a'; usize::try_from(c["size"].as_u64().unwrap()).unwrap()];
        assert_eq!(chain.sign_chunk(&data), s(&c["signature"]));
    }
    assert_eq!(
        chain.sign_trailer(s(&case["canonical_trailers"]).as_bytes()),
        s(&case["trailer_signature"])
    );

    let declared = parse_declared_trailers(b"x-amz-checksum-crc32c").unwrap();
    let mut lines: Vec<String> = case["trailers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{}:{}", s(&t[0]), s(&t[1])))
        .collect();
    lines.push(format!(
        "x-amz-trailer-signature:{}",
        s(&case["trailer_signature"])
    ));
    let body = chunked_body(case, &lines);
    for piece in [1, 13, 65_536, body.len()] {
        let mut dec = Decoder::new(
            ok.payload,
            Some(signer.clone()),
            ok.decoded_content_length,
            &declared,
        )
        .unwrap();
        let (data, trailers) = decode_all(&mut dec, &body, piece);
        assert_eq!(data.len(), 66_560);
        assert_eq!(trailers.get("x-amz-checksum-crc32c"), Some("sOO8/Q=="));
        let (alg, value) = trailers.checksum().unwrap();
        let mut h = twofold::s3::checksum::Hasher::new(alg);
        h.update(&data);
        assert!(h.verify(value), "the documented CRC-32C matches the data");
    }
}
