//! Format test vectors: fixed keys, nonces, names and plaintexts → fixed header and stored
//! bytes, in `tests/vectors/format-v2.json` (the format written) and
//! `tests/vectors/format-v1.json` (still read), for other implementations to check
//! themselves against. Version 2 vectors also give the key hierarchy from fixed KEKs:
//! epoch input, the custodian's RFC 5649 wrap of it, the epoch key and the bucket key; a
//! metadata record; and whole multipart objects (aligned, and unaligned with its layout
//! record, marker padding and a checksum record), with their metadata in the shape
//! `aws s3api head-object` prints, so that `twofold decrypt` can be pointed at them.
//! This test rebuilds every vector and compares byte for byte, then recomputes the
//! hierarchy and opens each stored body through the streaming reader. Run with
//! `TWOFOLD_BLESS=1` to rewrite the files after a deliberate format change (and bump the
//! version).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use aes_gcm::KeyInit;
use serde_json::{Value, json};
use std::io::Read;
use twofold::envelope::aead::Layer;
use twofold::envelope::checksum_record::StoredChecksum;
use twofold::envelope::customer::{self, CustomerKey};
use twofold::envelope::header::{BucketKeyRef, Header};
use twofold::envelope::hierarchy;
use twofold::envelope::layout::{SegmentSize, stored_len};
use twofold::envelope::meta_record;
use twofold::envelope::stream::{DecryptReader, EncryptWriter};
use twofold::envelope::{
    BucketKey, DataKeys, ObjectName, SealParams, SegmentCipher, open_header,
    seal_header_with_nonces,
};
use twofold::s3::checksum::ChecksumAlgorithm;

