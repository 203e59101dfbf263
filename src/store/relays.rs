//! Relay state, history and staleness.
//!
//! - [`update`] / [`apply`]: the derived state of a relay target (per relay: connection,
//!   health, since, streak, flapping) reaches the store as a [`StateUpdate::Relay`] of a batch
//!   and is kept in `relay_targets`, one row per (source, target); [`Reader::relay_targets`]
//!   reads it. Every source that derives relay state (`ngit-metrics:`, one target; a fleet
//!   source, one per instance) sends it through [`update`];
//! - [`Reader::relay_changes`]: one relay's transitions (the Relays drill-down), newest first;
//! - [`Reader::relay_strips`]: every relay's state per minute over a window (the strips);
//! - [`Reader::freshness`]: the newest stored event, the last batch, and per system and per
//!   ingest source how long ago each last delivered (every figure one indexed lookup).

use std::collections::BTreeMap;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::OptionalExtension;

use super::query::{EventFilter, Reader};
use super::update::StateUpdate;
use crate::model::relay::{self, Connection, Display, Health, TargetState};
use crate::model::{StoredEvent, Timestamp};

/// One change of one relay, from the event that recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayChange {
    pub at: Timestamp,
    pub event_type: String,
    /// What it showed before (None: not known, e.g. a first sighting).
    pub before: Option<Display>,
    /// What it shows after; UNKNOWN for the target going down, GONE for a vanished relay.
    pub after: Display,
    pub summary: String,
    /// The store id of the event (to open it).
    pub event_id: i64,
}

/// A relay's state per minute over a window (oldest first); None where there is no data
/// (before its first sighting, while its target was down, after it vanished).
pub type Strip = Vec<Option<Display>>;

/// How fresh the store is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Freshness {
    /// The newest event time stored (event time, not receive time).
    pub newest_event: Option<Timestamp>,
    /// The highest store id: changes whenever anything is stored.
    pub newest_id: i64,
    /// Unix seconds of the newest committed batch of any source.
    pub last_batch: Option<i64>,
    /// Per system (`gerrit`, `ngit`, `spacedrive`, ...): the newest event time.
    pub systems: Vec<(String, Timestamp)>,
    /// Per ingest source (`jsonl:/path`, `ngit-metrics:URL`, ...).
    pub ingest: Vec<IngestFreshness>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IngestFreshness {
    pub source: String,
    /// Unix seconds of its newest committed batch (within retention).
    pub last_batch: Option<i64>,
    /// Its last reported state (ok / waiting / backoff / fault / done) and when it reported.
    pub state: Option<String>,
    pub updated: Option<i64>,
}

fn display_of(v: &serde_json::Value, c: &str, h: &str) -> Option<Display> {
    let c = v.get(c).and_then(|x| x.as_i64()).map(Connection::from);
    let h = v.get(h).and_then(|x| x.as_i64()).map(Health::from);
    (c.is_some() || h.is_some()).then(|| Display::of(c, h))
}

/// The relay change an ngit event records, or None when it is not one.
fn change_of(e: &StoredEvent) -> Option<RelayChange> {
    let ev = &e.event;
    let (after, before) = match ev.event_type.as_str() {
        "scrape_failed" => (Display::Unknown, None),
        "scrape_recovered" => return None,
        _ => {
            ev.subject.as_ref()?;
            let v: serde_json::Value = serde_json::from_str(ev.details.as_deref()?).ok()?;
            let after = display_of(&v, "connection", "health")?;
            match ev.event_type.as_str() {
                "relay_seen" => (after, None),
                "relay_gone" => (Display::Gone, Some(after)),
                "relay_returned" => (after, Some(Display::Gone)),
                _ => (
                    after,
                    display_of(&v, "previous_connection", "previous_health"),
                ),
            }
        }
    };
    Some(RelayChange {
        at: ev.timestamp,
        event_type: ev.event_type.clone(),
        before,
        after,
        summary: ev.summary.clone(),
        event_id: e.id,
    })
}

