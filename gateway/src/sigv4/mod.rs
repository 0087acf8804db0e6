//! AWS Signature Version 4 for S3, sans-IO: [`verify`] checks the requests clients send to
//! the gateway, [`sign`] signs the requests the gateway sends to the backend, and
//! [`ChunkSigner`] follows the signature chain of a streaming signed body (the framing itself
//! is [`crate::sigv4::awschunked`]).
//!
//! # What is checked
//!
//! Two ways to authenticate, never both in one request (`InvalidRequest`):
//!
//! - **Header**: `Authorization: AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/s3/aws4_request,
//!   SignedHeaders=h1;h2;..., Signature=<64 hex>`. The time is `x-amz-date`
//!   (`YYYYMMDDTHHMMSSZ`), else `Date` (IMF-fixdate); it must be within
//!   [`CLOCK_SKEW_SECS_MAX`] of the gateway's clock (`RequestTimeTooSkewed`).
//!   `x-amz-content-sha256` is required (`InvalidRequest`) and selects the [`PayloadMode`].
//! - **Presigned URL**: `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`
//!   (seconds, [`PRESIGNED_EXPIRES_SECS_MIN`] to [`PRESIGNED_EXPIRES_SECS_MAX`]; not a number,
//!   negative or over a week is `AuthorizationQueryParametersError`), `X-Amz-SignedHeaders`,
//!   `X-Amz-Signature` in the query. The URL is valid from `X-Amz-Date` (less the skew
//!   allowance) to `X-Amz-Date + X-Amz-Expires` (after, and always for `X-Amz-Expires=0`:
//!   `AccessDenied`, "Request has expired"). The payload
//!   is `UNSIGNED-PAYLOAD` unless an `X-Amz-Content-Sha256` parameter or a signed
//!   `x-amz-content-sha256` header says otherwise.
//!
//! In both, the scope date must be the request date, the region one of those configured and
//! the service `s3` (`AuthorizationHeaderMalformed` / `AuthorizationQueryParametersError`);
//! `host` must be signed; every `x-amz-*` header present must be signed (`AccessDenied`, as
//! S3's "headers present in the request which were not signed"); an unknown access key is
//! `InvalidAccessKeyId`. Signatures are compared in constant time.
//!
//! # Canonical request (byte level)
//!
//! ```text
//! <method>\n
//! <canonical URI>\n          the path exactly as sent (S3: no normalisation, no double encoding)
//! <canonical query>\n        each parameter %-decoded ('+' = space), then re-encoded with only
//!                            A-Z a-z 0-9 - _ . ~ left bare, '%XX' upper-case; sorted by
//!                            encoded name, then value; 'n=v' joined by '&'; presigned URLs
//!                            leave out X-Amz-Signature
//! <name>:<value>\n ...       one line per signed header, in the SignedHeaders order; values
//!                            of repeated headers joined by ',' in order; each value trimmed,
//!                            inner runs of spaces and tabs collapsed to one space
//! \n
//! <signed headers>\n         the SignedHeaders list, ';'-separated
//! <payload>                  the x-amz-content-sha256 value, or UNSIGNED-PAYLOAD
//! ```
//!
//! String to sign: `AWS4-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256(canonical request)>`;
//! signing key: `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), "s3"), "aws4_request")`;
//! signature: lower-case hex of `HMAC(signing key, string to sign)`.
//!
//! When the path as sent does not verify, the verifier tries once more with the path in
//! [`canonical::normalize_path`] form (every escape decoded, then re-encoded): clients that
//! send a reserved character bare but sign it encoded (as in the S3 documentation's
//! `/test$file.text` example, and as S3 itself accepts) verify too.
//!
//! # Payload
//!
//! The verifier does not see the body. For [`PayloadMode::Sha256`] the caller hashes the body
//! and calls [`PayloadMode::check_body_sha256`] at its end (`XAmzContentSHA256Mismatch`);
//! the streaming modes are aws-chunked bodies for [`crate::sigv4::awschunked::Decoder`], which for
//! the signed ones takes the [`ChunkSigner`] returned here.
//!
//! # Not supported
//!
//! SigV2 and SigV4a (`AWS4-ECDSA-P256-SHA256`) are refused (`InvalidRequest` /
//! `AccessDenied`); anonymous requests are `AccessDenied`. Browser-form uploads carry their
//! signature in the form, not the head: [`post`].
//! `x-amz-security-token` is signed like any header but not validated: the gateway's
//! credentials are long-term keys.

pub mod awschunked;
pub mod canonical;
mod chunk;
mod error;
mod key;
pub mod post;
mod sign;
mod time;
pub use time::{format_rfc3339, unix_now};
mod verify;

pub use chunk::ChunkSigner;
pub use error::{AuthError, Mismatch};
pub use key::{Secret, SigningKey};
pub use post::{PostAuth, sign_post_policy, verify_post};
pub use sign::{Query, SigningInput, SigningOutput, presign, sign};
pub use verify::verify;

/// Seconds since the Unix epoch of a `YYYYMMDDTHHMMSSZ` timestamp.
pub fn parse_amz_date_secs(s: &str) -> Option<u64> {
    time::parse_amz_date(s.as_bytes())
}

use std::borrow::Cow;
use std::time::SystemTime;

