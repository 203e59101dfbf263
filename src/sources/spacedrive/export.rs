//! `spacedrive-json:PATH` / `spacedrive-json:-`: an `sd sync events` export (a JSON array),
//! in either of its shapes: the default one (no `id`, `device_id`, `category` or `model_types`,
//! newest first) or `--with-device`'s. `,device=ID` names the device a default export was
//! taken from: its events are that device's (an element naming another device is rejected).
//! Without it, a default export's events are attributed when they match that device's
//! `sync.db` rows (the writer keeps the device of whichever reading names it).
//!
//! The array is parsed element by element from the file (flat memory for any size). An element
//! that is not a readable event is rejected by its position; the rest are kept. A file also may
//! hold bare objects one after another (JSON lines). When following, a changed file (other size,
//! time or inode) is read again; dedup keeps each event once.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

use color_eyre::eyre::{Result, WrapErr};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::SOURCE_NAME;
use crate::ingest::follow::{open_file, FileId};
use crate::ingest::{SourceCtx, SourceState};
use crate::model::{parse_wire_event, Reject};
use crate::sources::lines::Pending;
use crate::sources::{Input, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCheckpoint {
    pub dev: u64,
    pub ino: u64,
    pub len: u64,
    pub mtime_ns: i128,
}

pub struct ExportSource {
    input: Input,
    device: Option<String>,
}

impl ExportSource {
    pub fn new(input: Input, device: Option<String>) -> Self {
        ExportSource { input, device }
    }
}

impl Source for ExportSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let path = match &self.input {
            Input::Stdin => {
                let stdin = std::io::stdin();
                return read_export(ctx, stdin.lock(), "stdin", self.device.as_deref(), None);
            }
            Input::File(p) => p.clone(),
        };
        let shown = path.display().to_string();
        let mut last: Option<ExportCheckpoint> = ctx
            .checkpoint
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok());
        loop {
            match identity(&path) {
                Ok(now) if Some(now) == last => {}
                Ok(now) => {
                    let f = open_file(&path).wrap_err_with(|| format!("cannot read {shown}"))?;
                    ctx.status(SourceState::Ok, "");
                    let cp = serde_json::to_string(&now).unwrap_or_default();
                    read_export(
                        ctx,
                        BufReader::with_capacity(256 * 1024, f),
                        &shown,
                        self.device.as_deref(),
                        Some(cp),
                    )?;
                    last = Some(now);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ctx.once => {
                    ctx.status(SourceState::Waiting, "waiting for the file to appear");
                }
                Err(e) => return Err(e).wrap_err_with(|| format!("cannot read {shown}")),
            }
            if ctx.once || !ctx.pause() {
                return Ok(());
            }
        }
    }
}

fn identity(path: &PathBuf) -> std::io::Result<ExportCheckpoint> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        return Err(std::io::Error::other("is a directory, not a file"));
    }
    let id = FileId::of(&meta);
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    Ok(ExportCheckpoint {
        dev: id.dev,
        ino: id.ino,
        len: meta.len(),
        mtime_ns,
    })
}

/// Collects parsed elements and sends them in batches as the parser goes.
struct Sink<'c> {
    ctx: &'c SourceCtx,
    name: &'c str,
    /// The device the user named for the export.
    device: Option<&'c str>,
    pending: Pending,
    index: u64,
    send_error: Option<color_eyre::Report>,
}

impl Sink<'_> {
    fn element(&mut self, raw: &RawValue) {
        self.index += 1;
        let parsed = parse_wire_event(raw.get().as_bytes(), SOURCE_NAME)
            .map_err(|e| e.0)
            .and_then(|e| attribute(e, self.device));
        match parsed {
            Ok(e) => self.pending.push(e),
            Err(reason) => self.pending.reject(Reject::new(
                format!("{} element {}", self.name, self.index),
                reason,
                raw.get().as_bytes(),
            )),
        }
        if self.pending.full(self.ctx.batch_size) && self.send_error.is_none() {
            if let Err(e) = self.pending.send(self.ctx, None) {
                self.send_error = Some(e);
            }
        }
    }
}

impl<'de> Visitor<'de> for &mut Sink<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of sync events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            self.element(&raw);
            if self.send_error.is_some() {
                return Err(serde::de::Error::custom("the store writer stopped"));
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for &mut Sink<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

/// An export's event with the device the user named: given to an event that names none; an
/// event that names another device is not that device's (the wrong file, or the wrong id).
fn attribute(
    mut e: crate::model::Event,
    device: Option<&str>,
) -> Result<crate::model::Event, String> {
    match (device, e.device_id.as_deref()) {
        (Some(named), None) => e.device_id = Some(named.to_string()),
        (Some(named), Some(own)) if own != named => {
            return Err(format!(
                "the event names device {} but the source was given device={named}",
                crate::sanitize::one_line(own)
            ))
        }
        _ => {}
    }
    Ok(e)
}

/// Reads one export from `reader`, sending batches; `checkpoint` goes with the last batch.
pub(crate) fn read_export<R: Read>(
    ctx: &SourceCtx,
    reader: R,
    name: &str,
    device: Option<&str>,
    checkpoint: Option<String>,
) -> Result<()> {
    let mut reader = BufReader::new(reader);
    let first = loop {
        let buf = reader
            .fill_buf()
            .wrap_err_with(|| format!("cannot read {name}"))?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let b = buf[i];
                reader.consume(i);
                break Some(b);
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    };
    let mut sink = Sink {
        ctx,
        name,
        device,
        pending: Pending::new(),
        index: 0,
        send_error: None,
    };
    let parse_error = match first {
        None => None, // an empty file holds no events
        Some(b'[') => {
            let mut de = serde_json::Deserializer::from_reader(reader);
            (&mut sink)
                .deserialize(&mut de)
                .and_then(|_| de.end())
                .err()
        }
        Some(b'{') => {
            let stream = serde_json::Deserializer::from_reader(reader).into_iter::<Box<RawValue>>();
            let mut err = None;
            for item in stream {
                match item {
                    Ok(raw) => sink.element(&raw),
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
                if sink.send_error.is_some() {
                    break;
                }
            }
            err
        }
        Some(other) => {
            sink.pending.rejects.push(Reject::new(
                format!("{name}:1"),
                format!(
                    "not a JSON array of events (starts with '{}')",
                    other.escape_ascii()
                ),
                &[other],
            ));
            None
        }
    };
    if let Some(e) = sink.send_error.take() {
        return Err(e);
    }
    if let Some(e) = parse_error {
        let after = sink.index;
        sink.pending.rejects.push(Reject::new(
            format!("{name}:{}:{}", e.line(), e.column()),
            format!("invalid JSON after element {after}, the rest of the file is unreadable: {e}"),
            b"",
        ));
    }
    sink.pending.send(ctx, checkpoint)
}

/// For reading an export that is not a file (tests, stdin).
#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        x: u8,
    }

    #[test]
    fn checkpoint_round_trips() {
        let c = ExportCheckpoint {
            dev: 1,
            ino: 2,
            len: 3,
            mtime_ns: 4,
        };
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ExportCheckpoint>(&s).unwrap(), c);
        assert!(serde_json::from_str::<Probe>("{\"x\":1}").is_ok());
    }
}
