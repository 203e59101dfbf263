//! The single writer: a batch of events, its rejects and its source's checkpoint commit in one
//! transaction, so a crash at any instant resumes with nothing lost and nothing twice.

use std::collections::HashMap;
use std::path::Path;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::model::{canonical_type, Event, Reject};

/// Interned strings kept in memory before the cache is reset (bounds the writer's memory).
const INTERN_CACHE_MAX: usize = 200_000;
/// Hash collisions with different content are resolved by probing the next keys.
const MAX_PROBES: i64 = 64;
/// Rows deleted per transaction when pruning, so readers and ingest keep moving.
const PRUNE_CHUNK: i64 = 20_000;

/// What one committed batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub inserted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl std::ops::AddAssign for BatchOutcome {
    fn add_assign(&mut self, o: Self) {
        self.inserted += o.inserted;
        self.duplicates += o.duplicates;
        self.rejected += o.rejected;
    }
}

pub struct Writer {
    conn: Connection,
    interned: HashMap<String, i64>,
}

/// Insert statement shared with the benchmark's ceiling run.
pub const INSERT_EVENT_SQL: &str = "INSERT OR IGNORE INTO events (ts, key, source, device, event_type, category, severity, summary, details, corr, peer, model_types, record_count, duration_ms, subject) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

