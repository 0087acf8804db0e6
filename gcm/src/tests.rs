use super::*;
use proptest::prelude::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_default()
}

fn wide_or_skip(key: &[u8; KEY_LEN_BYTES]) -> Option<Aes256Gcm> {
    let wide = Aes256Gcm::wide(key);
    if wide.is_none() {
        eprintln!("this CPU or build has no VAES/VPCLMULQDQ/AVX-512 path: it is not tested here");
    }
    wide
}

/// Test cases 13 to 16 of McGrew and Viega's GCM specification (AES-256, 96-bit IV).
#[test]
fn gcm_specification_vectors_on_both_paths() {
    let cases = [
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000",
            "",
            "",
            "",
            "530f8afbc74536b9a963b4f1c4cb738b",
        ),
        (
            "0000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000",
            "",
            "00000000000000000000000000000000",
            "cea7403d4d606b6e074ec5d3baf39d18",
            "d0d1c8a799996bf0265b98b5d48ab919",
        ),
        (
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "cafebabefacedbaddecaf888",
            "",
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
            "b094dac5d93471bdec1a502270e3cc6c",
        ),
        (
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "cafebabefacedbaddecaf888",
            "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ),
    ];
    for (key, nonce, aad, pt, ct, tag) in cases {
        let key: [u8; 32] = h(key).try_into().unwrap_or_default();
        let nonce: [u8; 12] = h(nonce).try_into().unwrap_or_default();
        let (aad, pt, ct, tag) = (h(aad), h(pt), h(ct), h(tag));
        let ciphers = [Some(Aes256Gcm::rustcrypto(&key)), wide_or_skip(&key)];
        for cipher in ciphers.iter().flatten() {
            let mut buf = pt.clone();
            let got = cipher.seal_in_place(&nonce, &aad, &mut buf);
            assert_eq!(
                (buf.clone(), got.map(|t| t.to_vec())),
                (ct.clone(), Ok(tag.clone())),
                "{:?}",
                cipher.path()
            );
            let tag: [u8; 16] = tag.clone().try_into().unwrap_or_default();
            assert_eq!(cipher.open_in_place(&nonce, &aad, &mut buf, &tag), Ok(()));
            assert_eq!(buf, pt);
        }
    }
}

#[test]
fn new_takes_the_detected_path() {
    assert_eq!(Aes256Gcm::new(&[7; 32]).path(), Path::detected());
    assert_eq!(Aes256Gcm::rustcrypto(&[7; 32]).path(), Path::RustCrypto);
}

#[test]
fn a_failed_open_leaves_the_ciphertext_and_every_bit_counts() {
    let key = [0x42; 32];
    let ciphers = [Some(Aes256Gcm::rustcrypto(&key)), wide_or_skip(&key)];
    for cipher in ciphers.iter().flatten() {
        let nonce = [9; 12];
        let mut sealed = (0..300u32).map(|i| (i * 7) as u8).collect::<Vec<_>>();
        let tag = cipher
            .seal_in_place(&nonce, b"aad", &mut sealed)
            .unwrap_or_default();
        for bit in [0, 7, 8 * 150 + 3, 8 * 299 + 7] {
            let mut buf = sealed.clone();
            buf[bit / 8] ^= 1 << (bit % 8);
            let before = buf.clone();
            assert_eq!(
                cipher.open_in_place(&nonce, b"aad", &mut buf, &tag),
                Err(Error)
            );
            assert_eq!(buf, before, "a failed open changed the buffer");
        }
        let mut buf = sealed.clone();
        assert_eq!(
            cipher.open_in_place(&nonce, b"aae", &mut buf, &tag),
            Err(Error)
        );
        let mut bad = tag;
        bad[15] ^= 0x80;
        assert_eq!(
            cipher.open_in_place(&nonce, b"aad", &mut buf, &bad),
            Err(Error)
        );
        assert_eq!(
            cipher.open_in_place(&[8; 12], b"aad", &mut buf, &tag),
            Err(Error)
        );
        assert_eq!(buf, sealed);
    }
}

