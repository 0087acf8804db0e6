//! Damaged, moved, reordered and mis-keyed objects, against real SoftHSM2 custodians: each
//! kind of damage must fail with its own typed error, naming the layer (and part and
//! segment) that caught it, and the reader must release no plaintext that did not verify:
//! for damage in segment k exactly the k segments before it, byte for byte, and nothing
//! after.
//!
//! Objects here use 4 KiB segments and are 4 full segments and a 1000-byte final one.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::envelope::aead::{Layer, NONCE_LEN_BYTES, OuterAead, TAG_LEN_BYTES};
use twofold::envelope::header::{FORMAT_VERSION_WRAPPED, Header, HeaderError};
use twofold::envelope::{DataKeys, Error, ObjectName, SINGLE_PART_NUMBER, kdf};
use twofold::keys::block_on;
use twofold::keys::{Custodian, KeyError, Keyring};
use twofold_tests::{
    Custody, OVERHEAD_BYTES, Opened, decrypt_part, flip_bit, init_custodian, kek_label,
    layer_block_ranges, open_custodian, pkcs11_spec, random_bytes, seal_object_with_keys,
    seal_part, segment_4k, segment_range, settings, token,
};

const SEGMENT_BYTES: usize = 4096;
const SEGMENTS: usize = 5;
const PLAIN_LEN: usize = (SEGMENTS - 1) * SEGMENT_BYTES + 1000;
const NAME: ObjectName<'static> = ObjectName {
    bucket: "tamper-bucket",
    key: "dir/object.bin",
};

/// A sealed object, the keyring that sealed it and its keys.
struct Fixture {
    custody: Custody,
    ring: Keyring,
    header: Header,
    keys: DataKeys,
    plain: Vec<u8>,
    stored: Vec<u8>,
}

fn fixture(prefix: &str) -> Fixture {
    fixture_of_len(prefix, PLAIN_LEN)
}

fn fixture_of_len(prefix: &str, len: usize) -> Fixture {
    let custody = Custody::new(prefix);
    let ring = custody.keyring(settings(segment_4k()));
    let plain = random_bytes(len);
    let (header, keys, stored) = seal_object_with_keys(&ring, NAME, &plain);
    Fixture {
        custody,
        ring,
        header,
        keys,
        plain,
        stored,
    }
}

impl Fixture {
    fn open(&self, stored: &[u8]) -> Opened {
        decrypt_part(&self.header, &self.keys, SINGLE_PART_NUMBER, stored)
    }

    fn segment(&self, index: usize) -> std::ops::Range<usize> {
        segment_range(segment_4k(), index, self.stored.len())
    }
}

/// The reader released exactly the first `segments` segments of `plain`, and no more.
#[track_caller]
fn assert_released_exactly(opened: &Opened, plain: &[u8], segments: usize) {
    let verified = (segments * SEGMENT_BYTES).min(plain.len());
    assert_eq!(
        opened.released.len(),
        verified,
        "released {} bytes, expected the {segments} verified segment(s) = {verified} bytes",
        opened.released.len()
    );
    assert!(
        opened.released == plain[..verified],
        "released bytes differ from the plaintext of the verified segments"
    );
}

/// The reader stopped at `segment` of `part`, rejected by `layer`, after releasing exactly
/// the segments before it.
#[track_caller]
fn assert_rejected_at(
    opened: &Opened,
    plain: &[u8],
    (layer, part, segment): (Layer, u32, usize),
    case: &str,
) {
    assert!(
        matches!(
            opened.result,
            Err(Error::SegmentRejected { layer: l, part: p, segment: s })
                if l == layer && p == part && s == segment as u64
        ),
        "{case}: {:?}",
        opened.result
    );
    assert_released_exactly(opened, plain, segment);
}

/// How opening a damaged header failed.
#[derive(Debug)]
enum HeaderFailure {
    Parse(HeaderError),
    Keys(KeyError),
}

