//! Twofold's only door to PKCS#11.
//!
//! The gateway keeps each object's data key wrapped by a bucket key, and each
//! bucket key wrapped by a key-encryption key (KEK) that lives, not
//! extractable, inside a PKCS#11 token. This crate finds the token, logs in,
//! finds or creates KEKs, and wraps and unwraps 256-bit keys under them with
//! `CKM_AES_KEY_WRAP_PAD` (AES key wrap with padding, RFC 5649; 32 bytes in,
//! 40 out). The gateway sees none of the PKCS#11 types: only [`Token`],
//! [`Session`], [`Kek`], [`HsmWorkers`] and [`Error`].
//!
//! # Secrets
//!
//! PINs ([`Pin`]) and unwrapped keys (`Zeroizing<[u8; 32]>`) are wiped when
//! dropped and never appear in `Debug` output or errors. A key being wrapped
//! or unwrapped exists inside the token only as a session object, destroyed
//! straight after. Every answer from the token is checked (lengths, key
//! attributes) before it is used. One copy is outside this crate's reach:
//! cryptoki reads `CKA_VALUE` through a buffer of its own that it frees
//! without wiping.
//!
//! # Loading the module
//!
//! A module is loaded and `C_Initialize`d once per process (PKCS#11 allows it
//! only once) and kept until the process exits. SoftHSM2 reads the file named
//! by the environment variable `SOFTHSM2_CONF` at `C_Initialize`, for example:
//!
//! ```text
//! directories.tokendir = /var/lib/twofold/softhsm/tokens
//! objectstore.backend = file
//! log.level = ERROR
//! ```
//!
//! This crate sets no environment variables: the caller must set
//! `SOFTHSM2_CONF` before the first [`Token::open`], [`init_token`] or
//! [`token_exists`], while the process still has one thread (setting the
//! environment is not thread-safe).
//!
//! # Threads
//!
//! A [`Token`] may be shared by all threads. A [`Session`] belongs to one
//! thread at a time (`Send`, not `Sync`). HSM calls block, so they must never
//! run on an I/O thread: start [`HsmWorkers`], a few dedicated threads each
//! owning its own session, and [`HsmWorkers::submit`] jobs to them; the
//! [`Ticket`] that comes back can be awaited from async code without blocking
//! the I/O thread, or waited on from a plain thread.
//!
//! # Failures
//!
//! Each error names the module, token or key concerned and whose fault it
//! is; [`Error::is_unavailable`] marks those worth a 503 and a retry. A lost
//! login is restored with the PIN the token was opened with; a KEK handle
//! that went stale is found again by label; a worker whose job saw
//! [`Error::TokenUnavailable`] opens a fresh session for the next job.
//!
//! [`init_token`] creates tokens for development mode and tests.

#![forbid(unsafe_code)]

mod error;
mod module;
mod pin;
mod session;
mod token;
mod workers;

pub use error::Error;
pub use module::{init_token, token_exists};
pub use pin::Pin;
pub use session::{
    KEK_LABELS_MAX, KEY_BYTES, KEY_LABEL_BYTES_MAX, Kek, Session, WRAPPED_KEY_BYTES,
};
pub use token::{Token, TokenConfig};
pub use workers::{HsmWorkers, Ticket};

/// For this crate's tests only: ways to reach error paths the public API
/// cannot reach with a well-behaved token. Not part of the API.
#[doc(hidden)]
pub mod testing {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::mechanism::aead::GcmParams;

    use crate::{Error, KEY_BYTES, Kek, Session};

    /// Wraps with `CKM_AES_GCM`, which tokens such as SoftHSM2 do not offer
    /// for wrapping (`CKR_MECHANISM_INVALID`), to show how that is reported.
    pub fn wrap_key_with_aes_gcm(
        session: &Session,
        kek: &Kek,
        key: &[u8; KEY_BYTES],
    ) -> Result<Vec<u8>, Error> {
        let mut iv = [0u8; 12];
        let params =
            GcmParams::new(&mut iv, &[], 128.into()).map_err(|e| Error::InvalidArgument {
                detail: e.to_string(),
            })?;
        session.wrap_with(kek, key, &Mechanism::AesGcm(params), "CKM_AES_GCM")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn thread_bounds() {
        send_sync::<Token>();
        send_sync::<Kek>();
        send_sync::<HsmWorkers>();
        send_sync::<Pin>();
        send_sync::<Error>();
        send::<Ticket<Vec<u8>>>();
        // Not Sync: one thread at a time.
        send::<Session>();
    }
}
