//! PutObject: the body sealed segment by segment on its way to the backend. Also the
//! request checks the other operations that create or name one object share (its bucket
//! and key, the headers of an upload, the server-side-encryption headers).

use super::OVERHEAD;
use super::described::{request_entries, sealed_entry};
use crate::envelope::checksum_record;
use crate::envelope::layout::SegmentSize;
use crate::envelope::layout::stored_len;
use crate::envelope::meta_record::{self, Entries};
use crate::envelope::objmeta;
use crate::envelope::write_plan::write_segments;
use crate::envelope::{ObjectName, SINGLE_PART_NUMBER, SegmentCipher};
use crate::http::RequestHead;
use crate::http::ResponseHead;
use crate::keys::named::{self, KeyRequestError};
use crate::s3::headers::{ATTACH_DROPPED, PUT_FORWARDED};
use crate::s3::sse_c::Role;
use crate::s3::{S3Code, S3Error, xml};
use crate::serve::backend::read_small_body;
use crate::serve::body::{BodyError, ClientBody, ClientChecksum, send_continue};
use crate::serve::io::Conn;
use crate::serve::respond::{forward_error, is_twofold_metadata};
use crate::serve::{Failure, Outcome, Request, backend_path, write_response};

/// Largest single PUT, as in S3.
pub const PUT_OBJECT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Metadata entry recording the client's verified checksum (`ALGORITHM:BASE64`).
pub const CHECKSUM_METADATA: &str = "x-amz-meta-twofold-checksum";
/// Largest stored body of a PutObject with a trailer checksum that is held in memory until
/// the trailer verified, so that the one backend PUT carries the checksum in its metadata
/// (just under four 64 KiB segments of plaintext). Larger bodies are streamed and the checksum is recorded
/// afterwards by a copy of the object onto itself (see [`attach_checksum`]).
pub const HELD_PUT_STORED_BYTES_MAX: u64 = 256 * 1024;

/// The headers of a request that creates an object, checked (see
/// [`check_upload_headers`]).
pub(crate) struct UploadHeaders {
    /// The key the object is sealed under, by its own id ([`requested_key`]).
    pub(crate) key_id: String,
    /// Passed on to the backend as they are.
    pub(crate) forwarded: Vec<(String, Vec<u8>)>,
    /// The describing metadata, to be sealed in the object's metadata record.
    pub(crate) described: Entries,
}

/// Checks the headers of a request that creates an object (PutObject,
/// CreateMultipartUpload) and splits them into those passed on to the backend and the
/// describing metadata that is sealed instead.
pub(crate) fn check_upload_headers(ctx: &Request<'_>) -> Result<UploadHeaders, S3Error> {
    let key_id = requested_key(ctx)?;
    if ctx.head.headers.iter().any(|(n, _)| is_twofold_metadata(n)) {
        return Err(S3Error::invalid_argument(
            "x-amz-meta-twofold* metadata is reserved for the gateway",
        ));
    }
    let described = request_entries(&ctx.head.headers)?;
    let forwarded = ctx
        .head
        .headers
        .iter()
        .filter(|(n, _)| PUT_FORWARDED.contains(&n.as_str()) && !meta_record::is_sealed(n))
        .cloned()
        .collect();
    Ok(UploadHeaders {
        key_id,
        forwarded,
        described,
    })
}