fn path(version: u8) -> String {
    format!(
        "{}/../tests/vectors/format-v{version}.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

const VERSIONS: [u8; 2] = [2, 1];
/// The epoch of the version 2 vectors: the hour 2026-12-01T00:00Z.
const VECTOR_EPOCH: u32 = 498_912;

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

/// Version 1: a bucket key whose wrapped form is opaque to the envelope (fixed bytes here).
fn wrapped_bucket_key(layer: Layer, seed: u8) -> BucketKey {
    BucketKey {
        layer,
        kek_id: format!("vector-{layer}-kek"),
        key: twofold::hardening::LockedKey::new(&fill(seed)),
        reference: BucketKeyRef::Wrapped((0..40).map(|i| seed ^ i).collect()),
    }
}

/// The RFC 5649 wrap a custodian holding `kek` computes.
fn kwp(kek: &[u8; 32], input: &[u8; 32]) -> Vec<u8> {
    let mut out = [0u8; 40];
    aes_kw::KwpAes256::new(kek.into())
        .wrap_key(input, &mut out)
        .unwrap();
    out.to_vec()
}

/// Version 2: the chain from a fixed KEK to the bucket key, and its steps for the file.
fn derived_bucket_key(layer: Layer, seed: u8, bucket: &str) -> (BucketKey, Value) {
    let kek = fill(seed);
    let salt = [seed ^ 0x01; 16];
    let input = hierarchy::epoch_input(layer, bucket, VECTOR_EPOCH);
    let prf = kwp(&kek, &input);
    let ek = hierarchy::epoch_key(layer, &prf).unwrap();
    let bk = hierarchy::bucket_key(layer, &ek, &salt).unwrap();
    let steps = json!({
        "kek": hex::encode(kek),
        "epoch": VECTOR_EPOCH,
        "salt": hex::encode(salt),
        "epoch_input": hex::encode(input),
        "epoch_prf": hex::encode(&prf),
        "epoch_key": hex::encode(*ek),
        "bucket_key": hex::encode(*bk),
    });
    let key = BucketKey {
        layer,
        kek_id: format!("vector-{layer}-kek"),
        key: twofold::hardening::LockedKey::new(&bk),
        reference: BucketKeyRef::Derived {
            epoch: VECTOR_EPOCH,
            salt,
        },
    };
    (key, steps)
}

/// The salt of the vectors' parts of version 2 uploads (random in use).
const PART_SALT: [u8; 16] = [0x5a; 16];

fn build(case: &Case, version: u8) -> Value {
    build_with(case, version, None)
}

/// The version 2 vector of an object bound to a customer-provided key (SSE-C).
fn customer_key_vector() -> Value {
    let case = Case {
        description: "customer-provided key (SSE-C) bound into both data-key wraps",
        segment_size_log2: 12,
        upload_id: None,
        part_number: 0,
        bucket: "vectors",
        key: "sse-c/object.bin",
        plaintext_len: 5000,
    };
    build_with(&case, 2, Some(CustomerKey::new(&fill(0x90))))
}

/// The bucket key `bk` as the key that wraps data keys for `customer`.
fn customer_bound(bk: &BucketKey, customer: &CustomerKey) -> BucketKey {
    BucketKey {
        layer: bk.layer,
        kek_id: bk.kek_id.clone(),
        key: twofold::hardening::LockedKey::new(
            &customer::wrap_key(bk.layer, &bk.key, customer).unwrap(),
        ),
        reference: bk.reference.clone(),
    }
}

fn build_with(case: &Case, version: u8, customer: Option<CustomerKey>) -> Value {
    let keys = DataKeys::from_bytes(fill(0x10), fill(0x20));
    let (inner_bk, outer_bk, hierarchy) = if version == 1 {
        let inner = wrapped_bucket_key(Layer::Inner, 0x30);
        let outer = wrapped_bucket_key(Layer::Outer, 0x40);
        (inner, outer, Value::Null)
    } else {
        let (inner, i) = derived_bucket_key(Layer::Inner, 0x60, case.bucket);
        let (outer, o) = derived_bucket_key(Layer::Outer, 0x70, case.bucket);
        (inner, outer, json!({ "inner": i, "outer": o }))
    };
    let nonces = [[0x51; 12], [0x52; 12]];
    let name = ObjectName {
        bucket: case.bucket,
        key: case.key,
    };
    let seg = SegmentSize::from_log2(case.segment_size_log2).unwrap();
    let params = SealParams {
        segment_size: seg,
        upload_id: case.upload_id,
        customer_key: customer.is_some(),
    };
    let bound = customer
        .as_ref()
        .map(|c| (customer_bound(&inner_bk, c), customer_bound(&outer_bk, c)));
    let (inner_wk, outer_wk) = match &bound {
        Some((i, o)) => (i, o),
        None => (&inner_bk, &outer_bk),
    };
    let header = seal_header_with_nonces(params, &keys, inner_wk, outer_wk, name, nonces).unwrap();
    assert_eq!(header.version(), version);
    // A part of a version 2 upload is stored after its salt (fixed here, fresh in use).
    let part_salt = (version == 2 && case.part_number != 0).then_some(PART_SALT);
    let cipher = match &part_salt {
        Some(salt) => SegmentCipher::new_salted(&header, &keys, case.part_number, salt).unwrap(),
        None => SegmentCipher::new(&header, &keys, case.part_number).unwrap(),
    };
    let plain = plaintext(case.plaintext_len);
    let mut w = EncryptWriter::new(cipher, Vec::new());
    std::io::Write::write_all(&mut w, &plain).unwrap();
    let (segments, n) = w.finish().unwrap();
    assert_eq!(n, stored_len(plain.len() as u64, seg));
    let mut stored = part_salt.map(|s| s.to_vec()).unwrap_or_default();
    stored.extend_from_slice(&segments);
    let reference = |bk: &BucketKey| {
        let mut r = Vec::new();
        bk.reference.write(&mut r);
        hex::encode(r)
    };
    let mut v = json!({
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
        "inner_dek_nonce": hex::encode(nonces[0]),
        "outer_dek_nonce": hex::encode(nonces[1]),
        "plaintext": "byte i = i mod 251",
        "plaintext_len": case.plaintext_len,
        "header": hex::encode(header.to_bytes()),
        "stored": hex::encode(&stored),
    });
    if let Some(salt) = part_salt {
        v["part_salt"] = json!(hex::encode(salt));
    }
    if let Some(c) = &customer {
        v["customer_key"] = json!(hex::encode(c.bytes()));
        v["inner_customer_wrap_key"] = json!(hex::encode(inner_wk.key.as_ref()));
        v["outer_customer_wrap_key"] = json!(hex::encode(outer_wk.key.as_ref()));
    }
    if version == 1 {
        v["inner_wrapped_bucket_key"] = json!(reference(&inner_bk)[2..]);
        v["outer_wrapped_bucket_key"] = json!(reference(&outer_bk)[2..]);
    } else {
        v["hierarchy"] = hierarchy;
    }
    v
}

fn document(version: u8) -> Value {
    let (format, notes) = if version == 1 {
        (
            "Twofold envelope, format version 1 (docs/format.md; read, not written)",
            "All byte strings are lowercase hex. Data keys and DEK-wrap nonces are fixed here; \
             in use they are random. Wrapped bucket keys are opaque to the envelope and fixed \
             bytes here; a checker opens the header with the bucket keys given in the clear.",
        )
    } else {
        (
            "Twofold envelope, format version 2 (docs/format.md)",
            "All byte strings are lowercase hex. KEKs, salts, data keys and DEK-wrap nonces \
             are fixed here; in use KEKs stay in their custodians and the rest is random. \
             `hierarchy` gives, per layer, the epoch input, its RFC 5649 wrap under the KEK \
             (the custodian's answer), the epoch key and the bucket key that opens the header.",
        )
    };
    let mut doc = json!({
        "format": format,
        "notes": notes,
        "vectors": cases().iter().map(|c| build(c, version)).collect::<Vec<_>>(),
    });
    if version == 2 {
        doc["metadata_record"] = metadata_record(&doc["vectors"][0]);
        doc["multipart_objects"] =
            json!(MULTIPART.iter().map(multipart_object).collect::<Vec<_>>());
        doc["customer_key_vector"] = customer_key_vector();
    }
    doc
}

/// A whole multipart object of the vectors: its parts' plaintext sizes, whether it has a
/// checksum record (a CRC32 of the whole plaintext).
struct MultipartCase {
    description: &'static str,
    key: &'static str,
    parts: &'static [usize],
    /// The parts' numbers (S3 allows gaps).
    numbers: &'static [u32],
    checksum: bool,
}

const MULTIPART: &[MultipartCase] = &[
    MultipartCase {
        description: "aligned: three parts of 2, 2 and 1.25 segments of 4 KiB, each after its part \
                      salt (fixed 0x50, 0x51, 0x52 here, random in use); a layout record (fixed \
                      salt 0x4c here, random in use) that says the parts are salted; marker \
                      padding (fixed bytes 0xee here, random in use)",
        key: "multi/aligned.bin",
        parts: &[8192, 8192, 5120],
        numbers: &[1, 2, 3],
        checksum: false,
    },
    MultipartCase {
        description: "unaligned: salted parts of 5000, 4100 and 10 bytes; layout record, marker padding \
                      (fixed bytes 0xee here, random in use) and a salted CRC32 checksum record \
                      (fixed salt 0x3c here, random in use)",
        key: "multi/unaligned.bin",
        parts: &[5000, 4100, 10],
        numbers: &[1, 2, 3],
        checksum: true,
    },
    MultipartCase {
        description: "numbered with gaps: salted parts 2, 5 and 6 of 8192, 8192 and 100 bytes, each \
                      sealed under its own number; layout record version 2, which holds the numbers \
                      (fixed salt 0x4c here, random in use)",
        key: "multi/gaps.bin",
        parts: &[8192, 8192, 100],
        numbers: &[2, 5, 6],
        checksum: false,
    },
];

/// Plaintext of part `n` of a multipart vector: byte i is (i + 7·n) mod 251.
fn part_plaintext(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i + 7 * n) % 251) as u8).collect()
}

