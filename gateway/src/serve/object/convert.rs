//! CopyObject of a format version 1 object with `x-amz-metadata-directive: REPLACE`: the
//! copy is written as a format version 2 object. A version 1 object's segments bind its
//! version byte, so no re-wrapped header makes it version 2: the source is fetched from the
//! backend, opened and verified segment by segment by the one streaming read
//! ([`stream_plan`]), and its plaintext sealed as a new single-part object, as PutObject
//! seals a body (fresh data keys, the request's metadata in a sealed record, the source's
//! checksum sealed again for the new keys), in a single backend PUT of known length.
//!
//! Nothing unverified is stored: the PUT's final segment goes out only once every segment
//! of the source verified ([`Recut`]). On any failure the PUT's connection is dropped with
//! its body incomplete, so the backend stores nothing and an object already at the
//! destination stays as it was. A long copy keeps the client's connection alive
//! ([`keep_alive`]).

use super::OVERHEAD;
use super::copy_request::{CopyRequest, copy_answer, described_headers};
use super::put::{CHECKSUM_METADATA, PUT_OBJECT_BYTES_MAX, PutSealing, SealSink};
use super::read::reveal_checksum;
use super::recut::Recut;
use super::stream::{PlainSink, stream_plan};
use crate::envelope::checksum_record::{self, StoredChecksum};
use crate::envelope::header::Header;
use crate::envelope::layout::stored_len;
use crate::envelope::plan::{ObjectMeta, PlanError, ReadPlan, ReadRequest, parts_count_from_etag};
use crate::envelope::{DataKeys, ObjectName, SegmentCipher, objmeta, record};
use crate::http::{RequestHead, ResponseHead};
use crate::s3::headers::CONVERT_FORWARDED;
use crate::s3::{S3Error, xml};
use crate::serve::backend::{BackendError, read_small_body};
use crate::serve::io::Conn;
use crate::serve::keepalive::{Answer, conclude, keep_alive};
use crate::serve::respond::forward_error;
use crate::serve::{Failure, Outcome, Request, backend_path, write_response};
use std::ops::Range;

/// Largest source a copy converts: S3's limit on any CopyObject source (5 GiB), which
/// one PutObject-sized write holds.
pub const CONVERTED_COPY_BYTES_MAX: u64 = PUT_OBJECT_BYTES_MAX;
/// Largest backend answer (an error document, a PUT's) read into memory, in bytes.
const ANSWER_BODY_BYTES_MAX: usize = 1 << 20;
/// What an integrity failure of the source names.
const COPY_SOURCE: &str = "The copy source";

/// CopyObject of the version 1 object `header` describes (`src`: the backend's HEAD of it)
/// to `to`, sealed again as version 2 (see the module's comment). Every conversion past
/// the copy-source conditions is counted and logged, stored or not ([`report`]).
pub(super) async fn convert(
    ctx: &Request<'_>,
    conn: &mut Conn,
    req: &CopyRequest,
    to: ObjectName<'_>,
    src: &ResponseHead,
    header: Header,
) -> Result<Outcome, Failure> {
    if !source_dates_hold(ctx.head, src.header_str("last-modified")) {
        return Err(Failure::keep(S3Error::precondition_failed()));
    }
    let failed = |size| report(ctx, req.source(), to, size, false);
    let source = Source::open(ctx, req, src, header)
        .await
        .inspect_err(|_| failed(None))?;
    let (target, body) = match prepare(ctx, conn, req, to, src, &source).await {
        Ok(Ok(ready)) => ready,
        Ok(Err(outcome)) => {
            failed(Some(source.size));
            return Ok(outcome);
        }
        Err(f) => {
            failed(Some(source.size));
            return Err(f);
        }
    };
    let key = Some(req.key_id.as_str());
    let answer = keep_alive(ctx, (conn, key), store(ctx, &source, &target, body)).await;
    let (committed, result) = match answer {
        Answer::Now(r) => (false, r),
        Answer::Committed(r) => (true, r),
    };
    let stored = matches!(&result, Ok((resp, _)) if resp.status == 200);
    report(ctx, req.source(), to, Some(source.size), stored);
    match committed {
        false => answer_now(ctx, conn, (src, &req.key_id), result).await,
        true => {
            let result = result.and_then(|(resp, body)| match resp.status {
                200 => {
                    let (head, doc) = converted_result(&resp, src);
                    Ok((head, doc.into_bytes()))
                }
                _ => Err(refused(&resp, &body)),
            });
            Ok(conclude(ctx, conn, "CopyObject", result).await)
        }
    }
}