impl Reader {
    /// One relay's changes since `since`, newest first, at most `limit`; a target going down
    /// is a change of each of its relays (to UNKNOWN).
    pub fn relay_changes(
        &self,
        target: &str,
        relay_url: &str,
        since: Option<Timestamp>,
        limit: u64,
    ) -> Result<Vec<RelayChange>> {
        let f = EventFilter {
            sources: vec![relay::SOURCE.into()],
            devices: vec![target.into()],
            since,
            ..EventFilter::default()
        };
        let mut out = Vec::new();
        let mut cursor = None;
        // Pages of the target's events, newest first, until `limit` changes of this relay.
        while (out.len() as u64) < limit {
            let page = self.page_before(&f, cursor, 500)?;
            let Some(last) = page.last() else { break };
            cursor = Some(super::query::Cursor {
                ts: last.event.timestamp.as_nanos(),
                key: last.key,
            });
            for e in &page {
                if e.event.device_id.as_deref() != Some(target) {
                    continue;
                }
                let mine = match e.event.subject.as_deref() {
                    Some(s) => s == relay_url,
                    None => e.event.event_type == "scrape_failed",
                };
                if mine {
                    if let Some(c) = change_of(e) {
                        out.push(c);
                        if out.len() as u64 >= limit {
                            break;
                        }
                    }
                }
            }
            if page.len() < 500 {
                break;
            }
        }
        Ok(out)
    }

    /// Every relay of `targets` with its state in each of the `minutes` minutes up to `now`
    /// (the worst state the minute saw), from the transition events of the window (at most
    /// 20,000 of them are read).
    pub fn relay_strips(
        &self,
        targets: &[TargetState],
        now: Timestamp,
        minutes: usize,
    ) -> Result<BTreeMap<(String, String), Strip>> {
        let mut strips = BTreeMap::new();
        if minutes == 0 || targets.is_empty() {
            return Ok(strips);
        }
        const MIN: i64 = 60_000_000_000;
        let start = now.as_nanos() - minutes as i64 * MIN;
        let f = EventFilter {
            sources: vec![relay::SOURCE.into()],
            since: Some(Timestamp::from_nanos(start)),
            ..EventFilter::default()
        };
        // (target, relay) → changes oldest first; target → times it went down / came back.
        let mut changes: BTreeMap<(String, String), Vec<RelayChange>> = BTreeMap::new();
        let mut outages: BTreeMap<String, Vec<(i64, bool)>> = BTreeMap::new();
        for e in self.page_after(&f, None, 20_000)? {
            let Some(target) = e.event.device_id.clone() else {
                continue;
            };
            match (e.event.event_type.as_str(), e.event.subject.clone()) {
                ("scrape_failed", _) => outages
                    .entry(target)
                    .or_default()
                    .push((e.event.timestamp.as_nanos(), true)),
                ("scrape_recovered", _) => outages
                    .entry(target)
                    .or_default()
                    .push((e.event.timestamp.as_nanos(), false)),
                (_, Some(relay_url)) => {
                    if let Some(c) = change_of(&e) {
                        changes.entry((target, relay_url)).or_default().push(c);
                    }
                }
                _ => {}
            }
        }
        for t in targets {
            let down = outages.get(&t.target);
            for (name, st) in &t.relays {
                let evs = changes.get(&(t.target.clone(), name.clone()));
                // Before the window's first change: what that change left; with no change
                // in the window, what the relay shows now if it began before the window.
                let mut state = match evs.and_then(|e| e.first()) {
                    Some(c) => c.before,
                    None => (st.since() <= start).then(|| st.display()),
                };
                let mut is_down = match down.and_then(|d| d.first()) {
                    Some((_, went_down)) => !went_down,
                    None => !t.up && t.down_since.is_some_and(|d| d <= start),
                };
                let (mut i, mut j) = (0, 0);
                let mut cells = Vec::with_capacity(minutes);
                for m in 0..minutes {
                    let begin = start + m as i64 * MIN;
                    let end = begin + MIN;
                    if let Some(d) = down {
                        while j < d.len() && d[j].0 < end {
                            is_down = d[j].1;
                            j += 1;
                        }
                    }
                    // The state the minute began in counts unless a change came right then.
                    let next = evs
                        .and_then(|e| e.get(i))
                        .map(|c| c.at.as_nanos())
                        .filter(|&at| at < end);
                    let mut worst = if next.is_none_or(|at| at > begin) {
                        state
                    } else {
                        None
                    };
                    if let Some(evs) = evs {
                        while i < evs.len() && evs[i].at.as_nanos() < end {
                            state = Some(evs[i].after).filter(|d| *d != Display::Gone);
                            if let Some(s) = state {
                                worst = match worst {
                                    Some(w) if w.severity() >= s.severity() => Some(w),
                                    _ => Some(s),
                                };
                            }
                            i += 1;
                        }
                    }
                    if evs.is_none() && st.since() < end && st.present {
                        state = Some(st.display()).filter(|d| *d != Display::Unknown);
                        worst = worst.or(state);
                    }
                    // A down target shows nothing for its relays (there is no data).
                    cells.push(if is_down { None } else { worst });
                }
                strips.insert((t.target.clone(), name.clone()), cells);
            }
        }
        Ok(strips)
    }