/// The header, data keys and bucket keys of a multipart vector's object.
fn multipart_header(key: &str) -> (Header, DataKeys) {
    let keys = DataKeys::from_bytes(fill(0x10), fill(0x20));
    let (inner, _) = derived_bucket_key(Layer::Inner, 0x60, "vectors");
    let (outer, _) = derived_bucket_key(Layer::Outer, 0x70, "vectors");
    let params = SealParams {
        segment_size: SegmentSize::from_log2(12).unwrap(),
        upload_id: Some([0xC3; 16]),
        customer_key: false,
    };
    let name = ObjectName {
        bucket: "vectors",
        key,
    };
    let nonces = [[0x51; 12], [0x52; 12]];
    let header = seal_header_with_nonces(params, &keys, &inner, &outer, name, nonces).unwrap();
    (header, keys)
}

/// A whole stored multipart object, with the metadata entries a reader needs.
fn multipart_object(case: &MultipartCase) -> Value {
    use twofold::envelope::{checksum_record, record};
    let (header, keys) = multipart_header(case.key);
    let seg = header.segment_size;
    let mut stored = Vec::new();
    let mut plain = Vec::new();
    for (i, &len) in case.parts.iter().enumerate() {
        let p = part_plaintext(i + 1, len);
        // Each part after its own salt (fixed here: 0x50 + its position; fresh in use).
        let salt = [0x50 + i as u8; 16];
        stored.extend_from_slice(&salt);
        let cipher = SegmentCipher::new_salted(&header, &keys, case.numbers[i], &salt).unwrap();
        let mut w = EncryptWriter::new(cipher, Vec::new());
        std::io::Write::write_all(&mut w, &p).unwrap();
        stored.extend_from_slice(&w.finish().unwrap().0);
        plain.extend_from_slice(&p);
    }
    let sizes: Vec<u64> = case.parts.iter().map(|&p| p as u64).collect();
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "twofold".into(),
        json!(twofold::envelope::objmeta::encode(&header)),
    );
    // Every version 2 multipart object has a layout record (salted; fixed salt here,
    // random in use); an unaligned one also has marker padding.
    let layout = twofold::envelope::layout::Layout::multipart(sizes.clone(), seg)
        .with_numbers(case.numbers.to_vec())
        .with_salts(true);
    let sealed = record::seal_with_salt(&header, &keys, &layout, [0x4c; 16]).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    metadata.insert(
        "twofold-layout".into(),
        json!(base64::Engine::encode(&b64, sealed)),
    );
    // Every salted multipart object ends with marker padding (fixed bytes 0xee here).
    if record::padded(&layout) {
        let pad = record::padding_len(stored.len() as u64, seg) as usize;
        stored.extend(std::iter::repeat_n(0xee, pad));
    }
    if case.checksum {
        let mut h = twofold::s3::checksum::Hasher::new(ChecksumAlgorithm::Crc32);
        h.update(&plain);
        let sum = StoredChecksum::full_object(ChecksumAlgorithm::Crc32, h.finish_raw());
        // Salted (a multipart object of version 2): fixed salt 0x3c here, random in use.
        metadata.insert(
            "twofold-checksum".into(),
            json!(checksum_record::seal_salted(&header, &keys, &sum, [0x3c; 16]).unwrap()),
        );
    }
    let described = vec![(
        "content-type".to_owned(),
        b"application/octet-stream".to_vec(),
    )];
    let salt = [0x6b; meta_record::SALT_LEN_BYTES];
    let meta = meta_record::seal_with_salt(&header, &keys, &described, salt)
        .unwrap()
        .unwrap();
    metadata.insert("twofold-meta".into(), json!(meta));
    json!({
        "description": case.description,
        "bucket": "vectors",
        "key": case.key,
        "inner_data_key": hex::encode(keys.key(Layer::Inner)),
        "outer_data_key": hex::encode(keys.key(Layer::Outer)),
        "part_sizes": case.parts,
        "part_numbers": case.numbers,
        "plaintext": "the part at position n (from 1), byte i = (i + 7n) mod 251",
        "Metadata": metadata,
        "ContentLength": stored.len(),
        "stored": hex::encode(&stored),
    })
}

