//! The process-wide registry of loaded PKCS#11 modules, token lookup by label,
//! and creating tokens for development and tests.
//!
//! `C_Initialize` may be called only once per module per process, so each
//! module is loaded and initialised once, kept for the life of the process,
//! and never finalised.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::UserType;
use cryptoki::slot::Slot;

use crate::error::{Ctx, describe, rv_name};
use crate::{Error, Pin};

/// The longest token label PKCS#11 can hold (`CK_TOKEN_INFO.label`).
pub(crate) const TOKEN_LABEL_BYTES_MAX: usize = 32;

/// A loaded and initialised PKCS#11 module.
pub(crate) struct Module {
    /// The canonical path it was loaded from.
    pub(crate) path: PathBuf,
    pub(crate) ctx: Pkcs11,
}

/// Every module this process has loaded, by canonical path.
static MODULES: Mutex<Vec<Arc<Module>>> = Mutex::new(Vec::new());

/// Serialises, within the process, every listing of a module's slots and
/// every token creation. Two callers of `init_token` must not take the same
/// free slot (the second `C_InitToken` would wipe the first one's token), and
/// SoftHSM2 rebuilds its slot table on each `C_GetSlotList`: two threads doing
/// so at once, or one doing so while another's `C_InitToken` adds a token, can
/// insert one token twice and abort the whole process (an assertion in its
/// `SlotManager::insertToken`). Slots are listed when a token is opened or
/// reopened and when one is created, never per request.
static SLOTS_LOCK: Mutex<()> = Mutex::new(());

/// Proof that the caller holds [`SLOTS_LOCK`], which the slot listings need.
#[derive(Debug)]
pub(crate) struct SlotsHeld {
    _guard: MutexGuard<'static, ()>,
}

/// Takes [`SLOTS_LOCK`] for the listings and token creation that follow.
pub(crate) fn hold_slots() -> SlotsHeld {
    SlotsHeld {
        _guard: lock(&SLOTS_LOCK),
    }
}

/// Locks a mutex, going on after a panic elsewhere: every value guarded in
/// this crate stays consistent across a panic (a registry of `Arc`s, a
/// session handle, `()`).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Loads and initialises the module at `path`, or returns the one already
/// loaded from the same file.
pub(crate) fn load(path: &Path) -> Result<Arc<Module>, Error> {
    let canonical = match path.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ModuleNotFound {
                path: path.to_owned(),
            });
        }
        Err(e) => {
            return Err(Error::ModuleLoad {
                path: path.to_owned(),
                detail: e.to_string(),
            });
        }
    };
    if !canonical.is_file() {
        return Err(Error::ModuleLoad {
            path: path.to_owned(),
            detail: "not a file".to_owned(),
        });
    }
    let mut modules = lock(&MODULES);
    if let Some(module) = modules.iter().find(|m| m.path == canonical) {
        return Ok(Arc::clone(module));
    }
    let ctx = Pkcs11::new(&canonical).map_err(|e| Error::ModuleLoad {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Someone else in this process initialised it first: it is usable.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(CkError::Pkcs11(rv, _)) => {
            return Err(Error::ModuleLoad {
                path: path.to_owned(),
                detail: format!(
                    "C_Initialize: {} (for SoftHSM2, check the file SOFTHSM2_CONF names)",
                    rv_name(rv)
                ),
            });
        }
        Err(e) => {
            return Err(Error::ModuleLoad {
                path: path.to_owned(),
                detail: format!("C_Initialize: {e}"),
            });
        }
    }
    let module = Arc::new(Module {
        path: canonical,
        ctx,
    });
    modules.push(Arc::clone(&module));
    Ok(module)
}

/// Refuses labels PKCS#11 cannot hold or that could never match.
pub(crate) fn check_token_label(label: &str) -> Result<(), Error> {
    let problem = if label.is_empty() {
        "is empty"
    } else if label.len() > TOKEN_LABEL_BYTES_MAX {
        "is longer than 32 bytes"
    } else if label.ends_with(' ') {
        "ends with a space (PKCS#11 pads labels with spaces)"
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument {
        detail: format!("token label {label:?} {problem}"),
    })
}

