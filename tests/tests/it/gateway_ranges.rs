//! Range reads through the gateway at the 64 KiB segment boundaries and one byte either side
//! of them: every answer is the plaintext slice, with the right Content-Length and
//! Content-Range (complaint 4: wrong Content-Length on open-ended ranges, 501 for ranges);
//! an unsatisfiable range is 416 with `Content-Range: bytes */SIZE`.

// Test code throughout: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold_tests::gateway::{TestGateway, create_bucket, put, status_code};
use twofold_tests::random_bytes;
use twofold_tests::rawhttp;

const BUCKET: &str = "ranges";
/// Three full segments and five bytes: four segments, the last nearly empty.
const SIZE: usize = 3 * 65_536 + 5;

/// The plaintext bytes a `Range` value selects, or `None` when unsatisfiable.
fn expected(range: &str, size: usize) -> Option<(usize, usize)> {
    let spec = range.strip_prefix("bytes=").unwrap();
    let (a, b) = spec.split_once('-').unwrap();
    if a.is_empty() {
        let n: usize = b.parse().unwrap();
        if n == 0 || size == 0 {
            return None;
        }
        return Some((size.saturating_sub(n), size - 1));
    }
    let first: usize = a.parse().unwrap();
    if first >= size {
        return None;
    }
    let last = if b.is_empty() {
        size - 1
    } else {
        b.parse::<usize>().unwrap().min(size - 1)
    };
    Some((first, last))
}

/// Checks one range through the SDK: status, body, Content-Length and Content-Range.
/// Returns what was wrong, so that a test can report every failing range at once.
async fn try_range(
    s3: &aws_sdk_s3::Client,
    key: &str,
    plain: &[u8],
    range: &str,
) -> Result<(), String> {
    let (first, last) = expected(range, plain.len()).unwrap();
    let out = match s3
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .range(range)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            let (status, code) = status_code(&e);
            return Err(format!("{range}: {status} {code}"));
        }
    };
    let mut wrong = Vec::new();
    if out.content_length() != Some((last - first + 1) as i64) {
        wrong.push(format!("Content-Length {:?}", out.content_length()));
    }
    let want_cr = format!("bytes {first}-{last}/{}", plain.len());
    if out.content_range() != Some(want_cr.as_str()) {
        wrong.push(format!(
            "Content-Range {:?}, expected {want_cr:?}",
            out.content_range()
        ));
    }
    match out.body.collect().await.map(|b| b.to_vec()) {
        Ok(b) if b == plain[first..=last] => {}
        Ok(b) => wrong.push(format!(
            "body of {} bytes differs from the plaintext slice {first}..={last}",
            b.len()
        )),
        Err(e) => wrong.push(format!("body cut: {e}")),
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{range}: {}", wrong.join(", ")))
    }
}

/// Checks every range and fails listing all that went wrong.
async fn check_all(
    s3: &aws_sdk_s3::Client,
    key: &str,
    plain: &[u8],
    ranges: impl IntoIterator<Item = String>,
) {
    let mut failed = Vec::new();
    let mut n = 0;
    for range in ranges {
        n += 1;
        if let Err(e) = try_range(s3, key, plain, &range).await {
            failed.push(e);
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {n} ranges of {key} ({} bytes) failed:\n{}",
        failed.len(),
        plain.len(),
        failed.join("\n")
    );
}

#[tokio::test]
async fn ranges_at_segment_boundaries() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(SIZE);
    put(&s3, BUCKET, "obj", plain.clone()).await;
    let ranges = [
        "bytes=65535-65536",
        "bytes=0-0",
        "bytes=65536-",
        "bytes=-1",
        "bytes=-70000",
        "bytes=65535-65535",
        "bytes=65536-65536",
        "bytes=65537-65537",
        "bytes=65534-65537",
        "bytes=0-65535",
        "bytes=0-65536",
        "bytes=131071-131072",
        "bytes=196607-196612",
        "bytes=196608-",
        "bytes=196612-196612",
        "bytes=-5",
        "bytes=-6",
        "bytes=0-",
        "bytes=1-",
        "bytes=100-1000000000",
        "bytes=-1000000",
    ];
    check_all(&s3, "obj", &plain, ranges.map(str::to_owned)).await;
}

#[tokio::test]
async fn many_ranges_over_a_multi_segment_object_match_the_plaintext() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let size = 5 * 65_536 + 12_345;
    let plain = random_bytes(size);
    put(&s3, BUCKET, "big", plain.clone()).await;
    // A fixed spread of starts and lengths, crossing every boundary.
    let mut ranges = Vec::new();
    for first in (0..size).step_by(23_456) {
        for len in [1usize, 17, 65_535, 65_536, 65_537, 140_000] {
            let last = (first + len - 1).min(size - 1);
            ranges.push(format!("bytes={first}-{last}"));
        }
    }
    assert!(ranges.len() > 50);
    check_all(&s3, "big", &plain, ranges).await;
}

#[tokio::test]
async fn ranges_on_tiny_objects() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let one = random_bytes(1);
    put(&s3, BUCKET, "one", one.clone()).await;
    let ranges = [
        "bytes=0-0",
        "bytes=0-",
        "bytes=-1",
        "bytes=-100",
        "bytes=0-100",
    ];
    check_all(&s3, "one", &one, ranges.map(str::to_owned)).await;
    let seg = random_bytes(65_536);
    put(&s3, BUCKET, "seg", seg.clone()).await;
    let ranges = [
        "bytes=65535-",
        "bytes=-65536",
        "bytes=-65537",
        "bytes=65535-65535",
    ];
    check_all(&s3, "seg", &seg, ranges.map(str::to_owned)).await;
}

