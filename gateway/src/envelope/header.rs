//! The envelope header: what an object's S3 metadata records so that any gateway (or the
//! break-glass CLI) holding the two custodians' keys can open it. Byte layout
//! (`docs/format.md` § Header is the same text):
//!
//! ```text
//! offset  len  field
//! 0       4    magic "TWOF"
//! 4       1    format version: 2 (written), or 1 (read)
//! 5       1    segment size, log2 (12..=24)
//! 6       1    flags: bit 0 = multipart; other bits must be 0
//! 7       16   upload id (random per multipart upload; all zero for a single-part object)
//! 23      ..   layer block, inner layer (id 1)
//! ..      ..   layer block, outer layer (id 2)
//! end of input: nothing may follow
//!
//! layer block:
//! 1       layer id (1 inner, 2 outer)
//! 1       k = length of the key-encryption-key id (1..=64)
//! k       KEK id: printable ASCII name of the custodian's key behind the bucket key
//!         version 2: the bucket key is derived (see `envelope::hierarchy`)
//! 4       epoch of the epoch key
//! 16      bucket-key salt
//!         version 1: the bucket key is random and wrapped by the custodian
//! 1       w = length of the wrapped bucket key (16..=64)
//! w       wrapped bucket key (AES key wrap with padding, RFC 5649, under the KEK)
//!         both versions:
//! 12      data-key nonce
//! 32      wrapped data key: AES-256-GCM ciphertext of the layer's data key
//! 16      wrapped data key tag
//! 32      key commitment of the layer's data key
//! ```

use super::aead::{KEY_LEN_BYTES, Layer, NONCE_LEN_BYTES, TAG_LEN_BYTES};
use super::layout::SegmentSize;

/// The four bytes every header starts with.
pub const MAGIC: [u8; 4] = *b"TWOF";
/// The format version this code writes: bucket keys derived from epoch keys.
pub const FORMAT_VERSION: u8 = 2;
/// The earlier format version, still read: bucket keys wrapped by the custodian.
pub const FORMAT_VERSION_WRAPPED: u8 = 1;
/// Length of a version-2 bucket-key salt.
pub const BUCKET_KEY_SALT_LEN_BYTES: usize = 16;
/// Length of the fixed part of the header, before the layer blocks.
pub const FIXED_LEN_BYTES: usize = 23;
/// Length of an upload id.
pub const UPLOAD_ID_LEN_BYTES: usize = 16;
/// Length of a key commitment.
pub const COMMITMENT_LEN_BYTES: usize = 32;
/// Longest KEK id.
pub const KEK_ID_LEN_MAX: usize = 64;
/// Shortest and longest wrapped bucket key accepted.
pub const WRAPPED_BUCKET_KEY_LEN_MIN: usize = 16;
/// See [`WRAPPED_BUCKET_KEY_LEN_MIN`].
pub const WRAPPED_BUCKET_KEY_LEN_MAX: usize = 64;
/// Longest header this code produces or accepts.
pub const HEADER_LEN_MAX: usize =
    FIXED_LEN_BYTES + 2 * (3 + KEK_ID_LEN_MAX + WRAPPED_BUCKET_KEY_LEN_MAX + LAYER_TAIL_LEN_BYTES);
const _: () = assert!(4 + BUCKET_KEY_SALT_LEN_BYTES <= 1 + WRAPPED_BUCKET_KEY_LEN_MAX);
const LAYER_TAIL_LEN_BYTES: usize =
    NONCE_LEN_BYTES + KEY_LEN_BYTES + TAG_LEN_BYTES + COMMITMENT_LEN_BYTES;
const FLAG_MULTIPART: u8 = 0x01;
/// Bit of a version 2 layer block's layer id: its data key is wrapped under a key derived
/// from the bucket key and a customer-provided key (SSE-C, [`super::customer`]).
const LAYER_CUSTOMER_KEY: u8 = 0x40;

/// Why a header could not be parsed. Parsing checks structure only; the keys inside are
/// checked when they are unwrapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The first four bytes are not "TWOF": not a Twofold header.
    #[error("not a Twofold envelope header (bad magic)")]
    BadMagic,
    /// A version this code does not know.
    #[error("envelope format version {found} is not supported (this build reads versions 1 and 2)")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// Structurally invalid.
    #[error("envelope header is malformed: {reason}")]
    Malformed {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
}

/// How a layer block names its bucket key; the kind is the header's format version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketKeyRef {
    /// Version 2: derived from the epoch key of (KEK, bucket, `epoch`) and `salt`.
    Derived {
        /// The epoch whose epoch key the bucket key comes from.
        epoch: u32,
        /// Random per bucket, layer, window and core.
        salt: [u8; BUCKET_KEY_SALT_LEN_BYTES],
    },
    /// Version 1: a random bucket key, wrapped by the custodian (RFC 5649).
    Wrapped(Vec<u8>),
}

