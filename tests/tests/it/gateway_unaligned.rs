//! Multipart uploads whose parts are not whole numbers of segments ("unaligned"), end to
//! end with the AWS SDK for Rust against the s3s-fs backend and SoftHSM2 tokens. Until now
//! CompleteMultipartUpload refused them with InvalidPart; now the gateway rewrites the
//! completed object onto itself with a layout record and marker padding
//! (`docs/format.md`, *Unaligned multipart objects*), so:
//!
//! - the object reads back exactly: whole, by ranges at part and segment boundaries ±1,
//!   suffix and open-ended ranges, and by part number for every part;
//! - every size is the plaintext size: HEAD, ListObjectsV2, ListObjects, ListObjectVersions,
//!   GetObjectAttributes;
//! - CopyObject of it and UploadPartCopy from it read back right;
//! - a tampered, swapped or missing layout record is an integrity error, never wrong
//!   bytes or a wrong size;
//! - no 16-byte run of any plaintext reaches the backend;
//! - a gateway restarted in the middle of an upload loses nothing, and a second gateway
//!   can take parts of the same upload.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ObjectAttributes};
use twofold_tests::backend::Capability;
use twofold_tests::gateway::{TestGateway, create_bucket, get, status_code};
use twofold_tests::random_bytes;

const BUCKET: &str = "unaligned";
const MIB: usize = 1024 * 1024;
const KIB: usize = 1024;
/// The default segment size, and its stored size.
const SEG: usize = 64 * KIB;
const STORED_SEG: u64 = SEG as u64 + 32;

async fn upload_parts(
    s3: &Client,
    key: &str,
    id: &str,
    parts: &[Vec<u8>],
    from: i32,
) -> Vec<CompletedPart> {
    let mut done = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = from + i as i32;
        let out = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(data.clone().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPart {n}: {e:?}"));
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    done
}

async fn complete(s3: &Client, key: &str, id: &str, done: Vec<CompletedPart>) -> String {
    let out = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("CompleteMultipartUpload {key}: {e:?}"));
    out.e_tag().unwrap().to_owned()
}

async fn multipart(s3: &Client, key: &str, parts: &[Vec<u8>]) -> String {
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .content_type("application/x-unaligned")
        .metadata("owner", "carol")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let done = upload_parts(s3, key, &id, parts, 1).await;
    complete(s3, key, &id, done).await
}

/// A ranged GET: the body and the Content-Range.
async fn range(s3: &Client, key: &str, spec: &str) -> (Vec<u8>, String) {
    let out = s3
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .range(spec)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key} {spec}: {e:?}"));
    let cr = out.content_range().unwrap_or_default().to_owned();
    let len = out.content_length().unwrap();
    let body = out.body.collect().await.unwrap().to_vec();
    assert_eq!(len as usize, body.len(), "{spec}: Content-Length");
    (body, cr)
}

fn stored_size(gw: &TestGateway, key: &str) -> u64 {
    gw.stored(BUCKET, key).unwrap().len() as u64
}

