//! Format v1 test vectors: fixed keys, nonces, names and plaintexts → fixed header and
//! stored bytes, in `tests/vectors/format-v1.json`, for other implementations to check
//! themselves against. This test rebuilds every vector and compares byte for byte, then
//! opens each stored body through the streaming reader. Run with `TWOFOLD_BLESS=1` to
//! rewrite the file after a deliberate format change (and bump the version).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use serde_json::{Value, json};
use std::io::Read;
use twofold::envelope::aead::Layer;
use twofold::envelope::header::Header;
use twofold::envelope::layout::{SegmentSize, stored_len};
use twofold::envelope::stream::{DecryptReader, EncryptWriter};
use twofold::envelope::{
    BucketKey, DataKeys, ObjectName, SealParams, SegmentCipher, open_header,
    seal_header_with_nonces,
};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/vectors/format-v1.json"
);

struct Case {
    description: &'static str,
    segment_size_log2: u8,
    upload_id: Option<[u8; 16]>,
    part_number: u32,
    bucket: &'static str,
    key: &'static str,
    plaintext_len: usize,
}

/// Plaintext of a vector: byte i is (i mod 251), so that it is easy to regenerate.
fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn fill(byte: u8) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = byte.wrapping_add(i as u8);
    }
    k
}

fn cases() -> Vec<Case> {
    let single = |description, log2, len| Case {
        description,
        segment_size_log2: log2,
        upload_id: None,
        part_number: 0,
        bucket: "vectors",
        key: "dir/object.bin",
        plaintext_len: len,
    };
    vec![
        single("empty object: one empty final segment", 12, 0),
        single("one byte", 12, 1),
        single("one full 4 KiB segment, final", 12, 4096),
        single("one segment and one byte", 12, 4097),
        single("three full segments", 12, 3 * 4096),
        single("default 64 KiB segments, 1.5 segments", 16, 98_304),
        Case {
            description: "multipart part 3 of an upload",
            segment_size_log2: 12,
            upload_id: Some([0xA5; 16]),
            part_number: 3,
            bucket: "vectors",
            key: "multi/part.bin",
            plaintext_len: 5000,
        },
        Case {
            description: "non-ASCII object key",
            segment_size_log2: 12,
            upload_id: None,
            part_number: 0,
            bucket: "vectors",
            key: "répertoire/Ωmega ✓.txt",
            plaintext_len: 10,
        },
    ]
}

fn bucket_key(layer: Layer, seed: u8) -> BucketKey {
    BucketKey {
        layer,
        kek_id: format!("vector-{layer}-kek"),
        key: twofold::hardening::LockedKey::new(&fill(seed)),
        // The wrapped form is opaque to the envelope; vectors use fixed bytes.
        wrapped: (0..40).map(|i| seed ^ i).collect(),
    }
}

fn build(case: &Case) -> Value {
    let keys = DataKeys::from_bytes(fill(0x10), fill(0x20));
    let inner_bk = bucket_key(Layer::Inner, 0x30);
    let outer_bk = bucket_key(Layer::Outer, 0x40);
    let nonces = [[0x51; 12], [0x52; 12]];
    let name = ObjectName {
        bucket: case.bucket,
        key: case.key,
    };
    let seg = SegmentSize::from_log2(case.segment_size_log2).unwrap();
    let params = SealParams {
        segment_size: seg,
        upload_id: case.upload_id,
    };
    let header =
        seal_header_with_nonces(params, &keys, &inner_bk, &outer_bk, name, nonces).unwrap();
    let cipher = SegmentCipher::new(&header, &keys, case.part_number).unwrap();
    let plain = plaintext(case.plaintext_len);
    let mut w = EncryptWriter::new(cipher, Vec::new());
    std::io::Write::write_all(&mut w, &plain).unwrap();
    let (stored, n) = w.finish().unwrap();
    assert_eq!(n, stored_len(plain.len() as u64, seg));
    json!({
        "description": case.description,
        "segment_size_log2": case.segment_size_log2,
        "upload_id": case.upload_id.map(hex::encode),
        "part_number": case.part_number,
        "bucket": case.bucket,
        "key": case.key,
        "inner_data_key": hex::encode(keys.key(Layer::Inner)),
        "outer_data_key": hex::encode(keys.key(Layer::Outer)),
        "inner_bucket_key": hex::encode(inner_bk.key.as_ref()),
        "outer_bucket_key": hex::encode(outer_bk.key.as_ref()),
        "inner_kek_id": inner_bk.kek_id,
        "outer_kek_id": outer_bk.kek_id,
        "inner_wrapped_bucket_key": hex::encode(&inner_bk.wrapped),
        "outer_wrapped_bucket_key": hex::encode(&outer_bk.wrapped),
        "inner_dek_nonce": hex::encode(nonces[0]),
        "outer_dek_nonce": hex::encode(nonces[1]),
        "plaintext": "byte i = i mod 251",
        "plaintext_len": case.plaintext_len,
        "header": hex::encode(header.to_bytes()),
        "stored": hex::encode(&stored),
    })
}

fn document() -> Value {
    json!({
        "format": "Twofold envelope, format version 1 (docs/format.md)",
        "notes": "All byte strings are lowercase hex. Data keys and DEK-wrap nonces are fixed here; \
                  in use they are random. Wrapped bucket keys are opaque to the envelope and fixed \
                  bytes here; a checker opens the header with the bucket keys given in the clear.",
        "vectors": cases().iter().map(build).collect::<Vec<_>>(),
    })
}

#[test]
fn format_v1_vectors_match_the_committed_file() {
    let fresh = document();
    if std::env::var_os("TWOFOLD_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).unwrap() + "\n";
        std::fs::write(PATH, text).unwrap();
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("tests/vectors/format-v1.json"))
            .unwrap();
    let (a, b) = (&committed["vectors"], &fresh["vectors"]);
    assert_eq!(a.as_array().unwrap().len(), cases().len());
    for (i, (c, f)) in a
        .as_array()
        .unwrap()
        .iter()
        .zip(b.as_array().unwrap())
        .enumerate()
    {
        assert_eq!(
            c, f,
            "vector {i} ({}) differs from the format",
            c["description"]
        );
    }
}

#[test]
fn committed_vectors_open_with_the_reader() {
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let h = |v: &Value| hex::decode(v.as_str().unwrap()).unwrap();
    let k32 = |v: &Value| -> [u8; 32] { h(v).try_into().unwrap() };
    for v in committed["vectors"].as_array().unwrap() {
        let header = Header::parse(&h(&v["header"])).unwrap();
        let name = ObjectName {
            bucket: v["bucket"].as_str().unwrap(),
            key: v["key"].as_str().unwrap(),
        };
        let keys = open_header(
            &header,
            &k32(&v["inner_bucket_key"]),
            &k32(&v["outer_bucket_key"]),
            name,
        )
        .unwrap();
        assert_eq!(keys.key(Layer::Inner), &k32(&v["inner_data_key"]));
        assert_eq!(keys.key(Layer::Outer), &k32(&v["outer_data_key"]));
        let part = u32::try_from(v["part_number"].as_u64().unwrap()).unwrap();
        let cipher = SegmentCipher::new(&header, &keys, part).unwrap();
        let mut out = Vec::new();
        DecryptReader::new(cipher, h(&v["stored"]).as_slice())
            .read_to_end(&mut out)
            .unwrap();
        let len = usize::try_from(v["plaintext_len"].as_u64().unwrap()).unwrap();
        assert_eq!(out, plaintext(len), "{}", v["description"]);
    }
}