/// What the copy needs besides its opened source: the new object sealed (its keys, its
/// metadata, its tags) and the source's body from the backend; `Ok(Err(outcome))` when the
/// backend's own answer to that GET went to the client.
async fn prepare(
    ctx: &Request<'_>,
    conn: &mut Conn,
    req: &CopyRequest,
    to: ObjectName<'_>,
    src: &ResponseHead,
    source: &Source,
) -> Result<Result<(Target, (Conn, Option<u64>)), Outcome>, Failure> {
    let tags = match tag_source(ctx.head, src).map_err(Failure::keep)? {
        TagSource::Request => ctx.head.header("x-amz-tagging").map(<[u8]>::to_vec),
        TagSource::Source => Some(source_tags(ctx, req).await?),
        TagSource::None => None,
    };
    let target = Target::seal(ctx, (to, &req.key_id), source, tags).await?;
    Ok(fetch_source(ctx, conn, req, src, &source.plan)
        .await?
        .map(|body| (target, body)))
}

/// The answer to a copy that finished before its answer was kept alive: the backend's
/// own error, or CopyObject's result.
async fn answer_now(
    ctx: &Request<'_>,
    conn: &mut Conn,
    (src, key_id): (&ResponseHead, &str),
    result: Result<(ResponseHead, Vec<u8>), Failure>,
) -> Result<Outcome, Failure> {
    let (resp, body) = result?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &body, ctx.rid).await;
    }
    let (head, doc) = converted_result(&resp, src);
    let (out, body) = copy_answer(&head, doc.as_bytes(), Some(key_id), ctx.rid);
    write_response(conn, &out, &body)
        .await
        .map_err(|_| Failure::close(S3Error::internal_error()))?;
    Ok(Outcome::KeepAlive)
}

/// The source, opened: its header and keys, the plan that reads all of it, its plaintext
/// size and the client's checksum it carries.
struct Source {
    header: Header,
    keys: DataKeys,
    plan: ReadPlan,
    size: u64,
    checksum: Option<StoredChecksum>,
}

impl Source {
    /// Opens the keys of the source `src` (the backend's HEAD of it) and, where it has
    /// them, its layout and checksum records; plans a read of all of it. A source over
    /// [`CONVERTED_COPY_BYTES_MAX`] is refused, as S3 refuses such a copy.
    async fn open(
        ctx: &Request<'_>,
        req: &CopyRequest,
        src: &ResponseHead,
        header: Header,
    ) -> Result<Self, Failure> {
        let customer =
            crate::serve::respond::request_sse_c(ctx, crate::s3::sse_c::Role::CopySource)?;
        let keys = ctx
            .core
            .keyring
            .open_with(&header, req.source(), customer.as_ref().map(|c| &c.key))
            .await?;
        let stored = src.content_length().ok().flatten().ok_or_else(|| {
            Failure::from(BackendError::Protocol(
                "HEAD response without Content-Length".into(),
            ))
        })?;
        let layout = match record::required(&header, stored) {
            true => Some(crate::serve::unaligned::layout_of(
                ctx, &keys, &header, src, stored,
            )?),
            false => None,
        };
        let meta = ObjectMeta {
            header: &header,
            stored_len: stored,
            layout_record: layout.as_ref(),
            etag_parts: parts_count_from_etag(src.header_str("etag")),
            segments_per_part: None,
            has_checksum_record: false,
        };
        let plan = crate::envelope::plan::plan(&meta, &ReadRequest::whole())
            .map_err(|e| plan_failure(ctx, e))?;
        let size = plan.response.size;
        if size > CONVERTED_COPY_BYTES_MAX {
            return Err(Failure::keep(too_large()));
        }
        let checksum = reveal_checksum(ctx, &header, &keys, src)?;
        Ok(Source {
            header,
            keys,
            plan,
            size,
            checksum,
        })
    }
}

