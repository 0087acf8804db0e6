//! MD5 as Twofold uses it: to verify a client's `Content-MD5` over a request body and the
//! `…-customer-key-MD5` of an SSE-C key. MD5 is not a security primitive here (both are
//! integrity checks a client asked for), but it is the largest CPU cost of a PUT that
//! carries `Content-MD5`, so it runs on the fastest implementation a Rust build has:
//! AWS-LC's (`MD5_Init`/`MD5_Update`/`MD5_Final`), which has an x86-64 assembly block
//! function, about 1.3 times the speed of RustCrypto's `md-5` on the machines measured
//! (docs/benchmarks.md). AWS-LC is linked already for the outer layer and TLS.
//!
//! This crate is the workspace's one FFI wrapper over AWS-LC's C API: the state is a plain
//! C struct held by value (no pointers into itself, so moving it is sound), each call is
//! given a valid pointer to it and to initialised input, and the state is zeroised when
//! dropped, since it holds the last partial block of what was hashed (an SSE-C key).
#![deny(unsafe_code)]
#![warn(missing_docs)]

use zeroize::Zeroize;

/// Length in bytes of an MD5 digest.
pub const DIGEST_LEN_BYTES: usize = 16;

/// An MD5 computation in progress.
pub struct Md5 {
    ctx: aws_lc_sys::MD5_CTX,
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5(AWS-LC, state hidden)")
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A fresh computation.
    pub fn new() -> Self {
        let mut ctx = aws_lc_sys::MD5_CTX {
            h: [0; 4],
            Nl: 0,
            Nh: 0,
            data: [0; 64],
            num: 0,
        };
        // SAFETY: `ctx` is a valid, exclusively borrowed MD5_CTX. MD5_Init only writes the
        // initial state into it and always returns 1.
        #[allow(unsafe_code)]
        unsafe {
            aws_lc_sys::MD5_Init(&mut ctx);
        }
        Self { ctx }
    }

    /// Hashes `data` after what came before.
    pub fn update(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // SAFETY: `self.ctx` was set up by MD5_Init and is exclusively borrowed; `data` is a
        // live, initialised slice of `data.len()` bytes that MD5_Update only reads. It
        // always returns 1.
        #[allow(unsafe_code)]
        unsafe {
            aws_lc_sys::MD5_Update(&mut self.ctx, data.as_ptr().cast(), data.len());
        }
    }

    /// The digest of everything hashed.
    pub fn finalize(mut self) -> [u8; DIGEST_LEN_BYTES] {
        let mut out = [0u8; DIGEST_LEN_BYTES];
        // SAFETY: `out` has room for the 16 bytes MD5_Final writes; `self.ctx` was set up by
        // MD5_Init and is exclusively borrowed. It always returns 1. `self` is dropped (and
        // its state zeroised) afterwards.
        #[allow(unsafe_code)]
        unsafe {
            aws_lc_sys::MD5_Final(out.as_mut_ptr(), &mut self.ctx);
        }
        out
    }
}

impl Drop for Md5 {
    fn drop(&mut self) {
        self.ctx.h.zeroize();
        self.ctx.data.zeroize();
        self.ctx.Nl.zeroize();
        self.ctx.Nh.zeroize();
        self.ctx.num.zeroize();
    }
}

/// The MD5 of `data` in one call.
pub fn digest(data: &[u8]) -> [u8; DIGEST_LEN_BYTES] {
    let mut h = Md5::new();
    h.update(data);
    h.finalize()
}

/// What this build's MD5 runs on, for benchmark and diagnostic reports.
pub const fn implementation() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "AWS-LC (x86-64 assembly)"
    } else {
        "AWS-LC (portable C)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::Digest;
    use proptest::prelude::*;

    fn hex(d: [u8; DIGEST_LEN_BYTES]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc_1321_test_suite() {
        let cases: [(&str, &str); 7] = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(digest(input.as_bytes())), want, "MD5({input:?})");
        }
    }

    #[test]
    fn a_state_moved_between_updates_still_hashes_right() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut h = Md5::new();
        h.update(&data[..33]);
        let mut boxed = Box::new(h);
        boxed.update(&data[33..70_001]);
        let h = *boxed;
        let mut v = vec![h];
        v[0].update(&data[70_001..]);
        let got = v.pop().map(Md5::finalize);
        assert_eq!(got, Some(md5::Md5::digest(&data).into()));
    }

    proptest! {
        /// Any input split at any points hashes as RustCrypto's md-5 hashes it whole.
        #[test]
        fn matches_rustcrypto_whatever_the_split(
            data in proptest::collection::vec(any::<u8>(), 0..4096),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            points.sort_unstable();
            let mut h = Md5::new();
            let mut at = 0;
            for p in points {
                h.update(&data[at..p]);
                at = p;
            }
            h.update(&data[at..]);
            let want: [u8; DIGEST_LEN_BYTES] = md5::Md5::digest(&data).into();
            prop_assert_eq!(h.finalize(), want);
        }
    }
}