impl Writer {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = super::open(path)?;
        // A larger page cache for the writer keeps the index edges hot during bulk ingest.
        conn.execute_batch("PRAGMA cache_size=-16000;")?;
        Ok(Writer::from_connection(conn))
    }

    pub fn from_connection(conn: Connection) -> Self {
        Writer {
            conn,
            interned: HashMap::new(),
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The checkpoint a source saved with its last committed batch.
    pub fn checkpoint(&self, source: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT state FROM checkpoints WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()
            .wrap_err_with(|| format!("cannot read the checkpoint of {source}"))
    }

    /// Stores `events` (each once), `rejects` and `checkpoint` for `source`, atomically.
    pub fn commit_batch(
        &mut self,
        source: &str,
        events: &[Event],
        rejects: &[Reject],
        checkpoint: Option<&str>,
    ) -> Result<BatchOutcome> {
        let result = self.try_commit(source, events, rejects, checkpoint);
        if result.is_err() {
            // Ids interned inside a rolled-back transaction no longer exist.
            self.interned.clear();
        }
        result.wrap_err_with(|| format!("cannot store a batch from {source}"))
    }

    fn try_commit(
        &mut self,
        source: &str,
        events: &[Event],
        rejects: &[Reject],
        checkpoint: Option<&str>,
    ) -> Result<BatchOutcome> {
        let now = super::unix_now();
        if self.interned.len() > INTERN_CACHE_MAX {
            self.interned.clear();
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = BatchOutcome::default();
        let mut max_event = 0i64;
        {
            let mut ins = tx.prepare_cached(INSERT_EVENT_SQL)?;
            for e in events {
                let source_id = intern(&tx, &mut self.interned, &e.source)?;
                let device = intern_opt(&tx, &mut self.interned, e.device_id.as_deref())?;
                let ty = intern(&tx, &mut self.interned, &e.event_type)?;
                let cat = intern(&tx, &mut self.interned, &e.category)?;
                let corr = intern_opt(&tx, &mut self.interned, e.correlation_id.as_deref())?;
                let peer = intern_opt(&tx, &mut self.interned, e.peer_device_id.as_deref())?;
                let mt = intern_opt(&tx, &mut self.interned, e.model_types.as_deref())?;
                let subject = intern_opt(&tx, &mut self.interned, e.subject.as_deref())?;
                let ts = e.timestamp.as_nanos();
                let mut key = e.dedup_key();
                let mut stored = false;
                for _ in 0..MAX_PROBES {
                    let n = ins.execute(params![
                        ts,
                        key,
                        source_id,
                        device,
                        ty,
                        cat,
                        e.severity.rank(),
                        e.summary,
                        e.details,
                        corr,
                        peer,
                        mt,
                        e.record_count,
                        e.duration_ms,
                        subject
                    ])?;
                    if n == 1 {
                        out.inserted += 1;
                        max_event = tx.last_insert_rowid();
                        stored = true;
                        break;
                    }
                    if same_event(&tx, ts, key, source_id, device, corr, &e.summary, e)? {
                        out.duplicates += 1;
                        stored = true;
                        break;
                    }
                    // A different event with the same timestamp and hash: try the next key.
                    key = key.wrapping_add(1);
                }
                if !stored {
                    color_eyre::eyre::bail!(
                        "{MAX_PROBES} dedup-key collisions in a row at timestamp {ts}"
                    );
                }
            }
            let mut rej = tx.prepare_cached(
                "INSERT INTO rejects (source, location, reason, excerpt, received) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (source, location) DO UPDATE SET reason = excluded.reason, excerpt = excluded.excerpt, received = excluded.received",
            )?;
            for r in rejects {
                rej.execute(params![source, r.location, r.reason, r.excerpt, now])?;
                out.rejected += 1;
            }
            if let Some(state) = checkpoint {
                tx.prepare_cached(
                    "INSERT INTO checkpoints (source, state, updated) VALUES (?1, ?2, ?3)
                     ON CONFLICT (source) DO UPDATE SET state = excluded.state, updated = excluded.updated",
                )?
                .execute(params![source, state, now])?;
            }
            if out.inserted > 0 || out.rejected > 0 || out.duplicates > 0 {
                if max_event == 0 {
                    max_event =
                        tx.query_row("SELECT coalesce(max(id), 0) FROM events", [], |r| r.get(0))?;
                }
                tx.prepare_cached(
                    "INSERT INTO batches (received, source, max_event, inserted, duplicates, rejected) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    now,
                    source,
                    max_event,
                    out.inserted as i64,
                    out.duplicates as i64,
                    out.rejected as i64
                ])?;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records a source's health (`ok`, `backoff`, `fault`, `done`) for every reader to see.
    pub fn set_status(&mut self, source: &str, state: &str, message: &str) -> Result<()> {
        let now = super::unix_now();
        self.conn
            .prepare_cached(
                "INSERT INTO source_status (source, state, message, since, updated) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (source) DO UPDATE SET
                   since = CASE WHEN state = excluded.state THEN since ELSE excluded.since END,
                   state = excluded.state, message = excluded.message, updated = excluded.updated",
            )?
            .execute(params![source, state, message, now])
            .wrap_err_with(|| format!("cannot record the status of {source}"))?;
        Ok(())
    }

    /// Deletes events (and batch records and rejects) received more than `days` days before
    /// `now` (Unix seconds). `days == 0` keeps everything. Returns the number of events deleted.
    pub fn prune(&mut self, days: u32, now: i64) -> Result<u64> {
        if days == 0 {
            return Ok(0);
        }
        let cutoff = now - i64::from(days) * 86_400;
        let upto: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(max_event) FROM batches WHERE received < ?1",
                [cutoff],
                |r| r.get(0),
            )
            .wrap_err("cannot find events to prune")?;
        let mut deleted = 0u64;
        if let Some(upto) = upto {
            loop {
                let n = self
                    .conn
                    .execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ?1 ORDER BY id LIMIT ?2)",
                        params![upto, PRUNE_CHUNK],
                    )
                    .wrap_err("cannot prune old events")?;
                deleted += n as u64;
                if (n as i64) < PRUNE_CHUNK {
                    break;
                }
            }
        }
        self.conn
            .execute("DELETE FROM batches WHERE received < ?1", [cutoff])?;
        self.conn
            .execute("DELETE FROM rejects WHERE received < ?1", [cutoff])?;
        Ok(deleted)
    }
}

fn intern(tx: &Transaction<'_>, cache: &mut HashMap<String, i64>, text: &str) -> Result<i64> {
    if let Some(id) = cache.get(text) {
        return Ok(*id);
    }
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM strings WHERE text = ?1")?
        .query_row([text], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            tx.prepare_cached("INSERT INTO strings (text) VALUES (?1)")?
                .execute([text])?;
            tx.last_insert_rowid()
        }
    };
    cache.insert(text.to_string(), id);
    Ok(id)
}

fn intern_opt(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    text: Option<&str>,
) -> Result<Option<i64>> {
    text.map(|t| intern(tx, cache, t)).transpose()
}

