//! Streaming reader of a GitLab job log (a trace): fed in chunks as they arrive, it keeps only
//! the last [`TAIL_BYTES`] and a bounded number of error-looking lines with a few lines of
//! context, so a multi-megabyte log never sits in memory. Lines are cleaned the way a terminal
//! shows them: ANSI escapes dropped, `\r` rewrites applied (`\e[0K` erases), GitLab's
//! `section_start:TS:NAME` / `section_end:TS:NAME` markers removed but their names kept.

use std::sync::LazyLock;

use regex::bytes::Regex;

/// The raw bytes of the log's end kept for matching and the fallback fingerprint.
pub const TAIL_BYTES: usize = 64 * 1024;
/// Error-looking lines kept from the whole log (the first ones: the decisive error comes first).
pub const MAX_CANDIDATES: usize = 24;
/// Lines after an error-looking line kept with it (stack traces, `Expression:` lines).
pub const CONTEXT_LINES: usize = 4;
/// A single line longer than this is cut (minified files, progress bars without newlines).
pub const MAX_LINE: usize = 4096;
/// Bytes without a newline after which the pending text is taken as a line anyway.
const MAX_CARRY: usize = 1 << 20;

/// What marks a line worth keeping: errors of many tools, and the section markers.
static KEYWORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"ERROR|FATAL|[Ee]rror[:\[]|panicked at|panic:|Traceback|Exception|--- FAIL|npm ERR!|Test Failed|Killed|[Ss]egmentation fault|section_start:|section_end:",
    )
    .expect("a constant regex")
});

/// One error-looking line with what followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub line: String,
    pub context: Vec<String>,
    /// The collapsible section it was printed in (`step_script`, `after_script`, ...).
    pub section: Option<String>,
}

/// What is kept of a whole log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScannedLog {
    pub candidates: Vec<Candidate>,
    /// The cleaned lines of the last [`TAIL_BYTES`], each with its section.
    pub tail: Vec<(String, Option<String>)>,
    /// Bytes read in all.
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct LogScanner {
    buf: Vec<u8>,
    tail: Vec<u8>,
    candidates: Vec<Candidate>,
    /// Lines of context still wanted by the last candidate.
    want: usize,
    section: Option<String>,
    bytes: u64,
}

/// A section marker found in a raw line.
#[derive(Debug, PartialEq, Eq)]
enum Marker<'a> {
    Start(&'a str),
    End,
}

fn marker(raw: &[u8]) -> Option<Marker<'_>> {
    for (tag, start) in [
        (&b"section_start:"[..], true),
        (&b"section_end:"[..], false),
    ] {
        if let Some(i) = memchr::memmem::find(raw, tag) {
            if !start {
                return Some(Marker::End);
            }
            let rest = &raw[i + tag.len()..];
            // TS:NAME[options]\r...
            let colon = memchr::memchr(b':', rest)?;
            let name = &rest[colon + 1..];
            let end = name
                .iter()
                .position(|&b| matches!(b, b'\r' | b'\n' | b'[' | 0x1b))
                .unwrap_or(name.len());
            return std::str::from_utf8(&name[..end]).ok().map(Marker::Start);
        }
    }
    None
}

/// The length of a runner timestamp prefix at the start of `raw` (`FF_TIMESTAMPS`, on for
/// GitLab.com hosted runners): `2026-12-01T02:10:00.123456Z 00O ` (RFC 3339 UTC time, a space,
/// two hex digits of stream, `O` stdout or `E` stderr, `+` when the line continues the
/// previous one, a space); 0 when there is none.
pub fn timestamp_prefix(raw: &[u8]) -> usize {
    // The fixed part `YYYY-MM-DDTHH:MM:SS` first: cheap to reject.
    const SHAPE: &[u8] = b"dddd-dd-ddTdd:dd:dd";
    if raw.len() < SHAPE.len() + 6 {
        return 0;
    }
    for (i, &c) in SHAPE.iter().enumerate() {
        let ok = if c == b'd' {
            raw[i].is_ascii_digit()
        } else {
            raw[i] == c
        };
        if !ok {
            return 0;
        }
    }
    let mut i = SHAPE.len();
    if raw.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while raw.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return 0;
        }
    }
    if raw.get(i) != Some(&b'Z') || raw.get(i + 1) != Some(&b' ') {
        return 0;
    }
    i += 2;
    let stream = |b: Option<&u8>| b.is_some_and(u8::is_ascii_hexdigit);
    if !stream(raw.get(i))
        || !stream(raw.get(i + 1))
        || !matches!(raw.get(i + 2), Some(b'O' | b'E'))
    {
        return 0;
    }
    i += 3;
    if raw.get(i) == Some(&b'+') {
        i += 1;
    }
    match raw.get(i) {
        Some(b' ') => i + 1,
        // A line with nothing after the prefix.
        None | Some(b'\r' | b'\n') => i,
        _ => 0,
    }
}

