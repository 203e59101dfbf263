//! The single writer: a batch of events, its rejects and its source's checkpoint commit in one
//! transaction, so a crash at any instant resumes with nothing lost and nothing twice.

use std::collections::HashMap;
use std::sync::OnceLock;

use rusqlite::ToSql;
use std::path::Path;
use xxhash_rust::xxh3::Xxh3DefaultBuilder;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::interner::{Interner, Slot};
use super::schema;
use super::textindex::Indexer;
use crate::model::ci::CiUpdate;
use crate::model::gerrit::{RefState, RefUpdate};
use crate::model::{canonical_type, Event, Reject};

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

/// One batch as a source sends it.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub source: &'a str,
    pub events: &'a [Event],
    /// `events[i].dedup_key()`.
    pub keys: &'a [i64],
    /// Ref state changes, by the index of the event that carries each: applied in order, and
    /// only for events stored now (an event read twice changes nothing twice).
    pub ref_updates: &'a [(usize, RefUpdate)],
    pub rejects: &'a [Reject],
    pub checkpoint: Option<&'a str>,
    /// GitLab CI state (pipelines, failed jobs, patterns), applied whether or not the events
    /// that report it were stored before (upserts: applying twice changes nothing).
    pub ci: &'a [CiUpdate],
}

pub struct Writer {
    conn: Connection,
    interned: Interner,
    /// Declared after `conn`: dropped after it, so the checkpoint thread's connection is the
    /// last to close and copies back what is left.
    _checkpointer: Option<super::checkpointer::Checkpointer>,
}

/// Rows per multi-row INSERT, largest first: a batch is cut greedily into these. Big
/// statements amortise SQLite's per-statement costs (a multi-row INSERT keeps a statement
/// journal of every page it touches); 1000 rows x 16 parameters stays under SQLite's limit.
const CHUNK_ROWS: [usize; 3] = [1000, 100, 10];
const PARAMS_PER_ROW: usize = 16;

/// One event with its interned ids, ready to bind.
struct Prepared<'e> {
    e: &'e Event,
    /// Its index in the batch.
    idx: usize,
    ts: i64,
    key: i64,
    ids: [Option<i64>; 8],
}

impl Prepared<'_> {
    fn bind(
        &self,
        st: &mut rusqlite::Statement<'_>,
        first: usize,
        id: i64,
    ) -> rusqlite::Result<()> {
        let [source, device, ty, cat, corr, peer, mt, subject] = self.ids;
        let e = self.e;
        let values: [&dyn ToSql; PARAMS_PER_ROW] = [
            &id,
            &self.ts,
            &self.key,
            &source,
            &device,
            &ty,
            &cat,
            &e.severity.rank(),
            &e.summary,
            &e.details,
            &corr,
            &peer,
            &mt,
            &e.record_count,
            &e.duration_ms,
            &subject,
        ];
        for (i, v) in values.iter().enumerate() {
            st.raw_bind_parameter(first + i, v)?;
        }
        Ok(())
    }
}

/// `INSERT OR IGNORE` of `rows` events in one statement (built once per size).
fn multi_insert_sql(rows: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| {
        let head = INSERT_EVENT_SQL
            .split(" VALUES")
            .next()
            .unwrap_or(INSERT_EVENT_SQL);
        let row = format!("({})", vec!["?"; PARAMS_PER_ROW].join(", "));
        CHUNK_ROWS
            .iter()
            .map(|&n| format!("{head} VALUES {}", vec![row.as_str(); n].join(", ")))
            .collect()
    });
    CHUNK_ROWS
        .iter()
        .position(|&n| n == rows)
        .map_or(INSERT_EVENT_SQL, |i| &all[i])
}

/// What a transaction stored so far: outcome, highest id, and the per-minute counts to add.
#[derive(Default)]
struct Tally {
    out: BatchOutcome,
    max_event: i64,
    /// `(minute, source id, severity)` -> events stored.
    counts: HashMap<(i64, i64, i64), i64>,
    /// The store id of each event of the batch that was stored (None: already there).
    ids: Vec<Option<i64>>,
    /// (event id, device id) of events stored before that got their device now.
    attributed: Vec<(i64, i64)>,
}

impl Tally {
    /// `p` went in as event `id`: counted, and added to the text index.
    fn stored(&mut self, index: &mut Indexer<'_>, p: &Prepared<'_>, id: i64) -> Result<()> {
        if let Some(slot) = self.ids.get_mut(p.idx) {
            *slot = Some(id);
        }
        self.out.inserted += 1;
        self.max_event = self.max_event.max(id);
        let source = p.ids[0].unwrap_or(0);
        *self
            .counts
            .entry((schema::count_bucket(p.ts), source, p.e.severity.rank()))
            .or_default() += 1;
        index.add(id, &p.e.summary, &p.ids)
    }
}

