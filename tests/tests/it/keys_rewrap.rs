//! Rotation by re-wrap, as an operator does it: `twofold keys rotate` makes a new version
//! of a named key's KEKs on both tokens and a running gateway seals new objects under it
//! within `kek_version_check_secs`; `twofold rewrap` moves a bucket of mixed objects
//! (single-part with metadata, with a checksum, multipart aligned and unaligned) to it by
//! metadata-only backend copies (a dry run first, a run resumed from a state file, a run
//! limited to another key, a multipart copy of an object over the one-copy limit), `twofold keys destroy --version 1` is refused while an object
//! still names the old version and then destroys it, and a restarted gateway (no cached
//! keys) reads every moved object, byte for byte with its metadata, while the one object
//! left under the destroyed version is a clear `KMS.KMSInvalidStateException`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ServerSideEncryption};
use std::path::Path;
use twofold::envelope::aead::Layer;
use twofold::envelope::objmeta;
use twofold_tests::gateway::{
    Options, TestGateway, completed, create_bucket, get, named_key_label, status_code, upload_part,
};
use twofold_tests::{random_bytes, said, twofold_cli};

const ROT: &str = "alias/rotating";
const BUCKET: &str = "rewrap";
const ORPHANS: &str = "rewrap-orphans";
const MIB: usize = 1 << 20;

/// The KEK labels in the stored object's header, as the backend holds it.
async fn stored_keks(gw: &TestGateway, bucket: &str, key: &str) -> (String, String) {
    let head = gw.backend_head(bucket, key).await;
    let value = head.metadata().unwrap().get("twofold").unwrap().clone();
    let header = objmeta::decode(&value).unwrap();
    (header.inner.kek_id.clone(), header.outer.kek_id.clone())
}

fn version(v: u32) -> (String, String) {
    let label = |layer| twofold::keys::versions::label(&named_key_label(ROT, layer), v);
    (label(Layer::Inner), label(Layer::Outer))
}

async fn put_rot(s3: &Client, bucket: &str, key: &str, body: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id(ROT)
        .send()
        .await
        .unwrap();
}

async fn multipart_rot(s3: &Client, key: &str, parts: &[Vec<u8>]) {
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id(ROT)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut etags = Vec::new();
    for (n, body) in (1..).zip(parts) {
        let p = upload_part(s3, (BUCKET, key, id), n, body.clone())
            .await
            .unwrap();
        etags.push(p.e_tag().unwrap().to_owned());
    }
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .multipart_upload(completed(&etags))
        .send()
        .await
        .unwrap();
}

/// `twofold ARGS` in `dir`: it succeeded, and what it said.
fn ok(config: &Path, dir: &Path, args: &[&str]) -> String {
    let out = twofold_cli(config, args, "", dir);
    assert!(out.status.success(), "{args:?}: {}", said(&out));
    said(&out)
}

/// `twofold ARGS` in `dir`: it failed, and what it said.
fn refused(config: &Path, dir: &Path, args: &[&str]) -> String {
    let out = twofold_cli(config, args, "", dir);
    assert!(!out.status.success(), "{args:?}: {}", said(&out));
    said(&out)
}