/// The entries of the metadata record vector.
fn metadata_entries() -> Vec<(String, Vec<u8>)> {
    vec![
        ("content-type".into(), b"text/csv".to_vec()),
        (
            "content-disposition".into(),
            b"attachment; filename=\"q4.csv\"".to_vec(),
        ),
        ("x-amz-meta-owner".into(), "Zoë".as_bytes().to_vec()),
    ]
}

/// A metadata record sealed for the object of `vector` (its header and data keys), with a
/// fixed salt.
fn metadata_record(vector: &Value) -> Value {
    let header = Header::parse(&h(&vector["header"])).unwrap();
    let keys = DataKeys::from_bytes(
        k32(&vector["inner_data_key"]),
        k32(&vector["outer_data_key"]),
    );
    let entries = metadata_entries();
    let salt = [0x5a; meta_record::SALT_LEN_BYTES];
    let value = meta_record::seal_with_salt(&header, &keys, &entries, salt)
        .unwrap()
        .unwrap();
    json!({
        "description": "the metadata record of the first vector's object",
        "of_vector": 0,
        "salt": hex::encode(salt),
        "entries": entries
            .iter()
            .map(|(n, v)| json!([n, hex::encode(v)]))
            .collect::<Vec<_>>(),
        "plaintext": hex::encode(meta_record::encode(&entries).unwrap()),
        "value": value,
    })
}

