//! Writing text into XML element content, for the documents the gateway writes itself (error
//! documents; anything it rewrites), and reading the simple text of elements back (the
//! documents the backend sends: [`value`], [`elements`], [`unescape`]).
//!
//! `&`, `<`, `>`, `"` and `'` become entity references and CR becomes `&#13;` (a parser would
//! otherwise turn it into LF). Characters XML 1.0 cannot hold at all, even as references (C0
//! controls other than tab, LF and CR; U+FFFE and U+FFFF), become U+FFFD, so the document always
//! parses; the one loss, and only for object keys that hold control characters.

/// Appends `text`, escaped for element content, to `out`.
pub fn escape_into(text: &str, out: &mut Vec<u8>) {
    let mut utf8 = [0u8; 4];
    for c in text.chars() {
        match escaped(c) {
            Some(rep) => out.extend_from_slice(rep.as_bytes()),
            None => out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes()),
        }
    }
}

/// The text of element content with its references resolved: the five predefined
/// entities and character references (`&#34;`, `&#x22;`, which Go's `encoding/xml` writes
/// for quotes). A reference that does not resolve is left as it is.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        match after
            .find(';')
            .and_then(|semi| Some((semi, reference(&after[..semi])?)))
        {
            Some((semi, c)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A CompleteMultipartUpload request body naming `parts`: (part number, ETag as it is to
/// be sent, its quotes included).
pub fn complete_multipart_upload<S: AsRef<str>>(
    parts: impl IntoIterator<Item = (u32, S)>,
) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (number, etag) in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            escape(etag.as_ref())
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// The raw content of the first `<tag>` element of `xml` (references unresolved: see
/// [`unescape`]), if there is one and it is closed.
pub fn value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

/// The raw contents of every `<tag>` element of `xml`, in order, and whether the last one
/// opened was also closed (`false`: the document ends inside one).
pub fn elements<'a>(xml: &'a str, tag: &str) -> (Vec<&'a str>, bool) {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(a) = rest.find(&open) {
        let from = a + open.len();
        let Some(b) = rest[from..].find(&close) else {
            return (out, false);
        };
        out.push(&rest[from..from + b]);
        rest = &rest[from + b + close.len()..];
    }
    (out, true)
}

/// The character of a reference without its `&` and `;`: `lt`, `#46`, `#x2E`, ...
pub(crate) fn reference(name: &str) -> Option<char> {
    let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Some(dec) = name.strip_prefix('#') {
        dec.parse::<u32>().ok()?
    } else {
        return match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => None,
        };
    };
    char::from_u32(code)
}

/// `text` escaped for element content.
pub fn escape(text: &str) -> String {
    let mut out = Vec::with_capacity(escaped_len(text));
    escape_into(text, &mut out);
    // Only whole UTF-8 sequences and ASCII replacements were appended.
    String::from_utf8(out).unwrap_or_default()
}

/// How many bytes [`escape_into`] appends for `text`.
pub fn escaped_len(text: &str) -> usize {
    text.chars()
        .map(|c| escaped(c).map_or(c.len_utf8(), str::len))
        .sum()
}

/// The replacement for `c`, or `None` to write it as it is.
fn escaped(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        '\'' => Some("&apos;"),
        '\r' => Some("&#13;"),
        '\t' | '\n' => None,
        '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => Some("\u{fffd}"),
        _ => None,
    }
}
