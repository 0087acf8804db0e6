//! Which code path each layer takes on this CPU with this build: RustCrypto's choices
//! (runtime detection plus the `aes_backend`/`polyval_backend` cfgs it was compiled with)
//! for the inner layer, AWS-LC's (CPUID at run time) for the outer layer, and what the
//! gateway's MD5 runs on.
//!
//! RustCrypto's AES answer comes from the `aes` crate itself; the rest re-applies each
//! library's selection rules to the features the CPU reports, since neither POLYVAL nor
//! AWS-LC exposes its choice.

use serde::Serialize;

/// The code paths of both layers and of MD5.
#[derive(Debug, Clone, Serialize)]
pub struct Paths {
    /// The inner layer: `twofold-gcm` (AES from `aes`, GHASH of its own on VPCLMULQDQ, or
    /// RustCrypto's `aes-gcm` with GHASH from `polyval`).
    pub inner: InnerPath,
    /// The outer layer: AWS-LC's AES-GCM.
    pub outer: OuterPath,
    /// MD5: RustCrypto `md-5` and the gateway's `twofold-md5`.
    pub md5: Md5Path,
}

/// The inner layer's code path.
#[derive(Debug, Clone, Serialize)]
pub struct InnerPath {
    /// Whether the `aes` crate uses AES instructions here (`aes::hardware_accelerated()`).
    pub aes_hardware: bool,
    /// The `aes` backend in use, e.g. "AES-NI (x86_aes backend)".
    pub aes: &'static str,
    /// Whether GHASH uses carry-less multiply instructions here.
    pub ghash_clmul: bool,
    /// The GHASH in use: `twofold-gcm`'s VPCLMULQDQ code or a `polyval` backend.
    pub ghash: &'static str,
}

/// The outer layer's code path.
#[derive(Debug, Clone, Serialize)]
pub struct OuterPath {
    /// The AES-GCM implementation AWS-LC picks from the features below.
    pub aes_gcm: &'static str,
    /// The CPU features AWS-LC's choice depends on that this CPU reports (as the OS allows
    /// them to be used), in a fixed order.
    pub sees: Vec<&'static str>,
    /// The `OPENSSL_ia32cap` environment variable, which overrides AWS-LC's CPUID reading;
    /// when set, `aes_gcm` may be wrong.
    pub ia32cap_override: Option<String>,
}

/// MD5's code paths.
#[derive(Debug, Clone, Serialize)]
pub struct Md5Path {
    /// RustCrypto `md-5`.
    #[serde(rename = "md-5")]
    pub rustcrypto: &'static str,
    /// `twofold_md5::implementation()`.
    #[serde(rename = "twofold-md5")]
    pub twofold: &'static str,
}

/// Works out the paths for this CPU and build.
pub fn detect() -> Paths {
    let f = Features::detect();
    Paths {
        inner: inner_path(&f),
        outer: OuterPath {
            aes_gcm: outer_aes_gcm(&f),
            sees: f.names(),
            ia32cap_override: std::env::var("OPENSSL_ia32cap").ok(),
        },
        md5: Md5Path {
            rustcrypto: if cfg!(target_arch = "loongarch64") && !cfg!(md5_backend = "soft") {
                "LoongArch assembly"
            } else {
                "portable Rust"
            },
            twofold: twofold_md5::implementation(),
        },
    }
}

/// The CPU features the libraries' choices depend on, detected at run time (std's
/// detection, which like the libraries' own counts a feature only where the OS saves the
/// registers it uses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Features {
    aes: bool,
    pclmulqdq: bool,
    ssse3: bool,
    avx: bool,
    movbe: bool,
    avx512f: bool,
    avx512dq: bool,
    avx512bw: bool,
    avx512vl: bool,
    vaes: bool,
    vpclmulqdq: bool,
    /// aarch64: PMULL (polynomial multiply, for GHASH).
    pmull: bool,
}

impl Features {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    fn detect() -> Self {
        use std::arch::is_x86_feature_detected as has;
        Features {
            aes: has!("aes"),
            pclmulqdq: has!("pclmulqdq"),
            ssse3: has!("ssse3"),
            avx: has!("avx"),
            movbe: has!("movbe"),
            avx512f: has!("avx512f"),
            avx512dq: has!("avx512dq"),
            avx512bw: has!("avx512bw"),
            avx512vl: has!("avx512vl"),
            vaes: has!("vaes"),
            vpclmulqdq: has!("vpclmulqdq"),
            pmull: false,
        }
    }

    #[cfg(target_arch = "aarch64")]
    fn detect() -> Self {
        use std::arch::is_aarch64_feature_detected as has;
        Features {
            aes: has!("aes"),
            pmull: has!("pmull"),
            ..Features::default()
        }
    }

    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    fn detect() -> Self {
        Features::default()
    }

    /// The names of the features present, in declaration order.
    fn names(&self) -> Vec<&'static str> {
        [
            ("aes", self.aes),
            ("pclmulqdq", self.pclmulqdq),
            ("ssse3", self.ssse3),
            ("avx", self.avx),
            ("movbe", self.movbe),
            ("avx512f", self.avx512f),
            ("avx512dq", self.avx512dq),
            ("avx512bw", self.avx512bw),
            ("avx512vl", self.avx512vl),
            ("vaes", self.vaes),
            ("vpclmulqdq", self.vpclmulqdq),
            ("pmull", self.pmull),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect()
    }
}

