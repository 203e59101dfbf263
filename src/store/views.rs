//! Read queries behind the TUI's panes: each returns only what one screen shows (a page, a
//! summary row per remote or relay, per-minute rates), never history in bulk.

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, OptionalExtension};

use super::query::{Cursor, EventFilter, Reader};
use super::schema::{self, COUNT_BUCKET_NS};
use crate::model::{StoredEvent, Timestamp};

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
    /// of the strings (a few dozen of them), then only the window's events are read (once).
    pub fn open_sessions(&self, since: Timestamp, limit: u64) -> Result<Vec<(String, Timestamp)>> {
        let text_of = |id: i64| -> Result<String> {
            Ok(self
                .connection()
                .prepare_cached("SELECT text FROM strings WHERE id = ?1")?
                .query_row([id], |r| r.get(0))?)
        };
        let types = |suffixes: &[&str]| -> Result<Vec<i64>> {
            let mut ids = Vec::new();
            for suffix in suffixes {
                for id in super::textindex::strings_containing(self.connection(), suffix)? {
                    if crate::model::canonical_type(&text_of(id)?).ends_with(suffix) {
                        ids.push(id);
                    }
                }
            }
            Ok(ids)
        };
        let newest_string: i64 =
            self.connection()
                .query_row("SELECT coalesce(max(id), 0) FROM strings", [], |r| r.get(0))?;
        let cached = self.session_types.borrow().clone();
        let (starts, ends) = match cached {
            Some((upto, starts, ends)) if upto == newest_string => (starts, ends),
            _ => {
                let (starts, ends) = (types(&[SESSION_START])?, types(&SESSION_END)?);
                *self.session_types.borrow_mut() =
                    Some((newest_string, starts.clone(), ends.clone()));
                (starts, ends)
            }
        };
        if starts.is_empty() {
            return Ok(Vec::new());
        }
        let either = starts
            .iter()
            .chain(&ends)
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // A session ends after it starts: the ends of the sessions started in the window are
        // in the window too. One pass over the window's starts and ends (newest first), then
        // the starts whose session has no end in it.
        let sql = format!(
            "SELECT e.corr, e.event_type, e.ts FROM events e
             WHERE e.ts >= ?1 AND e.corr IS NOT NULL AND e.event_type IN ({either})
             ORDER BY e.ts DESC"
        );
        let mut st = self.connection().prepare_cached(&sql)?;
        let mut rows = st.query([since.as_nanos()])?;
        let mut started: Vec<(i64, i64)> = Vec::new();
        let mut ended = std::collections::HashSet::new();
        while let Some(r) = rows.next()? {
            let (corr, typ, ts): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if ends.contains(&typ) {
                ended.insert(corr);
            } else {
                started.push((corr, ts));
            }
        }
        drop(rows);
        started
            .into_iter()
            .filter(|(corr, _)| !ended.contains(corr))
            .take(limit as usize)
            .map(|(corr, ts)| Ok((text_of(corr)?, Timestamp::from_nanos(ts))))
            .collect::<Result<Vec<_>>>()
            .wrap_err("cannot read the open sessions")
    }

    /// The time of the `n`-th newest event (1: the newest), None when the store holds fewer.
    /// A walk of `n` entries of the time index, nothing else read.
    pub fn ts_of_nth_newest(&self, n: u64) -> Result<Option<Timestamp>> {
        if n == 0 {
            return Ok(None);
        }
        self.connection()
            .prepare_cached("SELECT ts FROM events ORDER BY ts DESC, key DESC LIMIT 1 OFFSET ?1")?
            .query_row([n as i64 - 1], |r| r.get::<_, i64>(0))
            .optional()
            .map(|t| t.map(Timestamp::from_nanos))
            .wrap_err("cannot read the time of the newest events")
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
    use crate::model::{Event, Severity};
    use crate::store::Writer;

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
    fn the_nth_newest_event_bounds_a_window_by_count() {
        let (_d, r) = store(
            (0..5)
                .map(|i| ev(i * 10, "a", None, Severity::Info))
                .collect(),
        );
        let secs = |t: Option<Timestamp>| t.map(|t| t.as_nanos());
        let newest = r.ts_of_nth_newest(1).unwrap();
        let third = r.ts_of_nth_newest(3).unwrap();
        assert!(newest.is_some() && third.is_some());
        assert_eq!(
            secs(newest).unwrap() - secs(third).unwrap(),
            20_000_000_000,
            "the 3rd newest is two events (20 s) before the newest"
        );
        assert_eq!(
            r.ts_of_nth_newest(5).unwrap(),
            r.page_after(&EventFilter::default(), None, 1)
                .unwrap()
                .first()
                .map(|e| e.event.timestamp)
        );
        assert_eq!(
            r.ts_of_nth_newest(6).unwrap(),
            None,
            "fewer events than asked"
        );
        assert_eq!(r.ts_of_nth_newest(0).unwrap(), None);
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
