//! The HSM gone during UploadPartCopy: the part's keys are opened from the upload id, which
//! needs the custodian when this gateway has never unwrapped the upload's bucket key. A
//! custodian that is down is an outage, not a missing upload: the answer must be 503
//! ServiceUnavailable (which clients retry), as for every other operation, never 404
//! NoSuchUpload. In a process of its own (`crate::ran_in_own_process`) because it ends
//! PKCS#11 for the whole process (see `gateway_hsm_gone.rs`).

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold_tests::gateway::{TestGateway, create_bucket, put, status_code};
use twofold_tests::random_bytes;

#[tokio::test]
async fn hsm_gone_during_upload_part_copy_is_503() {
    if crate::ran_in_own_process() {
        return;
    }
    let gw = TestGateway::start();
    let other_gateway = gw.start_another();
    let other = other_gateway.client();
    let s3 = gw.client();
    create_bucket(&s3, "parts").await;
    // Source and upload both made by the other gateway: this one has never unwrapped the
    // bucket key, so opening the part's keys needs the custodian.
    put(&other, "parts", "source", random_bytes(100_000)).await;
    let up = other
        .create_multipart_upload()
        .bucket("parts")
        .key("assembled")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();

    twofold_tests::finalize_softhsm2_module();

    for attempt in 0..3 {
        let e = s3
            .upload_part_copy()
            .bucket("parts")
            .key("assembled")
            .upload_id(&id)
            .part_number(1)
            .copy_source("parts/source")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_code(&e),
            (503, "ServiceUnavailable".to_owned()),
            "UploadPartCopy attempt {attempt}: {e:?}"
        );
    }
    // The same upload id through UploadPart: 503 as well.
    let e = s3
        .upload_part()
        .bucket("parts")
        .key("assembled")
        .upload_id(&id)
        .part_number(1)
        .body(random_bytes(1000).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (503, "ServiceUnavailable".to_owned()),
        "UploadPart: {e:?}"
    );
}