/// One raw line as a terminal would show it: escapes dropped, `\r` returns to the start and
/// overwrites, `ESC [ K` erases to the end, section markers removed. Cut at [`MAX_LINE`].
pub fn clean_line(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let mut out: Vec<u8> = Vec::with_capacity(raw.len().min(MAX_LINE));
    let mut cursor = 0usize;
    // The runner's timestamp goes before anything else, so that a timestamped log reads (and
    // fingerprints) as the same log without.
    let mut i = timestamp_prefix(raw);
    while i < raw.len() {
        let b = raw[i];
        match b {
            0x1b => {
                // CSI: ESC [ params final; other escapes: ESC + one byte.
                if raw.get(i + 1) == Some(&b'[') {
                    let mut j = i + 2;
                    while j < raw.len() && !(0x40..=0x7e).contains(&raw[j]) {
                        j += 1;
                    }
                    if raw.get(j) == Some(&b'K') {
                        out.truncate(cursor);
                    }
                    i = j + 1;
                } else {
                    i += 2;
                }
                continue;
            }
            b'\r' => {
                cursor = 0;
                i += 1 + timestamp_prefix(&raw[i + 1..]);
                continue;
            }
            b'\t' => put(&mut out, &mut cursor, b' '),
            0..=0x1f | 0x7f => {}
            _ => put(&mut out, &mut cursor, b),
        }
        i += 1;
        if cursor >= MAX_LINE {
            break;
        }
    }
    let mut text = String::from_utf8_lossy(&out).into_owned();
    // Markers not erased by `\r\e[0K` (logs saved without escapes).
    for tag in ["section_start:", "section_end:"] {
        if let Some(rest) = text.strip_prefix(tag) {
            let skip = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            text = rest[skip..].trim_start().to_string();
        }
    }
    text.truncate(text.trim_end().len());
    text
}

fn put(out: &mut Vec<u8>, cursor: &mut usize, b: u8) {
    if *cursor < out.len() {
        out[*cursor] = b;
    } else {
        out.push(b);
    }
    *cursor += 1;
}

impl LogScanner {
    pub fn new() -> Self {
        LogScanner::default()
    }

    /// Reads the next piece of the log (any size, cut anywhere).
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > 2 * TAIL_BYTES {
            let cut = self.tail.len() - TAIL_BYTES;
            self.tail.drain(..cut);
        }
        self.buf.extend_from_slice(chunk);
        let end = match memchr::memrchr(b'\n', &self.buf) {
            Some(i) => i + 1,
            None if self.buf.len() > MAX_CARRY => self.buf.len(),
            None => return,
        };
        let buf = std::mem::take(&mut self.buf);
        self.scan(&buf[..end]);
        self.buf = buf;
        self.buf.drain(..end);
    }

    /// Lines `region` holds (complete lines).
    fn scan(&mut self, region: &[u8]) {
        let mut pos = 0;
        while self.want > 0 && pos < region.len() {
            let end = memchr::memchr(b'\n', &region[pos..]).map_or(region.len(), |i| pos + i + 1);
            let line = clean_line(&region[pos..end]);
            if let Some(c) = self.candidates.last_mut() {
                c.context.push(line);
            }
            self.want -= 1;
            pos = end;
        }
        while pos < region.len() {
            let Some(m) = KEYWORDS.find_at(region, pos) else {
                return;
            };
            let start = memchr::memrchr(b'\n', &region[..m.start()]).map_or(0, |i| i + 1);
            let end =
                memchr::memchr(b'\n', &region[m.end()..]).map_or(region.len(), |i| m.end() + i + 1);
            let raw = &region[start..end];
            pos = end;
            match marker(raw) {
                Some(Marker::Start(name)) => {
                    self.section = Some(name.to_string());
                    // The marker may share its line with text (`\r\e[0K` then the output).
                    let rest = clean_line(raw);
                    if rest.is_empty() || !KEYWORDS.is_match(rest.as_bytes()) {
                        continue;
                    }
                }
                Some(Marker::End) => {
                    self.section = None;
                    continue;
                }
                None => {}
            }
            if self.candidates.len() >= MAX_CANDIDATES {
                continue;
            }
            let line = clean_line(raw);
            if line.is_empty() || is_runner_line(&line) {
                continue;
            }
            self.candidates.push(Candidate {
                line,
                context: Vec::new(),
                section: self.section.clone(),
            });
            // Context lines follow.
            let mut want = CONTEXT_LINES;
            while want > 0 && pos < region.len() {
                let e = memchr::memchr(b'\n', &region[pos..]).map_or(region.len(), |i| pos + i + 1);
                let l = clean_line(&region[pos..e]);
                if let Some(c) = self.candidates.last_mut() {
                    c.context.push(l);
                }
                want -= 1;
                pos = e;
            }
            self.want = want;
        }
    }

    /// The end of the log: what is kept of it.
    pub fn finish(mut self) -> ScannedLog {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.scan(&buf);
        }
        let mut raw: &[u8] = &self.tail;
        if raw.len() > TAIL_BYTES {
            raw = &raw[raw.len() - TAIL_BYTES..];
        }
        if (raw.len() as u64) < self.bytes {
            // Drop the cut first line.
            if let Some(i) = memchr::memchr(b'\n', raw) {
                raw = &raw[i + 1..];
            }
        }
        let mut tail = Vec::new();
        let mut section: Option<String> = None;
        for line in raw.split(|&b| b == b'\n') {
            match marker(line) {
                Some(Marker::Start(n)) => section = Some(n.to_string()),
                Some(Marker::End) => {
                    let text = clean_line(line);
                    if !text.is_empty() {
                        tail.push((text, section.clone()));
                    }
                    section = None;
                    continue;
                }
                None => {}
            }
            let text = clean_line(line);
            if !text.is_empty() {
                tail.push((text, section.clone()));
            }
        }
        ScannedLog {
            candidates: self.candidates,
            tail,
            bytes: self.bytes,
        }
    }
}

