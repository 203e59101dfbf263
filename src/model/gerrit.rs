//! Gerrit replication's domain: the ref updates events carry and the per-ref state the
//! replication-status plugin keeps, computed the same way (last event wins; `succeeded` ->
//! SUCCEEDED, `failed` -> FAILED, `not-attempted` -> NOT_ATTEMPTED, scheduled -> SCHEDULED,
//! anything else -> UNKNOWN), plus what the plugin cannot tell: a failure that was rescheduled
//! (retrying), attempts since the last success, the last error, when the ref last succeeded.
//! Reading `gerrit stream-events` lines is the source's (`sources/gerrit/stream.rs`).

use serde::{Deserialize, Serialize};

/// The system name on every event this module makes.
pub const SOURCE: &str = crate::model::names::system::GERRIT;
/// The pseudo-ref of whole-project pushes: kept as an event, never reported as a ref.
pub const ALL_REFS: &str = "..all..";
/// How the node without an `instanceId` is named (`status --instance none`).
pub const NO_INSTANCE: &str = "none";

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

/// The replication-status plugin's per-ref status (serialized as the plugin spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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
#[serde(rename_all = "snake_case")]
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

/// A bare status code of the plugin (`REJECTED_OTHER_REASON`, `NON_EXISTING`): upper-case
/// letters, digits and underscores, no words.
fn is_status_code(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
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
            // A note from the log: every one reports a failure (a ref failed, a transport
            // error, a replication error, given up), in words the stream's code lacks.
            let mut s = old?;
            if u.detail.is_some() {
                s.last_failure = Some(s.last_failure.map_or(u.when, |f| f.max(u.when)));
            }
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
                // The log's words for this same failure (a note of the same second, come
                // first) are kept over the stream's bare code, as when the note comes second:
                // the last error does not depend on which source was read first.
                let noted = s.last_failure == Some(u.when)
                    && s.last_error.as_deref().is_some_and(|e| !is_status_code(e));
                s.last_failure = Some(u.when);
                if !(noted && u.detail.as_deref().is_none_or(is_status_code)) {
                    s.last_error = u.detail.clone().or_else(|| Some("failed".into()));
                }
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

    #[test]
    fn deletions_in_the_state() {
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
    fn the_last_error_does_not_depend_on_whether_the_stream_or_the_log_came_first() {
        let scheduled = RefState::apply(None, &upd(RefStatus::Scheduled, 10, None)).unwrap();
        let failed = upd(RefStatus::Failed, 20, Some("REJECTED_OTHER_REASON"));
        let mut note = upd(
            RefStatus::Failed,
            20,
            Some("Cannot replicate to u: Connection refused"),
        );
        note.status = None;
        let stream_first =
            RefState::apply(RefState::apply(Some(scheduled.clone()), &failed), &note).unwrap();
        let log_first =
            RefState::apply(RefState::apply(Some(scheduled.clone()), &note), &failed).unwrap();
        assert_eq!(stream_first, log_first);
        assert_eq!(
            log_first.last_error.as_deref(),
            Some("Cannot replicate to u: Connection refused")
        );
        assert_eq!(
            (log_first.status.as_str(), log_first.last_failure),
            ("FAILED", Some(20))
        );
        // A failure of a later second is a new one: its code replaces the old words.
        let later = RefState::apply(
            Some(log_first),
            &upd(RefStatus::Failed, 35, Some("REJECTED_NONFASTFORWARD")),
        )
        .unwrap();
        assert_eq!(later.last_error.as_deref(), Some("REJECTED_NONFASTFORWARD"));
        // A note never moves the last failure back.
        let mut old_note = note.clone();
        old_note.when = 5;
        let s = RefState::apply(Some(later), &old_note).unwrap();
        assert_eq!(s.last_failure, Some(35));
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
