//! The sealed record of an object's describing metadata (`docs/format.md`, *Metadata
//! record*): the client's user metadata (`x-amz-meta-*`) and the headers in
//! [`SEALED_HEADERS`], which would otherwise reach the backend in the clear (a
//! Content-Disposition is often a file name).
//!
//! Plaintext (record version 1):
//!
//! ```text
//! 1     record version = 1
//! 2     n = number of entries, big-endian, 0..=ENTRIES_MAX
//! n ×   BE16(len name) ‖ name ‖ BE16(len value) ‖ value
//!       names: lowercase, one of SEALED_HEADERS or x-amz-meta-* (not x-amz-meta-twofold*),
//!       each at most once, in the order received; values: any bytes
//! ```
//!
//! Sealed, with a random salt per sealing so that no key is ever used twice:
//!
//! ```text
//! K_L   = HKDF-SHA256(DK_L, salt "twofold/v1", info "twofold/v2 metadata" ‖ layer id ‖ salt)
//! aad   = "twofold/v2 metadata" ‖ BE16(len header) ‖ header bytes
//! c ‖ t = AES-256-GCM_inner(K_inner, 0^12, aad, plaintext)
//! d ‖ u = AES-256-GCM_outer(K_outer, 0^12, aad, c ‖ t)
//! value = base64url(salt ‖ d ‖ u), no padding, in user metadata x-amz-meta-twofold-meta
//! ```
//!
//! The header in the authenticated data binds the record to the object (its data keys,
//! name, and the header's own bytes, which every copy re-wraps): a record moved to another
//! object, or to another copy of the same data, does not open.

use super::aead::{Layer, TAG_LEN_BYTES};
use super::header::Header;
use super::salted::{self, SaltedError};
use super::{DataKeys, Error, random_bytes};
use base64::Engine;
use zeroize::Zeroizing;

/// Version of the record's plaintext encoding.
pub const META_RECORD_VERSION: u8 = 1;
/// Headers sealed in the record besides the user metadata (the last: the KMS encryption
/// context the client attached to the object).
pub const SEALED_HEADERS: &[&str] = &[
    "content-type",
    "content-disposition",
    "content-encoding",
    "content-language",
    "cache-control",
    "x-amz-server-side-encryption-context",
];
/// Prefix of user metadata names.
pub const USER_METADATA_PREFIX: &str = "x-amz-meta-";
/// Prefix of the gateway's own metadata, never sealed (it is not the client's).
pub const RESERVED_PREFIX: &str = "x-amz-meta-twofold";
/// The metadata entry that holds an object's sealed metadata record.
pub const HTTP_HEADER: &str = "x-amz-meta-twofold-meta";
/// Most entries in one record.
pub const ENTRIES_MAX: usize = 256;
/// Longest plaintext: far above S3's 2 KiB of user metadata plus the sealed headers.
pub const PLAINTEXT_LEN_MAX: usize = 16 * 1024;
/// Length of the salt.
pub const SALT_LEN_BYTES: usize = salted::SALT_LEN_BYTES;
/// Longest metadata value a reader accepts.
pub const VALUE_LEN_MAX: usize =
    (SALT_LEN_BYTES + PLAINTEXT_LEN_MAX + 2 * TAG_LEN_BYTES).div_ceil(3) * 4;

const LABEL: &[u8] = b"twofold/v2 metadata";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The entries of a record: (lowercase name, value), in order.
pub type Entries = Vec<(String, Vec<u8>)>;

/// Why a metadata record was refused. Every variant but [`MetaRecordError::TooLarge`]
/// means the object's metadata is not what the gateway wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaRecordError {
    /// Not base64url, or shorter than a salt and two tags, or longer than any record.
    #[error("the metadata record is not a sealed record")]
    Malformed,
    /// A tag failed: altered, or another object's.
    #[error("the metadata record failed its integrity check")]
    Rejected,
    /// It opened, but does not decode as a version 1 record.
    #[error("the metadata record has an unknown version or a malformed entry")]
    Unknown,
    /// More entries or bytes than a record may hold (refused when sealing).
    #[error("the object's metadata is too large to seal")]
    TooLarge,
}

