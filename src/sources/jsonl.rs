//! `jsonl:PATH` / `jsonl:-`: one JSON event per line with the model's field names.
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
use crate::model::gerrit::{self, RefUpdate};
use crate::model::gerrit_log::{self, LogRecord, LogZone};
use crate::model::identity::{Carried, Occurrences};
use crate::model::{parse_wire_event, Event, Reject, Timestamp};
use crate::sources::gerrit_given_up::{self, Failure, Watch};
use crate::sources::gerrit_ordinals::Ordinals;
use crate::store::StateUpdate;

/// The system name given to lines that do not name one.
pub const DEFAULT_SOURCE: &str = "jsonl";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    pub line: u64,
    /// Gerrit: the numbering of events that share a timestamp, as it stood at `offset`.
    #[serde(default, skip_serializing_if = "Ordinals::is_empty")]
    pub ordinals: Ordinals,
    /// Occurrence counts of the last events read (absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub occ: Carried,
    /// Gerrit: the failures not yet retried, as they stood at `offset` (absent in older
    /// checkpoints).
    #[serde(default, skip_serializing_if = "Watch::is_empty")]
    pub given_up: Watch,
}

pub struct JsonlSource {
    input: Input,
    format: LineFormat,
}

impl JsonlSource {
    /// Lines with the event model's field names (`jsonl:`).
    pub fn new(input: Input) -> Self {
        JsonlSource {
            input,
            format: LineFormat::Events,
        }
    }

    /// Lines in another JSON-lines format, such as `gerrit stream-events` (`gerrit-events:`).
    pub fn with_format(input: Input, format: LineFormat) -> Self {
        JsonlSource { input, format }
    }
}

/// What the lines of a followed file or pipe hold.
#[derive(Debug, Clone, PartialEq)]
pub enum LineFormat {
    /// One event per line with the event model's field names.
    Events,
    /// `gerrit stream-events` output.
    GerritStream,
    /// Gerrit's `replication_log` (`pull`: `pull_replication_log`): records that may span
    /// several lines (stack traces), timestamps in the given zone.
    /// `zone` None: the ingest's `--log-timezone`.
    GerritLog { pull: bool, zone: Option<LogZone> },
}

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

/// A log record whose continuation lines may still come, and where it started.
struct Held {
    record: LogRecord,
    offset: u64,
    line: u64,
}

/// Reads lines of one format; keeps what a format needs from line to line (Gerrit: events of
/// one `eventCreatedOn` second, or one log millisecond, are numbered so they stay distinct and
/// in stream order, see [`Ordinals`]).
pub struct LineParser {
    format: LineFormat,
    /// Since the start of the input (a file read from its start begins with none).
    pub ordinals: Ordinals,
    held: Option<Held>,
    /// The held record already sat through one pause with nothing new after it.
    held_idle: bool,
    /// Log: what each push id was about, to join errors to their refs.
    pushes: gerrit_log::PushIndex,
    /// Stream: the remotes each (instance, project, ref) last failed on, so a `*-done` that
    /// closes a ref still FAILED somewhere is an error (it failed for good). Bounded.
    still_failed: std::collections::HashMap<u64, Vec<String>>,
    /// Stream: failures of the retried kind not yet scheduled again (since the start of the
    /// input, carried in the file checkpoint).
    pub given_up: Watch,
    /// Stream: `replicationRetry` plus slack (ns); a failure not retried within it is given up.
    pub retry_window_ns: i64,
}

/// A hash of (instance, project, ref) (64 bits: a collision is one in 2^64 per pair).
fn group_key(instance: Option<&str>, project: &str, r: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [instance.unwrap_or("\u{0}"), project, r] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.digest()
}

/// (instance, project, ref) groups remembered before [`LineParser::still_failed`] starts over.
const STILL_FAILED_MAX: usize = 100_000;

