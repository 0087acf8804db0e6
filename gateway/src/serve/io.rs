//! A TCP connection with an owned read buffer, on compio: the head is read into the buffer,
//! body bytes that arrived with it are handed out from there, and the rest is read either
//! into the buffer or straight into the caller's buffer (no intermediate copy). The stream
//! under it is plain TCP or TLS ([`Stream`]); nothing above this module knows which.
//!
//! The connection also keeps the facts that decide whether it may carry another request:
//! whether every wait stayed within its deadline ([`Deadlines`], [`Conn::timed_out`]) and
//! whether the current request's body was read to its end ([`Conn::request_body_read`]).

use crate::http::find;
use crate::http::{
    BodyKind, HttpError, Limits, RequestHead, ResponseHead, parse_request_head, parse_response_head,
};
use crate::limits::Deadlines;
use compio::buf::{BufResult, IntoInner, IoBuf, IoBufMut};
use compio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use compio::net::TcpStream;
use std::io;
use std::time::Instant;

/// A connection's byte stream: plain TCP, or TLS over TCP (client- or server-side).
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP: only where the configuration asks for it explicitly.
    Plain(TcpStream),
    /// TLS over TCP (rustls, driven on the core's runtime).
    Tls(Box<compio::tls::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    async fn read<B: IoBufMut>(&mut self, buf: B) -> BufResult<usize, B> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }
}

impl AsyncWrite for Stream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(s) => s.write(buf).await,
            Stream::Tls(s) => {
                // The TLS stream buffers records; push them to the socket with each write
                // so that a response never waits in a buffer for a flush that never comes.
                let BufResult(res, buf) = s.write(buf).await;
                match res {
                    Ok(n) => match s.flush().await {
                        Ok(()) => BufResult(Ok(n), buf),
                        Err(e) => BufResult(Err(e), buf),
                    },
                    Err(e) => BufResult(Err(e), buf),
                }
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush().await,
            Stream::Tls(s) => s.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
        }
    }
}

/// Size of a connection's read buffer: room for the largest head plus some body bytes.
/// Taken when the connection has bytes to read; an idle keep-alive client connection holds
/// none.
pub const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Longest a refused connection is drained after its error answer ([`Conn::linger_close`]).
pub const LINGER_TIME_MAX_MS: u64 = 5_000;
/// Most request bytes read and discarded by [`Conn::linger_close`].
pub const LINGER_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Read size of [`Conn::linger_close`] on a connection that holds no buffer.
const LINGER_READ_BYTES: usize = 16 * 1024;

/// What a connection was waiting for when it ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The next request on a keep-alive connection.
    Idle,
    /// The rest of a head (a request head from the client, a response head from the
    /// backend).
    Head,
    /// The next bytes of a body.
    Body,
    /// The peer to take the bytes written to it.
    Send,
}

impl Wait {
    /// The `reason` label of `twofold_connections_closed_total`.
    pub fn label(self) -> &'static str {
        match self {
            Wait::Idle => "idle_timeout",
            Wait::Head => "head_timeout",
            Wait::Body => "body_timeout",
            Wait::Send => "send_timeout",
        }
    }
}

/// How much of the current request's body has been read ([`Conn::start_body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestBody {
    /// No body, or all of it read.
    Read,
    /// A Content-Length body that ends when this many bytes of the stream are consumed.
    Until(u64),
    /// A chunked body whose last chunk has not been decoded yet.
    Chunked,
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// A connection and the bytes read from it but not consumed yet (`buf[pos..]`).
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    pos: usize,
    meter: Option<crate::telemetry::Meter>,
    response: ResponseMark,
    /// How long reads and writes may wait; `None`: as long as the peer likes.
    deadlines: Option<Deadlines>,
    /// While a head is read: when it must be complete, and what the wait is called.
    head_limit: Option<(Instant, Wait)>,
    /// What the connection was waiting for when a deadline passed.
    timed_out: Option<Wait>,
    /// Bytes of the stream consumed so far.
    consumed: u64,
    body: RequestBody,
    /// Whether the current request is a HEAD (its answers carry no body).
    head_request: bool,
    /// Whether the last response head read allows another exchange (no `Connection:
    /// close`, HTTP/1.1).
    response_keep_alive: bool,
    /// Set while the gateway drains: every response written then says `Connection: close`.
    closing: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Whether a response written on this connection said `Connection: close`.
    told_close: bool,
}

