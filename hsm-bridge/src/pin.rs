//! The token user PIN: read from a file or the environment, zeroised on drop,
//! never printed.

use std::fmt;
use std::io::Read;
use std::path::Path;

use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::Error;

/// A PKCS#11 PIN. Its memory is wiped on drop and `Debug` prints
/// `Pin(<hidden>)`; it has no `Display`.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<hidden>)")
    }
}

impl Pin {
    /// Reads the PIN from a file, dropping one trailing `\n` (or `\r\n`).
    ///
    /// Fails with [`Error::PinUnavailable`] naming the path if the file cannot
    /// be read, is not UTF-8, or holds an empty PIN.
    pub fn from_file(path: &Path) -> Result<Pin, Error> {
        let unavailable = |detail: String| Error::PinUnavailable {
            origin: format!("file {}", path.display()),
            detail,
        };
        let mut file = std::fs::File::open(path).map_err(|e| unavailable(e.to_string()))?;
        // Sized up front so that reading does not reallocate and leave
        // unwiped copies of the PIN behind.
        let len_bytes = file
            .metadata()
            .map(|m| usize::try_from(m.len()).unwrap_or(0))
            .unwrap_or(0);
        let mut text = Zeroizing::new(String::with_capacity(len_bytes.saturating_add(1)));
        file.read_to_string(&mut text)
            .map_err(|e| unavailable(e.to_string()))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        if text.is_empty() {
            return Err(unavailable("the file holds no PIN".to_owned()));
        }
        Ok(Pin(text))
    }

    /// Reads the PIN from an environment variable.
    ///
    /// Fails with [`Error::PinUnavailable`] naming the variable if it is
    /// unset, not UTF-8, or empty.
    pub fn from_env(var: &str) -> Result<Pin, Error> {
        let unavailable = |detail: &str| Error::PinUnavailable {
            origin: format!("environment variable {var}"),
            detail: detail.to_owned(),
        };
        match std::env::var(var) {
            Ok(value) => {
                let value = Zeroizing::new(value);
                if value.is_empty() {
                    Err(unavailable("set but empty"))
                } else {
                    Ok(Pin(value))
                }
            }
            Err(std::env::VarError::NotPresent) => Err(unavailable("not set")),
            Err(std::env::VarError::NotUnicode(_)) => Err(unavailable("not valid UTF-8")),
        }
    }

    /// A PIN given in code. For development setup and tests only: a real
    /// deployment reads it with [`Pin::from_file`] or [`Pin::from_env`].
    pub fn from_dev_string(s: &str) -> Pin {
        Pin(Zeroizing::new(s.to_owned()))
    }

    /// The PIN in the form cryptoki takes (a `SecretString`, wiped on drop).
    pub(crate) fn auth_pin(&self) -> AuthPin {
        AuthPin::from(self.0.as_str())
    }

    /// Compares two PINs without an early exit on the first differing byte.
    pub(crate) fn same_as(&self, other: &Pin) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_pin() {
        let pin = Pin::from_dev_string("1234");
        assert_eq!(format!("{pin:?}"), "Pin(<hidden>)");
    }

    #[test]
    fn compare() {
        let a = Pin::from_dev_string("1234");
        assert!(a.same_as(&Pin::from_dev_string("1234")));
        assert!(!a.same_as(&Pin::from_dev_string("1235")));
        assert!(!a.same_as(&Pin::from_dev_string("12345")));
    }
}