/// Whether a request or response header named `name` (lowercase) belongs in the record.
pub fn is_sealed(name: &str) -> bool {
    SEALED_HEADERS.contains(&name)
        || (name.starts_with(USER_METADATA_PREFIX) && !name.starts_with(RESERVED_PREFIX))
}

/// Whether `name` may be an entry's name: sealed, lowercase printable ASCII.
fn name_is_valid(name: &str) -> bool {
    is_sealed(name)
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
}

/// The record's plaintext.
pub fn encode(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>, MetaRecordError> {
    if entries.len() > ENTRIES_MAX {
        return Err(MetaRecordError::TooLarge);
    }
    let mut out = vec![META_RECORD_VERSION];
    out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    for (name, value) in entries {
        if !name_is_valid(name) || name.len() > usize::from(u16::MAX) {
            return Err(MetaRecordError::Unknown);
        }
        let value_len = u16::try_from(value.len()).map_err(|_| MetaRecordError::TooLarge)?;
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&value_len.to_be_bytes());
        out.extend_from_slice(value);
    }
    match out.len() <= PLAINTEXT_LEN_MAX {
        true => Ok(out),
        false => Err(MetaRecordError::TooLarge),
    }
}

/// Decodes a record's plaintext, checking every rule of [`encode`].
pub fn decode(input: &[u8]) -> Result<Entries, MetaRecordError> {
    let mut r = input;
    let mut take = |n: usize| -> Result<&[u8], MetaRecordError> {
        if r.len() < n {
            return Err(MetaRecordError::Unknown);
        }
        let (a, b) = r.split_at(n);
        r = b;
        Ok(a)
    };
    if take(1)? != [META_RECORD_VERSION] {
        return Err(MetaRecordError::Unknown);
    }
    let be16 = |b: &[u8]| usize::from(u16::from_be_bytes([b[0], b[1]]));
    let n = be16(take(2)?);
    if n > ENTRIES_MAX {
        return Err(MetaRecordError::Unknown);
    }
    let mut entries: Entries = Vec::with_capacity(n);
    for _ in 0..n {
        let len = be16(take(2)?);
        let name = std::str::from_utf8(take(len)?).map_err(|_| MetaRecordError::Unknown)?;
        let valid = name_is_valid(name) && !entries.iter().any(|(n, _)| n == name);
        if !valid {
            return Err(MetaRecordError::Unknown);
        }
        let name = name.to_owned();
        let len = be16(take(2)?);
        entries.push((name, take(len)?.to_vec()));
    }
    match r.is_empty() {
        true => Ok(entries),
        false => Err(MetaRecordError::Unknown),
    }
}

/// The metadata value recording `entries` for the object of `header` and `keys`, under a
/// fresh random salt.
pub fn seal(
    header: &Header,
    keys: &DataKeys,
    entries: &[(String, Vec<u8>)],
) -> Result<Result<String, MetaRecordError>, Error> {
    seal_with_salt(header, keys, entries, random_bytes(Layer::Inner)?)
}

/// [`seal`] with the salt given: for the published test vectors only. Never seal two
/// records of one object under one salt.
pub fn seal_with_salt(
    header: &Header,
    keys: &DataKeys,
    entries: &[(String, Vec<u8>)],
    salt: [u8; SALT_LEN_BYTES],
) -> Result<Result<String, MetaRecordError>, Error> {
    let plain = match encode(entries) {
        Ok(p) => Zeroizing::new(p),
        Err(e) => return Ok(Err(e)),
    };
    Ok(Ok(B64.encode(salted::seal(
        LABEL,
        &header.to_bytes(),
        keys,
        &plain,
        salt,
    )?)))
}

