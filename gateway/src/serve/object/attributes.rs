//! GetObjectAttributes.

use super::get::{passthrough_read, unencrypted_check};
use super::read::reveal_checksum;
use crate::envelope::ObjectName;
use crate::envelope::layout::{Layout, plain_len};
use crate::envelope::record;
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::serve::io::Conn;
use crate::serve::respond::{forward_error, opened_checksum};
use crate::serve::{Failure, Outcome, Request, backend_path, backend_query, write_response};

/// GetObjectAttributes, answered from the backend's HEAD of the object (so it works on
/// backends without the operation): plaintext size, ETag, storage class, the client's
/// checksum, and the part count of multipart objects.
pub(crate) async fn attributes(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Err(Failure::keep(S3Error::invalid_request(
            "a bucket and a key are needed",
        )));
    };
    let wanted: Vec<String> = ctx
        .head
        .headers_all("x-amz-object-attributes")
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() {
        return Err(Failure::keep(S3Error::invalid_argument(
            "x-amz-object-attributes must name at least one attribute",
        )));
    }
    let path = backend_path(Some(bucket), Some(key));
    let query = backend_query(
        ctx.query,
        &["attributes", "max-parts", "part-number-marker"],
    );
    let (resp, body) = ctx
        .core
        .backend
        .simple("HEAD", &path, query.as_deref(), Vec::new(), Vec::new())
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let stored = resp.content_length().ok().flatten().unwrap_or(0);
    let header = unencrypted_check(ctx, &resp)?;
    if header.is_none() {
        passthrough_read(ctx, "GetObjectAttributes");
    }
    let mut resp = resp;
    if wanted.iter().any(|w| w.eq_ignore_ascii_case("Checksum"))
        && let Some(h) = &header
    {
        reveal_checksum(ctx, h, &mut resp).await?;
    }
    let layout = match &header {
        Some(h) if h.multipart && record::is_marked(stored, h.segment_size) => Some(
            crate::serve::unaligned::layout_of(ctx, ObjectName { bucket, key }, h, &resp, stored)
                .await?,
        ),
        _ => None,
    };
    let size = match header {
        Some(_) if layout.is_some() => layout.as_ref().map_or(0, Layout::plain_len),
        Some(h) => plain_len(stored, h.segment_size).map_err(|_| {
            Failure::keep(
                S3Error::internal_error()
                    .with_detail("The stored object's length is not valid Twofold ciphertext"),
            )
        })?,
        None => stored,
    };
    let etag = resp
        .header_str("etag")
        .unwrap_or("")
        .trim_matches('"')
        .to_owned();
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetObjectAttributesResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    let has = |name: &str| wanted.iter().any(|w| w.eq_ignore_ascii_case(name));
    if has("ETag") {
        let client = crate::s3::etag::to_client(&etag);
        xml.push_str(&format!("<ETag>{}</ETag>", crate::s3::xml::escape(&client)));
    }
    if has("Checksum")
        && let Some((alg, kind, value)) = opened_checksum(&resp)
    {
        let tag = alg.xml_name();
        xml.push_str(&format!(
            "<Checksum><{tag}>{}</{tag}><ChecksumType>{kind}</ChecksumType></Checksum>",
            crate::s3::xml::escape(value)
        ));
    }
    if has("ObjectParts")
        && let Some(layout) = &layout
    {
        xml.push_str(&format!(
            "<ObjectParts><PartsCount>{}</PartsCount></ObjectParts>",
            layout.parts().len()
        ));
    } else if has("ObjectParts")
        && let Some((_, parts)) = etag.rsplit_once('-')
        && let Ok(n) = parts.parse::<u32>()
    {
        xml.push_str(&format!(
            "<ObjectParts><PartsCount>{n}</PartsCount></ObjectParts>"
        ));
    }
    if has("StorageClass") {
        let class = resp.header_str("x-amz-storage-class").unwrap_or("STANDARD");
        xml.push_str(&format!(
            "<StorageClass>{}</StorageClass>",
            crate::s3::xml::escape(class)
        ));
    }
    if has("ObjectSize") {
        xml.push_str(&format!("<ObjectSize>{size}</ObjectSize>"));
    }
    xml.push_str("</GetObjectAttributesResponse>");
    let mut out = ResponseHead::new(200);
    for name in ["last-modified", "x-amz-version-id", "x-amz-delete-marker"] {
        if let Some(v) = resp.header(name) {
            out.push_header(name, v.to_vec());
        }
    }
    out.push_header("content-type", b"application/xml".to_vec());
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    out.push_header("content-length", xml.len().to_string().into_bytes());
    write_response(conn, &out, xml.as_bytes())
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}
