//! Configuration: the TOML file as written ([`FileConfig`], every field defaulted and
//! documented) and the validated form the rest of the code uses ([`Config`]). Relative
//! paths in the file are taken relative to the file's folder. Secrets never sit in the
//! file: PINs come from a file or an environment variable.

use crate::envelope::aead::Layer;
use crate::envelope::header::kek_id_is_valid;
use crate::envelope::hierarchy::EPOCH_UNIT_SECS;
use crate::envelope::layout::SegmentSize;
use crate::keys::{CustodianSpec, KeyringSettings, PinSource};
use crate::s3::{Denied, Grants, S3Op};
use serde::Deserialize;
use std::path::{Path, PathBuf};

mod check;
pub mod console;
pub use check::check;
pub use console::{ConsoleSettings, Operator, PasswordHash};

/// Default segment size of new objects.
pub const SEGMENT_SIZE_BYTES_DEFAULT: u64 = 64 * 1024;
/// Default bucket-key window.
pub const BUCKET_KEY_WINDOW_SECS_DEFAULT: u64 = 3600;
/// Default epoch (30 days): how long one epoch key per bucket and layer serves new
/// objects (`docs/key-hierarchy.md` sizes it against the key cache).
pub const EPOCH_SECS_DEFAULT: u64 = 30 * 24 * 3600;
/// Default seconds between each core's checks for a newer KEK version (`twofold keys
/// rotate`): a rotation reaches every gateway within this time.
pub const KEK_VERSION_CHECK_SECS_DEFAULT: u64 = 60;
/// Longest `kek_version_check_secs`: a rotation must reach the gateways within a day.
pub const KEK_VERSION_CHECK_SECS_MAX: u64 = 86_400;
/// Default number of bucket keys cached for reading, per layer and core.
pub const KEY_CACHE_ENTRIES_DEFAULT: usize = 4096;
/// Default PKCS#11 module: SoftHSM2 as Debian installs it.
pub const SOFTHSM2_MODULE_DEFAULT: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Most retired KEK labels a PKCS#11 custodian may list.
pub const RETIRED_KEY_LABELS_MAX: usize = 16;
/// Default address of the admin listener.
pub const ADMIN_LISTEN_DEFAULT: &str = "127.0.0.1:7481";
/// Default shutdown grace.
pub const SHUTDOWN_GRACE_SECS_DEFAULT: u64 = 30;
/// Default time a stopping gateway keeps accepting while `/readyz` says 503, so that load
/// balancers take it out of their pool before it refuses connections: HAProxy's default
/// health check (every 2 s, down after 2 failures) needs 4 s.
pub const DRAIN_NOTICE_SECS_DEFAULT: u64 = 5;

/// `[envelope]`: how new objects are encrypted.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvelopeFile {
    /// Plaintext bytes per segment: a power of two from 4096 to 16777216.
    pub segment_size_bytes: u64,
    /// Seconds each bucket key is used for new objects before a new one is made.
    pub bucket_key_window_secs: u64,
    /// Seconds each epoch key serves new objects before the next epoch's is derived.
    pub epoch_secs: u64,
    /// Bucket keys, and epoch keys, kept in the clear per layer and core for reading.
    pub key_cache_entries: usize,
    /// The key id responses show for objects under the custodians' own KEKs (`key_label`
    /// of each), and that requests may name them by.
    pub default_key_id: String,
    /// Seconds between each core's checks for a newer version of the KEKs it seals under.
    pub kek_version_check_secs: u64,
}

impl Default for EnvelopeFile {
    fn default() -> Self {
        Self {
            segment_size_bytes: SEGMENT_SIZE_BYTES_DEFAULT,
            bucket_key_window_secs: BUCKET_KEY_WINDOW_SECS_DEFAULT,
            epoch_secs: EPOCH_SECS_DEFAULT,
            key_cache_entries: KEY_CACHE_ENTRIES_DEFAULT,
            default_key_id: crate::keys::named::DEFAULT_KEY_ID.to_owned(),
            kek_version_check_secs: KEK_VERSION_CHECK_SECS_DEFAULT,
        }
    }
}

/// `[[named_key]]`: a KMS key id clients may name, and its KEK in each custodian.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamedKeyFile {
    /// The id responses show (`alias/finance`, a key id or an ARN).
    pub id: String,
    /// Other ids that name the same key (its alias ARN, its key id, ...).
    pub aliases: Vec<String>,
    /// Label of its KEK on the inner custodian's token.
    pub inner_key_label: String,
    /// Label of its KEK on the outer custodian's token.
    pub outer_key_label: String,
    /// Destroyed with `twofold keys destroy`: its KEKs are no longer on the tokens, and its
    /// objects are answered as shredded.
    pub destroyed: bool,
}

/// `[[bucket]]`: settings of one bucket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketFile {
    /// The bucket's name.
    pub name: String,
    /// The key its objects are sealed under when their requests name none (a configured
    /// key's id or alias); what GetBucketEncryption answers.
    pub default_key_id: Option<String>,
}

/// `[custodian.inner]` / `[custodian.outer]`: who holds a layer's key-encryption key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustodianFile {
    /// `"pkcs11"` or `"key-file"`.
    pub kind: String,
    /// pkcs11: path of the module (default: SoftHSM2's).
    pub module: Option<PathBuf>,
    /// pkcs11: token label.
    pub token_label: Option<String>,
    /// pkcs11: label of the KEK in the token.
    pub key_label: Option<String>,
    /// pkcs11: labels of earlier KEKs on the token whose objects are still read.
    pub retired_key_labels: Option<Vec<String>>,
    /// pkcs11: file holding the user PIN.
    pub pin_file: Option<PathBuf>,
    /// pkcs11: environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// pkcs11 with SoftHSM2: its configuration file (sets `SOFTHSM2_CONF` at start-up).
    pub softhsm2_conf: Option<PathBuf>,
    /// pkcs11: dedicated HSM threads (each with its own session); default 1.
    pub hsm_threads: Option<usize>,
    /// key-file: the file holding the KEK as 64 hex digits, mode 0600.
    pub key_file: Option<PathBuf>,
    /// key-file: the KEK id recorded in object headers.
    pub key_id: Option<String>,
}

/// `[custodian]`: one per layer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CustodiansFile {
    /// The inner layer's custodian.
    pub inner: Option<CustodianFile>,
    /// The outer layer's custodian.
    pub outer: Option<CustodianFile>,
}

/// A secret (a secret access key): from a file, from an environment variable, or, for
/// development set-ups only and marked as such, written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretFile {
    /// File holding the secret (one trailing newline ignored).
    pub file: Option<PathBuf>,
    /// Environment variable holding the secret.
    pub env: Option<String>,
    /// The secret itself, in plain text: accepted only for development set-ups.
    pub dev_plaintext: Option<String>,
}

