//! `twofold::sigv4::awschunked::Decoder` fed the input in pieces, then `finish()`, in three modes:
//!
//! - `STREAMING-UNSIGNED-PAYLOAD-TRAILER` declaring `x-amz-checksum-crc32`;
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` with the chunk signer of the S3 documentation's
//!   chunked PUT example (so that example's body verifies);
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` with the signer of the documentation's
//!   trailer example, declaring `x-amz-checksum-crc32c`.
//!
//! No decoded length is declared, so that bodies of any length can reach the trailers.
//!
//! The first input byte is the piece size (0: the whole body at once). Checks: consumed counts
//! stay within the piece, data slices are non-empty and within the piece, `NeedMore` means
//! the piece was consumed, the data adds up to `decoded_len()` and to less than the input,
//! and an error is returned again by the next `decode` and by `finish`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use twofold::sigv4::awschunked::{Decoder, Step};
use twofold::sigv4::{ChunkSigner, PayloadMode, Secret, SigningKey, canonical};

/// From tests/vectors/sigv4/s3-examples.json (the S3 API Reference's examples).
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TIMESTAMP: &str = "20130524T000000Z";
const SEED_CHUNKED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const SEED_TRAILER: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";

fn signer(seed: &str) -> ChunkSigner {
    let key = SigningKey::derive(&Secret::new(SECRET), "20130524", "us-east-1", "s3");
    let scope = canonical::scope("20130524", "us-east-1", "s3");
    match ChunkSigner::new(key, TIMESTAMP, &scope, seed) {
        Ok(s) => s,
        Err(e) => panic!("fixed chunk signer refused: {e:?}"),
    }
}

fn signers() -> &'static (ChunkSigner, ChunkSigner) {
    static SIGNERS: OnceLock<(ChunkSigner, ChunkSigner)> = OnceLock::new();
    SIGNERS.get_or_init(|| (signer(SEED_CHUNKED), signer(SEED_TRAILER)))
}

fn run(mut dec: Decoder, input: &[u8], piece: usize) {
    let mut total_data = 0usize;
    let mut failed = None;
    'pieces: for chunk in input.chunks(piece.max(1)) {
        let mut rest = chunk;
        loop {
            match dec.decode(rest) {
                Ok((n, step)) => {
                    assert!(n <= rest.len(), "consumed {n} of {}", rest.len());
                    match step {
                        Step::Data(d) => {
                            assert!(!d.is_empty(), "empty Data step");
                            assert!(d.len() <= n && d.len() <= input.len());
                            assert_eq!(d.as_ptr(), rest[n - d.len()..].as_ptr());
                            total_data += d.len();
                            rest = &rest[n..];
                            if rest.is_empty() {
                                continue 'pieces;
                            }
                        }
                        Step::NeedMore => {
                            assert_eq!(n, rest.len(), "NeedMore without consuming everything");
                            continue 'pieces;
                        }
                        Step::Done { trailers } => {
                            assert!(dec.is_done());
                            let _ = trailers.checksum();
                            assert!(trailers.len() <= 16);
                            // Anything after the end is an error; nothing is a no-op.
                            rest = &rest[n..];
                            if rest.is_empty() {
                                continue 'pieces;
                            }
                        }
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break 'pieces;
                }
            }
        }
    }
    assert!(total_data <= input.len());
    assert_eq!(dec.decoded_len(), total_data as u64);
    match failed {
        Some(e) => {
            assert_eq!(
                dec.decode(b"0\r\n\r\n").err(),
                Some(e.clone()),
                "error not repeated"
            );
            assert_eq!(dec.finish().err(), Some(e), "finish forgot the error");
        }
        None => {
            let was_done = dec.is_done();
            match dec.finish() {
                Ok(t) => {
                    assert!(dec.is_done());
                    if was_done {
                        assert!(t.is_none());
                    }
                }
                Err(e) => {
                    assert!(!was_done);
                    assert_eq!(dec.finish().err(), Some(e), "finish error not repeated");
                }
            }
        }
    }
    let _ = format!("{dec:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let piece = if ctl == 0 {
        input.len()
    } else {
        usize::from(ctl)
    };
    let (chunked, trailer) = signers();

    let crc32 = ["x-amz-checksum-crc32".to_owned()];
    match Decoder::new(PayloadMode::StreamingUnsignedTrailer, None, None, &crc32) {
        Ok(dec) => run(dec, input, piece),
        Err(e) => panic!("unsigned decoder refused: {e:?}"),
    }
    match Decoder::new(
        PayloadMode::StreamingSigned,
        Some(chunked.clone()),
        None,
        &[],
    ) {
        Ok(dec) => run(dec, input, piece),
        Err(e) => panic!("signed decoder refused: {e:?}"),
    }
    let crc32c = ["x-amz-checksum-crc32c".to_owned()];
    match Decoder::new(
        PayloadMode::StreamingSignedTrailer,
        Some(trailer.clone()),
        None,
        &crc32c,
    ) {
        Ok(dec) => run(dec, input, piece),
        Err(e) => panic!("signed trailer decoder refused: {e:?}"),
    }
});
