//! Incremental, sans-IO decoder of `aws-chunked` request bodies (the body of every request
//! whose `x-amz-content-sha256` is one of the `STREAMING-*` values).
//!
//! # Format (byte level)
//!
//! ```text
//! body      = *chunk last-chunk trailers
//! chunk     = size [";chunk-signature=" sig] CRLF data CRLF     size: 1-16 hex digits, > 0
//! last-chunk= "0" [";chunk-signature=" sig] CRLF
//! trailers  = *(name ":" value CRLF) CRLF                      only in the -TRAILER modes
//! sig       = 64 lower-case hex digits
//! ```
//!
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: every chunk, the last included, carries a
//!   signature chained from the request signature ([`crate::sigv4::ChunkSigner`]); no
//!   trailers.
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: the same, then trailers ending with
//!   `x-amz-trailer-signature:<sig>`, the signature of the canonical trailer block
//!   (`name:value\n` per trailer, names lower-case, sorted).
//! - `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: no signatures anywhere (one in the body is an
//!   error); trailers such as `x-amz-checksum-crc32:<base64>`.
//!
//! Real clients end the body in one of these ways, all accepted:
//!
//! | client | ending |
//! |---|---|
//! | boto3 / aws CLI (botocore `AwsChunkedWrapper`), Go SDK v2, JS SDK v3, Java SDK v2 with a checksum | `0\r\n` `x-amz-checksum-*:v\r\n` `\r\n` |
//! | botocore without a checksum, Go SDK v2 without trailers | `0\r\n\r\n` |
//! | Java SDK v2 and JS SDK v3 without a checksum | `0\r\n` then end of body (see [`Decoder::finish`]) |
//! | signed (S3 documentation, Java, minio-go) | `0;chunk-signature=<sig>\r\n\r\n`, or with trailers and `x-amz-trailer-signature:<sig>\r\n\r\n` |
//!
//! A trailer block whose lines are all complete but whose closing empty line never comes is
//! also accepted at end of body. Everything else is rejected: bare LF, spaces or extensions
//! in the size line, a chunk without its CRLF, a signature where none is expected (or none
//! where one is), trailers not declared in `x-amz-trailer` or declared ones missing, bytes
//! after the end.
//!
//! # Use
//!
//! Feed the body as it arrives to [`Decoder::decode`]; each call consumes what it can and
//! returns at most one [`Step`]: a slice of payload borrowed from the input, `NeedMore` (all
//! input consumed), or `Done` with the trailers. At end of body call [`Decoder::finish`].
//!
//! **Payload slices are released before their chunk's signature is checked** (a chunk's
//! signature can only be checked once all its data has passed, and chunks may be larger
//! than any buffer). A chunk signature failure is reported by a later call, so data is
//! trustworthy only once `Done` has been returned: a caller must not commit anything it
//! wrote from the slices (complete an upload, answer 200) before then.
//!
//! Nothing is allocated on the data path; the decoder never panics, whatever the input.

use crate::http::trim_ows;
use crate::s3::S3Code;
use crate::s3::checksum::ChecksumAlgorithm;
use crate::sigv4::{ChunkSigner, PayloadMode};
use aws_lc_rs::digest;

/// Longest chunk-size line, CRLF included: 16 hex digits + `;chunk-signature=` + 64 + 2 is 99.
pub const CHUNK_LINE_BYTES_MAX: usize = 128;
/// Most hex digits in a chunk size (a `u64`).
pub const CHUNK_SIZE_HEX_DIGITS_MAX: usize = 16;
/// Largest chunk: 5 GiB, S3's largest single PUT (the Go SDK v2 sends a body of known
/// length as one chunk).
pub const CHUNK_DATA_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Largest trailer section, CRLFs included.
pub const TRAILER_BYTES_MAX: usize = 4 * 1024;
/// Most trailer lines (the trailer signature included).
pub const TRAILER_COUNT_MAX: usize = 16;
/// Most names declared in `x-amz-trailer`.
pub const DECLARED_TRAILERS_COUNT_MAX: usize = 16;