/// S3's answer to a copy whose source is over 5 GiB.
fn too_large() -> S3Error {
    S3Error::invalid_request(format!(
        "The specified copy source is larger than the maximum allowable size for a copy source: {CONVERTED_COPY_BYTES_MAX}"
    ))
}

/// The answer to a source that has no plan: one whose stored length does not match its
/// layout record failed its integrity check; any other is not Twofold ciphertext.
fn plan_failure(ctx: &Request<'_>, e: PlanError) -> Failure {
    match e {
        PlanError::LayoutRecordMissing => {
            crate::serve::error::report_integrity_failure(ctx, "layout_record", &e);
            Failure::integrity(format!("{COPY_SOURCE} failed its integrity check: {e}"))
        }
        e => Failure::keep(S3Error::internal_error().with_detail(format!("copy source: {e}"))),
    }
}

/// Where the copy's tags come from (`x-amz-tagging-directive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagSource {
    /// REPLACE: the request's `x-amz-tagging`, if any.
    Request,
    /// COPY (the default), of a source that has tags (`x-amz-tagging-count`).
    Source,
    /// COPY of a source without tags.
    None,
}

/// Where the copy's tags come from, by the request's `x-amz-tagging-directive` and the
/// source's tag count; an unknown directive is refused, as S3 refuses it.
fn tag_source(head: &RequestHead, src: &ResponseHead) -> Result<TagSource, S3Error> {
    match head.header_str("x-amz-tagging-directive") {
        Some("REPLACE") => Ok(TagSource::Request),
        None | Some("COPY") => {
            let tagged = src
                .header_str("x-amz-tagging-count")
                .and_then(|v| v.trim().parse::<u32>().ok())
                .is_some_and(|n| n > 0);
            Ok(if tagged {
                TagSource::Source
            } else {
                TagSource::None
            })
        }
        Some(other) => Err(S3Error::invalid_argument(format!(
            "Unknown tagging directive {other:?}"
        ))),
    }
}

/// The source's tags, as an `x-amz-tagging` value. A copy that must carry them fails
/// when they cannot be read.
async fn source_tags(ctx: &Request<'_>, req: &CopyRequest) -> Result<Vec<u8>, Failure> {
    crate::serve::unaligned::object_tagging(ctx, &req.src_path, req.src_query.as_deref())
        .await
        .map(String::into_bytes)
        .map_err(|reason| {
            Failure::keep(S3Error::bad_gateway().with_detail(format!(
                "The copy source's tags could not be read: {reason}"
            )))
        })
}

/// The new object: how it is sealed, where it goes and its backend PUT's headers.
struct Target {
    sealing: PutSealing,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    /// The sealed body's length.
    stored: u64,
}

