//! The sealed record of the checksum a client sent with an object (`docs/format.md`,
//! *Checksum record*).
//!
//! Plaintext of the record (record version 1):
//!
//! ```text
//! 1     record version = 1
//! 1     algorithm: 1 CRC32, 2 CRC32C, 3 CRC64NVME, 4 SHA1, 5 SHA256
//! 1     kind: 0 = a checksum of the whole plaintext (S3's FULL_OBJECT),
//!             1 = a checksum of the parts' checksums (S3's COMPOSITE)
//! 2     kind 1 only: the part count, big-endian, 1..=10000
//! n     the digest, big-endian, as many bytes as the algorithm gives; nothing may follow
//! ```
//!
//! A checksum of the plaintext is information about the plaintext (a CRC-32 of a short
//! object all but names it, a SHA-256 confirms a guess), so it never reaches the backend
//! in the clear. It is stored as base64url without padding in the user metadata
//! `x-amz-meta-twofold-checksum`, sealed:
//!
//! - for a multipart object of format version 2, whose record is sealed at
//!   CompleteMultipartUpload (which may happen more than once for one upload), as a
//!   salted record ([`super::salted`], label [`CHECKSUM_LABEL`], bound to the header's
//!   fixed bytes) with a fresh salt per sealing;
//! - otherwise (single-part objects, whose data keys are fresh for every PUT, and
//!   version 1) as the single, final segment 0 of the reserved part number
//!   [`CHECKSUM_PART_NUMBER`] with the object's own segment keys (both layers).

use super::aead::Layer;
use super::header::{FORMAT_VERSION, Header};
use super::layout::SEGMENT_OVERHEAD_BYTES;
use super::{DataKeys, Error, SegmentCipher, salted};
use crate::s3::checksum::{Checksum, ChecksumAlgorithm, DIGEST_LEN_BYTES_MAX};
use base64::Engine;

/// Version of the record's plaintext encoding.
pub const CHECKSUM_RECORD_VERSION: u8 = 1;
/// Part number whose keys seal the record: not an S3 part number (those stop at 10000),
/// and not the layout record's.
pub const CHECKSUM_PART_NUMBER: u32 = u32::MAX - 1;
/// Kind byte of a checksum of the whole plaintext.
const KIND_FULL_OBJECT: u8 = 0;
/// Kind byte of a checksum of the parts' checksums.
const KIND_COMPOSITE: u8 = 1;
/// Most parts of a composite checksum (S3's part numbers).
const PARTS_MAX: u16 = 10_000;
/// Longest sealed record: five bytes, a SHA-256 and both layers' tags.
const SEALED_LEN_BYTES_MAX: usize = 5 + DIGEST_LEN_BYTES_MAX + SEGMENT_OVERHEAD_BYTES as usize;
/// Longest salted record: the same and a salt.
const SALTED_LEN_BYTES_MAX: usize = SEALED_LEN_BYTES_MAX + salted::SALT_LEN_BYTES;
/// Label of the salted checksum record ([`super::salted`]).
pub const CHECKSUM_LABEL: &[u8] = b"twofold/v2 checksum";

/// A checksum as an object keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredChecksum {
    /// The algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The digest: of the plaintext, or (composite) of the parts' digests laid end to end.
    pub digest: Checksum,
    /// For a composite checksum, the part count; `None` for a checksum of the plaintext.
    pub parts: Option<u16>,
}

impl StoredChecksum {
    /// A checksum of the whole plaintext.
    pub fn full_object(algorithm: ChecksumAlgorithm, digest: Checksum) -> Self {
        Self {
            algorithm,
            digest,
            parts: None,
        }
    }

    /// The value as S3 prints it: base64, and `-N` after a composite one.
    pub fn value(&self) -> String {
        match self.parts {
            None => self.digest.to_base64(),
            Some(n) => format!("{}-{n}", self.digest.to_base64()),
        }
    }

    /// S3's `x-amz-checksum-type`: `FULL_OBJECT` or `COMPOSITE`.
    pub fn type_name(&self) -> &'static str {
        match self.parts {
            None => "FULL_OBJECT",
            Some(_) => "COMPOSITE",
        }
    }
}
/// Longest metadata value a reader accepts (base64url of the longest record).
pub const VALUE_LEN_MAX: usize = SALTED_LEN_BYTES_MAX.div_ceil(3) * 4;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a stored checksum record was refused. Every variant means the object's metadata is
/// not what the gateway wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumRecordError {
    /// Not base64url, or longer than any record.
    #[error("the checksum record is not a sealed record")]
    Malformed,
    /// A tag failed: altered, or from another object.
    #[error("the checksum record failed its integrity check")]
    Rejected,
    /// It opened, but its contents are not a version 1 record.
    #[error("the checksum record has an unknown version, algorithm or kind")]
    Unknown,
}

