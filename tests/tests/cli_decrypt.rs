//! `twofold decrypt` opens what the gateway wrote, copied straight off the backend: a
//! multipart object with unaligned parts (layout record, marker padding) and a checksum
//! record, an aligned multipart one, and a single-part one; and fails cleanly, leaving no
//! output file, on an altered body, an altered checksum record or a cut body.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
use std::path::{Path, PathBuf};
use std::process::Command;
use twofold::checksum::ChecksumAlgorithm;
use twofold::envelope::aead::Layer;
use twofold::envelope::layout::SegmentSize;
use twofold_tests::checksum_of;
use twofold_tests::checksums::sdk_alg;
use twofold_tests::gateway::{TestGateway, create_bucket, put};
use twofold_tests::random_bytes;

const BUCKET: &str = "cli-decrypt";
const MIB: usize = 1024 * 1024;

fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("twofold");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p twofold` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// A configuration naming the gateway's two custodians, as a recovery host would have.
fn write_config(gw: &TestGateway, dir: &Path) -> PathBuf {
    let block = |layer: Layer| {
        let twofold::keys::CustodianSpec::Pkcs11 {
            module,
            token_label,
            pin: twofold::keys::PinSource::File(pin),
            key_label,
            ..
        } = gw.custody().spec(layer)
        else {
            panic!("test custodians are PKCS#11 tokens with PIN files")
        };
        format!(
            "[custodian.{layer}]\nkind = \"pkcs11\"\nmodule = \"{}\"\ntoken_label = \"{token_label}\"\n\
             key_label = \"{key_label}\"\npin_file = \"{}\"\nsofthsm2_conf = \"{}\"\n\n",
            module.display(),
            pin.display(),
            twofold_tests::softhsm_env().join("softhsm2.conf").display()
        )
    };
    let path = dir.join("recovery.toml");
    std::fs::write(
        &path,
        format!("{}{}", block(Layer::Outer), block(Layer::Inner)),
    )
    .unwrap();
    path
}

/// A multipart upload of parts of `sizes`, declaring checksum `a` of type `kind`;
/// returns the plaintext.
async fn upload(
    s3: &Client,
    key: &str,
    a: ChecksumAlgorithm,
    kind: ChecksumType,
    sizes: &[usize],
) -> Vec<u8> {
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .checksum_algorithm(sdk_alg(a))
        .checksum_type(kind)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: Create: {e:?}"));
    let id = up.upload_id().unwrap().to_owned();
    let mut plain = Vec::new();
    let mut doc = CompletedMultipartUpload::builder();
    for (i, &len) in sizes.iter().enumerate() {
        let number = i as i32 + 1;
        let body = random_bytes(len);
        let out = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(number)
            .checksum_algorithm(sdk_alg(a))
            .body(body.clone().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: UploadPart {number}: {e:?}"));
        let sum = checksum_of!(out, a).expect("UploadPart gives the part's checksum");
        let part = CompletedPart::builder()
            .part_number(number)
            .e_tag(out.e_tag().unwrap());
        let part = match a {
            ChecksumAlgorithm::Crc32 => part.checksum_crc32(sum),
            ChecksumAlgorithm::Crc32c => part.checksum_crc32_c(sum),
            ChecksumAlgorithm::Crc64Nvme => part.checksum_crc64_nvme(sum),
            ChecksumAlgorithm::Sha1 => part.checksum_sha1(sum),
            ChecksumAlgorithm::Sha256 => part.checksum_sha256(sum),
        };
        doc = doc.parts(part.build());
        plain.extend_from_slice(&body);
    }
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .multipart_upload(doc.build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: Complete: {e:?}"));
    plain
}

/// The stored body and the metadata JSON (as `aws s3api head-object` prints it) of `key`,
/// read from the backend directly.
async fn fetch_stored(backend: &Client, key: &str) -> (Vec<u8>, serde_json::Value) {
    let head = backend
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let body = backend
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec();
    let metadata: serde_json::Map<String, serde_json::Value> = head
        .metadata()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let meta = serde_json::json!({
        "ContentLength": head.content_length().unwrap(),
        "ETag": head.e_tag().unwrap(),
        "Metadata": metadata,
    });
    assert_eq!(body.len() as i64, head.content_length().unwrap());
    (body, meta)
}

/// Runs `twofold decrypt` on `stored` and `meta`; the exit status, stderr, and the output
/// file's bytes if it exists.
fn decrypt(
    dir: &Path,
    config: &Path,
    key: &str,
    stored: &[u8],
    meta: &serde_json::Value,
) -> (bool, String, Option<Vec<u8>>) {
    let input = dir.join("stored.bin");
    let meta_path = dir.join("meta.json");
    let output = dir.join("plain.bin");
    let _ = std::fs::remove_file(&output);
    std::fs::write(&input, stored).unwrap();
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let out = Command::new(binary())
        .env_remove("SOFTHSM2_CONF")
        .arg("decrypt")
        .arg("--config")
        .arg(config)
        .args(["--bucket", BUCKET, "--key", key, "--meta"])
        .arg(&meta_path)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    let leftover = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".twofold-partial")
        });
    assert!(!leftover, "no partial output is left behind");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        std::fs::read(&output).ok(),
    )
}

/// [`decrypt`] with the stored body on stdin.
fn decrypt_stdin(
    dir: &Path,
    config: &Path,
    key: &str,
    stored: &[u8],
    meta: &serde_json::Value,
) -> (bool, String, Option<Vec<u8>>) {
    use std::io::Write;
    let meta_path = dir.join("meta.json");
    let output = dir.join("plain.bin");
    let _ = std::fs::remove_file(&output);
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let mut child = Command::new(binary())
        .env_remove("SOFTHSM2_CONF")
        .arg("decrypt")
        .arg("--config")
        .arg(config)
        .args(["--bucket", BUCKET, "--key", key, "--meta"])
        .arg(&meta_path)
        .arg("--output")
        .arg(&output)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The command may refuse before reading everything: a broken pipe is its answer.
    let _ = stdin.write_all(stored);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        std::fs::read(&output).ok(),
    )
}

#[tokio::test]
async fn decrypt_opens_every_object_the_gateway_writes_and_refuses_altered_ones() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    let backend = gw.backend_client();
    create_bucket(&s3, BUCKET).await;
    let dir = tempfile::Builder::new()
        .prefix("twofold-decrypt-")
        .tempdir()
        .unwrap();
    let config = write_config(&gw, dir.path());

    let unaligned = [5 * MIB + 1, 5 * MIB + 7, 1000];
    let aligned = [5 * MIB, 5 * MIB, 1000];
    let cases: [(&str, ChecksumAlgorithm, ChecksumType, &[usize]); 3] = [
        (
            "unaligned-crc64",
            ChecksumAlgorithm::Crc64Nvme,
            ChecksumType::FullObject,
            &unaligned,
        ),
        (
            "unaligned-sha256",
            ChecksumAlgorithm::Sha256,
            ChecksumType::Composite,
            &unaligned,
        ),
        (
            "aligned-crc32c",
            ChecksumAlgorithm::Crc32c,
            ChecksumType::Composite,
            &aligned,
        ),
    ];
    let mut objects = Vec::new();
    for (key, a, kind, sizes) in cases {
        let plain = upload(&s3, key, a, kind, sizes).await;
        let (stored, meta) = fetch_stored(&backend, key).await;
        let md = meta["Metadata"].as_object().unwrap();
        assert!(md.contains_key("twofold-checksum"), "{key}: {meta}");
        assert_eq!(
            md.contains_key("twofold-layout"),
            sizes == unaligned,
            "{key}: {meta}"
        );
        let (ok, err, out) = decrypt(dir.path(), &config, key, &stored, &meta);
        assert!(ok, "{key}: {err}");
        assert!(out.unwrap() == plain, "{key}: the plaintext comes back");
        objects.push((key, plain, stored, meta));
    }
    // From stdin: the metadata's ContentLength gives the stored length; without it a
    // multipart object is refused.
    let (key, plain, stored, meta) = &objects[0];
    let (ok, err, out) = decrypt_stdin(dir.path(), &config, key, stored, meta);
    assert!(ok, "{key} from stdin: {err}");
    assert!(out.unwrap() == *plain, "{key} from stdin");
    let mut m = meta.clone();
    m.as_object_mut().unwrap().remove("ContentLength");
    let (ok, err, out) = decrypt_stdin(dir.path(), &config, key, stored, &m);
    assert!(!ok && out.is_none(), "{key} from stdin, no length: {err}");
    assert!(err.contains("stored length"), "{err}");

    let single = random_bytes(100_000);
    put(&s3, BUCKET, "single", single.clone()).await;
    let (stored, meta) = fetch_stored(&backend, "single").await;
    let (ok, err, out) = decrypt(dir.path(), &config, "single", &stored, &meta);
    assert!(ok, "single: {err}");
    assert!(out.unwrap() == single);

    let stored_len =
        |p: usize| twofold::envelope::layout::stored_len(p as u64, SegmentSize::DEFAULT) as usize;
    let (key, _, stored, meta) = &objects[0];
    let parts_stored: usize = unaligned.iter().map(|&p| stored_len(p)).sum();
    // A flipped bit in each part's body, and in the last segment.
    for at in [10, 5 * MIB + 100, parts_stored - 10] {
        let mut bad = stored.clone();
        bad[at] ^= 0x20;
        let (ok, err, out) = decrypt(dir.path(), &config, key, &bad, meta);
        assert!(!ok && out.is_none(), "{key}: bit at {at} altered: {err}");
        assert!(err.contains("failed authentication"), "{key}: {err}");
    }
    // Cut: the padding, or the padding and the last segment.
    for cut in [stored.len() - 1, stored.len() - 2000] {
        let (ok, err, out) = decrypt(dir.path(), &config, key, &stored[..cut], meta);
        assert!(!ok && out.is_none(), "{key}: cut to {cut}: {err}");
    }
    // Another object's checksum record, and another object's layout record.
    let (_, _, _, other_meta) = &objects[1];
    for entry in ["twofold-checksum", "twofold-layout"] {
        let mut m = meta.clone();
        m["Metadata"][entry] = other_meta["Metadata"][entry].clone();
        m["ContentLength"] = meta["ContentLength"].clone();
        let (ok, err, out) = decrypt(dir.path(), &config, key, stored, &m);
        assert!(!ok && out.is_none(), "{key}: {entry} swapped: {err}");
        assert!(err.contains("integrity"), "{key}: {entry} swapped: {err}");
    }
    // The aligned object without its last part (the ETag still counts three).
    let (key, _, stored, meta) = &objects[2];
    let two_parts = 2 * stored_len(5 * MIB);
    let mut m = meta.clone();
    m["ContentLength"] = serde_json::json!(two_parts);
    let (ok, err, out) = decrypt(dir.path(), &config, key, &stored[..two_parts], &m);
    assert!(!ok && out.is_none(), "{key}: last part dropped: {err}");
}
