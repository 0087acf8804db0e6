//! UploadPartCopy.

use super::exchange::{names, reply_with};
use super::part_keys::{PartSealing, PartTarget};
use super::upload_part::write_salt;
use crate::envelope::header::Header;
use crate::envelope::layout::{Layout, SEGMENT_OVERHEAD_BYTES, plain_len, salted_stored_len};
use crate::envelope::objmeta;
use crate::envelope::plan::{ObjectMeta, ReadPlan, ReadRequest, parts_count_from_etag, plan};
use crate::envelope::write_plan::{WriteSegment, WriteSegments, write_segments};
use crate::envelope::{DataKeys, ObjectName, SegmentCipher, record};
use crate::http::ResponseHead;
use crate::s3::checksum::{Checksum, ChecksumAlgorithm, Hasher};
use crate::s3::headers::COPY_SOURCE_CONDITIONS;
use crate::s3::{ByteRange, RangeRequest, S3Code, S3Error};
use crate::serve::io::Conn;
use crate::serve::object::{Fetched, PlainSink, SealSink, StreamError, fetch_plan, stream_plan};
use crate::serve::part_checksum::PartTagger;
use crate::serve::passthrough::read_body;
use crate::serve::respond::{KMS_KEY_ID_HEADER, forward_error, key_id_of};
use crate::serve::{Failure, Outcome, Request, backend_path, encode};
use std::ops::Range;

/// The request's copy-source conditions as the conditions of a request for the source
/// (`x-amz-copy-source-if-match` becomes `if-match`, ...).
fn source_conditions(ctx: &Request<'_>) -> Vec<(String, Vec<u8>)> {
    COPY_SOURCE_CONDITIONS
        .iter()
        .filter_map(|(from, to)| Some(((*to).to_owned(), ctx.head.header(from)?.to_vec())))
        .collect()
}

/// Largest backend error body relayed to the client, in bytes.
const ERROR_BODY_BYTES_MAX: usize = 1 << 20;

/// The copy source a request names, where it is on the backend, and the request's
/// conditions on it.
struct SourceRef {
    bucket: String,
    key: String,
    path: String,
    query: Option<String>,
}

impl SourceRef {
    fn from_request(ctx: &Request<'_>) -> Result<Self, Failure> {
        let crate::s3::CopySource {
            bucket,
            key,
            version_id,
        } = crate::serve::copy_source(ctx)?;
        if !crate::serve::may_read(ctx, &bucket) {
            return Err(Failure::keep(S3Error::access_denied()));
        }
        Ok(Self {
            path: backend_path(Some(&bucket), Some(&key)),
            query: version_id.map(|v| format!("versionId={}", encode(&v, false))),
            bucket,
            key,
        })
    }

    fn name(&self) -> ObjectName<'_> {
        ObjectName {
            bucket: &self.bucket,
            key: &self.key,
        }
    }
}

/// An opened copy source: its backend HEAD, header, layout record (for a marked object),
/// plaintext size and keys.
struct Source {
    head: ResponseHead,
    header: Header,
    layout: Option<Layout>,
    stored: u64,
    size: u64,
    keys: DataKeys,
}

impl Source {
    /// The read plan of plaintext bytes `first..=last` (`None`: the source is empty).
    fn plan(&self, range: Option<(u64, u64)>) -> Result<ReadPlan, Failure> {
        let meta = ObjectMeta {
            header: &self.header,
            stored_len: self.stored,
            layout_record: self.layout.as_ref(),
            etag_parts: parts_count_from_etag(self.head.header_str("etag")),
            segments_per_part: None,
            has_checksum_record: false,
        };
        let request = ReadRequest {
            range: range
                .map(|(first, last)| RangeRequest::Single(ByteRange::FromTo { first, last })),
            ..ReadRequest::whole()
        };
        plan(&meta, &request).map_err(|e| {
            Failure::keep(S3Error::internal_error().with_detail(format!("copy source: {e}")))
        })
    }
}

