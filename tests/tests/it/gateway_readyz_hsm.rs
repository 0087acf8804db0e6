//! `/readyz` follows the HSM: the PKCS#11 module is finalised underneath the running
//! gateway (`C_Finalize` from elsewhere in the process, as an HSM restart or a lost
//! connection to a network HSM looks to the gateway), so every custodian session is gone:
//! not ready, naming the custodians. The module initialised again: the custodians take
//! fresh sessions and the gateway is ready again, and serves. In a process of its own
//! (`crate::ran_in_own_process`) because it ends PKCS#11 for the whole process.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use std::time::{Duration, Instant};
use twofold_tests::admin::get;
use twofold_tests::gateway::{Options, TestGateway, create_bucket, put};
use twofold_tests::random_bytes;

fn initialize(ctx: &Pkcs11) {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(
            cryptoki::error::RvError::CryptokiAlreadyInitialized,
            _,
        )) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
}

fn wait_ready(gw: &TestGateway, want: u16) -> String {
    let started = Instant::now();
    loop {
        let (status, body) = get(gw.admin_addr(), "/readyz");
        if status == want {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "/readyz stayed {status}, wanted {want}: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn readyz_turns_with_the_hsm() {
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start_with(Options {
        admin_listener: true,
        ..Options::default()
    });
    wait_ready(&gw, 200);

    let ctx = Pkcs11::new(twofold_tests::SOFTHSM2_MODULE).unwrap();
    initialize(&ctx);
    ctx.finalize().unwrap();

    let body = wait_ready(&gw, 503);
    assert!(body.contains("custodian outer: failing"), "{body}");
    assert!(body.contains("custodian inner: failing"), "{body}");
    assert!(body.contains("backend: ok"), "{body}");

    // The HSM is back.
    let ctx = Pkcs11::new(twofold_tests::SOFTHSM2_MODULE).unwrap();
    initialize(&ctx);
    let body = wait_ready(&gw, 200);
    assert!(body.contains("custodian outer: ok"), "{body}");

    // And it serves again: a PUT into a new bucket needs both custodians.
    let s3 = gw.client();
    create_bucket(&s3, "after").await;
    let plain = random_bytes(10_000);
    put(&s3, "after", "k", plain.clone()).await;
    assert_eq!(twofold_tests::gateway::get(&s3, "after", "k").await, plain);
    // Keep the module initialised until the gateway is gone.
    drop(gw);
    drop(ctx);
}
