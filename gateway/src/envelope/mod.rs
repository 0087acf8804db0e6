//! The dual-layer envelope: the stored format of an object body, format version 2 (and
//! version 1, still read).
//! `docs/format.md` is the specification; this module implements it and the two say the
//! same thing (change them in one commit, with `tests/vectors/`).
//!
//! Summary. Each object has two random 256-bit data keys, one per layer. Each data key is
//! wrapped (AES-256-GCM, by that layer's implementation) under the layer's bucket key,
//! with the object's bucket and key in the authenticated data; each bucket key is derived
//! from an epoch key that the layer's custodian computes under its key-encryption key
//! ([`hierarchy`]; in format v1, wrapped by it). The wrapped keys form the [`header::Header`],
//! stored in the object's metadata. The body is cut into segments; each segment is sealed
//! by the inner layer (RustCrypto) and the result by the outer layer (AWS-LC), with per-part
//! keys derived from the data keys and STREAM nonces (prefix ‖ counter ‖ last flag).

pub mod aead;
pub mod checksum_record;
pub mod customer;
pub mod header;
pub mod hierarchy;
pub mod kdf;
pub mod layout;
pub mod meta_record;
pub mod objmeta;
pub mod plan;
pub mod read;
pub mod record;
pub mod salted;
pub mod segment;
pub mod stream;
pub mod write_plan;

use aead::{InnerAead, KEY_LEN_BYTES, Layer, NONCE_LEN_BYTES, OuterAead};
use header::{
    BucketKeyRef, COMMITMENT_LEN_BYTES, Header, HeaderError, LayerBlock, UPLOAD_ID_LEN_BYTES,
};
use layout::{LayoutError, SegmentSize};
use zeroize::Zeroizing;

pub use segment::{PartSalt, SegmentCipher, fresh_part_salt};

/// Part number used for single-part objects (multipart parts are numbered 1..=10000).
pub const SINGLE_PART_NUMBER: u32 = 0;

/// Everything that can go wrong while sealing or opening; each variant names the layer,
/// part and segment where that is known. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The header does not parse.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A stored length or range that cannot be.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A layer's wrapped data key did not authenticate: wrong bucket key, a tampered
    /// header, or an object moved to another bucket or key.
    #[error(
        "the {layer} layer's data key does not open: the object was altered or moved from another bucket or key, or the bucket key is wrong"
    )]
    DataKeyRejected {
        /// Which layer.
        layer: Layer,
    },
    /// The data key unwrapped but does not match the header's key commitment.
    #[error("the {layer} layer's key commitment does not match its data key")]
    KeyCommitmentMismatch {
        /// Which layer.
        layer: Layer,
    },
    /// A segment's tag did not verify: altered, reordered or spliced ciphertext.
    #[error("segment {segment} of part {part} failed authentication in the {layer} layer")]
    SegmentRejected {
        /// The layer whose tag failed (the outer layer is checked first).
        layer: Layer,
        /// Part number (0 for a single-part object).
        part: u32,
        /// Segment index within the part.
        segment: u64,
    },
    /// The stored body ends before its final segment: segments were cut off the end.
    #[error("part {part} is truncated: it ends after segment {segment} without a final segment")]
    Truncated {
        /// Part number.
        part: u32,
        /// Index of the last segment present.
        segment: u64,
    },
    /// A segment too short to hold the two tags, or bytes after the final segment.
    #[error("part {part} is malformed: {reason}")]
    Framing {
        /// Part number.
        part: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// The object has more segments than a part may have.
    #[error("part has more than 2^32 segments")]
    TooManySegments,
    /// A primitive refused an operation that is valid by construction.
    #[error("internal cryptographic failure: {0}")]
    Internal(&'static str),
}

/// Where an object lives: bound into the data-key wrap, so that ciphertext moved to another
/// name no longer opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectName<'a> {
    /// Bucket name.
    pub bucket: &'a str,
    /// Object key.
    pub key: &'a str,
}

