//! Key custodians: who holds a layer's key-encryption key (KEK) and wraps its bucket keys.
//!
//! Two kinds: a PKCS#11 token (the KEK is a non-extractable AES-256 key inside it, used with
//! CKM_AES_KEY_WRAP_PAD through `hsm-bridge`, on dedicated HSM threads), or a local key file
//! for single-custodian setups (RFC 5649 key wrap with padding from RustCrypto `aes-kw`).

use super::KeyError;
use crate::envelope::aead::Layer;
use aes_gcm::KeyInit;
use hsm_bridge::{HsmWorkers, Pin, Token, TokenConfig};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Where a PKCS#11 user PIN comes from. Never the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// A file holding the PIN (one trailing newline is ignored).
    File(PathBuf),
    /// An environment variable holding the PIN.
    Env(String),
}

impl PinSource {
    /// Reads the PIN. A PIN file must be readable by its owner only, like a key file.
    pub fn load(&self) -> Result<Pin, hsm_bridge::Error> {
        match self {
            PinSource::File(p) => {
                crate::private_file::check_owner_only(p).map_err(|e| {
                    hsm_bridge::Error::PinUnavailable {
                        origin: format!("file {}", p.display()),
                        detail: e.reason(),
                    }
                })?;
                Pin::from_file(p)
            }
            PinSource::Env(v) => Pin::from_env(v),
        }
    }
}

/// A validated custodian setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustodianSpec {
    /// A PKCS#11 token.
    Pkcs11 {
        /// Path of the PKCS#11 module (shared library).
        module: PathBuf,
        /// Label of the token.
        token_label: String,
        /// Where the user PIN comes from.
        pin: PinSource,
        /// Label of the KEK inside the token; also the KEK id recorded in headers.
        key_label: String,
        /// Labels of earlier KEKs still on the token, whose objects are still read; no new
        /// key is wrapped under them.
        retired_key_labels: Vec<String>,
        /// Labels of the named keys' KEKs on the token (`[[named_key]]`), which new objects
        /// that name them are sealed under.
        named_key_labels: Vec<String>,
        /// Number of dedicated HSM threads (each with its own session).
        hsm_threads: usize,
    },
    /// A local file holding a 256-bit KEK as 64 hex digits.
    KeyFile {
        /// The file.
        path: PathBuf,
        /// KEK id recorded in headers.
        key_id: String,
    },
}

impl CustodianSpec {
    /// The KEK id this custodian wraps new bucket keys under.
    pub fn kek_id(&self) -> &str {
        match self {
            CustodianSpec::Pkcs11 { key_label, .. } => key_label,
            CustodianSpec::KeyFile { key_id, .. } => key_id,
        }
    }

    /// A line for `keys init` and logs: which kind, where, which key. No secrets.
    pub fn describe(&self) -> String {
        match self {
            CustodianSpec::Pkcs11 {
                token_label,
                key_label,
                ..
            } => format!("PKCS#11 token {token_label:?}, key {key_label:?}"),
            CustodianSpec::KeyFile { path, key_id } => {
                format!("key file {}, key id {key_id:?}", path.display())
            }
        }
    }
}

/// A layer's custodian, opened and ready.
#[derive(Debug, Clone)]
pub enum Custodian {
    /// A PKCS#11 token driven by dedicated HSM threads.
    Pkcs11 {
        /// Which layer it serves.
        layer: Layer,
        /// The KEK label used for new wraps.
        key_label: String,
        /// Earlier KEK labels it still unwraps under.
        retired_key_labels: Vec<String>,
        /// The named keys' KEK labels.
        named_key_labels: Vec<String>,
        /// The token's HSM threads.
        workers: HsmWorkers,
    },
    /// A local key file, loaded into memory (zeroised on drop).
    KeyFile {
        /// Which layer it serves.
        layer: Layer,
        /// KEK id.
        key_id: String,
        /// The KEK.
        kek: std::sync::Arc<crate::hardening::LockedKey>,
    },
}

/// The value each custodian wraps to make its share of the upload-id key (see
/// [`Custodian::upload_id_share`]); 32 bytes, as a bucket key.
pub const UPLOAD_ID_KEY_SEED: [u8; 32] = *b"twofold: upload id mac key seed.";