/// The key a request that creates an object asks for, by its own id (see
/// [`named::requested`]): the bucket's default, or a named key the credential may use. An
/// encryption context is checked (it is sealed with the object's metadata); a key id that
/// names no key (`KMS.NotFoundException`, as S3 answers) or one the credential may not use
/// (`AccessDenied`). A customer-provided key (SSE-C, checked here) is bound into the
/// object on top of the bucket's default key; as in S3 it cannot be combined with another
/// encryption request.
pub(crate) fn requested_key(ctx: &Request<'_>) -> Result<String, S3Error> {
    let h = ctx.head;
    let customer = crate::s3::sse_c::parse(&h.headers, crate::s3::sse_c::Role::Object)?;
    if customer.is_some()
        && (h.header("x-amz-server-side-encryption").is_some()
            || h.header("x-amz-server-side-encryption-aws-kms-key-id")
                .is_some())
    {
        return Err(S3Error::invalid_argument(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        ));
    }
    if let Some(context) = h.header(crate::s3::encryption_context::HEADER) {
        // Sealed in the object's metadata record (request_entries), which binds it.
        crate::s3::encryption_context::check(context)?;
        if !matches!(
            h.header_str("x-amz-server-side-encryption"),
            Some("aws:kms" | "aws:kms:dsse")
        ) {
            return Err(S3Error::invalid_argument(
                "An encryption context needs x-amz-server-side-encryption: aws:kms or aws:kms:dsse",
            ));
        }
    }
    let keys = ctx.core.keyring.named_keys();
    let choice = named::requested(
        keys,
        ctx.address.bucket.as_deref().unwrap_or(""),
        h.header_str("x-amz-server-side-encryption"),
        h.header_str("x-amz-server-side-encryption-aws-kms-key-id"),
    )
    .map_err(|e| match e {
        KeyRequestError::NeedsKms => S3Error::invalid_argument(
            "Server Side Encryption with AWS KMS managed key requires HTTP header \
             x-amz-server-side-encryption : aws:kms or aws:kms:dsse",
        ),
        KeyRequestError::Unsupported(other) => S3Error::invalid_argument(format!(
            "x-amz-server-side-encryption {other:?} is not supported; use aws:kms:dsse"
        )),
        KeyRequestError::Unknown(id) => S3Error::new(
            400,
            S3Code::KmsNotFound,
            format!("Key '{id}' does not exist"),
        ),
    })?;
    if !crate::serve::may_use_key(ctx, choice.id) {
        return Err(S3Error::access_denied().with_message(format!(
            "These credentials may not encrypt with the key '{}'",
            choice.id
        )));
    }
    Ok(choice.id.to_owned())
}

/// The bucket and key of a request on one object, or `message` as the client's error when
/// either is missing.
pub(super) fn object_address<'a>(
    ctx: &'a Request<'_>,
    message: &'static str,
) -> Result<(&'a str, &'a str), Failure> {
    match (&ctx.address.bucket, &ctx.address.key) {
        (Some(bucket), Some(key)) => Ok((bucket, key)),
        _ => Err(Failure::keep(S3Error::invalid_request(message))),
    }
}

/// PutObject: checks the request, seals the body on its way to the backend (or holds a
/// small one until its trailer checksum verified), records a trailer checksum with the
/// stored object, and answers.
pub(crate) async fn put(ctx: &Request<'_>, conn: &mut Conn) -> Result<Outcome, Failure> {
    let (bucket, key) = object_address(ctx, "PutObject needs a bucket and a key")?;
    // Until the body is read, a failure needs no explicit close: the connection's state
    // (a body not read to its end) closes it. Once reading began, one does: a body
    // abandoned mid-way, or one that failed to decode, leaves the stream out of step.
    let UploadHeaders {
        key_id,
        forwarded: mut headers,
        described,
    } = check_upload_headers(ctx)?;
    let mut body = ClientBody::new(ctx.head, ctx.verified)?;
    if body.len() > PUT_OBJECT_BYTES_MAX {
        return Err(S3Error::entity_too_large().into());
    }
    let name = ObjectName { bucket, key };
    let sealing = PutSealing::new(ctx, name, &key_id, &described).await?;
    headers.push((objmeta::HTTP_HEADER.into(), sealing.metadata.clone()));
    headers.push(sealing.described.clone());
    // A checksum sent as a header is known now; it is only stored if it verifies, since a
    // mismatch aborts the backend write below. One sent as a trailer is known only at the
    // end of the body: it is stored by holding a small body back, or by a copy afterwards.
    let trailer = body.trailer_checksum_algorithm().is_some();
    if !trailer {
        headers.extend(header_checksum_records(ctx.head, &sealing.record_cipher));
    }
    send_continue(ctx.head, conn)
        .await
        .map_err(Failure::close)?;
    let path = backend_path(Some(bucket), Some(key));
    let stored = stored_len(body.len(), sealing.segment_size);
    let plan = StorePlan {
        path: &path,
        headers: &headers,
        stored,
        held: holds_body(trailer, stored),
    };
    let (resp, resp_body, checksum) = store_body(ctx, conn, &mut body, &sealing, &plan).await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &resp_body, ctx.rid).await;
    }
    let etag = resp.header("etag").map(<[u8]>::to_vec);
    let version = resp.header("x-amz-version-id").map(<[u8]>::to_vec);
    let (etag, version) = match &checksum {
        Some(c) if trailer && !plan.held => {
            let recording = Recording {
                bucket,
                key,
                path: &path,
                headers: &headers,
                record_cipher: &sealing.record_cipher,
                checksum: c,
            };
            record_trailer_checksum(ctx, &recording, etag, version).await
        }
        _ => (etag, version),
    };
    let mut out = put_response_head(ctx.rid, &key_id, etag, version, checksum);
    crate::serve::respond::echo_encryption(ctx, &mut out);
    write_response(conn, &out, &[])
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// The keys one PutObject (or a copy sealed again, or a browser-form upload) seals with, and the envelope header
/// that records them.
pub(super) struct PutSealing {
    /// The envelope header, encoded as the object's metadata value.
    pub(super) metadata: Vec<u8>,
    /// The segment size of the sealed body.
    pub(super) segment_size: SegmentSize,
    /// Seals the body's segments.
    pub(super) cipher: SegmentCipher,
    /// Seals the checksum record stored in the metadata.
    pub(super) record_cipher: SegmentCipher,
    /// The sealed metadata record, as a metadata entry.
    pub(super) described: (String, Vec<u8>),
}

