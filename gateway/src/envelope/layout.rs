//! Length and range arithmetic of the stored format: pure functions, no I/O, no keys.
//!
//! A part of `P` plaintext bytes is cut into `n = max(1, ceil(P / S))` segments of `S`
//! bytes (the last one shorter, or empty only when `P == 0`), and each stored segment is
//! its plaintext plus [`SEGMENT_OVERHEAD_BYTES`]. So `stored = P + 32·n`, a pure function of
//! `P`, and a plaintext byte range maps onto whole stored segments. A multipart object is
//! its parts' stored bodies one after the other, in part-number order. In a salted layout
//! (format version 2 parts that carry their own salt) each part's stored body begins with
//! its [`PART_SALT_LEN_BYTES`]-byte salt, so it is `16 + P + 32·n` bytes.

use super::aead::TAG_LEN_BYTES;

/// Bytes a stored segment carries beyond its plaintext: one tag per layer.
pub const SEGMENT_OVERHEAD_BYTES: u64 = 2 * TAG_LEN_BYTES as u64;
/// Smallest allowed segment size, as a power of two (4 KiB).
pub const SEGMENT_SIZE_LOG2_MIN: u8 = 12;
/// Largest allowed segment size, as a power of two (16 MiB).
pub const SEGMENT_SIZE_LOG2_MAX: u8 = 24;
/// Default segment size, as a power of two (64 KiB).
pub const SEGMENT_SIZE_LOG2_DEFAULT: u8 = 16;
/// Most segments one part may have: the segment counter in the nonce is 32 bits.
pub const SEGMENTS_PER_PART_MAX: u64 = 1 << 32;
/// Bytes of the salt that begins each stored part of a salted layout.
pub const PART_SALT_LEN_BYTES: u64 = 16;

const _: () = assert!(SEGMENT_SIZE_LOG2_MIN <= SEGMENT_SIZE_LOG2_DEFAULT);
const _: () = assert!(SEGMENT_SIZE_LOG2_DEFAULT <= SEGMENT_SIZE_LOG2_MAX);

/// A stored length or range that no plaintext could have produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The stored length is not `P + 32·n` for any `P` (or a part is too large).
    #[error("stored length {stored_len} is not a valid Twofold ciphertext length")]
    StoredLengthInvalid {
        /// The offending length.
        stored_len: u64,
    },
    /// The segment size is outside 4 KiB..=16 MiB or not a power of two.
    #[error("segment size 2^{log2} is outside the allowed 2^12..=2^24")]
    SegmentSizeInvalid {
        /// The offending exponent.
        log2: u8,
    },
    /// The range starts beyond the end of the object.
    #[error("range start {start} is not below the object size {size}")]
    RangeNotSatisfiable {
        /// First requested byte.
        start: u64,
        /// Plaintext size of the object.
        size: u64,
    },
}

/// Segment size of one object, checked to be within bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSize {
    log2: u8,
}

impl SegmentSize {
    /// The default, 64 KiB.
    pub const DEFAULT: SegmentSize = SegmentSize {
        log2: SEGMENT_SIZE_LOG2_DEFAULT,
    };

    /// From the exponent recorded in a header.
    pub fn from_log2(log2: u8) -> Result<Self, LayoutError> {
        if (SEGMENT_SIZE_LOG2_MIN..=SEGMENT_SIZE_LOG2_MAX).contains(&log2) {
            Ok(Self { log2 })
        } else {
            Err(LayoutError::SegmentSizeInvalid { log2 })
        }
    }

    /// From a size in bytes, which must be a power of two within bounds.
    pub fn from_bytes(bytes: u64) -> Result<Self, LayoutError> {
        if bytes.is_power_of_two() && bytes.trailing_zeros() <= u32::from(u8::MAX) {
            Self::from_log2(bytes.trailing_zeros() as u8)
        } else {
            Err(LayoutError::SegmentSizeInvalid { log2: 0 })
        }
    }

