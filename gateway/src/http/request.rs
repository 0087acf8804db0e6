//! Request heads: parsed from a client, or built and written for the backend.

use super::fields::{self, BodyKind, Fields};
use super::head::{self, Scan};
use super::{HEADER_COUNT_CEILING, HttpError, Limits, Version};

/// A request line and its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, case as sent (methods are case-sensitive).
    pub method: String,
    /// The request target exactly as sent: origin-form (`/path?query`), or `*` for OPTIONS.
    pub target: String,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Header fields in order: lower-case name, value with surrounding whitespace removed.
    pub headers: Fields,
}

impl Drop for RequestHead {
    /// A customer-provided key (SSE-C) is key material: its header values are zeroised
    /// with the head.
    fn drop(&mut self) {
        for (name, value) in &mut self.headers {
            if name.ends_with("-customer-key") {
                zeroize::Zeroize::zeroize(value);
            }
        }
    }
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)`: the head has not ended yet; read more and call again with the longer buffer.
/// `Ok(Some((head, len)))`: the head is `buf[..len]`, and the body (if any) starts at `len`.
/// The framing of a returned head is known valid: [`RequestHead::body_kind`] will not fail.
///
/// Errors come as soon as the bytes so far prove the head bad: a target over
/// `url_bytes_max` (414), more than `header_bytes_max` bytes without the end of the head or
/// more than `header_count_max` fields (431), bad syntax (400), a version other than 1.0 and
/// 1.1 (505), a transfer coding other than `chunked` (501).
pub fn parse_request_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, HttpError> {
    if head::request_target_prefix(buf).len() > limits.url_bytes_max {
        return Err(HttpError::UriTooLong {
            limit_bytes: limits.url_bytes_max,
        });
    }
    let scanned = head::scan(buf, limits.header_bytes_max)?;
    let count_max = limits.header_count_max.min(HEADER_COUNT_CEILING);
    let mut table = [httparse::EMPTY_HEADER; HEADER_COUNT_CEILING];
    let mut req = httparse::Request::new(&mut table[..count_max]);
    let input = match scanned {
        Scan::Complete { end } => &buf[..end],
        Scan::Partial => buf,
    };
    let status = req.parse(input).map_err(|e| {
        head::map_httparse(
            e,
            HttpError::InvalidRequestLine,
            head::request_version_token(input),
            count_max,
        )
    })?;
    let len = match (status, scanned) {
        (httparse::Status::Complete(len), Scan::Complete { end }) if len == end => len,
        (httparse::Status::Partial, Scan::Partial) => return Ok(None),
        // The two disagree on where the head ends: refuse rather than guess.
        _ => return Err(HttpError::InvalidRequestLine),
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(HttpError::InvalidRequestLine);
    };
    let version = head::version(req.version)?;
    check_target(method, target)?;
    let head = RequestHead {
        method: method.to_owned(),
        target: target.to_owned(),
        version,
        headers: head::own_fields(req.headers)?,
    };
    match head.headers_all("host").count() {
        0 if version == Version::Http11 => return Err(HttpError::MissingHost),
        0 | 1 => {}
        _ => return Err(HttpError::DuplicateHost),
    }
    head.body_kind()?;
    Ok(Some((head, len)))
}

/// Origin-form only (this is not a forward proxy), or `*` for OPTIONS; no fragment.
fn check_target(method: &str, target: &str) -> Result<(), HttpError> {
    if target == "*" {
        return if method == "OPTIONS" {
            Ok(())
        } else {
            Err(HttpError::InvalidUri("asterisk-form is only for OPTIONS"))
        };
    }
    if !target.starts_with('/') {
        return Err(HttpError::InvalidUri(
            "absolute-form and authority-form are not accepted",
        ));
    }
    if target.contains('#') {
        return Err(HttpError::InvalidUri(
            "a request target cannot hold a fragment",
        ));
    }
    Ok(())
}

impl RequestHead {
    /// An HTTP/1.1 request with no header fields, to build a request for the backend.
    pub fn new(method: impl Into<String>, target: impl Into<String>) -> Self {
        RequestHead {
            method: method.into(),
            target: target.into(),
            version: Version::Http11,
            headers: Vec::new(),
        }
    }

    /// Adds a field (the name is stored lower-case). Checked when written.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.push_header(name, value);
        self
    }

    /// Adds a field (the name is stored lower-case). Checked when written.
    pub fn push_header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Removes every field called `name` (any case).
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The first value of `name` (any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        fields::first(&self.headers, name)
    }

    /// The first value of `name` as text; `None` when absent or not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name` (any case), in order.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        fields::all(&self.headers, name)
    }

    /// Content-Length, if present. Copies that disagree, non-digits and overflow are errors.
    pub fn content_length(&self) -> Result<Option<u64>, HttpError> {
        fields::content_length(&self.headers)
    }

    /// Whether the body is chunked. Errors for a coding other than `chunked` (501), `chunked`
    /// twice or in HTTP/1.0, and Transfer-Encoding with Content-Length (400).
    pub fn is_chunked(&self) -> Result<bool, HttpError> {
        fields::is_chunked(&self.headers, self.version)
    }

    /// How the body is framed: chunked, Content-Length, or no body at all
    /// ([`BodyKind::None`]: neither field, so the body is empty; PutObject answers that with
    /// 411 MissingContentLength). Never [`BodyKind::CloseDelimited`].
    pub fn body_kind(&self) -> Result<BodyKind, HttpError> {
        if self.is_chunked()? {
            return Ok(BodyKind::Chunked);
        }
        Ok(match self.content_length()? {
            Some(n) => BodyKind::ContentLength(n),
            None => BodyKind::None,
        })
    }

    /// `Expect: 100-continue` on an HTTP/1.1 request (HTTP/1.0 clients cannot ask for it,
    /// RFC 9110 §10.1.1). Other expectations are not recognised and give `false`.
    pub fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self
                .headers_all("expect")
                .any(|v| fields::trim_ows(v).eq_ignore_ascii_case(b"100-continue"))
    }

    /// Whether the client wants the connection kept open after this exchange.
    pub fn keep_alive(&self) -> bool {
        fields::keep_alive(&self.headers, self.version)
    }

    /// The target before the first `?`, still percent-encoded.
    pub fn path(&self) -> &str {
        match self.target.split_once('?') {
            Some((path, _)) => path,
            None => &self.target,
        }
    }

    /// The target after the first `?` (possibly empty), or `None` without a `?`.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }

    /// Appends the head to `out`: request line, fields, blank line. The method must be a token
    /// and the target free of spaces and control characters, and every field valid; on error
    /// nothing is appended.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), HttpError> {
        if !fields::is_token(self.method.as_bytes()) {
            return Err(HttpError::UnwritableHead("method is not a token"));
        }
        if self.target.is_empty() || !self.target.bytes().all(|b| b > 0x20 && b != 0x7f) {
            return Err(HttpError::UnwritableHead(
                "request target is empty or holds a space or control",
            ));
        }
        let mark = out.len();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.version.as_str().as_bytes());
        out.extend_from_slice(b"\r\n");
        fields::write_fields(&self.headers, out).inspect_err(|_| out.truncate(mark))
    }
}
