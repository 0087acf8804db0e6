//! `Transfer-Encoding: chunked` (RFC 9112 §7.1): an incremental decoder that hands out chunk
//! data as slices of its input, and the three writes that encode a body.
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! last-chunk   = 1*"0" [ chunk-ext ] CRLF
//! chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//! ```
//!
//! Extensions are skipped (their bytes count against [`CHUNK_LINE_BYTES_MAX`]); trailer fields
//! are skipped (their bytes count against [`TRAILER_BYTES_MAX`]). Bare CR or LF anywhere in the
//! framing is an error, as is anything but spaces, tabs, `;` or CR after the size digits.

use super::HttpError;

/// Longest chunk-size line: size digits (leading zeros included) and extensions, without the
/// CRLF.
pub const CHUNK_LINE_BYTES_MAX: usize = 4 * 1024;
/// Longest trailer section, field lines and their CRLFs, without the final CRLF.
pub const TRAILER_BYTES_MAX: usize = 16 * 1024;

/// What [`ChunkedDecoder::decode`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Body bytes, a slice of the input (never empty).
    Data(&'a [u8]),
    /// All input consumed and more is needed.
    NeedMore,
    /// The body, its last chunk and trailer section have ended; bytes after the consumed count
    /// belong to the next message.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `line` counts the bytes of the size line so far.
    Size {
        size: u64,
        digits: bool,
        line: usize,
    },
    /// After the digits: whitespace, then `;` and extensions, up to CR.
    Ext {
        size: u64,
        line: usize,
        semicolon: bool,
    },
    /// CR of the size line seen, LF expected.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final CRLF.
    TrailerLineStart {
        total: usize,
    },
    TrailerLine {
        total: usize,
    },
    TrailerLineLf {
        total: usize,
    },
    /// CR of the final CRLF seen, LF expected.
    EndLf,
    Done,
}

/// Decodes a chunked body incrementally. Feed it whatever has arrived; it never copies body
/// bytes, never panics, and remembers its first error.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    failed: Option<HttpError>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size {
                size: 0,
                digits: false,
                line: 0,
            },
            failed: None,
        }
    }

    /// Whether the whole body, trailers included, has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Reads from the start of `input`. Returns how many bytes of `input` were consumed and
    /// what they held: data (the slice is the last `n` consumed bytes), nothing yet
    /// (`NeedMore`, every byte consumed), or the end of the body (bytes after the consumed
    /// count are not part of it). Call again with the rest of the input after `Data`; after
    /// `Done` further calls return `(0, Done)`. After an error every call returns it again.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Step<'a>), HttpError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut i = 0;
        loop {
            match self.state {
                State::Done => return Ok((i, Step::Done)),
                State::Data { remaining } => {
                    let avail = input.len() - i;
                    if avail == 0 {
                        return Ok((i, Step::NeedMore));
                    }
                    let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { remaining: left }
                    };
                    return Ok((i + n, Step::Data(&input[i..i + n])));
                }
                _ => {}
            }
            let Some(&b) = input.get(i) else {
                return Ok((i, Step::NeedMore));
            };
            i += 1;
            match next(self.state, b) {
                Ok(s) => self.state = s,
                Err(e) => {
                    self.failed = Some(e.clone());
                    return Err(e);
                }
            }
        }
    }
}

