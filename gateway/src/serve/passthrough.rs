//! Everything that is not an object body: bucket operations, deletes, listings and the
//! other subresources are sent on to the backend, re-signed, with their small bodies
//! verified and buffered. Listings are rewritten so every size in them is a plaintext size.

use super::backend::BackendError;
use super::body::{ClientBody, send_continue};
use super::io::Conn;
use super::{Failure, Outcome, Request, backend_path, backend_query, write_response};
use crate::envelope::layout::{SegmentSize, plain_len, salted_plain_len};
use crate::http::ResponseHead;
use crate::http::find;
use crate::s3::S3Error;
use crate::s3::headers::{FORWARD_DROPPED, RESPONSE_DROPPED};

/// Largest request body forwarded (bucket configurations, DeleteObjects lists).
pub const FORWARDED_BODY_BYTES_MAX: u64 = 16 * 1024 * 1024;

pub(crate) async fn forward(
    ctx: &Request<'_>,
    conn: &mut Conn,
    rewrite_listing: bool,
) -> Result<Outcome, Failure> {
    let payload = read_body(ctx, conn).await?;
    forward_payload(ctx, conn, payload, rewrite_listing).await
}

/// DeleteObjects: forwarded once no key of its body could name an object outside the bucket.
pub(crate) async fn delete_objects(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let payload = read_body(ctx, conn).await?;
    crate::s3::check_delete_objects(&payload)
        .map_err(|e| Failure::keep(S3Error::from(e).with_resource(ctx.address.resource())))?;
    forward_payload(ctx, conn, payload, false).await
}

/// Reads the request's small body (at most [`FORWARDED_BODY_BYTES_MAX`]), verified, to its
/// end.
pub(crate) async fn read_body(ctx: &Request<'_>, conn: &mut Conn) -> Result<Vec<u8>, Failure> {
    // Until the body is read, the connection's state closes it after a failure; a body
    // that failed mid-way or to decode leaves the stream out of step, and closes it.
    let mut body = ClientBody::new(ctx.head, ctx.verified)?;
    if body.len() > FORWARDED_BODY_BYTES_MAX {
        return Err(S3Error::entity_too_large().into());
    }
    send_continue(ctx.head, conn)
        .await
        .map_err(Failure::close)?;
    let len = body.len() as usize;
    let (res, payload) = body.read_exact(conn, vec![0u8; len], 0..len).await;
    res.map_err(|e| Failure::close(e.to_s3()))?;
    body.finish(conn)
        .await
        .map_err(|e| Failure::close(e.to_s3()))?;
    Ok(payload)
}