impl Module {
    /// The slots holding an initialised token with this label.
    ///
    /// A slot whose token cannot be read (SoftHSM2 answers
    /// `CKR_GENERAL_ERROR` for a token whose files were deleted) does not
    /// stop the search for the others; but if the label is found nowhere
    /// else, that token may be the one sought, so the answer is
    /// [`Error::TokenUnavailable`] rather than "not found".
    pub(crate) fn token_slots(&self, _held: &SlotsHeld, label: &str) -> Result<Vec<Slot>, Error> {
        let ctx = Ctx::token(label);
        let slots = self.ctx.get_slots_with_token().map_err(|e| ctx.map(e))?;
        let mut found = Vec::new();
        let mut unreadable = None;
        for slot in slots {
            let info = match self.ctx.get_token_info(slot) {
                Ok(info) => info,
                // Removed between the listing and now: not ours.
                Err(CkError::Pkcs11(RvError::TokenNotPresent | RvError::SlotIdInvalid, _)) => {
                    continue;
                }
                Err(e) => {
                    unreadable.get_or_insert(e);
                    continue;
                }
            };
            // cryptoki has already cut the space padding off the label.
            if info.token_initialized() && info.label() == label {
                found.push(slot);
            }
        }
        match unreadable {
            Some(e) if found.is_empty() => Err(Error::TokenUnavailable {
                label: label.to_owned(),
                detail: format!("a token in the module cannot be read ({})", describe(&e)),
            }),
            _ => Ok(found),
        }
    }

    /// The one slot holding the token with this label.
    pub(crate) fn token_slot(&self, held: &SlotsHeld, label: &str) -> Result<Slot, Error> {
        let slots = self.token_slots(held, label)?;
        match slots.as_slice() {
            [] => Err(Error::TokenNotFound {
                label: label.to_owned(),
            }),
            [slot] => Ok(*slot),
            more => Err(Error::TokenAmbiguous {
                label: label.to_owned(),
                count: more.len(),
            }),
        }
    }

    /// A slot whose token is present but not initialised.
    fn free_slot(&self, _held: &SlotsHeld, label: &str) -> Result<Option<Slot>, Error> {
        let ctx = Ctx::token(label);
        let slots = self.ctx.get_slots_with_token().map_err(|e| ctx.map(e))?;
        for slot in slots {
            match self.ctx.get_token_info(slot) {
                Ok(info) if !info.token_initialized() => return Ok(Some(slot)),
                // Initialised, gone, or unreadable: not free.
                Ok(_) | Err(_) => {}
            }
        }
        Ok(None)
    }
}

/// Creates and initialises a new token labelled `label` on a free slot:
/// `C_InitToken` with the SO PIN, then `C_InitPIN` for the user PIN.
///
/// For development mode and tests (SoftHSM2 always offers one free slot). It
/// works in a process that has already initialised the module. Calls within
/// one process are serialised; two processes creating tokens at once in the
/// same token directory are not protected from each other.
///
/// Fails with [`Error::TokenExists`] if a token already has this label, and
/// [`Error::TokenUnavailable`] if no slot is free. For SoftHSM2 the caller
/// must have set `SOFTHSM2_CONF` before the first call into the module.
pub fn init_token(
    module_path: &Path,
    label: &str,
    so_pin: &Pin,
    user_pin: &Pin,
) -> Result<(), Error> {
    check_token_label(label)?;
    let module = load(module_path)?;
    let held = hold_slots();
    let ctx = Ctx::token(label);
    if !module.token_slots(&held, label)?.is_empty() {
        return Err(Error::TokenExists {
            label: label.to_owned(),
        });
    }
    let free = module
        .free_slot(&held, label)?
        .ok_or_else(|| Error::TokenUnavailable {
            label: label.to_owned(),
            detail: "no slot with an uninitialised token is free".to_owned(),
        })?;
    module
        .ctx
        .init_token(free, &so_pin.auth_pin(), label)
        .map_err(|e| ctx.map(e))?;
    // SoftHSM2 gives an initialised token a new slot id: find it again.
    let slot = module.token_slot(&held, label)?;
    let session = module.ctx.open_rw_session(slot).map_err(|e| ctx.map(e))?;
    session
        .login(UserType::So, Some(&so_pin.auth_pin()))
        .map_err(|e| ctx.map(e))?;
    session
        .init_pin(&user_pin.auth_pin())
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::PinLenRange | RvError::PinInvalid, _) => {
                Error::InvalidArgument {
                    detail: format!("the user PIN is not acceptable to token {label:?}"),
                }
            }
            e => ctx.map(e),
        })?;
    session.logout().map_err(|e| ctx.map(e))?;
    Ok(())
}

/// True if an initialised token with this label exists in the module.
pub fn token_exists(module_path: &Path, label: &str) -> Result<bool, Error> {
    check_token_label(label)?;
    let module = load(module_path)?;
    Ok(!module.token_slots(&hold_slots(), label)?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(check_token_label("twofold").is_ok());
        assert!(check_token_label(&"x".repeat(32)).is_ok());
        assert!(check_token_label(&"x".repeat(33)).is_err());
        assert!(check_token_label("").is_err());
        assert!(check_token_label("a ").is_err());
    }
}
