//! The `Range` header of GetObject and HeadObject, as S3 reads it: one byte range is served,
//! anything else (several ranges, another unit, bad syntax) is ignored and the whole object
//! served with 200; a single range that starts past the end is 416 InvalidRange.
//!
//! ```text
//! Range = "bytes" "=" ( first "-" [ last ] / "-" suffix-length )    (RFC 9110 §14.1.2)
//! ```
//!
//! Numbers too large for 64 bits saturate: such a range is either unsatisfiable (first) or
//! reaches the end (last, suffix-length), exactly as the true number would.
//!
//! UploadPartCopy's `x-amz-copy-source-range` is read more strictly ([`copy_source_range`]):
//! a range S3 cannot take whole is refused rather than ignored or clamped.

/// One byte range, as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last`, `first <= last`; `last` may be past the end.
    FromTo {
        /// First byte.
        first: u64,
        /// Last byte, inclusive.
        last: u64,
    },
    /// `bytes=first-`: from `first` to the end.
    From {
        /// First byte.
        first: u64,
    },
    /// `bytes=-n`: the last `n` bytes.
    Suffix {
        /// How many bytes at the end.
        len: u64,
    },
}

/// What a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// One range: serve it (206) or, if unsatisfiable, answer 416.
    Single(ByteRange),
    /// Several ranges: S3 does not serve multipart/byteranges and sends the whole object; so
    /// does the gateway.
    Multiple,
    /// Not a byte range S3 understands: ignored, the whole object is sent.
    Ignored,
}

/// The bytes a satisfiable range selects, `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedRange {
    /// First byte.
    pub first: u64,
    /// Last byte, inclusive, below the object size.
    pub last: u64,
}

impl ResolvedRange {
    /// Number of bytes selected (at least 1).
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Never: a resolved range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` value for an object of `size` bytes: `bytes first-last/size`.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{}", self.first, self.last, size)
    }
}

/// The range is unsatisfiable for the object: answer 416 InvalidRange with
/// `Content-Range: bytes */size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the requested range is not satisfiable")]
pub struct Unsatisfiable;

impl ByteRange {
    /// The bytes selected in an object of `size` bytes (RFC 9110 §14.1.2): a first byte at or
    /// past the end, a zero-length suffix, or any range of an empty object is unsatisfiable;
    /// a last byte past the end is clamped.
    pub fn resolve(self, size: u64) -> Result<ResolvedRange, Unsatisfiable> {
        let end = size.checked_sub(1).ok_or(Unsatisfiable)?;
        match self {
            ByteRange::FromTo { first, last } if first <= end => Ok(ResolvedRange {
                first,
                last: last.min(end),
            }),
            ByteRange::From { first } if first <= end => Ok(ResolvedRange { first, last: end }),
            ByteRange::Suffix { len } if len > 0 => Ok(ResolvedRange {
                first: size - len.min(size),
                last: end,
            }),
            _ => Err(Unsatisfiable),
        }
    }
}

/// Why UploadPartCopy refuses an `x-amz-copy-source-range`; both are S3's 400
/// InvalidArgument, with its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CopyRangeError {
    /// Not `bytes=first-last` (or `bytes=first-`), `first <= last`.
    #[error(
        "The x-amz-copy-source-range value must be of the form bytes=first-last where first \
         and last are the zero-based offsets of the first and last bytes to copy"
    )]
    Malformed,
    /// A byte of the range at or past the end of the source: S3 copies a range whole or not
    /// at all (unlike a GET's range, which ends at the end of the object).
    #[error("Range specified is not valid for source object of size: {size}")]
    OutsideSource {
        /// The source's size in bytes.
        size: u64,
    },
}

impl From<CopyRangeError> for super::S3Error {
    fn from(e: CopyRangeError) -> Self {
        super::S3Error::invalid_argument(e.to_string())
    }
}

/// The bytes of a source of `size` bytes that UploadPartCopy copies: those its
/// `x-amz-copy-source-range` value names (`None`: no such header), all of them without
/// one; `None` for an empty source without one. The range is `bytes=first-last` (or
/// `bytes=first-`, to the end), and every byte of it must be in the source.
pub fn copy_source_range(
    value: Option<&[u8]>,
    size: u64,
) -> Result<Option<ResolvedRange>, CopyRangeError> {
    let Some(value) = value else {
        return Ok(size
            .checked_sub(1)
            .map(|last| ResolvedRange { first: 0, last }));
    };
    let (first, last) = match parse_range(value) {
        RangeRequest::Single(ByteRange::FromTo { first, last }) => (first, last),
        RangeRequest::Single(ByteRange::From { first }) => (first, size.saturating_sub(1)),
        _ => return Err(CopyRangeError::Malformed),
    };
    if first >= size || last >= size {
        return Err(CopyRangeError::OutsideSource { size });
    }
    Ok(Some(ResolvedRange { first, last }))
}

