//! Records sealed under an object's data keys with a fresh random salt per sealing
//! (`docs/format.md`, *Salted records*): the metadata record and, in format version 2,
//! the layout record. A record that may be sealed more than once for the same data keys
//! with different contents (a multipart upload completed twice, metadata replaced by a
//! copy that keeps the keys) must be sealed this way, so that no key and nonce ever seal
//! two different plaintexts.
//!
//! ```text
//! K_L   = HKDF-SHA256(DK_L, salt "twofold/v1", info label ‖ layer id ‖ salt)
//! aad   = label ‖ BE16(len context) ‖ context
//! c ‖ t = AES-256-GCM_inner(K_inner, 0^12, aad, plaintext)
//! d ‖ u = AES-256-GCM_outer(K_outer, 0^12, aad, c ‖ t)
//! raw   = salt ‖ d ‖ u
//! ```
//!
//! The label names the kind of record, so a record of one kind never opens as another.
//! The context binds the record to the object beyond its data keys: the metadata record
//! takes the whole header (its name and the header's own bytes, which every copy
//! re-wraps, so a copy must seal its own), the layout record only the header's fixed
//! bytes (a copy has the same parts and keeps it).

use super::aead::{InnerAead, KEY_LEN_BYTES, Layer, NONCE_LEN_BYTES, OuterAead, TAG_LEN_BYTES};
use super::{DataKeys, Error, kdf};
use zeroize::Zeroizing;

/// Length of the salt that opens a salted record.
pub const SALT_LEN_BYTES: usize = 16;
/// Bytes a sealed record adds to its plaintext: the salt and one tag per layer.
pub const OVERHEAD_BYTES: usize = SALT_LEN_BYTES + 2 * TAG_LEN_BYTES;

const NONCE: [u8; NONCE_LEN_BYTES] = [0; NONCE_LEN_BYTES];

/// Why a salted record did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaltedError {
    /// Shorter than a salt and two tags.
    #[error("too short to be a sealed record")]
    Malformed,
    /// A tag failed: altered, another kind of record, or another object's.
    #[error("the record failed its integrity check")]
    Rejected,
}

fn record_key(
    label: &[u8],
    layer: Layer,
    keys: &DataKeys,
    salt: &[u8; SALT_LEN_BYTES],
) -> Result<Zeroizing<[u8; KEY_LEN_BYTES]>, Error> {
    let mut info = label.to_vec();
    info.push(layer.id());
    info.extend_from_slice(salt);
    kdf::derive_key(layer, keys.key(layer), &info).map_err(|_| Error::Internal("HKDF"))
}

