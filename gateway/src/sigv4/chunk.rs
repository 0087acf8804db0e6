//! The signature chain of a streaming signed upload (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
//! and its `-TRAILER` form). Each chunk's signature covers the previous signature, so chunks
//! can be neither dropped nor reordered:
//!
//! ```text
//! chunk:   AWS4-HMAC-SHA256-PAYLOAD\n<timestamp>\n<scope>\n<previous>\n<hex sha256("")>\n<hex sha256(data)>
//! trailer: AWS4-HMAC-SHA256-TRAILER\n<timestamp>\n<scope>\n<previous>\n<hex sha256(canonical trailers)>
//! ```
//!
//! The first `previous` is the seed: the signature of the request itself.

use super::AuthError;
use super::key::{
    EMPTY_SHA256_HEX, SHA256_HEX_LEN_BYTES, SHA256_LEN_BYTES, SigningKey, ct_eq, hex32, sha256,
};
use std::fmt;

const CHUNK_ALGORITHM: &[u8] = b"AWS4-HMAC-SHA256-PAYLOAD";
const TRAILER_ALGORITHM: &[u8] = b"AWS4-HMAC-SHA256-TRAILER";

/// Verifies (or produces) the chunk and trailer signatures of one streaming signed body, in
/// order. Holds the signing key, so `Debug` shows only the scope and position.
#[derive(Clone)]
pub struct ChunkSigner {
    key: SigningKey,
    timestamp: String,
    scope: String,
    previous: [u8; SHA256_HEX_LEN_BYTES],
    chunks_done: u64,
}

impl ChunkSigner {
    /// A chain starting from `seed_signature` (64 lower-case hex digits, the request's own
    /// signature), for requests signed at `timestamp` (`YYYYMMDDTHHMMSSZ`) within `scope`
    /// (`YYYYMMDD/region/service/aws4_request`).
    pub fn new(
        key: SigningKey,
        timestamp: &str,
        scope: &str,
        seed_signature: &str,
    ) -> Result<Self, AuthError> {
        let seed = seed_signature.as_bytes();
        if seed.len() != SHA256_HEX_LEN_BYTES
            || !seed.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(AuthError::signature_mismatch());
        }
        let mut previous = [0_u8; SHA256_HEX_LEN_BYTES];
        previous.copy_from_slice(seed);
        Ok(Self {
            key,
            timestamp: timestamp.to_owned(),
            scope: scope.to_owned(),
            previous,
            chunks_done: 0,
        })
    }

    /// The last signature in the chain (the seed before any chunk).
    pub fn previous_signature(&self) -> &str {
        // Only lower-case hex digits are ever stored.
        std::str::from_utf8(&self.previous).unwrap_or_default()
    }

    /// How many chunk signatures (the final empty chunk included) have been accepted.
    pub fn chunks_done(&self) -> u64 {
        self.chunks_done
    }

    fn chunk_tag(&self, data_sha256: &[u8; SHA256_LEN_BYTES]) -> [u8; SHA256_HEX_LEN_BYTES] {
        let data_hex = hex32(data_sha256);
        hex32(&self.key.tag(&[
            CHUNK_ALGORITHM,
            b"\n",
            self.timestamp.as_bytes(),
            b"\n",
            self.scope.as_bytes(),
            b"\n",
            &self.previous,
            b"\n",
            EMPTY_SHA256_HEX.as_bytes(),
            b"\n",
            &data_hex,
        ]))
    }

    fn trailer_tag(&self, canonical_trailers: &[u8]) -> [u8; SHA256_HEX_LEN_BYTES] {
        let trailers_hex = hex32(&sha256(canonical_trailers));
        hex32(&self.key.tag(&[
            TRAILER_ALGORITHM,
            b"\n",
            self.timestamp.as_bytes(),
            b"\n",
            self.scope.as_bytes(),
            b"\n",
            &self.previous,
            b"\n",
            &trailers_hex,
        ]))
    }

    /// Checks `claimed` (the `chunk-signature=` value) against the chunk whose data hashes to
    /// `data_sha256`, in constant time, and moves the chain on when it matches.
    pub fn verify_chunk(
        &mut self,
        data_sha256: &[u8; SHA256_LEN_BYTES],
        claimed: &[u8],
    ) -> Result<(), AuthError> {
        let expected = self.chunk_tag(data_sha256);
        if !ct_eq(&expected, claimed) {
            return Err(AuthError::signature_mismatch());
        }
        self.previous = expected;
        self.chunks_done = self.chunks_done.saturating_add(1);
        Ok(())
    }

    /// Checks `claimed` (the `x-amz-trailer-signature` value) against the canonical trailer
    /// block (`name:value\n` per trailer, names lower-case and sorted), in constant time.
    pub fn verify_trailer(
        &mut self,
        canonical_trailers: &[u8],
        claimed: &[u8],
    ) -> Result<(), AuthError> {
        let expected = self.trailer_tag(canonical_trailers);
        if !ct_eq(&expected, claimed) {
            return Err(AuthError::signature_mismatch());
        }
        self.previous = expected;
        Ok(())
    }

    /// Signs the next chunk (for building bodies: tests, or a streaming upload to the
    /// backend) and moves the chain on.
    pub fn sign_chunk(&mut self, data: &[u8]) -> String {
        let tag = self.chunk_tag(&sha256(data));
        self.previous = tag;
        self.chunks_done = self.chunks_done.saturating_add(1);
        self.previous_signature().to_owned()
    }

    /// Signs the canonical trailer block and moves the chain on.
    pub fn sign_trailer(&mut self, canonical_trailers: &[u8]) -> String {
        self.previous = self.trailer_tag(canonical_trailers);
        self.previous_signature().to_owned()
    }
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigner")
            .field("timestamp", &self.timestamp)
            .field("scope", &self.scope)
            .field("previous", &self.previous_signature())
            .field("chunks_done", &self.chunks_done)
            .finish_non_exhaustive()
    }
}
