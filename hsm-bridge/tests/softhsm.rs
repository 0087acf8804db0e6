//! hsm-bridge against a real SoftHSM2 (no mocks).
//!
//! Each test binary gets its own token directory and `SOFTHSM2_CONF`; each
//! test its own token, so tests run in parallel.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType};
use hsm_bridge::{
    Error, HsmWorkers, KEY_BYTES, Pin, Token, TokenConfig, WRAPPED_KEY_BYTES, init_token,
    token_exists,
};

#[test]
fn wrap_unwrap_round_trip() {
    let cfg = new_token("round-trip");
    let token = Token::open(&cfg).unwrap();
    assert_eq!(token.label(), "t-round-trip");
    let session = token.session().unwrap();
    let kek = session.create_kek("kek-1").unwrap();
    for _ in 0..10 {
        let key = random_key();
        let wrapped = session.wrap_key(&kek, &key).unwrap();
        let unwrapped = session.unwrap_key(&kek, &wrapped).unwrap();
        assert_eq!(*unwrapped, key);
    }
}

#[test]
fn wrapped_key_is_40_bytes_deterministic_and_not_the_key() {
    let cfg = new_token("wrapped-shape");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    let key = random_key();
    let wrapped = session.wrap_key(&kek, &key).unwrap();
    assert_eq!(wrapped.len(), WRAPPED_KEY_BYTES);
    assert_eq!(wrapped.len(), 40);
    assert!(!wrapped.windows(KEY_BYTES).any(|w| w == key));
    // RFC 5649 is deterministic: same key, same KEK, same bytes.
    assert_eq!(session.wrap_key(&kek, &key).unwrap(), wrapped);
    // A different session, found by label, unwraps it.
    let other = Token::open(&cfg).unwrap().session().unwrap();
    let kek2 = other.kek("kek").unwrap();
    assert_eq!(*other.unwrap_key(&kek2, &wrapped).unwrap(), key);
}

#[test]
fn created_kek_is_not_extractable() {
    let cfg = new_token("not-extractable");
    let token = Token::open(&cfg).unwrap();
    let session = token.session().unwrap();
    session.create_kek("kek").unwrap();
    session.create_kek("other").unwrap();

    let (ctx, slot) = raw(&cfg.token_label);
    let raw_session = ctx.open_ro_session(slot).unwrap();
    let handles = raw_session.find_objects(&key_template("kek")).unwrap();
    assert_eq!(handles.len(), 1);
    let attributes = raw_session
        .get_attributes(
            handles[0],
            &[
                AttributeType::Value,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Sensitive,
                AttributeType::AlwaysSensitive,
                AttributeType::Private,
                AttributeType::Token,
                AttributeType::Encrypt,
                AttributeType::Decrypt,
                AttributeType::Wrap,
                AttributeType::Unwrap,
                AttributeType::ValueLen,
            ],
        )
        .unwrap();
    // CKA_VALUE is refused (CKR_ATTRIBUTE_SENSITIVE), so cryptoki leaves it out.
    assert!(
        !attributes.iter().any(|a| matches!(a, Attribute::Value(_))),
        "CKA_VALUE of a KEK was readable"
    );
    for expected in [
        Attribute::Extractable(false),
        Attribute::NeverExtractable(true),
        Attribute::Sensitive(true),
        Attribute::AlwaysSensitive(true),
        Attribute::Private(true),
        Attribute::Token(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::ValueLen(32u64.into()),
    ] {
        assert!(
            attributes.contains(&expected),
            "missing {expected:?} in {attributes:?}"
        );
    }
    // Nor can it be wrapped out under another key.
    let other = raw_session.find_objects(&key_template("other")).unwrap()[0];
    let err = raw_session
        .wrap_key(&Mechanism::AesKeyWrapPad, other, handles[0])
        .unwrap_err();
    assert!(
        matches!(
            err,
            cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::KeyUnextractable, _)
        ),
        "{err}"
    );
}

