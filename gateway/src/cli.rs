//! The `twofold` command line: key set-up and the break-glass encrypt/decrypt path.
//!
//! `encrypt` produces exactly the bytes and the metadata the gateway stores for an object;
//! `decrypt` opens an object copied straight off the backend, with no gateway running.
//! Every failure is one line on stderr and a non-zero exit status.

use crate::config::Config;
use crate::dev;
use crate::envelope::aead::Layer;
use crate::envelope::objmeta;
use crate::envelope::stream::{DecryptReader, EncryptWriter, envelope_error};
use crate::envelope::{ObjectName, SINGLE_PART_NUMBER, SegmentCipher};
use crate::keys::{Custodian, Keyring, block_on};
use clap::{Args, Parser, Subcommand};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Twofold: a dual-layer encrypting S3 gateway.
#[derive(Debug, Parser)]
#[command(name = "twofold", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Key-encryption keys in the custodians.
    Keys {
        /// What to do with them.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Encrypt stdin as the object BUCKET/KEY; writes the stored bytes and their metadata.
    Encrypt(ObjectArgs),
    /// Decrypt an object copied off the backend (break-glass: no gateway needed).
    Decrypt(ObjectArgs),
    /// Move a bucket's objects to the newest versions of their keys' KEKs (after `keys
    /// rotate`) by metadata-only backend copies: no object body passes through.
    Rewrap(RewrapArgs),
    /// Run the gateway. With --dev: an in-process S3 backend on ./.twofold-dev/data and
    /// the dev SoftHSM2 tokens, listening on 127.0.0.1.
    Serve(ServeArgs),
    /// Validate a configuration file (syntax, values, secret and PIN files) without
    /// starting anything or touching a custodian.
    CheckConfig {
        /// The configuration file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Hash a console operator's password for `[[console.operator]] password_hash`: reads
    /// the password from stdin (not echoed on a terminal), prints the hash. Needs no
    /// configuration.
    ConsolePassword {
        /// PBKDF2 iterations.
        #[arg(long, default_value_t = crate::config::console::PBKDF2_ITERATIONS_DEFAULT,
              value_parser = clap::value_parser!(u32).range(
                  i64::from(crate::config::console::PBKDF2_ITERATIONS_MIN)
                      ..=i64::from(crate::config::console::PBKDF2_ITERATIONS_MAX)))]
        iterations: u32,
    },
}

/// Arguments of `twofold serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address to listen on (overrides the configuration; default 127.0.0.1:7480).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Address of the admin listener: /metrics, /healthz, /readyz, or `off` for none
    /// (overrides the configuration; default 127.0.0.1:7481).
    #[arg(long, value_name = "ADDR|off", value_parser = parse_admin_listen)]
    pub admin_listen: Option<AdminListen>,
}

/// The value of `--admin-listen`: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminListen {
    /// Listen on this address.
    On(std::net::SocketAddr),
    /// No admin listener at all.
    Off,
}

impl AdminListen {
    /// The address to listen on, `None` for off.
    pub fn addr(self) -> Option<std::net::SocketAddr> {
        match self {
            AdminListen::On(a) => Some(a),
            AdminListen::Off => None,
        }
    }
}

fn parse_admin_listen(s: &str) -> Result<AdminListen, String> {
    if s == "off" {
        return Ok(AdminListen::Off);
    }
    s.parse()
        .map(AdminListen::On)
        .map_err(|_| format!("{s:?} is not ADDRESS:PORT or \"off\""))
}

/// `twofold keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create the key-encryption keys in the configured custodians (idempotent).
    Init(ConfigArgs),
    /// Count, per key and KEK, the objects the backend holds (every object is HEADed).
    Report(ScanArgs),
    /// Destroy a named key's KEKs in both custodians (crypto-shredding): every object under
    /// it becomes unreadable for good. With --version: retire one old version of a key's
    /// KEKs (any key's) once no object names it.
    Destroy(DestroyArgs),
    /// Make a new version of a key's KEK in each custodian (or one); new objects are sealed
    /// under it as soon as each gateway sees it ([envelope] kek_version_check_secs), older
    /// versions keep opening their objects until `twofold rewrap` has moved them.
    Rotate(RotateArgs),
}

/// A layer, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayerArg {
    /// The inner layer's custodian.
    Inner,
    /// The outer layer's custodian.
    Outer,
}