/// A layer's bucket key in the clear, with what a header records to find it again.
pub struct BucketKey {
    /// Which layer it serves.
    pub layer: Layer,
    /// Name of the custodian's KEK behind it.
    pub kek_id: String,
    /// The key itself, in memory kept out of core dumps and swap, zeroised on drop.
    pub key: crate::hardening::LockedKey,
    /// Its epoch and salt (format v2), or the custodian's wrapping of it (format v1).
    pub reference: BucketKeyRef,
}

impl std::fmt::Debug for BucketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketKey")
            .field("layer", &self.layer)
            .field("kek_id", &self.kek_id)
            .finish_non_exhaustive()
    }
}

/// An object's two data keys (zeroised on drop).
pub struct DataKeys {
    inner: Zeroizing<[u8; KEY_LEN_BYTES]>,
    outer: Zeroizing<[u8; KEY_LEN_BYTES]>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeys(<hidden>)")
    }
}

impl DataKeys {
    /// Fresh random keys, each from its own layer's generator: the OS through `getrandom`
    /// for the inner layer, AWS-LC's DRBG for the outer.
    pub fn generate() -> Result<Self, Error> {
        let mut inner = Zeroizing::new([0u8; KEY_LEN_BYTES]);
        let mut outer = Zeroizing::new([0u8; KEY_LEN_BYTES]);
        getrandom::fill(inner.as_mut()).map_err(|_| Error::Internal("OS random source"))?;
        aws_lc_rs::rand::fill(outer.as_mut()).map_err(|_| Error::Internal("AWS-LC DRBG"))?;
        Ok(Self { inner, outer })
    }

    /// Keys given by the caller: for test vectors and benchmarks only.
    pub fn from_bytes(inner: [u8; KEY_LEN_BYTES], outer: [u8; KEY_LEN_BYTES]) -> Self {
        Self {
            inner: Zeroizing::new(inner),
            outer: Zeroizing::new(outer),
        }
    }

    /// The data key of `layer`.
    pub fn key(&self, layer: Layer) -> &[u8; KEY_LEN_BYTES] {
        match layer {
            Layer::Inner => &self.inner,
            Layer::Outer => &self.outer,
        }
    }
}

/// Random bytes from a layer's own generator (see [`DataKeys::generate`]).
pub fn random_bytes<const N: usize>(layer: Layer) -> Result<[u8; N], Error> {
    let mut out = [0u8; N];
    match layer {
        Layer::Inner => getrandom::fill(&mut out).map_err(|_| Error::Internal("OS random source")),
        Layer::Outer => aws_lc_rs::rand::fill(&mut out).map_err(|_| Error::Internal("AWS-LC DRBG")),
    }?;
    Ok(out)
}

/// Key commitment of a layer's data key: HKDF(dk, info = "twofold/v1 commitment" ‖ layer).
pub fn key_commitment(
    layer: Layer,
    data_key: &[u8; KEY_LEN_BYTES],
) -> Result<[u8; COMMITMENT_LEN_BYTES], Error> {
    let mut info = b"twofold/v1 commitment".to_vec();
    info.push(layer.id());
    let mut out = [0u8; COMMITMENT_LEN_BYTES];
    kdf::derive(layer, data_key, &info, &mut out).map_err(|_| Error::Internal("HKDF"))?;
    Ok(out)
}