    /// The exponent, as recorded in the header.
    pub const fn log2(self) -> u8 {
        self.log2
    }

    /// Plaintext bytes per full segment.
    pub const fn bytes(self) -> u64 {
        1u64 << self.log2
    }

    /// Plaintext bytes per full segment, as `usize` (at most 16 MiB, so it always fits).
    pub const fn bytes_usize(self) -> usize {
        1usize << self.log2
    }

    /// Stored bytes per full segment.
    pub const fn stored_bytes(self) -> u64 {
        self.bytes() + SEGMENT_OVERHEAD_BYTES
    }
}

/// Number of segments a part of `plain_len` bytes is cut into (at least one).
pub fn segment_count(plain_len: u64, seg: SegmentSize) -> u64 {
    plain_len.div_ceil(seg.bytes()).max(1)
}

/// Stored length of a part (or single-part object) of `plain_len` plaintext bytes.
pub fn stored_len(plain_len: u64, seg: SegmentSize) -> u64 {
    plain_len + SEGMENT_OVERHEAD_BYTES * segment_count(plain_len, seg)
}

/// Stored length of a part of `plain_len` plaintext bytes that begins with its salt.
pub fn salted_stored_len(plain_len: u64, seg: SegmentSize) -> u64 {
    PART_SALT_LEN_BYTES + stored_len(plain_len, seg)
}

/// Plaintext length of a part whose stored body, its salt included, is `stored_len` bytes;
/// the inverse of [`salted_stored_len`].
pub fn salted_plain_len(stored_len: u64, seg: SegmentSize) -> Result<u64, LayoutError> {
    let invalid = LayoutError::StoredLengthInvalid { stored_len };
    plain_len(
        stored_len.checked_sub(PART_SALT_LEN_BYTES).ok_or(invalid)?,
        seg,
    )
    .map_err(|_| invalid)
}

/// Plaintext length of a part whose stored body is `stored_len` bytes; the inverse of
/// [`stored_len`], rejecting every length that function cannot produce.
pub fn plain_len(stored_len: u64, seg: SegmentSize) -> Result<u64, LayoutError> {
    let invalid = LayoutError::StoredLengthInvalid { stored_len };
    let full = stored_len / seg.stored_bytes();
    let rem = stored_len % seg.stored_bytes();
    let plain = match (full, rem) {
        (0, 0) => return Err(invalid),
        (_, 0) => full * seg.bytes(),
        (0, SEGMENT_OVERHEAD_BYTES) => 0,
        (_, r) if r > SEGMENT_OVERHEAD_BYTES => full * seg.bytes() + (r - SEGMENT_OVERHEAD_BYTES),
        _ => return Err(invalid),
    };
    if segment_count(plain, seg) > SEGMENTS_PER_PART_MAX {
        return Err(invalid);
    }
    Ok(plain)
}

/// Plaintext length of segment `index` of a part of `plain_len` bytes.
pub fn segment_plain_len(plain_len: u64, index: u64, seg: SegmentSize) -> u64 {
    let start = index * seg.bytes();
    plain_len.saturating_sub(start).min(seg.bytes())
}

/// A resolved plaintext byte range, inclusive at both ends as in HTTP `Range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainRange {
    /// First byte.
    pub first: u64,
    /// Last byte (inclusive).
    pub last: u64,
}

impl PlainRange {
    /// Number of bytes in the range.
    pub const fn len(self) -> u64 {
        self.last - self.first + 1
    }

    /// Never true: a `PlainRange` holds at least one byte.
    pub const fn is_empty(self) -> bool {
        false
    }