/// `twofold keys rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The key's id (a named key's, or the default's, `[envelope] default_key_id`).
    pub key_id: String,
    /// Only this layer's custodian (both by default).
    #[arg(long, value_enum)]
    pub layer: Option<LayerArg>,
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// `twofold rewrap`.
#[derive(Debug, Args)]
pub struct RewrapArgs {
    /// Configuration (its [backend] and both custodians are used).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The bucket whose objects are moved to the newest KEK versions.
    #[arg(long)]
    pub bucket: String,
    /// Only keys that begin with this prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Only objects under this key (its own id, or an alias).
    #[arg(long)]
    pub key_id: Option<String>,
    /// Count what would be rewrapped; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Objects rewrapped at once (1 to 64).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Where progress is kept so that an interrupted run resumes (default:
    /// ./twofold-rewrap.BUCKET.state; removed when the run completes).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Objects listed per page, each page ending with a checkpoint (1 to 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub page_size: u16,
    /// Objects larger than this many bytes are moved with a multipart copy in parts of at
    /// most this size, the rest with one CopyObject (5 GiB, S3's CopyObject limit, by
    /// default; at least 5 MiB, for backends with a lower limit).
    #[arg(long, value_name = "BYTES", default_value_t = crate::rewrap::COPY_OBJECT_BYTES_MAX,
          value_parser = clap::value_parser!(u64).range(5_242_880..=5_368_709_120))]
    pub copy_object_max: u64,
}

/// The buckets a scan of the backend walks.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Configuration (its [backend] is scanned).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Only this bucket (repeatable); every bucket the backend lists by default.
    #[arg(long)]
    pub bucket: Vec<String>,
}

/// `twofold keys destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The named key's id, as in its [[named_key]].
    pub key_id: String,
    /// Configuration and buckets counted.
    #[command(flatten)]
    pub scan: ScanArgs,
    /// Only count the objects that would become unreadable; destroy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Destroy only this version of the key's KEKs (2 and later; 1 is the base label),
    /// never the newest: refused while objects still name it, unless --force.
    #[arg(long)]
    pub version: Option<u32>,
    /// With --version: destroy it even though objects still name it (they become
    /// unreadable).
    #[arg(long, requires = "version")]
    pub force: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ConfigArgs {
    /// The configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use the development setup in ./.twofold-dev/, creating it (and its SoftHSM2 tokens)
    /// on first use.
    #[arg(long)]
    pub dev: bool,
}

/// Arguments of encrypt and decrypt.
#[derive(Debug, Args)]
pub struct ObjectArgs {
    /// Configuration.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Bucket the object is (or will be) stored in.
    #[arg(long)]
    pub bucket: String,
    /// Object key.
    #[arg(long)]
    pub key: String,
    /// Metadata JSON: written by encrypt, read by decrypt (`aws s3api head-object` output
    /// is accepted as it is).
    #[arg(long, value_name = "META.json")]
    pub meta: PathBuf,
    /// Read from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Write to this file instead of stdout; it appears only if the whole run succeeds.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The object's customer-provided key (SSE-C), which an object written with one needs:
    /// a file of its 32 bytes, or of their base64 (as `aws s3 cp --sse-c-key fileb://...`
    /// takes it), readable by its owner only.
    #[arg(long, value_name = "FILE")]
    pub sse_c_key_file: Option<PathBuf>,
}

/// A failure, as one line for the user.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        let mut msg = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            let part = s.to_string();
            if !msg.contains(&part) {
                msg.push_str(": ");
                msg.push_str(&part);
            }
            src = s.source();
        }
        CliError(msg)
    }
}

pub(crate) fn fail(msg: impl Into<String>) -> CliError {
    CliError(msg.into())
}

/// Resolves `--config`/`--dev` to a configuration file, creating the dev files if asked.
/// Touches no PKCS#11 module.
pub fn config_path(args: &ConfigArgs) -> Result<PathBuf, CliError> {
    match (&args.config, args.dev) {
        (Some(p), false) => Ok(p.clone()),
        (None, true) => Ok(dev::prepare_files(Path::new(dev::DEV_DIR))?),
        _ => Err(fail("give either --config FILE or --dev")),
    }
}

/// Completes the dev setup once `SOFTHSM2_CONF` is in place: tokens and KEKs.
fn finish_dev_setup(config: &Config, quiet: bool) -> Result<(), CliError> {
    let dir = config.path.parent().unwrap_or(Path::new("."));
    for line in dev::ensure_tokens(dir)? {
        if !quiet {
            eprintln!("twofold: {line}");
        }
    }
    for (layer, spec) in [(Layer::Outer, &config.outer), (Layer::Inner, &config.inner)] {
        let said = Custodian::init(layer, spec)?;
        if said.contains("created") && !quiet {
            eprintln!("twofold: {said}");
        }
    }
    Ok(())
}

