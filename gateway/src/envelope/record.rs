//! The layout record of a multipart object (`docs/format.md`, *Layout record*): the
//! plaintext size of every part, so that no part can be cut, added or dropped unseen.
//!
//! Plaintext of the record (record version 1):
//!
//! ```text
//! 1     record version = 1
//! var   r = number of runs, LEB128, 1..=RECORD_RUNS_MAX
//! r ×   (count: LEB128, 1..=10000; size: LEB128, plaintext bytes of each part of the run)
//!       nothing may follow
//! ```
//!
//! The runs, expanded, are the plaintext sizes of parts 1, 2, ... N in order. Where the
//! client numbered its parts with gaps (S3 allows any ascending numbers), record version 2
//! adds the numbers, as runs of equal steps:
//!
//! ```text
//! 1     record version = 2
//! ...   the runs of sizes, as in version 1
//! var   q = number of runs of part numbers, LEB128, 1..=RECORD_RUNS_MAX
//! q ×   (count: LEB128, 1..=10000; step: LEB128, 1..=10000): count part numbers, each
//!       step above the one before (the first run starts from 0); they must make N
//!       numbers, the last at most 10000; nothing may follow
//! ```
//!
//! A writer uses version 1 when the numbers are 1, 2, ... N. In format version 2 the
//! version byte also carries [`RECORD_FLAG_SALTED`] when each part's stored body begins
//! with its salt (every upload CreateMultipartUpload starts; see
//! [`super::layout::PART_SALT_LEN_BYTES`]). The record is stored as
//! base64url without padding in the user metadata `x-amz-meta-twofold-layout`.
//!
//! - Format version 2: every multipart object has one, sealed as a salted record
//!   ([`super::salted`], label [`LAYOUT_LABEL`]) with a fresh salt per sealing, since an
//!   upload may be completed more than once.
//! - Format version 1: only unaligned objects (some part but the last is not a whole
//!   number of segments) have one, sealed as the single, final segment 0 of the reserved
//!   part number [`RECORD_PART_NUMBER`] with the object's own segment keys.
//!
//! The stored body of an unaligned object is the parts' stored bodies followed by `pad`
//! bytes of padding, with `1 <= pad <= S + 32` chosen so that `stored mod (S + 32) == 1`:
//! a residue that [`plain_len`](super::layout::plain_len) rejects, so no single-part or
//! aligned object has it and a listing recognises such objects by size alone. An aligned
//! object is its parts' stored bodies and nothing else.

use super::aead::Layer;
use super::header::{FORMAT_VERSION, Header};
use super::layout::{Layout, SegmentSize, numbered_in_order};
use super::{DataKeys, Error, SegmentCipher, salted};

/// Version of the record's plaintext encoding for parts numbered 1, 2, 3...
pub const RECORD_VERSION: u8 = 1;
/// Version of the record's plaintext encoding that also holds the part numbers.
pub const RECORD_VERSION_NUMBERED: u8 = 2;
/// Bit of the version byte that says each part's stored body begins with its salt.
pub const RECORD_FLAG_SALTED: u8 = 0x80;
/// Part number whose keys seal the record; S3 part numbers stop at 10000.
pub const RECORD_PART_NUMBER: u32 = u32::MAX;
/// Most runs of equal part sizes a record may hold (keeps it far below S3's 2 KiB of user
/// metadata: at most 1 + 2 + 64·(2 + 10) bytes of plaintext).
pub const RECORD_RUNS_MAX: usize = 64;
/// Most parts of an upload, as in S3.
pub const RECORD_PARTS_MAX: u64 = 10_000;
/// Residue of the stored length modulo `S + 32` that marks an object with a record.
pub const MARKER_RESIDUE: u64 = 1;

