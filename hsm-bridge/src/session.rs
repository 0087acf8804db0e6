//! A PKCS#11 session and the key operations on it: find and create KEKs, wrap
//! and unwrap 256-bit keys with AES key wrap with padding (RFC 5649).

use std::fmt;
use std::sync::{Arc, Mutex};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::SessionState;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::error::{Ctx, rv_name};
use crate::module::lock;
use crate::token::TokenInner;

/// Bytes in a data or bucket key (AES-256).
pub const KEY_BYTES: usize = 32;
/// Bytes of a [`KEY_BYTES`] key wrapped with RFC 5649: the key rounded up to
/// 8 bytes, plus the 8-byte integrity block.
pub const WRAPPED_KEY_BYTES: usize = KEY_BYTES.div_ceil(8) * 8 + 8;
const _: () = assert!(WRAPPED_KEY_BYTES == 40);
/// The longest KEK label accepted.
pub const KEY_LABEL_BYTES_MAX: usize = 128;
/// Most AES token keys [`Session::kek_labels`] lists; a token holding more is refused
/// rather than read without bound.
pub const KEK_LABELS_MAX: usize = 4096;

const KWP: &str = "CKM_AES_KEY_WRAP_PAD";
const KEY_GEN: &str = "CKM_AES_KEY_GEN";

/// A PKCS#11 session on a logged-in token.
///
/// Use it from one thread: it is `Send` but not `Sync`. The usual way is one
/// per [`HsmWorkers`](crate::HsmWorkers) thread.
pub struct Session {
    session: cryptoki::session::Session,
    token: Arc<TokenInner>,
}

/// A key-encryption key on the token: its handle and label. It never holds
/// key material; `Debug` shows the label only. It may be used with any
/// session of the token it was found on, from any thread.
#[derive(Clone)]
pub struct Kek {
    /// Shared by the clones, so that when the handle goes stale (SoftHSM2
    /// drops the handles of private objects at logout) and the key is found
    /// again, every clone gets the new one.
    handle: Arc<Mutex<ObjectHandle>>,
    label: String,
    token: Arc<TokenInner>,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("label", &self.label).finish()
    }
}

impl Kek {
    fn new(handle: ObjectHandle, label: &str, token: &Arc<TokenInner>) -> Kek {
        Kek {
            handle: Arc::new(Mutex::new(handle)),
            label: label.to_owned(),
            token: Arc::clone(token),
        }
    }

    /// The key's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn handle(&self) -> ObjectHandle {
        *lock(&self.handle)
    }
}

/// Return values after which a KEK handle may work again once the key is
/// found anew by label (and the session logged in again).
fn kek_handle_lost(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::KeyHandleInvalid
            | RvError::ObjectHandleInvalid
            | RvError::WrappingKeyHandleInvalid
            | RvError::UnwrappingKeyHandleInvalid
            | RvError::UserNotLoggedIn
    )
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &self.token.label)
            .finish_non_exhaustive()
    }
}

/// A template that wipes any key value in it when dropped.
struct Template(Vec<Attribute>);

impl Drop for Template {
    fn drop(&mut self) {
        for attribute in &mut self.0 {
            if let Attribute::Value(value) = attribute {
                value.zeroize();
            }
        }
    }
}

/// A session object holding key material, destroyed whatever happens.
struct Transient<'a> {
    session: &'a cryptoki::session::Session,
    handle: ObjectHandle,
    destroyed: bool,
}

impl<'a> Transient<'a> {
    fn new(session: &'a cryptoki::session::Session, handle: ObjectHandle) -> Self {
        Transient {
            session,
            handle,
            destroyed: false,
        }
    }

    /// Destroys the object and reports whether that worked.
    fn destroy(mut self) -> Result<(), CkError> {
        self.destroyed = true;
        self.session.destroy_object(self.handle)
    }
}