#[tokio::test]
async fn a_rotated_key_moves_every_object_by_rewrap_and_its_old_version_is_retired() {
    let mut gw = TestGateway::start_with(Options {
        named_keys: vec![ROT.to_owned()],
        kek_version_check_secs: 1,
        ..Default::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    create_bucket(&s3, ORPHANS).await;
    let single = random_bytes(100_000);
    s3.put_object()
        .bucket(BUCKET)
        .key("single")
        .body(single.clone().into())
        .content_type("text/x-rotated")
        .metadata("owner", "ops")
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id(ROT)
        .send()
        .await
        .unwrap();
    let checksummed = random_bytes(70_000);
    let sum = s3
        .put_object()
        .bucket(BUCKET)
        .key("checksummed")
        .body(checksummed.clone().into())
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .server_side_encryption(ServerSideEncryption::AwsKmsDsse)
        .ssekms_key_id(ROT)
        .send()
        .await
        .unwrap()
        .checksum_sha256()
        .unwrap()
        .to_owned();
    let multi = [
        random_bytes(5 * MIB),
        random_bytes(5 * MIB),
        random_bytes(MIB),
    ];
    multipart_rot(&s3, "multi", &multi).await;
    let unaligned = [random_bytes(5 * MIB + 3), random_bytes(1000)];
    multipart_rot(&s3, "unaligned", &unaligned).await;
    let plain = random_bytes(1000);
    s3.put_object()
        .bucket(BUCKET)
        .key("plain")
        .body(plain.clone().into())
        .send()
        .await
        .unwrap();
    put_rot(&s3, ORPHANS, "orphan", &plain).await;
    let single_etag = s3
        .head_object()
        .bucket(BUCKET)
        .key("single")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    for key in ["single", "checksummed", "multi", "unaligned"] {
        assert_eq!(stored_keks(&gw, BUCKET, key).await, version(1), "{key}");
    }

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = gw.operator_config(d, &[ROT], "[envelope]\nkek_version_check_secs = 1\n");
    let rotated = ok(&config, d, &["keys", "rotate", ROT]);
    assert_eq!(rotated.matches("(version 2)").count(), 2, "{rotated}");

    // The running gateway seals under version 2 once it has looked again.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let new = random_bytes(5000);
    put_rot(&s3, BUCKET, "new", &new).await;
    assert_eq!(stored_keks(&gw, BUCKET, "new").await, version(2));
    let report = ok(&config, d, &["keys", "report"]);
    assert!(
        report.contains(&version(2).0) && report.contains(&version(1).0),
        "{report}"
    );

    // Version 1 cannot go while objects name it; the newest never goes.
    let count = ok(
        &config,
        d,
        &["keys", "destroy", ROT, "--version", "1", "--dry-run"],
    );
    assert!(count.contains("5 object(s) in 2 bucket(s)"), "{count}");
    let still = refused(
        &config,
        d,
        &["keys", "destroy", ROT, "--version", "1", "--yes"],
    );
    assert!(still.contains("still name"), "{still}");
    refused(
        &config,
        d,
        &["keys", "destroy", ROT, "--version", "2", "--yes", "--force"],
    );

    // A dry run counts and changes nothing; a run for another key moves nothing.
    let dry = ok(&config, d, &["rewrap", "--bucket", BUCKET, "--dry-run"]);
    assert!(dry.contains("to rewrap (dry run): 4"), "{dry}");
    assert!(dry.contains("already current: 2"), "{dry}");
    let other = ok(
        &config,
        d,
        &[
            "rewrap",
            "--bucket",
            BUCKET,
            "--key-id",
            "alias/twofold-default",
        ],
    );
    assert!(other.contains("rewrapped: 0"), "{other}");
    assert_eq!(stored_keks(&gw, BUCKET, "single").await, version(1));

    // A run interrupted after the page that ended with "multi" resumes after it.
    let state = d.join("resume.state");
    std::fs::write(
        &state,
        format!(r#"{{"bucket":"{BUCKET}","prefix":"","after":"multi"}}"#),
    )
    .unwrap();
    let resumed = ok(
        &config,
        d,
        &[
            "rewrap",
            "--bucket",
            BUCKET,
            "--state",
            "resume.state",
            "--page-size",
            "2",
        ],
    );
    assert!(resumed.contains("rewrapped: 2"), "{resumed}");
    assert!(!state.exists(), "a finished run removes its state");
    assert_eq!(stored_keks(&gw, BUCKET, "single").await, version(2));
    assert_eq!(stored_keks(&gw, BUCKET, "unaligned").await, version(2));
    assert_eq!(stored_keks(&gw, BUCKET, "multi").await, version(1));
    // What is left, "multi" (11 MiB stored) as a multipart copy in parts of at most 6 MiB,
    // as objects over 5 GiB are moved.
    let rest = ok(
        &config,
        d,
        &[
            "rewrap",
            "--bucket",
            BUCKET,
            "--parallel",
            "3",
            "--copy-object-max",
            "6291456",
        ],
    );
    assert!(rest.contains("rewrapped: 2"), "{rest}");
    let copied = gw.backend_head(BUCKET, "multi").await;
    assert!(
        copied.e_tag().unwrap().ends_with("-2\""),
        "a multipart copy of two parts: {:?}",
        copied.e_tag()
    );
    for key in ["single", "checksummed", "multi", "unaligned"] {
        assert_eq!(stored_keks(&gw, BUCKET, key).await, version(2), "{key}");
    }
    let again = ok(&config, d, &["rewrap", "--bucket", BUCKET]);
    assert!(
        again.contains("rewrapped: 0") && again.contains("already current: 6"),
        "{again}"
    );
    assert!(
        std::fs::read_dir(d).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".state")),
        "no state file is left behind"
    );

    // Only the orphan (another bucket, never rewrapped) still names version 1.
    let count = ok(
        &config,
        d,
        &["keys", "destroy", ROT, "--version", "1", "--dry-run"],
    );
    assert!(count.contains("1 object(s) in 1 bucket(s)"), "{count}");
    let gone = ok(
        &config,
        d,
        &["keys", "destroy", ROT, "--version", "1", "--yes", "--force"],
    );
    assert_eq!(gone.matches("destroyed key").count(), 2, "{gone}");

    // The default key rotates the same way, and an upload begun before its rotation
    // completes after it (the upload ids' key is version 1's, which stays).
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("across")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let default = ok(&config, d, &["keys", "rotate", "alias/twofold-default"]);
    assert_eq!(default.matches("(version 2)").count(), 2, "{default}");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let across = random_bytes(3000);
    let p1 = s3
        .upload_part()
        .bucket(BUCKET)
        .key("across")
        .upload_id(upload_id)
        .part_number(1)
        .body(across.clone().into())
        .send()
        .await
        .unwrap();
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("across")
        .upload_id(upload_id)
        .multipart_upload(completed(&[p1.e_tag().unwrap()]))
        .send()
        .await
        .unwrap();
    // The upload's header was made when it began, under version 1: it moves too.
    let moved = ok(&config, d, &["rewrap", "--bucket", BUCKET]);
    assert!(moved.contains("rewrapped: 2"), "{moved}");
    for key in ["plain", "across"] {
        let (inner, outer) = stored_keks(&gw, BUCKET, key).await;
        assert!(
            inner.ends_with(".v2") && outer.ends_with(".v2"),
            "{key}: {inner} {outer}"
        );
    }
    refused(
        &config,
        d,
        &[
            "keys",
            "destroy",
            "alias/twofold-default",
            "--version",
            "1",
            "--yes",
            "--force",
        ],
    );

    // One layer rotates on its own (the objects stay readable under inner version 2).
    let inner_only = ok(&config, d, &["keys", "rotate", ROT, "--layer", "inner"]);
    let v3 = twofold::keys::versions::label(&named_key_label(ROT, Layer::Inner), 3);
    assert!(
        inner_only.contains(&format!("{v3:?} (version 3)")) && !inner_only.contains("outer layer"),
        "{inner_only}"
    );
    // A restarted gateway has no key cached: every moved object opens under version 2.
    gw.stop_gateway();
    let after = gw.try_start_another_with(|_| {}).unwrap();
    let s3 = after.client();
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("single")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/x-rotated"));
    assert_eq!(
        head.metadata().unwrap().get("owner").map(String::as_str),
        Some("ops")
    );
    assert_eq!(head.ssekms_key_id(), Some(ROT));
    assert_eq!(head.e_tag(), Some(single_etag.as_str()));
    assert!(get(&s3, BUCKET, "single").await == single);
    let out = s3
        .get_object()
        .bucket(BUCKET)
        .key("checksummed")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(out.checksum_sha256(), Some(sum.as_str()));
    assert!(out.body.collect().await.unwrap().to_vec() == checksummed);
    assert!(get(&s3, BUCKET, "multi").await == multi.concat());
    let part = s3
        .get_object()
        .bucket(BUCKET)
        .key("multi")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert!(part.body.collect().await.unwrap().to_vec() == multi[1]);
    let whole = unaligned.concat();
    let range = s3
        .get_object()
        .bucket(BUCKET)
        .key("unaligned")
        .range(format!("bytes={}-{}", 5 * MIB - 10, 5 * MIB + 20))
        .send()
        .await
        .unwrap();
    assert!(range.body.collect().await.unwrap().to_vec() == whole[5 * MIB - 10..=5 * MIB + 20]);
    assert!(get(&s3, BUCKET, "new").await == new);
    assert!(get(&s3, BUCKET, "plain").await == plain);
    assert!(get(&s3, BUCKET, "across").await == across);
    let e = s3
        .get_object()
        .bucket(ORPHANS)
        .key("orphan")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_code(&e),
        (400, "KMS.KMSInvalidStateException".to_owned())
    );
    after.stop();
}

#[test]
fn every_key_command_says_how_it_is_used() {
    for args in [
        &["keys", "rotate", "--help"][..],
        &["keys", "destroy", "--help"],
        &["keys", "report", "--help"],
        &["keys", "init", "--help"],
        &["decrypt", "--help"],
        &["rewrap", "--help"],
    ] {
        let out = std::process::Command::new(twofold_tests::twofold_binary())
            .args(args)
            .output()
            .unwrap();
        let text = said(&out);
        assert!(
            out.status.success() && text.contains("Usage: twofold"),
            "{args:?}: {text}"
        );
        assert!(text.contains("--config"), "{args:?}: {text}");
    }
    let out = std::process::Command::new(twofold_tests::twofold_binary())
        .args(["rewrap", "--help"])
        .output()
        .unwrap();
    for flag in [
        "--bucket",
        "--prefix",
        "--key-id",
        "--dry-run",
        "--parallel",
        "--state",
        "--copy-object-max",
    ] {
        assert!(said(&out).contains(flag), "{flag}");
    }
    let out = std::process::Command::new(twofold_tests::twofold_binary())
        .args(["decrypt", "--help"])
        .output()
        .unwrap();
    assert!(said(&out).contains("--sse-c-key-file"));
}
