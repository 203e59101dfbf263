//! The generic followed-lines source: a file or standard input read line by line through a
//! [`LineFormat`] (each line-based kind implements one in its folder: syncscope JSONL in
//! `jsonl/`, `gerrit stream-events` and Gerrit's logs in `gerrit/`).
//!
//! Follows a growing file like `tail -F`: waits for it to appear, reads appended lines,
//! starts over after truncation, and after a rotation by rename finishes the old file before
//! opening the new one. The checkpoint is the file's identity and the offset after the last
//! committed line, so a restart resumes exactly there.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use color_eyre::eyre::{Result, WrapErr};
use serde::{Deserialize, Serialize};

use super::{Input, Source};
use crate::ingest::follow::{open_file, FileId, Line, LineReader, MAX_LINE};
use crate::ingest::{SourceCtx, SourceState};
use crate::model::gerrit::RefUpdate;
use crate::model::identity::{Carried, Occurrences};
use crate::model::{Event, Reject};
use crate::store::StateUpdate;

/// Where a followed file was left: its identity, the offset and line number after the last
/// committed line, and what the format carries. Stored as one JSON object: the format's state
/// fields beside the position (`{"dev":..,"ino":..,"offset":..,"line":..,"ordinals":..}`).
#[derive(Debug, Clone, PartialEq)]
pub struct FileCheckpoint<S> {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    pub line: u64,
    /// What the format carries from line to line, as it stood at `offset` (Gerrit: the
    /// numbering of events that share a timestamp, the failures not yet retried).
    pub state: S,
    /// Occurrence counts of the last events read (absent in older checkpoints).
    pub occ: Carried,
}

/// The position fields of a [`FileCheckpoint`].
#[derive(Serialize, Deserialize)]
struct Position {
    dev: u64,
    ino: u64,
    offset: u64,
    line: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    occ: Carried,
}

impl<S: Serialize + serde::de::DeserializeOwned> FileCheckpoint<S> {
    /// The JSON object: the position, and the state's fields beside it. (Not `serde(flatten)`:
    /// that would buffer the state and lose the integer keys of its maps.)
    pub fn to_json(&self) -> String {
        let position = Position {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
            line: self.line,
            occ: self.occ.clone(),
        };
        let mut value = serde_json::to_value(&position).unwrap_or_default();
        if let (Some(v), Ok(serde_json::Value::Object(state))) =
            (value.as_object_mut(), serde_json::to_value(&self.state))
        {
            v.extend(state);
        }
        value.to_string()
    }

    /// Reads a checkpoint written by [`Self::to_json`] (or by an older version, whose state
    /// fields were the same); None when it is not one.
    pub fn from_json(text: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let p = Position::deserialize(&value).ok()?;
        let state = S::deserialize(&value).ok()?;
        Some(FileCheckpoint {
            dev: p.dev,
            ino: p.ino,
            offset: p.offset,
            line: p.line,
            state,
            occ: p.occ,
        })
    }
}

/// A file or standard input followed line by line in format `F`.
pub struct FollowedLines<F> {
    input: Input,
    format: F,
}

impl<F: LineFormat> FollowedLines<F> {
    pub fn new(input: Input, format: F) -> Self {
        FollowedLines { input, format }
    }
}