/// Reads a `Range` header value.
pub fn parse_range(value: &[u8]) -> RangeRequest {
    let value = trim(value);
    let Some(unit) = value.get(..6) else {
        return RangeRequest::Ignored;
    };
    if !unit.eq_ignore_ascii_case(b"bytes=") {
        return RangeRequest::Ignored;
    }
    // Empty list elements are allowed (RFC 9110 §5.6.1) and skipped.
    let mut specs = value[6..]
        .split(|&b| b == b',')
        .map(trim)
        .filter(|s| !s.is_empty());
    let Some(spec) = specs.next() else {
        return RangeRequest::Ignored;
    };
    if specs.next().is_some() {
        // Several ranges, whether or not each is valid.
        return RangeRequest::Multiple;
    }
    match parse_spec(spec) {
        Some(range) => RangeRequest::Single(range),
        None => RangeRequest::Ignored,
    }
}

fn parse_spec(spec: &[u8]) -> Option<ByteRange> {
    let dash = spec.iter().position(|&b| b == b'-')?;
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (first.is_empty(), last.is_empty()) {
        (true, true) => None,
        (true, false) => Some(ByteRange::Suffix {
            len: saturating_decimal(last)?,
        }),
        (false, true) => Some(ByteRange::From {
            first: saturating_decimal(first)?,
        }),
        (false, false) => {
            let (first, last) = (saturating_decimal(first)?, saturating_decimal(last)?);
            (first <= last).then_some(ByteRange::FromTo { first, last })
        }
    }
}

/// ASCII digits as a u64, saturating; `None` for anything but digits.
fn saturating_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Without leading and trailing spaces and tabs.
fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(value: &str, size: u64) -> Result<Option<(u64, u64)>, CopyRangeError> {
        copy_source_range(Some(value.as_bytes()), size).map(|r| r.map(|r| (r.first, r.last)))
    }

    #[test]
    fn a_copy_range_inside_the_source_is_copied_as_asked() {
        assert_eq!(copy("bytes=0-9", 10), Ok(Some((0, 9))));
        assert_eq!(copy("bytes=3-3", 10), Ok(Some((3, 3))));
        assert_eq!(copy("bytes=4-", 10), Ok(Some((4, 9))));
        assert_eq!(copy("bytes=9-", 10), Ok(Some((9, 9))));
        assert_eq!(copy(" bytes=2-5 ", 10), Ok(Some((2, 5))));
    }

    #[test]
    fn without_a_copy_range_the_whole_source_is_copied() {
        assert_eq!(
            copy_source_range(None, 10),
            Ok(Some(ResolvedRange { first: 0, last: 9 }))
        );
        assert_eq!(copy_source_range(None, 0), Ok(None));
    }

    /// Regression: the range was clamped to the source as a GET's is (`bytes=0-99` of 10
    /// bytes copied 10 bytes); S3 refuses it.
    #[test]
    fn a_copy_range_past_the_source_is_refused_not_clamped() {
        let outside = Err(CopyRangeError::OutsideSource { size: 10 });
        for value in [
            "bytes=0-10",
            "bytes=0-99",
            "bytes=9-10",
            "bytes=10-10",
            "bytes=10-",
            "bytes=50-60",
            "bytes=0-99999999999999999999999",
        ] {
            assert_eq!(copy(value, 10), outside, "{value}");
        }
        assert_eq!(
            copy("bytes=0-0", 0),
            Err(CopyRangeError::OutsideSource { size: 0 })
        );
    }

    #[test]
    fn a_copy_range_not_of_the_form_first_last_is_malformed() {
        for value in [
            "0-9",
            "bytes=",
            "bytes=-5",
            "bytes=5-2",
            "bytes=0-1,3-4",
            "bytes=a-b",
            "items=0-9",
        ] {
            assert_eq!(copy(value, 10), Err(CopyRangeError::Malformed), "{value}");
        }
    }

    #[test]
    fn copy_range_refusals_are_s3_invalid_argument() {
        let e = super::super::S3Error::from(CopyRangeError::OutsideSource { size: 10 });
        assert_eq!((e.status, e.code.as_str()), (400, "InvalidArgument"));
        assert_eq!(
            e.message,
            "Range specified is not valid for source object of size: 10"
        );
        let e = super::super::S3Error::from(CopyRangeError::Malformed);
        assert_eq!((e.status, e.code.as_str()), (400, "InvalidArgument"));
    }
}