/// UploadPartCopy: a range of an existing object becomes a part. The source is opened and
/// verified segment by segment and its plaintext sealed again under the part's keys (the
/// two objects have different data keys, so the backend cannot copy the bytes itself).
pub(crate) async fn upload_part_copy(
    ctx: &Request<'_>,
    conn: &mut Conn,
) -> Result<Outcome, Failure> {
    let name = names(ctx)?;
    let target = PartTarget::from_request(ctx)?;
    let source_ref = SourceRef::from_request(ctx)?;
    let _ = read_body(ctx, conn).await?;
    // The part's checksum, for an upload that declared one, is computed here, as S3 does.
    let mut sealing = target.open(ctx, name).await?;
    let hasher = sealing.hasher.take();
    let source = match open_source(ctx, conn, &source_ref).await? {
        Ok(source) => source,
        Err(outcome) => return Ok(outcome),
    };
    let range = copy_range(ctx, source.size)?;
    let part_len = range.map_or(0, |(first, last)| last - first + 1);
    if part_len > crate::serve::object::PUT_OBJECT_BYTES_MAX {
        return Err(Failure::keep(S3Error::entity_too_large()));
    }
    let p = source.plan(range)?;
    let mut fetched = match fetch_source(ctx, conn, &source_ref, &source, &p).await? {
        Ok(fetched) => fetched,
        Err(outcome) => return Ok(outcome),
    };
    let path = backend_path(Some(name.bucket), Some(name.key));
    let sink = part_sink(ctx, &path, &sealing, part_len).await?;
    let seg = sealing.header.segment_size;
    let dst = ctx
        .core
        .buffers
        .take(seg.bytes_usize() + SEGMENT_OVERHEAD_BYTES as usize);
    let mut reseal = Reseal::new(&sealing, hasher, sink, part_len, dst);
    stream_plan(
        ctx,
        (&fetched.lead, &mut fetched.body),
        &p,
        (&source.header, &source.keys),
        &mut reseal,
    )
    .await
    .map_err(|e: StreamError| e.into_failure(ctx, "The copy source"))?;
    let (sink, hasher, dst) = reseal.finish().await?;
    ctx.core.buffers.give(dst);
    ctx.core.backend.release(fetched.body);
    let done = CopiedPart {
        number: sealing.number,
        key_id: key_id_of(ctx, &sealing.header),
        tagger: sealing.tagger.as_ref(),
        checksum: hasher.map(|h| (h.algorithm(), h.finish_raw())),
        modified: source.head.header_str("last-modified").unwrap_or(""),
    };
    answer(ctx, conn, sink, done).await
}

/// HEADs the copy source (with the request's copy-source conditions) and opens it:
/// `Ok(Err(outcome))` when the backend's own answer went to the client.
async fn open_source(
    ctx: &Request<'_>,
    conn: &mut Conn,
    source: &SourceRef,
) -> Result<Result<Source, Outcome>, Failure> {
    let (head, text) = ctx
        .core
        .backend
        .simple(
            "HEAD",
            &source.path,
            source.query.as_deref(),
            source_conditions(ctx),
            Vec::new(),
        )
        .await?;
    if head.status != 200 {
        return forward_error(conn, &head, &text, ctx.rid).await.map(Err);
    }
    let header = match head.header_str(objmeta::HTTP_HEADER) {
        Some(v) => objmeta::decode(v).map_err(|_| Failure::keep(S3Error::internal_error()))?,
        None => {
            return Err(Failure::keep(S3Error::new(
                403,
                S3Code::InvalidObjectState,
                "The copy source was not written through Twofold",
            )));
        }
    };
    let stored = head.content_length().ok().flatten().unwrap_or(0);
    // A source with a layout record: its parts are found from the record.
    let customer = crate::serve::respond::request_sse_c(ctx, crate::s3::sse_c::Role::CopySource)?;
    let keys = ctx
        .core
        .keyring
        .open_with(&header, source.name(), customer.as_ref().map(|c| &c.key))
        .await?;
    let layout = if record::required(&header, stored) {
        let layout_of = crate::serve::unaligned::layout_of;
        Some(layout_of(ctx, &keys, &header, &head, stored)?)
    } else {
        None
    };
    let size = match &layout {
        Some(l) => l.plain_len(),
        None => plain_len(stored, header.segment_size)
            .map_err(|_| Failure::keep(S3Error::internal_error()))?,
    };
    Ok(Ok(Source {
        head,
        header,
        layout,
        stored,
        size,
        keys,
    }))
}

