//! `twofold decrypt` opens what the gateway wrote, copied straight off the backend: a
//! multipart object with unaligned parts (layout record, marker padding) and a checksum
//! record, an aligned multipart one, and a single-part one; and fails cleanly, leaving no
//! output file, on an altered body, an altered checksum record or a cut body.
//!
//! And the read plans `decrypt` follows (`twofold::envelope::plan`) say what the gateway
//! answers to GetObject with ranges and part numbers, byte for byte.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
use std::path::{Path, PathBuf};
use std::process::Command;
use twofold::envelope::aead::Layer;
use twofold::envelope::layout::SegmentSize;
use twofold::s3::checksum::ChecksumAlgorithm;
use twofold_tests::admin::Scrape;
use twofold_tests::checksum_of;
use twofold_tests::checksums::sdk_alg;
use twofold_tests::gateway::{TestGateway, create_bucket, put};
use twofold_tests::{random_bytes, twofold_binary};

const BUCKET: &str = "cli-decrypt";
const MIB: usize = 1024 * 1024;

/// A configuration naming the gateway's two custodians, as a recovery host would have.
fn write_config(gw: &TestGateway, dir: &Path) -> PathBuf {
    let block = |layer| gw.custodian_config(layer);
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
    let out = Command::new(twofold_binary())
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
    let mut child = Command::new(twofold_binary())
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
        // Every multipart object has a layout record (format version 2).
        assert!(md.contains_key("twofold-layout"), "{key}: {meta}");
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

    // A single-part object with sealed metadata: decrypt verifies the record and prints
    // it; without its record, a version 2 object is refused.
    let single = random_bytes(100_000);
    s3.put_object()
        .bucket(BUCKET)
        .key("single")
        .body(single.clone().into())
        .content_disposition("attachment; filename=\"ledger-q4.csv\"")
        .metadata("owner", "recovery-test-owner")
        .send()
        .await
        .unwrap();
    let (stored, meta) = fetch_stored(&backend, "single").await;
    let (ok, err, out) = decrypt(dir.path(), &config, "single", &stored, &meta);
    assert!(ok, "single: {err}");
    assert!(out.unwrap() == single);
    assert!(err.contains("the object's sealed metadata"), "{err}");
    assert!(
        err.contains("content-disposition: attachment; filename=\\\"ledger-q4.csv\\\""),
        "{err}"
    );
    assert!(
        err.contains("x-amz-meta-owner: recovery-test-owner"),
        "{err}"
    );
    let mut m = meta.clone();
    m["Metadata"]
        .as_object_mut()
        .unwrap()
        .remove("twofold-meta");
    let (ok, err, out) = decrypt(dir.path(), &config, "single", &stored, &m);
    assert!(
        !ok && out.is_none(),
        "single without its metadata record: {err}"
    );
    assert!(err.contains("twofold-meta"), "{err}");

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
    // Another object's checksum record, layout record and metadata record.
    let (_, _, _, other_meta) = &objects[1];
    for entry in ["twofold-checksum", "twofold-layout", "twofold-meta"] {
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

/// The read plan says what the gateway answers: for ranges in every form and part
/// numbers, of unaligned, aligned and single-part objects, the status (or error), the
/// Content-Length, Content-Range and part count, and the bytes released by the planned
/// segments are the gateway's body.
#[tokio::test]
async fn read_plans_agree_with_the_gateway() {
    // In a process of its own: it checks that the process's count of integrity failures
    // does not move, and other files' tests count theirs into the same metrics recorder.
    if crate::ran_in_own_process() {
        return;
    }
    use twofold::envelope::layout::Layout;
    use twofold::envelope::plan::{self, ObjectMeta, PlanError, ReadRequest};
    use twofold::s3::parse_range;
    use twofold_tests::gateway::status_code;
    const PLAN_BUCKET: &str = "plan-agrees";
    const INTEGRITY_FAILURES: &str = "twofold_integrity_failures_total";
    let gw = TestGateway::start_with(twofold_tests::gateway::Options {
        admin_listener: true,
        ..Default::default()
    });
    let s3 = gw.client();
    let backend = gw.backend_client();
    create_bucket(&s3, PLAN_BUCKET).await;
    let seg = SegmentSize::DEFAULT;
    let mut objects: Vec<(String, Vec<u8>, Option<Vec<u64>>)> = Vec::new();
    for (key, sizes) in [
        ("unaligned", vec![5 * MIB + 1, 5 * MIB + 7, 1000]),
        ("aligned", vec![5 * MIB, 5 * MIB, 1000]),
        // Aligned, but part 1 one segment longer than part 2: reads past part 1 guess
        // their start from part 1's size, guess wrong, and fall back to reading from the
        // start; part 2 by number fails its checks.
        ("aligned-uneven", vec![5 * MIB + 65536, 5 * MIB, 1000]),
        // One empty part: its one segment is empty and final.
        ("empty-multipart", vec![0]),
    ] {
        let up = s3
            .create_multipart_upload()
            .bucket(PLAN_BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap().to_owned();
        let mut doc = CompletedMultipartUpload::builder();
        let mut plain = Vec::new();
        for (i, &len) in sizes.iter().enumerate() {
            let body = random_bytes(len);
            let out = s3
                .upload_part()
                .bucket(PLAN_BUCKET)
                .key(key)
                .upload_id(&id)
                .part_number(i as i32 + 1)
                .body(body.clone().into())
                .send()
                .await
                .unwrap();
            doc = doc.parts(
                CompletedPart::builder()
                    .part_number(i as i32 + 1)
                    .e_tag(out.e_tag().unwrap())
                    .build(),
            );
            plain.extend_from_slice(&body);
        }
        s3.complete_multipart_upload()
            .bucket(PLAN_BUCKET)
            .key(key)
            .upload_id(&id)
            .multipart_upload(doc.build())
            .send()
            .await
            .unwrap();
        let parts = sizes.iter().map(|&p| p as u64).collect();
        objects.push((key.to_owned(), plain, Some(parts)));
    }
    let single = random_bytes(3 * 65536 + 5);
    put(&s3, PLAN_BUCKET, "single", single.clone()).await;
    objects.push(("single".to_owned(), single, None));
    put(&s3, PLAN_BUCKET, "empty", Vec::new()).await;
    objects.push(("empty".to_owned(), Vec::new(), None));

    let integrity_before = Scrape::take(gw.admin_addr()).sum(INTEGRITY_FAILURES, &[]);
    for (key, plain, parts) in &objects {
        let head = backend
            .head_object()
            .bucket(PLAN_BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        let header =
            twofold::envelope::objmeta::decode(head.metadata().unwrap().get("twofold").unwrap())
                .unwrap();
        let stored = head.content_length().unwrap() as u64;
        // The gateway's multipart objects: each part after its salt.
        let layout = parts
            .clone()
            .map(|p| Layout::multipart(p, seg).with_salts(true));
        let meta = ObjectMeta {
            header: &header,
            stored_len: stored,
            layout_record: layout.as_ref(),
            etag_parts: plan::parts_count_from_etag(head.e_tag()),
            // The probe finds part 1's segments.
            segments_per_part: parts.as_ref().map(|p| p[0].div_ceil(seg.bytes()).max(1)),
            has_checksum_record: false,
        };
        let size = plain.len() as u64;
        let mut ranges: Vec<Option<String>> = vec![None];
        for r in [
            "bytes=0-0".to_owned(),
            "bytes=0-".to_owned(),
            "bytes=-1".to_owned(),
            "bytes=-100000".to_owned(),
            "bytes=-99999999999".to_owned(),
            format!("bytes={}-{}", 5 * MIB - 1, 5 * MIB + 1),
            format!("bytes={}-", 65536),
            format!("bytes={}-", size.saturating_sub(1)),
            format!("bytes={size}-"),
            format!("bytes=100-{}", size + 5),
            "bytes=0-1,5-6".to_owned(),
            "bytes=x-y".to_owned(),
        ] {
            ranges.push(Some(r));
        }
        // A part number takes precedence over a range: each with and without one.
        let mut requests: Vec<(Option<String>, Option<u32>)> =
            ranges.iter().map(|r| (r.clone(), None)).collect();
        for k in 1..=4u32 {
            requests.push((None, Some(k)));
            requests.push((Some("bytes=0-0".to_owned()), Some(k)));
        }
        for (range, part_number) in &requests {
            let part_number = *part_number;
            let req = ReadRequest {
                head_only: false,
                range: range.as_deref().map(|r| parse_range(r.as_bytes())),
                part_number,
                checksum_mode: false,
            };
            let what = format!("{key} range {range:?} part {part_number:?}");
            let planned = plan::plan(&meta, &req);
            let mut get = s3.get_object().bucket(PLAN_BUCKET).key(key);
            if let Some(r) = range {
                get = get.range(r);
            }
            if let Some(k) = part_number {
                get = get.part_number(k as i32);
            }
            match (get.send().await, planned) {
                (Ok(out), Ok(p)) => {
                    assert_eq!(
                        out.content_length(),
                        Some(p.response.content_length as i64),
                        "{what}"
                    );
                    assert_eq!(
                        out.content_range().map(str::to_owned),
                        p.response.content_range.map(|c| c.to_string()),
                        "{what}"
                    );
                    assert_eq!(
                        out.parts_count(),
                        p.response.parts_count.map(|n| n as i32),
                        "{what}"
                    );
                    let body = out.body.collect().await.unwrap().to_vec();
                    let mut want = Vec::new();
                    for s in &p.segments {
                        let a = (s.plain_first + s.skip) as usize;
                        want.extend_from_slice(&plain[a..a + s.keep as usize]);
                    }
                    assert!(body == want, "{what}: body");
                }
                // The plan's part checks open under part k's keys only when the parts
                // are of one size: the gateway finds they are not.
                (Err(e), Ok(p)) if key == "aligned-uneven" && !p.checks.is_empty() => {
                    let (status, code) = status_code(&e);
                    assert_eq!((status, code.as_str()), (501, "NotImplemented"), "{what}");
                }
                (Err(e), Err(pe)) => {
                    let (status, code) = status_code(&e);
                    let want = match pe {
                        PlanError::RangeNotSatisfiable { .. } => (416, "InvalidRange"),
                        PlanError::PartNotSatisfiable => (416, "InvalidPartNumber"),
                        PlanError::PartsNotUniform => (501, "NotImplemented"),
                        PlanError::InvalidPartNumber => (400, "InvalidArgument"),
                        other => panic!("{what}: {other}"),
                    };
                    assert_eq!((status, code.as_str()), want, "{what}");
                }
                (got, p) => panic!("{what}: the gateway says {got:?}, the plan {p:?}"),
            }
        }
    }
    // A wrong guess of where a range starts, followed by the fallback, is not counted as
    // an integrity failure (there was none).
    let integrity_after = Scrape::take(gw.admin_addr()).sum(INTEGRITY_FAILURES, &[]);
    assert_eq!(integrity_after, integrity_before);
}

/// `twofold decrypt` of `stored`/`meta` with `--sse-c-key-file` holding `key` (or none).
fn decrypt_sse_c(
    dir: &Path,
    config: &Path,
    stored: &[u8],
    meta: &serde_json::Value,
    key: Option<&[u8]>,
) -> (bool, String, Option<Vec<u8>>) {
    use std::os::unix::fs::PermissionsExt;
    let (input, meta_path, output, key_path) = (
        dir.join("c-stored.bin"),
        dir.join("c-meta.json"),
        dir.join("c-plain.bin"),
        dir.join("c.key"),
    );
    let _ = std::fs::remove_file(&output);
    std::fs::write(&input, stored).unwrap();
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let mut cmd = Command::new(twofold_binary());
    cmd.env_remove("SOFTHSM2_CONF")
        .arg("decrypt")
        .arg("--config")
        .arg(config)
        .args(["--bucket", BUCKET, "--key", "sse-c", "--meta"])
        .arg(&meta_path)
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output);
    if let Some(k) = key {
        std::fs::write(&key_path, k).unwrap();
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        cmd.arg("--sse-c-key-file").arg(&key_path);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        std::fs::read(&output).ok(),
    )
}

#[tokio::test]
async fn an_object_under_a_customer_key_decrypts_only_with_that_key() {
    use base64::Engine;
    use md5::Digest;
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&gw, dir.path());
    let key = [0x42u8; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    let plain = random_bytes(200_000);
    s3.put_object()
        .bucket(BUCKET)
        .key("sse-c")
        .body(plain.clone().into())
        .sse_customer_algorithm("AES256")
        .sse_customer_key(b64.encode(key))
        .sse_customer_key_md5(b64.encode(md5::Md5::digest(key)))
        .send()
        .await
        .unwrap();
    let (stored, meta) = fetch_stored(&gw.backend_client(), "sse-c").await;
    let (ok, err, out) = decrypt_sse_c(dir.path(), &config, &stored, &meta, None);
    assert!(!ok && out.is_none(), "{err}");
    assert!(err.contains("customer-provided key"), "{err}");
    let (ok, err, out) = decrypt_sse_c(dir.path(), &config, &stored, &meta, Some(&[0x43; 32]));
    assert!(!ok && out.is_none(), "{err}");
    let (ok, err, out) = decrypt_sse_c(dir.path(), &config, &stored, &meta, Some(&key));
    assert!(ok, "{err}");
    assert!(out.unwrap() == plain);
    // The base64 form (`aws s3 cp --sse-c-key` text) works too.
    let text = b64.encode(key);
    let (ok, err, out) = decrypt_sse_c(dir.path(), &config, &stored, &meta, Some(text.as_bytes()));
    assert!(ok, "{err}");
    assert!(out.unwrap() == plain);
}