/// `[server]`: the client-facing side of `twofold serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerFile {
    /// Address and port to listen on.
    pub listen: String,
    /// Worker cores (one runtime each); 0 = one per available CPU.
    pub cores: usize,
    /// Region clients sign for.
    pub region: String,
    /// Domains under which `BUCKET.DOMAIN` virtual-hosted-style requests are accepted.
    pub base_domains: Vec<String>,
    /// What to do with backend objects that Twofold did not write: `"reject"` (the
    /// default: GET and HEAD fail with a clear error) or `"pass-through"` (served as they
    /// are, for migrations).
    pub unencrypted_objects: String,
    /// Seconds a stopping gateway (SIGTERM) lets requests in flight run before it cuts
    /// them.
    pub shutdown_grace_secs: u64,
    /// Seconds a stopping gateway (SIGTERM) goes on accepting connections while `/readyz`
    /// answers 503 and every response says `Connection: close`, before it stops accepting
    /// and lets requests in flight finish.
    pub drain_notice_secs: u64,
    /// `{ cert = "chain.pem", key = "key.pem" }`: serve HTTPS with this certificate chain
    /// and private key (PEM), reloaded on SIGHUP.
    pub tls: Option<ServerTlsFile>,
    /// Serve plain HTTP instead of HTTPS. Must be given explicitly; a `[server]` with
    /// neither `tls` nor `plain_http = true` is an error.
    pub plain_http: bool,
}

/// `[server] tls = { cert = "...", key = "..." }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerTlsFile {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching the leaf certificate.
    pub key: PathBuf,
}

impl Default for ServerFile {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7480".into(),
            cores: 0,
            region: "us-east-1".into(),
            base_domains: Vec::new(),
            unencrypted_objects: "reject".into(),
            shutdown_grace_secs: SHUTDOWN_GRACE_SECS_DEFAULT,
            drain_notice_secs: DRAIN_NOTICE_SECS_DEFAULT,
            tls: None,
            plain_http: false,
        }
    }
}

/// `[admin]`: the operators' listener (`/metrics`, `/healthz`, `/readyz`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminFile {
    /// Address and port, or `"off"`.
    pub listen: String,
    /// `{ cert = "chain.pem", key = "key.pem" }`: serve the admin listener (metrics,
    /// probes, console) over HTTPS.
    pub tls: Option<ServerTlsFile>,
}

impl Default for AdminFile {
    fn default() -> Self {
        Self {
            listen: ADMIN_LISTEN_DEFAULT.into(),
            tls: None,
        }
    }
}

/// `[log]`: what the gateway writes to stderr (the journal, under systemd).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogFile {
    /// `"text"` or `"json"`.
    pub format: String,
    /// A `tracing` filter: `"info"`, `"warn"`, `"info,twofold::access=warn"`...
    pub level: String,
}

impl Default for LogFile {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

/// `[backend]`: the S3 endpoint behind the gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendFile {
    /// `https://host[:port]` of the backend (or `http://host:port` with `plain_http`).
    pub endpoint: String,
    /// PEM file of the CA certificates the backend's certificate must chain to; without
    /// it, the host's trust store.
    pub ca_bundle: Option<PathBuf>,
    /// Allow an `http://` endpoint (a backend on the same host or a private link).
    pub plain_http: bool,
    /// Region to sign backend requests for.
    pub region: Option<String>,
    /// Access key id the gateway uses towards the backend.
    pub access_key_id: String,
    /// Its secret access key.
    pub secret_access_key: SecretFile,
    /// Backend connections kept open per core.
    pub pool_connections_per_core: Option<usize>,
}

/// `[[credential]]`: a client identity and the buckets it may use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialFile {
    /// Access key id clients sign with.
    pub access_key_id: String,
    /// Its secret access key.
    pub secret_access_key: SecretFile,
    /// Buckets it may use; `"*"` for all.
    pub buckets: Vec<String>,
    /// May read bucket and object configuration (ACLs, policy, versioning, ...); default
    /// false. See "Grants" in docs/configuration.md.
    pub read_config: bool,
    /// May change configuration (policy, ACLs, replication, object lock, ...), and send
    /// headers that open, lock or bypass; default false. Implies `read_config`.
    pub admin: bool,
    /// Named keys it may seal new objects under, by id; `"*"` for all. The default key is
    /// always allowed.
    pub key_ids: Vec<String>,
}

/// The configuration file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// `[envelope]`
    pub envelope: EnvelopeFile,
    /// `[custodian.inner]` and `[custodian.outer]`
    pub custodian: CustodiansFile,
    /// `[server]`
    pub server: Option<ServerFile>,
    /// `[backend]`
    pub backend: Option<BackendFile>,
    /// `[[credential]]`
    pub credential: Vec<CredentialFile>,
    /// `[[named_key]]`
    pub named_key: Vec<NamedKeyFile>,
    /// `[[bucket]]`
    pub bucket: Vec<BucketFile>,
    /// `[admin]`
    pub admin: AdminFile,
    /// `[console]`: the operators' web console on the admin listener.
    pub console: Option<console::ConsoleFile>,
    /// `[log]`
    pub log: LogFile,
    /// `[limits]`
    pub limits: crate::limits::LimitsFile,
}

/// A configuration error, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, an unknown field or a value of the wrong type (the message has the line).
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value that parses but is not acceptable.
    #[error("{}{}: {field}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line of the field (or of its section) in the file, when it is written there.
        line: Option<usize>,
        /// Dotted field name.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Keyring settings.
    pub keyring: KeyringSettings,
    /// The inner layer's custodian.
    pub inner: CustodianSpec,
    /// The outer layer's custodian.
    pub outer: CustodianSpec,
    /// The default key and the named keys.
    pub named_keys: crate::keys::named::NamedKeys,
    /// `SOFTHSM2_CONF` to set before any PKCS#11 module is loaded.
    pub softhsm2_conf: Option<PathBuf>,
    /// What `twofold serve` needs; `None` when the file has no `[server]`/`[backend]`.
    pub serve: Option<ServeSettings>,
    /// Log format.
    pub log_format: crate::telemetry::LogFormat,
    /// Log filter.
    pub log_level: String,
}

/// A secret string, zeroised on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// A validated client credential.
#[derive(Debug, Clone)]
pub struct ClientCredential {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret: Secret,
    /// Buckets it may use; `None` = all.
    pub buckets: Option<Vec<String>>,
    /// What it may do beyond the data of those buckets.
    pub grants: Grants,
    /// Named keys it may seal under, by id (`None`: all); the default key always.
    pub key_ids: Option<Vec<String>>,
}

