//! The ETag clients see, and the way back (docs/adr/0004-etags.md).
//!
//! The backend's ETag of a single-part object, and of each part of an upload, is the MD5 of
//! what it stored: the ciphertext. Passed on as it is, it looks exactly like the MD5 of the
//! plaintext, and clients that check it against the MD5 they computed (rclone, s3cmd, the
//! AWS Java SDK) report every upload as corrupted. Twofold therefore shows every backend
//! ETag that has no `-` with the suffix [`SUFFIX`] (`"<hex>"` → `"<hex>-0"`): by S3's own
//! convention an ETag with a `-` is not the MD5 of the object, and every client treats it
//! so. ETags that already have a `-` (multipart objects, `"<hex>-N"` with N ≥ 1) and empty
//! ones are shown as they are.
//!
//! The mapping is a pure function of the backend's ETag, so the same object has the same
//! ETag in every answer (PUT, UploadPart, Complete, Copy, HEAD, GET, every listing) at no
//! cost and without a backend request, and it is reversible: no backend makes a `-0` ETag
//! (a multipart upload has at least one part), so [`to_backend`] strips the suffix from the
//! entity tags clients send back (conditional headers, the parts of a Complete) and leaves
//! every other value alone.

use crate::http::find;
use std::borrow::Cow;

/// Appended to every backend ETag without a `-`.
pub const SUFFIX: &str = "-0";

/// The client's form of a backend ETag value, quoted (`"abc"`) or not (`abc`), possibly
/// weak (`W/"abc"`).
pub fn to_client(backend: &str) -> Cow<'_, str> {
    let (prefix, inner, quoted) = split(backend);
    if inner.is_empty() || inner.contains('-') {
        return Cow::Borrowed(backend);
    }
    let q = if quoted { "\"" } else { "" };
    Cow::Owned(format!("{prefix}{q}{inner}{SUFFIX}{q}"))
}

/// [`to_client`] of an `ETag` header value as bytes, quoted as S3 quotes it whatever the
/// backend did (Ceph's CopyObjectResult, where the gateway takes some ETags from, has them
/// unquoted). A value that is not UTF-8 is left as it is.
pub fn header_to_client(backend: &[u8]) -> Vec<u8> {
    let Ok(s) = std::str::from_utf8(backend) else {
        return backend.to_vec();
    };
    let (prefix, inner, quoted) = split(s.trim());
    if quoted || inner.is_empty() {
        return to_client(s).into_owned().into_bytes();
    }
    format!("{prefix}\"{}\"", to_client(inner)).into_bytes()
}

/// The backend's form of an entity tag a client sent (the reverse of [`to_client`]).
pub fn to_backend(client: &str) -> Cow<'_, str> {
    let (prefix, inner, quoted) = split(client);
    match inner.strip_suffix(SUFFIX) {
        Some(base) if !base.is_empty() && !base.contains('-') => {
            let q = if quoted { "\"" } else { "" };
            Cow::Owned(format!("{prefix}{q}{base}{q}"))
        }
        _ => Cow::Borrowed(client),
    }
}

/// The backend's form of a conditional header's value: `*`, or a comma-separated list of
/// entity tags, each mapped by [`to_backend`].
pub fn condition_to_backend(value: &str) -> Cow<'_, str> {
    if !value.contains(SUFFIX) {
        return Cow::Borrowed(value);
    }
    let mapped: Vec<String> = value
        .split(',')
        .map(|t| {
            let trimmed = t.trim();
            to_backend(trimmed).into_owned()
        })
        .collect();
    Cow::Owned(mapped.join(", "))
}

/// Whether `x-amz-copy-source-if-match` and `x-amz-copy-source-if-none-match` (values in
/// the backend's form, see [`condition_to_backend`]) hold for a source whose backend ETag
/// is `source`. S3 answers 412 when either does not. The gateway checks them on the HEAD
/// of the source it makes anyway, since some backends ignore them (Ceph 16 does).
pub fn copy_source_conditions_hold(
    if_match: Option<&str>,
    if_none_match: Option<&str>,
    source: &str,
) -> bool {
    let bare = |t: &str| {
        let (_, inner, _) = split(t.trim());
        inner.to_owned()
    };
    let source = bare(source);
    let any = |list: &str| list.split(',').map(bare).any(|t| t == "*" || t == source);
    if_match.is_none_or(any) && !if_none_match.is_some_and(any)
}

