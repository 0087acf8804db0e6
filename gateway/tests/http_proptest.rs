//! Robustness: random bytes and random splits never panic the parsers, and splitting a valid
//! head or chunked body anywhere gives the same result as reading it whole.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use twofold::http::{
    ChunkedDecoder, HttpError, Limits, RequestHead, Step, parse_request_head, parse_response_head,
};
use twofold::s3::{Query, parse_range, resolve, xml};

// ---- heads ----

fn small_limits() -> Limits {
    Limits {
        header_bytes_max: 256,
        header_count_max: 8,
        url_bytes_max: 64,
    }
}

/// Random bytes, and random bytes behind a plausible start, so the parser gets past the first
/// line.
fn head_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(any::<u8>(), 0..400).prop_map(|tail| {
            let mut b = b"PUT /b/k HTTP/1.1\r\nHost: h\r\n".to_vec();
            b.extend(tail);
            b
        }),
        proptest::collection::vec(
            prop_oneof![
                Just(&b"\r\n"[..]),
                Just(&b"\r"[..]),
                Just(&b"\n"[..]),
                Just(&b": "[..]),
                Just(&b" "[..]),
                Just(&b"Transfer-Encoding"[..]),
                Just(&b"Content-Length"[..]),
                Just(&b"chunked"[..]),
                Just(&b"GET"[..]),
                Just(&b"HTTP/1.1"[..]),
                Just(&b"/"[..]),
                Just(&b"0"[..]),
                Just(&b"\t"[..]),
                Just(&b"\0"[..]),
            ],
            0..60
        )
        .prop_map(|parts| parts.concat()),
    ]
}

#[derive(Debug, Clone)]
struct ValidHead {
    bytes: Vec<u8>,
    head_len: usize,
    method: String,
    target: String,
}

fn valid_head() -> impl Strategy<Value = ValidHead> {
    (
        prop_oneof![
            Just("GET"),
            Just("PUT"),
            Just("POST"),
            Just("DELETE"),
            Just("HEAD"),
            Just("X-CUSTOM")
        ],
        "/[A-Za-z0-9._~%/?=&+-]{0,40}",
        any::<bool>(),
        proptest::collection::vec(("[A-Za-z0-9-]{1,12}", "[ -~]{0,24}"), 0..8),
        0usize..3,
        prop_oneof![Just(None), (0u64..1000).prop_map(Some)],
        proptest::collection::vec(any::<u8>(), 0..16),
    )
        .prop_map(
            |(method, target, http10, fields, empty_lines, length, body)| {
                let mut s = "\r\n".repeat(empty_lines);
                s.push_str(&format!(
                    "{method} {target} HTTP/1.{}\r\nHost: h\r\n",
                    u8::from(!http10)
                ));
                for (name, value) in fields {
                    let lower = name.to_ascii_lowercase();
                    if ["host", "content-length", "transfer-encoding"].contains(&lower.as_str()) {
                        continue;
                    }
                    s.push_str(&format!("{name}: {value}\r\n"));
                }
                if let Some(n) = length {
                    s.push_str(&format!("Content-Length: {n}\r\n"));
                }
                s.push_str("\r\n");
                let head_len = s.len();
                let mut bytes = s.into_bytes();
                bytes.extend(body);
                ValidHead {
                    bytes,
                    head_len,
                    method: method.to_owned(),
                    target,
                }
            },
        )
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_head_parsers(bytes in head_bytes()) {
        for limits in [Limits::default(), small_limits()] {
            if let Ok(Some((head, len))) = parse_request_head(&bytes, &limits) {
                prop_assert!(len <= bytes.len());
                let _ = (head.keep_alive(), head.expects_continue(), head.path(), head.query());
                prop_assert!(head.body_kind().is_ok());
            }
            if let Ok(Some((head, len))) = parse_response_head(&bytes, &limits) {
                prop_assert!(len <= bytes.len());
                let _ = (head.body_kind(true), head.body_kind(false), head.keep_alive());
            }
        }
    }

    #[test]
    fn random_prefixes_never_panic_and_complete_heads_stay_complete(bytes in head_bytes(), cut in any::<prop::sample::Index>()) {
        let limits = Limits::default();
        let full = parse_request_head(&bytes, &limits);
        let k = cut.index(bytes.len() + 1);
        let part = parse_request_head(&bytes[..k], &limits);
        if let Ok(Some((_, n))) = &full {
            // A prefix holding the whole head gives the same head; a shorter one is incomplete.
            if k >= *n {
                prop_assert_eq!(&part, &full);
            } else {
                prop_assert_eq!(part, Ok(None));
            }
        }
    }

    #[test]
    fn a_valid_head_split_anywhere_parses_the_same(h in valid_head()) {
        let limits = Limits::default();
        let full = parse_request_head(&h.bytes, &limits).unwrap();
        let (head, len) = full.clone().unwrap();
        prop_assert_eq!(len, h.head_len);
        prop_assert_eq!(&head.method, &h.method);
        prop_assert_eq!(&head.target, &h.target);
        for k in 0..=h.bytes.len() {
            let part = parse_request_head(&h.bytes[..k], &limits).unwrap();
            if k < h.head_len {
                prop_assert!(part.is_none(), "prefix {} of {}", k, h.head_len);
            } else {
                prop_assert_eq!(&part, &full);
            }
        }
    }

    #[test]
    fn written_request_heads_parse_back(
        method in "[A-Z]{1,8}",
        target in "/[!-\"$-~]{0,40}",
        fields in proptest::collection::vec(("[a-z0-9-]{1,12}", "([!-~]([ -~]{0,20}[!-~])?)?"), 0..8),
    ) {
        let mut head = RequestHead::new(method, target).with_header("host", "h");
        for (name, value) in fields {
            if !["host", "content-length", "transfer-encoding"].contains(&name.as_str()) {
                head.push_header(&name, value);
            }
        }
        let mut out = Vec::new();
        head.write(&mut out).unwrap();
        let (back, len) = parse_request_head(&out, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(len, out.len());
        prop_assert_eq!(back, head);
    }
}

// ---- chunked ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done(usize),
    NeedMore,
    Err(HttpError),
}