/// The runner's own lines: its footer and chatter, never the decisive error.
pub fn is_runner_line(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "ERROR: Job failed",
        "WARNING: ",
        "ERROR: Uploading artifacts",
        "Uploading artifacts",
        "Cleaning up project directory",
        "Running after_script",
        "Running after script",
        "Executing \"step_script\"",
        "Job succeeded",
        "Saving cache",
        "Creating cache",
        "Restoring cache",
        "Checking cache",
        "Downloading artifacts",
        "Using docker image",
        "Running with gitlab-runner",
        "Preparing the \"",
        "Getting source from Git",
        "Fetching changes",
        "Skipping Git submodules",
    ];
    PREFIXES.iter().any(|p| line.starts_with(p))
}

/// The runner's footer line (`ERROR: Job failed...`).
pub fn is_footer(line: &str) -> bool {
    line.starts_with("ERROR: Job failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_escapes_rewrites_and_markers() {
        assert_eq!(
            clean_line(b"\x1b[31;1mERROR: boom\x1b[0;m\n"),
            "ERROR: boom"
        );
        assert_eq!(clean_line(b"10%\r20%\r100% done"), "100% done");
        assert_eq!(clean_line(b"abcdef\rxy"), "xycdef");
        assert_eq!(
            clean_line(b"section_start:1740895204:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage\x1b[0;m"),
            "Executing \"step_script\" stage"
        );
        assert_eq!(
            clean_line(b"section_end:1740896587:step_script\r\x1b[0K"),
            ""
        );
        assert_eq!(
            clean_line(b"section_start:1:build[collapsed=true] text"),
            "text"
        );
        assert!(clean_line(&vec![b'x'; 100_000]).len() <= MAX_LINE);
    }

    fn sample() -> Vec<u8> {
        let mut log = Vec::new();
        log.extend_from_slice(b"\x1b[0KRunning with gitlab-runner 17.5.0 (abc)\n");
        log.extend_from_slice(b"section_start:1740895204:prepare_script\r\x1b[0KPreparing\n");
        log.extend_from_slice(b"section_end:1740895205:prepare_script\r\x1b[0K\n");
        log.extend_from_slice(
            b"section_start:1740895206:step_script\r\x1b[0K\x1b[32;1m$ cargo test\x1b[0;m\n",
        );
        for i in 0..50_000 {
            log.extend_from_slice(
                format!("   Compiling crate{i} v0.1.{i}\r  progress {i}%\n").as_bytes(),
            );
        }
        log.extend_from_slice(b"\x1b[0m\x1b[1m\x1b[38;5;9merror[E0425]\x1b[0m\x1b[0m\x1b[1m: cannot find value `foo` in this scope\x1b[0m\n");
        log.extend_from_slice(
            b"  --> src/lib.rs:12:5\n   |\n12 |     foo\n   |     ^^^ not found in this scope\n",
        );
        log.extend_from_slice(b"section_end:1740896587:step_script\r\x1b[0K\n");
        log.extend_from_slice(b"section_start:1740896588:cleanup_file_variables\r\x1b[0K\x1b[0K\x1b[36;1mCleaning up project directory and file based variables\x1b[0;m\n");
        log.extend_from_slice(b"section_end:1740896589:cleanup_file_variables\r\x1b[0K\n");
        log.extend_from_slice(b"\x1b[31;1mERROR: Job failed: exit code 101\n\x1b[0;m\n");
        log
    }

    #[test]
    fn chunks_anywhere_give_the_same_result_and_memory_stays_bounded() {
        let log = sample();
        let mut whole = LogScanner::new();
        whole.feed(&log);
        let whole = whole.finish();
        for size in [1usize, 7, 4096, 65_537] {
            let mut s = LogScanner::new();
            for c in log.chunks(size) {
                s.feed(c);
                assert!(s.tail.len() <= 2 * TAIL_BYTES + size);
            }
            assert_eq!(s.finish(), whole, "chunk size {size}");
        }
        assert_eq!(whole.bytes, log.len() as u64);
        let c = &whole.candidates[0];
        assert_eq!(
            c.line,
            "error[E0425]: cannot find value `foo` in this scope"
        );
        assert_eq!(c.section.as_deref(), Some("step_script"));
        assert_eq!(c.context[0], "  --> src/lib.rs:12:5");
        let kept: usize = whole.tail.iter().map(|(l, _)| l.len()).sum();
        assert!(kept <= TAIL_BYTES);
        assert_eq!(
            whole.tail.last().unwrap().0,
            "ERROR: Job failed: exit code 101"
        );
        assert!(whole
            .tail
            .iter()
            .any(|(l, _)| l == "  progress 49999%e49999 v0.1.49999"));
    }

    #[test]
    fn runner_timestamps_are_stripped_first() {
        assert_eq!(
            timestamp_prefix(b"2026-12-01T02:10:00.123456Z 00O $ make"),
            32
        );
        assert_eq!(
            timestamp_prefix(b"2026-12-01T02:10:00.123456Z 01E+ more"),
            33
        );
        assert_eq!(timestamp_prefix(b"2026-12-01T02:10:00Z 0aO x"), 25);
        assert_eq!(timestamp_prefix(b"2026-12-01T02:10:00.1Z 00O"), 26);
        for not in [
            &b"2026-12-01T02:10:00.123456Z build started"[..],
            b"2026-12-01 02:10:00 ERROR x",
            b"2026-12-01T02:10:00.Z 00O x",
            b"2026-12-01T02:10:00.12Z 00X x",
            b"ERROR: x",
            b"",
        ] {
            assert_eq!(timestamp_prefix(not), 0, "{}", String::from_utf8_lossy(not));
        }
        assert_eq!(
            clean_line(b"2026-12-01T02:10:00.123456Z 00O \x1b[31;1mERROR: Job failed: exit code 1\x1b[0;m\n"),
            "ERROR: Job failed: exit code 1"
        );
        assert_eq!(
            clean_line(b"2026-12-01T02:10:00.123456Z 00O section_start:1740895206:step_script\r\x1b[0K$ make"),
            "$ make"
        );
        assert_eq!(
            clean_line(b"2026-12-01T02:10:00.1Z 00O 10%\r2026-12-01T02:10:01.1Z 00O 100% done"),
            "100% done"
        );
        // A timestamp the job printed itself stays.
        assert_eq!(
            clean_line(b"2026-12-01T02:10:00.1Z 00O 2026-12-01T02:10:00Z started"),
            "2026-12-01T02:10:00Z started"
        );
        // The same log with and without timestamps scans the same.
        let plain = sample();
        let mut stamped = Vec::new();
        for (n, line) in plain.split_inclusive(|&b| b == b'\n').enumerate() {
            let stream = if n % 3 == 0 { "01E" } else { "00O" };
            stamped.extend_from_slice(
                format!("2026-12-01T02:10:{:02}.{:06}Z {stream} ", n % 60, n).as_bytes(),
            );
            stamped.extend_from_slice(line);
        }
        let scan = |b: &[u8]| {
            let mut s = LogScanner::new();
            for c in b.chunks(4096) {
                s.feed(c);
            }
            s.finish()
        };
        let (a, b) = (scan(&stamped), scan(&plain));
        assert_eq!(a.candidates, b.candidates);
        // The tail holds fewer lines (the prefixes take bytes); its end is the same.
        assert_eq!(a.tail[a.tail.len() - 100..], b.tail[b.tail.len() - 100..]);
    }

    #[test]
    fn candidates_are_bounded() {
        let mut s = LogScanner::new();
        for _ in 0..1000 {
            s.feed(b"ERROR: again\nline\n");
        }
        let r = s.finish();
        assert_eq!(r.candidates.len(), MAX_CANDIDATES);
    }
}
