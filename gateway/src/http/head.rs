//! Finding the end of a message head and checking its line structure before `httparse` reads
//! it. `httparse` accepts a bare LF as a line end (RFC 9112 §2.2 allows that leniency); a
//! gateway in front of other parsers must not, so every LF here must follow a CR, every CR
//! must precede an LF, and no line after the start line may begin with whitespace.

use super::{Fields, HttpError, Version};

/// Where the head ends, if it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The head is `buf[..end]`, blank line included.
    Complete { end: usize },
    /// No blank line yet, and no error in what has arrived.
    Partial,
}

/// Number of bytes in the empty lines (CRLF pairs) that may precede a request line
/// (RFC 9112 §2.2).
fn leading_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    while buf.len() >= i + 2 && buf[i] == b'\r' && buf[i + 1] == b'\n' {
        i += 2;
    }
    i
}

/// Scans at most `header_bytes_max` bytes of `buf` for the blank line ending the head,
/// checking line endings and obs-fold on the way.
pub(crate) fn scan(buf: &[u8], header_bytes_max: usize) -> Result<Scan, HttpError> {
    let window = buf.len().min(header_bytes_max);
    let start = leading_empty_lines(&buf[..window]);
    let mut line_start = start;
    let mut i = start;
    while i < window {
        match buf[i] {
            b'\r' => {
                if let Some(&next) = buf.get(i + 1)
                    && next != b'\n'
                {
                    return Err(HttpError::BareLineEnding);
                }
            }
            b'\n' => {
                if i == 0 || buf[i - 1] != b'\r' {
                    return Err(HttpError::BareLineEnding);
                }
                if i - 1 == line_start {
                    // An empty line: the end of the head (the start line is never empty,
                    // since leading empty lines were skipped).
                    return Ok(Scan::Complete { end: i + 1 });
                }
                line_start = i + 1;
                if let Some(&next) = buf.get(line_start)
                    && (next == b' ' || next == b'\t')
                {
                    return Err(HttpError::ObsFold);
                }
            }
            _ => {}
        }
        i += 1;
    }
    if buf.len() > header_bytes_max {
        Err(HttpError::HeadTooLarge {
            limit_bytes: header_bytes_max,
        })
    } else {
        Ok(Scan::Partial)
    }
}

/// The request target of a (possibly incomplete) request line: the bytes after the first
/// space, up to the next space or line end or the end of `buf`.
pub(crate) fn request_target_prefix(buf: &[u8]) -> &[u8] {
    let line = &buf[leading_empty_lines(buf)..];
    let Some(sp) = line
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
    else {
        return &[];
    };
    if line[sp] != b' ' {
        return &[];
    }
    let rest = &line[sp + 1..];
    let end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The error for an `httparse` version complaint: 505 when what was sent has the shape of an
/// HTTP version (`HTTP/` digit `.` digit) that is not 1.0 or 1.1, 400 when it is not a version
/// at all. `token` is the version as far as it has arrived.
fn version_error(token: &[u8], otherwise: HttpError) -> HttpError {
    let shape: &[fn(u8) -> bool] = &[
        |b| b == b'H',
        |b| b == b'T',
        |b| b == b'T',
        |b| b == b'P',
        |b| b == b'/',
        |b| b.is_ascii_digit(),
        |b| b == b'.',
        |b| b.is_ascii_digit(),
    ];
    let looks_like_version = !token.is_empty()
        && token.len() <= shape.len()
        && token.iter().zip(shape).all(|(&b, ok)| ok(b));
    if looks_like_version {
        HttpError::UnsupportedVersion
    } else {
        otherwise
    }
}

/// The version token of a request line (after its last space) as far as it has arrived.
pub(crate) fn request_version_token(buf: &[u8]) -> &[u8] {
    let line = first_line(buf);
    match line.iter().rposition(|&b| b == b' ') {
        Some(sp) => &line[sp + 1..],
        None => &[],
    }
}

/// The version token of a status line (before its first space) as far as it has arrived.
pub(crate) fn response_version_token(buf: &[u8]) -> &[u8] {
    let line = first_line(buf);
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    &line[..end]
}

fn first_line(buf: &[u8]) -> &[u8] {
    let line = &buf[leading_empty_lines(buf)..];
    let end = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len());
    &line[..end]
}

/// Maps an `httparse` error; `start_line` is the error for a malformed start line and
/// `version_token` the version as sent, to tell 400 from 505.
pub(crate) fn map_httparse(
    e: httparse::Error,
    start_line: HttpError,
    version_token: &[u8],
    header_count_max: usize,
) -> HttpError {
    match e {
        httparse::Error::HeaderName => HttpError::InvalidHeaderName,
        httparse::Error::HeaderValue => HttpError::InvalidHeaderValue,
        httparse::Error::NewLine => HttpError::BareLineEnding,
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders {
            limit: header_count_max,
        },
        httparse::Error::Version => version_error(version_token, start_line),
        _ => start_line,
    }
}

/// The fields as owned (lower-case name, value) pairs.
pub(crate) fn own_fields(headers: &[httparse::Header<'_>]) -> Result<Fields, HttpError> {
    let mut out = Vec::with_capacity(headers.len());
    for h in headers {
        // httparse already refuses controls in values; this keeps the guarantee local.
        if !super::fields::is_writable_value(h.value) {
            return Err(HttpError::InvalidHeaderValue);
        }
        out.push((
            h.name.to_ascii_lowercase(),
            super::fields::trim_ows(h.value).to_vec(),
        ));
    }
    Ok(out)
}

/// `httparse`'s minor version as ours.
pub(crate) fn version(minor: Option<u8>) -> Result<Version, HttpError> {
    match minor {
        Some(0) => Ok(Version::Http10),
        Some(1) => Ok(Version::Http11),
        _ => Err(HttpError::UnsupportedVersion),
    }
}