fn algorithm_id(a: ChecksumAlgorithm) -> u8 {
    match a {
        ChecksumAlgorithm::Crc32 => 1,
        ChecksumAlgorithm::Crc32c => 2,
        ChecksumAlgorithm::Crc64Nvme => 3,
        ChecksumAlgorithm::Sha1 => 4,
        ChecksumAlgorithm::Sha256 => 5,
    }
}

fn algorithm_of(id: u8) -> Option<ChecksumAlgorithm> {
    ChecksumAlgorithm::ALL
        .into_iter()
        .find(|a| algorithm_id(*a) == id)
}

/// The keys that seal and open an object's checksum record.
pub fn cipher(header: &Header, keys: &DataKeys) -> Result<SegmentCipher, Error> {
    SegmentCipher::new(header, keys, CHECKSUM_PART_NUMBER)
}

/// The record's plaintext for `checksum`, in a buffer with room for both tags, and its
/// length.
fn encode(checksum: &StoredChecksum) -> Result<([u8; SEALED_LEN_BYTES_MAX], usize), Error> {
    let digest = checksum.digest.as_bytes();
    if digest.len() != checksum.algorithm.digest_len_bytes()
        || checksum.parts.is_some_and(|n| n == 0 || n > PARTS_MAX)
    {
        return Err(Error::Internal("checksum record"));
    }
    let mut buf = [0u8; SEALED_LEN_BYTES_MAX];
    buf[0] = CHECKSUM_RECORD_VERSION;
    buf[1] = algorithm_id(checksum.algorithm);
    let mut n = 3;
    match checksum.parts {
        None => buf[2] = KIND_FULL_OBJECT,
        Some(parts) => {
            buf[2] = KIND_COMPOSITE;
            buf[3..5].copy_from_slice(&parts.to_be_bytes());
            n = 5;
        }
    }
    buf[n..n + digest.len()].copy_from_slice(digest);
    Ok((buf, n + digest.len()))
}

/// The metadata value recording `checksum` with the object whose record keys are
/// `cipher` (from [`cipher`]): the unsalted record (see the module's comment for which
/// objects have it).
pub fn seal(cipher: &SegmentCipher, checksum: &StoredChecksum) -> Result<String, Error> {
    if cipher.part() != CHECKSUM_PART_NUMBER {
        return Err(Error::Internal("checksum record"));
    }
    let (mut buf, n) = encode(checksum)?;
    let sealed = cipher.seal(0, true, &mut buf, n)?;
    Ok(B64.encode(&buf[..sealed]))
}

/// Whether the object of `header` keeps its checksum as a salted record: a multipart
/// object of format version 2.
pub fn is_salted(header: &Header) -> bool {
    header.multipart && header.version() >= FORMAT_VERSION
}

/// The metadata value recording `checksum` with the object of `header` and `keys`, sealed
/// as that object's records are ([`is_salted`]; a fresh random salt where salted).
pub fn seal_for(
    header: &Header,
    keys: &DataKeys,
    checksum: &StoredChecksum,
) -> Result<String, Error> {
    match is_salted(header) {
        true => seal_salted(header, keys, checksum, super::random_bytes(Layer::Inner)?),
        false => seal(&cipher(header, keys)?, checksum),
    }
}

/// The salted record of `checksum` under `salt`: [`seal_for`] with the salt given, for the
/// published test vectors only. Never seal two records of one object under one salt.
pub fn seal_salted(
    header: &Header,
    keys: &DataKeys,
    checksum: &StoredChecksum,
    salt: [u8; salted::SALT_LEN_BYTES],
) -> Result<String, Error> {
    let (buf, n) = encode(checksum)?;
    let raw = salted::seal(CHECKSUM_LABEL, &header.fixed_bytes(), keys, &buf[..n], salt)?;
    Ok(B64.encode(raw))
}

