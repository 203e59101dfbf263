//! How events go in, each once: multi-row `INSERT OR IGNORE`s with fresh ids, and for the
//! rows that did not go in, the one-at-a-time path that tells a duplicate from a hash
//! collision (and attributes a device to an event stored without one). Called by the writer
//! inside its transaction.

use std::collections::HashMap;
use std::sync::OnceLock;

use color_eyre::eyre::Result;
use rusqlite::{params, OptionalExtension, ToSql, Transaction};

use super::interner::{Interner, Slot};
use super::schema;
use super::textindex::Indexer;
use super::writer::BatchOutcome;
use crate::model::{canonical_type, Event};

/// Hash collisions with different content are resolved by probing the next keys.
const MAX_PROBES: i64 = 64;
/// The insert of one event.
pub const INSERT_EVENT_SQL: &str = "INSERT OR IGNORE INTO events (id, ts, key, source, device, event_type, category, severity, summary, details, corr, peer, model_types, record_count, duration_ms, subject) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

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
pub(super) struct Tally {
    pub(super) out: BatchOutcome,
    pub(super) max_event: i64,
    /// `(minute, source id, severity)` -> events stored.
    pub(super) counts: HashMap<(i64, i64, i64), i64>,
    /// The store id of each event of the batch that was stored (None: already there).
    pub(super) ids: Vec<Option<i64>>,
    /// (event id, device id) of events stored before that got their device now.
    pub(super) attributed: Vec<(i64, i64)>,
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
pub(super) fn insert_events(
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
    use crate::model::Event;
    use crate::store::writer::tests::{count, counted, event, scalar, writer};

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
        let m = crate::store::textindex::find(w.connection(), "attributed-later").unwrap();
        assert_eq!(m.string_ids.len(), 1);
        assert_eq!(
            m.ranges,
            Some(vec![(0, 4095)]),
            "block 0 holds the device now"
        );
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
}
