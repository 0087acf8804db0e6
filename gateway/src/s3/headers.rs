//! The header names the gateway's operations pass on, keep or drop, in one place: which
//! request headers go to the backend, which of the backend's answer reach the client, and
//! which describe an object's content (and so travel with copies and rewrites).

/// Request headers passed on to the backend for a PUT (besides `x-amz-meta-*`).
pub const PUT_FORWARDED: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-language",
    "expires",
    "x-amz-storage-class",
    "x-amz-tagging",
    "x-amz-acl",
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-website-redirect-location",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "if-match",
    "if-none-match",
];

/// PUT request headers that are not carried into the copy that records a trailer
/// checksum: the copy leaves the tags as they are and has its own precondition.
pub const ATTACH_DROPPED: &[&str] = &["x-amz-tagging", "if-match", "if-none-match"];

/// Request headers passed on for GET and HEAD.
pub const CONDITIONS: &[&str] = &[
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Headers that describe an object's content: a COPY-directive copy carries them over
/// from the source's HEAD, a REPLACE-directive copy takes them from the request.
pub const DESCRIBING: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-encoding",
    "expires",
    "x-amz-website-redirect-location",
];

/// Copy-request headers passed on as they are.
pub const COPY_FORWARDED: &[&str] = &[
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-none-match",
    "x-amz-copy-source-if-modified-since",
    "x-amz-copy-source-if-unmodified-since",
    "x-amz-storage-class",
    "x-amz-tagging-directive",
    "x-amz-tagging",
    "x-amz-acl",
];

/// CopyObject request headers passed on to the backend PUT of a copy the gateway writes
/// itself (a format version 1 source sealed again as version 2): those of
/// [`COPY_FORWARDED`] a PUT takes. Its tags follow `x-amz-tagging-directive`.
pub const CONVERT_FORWARDED: &[&str] = &["x-amz-storage-class", "x-amz-acl"];

/// The copy-source conditions of UploadPartCopy and CopyObject, and the condition each is
/// on a request for the source itself.
pub const COPY_SOURCE_CONDITIONS: &[(&str, &str)] = &[
    ("x-amz-copy-source-if-match", "if-match"),
    ("x-amz-copy-source-if-none-match", "if-none-match"),
    ("x-amz-copy-source-if-modified-since", "if-modified-since"),
    (
        "x-amz-copy-source-if-unmodified-since",
        "if-unmodified-since",
    ),
];

/// Headers of the backend's copy answer passed on to the client.
pub const COPY_ANSWERED: &[&str] = &[
    "content-type",
    "x-amz-version-id",
    "x-amz-copy-source-version-id",
];

/// Backend response headers passed back to the client on GET and HEAD, besides the
/// [`DESCRIBING`] ones.
pub const GET_RETURNED: &[&str] = &[
    "etag",
    "last-modified",
    "x-amz-storage-class",
    "x-amz-version-id",
    "x-amz-tagging-count",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "x-amz-delete-marker",
    "x-amz-mp-parts-count",
    // From the object's metadata record (a version 2 object's answer has the backend's
    // own removed first).
    "x-amz-server-side-encryption-context",
];

/// Request headers never forwarded: hop-by-hop, the client's signature and payload
/// framing (the gateway re-signs and re-frames), the gateway's own metadata, and a
/// customer-provided key (SSE-C: it is the gateway's to use, never the backend's).
pub const FORWARD_DROPPED: &[&str] = &[
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-copy-source-server-side-encryption-customer-algorithm",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
    "host",
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-decoded-content-length",
    "x-amz-security-token",
    "x-amz-trailer",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "expect",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
];

/// Response headers never returned.
pub const RESPONSE_DROPPED: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "x-amz-request-id",
    "x-amz-id-2",
];

/// Headers of the backend's HEAD passed on with the attributes.
pub const ATTRIBUTES_ANSWERED: &[&str] =
    &["last-modified", "x-amz-version-id", "x-amz-delete-marker"];
