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
use super::object::{SealSink, check_upload_headers, seal_to_md5, seal_upload};
use super::part_checksum::{Declared, PartTagger};
use super::passthrough::rewrite_sizes;
use super::respond::{SSE_DSSE, forward_error};
use super::{Failure, Outcome, Request, backend_path, encode, write_response};
use crate::envelope::header::Header;
use crate::envelope::layout::{plain_len, stored_len};
use crate::envelope::{ObjectName, SegmentCipher};
use crate::envelope::{checksum_record, record};
use crate::http::ResponseHead;
use crate::objmeta;
use crate::s3::{S3Code, S3Error, xml};
use base64::Engine;

/// Prefix of the upload ids Twofold hands out.
const TOKEN_PREFIX: &str = "tf1.";
/// Largest part number, as in S3.
pub const PART_NUMBER_MAX: u32 = 10_000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn token(backend_id: &str, header: &Header, declared: Option<Declared>) -> String {
    let mut t = format!(
        "{TOKEN_PREFIX}{}.{}",
        B64.encode(backend_id.as_bytes()),
        objmeta::encode(header)
    );
    if let Some(d) = declared {
        t.push('.');
        t.push_str(&d.encode());
    }
    t
}

/// What an upload id carries: the backend's upload id, and for Twofold ids the header
/// and the checksum the client declared.
struct Upload {
    backend_id: String,
    header: Option<Header>,
    declared: Option<Declared>,
}

/// The upload id ListMultipartUploads shows for the backend's upload `backend_id`: the
/// backend cannot give the upload's header back (S3 has no call that returns an upload's
/// metadata), so this form carries none. It lists and aborts the upload; UploadPart and
/// Complete need the id CreateMultipartUpload returned.
fn listed_token(backend_id: &str) -> String {
    format!("{TOKEN_PREFIX}{}", B64.encode(backend_id.as_bytes()))
}

fn parse_token(id: &str) -> Result<Upload, S3Error> {
    let Some(rest) = id.strip_prefix(TOKEN_PREFIX) else {
        return Ok(Upload {
            backend_id: id.to_owned(),
            header: None,
            declared: None,
        });
    };
    let bad = || S3Error::no_such_upload();
    let Some((backend, rest)) = rest.split_once('.') else {
        // A listed id (`listed_token`): the backend's id alone.
        let backend = B64.decode(rest).map_err(|_| bad())?;
        return Ok(Upload {
            backend_id: String::from_utf8(backend).map_err(|_| bad())?,
            header: None,
            declared: None,
        });
    };
    let (header, declared) = match rest.split_once('.') {
        Some((h, d)) => (h, Some(Declared::decode(d).ok_or_else(bad)?)),
        None => (rest, None),
    };
    let backend = String::from_utf8(B64.decode(backend).map_err(|_| bad())?).map_err(|_| bad())?;
    let header = objmeta::decode(header).map_err(|_| bad())?;
    if !header.multipart {
        return Err(bad());
    }
    Ok(Upload {
        backend_id: backend,
        header: Some(header),
        declared,
    })
}

fn replace_upload_id(xml: &[u8], token: &str) -> Vec<u8> {
    replace_element(&String::from_utf8_lossy(xml), "UploadId", token).into_bytes()
}

/// A ListMultipartUploads result with every upload id (and upload-id marker) in the
/// form [`listed_token`] gives.
fn listed_uploads(xml: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(xml);
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text.as_ref();
    let tags = ["UploadId", "NextUploadIdMarker", "UploadIdMarker"];
    loop {
        let next = tags
            .iter()
            .filter_map(|t| rest.find(&format!("<{t}>")).map(|i| (i, *t)))
            .min();
        let Some((i, tag)) = next else { break };
        let from = i + tag.len() + 2;
        let close = format!("</{tag}>");
        let Some(len) = rest[from..].find(&close) else {
            break;
        };
        let raw = xml::unescape(&rest[from..from + len]);
        out.push_str(&rest[..from]);
        if !raw.is_empty() {
            out.push_str(&crate::s3::xml::escape(&listed_token(&raw)));
        }
        rest = &rest[from + len..];
    }
    out.push_str(rest);
    out.into_bytes()
}

