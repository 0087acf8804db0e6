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

/// A CopyObjectResult document: the new object's ETag (as it is to be shown, its quotes
/// included) and its LastModified (see [`iso_time`]).
pub fn copy_object_result(etag: &str, last_modified: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>",
        escape(last_modified),
        escape(etag)
    )
}

/// Month names of HTTP dates, January first.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// An HTTP date (`Sat, 28 Nov 2026 16:19:02 GMT`) in the form S3 writes times in XML
/// (`2026-11-28T16:19:02.000Z`); `None` for anything else.
pub fn iso_time_of_http_date(v: &str) -> Option<String> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let m = MONTHS.iter().position(|x| x == mon)?;
    let fields_ok = day.len() <= 2
        && year.len() == 4
        && time.len() == 8
        && [day, year]
            .iter()
            .all(|f| f.bytes().all(|b| b.is_ascii_digit()))
        && time.bytes().all(|b| b.is_ascii_digit() || b == b':');
    fields_ok.then(|| format!("{year}-{:02}-{day:0>2}T{time}.000Z", m + 1))
}

/// `t` in the form S3 writes times in XML (`2026-11-28T16:19:02.000Z`), to the second.
pub fn iso_time(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms", days_from_civil's inverse), for dates from 1970 on.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn http_dates_become_s3_xml_times() {
        assert_eq!(
            iso_time_of_http_date("Sat, 28 Nov 2026 16:19:02 GMT").as_deref(),
            Some("2026-11-28T16:19:02.000Z")
        );
        assert_eq!(
            iso_time_of_http_date("Mon, 1 Feb 2027 00:00:09 GMT").as_deref(),
            Some("2027-02-01T00:00:09.000Z")
        );
        assert_eq!(iso_time_of_http_date("yesterday"), None);
        assert_eq!(iso_time_of_http_date("Sat, 28 Foo 2026 16:19:02 GMT"), None);
        assert_eq!(iso_time_of_http_date("Sat, 28 Nov 2026 16:19:02 CET"), None);
        assert_eq!(
            iso_time_of_http_date("Sat, 28 Nov 2026 <b>:19:02 GMT"),
            None
        );
    }

    #[test]
    fn times_are_written_as_s3_writes_them() {
        assert_eq!(iso_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2026-11-28T16:19:02Z, and the last second of a leap year.
        let t = UNIX_EPOCH + Duration::from_secs(1_795_882_742);
        assert_eq!(iso_time(t), "2026-11-28T16:19:02.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(iso_time(t), "2024-12-31T23:59:59.000Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(iso_time(t), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_copy_result_escapes_its_etag() {
        let doc = copy_object_result("\"abc\"", "2026-11-28T16:19:02.000Z");
        assert!(doc.contains("<ETag>&quot;abc&quot;</ETag>"), "{doc}");
        assert!(doc.contains("<LastModified>2026-11-28T16:19:02.000Z</LastModified>"));
        assert_eq!(
            value(&doc, "ETag").map(unescape).as_deref(),
            Some("\"abc\"")
        );
    }
}
