//! The rows of the report: each AES-256-GCM layer alone, and the full dual-layer envelope.

use std::hint::black_box;

use twofold::envelope::aead::{
    InnerAead, KEY_LEN_BYTES, Layer, NONCE_LEN_BYTES, OuterAead, TAG_LEN_BYTES,
};
use twofold::envelope::header::Header;
use twofold::envelope::layout::{
    SEGMENT_OVERHEAD_BYTES, SegmentSize, segment_count, segment_plain_len, stored_len,
};
use twofold::envelope::{
    BucketKey, DataKeys, ObjectName, SINGLE_PART_NUMBER, SealParams, SegmentCipher, open_header,
    seal_header,
};

const OVERHEAD: usize = SEGMENT_OVERHEAD_BYTES as usize;

use crate::BenchError;
use crate::measure::{Op, Row, Workload};

/// Buffer sizes measured, in bytes: 4 KiB, 64 KiB and 1 MiB.
pub const SIZES_BYTES: [usize; 3] = [4 << 10, 64 << 10, 1 << 20];

/// Group of the rows that measure one layer's AES-256-GCM on its own.
pub const GROUP_SINGLE_LAYER: &str = "single layer";
/// Group of the rows that measure the whole envelope, both layers (see [`workloads`]).
pub const GROUP_DUAL_LAYER: &str = "dual layer";

const INNER_NAME: &str = "inner (twofold-gcm)";
/// The inner layer forced onto RustCrypto's `aes-gcm`, the path of CPUs without VAES and
/// VPCLMULQDQ.
const INNER_RUSTCRYPTO_NAME: &str = "RustCrypto aes-gcm (inner, no AVX-512 path)";
const OUTER_NAME: &str = "outer (AWS-LC)";

/// A fixed key: the benchmark measures speed, not secrecy.
const BENCH_KEY: [u8; KEY_LEN_BYTES] = [0x42; KEY_LEN_BYTES];
/// Additional data passed with every operation, about the size of a segment's AAD.
const BENCH_AAD: &[u8] = b"simd-bench aad..";

/// All rows, in table order: single layer first, then dual layer.
pub fn all_rows(budget_s: f64) -> Result<Vec<Row>, BenchError> {
    workloads().iter().map(|w| w.measure(budget_s)).collect()
}

/// Every workload, in table order: seal and open of each layer alone at every size in
/// [`SIZES_BYTES`], then seal and open through the full dual-layer envelope at every size.
///
/// Dual layer: seal and open of a whole object through the envelope, doing per object what
/// the gateway does apart from I/O. Seal: fresh data keys, the header (data keys wrapped
/// under cached bucket keys), the part's segment keys, and every segment sealed in place
/// (64 KiB segments). Open: the header opened (unwrap and commitment check), the segment
/// keys, and every segment copied into a work buffer and opened in place (the copy stands
/// for the read from the backend).
pub fn workloads() -> Vec<Workload> {
    let mut all = Vec::new();
    for size in SIZES_BYTES {
        all.extend([
            inner_seal_workload(size),
            single(INNER_NAME, "open", size, inner_open),
            single(INNER_RUSTCRYPTO_NAME, "seal", size, inner_rustcrypto_seal),
            outer_seal_workload(size),
            single(OUTER_NAME, "open", size, outer_open),
        ]);
    }
    for size in SIZES_BYTES {
        all.extend([dual_seal_workload(size), dual_open_workload(size)]);
    }
    all
}

fn single(
    implementation: &'static str,
    operation: &'static str,
    size_bytes: usize,
    prepare: fn(usize) -> Result<Op, BenchError>,
) -> Workload {
    Workload {
        group: GROUP_SINGLE_LAYER,
        implementation,
        operation,
        size_bytes,
        prepare,
    }
}

fn dual(
    operation: &'static str,
    size_bytes: usize,
    prepare: fn(usize) -> Result<Op, BenchError>,
) -> Workload {
    Workload {
        group: GROUP_DUAL_LAYER,
        implementation: DUAL_NAME,
        operation,
        size_bytes,
        prepare,
    }
}

/// The inner layer alone sealing `size`-byte buffers.
pub fn inner_seal_workload(size: usize) -> Workload {
    single(INNER_NAME, "seal", size, inner_seal)
}

/// The outer layer alone sealing `size`-byte buffers.
pub fn outer_seal_workload(size: usize) -> Workload {
    single(OUTER_NAME, "seal", size, outer_seal)
}

/// A whole `size`-byte object sealed through the dual-layer envelope.
pub fn dual_seal_workload(size: usize) -> Workload {
    dual("seal", size, dual_seal)
}

/// A whole `size`-byte object opened through the dual-layer envelope.
pub fn dual_open_workload(size: usize) -> Workload {
    dual("open", size, dual_open)
}

const DUAL_NAME: &str = "envelope (inner + outer)";
const BENCH_OBJECT: ObjectName<'static> = ObjectName {
    bucket: "bench",
    key: "object",
};