/// Why a layout record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record does not decode, or has more runs or parts than allowed.
    #[error("the layout record is malformed: {0}")]
    Malformed(&'static str),
    /// The record's tags did not verify under the object's keys.
    #[error("the layout record failed its integrity check")]
    Rejected,
    /// The record and the stored length disagree.
    #[error("the layout record does not match the stored length {stored}")]
    Mismatch {
        /// The stored length.
        stored: u64,
    },
    /// Too many distinct part sizes to record.
    #[error("the parts have more than {RECORD_RUNS_MAX} runs of equal sizes")]
    TooManyRuns,
}

/// Whether a stored length carries the marker of an object with a layout record.
pub fn is_marked(stored: u64, seg: SegmentSize) -> bool {
    stored % seg.stored_bytes() == MARKER_RESIDUE
}

/// Bytes of padding that follow parts whose stored bodies total `parts_stored`.
pub fn padding_len(parts_stored: u64, seg: SegmentSize) -> u64 {
    let m = seg.stored_bytes();
    let pad = (MARKER_RESIDUE + m - parts_stored % m) % m;
    if pad == 0 { m } else { pad }
}

/// Whether a multipart object of this layout is followed by marker padding: its parts are
/// unaligned ([`needs_record`]), or salted (every part of a version 2 upload), so that
/// its length alone tells a listing to look it up, also after a copy has made it a
/// single-part object in the backend's eyes.
pub fn padded(layout: &Layout) -> bool {
    layout.salted() || needs_record(layout.parts(), layout.segment_size())
}

/// Whether parts of these plaintext sizes need a record: some part but the last is not a
/// whole number of segments.
pub fn needs_record(parts: &[u64], seg: SegmentSize) -> bool {
    parts.len() > 1
        && parts[..parts.len() - 1]
            .iter()
            .any(|p| *p == 0 || p % seg.bytes() != 0)
}

fn put_leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn get_leb(input: &mut &[u8]) -> Result<u64, RecordError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input
            .split_first()
            .ok_or(RecordError::Malformed("truncated"))?;
        *input = rest;
        v |= u64::from(b & 0x7f)
            .checked_shl(shift)
            .ok_or(RecordError::Malformed("integer too large"))?;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(RecordError::Malformed("integer too large"))
}

/// Runs of equal values: (count, value).
fn runs<T: PartialEq + Copy>(values: impl IntoIterator<Item = T>) -> Vec<(u64, T)> {
    let mut runs: Vec<(u64, T)> = Vec::new();
    for v in values {
        match runs.last_mut() {
            Some((count, last)) if *last == v => *count += 1,
            _ => runs.push((1, v)),
        }
    }
    runs
}

/// The record's plaintext for parts of these sizes, numbered 1, 2, 3...
pub fn encode(parts: &[u64]) -> Result<Vec<u8>, RecordError> {
    encode_numbered(parts, None)
}

/// The record's plaintext for parts of these sizes and (where they are not 1, 2, 3...)
/// these part numbers, ascending, one per part.
pub fn encode_numbered(parts: &[u64], numbers: Option<&[u32]>) -> Result<Vec<u8>, RecordError> {
    encode_record(parts, numbers, false)
}

/// The record's plaintext for a layout: its part sizes, numbers, and whether its parts
/// carry salts.
pub fn encode_layout(layout: &Layout) -> Result<Vec<u8>, RecordError> {
    encode_record(layout.parts(), layout.numbers(), layout.salted())
}