/// What the lines of a followed file or pipe hold, and what a format keeps from line to line.
/// A kind that reads lines implements it in its folder; the follower does the rest.
pub trait LineFormat: Send + 'static {
    /// What a file checkpoint carries for the format (its fields are stored beside the
    /// offset, so they must not be named `dev`, `ino`, `offset`, `line` or `occ`).
    type State: Serialize + serde::de::DeserializeOwned + Default + Clone;

    /// Reads line `number`, which starts at byte `offset` of its input.
    fn feed<'b>(
        &mut self,
        bytes: &'b [u8],
        number: u64,
        offset: u64,
        emit: &mut dyn FnMut(Parsed<'b>),
    );

    /// Emits a record the format still holds, if any (at the end of the input).
    fn flush<'b>(&mut self, _emit: &mut dyn FnMut(Parsed<'b>)) {}

    /// At a pause in the input.
    fn idle<'b>(&mut self, _emit: &mut dyn FnMut(Parsed<'b>)) {}

    /// Where a restart must resume so a held record is read again whole: its first line.
    fn held_start(&self) -> Option<(u64, u64)> {
        None
    }

    /// The state a checkpoint taken now carries.
    fn state(&self) -> Self::State;

    /// Continues from a checkpoint's state (the default one: from the start of the input).
    fn resume(&mut self, state: Self::State);

    /// The checkpoint of a batch read from a pipe, when the format keeps one across
    /// reconnects (`gerrit stream-events` over ssh); none by default.
    fn pipe_checkpoint(&self) -> Option<String> {
        None
    }
}

/// A format that carries nothing in its checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoState {}

/// What one line gave. Handed over once per line and never stored, so the size difference
/// between the variants costs nothing (boxing the event would cost an allocation per line).
#[allow(clippy::large_enum_variant)]
pub enum Parsed<'b> {
    Event(Event, Vec<RefUpdate>),
    Reject {
        number: u64,
        reason: String,
        bytes: &'b [u8],
    },
}

/// A batch is sent at the batch size or at this much event text, whichever comes first, so
/// memory stays bounded however big each event is (a few batches are in flight at once).
pub(crate) const MAX_BATCH_BYTES: usize = 2 << 20;

/// Events and rejects parsed but not yet sent.
pub(crate) struct Pending {
    events: Vec<Event>,
    /// The identity key of each pending event, counted as it was pushed.
    keys: Vec<i64>,
    /// Derived state changes carried by pending events (ref updates name their event's index).
    updates: Vec<StateUpdate>,
    pub rejects: Vec<Reject>,
    /// About how much memory the pending events and rejects hold.
    bytes: usize,
    /// The checkpoint last sent, so an idle poll writes nothing.
    last_checkpoint: Option<String>,
    /// Numbers identical events of the input so both are stored (see `model::identity`).
    pub occurrences: Occurrences,
}

impl Pending {
    pub fn new() -> Self {
        Pending {
            events: Vec::new(),
            keys: Vec::new(),
            updates: Vec::new(),
            rejects: Vec::new(),
            bytes: 0,
            last_checkpoint: None,
            occurrences: Occurrences::new(),
        }
    }
    /// Pending events of an input whose occurrence counts were carried by a checkpoint.
    pub fn resuming(occurrences: Occurrences) -> Self {
        Pending {
            occurrences,
            ..Pending::new()
        }
    }
    pub fn len(&self) -> usize {
        self.events.len() + self.rejects.len()
    }
    /// An event with the ref state changes it carries.
    pub fn push_with_updates(&mut self, e: Event, updates: Vec<RefUpdate>) {
        for u in updates {
            let event = self.events.len();
            self.updates.push(StateUpdate::Ref { event, update: u });
        }
        self.push(e);
    }
    pub fn push(&mut self, e: Event) {
        self.bytes += e.approx_size();
        self.keys.push(self.occurrences.key(&e));
        self.events.push(e);
    }
    /// A derived state change not tied to one event (a relay target's state, say).
    pub fn update(&mut self, u: StateUpdate) {
        self.updates.push(u);
    }
    pub fn reject(&mut self, r: Reject) {
        self.bytes += r.location.len() + r.reason.len() + r.excerpt.len();
        self.rejects.push(r);
    }
    /// Time to send: `batch_size` items, or [`MAX_BATCH_BYTES`] of them.
    pub fn full(&self, batch_size: usize) -> bool {
        self.len() >= batch_size || self.bytes >= MAX_BATCH_BYTES
    }
    /// Sends what is pending with `checkpoint`; nothing at all when there is nothing new.
    pub fn send(&mut self, ctx: &SourceCtx, checkpoint: Option<String>) -> Result<()> {
        if self.len() == 0
            && self.updates.is_empty()
            && (checkpoint.is_none() || checkpoint == self.last_checkpoint)
        {
            return Ok(());
        }
        if checkpoint.is_some() {
            self.last_checkpoint.clone_from(&checkpoint);
        }
        self.bytes = 0;
        ctx.send(
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.updates),
            std::mem::take(&mut self.rejects),
            checkpoint,
        )
    }
    /// The occurrence counts a checkpoint sent now must carry (every pushed event counted).
    pub fn carried(&self) -> Carried {
        self.occurrences.carried()
    }

    /// Parses one line (starting at byte `offset` of its input) into events or rejects.
    /// Blank lines are skipped.
    pub fn line<F: LineFormat + ?Sized>(
        &mut self,
        line: Line<'_>,
        location: &dyn Fn(u64) -> String,
        parser: &mut F,
        offset: u64,
    ) {
        match line {
            Line::Text { bytes, number } => {
                let bytes = if number == 1 {
                    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
                } else {
                    bytes
                };
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return;
                }
                parser.feed(bytes, number, offset, &mut |p| self.take(p, location));
            }
            Line::TooLong {
                excerpt,
                number,
                len,
            } => self.reject(Reject::new(
                location(number),
                format!("line of {len} bytes is longer than the {MAX_LINE}-byte limit; skipped"),
                &excerpt,
            )),
        }
    }

    /// Keeps what a parser produced.
    pub fn take(&mut self, p: Parsed<'_>, location: &dyn Fn(u64) -> String) {
        match p {
            Parsed::Event(e, updates) => self.push_with_updates(e, updates),
            Parsed::Reject {
                number,
                reason,
                bytes,
            } => self.reject(Reject::new(location(number), reason, bytes)),
        }
    }
}

