//! Request and response heads: parsing rules, limits at their boundaries, request-smuggling
//! shapes, framing helpers and the writers.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::http::{
    BodyKind, HEADER_BYTES_MAX_DEFAULT, HEADER_COUNT_MAX_DEFAULT, HttpError, Limits, RequestHead,
    ResponseHead, URL_BYTES_MAX_DEFAULT, Version, canonical_reason, parse_request_head,
    parse_response_head,
};

fn parse(b: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
    parse_request_head(b, &Limits::default())
}

fn ok(b: &[u8]) -> RequestHead {
    let (head, len) = parse(b).unwrap().expect("complete head");
    assert_eq!(len, b.len());
    head
}

fn err(b: &[u8]) -> HttpError {
    parse(b).expect_err("should be refused")
}

fn req(headers: &str) -> Vec<u8> {
    format!("GET /b/k HTTP/1.1\r\nHost: h\r\n{headers}\r\n").into_bytes()
}

fn resp(b: &[u8]) -> ResponseHead {
    let (head, len) = parse_response_head(b, &Limits::default())
        .unwrap()
        .expect("complete head");
    assert_eq!(len, b.len());
    head
}

// ---- request line and fields ----

#[test]
fn parses_a_simple_request() {
    let h = ok(b"PUT /bucket/key?uploads HTTP/1.1\r\nHost: s3.example.com\r\nX-Amz-Meta-A:  one \r\nx-amz-meta-a: two\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(h.method, "PUT");
    assert_eq!(h.target, "/bucket/key?uploads");
    assert_eq!(h.version, Version::Http11);
    assert_eq!(
        h.headers[0],
        ("host".to_owned(), b"s3.example.com".to_vec())
    );
    assert_eq!(h.header("X-AMZ-META-A"), Some(&b"one"[..]));
    assert_eq!(h.header_str("host"), Some("s3.example.com"));
    assert_eq!(
        h.headers_all("x-amz-meta-a").collect::<Vec<_>>(),
        vec![&b"one"[..], b"two"]
    );
    assert_eq!(h.header("absent"), None);
    assert_eq!(h.path(), "/bucket/key");
    assert_eq!(h.query(), Some("uploads"));
    assert_eq!(h.content_length(), Ok(Some(5)));
    assert_eq!(h.body_kind(), Ok(BodyKind::ContentLength(5)));
}

#[test]
fn head_length_excludes_the_body() {
    let b = b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET";
    let (_, len) = parse(b).unwrap().unwrap();
    assert_eq!(&b[len..], b"helloGET");
}

#[test]
fn incomplete_heads_are_none() {
    let b = b"GET /b/k HTTP/1.1\r\nHost: h\r\nA: b\r\n\r\n";
    for end in 0..b.len() {
        assert_eq!(parse(&b[..end]), Ok(None), "prefix of {end} bytes");
    }
    assert!(parse(b).unwrap().is_some());
}

#[test]
fn leading_empty_lines_are_skipped_and_counted() {
    let b = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let (h, len) = parse(b).unwrap().unwrap();
    assert_eq!(len, b.len());
    assert_eq!(h.target, "/");
    assert_eq!(parse(b"\r\n\r\n"), Ok(None));
}

#[test]
fn http_10_needs_no_host_but_11_does() {
    let h = ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(h.version, Version::Http10);
    assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), HttpError::MissingHost);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        HttpError::DuplicateHost
    );
    assert_eq!(
        err(b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n"),
        HttpError::DuplicateHost
    );
}

#[test]
fn versions_other_than_10_and_11_are_505_and_garbage_is_400() {
    for v in ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0"] {
        let e = err(format!("GET / {v}\r\nHost: h\r\n\r\n").as_bytes());
        assert_eq!(e, HttpError::UnsupportedVersion, "{v}");
        assert_eq!(e.status(), 505);
    }
    // Early, on a partial line, too.
    assert_eq!(err(b"GET / HTTP/2"), HttpError::UnsupportedVersion);
    for v in ["HTTX/1.1", "http/1.1", "HTTP/1.1x", "HTTP/11"] {
        let e = err(format!("GET / {v}\r\nHost: h\r\n\r\n").as_bytes());
        assert_eq!(e.status(), 400, "{v}: {e:?}");
    }
}

