//! Gerrit replication: `gerrit stream-events` lines read into events, and the per-ref state the
//! replication-status plugin keeps, computed the same way (last event wins; `succeeded` ->
//! SUCCEEDED, `failed` -> FAILED, `not-attempted` -> NOT_ATTEMPTED, scheduled -> SCHEDULED,
//! anything else -> UNKNOWN), plus what the plugin cannot tell: a failure that was rescheduled
//! (retrying), attempts since the last success, the last error, when the ref last succeeded.
//!
//! Every layout of gerrit.md is read: <= 3.3 (`targetNode` only), 3.4, >= 3.5 (fields in any
//! order), pull replication (`fetch-*` with `sourceNode` or `targetUri`), project deletion,
//! `dropped-output`, and any other event (such as `ref-updated`) kept as timeline context.
//! There is no `ref-replication-failed`; `*-done` is not success.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Event, Severity, Timestamp, WireError};

/// The system name on every event this module makes.
pub const SOURCE: &str = "gerrit";
/// The pseudo-ref of whole-project pushes: kept as an event, never reported as a ref.
pub const ALL_REFS: &str = "..all..";
/// How the node without an `instanceId` is named (`status --instance none`).
pub const NO_INSTANCE: &str = "none";

/// One stream-events line as read: strings borrow from the line where they can (no escapes),
/// so a line costs few allocations.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    event_created_on: Option<i64>,
    #[serde(borrow)]
    instance_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    project: Option<WireProject<'a>>,
    #[serde(rename = "ref", borrow)]
    ref_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    target_node: Option<Cow<'a, str>>,
    #[serde(borrow)]
    target_uri: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source_node: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ref_status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    ref_update_result: Option<Cow<'a, str>>,
    nodes_count: Option<i64>,
    ref_update: Option<WireRefUpdate>,
    change: Option<WireChange>,
}

