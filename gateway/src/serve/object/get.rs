//! GetObject and HeadObject: the object's metadata and the request make a read plan
//! ([`crate::envelope::plan`]); the planned stored bytes are fetched and opened segment by
//! segment on their way back ([`super::stream`]).

use super::described;
use super::put::CHECKSUM_METADATA;
use super::read::{object_header, request_keys, reveal_checksum, segments_per_part};
use super::stream::{ClientBody, Fetched, fetch_plan, object_changed, stream_plan};
use crate::config::UnencryptedObjects;
use crate::envelope::checksum_record::StoredChecksum;
use crate::envelope::header::Header;
use crate::envelope::layout::plain_len;
use crate::envelope::plan::{
    ObjectMeta, PART_NUMBER_MAX, PlanError, ReadPlan, ReadRequest, ResponseNumbers, StoredRange,
    parts_count_from_etag, plan,
};
use crate::envelope::{DataKeys, SegmentCipher, record};
use crate::http::ResponseHead;
use crate::s3::headers::CONDITIONS;
use crate::s3::{RangeRequest, S3Code, S3Error, parse_range};
use crate::serve::backend::{BackendError, read_small_body};
use crate::serve::io::Conn;
use crate::serve::respond::{
    forward_error, object_headers, plain_object_headers, write_unsatisfiable,
};
use crate::serve::stored::StoredObject;
use crate::serve::{Failure, Outcome, Request, backend_path, backend_query, write_response};

/// What an integrity failure of a GET names.
const STORED_OBJECT: &str = "The stored object";

/// Largest backend error body relayed to the client, in bytes.
const ERROR_BODY_BYTES_MAX: usize = 1 << 20;

/// A GetObject or HeadObject request, parsed.
struct ObjectRead<'r> {
    bucket: &'r str,
    key: &'r str,
    /// The object's path and query on the backend.
    path: String,
    query: Option<String>,
    /// The client's conditions, passed on.
    fwd: Vec<(String, Vec<u8>)>,
    request: ReadRequest,
}

impl<'r> ObjectRead<'r> {
    fn parse(ctx: &'r Request<'_>, head_only: bool) -> Result<Self, Failure> {
        let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
            return Err(S3Error::invalid_request("a bucket and a key are needed").into());
        };
        // A customer-provided key (SSE-C) is checked when the object's keys are opened.
        crate::s3::sse_c::parse(&ctx.head.headers, crate::s3::sse_c::Role::Object)?;
        let part_number = match ctx.query.get("partNumber") {
            None => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
                    .ok_or_else(|| {
                        S3Error::invalid_argument(
                            "Part number must be an integer between 1 and 10000, inclusive",
                        )
                    })?,
            ),
        };
        let fwd = ctx
            .head
            .headers
            .iter()
            .filter(|(n, _)| CONDITIONS.contains(&n.as_str()))
            .cloned()
            .collect();
        let checksum_mode = ctx
            .head
            .header_str("x-amz-checksum-mode")
            .is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
        Ok(Self {
            bucket,
            key,
            path: backend_path(Some(bucket), Some(key)),
            query: backend_query(ctx.query, &["partNumber"]),
            fwd,
            request: ReadRequest {
                head_only,
                range: ctx.head.header("range").map(parse_range),
                part_number,
                checksum_mode,
            },
        })
    }

    /// The single byte range asked for, on a GET (HEAD ignores ranges).
    fn single_range(&self) -> Option<crate::s3::ByteRange> {
        match self.request.range {
            Some(RangeRequest::Single(r)) if !self.request.head_only => Some(r),
            _ => None,
        }
    }

    /// A GET of the whole object: one backend request, whose response head holds the
    /// object's metadata.
    fn is_whole_get(&self) -> bool {
        !self.request.head_only
            && self.request.part_number.is_none()
            && self.single_range().is_none()
    }

    fn stored<'a>(&'a self, meta: &'a ResponseHead, header: &'a Header) -> StoredObject<'a> {
        StoredObject {
            path: &self.path,
            query: self.query.as_deref(),
            header,
            meta,
        }
    }

    /// The key under which a core remembers the object.
    fn seen_key(&self) -> (String, String, String) {
        (
            self.bucket.to_owned(),
            self.key.to_owned(),
            self.query.clone().unwrap_or_default(),
        )
    }
}