/// Feeds the pieces as an I/O loop would, keeping unconsumed bytes for the next read.
fn feed(pieces: &[&[u8]]) -> (Vec<u8>, Outcome) {
    let mut d = ChunkedDecoder::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut consumed = 0usize;
    let mut data = Vec::new();
    for piece in pieces {
        pending.extend_from_slice(piece);
        loop {
            let (n, more) = match d.decode(&pending) {
                Err(e) => return (data, Outcome::Err(e)),
                Ok((n, Step::Data(bytes))) => {
                    assert!(!bytes.is_empty() && bytes.len() <= n);
                    data.extend_from_slice(bytes);
                    (n, true)
                }
                Ok((n, Step::NeedMore)) => {
                    assert_eq!(n, pending.len());
                    (n, false)
                }
                Ok((n, Step::Done)) => return (data, Outcome::Done(consumed + n)),
            };
            pending.drain(..n);
            consumed += n;
            if !more {
                break;
            }
        }
    }
    (data, Outcome::NeedMore)
}

fn split_at_all<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut at = 0;
    for c in cuts {
        pieces.push(&bytes[at..c]);
        at = c;
    }
    pieces.push(&bytes[at..]);
    pieces
}

#[derive(Debug, Clone)]
struct ValidChunked {
    encoded: Vec<u8>,
    body_len: usize,
    data: Vec<u8>,
}