/// Length of an RFC 5649 wrapping of a 32-byte key.
pub const WRAPPED_KEY_LEN_BYTES: usize = 40;

fn token_config(
    module: &Path,
    token_label: &str,
    pin: &PinSource,
    layer: Layer,
) -> Result<TokenConfig, KeyError> {
    Ok(TokenConfig {
        module_path: module.to_path_buf(),
        token_label: token_label.to_owned(),
        pin: pin
            .load()
            .map_err(|source| KeyError::Custody { layer, source })?,
    })
}

impl Custodian {
    /// Opens the custodian: logs in to the token and checks that the KEK exists, or reads
    /// the key file.
    pub fn open(layer: Layer, spec: &CustodianSpec) -> Result<Self, KeyError> {
        match spec {
            CustodianSpec::Pkcs11 {
                module,
                token_label,
                pin,
                key_label,
                retired_key_labels,
                named_key_labels,
                hsm_threads,
            } => {
                let custody = |source| KeyError::Custody { layer, source };
                let token = Token::open(&token_config(module, token_label, pin, layer)?)
                    .map_err(custody)?;
                // The current KEK, every retired one and every named key's must be on the
                // token.
                let session = token.session().map_err(custody)?;
                let labels = std::iter::once(key_label)
                    .chain(retired_key_labels)
                    .chain(named_key_labels);
                for label in labels {
                    session.kek(label).map_err(custody)?;
                }
                drop(session);
                let workers = HsmWorkers::start(&token, (*hsm_threads).max(1)).map_err(custody)?;
                Ok(Custodian::Pkcs11 {
                    layer,
                    key_label: key_label.clone(),
                    retired_key_labels: retired_key_labels.clone(),
                    named_key_labels: named_key_labels.clone(),
                    workers,
                })
            }
            CustodianSpec::KeyFile { path, key_id } => Ok(Custodian::KeyFile {
                layer,
                key_id: key_id.clone(),
                kek: std::sync::Arc::new(crate::hardening::LockedKey::new(&*read_key_file(
                    path, layer,
                )?)),
            }),
        }
    }

    /// Creates the KEK if it does not exist yet. Returns a sentence saying what was found
    /// or made.
    pub fn init(layer: Layer, spec: &CustodianSpec) -> Result<String, KeyError> {
        match spec {
            CustodianSpec::Pkcs11 {
                module,
                token_label,
                pin,
                key_label,
                named_key_labels,
                ..
            } => {
                let custody = |source| KeyError::Custody { layer, source };
                let token = Token::open(&token_config(module, token_label, pin, layer)?)
                    .map_err(custody)?;
                let session = token.session().map_err(custody)?;
                let mut said = Vec::new();
                // The current KEK and every named key's (retired ones are never made).
                for label in std::iter::once(key_label).chain(named_key_labels) {
                    if session.find_kek(label).map_err(custody)?.is_some() {
                        said.push(format!("key {label:?} exists"));
                    } else {
                        session.create_kek(label).map_err(custody)?;
                        said.push(format!("created key {label:?}"));
                    }
                }
                Ok(format!(
                    "{layer} layer: PKCS#11 token {token_label:?}: {}",
                    said.join(", ")
                ))
            }
            CustodianSpec::KeyFile { path, .. } => {
                if path.exists() {
                    read_key_file(path, layer)?;
                    Ok(format!("{layer} layer: {} exists", spec.describe()))
                } else {
                    create_key_file(path, layer)?;
                    Ok(format!("{layer} layer: created {}", spec.describe()))
                }
            }
        }
    }

