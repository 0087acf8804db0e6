//! Files that hold secrets (PINs, secret access keys, local KEK files) must be readable and
//! writable by their owner only: one check, used wherever Twofold reads such a file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Permission bits a secret file must not have: any access by group or others.
pub const GROUP_OTHER_MODE_BITS: u32 = 0o077;

/// Why a secret file is refused. Displayed as `PATH: REASON`, on one line.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", self.path().display(), self.reason())]
pub enum PrivateFileError {
    /// Its metadata could not be read (missing, no permission...): the operator's to fix.
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read or write it: the operator's to fix.
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl PrivateFileError {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        match self {
            PrivateFileError::Io { path, .. } | PrivateFileError::Exposed { path, .. } => path,
        }
    }

    /// What is wrong and, for a too-open file, what to do, without the path.
    pub fn reason(&self) -> String {
        match self {
            PrivateFileError::Io { source, .. } => source.to_string(),
            PrivateFileError::Exposed { mode, .. } => format!(
                "readable or writable by group or others (mode {mode:03o}); run chmod 600 on it"
            ),
        }
    }
}

/// Checks that `path` grants nothing to group or others (mode 0600 or narrower).
pub fn check_owner_only(path: &Path) -> Result<(), PrivateFileError> {
    let meta = std::fs::metadata(path).map_err(|source| PrivateFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & GROUP_OTHER_MODE_BITS != 0 {
        return Err(PrivateFileError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with_mode(dir: &Path, mode: u32) -> PathBuf {
        let path = dir.join(format!("f{mode:o}"));
        std::fs::write(&path, "secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn owner_only_modes_pass() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o400, 0o700] {
            check_owner_only(&file_with_mode(dir.path(), mode)).unwrap();
        }
    }

    #[test]
    fn group_or_world_access_is_refused_naming_the_file_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
            let path = file_with_mode(dir.path(), mode);
            let e = check_owner_only(&path).unwrap_err();
            let said = e.to_string();
            assert!(matches!(e, PrivateFileError::Exposed { .. }), "{said}");
            assert!(said.contains(&path.display().to_string()), "{said}");
            assert!(said.contains("chmod 600"), "{said}");
            assert!(said.contains(&format!("{mode:03o}")), "{said}");
            assert_eq!(said.lines().count(), 1);
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let e = check_owner_only(Path::new("/nonexistent/twofold.pin")).unwrap_err();
        assert!(matches!(e, PrivateFileError::Io { .. }));
        assert!(e.to_string().contains("/nonexistent/twofold.pin"));
    }
}
