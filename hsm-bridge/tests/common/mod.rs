//! Shared by the test binaries: a SoftHSM2 token directory and
//! `SOFTHSM2_CONF` per binary, a fresh token per test, and helpers.

#![allow(dead_code)]
// Test helpers: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::slot::Slot;
use hsm_bridge::{KEY_BYTES, Pin, TokenConfig, init_token};

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const USER_PIN: &str = "user-pin-1234";
pub const SO_PIN: &str = "so-pin-5678";
/// Set (to the user PIN) and set empty once, in `setup`, before any thread
/// touches the module.
pub const PIN_VAR: &str = "HSM_BRIDGE_TEST_PIN";
pub const EMPTY_PIN_VAR: &str = "HSM_BRIDGE_TEST_EMPTY_PIN";
pub const UNSET_PIN_VAR: &str = "HSM_BRIDGE_TEST_PIN_NEVER_SET";

/// Makes the token directory and `softhsm2.conf`, and sets the environment.
/// Every test calls this first, so the environment is written before any
/// thread reads it from C (SoftHSM2 reads `SOFTHSM2_CONF` in `C_Initialize`).
#[allow(unsafe_code)]
pub fn setup() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
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
        // SAFETY: runs once per test binary, inside this OnceLock, which
        // every test passes through before it calls into the PKCS#11 module
        // or reads the environment from C; other test threads are blocked
        // on the OnceLock meanwhile, and Rust's own environment accesses are
        // serialised by std.
        unsafe {
            std::env::set_var("SOFTHSM2_CONF", &conf);
            std::env::set_var(PIN_VAR, USER_PIN);
            std::env::set_var(EMPTY_PIN_VAR, "");
        }
        dir
    })
    .path()
}

/// A fresh token labelled `t-NAME`, and the config to open it.
pub fn new_token(name: &str) -> TokenConfig {
    setup();
    let label = format!("t-{name}");
    assert!(label.len() <= 32, "label {label:?} too long");
    init_token(
        Path::new(MODULE),
        &label,
        &Pin::from_dev_string(SO_PIN),
        &Pin::from_dev_string(USER_PIN),
    )
    .unwrap();
    TokenConfig {
        module_path: PathBuf::from(MODULE),
        token_label: label,
        pin: Pin::from_dev_string(USER_PIN),
    }
}

pub fn random_key() -> [u8; KEY_BYTES] {
    let mut key = [0u8; KEY_BYTES];
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut key)
        .unwrap();
    key
}

/// A second, independent cryptoki context on the same (already initialised)
/// module, to look at the token behind hsm-bridge's back. PKCS#11 login is
/// per application, so it sees what a logged-in hsm-bridge session sees.
pub fn raw(label: &str) -> (Pkcs11, Slot) {
    let ctx = Pkcs11::new(MODULE).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("{e}"),
    }
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == label)
        .unwrap();
    (ctx, slot)
}

pub fn key_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// A tiny executor: polls on this thread, parks between polls.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}
