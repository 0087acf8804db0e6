//! The S3 layer: error documents and XML escaping, bucket/key addressing, query strings,
//! operation classification and Range headers.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::http::{HttpError, Limits, RequestHead, parse_request_head, parse_response_head};
use twofold::s3::{
    Address, AddressError, ByteRange, CopySource, KEY_BYTES_MAX, Query, RangeRequest,
    ResolvedRange, S3Code, S3Error, S3Op, Style, Unsatisfiable, parse_copy_source, parse_range,
    percent_decode, resolve, validate_bucket_name, xml,
};

// ---- error documents ----

#[test]
fn error_document_is_exactly_s3s() {
    let e = S3Error::no_such_key()
        .with_resource("/mybucket/myfoto.jpg")
        .with_request_id("4442587FB7D0A2F9");
    assert_eq!(
        String::from_utf8(e.to_xml()).unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
         <Message>The specified key does not exist.</Message><Resource>/mybucket/myfoto.jpg</Resource>\
         <RequestId>4442587FB7D0A2F9</RequestId></Error>"
    );
    let e = S3Error::access_denied().with_request_id("R");
    assert_eq!(
        String::from_utf8(e.to_xml()).unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
         <Message>Access Denied</Message><RequestId>R</RequestId></Error>"
    );
}

#[test]
fn error_document_escapes_xml() {
    let e = S3Error::invalid_argument("a<b>&\"c'")
        .with_resource("/b/k<&>\"'\r\n\t\u{1}\u{fffe}é€")
        .with_request_id("<id>");
    let doc = String::from_utf8(e.to_xml()).unwrap();
    assert!(
        doc.contains("<Message>a&lt;b&gt;&amp;&quot;c&apos;</Message>"),
        "{doc}"
    );
    assert!(
        doc.contains(
            "<Resource>/b/k&lt;&amp;&gt;&quot;&apos;&#13;\n\t\u{fffd}\u{fffd}é€</Resource>"
        ),
        "{doc}"
    );
    assert!(doc.contains("<RequestId>&lt;id&gt;</RequestId>"), "{doc}");
    assert_eq!(e.xml_len(), doc.len());
}

/// A server error used to go out with whatever message it was built with: custodian and
/// token labels, the backend's socket and TLS errors. Its detail is never serialised, and
/// every 5xx but 501 carries the generic message of its status.
#[test]
fn server_errors_carry_a_generic_message_and_never_their_detail() {
    let secret =
        "no key \"no-such-key\" on PKCS#11 token \"tok-7\": Connection refused (os error 111)";
    let cases = [
        (
            S3Error::internal(secret),
            500,
            twofold::s3::INTERNAL_ERROR_MESSAGE,
        ),
        (
            S3Error::internal_error().with_message(secret),
            500,
            twofold::s3::INTERNAL_ERROR_MESSAGE,
        ),
        (
            S3Error::bad_gateway()
                .with_message(secret)
                .with_detail(secret),
            502,
            twofold::s3::BAD_GATEWAY_MESSAGE,
        ),
        (
            S3Error::service_unavailable().with_detail(secret),
            503,
            twofold::s3::SERVICE_UNAVAILABLE_MESSAGE,
        ),
        (
            S3Error::new(504, S3Code::InternalError, secret),
            504,
            twofold::s3::GATEWAY_TIMEOUT_MESSAGE,
        ),
        (
            S3Error::new(507, S3Code::InternalError, secret),
            507,
            twofold::s3::INTERNAL_ERROR_MESSAGE,
        ),
    ];
    for (e, status, message) in cases {
        let e = e.with_request_id("0100000000000007");
        let doc = String::from_utf8(e.to_xml()).unwrap();
        assert_eq!(e.status, status);
        assert!(
            doc.contains(&format!("<Message>{}</Message>", xml::escape(message))),
            "{doc}"
        );
        for leak in ["no-such-key", "tok-7", "PKCS#11", "refused", "os error"] {
            assert!(!doc.contains(leak), "{leak:?} in {doc}");
        }
        assert!(
            doc.contains("<RequestId>0100000000000007</RequestId>"),
            "{doc}"
        );
        assert_eq!(e.xml_len(), doc.len());
        assert_eq!(
            e.response_head().header_str("content-length"),
            Some(doc.len().to_string().as_str())
        );
    }
    assert_eq!(S3Error::internal(secret).detail(), Some(secret));
}

/// Client errors keep the message that describes the client's own request, and 501 keeps
/// the one that says what is not implemented; a detail stays out of the document.
#[test]
fn client_errors_keep_their_message_and_still_hide_the_detail() {
    for e in [
        S3Error::invalid_argument("x-amz-meta-twofold* metadata is reserved for the gateway"),
        S3Error::not_implemented().with_message("SSE-C is not supported"),
    ] {
        let e = e.with_detail("token tok-7");
        let doc = String::from_utf8(e.to_xml()).unwrap();
        assert!(
            doc.contains(&format!("<Message>{}</Message>", e.message)),
            "{doc}"
        );
        assert!(!doc.contains("tok-7"), "{doc}");
    }
}

#[test]
fn xml_escape_function() {
    assert_eq!(xml::escape("plain"), "plain");
    assert_eq!(xml::escape("&&"), "&amp;&amp;");
    assert_eq!(
        xml::escape("\u{0}\u{8}\u{b}\u{c}\u{1f}"),
        "\u{fffd}".repeat(5)
    );
    assert_eq!(xml::escape("\u{7f}\u{80}\u{fffd}"), "\u{7f}\u{80}\u{fffd}");
    for s in ["", "a", "<&>", "\r\r", "é\u{1}", "\u{ffff}x"] {
        assert_eq!(xml::escaped_len(s), xml::escape(s).len(), "{s:?}");
    }
}

