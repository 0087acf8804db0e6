//! The five S3 additional checksums, computed incrementally: CRC-32 (ISO-HDLC), CRC-32C
//! (Castagnoli), CRC-64/NVME, SHA-1 and SHA-256. S3 prints each as the base64 of the
//! big-endian digest (`x-amz-checksum-crc32: i9aeUg==` for "Hello world"). CRCs come from
//! `crc-fast` (SIMD with a portable fallback), the SHAs from AWS-LC.

use aws_lc_rs::{constant_time, digest};
use base64::Engine;
use std::fmt;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Longest digest (SHA-256).
pub const DIGEST_LEN_BYTES_MAX: usize = 32;

/// One of S3's checksum algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32/ISO-HDLC (the zlib CRC).
    Crc32,
    /// CRC-32C (Castagnoli, iSCSI).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// All five.
    pub const ALL: [Self; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// The header (or trailer) that carries the value: `x-amz-checksum-crc32`, ...
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The value of `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm`: `CRC32`, ...
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The algorithm whose header is `name` (any case).
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name))
    }

    /// The algorithm named by an `x-amz-sdk-checksum-algorithm` or
    /// `x-amz-checksum-algorithm` value (any case, surrounding spaces ignored).
    pub fn from_name(value: &[u8]) -> Option<Self> {
        let value = value.trim_ascii();
        Self::ALL
            .into_iter()
            .find(|a| a.name().as_bytes().eq_ignore_ascii_case(value))
    }

    /// Length of the digest in bytes.
    pub fn digest_len_bytes(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

impl ChecksumAlgorithm {
    /// The CRC of `crc-fast` this algorithm is; `None` for the SHAs.
    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            Self::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            Self::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            Self::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            Self::Sha1 | Self::Sha256 => None,
        }
    }

    /// The element that carries a value in S3's XML: `ChecksumCRC32`, ...
    pub fn xml_name(self) -> &'static str {
        match self {
            Self::Crc32 => "ChecksumCRC32",
            Self::Crc32c => "ChecksumCRC32C",
            Self::Crc64Nvme => "ChecksumCRC64NVME",
            Self::Sha1 => "ChecksumSHA1",
            Self::Sha256 => "ChecksumSHA256",
        }
    }

    /// Whether a checksum of the whole object can be made from the parts' checksums
    /// (S3's `FULL_OBJECT` type for multipart uploads): the CRCs.
    pub fn combines(self) -> bool {
        self.crc().is_some()
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A digest: the bytes S3 base64-encodes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    bytes: [u8; DIGEST_LEN_BYTES_MAX],
    len: usize,
}

impl Checksum {
    /// The big-endian digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    /// Base64 (standard alphabet, padded), as S3 prints it.
    pub fn to_base64(&self) -> String {
        B64.encode(self.as_bytes())
    }

    /// Whether `expected` (base64, as in a header or trailer) is this digest, compared in
    /// constant time. Anything that is not canonical base64 of the right length is false.
    pub fn matches_base64(&self, expected: &str) -> bool {
        let mut buf = [0_u8; DIGEST_LEN_BYTES_MAX + 3];
        match B64.decode_slice(expected.trim().as_bytes(), &mut buf) {
            Ok(n) => constant_time::verify_slices_are_equal(&buf[..n], self.as_bytes()).is_ok(),
            Err(_) => false,
        }
    }
}

impl Checksum {
    /// A digest of `algorithm` from its big-endian bytes; `None` if the length is not the
    /// algorithm's.
    pub fn from_bytes(algorithm: ChecksumAlgorithm, digest: &[u8]) -> Option<Self> {
        if digest.len() != algorithm.digest_len_bytes() {
            return None;
        }
        let mut bytes = [0_u8; DIGEST_LEN_BYTES_MAX];
        bytes[..digest.len()].copy_from_slice(digest);
        Some(Self {
            bytes,
            len: digest.len(),
        })
    }

    /// A digest of `algorithm` as S3 prints it (standard base64, padded); `None` if it is
    /// not one.
    pub fn from_base64(algorithm: ChecksumAlgorithm, value: &str) -> Option<Self> {
        let mut buf = [0_u8; DIGEST_LEN_BYTES_MAX + 3];
        let n = B64.decode_slice(value.trim().as_bytes(), &mut buf).ok()?;
        Self::from_bytes(algorithm, &buf[..n])
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.to_base64())
    }
}

#[derive(Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per request, kept inline so that hashing never allocates"
)]
enum State {
    Crc(crc_fast::Digest),
    Sha(digest::Context),
}

/// An incremental checksum.
#[derive(Clone)]
pub struct Hasher {
    algorithm: ChecksumAlgorithm,
    state: State,
}

