//! What must work, against real SoftHSM2 custodians: objects of every awkward size come back
//! byte for byte, single-part and multipart; a copy's re-wrapped header opens under the new
//! name only; custodian calls are amortised per bucket; and no plaintext shows through.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use twofold::keys::block_on;

use twofold::envelope::aead::Layer;
use twofold::envelope::header::FORMAT_VERSION_WRAPPED;
use twofold::envelope::layout::{SegmentSize, plain_len, stored_len};
use twofold::envelope::{Error, ObjectName, SINGLE_PART_NUMBER};
use twofold::keys::KeyError;
use twofold_tests::{
    Custody, decrypt_part, open_object, random_bytes, seal_object, seal_part, segment_4k, settings,
};

const NAME: ObjectName<'static> = ObjectName {
    bucket: "round-trip",
    key: "a/b/c.bin",
};

#[track_caller]
fn assert_round_trip(
    ring: &twofold::keys::Keyring,
    seg: SegmentSize,
    name: ObjectName<'_>,
    len: usize,
) {
    let plain = random_bytes(len);
    let (header, stored) = seal_object(ring, name, &plain);
    assert_eq!(header.segment_size, seg);
    assert!(!header.multipart);
    assert_eq!(
        stored.len() as u64,
        stored_len(len as u64, seg),
        "stored length of {len} bytes"
    );
    assert_eq!(plain_len(stored.len() as u64, seg), Ok(len as u64));
    let opened = open_object(ring, &header, name, SINGLE_PART_NUMBER, &stored)
        .unwrap_or_else(|e| panic!("{len} bytes: keys do not open: {e}"));
    assert!(opened.result.is_ok(), "{len} bytes: {:?}", opened.result);
    assert!(opened.released == plain, "{len} bytes: plaintext differs");
}

#[test]
fn single_part_objects_of_edge_sizes_round_trip_at_4k_segments() {
    let custody = Custody::new("rt-4k");
    let ring = custody.keyring(settings(segment_4k()));
    for len in [0usize, 1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 1] {
        assert_round_trip(&ring, segment_4k(), NAME, len);
    }
}

#[test]
fn one_mebibyte_object_round_trips_at_64k_segments() {
    let custody = Custody::new("rt-64k");
    let ring = custody.keyring(settings(SegmentSize::DEFAULT));
    assert_round_trip(&ring, SegmentSize::DEFAULT, NAME, 1 << 20);
    assert_eq!(
        stored_len(1 << 20, SegmentSize::DEFAULT),
        (1 << 20) + 16 * 32
    );
}

#[test]
fn multipart_parts_round_trip_each_under_its_own_part_number() {
    let custody = Custody::new("rt-mp");
    let ring = custody.keyring(settings(segment_4k()));
    let upload: [u8; 16] = random_bytes(16).try_into().unwrap();
    let (header, keys) = block_on(ring.seal_new(NAME, Some(upload))).unwrap();
    assert!(header.multipart);
    assert_eq!(header.upload_id, upload);
    let plains = [
        random_bytes(3 * 4096 + 17),
        random_bytes(4096),
        random_bytes(1),
    ];
    let parts: Vec<Vec<u8>> = (1u32..=3)
        .zip(&plains)
        .map(|(part, plain)| seal_part(&header, &keys, part, plain))
        .collect();
    // The header travels in the object's metadata; a reader parses it and opens the keys.
    let parsed = twofold::envelope::header::Header::parse(&header.to_bytes()).unwrap();
    assert_eq!(parsed, header);
    let keys = block_on(ring.fork().open(&parsed, NAME)).unwrap();
    let mut whole = Vec::new();
    for (i, part) in (1u32..=3).enumerate() {
        assert_eq!(
            parts[i].len() as u64,
            stored_len(plains[i].len() as u64, segment_4k())
        );
        let opened = decrypt_part(&parsed, &keys, part, &parts[i]);
        assert!(opened.result.is_ok(), "part {part}: {:?}", opened.result);
        assert!(
            opened.released == plains[i],
            "part {part}: plaintext differs"
        );
        whole.extend_from_slice(&opened.released);
    }
    assert_eq!(whole, plains.concat());
}

#[test]
fn two_multipart_uploads_of_one_object_do_not_share_segment_keys() {
    let custody = Custody::new("rt-mp2");
    let ring = custody.keyring(settings(segment_4k()));
    let (h1, k1) = block_on(ring.seal_new(NAME, Some([1; 16]))).unwrap();
    let (h2, k2) = block_on(ring.seal_new(NAME, Some([2; 16]))).unwrap();
    let plain = random_bytes(5000);
    let p1 = seal_part(&h1, &k1, 1, &plain);
    let p2 = seal_part(&h2, &k2, 1, &plain);
    assert_ne!(p1, p2);
    let cross = decrypt_part(&h2, &k2, 1, &p1);
    assert!(matches!(
        cross.result,
        Err(Error::SegmentRejected {
            layer: Layer::Outer,
            part: 1,
            segment: 0
        })
    ));
    assert!(cross.released.is_empty());
}