impl PutSealing {
    /// Draws fresh data keys for `name` under the key `key_id`, the ciphers made from
    /// them and the sealed `described` metadata; the keys themselves are dropped once the
    /// ciphers hold them.
    pub(super) async fn new(
        ctx: &Request<'_>,
        name: ObjectName<'_>,
        key_id: &str,
        described: &[(String, Vec<u8>)],
    ) -> Result<PutSealing, Failure> {
        let customer = crate::serve::respond::request_sse_c(ctx, Role::Object)?;
        let customer = customer.as_ref().map(|c| &c.key);
        let (header, keys) = ctx
            .core
            .keyring
            .seal_new_for(name, None, key_id, customer)
            .await?;
        let described = sealed_entry(&header, &keys, described)?;
        let cipher = SegmentCipher::new(&header, &keys, SINGLE_PART_NUMBER)
            .map_err(|_| S3Error::internal_error())?;
        let record_cipher =
            checksum_record::cipher(&header, &keys).map_err(|_| S3Error::internal_error())?;
        drop(keys);
        Ok(PutSealing {
            metadata: objmeta::encode(&header).into_bytes(),
            segment_size: header.segment_size,
            cipher,
            record_cipher,
            described,
        })
    }
}

/// The sealed checksum records of the request's `x-amz-checksum-*` headers, as metadata
/// entries. A value that is no digest is not recorded: the body check refuses it anyway.
fn header_checksum_records(
    head: &RequestHead,
    record_cipher: &SegmentCipher,
) -> Vec<(String, Vec<u8>)> {
    head.headers
        .iter()
        .filter_map(|(n, v)| {
            let alg = crate::s3::checksum::ChecksumAlgorithm::from_header_name(n)?;
            checksum_record::seal_base64(record_cipher, alg, &String::from_utf8_lossy(v))
        })
        .map(|sealed| (CHECKSUM_METADATA.to_owned(), sealed.into_bytes()))
        .collect()
}

/// Whether a PutObject body is held in memory until its trailer checksum verified (see
/// [`HELD_PUT_STORED_BYTES_MAX`]) rather than streamed to the backend.
fn holds_body(trailer_checksum: bool, stored: u64) -> bool {
    trailer_checksum && stored <= HELD_PUT_STORED_BYTES_MAX
}