    /// Resolves an HTTP byte-range spec against an object of `size` bytes:
    /// `first-last`, `first-` (open-ended) or `-suffix`, clamped as RFC 9110 says.
    /// `Ok(None)` means the whole object (a suffix range on an empty object, for example).
    pub fn resolve(
        first: Option<u64>,
        last: Option<u64>,
        size: u64,
    ) -> Result<Option<PlainRange>, LayoutError> {
        match (first, last) {
            (Some(first), last) => {
                if first >= size {
                    return Err(LayoutError::RangeNotSatisfiable { start: first, size });
                }
                let last = last.map_or(size - 1, |l| l.min(size - 1));
                if last < first {
                    return Ok(None);
                }
                Ok(Some(PlainRange { first, last }))
            }
            (None, Some(suffix)) => {
                if size == 0 || suffix == 0 {
                    if suffix == 0 {
                        return Err(LayoutError::RangeNotSatisfiable { start: size, size });
                    }
                    return Ok(None);
                }
                let n = suffix.min(size);
                Ok(Some(PlainRange {
                    first: size - n,
                    last: size - 1,
                }))
            }
            (None, None) => Ok(None),
        }
    }
}

/// What to fetch from one part's stored body to serve a plaintext range within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSlice {
    /// Index of the part in the layout (0-based position, not the S3 part number).
    pub part_index: usize,
    /// First segment to open, within the part.
    pub first_segment: u64,
    /// Last segment to open (inclusive), within the part.
    pub last_segment: u64,
    /// Stored byte range within the whole object (inclusive), covering those segments (not
    /// the part's salt, in a salted layout).
    pub stored_first: u64,
    /// Last stored byte (inclusive).
    pub stored_last: u64,
    /// Plaintext bytes to drop from the front of the first opened segment.
    pub skip_front: u64,
    /// Plaintext bytes to release from this part.
    pub take: u64,
}

/// Whether part numbers are 1, 2, 3... (the numbering that needs no record of its own).
pub fn numbered_in_order(numbers: &[u32]) -> bool {
    numbers.iter().zip(1u32..).all(|(n, i)| *n == i)
}

/// The plaintext sizes of an object's parts, in order; a single-part object has one. A
/// multipart object's parts carry the part numbers they were uploaded (and sealed) under:
/// 1, 2, 3... unless the client left gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    seg: SegmentSize,
    parts: Vec<u64>,
    /// The part numbers, one per part; empty for 1, 2, 3...
    numbers: Vec<u32>,
    /// Whether each part's stored body begins with its salt.
    salted: bool,
}

impl Layout {
    /// A single-part object of `plain_len` bytes.
    pub fn single(plain_len: u64, seg: SegmentSize) -> Self {
        Self {
            seg,
            parts: vec![plain_len],
            numbers: Vec::new(),
            salted: false,
        }
    }

    /// A multipart object with these part plaintext sizes (in part order), numbered 1, 2,
    /// 3...
    pub fn multipart(parts: Vec<u64>, seg: SegmentSize) -> Self {
        Self {
            seg,
            parts,
            numbers: Vec::new(),
            salted: false,
        }
    }

    /// The same parts, each stored after its salt (`salted`) or not.
    pub fn with_salts(mut self, salted: bool) -> Self {
        self.salted = salted;
        self
    }

    /// Whether each part's stored body begins with its salt.
    pub fn salted(&self) -> bool {
        self.salted
    }

    /// Stored bytes of a part of `plain` plaintext bytes in this layout.
    pub fn part_stored_len(&self, plain: u64) -> u64 {
        match self.salted {
            true => salted_stored_len(plain, self.seg),
            false => stored_len(plain, self.seg),
        }
    }

    /// Stored bytes before a part's first segment: its salt, in a salted layout.
    pub fn salt_len(&self) -> u64 {
        match self.salted {
            true => PART_SALT_LEN_BYTES,
            false => 0,
        }
    }

    /// The same parts under these part numbers (one per part, ascending; checked by
    /// whoever decodes them). Numbers 1, 2, 3... are kept as the default.
    pub fn with_numbers(mut self, numbers: Vec<u32>) -> Self {
        self.numbers = if numbered_in_order(&numbers) {
            Vec::new()
        } else {
            numbers
        };
        self
    }