impl LineParser {
    /// Follows which remotes each ref is FAILED on; a `*-done` closing a ref still FAILED is
    /// an error (only the severity changes: the identity of an event never depends on what
    /// was read before it).
    fn settle(&mut self, s: &mut gerrit::StreamEvent) {
        use gerrit::UpdateKind;
        if let Some(u) = s
            .update
            .as_ref()
            .filter(|u| u.kind == UpdateKind::Replication)
        {
            let Some(status) = u.status else { return };
            let failed = status.is_failure();
            if failed && s.event.severity == crate::model::Severity::Warning {
                // A failure the plugin retries: given up unless retried in time.
                self.given_up.failed(Failure {
                    instance: u.instance.clone(),
                    project: u.project.clone(),
                    ref_name: u.ref_name.clone(),
                    remote: u.remote.clone(),
                    at: s.event.timestamp.as_nanos(),
                    status: u.detail.clone().unwrap_or_else(|| "failed".into()),
                    pull: u.direction == gerrit::Direction::Pull,
                });
            } else if !self.given_up.is_empty() {
                // Scheduled again, replicated, not attempted, or failed for good already (an
                // error of its own).
                self.given_up
                    .cleared(u.instance.as_deref(), &u.project, &u.ref_name, &u.remote);
            }
            if !failed && self.still_failed.is_empty() {
                return;
            }
            let key = group_key(u.instance.as_deref(), &u.project, &u.ref_name);
            if failed {
                if self.still_failed.len() >= STILL_FAILED_MAX {
                    self.still_failed.clear();
                }
                let remotes = self.still_failed.entry(key).or_default();
                if !remotes.contains(&u.remote) {
                    remotes.push(u.remote.clone());
                }
            } else if let Some(remotes) = self.still_failed.get_mut(&key) {
                // Scheduled again (a retry), succeeded or not attempted: not failed for good.
                remotes.retain(|r| r != &u.remote);
                if remotes.is_empty() {
                    self.still_failed.remove(&key);
                }
            }
        } else if let Some((project, r)) = s.done.take() {
            self.given_up
                .closed(s.event.device_id.as_deref(), &project, &r);
            let key = group_key(s.event.device_id.as_deref(), &project, &r);
            if self.still_failed.remove(&key).is_some() {
                s.event.severity = crate::model::Severity::Error;
            }
        }
    }

    pub fn new(format: LineFormat) -> Self {
        LineParser {
            format,
            ordinals: Ordinals::default(),
            held: None,
            held_idle: false,
            pushes: gerrit_log::PushIndex::default(),
            still_failed: std::collections::HashMap::new(),
            given_up: Watch::default(),
            retry_window_ns: (60 + gerrit_given_up::SLACK_SECS as i64) * 1_000_000_000,
        }
    }

    /// Sets `replicationRetry` plus slack: a failure not retried within it is given up.
    pub fn with_retry_window(mut self, window: Duration) -> Self {
        self.retry_window_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
        self
    }

