//! Sealed metadata (format version 2): the client's user metadata and its Content-Type,
//! Content-Disposition, Content-Encoding, Content-Language and Cache-Control reach the
//! backend only inside the object's sealed metadata record, and come back exactly as
//! written through HEAD, GET (whole and ranged), CopyObject (COPY and REPLACE) and
//! multipart uploads. A record the backend removes or swaps for another object's is an
//! integrity failure, never a response with wrong or missing metadata.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, MetadataDirective};
use std::collections::HashMap;
use twofold_tests::gateway::{TestGateway, create_bucket, status_code};
use twofold_tests::random_bytes;

const BUCKET: &str = "sealed-meta";

/// What a client describes an object with; every value distinctive, so that a scan of the
/// backend finds it if it is anywhere in the clear.
#[derive(Debug, Clone, PartialEq)]
struct Described {
    content_type: String,
    cache_control: String,
    disposition: String,
    encoding: String,
    language: String,
    metadata: HashMap<String, String>,
}

impl Described {
    fn new(tag: &str) -> Self {
        Self {
            content_type: format!("application/x-{tag}-secret-type"),
            cache_control: format!("private, max-age=17, {tag}-secret-cache"),
            disposition: format!("attachment; filename=\"{tag}-payroll-2026.xlsx\""),
            encoding: format!("x-{tag}-secret-encoding"),
            language: format!("x-{tag}-secretlang"),
            metadata: HashMap::from([
                ("owner".to_owned(), format!("{tag}-alice-secret-owner")),
                ("mtime".to_owned(), format!("{tag}-1700000000.123456789")),
            ]),
        }
    }

    fn values(&self) -> Vec<Vec<u8>> {
        let mut v = vec![
            self.content_type.clone(),
            self.cache_control.clone(),
            self.disposition.clone(),
            self.encoding.clone(),
            self.language.clone(),
        ];
        v.extend(self.metadata.values().cloned());
        v.into_iter().map(String::into_bytes).collect()
    }
}

/// The describing fields of a HEAD or GET answer.
macro_rules! described_of {
    ($o:expr) => {
        Described {
            content_type: $o.content_type().unwrap_or_default().to_owned(),
            cache_control: $o.cache_control().unwrap_or_default().to_owned(),
            disposition: $o.content_disposition().unwrap_or_default().to_owned(),
            encoding: $o.content_encoding().unwrap_or_default().to_owned(),
            language: $o.content_language().unwrap_or_default().to_owned(),
            metadata: $o.metadata().cloned().unwrap_or_default(),
        }
    };
}

/// A request builder (PutObject, CopyObject, CreateMultipartUpload) that describes its
/// object as `d` says.
macro_rules! describing {
    ($builder:expr, $d:expr) => {
        $builder
            .content_type(&$d.content_type)
            .cache_control(&$d.cache_control)
            .content_disposition(&$d.disposition)
            .content_encoding(&$d.encoding)
            .content_language(&$d.language)
            .set_metadata(Some($d.metadata.clone()))
    };
}

async fn put_described(s3: &Client, key: &str, d: &Described, body: Vec<u8>) {
    let put = s3.put_object().bucket(BUCKET).key(key).body(body.into());
    describing!(put, d).send().await.unwrap();
}

/// HEAD, whole GET and a ranged GET (twice: the second is served from what the core
/// remembers of the object) all show `want`.
async fn assert_described(s3: &Client, key: &str, want: &Described) {
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(&described_of!(head), want, "HEAD {key}");
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(&described_of!(got), want, "GET {key}");
    for _ in 0..2 {
        let ranged = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .range("bytes=3-9")
            .send()
            .await
            .unwrap();
        assert_eq!(&described_of!(ranged), want, "ranged GET {key}");
    }
}

/// The backend's own view of `key`: none of the values appear in its describing headers
/// or its metadata, which holds only the gateway's entries.
async fn assert_backend_blind(gw: &TestGateway, key: &str, secrets: &[Vec<u8>]) {
    let raw = gw.backend_head(BUCKET, key).await;
    let mut seen = vec![
        raw.content_type().unwrap_or_default().to_owned(),
        raw.cache_control().unwrap_or_default().to_owned(),
        raw.content_disposition().unwrap_or_default().to_owned(),
        raw.content_encoding().unwrap_or_default().to_owned(),
        raw.content_language().unwrap_or_default().to_owned(),
    ];
    for (n, v) in raw.metadata().cloned().unwrap_or_default() {
        assert!(
            n.starts_with("twofold"),
            "{key}: the backend holds metadata {n:?}"
        );
        seen.push(n);
        seen.push(v);
    }
    let seen = seen.join("\n");
    for s in secrets {
        let s = String::from_utf8_lossy(s);
        assert!(!seen.contains(s.as_ref()), "{key}: the backend reads {s:?}");
    }
}

