//! The aws-chunked decoder: the framings real clients send, every rejection, and property
//! tests (random bytes never panic; any split of a valid body decodes to the same payload).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

use proptest::prelude::*;
use twofold::s3::checksum::{ChecksumAlgorithm, Hasher, checksum};
use twofold::sigv4::awschunked::{
    CHUNK_DATA_BYTES_MAX, CHUNK_LINE_BYTES_MAX, ChunkError, Decoder, Step, TRAILER_BYTES_MAX,
    Trailers, parse_declared_trailers,
};
use twofold::sigv4::{ChunkSigner, PayloadMode, Secret, SigningKey, canonical};

const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const CRC32: &str = "x-amz-checksum-crc32";

fn signer() -> ChunkSigner {
    let key = SigningKey::derive(
        &Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "20130524",
        "us-east-1",
        "s3",
    );
    ChunkSigner::new(
        key,
        "20130524T000000Z",
        &canonical::scope("20130524", "us-east-1", "s3"),
        SEED,
    )
    .unwrap()
}

fn crc32_b64(data: &[u8]) -> String {
    checksum(ChecksumAlgorithm::Crc32, data).to_base64()
}

/// An unsigned body as botocore frames it: chunks, `0\r\n`, trailer lines, `\r\n`.
fn unsigned_body(chunks: &[&[u8]], trailers: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for c in chunks {
        b.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        b.extend_from_slice(c);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"0\r\n");
    for (n, v) in trailers {
        b.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    b
}

/// A signed body: chained chunk signatures, then (when `trailers` is given) the trailer
/// lines and the trailer signature.
fn signed_body(chunks: &[&[u8]], trailers: Option<&[(&str, &str)]>) -> Vec<u8> {
    let mut s = signer();
    let mut b = Vec::new();
    for c in chunks {
        let sig = s.sign_chunk(c);
        b.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", c.len()).as_bytes());
        b.extend_from_slice(c);
        b.extend_from_slice(b"\r\n");
    }
    let last = s.sign_chunk(b"");
    b.extend_from_slice(format!("0;chunk-signature={last}\r\n").as_bytes());
    if let Some(trailers) = trailers {
        let mut sorted: Vec<&(&str, &str)> = trailers.iter().collect();
        sorted.sort();
        let mut canonical = Vec::new();
        for (n, v) in &sorted {
            canonical.extend_from_slice(format!("{n}:{v}\n").as_bytes());
        }
        for (n, v) in trailers {
            b.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
        }
        let sig = s.sign_trailer(&canonical);
        b.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
    }
    b.extend_from_slice(b"\r\n");
    b
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn unsigned_decoder(len: Option<u64>, declared: &[&str]) -> Decoder {
    Decoder::new(
        PayloadMode::StreamingUnsignedTrailer,
        None,
        len,
        &owned(declared),
    )
    .unwrap()
}

fn signed_decoder(len: Option<u64>) -> Decoder {
    Decoder::new(PayloadMode::StreamingSigned, Some(signer()), len, &[]).unwrap()
}

fn signed_trailer_decoder(len: Option<u64>, declared: &[&str]) -> Decoder {
    Decoder::new(
        PayloadMode::StreamingSignedTrailer,
        Some(signer()),
        len,
        &owned(declared),
    )
    .unwrap()
}

/// Feeds `body` in the given pieces, as a caller with a read buffer would (unconsumed bytes
/// are kept and passed again), then ends the body.
fn decode_pieces(dec: &mut Decoder, pieces: &[&[u8]]) -> Result<(Vec<u8>, Trailers), ChunkError> {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        let mut pos = 0;
        loop {
            let (n, step) = dec.decode(&buf[pos..])?;
            assert!(n <= buf.len() - pos, "consumed more than given");
            pos += n;
            match step {
                Step::Data(d) => {
                    assert!(!d.is_empty());
                    out.extend_from_slice(d);
                }
                Step::NeedMore => {
                    assert_eq!(pos, buf.len(), "NeedMore consumes everything");
                    break;
                }
                Step::Done { trailers } => {
                    if pos != buf.len() {
                        // Bytes after the end must be refused.
                        return Err(dec.decode(&buf[pos..]).unwrap_err());
                    }
                    return match dec.finish()? {
                        None => Ok((out, trailers)),
                        Some(_) => panic!("finish after Done gave trailers"),
                    };
                }
            }
        }
        buf.drain(..pos);
    }
    let trailers = dec.finish()?.expect("finish completes the body");
    Ok((out, trailers))
}

fn decode(dec: &mut Decoder, body: &[u8]) -> Result<(Vec<u8>, Trailers), ChunkError> {
    decode_pieces(dec, &[body])
}

#[test]
fn real_client_framings() {
    let data = b"Hello world";
    let crc = crc32_b64(data);
    // botocore / aws CLI, Go SDK v2, JS SDK v3, Java SDK v2 with a checksum.
    let with_checksum = format!("b\r\nHello world\r\n0\r\n{CRC32}:{crc}\r\n\r\n");
    // Two chunks, as from a 64 KiB chunker.
    let two_chunks = format!("6\r\nHello \r\n5\r\nworld\r\n0\r\n{CRC32}:{crc}\r\n\r\n");
    for body in [&with_checksum, &two_chunks] {
        let mut d = unsigned_decoder(Some(11), &[CRC32]);
        let (out, t) = decode(&mut d, body.as_bytes()).unwrap();
        assert_eq!(out, data);
        assert_eq!(t.get(CRC32), Some(crc.as_str()));
        let (alg, v) = t.checksum().unwrap();
        let mut h = Hasher::new(alg);
        h.update(&out);
        assert!(h.verify(v));
    }
    // botocore and Go v2 without a checksum: the empty line ends the body.
    let mut d = unsigned_decoder(Some(11), &[]);
    let (out, t) = decode(&mut d, b"b\r\nHello world\r\n0\r\n\r\n").unwrap();
    assert_eq!(out, data);
    assert!(t.is_empty());
    // Java v2 and JS v3 without a checksum: the body ends right after "0\r\n".
    let mut d = unsigned_decoder(Some(11), &[]);
    let (out, _) = decode(&mut d, b"b\r\nHello world\r\n0\r\n").unwrap();
    assert_eq!(out, data);
    // Trailer lines complete, closing empty line missing.
    let mut d = unsigned_decoder(Some(11), &[CRC32]);
    let body = format!("b\r\nHello world\r\n0\r\n{CRC32}:{crc}\r\n");
    let (_, t) = decode(&mut d, body.as_bytes()).unwrap();
    assert_eq!(t.get(CRC32), Some(crc.as_str()));
    // Upper-case hex sizes, empty body.
    let mut d = unsigned_decoder(Some(26), &[]);
    let (out, _) = decode(&mut d, b"1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n").unwrap();
    assert_eq!(out.len(), 26);
    let mut d = unsigned_decoder(Some(0), &[CRC32]);
    let body = format!("0\r\n{CRC32}:AAAAAA==\r\n\r\n");
    decode(&mut d, body.as_bytes()).unwrap();
    // Signed, as in the S3 documentation and minio-go.
    let mut d = signed_decoder(Some(11));
    let (out, t) = decode(&mut d, &signed_body(&[b"Hello ", b"world"], None)).unwrap();
    assert_eq!(out, data);
    assert!(t.is_empty());
    // Signed with trailers.
    let mut d = signed_trailer_decoder(Some(11), &[CRC32]);
    let body = signed_body(&[b"Hello world"], Some(&[(CRC32, &crc)]));
    let (out, t) = decode(&mut d, &body).unwrap();
    assert_eq!(out, data);
    assert_eq!(t.get(CRC32), Some(crc.as_str()));
}

#[test]
fn decoded_length_is_enforced() {
    let body = unsigned_body(&[b"hello"], &[]);
    let err = decode(&mut unsigned_decoder(Some(4), &[]), &body).unwrap_err();
    assert_eq!(
        err,
        ChunkError::LengthMismatch {
            declared: 4,
            decoded: 5
        }
    );
    assert_eq!(err.s3_code().as_str(), "IncompleteBody");
    let err = decode(&mut unsigned_decoder(Some(6), &[]), &body).unwrap_err();
    assert_eq!(
        err,
        ChunkError::LengthMismatch {
            declared: 6,
            decoded: 5
        }
    );
    decode(&mut unsigned_decoder(None, &[]), &body).unwrap();
}

#[test]
fn truncated_bodies() {
    let body = unsigned_body(&[b"hello", b"world"], &[]);
    // Every proper prefix that does not end right after "0\r\n" is incomplete.
    let zero_at = body.len() - 2;
    for cut in 0..body.len() {
        let r = decode(&mut unsigned_decoder(Some(10), &[]), &body[..cut]);
        if cut == zero_at {
            r.unwrap();
        } else {
            assert_eq!(r.unwrap_err(), ChunkError::Truncated, "cut at {cut}");
        }
    }
    let body = signed_body(&[b"hello"], None);
    for cut in 0..body.len() - 2 {
        assert!(
            decode(&mut signed_decoder(Some(5)), &body[..cut]).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn signed_chunk_tampering() {
    let body = signed_body(&[b"hello", b"world"], None);
    decode(&mut signed_decoder(Some(10)), &body).unwrap();
    // A changed data byte.
    let mut t = body.clone();
    let at = t.windows(5).position(|w| w == b"world").unwrap();
    t[at] = b'W';
    let err = decode(&mut signed_decoder(Some(10)), &t).unwrap_err();
    assert_eq!(err, ChunkError::ChunkSignature);
    assert_eq!(
        (err.s3_code().as_str(), err.http_status()),
        ("SignatureDoesNotMatch", 403)
    );
    // A changed signature digit.
    let mut t = body.clone();
    let at = t
        .windows(16)
        .position(|w| w == b"chunk-signature=")
        .unwrap()
        + 16;
    t[at] = if t[at] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        decode(&mut signed_decoder(Some(10)), &t).unwrap_err(),
        ChunkError::ChunkSignature
    );
    // Chunks swapped (each keeps its own signature): the chain breaks.
    let mut s = signer();
    let s1 = s.sign_chunk(b"hello");
    let s2 = s.sign_chunk(b"world");
    let swapped = format!(
        "5;chunk-signature={s2}\r\nworld\r\n5;chunk-signature={s1}\r\nhello\r\n0;chunk-signature={}\r\n\r\n",
        s.sign_chunk(b"")
    );
    assert_eq!(
        decode(&mut signed_decoder(Some(10)), swapped.as_bytes()).unwrap_err(),
        ChunkError::ChunkSignature
    );
    // The last chunk dropped.
    let mut s = signer();
    let dropped = format!(
        "5;chunk-signature={}\r\nhello\r\n0;chunk-signature={}\r\n\r\n",
        s.sign_chunk(b"hello"),
        {
            let mut other = signer();
            other.sign_chunk(b"hello");
            other.sign_chunk(b"world");
            other.sign_chunk(b"")
        }
    );
    assert!(decode(&mut signed_decoder(None), dropped.as_bytes()).is_err());
    // A signature from another key.
    let other_key = SigningKey::derive(&Secret::new("other"), "20130524", "us-east-1", "s3");
    let mut other = ChunkSigner::new(
        other_key,
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        SEED,
    )
    .unwrap();
    let forged = format!(
        "5;chunk-signature={}\r\nhello\r\n0;chunk-signature={}\r\n\r\n",
        other.sign_chunk(b"hello"),
        other.sign_chunk(b"")
    );
    assert_eq!(
        decode(&mut signed_decoder(Some(5)), forged.as_bytes()).unwrap_err(),
        ChunkError::ChunkSignature
    );
}

#[test]
fn signed_trailer_tampering() {
    let crc = crc32_b64(b"hello");
    let body = signed_body(&[b"hello"], Some(&[(CRC32, &crc)]));
    decode(&mut signed_trailer_decoder(Some(5), &[CRC32]), &body).unwrap();
    // A changed trailer value.
    let text = String::from_utf8(body.clone()).unwrap();
    let t = text.replace(&crc, "AAAAAA==");
    assert_eq!(
        decode(&mut signed_trailer_decoder(Some(5), &[CRC32]), t.as_bytes()).unwrap_err(),
        ChunkError::TrailerSignature
    );
    // A changed trailer signature.
    let at = text.find("x-amz-trailer-signature:").unwrap() + 24;
    let mut t = body.clone();
    t[at] = if t[at] == b'0' { b'1' } else { b'0' };
    let err = decode(&mut signed_trailer_decoder(Some(5), &[CRC32]), &t).unwrap_err();
    assert_eq!(err, ChunkError::TrailerSignature);
    assert_eq!(err.s3_code().as_str(), "SignatureDoesNotMatch");
    // No trailer signature at all.
    let mut s = signer();
    let no_sig = format!(
        "5;chunk-signature={}\r\nhello\r\n0;chunk-signature={}\r\n{CRC32}:{crc}\r\n\r\n",
        s.sign_chunk(b"hello"),
        s.sign_chunk(b"")
    );
    assert!(matches!(
        decode(
            &mut signed_trailer_decoder(Some(5), &[CRC32]),
            no_sig.as_bytes()
        ),
        Err(ChunkError::Trailer(_))
    ));
}

#[test]
fn trailers_must_be_declared_and_present() {
    let body = unsigned_body(&[b"hello"], &[(CRC32, &crc32_b64(b"hello"))]);
    let err = decode(&mut unsigned_decoder(Some(5), &[]), &body).unwrap_err();
    assert_eq!(err, ChunkError::UndeclaredTrailer(CRC32.into()));
    assert_eq!(err.s3_code().as_str(), "MalformedTrailerError");
    let err = decode(
        &mut unsigned_decoder(Some(5), &["x-amz-checksum-crc64nvme"]),
        &body,
    )
    .unwrap_err();
    assert_eq!(err, ChunkError::UndeclaredTrailer(CRC32.into()));
    let body = unsigned_body(&[b"hello"], &[]);
    let err = decode(&mut unsigned_decoder(Some(5), &[CRC32]), &body).unwrap_err();
    assert_eq!(err, ChunkError::MissingTrailer(CRC32.into()));
    // Declared names are matched case-insensitively; the same trailer twice is refused.
    let body = unsigned_body(&[b"hello"], &[("X-Amz-Checksum-CRC32", "NhCmhg==")]);
    let (_, t) = decode(
        &mut unsigned_decoder(Some(5), &["x-amz-checksum-crc32"]),
        &body,
    )
    .unwrap();
    assert_eq!(t.get(CRC32), Some("NhCmhg=="));
    let body = unsigned_body(&[b"hello"], &[(CRC32, "NhCmhg=="), (CRC32, "NhCmhg==")]);
    assert!(matches!(
        decode(&mut unsigned_decoder(Some(5), &[CRC32]), &body),
        Err(ChunkError::Trailer(_))
    ));
    // x-amz-trailer parsing.
    assert_eq!(
        parse_declared_trailers(b"x-amz-checksum-crc32, x-amz-checksum-sha256").unwrap(),
        ["x-amz-checksum-crc32", "x-amz-checksum-sha256"]
    );
}

#[test]
fn framing_garbage_is_refused() {
    let crc = crc32_b64(b"hello");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"5\nhello\r\n0\r\n\r\n".to_vec(), "bare LF in size line"),
        (b"5 \r\nhello\r\n0\r\n\r\n".to_vec(), "space after size"),
        (b" 5\r\nhello\r\n0\r\n\r\n".to_vec(), "space before size"),
        (b"\r\nhello\r\n0\r\n\r\n".to_vec(), "empty size"),
        (b"0x5\r\nhello\r\n0\r\n\r\n".to_vec(), "0x prefix"),
        (b"-5\r\nhello\r\n0\r\n\r\n".to_vec(), "negative"),
        (
            b"5;foo=bar\r\nhello\r\n0\r\n\r\n".to_vec(),
            "extension in unsigned body",
        ),
        (
            b"5\r\nhelloX\r\n0\r\n\r\n".to_vec(),
            "data longer than size",
        ),
        (b"5\r\nhello\n0\r\n\r\n".to_vec(), "bare LF after data"),
        (
            b"5\r\nhello\r\n0\r\nnocolon\r\n\r\n".to_vec(),
            "trailer without colon",
        ),
        (
            format!("5\r\nhello\r\n0\r\n{CRC32}:{crc}\n\r\n").into_bytes(),
            "trailer bare LF",
        ),
        (
            format!(
                "5\r\nhello\r\n0\r\n{CRC32}:{crc}\r\nx-amz-trailer-signature:{}\r\n\r\n",
                "0".repeat(64)
            )
            .into_bytes(),
            "trailer signature in unsigned body",
        ),
        (
            format!("5;chunk-signature={}\r\nhello\r\n0\r\n\r\n", "0".repeat(64)).into_bytes(),
            "chunk signature in unsigned body",
        ),
        (b"11111111111111111\r\n".to_vec(), "17 hex digits"),
        (vec![b'1'; CHUNK_LINE_BYTES_MAX + 1], "size line too long"),
    ];
    for (body, what) in cases {
        let r = decode(&mut unsigned_decoder(Some(5), &[CRC32]), &body);
        let err = r.expect_err(what);
        assert!(
            matches!(
                err,
                ChunkError::Framing(_)
                    | ChunkError::Trailer(_)
                    | ChunkError::LengthMismatch { .. }
                    | ChunkError::UndeclaredTrailer(_)
            ),
            "{what}: {err:?}"
        );
        assert_eq!(err.http_status(), 400, "{what}");
    }
    // Signed body: a chunk without a signature, a bad extension.
    for body in [
        b"5\r\nhello\r\n0\r\n\r\n".to_vec(),
        format!("5;chunk-signature={}\r\nhello\r\n", "z".repeat(64)).into_bytes(),
        format!("5;chunk-signature={}\r\nhello\r\n", "0".repeat(63)).into_bytes(),
        format!("5;chunk-sig={}\r\nhello\r\n", "0".repeat(64)).into_bytes(),
    ] {
        assert!(matches!(
            decode(&mut signed_decoder(Some(5)), &body),
            Err(ChunkError::Framing(_))
        ));
    }
    // Anything but the empty line after the last chunk of a trailer-less signed body.
    let mut s = signer();
    let body = format!(
        "5;chunk-signature={}\r\nhello\r\n0;chunk-signature={}\r\nx:y\r\n\r\n",
        s.sign_chunk(b"hello"),
        s.sign_chunk(b"")
    );
    assert!(matches!(
        decode(&mut signed_decoder(Some(5)), body.as_bytes()),
        Err(ChunkError::Framing(_))
    ));
    // Too large a chunk.
    let body = format!("{:x}\r\n", CHUNK_DATA_BYTES_MAX + 1);
    assert_eq!(
        decode(&mut unsigned_decoder(None, &[]), body.as_bytes()).unwrap_err(),
        ChunkError::ChunkTooLarge {
            size: CHUNK_DATA_BYTES_MAX + 1
        }
    );
    // Too large a trailer section.
    let mut body = b"0\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'a', TRAILER_BYTES_MAX + 1));
    assert!(matches!(
        decode(&mut unsigned_decoder(None, &[]), &body),
        Err(ChunkError::Trailer(_))
    ));
    // Too many trailer lines.
    let mut body = b"0\r\n".to_vec();
    for i in 0..20 {
        body.extend_from_slice(format!("x-amz-meta-{i}:v\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    assert!(matches!(
        decode(&mut unsigned_decoder(None, &[]), &body),
        Err(ChunkError::Trailer(_))
    ));
}

#[test]
fn data_after_the_end_is_refused() {
    let mut body = unsigned_body(&[b"hello"], &[]);
    body.extend_from_slice(b"5\r\nextra\r\n");
    let err = decode(&mut unsigned_decoder(Some(5), &[]), &body).unwrap_err();
    assert_eq!(err, ChunkError::TrailingData);
}

#[test]
fn errors_are_sticky() {
    let mut d = unsigned_decoder(Some(5), &[]);
    let e1 = d.decode(b"zz\r\n").unwrap_err();
    assert_eq!(d.decode(b"5\r\nhello\r\n").unwrap_err(), e1);
    assert_eq!(d.finish().unwrap_err(), e1);
}

#[test]
fn setup_is_checked() {
    let mk = |mode, signer: Option<ChunkSigner>, declared: &[&str]| {
        Decoder::new(mode, signer, None, &owned(declared)).map(|_| ())
    };
    assert!(matches!(
        mk(PayloadMode::Unsigned, None, &[]),
        Err(ChunkError::Setup(_))
    ));
    assert!(matches!(
        mk(PayloadMode::Sha256([0; 32]), None, &[]),
        Err(ChunkError::Setup(_))
    ));
    assert!(matches!(
        mk(PayloadMode::StreamingSigned, None, &[]),
        Err(ChunkError::Setup(_))
    ));
    assert!(matches!(
        mk(PayloadMode::StreamingUnsignedTrailer, Some(signer()), &[]),
        Err(ChunkError::Setup(_))
    ));
    assert!(matches!(
        mk(PayloadMode::StreamingSigned, Some(signer()), &[CRC32]),
        Err(ChunkError::Trailer(_))
    ));
    assert_eq!(ChunkError::Setup("x").http_status(), 500);
}

#[test]
fn large_chunk_in_small_pieces() {
    // One 1 MiB chunk fed 1000 bytes at a time: the signature is checked across pieces.
    let data: Vec<u8> = (0..1_048_576_u32).map(|i| (i % 251) as u8).collect();
    let body = signed_body(&[&data], None);
    let pieces: Vec<&[u8]> = body.chunks(1000).collect();
    let (out, _) = decode_pieces(&mut signed_decoder(Some(data.len() as u64)), &pieces).unwrap();
    assert_eq!(out, data);
}

/// Splits `body` at the given (sorted, deduplicated) cut points.
fn split_at<'a>(body: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut prev = 0;
    for p in points {
        out.push(&body[prev..p]);
        prev = p;
    }
    out.push(&body[prev..]);
    out
}

/// Cuts `payload` into chunks of the given sizes (the rest in one last chunk).
fn chunked<'a>(payload: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = payload;
    for s in sizes {
        if rest.is_empty() {
            break;
        }
        let (a, b) = rest.split_at((*s).min(rest.len()));
        out.push(a);
        rest = b;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        // Bytes from the format's own alphabet reach deeper states.
        proptest::collection::vec(
            proptest::sample::select(
                b"0123456789abcdefABCDEF;=:\r\n chunk-signature=x-amz-trailer".to_vec()
            ),
            0..400
        ),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(body in garbage(), cuts in proptest::collection::vec(any::<usize>(), 0..8), len in proptest::option::of(0_u64..300)) {
        let pieces = split_at(&body, &cuts);
        let _ = decode_pieces(&mut unsigned_decoder(len, &[CRC32]), &pieces);
        let _ = decode_pieces(&mut unsigned_decoder(len, &[]), &pieces);
        let _ = decode_pieces(&mut signed_decoder(len), &pieces);
        let _ = decode_pieces(&mut signed_trailer_decoder(len, &[CRC32]), &pieces);
    }

    #[test]
    fn mutated_valid_bodies_never_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        sizes in proptest::collection::vec(1_usize..64, 0..6),
        at in any::<usize>(),
        byte in any::<u8>(),
        op in 0_u8..3,
        signed in any::<bool>(),
    ) {
        let chunks = chunked(&payload, &sizes);
        let crc = crc32_b64(&payload);
        let mut body = if signed {
            signed_body(&chunks, Some(&[(CRC32, &crc)]))
        } else {
            unsigned_body(&chunks, &[(CRC32, &crc)])
        };
        let i = at % (body.len() + 1);
        match op {
            0 if i < body.len() => body[i] = byte,
            1 => body.insert(i, byte),
            _ if i < body.len() => { body.remove(i); }
            _ => {}
        }
        let mut dec = if signed {
            signed_trailer_decoder(Some(payload.len() as u64), &[CRC32])
        } else {
            unsigned_decoder(Some(payload.len() as u64), &[CRC32])
        };
        if let Ok((out, t)) = decode(&mut dec, &body) {
            // Whatever got through is a consistent body of the declared length.
            prop_assert_eq!(out.len(), payload.len());
            prop_assert!(t.get(CRC32).is_some());
        }
    }

    #[test]
    fn any_split_decodes_the_same(
        payload in proptest::collection::vec(any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1_usize..700, 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let chunks = chunked(&payload, &sizes);
        let crc = crc32_b64(&payload);
        let len = Some(payload.len() as u64);

        let body = unsigned_body(&chunks, &[(CRC32, &crc)]);
        let (out, t) = decode_pieces(&mut unsigned_decoder(len, &[CRC32]), &split_at(&body, &cuts)).unwrap();
        prop_assert_eq!(&out, &payload);
        prop_assert_eq!(t.get(CRC32), Some(crc.as_str()));

        let body = signed_body(&chunks, None);
        let (out, _) = decode_pieces(&mut signed_decoder(len), &split_at(&body, &cuts)).unwrap();
        prop_assert_eq!(&out, &payload);

        let body = signed_body(&chunks, Some(&[(CRC32, &crc)]));
        let (out, t) = decode_pieces(&mut signed_trailer_decoder(len, &[CRC32]), &split_at(&body, &cuts)).unwrap();
        prop_assert_eq!(&out, &payload);
        prop_assert_eq!(t.get(CRC32), Some(crc.as_str()));
    }
}