    /// The failures whose window ended before a stream event at `now` (ns), as error events;
    /// a `*-done` after one is then no second error for its remote.
    fn give_up<'b>(&mut self, now: i64, emit: &mut dyn FnMut(Parsed<'b>)) {
        if self.given_up.is_empty() {
            return;
        }
        for f in self.given_up.due(now, self.retry_window_ns) {
            let key = group_key(f.instance.as_deref(), &f.project, &f.ref_name);
            if let Some(remotes) = self.still_failed.get_mut(&key) {
                remotes.retain(|r| r != &f.remote);
                if remotes.is_empty() {
                    self.still_failed.remove(&key);
                }
            }
            emit(Parsed::Event(
                gerrit_given_up::given_up_event(&f, self.retry_window_ns),
                Vec::new(),
            ));
        }
    }

    /// Where a restart must resume so a held record is read again whole: its first line.
    fn held_start(&self) -> Option<(u64, u64)> {
        self.held.as_ref().map(|h| (h.offset, h.line))
    }

    /// Emits the held record, if any.
    pub fn flush<'b>(&mut self, emit: &mut dyn FnMut(Parsed<'b>)) {
        if let (Some(h), LineFormat::GerritLog { pull, .. }) = (self.held.take(), &self.format) {
            let mut event = gerrit_log::record_event(&h.record, *pull);
            event.timestamp =
                Timestamp::from_nanos(self.ordinals.number(event.timestamp.as_nanos()));
            self.pushes.settle(&mut event);
            let notes = self.pushes.notes(&event);
            emit(Parsed::Event(event, notes));
        }
        self.held_idle = false;
    }

    /// At a pause in the input: a record held over a whole pause is complete.
    pub fn idle<'b>(&mut self, emit: &mut dyn FnMut(Parsed<'b>)) {
        if self.held.is_some() && self.held_idle {
            self.flush(emit);
        } else {
            self.held_idle = self.held.is_some();
        }
    }

    /// Reads line `number`, which starts at byte `offset` of its input.
    fn feed<'b>(
        &mut self,
        bytes: &'b [u8],
        number: u64,
        offset: u64,
        emit: &mut dyn FnMut(Parsed<'b>),
    ) {
        self.held_idle = false;
        if matches!(self.format, LineFormat::GerritLog { .. }) {
            // Java writes text: a line that is not UTF-8, or has NUL or other control bytes
            // (a tab aside), is garbage, never part of the record before it.
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t.strip_suffix('\r').unwrap_or(t),
                Err(e) => {
                    return emit(Parsed::Reject {
                        number,
                        reason: format!(
                            "not a log line: not UTF-8 (invalid byte at offset {}); not part of any record",
                            e.valid_up_to()
                        ),
                        bytes,
                    })
                }
            };
            // Checked with `any` first (it vectorizes); the offset only for a reject.
            let garbage = |b: u8| (b < 0x20 && b != b'\t') || b == 0x7f;
            if let Some(at) = text
                .bytes()
                .any(garbage)
                .then(|| text.bytes().position(garbage))
                .flatten()
            {
                return emit(Parsed::Reject {
                    number,
                    reason: format!(
                        "not a log line: binary byte 0x{:02x} at offset {at}; not part of any record",
                        text.as_bytes()[at]
                    ),
                    bytes,
                });
            }
            if gerrit_log::is_record_start(text) {
                self.flush(emit);
                let zone = match &self.format {
                    LineFormat::GerritLog { zone: Some(z), .. } => z,
                    _ => &LogZone::Local,
                };
                match gerrit_log::parse_record_start(text, zone) {
                    Ok(record) => {
                        self.held = Some(Held {
                            record,
                            offset,
                            line: number,
                        })
                    }
                    Err(reason) => emit(Parsed::Reject {
                        number,
                        reason,
                        bytes,
                    }),
                }
            } else if let Some(h) = self.held.as_mut() {
                if let Some(pairs) = gerrit_log::context_line(text) {
                    // The record's CONTEXT, on a line of its own.
                    h.record.context.extend(pairs);
                } else if h.record.trace.len() < 200 {
                    // Byte for byte: stack-trace tabs kept (shown through the sanitizer).
                    h.record.trace.push(text.to_string());
                }
            } else {
                emit(Parsed::Reject {
                    number,
                    reason: "a continuation line with no log record before it".into(),
                    bytes,
                });
            }
            return;
        }
        if self.format == LineFormat::GerritStream {
            return match gerrit::parse_stream_event(bytes, 0) {
                Ok(mut s) => {
                    let at = s.event.timestamp.as_nanos();
                    self.give_up(at, emit);
                    s.event.timestamp = Timestamp::from_nanos(self.ordinals.number(at));
                    self.settle(&mut s);
                    emit(Parsed::Event(s.event, s.update.into_iter().collect()))
                }
                Err(e) => emit(Parsed::Reject {
                    number,
                    reason: e.0,
                    bytes,
                }),
            };
        }
        match self.parse(bytes) {
            Ok((e, u)) => emit(Parsed::Event(e, u.into_iter().collect())),
            Err(reason) => emit(Parsed::Reject {
                number,
                reason,
                bytes,
            }),
        }
    }

    fn parse(&mut self, bytes: &[u8]) -> Result<(Event, Option<RefUpdate>), String> {
        match self.format {
            LineFormat::Events => parse_wire_event(bytes, DEFAULT_SOURCE)
                .map(|e| (e, None))
                .map_err(|e| e.0),
            LineFormat::GerritLog { .. } | LineFormat::GerritStream => {
                Err("not a line format".into())
            }
        }
    }
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
    pub fn line(
        &mut self,
        line: Line<'_>,
        location: &dyn Fn(u64) -> String,
        parser: &mut LineParser,
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

impl Source for JsonlSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let format = match &self.format {
            LineFormat::GerritLog { pull, zone: None } => LineFormat::GerritLog {
                pull: *pull,
                zone: Some(ctx.log_zone.clone()),
            },
            f => f.clone(),
        };
        let parser = LineParser::new(format).with_retry_window(ctx.gerrit_retry_window);
        match &self.input {
            Input::Stdin => read_stdin(ctx, parser),
            Input::File(path) => follow_file(ctx, path, parser),
        }
    }
}

