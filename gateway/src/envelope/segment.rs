//! Sealing and opening single segments of one part under both layers.
//!
//! For part number `p` of an object with header `h`, for each layer `L` with data key `DK_L`:
//!
//! ```text
//! K_L ‖ prefix_L = HKDF-SHA256(DK_L, salt "twofold/v1",
//!                              info "twofold/v1 segment" ‖ L ‖ upload id ‖ BE32(p))   (32 + 7 bytes)
//! nonce_L(i, last) = prefix_L ‖ BE32(i) ‖ (last ? 0x01 : 0x00)
//! aad_L = h.fixed_bytes ‖ L ‖ BE32(p)
//! seal(i, last, m):  c ‖ t = GCM_inner(K_inner, nonce_inner(i, last), aad_inner, m)
//!                    d ‖ u = GCM_outer(K_outer, nonce_outer(i, last), aad_outer, c ‖ t)
//!                    stored segment = d ‖ u           (|m| + 32 bytes)
//! ```
//!
//! A salted part (format version 2: every part of a multipart upload, see
//! [`PART_SALT_LEN_BYTES`](super::layout::PART_SALT_LEN_BYTES)) derives its keys with the
//! part's own 16-byte salt `s`, fresh for every upload of the part:
//!
//! ```text
//! K_L ‖ prefix_L = HKDF-SHA256(DK_L, salt "twofold/v1",
//!                              info "twofold/v2 part" ‖ L ‖ upload id ‖ BE32(p) ‖ s)
//! ```
//!
//! and is sealed and opened as above.
//!
//! Opening checks the outer tag, then the inner tag, and only then is the buffer plaintext.

use super::aead::{InnerAead, Layer, NONCE_LEN_BYTES, OuterAead, TAG_LEN_BYTES};
use super::header::Header;
use super::layout::{SEGMENT_OVERHEAD_BYTES, SEGMENTS_PER_PART_MAX, SegmentSize};
use super::{DataKeys, Error, kdf};
use zeroize::Zeroizing;

const PREFIX_LEN_BYTES: usize = 7;
const AAD_LEN_BYTES: usize = super::header::FIXED_LEN_BYTES + 1 + 4;
const OVERHEAD: usize = SEGMENT_OVERHEAD_BYTES as usize;

/// What a layer did with the bytes it reports to the [`ByteCounter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crypted {
    /// Sealed (encrypted and tagged).
    Sealed,
    /// Opened (tag verified, then decrypted).
    Opened,
}

/// Told the number of bytes each layer sealed or opened, segment by segment (records
/// included). The envelope knows nothing of metrics: the gateway's telemetry installs one
/// with [`set_byte_counter`] when it starts; until then, and in the command-line tools,
/// nothing is counted.
pub type ByteCounter = fn(Crypted, Layer, usize);

static BYTE_COUNTER: std::sync::OnceLock<ByteCounter> = std::sync::OnceLock::new();

/// Installs the process's [`ByteCounter`]. Only the first call takes effect; returns
/// whether this one did.
pub fn set_byte_counter(counter: ByteCounter) -> bool {
    BYTE_COUNTER.set(counter).is_ok()
}

fn count(what: Crypted, layer: Layer, bytes: usize) {
    if let Some(counter) = BYTE_COUNTER.get() {
        counter(what, layer, bytes);
    }
}

/// Both layers' ciphers for one part, ready to seal or open its segments.
#[derive(Debug)]
pub struct SegmentCipher {
    inner: InnerAead,
    outer: OuterAead,
    inner_prefix: [u8; PREFIX_LEN_BYTES],
    outer_prefix: [u8; PREFIX_LEN_BYTES],
    inner_aad: [u8; AAD_LEN_BYTES],
    outer_aad: [u8; AAD_LEN_BYTES],
    segment_size: SegmentSize,
    part: u32,
}

/// One layer's derived segment key, nonce prefix and segment AAD for one part.
struct LayerMaterial {
    key: Zeroizing<[u8; 32]>,
    prefix: [u8; PREFIX_LEN_BYTES],
    aad: [u8; AAD_LEN_BYTES],
}

