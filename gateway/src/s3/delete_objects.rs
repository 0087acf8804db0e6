//! The keys of a DeleteObjects (`POST /bucket?delete`) body, read as leniently as any backend's
//! XML parser might read them, so that none with a `.` or `..` segment reaches the backend
//! ([`super::segments`]).
//!
//! Every element whose local name is `Key` (any namespace prefix, any letter case, attributes
//! allowed) is a key. Its text is what a parser would give: character references (`&#46;`,
//! `&#x2E;`) and the five predefined entities decoded, CDATA sections taken as they are,
//! comments and processing instructions left out. Each key is checked as it is and with XML
//! white space trimmed. A document the scan cannot read as plainly as that is refused as
//! malformed: not UTF-8, a `<!DOCTYPE` (which could declare entities), an unknown entity, an
//! element inside a `Key`, an unclosed tag, comment or section. No S3 client sends any of these.

use super::AddressError;
use super::segments::check_key;

/// Refuses a DeleteObjects body that names a key [`check_key`] refuses, or that cannot be
/// read plainly (see the module documentation).
pub fn check_delete_objects(body: &[u8]) -> Result<(), AddressError> {
    let text = std::str::from_utf8(body).map_err(|_| AddressError::MalformedDelete)?;
    let mut rest = text;
    // The text of the `Key` element the scan is inside, if any.
    let mut key: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        if let Some(k) = key.as_mut() {
            unescape_into(&rest[..lt], k)?;
        }
        rest = &rest[lt..];
        rest = if let Some(after) = rest.strip_prefix("<!--") {
            skip_past(after, "-->")?
        } else if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").ok_or(AddressError::MalformedDelete)?;
            if let Some(k) = key.as_mut() {
                k.push_str(&after[..end]);
            }
            &after[end + "]]>".len()..]
        } else if rest.starts_with("<!") {
            return Err(AddressError::MalformedDelete);
        } else if let Some(after) = rest.strip_prefix("<?") {
            skip_past(after, "?>")?
        } else {
            let end = tag_end(rest).ok_or(AddressError::MalformedDelete)?;
            on_tag(&rest[1..end], &mut key)?;
            &rest[end + 1..]
        };
    }
    if key.is_some() {
        return Err(AddressError::MalformedDelete);
    }
    Ok(())
}

/// Handles the inside of one tag (`Key`, `/Key`, `Object attr="v"`, `Quiet/`).
fn on_tag(tag: &str, key: &mut Option<String>) -> Result<(), AddressError> {
    if let Some(name) = tag.strip_prefix('/') {
        if let Some(k) = key.take() {
            if !is_key(name.trim()) {
                return Err(AddressError::MalformedDelete);
            }
            check_key(&k)?;
            check_key(k.trim_matches(XML_SPACE))?;
        }
        return Ok(());
    }
    if key.is_some() {
        return Err(AddressError::MalformedDelete);
    }
    let name = tag
        .split(|c: char| XML_SPACE.contains(&c) || c == '/')
        .next()
        .unwrap_or("");
    if is_key(name) {
        if tag.ends_with('/') {
            // `<Key/>`: the empty key, which names nothing outside the bucket.
            return Ok(());
        }
        *key = Some(String::new());
    }
    Ok(())
}

/// XML's white space.
const XML_SPACE: &[char] = &[' ', '\t', '\r', '\n'];

fn is_key(name: &str) -> bool {
    let local = name.rsplit(':').next().unwrap_or(name);
    local.eq_ignore_ascii_case("Key")
}

/// What follows the first `end` in `s`.
fn skip_past<'a>(s: &'a str, end: &str) -> Result<&'a str, AddressError> {
    s.find(end)
        .map(|i| &s[i + end.len()..])
        .ok_or(AddressError::MalformedDelete)
}

