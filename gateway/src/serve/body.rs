//! Reading a client's request body: HTTP framing (Content-Length or chunked), then the
//! aws-chunked layer when the request is streaming-signed or has trailers, with every
//! digest the client gave (signed payload SHA-256, Content-MD5, `x-amz-checksum-*` header or
//! trailer) computed on the way and checked at the end.
//!
//! Payload bytes are copied into the caller's buffer (a segment buffer, sealed in place
//! afterwards). Nothing read here is trusted until [`ClientBody::finish`] has returned `Ok`.

use super::io::Conn;
use crate::awschunked::{self, ChunkError, Decoder as AwsDecoder, Step as AwsStep};
use crate::checksum::{ChecksumAlgorithm, Hasher};
use crate::http::{BodyKind, ChunkedDecoder, HttpError, RequestHead, Step as ChunkedStep};
use crate::s3::S3Error;
use crate::sigv4::{AuthError, PayloadMode, Verified};
use base64::Engine;
use std::io;

/// What is wrong with a body. Each maps to the S3 error clients expect.
#[derive(Debug)]
pub enum BodyError {
    /// The connection failed or ended early.
    Io(io::Error),
    /// HTTP chunked framing is broken.
    Http(HttpError),
    /// aws-chunked framing or a chunk or trailer signature is wrong.
    Chunk(ChunkError),
    /// The signed payload hash does not match.
    Auth(AuthError),
    /// Content-MD5 does not match.
    BadDigest,
    /// A checksum does not match.
    BadChecksum(ChecksumAlgorithm),
    /// More or fewer bytes than announced.
    Length,
}

impl BodyError {
    /// The S3 error for the client.
    pub fn to_s3(&self) -> S3Error {
        match self {
            BodyError::Io(e) if e.kind() == io::ErrorKind::TimedOut => S3Error::request_timeout(),
            BodyError::Io(_) | BodyError::Length => S3Error::incomplete_body(),
            BodyError::Http(e) => S3Error::from_http(e),
            BodyError::Chunk(e) => S3Error::new(e.http_status(), e.s3_code(), e.to_string()),
            BodyError::Auth(e) => S3Error::new(e.http_status(), e.s3_code(), e.to_string()),
            BodyError::BadDigest => S3Error::bad_digest(),
            BodyError::BadChecksum(alg) => S3Error::bad_digest().with_message(format!(
                "Value for {} header is invalid.",
                alg.header_name()
            )),
        }
    }

    /// Whether the connection must be closed after answering (the body was not fully read).
    pub fn must_close(&self) -> bool {
        true
    }
}

enum Transport {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
}

/// The body of one client request.
pub struct ClientBody {
    transport: Transport,
    aws: Option<AwsDecoder>,
    /// Bytes decoded from HTTP chunked framing and waiting for the aws-chunked layer.
    staged: Vec<u8>,
    payload: PayloadMode,
    sha256: Option<aws_lc_rs::digest::Context>,
    md5: Option<(md5::Md5, [u8; 16])>,
    checksum_header: Option<(Hasher, String)>,
    checksum_trailer: Option<Hasher>,
    expected_len: u64,
    delivered: u64,
    transport_done: bool,
    aws_done: bool,
    trailers: Option<awschunked::Trailers>,
}

impl std::fmt::Debug for ClientBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBody")
            .field("expected_len", &self.expected_len)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

/// The client's checksum of the payload, as S3 will report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChecksum {
    /// Which algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Base64 value, verified (canonical: the digest's own encoding).
    pub value: String,
}