#[test]
fn malformed_request_lines_are_400() {
    for b in [
        &b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /\r\nHost: h\r\n\r\n",
        b"GET\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b" GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
    ] {
        let e = err(b);
        assert_eq!(e.status(), 400, "{:?}: {e:?}", String::from_utf8_lossy(b));
    }
}

#[test]
fn method_case_is_kept() {
    assert_eq!(ok(b"get / HTTP/1.1\r\nHost: h\r\n\r\n").method, "get");
}

#[test]
fn bare_lf_and_bare_cr_are_refused() {
    assert_eq!(
        err(b"GET / HTTP/1.1\nHost: h\n\n"),
        HttpError::BareLineEnding
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\n\r\n"),
        HttpError::BareLineEnding
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\n\n"),
        HttpError::BareLineEnding
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"),
        HttpError::BareLineEnding
    );
    assert_eq!(
        err(b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
        HttpError::BareLineEnding
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\r\n\r\n"),
        HttpError::BareLineEnding
    );
    assert_eq!(HttpError::BareLineEnding.status(), 400);
}

#[test]
fn obs_fold_and_whitespace_before_the_first_field_are_refused() {
    assert_eq!(err(&req("X: a\r\n b\r\n")), HttpError::ObsFold);
    assert_eq!(err(&req("X: a\r\n\tb\r\n")), HttpError::ObsFold);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n"),
        HttpError::ObsFold
    );
    // Detected before the head is complete.
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: h\r\n "), HttpError::ObsFold);
}

#[test]
fn invalid_field_names_are_refused() {
    for line in [
        "X : a", "X\t: a", ": a", "X Y: a", "X(: a", "X\"Y: a", "X/Y: a", "NoColon",
    ] {
        let e = err(&req(&format!("{line}\r\n")));
        assert_eq!(e.status(), 400, "{line}: {e:?}");
        assert!(
            matches!(
                e,
                HttpError::InvalidHeaderName | HttpError::InvalidHeaderValue
            ),
            "{line}: {e:?}"
        );
    }
    assert_eq!(err(&req("X : a\r\n")), HttpError::InvalidHeaderName);
}

#[test]
fn control_characters_in_values_are_refused_but_obs_text_is_kept() {
    assert_eq!(err(&req("X: a\x00b\r\n")), HttpError::InvalidHeaderValue);
    assert_eq!(err(&req("X: a\x01b\r\n")), HttpError::InvalidHeaderValue);
    assert_eq!(err(&req("X: a\x7fb\r\n")), HttpError::InvalidHeaderValue);
    let mut b = req("");
    b.truncate(b.len() - 2);
    b.extend_from_slice(b"X: caf\xc3\xa9 \xff\tend\r\n\r\n");
    assert_eq!(ok(&b).header("x"), Some(&b"caf\xc3\xa9 \xff\tend"[..]));
    assert_eq!(ok(&b).header_str("x"), None, "not UTF-8");
    assert_eq!(ok(&req("X:\r\n")).header("x"), Some(&b""[..]));
}

