//! A logged-in token, found by label; sessions are opened from it.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;

use crate::error::Ctx;
use crate::module::{self, Module, lock};
use crate::{Error, Pin, Session};

/// Where the KEKs live: which module, which token, and the user PIN.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    /// The PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module_path: PathBuf,
    /// The token label, as set at `C_InitToken` (at most 32 bytes).
    pub token_label: String,
    /// The user PIN.
    pub pin: Pin,
}

/// A logged-in token. Cheap to clone; `Send + Sync`. Sessions come from it.
///
/// Opening the same token twice in a process gives the same login (PKCS#11
/// logs in per application, not per session); the second open must still
/// present the same PIN. The login lasts until the last `Token` and
/// [`Session`] of it are dropped.
#[derive(Clone)]
pub struct Token {
    pub(crate) inner: Arc<TokenInner>,
}

pub(crate) struct TokenInner {
    pub(crate) module: Arc<Module>,
    /// The slot; looked up again by label when the module no longer knows it (a module
    /// initialised again, a token re-inserted: slot ids can change).
    slot: Mutex<Slot>,
    pub(crate) label: String,
    pin: Pin,
    /// A session held open for the life of the token, so that the login
    /// does not lapse while no other session is open. Only its existence
    /// matters; the mutex makes the token `Sync`.
    _login: Mutex<cryptoki::session::Session>,
    /// Serialises `create_kek` in this process (check, then create).
    pub(crate) create_lock: Mutex<()>,
}

/// The open tokens of this process, by module and slot, so that a second
/// `open` shares the first one's login.
static TOKENS: Mutex<Vec<Weak<TokenInner>>> = Mutex::new(Vec::new());

/// A mechanism the gateway cannot work without, and the use it must allow.
struct Required {
    mechanism: MechanismType,
    name: &'static str,
    allows: fn(&cryptoki::mechanism::MechanismInfo) -> bool,
}

const REQUIRED: [Required; 2] = [
    Required {
        mechanism: MechanismType::AES_KEY_GEN,
        name: "CKM_AES_KEY_GEN",
        allows: |info| info.generate(),
    },
    Required {
        mechanism: MechanismType::AES_KEY_WRAP_PAD,
        name: "CKM_AES_KEY_WRAP_PAD",
        allows: |info| info.wrap() && info.unwrap(),
    },
];

