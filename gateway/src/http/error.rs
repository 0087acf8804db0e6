//! What can go wrong reading or writing HTTP/1.1 bytes, and the answer each failure gets.

use crate::s3::S3Code;
/// Why a message head or body was refused.
///
/// Every variant describes bytes a peer sent. [`HttpError::status`] and
/// [`HttpError::s3_code`] give the answer to send when the peer is the *client*; when the bytes
/// came from the backend (a response head or a response body), the fault is the backend's and the
/// gateway answers its client with `S3Error::bad_gateway` instead. [`HttpError::UnwritableHead`]
/// is the one exception: it is raised by the writers, and the fault is the gateway's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The head (start line, header fields and the blank line) is longer than
    /// `Limits::header_bytes_max`.
    #[error("the message head is longer than {limit_bytes} bytes")]
    HeadTooLarge {
        /// The limit that was exceeded.
        limit_bytes: usize,
    },
    /// More header fields than `Limits::header_count_max`.
    #[error("the message has more than {limit} header fields")]
    TooManyHeaders {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The request target is longer than `Limits::url_bytes_max`.
    #[error("the request target is longer than {limit_bytes} bytes")]
    UriTooLong {
        /// The limit that was exceeded.
        limit_bytes: usize,
    },
    /// The request target is not in origin-form (`/path?query`), nor `*` on an OPTIONS request,
    /// or holds bytes that have no place in a target (a fragment, non-UTF-8).
    #[error("the request target is not an origin-form path: {0}")]
    InvalidUri(&'static str),
    /// The request line does not match `method SP request-target SP HTTP-version CRLF`.
    #[error("malformed request line")]
    InvalidRequestLine,
    /// The status line does not match `HTTP-version SP 3DIGIT SP reason-phrase CRLF`.
    #[error("malformed status line")]
    InvalidStatusLine,
    /// The HTTP version is neither 1.0 nor 1.1.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// A line ends in a bare CR or a bare LF instead of CRLF.
    #[error("a line in the message head does not end in CRLF")]
    BareLineEnding,
    /// A header line starts with whitespace: obsolete line folding (RFC 9112 §5.2), or
    /// whitespace between the start line and the first field (RFC 9112 §2.2).
    #[error("obsolete line folding in the message head")]
    ObsFold,
    /// A field name is empty, has a character outside `token`, or whitespace before the colon.
    #[error("invalid header field name")]
    InvalidHeaderName,
    /// A field value holds a control character.
    #[error("invalid header field value")]
    InvalidHeaderValue,
    /// An HTTP/1.1 request without a Host field (RFC 9112 §3.2).
    #[error("the request has no Host header")]
    MissingHost,
    /// More than one Host field (RFC 9112 §3.2).
    #[error("the request has more than one Host header")]
    DuplicateHost,
    /// Content-Length is not a decimal number that fits in 64 bits, or its copies disagree.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Both Transfer-Encoding and Content-Length: the framing could be read two ways, the
    /// shape of request smuggling (RFC 9112 §6.1, §6.3).
    #[error("both Transfer-Encoding and Content-Length are present")]
    ConflictingFraming,
    /// A transfer coding other than `chunked` (RFC 9112 §6.1: 501).
    #[error("unsupported transfer coding")]
    UnsupportedTransferEncoding,
    /// Transfer-Encoding that cannot frame a body: empty, `chunked` twice, or sent in an
    /// HTTP/1.0 message (RFC 9112 §6.1).
    #[error("invalid Transfer-Encoding")]
    InvalidTransferEncoding,
    /// A chunk-size line or the CRLF after chunk data is malformed, or a size overflows 64 bits.
    #[error("malformed chunked body")]
    InvalidChunk,
    /// A chunk-size line (size and extensions) is longer than `CHUNK_LINE_BYTES_MAX`.
    #[error("chunk-size line longer than {limit_bytes} bytes")]
    ChunkLineTooLong {
        /// The limit that was exceeded.
        limit_bytes: usize,
    },
    /// The trailer section of a chunked body is longer than `TRAILER_BYTES_MAX`.
    #[error("chunked trailer section longer than {limit_bytes} bytes")]
    TrailerTooLarge {
        /// The limit that was exceeded.
        limit_bytes: usize,
    },
    /// The connection ended before the body did. Raised by the caller's I/O loop, which alone
    /// sees end-of-stream.
    #[error("the connection closed before the end of the body")]
    IncompleteBody,
    /// A head the gateway built cannot be written: a name that is not a token, or a value or
    /// target with CR, LF or another control character. The gateway's fault.
    #[error("refusing to write a header that is not valid HTTP: {0}")]
    UnwritableHead(&'static str),
}

impl HttpError {
    /// The HTTP status to answer a client whose request failed this way.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::HeadTooLarge { .. }
            | HttpError::TooManyHeaders { .. }
            | HttpError::TrailerTooLarge { .. } => 431,
            HttpError::UriTooLong { .. } => 414,
            HttpError::UnsupportedTransferEncoding => 501,
            HttpError::UnsupportedVersion => 505,
            HttpError::UnwritableHead(_) => 500,
            HttpError::InvalidUri(_)
            | HttpError::InvalidRequestLine
            | HttpError::InvalidStatusLine
            | HttpError::BareLineEnding
            | HttpError::ObsFold
            | HttpError::InvalidHeaderName
            | HttpError::InvalidHeaderValue
            | HttpError::MissingHost
            | HttpError::DuplicateHost
            | HttpError::InvalidContentLength
            | HttpError::ConflictingFraming
            | HttpError::InvalidTransferEncoding
            | HttpError::InvalidChunk
            | HttpError::ChunkLineTooLong { .. }
            | HttpError::IncompleteBody => 400,
        }
    }

    /// The S3 error code for the error document sent with [`HttpError::status`].
    ///
    /// S3's list has no code for an unsupported HTTP version; `NotImplemented` is the nearest.
    /// `BadRequest` is what S3 itself answers for a request it cannot parse as HTTP.
    pub fn s3_code(&self) -> S3Code {
        match self {
            HttpError::HeadTooLarge { .. }
            | HttpError::TooManyHeaders { .. }
            | HttpError::TrailerTooLarge { .. } => S3Code::RequestHeaderSectionTooLarge,
            HttpError::UriTooLong { .. } | HttpError::InvalidUri(_) => S3Code::InvalidURI,
            HttpError::UnsupportedTransferEncoding | HttpError::UnsupportedVersion => {
                S3Code::NotImplemented
            }
            HttpError::InvalidContentLength => S3Code::InvalidArgument,
            HttpError::ChunkLineTooLong { .. } => S3Code::MaxMessageLengthExceeded,
            HttpError::IncompleteBody => S3Code::IncompleteBody,
            HttpError::UnwritableHead(_) => S3Code::InternalError,
            HttpError::InvalidRequestLine
            | HttpError::InvalidStatusLine
            | HttpError::BareLineEnding
            | HttpError::ObsFold
            | HttpError::InvalidHeaderName
            | HttpError::InvalidHeaderValue
            | HttpError::MissingHost
            | HttpError::DuplicateHost
            | HttpError::ConflictingFraming
            | HttpError::InvalidTransferEncoding
            | HttpError::InvalidChunk => S3Code::BadRequest,
        }
    }

    /// Whether the connection must be closed after answering: true for every error found while
    /// reading, since the framing of whatever follows can no longer be trusted.
    pub fn must_close(&self) -> bool {
        !matches!(self, HttpError::UnwritableHead(_))
    }
}