#[test]
fn absent_kek() {
    let cfg = new_token("absent-kek");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    assert!(session.find_kek("nope").unwrap().is_none());
    match session.kek("nope").unwrap_err() {
        Error::KeyNotFound { token, key } => {
            assert_eq!(token, "t-absent-kek");
            assert_eq!(key, "nope");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn create_kek_twice_is_key_exists() {
    let cfg = new_token("kek-twice");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    assert_eq!(format!("{kek:?}"), r#"Kek { label: "kek" }"#);
    match session.create_kek("kek").unwrap_err() {
        Error::KeyExists { token, key } => {
            assert_eq!(token, "t-kek-twice");
            assert_eq!(key, "kek");
        }
        e => panic!("{e:?}"),
    }
    // Still exactly one, and it still works.
    let (ctx, slot) = raw(&cfg.token_label);
    let raw_session = ctx.open_ro_session(slot).unwrap();
    assert_eq!(
        raw_session
            .find_objects(&key_template("kek"))
            .unwrap()
            .len(),
        1
    );
    let wrapped = session.wrap_key(&kek, &random_key()).unwrap();
    session
        .unwrap_key(&session.kek("kek").unwrap(), &wrapped)
        .unwrap();
}

#[test]
fn create_kek_races_in_parallel_leave_one_key() {
    let cfg = new_token("kek-race");
    let token = Token::open(&cfg).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let token = token.clone();
            std::thread::spawn(move || token.session().unwrap().create_kek("kek").is_ok())
        })
        .collect();
    let created = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(created, 1);
    token.session().unwrap().kek("kek").unwrap();
}

#[test]
fn key_with_kek_label_but_unfit_is_rejected() {
    let cfg = new_token("unfit-kek");
    let token = Token::open(&cfg).unwrap();
    let session = token.session().unwrap();
    // An extractable AES key with the label, made behind hsm-bridge's back.
    let (ctx, slot) = raw(&cfg.token_label);
    let raw_session = ctx.open_rw_session(slot).unwrap();
    let mut template = key_template("weak");
    template.extend([
        Attribute::ValueLen(32u64.into()),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
    ]);
    raw_session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .unwrap();
    match session.find_kek("weak").unwrap_err() {
        Error::KekRejected { key, reason, .. } => {
            assert_eq!(key, "weak");
            assert_eq!(reason, "is extractable");
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        session.create_kek("weak").unwrap_err(),
        Error::KeyExists { .. }
    ));
}

#[test]
fn deleted_kek_is_key_not_found_and_length_is_checked_first() {
    let cfg = new_token("deleted-kek");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    let wrapped = session.wrap_key(&kek, &random_key()).unwrap();
    let (ctx, slot) = raw(&cfg.token_label);
    let raw_session = ctx.open_rw_session(slot).unwrap();
    for handle in raw_session.find_objects(&key_template("kek")).unwrap() {
        raw_session.destroy_object(handle).unwrap();
    }
    assert!(matches!(
        session.wrap_key(&kek, &random_key()).unwrap_err(),
        Error::KeyNotFound { .. }
    ));
    assert!(matches!(
        session.unwrap_key(&kek, &wrapped).unwrap_err(),
        Error::KeyNotFound { .. }
    ));
    // Wrong length is refused before the token is asked: the token would
    // have said the key is gone.
    match session.unwrap_key(&kek, &wrapped[..39]).unwrap_err() {
        Error::UnwrapRejected { detail, .. } => assert!(detail.contains("39 bytes"), "{detail}"),
        e => panic!("{e:?}"),
    }
    assert!(session.find_kek("kek").unwrap().is_none());
}

#[test]
fn tampered_wrapped_key_is_rejected() {
    let cfg = new_token("tampered");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    let wrapped = session.wrap_key(&kek, &random_key()).unwrap();
    for bit in [0, 7, 63, 64, 200, 319] {
        let mut bad = wrapped.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        match session.unwrap_key(&kek, &bad).unwrap_err() {
            Error::UnwrapRejected { token, key, detail } => {
                assert_eq!(token, "t-tampered");
                assert_eq!(key, "kek");
                eprintln!("bit {bit}: {detail}");
            }
            e => panic!("bit {bit}: {e:?}"),
        }
    }
}

#[test]
fn wrong_length_is_rejected() {
    let cfg = new_token("wrong-length");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    let wrapped = session.wrap_key(&kek, &random_key()).unwrap();
    let mut longer = wrapped.clone();
    longer.extend_from_slice(&[0; 8]);
    for bad in [
        &[][..],
        &wrapped[..32],
        &wrapped[..39],
        &longer[..41],
        &longer[..],
    ] {
        match session.unwrap_key(&kek, bad).unwrap_err() {
            Error::UnwrapRejected { detail, .. } => {
                assert!(detail.contains(&format!("{} bytes", bad.len())), "{detail}")
            }
            e => panic!("{} bytes: {e:?}", bad.len()),
        }
    }
}

#[test]
fn unwrap_under_other_kek_is_rejected() {
    let cfg = new_token("other-kek");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    let kek_a = session.create_kek("a").unwrap();
    let kek_b = session.create_kek("b").unwrap();
    let wrapped = session.wrap_key(&kek_a, &random_key()).unwrap();
    assert!(matches!(
        session.unwrap_key(&kek_b, &wrapped).unwrap_err(),
        Error::UnwrapRejected { key, .. } if key == "b"
    ));
}

#[test]
fn kek_of_another_token_is_refused() {
    let cfg_a = new_token("kek-token-a");
    let cfg_b = new_token("kek-token-b");
    let session_a = Token::open(&cfg_a).unwrap().session().unwrap();
    let session_b = Token::open(&cfg_b).unwrap().session().unwrap();
    let kek_a = session_a.create_kek("kek").unwrap();
    match session_b.wrap_key(&kek_a, &random_key()).unwrap_err() {
        Error::KekRejected { token, reason, .. } => {
            assert_eq!(token, "t-kek-token-b");
            assert_eq!(reason, "belongs to another token");
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn wrap_mechanism_the_token_lacks_is_mechanism_not_supported() {
    let cfg = new_token("no-mechanism");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    match hsm_bridge::testing::wrap_key_with_aes_gcm(&session, &kek, &random_key()).unwrap_err() {
        Error::MechanismNotSupported { token, mechanism } => {
            assert_eq!(token, "t-no-mechanism");
            assert_eq!(mechanism, "CKM_AES_GCM");
        }
        e => panic!("{e:?}"),
    }
    // The session is still good.
    session.wrap_key(&kek, &random_key()).unwrap();
}

#[test]
fn module_not_found() {
    setup();
    let cfg = TokenConfig {
        module_path: PathBuf::from("/nonexistent/libnothing.so"),
        token_label: "x".to_owned(),
        pin: Pin::from_dev_string(USER_PIN),
    };
    match Token::open(&cfg).unwrap_err() {
        Error::ModuleNotFound { path } => assert_eq!(path, Path::new("/nonexistent/libnothing.so")),
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        token_exists(Path::new("/nonexistent/libnothing.so"), "x").unwrap_err(),
        Error::ModuleNotFound { .. }
    ));
}

#[test]
fn module_that_is_not_a_library() {
    let dir = setup();
    let path = dir.join("not-a-library.so");
    std::fs::write(&path, b"not an ELF file").unwrap();
    let cfg = TokenConfig {
        module_path: path.clone(),
        token_label: "x".to_owned(),
        pin: Pin::from_dev_string(USER_PIN),
    };
    let err = Token::open(&cfg).unwrap_err();
    assert!(err.is_unavailable());
    match err {
        Error::ModuleLoad { path: p, detail } => {
            assert_eq!(p, path);
            assert!(!detail.is_empty());
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn token_not_found() {
    setup();
    let cfg = TokenConfig {
        module_path: PathBuf::from(MODULE),
        token_label: "no-such-token".to_owned(),
        pin: Pin::from_dev_string(USER_PIN),
    };
    match Token::open(&cfg).unwrap_err() {
        Error::TokenNotFound { label } => assert_eq!(label, "no-such-token"),
        e => panic!("{e:?}"),
    }
    assert!(!token_exists(Path::new(MODULE), "no-such-token").unwrap());
    assert!(matches!(
        Token::open(&TokenConfig {
            token_label: "x".repeat(33),
            ..cfg
        })
        .unwrap_err(),
        Error::InvalidArgument { .. }
    ));
}

#[test]
fn init_token_refuses_a_taken_label() {
    let cfg = new_token("taken");
    assert!(token_exists(Path::new(MODULE), "t-taken").unwrap());
    match init_token(
        Path::new(MODULE),
        "t-taken",
        &Pin::from_dev_string(SO_PIN),
        &Pin::from_dev_string(USER_PIN),
    )
    .unwrap_err()
    {
        Error::TokenExists { label } => assert_eq!(label, "t-taken"),
        e => panic!("{e:?}"),
    }
    // The original token is untouched.
    Token::open(&cfg).unwrap().session().unwrap();
}

#[test]
fn wrong_pin() {
    let cfg = new_token("wrong-pin");
    let bad = TokenConfig {
        pin: Pin::from_dev_string("not-the-pin"),
        ..cfg.clone()
    };
    let err = Token::open(&bad).unwrap_err();
    assert!(!err.is_unavailable());
    match &err {
        Error::WrongPin { label } => assert_eq!(label, "t-wrong-pin"),
        e => panic!("{e:?}"),
    }
    assert!(!err.to_string().contains("not-the-pin"));
    assert!(!format!("{err:?}").contains("not-the-pin"));
    // A PIN too short for the token counts as wrong too.
    assert!(matches!(
        Token::open(&TokenConfig {
            pin: Pin::from_dev_string("1"),
            ..cfg.clone()
        })
        .unwrap_err(),
        Error::WrongPin { .. }
    ));
    // While the token is open (and so logged in), a wrong PIN still fails.
    let token = Token::open(&cfg).unwrap();
    assert!(matches!(
        Token::open(&bad).unwrap_err(),
        Error::WrongPin { .. }
    ));
    let again = Token::open(&cfg).unwrap();
    assert_eq!(again.label(), token.label());
}

#[test]
fn pin_from_file() {
    let dir = setup();
    for (name, content) in [
        ("pin-lf", "user-pin-1234\n"),
        ("pin-crlf", "user-pin-1234\r\n"),
        ("pin-bare", "user-pin-1234"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let pin = Pin::from_file(&path).unwrap();
        assert_eq!(format!("{pin:?}"), "Pin(<hidden>)");
        let cfg = TokenConfig {
            pin,
            ..new_token(&format!("file-{name}"))
        };
        Token::open(&cfg).unwrap();
    }
    // Only one newline is taken off.
    let path = dir.join("pin-two-newlines");
    std::fs::write(&path, "user-pin-1234\n\n").unwrap();
    let cfg = TokenConfig {
        pin: Pin::from_file(&path).unwrap(),
        ..new_token("file-two-newlines")
    };
    assert!(matches!(
        Token::open(&cfg).unwrap_err(),
        Error::WrongPin { .. }
    ));
}

#[test]
fn pin_file_missing_or_empty() {
    let dir = setup();
    let missing = dir.join("no-such-pin-file");
    let err = Pin::from_file(&missing).unwrap_err();
    match &err {
        Error::PinUnavailable { origin, .. } => {
            assert!(origin.contains(&*missing.to_string_lossy()), "{origin}")
        }
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("no-such-pin-file"));
    let empty = dir.join("empty-pin-file");
    std::fs::write(&empty, "\n").unwrap();
    assert!(matches!(
        Pin::from_file(&empty).unwrap_err(),
        Error::PinUnavailable { .. }
    ));
}

#[test]
fn pin_from_env() {
    let cfg = TokenConfig {
        pin: Pin::from_env(PIN_VAR).unwrap(),
        ..new_token("env-pin")
    };
    Token::open(&cfg).unwrap();
    for var in [UNSET_PIN_VAR, EMPTY_PIN_VAR] {
        match Pin::from_env(var).unwrap_err() {
            Error::PinUnavailable { origin, detail } => {
                assert!(origin.contains(var), "{origin}");
                eprintln!("{var}: {detail}");
            }
            e => panic!("{e:?}"),
        }
    }
}

#[test]
fn debug_output_shows_no_secrets() {
    let cfg = new_token("debug-output");
    let shown = format!("{cfg:?}");
    assert!(shown.contains("Pin(<hidden>)"), "{shown}");
    assert!(!shown.contains(USER_PIN), "{shown}");
    let token = Token::open(&cfg).unwrap();
    let session = token.session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    for shown in [
        format!("{token:?}"),
        format!("{session:?}"),
        format!("{kek:?}"),
    ] {
        assert!(!shown.contains(USER_PIN), "{shown}");
    }
    let key = [0xA5u8; KEY_BYTES];
    let unwrapped = session
        .unwrap_key(&kek, &session.wrap_key(&kek, &key).unwrap())
        .unwrap();
    assert_eq!(*unwrapped, key);
}

/// Logging the application out from elsewhere is real with SoftHSM2, and it
/// also drops the handles of private objects, so the KEK handle held goes
/// stale. Wrap and unwrap log in again, find the KEK again by label and go on.
#[test]
fn lost_login_and_stale_kek_handle_are_recovered() {
    let cfg = new_token("lost-login");
    let token = Token::open(&cfg).unwrap();
    let session = token.session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    let kek_clone = kek.clone();
    let key = random_key();
    let wrapped = session.wrap_key(&kek, &key).unwrap();
    let (ctx, slot) = raw(&cfg.token_label);

    ctx.open_ro_session(slot).unwrap().logout().unwrap();
    assert_eq!(*session.unwrap_key(&kek, &wrapped).unwrap(), key);
    // The clone shares the refreshed handle.
    assert_eq!(*session.unwrap_key(&kek_clone, &wrapped).unwrap(), key);

    ctx.open_ro_session(slot).unwrap().logout().unwrap();
    assert_eq!(session.wrap_key(&kek, &key).unwrap(), wrapped);

    ctx.open_ro_session(slot).unwrap().logout().unwrap();
    let fresh = token.session().unwrap();
    assert_eq!(*fresh.unwrap_key(&kek, &wrapped).unwrap(), key);

    ctx.open_ro_session(slot).unwrap().logout().unwrap();
    assert!(session.find_kek("kek").unwrap().is_some());
}

#[test]
fn workers_run_many_jobs_from_several_threads() {
    let cfg = new_token("workers");
    let token = Token::open(&cfg).unwrap();
    let kek = token.session().unwrap().create_kek("kek").unwrap();
    let workers = HsmWorkers::start(&token, 3).unwrap();
    assert_eq!(workers.threads(), 3);
    assert!(format!("{workers:?}").contains("t-workers"));
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let workers = workers.clone();
            let kek = kek.clone();
            std::thread::spawn(move || {
                let tickets: Vec<_> = (0..50u8)
                    .map(|i| {
                        let key = [t * 64 + i; KEY_BYTES];
                        let kek = kek.clone();
                        workers.submit(move |s| {
                            let wrapped = s.wrap_key(&kek, &key)?;
                            let back = s.unwrap_key(&kek, &wrapped)?;
                            Ok((key, *back, std::thread::current().name().map(str::to_owned)))
                        })
                    })
                    .collect();
                tickets
                    .into_iter()
                    .enumerate()
                    .map(|(i, ticket)| {
                        // Half waited on, half awaited.
                        if i % 2 == 0 {
                            ticket.wait().unwrap()
                        } else {
                            block_on(ticket).unwrap()
                        }
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut thread_names = std::collections::BTreeSet::new();
    let mut count = 0;
    for s in submitters {
        for (key, back, name) in s.join().unwrap() {
            assert_eq!(key, back);
            thread_names.insert(name.unwrap());
            count += 1;
        }
    }
    assert_eq!(count, 200);
    assert_eq!(
        thread_names.into_iter().collect::<Vec<_>>(),
        ["hsm-worker-0", "hsm-worker-1", "hsm-worker-2"]
    );
}

#[test]
fn ticket_awaited_as_future() {
    let cfg = new_token("future");
    let token = Token::open(&cfg).unwrap();
    let workers = HsmWorkers::start(&token, 1).unwrap();
    let created = block_on(workers.submit(|s| s.create_kek("kek").map(|k| k.label().to_owned())));
    assert_eq!(created.unwrap(), "kek");
    // A job that waits a little, so that the future really is pending first.
    let slow = workers.submit(|s| {
        std::thread::sleep(Duration::from_millis(50));
        s.kek("kek").map(|_| 7)
    });
    assert_eq!(block_on(slow).unwrap(), 7);
    // Errors come through as they are.
    assert!(matches!(
        block_on(workers.submit(|s| s.kek("missing"))).unwrap_err(),
        Error::KeyNotFound { .. }
    ));
}

#[test]
fn panicking_job_is_worker_gone_and_the_pool_carries_on() {
    let cfg = new_token("panic-job");
    let token = Token::open(&cfg).unwrap();
    let workers = HsmWorkers::start(&token, 1).unwrap();
    let ticket = workers.submit(|_| -> Result<(), Error> { panic!("job panics on purpose") });
    let err = ticket.wait().unwrap_err();
    assert!(matches!(err, Error::WorkerGone));
    assert!(err.is_unavailable());
    assert_eq!(workers.submit(|_| Ok(1)).wait().unwrap(), 1);
}

#[test]
fn dropping_workers_ends_their_threads() {
    thread_local! {
        static HELD: std::cell::RefCell<Option<Arc<()>>> = const { std::cell::RefCell::new(None) };
    }
    let cfg = new_token("drop-workers");
    let token = Token::open(&cfg).unwrap();
    let workers = HsmWorkers::start(&token, 2).unwrap();
    let marker = Arc::new(());
    // Each worker thread keeps a clone of `marker` in a thread-local, which
    // is released only when that thread exits.
    let tickets: Vec<_> = (0..8)
        .map(|_| {
            let marker = Arc::clone(&marker);
            workers.submit(move |_| {
                HELD.with(|h| *h.borrow_mut() = Some(marker));
                Ok(())
            })
        })
        .collect();
    for t in tickets {
        t.wait().unwrap();
    }
    assert_eq!(Arc::strong_count(&marker), 3);
    let clone = workers.clone();
    drop(workers);
    assert_eq!(Arc::strong_count(&marker), 3, "a clone keeps the pool");
    drop(clone);
    assert_eq!(
        Arc::strong_count(&marker),
        1,
        "worker threads still running"
    );
    assert!(matches!(
        HsmWorkers::start(&token, 0).unwrap_err(),
        Error::InvalidArgument { .. }
    ));
}

#[test]
fn workers_can_be_dropped_from_inside_a_job() {
    let cfg = new_token("drop-inside");
    let token = Token::open(&cfg).unwrap();
    let workers = HsmWorkers::start(&token, 2).unwrap();
    let inner = workers.clone();
    let ticket = workers.submit(move |_| {
        // The job owns the last clone once the outer one is dropped.
        std::thread::sleep(Duration::from_millis(20));
        drop(inner);
        Ok(())
    });
    drop(workers);
    ticket.wait().unwrap();
}

#[test]
fn latency_per_operation() {
    const OPS: u32 = 2_000;
    let cfg = new_token("latency");
    let token = Token::open(&cfg).unwrap();
    let session = token.session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    let key = random_key();
    let wrapped = session.wrap_key(&kek, &key).unwrap();

    let start = Instant::now();
    for _ in 0..OPS {
        std::hint::black_box(session.wrap_key(&kek, &key).unwrap());
    }
    let wrap = start.elapsed() / OPS;
    let start = Instant::now();
    for _ in 0..OPS {
        std::hint::black_box(session.unwrap_key(&kek, &wrapped).unwrap());
    }
    let unwrap = start.elapsed() / OPS;

    let workers = HsmWorkers::start(&token, 1).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    for _ in 0..OPS {
        let kek = kek.clone();
        let wrapped = wrapped.clone();
        let done = Arc::clone(&done);
        workers
            .submit(move |s| {
                let k = s.unwrap_key(&kek, &wrapped)?;
                done.fetch_add(1, Ordering::Relaxed);
                Ok(k[0])
            })
            .wait()
            .unwrap();
    }
    let via_worker = start.elapsed() / OPS;
    assert_eq!(done.load(Ordering::Relaxed), OPS as usize);
    eprintln!(
        "SoftHSM2 latency per op ({OPS} ops, one session, debug build unless --release): \
         wrap {wrap:?}, unwrap {unwrap:?}, unwrap via HsmWorkers submit+wait {via_worker:?}"
    );
}

#[test]
fn kek_labels_lists_every_aes_token_key_once_and_sorted() {
    let cfg = new_token("kek-labels");
    let session = Token::open(&cfg).unwrap().session().unwrap();
    assert!(session.kek_labels().unwrap().is_empty());
    for label in ["b-kek.v2", "a-kek", "b-kek"] {
        session.create_kek(label).unwrap();
    }
    assert_eq!(
        session.kek_labels().unwrap(),
        ["a-kek", "b-kek", "b-kek.v2"]
    );
    assert_eq!(session.destroy_kek("b-kek").unwrap(), 1);
    // Another session sees the same keys.
    let other = Token::open(&cfg).unwrap().session().unwrap();
    assert_eq!(other.kek_labels().unwrap(), ["a-kek", "b-kek.v2"]);
}
