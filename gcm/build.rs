//! Declares `--cfg polyval_backend="soft"` and `--cfg aes_backend="..."`, RustCrypto's
//! switches to its software GHASH and AES, which also keep this crate off its own
//! instructions, so that `cfg` on them does not trip `unexpected_cfgs` (a build script
//! rather than a `[lints.rust]` table, which would stop the crate inheriting the
//! workspace lints).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(polyval_backend, values(\"soft\"))");
    println!("cargo::rustc-check-cfg=cfg(aes_backend, values(\"soft\", \"avx256\", \"avx512\"))");
}
