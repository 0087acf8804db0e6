//! The envelope read path on arbitrary bytes: `Header::parse`, `objmeta::decode` (the
//! header as it travels in `x-amz-meta-twofold`), `record::decode`, `decode_record` and
//! `record::open` (the layout record, salted parts or not), `meta_record::open` and `decode` (the metadata record),
//! `checksum_record::open` (the sealed
//! checksum in `x-amz-meta-twofold-checksum`), and a `DecryptReader` with fixed data keys
//! (those of the format vectors in tests/vectors/: 4 KiB segments, single part) reading the input as a
//! stored body to the end.
//!
//! Checks: a parsed header serialises back to exactly its input; the reader returns errors,
//! never panics, never releases more than the input less 32 bytes per stored segment, and
//! after an error every further read fails too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::io::Read;
use std::sync::OnceLock;
use twofold::envelope::aead::Layer;
use twofold::envelope::checksum_record;
use twofold::envelope::meta_record;
use twofold::envelope::record;
use twofold::envelope::header::Header;
use twofold::envelope::layout::{SEGMENT_OVERHEAD_BYTES, SegmentSize};
use twofold::envelope::stream::DecryptReader;
use twofold::envelope::{
    BucketKey, DataKeys, ObjectName, SealParams, SegmentCipher, seal_header_with_nonces,
};
use twofold::envelope::objmeta;

/// Key byte i is `byte + i`, as in gateway/tests/format_vectors.rs.
fn fill(byte: u8) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = byte.wrapping_add(i as u8);
    }
    k
}

fn data_keys() -> DataKeys {
    DataKeys::from_bytes(fill(0x10), fill(0x20))
}

fn bucket_key(layer: Layer, seed: u8) -> BucketKey {
    BucketKey {
        layer,
        kek_id: format!("vector-{layer}-kek"),
        key: twofold::hardening::LockedKey::new(&fill(seed)),
        reference: twofold::envelope::header::BucketKeyRef::Derived {
            epoch: 0,
            salt: [seed; 16],
        },
    }
}

/// A format-v2 header for the first vector's object (`vectors` / `dir/object.bin`, 4 KiB
/// segments), with fixed bucket keys.
/// [`header`] as a multipart upload's (its fixed bytes are all that the salted layout and
/// checksum records bind).
fn multipart_header() -> &'static Header {
    static HEADER: OnceLock<Header> = OnceLock::new();
    HEADER.get_or_init(|| {
        let mut h = header().clone();
        h.multipart = true;
        h.upload_id = [0x5a; 16];
        h
    })
}

fn header() -> &'static Header {
    static HEADER: OnceLock<Header> = OnceLock::new();
    HEADER.get_or_init(|| {
        let seg = match SegmentSize::from_log2(12) {
            Ok(s) => s,
            Err(e) => panic!("segment size: {e:?}"),
        };
        let params = SealParams {
            segment_size: seg,
            upload_id: None,
            customer_key: false,
        };
        let name = ObjectName {
            bucket: "vectors",
            key: "dir/object.bin",
        };
        match seal_header_with_nonces(
            params,
            &data_keys(),
            &bucket_key(Layer::Inner, 0x30),
            &bucket_key(Layer::Outer, 0x40),
            name,
            [[0x51; 12], [0x52; 12]],
        ) {
            Ok(h) => h,
            Err(e) => panic!("sealing the fixed header: {e:?}"),
        }
    })
}

