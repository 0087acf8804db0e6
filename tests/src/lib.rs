//! Test support for Twofold's integration tests: real SoftHSM2 tokens, real custodians and
//! keyrings over them, and helpers to seal objects, open them the way a reader does, and
//! damage stored bytes. No mocks: every key-encryption key lives in a SoftHSM2 token.
//!
//! This is support code, not a test, so clippy holds it to the library rules: failures
//! here panic with a message saying what could not be set up.
//!
//! # Use
//!
//! ```no_run
//! use twofold::envelope::ObjectName;
//! let mut ring = twofold_tests::keyring();
//! let name = ObjectName { bucket: "b", key: "k" };
//! let plain = twofold_tests::random_bytes(10_000);
//! let (header, stored) = twofold_tests::seal_object(&mut ring, name, &plain);
//! let opened = twofold_tests::open_object(&mut ring, &header, name, 0, &stored).unwrap();
//! assert_eq!(opened.released, plain);
//! opened.result.unwrap();
//! ```
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, at `C_Initialize`. [`softhsm_env`] points it at a
//! token folder of this test process, once, before any PKCS#11 call; every helper that
//! touches a token calls it first. Every token gets a label of its own
//! ([`unique_label`]), so tests run in parallel without seeing each other's tokens.

pub mod admin;
pub mod backend;
pub mod checksums;
pub mod gateway;
pub mod rawhttp;

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use twofold::keys::block_on;

use twofold::envelope::aead::{Layer, NONCE_LEN_BYTES, TAG_LEN_BYTES};
use twofold::envelope::header::{FIXED_LEN_BYTES, Header};
use twofold::envelope::layout::{SEGMENT_OVERHEAD_BYTES, SegmentSize};
use twofold::envelope::stream::{DecryptReader, EncryptWriter};
use twofold::envelope::{DataKeys, Error, ObjectName, SegmentCipher};
use twofold::keys::{Custodian, CustodianSpec, KeyError, Keyring, KeyringSettings, PinSource};

/// The PKCS#11 module: SoftHSM2 as Debian installs it.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Calls `C_Finalize` on the SoftHSM2 module this process has loaded, as an HSM that goes
/// away underneath the gateway: every custodian call fails from then on with
/// `CKR_CRYPTOKI_NOT_INITIALIZED`, for the whole process (so a test that calls it runs in a
/// process of its own: `ran_in_own_process` in tests/tests/it/main.rs).
pub fn finalize_softhsm2_module() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let ctx = Pkcs11::new(SOFTHSM2_MODULE).unwrap_or_else(|e| panic!("load SoftHSM2: {e}"));
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    if let Err(e) = ctx.finalize() {
        panic!("C_Finalize: {e}");
    }
}
/// Security-officer PIN of every test token.
pub const SO_PIN: &str = "twofold-test-so-pin";
/// Longest token label PKCS#11 allows.
pub const TOKEN_LABEL_LEN_MAX: usize = 32;
/// Bytes of stored overhead per segment (both tags), as `usize`.
pub const OVERHEAD_BYTES: usize = SEGMENT_OVERHEAD_BYTES as usize;
/// A bucket-key window no test outlives: every seal in a test falls in one window.
pub const WINDOW_SECS_FOREVER: u64 = 1 << 40;

/// The smallest segment size, 4 KiB, which keeps multi-segment objects small.
pub fn segment_4k() -> SegmentSize {
    SegmentSize::from_log2(12).unwrap_or_else(|e| panic!("2^12 is a valid segment size: {e}"))
}

/// Points SoftHSM2 at a token folder of this process (created on first call, kept until the
/// process exits) and returns that folder. Call before any PKCS#11 call; the helpers here
/// that touch tokens do.
pub fn softhsm_env() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("twofold-softhsm-")
            .tempdir()
            .unwrap_or_else(|e| panic!("creating the SoftHSM2 token folder: {e}"));
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens)
            .unwrap_or_else(|e| panic!("creating {}: {e}", tokens.display()));
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
        set_softhsm2_conf(&conf);
        dir
    })
    .path()
}

#[allow(unsafe_code)]
fn set_softhsm2_conf(conf: &Path) {
    // SAFETY: called only inside `softhsm_env`'s OnceLock initialiser, which every helper
    // that reaches the PKCS#11 module passes through first: other threads of this process
    // that want the module are blocked on the OnceLock meanwhile, none has called into C
    // code that reads the environment yet, and Rust's own environment access is serialised
    // by std.
    unsafe { std::env::set_var("SOFTHSM2_CONF", conf) };
}