/// The next event id: above every id stored or ever used (ids never go back).
fn next_event_id(tx: &Transaction<'_>) -> Result<i64> {
    let max: i64 = tx.query_row(
        "SELECT max(coalesce((SELECT max(id) FROM events), 0), coalesce((SELECT value FROM meta WHERE key = 'event_id_hwm'), 0))",
        [],
        |r| r.get(0),
    )?;
    Ok(max + 1)
}

/// Inserts `events`, each once. Chunks go in one multi-row `INSERT OR IGNORE` each, with
/// consecutive fresh ids: when every row went in (the usual case) that is all; otherwise the
/// ids that made it tell which rows did not, and those take the one-at-a-time path that tells
/// a duplicate from a hash collision.
fn insert_events(
    tx: &Transaction<'_>,
    strings: &mut Interner,
    events: &[Event],
    keys: &[i64],
    tally: &mut Tally,
    index: &mut Indexer<'_>,
) -> Result<()> {
    let mut next_id = next_event_id(tx)?;
    let mut chunk: Vec<Prepared<'_>> = Vec::with_capacity(CHUNK_ROWS[0]);
    let mut stored: Vec<i64> = Vec::with_capacity(CHUNK_ROWS[0]);
    let mut done = 0;
    while done < events.len() {
        let size = CHUNK_ROWS
            .iter()
            .copied()
            .find(|&n| n <= events.len() - done)
            .unwrap_or(1);
        let group = &events[done..done + size];
        let group_keys = &keys[done..done + size];
        let first_idx = done;
        done += size;
        chunk.clear();
        for (k, (e, &key)) in group.iter().zip(group_keys).enumerate() {
            chunk.push(Prepared {
                e,
                idx: first_idx + k,
                ts: e.timestamp.as_nanos(),
                key,
                ids: [
                    Some(strings.id_in(Slot::Source, tx, &e.source)?),
                    strings.id_opt_in(Slot::Device, tx, e.device_id.as_deref())?,
                    Some(strings.id_in(Slot::Type, tx, &e.event_type)?),
                    Some(strings.id_in(Slot::Category, tx, &e.category)?),
                    strings.id_opt_in(Slot::Corr, tx, e.correlation_id.as_deref())?,
                    strings.id_opt_in(Slot::Peer, tx, e.peer_device_id.as_deref())?,
                    strings.id_opt_in(Slot::Models, tx, e.model_types.as_deref())?,
                    strings.id_opt_in(Slot::Subject, tx, e.subject.as_deref())?,
                ],
            });
        }
        if size == 1 {
            insert_one(tx, &chunk[0], next_id, tally, index)?;
            next_id += 1;
            continue;
        }
        let first = next_id;
        next_id += size as i64;
        let n = {
            let mut st = tx.prepare_cached(multi_insert_sql(size))?;
            for (i, p) in chunk.iter().enumerate() {
                p.bind(&mut st, 1 + i * PARAMS_PER_ROW, first + i as i64)?;
            }
            st.raw_execute()?
        };
        if n == size {
            for (i, p) in chunk.iter().enumerate() {
                tally.stored(index, p, first + i as i64)?;
            }
            continue;
        }
        stored.clear();
        let mut q = tx.prepare_cached("SELECT id FROM events WHERE id BETWEEN ?1 AND ?2")?;
        for id in q.query_map(params![first, next_id - 1], |r| r.get::<_, i64>(0))? {
            stored.push(id?);
        }
        for (i, p) in chunk.iter().enumerate() {
            let id = first + i as i64;
            if stored.binary_search(&id).is_ok() {
                tally.stored(index, p, id)?;
            } else {
                insert_one(tx, p, next_id, tally, index)?;
                next_id += 1;
            }
        }
    }
    Ok(())
}

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
fn apply_ref_updates(
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

/// One batch's events, rejects, checkpoint and batch record, inside the caller's transaction;
/// collects the ref updates of the events stored now and the per-minute counts to add.
fn store_batch<'b>(
    tx: &Transaction<'_>,
    strings: &mut Interner,
    b: &Batch<'b>,
    now: i64,
    updates: &mut Vec<(&'b RefUpdate, i64)>,
    counts: &mut HashMap<(i64, i64, i64), i64>,
    index: &mut Indexer<'_>,
) -> Result<BatchOutcome> {
    let Batch {
        source,
        events,
        keys,
        ref_updates,
        rejects,
        checkpoint,
        ci: _,
    } = *b;
    let mut tally = Tally {
        ids: vec![None; events.len()],
        ..Tally::default()
    };
    insert_events(tx, strings, events, keys, &mut tally, index)?;
    for (id, device) in tally.attributed.drain(..) {
        index.add_string(id, device)?;
    }
    for (idx, u) in ref_updates {
        // Only for events stored now: an event read twice changes nothing twice.
        if let Some(Some(event_id)) = tally.ids.get(*idx) {
            updates.push((u, *event_id));
        }
    }
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

/// Inserts one event, or finds it already stored; probes past hash collisions.
fn insert_one(
    tx: &Transaction<'_>,
    p: &Prepared<'_>,
    id: i64,
    tally: &mut Tally,
    index: &mut Indexer<'_>,
) -> Result<()> {
    let mut ins = tx.prepare_cached(INSERT_EVENT_SQL)?;
    let [source, device, _, _, corr, ..] = p.ids;
    let mut probe = Prepared { key: p.key, ..*p };
    for _ in 0..MAX_PROBES {
        probe.bind(&mut ins, 1, id)?;
        if ins.raw_execute()? == 1 {
            tally.stored(index, &probe, id)?;
            return Ok(());
        }
        let found = same_event(
            tx,
            probe.ts,
            probe.key,
            source.unwrap_or(0),
            device,
            corr,
            &p.e.summary,
            p.e,
        )?;
        if let Some(stored_device) = found {
            if stored_device.is_none() && device.is_some() {
                // The same event, now with the device it is from (an export that names none,
                // then the device's sync.db or an export with device data): attribute it.
                let mut st = tx.prepare_cached(
                    "UPDATE events SET device = ?3 WHERE ts = ?1 AND key = ?2 RETURNING id",
                )?;
                let mut rows = st.query(params![probe.ts, probe.key, device])?;
                while let Some(r) = rows.next()? {
                    if let Some(d) = device {
                        tally.attributed.push((r.get(0)?, d));
                    }
                }
            }
            tally.out.duplicates += 1;
            return Ok(());
        }
        // A different event with the same timestamp and hash: try the next key.
        probe.key = probe.key.wrapping_add(1);
    }
    color_eyre::eyre::bail!(
        "{MAX_PROBES} dedup-key collisions in a row at timestamp {}",
        p.ts
    )
}

/// Prepared statements the writer keeps (see `Writer::from_connection`).
const STATEMENT_CACHE: usize = 96;

/// Insert statement shared with the benchmark's ceiling run.
pub const INSERT_EVENT_SQL: &str = "INSERT OR IGNORE INTO events (id, ts, key, source, device, event_type, category, severity, summary, details, corr, peer, model_types, record_count, duration_ms, subject) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

impl Writer {
    /// Opens the store for writing, with WAL checkpoints on a thread of their own.
    pub fn open(path: &Path) -> Result<Self> {
        let mut conn = super::open(path)?;
        // A larger page cache for the writer keeps the index edges hot during bulk ingest.
        conn.execute_batch("PRAGMA cache_size=-16000;")?;
        let checkpointer = super::checkpointer::Checkpointer::start(path, &mut conn)?;
        Ok(Writer {
            _checkpointer: Some(checkpointer),
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
            ref_updates: &[],
            rejects,
            checkpoint,
            ci: &[],
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
            // The ref updates of the events stored now, with their event ids, in order.
            let mut updates: Vec<(&RefUpdate, i64)> = Vec::new();
            for b in batches {
                let out = store_batch(
                    &tx,
                    &mut self.interned,
                    b,
                    now,
                    &mut updates,
                    &mut counts,
                    &mut index,
                )?;
                outs.push(out);
                // CI state reported by these events (upserts that never roll back).
                super::ci::apply(&tx, b.ci)?;
            }
            apply_ref_updates(&tx, &mut self.interned, &updates)?;
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

    /// Deletes events (and batch records and rejects) received more than `days` days before
    /// `now` (Unix seconds). `days == 0` keeps everything. Returns the number of events deleted.
    /// Deletes up to [`PRUNE_CHUNK`] of the oldest-received events with ids up to `upto`, and
    /// takes them out of `event_counts`, in one transaction.
    fn prune_chunk(&mut self, upto: i64) -> Result<u64> {
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
            // Remember the highest id ever used, so ids never go back if the table empties.
            self.conn.execute(
                "INSERT INTO meta (key, value) SELECT 'event_id_hwm', max(id) FROM events HAVING max(id) IS NOT NULL
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                [],
            )?;
            loop {
                let n = self.prune_chunk(upto).wrap_err("cannot prune old events")?;
                deleted += n;
                if n < PRUNE_CHUNK as u64 {
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

/// Is the row stored under (ts, key) the same event as `e` by the dedup definition? If so,
/// `Some(its device)`. For events identified without their device (Spacedrive's), a reading
/// that names no device is the same event as one that does; two different devices are not.
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
) -> Result<Option<Option<i64>>> {
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
            let same_device =
                d == device || (e.device_blind() && (d.is_none() || device.is_none()));
            let same = s == source
                && same_device
                && c == corr
                && sum == summary
                && canonical_type(&ty) == canonical_type(&e.event_type);
            same.then_some(d)
        }
        None => None,
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

    fn scalar(w: &Writer, sql: &str) -> i64 {
        w.connection().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn count(w: &Writer) -> i64 {
        scalar(w, "SELECT count(*) FROM events")
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
    fn a_device_attributed_later_is_found_by_the_text_index() {
        let (_d, mut w) = writer();
        let mut e = event(1);
        e.device_id = None;
        w.commit_batch("s", std::slice::from_ref(&e), &[], None)
            .unwrap();
        e.device_id = Some("dev-attributed-later".into());
        w.commit_batch("s", std::slice::from_ref(&e), &[], None)
            .unwrap();
        assert_eq!(count(&w), 1, "one event, now with its device");
        let m = crate::store::textindex::find(&w.conn, "attributed-later").unwrap();
        assert_eq!(m.string_ids.len(), 1);
        assert_eq!(
            m.ranges,
            Some(vec![(0, 4095)]),
            "block 0 holds the device now"
        );
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
    fn multi_row_chunks_with_duplicates_inside_and_across() {
        let (_d, mut w) = writer();
        // 200 events = 3 full chunks + a tail; every 7th is repeated inside the batch.
        let mut evs: Vec<Event> = (0..180).map(event).collect();
        for i in (0..180).step_by(7) {
            evs.push(event(i));
        }
        let n_dup = evs.len() - 180;
        let out = w.commit_batch("s", &evs, &[], None).unwrap();
        assert_eq!((out.inserted, out.duplicates), (180, n_dup as u64));
        let ids: Vec<i64> = w
            .connection()
            .prepare("SELECT id FROM events ORDER BY ts")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            ids.windows(2).all(|p| p[0] < p[1]),
            "ids grow in receive order"
        );
        let again = w.commit_batch("s", &evs, &[], None).unwrap();
        assert_eq!((again.inserted, again.duplicates), (0, evs.len() as u64));
    }

    fn counted(w: &Writer) -> i64 {
        scalar(w, "SELECT coalesce(sum(n), 0) FROM event_counts")
    }

    #[test]
    fn thousand_row_chunks_with_some_already_stored() {
        let (_d, mut w) = writer();
        // Every 10th event is stored first; then 2,345 events (two 1000-row chunks, three of
        // 100, four of 10, five singles) of which 235 are already there.
        let early: Vec<Event> = (0..2345).step_by(10).map(event).collect();
        w.commit_batch("s", &early, &[], None).unwrap();
        let all: Vec<Event> = (0..2345).map(event).collect();
        let out = w.commit_batch("s", &all, &[], None).unwrap();
        assert_eq!((out.inserted, out.duplicates), (2345 - 235, 235));
        assert_eq!(count(&w), 2345);
        assert_eq!(
            counted(&w),
            2345,
            "per-minute counts follow what was stored"
        );
        let distinct: i64 = scalar(&w, "SELECT count(DISTINCT id) FROM events");
        assert_eq!(distinct, 2345);
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
        use crate::model::gerrit::{Direction, RefStatus};
        // 12 batches of 10 events about 7 refs (some new in each batch, some seen before, in
        // batches of the same and of an earlier transaction), one event stored twice.
        let statuses = [
            Some(RefStatus::Scheduled),
            Some(RefStatus::Failed),
            Some(RefStatus::Scheduled),
            Some(RefStatus::Succeeded),
            None,
        ];
        type Parts = (Vec<Event>, Vec<(usize, RefUpdate)>);
        let batches: Vec<Parts> = (0..12)
            .map(|b| {
                let events: Vec<Event> = (0..10).map(|i| event(b * 10 + i)).collect();
                let updates = (0..10)
                    .map(|i| {
                        let n = (b * 10 + i) as usize;
                        (
                            i as usize,
                            RefUpdate {
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
                        )
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
            ref_updates: &prepared[i].1,
            rejects: &[],
            checkpoint: None,
            ci: &[],
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
        w.interned.recent_rows = Some(schema::RECENT_STRINGS_MAX);
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