/// Sends the request, with `payload` as its body, on to the backend and relays the answer:
/// a listing's sizes made plaintext sizes, ListBuckets limited to the credential's buckets,
/// GetBucketLocation answered with the gateway's region and errors with the backend's
/// code under the gateway's request id.
async fn forward_payload(
    ctx: &Request<'_>,
    conn: &mut Conn,
    payload: Vec<u8>,
    rewrite_listing: bool,
) -> Result<Outcome, Failure> {
    let headers = forwarded_headers(&ctx.head.headers);
    let path = backend_path(ctx.address.bucket.as_deref(), ctx.address.key.as_deref());
    let query = backend_query(ctx.query, &[]);
    let (resp, resp_body) = ctx
        .core
        .backend
        .simple(&ctx.head.method, &path, query.as_deref(), headers, payload)
        .await
        .map_err(|e: BackendError| Failure::from(e))?;
    let resp_body = if rewrite_listing && resp.status == 200 {
        plaintext_listing(ctx, &resp_body).await?
    } else {
        resp_body
    };
    let resp_body = visible_buckets(ctx, resp.status, resp_body);
    let relayed_error = resp.status >= 300 && !resp_body.is_empty();
    let resp_body = answer_body(ctx, resp.status, resp_body, relayed_error);
    let answer = Answer {
        relayed_error,
        head_request: ctx.head.method == "HEAD",
        rid: ctx.rid,
    };
    let out = answer_head(&resp, resp_body.len(), &answer);
    write_response(conn, &out, &resp_body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// The request headers sent on to the backend: all but [`FORWARD_DROPPED`], the SDK's own and the
/// gateway's metadata, with `aws-chunked` taken out of `content-encoding`.
fn forwarded_headers(headers: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .filter(|(n, _)| {
            !(FORWARD_DROPPED.contains(&n.as_str())
                || n.starts_with("amz-sdk-")
                || n.starts_with("x-amz-meta-twofold"))
        })
        .filter_map(|(n, v)| match n.as_str() {
            "content-encoding" => content_encoding_without_aws_chunked(v).map(|v| (n.clone(), v)),
            _ => Some((n.clone(), v.clone())),
        })
        .collect()
}

/// A `content-encoding` value without `aws-chunked`, which was the client's framing, not a
/// property of the content; `None` when nothing else is left.
fn content_encoding_without_aws_chunked(value: &[u8]) -> Option<Vec<u8>> {
    let rest: Vec<&str> = std::str::from_utf8(value)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.eq_ignore_ascii_case("aws-chunked") && !c.is_empty())
        .collect();
    (!rest.is_empty()).then(|| rest.join(",").into_bytes())
}

/// A listing with every size a plaintext size (see [`rewrite_sizes_with`]) and every ETag
/// the one the client knows.
async fn plaintext_listing(ctx: &Request<'_>, listing: &[u8]) -> Result<Vec<u8>, Failure> {
    let marked = super::unaligned::listed_sizes(ctx, listing).await?;
    let sized = rewrite_sizes_with(listing, ctx.core.keyring.settings().segment_size, &marked);
    Ok(crate::s3::etag::rewrite_xml(&sized).into_owned())
}

/// ListBuckets: a credential limited to some buckets sees only those. Any other answer is
/// returned as it is.
fn visible_buckets(ctx: &Request<'_>, status: u16, body: Vec<u8>) -> Vec<u8> {
    if ctx.address.bucket.is_some() || status != 200 || ctx.head.method != "GET" {
        return body;
    }
    let allowed = ctx
        .core
        .settings
        .credentials
        .iter()
        .find(|c| c.access_key_id == ctx.verified.access_key_id)
        .and_then(|c| c.buckets.clone());
    match allowed {
        Some(list) => filter_buckets(&body, &list),
        None => body,
    }
}

/// The body the client gets: for GetBucketLocation, the region clients sign for, which is
/// the gateway's whatever the backend calls its own (Ceph answers `default`; s3cmd then
/// signs for it); for a relayed error, the backend's code and message under the gateway's
/// request id, and no more; otherwise the backend's.
fn answer_body(ctx: &Request<'_>, status: u16, body: Vec<u8>, relayed_error: bool) -> Vec<u8> {
    if is_bucket_location(ctx) && status == 200 {
        location_constraint(&ctx.core.settings.region)
    } else if relayed_error {
        S3Error::relayed(status, &body, ctx.rid)
    } else {
        body
    }
}

/// How the backend's answer is relayed.
struct Answer<'a> {
    /// Whether the answer is an error document rewritten by the gateway.
    relayed_error: bool,
    /// Whether the request was a HEAD, whose answer has no body.
    head_request: bool,
    /// The gateway's request id.
    rid: &'a str,
}

/// The head of the relayed answer: the backend's headers but [`RESPONSE_DROPPED`] and the
/// gateway's metadata, the gateway's request id, and the length of a body of `body_len`
/// bytes (a HEAD keeps the backend's length, which describes the object).
fn answer_head(resp: &ResponseHead, body_len: usize, answer: &Answer<'_>) -> ResponseHead {
    let mut out = ResponseHead::new(resp.status);
    for (n, v) in &resp.headers {
        let dropped = RESPONSE_DROPPED.contains(&n.as_str())
            || n.starts_with("x-amz-meta-twofold")
            || (answer.relayed_error && n == "content-type");
        if !dropped {
            out.push_header(n, v.clone());
        }
    }
    if answer.relayed_error {
        out.push_header("content-type", b"application/xml".to_vec());
    }
    out.push_header("x-amz-request-id", answer.rid.as_bytes().to_vec());
    match resp.header("content-length") {
        Some(v) if answer.head_request => out.push_header("content-length", v.to_vec()),
        _ => out.push_header("content-length", body_len.to_string().into_bytes()),
    }
    out
}