    /// The newest stored event and last batch overall, and per system and per ingest source.
    pub fn freshness(&self) -> Result<Freshness> {
        let conn = self.connection();
        let (newest_event, newest_id): (Option<i64>, i64) = conn
            .query_row(
                "SELECT (SELECT max(ts) FROM events), coalesce((SELECT max(id) FROM events), 0)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .wrap_err("cannot read the newest event")?;
        let last_batch: Option<i64> =
            conn.query_row("SELECT max(received) FROM batches", [], |r| r.get(0))?;
        // The systems: a skip scan of the source index, one lookup per system.
        let mut systems = Vec::new();
        let mut st = conn.prepare_cached(
            "WITH RECURSIVE s(id) AS (
                 SELECT (SELECT min(source) FROM events)
                 UNION ALL
                 SELECT (SELECT min(source) FROM events WHERE source > s.id) FROM s WHERE s.id IS NOT NULL)
             SELECT t.text, (SELECT max(ts) FROM events WHERE source = s.id)
             FROM s JOIN strings t ON t.id = s.id",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (name, ts): (String, Option<i64>) = (r.get(0)?, r.get(1)?);
            if let Some(ts) = ts {
                systems.push((name, Timestamp::from_nanos(ts)));
            }
        }
        systems.sort();
        let mut ingest = Vec::new();
        let mut st = conn.prepare_cached(
            "WITH names AS (SELECT source FROM source_status UNION SELECT source FROM checkpoints)
             SELECT n.source, s.state, s.updated FROM names n
             LEFT JOIN source_status s ON s.source = n.source ORDER BY n.source",
        )?;
        let mut last =
            conn.prepare_cached("SELECT max(received) FROM batches WHERE source = ?1")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let source: String = r.get(0)?;
            let last_batch: Option<i64> = last
                .query_row([&source], |r| r.get(0))
                .optional()?
                .flatten();
            ingest.push(IngestFreshness {
                source,
                last_batch,
                state: r.get(1)?,
                updated: r.get(2)?,
            });
        }
        Ok(Freshness {
            newest_event: newest_event.map(Timestamp::from_nanos),
            newest_id,
            last_batch,
            systems,
            ingest,
        })
    }
}

/// The update that carries `state`, a relay target's whole derived state, to the store (in
/// the transaction of the events it produced). The one way relay state is stored.
pub fn update(state: &TargetState) -> StateUpdate {
    StateUpdate::Relay(state.clone())
}

/// The update that takes `target` of the batch's source out of the store.
pub fn retired(target: &str) -> StateUpdate {
    StateUpdate::RelayRetired(target.to_string())
}

/// Deletes `source`'s state of `target`.
pub(super) fn retire(tx: &rusqlite::Transaction<'_>, source: &str, target: &str) -> Result<()> {
    tx.prepare_cached("DELETE FROM relay_targets WHERE source = ?1 AND target = ?2")?
        .execute(rusqlite::params![source, target])
        .wrap_err_with(|| format!("cannot retire relay target {target}"))?;
    Ok(())
}

/// Stores `state` as `source`'s state of its target; a state older than the stored one (by
/// its last scrape) changes nothing, so a batch delivered again late never rolls it back.
pub(super) fn apply(
    tx: &rusqlite::Transaction<'_>,
    source: &str,
    state: &TargetState,
) -> Result<()> {
    let text = serde_json::to_string(state)
        .wrap_err_with(|| format!("cannot save the state of relay target {}", state.target))?;
    tx.prepare_cached(
        "INSERT INTO relay_targets (source, target, last_scrape, state) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (source, target) DO UPDATE SET last_scrape = excluded.last_scrape,
            state = excluded.state
         WHERE coalesce(excluded.last_scrape, -1) >= coalesce(last_scrape, -1)",
    )?
    .execute(rusqlite::params![
        source,
        state.target,
        state.last_scrape,
        text
    ])
    .wrap_err_with(|| format!("cannot store the state of relay target {}", state.target))?;
    Ok(())
}

