//! Read queries behind the TUI's Overview ("what is broken right now"): small answers about
//! the few things that are not well, never history in bulk.

use std::collections::HashMap;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::OptionalExtension;

use super::query::Reader;
use crate::model::names::system;
use crate::model::{Severity, Timestamp};

impl Reader {
    /// Since when (Unix seconds) a remote has had a ref in trouble: the earliest failure or
    /// scheduling among its refs that are FAILED, UNKNOWN or retrying (a deletion that did not
    /// replicate is shown apart, not as trouble). None when it has none.
    pub fn remote_trouble_since(&self, remote: &str) -> Result<Option<i64>> {
        let mut st = self.connection().prepare_cached(
            "SELECT min(coalesce(s.last_failure, s.scheduled_since, s.when_s))
             FROM ref_state s
             WHERE s.remote = (SELECT id FROM string_ids WHERE text = ?1) AND s.deleted_at IS NULL
               AND (s.status IN ('FAILED', 'UNKNOWN') OR s.retrying)",
        )?;
        st.query_row([remote], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .map(Option::flatten)
            .wrap_err_with(|| format!("cannot read since when remote {remote} is failing"))
    }
}

impl Reader {
    /// A session's records counted once: the total its completion event reports when it has
    /// one (the batches' records are in it), else the sum over its steps. (Summing every
    /// event's count counts a completed session's records twice.)
    pub fn session_records(&self, corr: &str) -> Result<i64> {
        let mut st = self.connection().prepare_cached(
            "SELECT
               (SELECT max(e.record_count) FROM events e JOIN strings t ON t.id = e.event_type
                 WHERE e.corr = c.id AND t.text LIKE '%\\_session\\_completed' ESCAPE '\\'
                   AND e.record_count IS NOT NULL),
               (SELECT coalesce(sum(e.record_count), 0) FROM events e JOIN strings t ON t.id = e.event_type
                 WHERE e.corr = c.id AND t.text NOT LIKE '%\\_session\\_%' ESCAPE '\\')
             FROM string_ids c WHERE c.text = ?1",
        )?;
        let found = st
            .query_row([corr], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()
            .wrap_err_with(|| format!("cannot count the records of session {corr}"))?;
        Ok(match found {
            Some((Some(total), _)) => total,
            Some((None, sum)) => sum,
            None => 0,
        })
    }
}

/// One Spacedrive sync session (or device, for errors without a session) with errors.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionErrors {
    pub corr: Option<String>,
    pub device: Option<String>,
    /// The newest error's summary.
    pub error: String,
    pub newest: Timestamp,
    /// Of the errors read (at most `read`, the newest).
    pub count: u64,
}

/// A group of errors as read: interned ids, its newest error's event id and time, how many.
struct Group {
    corr: Option<i64>,
    device: Option<i64>,
    newest_id: i64,
    newest_ts: i64,
    count: u64,
}

/// `severity = 3` in the partial index `ev_errors`'s own words: its entries hold every column
/// read here (the summary is read for each group's newest error only).
fn session_errors_sql() -> String {
    format!(
        "SELECT e.corr, e.device, e.ts, e.id FROM events e
         WHERE e.source = (SELECT id FROM string_ids WHERE text = ?1)
           AND e.severity = {error} AND e.ts >= ?2 AND e.id <= ?3
         ORDER BY e.ts DESC, e.key DESC LIMIT ?4",
        error = Severity::Error.rank(),
    )
}

impl Reader {
    /// The sessions (by correlation id; by device for errors without one) with Spacedrive
    /// errors since `since` (and at most up to event `upto_id`: a paused screen), newest first,
    /// from the newest `read` errors: the first `named` of them with their names and newest
    /// error, and how many sessions there are in all. From the index `ev_errors` alone, and a
    /// named group's strings once: the Overview asks this on every change of the store.
    pub fn session_errors(
        &self,
        since: Timestamp,
        upto_id: Option<i64>,
        read: u64,
        named: usize,
    ) -> Result<(Vec<SessionErrors>, usize)> {
        let conn = self.connection();
        let mut st = conn.prepare_cached(&session_errors_sql())?;
        let mut rows = st.query(rusqlite::params![
            system::SPACEDRIVE,
            since.as_nanos(),
            upto_id.unwrap_or(i64::MAX),
            read.min(i64::MAX as u64) as i64,
        ])?;
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<(Option<i64>, Option<i64>), usize> = HashMap::new();
        while let Some(r) = rows.next()? {
            let (corr, device): (Option<i64>, Option<i64>) = (r.get(0)?, r.get(1)?);
            let key = if corr.is_some() {
                (corr, None)
            } else {
                (None, device)
            };
            match index.get(&key) {
                Some(&i) => groups[i].count += 1,
                None => {
                    index.insert(key, groups.len());
                    groups.push(Group {
                        corr,
                        device,
                        newest_id: r.get(3)?,
                        newest_ts: r.get(2)?,
                        count: 1,
                    });
                }
            }
        }
        drop(rows);
        let all = groups.len();
        let text_of = |id: Option<i64>| id.map_or(Ok(None), |id| self.interned_text(id));
        let mut summary = conn.prepare_cached("SELECT summary FROM events WHERE id = ?1")?;
        let named = groups
            .into_iter()
            .take(named)
            .map(|g| {
                Ok(SessionErrors {
                    corr: text_of(g.corr)?,
                    device: text_of(g.device)?,
                    error: summary.query_row([g.newest_id], |r| r.get(0))?,
                    newest: Timestamp::from_nanos(g.newest_ts),
                    count: g.count,
                })
            })
            .collect::<Result<Vec<_>>>()
            .wrap_err("cannot read the sessions with errors")?;
        Ok((named, all))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_are_grouped_by_session_then_device_newest_first() {
        use crate::model::{Event, Severity, Timestamp};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut w = crate::store::Writer::open(&db).unwrap();
        let t0 = 1_800_000_000_000_000_000i64;
        let ev = |i: i64, source: &str, sev: Severity, corr: Option<&str>, dev: Option<&str>| {
            let mut e = Event::new(
                Timestamp::from_nanos(t0 + i * 1_000_000_000),
                source,
                "sync_error",
                "sync",
                sev,
                format!("error {i}"),
            );
            e.correlation_id = corr.map(Into::into);
            e.device_id = dev.map(Into::into);
            e
        };
        let events = vec![
            ev(1, "spacedrive", Severity::Error, Some("s1"), Some("d1")),
            ev(2, "spacedrive", Severity::Error, None, Some("d2")),
            ev(3, "spacedrive", Severity::Warning, Some("s2"), Some("d1")),
            ev(4, "gerrit", Severity::Error, Some("s3"), None),
            ev(5, "spacedrive", Severity::Error, Some("s1"), Some("d9")),
            ev(6, "spacedrive", Severity::Error, None, Some("d2")),
            ev(7, "spacedrive", Severity::Error, None, None),
            ev(0, "spacedrive", Severity::Error, Some("old"), None),
        ];
        w.commit_batch("t", &events, &[], None).unwrap();
        let r = crate::store::open_reader(&db).unwrap();
        let since = Timestamp::from_nanos(t0 + 1);
        let got: Vec<_> = r
            .session_errors(since, None, 500, 9)
            .unwrap()
            .0
            .into_iter()
            .map(|g| (g.corr, g.device, g.error, g.count))
            .collect();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            got,
            vec![
                (None, None, "error 7".into(), 1),
                (None, s("d2"), "error 6".into(), 2),
                (s("s1"), s("d9"), "error 5".into(), 2),
            ]
        );
        // The newest two only; then a paused screen's snapshot (events up to "error 5").
        let (newest, all) = r.session_errors(since, None, 2, 9).unwrap();
        assert_eq!((newest.len(), all), (2, 2));
        assert_eq!(newest[1].count, 1);
        // Two named, three in all.
        let (named, all) = r.session_errors(since, None, 500, 2).unwrap();
        assert_eq!((named.len(), all), (2, 3));
        let upto: i64 = r
            .connection()
            .query_row("SELECT id FROM events WHERE summary = 'error 5'", [], |x| {
                x.get(0)
            })
            .unwrap();
        let paused: Vec<_> = r
            .session_errors(since, Some(upto), 500, 9)
            .unwrap()
            .0
            .into_iter()
            .map(|g| (g.corr, g.device, g.count))
            .collect();
        assert_eq!(paused, vec![(s("s1"), s("d9"), 2), (None, s("d2"), 1)]);
        // From the errors' own index alone: not every source's errors, not the table.
        let plan: Vec<String> = r
            .connection()
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                super::session_errors_sql()
            ))
            .unwrap()
            .query_map(rusqlite::params!["spacedrive", 0, 9, 500], |x| x.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("COVERING INDEX ev_errors (source=? AND ts>?)")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    }