/// Whether the request is GetBucketLocation.
fn is_bucket_location(ctx: &Request<'_>) -> bool {
    ctx.head.method == "GET"
        && ctx.address.key.is_none()
        && ctx.address.bucket.is_some()
        && ctx.query.contains("location")
}

/// A GetBucketLocation answer for `region`: S3 answers an empty constraint for us-east-1.
pub fn location_constraint(region: &str) -> Vec<u8> {
    let region = if region == "us-east-1" { "" } else { region };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{}</LocationConstraint>",
        crate::s3::xml::escape(region)
    )
    .into_bytes()
}

/// [`rewrite_sizes_with`] for the parts of a ListParts result: every part of an upload
/// begins with its salt.
pub fn rewrite_part_sizes(xml: &[u8], seg: SegmentSize) -> Vec<u8> {
    rewrite(xml, &std::collections::HashMap::new(), |s| {
        salted_plain_len(s, seg)
    })
}

/// Replaces every `<Size>N</Size>` of a listing with the plaintext size of a stored size
/// `N`, but for the objects that have a layout record, whose sizes `marked` gives by the
/// byte offset of their `<Size>` digits in `xml`. A size that is not a valid Twofold length
/// (an object that was not written through Twofold) is left as it is.
pub fn rewrite_sizes_with(
    xml: &[u8],
    seg: SegmentSize,
    marked: &std::collections::HashMap<usize, u64>,
) -> Vec<u8> {
    rewrite(xml, marked, |s| plain_len(s, seg))
}