impl Drop for Transient<'_> {
    fn drop(&mut self) {
        if !self.destroyed {
            // Best effort on an error path; a session object that outlives
            // this still dies with the session.
            let _ = self.session.destroy_object(self.handle);
        }
    }
}

/// The attributes of a key that exists only to be wrapped or read once.
fn transient_key_template(extra: Vec<Attribute>) -> Template {
    let mut attributes = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ];
    attributes.extend(extra);
    Template(attributes)
}

fn check_key_label(label: &str) -> Result<(), Error> {
    if label.is_empty() || label.len() > KEY_LABEL_BYTES_MAX {
        return Err(Error::InvalidArgument {
            detail: format!("key label must be 1 to {KEY_LABEL_BYTES_MAX} bytes"),
        });
    }
    Ok(())
}

impl Session {
    pub(crate) fn new(session: cryptoki::session::Session, token: Arc<TokenInner>) -> Self {
        Session { session, token }
    }

    /// The label of the token this session is on.
    pub fn token_label(&self) -> &str {
        &self.token.label
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx::token(&self.token.label)
    }

    /// Logs in again if the application's login was lost.
    pub(crate) fn ensure_logged_in(&self) -> Result<(), Error> {
        let info = self
            .session
            .get_session_info()
            .map_err(|e| self.ctx().map(e))?;
        match info.session_state() {
            SessionState::RwUser => Ok(()),
            _ => self.token.login(&self.session),
        }
    }

    fn key_not_found(&self, key: &str) -> Error {
        Error::KeyNotFound {
            token: self.token.label.clone(),
            key: key.to_owned(),
        }
    }

    fn rejected(&self, key: &str, reason: &'static str) -> Error {
        Error::KekRejected {
            token: self.token.label.clone(),
            key: key.to_owned(),
            reason,
        }
    }

    fn bad_response(&self, detail: String) -> Error {
        Error::BadResponse {
            token: self.token.label.clone(),
            detail,
        }
    }

