//! Checksums of multipart uploads through the gateway, with the AWS SDK for Rust computing
//! the parts' checksums (an implementation independent of the gateway's):
//!
//! - an upload that declares an algorithm and a type (COMPOSITE or FULL_OBJECT) at
//!   CreateMultipartUpload gets each part's checksum from UploadPart and UploadPartCopy,
//!   and the object's from CompleteMultipartUpload; GET and HEAD with checksum mode and
//!   GetObjectAttributes return it, and the SDK validates a FULL_OBJECT one against the
//!   body; aligned objects keep their part count, unaligned ones too;
//! - the backend never holds a checksum in the clear (its metadata entry is sealed);
//! - a claimed part checksum the part's ETag does not vouch for, a missing one, an ETag
//!   without its tag, a wrong object checksum and a part without the declared checksum are
//!   refused, and the upload stays open.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart, ObjectAttributes,
};
use twofold::s3::checksum::{Checksum, ChecksumAlgorithm, checksum, combine, composite};
use twofold_tests::checksum_of;
use twofold_tests::checksums::sdk_alg;
use twofold_tests::gateway::{TestGateway, create_bucket, put, status_code};
use twofold_tests::random_bytes;

const BUCKET: &str = "mpu-checksums";
const MIB: usize = 1024 * 1024;

fn completed(number: i32, etag: &str, a: ChecksumAlgorithm, value: Option<&str>) -> CompletedPart {
    let b = CompletedPart::builder().part_number(number).e_tag(etag);
    let b = match (a, value) {
        (_, None) => b,
        (ChecksumAlgorithm::Crc32, Some(v)) => b.checksum_crc32(v),
        (ChecksumAlgorithm::Crc32c, Some(v)) => b.checksum_crc32_c(v),
        (ChecksumAlgorithm::Crc64Nvme, Some(v)) => b.checksum_crc64_nvme(v),
        (ChecksumAlgorithm::Sha1, Some(v)) => b.checksum_sha1(v),
        (ChecksumAlgorithm::Sha256, Some(v)) => b.checksum_sha256(v),
    };
    b.build()
}

fn digest(a: ChecksumAlgorithm, b64: &str) -> Checksum {
    Checksum::from_base64(a, b64).unwrap_or_else(|| panic!("{a}: not a digest: {b64}"))
}