impl ClientCredential {
    /// May this credential seal new objects under the key `id` (a named key's own id)?
    pub fn may_use_key(&self, id: &str, default_id: &str) -> bool {
        id == default_id
            || self
                .key_ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|k| k == id))
    }

    /// May this credential use `bucket`?
    pub fn allows(&self, bucket: &str) -> bool {
        self.buckets
            .as_ref()
            .is_none_or(|list| list.iter().any(|b| b == bucket))
    }

    /// May this credential make `op` on `bucket` (`None`: a service-level request) with
    /// these request headers? The one authorisation decision ([`crate::s3::authorise`]).
    pub fn authorise(
        &self,
        bucket: Option<&str>,
        op: S3Op,
        headers: &[(String, Vec<u8>)],
    ) -> Result<(), Denied> {
        let bucket_allowed = bucket.is_none_or(|b| self.allows(b));
        crate::s3::authorise(self.grants, bucket_allowed, op, headers)
    }
}

/// Objects in the backend without Twofold's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnencryptedObjects {
    /// Refuse to serve them.
    Reject,
    /// Serve them as they are.
    PassThrough,
}

/// How the client-facing listener talks to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerTls {
    /// HTTPS with the certificate chain and key in these PEM files.
    Tls {
        /// Certificate chain file.
        cert: PathBuf,
        /// Private key file.
        key: PathBuf,
    },
    /// Plain HTTP, asked for explicitly.
    PlainHttp,
}

/// How the gateway talks to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendTransport {
    /// Plain HTTP, asked for explicitly.
    PlainHttp,
    /// HTTPS, checking the certificate for `server_name`.
    Tls {
        /// CA bundle; `None` = the host's trust store.
        ca_bundle: Option<PathBuf>,
        /// The name (or IP address) the certificate must be valid for; also the SNI.
        server_name: String,
    },
}

/// The validated `[server]`, `[backend]` and `[[credential]]` sections.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Listen address.
    pub listen: std::net::SocketAddr,
    /// Worker cores; 0 = one per CPU.
    pub cores: usize,
    /// Region clients sign for.
    pub region: String,
    /// Virtual-hosted-style base domains.
    pub base_domains: Vec<String>,
    /// Policy for objects Twofold did not write.
    pub unencrypted_objects: UnencryptedObjects,
    /// HTTPS or (explicitly) plain HTTP towards clients.
    pub listener_tls: ListenerTls,
    /// HTTPS or (explicitly) plain HTTP towards the backend.
    pub backend_transport: BackendTransport,
    /// Backend host and port.
    pub backend_addr: String,
    /// Host header value for the backend.
    pub backend_host: String,
    /// Region of backend signatures.
    pub backend_region: String,
    /// Backend access key id.
    pub backend_access_key_id: String,
    /// Backend secret access key.
    pub backend_secret: Secret,
    /// Idle backend connections kept per core.
    pub pool_connections_per_core: usize,
    /// Client credentials.
    pub credentials: Vec<ClientCredential>,
    /// The default key and the named keys (`None`: the custodians' KEKs only, under
    /// [`crate::keys::named::DEFAULT_KEY_ID`]).
    pub named_keys: Option<crate::keys::named::NamedKeys>,
    /// How long a stopping gateway lets requests in flight run.
    pub shutdown_grace: std::time::Duration,
    /// How long a stopping gateway goes on accepting while it tells clients and load
    /// balancers it is going (`/readyz` 503, `Connection: close`).
    pub drain_notice: std::time::Duration,
    /// The admin listener's address; `None`: no admin listener.
    pub admin_listen: Option<std::net::SocketAddr>,
    /// HTTPS or plain HTTP on the admin listener.
    pub admin_tls: ListenerTls,
    /// The web console on the admin listener; `None`: none.
    pub console: Option<ConsoleSettings>,
    /// Deadlines and connection caps.
    pub limits: crate::limits::Limits,
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_str(&text, path)
    }

    /// Parses and validates configuration text said to come from `path`.
    pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: one_line_parse_error(&e, text),
        })?;
        validate(file, path).map_err(|e| match e {
            ConfigError::Invalid {
                path,
                line: None,
                field,
                message,
            } => ConfigError::Invalid {
                line: field_line(text, &field),
                path,
                field,
                message,
            },
            e => e,
        })
    }
}

/// The line (1-based) where a dotted field such as `custodian.outer.pin_file` or
/// `credential[1].buckets` is written, or else where its closest enclosing section starts.
fn field_line(text: &str, field: &str) -> Option<usize> {
    let wanted: Vec<&str> = field.split('.').collect();
    let mut table: Vec<String> = Vec::new();
    let mut arrays: std::collections::HashMap<String, usize> = Default::default();
    let mut best: Option<(usize, usize)> = None; // (matched components, line)
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let header = if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next())
        {
            let name = name.trim().to_owned();
            let n = arrays.entry(name.clone()).or_insert(0);
            let indexed = format!("{name}[{n}]");
            *n += 1;
            Some(vec![indexed])
        } else {
            line.strip_prefix('[')
                .and_then(|l| l.split(']').next())
                .map(|name| name.split('.').map(|p| p.trim().to_owned()).collect())
        };
        let path: Vec<String> = match header {
            Some(h) => {
                table = h;
                table.clone()
            }
            None => match line.split_once('=') {
                Some((key, _)) => {
                    let mut p = table.clone();
                    p.push(key.trim().to_owned());
                    p
                }
                None => continue,
            },
        };
        let matched = path
            .iter()
            .zip(&wanted)
            .take_while(|(a, b)| a.as_str() == **b)
            .count();
        if matched == path.len() && matched > best.map_or(0, |b| b.0) {
            best = Some((matched, i + 1));
        }
    }
    best.map(|(_, line)| line)
}

/// The TOML parser's message without its source excerpt, prefixed with the line and
/// column, so that every configuration error is one line.
fn one_line_parse_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let column = before.len() - line_start + 1;
            let source_line = text[line_start..].lines().next().unwrap_or("").trim();
            format!("line {line}, column {column}: {message} (in `{source_line}`)")
        }
        None => message,
    }
}