    /// The part number of the part at `index` (0-based position).
    pub fn part_number(&self, index: usize) -> u32 {
        match self.numbers.get(index) {
            Some(n) => *n,
            None => u32::try_from(index + 1).unwrap_or(u32::MAX),
        }
    }

    /// The part numbers, when they are not 1, 2, 3... (`None` when they are).
    pub fn numbers(&self) -> Option<&[u32]> {
        (!self.numbers.is_empty()).then_some(self.numbers.as_slice())
    }

    /// The single-part layout that a stored length implies.
    pub fn from_stored_len(stored: u64, seg: SegmentSize) -> Result<Self, LayoutError> {
        Ok(Self::single(plain_len(stored, seg)?, seg))
    }

    /// Segment size of the object.
    pub fn segment_size(&self) -> SegmentSize {
        self.seg
    }

    /// Plaintext sizes of the parts.
    pub fn parts(&self) -> &[u64] {
        &self.parts
    }

    /// Total plaintext size.
    pub fn plain_len(&self) -> u64 {
        self.parts.iter().sum()
    }

    /// Total stored size: the sum of each part's stored size.
    pub fn stored_len(&self) -> u64 {
        self.parts.iter().map(|&p| self.part_stored_len(p)).sum()
    }

    /// Stored offset at which part `index` begins (at its salt, in a salted layout).
    pub fn part_stored_offset(&self, index: usize) -> u64 {
        self.parts[..index.min(self.parts.len())]
            .iter()
            .map(|&p| self.part_stored_len(p))
            .sum()
    }

