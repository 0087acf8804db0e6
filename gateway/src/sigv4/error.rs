//! Why SigV4 authentication failed: one enum, one variant per S3 error code, and the one
//! place where those codes and HTTP statuses are chosen.

use crate::s3::S3Code;
use std::borrow::Cow;
use std::time::SystemTime;

/// What the verifier computed when a signature did not match, returned to the client as S3
/// does (its `SignatureDoesNotMatch` error carries `CanonicalRequest` and `StringToSign`) so
/// a client author can see where the two sides differ. Nothing in it is secret: it is built
/// from the request the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The canonical request the gateway built (lossy UTF-8).
    pub canonical_request: String,
    /// The string to sign the gateway built.
    pub string_to_sign: String,
}

/// Why a request failed SigV4 authentication. Every variant is the client's fault: the
/// request is malformed, stale, for the wrong region, or signed with the wrong key.
/// [`AuthError::s3_code`] and [`AuthError::http_status`] are what S3 answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Authentication is missing or refused: no credentials at all, no valid date, headers
    /// that are not signed, or a presigned URL past its expiry ("Request has expired").
    /// The text is the error document's message, as S3 words it.
    #[error("{0}")]
    AccessDenied(&'static str),
    /// The signature (of the request, a chunk or the trailer) is not the one the secret key
    /// gives: a wrong secret, or the request was changed after it was signed.
    #[error("the request signature we calculated does not match the signature you provided")]
    SignatureDoesNotMatch {
        /// What the gateway computed, where a whole request was checked.
        detail: Option<Box<Mismatch>>,
    },
    /// The access key id is not one the gateway knows.
    #[error("the AWS access key id you provided does not exist in our records")]
    InvalidAccessKeyId,
    /// The `Authorization` header does not parse, or its scope (date, region, service) is
    /// not acceptable.
    #[error("the authorization header is malformed: {0}")]
    AuthorizationHeaderMalformed(Cow<'static, str>),
    /// A presigned URL's `X-Amz-*` parameters are missing, repeated or malformed. The text
    /// is the error document's message, as S3 words it.
    #[error("{0}")]
    AuthorizationQueryParametersError(Cow<'static, str>),
    /// The request time is more than [`super::CLOCK_SKEW_SECS_MAX`] from the gateway's clock.
    #[error("the difference between the request time and the current time is too large")]
    RequestTimeTooSkewed {
        /// When the client says it signed the request.
        request_time: SystemTime,
        /// The gateway's clock.
        server_time: SystemTime,
    },
    /// A header the request needs for authentication is missing.
    #[error("your request is missing a required header: {0}")]
    MissingSecurityHeader(&'static str),
    /// The request asks for something the gateway does not do (another signing algorithm,
    /// both header and query authentication, an unknown `x-amz-content-sha256` value).
    #[error("invalid request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// The body does not hash to the `x-amz-content-sha256` the client signed (found when
    /// the body ends).
    #[error("the provided 'x-amz-content-sha256' header does not match what was computed")]
    XAmzContentSHA256Mismatch {
        /// The hash the client signed.
        client_computed: [u8; 32],
        /// The hash of the body the gateway received.
        gateway_computed: [u8; 32],
    },
    /// The `Authorization` header lacks one of `Credential`, `SignedHeaders`, `Signature`.
    #[error("the request signature does not conform to AWS standards: {0}")]
    IncompleteSignature(&'static str),
    /// A browser form's authentication fields are malformed (algorithm, credential scope,
    /// date), as S3 answers them.
    #[error("{0}")]
    InvalidArgument(Cow<'static, str>),
}

impl AuthError {
    /// The S3 error code (`<Code>` of the error document).
    pub fn s3_code(&self) -> S3Code {
        match self {
            Self::AccessDenied(_) => S3Code::AccessDenied,
            Self::SignatureDoesNotMatch { .. } => S3Code::SignatureDoesNotMatch,
            Self::InvalidAccessKeyId => S3Code::InvalidAccessKeyId,
            Self::AuthorizationHeaderMalformed(_) => S3Code::AuthorizationHeaderMalformed,
            Self::AuthorizationQueryParametersError(_) => S3Code::AuthorizationQueryParametersError,
            Self::RequestTimeTooSkewed { .. } => S3Code::RequestTimeTooSkewed,
            Self::MissingSecurityHeader(_) => S3Code::MissingSecurityHeader,
            Self::InvalidRequest(_) => S3Code::InvalidRequest,
            Self::XAmzContentSHA256Mismatch { .. } => S3Code::XAmzContentSHA256Mismatch,
            Self::IncompleteSignature(_) => S3Code::IncompleteSignature,
            Self::InvalidArgument(_) => S3Code::InvalidArgument,
        }
    }

    /// The HTTP status S3 answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::AccessDenied(_)
            | Self::SignatureDoesNotMatch { .. }
            | Self::InvalidAccessKeyId
            | Self::RequestTimeTooSkewed { .. } => 403,
            Self::AuthorizationHeaderMalformed(_)
            | Self::AuthorizationQueryParametersError(_)
            | Self::MissingSecurityHeader(_)
            | Self::InvalidRequest(_)
            | Self::XAmzContentSHA256Mismatch { .. }
            | Self::IncompleteSignature(_)
            | Self::InvalidArgument(_) => 400,
        }
    }

    /// A `SignatureDoesNotMatch` without detail (chunk and trailer signatures).
    pub(crate) fn signature_mismatch() -> Self {
        Self::SignatureDoesNotMatch { detail: None }
    }
}
