//! AES-256-GCM on VAES and VPCLMULQDQ: sixteen blocks per step, in 512-bit registers.
//!
//! **AES.** The round keys are AES-256's key schedule (FIPS 197, 5.2) computed with
//! AESKEYGENASSIST; a block is encrypted by XOR with round key 0, thirteen AESENC and one
//! AESENCLAST. Counter mode (SP 800-38D, 6.5) encrypts sixteen counter blocks per step,
//! four per register: each lane holds `IV ‖ counter` with the counter as a native 32-bit
//! integer, incremented with a 32-bit add (so it wraps, as `inc32` does) and byte-swapped
//! into big-endian order by a shuffle just before the rounds.
//!
//! **GHASH** is POLYVAL over byte-reversed blocks (RFC 8452, Appendix A), as RustCrypto's
//! `ghash` computes it: with `H' = mulX_POLYVAL(ByteReverse(H))`,
//! `GHASH(H, X_1..X_n) = ByteReverse(POLYVAL(H', ByteReverse(X_1)..ByteReverse(X_n)))`.
//! POLYVAL's product is `dot(a, b) = a·b·x^-128 mod x^128 + x^127 + x^126 + x^121 + 1`,
//! and `dot(acc ⊕ X_1, H'^16) ⊕ dot(X_2, H'^15) ⊕ … ⊕ dot(X_16, H'^1)` (with `H'^k` the
//! k-th power under `dot`) is sixteen sequential steps. Each step multiplies four 128-bit
//! lanes per instruction, XORs the sixteen unreduced 256-bit products and reduces once,
//! with the two-fold Montgomery reduction of Gueron's AES-GCM-SIV code.
//!
//! Sealing runs counter mode and GHASH in one pass over each 256-byte step, the ciphertext
//! hashed from the registers it was computed in. Opening hashes the whole ciphertext first
//! and decrypts only after the tag has verified.
//!
//! Every instruction here runs in time independent of its operands (AES rounds,
//! carry-less multiply, XOR, shuffles, adds, loads and stores): no table lookups, no
//! branches on data. Round keys and key powers are zeroised on drop.

#![allow(unsafe_code)]

use zeroize::Zeroize;

/// Blocks of sixteen bytes per step: four 512-bit registers.
const BLOCKS_PER_STEP: usize = 16;
/// Bytes per step.
const STEP_BYTES: usize = BLOCKS_PER_STEP * 16;
/// AES-256 round keys.
const ROUND_KEYS: usize = 15;

/// The expanded key of one AES-256-GCM key.
pub(crate) struct Wide {
    /// AES-256 round keys 0..14, each as the little-endian integer of its 16 bytes.
    round_keys: [u128; ROUND_KEYS],
    /// `H'^16 .. H'^1` in POLYVAL's domain, in the order the sixteen blocks of a step meet
    /// them (block `j` of a step is multiplied by `H'^(16 - j)`).
    powers: [u128; BLOCKS_PER_STEP],
}

impl Drop for Wide {
    fn drop(&mut self) {
        self.round_keys.zeroize();
        self.powers.zeroize();
    }
}

