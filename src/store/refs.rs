//! Gerrit ref state (`ref_state`, `gerrit_deleted_projects`): how the ref updates carried by a
//! batch's events are applied, in the writer's transaction, and how the state is read.
//!
//! Updates apply only for the events stored now (an event read twice changes nothing twice):
//! the writer's dispatch ([`super::update`]) hands this module the updates of stored events
//! only, each with its event's id.

use std::collections::HashMap;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::{params, OptionalExtension, Row, Transaction};
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use super::interner::{Interner, Slot};
use super::query::Reader;
use crate::model::gerrit::{RefState, RefUpdate};

/// A `ref_state` key: interned ref, remote, project and instance (0: no instance).
type RefKey = (i64, i64, i64, i64);

/// Applies the ref updates of the events stored in this transaction (each with the id of its
/// event, in order) to `ref_state`: each key read once, its updates applied in order in memory,
/// written once. Keys are interned ids with the ref first: new refs get new, higher ids, so
/// their rows go in at the right edge instead of at random places among the text of millions of
/// `refs/changes/...`. A key with an id interned by this transaction has no row yet (rows are
/// written only at the end of this, the transaction's one call): no need to look.
///
/// A log note (no status) and a REST answer (`newer_only`) apply to the ref on every instance
/// that has it (the answer, to its own instance when none has it yet); a REST answer or retire
/// whose source names its node (`only_instance`) to that instance's rows only; a ref deleted or created
/// on the primary to every remote and instance of it; a project deletion removes the project's rows
/// and records it in `gerrit_deleted_projects` (a later replication event re-creates it).
pub(super) fn apply(
    tx: &Transaction<'_>,
    strings: &mut Interner,
    updates: &[(&RefUpdate, i64)],
) -> Result<()> {
    use crate::model::gerrit::UpdateKind;
    if updates.is_empty() {
        return Ok(());
    }
    let mut get = tx.prepare_cached(
        "SELECT direction, status, when_s, retrying, attempts, last_success, last_failure, last_error,
                scheduled_since, deleted_at
         FROM ref_state WHERE ref = ?1 AND remote = ?2 AND project = ?3 AND instance = ?4",
    )?;
    // Key -> index into `states`, in first-touched order.
    let mut touched: HashMap<RefKey, usize, Xxh3DefaultBuilder> = HashMap::default();
    // (key, state, id of the last event that changed it).
    type Changed = (RefKey, Option<RefState>, i64);
    let mut states: Vec<Changed> = Vec::new();
    // Deleted projects (few): a replication event after the deletion re-creates the project.
    let mut deleted_projects: HashMap<String, i64> = {
        let mut st =
            tx.prepare_cached("SELECT project, deleted_at FROM gerrit_deleted_projects")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut keys: Vec<RefKey> = Vec::new();
    for &(u, event_id) in updates {
        if u.kind == UpdateKind::ProjectDeleted {
            let p = strings.id_in(Slot::Project, tx, &u.project)?;
            for (key, state, _) in states.iter_mut() {
                if key.2 == p {
                    *state = None;
                }
            }
            tx.prepare_cached("DELETE FROM ref_state WHERE project = ?1")?
                .execute([p])?;
            tx.prepare_cached(
                "INSERT INTO gerrit_deleted_projects (project, deleted_at, event_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (project) DO UPDATE SET deleted_at = excluded.deleted_at,
                    event_id = excluded.event_id",
            )?
            .execute(params![u.project, u.when, event_id])?;
            deleted_projects.insert(u.project.clone(), u.when);
            continue;
        }
        if u.status.is_some() {
            if let Some(&at) = deleted_projects.get(&u.project) {
                if u.when > at {
                    tx.prepare_cached("DELETE FROM gerrit_deleted_projects WHERE project = ?1")?
                        .execute([&u.project])?;
                    deleted_projects.remove(&u.project);
                }
            }
        }
        let r = strings.id_in(Slot::Ref, tx, &u.ref_name)?;
        let p = strings.id_in(Slot::Project, tx, &u.project)?;
        keys.clear();
        let wide = u.kind != UpdateKind::Replication;
        let lookup = wide || u.status.is_none() || u.newer_only;
        if lookup {
            // Every stored key of the ref (and remote, for a note), and those of this transaction.
            let remote = if wide {
                None
            } else {
                Some(strings.id_in(Slot::Remote, tx, &u.remote)?)
            };
            if !strings.is_fresh(r) && !strings.is_fresh(p) {
                let mut st = tx.prepare_cached(
                    "SELECT remote, instance FROM ref_state
                     WHERE ref = ?1 AND project = ?2 AND (?3 IS NULL OR remote = ?3)",
                )?;
                let rows = st.query_map(params![r, p, remote], |row| {
                    Ok((r, row.get(0)?, p, row.get(1)?))
                })?;
                for k in rows {
                    keys.push(k?);
                }
            }
            keys.extend(
                touched
                    .keys()
                    .filter(|k| k.0 == r && k.2 == p && remote.is_none_or(|m| k.1 == m)),
            );
            keys.sort_unstable();
            keys.dedup();
            if u.only_instance {
                // A REST answer from a source that names its node: that node's rows only.
                let instance = match u.instance.as_deref() {
                    Some(i) => strings.id_in(Slot::Device, tx, i)?,
                    None => 0,
                };
                keys.retain(|k| k.3 == instance);
            }
        }
        // A replication event: its own key; a REST answer about a ref no stream has reported:
        // the node its source names, else (the answer names no instance) a guess.
        if !lookup || (keys.is_empty() && u.newer_only && !wide) {
            let remote = strings.id_in(Slot::Remote, tx, &u.remote)?;
            let mut instance = match u.instance.as_deref() {
                Some(i) => strings.id_in(Slot::Device, tx, i)?,
                None => 0,
            };
            if u.newer_only && !u.only_instance {
                // Guessed: the answer is one node's, so the instance whose streams report this
                // pair, when there is exactly one.
                let mut seen: Vec<i64> = touched
                    .keys()
                    .filter(|k| k.1 == remote && k.2 == p)
                    .map(|k| k.3)
                    .collect();
                let mut st = tx.prepare_cached(
                    "SELECT DISTINCT instance FROM ref_state WHERE remote = ?1 AND project = ?2 LIMIT 3",
                )?;
                for i in st.query_map(params![remote, p], |row| row.get::<_, i64>(0))? {
                    seen.push(i?);
                }
                seen.sort_unstable();
                seen.dedup();
                if let [only] = seen[..] {
                    instance = only;
                }
            }
            keys.push((r, remote, p, instance));
        }
        for &key in &keys {
            if let Some(&i) = touched.get(&key) {
                let (_, state, last) = &mut states[i];
                *state = RefState::apply(state.take(), u);
                *last = event_id;
                continue;
            }
            let stored = !(strings.is_fresh(key.0)
                || strings.is_fresh(key.1)
                || strings.is_fresh(key.2)
                || strings.is_fresh(key.3));
            let old = if stored {
                get.query_row(params![key.0, key.1, key.2, key.3], |row| {
                    Ok(RefState {
                        instance: u.instance.clone(),
                        deleted: row.get(9)?,
                        project: u.project.clone(),
                        remote: u.remote.clone(),
                        ref_name: u.ref_name.clone(),
                        direction: if row.get::<_, String>(0)? == "PULL" {
                            crate::model::gerrit::Direction::Pull
                        } else {
                            crate::model::gerrit::Direction::Push
                        },
                        status: row.get(1)?,
                        when: row.get(2)?,
                        retrying: row.get(3)?,
                        attempts: row.get(4)?,
                        last_success: row.get(5)?,
                        last_failure: row.get(6)?,
                        last_error: row.get(7)?,
                        scheduled_since: row.get(8)?,
                    })
                })
                .optional()?
            } else {
                None
            };
            // A log note about a ref no event has reported yet changes nothing.
            if let Some(state) = RefState::apply(old, u) {
                states.push((key, Some(state), event_id));
                touched.insert(key, states.len() - 1);
            }
        }
    }
    let mut put = tx.prepare_cached(
        "INSERT INTO ref_state (ref, remote, project, instance, direction, status, when_s, retrying,
            attempts, last_success, last_failure, last_error, scheduled_since, event_id, deleted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (ref, remote, project, instance) DO UPDATE SET direction = excluded.direction,
            status = excluded.status, when_s = excluded.when_s, retrying = excluded.retrying,
            attempts = excluded.attempts, last_success = excluded.last_success,
            last_failure = excluded.last_failure, last_error = excluded.last_error,
            scheduled_since = excluded.scheduled_since, event_id = excluded.event_id,
            deleted_at = excluded.deleted_at",
    )?;
    for ((r, remote, project, instance), s, event_id) in &states {
        let Some(s) = s else { continue };
        put.execute(params![
            r,
            remote,
            project,
            instance,
            s.direction.as_str(),
            s.status,
            s.when,
            s.retrying,
            s.attempts,
            s.last_success,
            s.last_failure,
            s.last_error,
            s.scheduled_since,
            event_id,
            s.deleted
        ])?;
    }
    Ok(())
}

/// One Gerrit remote's overall state, as the replication-status plugin would judge it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteSummary {
    pub remote: String,
    pub projects: u64,
    pub refs: u64,
    /// FAILED or UNKNOWN refs: any makes the remote FAILED.
    pub failed: u64,
    pub retrying: u64,
    pub scheduled: u64,
    /// Unix seconds of the newest ref event.
    pub last_event: i64,
    /// Unix seconds of the newest success of any ref.
    pub last_success: Option<i64>,
    /// The newest error text of a ref not currently SUCCEEDED.
    pub last_error: Option<String>,
}

