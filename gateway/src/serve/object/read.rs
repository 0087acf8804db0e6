//! Opening stored objects: their header and keys, their checksum record, and where the
//! parts of a multipart object begin.

use super::OVERHEAD;
use super::put::CHECKSUM_METADATA;
use crate::envelope::checksum_record::{self, StoredChecksum};
use crate::envelope::header::Header;
use crate::envelope::layout::{SEGMENT_OVERHEAD_BYTES, segment_count, segment_plain_len};
use crate::envelope::objmeta;
use crate::envelope::{ObjectName, SegmentCipher};
use crate::http::ResponseHead;
use crate::s3::S3Error;
use crate::serve::error::report_integrity_failure;
use crate::serve::stored::StoredObject;
use crate::serve::{Failure, Request};

/// The header of a backend object, from its response's metadata.
pub(super) fn object_header(resp: &ResponseHead) -> Result<Option<Header>, S3Error> {
    match resp.header_str(objmeta::HTTP_HEADER) {
        None => Ok(None),
        Some(v) => objmeta::decode(v).map(Some).map_err(|e| {
            S3Error::internal_error()
                .with_detail(format!("The object's Twofold metadata is damaged: {e}"))
        }),
    }
}

/// The data keys of the request's object, whose header is `header`.
pub(super) async fn request_keys(
    ctx: &Request<'_>,
    header: &Header,
) -> Result<crate::envelope::DataKeys, Failure> {
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Err(Failure::keep(S3Error::internal_error()));
    };
    let customer = crate::serve::respond::request_sse_c(ctx, crate::s3::sse_c::Role::Object)?;
    ctx.core
        .keyring
        .open_with(
            header,
            ObjectName { bucket, key },
            customer.as_ref().map(|c| &c.key),
        )
        .await
        .map_err(Failure::from)
}

/// Opens the sealed checksum record of the object whose header is `header`, keys `keys`
/// and backend response head `resp`: the client's checksum, `None` when the object has no
/// record. A record that does not open under the object's keys is an integrity failure:
/// the request fails, as for a damaged layout record.
pub(super) fn reveal_checksum(
    ctx: &Request<'_>,
    header: &Header,
    keys: &crate::envelope::DataKeys,
    resp: &ResponseHead,
) -> Result<Option<StoredChecksum>, Failure> {
    let Some(value) = resp.header_str(CHECKSUM_METADATA) else {
        return Ok(None);
    };
    match checksum_record::open_for(header, keys, value.trim()) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            report_integrity_failure(ctx, "checksum_record", &e);
            Err(Failure::integrity(format!(
                "The stored object failed its integrity check: {e}"
            )))
        }
    }
}

/// Most part sizes remembered per core.
pub(super) const PART_SIZE_CACHE_ENTRIES: usize = 1024;

/// Segments per part of a multipart object, assuming all parts but the last are of one
/// size (the way every common client uploads): found by a binary search for the segment
/// that ends part 1 (it opens as final of part 1; earlier ones open as non-final; later
/// ones do not open under part 1's keys). About log2(segments) small ranged reads, once
/// per object and core.
pub(super) async fn segments_per_part(
    ctx: &Request<'_>,
    obj: &StoredObject<'_>,
    keys: &crate::envelope::DataKeys,
    size: u64,
) -> Result<Option<u64>, Failure> {
    let StoredObject {
        path,
        query,
        header,
        meta,
    } = *obj;
    let (Some(bucket), Some(key)) = (&ctx.address.bucket, &ctx.address.key) else {
        return Ok(None);
    };
    let etag = meta.header_str("etag").unwrap_or("").to_owned();
    let cache_key = (bucket.clone(), key.clone(), etag.clone());
    if let Some(m) = ctx.core.part_sizes.borrow().get(&cache_key) {
        return Ok(Some(*m));
    }
    let cipher = SegmentCipher::new(header, keys, 1)
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