impl ClientBody {
    /// Prepares to read the body of `head`, authenticated as `verified`. Returns the
    /// payload length, which S3 requires to be known up front.
    pub fn new(head: &RequestHead, verified: &Verified) -> Result<ClientBody, S3Error> {
        let kind = head.body_kind().map_err(|e| S3Error::from_http(&e))?;
        let transport = match kind {
            BodyKind::None => Transport::Length { remaining: 0 },
            BodyKind::ContentLength(n) => Transport::Length { remaining: n },
            BodyKind::Chunked => Transport::Chunked(ChunkedDecoder::new()),
            BodyKind::CloseDelimited => return Err(S3Error::missing_content_length()),
        };
        let payload = verified.payload;
        let expected_len = if payload.is_streaming() {
            verified.decoded_content_length.ok_or_else(|| {
                S3Error::missing_content_length()
                    .with_message("x-amz-decoded-content-length is required with aws-chunked")
            })?
        } else {
            match kind {
                BodyKind::ContentLength(n) => n,
                BodyKind::None => 0,
                _ => return Err(S3Error::missing_content_length()),
            }
        };
        let aws = if payload.is_streaming() {
            let declared = match head.header("x-amz-trailer") {
                Some(v) => awschunked::parse_declared_trailers(v)
                    .map_err(|e| S3Error::new(e.http_status(), e.s3_code(), e.to_string()))?,
                None => Vec::new(),
            };
            Some(
                AwsDecoder::new(
                    payload,
                    verified.chunk_signer.clone(),
                    Some(expected_len),
                    &declared,
                )
                .map_err(|e| S3Error::new(e.http_status(), e.s3_code(), e.to_string()))?,
            )
        } else {
            None
        };
        let md5 = match head.header("content-md5") {
            Some(v) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .ok()
                    .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                    .ok_or_else(S3Error::invalid_digest)?;
                Some((<md5::Md5 as md5::Digest>::new(), raw))
            }
            None => None,
        };
        let mut checksum_header = None;
        for (name, value) in &head.headers {
            if let Some(alg) = ChecksumAlgorithm::from_header_name(name) {
                if checksum_header.is_some() {
                    return Err(S3Error::invalid_request(
                        "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                    ));
                }
                let value = std::str::from_utf8(value)
                    .map_err(|_| S3Error::invalid_request("checksum value is not ASCII"))?;
                checksum_header = Some((Hasher::new(alg), value.to_owned()));
            }
        }
        let checksum_trailer = head
            .header("x-amz-trailer")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| {
                v.split(',')
                    .find_map(|n| ChecksumAlgorithm::from_header_name(n.trim()))
            })
            .map(Hasher::new);
        let sha256 = matches!(payload, PayloadMode::Sha256(_))
            .then(|| aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256));
        Ok(ClientBody {
            transport,
            aws,
            staged: Vec::new(),
            payload,
            sha256,
            md5,
            checksum_header,
            checksum_trailer,
            expected_len,
            delivered: 0,
            transport_done: false,
            aws_done: false,
            trailers: None,
        })
    }

    /// Payload length announced by the client.
    pub fn len(&self) -> u64 {
        self.expected_len
    }

    /// The algorithm of the checksum the client declared in `x-amz-trailer`: its value
    /// arrives only after the payload.
    pub fn trailer_checksum_algorithm(&self) -> Option<ChecksumAlgorithm> {
        self.checksum_trailer.as_ref().map(Hasher::algorithm)
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.expected_len == 0
    }

    /// Fills `dst[range]` completely with payload bytes.
    pub async fn read_exact(
        &mut self,
        conn: &mut Conn,
        mut dst: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> (Result<(), BodyError>, Vec<u8>) {
        if self.delivered + (range.len() as u64) > self.expected_len {
            return (Err(BodyError::Length), dst);
        }
        // Fast path: plain Content-Length body, read straight into the destination.
        if self.aws.is_none()
            && let Transport::Length { remaining } = &mut self.transport
        {
            let n = range.len() as u64;
            if n > *remaining {
                return (Err(BodyError::Length), dst);
            }
            let (res, buf) = conn.read_exact_into(dst, range.clone()).await;
            dst = buf;
            if let Err(e) = res {
                return (Err(BodyError::Io(e)), dst);
            }
            *remaining -= n;
            self.delivered += n;
            self.digest_range(&dst, range.start, range.len());
            return (Ok(()), dst);
        }
        let mut at = range.start;
        while at < range.end {
            match self.next_payload(conn, &mut dst[at..range.end]).await {
                Ok(0) => return (Err(BodyError::Length), dst),
                Ok(n) => {
                    self.digest_range(&dst, at, n);
                    at += n;
                    self.delivered += n as u64;
                }
                Err(e) => return (Err(e), dst),
            }
        }
        (Ok(()), dst)
    }

    fn digest_range(&mut self, buf: &[u8], at: usize, n: usize) {
        let data = &buf[at..at + n];
        if let Some(c) = &mut self.sha256 {
            c.update(data);
        }
        if let Some((m, _)) = &mut self.md5 {
            md5::Digest::update(m, data);
        }
        if let Some((h, _)) = &mut self.checksum_header {
            h.update(data);
        }
        if let Some(h) = &mut self.checksum_trailer {
            h.update(data);
        }
    }

    /// Copies up to `dst.len()` payload bytes into `dst` (the aws-chunked or HTTP-chunked
    /// paths). Returns 0 only at the end of the payload.
    async fn next_payload(&mut self, conn: &mut Conn, dst: &mut [u8]) -> Result<usize, BodyError> {
        loop {
            // The transport bytes available to the payload layer.
            if let Some(aws) = &mut self.aws {
                if self.aws_done {
                    return Ok(0);
                }
                // The decoder is never given more than `dst` can take: a payload slice it
                // returns is then always copied whole, and the decoder's state (which has
                // moved past everything it returned) stays in step with what was consumed.
                let (input, from_conn): (&[u8], bool) = match &self.transport {
                    Transport::Length { remaining } => {
                        let avail = conn.buffered();
                        let n = (avail.len() as u64).min(*remaining) as usize;
                        (&avail[..n.min(dst.len())], true)
                    }
                    Transport::Chunked(_) => {
                        let n = self.staged.len().min(dst.len());
                        (&self.staged[..n], false)
                    }
                };
                if input.is_empty() {
                    let transport_done = match &self.transport {
                        Transport::Length { remaining } => *remaining == 0,
                        Transport::Chunked(_) => self.transport_done,
                    };
                    if transport_done {
                        let trailers = aws.finish().map_err(BodyError::Chunk)?;
                        if let Some(t) = trailers {
                            self.trailers = Some(t);
                        }
                        self.aws_done = true;
                        return Ok(0);
                    }
                    self.pull_transport(conn).await?;
                    continue;
                }
                let (consumed, step) = aws.decode(input).map_err(BodyError::Chunk)?;
                let copied = match step {
                    AwsStep::Data(d) => {
                        let n = d.len();
                        dst[..n].copy_from_slice(d);
                        Some((consumed, n))
                    }
                    AwsStep::NeedMore => Some((consumed, 0)),
                    AwsStep::Done { trailers } => {
                        self.trailers = Some(trailers);
                        self.aws_done = true;
                        Some((consumed, 0))
                    }
                };
                let Some((used, n)) = copied else { continue };
                if from_conn {
                    conn.consume(used);
                    if let Transport::Length { remaining } = &mut self.transport {
                        *remaining -= used as u64;
                    }
                } else {
                    self.staged.drain(..used);
                }
                if n > 0 {
                    return Ok(n);
                }
                if self.aws_done {
                    return Ok(0);
                }
            } else {
                // HTTP chunked without aws-chunked.
                if self.staged.is_empty() {
                    if self.transport_done {
                        return Ok(0);
                    }
                    self.pull_transport(conn).await?;
                    continue;
                }
                let n = self.staged.len().min(dst.len());
                dst[..n].copy_from_slice(&self.staged[..n]);
                self.staged.drain(..n);
                return Ok(n);
            }
        }
    }

    /// Makes more transport bytes available: reads from the socket (Content-Length), or
    /// decodes HTTP chunked framing into `staged`.
    async fn pull_transport(&mut self, conn: &mut Conn) -> Result<(), BodyError> {
        match &mut self.transport {
            Transport::Length { remaining } => {
                if *remaining == 0 {
                    return Err(BodyError::Length);
                }
                if conn.fill().await.map_err(BodyError::Io)? == 0 {
                    return Err(BodyError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(())
            }
            Transport::Chunked(dec) => loop {
                let (consumed, step) = dec.decode(conn.buffered()).map_err(BodyError::Http)?;
                match step {
                    ChunkedStep::Data(d) => {
                        self.staged.extend_from_slice(d);
                        conn.consume(consumed);
                        return Ok(());
                    }
                    ChunkedStep::NeedMore => {
                        conn.consume(consumed);
                        if conn.fill().await.map_err(BodyError::Io)? == 0 {
                            return Err(BodyError::Io(io::ErrorKind::UnexpectedEof.into()));
                        }
                    }
                    ChunkedStep::Done => {
                        conn.consume(consumed);
                        conn.chunked_body_read();
                        self.transport_done = true;
                        return Ok(());
                    }
                }
            },
        }
    }

    /// Reads whatever follows the payload (aws-chunked end and trailers, HTTP framing) and
    /// checks every digest. Only after `Ok` is the payload trusted.
    pub async fn finish(&mut self, conn: &mut Conn) -> Result<Option<ClientChecksum>, BodyError> {
        if self.delivered != self.expected_len {
            return Err(BodyError::Length);
        }
        if self.aws.is_some() {
            let mut scratch = [0u8; 1];
            while !self.aws_done {
                if self.next_payload(conn, &mut scratch).await? != 0 {
                    return Err(BodyError::Length);
                }
            }
        }
        // Drain any remaining transport framing.
        match &mut self.transport {
            Transport::Length { remaining } => {
                if *remaining != 0 {
                    return Err(BodyError::Length);
                }
            }
            Transport::Chunked(_) => {
                while !self.transport_done {
                    self.pull_transport(conn).await?;
                    if !self.staged.is_empty() {
                        return Err(BodyError::Length);
                    }
                }
            }
        }
        if let Some(c) = self.sha256.take() {
            let d = c.finish();
            let mut h = [0u8; 32];
            h.copy_from_slice(d.as_ref());
            self.payload
                .check_body_sha256(&h)
                .map_err(BodyError::Auth)?;
        }
        if let Some((m, expected)) = self.md5.take() {
            let got: [u8; 16] = md5::Digest::finalize(m).into();
            if !crate::envelope::constant_time_eq(&got, &expected) {
                return Err(BodyError::BadDigest);
            }
        }
        let mut verified = None;
        if let Some((h, value)) = self.checksum_header.take() {
            let alg = h.algorithm();
            let sum = h.finish_raw();
            if !sum.matches_base64(&value) {
                return Err(BodyError::BadChecksum(alg));
            }
            verified = Some(ClientChecksum {
                algorithm: alg,
                value: sum.to_base64(),
            });
        }
        if let Some(h) = self.checksum_trailer.take() {
            let alg = h.algorithm();
            let sent = self
                .trailers
                .as_ref()
                .and_then(|t| t.get(alg.header_name()).map(str::to_owned));
            match sent {
                Some(value) => {
                    let sum = h.finish_raw();
                    if !sum.matches_base64(&value) {
                        return Err(BodyError::BadChecksum(alg));
                    }
                    verified = Some(ClientChecksum {
                        algorithm: alg,
                        value: sum.to_base64(),
                    });
                }
                None => return Err(BodyError::BadChecksum(alg)),
            }
        }
        Ok(verified)
    }
}
