//! PutObject, GetObject and HeadObject on encrypted objects: the body is sealed segment by
//! segment on its way to the backend and opened segment by segment on its way back, and
//! every size the client sees is a plaintext size.

use super::backend::read_small_body;
use super::body::{BodyError, ClientBody};
use super::error::{integrity_failure, report_integrity_failure};
use super::io::Conn;
use super::respond::{
    OPENED_CHECKSUM, SSE_DSSE, forward_error, is_twofold_metadata, object_headers, opened_checksum,
    plain_object_headers, wants_checksum, write_unsatisfiable,
};
use super::{Failure, Outcome, Request, backend_path, backend_query, write_response};
use crate::config::UnencryptedObjects;
use crate::envelope::header::Header;
use crate::envelope::layout::{
    Layout, PlainRange, SEGMENT_OVERHEAD_BYTES, plain_len, segment_count, segment_plain_len,
    stored_len,
};
use crate::envelope::{ObjectName, SINGLE_PART_NUMBER, SegmentCipher};
use crate::envelope::{checksum_record, record};
use crate::http::ResponseHead;
use crate::objmeta;
use crate::s3::{RangeRequest, S3Code, S3Error, parse_range, xml};

/// Largest single PUT, as in S3.
pub const PUT_OBJECT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Metadata entry recording the client's verified checksum (`ALGORITHM:BASE64`).
pub const CHECKSUM_METADATA: &str = "x-amz-meta-twofold-checksum";
/// Largest stored body of a PutObject with a trailer checksum that is held in memory until
/// the trailer verified, so that the one backend PUT carries the checksum in its metadata
/// (just under four 64 KiB segments of plaintext). Larger bodies are streamed and the checksum is recorded
/// afterwards by a copy of the object onto itself (see [`attach_checksum`]).
pub const HELD_PUT_STORED_BYTES_MAX: u64 = 256 * 1024;

const OVERHEAD: usize = SEGMENT_OVERHEAD_BYTES as usize;

/// Request headers passed on to the backend for a PUT (besides `x-amz-meta-*`).
const PUT_FORWARDED: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-language",
    "expires",
    "x-amz-storage-class",
    "x-amz-tagging",
    "x-amz-acl",
    "x-amz-grant-full-control",
    "x-amz-grant-read",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-website-redirect-location",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "if-match",
    "if-none-match",
];