#[tokio::test]
async fn unaligned_parts_read_back_exactly_by_every_access_path() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let parts = vec![
        random_bytes(5 * MIB + 1),
        random_bytes(5 * MIB + 12345),
        random_bytes(1),
    ];
    let whole: Vec<u8> = parts.concat();
    let size = whole.len();
    multipart(&s3, "odd", &parts).await;
    // The stored size carries the marker residue that no aligned object has.
    assert_eq!(stored_size(&gw, "odd") % STORED_SEG, 1);

    assert_eq!(get(&s3, BUCKET, "odd").await, whole);
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("odd")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(size as i64));
    assert_eq!(head.content_type(), Some("application/x-unaligned"));
    assert_eq!(
        head.metadata().unwrap().get("owner").map(String::as_str),
        Some("carol")
    );
    assert_eq!(head.metadata().unwrap().len(), 1, "{:?}", head.metadata());

    // Ranges at part boundaries ±1 and segment boundaries ±1 (within parts 1 and 2).
    let p1 = parts[0].len();
    let p2 = p1 + parts[1].len();
    let mut points = vec![0, 1, SEG - 1, SEG, SEG + 1, p1 - 1, p1, p1 + 1];
    points.extend([p1 + SEG - 1, p1 + SEG, p1 + SEG + 1, p2 - 2, p2 - 1, p2]);
    for &a in &points {
        for &b in &points {
            if a > b || b >= size || b - a > SEG + 2 {
                continue;
            }
            let spec = format!("bytes={a}-{b}");
            let (body, cr) = range(&s3, "odd", &spec).await;
            assert_eq!(body, whole[a..=b], "{spec}");
            assert_eq!(cr, format!("bytes {a}-{b}/{size}"), "{spec}");
        }
    }
    // Across both boundaries, suffix and open-ended.
    let (body, _) = range(&s3, "odd", &format!("bytes={}-{}", p1 - 5, p2)).await;
    assert_eq!(body, whole[p1 - 5..=p2]);
    let (body, cr) = range(&s3, "odd", "bytes=-70000").await;
    assert_eq!(body, whole[size - 70000..]);
    assert_eq!(cr, format!("bytes {}-{}/{size}", size - 70000, size - 1));
    let (body, _) = range(&s3, "odd", &format!("bytes={}-", p1 - 1)).await;
    assert_eq!(body, whole[p1 - 1..]);
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("odd")
        .range(format!("bytes={size}-"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 416);

    // partNumber: exactly the client's parts, and the client's part count.
    let mut start = 0;
    for (i, part) in parts.iter().enumerate() {
        let k = i as i32 + 1;
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key("odd")
            .part_number(k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET partNumber={k}: {e:?}"));
        assert_eq!(out.parts_count(), Some(3), "part {k}");
        assert_eq!(
            out.content_range(),
            Some(format!("bytes {start}-{}/{size}", start + part.len() - 1).as_str())
        );
        assert_eq!(
            &out.body.collect().await.unwrap().to_vec(),
            part,
            "part {k}"
        );
        let h = s3
            .head_object()
            .bucket(BUCKET)
            .key("odd")
            .part_number(k)
            .send()
            .await
            .unwrap();
        assert_eq!(h.content_length(), Some(part.len() as i64));
        assert_eq!(h.parts_count(), Some(3));
        start += part.len();
    }
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("odd")
        .part_number(4)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 416);

    // Listings and attributes: plaintext sizes.
    put_small(&s3, "aligned-neighbour", 100).await;
    let v2 = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    let sizes: Vec<(String, i64)> = v2
        .contents()
        .iter()
        .map(|o| (o.key().unwrap().to_owned(), o.size().unwrap()))
        .collect();
    assert!(
        sizes.contains(&("odd".to_owned(), size as i64)),
        "{sizes:?}"
    );
    assert!(
        sizes.contains(&("aligned-neighbour".to_owned(), 100)),
        "{sizes:?}"
    );
    let v1 = s3.list_objects().bucket(BUCKET).send().await.unwrap();
    let odd = v1
        .contents()
        .iter()
        .find(|o| o.key() == Some("odd"))
        .unwrap();
    assert_eq!(odd.size(), Some(size as i64));
    let versions = s3.list_object_versions().bucket(BUCKET).send().await;
    if let Ok(versions) = versions {
        for v in versions.versions() {
            if v.key() == Some("odd") {
                assert_eq!(v.size(), Some(size as i64));
            }
        }
    }
    let attrs = s3
        .get_object_attributes()
        .bucket(BUCKET)
        .key("odd")
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::ObjectParts)
        .send()
        .await
        .unwrap();
    assert_eq!(attrs.object_size(), Some(size as i64));
    assert_eq!(attrs.object_parts().unwrap().total_parts_count(), Some(3));

    // CopyObject of the result: same bytes, same size, same parts.
    s3.copy_object()
        .bucket(BUCKET)
        .key("odd-copy")
        .copy_source(format!("{BUCKET}/odd"))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, BUCKET, "odd-copy").await, whole);
    let (body, _) = range(&s3, "odd-copy", &format!("bytes={}-{}", p1 - 3, p1 + 3)).await;
    assert_eq!(body, whole[p1 - 3..=p1 + 3]);

    // UploadPartCopy from it: a range across the first part boundary, then the rest.
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("from-odd")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let cut = p1 + 777;
    let mut done = Vec::new();
    for (n, (a, b)) in [(1, (0, cut - 1)), (2, (cut, size - 1))] {
        let out = s3
            .upload_part_copy()
            .bucket(BUCKET)
            .key("from-odd")
            .upload_id(id)
            .part_number(n)
            .copy_source(format!("{BUCKET}/odd"))
            .copy_source_range(format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("UploadPartCopy {n}: {e:?}"));
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.copy_part_result().unwrap().e_tag().unwrap())
                .build(),
        );
    }
    complete(&s3, "from-odd", id, done).await;
    assert_eq!(get(&s3, BUCKET, "from-odd").await, whole);

    let plains: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    gw.assert_no_plaintext_in_backend(&plains);
}

async fn put_small(s3: &Client, key: &str, len: usize) {
    twofold_tests::gateway::put(s3, BUCKET, key, random_bytes(len)).await;
}

