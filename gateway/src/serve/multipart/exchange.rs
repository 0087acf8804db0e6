//! What every multipart operation uses: the object's names and the reply relayed from the
//! backend.

use crate::envelope::ObjectName;
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::serve::io::Conn;
use crate::serve::respond::SSE_DSSE;
use crate::serve::{Failure, Outcome, Request, write_response};

/// The bucket and key the request names; a request without both is `InvalidRequest`.
pub(super) fn names<'a>(ctx: &'a Request<'_>) -> Result<ObjectName<'a>, Failure> {
    match (&ctx.address.bucket, &ctx.address.key) {
        (Some(bucket), Some(key)) => Ok(ObjectName { bucket, key }),
        _ => Err(Failure::keep(S3Error::invalid_request(
            "a bucket and a key are needed",
        ))),
    }
}

/// Sends a response with a small XML body.
pub(super) async fn reply(
    conn: &mut Conn,
    resp: &ResponseHead,
    body: &[u8],
    rid: &str,
    sse: bool,
) -> Result<Outcome, Failure> {
    reply_with(conn, resp, body, rid, sse, Vec::new()).await
}

/// [`reply`] with `extra` headers. Every `<ETag>` of the body is shown in the client's form.
pub(super) async fn reply_with(
    conn: &mut Conn,
    resp: &ResponseHead,
    body: &[u8],
    rid: &str,
    sse: bool,
    extra: Vec<(&str, Vec<u8>)>,
) -> Result<Outcome, Failure> {
    let mut out = ResponseHead::new(resp.status);
    for name in ["content-type", "x-amz-version-id"] {
        if let Some(v) = resp.header(name) {
            out.push_header(name, v.to_vec());
        }
    }
    for (name, v) in extra {
        out.push_header(name, v);
    }
    if sse {
        out.push_header("x-amz-server-side-encryption", SSE_DSSE.as_bytes().to_vec());
    }
    // Every ETag in a result (Complete, ListParts, UploadPartCopy) in the client's form.
    let body = crate::s3::etag::rewrite_xml(body);
    out.push_header("x-amz-request-id", rid.as_bytes().to_vec());
    out.push_header("content-length", body.len().to_string().into_bytes());
    write_response(conn, &out, &body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}
