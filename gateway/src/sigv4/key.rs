//! Secret access keys, the derived SigV4 signing key, and the hashing and hex helpers the
//! rest of the module shares. All HMAC and SHA-256 work goes through AWS-LC.

use aws_lc_rs::{constant_time, digest, hmac};
use std::fmt;
use zeroize::Zeroizing;

/// Lower-case hex of SHA-256 of the empty string.
pub(crate) const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Length of a SHA-256 digest.
pub(crate) const SHA256_LEN_BYTES: usize = 32;
/// Length of a SHA-256 digest or HMAC-SHA256 tag in hex.
pub(crate) const SHA256_HEX_LEN_BYTES: usize = 64;

/// A secret access key. Zeroised when dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret access key.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The key itself, for the signing-key derivation.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The SigV4 signing key of one day, region and service:
/// `HMAC(HMAC(HMAC(HMAC("AWS4" || secret, date), region), service), "aws4_request")`.
/// Held as a prepared AWS-LC HMAC key (whose state AWS-LC cleanses when dropped; the
/// intermediate keys are zeroised), so each chunk signature costs no key setup. `Debug`
/// never shows it.
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl SigningKey {
    /// Derives the key for `date` (`YYYYMMDD`), `region` and `service`.
    pub fn derive(secret: &Secret, date: &str, region: &str, service: &str) -> Self {
        let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.expose().len()));
        k_secret.extend_from_slice(b"AWS4");
        k_secret.extend_from_slice(secret.expose().as_bytes());
        let k_date = Zeroizing::new(hmac_sha256(&k_secret, &[date.as_bytes()]));
        let k_region = Zeroizing::new(hmac_sha256(k_date.as_slice(), &[region.as_bytes()]));
        let k_service = Zeroizing::new(hmac_sha256(k_region.as_slice(), &[service.as_bytes()]));
        let k_signing = Zeroizing::new(hmac_sha256(k_service.as_slice(), &[b"aws4_request"]));
        Self(hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_slice()))
    }

    /// HMAC-SHA256 of the concatenation of `parts` under this key.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> [u8; SHA256_LEN_BYTES] {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(part);
        }
        let mut out = [0_u8; SHA256_LEN_BYTES];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// The lower-case hex signature of a string to sign.
    pub fn sign(&self, string_to_sign: &[u8]) -> String {
        hex_string(&self.tag(&[string_to_sign]))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// HMAC-SHA256 of the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; SHA256_LEN_BYTES] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0_u8; SHA256_LEN_BYTES];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; SHA256_LEN_BYTES] {
    let mut out = [0_u8; SHA256_LEN_BYTES];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// Lower-case hex of a 32-byte value, without allocating.
pub(crate) fn hex32(bytes: &[u8; SHA256_LEN_BYTES]) -> [u8; SHA256_HEX_LEN_BYTES] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0_u8; SHA256_HEX_LEN_BYTES];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

/// Lower-case hex of a 32-byte value.
pub(crate) fn hex_string(bytes: &[u8; SHA256_LEN_BYTES]) -> String {
    hex32(bytes).iter().map(|&b| char::from(b)).collect()
}

/// 64 hex digits (either case) as 32 bytes.
pub(crate) fn parse_hex32(s: &[u8]) -> Option<[u8; SHA256_LEN_BYTES]> {
    if s.len() != SHA256_HEX_LEN_BYTES {
        return None;
    }
    let mut out = [0_u8; SHA256_LEN_BYTES];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Equality of two byte strings in time independent of their contents (not of their lengths).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_hidden() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_eq!(format!("{s:?}"), "Secret(..)");
        let k = SigningKey::derive(&s, "20130524", "us-east-1", "s3");
        assert_eq!(format!("{k:?}"), "SigningKey(..)");
    }

    #[test]
    fn hex_helpers_agree() {
        let h = sha256(b"");
        assert_eq!(hex_string(&h), EMPTY_SHA256_HEX);
        assert_eq!(parse_hex32(EMPTY_SHA256_HEX.as_bytes()), Some(h));
        assert_eq!(
            parse_hex32(EMPTY_SHA256_HEX.to_uppercase().as_bytes()),
            Some(h)
        );
        assert_eq!(parse_hex32(b"zz"), None);
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