/// The default key (the custodians' current KEKs, named `default_key_id`) and the named
/// keys of `files`, whose KEK labels are added to the custodians' (both must be PKCS#11
/// tokens: a key file holds one KEK). An error names the field and says what is wrong.
fn named_keys(
    default_key_id: &str,
    files: Vec<NamedKeyFile>,
    custodians: (&mut CustodianSpec, &mut CustodianSpec),
) -> Result<crate::keys::named::NamedKeys, (String, String)> {
    use crate::keys::named::{NamedKey, NamedKeys};
    let (inner, outer) = custodians;
    let retired = |spec: &CustodianSpec| match spec {
        CustodianSpec::Pkcs11 {
            retired_key_labels, ..
        } => retired_key_labels.clone(),
        CustodianSpec::KeyFile { .. } => Vec::new(),
    };
    let mut keys = NamedKeys::only_default(inner.kek_id(), outer.kek_id());
    keys.default.id = default_key_id.to_owned();
    keys.retired = (retired(inner), retired(outer));
    for (i, f) in files.into_iter().enumerate() {
        let field = |name: &str| format!("named_key[{i}].{name}");
        for (name, label, spec) in [
            ("inner_key_label", &f.inner_key_label, &*inner),
            ("outer_key_label", &f.outer_key_label, &*outer),
        ] {
            if !crate::keys::versions::base_label_is_valid(label) {
                return Err((field(name), crate::keys::versions::BASE_LABEL_RULE.into()));
            }
            if label == spec.kek_id() || retired(spec).contains(label) {
                return Err((
                    field(name),
                    format!("{label:?} is the custodian's own key_label or a retired one"),
                ));
            }
        }
        keys.keys.push(NamedKey {
            id: f.id,
            aliases: f.aliases,
            inner_kek: f.inner_key_label,
            outer_kek: f.outer_key_label,
            destroyed: f.destroyed,
        });
    }
    keys.check().map_err(|m| ("named_key".to_owned(), m))?;
    for (spec, label) in [(inner, 0), (outer, 1)] {
        let CustodianSpec::Pkcs11 {
            named_key_labels, ..
        } = spec
        else {
            if keys.keys.is_empty() {
                continue;
            }
            return Err((
                "named_key".into(),
                "named keys need kind = \"pkcs11\" custodians (a key file holds one KEK)".into(),
            ));
        };
        // A destroyed key's KEKs are no longer on the tokens, and are never asked for.
        for k in keys.keys.iter().filter(|k| !k.destroyed) {
            let l = if label == 0 {
                &k.inner_kek
            } else {
                &k.outer_kek
            };
            if !named_key_labels.contains(l) {
                named_key_labels.push(l.clone());
            }
        }
    }
    Ok(keys)
}

/// Most `[[bucket]]` tables a configuration may hold.
pub const BUCKETS_MAX: usize = 4096;

/// The buckets' default keys, each by its key's own id (an alias in the file is resolved);
/// every bucket named once, every key configured.
fn bucket_defaults(
    files: &[BucketFile],
    keys: &crate::keys::named::NamedKeys,
) -> Result<Vec<(String, String)>, (String, String)> {
    if files.len() > BUCKETS_MAX {
        return Err(("bucket".into(), format!("at most {BUCKETS_MAX} buckets")));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, b) in files.iter().enumerate() {
        let field = |name: &str| format!("bucket[{i}].{name}");
        if b.name.is_empty() || files[..i].iter().any(|o| o.name == b.name) {
            return Err((field("name"), "required, and once per bucket".into()));
        }
        if let Some(id) = &b.default_key_id {
            let key = keys.resolve(id).ok_or_else(|| {
                (
                    field("default_key_id"),
                    format!("{id:?} is no configured key"),
                )
            })?;
            out.push((b.name.clone(), key.id.to_owned()));
        }
    }
    Ok(out)
}

/// Every credential's `key_ids` must name configured keys by their own ids.
fn check_key_grants(
    credentials: &[ClientCredential],
    keys: &crate::keys::named::NamedKeys,
) -> Result<(), (String, String)> {
    for (i, c) in credentials.iter().enumerate() {
        for id in c.key_ids.iter().flatten() {
            if id != &keys.default.id && !keys.keys.iter().any(|k| &k.id == id) {
                return Err((
                    format!("credential[{i}].key_ids"),
                    format!("{id:?} is no configured key's id"),
                ));
            }
        }
    }
    Ok(())
}

