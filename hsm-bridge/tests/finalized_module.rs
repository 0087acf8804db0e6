//! The module finalised underneath hsm-bridge (`C_Finalize` called elsewhere
//! in the process): every call then fails with
//! `CKR_CRYPTOKI_NOT_INITIALIZED`, reported as `TokenUnavailable`. In its own
//! test binary because it ends PKCS#11 for the whole process.

mod common;

use common::*;
use hsm_bridge::{Error, HsmWorkers, Token};

#[test]
fn finalized_module_is_token_unavailable() {
    let cfg = new_token("finalized");
    let token = Token::open(&cfg).unwrap();
    let session = token.session().unwrap();
    let kek = session.create_kek("kek").unwrap();
    let key = random_key();
    let wrapped = session.wrap_key(&kek, &key).unwrap();
    let workers = HsmWorkers::start(&token, 2).unwrap();

    let (ctx, _slot) = raw(&cfg.token_label);
    ctx.finalize().unwrap();

    let unavailable = |err: Error| {
        assert!(err.is_unavailable(), "{err:?}");
        match err {
            Error::TokenUnavailable { label, detail } => {
                assert_eq!(label, "t-finalized");
                assert!(detail.contains("CKR_CRYPTOKI_NOT_INITIALIZED"), "{detail}");
            }
            e => panic!("{e:?}"),
        }
    };
    unavailable(session.wrap_key(&kek, &key).unwrap_err());
    unavailable(session.unwrap_key(&kek, &wrapped).unwrap_err());
    unavailable(session.find_kek("kek").unwrap_err());
    unavailable(token.session().unwrap_err());
    // Workers answer too (and try for a fresh session, which fails), rather
    // than dying.
    for _ in 0..4 {
        let kek = kek.clone();
        unavailable(
            workers
                .submit(move |s| s.wrap_key(&kek, &key))
                .wait()
                .unwrap_err(),
        );
    }
    assert_eq!(workers.submit(|_| Ok(5)).wait().unwrap(), 5);
    // A pool whose threads cannot open their sessions does not start.
    unavailable(HsmWorkers::start(&token, 2).unwrap_err());
}
