//! Sans-IO HTTP/1.1: parsers and writers over byte slices and `Vec<u8>`, with no sockets and no
//! runtime, so the per-core I/O loop can drive them and fuzzers can reach every branch.
//!
//! - [`parse_request_head`] / [`parse_response_head`]: a message head from the bytes read so
//!   far; `Ok(None)` until the blank line that ends the head has arrived.
//! - [`RequestHead`] / [`ResponseHead`]: the head, its framing read strictly
//!   ([`RequestHead::body_kind`], [`ResponseHead::body_kind`]), and writers that refuse CR/LF
//!   injection.
//! - [`ChunkedDecoder`] and [`chunked_frame_header`] / [`chunked_end`]: `Transfer-Encoding:
//!   chunked`, decoded without copying.
//!
//! The parser is strict where leniency lets two parsers disagree on where a message ends
//! (request smuggling, RFC 9112 §6.1, §11.2): bare CR or LF, obs-fold, whitespace before a
//! colon, Transfer-Encoding other than a single `chunked`, Transfer-Encoding together with
//! Content-Length, and Content-Length copies that disagree are all errors, and after any error
//! the connection is to be closed ([`HttpError::must_close`]).

mod chunked;
mod error;
mod fields;
mod head;
mod request;
mod response;

pub use chunked::{
    CHUNK_LINE_BYTES_MAX, ChunkedDecoder, Step, TRAILER_BYTES_MAX, chunked_end, chunked_frame,
    chunked_frame_footer, chunked_frame_header,
};
pub use error::HttpError;
pub use fields::{BodyKind, Fields};
pub(crate) use fields::{find, trim_ows};
pub use request::{RequestHead, parse_request_head};
pub use response::{ResponseHead, canonical_reason, parse_response_head};

/// Default longest head, start line to the blank line inclusive.
pub const HEADER_BYTES_MAX_DEFAULT: usize = 16 * 1024;
/// Default most header fields in one head.
pub const HEADER_COUNT_MAX_DEFAULT: usize = 100;
/// Default longest request target.
pub const URL_BYTES_MAX_DEFAULT: usize = 8 * 1024;
/// The most header fields any configuration may allow: the parser keeps its field table on the
/// stack, and a larger `Limits::header_count_max` is treated as this.
pub const HEADER_COUNT_CEILING: usize = 256;

const _: () = assert!(HEADER_COUNT_MAX_DEFAULT <= HEADER_COUNT_CEILING);
const _: () = assert!(URL_BYTES_MAX_DEFAULT < HEADER_BYTES_MAX_DEFAULT);

/// Bounds on a message head; what a client may make the gateway buffer before it answers.
///
/// Keep `url_bytes_max` below `header_bytes_max`: the target is part of the head, and with the
/// order reversed a long target could be reported as 431 on a partial head but 414 on a
/// complete one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest head in bytes, from the first byte (including empty lines ignored before the
    /// request line) to the blank line inclusive. Over it: 431.
    pub header_bytes_max: usize,
    /// Most header fields. Over it: 431. At most [`HEADER_COUNT_CEILING`].
    pub header_count_max: usize,
    /// Longest request target in bytes. Over it: 414.
    pub url_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_bytes_max: HEADER_BYTES_MAX_DEFAULT,
            header_count_max: HEADER_COUNT_MAX_DEFAULT,
            url_bytes_max: URL_BYTES_MAX_DEFAULT,
        }
    }
}

/// The HTTP versions spoken: 1.0 and 1.1. Anything else is refused with 505.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: no chunked, no persistent connections unless asked for.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}