fn encode_record(
    parts: &[u64],
    numbers: Option<&[u32]>,
    salted: bool,
) -> Result<Vec<u8>, RecordError> {
    let size_runs = runs(parts.iter().copied());
    if size_runs.len() > RECORD_RUNS_MAX {
        return Err(RecordError::TooManyRuns);
    }
    if parts.is_empty() || parts.len() as u64 > RECORD_PARTS_MAX {
        return Err(RecordError::Malformed("part count"));
    }
    let numbers = numbers.filter(|n| n.len() != parts.len() || !numbered_in_order(n));
    let version = match numbers {
        None => RECORD_VERSION,
        Some(_) => RECORD_VERSION_NUMBERED,
    };
    let mut out = vec![version | if salted { RECORD_FLAG_SALTED } else { 0 }];
    put_leb(&mut out, size_runs.len() as u64);
    for (count, size) in size_runs {
        put_leb(&mut out, count);
        put_leb(&mut out, size);
    }
    if let Some(numbers) = numbers {
        let ascending = numbers.len() == parts.len()
            && numbers.first().is_some_and(|n| *n >= 1)
            && numbers.windows(2).all(|w| w[0] < w[1])
            && numbers
                .last()
                .is_some_and(|n| u64::from(*n) <= RECORD_PARTS_MAX);
        if !ascending {
            return Err(RecordError::Malformed("part numbers"));
        }
        let steps = runs(numbers.iter().scan(0u32, |prev, n| {
            let step = n - *prev;
            *prev = *n;
            Some(step)
        }));
        if steps.len() > RECORD_RUNS_MAX {
            return Err(RecordError::TooManyRuns);
        }
        put_leb(&mut out, steps.len() as u64);
        for (count, step) in steps {
            put_leb(&mut out, count);
            put_leb(&mut out, u64::from(step));
        }
    }
    Ok(out)
}

/// The part sizes a record's plaintext holds.
pub fn decode(input: &[u8]) -> Result<Vec<u64>, RecordError> {
    decode_numbered(input).map(|(parts, _)| parts)
}

/// The part sizes a record's plaintext holds, and its part numbers (1, 2, 3... for a
/// version 1 record), whatever it says of salts.
pub fn decode_numbered(input: &[u8]) -> Result<(Vec<u64>, Vec<u32>), RecordError> {
    decode_record(input).map(|d| (d.parts, d.numbers))
}

/// What a record's plaintext holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// Plaintext sizes of the parts, in order.
    pub parts: Vec<u64>,
    /// Their part numbers (1, 2, 3... for a record without numbers).
    pub numbers: Vec<u32>,
    /// Whether each part's stored body begins with its salt.
    pub salted: bool,
}

/// Decodes a record's plaintext.
pub fn decode_record(mut input: &[u8]) -> Result<Decoded, RecordError> {
    let (&byte, rest) = input.split_first().ok_or(RecordError::Malformed("empty"))?;
    let salted = byte & RECORD_FLAG_SALTED != 0;
    let version = byte & !RECORD_FLAG_SALTED;
    if version != RECORD_VERSION && version != RECORD_VERSION_NUMBERED {
        return Err(RecordError::Malformed("unknown record version"));
    }
    input = rest;
    let parts = decode_runs(&mut input)?;
    let numbers = match version {
        RECORD_VERSION => (1..=parts.len() as u32).collect(),
        _ => decode_numbers(&mut input, parts.len())?,
    };
    if !input.is_empty() {
        return Err(RecordError::Malformed("trailing bytes"));
    }
    Ok(Decoded {
        parts,
        numbers,
        salted,
    })
}

fn decode_runs(input: &mut &[u8]) -> Result<Vec<u64>, RecordError> {
    let runs = get_leb(input)?;
    if runs == 0 || runs > RECORD_RUNS_MAX as u64 {
        return Err(RecordError::Malformed("run count"));
    }
    let mut parts = Vec::new();
    for _ in 0..runs {
        let count = get_leb(input)?;
        let size = get_leb(input)?;
        let total = (parts.len() as u64).checked_add(count);
        if count == 0 || total.is_none_or(|t| t > RECORD_PARTS_MAX) {
            return Err(RecordError::Malformed("part count"));
        }
        parts.extend(std::iter::repeat_n(size, count as usize));
    }
    Ok(parts)
}

