//! Derived state has one path: a batch carries [`StateUpdate`]s of any domain, and the writer
//! hands them, in its transaction, to the domain that owns them ([`Dispatch`]):
//!
//! | domain | update                    | applied by            | semantics                                  |
//! |--------|---------------------------|-----------------------|--------------------------------------------|
//! | refs   | [`StateUpdate::Ref`]      | [`super::refs`]       | only for events stored now, in order       |
//! | CI     | [`StateUpdate::Ci`]       | [`super::ci`]         | upserts: applying twice changes nothing    |
//! | relays | [`StateUpdate::Relay`]    | [`super::relays`]     | a target's whole state; never older over newer |
//!
//! The serialized form (JSON through serde) is plain and stable: `{"domain": "ref", "update":
//! {"event": 3, "update": {...}}}`, `{"domain": "ci", "update": {"kind": "pipeline", ...}}`,
//! `{"domain": "relay", "update": {"target": ..., "relays": {...}}}`. Batches forwarded to
//! another host carry their updates in it.

use color_eyre::eyre::Result;
use rusqlite::Transaction;
use serde::{Deserialize, Serialize};

use super::interner::Interner;
use crate::model::ci::CiUpdate;
use crate::model::gerrit::RefUpdate;
use crate::model::relay::TargetState;

/// One change of derived state a batch carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "domain", content = "update", rename_all = "snake_case")]
pub enum StateUpdate {
    /// Gerrit ref state reported by the batch's event `event` (its index in the batch): applied
    /// in order, and only when that event is stored now (an event read twice changes nothing
    /// twice).
    Ref { event: usize, update: RefUpdate },
    /// GitLab CI state (pipelines, failed jobs, patterns), applied whether or not the events
    /// that report it were stored before.
    Ci(CiUpdate),
    /// The whole derived state of one relay target (see [`super::relays::update`]).
    Relay(TargetState),
    /// A target the source no longer has (a `prometheus:` instance dropped an hour after it
    /// vanished): its state leaves the store (see [`super::relays::retired`]).
    RelayRetired(String),
}

/// The updates of the batches of one transaction, on their way to their domains. Ref updates
/// are gathered over the whole transaction and applied once at the end (each ref read and
/// written once); CI and relay updates are applied batch by batch.
#[derive(Default)]
pub(super) struct Dispatch<'b> {
    /// The ref updates of the events stored now, with their event ids, in order.
    refs: Vec<(&'b RefUpdate, i64)>,
}

impl<'b> Dispatch<'b> {
    /// One batch's updates; `stored[i]`: the store id of its event `i` if stored now.
    pub(super) fn batch(
        &mut self,
        tx: &Transaction<'_>,
        source: &str,
        updates: &'b [StateUpdate],
        stored: &[Option<i64>],
    ) -> Result<()> {
        let mut ci: Vec<&CiUpdate> = Vec::new();
        for u in updates {
            match u {
                StateUpdate::Ref { event, update } => {
                    if let Some(Some(id)) = stored.get(*event) {
                        self.refs.push((update, *id));
                    }
                }
                StateUpdate::Ci(c) => ci.push(c),
                StateUpdate::Relay(t) => super::relays::apply(tx, source, t)?,
                StateUpdate::RelayRetired(target) => super::relays::retire(tx, source, target)?,
            }
        }
        super::ci::apply(tx, &ci)
    }