/// `project`: a name (replication events), or an object with a `name` (some other events).
#[derive(Debug)]
struct WireProject<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for WireProject<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = WireProject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a project name or an object with a name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(WireProject(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WireProject(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "name" {
                        name = map.next_value::<WireProject<'de>>()?.0;
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(WireProject(name))
            }
            // Anything else (null, a number, a list) names no project.
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(WireProject(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(WireProject(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(WireProject(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(WireProject(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(WireProject(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(WireProject(None))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRefUpdate {
    ref_name: Option<String>,
    project: Option<String>,
    old_rev: Option<String>,
    new_rev: Option<String>,
}

/// Git's zero id (`newRev` of a deleted ref, `oldRev` of a created one).
fn is_zero_id(rev: Option<&str>) -> bool {
    rev.is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b == b'0'))
}

#[derive(Debug, Default, Deserialize)]
struct WireChange {
    project: Option<String>,
    number: Option<serde_json::Value>,
}

/// Push or pull replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    Push,
    Pull,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Push => "PUSH",
            Direction::Pull => "PULL",
        }
    }
}

/// The replication-status plugin's per-ref status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefStatus {
    Succeeded,
    Failed,
    NotAttempted,
    Scheduled,
    Unknown,
}

impl RefStatus {
    /// As the plugin maps `event.status` (`null` on scheduled events).
    pub fn from_event_status(status: Option<&str>) -> RefStatus {
        match status.map(str::to_ascii_lowercase).as_deref() {
            None | Some("scheduled") => RefStatus::Scheduled,
            Some("succeeded") => RefStatus::Succeeded,
            Some("failed") => RefStatus::Failed,
            Some("not-attempted") => RefStatus::NotAttempted,
            Some(_) => RefStatus::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefStatus::Succeeded => "SUCCEEDED",
            RefStatus::Failed => "FAILED",
            RefStatus::NotAttempted => "NOT_ATTEMPTED",
            RefStatus::Scheduled => "SCHEDULED",
            RefStatus::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(text: &str) -> RefStatus {
        match text {
            "SUCCEEDED" => RefStatus::Succeeded,
            "FAILED" => RefStatus::Failed,
            "NOT_ATTEMPTED" => RefStatus::NotAttempted,
            "SCHEDULED" => RefStatus::Scheduled,
            _ => RefStatus::Unknown,
        }
    }

    /// The plugin's `isFailure()`: FAILED or UNKNOWN make the remote FAILED.
    pub fn is_failure(self) -> bool {
        matches!(self, RefStatus::Failed | RefStatus::Unknown)
    }
}

/// What a [`RefUpdate`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum UpdateKind {
    /// A replication event (or a log note, `status` None) about one key.
    #[default]
    Replication,
    /// The ref was deleted on the primary (`ref-updated` with a zero `newRev`): every remote and
    /// instance of (project, ref). It leaves the plugin's answer.
    RefDeleted,
    /// The ref was created again (`ref-updated` with a zero `oldRev`).
    RefCreated,
    /// `project-deletion-replication-done`: the project's refs are history.
    ProjectDeleted,
}

/// What one replication event says about one (instance, project, remote, ref).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefUpdate {
    /// `instanceId` of the event: the node whose plugin counts it (None: the node without one).
    pub instance: Option<String>,
    /// About `instance`'s rows only (a REST answer from a source with `,instance=`); false: an
    /// answer or note that names no node applies to the ref on every instance that has it.
    pub only_instance: bool,
    pub kind: UpdateKind,
    pub project: String,
    /// `targetUri`, else `targetNode` / `sourceNode`: the plugin's key.
    pub remote: String,
    pub ref_name: String,
    pub direction: Direction,
    /// None: no new status, only the error text `detail` (from the log, joined by push id).
    pub status: Option<RefStatus>,
    /// `eventCreatedOn`, seconds.
    pub when: i64,
    /// `refStatus` (push) or `refUpdateResult` (pull), when given; the error text of a log note.
    pub detail: Option<String>,
    /// Applies only when newer than what is known (a REST snapshot, not a stream event).
    pub newer_only: bool,
}

/// One stream-events line, read.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub event: Event,
    /// For the ref state, when the event is a replication event about a real ref.
    pub update: Option<RefUpdate>,
    /// `ref-replication-done` / `fetch-ref-replication-done`: the (project, ref) it closes.
    pub done: Option<(String, String)>,
}

/// How bad a `failed` is: a transient failure the plugin retries (a transport error, a
/// missing repository being created, a lock failure) is a warning; a rejection no retry fixes
/// (non-fast-forward, remote changed, a deletion refused, a pull rejected) or a failure with no
/// `refStatus` (the run ended without retrying: gerrit.md §2.2) is an error.
pub fn failure_severity(detail: Option<&str>) -> Severity {
    match detail {
        Some(
            "REJECTED_OTHER_REASON"
            | "NON_EXISTING"
            | "NOT_ATTEMPTED"
            | "AWAITING_REPORT"
            | "LOCK_FAILURE",
        ) => Severity::Warning,
        _ => Severity::Error,
    }
}

/// Above this an epoch time is in milliseconds (10^11 s is the year 5138; 10^11 ms is 1973).
pub const MILLIS_ABOVE: i64 = 100_000_000_000;

/// An epoch time Gerrit sent (`eventCreatedOn`, a REST `when`), in seconds or, by magnitude, in
/// milliseconds (the replication-status plugin's own tests use milliseconds): (seconds,
/// nanoseconds). None when out of range.
pub fn epoch_time(v: i64) -> Option<(i64, i64)> {
    if v.checked_abs()? > MILLIS_ABOVE {
        Some((v.div_euclid(1000), v.checked_mul(1_000_000)?))
    } else {
        Some((v, v.checked_mul(1_000_000_000)?))
    }
}

/// Reads one `gerrit stream-events` line. `ordinal` (0, 1, ...) numbers events that share
/// one `eventCreatedOn` second, in stream order, so they stay distinct and ordered.
pub fn parse_stream_event(bytes: &[u8], ordinal: u32) -> Result<StreamEvent, WireError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        WireError(format!(
            "not UTF-8: invalid byte at offset {}",
            e.valid_up_to()
        ))
    })?;
    let w: Wire<'_> = serde_json::from_str(text).map_err(|e| {
        WireError(if e.is_syntax() || e.is_eof() {
            format!("invalid JSON: {e}")
        } else {
            e.to_string()
        })
    })?;
    let kind = w
        .kind
        .filter(|k| !k.is_empty())
        .ok_or_else(|| WireError("missing field `type`".into()))?;
    let created = w
        .event_created_on
        .ok_or_else(|| WireError("missing field `eventCreatedOn`".into()))?;
    let (secs, nanos) = epoch_time(created)
        .and_then(|(s, n)| Some((s, n.checked_add(i64::from(ordinal))?)))
        .ok_or_else(|| WireError(format!("eventCreatedOn {created} is out of range")))?;

    // ref-updated and friends carry the project elsewhere.
    let project: Option<Cow<'_, str>> = w
        .project
        .and_then(|p| p.0)
        .or_else(|| {
            w.ref_update
                .as_ref()
                .and_then(|r| r.project.as_deref())
                .map(Cow::Borrowed)
        })
        .or_else(|| {
            w.change
                .as_ref()
                .and_then(|c| c.project.as_deref())
                .map(Cow::Borrowed)
        });
    let ref_name: Option<Cow<'_, str>> = w.ref_name.or_else(|| {
        w.ref_update
            .as_ref()
            .and_then(|r| r.ref_name.as_deref())
            .map(Cow::Borrowed)
    });
    let pull = kind.starts_with("fetch-");
    let remote = w
        .target_uri
        .filter(|u| !u.is_empty())
        .or(w.target_node)
        .or(w.source_node);
    let detail = w.ref_status.or(w.ref_update_result);
    let status = w.status.as_deref();

    let replication = matches!(
        &*kind,
        "ref-replication-scheduled"
            | "ref-replicated"
            | "fetch-ref-replication-scheduled"
            | "fetch-ref-replicated"
    );
    let ref_status = RefStatus::from_event_status(status);
    let (category, severity) = match &*kind {
        "ref-replicated" | "fetch-ref-replicated" => (
            "replication",
            match ref_status {
                RefStatus::Failed | RefStatus::Unknown => failure_severity(detail.as_deref()),
                _ => Severity::Info,
            },
        ),
        "ref-replication-scheduled" | "fetch-ref-replication-scheduled" => {
            ("replication", Severity::Debug)
        }
        "ref-replication-done" | "fetch-ref-replication-done" => ("replication", Severity::Debug),
        "project-deletion-replication-failed" => ("replication", Severity::Error),
        k if k.starts_with("project-deletion-replication") => ("replication", Severity::Info),
        "dropped-output" => ("stream", Severity::Warning),
        _ => ("gerrit", Severity::Info),
    };

    // "{project} {ref}", then what happened; written into one string.
    let mut summary = String::with_capacity(160);
    let what = |out: &mut String| {
        let parts = [project.as_deref(), ref_name.as_deref()];
        for (i, part) in parts.into_iter().flatten().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(part);
        }
    };
    let arrow = if pull { " <- " } else { " -> " };
    let to = |out: &mut String| {
        if let Some(r) = remote.as_deref().filter(|r| !r.is_empty()) {
            out.push_str(arrow);
            out.push_str(r);
        }
    };
    match &*kind {
        "dropped-output" => summary
            .push_str("stream overflowed: Gerrit dropped events; replication state may be stale"),
        "ref-replicated" | "fetch-ref-replicated" => {
            what(&mut summary);
            to(&mut summary);
            summary.push_str(": ");
            summary.push_str(status.unwrap_or("unknown"));
            if let Some(d) = detail.as_deref() {
                let _ = write!(summary, " ({d})");
            }
            if detail.as_deref() == Some("REJECTED_NODELETE") {
                summary.push_str(": deletion not replicated");
            }
        }
        "ref-replication-scheduled" | "fetch-ref-replication-scheduled" => {
            what(&mut summary);
            to(&mut summary);
            summary.push_str(": scheduled");
        }
        "ref-replication-done" | "fetch-ref-replication-done" => {
            what(&mut summary);
            summary.push_str(": replication done");
            if let Some(n) = w.nodes_count {
                let _ = write!(summary, " ({n} targets)");
            }
        }
        k if k.starts_with("project-deletion-replication-") => {
            what(&mut summary);
            to(&mut summary);
            let step = &k["project-deletion-replication-".len()..];
            let _ = write!(summary, ": project deletion {step}");
        }
        "ref-updated" => {
            what(&mut summary);
            summary.push_str(" updated");
            if let Some(r) = w.ref_update.as_ref().and_then(|r| r.new_rev.as_deref()) {
                let _ = write!(summary, " -> {}", &r[..r.len().min(10)]);
            }
        }
        k => {
            summary.push_str(k);
            let before = summary.len();
            summary.push(' ');
            what(&mut summary);
            if summary.len() == before + 1 {
                summary.truncate(before);
            }
            if let Some(n) = w.change.as_ref().and_then(|c| c.number.as_ref()) {
                let _ = write!(summary, " change {n}");
            }
        }
    }

    let instance = w.instance_id.as_deref().map(String::from);
    let ref_change = w.ref_update.as_ref().and_then(|r| {
        if is_zero_id(r.new_rev.as_deref()) {
            Some(UpdateKind::RefDeleted)
        } else if is_zero_id(r.old_rev.as_deref()) {
            Some(UpdateKind::RefCreated)
        } else {
            None
        }
    });
    let whole = |kind: UpdateKind, p: &str, rf: &str| RefUpdate {
        instance: instance.clone(),
        only_instance: false,
        kind,
        project: p.to_string(),
        remote: String::new(),
        ref_name: rf.to_string(),
        direction: Direction::Push,
        status: None,
        when: secs,
        detail: None,
        newer_only: false,
    };
    let update = match (replication, &project, &remote, &ref_name) {
        (false, Some(p), _, Some(rf)) if kind == "ref-updated" && ref_change.is_some() => {
            ref_change.map(|k| whole(k, p, rf))
        }
        (false, Some(p), _, _) if kind == "project-deletion-replication-done" => {
            Some(whole(UpdateKind::ProjectDeleted, p, ""))
        }
        (true, Some(p), Some(r), Some(rf)) if rf != ALL_REFS => Some(RefUpdate {
            instance,
            only_instance: false,
            kind: UpdateKind::Replication,
            project: p.to_string(),
            remote: r.to_string(),
            ref_name: rf.to_string(),
            direction: if pull {
                Direction::Pull
            } else {
                Direction::Push
            },
            status: Some(ref_status),
            when: secs,
            detail: detail.as_deref().map(String::from),
            newer_only: false,
        }),
        _ => None,
    };

    let done = match (&*kind, &project, &ref_name) {
        ("ref-replication-done" | "fetch-ref-replication-done", Some(p), Some(r)) => {
            Some((p.to_string(), r.to_string()))
        }
        _ => None,
    };
    let event = Event {
        timestamp: Timestamp::from_nanos(nanos),
        source: SOURCE.into(),
        device_id: w.instance_id.map(Cow::into_owned),
        event_type: kind.into_owned(),
        category: category.into(),
        severity,
        summary,
        details: Some(text.trim().to_string()),
        correlation_id: None,
        peer_device_id: remote.filter(|r| !r.is_empty()).map(Cow::into_owned),
        model_types: None,
        record_count: None,
        duration_ms: None,
        subject: ref_name.or(project).map(Cow::into_owned),
    };
    Ok(StreamEvent {
        event,
        update,
        done,
    })
}

