//! GetObject and HeadObject: the stored body opened segment by segment on its way back.

use super::OVERHEAD;
use super::put::CHECKSUM_METADATA;
use super::read::{
    PartCursor, object_header, part_bounds, request_keys, reveal_checksum, reveal_checksum_with,
    segments_per_part,
};
use crate::config::UnencryptedObjects;
use crate::envelope::SINGLE_PART_NUMBER;
use crate::envelope::header::Header;
use crate::envelope::layout::{Layout, PlainRange, plain_len, segment_count, segment_plain_len};
use crate::envelope::record;
use crate::http::ResponseHead;
use crate::s3::{RangeRequest, S3Code, S3Error, parse_range};
use crate::serve::backend::read_small_body;
use crate::serve::error::integrity_failure;
use crate::serve::io::Conn;
use crate::serve::respond::{
    OPENED_CHECKSUM, forward_error, object_headers, plain_object_headers, wants_checksum,
    write_unsatisfiable,
};
use crate::serve::stored::StoredObject;
use crate::serve::{Failure, Outcome, Request, backend_path, backend_query, write_response};

/// Request headers passed on for GET and HEAD.
pub(super) const GET_FORWARDED: &[&str] = &[
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

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
            let obj = StoredObject {
                path: &path,
                query: query.as_deref(),
                header: &header,
                meta: &resp,
            };
            return crate::serve::unaligned::serve(ctx, conn, &obj, fwd, head_only, part_number)
                .await;
        }
        let size = plain_len(stored, header.segment_size).map_err(|_| {
            Failure::keep(
                S3Error::internal_error()
                    .with_detail("The stored object's length is not valid Twofold ciphertext"),
            )
        })?;
        if let Some(k) = part_number {
            let (first, last, count) = part_bounds(
                ctx,
                &StoredObject {
                    path: &path,
                    query: query.as_deref(),
                    header: &header,
                    meta: &resp,
                },
                size,
                k,
            )
            .await?;
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
                &StoredObject {
                    path: &path,
                    query: query.as_deref(),
                    header: &header,
                    meta: &resp,
                },
                fwd,
                size,
                Some(PlainRange { first, last }),
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
            if seen.len() >= crate::serve::SEEN_OBJECTS_MAX {
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
            &StoredObject {
                path: &path,
                query: query.as_deref(),
                header: &header,
                meta: &resp,
            },
            fwd,
            size,
            Some(plain),
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
pub(super) async fn ranged_get_seen(
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
        &StoredObject {
            path,
            query,
            header: &seen.header,
            meta: &resp,
        },
        size,
        Window {
            range: Some(plain),
            first_segment: slice.first_segment,
            start: None,
        },
    )
    .await
    .map(Some)
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

pub(super) async fn stream_whole_get(
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
        Failure::from(crate::serve::backend::BackendError::Protocol(
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
        let obj = StoredObject {
            path,
            query,
            header: &header,
            meta: &resp,
        };
        return crate::serve::unaligned::serve(ctx, conn, &obj, fwd, false, None).await;
    }
    let size = plain_len(stored, header.segment_size).map_err(|_| {
        Failure::close(
            S3Error::internal_error()
                .with_detail("The stored object's length is not valid Twofold ciphertext"),
        )
    })?;
    let obj = StoredObject {
        path,
        query,
        header: &header,
        meta: &resp,
    };
    let window = Window {
        range: None,
        first_segment: 0,
        start: None,
    };
    open_and_stream(ctx, conn, backend_conn, &obj, size, window).await
}

pub(super) async fn stream_get(
    ctx: &Request<'_>,
    conn: &mut Conn,
    obj: &StoredObject<'_>,
    fwd: Vec<(String, Vec<u8>)>,
    size: u64,
    range: Option<PlainRange>,
) -> Result<Outcome, Failure> {
    let StoredObject {
        path,
        query,
        header,
        meta,
    } = *obj;
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
        && let Some(per_part) = segments_per_part(ctx, obj, size).await?
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
        let window = Window {
            range,
            first_segment,
            start,
        };
        let result = open_and_stream(ctx, conn, backend_conn, obj, size, window).await;
        // Before the response head went out, a failure with a guessed part position means
        // the guess was wrong: read again from the start.
        match result {
            Err(_) if attempt + 1 < tries => continue,
            other => return other,
        }
    }
    Err(Failure::keep(S3Error::internal_error()))
}

/// Bytes kept free before the plaintext in a GET's output buffer for the response head.
/// A head that does not fit (user metadata near S3's 2 KiB limit fits easily) is written on
/// its own.
pub(super) const HEAD_ROOM: usize = 8 * 1024;

/// Opens the object's keys, then streams: each segment is read from the backend, both tags
/// checked, and only then its plaintext written to the client. The response head goes out
/// after the first segment verified; a segment that fails after that cuts the connection,
/// so the client never sees a complete-looking response. `skip_segments` segments at the
/// start of the backend body are opened (to follow part boundaries) but not sent.
/// Which part of a stored object a GET streams: the plaintext range asked for (`None`: the
/// whole object), the first segment the backend's body begins with, and for a multipart
/// object the part and segment within it where that body begins.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) range: Option<PlainRange>,
    pub(super) first_segment: u64,
    pub(super) start: Option<(u32, u64)>,
}

pub(super) async fn open_and_stream(
    ctx: &Request<'_>,
    conn: &mut Conn,
    mut backend_conn: Conn,
    obj: &StoredObject<'_>,
    size: u64,
    window: Window,
) -> Result<Outcome, Failure> {
    let StoredObject { header, meta, .. } = *obj;
    let Window {
        range,
        first_segment,
        start,
    } = window;
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
            return Err(Failure::from(crate::serve::backend::BackendError::from(e)));
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
