//! The single writer: a batch of events, its rejects and its source's checkpoint commit in one
//! transaction, so a crash at any instant resumes with nothing lost and nothing twice.

use std::collections::HashMap;

use std::path::Path;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::insert::{insert_events, Tally};
use super::interner::Interner;
use super::textindex::Indexer;
use super::update::{Dispatch, StateUpdate};
use crate::model::{Event, Reject};

/// Rows deleted per transaction when pruning, so readers and ingest keep moving.
pub(super) const PRUNE_CHUNK: i64 = 20_000;

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

/// One batch as a source sends it.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub source: &'a str,
    pub events: &'a [Event],
    /// `events[i].dedup_key()`.
    pub keys: &'a [i64],
    /// Derived state changes of any domain (Gerrit refs, CI, relays), each applied by its
    /// domain in the batch's transaction (see [`super::update`]).
    pub updates: &'a [StateUpdate],
    pub rejects: &'a [Reject],
    pub checkpoint: Option<&'a str>,
}

pub struct Writer {
    pub(super) conn: Connection,
    pub(super) interned: Interner,
    /// Declared after `conn`: dropped after it, so the checkpoint thread's connection is the
    /// last to close and copies back what is left.
    _checkpointer: Option<super::checkpointer::Checkpointer>,
    /// One writer per store (store/lock.rs): held until the connections above are closed.
    _lock: Option<super::lock::WriterLock>,
}

