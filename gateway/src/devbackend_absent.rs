//! Stands in for the in-process S3 backend of `twofold serve --dev` (`devbackend.rs`) in a
//! build without the `dev-backend` feature, such as the Debian package's: starting it
//! fails, saying how to get a build that has it.

use std::net::SocketAddr;
use std::path::Path;

/// What `twofold serve --dev` says in a build without the dev backend.
pub const ABSENT: &str = "this twofold was built without the `dev-backend` feature, so \
    `serve --dev` has no S3 backend to run; build it with the feature (on by default): \
    `cargo run --release -p gateway -- serve --dev`, or `serve --config FILE` with a real backend";

/// Never exists in this build: [`DevBackend::start`] always fails.
#[derive(Debug)]
pub struct DevBackend {
    never: std::convert::Infallible,
}

impl DevBackend {
    /// Fails: this build has no dev backend.
    pub fn start(
        _listen: SocketAddr,
        _root: &Path,
        _access_key: &str,
        _secret_key: &str,
    ) -> std::io::Result<DevBackend> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, ABSENT))
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        match self.never {}
    }

    /// The folder holding its buckets.
    pub fn root(&self) -> &Path {
        match self.never {}
    }
}

/// Stops the backend, as the real one's does (there is none to stop here).
impl Drop for DevBackend {
    fn drop(&mut self) {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn starting_it_fails_saying_how_to_get_it() {
        let e = super::DevBackend::start(
            "127.0.0.1:0".parse().unwrap(),
            std::path::Path::new("."),
            "a",
            "b",
        )
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("dev-backend"), "{e}");
    }
}
