//! The "md5" rows: one-core MD5 throughput of RustCrypto `md-5` and of the gateway's own
//! `twofold-md5` (AWS-LC's MD5), each hashing a long stream fed in fixed-size chunks, the
//! way the gateway hashes an upload's body for Content-MD5; and the "sha256" row: AWS-LC's
//! SHA-256 (through `aws-lc-rs`), which the gateway runs over every body whose client
//! signed its payload (`x-amz-content-sha256` with a hash, or signed aws-chunked).

use std::hint::black_box;

use md5::Digest;

use crate::BenchError;
use crate::measure::{Op, Row, Workload};

/// Group of the MD5 rows.
pub const GROUP_MD5: &str = "md5";
/// Row implementation name of RustCrypto `md-5` (portable Rust on x86-64).
pub const RUSTCRYPTO_NAME: &str = "md-5";
/// Row implementation name of the gateway's MD5 (crate `twofold-md5`).
pub const TWOFOLD_NAME: &str = "twofold-md5";
/// Row operation name: one `update` with a chunk.
pub const OPERATION: &str = "hash";

/// Group of the SHA-256 row.
pub const GROUP_SHA256: &str = "sha256";
/// Row implementation name of the gateway's payload SHA-256 (AWS-LC through `aws-lc-rs`).
pub const SHA256_NAME: &str = "aws-lc";

/// Chunk sizes fed to `update`, in bytes: 64 KiB (a segment) and 1 MiB.
pub const CHUNK_SIZES_BYTES: [usize; 2] = [64 << 10, 1 << 20];

/// Length of one hashed stream: after this many bytes the digest is finalised (timed
/// with the rest) and a new stream starts, so every stream is about an object part's size
/// and the finalisation's cost is counted in proportion.
pub const STREAM_BYTES: u64 = 64 << 20;

/// Both MD5 implementations at every size in [`CHUNK_SIZES_BYTES`], in table order.
pub fn workloads() -> Vec<Workload> {
    let mut all = Vec::new();
    for size in CHUNK_SIZES_BYTES {
        all.push(rustcrypto_workload(size));
        all.push(twofold_workload(size));
    }
    all.push(sha256_workload(CHUNK_SIZES_BYTES[0]));
    all
}

/// The gateway's payload SHA-256 fed `size`-byte chunks.
pub fn sha256_workload(size: usize) -> Workload {
    Workload {
        group: GROUP_SHA256,
        implementation: SHA256_NAME,
        operation: OPERATION,
        size_bytes: size,
        prepare: sha256_op,
    }
}

/// RustCrypto `md-5` fed `size`-byte chunks.
pub fn rustcrypto_workload(size: usize) -> Workload {
    Workload {
        group: GROUP_MD5,
        implementation: RUSTCRYPTO_NAME,
        operation: OPERATION,
        size_bytes: size,
        prepare: rustcrypto_op,
    }
}

/// The gateway's `twofold-md5` fed `size`-byte chunks.
pub fn twofold_workload(size: usize) -> Workload {
    Workload {
        group: GROUP_MD5,
        implementation: TWOFOLD_NAME,
        operation: OPERATION,
        size_bytes: size,
        prepare: twofold_op,
    }
}

/// All MD5 rows, measured one after the other.
pub fn all_rows(budget_s: f64) -> Result<Vec<Row>, BenchError> {
    workloads().iter().map(|w| w.measure(budget_s)).collect()
}

/// A chunk of sample data (a byte pattern, not zeros).
fn chunk(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

fn rustcrypto_op(size: usize) -> Result<Op, BenchError> {
    let data = chunk(size);
    let mut hasher = md5::Md5::new();
    let mut fed: u64 = 0;
    Ok(Box::new(move || {
        hasher.update(black_box(&data));
        fed += data.len() as u64;
        if fed >= STREAM_BYTES {
            black_box(std::mem::take(&mut hasher).finalize());
            fed = 0;
        }
        Ok(())
    }))
}

fn twofold_op(size: usize) -> Result<Op, BenchError> {
    let data = chunk(size);
    let mut hasher = twofold_md5::Md5::new();
    let mut fed: u64 = 0;
    Ok(Box::new(move || {
        hasher.update(black_box(&data));
        fed += data.len() as u64;
        if fed >= STREAM_BYTES {
            black_box(std::mem::replace(&mut hasher, twofold_md5::Md5::new()).finalize());
            fed = 0;
        }
        Ok(())
    }))
}

fn sha256_op(size: usize) -> Result<Op, BenchError> {
    let data = chunk(size);
    let new = || aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut hasher = new();
    let mut fed: u64 = 0;
    Ok(Box::new(move || {
        hasher.update(black_box(&data));
        fed += data.len() as u64;
        if fed >= STREAM_BYTES {
            black_box(std::mem::replace(&mut hasher, new()).finish());
            fed = 0;
        }
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both implementations agree on the digest of a stream fed in chunks, so the rows
    /// time the same work.
    #[test]
    fn implementations_agree() {
        let data = chunk(100_000);
        let mut a = md5::Md5::new();
        let mut b = twofold_md5::Md5::new();
        for piece in data.chunks(4096) {
            a.update(piece);
            b.update(piece);
        }
        assert_eq!(<[u8; 16]>::from(a.finalize()), b.finalize());
    }

    #[test]
    fn rows_run_briefly() {
        let rows = all_rows(0.001).unwrap();
        assert_eq!(rows.len(), CHUNK_SIZES_BYTES.len() * 2 + 1);
        assert!(rows.iter().any(|r| r.group == GROUP_MD5
            && r.implementation == TWOFOLD_NAME
            && r.operation == OPERATION
            && r.size_bytes == 65536));
        assert!(rows.iter().all(|r| r.gb_per_s > 0.0 && r.iterations > 0));
    }
}