/// Is the row stored under (ts, key) the same event as `e` by the dedup definition?
#[allow(clippy::too_many_arguments)]
fn same_event(
    tx: &Transaction<'_>,
    ts: i64,
    key: i64,
    source: i64,
    device: Option<i64>,
    corr: Option<i64>,
    summary: &str,
    e: &Event,
) -> Result<bool> {
    type KeyFields = (i64, Option<i64>, Option<i64>, String, String);
    let row: Option<KeyFields> = tx
        .prepare_cached(
            "SELECT e.source, e.device, e.corr, e.summary, t.text FROM events e JOIN strings t ON t.id = e.event_type WHERE e.ts = ?1 AND e.key = ?2",
        )?
        .query_row(params![ts, key], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    Ok(match row {
        Some((s, d, c, sum, ty)) => {
            s == source
                && d == device
                && c == corr
                && sum == summary
                && canonical_type(&ty) == canonical_type(&e.event_type)
        }
        None => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Severity, Timestamp};

    pub(crate) fn event(i: i64) -> Event {
        Event {
            timestamp: Timestamp::from_nanos(1_764_756_900_000_000_000 + i * 1_000_000_000),
            source: "spacedrive".into(),
            device_id: Some("dev-a".into()),
            event_type: "batch_ingestion".into(),
            category: "data_flow".into(),
            severity: Severity::Debug,
            summary: format!("batch {i}"),
            details: Some("{\"n\":1}".into()),
            correlation_id: Some("corr-1".into()),
            peer_device_id: None,
            model_types: Some("entry,tag".into()),
            record_count: Some(i),
            duration_ms: Some(10),
            subject: None,
        }
    }

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::open(&dir.path().join("s.db")).unwrap();
        (dir, w)
    }

    fn count(w: &Writer) -> i64 {
        w.connection()
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn same_event_twice_is_stored_once() {
        let (_d, mut w) = writer();
        let evs: Vec<_> = (0..10).map(event).collect();
        let a = w.commit_batch("s", &evs, &[], Some("{\"n\":10}")).unwrap();
        assert_eq!(a.inserted, 10);
        let mut again = evs.clone();
        again[3].event_type = "BatchIngestion".into(); // other spelling, same event
        again[4].details = None; // non-key fields do not make it new
        let b = w.commit_batch("s", &again, &[], None).unwrap();
        assert_eq!((b.inserted, b.duplicates), (0, 10));
        assert_eq!(count(&w), 10);
        assert_eq!(w.checkpoint("s").unwrap().as_deref(), Some("{\"n\":10}"));
    }

    #[test]
    fn hash_collision_with_different_content_keeps_both() {
        let (_d, mut w) = writer();
        let a = event(1);
        w.commit_batch("s", std::slice::from_ref(&a), &[], None)
            .unwrap();
        // Forge a collision: store a different event under a's (ts, key).
        w.connection()
            .execute("UPDATE events SET summary = 'other'", [])
            .unwrap();
        let out = w
            .commit_batch("s", std::slice::from_ref(&a), &[], None)
            .unwrap();
        assert_eq!(
            out.inserted, 1,
            "a colliding but different event must not vanish"
        );
        assert_eq!(count(&w), 2);
        let again = w.commit_batch("s", &[a], &[], None).unwrap();
        assert_eq!(again.duplicates, 1, "the probed copy is found again");
    }

    #[test]
    fn rejects_are_recorded_once_per_location() {
        let (_d, mut w) = writer();
        let r = Reject::new("f.jsonl:3", "invalid JSON", b"{oops");
        w.commit_batch("s", &[], std::slice::from_ref(&r), None)
            .unwrap();
        w.commit_batch("s", &[], &[r], None).unwrap();
        let n: i64 = w
            .connection()
            .query_row("SELECT count(*) FROM rejects", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn prune_by_receive_time_not_event_time() {
        let (_d, mut w) = writer();
        // Old events (2025) received now must survive a 7-day retention.
        w.commit_batch("s", &(0..5).map(event).collect::<Vec<_>>(), &[], None)
            .unwrap();
        assert_eq!(w.prune(7, super::super::unix_now()).unwrap(), 0);
        assert_eq!(count(&w), 5);
        // Pretend that batch was received 8 days ago; new ones arrive now.
        w.connection()
            .execute("UPDATE batches SET received = received - 8 * 86400", [])
            .unwrap();
        w.commit_batch("s", &(5..8).map(event).collect::<Vec<_>>(), &[], None)
            .unwrap();
        assert_eq!(
            w.prune(0, super::super::unix_now()).unwrap(),
            0,
            "0 keeps forever"
        );
        assert_eq!(w.prune(7, super::super::unix_now()).unwrap(), 5);
        assert_eq!(count(&w), 3);
    }

    #[test]
    fn status_since_changes_only_with_state() {
        let (_d, mut w) = writer();
        w.set_status("s", "ok", "").unwrap();
        w.connection()
            .execute("UPDATE source_status SET since = 1", [])
            .unwrap();
        w.set_status("s", "ok", "still fine").unwrap();
        let since: i64 = w
            .connection()
            .query_row("SELECT since FROM source_status", [], |r| r.get(0))
            .unwrap();
        assert_eq!(since, 1);
        w.set_status("s", "fault", "gone").unwrap();
        let since: i64 = w
            .connection()
            .query_row("SELECT since FROM source_status", [], |r| r.get(0))
            .unwrap();
        assert!(since > 1);
    }
}