fn open_header_bytes(
    ring: &Keyring,
    bytes: &[u8],
    name: ObjectName<'_>,
) -> Result<DataKeys, HeaderFailure> {
    let header = Header::parse(bytes).map_err(HeaderFailure::Parse)?;
    block_on(ring.open(&header, name)).map_err(HeaderFailure::Keys)
}

/// Flips `bit` of `offset` in the fixture's header and opens it for the fixture's name.
fn open_with_flipped_header_bit(
    f: &mut Fixture,
    offset: usize,
    bit: u8,
) -> Result<DataKeys, HeaderFailure> {
    let mut bytes = f.header.to_bytes();
    flip_bit(&mut bytes, offset, bit);
    open_header_bytes(&f.ring, &bytes, NAME)
}

// ---------------------------------------------------------------------------------------
// The fixture itself

#[test]
fn untampered_fixture_opens_and_the_header_field_map_matches_the_header() {
    let f = fixture("ok");
    let opened = f.open(&f.stored);
    assert!(opened.result.is_ok(), "{:?}", opened.result);
    assert_eq!(opened.released, f.plain);
    assert_eq!(f.stored.len(), PLAIN_LEN + SEGMENTS * OVERHEAD_BYTES);
    let bytes = f.header.to_bytes();
    assert!(open_header_bytes(&f.ring, &bytes, NAME).is_ok());
    for layer in Layer::ALL {
        let r = layer_block_ranges(&f.header, layer);
        let b = f.header.layer(layer);
        assert_eq!(bytes[r.layer_id], layer.id());
        assert_eq!(usize::from(bytes[r.kek_id_len]), b.kek_id.len());
        assert_eq!(&bytes[r.kek_id], b.kek_id.as_bytes());
        let mut reference = Vec::new();
        b.bucket_key.write(&mut reference);
        assert_eq!(&bytes[r.bucket_key], &reference[..]);
        assert_eq!(&bytes[r.dek_nonce], &b.dek_nonce[..]);
        assert_eq!(&bytes[r.wrapped_dek], &b.wrapped_dek[..]);
        assert_eq!(&bytes[r.wrapped_dek_tag], &b.wrapped_dek_tag[..]);
        assert_eq!(&bytes[r.commitment.clone()], &b.commitment[..]);
        if layer == Layer::Outer {
            assert_eq!(r.commitment.end, bytes.len());
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. One flipped bit in each region of the header

/// What opening a header with one flipped bit must give.
#[derive(Debug, Clone, Copy)]
enum Expect {
    BadMagic,
    UnsupportedVersion(u8),
    Malformed,
    OuterDataKeyRejected,
}

impl Expect {
    fn holds(self, r: &Result<DataKeys, HeaderFailure>) -> bool {
        match self {
            Expect::BadMagic => matches!(r, Err(HeaderFailure::Parse(HeaderError::BadMagic))),
            Expect::UnsupportedVersion(found) => matches!(
                r,
                Err(HeaderFailure::Parse(HeaderError::UnsupportedVersion { found: v })) if *v == found
            ),
            Expect::Malformed => {
                matches!(r, Err(HeaderFailure::Parse(HeaderError::Malformed { .. })))
            }
            Expect::OuterDataKeyRejected => matches!(
                r,
                Err(HeaderFailure::Keys(KeyError::Envelope(
                    Error::DataKeyRejected {
                        layer: Layer::Outer
                    }
                )))
            ),
        }
    }
}

/// The flipped bits of a single-part object's header whose outcome needs no custodian to
/// name: (case, byte, bit, expected).
fn header_flips(header: &Header) -> Vec<(String, usize, u8, Expect)> {
    let mut cases = Vec::new();
    for offset in 0..4 {
        for bit in 0..8 {
            cases.push((
                format!("magic byte {offset}"),
                offset,
                bit,
                Expect::BadMagic,
            ));
        }
    }
    // Version 2: no single bit turns it into version 1 (2 ^ 1 = 3).
    for bit in 0..8 {
        let found = 2 ^ (1u8 << bit);
        let expect = Expect::UnsupportedVersion(found);
        cases.push((format!("version 2 -> {found}"), 4, bit, expect));
    }
    // The segment size's log2, 12: 13 and 14 are valid sizes, so the header parses; the
    // fixed bytes are authenticated by the data-key wraps, and the outer one is opened
    // first. 8, 4, 28, 44, 76 and 140 are out of range.
    for bit in 0..8 {
        let log2 = 12u8 ^ (1 << bit);
        let expect = if (12..=24).contains(&log2) {
            Expect::OuterDataKeyRejected
        } else {
            Expect::Malformed
        };
        cases.push((format!("segment size 12 -> {log2}"), 5, bit, expect));
    }
    // The multipart bit parses (an all-zero upload id is allowed) and fails authentication;
    // the other flag bits are undefined.
    for bit in 0..8 {
        let expect = if bit == 0 {
            Expect::OuterDataKeyRejected
        } else {
            Expect::Malformed
        };
        cases.push((format!("flag bit {bit}"), 6, bit, expect));
    }
    // A single-part object's upload id must be all zeros.
    for offset in [7, 15, 22] {
        cases.push((
            format!("upload id byte {offset}"),
            offset,
            3,
            Expect::Malformed,
        ));
    }
    for layer in Layer::ALL {
        let offset = layer_block_ranges(header, layer).layer_id;
        cases.push((format!("{layer} layer id"), offset, 0, Expect::Malformed));
    }
    cases
}

#[test]
fn header_bit_flip_in_the_fixed_part_or_a_layer_id_fails_as_the_table_says() {
    let mut f = fixture("h-fixed");
    for (case, offset, bit, expect) in header_flips(&f.header) {
        let r = open_with_flipped_header_bit(&mut f, offset, bit);
        assert!(
            expect.holds(&r),
            "{case} (byte {offset} bit {bit}): expected {expect:?}, got {r:?}"
        );
    }
}

#[test]
fn header_upload_id_bit_flip_on_a_multipart_object_is_rejected_by_the_outer_data_key() {
    let custody = Custody::new("h-upload-mp");
    let ring = custody.keyring(settings(segment_4k()));
    let (header, _keys) = block_on(ring.seal_new(NAME, Some([0x5a; 16]))).unwrap();
    for offset in [7, 15, 22] {
        let mut bytes = header.to_bytes();
        flip_bit(&mut bytes, offset, 3);
        let r = open_header_bytes(&ring, &bytes, NAME);
        assert!(
            Expect::OuterDataKeyRejected.holds(&r),
            "byte {offset}: {r:?}"
        );
    }
}

#[test]
fn header_kek_id_bit_flip_names_a_key_the_layers_token_does_not_hold() {
    let mut f = fixture("h-kekid");
    for layer in Layer::ALL {
        let r = layer_block_ranges(&f.header, layer);
        // 'k' -> 'j' and a flip in the last character: still printable, so it parses, and
        // the custodian refuses a KEK it is not configured with before asking its token.
        for (offset, bit) in [(r.kek_id.start, 0), (r.kek_id.end - 1, 1)] {
            let res = open_with_flipped_header_bit(&mut f, offset, bit);
            match res {
                Err(HeaderFailure::Keys(KeyError::UnknownKek {
                    layer: l,
                    ref kek_id,
                })) => {
                    assert_eq!(l, layer);
                    assert_ne!(*kek_id, kek_label(layer));
                }
                other => panic!("{layer} KEK id byte {offset} bit {bit}: {other:?}"),
            }
        }
        // The top bit makes it non-ASCII: not a header.
        let res = open_with_flipped_header_bit(&mut f, r.kek_id.start, 7);
        assert!(
            matches!(
                res,
                Err(HeaderFailure::Parse(HeaderError::Malformed { .. }))
            ),
            "{layer} KEK id top bit: {res:?}"
        );
    }
}

/// Format v2: the epoch and salt are in the data-key wrap's authenticated data, and they
/// choose the bucket key; a flipped bit gives another bucket key (the data key does not
/// open) or an epoch that has not begun (refused before any custodian call).
#[test]
fn header_bucket_key_reference_bit_flip_is_refused_in_that_layer() {
    let mut f = fixture("h-wbk");
    assert_eq!(f.header.version(), 2);
    for layer in Layer::ALL {
        let r = layer_block_ranges(&f.header, layer).bucket_key;
        let mid = (r.start + r.end) / 2;
        for offset in [r.start, r.start + 3, mid, r.end - 1] {
            match open_with_flipped_header_bit(&mut f, offset, 5) {
                Err(HeaderFailure::Keys(
                    KeyError::BucketKeyRejected { layer: l }
                    | KeyError::Envelope(Error::DataKeyRejected { layer: l }),
                )) => assert_eq!(l, layer, "byte {offset}"),
                other => panic!("{layer} bucket-key reference byte {offset}: {other:?}"),
            }
        }
    }
}

/// Format v1: the wrapped bucket key is the token's to refuse.
#[test]
fn v1_header_wrapped_bucket_key_bit_flip_is_refused_by_the_layers_token() {
    let custody = Custody::new("h-wbk1");
    let ring = custody.keyring(settings(segment_4k()));
    let (header, _) =
        block_on(ring.seal_new_in(NAME, None, FORMAT_VERSION_WRAPPED)).expect("v1 header");
    assert_eq!(header.version(), 1);
    for layer in Layer::ALL {
        let r = layer_block_ranges(&header, layer).bucket_key;
        let mid = (r.start + r.end) / 2;
        for offset in [r.start + 1, mid, r.end - 1] {
            let mut bytes = header.to_bytes();
            flip_bit(&mut bytes, offset, 5);
            match open_header_bytes(&ring, &bytes, NAME) {
                Err(HeaderFailure::Keys(KeyError::BucketKeyRejected { layer: l })) => {
                    assert_eq!(l, layer, "byte {offset}");
                }
                other => panic!("{layer} wrapped bucket key byte {offset}: {other:?}"),
            }
        }
    }
}

#[test]
fn header_data_key_nonce_ciphertext_or_tag_bit_flip_is_data_key_rejected_in_that_layer() {
    let mut f = fixture("h-dek");
    for layer in Layer::ALL {
        let r = layer_block_ranges(&f.header, layer);
        for (what, range) in [
            ("nonce", r.dek_nonce),
            ("wrapped data key", r.wrapped_dek),
            ("tag", r.wrapped_dek_tag),
        ] {
            for offset in [range.start, range.end - 1] {
                let res = open_with_flipped_header_bit(&mut f, offset, 2);
                match res {
                    Err(HeaderFailure::Keys(KeyError::Envelope(Error::DataKeyRejected {
                        layer: l,
                    }))) => assert_eq!(l, layer, "{what} byte {offset}"),
                    other => panic!("{layer} {what} byte {offset}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn header_commitment_bit_flip_is_key_commitment_mismatch_in_that_layer() {
    let mut f = fixture("h-commit");
    for layer in Layer::ALL {
        let r = layer_block_ranges(&f.header, layer).commitment;
        for offset in [r.start, r.end - 1] {
            let res = open_with_flipped_header_bit(&mut f, offset, 6);
            match res {
                Err(HeaderFailure::Keys(KeyError::Envelope(Error::KeyCommitmentMismatch {
                    layer: l,
                }))) => assert_eq!(l, layer, "byte {offset}"),
                other => panic!("{layer} commitment byte {offset}: {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. One flipped bit in a segment

/// Picks a byte of a stored segment, given the segment's range.
type ByteOf = fn(std::ops::Range<usize>) -> usize;

#[test]
fn segment_bit_flip_is_rejected_by_the_outer_layer_after_releasing_only_earlier_segments() {
    let f = fixture("s-flip");
    // (what, the byte in the stored segment's range, the bit). A flip in the inner tag is
    // under the outer layer, so the outer layer catches it.
    let flips: [(&str, ByteOf, u8); 3] = [
        ("body", |r| r.start + 100, 4),
        ("outer tag", |r| r.end - 1, 0),
        ("inner tag", |r| r.end - TAG_LEN_BYTES - 1, 0),
    ];
    for (what, at, bit) in flips {
        for k in 0..SEGMENTS {
            let mut stored = f.stored.clone();
            flip_bit(&mut stored, at(f.segment(k)), bit);
            let case = format!("{what} of segment {k}");
            assert_rejected_at(&f.open(&stored), &f.plain, (Layer::Outer, 0, k), &case);
        }
    }
}

/// The outer layer of one part, derived from the data keys as `envelope::segment`'s doc
/// comment specifies, from public parts only: the outer HKDF, `OuterAead`, the header's
/// fixed bytes.
struct OuterLayer {
    aead: OuterAead,
    prefix: [u8; 7],
    aad: Vec<u8>,
}

impl OuterLayer {
    fn new(header: &Header, keys: &DataKeys, part: u32) -> Self {
        let layer = Layer::Outer;
        let mut info = b"twofold/v1 segment".to_vec();
        info.push(layer.id());
        info.extend_from_slice(&header.upload_id);
        info.extend_from_slice(&part.to_be_bytes());
        let mut okm = [0u8; 32 + 7];
        kdf::derive(layer, keys.key(layer), &info, &mut okm).unwrap();
        let mut key = [0u8; 32];
        key.copy_from_slice(&okm[..32]);
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&okm[32..]);
        let mut aad = header.fixed_bytes().to_vec();
        aad.push(layer.id());
        aad.extend_from_slice(&part.to_be_bytes());
        Self {
            aead: OuterAead::new(&key).unwrap(),
            prefix,
            aad,
        }
    }

    fn nonce(&self, index: u32, last: bool) -> [u8; NONCE_LEN_BYTES] {
        let mut n = [0u8; NONCE_LEN_BYTES];
        n[..7].copy_from_slice(&self.prefix);
        n[7..11].copy_from_slice(&index.to_be_bytes());
        n[11] = u8::from(last);
        n
    }

    /// Removes the outer layer of stored segment `index`, lets `damage` alter the inner
    /// ciphertext ‖ inner tag, and seals the outer layer again over the result.
    fn reseal(&self, segment: &mut [u8], index: u32, last: bool, damage: impl FnOnce(&mut [u8])) {
        let nonce = self.nonce(index, last);
        let inner_len = self
            .aead
            .open_in_place(&nonce, &self.aad, segment)
            .expect("the derived outer layer opens the untampered segment");
        damage(&mut segment[..inner_len]);
        let tag = self
            .aead
            .seal_in_place(&nonce, &self.aad, &mut segment[..inner_len])
            .unwrap();
        segment[inner_len..].copy_from_slice(&tag);
    }
}

#[test]
fn outer_layer_resealed_over_unchanged_inner_ciphertext_still_opens() {
    let f = fixture("s-reseal");
    let outer = OuterLayer::new(&f.header, &f.keys, SINGLE_PART_NUMBER);
    let mut stored = f.stored.clone();
    for k in 0..SEGMENTS {
        let r = f.segment(k);
        outer.reseal(&mut stored[r], k as u32, k == SEGMENTS - 1, |_| {});
    }
    let opened = f.open(&stored);
    assert!(opened.result.is_ok(), "{:?}", opened.result);
    assert_eq!(opened.released, f.plain);
}

#[test]
fn inner_ciphertext_bit_flip_under_a_valid_outer_layer_is_rejected_by_the_inner_layer() {
    let f = fixture("s-inner");
    let outer = OuterLayer::new(&f.header, &f.keys, SINGLE_PART_NUMBER);
    for k in 0..SEGMENTS {
        let last = k == SEGMENTS - 1;
        for (what, at) in [("body", 0usize), ("inner tag", 1)] {
            let mut stored = f.stored.clone();
            let r = f.segment(k);
            outer.reseal(&mut stored[r], k as u32, last, |inner| {
                let offset = if at == 0 { 10 } else { inner.len() - 1 };
                flip_bit(inner, offset, 1);
            });
            let case = format!("segment {k}, {what}");
            assert_rejected_at(&f.open(&stored), &f.plain, (Layer::Inner, 0, k), &case);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3. Cut, extended and empty bodies

#[test]
fn last_segment_dropped_is_truncated_after_the_segment_before_it() {
    let f = fixture("t-drop");
    for dropped in 1..SEGMENTS {
        let keep = SEGMENTS - dropped;
        let stored = &f.stored[..f.segment(keep - 1).end];
        let opened = f.open(stored);
        assert!(
            matches!(
                opened.result,
                Err(Error::Truncated { part: 0, segment }) if segment == (keep - 1) as u64
            ),
            "{dropped} segment(s) dropped: {:?}",
            opened.result
        );
        // The last segment present cannot be told from a final one until it has failed
        // as final, so it is not released either.
        assert_released_exactly(&opened, &f.plain, keep - 1);
    }
}

#[test]
fn last_segment_cut_short_is_rejected_and_releases_only_whole_earlier_segments() {
    let f = fixture("t-cut");
    let last = f.segment(SEGMENTS - 1);
    for cut in [1usize, TAG_LEN_BYTES, 2 * TAG_LEN_BYTES, 500, 1000] {
        let stored = &f.stored[..last.end - cut];
        let case = format!("cut {cut} bytes");
        let at = (Layer::Outer, 0, SEGMENTS - 1);
        assert_rejected_at(&f.open(stored), &f.plain, at, &case);
    }
    // Fewer bytes than the two tags: a framing error.
    for left in [1usize, 31] {
        let stored = &f.stored[..last.start + left];
        let opened = f.open(stored);
        assert!(
            matches!(opened.result, Err(Error::Framing { part: 0, .. })),
            "{left} bytes left of the last segment: {:?}",
            opened.result
        );
        assert_released_exactly(&opened, &f.plain, SEGMENTS - 1);
    }
}

#[test]
fn bytes_appended_after_a_short_final_segment_are_rejected() {
    let f = fixture("t-append");
    for extra in [
        f.stored[f.segment(0)].to_vec(),
        f.stored[f.segment(SEGMENTS - 1)].to_vec(),
        vec![0u8; 1],
    ] {
        let mut stored = f.stored.clone();
        stored.extend_from_slice(&extra);
        let opened = f.open(&stored);
        // The final segment is read together with what follows it (or as a final segment
        // with extra bytes) and fails the outer tag check.
        let case = format!("{} bytes appended", extra.len());
        assert_rejected_at(&opened, &f.plain, (Layer::Outer, 0, SEGMENTS - 1), &case);
    }
}

#[test]
fn segment_appended_after_a_full_final_segment_is_rejected_at_the_final_segment() {
    let f = fixture_of_len("t-append-full", SEGMENTS * SEGMENT_BYTES);
    for extra in [f.stored[f.segment(0)].to_vec(), vec![0u8; 1]] {
        let mut stored = f.stored.clone();
        stored.extend_from_slice(&extra);
        let opened = f.open(&stored);
        // The final segment is followed by a byte, so it is opened as not final, and its
        // final flag makes it fail.
        let case = format!("{} bytes appended", extra.len());
        assert_rejected_at(&opened, &f.plain, (Layer::Outer, 0, SEGMENTS - 1), &case);
    }
}

#[test]
fn empty_stored_body_is_a_framing_error() {
    let f = fixture("t-empty");
    let opened = f.open(&[]);
    assert!(
        matches!(opened.result, Err(Error::Framing { part: 0, .. })),
        "{:?}",
        opened.result
    );
    assert!(opened.released.is_empty());
    // An empty object is one empty segment of 32 bytes, not zero bytes.
    let empty = fixture_of_len("t-empty-obj", 0);
    assert_eq!(empty.stored.len(), OVERHEAD_BYTES);
    assert!(empty.open(&[]).result.is_err());
}

// ---------------------------------------------------------------------------------------
// 4. and 5. Reordered and spliced segments

#[test]
fn swapped_segments_are_rejected_at_the_first_swapped_index() {
    let f = fixture("r-swap");
    for (i, j) in [(0usize, 1usize), (1, 3), (2, 3), (0, 3)] {
        let mut stored = f.stored.clone();
        let (a, b) = (f.segment(i), f.segment(j));
        let seg_i = f.stored[a.clone()].to_vec();
        stored[a].copy_from_slice(&f.stored[b.clone()]);
        stored[b].copy_from_slice(&seg_i);
        let case = format!("swap {i} and {j}");
        assert_rejected_at(&f.open(&stored), &f.plain, (Layer::Outer, 0, i), &case);
    }
}

#[test]
fn segment_spliced_from_another_object_of_the_same_bucket_and_size_is_rejected() {
    let f = fixture("r-splice");
    let other_name = ObjectName {
        bucket: NAME.bucket,
        key: "dir/other.bin",
    };
    let other_plain = random_bytes(PLAIN_LEN);
    let (other_header, _other_keys, other_stored) =
        seal_object_with_keys(&f.ring, other_name, &other_plain);
    // Same bucket, same window: the same bucket keys; only the data keys differ.
    assert_eq!(other_header.outer.bucket_key, f.header.outer.bucket_key);
    assert_eq!(other_stored.len(), f.stored.len());
    for k in 0..SEGMENTS {
        let mut stored = f.stored.clone();
        let r = f.segment(k);
        stored[r.clone()].copy_from_slice(&other_stored[r]);
        let case = format!("segment {k}");
        assert_rejected_at(&f.open(&stored), &f.plain, (Layer::Outer, 0, k), &case);
    }
    // And the other object's whole body under this object's header.
    let case = "the other object's body";
    assert_rejected_at(&f.open(&other_stored), &f.plain, (Layer::Outer, 0, 0), case);
}

// ---------------------------------------------------------------------------------------
// 6. Moved objects

#[test]
fn object_moved_to_another_bucket_or_key_is_data_key_rejected_in_the_outer_layer() {
    let f = fixture("m-moved");
    for to in [
        ObjectName {
            bucket: "another-bucket",
            key: NAME.key,
        },
        ObjectName {
            bucket: NAME.bucket,
            key: "dir/object.bin2",
        },
        ObjectName {
            bucket: NAME.bucket,
            key: "Dir/object.bin",
        },
        // The boundary between bucket and key is authenticated too.
        ObjectName {
            bucket: "tamper-bucketd",
            key: "ir/object.bin",
        },
    ] {
        let r = block_on(f.ring.open(&f.header, to));
        assert!(
            matches!(
                r,
                Err(KeyError::Envelope(Error::DataKeyRejected {
                    layer: Layer::Outer
                }))
            ),
            "{to:?}: {r:?}"
        );
    }
    assert!(block_on(f.ring.open(&f.header, NAME)).is_ok());
}

// ---------------------------------------------------------------------------------------
// 7. The wrong token

/// A keyring with `layer`'s custodian replaced by `spec`, the other layer's from `custody`.
fn keyring_with_custodian(custody: &Custody, layer: Layer, replacement: Custodian) -> Keyring {
    let other = open_custodian(
        match layer {
            Layer::Inner => Layer::Outer,
            Layer::Outer => Layer::Inner,
        },
        custody.spec(match layer {
            Layer::Inner => Layer::Outer,
            Layer::Outer => Layer::Inner,
        }),
    );
    let (inner, outer) = match layer {
        Layer::Inner => (replacement, other),
        Layer::Outer => (other, replacement),
    };
    Keyring::new(inner, outer, settings(segment_4k()))
}

/// Another token's KEK of the same label derives another epoch key, hence another bucket
/// key: the layer's data key does not open.
#[test]
fn another_token_holding_a_kek_of_the_same_label_is_refused_in_that_layer() {
    let f = fixture("w-same");
    for layer in Layer::ALL {
        let impostor = pkcs11_spec(&token(&format!("w-imp-{layer}")), &kek_label(layer));
        init_custodian(layer, &impostor);
        let ring = keyring_with_custodian(&f.custody, layer, open_custodian(layer, &impostor));
        let r = block_on(ring.open(&f.header, NAME));
        assert!(
            matches!(r, Err(KeyError::Envelope(Error::DataKeyRejected { layer: l })) if l == layer),
            "{layer}: {r:?}"
        );
    }
}

#[test]
fn a_token_without_the_kek_cannot_be_opened_as_the_layers_custodian() {
    for layer in Layer::ALL {
        let bare = pkcs11_spec(&token(&format!("w-bare-{layer}")), &kek_label(layer));
        match Custodian::open(layer, &bare) {
            Err(KeyError::Custody {
                layer: l,
                source: hsm_bridge::Error::KeyNotFound { key, .. },
            }) => {
                assert_eq!(l, layer);
                assert_eq!(key, kek_label(layer));
            }
            other => panic!("{layer}: {other:?}"),
        }
    }
}

#[test]
fn a_custodian_not_configured_with_the_headers_kek_refuses_it_without_asking_its_token() {
    let f = fixture("w-nokek");
    for layer in Layer::ALL {
        let other = pkcs11_spec(&token(&format!("w-other-{layer}")), "some-other-kek");
        init_custodian(layer, &other);
        let ring = keyring_with_custodian(&f.custody, layer, open_custodian(layer, &other));
        match block_on(ring.open(&f.header, NAME)) {
            Err(KeyError::UnknownKek { layer: l, kek_id }) => {
                assert_eq!(l, layer);
                assert_eq!(kek_id, kek_label(layer));
            }
            other => panic!("{layer}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// 8. Multipart parts opened as other parts

#[test]
fn part_opened_under_another_part_number_is_rejected_at_its_first_segment() {
    let custody = Custody::new("p-parts");
    let ring = custody.keyring(settings(segment_4k()));
    let upload: [u8; 16] = random_bytes(16).try_into().unwrap();
    let (header, keys) = block_on(ring.seal_new(NAME, Some(upload))).unwrap();
    let plains = [random_bytes(PLAIN_LEN), random_bytes(PLAIN_LEN)];
    let parts = [
        seal_part(&header, &keys, 1, &plains[0]),
        seal_part(&header, &keys, 2, &plains[1]),
    ];
    for (i, part) in [1u32, 2].into_iter().enumerate() {
        let ok = decrypt_part(&header, &keys, part, &parts[i]);
        assert!(ok.result.is_ok(), "part {part}: {:?}", ok.result);
        assert_eq!(ok.released, plains[i]);
        for wrong in [0u32, 1, 2, 3] {
            if wrong == part {
                continue;
            }
            let opened = decrypt_part(&header, &keys, wrong, &parts[i]);
            let case = format!("part {part} opened as {wrong}");
            assert_rejected_at(&opened, &plains[i], (Layer::Outer, wrong, 0), &case);
        }
    }
    // One segment of part 1 spliced into part 2 at the same index.
    let seg = segment_4k();
    for k in 0..SEGMENTS {
        let mut stored = parts[1].clone();
        let r = segment_range(seg, k, stored.len());
        stored[r.clone()].copy_from_slice(&parts[0][r]);
        let opened = decrypt_part(&header, &keys, 2, &stored);
        let case = format!("segment {k}");
        assert_rejected_at(&opened, &plains[1], (Layer::Outer, 2, k), &case);
    }
}
