//! HKDF-SHA256, once per layer, each from that layer's own code base: RustCrypto `hkdf` +
//! `sha2` for the inner layer, AWS-LC for the outer one. Used to derive per-part segment
//! keys, nonce prefixes and key commitments from a layer's data key, and (format v2) epoch
//! and bucket keys.

use super::aead::{KEY_LEN_BYTES, Layer};
use zeroize::Zeroizing;

/// The HKDF salt of format v1.
pub const SALT: &[u8] = b"twofold/v1";

/// Fills `out` with HKDF-SHA256(ikm = `key`, salt = [`SALT`], info = `info`), computed by
/// the implementation that belongs to `layer`.
/// Fails only for outputs longer than 255·32 bytes, which Twofold never asks for; the
/// error is still passed on rather than leaving `out` unfilled.
pub fn derive(layer: Layer, key: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), KdfFailure> {
    match layer {
        Layer::Inner => {
            let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(SALT), key);
            hk.expand(info, out).map_err(|_| KdfFailure)
        }
        Layer::Outer => {
            struct Len(usize);
            impl aws_lc_rs::hkdf::KeyType for Len {
                fn len(&self) -> usize {
                    self.0
                }
            }
            let prk = aws_lc_rs::hkdf::Salt::new(aws_lc_rs::hkdf::HKDF_SHA256, SALT).extract(key);
            let info = [info];
            prk.expand(&info, Len(out.len()))
                .and_then(|okm| okm.fill(out))
                .map_err(|_| KdfFailure)
        }
    }
}

/// HKDF refused the request (an output length out of range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfFailure;

/// A derived 32-byte secret that is zeroised on drop.
pub fn derive_key(
    layer: Layer,
    key: &[u8],
    info: &[u8],
) -> Result<Zeroizing<[u8; KEY_LEN_BYTES]>, KdfFailure> {
    let mut out = Zeroizing::new([0u8; KEY_LEN_BYTES]);
    derive(layer, key, info, out.as_mut())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two independent code bases, one answer (RFC 5869 itself is checked below).
    #[test]
    fn both_layers_compute_the_same_hkdf() {
        let key = [0x0b; 32];
        let mut a = [0u8; 39];
        let mut b = [0u8; 39];
        derive(Layer::Inner, &key, b"info", &mut a).unwrap();
        derive(Layer::Outer, &key, b"info", &mut b).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, [0u8; 39]);
    }

    /// RFC 5869 A.1 (salt 0x000102..0c) through the RustCrypto path with our API shape.
    #[test]
    fn rfc5869_case_1() {
        let ikm = [0x0b; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &ikm);
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