/// GetObject (`head_only` = false) and HeadObject.
pub(crate) async fn get(
    ctx: &Request<'_>,
    conn: &mut Conn,
    head_only: bool,
) -> Result<Outcome, Failure> {
    let read = ObjectRead::parse(ctx, head_only)?;
    if let Some(outcome) = get_seen(ctx, conn, &read).await? {
        return Ok(outcome);
    }
    if read.is_whole_get() {
        return whole_get(ctx, conn, &read).await;
    }
    // HEAD, and any read that needs the object's size and segment size first.
    let (resp, body) = ctx
        .core
        .backend
        .simple(
            "HEAD",
            &read.path,
            read.query.as_deref(),
            read.fwd.clone(),
            Vec::new(),
        )
        .await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let Some(header) = unencrypted_check(ctx, &resp)? else {
        return passthrough(ctx, conn, &read, &resp).await;
    };
    planned(ctx, conn, &read, &header, resp, None).await
}

/// A whole GET: one backend request; the object's header comes with the response, and its
/// body is streamed as it comes. (A marked object's layout record is read first, and its
/// body then fetched again.)
async fn whole_get(
    ctx: &Request<'_>,
    conn: &mut Conn,
    read: &ObjectRead<'_>,
) -> Result<Outcome, Failure> {
    let (mut body, resp) = ctx
        .core
        .backend
        .get(&read.path, read.query.as_deref(), read.fwd.clone())
        .await?;
    if resp.status != 200 {
        let (text, reusable) =
            read_small_body(&mut body, &resp, false, ERROR_BODY_BYTES_MAX).await?;
        if reusable && resp.keep_alive() {
            ctx.core.backend.release(body);
        }
        return forward_error(conn, &resp, &text, ctx.rid).await;
    }
    let stored = resp.content_length().ok().flatten().ok_or_else(|| {
        Failure::from(BackendError::Protocol(
            "GET response without Content-Length".into(),
        ))
    })?;
    let Some(header) = unencrypted_check(ctx, &resp)? else {
        passthrough_read(ctx, "GetObject");
        let mut out = ResponseHead::new(200);
        plain_object_headers(ctx, &resp, &mut out);
        out.push_header("content-length", stored.to_string().into_bytes());
        return relay_raw(ctx, conn, body, out, stored).await;
    };
    let body = if header.multipart && record::is_marked(stored, header.segment_size) {
        None
    } else {
        Some((body, resp.content_length().ok().flatten()))
    };
    planned(ctx, conn, read, &header, resp, body).await
}

/// What a core remembers of a single-part object after a ranged GET of it.
#[derive(Debug, Clone)]
pub(crate) struct SeenObject {
    etag: Vec<u8>,
    stored: u64,
    header: Header,
}

/// A ranged GET of a single-part object this core has seen: the stored size and header it
/// remembers give the plan, and the GET's own answer proves they still hold. `Ok(None)`
/// when there is nothing remembered or the object is no longer what was seen (another
/// ETag, size or header, or a backend that did not answer the range): the request is then
/// served the usual way.
async fn get_seen(
    ctx: &Request<'_>,
    conn: &mut Conn,
    read: &ObjectRead<'_>,
) -> Result<Option<Outcome>, Failure> {
    if read.single_range().is_none() || read.request.part_number.is_some() {
        return Ok(None);
    }
    let Some(seen) = ctx
        .core
        .seen_objects
        .borrow()
        .get(&read.seen_key())
        .cloned()
    else {
        return Ok(None);
    };
    let meta = ObjectMeta {
        header: &seen.header,
        stored_len: seen.stored,
        layout_record: None,
        etag_parts: 1,
        segments_per_part: None,
        has_checksum_record: false,
    };
    let outcome = match plan(&meta, &read.request) {
        Ok(p) if p.fetch.len() == 1 => serve_seen(ctx, conn, read, &seen, &p).await?,
        _ => None,
    };
    if outcome.is_none() {
        ctx.core.seen_objects.borrow_mut().remove(&read.seen_key());
    }
    Ok(outcome)
}

