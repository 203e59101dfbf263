//! Read queries behind the TUI's panes: each returns only what one screen shows (a page, a
//! summary row per remote or relay, per-minute rates), never history in bulk.

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, OptionalExtension};

use super::query::{Cursor, EventFilter, Reader};
use super::schema::{self, COUNT_BUCKET_NS};
use crate::model::gerrit::RefState;
use crate::model::names::kind;
use crate::model::relay::TargetState;
use crate::model::{StoredEvent, Timestamp};

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

/// Aggregates over one correlation id (a push, a sync session, a pipeline).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionSummary {
    pub events: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    pub records: i64,
    pub errors: u64,
    pub warnings: u64,
    pub sources: Vec<String>,
}

/// Which open sync sessions are, by the types that start and end them.
const SESSION_START: &str = "_session_started";
const SESSION_END: [&str; 2] = ["_session_completed", "_session_failed"];

impl Reader {
    /// Up to `limit` events strictly newer than `after` (or the oldest when None), oldest first.
    pub fn page_after(
        &self,
        filter: &EventFilter,
        after: Option<Cursor>,
        limit: u64,
    ) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        let mut f = filter.clone();
        // Strictly after the cursor: `since` alone would include equal timestamps.
        if let Some(a) = after {
            let since = Timestamp::from_nanos(a.ts);
            f.since = Some(f.since.map_or(since, |s| s.max(since)));
        }
        self.for_each_event_from(&f, after, limit, |e| {
            out.push(e);
            Ok(())
        })?;
        Ok(out)
    }

    /// The per-minute event count per severity for the `minutes` minutes up to `now`,
    /// oldest first: `[minute][severity rank]`.
    pub fn rate_per_minute(&self, now: Timestamp, minutes: usize) -> Result<Vec<[u64; 4]>> {
        let last = schema::count_bucket(now.as_nanos());
        let first = last - minutes as i64 + 1;
        let mut out = vec![[0u64; 4]; minutes];
        let mut st = self.connection().prepare_cached(
            "SELECT minute, severity, sum(n) FROM event_counts WHERE minute >= ?1 AND minute <= ?2 GROUP BY 1, 2",
        )?;
        let mut rows = st.query(rusqlite::params![first, last])?;
        while let Some(r) = rows.next()? {
            let (m, sev, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let (Ok(i), Ok(s)) = (usize::try_from(m - first), usize::try_from(sev)) else {
                continue;
            };
            if let Some(slot) = out.get_mut(i).and_then(|row| row.get_mut(s)) {
                *slot += n.max(0) as u64;
            }
        }
        Ok(out)
    }

    /// The systems that have events in the store (`gerrit`, `ngit`, `spacedrive`, ...).
    pub fn event_sources(&self) -> Result<Vec<String>> {
        let mut st = self.connection().prepare_cached(
            "SELECT s.text FROM (SELECT DISTINCT source FROM event_counts) c
             JOIN strings s ON s.id = c.source ORDER BY s.text",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        rows.collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot list the event sources")
    }

    /// Events per source and severity rank in the whole minutes since `since` (from
    /// `event_counts`, without reading events).
    pub fn counts_by_source(&self, since: Timestamp) -> Result<Vec<(String, [u64; 4])>> {
        let mut st = self.connection().prepare_cached(
            "SELECT s.text, c.severity, sum(c.n) FROM event_counts c JOIN strings s ON s.id = c.source
             WHERE c.minute >= ?1 GROUP BY 1, 2 ORDER BY 1",
        )?;
        let mut rows = st.query([minute_of(since)])?;
        let mut out: Vec<(String, [u64; 4])> = Vec::new();
        while let Some(r) = rows.next()? {
            let (src, sev, n): (String, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if out.last().is_none_or(|(s, _)| *s != src) {
                out.push((src, [0; 4]));
            }
            if let (Some((_, c)), Ok(i)) = (out.last_mut(), usize::try_from(sev)) {
                if let Some(slot) = c.get_mut(i) {
                    *slot += n.max(0) as u64;
                }
            }
        }
        Ok(out)
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
            super::query::ref_state_row,
        )?;
        let refs = rows
            .collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read a remote's refs")?;
        Ok((refs, total.max(0) as u64))
    }

    /// The derived state of every `ngit-metrics:` target (saved as each target's checkpoint) and
    /// of every instance of a `prometheus:` source (its checkpoint holds them all).
    /// A state that cannot be read is reported by key; the next scrape rebuilds it.
    pub fn relay_targets(&self) -> Result<(Vec<TargetState>, Vec<String>)> {
        let mut targets = Vec::new();
        let mut unreadable = Vec::new();
        for (key, state) in self.checkpoints(&kind::prefix(kind::NGIT_METRICS))? {
            match serde_json::from_str::<TargetState>(&state) {
                Ok(t) => targets.push(t),
                Err(e) => unreadable.push(format!("{key}: {e}")),
            }
        }
        // A `prometheus:` source keeps one target per instance of its fleet.
        for (key, state) in self.checkpoints("prometheus:")? {
            match serde_json::from_str::<crate::model::fleet::FleetState>(&state) {
                Ok(f) => targets.extend(f.into_targets()),
                Err(e) => unreadable.push(format!("{key}: {e}")),
            }
        }
        Ok((targets, unreadable))
    }

    /// Totals over one correlation id: the whole id, or a prefix (4+ characters, as the
    /// screens show ids) of exactly one session's; empty when it names none or several (see
    /// [`Reader::resolve_correlation_id`] for which).
    pub fn session_summary(&self, corr: &str) -> Result<SessionSummary> {
        let resolved = self.resolve_correlation_id(corr)?;
        let Some(corr) = resolved.id() else {
            return Ok(SessionSummary::default());
        };
        let Some(cid) = self
            .connection()
            .prepare_cached("SELECT id FROM string_ids WHERE text = ?1")?
            .query_row([corr], |r| r.get::<_, i64>(0))
            .optional()?
        else {
            return Ok(SessionSummary::default());
        };
        let mut s = self.connection().query_row(
            "SELECT count(*), min(ts), max(ts), coalesce(sum(record_count), 0),
                    sum(severity = 3), sum(severity = 2)
             FROM events WHERE corr = ?1",
            [cid],
            |r| {
                Ok(SessionSummary {
                    events: r.get::<_, i64>(0)?.max(0) as u64,
                    first: r.get::<_, Option<i64>>(1)?.map(Timestamp::from_nanos),
                    last: r.get::<_, Option<i64>>(2)?.map(Timestamp::from_nanos),
                    records: r.get(3)?,
                    errors: r.get::<_, Option<i64>>(4)?.unwrap_or(0).max(0) as u64,
                    warnings: r.get::<_, Option<i64>>(5)?.unwrap_or(0).max(0) as u64,
                    sources: Vec::new(),
                })
            },
        )?;
        let mut st = self.connection().prepare_cached(
            "SELECT DISTINCT s.text FROM events e JOIN strings s ON s.id = e.source WHERE e.corr = ?1",
        )?;
        s.sources = st
            .query_map([cid], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        s.sources.sort();
        Ok(s)
    }

    /// Sync sessions started since `since` that have not completed or failed (by correlation
    /// id), newest first, at most `limit`. The session types are found through the text index
    /// of the strings (a few dozen of them), then only the window's events are read (twice).
    pub fn open_sessions(&self, since: Timestamp, limit: u64) -> Result<Vec<(String, Timestamp)>> {
        let types = |suffixes: &[&str]| -> Result<String> {
            let mut ids = Vec::new();
            for suffix in suffixes {
                for id in super::textindex::strings_containing(self.connection(), suffix)? {
                    let text: String = self.connection().query_row(
                        "SELECT text FROM strings WHERE id = ?1",
                        [id],
                        |r| r.get(0),
                    )?;
                    if crate::model::canonical_type(&text).ends_with(suffix) {
                        ids.push(id.to_string());
                    }
                }
            }
            Ok(ids.join(","))
        };
        let starts = types(&[SESSION_START])?;
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let ends = types(&SESSION_END)?;
        // A session ends after it starts: the ends of the sessions started in the window are
        // in the window too, found in one pass over it (not one lookup per start).
        let sql = format!(
            "SELECT c.text, e.ts FROM events e JOIN strings c ON c.id = e.corr
             WHERE e.ts >= ?1 AND e.corr IS NOT NULL AND e.event_type IN ({starts})
               AND e.corr NOT IN (SELECT f.corr FROM events f
                                  WHERE f.ts >= ?1 AND f.corr IS NOT NULL AND f.event_type IN ({ends}))
             ORDER BY e.ts DESC LIMIT ?2"
        );
        let mut st = self.connection().prepare_cached(&sql)?;
        let rows = st.query_map(rusqlite::params![since.as_nanos(), limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, Timestamp::from_nanos(r.get(1)?)))
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .wrap_err("cannot read the open sessions")
    }

    /// How many events were stored after store id `after` (for "+N new" while paused).
    pub fn count_after_id(&self, after: i64, filter: &EventFilter) -> Result<u64> {
        let f = EventFilter {
            after_id: Some(after),
            ..filter.clone()
        };
        self.count_events(&f)
    }

    /// Streams up to `limit` matches strictly after `after` in `(ts, key)` order.
    fn for_each_event_from(
        &self,
        filter: &EventFilter,
        after: Option<Cursor>,
        limit: u64,
        mut f: impl FnMut(StoredEvent) -> Result<()>,
    ) -> Result<()> {
        let (sql, mut params) = self.select_sql(filter)?;
        let Some(mut sql) = sql else {
            return Ok(());
        };
        if let Some(a) = after {
            sql.push_str(if sql.contains(" WHERE ") {
                " AND (e.ts, e.key) > (?, ?)"
            } else {
                " WHERE (e.ts, e.key) > (?, ?)"
            });
            params.push(Value::Integer(a.ts));
            params.push(Value::Integer(a.key));
        }
        sql.push_str(&format!(" ORDER BY e.ts, e.key LIMIT {limit}"));
        let mut st = self.connection().prepare_cached(&sql)?;
        let mut rows = st.query(params_from_iter(params.iter()))?;
        while let Some(row) = rows.next()? {
            f(super::query::stored_event(row)?)?;
        }
        Ok(())
    }
}

/// The minute bucket `ts` falls in, as `event_counts` keys it.
pub fn minute_of(ts: Timestamp) -> i64 {
    ts.as_nanos().div_euclid(COUNT_BUCKET_NS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gerrit::{Direction, RefStatus, RefUpdate};
    use crate::model::{Event, Severity};
    use crate::store::{Batch, Writer};

    fn ev(sec: i64, ty: &str, corr: Option<&str>, sev: Severity) -> Event {
        let mut e = Event::new(
            Timestamp::from_nanos(1_800_000_000_000_000_000 + sec * 1_000_000_000),
            "spacedrive",
            ty,
            "lifecycle",
            sev,
            format!("{ty} at {sec}"),
        );
        e.correlation_id = corr.map(str::to_string);
        e.record_count = Some(10);
        e
    }

    fn store(events: Vec<Event>) -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut w = Writer::open(&db).unwrap();
        w.commit_batch("t", &events, &[], None).unwrap();
        drop(w);
        (dir, crate::store::open_reader(&db).unwrap())
    }

    #[test]
    fn pages_in_both_directions_meet_without_overlap() {
        let events: Vec<Event> = (0..10)
            .map(|i| ev(i, "batch_ingestion", None, Severity::Info))
            .collect();
        let (_d, r) = store(events);
        let f = EventFilter::default();
        let newest = r.page_before(&f, None, 4).unwrap();
        assert_eq!(newest[0].event.summary, "batch_ingestion at 9");
        let c = Cursor {
            ts: newest[3].event.timestamp.as_nanos(),
            key: newest[3].key,
        };
        let after = r.page_after(&f, Some(c), 10).unwrap();
        let names: Vec<&str> = after.iter().map(|e| e.event.summary.as_str()).collect();
        assert_eq!(
            names,
            [
                "batch_ingestion at 7",
                "batch_ingestion at 8",
                "batch_ingestion at 9"
            ]
        );
        let oldest = r.page_after(&f, None, 2).unwrap();
        assert_eq!(oldest[0].event.summary, "batch_ingestion at 0");
    }

    #[test]
    fn sessions_are_summed_and_open_ones_found() {
        let (_d, r) = store(vec![
            ev(0, "backfill_session_started", Some("s1"), Severity::Info),
            ev(5, "batch_ingestion", Some("s1"), Severity::Info),
            ev(9, "sync_error", Some("s1"), Severity::Error),
            ev(10, "backfill_session_completed", Some("s1"), Severity::Info),
            ev(20, "catch_up_session_started", Some("s2"), Severity::Debug),
            ev(21, "batch_ingestion", Some("s2"), Severity::Warning),
            ev(22, "BackfillSessionStarted", Some("s3"), Severity::Info),
            ev(23, "BackfillSessionFailed", Some("s3"), Severity::Error),
            ev(24, "sync_session_started_twice", Some("s4"), Severity::Info),
        ]);
        let s = r.session_summary("s1").unwrap();
        assert_eq!((s.events, s.records, s.errors, s.warnings), (4, 40, 1, 0));
        assert_eq!(s.sources, ["spacedrive"]);
        let open = r.open_sessions(Timestamp::from_nanos(0), 10).unwrap();
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(
            open[0].0, "s2",
            "s3 failed (PascalCase types), s4 is no session start"
        );
        assert_eq!(r.session_summary("nope").unwrap().events, 0);
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
            events.push(ev(i as i64, "ref_replicated", None, Severity::Info));
            updates.push((
                i,
                RefUpdate {
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
            ));
        }
        let keys: Vec<i64> = events.iter().map(Event::dedup_key).collect();
        w.commit(&Batch {
            source: "g",
            events: &events,
            keys: &keys,
            ref_updates: &updates,
            rejects: &[],
            checkpoint: None,
            ci: &[],
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

    #[test]
    fn rates_are_per_minute_and_severity() {
        let (_d, r) = store(vec![
            ev(0, "a", None, Severity::Info),
            ev(1, "a", None, Severity::Error),
            ev(61, "a", None, Severity::Error),
        ]);
        let now = Timestamp::from_nanos(1_800_000_000_000_000_000 + 61 * 1_000_000_000);
        let rates = r.rate_per_minute(now, 3).unwrap();
        let total: u64 = rates.iter().flatten().sum();
        assert_eq!(total, 3);
        assert_eq!(rates[2][Severity::Error.rank() as usize] + rates[1][3], 2);
        assert_eq!(r.event_sources().unwrap(), ["spacedrive"]);
    }
}
