//! Streaming adapters over [`SegmentCipher`]: seal a byte stream of unknown length into a
//! part's stored body, and open one back, in memory bounded by one segment plus a byte.
//!
//! The writer holds back one full segment until it knows whether more data follows, so the
//! last segment carries the final flag without the length being known in advance. The
//! reader looks one byte past each stored segment for the same reason. Plaintext of a
//! segment is released only after both of its tags have verified.

use super::layout::SEGMENT_OVERHEAD_BYTES;
use super::{Error, SegmentCipher};
use std::io::{self, Read, Write};
use zeroize::Zeroizing;

const OVERHEAD: usize = SEGMENT_OVERHEAD_BYTES as usize;

fn io_err(e: Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Recovers the envelope error from an I/O error produced by this module.
pub fn envelope_error(e: &io::Error) -> Option<&Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
}

/// Seals everything written to it into `out`. Call [`EncryptWriter::finish`] at the end:
/// without it the final segment is never written and the part will not open.
#[derive(Debug)]
pub struct EncryptWriter<W: Write> {
    cipher: SegmentCipher,
    out: W,
    buf: Zeroizing<Vec<u8>>,
    filled: usize,
    index: u64,
    written: u64,
}

impl<W: Write> EncryptWriter<W> {
    /// A writer sealing into `out` with `cipher`.
    pub fn new(cipher: SegmentCipher, out: W) -> Self {
        let seg = cipher.segment_size().bytes_usize();
        Self {
            cipher,
            out,
            buf: Zeroizing::new(vec![0u8; seg + OVERHEAD]),
            filled: 0,
            index: 0,
            written: 0,
        }
    }

    fn seal_segment(&mut self, last: bool) -> io::Result<()> {
        let n = self
            .cipher
            .seal(self.index, last, &mut self.buf, self.filled)
            .map_err(io_err)?;
        self.out.write_all(&self.buf[..n])?;
        self.written += n as u64;
        self.index += 1;
        self.filled = 0;
        Ok(())
    }

    /// Seals the final segment, flushes, and returns the inner writer and the number of
    /// stored bytes written.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.seal_segment(true)?;
        self.out.flush()?;
        Ok((self.out, self.written))
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let seg = self.cipher.segment_size().bytes_usize();
        let mut rest = data;
        while !rest.is_empty() {
            if self.filled == seg {
                // More data follows a full segment, so that one is not the last.
                self.seal_segment(false)?;
            }
            let n = rest.len().min(seg - self.filled);
            self.buf[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
            self.filled += n;
            rest = &rest[n..];
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Opens a part's stored body read from `input`, yielding verified plaintext. Errors come
/// back as `io::ErrorKind::InvalidData` wrapping an [`Error`] (see [`envelope_error`]).
#[derive(Debug)]
pub struct DecryptReader<R: Read> {
    cipher: SegmentCipher,
    input: R,
    /// Stored bytes read ahead; after a segment is opened, `buf[out_pos..out_end]` is its
    /// plaintext, and `carry` bytes of the next segment wait at `buf[stored_len..]`.
    buf: Zeroizing<Vec<u8>>,
    out_pos: usize,
    out_end: usize,
    carry: Option<u8>,
    index: u64,
    done: bool,
    /// Set by the first failure; every later read repeats it, so a caller that reads
    /// again after an error can never be handed the rest of a damaged stream.
    failed: Option<io::ErrorKind>,
}

impl<R: Read> DecryptReader<R> {
    /// A reader opening `input` with `cipher`.
    pub fn new(cipher: SegmentCipher, input: R) -> Self {
        let seg = cipher.segment_size().bytes_usize();
        Self {
            cipher,
            input,
            buf: Zeroizing::new(vec![0u8; seg + OVERHEAD + 1]),
            out_pos: 0,
            out_end: 0,
            carry: None,
            index: 0,
            done: false,
            failed: None,
        }
    }

    /// Reads and opens the next stored segment into `buf`.
    fn next_segment(&mut self) -> io::Result<()> {
        let want = self.buf.len(); // one full stored segment plus one byte of look-ahead
        let mut have = 0;
        if let Some(b) = self.carry.take() {
            self.buf[0] = b;
            have = 1;
        }
        while have < want {
            match self.input.read(&mut self.buf[have..want]) {
                Ok(0) => break,
                Ok(n) => have += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let part = self.cipher.part();
        let plain = if have == want {
            // A byte follows this full segment: it is not the last one.
            self.carry = Some(self.buf[want - 1]);
            self.cipher
                .open(self.index, false, &mut self.buf[..want - 1])
                .map_err(io_err)?
        } else {
            self.done = true;
            if have == 0 {
                return Err(io_err(if self.index == 0 {
                    Error::Framing {
                        part,
                        reason: "no segments at all",
                    }
                } else {
                    Error::Truncated {
                        part,
                        segment: self.index - 1,
                    }
                }));
            }
            self.cipher
                .open_final(self.index, &mut self.buf[..have])
                .map_err(io_err)?
        };
        self.index += 1;
        self.out_pos = 0;
        self.out_end = plain;
        Ok(())
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(kind) = self.failed {
            return Err(io::Error::new(
                kind,
                "the stream already failed; nothing more is released",
            ));
        }
        while self.out_pos == self.out_end {
            if self.done {
                return Ok(0);
            }
            if let Err(e) = self.next_segment() {
                self.failed = Some(e.kind());
                self.out_pos = 0;
                self.out_end = 0;
                return Err(e);
            }
        }
        let n = out.len().min(self.out_end - self.out_pos);
        out[..n].copy_from_slice(&self.buf[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}