    /// The stored segments that cover `range`, part by part. The stored ranges of
    /// consecutive slices are adjacent, so one backend request of
    /// `[first.stored_first, last.stored_last]` fetches them all.
    pub fn map_range(&self, range: PlainRange) -> Result<Vec<PartSlice>, LayoutError> {
        let size = self.plain_len();
        if range.first >= size || range.last < range.first {
            return Err(LayoutError::RangeNotSatisfiable {
                start: range.first,
                size,
            });
        }
        let last = range.last.min(size - 1);
        let seg = self.seg.bytes();
        let mut out = Vec::new();
        let mut part_plain_start = 0u64;
        let mut part_stored_start = 0u64;
        for (index, &part_len) in self.parts.iter().enumerate() {
            let part_plain_end = part_plain_start + part_len; // exclusive
            if part_len > 0 && range.first < part_plain_end && last >= part_plain_start {
                let lo = range.first.max(part_plain_start) - part_plain_start;
                let hi = last.min(part_plain_end - 1) - part_plain_start;
                let first_segment = lo / seg;
                let last_segment = hi / seg;
                let segments_start = part_stored_start + self.salt_len();
                let stored_first = segments_start + first_segment * self.seg.stored_bytes();
                let last_seg_len = segment_plain_len(part_len, last_segment, self.seg);
                let stored_last = segments_start
                    + last_segment * self.seg.stored_bytes()
                    + last_seg_len
                    + SEGMENT_OVERHEAD_BYTES
                    - 1;
                out.push(PartSlice {
                    part_index: index,
                    first_segment,
                    last_segment,
                    stored_first,
                    stored_last,
                    skip_front: lo - first_segment * seg,
                    take: hi - lo + 1,
                });
            }
            part_plain_start = part_plain_end;
            part_stored_start += self.part_stored_len(part_len);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: SegmentSize = SegmentSize::DEFAULT;

    fn interesting_sizes() -> Vec<u64> {
        let s = S.bytes();
        let mut v = vec![0, 1, 2, 15, 16, 17, 31, 32, 33];
        for k in [1u64, 2, 3, 16, 1000, 81920] {
            v.extend([k * s - 1, k * s, k * s + 1]);
        }
        v.extend([5 << 30, (5u64 << 40) - 1, 5u64 << 40]);
        v
    }

    #[test]
    fn stored_len_examples() {
        assert_eq!(stored_len(0, S), 32);
        assert_eq!(stored_len(1, S), 33);
        assert_eq!(stored_len(65535, S), 65567);
        assert_eq!(stored_len(65536, S), 65568);
        assert_eq!(stored_len(65537, S), 65536 + 1 + 64);
    }

    #[test]
    fn plain_len_inverts_stored_len_at_boundaries() {
        for p in interesting_sizes() {
            assert_eq!(plain_len(stored_len(p, S), S), Ok(p), "plaintext size {p}");
        }
    }

    #[test]
    fn impossible_stored_lengths_are_rejected() {
        for bad in [0u64, 1, 31, 65568 + 1, 65568 + 31, 65568 + 32] {
            assert!(plain_len(bad, S).is_err(), "stored length {bad}");
        }
    }

    #[test]
    fn segment_size_bounds() {
        assert!(SegmentSize::from_log2(11).is_err());
        assert!(SegmentSize::from_log2(25).is_err());
        assert_eq!(SegmentSize::from_bytes(65536), Ok(SegmentSize::DEFAULT));
        assert!(SegmentSize::from_bytes(65535).is_err());
    }

    #[test]
    fn resolve_http_ranges() {
        let r = |a, b, n| PlainRange::resolve(a, b, n);
        assert_eq!(
            r(Some(0), Some(9), 100),
            Ok(Some(PlainRange { first: 0, last: 9 }))
        );
        assert_eq!(
            r(Some(90), None, 100),
            Ok(Some(PlainRange {
                first: 90,
                last: 99
            }))
        );
        assert_eq!(
            r(Some(90), Some(500), 100),
            Ok(Some(PlainRange {
                first: 90,
                last: 99
            }))
        );
        assert_eq!(
            r(None, Some(10), 100),
            Ok(Some(PlainRange {
                first: 90,
                last: 99
            }))
        );
        assert_eq!(
            r(None, Some(500), 100),
            Ok(Some(PlainRange { first: 0, last: 99 }))
        );
        assert!(r(Some(100), None, 100).is_err());
        assert!(r(Some(0), None, 0).is_err());
        assert_eq!(r(None, Some(5), 0), Ok(None));
    }

    /// Checks a mapping against first principles: the slices cover exactly the range.
    fn check_mapping(layout: &Layout, range: PlainRange) {
        let slices = layout.map_range(range).unwrap();
        let seg = layout.segment_size();
        let total: u64 = slices.iter().map(|s| s.take).sum();
        assert_eq!(total, range.len());
        for pair in slices.windows(2) {
            assert_eq!(
                pair[0].stored_last + 1 + layout.salt_len(),
                pair[1].stored_first,
                "slices are adjacent but for the next part's salt"
            );
        }
        let mut plain_cursor = range.first;
        for s in &slices {
            let part_plain_start: u64 = layout.parts()[..s.part_index].iter().sum();
            let part_len = layout.parts()[s.part_index];
            let part_stored_start = layout.part_stored_offset(s.part_index);
            // The first opened segment begins at a segment boundary in the part.
            assert_eq!(
                s.stored_first,
                part_stored_start + layout.salt_len() + s.first_segment * seg.stored_bytes()
            );
            let released_from = part_plain_start + s.first_segment * seg.bytes() + s.skip_front;
            assert_eq!(released_from, plain_cursor);
            assert!(s.skip_front < seg.bytes());
            // The stored range ends exactly where the last opened segment ends.
            let opened_plain: u64 = (s.first_segment..=s.last_segment)
                .map(|i| segment_plain_len(part_len, i, seg))
                .sum();
            let opened_count = s.last_segment - s.first_segment + 1;
            assert_eq!(
                s.stored_last - s.stored_first + 1,
                opened_plain + opened_count * SEGMENT_OVERHEAD_BYTES
            );
            assert!(s.skip_front + s.take <= opened_plain);
            plain_cursor += s.take;
        }
        let last = slices.last().unwrap();
        assert!(last.stored_last < layout.stored_len());
    }

    #[test]
    fn a_salted_part_is_its_salt_and_its_segments() {
        assert_eq!(salted_stored_len(0, S), 48);
        assert_eq!(salted_stored_len(65536, S), 16 + 65568);
        for bad in [0, 15, 16, 47, 16 + 65569] {
            assert!(salted_plain_len(bad, S).is_err(), "{bad}");
        }
        let layout = Layout::multipart(vec![65536, 10], S).with_salts(true);
        assert_eq!(layout.stored_len(), 16 + 65568 + 16 + 42);
        assert_eq!(layout.part_stored_offset(1), 16 + 65568);
        let slices = layout
            .map_range(PlainRange {
                first: 65536,
                last: 65537,
            })
            .unwrap();
        assert_eq!(slices[0].stored_first, 16 + 65568 + 16);
        assert_eq!(slices[0].stored_last, layout.stored_len() - 1);
    }

    #[test]
    fn ranges_at_segment_boundaries() {
        let s = S.bytes();
        for size in [1, s - 1, s, s + 1, 3 * s, 3 * s + 7] {
            let layout = Layout::single(size, S);
            for first in [0, 1, s - 1, s, s + 1, 2 * s - 1] {
                for len in [1, 2, s - 1, s, s + 1, 5 * s] {
                    if first >= size {
                        assert!(layout.map_range(PlainRange { first, last: first }).is_err());
                        continue;
                    }
                    let last = (first + len - 1).min(size - 1);
                    check_mapping(&layout, PlainRange { first, last });
                }
            }
        }
    }

    #[test]
    fn whole_object_range_is_whole_stored_body() {
        let layout = Layout::multipart(vec![5 << 20, 70_000, 1], S);
        let slices = layout
            .map_range(PlainRange {
                first: 0,
                last: layout.plain_len() - 1,
            })
            .unwrap();
        assert_eq!(slices.first().unwrap().stored_first, 0);
        assert_eq!(slices.last().unwrap().stored_last, layout.stored_len() - 1);
    }

    proptest! {
        #[test]
        fn prop_plain_len_inverts(p in 0u64..(1u64 << 42)) {
            prop_assert_eq!(plain_len(stored_len(p, S), S), Ok(p));
        }

        #[test]
        fn prop_salted_plain_len_inverts(p in 0u64..(1u64 << 42)) {
            prop_assert_eq!(salted_plain_len(salted_stored_len(p, S), S), Ok(p));
        }

        #[test]
        fn prop_stored_len_monotonic(p in 0u64..(1u64 << 40)) {
            prop_assert!(stored_len(p + 1, S) > stored_len(p, S));
        }

        #[test]
        fn prop_any_log2_inverts(p in 0u64..(1u64 << 36), log2 in 12u8..=24) {
            let seg = SegmentSize::from_log2(log2).unwrap();
            prop_assert_eq!(plain_len(stored_len(p, seg), seg), Ok(p));
        }

        #[test]
        fn prop_single_part_ranges(size in 1u64..(1u64 << 24), a in any::<u64>(), b in any::<u64>()) {
            let layout = Layout::single(size, S);
            let (x, y) = (a % size, b % size);
            check_mapping(&layout, PlainRange { first: x.min(y), last: x.max(y) });
        }

        #[test]
        fn prop_multipart_ranges(
            parts in proptest::collection::vec(prop_oneof![
                Just(65536u64), Just(65535), Just(65537), Just(1), 1u64..300_000
            ], 1..6),
            a in any::<u64>(), b in any::<u64>(), salted in any::<bool>()
        ) {
            let layout = Layout::multipart(parts, S).with_salts(salted);
            let size = layout.plain_len();
            let (x, y) = (a % size, b % size);
            check_mapping(&layout, PlainRange { first: x.min(y), last: x.max(y) });
        }
    }
}