/// Runs a parsed command line. `config` is already loaded (and the process environment
/// set from it) by `main`.
pub fn run(cli: &Cli, config: &Config) -> Result<(), CliError> {
    match &cli.command {
        Command::Keys {
            action: KeysAction::Init(args),
        } => {
            if args.dev {
                let dir = config.path.parent().unwrap_or(Path::new("."));
                for line in dev::ensure_tokens(dir)? {
                    println!("{line}");
                }
            }
            for (layer, spec) in [(Layer::Outer, &config.outer), (Layer::Inner, &config.inner)] {
                println!("{}", Custodian::init(layer, spec)?);
            }
            Ok(())
        }
        Command::Keys {
            action: KeysAction::Report(args),
        } => {
            // A report of every bucket is the one the console's keys page shows.
            let job = args.bucket.is_empty().then(|| {
                crate::job_runner::cli_job(
                    config,
                    crate::jobs::JobKind::Report,
                    crate::jobs::JobParams::default(),
                )
            });
            let job = job.flatten();
            let inventory = scan(config, &args.bucket);
            if let Some(job) = &job {
                if let Ok(inventory) = &inventory {
                    job.set_report(crate::job_runner::report_rows(
                        inventory,
                        &config.named_keys,
                    ));
                }
                job.finish(match &inventory {
                    Ok(inventory) => Ok(inventory.lines(&config.named_keys)),
                    Err(e) => Err(e.0.clone()),
                });
            }
            for line in inventory?.lines(&config.named_keys) {
                println!("{line}");
            }
            Ok(())
        }
        Command::Keys {
            action: KeysAction::Destroy(args),
        } => match args.version {
            Some(version) => crate::rotation::destroy_version(args, version, config),
            None => destroy(args, config),
        },
        Command::Keys {
            action: KeysAction::Rotate(args),
        } => crate::rotation::rotate(args, config),
        Command::Rewrap(args) => crate::rotation::rewrap(args, config),
        Command::Encrypt(args) => {
            if args.config.dev {
                finish_dev_setup(config, false)?;
            }
            encrypt(args, config)
        }
        Command::Decrypt(args) => {
            if args.config.dev {
                finish_dev_setup(config, false)?;
            }
            decrypt(args, config)
        }
        Command::Serve(args) => serve(args, config),
        Command::CheckConfig { .. } => check_config(config),
        Command::ConsolePassword { iterations } => console_password(*iterations),
    }
}

/// `twofold console-password`: one line of stdin (without echo on a terminal), hashed.
pub fn console_password(iterations: u32) -> Result<(), CliError> {
    use std::io::BufRead;
    let stdin = std::io::stdin();
    let echo = EchoOff::new(&stdin);
    if echo.is_some() {
        eprint!("console password: ");
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| fail(format!("reading the password: {e}")))?;
    drop(echo);
    let password = line.trim_end_matches(['\n', '\r']);
    if password.len() < 12 {
        return Err(fail("a console password needs at least 12 characters"));
    }
    let hash = crate::config::PasswordHash::generate(password, iterations).map_err(fail)?;
    println!("{hash}");
    Ok(())
}

/// A terminal's echo, off while this lives (nothing when stdin is no terminal).
struct EchoOff(nix::sys::termios::Termios);