/// The state after one framing byte (every state but `Data` and `Done`).
fn next(state: State, b: u8) -> Result<State, HttpError> {
    let line_too_long = HttpError::ChunkLineTooLong {
        limit_bytes: CHUNK_LINE_BYTES_MAX,
    };
    let trailer_too_large = HttpError::TrailerTooLarge {
        limit_bytes: TRAILER_BYTES_MAX,
    };
    Ok(match state {
        State::Size { size, digits, line } => {
            if digits && b == b'\r' {
                return Ok(State::SizeLf { size });
            }
            if line >= CHUNK_LINE_BYTES_MAX {
                return Err(line_too_long);
            }
            if let Some(d) = hex_value(b) {
                let size = size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(d))
                    .ok_or(HttpError::InvalidChunk)?;
                State::Size {
                    size,
                    digits: true,
                    line: line + 1,
                }
            } else if !digits {
                return Err(HttpError::InvalidChunk);
            } else {
                match b {
                    b';' => State::Ext {
                        size,
                        line: line + 1,
                        semicolon: true,
                    },
                    b' ' | b'\t' => State::Ext {
                        size,
                        line: line + 1,
                        semicolon: false,
                    },
                    _ => return Err(HttpError::InvalidChunk),
                }
            }
        }
        State::Ext {
            size,
            line,
            semicolon,
        } => match b {
            b'\r' => State::SizeLf { size },
            _ if line >= CHUNK_LINE_BYTES_MAX => return Err(line_too_long),
            b';' => State::Ext {
                size,
                line: line + 1,
                semicolon: true,
            },
            b' ' | b'\t' => State::Ext {
                size,
                line: line + 1,
                semicolon,
            },
            _ if !semicolon || is_control(b) => return Err(HttpError::InvalidChunk),
            _ => State::Ext {
                size,
                line: line + 1,
                semicolon,
            },
        },
        State::SizeLf { size } => match (b, size) {
            (b'\n', 0) => State::TrailerLineStart { total: 0 },
            (b'\n', _) => State::Data { remaining: size },
            _ => return Err(HttpError::InvalidChunk),
        },
        State::DataCr => match b {
            b'\r' => State::DataLf,
            _ => return Err(HttpError::InvalidChunk),
        },
        State::DataLf => match b {
            b'\n' => State::Size {
                size: 0,
                digits: false,
                line: 0,
            },
            _ => return Err(HttpError::InvalidChunk),
        },
        State::TrailerLineStart { total } => match b {
            b'\r' => State::EndLf,
            // Obsolete folding has no place in a trailer either.
            b' ' | b'\t' => return Err(HttpError::InvalidChunk),
            _ if total >= TRAILER_BYTES_MAX => return Err(trailer_too_large),
            _ if is_control(b) => return Err(HttpError::InvalidChunk),
            _ => State::TrailerLine { total: total + 1 },
        },
        State::TrailerLine { total } => match b {
            _ if total >= TRAILER_BYTES_MAX => return Err(trailer_too_large),
            b'\r' => State::TrailerLineLf { total: total + 1 },
            _ if is_control(b) => return Err(HttpError::InvalidChunk),
            _ => State::TrailerLine { total: total + 1 },
        },
        State::TrailerLineLf { total } => match b {
            _ if total >= TRAILER_BYTES_MAX => return Err(trailer_too_large),
            b'\n' => State::TrailerLineStart { total: total + 1 },
            _ => return Err(HttpError::InvalidChunk),
        },
        State::EndLf => match b {
            b'\n' => State::Done,
            _ => return Err(HttpError::InvalidChunk),
        },
        // `decode` handles these two without calling here; staying put is the safe answer.
        State::Data { .. } | State::Done => state,
    })
}

fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some(u64::from(b - b'0')),
        b'a'..=b'f' => Some(u64::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u64::from(b - b'A' + 10)),
        _ => None,
    }
}

/// Control characters other than tab (which is whitespace).
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Appends the size line of a chunk of `len` bytes (`{len:x}\r\n`); the caller then writes
/// the data and [`chunked_frame_footer`]. Writes nothing for `len == 0`, since a zero-size
/// chunk would end the body: end it with [`chunked_end`].
pub fn chunked_frame_header(len: usize, out: &mut Vec<u8>) {
    if len == 0 {
        return;
    }
    let mut digits = [0u8; 2 * size_of::<usize>()];
    let mut n = len;
    let mut at = digits.len();
    while n > 0 {
        at -= 1;
        digits[at] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

/// Appends the CRLF that follows chunk data.
pub fn chunked_frame_footer(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// Appends one whole chunk holding `data`; nothing when `data` is empty.
pub fn chunked_frame(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    chunked_frame_header(data.len(), out);
    out.extend_from_slice(data);
    chunked_frame_footer(out);
}

/// Appends the last chunk and an empty trailer section: `0\r\n\r\n`.
pub fn chunked_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}
