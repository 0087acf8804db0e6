//! Write plans: the segments a body of known length is sealed as. A PUT's body, a part of
//! an UploadPart, and the plaintext an UploadPartCopy re-cuts into a part are all sealed
//! as [`write_segments`] says: segments of the segment size, the last one shorter (or
//! empty, for an empty body) and sealed final. Pure: no I/O, no keys.

use super::layout::{SEGMENT_OVERHEAD_BYTES, SegmentSize, segment_count, segment_plain_len};

/// One segment to seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSegment {
    /// Index of the segment within its part (or single-part object).
    pub index: u64,
    /// Offset of its first plaintext byte in the body.
    pub plain_offset: u64,
    /// Plaintext bytes in it (at most the segment size; 0 only for an empty body).
    pub plain_len: u64,
    /// Whether it is sealed as the final segment.
    pub last: bool,
}

impl WriteSegment {
    /// Bytes it takes once sealed.
    pub fn stored_len(&self) -> u64 {
        self.plain_len + SEGMENT_OVERHEAD_BYTES
    }
}

/// The segments of a body of `plain_len` bytes, in order.
#[derive(Debug, Clone)]
pub struct WriteSegments {
    plain_len: u64,
    seg: SegmentSize,
    next: u64,
    count: u64,
}

/// The segments a body of `plain_len` plaintext bytes is sealed as (at least one).
pub fn write_segments(plain_len: u64, seg: SegmentSize) -> WriteSegments {
    WriteSegments {
        plain_len,
        seg,
        next: 0,
        count: segment_count(plain_len, seg),
    }
}

impl Iterator for WriteSegments {
    type Item = WriteSegment;

    fn next(&mut self) -> Option<WriteSegment> {
        if self.next >= self.count {
            return None;
        }
        let index = self.next;
        self.next += 1;
        Some(WriteSegment {
            index,
            plain_offset: index * self.seg.bytes(),
            plain_len: segment_plain_len(self.plain_len, index, self.seg),
            last: index + 1 == self.count,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::layout::stored_len;
    use proptest::prelude::*;

    fn check(plain_len: u64, seg: SegmentSize) {
        let segments: Vec<WriteSegment> = write_segments(plain_len, seg).collect();
        assert_eq!(segments.len() as u64, segment_count(plain_len, seg));
        let mut at = 0;
        for (i, s) in segments.iter().enumerate() {
            assert_eq!(s.index, i as u64);
            assert_eq!(s.plain_offset, at, "contiguous");
            assert!(s.plain_len <= seg.bytes());
            assert_eq!(s.last, i + 1 == segments.len(), "only the last is final");
            if !s.last {
                assert_eq!(s.plain_len, seg.bytes(), "all but the last are full");
            }
            assert!(
                s.plain_len > 0 || plain_len == 0,
                "empty only for an empty body"
            );
            at += s.plain_len;
        }
        assert_eq!(at, plain_len, "the body, all of it");
        let stored: u64 = segments.iter().map(WriteSegment::stored_len).sum();
        assert_eq!(stored, stored_len(plain_len, seg));
    }

    #[test]
    fn every_length_around_the_segment_boundaries() {
        let seg = SegmentSize::from_log2(12).unwrap();
        let s = seg.bytes();
        for n in [
            0,
            1,
            s - 1,
            s,
            s + 1,
            2 * s - 1,
            2 * s,
            2 * s + 1,
            7 * s + 3,
        ] {
            check(n, seg);
        }
        let empty: Vec<_> = write_segments(0, seg).collect();
        assert_eq!(
            empty,
            vec![WriteSegment {
                index: 0,
                plain_offset: 0,
                plain_len: 0,
                last: true
            }]
        );
    }

    proptest! {
        #[test]
        fn segments_cover_the_body_once(plain_len in 0u64..1_000_000, log2 in 12u8..=17) {
            check(plain_len, SegmentSize::from_log2(log2).unwrap());
        }
    }
}
