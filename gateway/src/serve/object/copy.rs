//! CopyObject.

use super::get::passthrough_read;
use super::put::{CHECKSUM_METADATA, check_sse_request};
use super::read::object_header;
use crate::config::UnencryptedObjects;
use crate::envelope::ObjectName;
use crate::http::ResponseHead;
use crate::objmeta;
use crate::s3::{S3Code, S3Error};
use crate::serve::io::Conn;
use crate::serve::respond::{SSE_DSSE, forward_error, is_twofold_metadata};
use crate::serve::{Failure, Outcome, Request, backend_path, write_response};

/// Response headers of the source that a COPY-directive copy carries over.
pub(super) const COPY_KEPT: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-encoding",
    "expires",
    "x-amz-website-redirect-location",
];

/// Headers of a copy request that describe the new object under REPLACE.
pub(super) const COPY_REPLACED: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-encoding",
    "expires",
    "x-amz-website-redirect-location",
];

/// Copy-request headers passed on as they are.
pub(super) const COPY_FORWARDED: &[&str] = &[
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-none-match",
    "x-amz-copy-source-if-modified-since",
    "x-amz-copy-source-if-unmodified-since",
    "x-amz-storage-class",
    "x-amz-tagging-directive",
    "x-amz-tagging",
    "x-amz-acl",
];

/// CopyObject: the backend copies the stored bytes; the gateway re-wraps the two data keys
/// for the new name and writes them, with the metadata, as the copy's metadata.
pub(crate) async fn copy(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Err(Failure::keep(S3Error::invalid_request(
            "CopyObject needs a bucket and a key",
        )));
    };
    check_sse_request(ctx)?;
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
    let replace = match ctx.head.header_str("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(Failure::keep(S3Error::invalid_argument(format!(
                "Unknown metadata directive {other:?}"
            ))));
        }
    };
    if replace && ctx.head.headers.iter().any(|(n, _)| is_twofold_metadata(n)) {
        return Err(Failure::keep(S3Error::invalid_argument(
            "x-amz-meta-twofold* metadata is reserved for the gateway",
        )));
    }
    let src_path = backend_path(Some(&src_bucket), Some(&src_key));
    let src_query = version
        .as_ref()
        .map(|v| format!("versionId={}", crate::serve::encode(v, false)));
    let (src, src_body) = ctx
        .core
        .backend
        .simple(
            "HEAD",
            &src_path,
            src_query.as_deref(),
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
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let new_meta = match object_header(&src)? {
        Some(header) => {
            let from = ObjectName {
                bucket: &src_bucket,
                key: &src_key,
            };
            let to = ObjectName { bucket, key };
            let rewrapped = ctx.core.keyring.rewrap(&header, from, to).await?;
            Some(objmeta::encode(&rewrapped))
        }
        None => match ctx.core.settings.unencrypted_objects {
            UnencryptedObjects::PassThrough => {
                passthrough_read(ctx, "CopyObject");
                None
            }
            UnencryptedObjects::Reject => {
                return Err(Failure::keep(S3Error::new(
                    403,
                    S3Code::InvalidObjectState,
                    "The copy source was not written through Twofold and this gateway is configured to reject such objects",
                )));
            }
        },
    };
    if replace {
        for (n, v) in &ctx.head.headers {
            if COPY_REPLACED.contains(&n.as_str()) || n.starts_with("x-amz-meta-") {
                headers.push((n.clone(), v.clone()));
            }
        }
    } else {
        for name in COPY_KEPT {
            if let Some(v) = src.header(name) {
                headers.push(((*name).to_owned(), v.to_vec()));
            }
        }
        for (n, v) in &src.headers {
            if n.starts_with("x-amz-meta-") && !is_twofold_metadata(n) {
                headers.push((n.clone(), v.clone()));
            }
        }
    }
    if let Some(v) = src.header(CHECKSUM_METADATA) {
        headers.push((CHECKSUM_METADATA.into(), v.to_vec()));
    }
    // The layout record is sealed under the data keys, which the re-wrap keeps.
    if let Some(v) = src.header(crate::serve::unaligned::LAYOUT_HTTP_HEADER) {
        headers.push((
            crate::serve::unaligned::LAYOUT_HTTP_HEADER.into(),
            v.to_vec(),
        ));
    }
    let sealed_copy = new_meta.is_some();
    if let Some(meta) = new_meta {
        headers.push((objmeta::HTTP_HEADER.into(), meta.into_bytes()));
    }
    for (n, v) in &ctx.head.headers {
        if COPY_FORWARDED.contains(&n.as_str()) {
            headers.push((n.clone(), v.clone()));
        }
    }
    // The keys were re-wrapped for exactly this version of the source.
    if ctx.head.header("x-amz-copy-source-if-match").is_none()
        && let Some(etag) = src.header("etag")
    {
        headers.push(("x-amz-copy-source-if-match".into(), etag.to_vec()));
    }
    let mut copy_source = src_path.clone();
    if let Some(q) = &src_query {
        copy_source.push('?');
        copy_source.push_str(q);
    }
    headers.push(("x-amz-copy-source".into(), copy_source.into_bytes()));
    headers.push(("x-amz-metadata-directive".into(), b"REPLACE".to_vec()));
    let path = backend_path(Some(bucket), Some(key));
    let (resp, body) = ctx
        .core
        .backend
        .simple("PUT", &path, None, headers, Vec::new())
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let mut out = ResponseHead::new(200);
    for name in [
        "content-type",
        "x-amz-version-id",
        "x-amz-copy-source-version-id",
    ] {
        if let Some(v) = resp.header(name) {
            out.push_header(name, v.to_vec());
        }
    }
    // A pass-through source is copied as it is: the copy is not encrypted either.
    if sealed_copy {
        out.push_header("x-amz-server-side-encryption", SSE_DSSE.as_bytes().to_vec());
    }
    let body = crate::s3::etag::rewrite_xml(&body);
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    out.push_header("content-length", body.len().to_string().into_bytes());
    write_response(conn, &out, &body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}
