//! A synchronous reader of a [`ReadPlan`](super::plan::ReadPlan): reads the planned stored
//! bytes from any [`Read`], opens each segment under both layers with its part's keys, and
//! only then hands the kept plaintext on. The opening itself is [`PlanOpener`], which the
//! gateway's streaming read drives with its own I/O.

use super::layout::SEGMENT_OVERHEAD_BYTES;
use super::plan::{ReadPlan, SegmentId};
use super::{DataKeys, Error, PartSalt, SegmentCipher, header::Header};
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

/// One opened segment: its part number and where its kept plaintext is in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// Part number of the segment (0 for a single-part object).
    pub part: u32,
    /// The plaintext to release, as a range of the output buffer (possibly empty).
    pub kept: std::ops::Range<usize>,
}

/// The segment-by-segment opening of a [`ReadPlan`], without I/O: the caller reads each
/// segment's stored bytes ([`PlanOpener::next_stored_len`] of them) from wherever they
/// come from and hands them to [`PlanOpener::open`], which verifies both layers' tags under
/// the right part's keys (following part boundaries for [`SegmentId::Follow`] segments)
/// and only then says which plaintext bytes to release. The gateway's streaming read and
/// [`read_plan`] are both this loop.
pub struct PlanOpener<'a> {
    plan: &'a ReadPlan,
    header: &'a Header,
    keys: &'a DataKeys,
    cipher: Option<SegmentCipher>,
    /// The salt of the part being read, where its layout is salted.
    salt: Option<(u32, PartSalt)>,
    next: usize,
    part: u32,
    index: u64,
}

