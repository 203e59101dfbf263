//! Gerrit's `replication_log` / `pull_replication_log` as the line format of the generic
//! followed-lines source (`gerrit-log:`): records that may span several lines (stack traces),
//! timestamps in the given zone, events of one millisecond numbered ([`Ordinals`]).

use serde::{Deserialize, Serialize};

use super::log::{self as gerrit_log, LogRecord};
use super::ordinals::Ordinals;
use crate::model::{LogZone, Timestamp};
use crate::sources::lines::{LineFormat, Parsed};

/// What a file checkpoint of a log carries, as it stood at its offset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogState {
    /// The numbering of events that share a timestamp.
    #[serde(default, skip_serializing_if = "Ordinals::is_empty")]
    pub ordinals: Ordinals,
}

/// A log record whose continuation lines may still come, and where it started.
struct Held {
    record: LogRecord,
    offset: u64,
    line: u64,
}

/// Reads log lines; holds a record until the next one starts (or a pause ends it).
pub struct LogLines {
    /// `pull_replication_log`.
    pull: bool,
    zone: LogZone,
    /// Since the start of the input (a file read from its start begins with none).
    pub ordinals: Ordinals,
    held: Option<Held>,
    /// The held record already sat through one pause with nothing new after it.
    held_idle: bool,
    /// What each push id was about, to join errors to their refs.
    pushes: gerrit_log::PushIndex,
}

impl LogLines {
    pub fn new(pull: bool, zone: LogZone) -> Self {
        LogLines {
            pull,
            zone,
            ordinals: Ordinals::default(),
            held: None,
            held_idle: false,
            pushes: gerrit_log::PushIndex::default(),
        }
    }
}

impl LineFormat for LogLines {
    type State = LogState;

    fn feed<'b>(
        &mut self,
        bytes: &'b [u8],
        number: u64,
        offset: u64,
        emit: &mut dyn FnMut(Parsed<'b>),
    ) {
        self.held_idle = false;
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
            match gerrit_log::parse_record_start(text, &self.zone) {
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
    }

    /// Emits the held record, if any.
    fn flush<'b>(&mut self, emit: &mut dyn FnMut(Parsed<'b>)) {
        if let Some(h) = self.held.take() {
            let mut event = gerrit_log::record_event(&h.record, self.pull);
            event.timestamp =
                Timestamp::from_nanos(self.ordinals.number(event.timestamp.as_nanos()));
            self.pushes.settle(&mut event);
            let notes = self.pushes.notes(&event);
            emit(Parsed::Event(event, notes));
        }
        self.held_idle = false;
    }

    /// At a pause in the input: a record held over a whole pause is complete.
    fn idle<'b>(&mut self, emit: &mut dyn FnMut(Parsed<'b>)) {
        if self.held.is_some() && self.held_idle {
            self.flush(emit);
        } else {
            self.held_idle = self.held.is_some();
        }
    }

    /// Where a restart must resume so a held record is read again whole: its first line.
    fn held_start(&self) -> Option<(u64, u64)> {
        self.held.as_ref().map(|h| (h.offset, h.line))
    }

    fn state(&self) -> LogState {
        LogState {
            ordinals: self.ordinals.clone(),
        }
    }

    fn resume(&mut self, state: LogState) {
        self.ordinals = state.ordinals;
    }
}
