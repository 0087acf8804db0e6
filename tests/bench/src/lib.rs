//! Twofold's end-to-end benchmark: an in-memory S3 backend ([`memstore`]), the helpers the
//! load generator and the driver share ([`stats`], [`procstat`], [`prom`]), and the
//! driver.s table ([`report`]). The binaries: `twofold-bench` (the driver),
//! `twofold-bench-s3` (the backend, in memory or s3s-fs) and `twofold-bench-load` (the
//! load generator on aws-sdk-s3). See docs/benchmarks.md.
#![forbid(unsafe_code)]

pub mod memstore;
pub mod procstat;
pub mod prom;
pub mod report;
pub mod stats;