#[tokio::test]
async fn unsatisfiable_ranges_are_416_with_the_size() {
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(SIZE);
    put(&s3, BUCKET, "obj", plain.clone()).await;
    put(&s3, BUCKET, "empty", Vec::new()).await;
    for (key, size, range) in [
        ("obj", SIZE, format!("bytes={SIZE}-")),
        ("obj", SIZE, format!("bytes={}-{}", SIZE + 10, SIZE + 20)),
        ("empty", 0, "bytes=0-0".to_owned()),
    ] {
        let e = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .range(&range)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_code(&e),
            (416, "InvalidRange".to_owned()),
            "{key} {range}"
        );
        let raw = e.raw_response().unwrap();
        assert_eq!(
            raw.headers().get("content-range"),
            Some(format!("bytes */{size}").as_str()),
            "{key} {range}: Content-Range of the 416"
        );
    }
}

#[tokio::test]
async fn raw_ranged_get_has_exact_framing_and_keeps_the_connection() {
    // Over one raw connection: a ranged GET, then another request on the same connection,
    // which only works if the first response's Content-Length was exact.
    use std::io::Write;
    let gw = TestGateway::start();
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let plain = random_bytes(SIZE);
    put(&s3, BUCKET, "obj", plain.clone()).await;
    let mut conn = rawhttp::connect(gw.addr());
    for range in ["bytes=65536-", "bytes=-70000", "bytes=10-20"] {
        let path = format!("/{BUCKET}/obj");
        let (headers, _) = gw.sign(
            gw.admin(),
            "GET",
            &path,
            None,
            &[("range", range)],
            twofold::sigv4::PayloadMode::Sha256(sha256_empty()),
        );
        conn.write_all(&rawhttp::head("GET", &path, &headers))
            .unwrap();
        let resp = rawhttp::read_response(&mut conn, false).unwrap();
        let (first, last) = expected(range, SIZE).unwrap();
        assert_eq!(resp.status, 206, "{range}: {}", resp.text());
        assert_eq!(
            resp.header("content-length"),
            Some((last - first + 1).to_string().as_str())
        );
        assert!(!resp.truncated, "{range}: body cut short");
        assert!(resp.body == plain[first..=last], "{range}: body");
        assert_eq!(resp.header("accept-ranges"), Some("bytes"));
        assert_eq!(
            resp.header("x-amz-server-side-encryption"),
            Some("aws:kms:dsse")
        );
    }
}

fn sha256_empty() -> [u8; 32] {
    hex::decode("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        .unwrap()
        .try_into()
        .unwrap()
}

/// A core remembers the size and header of an object it served a range of, and the next
/// range needs no HEAD; whatever happens to the object in between, the next range is of
/// the object as it is now.
#[tokio::test]
async fn a_range_after_the_object_changed_is_of_the_new_object() {
    let gw = TestGateway::start_with(twofold_tests::gateway::Options {
        cores: 1,
        ..Default::default()
    });
    let s3 = gw.client();
    create_bucket(&s3, BUCKET).await;
    let a = random_bytes(SIZE);
    put(&s3, BUCKET, "obj", a.clone()).await;
    let ranges = || ["bytes=65530-65545", "bytes=-10", "bytes=0-0"].map(str::to_owned);
    check_all(&s3, "obj", &a, ranges()).await;
    check_all(&s3, "obj", &a, ranges()).await;
    // Replaced with an object of the same size, then of another size.
    let b = random_bytes(SIZE);
    put(&s3, BUCKET, "obj", b.clone()).await;
    check_all(&s3, "obj", &b, ranges()).await;
    let c = random_bytes(SIZE + 70_000);
    put(&s3, BUCKET, "obj", c.clone()).await;
    check_all(&s3, "obj", &c, ranges()).await;
    // Shrunk below a range that was satisfiable: 416 with the new size.
    put(&s3, BUCKET, "obj", random_bytes(10)).await;
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("obj")
        .range("bytes=65530-65545")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e).0, 416);
    // New metadata on the same bytes: the range answer carries it.
    put(&s3, BUCKET, "obj", c.clone()).await;
    check_all(&s3, "obj", &c, ranges()).await;
    s3.copy_object()
        .bucket(BUCKET)
        .key("obj")
        .copy_source(format!("{BUCKET}/obj"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .content_type("text/x-changed")
        .send()
        .await
        .unwrap();
    let out = s3
        .get_object()
        .bucket(BUCKET)
        .key("obj")
        .range("bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(out.content_type(), Some("text/x-changed"));
    assert_eq!(
        out.body.collect().await.unwrap().to_vec(),
        c[c.len() - 10..]
    );
    // Deleted: the backend's 404.
    s3.delete_object()
        .bucket(BUCKET)
        .key("obj")
        .send()
        .await
        .unwrap();
    let e = s3
        .get_object()
        .bucket(BUCKET)
        .key("obj")
        .range("bytes=-10")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_code(&e), (404, "NoSuchKey".to_owned()));
}
