//! Answers shared by the object operations: the backend's own error relayed, the 416
//! answer, and the headers a client sees on an object.

use super::io::Conn;
use super::{Failure, Outcome, Request, write_response};
use crate::envelope::checksum_record::StoredChecksum;
use crate::envelope::header::Header;
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::s3::headers::{DESCRIBING, GET_RETURNED};

/// The value of `x-amz-server-side-encryption` on every encrypted object.
pub const SSE_DSSE: &str = "aws:kms:dsse";
/// The response header that names the key an object is sealed under.
pub const KMS_KEY_ID_HEADER: &str = "x-amz-server-side-encryption-aws-kms-key-id";

/// The encryption headers of a response about an object: DSSE, and the id of the key it is
/// sealed under where one is known.
pub(crate) fn push_sse(out: &mut ResponseHead, key_id: Option<&str>) {
    out.push_header("x-amz-server-side-encryption", SSE_DSSE.as_bytes().to_vec());
    if let Some(id) = key_id {
        out.push_header(KMS_KEY_ID_HEADER, id.as_bytes().to_vec());
    }
}

/// A request's customer-provided key (SSE-C), checked.
pub(crate) struct RequestKey {
    /// The key.
    pub(crate) key: crate::envelope::customer::CustomerKey,
}

/// The request's customer-provided key (SSE-C) of `role`, checked (400 when its headers
/// are incomplete or wrong).
pub(crate) fn request_sse_c(
    ctx: &Request<'_>,
    role: crate::s3::sse_c::Role,
) -> Result<Option<RequestKey>, Failure> {
    let parsed = crate::s3::sse_c::parse(&ctx.head.headers, role).map_err(Failure::keep)?;
    Ok(parsed.map(|s| RequestKey {
        key: crate::envelope::customer::CustomerKey::new(&s.key),
    }))
}

/// [`push_sse`], and the encryption headers the request sent that S3 answers back
/// ([`encryption_echo`]).
pub(crate) fn push_sse_for(ctx: &Request<'_>, out: &mut ResponseHead, key_id: Option<&str>) {
    push_sse(out, key_id);
    echo_encryption(ctx, out);
}

/// The answer headers of [`encryption_echo`].
pub(crate) fn echo_encryption(ctx: &Request<'_>, out: &mut ResponseHead) {
    for (name, value) in encryption_echo(ctx) {
        out.push_header(name, value);
    }
}

/// The encryption headers S3 answers back to a request that sent them: the SSE-C
/// algorithm and key MD5 of a customer-provided key for its object, and its encryption
/// context; none otherwise. Only answers to requests whose headers were checked
/// ([`request_sse_c`], `requested_key`) carry them, so they are echoed as sent.
pub(crate) fn encryption_echo(ctx: &Request<'_>) -> Vec<(&'static str, Vec<u8>)> {
    use crate::s3::{encryption_context, sse_c};
    [
        sse_c::ALGORITHM_HEADER,
        sse_c::KEY_MD5_HEADER,
        encryption_context::HEADER,
    ]
    .into_iter()
    .filter_map(|name| Some((name, ctx.head.header_str(name)?.trim().as_bytes().to_vec())))
    .collect()
}

/// The id of the key a header's KEKs belong to (see
/// [`crate::keys::named::NamedKeys::id_of`]).
pub(crate) fn key_id_of<'c>(ctx: &Request<'c>, header: &Header) -> Option<&'c str> {
    ctx.core
        .keyring
        .named_keys()
        .id_of(&header.inner.kek_id, &header.outer.kek_id)
}
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

/// The client-visible headers of an object's response, with the client's checksum where
/// it was opened for this response.
pub(crate) fn object_headers(
    ctx: &Request<'_>,
    resp: &ResponseHead,
    checksum: Option<&StoredChecksum>,
    out: &mut ResponseHead,
) {
    let header = resp
        .header_str(crate::envelope::objmeta::HTTP_HEADER)
        .and_then(|v| crate::envelope::objmeta::decode(v).ok());
    push_sse_for(ctx, out, header.as_ref().and_then(|h| key_id_of(ctx, h)));
    plain_object_headers(ctx, resp, out);
    if let Some(c) = checksum {
        out.push_header(c.algorithm.header_name(), c.value().into_bytes());
        out.push_header("x-amz-checksum-type", c.type_name().as_bytes().to_vec());
    }
}

/// The client-visible headers of a pass-through object's response: as for any object, but
/// never labelled as encrypted.
pub(crate) fn plain_object_headers(ctx: &Request<'_>, resp: &ResponseHead, out: &mut ResponseHead) {
    for name in DESCRIBING.iter().chain(GET_RETURNED) {
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
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
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
