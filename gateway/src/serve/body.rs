//! Reading a client's request body: HTTP framing (Content-Length or chunked), then the
//! aws-chunked layer when the request is streaming-signed or has trailers, with every
//! digest the client gave (signed payload SHA-256, Content-MD5, `x-amz-checksum-*` header or
//! trailer) computed on the way and checked at the end.
//!
//! A client waiting for `100 Continue` before it sends its body is answered here too
//! (`send_continue`).
//!
//! Payload bytes are copied into the caller's buffer (a segment buffer, sealed in place
//! afterwards). Nothing read here is trusted until [`ClientBody::finish`] has returned `Ok`.

use super::io::Conn;
use crate::http::{BodyKind, ChunkedDecoder, HttpError, RequestHead, Step as ChunkedStep};
use crate::s3::S3Error;
use crate::s3::checksum::{ChecksumAlgorithm, Hasher};
use crate::sigv4::awschunked::{self, ChunkError, Decoder as AwsDecoder, Step as AwsStep};
use crate::sigv4::{AuthError, PayloadMode, Verified};
use base64::Engine;
use std::io;

/// Answers `100 Continue` when the client waits for it before sending its body. A failure
/// to write it is the client's body cut short; the caller closes the connection.
pub(crate) async fn send_continue(head: &RequestHead, conn: &mut Conn) -> Result<(), S3Error> {
    if head.expects_continue() {
        let (res, _) = conn
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        res.map_err(|_| S3Error::incomplete_body())?;
    }
    Ok(())
}

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
            BodyError::Chunk(e) => chunk_error(e),
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
    md5: Option<(twofold_md5::Md5, [u8; 16])>,
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
        let transport = Transport::of(kind)?;
        let payload = verified.payload;
        let expected_len = payload_length(
            kind,
            payload.is_streaming(),
            verified.decoded_content_length,
        )?;
        let aws = if payload.is_streaming() {
            Some(aws_decoder(head, verified, expected_len)?)
        } else {
            None
        };
        let md5 = match head.header("content-md5") {
            Some(v) => Some((twofold_md5::Md5::new(), content_md5(v)?)),
            None => None,
        };
        let checksum_header =
            header_checksum(&head.headers)?.map(|(alg, value)| (Hasher::new(alg), value));
        let checksum_trailer = trailer_checksum(head.header("x-amz-trailer")).map(Hasher::new);
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
            m.update(data);
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
            let copied = if self.aws.is_some() {
                self.aws_step(conn, dst).await?
            } else {
                self.chunked_step(conn, dst).await?
            };
            if let Some(n) = copied {
                return Ok(n);
            }
        }
    }

    /// One step of the aws-chunked path: decodes the transport bytes available, or makes
    /// more available. `Some(n)`: `n` payload bytes were copied into `dst` (0 at the end of
    /// the payload); `None`: nothing yet, another step is needed.
    async fn aws_step(
        &mut self,
        conn: &mut Conn,
        dst: &mut [u8],
    ) -> Result<Option<usize>, BodyError> {
        if self.aws_done {
            return Ok(Some(0));
        }
        // The decoder is never given more than `dst` can take: a payload slice it returns
        // is then always copied whole, and the decoder's state (which has moved past
        // everything it returned) stays in step with what was consumed.
        let (input, from_conn) = aws_input(&self.transport, &self.staged, conn, dst.len());
        if input.is_empty() {
            return self.aws_starved(conn).await;
        }
        let Some(aws) = self.aws.as_mut() else {
            // Without the aws-chunked layer there is nothing to decode.
            return Ok(Some(0));
        };
        let (consumed, step) = aws.decode(input).map_err(BodyError::Chunk)?;
        let n = match step {
            AwsStep::Data(d) => {
                dst[..d.len()].copy_from_slice(d);
                d.len()
            }
            AwsStep::NeedMore => 0,
            AwsStep::Done { trailers } => {
                self.trailers = Some(trailers);
                self.aws_done = true;
                0
            }
        };
        self.consume_transport(conn, consumed, from_conn);
        if n > 0 || self.aws_done {
            return Ok(Some(n));
        }
        Ok(None)
    }

    /// The aws-chunked path found no transport bytes to decode: at the transport's end the
    /// decoder is finished (keeping its trailers) and the payload ends (`Some(0)`);
    /// otherwise more transport bytes are made available (`None`).
    async fn aws_starved(&mut self, conn: &mut Conn) -> Result<Option<usize>, BodyError> {
        let transport_done = match &self.transport {
            Transport::Length { remaining } => *remaining == 0,
            Transport::Chunked(_) => self.transport_done,
        };
        if !transport_done {
            self.pull_transport(conn).await?;
            return Ok(None);
        }
        if let Some(aws) = &mut self.aws
            && let Some(t) = aws.finish().map_err(BodyError::Chunk)?
        {
            self.trailers = Some(t);
        }
        self.aws_done = true;
        Ok(Some(0))
    }

    /// Marks `used` transport bytes as decoded: consumed from the connection's buffer (and
    /// the Content-Length left) when `from_conn`, otherwise from `staged`.
    fn consume_transport(&mut self, conn: &mut Conn, used: usize, from_conn: bool) {
        if !from_conn {
            self.staged.drain(..used);
            return;
        }
        conn.consume(used);
        if let Transport::Length { remaining } = &mut self.transport {
            *remaining -= used as u64;
        }
    }

    /// One step of the HTTP chunked path without aws-chunked: copies staged bytes into
    /// `dst` (`Some(n)`, 0 at the end of the payload), or stages more (`None`).
    async fn chunked_step(
        &mut self,
        conn: &mut Conn,
        dst: &mut [u8],
    ) -> Result<Option<usize>, BodyError> {
        if self.staged.is_empty() {
            if self.transport_done {
                return Ok(Some(0));
            }
            self.pull_transport(conn).await?;
            return Ok(None);
        }
        let n = self.staged.len().min(dst.len());
        dst[..n].copy_from_slice(&self.staged[..n]);
        self.staged.drain(..n);
        Ok(Some(n))
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
        self.read_past_payload(conn).await?;
        self.check_digests()?;
        let mut verified = None;
        if let Some((h, value)) = self.checksum_header.take() {
            verified = Some(verify_checksum(h, Some(&value))?);
        }
        if let Some(h) = self.checksum_trailer.take() {
            let sent = self
                .trailers
                .as_ref()
                .and_then(|t| t.get(h.algorithm().header_name()));
            verified = Some(verify_checksum(h, sent)?);
        }
        Ok(verified)
    }

    /// Reads the aws-chunked end and trailers and the rest of the transport framing, which
    /// must carry no more payload.
    async fn read_past_payload(&mut self, conn: &mut Conn) -> Result<(), BodyError> {
        if self.aws.is_some() {
            let mut scratch = [0u8; 1];
            while !self.aws_done {
                if self.next_payload(conn, &mut scratch).await? != 0 {
                    return Err(BodyError::Length);
                }
            }
        }
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
        Ok(())
    }

    /// Checks the signed payload hash and Content-MD5, where the request has them.
    fn check_digests(&mut self) -> Result<(), BodyError> {
        if let Some(c) = self.sha256.take() {
            let d = c.finish();
            let mut h = [0u8; 32];
            h.copy_from_slice(d.as_ref());
            self.payload
                .check_body_sha256(&h)
                .map_err(BodyError::Auth)?;
        }
        if let Some((m, expected)) = self.md5.take() {
            let got = m.finalize();
            if !crate::envelope::constant_time_eq(&got, &expected) {
                return Err(BodyError::BadDigest);
            }
        }
        Ok(())
    }
}