/// Request headers passed on for GET and HEAD.
const GET_FORWARDED: &[&str] = &[
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Checks the headers of a request that creates an object (PutObject,
/// CreateMultipartUpload) and returns those passed on to the backend.
pub(crate) fn check_upload_headers(ctx: &Request<'_>) -> Result<Vec<(String, Vec<u8>)>, S3Error> {
    check_sse_request(ctx)?;
    if ctx.head.headers.iter().any(|(n, _)| is_twofold_metadata(n)) {
        return Err(S3Error::invalid_argument(
            "x-amz-meta-twofold* metadata is reserved for the gateway",
        ));
    }
    Ok(ctx
        .head
        .headers
        .iter()
        .filter(|(n, _)| PUT_FORWARDED.contains(&n.as_str()) || n.starts_with("x-amz-meta-"))
        .cloned()
        .collect())
}

/// Checks the server-side-encryption request headers: DSSE or nothing is accepted (SSE-S3
/// and SSE-KMS without a key are honoured by doing more); a customer key or a named KMS key
/// cannot be, and is refused.
fn check_sse_request(ctx: &Request<'_>) -> Result<(), S3Error> {
    let h = ctx.head;
    if h.header("x-amz-server-side-encryption-customer-algorithm")
        .is_some()
        || h.header("x-amz-server-side-encryption-customer-key")
            .is_some()
    {
        return Err(S3Error::invalid_argument(
            "Twofold encrypts with its own dual-layer keys; SSE-C (customer-provided keys) is not supported",
        ));
    }
    if h.header("x-amz-server-side-encryption-aws-kms-key-id")
        .is_some()
    {
        return Err(S3Error::invalid_argument(
            "Twofold encrypts every object with its own two custodians' keys; a KMS key id cannot be honoured",
        ));
    }
    match h.header_str("x-amz-server-side-encryption") {
        None | Some("aws:kms:dsse" | "AES256" | "aws:kms") => Ok(()),
        Some(other) => Err(S3Error::invalid_argument(format!(
            "x-amz-server-side-encryption {other:?} is not supported; use aws:kms:dsse"
        ))),
    }
}

/// PutObject.
pub(crate) async fn put(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Err(Failure::close(S3Error::invalid_request(
            "PutObject needs a bucket and a key",
        )));
    };
    let fail = Failure::close;
    let mut headers = check_upload_headers(ctx).map_err(fail)?;
    let mut body = ClientBody::new(ctx.head, ctx.verified).map_err(fail)?;
    let plain = body.len();
    if plain > PUT_OBJECT_BYTES_MAX {
        return Err(fail(S3Error::entity_too_large()));
    }
    let name = ObjectName { bucket, key };
    let keyring = &ctx.core.keyring;
    // Before the body is read: the connection's state closes it after a failure here.
    let (header, keys) = keyring.seal_new(name, None).await?;
    let seg = header.segment_size;
    let cipher = SegmentCipher::new(&header, &keys, SINGLE_PART_NUMBER)
        .map_err(|_| fail(S3Error::internal_error()))?;
    let record_cipher =
        checksum_record::cipher(&header, &keys).map_err(|_| fail(S3Error::internal_error()))?;
    drop(keys);

    headers.push((
        objmeta::HTTP_HEADER.into(),
        objmeta::encode(&header).into_bytes(),
    ));
    // A checksum sent as a header is known now; it is only stored if it verifies, since a
    // mismatch aborts the backend write below. One sent as a trailer is known only at the
    // end of the body: it is stored by holding a small body back, or by a copy afterwards.
    let trailer = body.trailer_checksum_algorithm();
    if trailer.is_none() {
        for (n, v) in &ctx.head.headers {
            // A value that is no digest is not recorded: the body check refuses it anyway.
            if let Some(alg) = crate::checksum::ChecksumAlgorithm::from_header_name(n)
                && let Some(sealed) =
                    checksum_record::seal_base64(&record_cipher, alg, &String::from_utf8_lossy(v))
            {
                headers.push((CHECKSUM_METADATA.into(), sealed.into_bytes()));
            }
        }
    }
    if ctx.head.expects_continue() {
        let (res, _) = conn
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        res.map_err(|_| fail(S3Error::incomplete_body()))?;
    }
    let path = backend_path(Some(bucket), Some(key));
    let stored = stored_len(plain, seg);
    let held = trailer.is_some() && stored <= HELD_PUT_STORED_BYTES_MAX;
    let (resp, resp_body, checksum) = if held {
        seal_held(
            ctx,
            conn,
            &mut body,
            (&cipher, &record_cipher),
            &path,
            headers.clone(),
        )
        .await?
    } else {
        let ex = ctx
            .core
            .backend
            .send_head("PUT", &path, None, headers.clone(), Some(stored))
            .await?;
        seal_upload(ctx, conn, &mut body, &cipher, ex).await?
    };
    if resp.status != 200 {
        return forward_error(conn, &resp, &resp_body, ctx.rid).await;
    }
    let mut etag = resp.header("etag").map(<[u8]>::to_vec);
    let mut version = resp.header("x-amz-version-id").map(<[u8]>::to_vec);
    if !held
        && trailer.is_some()
        && let Some(c) = &checksum
        && let Some(put_etag) = &etag
    {
        match attach_checksum(ctx, &path, &headers, &record_cipher, c, put_etag).await {
            Ok((new_etag, new_version)) => {
                forget_version(ctx, &path, version.as_deref(), new_version.as_deref()).await;
                etag = new_etag.or(etag);
                version = new_version.or(version);
            }
            // The object is stored and verified: the client's PUT succeeded. Only the
            // checksum is missing from it, as on any object stored without one.
            Err(reason) => tracing::warn!(
                resource = %format_args!("/{bucket}/{key}"),
                algorithm = %c.algorithm,
                reason = %reason,
                "object stored, but its verified checksum could not be recorded with it"
            ),
        }
    }
    let mut out = ResponseHead::new(200);
    if let Some(v) = etag {
        out.push_header("etag", crate::s3::etag::header_to_client(&v));
    }
    if let Some(v) = version {
        out.push_header("x-amz-version-id", v);
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

/// PUT request headers that are not carried into the copy that records a trailer
/// checksum: the copy leaves the tags as they are and has its own precondition.
const ATTACH_DROPPED: &[&str] = &["x-amz-tagging", "if-match", "if-none-match"];

/// Records a verified trailer checksum with an object just stored by a streamed PUT: a
/// server-side copy of the object onto itself with `x-amz-metadata-directive: REPLACE`,
/// carrying the PUT's own metadata (so the envelope header, whose wrapped keys are bound
/// to bucket and key, stays valid as it is) plus the checksum. The copy applies only to
/// the version this PUT wrote (`x-amz-copy-source-if-match` with its ETag): if another
/// writer replaced the object meanwhile, nothing is changed. Returns the copy's ETag and
/// version id.
async fn attach_checksum(
    ctx: &Request<'_>,
    path: &str,
    put_headers: &[(String, Vec<u8>)],
    record_cipher: &SegmentCipher,
    checksum: &super::body::ClientChecksum,
    put_etag: &[u8],
) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String> {
    let sealed = checksum_record::seal_base64(record_cipher, checksum.algorithm, &checksum.value)
        .ok_or("the checksum could not be sealed")?;
    let mut headers: Vec<(String, Vec<u8>)> = put_headers
        .iter()
        .filter(|(n, _)| !ATTACH_DROPPED.contains(&n.as_str()))
        .cloned()
        .collect();
    headers.push((CHECKSUM_METADATA.into(), sealed.into_bytes()));
    headers.push(("x-amz-copy-source".into(), path.as_bytes().to_vec()));
    headers.push(("x-amz-copy-source-if-match".into(), put_etag.to_vec()));
    headers.push(("x-amz-metadata-directive".into(), b"REPLACE".to_vec()));
    let (resp, body) = ctx
        .core
        .backend
        .simple("PUT", path, None, headers, Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&body);
    // S3 may answer a copy 200 and put an error document in the body.
    if resp.status != 200 || text.contains("<Error>") {
        let code = xml::value(&text, "Code").unwrap_or("no error code");
        return Err(format!("the backend answered {} ({code})", resp.status));
    }
    let etag = xml::value(&text, "ETag").map(|e| xml::unescape(e).into_bytes());
    let version = resp.header("x-amz-version-id").map(<[u8]>::to_vec);
    Ok((etag, version))
}

/// After the gateway rewrote an object it had just written (to record its checksum or
/// layout), deletes the version the first write made, so that a versioned bucket shows
/// one version per client write. Nothing is done on an unversioned bucket (no version id,
/// or `null`, which the rewrite replaced) or when the rewrite kept the version. A failure
/// is logged: the object is stored and readable either way, with one extra version.
pub(crate) async fn forget_version(
    ctx: &Request<'_>,
    path: &str,
    first: Option<&[u8]>,
    rewritten: Option<&[u8]>,
) {
    let Some(first) = first.and_then(|v| std::str::from_utf8(v).ok()) else {
        return;
    };
    if first == "null" || rewritten == Some(first.as_bytes()) {
        return;
    }
    let q = format!("versionId={}", super::encode(first, false));
    let outcome = ctx
        .core
        .backend
        .simple("DELETE", path, Some(&q), Vec::new(), Vec::new())
        .await;
    match outcome {
        Ok((resp, _)) if (200..300).contains(&resp.status) => {}
        Ok((resp, _)) => tracing::warn!(
            path,
            version = first,
            status = resp.status,
            "the version the gateway's rewrite replaced could not be deleted"
        ),
        Err(e) => tracing::warn!(
            path,
            version = first,
            error = %e,
            "the version the gateway's rewrite replaced could not be deleted"
        ),
    }
}

/// Seals a small body whose checksum comes as a trailer wholly in memory (at most
/// [`HELD_PUT_STORED_BYTES_MAX`]), and sends the backend PUT only once every digest of
/// the client's body verified, with the checksum in its metadata. Nothing reaches the
/// backend if the body fails.
async fn seal_held(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    (cipher, record_cipher): (&SegmentCipher, &SegmentCipher),
    path: &str,
    mut headers: Vec<(String, Vec<u8>)>,
) -> Result<(ResponseHead, Vec<u8>, Option<super::body::ClientChecksum>), Failure> {
    let plain = body.len();
    let seg = cipher.segment_size();
    let stored = stored_len(plain, seg);
    if stored > HELD_PUT_STORED_BYTES_MAX {
        return Err(Failure::close(S3Error::internal_error()));
    }
    // In range: at most HELD_PUT_STORED_BYTES_MAX, checked just above.
    let stored = stored as usize;
    let n = segment_count(plain, seg);
    let mut buf = vec![0u8; stored];
    let mut at = 0;
    let mut checksum = None;
    for i in 0..n {
        let len = segment_plain_len(plain, i, seg) as usize;
        if at + len + OVERHEAD > stored {
            return Err(Failure::close(S3Error::internal_error()));
        }
        let (res, b) = body.read_exact(conn, buf, at..at + len).await;
        buf = b;
        res.map_err(|e| body_failure(&e))?;
        let last = i + 1 == n;
        if last {
            checksum = body.finish(conn).await.map_err(|e| body_failure(&e))?;
        }
        at += cipher
            .seal(i, last, &mut buf[at..], len)
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
    }
    if at != stored {
        return Err(Failure::close(S3Error::internal_error()));
    }
    if let Some(c) = &checksum {
        let sealed = checksum_record::seal_base64(record_cipher, c.algorithm, &c.value)
            .ok_or_else(|| Failure::close(S3Error::internal_error()))?;
        headers.push((CHECKSUM_METADATA.into(), sealed.into_bytes()));
    }
    let (resp, resp_body) = ctx
        .core
        .backend
        .simple("PUT", path, None, headers, buf)
        .await?;
    Ok((resp, resp_body, checksum))
}

/// Where [`seal_segments`] puts the sealed segments.
pub(crate) enum SealSink {
    /// The body of a backend request whose head has been sent.
    Backend(super::backend::Exchange),
    /// Nowhere: only their MD5 is taken (a part sent again, compared with the stored one).
    Md5(md5::Md5),
}

/// Reads a client body segment by segment, seals each in place and hands it to `sink`;
/// the final segment is sealed only after every digest of the client's body has verified.
async fn seal_segments(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    cipher: &SegmentCipher,
    sink: &mut SealSink,
) -> Result<Option<super::body::ClientChecksum>, Failure> {
    let plain = body.len();
    let seg = cipher.segment_size();
    let n = segment_count(plain, seg);
    let mut buf = ctx.core.buffers.take(seg.bytes_usize() + OVERHEAD);
    let mut checksum = None;
    for i in 0..n {
        let len = segment_plain_len(plain, i, seg) as usize;
        let (res, b) = body.read_exact(conn, buf, 0..len).await;
        buf = b;
        res.map_err(|e| body_failure(&e))?;
        let last = i + 1 == n;
        if last {
            checksum = body.finish(conn).await.map_err(|e| body_failure(&e))?;
        }
        let sealed = cipher
            .seal(i, last, &mut buf, len)
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
        match sink {
            SealSink::Backend(ex) => {
                let (res, b) = ex.conn.write_range(buf, 0..sealed).await;
                buf = b;
                res.map_err(|e| Failure::from(super::backend::BackendError::from(e)))?;
            }
            SealSink::Md5(m) => md5::Digest::update(m, &buf[..sealed]),
        }
    }
    ctx.core.buffers.give(buf);
    Ok(checksum)
}

/// Streams a client body through `cipher` into a backend request whose head has been sent
/// (see [`seal_segments`]), then reads the backend's answer. On any failure the backend
/// connection is dropped mid-body, so the backend stores nothing.
pub(crate) async fn seal_upload(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    cipher: &SegmentCipher,
    ex: super::backend::Exchange,
) -> Result<(ResponseHead, Vec<u8>, Option<super::body::ClientChecksum>), Failure> {
    let mut sink = SealSink::Backend(ex);
    let checksum = seal_segments(ctx, conn, body, cipher, &mut sink).await?;
    let SealSink::Backend(mut ex) = sink else {
        return Err(Failure::close(S3Error::internal_error()));
    };
    let resp = ex
        .conn
        .read_response_head()
        .await
        .map_err(|e| Failure::from(super::backend::BackendError::from(e)))?;
    let (resp_body, reusable) = read_small_body(&mut ex.conn, &resp, false, 1 << 20).await?;
    if reusable && resp.keep_alive() {
        ctx.core.backend.release(ex.conn);
    }
    Ok((resp, resp_body, checksum))
}

/// Reads and seals a client body as [`seal_upload`] does, sending nothing: the MD5 of
/// the sealed body, and the client's verified checksum.
pub(crate) async fn seal_to_md5(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    cipher: &SegmentCipher,
) -> Result<([u8; 16], Option<super::body::ClientChecksum>), Failure> {
    let mut sink = SealSink::Md5(<md5::Md5 as md5::Digest>::new());
    let checksum = seal_segments(ctx, conn, body, cipher, &mut sink).await?;
    let SealSink::Md5(m) = sink else {
        return Err(Failure::close(S3Error::internal_error()));
    };
    Ok((md5::Digest::finalize(m).into(), checksum))
}

fn body_failure(e: &BodyError) -> Failure {
    Failure::close(e.to_s3())
}

/// The header of a backend object, from its response's metadata.
fn object_header(resp: &ResponseHead) -> Result<Option<Header>, S3Error> {
    match resp.header_str(objmeta::HTTP_HEADER) {
        None => Ok(None),
        Some(v) => objmeta::decode(v).map(Some).map_err(|e| {
            S3Error::internal_error()
                .with_detail(format!("The object's Twofold metadata is damaged: {e}"))
        }),
    }
}

/// Opens the sealed checksum record of the object whose header is `header` and whose
/// backend response head is `resp`, and leaves the checksum in `resp` for
/// [`object_headers`]. A record that does not open under the object's keys is an
/// integrity failure: the request fails, as for a damaged layout record. Paths that open
/// the keys anyway (a GET's body) use [`reveal_checksum_with`] instead.
pub(crate) async fn reveal_checksum(
    ctx: &Request<'_>,
    header: &Header,
    resp: &mut ResponseHead,
) -> Result<(), Failure> {
    if resp.header(CHECKSUM_METADATA).is_none() || resp.header(OPENED_CHECKSUM).is_some() {
        return Ok(());
    }
    let keys = request_keys(ctx, header).await?;
    reveal_checksum_with(ctx, header, &keys, resp)
}

/// The data keys of the request's object, whose header is `header`.
async fn request_keys(
    ctx: &Request<'_>,
    header: &Header,
) -> Result<crate::envelope::DataKeys, Failure> {
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Err(Failure::keep(S3Error::internal_error()));
    };
    ctx.core
        .keyring
        .open(header, ObjectName { bucket, key })
        .await
        .map_err(Failure::from)
}

/// [`reveal_checksum`] with the object's keys at hand.
fn reveal_checksum_with(
    ctx: &Request<'_>,
    header: &Header,
    keys: &crate::envelope::DataKeys,
    resp: &mut ResponseHead,
) -> Result<(), Failure> {
    let Some(value) = resp.header_str(CHECKSUM_METADATA) else {
        return Ok(());
    };
    let cipher = checksum_record::cipher(header, keys)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    match checksum_record::open(&cipher, value.trim()) {
        Ok(c) => {
            let opened = format!("{}:{}:{}", c.algorithm.name(), c.type_name(), c.value());
            resp.push_header(OPENED_CHECKSUM, opened.into_bytes());
            Ok(())
        }
        Err(e) => {
            report_integrity_failure(ctx, "checksum_record", &e);
            Err(Failure::integrity(format!(
                "The stored object failed its integrity check: {e}"
            )))
        }
    }
}

/// GetObject (`head_only` = false) and HeadObject.
pub(crate) async fn get(
    ctx: &Request<'_>,
    conn: &mut Conn,
    head_only: bool,
) -> Result<Outcome, Failure> {
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Err(Failure::keep(S3Error::invalid_request(
            "a bucket and a key are needed",
        )));
    };
    if ctx
        .head
        .header("x-amz-server-side-encryption-customer-algorithm")
        .is_some()
    {
        return Err(Failure::keep(S3Error::invalid_argument(
            "Twofold objects are not encrypted with customer keys (SSE-C)",
        )));
    }
    let path = backend_path(Some(bucket), Some(key));
    let query = backend_query(ctx.query, &["partNumber"]);
    let fwd: Vec<(String, Vec<u8>)> = ctx
        .head
        .headers
        .iter()
        .filter(|(n, _)| GET_FORWARDED.contains(&n.as_str()))
        .cloned()
        .collect();
    let range = match ctx.head.header("range") {
        Some(v) if !head_only => match parse_range(v) {
            RangeRequest::Single(r) => Some(r),
            _ => None,
        },
        _ => None,
    };
    let part_number = match ctx.query.get("partNumber") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    Failure::keep(S3Error::invalid_argument(
                        "Part number must be an integer between 1 and 10000, inclusive",
                    ))
                })?,
        ),
    };
    // A ranged GET of a single-part object this core has seen: the stored size and header
    // it remembers give the ciphertext range, and the GET's own answer proves they still
    // hold (else the HEAD below is made as for any other).
    let seen_key = || {
        (
            bucket.clone(),
            key.clone(),
            query.clone().unwrap_or_default(),
        )
    };
    if let (Some(r), None) = (&range, part_number) {
        let seen = ctx.core.seen_objects.borrow().get(&seen_key()).cloned();
        if let Some(seen) = seen {
            match ranged_get_seen(ctx, conn, &path, query.as_deref(), fwd.clone(), &seen, r).await?
            {
                Some(outcome) => return Ok(outcome),
                None => {
                    ctx.core.seen_objects.borrow_mut().remove(&seen_key());
                }
            }
        }
    }
    // HEAD (and any ranged GET, which needs the size and segment size first).
    if head_only || range.is_some() || part_number.is_some() {
        let (resp, body) = ctx
            .core
            .backend
            .simple("HEAD", &path, query.as_deref(), fwd.clone(), Vec::new())
            .await?;
        if resp.status != 200 {
            return forward_error(conn, &resp, &body, ctx.rid).await;
        }
        let mut resp = resp;
        let stored = resp.content_length().ok().flatten().unwrap_or(0);
        let Some(header) = unencrypted_check(ctx, &resp)? else {
            // A pass-through object: its size is what it is.
            passthrough_read(ctx, if head_only { "HeadObject" } else { "GetObject" });
            let mut out = ResponseHead::new(200);
            plain_object_headers(ctx, &resp, &mut out);
            out.push_header("content-length", stored.to_string().into_bytes());
            if head_only {
                write_response(conn, &out, &[])
                    .await
                    .map_err(|_| Failure::close(S3Error::internal_error()))?;
                return Ok(Outcome::KeepAlive);
            }
            let mut fwd = fwd;
            if let Some(r) = ctx.head.header("range") {
                fwd.push(("range".into(), r.to_vec()));
            }
            return stream_plain_get(ctx, conn, &path, query.as_deref(), fwd).await;
        };
        let marked = header.multipart && record::is_marked(stored, header.segment_size);
        if wants_checksum(ctx) && (head_only || marked) {
            reveal_checksum(ctx, &header, &mut resp).await?;
        }
        if marked {
            return super::unaligned::serve(
                ctx,
                conn,
                &path,
                query.as_deref(),
                fwd,
                &header,
                &resp,
                head_only,
                part_number,
            )
            .await;
        }
        let size = plain_len(stored, header.segment_size).map_err(|_| {
            Failure::keep(
                S3Error::internal_error()
                    .with_detail("The stored object's length is not valid Twofold ciphertext"),
            )
        })?;
        if let Some(k) = part_number {
            let (first, last, count) =
                part_bounds(ctx, &path, query.as_deref(), &header, size, &resp, k).await?;
            let len = if size == 0 { 0 } else { last - first + 1 };
            if head_only || size == 0 {
                let mut out = ResponseHead::new(if size == 0 { 200 } else { 206 });
                object_headers(ctx, &resp, &mut out);
                out.push_header("x-amz-mp-parts-count", count.to_string().into_bytes());
                if size > 0 {
                    out.push_header(
                        "content-range",
                        format!("bytes {first}-{last}/{size}").into_bytes(),
                    );
                }
                out.push_header("content-length", len.to_string().into_bytes());
                write_response(conn, &out, &[])
                    .await
                    .map_err(|_| Failure::close(S3Error::internal_error()))?;
                if head_only || size == 0 {
                    return Ok(Outcome::KeepAlive);
                }
            }
            let mut resp = resp.clone();
            resp.push_header("x-amz-mp-parts-count", count.to_string().into_bytes());
            return stream_get(
                ctx,
                conn,
                &path,
                query.as_deref(),
                fwd,
                &header,
                size,
                Some(PlainRange { first, last }),
                &resp,
            )
            .await;
        }
        if head_only {
            let mut out = ResponseHead::new(200);
            object_headers(ctx, &resp, &mut out);
            out.push_header("content-length", size.to_string().into_bytes());
            write_response(conn, &out, &[])
                .await
                .map_err(|_| Failure::close(S3Error::internal_error()))?;
            return Ok(Outcome::KeepAlive);
        }
        let Some(r) = range else {
            return Err(Failure::keep(S3Error::internal_error()));
        };
        if !header.multipart
            && let Some(etag) = resp.header("etag")
        {
            let mut seen = ctx.core.seen_objects.borrow_mut();
            if seen.len() >= super::SEEN_OBJECTS_MAX {
                seen.clear();
            }
            seen.insert(
                seen_key(),
                SeenObject {
                    etag: etag.to_vec(),
                    stored,
                    header: header.clone(),
                },
            );
        }
        let resolved = match r.resolve(size) {
            Ok(rr) => rr,
            Err(_) => return write_unsatisfiable(ctx, conn, size).await,
        };
        let plain = PlainRange {
            first: resolved.first,
            last: resolved.last,
        };
        return stream_get(
            ctx,
            conn,
            &path,
            query.as_deref(),
            fwd,
            &header,
            size,
            Some(plain),
            &resp,
        )
        .await;
    }
    // A whole GET: one backend request; the header comes with the response.
    stream_whole_get(ctx, conn, &path, query.as_deref(), fwd).await
}

