//! Key custodians: who holds a layer's key-encryption key (KEK) and wraps its bucket keys.
//!
//! Two kinds: a PKCS#11 token (the KEK is a non-extractable AES-256 key inside it, used with
//! CKM_AES_KEY_WRAP_PAD through `hsm-bridge`, on dedicated HSM threads), or a local key file
//! for single-custodian setups (RFC 5649 key wrap with padding from RustCrypto `aes-kw`).

use super::{KeyError, versions};
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
                // Version 1 of the custodian's own KEK (it keys the upload ids), a version
                // of every named key's (the older ones may have been retired) and every
                // retired label must be on the token.
                let session = token.session().map_err(custody)?;
                session.kek(key_label).map_err(custody)?;
                for label in retired_key_labels {
                    session.kek(label).map_err(custody)?;
                }
                // One listing of the token for every named key.
                let on_token = session.kek_labels().map_err(custody)?;
                for base in named_key_labels {
                    let newest = versions::versions_of(base, on_token.iter().map(String::as_str))
                        .last()
                        .copied();
                    session
                        .kek(&versions::label(base, newest.unwrap_or(1)))
                        .map_err(custody)?;
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
                let on_token = session.kek_labels().map_err(custody)?;
                let mut said = Vec::new();
                // The current KEK and every named key's (retired ones are never made); a
                // named key with a later version exists (its first may have been retired).
                for label in std::iter::once(key_label).chain(named_key_labels) {
                    let newest = versions::versions_of(label, on_token.iter().map(String::as_str))
                        .last()
                        .copied()
                        .filter(|_| label != key_label);
                    if let Some(v) = newest {
                        said.push(format!("key {:?} exists", versions::label(label, v)));
                    } else if session.find_kek(label).map_err(custody)?.is_some() {
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

    /// Destroys every version of the KEK whose base label is `label` on the token
    /// (crypto-shredding). Only a named key's KEK may be destroyed: never the custodian's
    /// current or retired ones. Returns a sentence saying what was destroyed or found
    /// missing.
    pub fn destroy(layer: Layer, spec: &CustodianSpec, label: &str) -> Result<String, KeyError> {
        let (key_label, retired) = own_labels(spec)?;
        if label == key_label || retired.iter().any(|r| r == label) {
            return Err(KeyError::Refused(
                "the custodian's own KEKs are not destroyed this way",
            ));
        }
        let (session, token_label) = admin_session(layer, spec)?;
        let custody = |source| KeyError::Custody { layer, source };
        let mut destroyed = Vec::new();
        for v in versions_on(&session, layer, label)? {
            let l = versions::label(label, v);
            session.destroy_kek(&l).map_err(custody)?;
            audit_destroyed(layer, &l);
            destroyed.push(format!("{l:?}"));
        }
        Ok(match destroyed.is_empty() {
            true => format!("{layer} layer: PKCS#11 token {token_label:?}: no key {label:?}"),
            false => format!(
                "{layer} layer: PKCS#11 token {token_label:?}: destroyed key {}",
                destroyed.join(", ")
            ),
        })
    }

    /// Makes the next version of the KEK whose base label is `base` on the token (`twofold
    /// keys rotate`): `base.v2` after `base`, then `.v3`... New objects are sealed under
    /// it once the gateways see it (`[envelope] kek_version_check_secs`); the older
    /// versions stay and keep opening their objects. Returns the new label and a sentence.
    pub fn rotate(
        layer: Layer,
        spec: &CustodianSpec,
        base: &str,
    ) -> Result<(String, String), KeyError> {
        let (session, token_label) = admin_session(layer, spec)?;
        let custody = |source| KeyError::Custody { layer, source };
        let current =
            versions_on(&session, layer, base)?
                .last()
                .copied()
                .ok_or(KeyError::UnknownKek {
                    layer,
                    kek_id: base.to_owned(),
                })?;
        if current >= versions::KEK_VERSION_MAX {
            return Err(KeyError::Refused("the KEK has its last version"));
        }
        let label = versions::label(base, current + 1);
        session.create_kek(&label).map_err(custody)?;
        tracing::warn!(
            target: "twofold::audit",
            action = "kek_rotated",
            layer = %layer,
            kek = %label,
            version = current + 1,
            "new key-encryption key version created"
        );
        let said = format!(
            "{layer} layer: PKCS#11 token {token_label:?}: created key {label:?} (version {})",
            current + 1
        );
        Ok((label, said))
    }

    /// Destroys version `version` of the KEK whose base label is `base` (retiring it once
    /// no object names it). The newest version is never destroyed this way (new objects
    /// are sealed under it), nor version 1 of the custodian's own KEK (the gateways'
    /// upload-id key derives from it). Returns a sentence.
    pub fn destroy_version(
        layer: Layer,
        spec: &CustodianSpec,
        base: &str,
        version: u32,
    ) -> Result<String, KeyError> {
        let (key_label, _) = own_labels(spec)?;
        if base == key_label && version == 1 {
            return Err(KeyError::Refused(
                "version 1 of the custodian's own KEK keys the upload ids and is kept",
            ));
        }
        let (session, token_label) = admin_session(layer, spec)?;
        let custody = |source| KeyError::Custody { layer, source };
        let present = versions_on(&session, layer, base)?;
        let label = versions::label(base, version);
        if !present.contains(&version) {
            return Ok(format!(
                "{layer} layer: PKCS#11 token {token_label:?}: no key {label:?}"
            ));
        }
        if present.last() == Some(&version) {
            return Err(KeyError::Refused(
                "the newest version of a KEK is the one new objects are sealed under; rotate first",
            ));
        }
        session.destroy_kek(&label).map_err(custody)?;
        audit_destroyed(layer, &label);
        Ok(format!(
            "{layer} layer: PKCS#11 token {token_label:?}: destroyed key {label:?}"
        ))
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

    /// The versions of the KEK whose base label is `base` that the custodian holds, in
    /// increasing order (see [`versions`]); a key file's single KEK is version 1. One
    /// listing of the token's keys, on its HSM threads.
    pub async fn versions(&self, base: &str) -> Result<Vec<u32>, KeyError> {
        match self {
            Custodian::Pkcs11 { workers, layer, .. } => {
                let labels = workers.submit(|s| s.kek_labels()).await.map_err(|source| {
                    KeyError::Custody {
                        layer: *layer,
                        source,
                    }
                })?;
                Ok(versions::versions_of(
                    base,
                    labels.iter().map(String::as_str),
                ))
            }
            Custodian::KeyFile { .. } => Ok(vec![1]),
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
                    .map_err(|source| custody_error(layer, kek_id, source))?
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

    /// Whether `kek_id` is one this custodian is configured with: any version of its own KEK
    /// and of the named keys' KEKs, and a token's retired KEKs. (Whether that version is
    /// still on the token is the token's answer: [`KeyError::KekGone`] when not.)
    pub fn unwraps_under(&self, kek_id: &str) -> bool {
        match self {
            Custodian::Pkcs11 {
                key_label,
                retired_key_labels,
                named_key_labels,
                ..
            } => {
                let base = versions::parse(kek_id).0;
                base == key_label
                    || retired_key_labels.iter().any(|r| r == kek_id)
                    || named_key_labels.iter().any(|r| r == base)
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
                        source => custody_error(layer, kek_id, source),
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

/// The custodian's own KEK label and its retired ones; a key file has no versions and
/// no named keys.
fn own_labels(spec: &CustodianSpec) -> Result<(&str, &[String]), KeyError> {
    match spec {
        CustodianSpec::Pkcs11 {
            key_label,
            retired_key_labels,
            ..
        } => Ok((key_label, retired_key_labels)),
        CustodianSpec::KeyFile { .. } => Err(KeyError::Refused(
            "a key file holds one KEK: no named keys and no versions",
        )),
    }
}

/// A logged-in session on a PKCS#11 custodian's token for the key commands, and the
/// token's label.
fn admin_session(
    layer: Layer,
    spec: &CustodianSpec,
) -> Result<(hsm_bridge::Session, String), KeyError> {
    let CustodianSpec::Pkcs11 {
        module,
        token_label,
        pin,
        ..
    } = spec
    else {
        own_labels(spec)?;
        return Err(KeyError::Refused("not a PKCS#11 custodian"));
    };
    let custody = |source| KeyError::Custody { layer, source };
    let token = Token::open(&token_config(module, token_label, pin, layer)?).map_err(custody)?;
    Ok((token.session().map_err(custody)?, token_label.clone()))
}

/// A token's failure with the KEK `kek_id`: one it does not hold (a version destroyed, or
/// one a forged header names) is [`KeyError::KekGone`], not an unavailable custodian.
fn custody_error(layer: Layer, kek_id: &str, source: hsm_bridge::Error) -> KeyError {
    match source {
        hsm_bridge::Error::KeyNotFound { .. } => KeyError::KekGone {
            layer,
            kek_id: kek_id.to_owned(),
        },
        source => KeyError::Custody { layer, source },
    }
}

/// The versions of the KEK whose base label is `base` on the token of `session`, in
/// increasing order.
fn versions_on(
    session: &hsm_bridge::Session,
    layer: Layer,
    base: &str,
) -> Result<Vec<u32>, KeyError> {
    let labels = session
        .kek_labels()
        .map_err(|source| KeyError::Custody { layer, source })?;
    Ok(versions::versions_of(
        base,
        labels.iter().map(String::as_str),
    ))
}

fn audit_destroyed(layer: Layer, label: &str) {
    tracing::warn!(
        target: "twofold::audit",
        action = "kek_destroyed",
        layer = %layer,
        kek = label,
        "key-encryption key destroyed (crypto-shredding)"
    );
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