/// The index of the `>` that closes the tag `s` starts with, past quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, b) in s.bytes().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Appends `text` with its references decoded.
fn unescape_into(text: &str, out: &mut String) -> Result<(), AddressError> {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or(AddressError::MalformedDelete)?;
        out.push(super::xml::reference(&after[..semi]).ok_or(AddressError::MalformedDelete)?);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn doc(keys: &[&str]) -> Vec<u8> {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete>");
        for k in keys {
            s.push_str(&format!("<Object><Key>{k}</Key></Object>"));
        }
        s.push_str("<Quiet>true</Quiet></Delete>");
        s.into_bytes()
    }

    #[test]
    fn plain_keys_pass() {
        let body = doc(&["a", "b/c", ".hidden", "x&amp;y", "&lt;..&gt;", "a//b"]);
        assert_eq!(check_delete_objects(&body), Ok(()));
        let sdk = b"<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Object><Key>k</Key>\
            <VersionId>../v</VersionId></Object><Object><Key/></Object></Delete>";
        assert_eq!(check_delete_objects(sdk), Ok(()));
    }

    #[test]
    fn dot_segment_keys_in_any_spelling_are_refused() {
        for key in [
            "../bucket-b/secret.txt",
            "a/./b",
            "/bucket-b/k",
            "&#46;&#46;/bucket-b/k",
            "&#x2e;&#X2E;/bucket-b/k",
            "&#x2F;bucket-b/k",
            "<![CDATA[../bucket-b/k]]>",
            ".<!-- -->./b",
            ".<?pi x?>./b",
            "  ../b  ",
            "..\\b",
        ] {
            assert_eq!(
                check_delete_objects(&doc(&["ok", key])),
                Err(AddressError::DotSegment),
                "{key:?}"
            );
        }
        for body in [
            "<Delete><Object><s3:Key>../b/k</s3:Key></Object></Delete>",
            "<Delete><Object><key>../b/k</key></Object></Delete>",
            "<Delete><Object><Key a=\">\">../b/k</Key></Object></Delete>",
            "<Delete><Object><Key\n>../b/k</Key ></Object></Delete>",
        ] {
            assert_eq!(
                check_delete_objects(body.as_bytes()),
                Err(AddressError::DotSegment),
                "{body}"
            );
        }
    }

    #[test]
    fn documents_that_cannot_be_read_plainly_are_refused() {
        for body in [
            &b"<!DOCTYPE d [<!ENTITY e \"..\">]><Delete><Object><Key>&e;/b</Key></Object></Delete>"
                [..],
            b"<Delete><Object><Key>&e;/b</Key></Object></Delete>",
            b"<Delete><Object><Key>&#46</Key></Object></Delete>",
            b"<Delete><Object><Key><x/>../b</Key></Object></Delete>",
            b"<Delete><Object><Key>a</Object></Delete>",
            b"<Delete><Object><Key>a",
            b"<Delete><Object><Key",
            b"<Delete><!-- unclosed",
            b"<Delete><Object><Key><![CDATA[a</Key>",
            b"<Delete><Object><Key>\xff</Key></Object></Delete>",
        ] {
            assert_eq!(
                check_delete_objects(body),
                Err(AddressError::MalformedDelete),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    proptest! {
        /// Every dot of a key may be written as a reference: the key is judged the same.
        #[test]
        fn prop_references_do_not_hide_dot_segments(
            key in "[a./]{0,12}",
            spell in proptest::collection::vec(0u8..4, 12),
        ) {
            let mut written = String::new();
            for (c, how) in key.chars().zip(spell.iter().cycle()) {
                match (c, how) {
                    ('.', 1) => written.push_str("&#46;"),
                    ('.', 2) => written.push_str("&#x2E;"),
                    ('/', 3) => written.push_str("&#47;"),
                    _ => written.push(c),
                }
            }
            let expected = if key.is_empty() { Ok(()) } else { check_key(&key) };
            prop_assert_eq!(check_delete_objects(&doc(&[&written])), expected);
        }

        #[test]
        fn prop_any_body_is_judged_without_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = check_delete_objects(&body);
        }
    }
}