/// What a core remembers of a single-part object after a ranged GET of it.
#[derive(Debug, Clone)]
pub(crate) struct SeenObject {
    etag: Vec<u8>,
    stored: u64,
    header: Header,
}

/// A ranged GET of an object seen before, without a HEAD: `Ok(None)` when the object is no
/// longer what was seen (another ETag, size or header, or a backend that did not answer
/// the range), and the caller then serves the request the usual way.
async fn ranged_get_seen(
    ctx: &Request<'_>,
    conn: &mut Conn,
    path: &str,
    query: Option<&str>,
    mut fwd: Vec<(String, Vec<u8>)>,
    seen: &SeenObject,
    r: &crate::s3::ByteRange,
) -> Result<Option<Outcome>, Failure> {
    let seg = seen.header.segment_size;
    let Ok(size) = plain_len(seen.stored, seg) else {
        return Ok(None);
    };
    // An unsatisfiable range is answered (416) by the usual way, with the size it finds.
    let Ok(resolved) = r.resolve(size) else {
        return Ok(None);
    };
    let plain = PlainRange {
        first: resolved.first,
        last: resolved.last,
    };
    let Ok(slices) = Layout::single(size, seg).map_range(plain) else {
        return Ok(None);
    };
    let Some(slice) = slices.first() else {
        return Ok(None);
    };
    let stored_first = slice.first_segment * seg.stored_bytes();
    fwd.push((
        "range".into(),
        format!("bytes={stored_first}-{}", slice.stored_last).into_bytes(),
    ));
    let (mut backend_conn, resp) = ctx.core.backend.get(path, query, fwd).await?;
    match resp.status {
        206 => {}
        // Not the object that was seen, or a backend that ignored the range.
        200 | 416 => return Ok(None),
        _ => {
            // Gone, or a condition of the client's that failed: the backend's answer.
            let (body, _) = read_small_body(&mut backend_conn, &resp, false, 1 << 20).await?;
            return forward_error(conn, &resp, &body, ctx.rid).await.map(Some);
        }
    }
    let total = resp
        .header_str("content-range")
        .and_then(|v| v.rsplit_once('/'))
        .and_then(|(_, t)| t.trim().parse::<u64>().ok());
    let same = resp.header("etag") == Some(seen.etag.as_slice())
        && total == Some(seen.stored)
        && object_header(&resp).ok().flatten().as_ref() == Some(&seen.header);
    if !same {
        return Ok(None);
    }
    open_and_stream(
        ctx,
        conn,
        backend_conn,
        &seen.header,
        size,
        Some(plain),
        &resp,
        slice.first_segment,
        None,
    )
    .await
    .map(Some)
}

