//! CopyObject. The backend copies the stored bytes and the gateway writes the copy's
//! metadata (its header re-wrapped for the new name); a format version 1 source copied with
//! REPLACE is sealed again as version 2 instead ([`super::convert`]).

use super::copy_request::{CopyRequest, copy_answer, described_headers};
use super::described::{opened_entries, request_entries, sealed_entry};
use super::get::passthrough_read;
use super::put::{CHECKSUM_METADATA, object_address};
use super::read::object_header;
use crate::config::UnencryptedObjects;
use crate::envelope::ObjectName;
use crate::envelope::header::{FORMAT_VERSION, Header};
use crate::envelope::objmeta;
use crate::http::{RequestHead, ResponseHead};
use crate::s3::headers::COPY_FORWARDED;
use crate::s3::sse_c::Role;
use crate::s3::{S3Code, S3Error};
use crate::serve::io::Conn;
use crate::serve::respond::{echo_encryption, forward_error, request_sse_c};
use crate::serve::unaligned::{LAYOUT_HTTP_HEADER, SIZE_HINT_HTTP_HEADER};
use crate::serve::{Failure, Outcome, Request, backend_path, write_response};

/// CopyObject: the backend copies the stored bytes; the gateway re-wraps the two data keys
/// for the new name and writes them, with the metadata, as the copy's metadata. A format
/// version 1 source with REPLACE is converted ([`converts`]).
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
    let to = ObjectName { bucket, key };
    let header = object_header(&src)?;
    if let Some(h) = header.as_ref().filter(|h| converts(h, req.replace)) {
        return super::convert::convert(ctx, conn, &req, to, &src, h.clone()).await;
    }
    let rewrapped = rewrapped(ctx, &req, to, &src, header).await?;
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
    let (mut out, body) = copy_answer(&resp, &body, key_id, ctx.rid);
    if sealed_copy {
        echo_encryption(ctx, &mut out);
    }
    write_response(conn, &out, &body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// Whether a copy of the object whose header is `header` is sealed again as format
/// version 2 rather than copied by the backend: a version 1 source whose copy takes the
/// request's metadata (REPLACE). Its segments bind the version byte, so only new segments
/// make it version 2; under COPY it stays version 1, as its metadata does.
fn converts(header: &Header, replace: bool) -> bool {
    replace && header.version() < FORMAT_VERSION
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
    header: Option<Header>,
) -> Result<Option<Rewrapped>, Failure> {
    let Some(header) = header else {
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
    // A version 1 copy under COPY keeps its segments, which bind the default key's
    // version 1 bucket keys: it cannot move to a named key without being sealed again.
    let default = &ctx.core.keyring.named_keys().default.id;
    if header.version() < FORMAT_VERSION && req.key_id != *default {
        return Err(Failure::keep(S3Error::invalid_request(
            "A format version 1 object copied with COPY keeps the default key; copy it with \
             REPLACE to seal it again under another key",
        )));
    }
    let from = request_sse_c(ctx, Role::CopySource)?;
    let dest = request_sse_c(ctx, Role::Object)?;
    let (copy, keys) = ctx
        .core
        .keyring
        .rewrap_for(
            &header,
            (req.source(), from.as_ref().map(|c| &c.key)),
            (to, dest.as_ref().map(|c| &c.key)),
            &req.key_id,
        )
        .await?;
    let described = match copy.version() < FORMAT_VERSION {
        true => None,
        false => {
            let entries = match req.replace {
                true => request_entries(&ctx.head.headers).map_err(Failure::keep)?,
                false => with_requested_context(
                    opened_entries(ctx, &header, &keys, src)?,
                    ctx.head.header(crate::s3::encryption_context::HEADER),
                ),
            };
            Some(sealed_entry(&copy, &keys, &entries)?)
        }
    };
    Ok(Some(Rewrapped {
        header: objmeta::encode(&copy),
        described,
    }))
}

/// The source's metadata entries for a copy under COPY, with the encryption context the
/// copy request gives in place of the source's, as S3 takes the copy's context from its
/// request.
fn with_requested_context(
    mut entries: crate::envelope::meta_record::Entries,
    requested: Option<&[u8]>,
) -> crate::envelope::meta_record::Entries {
    if let Some(v) = requested {
        let name = crate::s3::encryption_context::HEADER;
        entries.retain(|(n, _)| n != name);
        entries.push((name.to_owned(), v.to_vec()));
    }
    entries
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
    if let Some(v) = src.header(SIZE_HINT_HTTP_HEADER) {
        headers.push((SIZE_HINT_HTTP_HEADER.into(), v.to_vec()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn only_a_version_1_source_copied_with_replace_is_converted() {
        use crate::envelope::header::{test_header, test_header_v1};
        for upload in [0, 9] {
            assert!(converts(&test_header_v1(upload), true));
            assert!(!converts(&test_header_v1(upload), false));
            assert!(!converts(&test_header(upload), true));
            assert!(!converts(&test_header(upload), false));
        }
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
}