impl RemoteSummary {
    pub fn is_failed(&self) -> bool {
        self.failed > 0
    }
}

impl Reader {
    /// Gerrit ref states, optionally of one project and/or one remote, by remote, project, ref,
    /// instance; deleted refs included (see [`RefState::reported`]).
    ///
    /// [`RefState::reported`]: crate::model::gerrit::RefState::reported
    pub fn ref_states(
        &self,
        project: Option<&str>,
        remote: Option<&str>,
    ) -> Result<Vec<crate::model::gerrit::RefState>> {
        let mut st = self.connection().prepare_cached(
            "SELECT p.text, m.text, r.text, s.direction, s.status, s.when_s, s.retrying, s.attempts,
                    s.last_success, s.last_failure, s.last_error, s.scheduled_since, i.text,
                    s.deleted_at
             FROM ref_state s
             JOIN strings p ON p.id = s.project
             JOIN strings m ON m.id = s.remote
             JOIN strings r ON r.id = s.ref
             LEFT JOIN strings i ON i.id = s.instance
             WHERE (?1 IS NULL OR s.project = (SELECT id FROM string_ids WHERE text = ?1))
               AND (?2 IS NULL OR s.remote = (SELECT id FROM string_ids WHERE text = ?2))
             ORDER BY m.text, p.text, r.text, s.instance",
        )?;
        let rows = st.query_map(rusqlite::params![project, remote], ref_state_row)?;
        rows.collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read the replication state")
    }

