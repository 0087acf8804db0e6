//! How an object is copied onto itself with a backend multipart copy: the byte ranges of
//! its UploadPartCopy calls. Pure.

/// Largest byte range one UploadPartCopy may copy (S3: 5 GiB).
pub const COPY_PART_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;

/// Byte ranges (inclusive) of the UploadPartCopy calls that copy an object of `stored`
/// bytes in parts of at most `max` bytes: as few as possible, of near-equal sizes (so each
/// is at least half of `max` when there are several; with `max` of 5 GiB, far above S3's
/// 5 MiB minimum).
pub fn copy_ranges(stored: u64, max: u64) -> Vec<(u64, u64)> {
    let n = stored.div_ceil(max.max(1)).max(1);
    let each = stored.div_ceil(n);
    let mut out = Vec::new();
    let mut first = 0;
    while first < stored {
        let last = (first + each).min(stored) - 1;
        out.push((first, last));
        first = last + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges_cover_the_object() {
        assert_eq!(copy_ranges(10, COPY_PART_BYTES_MAX), vec![(0, 9)]);
        let big = 11 * 1024 * 1024 * 1024 + 7;
        let r = copy_ranges(big, COPY_PART_BYTES_MAX);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].0, 0);
        assert_eq!(r[2].1, big - 1);
        for w in r.windows(2) {
            assert_eq!(w[0].1 + 1, w[1].0);
        }
        assert!(r.iter().all(|(a, b)| b - a < COPY_PART_BYTES_MAX));
        // Smaller parts, near-equal: 11 MiB in parts of at most 6 MiB is two of 5.5 MiB.
        let mib = 1024 * 1024;
        let r = copy_ranges(11 * mib, 6 * mib);
        assert_eq!(r, vec![(0, 11 * mib / 2 - 1), (11 * mib / 2, 11 * mib - 1)]);
    }
}
