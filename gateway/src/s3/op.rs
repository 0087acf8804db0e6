//! Which S3 API operation a request is, from its method, whether it names a bucket and a key,
//! its subresource query parameters and `x-amz-copy-source`.
//!
//! A *subresource* is a query parameter that selects an operation (`?acl`, `?uploads`,
//! `?uploadId`, ...; see [`SUBRESOURCES`]); every other parameter (`prefix`, `versionId`,
//! `partNumber` on GET, `x-id`, ...) is an argument and does not change the operation.
//!
//! [`S3Op::Unknown`] is for requests that are no S3 operation or are ambiguous: an unknown
//! method, a subresource the method does not take, two subresources at once, a PUT with
//! `partNumber` but no `uploadId` (or the reverse). Such a request
//! must not be passed to the backend as it is: a body the gateway did not recognise as an
//! object upload could be stored there unencrypted. [`S3Op::Other`] operations (ACLs, tagging,
//! bucket configuration, ...) carry no object data and can be passed through, except
//! `SelectObjectContent` and `GetObjectTorrent`, which read object data the backend only holds
//! encrypted, so cannot work through the gateway. [`S3Op::PostObject`] (a browser-form
//! upload) is sealed like a PutObject and never passed through as it is.

use super::{Address, Query};
use crate::http::RequestHead;

/// The query parameters that select an operation.
pub const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
];

/// Pass-through operations on a bucket: (method, subresource, operation).
const BUCKET_OTHER: &[(&str, &str, &str)] = &[
    ("GET", "accelerate", "GetBucketAccelerateConfiguration"),
    ("GET", "acl", "GetBucketAcl"),
    ("GET", "analytics", "GetBucketAnalyticsConfiguration"),
    ("GET", "cors", "GetBucketCors"),
    ("GET", "encryption", "GetBucketEncryption"),
    (
        "GET",
        "intelligent-tiering",
        "GetBucketIntelligentTieringConfiguration",
    ),
    ("GET", "inventory", "GetBucketInventoryConfiguration"),
    ("GET", "lifecycle", "GetBucketLifecycleConfiguration"),
    ("GET", "location", "GetBucketLocation"),
    ("GET", "logging", "GetBucketLogging"),
    (
        "GET",
        "metadataTable",
        "GetBucketMetadataTableConfiguration",
    ),
    ("GET", "metrics", "GetBucketMetricsConfiguration"),
    ("GET", "notification", "GetBucketNotificationConfiguration"),
    ("GET", "object-lock", "GetObjectLockConfiguration"),
    ("GET", "ownershipControls", "GetBucketOwnershipControls"),
    ("GET", "policy", "GetBucketPolicy"),
    ("GET", "policyStatus", "GetBucketPolicyStatus"),
    ("GET", "publicAccessBlock", "GetPublicAccessBlock"),
    ("GET", "replication", "GetBucketReplication"),
    ("GET", "requestPayment", "GetBucketRequestPayment"),
    ("GET", "session", "CreateSession"),
    ("GET", "tagging", "GetBucketTagging"),
    ("GET", "versioning", "GetBucketVersioning"),
    ("GET", "website", "GetBucketWebsite"),
    ("PUT", "accelerate", "PutBucketAccelerateConfiguration"),
    ("PUT", "acl", "PutBucketAcl"),
    ("PUT", "analytics", "PutBucketAnalyticsConfiguration"),
    ("PUT", "cors", "PutBucketCors"),
    ("PUT", "encryption", "PutBucketEncryption"),
    (
        "PUT",
        "intelligent-tiering",
        "PutBucketIntelligentTieringConfiguration",
    ),
    ("PUT", "inventory", "PutBucketInventoryConfiguration"),
    ("PUT", "lifecycle", "PutBucketLifecycleConfiguration"),
    ("PUT", "logging", "PutBucketLogging"),
    ("PUT", "metrics", "PutBucketMetricsConfiguration"),
    ("PUT", "notification", "PutBucketNotificationConfiguration"),
    ("PUT", "object-lock", "PutObjectLockConfiguration"),
    ("PUT", "ownershipControls", "PutBucketOwnershipControls"),
    ("PUT", "policy", "PutBucketPolicy"),
    ("PUT", "publicAccessBlock", "PutPublicAccessBlock"),
    ("PUT", "replication", "PutBucketReplication"),
    ("PUT", "requestPayment", "PutBucketRequestPayment"),
    ("PUT", "tagging", "PutBucketTagging"),
    ("PUT", "versioning", "PutBucketVersioning"),
    ("PUT", "website", "PutBucketWebsite"),
    ("DELETE", "analytics", "DeleteBucketAnalyticsConfiguration"),
    ("DELETE", "cors", "DeleteBucketCors"),
    ("DELETE", "encryption", "DeleteBucketEncryption"),
    (
        "DELETE",
        "intelligent-tiering",
        "DeleteBucketIntelligentTieringConfiguration",
    ),
    ("DELETE", "inventory", "DeleteBucketInventoryConfiguration"),
    ("DELETE", "lifecycle", "DeleteBucketLifecycle"),
    (
        "DELETE",
        "metadataTable",
        "DeleteBucketMetadataTableConfiguration",
    ),
    ("DELETE", "metrics", "DeleteBucketMetricsConfiguration"),
    (
        "DELETE",
        "ownershipControls",
        "DeleteBucketOwnershipControls",
    ),
    ("DELETE", "policy", "DeleteBucketPolicy"),
    ("DELETE", "publicAccessBlock", "DeletePublicAccessBlock"),
    ("DELETE", "replication", "DeleteBucketReplication"),
    ("DELETE", "tagging", "DeleteBucketTagging"),
    ("DELETE", "website", "DeleteBucketWebsite"),
    (
        "POST",
        "metadataTable",
        "CreateBucketMetadataTableConfiguration",
    ),
];