    /// Destroys the KEK labelled `label` on the token (crypto-shredding). Only a named
    /// key's KEK may be destroyed: never the custodian's current or retired ones. Returns a
    /// sentence saying what was destroyed or found missing.
    pub fn destroy(layer: Layer, spec: &CustodianSpec, label: &str) -> Result<String, KeyError> {
        let CustodianSpec::Pkcs11 {
            module,
            token_label,
            pin,
            key_label,
            retired_key_labels,
            ..
        } = spec
        else {
            return Err(KeyError::Internal("a key file holds no named keys"));
        };
        if label == key_label || retired_key_labels.iter().any(|r| r == label) {
            return Err(KeyError::Internal(
                "the custodian's own KEKs are not destroyed this way",
            ));
        }
        let custody = |source| KeyError::Custody { layer, source };
        let token =
            Token::open(&token_config(module, token_label, pin, layer)?).map_err(custody)?;
        let destroyed = token
            .session()
            .map_err(custody)?
            .destroy_kek(label)
            .map_err(custody)?;
        tracing::warn!(
            target: "twofold::audit",
            action = "kek_destroyed",
            layer = %layer,
            kek = label,
            count = destroyed,
            "key-encryption key destroyed (crypto-shredding)"
        );
        Ok(match destroyed {
            0 => format!("{layer} layer: PKCS#11 token {token_label:?}: no key {label:?}"),
            _ => format!("{layer} layer: PKCS#11 token {token_label:?}: destroyed key {label:?}"),
        })
    }

    /// Wraps a bucket key under the current KEK. A PKCS#11 custodian runs the call on its
    /// HSM threads and this future waits for the answer without blocking the caller's
    /// thread, so it is safe on an I/O loop. Counted in the metrics and written to the
    /// audit log (KEK and the wrapped key's fingerprint, never the key).
    pub async fn wrap(&self, key: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        let started = std::time::Instant::now();
        let result = self.wrap_raw(key).await;
        self.account("wrap", started, result.as_ref().err());
        if let Ok(wrapped) = &result {
            tracing::info!(
                target: "twofold::audit",
                action = "bucket_key_wrap",
                layer = %self.layer(),
                kek = self.kek_id(),
                bucket_key = %crate::telemetry::key_fingerprint(wrapped),
                "new bucket key wrapped by the custodian"
            );
        }
        result
    }

    /// Unwraps a bucket key that a header says was wrapped under `kek_id` (see [`wrap`]
    /// for where the work runs, what is counted and what is audited).
    ///
    /// [`wrap`]: Custodian::wrap
    ///
    /// A header that names a KEK this custodian is not configured with (its current one
    /// and, for a token, its retired ones) is refused here, before any custodian call: a
    /// forged header can neither probe the token for labels nor load it. Counted
    /// (`twofold_kek_refused_total`) and logged.
    pub async fn unwrap(
        &self,
        kek_id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        self.refuse_unconfigured(kek_id)?;
        let started = std::time::Instant::now();
        let result = self.unwrap_raw(kek_id, wrapped).await;
        self.account("unwrap", started, result.as_ref().err());
        tracing::info!(
            target: "twofold::audit",
            action = "bucket_key_unwrap",
            layer = %self.layer(),
            kek = kek_id,
            bucket_key = %crate::telemetry::key_fingerprint(wrapped),
            ok = result.is_ok(),
            "bucket key unwrapped by the custodian"
        );
        result
    }

    /// Checks that the custodian can work now: a PKCS#11 custodian opens its KEK in a
    /// session on one of its HSM threads; a key file was read at start and always can.
    pub async fn check(&self) -> Result<(), KeyError> {
        let started = std::time::Instant::now();
        let result = match self {
            Custodian::Pkcs11 {
                layer,
                key_label,
                workers,
                ..
            } => {
                let label = key_label.clone();
                let layer = *layer;
                workers
                    .submit(move |s| s.kek(&label).map(|_| ()))
                    .await
                    .map_err(|source| KeyError::Custody { layer, source })
            }
            Custodian::KeyFile { .. } => Ok(()),
        };
        self.account("check", started, result.as_ref().err());
        result
    }

    fn account(&self, kind: &'static str, started: std::time::Instant, error: Option<&KeyError>) {
        if let Custodian::Pkcs11 { .. } = self {
            // A rejected unwrap is the token answering: not an HSM error.
            let hsm_failed =
                error.is_some_and(|e| !matches!(e, KeyError::BucketKeyRejected { .. }));
            crate::telemetry::hsm_operation(self.layer(), kind, started.elapsed(), !hsm_failed);
        }
        if let Some(e) = error {
            tracing::warn!(layer = %self.layer(), operation = kind, error = %e, "key custodian operation failed");
        }
    }

