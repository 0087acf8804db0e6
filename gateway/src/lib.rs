//! Twofold: an S3 gateway that stores every object body under two independent layers of
//! AES-256-GCM, with each layer's key under its own custodian.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod dev;
#[cfg(feature = "dev-backend")]
pub mod devbackend;
#[cfg(not(feature = "dev-backend"))]
#[path = "devbackend_absent.rs"]
pub mod devbackend;
pub mod envelope;
pub mod hardening;
pub mod http;
pub mod inventory;
pub mod job_runner;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod notify;
pub mod private_file;
pub mod rewrap;
pub mod rotation;
pub mod s3;
pub mod serve;
pub mod sigv4;
pub mod telemetry;
pub mod tls;