fn unencrypted_check(ctx: &Request<'_>, resp: &ResponseHead) -> Result<Option<Header>, Failure> {
    match object_header(resp).map_err(Failure::keep)? {
        Some(h) => Ok(Some(h)),
        None => match ctx.core.settings.unencrypted_objects {
            UnencryptedObjects::PassThrough => Ok(None),
            UnencryptedObjects::Reject => Err(Failure::keep(
                S3Error::new(
                    403,
                    S3Code::InvalidObjectState,
                    "The object was not written through Twofold (it has no x-amz-meta-twofold metadata) and this gateway is configured to reject such objects",
                )
                .with_resource(ctx.address.resource()),
            )),
        },
    }
}

/// Counts and logs a read of an object Twofold did not write, served as it is.
fn passthrough_read(ctx: &Request<'_>, operation: &'static str) {
    metrics::counter!(crate::telemetry::PASSTHROUGH_READS_TOTAL, "operation" => operation)
        .increment(1);
    tracing::info!(
        target: "twofold::passthrough",
        id = %ctx.rid,
        operation,
        bucket = ctx.address.bucket.as_deref().unwrap_or(""),
        key = ctx.address.key.as_deref().unwrap_or(""),
        "served an object Twofold did not write, unencrypted, as it is"
    );
}

