//! Versioned buckets through Twofold: PutBucketVersioning passes through; GET and HEAD with
//! `versionId` open old versions (whole and ranged); ListObjectVersions shows plaintext
//! sizes and the ETags clients see; delete markers and DeleteObject with `versionId` behave
//! as S3; CopyObject and UploadPartCopy copy from a `versionId`; and the gateway's own
//! rewrites (the layout record of an unaligned multipart object, a multipart checksum)
//! leave one version per client write. Backends without versioning (s3s-fs) skip, saying
//! so.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    VersioningConfiguration,
};
use twofold_tests::gateway::{TestGateway, create_bucket};
use twofold_tests::random_bytes;

const BUCKET: &str = "versions";

/// Turns versioning on, or `false` when the backend cannot (the test then skips).
async fn versioning_on(s3: &Client) -> bool {
    create_bucket(s3, BUCKET).await;
    let r = s3
        .put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await;
    match r {
        Ok(_) => true,
        Err(e) => {
            use aws_sdk_s3::error::ProvideErrorMetadata;
            eprintln!(
                "skipped: the backend has no versioning (PutBucketVersioning: {})",
                e.code().unwrap_or("no answer")
            );
            false
        }
    }
}

async fn read(s3: &Client, key: &str, version: Option<&str>, range: Option<&str>) -> Vec<u8> {
    s3.get_object()
        .bucket(BUCKET)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .set_range(range.map(str::to_owned))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes()
        .to_vec()
}

async fn versions_of(s3: &Client, key: &str) -> Vec<(String, i64, String, bool)> {
    let out = s3
        .list_object_versions()
        .bucket(BUCKET)
        .prefix(key)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .map(|v| {
            (
                v.version_id().unwrap().to_owned(),
                v.size().unwrap(),
                v.e_tag().unwrap().to_owned(),
                v.is_latest().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn old_versions_open_list_with_plaintext_sizes_copy_and_delete() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    if !versioning_on(&s3).await {
        return;
    }
    let one = random_bytes(70_000);
    let two = random_bytes(1_000);
    let v1 = s3
        .put_object()
        .bucket(BUCKET)
        .key("k")
        .body(one.clone().into())
        .send()
        .await
        .unwrap();
    let v2 = s3
        .put_object()
        .bucket(BUCKET)
        .key("k")
        .body(two.clone().into())
        .send()
        .await
        .unwrap();
    let (id1, id2) = (v1.version_id().unwrap(), v2.version_id().unwrap());
    assert_ne!(id1, id2);
    assert_eq!(read(&s3, "k", Some(id1), None).await, one);
    assert_eq!(read(&s3, "k", None, None).await, two);
    assert_eq!(
        read(&s3, "k", Some(id1), Some("bytes=65530-65545")).await,
        &one[65530..=65545]
    );
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("k")
        .version_id(id1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(one.len() as i64));
    assert_eq!(head.e_tag(), v1.e_tag());
    // The listing: plaintext sizes, the ETags PUT returned, the latest marked.
    let mut listed = versions_of(&s3, "k").await;
    listed.sort_by_key(|v| v.1);
    assert_eq!(
        listed,
        vec![
            (id2.to_owned(), 1_000, v2.e_tag().unwrap().to_owned(), true),
            (
                id1.to_owned(),
                70_000,
                v1.e_tag().unwrap().to_owned(),
                false
            ),
        ]
    );
    // Copies from an old version.
    s3.copy_object()
        .bucket(BUCKET)
        .key("copy")
        .copy_source(format!("{BUCKET}/k?versionId={id1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read(&s3, "copy", None, None).await, one);
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("part-copy")
        .send()
        .await
        .unwrap();
    let uid = up.upload_id().unwrap();
    let part = s3
        .upload_part_copy()
        .bucket(BUCKET)
        .key("part-copy")
        .upload_id(uid)
        .part_number(1)
        .copy_source(format!("{BUCKET}/k?versionId={id1}"))
        .send()
        .await
        .unwrap();
    let etag = part.copy_part_result().unwrap().e_tag().unwrap();
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("part-copy")
        .upload_id(uid)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read(&s3, "part-copy", None, None).await, one);
    // A delete marker hides the object; the versions stay readable.
    let marker = s3
        .delete_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(marker.delete_marker(), Some(true));
    assert!(
        s3.get_object()
            .bucket(BUCKET)
            .key("k")
            .send()
            .await
            .is_err()
    );
    assert_eq!(read(&s3, "k", Some(id2), None).await, two);
    // Deleting a version removes that one only.
    s3.delete_object()
        .bucket(BUCKET)
        .key("k")
        .version_id(id2)
        .send()
        .await
        .unwrap();
    let left: Vec<_> = versions_of(&s3, "k")
        .await
        .into_iter()
        .map(|v| v.0)
        .collect();
    assert_eq!(left, vec![id1.to_owned()]);
    // Removing the marker makes the old version current again.
    s3.delete_object()
        .bucket(BUCKET)
        .key("k")
        .version_id(marker.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(read(&s3, "k", None, None).await, one);
}

#[tokio::test]
async fn the_gateways_rewrites_leave_one_version_per_write() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    if !versioning_on(&s3).await {
        return;
    }
    // Unaligned parts (a layout record is written by a rewrite at Complete), and aligned
    // parts with a declared checksum (recorded by a rewrite too).
    for (key, first) in [
        ("unaligned", 5 * 1024 * 1024 + 7),
        ("aligned", 5 * 1024 * 1024),
    ] {
        let up = s3
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .unwrap();
        let uid = up.upload_id().unwrap();
        let data = [random_bytes(first), random_bytes(10)];
        let mut parts = Vec::new();
        for (i, d) in data.iter().enumerate() {
            let n = i as i32 + 1;
            let r = s3
                .upload_part()
                .bucket(BUCKET)
                .key(key)
                .upload_id(uid)
                .part_number(n)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(d.clone()))
                .send()
                .await
                .unwrap();
            parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(r.e_tag().unwrap())
                    .checksum_crc32(r.checksum_crc32().unwrap())
                    .build(),
            );
        }
        s3.complete_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .upload_id(uid)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .unwrap();
        let versions = versions_of(&s3, key).await;
        assert_eq!(versions.len(), 1, "{key}: {versions:?}");
        assert_eq!(versions[0].1, (first + 10) as i64, "{key}: plaintext size");
        assert_eq!(
            read(&s3, key, None, None).await,
            [data[0].as_slice(), data[1].as_slice()].concat()
        );
    }
}
