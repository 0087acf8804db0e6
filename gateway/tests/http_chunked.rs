//! `Transfer-Encoding: chunked`: decoding, its limits at their boundaries, malformed framing,
//! and the encoder.

// Test code throughout, helpers included: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use twofold::http::{
    CHUNK_LINE_BYTES_MAX, ChunkedDecoder, HttpError, Step, TRAILER_BYTES_MAX, chunked_end,
    chunked_frame, chunked_frame_footer, chunked_frame_header,
};

/// Feeds `input` in one piece, as an I/O loop would: returns the data, the bytes consumed up to
/// `Done`, or the error.
fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), HttpError> {
    let mut d = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut at = 0;
    loop {
        let (n, step) = d.decode(&input[at..])?;
        at += n;
        match step {
            Step::Data(bytes) => {
                assert!(!bytes.is_empty());
                data.extend_from_slice(bytes);
            }
            Step::NeedMore => {
                assert_eq!(at, input.len(), "NeedMore consumes everything");
                return Err(HttpError::IncompleteBody);
            }
            Step::Done => {
                assert!(d.is_done());
                return Ok((data, at));
            }
        }
    }
}

fn decode_err(input: &[u8]) -> HttpError {
    decode_all(input).expect_err("should be refused")
}

#[test]
fn decodes_chunks() {
    let body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    assert_eq!(decode_all(body), Ok((b"hello world".to_vec(), body.len())));
}

#[test]
fn data_is_a_slice_of_the_input() {
    let body = b"3\r\nabc\r\n0\r\n\r\n";
    let mut d = ChunkedDecoder::new();
    let (n, step) = d.decode(body).unwrap();
    assert_eq!(n, 6);
    let Step::Data(data) = step else {
        panic!("{step:?}")
    };
    assert_eq!(data, b"abc");
    assert!(std::ptr::eq(data.as_ptr(), body[3..].as_ptr()), "no copy");
    assert_eq!(d.decode(&body[n..]).unwrap(), (7, Step::Done));
}

#[test]
fn hex_sizes_any_case_and_leading_zeros() {
    let mut body = b"A\r\n0123456789\r\n00b\r\n0123456789a\r\n".to_vec();
    body.extend_from_slice(b"1F\r\n");
    body.extend_from_slice(&[b'x'; 31]);
    body.extend_from_slice(b"\r\n000\r\n\r\n");
    let (data, n) = decode_all(&body).unwrap();
    assert_eq!(data.len(), 10 + 11 + 31);
    assert_eq!(n, body.len());
}

#[test]
fn extensions_are_ignored() {
    for line in [
        "5;a=b",
        "5;a",
        "5 ;a=b",
        "5\t; a = \"q;u\\\"o\"",
        "5;a=b;c=d",
        "5;chunk-signature=abcdef0123",
    ] {
        let body = format!("{line}\r\nhello\r\n0;last\r\n\r\n");
        assert_eq!(
            decode_all(body.as_bytes()),
            Ok((b"hello".to_vec(), body.len())),
            "{line}"
        );
    }
    // Whitespace after the size with no extension is allowed (BWS).
    assert_eq!(decode_all(b"5 \r\nhello\r\n0\r\n\r\n").unwrap().0, b"hello");
}

#[test]
fn trailers_are_discarded() {
    let body = b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\nOther: 1\r\n\r\n";
    assert_eq!(decode_all(body), Ok((b"hello".to_vec(), body.len())));
}

#[test]
fn done_leaves_the_next_message_and_stays_done() {
    let body = b"0\r\n\r\nGET / HTTP/1.1\r\n";
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.decode(body).unwrap(), (5, Step::Done));
    assert_eq!(d.decode(&body[5..]).unwrap(), (0, Step::Done));
    assert!(d.is_done());
}

#[test]
fn need_more_and_data_across_calls() {
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.decode(b"").unwrap(), (0, Step::NeedMore));
    assert_eq!(d.decode(b"a").unwrap(), (1, Step::NeedMore));
    assert_eq!(d.decode(b"\r").unwrap(), (1, Step::NeedMore));
    assert_eq!(d.decode(b"\n").unwrap(), (1, Step::NeedMore));
    assert_eq!(d.decode(b"0123").unwrap(), (4, Step::Data(b"0123")));
    assert_eq!(d.decode(b"").unwrap(), (0, Step::NeedMore));
    assert_eq!(d.decode(b"456789\r").unwrap(), (6, Step::Data(b"456789")));
    assert_eq!(d.decode(b"\r").unwrap(), (1, Step::NeedMore));
    assert_eq!(d.decode(b"\n0\r\n\r").unwrap(), (5, Step::NeedMore));
    assert!(!d.is_done());
    assert_eq!(d.decode(b"\n").unwrap(), (1, Step::Done));
}

#[test]
fn largest_chunk_size_is_accepted_and_overflow_refused() {
    let mut d = ChunkedDecoder::new();
    assert_eq!(
        d.decode(b"ffffffffffffffff\r\nab").unwrap(),
        (20, Step::Data(b"ab"))
    );
    let mut d = ChunkedDecoder::new();
    assert_eq!(
        d.decode(b"0000ffffffffffffffff\r\n").unwrap(),
        (22, Step::NeedMore)
    );
    assert_eq!(
        decode_err(b"10000000000000000\r\n"),
        HttpError::InvalidChunk
    );
    assert_eq!(
        decode_err(b"fffffffffffffffff\r\n"),
        HttpError::InvalidChunk
    );
}