fn bench_bucket_key(layer: Layer) -> BucketKey {
    BucketKey {
        layer,
        kek_id: format!("bench-{layer}"),
        key: twofold::hardening::LockedKey::new(&BENCH_KEY),
        reference: twofold::envelope::header::BucketKeyRef::Derived {
            epoch: 0,
            salt: [0x5a; 16],
        },
    }
}

fn seal_params() -> SealParams {
    SealParams {
        segment_size: SegmentSize::DEFAULT,
        upload_id: None,
        customer_key: false,
    }
}

/// Seals `plain` as a whole object into `stored` (laid out segment by segment).
fn seal_object(
    inner_bk: &BucketKey,
    outer_bk: &BucketKey,
    plain_len: usize,
    stored: &mut [u8],
) -> Result<Header, BenchError> {
    let crypto = |_| BenchError::Crypto("envelope seal");
    let keys = DataKeys::generate().map_err(crypto)?;
    let header =
        seal_header(seal_params(), &keys, inner_bk, outer_bk, BENCH_OBJECT).map_err(crypto)?;
    let cipher = SegmentCipher::new(&header, &keys, SINGLE_PART_NUMBER).map_err(crypto)?;
    let seg = SegmentSize::DEFAULT.bytes_usize();
    let n = segment_count(plain_len as u64, SegmentSize::DEFAULT);
    let mut offset = 0;
    for i in 0..n {
        let len = segment_plain_len(plain_len as u64, i, SegmentSize::DEFAULT) as usize;
        let end = offset + len + OVERHEAD;
        cipher
            .seal(i, i + 1 == n, &mut stored[offset..end], len)
            .map_err(crypto)?;
        offset = end;
        debug_assert!(len <= seg);
    }
    Ok(header)
}

/// The stored form of a `size`-byte object with its plaintext laid out where each
/// segment's plaintext goes, ready to be sealed in place.
fn laid_out_plaintext(size: usize) -> Vec<u8> {
    let mut stored = vec![0u8; stored_len(size as u64, SegmentSize::DEFAULT) as usize];
    let plain = sample(size);
    let seg = SegmentSize::DEFAULT.bytes_usize();
    for (i, chunk) in plain.chunks(seg).enumerate() {
        let at = i * (seg + OVERHEAD);
        stored[at..at + chunk.len()].copy_from_slice(chunk);
    }
    stored
}

fn dual_seal(size: usize) -> Result<Op, BenchError> {
    let (inner_bk, outer_bk) = (
        bench_bucket_key(Layer::Inner),
        bench_bucket_key(Layer::Outer),
    );
    // Later iterations seal the previous ciphertext, which costs the same.
    let mut stored = laid_out_plaintext(size);
    Ok(Box::new(move || {
        let header = seal_object(&inner_bk, &outer_bk, size, black_box(&mut stored))?;
        black_box(header);
        Ok(())
    }))
}

fn dual_open(size: usize) -> Result<Op, BenchError> {
    let (inner_bk, outer_bk) = (
        bench_bucket_key(Layer::Inner),
        bench_bucket_key(Layer::Outer),
    );
    let mut stored = laid_out_plaintext(size);
    let header = seal_object(&inner_bk, &outer_bk, size, &mut stored)?;
    let seg = SegmentSize::DEFAULT.bytes_usize();
    let mut work = vec![0u8; seg + OVERHEAD];
    let n = segment_count(size as u64, SegmentSize::DEFAULT);
    Ok(Box::new(move || {
        let crypto = |_| BenchError::Crypto("envelope open");
        let keys = open_header(
            black_box(&header),
            &inner_bk.key,
            &outer_bk.key,
            BENCH_OBJECT,
        )
        .map_err(crypto)?;
        let cipher = SegmentCipher::new(&header, &keys, SINGLE_PART_NUMBER).map_err(crypto)?;
        let mut offset = 0;
        for i in 0..n {
            let len = segment_plain_len(size as u64, i, SegmentSize::DEFAULT) as usize + OVERHEAD;
            work[..len].copy_from_slice(&stored[offset..offset + len]);
            let plain_len = cipher
                .open(i, i + 1 == n, &mut work[..len])
                .map_err(crypto)?;
            black_box(&work[..plain_len]);
            offset += len;
        }
        Ok(())
    }))
}