fn valid_chunked() -> impl Strategy<Value = ValidChunked> {
    let chunk = (
        proptest::collection::vec(any::<u8>(), 1..80),
        0usize..3,
        any::<bool>(),
        proptest::option::of("[ \t]{0,2};[a-z]{1,8}(=[a-z0-9\"]{0,8})?"),
    );
    (
        proptest::collection::vec(chunk, 0..6),
        proptest::option::of(";[a-z]{1,8}"),
        proptest::collection::vec("[A-Za-z-]{1,10}: [ -~]{0,20}", 0..3),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(chunks, last_ext, trailers, after)| {
            let mut encoded = Vec::new();
            let mut data = Vec::new();
            for (bytes, zeros, upper, ext) in chunks {
                let size = format!("{}{:x}", "0".repeat(zeros), bytes.len());
                let size = if upper {
                    size.to_ascii_uppercase()
                } else {
                    size
                };
                encoded.extend_from_slice(size.as_bytes());
                encoded.extend_from_slice(ext.unwrap_or_default().as_bytes());
                encoded.extend_from_slice(b"\r\n");
                encoded.extend_from_slice(&bytes);
                encoded.extend_from_slice(b"\r\n");
                data.extend_from_slice(&bytes);
            }
            encoded.extend_from_slice(format!("0{}\r\n", last_ext.unwrap_or_default()).as_bytes());
            for t in trailers {
                encoded.extend_from_slice(format!("{t}\r\n").as_bytes());
            }
            encoded.extend_from_slice(b"\r\n");
            let body_len = encoded.len();
            encoded.extend(after);
            ValidChunked {
                encoded,
                body_len,
                data,
            }
        })
}

fn chunked_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(
            prop_oneof![
                Just(&b"\r\n"[..]),
                Just(&b"\r"[..]),
                Just(&b"\n"[..]),
                Just(&b"5"[..]),
                Just(&b"0"[..]),
                Just(&b"f"[..]),
                Just(&b";"[..]),
                Just(&b"="[..]),
                Just(&b" "[..]),
                Just(&b"hello"[..]),
                Just(&b"X: y"[..]),
                Just(&b"ffffffffffffffff"[..]),
            ],
            0..60
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #[test]
    fn random_chunked_bytes_never_panic_and_splits_agree(
        bytes in chunked_bytes(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = feed(&[&bytes]);
        let split = feed(&split_at_all(&bytes, &cuts));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn a_valid_chunked_body_split_anywhere_decodes_the_same(
        body in valid_chunked(),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let expected = (body.data.clone(), Outcome::Done(body.body_len));
        prop_assert_eq!(feed(&[&body.encoded]), expected.clone());
        for k in 0..=body.encoded.len() {
            let (a, b) = body.encoded.split_at(k);
            prop_assert_eq!(feed(&[a, b]), expected.clone(), "split at {}", k);
        }
        prop_assert_eq!(feed(&split_at_all(&body.encoded, &cuts)), expected.clone());
        // Byte by byte.
        let bytes: Vec<&[u8]> = body.encoded.chunks(1).collect();
        prop_assert_eq!(feed(&bytes), expected.clone());
        // Truncated anywhere inside the body: more is needed, never an error.
        for k in 0..body.body_len {
            prop_assert_eq!(feed(&[&body.encoded[..k]]).1, Outcome::NeedMore, "truncated at {}", k);
        }
    }
}

// ---- S3 layer ----

proptest! {
    #[test]
    fn addressing_query_and_range_never_panic(
        host in proptest::option::of(prop_oneof!["[ -~]{0,40}", "\\PC{0,10}\\.s3\\.example\\.com", "\\PC{0,40}"]),
        target in prop_oneof!["[ -~]{0,80}", "/\\PC{0,80}"],
        query in "[ -~\u{80}-\u{10ffff}]{0,80}",
        range in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let _ = resolve(host.as_deref(), &target, &["s3.example.com", "localhost"]);
        let _ = Query::parse(Some(&query), 10);
        let _ = parse_range(&range);
        let mut r = b"bytes=".to_vec();
        r.extend_from_slice(&range);
        let _ = parse_range(&r);
    }

    #[test]
    fn xml_escaping_leaves_no_markup(text in any::<String>()) {
        let escaped = xml::escape(&text);
        prop_assert_eq!(escaped.len(), xml::escaped_len(&text));
        let forbidden = ['<', '>', '"', '\'', '\r', '\u{fffe}', '\u{ffff}'];
        let clean = !escaped.contains(forbidden);
        prop_assert!(clean);
        prop_assert!(!escaped.chars().any(|c| c < ' ' && c != '\t' && c != '\n'));
        for (i, _) in escaped.match_indices('&') {
            let rest = &escaped[i..];
            prop_assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#13;"].iter().any(|e| rest.starts_with(e)),
                "{}", rest
            );
        }
    }
}
