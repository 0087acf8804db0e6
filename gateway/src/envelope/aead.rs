//! The two AES-256-GCM implementations, one per layer, behind one small interface.
//!
//! The inner layer is `twofold-gcm`: its own AES-GCM on VAES and VPCLMULQDQ where the CPU
//! has them, RustCrypto's `aes-gcm` everywhere else (picked at run time); the outer layer
//! is AWS-LC through `aws-lc-rs`. They share no
//! code, no key and no nonce: a flaw in one implementation leaves the other layer standing.

/// Length in bytes of an AES-256 key.
pub const KEY_LEN_BYTES: usize = 32;
/// Length in bytes of a GCM nonce as used by Twofold.
pub const NONCE_LEN_BYTES: usize = 12;
/// Length in bytes of a GCM authentication tag.
pub const TAG_LEN_BYTES: usize = 16;

/// A tag or key check failed; the AEAD implementations say no more than that, on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadFailure;

/// Which of the two layers a key or a segment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The layer applied first on write and removed last on read (`twofold-gcm`).
    Inner,
    /// The layer applied last on write and removed first on read (AWS-LC).
    Outer,
}

impl Layer {
    /// The byte that stands for the layer in the format (`docs/format.md`).
    pub const fn id(self) -> u8 {
        match self {
            Layer::Inner => 1,
            Layer::Outer => 2,
        }
    }

    /// Lower-case name, as used in configuration, metrics and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Inner => "inner",
            Layer::Outer => "outer",
        }
    }

    /// Both layers in write order.
    pub const ALL: [Layer; 2] = [Layer::Inner, Layer::Outer];
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Inner layer: AES-256-GCM from `twofold-gcm`.
pub struct InnerAead {
    cipher: twofold_gcm::Aes256Gcm,
}

impl std::fmt::Debug for InnerAead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InnerAead({:?}, key hidden)", self.cipher.path())
    }
}

impl InnerAead {
    /// Builds the cipher for `key`, on the widest path the CPU has. The round keys and
    /// GHASH key are zeroised when dropped.
    pub fn new(key: &[u8; KEY_LEN_BYTES]) -> Self {
        Self {
            cipher: twofold_gcm::Aes256Gcm::new(key),
        }
    }

    /// The cipher on RustCrypto's `aes-gcm` whatever the CPU, for comparing the paths.
    pub fn rustcrypto(key: &[u8; KEY_LEN_BYTES]) -> Self {
        Self {
            cipher: twofold_gcm::Aes256Gcm::rustcrypto(key),
        }
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN_BYTES],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN_BYTES], AeadFailure> {
        self.cipher
            .seal_in_place(nonce, aad, buf)
            .map_err(|_| AeadFailure)
    }

    /// Verifies `tag` over `buf` and decrypts it in place. On failure `buf` holds no
    /// plaintext: the tag is checked before anything is decrypted.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN_BYTES],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN_BYTES],
    ) -> Result<(), AeadFailure> {
        self.cipher
            .open_in_place(nonce, aad, buf, tag)
            .map_err(|_| AeadFailure)
    }
}

/// Outer layer: AES-256-GCM from AWS-LC.
pub struct OuterAead {
    key: aws_lc_rs::aead::LessSafeKey,
}

impl std::fmt::Debug for OuterAead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OuterAead(AWS-LC, key hidden)")
    }
}

impl OuterAead {
    /// Builds the cipher for `key` (AWS-LC keeps and cleanses its own key schedule).
    pub fn new(key: &[u8; KEY_LEN_BYTES]) -> Result<Self, AeadFailure> {
        let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, key)
            .map_err(|_| AeadFailure)?;
        Ok(Self {
            key: aws_lc_rs::aead::LessSafeKey::new(unbound),
        })
    }

    /// Encrypts `buf` in place and returns the tag.
    pub fn seal_in_place(
        &self,
        nonce: &[u8; NONCE_LEN_BYTES],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN_BYTES], AeadFailure> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                aws_lc_rs::aead::Aad::from(aad),
                buf,
            )
            .map_err(|_| AeadFailure)?;
        let mut out = [0u8; TAG_LEN_BYTES];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Verifies `tag` over `input` and decrypts it into `out` (same length as `input`),
    /// leaving `input` untouched: a failed attempt can be retried with another nonce.
    pub fn open_to(
        &self,
        nonce: &[u8; NONCE_LEN_BYTES],
        aad: &[u8],
        input: &[u8],
        tag: &[u8; TAG_LEN_BYTES],
        out: &mut [u8],
    ) -> Result<(), AeadFailure> {
        if out.len() != input.len() {
            return Err(AeadFailure);
        }
        self.key
            .open_separate_gather(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                aws_lc_rs::aead::Aad::from(aad),
                input,
                tag,
                out,
            )
            .map_err(|_| AeadFailure)
    }

    /// Verifies and decrypts `buf` = ciphertext ‖ tag in place; returns the plaintext length.
    /// On failure AWS-LC has zeroed no-longer-trusted output; the caller must not use `buf`.
    pub fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN_BYTES],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, AeadFailure> {
        let plain = self
            .key
            .open_in_place(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                aws_lc_rs::aead::Aad::from(aad),
                buf,
            )
            .map_err(|_| AeadFailure)?;
        Ok(plain.len())
    }
}