/// A sample plaintext of `size` bytes (a byte pattern, not zeros).
fn sample(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// Nonce number `n`: a counter in the last 8 bytes, so no two seals share a nonce.
fn counter_nonce(n: u64) -> [u8; NONCE_LEN_BYTES] {
    let mut nonce = [0u8; NONCE_LEN_BYTES];
    nonce[NONCE_LEN_BYTES - 8..].copy_from_slice(&n.to_be_bytes());
    nonce
}

/// The inner layer's AEAD with a key of its own (the same bytes each time: the benchmark
/// measures speed, not secrecy).
fn inner_aead() -> InnerAead {
    InnerAead::new(&BENCH_KEY)
}

/// The outer layer's AEAD with a key of its own.
fn outer_aead() -> Result<OuterAead, BenchError> {
    OuterAead::new(&BENCH_KEY).map_err(|_| BenchError::Crypto("outer key setup"))
}

fn inner_seal(size: usize) -> Result<Op, BenchError> {
    seal_with(inner_aead(), size)
}

fn inner_rustcrypto_seal(size: usize) -> Result<Op, BenchError> {
    seal_with(InnerAead::rustcrypto(&BENCH_KEY), size)
}

fn seal_with(aead: InnerAead, size: usize) -> Result<Op, BenchError> {
    let mut buf = sample(size);
    let mut n: u64 = 0;
    Ok(Box::new(move || {
        n += 1;
        let tag = aead
            .seal_in_place(
                &black_box(counter_nonce(n)),
                black_box(BENCH_AAD),
                black_box(&mut buf),
            )
            .map_err(|_| BenchError::Crypto("inner seal"))?;
        black_box(tag);
        Ok(())
    }))
}

fn outer_seal(size: usize) -> Result<Op, BenchError> {
    let aead = outer_aead()?;
    let mut buf = sample(size);
    let mut n: u64 = 0;
    Ok(Box::new(move || {
        n += 1;
        let tag = aead
            .seal_in_place(
                &black_box(counter_nonce(n)),
                black_box(BENCH_AAD),
                black_box(&mut buf),
            )
            .map_err(|_| BenchError::Crypto("outer seal"))?;
        black_box(tag);
        Ok(())
    }))
}

/// Two ciphertexts that open into each other under one nonce, so the open loop needs no
/// copy. GCM encrypts with a keystream XOR: if sealing `p` gives `(c, tag_c)`, then sealing
/// `c` under the same nonce gives back `p` with a tag `tag_p` that authenticates `p` as a
/// ciphertext. Opening `(c, tag_c)` turns the buffer into `p`; opening `(p, tag_p)` turns it
/// back into `c`. Each open is a full, successful verify-and-decrypt.
struct OpenPair {
    nonce: [u8; NONCE_LEN_BYTES],
    /// Holds `c` at the start.
    buf: Vec<u8>,
    tag_c: [u8; TAG_LEN_BYTES],
    tag_p: [u8; TAG_LEN_BYTES],
}

fn open_pair(
    size: usize,
    mut seal: impl FnMut(&[u8; NONCE_LEN_BYTES], &mut [u8]) -> Result<[u8; TAG_LEN_BYTES], BenchError>,
) -> Result<OpenPair, BenchError> {
    let nonce = counter_nonce(0);
    let p = sample(size);
    let mut buf = p.clone();
    let tag_c = seal(&nonce, &mut buf)?;
    let c = buf.clone();
    let tag_p = seal(&nonce, &mut buf)?;
    if buf != p {
        return Err(BenchError::Crypto(
            "sealing twice under one nonce did not give back the plaintext",
        ));
    }
    Ok(OpenPair {
        nonce,
        buf: c,
        tag_c,
        tag_p,
    })
}

fn inner_open(size: usize) -> Result<Op, BenchError> {
    let aead = inner_aead();
    let OpenPair {
        nonce,
        mut buf,
        tag_c,
        tag_p,
    } = open_pair(size, |nonce, buf| {
        aead.seal_in_place(nonce, BENCH_AAD, buf)
            .map_err(|_| BenchError::Crypto("inner seal"))
    })?;
    let mut holds_c = true;
    Ok(Box::new(move || {
        let tag = if holds_c { &tag_c } else { &tag_p };
        aead.open_in_place(
            black_box(&nonce),
            black_box(BENCH_AAD),
            black_box(&mut buf),
            tag,
        )
        .map_err(|_| BenchError::Crypto("inner open refused its own ciphertext"))?;
        holds_c = !holds_c;
        Ok(())
    }))
}

fn outer_open(size: usize) -> Result<Op, BenchError> {
    let aead = outer_aead()?;
    let OpenPair {
        nonce,
        buf: c,
        tag_c,
        tag_p,
    } = open_pair(size, |nonce, buf| {
        aead.seal_in_place(nonce, BENCH_AAD, buf)
            .map_err(|_| BenchError::Crypto("outer seal"))
    })?;
    // AWS-LC takes ciphertext ‖ tag in one buffer; only the 16 tag bytes are rewritten
    // between calls.
    let mut buf = c;
    buf.extend_from_slice(&tag_c);
    let mut holds_c = true;
    Ok(Box::new(move || {
        let len = aead
            .open_in_place(black_box(&nonce), black_box(BENCH_AAD), black_box(&mut buf))
            .map_err(|_| BenchError::Crypto("outer open refused its own ciphertext"))?;
        holds_c = !holds_c;
        let next_tag = if holds_c { &tag_c } else { &tag_p };
        buf[len..].copy_from_slice(next_tag);
        Ok(())
    }))
}