/// How a PutObject's sealed body goes to the backend.
struct StorePlan<'a> {
    /// The object's backend path.
    path: &'a str,
    /// The backend request's headers.
    headers: &'a [(String, Vec<u8>)],
    /// The sealed body's length.
    stored: u64,
    /// Whether the body is held in memory until it verified (see [`holds_body`]).
    held: bool,
}

/// What the backend answered to a PUT, its body, and the client's verified checksum.
pub(crate) type StoredAnswer = (ResponseHead, Vec<u8>, Option<ClientChecksum>);

/// Seals the client's body and sends it to the backend as `plan` says: whole once it
/// verified ([`seal_held`]), or streamed segment by segment ([`seal_upload`]).
async fn store_body(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    sealing: &PutSealing,
    plan: &StorePlan<'_>,
) -> Result<StoredAnswer, Failure> {
    let ciphers = (&sealing.cipher, &sealing.record_cipher);
    if plan.held {
        return seal_held(ctx, conn, body, ciphers, plan.path, plan.headers.to_vec()).await;
    }
    let ex = ctx
        .core
        .backend
        .send_head(
            "PUT",
            plan.path,
            None,
            plan.headers.to_vec(),
            Some(plan.stored),
        )
        .await?;
    seal_upload(ctx, conn, body, &sealing.cipher, ex).await
}

/// A verified trailer checksum to record with the object a streamed PUT just stored.
struct Recording<'a> {
    /// The object's bucket.
    bucket: &'a str,
    /// The object's key.
    key: &'a str,
    /// The object's backend path.
    path: &'a str,
    /// The headers of the PUT that stored it.
    headers: &'a [(String, Vec<u8>)],
    /// Seals the checksum record.
    record_cipher: &'a SegmentCipher,
    /// The verified checksum.
    checksum: &'a ClientChecksum,
}

/// Records a verified trailer checksum with the object just stored (see
/// [`attach_checksum`]) and forgets the version the PUT made. Returns the ETag and version
/// id the client is told: those of the copy when it succeeded, the PUT's otherwise.
async fn record_trailer_checksum(
    ctx: &Request<'_>,
    rec: &Recording<'_>,
    etag: Option<Vec<u8>>,
    version: Option<Vec<u8>>,
) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let Some(put_etag) = etag.as_deref() else {
        return (etag, version);
    };
    let attached = attach_checksum(
        ctx,
        rec.path,
        rec.headers,
        rec.record_cipher,
        rec.checksum,
        put_etag,
    )
    .await;
    match attached {
        Ok((new_etag, new_version)) => {
            forget_version(ctx, rec.path, version.as_deref(), new_version.as_deref()).await;
            (new_etag.or(etag), new_version.or(version))
        }
        // The object is stored and verified: the client's PUT succeeded. Only the
        // checksum is missing from it, as on any object stored without one.
        Err(reason) => {
            tracing::warn!(
                resource = %format_args!("/{}/{}", rec.bucket, rec.key),
                algorithm = %rec.checksum.algorithm,
                reason = %reason,
                "object stored, but its verified checksum could not be recorded with it"
            );
            (etag, version)
        }
    }
}

/// The head of PutObject's answer: the object's ETag and version id when the backend gave
/// them, the encryption it is stored with, and the client's verified checksum.
fn put_response_head(
    rid: &str,
    key_id: &str,
    etag: Option<Vec<u8>>,
    version: Option<Vec<u8>>,
    checksum: Option<ClientChecksum>,
) -> ResponseHead {
    let mut out = ResponseHead::new(200);
    if let Some(v) = etag {
        out.push_header("etag", crate::s3::etag::header_to_client(&v));
    }
    if let Some(v) = version {
        out.push_header("x-amz-version-id", v);
    }
    crate::serve::respond::push_sse(&mut out, Some(key_id));
    if let Some(c) = checksum {
        out.push_header(c.algorithm.header_name(), c.value.into_bytes());
    }
    out.push_header("x-amz-request-id", rid.as_bytes().to_vec());
    out.push_header("content-length", b"0".to_vec());
    out
}