/// The first required mechanism missing from `available`.
fn first_missing(available: &[MechanismType]) -> Option<&'static str> {
    REQUIRED
        .iter()
        .find(|r| !available.contains(&r.mechanism))
        .map(|r| r.name)
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.inner.label)
            .field("module", &self.inner.module.path)
            .field("slot", &self.inner.slot().id())
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Loads the module (once per process), finds the token by label, logs in
    /// as user and checks that the token offers `CKM_AES_KEY_GEN` and
    /// `CKM_AES_KEY_WRAP_PAD`.
    ///
    /// For SoftHSM2 the caller must have set `SOFTHSM2_CONF` before the first
    /// call into the module.
    ///
    /// Errors: [`Error::ModuleNotFound`], [`Error::ModuleLoad`],
    /// [`Error::TokenNotFound`], [`Error::TokenAmbiguous`], [`Error::WrongPin`],
    /// [`Error::PinLocked`], [`Error::MechanismNotSupported`].
    pub fn open(cfg: &TokenConfig) -> Result<Token, Error> {
        module::check_token_label(&cfg.token_label)?;
        let module = module::load(&cfg.module_path)?;
        let label = cfg.token_label.as_str();
        let ctx = Ctx::token(label);
        let slot = module.token_slot(&crate::module::hold_slots(), label)?;

        let mut tokens = lock(&TOKENS);
        tokens.retain(|t| t.strong_count() > 0);
        let open_already = tokens
            .iter()
            .filter_map(Weak::upgrade)
            .find(|t| Arc::ptr_eq(&t.module, &module) && t.slot() == slot);
        if let Some(inner) = open_already {
            return if inner.pin.same_as(&cfg.pin) {
                Ok(Token { inner })
            } else {
                Err(Error::WrongPin {
                    label: label.to_owned(),
                })
            };
        }

        check_mechanisms(&module, slot, label)?;
        let session = module.ctx.open_rw_session(slot).map_err(|e| ctx.map(e))?;
        match session.login(UserType::User, Some(&cfg.pin.auth_pin())) {
            Ok(()) => {}
            // Logged in by a session this crate does not know of: log out and
            // in again, so that the PIN is checked all the same.
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                session.logout().map_err(|e| ctx.map(e))?;
                session
                    .login(UserType::User, Some(&cfg.pin.auth_pin()))
                    .map_err(|e| ctx.map(e))?;
            }
            Err(e) => return Err(ctx.map(e)),
        }
        let inner = Arc::new(TokenInner {
            module,
            slot: Mutex::new(slot),
            label: label.to_owned(),
            pin: cfg.pin.clone(),
            _login: Mutex::new(session),
            create_lock: Mutex::new(()),
        });
        tokens.push(Arc::downgrade(&inner));
        Ok(Token { inner })
    }

    /// The token label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// Opens a new read/write session, logged in. A session belongs to one
    /// thread at a time (it is `Send`, not `Sync`).
    pub fn session(&self) -> Result<Session, Error> {
        let ctx = Ctx::token(&self.inner.label);
        let module = &self.inner.module;
        let session = match module.ctx.open_rw_session(self.inner.slot()) {
            Ok(session) => session,
            Err(CkError::Pkcs11(
                RvError::SlotIdInvalid | RvError::TokenNotPresent | RvError::DeviceRemoved,
                _,
            )) => {
                // The module was initialised again or the token re-inserted, and slot ids
                // can change with that: find the token by its label again.
                let slot = module.token_slot(&crate::module::hold_slots(), &self.inner.label)?;
                *lock(&self.inner.slot) = slot;
                module.ctx.open_rw_session(slot).map_err(|e| ctx.map(e))?
            }
            Err(e) => return Err(ctx.map(e)),
        };
        let session = Session::new(session, Arc::clone(&self.inner));
        session.ensure_logged_in()?;
        Ok(session)
    }
}

impl TokenInner {
    /// The slot the token is in now.
    pub(crate) fn slot(&self) -> Slot {
        *lock(&self.slot)
    }

    /// Logs the application in again (after the login was lost, e.g. every
    /// session was closed from elsewhere). Already logged in is fine.
    pub(crate) fn login(&self, session: &cryptoki::session::Session) -> Result<(), Error> {
        match session.login(UserType::User, Some(&self.pin.auth_pin())) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(e) => Err(Ctx::token(&self.label).map(e)),
        }
    }
}

fn check_mechanisms(module: &Module, slot: Slot, label: &str) -> Result<(), Error> {
    let ctx = Ctx::token(label);
    let available = module
        .ctx
        .get_mechanism_list(slot)
        .map_err(|e| ctx.map(e))?;
    let missing = |mechanism| Error::MechanismNotSupported {
        token: label.to_owned(),
        mechanism,
    };
    if let Some(name) = first_missing(&available) {
        return Err(missing(name));
    }
    for required in &REQUIRED {
        let info = module
            .ctx
            .get_mechanism_info(slot, required.mechanism)
            .map_err(|e| match e {
                CkError::Pkcs11(RvError::MechanismInvalid, _) => missing(required.name),
                e => ctx.map(e),
            })?;
        if !(required.allows)(&info) {
            return Err(missing(required.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_mechanisms_are_named() {
        assert_eq!(
            first_missing(&[MechanismType::AES_KEY_GEN, MechanismType::AES_KEY_WRAP_PAD]),
            None
        );
        assert_eq!(
            first_missing(&[MechanismType::AES_KEY_GEN, MechanismType::AES_KEY_WRAP]),
            Some("CKM_AES_KEY_WRAP_PAD")
        );
        assert_eq!(first_missing(&[]), Some("CKM_AES_KEY_GEN"));
    }
}