fn validate(file: FileConfig, path: &Path) -> Result<Config, ConfigError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let invalid = |field: &str, message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: None,
        field: field.to_owned(),
        message,
    };
    let segment_size = SegmentSize::from_bytes(file.envelope.segment_size_bytes).map_err(|_| {
        invalid(
            "envelope.segment_size_bytes",
            format!(
                "{} is not a power of two from 4096 to 16777216",
                file.envelope.segment_size_bytes
            ),
        )
    })?;
    if file.envelope.bucket_key_window_secs == 0 {
        return Err(invalid(
            "envelope.bucket_key_window_secs",
            "must be at least 1".into(),
        ));
    }
    let epoch = file.envelope.epoch_secs;
    if epoch == 0
        || !epoch.is_multiple_of(EPOCH_UNIT_SECS)
        || epoch < file.envelope.bucket_key_window_secs
    {
        return Err(invalid(
            "envelope.epoch_secs",
            format!(
                "{epoch} must be a whole number of hours and at least envelope.bucket_key_window_secs"
            ),
        ));
    }
    if !(1..=KEK_VERSION_CHECK_SECS_MAX).contains(&file.envelope.kek_version_check_secs) {
        return Err(invalid(
            "envelope.kek_version_check_secs",
            format!("must be 1 to {KEK_VERSION_CHECK_SECS_MAX}"),
        ));
    }
    if file.envelope.key_cache_entries == 0 {
        return Err(invalid(
            "envelope.key_cache_entries",
            "must be at least 1".into(),
        ));
    }
    let mut softhsm2_conf: Option<PathBuf> = None;
    let mut custodian = |layer: Layer, c: Option<CustodianFile>| {
        let section = format!("custodian.{layer}");
        let c =
            c.ok_or_else(|| invalid(&section, "missing: each layer needs a custodian".into()))?;
        let field = |name: &str| format!("{section}.{name}");
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        match c.kind.as_str() {
            "pkcs11" => {
                let token_label = c.token_label.ok_or_else(|| {
                    invalid(
                        &field("token_label"),
                        "required for kind = \"pkcs11\"".into(),
                    )
                })?;
                let key_label = c.key_label.ok_or_else(|| {
                    invalid(&field("key_label"), "required for kind = \"pkcs11\"".into())
                })?;
                if !crate::keys::versions::base_label_is_valid(&key_label) {
                    return Err(invalid(
                        &field("key_label"),
                        crate::keys::versions::BASE_LABEL_RULE.into(),
                    ));
                }
                let retired_key_labels = c.retired_key_labels.unwrap_or_default();
                if retired_key_labels.len() > RETIRED_KEY_LABELS_MAX
                    || retired_key_labels
                        .iter()
                        .any(|l| !kek_id_is_valid(l) || *l == key_label)
                {
                    return Err(invalid(
                        &field("retired_key_labels"),
                        format!(
                            "at most {RETIRED_KEY_LABELS_MAX} labels, each 1 to 64 printable ASCII characters without spaces, none the current key_label"
                        ),
                    ));
                }
                let pin = match (c.pin_file, c.pin_env) {
                    (Some(f), None) => PinSource::File(resolve(f)),
                    (None, Some(v)) => PinSource::Env(v),
                    _ => {
                        return Err(invalid(
                            &field("pin_file"),
                            "give exactly one of pin_file and pin_env".into(),
                        ));
                    }
                };
                if c.key_file.is_some() || c.key_id.is_some() {
                    return Err(invalid(
                        &field("key_file"),
                        "only for kind = \"key-file\"".into(),
                    ));
                }
                if let Some(conf) = c.softhsm2_conf {
                    let conf = resolve(conf);
                    match &softhsm2_conf {
                        Some(prev) if *prev != conf => {
                            return Err(invalid(
                                &field("softhsm2_conf"),
                                "both custodians must use the same SoftHSM2 configuration (it is per process)".into(),
                            ));
                        }
                        _ => softhsm2_conf = Some(conf),
                    }
                }
                let hsm_threads = c.hsm_threads.unwrap_or(1);
                if !(1..=64).contains(&hsm_threads) {
                    return Err(invalid(
                        &field("hsm_threads"),
                        "must be from 1 to 64".into(),
                    ));
                }
                Ok(CustodianSpec::Pkcs11 {
                    named_key_labels: Vec::new(),
                    module: resolve(
                        c.module
                            .unwrap_or_else(|| PathBuf::from(SOFTHSM2_MODULE_DEFAULT)),
                    ),
                    token_label,
                    pin,
                    key_label,
                    retired_key_labels,
                    hsm_threads,
                })
            }
            "key-file" => {
                let key_file = c.key_file.ok_or_else(|| {
                    invalid(
                        &field("key_file"),
                        "required for kind = \"key-file\"".into(),
                    )
                })?;
                let key_id = c.key_id.unwrap_or_else(|| format!("local-{layer}-kek"));
                if !kek_id_is_valid(&key_id) {
                    return Err(invalid(
                        &field("key_id"),
                        "must be 1 to 64 printable ASCII characters without spaces".into(),
                    ));
                }
                if c.token_label.is_some()
                    || c.retired_key_labels.is_some()
                    || c.pin_file.is_some()
                    || c.pin_env.is_some()
                    || c.module.is_some()
                {
                    return Err(invalid(
                        &section,
                        "token settings given for kind = \"key-file\"".into(),
                    ));
                }
                Ok(CustodianSpec::KeyFile {
                    path: resolve(key_file),
                    key_id,
                })
            }
            "" => Err(invalid(
                &field("kind"),
                "required: \"pkcs11\" or \"key-file\"".into(),
            )),
            other => Err(invalid(
                &field("kind"),
                format!("{other:?} is not \"pkcs11\" or \"key-file\""),
            )),
        }
    };
    let mut inner = custodian(Layer::Inner, file.custodian.inner)?;
    let mut outer = custodian(Layer::Outer, file.custodian.outer)?;
    if inner == outer {
        return Err(invalid(
            "custodian",
            "the inner and outer layers must not use the same custodian and key".into(),
        ));
    }
    let mut named_keys = named_keys(
        &file.envelope.default_key_id,
        file.named_key,
        (&mut inner, &mut outer),
    )
    .map_err(|(field, message)| invalid(&field, message))?;
    named_keys.bucket_defaults = bucket_defaults(&file.bucket, &named_keys)
        .map_err(|(field, message)| invalid(&field, message))?;
    let log_format = match file.log.format.as_str() {
        "text" => crate::telemetry::LogFormat::Text,
        "json" => crate::telemetry::LogFormat::Json,
        other => {
            return Err(invalid(
                "log.format",
                format!("{other:?} is not \"text\" or \"json\""),
            ));
        }
    };
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&file.log.level) {
        return Err(invalid(
            "log.level",
            format!("{:?} is not a log filter: {e}", file.log.level),
        ));
    }
    let limits = file
        .limits
        .validate()
        .map_err(|(field, message)| invalid(&field, message))?;
    let serve = match (file.server, file.backend) {
        (None, None) => None,
        (server, Some(backend)) => Some(
            validate_serve(
                server.unwrap_or_default(),
                backend,
                file.credential,
                (&file.admin, file.console),
                path,
                base,
            )
            .map(|s| ServeSettings { limits, ..s })?,
        ),
        (Some(_), None) => {
            return Err(invalid(
                "backend",
                "missing: [server] needs a [backend]".into(),
            ));
        }
    };
    let serve = match serve {
        Some(s) => {
            check_key_grants(&s.credentials, &named_keys)
                .map_err(|(field, message)| invalid(&field, message))?;
            Some(ServeSettings {
                named_keys: Some(named_keys.clone()),
                ..s
            })
        }
        None => None,
    };
    Ok(Config {
        serve,
        named_keys,
        path: path.to_path_buf(),
        keyring: KeyringSettings {
            segment_size,
            window_secs: file.envelope.bucket_key_window_secs,
            epoch_secs: file.envelope.epoch_secs,
            cache_entries: file.envelope.key_cache_entries,
            kek_version_check_secs: file.envelope.kek_version_check_secs,
        },
        inner,
        outer,
        softhsm2_conf,
        log_format,
        log_level: file.log.level,
    })
}

fn load_secret(
    s: &SecretFile,
    field: &str,
    path: &Path,
    base: &Path,
) -> Result<Secret, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: None,
        field: field.to_owned(),
        message,
    };
    let value = match (&s.file, &s.env, &s.dev_plaintext) {
        (Some(f), None, None) => {
            let f = if f.is_absolute() {
                f.clone()
            } else {
                base.join(f)
            };
            crate::private_file::check_owner_only(&f)
                .map_err(|e| invalid(format!("secret file {e}")))?;
            let text = std::fs::read_to_string(&f)
                .map_err(|e| invalid(format!("secret file {}: {e}", f.display())))?;
            text.strip_suffix('\n').unwrap_or(&text).to_owned()
        }
        (None, Some(v), None) => {
            std::env::var(v).map_err(|_| invalid(format!("environment variable {v} is not set")))?
        }
        (None, None, Some(v)) => v.clone(),
        _ => {
            return Err(invalid(
                "give exactly one of file, env and dev_plaintext".into(),
            ));
        }
    };
    if value.is_empty() {
        return Err(invalid("the secret is empty".into()));
    }
    Ok(Secret(zeroize::Zeroizing::new(value)))
}

