//! Multipart uploads. Stateless: the upload id the client gets carries the backend's upload
//! id and the envelope header of the upload (its wrapped keys, as stored in the metadata),
//! so any gateway can seal any part, and a gateway restart loses nothing.
//!
//! Each part is sealed with keys derived for its part number. Parts other than the last
//! must be whole numbers of segments (multiples of 64 KiB by default: the part sizes of aws
//! CLI, boto3, rclone and the SDKs), which CompleteMultipartUpload checks; see
//! `docs/format.md` for why and for what remains open.

use super::body::ClientBody;
use super::io::Conn;
use super::object::{SSE_DSSE, backend_failure, check_upload_headers, forward_error, seal_upload};
use super::passthrough::rewrite_sizes;
use super::{Failure, Outcome, Request, backend_path, encode, write_response};
use crate::envelope::header::Header;
use crate::envelope::layout::{plain_len, stored_len};
use crate::envelope::record;
use crate::envelope::{ObjectName, SegmentCipher};
use crate::http::ResponseHead;
use crate::objmeta;
use crate::s3::S3Error;
use base64::Engine;

/// Prefix of the upload ids Twofold hands out.
const TOKEN_PREFIX: &str = "tf1.";
/// Largest part number, as in S3.
pub const PART_NUMBER_MAX: u32 = 10_000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn token(backend_id: &str, header: &Header) -> String {
    format!(
        "{TOKEN_PREFIX}{}.{}",
        B64.encode(backend_id.as_bytes()),
        objmeta::encode(header)
    )
}

/// The backend upload id and (for Twofold ids) the header an upload id carries.
fn parse_token(id: &str) -> Result<(String, Option<Header>), S3Error> {
    let Some(rest) = id.strip_prefix(TOKEN_PREFIX) else {
        return Ok((id.to_owned(), None));
    };
    let bad = || S3Error::no_such_upload();
    let (backend, header) = rest.split_once('.').ok_or_else(bad)?;
    let backend = String::from_utf8(B64.decode(backend).map_err(|_| bad())?).map_err(|_| bad())?;
    let header = objmeta::decode(header).map_err(|_| bad())?;
    if !header.multipart {
        return Err(bad());
    }
    Ok((backend, Some(header)))
}

pub(crate) fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

pub(crate) fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn replace_upload_id(xml: &[u8], token: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(xml);
    match (text.find("<UploadId>"), text.find("</UploadId>")) {
        (Some(a), Some(b)) if a < b => {
            let mut out = String::with_capacity(text.len() + token.len());
            out.push_str(&text[..a + "<UploadId>".len()]);
            out.push_str(&crate::s3::xml::escape(token));
            out.push_str(&text[b..]);
            out.into_bytes()
        }
        _ => xml.to_vec(),
    }
}

fn names<'a>(ctx: &'a Request<'_>) -> Result<ObjectName<'a>, Failure> {
    match (&ctx.address.bucket, &ctx.address.key) {
        (Some(bucket), Some(key)) => Ok(ObjectName { bucket, key }),
        _ => Err(Failure::close(S3Error::invalid_request(
            "a bucket and a key are needed",
        ))),
    }
}

async fn read_small_request(ctx: &Request<'_>, conn: &mut Conn) -> Result<Vec<u8>, Failure> {
    let mut body = ClientBody::new(ctx.head, ctx.verified).map_err(Failure::close)?;
    if body.len() > super::passthrough::FORWARDED_BODY_BYTES_MAX {
        return Err(Failure::close(S3Error::entity_too_large()));
    }
    if ctx.head.expects_continue() {
        let (res, _) = conn
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        res.map_err(|_| Failure::close(S3Error::incomplete_body()))?;
    }
    let len = body.len() as usize;
    let (res, payload) = body.read_exact(conn, vec![0u8; len], 0..len).await;
    res.map_err(|e| Failure::close(e.to_s3()))?;
    body.finish(conn)
        .await
        .map_err(|e| Failure::close(e.to_s3()))?;
    Ok(payload)
}