/// What is known of one (instance, project, remote, ref).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefState {
    /// The node whose plugin counts these events (None: the node without an `instanceId`).
    pub instance: Option<String>,
    /// When the ref was deleted on the primary (it is then not in the plugin's answer); a
    /// later FAILED is a deletion that did not replicate.
    pub deleted: Option<i64>,
    pub project: String,
    pub remote: String,
    pub ref_name: String,
    pub direction: Direction,
    /// The plugin's status: the last event's.
    pub status: String,
    /// The last event's `eventCreatedOn` (the plugin's `when`).
    pub when: i64,
    /// A failure followed by a new scheduling for the same key.
    pub retrying: bool,
    /// Schedulings since the last success.
    pub attempts: i64,
    pub last_success: Option<i64>,
    pub last_failure: Option<i64>,
    /// The `refStatus` / `refUpdateResult` of the last failure.
    pub last_error: Option<String>,
    /// When the current SCHEDULED began (for "stuck").
    pub scheduled_since: Option<i64>,
}

impl RefState {
    /// The state after `u`, from what was known before (`None` for a new key). A log note
    /// (no status) about a key nothing is known of yet changes nothing: None.
    pub fn apply(old: Option<RefState>, u: &RefUpdate) -> Option<RefState> {
        if u.newer_only && old.as_ref().is_some_and(|o| o.when >= u.when) {
            return old;
        }
        match u.kind {
            UpdateKind::Replication => {}
            UpdateKind::RefDeleted => {
                return old.map(|mut s| {
                    s.deleted = Some(u.when);
                    s
                })
            }
            UpdateKind::RefCreated => {
                return old.map(|mut s| {
                    s.deleted = None;
                    s
                })
            }
            UpdateKind::ProjectDeleted => return old,
        }
        let Some(status) = u.status else {
            let mut s = old?;
            s.last_error = u.detail.clone().or(s.last_error);
            return Some(s);
        };
        let mut s = old.unwrap_or_else(|| RefState {
            instance: u.instance.clone(),
            deleted: None,
            project: u.project.clone(),
            remote: u.remote.clone(),
            ref_name: u.ref_name.clone(),
            direction: u.direction,
            status: RefStatus::Unknown.as_str().into(),
            when: u.when,
            retrying: false,
            attempts: 0,
            last_success: None,
            last_failure: None,
            last_error: None,
            scheduled_since: None,
        });
        if u.newer_only {
            // A REST answer lists only refs that exist: this one is not deleted (any more).
            s.deleted = None;
        }
        let before = RefStatus::parse(&s.status);
        match status {
            RefStatus::Scheduled => {
                s.attempts += 1;
                s.retrying =
                    before == RefStatus::Failed || (s.retrying && before == RefStatus::Scheduled);
                if before != RefStatus::Scheduled {
                    s.scheduled_since = Some(u.when);
                }
            }
            RefStatus::Succeeded => {
                s.attempts = 0;
                s.retrying = false;
                s.last_success = Some(u.when);
                s.scheduled_since = None;
            }
            RefStatus::Failed | RefStatus::Unknown => {
                // Only a deletion is rejected so: the ref is gone on the primary.
                if u.detail.as_deref() == Some("REJECTED_NODELETE") {
                    s.deleted = s.deleted.or(Some(u.when));
                }
                s.last_failure = Some(u.when);
                s.last_error = u.detail.clone().or_else(|| Some("failed".into()));
                s.scheduled_since = None;
            }
            RefStatus::NotAttempted => {
                s.retrying = false;
                s.scheduled_since = None;
            }
        }
        s.direction = u.direction;
        s.status = status.as_str().into();
        s.when = u.when;
        Some(s)
    }