/// `n` part numbers as runs of equal steps: each at least 1 above the one before, the
/// last at most 10000.
fn decode_numbers(input: &mut &[u8], n: usize) -> Result<Vec<u32>, RecordError> {
    let bad = RecordError::Malformed("part numbers");
    let runs = get_leb(input)?;
    if runs == 0 || runs > RECORD_RUNS_MAX as u64 {
        return Err(bad);
    }
    let mut numbers: Vec<u32> = Vec::with_capacity(n);
    let mut last = 0u64;
    for _ in 0..runs {
        let count = get_leb(input)?;
        let step = get_leb(input)?;
        let total = (numbers.len() as u64).checked_add(count);
        let fits = total.is_some_and(|t| t <= n as u64);
        if count == 0 || step == 0 || step > RECORD_PARTS_MAX || !fits {
            return Err(bad);
        }
        for _ in 0..count {
            last += step;
            if last > RECORD_PARTS_MAX {
                return Err(bad);
            }
            numbers.push(last as u32);
        }
    }
    match numbers.len() == n {
        true => Ok(numbers),
        false => Err(bad),
    }
}

/// Label of the salted layout record of format version 2 ([`super::salted`]).
pub const LAYOUT_LABEL: &[u8] = b"twofold/v2 layout";

/// Whether an object of `header` and `stored` bytes must carry a layout record: every
/// multipart object of format version 2, and the marked multipart objects of version 1.
pub fn required(header: &Header, stored: u64) -> bool {
    header.multipart
        && (header.version() >= FORMAT_VERSION || is_marked(stored, header.segment_size))
}

/// Seals the record of parts of these sizes under the object's keys: in format version
/// 2 as a salted record under a fresh random salt, in version 1 as segment 0 of
/// [`RECORD_PART_NUMBER`].
pub fn seal(header: &Header, keys: &DataKeys, parts: &[u64]) -> Result<Vec<u8>, Error> {
    seal_layout(
        header,
        keys,
        &Layout::multipart(parts.to_vec(), header.segment_size),
    )
}

/// [`seal`] of a layout's parts and part numbers. Version 1 records cannot hold numbers
/// other than 1, 2, 3...
pub fn seal_layout(header: &Header, keys: &DataKeys, layout: &Layout) -> Result<Vec<u8>, Error> {
    let parts = layout.parts();
    if header.version() >= FORMAT_VERSION {
        return seal_with_salt(header, keys, layout, super::random_bytes(Layer::Inner)?);
    }
    if layout.numbers().is_some() || layout.salted() {
        return Err(Error::Internal("layout record"));
    }
    let plain = encode(parts).map_err(|_| Error::Internal("layout record"))?;
    let cipher = SegmentCipher::new(header, keys, RECORD_PART_NUMBER)?;
    let mut buf = plain;
    let n = buf.len();
    buf.resize(n + super::layout::SEGMENT_OVERHEAD_BYTES as usize, 0);
    let stored = cipher.seal(0, true, &mut buf, n)?;
    buf.truncate(stored);
    Ok(buf)
}

/// [`seal`] of a format version 2 record with the salt given: for the published test
/// vectors only. Never seal two records of one object under one salt.
pub fn seal_with_salt(
    header: &Header,
    keys: &DataKeys,
    layout: &Layout,
    salt: [u8; salted::SALT_LEN_BYTES],
) -> Result<Vec<u8>, Error> {
    let plain = encode_layout(layout).map_err(|_| Error::Internal("layout record"))?;
    salted::seal(LAYOUT_LABEL, &header.fixed_bytes(), keys, &plain, salt)
}

/// Opens a sealed record and checks it against the object's stored length, which it must
/// explain exactly: the parts' stored bodies, then, when some part but the last is not a
/// whole number of segments (and only then), `1..=S+32` bytes of marker padding. Version
/// 1 objects have a record only in the second case. Returns the layout of the parts
/// (padding excluded).
pub fn open(
    header: &Header,
    keys: &DataKeys,
    sealed: &[u8],
    stored: u64,
) -> Result<Layout, RecordError> {
    let seg = header.segment_size;
    let decoded = if header.version() >= FORMAT_VERSION {
        let plain = salted::open(LAYOUT_LABEL, &header.fixed_bytes(), keys, sealed).map_err(
            |e| match e {
                salted::SaltedError::Malformed => RecordError::Malformed("too short"),
                salted::SaltedError::Rejected => RecordError::Rejected,
            },
        )?;
        decode_record(&plain)?
    } else {
        let cipher = SegmentCipher::new(header, keys, RECORD_PART_NUMBER)
            .map_err(|_| RecordError::Rejected)?;
        let mut out = vec![0u8; sealed.len()];
        let n = cipher
            .open_to(0, true, sealed, &mut out)
            .map_err(|_| RecordError::Rejected)?;
        let decoded = decode_record(&out[..n])?;
        if !numbered_in_order(&decoded.numbers) || decoded.salted {
            return Err(RecordError::Malformed(
                "part numbers or salts in a version 1 object",
            ));
        }
        decoded
    };
    let layout = Layout::multipart(decoded.parts, seg)
        .with_numbers(decoded.numbers)
        .with_salts(decoded.salted);
    check_stored(header, &layout, stored)?;
    Ok(layout)
}