/// How long standard input may stay silent before what was read from it is stored.
const PIPE_IDLE: Duration = Duration::from_millis(25);

/// Standard input, read by a thread of its own so the source never blocks on it: what was read
/// is stored when the pipe goes quiet (or every poll interval while it trickles), and SIGINT or
/// SIGTERM stop the ingest even while the producer is idle with the pipe open.
/// Standard input has no checkpoint: the same input piped again is numbered the same way.
fn read_stdin(ctx: &SourceCtx, mut parser: LineParser) -> Result<()> {
    let pipe = PipeReader::spawn(std::io::stdin(), "stdin")?;
    read_pipe(ctx, pipe, "stdin", &mut parser, false)
}

/// Reads lines from a pipe until it ends (or the ingest stops), storing them as they come.
/// `checkpoint`: each batch carries the parser's [`Ordinals`] as the source's checkpoint (a
/// stream that never repeats itself, such as `gerrit stream-events`, continues its numbering
/// after a reconnect or a restart).
pub fn read_pipe(
    ctx: &SourceCtx,
    pipe: PipeReader,
    name: &str,
    parser: &mut LineParser,
    checkpoint: bool,
) -> Result<()> {
    let mut reader = LineReader::new(pipe, 0, 1);
    let mut pending = Pending::new();
    let loc = |n: u64| format!("{name}:{n}");
    let ck = |p: &LineParser| {
        checkpoint
            .then(|| serde_json::to_string(&p.ordinals).ok())
            .flatten()
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
fn checkpoint_of(o: &Open, parser: &LineParser, pending: &Pending) -> String {
    let (offset, line) = parser
        .held_start()
        .unwrap_or((o.reader.offset(), o.reader.next_number()));
    let c = FileCheckpoint {
        dev: o.id.dev,
        ino: o.id.ino,
        offset,
        line,
        ordinals: parser.ordinals.clone(),
        occ: pending.carried(),
        given_up: parser.given_up.clone(),
    };
    serde_json::to_string(&c).unwrap_or_default()
}

/// Opens `path`, resuming at `resume` when it is the same file and still that long; the
/// parser's numbering and the occurrence counts are the checkpoint's then, and start over with
/// a file read from its start (so a file read again from its start gives its events the same
/// identities).
fn open_at(
    path: &Path,
    resume: Option<FileCheckpoint>,
    parser: &mut LineParser,
    occurrences: &mut Occurrences,
) -> std::io::Result<Open> {
    let mut f = open_file(path)?;
    let meta = f.metadata()?;
    let id = FileId::of(&meta);
    let (offset, line, ordinals, given_up) = match resume {
        Some(c) if c.dev == id.dev && c.ino == id.ino && c.offset <= meta.len() => {
            *occurrences = Occurrences::resume(&c.occ);
            (c.offset, c.line, c.ordinals, c.given_up)
        }
        _ => {
            occurrences.reset();
            (0, 1, Ordinals::default(), Watch::default())
        }
    };
    f.seek(SeekFrom::Start(offset))?;
    parser.ordinals = ordinals;
    parser.given_up = given_up;
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

fn follow_file(ctx: &SourceCtx, path: &PathBuf, mut parser: LineParser) -> Result<()> {
    let shown = path.display().to_string();
    let loc = |n: u64| format!("{shown}:{n}");
    let mut resume: Option<FileCheckpoint> = ctx
        .checkpoint
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
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
    fn a_batch_is_full_at_its_size_or_its_bytes() {
        let small = r#"{"timestamp":"2025-12-03T10:15:00Z","event_type":"x","summary":"s"}"#;
        let mut p = Pending::new();
        let loc = |n: u64| format!("f:{n}");
        for n in 1..=9 {
            p.line(
                line(n, small),
                &loc,
                &mut LineParser::new(LineFormat::Events),
                0,
            );
        }
        assert!(!p.full(10));
        p.line(
            line(10, "not json"),
            &loc,
            &mut LineParser::new(LineFormat::Events),
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
                &mut LineParser::new(LineFormat::Events),
                0,
            );
        }
        assert_eq!(n as usize, MAX_BATCH_BYTES / (512 * 1024));
    }
}
