//! The five S3 checksums: known answers (`tests/vectors/sigv4/checksums.json`), incremental
//! hashing equal to one-shot hashing, name parsing and base64 verification.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use base64::Engine;
use proptest::prelude::*;
use serde_json::Value;
use twofold::s3::checksum::{ChecksumAlgorithm, Hasher, checksum};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/vectors/sigv4/checksums.json"
);

fn input(case: &Value) -> Vec<u8> {
    if let Some(s) = case["input"].as_str() {
        return s.as_bytes().to_vec();
    }
    let rep = &case["input_repeat"];
    let byte = rep["byte"].as_str().unwrap().as_bytes()[0];
    vec![byte; usize::try_from(rep["count"].as_u64().unwrap()).unwrap()]
}

#[test]
fn known_answers() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 21);
    for case in cases {
        let alg =
            ChecksumAlgorithm::from_name(case["algorithm"].as_str().unwrap().as_bytes()).unwrap();
        let data = input(case);
        let sum = checksum(alg, &data);
        assert_eq!(sum.as_bytes().len(), alg.digest_len_bytes());
        if let Some(b64) = case["base64"].as_str() {
            assert_eq!(sum.to_base64(), b64, "{alg} {case}");
            let mut h = Hasher::new(alg);
            h.update(&data);
            assert!(h.verify(b64), "{alg} {case}");
        }
        if let Some(hex) = case["hex"].as_str() {
            assert_eq!(hex::encode(sum.as_bytes()), hex, "{alg} {case}");
        }
    }
}

#[test]
fn names() {
    for alg in ChecksumAlgorithm::ALL {
        assert_eq!(
            ChecksumAlgorithm::from_header_name(alg.header_name()),
            Some(alg)
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name(&alg.header_name().to_uppercase()),
            Some(alg)
        );
        assert_eq!(
            ChecksumAlgorithm::from_name(alg.name().as_bytes()),
            Some(alg)
        );
        assert_eq!(
            ChecksumAlgorithm::from_name(alg.name().to_lowercase().as_bytes()),
            Some(alg)
        );
    }
    assert_eq!(
        ChecksumAlgorithm::from_header_name("x-amz-checksum-crc64nvme"),
        Some(ChecksumAlgorithm::Crc64Nvme)
    );
    assert_eq!(
        ChecksumAlgorithm::from_name(b" CRC32C "),
        Some(ChecksumAlgorithm::Crc32c)
    );
    assert_eq!(ChecksumAlgorithm::from_name(b"MD5"), None);
    assert_eq!(ChecksumAlgorithm::from_name(b"CRC64"), None);
    assert_eq!(
        ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"),
        None
    );
    assert_eq!(
        ChecksumAlgorithm::from_header_name("x-amz-checksum-type"),
        None
    );
}

#[test]
fn verify_rejects_near_misses() {
    let data = b"Hello world";
    for alg in ChecksumAlgorithm::ALL {
        let sum = checksum(alg, data);
        let good = sum.to_base64();
        assert!(sum.matches_base64(&good));
        // Another digest of the same length.
        let other = checksum(alg, b"Hello World").to_base64();
        assert!(!sum.matches_base64(&other), "{alg}");
        // Truncated, extended, unpadded, not base64, empty, the hex form.
        let bytes = sum.as_bytes();
        let b64 = base64::engine::general_purpose::STANDARD;
        assert!(!sum.matches_base64(&b64.encode(&bytes[..bytes.len() - 1])));
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(!sum.matches_base64(&b64.encode(&longer)));
        assert!(!sum.matches_base64(good.trim_end_matches('=')) || !good.ends_with('='));
        assert!(!sum.matches_base64("!!!!"));
        assert!(!sum.matches_base64(""));
        assert!(!sum.matches_base64(&hex::encode(bytes)));
    }
}

proptest! {
    #[test]
    fn incremental_equals_one_shot(
        data in proptest::collection::vec(any::<u8>(), 0..5000),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        points.sort_unstable();
        for alg in ChecksumAlgorithm::ALL {
            let mut h = Hasher::new(alg);
            let mut prev = 0;
            for &p in &points {
                h.update(&data[prev..p]);
                prev = p;
            }
            h.update(&data[prev..]);
            let whole = checksum(alg, &data);
            prop_assert_eq!(h.clone().finish_raw(), whole);
            prop_assert_eq!(h.finish(), whole.to_base64());
        }
    }

    #[test]
    fn matches_base64_never_panics(s in ".{0,80}") {
        for alg in ChecksumAlgorithm::ALL {
            let _ = checksum(alg, b"x").matches_base64(&s);
        }
    }
}
