//! The HSM gone while the gateway runs: the PKCS#11 module is finalised underneath it
//! (`C_Finalize` from elsewhere in the process, as the hsm-bridge test
//! `finalized_module.rs` does), so every custodian call fails with
//! `CKR_CRYPTOKI_NOT_INITIALIZED`. A request that needs the custodian — a PUT to a bucket
//! with no cached bucket key, a GET of an object whose bucket key this gateway never
//! unwrapped, a HEAD of it (its sealed metadata needs its keys) — must answer 503
//! ServiceUnavailable and store nothing; requests served from the caches may go on, and
//! listings need no custodian. In a process of its own (`crate::ran_in_own_process`)
//! because it ends PKCS#11 for the whole process.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold_tests::gateway::{TestGateway, create_bucket, exists, put, status_code};
use twofold_tests::random_bytes;

#[tokio::test]
async fn hsm_gone_is_503_and_nothing_is_stored() {
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start();
    let other_gateway = gw.start_another();
    let s3 = gw.client();
    create_bucket(&s3, "warm").await;
    create_bucket(&s3, "cold").await;
    create_bucket(&s3, "elsewhere").await;
    let warm = random_bytes(70_000);
    put(&s3, "warm", "w", warm.clone()).await;
    // Written by the other gateway: this one has never unwrapped its bucket key.
    let elsewhere = random_bytes(70_000);
    put(&other_gateway.client(), "elsewhere", "e", elsewhere.clone()).await;

    twofold_tests::finalize_softhsm2_module();

    // A PUT to a bucket no core has a bucket key for needs the custodians: 503.
    let plain = random_bytes(100_000);
    for attempt in 0..4 {
        let e = s3
            .put_object()
            .bucket("cold")
            .key("k")
            .body(plain.clone().into())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_code(&e),
            (503, "ServiceUnavailable".to_owned()),
            "PUT attempt {attempt}: {e:?}"
        );
    }
    assert!(!exists(&s3, "cold", "k").await);
    assert!(gw.stored("cold", "k").is_none());
    gw.assert_no_plaintext_in_backend(&[&plain]);

    // A GET needing an unwrap: 503 too, and no body.
    for attempt in 0..4 {
        let e = s3
            .get_object()
            .bucket("elsewhere")
            .key("e")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_code(&e),
            (503, "ServiceUnavailable".to_owned()),
            "GET attempt {attempt}: {e:?}"
        );
    }

    // Served from the caches, or 503: never anything else.
    for _ in 0..4 {
        match s3.get_object().bucket("warm").key("w").send().await {
            Ok(out) => assert_eq!(out.body.collect().await.unwrap().to_vec(), warm),
            Err(e) => assert_eq!(status_code(&e).0, 503, "{e:?}"),
        }
    }
    // A HEAD opens the object's sealed metadata record, so it needs the object's keys as
    // a GET does: 503 where they are not cached, never an answer without the metadata.
    let e = s3
        .head_object()
        .bucket("elsewhere")
        .key("e")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 503, "{e:?}");
    for _ in 0..4 {
        match s3.head_object().bucket("warm").key("w").send().await {
            Ok(head) => assert_eq!(head.content_length(), Some(70_000)),
            Err(e) => assert_eq!(status_code(&e).0, 503, "{e:?}"),
        }
    }
    // Listings do not need the custodians.
    let listed = s3.list_objects_v2().bucket("warm").send().await.unwrap();
    assert_eq!(listed.contents().len(), 1);
}
