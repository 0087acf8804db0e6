//! The S3 error answer: status, code and the XML error document, in S3's exact shape.
//!
//! ```text
//! <?xml version="1.0" encoding="UTF-8"?>\n
//! <Error><Code>NoSuchKey</Code><Message>...</Message><Resource>/b/k</Resource><RequestId>...</RequestId></Error>
//! ```
//!
//! `Resource` is left out when there is none. Codes and default messages are those of the S3
//! API reference ("Error responses", list of error codes). One gateway-specific choice: a
//! backend that fails or cannot be reached gets **502 with code `InternalError`** (S3 has no
//! BadGateway code): the status tells SDKs it is transient and worth a retry (botocore, the
//! Java and Go SDKs all retry 502), and the code is one every S3 client knows.
//!
//! What the client reads never describes the gateway's insides: an error may carry a
//! [`S3Error::detail`] (a custodian's or token's label, the backend's socket or TLS error,
//! what failed to verify) that is logged under the request id and never serialised, and a
//! server error (500, 502, 503, 504) always goes out with the generic message of its status
//! ([`S3Error::client_message`]), whatever message it was built with. Messages of 4xx
//! answers describe the client's own request and go out as they are.

use super::xml;
use crate::http::{HttpError, ResponseHead};

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// The message of every 500 answer (and of any other 5xx without one of its own).
pub const INTERNAL_ERROR_MESSAGE: &str = "We encountered an internal error. Please try again.";
/// The message of every 502 answer: the backend failed or could not be reached.
pub const BAD_GATEWAY_MESSAGE: &str =
    "The gateway received an invalid response from the storage backend. Please try again.";
/// The message of every 503 answer.
pub const SERVICE_UNAVAILABLE_MESSAGE: &str = "Please reduce your request rate.";
/// The message of every 504 answer.
pub const GATEWAY_TIMEOUT_MESSAGE: &str =
    "The gateway timed out waiting for the storage backend. Please try again.";