    /// When `project`'s deletion was replicated (`project-deletion-replication-done`), if it was
    /// and no replication event came after.
    pub fn project_deleted(&self, project: &str) -> Result<Option<i64>> {
        self.connection()
            .prepare_cached("SELECT deleted_at FROM gerrit_deleted_projects WHERE project = ?1")?
            .query_row([project], |r| r.get(0))
            .optional()
            .wrap_err("cannot read the deleted projects")
    }

    /// Every Gerrit remote with its refs' counts, failed remotes first.
    pub fn remote_summaries(&self) -> Result<Vec<RemoteSummary>> {
        let mut st = self.connection().prepare_cached(
            "SELECT m.text, count(DISTINCT s.project), count(*),
                    sum(s.status IN ('FAILED', 'UNKNOWN')), sum(s.retrying), sum(s.status = 'SCHEDULED'),
                    max(s.when_s), max(s.last_success),
                    (SELECT x.last_error FROM ref_state x
                      WHERE x.remote = s.remote AND x.status <> 'SUCCEEDED' AND x.last_error IS NOT NULL
                        AND x.deleted_at IS NULL
                      ORDER BY x.last_failure DESC LIMIT 1)
             FROM ref_state s JOIN strings m ON m.id = s.remote
             WHERE s.deleted_at IS NULL
             GROUP BY s.remote",
        )?;
        let rows = st.query_map([], |r| {
            Ok(RemoteSummary {
                remote: r.get(0)?,
                projects: r.get::<_, i64>(1)?.max(0) as u64,
                refs: r.get::<_, i64>(2)?.max(0) as u64,
                failed: r.get::<_, Option<i64>>(3)?.unwrap_or(0).max(0) as u64,
                retrying: r.get::<_, Option<i64>>(4)?.unwrap_or(0).max(0) as u64,
                scheduled: r.get::<_, Option<i64>>(5)?.unwrap_or(0).max(0) as u64,
                last_event: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                last_success: r.get(7)?,
                last_error: r.get(8)?,
            })
        })?;
        let mut list = rows
            .collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read the replication remotes")?;
        list.sort_by(|a, b| {
            b.is_failed()
                .cmp(&a.is_failed())
                .then(b.retrying.cmp(&a.retrying))
                .then(a.remote.cmp(&b.remote))
        });
        Ok(list)
    }

