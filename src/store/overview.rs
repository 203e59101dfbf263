//! Read queries behind the TUI's Overview ("what is broken right now"): small answers about
//! the few things that are not well, never history in bulk.

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::OptionalExtension;

use super::query::Reader;

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

#[cfg(test)]
mod tests {
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