    /// Handles of the AES token keys with this label.
    fn find_handles(&self, key_label: &str) -> Result<Vec<ObjectHandle>, Error> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ];
        self.session
            .find_objects(&template)
            .map_err(|e| self.ctx().map(e))
    }

    /// Finds the KEK with this label. `None` if there is none.
    ///
    /// A key found is checked before it is returned: a 256-bit AES key that
    /// can wrap and unwrap, is private and sensitive, and is not extractable;
    /// else [`Error::KekRejected`]. Two keys with the label give
    /// [`Error::KeyAmbiguous`].
    pub fn find_kek(&self, key_label: &str) -> Result<Option<Kek>, Error> {
        check_key_label(key_label)?;
        // Private objects are invisible to a session that is not logged in:
        // without this, a lost login would read as "no such key".
        self.ensure_logged_in()?;
        let handles = self.find_handles(key_label)?;
        let handle = match handles.as_slice() {
            [] => return Ok(None),
            [handle] => *handle,
            more => {
                return Err(Error::KeyAmbiguous {
                    token: self.token.label.clone(),
                    key: key_label.to_owned(),
                    count: more.len(),
                });
            }
        };
        self.check_kek_attributes(handle, key_label)?;
        Ok(Some(Kek::new(handle, key_label, &self.token)))
    }

    fn check_kek_attributes(&self, handle: ObjectHandle, key_label: &str) -> Result<(), Error> {
        let attributes = self
            .session
            .get_attributes(
                handle,
                &[
                    AttributeType::ValueLen,
                    AttributeType::Wrap,
                    AttributeType::Unwrap,
                    AttributeType::Extractable,
                    AttributeType::Sensitive,
                    AttributeType::Private,
                ],
            )
            .map_err(|e| self.ctx().map(e))?;
        let (mut value_len, mut wrap, mut unwrap, mut extractable, mut sensitive, mut private) =
            (None, None, None, None, None, None);
        for attribute in attributes {
            match attribute {
                Attribute::ValueLen(n) => value_len = Some(u64::from(n)),
                Attribute::Wrap(b) => wrap = Some(b),
                Attribute::Unwrap(b) => unwrap = Some(b),
                Attribute::Extractable(b) => extractable = Some(b),
                Attribute::Sensitive(b) => sensitive = Some(b),
                Attribute::Private(b) => private = Some(b),
                _ => {}
            }
        }
        let (
            Some(value_len),
            Some(wrap),
            Some(unwrap),
            Some(extractable),
            Some(sensitive),
            Some(private),
        ) = (value_len, wrap, unwrap, extractable, sensitive, private)
        else {
            return Err(self.bad_response(format!(
                "key {key_label:?}: the token did not return all of CKA_VALUE_LEN, CKA_WRAP, \
                 CKA_UNWRAP, CKA_EXTRACTABLE, CKA_SENSITIVE, CKA_PRIVATE"
            )));
        };
        let reason = if value_len != KEY_BYTES as u64 {
            "not a 256-bit AES key"
        } else if !(wrap && unwrap) {
            "cannot both wrap and unwrap"
        } else if extractable {
            "is extractable"
        } else if !sensitive {
            "is not sensitive"
        } else if !private {
            "is not private"
        } else {
            return Ok(());
        };
        Err(self.rejected(key_label, reason))
    }

    /// The labels of the AES token keys on the token (sorted, each once), so that the
    /// versions of a KEK can be found (`label`, `label.v2`, ...). Keys whose label is not
    /// UTF-8 are left out; more than [`KEK_LABELS_MAX`] keys are a [`Error::BadResponse`].
    pub fn kek_labels(&self) -> Result<Vec<String>, Error> {
        self.ensure_logged_in()?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
        ];
        let handles = self
            .session
            .find_objects(&template)
            .map_err(|e| self.ctx().map(e))?;
        if handles.len() > KEK_LABELS_MAX {
            return Err(self.bad_response(format!(
                "the token holds {} AES keys, more than the {KEK_LABELS_MAX} listed",
                handles.len()
            )));
        }
        let mut labels = Vec::with_capacity(handles.len());
        for handle in handles {
            let attributes = self
                .session
                .get_attributes(handle, &[AttributeType::Label])
                .map_err(|e| self.ctx().map(e))?;
            for attribute in attributes {
                if let Attribute::Label(bytes) = attribute
                    && let Ok(label) = String::from_utf8(bytes)
                {
                    labels.push(label);
                }
            }
        }
        labels.sort();
        labels.dedup();
        Ok(labels)
    }

    /// Destroys every AES token key labelled `key_label` (crypto-shredding: whatever was
    /// wrapped under it can no longer be unwrapped by anyone). Returns how many keys were
    /// destroyed (0 when there was none).
    pub fn destroy_kek(&self, key_label: &str) -> Result<usize, Error> {
        check_key_label(key_label)?;
        self.ensure_logged_in()?;
        let handles = self.find_handles(key_label)?;
        for handle in &handles {
            self.session
                .destroy_object(*handle)
                .map_err(|e| self.ctx().map(e))?;
        }
        Ok(handles.len())
    }

    /// Finds the KEK with this label; [`Error::KeyNotFound`] if there is none.
    pub fn kek(&self, key_label: &str) -> Result<Kek, Error> {
        self.find_kek(key_label)?
            .ok_or_else(|| self.key_not_found(key_label))
    }

    /// Generates a new KEK on the token: a 256-bit AES token key, private,
    /// sensitive, not extractable, for wrap and unwrap only.
    ///
    /// If a key with this label already exists, fails with
    /// [`Error::KeyExists`] and creates nothing. The new key's attributes are
    /// read back and checked like [`Session::find_kek`] does.
    ///
    /// Creation is serialised within the process. A process that finds two
    /// keys with the label right after creating one destroys its own and
    /// returns `KeyExists`; two processes creating the same label at the same
    /// moment may thus both back off. Provision KEKs from one place.
    pub fn create_kek(&self, key_label: &str) -> Result<Kek, Error> {
        check_key_label(key_label)?;
        let _one_at_a_time = lock(&self.token.create_lock);
        let exists = || Error::KeyExists {
            token: self.token.label.clone(),
            key: key_label.to_owned(),
        };
        match self.find_kek(key_label) {
            Ok(None) => {}
            Ok(Some(_)) | Err(Error::KeyAmbiguous { .. } | Error::KekRejected { .. }) => {
                return Err(exists());
            }
            Err(e) => return Err(e),
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen((KEY_BYTES as u64).into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
            Attribute::Modifiable(false),
            Attribute::Copyable(false),
            Attribute::Label(key_label.as_bytes().to_vec()),
        ];
        let handle = self
            .session
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(|e| self.ctx().with_mechanism(KEY_GEN).map(e))?;
        let checked = self.find_handles(key_label).and_then(|found| {
            if found.len() > 1 {
                return Err(exists());
            }
            self.check_kek_attributes(handle, key_label)
        });
        if let Err(e) = checked {
            let _ = self.session.destroy_object(handle);
            return Err(e);
        }
        Ok(Kek::new(handle, key_label, &self.token))
    }

    fn check_same_token(&self, kek: &Kek) -> Result<(), Error> {
        if Arc::ptr_eq(&kek.token, &self.token) {
            Ok(())
        } else {
            Err(self.rejected(&kek.label, "belongs to another token"))
        }
    }

    /// Maps errors that mean the KEK handle is gone (deleted since it was
    /// found); everything else the general way.
    fn map_kek_error(&self, kek: &Kek, e: CkError) -> Error {
        match e {
            CkError::Pkcs11(
                RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::WrappingKeyHandleInvalid
                | RvError::UnwrappingKeyHandleInvalid,
                _,
            ) => self.key_not_found(&kek.label),
            e => self.ctx().with_mechanism(KWP).map(e),
        }
    }

    /// Runs `op` with the KEK's handle. If the token says the handle is no
    /// longer valid, or the login is gone, finds the key again by label
    /// (logging in again first) and runs `op` once more with the new handle.
    fn with_kek<T>(
        &self,
        kek: &Kek,
        op: impl Fn(ObjectHandle) -> Result<T, CkError>,
        map: impl Fn(CkError) -> Error,
    ) -> Result<T, Error> {
        let handle = kek.handle();
        match op(handle) {
            Err(CkError::Pkcs11(rv, _)) if kek_handle_lost(rv) => {
                let fresh = self
                    .find_kek(&kek.label)?
                    .ok_or_else(|| self.key_not_found(&kek.label))?
                    .handle();
                *lock(&kek.handle) = fresh;
                op(fresh).map_err(map)
            }
            result => result.map_err(map),
        }
    }

    /// Creates a session object; logs in again first if the login was lost.
    fn create_transient(&self, template: &Template) -> Result<ObjectHandle, Error> {
        match self.session.create_object(&template.0) {
            Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) => {
                self.token.login(&self.session)?;
                self.session
                    .create_object(&template.0)
                    .map_err(|e| self.ctx().map(e))
            }
            result => result.map_err(|e| self.ctx().map(e)),
        }
    }

    /// Wraps a 256-bit key under the KEK with `CKM_AES_KEY_WRAP_PAD`
    /// (RFC 5649). The result is [`WRAPPED_KEY_BYTES`] (40) bytes.
    ///
    /// The key is imported as a session object (not extractable from the
    /// token afterwards, not stored), wrapped, and destroyed whatever happens.
    pub fn wrap_key(&self, kek: &Kek, key: &[u8; KEY_BYTES]) -> Result<Vec<u8>, Error> {
        self.wrap_with(kek, key, &Mechanism::AesKeyWrapPad, KWP)
    }

    pub(crate) fn wrap_with(
        &self,
        kek: &Kek,
        key: &[u8; KEY_BYTES],
        mechanism: &Mechanism<'_>,
        mechanism_name: &'static str,
    ) -> Result<Vec<u8>, Error> {
        self.check_same_token(kek)?;
        let template = transient_key_template(vec![Attribute::Value(key.to_vec())]);
        let object = self.create_transient(&template)?;
        drop(template);
        let object = Transient::new(&self.session, object);
        let wrapped = self.with_kek(
            kek,
            |kek_handle| self.session.wrap_key(mechanism, kek_handle, object.handle),
            |e| match e {
                CkError::Pkcs11(RvError::MechanismInvalid, _) => Error::MechanismNotSupported {
                    token: self.token.label.clone(),
                    mechanism: mechanism_name,
                },
                e => self.map_kek_error(kek, e),
            },
        )?;
        object.destroy().map_err(|e| self.ctx().map(e))?;
        if wrapped.len() != WRAPPED_KEY_BYTES {
            return Err(self.bad_response(format!(
                "C_WrapKey returned {} bytes, expected {WRAPPED_KEY_BYTES}",
                wrapped.len()
            )));
        }
        Ok(wrapped)
    }

    /// Unwraps a key wrapped by [`Session::wrap_key`] under the same KEK.
    ///
    /// Input that is not [`WRAPPED_KEY_BYTES`] long is refused before the HSM
    /// is asked. Bytes the token refuses (tampered with, or wrapped under
    /// another KEK) give [`Error::UnwrapRejected`]. The key is unwrapped to a
    /// session object, read, and the object destroyed whatever happens.
    pub fn unwrap_key(
        &self,
        kek: &Kek,
        wrapped: &[u8],
    ) -> Result<Zeroizing<[u8; KEY_BYTES]>, Error> {
        let rejected = |detail: String| Error::UnwrapRejected {
            token: self.token.label.clone(),
            key: kek.label.clone(),
            detail,
        };
        if wrapped.len() != WRAPPED_KEY_BYTES {
            return Err(rejected(format!(
                "wrapped key is {} bytes, expected {WRAPPED_KEY_BYTES}",
                wrapped.len()
            )));
        }
        self.check_same_token(kek)?;
        // No CKA_VALUE_LEN: SoftHSM2 refuses it in an unwrap template
        // (CKR_ATTRIBUTE_READ_ONLY). The length is checked on the value read
        // back instead; RFC 5649 lets 40 bytes carry a 25- to 32-byte key.
        let template = transient_key_template(vec![]);
        let object = self.with_kek(
            kek,
            |kek_handle| {
                self.session
                    .unwrap_key(&Mechanism::AesKeyWrapPad, kek_handle, wrapped, &template.0)
            },
            |e| match e {
                CkError::Pkcs11(
                    rv @ (RvError::WrappedKeyInvalid
                    | RvError::WrappedKeyLenRange
                    | RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError),
                    _,
                ) => rejected(rv_name(rv)),
                e => self.map_kek_error(kek, e),
            },
        )?;
        let object = Transient::new(&self.session, object);
        let attributes = self
            .session
            .get_attributes(object.handle, &[AttributeType::Value])
            .map_err(|e| self.ctx().map(e))?;
        let mut value: Option<Zeroizing<Vec<u8>>> = None;
        for attribute in attributes {
            if let Attribute::Value(v) = attribute {
                value = Some(Zeroizing::new(v));
            }
        }
        object.destroy().map_err(|e| self.ctx().map(e))?;
        let value = value.ok_or_else(|| {
            self.bad_response("C_GetAttributeValue did not return CKA_VALUE".to_owned())
        })?;
        if value.len() != KEY_BYTES {
            return Err(rejected(format!(
                "the unwrapped key is {} bytes, expected {KEY_BYTES}",
                value.len()
            )));
        }
        let mut key = Zeroizing::new([0u8; KEY_BYTES]);
        key.copy_from_slice(&value);
        Ok(key)
    }
}
