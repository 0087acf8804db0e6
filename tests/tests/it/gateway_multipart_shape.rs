//! Format version 2 authenticates a multipart object's shape: its layout record, sealed
//! under the object's keys at CompleteMultipartUpload, gives its part count and every
//! part's plaintext size, and every read checks the stored length against it.
//!
//! Against the backend as adversary (the tampering goes through the backend's own S3 API,
//! so it runs on every backend): an object cut back at a part boundary, extended by a
//! part, with a part dropped or two parts swapped, or whose layout record is removed (with
//! or without a cut), aligned or unaligned, is an integrity failure on every read path
//! (GET, HEAD, ranges, `partNumber`, UploadPartCopy from it), counted in
//! `twofold_integrity_failures_total`; never a 200 with other bytes. The object put back
//! as it was reads again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use std::collections::HashMap;
use twofold::envelope::layout::{SegmentSize, salted_stored_len};
use twofold::envelope::record::padding_len;
use twofold_tests::admin::Scrape;
use twofold_tests::backend::BackendKind;
use twofold_tests::gateway::{
    Options, TestGateway, create_bucket, create_upload, get, status_code, upload_part,
};
use twofold_tests::random_bytes;

const BUCKET: &str = "shape";
const MIB: usize = 1024 * 1024;
const INTEGRITY_FAILURES: &str = "twofold_integrity_failures_total";

async fn multipart(s3: &Client, key: &str, parts: &[Vec<u8>]) {
    let numbers: Vec<i32> = (1..=parts.len() as i32).collect();
    multipart_numbered(s3, key, parts, &numbers).await;
}

