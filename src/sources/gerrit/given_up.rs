//! Pushes the replication plugin gave up on (gerrit.md §7): a `failed` of the retried kind (a
//! warning, see [`crate::sources::gerrit::stream::failure_severity`]) that is not scheduled again, replicated
//! or closed by a `*-done` within `replicationRetry` plus a slack has failed for good. Judged by
//! the stream's own clock (`eventCreatedOn` of the events that follow), never the wall clock, so
//! the same input always gives the same events; the watched failures are carried in the file
//! checkpoint so a resumed follow gives what a whole read gives.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Event, Severity, Timestamp};

/// Failures watched at most; the oldest is forgotten first (it is then never reported).
pub const KEEP: usize = 4096;
/// Added to `replicationRetry`: the time a retry may take to be scheduled.
pub const SLACK_SECS: u64 = 60;
/// The event a given-up push becomes.
pub const EVENT_TYPE: &str = "ref-replication-given-up";

/// (instance, project, ref, remote): ordered so a `*-done`'s (instance, project, ref) is a range.
type Key = (Option<String>, String, String, String);

/// One watched failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub project: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub remote: String,
    /// The failure's timestamp (ns, as stored).
    pub at: i64,
    /// `refStatus` / `refUpdateResult`, else `failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Failure>", into = "Vec<Failure>")]
pub struct Watch {
    by_key: BTreeMap<Key, Failure>,
    by_time: BTreeSet<(i64, Key)>,
}

impl From<Vec<Failure>> for Watch {
    fn from(v: Vec<Failure>) -> Self {
        let mut w = Watch::default();
        for f in v {
            w.failed(f);
        }
        w
    }
}

impl From<Watch> for Vec<Failure> {
    /// Oldest first (the checkpoint's text is the same for the same state).
    fn from(w: Watch) -> Self {
        let Watch {
            mut by_key,
            by_time,
        } = w;
        by_time
            .into_iter()
            .filter_map(|(_, k)| by_key.remove(&k))
            .collect()
    }
}

fn key_of(f: &Failure) -> Key {
    (
        f.instance.clone(),
        f.project.clone(),
        f.ref_name.clone(),
        f.remote.clone(),
    )
}

impl Watch {
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// The key failed (again): watched from this failure on.
    pub fn failed(&mut self, f: Failure) {
        let key = key_of(&f);
        let at = f.at;
        if let Some(old) = self.by_key.insert(key.clone(), f) {
            self.by_time.remove(&(old.at, key.clone()));
        }
        self.by_time.insert((at, key));
        while self.by_key.len() > KEEP {
            let Some((_, k)) = self.by_time.pop_first() else {
                break;
            };
            self.by_key.remove(&k);
        }
    }

    /// The key was scheduled again, replicated or not attempted: not given up.
    pub fn cleared(&mut self, instance: Option<&str>, project: &str, ref_name: &str, remote: &str) {
        let key: Key = (
            instance.map(String::from),
            project.into(),
            ref_name.into(),
            remote.into(),
        );
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old.at, key));
        }
    }

    /// A `*-done` closed (instance, project, ref) on every remote.
    pub fn closed(&mut self, instance: Option<&str>, project: &str, ref_name: &str) {
        let from: Key = (
            instance.map(String::from),
            project.into(),
            ref_name.into(),
            String::new(),
        );
        let keys: Vec<Key> = self
            .by_key
            .range(from..)
            .take_while(|(k, _)| k.0.as_deref() == instance && k.1 == project && k.2 == ref_name)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(old) = self.by_key.remove(&k) {
                self.by_time.remove(&(old.at, k));
            }
        }
    }

    /// The failures whose window (`window_ns`) ended before `now` (ns, an event of the stream),
    /// oldest first; no longer watched.
    pub fn due(&mut self, now: i64, window_ns: i64) -> Vec<Failure> {
        let mut out = Vec::new();
        while let Some((at, _)) = self.by_time.first() {
            if now <= at.saturating_add(window_ns) {
                break;
            }
            let Some((_, k)) = self.by_time.pop_first() else {
                break;
            };
            if let Some(f) = self.by_key.remove(&k) {
                out.push(f);
            }
        }
        out
    }
}

/// `90` -> `1m30s`, `120` -> `2m`.
fn span(secs: i64) -> String {
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

/// The error event of a failure given up on: at the end of its window, of the failure's instance
/// and ref, so it is a function of the input alone.
pub fn given_up_event(f: &Failure, window_ns: i64) -> Event {
    let secs = window_ns / 1_000_000_000;
    let arrow = if f.pull { "<-" } else { "->" };
    let summary = format!(
        "{} {} {arrow} {}: failed ({}) and not retried within {}: given up",
        f.project,
        f.ref_name,
        f.remote,
        f.status,
        span(secs)
    );
    let details = serde_json::json!({
        "type": EVENT_TYPE,
        "project": f.project,
        "ref": f.ref_name,
        "remote": f.remote,
        "instanceId": f.instance,
        "status": f.status,
        "failedAt": crate::model::format_rfc3339_z(Timestamp::from_nanos(f.at)),
        "windowSecs": secs,
    });
    Event {
        timestamp: Timestamp::from_nanos(f.at.saturating_add(window_ns)),
        source: crate::model::gerrit::SOURCE.into(),
        device_id: f.instance.clone(),
        event_type: EVENT_TYPE.into(),
        category: "replication".into(),
        severity: Severity::Error,
        summary,
        details: Some(details.to_string()),
        correlation_id: None,
        peer_device_id: Some(f.remote.clone()),
        model_types: None,
        record_count: None,
        duration_ms: None,
        subject: Some(f.ref_name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(r: &str, remote: &str, at: i64) -> Failure {
        Failure {
            instance: None,
            project: "p".into(),
            ref_name: r.into(),
            remote: remote.into(),
            at,
            status: "REJECTED_OTHER_REASON".into(),
            pull: false,
        }
    }

    #[test]
    fn due_cleared_closed_and_through_json() {
        let mut w = Watch::default();
        w.failed(f("refs/heads/a", "m1", 10));
        w.failed(f("refs/heads/a", "m2", 11));
        w.failed(f("refs/heads/b", "m1", 12));
        w.cleared(None, "p", "refs/heads/b", "m1");
        let mut back: Watch = serde_json::from_str(&serde_json::to_string(&w).unwrap()).unwrap();
        assert_eq!(back, w);
        assert!(back.due(15, 5).is_empty());
        assert_eq!(back.due(16, 5), [f("refs/heads/a", "m1", 10)]);
        w.closed(None, "p", "refs/heads/a");
        assert!(w.is_empty());
    }

    #[test]
    fn the_oldest_is_forgotten() {
        let mut w = Watch::default();
        for i in 0..(KEEP as i64 + 3) {
            w.failed(f(&format!("refs/heads/{i}"), "m", i));
        }
        assert_eq!(w.len(), KEEP);
        assert_eq!(w.due(4, 0).len(), 1, "0..=2 forgotten, 3 due");
    }
}
