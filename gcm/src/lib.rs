//! AES-256-GCM for Twofold's inner layer, at the speed of the CPU's widest instructions.
//!
//! RustCrypto's `aes-gcm` runs AES on VAES where the CPU has it, but its GHASH (`polyval`)
//! multiplies one 128-bit lane at a time, and its counter mode and GHASH are separate
//! passes through generic code: on an AVX-512 CPU the layer runs at a quarter of AWS-LC's
//! speed on the same core (docs/adr/0008-crypto-speed.md).
//!
//! - On a CPU with AES-NI, VAES, PCLMULQDQ, VPCLMULQDQ and AVX-512 F/BW (detected at run
//!   time), [`Aes256Gcm`] is this crate's own AES-256-GCM (NIST SP 800-38D, 96-bit IVs) on
//!   those instructions: sixteen blocks per step in 512-bit registers, counter mode and
//!   GHASH in one pass when sealing (`wide.rs`).
//! - Anywhere else, or when built with `--cfg aes_backend="soft"` or
//!   `--cfg polyval_backend="soft"`, it is RustCrypto's `aes_gcm::Aes256Gcm` unchanged,
//!   which picks AES-NI, VAES or constant-time software AES, and PCLMULQDQ or software
//!   GHASH, at run time.
//!
//! Both give the same bytes and tags: the tests check the wide path against `aes-gcm` on
//! random keys, nonces, data and lengths, and both against the GCM specification's
//! vectors (and, through the gateway's `InnerAead`, NIST's and Wycheproof's). Opening
//! checks the tag before it decrypts, so a failed open leaves the ciphertext in place and
//! releases no plaintext. The crate shares no code with AWS-LC, which is the other layer.

mod wide;

use aes_gcm::aead::{AeadInOut, KeyInit};
use zeroize::Zeroize;

/// Length in bytes of an AES-256 key.
pub const KEY_LEN_BYTES: usize = 32;
/// Length in bytes of the nonces this crate takes (GCM's 96-bit IV).
pub const NONCE_LEN_BYTES: usize = 12;
/// Length in bytes of a tag.
pub const TAG_LEN_BYTES: usize = 16;
/// GCM's limit on a plaintext: 2^32 - 2 blocks (SP 800-38D, 5.2.1.1).
pub const PLAINTEXT_MAX_BYTES: u64 = ((1u64 << 32) - 2) * 16;
/// GCM's limit on associated data: 2^61 - 1 bytes (2^64 - 1 bits).
pub const AAD_MAX_BYTES: u64 = (1u64 << 61) - 1;

/// A tag did not verify, or an input was over GCM's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error;

/// The code path a cipher takes on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// This crate's AES-256-GCM on VAES and VPCLMULQDQ, 512-bit registers.
    Avx512,
    /// RustCrypto's `aes-gcm` (its own AES-NI/VAES/software and PCLMULQDQ/software choices).
    RustCrypto,
}

impl Path {
    /// The path [`Aes256Gcm::new`] takes on this CPU, in this build.
    pub fn detected() -> Self {
        if wide::Wide::available() {
            Path::Avx512
        } else {
            Path::RustCrypto
        }
    }

    /// A line for reports: what computes AES on this path.
    pub const fn aes(self) -> &'static str {
        match self {
            Path::Avx512 => "VAES, 512-bit, 16 blocks per step (twofold-gcm)",
            Path::RustCrypto => "the `aes` crate (RustCrypto aes-gcm)",
        }
    }

    /// A line for reports: what computes GHASH on this path.
    pub const fn ghash(self) -> &'static str {
        match self {
            Path::Avx512 => "VPCLMULQDQ, 512-bit, 16 blocks per reduction (twofold-gcm)",
            Path::RustCrypto => "polyval (RustCrypto aes-gcm)",
        }
    }
}

/// AES-256-GCM with 96-bit nonces and 128-bit tags.
pub struct Aes256Gcm {
    imp: Imp,
}

#[expect(
    clippy::large_enum_variant,
    reason = "one cipher per object or record, on the stack; a box would cost an allocation"
)]
enum Imp {
    Wide(wide::Wide),
    RustCrypto(aes_gcm::Aes256Gcm),
}

impl std::fmt::Debug for Aes256Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Aes256Gcm({:?}, key hidden)", self.path())
    }
}

impl Aes256Gcm {
    /// The cipher for `key`, on the widest path this CPU has. Round keys and GHASH key
    /// powers are zeroised when it is dropped.
    pub fn new(key: &[u8; KEY_LEN_BYTES]) -> Self {
        match Path::detected() {
            Path::Avx512 => Self::wide(key).unwrap_or_else(|| Self::rustcrypto(key)),
            Path::RustCrypto => Self::rustcrypto(key),
        }
    }

    /// The cipher on RustCrypto's `aes-gcm` whatever the CPU: for tests and benchmarks
    /// that compare the two paths on one machine.
    pub fn rustcrypto(key: &[u8; KEY_LEN_BYTES]) -> Self {
        Self {
            imp: Imp::RustCrypto(aes_gcm::Aes256Gcm::new(key.into())),
        }
    }

    /// The cipher on the VAES/VPCLMULQDQ path, or `None` where the CPU lacks it.
    pub fn wide(key: &[u8; KEY_LEN_BYTES]) -> Option<Self> {
        Some(Self {
            imp: Imp::Wide(wide::Wide::new(key)?),
        })
    }

    /// The path this cipher takes.
    pub fn path(&self) -> Path {
        match self.imp {
            Imp::Wide(_) => Path::Avx512,
            Imp::RustCrypto(_) => Path::RustCrypto,
        }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN_BYTES],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN_BYTES], Error> {
        check_lengths(aad, buf)?;
        match &self.imp {
            Imp::RustCrypto(c) => c
                .encrypt_inout_detached(&(*nonce).into(), aad, buf.into())
                .map(Into::into)
                .map_err(|_| Error),
            Imp::Wide(w) => Ok(w.seal(nonce, aad, buf)),
        }
    }

    /// Verifies `tag` over `buf` and only then decrypts `buf` in place. On failure `buf`
    /// still holds the ciphertext.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN_BYTES],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN_BYTES],
    ) -> Result<(), Error> {
        check_lengths(aad, buf)?;
        match &self.imp {
            Imp::RustCrypto(c) => c
                .decrypt_inout_detached(&(*nonce).into(), aad, buf.into(), &(*tag).into())
                .map_err(|_| Error),
            Imp::Wide(w) => {
                let mut expected = w.tag(nonce, aad, buf);
                let equal = ctutils::CtEq::ct_eq(&expected[..], &tag[..]);
                expected.zeroize();
                if bool::from(equal) {
                    w.apply_keystream(nonce, buf);
                    Ok(())
                } else {
                    Err(Error)
                }
            }
        }
    }
}

fn check_lengths(aad: &[u8], buf: &[u8]) -> Result<(), Error> {
    if buf.len() as u64 > PLAINTEXT_MAX_BYTES || aad.len() as u64 > AAD_MAX_BYTES {
        return Err(Error);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