#[test]
fn rewrapped_copy_opens_under_the_new_name_and_not_the_old_one() {
    let custody = Custody::new("rt-copy");
    let ring = custody.keyring(settings(segment_4k()));
    let plain = random_bytes(3 * 4096 + 5);
    let (header, stored) = seal_object(&ring, NAME, &plain);
    for to in [
        ObjectName {
            bucket: NAME.bucket,
            key: "a/b/copy.bin",
        },
        ObjectName {
            bucket: "other-bucket",
            key: NAME.key,
        },
    ] {
        let copy = block_on(ring.rewrap(&header, NAME, to)).unwrap().0;
        // Segments do not depend on the name: the same stored bytes serve the copy.
        let opened = open_object(&ring, &copy, to, SINGLE_PART_NUMBER, &stored).unwrap();
        assert!(opened.result.is_ok(), "{to:?}: {:?}", opened.result);
        assert!(opened.released == plain, "{to:?}: plaintext differs");
        // A reader with cold caches opens the copy too.
        let cold = ring.fork();
        assert!(block_on(cold.open(&copy, to)).is_ok());
        // The copy's header does not open under the old name, nor the original's under
        // the new one.
        for (h, name) in [(&copy, NAME), (&header, to)] {
            let r = block_on(ring.open(h, name));
            assert!(
                matches!(
                    r,
                    Err(KeyError::Envelope(Error::DataKeyRejected {
                        layer: Layer::Outer
                    }))
                ),
                "{name:?}: {r:?}"
            );
        }
        // The original still opens where it is.
        assert!(block_on(ring.open(&header, NAME)).is_ok());
        assert_ne!(copy.outer.dek_nonce, header.outer.dek_nonce);
        assert_ne!(copy.inner.dek_nonce, header.inner.dek_nonce);
        if to.bucket != NAME.bucket {
            // Another bucket has bucket keys of its own.
            assert_ne!(copy.outer.bucket_key, header.outer.bucket_key);
            assert_ne!(copy.inner.bucket_key, header.inner.bucket_key);
        }
    }
}

fn amortised(key: &str) -> ObjectName<'_> {
    ObjectName {
        bucket: "amortised",
        key,
    }
}

/// Format v2: one epoch key per bucket and layer serves every core. Two writer cores (two
/// keyrings, as two cores or two appliances are) each derive it once and make bucket keys
/// of their own from it; a reader with cold caches opens all their objects with one
/// custodian call per layer.
#[test]
fn objects_of_one_bucket_and_epoch_cost_one_custodian_call_per_layer_whoever_wrote_them() {
    let custody = Custody::new("rt-amort");
    let ring = custody.keyring(settings(segment_4k()));
    let other_core = ring.fork();
    let keys: Vec<String> = (0..100).map(|i| format!("obj-{i}")).collect();
    let headers: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let writer = if i % 2 == 0 { &ring } else { &other_core };
            block_on(writer.seal_new(amortised(key), None)).unwrap().0
        })
        .collect();
    for writer in [&ring, &other_core] {
        let stats = writer.stats();
        assert_eq!(
            stats.custodian_derives, 2,
            "one derive per layer: {stats:?}"
        );
        assert_eq!(
            stats.custodian_wraps + stats.custodian_unwraps,
            0,
            "{stats:?}"
        );
    }
    // Each core's bucket key is its own (its own salt), under one epoch.
    assert_eq!(headers[0].version(), 2);
    assert_eq!(headers[0].outer.bucket_key, headers[2].outer.bucket_key);
    assert_ne!(headers[0].outer.bucket_key, headers[1].outer.bucket_key);
    assert_ne!(headers[0].inner.bucket_key, headers[1].inner.bucket_key);

    // The writer already holds its bucket keys for reading, and the other core's derive
    // from the epoch key it holds.
    for (h, key) in headers.iter().zip(&keys) {
        block_on(ring.open(h, amortised(key))).unwrap();
    }
    assert_eq!(ring.stats().custodian_derives, 2, "{:?}", ring.stats());

    let reader = ring.fork();
    for (h, key) in headers.iter().zip(&keys) {
        block_on(reader.open(h, amortised(key))).unwrap();
    }
    let stats = reader.stats();
    assert_eq!(
        stats.custodian_derives, 2,
        "one derive per layer: {stats:?}"
    );
    assert_eq!(
        stats.custodian_wraps + stats.custodian_unwraps,
        0,
        "{stats:?}"
    );
    // 4 bucket keys (2 cores × 2 layers) missed, the other 196 lookups hit.
    assert_eq!((stats.misses, stats.hits), (4, 196), "{stats:?}");

    // Another bucket has epoch keys of its own: one more derive per layer.
    block_on(ring.seal_new(
        ObjectName {
            bucket: "amortised-2",
            key: "x",
        },
        None,
    ))
    .unwrap();
    assert_eq!(ring.stats().custodian_derives, 4, "{:?}", ring.stats());
}