impl Wide {
    /// Whether this CPU and build can take the wide path: x86-64 with AES-NI, VAES,
    /// PCLMULQDQ, VPCLMULQDQ and AVX-512 F and BW, and no `--cfg polyval_backend="soft"`
    /// or `--cfg aes_backend="soft"` (the switches that force RustCrypto's software code).
    pub(crate) fn available() -> bool {
        #[cfg(all(
            target_arch = "x86_64",
            not(polyval_backend = "soft"),
            not(aes_backend = "soft")
        ))]
        {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("aes")
                && std::is_x86_feature_detected!("vaes")
                && std::is_x86_feature_detected!("pclmulqdq")
                && std::is_x86_feature_detected!("vpclmulqdq")
        }
        #[cfg(not(all(
            target_arch = "x86_64",
            not(polyval_backend = "soft"),
            not(aes_backend = "soft")
        )))]
        {
            false
        }
    }

    /// The expanded `key`, or `None` without the instructions.
    pub(crate) fn new(key: &[u8; 32]) -> Option<Self> {
        if !Self::available() {
            return None;
        }
        #[cfg(target_arch = "x86_64")]
        {
            let mut wide = Self {
                round_keys: [0; ROUND_KEYS],
                powers: [0; BLOCKS_PER_STEP],
            };
            // SAFETY: `available()` has just found every feature `x86::expand` enables.
            unsafe { x86::expand(key, &mut wide.round_keys, &mut wide.powers) };
            Some(wide)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = key;
            None
        }
    }

    /// Encrypts `buf` in place under `nonce` and returns the tag.
    pub(crate) fn seal(&self, nonce: &[u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: a `Wide` exists only where `new` found the features `x86::seal`
            // enables (`available()`); CPU features do not go away at run time.
            unsafe { x86::seal(self, nonce, aad, buf) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (nonce, aad, buf);
            unreachable!("Wide::new returns None off x86-64")
        }
    }

    /// The tag `buf` (ciphertext) should carry under `nonce` and `aad`.
    pub(crate) fn tag(&self, nonce: &[u8; 12], aad: &[u8], buf: &[u8]) -> [u8; 16] {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `seal`.
            unsafe { x86::tag(self, nonce, aad, buf) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (nonce, aad, buf);
            unreachable!("Wide::new returns None off x86-64")
        }
    }

    /// XORs `buf` with the keystream of `nonce` (counter mode from inc32(J0)).
    pub(crate) fn apply_keystream(&self, nonce: &[u8; 12], buf: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: as in `seal`.
            unsafe { x86::apply_keystream(self, nonce, buf) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (nonce, buf);
            unreachable!("Wide::new returns None off x86-64")
        }
    }
}