async fn stream_whole_get(
    ctx: &Request<'_>,
    conn: &mut Conn,
    path: &str,
    query: Option<&str>,
    fwd: Vec<(String, Vec<u8>)>,
) -> Result<Outcome, Failure> {
    let (mut backend_conn, resp) = ctx.core.backend.get(path, query, fwd.clone()).await?;
    if resp.status != 200 {
        let (body, reusable) = read_small_body(&mut backend_conn, &resp, false, 1 << 20).await?;
        if reusable && resp.keep_alive() {
            ctx.core.backend.release(backend_conn);
        }
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let stored = resp.content_length().ok().flatten().ok_or_else(|| {
        Failure::from(super::backend::BackendError::Protocol(
            "GET response without Content-Length".into(),
        ))
    })?;
    let header = match unencrypted_check(ctx, &resp)? {
        Some(h) => h,
        None => {
            passthrough_read(ctx, "GetObject");
            let mut out = ResponseHead::new(200);
            plain_object_headers(ctx, &resp, &mut out);
            out.push_header("content-length", stored.to_string().into_bytes());
            return relay_raw(ctx, conn, backend_conn, out, stored).await;
        }
    };
    if header.multipart && record::is_marked(stored, header.segment_size) {
        // The layout record is needed before the body: read it again as a ranged GET.
        drop(backend_conn);
        let mut resp = resp;
        if wants_checksum(ctx) {
            reveal_checksum(ctx, &header, &mut resp).await?;
        }
        return super::unaligned::serve(ctx, conn, path, query, fwd, &header, &resp, false, None)
            .await;
    }
    let size = plain_len(stored, header.segment_size).map_err(|_| {
        Failure::close(
            S3Error::internal_error()
                .with_detail("The stored object's length is not valid Twofold ciphertext"),
        )
    })?;
    open_and_stream(ctx, conn, backend_conn, &header, size, None, &resp, 0, None).await
}

#[allow(clippy::too_many_arguments)]
async fn stream_get(
    ctx: &Request<'_>,
    conn: &mut Conn,
    path: &str,
    query: Option<&str>,
    fwd: Vec<(String, Vec<u8>)>,
    header: &Header,
    size: u64,
    range: Option<PlainRange>,
    meta: &ResponseHead,
) -> Result<Outcome, Failure> {
    let layout = Layout::single(size, header.segment_size);
    let slices = match range {
        Some(r) => layout
            .map_range(r)
            .map_err(|_| Failure::keep(S3Error::invalid_range()))?,
        None => Vec::new(),
    };
    let (range_first_segment, stored_last) = match slices.first() {
        Some(s) => (s.first_segment, s.stored_last),
        None => (0, layout.stored_len().saturating_sub(1)),
    };
    // Where to start reading, and (for a multipart object) in which part. A multipart
    // object's parts are found by probing for the part size; if the parts turn out not to
    // be of one size, the read starts again from the beginning (docs/format.md).
    let mut guess = None;
    if header.multipart
        && range_first_segment > 0
        && let Some(per_part) = segments_per_part(ctx, path, query, header, size, meta).await?
        && let Ok(part) = u32::try_from(range_first_segment / per_part + 1)
    {
        guess = Some((part, range_first_segment % per_part));
    }
    let attempts: Vec<(u64, Option<(u32, u64)>)> = match (header.multipart, guess) {
        (false, _) => vec![(range_first_segment, None)],
        (true, Some(g)) => vec![(range_first_segment, Some(g)), (0, None)],
        (true, None) => vec![(0, None)],
    };
    let tries = attempts.len();
    for (attempt, (first_segment, start)) in attempts.into_iter().enumerate() {
        let stored_first = first_segment * header.segment_size.stored_bytes();
        let mut fwd = fwd.clone();
        fwd.push((
            "range".into(),
            format!("bytes={stored_first}-{stored_last}").into_bytes(),
        ));
        let (mut backend_conn, resp) = ctx.core.backend.get(path, query, fwd).await?;
        if resp.status != 206 && resp.status != 200 {
            let (body, _) = read_small_body(&mut backend_conn, &resp, false, 1 << 20).await?;
            return forward_error(conn, &resp, &body, ctx.rid).await;
        }
        // The object must not have changed between the HEAD and this GET.
        if resp.header("etag") != meta.header("etag") {
            return Err(Failure::keep(S3Error::service_unavailable().with_detail(
                "The object changed while it was being read; retry the request",
            )));
        }
        let result = open_and_stream(
            ctx,
            conn,
            backend_conn,
            header,
            size,
            range,
            meta,
            first_segment,
            start,
        )
        .await;
        // Before the response head went out, a failure with a guessed part position means
        // the guess was wrong: read again from the start.
        match result {
            Err(_) if attempt + 1 < tries => continue,
            other => return other,
        }
    }
    Err(Failure::keep(S3Error::internal_error()))
}

/// The plaintext bytes `first..=last` of part `k`, and the object's part count. A
/// single-part object has one part, the whole object. For a multipart object the part size
/// comes from [`segments_per_part`]; the guessed bounds are then checked by opening the
/// part's first segment as segment 0 of part `k` and its last one as final of part `k`.
#[allow(clippy::too_many_arguments)]
async fn part_bounds(
    ctx: &Request<'_>,
    path: &str,
    query: Option<&str>,
    header: &Header,
    size: u64,
    meta: &ResponseHead,
    k: u32,
) -> Result<(u64, u64, u32), Failure> {
    let not_satisfiable = || {
        Failure::keep(S3Error::new(
            416,
            S3Code::InvalidPartNumber,
            "The requested partnumber is not satisfiable",
        ))
    };
    if !header.multipart {
        return if k == 1 {
            Ok((0, size.saturating_sub(1), 1))
        } else {
            Err(not_satisfiable())
        };
    }
    let count = meta
        .header_str("etag")
        .and_then(|e| e.trim_matches('"').rsplit_once('-'))
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .unwrap_or(1);
    if k > count {
        return Err(not_satisfiable());
    }
    let unequal = || {
        Failure::keep(S3Error::not_implemented().with_message(
            "This object's parts are not all of one size; reading it by part number is not supported yet (use a Range)",
        ))
    };
    let per_part = segments_per_part(ctx, path, query, header, size, meta)
        .await?
        .ok_or_else(unequal)?;
    let seg = header.segment_size;
    let n = segment_count(size, seg);
    let g0 = u64::from(k - 1) * per_part;
    let g1 = (u64::from(k) * per_part).min(n) - 1;
    if g0 >= n || (k == count && g1 != n - 1) {
        return Err(unequal());
    }
    let keys = request_keys(ctx, header).await?;
    let cipher = SegmentCipher::new(header, &keys, k)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let mut out = vec![0u8; seg.bytes_usize() + OVERHEAD];
    for (g, index, must_be_final) in [(g0, 0, g0 == g1), (g1, g1 - g0, true)] {
        let plain = segment_plain_len(size, g, seg);
        let start = g * seg.stored_bytes();
        let end = start + plain + SEGMENT_OVERHEAD_BYTES - 1;
        let fwd = vec![(
            "range".to_owned(),
            format!("bytes={start}-{end}").into_bytes(),
        )];
        let (resp, body) = ctx
            .core
            .backend
            .simple("GET", path, query, fwd, Vec::new())
            .await?;
        if resp.status != 206 {
            return Err(unequal());
        }
        let ok = cipher.open_to(index, true, &body, &mut out).is_ok()
            || (!must_be_final && cipher.open_to(index, false, &body, &mut out).is_ok());
        if !ok {
            return Err(unequal());
        }
    }
    let first = g0 * seg.bytes();
    let last = ((g1 + 1) * seg.bytes()).min(size) - 1;
    Ok((first, last, count))
}

/// Most part sizes remembered per core.
const PART_SIZE_CACHE_ENTRIES: usize = 1024;

/// Segments per part of a multipart object, assuming all parts but the last are of one
/// size (the way every common client uploads): found by a binary search for the segment
/// that ends part 1 (it opens as final of part 1; earlier ones open as non-final; later
/// ones do not open under part 1's keys). About log2(segments) small ranged reads, once
/// per object and core.
async fn segments_per_part(
    ctx: &Request<'_>,
    path: &str,
    query: Option<&str>,
    header: &Header,
    size: u64,
    meta: &ResponseHead,
) -> Result<Option<u64>, Failure> {
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Ok(None);
    };
    let etag = meta.header_str("etag").unwrap_or("").to_owned();
    let cache_key = (bucket.clone(), key.clone(), etag.clone());
    if let Some(m) = ctx.core.part_sizes.borrow().get(&cache_key) {
        return Ok(Some(*m));
    }
    let keys = request_keys(ctx, header).await?;
    let cipher = SegmentCipher::new(header, &keys, 1)
        .map_err(|_| Failure::keep(S3Error::internal_error()))?;
    let seg = header.segment_size;
    let n = segment_count(size, seg);
    let mut out = vec![0u8; seg.bytes_usize() + OVERHEAD];
    let (mut lo, mut hi) = (0u64, n - 1);
    let mut found = None;
    while lo <= hi {
        let j = lo + (hi - lo) / 2;
        let plain = segment_plain_len(size, j, seg);
        let start = j * seg.stored_bytes();
        let end = start + plain + SEGMENT_OVERHEAD_BYTES - 1;
        let mut fwd = vec![(
            "range".to_owned(),
            format!("bytes={start}-{end}").into_bytes(),
        )];
        if !etag.is_empty() {
            fwd.push(("if-match".into(), etag.clone().into_bytes()));
        }
        let (resp, body) = ctx
            .core
            .backend
            .simple("GET", path, query, fwd, Vec::new())
            .await?;
        if resp.status != 206 || body.len() as u64 != plain + SEGMENT_OVERHEAD_BYTES {
            return Ok(None);
        }
        if cipher.open_to(j, true, &body, &mut out).is_ok() {
            found = Some(j + 1);
            break;
        }
        if cipher.open_to(j, false, &body, &mut out).is_ok() {
            lo = j + 1;
        } else if j == 0 {
            return Ok(None);
        } else {
            hi = j - 1;
        }
    }
    if let Some(m) = found {
        let mut cache = ctx.core.part_sizes.borrow_mut();
        if cache.len() >= PART_SIZE_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(cache_key, m);
    }
    Ok(found)
}