/// Length of a chunk or trailer signature in hex.
const SIGNATURE_HEX_LEN_BYTES: usize = 64;
/// The chunk extension that carries a signature.
const CHUNK_SIGNATURE_EXT: &[u8] = b"chunk-signature=";
/// The trailer that carries the trailer signature.
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

const _: () = assert!(
    CHUNK_LINE_BYTES_MAX
        >= CHUNK_SIZE_HEX_DIGITS_MAX + 1 + CHUNK_SIGNATURE_EXT.len() + SIGNATURE_HEX_LEN_BYTES + 2
);

/// Why an aws-chunked body was rejected, and whose fault it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The gateway set the decoder up wrong (a signed mode without a signer, or a payload
    /// mode that is not aws-chunked): a gateway bug.
    #[error("aws-chunked decoder set up wrong: {0}")]
    Setup(&'static str),
    /// A chunk signature is not the next one in the chain (client: wrong key or tampering).
    #[error("a chunk signature does not match")]
    ChunkSignature,
    /// The trailer signature does not match (client: wrong key or tampering).
    #[error("the trailer signature does not match")]
    TrailerSignature,
    /// The chunk framing is broken (client).
    #[error("malformed aws-chunked body: {0}")]
    Framing(&'static str),
    /// A chunk is larger than [`CHUNK_DATA_BYTES_MAX`] (client).
    #[error("an aws-chunked chunk of {size} bytes is too large")]
    ChunkTooLarge {
        /// The declared chunk size.
        size: u64,
    },
    /// The payload is not `x-amz-decoded-content-length` bytes long (client).
    #[error("the decoded body is {decoded} bytes, x-amz-decoded-content-length says {declared}")]
    LengthMismatch {
        /// `x-amz-decoded-content-length`.
        declared: u64,
        /// Payload bytes decoded (or that would be, counting the chunk that overran).
        decoded: u64,
    },
    /// The body ended inside a chunk or before the last chunk (client or network).
    #[error("the aws-chunked body ended before its last chunk")]
    Truncated,
    /// The trailer section is malformed or too large (client).
    #[error("malformed aws-chunked trailer: {0}")]
    Trailer(&'static str),
    /// A trailer that `x-amz-trailer` did not declare (client).
    #[error("the trailer {0} was not declared in x-amz-trailer")]
    UndeclaredTrailer(String),
    /// A trailer that `x-amz-trailer` declared did not come (client).
    #[error("the trailer {0} declared in x-amz-trailer is missing")]
    MissingTrailer(String),
    /// Bytes after the end of the aws-chunked body (client).
    #[error("data after the end of the aws-chunked body")]
    TrailingData,
}

impl ChunkError {
    /// The S3 error code.
    pub fn s3_code(&self) -> S3Code {
        match self {
            Self::Setup(_) => S3Code::InternalError,
            Self::ChunkSignature | Self::TrailerSignature => S3Code::SignatureDoesNotMatch,
            Self::Framing(_) | Self::TrailingData => S3Code::InvalidRequest,
            Self::ChunkTooLarge { .. } => S3Code::EntityTooLarge,
            Self::LengthMismatch { .. } | Self::Truncated => S3Code::IncompleteBody,
            Self::Trailer(_) | Self::UndeclaredTrailer(_) | Self::MissingTrailer(_) => {
                S3Code::MalformedTrailerError
            }
        }
    }

    /// The HTTP status.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Setup(_) => 500,
            Self::ChunkSignature | Self::TrailerSignature => 403,
            _ => 400,
        }
    }
}

/// The trailers of a body: lower-case names, trimmed values, sorted by name; the trailer
/// signature is not among them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers {
    entries: Vec<(String, String)>,
}

impl Trailers {
    /// The value of trailer `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All trailers, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// How many trailers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first `x-amz-checksum-*` trailer: its algorithm and base64 value.
    pub fn checksum(&self) -> Option<(ChecksumAlgorithm, &str)> {
        self.entries
            .iter()
            .find_map(|(n, v)| ChecksumAlgorithm::from_header_name(n).map(|alg| (alg, v.as_str())))
    }
}

