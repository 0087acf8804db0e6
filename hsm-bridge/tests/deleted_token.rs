//! A token whose storage is deleted while the gateway runs (SoftHSM2 keeps
//! one directory per token). In its own test binary because it leaves the
//! module with an unreadable token, which other tests would see.

mod common;

use std::path::Path;

use common::*;
use hsm_bridge::{Error, Token, init_token, token_exists};

#[test]
fn token_with_deleted_storage() {
    let dir = setup();
    let healthy = new_token("healthy");
    let cfg = new_token("deleted");
    let token = Token::open(&cfg).unwrap();
    let session = token.session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    let key = random_key();
    let wrapped = session.wrap_key(&kek, &key).unwrap();

    let mut removed = 0;
    for entry in std::fs::read_dir(dir.join("tokens")).unwrap() {
        let path = entry.unwrap().path();
        let object = std::fs::read(path.join("token.object")).unwrap_or_default();
        if object.windows(9).any(|w| w == b"t-deleted") {
            std::fs::remove_dir_all(&path).unwrap();
            removed += 1;
        }
    }
    assert_eq!(removed, 1);

    // SoftHSM2 answers CKR_GENERAL_ERROR to C_GetTokenInfo for that slot
    // now: the token cannot be found, nor said to be absent.
    let err = Token::open(&cfg).unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    match &err {
        Error::TokenUnavailable { label, detail } => {
            assert_eq!(label, "t-deleted");
            assert!(detail.contains("CKR_GENERAL_ERROR"), "{detail}");
        }
        e => panic!("{e:?}"),
    }
    assert!(matches!(
        token_exists(Path::new(MODULE), "t-deleted").unwrap_err(),
        Error::TokenUnavailable { .. }
    ));
    // Other tokens are still found.
    assert!(token_exists(Path::new(MODULE), "t-healthy").unwrap());
    Token::open(&healthy).unwrap().session().unwrap();
    // The key's file went with the directory: the key is gone.
    assert!(matches!(
        session.unwrap_key(&kek, &wrapped).unwrap_err(),
        Error::KeyNotFound { .. }
    ));
    // New tokens are refused while the unreadable one might carry the label.
    assert!(matches!(
        init_token(
            Path::new(MODULE),
            "t-new",
            &hsm_bridge::Pin::from_dev_string(SO_PIN),
            &hsm_bridge::Pin::from_dev_string(USER_PIN),
        )
        .unwrap_err(),
        Error::TokenUnavailable { .. }
    ));
}