fn validate_serve(
    server: ServerFile,
    backend: BackendFile,
    credentials: Vec<CredentialFile>,
    (admin, console): (&AdminFile, Option<console::ConsoleFile>),
    path: &Path,
    base: &Path,
) -> Result<ServeSettings, ConfigError> {
    let invalid = |field: &str, message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        line: None,
        field: field.to_owned(),
        message,
    };
    let listen = server.listen.parse().map_err(|_| {
        invalid(
            "server.listen",
            format!("{:?} is not ADDRESS:PORT", server.listen),
        )
    })?;
    let admin_listen = match admin.listen.as_str() {
        "off" => None,
        a => Some(a.parse().map_err(|_| {
            invalid(
                "admin.listen",
                format!("{a:?} is not ADDRESS:PORT or \"off\""),
            )
        })?),
    };
    let (admin_tls, console) = validate_admin(admin, console, admin_listen, base)
        .map_err(|(field, message)| invalid(&field, message))?;
    if server.drain_notice_secs > 300 {
        return Err(invalid(
            "server.drain_notice_secs",
            "must be at most 300".into(),
        ));
    }
    if server.shutdown_grace_secs > 3600 {
        return Err(invalid(
            "server.shutdown_grace_secs",
            "must be at most 3600".into(),
        ));
    }
    let unencrypted_objects = match server.unencrypted_objects.as_str() {
        "reject" => UnencryptedObjects::Reject,
        "pass-through" => UnencryptedObjects::PassThrough,
        other => {
            return Err(invalid(
                "server.unencrypted_objects",
                format!("{other:?} is not \"reject\" or \"pass-through\""),
            ));
        }
    };
    let listener_tls = match (server.tls, server.plain_http) {
        (Some(_), true) => {
            return Err(invalid(
                "server.plain_http",
                "give either tls or plain_http = true, not both".into(),
            ));
        }
        (Some(t), false) => {
            if t.cert.as_os_str().is_empty() || t.key.as_os_str().is_empty() {
                return Err(invalid(
                    "server.tls",
                    "needs both cert and key: tls = { cert = \"chain.pem\", key = \"key.pem\" }"
                        .into(),
                ));
            }
            ListenerTls::Tls {
                cert: base.join(t.cert),
                key: base.join(t.key),
            }
        }
        (None, true) => ListenerTls::PlainHttp,
        (None, false) => {
            return Err(invalid(
                "server.tls",
                "missing: add tls = { cert = \"chain.pem\", key = \"key.pem\" } to serve HTTPS, \
                 or plain_http = true to serve plain HTTP"
                    .into(),
            ));
        }
    };
    let (rest, default_port, tls) = if let Some(r) = backend.endpoint.strip_prefix("https://") {
        (r, 443, true)
    } else if let Some(r) = backend.endpoint.strip_prefix("http://") {
        (r, 80, false)
    } else {
        return Err(invalid(
            "backend.endpoint",
            format!("{:?} must be https://HOST[:PORT]", backend.endpoint),
        ));
    };
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(invalid(
            "backend.endpoint",
            format!(
                "{:?} must be https://HOST[:PORT] with no path",
                backend.endpoint
            ),
        ));
    }
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(h, p)| p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')));
    let backend_addr = if has_port {
        host.to_owned()
    } else {
        format!("{host}:{default_port}")
    };
    let backend_transport = if tls {
        if backend.plain_http {
            return Err(invalid(
                "backend.plain_http",
                "set for an https:// endpoint; drop it or use http://".into(),
            ));
        }
        let name = if has_port {
            host.rsplit_once(':').map_or(host, |(h, _)| h)
        } else {
            host
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if rustls_pki_types::ServerName::try_from(name).is_err() {
            return Err(invalid(
                "backend.endpoint",
                format!("{name:?} is not a valid DNS name or IP address for TLS"),
            ));
        }
        BackendTransport::Tls {
            ca_bundle: backend.ca_bundle.map(|p| base.join(p)),
            server_name: name.to_owned(),
        }
    } else {
        if !backend.plain_http {
            return Err(invalid(
                "backend.plain_http",
                format!(
                    "{:?} is plain HTTP: use https://, or add plain_http = true to [backend] \
                     to allow it",
                    backend.endpoint
                ),
            ));
        }
        if backend.ca_bundle.is_some() {
            return Err(invalid(
                "backend.ca_bundle",
                "given for an http:// endpoint, which has no certificate to check".into(),
            ));
        }
        BackendTransport::PlainHttp
    };
    if backend.access_key_id.is_empty() {
        return Err(invalid("backend.access_key_id", "required".into()));
    }
    let backend_secret = load_secret(
        &backend.secret_access_key,
        "backend.secret_access_key",
        path,
        base,
    )?;
    if credentials.is_empty() {
        return Err(invalid(
            "credential",
            "at least one [[credential]] is needed for clients to sign with".into(),
        ));
    }
    let mut creds = Vec::new();
    for (i, c) in credentials.into_iter().enumerate() {
        let field = format!("credential[{i}]");
        if c.access_key_id.is_empty() {
            return Err(invalid(
                &format!("{field}.access_key_id"),
                "required".into(),
            ));
        }
        let secret = load_secret(
            &c.secret_access_key,
            &format!("{field}.secret_access_key"),
            path,
            base,
        )?;
        let buckets = if c.buckets.iter().any(|b| b == "*") {
            None
        } else if c.buckets.is_empty() {
            return Err(invalid(
                &format!("{field}.buckets"),
                "list the buckets it may use, or [\"*\"] for all".into(),
            ));
        } else {
            Some(c.buckets)
        };
        creds.push(ClientCredential {
            access_key_id: c.access_key_id,
            secret,
            buckets,
            grants: Grants {
                read_config: c.read_config || c.admin,
                admin: c.admin,
            },
            key_ids: (!c.key_ids.iter().any(|k| k == "*")).then_some(c.key_ids),
        });
    }
    Ok(ServeSettings {
        listen,
        cores: server.cores,
        region: server.region.clone(),
        base_domains: server.base_domains,
        unencrypted_objects,
        listener_tls,
        backend_transport,
        backend_addr,
        backend_host: host.to_owned(),
        backend_region: backend.region.unwrap_or(server.region),
        backend_access_key_id: backend.access_key_id,
        backend_secret,
        pool_connections_per_core: backend.pool_connections_per_core.unwrap_or(64),
        credentials: creds,
        named_keys: None,
        shutdown_grace: std::time::Duration::from_secs(server.shutdown_grace_secs),
        drain_notice: std::time::Duration::from_secs(server.drain_notice_secs),
        admin_listen,
        admin_tls,
        console,
        limits: crate::limits::Limits::default(),
    })
}