    /// Applies what waited for the end of the transaction (the ref state).
    pub(super) fn finish(self, tx: &Transaction<'_>, strings: &mut Interner) -> Result<()> {
        super::refs::apply(tx, strings, &self.refs)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::ci::{CiJob, CiPipeline, LogState};
    use crate::model::gerrit::{Direction, RefStatus, UpdateKind};
    use crate::model::relay::{Connection, Health, RelayReading};
    use crate::model::{Event, Timestamp};
    use crate::store::{Batch, Writer};

    use crate::store::writer::tests::event;

    fn ref_update(status: RefStatus, when: i64) -> RefUpdate {
        RefUpdate {
            instance: Some("gerrit-1".into()),
            only_instance: false,
            kind: UpdateKind::Replication,
            project: "proj".into(),
            remote: "ssh://mirror".into(),
            ref_name: "refs/heads/main".into(),
            direction: Direction::Push,
            status: Some(status),
            when,
            detail: Some("failed: timeout".into()),
            newer_only: false,
        }
    }

    fn pipeline() -> CiPipeline {
        CiPipeline {
            project: "group/app".into(),
            project_url: Some("https://gitlab.example/group/app".into()),
            id: 42,
            night: "2026-12-01".into(),
            status: "failed".into(),
            warnings: false,
            ref_name: Some("main".into()),
            sha: Some("abc".into()),
            source: Some("schedule".into()),
            web_url: None,
            created_at: 1_764_550_000,
            updated_at: 1_764_553_600,
            downstream_failed: false,
        }
    }

    fn target(url: &str, at: i64) -> TargetState {
        let mut t = TargetState::new(url);
        let _ = t.observe(
            Timestamp::from_nanos(at),
            &[RelayReading {
                relay: "wss://relay.example".into(),
                connection: Some(Connection::from(2)),
                health: Some(Health::from(1)),
                ok: 3,
                fail: 1,
            }],
        );
        t
    }

    fn every_update() -> Vec<StateUpdate> {
        vec![
            StateUpdate::Ref {
                event: 0,
                update: ref_update(RefStatus::Failed, 100),
            },
            StateUpdate::Ref {
                event: 1,
                update: RefUpdate {
                    kind: UpdateKind::ProjectDeleted,
                    status: None,
                    detail: None,
                    newer_only: true,
                    ..ref_update(RefStatus::NotAttempted, 101)
                },
            },
            StateUpdate::Ci(CiUpdate::Pipeline(pipeline())),
            StateUpdate::Ci(CiUpdate::Jobs {
                project: "group/app".into(),
                pipeline: 42,
                jobs: vec![CiJob {
                    project: "group/app".into(),
                    id: 7,
                    pipeline: 42,
                    name: "test".into(),
                    stage: Some("test".into()),
                    status: "failed".into(),
                    allow_failure: false,
                    failure_reason: Some("script_failure".into()),
                    web_url: None,
                    finished_at: Some(1_764_553_000),
                    log: LogState::Erased,
                    analysis: None,
                    chain: Some("bridge -> child #9".into()),
                }],
            }),
            StateUpdate::Relay(target("http://relay-a:9100/metrics", 1_000)),
        ]
    }

    #[test]
    fn every_update_round_trips_through_serde() {
        for u in every_update() {
            let text = serde_json::to_string(&u).unwrap();
            let back: StateUpdate = serde_json::from_str(&text).unwrap();
            assert_eq!(back, u, "{text}");
        }
    }

    #[test]
    fn the_serialized_form_is_plain() {
        let v = serde_json::to_value(every_update()).unwrap();
        assert_eq!(v[0]["domain"], "ref");
        assert_eq!(v[0]["update"]["event"], 0);
        assert_eq!(v[0]["update"]["update"]["status"], "FAILED");
        assert_eq!(v[0]["update"]["update"]["direction"], "PUSH");
        assert_eq!(v[0]["update"]["update"]["kind"], "replication");
        assert_eq!(v[1]["update"]["update"]["kind"], "project_deleted");
        assert_eq!(v[2]["domain"], "ci");
        assert_eq!(v[2]["update"]["kind"], "pipeline");
        assert_eq!(v[3]["update"]["jobs"][0]["log"], "erased");
        assert_eq!(v[4]["domain"], "relay");
        assert_eq!(v[4]["update"]["target"], "http://relay-a:9100/metrics");
    }

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::open(&dir.path().join("s.db")).unwrap();
        (dir, w)
    }

    fn scalar(w: &Writer, sql: &str) -> i64 {
        w.connection().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn commit(w: &mut Writer, events: &[Event], updates: &[StateUpdate]) {
        let keys: Vec<i64> = events.iter().map(Event::dedup_key).collect();
        w.commit(&Batch {
            source: "s",
            events,
            keys: &keys,
            updates,
            rejects: &[],
            checkpoint: None,
        })
        .unwrap();
    }

    #[test]
    fn updates_of_several_domains_in_one_batch_each_reach_their_domain() {
        let (_d, mut w) = writer();
        let updates = vec![
            StateUpdate::Ref {
                event: 0,
                update: ref_update(RefStatus::Failed, 100),
            },
            StateUpdate::Ci(CiUpdate::Pipeline(pipeline())),
            StateUpdate::Relay(target("http://relay-a:9100/metrics", 1_000)),
        ];
        commit(&mut w, &[event(1)], &updates);
        assert_eq!(
            scalar(&w, "SELECT count(*) FROM ref_state WHERE status = 'FAILED'"),
            1
        );
        assert_eq!(
            scalar(&w, "SELECT count(*) FROM ci_pipelines WHERE id = 42"),
            1
        );
        let reader = crate::store::Reader::new(
            rusqlite::Connection::open(w.connection().path().unwrap()).unwrap(),
        );
        let (targets, unreadable) = reader.relay_targets().unwrap();
        assert!(unreadable.is_empty(), "{unreadable:?}");
        assert_eq!(targets, vec![target("http://relay-a:9100/metrics", 1_000)]);
    }

    #[test]
    fn a_ref_update_of_an_event_stored_before_changes_nothing() {
        let (_d, mut w) = writer();
        let e = event(1);
        commit(
            &mut w,
            std::slice::from_ref(&e),
            &[StateUpdate::Ref {
                event: 0,
                update: ref_update(RefStatus::Failed, 100),
            }],
        );
        // The same event read again, now (wrongly) carrying another update, beside a new event
        // whose update is applied.
        commit(
            &mut w,
            &[e, event(2)],
            &[
                StateUpdate::Ref {
                    event: 0,
                    update: ref_update(RefStatus::Succeeded, 200),
                },
                StateUpdate::Ref {
                    event: 1,
                    update: RefUpdate {
                        ref_name: "refs/heads/dev".into(),
                        ..ref_update(RefStatus::Scheduled, 150)
                    },
                },
                StateUpdate::Ref {
                    event: 9,
                    update: ref_update(RefStatus::Succeeded, 300),
                },
            ],
        );
        assert_eq!(
            scalar(
                &w,
                "SELECT count(*) FROM ref_state s JOIN strings r ON r.id = s.ref
                 WHERE r.text = 'refs/heads/main' AND status = 'FAILED' AND when_s = 100"
            ),
            1,
            "the duplicate's update (and one naming no event of the batch) was not applied"
        );
        assert_eq!(
            scalar(
                &w,
                "SELECT count(*) FROM ref_state WHERE status = 'SCHEDULED'"
            ),
            1
        );
    }
}
