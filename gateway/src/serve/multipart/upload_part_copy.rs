//! UploadPartCopy.

use super::complete::stored_part;
use super::exchange::{names, reply};
use super::part_keys::{PartSealing, PartTarget};
use crate::envelope::layout::{plain_len, stored_len};
use crate::envelope::record;
use crate::envelope::{ObjectName, SegmentCipher};
use crate::http::ResponseHead;
use crate::objmeta;
use crate::s3::{S3Code, S3Error};
use crate::serve::io::Conn;
use crate::serve::object::SealSink;
use crate::serve::passthrough::read_body;
use crate::serve::respond::forward_error;
use crate::serve::{Failure, Outcome, Request, backend_path, encode};

/// The request's copy-source conditions as the conditions of a request for the source
/// (`x-amz-copy-source-if-match` becomes `if-match`, ...).
fn source_conditions(ctx: &Request<'_>) -> Vec<(String, Vec<u8>)> {
    [
        ("x-amz-copy-source-if-match", "if-match"),
        ("x-amz-copy-source-if-none-match", "if-none-match"),
        ("x-amz-copy-source-if-modified-since", "if-modified-since"),
        (
            "x-amz-copy-source-if-unmodified-since",
            "if-unmodified-since",
        ),
    ]
    .into_iter()
    .filter_map(|(from, to)| Some((to.to_owned(), ctx.head.header(from)?.to_vec())))
    .collect()
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
    let target = PartTarget::from_request(ctx)?;
    let crate::s3::CopySource {
        bucket: src_bucket,
        key: src_key,
        version_id: version,
    } = crate::serve::copy_source(ctx)?;
    if !crate::serve::may_read(ctx, &src_bucket) {
        return Err(Failure::keep(S3Error::access_denied()));
    }
    let _ = read_body(ctx, conn).await?;
    // The part's checksum, for an upload that declared one, is computed here, as S3 does.
    let PartSealing {
        number,
        backend_id,
        header,
        cipher,
        tagger,
        mut hasher,
        ..
    } = target.open(ctx, name).await?;

    // The source: its header, size, and keys.
    let src_path = backend_path(Some(&src_bucket), Some(&src_key));
    let src_query = version
        .as_ref()
        .map(|v| format!("versionId={}", encode(v, false)));
    let cond = source_conditions(ctx);
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
            Some(
                crate::serve::unaligned::layout_of(ctx, src_name, &src_header, &src, src_stored)
                    .await?,
            )
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
    if part_len > crate::serve::object::PUT_OBJECT_BYTES_MAX {
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
        crate::serve::object::PartCursor::new(&src_header, &src_keys)
    } else {
        crate::serve::object::PartCursor::at(
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
        .map_err(|e| Failure::from(crate::serve::backend::BackendError::from(e)))?;
    if src_resp.status != 206 && src_resp.status != 200 {
        let (b, _) =
            crate::serve::backend::read_small_body(&mut src_ex.conn, &src_resp, false, 1 << 20)
                .await?;
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
        res.map_err(|e| Failure::from(crate::serve::backend::BackendError::from(e)))?;
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
            crate::serve::error::integrity_failure(ctx, &e);
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
        .map_err(|e| Failure::from(crate::serve::backend::BackendError::from(e)))?;
    let (resp_body, reusable) =
        crate::serve::backend::read_small_body(&mut ex.conn, &resp, false, 1 << 20).await?;
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
pub(super) async fn sink_write(
    sink: &mut SealSink,
    dst: Vec<u8>,
    sealed: usize,
) -> Result<Vec<u8>, Failure> {
    match sink {
        SealSink::Backend(ex) => {
            let (res, b) = ex.conn.write_range(dst, 0..sealed).await;
            res.map_err(|e| Failure::from(crate::serve::backend::BackendError::from(e)))?;
            Ok(b)
        }
        SealSink::Md5(m) => {
            md5::Digest::update(m, &dst[..sealed]);
            Ok(dst)
        }
    }
}

/// The CopyPartResult answer.
pub(super) async fn copy_part_result(
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