impl Transport {
    /// The transport framing of a body of `kind`. A body delimited by the connection's
    /// close is refused: S3 requires its length up front.
    fn of(kind: BodyKind) -> Result<Transport, S3Error> {
        match kind {
            BodyKind::None => Ok(Transport::Length { remaining: 0 }),
            BodyKind::ContentLength(n) => Ok(Transport::Length { remaining: n }),
            BodyKind::Chunked => Ok(Transport::Chunked(ChunkedDecoder::new())),
            BodyKind::CloseDelimited => Err(S3Error::missing_content_length()),
        }
    }
}

/// The S3 error for a broken aws-chunked declaration or framing.
fn chunk_error(e: &ChunkError) -> S3Error {
    S3Error::new(e.http_status(), e.s3_code(), e.to_string())
}

/// The payload length: the decoded length the client declared for an aws-chunked
/// (`streaming`) body, otherwise the body's own length, which must be known.
fn payload_length(
    kind: BodyKind,
    streaming: bool,
    decoded_content_length: Option<u64>,
) -> Result<u64, S3Error> {
    if streaming {
        return decoded_content_length.ok_or_else(|| {
            S3Error::missing_content_length()
                .with_message("x-amz-decoded-content-length is required with aws-chunked")
        });
    }
    match kind {
        BodyKind::ContentLength(n) => Ok(n),
        BodyKind::None => Ok(0),
        _ => Err(S3Error::missing_content_length()),
    }
}

