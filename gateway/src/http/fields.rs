//! Header fields shared by requests and responses: lookup, the framing fields
//! (Content-Length, Transfer-Encoding, Connection) read strictly, and the checks a field must
//! pass before it is written.

use super::{HttpError, Version};

/// Header fields in the order received: lower-case name, raw value (leading and trailing
/// whitespace removed, otherwise as sent).
pub type Fields = Vec<(String, Vec<u8>)>;

/// How the length of a message body is known (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: a request with neither Content-Length nor Transfer-Encoding, or a response to
    /// HEAD, or a 1xx, 204 or 304 response.
    None,
    /// Exactly this many bytes follow the head (possibly zero).
    ContentLength(u64),
    /// `Transfer-Encoding: chunked`: read it with `ChunkedDecoder`.
    Chunked,
    /// A response with no framing: the body runs until the backend closes the connection, which
    /// therefore cannot be reused.
    CloseDelimited,
}

/// The first value of `name` (any case).
pub(crate) fn first<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// Every value of `name` (any case), in order.
pub(crate) fn all<'a>(
    fields: &'a [(String, Vec<u8>)],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    fields
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The elements of a comma-separated list field across all its lines, trimmed, empty
/// elements included (callers decide whether those are errors).
fn list_elements<'a>(
    fields: &'a [(String, Vec<u8>)],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    all(fields, name).flat_map(|v| v.split(|&b| b == b',').map(trim_ows))
}

/// The value without leading and trailing spaces and tabs.
/// Where `needle` first occurs in `hay`, if it does (`None` for an empty needle).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// Content-Length (RFC 9110 §8.6): every copy, including comma-separated ones, must be the
/// same decimal number; no signs, spaces inside, or empty elements.
pub(crate) fn content_length(fields: &[(String, Vec<u8>)]) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for element in list_elements(fields, "content-length") {
        let n = parse_decimal(element).ok_or(HttpError::InvalidContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(HttpError::InvalidContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

/// A non-empty string of ASCII digits as a u64, `None` on anything else or on overflow.
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Whether Transfer-Encoding says `chunked`, with the request-smuggling rules of RFC 9112
/// §6.1 applied: only `chunked` is understood (anything else: 501), it may appear once, never
/// in HTTP/1.0, and never together with Content-Length.
pub(crate) fn is_chunked(
    fields: &[(String, Vec<u8>)],
    version: Version,
) -> Result<bool, HttpError> {
    if first(fields, "transfer-encoding").is_none() {
        return Ok(false);
    }
    if version == Version::Http10 {
        return Err(HttpError::InvalidTransferEncoding);
    }
    let mut chunked = 0usize;
    for coding in list_elements(fields, "transfer-encoding") {
        if coding.is_empty() {
            return Err(HttpError::InvalidTransferEncoding);
        }
        if coding.eq_ignore_ascii_case(b"chunked") {
            chunked += 1;
        } else {
            return Err(HttpError::UnsupportedTransferEncoding);
        }
    }
    if chunked != 1 {
        return Err(HttpError::InvalidTransferEncoding);
    }
    if first(fields, "content-length").is_some() {
        return Err(HttpError::ConflictingFraming);
    }
    Ok(true)
}

/// Whether the connection stays open after this message: HTTP/1.1 unless `Connection: close`,
/// HTTP/1.0 only with `Connection: keep-alive`.
pub(crate) fn keep_alive(fields: &[(String, Vec<u8>)], version: Version) -> bool {
    let has =
        |token: &[u8]| list_elements(fields, "connection").any(|t| t.eq_ignore_ascii_case(token));
    match version {
        Version::Http11 => !has(b"close"),
        Version::Http10 => has(b"keep-alive") && !has(b"close"),
    }
}

/// `token` of RFC 9110 §5.6.2: the characters a field name or method may hold.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Whether a field value may be written: visible ASCII, space, tab and obs-text only, so no
/// CR, LF, NUL or other control character can split or end the head.
pub(crate) fn is_writable_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Appends `name: value\r\n` for each field, after checking all of them; on error nothing is
/// appended.
pub(crate) fn write_fields(
    fields: &[(String, Vec<u8>)],
    out: &mut Vec<u8>,
) -> Result<(), HttpError> {
    for (name, value) in fields {
        if !is_token(name.as_bytes()) {
            return Err(HttpError::UnwritableHead("header name is not a token"));
        }
        if !is_writable_value(value) {
            return Err(HttpError::UnwritableHead(
                "header value holds a control character",
            ));
        }
    }
    for (name, value) in fields {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}
