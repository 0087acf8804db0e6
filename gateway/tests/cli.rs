//! The `twofold` binary, run as a user runs it: each test in a fresh folder as the current
//! directory, with `SOFTHSM2_CONF` removed from the child's environment so that only the
//! `--dev` set-up or the configuration file decides where the tokens are.
//!
//! Covers `keys init`, the encrypt/decrypt round trip (stdin/stdout and files), the stored
//! size, refusals (wrong name, tampered bytes) with a one-line reason and no output file
//! left behind, both metadata JSON shapes, a configuration file with a key-file inner and a
//! PKCS#11 outer custodian, and configuration errors that name what is wrong.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Segment size of the `--dev` configuration.
const DEV_SEGMENT_BYTES: usize = 65536;
const SEGMENT_OVERHEAD_BYTES: usize = 32;

/// Runs the binary in `dir` with `args`, feeding `stdin` (or nothing).
fn twofold(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twofold"))
        .current_dir(dir)
        .env_remove("SOFTHSM2_CONF")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let feeder = stdin.map(|bytes| {
        let bytes = bytes.to_vec();
        let mut pipe = child.stdin.take().unwrap();
        // A thread of its own, so that a child filling its stdout pipe cannot deadlock us.
        std::thread::spawn(move || {
            // The child may stop reading early (on an error); that is not our failure.
            let _ = pipe.write_all(&bytes);
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(f) = feeder {
        f.join().unwrap();
    }
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstderr: {}",
        out.status,
        stderr(out)
    );
}

/// Failed with exit status 1 and one line on stderr, `twofold: error: ...`, and no panic.
#[track_caller]
fn assert_refused(out: &Output, what: &str) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{what}: stderr: {err}");
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
    assert!(err.starts_with("twofold: error: "), "{what}: {err:?}");
    err
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut out)
        .unwrap();
    out
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("twofold-cli-")
        .tempdir()
        .unwrap()
}

/// A folder with the `--dev` set-up made by `keys init --dev`.
fn dev_dir() -> tempfile::TempDir {
    let dir = temp_dir();
    assert_success(
        &twofold(dir.path(), &["keys", "init", "--dev"], None),
        "keys init --dev",
    );
    dir
}

fn object_args<'a>(cfg: &'a [&'a str], bucket: &'a str, key: &'a str) -> Vec<&'a str> {
    let mut v = cfg.to_vec();
    v.extend(["--bucket", bucket, "--key", key, "--meta", "meta.json"]);
    v
}

/// Encrypts `plain` through stdin/stdout; returns the stored bytes.
fn encrypt_stdin(dir: &Path, cfg: &[&str], bucket: &str, key: &str, plain: &[u8]) -> Vec<u8> {
    let mut args = vec!["encrypt"];
    args.extend(object_args(cfg, bucket, key));
    let out = twofold(dir, &args, Some(plain));
    assert_success(&out, "encrypt");
    out.stdout
}

fn decrypt_stdin(dir: &Path, cfg: &[&str], bucket: &str, key: &str, stored: &[u8]) -> Output {
    let mut args = vec!["decrypt"];
    args.extend(object_args(cfg, bucket, key));
    twofold(dir, &args, Some(stored))
}

fn stored_len(plain: usize, segment: usize) -> usize {
    plain + SEGMENT_OVERHEAD_BYTES * plain.div_ceil(segment).max(1)
}

/// Files in `dir` whose names end in `.twofold-partial`.
fn partial_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".twofold-partial"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// --dev

#[test]
fn keys_init_dev_creates_tokens_and_keys_then_reports_them_as_existing() {
    let dir = temp_dir();
    let first = twofold(dir.path(), &["keys", "init", "--dev"], None);
    assert_success(&first, "first keys init");
    let said = stdout(&first);
    assert!(said.contains("created"), "{said}");
    assert!(
        said.contains("outer layer") && said.contains("inner layer"),
        "{said}"
    );
    for f in ["config.toml", "softhsm2.conf", "outer.pin", "inner.pin"] {
        assert!(dir.path().join(".twofold-dev").join(f).exists(), "{f}");
    }

    let second = twofold(dir.path(), &["keys", "init", "--dev"], None);
    assert_success(&second, "second keys init");
    let said = stdout(&second);
    assert!(!said.contains("created"), "{said}");
    // Each layer's KEK and the dev configuration's named key's.
    assert_eq!(said.matches("exists").count(), 4, "{said}");
    assert!(said.contains("twofold-dev-example-outer"), "{said}");
}

#[test]
fn encrypt_then_decrypt_through_stdin_and_stdout_round_trips_with_32_bytes_per_segment() {
    let dir = dev_dir();
    let d = dir.path();
    for len in [0usize, 1, DEV_SEGMENT_BYTES, 200_000] {
        let plain = random_bytes(len);
        let stored = encrypt_stdin(d, &["--dev"], "bucket", "some/key", &plain);
        assert_eq!(
            stored.len(),
            stored_len(len, DEV_SEGMENT_BYTES),
            "{len} bytes"
        );
        let out = decrypt_stdin(d, &["--dev"], "bucket", "some/key", &stored);
        assert_success(&out, "decrypt");
        assert!(out.stdout == plain, "{len} bytes: plaintext differs");
    }
}

#[test]
fn encrypt_then_decrypt_through_input_and_output_files_round_trips() {
    let dir = dev_dir();
    let d = dir.path();
    let plain = random_bytes(3 * DEV_SEGMENT_BYTES + 7);
    std::fs::write(d.join("plain.bin"), &plain).unwrap();
    let mut args = vec!["encrypt"];
    args.extend(object_args(&["--dev"], "b", "k"));
    args.extend(["--input", "plain.bin", "--output", "stored.bin"]);
    let out = twofold(d, &args, None);
    assert_success(&out, "encrypt");
    assert!(out.stdout.is_empty());
    let stored = std::fs::read(d.join("stored.bin")).unwrap();
    assert_eq!(stored.len(), plain.len() + 4 * SEGMENT_OVERHEAD_BYTES);

    let mut args = vec!["decrypt"];
    args.extend(object_args(&["--dev"], "b", "k"));
    args.extend(["--input", "stored.bin", "--output", "back.bin"]);
    let out = twofold(d, &args, None);
    assert_success(&out, "decrypt");
    assert!(out.stdout.is_empty());
    assert!(std::fs::read(d.join("back.bin")).unwrap() == plain);
    assert!(partial_files(d).is_empty(), "{:?}", partial_files(d));
}

#[test]
fn decrypt_under_another_key_or_bucket_fails_with_one_line_and_leaves_no_output_file() {
    let dir = dev_dir();
    let d = dir.path();
    let plain = random_bytes(100_000);
    let stored = encrypt_stdin(d, &["--dev"], "bucket", "key", &plain);
    std::fs::write(d.join("stored.bin"), &stored).unwrap();
    for (bucket, key) in [("bucket", "key2"), ("bucket2", "key"), ("Bucket", "key")] {
        let out = decrypt_stdin(d, &["--dev"], bucket, key, &stored);
        let err = assert_refused(&out, &format!("{bucket}/{key} via stdout"));
        assert!(err.contains("data key does not open"), "{err}");
        assert!(
            out.stdout.is_empty(),
            "plaintext released under a wrong name"
        );

        let mut args = vec!["decrypt"];
        args.extend(object_args(&["--dev"], bucket, key));
        args.extend(["--input", "stored.bin", "--output", "out.bin"]);
        let out = twofold(d, &args, None);
        assert_refused(&out, &format!("{bucket}/{key} via --output"));
        assert!(!d.join("out.bin").exists(), "output file left behind");
        assert!(partial_files(d).is_empty(), "{:?}", partial_files(d));
    }
}

#[test]
fn decrypt_of_a_tampered_stored_file_fails_and_releases_only_verified_segments() {
    let dir = dev_dir();
    let d = dir.path();
    let plain = random_bytes(4 * DEV_SEGMENT_BYTES + 100);
    let mut stored = encrypt_stdin(d, &["--dev"], "b", "k", &plain);
    // One bit of segment 2.
    stored[2 * (DEV_SEGMENT_BYTES + SEGMENT_OVERHEAD_BYTES) + 1000] ^= 0x10;
    let out = decrypt_stdin(d, &["--dev"], "b", "k", &stored);
    let err = assert_refused(&out, "tampered via stdout");
    assert!(err.contains("segment 2"), "{err}");
    assert!(err.contains("discard"), "{err}");
    assert!(
        out.stdout.len() <= 2 * DEV_SEGMENT_BYTES && plain.starts_with(&out.stdout),
        "stdout holds {} bytes that are not a verified prefix",
        out.stdout.len()
    );

    std::fs::write(d.join("stored.bin"), &stored).unwrap();
    let mut args = vec!["decrypt"];
    args.extend(object_args(&["--dev"], "b", "k"));
    args.extend(["--input", "stored.bin", "--output", "out.bin"]);
    let out = twofold(d, &args, None);
    assert_refused(&out, "tampered via --output");
    assert!(!d.join("out.bin").exists(), "output file left behind");
    assert!(partial_files(d).is_empty(), "{:?}", partial_files(d));

    // Cut short: the last segment dropped.
    let whole = encrypt_stdin(d, &["--dev"], "b", "k", &plain);
    let cut = &whole[..4 * (DEV_SEGMENT_BYTES + SEGMENT_OVERHEAD_BYTES)];
    let out = decrypt_stdin(d, &["--dev"], "b", "k", cut);
    let err = assert_refused(&out, "truncated");
    assert!(err.contains("truncated"), "{err}");
}

#[test]
fn decrypt_accepts_metadata_in_the_flat_header_form() {
    let dir = dev_dir();
    let d = dir.path();
    let plain = random_bytes(70_000);
    let stored = encrypt_stdin(d, &["--dev"], "b", "k", &plain);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("meta.json")).unwrap()).unwrap();
    let value = meta["Metadata"]["twofold"].as_str().unwrap().to_owned();
    let record = meta["Metadata"]["twofold-meta"]
        .as_str()
        .unwrap()
        .to_owned();
    let flat = serde_json::json!({
        "x-amz-meta-twofold": value,
        "x-amz-meta-twofold-meta": record,
    });
    std::fs::write(d.join("meta.json"), flat.to_string()).unwrap();
    let out = decrypt_stdin(d, &["--dev"], "b", "k", &stored);
    assert_success(&out, "decrypt with flat metadata");
    assert!(out.stdout == plain);

    // And metadata without the entry is refused with a reason.
    std::fs::write(d.join("meta.json"), r#"{"x-amz-meta-other": "x"}"#).unwrap();
    let out = decrypt_stdin(d, &["--dev"], "b", "k", &stored);
    let err = assert_refused(&out, "no twofold metadata");
    assert!(err.contains("x-amz-meta-twofold"), "{err}");
}

// ---------------------------------------------------------------------------------------
// --config FILE

/// A SoftHSM2 token folder and configuration for this test process, shared by the tests
/// that write their own configuration; each makes a token with a label of its own.
fn softhsm_conf() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, conf) = DIR.get_or_init(|| {
        let dir = temp_dir();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        set_softhsm2_conf(&conf);
        (dir, conf)
    });
    conf
}