/// Largest allowed difference between the request time and the gateway's clock (S3: 15 min).
pub const CLOCK_SKEW_SECS_MAX: u64 = 15 * 60;
/// Shortest validity of a presigned URL. S3 answers `X-Amz-Expires=0` as a URL that has
/// expired (`AccessDenied`, "Request has expired"), whenever it comes.
pub const PRESIGNED_EXPIRES_SECS_MIN: u64 = 1;
/// Longest validity of a presigned URL (S3: 7 days; more is
/// `AuthorizationQueryParametersError`).
pub const PRESIGNED_EXPIRES_SECS_MAX: u64 = 7 * 24 * 3600;
const _: () = assert!(PRESIGNED_EXPIRES_SECS_MIN <= PRESIGNED_EXPIRES_SECS_MAX);
/// What S3 answers for an `X-Amz-Expires` over [`PRESIGNED_EXPIRES_SECS_MAX`].
const EXPIRES_TOO_LONG: &str = "X-Amz-Expires must be less than a week (in seconds); that is, \
     the given X-Amz-Expires must be less than 604800 seconds";
const _: () = assert!(PRESIGNED_EXPIRES_SECS_MAX == 604_800);
/// The only service name accepted in a credential scope.
pub const SERVICE: &str = "s3";

/// `x-amz-content-sha256` for an unsigned payload.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `x-amz-content-sha256` for aws-chunked with chunk signatures.
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// `x-amz-content-sha256` for aws-chunked with chunk signatures and signed trailers.
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// `x-amz-content-sha256` for aws-chunked without signatures, with trailers (the default of
/// aws CLI ≥ 2.23 and boto3 ≥ 1.36 over HTTPS).
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The raw head of a client request, as it came off the wire.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a, N, V> {
    /// The method, e.g. `PUT`.
    pub method: &'a str,
    /// The request-target in origin form (`/path?query`), percent-encoding untouched.
    pub target: &'a str,
    /// Header fields in the order received: name (any case) and raw value. For HTTP/2, pass
    /// `:authority` as `host`.
    pub headers: &'a [(N, V)],
}

/// What `x-amz-content-sha256` says about the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// The body is sent as is and must hash to this SHA-256.
    Sha256([u8; 32]),
    /// `UNSIGNED-PAYLOAD`: the body is sent as is and is not covered by the signature.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked, every chunk signed.
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: aws-chunked, chunks and trailer signed.
    StreamingSignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked, no signatures, trailers.
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    /// Reads an `x-amz-content-sha256` value: 64 hex digits or one of the literals.
    pub fn parse(value: &[u8]) -> Result<Self, AuthError> {
        Ok(match value {
            v if v == UNSIGNED_PAYLOAD.as_bytes() => Self::Unsigned,
            v if v == STREAMING_SIGNED.as_bytes() => Self::StreamingSigned,
            v if v == STREAMING_SIGNED_TRAILER.as_bytes() => Self::StreamingSignedTrailer,
            v if v == STREAMING_UNSIGNED_TRAILER.as_bytes() => Self::StreamingUnsignedTrailer,
            v => match key::parse_hex32(v) {
                Some(hash) => Self::Sha256(hash),
                None => {
                    return Err(AuthError::InvalidRequest(
                        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, \
                         STREAMING-AWS4-HMAC-SHA256-PAYLOAD, \
                         STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, \
                         STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value"
                            .into(),
                    ));
                }
            },
        })
    }

    /// The `x-amz-content-sha256` value (lower-case hex for [`PayloadMode::Sha256`]).
    pub fn header_value(&self) -> Cow<'static, str> {
        match self {
            Self::Sha256(hash) => Cow::Owned(key::hex_string(hash)),
            Self::Unsigned => Cow::Borrowed(UNSIGNED_PAYLOAD),
            Self::StreamingSigned => Cow::Borrowed(STREAMING_SIGNED),
            Self::StreamingSignedTrailer => Cow::Borrowed(STREAMING_SIGNED_TRAILER),
            Self::StreamingUnsignedTrailer => Cow::Borrowed(STREAMING_UNSIGNED_TRAILER),
        }
    }

    /// Whether the body is aws-chunked framed.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Self::StreamingSigned | Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }

    /// Whether the chunks carry signatures.
    pub fn is_chunk_signed(&self) -> bool {
        matches!(self, Self::StreamingSigned | Self::StreamingSignedTrailer)
    }

    /// Whether a trailer section may follow the last chunk.
    pub fn has_trailer(&self) -> bool {
        matches!(
            self,
            Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }

    /// At the end of a [`PayloadMode::Sha256`] body: does it hash to what was signed?
    /// (Every other mode passes.)
    pub fn check_body_sha256(&self, computed: &[u8; 32]) -> Result<(), AuthError> {
        match self {
            Self::Sha256(claimed) if !key::ct_eq(claimed, computed) => {
                Err(AuthError::XAmzContentSHA256Mismatch {
                    client_computed: *claimed,
                    gateway_computed: *computed,
                })
            }
            _ => Ok(()),
        }
    }
}

/// How a verified request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// The `Authorization` header.
    Header,
    /// A presigned URL, valid until `expires_at`.
    Presigned {
        /// `X-Amz-Date + X-Amz-Expires`.
        expires_at: SystemTime,
    },
    /// A browser form's POST policy ([`post`]), valid until its `expiration`.
    PostPolicy,
}

/// A request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The access key id that signed it.
    pub access_key_id: String,
    /// Header or presigned URL.
    pub method: AuthMethod,
    /// The region of the credential scope (one of those configured).
    pub region: String,
    /// When the client signed it.
    pub request_time: SystemTime,
    /// The signed header names (lower-case), in the order signed.
    pub signed_headers: Vec<String>,
    /// What the body is and how it must be checked.
    pub payload: PayloadMode,
    /// `x-amz-decoded-content-length`, when sent (the payload length of an aws-chunked body).
    pub decoded_content_length: Option<u64>,
    /// For [`PayloadMode::StreamingSigned`] and [`PayloadMode::StreamingSignedTrailer`]: the
    /// chain seeded with this request's signature, for [`crate::sigv4::awschunked::Decoder`].
    pub chunk_signer: Option<ChunkSigner>,
}