impl Hasher {
    /// A hasher for `algorithm` over no data yet.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => {
                State::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc))
            }
            ChecksumAlgorithm::Crc32c => {
                State::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
            }
            ChecksumAlgorithm::Crc64Nvme => {
                State::Crc(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
            }
            ChecksumAlgorithm::Sha1 => {
                State::Sha(digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY))
            }
            ChecksumAlgorithm::Sha256 => State::Sha(digest::Context::new(&digest::SHA256)),
        };
        Self { algorithm, state }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Crc(d) => d.update(data),
            State::Sha(d) => d.update(data),
        }
    }

    /// The digest of everything added.
    pub fn finish_raw(self) -> Checksum {
        let mut bytes = [0_u8; DIGEST_LEN_BYTES_MAX];
        let len = self.algorithm.digest_len_bytes();
        match self.state {
            State::Crc(d) => {
                let value = d.finalize().to_be_bytes();
                // A CRC-32 is the low four bytes of the u64.
                let src = value.get(value.len() - len..).unwrap_or_default();
                bytes[..src.len()].copy_from_slice(src);
            }
            State::Sha(d) => {
                let out = d.finish();
                let src = out.as_ref();
                let n = src.len().min(DIGEST_LEN_BYTES_MAX);
                bytes[..n].copy_from_slice(&src[..n]);
            }
        }
        Checksum { bytes, len }
    }

    /// The digest in base64, as S3 prints it.
    pub fn finish(self) -> String {
        self.finish_raw().to_base64()
    }

    /// Whether everything added has the digest `expected_base64` (constant time).
    pub fn verify(self, expected_base64: &str) -> bool {
        self.finish_raw().matches_base64(expected_base64)
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The CRC of `a ‖ b` from the CRCs of `a` and of `b` and the length of `b` in bytes;
/// `None` for the SHAs, or digests of another algorithm.
pub fn combine(
    algorithm: ChecksumAlgorithm,
    a: &Checksum,
    b: &Checksum,
    b_len: u64,
) -> Option<Checksum> {
    let crc = algorithm.crc()?;
    let n = algorithm.digest_len_bytes();
    let value = |c: &Checksum| {
        let bytes = c.as_bytes();
        (bytes.len() == n).then(|| bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
    };
    let combined = crc_fast::checksum_combine(crc, value(a)?, value(b)?, b_len).to_be_bytes();
    Checksum::from_bytes(algorithm, combined.get(8 - n..)?)
}

/// S3's `COMPOSITE` checksum of a multipart object: the checksum of the parts' digests
/// laid end to end (printed with `-N`, the part count, after it).
pub fn composite(algorithm: ChecksumAlgorithm, parts: &[Checksum]) -> Checksum {
    let mut h = Hasher::new(algorithm);
    for p in parts {
        h.update(p.as_bytes());
    }
    h.finish_raw()
}

/// The checksum of `data` in one call.
pub fn checksum(algorithm: ChecksumAlgorithm, data: &[u8]) -> Checksum {
    let mut h = Hasher::new(algorithm);
    h.update(data);
    h.finish_raw()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn combined_crcs_are_the_crc_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for a in ChecksumAlgorithm::ALL {
            for cut in [0, 1, 4095, 65_536, 99_999, 100_000] {
                let (x, y) = data.split_at(cut);
                let got = combine(a, &checksum(a, x), &checksum(a, y), y.len() as u64);
                if a.combines() {
                    assert_eq!(got, Some(checksum(a, &data)), "{a} at {cut}");
                } else {
                    assert_eq!(got, None, "{a}");
                }
            }
        }
        // A digest of another length is not combined.
        let c32 = checksum(ChecksumAlgorithm::Crc32, b"x");
        let c64 = checksum(ChecksumAlgorithm::Crc64Nvme, b"x");
        assert_eq!(combine(ChecksumAlgorithm::Crc64Nvme, &c64, &c32, 1), None);
    }

    #[test]
    fn composite_is_the_checksum_of_the_part_digests() {
        // S3's documented example shape: SHA-256 over the parts' raw digests.
        let parts = [b"part one".as_slice(), b"part two"];
        let digests: Vec<Checksum> = parts
            .iter()
            .map(|p| checksum(ChecksumAlgorithm::Sha256, p))
            .collect();
        let mut joined = Vec::new();
        for d in &digests {
            joined.extend_from_slice(d.as_bytes());
        }
        assert_eq!(
            composite(ChecksumAlgorithm::Sha256, &digests),
            checksum(ChecksumAlgorithm::Sha256, &joined)
        );
        assert_eq!(joined.len(), 64);
    }

    #[test]
    fn from_base64_takes_only_digests_of_the_algorithm() {
        let c = checksum(ChecksumAlgorithm::Crc32, b"Hello world");
        assert_eq!(c.to_base64(), "i9aeUg==");
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc32, "i9aeUg=="),
            Some(c)
        );
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc64Nvme, "i9aeUg=="),
            None
        );
        assert_eq!(
            Checksum::from_base64(ChecksumAlgorithm::Crc32, "i9ae!g=="),
            None
        );
    }
}
