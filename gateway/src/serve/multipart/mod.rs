//! Multipart uploads. Stateless: the upload id the client gets carries the backend's upload
//! id and the envelope header of the upload (its wrapped keys, as stored in the metadata),
//! so any gateway can seal any part, and a gateway restart loses nothing.
//!
//! Each part is sealed with keys derived for its part number. Parts other than the last
//! must be whole numbers of segments (multiples of 64 KiB by default: the part sizes of aws
//! CLI, boto3, rclone and the SDKs), which CompleteMultipartUpload checks; see
//! `docs/gateway.md` for how and `docs/format.md` for why.
//!
//! One module per operation family, importing only downward: `token` (the upload ids) and
//! `exchange` (names, small bodies, replies); `part_keys` (the part number, upload id and
//! keys a part is sealed with, set up alike by UploadPart and UploadPartCopy); `complete`
//! (CompleteMultipartUpload, and the stored parts a part sent again is checked against);
//! `upload_part`; `upload_part_copy`; and here CreateMultipartUpload,
//! ListMultipartUploads, AbortMultipartUpload and ListParts.

use super::io::Conn;
use super::object::{check_upload_headers, sealed_entry};
use super::part_checksum::Declared;
use super::passthrough::rewrite_part_sizes;
use super::respond::{KMS_KEY_ID_HEADER, forward_error};
use super::{Failure, Outcome, Request, backend_path, encode};
use crate::envelope::objmeta;
use crate::s3::{S3Error, xml};

mod complete;
mod exchange;
mod keepalive;
mod part_keys;
mod token;
mod upload_part;
mod upload_part_copy;

use super::passthrough::read_body;
pub(crate) use complete::complete;
use exchange::{names, reply, reply_with};
use token::{Upload, listed_uploads, parse_token, replace_upload_id, token, verified_upload};
pub(crate) use upload_part::upload_part;
pub(crate) use upload_part_copy::upload_part_copy;

/// ListMultipartUploads: the backend's listing, with upload ids Twofold can take back
/// ([`listed_token`]); an `upload-id-marker` given in that form goes to the backend as
/// the backend's id.
pub(crate) async fn list_uploads(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let _ = read_body(ctx, conn).await?;
    let mut params: Vec<String> = super::backend_query(ctx.query, &["upload-id-marker"])
        .into_iter()
        .collect();
    if let Some(marker) = ctx.query.get("upload-id-marker") {
        let backend = parse_token(marker).map_or_else(|_| marker.to_owned(), |u| u.backend_id);
        params.push(format!("upload-id-marker={}", encode(&backend, false)));
    }
    let path = backend_path(ctx.address.bucket.as_deref(), None);
    let (resp, body) = ctx
        .core
        .backend
        .simple(
            "GET",
            &path,
            Some(&params.join("&")),
            Vec::new(),
            Vec::new(),
        )
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    reply(conn, &resp, &listed_uploads(&body), ctx.rid, false).await
}

/// CreateMultipartUpload: makes the upload's keys and header, stores the header as the
/// upload's metadata, and hands out an upload id carrying it.
pub(crate) async fn create(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let upload = check_upload_headers(ctx).map_err(Failure::close)?;
    let declared = Declared::from_request(
        ctx.head.header_str("x-amz-checksum-algorithm"),
        ctx.head.header_str("x-amz-checksum-type"),
    )
    .map_err(Failure::close)?;
    let _ = read_body(ctx, conn).await?;
    let upload_id: [u8; 16] = crate::envelope::random_bytes(crate::envelope::aead::Layer::Outer)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let customer = crate::serve::respond::request_sse_c(ctx, crate::s3::sse_c::Role::Object)?;
    let (header, keys) = ctx
        .core
        .keyring
        .seal_new_for(
            name,
            Some(upload_id),
            &upload.key_id,
            customer.as_ref().map(|c| &c.key),
        )
        .await?;
    let mut headers = upload.forwarded;
    headers.push((
        objmeta::HTTP_HEADER.into(),
        objmeta::encode(&header).into_bytes(),
    ));
    headers.push(sealed_entry(&header, &keys, &upload.described)?);
    drop(keys);
    let path = backend_path(Some(name.bucket), Some(name.key));
    let (resp, body) = ctx
        .core
        .backend
        .simple("POST", &path, Some("uploads="), headers, Vec::new())
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let text = String::from_utf8_lossy(&body);
    let backend_id = xml::value(&text, "UploadId")
        .map(xml::unescape)
        .ok_or_else(|| {
            Failure::from(super::backend::BackendError::Protocol("no UploadId".into()))
        })?;
    let key = ctx.core.keyring.upload_id_key().await?;
    let body = replace_upload_id(&body, &token(&key, &backend_id, &header, declared));
    let mut extra = declared.map_or_else(Vec::new, |d| {
        vec![
            (
                "x-amz-checksum-algorithm",
                d.algorithm.name().as_bytes().to_vec(),
            ),
            ("x-amz-checksum-type", d.type_name().as_bytes().to_vec()),
        ]
    });
    extra.push((KMS_KEY_ID_HEADER, upload.key_id.into_bytes()));
    extra.extend(crate::serve::respond::encryption_echo(ctx));
    reply_with(conn, &resp, &body, ctx.rid, true, extra).await
}

/// AbortMultipartUpload and ListParts: passed on with the backend's upload id; ListParts
/// sizes are plaintext sizes (of parts stored after their salts).
pub(crate) async fn abort_or_list(
    ctx: &Request<'_>,
    conn: &mut Conn,
    list: bool,
) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let id = ctx.query.get("uploadId").unwrap_or("");
    let Upload {
        backend_id, header, ..
    } = verified_upload(ctx, id).await?;
    let _ = read_body(ctx, conn).await?;
    let mut params = vec![format!("uploadId={}", encode(&backend_id, false))];
    params.extend(super::backend_query(ctx.query, &["uploadId"]));
    let path = backend_path(Some(name.bucket), Some(name.key));
    let method = if list { "GET" } else { "DELETE" };
    let (resp, body) = ctx
        .core
        .backend
        .simple(
            method,
            &path,
            Some(&params.join("&")),
            Vec::new(),
            Vec::new(),
        )
        .await?;
    if !(200..300).contains(&resp.status) {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let body = if list {
        let seg = header
            .as_ref()
            .map_or(ctx.core.keyring.settings().segment_size, |h| h.segment_size);
        replace_upload_id(&rewrite_part_sizes(&body, seg), id)
    } else {
        body
    };
    reply(conn, &resp, &body, ctx.rid, false).await
}