impl BucketKeyRef {
    /// The format version that names bucket keys this way.
    pub fn version(&self) -> u8 {
        match self {
            BucketKeyRef::Derived { .. } => FORMAT_VERSION,
            BucketKeyRef::Wrapped(_) => FORMAT_VERSION_WRAPPED,
        }
    }

    /// The bytes the header holds for it (after the KEK id).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            BucketKeyRef::Derived { epoch, salt } => {
                out.extend_from_slice(&epoch.to_be_bytes());
                out.extend_from_slice(salt);
            }
            BucketKeyRef::Wrapped(wrapped) => {
                // Bounded by the constructors and by `parse`; saturate defensively.
                out.push(u8::try_from(wrapped.len()).unwrap_or(u8::MAX));
                out.extend_from_slice(wrapped);
            }
        }
    }

    /// Whether its fields are within the bounds `parse` enforces.
    pub fn is_well_formed(&self) -> bool {
        match self {
            BucketKeyRef::Derived { .. } => true,
            BucketKeyRef::Wrapped(w) => {
                (WRAPPED_BUCKET_KEY_LEN_MIN..=WRAPPED_BUCKET_KEY_LEN_MAX).contains(&w.len())
            }
        }
    }
}

/// One layer's part of the header.
#[derive(Clone, PartialEq, Eq)]
pub struct LayerBlock {
    /// Which layer.
    pub layer: Layer,
    /// Name of the key-encryption key, within the layer's custodian, behind the bucket key.
    pub kek_id: String,
    /// Which bucket key wraps the data key.
    pub bucket_key: BucketKeyRef,
    /// Nonce of the data-key wrap.
    pub dek_nonce: [u8; NONCE_LEN_BYTES],
    /// The data key encrypted under the bucket key.
    pub wrapped_dek: [u8; KEY_LEN_BYTES],
    /// Tag of the data-key wrap.
    pub wrapped_dek_tag: [u8; TAG_LEN_BYTES],
    /// Commitment to the data key, checked before any segment is opened.
    pub commitment: [u8; COMMITMENT_LEN_BYTES],
    /// Whether the data key is wrapped under a key derived from the bucket key and the
    /// object's customer-provided key (SSE-C): the same in both blocks of a header.
    pub customer_key: bool,
}

impl std::fmt::Debug for LayerBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Wrapped keys are not secret, but there is no reason to spray them into logs.
        f.debug_struct("LayerBlock")
            .field("layer", &self.layer)
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// A parsed (or about to be written) envelope header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Segment size of every part of the object.
    pub segment_size: SegmentSize,
    /// Set for objects built by multipart upload.
    pub multipart: bool,
    /// Random per multipart upload; zero for single-part objects.
    pub upload_id: [u8; UPLOAD_ID_LEN_BYTES],
    /// Inner layer block.
    pub inner: LayerBlock,
    /// Outer layer block.
    pub outer: LayerBlock,
}

impl Header {
    /// Whether the object's data keys are bound to a customer-provided key (SSE-C).
    pub fn customer_key(&self) -> bool {
        self.inner.customer_key
    }

    /// The block of `layer`.
    pub fn layer(&self, layer: Layer) -> &LayerBlock {
        match layer {
            Layer::Inner => &self.inner,
            Layer::Outer => &self.outer,
        }
    }

    /// The format version: that of its layer blocks' bucket keys (the same for both
    /// blocks of a parsed header; a header being built with mixed kinds is refused when
    /// it is sealed).
    pub fn version(&self) -> u8 {
        self.inner.bucket_key.version()
    }

    /// The fixed 23 bytes that open the header.
    pub fn fixed_bytes(&self) -> [u8; FIXED_LEN_BYTES] {
        let mut out = [0u8; FIXED_LEN_BYTES];
        out[..4].copy_from_slice(&MAGIC);
        out[4] = self.version();
        out[5] = self.segment_size.log2();
        out[6] = if self.multipart { FLAG_MULTIPART } else { 0 };
        out[7..].copy_from_slice(&self.upload_id);
        out
    }