macro_rules! codes {
    (@name $variant:ident $name:literal) => { $name };
    (@name $variant:ident) => { stringify!($variant) };
    ($($(#[$doc:meta])* $variant:ident $(= $name:literal)?,)*) => {
        /// An S3 error code, as the `Code` element of the error document spells it. The
        /// gateway answers with these only; a backend's own code is relayed as text
        /// ([`S3Error::relayed`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum S3Code {
            $($(#[$doc])* $variant,)*
        }

        impl S3Code {
            /// The code as S3 spells it, e.g. `NoSuchKey`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => codes!(@name $variant $($name)?),)*
                }
            }
        }
    };
}

codes! {
    /// Access denied by a grant, or a request the credentials may not make.
    AccessDenied,
    /// A Authorization header that cannot be parsed.
    AuthorizationHeaderMalformed,
    /// A presigned URL's query parameters that cannot be parsed.
    AuthorizationQueryParametersError,
    /// Content-MD5 (or a checksum) does not match the body.
    BadDigest,
    /// Bytes that are not an acceptable HTTP request.
    BadRequest,
    /// A multipart part smaller than the minimum.
    EntityTooSmall,
    /// A body larger than allowed.
    EntityTooLarge,
    /// An expired session token.
    ExpiredToken,
    /// A body shorter than its declared length.
    IncompleteBody,
    /// An Authorization header missing one of its parts.
    IncompleteSignature,
    /// A server error; also the code of 502 and 504 answers (see the module documentation).
    InternalError,
    /// An unknown access key id.
    InvalidAccessKeyId,
    /// A request argument that is not acceptable.
    InvalidArgument,
    /// A bucket name that is not valid.
    InvalidBucketName,
    /// A Content-MD5 that is not base64 of 16 bytes.
    InvalidDigest,
    /// An object in a storage class that cannot be read now.
    InvalidObjectState,
    /// A multipart part that cannot be found or does not match.
    InvalidPart,
    /// A part number out of range.
    InvalidPartNumber,
    /// The parts of a CompleteMultipartUpload document are not in ascending order.
    InvalidPartOrder,
    /// A browser form's POST policy is not a valid policy document.
    InvalidPolicyDocument,
    /// A range that cannot be satisfied.
    InvalidRange,
    /// A request that is not acceptable as a whole.
    InvalidRequest,
    /// A session token that is not valid.
    InvalidToken,
    /// A request target that cannot be parsed.
    #[allow(clippy::upper_case_acronyms)]
    InvalidURI,
    /// A key longer than allowed.
    KeyTooLongError,
    /// User metadata larger than allowed.
    MetadataTooLarge,
    /// A chunk line longer than allowed.
    MaxMessageLengthExceeded,
    /// A trailer that is missing or cannot be parsed.
    MalformedTrailerError,
    /// A browser-form upload whose body is not well-formed multipart/form-data.
    #[allow(clippy::upper_case_acronyms)]
    MalformedPOSTRequest,
    /// An XML body that cannot be parsed.
    #[allow(clippy::upper_case_acronyms)]
    MalformedXML,
    /// A method the resource does not take.
    MethodNotAllowed,
    /// A body with no Content-Length where one is needed.
    MissingContentLength,
    /// A KMS key id that names no configured key.
    KmsNotFound = "KMS.NotFoundException",
    /// An object under a key that was destroyed (crypto-shredded).
    KmsInvalidState = "KMS.KMSInvalidStateException",
    /// A required security header is missing.
    MissingSecurityHeader,
    /// No such bucket.
    NoSuchBucket,
    /// No such key.
    NoSuchKey,
    /// No such multipart upload.
    NoSuchUpload,
    /// A feature the gateway does not implement.
    NotImplemented,
    /// A condition of the request did not hold.
    PreconditionFailed,
    /// A request head larger than allowed.
    RequestHeaderSectionTooLarge,
    /// A client that did not send or read in time.
    RequestTimeout,
    /// A request whose date is too far from the gateway's clock.
    RequestTimeTooSkewed,
    /// A signature that does not match.
    SignatureDoesNotMatch,
    /// The service cannot answer now (a custodian is unavailable, or the gateway is busy).
    ServiceUnavailable,
    /// Too many requests.
    SlowDown,
    /// x-amz-content-sha256 does not match the body.
    XAmzContentSHA256Mismatch,
}

impl std::fmt::Display for S3Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for S3Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error to answer a client with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct S3Error {
    /// HTTP status.
    pub status: u16,
    /// S3 error code, e.g. `NoSuchKey`.
    pub code: S3Code,
    /// Human-readable description.
    pub message: String,
    /// The bucket or object concerned, e.g. `/bucket/key`.
    pub resource: Option<String>,
    /// The request's id, also sent as `x-amz-request-id`. Empty until the caller sets it.
    pub request_id: String,
    /// What went wrong inside, for the log only: never serialised. (Boxed to keep
    /// `Result<_, S3Error>` small.)
    pub detail: Option<Box<str>>,
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $fn:ident => $status:literal, $code:ident, $message:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $fn() -> Self {
                Self::new($status, S3Code::$code, $message)
            }
        )*
    };
}

impl S3Error {
    /// Any status, code and message; no resource, empty request id.
    pub fn new(status: u16, code: S3Code, message: impl Into<String>) -> Self {
        S3Error {
            status,
            code,
            message: message.into(),
            resource: None,
            request_id: String::new(),
            detail: None,
        }
    }