/// Sends a response with a small XML body.
async fn reply(
    conn: &mut Conn,
    resp: &ResponseHead,
    body: &[u8],
    rid: &str,
    sse: bool,
) -> Result<Outcome, Failure> {
    let mut out = ResponseHead::new(resp.status);
    for name in ["content-type", "x-amz-version-id"] {
        if let Some(v) = resp.header(name) {
            out.push_header(name, v.to_vec());
        }
    }
    if sse {
        out.push_header("x-amz-server-side-encryption", SSE_DSSE.as_bytes().to_vec());
    }
    out.push_header("x-amz-request-id", rid.as_bytes().to_vec());
    out.push_header("content-length", body.len().to_string().into_bytes());
    write_response(conn, &out, body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// CreateMultipartUpload: makes the upload's keys and header, stores the header as the
/// upload's metadata, and hands out an upload id carrying it.
pub(crate) async fn create(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let headers = check_upload_headers(ctx).map_err(Failure::close)?;
    let _ = read_small_request(ctx, conn).await?;
    let upload_id: [u8; 16] = crate::envelope::random_bytes(crate::envelope::aead::Layer::Outer)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let (header, _keys) = ctx
        .core
        .keyring
        .seal_new(name, Some(upload_id))
        .await
        .map_err(|e| super::object::key_failure(&e))?;
    let mut headers = headers;
    headers.push((
        objmeta::HTTP_HEADER.into(),
        objmeta::encode(&header).into_bytes(),
    ));
    let path = backend_path(Some(name.bucket), Some(name.key));
    let (resp, body) = ctx
        .core
        .backend
        .simple("POST", &path, Some("uploads="), headers, Vec::new())
        .await
        .map_err(|e| backend_failure(&e))?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let text = String::from_utf8_lossy(&body);
    let backend_id = xml_value(&text, "UploadId")
        .map(xml_unescape)
        .ok_or_else(|| {
            backend_failure(&super::backend::BackendError::Protocol(
                "no UploadId".into(),
            ))
        })?;
    let body = replace_upload_id(&body, &token(&backend_id, &header));
    reply(conn, &resp, &body, ctx.rid, true).await
}

fn part_number(ctx: &Request<'_>) -> Result<u32, S3Error> {
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
    let number = part_number(ctx).map_err(Failure::close)?;
    let id = ctx.query.get("uploadId").unwrap_or("");
    let (backend_id, header) = parse_token(id).map_err(Failure::close)?;
    let header = header.ok_or_else(|| {
        Failure::close(S3Error::no_such_upload().with_message(
            "This upload id has no Twofold keys: use the upload id CreateMultipartUpload returned",
        ))
    })?;
    let keys = ctx
        .core
        .keyring
        .open(&header, name)
        .await
        .map_err(|e| match e {
            crate::keys::KeyError::Envelope(_) => Failure::close(S3Error::no_such_upload()),
            e => Failure {
                close: true,
                ..super::object::key_failure(&e)
            },
        })?;
    let cipher = SegmentCipher::new(&header, &keys, number)
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    drop(keys);
    let mut body = ClientBody::new(ctx.head, ctx.verified).map_err(Failure::close)?;
    if body.len() > super::object::PUT_OBJECT_BYTES_MAX {
        return Err(Failure::close(S3Error::entity_too_large()));
    }
    if ctx.head.expects_continue() {
        let (res, _) = conn
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        res.map_err(|_| Failure::close(S3Error::incomplete_body()))?;
    }
    let path = backend_path(Some(name.bucket), Some(name.key));
    let query = format!(
        "partNumber={number}&uploadId={}",
        encode(&backend_id, false)
    );
    let ex = ctx
        .core
        .backend
        .send_head(
            "PUT",
            &path,
            Some(&query),
            Vec::new(),
            Some(stored_len(body.len(), header.segment_size)),
        )
        .await
        .map_err(|e| backend_failure(&e))?;
    let (resp, resp_body, checksum) = seal_upload(ctx, conn, &mut body, &cipher, ex).await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &resp_body, ctx.rid).await;
    }
    let mut out = ResponseHead::new(200);
    if let Some(v) = resp.header("etag") {
        out.push_header("etag", v.to_vec());
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

/// The client's CompleteMultipartUpload document without its `<Checksum...>` elements.
/// They are checksums of the plaintext parts, which the gateway verified as each part
/// arrived; the backend holds ciphertext parts uploaded without checksums, and a backend
/// that checks them (AWS S3) would refuse the completion.
fn without_part_checksums(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(at) = rest.find("<Checksum") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        let name_len = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        let close = format!("</{}>", &tail[..name_len]);
        match rest[at..].find(&close) {
            Some(end) => rest = &rest[at + end + close.len()..],
            None => {
                // Not an element this function knows how to remove: left as it is.
                out.push_str(&rest[at..]);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `<PartNumber>` and `<Size>` pair of a ListParts result, in order.
fn listed_parts(xml: &str) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(a) = rest.find("<Part>") {
        let Some(b) = rest[a..].find("</Part>") else {
            break;
        };
        let part = &rest[a..a + b];
        if let (Some(n), Some(s)) = (xml_value(part, "PartNumber"), xml_value(part, "Size"))
            && let (Ok(n), Ok(s)) = (n.trim().parse(), s.trim().parse())
        {
            out.push((n, s));
        }
        rest = &rest[a + b..];
    }
    out
}

/// CompleteMultipartUpload: checks that the parts form a layout the envelope can read
/// (numbered 1..N without gaps, every part but the last a whole number of segments), then
/// lets the backend complete.
pub(crate) async fn complete(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let id = ctx.query.get("uploadId").unwrap_or("");
    let (backend_id, header) = parse_token(id).map_err(Failure::close)?;
    let request = read_small_request(ctx, conn).await?;
    let text = String::from_utf8_lossy(&request).into_owned();
    let mut numbers = Vec::new();
    let mut rest = text.as_str();
    while let Some(v) = xml_value(rest, "PartNumber") {
        numbers.push(
            v.trim()
                .parse::<u32>()
                .map_err(|_| Failure::keep(S3Error::malformed_xml()))?,
        );
        let at = rest
            .find("</PartNumber>")
            .map_or(rest.len(), |i| i + "</PartNumber>".len());
        rest = &rest[at..];
    }
    if numbers.is_empty() {
        return Err(Failure::keep(S3Error::malformed_xml()));
    }
    if numbers
        .iter()
        .enumerate()
        .any(|(i, &n)| n as usize != i + 1)
    {
        return Err(Failure::keep(S3Error::new(
            400,
            "InvalidPart",
            "Twofold needs the parts of an upload numbered 1, 2, 3... without gaps",
        )));
    }
    let path = backend_path(Some(name.bucket), Some(name.key));
    let upload_q = format!("uploadId={}", encode(&backend_id, false));
    // The sizes of the parts, from the backend.
    let seg = header
        .as_ref()
        .map_or(ctx.core.keyring.settings().segment_size, |h| h.segment_size);
    let mut sizes = Vec::new();
    let mut marker = 0u32;
    loop {
        let q = format!("{upload_q}&part-number-marker={marker}");
        let (resp, body) = ctx
            .core
            .backend
            .simple("GET", &path, Some(&q), Vec::new(), Vec::new())
            .await
            .map_err(|e| backend_failure(&e))?;
        if resp.status != 200 {
            return forward_error(conn, &resp, &body, ctx.rid).await;
        }
        let text = String::from_utf8_lossy(&body);
        let page = listed_parts(&text);
        let truncated = xml_value(&text, "IsTruncated").is_some_and(|v| v.trim() == "true");
        let next = page.last().map(|p| p.0);
        sizes.extend(page);
        match (truncated, next) {
            (true, Some(n)) if n > marker => marker = n,
            _ => break,
        }
    }
    let mut plain_sizes = Vec::with_capacity(numbers.len());
    for (i, &n) in numbers.iter().enumerate() {
        let stored = sizes
            .iter()
            .find(|(p, _)| *p == n)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                Failure::keep(S3Error::new(
                    400,
                    "InvalidPart",
                    format!("Part {n} was not uploaded"),
                ))
            })?;
        let plain = plain_len(stored, seg).map_err(|_| {
            Failure::keep(S3Error::new(
                400,
                "InvalidPart",
                format!("Part {n} was not uploaded through Twofold"),
            ))
        })?;
        if i + 1 < numbers.len() && plain == 0 {
            return Err(Failure::keep(S3Error::new(
                400,
                "EntityTooSmall",
                format!("Part {n} is empty; only the last part may be"),
            )));
        }
        plain_sizes.push(plain);
    }
    // Parts that are not whole numbers of segments (all but the last): the object gets a
    // layout record, sealed now so that nothing is completed if it cannot be.
    let sealed_record = match &header {
        Some(h) if record::needs_record(&plain_sizes, seg) => {
            record::encode(&plain_sizes).map_err(|e| {
                Failure::keep(S3Error::new(
                    400,
                    "InvalidPart",
                    format!("Twofold cannot record this layout: {e}"),
                ))
            })?;
            let keys = ctx
                .core
                .keyring
                .open(h, name)
                .await
                .map_err(|e| super::object::key_failure(&e))?;
            let sealed = record::seal(h, &keys, &plain_sizes)
                .map_err(|_| Failure::keep(S3Error::internal_error()))?;
            if sealed.len().div_ceil(3) * 4 > super::unaligned::LAYOUT_VALUE_LEN_MAX {
                return Err(Failure::keep(S3Error::new(
                    400,
                    "InvalidPart",
                    "Twofold cannot record this layout: the part sizes take too much metadata",
                )));
            }
            Some(sealed)
        }
        _ => None,
    };
    let (resp, body) = ctx
        .core
        .backend
        .simple(
            "POST",
            &path,
            Some(&upload_q),
            vec![("content-type".into(), b"application/xml".to_vec())],
            without_part_checksums(&text).into_bytes(),
        )
        .await
        .map_err(|e| backend_failure(&e))?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let (Some(sealed), Some(h)) = (sealed_record, &header) else {
        return reply(conn, &resp, &body, ctx.rid, true).await;
    };
    if String::from_utf8_lossy(&body).contains("<Error>") {
        // Completed with an error body (S3 may answer 200 and fail later): nothing to
        // rewrite.
        return reply(conn, &resp, &body, ctx.rid, false).await;
    }
    let (resp, body) =
        super::unaligned::rewrite(ctx, name, &path, h, &sealed, &plain_sizes).await?;
    reply(conn, &resp, &body, ctx.rid, true).await
}

/// AbortMultipartUpload and ListParts: passed on with the backend's upload id; ListParts
/// sizes are plaintext sizes.
pub(crate) async fn abort_or_list(
    ctx: &Request<'_>,
    conn: &mut Conn,
    list: bool,
) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let id = ctx.query.get("uploadId").unwrap_or("");
    let (backend_id, header) = parse_token(id).map_err(Failure::keep)?;
    let _ = read_small_request(ctx, conn).await?;
    let mut params = vec![format!("uploadId={}", encode(&backend_id, false))];
    for (k, v) in ctx.query.params() {
        if k != "uploadId" && !k.starts_with("X-Amz-") {
            params.push(format!("{}={}", encode(k, false), encode(v, false)));
        }
    }
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
        .await
        .map_err(|e| backend_failure(&e))?;
    if !(200..300).contains(&resp.status) {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let body = if list {
        let seg = header
            .as_ref()
            .map_or(ctx.core.keyring.settings().segment_size, |h| h.segment_size);
        replace_upload_id(&rewrite_sizes(&body, seg), id)
    } else {
        body
    };
    reply(conn, &resp, &body, ctx.rid, false).await
}

/// UploadPartCopy: a range of an existing object becomes a part. The source is opened and
/// verified segment by segment and its plaintext sealed again under the part's keys (the
/// two objects have different data keys, so the backend cannot copy the bytes itself).
pub(crate) async fn upload_part_copy(
    ctx: &Request<'_>,
    conn: &mut Conn,
) -> Result<Outcome, Failure> {
    use crate::envelope::layout::{SEGMENT_OVERHEAD_BYTES, segment_count, segment_plain_len};
    const OVERHEAD: usize = SEGMENT_OVERHEAD_BYTES as usize;
    let name = names(ctx)?;
    let number = part_number(ctx).map_err(Failure::keep)?;
    let id = ctx.query.get("uploadId").unwrap_or("");
    let (backend_id, header) = parse_token(id).map_err(Failure::keep)?;
    let header = header.ok_or_else(|| Failure::keep(S3Error::no_such_upload()))?;
    let source = ctx
        .head
        .header_str("x-amz-copy-source")
        .ok_or_else(|| Failure::keep(S3Error::invalid_argument("x-amz-copy-source is missing")))?;
    let (src_bucket, src_key, version) =
        super::object::parse_copy_source(source).map_err(Failure::keep)?;
    let granted = ctx
        .core
        .settings
        .credentials
        .iter()
        .find(|c| c.access_key_id == ctx.verified.access_key_id)
        .is_some_and(|c| c.allows(&src_bucket));
    if !granted {
        return Err(Failure::keep(S3Error::access_denied()));
    }
    let _ = read_small_request(ctx, conn).await?;
    let keys = ctx
        .core
        .keyring
        .open(&header, name)
        .await
        .map_err(|_| Failure::keep(S3Error::no_such_upload()))?;
    let cipher = SegmentCipher::new(&header, &keys, number)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    drop(keys);

    // The source: its header, size, and keys.
    let src_path = backend_path(Some(&src_bucket), Some(&src_key));
    let src_query = version
        .as_ref()
        .map(|v| format!("versionId={}", encode(v, false)));
    let mut cond: Vec<(String, Vec<u8>)> = Vec::new();
    for (from, to) in [
        ("x-amz-copy-source-if-match", "if-match"),
        ("x-amz-copy-source-if-none-match", "if-none-match"),
        ("x-amz-copy-source-if-modified-since", "if-modified-since"),
        (
            "x-amz-copy-source-if-unmodified-since",
            "if-unmodified-since",
        ),
    ] {
        if let Some(v) = ctx.head.header(from) {
            cond.push((to.into(), v.to_vec()));
        }
    }
    let (src, src_body) = ctx
        .core
        .backend
        .simple("HEAD", &src_path, src_query.as_deref(), cond, Vec::new())
        .await
        .map_err(|e| backend_failure(&e))?;
    if src.status != 200 {
        return forward_error(conn, &src, &src_body, ctx.rid).await;
    }
    let src_header = match src.header_str(objmeta::HTTP_HEADER) {
        Some(v) => objmeta::decode(v).map_err(|_| Failure::keep(S3Error::internal_error()))?,
        None => {
            return Err(Failure::keep(S3Error::new(
                403,
                "InvalidObjectState",
                "The copy source was not written through Twofold",
            )));
        }
    };
    let src_stored = src.content_length().ok().flatten().unwrap_or(0);
    // A source with a layout record: its parts are found from the record.
    let src_layout =
        if src_header.multipart && record::is_marked(src_stored, src_header.segment_size) {
            let src_name = ObjectName {
                bucket: &src_bucket,
                key: &src_key,
            };
            Some(super::unaligned::layout_of(ctx, src_name, &src_header, &src, src_stored).await?)
        } else {
            None
        };
    let src_size = match &src_layout {
        Some(l) => l.plain_len(),
        None => plain_len(src_stored, src_header.segment_size)
            .map_err(|_| Failure::keep(S3Error::internal_error()))?,
    };
    let (first, last) = match ctx.head.header("x-amz-copy-source-range") {
        Some(v) => match crate::s3::parse_range(v) {
            crate::s3::RangeRequest::Single(r) => {
                let rr = r
                    .resolve(src_size)
                    .map_err(|_| Failure::keep(S3Error::invalid_range()))?;
                (rr.first, rr.last)
            }
            _ => {
                return Err(Failure::keep(S3Error::invalid_argument(
                    "x-amz-copy-source-range must be bytes=first-last",
                )));
            }
        },
        None if src_size == 0 => (0, 0),
        None => (0, src_size - 1),
    };
    let part_len = if src_size == 0 { 0 } else { last - first + 1 };
    if part_len > super::object::PUT_OBJECT_BYTES_MAX {
        return Err(Failure::keep(S3Error::entity_too_large()));
    }
    let src_name = ObjectName {
        bucket: &src_bucket,
        key: &src_key,
    };
    let src_keys = ctx
        .core
        .keyring
        .open(&src_header, src_name)
        .await
        .map_err(|e| super::object::key_failure(&e))?;
    let sseg = src_header.segment_size;
    // Single-part sources are read from the first segment of the range; multipart ones from
    // the start, to follow their part boundaries.
    let first_seg = if src_header.multipart || src_size == 0 {
        0
    } else {
        first / sseg.bytes()
    };
    let cursor = if src_header.multipart {
        super::object::PartCursor::new(&src_header, &src_keys)
    } else {
        super::object::PartCursor::at(
            &src_header,
            &src_keys,
            crate::envelope::SINGLE_PART_NUMBER,
            first_seg,
        )
    };
    let mut cursor = cursor.map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let last_seg = if src_size == 0 {
        0
    } else {
        last / sseg.bytes()
    };
    let mut stored_first = first_seg * sseg.stored_bytes();
    let mut stored_last = last_seg * sseg.stored_bytes()
        + segment_plain_len(src_size, last_seg, sseg)
        + SEGMENT_OVERHEAD_BYTES
        - 1;
    // The segments to open, in order: (part number, index in the part, final, plaintext
    // length, plaintext offset in the object). `None` for the part: the cursor follows the
    // part boundaries itself.
    let mut plan: Vec<(Option<u32>, u64, bool, u64, u64)> = Vec::new();
    if let Some(layout) = &src_layout {
        let slices = layout
            .map_range(crate::envelope::layout::PlainRange { first, last })
            .map_err(|_| Failure::keep(S3Error::invalid_range()))?;
        if let (Some(a), Some(b)) = (slices.first(), slices.last()) {
            stored_first = a.stored_first;
            stored_last = b.stored_last;
        }
        for s in &slices {
            let plen = layout.parts()[s.part_index];
            let part_start: u64 = layout.parts()[..s.part_index].iter().sum();
            let number = u32::try_from(s.part_index + 1)
                .map_err(|_| Failure::keep(S3Error::internal_error()))?;
            let n = segment_count(plen, sseg);
            for i in s.first_segment..=s.last_segment {
                plan.push((
                    Some(number),
                    i,
                    i + 1 == n,
                    segment_plain_len(plen, i, sseg),
                    part_start + i * sseg.bytes(),
                ));
            }
        }
    } else {
        let src_n = segment_count(src_size, sseg);
        for index in first_seg..=last_seg {
            plan.push((
                None,
                index,
                index + 1 == src_n,
                segment_plain_len(src_size, index, sseg),
                index * sseg.bytes(),
            ));
        }
    }
    let mut fwd = vec![(
        "range".to_owned(),
        format!("bytes={stored_first}-{stored_last}").into_bytes(),
    )];
    if let Some(etag) = src.header("etag") {
        fwd.push(("if-match".into(), etag.to_vec()));
    }
    let mut src_ex = ctx
        .core
        .backend
        .send_head("GET", &src_path, src_query.as_deref(), fwd, None)
        .await
        .map_err(|e| backend_failure(&e))?;
    let src_resp = src_ex
        .conn
        .read_response_head()
        .await
        .map_err(|e| backend_failure(&e.into()))?;
    if src_resp.status != 206 && src_resp.status != 200 {
        let (b, _) = super::backend::read_small_body(&mut src_ex.conn, &src_resp, false, 1 << 20)
            .await
            .map_err(|e| backend_failure(&e))?;
        return forward_error(conn, &src_resp, &b, ctx.rid).await;
    }
    // The destination part.
    let dseg = header.segment_size;
    let path = backend_path(Some(name.bucket), Some(name.key));
    let query = format!(
        "partNumber={number}&uploadId={}",
        encode(&backend_id, false)
    );
    let mut ex = ctx
        .core
        .backend
        .send_head(
            "PUT",
            &path,
            Some(&query),
            Vec::new(),
            Some(stored_len(part_len, dseg)),
        )
        .await
        .map_err(|e| backend_failure(&e))?;
    let dst_n = segment_count(part_len, dseg);
    let mut input = vec![0u8; sseg.bytes_usize() + OVERHEAD];
    let mut plain = vec![0u8; sseg.bytes_usize() + OVERHEAD];
    let mut dst = vec![0u8; dseg.bytes_usize() + OVERHEAD];
    let mut dst_fill = 0usize;
    let mut dst_index = 0u64;
    let mut written = 0u64;
    let mut part_cipher: Option<SegmentCipher> = None;
    for (number, index, is_final, plen, seg_start) in plan {
        let plen = plen as usize;
        let (res, b) = src_ex.conn.read_exact_into(input, 0..plen + OVERHEAD).await;
        input = b;
        res.map_err(|e| backend_failure(&e.into()))?;
        let opened = match number {
            None => cursor.open(&input[..plen + OVERHEAD], &mut plain, is_final),
            Some(number) => {
                if part_cipher.as_ref().is_none_or(|c| c.part() != number) {
                    part_cipher = Some(
                        SegmentCipher::new(&src_header, &src_keys, number)
                            .map_err(|_| Failure::close(S3Error::internal_error()))?,
                    );
                }
                match &part_cipher {
                    Some(c) => c.open_to(index, is_final, &input[..plen + OVERHEAD], &mut plain),
                    None => Err(crate::envelope::Error::Internal("no cipher")),
                }
            }
        };
        opened.map_err(|e| {
            super::object::integrity_failure(ctx, &e);
            Failure::close(
                S3Error::internal_error()
                    .with_message(format!("The copy source failed its integrity check: {e}")),
            )
        })?;
        if seg_start + plen as u64 <= first && src_size > 0 {
            continue;
        }
        let from = first.saturating_sub(seg_start) as usize;
        let to = ((last + 1).min(seg_start + plen as u64) - seg_start) as usize;
        let mut chunk = if src_size == 0 {
            &plain[..0]
        } else {
            &plain[from..to]
        };
        while !chunk.is_empty() {
            let want = segment_plain_len(part_len, dst_index, dseg) as usize - dst_fill;
            let n = want.min(chunk.len());
            dst[dst_fill..dst_fill + n].copy_from_slice(&chunk[..n]);
            dst_fill += n;
            chunk = &chunk[n..];
            if dst_fill == segment_plain_len(part_len, dst_index, dseg) as usize {
                let last_dst = dst_index + 1 == dst_n;
                let sealed = cipher
                    .seal(dst_index, last_dst, &mut dst, dst_fill)
                    .map_err(|_| Failure::close(S3Error::internal_error()))?;
                let (res, b) = ex.conn.write_range(dst, 0..sealed).await;
                dst = b;
                res.map_err(|e| backend_failure(&e.into()))?;
                written += dst_fill as u64;
                dst_index += 1;
                dst_fill = 0;
            }
        }
    }
    if part_len == 0 {
        let sealed = cipher
            .seal(0, true, &mut dst, 0)
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
        let (res, _) = ex.conn.write_range(dst, 0..sealed).await;
        res.map_err(|e| backend_failure(&e.into()))?;
    }
    if written != part_len {
        return Err(Failure::close(S3Error::internal_error()));
    }
    ctx.core.backend.release(src_ex.conn);
    let resp = ex
        .conn
        .read_response_head()
        .await
        .map_err(|e| backend_failure(&e.into()))?;
    let (resp_body, reusable) =
        super::backend::read_small_body(&mut ex.conn, &resp, false, 1 << 20)
            .await
            .map_err(|e| backend_failure(&e))?;
    if reusable && resp.keep_alive() {
        ctx.core.backend.release(ex.conn);
    }
    if resp.status != 200 {
        return forward_error(conn, &resp, &resp_body, ctx.rid).await;
    }
    let etag = resp.header_str("etag").unwrap_or("\"\"");
    let modified = src.header_str("last-modified").unwrap_or("");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyPartResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ETag>{}</ETag><LastModified>{}</LastModified></CopyPartResult>",
        crate::s3::xml::escape(etag),
        crate::s3::xml::escape(&http_date_to_iso(modified))
    );
    let mut out = ResponseHead::new(200);
    out.push_header("content-type", b"application/xml".to_vec());
    reply(conn, &out, body.as_bytes(), ctx.rid, true).await
}

/// `Sat, 28 Nov 2026 16:19:02 GMT` → `2026-11-28T16:19:02.000Z` (the form S3 uses in XML);
/// anything else is passed through.
fn http_date_to_iso(v: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = v.split_whitespace().collect();
    if let [_, day, mon, year, time, "GMT"] = parts.as_slice()
        && let Some(m) = MONTHS.iter().position(|x| x == mon)
    {
        return format!("{year}-{:02}-{day:0>2}T{time}.000Z", m + 1);
    }
    v.to_owned()
}

#[cfg(test)]
mod complete_document_tests {
    use super::without_part_checksums;

    #[test]
    fn part_checksums_are_removed_and_the_rest_kept() {
        let xml = "<CompleteMultipartUpload><Part><ETag>\"a\"</ETag>\
            <ChecksumCRC32>AAAAAA==</ChecksumCRC32><PartNumber>1</PartNumber></Part>\
            <Part><ChecksumSHA256>x/y=</ChecksumSHA256><ETag>\"b\"</ETag>\
            <PartNumber>2</PartNumber><ChecksumCRC64NVME>q</ChecksumCRC64NVME></Part>\
            </CompleteMultipartUpload>";
        assert_eq!(
            without_part_checksums(xml),
            "<CompleteMultipartUpload><Part><ETag>\"a\"</ETag><PartNumber>1</PartNumber></Part>\
             <Part><ETag>\"b\"</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"
        );
    }

    #[test]
    fn a_document_without_checksums_or_with_a_broken_one_is_unchanged() {
        let plain = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        assert_eq!(without_part_checksums(plain), plain);
        let broken = "<Part><ChecksumCRC32>AAAA</Part>";
        assert_eq!(without_part_checksums(broken), broken);
    }
}