/// Opens the metadata value of the object of `header` and `keys`, as that object's records
/// are sealed ([`is_salted`]).
pub fn open_for(
    header: &Header,
    keys: &DataKeys,
    value: &str,
) -> Result<StoredChecksum, ChecksumRecordError> {
    if !is_salted(header) {
        let cipher = cipher(header, keys).map_err(|_| ChecksumRecordError::Rejected)?;
        return open(&cipher, value);
    }
    if value.len() > VALUE_LEN_MAX {
        return Err(ChecksumRecordError::Malformed);
    }
    let raw = B64
        .decode(value.as_bytes())
        .map_err(|_| ChecksumRecordError::Malformed)?;
    let plain =
        salted::open(CHECKSUM_LABEL, &header.fixed_bytes(), keys, &raw).map_err(|e| match e {
            salted::SaltedError::Malformed => ChecksumRecordError::Malformed,
            salted::SaltedError::Rejected => ChecksumRecordError::Rejected,
        })?;
    decode(&plain)
}

/// Seals a checksum given as S3 prints it (base64); `None` if it is not a digest of
/// `algorithm`.
pub fn seal_base64(
    cipher: &SegmentCipher,
    algorithm: ChecksumAlgorithm,
    value: &str,
) -> Option<String> {
    let digest = Checksum::from_base64(algorithm, value)?;
    seal(cipher, &StoredChecksum::full_object(algorithm, digest)).ok()
}

/// Opens a metadata value written by [`seal`] under the same object's record keys (the
/// unsalted record).
pub fn open(cipher: &SegmentCipher, value: &str) -> Result<StoredChecksum, ChecksumRecordError> {
    if cipher.part() != CHECKSUM_PART_NUMBER || value.len() > VALUE_LEN_MAX {
        return Err(ChecksumRecordError::Malformed);
    }
    let mut sealed = [0u8; SEALED_LEN_BYTES_MAX + 2];
    let len = B64
        .decode_slice(value.as_bytes(), &mut sealed)
        .map_err(|_| ChecksumRecordError::Malformed)?;
    let mut plain = [0u8; SEALED_LEN_BYTES_MAX + 2];
    let n = cipher
        .open_to(0, true, &sealed[..len], &mut plain)
        .map_err(|_| ChecksumRecordError::Rejected)?;
    decode(&plain[..n])
}

