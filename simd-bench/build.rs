//! Declares the RustCrypto backend switches (`--cfg aes_backend="..."`,
//! `--cfg polyval_backend="soft"`, `--cfg md5_backend="soft"`) that `src/paths.rs` reads
//! to report which code paths the layers and MD5 take, so `cfg!` on them does not trip
//! `unexpected_cfgs`. A build script rather than a `[lints.rust]` table, which would stop
//! this crate inheriting the workspace lints.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(aes_backend, values(\"soft\", \"avx256\", \"avx512\"))");
    println!("cargo::rustc-check-cfg=cfg(polyval_backend, values(\"soft\"))");
    println!("cargo::rustc-check-cfg=cfg(md5_backend, values(\"soft\"))");
}