impl<F: LineFormat> Source for FollowedLines<F> {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let FollowedLines { input, format } = *self;
        match &input {
            Input::Stdin => read_stdin(ctx, format),
            Input::File(path) => follow_file(ctx, path, format),
        }
    }
}

/// How long standard input may stay silent before what was read from it is stored.
const PIPE_IDLE: Duration = Duration::from_millis(25);

/// Standard input, read by a thread of its own so the source never blocks on it: what was read
/// is stored when the pipe goes quiet (or every poll interval while it trickles), and SIGINT or
/// SIGTERM stop the ingest even while the producer is idle with the pipe open.
/// Standard input has no checkpoint: the same input piped again is numbered the same way.
fn read_stdin<F: LineFormat>(ctx: &SourceCtx, mut parser: F) -> Result<()> {
    let pipe = PipeReader::spawn(std::io::stdin(), "stdin")?;
    read_pipe(ctx, pipe, "stdin", &mut parser, false)
}

/// Reads lines from a pipe until it ends (or the ingest stops), storing them as they come.
/// `checkpoint`: each batch carries the format's [`LineFormat::pipe_checkpoint`] as the
/// source's checkpoint (a stream that never repeats itself, such as `gerrit stream-events`,
/// continues its numbering after a reconnect or a restart).
pub fn read_pipe<F: LineFormat>(
    ctx: &SourceCtx,
    pipe: PipeReader,
    name: &str,
    parser: &mut F,
    checkpoint: bool,
) -> Result<()> {
    let mut reader = LineReader::new(pipe, 0, 1);
    let mut pending = Pending::new();
    let loc = |n: u64| format!("{name}:{n}");
    let ck = |p: &F| {
        if checkpoint {
            p.pipe_checkpoint()
        } else {
            None
        }
    };
    // When the oldest line not yet sent was read.
    let mut oldest: Option<Instant> = None;
    loop {
        match reader.next_line() {
            Ok(Some(line)) => {
                pending.line(line, &loc, parser, 0);
                oldest.get_or_insert_with(Instant::now);
            }
            Ok(None) => {
                if let Some(line) = reader.take_unterminated() {
                    pending.line(line, &loc, parser, 0);
                }
                parser.flush(&mut |p| pending.take(p, &loc));
                return pending.send(ctx, ck(parser));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // The pipe is quiet: store what was read, then keep reading.
                parser.idle(&mut |p| pending.take(p, &loc));
                pending.send(ctx, ck(parser))?;
                oldest = None;
                if ctx.cancelled() {
                    return Ok(());
                }
                continue;
            }
            Err(e) => return Err(e).wrap_err_with(|| format!("cannot read {name}")),
        }
        if pending.full(ctx.batch_size) || oldest.is_some_and(|t| t.elapsed() >= ctx.poll_interval)
        {
            pending.send(ctx, ck(parser))?;
            oldest = None;
        }
        if ctx.cancelled() {
            parser.flush(&mut |p| pending.take(p, &loc));
            return pending.send(ctx, ck(parser));
        }
    }
}