impl Target {
    /// Fresh keys and header for `to`, the request's metadata sealed for them, and the
    /// source's checksum sealed again under them; nothing is sent yet.
    async fn seal(
        ctx: &Request<'_>,
        (to, key_id): (ObjectName<'_>, &str),
        source: &Source,
        tags: Option<Vec<u8>>,
    ) -> Result<Self, Failure> {
        let entries =
            super::described::request_entries(&ctx.head.headers).map_err(Failure::keep)?;
        let sealing = PutSealing::new(ctx, to, key_id, &entries).await?;
        let mut headers = put_headers(ctx.head, tags);
        headers.push((objmeta::HTTP_HEADER.into(), sealing.metadata.clone()));
        headers.push(sealing.described.clone());
        if let Some(c) = &source.checksum {
            let sealed = checksum_record::seal(&sealing.record_cipher, c)
                .map_err(|_| Failure::keep(S3Error::internal_error()))?;
            headers.push((CHECKSUM_METADATA.into(), sealed.into_bytes()));
        }
        Ok(Target {
            stored: stored_len(source.size, sealing.segment_size),
            path: backend_path(Some(to.bucket), Some(to.key)),
            sealing,
            headers,
        })
    }
}

/// The clear headers of the new object's backend PUT: those REPLACE takes from the request
/// and the format does not seal (Expires, the website redirect), the storage class and
/// ACL asked for, and the tags (`tags`).
fn put_headers(head: &RequestHead, tags: Option<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    let mut headers = described_headers(head, &ResponseHead::new(200), true, true);
    headers.extend(
        head.headers
            .iter()
            .filter(|(n, _)| CONVERT_FORWARDED.contains(&n.as_str()))
            .cloned(),
    );
    if let Some(t) = tags.filter(|t| !t.is_empty()) {
        headers.push(("x-amz-tagging".into(), t));
    }
    headers
}

/// Whether the copy-source date conditions hold for a source last modified at
/// `last_modified` (an HTTP date), as S3 decides them: `x-amz-copy-source-if-unmodified-since`
/// unless `x-amz-copy-source-if-match` is given (it was checked on its own), and
/// `-if-modified-since` unless `-if-none-match` is. The gateway copies from a plain GET,
/// which not every backend makes conditional, so it decides them itself; a date that is
/// not an HTTP date is no condition, as in HTTP.
fn source_dates_hold(head: &RequestHead, last_modified: Option<&str>) -> bool {
    let date = |name: &str| head.header_str(name).and_then(xml::iso_time_of_http_date);
    let Some(modified) = last_modified.and_then(xml::iso_time_of_http_date) else {
        return true;
    };
    let unmodified_since = match head.header("x-amz-copy-source-if-match") {
        Some(_) => None,
        None => date("x-amz-copy-source-if-unmodified-since"),
    };
    let modified_since = match head.header("x-amz-copy-source-if-none-match") {
        Some(_) => None,
        None => date("x-amz-copy-source-if-modified-since"),
    };
    // Both in the one form `iso_time_of_http_date` writes, which sorts as time does.
    unmodified_since.is_none_or(|d| modified <= d) && modified_since.is_none_or(|d| modified > d)
}

/// The source's planned stored bytes, from the backend: the body, positioned at its first
/// byte, and its length; or `Ok(Err(outcome))` when the backend's own answer (a missing
/// object) went to the client. The source must still be the object that was opened (the
/// HEAD's ETag), on which the request's copy-source conditions were checked.
async fn fetch_source(
    ctx: &Request<'_>,
    conn: &mut Conn,
    req: &CopyRequest,
    src: &ResponseHead,
    plan: &ReadPlan,
) -> Result<Result<(Conn, Option<u64>), Outcome>, Failure> {
    let [range] = plan.fetch.as_slice() else {
        return Err(Failure::keep(S3Error::internal_error()));
    };
    let headers = vec![(
        "range".into(),
        format!("bytes={}-{}", range.first, range.last).into_bytes(),
    )];
    let at = (req.src_path.as_str(), req.src_query.as_deref());
    let (mut body, resp) = ctx.core.backend.get(at.0, at.1, headers).await?;
    let whole = resp.status == 200 && range.first == 0;
    if resp.status != 206 && !whole {
        let (text, _) = read_small_body(&mut body, &resp, false, ANSWER_BODY_BYTES_MAX).await?;
        return forward_error(conn, &resp, &text, ctx.rid).await.map(Err);
    }
    if resp.header("etag") != src.header("etag") {
        return Err(Failure::keep(S3Error::service_unavailable().with_detail(
            "The copy source changed while it was being copied; retry the request",
        )));
    }
    Ok(Ok((body, resp.content_length().ok().flatten())))
}

/// Streams the source's verified plaintext, sealed, into the backend PUT of the new
/// object, its final segment only once the whole source verified; the backend's answer.
/// Any failure drops the PUT's connection before its body is complete.
async fn store(
    ctx: &Request<'_>,
    source: &Source,
    target: &Target,
    (mut body, length): (Conn, Option<u64>),
) -> Result<(ResponseHead, Vec<u8>), Failure> {
    let ex = ctx
        .core
        .backend
        .send_head(
            "PUT",
            &target.path,
            None,
            target.headers.clone(),
            Some(target.stored),
        )
        .await?;
    let seg = target.sealing.segment_size;
    let mut reseal = Reseal {
        cipher: &target.sealing.cipher,
        recut: Recut::new(source.size, seg),
        sink: SealSink(ex),
        dst: ctx.core.buffers.take(seg.bytes_usize() + OVERHEAD),
    };
    let keys = (&source.header, &source.keys);
    stream_plan(ctx, (&[], &mut body), &source.plan, keys, &mut reseal)
        .await
        .map_err(|e| e.into_failure(ctx, COPY_SOURCE))?;
    let (sink, dst) = reseal.finish().await?;
    ctx.core.buffers.give(dst);
    // Read to its end when the backend sent just the planned bytes: reusable.
    let fetched: u64 = source.plan.fetch.iter().map(|r| r.len()).sum();
    if length == Some(fetched) {
        ctx.core.backend.release(body);
    }
    sink.answer(ctx, ANSWER_BODY_BYTES_MAX).await
}

/// The source's plaintext sealed again as the new object's segments ([`Recut`]), each sent
/// on to the backend as it fills; the final one by [`Reseal::finish`].
struct Reseal<'s> {
    cipher: &'s SegmentCipher,
    recut: Recut,
    sink: SealSink,
    /// One stored segment's room, from the core's pool.
    dst: Vec<u8>,
}

