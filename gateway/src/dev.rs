//! The development setup of the current folder, `.twofold-dev/`: a configuration with two
//! custodians, each a SoftHSM2 token of its own (split custody, like production), created
//! on first use. Nothing here is for production: the PINs sit in files next to the tokens.

use crate::config::SOFTHSM2_MODULE_DEFAULT;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The folder, relative to the current directory.
pub const DEV_DIR: &str = ".twofold-dev";
/// Token of the outer layer's custodian.
pub const OUTER_TOKEN: &str = "twofold-dev-outer";
/// Token of the inner layer's custodian.
pub const INNER_TOKEN: &str = "twofold-dev-inner";

/// Access key id of the dev backend (its secret is random, in `backend.secret`).
pub const DEV_BACKEND_ACCESS_KEY: &str = "twofold-dev-backend";
/// Access key id clients use in dev mode (its secret is random, in `client.secret`).
pub const DEV_CLIENT_ACCESS_KEY: &str = "twofold-dev";
/// The backend's folder inside the dev folder.
pub const DEV_DATA_DIR: &str = "data";
/// File of the dev console operator's password (operator `dev`, who may act).
pub const DEV_CONSOLE_PASSWORD_FILE: &str = "console.password";
/// The named key of the development setup.
pub const DEV_NAMED_KEY: &str = "alias/twofold-dev-example";

/// Writes `client.env` for the aws CLI and SDKs: `set -a; . .twofold-dev/client.env; set +a`.
pub fn write_client_env(
    dir: &Path,
    endpoint: &std::net::SocketAddr,
    region: &str,
    secret: &str,
) -> Result<PathBuf, DevError> {
    let path = dir.join("client.env");
    let text = format!(
        "AWS_ACCESS_KEY_ID={DEV_CLIENT_ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY={secret}\n\
         AWS_ENDPOINT_URL=http://{endpoint}\nAWS_DEFAULT_REGION={region}\nAWS_REGION={region}\n"
    );
    let _ = std::fs::remove_file(&path);
    write_new(&path, &text, 0o600)?;
    Ok(path)
}

/// Places SoftHSM2's module may be in.
const MODULE_CANDIDATES: &[&str] = &[
    SOFTHSM2_MODULE_DEFAULT,
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// Why the development setup could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// SoftHSM2 is not installed.
    #[error("SoftHSM2 is not installed (looked for {}); install it, e.g. apt-get install softhsm2", MODULE_CANDIDATES.join(", "))]
    NoSoftHsm,
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A token could not be created.
    #[error("creating dev token {label:?}: {source}")]
    Token {
        /// Token label.
        label: String,
        /// What the module said.
        #[source]
        source: hsm_bridge::Error,
    },
}

/// Finds the SoftHSM2 module.
pub fn softhsm_module() -> Result<PathBuf, DevError> {
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or(DevError::NoSoftHsm)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DevError + '_ {
    move |source| DevError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), DevError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    f.write_all(contents.as_bytes()).map_err(io(path))
}