/// An upload of `sizes` (the second part copied from `source` when `copy_second`),
/// declared as `a` / `kind`. Returns the upload id, the parts (number, ETag, checksum)
/// and the plaintext.
async fn upload(
    s3: &Client,
    key: &str,
    a: ChecksumAlgorithm,
    kind: ChecksumType,
    sizes: &[usize],
    copy_second: Option<&[u8]>,
) -> (String, Vec<(i32, String, String)>, Vec<u8>) {
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .checksum_algorithm(sdk_alg(a))
        .checksum_type(kind.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: Create: {e:?}"));
    assert_eq!(up.checksum_type(), Some(&kind), "{key}: Create");
    let id = up.upload_id().unwrap().to_owned();
    let mut parts = Vec::new();
    let mut plain = Vec::new();
    for (i, &len) in sizes.iter().enumerate() {
        let number = i as i32 + 1;
        if let (1, Some(source)) = (i, copy_second) {
            let out = s3
                .upload_part_copy()
                .bucket(BUCKET)
                .key(key)
                .upload_id(&id)
                .part_number(number)
                .copy_source(format!("{BUCKET}/source"))
                .copy_source_range(format!("bytes=0-{}", len - 1))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{key}: UploadPartCopy: {e:?}"));
            let r = out.copy_part_result().unwrap();
            let sum = checksum_of!(r, a).expect("UploadPartCopy gives the part's checksum");
            assert_eq!(sum, checksum(a, &source[..len]).to_base64(), "{key}: copy");
            parts.push((number, r.e_tag().unwrap().to_owned(), sum));
            plain.extend_from_slice(&source[..len]);
            continue;
        }
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
        assert_eq!(sum, checksum(a, &body).to_base64(), "{key}: part {number}");
        parts.push((number, out.e_tag().unwrap().to_owned(), sum));
        plain.extend_from_slice(&body);
    }
    (id, parts, plain)
}

fn document(a: ChecksumAlgorithm, parts: &[(i32, String, String)]) -> CompletedMultipartUpload {
    let mut b = CompletedMultipartUpload::builder();
    for (n, etag, sum) in parts {
        b = b.parts(completed(*n, etag, a, Some(sum)));
    }
    b.build()
}

/// The object's checksum as S3 prints it, computed here from the plaintext.
fn expected(
    a: ChecksumAlgorithm,
    full_object: bool,
    parts: &[(i32, String, String)],
    plain: &[u8],
    sizes: &[usize],
) -> String {
    if full_object {
        let whole = checksum(a, plain);
        // The gateway makes it from the parts' CRCs: the same value.
        let mut acc = digest(a, &parts[0].2);
        for ((_, _, sum), len) in parts.iter().zip(sizes).skip(1) {
            acc = combine(a, &acc, &digest(a, sum), *len as u64).unwrap();
        }
        assert_eq!(acc, whole);
        whole.to_base64()
    } else {
        let digests: Vec<Checksum> = parts.iter().map(|(_, _, s)| digest(a, s)).collect();
        format!("{}-{}", composite(a, &digests).to_base64(), parts.len())
    }
}

#[tokio::test]
async fn multipart_checksums_are_recorded_and_returned() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let source = random_bytes(6 * MIB);
    put(&s3, BUCKET, "source", source.clone()).await;
    let aligned = [5 * MIB, 5 * MIB, 1000];
    let unaligned = [5 * MIB + 1, 5 * MIB + 7, 1000];
    let cases: [(ChecksumAlgorithm, bool, &[usize], bool); 6] = [
        (ChecksumAlgorithm::Crc32, false, &aligned, false),
        (ChecksumAlgorithm::Crc32, true, &aligned, true),
        (ChecksumAlgorithm::Crc64Nvme, true, &unaligned, false),
        (ChecksumAlgorithm::Sha256, false, &unaligned, true),
        (ChecksumAlgorithm::Crc32c, true, &aligned, false),
        (ChecksumAlgorithm::Sha1, false, &aligned, false),
    ];
    for (a, full_object, sizes, copy_second) in cases {
        let kind = if full_object {
            ChecksumType::FullObject
        } else {
            ChecksumType::Composite
        };
        let key = format!("{a}-{kind}-{}-{copy_second}", sizes[0]);
        let (id, parts, plain) = upload(
            &s3,
            &key,
            a,
            kind.clone(),
            sizes,
            copy_second.then_some(source.as_slice()),
        )
        .await;
        let want = expected(a, full_object, &parts, &plain, sizes);
        let done = s3
            .complete_multipart_upload()
            .bucket(BUCKET)
            .key(&key)
            .upload_id(&id)
            .multipart_upload(document(a, &parts))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: Complete: {e:?}"));
        assert_eq!(checksum_of!(done, a), Some(want.clone()), "{key}: Complete");
        assert_eq!(done.checksum_type(), Some(&kind), "{key}: Complete type");
        let etag = done.e_tag().unwrap().to_owned();
        // The client's part count is in the layout record; the ETag is the rewrite's.
        assert!(etag.contains('-'), "{key}: a multipart ETag: {etag}");

        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(checksum_of!(head, a), Some(want.clone()), "{key}: HEAD");
        assert_eq!(head.checksum_type(), Some(&kind), "{key}: HEAD type");
        assert_eq!(head.content_length(), Some(plain.len() as i64), "{key}");
        assert_eq!(head.e_tag(), Some(etag.as_str()), "{key}: HEAD ETag");
        let got = s3
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(checksum_of!(got, a), Some(want.clone()), "{key}: GET");
        // Collecting the body makes the SDK check a FULL_OBJECT checksum against it.
        assert!(got.body.collect().await.unwrap().to_vec() == plain, "{key}");
        // By part: the part count, and no whole-object checksum.
        let part = s3
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .part_number(2)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(part.parts_count(), Some(3), "{key}: parts");
        assert_eq!(
            part.content_length(),
            Some(sizes[1] as i64),
            "{key}: part 2"
        );
        assert_eq!(checksum_of!(part, a), None, "{key}: part 2");
        let attrs = s3
            .get_object_attributes()
            .bucket(BUCKET)
            .key(&key)
            .object_attributes(ObjectAttributes::Checksum)
            .send()
            .await
            .unwrap();
        let c = attrs.checksum().expect("attributes carry the checksum");
        assert_eq!(checksum_of!(c, a), Some(want.clone()), "{key}: attributes");
        assert_eq!(c.checksum_type(), Some(&kind), "{key}: attributes type");

        // The backend's copy of the checksum is sealed.
        let raw = gw
            .backend_client()
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
        let entry = raw.metadata().unwrap().get("twofold-checksum").unwrap();
        let bare = want.split('-').next().unwrap();
        assert!(
            !entry.contains(bare) && !entry.contains(a.name()),
            "{key}: {entry}"
        );
    }
    // The bodies of these objects are stored as any multipart object's, which
    // gateway_copy_multipart and gateway_unaligned scan for plaintext (a scan of the 70 MiB
    // written here takes minutes in a debug build).
}