#[test]
fn format_vectors_match_the_committed_files() {
    for version in VERSIONS {
        vectors_match_the_committed_file(version);
    }
}

fn vectors_match_the_committed_file(version: u8) {
    let fresh = document(version);
    if std::env::var_os("TWOFOLD_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&fresh).unwrap() + "\n";
        std::fs::write(path(version), text).unwrap();
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(path(version)).expect("vector file"))
            .unwrap();
    assert_eq!(committed["metadata_record"], fresh["metadata_record"]);
    assert_eq!(committed["multipart_objects"], fresh["multipart_objects"]);
    assert_eq!(
        committed["customer_key_vector"],
        fresh["customer_key_vector"]
    );
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
            "version {version} vector {i} ({}) differs from the format",
            c["description"]
        );
    }
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn k32(v: &Value) -> [u8; 32] {
    h(v).try_into().unwrap()
}

/// The version 2 chain, recomputed from the file's KEK alone, ends at its bucket key; the
/// header records the file's epoch and salt.
fn check_hierarchy(v: &Value, header: &Header) {
    for layer in [Layer::Inner, Layer::Outer] {
        let steps = &v["hierarchy"][layer.to_string()];
        let epoch = u32::try_from(steps["epoch"].as_u64().unwrap()).unwrap();
        let salt: [u8; 16] = h(&steps["salt"]).try_into().unwrap();
        assert_eq!(
            header.layer(layer).bucket_key,
            BucketKeyRef::Derived { epoch, salt }
        );
        let input = hierarchy::epoch_input(layer, v["bucket"].as_str().unwrap(), epoch);
        assert_eq!(input.to_vec(), h(&steps["epoch_input"]));
        let prf = kwp(&k32(&steps["kek"]), &input);
        assert_eq!(prf, h(&steps["epoch_prf"]));
        let ek = hierarchy::epoch_key(layer, &prf).unwrap();
        assert_eq!(*ek, k32(&steps["epoch_key"]));
        let bk = hierarchy::bucket_key(layer, &ek, &salt).unwrap();
        assert_eq!(*bk, k32(&steps["bucket_key"]));
        assert_eq!(*bk, k32(&v[format!("{layer}_bucket_key")]));
    }
}