impl EchoOff {
    fn new(stdin: &std::io::Stdin) -> Option<Self> {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(stdin, SetArg::TCSANOW, &quiet).ok()?;
        Some(Self(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
        eprintln!();
    }
}

/// The objects of `buckets` (all by default), counted per KEK pair.
pub(crate) fn scan(
    config: &Config,
    buckets: &[String],
) -> Result<crate::inventory::Inventory, CliError> {
    let serve = config
        .serve
        .as_ref()
        .ok_or_else(|| fail("the configuration has no [backend] to scan"))?;
    crate::inventory::scan(serve, buckets).map_err(fail)
}

/// `twofold keys destroy`: counts what the key protects, asks for confirmation (the key
/// id typed again) unless `--yes`, then destroys its KEK on both tokens and says how to
/// mark it destroyed in the configuration.
fn destroy(args: &DestroyArgs, config: &Config) -> Result<(), CliError> {
    let keys = &config.named_keys;
    let key = keys
        .keys
        .iter()
        .find(|k| k.id == args.key_id)
        .ok_or_else(|| {
            fail(format!(
                "{:?} is no named key of this configuration (the default key is not destroyed this way)",
                args.key_id
            ))
        })?;
    let under = scan(config, &args.scan.bucket)?.under(keys, &key.id);
    println!(
        "{} object(s) in {} bucket(s) are under {:?}; destroying it makes them unreadable for good",
        under.objects,
        under.buckets.len(),
        key.id
    );
    if args.dry_run {
        return Ok(());
    }
    if !args.yes {
        confirm(&key.id)?;
    }
    for (layer, spec, label) in [
        (Layer::Outer, &config.outer, &key.outer_kek),
        (Layer::Inner, &config.inner, &key.inner_kek),
    ] {
        println!("{}", Custodian::destroy(layer, spec, label)?);
    }
    println!(
        "now set `destroyed = true` in the [[named_key]] of {:?} on every appliance, check it \
         with `twofold check-config`, and restart them one at a time",
        key.id
    );
    Ok(())
}

/// Asks for `key_id` to be typed again; anything else is a refusal.
pub(crate) fn confirm(key_id: &str) -> Result<(), CliError> {
    eprint!("type the key id again to destroy it: ");
    let mut typed = String::new();
    io::stdin()
        .read_line(&mut typed)
        .map_err(|e| fail(format!("reading the confirmation: {e}")))?;
    match typed.trim() == key_id {
        true => Ok(()),
        false => Err(fail("not confirmed: nothing destroyed")),
    }
}

/// `twofold check-config`: the file has parsed and validated; now check that the secrets
/// it names can be read, and say what it configures.
fn check_config(config: &Config) -> Result<(), CliError> {
    let (ok, mut lines) = crate::config::check(config);
    let why = (!ok).then(|| lines.pop().unwrap_or_default());
    for line in &lines {
        println!("{line}");
    }
    match why {
        None => Ok(()),
        Some(why) => Err(fail(why)),
    }
}

/// What the web console needs, when the configuration has one: the configuration and a
/// job runner with the gateway's own custodians and (effective) settings.
fn console_parts(
    config: &Config,
    settings: &crate::config::ServeSettings,
    inner: &Custodian,
    outer: &Custodian,
) -> Result<Option<crate::serve::console::ConsoleParts>, CliError> {
    let Some(console) = &settings.console else {
        return Ok(None);
    };
    let store = crate::jobs::JobStore::open(&console.state_dir).map_err(|e| {
        fail(format!(
            "console.state_dir: {}: {e}",
            console.state_dir.display()
        ))
    })?;
    let config = std::sync::Arc::new(config.clone());
    let runner = crate::job_runner::Runner::new(
        config.clone(),
        settings.clone(),
        (inner.clone(), outer.clone()),
        store,
    );
    Ok(Some(crate::serve::console::ConsoleParts {
        config,
        launcher: std::sync::Arc::new(runner),
    }))
}

/// The configuration selected by a command line.
pub fn config_args(cli: &Cli) -> &ConfigArgs {
    match &cli.command {
        Command::Keys {
            action: KeysAction::Init(a),
        } => a,
        Command::Keys {
            action: KeysAction::Report(a),
        } => &a.config,
        Command::Keys {
            action: KeysAction::Destroy(a),
        } => &a.scan.config,
        Command::Keys {
            action: KeysAction::Rotate(a),
        } => &a.config,
        Command::Rewrap(a) => &a.config,
        Command::Encrypt(a) | Command::Decrypt(a) => &a.config,
        Command::Serve(a) => &a.config,
        Command::CheckConfig { .. } | Command::ConsolePassword { .. } => &CHECK_CONFIG_ARGS,
    }
}

/// `check-config` names its file as an argument of its own; [`config_path`] gives it back.
static CHECK_CONFIG_ARGS: ConfigArgs = ConfigArgs {
    config: None,
    dev: false,
};

/// The configuration file a command line names.
pub fn config_file(cli: &Cli) -> Result<PathBuf, CliError> {
    match &cli.command {
        Command::CheckConfig { file } => Ok(file.clone()),
        _ => config_path(config_args(cli)),
    }
}

pub(crate) fn keyring(config: &Config) -> Result<Keyring, CliError> {
    let outer = Custodian::open(Layer::Outer, &config.outer)?;
    let inner = Custodian::open(Layer::Inner, &config.inner)?;
    Ok(Keyring::new(inner, outer, config.keyring).with_named_keys(config.named_keys.clone()))
}

/// The customer-provided key of `--sse-c-key-file`: 32 bytes, or their base64.
fn customer_key(
    args: &ObjectArgs,
) -> Result<Option<crate::envelope::customer::CustomerKey>, CliError> {
    use base64::Engine;
    let Some(path) = &args.sse_c_key_file else {
        return Ok(None);
    };
    crate::private_file::check_owner_only(path)
        .map_err(|e| fail(format!("--sse-c-key-file: {}", e.reason())))?;
    let raw = zeroize::Zeroizing::new(
        std::fs::read(path).map_err(|e| fail(format!("{}: {e}", path.display())))?,
    );
    let decoded = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(raw.trim_ascii())
            .unwrap_or_default(),
    );
    let bytes: &[u8] = match raw.len() {
        32 => &raw,
        _ => &decoded,
    };
    let key: [u8; 32] = bytes.try_into().map_err(|_| {
        fail(format!(
            "{}: not a customer key (32 bytes, or their base64)",
            path.display()
        ))
    })?;
    let key = zeroize::Zeroizing::new(key);
    Ok(Some(crate::envelope::customer::CustomerKey::new(&key)))
}

fn input(args: &ObjectArgs) -> Result<Box<dyn Read>, CliError> {
    Ok(match &args.input {
        Some(p) => Box::new(io::BufReader::new(
            std::fs::File::open(p).map_err(|e| fail(format!("{}: {e}", p.display())))?,
        )),
        None => Box::new(io::stdin().lock()),
    })
}

/// An output that is either stdout or a temporary file renamed into place on success.
struct Output {
    target: Option<(PathBuf, PathBuf)>,
    writer: Box<dyn Write>,
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Self, CliError> {
        match path {
            None => Ok(Self {
                target: None,
                writer: Box::new(io::BufWriter::new(io::stdout().lock())),
            }),
            Some(p) => {
                let mut tmp = p.as_os_str().to_owned();
                tmp.push(".twofold-partial");
                let tmp = PathBuf::from(tmp);
                let f = std::fs::File::create(&tmp)
                    .map_err(|e| fail(format!("{}: {e}", tmp.display())))?;
                Ok(Self {
                    target: Some((tmp, p.to_path_buf())),
                    writer: Box::new(io::BufWriter::new(f)),
                })
            }
        }
    }

