//! What a CopyObject asks for, checked, and the answer it gets: shared by the copy the
//! backend makes ([`super::copy`]) and the one the gateway makes of a format version 1
//! source ([`super::convert`]).

use super::put::requested_key;
use crate::envelope::ObjectName;
use crate::envelope::meta_record;
use crate::http::{RequestHead, ResponseHead};
use crate::s3::S3Error;
use crate::s3::headers::{COPY_ANSWERED, DESCRIBING};
use crate::serve::respond::{is_twofold_metadata, push_sse};
use crate::serve::{Failure, Request, backend_path};

/// What a CopyObject request asks for, checked.
pub(super) struct CopyRequest {
    /// The source object's bucket.
    pub(super) src_bucket: String,
    /// The source object's key.
    pub(super) src_key: String,
    /// The source's backend path.
    pub(super) src_path: String,
    /// The source version's backend query, when a version was named.
    pub(super) src_query: Option<String>,
    /// Whether the copy's metadata comes from the request (REPLACE) or the source (COPY).
    pub(super) replace: bool,
    /// The key the copy is sealed under, by its own id: the one the request names, else
    /// the destination bucket's default, as in S3, whatever the source's key.
    pub(super) key_id: String,
}

impl CopyRequest {
    /// Reads and checks the copy's source, its metadata directive and its headers; refuses
    /// a source the credentials may not read.
    pub(super) fn parse(ctx: &Request<'_>) -> Result<CopyRequest, Failure> {
        let key_id = requested_key(ctx)?;
        let crate::s3::CopySource {
            bucket: src_bucket,
            key: src_key,
            version_id: version,
        } = crate::serve::copy_source(ctx)?;
        if !crate::serve::may_read(ctx, &src_bucket) {
            return Err(Failure::keep(
                S3Error::access_denied().with_resource(format!("/{src_bucket}/{src_key}")),
            ));
        }
        let replace = metadata_directive(ctx.head.header_str("x-amz-metadata-directive"))
            .map_err(Failure::keep)?;
        if replace && ctx.head.headers.iter().any(|(n, _)| is_twofold_metadata(n)) {
            return Err(Failure::keep(S3Error::invalid_argument(
                "x-amz-meta-twofold* metadata is reserved for the gateway",
            )));
        }
        Ok(CopyRequest {
            src_path: backend_path(Some(&src_bucket), Some(&src_key)),
            src_query: version.map(|v| format!("versionId={}", crate::serve::encode(&v, false))),
            src_bucket,
            src_key,
            replace,
            key_id,
        })
    }

    /// The source object's name.
    pub(super) fn source(&self) -> ObjectName<'_> {
        ObjectName {
            bucket: &self.src_bucket,
            key: &self.src_key,
        }
    }

    /// The `x-amz-copy-source` value sent to the backend: the source's path, and its
    /// version's query when one was named.
    pub(super) fn copy_source(&self) -> String {
        match &self.src_query {
            Some(q) => format!("{}?{q}", self.src_path),
            None => self.src_path.clone(),
        }
    }
}

/// Whether an `x-amz-metadata-directive` value asks for REPLACE (rather than COPY, the
/// default).
fn metadata_directive(value: Option<&str>) -> Result<bool, S3Error> {
    match value {
        None | Some("COPY") => Ok(false),
        Some("REPLACE") => Ok(true),
        Some(other) => Err(S3Error::invalid_argument(format!(
            "Unknown metadata directive {other:?}"
        ))),
    }
}

/// The headers that describe the new object in the clear: under REPLACE the request's,
/// under COPY the source's (without the gateway's own metadata, which the copy writes
/// anew); with `sealed`, none of those its metadata record holds instead.
pub(super) fn described_headers(
    head: &RequestHead,
    src: &ResponseHead,
    replace: bool,
    sealed: bool,
) -> Vec<(String, Vec<u8>)> {
    let clear = |n: &str| !(sealed && meta_record::is_sealed(n));
    if replace {
        return head
            .headers
            .iter()
            .filter(|(n, _)| DESCRIBING.contains(&n.as_str()) || n.starts_with("x-amz-meta-"))
            .filter(|(n, _)| clear(n))
            .cloned()
            .collect();
    }
    let kept = DESCRIBING
        .iter()
        .filter(|name| clear(name))
        .filter_map(|name| Some(((*name).to_owned(), src.header(name)?.to_vec())));
    let meta = src
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-amz-meta-") && !is_twofold_metadata(n) && clear(n))
        .cloned();
    kept.chain(meta).collect()
}

/// CopyObject's answer from the backend's: its version headers, the encryption of a sealed
/// copy (a pass-through source is copied as it is, so its copy is not encrypted either),
/// and its result document with the ETag the client knows.
pub(super) fn copy_answer(
    resp: &ResponseHead,
    body: &[u8],
    sealed_under: Option<&str>,
    rid: &str,
) -> (ResponseHead, Vec<u8>) {
    let mut out = ResponseHead::new(200);
    for name in COPY_ANSWERED {
        if let Some(v) = resp.header(name) {
            out.push_header(name, v.to_vec());
        }
    }
    if let Some(key_id) = sealed_under {
        push_sse(&mut out, Some(key_id));
    }
    let body = crate::s3::etag::rewrite_xml(body).into_owned();
    out.push_header("x-amz-request-id", rid.as_bytes().to_vec());
    out.push_header("content-length", body.len().to_string().into_bytes());
    (out, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::respond::SSE_DSSE;

    fn value<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn the_directive_is_copy_by_default_and_nothing_else_is_accepted() {
        assert!(!metadata_directive(None).unwrap());
        assert!(!metadata_directive(Some("COPY")).unwrap());
        assert!(metadata_directive(Some("REPLACE")).unwrap());
        assert!(metadata_directive(Some("replace")).is_err());
    }

    #[test]
    fn copy_keeps_the_sources_description_and_replace_takes_the_requests() {
        let head = RequestHead::new("PUT", "/b/k")
            .with_header("content-type", "text/new")
            .with_header("x-amz-meta-a", "new");
        let src = ResponseHead::new(200)
            .with_header("content-type", "text/old")
            .with_header("x-amz-meta-a", "old")
            .with_header("x-amz-meta-twofold-header", "sealed");
        let copied = described_headers(&head, &src, false, false);
        assert_eq!(value(&copied, "content-type"), Some(&b"text/old"[..]));
        assert_eq!(value(&copied, "x-amz-meta-a"), Some(&b"old"[..]));
        assert!(value(&copied, "x-amz-meta-twofold-header").is_none());
        let replaced = described_headers(&head, &src, true, false);
        assert_eq!(value(&replaced, "content-type"), Some(&b"text/new"[..]));
        assert_eq!(value(&replaced, "x-amz-meta-a"), Some(&b"new"[..]));
    }

    #[test]
    fn only_a_sealed_copy_is_answered_as_encrypted() {
        let resp = ResponseHead::new(200).with_header("x-amz-version-id", "v2");
        let (out, body) = copy_answer(&resp, b"<CopyObjectResult/>", Some("k"), "rid");
        assert_eq!(out.header("x-amz-version-id"), Some(&b"v2"[..]));
        assert_eq!(
            out.header("x-amz-server-side-encryption"),
            Some(SSE_DSSE.as_bytes())
        );
        assert_eq!(
            out.header("content-length"),
            Some(body.len().to_string().as_bytes())
        );
        let (out, _) = copy_answer(&resp, b"", None, "rid");
        assert!(out.header("x-amz-server-side-encryption").is_none());
    }
}