/// The plaintext bytes `first..=last` of a source of `size` bytes that
/// `x-amz-copy-source-range` asks for (all of them without it; see
/// [`crate::s3::copy_source_range`]); `None` for an empty source.
fn copy_range(ctx: &Request<'_>, size: u64) -> Result<Option<(u64, u64)>, Failure> {
    let range = ctx.head.header("x-amz-copy-source-range");
    let r = crate::s3::copy_source_range(range, size).map_err(S3Error::from)?;
    Ok(r.map(|r| (r.first, r.last)))
}

/// The planned stored bytes of the source, from the backend, as long as it is still the
/// object that was opened (`If-Match` its ETag): `Ok(Err(outcome))` when the backend's own
/// answer went to the client.
async fn fetch_source(
    ctx: &Request<'_>,
    conn: &mut Conn,
    source_ref: &SourceRef,
    source: &Source,
    p: &ReadPlan,
) -> Result<Result<Fetched, Outcome>, Failure> {
    let mut conditions = Vec::new();
    if let Some(etag) = source.head.header("etag") {
        conditions.push(("if-match".into(), etag.to_vec()));
    }
    let at = (source_ref.path.as_str(), source_ref.query.as_deref());
    fetch_plan(ctx, conn, at, conditions, p).await
}

/// Where the part goes: the backend's UploadPart, its salt sent first.
async fn part_sink(
    ctx: &Request<'_>,
    path: &str,
    sealing: &PartSealing,
    part_len: u64,
) -> Result<SealSink, Failure> {
    let query = format!(
        "partNumber={}&uploadId={}",
        sealing.number,
        encode(&sealing.backend_id, false)
    );
    let stored = salted_stored_len(part_len, sealing.header.segment_size);
    let mut ex = ctx
        .core
        .backend
        .send_head("PUT", path, Some(&query), Vec::new(), Some(stored))
        .await?;
    write_salt(&mut ex, &sealing.salt).await?;
    Ok(SealSink(ex))
}

/// The plaintext of the copy source, sealed again as the segments of the part
/// ([`write_segments`] of the part's length).
struct Reseal<'s> {
    cipher: &'s SegmentCipher,
    hasher: Option<Hasher>,
    sink: SealSink,
    plan: WriteSegments,
    /// The segment being filled, `None` once every segment is sealed.
    at: Option<WriteSegment>,
    dst: Vec<u8>,
    fill: usize,
}

impl<'s> Reseal<'s> {
    /// Reseals into `dst`, a buffer of one stored segment (from the core's pool).
    fn new(
        sealing: &'s PartSealing,
        hasher: Option<Hasher>,
        sink: SealSink,
        part_len: u64,
        dst: Vec<u8>,
    ) -> Self {
        let seg = sealing.header.segment_size;
        let mut plan = write_segments(part_len, seg);
        Self {
            cipher: &sealing.cipher,
            hasher,
            sink,
            at: plan.next(),
            plan,
            dst,
            fill: 0,
        }
    }

    /// Adds plaintext; each segment of the part that fills up is sealed and sent.
    async fn take(&mut self, mut chunk: &[u8]) -> Result<(), Failure> {
        while !chunk.is_empty() {
            let Some(at) = self.at else {
                // More plaintext than the part's length: the plan and the source disagree.
                return Err(Failure::close(S3Error::internal_error()));
            };
            let full = at.plain_len as usize;
            let n = (full - self.fill).min(chunk.len());
            self.dst[self.fill..self.fill + n].copy_from_slice(&chunk[..n]);
            self.fill += n;
            chunk = &chunk[n..];
            if self.fill == full {
                self.seal_segment(at).await?;
            }
        }
        Ok(())
    }

