//! `gerrit stream-events` lines (`gerrit-events:` and `gerrit-ssh:`): the line format the
//! generic followed-lines source reads them with. Events of one `eventCreatedOn` second are
//! numbered so they stay distinct and in stream order ([`Ordinals`]); a failure not retried in
//! time is given up ([`Watch`]); a `*-done` closing a ref still FAILED somewhere is an error.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::given_up::{self, Failure, Watch};
use super::ordinals::Ordinals;
use crate::model::gerrit;
use crate::model::Timestamp;
use crate::sources::lines::{LineFormat, Parsed};

/// What a file checkpoint of a stream carries, as it stood at its offset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// The numbering of events that share a timestamp.
    #[serde(default, skip_serializing_if = "Ordinals::is_empty")]
    pub ordinals: Ordinals,
    /// The failures not yet retried (absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Watch::is_empty")]
    pub given_up: Watch,
}

/// Reads `gerrit stream-events` lines; keeps what it needs from line to line.
pub struct StreamLines {
    /// Since the start of the input (a file read from its start begins with none).
    pub ordinals: Ordinals,
    /// The remotes each (instance, project, ref) last failed on, so a `*-done` that closes a
    /// ref still FAILED somewhere is an error (it failed for good). Bounded.
    still_failed: std::collections::HashMap<u64, Vec<String>>,
    /// Failures of the retried kind not yet scheduled again (since the start of the input,
    /// carried in the file checkpoint).
    pub given_up: Watch,
    /// `replicationRetry` plus slack (ns); a failure not retried within it is given up.
    pub retry_window_ns: i64,
}

impl Default for StreamLines {
    fn default() -> Self {
        StreamLines {
            ordinals: Ordinals::default(),
            still_failed: std::collections::HashMap::new(),
            given_up: Watch::default(),
            retry_window_ns: (60 + given_up::SLACK_SECS as i64) * 1_000_000_000,
        }
    }
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

/// (instance, project, ref) groups remembered before [`StreamLines::still_failed`] starts over.
const STILL_FAILED_MAX: usize = 100_000;

impl StreamLines {
    /// Sets `replicationRetry` plus slack: a failure not retried within it is given up.
    pub fn with_retry_window(mut self, window: Duration) -> Self {
        self.retry_window_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
        self
    }

    /// Follows which remotes each ref is FAILED on; a `*-done` closing a ref still FAILED is
    /// an error (only the severity changes: the identity of an event never depends on what
    /// was read before it).
    fn settle(&mut self, s: &mut super::stream::StreamEvent) {
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
                given_up::given_up_event(&f, self.retry_window_ns),
                Vec::new(),
            ));
        }
    }
}

impl LineFormat for StreamLines {
    type State = StreamState;

    fn feed<'b>(
        &mut self,
        bytes: &'b [u8],
        number: u64,
        _offset: u64,
        emit: &mut dyn FnMut(Parsed<'b>),
    ) {
        match super::stream::parse_stream_event(bytes, 0) {
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
        }
    }

    fn state(&self) -> StreamState {
        StreamState {
            ordinals: self.ordinals.clone(),
            given_up: self.given_up.clone(),
        }
    }

    fn resume(&mut self, state: StreamState) {
        self.ordinals = state.ordinals;
        self.given_up = state.given_up;
    }

    /// A stream that never repeats itself continues its numbering after a reconnect or a
    /// restart: each batch read from a pipe carries the [`Ordinals`].
    fn pipe_checkpoint(&self) -> Option<String> {
        serde_json::to_string(&self.ordinals).ok()
    }
}
