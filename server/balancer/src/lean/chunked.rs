//! Where a chunked body ends, without decoding it: the lean path forwards chunked bytes as
//! they are (the client gets the same framing) and only needs to know when the message is
//! over, so that the next response on a kept-alive connection starts at the right byte.

/// Longest chunk-size line (size + extensions) accepted, like hyper's limit on extensions.
const MAX_SIZE_LINE: u32 = 4096;
/// Longest trailer section accepted.
const MAX_TRAILERS: u32 = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// After the size: `;ext=...` until CR.
    Ext,
    SizeLf,
    /// This many data bytes of the current chunk are still to come.
    Data(u64),
    DataCr,
    DataLf,
    /// Start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Incremental scanner over a chunked body.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedEnd {
    state: State,
    size: u64,
    digits: u32,
    /// Bytes of the current size line or of the trailers, against the limits above.
    line: u32,
}

impl Default for ChunkedEnd {
    fn default() -> Self {
        ChunkedEnd {
            state: State::Size,
            size: 0,
            digits: 0,
            line: 0,
        }
    }
}

impl ChunkedEnd {
    /// Scans `buf`, the next bytes of the body. Returns `Some(n)` when the body ends after
    /// the first `n` bytes of `buf`, `None` when all of `buf` belongs to it and more is to
    /// come, or an error naming what is malformed.
    pub fn feed(&mut self, buf: &[u8]) -> Result<Option<usize>, &'static str> {
        let mut i = 0;
        while i < buf.len() {
            if let State::Data(left) = self.state {
                let take = left.min((buf.len() - i) as u64);
                i += take as usize;
                self.state = match left - take {
                    0 => State::DataCr,
                    rest => State::Data(rest),
                };
                continue;
            }
            self.step(buf[i])?;
            i += 1;
            if self.state == State::Done {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    fn step(&mut self, b: u8) -> Result<(), &'static str> {
        self.state = match self.state {
            State::Size => {
                self.line += 1;
                match (b as char).to_digit(16) {
                    Some(d) => {
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err("chunk size too large");
                        }
                        self.size = self.size * 16 + u64::from(d);
                        State::Size
                    }
                    None if self.digits == 0 => return Err("chunk size is not hexadecimal"),
                    None if b == b'\r' => State::SizeLf,
                    None if b == b';' || b == b' ' || b == b'\t' => State::Ext,
                    None => return Err("invalid byte after a chunk size"),
                }
            }
            State::Ext => {
                self.line += 1;
                if self.line > MAX_SIZE_LINE {
                    return Err("chunk extensions too long");
                }
                match b {
                    b'\r' => State::SizeLf,
                    b'\n' => return Err("chunk size line not ended by CRLF"),
                    _ => State::Ext,
                }
            }
            State::SizeLf if b == b'\n' => {
                let size = self.size;
                (self.size, self.digits, self.line) = (0, 0, 0);
                match size {
                    0 => State::TrailerStart,
                    n => State::Data(n),
                }
            }
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::Size,
            State::TrailerStart if b == b'\r' => State::EndLf,
            State::TrailerStart | State::TrailerLine => {
                self.line += 1;
                if self.line > MAX_TRAILERS {
                    return Err("chunked trailers too long");
                }
                match b {
                    b'\r' => State::TrailerLf,
                    b'\n' => return Err("trailer line not ended by CRLF"),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLf if b == b'\n' => State::TrailerStart,
            State::EndLf if b == b'\n' => State::Done,
            State::Done => return Err("bytes after the end of a chunked body"),
            State::SizeLf | State::DataCr | State::DataLf | State::TrailerLf | State::EndLf => {
                return Err("chunked framing broken (expected CRLF)")
            }
            // `feed` consumes data bytes in bulk and never steps through them.
            State::Data(_) => return Err("chunked scanner out of step"),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(body: &[u8]) -> Result<Option<usize>, &'static str> {
        ChunkedEnd::default().feed(body)
    }

    #[test]
    fn finds_the_end_and_leaves_the_rest() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\nHTTP/1.1 200";
        assert_eq!(end_of(body), Ok(Some(body.len() - 12)));
        let trailers = b"1\r\nx\r\n0\r\nx-sum: 1\r\nx-b: 2\r\n\r\n";
        assert_eq!(end_of(trailers), Ok(Some(trailers.len())));
        assert_eq!(end_of(b"A\r\n0123456789\r\n0\r\n\r\n"), Ok(Some(20)));
    }

    #[test]
    fn byte_by_byte_gives_the_same_answer() {
        let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nt: v\r\n\r\n";
        let mut scan = ChunkedEnd::default();
        for (i, b) in body.iter().enumerate() {
            let got = scan.feed(std::slice::from_ref(b)).expect("valid");
            assert_eq!(got.is_some(), i == body.len() - 1, "byte {i}");
        }
    }

    #[test]
    fn incomplete_bodies_want_more() {
        for cut in [1, 3, 6, 8, 10, 11] {
            let body = b"3\r\nabc\r\n0\r\n\r\n";
            assert_eq!(end_of(&body[..cut]), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn malformed_framing_is_an_error() {
        assert!(end_of(b"zz\r\n").is_err());
        assert!(end_of(b"3\r\nabcX\r\n").is_err());
        assert!(end_of(b"3\nabc").is_err());
        assert!(end_of(b"ffffffffffffffff1\r\n").is_err());
    }
}
