//! HTTP/1.1 by hand over a `std::net::TcpStream`, for requests no SDK would send: malformed
//! heads, oversized headers, truncated bodies, tampered aws-chunked framing, hand-signed
//! streaming uploads. Every read has a timeout, so a server that hangs fails the test
//! instead of stalling it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a read or write may block before the test gives up on the server.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest response head read.
const RESPONSE_HEAD_BYTES_MAX: usize = 64 * 1024;

/// A response as it came off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header fields, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (by Content-Length, or to the end of the connection without one).
    pub body: Vec<u8>,
    /// Whether the body is shorter than its Content-Length said (the server cut it).
    pub truncated: bool,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 error document, if the body is one.
    pub fn s3_code(&self) -> Option<String> {
        let text = self.text();
        if !text.contains("<Error>") {
            return None;
        }
        xml_value(&text, "Code").map(str::to_owned)
    }

    /// Panics unless this is an S3 error document with `status` and `code`.
    #[track_caller]
    pub fn assert_s3_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "status (expected {status} {code}); body: {}",
            self.text()
        );
        self.assert_is_s3_error_document();
        assert_eq!(
            self.s3_code().as_deref(),
            Some(code),
            "S3 error code; body: {}",
            self.text()
        );
    }

    /// Panics unless the body is an S3 XML error document with a Code and a Message.
    #[track_caller]
    pub fn assert_is_s3_error_document(&self) {
        let text = self.text();
        assert!(
            text.starts_with("<?xml") && text.contains("<Error>") && text.contains("</Error>"),
            "not an S3 XML error document (status {}): {text:?}",
            self.status
        );
        assert!(
            xml_value(&text, "Code").is_some_and(|c| !c.is_empty()),
            "error document without a Code: {text}"
        );
        assert!(
            xml_value(&text, "Message").is_some(),
            "error document without a Message: {text}"
        );
        if let Some(ct) = self.header("content-type") {
            assert!(ct.contains("xml"), "error content-type {ct:?}");
        }
    }
}

/// The text between `<tag>` and `</tag>`, first occurrence.
pub fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(&xml[start..end])
}

/// Every text between `<tag>` and `</tag>`, in order.
pub fn xml_values<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// Opens a connection with [`IO_TIMEOUT`] on reads and writes.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT))
        .unwrap_or_else(|e| panic!("setting a read timeout: {e}"));
    s.set_write_timeout(Some(IO_TIMEOUT))
        .unwrap_or_else(|e| panic!("setting a write timeout: {e}"));
    let _ = s.set_nodelay(true);
    s
}

/// Sends `bytes` on a new connection and reads one response (`head_request`: a response to
/// HEAD, which has no body whatever its Content-Length says). Panics if no response could
/// be read; see [`try_exchange`].
pub fn exchange(addr: SocketAddr, bytes: &[u8], head_request: bool) -> Response {
    try_exchange(addr, bytes, head_request)
        .unwrap_or_else(|e| panic!("reading the response from {addr}: {e}"))
}

/// Like [`exchange`], but returns the error when no response could be read. The bytes are
/// written from another thread while this one reads, as a client that watches for an
/// early answer does: a server that refuses a request before its body ends answers and
/// closes, and the client's unsent bytes then meet a closed socket. The kernel answers
/// those with a reset, which can discard the answer before it is read: that is the error
/// returned then (`ConnectionReset`).
pub fn try_exchange(
    addr: SocketAddr,
    bytes: &[u8],
    head_request: bool,
) -> std::io::Result<Response> {
    let mut s = connect(addr);
    let mut w = s.try_clone()?;
    let bytes = bytes.to_vec();
    // Write errors are expected when the server answers early; the answer is what counts.
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&bytes);
        let _ = w.flush();
    });
    let resp = read_response(&mut s, head_request);
    drop(s);
    let _ = writer.join();
    resp
}

/// Sends all of `bytes` on a new connection and only then reads one response, as a client
/// that does not watch for an early answer and gives up on a request whose body it could
/// not send (curl and many HTTP/1.1 clients do). A server that refuses the request before
/// its body ends and closes at once, with the rest of the body unread, makes its kernel
/// reset the connection: the client's next write fails (`ConnectionReset`, `BrokenPipe`,
/// returned here) and the answer is never read. A server that drains what follows its
/// answer before it closes (a lingering close) is always heard.
pub fn send_then_read(
    addr: SocketAddr,
    bytes: &[u8],
    head_request: bool,
) -> std::io::Result<Response> {
    let mut s = connect(addr);
    s.write_all(bytes)?;
    s.flush()?;
    read_response(&mut s, head_request)
}

/// For a request the server must refuse before reading its whole body: the answer must be
/// an S3 error document with `status` and `code`, or the connection was reset before it
/// could be read (see [`try_exchange`]), which is reported on stderr and accepted.
#[track_caller]
pub fn assert_refused(result: std::io::Result<Response>, status: u16, code: &str, what: &str) {
    match result {
        Ok(resp) => {
            assert_eq!(resp.status, status, "{what}: {}", resp.text());
            resp.assert_is_s3_error_document();
            assert_eq!(resp.s3_code().as_deref(), Some(code), "{what}");
        }
        Err(e) if is_reset(&e) => {
            eprintln!(
                "note: {what}: the connection was reset before the {status} {code} answer could be read ({e})"
            );
        }
        Err(e) => panic!("{what}: no answer: {e}"),
    }
}

/// Whether `e` is a connection reset (or the connection ending early after one).
pub fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof
    )
}

/// Reads one response from `s`. Errors if the connection ends before a complete head.
pub fn read_response(s: &mut TcpStream, head_request: bool) -> std::io::Result<Response> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > RESPONSE_HEAD_BYTES_MAX {
            return Err(std::io::Error::other("response head too long"));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed before a complete response head ({} bytes: {:?})",
                    buf.len(),
                    String::from_utf8_lossy(&buf)
                ),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = buf[head_end..].to_vec();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    if status == 100 {
        // An interim response: the caller reads the final one next.
        return Ok(Response {
            status,
            headers,
            body,
            truncated: false,
        });
    }
    let no_body = head_request || status == 204 || status == 304;
    let mut truncated = false;
    match (no_body, length) {
        (true, _) => body.clear(),
        (false, Some(len)) => {
            while body.len() < len {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => {
                        truncated = true;
                        break;
                    }
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            body.truncate(len);
        }
        (false, None) => loop {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        },
    }
    Ok(Response {
        status,
        headers,
        body,
        truncated,
    })
}

/// Whether the server closed `s` (reads end) within [`IO_TIMEOUT`].
pub fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request head: `METHOD TARGET HTTP/1.1`, the fields, the blank line.
pub fn head(method: &str, target: &str, headers: &[(String, String)]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}
