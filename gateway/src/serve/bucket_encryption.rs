//! GetBucketEncryption, PutBucketEncryption and DeleteBucketEncryption, answered by the
//! gateway from its configuration ([`crate::keys::bucket_encryption`]), never passed on: the
//! backend's own encryption settings would describe nothing Twofold does.

use super::io::Conn;
use super::passthrough::read_body;
use super::respond::forward_error;
use super::{Failure, Outcome, Request, backend_path, write_response};
use crate::http::ResponseHead;
use crate::keys::bucket_encryption::{check_put, configuration_xml, parse};
use crate::s3::S3Error;

/// Answers the bucket-encryption operation `name` for the request's bucket, once the
/// backend has said that the bucket exists.
pub(crate) async fn bucket_encryption(
    ctx: &Request<'_>,
    conn: &mut Conn,
    name: &str,
) -> Result<Outcome, Failure> {
    let bucket = ctx
        .address
        .bucket
        .as_deref()
        .ok_or_else(|| Failure::keep(S3Error::invalid_request("a bucket is needed")))?;
    let body = read_body(ctx, conn).await?;
    let path = backend_path(Some(bucket), None);
    let (resp, text) = ctx
        .core
        .backend
        .simple("HEAD", &path, None, Vec::new(), Vec::new())
        .await?;
    match resp.status {
        200 => {}
        404 => {
            return Err(Failure::keep(
                S3Error::no_such_bucket().with_resource(bucket),
            ));
        }
        _ => return forward_error(conn, &resp, &text, ctx.rid).await,
    }
    let keys = ctx.core.keyring.named_keys();
    let (status, answer) = match name {
        "GetBucketEncryption" => (200, configuration_xml(keys.default_for(bucket).id)),
        "PutBucketEncryption" => {
            let requested = parse(&String::from_utf8_lossy(&body)).map_err(Failure::keep)?;
            check_put(keys, bucket, &requested).map_err(Failure::keep)?;
            (200, String::new())
        }
        // The configured default stays: what a bucket without a setting of its own has.
        _ => (204, String::new()),
    };
    let mut out = ResponseHead::new(status);
    if !answer.is_empty() {
        out.push_header("content-type", b"application/xml".to_vec());
    }
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    out.push_header("content-length", answer.len().to_string().into_bytes());
    write_response(conn, &out, answer.as_bytes())
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}