#[test]
fn error_response_head() {
    let e = S3Error::no_such_bucket()
        .with_resource("/b")
        .with_request_id("REQ1");
    let head = e.response_head();
    assert_eq!((head.status, head.reason.as_str()), (404, "Not Found"));
    assert_eq!(head.header_str("content-type"), Some("application/xml"));
    assert_eq!(
        head.header_str("content-length"),
        Some(e.to_xml().len().to_string().as_str())
    );
    assert_eq!(head.header_str("x-amz-request-id"), Some("REQ1"));
    let mut out = Vec::new();
    head.write(&mut out).unwrap();
    let (back, _) = parse_response_head(&out, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(back.content_length(), Ok(Some(e.to_xml().len() as u64)));
    assert!(
        S3Error::internal_error()
            .response_head()
            .header("x-amz-request-id")
            .is_none()
    );
}

#[test]
fn error_constructors_have_s3s_statuses_and_codes() {
    let all = [
        (S3Error::access_denied(), 403, "AccessDenied"),
        (
            S3Error::signature_does_not_match(),
            403,
            "SignatureDoesNotMatch",
        ),
        (S3Error::invalid_access_key_id(), 403, "InvalidAccessKeyId"),
        (
            S3Error::x_amz_content_sha256_mismatch(),
            400,
            "XAmzContentSHA256Mismatch",
        ),
        (S3Error::bad_digest(), 400, "BadDigest"),
        (S3Error::invalid_digest(), 400, "InvalidDigest"),
        (S3Error::invalid_request("m"), 400, "InvalidRequest"),
        (S3Error::invalid_argument("m"), 400, "InvalidArgument"),
        (S3Error::invalid_range(), 416, "InvalidRange"),
        (S3Error::no_such_key(), 404, "NoSuchKey"),
        (S3Error::no_such_bucket(), 404, "NoSuchBucket"),
        (S3Error::no_such_upload(), 404, "NoSuchUpload"),
        (S3Error::precondition_failed(), 412, "PreconditionFailed"),
        (S3Error::not_implemented(), 501, "NotImplemented"),
        (S3Error::internal_error(), 500, "InternalError"),
        (S3Error::service_unavailable(), 503, "ServiceUnavailable"),
        (S3Error::slow_down(), 503, "SlowDown"),
        (S3Error::bad_gateway(), 502, "InternalError"),
        (S3Error::entity_too_large(), 400, "EntityTooLarge"),
        (S3Error::method_not_allowed(), 405, "MethodNotAllowed"),
        (S3Error::request_timeout(), 400, "RequestTimeout"),
        (S3Error::incomplete_body(), 400, "IncompleteBody"),
        (S3Error::malformed_xml(), 400, "MalformedXML"),
        (S3Error::invalid_bucket_name(), 400, "InvalidBucketName"),
        (S3Error::key_too_long(), 400, "KeyTooLongError"),
        (
            S3Error::missing_content_length(),
            411,
            "MissingContentLength",
        ),
        (S3Error::invalid_uri(), 400, "InvalidURI"),
    ];
    for (e, status, code) in all {
        assert_eq!((e.status, e.code.as_str()), (status, code));
        assert!(!e.message.is_empty(), "{code}");
        assert_eq!((e.resource.as_deref(), e.request_id.as_str()), (None, ""));
    }
    assert_eq!(S3Error::invalid_request("why").message, "why");
    assert_eq!(S3Error::not_implemented().with_message("m").message, "m");
    assert_eq!(
        S3Error::new(418, S3Code::SlowDown, "t").to_string(),
        "418 SlowDown: t"
    );
}

#[test]
fn http_errors_become_s3_errors() {
    let e = S3Error::from(HttpError::UriTooLong { limit_bytes: 8192 });
    assert_eq!((e.status, e.code.as_str()), (414, "InvalidURI"));
    let e = S3Error::from(&HttpError::ConflictingFraming);
    assert_eq!((e.status, e.code.as_str()), (400, "BadRequest"));
    let e = S3Error::from_http(&HttpError::UnsupportedTransferEncoding);
    assert_eq!((e.status, e.code.as_str()), (501, "NotImplemented"));
}

#[test]
fn address_errors_become_s3_errors() {
    let e = S3Error::from(AddressError::InvalidBucketName("A_B".into()));
    assert_eq!(
        (e.status, e.code.as_str(), e.resource.as_deref()),
        (400, "InvalidBucketName", Some("/A_B"))
    );
    let e = S3Error::from(AddressError::KeyTooLong { len_bytes: 2000 });
    assert_eq!((e.status, e.code.as_str()), (400, "KeyTooLongError"));
    let e = S3Error::from(AddressError::BadEncoding);
    assert_eq!((e.status, e.code.as_str()), (400, "InvalidURI"));
    let e = S3Error::from(AddressError::TooManyQueryParams { limit: 3 });
    assert_eq!((e.status, e.code.as_str()), (400, "InvalidArgument"));
}

// ---- addressing ----

const BASES: &[&str] = &["s3.example.com", "localhost"];

fn path_style(target: &str) -> Result<Address, AddressError> {
    resolve(Some("s3.example.com"), target, BASES)
}

fn addr(bucket: Option<&str>, key: Option<&str>, style: Style) -> Address {
    Address {
        style,
        bucket: bucket.map(String::from),
        key: key.map(String::from),
    }
}

#[test]
fn path_style_addresses() {
    use Style::Path;
    let cases = [
        ("/", None, None),
        ("", None, None),
        ("*", None, None),
        ("/?x=1", None, None),
        ("/bucket", Some("bucket"), None),
        ("/bucket/", Some("bucket"), None),
        ("/bucket?list-type=2", Some("bucket"), None),
        ("/bucket/key", Some("bucket"), Some("key")),
        ("/bucket/key?versionId=3", Some("bucket"), Some("key")),
        ("/bucket/a/b/c", Some("bucket"), Some("a/b/c")),
        ("/bucket/a/", Some("bucket"), Some("a/")),
        ("/bucket/a//b///", Some("bucket"), Some("a//b///")),
        ("/bucket/a+b", Some("bucket"), Some("a+b")),
        ("/bucket/a%2Bb", Some("bucket"), Some("a+b")),
        ("/bucket/a%20b", Some("bucket"), Some("a b")),
        ("/bucket/a%2Fb", Some("bucket"), Some("a/b")),
        ("/bucket/a%3Fb", Some("bucket"), Some("a?b")),
        ("/bucket/%E2%82%AC", Some("bucket"), Some("€")),
        ("/bucket/%e2%82%ac", Some("bucket"), Some("€")),
        ("/bucket/caf\u{e9}", Some("bucket"), Some("café")),
        ("/bucket/%00", Some("bucket"), Some("\0")),
        ("/bucket/%25", Some("bucket"), Some("%")),
        ("/my.bucket-1/k", Some("my.bucket-1"), Some("k")),
        ("/%62ucket/k", Some("bucket"), Some("k")),
    ];
    for (target, bucket, key) in cases {
        assert_eq!(path_style(target), Ok(addr(bucket, key, Path)), "{target}");
    }
}

/// Tenant A wrote and deleted tenant B's object on a file-backed backend with
/// `/bucket-a/../bucket-b/secret.txt`: keys that a path join takes out of their bucket are
/// refused in every spelling, path-style and virtual-hosted.
#[test]
fn regression_dot_segment_keys_cross_buckets() {
    for key in [
        "../bucket-b/secret.txt",
        "%2E%2E/bucket-b/secret.txt",
        "%2e%2E%2fbucket-b%2Fsecret.txt",
        ".%2E/bucket-b/secret.txt",
        "a/../../bucket-b/k",
        "./k",
        "a/.",
        "/bucket-b/secret.txt",
        "%2Fbucket-b/secret.txt",
        "..%5Cbucket-b%5Csecret.txt",
        "%5Cbucket-b",
    ] {
        assert_eq!(
            path_style(&format!("/bucket-a/{key}")),
            Err(AddressError::DotSegment),
            "path-style {key}"
        );
        assert_eq!(
            resolve(Some("bucket-a.s3.example.com"), &format!("/{key}"), BASES),
            Err(AddressError::DotSegment),
            "virtual-hosted {key}"
        );
    }
    for target in ["/bucket//a", "/bucket//", "/bucket/./../x"] {
        assert_eq!(
            path_style(target),
            Err(AddressError::DotSegment),
            "{target}"
        );
    }
    assert_eq!(
        resolve(Some("bucket.s3.example.com"), "//key", BASES),
        Err(AddressError::DotSegment)
    );
    let e = S3Error::from(AddressError::DotSegment);
    assert_eq!((e.status, e.code.as_str()), (400, "InvalidArgument"));
}

#[test]
fn copy_sources_are_checked_as_keys_are() {
    let ok = |bucket: &str, key: &str, version: Option<&str>| CopySource {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version_id: version.map(str::to_owned),
    };
    assert_eq!(parse_copy_source("b-1/k"), Ok(ok("b-1", "k", None)));
    assert_eq!(parse_copy_source("/b-1/a/b"), Ok(ok("b-1", "a/b", None)));
    assert_eq!(parse_copy_source("b-1%2Fa%20b"), Ok(ok("b-1", "a b", None)));
    assert_eq!(
        parse_copy_source("b-1/k?versionId=v1"),
        Ok(ok("b-1", "k", Some("v1")))
    );
    for source in [
        "b-1/../b-2/k",
        "b-1/%2E%2E/b-2/k",
        "/b-1/%2e%2e%2Fb-2%2Fk",
        "b-1//b-2/k",
        "b-1/a/./k",
        "b-1/..%5Cb-2",
    ] {
        assert_eq!(
            parse_copy_source(source),
            Err(AddressError::DotSegment),
            "{source}"
        );
    }
    for source in ["b-1", "b-1/", "/k", "../b/k", "B/k", "b-1/%zz"] {
        assert_eq!(
            parse_copy_source(source),
            Err(AddressError::BadCopySource),
            "{source}"
        );
    }
}

#[test]
fn bad_percent_encoding_is_refused() {
    for target in [
        "/b/a%zz",
        "/b/a%4",
        "/b/a%",
        "/b/%FF",
        "/b/%C3",
        "/b/%c3%28",
        "/b/%%41",
        "/b%/k",
    ] {
        let e = path_style(&target.replace("/b/", "/bucket/")).unwrap_err();
        assert!(
            matches!(
                e,
                AddressError::BadEncoding | AddressError::InvalidBucketName(_)
            ),
            "{target}: {e:?}"
        );
    }
    assert_eq!(path_style("/bucket/a%zz"), Err(AddressError::BadEncoding));
    assert_eq!(path_style("/bucket/%FF"), Err(AddressError::BadEncoding));
    assert_eq!(percent_decode("a+b%20c"), Ok("a+b c".to_owned()));
    assert_eq!(percent_decode("%"), Err(AddressError::BadEncoding));
}

#[test]
fn virtual_hosted_addresses() {
    use Style::{Path, VirtualHosted as V};
    let cases = [
        ("bucket.s3.example.com", "/", Some("bucket"), None, V),
        ("bucket.s3.example.com", "", Some("bucket"), None, V),
        (
            "bucket.s3.example.com",
            "/?list-type=2",
            Some("bucket"),
            None,
            V,
        ),
        (
            "bucket.s3.example.com",
            "/key",
            Some("bucket"),
            Some("key"),
            V,
        ),
        (
            "bucket.s3.example.com",
            "/a/b/",
            Some("bucket"),
            Some("a/b/"),
            V,
        ),
        (
            "bucket.s3.example.com",
            "/a%2Bb+c",
            Some("bucket"),
            Some("a+b+c"),
            V,
        ),
        (
            "bucket.s3.example.com:9000",
            "/k",
            Some("bucket"),
            Some("k"),
            V,
        ),
        ("BUCKET.S3.Example.COM", "/k", Some("bucket"), Some("k"), V),
        ("bucket.s3.example.com.", "/k", Some("bucket"), Some("k"), V),
        (
            "my.dotted.bucket.s3.example.com",
            "/k",
            Some("my.dotted.bucket"),
            Some("k"),
            V,
        ),
        ("bucket.localhost:9000", "/k", Some("bucket"), Some("k"), V),
        // Host equal to a base domain: path-style.
        (
            "s3.example.com",
            "/bucket/k",
            Some("bucket"),
            Some("k"),
            Path,
        ),
        (
            "S3.EXAMPLE.COM:443",
            "/bucket/k",
            Some("bucket"),
            Some("k"),
            Path,
        ),
        (
            "localhost:9000",
            "/bucket/k",
            Some("bucket"),
            Some("k"),
            Path,
        ),
        ("localhost", "/", None, None, Path),
        // Hosts under no base domain: path-style.
        (
            "10.0.0.1:9000",
            "/bucket/k",
            Some("bucket"),
            Some("k"),
            Path,
        ),
        ("[::1]:9000", "/bucket/k", Some("bucket"), Some("k"), Path),
        ("[::1]", "/bucket", Some("bucket"), None, Path),
        (
            "other.example.org",
            "/bucket/k",
            Some("bucket"),
            Some("k"),
            Path,
        ),
        (
            "xs3.example.com",
            "/bucket/k",
            Some("bucket"),
            Some("k"),
            Path,
        ),
        ("example.com", "/bucket/k", Some("bucket"), Some("k"), Path),
        ("", "/bucket/k", Some("bucket"), Some("k"), Path),
    ];
    for (host, target, bucket, key, style) in cases {
        assert_eq!(
            resolve(Some(host), target, BASES),
            Ok(addr(bucket, key, style)),
            "{host} {target}"
        );
    }
    assert_eq!(
        resolve(None, "/bucket/k", BASES),
        Ok(addr(Some("bucket"), Some("k"), Path))
    );
    let no_bases: &[&str] = &[];
    assert_eq!(
        resolve(Some("bucket.s3.example.com"), "/bk2/k", no_bases),
        Ok(addr(Some("bk2"), Some("k"), Path))
    );
}

#[test]
fn the_longest_base_domain_wins() {
    let bases = ["example.com", "s3.example.com"];
    assert_eq!(
        resolve(Some("s3.example.com"), "/bucket/k", &bases),
        Ok(addr(Some("bucket"), Some("k"), Style::Path))
    );
    assert_eq!(
        resolve(Some("bk1.s3.example.com"), "/k", &bases),
        Ok(addr(Some("bk1"), Some("k"), Style::VirtualHosted))
    );
    assert_eq!(
        resolve(Some("bk2.example.com"), "/k", &bases),
        Ok(addr(Some("bk2"), Some("k"), Style::VirtualHosted))
    );
    let with_port = ["s3.example.com:9000"];
    assert_eq!(
        resolve(Some("bkt.s3.example.com:9000"), "/k", &with_port),
        Ok(addr(Some("bkt"), Some("k"), Style::VirtualHosted))
    );
}

#[test]
fn invalid_bucket_in_host_or_path_is_refused() {
    assert_eq!(
        resolve(Some("a_b.s3.example.com"), "/k", BASES),
        Err(AddressError::InvalidBucketName("a_b".into()))
    );
    assert_eq!(
        resolve(Some("ab.s3.example.com"), "/k", BASES),
        Err(AddressError::InvalidBucketName("ab".into()))
    );
    assert_eq!(
        path_style("/Bucket/k"),
        Err(AddressError::InvalidBucketName("Bucket".into()))
    );
    assert_eq!(
        path_style("//k"),
        Err(AddressError::InvalidBucketName("".into()))
    );
}

#[test]
fn bucket_name_rules() {
    let long = "a".repeat(63);
    for ok in [
        "abc",
        "a-b",
        "a.b.c",
        "1bucket",
        "bucket1",
        "my-bucket.2024",
        "1.2.3",
        "1.2.3.4.5",
        "xn--abc",
        &long,
    ] {
        assert_eq!(validate_bucket_name(ok), Ok(()), "{ok}");
    }
    let too_long = "a".repeat(64);
    for bad in [
        "",
        "ab",
        &too_long,
        "ABC",
        "Abc",
        "a_b",
        "a b",
        "-ab",
        "ab-",
        ".ab",
        "ab.",
        "a..b",
        "192.168.5.4",
        "999.1.1.1",
        "a/b",
        "é.com",
        "ab\0",
    ] {
        assert_eq!(
            validate_bucket_name(bad),
            Err(AddressError::InvalidBucketName(bad.into())),
            "{bad:?}"
        );
    }
}

#[test]
fn key_length_limit() {
    let key = "k".repeat(KEY_BYTES_MAX);
    assert_eq!(
        path_style(&format!("/bucket/{key}"))
            .unwrap()
            .key
            .unwrap()
            .len(),
        1024
    );
    let key = "k".repeat(KEY_BYTES_MAX + 1);
    assert_eq!(
        path_style(&format!("/bucket/{key}")),
        Err(AddressError::KeyTooLong { len_bytes: 1025 })
    );
    // Counted in bytes after decoding: 512 two-byte characters fit, one more does not.
    let key = "%C3%A9".repeat(512);
    assert_eq!(
        path_style(&format!("/bucket/{key}"))
            .unwrap()
            .key
            .unwrap()
            .len(),
        1024
    );
    let key = format!("{}x", "%C3%A9".repeat(512));
    assert_eq!(
        path_style(&format!("/bucket/{key}")),
        Err(AddressError::KeyTooLong { len_bytes: 1025 })
    );
    // The encoded form may be longer than the limit.
    let key = "%41".repeat(KEY_BYTES_MAX);
    assert_eq!(
        path_style(&format!("/bucket/{key}")).unwrap().key.unwrap(),
        "A".repeat(1024)
    );
}

#[test]
fn resource_strings() {
    assert_eq!(
        addr(Some("b"), Some("k/x"), Style::Path).resource(),
        "/b/k/x"
    );
    assert_eq!(addr(Some("b"), None, Style::Path).resource(), "/b");
    assert_eq!(addr(None, None, Style::Path).resource(), "/");
}

// ---- query strings ----

fn q(raw: &str) -> Vec<(String, String)> {
    Query::parse(Some(raw), 100).unwrap().params().to_vec()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn query_parsing() {
    assert_eq!(q("uploads"), pairs(&[("uploads", "")]));
    assert_eq!(q("delete"), pairs(&[("delete", "")]));
    assert_eq!(q("versionId="), pairs(&[("versionId", "")]));
    assert_eq!(
        q("a=1&b=2&a=3"),
        pairs(&[("a", "1"), ("b", "2"), ("a", "3")])
    );
    assert_eq!(q("prefix=a+b"), pairs(&[("prefix", "a b")]));
    assert_eq!(q("prefix=a%2Bb"), pairs(&[("prefix", "a+b")]));
    assert_eq!(q("prefix=%E2%82%AC%2F"), pairs(&[("prefix", "€/")]));
    assert_eq!(q("a&&b&"), pairs(&[("a", ""), ("b", "")]));
    assert_eq!(q("=v"), pairs(&[("", "v")]));
    assert_eq!(q("a=b=c"), pairs(&[("a", "b=c")]));
    assert_eq!(q("x%3Dy=1"), pairs(&[("x=y", "1")]));
    assert_eq!(q(""), pairs(&[]));
    assert!(Query::parse(None, 100).unwrap().is_empty());
    let query = Query::parse(Some("partNumber=1&uploadId=abc&partNumber=2"), 100).unwrap();
    assert_eq!(query.get("partNumber"), Some("1"));
    assert_eq!(query.get("uploadid"), None, "names are case-sensitive");
    assert!(query.contains("uploadId"));
    assert_eq!(query.len(), 3);
}

#[test]
fn query_limits_and_encoding_errors() {
    assert_eq!(Query::parse(Some("a&b&c"), 3).unwrap().len(), 3);
    assert_eq!(
        Query::parse(Some("a&b&c&d"), 3),
        Err(AddressError::TooManyQueryParams { limit: 3 })
    );
    assert_eq!(
        Query::parse(Some("a&&b&&c&&"), 3).unwrap().len(),
        3,
        "empty segments are not counted"
    );
    assert_eq!(
        Query::parse(Some("a=%zz"), 3),
        Err(AddressError::BadEncoding)
    );
    assert_eq!(
        Query::parse(Some("%FF=1"), 3),
        Err(AddressError::BadEncoding)
    );
}

// ---- operations ----

fn classify(method: &str, target: &str, copy: bool) -> S3Op {
    let address = path_style(target).unwrap();
    let query = Query::parse(target.split_once('?').map(|(_, q)| q), 100).unwrap();
    S3Op::classify(method, &address, &query, copy)
}

#[test]
fn core_operations() {
    let cases = [
        ("GET", "/", false, S3Op::ListBuckets),
        ("PUT", "/bk1", false, S3Op::CreateBucket),
        ("DELETE", "/bk1", false, S3Op::DeleteBucket),
        ("HEAD", "/bk1", false, S3Op::HeadBucket),
        ("GET", "/bk1", false, S3Op::ListObjects),
        ("GET", "/bk1?prefix=a&delimiter=/", false, S3Op::ListObjects),
        ("GET", "/bk1?list-type=2", false, S3Op::ListObjectsV2),
        (
            "GET",
            "/bk1?list-type=2&continuation-token=x",
            false,
            S3Op::ListObjectsV2,
        ),
        ("GET", "/bk1?versions", false, S3Op::ListObjectVersions),
        (
            "GET",
            "/bk1?versions&prefix=x",
            false,
            S3Op::ListObjectVersions,
        ),
        ("PUT", "/bk1/k", false, S3Op::PutObject),
        ("PUT", "/bk1/k?x-id=PutObject", false, S3Op::PutObject),
        ("PUT", "/bk1/k", true, S3Op::CopyObject),
        ("GET", "/bk1/k", false, S3Op::GetObject),
        (
            "GET",
            "/bk1/k?versionId=1&partNumber=2&response-content-type=x",
            false,
            S3Op::GetObject,
        ),
        ("HEAD", "/bk1/k", false, S3Op::HeadObject),
        ("HEAD", "/bk1/k?partNumber=1", false, S3Op::HeadObject),
        ("DELETE", "/bk1/k", false, S3Op::DeleteObject),
        ("DELETE", "/bk1/k?versionId=3", false, S3Op::DeleteObject),
        ("POST", "/bk1?delete", false, S3Op::DeleteObjects),
        ("POST", "/bk1?delete=", false, S3Op::DeleteObjects),
        ("POST", "/bk1/k?uploads", false, S3Op::CreateMultipartUpload),
        (
            "PUT",
            "/bk1/k?partNumber=1&uploadId=U",
            false,
            S3Op::UploadPart,
        ),
        (
            "PUT",
            "/bk1/k?uploadId=U&partNumber=1",
            false,
            S3Op::UploadPart,
        ),
        (
            "PUT",
            "/bk1/k?partNumber=1&uploadId=U",
            true,
            S3Op::UploadPartCopy,
        ),
        (
            "POST",
            "/bk1/k?uploadId=U",
            false,
            S3Op::CompleteMultipartUpload,
        ),
        ("POST", "/bk1", false, S3Op::PostObject),
        (
            "DELETE",
            "/bk1/k?uploadId=U",
            false,
            S3Op::AbortMultipartUpload,
        ),
        ("GET", "/bk1/k?uploadId=U", false, S3Op::ListParts),
        (
            "GET",
            "/bk1/k?uploadId=U&max-parts=10&part-number-marker=2",
            false,
            S3Op::ListParts,
        ),
        ("GET", "/bk1?uploads", false, S3Op::ListMultipartUploads),
        ("GET", "/bk1/k?attributes", false, S3Op::GetObjectAttributes),
    ];
    for (method, target, copy, op) in cases {
        assert_eq!(
            classify(method, target, copy),
            op,
            "{method} {target} copy={copy}"
        );
    }
}

#[test]
fn other_operations_pass_through_by_name() {
    let cases = [
        ("GET", "/bk1?acl", "GetBucketAcl"),
        ("PUT", "/bk1?acl", "PutBucketAcl"),
        ("GET", "/bk1?tagging", "GetBucketTagging"),
        ("PUT", "/bk1?tagging", "PutBucketTagging"),
        ("DELETE", "/bk1?tagging", "DeleteBucketTagging"),
        ("GET", "/bk1?cors", "GetBucketCors"),
        ("PUT", "/bk1?cors", "PutBucketCors"),
        ("DELETE", "/bk1?cors", "DeleteBucketCors"),
        ("GET", "/bk1?policy", "GetBucketPolicy"),
        ("PUT", "/bk1?policy", "PutBucketPolicy"),
        ("DELETE", "/bk1?policy", "DeleteBucketPolicy"),
        ("GET", "/bk1?policyStatus", "GetBucketPolicyStatus"),
        ("GET", "/bk1?lifecycle", "GetBucketLifecycleConfiguration"),
        ("PUT", "/bk1?lifecycle", "PutBucketLifecycleConfiguration"),
        ("DELETE", "/bk1?lifecycle", "DeleteBucketLifecycle"),
        ("GET", "/bk1?versioning", "GetBucketVersioning"),
        ("PUT", "/bk1?versioning", "PutBucketVersioning"),
        ("GET", "/bk1?location", "GetBucketLocation"),
        ("GET", "/bk1?logging", "GetBucketLogging"),
        ("PUT", "/bk1?logging", "PutBucketLogging"),
        ("GET", "/bk1?encryption", "GetBucketEncryption"),
        ("PUT", "/bk1?encryption", "PutBucketEncryption"),
        ("DELETE", "/bk1?encryption", "DeleteBucketEncryption"),
        ("GET", "/bk1?website", "GetBucketWebsite"),
        ("PUT", "/bk1?website", "PutBucketWebsite"),
        ("DELETE", "/bk1?website", "DeleteBucketWebsite"),
        (
            "GET",
            "/bk1?notification",
            "GetBucketNotificationConfiguration",
        ),
        (
            "PUT",
            "/bk1?notification",
            "PutBucketNotificationConfiguration",
        ),
        ("GET", "/bk1?replication", "GetBucketReplication"),
        ("PUT", "/bk1?replication", "PutBucketReplication"),
        ("DELETE", "/bk1?replication", "DeleteBucketReplication"),
        ("GET", "/bk1?requestPayment", "GetBucketRequestPayment"),
        ("PUT", "/bk1?requestPayment", "PutBucketRequestPayment"),
        ("GET", "/bk1?accelerate", "GetBucketAccelerateConfiguration"),
        ("PUT", "/bk1?accelerate", "PutBucketAccelerateConfiguration"),
        ("GET", "/bk1?object-lock", "GetObjectLockConfiguration"),
        ("PUT", "/bk1?object-lock", "PutObjectLockConfiguration"),
        (
            "GET",
            "/bk1?ownershipControls",
            "GetBucketOwnershipControls",
        ),
        (
            "PUT",
            "/bk1?ownershipControls",
            "PutBucketOwnershipControls",
        ),
        (
            "DELETE",
            "/bk1?ownershipControls",
            "DeleteBucketOwnershipControls",
        ),
        ("GET", "/bk1?publicAccessBlock", "GetPublicAccessBlock"),
        ("PUT", "/bk1?publicAccessBlock", "PutPublicAccessBlock"),
        (
            "DELETE",
            "/bk1?publicAccessBlock",
            "DeletePublicAccessBlock",
        ),
        (
            "GET",
            "/bk1?analytics&id=a",
            "GetBucketAnalyticsConfiguration",
        ),
        ("GET", "/bk1?analytics", "ListBucketAnalyticsConfigurations"),
        (
            "PUT",
            "/bk1?analytics&id=a",
            "PutBucketAnalyticsConfiguration",
        ),
        (
            "DELETE",
            "/bk1?analytics&id=a",
            "DeleteBucketAnalyticsConfiguration",
        ),
        (
            "GET",
            "/bk1?inventory&id=a",
            "GetBucketInventoryConfiguration",
        ),
        ("GET", "/bk1?inventory", "ListBucketInventoryConfigurations"),
        ("GET", "/bk1?metrics&id=a", "GetBucketMetricsConfiguration"),
        ("GET", "/bk1?metrics", "ListBucketMetricsConfigurations"),
        ("PUT", "/bk1?metrics&id=a", "PutBucketMetricsConfiguration"),
        (
            "DELETE",
            "/bk1?metrics&id=a",
            "DeleteBucketMetricsConfiguration",
        ),
        (
            "GET",
            "/bk1?intelligent-tiering&id=a",
            "GetBucketIntelligentTieringConfiguration",
        ),
        (
            "GET",
            "/bk1?intelligent-tiering",
            "ListBucketIntelligentTieringConfigurations",
        ),
        ("GET", "/bk1?session", "CreateSession"),
        (
            "GET",
            "/bk1?metadataTable",
            "GetBucketMetadataTableConfiguration",
        ),
        (
            "POST",
            "/bk1?metadataTable",
            "CreateBucketMetadataTableConfiguration",
        ),
        ("OPTIONS", "/bk1", "OptionsPreflight"),
        ("OPTIONS", "/bk1/k", "OptionsPreflight"),
        ("GET", "/bk1/k?acl", "GetObjectAcl"),
        ("PUT", "/bk1/k?acl", "PutObjectAcl"),
        ("GET", "/bk1/k?tagging", "GetObjectTagging"),
        ("PUT", "/bk1/k?tagging", "PutObjectTagging"),
        ("PUT", "/bk1/k?tagging&versionId=2", "PutObjectTagging"),
        ("DELETE", "/bk1/k?tagging", "DeleteObjectTagging"),
        ("GET", "/bk1/k?legal-hold", "GetObjectLegalHold"),
        ("PUT", "/bk1/k?legal-hold", "PutObjectLegalHold"),
        ("GET", "/bk1/k?retention", "GetObjectRetention"),
        ("PUT", "/bk1/k?retention", "PutObjectRetention"),
        ("GET", "/bk1/k?torrent", "GetObjectTorrent"),
        ("POST", "/bk1/k?restore", "RestoreObject"),
        ("POST", "/bk1/k?select&select-type=2", "SelectObjectContent"),
    ];
    for (method, target, name) in cases {
        let op = classify(method, target, false);
        assert_eq!(op, S3Op::Other { name }, "{method} {target}");
        assert_eq!(op.name(), name);
    }
    // The copy header does not turn a subresource PUT into a copy.
    assert_eq!(
        classify("PUT", "/bk1/k?tagging", true),
        S3Op::Other {
            name: "PutObjectTagging"
        }
    );
}

#[test]
fn unknown_and_ambiguous_requests() {
    let cases = [
        ("PUT", "/"),
        ("DELETE", "/"),
        ("GET", "/?acl"),
        ("POST", "/bk1/k"),
        ("PATCH", "/bk1/k"),
        ("get", "/bk1/k"),
        ("GET", "/bk1?list-type=3"),
        ("PUT", "/bk1?versions"),
        ("DELETE", "/bk1?uploads"),
        ("GET", "/bk1?delete"),
        ("PUT", "/bk1/k?partNumber=1"),
        ("PUT", "/bk1/k?uploadId=U"),
        ("PUT", "/bk1/k?uploads"),
        ("GET", "/bk1/k?uploads"),
        ("PUT", "/bk1/k?acl&tagging"),
        ("PUT", "/bk1/k?tagging&partNumber=1&uploadId=U"),
        ("POST", "/bk1/k?uploads&uploadId=U"),
        ("GET", "/bk1?versions&uploads"),
        ("PUT", "/bk1/k?restore"),
        ("DELETE", "/bk1/k?acl"),
        ("PUT", "/bk1?location"),
        ("HEAD", "/bk1?acl"),
        ("HEAD", "/bk1/k?tagging"),
        ("GET", "/bk1/k?versioning"),
    ];
    for (method, target) in cases {
        let op = classify(method, target, false);
        assert_eq!(op, S3Op::Unknown, "{method} {target}");
        assert_eq!(op.name(), "Unknown");
    }
    // The same subresource twice is still one.
    assert_eq!(
        classify("PUT", "/bk1/k?tagging&tagging", false),
        S3Op::Other {
            name: "PutObjectTagging"
        }
    );
}

#[test]
fn core_operation_names() {
    let names = [
        (S3Op::ListBuckets, "ListBuckets"),
        (S3Op::CreateBucket, "CreateBucket"),
        (S3Op::DeleteBucket, "DeleteBucket"),
        (S3Op::HeadBucket, "HeadBucket"),
        (S3Op::ListObjects, "ListObjects"),
        (S3Op::ListObjectsV2, "ListObjectsV2"),
        (S3Op::ListObjectVersions, "ListObjectVersions"),
        (S3Op::PutObject, "PutObject"),
        (S3Op::CopyObject, "CopyObject"),
        (S3Op::GetObject, "GetObject"),
        (S3Op::HeadObject, "HeadObject"),
        (S3Op::DeleteObject, "DeleteObject"),
        (S3Op::DeleteObjects, "DeleteObjects"),
        (S3Op::CreateMultipartUpload, "CreateMultipartUpload"),
        (S3Op::UploadPart, "UploadPart"),
        (S3Op::UploadPartCopy, "UploadPartCopy"),
        (S3Op::CompleteMultipartUpload, "CompleteMultipartUpload"),
        (S3Op::AbortMultipartUpload, "AbortMultipartUpload"),
        (S3Op::ListParts, "ListParts"),
        (S3Op::ListMultipartUploads, "ListMultipartUploads"),
        (S3Op::GetObjectAttributes, "GetObjectAttributes"),
        (S3Op::Unknown, "Unknown"),
    ];
    for (op, name) in names {
        assert_eq!(op.name(), name);
    }
}

#[test]
fn classify_from_a_parsed_request() {
    let limits = Limits::default();
    let parse = |b: &[u8]| -> RequestHead { parse_request_head(b, &limits).unwrap().unwrap().0 };
    let op = |head: &RequestHead| {
        let address = resolve(head.header_str("host"), &head.target, BASES).unwrap();
        let query = Query::parse(head.query(), 100).unwrap();
        S3Op::from_request(head, &address, &query)
    };
    let h = parse(b"PUT /k?partNumber=2&uploadId=xyz HTTP/1.1\r\nHost: bk1.s3.example.com\r\nx-amz-copy-source: /src/k\r\n\r\n");
    assert_eq!(op(&h), S3Op::UploadPartCopy);
    let h = parse(b"PUT /bk1/k HTTP/1.1\r\nHost: s3.example.com\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(op(&h), S3Op::PutObject);
    let h = parse(b"GET /?list-type=2 HTTP/1.1\r\nHost: bk1.s3.example.com\r\n\r\n");
    assert_eq!(op(&h), S3Op::ListObjectsV2);
}

// ---- ranges ----

#[test]
fn range_parsing() {
    use RangeRequest::{Ignored, Multiple, Single};
    let cases = [
        (
            "bytes=0-99",
            Single(ByteRange::FromTo { first: 0, last: 99 }),
        ),
        ("bytes=5-5", Single(ByteRange::FromTo { first: 5, last: 5 })),
        ("bytes=100-", Single(ByteRange::From { first: 100 })),
        ("bytes=-500", Single(ByteRange::Suffix { len: 500 })),
        ("bytes=-0", Single(ByteRange::Suffix { len: 0 })),
        ("Bytes=0-1", Single(ByteRange::FromTo { first: 0, last: 1 })),
        (
            " bytes=0-1 ",
            Single(ByteRange::FromTo { first: 0, last: 1 }),
        ),
        (
            "bytes= 0-1",
            Single(ByteRange::FromTo { first: 0, last: 1 }),
        ),
        (
            "bytes=0-1,",
            Single(ByteRange::FromTo { first: 0, last: 1 }),
        ),
        (
            "bytes=,0-1",
            Single(ByteRange::FromTo { first: 0, last: 1 }),
        ),
        (
            "bytes=0-99999999999999999999999",
            Single(ByteRange::FromTo {
                first: 0,
                last: u64::MAX,
            }),
        ),
        (
            "bytes=99999999999999999999999-",
            Single(ByteRange::From { first: u64::MAX }),
        ),
        ("bytes=0-1,5-6", Multiple),
        ("bytes=0-1, 5-", Multiple),
        ("bytes=0-1,x", Multiple),
        ("bytes=5-4", Ignored),
        ("bytes=-", Ignored),
        ("bytes=", Ignored),
        ("bytes=,", Ignored),
        ("bytes=a-b", Ignored),
        ("bytes=0 - 1", Ignored),
        ("bytes=+1-2", Ignored),
        ("bytes=1-2-3", Ignored),
        ("bytes 0-1", Ignored),
        ("items=0-1", Ignored),
        ("", Ignored),
        ("bytes", Ignored),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_range(value.as_bytes()), expected, "{value:?}");
    }
    assert_eq!(parse_range(b"bytes=\xff-1"), Ignored);
}

#[test]
fn range_resolution() {
    let r = |first, last| Ok(ResolvedRange { first, last });
    assert_eq!(
        ByteRange::FromTo { first: 0, last: 99 }.resolve(1000),
        r(0, 99)
    );
    assert_eq!(
        ByteRange::FromTo {
            first: 0,
            last: 5000
        }
        .resolve(1000),
        r(0, 999)
    );
    assert_eq!(
        ByteRange::FromTo {
            first: 999,
            last: 999
        }
        .resolve(1000),
        r(999, 999)
    );
    assert_eq!(
        ByteRange::FromTo {
            first: 1000,
            last: 1001
        }
        .resolve(1000),
        Err(Unsatisfiable)
    );
    assert_eq!(ByteRange::From { first: 10 }.resolve(1000), r(10, 999));
    assert_eq!(ByteRange::From { first: 999 }.resolve(1000), r(999, 999));
    assert_eq!(
        ByteRange::From { first: 1000 }.resolve(1000),
        Err(Unsatisfiable)
    );
    assert_eq!(ByteRange::Suffix { len: 10 }.resolve(1000), r(990, 999));
    assert_eq!(ByteRange::Suffix { len: 5000 }.resolve(1000), r(0, 999));
    assert_eq!(
        ByteRange::Suffix { len: 0 }.resolve(1000),
        Err(Unsatisfiable)
    );
    assert_eq!(ByteRange::Suffix { len: 1 }.resolve(0), Err(Unsatisfiable));
    assert_eq!(ByteRange::From { first: 0 }.resolve(0), Err(Unsatisfiable));
    assert_eq!(
        ByteRange::From { first: u64::MAX }.resolve(u64::MAX),
        Err(Unsatisfiable)
    );
    assert_eq!(
        ByteRange::Suffix { len: u64::MAX }.resolve(u64::MAX),
        r(0, u64::MAX - 1)
    );
    let resolved = ByteRange::FromTo {
        first: 10,
        last: 19,
    }
    .resolve(100)
    .unwrap();
    assert_eq!(resolved.len(), 10);
    assert!(!resolved.is_empty());
    assert_eq!(resolved.content_range(100), "bytes 10-19/100");
}

/// Regression: a Host with multi-byte characters once made the suffix comparison split a
/// string inside a character, which panics.
#[test]
fn regression_non_ascii_host_does_not_panic() {
    assert_eq!(
        resolve(
            Some("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}"),
            "/bucket/k",
            BASES
        ),
        Ok(addr(Some("bucket"), Some("k"), Style::Path))
    );
    assert_eq!(
        resolve(Some("\u{e9}.s3.example.com"), "/k", BASES),
        Err(AddressError::InvalidBucketName("\u{e9}".into()))
    );
}

/// Regression: backend error documents reached clients as they were, with the backend's own
/// request and host ids (Ceph's carry its zone names). The client gets the backend's code
/// and message under the gateway's request id, and the generic message for a 5xx.
#[test]
fn backend_error_documents_are_relayed_with_code_and_message_only() {
    let ceph = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InvalidPart</Code>\
        <Message>part &amp; more</Message><BucketName>b</BucketName>\
        <RequestId>tx0000abc-default</RequestId><HostId>100c-default-default</HostId></Error>";
    let out = String::from_utf8(S3Error::relayed(400, ceph, "0100000000000007")).unwrap();
    assert_eq!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidPart</Code>\
         <Message>part &amp; more</Message><RequestId>0100000000000007</RequestId></Error>"
    );
    let internal =
        b"<Error><Code>InternalError</Code><Message>rados: -5 at osd.0</Message></Error>";
    let out = String::from_utf8(S3Error::relayed(500, internal, "r")).unwrap();
    assert!(
        !out.contains("osd") && out.contains("<Code>InternalError</Code>"),
        "{out}"
    );
    // Not an error document (RGW's JSON for a path it takes for its own): a code by status.
    let out = String::from_utf8(S3Error::relayed(403, b"{\"Code\":\"x\"}", "r")).unwrap();
    assert!(out.contains("<Code>AccessDenied</Code>"), "{out}");
}

/// Regression: rclone's CompleteMultipartUpload (Go's encoding/xml) writes the quotes of each
/// ETag as `&#34;`; read as they were, the parts' ETags reached the backend in the client's
/// form and Ceph and moto answered 400 InvalidPart.
#[test]
fn character_references_are_resolved_in_element_text() {
    use twofold::s3::xml::unescape;
    assert_eq!(unescape("&#34;abc-0&#34;"), "\"abc-0\"");
    assert_eq!(unescape("&#x22;a&#X22;&quot;&amp;lt;"), "\"a\"\"&lt;");
    // A reference that does not resolve is left as it is.
    assert_eq!(unescape("a & b &nope; &#xZZ;"), "a & b &nope; &#xZZ;");
    assert_eq!(
        twofold::s3::etag::to_backend(&unescape("&#34;abc-0&#34;")),
        "\"abc\""
    );
}