/// What `twofold ARGS --config CONFIG` said, run in `cwd` with `stdin` typed in, as an
/// operator runs it (no `SOFTHSM2_CONF` but the configuration's).
pub fn twofold_cli(config: &Path, args: &[&str], stdin: &str, cwd: &Path) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(twofold_binary())
        .args(args)
        .args(["--config".as_ref(), config.as_os_str()])
        .current_dir(cwd)
        .env_remove("SOFTHSM2_CONF")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting twofold: {e}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .unwrap_or_else(|e| panic!("typing into twofold: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("running twofold: {e}"))
}

/// Everything a command printed, stdout then stderr.
pub fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `twofold` binary of this build (`cargo build -p gateway` makes it; `cargo test
/// --workspace` does).
pub fn twofold_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("the test binary: {e}"));
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("twofold"))
        .unwrap_or_else(|| panic!("no folder above {}", exe.display()));
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p gateway` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// The PKCS#11 module path.
pub fn module() -> PathBuf {
    PathBuf::from(SOFTHSM2_MODULE)
}

/// A token label no other token of this process has: `PREFIX-N`, within 32 bytes.
pub fn unique_label(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("-{n}");
    let room = TOKEN_LABEL_LEN_MAX - suffix.len();
    let prefix: String = prefix.chars().take(room).collect();
    format!("{prefix}{suffix}")
}

/// `len` random bytes from the OS.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .unwrap_or_else(|e| panic!("reading /dev/urandom: {e}"));
    out
}

/// Creates a fresh SoftHSM2 token with a unique label starting with `prefix` and a random
/// user PIN, and writes that PIN to a file of mode 0600 in the token folder.
/// Returns (module path, token label, PIN file).
pub fn token(prefix: &str) -> (PathBuf, String, PathBuf) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = softhsm_env();
    let label = unique_label(prefix);
    let pin = hex::encode(random_bytes(12));
    let pin_file = dir.join(format!("{label}.pin"));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&pin_file)
        .and_then(|mut f| writeln!(f, "{pin}"))
        .unwrap_or_else(|e| panic!("writing {}: {e}", pin_file.display()));
    hsm_bridge::init_token(
        &module(),
        &label,
        &hsm_bridge::Pin::from_dev_string(SO_PIN),
        &hsm_bridge::Pin::from_dev_string(&pin),
    )
    .unwrap_or_else(|e| panic!("creating SoftHSM2 token {label:?}: {e}"));
    (module(), label, pin_file)
}

/// The custodian setting for KEK `key_label` on a token made by [`token`].
pub fn pkcs11_spec(token: &(PathBuf, String, PathBuf), key_label: &str) -> CustodianSpec {
    let (module, token_label, pin_file) = token;
    CustodianSpec::Pkcs11 {
        module: module.clone(),
        token_label: token_label.clone(),
        pin: PinSource::File(pin_file.clone()),
        key_label: key_label.to_owned(),
        retired_key_labels: Vec::new(),
        named_key_labels: Vec::new(),
        hsm_threads: 1,
    }
}

/// Creates the custodian's KEK if it is missing ([`Custodian::init`]).
pub fn init_custodian(layer: Layer, spec: &CustodianSpec) {
    Custodian::init(layer, spec)
        .unwrap_or_else(|e| panic!("creating the {layer} KEK ({}): {e}", spec.describe()));
}

/// Opens a custodian whose KEK exists.
pub fn open_custodian(layer: Layer, spec: &CustodianSpec) -> Custodian {
    Custodian::open(layer, spec)
        .unwrap_or_else(|e| panic!("opening the {layer} custodian ({}): {e}", spec.describe()))
}

/// Keyring settings for tests: the given segment size, one bucket-key window for the whole
/// test, room for 1024 cached bucket keys per layer.
pub fn settings(segment_size: SegmentSize) -> KeyringSettings {
    KeyringSettings {
        segment_size,
        window_secs: WINDOW_SECS_FOREVER,
        epoch_secs: WINDOW_SECS_FOREVER,
        cache_entries: 1024,
        kek_version_check_secs: 60,
    }
}

/// The KEK label used on test tokens for `layer`.
pub fn kek_label(layer: Layer) -> String {
    format!("kek-{layer}")
}

/// Split custody as production has it: one token per layer, each with its KEK created.
#[derive(Debug, Clone)]
pub struct Custody {
    /// The inner layer's custodian setting.
    pub inner: CustodianSpec,
    /// The outer layer's custodian setting.
    pub outer: CustodianSpec,
}

impl Custody {
    /// Two fresh tokens (labels start with `prefix`) with a KEK each, labelled
    /// [`kek_label`] of its layer.
    pub fn new(prefix: &str) -> Self {
        let outer = pkcs11_spec(&token(&format!("{prefix}-o")), &kek_label(Layer::Outer));
        let inner = pkcs11_spec(&token(&format!("{prefix}-i")), &kek_label(Layer::Inner));
        init_custodian(Layer::Outer, &outer);
        init_custodian(Layer::Inner, &inner);
        Self { inner, outer }
    }

    /// A keyring over these custodians, with empty caches.
    pub fn keyring(&self, settings: KeyringSettings) -> Keyring {
        Keyring::new(
            open_custodian(Layer::Inner, &self.inner),
            open_custodian(Layer::Outer, &self.outer),
            settings,
        )
    }

    /// The `[custodian.LAYER]` table of a configuration file naming this token of `layer`,
    /// as an operator's host (or a recovery host) has it.
    pub fn config_table(&self, layer: Layer) -> String {
        let CustodianSpec::Pkcs11 {
            module,
            token_label,
            pin: PinSource::File(pin),
            key_label,
            ..
        } = self.spec(layer)
        else {
            panic!("test custodians are PKCS#11 tokens with PIN files")
        };
        format!(
            "[custodian.{layer}]\nkind = \"pkcs11\"\nmodule = \"{}\"\ntoken_label = \"{token_label}\"\n\
             key_label = \"{key_label}\"\npin_file = \"{}\"\nsofthsm2_conf = \"{}\"\n\n",
            module.display(),
            pin.display(),
            softhsm_env().join("softhsm2.conf").display()
        )
    }

    /// The setting of `layer`.
    pub fn spec(&self, layer: Layer) -> &CustodianSpec {
        match layer {
            Layer::Inner => &self.inner,
            Layer::Outer => &self.outer,
        }
    }
}

/// A keyring over two fresh tokens (outer, inner) writing 4 KiB segments.
pub fn keyring() -> Keyring {
    keyring_with(settings(segment_4k()))
}

/// A keyring over two fresh tokens with the given settings.
pub fn keyring_with(settings: KeyringSettings) -> Keyring {
    Custody::new("tf").keyring(settings)
}

/// Seals `plain` as part `part` (0 for a single-part object) of the object `header` and
/// `keys` describe, through [`EncryptWriter`]; returns the stored bytes.
pub fn seal_part(header: &Header, keys: &DataKeys, part: u32, plain: &[u8]) -> Vec<u8> {
    let cipher = SegmentCipher::new(header, keys, part)
        .unwrap_or_else(|e| panic!("segment keys of part {part}: {e}"));
    let mut writer = EncryptWriter::new(cipher, Vec::new());
    std::io::Write::write_all(&mut writer, plain)
        .unwrap_or_else(|e| panic!("sealing part {part}: {e}"));
    let (stored, written) = writer
        .finish()
        .unwrap_or_else(|e| panic!("finishing part {part}: {e}"));
    assert_eq!(written, stored.len() as u64, "EncryptWriter's byte count");
    stored
}

/// A new single-part object: its header, data keys and stored bytes.
pub fn seal_object_with_keys(
    ring: &Keyring,
    name: ObjectName<'_>,
    plain: &[u8],
) -> (Header, DataKeys, Vec<u8>) {
    let (header, keys) = block_on(ring.seal_new(name, None))
        .unwrap_or_else(|e| panic!("sealing a new object {name:?}: {e}"));
    let stored = seal_part(&header, &keys, twofold::envelope::SINGLE_PART_NUMBER, plain);
    (header, keys, stored)
}

/// A new single-part object: its header and stored bytes.
pub fn seal_object(ring: &Keyring, name: ObjectName<'_>, plain: &[u8]) -> (Header, Vec<u8>) {
    let (header, _keys, stored) = seal_object_with_keys(ring, name, plain);
    (header, stored)
}

/// What a reader got out of a stored part: the plaintext it released, and how it ended.
#[derive(Debug)]
pub struct Opened {
    /// Every byte [`DecryptReader`] handed out before it stopped.
    pub released: Vec<u8>,
    /// `Ok` at a clean end, else the envelope error that stopped it.
    pub result: Result<(), Error>,
}

/// Opens the stored bytes of part `part` through [`DecryptReader`], reading in small odd
/// chunks, and records what it released before it ended or failed.
pub fn decrypt_part(header: &Header, keys: &DataKeys, part: u32, stored: &[u8]) -> Opened {
    let cipher = SegmentCipher::new(header, keys, part)
        .unwrap_or_else(|e| panic!("segment keys of part {part}: {e}"));
    let mut reader = DecryptReader::new(cipher, stored);
    let mut released = Vec::new();
    let mut chunk = [0u8; 1000];
    let result = loop {
        match reader.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => released.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(into_envelope_error(e)),
        }
    };
    Opened { released, result }
}

/// The envelope error inside an I/O error from [`DecryptReader`]; panics on any other
/// I/O error (reading from memory has none).
pub fn into_envelope_error(e: std::io::Error) -> Error {
    let shown = e.to_string();
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(env)) => *env,
        _ => {
            panic!("DecryptReader failed with an I/O error that is not an envelope error: {shown}")
        }
    }
}

/// Has the keyring open the header for `name` and reads part `part` of `stored` with the
/// keys. `Err` when the keys do not open (nothing is released then).
pub fn open_object(
    ring: &Keyring,
    header: &Header,
    name: ObjectName<'_>,
    part: u32,
    stored: &[u8],
) -> Result<Opened, KeyError> {
    let keys = block_on(ring.open(header, name))?;
    Ok(decrypt_part(header, &keys, part, stored))
}

/// Flips bit `bit` (0..8) of `bytes[offset]`.
pub fn flip_bit(bytes: &mut [u8], offset: usize, bit: u8) {
    bytes[offset] ^= 1 << bit;
}

/// Byte range of stored segment `index` in a part whose every segment before the last is
/// full; the last may be shorter (the range is clamped to `stored_len`).
pub fn segment_range(seg: SegmentSize, index: usize, stored_len: usize) -> Range<usize> {
    let full = seg.bytes_usize() + OVERHEAD_BYTES;
    let start = (index * full).min(stored_len);
    start..((index + 1) * full).min(stored_len)
}

/// Byte ranges of one layer block's fields within the serialised header
/// (see `twofold::envelope::header` for the layout).
#[derive(Debug, Clone)]
pub struct LayerBlockRanges {
    /// The layer id byte.
    pub layer_id: usize,
    /// The KEK id length byte.
    pub kek_id_len: usize,
    /// The KEK id.
    pub kek_id: Range<usize>,
    /// The bucket-key reference: epoch and salt (format v2), or the wrapped key's length
    /// byte and the wrapped key (format v1).
    pub bucket_key: Range<usize>,
    /// The data-key nonce.
    pub dek_nonce: Range<usize>,
    /// The wrapped data key.
    pub wrapped_dek: Range<usize>,
    /// The wrapped data key's tag.
    pub wrapped_dek_tag: Range<usize>,
    /// The key commitment.
    pub commitment: Range<usize>,
}

/// Where each field of `layer`'s block sits in `header.to_bytes()`.
pub fn layer_block_ranges(header: &Header, layer: Layer) -> LayerBlockRanges {
    fn block_len(h: &Header, l: Layer) -> usize {
        let b = h.layer(l);
        2 + b.kek_id.len() + reference_len(b) + NONCE_LEN_BYTES + 32 + TAG_LEN_BYTES + 32
    }
    fn reference_len(b: &twofold::envelope::header::LayerBlock) -> usize {
        let mut r = Vec::new();
        b.bucket_key.write(&mut r);
        r.len()
    }
    let start = match layer {
        Layer::Inner => FIXED_LEN_BYTES,
        Layer::Outer => FIXED_LEN_BYTES + block_len(header, Layer::Inner),
    };
    let block = header.layer(layer);
    let kek_id = start + 2..start + 2 + block.kek_id.len();
    let bucket_key = kek_id.end..kek_id.end + reference_len(block);
    let dek_nonce = bucket_key.end..bucket_key.end + NONCE_LEN_BYTES;
    let wrapped_dek = dek_nonce.end..dek_nonce.end + 32;
    let wrapped_dek_tag = wrapped_dek.end..wrapped_dek.end + TAG_LEN_BYTES;
    let commitment = wrapped_dek_tag.end..wrapped_dek_tag.end + 32;
    LayerBlockRanges {
        layer_id: start,
        kek_id_len: start + 1,
        kek_id,
        bucket_key,
        dek_nonce,
        wrapped_dek,
        wrapped_dek_tag,
        commitment,
    }
}