/// Bucket configurations listed by a GET without `id`: (subresource, operation).
const BUCKET_LISTS: &[(&str, &str)] = &[
    ("analytics", "ListBucketAnalyticsConfigurations"),
    (
        "intelligent-tiering",
        "ListBucketIntelligentTieringConfigurations",
    ),
    ("inventory", "ListBucketInventoryConfigurations"),
    ("metrics", "ListBucketMetricsConfigurations"),
];

/// Pass-through operations on an object: (method, subresource, operation).
const OBJECT_OTHER: &[(&str, &str, &str)] = &[
    ("GET", "acl", "GetObjectAcl"),
    ("GET", "legal-hold", "GetObjectLegalHold"),
    ("GET", "retention", "GetObjectRetention"),
    ("GET", "tagging", "GetObjectTagging"),
    ("GET", "torrent", "GetObjectTorrent"),
    ("PUT", "acl", "PutObjectAcl"),
    ("PUT", "legal-hold", "PutObjectLegalHold"),
    ("PUT", "retention", "PutObjectRetention"),
    ("PUT", "tagging", "PutObjectTagging"),
    ("DELETE", "tagging", "DeleteObjectTagging"),
    ("POST", "restore", "RestoreObject"),
    ("POST", "select", "SelectObjectContent"),
];

/// An S3 API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Op {
    /// `GET /`.
    ListBuckets,
    /// `PUT /bucket`.
    CreateBucket,
    /// `DELETE /bucket`.
    DeleteBucket,
    /// `HEAD /bucket`.
    HeadBucket,
    /// `GET /bucket`.
    ListObjects,
    /// `GET /bucket?list-type=2`.
    ListObjectsV2,
    /// `GET /bucket?versions`.
    ListObjectVersions,
    /// `PUT /bucket/key`.
    PutObject,
    /// `PUT /bucket/key` with `x-amz-copy-source`.
    CopyObject,
    /// `GET /bucket/key`.
    GetObject,
    /// `HEAD /bucket/key`.
    HeadObject,
    /// `DELETE /bucket/key`.
    DeleteObject,
    /// `POST /bucket?delete`.
    DeleteObjects,
    /// `POST /bucket/key?uploads`.
    CreateMultipartUpload,
    /// `PUT /bucket/key?partNumber=N&uploadId=U`.
    UploadPart,
    /// `PUT /bucket/key?partNumber=N&uploadId=U` with `x-amz-copy-source`.
    UploadPartCopy,
    /// `POST /bucket/key?uploadId=U`.
    CompleteMultipartUpload,
    /// `DELETE /bucket/key?uploadId=U`.
    AbortMultipartUpload,
    /// `GET /bucket/key?uploadId=U`.
    ListParts,
    /// `GET /bucket?uploads`.
    ListMultipartUploads,
    /// `GET /bucket/key?attributes`.
    GetObjectAttributes,
    /// `POST /bucket` with a `multipart/form-data` body: a browser-form upload,
    /// authenticated by its form's POST policy rather than its head.
    PostObject,
    /// Any other S3 operation on a bucket or object (configuration, ACLs, tagging, CORS
    /// preflight, ...), named as in the S3 API reference.
    Other {
        /// The operation's name, e.g. `PutBucketTagging`.
        name: &'static str,
    },
    /// Not an S3 operation, or ambiguous; see the module documentation.
    Unknown,
}