#[test]
fn malformed_framing_is_refused() {
    for body in [
        &b"\r\n"[..],
        b";a\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"x\r\n",
        b"-1\r\n",
        b"+5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\rhello",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhello\r\r",
        b"5 x\r\nhello\r\n",
        b"5 5\r\nhello\r\n",
        b"5;a\x00b\r\nhello\r\n",
        b"5;a\nb\r\nhello\r\n",
        b"5;a\rb\r\nhello\r\n",
        b"0\r\nX: a\r\n b\r\n\r\n",
        b"0\r\nX: a\n\r\n",
        b"0\r\nX: a\x00\r\n\r\n",
        b"0\r\n\rX",
        b"0\r\n\n",
        b"0\r\n\r\r",
    ] {
        let e = decode_err(body);
        assert_eq!(
            e,
            HttpError::InvalidChunk,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!((e.status(), e.s3_code().as_str()), (400, "BadRequest"));
    }
}

#[test]
fn errors_are_sticky() {
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.decode(b"z"), Err(HttpError::InvalidChunk));
    assert_eq!(
        d.decode(b"5\r\nhello\r\n0\r\n\r\n"),
        Err(HttpError::InvalidChunk)
    );
}

#[test]
fn chunk_line_limit_boundary() {
    // Size digit plus extension bytes: exactly the limit is accepted.
    let ext = |len: usize| format!("5;{}", "e".repeat(len - 2));
    let ok = format!("{}\r\nhello\r\n0\r\n\r\n", ext(CHUNK_LINE_BYTES_MAX));
    assert_eq!(decode_all(ok.as_bytes()).unwrap().0, b"hello");
    let over = format!("{}\r\nhello\r\n0\r\n\r\n", ext(CHUNK_LINE_BYTES_MAX + 1));
    let e = decode_err(over.as_bytes());
    assert_eq!(
        e,
        HttpError::ChunkLineTooLong {
            limit_bytes: CHUNK_LINE_BYTES_MAX
        }
    );
    assert_eq!(
        (e.status(), e.s3_code().as_str()),
        (400, "MaxMessageLengthExceeded")
    );
    // Leading zeros count too.
    let zeros = format!(
        "{}5\r\nhello\r\n0\r\n\r\n",
        "0".repeat(CHUNK_LINE_BYTES_MAX - 1)
    );
    assert_eq!(decode_all(zeros.as_bytes()).unwrap().0, b"hello");
    let zeros = format!(
        "{}5\r\nhello\r\n0\r\n\r\n",
        "0".repeat(CHUNK_LINE_BYTES_MAX)
    );
    assert!(matches!(
        decode_err(zeros.as_bytes()),
        HttpError::ChunkLineTooLong { .. }
    ));
    // The limit applies to the last chunk's line as well.
    let last = format!("0;{}\r\n\r\n", "e".repeat(CHUNK_LINE_BYTES_MAX - 1));
    assert!(matches!(
        decode_err(last.as_bytes()),
        HttpError::ChunkLineTooLong { .. }
    ));
}

#[test]
fn trailer_limit_boundary() {
    // One field line of `n` bytes including its CRLF.
    let trailer = |n: usize| format!("0\r\nX: {}\r\n\r\n", "v".repeat(n - 5));
    assert!(decode_all(trailer(TRAILER_BYTES_MAX).as_bytes()).is_ok());
    let e = decode_err(trailer(TRAILER_BYTES_MAX + 1).as_bytes());
    assert_eq!(
        e,
        HttpError::TrailerTooLarge {
            limit_bytes: TRAILER_BYTES_MAX
        }
    );
    assert_eq!(e.status(), 431);
    // Many small lines add up.
    let many = format!("0\r\n{}\r\n", "X: v\r\n".repeat(TRAILER_BYTES_MAX / 6 + 1));
    assert!(matches!(
        decode_err(many.as_bytes()),
        HttpError::TrailerTooLarge { .. }
    ));
}

#[test]
fn encoder() {
    let mut out = Vec::new();
    chunked_frame_header(255, &mut out);
    assert_eq!(out, b"ff\r\n");
    out.clear();
    chunked_frame_header(0, &mut out);
    assert!(out.is_empty(), "a zero-size chunk would end the body");
    chunked_frame_header(1, &mut out);
    chunked_frame_header(usize::MAX, &mut out);
    assert_eq!(out, format!("1\r\n{:x}\r\n", usize::MAX).as_bytes());
    out.clear();
    chunked_frame(b"abc", &mut out);
    chunked_frame(b"", &mut out);
    chunked_frame_header(2, &mut out);
    out.extend_from_slice(b"de");
    chunked_frame_footer(&mut out);
    chunked_end(&mut out);
    assert_eq!(out, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_eq!(decode_all(&out), Ok((b"abcde".to_vec(), out.len())));
}

#[test]
fn encoder_round_trips_sizes_across_hex_digit_boundaries() {
    for len in [1usize, 15, 16, 17, 255, 256, 4095, 4096, 65536] {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        chunked_frame(&data, &mut out);
        chunked_end(&mut out);
        assert_eq!(decode_all(&out), Ok((data, out.len())), "{len}");
    }
}