/// Authenticated data of a layer's data-key wrap: the label, the header's fixed bytes, the
/// layer's identity (id, KEK id, bucket-key reference) and the object's name.
pub fn data_key_aad(fixed: &[u8], block: &LayerBlock, name: ObjectName<'_>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(128 + name.bucket.len() + name.key.len());
    aad.extend_from_slice(b"twofold/v1 data-key");
    aad.extend_from_slice(fixed);
    block.write_identity(&mut aad);
    // Bucket names are at most 63 bytes and S3 keys at most 1024, so these fit; saturate
    // rather than truncate silently if a caller ever passes more.
    aad.extend_from_slice(
        &u16::try_from(name.bucket.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    aad.extend_from_slice(name.bucket.as_bytes());
    aad.extend_from_slice(
        &u32::try_from(name.key.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    aad.extend_from_slice(name.key.as_bytes());
    aad
}

fn wrap_data_key(
    layer: Layer,
    bucket_key: &[u8; KEY_LEN_BYTES],
    nonce: &[u8; NONCE_LEN_BYTES],
    aad: &[u8],
    data_key: &[u8; KEY_LEN_BYTES],
) -> Result<([u8; KEY_LEN_BYTES], [u8; 16]), Error> {
    let mut buf = *data_key;
    let tag = match layer {
        Layer::Inner => InnerAead::new(bucket_key).seal_in_place(nonce, aad, &mut buf),
        Layer::Outer => {
            OuterAead::new(bucket_key).and_then(|c| c.seal_in_place(nonce, aad, &mut buf))
        }
    }
    .map_err(|_| Error::Internal("data-key wrap"))?;
    Ok((buf, tag))
}

fn unwrap_data_key(
    block: &LayerBlock,
    bucket_key: &[u8; KEY_LEN_BYTES],
    aad: &[u8],
) -> Result<Zeroizing<[u8; KEY_LEN_BYTES]>, Error> {
    let layer = block.layer;
    let rejected = Error::DataKeyRejected { layer };
    let mut key = Zeroizing::new(block.wrapped_dek);
    match layer {
        Layer::Inner => InnerAead::new(bucket_key)
            .open_in_place(&block.dek_nonce, aad, key.as_mut(), &block.wrapped_dek_tag)
            .map_err(|_| rejected)?,
        Layer::Outer => {
            let cipher = OuterAead::new(bucket_key).map_err(|_| Error::Internal("AWS-LC key"))?;
            let mut buf = Zeroizing::new([0u8; KEY_LEN_BYTES + 16]);
            buf[..KEY_LEN_BYTES].copy_from_slice(&block.wrapped_dek);
            buf[KEY_LEN_BYTES..].copy_from_slice(&block.wrapped_dek_tag);
            cipher
                .open_in_place(&block.dek_nonce, aad, buf.as_mut())
                .map_err(|_| rejected)?;
            key.copy_from_slice(&buf[..KEY_LEN_BYTES]);
        }
    }
    Ok(key)
}

/// How a new object is to be laid out.
#[derive(Debug, Clone, Copy)]
pub struct SealParams {
    /// Segment size.
    pub segment_size: SegmentSize,
    /// `Some(upload id)` for a multipart upload, `None` for a single-part object.
    pub upload_id: Option<[u8; UPLOAD_ID_LEN_BYTES]>,
    /// Whether the bucket keys passed are customer wrap keys ([`customer::wrap_key`]):
    /// the header says so, and readers need the customer's key.
    pub customer_key: bool,
}

/// Builds the header of a new object: wraps `keys` under the bucket keys, bound to `name`.
pub fn seal_header(
    params: SealParams,
    keys: &DataKeys,
    inner_bk: &BucketKey,
    outer_bk: &BucketKey,
    name: ObjectName<'_>,
) -> Result<Header, Error> {
    if inner_bk.layer != Layer::Inner || outer_bk.layer != Layer::Outer {
        return Err(Error::Internal("bucket keys passed for the wrong layers"));
    }
    let blank = |bk: &BucketKey| LayerBlock {
        layer: bk.layer,
        kek_id: bk.kek_id.clone(),
        bucket_key: bk.reference.clone(),
        dek_nonce: [0; NONCE_LEN_BYTES],
        wrapped_dek: [0; KEY_LEN_BYTES],
        wrapped_dek_tag: [0; 16],
        commitment: [0; COMMITMENT_LEN_BYTES],
        customer_key: params.customer_key,
    };
    let mut header = Header {
        segment_size: params.segment_size,
        multipart: params.upload_id.is_some(),
        upload_id: params.upload_id.unwrap_or([0; UPLOAD_ID_LEN_BYTES]),
        inner: blank(inner_bk),
        outer: blank(outer_bk),
    };
    rewrap_header(&mut header, keys, inner_bk, outer_bk, name)?;
    Ok(header)
}

/// Re-wraps the data keys of `header` for `name` under the given bucket keys, with fresh
/// nonces: what CopyObject does, since the segments themselves do not depend on the name.
pub fn rewrap_header(
    header: &mut Header,
    keys: &DataKeys,
    inner_bk: &BucketKey,
    outer_bk: &BucketKey,
    name: ObjectName<'_>,
) -> Result<(), Error> {
    let nonces = [random_bytes(Layer::Inner)?, random_bytes(Layer::Outer)?];
    rewrap_header_with_nonces(header, keys, inner_bk, outer_bk, name, nonces)
}

/// [`seal_header`] with the data-key nonces given (inner, outer) instead of drawn at
/// random: for the published test vectors only. Never reuse a nonce with a bucket key.
pub fn seal_header_with_nonces(
    params: SealParams,
    keys: &DataKeys,
    inner_bk: &BucketKey,
    outer_bk: &BucketKey,
    name: ObjectName<'_>,
    nonces: [[u8; NONCE_LEN_BYTES]; 2],
) -> Result<Header, Error> {
    let mut header = seal_header(params, keys, inner_bk, outer_bk, name)?;
    rewrap_header_with_nonces(&mut header, keys, inner_bk, outer_bk, name, nonces)?;
    Ok(header)
}

fn rewrap_header_with_nonces(
    header: &mut Header,
    keys: &DataKeys,
    inner_bk: &BucketKey,
    outer_bk: &BucketKey,
    name: ObjectName<'_>,
    nonces: [[u8; NONCE_LEN_BYTES]; 2],
) -> Result<(), Error> {
    if inner_bk.reference.version() != outer_bk.reference.version() {
        return Err(Error::Internal("bucket keys of two format versions"));
    }
    if header.inner.bucket_key.version() != inner_bk.reference.version() {
        // The segments bind the version byte (`fixed`), so a re-wrap keeps it.
        return Err(Error::Internal("bucket key of another format version"));
    }
    for bk in [inner_bk, outer_bk] {
        let block = match bk.layer {
            Layer::Inner => &mut header.inner,
            Layer::Outer => &mut header.outer,
        };
        block.kek_id.clone_from(&bk.kek_id);
        block.bucket_key = bk.reference.clone();
        if !header::kek_id_is_valid(&block.kek_id) || !block.bucket_key.is_well_formed() {
            return Err(Error::Internal(
                "KEK id or wrapped bucket key out of bounds",
            ));
        }
    }
    let fixed = header.fixed_bytes();
    for bk in [inner_bk, outer_bk] {
        let layer = bk.layer;
        let block = match layer {
            Layer::Inner => &mut header.inner,
            Layer::Outer => &mut header.outer,
        };
        block.dek_nonce = nonces[usize::from(layer == Layer::Outer)];
        block.commitment = key_commitment(layer, keys.key(layer))?;
        let aad = data_key_aad(&fixed, block, name);
        let (wrapped, tag) =
            wrap_data_key(layer, &bk.key, &block.dek_nonce, &aad, keys.key(layer))?;
        block.wrapped_dek = wrapped;
        block.wrapped_dek_tag = tag;
    }
    Ok(())
}

/// Opens the header of an object stored under `name`, given both layers' bucket keys in
/// the clear (the caller has had the custodians unwrap them): unwraps each data key and
/// checks its commitment. Nothing is decrypted before both have passed.
pub fn open_header(
    header: &Header,
    inner_bk: &[u8; KEY_LEN_BYTES],
    outer_bk: &[u8; KEY_LEN_BYTES],
    name: ObjectName<'_>,
) -> Result<DataKeys, Error> {
    let fixed = header.fixed_bytes();
    let open = |block: &LayerBlock, bk: &[u8; KEY_LEN_BYTES]| {
        let aad = data_key_aad(&fixed, block, name);
        let key = unwrap_data_key(block, bk, &aad)?;
        let expected = key_commitment(block.layer, &key)?;
        if !constant_time_eq(&expected, &block.commitment) {
            return Err(Error::KeyCommitmentMismatch { layer: block.layer });
        }
        Ok(key)
    };
    // Outer first: it is the layer removed first on read.
    let outer = open(&header.outer, outer_bk)?;
    let inner = open(&header.inner, inner_bk)?;
    Ok(DataKeys { inner, outer })
}

/// Compares two byte strings in time that depends only on their length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