impl Reseal<'_> {
    /// Adds verified plaintext; every segment but the final one is sealed and sent as it
    /// fills.
    async fn take(&mut self, mut chunk: &[u8]) -> Result<(), Failure> {
        while !chunk.is_empty() {
            let t = self
                .recut
                .take(chunk.len())
                .map_err(|e| Failure::close(S3Error::internal(e)))?;
            let n = t.into.len();
            self.dst[t.into].copy_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if let Some(s) = t.seal {
                self.seal(s).await?;
            }
        }
        Ok(())
    }

    /// Seals segment `s` (its plaintext at the start of the buffer) and sends it.
    async fn seal(&mut self, s: crate::envelope::write_plan::WriteSegment) -> Result<(), Failure> {
        // In range: a segment holds at most the segment size, a `usize`.
        let sealed = self
            .cipher
            .seal(s.index, s.last, &mut self.dst, s.plain_len as usize)
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
        let dst = std::mem::take(&mut self.dst);
        self.dst = self.sink.write(dst, sealed).await?;
        Ok(())
    }

    /// Seals and sends the final segment, once every segment of the source verified; gives
    /// back the sink and the buffer.
    async fn finish(mut self) -> Result<(SealSink, Vec<u8>), Failure> {
        let last = self
            .recut
            .finish()
            .map_err(|e| Failure::close(S3Error::internal(e)))?;
        self.seal(last).await?;
        Ok((self.sink, self.dst))
    }
}

impl PlainSink for Reseal<'_> {
    async fn put(&mut self, buf: Vec<u8>, range: Range<usize>) -> (Result<(), Failure>, Vec<u8>) {
        let res = self.take(&buf[range]).await;
        (res, buf)
    }
}

