//! A TCP connection with an owned read buffer, on compio: the head is read into the buffer,
//! body bytes that arrived with it are handed out from there, and the rest is read either
//! into the buffer or straight into the caller's buffer (no intermediate copy). The stream
//! under it is plain TCP or TLS ([`Stream`]); nothing above this module knows which.

use crate::http::{
    HttpError, Limits, RequestHead, ResponseHead, parse_request_head, parse_response_head,
};
use compio::buf::{BufResult, IntoInner, IoBuf, IoBufMut};
use compio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use compio::net::TcpStream;
use std::io;

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
pub const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Longest a refused connection is drained after its error answer ([`Conn::linger_close`]).
pub const LINGER_TIME_MAX_MS: u64 = 5_000;
/// Most request bytes read and discarded by [`Conn::linger_close`].
pub const LINGER_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// A connection and the bytes read from it but not consumed yet (`buf[pos..]`).
#[derive(Debug)]
pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    pos: usize,
    meter: Option<crate::telemetry::Meter>,
    response: ResponseMark,
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
    /// The peer closed or the socket failed.
    Io(io::Error),
    /// The bytes are not an acceptable HTTP head.
    Http(HttpError),
}

impl From<io::Error> for HeadError {
    fn from(e: io::Error) -> Self {
        HeadError::Io(e)
    }
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
            buf: Vec::with_capacity(READ_BUFFER_BYTES),
            pos: 0,
            meter: None,
            response: ResponseMark::default(),
        }
    }

    /// Counts the bytes read and written on this connection in `meter`.
    pub fn with_meter(mut self, meter: crate::telemetry::Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Starts watching for the response to a new request.
    pub fn begin_request(&mut self) {
        self.response = ResponseMark::default();
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
    fn note_write(&mut self, data: &[u8]) {
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
        }
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
        self.pos = (self.pos + n).min(self.buf.len());
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Reads more bytes into the buffer; returns how many (0 at end of stream).
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.len() == self.buf.capacity() {
            return Err(io::Error::other("read buffer full"));
        }
        let buf = std::mem::take(&mut self.buf);
        let BufResult(res, buf) = self.stream.append(buf).await;
        self.buf = buf;
        if let Ok(n) = res {
            self.note_read(n);
        }
        res
    }

    /// Reads exactly `dst.len()` bytes, first from the buffer, then straight from the socket
    /// into `dst` (an owned buffer, given back). Fails with `UnexpectedEof` if the stream
    /// ends first.
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
            let BufResult(res, slice) = self.stream.read(dst.slice(at..range.end)).await;
            dst = slice.into_inner();
            match res {
                Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), dst),
                Ok(n) => {
                    self.note_read(n);
                    at += n;
                }
                Err(e) => return (Err(e), dst),
            }
        }
        (Ok(()), dst)
    }

    /// Reads a request head. `Ok(None)` when the peer closed cleanly before sending one.
    pub async fn read_request_head(
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
                    if self.fill().await? == 0 {
                        if self.buffered().is_empty() {
                            return Ok(None);
                        }
                        return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
    }

    /// Reads a response head (from the backend).
    pub async fn read_response_head(&mut self) -> Result<ResponseHead, HeadError> {
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

    /// Writes all of `data[range]` (an owned buffer, given back).
    pub async fn write_range(
        &mut self,
        data: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> (io::Result<()>, Vec<u8>) {
        let len = range.len();
        self.note_write(&data[range.clone()]);
        let BufResult(res, slice) = self.stream.write_all(data.slice(range)).await;
        if res.is_ok() {
            self.note_written(len);
        }
        (res, slice.into_inner())
    }

    /// Writes all of `data`.
    pub async fn write_all(&mut self, data: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let len = data.len();
        self.note_write(&data);
        let BufResult(res, data) = self.stream.write_all(data).await;
        if res.is_ok() {
            self.note_written(len);
        }
        (res, data)
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
