//! The Rust half of the schema step that changed Spacedrive events' identity: their dedup key
//! no longer holds the device (a default `sd sync events` export names none), so every stored
//! Spacedrive event is keyed again, and the events a device's `sync.db` and its export stored
//! twice under the old keys become one (keeping the device, and the first stored id).

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::model::{canonical_type, Event, Severity, Timestamp};

/// Rows read per step (bounded memory for any store size).
const CHUNK: i64 = 50_000;
/// Collisions of the 64-bit key probed past before giving up (as the writer does).
const MAX_PROBES: i64 = 64;

/// One stored row, as far as its identity goes.
struct Row {
    id: i64,
    ts: i64,
    key: i64,
    device: Option<i64>,
    corr: Option<i64>,
    corr_text: Option<String>,
    event_type: String,
    summary: String,
    severity: i64,
}

/// Keys every event of source `spacedrive` again; merges the ones that are one event.
pub fn rekey_spacedrive(tx: &Transaction<'_>) -> Result<()> {
    let source: Option<i64> = tx
        .query_row(
            "SELECT id FROM string_ids WHERE text = ?1",
            [crate::sources::spacedrive::SOURCE_NAME],
            |r| r.get(0),
        )
        .optional()?;
    let Some(source) = source else {
        return Ok(());
    };
    let mut after = i64::MIN;
    loop {
        let rows = read_chunk(tx, source, after)?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for row in &rows {
            rekey_one(tx, source, row)
                .wrap_err_with(|| format!("cannot key event {} again", row.id))?;
        }
    }
    tx.execute("DELETE FROM event_counts WHERE n <= 0", [])?;
    Ok(())
}