fn random_pin() -> Result<String, DevError> {
    let mut b = [0u8; 12];
    getrandom::fill(&mut b).map_err(|e| DevError::Io {
        path: PathBuf::from("<random>"),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(hex::encode(b))
}

/// Writes the files of `dir` (the `.twofold-dev` folder) that are missing, and returns the
/// path of its configuration. Touches no PKCS#11 module: call [`ensure_tokens`] after
/// `SOFTHSM2_CONF` has been set from the configuration.
pub fn prepare_files(dir: &Path) -> Result<PathBuf, DevError> {
    let module = softhsm_module()?;
    std::fs::create_dir_all(dir.join("tokens")).map_err(io(dir))?;
    let dir = dir.canonicalize().map_err(io(dir))?;
    let conf = dir.join("softhsm2.conf");
    if !conf.exists() {
        let text = format!(
            "# SoftHSM2 configuration of the Twofold development setup\n\
             directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            dir.join("tokens").display()
        );
        write_new(&conf, &text, 0o600)?;
    }
    for name in [
        "outer.pin",
        "inner.pin",
        "so.pin",
        "backend.secret",
        "client.secret",
        DEV_CONSOLE_PASSWORD_FILE,
    ] {
        let p = dir.join(name);
        if !p.exists() {
            write_new(&p, &format!("{}\n", random_pin()?), 0o600)?;
        }
    }
    let config = dir.join("config.toml");
    if !config.exists() {
        let console_password = std::fs::read_to_string(dir.join(DEV_CONSOLE_PASSWORD_FILE))
            .map_err(io(&dir.join(DEV_CONSOLE_PASSWORD_FILE)))?;
        let console_hash = crate::config::PasswordHash::generate(
            console_password.trim(),
            crate::config::console::PBKDF2_ITERATIONS_MIN,
        )
        .map_err(|e| DevError::Io {
            path: dir.join(DEV_CONSOLE_PASSWORD_FILE),
            source: std::io::Error::other(e),
        })?;
        let text = format!(
            "# Twofold development configuration, written by `twofold ... --dev`.\n\
             # Two custodians, one SoftHSM2 token each: both are needed to read an object.\n\
             # Not for production: the PINs sit in files beside the tokens.\n\n\
             [envelope]\nsegment_size_bytes = 65536\nbucket_key_window_secs = 3600\nkey_cache_entries = 4096\n\n\
             [custodian.outer]\nkind = \"pkcs11\"\nmodule = \"{m}\"\ntoken_label = \"{OUTER_TOKEN}\"\n\
             key_label = \"twofold-outer-kek\"\npin_file = \"outer.pin\"\nsofthsm2_conf = \"softhsm2.conf\"\n\n\
             [custodian.inner]\nkind = \"pkcs11\"\nmodule = \"{m}\"\ntoken_label = \"{INNER_TOKEN}\"\n\
             key_label = \"twofold-inner-kek\"\npin_file = \"inner.pin\"\nsofthsm2_conf = \"softhsm2.conf\"\n\n\
             # A named key: objects whose request names it (--sse aws:kms:dsse\n\
             # --sse-kms-key-id alias/twofold-dev-example) are sealed under its own two KEKs.\n\
             [[named_key]]\nid = \"{DEV_NAMED_KEY}\"\ninner_key_label = \"twofold-dev-example-inner\"\n\
             outer_key_label = \"twofold-dev-example-outer\"\n\n\
             # `twofold serve --dev` runs s3s-fs on ./.twofold-dev/data as the backend, in process;\n\
             # its port is picked at start, so the endpoint below is replaced then.\n\
             # Both sides are plain HTTP on loopback, explicitly: a development set-up only.\n\
             [server]\nlisten = \"127.0.0.1:7480\"\nregion = \"us-east-1\"\nbase_domains = [\"localhost\"]\n\
             plain_http = true\n\n\
             [backend]\nendpoint = \"http://127.0.0.1:0\"\nplain_http = true\naccess_key_id = \"{DEV_BACKEND_ACCESS_KEY}\"\n\
             secret_access_key = {{ file = \"backend.secret\" }}\n\n\
             # The dev appliance's one local user: every bucket, and admin (bucket policies,\n\
             # ACLs, versioning, ...) since nobody else shares its backend.\n\
             [[credential]]\naccess_key_id = \"{DEV_CLIENT_ACCESS_KEY}\"\n\
             secret_access_key = {{ file = \"client.secret\" }}\nbuckets = [\"*\"]\nadmin = true\n\
             key_ids = [\"*\"]\n\n\
             # The operators' web console on the admin listener (http://127.0.0.1:7481/console/):\n\
             # log in as \"dev\" with the password in {DEV_CONSOLE_PASSWORD_FILE}.\n\
             [console]\nstate_dir = \"console\"\n\n\
             [[console.operator]]\nname = \"dev\"\npassword_hash = \"{console_hash}\"\nact = true\n",
            m = module.display()
        );
        write_new(&config, &text, 0o644)?;
    }
    Ok(config)
}

/// Creates the two dev tokens if they do not exist. `SOFTHSM2_CONF` must already point at
/// the dev folder's `softhsm2.conf`.
pub fn ensure_tokens(dir: &Path) -> Result<Vec<String>, DevError> {
    let module = softhsm_module()?;
    let mut said = Vec::new();
    for (label, pin_file) in [(OUTER_TOKEN, "outer.pin"), (INNER_TOKEN, "inner.pin")] {
        let token_err = |source| DevError::Token {
            label: label.to_owned(),
            source,
        };
        if hsm_bridge::token_exists(&module, label).map_err(token_err)? {
            continue;
        }
        let so = hsm_bridge::Pin::from_file(&dir.join("so.pin")).map_err(token_err)?;
        let user = hsm_bridge::Pin::from_file(&dir.join(pin_file)).map_err(token_err)?;
        hsm_bridge::init_token(&module, label, &so, &user).map_err(token_err)?;
        said.push(format!(
            "created SoftHSM2 token {label:?} in {}",
            dir.join("tokens").display()
        ));
    }
    Ok(said)
}