#[allow(unsafe_code)]
fn set_softhsm2_conf(conf: &Path) {
    // SAFETY: called only from `softhsm_conf`'s OnceLock initialiser, before this process
    // first calls into the PKCS#11 module (every caller passes through the OnceLock
    // first, and other threads wanting it wait there); Rust's own environment access is
    // serialised by std.
    unsafe { std::env::set_var("SOFTHSM2_CONF", conf) };
}

/// Creates a token with a unique label in the shared folder; writes its PIN to `pin_file`.
fn new_token(prefix: &str, pin_file: &Path) -> String {
    use std::os::unix::fs::OpenOptionsExt;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    softhsm_conf();
    let label = format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let pin = hex::encode(random_bytes(8));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(pin_file)
        .and_then(|mut f| writeln!(f, "{pin}"))
        .unwrap();
    hsm_bridge::init_token(
        Path::new(SOFTHSM2_MODULE),
        &label,
        &hsm_bridge::Pin::from_dev_string("so-pin-cli-test"),
        &hsm_bridge::Pin::from_dev_string(&pin),
    )
    .unwrap();
    label
}

/// Writes `twofold.toml` in `dir`: 4 KiB segments, a PKCS#11 outer custodian on a new
/// token (PIN in `outer.pin`), a key-file inner custodian in `inner.key`.
fn write_config(dir: &Path) -> PathBuf {
    let label = new_token("cli-cfg", &dir.join("outer.pin"));
    let text = format!(
        r#"[envelope]
segment_size_bytes = 4096

[custodian.outer]
kind = "pkcs11"
module = "{SOFTHSM2_MODULE}"
token_label = "{label}"
key_label = "cli-outer-kek"
pin_file = "outer.pin"
softhsm2_conf = "{conf}"

[custodian.inner]
kind = "key-file"
key_file = "inner.key"
key_id = "cli-inner-kek"
"#,
        conf = softhsm_conf().display()
    );
    let path = dir.join("twofold.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn config_with_key_file_inner_and_pkcs11_outer_initialises_and_round_trips() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let d = dir.path();
    write_config(d);
    let cfg = ["--config", "twofold.toml"];

    let out = twofold(d, &["keys", "init", "--config", "twofold.toml"], None);
    assert_success(&out, "keys init");
    let said = stdout(&out);
    assert_eq!(said.matches("created").count(), 2, "{said}");
    let mode = std::fs::metadata(d.join("inner.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {:o}", mode & 0o777);
    let key_text = std::fs::read_to_string(d.join("inner.key")).unwrap();
    assert_eq!(key_text.trim_end().len(), 64);
    assert!(key_text.trim_end().bytes().all(|b| b.is_ascii_hexdigit()));

    let out = twofold(d, &["keys", "init", "--config", "twofold.toml"], None);
    assert_success(&out, "second keys init");
    assert_eq!(
        stdout(&out).matches("exists").count(),
        2,
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(d.join("inner.key")).unwrap(),
        key_text
    );

    let plain = random_bytes(5 * 4096 + 3);
    let stored = encrypt_stdin(d, &cfg, "b", "k", &plain);
    assert_eq!(stored.len(), stored_len(plain.len(), 4096));
    let out = decrypt_stdin(d, &cfg, "b", "k", &stored);
    assert_success(&out, "decrypt");
    assert!(out.stdout == plain);

    // Another inner key file under the same id: the inner layer refuses.
    std::fs::remove_file(d.join("inner.key")).unwrap();
    assert_success(
        &twofold(d, &["keys", "init", "--config", "twofold.toml"], None),
        "keys init with a new key file",
    );
    let out = decrypt_stdin(d, &cfg, "b", "k", &stored);
    let err = assert_refused(&out, "another inner key");
    assert!(err.contains("inner layer"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn key_file_readable_by_others_is_refused_with_its_path() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let d = dir.path();
    write_config(d);
    assert_success(
        &twofold(d, &["keys", "init", "--config", "twofold.toml"], None),
        "keys init",
    );
    std::fs::set_permissions(d.join("inner.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut args = vec!["encrypt"];
    args.extend(object_args(&["--config", "twofold.toml"], "b", "k"));
    let out = twofold(d, &args, Some(b"x"));
    let err = assert_refused(&out, "key file mode 0644");
    assert!(err.contains("inner.key"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn config_with_an_unknown_field_fails_naming_the_field() {
    let dir = temp_dir();
    let d = dir.path();
    let path = write_config(d);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replace("key_id = ", "colour = \"blue\"\nkey_id = ");
    std::fs::write(&path, text).unwrap();
    for args in [
        vec!["keys", "init", "--config", "twofold.toml"],
        vec![
            "decrypt",
            "--config",
            "twofold.toml",
            "--bucket",
            "b",
            "--key",
            "k",
            "--meta",
            "meta.json",
        ],
    ] {
        let out = twofold(d, &args, None);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("colour"), "{err}");
        assert!(err.contains("twofold.toml"), "{err}");
    }
    assert!(!d.join("inner.key").exists(), "keys init went ahead");
}

#[test]
fn config_errors_name_the_field_or_file_and_never_panic() {
    let dir = temp_dir();
    let d = dir.path();
    let path = write_config(d);
    let good = std::fs::read_to_string(&path).unwrap();
    let cases: [(&str, String, &str); 5] = [
        (
            "missing PIN file",
            good.replace("pin_file = \"outer.pin\"", "pin_file = \"missing.pin\""),
            "missing.pin",
        ),
        (
            "segment size",
            good.replace("segment_size_bytes = 4096", "segment_size_bytes = 1000"),
            "envelope.segment_size_bytes",
        ),
        (
            "no PIN source",
            good.replace("pin_file = \"outer.pin\"\n", ""),
            "custodian.outer.pin_file",
        ),
        (
            "unknown kind",
            good.replace("kind = \"key-file\"", "kind = \"vault\""),
            "custodian.inner.kind",
        ),
        (
            "wrong type",
            good.replace("segment_size_bytes = 4096", "segment_size_bytes = \"big\""),
            "segment_size_bytes",
        ),
    ];
    for (what, text, named) in cases {
        std::fs::write(&path, &text).unwrap();
        let out = twofold(d, &["keys", "init", "--config", "twofold.toml"], None);
        let err = stderr(&out);
        assert!(!out.status.success(), "{what}: succeeded");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(err.contains("twofold: error: "), "{what}: {err}");
        assert!(
            err.contains(named),
            "{what}: does not name {named:?}: {err}"
        );
    }
    // A configuration file that is not there.
    let out = twofold(d, &["keys", "init", "--config", "nowhere.toml"], None);
    let err = assert_refused(&out, "missing config");
    assert!(err.contains("nowhere.toml"), "{err}");
}

/// `cli`'s contract is one line on stderr for every failure; TOML parse errors (an unknown
/// field, a value of the wrong type) come out as the parser's multi-line rendering with a
/// source snippet and a caret line instead.
#[test]
fn config_parse_error_is_reported_on_one_line() {
    let dir = temp_dir();
    let d = dir.path();
    let path = write_config(d);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}colour = \"blue\"\n")).unwrap();
    let out = twofold(d, &["keys", "init", "--config", "twofold.toml"], None);
    let err = assert_refused(&out, "unknown field");
    assert!(err.contains("colour"), "{err}");
}
