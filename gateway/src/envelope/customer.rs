//! Customer-provided keys (SSE-C): a client's own 256-bit key, bound into both data-key
//! wraps of an object so that opening it needs both custodians *and* that key. The key is
//! never stored: the data key of each layer is wrapped under
//! `HKDF-SHA256(ikm = bucket key ‖ customer key, info = "twofold/v2 customer key" ‖ layer id)`
//! (each layer's own HKDF implementation) instead of under the bucket key, and the layer
//! blocks say so (docs/format.md, *Customer-provided keys*). A wrong key fails the data-key
//! wrap's tag, before anything is decrypted.

use super::aead::{KEY_LEN_BYTES, Layer};
use super::{Error, kdf};
use zeroize::Zeroizing;

/// Length of a customer-provided key (SSE-C's AES256).
pub const CUSTOMER_KEY_LEN_BYTES: usize = 32;

/// HKDF info prefix of a customer wrap key (followed by the layer id).
const WRAP_INFO: &[u8] = b"twofold/v2 customer key";

/// A customer-provided key, zeroised on drop and never printed.
#[derive(Clone)]
pub struct CustomerKey(Zeroizing<[u8; CUSTOMER_KEY_LEN_BYTES]>);

impl CustomerKey {
    /// The key from its bytes.
    pub fn new(bytes: &[u8; CUSTOMER_KEY_LEN_BYTES]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8; CUSTOMER_KEY_LEN_BYTES] {
        &self.0
    }
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(..)")
    }
}

/// The key that wraps `layer`'s data key of an object bound to `customer`, from that
/// layer's bucket key.
pub fn wrap_key(
    layer: Layer,
    bucket_key: &[u8; KEY_LEN_BYTES],
    customer: &CustomerKey,
) -> Result<Zeroizing<[u8; KEY_LEN_BYTES]>, Error> {
    let mut ikm = Zeroizing::new([0u8; KEY_LEN_BYTES + CUSTOMER_KEY_LEN_BYTES]);
    ikm[..KEY_LEN_BYTES].copy_from_slice(bucket_key);
    ikm[KEY_LEN_BYTES..].copy_from_slice(customer.bytes());
    let mut info = WRAP_INFO.to_vec();
    info.push(layer.id());
    kdf::derive_key(layer, ikm.as_ref(), &info).map_err(|_| Error::Internal("HKDF"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrap_key_depends_on_the_bucket_key_the_customer_key_and_the_layer() {
        let (a, b) = (CustomerKey::new(&[1; 32]), CustomerKey::new(&[2; 32]));
        let k = |layer, bk: u8, c: &CustomerKey| *wrap_key(layer, &[bk; 32], c).unwrap();
        let base = k(Layer::Inner, 9, &a);
        assert_eq!(base, k(Layer::Inner, 9, &a));
        assert_ne!(base, k(Layer::Inner, 9, &b));
        assert_ne!(base, k(Layer::Inner, 8, &a));
        assert_ne!(base, k(Layer::Outer, 9, &a));
        assert_ne!(base, [9; 32]);
        // Both layers' HKDF agree on the same input (they are the same function).
        let mut info = WRAP_INFO.to_vec();
        info.push(Layer::Inner.id());
        let mut ikm = [9u8; 64];
        ikm[32..].copy_from_slice(&[1; 32]);
        assert_eq!(*kdf::derive_key(Layer::Outer, &ikm, &info).unwrap(), base);
        assert!(!format!("{a:?}").contains('1'));
    }
}
