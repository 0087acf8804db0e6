//! Which CPU features the AES-GCM code can use here: detected at run time, and the ones
//! this binary was compiled to assume.

use serde::Serialize;

/// The CPU features that matter to AES-GCM speed.
#[derive(Debug, Clone, Serialize)]
pub struct CpuFeatures {
    /// `std::env::consts::ARCH`, e.g. "x86_64".
    pub arch: &'static str,
    /// Features the running CPU reports (on x86: aes, pclmulqdq, avx, avx2, avx512f, vaes,
    /// vpclmulqdq), in that order.
    pub detected: Vec<&'static str>,
    /// Of the same features, those the binary was compiled to assume (`-C target-feature`
    /// or `-C target-cpu`). RustCrypto's speed depends on these; AWS-LC picks its code
    /// paths at run time either way.
    pub compiled_in: Vec<&'static str>,
}

/// Reads the features of the CPU this runs on.
pub fn detect() -> CpuFeatures {
    CpuFeatures {
        arch: std::env::consts::ARCH,
        detected: detected(),
        compiled_in: compiled_in(),
    }
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
fn detected() -> Vec<&'static str> {
    let checks = [
        ("aes", std::arch::is_x86_feature_detected!("aes")),
        (
            "pclmulqdq",
            std::arch::is_x86_feature_detected!("pclmulqdq"),
        ),
        ("avx", std::arch::is_x86_feature_detected!("avx")),
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ("vaes", std::arch::is_x86_feature_detected!("vaes")),
        (
            "vpclmulqdq",
            std::arch::is_x86_feature_detected!("vpclmulqdq"),
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
}

#[cfg(target_arch = "aarch64")]
fn detected() -> Vec<&'static str> {
    let checks = [
        ("aes", std::arch::is_aarch64_feature_detected!("aes")),
        ("pmull", std::arch::is_aarch64_feature_detected!("pmull")),
        ("sha3", std::arch::is_aarch64_feature_detected!("sha3")),
    ];
    checks
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
fn detected() -> Vec<&'static str> {
    Vec::new()
}

fn compiled_in() -> Vec<&'static str> {
    let checks = [
        ("aes", cfg!(target_feature = "aes")),
        ("pclmulqdq", cfg!(target_feature = "pclmulqdq")),
        ("avx", cfg!(target_feature = "avx")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("vaes", cfg!(target_feature = "vaes")),
        ("vpclmulqdq", cfg!(target_feature = "vpclmulqdq")),
    ];
    checks
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
}