/// A part's salt: the first bytes of its stored body, in its key derivation.
pub type PartSalt = [u8; super::layout::PART_SALT_LEN_BYTES as usize];

/// A fresh salt for one upload of a part: the XOR of both layers' generators, so that it is
/// unpredictable while either of them is.
pub fn fresh_part_salt() -> Result<PartSalt, Error> {
    let inner: PartSalt = super::random_bytes(Layer::Inner)?;
    let outer: PartSalt = super::random_bytes(Layer::Outer)?;
    Ok(std::array::from_fn(|i| inner[i] ^ outer[i]))
}

fn layer_material(
    header: &Header,
    keys: &DataKeys,
    layer: Layer,
    part: u32,
    salt: Option<&PartSalt>,
) -> Result<LayerMaterial, Error> {
    let mut info = Vec::with_capacity(64);
    info.extend_from_slice(match salt {
        None => b"twofold/v1 segment".as_slice(),
        Some(_) => b"twofold/v2 part".as_slice(),
    });
    info.push(layer.id());
    info.extend_from_slice(&header.upload_id);
    info.extend_from_slice(&part.to_be_bytes());
    if let Some(salt) = salt {
        info.extend_from_slice(salt);
    }
    let mut okm = Zeroizing::new([0u8; 32 + PREFIX_LEN_BYTES]);
    kdf::derive(layer, keys.key(layer), &info, okm.as_mut())
        .map_err(|_| Error::Internal("HKDF"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm[..32]);
    let mut prefix = [0u8; PREFIX_LEN_BYTES];
    prefix.copy_from_slice(&okm[32..]);
    let mut aad = [0u8; AAD_LEN_BYTES];
    aad[..super::header::FIXED_LEN_BYTES].copy_from_slice(&header.fixed_bytes());
    aad[super::header::FIXED_LEN_BYTES] = layer.id();
    aad[super::header::FIXED_LEN_BYTES + 1..].copy_from_slice(&part.to_be_bytes());
    Ok(LayerMaterial { key, prefix, aad })
}

fn nonce(prefix: &[u8; PREFIX_LEN_BYTES], index: u32, last: bool) -> [u8; NONCE_LEN_BYTES] {
    let mut n = [0u8; NONCE_LEN_BYTES];
    n[..PREFIX_LEN_BYTES].copy_from_slice(prefix);
    n[PREFIX_LEN_BYTES..PREFIX_LEN_BYTES + 4].copy_from_slice(&index.to_be_bytes());
    n[NONCE_LEN_BYTES - 1] = u8::from(last);
    n
}

impl SegmentCipher {
    /// Derives the part's segment keys from the object's data keys.
    /// `part` is 0 for a single-part object, else the S3 part number (1..=10000).
    pub fn new(header: &Header, keys: &DataKeys, part: u32) -> Result<Self, Error> {
        Self::derive(header, keys, part, None)
    }

    /// Derives the keys of part `part` (1..=10000) stored after its salt `salt`.
    pub fn new_salted(
        header: &Header,
        keys: &DataKeys,
        part: u32,
        salt: &PartSalt,
    ) -> Result<Self, Error> {
        Self::derive(header, keys, part, Some(salt))
    }

    fn derive(
        header: &Header,
        keys: &DataKeys,
        part: u32,
        salt: Option<&PartSalt>,
    ) -> Result<Self, Error> {
        let inner = layer_material(header, keys, Layer::Inner, part, salt)?;
        let outer = layer_material(header, keys, Layer::Outer, part, salt)?;
        Ok(Self {
            inner: InnerAead::new(&inner.key),
            outer: OuterAead::new(&outer.key).map_err(|_| Error::Internal("AWS-LC key"))?,
            inner_prefix: inner.prefix,
            outer_prefix: outer.prefix,
            inner_aad: inner.aad,
            outer_aad: outer.aad,
            segment_size: header.segment_size,
            part,
        })
    }

    /// The object's segment size.
    pub fn segment_size(&self) -> SegmentSize {
        self.segment_size
    }

    /// The part number these keys belong to.
    pub fn part(&self) -> u32 {
        self.part
    }

    fn index32(index: u64) -> Result<u32, Error> {
        if index >= SEGMENTS_PER_PART_MAX {
            return Err(Error::TooManySegments);
        }
        u32::try_from(index).map_err(|_| Error::TooManySegments)
    }

    /// Seals segment `index` in place. `buf[..plain_len]` holds the plaintext and `buf` must
    /// have room for the 32 bytes of tags after it; returns the stored length.
    pub fn seal(
        &self,
        index: u64,
        last: bool,
        buf: &mut [u8],
        plain_len: usize,
    ) -> Result<usize, Error> {
        let stored = plain_len + OVERHEAD;
        if plain_len > self.segment_size.bytes_usize() || buf.len() < stored {
            return Err(Error::Internal("segment buffer of the wrong size"));
        }
        if plain_len == 0 && index != 0 {
            return Err(Error::Internal(
                "only the sole segment of a part may be empty",
            ));
        }
        let i = Self::index32(index)?;
        let (inner_part, rest) = buf[..stored].split_at_mut(plain_len);
        let inner_tag = self
            .inner
            .seal_in_place(
                &nonce(&self.inner_prefix, i, last),
                &self.inner_aad,
                inner_part,
            )
            .map_err(|_| Error::Internal("inner seal"))?;
        rest[..TAG_LEN_BYTES].copy_from_slice(&inner_tag);
        let outer_len = plain_len + TAG_LEN_BYTES;
        let outer_tag = self
            .outer
            .seal_in_place(
                &nonce(&self.outer_prefix, i, last),
                &self.outer_aad,
                &mut buf[..outer_len],
            )
            .map_err(|_| Error::Internal("outer seal"))?;
        buf[outer_len..stored].copy_from_slice(&outer_tag);
        count(Crypted::Sealed, Layer::Inner, plain_len);
        count(Crypted::Sealed, Layer::Outer, outer_len);
        Ok(stored)
    }

    /// Opens stored segment `index` (the whole of `buf`) in place and returns the plaintext
    /// length; the plaintext is `buf[..len]`. On any error `buf` holds no usable plaintext
    /// and must be discarded.
    pub fn open(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<usize, Error> {
        let part = self.part;
        if buf.len() < OVERHEAD {
            return Err(Error::Framing {
                part,
                reason: "segment shorter than its two tags",
            });
        }
        if buf.len() > self.segment_size.bytes_usize() + OVERHEAD {
            return Err(Error::Framing {
                part,
                reason: "segment longer than the segment size",
            });
        }
        let i = Self::index32(index)?;
        let rejected = |layer| Error::SegmentRejected {
            layer,
            part,
            segment: index,
        };
        let inner_len = self
            .outer
            .open_in_place(&nonce(&self.outer_prefix, i, last), &self.outer_aad, buf)
            .map_err(|_| rejected(Layer::Outer))?;
        let plain_len = inner_len - TAG_LEN_BYTES;
        let (body, tag) = buf[..inner_len].split_at_mut(plain_len);
        let mut inner_tag = [0u8; TAG_LEN_BYTES];
        inner_tag.copy_from_slice(tag);
        self.inner
            .open_in_place(
                &nonce(&self.inner_prefix, i, last),
                &self.inner_aad,
                body,
                &inner_tag,
            )
            .map_err(|_| rejected(Layer::Inner))?;
        count(Crypted::Opened, Layer::Outer, inner_len);
        count(Crypted::Opened, Layer::Inner, plain_len);
        Ok(plain_len)
    }

    /// Opens stored segment `index` (all of `input`) into `out`, leaving `input` untouched,
    /// so that a reader that does not know whether a segment ends its part can try one
    /// flag and then the other. Returns the plaintext length (`out[..len]`); on error `out`
    /// holds nothing usable.
    pub fn open_to(
        &self,
        index: u64,
        last: bool,
        input: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let part = self.part;
        if input.len() < OVERHEAD || input.len() > self.segment_size.bytes_usize() + OVERHEAD {
            return Err(Error::Framing {
                part,
                reason: "segment length out of range",
            });
        }
        let inner_len = input.len() - TAG_LEN_BYTES;
        if out.len() < inner_len {
            return Err(Error::Internal("output buffer too small"));
        }
        let i = Self::index32(index)?;
        let rejected = |layer| Error::SegmentRejected {
            layer,
            part,
            segment: index,
        };
        let mut outer_tag = [0u8; TAG_LEN_BYTES];
        outer_tag.copy_from_slice(&input[inner_len..]);
        self.outer
            .open_to(
                &nonce(&self.outer_prefix, i, last),
                &self.outer_aad,
                &input[..inner_len],
                &outer_tag,
                &mut out[..inner_len],
            )
            .map_err(|_| rejected(Layer::Outer))?;
        let plain_len = inner_len - TAG_LEN_BYTES;
        let (body, tag) = out[..inner_len].split_at_mut(plain_len);
        let mut inner_tag = [0u8; TAG_LEN_BYTES];
        inner_tag.copy_from_slice(tag);
        self.inner
            .open_in_place(
                &nonce(&self.inner_prefix, i, last),
                &self.inner_aad,
                body,
                &inner_tag,
            )
            .map_err(|_| rejected(Layer::Inner))?;
        count(Crypted::Opened, Layer::Outer, inner_len);
        count(Crypted::Opened, Layer::Inner, plain_len);
        Ok(plain_len)
    }

    /// Opens the final segment of a part, telling a cut-off part ([`Error::Truncated`]) from
    /// an altered one: if the segment does not open as final but does open as non-final,
    /// the segments that followed it were removed.
    pub fn open_final(&self, index: u64, buf: &mut [u8]) -> Result<usize, Error> {
        let mut copy = Zeroizing::new(buf.to_vec());
        match self.open(index, true, buf) {
            Ok(n) => Ok(n),
            Err(e @ Error::SegmentRejected { .. }) => {
                if self.open(index, false, copy.as_mut()).is_ok() {
                    Err(Error::Truncated {
                        part: self.part,
                        segment: index,
                    })
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::envelope::header::test_header;

    /// One part number, two uploads of it: each salt gives other keys and nonces, so the
    /// same plaintext seals differently and neither opens under the other's salt (nor
    /// under the unsalted keys).
    #[test]
    fn every_salt_gives_its_part_other_keys() {
        let header = test_header(16);
        let keys = DataKeys::from_bytes([1; 32], [2; 32]);
        let (a, b) = (fresh_part_salt().unwrap(), fresh_part_salt().unwrap());
        assert_ne!(a, b);
        let seal = |c: &SegmentCipher| {
            let mut buf = vec![0u8; 100 + OVERHEAD];
            let n = c.seal(0, true, &mut buf, 100).unwrap();
            buf.truncate(n);
            buf
        };
        let ca = SegmentCipher::new_salted(&header, &keys, 3, &a).unwrap();
        let cb = SegmentCipher::new_salted(&header, &keys, 3, &b).unwrap();
        let plain = SegmentCipher::new(&header, &keys, 3).unwrap();
        let (sa, sb) = (seal(&ca), seal(&cb));
        assert_ne!(sa, sb);
        assert_ne!(sa, seal(&plain));
        let mut out = vec![0u8; 100 + OVERHEAD];
        assert_eq!(ca.open_to(0, true, &sa, &mut out).unwrap(), 100);
        assert!(cb.open_to(0, true, &sa, &mut out).is_err());
        assert!(plain.open_to(0, true, &sa, &mut out).is_err());
        let other_part = SegmentCipher::new_salted(&header, &keys, 4, &a).unwrap();
        assert!(other_part.open_to(0, true, &sa, &mut out).is_err());
    }
}