/// One result of [`Decoder::decode`].
#[derive(Debug, PartialEq, Eq)]
pub enum Step<'a> {
    /// Payload bytes, borrowed from the input (never empty).
    Data(&'a [u8]),
    /// All input was consumed; call again with more.
    NeedMore,
    /// The body is complete and every signature checked out.
    Done {
        /// The trailers (empty without a trailer section).
        trailers: Trailers,
    },
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line.
    SizeLine,
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// After the last chunk: trailer lines, then an empty line.
    Trailers,
    /// `Done` was returned.
    Done,
    /// An error was returned; it is returned again.
    Failed,
}

/// The decoder of one aws-chunked body.
pub struct Decoder {
    state: State,
    signer: Option<ChunkSigner>,
    trailers_allowed: bool,
    declared_trailers: Vec<String>,
    declared_len: Option<u64>,
    decoded: u64,
    line: [u8; CHUNK_LINE_BYTES_MAX],
    line_len: usize,
    chunk_signature: [u8; SIGNATURE_HEX_LEN_BYTES],
    chunk_hash: Option<digest::Context>,
    trailer_buf: Vec<u8>,
    trailer_line_start: usize,
    trailer_lines: usize,
    error: Option<ChunkError>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("state", &self.state)
            .field("signed", &self.signer.is_some())
            .field("trailers_allowed", &self.trailers_allowed)
            .field("declared_trailers", &self.declared_trailers)
            .field("declared_len", &self.declared_len)
            .field("decoded", &self.decoded)
            .finish_non_exhaustive()
    }
}

/// Splits an `x-amz-trailer` value (`name[, name...]`) into lower-case names.
pub fn parse_declared_trailers(value: &[u8]) -> Result<Vec<String>, ChunkError> {
    let mut out = Vec::new();
    for part in value.split(|&b| b == b',') {
        let name = trim_ows(part);
        if name.is_empty() {
            continue;
        }
        if !name.iter().all(|&b| is_token_byte(b)) {
            return Err(ChunkError::Trailer("x-amz-trailer lists an invalid name"));
        }
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if out.contains(&name) {
            return Err(ChunkError::Trailer("x-amz-trailer repeats a name"));
        }
        out.push(name);
        if out.len() > DECLARED_TRAILERS_COUNT_MAX {
            return Err(ChunkError::Trailer("x-amz-trailer lists too many names"));
        }
    }
    Ok(out)
}

fn is_token_byte(b: u8) -> bool {
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
}

fn parse_hex_size(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > CHUNK_SIZE_HEX_DIGITS_MAX {
        return None;
    }
    digits.iter().try_fold(0_u64, |acc, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some((acc << 4) | u64::from(d))
    })
}

fn is_signature(s: &[u8]) -> bool {
    s.len() == SIGNATURE_HEX_LEN_BYTES && s.iter().all(u8::is_ascii_hexdigit)
}

impl Decoder {
    /// A decoder for a body sent with `payload` (one of the `STREAMING-*` modes).
    ///
    /// `signer` is the [`crate::sigv4::Verified::chunk_signer`] of the request: required for
    /// the signed modes, refused for the unsigned one. `declared_len` is
    /// `x-amz-decoded-content-length` (checked at the last chunk); `declared_trailers` the
    /// names from `x-amz-trailer` ([`parse_declared_trailers`]): exactly those trailers must
    /// come.
    pub fn new(
        payload: PayloadMode,
        signer: Option<ChunkSigner>,
        declared_len: Option<u64>,
        declared_trailers: &[String],
    ) -> Result<Self, ChunkError> {
        if !payload.is_streaming() {
            return Err(ChunkError::Setup("the payload mode is not aws-chunked"));
        }
        if payload.is_chunk_signed() != signer.is_some() {
            return Err(ChunkError::Setup(
                "a signer is needed exactly for the signed modes",
            ));
        }
        if !payload.has_trailer() && !declared_trailers.is_empty() {
            return Err(ChunkError::Trailer(
                "x-amz-trailer is set but the payload mode has no trailers",
            ));
        }
        if declared_trailers.len() > DECLARED_TRAILERS_COUNT_MAX {
            return Err(ChunkError::Trailer("x-amz-trailer lists too many names"));
        }
        Ok(Self {
            state: State::SizeLine,
            signer,
            trailers_allowed: payload.has_trailer(),
            declared_trailers: declared_trailers
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect(),
            declared_len,
            decoded: 0,
            line: [0; CHUNK_LINE_BYTES_MAX],
            line_len: 0,
            chunk_signature: [0; SIGNATURE_HEX_LEN_BYTES],
            chunk_hash: None,
            trailer_buf: Vec::new(),
            trailer_line_start: 0,
            trailer_lines: 0,
            error: None,
        })
    }