    /// Serialises the header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN_MAX);
        out.extend_from_slice(&self.fixed_bytes());
        for block in [&self.inner, &self.outer] {
            block.write_identity(&mut out);
            out.extend_from_slice(&block.dek_nonce);
            out.extend_from_slice(&block.wrapped_dek);
            out.extend_from_slice(&block.wrapped_dek_tag);
            out.extend_from_slice(&block.commitment);
        }
        out
    }

    /// Parses and structurally checks a header. Every length is checked before use;
    /// trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, HeaderError> {
        let mut r = Reader { bytes, pos: 0 };
        if r.take(4)? != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = r.u8()?;
        if version != FORMAT_VERSION && version != FORMAT_VERSION_WRAPPED {
            return Err(HeaderError::UnsupportedVersion { found: version });
        }
        let segment_size = SegmentSize::from_log2(r.u8()?).map_err(|_| HeaderError::Malformed {
            reason: "segment size out of range",
        })?;
        let flags = r.u8()?;
        if flags & !FLAG_MULTIPART != 0 {
            return Err(HeaderError::Malformed {
                reason: "unknown flag bits set",
            });
        }
        let multipart = flags & FLAG_MULTIPART != 0;
        let upload_id: [u8; UPLOAD_ID_LEN_BYTES] = r.array()?;
        if !multipart && upload_id != [0u8; UPLOAD_ID_LEN_BYTES] {
            return Err(HeaderError::Malformed {
                reason: "upload id set on a single-part object",
            });
        }
        let inner = LayerBlock::parse(&mut r, Layer::Inner, version)?;
        let outer = LayerBlock::parse(&mut r, Layer::Outer, version)?;
        if r.pos != bytes.len() {
            return Err(HeaderError::Malformed {
                reason: "trailing bytes after the outer layer block",
            });
        }
        if inner.customer_key != outer.customer_key {
            return Err(HeaderError::Malformed {
                reason: "the layer blocks disagree about a customer key",
            });
        }
        Ok(Header {
            segment_size,
            multipart,
            upload_id,
            inner,
            outer,
        })
    }
}

impl LayerBlock {
    /// Appends layer id, KEK id and the bucket key's reference: the part of the block that
    /// the data-key wrap authenticates.
    pub fn write_identity(&self, out: &mut Vec<u8>) {
        out.push(match self.customer_key {
            true => self.layer.id() | LAYER_CUSTOMER_KEY,
            false => self.layer.id(),
        });
        // Lengths are bounded by the constructors and by `parse`; saturate defensively.
        out.push(u8::try_from(self.kek_id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.kek_id.as_bytes());
        self.bucket_key.write(out);
    }

    fn parse(r: &mut Reader<'_>, expected: Layer, version: u8) -> Result<Self, HeaderError> {
        let id = r.u8()?;
        if id & !LAYER_CUSTOMER_KEY != expected.id() {
            return Err(HeaderError::Malformed {
                reason: "layer blocks missing or out of order",
            });
        }
        let customer_key = id & LAYER_CUSTOMER_KEY != 0;
        if customer_key && version != FORMAT_VERSION {
            return Err(HeaderError::Malformed {
                reason: "a customer key in a version 1 header",
            });
        }
        let k = usize::from(r.u8()?);
        if !(1..=KEK_ID_LEN_MAX).contains(&k) {
            return Err(HeaderError::Malformed {
                reason: "KEK id length out of range",
            });
        }
        let kek_id = r.take(k)?;
        if !kek_id.iter().all(|b| b.is_ascii_graphic()) {
            return Err(HeaderError::Malformed {
                reason: "KEK id is not printable ASCII",
            });
        }
        let kek_id = String::from_utf8_lossy(kek_id).into_owned();
        let bucket_key = if version == FORMAT_VERSION_WRAPPED {
            let w = usize::from(r.u8()?);
            if !(WRAPPED_BUCKET_KEY_LEN_MIN..=WRAPPED_BUCKET_KEY_LEN_MAX).contains(&w) {
                return Err(HeaderError::Malformed {
                    reason: "wrapped bucket key length out of range",
                });
            }
            BucketKeyRef::Wrapped(r.take(w)?.to_vec())
        } else {
            BucketKeyRef::Derived {
                epoch: u32::from_be_bytes(r.array()?),
                salt: r.array()?,
            }
        };
        Ok(LayerBlock {
            layer: expected,
            kek_id,
            bucket_key,
            dek_nonce: r.array()?,
            wrapped_dek: r.array()?,
            wrapped_dek_tag: r.array()?,
            commitment: r.array()?,
            customer_key,
        })
    }
}

/// Is `id` acceptable as a KEK id (1..=64 printable ASCII bytes)?
pub fn kek_id_is_valid(id: &str) -> bool {
    (1..=KEK_ID_LEN_MAX).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HeaderError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(HeaderError::Malformed {
                reason: "truncated",
            }),
        }
    }

    fn u8(&mut self) -> Result<u8, HeaderError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], HeaderError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// A header with fixed, made-up key blocks, for tests of what is sealed under a header:
/// a multipart one with every byte of its upload id `upload`, or (`upload` = 0) a
/// single-part one.
#[cfg(test)]
pub(crate) fn test_header(upload: u8) -> Header {
    let block = |layer| LayerBlock {
        layer,
        kek_id: format!("kek-{layer}"),
        bucket_key: BucketKeyRef::Derived {
            epoch: 7,
            salt: [7; BUCKET_KEY_SALT_LEN_BYTES],
        },
        dek_nonce: [1; 12],
        wrapped_dek: [2; 32],
        wrapped_dek_tag: [3; 16],
        commitment: [4; 32],
        customer_key: false,
    };
    Header {
        segment_size: SegmentSize::DEFAULT,
        multipart: upload != 0,
        upload_id: [upload; 16],
        inner: block(Layer::Inner),
        outer: block(Layer::Outer),
    }
}

/// [`test_header`] of format version 1: bucket keys wrapped by the custodians.
#[cfg(test)]
pub(crate) fn test_header_v1(upload: u8) -> Header {
    let mut h = test_header(upload);
    for block in [&mut h.inner, &mut h.outer] {
        block.bucket_key = BucketKeyRef::Wrapped(vec![8; 40]);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        test_header(0)
    }

    fn sample_v1() -> Header {
        let mut h = sample();
        h.inner.bucket_key = BucketKeyRef::Wrapped(vec![7; 40]);
        h.outer.bucket_key = BucketKeyRef::Wrapped(vec![8; 40]);
        h
    }

    #[test]
    fn round_trip() {
        for h in [sample(), sample_v1()] {
            let bytes = h.to_bytes();
            assert!(bytes.len() <= HEADER_LEN_MAX);
            assert_eq!(bytes[4], h.version());
            assert_eq!(Header::parse(&bytes), Ok(h));
        }
        assert_eq!(sample().version(), 2);
        assert_eq!(sample_v1().version(), 1);
    }

    #[test]
    fn a_customer_key_is_a_bit_of_both_layer_ids_in_version_2_only() {
        let mut h = sample();
        h.inner.customer_key = true;
        h.outer.customer_key = true;
        let bytes = h.to_bytes();
        let parsed = Header::parse(&bytes).unwrap();
        assert!(parsed.customer_key());
        assert_eq!(parsed, h);
        assert_eq!(
            bytes[FIXED_LEN_BYTES],
            Layer::Inner.id() | LAYER_CUSTOMER_KEY
        );
        // The bit changes the identity the data-key wrap authenticates.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        h.inner.write_identity(&mut a);
        sample().inner.write_identity(&mut b);
        assert_ne!(a, b);
        // One block with it and one without: malformed.
        let mut half = sample();
        half.outer.customer_key = true;
        assert!(matches!(
            Header::parse(&half.to_bytes()),
            Err(HeaderError::Malformed { .. })
        ));
        // Version 1 has no customer keys.
        let mut v1 = sample_v1();
        v1.inner.customer_key = true;
        v1.outer.customer_key = true;
        assert!(matches!(
            Header::parse(&v1.to_bytes()),
            Err(HeaderError::Malformed { .. })
        ));
    }

    #[test]
    fn every_truncation_is_rejected() {
        for h in [sample(), sample_v1()] {
            let bytes = h.to_bytes();
            for n in 0..bytes.len() {
                assert!(Header::parse(&bytes[..n]).is_err(), "prefix of {n} bytes");
            }
        }
    }

    /// A version byte flipped between 1 and 2 reads the blocks the other way, which never
    /// parses to the whole input: the lengths differ (20 bytes against 1 + 40).
    #[test]
    fn a_header_read_as_the_other_version_is_refused() {
        let mut v2 = sample().to_bytes();
        v2[4] = 1;
        assert!(Header::parse(&v2).is_err());
        let mut v1 = sample_v1().to_bytes();
        v1[4] = 2;
        assert!(Header::parse(&v1).is_err());
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = sample().to_bytes();
        bytes.push(0);
        assert!(matches!(
            Header::parse(&bytes),
            Err(HeaderError::Malformed { .. })
        ));
    }

    #[test]
    fn unknown_version_is_named() {
        let mut bytes = sample().to_bytes();
        bytes[4] = 3;
        assert_eq!(
            Header::parse(&bytes),
            Err(HeaderError::UnsupportedVersion { found: 3 })
        );
        bytes[0] = b'X';
        assert_eq!(Header::parse(&bytes), Err(HeaderError::BadMagic));
    }

    #[test]
    fn unknown_flags_and_stray_upload_id_are_rejected() {
        let mut bytes = sample().to_bytes();
        bytes[6] = 0x02;
        assert!(Header::parse(&bytes).is_err());
        let mut bytes = sample().to_bytes();
        bytes[10] = 1;
        assert!(Header::parse(&bytes).is_err());
    }
}
