//! Format v2's bucket keys (`docs/format.md` § Key hierarchy): pure derivations, no I/O.
//!
//! ```text
//! input_L  = SHA-256("twofold/v2 epoch" ‖ layer id ‖ BE16(len bucket) ‖ bucket ‖ BE32(epoch))
//! prf_L    = RFC5649-Wrap(KEK_L, input_L)                  (40 bytes; by the custodian)
//! EK_L     = HKDF-SHA256(ikm prf_L, salt "twofold/v1", info "twofold/v2 epoch key" ‖ layer id)
//! BK_L     = HKDF-SHA256(ikm EK_L,  salt "twofold/v1", info "twofold/v2 bucket key" ‖ layer id ‖ salt)
//! ```
//!
//! RFC 5649 wrapping is deterministic, so every gateway holding `KEK_L` computes the same
//! epoch key for a bucket and epoch, with one custodian call, and nobody else can: the
//! wrap is a pseudo-random permutation of its input under the KEK. The bucket key's random
//! 16-byte salt is recorded in the header; it gives each (bucket, layer, window, core) its
//! own bucket key, so that no bucket key wraps more data keys (under random 96-bit nonces)
//! than one core writes objects in one window. Each layer hashes and derives with its own
//! implementation (RustCrypto for the inner layer, AWS-LC for the outer).

use super::aead::{KEY_LEN_BYTES, Layer};
use super::header::BUCKET_KEY_SALT_LEN_BYTES;
use super::kdf::{self, KdfFailure};
use zeroize::Zeroizing;

/// Length of the value the custodian is asked to wrap.
pub const EPOCH_INPUT_LEN_BYTES: usize = 32;
/// Length of the custodian's answer: RFC 5649 of 32 bytes.
pub const EPOCH_PRF_LEN_BYTES: usize = 40;

/// Seconds in the unit epochs are recorded in.
pub const EPOCH_UNIT_SECS: u64 = 3600;

/// The epoch that a time falls in, for epochs of `epoch_secs` (a multiple of
/// [`EPOCH_UNIT_SECS`]): its start, in hours since the Unix epoch, saturated to 32 bits.
/// Recorded this way, an epoch says when it began whatever the writer's epoch length, so
/// a reader can refuse one that has not begun yet.
pub fn epoch_of(now_secs: u64, epoch_secs: u64) -> u32 {
    let len = epoch_secs.max(EPOCH_UNIT_SECS);
    u32::try_from(now_secs / len * len / EPOCH_UNIT_SECS).unwrap_or(u32::MAX)
}

/// Whether an epoch recorded in a header can have begun by `now_secs` (one unit of clock
/// skew allowed): headers that name a later one are altered.
pub fn epoch_has_begun(epoch: u32, now_secs: u64) -> bool {
    u64::from(epoch) <= now_secs / EPOCH_UNIT_SECS + 1
}

/// The value custodian `layer` wraps to make the epoch key of (`bucket`, `epoch`).
pub fn epoch_input(layer: Layer, bucket: &str, epoch: u32) -> [u8; EPOCH_INPUT_LEN_BYTES] {
    let mut msg = Vec::with_capacity(32 + bucket.len());
    msg.extend_from_slice(b"twofold/v2 epoch");
    msg.push(layer.id());
    // Bucket names are at most 63 bytes; saturate rather than truncate if ever more.
    msg.extend_from_slice(
        &u16::try_from(bucket.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    msg.extend_from_slice(bucket.as_bytes());
    msg.extend_from_slice(&epoch.to_be_bytes());
    let mut out = [0u8; EPOCH_INPUT_LEN_BYTES];
    match layer {
        Layer::Inner => {
            use sha2::Digest;
            out.copy_from_slice(&sha2::Sha256::digest(&msg));
        }
        Layer::Outer => {
            out.copy_from_slice(
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &msg).as_ref(),
            );
        }
    }
    out
}

/// The epoch key, from the custodian's wrapping of [`epoch_input`].
pub fn epoch_key(layer: Layer, prf: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN_BYTES]>, KdfFailure> {
    let mut info = b"twofold/v2 epoch key".to_vec();
    info.push(layer.id());
    kdf::derive_key(layer, prf, &info)
}

/// A bucket key, from the epoch key and the salt its header records.
pub fn bucket_key(
    layer: Layer,
    epoch_key: &[u8; KEY_LEN_BYTES],
    salt: &[u8; BUCKET_KEY_SALT_LEN_BYTES],
) -> Result<Zeroizing<[u8; KEY_LEN_BYTES]>, KdfFailure> {
    let mut info = b"twofold/v2 bucket key".to_vec();
    info.push(layer.id());
    info.extend_from_slice(salt);
    kdf::derive_key(layer, epoch_key, &info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both layers' code bases give the same derivations; every input changes the output.
    #[test]
    fn derivations_agree_across_implementations_and_separate_their_inputs() {
        for layer in [Layer::Inner, Layer::Outer] {
            let other = match layer {
                Layer::Inner => Layer::Outer,
                Layer::Outer => Layer::Inner,
            };
            let a = epoch_input(layer, "bucket", 5);
            assert_ne!(a, epoch_input(layer, "bucket", 6));
            assert_ne!(a, epoch_input(layer, "bucket2", 5));
            assert_ne!(a, epoch_input(other, "bucket", 5));
            let ek = epoch_key(layer, &[9; EPOCH_PRF_LEN_BYTES]).unwrap();
            let bk = bucket_key(layer, &ek, &[1; 16]).unwrap();
            assert_ne!(*bk, *bucket_key(layer, &ek, &[2; 16]).unwrap());
            assert_ne!(*ek, *epoch_key(layer, &[8; EPOCH_PRF_LEN_BYTES]).unwrap());
        }
        // The hash and HKDF of each layer are the same functions: recompute the inner
        // layer's values with the outer layer's code, relabelled.
        let mut msg = b"twofold/v2 epoch".to_vec();
        msg.push(1);
        msg.extend_from_slice(&[0, 1, b'b']);
        msg.extend_from_slice(&7u32.to_be_bytes());
        let outer_hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &msg);
        assert_eq!(epoch_input(Layer::Inner, "b", 7), outer_hash.as_ref());
        let mut info = b"twofold/v2 bucket key".to_vec();
        info.push(1);
        info.extend_from_slice(&[3; 16]);
        let mut by_outer = [0u8; 32];
        kdf::derive(Layer::Outer, &[4; 32], &info, &mut by_outer).unwrap();
        assert_eq!(
            *bucket_key(Layer::Inner, &[4; 32], &[3; 16]).unwrap(),
            by_outer
        );
    }

    #[test]
    fn epochs_are_their_start_hour() {
        let day = 24 * 3600;
        assert_eq!(epoch_of(0, day), 0);
        assert_eq!(epoch_of(day - 1, day), 0);
        assert_eq!(epoch_of(day, day), 24);
        assert_eq!(epoch_of(30 * day + 5, 30 * day), 720);
        assert_eq!(epoch_of(7200 + 5, 0), 2);
        assert_eq!(epoch_of(u64::MAX, day), u32::MAX);
        let now = 1_800_000_000;
        assert!(epoch_has_begun(epoch_of(now, 30 * day), now));
        assert!(epoch_has_begun(epoch_of(now + 3600, 3600), now));
        assert!(!epoch_has_begun(epoch_of(now + 7200, 3600), now));
    }
}
