//! UploadPart.

use super::complete::stored_part;
use super::exchange::names;
use super::token::{Upload, parse_token};
use crate::envelope::SegmentCipher;
use crate::envelope::layout::stored_len;
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::serve::body::ClientBody;
use crate::serve::io::Conn;
use crate::serve::object::{seal_to_md5, seal_upload};
use crate::serve::part_checksum::PartTagger;
use crate::serve::respond::{SSE_DSSE, forward_error};
use crate::serve::{Failure, Outcome, Request, backend_path, encode, write_response};

/// Largest part number, as in S3.
pub const PART_NUMBER_MAX: u32 = 10_000;

pub(super) fn part_number(ctx: &Request<'_>) -> Result<u32, S3Error> {
    ctx.query
        .get("partNumber")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

/// UploadPart: seals the part with the keys the upload id carries.
pub(crate) async fn upload_part(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    // Until the body is read, a failure needs no explicit close: the connection's state
    // (a body not read to its end) closes it.
    let number = part_number(ctx)?;
    let id = ctx.query.get("uploadId").unwrap_or("");
    let Upload {
        backend_id,
        header,
        declared,
    } = parse_token(id)?;
    let header = header.ok_or_else(|| {
        Failure::keep(S3Error::no_such_upload().with_message(
            "This upload id has no Twofold keys: use the upload id CreateMultipartUpload returned",
        ))
    })?;
    let keys = ctx
        .core
        .keyring
        .open(&header, name)
        .await
        .map_err(Failure::upload_keys)?;
    let cipher = SegmentCipher::new(&header, &keys, number)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let tagger = declared
        .map(|_| PartTagger::new(&header, &keys))
        .transpose()
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    drop(keys);
    let mut body = ClientBody::new(ctx.head, ctx.verified)?;
    if body.len() > crate::serve::object::PUT_OBJECT_BYTES_MAX {
        return Err(Failure::keep(S3Error::entity_too_large()));
    }
    // As in S3, an upload that declared a checksum takes only parts that carry one of its
    // algorithm (as a header or a trailer): it is checked, and vouched for in the ETag.
    if let Some(d) = declared
        && ctx.head.header(d.algorithm.header_name()).is_none()
        && body.trailer_checksum_algorithm() != Some(d.algorithm)
    {
        return Err(Failure::keep(S3Error::invalid_request(format!(
            "This upload was created with the {0} checksum: each part needs its {0} \
             checksum ({1})",
            d.algorithm,
            d.algorithm.header_name()
        ))));
    }
    if ctx.head.expects_continue() {
        let (res, _) = conn
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        res.map_err(|_| Failure::close(S3Error::incomplete_body()))?;
    }
    let path = backend_path(Some(name.bucket), Some(name.key));
    let stored = stored_len(body.len(), header.segment_size);
    let (etag, checksum) = match stored_part(ctx, &path, &backend_id, number).await? {
        // Sent again: sealed under the same keys and nonces, so it may only be the same.
        Some(existing) => {
            let (md5, checksum) = seal_to_md5(ctx, conn, &mut body, &cipher).await?;
            existing.check_same(number, stored, &md5)?;
            (Some(existing.etag.into_bytes()), checksum)
        }
        None => {
            let query = format!(
                "partNumber={number}&uploadId={}",
                encode(&backend_id, false)
            );
            let ex = ctx
                .core
                .backend
                .send_head("PUT", &path, Some(&query), Vec::new(), Some(stored))
                .await?;
            let (resp, resp_body, checksum) =
                seal_upload(ctx, conn, &mut body, &cipher, ex).await?;
            if resp.status != 200 {
                return forward_error(conn, &resp, &resp_body, ctx.rid).await;
            }
            (resp.header("etag").map(<[u8]>::to_vec), checksum)
        }
    };
    let etag = match (etag, &tagger, &checksum) {
        (Some(e), Some(t), Some(c)) => {
            let digest = crate::checksum::Checksum::from_base64(c.algorithm, &c.value)
                .ok_or_else(|| Failure::keep(S3Error::internal_error()))?;
            Some(
                t.client_etag(number, c.algorithm, &digest, &String::from_utf8_lossy(&e))
                    .into_bytes(),
            )
        }
        (e, ..) => e,
    };
    let mut out = ResponseHead::new(200);
    if let Some(v) = etag {
        out.push_header("etag", crate::s3::etag::header_to_client(&v));
    }
    out.push_header("x-amz-server-side-encryption", SSE_DSSE.as_bytes().to_vec());
    if let Some(c) = checksum {
        out.push_header(c.algorithm.header_name(), c.value.into_bytes());
    }
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    out.push_header("content-length", b"0".to_vec());
    write_response(conn, &out, &[])
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}
