//! Plaintext that arrives in pieces of any size (a copy source's opened segments, whose
//! segment size may differ from the new object's) cut into the segments of a new body of
//! known length ([`write_segments`]). Pure bookkeeping: no I/O, no keys.
//!
//! The final segment is held back: its plaintext is taken in, but it is handed out to be
//! sealed only by [`Recut::finish`], which the caller calls once everything it read
//! verified. A body of known length is complete at the backend only with its final
//! segment, so a read that fails after the last plaintext byte (a source whose trailing
//! empty segment does not open) still leaves nothing stored.

use crate::envelope::layout::SegmentSize;
use crate::envelope::write_plan::{WriteSegment, WriteSegments, write_segments};
use std::ops::Range;

/// Why plaintext and the new body's length disagree (the read plan and the source did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecutError {
    /// More plaintext arrived than the body holds.
    #[error("more plaintext than the new object's length")]
    Overflow,
    /// The plaintext ended before the body was full.
    #[error("less plaintext than the new object's length")]
    Short,
}

/// What to do with the next plaintext bytes ([`Recut::take`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Take {
    /// Where in the segment buffer the next `into.len()` bytes of the plaintext go.
    pub(crate) into: Range<usize>,
    /// A segment that those bytes filled, to be sealed from the start of the buffer now
    /// (never the final one).
    pub(crate) seal: Option<WriteSegment>,
}

/// The cutting of one new body (see the module's comment).
#[derive(Debug, Clone)]
pub(crate) struct Recut {
    segments: WriteSegments,
    /// The segment being filled; `None` once every segment was handed out.
    at: Option<WriteSegment>,
    /// Plaintext bytes in it so far.
    fill: usize,
}

impl Recut {
    /// The cutting of a body of `plain_len` bytes into segments of `seg`.
    pub(crate) fn new(plain_len: u64, seg: SegmentSize) -> Self {
        let mut segments = write_segments(plain_len, seg);
        Self {
            at: segments.next(),
            segments,
            fill: 0,
        }
    }

    /// Takes up to `available` plaintext bytes (at least one): where they go in the
    /// segment buffer (as many as fit in the current segment), and the segment to seal if
    /// they filled one that is not the final one.
    pub(crate) fn take(&mut self, available: usize) -> Result<Take, RecutError> {
        let at = self.at.ok_or(RecutError::Overflow)?;
        // In range: a segment holds at most the segment size, a `usize` (SegmentSize).
        let full = at.plain_len as usize;
        let n = (full - self.fill).min(available);
        if n == 0 {
            return Err(RecutError::Overflow);
        }
        let into = self.fill..self.fill + n;
        self.fill += n;
        let seal = match self.fill == full && !at.last {
            true => {
                self.fill = 0;
                self.at = self.segments.next();
                Some(at)
            }
            false => None,
        };
        Ok(Take { into, seal })
    }

    /// The final segment, filled (its plaintext is at the start of the buffer), to be
    /// sealed now: all of the body's plaintext arrived.
    pub(crate) fn finish(&self) -> Result<WriteSegment, RecutError> {
        match self.at {
            Some(at) if at.last && self.fill as u64 == at.plain_len => Ok(at),
            _ => Err(RecutError::Short),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seg_4k() -> SegmentSize {
        SegmentSize::from_log2(12).unwrap()
    }

    /// Cuts `plain` fed in `pieces` (cycled), returning the sealed segments in order as
    /// (index, last, plaintext), the final one from `finish`.
    fn cut(plain: &[u8], pieces: &[usize], seg: SegmentSize) -> Vec<(u64, bool, Vec<u8>)> {
        let mut recut = Recut::new(plain.len() as u64, seg);
        let mut buf = vec![0u8; seg.bytes_usize()];
        let mut out = Vec::new();
        let mut rest = plain;
        for &p in pieces.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let mut piece = &rest[..p.min(rest.len())];
            rest = &rest[piece.len()..];
            while !piece.is_empty() {
                let t = recut.take(piece.len()).unwrap();
                let n = t.into.len();
                buf[t.into].copy_from_slice(&piece[..n]);
                piece = &piece[n..];
                if let Some(s) = t.seal {
                    out.push((s.index, s.last, buf[..s.plain_len as usize].to_vec()));
                }
            }
        }
        let last = recut.finish().unwrap();
        out.push((
            last.index,
            last.last,
            buf[..last.plain_len as usize].to_vec(),
        ));
        out
    }

    #[test]
    fn the_final_segment_is_held_until_finish() {
        let seg = seg_4k();
        let mut recut = Recut::new(2 * 4096, seg);
        let first = recut.take(4096).unwrap();
        assert_eq!(first.into, 0..4096);
        assert_eq!(first.seal.map(|s| (s.index, s.last)), Some((0, false)));
        let second = recut.take(4096).unwrap();
        assert_eq!(second.into, 0..4096);
        assert!(second.seal.is_none(), "the final segment waits for finish");
        assert_eq!(recut.take(1), Err(RecutError::Overflow));
        let last = recut.finish().unwrap();
        assert_eq!((last.index, last.last, last.plain_len), (1, true, 4096));
    }

    #[test]
    fn an_empty_body_is_its_one_empty_final_segment() {
        let recut = Recut::new(0, seg_4k());
        let last = recut.finish().unwrap();
        assert_eq!((last.index, last.last, last.plain_len), (0, true, 0));
        assert_eq!(recut.clone().take(1), Err(RecutError::Overflow));
    }

    #[test]
    fn a_body_that_ends_short_or_runs_over_is_refused() {
        let seg = seg_4k();
        let mut recut = Recut::new(5000, seg);
        assert!(recut.take(4096).unwrap().seal.is_some());
        assert_eq!(recut.take(10).unwrap().into, 0..10);
        assert_eq!(recut.finish(), Err(RecutError::Short));
        assert_eq!(recut.take(2000).unwrap().into, 10..904);
        assert_eq!(recut.take(1), Err(RecutError::Overflow));
        assert!(recut.finish().is_ok());
        assert_eq!(Recut::new(4096, seg).finish(), Err(RecutError::Short));
    }

    proptest! {
        #[test]
        fn any_pieces_give_the_write_plan_and_the_plaintext(
            len in 0usize..20_000,
            pieces in proptest::collection::vec(1usize..9000, 1..6),
        ) {
            let seg = seg_4k();
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let got = cut(&plain, &pieces, seg);
            let want: Vec<_> = write_segments(len as u64, seg).collect();
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                prop_assert_eq!((g.0, g.1), (w.index, w.last));
                let at = w.plain_offset as usize;
                prop_assert_eq!(&g.2[..], &plain[at..at + w.plain_len as usize]);
            }
        }
    }
}