impl std::fmt::Debug for PlanOpener<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanOpener")
            .field("next", &self.next)
            .field("part", &self.part)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<'a> PlanOpener<'a> {
    /// An opener at the first segment of `plan`.
    pub fn new(plan: &'a ReadPlan, header: &'a Header, keys: &'a DataKeys) -> Self {
        let (part, index) = plan.follow_from.unwrap_or((0, 0));
        Self {
            plan,
            header,
            keys,
            cipher: None,
            salt: None,
            next: 0,
            part,
            index,
        }
    }

    /// Stored bytes of the next segment to open; `None` once every segment is opened.
    pub fn next_stored_len(&self) -> Option<usize> {
        let step = self.plan.segments.get(self.next)?;
        usize::try_from(step.stored.len()).ok()
    }

    /// Whether the next step reads a part's salt rather than a segment.
    pub fn next_is_salt(&self) -> bool {
        self.plan
            .segments
            .get(self.next)
            .is_some_and(|s| matches!(s.id, SegmentId::Salt { .. }))
    }

    /// Bytes an output buffer needs for any segment of this plan.
    pub fn out_len(&self) -> usize {
        self.header.segment_size.bytes_usize() + OVERHEAD
    }

    /// Opens the next segment from its stored bytes `input` into `out` (at least
    /// [`PlanOpener::out_len`] bytes). On success the segment verified under both layers
    /// and `out[kept]` is the plaintext to release; on failure nothing of it may be used.
    pub fn open(&mut self, input: &[u8], out: &mut [u8]) -> Result<Opened, Error> {
        let step = *self
            .plan
            .segments
            .get(self.next)
            .ok_or(Error::Internal("no segment left to open"))?;
        if input.len() as u64 != step.stored.len() || out.len() < self.out_len() {
            return Err(Error::Internal("segment buffer of the wrong length"));
        }
        let (part, n) = match step.id {
            SegmentId::Salt { part } => {
                let salt = PartSalt::try_from(input)
                    .map_err(|_| Error::Internal("salt of the wrong length"))?;
                self.salt = Some((part, salt));
                self.cipher = None;
                self.next += 1;
                return Ok(Opened { part, kept: 0..0 });
            }
            SegmentId::Exact { part, index, last } => {
                let salt = self.salt.as_ref().filter(|(p, _)| *p == part).map(|s| &s.1);
                let c = cipher_for(&mut self.cipher, (self.header, self.keys), part, salt)?;
                (part, open(c, index, last, input, out)?)
            }
            SegmentId::Follow { object_last } => self.follow(object_last, input, out)?,
        };
        if n as u64 != step.plain_len {
            return Err(Error::Framing {
                part,
                reason: "segment of another length than the layout says",
            });
        }
        let a = usize::try_from(step.skip).map_err(|_| Error::Internal("skip"))?;
        let b = usize::try_from(step.skip + step.keep).map_err(|_| Error::Internal("keep"))?;
        if b > n {
            return Err(Error::Internal("keep past the segment"));
        }
        self.next += 1;
        Ok(Opened { part, kept: a..b })
    }

    /// Opens a segment of an aligned multipart object where the cursor is: as non-final
    /// (the cursor moves on in the part), or else as its part's final segment (the cursor
    /// moves to the next part). The object's last segment must open as final.
    fn follow(
        &mut self,
        object_last: bool,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<(u32, usize), Error> {
        let part = self.part;
        let c = cipher_for(&mut self.cipher, (self.header, self.keys), part, None)?;
        if object_last {
            return Ok((part, open(c, self.index, true, input, out)?));
        }
        match c.open_to(self.index, false, input, out) {
            Ok(n) => {
                self.index += 1;
                Ok((part, n))
            }
            Err(e) => {
                // The end of a part?
                let n = c.open_to(self.index, true, input, out).map_err(|_| e)?;
                self.part = part.checked_add(1).ok_or(Error::Internal("part number"))?;
                self.index = 0;
                Ok((part, n))
            }
        }
    }
}

/// Reads the stored bytes of `plan` from `input`, which must be positioned at the start of
/// its first fetched range, and opens its segments in order ([`PlanOpener`]). The kept
/// plaintext of each segment goes to `sink` with its part number (possibly empty), once
/// both of the segment's tags have verified. Nothing after the last planned segment is
/// read. (A plan with a fallback is read as it is; the fallback is the caller's to try.)
pub fn read_plan<R: Read + ?Sized>(
    plan: &ReadPlan,
    header: &Header,
    keys: &DataKeys,
    input: &mut R,
    sink: &mut dyn FnMut(u32, &[u8]) -> io::Result<()>,
) -> Result<ReadSummary, ReadError> {
    let mut opener = PlanOpener::new(plan, header, keys);
    let mut buf = Zeroizing::new(vec![0u8; opener.out_len()]);
    let mut out = Zeroizing::new(vec![0u8; opener.out_len()]);
    let mut summary = ReadSummary {
        last_part: plan.follow_from.map_or(0, |(part, _)| part),
        released: 0,
        stored_read: 0,
    };
    while let Some(stored) = opener.next_stored_len() {
        let input_buf = buf
            .get_mut(..stored)
            .ok_or(Error::Internal("segment longer than the segment size"))?;
        input.read_exact(input_buf)?;
        summary.stored_read += stored as u64;
        let salt = opener.next_is_salt();
        let opened = opener.open(input_buf, &mut out)?;
        if salt {
            continue;
        }
        // Every opened segment goes to the sink, if only with nothing kept: so an empty
        // part is seen too.
        sink(opened.part, &out[opened.kept.clone()])?;
        summary.last_part = opened.part;
        summary.released += opened.kept.len() as u64;
    }
    Ok(summary)
}

/// The cipher of part `part` (stored after `salt`, where its layout is salted), from
/// `slot` when it holds that part's.
fn cipher_for<'c>(
    slot: &'c mut Option<SegmentCipher>,
    object: (&Header, &DataKeys),
    part: u32,
    salt: Option<&PartSalt>,
) -> Result<&'c SegmentCipher, Error> {
    let (header, keys) = object;
    if slot.as_ref().is_none_or(|c| c.part() != part) {
        *slot = Some(match salt {
            Some(salt) => SegmentCipher::new_salted(header, keys, part, salt)?,
            None => SegmentCipher::new(header, keys, part)?,
        });
    }
    slot.as_ref().ok_or(Error::Internal("cipher"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::{test_header, test_header_v1};
    use crate::envelope::layout::{Layout, SegmentSize, stored_len};
    use crate::envelope::plan::{ObjectMeta, ReadRequest, plan};
    use crate::envelope::record;
    use crate::s3::{ByteRange, RangeRequest};

    fn seg() -> SegmentSize {
        SegmentSize::from_log2(12).unwrap()
    }

    /// Seals parts of these sizes (one part 0 when `single`) in format version 1; returns
    /// header, keys, plaintext, stored body (with marker padding when unaligned) and
    /// layout record.
    fn seal(parts: &[u64], single: bool) -> (Header, DataKeys, Vec<u8>, Vec<u8>, Option<Layout>) {
        seal_in(test_header_v1(if single { 0 } else { 5 }), parts, single)
    }

    /// [`seal`] in format version 2: every multipart object has a layout record.
    fn seal_v2(parts: &[u64]) -> (Header, DataKeys, Vec<u8>, Vec<u8>, Option<Layout>) {
        seal_in(test_header(5), parts, false)
    }

    /// [`seal_v2`] with every part stored after its own salt.
    fn seal_v2_salted(parts: &[u64]) -> (Header, DataKeys, Vec<u8>, Vec<u8>, Option<Layout>) {
        seal_salted(test_header(5), parts, false, true)
    }

    fn seal_in(
        header: Header,
        parts: &[u64],
        single: bool,
    ) -> (Header, DataKeys, Vec<u8>, Vec<u8>, Option<Layout>) {
        seal_salted(header, parts, single, false)
    }

    fn seal_salted(
        mut header: Header,
        parts: &[u64],
        single: bool,
        salted: bool,
    ) -> (Header, DataKeys, Vec<u8>, Vec<u8>, Option<Layout>) {
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
            let cipher = match salted {
                true => {
                    let salt = crate::envelope::fresh_part_salt().unwrap();
                    stored.extend_from_slice(&salt);
                    SegmentCipher::new_salted(&header, &keys, number, &salt).unwrap()
                }
                false => SegmentCipher::new(&header, &keys, number).unwrap(),
            };
            let mut w = super::super::stream::EncryptWriter::new(cipher, Vec::new());
            io::Write::write_all(&mut w, &plain[at..at + p as usize]).unwrap();
            let (body, _) = w.finish().unwrap();
            stored.extend_from_slice(&body);
            at += p as usize;
        }
        let unaligned = record::needs_record(parts, seg());
        let recorded = !single && (unaligned || header.version() >= 2);
        let record = recorded.then(|| {
            let layout = Layout::multipart(parts.to_vec(), seg()).with_salts(salted);
            if record::padded(&layout) {
                let pad = record::padding_len(layout.stored_len(), seg());
                stored.extend(std::iter::repeat_n(0xAA, pad as usize));
            }
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
        // The fetched ranges, one after the other; a whole read runs to the end.
        let mut fetched = Vec::new();
        for (i, f) in p.fetch.iter().enumerate() {
            let end = match i + 1 == p.fetch.len() {
                true => stored.len(),
                false => f.last as usize + 1,
            };
            fetched.extend_from_slice(&stored[f.first as usize..end]);
        }
        let mut input = fetched.as_slice();
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
            let sealed = [
                Some(seal(&parts, single)),
                (!single).then(|| seal_v2(&parts)),
                (!single).then(|| seal_v2_salted(&parts)),
            ];
            for (header, keys, plain, stored, rec) in sealed.into_iter().flatten() {
                let (got, summary) =
                    read(&header, &keys, &stored, rec.as_ref(), &ReadRequest::whole()).unwrap();
                assert_eq!(got, plain, "{parts:?}");
                let want_part = if single { 0 } else { parts.len() as u32 };
                assert_eq!(summary.last_part, want_part, "{parts:?}");
                let parts_stored: u64 = match &rec {
                    Some(layout) => layout.stored_len(),
                    None => parts.iter().map(|&p| stored_len(p, seg())).sum(),
                };
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
                // From a part's second segment on: a salted part's salt is fetched first.
                if plain.len() as u64 > s + 1 {
                    let req = ReadRequest {
                        range: Some(RangeRequest::Single(ByteRange::From { first: s + 1 })),
                        ..ReadRequest::default()
                    };
                    let (got, _) = read(&header, &keys, &stored, rec.as_ref(), &req).unwrap();
                    assert_eq!(got, plain[s as usize + 1..], "{parts:?}");
                }
            }
        }
    }

    /// Parts numbered with gaps open under the numbers their record gives, and under no
    /// others.
    #[test]
    fn parts_numbered_with_gaps_open_under_their_numbers() {
        let s = seg().bytes();
        let mut header = test_header(5);
        header.segment_size = seg();
        let keys = DataKeys::from_bytes([1; 32], [2; 32]);
        let sizes = [2 * s, s + 9];
        let numbers = [3u32, 7];
        let mut plain = Vec::new();
        let mut stored = Vec::new();
        for (k, &p) in sizes.iter().enumerate() {
            let part: Vec<u8> = (0..p).map(|i| (i as u8) ^ (k as u8 * 17)).collect();
            let cipher = SegmentCipher::new(&header, &keys, numbers[k]).unwrap();
            let mut w = super::super::stream::EncryptWriter::new(cipher, Vec::new());
            io::Write::write_all(&mut w, &part).unwrap();
            stored.extend_from_slice(&w.finish().unwrap().0);
            plain.extend_from_slice(&part);
        }
        let unaligned = record::needs_record(&sizes, seg());
        assert!(!unaligned);
        let layout = Layout::multipart(sizes.to_vec(), seg()).with_numbers(numbers.to_vec());
        let (got, summary) = read(
            &header,
            &keys,
            &stored,
            Some(&layout),
            &ReadRequest::whole(),
        )
        .unwrap();
        assert_eq!(got, plain);
        assert_eq!(summary.last_part, 7);
        let req = ReadRequest {
            range: Some(RangeRequest::Single(ByteRange::FromTo {
                first: 2 * s - 3,
                last: 2 * s + 4,
            })),
            ..ReadRequest::default()
        };
        let (got, _) = read(&header, &keys, &stored, Some(&layout), &req).unwrap();
        assert_eq!(got, plain[(2 * s - 3) as usize..=(2 * s + 4) as usize]);
        for wrong in [vec![1, 2], vec![3, 8], vec![7, 3]] {
            let other = Layout::multipart(sizes.to_vec(), seg()).with_numbers(wrong.clone());
            let r = read(&header, &keys, &stored, Some(&other), &ReadRequest::whole());
            assert!(r.is_err(), "{wrong:?}");
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
            let sealed = [
                Some(seal(&parts, single)),
                (!single).then(|| seal_v2(&parts)),
                (!single).then(|| seal_v2_salted(&parts)),
            ];
            for (header, keys, _, stored, rec) in sealed.into_iter().flatten() {
                // A flipped bit anywhere in the parts' bodies (a salt's included).
                let parts_stored: u64 = match &rec {
                    Some(layout) => layout.stored_len(),
                    None => parts.iter().map(|&p| stored_len(p, seg())).sum(),
                };
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
