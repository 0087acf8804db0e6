//! Answers shared by the object operations: the backend's own error relayed, the 416
//! answer, and the headers a client sees on an object.

use super::io::Conn;
use super::{Failure, Outcome, Request, write_response};
use crate::http::ResponseHead;
use crate::s3::S3Error;

/// The value of `x-amz-server-side-encryption` on every encrypted object.
pub const SSE_DSSE: &str = "aws:kms:dsse";
/// Backend response headers passed back to the client on GET and HEAD.
const GET_RETURNED: &[&str] = &[
    "etag",
    "last-modified",
    "content-type",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-encoding",
    "expires",
    "x-amz-storage-class",
    "x-amz-version-id",
    "x-amz-tagging-count",
    "x-amz-website-redirect-location",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "x-amz-delete-marker",
    "x-amz-mp-parts-count",
];

/// Whether `name` is metadata the gateway keeps for itself (`x-amz-meta-twofold*`).
pub(crate) fn is_twofold_metadata(name: &str) -> bool {
    name.starts_with("x-amz-meta-twofold")
}

/// Sends the backend's own error response (an S3 error document) on to the client.
pub(crate) async fn forward_error(
    conn: &mut Conn,
    resp: &ResponseHead,
    body: &[u8],
    rid: &str,
) -> Result<Outcome, Failure> {
    if resp.status >= 500 {
        metrics::counter!(crate::telemetry::BACKEND_ERRORS_TOTAL, "kind" => "status_5xx")
            .increment(1);
    }
    let mut out = ResponseHead::new(resp.status);
    for name in [
        "content-type",
        "last-modified",
        "x-amz-delete-marker",
        "x-amz-version-id",
    ] {
        if let Some(v) = resp.header(name) {
            out.push_header(name, v.to_vec());
        }
    }
    if let Some(v) = resp.header("etag") {
        out.push_header("etag", crate::s3::etag::header_to_client(v));
    }
    // An error document is the backend's code and message under the gateway's request id;
    // nothing else of the backend's (its ids, host and zone names) reaches the client.
    let relayed;
    let body = if body.is_empty() {
        body
    } else {
        relayed = S3Error::relayed(resp.status, body, rid);
        if out.header("content-type").is_none() {
            out.push_header("content-type", b"application/xml".to_vec());
        }
        relayed.as_slice()
    };
    out.push_header("x-amz-request-id", rid.as_bytes().to_vec());
    out.push_header("content-length", body.len().to_string().into_bytes());
    write_response(conn, &out, body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// The client-visible headers of an object's response.
pub(crate) fn object_headers(ctx: &Request<'_>, resp: &ResponseHead, out: &mut ResponseHead) {
    out.push_header("x-amz-server-side-encryption", SSE_DSSE.as_bytes().to_vec());
    plain_object_headers(ctx, resp, out);
}

/// The client-visible headers of a pass-through object's response: as for any object, but
/// never labelled as encrypted.
pub(crate) fn plain_object_headers(ctx: &Request<'_>, resp: &ResponseHead, out: &mut ResponseHead) {
    for name in GET_RETURNED {
        if let Some(v) = resp.header(name) {
            let v = match *name {
                "etag" => crate::s3::etag::header_to_client(v),
                _ => v.to_vec(),
            };
            out.push_header(name, v);
        }
    }
    for (n, v) in &resp.headers {
        if n.starts_with("x-amz-meta-") && !is_twofold_metadata(n) {
            out.push_header(n, v.clone());
        }
    }
    out.push_header("accept-ranges", b"bytes".to_vec());
    if wants_checksum(ctx)
        && let Some((alg, kind, value)) = opened_checksum(resp)
    {
        out.push_header(alg.header_name(), value.as_bytes().to_vec());
        out.push_header("x-amz-checksum-type", kind.as_bytes().to_vec());
    }
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
}

/// Where `object::reveal_checksum` leaves an object's opened checksum in the backend's response
/// head, as `ALGORITHM:BASE64`. A name with a space, which no HTTP header can have, so the
/// backend cannot set it: the sealed value it stores is never printed as it is.
pub(crate) const OPENED_CHECKSUM: &str = "twofold opened-checksum";

/// The checksum `object::reveal_checksum` opened, if it did: algorithm, type (`FULL_OBJECT`,
/// `COMPOSITE`) and value as S3 prints them.
pub(crate) fn opened_checksum(
    resp: &ResponseHead,
) -> Option<(crate::s3::checksum::ChecksumAlgorithm, &str, &str)> {
    let mut it = resp.header_str(OPENED_CHECKSUM)?.splitn(3, ':');
    let alg = crate::s3::checksum::ChecksumAlgorithm::from_name(it.next()?.as_bytes())?;
    Some((alg, it.next()?, it.next()?))
}

/// Whether the client asked for the object's checksum (`x-amz-checksum-mode: ENABLED`) on
/// a request for the whole object, the only one it is returned with (a part's own
/// checksum is not kept).
pub(crate) fn wants_checksum(ctx: &Request<'_>) -> bool {
    ctx.head
        .header_str("x-amz-checksum-mode")
        .is_some_and(|v| v.eq_ignore_ascii_case("enabled"))
        && ctx.head.header("range").is_none()
        && ctx.query.get("partNumber").is_none()
}

/// The 416 answer to a range outside an object of `size` plaintext bytes, with
/// `Content-Range: bytes */SIZE` as S3 gives it.
pub(crate) async fn write_unsatisfiable(
    ctx: &Request<'_>,
    conn: &mut Conn,
    size: u64,
) -> Result<Outcome, Failure> {
    // The request id goes in before the head is made: the head's Content-Length counts it.
    let e = S3Error::invalid_range()
        .with_resource(ctx.address.resource())
        .with_request_id(ctx.rid);
    let mut out = e.response_head();
    out.push_header("content-range", format!("bytes */{size}").into_bytes());
    let mut bytes = Vec::new();
    let _ = out.write(&mut bytes);
    e.write_xml(&mut bytes);
    let _ = conn.write_all(bytes).await;
    Ok(Outcome::KeepAlive)
}