/// `[admin] tls` and `[console]`: a console needs an admin listener, and HTTPS unless it is
/// on loopback or `plain_http` says otherwise.
fn validate_admin(
    admin: &AdminFile,
    console: Option<console::ConsoleFile>,
    listen: Option<std::net::SocketAddr>,
    base: &Path,
) -> Result<(ListenerTls, Option<ConsoleSettings>), (String, String)> {
    let tls = match &admin.tls {
        Some(t) if t.cert.as_os_str().is_empty() || t.key.as_os_str().is_empty() => {
            return Err((
                "admin.tls".into(),
                "needs both cert and key: tls = { cert = \"chain.pem\", key = \"key.pem\" }".into(),
            ));
        }
        Some(t) => ListenerTls::Tls {
            cert: base.join(&t.cert),
            key: base.join(&t.key),
        },
        None => ListenerTls::PlainHttp,
    };
    let console = match (console, listen) {
        (None, _) => None,
        (Some(_), None) => {
            return Err((
                "console".into(),
                "the console is served by the admin listener: [admin] listen must not be \"off\""
                    .into(),
            ));
        }
        (Some(c), Some(addr)) => {
            let plain_beyond_loopback =
                matches!(tls, ListenerTls::PlainHttp) && !addr.ip().is_loopback();
            Some(console::validate(c, plain_beyond_loopback, base)?)
        }
    };
    Ok((tls, console))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[custodian.outer]
kind = "pkcs11"
token_label = "outer"
key_label = "outer-kek"
pin_env = "OUTER_PIN"

[custodian.inner]
kind = "key-file"
key_file = "inner.key"
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(text, Path::new("/etc/twofold/twofold.toml"))
    }

    #[test]
    fn minimal_config_validates_with_defaults() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.keyring.segment_size, SegmentSize::DEFAULT);
        assert_eq!(
            c.inner,
            CustodianSpec::KeyFile {
                path: "/etc/twofold/inner.key".into(),
                key_id: "local-inner-kek".into()
            }
        );
    }

    /// Two PKCS#11 custodians, as named keys need.
    const TOKENS: &str = r#"
[custodian.outer]
kind = "pkcs11"
token_label = "outer"
key_label = "outer-kek"
pin_env = "OUTER_PIN"