/// [`get_seen`] with its plan: the ranged GET, checked against what was seen.
async fn serve_seen(
    ctx: &Request<'_>,
    conn: &mut Conn,
    read: &ObjectRead<'_>,
    seen: &SeenObject,
    p: &ReadPlan,
) -> Result<Option<Outcome>, Failure> {
    let fetch = p.fetch[0];
    let mut fwd = read.fwd.clone();
    fwd.push(range_header(fetch));
    let (mut body, resp) = ctx
        .core
        .backend
        .get(&read.path, read.query.as_deref(), fwd)
        .await?;
    match resp.status {
        206 => {}
        // Not the object that was seen, or a backend that ignored the range.
        200 | 416 => return Ok(None),
        _ => {
            // Gone, or a condition of the client's that failed: the backend's answer.
            let (text, _) = read_small_body(&mut body, &resp, false, ERROR_BODY_BYTES_MAX).await?;
            return forward_error(conn, &resp, &text, ctx.rid).await.map(Some);
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
    let keys = request_keys(ctx, &seen.header).await?;
    let mut resp = resp;
    described::reveal(ctx, &seen.header, &keys, &mut resp)?;
    let head = response_head(ctx, &resp, None, &p.response);
    let length = resp.content_length().ok().flatten();
    send_body(
        ctx,
        conn,
        (&seen.header, &keys),
        p,
        (&[], body, length),
        head,
    )
    .await
    .map(Some)
}

/// Remembers a single-part object after a ranged GET of it, for the next ranged GET.
fn remember(ctx: &Request<'_>, read: &ObjectRead<'_>, header: &Header, meta: &ResponseHead) {
    let (Some(etag), Ok(Some(stored))) = (meta.header("etag"), meta.content_length()) else {
        return;
    };
    if header.multipart || read.single_range().is_none() || read.request.part_number.is_some() {
        return;
    }
    let mut seen = ctx.core.seen_objects.borrow_mut();
    if seen.len() >= crate::serve::SEEN_OBJECTS_MAX {
        seen.clear();
    }
    seen.insert(
        read.seen_key(),
        SeenObject {
            etag: etag.to_vec(),
            stored,
            header: header.clone(),
        },
    );
}

/// A HEAD or GET of an object Twofold did not write, served as it is.
async fn passthrough(
    ctx: &Request<'_>,
    conn: &mut Conn,
    read: &ObjectRead<'_>,
    resp: &ResponseHead,
) -> Result<Outcome, Failure> {
    let head_only = read.request.head_only;
    passthrough_read(ctx, if head_only { "HeadObject" } else { "GetObject" });
    if !head_only {
        let mut fwd = read.fwd.clone();
        if let Some(r) = ctx.head.header("range") {
            fwd.push(("range".into(), r.to_vec()));
        }
        return stream_plain_get(ctx, conn, &read.path, read.query.as_deref(), fwd).await;
    }
    let stored = resp.content_length().ok().flatten().unwrap_or(0);
    let mut out = ResponseHead::new(200);
    plain_object_headers(ctx, resp, &mut out);
    out.push_header("content-length", stored.to_string().into_bytes());
    write_response(conn, &out, &[])
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// Serves a Twofold object from its backend response head `meta` (a HEAD's, or a whole
/// GET's whose `body` is still unread): the layout record and part size where the read
/// needs them, the plan, its checks, the response head, then the body.
async fn planned(
    ctx: &Request<'_>,
    conn: &mut Conn,
    read: &ObjectRead<'_>,
    header: &Header,
    mut meta: ResponseHead,
    body: Option<(Conn, Option<u64>)>,
) -> Result<Outcome, Failure> {
    let stored = meta.content_length().ok().flatten().unwrap_or(0);
    // Opened once: for the layout record, the part checks, the metadata and checksum
    // records, and the body.
    let keys = request_keys(ctx, header).await.map_err(Failure::closing)?;
    let layout = match record::required(header, stored) {
        true => Some(crate::serve::unaligned::layout_of(
            ctx, &keys, header, &meta, stored,
        )?),
        false => None,
    };
    let per_part = part_size(ctx, read, (header, &keys), &meta, layout.is_some()).await?;
    let object = ObjectMeta {
        header,
        stored_len: stored,
        layout_record: layout.as_ref(),
        etag_parts: parts_count_from_etag(meta.header_str("etag")),
        segments_per_part: per_part,
        has_checksum_record: meta.header(CHECKSUM_METADATA).is_some(),
    };
    let p = match plan(&object, &read.request) {
        Ok(p) => p,
        Err(PlanError::RangeNotSatisfiable { size }) => {
            return write_unsatisfiable(ctx, conn, size).await;
        }
        Err(e) => return Err(plan_failure(ctx, e)),
    };
    check_parts(ctx, read, (header, &keys), &p).await?;
    meta.headers.retain(|(n, _)| n != "x-amz-mp-parts-count");
    if let Some(count) = p.response.parts_count {
        meta.push_header("x-amz-mp-parts-count", count.to_string().into_bytes());
    }
    described::reveal(ctx, header, &keys, &mut meta)?;
    let checksum = match p.reveal_checksum {
        true => reveal_checksum(ctx, header, &keys, &meta)?,
        false => None,
    };
    if p.fetch.is_empty() {
        let out = response_head(ctx, &meta, checksum.as_ref(), &p.response);
        write_response(conn, &out, &[])
            .await
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
        return Ok(Outcome::KeepAlive);
    }
    remember(ctx, read, header, &meta);
    let source = Source {
        read,
        header,
        keys: &keys,
        meta: &meta,
        checksum: checksum.as_ref(),
    };
    send_planned(ctx, conn, &source, p, body).await
}

/// An object being read, with its keys open.
struct Source<'s> {
    read: &'s ObjectRead<'s>,
    header: &'s Header,
    keys: &'s DataKeys,
    meta: &'s ResponseHead,
    /// The client's checksum, opened for this response.
    checksum: Option<&'s StoredChecksum>,
}

/// Fetches and sends the body of plan `p`; where the plan's start was guessed from the
/// part size and nothing has been sent when it fails, follows its fallback (a read from
/// the start of the object) instead.
async fn send_planned(
    ctx: &Request<'_>,
    conn: &mut Conn,
    source: &Source<'_>,
    p: ReadPlan,
    mut body: Option<(Conn, Option<u64>)>,
) -> Result<Outcome, Failure> {
    let mut p = p;
    loop {
        let (lead, backend, length) = match body.take() {
            Some((b, length)) => (Vec::new(), b, length),
            None => match fetch(ctx, conn, source, &p).await? {
                Ok(f) => (f.lead, f.body, f.head.content_length().ok().flatten()),
                Err(outcome) => return Ok(outcome),
            },
        };
        let head = response_head(ctx, source.meta, source.checksum, &p.response);
        let keys = (source.header, source.keys);
        let sent = send_body(ctx, conn, keys, &p, (&lead, backend, length), head).await;
        match (sent, p.fallback.take()) {
            (Err(_), Some(fallback)) if conn.response().status == 0 => p = *fallback,
            (other, _) => return other,
        }
    }
}

/// The planned stored bytes of the object, from the backend ([`fetch_plan`]):
/// `Ok(Err(outcome))` when the backend's own answer (a failed condition, a missing object)
/// went to the client.
async fn fetch(
    ctx: &Request<'_>,
    conn: &mut Conn,
    source: &Source<'_>,
    p: &ReadPlan,
) -> Result<Result<Fetched, Outcome>, Failure> {
    let read = source.read;
    let at = (read.path.as_str(), read.query.as_deref());
    let fetched = match fetch_plan(ctx, conn, at, read.fwd.clone(), p).await? {
        Ok(fetched) => fetched,
        Err(outcome) => return Ok(Err(outcome)),
    };
    // The object must not have changed between the HEAD and this GET.
    if fetched.head.header("etag") != source.meta.header("etag") {
        return Err(object_changed());
    }
    Ok(Ok(fetched))
}

/// Streams the planned segments from `body` (the bytes fetched apart, then the backend's
/// body and its length) to the client under response head `head`, sent with the first
/// verified plaintext. A body read to its end goes back to the backend pool.
async fn send_body(
    ctx: &Request<'_>,
    conn: &mut Conn,
    keys: (&Header, &DataKeys),
    p: &ReadPlan,
    body: (&[u8], Conn, Option<u64>),
    head: ResponseHead,
) -> Result<Outcome, Failure> {
    let (lead, mut backend, length) = body;
    let mut sink = ClientBody::new(conn, &head)?;
    if let Err(e) = stream_plan(ctx, (lead, &mut backend), p, keys, &mut sink).await {
        drop(sink);
        // A start guessed from the part size that does not open, before anything was sent,
        // is the cue for the plan's fallback (parts of unequal sizes), not an integrity
        // failure; the fallback's own failure is one.
        let retried = p.fallback.is_some() && conn.response().status == 0;
        return Err(match retried {
            true => e.into_unreported_failure(STORED_OBJECT),
            false => e.into_failure(ctx, STORED_OBJECT),
        });
    }
    sink.finish().await?;
    if length.is_some() && length == p.fetch.last().map(StoredRange::len) {
        ctx.core.backend.release(backend);
    }
    Ok(Outcome::KeepAlive)
}

/// `Range` for a backend GET of `range`.
fn range_header(range: StoredRange) -> (String, Vec<u8>) {
    (
        "range".into(),
        format!("bytes={}-{}", range.first, range.last).into_bytes(),
    )
}

/// The response head: the object's headers from `meta`, then the plan's numbers.
fn response_head(
    ctx: &Request<'_>,
    meta: &ResponseHead,
    checksum: Option<&StoredChecksum>,
    numbers: &ResponseNumbers,
) -> ResponseHead {
    let mut out = ResponseHead::new(numbers.status);
    object_headers(ctx, meta, checksum, &mut out);
    if let Some(range) = numbers.content_range {
        out.push_header("content-range", range.to_string().into_bytes());
    }
    out.push_header(
        "content-length",
        numbers.content_length.to_string().into_bytes(),
    );
    out
}

/// The answer to a request that has no plan.
fn plan_failure(ctx: &Request<'_>, e: PlanError) -> Failure {
    match e {
        PlanError::InvalidPartNumber => S3Error::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
        )
        .into(),
        PlanError::PartNotSatisfiable => S3Error::new(
            416,
            S3Code::InvalidPartNumber,
            "The requested partnumber is not satisfiable",
        )
        .into(),
        PlanError::RangeNotSatisfiable { .. } => S3Error::invalid_range().into(),
        PlanError::PartsNotUniform => parts_not_uniform(),
        PlanError::Layout(_) => S3Error::internal_error()
            .with_detail("The stored object's length is not valid Twofold ciphertext")
            .into(),
        PlanError::LayoutRecordMissing => {
            crate::serve::error::report_integrity_failure(ctx, "layout_record", &e);
            Failure::integrity(format!("The stored object failed its integrity check: {e}"))
        }
    }
}

fn parts_not_uniform() -> Failure {
    S3Error::not_implemented()
        .with_message(
            "This object's parts are not all of one size; reading it by part number is not supported yet (use a Range)",
        )
        .into()
}

/// Segments per part of an aligned multipart object, where the read needs it: by part
/// number, or from a range that does not start in the first segment.
async fn part_size(
    ctx: &Request<'_>,
    read: &ObjectRead<'_>,
    (header, keys): (&Header, &DataKeys),
    meta: &ResponseHead,
    marked: bool,
) -> Result<Option<u64>, Failure> {
    if !header.multipart || marked {
        return Ok(None);
    }
    let stored = meta.content_length().ok().flatten().unwrap_or(0);
    let Ok(size) = plain_len(stored, header.segment_size) else {
        return Ok(None);
    };
    let past_first_segment = read
        .single_range()
        .and_then(|r| r.resolve(size).ok())
        .is_some_and(|r| r.first >= header.segment_size.bytes());
    if read.request.part_number.is_none() && !past_first_segment {
        return Ok(None);
    }
    segments_per_part(ctx, &read.stored(meta, header), keys, size).await
}

/// Opens the segments that check a part's guessed bounds (`partNumber` of an aligned
/// multipart object); any that does not open means the parts are not of one size.
async fn check_parts(
    ctx: &Request<'_>,
    read: &ObjectRead<'_>,
    (header, keys): (&Header, &DataKeys),
    p: &ReadPlan,
) -> Result<(), Failure> {
    if p.checks.is_empty() {
        return Ok(());
    }
    let mut out = vec![0u8; header.segment_size.bytes_usize() + super::OVERHEAD];
    for check in &p.checks {
        let cipher = SegmentCipher::new(header, keys, check.part)
            .map_err(|_| Failure::keep(S3Error::internal_error()))?;
        let (resp, body) = ctx
            .core
            .backend
            .simple(
                "GET",
                &read.path,
                read.query.as_deref(),
                vec![range_header(check.stored)],
                Vec::new(),
            )
            .await?;
        let ok = resp.status == 206
            && (cipher.open_to(check.index, true, &body, &mut out).is_ok()
                || (check.may_be_nonfinal
                    && cipher.open_to(check.index, false, &body, &mut out).is_ok()));
        if !ok {
            return Err(parts_not_uniform());
        }
    }
    Ok(())
}

pub(super) fn unencrypted_check(
    ctx: &Request<'_>,
    resp: &ResponseHead,
) -> Result<Option<Header>, Failure> {
    match object_header(resp)? {
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
pub(super) fn passthrough_read(ctx: &Request<'_>, operation: &'static str) {
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

pub(super) async fn stream_plain_get(
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
pub(super) async fn relay_raw(
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