fn cipher() -> SegmentCipher {
    match SegmentCipher::new(header(), &data_keys(), 0) {
        Ok(c) => c,
        Err(e) => panic!("fixed segment cipher: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::parse(data) {
        assert_eq!(
            h.to_bytes(),
            data,
            "a parsed header does not serialise to its input"
        );
        assert_eq!(objmeta::decode(&objmeta::encode(&h)).ok(), Some(h));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(h) = objmeta::decode(text) {
            assert_eq!(Header::parse(&h.to_bytes()).ok(), Some(h));
        }
        let _ = objmeta::from_json(text);
        // The checksum record as it travels in `x-amz-meta-twofold-checksum`.
        if let Ok(rc) = checksum_record::cipher(header(), &data_keys())
            && let Ok(c) = checksum_record::open(&rc, text)
        {
            assert_eq!(c.digest.as_bytes().len(), c.algorithm.digest_len_bytes());
            assert_eq!(checksum_record::seal(&rc, &c).ok().as_deref(), Some(text));
        }
        // The salted checksum record of a multipart object: what opens seals and opens
        // again to the same checksum.
        let mh = multipart_header();
        if let Ok(c) = checksum_record::open_for(mh, &data_keys(), text) {
            let again = checksum_record::seal_for(mh, &data_keys(), &c).ok();
            let reopened = again.and_then(|v| checksum_record::open_for(mh, &data_keys(), &v).ok());
            assert_eq!(reopened, Some(c));
        }
        // The metadata record as it travels in `x-amz-meta-twofold-meta`: it opens only
        // under the fixed header and keys, and what opens seals and opens again.
        if let Ok(entries) = meta_record::open(header(), &data_keys(), text)
            && let Ok(Ok(again)) = meta_record::seal(header(), &data_keys(), &entries)
        {
            assert_eq!(meta_record::open(header(), &data_keys(), &again).ok(), Some(entries));
        }
    }
    // The metadata record's plaintext: a decoded record encodes back to its input.
    if let Ok(entries) = meta_record::decode(data) {
        assert_eq!(meta_record::encode(&entries).ok().as_deref(), Some(data));
    }
    // The layout record's plaintext: what decodes is a part list the encoder takes back,
    // and the sealed form never opens to anything under keys it was not sealed with.
    if let Ok((parts, numbers)) = record::decode_numbered(data) {
        assert!(!parts.is_empty() && parts.len() <= 10_000, "{} parts", parts.len());
        assert_eq!(parts.len(), numbers.len());
        assert!(numbers.windows(2).all(|w| w[0] < w[1]) && numbers[0] >= 1);
        assert!(numbers.last().is_some_and(|n| *n <= 10_000));
        let again = record::encode_numbered(&parts, Some(&numbers))
            .map(|e| record::decode_numbered(&e).ok());
        assert_eq!(again.ok().flatten(), Some((parts, numbers)));
    }
    // With what it says of the parts' salts: the flag comes back as it was.
    if let Ok(decoded) = record::decode_record(data) {
        let layout = twofold::envelope::layout::Layout::multipart(
            decoded.parts.clone(),
            twofold::envelope::layout::SegmentSize::DEFAULT,
        )
        .with_numbers(decoded.numbers.clone())
        .with_salts(decoded.salted);
        let again = record::encode_layout(&layout).map(|e| record::decode_record(&e).ok());
        assert_eq!(again.ok().flatten(), Some(decoded));
    }
    let _ = record::open(multipart_header(), &data_keys(), data, data.len() as u64);

    let cipher = cipher();
    let stored_segment = (cipher.segment_size().bytes() + SEGMENT_OVERHEAD_BYTES) as usize;
    let segments = data.len().div_ceil(stored_segment).max(1);
    let bound = data
        .len()
        .saturating_sub(segments * SEGMENT_OVERHEAD_BYTES as usize);

    let mut reader = DecryptReader::new(cipher, data);
    // Odd-sized reads, so segment boundaries fall inside a read.
    let mut buf = [0u8; 1000];
    let mut out = 0usize;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                assert!(n <= buf.len());
                out += n;
                assert!(
                    out <= bound,
                    "released {out} bytes from a {}-byte body",
                    data.len()
                );
            }
            Err(_) => {
                assert!(
                    reader.read(&mut buf).is_err(),
                    "a read after an error succeeded"
                );
                break;
            }
        }
    }
});