[custodian.inner]
kind = "pkcs11"
token_label = "inner"
key_label = "inner-kek"
pin_env = "INNER_PIN"
"#;

    #[test]
    fn named_keys_add_their_keks_to_both_tokens() {
        let finance = r#"
[[named_key]]
id = "alias/finance"
aliases = ["arn:aws:kms:eu-west-1:111122223333:alias/finance"]
inner_key_label = "finance-inner"
outer_key_label = "finance-outer"
"#;
        let c = load(&format!("{TOKENS}{finance}")).unwrap();
        assert_eq!(c.named_keys.keys.len(), 1);
        assert_eq!(c.named_keys.default.id, crate::keys::named::DEFAULT_KEY_ID);
        let labels = |spec: &CustodianSpec| match spec {
            CustodianSpec::Pkcs11 {
                named_key_labels, ..
            } => named_key_labels.clone(),
            CustodianSpec::KeyFile { .. } => Vec::new(),
        };
        assert_eq!(labels(&c.inner), ["finance-inner"]);
        assert_eq!(labels(&c.outer), ["finance-outer"]);
        assert_eq!(
            c.named_keys.id_of("finance-inner", "finance-outer"),
            Some("alias/finance")
        );
        let named = load(&format!(
            "{TOKENS}[envelope]\ndefault_key_id = \"alias/ours\"\n"
        ));
        assert_eq!(named.unwrap().named_keys.default.id, "alias/ours");
        // A key file holds one KEK: no named keys on it.
        let e = load(&format!("{GOOD}{finance}")).unwrap_err().to_string();
        assert!(e.contains("pkcs11"), "{e}");
        // A named key may not reuse the custodian's own KEK, nor share an id.
        let own = finance.replace("finance-inner", "inner-kek");
        assert!(load(&format!("{TOKENS}{own}")).is_err());
        let twice = format!("{finance}{}", finance.replace("-inner", "-i2"));
        assert!(load(&format!("{TOKENS}{twice}")).is_err());
        // A credential's key ids must name configured keys.
        let serve = SERVE
            .replace("SERVER_TLS", "plain_http = true")
            .replace("ENDPOINT", "https://s3.example.com")
            .replace("BACKEND_EXTRA", "");
        let grant = |ids: &str| load(&format!("{TOKENS}{finance}{serve}key_ids = {ids}\n"));
        let c = grant(r#"["alias/finance"]"#).unwrap();
        let cred = &c.serve.unwrap().credentials[0];
        assert!(cred.may_use_key("alias/finance", "d") && cred.may_use_key("d", "d"));
        assert!(!cred.may_use_key("alias/other", "d"));
        assert!(
            grant(r#"["*"]"#).unwrap().serve.unwrap().credentials[0]
                .key_ids
                .is_none()
        );
        assert!(grant(r#"["alias/nope"]"#).is_err());
    }

    #[test]
    fn retired_key_labels_are_checked() {
        let with = |labels: &str| {
            load(&GOOD.replace(
                "key_label = \"outer-kek\"",
                &format!("key_label = \"outer-kek\"\nretired_key_labels = {labels}"),
            ))
        };
        let c = with(r#"["outer-kek-2025", "outer-kek-2024"]"#).unwrap();
        let CustodianSpec::Pkcs11 {
            retired_key_labels, ..
        } = &c.outer
        else {
            panic!("{:?}", c.outer)
        };
        assert_eq!(retired_key_labels, &["outer-kek-2025", "outer-kek-2024"]);
        for bad in [
            r#"["with space"]"#,
            r#"[""]"#,
            r#"["outer-kek"]"#,
            &format!("{:?}", vec!["k"; RETIRED_KEY_LABELS_MAX + 1]),
        ] {
            let e = with(bad).unwrap_err();
            assert!(
                e.to_string().contains("custodian.outer.retired_key_labels"),
                "{bad}: {e}"
            );
        }
        // A key file holds one KEK: nothing to retire.
        let e = load(&GOOD.replace(
            "key_file = \"inner.key\"",
            "key_file = \"inner.key\"\nretired_key_labels = [\"old\"]",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("custodian.inner"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = load(&GOOD.replace("pin_env = \"OUTER_PIN\"", "")).unwrap_err();
        assert!(e.to_string().contains("custodian.outer.pin_file"), "{e}");
        let e = load(&format!("[envelope]\nsegment_size_bytes = 1000\n{GOOD}")).unwrap_err();
        assert!(e.to_string().contains("envelope.segment_size_bytes"), "{e}");
        let e = load(&GOOD.replace("key-file", "vault")).unwrap_err();
        assert!(e.to_string().contains("custodian.inner.kind"), "{e}");
    }

    #[test]
    fn field_lines_follow_sections_and_arrays_of_tables() {
        let text = "[server]\nlisten = \"x\"\n\n[[credential]]\naccess_key_id = \"a\"\n\n[[credential]]\nbuckets = []\n";
        assert_eq!(field_line(text, "server.listen"), Some(2));
        assert_eq!(field_line(text, "credential[1].buckets"), Some(8));
        // Not written: the section it belongs to.
        assert_eq!(field_line(text, "credential[1].access_key_id"), Some(7));
        assert_eq!(field_line(text, "backend.endpoint"), None);
        let e = load(&format!("{GOOD}\n[log]\nformat = \"xml\"\n")).unwrap_err();
        let line = GOOD.lines().count() + 3;
        assert!(
            e.to_string()
                .contains(&format!("twofold.toml:{line}: log.format")),
            "{e}"
        );
    }

    #[test]
    fn the_commented_example_in_deploy_parses() {
        let text = include_str!("../../deploy/twofold.toml");
        let file: FileConfig = toml::from_str(text).unwrap();
        assert!(file.server.is_some() && file.backend.is_some());
        assert_eq!(file.credential.len(), 2);
        assert!(file.credential[0].admin && !file.credential[1].admin);
        assert!(!file.credential[1].read_config);
    }

    #[test]
    fn unknown_fields_are_rejected_with_a_line_number() {
        let e = load(&format!("{GOOD}\ncolour = \"blue\"\n")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("colour") && msg.contains("line"), "{msg}");
    }

    const SERVE: &str = r#"
[server]
SERVER_TLS

[backend]
endpoint = "ENDPOINT"
BACKEND_EXTRA
access_key_id = "gw"
secret_access_key = { dev_plaintext = "s" }

[[credential]]
access_key_id = "a"
secret_access_key = { dev_plaintext = "s" }
buckets = ["*"]
"#;

    fn serve(
        server_tls: &str,
        endpoint: &str,
        backend_extra: &str,
    ) -> Result<ServeSettings, ConfigError> {
        let text = format!(
            "{GOOD}{}",
            SERVE
                .replace("SERVER_TLS", server_tls)
                .replace("ENDPOINT", endpoint)
                .replace("BACKEND_EXTRA", backend_extra)
        );
        load(&text).map(|c| c.serve.unwrap())
    }

    /// The grants of a credential configured with `extra` lines.
    fn grants_of(extra: &str) -> Result<Grants, ConfigError> {
        let serve = SERVE
            .replace("SERVER_TLS", "plain_http = true")
            .replace("ENDPOINT", "https://s3.example.com")
            .replace("BACKEND_EXTRA", "");
        // The credential is the last table: the lines are its fields.
        load(&format!("{GOOD}{serve}{extra}\n"))
            .map(|c| c.serve.map(|s| s.credentials[0].grants).unwrap_or_default())
    }

    #[test]
    fn grants_default_to_none_and_admin_implies_read_config() {
        assert_eq!(grants_of("").unwrap(), Grants::default());
        let read = grants_of("read_config = true").unwrap();
        assert!(read.read_config && !read.admin);
        assert_eq!(grants_of("admin = true").unwrap(), Grants::ADMIN);
        assert_eq!(
            grants_of("admin = true\nread_config = false").unwrap(),
            Grants::ADMIN
        );
        assert!(grants_of("admin = \"yes\"").is_err());
        assert!(grants_of("administrator = true").is_err());
    }

    #[test]
    fn the_listener_needs_tls_or_an_explicit_plain_http() {
        let e = serve("", "https://s3.example.com", "")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("server.tls") && e.contains("plain_http = true"),
            "{e}"
        );
        let s = serve("plain_http = true", "https://s3.example.com", "").unwrap();
        assert_eq!(s.listener_tls, ListenerTls::PlainHttp);
        let s = serve(
            "tls = { cert = \"tls/chain.pem\", key = \"tls/key.pem\" }",
            "https://s3.example.com",
            "",
        )
        .unwrap();
        assert_eq!(
            s.listener_tls,
            ListenerTls::Tls {
                cert: "/etc/twofold/tls/chain.pem".into(),
                key: "/etc/twofold/tls/key.pem".into()
            }
        );
        let e = serve(
            "plain_http = true\ntls = { cert = \"c\", key = \"k\" }",
            "https://s3.example.com",
            "",
        )
        .unwrap_err();
        assert!(e.to_string().contains("server.plain_http"), "{e}");
        let e = serve("tls = { cert = \"c\" }", "https://s3.example.com", "").unwrap_err();
        assert!(e.to_string().contains("server.tls"), "{e}");
    }

    #[test]
    fn backend_https_checks_the_name_and_http_needs_opting_in() {
        let s = serve("plain_http = true", "https://s3.example.com", "").unwrap();
        assert_eq!(s.backend_addr, "s3.example.com:443");
        assert_eq!(s.backend_host, "s3.example.com");
        assert_eq!(
            s.backend_transport,
            BackendTransport::Tls {
                ca_bundle: None,
                server_name: "s3.example.com".into()
            }
        );
        let s = serve(
            "plain_http = true",
            "https://10.0.0.5:9000",
            "ca_bundle = \"backend-ca.pem\"",
        )
        .unwrap();
        assert_eq!(s.backend_addr, "10.0.0.5:9000");
        assert_eq!(
            s.backend_transport,
            BackendTransport::Tls {
                ca_bundle: Some("/etc/twofold/backend-ca.pem".into()),
                server_name: "10.0.0.5".into()
            }
        );
        let s = serve("plain_http = true", "https://[::1]:9000", "").unwrap();
        assert_eq!(s.backend_addr, "[::1]:9000");
        assert!(matches!(
            s.backend_transport,
            BackendTransport::Tls { ref server_name, .. } if server_name == "::1"
        ));
        let e = serve("plain_http = true", "http://10.0.0.5:9000", "").unwrap_err();
        assert!(e.to_string().contains("backend.plain_http"), "{e}");
        let s = serve(
            "plain_http = true",
            "http://10.0.0.5:9000",
            "plain_http = true",
        )
        .unwrap();
        assert_eq!(s.backend_transport, BackendTransport::PlainHttp);
        let e = serve(
            "plain_http = true",
            "http://10.0.0.5:9000",
            "plain_http = true\nca_bundle = \"x.pem\"",
        )
        .unwrap_err();
        assert!(e.to_string().contains("backend.ca_bundle"), "{e}");
        let e = serve("plain_http = true", "ftp://x", "").unwrap_err();
        assert!(e.to_string().contains("backend.endpoint"), "{e}");
    }
}