/// Whether a multipart object of `header` with this layout makes exactly `stored` bytes
/// (see [`open`]).
fn check_stored(header: &Header, layout: &Layout, stored: u64) -> Result<(), RecordError> {
    let seg = header.segment_size;
    let parts = layout.parts();
    let mismatch = RecordError::Mismatch { stored };
    let unaligned = needs_record(parts, seg);
    let padded = padded(layout);
    let version_1 = header.version() < FORMAT_VERSION;
    if !header.multipart || (version_1 && !unaligned) || padded != is_marked(stored, seg) {
        return Err(mismatch);
    }
    if parts[..parts.len() - 1].contains(&0) {
        return Err(mismatch);
    }
    let mut total = 0u64;
    for p in parts {
        total = total
            .checked_add(layout.part_stored_len(*p))
            .ok_or(mismatch.clone())?;
    }
    let pad = stored.checked_sub(total).ok_or(mismatch.clone())?;
    let expected = if padded { padding_len(total, seg) } else { 0 };
    if pad != expected {
        return Err(mismatch);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::{test_header as header, test_header_v1 as header_v1};
    use crate::envelope::layout::{plain_len, stored_len};

    const MIB: u64 = 1 << 20;

    /// A run count so large that adding it to the parts so far overflows is refused, not
    /// added (found by the fuzz target: a panic in debug builds, and in release a wrapped sum
    /// that passed the limit and asked for an endless part list).
    #[test]
    fn a_run_count_near_the_integer_limit_is_refused() {
        let mut input = vec![RECORD_VERSION, 2, 1, 82];
        input.extend_from_slice(&[0xff; 9]);
        input.extend_from_slice(&[0x01, 0x00]);
        assert_eq!(decode(&input), Err(RecordError::Malformed("part count")));
    }

    #[test]
    fn encode_decode_runs() {
        let parts = vec![5 * MIB + 1, 5 * MIB + 1, 5 * MIB + 12345, 1];
        let enc = encode(&parts).unwrap();
        // version, 3 runs, (2, 5 MiB + 1), (1, 5 MiB + 12345), (1, 1)
        assert_eq!(enc.len(), 1 + 1 + (1 + 4) * 2 + (1 + 1));
        assert_eq!(decode(&enc).unwrap(), parts);
        assert!(decode(&enc[..enc.len() - 1]).is_err());
        let mut long = enc.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        let mut v2 = enc;
        v2[0] = 2;
        assert!(decode(&v2).is_err());
    }

    /// Known answer for the record's plaintext: parts 5 MiB + 1, 5 MiB + 1, 1.
    #[test]
    fn plaintext_vector() {
        let enc = encode(&[5 * MIB + 1, 5 * MIB + 1, 1]).unwrap();
        // 01 | 02 runs | 02 × 5242881 (81 80 c0 02) | 01 × 01
        assert_eq!(hex::encode(&enc), "0102028180c0020101");
    }

    #[test]
    fn sealed_record_opens_only_unaltered_under_its_keys_and_length() {
        let seg = SegmentSize::DEFAULT;
        for h in [header(9), header_v1(9)] {
            sealed_record_opens_only_unaltered(&h, seg);
        }
    }

    fn sealed_record_opens_only_unaltered(h: &Header, seg: SegmentSize) {
        let h = h.clone();
        let keys = DataKeys::from_bytes([5; 32], [6; 32]);
        let parts = vec![5 * MIB + 1, 5 * MIB + 12345, 1];
        let total: u64 = parts.iter().map(|p| stored_len(*p, seg)).sum();
        let stored = total + padding_len(total, seg);
        let sealed = seal(&h, &keys, &parts).unwrap();
        let layout = open(&h, &keys, &sealed, stored).unwrap();
        assert_eq!(layout.parts(), parts.as_slice());
        // Every bit matters.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(open(&h, &keys, &bad, stored), Err(RecordError::Rejected));
        }
        // Other keys, another upload: rejected.
        let other = DataKeys::from_bytes([5; 32], [7; 32]);
        assert_eq!(
            open(&h, &other, &sealed, stored),
            Err(RecordError::Rejected)
        );
        let mut other_upload = h.clone();
        other_upload.upload_id = [8; 16];
        assert_eq!(
            open(&other_upload, &keys, &sealed, stored),
            Err(RecordError::Rejected)
        );
        // A stored length the record does not explain.
        for wrong in [stored - 1, stored + 1, stored + seg.stored_bytes(), total] {
            assert!(open(&h, &keys, &sealed, wrong).is_err(), "{wrong}");
        }
    }

    /// Format version 2: an aligned object has a record too, and its stored length must
    /// be its parts' exactly: cut back to a part boundary, extended by a part, with a part
    /// dropped, or padded, it is refused.
    #[test]
    fn version_2_records_every_multipart_shape_exactly() {
        let seg = SegmentSize::DEFAULT;
        let h = header(9);
        assert!(required(&h, 12345));
        assert!(!required(&header(0), 12345));
        let keys = DataKeys::from_bytes([5; 32], [6; 32]);
        let parts = vec![5 * MIB, 5 * MIB, 3 * MIB + 17];
        let lens: Vec<u64> = parts.iter().map(|p| stored_len(*p, seg)).collect();
        let total: u64 = lens.iter().sum();
        let sealed = seal(&h, &keys, &parts).unwrap();
        assert_ne!(sealed, seal(&h, &keys, &parts).unwrap(), "fresh salt");
        assert_eq!(open(&h, &keys, &sealed, total).unwrap().parts(), parts);
        for wrong in [
            lens[0],
            lens[0] + lens[1],
            total - lens[1],
            total + lens[0],
            total + padding_len(total, seg),
            total - 1,
        ] {
            assert_eq!(
                open(&h, &keys, &sealed, wrong),
                Err(RecordError::Mismatch { stored: wrong }),
                "{wrong}"
            );
        }
        // A version 1 record (fixed keys) does not open as version 2, nor the reverse.
        let v1 = header_v1(9);
        let unaligned = vec![5 * MIB + 1, 3];
        let u_total: u64 = unaligned.iter().map(|p| stored_len(*p, seg)).sum();
        let u_stored = u_total + padding_len(u_total, seg);
        let sealed_v1 = seal(&v1, &keys, &unaligned).unwrap();
        assert_eq!(
            open(&v1, &keys, &sealed_v1, u_stored).unwrap().parts(),
            unaligned
        );
        assert!(open(&h, &keys, &sealed_v1, u_stored).is_err());
        // Version 2 unaligned: marker padding, as in version 1.
        let sealed_v2 = seal(&h, &keys, &unaligned).unwrap();
        assert_eq!(
            open(&h, &keys, &sealed_v2, u_stored).unwrap().parts(),
            unaligned
        );
        assert!(open(&h, &keys, &sealed_v2, u_total).is_err());
        // Version 1 aligned objects have no record: one that says so is refused.
        assert!(!required(&v1, total));
        let aligned_v1 = seal(&v1, &keys, &parts).unwrap();
        assert!(open(&v1, &keys, &aligned_v1, total).is_err());
    }

    /// Known answer for a salted version 2 record (parts 5 MiB, 5 MiB, 1 under the test
    /// header and keys, salt 0x11...): the published vectors hold whole objects.
    #[test]
    fn version_2_record_is_a_salted_record_of_the_runs() {
        let h = header(9);
        let keys = DataKeys::from_bytes([5; 32], [6; 32]);
        let parts = [5 * MIB, 5 * MIB, 1];
        let layout = Layout::multipart(parts.to_vec(), h.segment_size);
        let sealed = seal_with_salt(&h, &keys, &layout, [0x11; 16]).unwrap();
        let plain = salted::open(LAYOUT_LABEL, &h.fixed_bytes(), &keys, &sealed).unwrap();
        assert_eq!(*plain, encode(&parts).unwrap());
        assert_eq!(&sealed[..16], &[0x11; 16]);
        assert_eq!(sealed.len(), salted::OVERHEAD_BYTES + plain.len());
    }

    /// Part numbers with gaps: record version 2, runs of equal steps; numbers 1, 2, 3...
    /// stay version 1; numbers that are not ascending, or past 10000, are refused.
    #[test]
    fn part_numbers_with_gaps_round_trip() {
        let parts = [5 * MIB, 5 * MIB, 5 * MIB, 7];
        let plain = encode_numbered(&parts, Some(&[1, 2, 3, 4])).unwrap();
        assert_eq!(plain, encode(&parts).unwrap());
        assert_eq!(plain[0], RECORD_VERSION);
        for numbers in [
            vec![1, 3, 5, 7],
            vec![2, 3, 4, 10_000],
            vec![10, 20, 21, 22],
        ] {
            let plain = encode_numbered(&parts, Some(&numbers)).unwrap();
            assert_eq!(plain[0], RECORD_VERSION_NUMBERED);
            assert_eq!(
                decode_numbered(&plain).unwrap(),
                (parts.to_vec(), numbers.clone())
            );
            for n in 0..plain.len() {
                assert!(
                    decode_numbered(&plain[..n]).is_err(),
                    "{numbers:?} prefix {n}"
                );
            }
        }
        // 1, 3, 5, 7: sizes (3 × 5 MiB, 1 × 7), then the numbers as steps from 0: one of
        // 1, three of 2.
        let plain = encode_numbered(&parts, Some(&[1, 3, 5, 7])).unwrap();
        assert_eq!(hex::encode(&plain), "0202038080c00201070201010302");
        for bad in [
            vec![1, 1, 2, 3],
            vec![3, 2, 4, 5],
            vec![0, 1, 2, 3],
            vec![1, 2, 3, 10_001],
        ] {
            assert!(encode_numbered(&parts, Some(&bad)).is_err(), "{bad:?}");
        }
        assert!(
            encode_numbered(&parts, Some(&[1, 3])).is_err(),
            "one number per part"
        );
        // Decoded numbers past 10000, a step of 0, or more or fewer than the parts: refused.
        let numbered = |part_count: u64, number_runs: &[(u64, u64)]| {
            let mut out = vec![RECORD_VERSION_NUMBERED, 1];
            put_leb(&mut out, part_count);
            put_leb(&mut out, 1);
            put_leb(&mut out, number_runs.len() as u64);
            for (count, step) in number_runs {
                put_leb(&mut out, *count);
                put_leb(&mut out, *step);
            }
            out
        };
        assert_eq!(
            decode_numbered(&numbered(2, &[(1, 4), (1, 5)])).unwrap().1,
            [4, 9]
        );
        for (parts, runs) in [
            (1, vec![(1, 10_001)]),
            (2, vec![(1, 9_999), (1, 2)]),
            (1, vec![(2, 1)]),
            (2, vec![(1, 1)]),
            (2, vec![(1, 1), (1, 0)]),
            (1, vec![]),
        ] {
            assert!(
                decode_numbered(&numbered(parts, &runs)).is_err(),
                "{parts} {runs:?}"
            );
        }
    }

    /// A gapped layout seals and opens with its numbers (version 2); version 1 objects
    /// cannot have gaps.
    #[test]
    fn sealed_numbers_come_back() {
        let seg = SegmentSize::DEFAULT;
        let keys = DataKeys::from_bytes([5; 32], [6; 32]);
        let layout = Layout::multipart(vec![5 * MIB, 3], seg).with_numbers(vec![4, 9]);
        let stored = layout.stored_len();
        let sealed = seal_layout(&header(9), &keys, &layout).unwrap();
        let opened = open(&header(9), &keys, &sealed, stored).unwrap();
        assert_eq!(opened, layout);
        assert_eq!((opened.part_number(0), opened.part_number(1)), (4, 9));
        assert!(seal_layout(&header_v1(9), &keys, &layout).is_err());
    }

    /// A salted layout says so in its record's version byte, and its stored length counts
    /// every part's salt; version 1 objects have no salted parts.
    #[test]
    fn salted_layouts_come_back_salted() {
        let seg = SegmentSize::DEFAULT;
        let keys = DataKeys::from_bytes([5; 32], [6; 32]);
        for layout in [
            Layout::multipart(vec![5 * MIB, 3], seg),
            Layout::multipart(vec![5 * MIB + 1, 7], seg),
            Layout::multipart(vec![5 * MIB, 3], seg).with_numbers(vec![4, 9]),
        ] {
            let layout = layout.with_salts(true);
            let plain = encode_layout(&layout).unwrap();
            assert_eq!(plain[0] & RECORD_FLAG_SALTED, RECORD_FLAG_SALTED);
            let decoded = decode_record(&plain).unwrap();
            assert!(decoded.salted);
            assert_eq!(decoded.parts, layout.parts());
            let st = layout.stored_len();
            assert_eq!(
                st,
                2 * 16
                    + layout
                        .parts()
                        .iter()
                        .map(|p| stored_len(*p, seg))
                        .sum::<u64>()
            );
            let stored = match padded(&layout) {
                true => st + padding_len(st, seg),
                false => st,
            };
            let sealed = seal_layout(&header(9), &keys, &layout).unwrap();
            assert_eq!(open(&header(9), &keys, &sealed, stored).unwrap(), layout);
            // The same parts without their salts are 32 bytes shorter: not this object.
            assert!(open(&header(9), &keys, &sealed, stored - 32).is_err());
            assert!(seal_layout(&header_v1(9), &keys, &layout).is_err());
        }
        let unsalted = encode(&[3]).unwrap();
        assert!(!decode_record(&unsalted).unwrap().salted);
        let mut bad = unsalted.clone();
        bad[0] |= 0x40;
        assert!(decode_record(&bad).is_err());
    }

    #[test]
    fn too_many_runs_refused() {
        let parts: Vec<u64> = (1..=(RECORD_RUNS_MAX as u64 + 1)).collect();
        assert_eq!(encode(&parts), Err(RecordError::TooManyRuns));
    }

    #[test]
    fn marker_is_never_an_aligned_length() {
        for log2 in [12u8, 16, 24] {
            let seg = SegmentSize::from_log2(log2).unwrap();
            for total in [
                0u64,
                1,
                31,
                32,
                33,
                seg.stored_bytes() - 1,
                seg.stored_bytes(),
                7 * seg.stored_bytes() + 5,
            ] {
                let pad = padding_len(total, seg);
                assert!((1..=seg.stored_bytes()).contains(&pad));
                assert!(is_marked(total + pad, seg));
                assert!(plain_len(total + pad, seg).is_err());
            }
        }
    }

    #[test]
    fn needs_record_only_when_unaligned() {
        let seg = SegmentSize::DEFAULT;
        assert!(!needs_record(&[5 * MIB, 5 * MIB, 3], seg));
        assert!(!needs_record(&[7], seg));
        assert!(needs_record(&[5 * MIB + 1, 3], seg));
        assert!(needs_record(&[5 * MIB, 0, 3], seg));
    }
}