#[tokio::test]
async fn part_checksums_are_held_to_what_the_parts_etags_vouch_for() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let a = ChecksumAlgorithm::Crc32c;
    let key = "vouched";
    let sizes = [5 * MIB, 2000];
    let (id, parts, plain) = upload(&s3, key, a, ChecksumType::Composite, &sizes, None).await;
    let complete = |doc: CompletedMultipartUpload| {
        s3.complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .multipart_upload(doc)
            .send()
    };
    let other = checksum(a, b"something else").to_base64();
    let untagged = format!(
        "\"{}\"",
        parts[0].1.trim_matches('"').split('~').next().unwrap()
    );
    let refusals = [
        // A claim the ETag does not vouch for.
        (
            CompletedMultipartUpload::builder()
                .parts(completed(1, &parts[0].1, a, Some(&other)))
                .parts(completed(2, &parts[1].1, a, Some(&parts[1].2)))
                .build(),
            "InvalidPart",
        ),
        // An ETag without its tag (as ListParts gives it).
        (
            CompletedMultipartUpload::builder()
                .parts(completed(1, &untagged, a, Some(&parts[0].2)))
                .parts(completed(2, &parts[1].1, a, Some(&parts[1].2)))
                .build(),
            "InvalidPart",
        ),
        // Parts swapped: each claim is vouched for, but under another part number.
        (
            CompletedMultipartUpload::builder()
                .parts(completed(1, &parts[1].1, a, Some(&parts[1].2)))
                .parts(completed(2, &parts[0].1, a, Some(&parts[0].2)))
                .build(),
            "InvalidPart",
        ),
        // No claim.
        (
            CompletedMultipartUpload::builder()
                .parts(completed(1, &parts[0].1, a, None))
                .parts(completed(2, &parts[1].1, a, Some(&parts[1].2)))
                .build(),
            "InvalidRequest",
        ),
    ];
    for (doc, code) in refusals {
        let e = complete(doc).await.unwrap_err();
        assert_eq!(status_code(&e), (400, code.to_owned()), "{e:?}");
    }
    // A wrong checksum for the whole object.
    let e = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .checksum_crc32_c(format!("{other}-2"))
        .multipart_upload(document(a, &parts))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (400, "BadDigest".to_owned()), "{e:?}");
    // A part without the declared checksum (the SDK's default CRC32 instead).
    let e = s3
        .upload_part()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .part_number(3)
        .body(random_bytes(100).into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (400, "InvalidRequest".to_owned()), "{e:?}");
    // Nothing was completed; the upload is still open and completes as it should.
    let e = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 404);
    let done = complete(document(a, &parts)).await.unwrap();
    let want = expected(a, false, &parts, &plain, &sizes);
    assert_eq!(done.checksum_crc32_c(), Some(want.as_str()));
}
