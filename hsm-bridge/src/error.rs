//! The crate's one error type, and the mapping from PKCS#11 return values to it.
//!
//! Every variant names what failed and for which module, token or key. None
//! carries key bytes or PINs. Each variant's doc says whose fault it is.

use std::path::PathBuf;

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};

/// What went wrong talking to the HSM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Configuration: the PKCS#11 module file does not exist.
    #[error("PKCS#11 module {} not found", path.display())]
    ModuleNotFound {
        /// The path that was tried.
        path: PathBuf,
    },

    /// HSM/configuration: the module exists but could not be loaded or
    /// initialised (not a PKCS#11 library, or `C_Initialize` failed, e.g. a
    /// bad `SOFTHSM2_CONF`).
    #[error("PKCS#11 module {} could not be loaded: {detail}", path.display())]
    ModuleLoad {
        /// The module path.
        path: PathBuf,
        /// What failed.
        detail: String,
    },

    /// Configuration: no initialised token carries this label.
    #[error("no PKCS#11 token labelled {label:?}")]
    TokenNotFound {
        /// The label that was looked for.
        label: String,
    },

    /// Caller: `init_token` was asked for a label that is already taken.
    #[error("a PKCS#11 token labelled {label:?} already exists")]
    TokenExists {
        /// The label.
        label: String,
    },

    /// HSM setup: more than one token carries this label, so which one is
    /// meant cannot be told.
    #[error("{count} PKCS#11 tokens are labelled {label:?}; labels must be unique")]
    TokenAmbiguous {
        /// The label.
        label: String,
        /// How many tokens carry it.
        count: usize,
    },

    /// Configuration: the user PIN was refused (`CKR_PIN_INCORRECT`,
    /// `CKR_PIN_LEN_RANGE`).
    #[error("wrong PIN for PKCS#11 token {label:?}")]
    WrongPin {
        /// The token label.
        label: String,
    },

    /// HSM: the user PIN is locked (too many wrong attempts).
    #[error("the user PIN of PKCS#11 token {label:?} is locked")]
    PinLocked {
        /// The token label.
        label: String,
    },

    /// Configuration: the PIN could not be read.
    #[error("PIN unavailable from {origin}: {detail}")]
    PinUnavailable {
        /// Where it was looked for: `file /path` or `environment variable NAME`.
        origin: String,
        /// Why it could not be had (unreadable, unset, empty...).
        detail: String,
    },

    /// Configuration/data: no key-encryption key with this label on the token.
    #[error("no key {key:?} on PKCS#11 token {token:?}")]
    KeyNotFound {
        /// The token label.
        token: String,
        /// The key label.
        key: String,
    },

    /// Caller: `create_kek` was asked for a label that is already taken.
    #[error("key {key:?} already exists on PKCS#11 token {token:?}")]
    KeyExists {
        /// The token label.
        token: String,
        /// The key label.
        key: String,
    },

    /// HSM setup: more than one key carries this label.
    #[error("{count} keys are labelled {key:?} on PKCS#11 token {token:?}; labels must be unique")]
    KeyAmbiguous {
        /// The token label.
        token: String,
        /// The key label.
        key: String,
        /// How many keys carry it.
        count: usize,
    },

    /// HSM setup: a key with this label exists but is not fit to be a KEK
    /// (wrong size, extractable, cannot wrap...), or belongs to another token.
    #[error("key {key:?} on PKCS#11 token {token:?} is not usable as a KEK: {reason}")]
    KekRejected {
        /// The token label.
        token: String,
        /// The key label.
        key: String,
        /// Which check failed.
        reason: &'static str,
    },

    /// HSM: the token lacks a mechanism this crate needs.
    #[error("PKCS#11 token {token:?} does not support {mechanism}")]
    MechanismNotSupported {
        /// The token label.
        token: String,
        /// The mechanism, as `CKM_...`.
        mechanism: &'static str,
    },

    /// HSM (transient): the token or session went away or failed; retrying
    /// later, with a new session, may work.
    #[error("PKCS#11 token {label:?} unavailable: {detail}")]
    TokenUnavailable {
        /// The token label.
        label: String,
        /// The function and return value.
        detail: String,
    },

    /// Data: the token refused the wrapped bytes (corrupt, tampered with,
    /// wrapped under another KEK, or of the wrong length).
    #[error("unwrap under key {key:?} on PKCS#11 token {token:?} rejected: {detail}")]
    UnwrapRejected {
        /// The token label.
        token: String,
        /// The KEK label.
        key: String,
        /// Why (length, or the return value).
        detail: String,
    },

    /// HSM: the token answered with something malformed.
    #[error("malformed answer from PKCS#11 token {token:?}: {detail}")]
    BadResponse {
        /// The token label (or the module path when no token is involved).
        token: String,
        /// What was wrong with it.
        detail: String,
    },

    /// HSM: any other PKCS#11 failure.
    #[error("{function} failed on {target}: {rv}")]
    Pkcs11 {
        /// `token "LABEL"` or `module PATH`.
        target: String,
        /// The PKCS#11 function, as `C_...`.
        function: String,
        /// The return value, as `CKR_...`.
        rv: String,
    },

    /// Caller: an argument was refused before anything was sent to the HSM.
    #[error("invalid argument: {detail}")]
    InvalidArgument {
        /// What was wrong.
        detail: String,
    },

    /// Internal: the HSM worker thread that took the job is gone (its job
    /// panicked, or the pool was shut down).
    #[error("HSM worker thread gone")]
    WorkerGone,
}