/// Which part, and which segment of it, the reader is at; and that part's cipher.
///
/// A multipart object whose parts (all but the last) are whole numbers of segments is a run
/// of full segments and one final partial segment, like a single-part object; only the keys
/// change at part boundaries. A part's last segment carries the final flag, so a segment
/// that does not open as non-final but opens as final ends its part (`docs/format.md`).
pub(crate) struct PartCursor<'k> {
    header: &'k Header,
    keys: &'k crate::envelope::DataKeys,
    cipher: SegmentCipher,
    part: u32,
    index: u64,
}

impl<'k> PartCursor<'k> {
    pub(crate) fn new(
        header: &'k Header,
        keys: &'k crate::envelope::DataKeys,
    ) -> Result<Self, crate::envelope::Error> {
        let part = if header.multipart {
            1
        } else {
            SINGLE_PART_NUMBER
        };
        Ok(Self {
            header,
            keys,
            cipher: SegmentCipher::new(header, keys, part)?,
            part,
            index: 0,
        })
    }

    /// A cursor at segment `index` of part `part` of a multipart object.
    pub(crate) fn at(
        header: &'k Header,
        keys: &'k crate::envelope::DataKeys,
        part: u32,
        index: u64,
    ) -> Result<Self, crate::envelope::Error> {
        Ok(Self {
            header,
            keys,
            cipher: SegmentCipher::new(header, keys, part)?,
            part,
            index,
        })
    }