#[tokio::test]
async fn describing_metadata_is_sealed_and_round_trips_through_every_read_and_copy() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let a = Described::new("put");
    put_described(&s3, "doc", &a, random_bytes(100_000)).await;
    assert_described(&s3, "doc", &a).await;
    let mut secrets = a.values();

    // A response override the client asks for stands.
    let over = s3
        .get_object()
        .bucket(BUCKET)
        .key("doc")
        .response_content_type("text/override")
        .send()
        .await
        .unwrap();
    assert_eq!(over.content_type(), Some("text/override"));
    assert_eq!(over.content_disposition(), Some(a.disposition.as_str()));

    // COPY keeps the source's, sealed anew for the copy.
    s3.copy_object()
        .bucket(BUCKET)
        .key("copied")
        .copy_source(format!("{BUCKET}/doc"))
        .send()
        .await
        .unwrap();
    assert_described(&s3, "copied", &a).await;

    // REPLACE takes the request's.
    let b = Described::new("replace");
    let replace = s3
        .copy_object()
        .bucket(BUCKET)
        .key("replaced")
        .copy_source(format!("{BUCKET}/doc"))
        .metadata_directive(MetadataDirective::Replace);
    describing!(replace, b).send().await.unwrap();
    assert_described(&s3, "replaced", &b).await;
    secrets.extend(b.values());

    // A multipart upload seals what its Create described.
    let c = Described::new("multipart");
    let create = s3.create_multipart_upload().bucket(BUCKET).key("parts");
    let up = describing!(create, c).send().await.unwrap();
    let id = up.upload_id().unwrap();
    let part = s3
        .upload_part()
        .bucket(BUCKET)
        .key("parts")
        .upload_id(id)
        .part_number(1)
        .body(random_bytes(70_000).into())
        .send()
        .await
        .unwrap();
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("parts")
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert_described(&s3, "parts", &c).await;
    secrets.extend(c.values());

    for key in ["doc", "copied", "replaced", "parts"] {
        assert_backend_blind(&gw, key, &secrets).await;
    }
    let refs: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
    gw.assert_no_plaintext_in_backend(&refs);
}

/// Replaces the metadata of the backend's `key` by `meta` (what a tampering backend can
/// do), leaving the body as it is.
async fn set_backend_metadata(gw: &TestGateway, key: &str, meta: HashMap<String, String>) {
    gw.backend_client()
        .copy_object()
        .bucket(BUCKET)
        .key(key)
        .copy_source(format!("{BUCKET}/{key}"))
        .metadata_directive(MetadataDirective::Replace)
        .set_metadata(Some(meta))
        .send()
        .await
        .unwrap();
}

async fn backend_metadata(gw: &TestGateway, key: &str) -> HashMap<String, String> {
    let raw = gw.backend_head(BUCKET, key).await;
    raw.metadata().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_metadata_record_removed_swapped_or_added_to_in_the_clear_is_refused() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    put_described(&s3, "a", &Described::new("a"), random_bytes(5000)).await;
    put_described(&s3, "b", &Described::new("b"), random_bytes(5000)).await;
    let a = backend_metadata(&gw, "a").await;
    let b = backend_metadata(&gw, "b").await;
    assert!(a.contains_key("twofold-meta") && b.contains_key("twofold-meta"));

    let mut removed = a.clone();
    removed.remove("twofold-meta");
    let mut swapped = a.clone();
    swapped.insert("twofold-meta".into(), b["twofold-meta"].clone());
    for (case, meta) in [("removed", removed), ("swapped", swapped)] {
        set_backend_metadata(&gw, "a", meta).await;
        let head = s3.head_object().bucket(BUCKET).key("a").send().await;
        assert_eq!(
            status_code(&head.unwrap_err()).0,
            500,
            "HEAD, record {case}"
        );
        let get = s3.get_object().bucket(BUCKET).key("a").send().await;
        assert_eq!(status_code(&get.unwrap_err()).0, 500, "GET, record {case}");
        let copy = s3
            .copy_object()
            .bucket(BUCKET)
            .key("a-copy")
            .copy_source(format!("{BUCKET}/a"))
            .send()
            .await;
        assert!(copy.is_err(), "COPY, record {case}");
    }

    // Metadata the backend adds in the clear is not the client's: it is not shown.
    let mut added = a.clone();
    added.insert("injected".into(), "by-the-backend".into());
    set_backend_metadata(&gw, "a", added).await;
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("a")
        .send()
        .await
        .unwrap();
    assert_eq!(described_of!(head), Described::new("a"));
}