/// The reading end of a thread that copies a blocking input in chunks. `read` fails with
/// `WouldBlock` when no data came for [`PIPE_IDLE`], and returns 0 at the end of the input.
/// At shutdown the thread may still be blocked in its read; it ends with the process.
pub struct PipeReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl PipeReader {
    /// Starts copying `input` on a thread named `name`.
    pub fn spawn<R: Read + Send + 'static>(mut input: R, name: &str) -> Result<PipeReader> {
        // A few chunks in flight: the producer is held back when the store is behind.
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                loop {
                    let mut buf = vec![0u8; 64 * 1024];
                    match input.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            buf.truncate(n);
                            if tx.send(Ok(buf)).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        // A non-blocking descriptor inherited from the parent: wait for data.
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            })
            .wrap_err_with(|| format!("cannot start reading {name}"))?;
        Ok(PipeReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        })
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::sync::mpsc::RecvTimeoutError;
        while self.pos == self.chunk.len() {
            match self.rx.recv_timeout(PIPE_IDLE) {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.pos = 0;
                }
                Err(RecvTimeoutError::Timeout) => return Err(std::io::ErrorKind::WouldBlock.into()),
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

struct Open {
    reader: LineReader<File>,
    id: FileId,
}

/// Where a restart resumes: after the last line read, or at the first line of a record the
/// parser still holds (so it is read again whole).
fn checkpoint_of<F: LineFormat>(o: &Open, parser: &F, pending: &Pending) -> String {
    let (offset, line) = parser
        .held_start()
        .unwrap_or((o.reader.offset(), o.reader.next_number()));
    let c = FileCheckpoint {
        dev: o.id.dev,
        ino: o.id.ino,
        offset,
        line,
        state: parser.state(),
        occ: pending.carried(),
    };
    c.to_json()
}

/// Opens `path`, resuming at `resume` when it is the same file and still that long; the
/// parser's numbering and the occurrence counts are the checkpoint's then, and start over with
/// a file read from its start (so a file read again from its start gives its events the same
/// identities).
fn open_at<F: LineFormat>(
    path: &Path,
    resume: Option<FileCheckpoint<F::State>>,
    parser: &mut F,
    occurrences: &mut Occurrences,
) -> std::io::Result<Open> {
    let mut f = open_file(path)?;
    let meta = f.metadata()?;
    let id = FileId::of(&meta);
    let (offset, line, state) = match resume {
        Some(c) if c.dev == id.dev && c.ino == id.ino && c.offset <= meta.len() => {
            *occurrences = Occurrences::resume(&c.occ);
            (c.offset, c.line, c.state)
        }
        _ => {
            occurrences.reset();
            (0, 1, F::State::default())
        }
    };
    f.seek(SeekFrom::Start(offset))?;
    parser.resume(state);
    Ok(Open {
        reader: LineReader::new(f, offset, line),
        id,
    })
}

/// Files with more than this left to read show their progress.
const PROGRESS_BYTES: u64 = 32 << 20;

/// Progress through a large file: a bar on a terminal, the source's status once a second.
struct FileProgress {
    progress: crate::ingest::progress::Progress,
    from: u64,
    shown: std::cell::Cell<u64>,
    last: std::cell::Cell<Instant>,
}

impl FileProgress {
    fn new(ctx: &SourceCtx, path: &Path, from: u64) -> Option<FileProgress> {
        let len = std::fs::metadata(path).ok()?.len();
        let left = len.checked_sub(from).filter(|l| *l >= PROGRESS_BYTES)?;
        let name = path.file_name()?.to_string_lossy().into_owned();
        Some(FileProgress {
            progress: crate::ingest::progress::Progress::bytes(&name, left, ctx.progress_bar),
            from,
            shown: std::cell::Cell::new(from),
            last: std::cell::Cell::new(Instant::now()),
        })
    }

    fn at(&self, ctx: &SourceCtx, offset: u64) {
        self.progress
            .inc("bytes", offset.saturating_sub(self.shown.get()));
        self.shown.set(offset.max(self.from));
        if self.last.get().elapsed() >= Duration::from_secs(1) {
            ctx.status(SourceState::Busy, self.progress.status());
            self.last.set(Instant::now());
        }
    }
}

fn follow_file<F: LineFormat>(ctx: &SourceCtx, path: &PathBuf, mut parser: F) -> Result<()> {
    let shown = path.display().to_string();
    let loc = |n: u64| format!("{shown}:{n}");
    let mut resume: Option<FileCheckpoint<F::State>> = ctx
        .checkpoint
        .as_deref()
        .and_then(FileCheckpoint::from_json);
    let mut pending = Pending::new();
    let mut current: Option<Open> = None;

    loop {
        if current.is_none() {
            match open_at(path, resume.take(), &mut parser, &mut pending.occurrences) {
                Ok(o) => {
                    ctx.status(SourceState::Ok, "");
                    current = Some(o);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ctx.once => {
                    ctx.status(SourceState::Waiting, "waiting for the file to appear");
                    if !ctx.pause() {
                        return Ok(());
                    }
                    continue;
                }
                Err(e) => return Err(e).wrap_err_with(|| format!("cannot read {shown}")),
            }
        }
        let Some(open) = current.as_mut() else {
            continue;
        };

        // Read everything there is now, in batches; a long read shows how far it is.
        let progress = FileProgress::new(ctx, path, open.reader.offset());
        loop {
            let start = open.reader.offset();
            let Some(line) = open
                .reader
                .next_line()
                .wrap_err_with(|| format!("cannot read {shown}"))?
            else {
                break;
            };
            pending.line(line, &loc, &mut parser, start);
            if pending.full(ctx.batch_size) {
                if let Some(p) = &progress {
                    p.at(ctx, open.reader.offset());
                }
                pending.send(ctx, Some(checkpoint_of(open, &parser, &pending)))?;
                if ctx.cancelled() {
                    return Ok(());
                }
            }
        }
        if let Some(p) = progress {
            p.progress.finish();
            ctx.status(SourceState::Ok, "");
        }
        if ctx.once {
            let start = open.reader.offset();
            if let Some(line) = open.reader.take_unterminated() {
                pending.line(line, &loc, &mut parser, start);
            }
            parser.flush(&mut |p| pending.take(p, &loc));
            return pending.send(ctx, Some(checkpoint_of(open, &parser, &pending)));
        }
        parser.idle(&mut |p| pending.take(p, &loc));
        pending.send(ctx, Some(checkpoint_of(open, &parser, &pending)))?;
        if ctx.cancelled() {
            return Ok(());
        }

        // At the end of what is there: has the file been rotated or truncated?
        match std::fs::metadata(path) {
            Ok(meta) if FileId::of(&meta) != open.id => {
                // Rotated: take what was written to the old file before the switch, then move on.
                loop {
                    let start = open.reader.offset();
                    let Some(line) = open.reader.next_line()? else {
                        break;
                    };
                    pending.line(line, &loc, &mut parser, start);
                }
                let start = open.reader.offset();
                if let Some(line) = open.reader.take_unterminated() {
                    pending.line(line, &loc, &mut parser, start);
                }
                parser.flush(&mut |p| pending.take(p, &loc));
                pending.send(ctx, None)?;
                current = None;
                continue;
            }
            Ok(meta) if meta.len() < open.reader.offset() => {
                // Truncated in place: start over from the top.
                parser.flush(&mut |p| pending.take(p, &loc));
                pending.send(ctx, None)?;
                current = Some(
                    open_at(path, None, &mut parser, &mut pending.occurrences)
                        .wrap_err_with(|| format!("cannot reopen {shown}"))?,
                );
                continue;
            }
            // Gone (rotated away, new one not created yet) or unchanged: wait.
            _ => {}
        }
        if !ctx.pause() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(number: u64, text: &str) -> Line<'_> {
        Line::Text {
            bytes: text.as_bytes(),
            number,
        }
    }

    #[test]
    fn a_checkpoint_keeps_the_formats_state_beside_its_position() {
        use crate::sources::gerrit::events::{StreamLines, StreamState};
        // A stream numbering same-second events: its ordinals are a map with integer keys.
        let mut parser = StreamLines::default();
        let mut p = Pending::new();
        let loc = |n: u64| format!("f:{n}");
        let ev = r#"{"type":"ref-replication-scheduled","project":"p","ref":"refs/heads/m","targetNode":"r","eventCreatedOn":1700000000}"#;
        for n in 1..=3 {
            p.line(line(n, ev), &loc, &mut parser, 0);
        }
        assert_eq!(p.events.len(), 3, "{:?}", p.rejects);
        let c = FileCheckpoint {
            dev: 1,
            ino: 2,
            offset: 300,
            line: 4,
            state: parser.state(),
            occ: p.carried(),
        };
        assert!(!c.state.ordinals.is_empty());
        let text = c.to_json();
        assert!(
            text.contains(r#""ordinals":"#) && text.contains(r#""offset":300"#),
            "{text}"
        );
        let back = FileCheckpoint::<StreamState>::from_json(&text).unwrap();
        assert_eq!(back, c);
        // A checkpoint of an older version (the same fields, in its order) still reads.
        let old = r#"{"dev":1,"ino":2,"offset":10,"line":2,"ordinals":{"next":{"1700000000000000000":2},"floor":0}}"#;
        let o = FileCheckpoint::<StreamState>::from_json(old).unwrap();
        assert_eq!((o.offset, o.line), (10, 2));
        assert!(!o.state.ordinals.is_empty());
        // A format with no state reads the position alone; not a checkpoint: None.
        let j = FileCheckpoint::<NoState>::from_json(old).unwrap();
        assert_eq!(j.offset, 10);
        assert!(FileCheckpoint::<NoState>::from_json("[1]").is_none());
    }

    #[test]
    fn a_batch_is_full_at_its_size_or_its_bytes() {
        let small = r#"{"timestamp":"2025-12-03T10:15:00Z","event_type":"x","summary":"s"}"#;
        let mut p = Pending::new();
        let loc = |n: u64| format!("f:{n}");
        for n in 1..=9 {
            p.line(
                line(n, small),
                &loc,
                &mut crate::sources::jsonl::JsonlLines,
                0,
            );
        }
        assert!(!p.full(10));
        p.line(
            line(10, "not json"),
            &loc,
            &mut crate::sources::jsonl::JsonlLines,
            0,
        );
        assert!(p.full(10), "rejects count towards the batch size");

        // Big events fill a batch long before its count does.
        let big = format!(
            r#"{{"timestamp":"2025-12-03T10:15:00Z","event_type":"x","summary":"s","details":"{}"}}"#,
            "d".repeat(512 * 1024)
        );
        let mut p = Pending::new();
        let mut n = 0;
        while !p.full(5000) {
            n += 1;
            p.line(
                line(n, &big),
                &loc,
                &mut crate::sources::jsonl::JsonlLines,
                0,
            );
        }
        assert_eq!(n as usize, MAX_BATCH_BYTES / (512 * 1024));
    }
}