/// The request headers whose values are entity tags compared with stored objects.
pub const CONDITION_HEADERS: &[&str] = &[
    "if-match",
    "if-none-match",
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-none-match",
];

/// Maps every `<ETag>` element of an XML document from the backend to the client's form,
/// quoted as S3 quotes it (`&quot;...&quot;`). The element's text may be quoted with `"`
/// or `&quot;`, or not quoted.
pub fn rewrite_xml(xml: &[u8]) -> Cow<'_, [u8]> {
    const OPEN: &[u8] = b"<ETag>";
    const CLOSE: &[u8] = b"</ETag>";
    if !contains(xml, OPEN) {
        return Cow::Borrowed(xml);
    }
    let mut out = Vec::with_capacity(xml.len() + 64);
    let mut rest = xml;
    while let Some(i) = find(rest, OPEN) {
        let start = i + OPEN.len();
        let Some(len) = find(&rest[start..], CLOSE) else {
            break;
        };
        out.extend_from_slice(&rest[..start]);
        out.extend_from_slice(&element_to_client(&rest[start..start + len]));
        rest = &rest[start + len..];
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

/// The text of one `<ETag>` element in the client's form.
fn element_to_client(text: &[u8]) -> Cow<'_, [u8]> {
    let Ok(s) = std::str::from_utf8(text) else {
        return Cow::Borrowed(text);
    };
    let (inner, escaped) = match s
        .strip_prefix("&quot;")
        .and_then(|r| r.strip_suffix("&quot;"))
    {
        Some(inner) => (inner, true),
        None => (s.trim_matches('"'), false),
    };
    if inner.is_empty() {
        return Cow::Borrowed(text);
    }
    // Quoted as S3 quotes it, whatever the backend did (Ceph leaves the ETag of a
    // CopyObjectResult unquoted).
    let mapped = to_client(inner);
    if escaped && matches!(mapped, Cow::Borrowed(_)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(format!("&quot;{mapped}&quot;").into_bytes())
}

/// (`W/` or "", the tag without quotes, whether it was quoted).
fn split(tag: &str) -> (&str, &str, bool) {
    let (prefix, rest) = match tag.strip_prefix("W/") {
        Some(r) => ("W/", r),
        None => ("", tag),
    };
    match rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => (prefix, inner, true),
        None => (prefix, rest, false),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn single_part_etags_get_the_suffix_and_multipart_ones_stay() {
        let md5 = "\"9b2cf535f27731c974343645a3985328\"";
        assert_eq!(to_client(md5), "\"9b2cf535f27731c974343645a3985328-0\"");
        assert_eq!(
            to_client("9b2cf535f27731c974343645a3985328"),
            "9b2cf535f27731c974343645a3985328-0"
        );
        assert_eq!(to_client("\"abc-3\""), "\"abc-3\"");
        assert_eq!(to_client("\"\""), "\"\"");
        assert_eq!(to_client(""), "");
        assert_eq!(to_client("W/\"abc\""), "W/\"abc-0\"");
        // A part ETag with Twofold's checksum tag.
        assert_eq!(to_client("\"abc~TAG\""), "\"abc~TAG-0\"");
    }

    #[test]
    fn header_values_are_always_quoted() {
        assert_eq!(header_to_client(b"abc"), b"\"abc-0\"");
        assert_eq!(header_to_client(b"\"abc\""), b"\"abc-0\"");
        assert_eq!(header_to_client(b"abc-2"), b"\"abc-2\"");
        assert_eq!(header_to_client(b""), b"");
    }

    #[test]
    fn the_way_back_strips_only_the_suffix_twofold_adds() {
        assert_eq!(to_backend("\"abc-0\""), "\"abc\"");
        assert_eq!(to_backend("abc-0"), "abc");
        assert_eq!(to_backend("W/\"abc-0\""), "W/\"abc\"");
        assert_eq!(to_backend("\"abc-3\""), "\"abc-3\"");
        assert_eq!(to_backend("\"abc\""), "\"abc\"");
        assert_eq!(to_backend("\"-0\""), "\"-0\"");
        assert_eq!(to_backend("\"a-1-0\""), "\"a-1-0\"");
        assert_eq!(to_backend("*"), "*");
    }

    #[test]
    fn condition_lists_map_each_tag() {
        assert_eq!(condition_to_backend("*"), "*");
        assert_eq!(condition_to_backend("\"a-0\""), "\"a\"");
        assert_eq!(
            condition_to_backend("\"a-0\", W/\"b-0\",\"c-2\""),
            "\"a\", W/\"b\", \"c-2\""
        );
        assert!(matches!(
            condition_to_backend("\"abc\""),
            Cow::Borrowed("\"abc\"")
        ));
    }

    #[test]
    fn listings_and_results_have_every_etag_mapped() {
        let xml = b"<ListBucketResult><Contents><Key>a</Key><ETag>&quot;aa&quot;</ETag>\
            </Contents><Contents><Key>b</Key><ETag>\"bb-2\"</ETag></Contents>\
            <Contents><ETag>cc</ETag></Contents></ListBucketResult>";
        let out = rewrite_xml(xml);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "<ListBucketResult><Contents><Key>a</Key><ETag>&quot;aa-0&quot;</ETag>\
            </Contents><Contents><Key>b</Key><ETag>&quot;bb-2&quot;</ETag></Contents>\
            <Contents><ETag>&quot;cc-0&quot;</ETag></Contents></ListBucketResult>"
        );
        let quoted = b"<CopyObjectResult><ETag>\"dd\"</ETag></CopyObjectResult>";
        assert_eq!(
            &*rewrite_xml(quoted),
            b"<CopyObjectResult><ETag>&quot;dd-0&quot;</ETag></CopyObjectResult>"
        );
        // Nothing to map, or an unclosed element: unchanged.
        assert!(matches!(rewrite_xml(b"<a/>"), Cow::Borrowed(_)));
        assert_eq!(&*rewrite_xml(b"<ETag>\"x\""), b"<ETag>\"x\"");
        assert!(matches!(
            rewrite_xml(b"<ETag>&quot;a-2&quot;</ETag><ETag></ETag>"),
            Cow::Owned(_)
        ));
    }

    #[test]
    fn copy_source_conditions_are_judged_on_the_sources_etag() {
        let src = "\"abc\"";
        assert!(copy_source_conditions_hold(None, None, src));
        assert!(copy_source_conditions_hold(Some("\"abc\""), None, src));
        assert!(copy_source_conditions_hold(
            Some("\"x\", \"abc\""),
            None,
            src
        ));
        assert!(copy_source_conditions_hold(Some("*"), None, src));
        assert!(!copy_source_conditions_hold(Some("\"x\""), None, src));
        assert!(!copy_source_conditions_hold(None, Some("\"abc\""), src));
        assert!(!copy_source_conditions_hold(None, Some("*"), src));
        assert!(copy_source_conditions_hold(None, Some("W/\"x\""), src));
    }

    proptest! {
        #[test]
        fn every_backend_etag_comes_back_unchanged(
            hex in "[0-9a-f]{1,40}",
            parts in proptest::option::of(1u32..10_000),
            quoted in any::<bool>(),
            weak in any::<bool>(),
        ) {
            let inner = match parts {
                Some(n) => format!("{hex}-{n}"),
                None => hex,
            };
            let mut tag = if quoted { format!("\"{inner}\"") } else { inner.clone() };
            if weak { tag = format!("W/{tag}"); }
            let client = to_client(&tag).into_owned();
            // Never looks like an MD5, always has a dash.
            prop_assert!(client.contains('-'));
            prop_assert_eq!(to_backend(&client).into_owned(), tag.clone());
            prop_assert_eq!(condition_to_backend(&client).into_owned(), tag);
        }
    }
}
