//! `twofold::http::parse_request_head` on arbitrary bytes, and everything the gateway then
//! reads from a head it accepted: framing, path and query, bucket and key, Range.
//!
//! Besides "never panics", it checks what the parser documents: a returned head's framing is
//! valid (`body_kind` does not fail), its length lies within the input, the head alone parses
//! to the same result, and a head written back out parses to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twofold::http::{Limits, parse_request_head};
use twofold::s3::{ByteRange, Query, RangeRequest, parse_range, resolve};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(Some((head, len))) = parse_request_head(data, &limits) else {
        return;
    };
    assert!(len <= data.len(), "head length {len} past the input");

    // The head on its own (without whatever body bytes followed) parses the same.
    let again = parse_request_head(&data[..len], &limits);
    assert_eq!(
        again,
        Ok(Some((head.clone(), len))),
        "head alone parses differently"
    );

    // Documented: the framing of a returned head is known valid.
    let kind = head.body_kind();
    assert!(
        kind.is_ok(),
        "body_kind failed on an accepted head: {kind:?}"
    );
    let _ = head.content_length();
    let _ = head.keep_alive();
    let _ = head.expects_continue();

    let path = head.path();
    let query = head.query();
    assert!(head.target.starts_with(path));
    if let Some(q) = query {
        assert_eq!(head.target.len(), path.len() + 1 + q.len());
    }

    if let Ok(addr) = resolve(head.header_str("host"), &head.target, &["localhost"]) {
        let _ = addr.resource();
        if let Some(key) = &addr.key {
            assert!(!key.is_empty(), "resolve returned an empty key");
        }
    }
    if let Ok(q) = Query::parse(query, 100) {
        assert!(q.len() <= 100);
    }
    if let Some(value) = head.header("range") {
        if let RangeRequest::Single(range) = parse_range(value) {
            if let ByteRange::FromTo { first, last } = range {
                assert!(first <= last);
            }
            for size in [0, 1, 10, 4096, u64::MAX] {
                if let Ok(r) = range.resolve(size) {
                    assert!(
                        r.first <= r.last && r.last < size,
                        "{range:?} in {size}: {r:?}"
                    );
                    assert!(r.len() >= 1);
                    let _ = r.content_range(size);
                }
            }
        }
    }

    // A head written back out parses to itself (leading empty lines and the spacing around
    // field values are not kept, and need not be).
    let mut out = Vec::new();
    match head.write(&mut out) {
        Ok(()) => {
            let reparsed = parse_request_head(&out, &limits);
            assert_eq!(
                reparsed,
                Ok(Some((head.clone(), out.len()))),
                "written head {:?} does not parse back",
                String::from_utf8_lossy(&out)
            );
        }
        Err(e) => panic!("an accepted head cannot be written back: {e:?}"),
    }
});