    /// The layer this custodian serves.
    pub fn layer(&self) -> Layer {
        match self {
            Custodian::Pkcs11 { layer, .. } | Custodian::KeyFile { layer, .. } => *layer,
        }
    }

    /// The KEK id new bucket keys are wrapped under.
    pub fn kek_id(&self) -> &str {
        match self {
            Custodian::Pkcs11 { key_label, .. } => key_label,
            Custodian::KeyFile { key_id, .. } => key_id,
        }
    }

    /// The wrap itself, uncounted, under the current KEK.
    async fn wrap_raw(&self, key: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        self.wrap_under(self.kek_id(), key).await
    }

    /// An RFC 5649 wrap of 32 bytes under the KEK `kek_id`, uncounted. The caller has
    /// checked that the KEK is configured ([`Custodian::unwraps_under`]).
    async fn wrap_under(&self, kek_id: &str, key: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        let layer = self.layer();
        let wrapped = match self {
            Custodian::Pkcs11 { workers, .. } => {
                let label = kek_id.to_owned();
                let key = Zeroizing::new(*key);
                workers
                    .submit(move |s| {
                        let kek = s.kek(&label)?;
                        s.wrap_key(&kek, &key)
                    })
                    .await
                    .map_err(|source| KeyError::Custody { layer, source })?
            }
            Custodian::KeyFile { kek, key_id, .. } => {
                if kek_id != key_id {
                    return Err(KeyError::UnknownKek {
                        layer,
                        kek_id: kek_id.to_owned(),
                    });
                }
                let kek: &[u8; 32] = kek.as_ref();
                let kwp = aes_kw::KwpAes256::new(kek.into());
                let mut buf = [0u8; WRAPPED_KEY_LEN_BYTES];
                kwp.wrap_key(key, &mut buf)
                    .map_err(|_| KeyError::Internal("RFC 5649 wrap"))?
                    .to_vec()
            }
        };
        if wrapped.len() != WRAPPED_KEY_LEN_BYTES {
            return Err(KeyError::Internal(
                "wrapped bucket key of unexpected length",
            ));
        }
        Ok(wrapped)
    }