    /// Opens the next stored segment `input` into `out`; `object_last` says whether it is
    /// the object's last segment.
    pub(crate) fn open(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        object_last: bool,
    ) -> Result<usize, crate::envelope::Error> {
        if object_last {
            return match self.cipher.open_to(self.index, true, input, out) {
                Ok(n) => Ok(n),
                Err(e) => {
                    // Opens as non-final: what followed it was cut off.
                    if self.cipher.open_to(self.index, false, input, out).is_ok() {
                        Err(crate::envelope::Error::Truncated {
                            part: self.part,
                            segment: self.index,
                        })
                    } else {
                        Err(e)
                    }
                }
            };
        }
        match self.cipher.open_to(self.index, false, input, out) {
            Ok(n) => {
                self.index += 1;
                Ok(n)
            }
            Err(e) if self.header.multipart => {
                // The end of a part?
                let n = self
                    .cipher
                    .open_to(self.index, true, input, out)
                    .map_err(|_| e)?;
                self.part += 1;
                self.index = 0;
                self.cipher = SegmentCipher::new(self.header, self.keys, self.part)?;
                Ok(n)
            }
            Err(e) => Err(e),
        }
    }
}

/// Bytes kept free before the plaintext in a GET's output buffer for the response head.
/// A head that does not fit (user metadata near S3's 2 KiB limit fits easily) is written on
/// its own.
const HEAD_ROOM: usize = 8 * 1024;

/// Opens the object's keys, then streams: each segment is read from the backend, both tags
/// checked, and only then its plaintext written to the client. The response head goes out
/// after the first segment verified; a segment that fails after that cuts the connection,
/// so the client never sees a complete-looking response. `skip_segments` segments at the
/// start of the backend body are opened (to follow part boundaries) but not sent.
#[allow(clippy::too_many_arguments)]
async fn open_and_stream(
    ctx: &Request<'_>,
    conn: &mut Conn,
    mut backend_conn: Conn,
    header: &Header,
    size: u64,
    range: Option<PlainRange>,
    meta: &ResponseHead,
    first_segment: u64,
    start: Option<(u32, u64)>,
) -> Result<Outcome, Failure> {
    let keys = request_keys(ctx, header)
        .await
        .map_err(|f| Failure { close: true, ..f })?;
    let revealed;
    let meta = if wants_checksum(ctx)
        && meta.header(CHECKSUM_METADATA).is_some()
        && meta.header(OPENED_CHECKSUM).is_none()
    {
        let mut m = meta.clone();
        reveal_checksum_with(ctx, header, &keys, &mut m)?;
        revealed = m;
        &revealed
    } else {
        meta
    };
    // A single-part object's segment index is its global index; a multipart read without
    // a known position starts at the beginning of part 1.
    let cursor = match start {
        Some((part, index)) => PartCursor::at(header, &keys, part, index),
        None if header.multipart => PartCursor::new(header, &keys),
        None => PartCursor::at(header, &keys, SINGLE_PART_NUMBER, first_segment),
    };
    let mut cursor = cursor.map_err(|_| Failure::close(S3Error::internal_error()))?;
    let seg = header.segment_size;
    let n = segment_count(size, seg);
    let (first, last) = match range {
        Some(r) => (r.first, r.last),
        None => (0, size.saturating_sub(1)),
    };
    let last_segment = if size == 0 { 0 } else { last / seg.bytes() };
    let mut input = ctx.core.buffers.take(seg.bytes_usize() + OVERHEAD);
    // Plaintext goes after room for the response head, so that the head and the first
    // plaintext go out in one write (one segment later for the client otherwise: a
    // separate small write, and a separate read and wake-up on its side).
    let mut out = ctx
        .core
        .buffers
        .take(HEAD_ROOM + seg.bytes_usize() + OVERHEAD);
    let mut head_sent = false;
    let mut index = first_segment;
    while index <= last_segment {
        let plain = segment_plain_len(size, index, seg) as usize;
        let stored = plain + OVERHEAD;
        let (res, b) = backend_conn.read_exact_into(input, 0..stored).await;
        input = b;
        if let Err(e) = res {
            if head_sent {
                return Ok(Outcome::Close);
            }
            return Err(Failure::from(super::backend::BackendError::from(e)));
        }
        if let Err(e) = cursor.open(&input[..stored], &mut out[HEAD_ROOM..], index + 1 == n) {
            integrity_failure(ctx, &e);
            if head_sent {
                // Cut the connection: the client sees a short body, never a wrong one.
                return Ok(Outcome::Close);
            }
            return Err(Failure::close(S3Error::internal_error().with_detail(
                format!("The stored object failed its integrity check and was not returned: {e}"),
            )));
        }
        let seg_start = index * seg.bytes();
        index += 1;
        if seg_start + (plain as u64) <= first && size > 0 {
            continue; // opened only to follow the parts; before the range
        }
        let from = first.saturating_sub(seg_start) as usize;
        let to = ((last + 1).min(seg_start + plain as u64) - seg_start) as usize;
        if !head_sent {
            let mut head = ResponseHead::new(if range.is_some() { 206 } else { 200 });
            object_headers(ctx, meta, &mut head);
            if range.is_some() {
                head.push_header(
                    "content-range",
                    format!("bytes {first}-{last}/{size}").into_bytes(),
                );
                head.push_header(
                    "content-length",
                    (last - first + 1).to_string().into_bytes(),
                );
            } else {
                head.push_header("content-length", size.to_string().into_bytes());
            }
            let mut bytes = Vec::with_capacity(1024);
            head.write(&mut bytes)
                .map_err(|_| Failure::close(S3Error::internal_error()))?;
            head_sent = true;
            if size > 0 && from < to && bytes.len() <= HEAD_ROOM + from {
                let start = HEAD_ROOM + from - bytes.len();
                out[start..HEAD_ROOM + from].copy_from_slice(&bytes);
                let (res, b) = conn.write_range(out, start..HEAD_ROOM + to).await;
                out = b;
                if res.is_err() {
                    return Err(Failure::close(S3Error::internal_error()));
                }
                continue;
            }
            let (res, _) = conn.write_all(bytes).await;
            res.map_err(|_| Failure::close(S3Error::internal_error()))?;
        }
        if size > 0 && from < to {
            let (res, b) = conn
                .write_range(out, HEAD_ROOM + from..HEAD_ROOM + to)
                .await;
            out = b;
            if res.is_err() {
                return Ok(Outcome::Close);
            }
        }
    }
    drop(keys);
    ctx.core.buffers.give(input);
    ctx.core.buffers.give(out);
    // A body read to its end can carry the next request.
    if index == n {
        ctx.core.backend.release(backend_conn);
    }
    Ok(Outcome::KeepAlive)
}

async fn stream_plain_get(
    ctx: &Request<'_>,
    conn: &mut Conn,
    path: &str,
    query: Option<&str>,
    fwd: Vec<(String, Vec<u8>)>,
) -> Result<Outcome, Failure> {
    let (backend_conn, resp) = ctx.core.backend.get(path, query, fwd).await?;
    let stored = resp.content_length().ok().flatten().unwrap_or(0);
    let mut out = ResponseHead::new(resp.status);
    plain_object_headers(ctx, &resp, &mut out);
    if let Some(v) = resp.header("content-range") {
        out.push_header("content-range", v.to_vec());
    }
    out.push_header("content-length", stored.to_string().into_bytes());
    relay_raw(ctx, conn, backend_conn, out, stored).await
}