impl S3Op {
    /// Classifies a request. `has_copy_source`: whether `x-amz-copy-source` is present.
    pub fn classify(method: &str, address: &Address, query: &Query, has_copy_source: bool) -> S3Op {
        let mut subs = query
            .params()
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| SUBRESOURCES.contains(n));
        let sub = subs.next();
        if subs.any(|n| Some(n) != sub) {
            return S3Op::Unknown;
        }
        match (&address.bucket, &address.key) {
            (None, None) => match (method, sub) {
                ("GET", None) => S3Op::ListBuckets,
                _ => S3Op::Unknown,
            },
            (Some(_), None) => bucket_op(method, sub, query),
            (Some(_), Some(_)) => object_op(method, sub, query, has_copy_source),
            (None, Some(_)) => S3Op::Unknown,
        }
    }

    /// Classifies a parsed request whose address and query have been resolved.
    pub fn from_request(head: &RequestHead, address: &Address, query: &Query) -> S3Op {
        Self::classify(
            &head.method,
            address,
            query,
            head.header("x-amz-copy-source").is_some(),
        )
    }

    /// The S3 API operation name (`GetObject`, `PutBucketTagging`, ...), or `Unknown`; a
    /// bounded set, fit for a metrics label.
    pub fn name(&self) -> &'static str {
        match self {
            S3Op::ListBuckets => "ListBuckets",
            S3Op::CreateBucket => "CreateBucket",
            S3Op::DeleteBucket => "DeleteBucket",
            S3Op::HeadBucket => "HeadBucket",
            S3Op::ListObjects => "ListObjects",
            S3Op::ListObjectsV2 => "ListObjectsV2",
            S3Op::ListObjectVersions => "ListObjectVersions",
            S3Op::PutObject => "PutObject",
            S3Op::CopyObject => "CopyObject",
            S3Op::GetObject => "GetObject",
            S3Op::HeadObject => "HeadObject",
            S3Op::DeleteObject => "DeleteObject",
            S3Op::DeleteObjects => "DeleteObjects",
            S3Op::CreateMultipartUpload => "CreateMultipartUpload",
            S3Op::UploadPart => "UploadPart",
            S3Op::UploadPartCopy => "UploadPartCopy",
            S3Op::CompleteMultipartUpload => "CompleteMultipartUpload",
            S3Op::AbortMultipartUpload => "AbortMultipartUpload",
            S3Op::ListParts => "ListParts",
            S3Op::ListMultipartUploads => "ListMultipartUploads",
            S3Op::GetObjectAttributes => "GetObjectAttributes",
            S3Op::PostObject => "PostObject",
            S3Op::Other { name } => name,
            S3Op::Unknown => "Unknown",
        }
    }
}

/// CORS preflight, on a bucket or an object.
const PREFLIGHT: S3Op = S3Op::Other {
    name: "OptionsPreflight",
};

fn bucket_op(method: &str, sub: Option<&str>, query: &Query) -> S3Op {
    match (method, sub) {
        ("GET", None) => match query.get("list-type") {
            None => S3Op::ListObjects,
            Some("2") => S3Op::ListObjectsV2,
            Some(_) => S3Op::Unknown,
        },
        ("PUT", None) => S3Op::CreateBucket,
        ("DELETE", None) => S3Op::DeleteBucket,
        ("HEAD", None) => S3Op::HeadBucket,
        ("OPTIONS", None) => PREFLIGHT,
        // A browser-form upload: sealed as a PutObject (`serve::object::post`).
        ("POST", None) => S3Op::PostObject,
        ("GET", Some("versions")) => S3Op::ListObjectVersions,
        ("GET", Some("uploads")) => S3Op::ListMultipartUploads,
        ("POST", Some("delete")) => S3Op::DeleteObjects,
        ("GET", Some(sub)) if !query.contains("id") => {
            BUCKET_LISTS.iter().find(|(s, _)| *s == sub).map_or_else(
                || lookup(BUCKET_OTHER, method, sub),
                |&(_, name)| S3Op::Other { name },
            )
        }
        (_, Some(sub)) => lookup(BUCKET_OTHER, method, sub),
        _ => S3Op::Unknown,
    }
}

fn object_op(method: &str, sub: Option<&str>, query: &Query, has_copy_source: bool) -> S3Op {
    let part = query.contains("partNumber");
    match (method, sub) {
        ("GET", None) => S3Op::GetObject,
        ("HEAD", None) => S3Op::HeadObject,
        ("DELETE", None) => S3Op::DeleteObject,
        ("OPTIONS", None) => PREFLIGHT,
        ("PUT", None) if part => S3Op::Unknown,
        ("PUT", None) if has_copy_source => S3Op::CopyObject,
        ("PUT", None) => S3Op::PutObject,
        ("PUT", Some("uploadId")) if !part => S3Op::Unknown,
        ("PUT", Some("uploadId")) if has_copy_source => S3Op::UploadPartCopy,
        ("PUT", Some("uploadId")) => S3Op::UploadPart,
        ("POST", Some("uploadId")) => S3Op::CompleteMultipartUpload,
        ("DELETE", Some("uploadId")) => S3Op::AbortMultipartUpload,
        ("GET", Some("uploadId")) => S3Op::ListParts,
        ("POST", Some("uploads")) => S3Op::CreateMultipartUpload,
        ("GET", Some("attributes")) => S3Op::GetObjectAttributes,
        (_, Some(sub)) => lookup(OBJECT_OTHER, method, sub),
        _ => S3Op::Unknown,
    }
}

fn lookup(table: &[(&str, &str, &'static str)], method: &str, sub: &str) -> S3Op {
    table
        .iter()
        .find(|(m, s, _)| *m == method && *s == sub)
        .map_or(S3Op::Unknown, |&(_, _, name)| S3Op::Other { name })
}