/// Format v1 objects, still read: one wrap per layer to write a bucket's objects in a
/// window, one unwrap per layer and distinct wrapped key to read them.
#[test]
fn v1_objects_of_one_bucket_cost_one_custodian_wrap_and_one_unwrap_per_layer() {
    let custody = Custody::new("rt-amort1");
    let ring = custody.keyring(settings(segment_4k()));
    let keys: Vec<String> = (0..100).map(|i| format!("obj-{i}")).collect();
    let headers: Vec<_> = keys
        .iter()
        .map(|key| {
            block_on(ring.seal_new_in(amortised(key), None, FORMAT_VERSION_WRAPPED))
                .unwrap()
                .0
        })
        .collect();
    let stats = ring.stats();
    assert_eq!(stats.custodian_wraps, 2, "one wrap per layer: {stats:?}");
    assert_eq!(
        stats.custodian_unwraps + stats.custodian_derives,
        0,
        "{stats:?}"
    );
    assert!(
        headers
            .iter()
            .all(|h| h.version() == 1 && h.outer.bucket_key == headers[0].outer.bucket_key)
    );
    for (h, key) in headers.iter().zip(&keys) {
        block_on(ring.open(h, amortised(key))).unwrap();
    }
    assert_eq!(ring.stats().custodian_unwraps, 0, "{:?}", ring.stats());
    let reader = ring.fork();
    for (h, key) in headers.iter().zip(&keys) {
        block_on(reader.open(h, amortised(key))).unwrap();
    }
    let stats = reader.stats();
    assert_eq!(
        stats.custodian_unwraps, 2,
        "one unwrap per layer: {stats:?}"
    );
    assert_eq!(
        stats.custodian_wraps + stats.custodian_derives,
        0,
        "{stats:?}"
    );
    assert_eq!(stats.hits, 198, "{stats:?}");

    // A copy of a v1 object stays v1 (its segments bind the version) and opens.
    let to = ObjectName {
        bucket: "amortised-copy",
        key: "copy",
    };
    let copy = block_on(ring.rewrap(&headers[0], amortised(&keys[0]), to))
        .unwrap()
        .0;
    assert_eq!(copy.version(), 1);
    assert!(block_on(ring.fork().open(&copy, to)).is_ok());
}

#[test]
fn no_sixteen_byte_run_of_the_plaintext_appears_in_the_stored_bytes_or_the_header() {
    let custody = Custody::new("rt-leak");
    let ring = custody.keyring(settings(segment_4k()));
    // Low-entropy plaintext, so that a segment left in the clear, or a keystream reused
    // across segments or layers, would show as repeated runs.
    let mut plain = Vec::new();
    while plain.len() < 10 * 4096 + 123 {
        plain.extend_from_slice(b"The quick brown fox jumps over the lazy dog. ");
    }
    plain.extend(std::iter::repeat_n(0xffu8, 8192));
    plain.extend(std::iter::repeat_n(0u8, 8192));
    let (header, stored) = seal_object(&ring, NAME, &plain);
    let header_bytes = header.to_bytes();
    let leaked = |bytes: &[u8], allowed: &[[u8; 16]]| -> Vec<usize> {
        let seen: HashSet<&[u8]> = bytes.windows(16).collect();
        plain
            .windows(16)
            .enumerate()
            .filter(|(_, w)| seen.contains(w) && !allowed.iter().any(|a| a == w))
            .map(|(i, _)| i)
            .take(5)
            .collect()
    };
    let in_stored = leaked(&stored, &[]);
    assert!(
        in_stored.is_empty(),
        "plaintext runs found in the stored bytes, at plaintext offsets {in_stored:?}"
    );
    // The header of a single-part object holds 16 zero bytes by design: its upload id.
    assert_eq!(header.upload_id, [0u8; 16]);
    let in_header = leaked(&header_bytes, &[[0u8; 16]]);
    assert!(
        in_header.is_empty(),
        "plaintext runs found in the header, at plaintext offsets {in_header:?}"
    );
    // Identical plaintext segments must not give identical stored segments.
    let full = 4096 + 32;
    let segs: HashSet<&[u8]> = stored.chunks(full).collect();
    assert_eq!(segs.len(), stored.len().div_ceil(full));
    let opened = open_object(&ring, &header, NAME, SINGLE_PART_NUMBER, &stored).unwrap();
    assert!(opened.result.is_ok());
    assert!(opened.released == plain);
}
