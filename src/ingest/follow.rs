//! Reading lines from a growing file: bounded line length, byte offsets for checkpoints, and
//! file identity (device, inode) for noticing rotation and replacement.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// Longest line read into memory; longer ones are skipped and reported.
pub const MAX_LINE: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Which file a path pointed at: (device, inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            FileId { dev: 0, ino: 0 }
        }
    }

    pub fn of_path(path: &Path) -> io::Result<FileId> {
        std::fs::metadata(path).map(|m| FileId::of(&m))
    }
}

/// One line handed out by [`LineReader::next_line`].
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    /// A whole line without its `\n` (and without a trailing `\r`).
    Text { bytes: &'a [u8], number: u64 },
    /// A line longer than [`MAX_LINE`]: only its start is kept.
    TooLong {
        excerpt: Vec<u8>,
        number: u64,
        len: u64,
    },
}

/// Splits a byte stream into lines without ever holding more than [`MAX_LINE`] of one.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    /// File offset just after the last line handed out.
    offset: u64,
    /// Number of the next line (1-based).
    next_number: u64,
    /// Skipping the rest of an over-long line: its excerpt and length so far.
    skipping: Option<(Vec<u8>, u64)>,
    at_eof: bool,
}

impl<R: Read> LineReader<R> {
    /// `offset` and `first_line` say where in the file `inner` is positioned.
    pub fn new(inner: R, offset: u64, first_line: u64) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(CHUNK),
            start: 0,
            offset,
            next_number: first_line,
            skipping: None,
            at_eof: false,
        }
    }

    /// The offset just after the last line handed out: where to resume.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The number the next line will have.
    pub fn next_number(&self) -> u64 {
        self.next_number
    }

    /// True when the last read found no more bytes.
    pub fn at_eof(&self) -> bool {
        self.at_eof
    }

    /// The next complete line, or None when the data read so far ends without a newline
    /// (call again later to see whether more arrived).
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            let pending = &self.buf[self.start..];
            if let Some(i) = memchr::memchr(b'\n', pending) {
                let number = self.next_number;
                self.next_number += 1;
                let line_start = self.start;
                self.start += i + 1;
                self.offset += (i + 1) as u64;
                if let Some((mut excerpt, len)) = self.skipping.take() {
                    let room = crate::model::REJECT_EXCERPT_BYTES.saturating_sub(excerpt.len());
                    excerpt.extend_from_slice(&pending[..i.min(room)]);
                    return Ok(Some(Line::TooLong {
                        excerpt,
                        number,
                        len: len + i as u64,
                    }));
                }
                if i > MAX_LINE {
                    // Over the limit, though its end arrived in the same read as the rest.
                    let cut = i.min(crate::model::REJECT_EXCERPT_BYTES);
                    return Ok(Some(Line::TooLong {
                        excerpt: self.buf[line_start..line_start + cut].to_vec(),
                        number,
                        len: i as u64,
                    }));
                }
                let mut bytes = &self.buf[line_start..line_start + i];
                if let Some(b) = bytes.strip_suffix(b"\r") {
                    bytes = b;
                }
                return Ok(Some(Line::Text { bytes, number }));
            }
            // No newline in what we hold.
            let held = self.buf.len() - self.start;
            if self.skipping.is_some() || held > MAX_LINE {
                let (excerpt, len) = self.skipping.get_or_insert_with(|| (Vec::new(), 0));
                let room = crate::model::REJECT_EXCERPT_BYTES.saturating_sub(excerpt.len());
                excerpt.extend_from_slice(&self.buf[self.start..self.start + held.min(room)]);
                *len += held as u64;
                self.offset += held as u64;
                self.buf.clear();
                self.start = 0;
            } else if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Reads more bytes; false at end of data.
    fn fill(&mut self) -> io::Result<bool> {
        let old = self.buf.len();
        // Exact growth: the buffer never holds more than one over-long line's limit plus a chunk.
        self.buf.reserve_exact(CHUNK);
        self.buf.resize(old + CHUNK, 0);
        let n = loop {
            match self.inner.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        self.at_eof = n == 0;
        Ok(n > 0)
    }

    /// At true end of input: the last line if it had no newline (or an over-long remainder).
    pub fn take_unterminated(&mut self) -> Option<Line<'_>> {
        let held = self.buf.len() - self.start;
        let number = self.next_number;
        if let Some((mut excerpt, len)) = self.skipping.take() {
            let room = crate::model::REJECT_EXCERPT_BYTES.saturating_sub(excerpt.len());
            excerpt.extend_from_slice(&self.buf[self.start..self.start + held.min(room)]);
            self.offset += held as u64;
            self.next_number += 1;
            self.buf.clear();
            self.start = 0;
            return Some(Line::TooLong {
                excerpt,
                number,
                len: len + held as u64,
            });
        }
        if held == 0 {
            return None;
        }
        let s = self.start;
        self.start = self.buf.len();
        self.offset += held as u64;
        self.next_number += 1;
        let mut bytes = &self.buf[s..];
        if let Some(b) = bytes.strip_suffix(b"\r") {
            bytes = b;
        }
        Some(Line::Text { bytes, number })
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Opens `path` for reading, refusing directories with a clear message.
pub fn open_file(path: &Path) -> io::Result<File> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(io::Error::other("is a directory, not a file"));
    }
    File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<String> {
        let mut r = LineReader::new(input, 0, 1);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(match l {
                Line::Text { bytes, number } => {
                    format!("{number}:{}", String::from_utf8_lossy(bytes))
                }
                Line::TooLong {
                    number,
                    len,
                    excerpt,
                } => format!("{number}:TOO LONG {len} {}", excerpt.len()),
            });
        }
        if let Some(Line::Text { bytes, number }) = r.take_unterminated() {
            out.push(format!(
                "{number}:{}(unterminated)",
                String::from_utf8_lossy(bytes)
            ));
        }
        out
    }

    #[test]
    fn splits_lines_and_tracks_offsets() {
        assert_eq!(
            lines(b"a\nbb\r\n\nc"),
            ["1:a", "2:bb", "3:", "4:c(unterminated)"]
        );
        let mut r = LineReader::new(&b"ab\ncd\n"[..], 100, 7);
        assert!(matches!(
            r.next_line().unwrap(),
            Some(Line::Text { number: 7, .. })
        ));
        assert_eq!(r.offset(), 103);
        r.next_line().unwrap();
        assert_eq!(r.offset(), 106);
        assert_eq!(r.next_line().unwrap(), None);
        assert_eq!(r.offset(), 106);
    }

    #[test]
    fn over_long_lines_are_skipped_without_holding_them() {
        let mut input = b"first\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 3));
        input.extend_from_slice(b"\nlast\n");
        let got = lines(&input);
        assert_eq!(got[0], "1:first");
        assert_eq!(got[1], format!("2:TOO LONG {} 200", MAX_LINE * 3));
        assert_eq!(got[2], "3:last");
        let mut r = LineReader::new(&input[..], 0, 1);
        while r.next_line().unwrap().is_some() {}
        assert_eq!(r.offset(), input.len() as u64);
        assert!(r.buf.capacity() < MAX_LINE + 2 * CHUNK + 1);
    }

    #[test]
    fn the_limit_is_exact_whatever_the_read_boundaries() {
        for extra in [1, 10, CHUNK / 2] {
            let mut input = vec![b'y'; MAX_LINE];
            input.push(b'\n');
            input.extend(std::iter::repeat_n(b'x', MAX_LINE + extra));
            input.extend_from_slice(b"\nlast\n");
            let got = lines(&input);
            assert_eq!(
                got[0].len(),
                2 + MAX_LINE,
                "a line of exactly MAX_LINE bytes is kept"
            );
            assert_eq!(got[1], format!("2:TOO LONG {} 200", MAX_LINE + extra));
            assert_eq!(got[2], "3:last");
        }
    }

    #[test]
    fn appended_data_is_picked_up_after_eof() {
        // A reader over a growing buffer: simulate with a file.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one\ntw").unwrap();
        let mut r = LineReader::new(File::open(&p).unwrap(), 0, 1);
        assert!(r.next_line().unwrap().is_some());
        assert_eq!(r.next_line().unwrap(), None, "partial line waits");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"o\n").unwrap();
        match r.next_line().unwrap() {
            Some(Line::Text { bytes, number }) => {
                assert_eq!(bytes, b"two");
                assert_eq!(number, 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.offset(), 8);
    }
}