/// Every `<Size>` of `xml` through `to_plain` (left as it is where that fails), but those
/// given in `marked`.
fn rewrite(
    xml: &[u8],
    marked: &std::collections::HashMap<usize, u64>,
    to_plain: impl Fn(u64) -> Result<u64, crate::envelope::layout::LayoutError>,
) -> Vec<u8> {
    const OPEN: &[u8] = b"<Size>";
    const CLOSE: &[u8] = b"</Size>";
    let mut out = Vec::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(i) = find(rest, OPEN) {
        let (before, after) = rest.split_at(i + OPEN.len());
        out.extend_from_slice(before);
        match find(after, CLOSE) {
            Some(j) => {
                let digits = &after[..j];
                if let Some(size) = marked.get(&(xml.len() - after.len())) {
                    out.extend_from_slice(size.to_string().as_bytes());
                    rest = &after[j..];
                    continue;
                }
                let stored = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
                match stored.map(&to_plain) {
                    Some(Ok(p)) => out.extend_from_slice(p.to_string().as_bytes()),
                    _ => out.extend_from_slice(digits),
                }
                rest = &after[j..];
            }
            None => {
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest);
    out
}

/// Drops every `<Bucket>...</Bucket>` of a ListBuckets result whose `<Name>` is not in
/// `allowed`.
pub fn filter_buckets(xml: &[u8], allowed: &[String]) -> Vec<u8> {
    const OPEN: &[u8] = b"<Bucket>";
    const CLOSE: &[u8] = b"</Bucket>";
    let mut out = Vec::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(i) = find(rest, OPEN) {
        out.extend_from_slice(&rest[..i]);
        let Some(j) = find(&rest[i..], CLOSE) else {
            rest = &rest[i..];
            break;
        };
        let entry = &rest[i..i + j + CLOSE.len()];
        let name = String::from_utf8_lossy(entry);
        let keep = name
            .split_once("<Name>")
            .and_then(|(_, r)| r.split_once("</Name>"))
            .is_some_and(|(n, _)| allowed.iter().any(|a| crate::s3::xml::escape(a) == n));
        if keep {
            out.extend_from_slice(entry);
        }
        rest = &rest[i + j + CLOSE.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_is_the_gateways_region_and_empty_for_us_east_1() {
        let east = String::from_utf8(location_constraint("us-east-1")).unwrap();
        assert!(east.ends_with("\"></LocationConstraint>"), "{east}");
        let eu = String::from_utf8(location_constraint("eu-central-1")).unwrap();
        assert!(eu.ends_with(">eu-central-1</LocationConstraint>"), "{eu}");
    }

    #[test]
    fn listing_sizes_become_plaintext_sizes() {
        let seg = SegmentSize::DEFAULT;
        let xml = b"<Contents><Key>a</Key><Size>47</Size></Contents><Contents><Size>65568</Size></Contents><Size>7</Size>";
        let out = rewrite_sizes_with(xml, seg, &std::collections::HashMap::new());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<Contents><Key>a</Key><Size>15</Size></Contents><Contents><Size>65536</Size></Contents><Size>7</Size>"
        );
        // Parts: each after its 16-byte salt.
        let parts = b"<Part><Size>63</Size></Part><Part><Size>47</Size></Part>";
        assert_eq!(
            String::from_utf8(rewrite_part_sizes(parts, seg)).unwrap(),
            "<Part><Size>15</Size></Part><Part><Size>47</Size></Part>"
        );
    }

    #[test]
    fn the_clients_framing_and_signature_are_not_forwarded() {
        let headers: Vec<(String, Vec<u8>)> = [
            ("authorization", "AWS4-HMAC-SHA256 ..."),
            ("amz-sdk-invocation-id", "1"),
            ("x-amz-meta-twofold", "forged"),
            ("content-encoding", "aws-chunked"),
            ("content-type", "text/plain"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
        .collect();
        let forwarded = forwarded_headers(&headers);
        assert_eq!(
            forwarded,
            vec![("content-type".to_owned(), b"text/plain".to_vec())]
        );
    }

    #[test]
    fn aws_chunked_is_taken_out_of_content_encoding() {
        assert_eq!(content_encoding_without_aws_chunked(b"aws-chunked"), None);
        assert_eq!(content_encoding_without_aws_chunked(b" , "), None);
        assert_eq!(
            content_encoding_without_aws_chunked(b"AWS-CHUNKED, gzip"),
            Some(b"gzip".to_vec())
        );
        assert_eq!(
            content_encoding_without_aws_chunked(b"gzip, br"),
            Some(b"gzip,br".to_vec())
        );
    }

    #[test]
    fn the_relayed_head_drops_the_backends_framing_and_metadata() {
        let resp = ResponseHead::new(404)
            .with_header("content-type", "text/html")
            .with_header("content-length", "99")
            .with_header("x-amz-request-id", "backend")
            .with_header("x-amz-meta-twofold", "sealed")
            .with_header("etag", "\"e\"");
        let answer = Answer {
            relayed_error: true,
            head_request: false,
            rid: "rid",
        };
        let out = answer_head(&resp, 7, &answer);
        assert_eq!(out.status, 404);
        assert_eq!(out.header("content-type"), Some(&b"application/xml"[..]));
        assert_eq!(out.header("content-length"), Some(&b"7"[..]));
        assert_eq!(out.header("x-amz-request-id"), Some(&b"rid"[..]));
        assert!(out.header("x-amz-meta-twofold").is_none());
        assert_eq!(out.header("etag"), Some(&b"\"e\""[..]));
        assert_eq!(out.headers_all("content-length").count(), 1);

        let head = Answer {
            relayed_error: false,
            head_request: true,
            rid: "rid",
        };
        let out = answer_head(&resp, 0, &head);
        assert_eq!(out.header("content-type"), Some(&b"text/html"[..]));
        assert_eq!(out.header("content-length"), Some(&b"99"[..]));
        let bodiless = answer_head(&ResponseHead::new(200), 0, &head);
        assert_eq!(bodiless.header("content-length"), Some(&b"0"[..]));
    }
}