    /// Payload bytes decoded so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Whether `Done` has been returned.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn fail(&mut self, error: ChunkError) -> ChunkError {
        self.state = State::Failed;
        self.error = Some(error.clone());
        error
    }

    /// Decodes from `input`; returns how many bytes were consumed and what came out. After
    /// [`Step::Data`] the unconsumed rest of `input` must be passed again; after
    /// [`Step::NeedMore`] everything was consumed. After an error, every call returns it.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Step<'a>), ChunkError> {
        match self.step(input) {
            Ok(out) => Ok(out),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn step<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Step<'a>), ChunkError> {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            match self.state {
                State::Failed => {
                    return Err(self
                        .error
                        .clone()
                        .unwrap_or(ChunkError::Framing("decoder failed")));
                }
                State::Done => {
                    return if rest.is_empty() {
                        Ok((pos, Step::NeedMore))
                    } else {
                        Err(ChunkError::TrailingData)
                    };
                }
                State::SizeLine => {
                    let (take, complete) = match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => (i + 1, true),
                        None => (rest.len(), false),
                    };
                    let end = self.line_len + take;
                    if end > CHUNK_LINE_BYTES_MAX {
                        return Err(ChunkError::Framing("chunk-size line too long"));
                    }
                    self.line[self.line_len..end].copy_from_slice(&rest[..take]);
                    self.line_len = end;
                    pos += take;
                    if !complete {
                        return Ok((pos, Step::NeedMore));
                    }
                    self.size_line_done()?;
                }
                State::Data { remaining } => {
                    if rest.is_empty() {
                        return Ok((pos, Step::NeedMore));
                    }
                    let take = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                    let data = &rest[..take];
                    if let Some(hash) = self.chunk_hash.as_mut() {
                        hash.update(data);
                    }
                    let taken = take as u64;
                    self.decoded = self.decoded.saturating_add(taken);
                    self.state = if remaining == taken {
                        State::DataCr
                    } else {
                        State::Data {
                            remaining: remaining - taken,
                        }
                    };
                    return Ok((pos + take, Step::Data(data)));
                }
                State::DataCr | State::DataLf => {
                    let Some(&b) = rest.first() else {
                        return Ok((pos, Step::NeedMore));
                    };
                    pos += 1;
                    match (self.state, b) {
                        (State::DataCr, b'\r') => self.state = State::DataLf,
                        (State::DataLf, b'\n') => {
                            self.chunk_done()?;
                            self.state = State::SizeLine;
                        }
                        _ => return Err(ChunkError::Framing("chunk data not followed by CRLF")),
                    }
                }
                State::Trailers => {
                    if rest.is_empty() {
                        return Ok((pos, Step::NeedMore));
                    }
                    let (take, complete) = match rest.iter().position(|&b| b == b'\n') {
                        Some(i) => (i + 1, true),
                        None => (rest.len(), false),
                    };
                    if self.trailer_buf.len() + take > TRAILER_BYTES_MAX {
                        return Err(ChunkError::Trailer("trailer section too large"));
                    }
                    self.trailer_buf.extend_from_slice(&rest[..take]);
                    pos += take;
                    let line = self
                        .trailer_buf
                        .get(self.trailer_line_start..)
                        .unwrap_or_default();
                    if !self.trailers_allowed && !b"\r\n".starts_with(line) {
                        return Err(ChunkError::Framing("data after the last chunk"));
                    }
                    if !complete {
                        return Ok((pos, Step::NeedMore));
                    }
                    if line.len() < 2 || line[line.len() - 2] != b'\r' {
                        return Err(ChunkError::Trailer("trailer line not ended by CRLF"));
                    }
                    if line.len() == 2 {
                        self.trailer_buf.truncate(self.trailer_line_start);
                        let trailers = self.finish_trailers()?;
                        self.state = State::Done;
                        return Ok((pos, Step::Done { trailers }));
                    }
                    self.trailer_lines += 1;
                    if self.trailer_lines > TRAILER_COUNT_MAX {
                        return Err(ChunkError::Trailer("too many trailers"));
                    }
                    self.trailer_line_start = self.trailer_buf.len();
                }
            }
        }
    }

    /// A complete chunk-size line is in `self.line`.
    fn size_line_done(&mut self) -> Result<(), ChunkError> {
        let line = &self.line[..self.line_len];
        self.line_len = 0;
        let Some(content) = line.strip_suffix(b"\r\n") else {
            return Err(ChunkError::Framing("chunk-size line not ended by CRLF"));
        };
        let (size, signature) = match content.iter().position(|&b| b == b';') {
            Some(i) => (&content[..i], Some(&content[i + 1..])),
            None => (content, None),
        };
        let size = parse_hex_size(size).ok_or(ChunkError::Framing("bad chunk size"))?;
        match (signature, self.signer.is_some()) {
            (Some(ext), true) => {
                let sig = ext
                    .strip_prefix(CHUNK_SIGNATURE_EXT)
                    .filter(|s| is_signature(s))
                    .ok_or(ChunkError::Framing("bad chunk-signature extension"))?;
                self.chunk_signature.copy_from_slice(sig);
            }
            (None, true) => return Err(ChunkError::Framing("chunk without a signature")),
            (Some(_), false) => {
                return Err(ChunkError::Framing("chunk extension in an unsigned body"));
            }
            (None, false) => {}
        }
        if size > CHUNK_DATA_BYTES_MAX {
            return Err(ChunkError::ChunkTooLarge { size });
        }
        let total = self.decoded.saturating_add(size);
        if let Some(declared) = self.declared_len
            && (total > declared || (size == 0 && total != declared))
        {
            return Err(ChunkError::LengthMismatch {
                declared,
                decoded: total,
            });
        }
        if self.signer.is_some() {
            self.chunk_hash = Some(digest::Context::new(&digest::SHA256));
        }
        if size == 0 {
            self.chunk_done()?;
            self.state = State::Trailers;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// All of a chunk's data has passed: check its signature.
    fn chunk_done(&mut self) -> Result<(), ChunkError> {
        let (Some(signer), Some(hash)) = (self.signer.as_mut(), self.chunk_hash.take()) else {
            return Ok(());
        };
        let mut sha = [0_u8; 32];
        sha.copy_from_slice(hash.finish().as_ref());
        signer
            .verify_chunk(&sha, &self.chunk_signature)
            .map_err(|_| ChunkError::ChunkSignature)
    }

    /// The trailer section ended (its lines are `self.trailer_buf`): parse, check, return.
    fn finish_trailers(&mut self) -> Result<Trailers, ChunkError> {
        let mut entries: Vec<(String, String)> = Vec::new();
        let mut signature: Option<&[u8]> = None;
        for line in self
            .trailer_buf
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
        {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(ChunkError::Trailer("trailer line without ':'"))?;
            let name = &line[..colon];
            let value = trim_ows(&line[colon + 1..]);
            if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
                return Err(ChunkError::Trailer("bad trailer name"));
            }
            if !value
                .iter()
                .all(|&b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
            {
                return Err(ChunkError::Trailer("bad trailer value"));
            }
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            if name == TRAILER_SIGNATURE {
                if signature.replace(value).is_some() {
                    return Err(ChunkError::Trailer("repeated trailer signature"));
                }
                continue;
            }
            if !self.declared_trailers.contains(&name) {
                return Err(ChunkError::UndeclaredTrailer(name));
            }
            if entries.iter().any(|(n, _)| *n == name) {
                return Err(ChunkError::Trailer("repeated trailer"));
            }
            entries.push((name, String::from_utf8_lossy(value).into_owned()));
        }
        if let Some(missing) = self
            .declared_trailers
            .iter()
            .find(|d| !entries.iter().any(|(n, _)| n == *d))
        {
            return Err(ChunkError::MissingTrailer(missing.clone()));
        }
        entries.sort();
        match (self.signer.as_mut(), signature) {
            (Some(signer), Some(sig)) => {
                if !is_signature(sig) {
                    return Err(ChunkError::Trailer("bad trailer signature"));
                }
                let mut canonical = Vec::with_capacity(self.trailer_buf.len());
                for (n, v) in &entries {
                    canonical.extend_from_slice(n.as_bytes());
                    canonical.push(b':');
                    canonical.extend_from_slice(v.as_bytes());
                    canonical.push(b'\n');
                }
                signer
                    .verify_trailer(&canonical, sig)
                    .map_err(|_| ChunkError::TrailerSignature)?;
            }
            (Some(_), None) if self.trailers_allowed => {
                return Err(ChunkError::Trailer("missing trailer signature"));
            }
            (None, Some(_)) => {
                return Err(ChunkError::Trailer("trailer signature in an unsigned body"));
            }
            (Some(_) | None, None) => {}
        }
        Ok(Trailers { entries })
    }

    /// The body ended (no more input will come). Returns the trailers when the body is
    /// complete only now — it ended right after the last chunk's line (`0\r\n`, as the Java
    /// and JS SDKs send without a checksum) or after complete trailer lines — and `None` when
    /// `Done` was already returned. Anything else is [`ChunkError::Truncated`].
    pub fn finish(&mut self) -> Result<Option<Trailers>, ChunkError> {
        let result = match self.state {
            State::Done => return Ok(None),
            State::Failed => Err(self
                .error
                .clone()
                .unwrap_or(ChunkError::Framing("decoder failed"))),
            State::Trailers if self.trailer_buf.len() == self.trailer_line_start => {
                match self.finish_trailers() {
                    Ok(trailers) => {
                        self.state = State::Done;
                        return Ok(Some(trailers));
                    }
                    Err(e) => Err(e),
                }
            }
            _ => Err(ChunkError::Truncated),
        };
        result.map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned(declared_len: Option<u64>, trailers: &[&str]) -> Decoder {
        let t: Vec<String> = trailers.iter().map(|s| (*s).to_owned()).collect();
        Decoder::new(
            PayloadMode::StreamingUnsignedTrailer,
            None,
            declared_len,
            &t,
        )
        .unwrap()
    }

    fn run(dec: &mut Decoder, body: &[u8]) -> Result<(Vec<u8>, Option<Trailers>), ChunkError> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let (n, step) = dec.decode(&body[pos..])?;
            pos += n;
            match step {
                Step::Data(d) => out.extend_from_slice(d),
                Step::NeedMore => return Ok((out, dec.finish()?)),
                Step::Done { trailers } => {
                    assert_eq!(pos, body.len(), "Done before the end");
                    return Ok((out, Some(trailers)));
                }
            }
        }
    }

    #[test]
    fn botocore_framing() {
        let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
        let mut d = unsigned(Some(5), &["x-amz-checksum-crc32"]);
        let (data, t) = run(&mut d, body).unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(t.unwrap().get("x-amz-checksum-crc32"), Some("NhCmhg=="));
    }

    #[test]
    fn eof_right_after_last_chunk() {
        let mut d = unsigned(Some(5), &[]);
        let (data, t) = run(&mut d, b"5\r\nhello\r\n0\r\n").unwrap();
        assert_eq!(data, b"hello");
        assert!(t.unwrap().is_empty());
        let mut d = unsigned(Some(5), &["x-amz-checksum-crc32"]);
        assert!(matches!(
            run(&mut d, b"5\r\nhello\r\n0\r\n"),
            Err(ChunkError::MissingTrailer(_))
        ));
    }

    #[test]
    fn setup_errors() {
        assert!(matches!(
            Decoder::new(PayloadMode::Unsigned, None, None, &[]),
            Err(ChunkError::Setup(_))
        ));
        assert!(matches!(
            Decoder::new(PayloadMode::StreamingSigned, None, None, &[]),
            Err(ChunkError::Setup(_))
        ));
    }

    #[test]
    fn declared_trailer_parsing() {
        assert_eq!(
            parse_declared_trailers(b" x-amz-checksum-CRC32 , ").unwrap(),
            ["x-amz-checksum-crc32"]
        );
        assert!(parse_declared_trailers(b"a, a").is_err());
        assert!(parse_declared_trailers(b"a b").is_err());
    }
}