/// The aws-chunked decoder of a streaming body of `expected_len` payload bytes, expecting
/// the trailers `x-amz-trailer` declares.
fn aws_decoder(
    head: &RequestHead,
    verified: &Verified,
    expected_len: u64,
) -> Result<AwsDecoder, S3Error> {
    let declared = match head.header("x-amz-trailer") {
        Some(v) => awschunked::parse_declared_trailers(v).map_err(|e| chunk_error(&e))?,
        None => Vec::new(),
    };
    AwsDecoder::new(
        verified.payload,
        verified.chunk_signer.clone(),
        Some(expected_len),
        &declared,
    )
    .map_err(|e| chunk_error(&e))
}

/// The MD5 digest a `Content-MD5` value gives (base64 of 16 bytes).
fn content_md5(value: &[u8]) -> Result<[u8; 16], S3Error> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .ok_or_else(S3Error::invalid_digest)
}

/// The request's one `x-amz-checksum-*` header: its algorithm and value. More than one is
/// refused, as S3 does.
fn header_checksum(
    headers: &[(String, Vec<u8>)],
) -> Result<Option<(ChecksumAlgorithm, String)>, S3Error> {
    let mut found = None;
    for (name, value) in headers {
        let Some(alg) = ChecksumAlgorithm::from_header_name(name) else {
            continue;
        };
        if found.is_some() {
            return Err(S3Error::invalid_request(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| S3Error::invalid_request("checksum value is not ASCII"))?;
        found = Some((alg, value.to_owned()));
    }
    Ok(found)
}

/// The algorithm of the first checksum an `x-amz-trailer` value declares.
fn trailer_checksum(declared: Option<&[u8]>) -> Option<ChecksumAlgorithm> {
    std::str::from_utf8(declared?)
        .ok()?
        .split(',')
        .find_map(|n| ChecksumAlgorithm::from_header_name(n.trim()))
}

/// Finishes `h` and checks it against the base64 value the client `sent`: the verified
/// checksum, or the mismatch (also when the client sent none).
fn verify_checksum(h: Hasher, sent: Option<&str>) -> Result<ClientChecksum, BodyError> {
    let algorithm = h.algorithm();
    let Some(sent) = sent else {
        return Err(BodyError::BadChecksum(algorithm));
    };
    let sum = h.finish_raw();
    if !sum.matches_base64(sent) {
        return Err(BodyError::BadChecksum(algorithm));
    }
    Ok(ClientChecksum {
        algorithm,
        value: sum.to_base64(),
    })
}

/// The transport bytes the aws-chunked decoder may look at, at most `max`: those buffered on
/// the connection within a Content-Length body, or those staged from HTTP chunked framing;
/// and whether they are the connection's.
fn aws_input<'a>(
    transport: &Transport,
    staged: &'a [u8],
    conn: &'a Conn,
    max: usize,
) -> (&'a [u8], bool) {
    match transport {
        Transport::Length { remaining } => {
            let avail = conn.buffered();
            let n = (avail.len() as u64).min(*remaining) as usize;
            (&avail[..n.min(max)], true)
        }
        Transport::Chunked(_) => (&staged[..staged.len().min(max)], false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_follows_the_framing_and_needs_a_length() {
        assert!(matches!(
            Transport::of(BodyKind::None),
            Ok(Transport::Length { remaining: 0 })
        ));
        assert!(matches!(
            Transport::of(BodyKind::ContentLength(5)),
            Ok(Transport::Length { remaining: 5 })
        ));
        assert!(matches!(
            Transport::of(BodyKind::Chunked),
            Ok(Transport::Chunked(_))
        ));
        assert!(Transport::of(BodyKind::CloseDelimited).is_err());
    }

    #[test]
    fn the_payload_length_is_the_decoded_one_when_streaming() {
        let kind = BodyKind::ContentLength(100);
        assert_eq!(payload_length(kind, true, Some(42)).unwrap(), 42);
        assert!(payload_length(kind, true, None).is_err());
        assert_eq!(payload_length(kind, false, Some(42)).unwrap(), 100);
        assert_eq!(payload_length(BodyKind::None, false, None).unwrap(), 0);
        assert!(payload_length(BodyKind::Chunked, false, None).is_err());
    }

    #[test]
    fn content_md5_is_base64_of_sixteen_bytes() {
        assert_eq!(content_md5(b"AAAAAAAAAAAAAAAAAAAAAA==").unwrap(), [0u8; 16]);
        assert!(content_md5(b"AAAA").is_err());
        assert!(content_md5(b"not base64!").is_err());
    }

    #[test]
    fn one_checksum_header_at_most() {
        let header = |n: &str, v: &[u8]| (n.to_owned(), v.to_vec());
        assert_eq!(
            header_checksum(&[header("content-type", b"x")]).unwrap(),
            None
        );
        let one = [header("x-amz-checksum-crc32", b"AAAAAA==")];
        assert_eq!(
            header_checksum(&one).unwrap(),
            Some((ChecksumAlgorithm::Crc32, "AAAAAA==".to_owned()))
        );
        let two = [
            header("x-amz-checksum-crc32", b"AAAAAA=="),
            header("x-amz-checksum-sha1", b"AAAAAA=="),
        ];
        assert!(header_checksum(&two).is_err());
        assert!(header_checksum(&[header("x-amz-checksum-crc32", b"\xff")]).is_err());
    }

    #[test]
    fn the_trailer_declares_the_first_checksum_it_names() {
        assert_eq!(trailer_checksum(None), None);
        assert_eq!(trailer_checksum(Some(b"x-amz-foo")), None);
        assert_eq!(
            trailer_checksum(Some(b"x-amz-foo, x-amz-checksum-crc32c")),
            Some(ChecksumAlgorithm::Crc32c)
        );
    }

    #[test]
    fn a_checksum_verifies_only_against_the_matching_value() {
        let hashed = |data: &[u8]| {
            let mut h = Hasher::new(ChecksumAlgorithm::Crc32);
            h.update(data);
            h
        };
        let value = hashed(b"abc").finish_raw().to_base64();
        let ok = verify_checksum(hashed(b"abc"), Some(&value)).unwrap();
        assert_eq!(ok.algorithm, ChecksumAlgorithm::Crc32);
        assert_eq!(ok.value, value);
        assert!(matches!(
            verify_checksum(hashed(b"abd"), Some(&value)),
            Err(BodyError::BadChecksum(ChecksumAlgorithm::Crc32))
        ));
        assert!(matches!(
            verify_checksum(hashed(b"abc"), None),
            Err(BodyError::BadChecksum(ChecksumAlgorithm::Crc32))
        ));
    }
}
