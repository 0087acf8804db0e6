//! Twofold: an S3 gateway that stores every object body under two independent layers of
//! AES-256-GCM, with each layer's key under its own custodian.
#![deny(unsafe_code)]

pub mod cli;
pub mod config;
pub mod dev;
pub mod envelope;
pub mod hardening;
pub mod keys;
pub mod objmeta;
