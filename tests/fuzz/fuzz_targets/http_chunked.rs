//! `twofold::http::ChunkedDecoder` fed the input in two pieces, split at a position taken
//! from the first byte, and driven until it is done or fails.
//!
//! Checks: data slices are non-empty, lie within the piece they came from (so are never
//! longer than the input), the consumed count never passes the piece, `NeedMore` means the
//! whole piece was consumed, all data together is shorter than the input, an error is
//! returned again on the next call, and `Done` stays `Done`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use twofold::http::{ChunkedDecoder, Step};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let split = input.len() * usize::from(ctl) / 255;
    let pieces = [&input[..split], &input[split..]];

    let mut dec = ChunkedDecoder::new();
    let mut total_data = 0usize;
    'pieces: for piece in pieces {
        let mut rest = piece;
        loop {
            match dec.decode(rest) {
                Ok((n, step)) => {
                    assert!(n <= rest.len(), "consumed {n} of {}", rest.len());
                    match step {
                        Step::Data(d) => {
                            assert!(!d.is_empty(), "empty Data step");
                            assert!(d.len() <= n && d.len() <= input.len());
                            // The slice is the last `d.len()` consumed bytes of `rest`.
                            assert_eq!(d.as_ptr(), rest[n - d.len()..].as_ptr());
                            total_data += d.len();
                            rest = &rest[n..];
                        }
                        Step::NeedMore => {
                            assert_eq!(n, rest.len(), "NeedMore without consuming everything");
                            assert!(!dec.is_done());
                            continue 'pieces;
                        }
                        Step::Done => {
                            assert!(dec.is_done());
                            assert_eq!(dec.decode(&rest[n..]), Ok((0, Step::Done)));
                            break 'pieces;
                        }
                    }
                }
                Err(e) => {
                    // The first error is remembered and returned again.
                    assert_eq!(dec.decode(b"0\r\n\r\n"), Err(e));
                    break 'pieces;
                }
            }
        }
    }
    assert!(total_data <= input.len());
});
