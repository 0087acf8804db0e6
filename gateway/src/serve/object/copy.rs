//! CopyObject.

use super::described::{opened_entries, request_entries, sealed_entry};
use super::get::passthrough_read;
use super::put::{CHECKSUM_METADATA, object_address, requested_key};
use super::read::object_header;
use crate::config::UnencryptedObjects;
use crate::envelope::ObjectName;
use crate::envelope::header::FORMAT_VERSION;
use crate::envelope::meta_record;
use crate::envelope::objmeta;
use crate::http::{RequestHead, ResponseHead};
use crate::s3::headers::{COPY_ANSWERED, COPY_FORWARDED, DESCRIBING};
use crate::s3::{S3Code, S3Error};
use crate::serve::io::Conn;
use crate::serve::respond::{forward_error, is_twofold_metadata, push_sse};
use crate::serve::unaligned::LAYOUT_HTTP_HEADER;
use crate::serve::{Failure, Outcome, Request, backend_path, write_response};

/// CopyObject: the backend copies the stored bytes; the gateway re-wraps the two data keys
/// for the new name and writes them, with the metadata, as the copy's metadata.
pub(crate) async fn copy(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let (bucket, key) = object_address(ctx, "CopyObject needs a bucket and a key")?;
    let req = CopyRequest::parse(ctx)?;
    let (src, src_body) = ctx
        .core
        .backend
        .simple(
            "HEAD",
            &req.src_path,
            req.src_query.as_deref(),
            Vec::new(),
            Vec::new(),
        )
        .await?;
    if src.status != 200 {
        return forward_error(conn, &src, &src_body, ctx.rid).await;
    }
    if !crate::s3::etag::copy_source_conditions_hold(
        ctx.head.header_str("x-amz-copy-source-if-match"),
        ctx.head.header_str("x-amz-copy-source-if-none-match"),
        src.header_str("etag").unwrap_or(""),
    ) {
        return Err(Failure::keep(S3Error::precondition_failed()));
    }
    let rewrapped = rewrapped(ctx, &req, ObjectName { bucket, key }, &src).await?;
    let sealed_copy = rewrapped.is_some();
    let headers = copy_request_headers(ctx.head, &src, &req, rewrapped);
    let path = backend_path(Some(bucket), Some(key));
    let (resp, body) = ctx
        .core
        .backend
        .simple("PUT", &path, None, headers, Vec::new())
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let key_id = sealed_copy.then_some(req.key_id.as_str());
    let (out, body) = copy_answer(&resp, &body, key_id, ctx.rid);
    write_response(conn, &out, &body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// What a CopyObject request asks for, checked.
struct CopyRequest {
    /// The source object's bucket.
    src_bucket: String,
    /// The source object's key.
    src_key: String,
    /// The source's backend path.
    src_path: String,
    /// The source version's backend query, when a version was named.
    src_query: Option<String>,
    /// Whether the copy's metadata comes from the request (REPLACE) or the source (COPY).
    replace: bool,
    /// The key the copy is sealed under, by its own id (the default unless the request
    /// names one, as in S3, whatever the source's key).
    key_id: String,
}

impl CopyRequest {
    /// Reads and checks the copy's source, its metadata directive and its headers; refuses
    /// a source the credentials may not read.
    fn parse(ctx: &Request<'_>) -> Result<CopyRequest, Failure> {
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

    /// The `x-amz-copy-source` value sent to the backend: the source's path, and its
    /// version's query when one was named.
    fn copy_source(&self) -> String {
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

/// The copy's Twofold metadata: its envelope header (the source's, with its data keys
/// re-wrapped for the new name) and, for format version 2, its sealed metadata record
/// (the source's entries under COPY, the request's under REPLACE, sealed anew for the
/// copy's header). `None` for a source not written through Twofold, copied as it is when
/// the gateway passes such objects through and refused otherwise.
async fn rewrapped(
    ctx: &Request<'_>,
    req: &CopyRequest,
    to: ObjectName<'_>,
    src: &ResponseHead,
) -> Result<Option<Rewrapped>, Failure> {
    let Some(header) = object_header(src)? else {
        return match ctx.core.settings.unencrypted_objects {
            UnencryptedObjects::PassThrough => {
                passthrough_read(ctx, "CopyObject");
                Ok(None)
            }
            UnencryptedObjects::Reject => Err(Failure::keep(S3Error::new(
                403,
                S3Code::InvalidObjectState,
                "The copy source was not written through Twofold and this gateway is configured to reject such objects",
            ))),
        };
    };
    let from = ObjectName {
        bucket: &req.src_bucket,
        key: &req.src_key,
    };
    let default = &ctx.core.keyring.named_keys().default.id;
    if header.version() < FORMAT_VERSION && req.key_id != *default {
        return Err(Failure::keep(S3Error::invalid_request(
            "A format version 1 object keeps the default key when copied; copy it without a key id",
        )));
    }
    let (copy, keys) = ctx
        .core
        .keyring
        .rewrap_for(&header, from, to, &req.key_id)
        .await?;
    let described = match copy.version() < FORMAT_VERSION {
        true => None,
        false => {
            let entries = match req.replace {
                true => request_entries(&ctx.head.headers).map_err(Failure::keep)?,
                false => opened_entries(ctx, &header, &keys, src)?,
            };
            Some(sealed_entry(&copy, &keys, &entries)?)
        }
    };
    Ok(Some(Rewrapped {
        header: objmeta::encode(&copy),
        described,
    }))
}

/// The Twofold metadata of a copy (see [`rewrapped`]).
struct Rewrapped {
    /// The envelope header, encoded.
    header: String,
    /// The sealed metadata record (format version 2).
    described: Option<(String, Vec<u8>)>,
}

/// The headers of the backend's copy request: the metadata that describes the new object
/// (see [`described_headers`]), the source's checksum and layout records, the re-wrapped
/// envelope header, the forwarded copy headers, and the copy's source, pinned to the
/// version whose keys were re-wrapped.
fn copy_request_headers(
    head: &RequestHead,
    src: &ResponseHead,
    req: &CopyRequest,
    rewrapped: Option<Rewrapped>,
) -> Vec<(String, Vec<u8>)> {
    let (header, record) = match rewrapped {
        Some(r) => (Some(r.header), r.described),
        None => (None, None),
    };
    // Version 2: what describes the object travels sealed, never in the clear.
    let mut headers = described_headers(head, src, req.replace, record.is_some());
    headers.extend(record);
    if let Some(v) = src.header(CHECKSUM_METADATA) {
        headers.push((CHECKSUM_METADATA.into(), v.to_vec()));
    }
    // The layout record is sealed under the data keys, which the re-wrap keeps.
    if let Some(v) = src.header(LAYOUT_HTTP_HEADER) {
        headers.push((LAYOUT_HTTP_HEADER.into(), v.to_vec()));
    }
    if let Some(h) = header {
        headers.push((objmeta::HTTP_HEADER.into(), h.into_bytes()));
    }
    headers.extend(
        head.headers
            .iter()
            .filter(|(n, _)| COPY_FORWARDED.contains(&n.as_str()))
            .cloned(),
    );
    // The keys were re-wrapped for exactly this version of the source.
    if head.header("x-amz-copy-source-if-match").is_none()
        && let Some(etag) = src.header("etag")
    {
        headers.push(("x-amz-copy-source-if-match".into(), etag.to_vec()));
    }
    headers.push(("x-amz-copy-source".into(), req.copy_source().into_bytes()));
    headers.push(("x-amz-metadata-directive".into(), b"REPLACE".to_vec()));
    headers
}

/// The headers that describe the new object in the clear: under REPLACE the request's,
/// under COPY the source's (without the gateway's own metadata, which the copy writes
/// anew); with `sealed`, none of those its metadata record holds instead.
fn described_headers(
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
fn copy_answer(
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

    fn request(replace: bool, version: Option<&str>) -> CopyRequest {
        CopyRequest {
            src_bucket: "src".to_owned(),
            src_key: "k".to_owned(),
            src_path: "/src/k".to_owned(),
            src_query: version.map(|v| format!("versionId={v}")),
            replace,
            key_id: "alias/twofold-default".to_owned(),
        }
    }

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
    fn the_copy_is_pinned_to_the_source_version_whose_keys_were_rewrapped() {
        let head = RequestHead::new("PUT", "/b/k").with_header("x-amz-acl", "private");
        let src = ResponseHead::new(200)
            .with_header("etag", "\"e\"")
            .with_header("content-type", "text/clear")
            .with_header("expires", "Thu, 01 Dec 2094 16:00:00 GMT")
            .with_header("x-amz-meta-a", "clear");
        let rewrapped = Rewrapped {
            header: "m".into(),
            described: Some(("x-amz-meta-twofold-meta".into(), b"r".to_vec())),
        };
        let req = request(false, Some("v1"));
        let headers = copy_request_headers(&head, &src, &req, Some(rewrapped));
        // Version 2: what describes the copy is in its sealed record only.
        assert_eq!(value(&headers, "x-amz-meta-twofold-meta"), Some(&b"r"[..]));
        assert!(value(&headers, "content-type").is_none());
        assert!(value(&headers, "x-amz-meta-a").is_none());
        assert!(value(&headers, "expires").is_some());
        assert_eq!(
            value(&headers, "x-amz-copy-source-if-match"),
            Some(&b"\"e\""[..])
        );
        assert_eq!(
            value(&headers, "x-amz-copy-source"),
            Some(&b"/src/k?versionId=v1"[..])
        );
        assert_eq!(value(&headers, objmeta::HTTP_HEADER), Some(&b"m"[..]));
        assert_eq!(value(&headers, "x-amz-acl"), Some(&b"private"[..]));
        assert_eq!(
            value(&headers, "x-amz-metadata-directive"),
            Some(&b"REPLACE"[..])
        );

        let conditional = head.with_header("x-amz-copy-source-if-match", "\"x\"");
        let headers = copy_request_headers(&conditional, &src, &request(false, None), None);
        let pins: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n == "x-amz-copy-source-if-match")
            .collect();
        assert_eq!(pins.len(), 1);
        assert_eq!(pins[0].1, b"\"x\"");
        assert_eq!(value(&headers, "x-amz-copy-source"), Some(&b"/src/k"[..]));
        assert!(value(&headers, objmeta::HTTP_HEADER).is_none());
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