fn read_chunk(tx: &Transaction<'_>, source: i64, after: i64) -> Result<Vec<Row>> {
    let mut st = tx.prepare_cached(
        "SELECT e.id, e.ts, e.key, e.device, e.corr, c.text, t.text, e.summary, e.severity
         FROM events e JOIN strings t ON t.id = e.event_type LEFT JOIN strings c ON c.id = e.corr
         WHERE e.source = ?1 AND e.id > ?2 ORDER BY e.id LIMIT ?3",
    )?;
    let rows = st
        .query_map(params![source, after, CHUNK], |r| {
            Ok(Row {
                id: r.get(0)?,
                ts: r.get(1)?,
                key: r.get(2)?,
                device: r.get(3)?,
                corr: r.get(4)?,
                corr_text: r.get(5)?,
                event_type: r.get(6)?,
                summary: r.get(7)?,
                severity: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The row's key as the writer now computes it (occurrence 0: the old store held each content once
/// per device).
fn new_key(row: &Row) -> i64 {
    let mut e = Event::new(
        Timestamp::from_nanos(row.ts),
        crate::sources::spacedrive::SOURCE_NAME,
        &row.event_type,
        "",
        Severity::Info,
        row.summary.clone(),
    );
    e.correlation_id = row.corr_text.clone();
    e.dedup_key()
}

/// A stored row's id, device, correlation id, summary and type text.
type Stored = (i64, Option<i64>, Option<i64>, String, String);

fn rekey_one(tx: &Transaction<'_>, source: i64, row: &Row) -> Result<()> {
    let mut key = new_key(row);
    for _ in 0..MAX_PROBES {
        if key == row.key {
            return Ok(());
        }
        let other: Option<Stored> = tx
            .prepare_cached(
                "SELECT e.id, e.device, e.corr, e.summary, t.text FROM events e
                 JOIN strings t ON t.id = e.event_type
                 WHERE e.ts = ?1 AND e.key = ?2 AND e.source = ?3",
            )?
            .query_row(params![row.ts, key, source], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let taken: bool = other.is_some()
            || tx
                .prepare_cached("SELECT 1 FROM events WHERE ts = ?1 AND key = ?2")?
                .query_row(params![row.ts, key], |_| Ok(()))
                .optional()?
                .is_some();
        if !taken {
            tx.prepare_cached("UPDATE events SET key = ?2 WHERE id = ?1")?
                .execute(params![row.id, key])?;
            return Ok(());
        }
        if let Some((id, device, corr, summary, ty)) = other {
            let same_device = device == row.device || device.is_none() || row.device.is_none();
            let same = same_device
                && corr == row.corr
                && summary == row.summary
                && canonical_type(&ty) == canonical_type(&row.event_type);
            if same {
                merge(tx, source, row, id, device)?;
                return Ok(());
            }
        }
        key = key.wrapping_add(1);
    }
    color_eyre::eyre::bail!(
        "{MAX_PROBES} dedup-key collisions in a row at timestamp {}",
        row.ts
    )
}

/// `row` is the event already stored as `kept`: one row, with the device either names.
fn merge(
    tx: &Transaction<'_>,
    source: i64,
    row: &Row,
    kept: i64,
    kept_device: Option<i64>,
) -> Result<()> {
    if kept_device.is_none() && row.device.is_some() {
        tx.prepare_cached("UPDATE events SET device = ?2 WHERE id = ?1")?
            .execute(params![kept, row.device])?;
    }
    tx.prepare_cached("DELETE FROM events WHERE id = ?1")?
        .execute([row.id])?;
    tx.prepare_cached(
        "UPDATE event_counts SET n = n - 1 WHERE minute = ?1 AND source = ?2 AND severity = ?3",
    )?
    .execute(params![
        super::schema::count_bucket(row.ts),
        source,
        row.severity
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::schema;
    use rusqlite::Connection;
    use xxhash_rust::xxh3::Xxh3;

    /// The key a store of schema 5 gave an event: the device was part of it.
    fn old_key(
        source: &str,
        device: Option<&str>,
        ts: i64,
        ty: &str,
        summary: &str,
        corr: Option<&str>,
    ) -> i64 {
        let mut h = Xxh3::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(source.as_bytes());
        field(device.unwrap_or("").as_bytes());
        field(&ts.to_le_bytes());
        field(ty.as_bytes());
        field(summary.as_bytes());
        field(corr.unwrap_or("").as_bytes());
        h.digest() as i64
    }

    #[test]
    fn a_v5_store_keeps_one_row_per_event_with_its_device() {
        let mut c = Connection::open_in_memory().unwrap();
        schema::migrate_to(&mut c, 5).unwrap();
        c.execute_batch(
            "INSERT INTO strings (id, text) VALUES (1, 'spacedrive'), (2, 'dev-a'), (3, 'state_transition'),
               (4, 'lifecycle'), (5, 'jsonl'), (6, 'dev-b'), (7, 'corr-1');",
        )
        .unwrap();
        let t = 1_764_756_900_000_000_000i64;
        // (id, source, device, ts, summary, corr): 1 and 2 are one event (sync.db row, then the
        // default export), 3 and 4 the same text on two devices, 5 a jsonl event, 6 and 7 one
        // event with a correlation id (export first, then the row).
        type Fixture<'a> = (i64, i64, Option<i64>, i64, &'a str, Option<i64>);
        let rows: &[Fixture<'_>] = &[
            (1, 1, Some(2), t, "Ready → Paused", None),
            (2, 1, None, t, "Ready → Paused", None),
            (3, 1, Some(2), t + 1, "same text", None),
            (4, 1, Some(6), t + 1, "same text", None),
            (5, 5, Some(2), t, "Ready → Paused", None),
            (6, 1, None, t + 2, "with corr", Some(7)),
            (7, 1, Some(6), t + 2, "with corr", Some(7)),
        ];
        let text = |id: Option<i64>| match id {
            Some(2) => Some("dev-a"),
            Some(6) => Some("dev-b"),
            Some(7) => Some("corr-1"),
            _ => None,
        };
        for &(id, source, device, ts, summary, corr) in rows {
            let src = if source == 1 { "spacedrive" } else { "jsonl" };
            let key = old_key(
                src,
                text(device),
                ts,
                "state_transition",
                summary,
                text(corr),
            );
            c.execute(
                "INSERT INTO events (id, ts, key, source, device, event_type, category, severity, summary, corr)
                 VALUES (?1, ?2, ?3, ?4, ?5, 3, 4, 1, ?6, ?7)",
                rusqlite::params![id, ts, key, source, device, summary, corr],
            )
            .unwrap();
        }
        c.execute_batch(
            "INSERT INTO event_counts (minute, source, severity, n)
             SELECT ts / 60000000000, source, severity, count(*) FROM events GROUP BY 1, 2, 3;",
        )
        .unwrap();
        schema::migrate(&mut c).unwrap();
        let left: Vec<(i64, Option<i64>)> = c
            .prepare("SELECT id, device FROM events ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            left,
            vec![
                (1, Some(2)),
                (3, Some(2)),
                (4, Some(6)),
                (5, Some(2)),
                (6, Some(6))
            ]
        );
        let counted: i64 = c
            .query_row("SELECT sum(n) FROM event_counts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(counted, 5);
        // The writer now finds each of them: the export's reading (no device) is stored already.
        let mut w = crate::store::Writer::from_connection(c);
        let mut e = crate::model::Event::new(
            crate::model::Timestamp::from_nanos(t),
            "spacedrive",
            "StateTransition",
            "lifecycle",
            crate::model::Severity::Info,
            "Ready → Paused".into(),
        );
        let out = w
            .commit_batch("x", std::slice::from_ref(&e), &[], None)
            .unwrap();
        assert_eq!((out.inserted, out.duplicates), (0, 1));
        e.device_id = Some("dev-a".into());
        let out = w.commit_batch("x", &[e], &[], None).unwrap();
        assert_eq!((out.inserted, out.duplicates), (0, 1));
    }
}