    /// 500 InternalError with `detail` for the log.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::internal_error().with_detail(detail)
    }

    /// Sets what went wrong inside: logged under the request id, never sent to the client.
    pub fn with_detail(mut self, detail: impl std::fmt::Display) -> Self {
        self.detail = Some(detail.to_string().into_boxed_str());
        self
    }

    /// What went wrong inside, if the error says.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The message the client reads: the generic one of the status for a server error
    /// (500, 502, 503, 504), the error's own otherwise. See the module documentation.
    pub fn client_message(&self) -> &str {
        match self.status {
            500 => INTERNAL_ERROR_MESSAGE,
            502 => BAD_GATEWAY_MESSAGE,
            503 => SERVICE_UNAVAILABLE_MESSAGE,
            504 => GATEWAY_TIMEOUT_MESSAGE,
            // 501 NotImplemented says which feature of the client's request is missing.
            501 => &self.message,
            s if s >= 500 => INTERNAL_ERROR_MESSAGE,
            _ => &self.message,
        }
    }

    /// Sets the resource (`/bucket` or `/bucket/key`).
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// Replaces the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    constructors! {
        /// 403 AccessDenied.
        access_denied => 403, AccessDenied, "Access Denied";
        /// 403 SignatureDoesNotMatch.
        signature_does_not_match => 403, SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
        /// 403 InvalidAccessKeyId.
        invalid_access_key_id => 403, InvalidAccessKeyId,
            "The AWS access key ID you provided does not exist in our records.";
        /// 400 XAmzContentSHA256Mismatch.
        x_amz_content_sha256_mismatch => 400, XAmzContentSHA256Mismatch,
            "The provided 'x-amz-content-sha256' header does not match what was computed.";
        /// 400 BadDigest: Content-MD5 (or a checksum) does not match the body.
        bad_digest => 400, BadDigest, "The Content-MD5 you specified did not match what we received.";
        /// 400 InvalidDigest: Content-MD5 is not valid base64 of 16 bytes.
        invalid_digest => 400, InvalidDigest, "The Content-MD5 you specified is not valid.";
        /// 416 InvalidRange.
        invalid_range => 416, InvalidRange, "The requested range is not satisfiable";
        /// 404 NoSuchKey.
        no_such_key => 404, NoSuchKey, "The specified key does not exist.";
        /// 404 NoSuchBucket.
        no_such_bucket => 404, NoSuchBucket, "The specified bucket does not exist";
        /// 404 NoSuchUpload.
        no_such_upload => 404, NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.";
        /// 412 PreconditionFailed.
        precondition_failed => 412, PreconditionFailed, "At least one of the pre-conditions you specified did not hold";
        /// 501 NotImplemented.
        not_implemented => 501, NotImplemented, "A header you provided implies functionality that is not implemented";
        /// 500 InternalError.
        internal_error => 500, InternalError, INTERNAL_ERROR_MESSAGE;
        /// 503 ServiceUnavailable.
        service_unavailable => 503, ServiceUnavailable, SERVICE_UNAVAILABLE_MESSAGE;
        /// 503 SlowDown.
        slow_down => 503, SlowDown, SERVICE_UNAVAILABLE_MESSAGE;
        /// 502 InternalError: the backend failed, answered with bytes that are not HTTP, or
        /// could not be reached. See the module documentation for why this code.
        bad_gateway => 502, InternalError, BAD_GATEWAY_MESSAGE;
        /// 504 InternalError: the backend did not connect, answer or go on within its
        /// deadline (`[limits]`); same code as for 502, for the same reason.
        gateway_timeout => 504, InternalError, GATEWAY_TIMEOUT_MESSAGE;
        /// 400 EntityTooLarge.
        entity_too_large => 400, EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.";
        /// 405 MethodNotAllowed.
        method_not_allowed => 405, MethodNotAllowed, "The specified method is not allowed against this resource.";
        /// 400 RequestTimeout.
        request_timeout => 400, RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period.";
        /// 400 IncompleteBody.
        incomplete_body => 400, IncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header";
        /// 400 MalformedXML.
        malformed_xml => 400, MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema";
        /// 400 InvalidBucketName.
        invalid_bucket_name => 400, InvalidBucketName, "The specified bucket is not valid.";
        /// 400 KeyTooLongError.
        key_too_long => 400, KeyTooLongError, "Your key is too long";
        /// 400 MetadataTooLarge.
        metadata_too_large => 400, MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.";
        /// 411 MissingContentLength.
        missing_content_length => 411, MissingContentLength, "You must provide the Content-Length HTTP header.";
        /// 400 InvalidURI.
        invalid_uri => 400, InvalidURI, "Couldn't parse the specified URI.";
    }

    /// 400 InvalidRequest with a message saying what is wrong.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, S3Code::InvalidRequest, message)
    }

    /// 400 InvalidArgument with a message saying which argument and why.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(400, S3Code::InvalidArgument, message)
    }

    /// The answer to a client whose request bytes failed to parse: status and code from
    /// [`HttpError::status`] and [`HttpError::s3_code`], the error's text as message.
    pub fn from_http(e: &HttpError) -> Self {
        Self::new(e.status(), e.s3_code(), e.to_string())
    }

    /// Appends the XML error document to `out`.
    pub fn write_xml(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(XML_DECLARATION.as_bytes());
        out.extend_from_slice(b"<Error><Code>");
        xml::escape_into(self.code.as_str(), out);
        out.extend_from_slice(b"</Code><Message>");
        xml::escape_into(self.client_message(), out);
        out.extend_from_slice(b"</Message>");
        if let Some(resource) = &self.resource {
            out.extend_from_slice(b"<Resource>");
            xml::escape_into(resource, out);
            out.extend_from_slice(b"</Resource>");
        }
        out.extend_from_slice(b"<RequestId>");
        xml::escape_into(&self.request_id, out);
        out.extend_from_slice(b"</RequestId></Error>");
    }

    /// A backend's error document as the client gets it: the backend's `Code` and (for a
    /// client error) `Message`, the gateway's request id, and nothing else of the backend's
    /// (its own request and host ids, zone names, resource paths stay out). A server error
    /// (5xx) gets the generic message of its status; a body that is no S3 error document
    /// gets the status's generic code.
    pub fn relayed(status: u16, backend_xml: &[u8], request_id: &str) -> Vec<u8> {
        let text = String::from_utf8_lossy(backend_xml);
        let element = |tag: &str| {
            let open = format!("<{tag}>");
            let close = format!("</{tag}>");
            let from = text.find(&open)? + open.len();
            let len = text[from..].find(&close)?;
            Some(xml::unescape(&text[from..from + len]))
        };
        let code = element("Code")
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| {
                match status {
                    s if s >= 500 => S3Code::InternalError,
                    404 => S3Code::NoSuchKey,
                    403 => S3Code::AccessDenied,
                    _ => S3Code::InvalidRequest,
                }
                .as_str()
                .to_owned()
            });
        let generic = S3Error::new(status, S3Code::InternalError, String::new());
        let message = match status {
            501 | 400..=499 => element("Message").unwrap_or_default(),
            _ => generic.client_message().to_owned(),
        };
        let mut out = Vec::with_capacity(256 + code.len() + message.len());
        out.extend_from_slice(XML_DECLARATION.as_bytes());
        out.extend_from_slice(b"<Error><Code>");
        xml::escape_into(&code, &mut out);
        out.extend_from_slice(b"</Code><Message>");
        xml::escape_into(&message, &mut out);
        out.extend_from_slice(b"</Message><RequestId>");
        xml::escape_into(request_id, &mut out);
        out.extend_from_slice(b"</RequestId></Error>");
        out
    }

    /// The XML error document.
    pub fn to_xml(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.xml_len());
        self.write_xml(&mut out);
        out
    }

    /// The length of [`S3Error::to_xml`], computed without building it.
    pub fn xml_len(&self) -> usize {
        const FIXED: usize = XML_DECLARATION.len()
            + "<Error><Code></Code><Message></Message><RequestId></RequestId></Error>".len();
        FIXED
            + xml::escaped_len(self.code.as_str())
            + xml::escaped_len(self.client_message())
            + self
                .resource
                .as_deref()
                .map_or(0, |r| "<Resource></Resource>".len() + xml::escaped_len(r))
            + xml::escaped_len(&self.request_id)
    }

    /// The response head for the document: status, `Content-Type: application/xml`,
    /// `Content-Length` and `x-amz-request-id` (when set). For a HEAD request send the head
    /// alone, as S3 does; the caller adds `Connection: close` where it will close.
    pub fn response_head(&self) -> ResponseHead {
        let mut head = ResponseHead::new(self.status)
            .with_header("content-type", "application/xml")
            .with_header("content-length", self.xml_len().to_string());
        if !self.request_id.is_empty() {
            head.push_header("x-amz-request-id", self.request_id.as_bytes());
        }
        head
    }
}

impl From<&HttpError> for S3Error {
    fn from(e: &HttpError) -> Self {
        Self::from_http(e)
    }
}

impl From<HttpError> for S3Error {
    fn from(e: HttpError) -> Self {
        Self::from_http(&e)
    }
}