    /// Deleted on the primary and its deletion not replicated (the last push failed): shown
    /// apart, a warning, never FAILED.
    pub fn deletion_not_replicated(&self) -> bool {
        self.deleted.is_some() && RefStatus::parse(&self.status).is_failure()
    }

    /// In the plugin's answer: the ref exists on the primary.
    pub fn reported(&self) -> bool {
        self.deleted.is_none()
    }

    /// The instance as shown and asked for (`none`: the node without an id).
    pub fn instance_name(&self) -> &str {
        self.instance.as_deref().unwrap_or(NO_INSTANCE)
    }

    /// SCHEDULED for longer than `limit_secs` at `now_secs`.
    pub fn stuck(&self, now_secs: i64, limit_secs: i64) -> bool {
        self.status == RefStatus::Scheduled.as_str()
            && self
                .scheduled_since
                .is_some_and(|t| now_secs - t > limit_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> StreamEvent {
        parse_stream_event(line.as_bytes(), 0).unwrap()
    }

    #[test]
    fn every_push_layout_gives_the_same_key() {
        let v33 = r#"{"project":"p","ref":"refs/heads/main","targetNode":"mirror:29418","status":"failed","refStatus":"REJECTED_NONFASTFORWARD","type":"ref-replicated","eventCreatedOn":100}"#;
        let v34 = r#"{"project":"p","ref":"refs/heads/main","targetNode":"mirror:29418","targetUri":"ssh://r@mirror:29418/p.git","status":"succeeded","type":"ref-replicated","eventCreatedOn":100}"#;
        let v35 = r#"{"targetNode":"mirror:29418","refStatus":"OK","project":"p","ref":"refs/heads/main","status":"succeeded","targetUri":"ssh://r@mirror:29418/p.git","type":"ref-replicated","eventCreatedOn":100,"instanceId":"primary-1"}"#;
        let u33 = parse(v33).update.unwrap();
        assert_eq!(u33.remote, "mirror:29418", "<= 3.3: the node is the key");
        assert_eq!(
            (u33.status, u33.detail.as_deref()),
            (Some(RefStatus::Failed), Some("REJECTED_NONFASTFORWARD"))
        );
        let u35 = parse(v35);
        assert_eq!(
            parse(v34).update.unwrap().remote,
            "ssh://r@mirror:29418/p.git"
        );
        assert_eq!(
            u35.update.as_ref().unwrap().remote,
            "ssh://r@mirror:29418/p.git"
        );
        assert_eq!(u35.event.device_id.as_deref(), Some("primary-1"));
        assert_eq!(u35.event.subject.as_deref(), Some("refs/heads/main"));
        assert_eq!(u35.event.severity, Severity::Info);
        assert_eq!(
            parse(v33).event.severity,
            Severity::Error,
            "a rejection no retry fixes"
        );
    }

    #[test]
    fn pull_events_scheduled_all_refs_done_and_others() {
        let pull = parse(
            r#"{"project":"p","ref":"refs/heads/m","sourceNode":"primary:8080","status":"succeeded","refUpdateResult":"FAST_FORWARD","type":"fetch-ref-replicated","eventCreatedOn":5}"#,
        );
        let u = pull.update.unwrap();
        assert_eq!(
            (u.direction, u.remote.as_str(), u.detail.as_deref()),
            (Direction::Pull, "primary:8080", Some("FAST_FORWARD"))
        );
        let head = parse(
            r#"{"refUpdateResult":"FORCED","project":"p","ref":"HEAD","status":"succeeded","targetUri":"","type":"fetch-ref-replicated","eventCreatedOn":5}"#,
        );
        assert!(head.update.is_none(), "an empty URI is no remote");
        let sched = parse(
            r#"{"project":"p","ref":"refs/heads/m","targetUri":"https://h/p.git","type":"ref-replication-scheduled","eventCreatedOn":5}"#,
        );
        assert_eq!(sched.update.unwrap().status, Some(RefStatus::Scheduled));
        let all = parse(
            r#"{"project":"p","ref":"..all..","targetUri":"https://h/p.git","type":"ref-replication-scheduled","eventCreatedOn":5}"#,
        );
        assert!(all.update.is_none(), "..all.. is an event, not a ref");
        assert_eq!(all.event.subject.as_deref(), Some("..all.."));
        let done = parse(
            r#"{"project":"p","ref":"refs/heads/m","nodesCount":2,"type":"ref-replication-done","eventCreatedOn":5}"#,
        );
        assert!(done.update.is_none(), "done is not success");
        assert!(done.event.summary.contains("2 targets"));
        let dropped = parse(r#"{"type":"dropped-output","eventCreatedOn":7}"#);
        assert_eq!(dropped.event.severity, Severity::Warning);
        let del = parse(
            r#"{"project":"p","targetUri":"https://h/p.git","type":"project-deletion-replication-failed","eventCreatedOn":8}"#,
        );
        assert_eq!(del.event.severity, Severity::Error);
        let upd = parse(
            r#"{"submitter":{"name":"J"},"refUpdate":{"oldRev":"a","newRev":"1b2c3d4e5f60718293a4","refName":"refs/heads/master","project":"platform/core"},"type":"ref-updated","eventCreatedOn":9}"#,
        );
        assert_eq!(upd.event.subject.as_deref(), Some("refs/heads/master"));
        assert!(upd
            .event
            .summary
            .contains("platform/core refs/heads/master updated -> 1b2c3d4e5f"));
        let other = parse(
            r#"{"change":{"project":"p","number":12},"type":"comment-added","eventCreatedOn":9}"#,
        );
        assert_eq!(other.event.event_type, "comment-added");
    }

    #[test]
    fn project_as_name_object_or_nonsense_and_escaped_strings() {
        let obj = parse(
            r#"{"project":{"name":"platform/core","parent":{"name":"All-Projects"},"tags":[1,null]},"change":{"number":7},"type":"change-merged","eventCreatedOn":9}"#,
        );
        assert_eq!(obj.event.subject.as_deref(), Some("platform/core"));
        assert_eq!(obj.event.summary, "change-merged platform/core change 7");
        let odd = parse(
            r#"{"project":42,"change":{"project":"from-change"},"type":"change-merged","eventCreatedOn":9}"#,
        );
        assert_eq!(odd.event.subject.as_deref(), Some("from-change"));
        let nameless = parse(r#"{"project":{"name":null},"type":"x","eventCreatedOn":9}"#);
        assert_eq!(
            (nameless.event.subject, nameless.event.summary.as_str()),
            (None, "x")
        );
        // Escapes are decoded (such strings cannot borrow from the line).
        let esc = parse(
            r#"{"project":"p\u00e9","ref":"refs\/heads\/caf\u00e9","targetUri":"ssh:\/\/m\/p.git","status":"succeeded","type":"ref-replicated","eventCreatedOn":1}"#,
        );
        let u = esc.update.unwrap();
        assert_eq!(
            (u.project.as_str(), u.ref_name.as_str(), u.remote.as_str()),
            ("pé", "refs/heads/café", "ssh://m/p.git")
        );
        assert_eq!(
            esc.event.summary,
            "pé refs/heads/café -> ssh://m/p.git: succeeded"
        );
        assert!(parse_stream_event(
            br#"{"project":{"name":"p"},"type":5,"eventCreatedOn":1}"#,
            0
        )
        .is_err());
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, want) in [
            ("{\"type\":\"ref-replicated\"", "invalid JSON"),
            ("{\"eventCreatedOn\":1}", "missing field `type`"),
            ("{\"type\":\"x\"}", "missing field `eventCreatedOn`"),
            (
                "{\"type\":\"x\",\"eventCreatedOn\":\"soon\"}",
                "invalid type",
            ),
            (
                "Connection to gerrit closed by remote host.",
                "invalid JSON",
            ),
        ] {
            let err = parse_stream_event(line.as_bytes(), 0).unwrap_err().0;
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    #[test]
    fn same_second_events_stay_apart_and_in_order() {
        let line = br#"{"project":"p","ref":"r","targetUri":"u","type":"ref-replication-scheduled","eventCreatedOn":10}"#;
        let a = parse_stream_event(line, 0).unwrap().event;
        let b = parse_stream_event(line, 1).unwrap().event;
        assert!(a.timestamp < b.timestamp);
        assert_ne!(a.dedup_key(), b.dedup_key());
    }

    #[test]
    fn milliseconds_deletions_and_instances() {
        let ms = parse(
            r#"{"project":"p","ref":"r","targetUri":"u","status":"succeeded","type":"ref-replicated","eventCreatedOn":1741944615123,"instanceId":"n1"}"#,
        );
        assert_eq!(ms.event.timestamp.as_nanos(), 1_741_944_615_123_000_000);
        let u = ms.update.unwrap();
        assert_eq!((u.when, u.instance.as_deref()), (1_741_944_615, Some("n1")));
        // 10^11 seconds is out of range in nanoseconds; above it, milliseconds.
        assert_eq!(epoch_time(100_000_000_000), None);
        assert_eq!(epoch_time(100_000_000_001).map(|t| t.0), Some(100_000_000));
        assert_eq!(epoch_time(i64::MAX), None);
        let zero = "0".repeat(40);
        let del = parse(&format!(
            r#"{{"refUpdate":{{"oldRev":"1b2c","newRev":"{zero}","refName":"refs/heads/x","project":"p"}},"type":"ref-updated","eventCreatedOn":9}}"#
        ));
        let u = del.update.unwrap();
        assert_eq!(
            (u.kind, u.ref_name.as_str(), u.remote.as_str()),
            (UpdateKind::RefDeleted, "refs/heads/x", "")
        );
        let created = parse(&format!(
            r#"{{"refUpdate":{{"oldRev":"{zero}","newRev":"1b2c","refName":"refs/heads/x","project":"p"}},"type":"ref-updated","eventCreatedOn":9}}"#
        ));
        assert_eq!(created.update.unwrap().kind, UpdateKind::RefCreated);
        let moved = parse(
            r#"{"refUpdate":{"oldRev":"1a","newRev":"1b","refName":"refs/heads/x","project":"p"},"type":"ref-updated","eventCreatedOn":9}"#,
        );
        assert!(
            moved.update.is_none(),
            "a ref update that is no deletion changes no state"
        );
        let gone = parse(
            r#"{"project":"p","type":"project-deletion-replication-done","eventCreatedOn":9}"#,
        );
        assert_eq!(gone.update.unwrap().kind, UpdateKind::ProjectDeleted);

        // State: a refused deletion is shown apart; a re-created ref is reported again.
        let s = RefState::apply(None, &upd(RefStatus::Succeeded, 10, Some("OK"))).unwrap();
        assert!(s.reported());
        let mut d = upd(RefStatus::Succeeded, 11, None);
        (d.kind, d.status) = (UpdateKind::RefDeleted, None);
        let s = RefState::apply(Some(s), &d).unwrap();
        assert_eq!((s.reported(), s.deletion_not_replicated()), (false, false));
        let s = RefState::apply(
            Some(s),
            &upd(RefStatus::Failed, 12, Some("REJECTED_NODELETE")),
        )
        .unwrap();
        assert!(s.deletion_not_replicated());
        d.kind = UpdateKind::RefCreated;
        let s = RefState::apply(Some(s), &d).unwrap();
        assert!(s.reported());
        // A refused deletion seen without its ref-updated (not subscribed) is one too.
        let s =
            RefState::apply(None, &upd(RefStatus::Failed, 12, Some("REJECTED_NODELETE"))).unwrap();
        assert!(s.deletion_not_replicated());
        assert_eq!(
            failure_severity(Some("REJECTED_OTHER_REASON")),
            Severity::Warning
        );
        assert_eq!(failure_severity(Some("REJECTED_NODELETE")), Severity::Error);
        assert_eq!(failure_severity(None), Severity::Error);
    }

    fn upd(status: RefStatus, when: i64, detail: Option<&str>) -> RefUpdate {
        RefUpdate {
            instance: None,
            only_instance: false,
            kind: UpdateKind::Replication,
            project: "p".into(),
            remote: "u".into(),
            ref_name: "refs/heads/main".into(),
            direction: Direction::Push,
            status: Some(status),
            when,
            detail: detail.map(String::from),
            newer_only: false,
        }
    }

    #[test]
    fn state_follows_the_plugin_and_adds_retries_attempts_and_errors() {
        let s = RefState::apply(None, &upd(RefStatus::Scheduled, 10, None)).unwrap();
        assert_eq!(
            (s.status.as_str(), s.attempts, s.retrying),
            ("SCHEDULED", 1, false)
        );
        let s = RefState::apply(
            Some(s),
            &upd(RefStatus::Failed, 20, Some("REJECTED_OTHER_REASON")),
        )
        .unwrap();
        assert_eq!(s.status, "FAILED");
        assert_eq!(s.last_error.as_deref(), Some("REJECTED_OTHER_REASON"));
        let s = RefState::apply(Some(s), &upd(RefStatus::Scheduled, 30, None)).unwrap();
        assert_eq!(
            (s.status.as_str(), s.attempts, s.retrying),
            ("SCHEDULED", 2, true),
            "failed then rescheduled"
        );
        assert!(s.stuck(30 + 3601, 3600));
        assert!(!s.stuck(30 + 60, 3600));
        let s = RefState::apply(Some(s), &upd(RefStatus::Succeeded, 40, Some("OK"))).unwrap();
        assert_eq!(
            (s.status.as_str(), s.attempts, s.retrying, s.last_success),
            ("SUCCEEDED", 0, false, Some(40))
        );
        assert_eq!(
            s.last_error.as_deref(),
            Some("REJECTED_OTHER_REASON"),
            "the last error is kept for context"
        );
        let s = RefState::apply(
            Some(s),
            &upd(RefStatus::NotAttempted, 50, Some("UP_TO_DATE")),
        )
        .unwrap();
        assert_eq!(s.status, "NOT_ATTEMPTED");
        assert!(!RefStatus::NotAttempted.is_failure());
        assert!(RefStatus::Unknown.is_failure());
        // A log note changes only the error text, and only of a known key.
        let mut note = upd(
            RefStatus::Failed,
            60,
            Some("Cannot replicate to u: Connection timed out"),
        );
        note.status = None;
        assert_eq!(RefState::apply(None, &note), None);
        let s = RefState::apply(Some(s), &note).unwrap();
        assert_eq!(
            (s.status.as_str(), s.last_error.as_deref()),
            (
                "NOT_ATTEMPTED",
                Some("Cannot replicate to u: Connection timed out")
            )
        );
        assert_eq!(
            RefStatus::from_event_status(Some("not_attempted")),
            RefStatus::Unknown
        );
    }
}