/// `mulX_POLYVAL` (RFC 8452, Appendix A): multiplication by `x`, in constant time.
pub(crate) fn mulx(v: u128) -> u128 {
    const POLY: u128 = (0xC2 << 120) | 1;
    let top = v >> 127;
    (v << 1) ^ (0u128.wrapping_sub(top) & POLY)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCKS_PER_STEP, ROUND_KEYS, STEP_BYTES, Wide, mulx};
    use core::arch::x86_64::*;

    /// `x^127 + x^126 + x^121` in the high qword and `1` in the low: the reduction constant.
    const POLY_HI: u64 = 0xC200_0000_0000_0000;

    #[inline]
    #[target_feature(enable = "sse2")]
    fn load(v: u128) -> __m128i {
        _mm_set_epi64x((v >> 64) as u64 as i64, v as u64 as i64)
    }

    #[inline]
    #[target_feature(enable = "sse2,sse4.1")]
    fn store(v: __m128i) -> u128 {
        let lo = _mm_cvtsi128_si64(v) as u64;
        let hi = _mm_extract_epi64::<1>(v) as u64;
        (u128::from(hi) << 64) | u128::from(lo)
    }

    // ---- AES-256 ----

    /// `k ⊕ (k << 32) ⊕ (k << 64) ⊕ (k << 96)`: the running XOR of a key schedule row.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn spread(k: __m128i) -> __m128i {
        let k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        let k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
        _mm_xor_si128(k, _mm_slli_si128::<4>(k))
    }

    /// Next even round key: `spread(a) ⊕ SubWord(RotWord(last word of b)) ⊕ rcon`.
    #[inline]
    #[target_feature(enable = "aes,sse2")]
    fn even<const RCON: i32>(a: __m128i, b: __m128i) -> __m128i {
        let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<RCON>(b));
        _mm_xor_si128(spread(a), t)
    }

    /// Next odd round key: `spread(b) ⊕ SubWord(last word of a)`.
    #[inline]
    #[target_feature(enable = "aes,sse2")]
    fn odd(a: __m128i, b: __m128i) -> __m128i {
        let t = _mm_shuffle_epi32::<0xaa>(_mm_aeskeygenassist_si128::<0>(a));
        _mm_xor_si128(spread(b), t)
    }

    /// AES-256's fifteen round keys (FIPS 197, 5.2).
    #[target_feature(enable = "aes,sse2,sse4.1")]
    fn key_schedule(key: &[u8; 32], out: &mut [u128; ROUND_KEYS]) {
        use zeroize::Zeroize;
        let mut rk = [_mm_setzero_si128(); ROUND_KEYS];
        let (mut lo, mut hi) = ([0u8; 16], [0u8; 16]);
        lo.copy_from_slice(&key[..16]);
        hi.copy_from_slice(&key[16..]);
        rk[0] = load(u128::from_le_bytes(lo));
        rk[1] = load(u128::from_le_bytes(hi));
        lo.zeroize();
        hi.zeroize();
        rk[2] = even::<0x01>(rk[0], rk[1]);
        rk[3] = odd(rk[2], rk[1]);
        rk[4] = even::<0x02>(rk[2], rk[3]);
        rk[5] = odd(rk[4], rk[3]);
        rk[6] = even::<0x04>(rk[4], rk[5]);
        rk[7] = odd(rk[6], rk[5]);
        rk[8] = even::<0x08>(rk[6], rk[7]);
        rk[9] = odd(rk[8], rk[7]);
        rk[10] = even::<0x10>(rk[8], rk[9]);
        rk[11] = odd(rk[10], rk[9]);
        rk[12] = even::<0x20>(rk[10], rk[11]);
        rk[13] = odd(rk[12], rk[11]);
        rk[14] = even::<0x40>(rk[12], rk[13]);
        for (slot, k) in out.iter_mut().zip(&rk) {
            *slot = store(*k);
        }
        rk.zeroize();
    }

    /// One block through AES-256 with 128-bit AES-NI.
    #[inline]
    #[target_feature(enable = "aes,sse2")]
    fn encrypt_block(rk: &[__m128i; ROUND_KEYS], block: __m128i) -> __m128i {
        let mut x = _mm_xor_si128(block, rk[0]);
        for k in &rk[1..ROUND_KEYS - 1] {
            x = _mm_aesenc_si128(x, *k);
        }
        _mm_aesenclast_si128(x, rk[ROUND_KEYS - 1])
    }

    /// The round keys as registers, 128-bit and broadcast to 512-bit, and the GHASH key
    /// registers. Its stack copy is zeroised when it is dropped.
    struct Keys {
        rk: [__m128i; ROUND_KEYS],
        rk4: [__m512i; ROUND_KEYS],
        ghash: [__m512i; 4],
        h1: __m128i,
    }

    impl Drop for Keys {
        fn drop(&mut self) {
            use zeroize::Zeroize;
            self.rk.zeroize();
            self.rk4.zeroize();
            self.ghash.zeroize();
            self.h1.zeroize();
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn keys(wide: &Wide) -> Keys {
        let rk = wide.round_keys.map(|k| load(k));
        let rk4 = rk.map(|k| _mm512_broadcast_i32x4(k));
        Keys {
            rk,
            rk4,
            ghash: step_keys(&wide.powers),
            h1: load(wide.powers[BLOCKS_PER_STEP - 1]),
        }
    }

    /// Round keys, then `H = E(K, 0^128)` and its powers `H'^16 .. H'^1`.
    ///
    /// # Safety
    /// The CPU must have AES-NI, PCLMULQDQ and SSE4.1.
    #[target_feature(enable = "aes,pclmulqdq,sse2,sse4.1")]
    pub(super) unsafe fn expand(
        key: &[u8; 32],
        round_keys: &mut [u128; ROUND_KEYS],
        powers: &mut [u128; BLOCKS_PER_STEP],
    ) {
        use zeroize::Zeroize;
        key_schedule(key, round_keys);
        let mut rk = round_keys.map(|k| load(k));
        let mut h = store(encrypt_block(&rk, _mm_setzero_si128())).to_le_bytes();
        let mut h1 = load(mulx(u128::from_be_bytes(h)));
        let mut p = h1;
        for slot in powers.iter_mut().rev() {
            *slot = store(p);
            p = dot(p, h1);
        }
        rk.zeroize();
        h.zeroize();
        h1.zeroize();
        p.zeroize();
    }

    /// The counter registers of the first step: lanes `IV ‖ 2 .. IV ‖ 17`, counters as
    /// native integers in dword 3 of each lane.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn first_counters(nonce: &[u8; 12]) -> [__m512i; 4] {
        let mut iv = [0u8; 16];
        iv[..12].copy_from_slice(nonce);
        let base = _mm512_broadcast_i32x4(load(u128::from_le_bytes(iv)));
        core::array::from_fn(|r| {
            let c = 2 + 4 * r as i32;
            _mm512_add_epi32(
                base,
                _mm512_set_epi32(c + 3, 0, 0, 0, c + 2, 0, 0, 0, c + 1, 0, 0, 0, c, 0, 0, 0),
            )
        })
    }

    /// The shuffle that turns dword 3 of each lane big-endian and leaves the IV alone.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn counter_order() -> __m512i {
        _mm512_broadcast_i32x4(_mm_set_epi8(
            12, 13, 14, 15, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
        ))
    }

    /// Sixteen keystream blocks from `counters`, which then move on by sixteen.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,vaes")]
    fn keystream_step(keys: &Keys, order: __m512i, counters: &mut [__m512i; 4]) -> [__m512i; 4] {
        let sixteen = _mm512_set_epi32(16, 0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0);
        let mut x = [_mm512_setzero_si512(); 4];
        for r in 0..4 {
            x[r] = _mm512_xor_si512(_mm512_shuffle_epi8(counters[r], order), keys.rk4[0]);
            counters[r] = _mm512_add_epi32(counters[r], sixteen);
        }
        for k in &keys.rk4[1..ROUND_KEYS - 1] {
            for v in &mut x {
                *v = _mm512_aesenc_epi128(*v, *k);
            }
        }
        for v in &mut x {
            *v = _mm512_aesenclast_epi128(*v, keys.rk4[ROUND_KEYS - 1]);
        }
        x
    }

    /// Loads step `r`'s 64 bytes of `step` (256 bytes).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load64(step: &[u8], r: usize) -> __m512i {
        let bytes = &step[64 * r..64 * (r + 1)];
        // SAFETY: `bytes` is 64 readable bytes; the load has no alignment requirement.
        unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn store64(step: &mut [u8], r: usize, v: __m512i) {
        let bytes = &mut step[64 * r..64 * (r + 1)];
        // SAFETY: `bytes` is 64 writable bytes; the store has no alignment requirement.
        unsafe { _mm512_storeu_si512(bytes.as_mut_ptr().cast(), v) }
    }

    /// XORs a tail of under 256 bytes with keystream blocks `counter, counter + 1, ...`.
    #[target_feature(enable = "aes,avx512f,sse4.1")]
    fn tail_keystream(keys: &Keys, nonce: &[u8; 12], mut counter: u32, tail: &mut [u8]) {
        for chunk in tail.chunks_mut(16) {
            let mut block = [0u8; 16];
            block[..12].copy_from_slice(nonce);
            block[12..].copy_from_slice(&counter.to_be_bytes());
            let mut ks =
                store(encrypt_block(&keys.rk, load(u128::from_le_bytes(block)))).to_le_bytes();
            for (d, k) in chunk.iter_mut().zip(ks.iter()) {
                *d ^= k;
            }
            zeroize::Zeroize::zeroize(&mut ks);
            counter = counter.wrapping_add(1);
        }
    }

    /// Counter mode over `buf` from inc32(J0); with `hash`, the ciphertext of each step is
    /// absorbed into `acc` as it is made, and the returned accumulator covers all of `buf`.
    #[target_feature(enable = "aes,avx512f,avx512bw,vaes,pclmulqdq,vpclmulqdq,sse4.1")]
    fn ctr(keys: &Keys, nonce: &[u8; 12], buf: &mut [u8], hash: Option<__m128i>) -> __m128i {
        let order = counter_order();
        let reverse = byte_reverse();
        let mut counters = first_counters(nonce);
        let mut acc = hash.unwrap_or(_mm_setzero_si128());
        let mut steps = buf.chunks_exact_mut(STEP_BYTES);
        let mut done: u32 = 0;
        for step in steps.by_ref() {
            let ks = keystream_step(keys, order, &mut counters);
            let mut out = [_mm512_setzero_si512(); 4];
            for r in 0..4 {
                out[r] = _mm512_xor_si512(load64(step, r), ks[r]);
                store64(step, r, out[r]);
            }
            if hash.is_some() {
                acc = absorb_regs(&keys.ghash, reverse, acc, out);
            }
            done = done.wrapping_add(BLOCKS_PER_STEP as u32);
        }
        let tail = steps.into_remainder();
        tail_keystream(keys, nonce, 2u32.wrapping_add(done), tail);
        if hash.is_some() {
            acc = absorb(keys, acc, tail);
        }
        acc
    }

    /// Seals `buf` in place, counter mode and GHASH in one pass, and returns the tag.
    ///
    /// # Safety
    /// The CPU must have the features `Wide::available` checks.
    #[target_feature(enable = "aes,avx512f,avx512bw,vaes,pclmulqdq,vpclmulqdq,sse4.1")]
    pub(super) unsafe fn seal(
        wide: &Wide,
        nonce: &[u8; 12],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; 16] {
        let keys = keys(wide);
        let acc = absorb(&keys, _mm_setzero_si128(), aad);
        let acc = ctr(&keys, nonce, buf, Some(acc));
        finish(&keys, nonce, acc, aad.len(), buf.len())
    }

    /// The tag of ciphertext `buf`.
    ///
    /// # Safety
    /// The CPU must have the features `Wide::available` checks.
    #[target_feature(enable = "aes,avx512f,avx512bw,vaes,pclmulqdq,vpclmulqdq,sse4.1")]
    pub(super) unsafe fn tag(wide: &Wide, nonce: &[u8; 12], aad: &[u8], buf: &[u8]) -> [u8; 16] {
        let keys = keys(wide);
        let acc = absorb(&keys, _mm_setzero_si128(), aad);
        let acc = absorb(&keys, acc, buf);
        finish(&keys, nonce, acc, aad.len(), buf.len())
    }

    /// Counter mode over `buf`.
    ///
    /// # Safety
    /// The CPU must have the features `Wide::available` checks.
    #[target_feature(enable = "aes,avx512f,avx512bw,vaes,pclmulqdq,vpclmulqdq,sse4.1")]
    pub(super) unsafe fn apply_keystream(wide: &Wide, nonce: &[u8; 12], buf: &mut [u8]) {
        let keys = keys(wide);
        ctr(&keys, nonce, buf, None);
    }

    /// The lengths block, the last multiplication, and the mask `E(K, J0)`.
    #[target_feature(enable = "aes,pclmulqdq,sse2,sse4.1")]
    fn finish(keys: &Keys, nonce: &[u8; 12], acc: __m128i, aad: usize, ct: usize) -> [u8; 16] {
        let lengths = (u128::from(aad as u64 * 8) << 64) | u128::from(ct as u64 * 8);
        let s = store(dot(_mm_xor_si128(acc, load(lengths)), keys.h1)).to_be_bytes();
        let mut j0 = [0u8; 16];
        j0[..12].copy_from_slice(nonce);
        j0[15] = 1;
        let mut mask = store(encrypt_block(&keys.rk, load(u128::from_le_bytes(j0)))).to_le_bytes();
        let tag = core::array::from_fn(|i| s[i] ^ mask[i]);
        zeroize::Zeroize::zeroize(&mut mask);
        tag
    }

    // ---- GHASH ----

    /// Unreduced product: (low, middle, high) with `a·b = high·x^128 ⊕ middle·x^64 ⊕ low`.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn mul_parts(a: __m128i, b: __m128i) -> (__m128i, __m128i, __m128i) {
        let lo = _mm_clmulepi64_si128::<0x00>(a, b);
        let hi = _mm_clmulepi64_si128::<0x11>(a, b);
        let mid = _mm_xor_si128(
            _mm_clmulepi64_si128::<0x01>(a, b),
            _mm_clmulepi64_si128::<0x10>(a, b),
        );
        (lo, mid, hi)
    }

    /// `(high·x^128 ⊕ middle·x^64 ⊕ low)·x^-128 mod g`, two Montgomery folds of 64 bits.
    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn reduce(lo: __m128i, mid: __m128i, hi: __m128i) -> __m128i {
        let lo = _mm_xor_si128(lo, _mm_slli_si128::<8>(mid));
        let hi = _mm_xor_si128(hi, _mm_srli_si128::<8>(mid));
        let poly = _mm_set_epi64x(POLY_HI as i64, 1);
        let t = _mm_clmulepi64_si128::<0x10>(lo, poly);
        let lo = _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(lo), t);
        let t = _mm_clmulepi64_si128::<0x10>(lo, poly);
        let lo = _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(lo), t);
        _mm_xor_si128(hi, lo)
    }

    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn dot(a: __m128i, b: __m128i) -> __m128i {
        let (lo, mid, hi) = mul_parts(a, b);
        reduce(lo, mid, hi)
    }

    /// The shuffle that reverses the bytes of each 128-bit lane.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn byte_reverse() -> __m512i {
        _mm512_broadcast_i32x4(_mm_set_epi8(
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
        ))
    }

    /// Absorbs `data`, zero-padded to whole blocks, into `acc`.
    #[target_feature(enable = "avx512f,avx512bw,pclmulqdq,vpclmulqdq,sse4.1")]
    fn absorb(keys: &Keys, mut acc: __m128i, data: &[u8]) -> __m128i {
        let mut steps = data.chunks_exact(STEP_BYTES);
        if steps.len() > 0 {
            let reverse = byte_reverse();
            for step in steps.by_ref() {
                let x = [
                    load64(step, 0),
                    load64(step, 1),
                    load64(step, 2),
                    load64(step, 3),
                ];
                acc = absorb_regs(&keys.ghash, reverse, acc, x);
            }
        }
        for block in steps.remainder().chunks(16) {
            let mut padded = [0u8; 16];
            padded[..block.len()].copy_from_slice(block);
            acc = dot(
                _mm_xor_si128(acc, load(u128::from_be_bytes(padded))),
                keys.h1,
            );
        }
        acc
    }

    /// The four 512-bit key registers of a step: lanes `H'^16 .. H'^1`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn step_keys(powers: &[u128; BLOCKS_PER_STEP]) -> [__m512i; 4] {
        let lane = |j: usize| {
            let v = powers[j];
            [v as u64 as i64, (v >> 64) as u64 as i64]
        };
        core::array::from_fn(|r| {
            let [a, b] = lane(4 * r);
            let [c, d] = lane(4 * r + 1);
            let [e, f] = lane(4 * r + 2);
            let [g, h] = lane(4 * r + 3);
            _mm512_set_epi64(h, g, f, e, d, c, b, a)
        })
    }

    /// One step: sixteen blocks (as loaded, GHASH byte order) multiplied by their powers,
    /// summed with `acc` folded into the first, reduced.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,pclmulqdq,vpclmulqdq")]
    fn absorb_regs(
        keys: &[__m512i; 4],
        reverse: __m512i,
        acc: __m128i,
        blocks: [__m512i; 4],
    ) -> __m128i {
        let mut lo = _mm512_setzero_si512();
        let mut mid = _mm512_setzero_si512();
        let mut hi = _mm512_setzero_si512();
        for (r, (key, x)) in keys.iter().zip(blocks).enumerate() {
            let mut x = _mm512_shuffle_epi8(x, reverse);
            if r == 0 {
                x = _mm512_xor_si512(x, _mm512_zextsi128_si512(acc));
            }
            lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128::<0x00>(x, *key));
            hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128::<0x11>(x, *key));
            mid = _mm512_xor_si512(mid, _mm512_clmulepi64_epi128::<0x01>(x, *key));
            mid = _mm512_xor_si512(mid, _mm512_clmulepi64_epi128::<0x10>(x, *key));
        }
        reduce(fold(lo), fold(mid), fold(hi))
    }

    /// XOR of a register's four 128-bit lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn fold(v: __m512i) -> __m128i {
        let halves = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v));
        _mm_xor_si128(
            _mm256_castsi256_si128(halves),
            _mm256_extracti128_si256::<1>(halves),
        )
    }
}