/// Relays a pass-through object's bytes as they are (unencrypted objects, when allowed).
async fn relay_raw(
    ctx: &Request<'_>,
    conn: &mut Conn,
    mut backend_conn: Conn,
    out: ResponseHead,
    len: u64,
) -> Result<Outcome, Failure> {
    let mut bytes = Vec::new();
    out.write(&mut bytes)
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    let (res, _) = conn.write_all(bytes).await;
    res.map_err(|_| Failure::close(S3Error::internal_error()))?;
    let mut left = len;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        let (res, b) = backend_conn.read_exact_into(buf, 0..n).await;
        buf = b;
        if res.is_err() {
            return Ok(Outcome::Close);
        }
        let (res, b) = conn.write_range(buf, 0..n).await;
        buf = b;
        if res.is_err() {
            return Ok(Outcome::Close);
        }
        left -= n as u64;
    }
    ctx.core.backend.release(backend_conn);
    Ok(Outcome::KeepAlive)
}

/// Response headers of the source that a COPY-directive copy carries over.
const COPY_KEPT: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-encoding",
    "expires",
    "x-amz-website-redirect-location",
];

/// Headers of a copy request that describe the new object under REPLACE.
const COPY_REPLACED: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-language",
    "content-encoding",
    "expires",
    "x-amz-website-redirect-location",
];

/// Copy-request headers passed on as they are.
const COPY_FORWARDED: &[&str] = &[
    "x-amz-copy-source-if-match",
    "x-amz-copy-source-if-none-match",
    "x-amz-copy-source-if-modified-since",
    "x-amz-copy-source-if-unmodified-since",
    "x-amz-storage-class",
    "x-amz-tagging-directive",
    "x-amz-tagging",
    "x-amz-acl",
];

/// CopyObject: the backend copies the stored bytes; the gateway re-wraps the two data keys
/// for the new name and writes them, with the metadata, as the copy's metadata.
pub(crate) async fn copy(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Err(Failure::keep(S3Error::invalid_request(
            "CopyObject needs a bucket and a key",
        )));
    };
    check_sse_request(ctx).map_err(Failure::keep)?;
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
        return Err(Failure::keep(
            S3Error::access_denied().with_resource(format!("/{src_bucket}/{src_key}")),
        ));
    }
    let replace = match ctx.head.header_str("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(Failure::keep(S3Error::invalid_argument(format!(
                "Unknown metadata directive {other:?}"
            ))));
        }
    };
    if replace && ctx.head.headers.iter().any(|(n, _)| is_twofold_metadata(n)) {
        return Err(Failure::keep(S3Error::invalid_argument(
            "x-amz-meta-twofold* metadata is reserved for the gateway",
        )));
    }
    let src_path = backend_path(Some(&src_bucket), Some(&src_key));
    let src_query = version
        .as_ref()
        .map(|v| format!("versionId={}", super::encode(v, false)));
    let (src, src_body) = ctx
        .core
        .backend
        .simple(
            "HEAD",
            &src_path,
            src_query.as_deref(),
            Vec::new(),
            Vec::new(),
        )
        .await?;
    if src.status != 200 {
        return forward_error(conn, &src, &src_body, ctx.rid).await;
    }
    if !crate::s3::etag::copy_source_conditions_hold(
        ctx.head.header_str("x-amz-copy-source-if-match"),
        ctx.head.header_str("x-amz-copy-source-if-none-match"),
        src.header_str("etag").unwrap_or(""),
    ) {
        return Err(Failure::keep(S3Error::precondition_failed()));
    }
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    let new_meta = match object_header(&src).map_err(Failure::keep)? {
        Some(header) => {
            let from = ObjectName {
                bucket: &src_bucket,
                key: &src_key,
            };
            let to = ObjectName { bucket, key };
            let rewrapped = ctx.core.keyring.rewrap(&header, from, to).await?;
            Some(objmeta::encode(&rewrapped))
        }
        None => match ctx.core.settings.unencrypted_objects {
            UnencryptedObjects::PassThrough => {
                passthrough_read(ctx, "CopyObject");
                None
            }
            UnencryptedObjects::Reject => {
                return Err(Failure::keep(S3Error::new(
                    403,
                    S3Code::InvalidObjectState,
                    "The copy source was not written through Twofold and this gateway is configured to reject such objects",
                )));
            }
        },
    };
    if replace {
        for (n, v) in &ctx.head.headers {
            if COPY_REPLACED.contains(&n.as_str()) || n.starts_with("x-amz-meta-") {
                headers.push((n.clone(), v.clone()));
            }
        }
    } else {
        for name in COPY_KEPT {
            if let Some(v) = src.header(name) {
                headers.push(((*name).to_owned(), v.to_vec()));
            }
        }
        for (n, v) in &src.headers {
            if n.starts_with("x-amz-meta-") && !is_twofold_metadata(n) {
                headers.push((n.clone(), v.clone()));
            }
        }
    }
    if let Some(v) = src.header(CHECKSUM_METADATA) {
        headers.push((CHECKSUM_METADATA.into(), v.to_vec()));
    }
    // The layout record is sealed under the data keys, which the re-wrap keeps.
    if let Some(v) = src.header(super::unaligned::LAYOUT_HTTP_HEADER) {
        headers.push((super::unaligned::LAYOUT_HTTP_HEADER.into(), v.to_vec()));
    }
    let sealed_copy = new_meta.is_some();
    if let Some(meta) = new_meta {
        headers.push((objmeta::HTTP_HEADER.into(), meta.into_bytes()));
    }
    for (n, v) in &ctx.head.headers {
        if COPY_FORWARDED.contains(&n.as_str()) {
            headers.push((n.clone(), v.clone()));
        }
    }
    // The keys were re-wrapped for exactly this version of the source.
    if ctx.head.header("x-amz-copy-source-if-match").is_none()
        && let Some(etag) = src.header("etag")
    {
        headers.push(("x-amz-copy-source-if-match".into(), etag.to_vec()));
    }
    let mut copy_source = src_path.clone();
    if let Some(q) = &src_query {
        copy_source.push('?');
        copy_source.push_str(q);
    }
    headers.push(("x-amz-copy-source".into(), copy_source.into_bytes()));
    headers.push(("x-amz-metadata-directive".into(), b"REPLACE".to_vec()));
    let path = backend_path(Some(bucket), Some(key));
    let (resp, body) = ctx
        .core
        .backend
        .simple("PUT", &path, None, headers, Vec::new())
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let mut out = ResponseHead::new(200);
    for name in [
        "content-type",
        "x-amz-version-id",
        "x-amz-copy-source-version-id",
    ] {
        if let Some(v) = resp.header(name) {
            out.push_header(name, v.to_vec());
        }
    }
    // A pass-through source is copied as it is: the copy is not encrypted either.
    if sealed_copy {
        out.push_header("x-amz-server-side-encryption", SSE_DSSE.as_bytes().to_vec());
    }
    let body = crate::s3::etag::rewrite_xml(&body);
    out.push_header("x-amz-request-id", ctx.rid.as_bytes().to_vec());
    out.push_header("content-length", body.len().to_string().into_bytes());
    write_response(conn, &out, &body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

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
            super::unaligned::layout_of(ctx, ObjectName { bucket, key }, h, &resp, stored).await?,
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