#[test]
fn only_origin_form_targets_and_asterisk_for_options() {
    assert_eq!(
        err(b"GET http://s3.example.com/b/k HTTP/1.1\r\nHost: h\r\n\r\n"),
        HttpError::InvalidUri("absolute-form and authority-form are not accepted")
    );
    assert!(matches!(
        err(b"CONNECT s3.example.com:443 HTTP/1.1\r\nHost: h\r\n\r\n"),
        HttpError::InvalidUri(_)
    ));
    assert!(matches!(
        err(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"),
        HttpError::InvalidUri(_)
    ));
    assert_eq!(ok(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").target, "*");
    assert!(matches!(
        err(b"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n"),
        HttpError::InvalidUri(_)
    ));
    assert_eq!(HttpError::InvalidUri("x").status(), 400);
    assert_eq!(HttpError::InvalidUri("x").s3_code().as_str(), "InvalidURI");
}

#[test]
fn path_and_query_split_at_the_first_question_mark() {
    let h = ok(b"GET /a/b?x=1?y HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((h.path(), h.query()), ("/a/b", Some("x=1?y")));
    let h = ok(b"GET /a? HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((h.path(), h.query()), ("/a", Some("")));
    let h = ok(b"GET /a%3Fb HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((h.path(), h.query()), ("/a%3Fb", None));
}

// ---- limits, at their boundaries ----

/// A complete head of exactly `len` bytes (len >= 40).
fn head_of_len(len: usize) -> Vec<u8> {
    let fixed = b"GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n".len();
    let filler = "a".repeat(len - fixed);
    let b = format!("GET / HTTP/1.1\r\nHost: h\r\nX: {filler}\r\n\r\n").into_bytes();
    assert_eq!(b.len(), len);
    b
}

#[test]
fn default_limits() {
    let l = Limits::default();
    assert_eq!(l.header_bytes_max, 16 * 1024);
    assert_eq!(l.header_count_max, 100);
    assert_eq!(l.url_bytes_max, 8 * 1024);
    assert_eq!(
        (
            HEADER_BYTES_MAX_DEFAULT,
            HEADER_COUNT_MAX_DEFAULT,
            URL_BYTES_MAX_DEFAULT
        ),
        (16384, 100, 8192)
    );
}

#[test]
fn header_bytes_max_boundary() {
    let limits = Limits::default();
    let max = limits.header_bytes_max;
    // Exactly the limit: accepted, also with a body behind it.
    let mut b = head_of_len(max);
    assert!(parse_request_head(&b, &limits).unwrap().is_some());
    b.extend_from_slice(b"body");
    assert_eq!(parse_request_head(&b, &limits).unwrap().unwrap().1, max);
    // One over: 431, whether complete or not.
    let b = head_of_len(max + 1);
    let e = parse_request_head(&b, &limits).unwrap_err();
    assert_eq!(e, HttpError::HeadTooLarge { limit_bytes: max });
    assert_eq!(
        (e.status(), e.s3_code().as_str()),
        (431, "RequestHeaderSectionTooLarge")
    );
    assert_eq!(parse_request_head(&b[..max + 1], &limits).unwrap_err(), e);
    // An incomplete head of exactly the limit may still end in time... only if it is complete.
    assert_eq!(parse_request_head(&b[..max], &limits), Ok(None));
    // One below.
    assert!(
        parse_request_head(&head_of_len(max - 1), &limits)
            .unwrap()
            .is_some()
    );
    // Small configured limit.
    let small = Limits {
        header_bytes_max: 64,
        ..Limits::default()
    };
    assert!(
        parse_request_head(&head_of_len(64), &small)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        parse_request_head(&head_of_len(65), &small).unwrap_err(),
        HttpError::HeadTooLarge { limit_bytes: 64 }
    );
}

#[test]
fn leading_empty_lines_count_against_the_limit() {
    let limits = Limits {
        header_bytes_max: 64,
        ..Limits::default()
    };
    let b = b"\r\n".repeat(40);
    assert_eq!(
        parse_request_head(&b, &limits).unwrap_err(),
        HttpError::HeadTooLarge { limit_bytes: 64 }
    );
}

fn head_with_fields(n: usize) -> Vec<u8> {
    let mut s = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
    for i in 1..n {
        s.push_str(&format!("X-{i}: v\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

#[test]
fn header_count_max_boundary() {
    let limits = Limits::default();
    let max = limits.header_count_max;
    assert_eq!(ok(&head_with_fields(max)).headers.len(), max);
    assert!(
        parse_request_head(&head_with_fields(max - 1), &limits)
            .unwrap()
            .is_some()
    );
    let b = head_with_fields(max + 1);
    let e = parse_request_head(&b, &limits).unwrap_err();
    assert_eq!(e, HttpError::TooManyHeaders { limit: max });
    assert_eq!(e.status(), 431);
    // Known before the head ends.
    assert_eq!(
        parse_request_head(&b[..b.len() - 2], &limits).unwrap_err(),
        e
    );
    let small = Limits {
        header_count_max: 3,
        ..Limits::default()
    };
    assert!(
        parse_request_head(&head_with_fields(3), &small)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        parse_request_head(&head_with_fields(4), &small).unwrap_err(),
        HttpError::TooManyHeaders { limit: 3 }
    );
}

#[test]
fn header_count_above_the_ceiling_is_clamped() {
    let huge = Limits {
        header_count_max: 100_000,
        ..Limits::default()
    };
    assert!(
        parse_request_head(&head_with_fields(256), &huge)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        parse_request_head(&head_with_fields(257), &huge).unwrap_err(),
        HttpError::TooManyHeaders { limit: 256 }
    );
}

fn request_with_target_len(len: usize) -> Vec<u8> {
    format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(len - 1)).into_bytes()
}

#[test]
fn url_bytes_max_boundary() {
    let limits = Limits::default();
    let max = limits.url_bytes_max;
    assert_eq!(ok(&request_with_target_len(max)).target.len(), max);
    assert!(
        parse_request_head(&request_with_target_len(max - 1), &limits)
            .unwrap()
            .is_some()
    );
    let b = request_with_target_len(max + 1);
    let e = parse_request_head(&b, &limits).unwrap_err();
    assert_eq!(e, HttpError::UriTooLong { limit_bytes: max });
    assert_eq!((e.status(), e.s3_code().as_str()), (414, "InvalidURI"));
    // Known as soon as the target passes the limit, before the line ends.
    assert_eq!(
        parse_request_head(&b[..4 + max + 1], &limits).unwrap_err(),
        e
    );
    assert_eq!(parse_request_head(&b[..4 + max], &limits), Ok(None));
}

// ---- framing and request smuggling ----

#[test]
fn content_length_rules() {
    let cl = |v: &str| ok(&req(&format!("Content-Length: {v}\r\n"))).content_length();
    assert_eq!(cl("0"), Ok(Some(0)));
    assert_eq!(cl("007"), Ok(Some(7)));
    assert_eq!(cl("18446744073709551615"), Ok(Some(u64::MAX)));
    assert_eq!(
        cl("5, 5"),
        Ok(Some(5)),
        "identical list members are one value (RFC 9110 §8.6)"
    );
    assert_eq!(
        ok(&req("Content-Length: 5\r\nContent-Length: 5\r\n")).content_length(),
        Ok(Some(5))
    );
    assert_eq!(ok(&req("")).content_length(), Ok(None));
    for bad in [
        "18446744073709551616",
        "99999999999999999999999",
        "+5",
        "-1",
        "5 5",
        "0x5",
        "5,6",
        "5,",
        "1e3",
        "5.0",
    ] {
        let e = err(&req(&format!("Content-Length: {bad}\r\n")));
        assert_eq!(e, HttpError::InvalidContentLength, "{bad}");
        assert_eq!((e.status(), e.s3_code().as_str()), (400, "InvalidArgument"));
    }
    assert_eq!(
        err(&req("Content-Length:\r\n")),
        HttpError::InvalidContentLength
    );
    assert_eq!(
        err(&req("Content-Length: 5\r\nContent-Length: 6\r\n")),
        HttpError::InvalidContentLength
    );
}

#[test]
fn transfer_encoding_rules() {
    let te = |v: &str| parse(&req(&format!("Transfer-Encoding: {v}\r\n")));
    assert_eq!(
        te("chunked").unwrap().unwrap().0.body_kind(),
        Ok(BodyKind::Chunked)
    );
    assert_eq!(te("Chunked").unwrap().unwrap().0.is_chunked(), Ok(true));
    assert_eq!(te("CHUNKED").unwrap().unwrap().0.is_chunked(), Ok(true));
    for v in [
        "gzip",
        "gzip, chunked",
        "chunked, gzip",
        "identity",
        "xchunked",
        "chunked;q=1",
        "deflate",
    ] {
        let e = te(v).unwrap_err();
        assert_eq!(e, HttpError::UnsupportedTransferEncoding, "{v}");
        assert_eq!((e.status(), e.s3_code().as_str()), (501, "NotImplemented"));
    }
    for v in ["chunked, chunked", "chunked,", ", chunked", ""] {
        assert_eq!(
            te(v).unwrap_err(),
            HttpError::InvalidTransferEncoding,
            "{v:?}"
        );
    }
    assert_eq!(
        err(&req(
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
        )),
        HttpError::InvalidTransferEncoding
    );
    assert_eq!(
        err(&req(
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"
        )),
        HttpError::UnsupportedTransferEncoding
    );
    assert_eq!(
        err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HttpError::InvalidTransferEncoding,
        "HTTP/1.0 has no chunked (RFC 9112 §6.1)"
    );
}

#[test]
fn smuggling_shapes_are_refused() {
    // CL.TE and TE.CL: both framing fields.
    for fields in [
        "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
    ] {
        let e = err(&req(fields));
        assert_eq!(e, HttpError::ConflictingFraming, "{fields}");
        assert_eq!(e.status(), 400);
        assert!(e.must_close());
    }
    // Obfuscated Transfer-Encoding.
    assert_eq!(
        err(&req("Transfer-Encoding : chunked\r\n")),
        HttpError::InvalidHeaderName
    );
    assert_eq!(
        err(&req("Transfer-Encoding:\r\n chunked\r\n")),
        HttpError::ObsFold
    );
    assert_eq!(
        err(&req("Transfer-Encoding: chunked\n")),
        HttpError::BareLineEnding
    );
    assert_eq!(
        err(&req(
            "Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n"
        )),
        HttpError::UnsupportedTransferEncoding
    );
    assert_eq!(
        err(&req("Transfer-Encoding: \x0bchunked\r\n")),
        HttpError::InvalidHeaderValue
    );
    // An underscore makes another field, not Transfer-Encoding (no normalisation).
    assert_eq!(
        ok(&req("Transfer_Encoding: chunked\r\nContent-Length: 1\r\n")).body_kind(),
        Ok(BodyKind::ContentLength(1))
    );
    // Tabs and spaces around the value are whitespace, not part of it.
    assert_eq!(
        ok(&req("Transfer-Encoding:\tchunked \r\n")).is_chunked(),
        Ok(true)
    );
    // Disagreeing Content-Length copies.
    assert_eq!(
        err(&req("Content-Length: 0\r\nContent-Length: 10\r\n")),
        HttpError::InvalidContentLength
    );
    assert_eq!(
        err(&req("Content-Length: 0, 10\r\n")),
        HttpError::InvalidContentLength
    );
}

#[test]
fn body_kind_of_requests() {
    assert_eq!(ok(&req("")).body_kind(), Ok(BodyKind::None));
    assert_eq!(
        ok(&req("Content-Length: 0\r\n")).body_kind(),
        Ok(BodyKind::ContentLength(0))
    );
    assert_eq!(
        ok(&req("Content-Length: 42\r\n")).body_kind(),
        Ok(BodyKind::ContentLength(42))
    );
    assert_eq!(
        ok(&req("Transfer-Encoding: chunked\r\n")).body_kind(),
        Ok(BodyKind::Chunked)
    );
}

#[test]
fn expect_100_continue() {
    assert!(ok(&req("Expect: 100-continue\r\n")).expects_continue());
    assert!(ok(&req("Expect: 100-Continue\r\n")).expects_continue());
    assert!(!ok(&req("Expect: something-else\r\n")).expects_continue());
    assert!(!ok(&req("")).expects_continue());
    assert!(!ok(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expects_continue());
}

#[test]
fn keep_alive_defaults_and_connection_tokens() {
    assert!(ok(&req("")).keep_alive());
    assert!(!ok(&req("Connection: close\r\n")).keep_alive());
    assert!(!ok(&req("Connection: Close\r\n")).keep_alive());
    assert!(!ok(&req("Connection: keep-alive, close\r\n")).keep_alive());
    assert!(!ok(&req("Connection: keep-alive\r\nConnection: close\r\n")).keep_alive());
    assert!(ok(&req("Connection: keep-alive\r\n")).keep_alive());
    assert!(ok(&req("Connection: x-close\r\n")).keep_alive());
    assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
    assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    assert!(!ok(b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n").keep_alive());
}

#[test]
fn every_error_has_a_status_and_an_s3_code() {
    let all = [
        (
            HttpError::HeadTooLarge { limit_bytes: 1 },
            431,
            "RequestHeaderSectionTooLarge",
        ),
        (
            HttpError::TooManyHeaders { limit: 1 },
            431,
            "RequestHeaderSectionTooLarge",
        ),
        (HttpError::UriTooLong { limit_bytes: 1 }, 414, "InvalidURI"),
        (HttpError::InvalidUri("x"), 400, "InvalidURI"),
        (HttpError::InvalidRequestLine, 400, "BadRequest"),
        (HttpError::InvalidStatusLine, 400, "BadRequest"),
        (HttpError::UnsupportedVersion, 505, "NotImplemented"),
        (HttpError::BareLineEnding, 400, "BadRequest"),
        (HttpError::ObsFold, 400, "BadRequest"),
        (HttpError::InvalidHeaderName, 400, "BadRequest"),
        (HttpError::InvalidHeaderValue, 400, "BadRequest"),
        (HttpError::MissingHost, 400, "BadRequest"),
        (HttpError::DuplicateHost, 400, "BadRequest"),
        (HttpError::InvalidContentLength, 400, "InvalidArgument"),
        (HttpError::ConflictingFraming, 400, "BadRequest"),
        (
            HttpError::UnsupportedTransferEncoding,
            501,
            "NotImplemented",
        ),
        (HttpError::InvalidTransferEncoding, 400, "BadRequest"),
        (HttpError::InvalidChunk, 400, "BadRequest"),
        (
            HttpError::ChunkLineTooLong { limit_bytes: 1 },
            400,
            "MaxMessageLengthExceeded",
        ),
        (
            HttpError::TrailerTooLarge { limit_bytes: 1 },
            431,
            "RequestHeaderSectionTooLarge",
        ),
        (HttpError::IncompleteBody, 400, "IncompleteBody"),
        (HttpError::UnwritableHead("x"), 500, "InternalError"),
    ];
    for (e, status, code) in all {
        assert_eq!((e.status(), e.s3_code().as_str()), (status, code), "{e:?}");
        assert_eq!(e.must_close(), !matches!(e, HttpError::UnwritableHead(_)));
        assert!(!e.to_string().is_empty());
    }
}

// ---- responses ----

#[test]
fn parses_a_response() {
    let h = resp(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nETag: \"abc\"\r\n\r\n");
    assert_eq!(
        (h.version, h.status, h.reason.as_str()),
        (Version::Http11, 200, "OK")
    );
    assert_eq!(h.header_str("etag"), Some("\"abc\""));
    assert_eq!(h.body_kind(false), Ok(BodyKind::ContentLength(3)));
    let h = resp(b"HTTP/1.0 404 \r\n\r\n");
    assert_eq!(
        (h.version, h.status, h.reason.as_str()),
        (Version::Http10, 404, "")
    );
    let h = resp(b"HTTP/1.1 204\r\n\r\n");
    assert_eq!(h.status, 204);
    assert_eq!(
        resp(b"HTTP/1.1 100 Continue\r\n\r\n").body_kind(false),
        Ok(BodyKind::None)
    );
}

#[test]
fn incomplete_and_malformed_responses() {
    let b = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    for end in 0..b.len() {
        assert_eq!(
            parse_response_head(&b[..end], &Limits::default()),
            Ok(None),
            "{end}"
        );
    }
    let bad = |b: &[u8]| parse_response_head(b, &Limits::default()).unwrap_err();
    assert_eq!(bad(b"HTTP/1.1 20 OK\r\n\r\n"), HttpError::InvalidStatusLine);
    assert_eq!(
        bad(b"HTTP/1.1 abc OK\r\n\r\n"),
        HttpError::InvalidStatusLine
    );
    assert_eq!(
        bad(b"HTTP/1.1 099 OK\r\n\r\n"),
        HttpError::InvalidStatusLine
    );
    assert_eq!(
        bad(b"HTTP/2.0 200 OK\r\n\r\n"),
        HttpError::UnsupportedVersion
    );
    assert_eq!(
        bad(b"HTTX/1.1 200 OK\r\n\r\n"),
        HttpError::InvalidStatusLine
    );
    assert_eq!(bad(b"HTTP/1.1 200 OK\nA: b\n\n"), HttpError::BareLineEnding);
    assert_eq!(
        bad(b"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"),
        HttpError::ObsFold
    );
    assert_eq!(
        bad(b"HTTP/1.1 200 OK\r\nA : b\r\n\r\n"),
        HttpError::InvalidHeaderName
    );
    let small = Limits {
        header_bytes_max: 20,
        ..Limits::default()
    };
    assert_eq!(
        parse_response_head(b"HTTP/1.1 200 OK\r\nA: bcdef\r\n\r\n", &small).unwrap_err(),
        HttpError::HeadTooLarge { limit_bytes: 20 }
    );
}

#[test]
fn response_body_kinds() {
    let kind = |fields: &str, status: u16, head: bool| {
        resp(format!("HTTP/1.1 {status} X\r\n{fields}\r\n").as_bytes()).body_kind(head)
    };
    assert_eq!(
        kind("Content-Length: 10\r\n", 200, true),
        Ok(BodyKind::None)
    );
    assert_eq!(
        kind("Content-Length: 10\r\n", 304, false),
        Ok(BodyKind::None)
    );
    assert_eq!(kind("", 204, false), Ok(BodyKind::None));
    assert_eq!(kind("", 101, false), Ok(BodyKind::None));
    assert_eq!(
        kind("Content-Length: 10\r\n", 200, false),
        Ok(BodyKind::ContentLength(10))
    );
    assert_eq!(
        kind("Transfer-Encoding: chunked\r\n", 200, false),
        Ok(BodyKind::Chunked)
    );
    assert_eq!(kind("", 200, false), Ok(BodyKind::CloseDelimited));
    assert_eq!(kind("", 500, false), Ok(BodyKind::CloseDelimited));
    assert_eq!(
        kind(
            "Transfer-Encoding: chunked\r\nContent-Length: 10\r\n",
            200,
            false
        ),
        Err(HttpError::ConflictingFraming)
    );
    assert_eq!(
        kind("Transfer-Encoding: gzip\r\n", 200, false),
        Err(HttpError::UnsupportedTransferEncoding)
    );
    assert_eq!(
        kind("Content-Length: x\r\n", 304, false),
        Err(HttpError::InvalidContentLength)
    );
    assert_eq!(
        kind("Content-Length: x\r\n", 200, true),
        Err(HttpError::InvalidContentLength)
    );
    assert_eq!(
        resp(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").body_kind(false),
        Err(HttpError::InvalidTransferEncoding)
    );
}

#[test]
fn response_keep_alive() {
    assert!(resp(b"HTTP/1.1 200 OK\r\n\r\n").keep_alive());
    assert!(!resp(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").keep_alive());
    assert!(!resp(b"HTTP/1.0 200 OK\r\n\r\n").keep_alive());
    assert!(resp(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keep_alive());
}

// ---- writers ----

#[test]
fn writes_a_response_head() {
    let h = ResponseHead::new(404)
        .with_header("Content-Type", "application/xml")
        .with_header("x-amz-request-id", "R1");
    let mut out = b"prefix".to_vec();
    h.write(&mut out).unwrap();
    assert_eq!(
        out,
        b"prefixHTTP/1.1 404 Not Found\r\ncontent-type: application/xml\r\nx-amz-request-id: R1\r\n\r\n"
    );
    let mut out = Vec::new();
    ResponseHead::new(299).write(&mut out).unwrap();
    assert_eq!(out, b"HTTP/1.1 299 \r\n\r\n");
}

#[test]
fn writers_refuse_injection_and_write_nothing() {
    let cases: Vec<ResponseHead> = vec![
        ResponseHead::new(200).with_header("x-a", "v\r\nSet-Cookie: evil"),
        ResponseHead::new(200).with_header("x-a", "v\nx"),
        ResponseHead::new(200).with_header("x-a", "v\rx"),
        ResponseHead::new(200).with_header("x-a", "v\0x"),
        ResponseHead::new(200).with_header("x a", "v"),
        ResponseHead::new(200).with_header("x:a", "v"),
        ResponseHead::new(200).with_header("", "v"),
        ResponseHead::new(200).with_header("x-\u{e9}", "v"),
        ResponseHead {
            reason: "OK\r\nX: y".into(),
            ..ResponseHead::new(200)
        },
        ResponseHead::new(1000),
        ResponseHead::new(99),
    ];
    for h in cases {
        let mut out = b"keep".to_vec();
        let e = h.write(&mut out).unwrap_err();
        assert!(matches!(e, HttpError::UnwritableHead(_)), "{h:?}");
        assert_eq!(e.status(), 500);
        assert_eq!(out, b"keep", "{h:?}");
    }
    let reqs = [
        RequestHead::new("GET", "/a b").with_header("host", "h"),
        RequestHead::new("GET", "/a\r\nX: y").with_header("host", "h"),
        RequestHead::new("GET", "").with_header("host", "h"),
        RequestHead::new("G T", "/").with_header("host", "h"),
        RequestHead::new("GET", "/").with_header("host", "h\r\nX: y"),
    ];
    for h in reqs {
        let mut out = Vec::new();
        assert!(
            matches!(h.write(&mut out), Err(HttpError::UnwritableHead(_))),
            "{h:?}"
        );
        assert!(out.is_empty());
    }
}

#[test]
fn request_head_round_trips() {
    let mut h = RequestHead::new("PUT", "/bucket/a%20key?partNumber=1&uploadId=x")
        .with_header("Host", "backend:9000")
        .with_header("Content-Length", "11")
        .with_header("X-Amz-Meta-Obs", b"\xff\xfe".to_vec());
    h.push_header("x-drop", "1");
    h.remove_header("X-DROP");
    let mut out = Vec::new();
    h.write(&mut out).unwrap();
    assert!(out.starts_with(
        b"PUT /bucket/a%20key?partNumber=1&uploadId=x HTTP/1.1\r\nhost: backend:9000\r\n"
    ));
    let (back, len) = parse(&out).unwrap().unwrap();
    assert_eq!(len, out.len());
    assert_eq!(back, h);
}

#[test]
fn response_head_round_trips() {
    let mut h = ResponseHead::new(206).with_header("Content-Range", "bytes 0-1/10");
    h.push_header("x-drop", "1");
    h.remove_header("x-drop");
    let mut out = Vec::new();
    h.write(&mut out).unwrap();
    assert_eq!(resp(&out), h);
}

#[test]
fn reason_phrases() {
    assert_eq!(canonical_reason(200), "OK");
    assert_eq!(canonical_reason(416), "Range Not Satisfiable");
    assert_eq!(canonical_reason(431), "Request Header Fields Too Large");
    assert_eq!(canonical_reason(505), "HTTP Version Not Supported");
    assert_eq!(canonical_reason(799), "");
}