#[tokio::test]
async fn last_parts_of_one_byte_and_100_kib_and_equal_odd_parts() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let mut all = Vec::new();
    for (key, parts) in [
        (
            "one-byte-last",
            vec![random_bytes(5 * MIB + 1), random_bytes(1)],
        ),
        (
            "kib-last",
            vec![random_bytes(5 * MIB + 12345), random_bytes(100 * KIB)],
        ),
        (
            "equal-odd",
            vec![
                random_bytes(5 * MIB + 7),
                random_bytes(5 * MIB + 7),
                random_bytes(SEG - 1),
            ],
        ),
        // An aligned upload has a layout record and, its parts being salted, the marker
        // padding too.
        ("aligned", vec![random_bytes(5 * MIB), random_bytes(10)]),
    ] {
        multipart(&s3, key, &parts).await;
        let whole = parts.concat();
        assert_eq!(get(&s3, BUCKET, key).await, whole, "{key}");
        let stored = stored_size(&gw, key);
        assert_eq!(stored % STORED_SEG, 1, "{key}");
        let meta = gw.backend_head(BUCKET, key).await;
        assert!(
            meta.metadata().unwrap().contains_key("twofold-layout"),
            "{key}"
        );
        let last = whole.len() - 1;
        let (body, _) = range(&s3, key, &format!("bytes={}-{last}", last - 2)).await;
        assert_eq!(body, whole[last - 2..], "{key}");
        let n = parts.len() as i32;
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .part_number(n)
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.body.collect().await.unwrap().to_vec(),
            parts[parts.len() - 1],
            "{key}"
        );
        all.extend(parts);
    }
    let plains: Vec<&[u8]> = all.iter().map(Vec::as_slice).collect();
    gw.assert_no_plaintext_in_backend(&plains);
}

/// The metadata file s3s-fs keeps for an object.
fn metadata_file(gw: &TestGateway, key: &str) -> std::path::PathBuf {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    gw.backend_root().join(format!(
        ".bucket-{}.object-{}.metadata.json",
        b64.encode(BUCKET),
        b64.encode(key)
    ))
}

fn layout_value(gw: &TestGateway, key: &str) -> String {
    let text = std::fs::read_to_string(metadata_file(gw, key)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["user_metadata"]["twofold-layout"]
        .as_str()
        .unwrap_or_else(|| panic!("no layout record in {text}"))
        .to_owned()
}

fn set_layout_value(gw: &TestGateway, key: &str, value: Option<&str>) {
    let path = metadata_file(gw, key);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let map = v["user_metadata"].as_object_mut().unwrap();
    match value {
        Some(s) => map.insert("twofold-layout".into(), s.into()),
        None => map.remove("twofold-layout"),
    };
    std::fs::write(&path, serde_json::to_string(&v).unwrap()).unwrap();
}

#[tokio::test]
async fn a_tampered_swapped_or_missing_layout_record_is_an_integrity_error() {
    let gw = TestGateway::start();
    if gw.skip_unless(
        Capability::BackendFolder,
        "edits the layout record in s3s-fs's metadata file in place",
    ) {
        return;
    }
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let parts = vec![random_bytes(5 * MIB + 1), random_bytes(300)];
    // Same total plaintext size, other part sizes: its record, under its keys, says so.
    let other = vec![random_bytes(5 * MIB + 2), random_bytes(299)];
    multipart(&s3, "victim", &parts).await;
    multipart(&s3, "other", &other).await;
    let good = layout_value(&gw, "victim");
    let mut flipped = good.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let swapped = layout_value(&gw, "other");
    for (what, value) in [
        ("flipped", Some(flipped.as_str())),
        ("swapped", Some(swapped.as_str())),
        ("missing", None),
        ("not base64", Some("!!!")),
    ] {
        set_layout_value(&gw, "victim", value);
        let e = s3.get_object().bucket(BUCKET).key("victim").send().await;
        match e {
            Err(e) => assert_eq!(status_code(&e).0, 500, "{what}: {e:?}"),
            Ok(out) => {
                // The head went out: the body must then be cut, never complete.
                let body = out.body.collect().await;
                panic!("{what}: GET answered 200 (body read: {})", body.is_ok());
            }
        }
        let e = s3
            .head_object()
            .bucket(BUCKET)
            .key("victim")
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_code(&e).0, 500, "{what}");
        let e = s3
            .get_object()
            .bucket(BUCKET)
            .key("victim")
            .range("bytes=0-9")
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_code(&e).0, 500, "{what}");
    }
    set_layout_value(&gw, "victim", Some(&good));
    assert_eq!(get(&s3, BUCKET, "victim").await, parts.concat());
}

#[tokio::test]
async fn a_restart_in_the_middle_of_an_unaligned_upload_loses_nothing() {
    let mut gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let parts = [
        random_bytes(5 * MIB + 3),
        random_bytes(5 * MIB + 5),
        random_bytes(17),
    ];
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("restart")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let mut done = upload_parts(&s3, "restart", &id, &parts[..1], 1).await;
    // A second gateway process takes part 2 of the same upload.
    let second = gw.start_another();
    done.extend(upload_parts(&second.client(), "restart", &id, &parts[1..2], 2).await);
    second.stop();
    gw.stop_gateway();
    let fresh = gw.start_another();
    let s3 = fresh.client();
    done.extend(upload_parts(&s3, "restart", &id, &parts[2..], 3).await);
    complete(&s3, "restart", &id, done).await;
    assert_eq!(get(&s3, BUCKET, "restart").await, parts.concat());
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("restart")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(parts.concat().len() as i64));
    let plains: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    gw.assert_no_plaintext_in_backend(&plains);
}
