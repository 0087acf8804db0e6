//! Crypto-shredding, as an operator does it: `twofold keys report` counts the objects under
//! each key, `twofold keys destroy --dry-run` counts what a destruction would make
//! unreadable, `twofold keys destroy` (confirmed) destroys the named key's KEK on both
//! tokens, and a gateway configured with the key marked `destroyed` answers every read of
//! its objects with `KMS.KMSInvalidStateException` (never a 500), counted in
//! `twofold_shredded_reads_total`, while every other key's objects read as before.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::ServerSideEncryption;
use std::path::Path;
use std::process::Output;
use twofold_tests::admin::Scrape;
use twofold_tests::gateway::{Options, TestGateway, create_bucket, status_code};
use twofold_tests::{random_bytes, said, twofold_cli};

const DOOMED: &str = "alias/doomed";
const KEPT: &str = "alias/kept";

fn run(config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    twofold_cli(config, &all, stdin, Path::new("."))
}

fn text(out: &Output) -> String {
    said(out)
}

async fn put_under(s3: &Client, bucket: &str, key: &str, body: &[u8], key_id: Option<&str>) {
    let mut req = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse);
    if let Some(id) = key_id {
        req = req.ssekms_key_id(id);
    }
    req.send().await.unwrap();
}

#[tokio::test]
async fn a_destroyed_key_leaves_its_objects_unreadable_and_every_other_key_intact() {
    let mut gw = TestGateway::start_with(Options {
        named_keys: vec![DOOMED.to_owned(), KEPT.to_owned()],
        admin_listener: true,
        ..Default::default()
    });
    let s3 = gw.client();
    let body = random_bytes(100_000);
    for bucket in ["shred-a", "shred-b"] {
        create_bucket(&s3, bucket).await;
    }
    put_under(&s3, "shred-a", "d1", &body, Some(DOOMED)).await;
    put_under(&s3, "shred-a", "d2", &body, Some(DOOMED)).await;
    put_under(&s3, "shred-b", "d3", &body, Some(DOOMED)).await;
    put_under(&s3, "shred-b", "k1", &body, Some(KEPT)).await;
    put_under(&s3, "shred-b", "plain", &body, None).await;

    let dir = tempfile::tempdir().unwrap();
    let config = gw.operator_config(dir.path(), &[DOOMED, KEPT], "");
    let report = run(&config, &["report"], "");
    assert!(report.status.success(), "{}", text(&report));
    let said = text(&report);
    let line = |id: &str| {
        said.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or("")
            .to_owned()
    };
    assert!(line(DOOMED).split_whitespace().any(|w| w == "3"), "{said}");
    assert!(line(KEPT).split_whitespace().any(|w| w == "1"), "{said}");
    assert!(
        line("alias/twofold-default")
            .split_whitespace()
            .any(|w| w == "1"),
        "{said}"
    );

    // A dry run counts and destroys nothing; an unconfirmed destruction destroys nothing.
    let dry = run(&config, &["destroy", DOOMED, "--dry-run"], "");
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(
        text(&dry).contains("3 object(s) in 2 bucket(s)"),
        "{}",
        text(&dry)
    );
    let refused = run(&config, &["destroy", DOOMED], "alias/other\n");
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("nothing destroyed"),
        "{}",
        text(&refused)
    );
    let out = s3
        .get_object()
        .bucket("shred-a")
        .key("d1")
        .send()
        .await
        .unwrap();
    assert!(out.body.collect().await.unwrap().to_vec() == body);
    // The default key is not destroyed this way.
    let default = run(&config, &["destroy", "alias/twofold-default", "--yes"], "");
    assert!(!default.status.success(), "{}", text(&default));

    let destroyed = run(&config, &["destroy", DOOMED], &format!("{DOOMED}\n"));
    assert!(destroyed.status.success(), "{}", text(&destroyed));
    assert_eq!(
        text(&destroyed).matches("destroyed key").count(),
        2,
        "{}",
        text(&destroyed)
    );

    // The appliances restart with the key marked destroyed.
    gw.stop_gateway();
    let after = gw.try_start_another_with(|s| {
        let keys = s.named_keys.as_mut().unwrap();
        keys.keys
            .iter_mut()
            .find(|k| k.id == DOOMED)
            .unwrap()
            .destroyed = true;
    });
    let after = after.unwrap();
    let s3 = after.client();
    for (bucket, key) in [("shred-a", "d1"), ("shred-a", "d2"), ("shred-b", "d3")] {
        let e = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_code(&e),
            (400, "KMS.KMSInvalidStateException".to_owned()),
            "{key}"
        );
    }
    let e = s3
        .head_object()
        .bucket("shred-a")
        .key("d1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 400);
    for key in ["k1", "plain"] {
        let out = s3
            .get_object()
            .bucket("shred-b")
            .key(key)
            .send()
            .await
            .unwrap();
        assert!(out.body.collect().await.unwrap().to_vec() == body, "{key}");
    }
    // Nothing new is sealed under it.
    let e = s3
        .put_object()
        .bucket("shred-a")
        .key("new")
        .body(b"x".to_vec().into())
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id(DOOMED)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (400, "KMS.NotFoundException".to_owned()));
    let scrape = Scrape::take(after.admin_addr().unwrap());
    assert!(
        scrape.sum("twofold_shredded_reads_total", &[]) >= 4.0,
        "{}",
        scrape.sum("twofold_shredded_reads_total", &[])
    );
    after.stop();
}