/// A multipart upload of `parts` under the part numbers `numbers`.
async fn multipart_numbered(s3: &Client, key: &str, parts: &[Vec<u8>], numbers: &[i32]) {
    let id = create_upload(s3, BUCKET, key).await;
    let mut doc = CompletedMultipartUpload::builder();
    for (p, &n) in parts.iter().zip(numbers) {
        let out = upload_part(s3, (BUCKET, key, &id), n, p.clone())
            .await
            .unwrap();
        doc = doc.parts(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .multipart_upload(doc.build())
        .send()
        .await
        .unwrap();
}

/// The stored bodies of the object's parts, and its marker padding (empty when aligned).
fn stored_parts(stored: &[u8], sizes: &[usize]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut at = 0;
    let mut parts = Vec::new();
    for &p in sizes {
        // Each part is its salt, then its segments.
        let len = salted_stored_len(p as u64, SegmentSize::DEFAULT) as usize;
        parts.push(stored[at..at + len].to_vec());
        at += len;
    }
    (parts, stored[at..].to_vec())
}

/// A stored part with a bit of its salt flipped: its segments then open under no keys.
fn salt_flipped(part: &[u8]) -> Vec<u8> {
    let mut out = part.to_vec();
    out[3] ^= 0x10;
    out
}

/// Parts laid end to end, with fresh marker padding where the original had some (what a
/// backend that knows the format would forge).
fn laid(parts: &[&Vec<u8>], padded: bool) -> Vec<u8> {
    let mut out: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    if padded {
        let pad = padding_len(out.len() as u64, SegmentSize::DEFAULT) as usize;
        out.extend(std::iter::repeat_n(0x5a, pad));
    }
    out
}

/// A whole GET through the gateway that must be refused: an error status, or (where the
/// head went out first) a body that does not arrive whole.
async fn assert_get_refused(s3: &Client, what: &str) {
    match s3.get_object().bucket(BUCKET).key("victim").send().await {
        Err(e) => assert_eq!(status_code(&e).0, 500, "{what}: {e:?}"),
        Ok(out) => {
            let len = out.content_length().unwrap_or(-1);
            let body = out.body.collect().await;
            assert!(
                body.is_err(),
                "{what}: answered 200 with {len} bytes, and all of them came"
            );
        }
    }
}

/// A partial read (a range, or a part by number) through the gateway: refused, or exactly
/// the original bytes `want` (a part left intact may still be read).
async fn assert_never_wrong(
    s3: &Client,
    what: &str,
    read: (Option<String>, Option<i32>),
    want: &[u8],
) {
    let r = s3
        .get_object()
        .bucket(BUCKET)
        .key("victim")
        .set_range(read.0.clone())
        .set_part_number(read.1)
        .send()
        .await;
    match r {
        Err(e) => assert_eq!(status_code(&e).0, 500, "{what} {read:?}: {e:?}"),
        Ok(out) => {
            if let Ok(body) = out.body.collect().await {
                assert!(body.to_vec() == want, "{what} {read:?}: other bytes");
            }
        }
    }
}

/// UploadPartCopy from the tampered object: refused.
async fn assert_copy_refused(s3: &Client, what: &str) {
    let id = create_upload(s3, BUCKET, "copy-target").await;
    let r = s3
        .upload_part_copy()
        .bucket(BUCKET)
        .key("copy-target")
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("{BUCKET}/victim"))
        .send()
        .await;
    assert!(r.is_err(), "{what}: UploadPartCopy from it succeeded");
    let _ = s3
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key("copy-target")
        .upload_id(&id)
        .send()
        .await;
}

#[tokio::test]
async fn cut_extended_reordered_or_unrecorded_multipart_objects_are_integrity_failures() {
    let gw = TestGateway::start_with(Options {
        admin_listener: true,
        ..Default::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    for (shape, sizes) in [
        ("aligned", vec![5 * MIB, 5 * MIB, MIB + 5]),
        ("unaligned", vec![5 * MIB + 1, 5 * MIB + 1, 300]),
    ] {
        let plain: Vec<Vec<u8>> = sizes.iter().map(|&n| random_bytes(n)).collect();
        multipart(&s3, "victim", &plain).await;
        let stored = gw.stored(BUCKET, "victim").unwrap();
        let meta: HashMap<String, String> = gw
            .backend_head(BUCKET, "victim")
            .await
            .metadata()
            .cloned()
            .unwrap_or_default();
        assert!(meta.contains_key("twofold-layout"), "{shape}: {meta:?}");
        let (p, pad) = stored_parts(&stored, &sizes);
        // Every multipart object (its parts are salted) ends with marker padding.
        let padded = !pad.is_empty();
        assert!(padded, "{shape}");
        let mut unrecorded = meta.clone();
        unrecorded.remove("twofold-layout");
        let cases: Vec<(&str, Vec<u8>, &HashMap<String, String>)> = vec![
            ("cut after part 1", laid(&[&p[0]], padded), &meta),
            ("cut after part 2", laid(&[&p[0], &p[1]], padded), &meta),
            ("part 2 dropped", laid(&[&p[0], &p[2]], padded), &meta),
            (
                "part 2 twice",
                laid(&[&p[0], &p[1], &p[1], &p[2]], padded),
                &meta,
            ),
            (
                "parts 1 and 2 swapped",
                laid(&[&p[1], &p[0], &p[2]], padded),
                &meta,
            ),
            (
                "part 2's salt changed",
                laid(&[&p[0], &salt_flipped(&p[1]), &p[2]], padded),
                &meta,
            ),
            ("record removed", stored.clone(), &unrecorded),
            ("record removed, cut", laid(&[&p[0]], padded), &unrecorded),
        ];
        for (what, body, metadata) in cases {
            let what = format!("{shape}: {what}");
            let before = Scrape::take(gw.admin_addr()).sum(INTEGRITY_FAILURES, &[]);
            // HEAD reads no segment: a forgery of the recorded stored length (a swap, or
            // a part replaced by padding) passes it, and only reads see it.
            let same_len = body.len() == stored.len() && metadata.contains_key("twofold-layout");
            gw.replace_stored(BUCKET, "victim", &body, metadata).await;
            assert_get_refused(&s3, &what).await;
            let whole = plain.concat();
            let tail_from = sizes[0] + 7;
            for (read, want) in [
                ((Some("bytes=0-9".to_owned()), None), &whole[..10]),
                (
                    (Some(format!("bytes={tail_from}-")), None),
                    &whole[tail_from..],
                ),
                ((None, Some(2)), &plain[1][..]),
            ] {
                assert_never_wrong(&s3, &what, read, want).await;
            }
            assert_copy_refused(&s3, &what).await;
            if !same_len {
                let e = s3
                    .head_object()
                    .bucket(BUCKET)
                    .key("victim")
                    .send()
                    .await
                    .expect_err(&what);
                assert_eq!(status_code(&e).0, 500, "{what}: HEAD");
            }
            let after = Scrape::take(gw.admin_addr()).sum(INTEGRITY_FAILURES, &[]);
            assert!(after > before, "{what}: no integrity failure counted");
        }
        // Put back as it was, it reads again: the tampering above was the only fault.
        gw.replace_stored(BUCKET, "victim", &stored, &meta).await;
        assert!(
            get(&s3, BUCKET, "victim").await == plain.concat(),
            "{shape}"
        );
    }
}

/// A listing checks every multipart object against its record: a cut one is not listed
/// with the size of what is left of it, and the listing itself still answers.
#[tokio::test]
async fn listings_do_not_size_a_cut_multipart_object_by_what_is_left() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let sizes = [5 * MIB, 5 * MIB, 1000];
    let plain: Vec<Vec<u8>> = sizes.iter().map(|&n| random_bytes(n)).collect();
    multipart(&s3, "victim", &plain).await;
    let listed = |out: aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output| {
        out.contents()
            .iter()
            .find(|o| o.key() == Some("victim"))
            .and_then(|o| o.size())
            .unwrap()
    };
    let out = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    assert_eq!(listed(out), (10 * MIB + 1000) as i64);
    let stored = gw.stored(BUCKET, "victim").unwrap();
    let meta = gw
        .backend_head(BUCKET, "victim")
        .await
        .metadata()
        .cloned()
        .unwrap_or_default();
    let (p, _) = stored_parts(&stored, &sizes);
    gw.replace_stored(BUCKET, "victim", &laid(&[&p[0], &p[1]], false), &meta)
        .await;
    let out = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    assert_ne!(listed(out), (10 * MIB) as i64, "the cut object's remains");
}

/// Parts numbered with gaps, aligned and unaligned, read back by every access path as the
/// client completed them: whole, ranges across their boundaries, by the numbers they were
/// uploaded under (`partNumber`), HEAD and listing sizes, CopyObject and UploadPartCopy
/// from them.
#[tokio::test]
async fn parts_numbered_with_gaps_read_back_by_every_access_path() {
    let gw = TestGateway::start();
    if gw.skip_on(&[BackendKind::S3sFs], "s3s-fs 0.14.1 refuses part numbers with gaps (InvalidRequest: invalid part order), also when asked directly, without the gateway") {
        return;
    }
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    for (key, sizes, numbers) in [
        ("gaps-aligned", vec![5 * MIB, 5 * MIB, 1000], vec![2, 5, 6]),
        ("gaps-unaligned", vec![5 * MIB + 1, 300], vec![3, 9]),
    ] {
        let plain: Vec<Vec<u8>> = sizes.iter().map(|&n| random_bytes(n)).collect();
        let whole = plain.concat();
        multipart_numbered(&s3, key, &plain, &numbers).await;
        assert!(get(&s3, BUCKET, key).await == whole, "{key}: whole");
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(whole.len() as i64), "{key}");
        let (a, b) = (sizes[0] - 5, sizes[0] + 200);
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .range(format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap();
        let body = out.body.collect().await.unwrap().to_vec();
        assert!(body == whole[a..=b], "{key}: range across parts 1 and 2");
        // A part by the number it was uploaded under, as in S3; a number without a part
        // is InvalidPartNumber.
        let out = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .part_number(numbers[1])
            .send()
            .await
            .unwrap();
        assert_eq!(out.parts_count(), Some(sizes.len() as i32), "{key}");
        let body = out.body.collect().await.unwrap().to_vec();
        assert!(body == plain[1], "{key}: part {}", numbers[1]);
        let e = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .part_number(numbers[0] + 1)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_code(&e).0, 416, "{key}: {e:?}");
        let listed = s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            listed.contents()[0].size(),
            Some(whole.len() as i64),
            "{key}"
        );
        let copy = format!("{key}-copy");
        s3.copy_object()
            .bucket(BUCKET)
            .key(&copy)
            .copy_source(format!("{BUCKET}/{key}"))
            .send()
            .await
            .unwrap();
        assert!(get(&s3, BUCKET, &copy).await == whole, "{key}: copy");
        // The backend made the copy a single-part object; its length still marks it, so
        // the listing sizes it from its record.
        let listed = s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(&copy)
            .send()
            .await
            .unwrap();
        assert_eq!(
            listed.contents()[0].size(),
            Some(whole.len() as i64),
            "{key}: the copy's listed size"
        );
        let target = format!("{key}-part-copy");
        let id = create_upload(&s3, BUCKET, &target).await;
        let out = s3
            .upload_part_copy()
            .bucket(BUCKET)
            .key(&target)
            .upload_id(&id)
            .part_number(1)
            .copy_source(format!("{BUCKET}/{key}"))
            .copy_source_range(format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap();
        let etag = out.copy_part_result().unwrap().e_tag().unwrap().to_owned();
        s3.complete_multipart_upload()
            .bucket(BUCKET)
            .key(&target)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert!(
            get(&s3, BUCKET, &target).await == whole[a..=b],
            "{key}: part copy"
        );
    }
}

/// A Complete kept alive from the start (`limits.complete_keepalive_after_secs = 0`): the
/// answer is a chunked `200 OK` whose body is the XML declaration, then the result; the
/// object reads back, and an SDK completes the same way.
#[tokio::test]
async fn a_kept_alive_complete_answers_200_and_then_its_result() {
    let gw = TestGateway::start_with(Options {
        limits: twofold::limits::Limits {
            complete_keepalive_after: std::time::Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = vec![
        random_bytes(5 * MIB),
        random_bytes(5 * MIB + 3),
        random_bytes(10),
    ];
    let id = create_upload(&s3, BUCKET, "kept").await;
    let mut doc = String::from("<CompleteMultipartUpload>");
    for (i, p) in plain.iter().enumerate() {
        let out = upload_part(&s3, (BUCKET, "kept", &id), i as i32 + 1, p.clone())
            .await
            .unwrap();
        let etag = out.e_tag().unwrap().replace('"', "&quot;");
        doc += &format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            i + 1
        );
    }
    doc += "</CompleteMultipartUpload>";
    let query = format!("uploadId={}", urlencoding(&id));
    let resp = gw.send_signed(
        gw.admin(),
        &twofold_tests::gateway::RawRequest {
            method: "POST",
            path: &format!("/{BUCKET}/kept"),
            query: Some(&query),
            host: None,
            headers: &[("connection", "close")],
            body: doc.as_bytes(),
        },
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("transfer-encoding"), Some("chunked"));
    // The head that goes out before the result names the object's key.
    assert_eq!(
        resp.header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some(twofold::keys::named::DEFAULT_KEY_ID)
    );
    let body = String::from_utf8_lossy(&resp.body);
    let declaration = body
        .find("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .unwrap();
    let result = body.find("<CompleteMultipartUploadResult").unwrap();
    assert!(declaration < result, "{body}");
    assert!(body.contains("</CompleteMultipartUploadResult>"), "{body}");
    assert!(get(&s3, BUCKET, "kept").await == plain.concat());
    // The SDK reads such an answer as any other.
    multipart(&s3, "kept-sdk", &plain).await;
    assert!(get(&s3, BUCKET, "kept-sdk").await == plain.concat());
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn urlencoding(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