#[test]
fn committed_vectors_open_with_the_reader() {
    for version in VERSIONS {
        let text = std::fs::read_to_string(path(version)).unwrap();
        let committed: Value = serde_json::from_str(&text).unwrap();
        for v in committed["vectors"].as_array().unwrap() {
            open_vector(v, version);
        }
        if version == 2 {
            open_vector(&committed["customer_key_vector"], version);
        }
    }
}

#[test]
fn the_committed_metadata_record_opens_to_its_entries() {
    let text = std::fs::read_to_string(path(2)).unwrap();
    let committed: Value = serde_json::from_str(&text).unwrap();
    let record = &committed["metadata_record"];
    let vector = &committed["vectors"][0];
    let header = Header::parse(&h(&vector["header"])).unwrap();
    let keys = DataKeys::from_bytes(
        k32(&vector["inner_data_key"]),
        k32(&vector["outer_data_key"]),
    );
    let opened = meta_record::open(&header, &keys, record["value"].as_str().unwrap()).unwrap();
    assert_eq!(opened, metadata_entries());
    assert_eq!(
        meta_record::decode(&h(&record["plaintext"])).unwrap(),
        metadata_entries()
    );
}

/// Every committed multipart object opens, through the read plan a reader follows, to its
/// parts' plaintext, with its records checked; cut at a part boundary, it does not.
#[test]
fn committed_multipart_objects_open_whole_and_not_cut() {
    use twofold::envelope::{checksum_record, plan, read, record};
    let text = std::fs::read_to_string(path(2)).unwrap();
    let committed: Value = serde_json::from_str(&text).unwrap();
    let objects = committed["multipart_objects"].as_array().unwrap();
    assert_eq!(objects.len(), MULTIPART.len());
    for (v, case) in objects.iter().zip(MULTIPART) {
        let meta = twofold::envelope::objmeta::stored_from_json(&v.to_string()).unwrap();
        let header = &meta.header;
        let keys = DataKeys::from_bytes(k32(&v["inner_data_key"]), k32(&v["outer_data_key"]));
        let stored = h(&v["stored"]);
        let open = |stored: &[u8]| -> Result<Vec<u8>, String> {
            let layout = match &meta.layout {
                Some(l) => {
                    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                    let sealed = base64::Engine::decode(&b64, l).unwrap();
                    Some(
                        record::open(header, &keys, &sealed, stored.len() as u64)
                            .map_err(|e| e.to_string())?,
                    )
                }
                None => None,
            };
            let object = plan::ObjectMeta {
                header,
                stored_len: stored.len() as u64,
                layout_record: layout.as_ref(),
                etag_parts: case.parts.len() as u32,
                segments_per_part: None,
                has_checksum_record: meta.checksum.is_some(),
            };
            let p = plan::plan(&object, &plan::ReadRequest::whole()).map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            let mut sink = |_: u32, b: &[u8]| -> std::io::Result<()> {
                out.extend_from_slice(b);
                Ok(())
            };
            let summary = read::read_plan(&p, header, &keys, &mut &stored[..], &mut sink)
                .map_err(|e| e.to_string())?;
            // Version 2: the record gives the parts and their numbers, which the read
            // plan follows.
            assert_eq!(Some(&summary.last_part), case.numbers.last());
            Ok(out)
        };
        let want: Vec<u8> = case
            .parts
            .iter()
            .enumerate()
            .flat_map(|(i, &len)| part_plaintext(i + 1, len))
            .collect();
        assert!(open(&stored).unwrap() == want, "{}", case.description);
        if let Some(value) = &meta.checksum {
            let sum = checksum_record::open_for(header, &keys, value).unwrap();
            let mut h = twofold::s3::checksum::Hasher::new(sum.algorithm);
            h.update(&want);
            assert_eq!(h.finish_raw(), sum.digest);
        }
        let described =
            meta_record::open(header, &keys, meta.described.as_deref().unwrap()).unwrap();
        assert_eq!(described[0].0, "content-type");
        // Cut after a part's stored body, extended by a part, or with a part dropped:
        // refused, since the stored length no longer matches the layout record.
        let lens: Vec<usize> = case
            .parts
            .iter()
            .map(|&p| {
                twofold::envelope::layout::salted_stored_len(p as u64, header.segment_size) as usize
            })
            .collect();
        let parts_end: usize = lens.iter().sum();
        let (first, second) = (lens[0], lens[0] + lens[1]);
        let mut extended = stored[..parts_end].to_vec();
        extended.extend_from_slice(&stored[second..parts_end]);
        extended.extend_from_slice(&stored[parts_end..]);
        let mut dropped = stored[..first].to_vec();
        dropped.extend_from_slice(&stored[second..]);
        for (what, bad) in [
            ("cut after part 1", stored[..first].to_vec()),
            ("cut after part 2", stored[..second].to_vec()),
            ("last part twice", extended),
            ("part 2 dropped", dropped),
        ] {
            assert!(open(&bad).is_err(), "{}: {what}", case.description);
        }
    }
}