impl Error {
    /// True where the failure is transient or the HSM is not reachable, so the
    /// gateway should answer 503 and the client may retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Error::TokenUnavailable { .. } | Error::WorkerGone | Error::ModuleLoad { .. }
        )
    }
}

/// `PinIncorrect` -> `CKR_PIN_INCORRECT`; vendor codes keep their number.
pub(crate) fn rv_name(rv: RvError) -> String {
    let debug = format!("{rv:?}");
    let (name, rest) = match debug.find('(') {
        Some(i) => debug.split_at(i),
        None => (debug.as_str(), ""),
    };
    let mut out = String::from("CKR");
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out.push_str(rest);
    out
}

/// `Function::WrapKey` -> `C_WrapKey`.
pub(crate) fn function_name(function: Function) -> String {
    format!("C_{function:?}")
}

/// A cryptoki error in this crate's terms: `C_Function: CKR_VALUE`.
pub(crate) fn describe(err: &CkError) -> String {
    match err {
        CkError::Pkcs11(rv, function) => format!("{}: {}", function_name(*function), rv_name(*rv)),
        other => other.to_string(),
    }
}

/// True for return values that mean the token, device or session is gone.
pub(crate) fn rv_is_unavailable(rv: RvError) -> bool {
    matches!(
        rv,
        RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::TokenNotRecognized
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::SessionCount
            | RvError::HostMemory
            | RvError::CryptokiNotInitialized
            | RvError::UserNotLoggedIn
    )
}

/// What an operation was about, for naming it in errors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    /// Token label.
    pub token: &'a str,
    /// Mechanism used by the call, if any, for `MechanismNotSupported`.
    pub mechanism: Option<&'static str>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn token(token: &'a str) -> Self {
        Ctx {
            token,
            mechanism: None,
        }
    }

    pub(crate) fn with_mechanism(self, mechanism: &'static str) -> Self {
        Ctx {
            mechanism: Some(mechanism),
            ..self
        }
    }

    /// The general mapping of a cryptoki error; call sites match the return
    /// values that mean something particular to them first.
    pub(crate) fn map(&self, err: CkError) -> Error {
        match err {
            CkError::Pkcs11(rv, function) => self.map_rv(rv, function),
            CkError::LibraryLoading(e) => Error::Pkcs11 {
                target: format!("token {:?}", self.token),
                function: "library loading".to_owned(),
                rv: e.to_string(),
            },
            CkError::NullFunctionPointer | CkError::MissingSymbol(_) | CkError::NotSupported => {
                Error::Pkcs11 {
                    target: format!("token {:?}", self.token),
                    function: "function lookup".to_owned(),
                    rv: err.to_string(),
                }
            }
            // Conversion failures of what the module returned.
            other => Error::BadResponse {
                token: self.token.to_owned(),
                detail: other.to_string(),
            },
        }
    }

    pub(crate) fn map_rv(&self, rv: RvError, function: Function) -> Error {
        let label = self.token.to_owned();
        match rv {
            RvError::PinIncorrect | RvError::PinLenRange => Error::WrongPin { label },
            RvError::PinLocked => Error::PinLocked { label },
            RvError::MechanismInvalid => match self.mechanism {
                Some(mechanism) => Error::MechanismNotSupported {
                    token: label,
                    mechanism,
                },
                None => self.pkcs11(rv, function),
            },
            rv if rv_is_unavailable(rv) => Error::TokenUnavailable {
                label,
                detail: format!("{}: {}", function_name(function), rv_name(rv)),
            },
            rv => self.pkcs11(rv, function),
        }
    }

    fn pkcs11(&self, rv: RvError, function: Function) -> Error {
        Error::Pkcs11 {
            target: format!("token {:?}", self.token),
            function: function_name(function),
            rv: rv_name(rv),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(rv_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(rv_name(RvError::GeneralError), "CKR_GENERAL_ERROR");
        assert_eq!(
            rv_name(RvError::VendorDefined(0x8000_0001)),
            "CKR_VENDOR_DEFINED(2147483649)"
        );
        assert_eq!(function_name(Function::WrapKey), "C_WrapKey");
    }

    #[test]
    fn unavailable() {
        assert!(Error::WorkerGone.is_unavailable());
        assert!(
            !Error::WrongPin {
                label: "x".to_owned()
            }
            .is_unavailable()
        );
    }
}