    /// The pseudo-random value behind an epoch key (format v2, `envelope::hierarchy`): the
    /// RFC 5649 wrapping of `input` under the KEK `kek_id`, deterministic, so that every
    /// gateway holding the KEK computes the same value and only they can. A KEK this
    /// custodian is not configured with is refused before any custodian call, as for
    /// [`Custodian::unwrap`]. Counted as a custodian operation of kind `derive` and written
    /// to the audit log (never the value).
    pub async fn derive_epoch_secret(
        &self,
        kek_id: &str,
        input: &[u8; 32],
    ) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        self.refuse_unconfigured(kek_id)?;
        let started = std::time::Instant::now();
        let result = self.wrap_under(kek_id, input).await.map(Zeroizing::new);
        self.account("derive", started, result.as_ref().err());
        tracing::info!(
            target: "twofold::audit",
            action = "epoch_key_derive",
            layer = %self.layer(),
            kek = kek_id,
            epoch_input = %crate::telemetry::key_fingerprint(input),
            ok = result.is_ok(),
            "epoch key derived by the custodian"
        );
        result
    }

    /// [`KeyError::UnknownKek`], counted and logged, for a KEK this custodian is not
    /// configured with; nothing is asked of the custodian.
    fn refuse_unconfigured(&self, kek_id: &str) -> Result<(), KeyError> {
        if self.unwraps_under(kek_id) {
            return Ok(());
        }
        let layer = self.layer();
        metrics::counter!(crate::telemetry::KEK_REFUSED_TOTAL, "layer" => layer.to_string())
            .increment(1);
        tracing::warn!(
            target: "twofold::audit",
            action = "kek_refused",
            layer = %layer,
            kek = %kek_id.escape_debug(),
            "a header names a key-encryption key this custodian is not configured with; refused without a custodian call"
        );
        Err(KeyError::UnknownKek {
            layer,
            kek_id: kek_id.to_owned(),
        })
    }

    /// This custodian's share of the gateways' upload-id key: the RFC 5649 wrapping of the
    /// fixed [`UPLOAD_ID_KEY_SEED`] under the current KEK. The wrapping is deterministic, so
    /// every gateway holding this KEK computes the same 40 bytes, and only they can: it is
    /// a pseudo-random function of the KEK, never stored or sent anywhere. Counted as a
    /// custodian operation of kind `derive`.
    pub async fn upload_id_share(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let started = std::time::Instant::now();
        let result = self.wrap_raw(&UPLOAD_ID_KEY_SEED).await.map(Zeroizing::new);
        self.account("derive", started, result.as_ref().err());
        tracing::info!(
            target: "twofold::audit",
            action = "upload_id_key_derive",
            layer = %self.layer(),
            kek = self.kek_id(),
            ok = result.is_ok(),
            "upload-id key share derived by the custodian"
        );
        result
    }

    /// Whether `kek_id` is one this custodian is configured with: the current KEK, and a
    /// token's retired and named keys' KEKs.
    pub fn unwraps_under(&self, kek_id: &str) -> bool {
        match self {
            Custodian::Pkcs11 {
                key_label,
                retired_key_labels,
                named_key_labels,
                ..
            } => {
                kek_id == key_label
                    || retired_key_labels.iter().any(|r| r == kek_id)
                    || named_key_labels.iter().any(|r| r == kek_id)
            }
            Custodian::KeyFile { key_id, .. } => kek_id == key_id,
        }
    }

    /// The unwrap itself, uncounted.
    async fn unwrap_raw(
        &self,
        kek_id: &str,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let layer = self.layer();
        if wrapped.len() != WRAPPED_KEY_LEN_BYTES {
            return Err(KeyError::BucketKeyRejected { layer });
        }
        match self {
            Custodian::Pkcs11 { workers, .. } => {
                let label = kek_id.to_owned();
                let wrapped = wrapped.to_vec();
                workers
                    .submit(move |s| {
                        let kek = s.kek(&label)?;
                        s.unwrap_key(&kek, &wrapped)
                    })
                    .await
                    .map_err(|source| match source {
                        hsm_bridge::Error::UnwrapRejected { .. } => {
                            KeyError::BucketKeyRejected { layer }
                        }
                        source => KeyError::Custody { layer, source },
                    })
            }
            Custodian::KeyFile { key_id, kek, .. } => {
                if kek_id != key_id {
                    return Err(KeyError::UnknownKek {
                        layer,
                        kek_id: kek_id.to_owned(),
                    });
                }
                let kek: &[u8; 32] = kek.as_ref();
                let kwp = aes_kw::KwpAes256::new(kek.into());
                let mut out = Zeroizing::new([0u8; WRAPPED_KEY_LEN_BYTES]);
                let n = kwp
                    .unwrap_key(wrapped, out.as_mut())
                    .map_err(|_| KeyError::BucketKeyRejected { layer })?
                    .len();
                if n != 32 {
                    return Err(KeyError::BucketKeyRejected { layer });
                }
                let mut key = Zeroizing::new([0u8; 32]);
                key.copy_from_slice(&out[..32]);
                Ok(key)
            }
        }
    }
}

fn key_file_error(path: &Path, layer: Layer, reason: String) -> KeyError {
    KeyError::KeyFile {
        layer,
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads a KEK file: 64 hex digits, optionally followed by a newline, readable by its
/// owner only.
pub fn read_key_file(path: &Path, layer: Layer) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    crate::private_file::check_owner_only(path)
        .map_err(|e| key_file_error(path, layer, e.reason()))?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| key_file_error(path, layer, e.to_string()))?,
    );
    let hex_text = text.strip_suffix('\n').unwrap_or(&text);
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_text, key.as_mut())
        .map_err(|_| key_file_error(path, layer, "does not hold exactly 64 hex digits".into()))?;
    Ok(key)
}

/// Creates a new KEK file with mode 0600; refuses to overwrite.
pub fn create_key_file(path: &Path, layer: Layer) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key: [u8; 32] = crate::envelope::random_bytes(layer).map_err(KeyError::Envelope)?;
    let key = Zeroizing::new(key);
    let mut text = Zeroizing::new(hex::encode(key.as_ref()));
    text.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| key_file_error(path, layer, e.to_string()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| key_file_error(path, layer, e.to_string()))
}