    /// One page of a remote's refs, worst first (FAILED/UNKNOWN, retrying, SCHEDULED, then the
    /// rest), then by project and ref; and how many refs match. `text`: only refs whose name
    /// or project contains it (case-insensitive).
    pub fn refs_of_remote(
        &self,
        remote: &str,
        text: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<RefState>, u64)> {
        let like = text.filter(|t| !t.is_empty()).map(|t| {
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let Some(rid) = self
            .connection()
            .prepare_cached("SELECT id FROM string_ids WHERE text = ?1")?
            .query_row([remote], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            return Ok((Vec::new(), 0));
        };
        // Deleted refs leave the plugin's answer; a deletion not replicated stays, apart.
        const MATCH: &str =
            "(?2 IS NULL OR r.text LIKE ?2 ESCAPE '\\' OR p.text LIKE ?2 ESCAPE '\\')
             AND (s.deleted_at IS NULL OR s.status IN ('FAILED', 'UNKNOWN'))";
        let total: i64 = self.connection().query_row(
            &format!(
                "SELECT count(*) FROM ref_state s JOIN strings p ON p.id = s.project
                 JOIN strings r ON r.id = s.ref WHERE s.remote = ?1 AND {MATCH}"
            ),
            rusqlite::params![rid, like],
            |r| r.get(0),
        )?;
        let mut st = self.connection().prepare_cached(&format!(
            "SELECT p.text, m.text, r.text, s.direction, s.status, s.when_s, s.retrying,
                    s.attempts, s.last_success, s.last_failure, s.last_error, s.scheduled_since,
                    i.text, s.deleted_at
             FROM ref_state s
             JOIN strings p ON p.id = s.project
             JOIN strings m ON m.id = s.remote
             JOIN strings r ON r.id = s.ref
             LEFT JOIN strings i ON i.id = s.instance
             WHERE s.remote = ?1 AND {MATCH}
             ORDER BY CASE WHEN s.deleted_at IS NULL AND s.status IN ('FAILED', 'UNKNOWN') THEN 0
                           WHEN s.retrying THEN 1
                           WHEN s.status = 'SCHEDULED' THEN 2 ELSE 3 END,
                      p.text, r.text, s.instance
             LIMIT ?3 OFFSET ?4"
        ))?;
        let rows = st.query_map(
            rusqlite::params![rid, like, limit as i64, offset as i64],
            ref_state_row,
        )?;
        let refs = rows
            .collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read a remote's refs")?;
        Ok((refs, total.max(0) as u64))
    }
}

/// A `ref_state` row selected as `project, remote, ref, direction, status, when_s, retrying,
/// attempts, last_success, last_failure, last_error, scheduled_since, instance, deleted_at`
/// (names joined in; the instance by a left join, NULL for the node without an id).
fn ref_state_row(r: &Row<'_>) -> rusqlite::Result<crate::model::gerrit::RefState> {
    use crate::model::gerrit::{Direction, RefState};
    Ok(RefState {
        project: r.get(0)?,
        remote: r.get(1)?,
        ref_name: r.get(2)?,
        direction: if r.get::<_, String>(3)? == "PULL" {
            Direction::Pull
        } else {
            Direction::Push
        },
        status: r.get(4)?,
        when: r.get(5)?,
        retrying: r.get(6)?,
        attempts: r.get(7)?,
        last_success: r.get(8)?,
        last_failure: r.get(9)?,
        last_error: r.get(10)?,
        scheduled_since: r.get(11)?,
        instance: r.get(12)?,
        deleted: r.get(13)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gerrit::{Direction, RefStatus};
    use crate::model::{Event, Severity, Timestamp};
    use crate::store::update::StateUpdate;
    use crate::store::{Batch, Writer};

    fn ev(sec: i64, ty: &str, sev: Severity) -> Event {
        Event::new(
            Timestamp::from_nanos(1_800_000_000_000_000_000 + sec * 1_000_000_000),
            "gerrit",
            ty,
            "replication",
            sev,
            format!("{ty} at {sec}"),
        )
    }

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::open(&dir.path().join("s.db")).unwrap();
        (dir, w)
    }

    fn scalar(w: &Writer, sql: &str) -> i64 {
        w.connection().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn count(w: &Writer) -> i64 {
        scalar(w, "SELECT count(*) FROM events")
    }

    fn counted(w: &Writer) -> i64 {
        scalar(w, "SELECT coalesce(sum(n), 0) FROM event_counts")
    }

    fn event(i: i64) -> Event {
        crate::store::writer::tests::event(i)
    }

    /// Every ref state row, by text, as the status query sees it.
    fn ref_rows(w: &Writer) -> Vec<String> {
        w.connection()
            .prepare(
                "SELECT r.text || ' ' || m.text || ' ' || p.text || ' ' || direction || ' ' || status || ' ' ||
                        when_s || ' ' || retrying || ' ' || attempts || ' ' || coalesce(last_success, '-') || ' ' ||
                        coalesce(last_failure, '-') || ' ' || coalesce(last_error, '-') || ' ' ||
                        coalesce(scheduled_since, '-') || ' ' || coalesce(event_id, '-')
                 FROM ref_state s JOIN strings r ON r.id = s.ref JOIN strings m ON m.id = s.remote
                 JOIN strings p ON p.id = s.project ORDER BY 1",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn ref_state_is_the_same_whether_batches_share_a_transaction_or_not() {
        // 12 batches of 10 events about 7 refs (some new in each batch, some seen before, in
        // batches of the same and of an earlier transaction), one event stored twice.
        let statuses = [
            Some(RefStatus::Scheduled),
            Some(RefStatus::Failed),
            Some(RefStatus::Scheduled),
            Some(RefStatus::Succeeded),
            None,
        ];
        type Parts = (Vec<Event>, Vec<StateUpdate>);
        let batches: Vec<Parts> = (0..12)
            .map(|b| {
                let events: Vec<Event> = (0..10).map(|i| event(b * 10 + i)).collect();
                let updates = (0..10)
                    .map(|i| {
                        let n = (b * 10 + i) as usize;
                        StateUpdate::Ref {
                            event: i as usize,
                            update: RefUpdate {
                                instance: None,
                                only_instance: false,
                                kind: crate::model::gerrit::UpdateKind::Replication,
                                project: format!("p{}", n % 2),
                                remote: "ssh://m".into(),
                                ref_name: format!(
                                    "refs/changes/{}",
                                    (n * 5 / 7) % 7 + b as usize / 4
                                ),
                                direction: Direction::Push,
                                status: statuses[n % statuses.len()],
                                when: n as i64,
                                detail: Some(format!("d{n}")),
                                newer_only: false,
                            },
                        }
                    })
                    .collect();
                (events, updates)
            })
            .collect();
        let prepared: Vec<_> = batches
            .into_iter()
            .map(|(events, updates)| {
                let keys: Vec<i64> = events.iter().map(Event::dedup_key).collect();
                (events, updates, keys)
            })
            .collect();
        let batch = |i: usize| Batch {
            source: "s",
            events: &prepared[i].0,
            keys: &prepared[i].2,
            updates: &prepared[i].1,
            rejects: &[],
            checkpoint: None,
        };
        let (_d1, mut one) = writer();
        let (_d2, mut grouped) = writer();
        for i in 0..prepared.len() {
            one.commit(&batch(i)).unwrap();
        }
        // The 5th batch again, inside a later group: its events are stored already and change
        // nothing twice.
        let mut order: Vec<usize> = (0..12).collect();
        order.insert(7, 4);
        for g in order.chunks(3) {
            let bs: Vec<Batch<'_>> = g.iter().map(|&i| batch(i)).collect();
            let outs = grouped.commit_all(&bs).unwrap();
            assert_eq!(outs.len(), g.len());
        }
        let (_d3, mut again) = writer();
        let b = batch(4);
        let outs = again.commit_all(&[b, b]).unwrap();
        assert_eq!((outs[0].inserted, outs[1].duplicates), (10, 10));
        let rows = ref_rows(&one);
        assert!(rows.len() >= 7, "{rows:?}");
        assert_eq!(rows, ref_rows(&grouped));
        assert_eq!(count(&one), count(&grouped));
        assert_eq!(counted(&grouped), 120);
    }

    #[test]
    fn remotes_are_summed_failed_first_and_refs_paged_worst_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut w = Writer::open(&db).unwrap();
        let mut events = Vec::new();
        let mut updates = Vec::new();
        for (i, (remote, r, status)) in [
            ("a-ok", "refs/heads/main", RefStatus::Succeeded),
            ("b-bad", "refs/heads/main", RefStatus::Succeeded),
            ("b-bad", "refs/heads/dev", RefStatus::Failed),
            ("b-bad", "refs/heads/x", RefStatus::Scheduled),
        ]
        .into_iter()
        .enumerate()
        {
            events.push(ev(i as i64, "ref_replicated", Severity::Info));
            updates.push(crate::store::StateUpdate::Ref {
                event: i,
                update: RefUpdate {
                    instance: None,
                    only_instance: false,
                    kind: crate::model::gerrit::UpdateKind::Replication,
                    project: "p".into(),
                    remote: remote.into(),
                    ref_name: r.into(),
                    direction: Direction::Push,
                    status: Some(status),
                    when: 1_800_000_000 + i as i64,
                    detail: None,
                    newer_only: false,
                },
            });
        }
        let keys: Vec<i64> = events.iter().map(Event::dedup_key).collect();
        w.commit(&Batch {
            source: "g",
            events: &events,
            keys: &keys,
            updates: &updates,
            rejects: &[],
            checkpoint: None,
        })
        .unwrap();
        let r = crate::store::open_reader(&db).unwrap();
        let list = r.remote_summaries().unwrap();
        assert_eq!(list[0].remote, "b-bad");
        assert_eq!((list[0].refs, list[0].failed, list[0].scheduled), (3, 1, 1));
        assert!(!list[1].is_failed());
        let (refs, total) = r.refs_of_remote("b-bad", None, 0, 2).unwrap();
        assert_eq!(total, 3);
        assert_eq!(refs[0].ref_name, "refs/heads/dev");
        assert_eq!(refs[1].status, "SCHEDULED");
        assert_eq!(r.refs_of_remote("nowhere", None, 0, 5).unwrap().1, 0);
        let (refs, total) = r.refs_of_remote("b-bad", Some("DEV"), 0, 5).unwrap();
        assert_eq!((total, refs[0].ref_name.as_str()), (1, "refs/heads/dev"));
        assert_eq!(r.refs_of_remote("b-bad", Some("%"), 0, 5).unwrap().1, 0);
    }
}