    #[test]
    fn trouble_starts_at_the_earliest_failing_ref_of_the_remote() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let w = crate::store::Writer::open(&db).unwrap();
        let c = w.connection();
        for (id, t) in [(1, "a"), (2, "b"), (3, "p"), (4, "x"), (5, "y"), (6, "z")] {
            c.execute_batch(&format!(
                "INSERT INTO strings (id, text) VALUES ({id}, '{t}');
                 INSERT INTO string_ids_recent (text, id) VALUES ('{t}', {id});"
            ))
            .unwrap();
        }
        // (ref, remote, status, retrying, last_failure)
        for (r, remote, status, retrying, fail) in [
            (4, 1, "SCHEDULED", 1, Some(300)),
            (5, 1, "FAILED", 0, Some(200)),
            (6, 1, "SUCCEEDED", 0, Some(100)),
            (4, 2, "SUCCEEDED", 0, None),
        ] {
            c.execute(
                "INSERT INTO ref_state (ref, remote, project, instance, direction, status, when_s,
                   retrying, attempts, last_failure, scheduled_since)
                 VALUES (?1, ?2, 3, 0, 'PUSH', ?3, 500, ?4, 1, ?5, 400)",
                rusqlite::params![r, remote, status, retrying, fail],
            )
            .unwrap();
        }
        let reader = crate::store::open_reader(&db).unwrap();
        assert_eq!(reader.remote_trouble_since("a").unwrap(), Some(200));
        assert_eq!(reader.remote_trouble_since("b").unwrap(), None);
        assert_eq!(reader.remote_trouble_since("nobody").unwrap(), None);
    }

    #[test]
    fn a_completed_sessions_records_are_counted_once() {
        use crate::model::{Event, Severity, Timestamp};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut w = crate::store::Writer::open(&db).unwrap();
        let ev = |i: i64, ty: &str, corr: &str, n: i64| {
            let mut e = Event::new(
                Timestamp::from_nanos(1_800_000_000_000_000_000 + i),
                "spacedrive",
                ty,
                "sync",
                Severity::Info,
                format!("{ty} {i}"),
            );
            e.correlation_id = Some(corr.into());
            e.record_count = Some(n);
            e
        };
        let events = vec![
            ev(1, "backfill_session_started", "s1", 0),
            ev(2, "batch_ingestion", "s1", 100),
            ev(3, "batch_ingestion", "s1", 50),
            ev(4, "backfill_session_completed", "s1", 150),
            ev(5, "batch_ingestion", "s2", 7),
            ev(6, "batch_ingestion", "s2", 8),
        ];
        w.commit_batch("t", &events, &[], None).unwrap();
        let r = crate::store::open_reader(&db).unwrap();
        assert_eq!(r.session_records("s1").unwrap(), 150);
        assert_eq!(r.session_records("s2").unwrap(), 15);
        assert_eq!(r.session_records("nope").unwrap(), 0);
    }
}
