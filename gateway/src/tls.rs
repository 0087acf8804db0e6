//! TLS on both sides of the gateway (`docs/adr/0002-tls.md`): the client-facing
//! certificate, loaded from PEM files and reloadable while the gateway runs, and the
//! trust roots the gateway checks the backend's certificate against. Both use rustls on
//! AWS-LC; the handshakes and record layer run on each core's compio runtime
//! (`compio::tls`).

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Largest certificate-chain or key file read (a chain of a few certificates is ~10 KiB).
pub const PEM_FILE_BYTES_MAX: u64 = 1024 * 1024;

/// What went wrong loading TLS material: always the operator's files (or the host's trust
/// store), never a client's doing.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what it should be (no certificate, no key, bad PEM, too big).
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the material (for example the key does not match the certificate).
    #[error("{0}")]
    Rustls(String),
    /// No trust roots could be loaded for the backend.
    #[error("no trusted root certificates: {0}")]
    NoRoots(String),
}

/// The crypto provider both sides use: AWS-LC, the outer layer's implementation.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn read_pem_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, TlsError> {
    let read = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > PEM_FILE_BYTES_MAX {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: format!("over {PEM_FILE_BYTES_MAX} bytes"),
        });
    }
    Ok(zeroize::Zeroizing::new(std::fs::read(path).map_err(read)?))
}

/// Reads every certificate of a PEM file (a chain: leaf first, or a CA bundle).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            message: format!("unparsable PEM: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            message: "no CERTIFICATE block".into(),
        });
    }
    Ok(certs)
}

/// The subject and expiry (Unix seconds) of the first certificate of a PEM chain: what the
/// console shows of the certificate clients see.
pub fn leaf_validity(path: &Path) -> Result<(String, i64), TlsError> {
    let invalid = |message: String| TlsError::Pem {
        path: path.to_path_buf(),
        message,
    };
    let chain = read_certificates(path)?;
    let leaf = chain
        .first()
        .ok_or_else(|| invalid("no certificate".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| invalid(format!("the certificate does not parse: {e}")))?;
    Ok((
        cert.subject().to_string(),
        cert.validity().not_after.timestamp(),
    ))
}

/// Builds the client-facing configuration from a PEM certificate chain and a PEM private
/// key (PKCS#8, PKCS#1 or SEC1). Fails if the key does not match the certificate.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certificates(cert)?;
    let key_pem = read_pem_file(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        path: key.to_path_buf(),
        message: format!("no usable PRIVATE KEY block: {e}"),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| TlsError::Rustls(format!("{}: {e}", key.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Builds the configuration for connections to the backend: the certificates of
/// `ca_bundle` if given, otherwise the host's trust store (rustls-native-certs). Server
/// name and certificate checks are rustls's (webpki), always on.
pub fn client_config(ca_bundle: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_bundle {
        Some(path) => {
            for cert in read_certificates(path)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    path: path.to_path_buf(),
                    message: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map_or_else(
                    || "the host's trust store is empty".to_owned(),
                    |e| e.to_string(),
                );
                return Err(TlsError::NoRoots(format!(
                    "{why}; install ca-certificates or set backend.ca_bundle"
                )));
            }
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The client-facing certificate, shared by all cores and replaced as a whole on reload.
/// Cores keep their own copy of the configuration and look at `generation` (one atomic
/// load) when they accept; only after a reload do they take the read lock, once each.
#[derive(Debug)]
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
    generation: AtomicU64,
    reloads_failed: AtomicU64,
}

impl ServerTls {
    /// Loads the certificate and key; fails (at start) if they are not usable.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Ok(Self {
            current: RwLock::new(server_config(cert, key)?),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            generation: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        })
    }

    /// Reads the files again. On success new connections get the new certificate
    /// (connections already open keep theirs); on failure the old one stays in use and
    /// the failure is counted and returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        match server_config(&self.cert, &self.key) {
            Ok(config) => {
                match self.current.write() {
                    Ok(mut g) => *g = config,
                    Err(poisoned) => *poisoned.into_inner() = config,
                }
                self.generation.fetch_add(1, Ordering::Release);
                crate::telemetry::tls_reload(true);
                Ok(())
            }
            Err(e) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                crate::telemetry::tls_reload(false);
                Err(e)
            }
        }
    }

    /// How many reloads succeeded.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How many reloads failed (and kept the previous certificate).
    pub fn reloads_failed(&self) -> u64 {
        self.reloads_failed.load(Ordering::Relaxed)
    }

    /// The configuration now in force.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// Sessions each core remembers for TLS resumption, on each side.
pub const SESSION_CACHE_ENTRIES_PER_CORE: usize = 256;

/// A core's own copy of the client-facing configuration, with its own session cache so
/// that no lock is shared between cores during handshakes.
fn core_server_config(shared: &ServerTls) -> Arc<ServerConfig> {
    let mut config = (*shared.current()).clone();
    config.session_storage =
        rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES_PER_CORE);
    Arc::new(config)
}

/// A core's own copy of the backend configuration, with its own session cache.
pub fn core_client_config(shared: &ClientConfig) -> Arc<ClientConfig> {
    let mut config = shared.clone();
    config.resumption =
        rustls::client::Resumption::in_memory_sessions(SESSION_CACHE_ENTRIES_PER_CORE);
    Arc::new(config)
}

/// One core's view of [`ServerTls`]: its own acceptor, refreshed when the generation moves.
pub struct CoreAcceptor {
    shared: Arc<ServerTls>,
    cached: std::cell::RefCell<(u64, compio::tls::TlsAcceptor)>,
}

impl std::fmt::Debug for CoreAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreAcceptor")
            .field("generation", &self.cached.borrow().0)
            .finish_non_exhaustive()
    }
}

impl CoreAcceptor {
    /// An acceptor for one core.
    pub fn new(shared: Arc<ServerTls>) -> Self {
        let generation = shared.generation();
        let acceptor = compio::tls::TlsAcceptor::from(core_server_config(&shared));
        Self {
            shared,
            cached: std::cell::RefCell::new((generation, acceptor)),
        }
    }

    /// The acceptor for a connection accepted now.
    pub fn acceptor(&self) -> compio::tls::TlsAcceptor {
        let now = self.shared.generation();
        let mut cached = self.cached.borrow_mut();
        if cached.0 != now {
            *cached = (
                now,
                compio::tls::TlsAcceptor::from(core_server_config(&self.shared)),
            );
        }
        cached.1.clone()
    }
}