fn open_vector(v: &Value, version: u8) {
    {
        let header = Header::parse(&h(&v["header"])).unwrap();
        assert_eq!(header.version(), version);
        if version == 2 {
            check_hierarchy(v, &header);
        }
        let name = ObjectName {
            bucket: v["bucket"].as_str().unwrap(),
            key: v["key"].as_str().unwrap(),
        };
        let (mut inner, mut outer) = (k32(&v["inner_bucket_key"]), k32(&v["outer_bucket_key"]));
        assert_eq!(header.customer_key(), v.get("customer_key").is_some());
        if let Some(c) = v.get("customer_key") {
            // Bound to a customer key: the bucket keys alone do not open it.
            assert!(open_header(&header, &inner, &outer, name).is_err());
            let c = CustomerKey::new(&k32(c));
            inner = *customer::wrap_key(Layer::Inner, &inner, &c).unwrap();
            outer = *customer::wrap_key(Layer::Outer, &outer, &c).unwrap();
            assert_eq!(inner, k32(&v["inner_customer_wrap_key"]));
            assert_eq!(outer, k32(&v["outer_customer_wrap_key"]));
        }
        let keys = open_header(&header, &inner, &outer, name).unwrap();
        assert_eq!(keys.key(Layer::Inner), &k32(&v["inner_data_key"]));
        assert_eq!(keys.key(Layer::Outer), &k32(&v["outer_data_key"]));
        let part = u32::try_from(v["part_number"].as_u64().unwrap()).unwrap();
        let stored = h(&v["stored"]);
        // A salted part: its salt, then its segments.
        let (cipher, segments) = match v.get("part_salt") {
            Some(salt) => {
                let salt: [u8; 16] = h(salt).try_into().unwrap();
                assert_eq!(stored[..16], salt);
                let c = SegmentCipher::new_salted(&header, &keys, part, &salt).unwrap();
                (c, &stored[16..])
            }
            None => (
                SegmentCipher::new(&header, &keys, part).unwrap(),
                &stored[..],
            ),
        };
        let mut out = Vec::new();
        DecryptReader::new(cipher, segments)
            .read_to_end(&mut out)
            .unwrap();
        let len = usize::try_from(v["plaintext_len"].as_u64().unwrap()).unwrap();
        assert_eq!(out, plaintext(len), "{}", v["description"]);
    }
}