/// The inner layer's path. `aes` 0.9 uses AES-NI when the CPU has it unless built with
/// `--cfg aes_backend="soft"`; its VAES backends exist only in builds with
/// `--cfg aes_backend="avx256"` or `"avx512"`, and then need VAES (detected with the ZMM
/// state enabled, hence the AVX-512 check) and, for the 512-bit one, AVX-512F. `polyval`
/// 0.7 uses PCLMULQDQ when the CPU has AVX and PCLMULQDQ (PMULL on aarch64) unless built
/// with `--cfg polyval_backend="soft"`. `twofold-gcm` replaces both with its own AES-GCM
/// where the CPU has AES-NI, VAES, PCLMULQDQ, VPCLMULQDQ and AVX-512 F/BW, unless built
/// with either of those cfgs set to "soft" (it says which path it took).
fn inner_path(f: &Features) -> InnerPath {
    let aes_hardware = aes::hardware_accelerated();
    let vaes_ok = f.vaes && f.avx512f;
    let wide = twofold_gcm::Path::detected() == twofold_gcm::Path::Avx512;
    let aes = if wide {
        twofold_gcm::Path::Avx512.aes()
    } else if !aes_hardware {
        "software (fixsliced, constant-time)"
    } else if cfg!(target_arch = "aarch64") {
        "ARMv8 AES instructions (aarch64_aes backend)"
    } else if cfg!(aes_backend = "avx512") && vaes_ok {
        "VAES, 512-bit (x86_vaes512 backend)"
    } else if (cfg!(aes_backend = "avx256") || cfg!(aes_backend = "avx512")) && vaes_ok {
        "VAES, 256-bit (x86_vaes256 backend)"
    } else if vaes_ok {
        "AES-NI, 128-bit (x86_aes backend; the CPU has VAES, but this build lacks \
         --cfg aes_backend=\"avx256\"|\"avx512\")"
    } else {
        "AES-NI, 128-bit (x86_aes backend)"
    };
    let ghash_clmul = !cfg!(polyval_backend = "soft")
        && if cfg!(target_arch = "aarch64") {
            f.aes
        } else {
            cfg!(any(target_arch = "x86", target_arch = "x86_64")) && f.avx && f.pclmulqdq
        };
    let ghash = if wide {
        twofold_gcm::Path::Avx512.ghash()
    } else if !ghash_clmul {
        "software (portable Rust)"
    } else if cfg!(target_arch = "aarch64") {
        "PMULL intrinsics"
    } else {
        "PCLMULQDQ intrinsics (needs avx + pclmulqdq)"
    };
    InnerPath {
        aes_hardware,
        aes,
        ghash_clmul,
        ghash,
    }
}

/// AWS-LC's AES-GCM choice on x86-64 Linux (crypto/fipsmodule/modes/gcm.c and
/// cipher/e_aes.c in aws-lc-sys 0.47): the VAES/VPCLMULQDQ AVX-512 code when the CPU has
/// VAES, VPCLMULQDQ and AVX-512 F/DQ/BW/VL; else the stitched AES-NI + PCLMULQDQ AVX code
/// when it has AES-NI, PCLMULQDQ, AVX and MOVBE; else AES-NI counter mode with a separate
/// GHASH; else bit-sliced/vector-permute AES (SSSE3) or portable C.
fn outer_aes_gcm(f: &Features) -> &'static str {
    if cfg!(target_arch = "x86_64") {
        let avx512 = f.vaes && f.vpclmulqdq && f.avx512f && f.avx512dq && f.avx512bw && f.avx512vl;
        if f.aes && avx512 {
            "VAES + VPCLMULQDQ, AVX-512 (aes_gcm_*_avx512)"
        } else if f.aes && f.pclmulqdq && f.avx && f.movbe {
            "AES-NI + PCLMULQDQ, stitched AVX (aesni_gcm_*)"
        } else if f.aes && f.pclmulqdq {
            "AES-NI counter mode + PCLMULQDQ GHASH"
        } else if f.aes {
            "AES-NI counter mode + SSSE3 GHASH"
        } else if f.ssse3 {
            "vector-permute AES (SSSE3), no AES-NI"
        } else {
            "portable C, no AES instructions"
        }
    } else if cfg!(target_arch = "aarch64") {
        if f.aes && f.pmull {
            "ARMv8 AES + PMULL"
        } else {
            "NEON or portable C, no AES instructions"
        }
    } else {
        "as AWS-LC picks on this architecture (not modelled here)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_picks_the_widest_path_the_cpu_allows() {
        if !cfg!(target_arch = "x86_64") {
            return;
        }
        let none = Features::default();
        assert!(outer_aes_gcm(&none).starts_with("portable C"));
        let aesni = Features {
            aes: true,
            pclmulqdq: true,
            ssse3: true,
            avx: true,
            movbe: true,
            ..none
        };
        assert!(outer_aes_gcm(&aesni).contains("stitched AVX"));
        let avx512 = Features {
            avx512f: true,
            avx512dq: true,
            avx512bw: true,
            avx512vl: true,
            vaes: true,
            vpclmulqdq: true,
            ..aesni
        };
        assert!(outer_aes_gcm(&avx512).contains("AVX-512"));
        // VAES without AVX-512 (e.g. Zen 3) stays on the AES-NI code.
        let vaes_only = Features {
            vaes: true,
            vpclmulqdq: true,
            ..aesni
        };
        assert!(outer_aes_gcm(&vaes_only).contains("stitched AVX"));
    }

    #[test]
    fn inner_report_is_consistent() {
        let p = detect();
        assert_eq!(p.inner.aes_hardware, !p.inner.aes.starts_with("software"));
        assert_eq!(p.inner.ghash_clmul, !p.inner.ghash.starts_with("software"));
    }
}