/// CopyObject's answer for the new object, from the backend's answer to its PUT: its
/// version, the source version copied, and the result document with the backend's ETag
/// and, as LastModified, the backend's time of the PUT's answer.
fn converted_result(put: &ResponseHead, src: &ResponseHead) -> (ResponseHead, String) {
    let mut head = ResponseHead::new(200);
    head.push_header("content-type", b"application/xml".to_vec());
    if let Some(v) = put.header("x-amz-version-id") {
        head.push_header("x-amz-version-id", v.to_vec());
    }
    if let Some(v) = src.header("x-amz-version-id") {
        head.push_header("x-amz-copy-source-version-id", v.to_vec());
    }
    let modified = put
        .header_str("date")
        .and_then(xml::iso_time_of_http_date)
        .unwrap_or_else(|| xml::iso_time(std::time::SystemTime::now()));
    let etag = put.header_str("etag").unwrap_or("\"\"");
    (head, xml::copy_object_result(etag, &modified))
}

/// The failure of a copy whose 200 went out already, for a backend that refused its PUT.
fn refused(resp: &ResponseHead, body: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(body);
    let code = xml::value(&text, "Code").unwrap_or("no error code");
    Failure::keep(S3Error::bad_gateway().with_detail(format!(
        "Storage backend refused the converted copy: {} {code}",
        resp.status
    )))
}