    /// Seals the filled segment `at` and sends it on.
    async fn seal_segment(&mut self, at: WriteSegment) -> Result<(), Failure> {
        if let Some(h) = &mut self.hasher {
            h.update(&self.dst[..self.fill]);
        }
        let sealed = self
            .cipher
            .seal(at.index, at.last, &mut self.dst, self.fill)
            .map_err(|_| Failure::close(S3Error::internal_error()))?;
        let dst = std::mem::take(&mut self.dst);
        self.dst = self.sink.write(dst, sealed).await?;
        self.fill = 0;
        self.at = self.plan.next();
        Ok(())
    }

    /// Seals the one empty segment of an empty part; checks that the whole part was
    /// written; gives back the sink, the hasher and the buffer.
    async fn finish(mut self) -> Result<(SealSink, Option<Hasher>, Vec<u8>), Failure> {
        if let Some(at) = self.at
            && at.plain_len == 0
        {
            self.seal_segment(at).await?;
        }
        if self.at.is_some() {
            return Err(Failure::close(S3Error::internal_error()));
        }
        Ok((self.sink, self.hasher, self.dst))
    }
}

impl PlainSink for Reseal<'_> {
    async fn put(&mut self, buf: Vec<u8>, range: Range<usize>) -> (Result<(), Failure>, Vec<u8>) {
        let res = self.take(&buf[range]).await;
        (res, buf)
    }
}

/// A part copied: what its answer says.
struct CopiedPart<'a> {
    number: u32,
    key_id: Option<&'a str>,
    tagger: Option<&'a PartTagger>,
    checksum: Option<(ChecksumAlgorithm, Checksum)>,
    modified: &'a str,
}

impl CopiedPart<'_> {
    /// The part's ETag as the client sees it (tagged with its checksum, for an upload that
    /// declared one).
    fn client_etag(&self, etag: &str) -> String {
        match (self.tagger, &self.checksum) {
            (Some(t), Some((alg, digest))) => t.client_etag(self.number, *alg, digest, etag),
            _ => etag.to_owned(),
        }
    }
}

/// Ends the part: reads the backend's answer to the UploadPart, then answers
/// CopyPartResult.
async fn answer(
    ctx: &Request<'_>,
    conn: &mut Conn,
    sink: SealSink,
    done: CopiedPart<'_>,
) -> Result<Outcome, Failure> {
    let (resp, text) = sink.answer(ctx, ERROR_BODY_BYTES_MAX).await?;
    if resp.status != 200 {
        return forward_error(conn, &resp, &text, ctx.rid).await;
    }
    let etag = done.client_etag(resp.header_str("etag").unwrap_or("\"\""));
    copy_part_result(
        conn,
        ctx,
        (&etag, done.key_id),
        done.checksum,
        done.modified,
    )
    .await
}

/// The CopyPartResult answer, with the upload's key id.
async fn copy_part_result(
    conn: &mut Conn,
    ctx: &Request<'_>,
    (etag, key_id): (&str, Option<&str>),
    checksum: Option<(
        crate::s3::checksum::ChecksumAlgorithm,
        crate::s3::checksum::Checksum,
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
    let extra = key_id.map(|id| (KMS_KEY_ID_HEADER, id.as_bytes().to_vec()));
    reply_with(
        conn,
        &out,
        body.as_bytes(),
        ctx.rid,
        true,
        extra
            .into_iter()
            .chain(crate::serve::respond::encryption_echo(ctx))
            .collect(),
    )
    .await
}

/// `Sat, 28 Nov 2026 16:19:02 GMT` → `2026-11-28T16:19:02.000Z` (the form S3 uses in XML);
/// anything else is passed through.
pub(super) fn http_date_to_iso(v: &str) -> String {
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
