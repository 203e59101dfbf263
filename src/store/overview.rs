//! Read queries behind the TUI's Overview ("what is broken right now"): small answers about
//! the few things that are not well, never history in bulk.

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::OptionalExtension;

use super::query::Reader;

impl Reader {
    /// Since when (Unix seconds) a remote has had a ref in trouble: the earliest failure or
    /// scheduling among its refs that are FAILED, UNKNOWN or retrying. None when it has none.
    pub fn remote_trouble_since(&self, remote: &str) -> Result<Option<i64>> {
        let mut st = self.connection().prepare_cached(
            "SELECT min(coalesce(s.last_failure, s.scheduled_since, s.when_s))
             FROM ref_state s JOIN strings m ON m.id = s.remote
             WHERE m.text = ?1 AND (s.status IN ('FAILED', 'UNKNOWN') OR s.retrying)",
        )?;
        st.query_row([remote], |r| r.get::<_, Option<i64>>(0))
            .optional()
            .map(Option::flatten)
            .wrap_err_with(|| format!("cannot read since when remote {remote} is failing"))
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
            c.execute(
                "INSERT INTO strings (id, text) VALUES (?1, ?2)",
                rusqlite::params![id, t],
            )
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
                "INSERT INTO ref_state (ref, remote, project, direction, status, when_s, retrying,
                   attempts, last_failure, scheduled_since) VALUES (?1, ?2, 3, 'PUSH', ?3, 500, ?4, 1, ?5, 400)",
                rusqlite::params![r, remote, status, retrying, fail],
            )
            .unwrap();
        }
        let reader = crate::store::open_reader(&db).unwrap();
        assert_eq!(reader.remote_trouble_since("a").unwrap(), Some(200));
        assert_eq!(reader.remote_trouble_since("b").unwrap(), None);
        assert_eq!(reader.remote_trouble_since("nobody").unwrap(), None);
    }
}