/// ListMultipartUploads: the backend's listing, with upload ids Twofold can take back
/// ([`listed_token`]); an `upload-id-marker` given in that form goes to the backend as
/// the backend's id.
pub(crate) async fn list_uploads(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let _ = read_small_request(ctx, conn).await?;
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
    reply_with(conn, resp, body, rid, sse, Vec::new()).await
}

/// [`reply`] with `extra` headers. Every `<ETag>` of the body is shown in the client's form.
async fn reply_with(
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

/// CreateMultipartUpload: makes the upload's keys and header, stores the header as the
/// upload's metadata, and hands out an upload id carrying it.
pub(crate) async fn create(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let headers = check_upload_headers(ctx).map_err(Failure::close)?;
    let declared = Declared::from_request(
        ctx.head.header_str("x-amz-checksum-algorithm"),
        ctx.head.header_str("x-amz-checksum-type"),
    )
    .map_err(Failure::close)?;
    let _ = read_small_request(ctx, conn).await?;
    let upload_id: [u8; 16] = crate::envelope::random_bytes(crate::envelope::aead::Layer::Outer)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let (header, _keys) = ctx.core.keyring.seal_new(name, Some(upload_id)).await?;
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
    let body = replace_upload_id(&body, &token(&backend_id, &header, declared));
    let extra = declared.map_or_else(Vec::new, |d| {
        vec![
            (
                "x-amz-checksum-algorithm",
                d.algorithm.name().as_bytes().to_vec(),
            ),
            ("x-amz-checksum-type", d.type_name().as_bytes().to_vec()),
        ]
    });
    reply_with(conn, &resp, &body, ctx.rid, true, extra).await
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
    let Upload {
        backend_id,
        header,
        declared,
    } = parse_token(id).map_err(Failure::close)?;
    let header = header.ok_or_else(|| {
        Failure::close(S3Error::no_such_upload().with_message(
            "This upload id has no Twofold keys: use the upload id CreateMultipartUpload returned",
        ))
    })?;
    // Before the body is read: the connection's state closes it after a failure here.
    let keys = ctx
        .core
        .keyring
        .open(&header, name)
        .await
        .map_err(Failure::upload_keys)?;
    let cipher = SegmentCipher::new(&header, &keys, number)
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    let tagger = declared
        .map(|_| PartTagger::new(&header, &keys))
        .transpose()
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    drop(keys);
    let mut body = ClientBody::new(ctx.head, ctx.verified).map_err(Failure::close)?;
    if body.len() > super::object::PUT_OBJECT_BYTES_MAX {
        return Err(Failure::close(S3Error::entity_too_large()));
    }
    // As in S3, an upload that declared a checksum takes only parts that carry one of its
    // algorithm (as a header or a trailer): it is checked, and vouched for in the ETag.
    if let Some(d) = declared
        && ctx.head.header(d.algorithm.header_name()).is_none()
        && body.trailer_checksum_algorithm() != Some(d.algorithm)
    {
        return Err(Failure::close(S3Error::invalid_request(format!(
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

/// A part the backend already holds for an upload.
struct StoredPart {
    etag: String,
    size: u64,
}

impl StoredPart {
    /// Part `number` is being sent again, and seals to `stored` bytes whose MD5 is `md5`.
    /// Its keys and nonces are those the stored part was sealed with, so anything but the
    /// same ciphertext would give the backend two messages under one nonce (the XOR of
    /// the plaintexts, and the means to forge tags): the gateway sent nothing, and only
    /// the same part (a retry) is answered, with the stored part's ETag. The ETag of a
    /// part is the MD5 of its bytes on S3 and most backends; where it is not (SSE-KMS
    /// buckets), a retry is refused as well.
    fn check_same(&self, number: u32, stored: u64, md5: &[u8; 16]) -> Result<(), Failure> {
        let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
        if self.size == stored && self.etag.trim_matches('"').eq_ignore_ascii_case(&hex) {
            return Ok(());
        }
        Err(Failure::keep(S3Error::new(
            400,
            S3Code::InvalidRequest,
            format!(
                "Part {number} of this upload already holds other data, and Twofold cannot \
                 replace a part: it would seal two different parts under the same keys. \
                 Abort the upload and start a new one"
            ),
        )))
    }
}

/// The backend's part `number` of upload `backend_id`, if it has one (ListParts from
/// that part on).
async fn stored_part(
    ctx: &Request<'_>,
    path: &str,
    backend_id: &str,
    number: u32,
) -> Result<Option<StoredPart>, Failure> {
    let q = format!(
        "uploadId={}&max-parts=1&part-number-marker={}",
        encode(backend_id, false),
        number - 1
    );
    let (resp, body) = ctx
        .core
        .backend
        .simple("GET", path, Some(&q), Vec::new(), Vec::new())
        .await?;
    match resp.status {
        200 => {}
        404 => return Err(Failure::close(S3Error::no_such_upload())),
        _ => {
            return Err(Failure::close(S3Error::bad_gateway().with_detail(format!(
                "Storage backend refused to list the upload's parts ({})",
                resp.status
            ))));
        }
    }
    Ok(listed_parts(&String::from_utf8_lossy(&body))
        .into_iter()
        .find(|p| p.number == number)
        .map(|p| StoredPart {
            etag: p.etag,
            size: p.size.unwrap_or(0),
        }))
}

/// The CompleteMultipartUpload document the backend gets: the parts' numbers and the
/// backend's own ETags. The client's `<Checksum...>` elements are left out (checksums of
/// plaintext parts, which the backend's ciphertext parts were uploaded without; a backend
/// that checks them would refuse the completion), and so are the tags in its ETags.
fn backend_document(parts: &[super::part_checksum::CompletedPart]) -> String {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for p in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>&quot;{}&quot;</ETag></Part>",
            p.number,
            crate::s3::xml::escape(super::part_checksum::backend_etag(&p.etag))
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// A `<Part>` of a ListParts result.
struct ListedPart {
    number: u32,
    size: Option<u64>,
    etag: String,
}

/// Every `<Part>` of a ListParts result that has a part number, in order.
fn listed_parts(xml: &str) -> Vec<ListedPart> {
    xml::elements(xml, "Part")
        .0
        .into_iter()
        .filter_map(|part| {
            Some(ListedPart {
                number: xml::value(part, "PartNumber")?.trim().parse().ok()?,
                size: xml::value(part, "Size").and_then(|s| s.trim().parse().ok()),
                etag: xml::value(part, "ETag")
                    .map(xml::unescape)
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// CompleteMultipartUpload: checks that the parts form a layout the envelope can read
/// (numbered 1..N without gaps, every part but the last a whole number of segments) and,
/// for an upload that declared a checksum, that each part's claimed checksum is the one
/// its ETag vouches for; then lets the backend complete. The object's checksum, and the
/// layout record of an unaligned object, are recorded by a rewrite of the object.
pub(crate) async fn complete(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let id = ctx.query.get("uploadId").unwrap_or("");
    let Upload {
        backend_id,
        header,
        declared,
    } = parse_token(id).map_err(Failure::close)?;
    let request = read_small_request(ctx, conn).await?;
    let text = String::from_utf8_lossy(&request).into_owned();
    let parts = super::part_checksum::completed_parts(&text, declared.map(|d| d.algorithm))
        .map_err(Failure::keep)?;
    if parts.is_empty() {
        return Err(Failure::keep(S3Error::malformed_xml()));
    }
    if parts
        .iter()
        .enumerate()
        .any(|(i, p)| p.number as usize != i + 1)
    {
        return Err(Failure::keep(S3Error::new(
            400,
            S3Code::InvalidPart,
            "Twofold needs the parts of an upload numbered 1, 2, 3... without gaps",
        )));
    }
    // The upload's keys, opened only when something is to be checked or sealed with them
    // (a Complete of an aligned upload without a checksum needs no custodian).
    let mut keys = match (&header, declared) {
        (Some(h), Some(_)) => Some(upload_keys(ctx, h, name).await?),
        _ => None,
    };
    // The parts' checksums, each vouched for by its ETag.
    let digests = match (declared, &header, &keys) {
        (Some(d), Some(h), Some(k)) => {
            let tagger =
                PartTagger::new(h, k).map_err(|_| Failure::keep(S3Error::internal_error()))?;
            Some(vouched_digests(&parts, d, &tagger).map_err(Failure::keep)?)
        }
        _ => None,
    };
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
            .await?;
        if resp.status == 404
            && let Some(h) = &header
            && let Some((head, result)) = completed_earlier(ctx, name, &path, h).await?
        {
            // A Complete sent again after it succeeded (its answer was lost): S3 and Ceph
            // answer it as the first time.
            return reply(conn, &head, &result, ctx.rid, true).await;
        }
        if resp.status != 200 {
            return forward_error(conn, &resp, &body, ctx.rid).await;
        }
        let text = String::from_utf8_lossy(&body);
        let page: Vec<(u32, u64)> = listed_parts(&text)
            .into_iter()
            .filter_map(|p| Some((p.number, p.size?)))
            .collect();
        let truncated = xml::value(&text, "IsTruncated").is_some_and(|v| v.trim() == "true");
        let next = page.last().map(|p| p.0);
        sizes.extend(page);
        match (truncated, next) {
            (true, Some(n)) if n > marker => marker = n,
            _ => break,
        }
    }
    let mut plain_sizes = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let n = part.number;
        let stored = sizes
            .iter()
            .find(|(p, _)| *p == n)
            .map(|(_, s)| *s)
            .ok_or_else(|| {
                Failure::keep(S3Error::new(
                    400,
                    S3Code::InvalidPart,
                    format!("Part {n} was not uploaded"),
                ))
            })?;
        let plain = plain_len(stored, seg).map_err(|_| {
            Failure::keep(S3Error::new(
                400,
                S3Code::InvalidPart,
                format!("Part {n} was not uploaded through Twofold"),
            ))
        })?;
        if i + 1 < parts.len() && plain == 0 {
            return Err(Failure::keep(S3Error::new(
                400,
                S3Code::EntityTooSmall,
                format!("Part {n} is empty; only the last part may be"),
            )));
        }
        plain_sizes.push(plain);
    }
    if keys.is_none()
        && let Some(h) = &header
        && record::needs_record(&plain_sizes, seg)
    {
        keys = Some(upload_keys(ctx, h, name).await?);
    }
    // The object's checksum, checked against the one the client sent for it, if it did.
    let object_checksum = match (declared, &digests) {
        (Some(d), Some(digests)) => {
            let c = super::part_checksum::object_checksum(d, digests, &plain_sizes)
                .ok_or_else(|| Failure::keep(S3Error::internal_error()))?;
            if let Some(claim) = ctx.head.header_str(d.algorithm.header_name())
                && claim.trim() != c.value()
                && claim.trim() != c.digest.to_base64()
            {
                return Err(Failure::keep(S3Error::bad_digest().with_message(format!(
                    "The {} checksum of the object is {}, not {}",
                    d.algorithm,
                    c.value(),
                    claim.trim()
                ))));
            }
            Some(c)
        }
        _ => None,
    };
    // Everything that goes into the object's metadata is sealed now, so that nothing is
    // completed if it cannot be.
    let mut metadata = Vec::new();
    if let (Some(c), Some(h), Some(k)) = (&object_checksum, &header, &keys) {
        let cipher =
            checksum_record::cipher(h, k).map_err(|_| Failure::keep(S3Error::internal_error()))?;
        let sealed = checksum_record::seal(&cipher, c)
            .map_err(|_| Failure::keep(S3Error::internal_error()))?;
        metadata.push((super::object::CHECKSUM_METADATA.into(), sealed.into_bytes()));
    }
    // Parts that are not whole numbers of segments (all but the last): the object gets a
    // layout record.
    let sealed_record = match (&header, &keys) {
        (Some(h), Some(k)) if record::needs_record(&plain_sizes, seg) => {
            record::encode(&plain_sizes).map_err(|e| {
                Failure::keep(S3Error::new(
                    400,
                    S3Code::InvalidPart,
                    format!("Twofold cannot record this layout: {e}"),
                ))
            })?;
            let sealed = record::seal(h, k, &plain_sizes)
                .map_err(|_| Failure::keep(S3Error::internal_error()))?;
            if sealed.len().div_ceil(3) * 4 > super::unaligned::LAYOUT_VALUE_LEN_MAX {
                return Err(Failure::keep(S3Error::new(
                    400,
                    S3Code::InvalidPart,
                    "Twofold cannot record this layout: the part sizes take too much metadata",
                )));
            }
            Some(sealed)
        }
        _ => None,
    };
    drop(keys);
    let (resp, body) = ctx
        .core
        .backend
        .simple(
            "POST",
            &path,
            Some(&upload_q),
            vec![("content-type".into(), b"application/xml".to_vec())],
            backend_document(&parts).into_bytes(),
        )
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let Some(h) = &header else {
        return reply(conn, &resp, &body, ctx.rid, true).await;
    };
    if String::from_utf8_lossy(&body).contains("<Error>") {
        // Completed with an error body (S3 may answer 200 and fail later): nothing to
        // rewrite.
        return reply(conn, &resp, &body, ctx.rid, false).await;
    }
    let completed_version = resp.header("x-amz-version-id").map(<[u8]>::to_vec);
    let (resp, body) = match sealed_record {
        Some(sealed) => {
            super::unaligned::rewrite(ctx, name, &path, h, &sealed, &plain_sizes, metadata).await?
        }
        None if !metadata.is_empty() => {
            match super::unaligned::rewrite_keeping_parts(ctx, &path, h, &plain_sizes, metadata)
                .await
            {
                Ok(done) => done,
                Err(e) => {
                    // The object is complete and verified; only its checksum is missing,
                    // as on any object uploaded without one.
                    tracing::warn!(
                        resource = %format_args!("/{}/{}", name.bucket, name.key),
                        reason = %e.error,
                        "object completed, but its checksum could not be recorded with it"
                    );
                    return reply(conn, &resp, &body, ctx.rid, true).await;
                }
            }
        }
        None => (resp, body),
    };
    if let Some(v) = &completed_version {
        super::object::forget_version(ctx, &path, Some(v), resp.header("x-amz-version-id")).await;
    }
    let body = match &object_checksum {
        Some(c) => with_checksum(&body, c),
        None => body,
    };
    let body = with_stored_etag(ctx, &path, body).await?;
    reply(conn, &resp, &body, ctx.rid, true).await
}

/// The result of a CompleteMultipartUpload whose upload the backend no longer knows, if
/// the object at `path` is the one that upload made (its stored header is the upload's:
/// the header carries the upload's own random id and keys, so no other object has it).
async fn completed_earlier(
    ctx: &Request<'_>,
    name: ObjectName<'_>,
    path: &str,
    header: &Header,
) -> Result<Option<(ResponseHead, Vec<u8>)>, Failure> {
    let (head, _) = ctx
        .core
        .backend
        .simple("HEAD", path, None, Vec::new(), Vec::new())
        .await?;
    let stored = head
        .header_str(objmeta::HTTP_HEADER)
        .and_then(|v| objmeta::decode(v).ok());
    if head.status != 200 || stored.as_ref() != Some(header) {
        return Ok(None);
    }
    let etag = head.header_str("etag").unwrap_or("\"\"");
    let result = complete_result(name, etag);
    let mut out = ResponseHead::new(200);
    out.push_header("content-type", b"application/xml".to_vec());
    if let Some(v) = head.header("x-amz-version-id") {
        out.push_header("x-amz-version-id", v.to_vec());
    }
    Ok(Some((out, result.into_bytes())))
}

/// A CompleteMultipartUploadResult document for the object `name` with (backend) `etag`.
fn complete_result(name: ObjectName<'_>, etag: &str) -> String {
    use crate::s3::xml::escape;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>/{b}/{k}</Location><Bucket>{b}</Bucket><Key>{k}</Key><ETag>{e}</ETag></CompleteMultipartUploadResult>",
        b = escape(name.bucket),
        k = escape(name.key),
        e = escape(etag)
    )
}

/// A Complete result whose `<ETag>` the backend left empty (Ceph 16 does) gets the ETag a
/// HEAD of the object gives; any other result is returned as it is.
async fn with_stored_etag(
    ctx: &Request<'_>,
    path: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, Failure> {
    let text = String::from_utf8_lossy(&body);
    let empty =
        xml::value(&text, "ETag").is_some_and(|e| matches!(xml::unescape(e).trim(), "" | "\"\""));
    if !empty {
        return Ok(body);
    }
    let (head, _) = ctx
        .core
        .backend
        .simple("HEAD", path, None, Vec::new(), Vec::new())
        .await?;
    match head.header_str("etag") {
        Some(etag) if head.status == 200 => Ok(replace_element(&text, "ETag", etag).into_bytes()),
        _ => Ok(body),
    }
}

/// `xml` with the text of its first `<tag>` element replaced by `value` (escaped).
fn replace_element(xml: &str, tag: &str, value: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (xml.find(&open), xml.find(&close)) {
        (Some(a), Some(b)) if a < b => format!(
            "{}{}{}",
            &xml[..a + open.len()],
            crate::s3::xml::escape(value),
            &xml[b..]
        ),
        _ => xml.to_owned(),
    }
}

/// The data keys of the upload whose header is `header`.
async fn upload_keys(
    ctx: &Request<'_>,
    header: &Header,
    name: ObjectName<'_>,
) -> Result<crate::envelope::DataKeys, Failure> {
    ctx.core
        .keyring
        .open(header, name)
        .await
        .map_err(Failure::from)
}

/// The digests of the parts' checksums the client claims in its CompleteMultipartUpload
/// document, each vouched for by the part's ETag (as UploadPart or UploadPartCopy gave
/// it). A missing claim is S3's `InvalidRequest`; one the ETag does not vouch for is
/// `InvalidPart`.
fn vouched_digests(
    parts: &[super::part_checksum::CompletedPart],
    declared: Declared,
    tagger: &PartTagger,
) -> Result<Vec<crate::checksum::Checksum>, S3Error> {
    let alg = declared.algorithm;
    parts
        .iter()
        .map(|p| {
            let claim = p.claim.as_deref().ok_or_else(|| {
                S3Error::invalid_request(format!(
                    "The upload was created using a {alg} checksum. The complete request must \
                     include the checksum for each part. It was missing for part {} in the \
                     request.",
                    p.number
                ))
            })?;
            crate::checksum::Checksum::from_base64(alg, claim)
                .filter(|d| tagger.vouches(p.number, alg, d, &p.etag))
                .ok_or_else(|| {
                    S3Error::new(
                        400,
                        S3Code::InvalidPart,
                        format!(
                            "Part {}: its {alg} checksum or its ETag is not what UploadPart \
                             returned for it",
                            p.number
                        ),
                    )
                })
        })
        .collect()
}

/// A CompleteMultipartUpload result with the object's checksum in it, as S3 gives it.
fn with_checksum(body: &[u8], c: &crate::envelope::checksum_record::StoredChecksum) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let close = "</CompleteMultipartUploadResult>";
    let Some(at) = text.rfind(close) else {
        return body.to_vec();
    };
    let tag = c.algorithm.xml_name();
    format!(
        "{}<{tag}>{}</{tag}><ChecksumType>{}</ChecksumType>{}",
        &text[..at],
        c.value(),
        c.type_name(),
        &text[at..]
    )
    .into_bytes()
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
    let Upload {
        backend_id, header, ..
    } = parse_token(id).map_err(Failure::keep)?;
    let _ = read_small_request(ctx, conn).await?;
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
    let Upload {
        backend_id,
        header,
        declared,
    } = parse_token(id).map_err(Failure::keep)?;
    let header = header.ok_or_else(|| Failure::keep(S3Error::no_such_upload()))?;
    let source = ctx
        .head
        .header_str("x-amz-copy-source")
        .ok_or_else(|| Failure::keep(S3Error::invalid_argument("x-amz-copy-source is missing")))?;
    let crate::s3::CopySource {
        bucket: src_bucket,
        key: src_key,
        version_id: version,
    } = crate::s3::parse_copy_source(source).map_err(|e| Failure::keep(e.into()))?;
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
        .map_err(Failure::upload_keys)?;
    let cipher = SegmentCipher::new(&header, &keys, number)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    // The part's checksum, for an upload that declared one: computed here, as S3 does.
    let tagger = declared
        .map(|_| PartTagger::new(&header, &keys))
        .transpose()
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let mut hasher = declared.map(|d| crate::checksum::Hasher::new(d.algorithm));
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
        .await?;
    if src.status != 200 {
        return forward_error(conn, &src, &src_body, ctx.rid).await;
    }
    let src_header = match src.header_str(objmeta::HTTP_HEADER) {
        Some(v) => objmeta::decode(v).map_err(|_| Failure::keep(S3Error::internal_error()))?,
        None => {
            return Err(Failure::keep(S3Error::new(
                403,
                S3Code::InvalidObjectState,
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
    let src_keys = ctx.core.keyring.open(&src_header, src_name).await?;
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
        .await?;
    let src_resp = src_ex
        .conn
        .read_response_head()
        .await
        .map_err(|e| Failure::from(super::backend::BackendError::from(e)))?;
    if src_resp.status != 206 && src_resp.status != 200 {
        let (b, _) =
            super::backend::read_small_body(&mut src_ex.conn, &src_resp, false, 1 << 20).await?;
        return forward_error(conn, &src_resp, &b, ctx.rid).await;
    }
    // The destination part.
    let dseg = header.segment_size;
    let path = backend_path(Some(name.bucket), Some(name.key));
    let query = format!(
        "partNumber={number}&uploadId={}",
        encode(&backend_id, false)
    );
    let existing = stored_part(ctx, &path, &backend_id, number).await?;
    // A part sent again is sealed to compare it with the stored one, not sent (see
    // `StoredPart::check_same`).
    let mut sink = match &existing {
        Some(_) => SealSink::Md5(<md5::Md5 as md5::Digest>::new()),
        None => SealSink::Backend(
            ctx.core
                .backend
                .send_head(
                    "PUT",
                    &path,
                    Some(&query),
                    Vec::new(),
                    Some(stored_len(part_len, dseg)),
                )
                .await?,
        ),
    };
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
        res.map_err(|e| Failure::from(super::backend::BackendError::from(e)))?;
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
            super::error::integrity_failure(ctx, &e);
            Failure::integrity(format!("The copy source failed its integrity check: {e}")).closing()
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
                if let Some(h) = &mut hasher {
                    h.update(&dst[..dst_fill]);
                }
                let sealed = cipher
                    .seal(dst_index, last_dst, &mut dst, dst_fill)
                    .map_err(|_| Failure::close(S3Error::internal_error()))?;
                dst = sink_write(&mut sink, dst, sealed).await?;
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
        sink_write(&mut sink, dst, sealed).await?;
    }
    if written != part_len {
        return Err(Failure::close(S3Error::internal_error()));
    }
    ctx.core.backend.release(src_ex.conn);
    let modified = src.header_str("last-modified").unwrap_or("");
    let checksum = hasher.map(|h| (h.algorithm(), h.finish_raw()));
    let tag = |etag: &str| match (&tagger, &checksum) {
        (Some(t), Some((alg, digest))) => t.client_etag(number, *alg, digest, etag),
        _ => etag.to_owned(),
    };
    let mut ex = match (sink, existing) {
        (SealSink::Backend(ex), None) => ex,
        (SealSink::Md5(m), Some(existing)) => {
            let md5: [u8; 16] = md5::Digest::finalize(m).into();
            existing.check_same(number, stored_len(part_len, dseg), &md5)?;
            return copy_part_result(conn, ctx, &tag(&existing.etag), checksum, modified).await;
        }
        _ => return Err(Failure::close(S3Error::internal_error())),
    };
    let resp = ex
        .conn
        .read_response_head()
        .await
        .map_err(|e| Failure::from(super::backend::BackendError::from(e)))?;
    let (resp_body, reusable) =
        super::backend::read_small_body(&mut ex.conn, &resp, false, 1 << 20).await?;
    if reusable && resp.keep_alive() {
        ctx.core.backend.release(ex.conn);
    }
    if resp.status != 200 {
        return forward_error(conn, &resp, &resp_body, ctx.rid).await;
    }
    let etag = tag(resp.header_str("etag").unwrap_or("\"\""));
    copy_part_result(conn, ctx, &etag, checksum, modified).await
}

/// Writes a sealed segment (`dst[..sealed]`) to `sink`; gives the buffer back.
async fn sink_write(sink: &mut SealSink, dst: Vec<u8>, sealed: usize) -> Result<Vec<u8>, Failure> {
    match sink {
        SealSink::Backend(ex) => {
            let (res, b) = ex.conn.write_range(dst, 0..sealed).await;
            res.map_err(|e| Failure::from(super::backend::BackendError::from(e)))?;
            Ok(b)
        }
        SealSink::Md5(m) => {
            md5::Digest::update(m, &dst[..sealed]);
            Ok(dst)
        }
    }
}

/// The CopyPartResult answer.
async fn copy_part_result(
    conn: &mut Conn,
    ctx: &Request<'_>,
    etag: &str,
    checksum: Option<(
        crate::checksum::ChecksumAlgorithm,
        crate::checksum::Checksum,
    )>,
    modified: &str,
) -> Result<Outcome, Failure> {
    let checksum = checksum.map_or_else(String::new, |(alg, digest)| {
        let tag = alg.xml_name();
        format!("<{tag}>{}</{tag}>", digest.to_base64())
    });
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyPartResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><ETag>{}</ETag><LastModified>{}</LastModified>{checksum}</CopyPartResult>",
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
mod stored_part_tests {
    use super::StoredPart;

    #[test]
    fn only_the_stored_bytes_may_be_sent_again() {
        let md5 = [0xab_u8; 16];
        let hex = "ab".repeat(16);
        let part = |etag: &str, size| StoredPart {
            etag: etag.to_owned(),
            size,
        };
        // A retry: the ETag is the MD5 of the same sealed bytes (quoted, any case).
        assert!(
            part(&format!("\"{hex}\""), 100)
                .check_same(1, 100, &md5)
                .is_ok()
        );
        assert!(
            part(&hex.to_uppercase(), 100)
                .check_same(1, 100, &md5)
                .is_ok()
        );
        // Other bytes, another length, or an ETag that is no MD5 (or none): refused.
        let refused = |p: StoredPart, stored| {
            let f = p.check_same(7, stored, &md5).unwrap_err();
            assert_eq!(f.error.code, "InvalidRequest");
            assert!(!f.close);
        };
        refused(part(&format!("\"{}\"", "cd".repeat(16)), 100), 100);
        refused(part(&format!("\"{hex}\""), 100), 101);
        refused(part("\"ab-2\"", 100), 100);
        refused(part("", 100), 100);
    }
}

#[cfg(test)]
mod complete_document_tests {
    use super::backend_document;
    use crate::serve::part_checksum::completed_parts;

    #[test]
    fn the_backend_gets_numbers_and_its_own_etags_only() {
        let xml = "<CompleteMultipartUpload><Part><ETag>&quot;a~AAAAAAAAAAAAAAAAAAAAAA&quot;</ETag>\
            <ChecksumCRC32>AAAAAA==</ChecksumCRC32><PartNumber>1</PartNumber></Part>\
            <Part><ChecksumSHA256>x/y=</ChecksumSHA256><ETag>\"b\"</ETag>\
            <PartNumber>2</PartNumber></Part></CompleteMultipartUpload>";
        let parts = completed_parts(xml, None).unwrap();
        assert_eq!(
            backend_document(&parts),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag></Part></CompleteMultipartUpload>"
        );
    }
}

#[cfg(test)]
mod upload_id_tests {
    use super::{listed_uploads, parse_token, replace_element};
    use crate::s3::xml;

    #[test]
    fn listed_upload_ids_come_back_as_the_backends_and_carry_no_header() {
        let xml = b"<ListMultipartUploadsResult><UploadIdMarker></UploadIdMarker>\
            <NextUploadIdMarker>2~b</NextUploadIdMarker><Upload><Key>k</Key>\
            <UploadId>2~a&amp;b</UploadId></Upload></ListMultipartUploadsResult>";
        let out = String::from_utf8(listed_uploads(xml)).unwrap();
        let ids = xml::elements(&out, "UploadId").0;
        assert_eq!(ids.len(), 1);
        let u = parse_token(&xml::unescape(ids[0])).unwrap();
        assert_eq!((u.backend_id.as_str(), u.header.is_none()), ("2~a&b", true));
        let next = xml::value(&out, "NextUploadIdMarker").unwrap();
        assert_eq!(parse_token(next).unwrap().backend_id, "2~b");
        assert!(out.contains("<UploadIdMarker></UploadIdMarker>"));
    }

    #[test]
    fn an_empty_complete_etag_is_found_and_replaced() {
        let xml = "<R><Bucket>b</Bucket><ETag></ETag></R>";
        assert_eq!(
            replace_element(xml, "ETag", "\"abc-2\""),
            "<R><Bucket>b</Bucket><ETag>&quot;abc-2&quot;</ETag></R>"
        );
        assert_eq!(replace_element("<R/>", "ETag", "x"), "<R/>");
    }
}