/// Records a verified trailer checksum with an object just stored by a streamed PUT: a
/// server-side copy of the object onto itself with `x-amz-metadata-directive: REPLACE`,
/// carrying the PUT's own metadata (so the envelope header, whose wrapped keys are bound
/// to bucket and key, stays valid as it is) plus the checksum. The copy applies only to
/// the version this PUT wrote (`x-amz-copy-source-if-match` with its ETag): if another
/// writer replaced the object meanwhile, nothing is changed. Returns the copy's ETag and
/// version id.
pub(super) async fn attach_checksum(
    ctx: &Request<'_>,
    path: &str,
    put_headers: &[(String, Vec<u8>)],
    record_cipher: &SegmentCipher,
    checksum: &ClientChecksum,
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
    let q = format!("versionId={}", crate::serve::encode(first, false));
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
pub(super) async fn seal_held(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    (cipher, record_cipher): (&SegmentCipher, &SegmentCipher),
    path: &str,
    mut headers: Vec<(String, Vec<u8>)>,
) -> Result<StoredAnswer, Failure> {
    let plain = body.len();
    let seg = cipher.segment_size();
    let stored = stored_len(plain, seg);
    if stored > HELD_PUT_STORED_BYTES_MAX {
        return Err(Failure::close(S3Error::internal_error()));
    }
    // In range: at most HELD_PUT_STORED_BYTES_MAX, checked just above.
    let stored = stored as usize;
    let mut buf = vec![0u8; stored];
    let mut at = 0;
    let mut checksum = None;
    for s in write_segments(plain, seg) {
        let len = s.plain_len as usize;
        if at + len + OVERHEAD > stored {
            return Err(Failure::close(S3Error::internal_error()));
        }
        let (res, b) = body.read_exact(conn, buf, at..at + len).await;
        buf = b;
        res.map_err(|e| body_failure(&e))?;
        if s.last {
            checksum = body.finish(conn).await.map_err(|e| body_failure(&e))?;
        }
        at += cipher
            .seal(s.index, s.last, &mut buf[at..], len)
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

/// Where sealed segments go: the body of a backend request whose head has been sent.
pub(crate) struct SealSink(pub(crate) crate::serve::backend::Exchange);

impl SealSink {
    /// Writes a sealed segment (`buf[..sealed]`); gives the buffer back.
    pub(crate) async fn write(&mut self, buf: Vec<u8>, sealed: usize) -> Result<Vec<u8>, Failure> {
        let (res, b) = self.0.conn.write_range(buf, 0..sealed).await;
        res.map_err(|e| Failure::from(crate::serve::backend::BackendError::from(e)))?;
        Ok(b)
    }

    /// The backend's answer to the request whose body was written, with a body of at most
    /// `limit` bytes; the connection goes back to the pool when it can be reused.
    pub(crate) async fn answer(
        self,
        ctx: &Request<'_>,
        limit: usize,
    ) -> Result<(ResponseHead, Vec<u8>), Failure> {
        let mut ex = self.0;
        let resp = ex
            .conn
            .read_response_head()
            .await
            .map_err(|e| Failure::from(crate::serve::backend::BackendError::from(e)))?;
        let (body, reusable) = read_small_body(&mut ex.conn, &resp, false, limit).await?;
        if reusable && resp.keep_alive() {
            ctx.core.backend.release(ex.conn);
        }
        Ok((resp, body))
    }
}

/// Why [`seal_segments`] stopped before the end of the body.
enum SealStop {
    /// The client's body failed, or sealing did: answered as the failure says.
    Failed(Failure),
    /// A sealed segment could not be written to the backend, which may have answered the
    /// request already ([`crate::serve::backend::Exchange::answer_after_write_error`]).
    Backend(std::io::Error),
}

impl From<Failure> for SealStop {
    fn from(f: Failure) -> Self {
        SealStop::Failed(f)
    }
}

/// Reads a client body segment by segment, seals each in place and hands it to `sink`;
/// the final segment is sealed only after every digest of the client's body has verified.
async fn seal_segments(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    cipher: &SegmentCipher,
    sink: &mut SealSink,
) -> Result<Option<ClientChecksum>, SealStop> {
    let plain = body.len();
    let seg = cipher.segment_size();
    let mut buf = ctx.core.buffers.take(seg.bytes_usize() + OVERHEAD);
    let mut checksum = None;
    for s in write_segments(plain, seg) {
        let len = s.plain_len as usize;
        let (res, b) = body.read_exact(conn, buf, 0..len).await;
        buf = b;
        res.map_err(|e| body_failure(&e))?;
        if s.last {
            checksum = body.finish(conn).await.map_err(|e| body_failure(&e))?;
        }
        let sealed = cipher
            .seal(s.index, s.last, &mut buf, len)
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
        let (res, b) = sink.0.conn.write_range(buf, 0..sealed).await;
        res.map_err(SealStop::Backend)?;
        buf = b;
    }
    ctx.core.buffers.give(buf);
    Ok(checksum)
}

/// Streams a client body through `cipher` into a backend request whose head has been sent
/// (see [`seal_segments`]), then reads the backend's answer. On any failure the backend
/// connection is dropped mid-body, so the backend stores nothing. A backend that refused
/// the request before reading all of its body (a condition that fails) gives the answer:
/// the client's body is then not read to its end, and its connection closes after it.
pub(crate) async fn seal_upload(
    ctx: &Request<'_>,
    conn: &mut Conn,
    body: &mut ClientBody,
    cipher: &SegmentCipher,
    ex: crate::serve::backend::Exchange,
) -> Result<StoredAnswer, Failure> {
    let mut sink = SealSink(ex);
    let sent = seal_segments(ctx, conn, body, cipher, &mut sink).await;
    let SealSink(ex) = sink;
    let checksum = match sent {
        Ok(checksum) => checksum,
        Err(SealStop::Failed(f)) => return Err(f),
        Err(SealStop::Backend(e)) => {
            let (resp, resp_body) = ex.answer_after_write_error(e).await?;
            return Ok((resp, resp_body, None));
        }
    };
    let (resp, resp_body) = SealSink(ex).answer(ctx, 1 << 20).await?;
    Ok((resp, resp_body, checksum))
}

/// The failure for a client body that could not be read or did not verify: the stream is
/// out of step, so the connection closes.
pub(super) fn body_failure(e: &BodyError) -> Failure {
    Failure::close(e.to_s3())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::respond::SSE_DSSE;

    #[test]
    fn only_a_small_body_with_a_trailer_checksum_is_held() {
        assert!(holds_body(true, 0));
        assert!(holds_body(true, HELD_PUT_STORED_BYTES_MAX));
        assert!(!holds_body(true, HELD_PUT_STORED_BYTES_MAX + 1));
        assert!(!holds_body(false, 0));
    }

    #[test]
    fn the_answer_carries_what_the_backend_and_the_client_gave() {
        let checksum = ClientChecksum {
            algorithm: crate::s3::checksum::ChecksumAlgorithm::Crc32,
            value: "AAAAAA==".to_owned(),
        };
        let out = put_response_head(
            "rid",
            "alias/finance",
            Some(b"\"abc\"".to_vec()),
            Some(b"v1".to_vec()),
            Some(checksum),
        );
        assert_eq!(out.status, 200);
        assert!(out.header("etag").is_some());
        assert_eq!(out.header("x-amz-version-id"), Some(&b"v1"[..]));
        assert_eq!(
            out.header("x-amz-server-side-encryption-aws-kms-key-id"),
            Some(&b"alias/finance"[..])
        );
        assert_eq!(out.header("x-amz-checksum-crc32"), Some(&b"AAAAAA=="[..]));
        assert_eq!(out.header("x-amz-request-id"), Some(&b"rid"[..]));
        assert_eq!(out.header("content-length"), Some(&b"0"[..]));
        assert_eq!(
            out.header("x-amz-server-side-encryption"),
            Some(SSE_DSSE.as_bytes())
        );

        let bare = put_response_head("rid", "k", None, None, None);
        assert!(bare.header("etag").is_none());
        assert!(bare.header("x-amz-version-id").is_none());
        assert!(bare.header("x-amz-checksum-crc32").is_none());
    }
}
