//! The layout record of a multipart object whose parts are not whole numbers of segments
//! (`docs/format.md`, *Unaligned multipart objects*).
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
//! The runs, expanded, are the plaintext sizes of parts 1, 2, ... N in order. The record is
//! sealed as the single, final segment 0 of the reserved part number
//! [`RECORD_PART_NUMBER`] with the object's own segment keys (both layers), and stored as
//! base64url without padding in the user metadata `x-amz-meta-twofold-layout`.
//!
//! The stored body is the parts' stored bodies followed by `pad` bytes of padding, with
//! `1 <= pad <= S + 32` chosen so that `stored mod (S + 32) == 1`: a residue that
//! [`plain_len`](super::layout::plain_len) rejects, so no single-part or aligned object has
//! it and a listing recognises such objects by size alone.

use super::layout::{Layout, SegmentSize, stored_len};
use super::{DataKeys, Error, SegmentCipher, header::Header};

/// Version of the record's plaintext encoding.
pub const RECORD_VERSION: u8 = 1;
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

/// The record's plaintext for parts of these sizes.
pub fn encode(parts: &[u64]) -> Result<Vec<u8>, RecordError> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &p in parts {
        match runs.last_mut() {
            Some((count, size)) if *size == p => *count += 1,
            _ => runs.push((1, p)),
        }
    }
    if runs.len() > RECORD_RUNS_MAX {
        return Err(RecordError::TooManyRuns);
    }
    if parts.is_empty() || parts.len() as u64 > RECORD_PARTS_MAX {
        return Err(RecordError::Malformed("part count"));
    }
    let mut out = vec![RECORD_VERSION];
    put_leb(&mut out, runs.len() as u64);
    for (count, size) in runs {
        put_leb(&mut out, count);
        put_leb(&mut out, size);
    }
    Ok(out)
}

/// The part sizes a record's plaintext holds.
pub fn decode(mut input: &[u8]) -> Result<Vec<u64>, RecordError> {
    let (&version, rest) = input.split_first().ok_or(RecordError::Malformed("empty"))?;
    if version != RECORD_VERSION {
        return Err(RecordError::Malformed("unknown record version"));
    }
    input = rest;
    let runs = get_leb(&mut input)?;
    if runs == 0 || runs > RECORD_RUNS_MAX as u64 {
        return Err(RecordError::Malformed("run count"));
    }
    let mut parts = Vec::new();
    for _ in 0..runs {
        let count = get_leb(&mut input)?;
        let size = get_leb(&mut input)?;
        let total = (parts.len() as u64).checked_add(count);
        if count == 0 || total.is_none_or(|t| t > RECORD_PARTS_MAX) {
            return Err(RecordError::Malformed("part count"));
        }
        parts.extend(std::iter::repeat_n(size, count as usize));
    }
    if !input.is_empty() {
        return Err(RecordError::Malformed("trailing bytes"));
    }
    Ok(parts)
}

/// Seals the record of parts of these sizes under the object's keys.
pub fn seal(header: &Header, keys: &DataKeys, parts: &[u64]) -> Result<Vec<u8>, Error> {
    let plain = encode(parts).map_err(|_| Error::Internal("layout record"))?;
    let cipher = SegmentCipher::new(header, keys, RECORD_PART_NUMBER)?;
    let mut buf = plain;
    let n = buf.len();
    buf.resize(n + super::layout::SEGMENT_OVERHEAD_BYTES as usize, 0);
    let stored = cipher.seal(0, true, &mut buf, n)?;
    buf.truncate(stored);
    Ok(buf)
}

/// Opens a sealed record and checks it against the object's stored length: the parts'
/// stored bodies plus `1..=S+32` bytes of padding must make exactly `stored`, which must
/// carry the marker. Returns the layout of the parts (padding excluded).
pub fn open(
    header: &Header,
    keys: &DataKeys,
    sealed: &[u8],
    stored: u64,
) -> Result<Layout, RecordError> {
    let seg = header.segment_size;
    let cipher =
        SegmentCipher::new(header, keys, RECORD_PART_NUMBER).map_err(|_| RecordError::Rejected)?;
    let mut out = vec![0u8; sealed.len()];
    let n = cipher
        .open_to(0, true, sealed, &mut out)
        .map_err(|_| RecordError::Rejected)?;
    let parts = decode(&out[..n])?;
    let mismatch = RecordError::Mismatch { stored };
    if !is_marked(stored, seg) || !header.multipart || !needs_record(&parts, seg) {
        return Err(mismatch);
    }
    let mut total = 0u64;
    for p in &parts {
        total = total
            .checked_add(stored_len(*p, seg))
            .ok_or(mismatch.clone())?;
    }
    if parts[..parts.len() - 1].contains(&0) {
        return Err(mismatch);
    }
    let pad = stored.checked_sub(total).ok_or(mismatch.clone())?;
    if pad != padding_len(total, seg) {
        return Err(mismatch);
    }
    Ok(Layout::multipart(parts, seg))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header as header;
    use crate::envelope::layout::plain_len;

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
        let h = header(9);
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
        assert_eq!(
            open(&header(8), &keys, &sealed, stored),
            Err(RecordError::Rejected)
        );
        // A stored length the record does not explain.
        for wrong in [stored - 1, stored + 1, stored + seg.stored_bytes(), total] {
            assert!(open(&h, &keys, &sealed, wrong).is_err(), "{wrong}");
        }
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