/// Counts a conversion and logs it, one line each: the names, the plaintext size where
/// the source opened, whether the copy was stored; never key material.
fn report(
    ctx: &Request<'_>,
    from: ObjectName<'_>,
    to: ObjectName<'_>,
    size: Option<u64>,
    stored: bool,
) {
    let result = if stored { "ok" } else { "failed" };
    metrics::counter!(crate::telemetry::FORMAT_CONVERSIONS_TOTAL, "result" => result).increment(1);
    tracing::info!(
        target: "twofold::convert",
        id = %ctx.rid,
        from = %format_args!("/{}/{}", from.bucket, from.key),
        to = %format_args!("/{}/{}", to.bucket, to.key),
        plain_bytes = size,
        result,
        "a format version 1 object copied with REPLACE, to be sealed again as version 2"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODIFIED: &str = "Sat, 28 Nov 2026 16:19:02 GMT";
    const BEFORE: &str = "Sat, 28 Nov 2026 16:19:01 GMT";
    const AFTER: &str = "Sun, 29 Nov 2026 00:00:00 GMT";

    fn request(headers: &[(&str, &str)]) -> RequestHead {
        headers
            .iter()
            .fold(RequestHead::new("PUT", "/b/k"), |h, (n, v)| {
                h.with_header(n, *v)
            })
    }

    fn holds(headers: &[(&str, &str)]) -> bool {
        source_dates_hold(&request(headers), Some(MODIFIED))
    }

    #[test]
    fn copy_source_dates_are_decided_as_s3_decides_them() {
        let unmodified = "x-amz-copy-source-if-unmodified-since";
        let modified = "x-amz-copy-source-if-modified-since";
        assert!(holds(&[]));
        assert!(holds(&[(unmodified, MODIFIED)]));
        assert!(holds(&[(unmodified, AFTER)]));
        assert!(!holds(&[(unmodified, BEFORE)]));
        assert!(holds(&[(modified, BEFORE)]));
        assert!(!holds(&[(modified, MODIFIED)]));
        assert!(!holds(&[(modified, AFTER)]));
        // An entity-tag condition given with a date decides alone (checked elsewhere).
        assert!(holds(&[
            (unmodified, BEFORE),
            ("x-amz-copy-source-if-match", "\"e\"")
        ]));
        assert!(holds(&[
            (modified, AFTER),
            ("x-amz-copy-source-if-none-match", "\"x\"")
        ]));
        // A date that is no HTTP date is no condition; nor is a source without a date.
        assert!(holds(&[(unmodified, "yesterday")]));
        assert!(source_dates_hold(&request(&[(unmodified, BEFORE)]), None));
    }

    #[test]
    fn the_tags_follow_the_tagging_directive() {
        let tagged = ResponseHead::new(200).with_header("x-amz-tagging-count", "2");
        let bare = ResponseHead::new(200);
        let directive = |v: &str| request(&[("x-amz-tagging-directive", v)]);
        assert_eq!(tag_source(&request(&[]), &tagged), Ok(TagSource::Source));
        assert_eq!(tag_source(&directive("COPY"), &bare), Ok(TagSource::None));
        assert_eq!(
            tag_source(&directive("REPLACE"), &tagged),
            Ok(TagSource::Request)
        );
        assert_eq!(
            tag_source(&directive("copy"), &tagged).unwrap_err().status,
            400
        );
    }

    fn value<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    #[test]
    fn the_new_objects_put_carries_only_what_the_format_leaves_in_the_clear() {
        let head = request(&[
            ("content-type", "text/secret"),
            ("x-amz-meta-owner", "secret"),
            ("cache-control", "secret"),
            ("expires", "Thu, 01 Dec 2094 16:00:00 GMT"),
            ("x-amz-storage-class", "STANDARD_IA"),
            ("x-amz-acl", "private"),
            ("x-amz-copy-source", "/src/k"),
            ("x-amz-copy-source-if-match", "\"e\""),
            ("x-amz-metadata-directive", "REPLACE"),
            ("x-amz-tagging", "a=1"),
        ]);
        let headers = put_headers(&head, Some(b"k=v".to_vec()));
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "expires",
                "x-amz-storage-class",
                "x-amz-acl",
                "x-amz-tagging"
            ]
        );
        assert_eq!(value(&headers, "x-amz-tagging"), Some(&b"k=v"[..]));
        assert!(value(&put_headers(&head, Some(Vec::new())), "x-amz-tagging").is_none());
        assert!(value(&put_headers(&head, None), "x-amz-tagging").is_none());
    }

    #[test]
    fn the_result_names_the_new_object_and_the_source_version() {
        let put = ResponseHead::new(200)
            .with_header("etag", "\"abc\"")
            .with_header("date", MODIFIED)
            .with_header("x-amz-version-id", "v2");
        let src = ResponseHead::new(200).with_header("x-amz-version-id", "v1");
        let (head, doc) = converted_result(&put, &src);
        assert_eq!(head.header("x-amz-version-id"), Some(&b"v2"[..]));
        assert_eq!(
            head.header("x-amz-copy-source-version-id"),
            Some(&b"v1"[..])
        );
        assert!(doc.contains("<ETag>&quot;abc&quot;</ETag>"), "{doc}");
        assert!(doc.contains("<LastModified>2026-11-28T16:19:02.000Z</LastModified>"));
        // The client's ETag form, and the encryption, come with the copy's answer.
        let (out, body) = copy_answer(&head, doc.as_bytes(), Some("k"), "rid");
        assert!(String::from_utf8_lossy(&body).contains("abc-0"));
        assert!(out.header("x-amz-server-side-encryption").is_some());

        let (head, doc) = converted_result(&ResponseHead::new(200), &ResponseHead::new(200));
        assert!(head.header("x-amz-version-id").is_none());
        assert!(head.header("x-amz-copy-source-version-id").is_none());
        assert!(doc.contains("<LastModified>20"), "{doc}");
    }

    #[test]
    fn a_source_over_five_gib_is_refused_as_s3_refuses_it() {
        assert_eq!(CONVERTED_COPY_BYTES_MAX, 5 * 1024 * 1024 * 1024);
        let e = too_large();
        assert_eq!((e.status, e.code.as_str()), (400, "InvalidRequest"));
        assert!(e.message.contains("5368709120"));
        let f = refused(
            &ResponseHead::new(403),
            b"<Error><Code>AccessDenied</Code></Error>",
        );
        assert_eq!(f.error.status, 502);
        assert!(f.error.detail().unwrap_or("").contains("AccessDenied"));
    }
}
