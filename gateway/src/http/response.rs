//! Response heads: parsed from the backend, or built and written for a client.

use super::fields::{self, BodyKind, Fields};
use super::head::{self, Scan};
use super::{HEADER_COUNT_CEILING, HttpError, Limits, Version};

/// A status line and its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// Status code, 100 to 999.
    pub status: u16,
    /// Reason phrase (may be empty; a non-UTF-8 one is read as empty).
    pub reason: String,
    /// Header fields in order: lower-case name, value with surrounding whitespace removed.
    pub headers: Fields,
}

/// Parses a response head (from the backend) from the start of `buf`; `Ok(None)` until it has
/// ended. Any error is the backend's fault: answer the client 502 and drop the backend
/// connection. Framing is checked by [`ResponseHead::body_kind`], which needs to know whether
/// the request was HEAD.
///
/// A 1xx response (e.g. 100 Continue) is returned like any other; read the next head after it.
pub fn parse_response_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(ResponseHead, usize)>, HttpError> {
    let scanned = head::scan(buf, limits.header_bytes_max)?;
    let count_max = limits.header_count_max.min(HEADER_COUNT_CEILING);
    let mut table = [httparse::EMPTY_HEADER; HEADER_COUNT_CEILING];
    let mut res = httparse::Response::new(&mut table[..count_max]);
    let input = match scanned {
        Scan::Complete { end } => &buf[..end],
        Scan::Partial => buf,
    };
    let status = res.parse(input).map_err(|e| {
        head::map_httparse(
            e,
            HttpError::InvalidStatusLine,
            head::response_version_token(input),
            count_max,
        )
    })?;
    let len = match (status, scanned) {
        (httparse::Status::Complete(len), Scan::Complete { end }) if len == end => len,
        (httparse::Status::Partial, Scan::Partial) => return Ok(None),
        _ => return Err(HttpError::InvalidStatusLine),
    };
    let Some(code) = res.code else {
        return Err(HttpError::InvalidStatusLine);
    };
    if !(100..=999).contains(&code) {
        return Err(HttpError::InvalidStatusLine);
    }
    let head = ResponseHead {
        version: head::version(res.version)?,
        status: code,
        reason: res.reason.unwrap_or("").to_owned(),
        headers: head::own_fields(res.headers)?,
    };
    Ok(Some((head, len)))
}

impl ResponseHead {
    /// An HTTP/1.1 response with the standard reason phrase and no fields.
    pub fn new(status: u16) -> Self {
        ResponseHead {
            version: Version::Http11,
            status,
            reason: canonical_reason(status).to_owned(),
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

    /// Whether the body is chunked, with the same strictness as for requests.
    pub fn is_chunked(&self) -> Result<bool, HttpError> {
        fields::is_chunked(&self.headers, self.version)
    }

    /// Whether this response, read while the request's body was still being sent, is the
    /// server's answer to that request: an error status (4xx or 5xx), with which a server
    /// that checks a request before it reads the body (S3: a condition that fails, an upload
    /// that does not exist) refuses it and stops reading (RFC 2616 §8.2.2, kept in RFC 9112
    /// under "Failures and Timeouts"). Any other status before the body ended answers no
    /// request the server has read.
    pub fn answers_unsent_body(&self) -> bool {
        self.status >= 400
    }

    /// Whether the backend will keep the connection open. A
    /// [`BodyKind::CloseDelimited`] body also ends the connection, whatever this says.
    pub fn keep_alive(&self) -> bool {
        fields::keep_alive(&self.headers, self.version)
    }

    /// How the body that follows is framed (RFC 9112 §6.3): none after HEAD or for 1xx, 204
    /// and 304; otherwise chunked, Content-Length, or until the connection closes.
    ///
    /// Stricter than RFC 9112 for responses, since the body is relayed to a client: a coding
    /// other than `chunked`, or Transfer-Encoding together with Content-Length, is an error
    /// rather than a close-delimited body or a Content-Length to ignore.
    pub fn body_kind(&self, method_was_head: bool) -> Result<BodyKind, HttpError> {
        if method_was_head
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            // The fields still describe the representation (HEAD, 304), so must be valid.
            self.content_length()?;
            return Ok(BodyKind::None);
        }
        if self.is_chunked()? {
            return Ok(BodyKind::Chunked);
        }
        Ok(match self.content_length()? {
            Some(n) => BodyKind::ContentLength(n),
            None => BodyKind::CloseDelimited,
        })
    }

    /// Appends the head to `out`: status line, fields, blank line. The status must be three
    /// digits and the reason and every field free of control characters; on error nothing is
    /// appended.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), HttpError> {
        if !(100..=999).contains(&self.status) {
            return Err(HttpError::UnwritableHead("status is not three digits"));
        }
        if !fields::is_writable_value(self.reason.as_bytes()) {
            return Err(HttpError::UnwritableHead(
                "reason phrase holds a control character",
            ));
        }
        let mark = out.len();
        out.extend_from_slice(self.version.as_str().as_bytes());
        out.push(b' ');
        push_status(self.status, out);
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        fields::write_fields(&self.headers, out).inspect_err(|_| out.truncate(mark))
    }
}

/// Writes a status known to be 100..=999 as three digits without allocating.
fn push_status(status: u16, out: &mut Vec<u8>) {
    let digit = |n: u16| b'0' + (n % 10) as u8;
    out.extend_from_slice(&[digit(status / 100), digit(status / 10), digit(status)]);
}

/// The standard reason phrase for a status (RFC 9110 §15 and RFC 6585), or `""`.
pub fn canonical_reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_error_answers_a_body_not_all_sent() {
        for (status, answers) in [
            (100, false),
            (200, false),
            (204, false),
            (307, false),
            (400, true),
            (403, true),
            (404, true),
            (412, true),
            (500, true),
            (503, true),
        ] {
            assert_eq!(
                ResponseHead::new(status).answers_unsent_body(),
                answers,
                "{status}"
            );
        }
    }
}
