//! Writing text into XML element content, for the documents the gateway writes itself (error
//! documents; anything it rewrites), and reading the simple text of elements back.
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

/// The text of element content with the five predefined entity references resolved
/// (`&amp;` last, so that `&amp;lt;` stays `&lt;`). For the simple documents S3 servers
/// write; character references are left as they are.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
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