/// The first final (non-1xx) response written since [`Conn::begin_request`]: its status and
/// when its first byte went out.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseMark {
    /// Status code; 0 while no final response has been written.
    pub status: u16,
    /// When its first byte was written.
    pub first_byte: Option<std::time::Instant>,
}

/// What went wrong reading a head.
#[derive(Debug)]
pub enum HeadError {
    /// The peer closed, the socket failed, or a deadline passed (`TimedOut`).
    Io(io::Error),
    /// The bytes are not an acceptable HTTP head.
    Http(HttpError),
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> Self {
        HeadError::Io(e)
    }
}

fn timed_out() -> io::Error {
    io::ErrorKind::TimedOut.into()
}

impl Conn {
    /// Wraps a connected plain TCP stream.
    pub fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        Self::from_stream(Stream::Plain(stream))
    }

    /// Wraps a stream (a TLS one after its handshake, or a plain one).
    pub fn from_stream(stream: Stream) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            pos: 0,
            meter: None,
            response: ResponseMark::default(),
            deadlines: None,
            head_limit: None,
            timed_out: None,
            consumed: 0,
            body: RequestBody::Read,
            head_request: false,
            response_keep_alive: true,
            closing: None,
            told_close: false,
        }
    }

    /// While `flag` is set, every response head written on this connection gets
    /// `Connection: close` (a draining gateway: clients go elsewhere for their next
    /// request instead of meeting a closed connection).
    pub fn with_closing(mut self, flag: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.closing = Some(flag);
        self
    }

    /// Whether a response on this connection said `Connection: close`: it must carry no
    /// other request.
    pub fn told_close(&self) -> bool {
        self.told_close
    }

    /// Counts the bytes read and written on this connection in `meter`.
    pub fn with_meter(mut self, meter: crate::telemetry::Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Bounds every wait of this connection by `deadlines`.
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = Some(deadlines);
        self
    }

    /// What the connection was waiting for when a deadline passed, if one did.
    pub fn timed_out(&self) -> Option<Wait> {
        self.timed_out
    }

    /// Starts watching for the response to a new request.
    pub fn begin_request(&mut self) {
        self.response = ResponseMark::default();
        self.head_request = false;
        self.body = RequestBody::Read;
    }

    /// Notes the framing of the request whose head was just read, so that
    /// [`Conn::request_body_read`] can tell whether its body was read to the end.
    pub fn start_body(&mut self, head: &RequestHead) {
        self.head_request = head.method == "HEAD";
        self.body = match head.body_kind() {
            Ok(BodyKind::None | BodyKind::ContentLength(0)) => RequestBody::Read,
            Ok(BodyKind::ContentLength(n)) => RequestBody::Until(self.consumed.saturating_add(n)),
            // A chunked body, or a framing the handlers refuse: unread until proven read.
            Ok(BodyKind::Chunked | BodyKind::CloseDelimited) | Err(_) => RequestBody::Chunked,
        };
    }

    /// Notes that the last chunk of a chunked request body has been decoded.
    pub fn chunked_body_read(&mut self) {
        if self.body == RequestBody::Chunked {
            self.body = RequestBody::Read;
        }
    }

    /// Whether the current request's body has been read to its end (always, without one).
    /// A connection whose body was not must not read another request from the stream.
    pub fn request_body_read(&self) -> bool {
        match self.body {
            RequestBody::Read => true,
            RequestBody::Until(end) => self.consumed >= end,
            RequestBody::Chunked => false,
        }
    }

    /// Whether the current request is a HEAD: its answers, errors included, have no body.
    pub fn is_head_request(&self) -> bool {
        self.head_request
    }

    /// The response written since [`Conn::begin_request`], if any.
    pub fn response(&self) -> ResponseMark {
        self.response
    }

    fn note_read(&self, n: usize) {
        if let Some(m) = &self.meter {
            m.received.increment(n as u64);
        }
    }

    /// Notes what a write about to go out says: the first final status line of a response.
    /// Returns whether the write starts a final response head.
    fn note_write(&mut self, data: &[u8]) -> bool {
        if self.response.status == 0
            && let Some(code) = data
                .strip_prefix(b"HTTP/1.1 ")
                .and_then(|rest| rest.get(..3))
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| c.parse::<u16>().ok())
            && code >= 200
        {
            self.response = ResponseMark {
                status: code,
                first_byte: Some(std::time::Instant::now()),
            };
            return true;
        }
        false
    }

    /// The response head `bytes` begins, with `Connection: close` added (a new buffer to
    /// write instead), when the connection closes after it: while the gateway drains, and
    /// when the request's body has not been read to its end (an early answer; the rest of
    /// the body is never read as a request). The client then takes a new connection for
    /// its next request instead of meeting a closed one. Notes whether the head says so.
    fn closing_head(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let head_len = find(bytes, b"\r\n\r\n").map_or(bytes.len(), |i| i + 4);
        let says_close = contains_ignore_case(&bytes[..head_len], b"\r\nconnection: close\r\n");
        let draining = self
            .closing
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::Relaxed));
        let closes = draining || !self.request_body_read();
        if says_close || !closes {
            self.told_close |= says_close;
            return None;
        }
        let line_end = find(bytes, b"\r\n")?;
        let mut out = Vec::with_capacity(bytes.len() + 19);
        out.extend_from_slice(&bytes[..line_end + 2]);
        out.extend_from_slice(b"connection: close\r\n");
        out.extend_from_slice(&bytes[line_end + 2..]);
        self.told_close = true;
        Some(out)
    }

    fn note_written(&self, n: usize) {
        if let Some(m) = &self.meter {
            m.sent.increment(n as u64);
        }
    }

    /// Bytes read and not consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Marks `n` buffered bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.pos);
        self.pos += n;
        self.consumed += n as u64;
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// When the next read must have returned, and what it waits for.
    fn read_limit(&self) -> Option<(Instant, Wait)> {
        self.head_limit.or_else(|| {
            self.deadlines
                .map(|d| (Instant::now() + d.read_gap, Wait::Body))
        })
    }

    /// Runs one read or write of the stream within `limit`; on time out, notes what was
    /// waited for and gives `None`.
    async fn within<T>(
        timed_out: &mut Option<Wait>,
        limit: Option<(Instant, Wait)>,
        op: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        match limit {
            None => Some(op.await),
            Some((at, wait)) => match compio::time::timeout_at(at, op).await {
                Ok(r) => Some(r),
                Err(_) => {
                    *timed_out = Some(wait);
                    None
                }
            },
        }
    }

    /// Reads more bytes into the buffer; returns how many (0 at end of stream). The buffer
    /// is taken here, when there is something to read.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(READ_BUFFER_BYTES);
        }
        if self.buf.len() == self.buf.capacity() {
            return Err(io::Error::other("read buffer full"));
        }
        let limit = self.read_limit();
        let buf = std::mem::take(&mut self.buf);
        let Some(BufResult(res, buf)) =
            Self::within(&mut self.timed_out, limit, self.stream.append(buf)).await
        else {
            return Err(timed_out());
        };
        self.buf = buf;
        if let Ok(n) = res {
            self.note_read(n);
        }
        res
    }

    /// Reads exactly `dst.len()` bytes, first from the buffer, then straight from the socket
    /// into `dst` (an owned buffer, given back). Fails with `UnexpectedEof` if the stream
    /// ends first, `TimedOut` if a deadline passes (then `dst` comes back as zeroes).
    pub async fn read_exact_into(
        &mut self,
        mut dst: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> (io::Result<()>, Vec<u8>) {
        let mut at = range.start;
        let take = self.buffered().len().min(range.end - at);
        dst[at..at + take].copy_from_slice(&self.buf[self.pos..self.pos + take]);
        self.consume(take);
        at += take;
        while at < range.end {
            let len = dst.len();
            let limit = self.read_limit();
            let read = self.stream.read(dst.slice(at..range.end));
            let Some(BufResult(res, slice)) = Self::within(&mut self.timed_out, limit, read).await
            else {
                return (Err(timed_out()), vec![0; len]);
            };
            dst = slice.into_inner();
            match res {
                Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), dst),
                Ok(n) => {
                    self.note_read(n);
                    self.consumed += n as u64;
                    at += n;
                }
                Err(e) => return (Err(e), dst),
            }
        }
        (Ok(()), dst)
    }

    /// Waits for the first byte of the next request, holding no read buffer meanwhile:
    /// `first` for a new connection (its whole head is due within the head deadline from
    /// now), otherwise a keep-alive connection (due within the idle deadline). Then starts
    /// the head deadline. Without deadlines it returns at once.
    async fn await_request(&mut self, first: bool) -> io::Result<()> {
        let Some(d) = self.deadlines else {
            return Ok(());
        };
        let now = Instant::now();
        let head_due = (now + d.head, Wait::Head);
        if !self.buffered().is_empty() {
            self.head_limit = Some(head_due);
            return Ok(());
        }
        // Nothing buffered: an idle connection gives its buffer back.
        self.buf = Vec::new();
        self.pos = 0;
        let wait = if first {
            head_due
        } else {
            (now + d.idle, Wait::Idle)
        };
        if let Stream::Plain(s) = &self.stream {
            // Readiness first, so that the buffer is taken only once bytes are there.
            use compio::driver::ToSharedFd;
            let poll = compio::runtime::fd::PollFd::from_shared_fd(s.to_shared_fd())?;
            match Self::within(&mut self.timed_out, Some(wait), poll.read_ready()).await {
                Some(r) => r?,
                None => return Err(timed_out()),
            }
        }
        // A TLS stream may hold decrypted bytes already: its first read waits instead.
        self.head_limit = Some(wait);
        Ok(())
    }

    /// Reads a request head. `Ok(None)` when the peer closed cleanly before sending one.
    /// `first`: the connection's first request (see [`Conn::await_request`]).
    pub async fn read_request_head(
        &mut self,
        limits: &Limits,
        first: bool,
    ) -> Result<Option<RequestHead>, HeadError> {
        self.await_request(first).await?;
        let result = self.read_request_head_now(limits).await;
        self.head_limit = None;
        result
    }

    async fn read_request_head_now(
        &mut self,
        limits: &Limits,
    ) -> Result<Option<RequestHead>, HeadError> {
        loop {
            match parse_request_head(self.buffered(), limits).map_err(HeadError::Http)? {
                Some((head, len)) => {
                    self.consume(len);
                    return Ok(Some(head));
                }
                None => {
                    let idle = self.buffered().is_empty();
                    if self.fill().await? == 0 {
                        if self.buffered().is_empty() {
                            return Ok(None);
                        }
                        return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                    // The first bytes of the head came: from now on the head deadline.
                    if idle
                        && let (Some(d), Some((_, Wait::Idle))) = (self.deadlines, self.head_limit)
                    {
                        self.head_limit = Some((Instant::now() + d.head, Wait::Head));
                    }
                }
            }
        }
    }

    /// Reads a response head (from the backend), within the head deadline from now.
    pub async fn read_response_head(&mut self) -> Result<ResponseHead, HeadError> {
        self.head_limit = self
            .deadlines
            .map(|d| (Instant::now() + d.head, Wait::Head));
        let result = self.read_response_head_now().await;
        self.head_limit = None;
        if let Ok(head) = &result {
            self.response_keep_alive = head.keep_alive();
        }
        result
    }

    /// Whether this (backend) connection may carry another exchange: the last response
    /// did not say `Connection: close` and no wait on it ran out of time.
    pub fn reusable(&self) -> bool {
        self.response_keep_alive && self.timed_out.is_none()
    }

    async fn read_response_head_now(&mut self) -> Result<ResponseHead, HeadError> {
        loop {
            match parse_response_head(self.buffered(), &Limits::default())
                .map_err(HeadError::Http)?
            {
                Some((head, len)) => {
                    self.consume(len);
                    return Ok(head);
                }
                None => {
                    if self.fill().await? == 0 {
                        return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
    }

    /// Writes all of `data[range]` (an owned buffer, given back as it was, its contents
    /// included, so that callers reuse it; as zeroes after a deadline passed). Each write
    /// must make progress within the write deadline.
    pub async fn write_range(
        &mut self,
        data: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> (io::Result<()>, Vec<u8>) {
        if self.note_write(&data[range.clone()])
            && let Some(head) = self.closing_head(&data[range.clone()])
        {
            // The caller's buffer is not the one written: it comes back untouched.
            let len = head.len();
            let (res, _) = self.write_exactly(head, 0..len).await;
            return (res, data);
        }
        self.write_exactly(data, range).await
    }

    /// [`Conn::write_range`] without looking at what is written.
    async fn write_exactly(
        &mut self,
        mut data: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> (io::Result<()>, Vec<u8>) {
        let mut at = range.start;
        while at < range.end {
            let len = data.len();
            let limit = self
                .deadlines
                .map(|d| (Instant::now() + d.write_gap, Wait::Send));
            let write = self.stream.write(data.slice(at..range.end));
            let Some(BufResult(res, slice)) = Self::within(&mut self.timed_out, limit, write).await
            else {
                return (Err(timed_out()), vec![0; len]);
            };
            data = slice.into_inner();
            match res {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), data),
                Ok(n) => {
                    self.note_written(n);
                    at += n;
                }
                Err(e) => return (Err(e), data),
            }
        }
        (Ok(()), data)
    }

    /// Writes all of `data` (see [`Conn::write_range`]).
    pub async fn write_all(&mut self, data: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let len = data.len();
        self.write_range(data, 0..len).await
    }

    /// Flushes and shuts the write side down.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.flush().await;
        let _ = self.stream.shutdown().await;
    }

    /// Closes a connection whose request was refused before its body was read to the end
    /// (a lingering close, as nginx's `lingering_close`): shuts the write side down after
    /// the error answer, then reads and discards what the client still sends, until it
    /// closes, [`LINGER_TIME_MAX_MS`] pass or [`LINGER_BYTES_MAX`] were read. Closing
    /// with unread bytes at once would make the kernel reset the connection, and a reset
    /// can discard the error answer before the client has read it.
    pub async fn linger_close(mut self) {
        self.shutdown().await;
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(LINGER_TIME_MAX_MS);
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() == 0 {
            buf.reserve_exact(LINGER_READ_BYTES);
        }
        let mut drained = 0_u64;
        while drained < LINGER_BYTES_MAX {
            buf.clear();
            let read = compio::time::timeout_at(deadline, self.stream.read(buf)).await;
            match read {
                Ok(BufResult(Ok(n), b)) if n > 0 => {
                    drained += n as u64;
                    buf = b;
                }
                // Closed by the client, failed, or out of time.
                _ => break,
            }
        }
    }
}