/// The checksum a record's plaintext holds, checking every rule of [`encode`].
fn decode(plain: &[u8]) -> Result<StoredChecksum, ChecksumRecordError> {
    let [version, alg, kind, rest @ ..] = plain else {
        return Err(ChecksumRecordError::Unknown);
    };
    let algorithm = algorithm_of(*alg).ok_or(ChecksumRecordError::Unknown)?;
    if *version != CHECKSUM_RECORD_VERSION {
        return Err(ChecksumRecordError::Unknown);
    }
    let (parts, digest) = match (*kind, rest) {
        (KIND_FULL_OBJECT, digest) => (None, digest),
        (KIND_COMPOSITE, [a, b, digest @ ..]) => {
            let parts = u16::from_be_bytes([*a, *b]);
            if parts == 0 || parts > PARTS_MAX {
                return Err(ChecksumRecordError::Unknown);
            }
            (Some(parts), digest)
        }
        _ => return Err(ChecksumRecordError::Unknown),
    };
    let digest = Checksum::from_bytes(algorithm, digest).ok_or(ChecksumRecordError::Unknown)?;
    Ok(StoredChecksum {
        algorithm,
        digest,
        parts,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header as header;
    use crate::s3::checksum::checksum;

    fn header_and_keys() -> (Header, DataKeys) {
        (header(0), DataKeys::from_bytes([5; 32], [6; 32]))
    }

    fn other_header_and_keys() -> (Header, DataKeys) {
        (header(0), DataKeys::from_bytes([5; 32], [7; 32]))
    }

    #[test]
    fn every_algorithm_round_trips_and_hides_the_digest() {
        let (header, keys) = header_and_keys();
        let c = cipher(&header, &keys).unwrap();
        for a in ChecksumAlgorithm::ALL {
            let d = checksum(a, b"Hello world");
            for parts in [None, Some(1), Some(10_000)] {
                let stored = StoredChecksum {
                    algorithm: a,
                    digest: d,
                    parts,
                };
                let value = seal(&c, &stored).unwrap();
                assert!(value.len() <= VALUE_LEN_MAX);
                assert!(!value.contains(&d.to_base64()), "{a}: the digest shows");
                let raw = B64.decode(&value).unwrap();
                assert!(!raw.windows(4).any(|w| w == &d.as_bytes()[..4]), "{a}");
                assert_eq!(open(&c, &value).unwrap(), stored);
            }
            let composite = StoredChecksum {
                algorithm: a,
                digest: d,
                parts: Some(3),
            };
            assert_eq!(composite.value(), format!("{}-3", d.to_base64()));
            assert_eq!(composite.type_name(), "COMPOSITE");
            let bad = StoredChecksum {
                parts: Some(0),
                ..composite
            };
            assert!(seal(&c, &bad).is_err());
        }
    }

    #[test]
    fn an_altered_or_moved_record_is_refused() {
        let (header, keys) = header_and_keys();
        let c = cipher(&header, &keys).unwrap();
        let d = StoredChecksum::full_object(
            ChecksumAlgorithm::Sha256,
            checksum(ChecksumAlgorithm::Sha256, b"x"),
        );
        let value = seal(&c, &d).unwrap();
        let mut raw = B64.decode(&value).unwrap();
        raw[5] ^= 1;
        assert_eq!(
            open(&c, &B64.encode(&raw)),
            Err(ChecksumRecordError::Rejected)
        );
        // Another object's keys.
        let (h2, k2) = other_header_and_keys();
        let c2 = cipher(&h2, &k2).unwrap();
        assert_eq!(open(&c2, &value), Err(ChecksumRecordError::Rejected));
        // The object's body keys are not the record's.
        let body = SegmentCipher::new(&header, &keys, 0).unwrap();
        assert!(seal(&body, &d).is_err());
        assert_eq!(open(&body, &value), Err(ChecksumRecordError::Malformed));
        // What earlier versions wrote in the clear is not a record.
        assert_eq!(
            open(&c, "CRC32:i9aeUg=="),
            Err(ChecksumRecordError::Malformed)
        );
        assert_eq!(
            open(&c, &"A".repeat(VALUE_LEN_MAX + 1)),
            Err(ChecksumRecordError::Malformed)
        );
    }

    /// Version 2 multipart objects: salted, a fresh salt per sealing, opened only as their
    /// own kind, by their own object; single-part objects keep the unsalted record.
    #[test]
    fn multipart_objects_of_version_2_have_salted_records() {
        let keys = DataKeys::from_bytes([5; 32], [6; 32]);
        let multipart = header(9);
        assert!(is_salted(&multipart));
        assert!(!is_salted(&header(0)));
        assert!(!is_salted(&crate::envelope::header::test_header_v1(9)));
        let d = StoredChecksum {
            algorithm: ChecksumAlgorithm::Crc32c,
            digest: checksum(ChecksumAlgorithm::Crc32c, b"x"),
            parts: Some(3),
        };
        let a = seal_for(&multipart, &keys, &d).unwrap();
        let b = seal_for(&multipart, &keys, &d).unwrap();
        assert_ne!(a, b, "fresh salt");
        assert!(a.len() <= VALUE_LEN_MAX);
        assert_eq!(open_for(&multipart, &keys, &a).unwrap(), d);
        let raw = B64.decode(&a).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            let r = open_for(&multipart, &keys, &B64.encode(&bad));
            assert_eq!(r, Err(ChecksumRecordError::Rejected), "byte {i}");
        }
        assert!(open_for(&header(8), &keys, &a).is_err());
        // The unsalted record of the same checksum does not open as salted, nor the reverse.
        let unsalted = seal(&cipher(&multipart, &keys).unwrap(), &d).unwrap();
        assert!(open_for(&multipart, &keys, &unsalted).is_err());
        let single = header(0);
        let s = seal_for(&single, &keys, &d).unwrap();
        assert_eq!(open(&cipher(&single, &keys).unwrap(), &s).unwrap(), d);
        assert_eq!(open_for(&single, &keys, &s).unwrap(), d);
    }

    #[test]
    fn a_digest_of_the_wrong_length_is_not_sealed() {
        let (header, keys) = header_and_keys();
        let c = cipher(&header, &keys).unwrap();
        let crc = checksum(ChecksumAlgorithm::Crc32, b"x");
        let wrong = StoredChecksum::full_object(ChecksumAlgorithm::Sha1, crc);
        assert!(seal(&c, &wrong).is_err());
        assert!(seal_base64(&c, ChecksumAlgorithm::Crc32, "not base64!").is_none());
        assert!(seal_base64(&c, ChecksumAlgorithm::Crc32, &crc.to_base64()).is_some());
    }
}
