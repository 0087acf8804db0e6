//! A synchronous reader of a [`ReadPlan`](super::plan::ReadPlan): reads the planned stored
//! bytes from any [`Read`], opens each segment under both layers with its part's keys, and
//! only then hands the kept plaintext on. For the break-glass CLI and tests; the gateway
//! streams with its own I/O.

use super::layout::SEGMENT_OVERHEAD_BYTES;
use super::plan::{ReadPlan, SegmentId};
use super::{DataKeys, Error, SegmentCipher, header::Header};
use std::io::{self, Read};
use zeroize::Zeroizing;

const OVERHEAD: usize = SEGMENT_OVERHEAD_BYTES as usize;

/// Why a planned read stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A segment did not open (altered, reordered, truncated...): nothing of it was released.
    #[error(transparent)]
    Envelope(#[from] Error),
    /// The input ended early or failed, or the sink failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What a completed read saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    /// Part number of the last segment opened (0 for a single-part object).
    pub last_part: u32,
    /// Plaintext bytes handed to the sink.
    pub released: u64,
    /// Stored bytes read from the input.
    pub stored_read: u64,
}

/// Opens `segment` as segment `index` of the part `cipher` serves; a final segment that
/// opens only as non-final is reported as [`Error::Truncated`].
fn open(
    cipher: &SegmentCipher,
    index: u64,
    last: bool,
    input: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    match cipher.open_to(index, last, input, out) {
        Ok(n) => Ok(n),
        Err(e @ Error::SegmentRejected { .. }) if last => {
            if cipher.open_to(index, false, input, out).is_ok() {
                Err(Error::Truncated {
                    part: cipher.part(),
                    segment: index,
                })
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// Reads the stored bytes of `plan` from `input`, which must be positioned at the start of
/// its first fetched range, and opens its segments in order. The kept plaintext of each
/// segment goes to `sink` with its part number (possibly empty), once both of the segment's tags have
/// verified. Nothing after the last planned segment is read. (A plan with a fallback is
/// read as it is; the fallback is the caller's to try.)
pub fn read_plan<R: Read + ?Sized>(
    plan: &ReadPlan,
    header: &Header,
    keys: &DataKeys,
    input: &mut R,
    sink: &mut dyn FnMut(u32, &[u8]) -> io::Result<()>,
) -> Result<ReadSummary, ReadError> {
    let seg = header.segment_size.bytes_usize();
    let mut buf = Zeroizing::new(vec![0u8; seg + OVERHEAD]);
    let mut out = Zeroizing::new(vec![0u8; seg + OVERHEAD]);
    let mut cipher: Option<SegmentCipher> = None;
    let (mut part, mut index) = plan.follow_from.unwrap_or((0, 0));
    let mut summary = ReadSummary {
        last_part: part,
        released: 0,
        stored_read: 0,
    };
    for step in &plan.segments {
        let stored = usize::try_from(step.stored.len())
            .ok()
            .filter(|&n| n <= buf.len())
            .ok_or(Error::Internal("segment longer than the segment size"))?;
        input.read_exact(&mut buf[..stored])?;
        summary.stored_read += stored as u64;
        let input = &buf[..stored];
        let n = match step.id {
            SegmentId::Exact {
                part: p,
                index: i,
                last,
            } => {
                let c = cipher_for(&mut cipher, header, keys, p)?;
                summary.last_part = p;
                open(c, i, last, input, &mut out)?
            }
            SegmentId::Follow { object_last } => {
                let c = cipher_for(&mut cipher, header, keys, part)?;
                summary.last_part = part;
                if object_last {
                    open(c, index, true, input, &mut out)?
                } else {
                    match c.open_to(index, false, input, &mut out) {
                        Ok(n) => {
                            index += 1;
                            n
                        }
                        Err(e) => {
                            // The end of a part?
                            let n = c.open_to(index, true, input, &mut out).map_err(|_| e)?;
                            part = part.checked_add(1).ok_or(Error::Internal("part number"))?;
                            index = 0;
                            n
                        }
                    }
                }
            }
        };
        if n as u64 != step.plain_len {
            return Err(Error::Framing {
                part: summary.last_part,
                reason: "segment of another length than the layout says",
            }
            .into());
        }
        // Every opened segment goes to the sink, if only with nothing kept: so an empty
        // part is seen too.
        let a = usize::try_from(step.skip).map_err(|_| Error::Internal("skip"))?;
        let b = usize::try_from(step.skip + step.keep).map_err(|_| Error::Internal("keep"))?;
        let kept = out
            .get(a..b)
            .ok_or(Error::Internal("keep past the segment"))?;
        sink(summary.last_part, kept)?;
        summary.released += step.keep;
    }
    Ok(summary)
}

fn cipher_for<'c>(
    slot: &'c mut Option<SegmentCipher>,
    header: &Header,
    keys: &DataKeys,
    part: u32,
) -> Result<&'c SegmentCipher, Error> {
    if slot.as_ref().is_none_or(|c| c.part() != part) {
        *slot = Some(SegmentCipher::new(header, keys, part)?);
    }
    slot.as_ref().ok_or(Error::Internal("cipher"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header;
    use crate::envelope::layout::{Layout, SegmentSize, stored_len};
    use crate::envelope::plan::{ObjectMeta, ReadRequest, plan};
    use crate::envelope::record;
    use crate::s3::{ByteRange, RangeRequest};

    fn seg() -> SegmentSize {
        SegmentSize::from_log2(12).unwrap()
    }

    /// Seals parts of these sizes (one part 0 when `single`); returns header, keys,
    /// plaintext, stored body (with marker padding when unaligned) and layout record.
    fn seal(parts: &[u64], single: bool) -> (Header, DataKeys, Vec<u8>, Vec<u8>, Option<Layout>) {
        let mut header = test_header(if single { 0 } else { 5 });
        header.segment_size = seg();
        let keys = DataKeys::from_bytes([1; 32], [2; 32]);
        let total: u64 = parts.iter().sum();
        let plain: Vec<u8> = (0..total).map(|i| (i * 7 % 253) as u8).collect();
        let mut stored = Vec::new();
        let mut at = 0usize;
        for (k, &p) in parts.iter().enumerate() {
            let number = if single {
                0
            } else {
                u32::try_from(k + 1).unwrap()
            };
            let cipher = SegmentCipher::new(&header, &keys, number).unwrap();
            let mut w = super::super::stream::EncryptWriter::new(cipher, Vec::new());
            io::Write::write_all(&mut w, &plain[at..at + p as usize]).unwrap();
            let (body, _) = w.finish().unwrap();
            stored.extend_from_slice(&body);
            at += p as usize;
        }
        let record = (!single && record::needs_record(parts, seg())).then(|| {
            let layout = Layout::multipart(parts.to_vec(), seg());
            let pad = record::padding_len(layout.stored_len(), seg());
            stored.extend(std::iter::repeat_n(0xAA, pad as usize));
            layout
        });
        (header, keys, plain, stored, record)
    }

    fn read(
        header: &Header,
        keys: &DataKeys,
        stored: &[u8],
        record: Option<&Layout>,
        req: &ReadRequest,
    ) -> Result<(Vec<u8>, ReadSummary), ReadError> {
        let meta = ObjectMeta {
            header,
            stored_len: stored.len() as u64,
            layout_record: record,
            etag_parts: 1,
            segments_per_part: None,
            has_checksum_record: false,
        };
        let p = plan(&meta, req).unwrap();
        let mut out = Vec::new();
        let start = p.fetch.first().map_or(0, |f| f.first as usize);
        let mut input = &stored[start..];
        let summary = read_plan(&p, header, keys, &mut input, &mut |_, b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok((out, summary))
    }

    #[test]
    fn reads_every_layout_whole_and_ranged() {
        let s = seg().bytes();
        for (parts, single) in [
            (vec![0], true),
            (vec![3 * s + 1], true),
            (vec![s, s, 5], false),
            (vec![s + 1, s - 1, 3], false),
            (vec![0], false),
        ] {
            let (header, keys, plain, stored, rec) = seal(&parts, single);
            let (got, summary) =
                read(&header, &keys, &stored, rec.as_ref(), &ReadRequest::whole()).unwrap();
            assert_eq!(got, plain, "{parts:?}");
            let want_part = if single { 0 } else { parts.len() as u32 };
            assert_eq!(summary.last_part, want_part, "{parts:?}");
            let parts_stored: u64 = parts.iter().map(|&p| stored_len(p, seg())).sum();
            assert_eq!(summary.stored_read, parts_stored);
            if plain.len() > 2 {
                let req = ReadRequest {
                    range: Some(RangeRequest::Single(ByteRange::FromTo {
                        first: 1,
                        last: plain.len() as u64 - 2,
                    })),
                    ..ReadRequest::default()
                };
                let (got, _) = read(&header, &keys, &stored, rec.as_ref(), &req).unwrap();
                assert_eq!(got, plain[1..plain.len() - 1]);
            }
        }
    }

    #[test]
    fn altered_or_cut_bodies_fail() {
        let s = seg().bytes();
        for (parts, single) in [
            (vec![3 * s + 1], true),
            (vec![s, s, 5], false),
            (vec![s + 1, s - 1, 3], false),
        ] {
            let (header, keys, _, stored, rec) = seal(&parts, single);
            // A flipped bit anywhere in the parts' bodies.
            let parts_stored: u64 = parts.iter().map(|&p| stored_len(p, seg())).sum();
            for at in [0, 17, s as usize + 40, parts_stored as usize - 1] {
                let mut bad = stored.clone();
                bad[at] ^= 1;
                let r = read(&header, &keys, &bad, rec.as_ref(), &ReadRequest::whole());
                assert!(
                    matches!(r, Err(ReadError::Envelope(_))),
                    "{parts:?} bit at {at}: {r:?}"
                );
            }
            // The wrong keys.
            let other = DataKeys::from_bytes([1; 32], [3; 32]);
            assert!(
                read(
                    &header,
                    &other,
                    &stored,
                    rec.as_ref(),
                    &ReadRequest::whole()
                )
                .is_err()
            );
        }
        // A single-part body cut by whole segments opens as truncated.
        let (header, keys, _, stored, _) = seal(&[3 * s + 1], true);
        let cut = &stored[..(3 * seg().stored_bytes()) as usize];
        let r = read(&header, &keys, cut, None, &ReadRequest::whole());
        assert!(
            matches!(r, Err(ReadError::Envelope(Error::Truncated { .. }))),
            "{r:?}"
        );
    }
}