/// Opens a metadata value of the object of `header` and `keys`: both tags, then the
/// decoding. Nothing is returned unless both tags verify.
pub fn open(header: &Header, keys: &DataKeys, value: &str) -> Result<Entries, MetaRecordError> {
    let value = value.trim();
    if value.len() > VALUE_LEN_MAX {
        return Err(MetaRecordError::Malformed);
    }
    let raw = B64.decode(value).map_err(|_| MetaRecordError::Malformed)?;
    let plain = salted::open(LABEL, &header.to_bytes(), keys, &raw).map_err(|e| match e {
        SaltedError::Malformed => MetaRecordError::Malformed,
        SaltedError::Rejected => MetaRecordError::Rejected,
    })?;
    decode(&plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header;

    fn entries() -> Entries {
        vec![
            ("content-type".into(), b"text/plain; charset=utf-8".to_vec()),
            ("x-amz-meta-owner".into(), "Zoë".as_bytes().to_vec()),
            (
                "content-disposition".into(),
                b"attachment; filename=\"payroll 2026.xlsx\"".to_vec(),
            ),
            ("x-amz-meta-empty".into(), Vec::new()),
        ]
    }

    fn keys() -> DataKeys {
        DataKeys::from_bytes([1; 32], [2; 32])
    }

    #[test]
    fn a_record_opens_to_exactly_what_was_sealed_and_hides_it() {
        let h = test_header(0);
        let v = seal(&h, &keys(), &entries()).unwrap().unwrap();
        assert!(!v.contains("payroll") && !v.contains("text"));
        assert_eq!(open(&h, &keys(), &v), Ok(entries()));
        // Two sealings of the same entries differ (fresh salt).
        assert_ne!(v, seal(&h, &keys(), &entries()).unwrap().unwrap());
        assert_eq!(
            open(&h, &keys(), &seal(&h, &keys(), &[]).unwrap().unwrap()),
            Ok(vec![])
        );
    }

    #[test]
    fn another_objects_header_or_keys_or_any_altered_byte_is_rejected() {
        let h = test_header(0);
        let v = seal(&h, &keys(), &entries()).unwrap().unwrap();
        assert_eq!(
            open(&test_header(3), &keys(), &v),
            Err(MetaRecordError::Rejected)
        );
        let mut rewrapped = h.clone();
        rewrapped.outer.dek_nonce[0] ^= 1;
        assert_eq!(
            open(&rewrapped, &keys(), &v),
            Err(MetaRecordError::Rejected)
        );
        let other = DataKeys::from_bytes([1; 32], [3; 32]);
        assert_eq!(open(&h, &other, &v), Err(MetaRecordError::Rejected));
        let raw = B64.decode(&v).unwrap();
        for i in [0, 15, 16, raw.len() / 2, raw.len() - 1] {
            let mut bad = raw.clone();
            bad[i] ^= 0x20;
            let r = open(&h, &keys(), &B64.encode(&bad));
            assert_eq!(r, Err(MetaRecordError::Rejected), "byte {i}");
        }
        assert!(open(&h, &keys(), &v[..v.len() - 4]).is_err());
        assert_eq!(open(&h, &keys(), "!!"), Err(MetaRecordError::Malformed));
        assert_eq!(open(&h, &keys(), "AAAA"), Err(MetaRecordError::Malformed));
    }

    #[test]
    fn only_describing_headers_and_user_metadata_are_sealed_and_decoded() {
        for bad in [
            "x-amz-meta-twofold",
            "etag",
            "expires",
            "Content-Type",
            "x-amz-meta-A",
        ] {
            let e = vec![(bad.to_owned(), b"v".to_vec())];
            assert_eq!(encode(&e), Err(MetaRecordError::Unknown), "{bad}");
        }
        let plain = encode(&entries()).unwrap();
        assert_eq!(decode(&plain), Ok(entries()));
        for n in 0..plain.len() {
            assert!(decode(&plain[..n]).is_err(), "prefix {n}");
        }
        let mut trailing = plain.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(MetaRecordError::Unknown));
        let twice = vec![
            ("x-amz-meta-a".to_owned(), b"1".to_vec()),
            ("x-amz-meta-a".to_owned(), b"2".to_vec()),
        ];
        assert_eq!(
            decode(&encode(&twice).unwrap()),
            Err(MetaRecordError::Unknown)
        );
        let big = vec![("x-amz-meta-a".to_owned(), vec![b'x'; PLAINTEXT_LEN_MAX])];
        assert_eq!(encode(&big), Err(MetaRecordError::TooLarge));
    }
}