fn aad(label: &[u8], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(label.len() + 2 + context.len());
    aad.extend_from_slice(label);
    // Contexts are headers or parts of them: at most HEADER_LEN_MAX (a few hundred bytes).
    aad.extend_from_slice(
        &u16::try_from(context.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    aad.extend_from_slice(context);
    aad
}

/// Seals `plain` as a record of kind `label` for the object of `context` and `keys`, under
/// `salt`, which must be fresh and random for every sealing (a fixed one is for the
/// published test vectors only). Returns `salt ‖ d ‖ u`.
pub fn seal(
    label: &[u8],
    context: &[u8],
    keys: &DataKeys,
    plain: &[u8],
    salt: [u8; SALT_LEN_BYTES],
) -> Result<Vec<u8>, Error> {
    let aad = aad(label, context);
    let mut buf = Zeroizing::new(Vec::with_capacity(plain.len() + 2 * TAG_LEN_BYTES));
    buf.extend_from_slice(plain);
    let inner = InnerAead::new(&*record_key(label, Layer::Inner, keys, &salt)?)
        .seal_in_place(&NONCE, &aad, &mut buf)
        .map_err(|_| Error::Internal("salted record seal"))?;
    buf.extend_from_slice(&inner);
    let outer = OuterAead::new(&*record_key(label, Layer::Outer, keys, &salt)?)
        .and_then(|c| c.seal_in_place(&NONCE, &aad, &mut buf))
        .map_err(|_| Error::Internal("salted record seal"))?;
    let mut out = Vec::with_capacity(OVERHEAD_BYTES + plain.len());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&buf);
    out.extend_from_slice(&outer);
    Ok(out)
}

/// Opens `raw` (`salt ‖ d ‖ u`) as a record of kind `label` of the object of `context` and
/// `keys`: the outer tag, then the inner. Nothing is returned unless both verify.
pub fn open(
    label: &[u8],
    context: &[u8],
    keys: &DataKeys,
    raw: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SaltedError> {
    if raw.len() < OVERHEAD_BYTES {
        return Err(SaltedError::Malformed);
    }
    let (salt, sealed) = raw.split_at(SALT_LEN_BYTES);
    let salt: [u8; SALT_LEN_BYTES] = salt.try_into().map_err(|_| SaltedError::Malformed)?;
    let aad = aad(label, context);
    let mut buf = Zeroizing::new(sealed.to_vec());
    let key = |layer| record_key(label, layer, keys, &salt).map_err(|_| SaltedError::Rejected);
    let outer = OuterAead::new(&*key(Layer::Outer)?).map_err(|_| SaltedError::Rejected)?;
    outer
        .open_in_place(&NONCE, &aad, &mut buf)
        .map_err(|_| SaltedError::Rejected)?;
    // The outer layer's plaintext is the inner ciphertext and tag; its own tag follows.
    let opened = buf.len() - TAG_LEN_BYTES;
    buf.truncate(opened);
    let inner_len = opened - TAG_LEN_BYTES;
    let (body, tag) = buf.split_at_mut(inner_len);
    let tag: [u8; TAG_LEN_BYTES] = (&*tag).try_into().map_err(|_| SaltedError::Rejected)?;
    InnerAead::new(&*key(Layer::Inner)?)
        .open_in_place(&NONCE, &aad, body, &tag)
        .map_err(|_| SaltedError::Rejected)?;
    buf.truncate(inner_len);
    Ok(buf)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header;

    fn keys() -> DataKeys {
        DataKeys::from_bytes([1; 32], [2; 32])
    }

    #[test]
    fn a_record_opens_only_as_its_own_kind_for_its_own_object() {
        let h = test_header(0).to_bytes();
        let h3 = test_header(3).to_bytes();
        let raw = seal(b"kind a", &h, &keys(), b"plain", [9; SALT_LEN_BYTES]).unwrap();
        assert_eq!(raw.len(), OVERHEAD_BYTES + 5);
        assert_eq!(&*open(b"kind a", &h, &keys(), &raw).unwrap(), b"plain");
        assert_eq!(
            open(b"kind b", &h, &keys(), &raw),
            Err(SaltedError::Rejected)
        );
        assert_eq!(
            open(b"kind a", &h3, &keys(), &raw),
            Err(SaltedError::Rejected)
        );
        let other = DataKeys::from_bytes([1; 32], [3; 32]);
        assert_eq!(
            open(b"kind a", &h, &other, &raw),
            Err(SaltedError::Rejected)
        );
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            assert_eq!(
                open(b"kind a", &h, &keys(), &bad),
                Err(SaltedError::Rejected)
            );
        }
        assert_eq!(
            open(b"kind a", &h, &keys(), &raw[..OVERHEAD_BYTES - 1]),
            Err(SaltedError::Malformed)
        );
        let empty = seal(b"kind a", &h, &keys(), b"", [9; SALT_LEN_BYTES]).unwrap();
        assert!(open(b"kind a", &h, &keys(), &empty).unwrap().is_empty());
    }

    /// Sealing the same plaintext under two salts gives two records with nothing in
    /// common past the salt: different keys, so no nonce is reused.
    #[test]
    fn two_salts_two_keys() {
        let h = test_header(0).to_bytes();
        let a = seal(b"k", &h, &keys(), &[0; 64], [1; SALT_LEN_BYTES]).unwrap();
        let b = seal(b"k", &h, &keys(), &[0; 64], [2; SALT_LEN_BYTES]).unwrap();
        assert!(
            a[SALT_LEN_BYTES..]
                .iter()
                .zip(&b[SALT_LEN_BYTES..])
                .filter(|(x, y)| x == y)
                .count()
                < 8
        );
    }
}