/// One batch's events, state updates, rejects, checkpoint and batch record, inside the
/// caller's transaction; collects the per-minute counts to add.
fn store_batch<'b>(
    tx: &Transaction<'_>,
    strings: &mut Interner,
    b: &Batch<'b>,
    now: i64,
    dispatch: &mut Dispatch<'b>,
    counts: &mut HashMap<(i64, i64, i64), i64>,
    index: &mut Indexer<'_>,
) -> Result<BatchOutcome> {
    let Batch {
        source,
        events,
        keys,
        updates,
        rejects,
        checkpoint,
    } = *b;
    let mut tally = Tally {
        ids: vec![None; events.len()],
        ..Tally::default()
    };
    insert_events(tx, strings, events, keys, &mut tally, index)?;
    for (id, device) in tally.attributed.drain(..) {
        index.add_string(id, device)?;
    }
    dispatch.batch(tx, source, updates, &tally.ids)?;
    for (k, n) in tally.counts.drain() {
        *counts.entry(k).or_default() += n;
    }
    let mut rej = tx.prepare_cached(
        "INSERT INTO rejects (source, location, reason, excerpt, received) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (source, location) DO UPDATE SET reason = excluded.reason, excerpt = excluded.excerpt, received = excluded.received",
    )?;
    for r in rejects {
        rej.execute(params![source, r.location, r.reason, r.excerpt, now])?;
        tally.out.rejected += 1;
    }
    if let Some(state) = checkpoint {
        tx.prepare_cached(
            "INSERT INTO checkpoints (source, state, updated) VALUES (?1, ?2, ?3)
             ON CONFLICT (source) DO UPDATE SET state = excluded.state, updated = excluded.updated",
        )?
        .execute(params![source, state, now])?;
    }
    let out = tally.out;
    if out.inserted > 0 || out.rejected > 0 || out.duplicates > 0 {
        let mut max_event = tally.max_event;
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
    Ok(out)
}

/// Prepared statements the writer keeps (see `Writer::from_connection`).
const STATEMENT_CACHE: usize = 96;

pub use super::insert::INSERT_EVENT_SQL;

impl Writer {
    /// Opens the store for writing, with WAL checkpoints on a thread of their own.
    pub fn open(path: &Path) -> Result<Self> {
        let lock = super::lock::acquire(path)?;
        let mut conn = super::open(path)?;
        // A larger page cache for the writer keeps the index edges hot during bulk ingest.
        conn.execute_batch("PRAGMA cache_size=-16000;")?;
        let checkpointer = super::checkpointer::Checkpointer::start(path, &mut conn)?;
        Ok(Writer {
            _checkpointer: Some(checkpointer),
            _lock: Some(lock),
            ..Writer::from_connection(conn)
        })
    }

    /// A writer on `conn` as it is (SQLite checkpoints inside the writer's commits).
    pub fn from_connection(conn: Connection) -> Self {
        // A commit runs some thirty distinct statements (multi-row inserts of several sizes,
        // interning, ref state, counts, the text index): rusqlite keeps 16 by default, and a
        // statement pushed out is parsed again on each commit (2.4% of a Gerrit ingest).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Writer {
            conn,
            interned: Interner::default(),
            _checkpointer: None,
            _lock: None,
        }
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The store's stable id (`meta.store_id`), made on first use: what a `nats:` source names
    /// its durable consumer after, so each store has its own.
    pub fn store_id(&mut self) -> Result<i64> {
        let known: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
                r.get(0)
            })
            .optional()
            .wrap_err("cannot read the store id")?;
        if let Some(id) = known {
            return Ok(id);
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut seed = Vec::with_capacity(32);
        seed.extend_from_slice(&nanos.to_le_bytes());
        seed.extend_from_slice(&std::process::id().to_le_bytes());
        seed.extend_from_slice(&(self as *const Self as usize).to_le_bytes());
        let id = (xxhash_rust::xxh3::xxh3_64(&seed) >> 1) as i64;
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', ?1)",
                [id],
            )
            .wrap_err("cannot save the store id")?;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
                r.get(0)
            })
            .wrap_err("cannot read the store id")
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
        let keys: Vec<i64> = events.iter().map(Event::dedup_key).collect();
        self.commit(&Batch {
            source,
            events,
            keys: &keys,
            updates: &[],
            rejects,
            checkpoint,
        })
    }

    /// Stores a batch whose dedup keys were computed already (on the source's thread), with
    /// the state changes its events carry, atomically.
    pub fn commit(&mut self, b: &Batch<'_>) -> Result<BatchOutcome> {
        Ok(self
            .commit_all(std::slice::from_ref(b))?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Stores several batches in one transaction, in order: all of them or none. A writer that
    /// fell behind catches up with fewer, larger commits (each commit rewrites every page it
    /// touched, and the random ones, such as the text index of `strings`, are touched again
    /// by each). Returns what each batch did.
    pub fn commit_all(&mut self, batches: &[Batch<'_>]) -> Result<Vec<BatchOutcome>> {
        for b in batches {
            if b.keys.len() != b.events.len() {
                color_eyre::eyre::bail!(
                    "{} dedup keys for {} events from {}",
                    b.keys.len(),
                    b.events.len(),
                    b.source
                );
            }
        }
        let result = self.try_commit(batches);
        self.interned.fresh_from = None;
        if result.is_err() {
            // Ids interned inside a rolled-back transaction no longer exist.
            self.interned.forget();
        }
        result.wrap_err_with(|| {
            let mut sources: Vec<&str> = batches.iter().map(|b| b.source).collect();
            sources.dedup();
            format!("cannot store a batch from {}", sources.join(", "))
        })
    }

    fn try_commit(&mut self, batches: &[Batch<'_>]) -> Result<Vec<BatchOutcome>> {
        let now = super::unix_now();
        self.interned.fresh_from = None;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.interned.begin(&tx)?;
        let mut outs = Vec::with_capacity(batches.len());
        let mut index = Indexer::begin(&tx)?;
        {
            // `(minute, source id, severity)` -> events stored, over all batches.
            let mut counts: HashMap<(i64, i64, i64), i64> = HashMap::new();
            let mut dispatch = Dispatch::default();
            for b in batches {
                let out = store_batch(
                    &tx,
                    &mut self.interned,
                    b,
                    now,
                    &mut dispatch,
                    &mut counts,
                    &mut index,
                )?;
                outs.push(out);
            }
            dispatch.finish(&tx, &mut self.interned)?;
            let mut count = tx.prepare_cached(
                "INSERT INTO event_counts (minute, source, severity, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (minute, source, severity) DO UPDATE SET n = n + excluded.n",
            )?;
            for (&(minute, source, severity), &n) in &counts {
                count.execute(params![minute, source, severity, n])?;
            }
        }
        index.finish().wrap_err("cannot update the text index")?;
        self.interned.maybe_merge(&tx)?;
        tx.commit()?;
        Ok(outs)
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

    /// Deletes up to [`PRUNE_CHUNK`] of the oldest-received events with ids up to `upto`, and
    /// takes them out of `event_counts`, in one transaction.
    pub(super) fn prune_chunk(&mut self, upto: i64) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let hi: i64 = tx
            .query_row(
                "SELECT id FROM events WHERE id <= ?1 ORDER BY id LIMIT 1 OFFSET ?2",
                params![upto, PRUNE_CHUNK - 1],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(upto);
        tx.execute(
            "INSERT INTO event_counts (minute, source, severity, n)
             SELECT (ts - ((ts % 60000000000) + 60000000000) % 60000000000) / 60000000000,
                    source, severity, -count(*)
             FROM events WHERE id <= ?1 GROUP BY 1, 2, 3
             ON CONFLICT (minute, source, severity) DO UPDATE SET n = n + excluded.n",
            [hi],
        )?;
        tx.execute("DELETE FROM event_counts WHERE n <= 0", [])?;
        let n = tx.execute("DELETE FROM events WHERE id <= ?1", [hi])?;
        super::textindex::prune(&tx, hi)?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Prunes everything received more than `days` days before `now` (Unix seconds; 0 keeps
    /// everything) (see [`super::retention`]); returns the
    /// number of events deleted.
    pub fn prune(&mut self, days: u32, now: i64) -> Result<u64> {
        Ok(self.prune_span(u64::from(days) * 86_400, now)?.events)
    }
}

#[cfg(test)]
pub(crate) mod tests {
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

    pub(crate) fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::open(&dir.path().join("s.db")).unwrap();
        (dir, w)
    }

    pub(crate) fn scalar(w: &Writer, sql: &str) -> i64 {
        w.connection().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    pub(crate) fn counted(w: &Writer) -> i64 {
        scalar(w, "SELECT coalesce(sum(n), 0) FROM event_counts")
    }

    pub(crate) fn count(w: &Writer) -> i64 {
        scalar(w, "SELECT count(*) FROM events")
    }

    #[test]
    fn rejects_are_recorded_once_per_location() {
        let (_d, mut w) = writer();
        let r = Reject::new("f.jsonl:3", "invalid JSON", b"{oops");
        w.commit_batch("s", &[], std::slice::from_ref(&r), None)
            .unwrap();
        w.commit_batch("s", &[], &[r], None).unwrap();
        let n: i64 = scalar(&w, "SELECT count(*) FROM rejects");
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
    fn retention_drops_the_text_index_of_emptied_blocks_only() {
        let (_d, mut w) = writer();
        let evs: Vec<Event> = (0..5000).map(event).collect();
        w.commit_batch("old", &evs, &[], None).unwrap();
        assert_eq!(scalar(&w, "SELECT count(*) FROM text_blocks"), 2);
        w.conn
            .execute("UPDATE batches SET received = received - 10 * 86400", [])
            .unwrap();
        let later: Vec<Event> = (5000..5010).map(event).collect();
        w.commit_batch("new", &later, &[], None).unwrap();
        w.prune(1, super::super::unix_now()).unwrap();
        assert_eq!(count(&w), 10);
        // Block 0 (ids 1..4095) is gone; block 1 still holds ids 5001..5010.
        assert_eq!(
            scalar(&w, "SELECT min(block) * 10 + count(*) FROM text_blocks"),
            11
        );
        let m = crate::store::textindex::find(&w.conn, &later[3].summary).unwrap();
        assert_eq!(m.ranges, Some(vec![(4096, 8191)]));
    }

    #[test]
    fn ids_never_go_back_even_when_retention_empties_the_store() {
        let (_d, mut w) = writer();
        w.commit_batch("s", &(0..100).map(event).collect::<Vec<_>>(), &[], None)
            .unwrap();
        let max_before: i64 = scalar(&w, "SELECT max(id) FROM events");
        assert_eq!(max_before, 100);
        w.connection()
            .execute("UPDATE batches SET received = received - 30 * 86400", [])
            .unwrap();
        assert_eq!(w.prune(7, super::super::unix_now()).unwrap(), 100);
        assert_eq!(count(&w), 0);
        w.commit_batch("s", &(100..103).map(event).collect::<Vec<_>>(), &[], None)
            .unwrap();
        let min_after: i64 = scalar(&w, "SELECT min(id) FROM events");
        assert!(min_after > max_before, "{min_after} <= {max_before}");
    }

    #[test]
    fn event_counts_follow_duplicates_and_retention() {
        let (_d, mut w) = writer();
        let evs: Vec<Event> = (0..300).map(event).collect();
        w.commit_batch("s", &evs, &[], None).unwrap();
        w.commit_batch("s", &evs[..50], &[], None).unwrap();
        assert_eq!(counted(&w), 300);
        w.connection()
            .execute("UPDATE batches SET received = received - 30 * 86400", [])
            .unwrap();
        w.commit_batch("s", &(300..310).map(event).collect::<Vec<_>>(), &[], None)
            .unwrap();
        assert_eq!(w.prune(7, super::super::unix_now()).unwrap(), 300);
        assert_eq!(count(&w), 10);
        assert_eq!(counted(&w), 10);
        let empty_buckets: i64 = scalar(&w, "SELECT count(*) FROM event_counts WHERE n <= 0");
        assert_eq!(empty_buckets, 0);
    }

    #[test]
    fn string_ids_move_to_the_main_tier_and_keep_answering() {
        let (_d, mut w) = writer();
        let with_corr = |i: i64| {
            let mut e = event(i);
            e.correlation_id = Some(format!("corr-{i}"));
            e
        };
        let first: Vec<Event> = (0..50).map(with_corr).collect();
        w.commit_batch("s", &first, &[], None).unwrap();
        let recent = |w: &Writer| scalar(w, "SELECT count(*) FROM string_ids_recent");
        assert!(recent(&w) >= 50);
        // The next commit finds the recent tier full: it is moved, in the same transaction.
        w.interned.recent_rows = Some(super::super::schema::RECENT_STRINGS_MAX);
        let second: Vec<Event> = (50..60).map(with_corr).collect();
        w.commit_batch("s", &second, &[], None).unwrap();
        assert_eq!(recent(&w), 0);
        let total = scalar(&w, "SELECT count(*) FROM strings");
        assert_eq!(scalar(&w, "SELECT count(*) FROM string_ids_main"), total);
        assert_eq!(
            scalar(&w, "SELECT count(*) FROM strings s JOIN string_ids i ON i.id = s.id AND i.text = s.text"),
            total
        );
        // Read again by a writer that knows nothing: every string is found, nothing new.
        let conn = w.conn;
        let mut again = Writer::from_connection(conn);
        let all: Vec<Event> = (0..60).map(with_corr).collect();
        let out = again.commit_batch("s", &all, &[], None).unwrap();
        assert_eq!((out.inserted, out.duplicates), (0, 60));
        assert_eq!(scalar(&again, "SELECT count(*) FROM strings"), total);
        // A new string gets the next id, in the recent tier.
        again
            .commit_batch("s", &[with_corr(60)], &[], None)
            .unwrap();
        assert_eq!(
            scalar(&again, "SELECT id FROM string_ids WHERE text = 'corr-60'"),
            scalar(&again, "SELECT max(id) FROM strings")
        );
        assert_eq!(scalar(&again, "SELECT count(*) FROM string_ids_recent"), 1);
        let distinct = scalar(&again, "SELECT count(DISTINCT text) FROM strings");
        assert_eq!(distinct, scalar(&again, "SELECT count(*) FROM strings"));
    }

    #[test]
    fn status_since_changes_only_with_state() {
        let (_d, mut w) = writer();
        w.set_status("s", "ok", "").unwrap();
        w.connection()
            .execute("UPDATE source_status SET since = 1", [])
            .unwrap();
        w.set_status("s", "ok", "still fine").unwrap();
        let since: i64 = scalar(&w, "SELECT since FROM source_status");
        assert_eq!(since, 1);
        w.set_status("s", "fault", "gone").unwrap();
        let since: i64 = scalar(&w, "SELECT since FROM source_status");
        assert!(since > 1);
    }
}