/// Schema step (issue 15): relay state leaves the `ngit-metrics:` checkpoints for a table of
/// its own, one row per (source, target); the states checkpoints hold are copied (a state that
/// is not JSON is copied too, under its source's URL, and reported unreadable as before).
pub const MIGRATION_RELAY_TARGETS: &str = r#"
    CREATE TABLE relay_targets (
        source       TEXT NOT NULL,
        target       TEXT NOT NULL,
        last_scrape  INTEGER,
        state        TEXT NOT NULL,
        PRIMARY KEY (source, target)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO relay_targets (source, target, last_scrape, state)
        SELECT source,
               coalesce(CASE WHEN json_valid(state) THEN json_extract(state, '$.target') END,
                        substr(source, length('ngit-metrics:') + 1)),
               CASE WHEN json_valid(state) THEN json_extract(state, '$.last_scrape') END,
               state
        FROM checkpoints WHERE substr(source, 1, length('ngit-metrics:')) = 'ngit-metrics:';
    "#;

impl Reader {
    /// The derived state of every relay target, by target then source. A state that cannot be
    /// read is reported by source and target; the next scrape rebuilds it.
    pub fn relay_targets(&self) -> Result<(Vec<TargetState>, Vec<String>)> {
        let mut st = self.connection().prepare_cached(
            "SELECT source, target, state FROM relay_targets ORDER BY target, source",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut targets = Vec::new();
        let mut unreadable = Vec::new();
        for row in rows {
            let (source, target, state) = row.wrap_err("cannot read the relay targets")?;
            match serde_json::from_str::<TargetState>(&state) {
                Ok(t) => targets.push(t),
                Err(e) if source.ends_with(&target) => unreadable.push(format!("{source}: {e}")),
                Err(e) => unreadable.push(format!("{source}: {target}: {e}")),
            }
        }
        Ok((targets, unreadable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::relay::RelayReading;
    use crate::store::Writer;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_800_000_000 * S;

    fn reading(relay: &str, conn: i64, health: i64) -> RelayReading {
        RelayReading {
            relay: relay.into(),
            connection: Some(Connection::from(conn)),
            health: Some(Health::from(health)),
            ok: 1,
            fail: 0,
        }
    }

    /// A target observed minute by minute: a LIVE at 0, RETRYING at 2 min; the target down
    /// at 4 min, back at 5; b vanishes at 6.
    fn history() -> (tempfile::TempDir, Reader, TargetState) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("r.db");
        let mut w = Writer::open(&db).unwrap();
        let mut t = TargetState::new("http://t/metrics");
        let mut evs = Vec::new();
        let at = |m: i64| Timestamp::from_nanos(T0 + m * 60 * S);
        let both = |a: (i64, i64)| vec![reading("wss://a", a.0, a.1), reading("wss://b", 3, 1)];
        evs.extend(t.observe(at(0), &both((3, 1))));
        evs.extend(t.observe(at(2), &both((0, 3))));
        evs.extend(t.scrape_failed(at(4), "connection refused"));
        evs.extend(t.observe(at(5), &both((0, 3))));
        evs.extend(t.observe(at(6), &[reading("wss://a", 0, 3)]));
        w.commit_batch("ngit-metrics:http://t/metrics", &evs, &[], None)
            .unwrap();
        w.set_status("ngit-metrics:http://t/metrics", "ok", "")
            .unwrap();
        (dir, crate::store::open_reader(&db).unwrap(), t)
    }

    #[test]
    fn a_relays_changes_newest_first_with_its_target_going_down() {
        let (_d, r, _) = history();
        let a = r
            .relay_changes("http://t/metrics", "wss://a", None, 10)
            .unwrap();
        let got: Vec<(&str, Option<Display>, Display)> = a
            .iter()
            .map(|c| (c.event_type.as_str(), c.before, c.after))
            .collect();
        assert_eq!(
            got,
            [
                ("scrape_failed", None, Display::Unknown),
                (
                    "relay_state_changed",
                    Some(Display::Live),
                    Display::Retrying
                ),
                ("relay_seen", None, Display::Live),
            ]
        );
        let b = r
            .relay_changes("http://t/metrics", "wss://b", None, 1)
            .unwrap();
        assert_eq!(b.len(), 1, "limit");
        assert_eq!(
            (b[0].before, b[0].after),
            (Some(Display::Live), Display::Gone)
        );
        assert!(r
            .relay_changes("http://other/metrics", "wss://a", None, 10)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn strips_show_nothing_while_the_target_is_down_or_the_relay_gone() {
        let (_d, r, t) = history();
        let now = Timestamp::from_nanos(T0 + 8 * 60 * S);
        let strips = r.relay_strips(&[t], now, 8).unwrap();
        use Display::{Live, Retrying};
        assert_eq!(
            strips[&("http://t/metrics".into(), "wss://a".into())],
            [
                Some(Live),
                Some(Live),
                Some(Retrying),
                Some(Retrying),
                None,
                Some(Retrying),
                Some(Retrying),
                Some(Retrying)
            ]
        );
        let b = &strips[&("http://t/metrics".into(), "wss://b".into())];
        assert_eq!(b[0], Some(Live));
        assert_eq!(b[4], None, "target down");
        assert_eq!(b[5], Some(Live), "back with it");
        assert_eq!(&b[6..], [None, None], "gone: no data");
    }

    #[test]
    fn freshness_per_system_and_source() {
        let (_d, r, _) = history();
        let f = r.freshness().unwrap();
        assert_eq!(f.newest_event, Some(Timestamp::from_nanos(T0 + 6 * 60 * S)));
        assert!(f.newest_id > 0);
        assert!(f.last_batch.is_some());
        assert_eq!(
            f.systems,
            [("ngit".to_string(), Timestamp::from_nanos(T0 + 6 * 60 * S))]
        );
        assert_eq!(f.ingest.len(), 1);
        assert_eq!(f.ingest[0].source, "ngit-metrics:http://t/metrics");
        assert_eq!(f.ingest[0].state.as_deref(), Some("ok"));
        assert_eq!(f.ingest[0].last_batch, f.last_batch);
    }

    #[test]
    fn a_v9_stores_ngit_checkpoints_become_relay_targets() {
        let mut t = TargetState::new("http://t/metrics");
        let _ = t.observe(Timestamp::from_nanos(T0), &[reading("wss://a", 3, 1)]);
        let state = serde_json::to_string(&t).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("v9.db");
        let mut c = rusqlite::Connection::open(&db).unwrap();
        super::super::schema::migrate_to(&mut c, 9).unwrap();
        c.execute(
            "INSERT INTO checkpoints (source, state, updated) VALUES
               ('ngit-metrics:http://t/metrics', ?1, 1), ('ngit-metrics:http://bad/metrics', 'garbage', 1),
               ('jsonl:/var/log/x.jsonl', '{\"target\":\"no\"}', 1)",
            [&state],
        )
        .unwrap();
        drop(c);
        // Opening the store migrates it.
        let mut w = Writer::open(&db).unwrap();
        let r = crate::store::open_reader(&db).unwrap();
        let (targets, unreadable) = r.relay_targets().unwrap();
        assert_eq!(targets, vec![t.clone()], "the state is kept as it was");
        assert_eq!(unreadable.len(), 1, "{unreadable:?}");
        assert!(
            unreadable[0].starts_with("ngit-metrics:http://bad/metrics: "),
            "{unreadable:?}"
        );
        // The next scrape's state replaces the migrated one; an older one changes nothing.
        let mut newer = t.clone();
        let _ = newer.observe(
            Timestamp::from_nanos(T0 + 60 * S),
            &[reading("wss://a", 0, 3)],
        );
        for state in [&newer, &t] {
            w.commit(&crate::store::Batch {
                source: "ngit-metrics:http://t/metrics",
                events: &[],
                keys: &[],
                updates: &[update(state)],
                rejects: &[],
                checkpoint: None,
            })
            .unwrap();
        }
        assert_eq!(r.relay_targets().unwrap().0, vec![newer]);
    }
}