#[test]
fn large_buffers_match_across_paths() {
    let key = [0x5a; 32];
    let Some(wide) = wide_or_skip(&key) else {
        return;
    };
    let narrow = Aes256Gcm::rustcrypto(&key);
    for len in [255, 256, 257, 4095, 4096, 65536, 65536 + 17, (1 << 20) + 1] {
        let plain = (0..len)
            .map(|i| (i * 31 + i / 256) as u8)
            .collect::<Vec<_>>();
        let aad = vec![0xa5; len % 700];
        let (mut a, mut b) = (plain.clone(), plain.clone());
        let ta = wide.seal_in_place(&[1; 12], &aad, &mut a);
        let tb = narrow.seal_in_place(&[1; 12], &aad, &mut b);
        assert_eq!((&a, ta), (&b, tb), "length {len}");
        let tag = ta.unwrap_or_default();
        assert_eq!(narrow.open_in_place(&[1; 12], &aad, &mut a, &tag), Ok(()));
        assert_eq!(wide.open_in_place(&[1; 12], &aad, &mut b, &tag), Ok(()));
        assert_eq!((a == plain, b == plain), (true, true), "length {len}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The wide path seals to the same bytes and tag as RustCrypto's aes-gcm, each opens
    /// what the other sealed, and a changed tag fails on both.
    #[test]
    fn wide_and_rustcrypto_agree(
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
        aad in proptest::collection::vec(any::<u8>(), 0..600),
        plain in proptest::collection::vec(any::<u8>(), 0..3000),
        flip in any::<u8>(),
    ) {
        let Some(wide) = Aes256Gcm::wide(&key) else { return Ok(()) };
        let narrow = Aes256Gcm::rustcrypto(&key);
        let (mut a, mut b) = (plain.clone(), plain.clone());
        let ta = wide.seal_in_place(&nonce, &aad, &mut a);
        let tb = narrow.seal_in_place(&nonce, &aad, &mut b);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(ta, tb);
        let tag = ta.unwrap_or_default();
        let mut bad = tag;
        bad[usize::from(flip) % 16] ^= 1 << (flip % 8);
        prop_assert_eq!(wide.open_in_place(&nonce, &aad, &mut a, &bad), Err(Error));
        prop_assert_eq!(narrow.open_in_place(&nonce, &aad, &mut b, &bad), Err(Error));
        prop_assert_eq!(wide.open_in_place(&nonce, &aad, &mut b, &tag), Ok(()));
        prop_assert_eq!(narrow.open_in_place(&nonce, &aad, &mut a, &tag), Ok(()));
        prop_assert_eq!(&a, &plain);
        prop_assert_eq!(&b, &plain);
    }
}

#[test]
fn mulx_matches_rfc_8452() {
    // RFC 8452 Appendix A (with its erratum): mulX_POLYVAL(01000000..00) = 02000000..00,
    // and of 9c98c04df9387ded828175a92ba652d8 it is 3931819bf271fada0503eb52574ca572.
    let v = |s: &str| u128::from_le_bytes(h(s).try_into().unwrap_or_default());
    assert_eq!(
        wide::mulx(v("01000000000000000000000000000000")),
        v("02000000000000000000000000000000")
    );
    assert_eq!(
        wide::mulx(v("9c98c04df9387ded828175a92ba652d8")),
        v("3931819bf271fada0503eb52574ca572")
    );
}

#[test]
fn this_cpu_takes_the_wide_path_when_it_has_the_instructions() {
    #[cfg(all(
        target_arch = "x86_64",
        not(polyval_backend = "soft"),
        not(aes_backend = "soft")
    ))]
    {
        let has = std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("aes")
            && std::is_x86_feature_detected!("vaes")
            && std::is_x86_feature_detected!("pclmulqdq")
            && std::is_x86_feature_detected!("vpclmulqdq");
        assert_eq!(Path::detected() == Path::Avx512, has);
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        not(polyval_backend = "soft"),
        not(aes_backend = "soft")
    )))]
    assert_eq!(Path::detected(), Path::RustCrypto);
}