    fn commit(mut self) -> Result<(), CliError> {
        self.writer.flush()?;
        if let Some((tmp, dst)) = self.target.take() {
            std::fs::rename(&tmp, &dst).map_err(|e| fail(format!("{}: {e}", dst.display())))?;
        }
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.target.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn encrypt(args: &ObjectArgs, config: &Config) -> Result<(), CliError> {
    let ring = keyring(config)?;
    let name = ObjectName {
        bucket: &args.bucket,
        key: &args.key,
    };
    let customer = customer_key(args)?;
    let default = &config.named_keys.default.id;
    let (header, keys) = block_on(ring.seal_new_for(name, None, default, customer.as_ref()))?;
    let cipher = SegmentCipher::new(&header, &keys, SINGLE_PART_NUMBER)?;
    let mut out = Output::open(args.output.as_deref())?;
    let mut writer = EncryptWriter::new(cipher, &mut out.writer);
    io::copy(&mut input(args)?, &mut writer)?;
    writer.finish()?;
    // Format version 2: an (empty) metadata record goes with every object.
    let described = crate::envelope::meta_record::seal(&header, &keys, &[])?
        .map_err(|e| fail(e.to_string()))?;
    std::fs::write(&args.meta, objmeta::to_json(&header, Some(&described)))
        .map_err(|e| fail(format!("{}: {e}", args.meta.display())))?;
    out.commit()
}

fn decrypt(args: &ObjectArgs, config: &Config) -> Result<(), CliError> {
    let text = std::fs::read_to_string(&args.meta)
        .map_err(|e| fail(format!("{}: {e}", args.meta.display())))?;
    let meta = objmeta::stored_from_json(&text)?;
    let header = &meta.header;
    // The stored length: the input file's, else the metadata's ContentLength.
    let file_len = match &args.input {
        Some(p) => Some(
            std::fs::metadata(p)
                .map_err(|e| fail(format!("{}: {e}", p.display())))?
                .len(),
        ),
        None => None,
    };
    if let (Some(f), Some(c)) = (file_len, meta.content_length)
        && f != c
    {
        return Err(fail(format!(
            "the input is {f} bytes and the metadata says ContentLength {c}: not the object the metadata describes"
        )));
    }
    let stored = file_len.or(meta.content_length);
    let ring = keyring(config)?;
    let name = ObjectName {
        bucket: &args.bucket,
        key: &args.key,
    };
    let customer = customer_key(args)?;
    let keys = block_on(ring.open_with(header, name, customer.as_ref()))?;
    let described = described_entries(&meta, &keys)?;
    let mut out = Output::open(args.output.as_deref())?;
    let result = match stored {
        Some(stored) => decrypt_planned(&meta, &keys, stored, &mut input(args)?, &mut out.writer),
        None if !header.multipart => {
            // A single-part object of unknown length from stdin: read with look-ahead.
            let cipher = SegmentCipher::new(header, &keys, SINGLE_PART_NUMBER)?;
            let mut reader = DecryptReader::new(cipher, input(args)?);
            io::copy(&mut reader, &mut out.writer)
                .map(|_| ())
                .map_err(|e| match envelope_error(&e) {
                    Some(env) => env.to_string(),
                    None => e.to_string(),
                })
        }
        None => Err(
            "a multipart object needs its stored length: give it with --input FILE, or as ContentLength in the metadata"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => {
            out.commit()?;
            print_described(&described);
            Ok(())
        }
        Err(msg) if args.output.is_none() => Err(fail(format!(
            "{msg} (the verified plaintext written before this point is incomplete: discard it)"
        ))),
        Err(msg) => Err(fail(msg)),
    }
}

/// The entries of a format-v2 object's sealed metadata record (`twofold-meta`), opened and
/// verified before any plaintext is written; a v2 object without one is refused, as the
/// gateway refuses it. Version 1 objects have none (their metadata is in the clear).
fn described_entries(
    meta: &objmeta::StoredMeta,
    keys: &crate::envelope::DataKeys,
) -> Result<crate::envelope::meta_record::Entries, CliError> {
    use crate::envelope::meta_record;
    if meta.header.version() < crate::envelope::header::FORMAT_VERSION {
        return Ok(Vec::new());
    }
    let value = meta.described.as_deref().ok_or_else(|| {
        fail("the object is of format version 2 and its metadata has no sealed metadata record (twofold-meta)".to_owned())
    })?;
    meta_record::open(&meta.header, keys, value).map_err(|e| fail(e.to_string()))
}

/// Prints what describes the object (its Content-Type, Content-Disposition, user
/// metadata...) on standard error, one `name: value` line each, after the plaintext.
fn print_described(entries: &[(String, Vec<u8>)]) {
    if entries.is_empty() {
        return;
    }
    eprintln!("the object's sealed metadata:");
    for (name, value) in entries {
        eprintln!(
            "  {name}: {}",
            String::from_utf8_lossy(value).escape_debug()
        );
    }
}

/// Opens a whole stored object of `stored` bytes from `input` by its read plan: single-part,
/// multipart aligned (parts followed through their final flags; the part count checked
/// against an ETag that gives one) or unaligned (the layout record opened and checked
/// against the stored length, the marker padding skipped), and its checksum record, if
/// any, opened and checked against the plaintext. Every segment is verified before its
/// plaintext is written; any failure is an error message.
fn decrypt_planned(
    meta: &objmeta::StoredMeta,
    keys: &crate::envelope::DataKeys,
    stored: u64,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<(), String> {
    use crate::envelope::{checksum_record, plan, read, record};
    use base64::Engine;
    let header = &meta.header;
    let layout = if record::required(header, stored) {
        let value = meta
            .layout
            .as_deref()
            .filter(|v| v.len() <= objmeta::LAYOUT_VALUE_LEN_MAX)
            .ok_or("the object must have a layout record (twofold-layout metadata), and the metadata has none")?;
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value.trim())
            .map_err(|_| "the layout record is not base64url".to_owned())?;
        Some(record::open(header, keys, &sealed, stored).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let checksum = match &meta.checksum {
        Some(value) => {
            Some(checksum_record::open_for(header, keys, value.trim()).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let object = plan::ObjectMeta {
        header,
        stored_len: stored,
        layout_record: layout.as_ref(),
        etag_parts: plan::parts_count_from_etag(meta.etag.as_deref()),
        segments_per_part: None,
        has_checksum_record: checksum.is_some(),
    };
    let p = plan::plan(&object, &plan::ReadRequest::whole()).map_err(|e| e.to_string())?;
    // The checksum of the plaintext: of the whole, or of each part for a composite one.
    let mut whole = checksum.map(|c| crate::s3::checksum::Hasher::new(c.algorithm));
    let mut part_digests: Vec<crate::s3::checksum::Checksum> = Vec::new();
    let mut current: Option<(u32, crate::s3::checksum::Hasher)> = None;
    let composite = checksum.filter(|c| c.parts.is_some());
    let mut sink = |part: u32, bytes: &[u8]| -> io::Result<()> {
        if let Some(c) = composite {
            if current.as_ref().is_none_or(|(p, _)| *p != part) {
                if let Some((_, h)) = current.take() {
                    part_digests.push(h.finish_raw());
                }
                current = Some((part, crate::s3::checksum::Hasher::new(c.algorithm)));
            }
            if let Some((_, h)) = current.as_mut() {
                h.update(bytes);
            }
        } else if let Some(h) = whole.as_mut() {
            h.update(bytes);
        }
        output.write_all(bytes)
    };
    let summary = read::read_plan(&p, header, keys, input, &mut sink).map_err(|e| match e {
        read::ReadError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the stored object ends early: truncated".to_owned()
        }
        e => e.to_string(),
    })?;
    // After the parts: the marker padding (unaligned objects), then nothing.
    let pad = p.shape.padding_len();
    let skipped = io::copy(&mut input.take(pad), &mut io::sink()).map_err(|e| e.to_string())?;
    let mut extra = [0u8; 1];
    let more = input.read(&mut extra).map_err(|e| e.to_string())?;
    if skipped != pad || more != 0 || summary.stored_read + pad != stored {
        return Err(format!(
            "the stored object is not {stored} bytes long, as its length says"
        ));
    }
    // An aligned multipart object's parts are found by their final flags; an ETag that
    // counts parts must agree.
    if header.multipart
        && layout.is_none()
        && meta
            .etag
            .as_deref()
            .is_some_and(|e| e.trim_matches('"').rsplit_once('-').is_some())
    {
        let want = plan::parts_count_from_etag(meta.etag.as_deref());
        if summary.last_part != want {
            return Err(format!(
                "the stored object holds {} parts and its ETag says {want}",
                summary.last_part
            ));
        }
    }
    if let Some(c) = checksum {
        let got = match c.parts {
            Some(n) => {
                if let Some((_, h)) = current.take() {
                    part_digests.push(h.finish_raw());
                }
                if part_digests.len() != usize::from(n) {
                    return Err(format!(
                        "the checksum record counts {n} parts and the object has {}",
                        part_digests.len()
                    ));
                }
                crate::s3::checksum::composite(c.algorithm, &part_digests)
            }
            None => whole.take().ok_or("checksum")?.finish_raw(),
        };
        if !crate::envelope::constant_time_eq(got.as_bytes(), c.digest.as_bytes()) {
            return Err(format!(
                "the plaintext does not match the object's {} checksum",
                c.algorithm
            ));
        }
    }
    output.flush().map_err(|e| e.to_string())
}

/// SIGTERM and SIGINT stop the gateway gracefully: for `drain_notice` it tells clients and
/// load balancers (`/readyz` 503, `Connection: close` on every response) while it still
/// accepts; then no new connections, and requests in flight finish within the shutdown
/// grace. A second SIGTERM or SIGINT skips what is left of the notice. SIGHUP reloads the client-facing certificate and key;
/// a failed reload keeps the old ones. With plain HTTP there is nothing to reload, and
/// SIGHUP is still caught (and said so) rather than ending the gateway. The signal handler
/// itself only wakes this thread.
fn watch_signals(
    handle: &crate::serve::ServeHandle,
    drain_notice: std::time::Duration,
) -> Result<(), CliError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| fail(format!("installing signal handlers: {e}")))?;
    let stop = handle.stop_flag();
    let draining = handle.drain_flag();
    let tls = handle.server_tls();
    let admin_tls = handle.admin_tls();
    std::thread::Builder::new()
        .name("twofold-signals".into())
        .spawn(move || {
            use std::sync::atomic::Ordering;
            for signal in signals.forever() {
                match signal {
                    SIGHUP => {
                        reload_tls(tls.as_deref(), "client");
                        if let Some(admin) = admin_tls.as_deref() {
                            reload_tls(Some(admin), "admin");
                        }
                    }
                    // A second stop signal during the notice stops at once.
                    _ if draining.load(Ordering::SeqCst) => {
                        tracing::info!(signal, "stopping now: no new connections");
                        stop.store(true, Ordering::SeqCst);
                    }
                    _ => {
                        tracing::info!(
                            signal,
                            notice_secs = drain_notice.as_secs(),
                            "stopping: /readyz says 503 and responses say Connection: close; \
                             then no new connections, and requests in flight finish"
                        );
                        crate::notify::notify_or_log("STOPPING=1");
                        draining.store(true, Ordering::SeqCst);
                        let stop = stop.clone();
                        let _ = std::thread::Builder::new()
                            .name("twofold-drain-notice".into())
                            .spawn(move || {
                                std::thread::sleep(drain_notice);
                                stop.store(true, Ordering::SeqCst);
                            });
                    }
                }
            }
        })
        .map_err(|e| fail(format!("starting the signal thread: {e}")))?;
    Ok(())
}

/// The SIGHUP reload of the client-facing certificate and key.
fn reload_tls(tls: Option<&crate::tls::ServerTls>, listener: &str) {
    let Some(tls) = tls else {
        tracing::info!(listener, "SIGHUP: plain HTTP, no certificate to reload");
        return;
    };
    match tls.reload() {
        Ok(()) => {
            tracing::info!(
                listener,
                generation = tls.generation(),
                "SIGHUP: TLS certificate reloaded"
            );
        }
        Err(e) => {
            tracing::error!(
                listener,
                failed_reloads = tls.reloads_failed(),
                error = %e,
                "SIGHUP: TLS reload failed, keeping the previous certificate"
            );
        }
    }
}

/// Under a systemd watchdog: pings it while every core keeps going round its loop, so that
/// a wedged core gets the service restarted.
fn start_watchdog(handle: &crate::serve::ServeHandle) {
    let Some(interval) = crate::notify::watchdog_interval() else {
        return;
    };
    let heartbeats = handle.heartbeats();
    let stop = handle.stop_flag();
    let _ = std::thread::Builder::new()
        .name("twofold-watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                if heartbeats.all_within(interval * 2)
                    || stop.load(std::sync::atomic::Ordering::SeqCst)
                {
                    crate::notify::notify_or_log("WATCHDOG=1");
                } else {
                    tracing::error!("a core is not going round its loop: not pinging the watchdog");
                }
            }
        });
}

fn serve(args: &ServeArgs, config: &Config) -> Result<(), CliError> {
    let mut settings = config.serve.clone().ok_or_else(|| {
        fail(format!(
            "{}: `twofold serve` needs [server], [backend] and [[credential]] sections",
            config.path.display()
        ))
    })?;
    if let Some(listen) = args.listen {
        settings.listen = listen;
    }
    if let Some(admin) = args.admin_listen {
        settings.admin_listen = admin.addr();
    }
    let mut dev_backend = None;
    if args.config.dev {
        finish_dev_setup(config, false)?;
        let dir = config.path.parent().unwrap_or(Path::new("."));
        let backend = crate::devbackend::DevBackend::start(
            "127.0.0.1:0".parse().map_err(|_| fail("address"))?,
            &dir.join(dev::DEV_DATA_DIR),
            &settings.backend_access_key_id,
            settings.backend_secret.0.as_str(),
        )
        .map_err(|e| fail(format!("starting the dev S3 backend: {e}")))?;
        settings.backend_addr = backend.addr().to_string();
        settings.backend_host = backend.addr().to_string();
        dev_backend = Some(backend);
    }
    let outer = Custodian::open(Layer::Outer, &config.outer)?;
    let inner = Custodian::open(Layer::Inner, &config.inner)?;
    let region = settings.region.clone();
    let drain_notice = settings.drain_notice;
    let client_secret = settings
        .credentials
        .first()
        .map(|c| c.secret.0.as_str().to_owned());
    let console = console_parts(config, &settings, &inner, &outer)?;
    let admin_scheme = match settings.admin_tls {
        crate::config::ListenerTls::Tls { .. } => "https",
        crate::config::ListenerTls::PlainHttp => "http",
    };
    let has_console = console.is_some();
    let handle = crate::serve::start_with_console(settings, inner, outer, config.keyring, console)
        .map_err(|e| fail(format!("starting the gateway: {e}")))?;
    let addr = handle.addr();
    let scheme = if handle.server_tls().is_some() {
        "https"
    } else {
        "http"
    };
    watch_signals(&handle, drain_notice)?;
    start_watchdog(&handle);
    crate::notify::notify_or_log("READY=1");
    if let Some(admin) = handle.admin_addr() {
        println!(
            "twofold: admin listener on {admin_scheme}://{admin} (/metrics, /healthz, /readyz)"
        );
        if has_console {
            println!("twofold: console on {admin_scheme}://{admin}/console/");
        }
    }
    if let (Some(backend), Some(secret)) = (&dev_backend, client_secret) {
        let dir = config.path.parent().unwrap_or(Path::new("."));
        let env = dev::write_client_env(dir, &addr, &region, &secret)?;
        println!(
            "twofold: gateway on {scheme}://{addr} (dev backend on {}, objects under {})",
            backend.addr(),
            backend.root().display()
        );
        println!(
            "twofold: try:  set -a; . {}; set +a; aws s3 mb s3://demo && aws s3 cp README.md s3://demo/ && aws s3 ls s3://demo/",
            env.display()
        );
    } else {
        println!("twofold: gateway on {scheme}://{addr}");
    }
    handle.wait();
    drop(dev_backend);
    Ok(())
}
