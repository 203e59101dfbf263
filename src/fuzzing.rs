//! Entry points for the fuzz targets in `fuzz/` (not an API): the parsers that read outside
//! input and are private to their sources, each behind the smallest wrapper that runs it as
//! the source does. Public parsers are called by the targets directly.

use rusqlite::types::Value;
use tokio::sync::mpsc;

use crate::ingest::{SourceCtx, SourceMsg};
use crate::model::{build_event, Event, Reject};

pub use crate::sources::gerrit::rest::fuzz_answers as gerrit_rest_answers;
pub use crate::sources::gitlab::scan::fuzz_payloads as gitlab_payloads;

/// What an export of Spacedrive (`sd sync events`, either shape: a JSON array or one object
/// per line) gives when read by the `spacedrive-export` source: the events and rejects of
/// every batch it sent, or the error that ended it. `device` is the source's `device=`.
pub fn spacedrive_export(
    bytes: &[u8],
    device: Option<&str>,
) -> Result<(Vec<Event>, Vec<Reject>), String> {
    // Room for every batch of an input the fuzzer makes (batches of 100 events or 2 MiB).
    let (tx, mut rx) = mpsc::channel(bytes.len() / 8 + 16);
    let ctx = SourceCtx::for_test("spacedrive-export:fuzz", true, tx);
    let result = crate::sources::spacedrive::export::read_export(
        &ctx,
        bytes,
        "fuzz.json",
        device,
        Some("{}".into()),
    );
    drop(ctx);
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    while let Ok(msg) = rx.try_recv() {
        if let SourceMsg::Batch(b) = msg {
            if b.keys.len() != b.events.len() {
                return Err(format!(
                    "{} keys for {} events",
                    b.keys.len(),
                    b.events.len()
                ));
            }
            events.extend(b.events);
            rejects.extend(b.rejects);
        }
    }
    result.map_err(|e| format!("{e:#}"))?;
    Ok((events, rejects))
}

/// One `sync_event_log` row holding `values` (any storage class: a foreign or damaged database
/// may hold anything; a blob whose `as_text` is set is stored as TEXT of those bytes, valid
/// UTF-8 or not), decoded as the `spacedrive-db` source decodes it: the event, or the reason
/// the row is rejected with its excerpt.
pub fn spacedrive_row(
    values: &[Value; 12],
    as_text: &[bool; 12],
) -> rusqlite::Result<Result<Event, (String, String)>> {
    let conn = rusqlite::Connection::open_in_memory()?;
    // No declared types: each value keeps the storage class it was written with.
    conn.execute_batch(
        "CREATE TABLE sync_event_log (id INTEGER PRIMARY KEY, timestamp, device_id, event_type,
         category, severity, summary, details, correlation_id, peer_device_id, model_types,
         record_count, duration_ms)",
    )?;
    let params: Vec<String> = (1..=12)
        .map(|i| match as_text[i - 1] {
            true => format!("CAST(?{i} AS TEXT)"),
            false => format!("?{i}"),
        })
        .collect();
    conn.execute(
        &format!(
            "INSERT INTO sync_event_log VALUES (1, {})",
            params.join(", ")
        ),
        rusqlite::params_from_iter(values.iter()),
    )?;
    let mut st = conn.prepare(
        "SELECT id, timestamp, device_id, event_type, category, severity, summary, details,
                correlation_id, peer_device_id, model_types, record_count, duration_ms
         FROM sync_event_log",
    )?;
    let mut rows = st.query([])?;
    let Some(row) = rows.next()? else {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    };
    use crate::sources::spacedrive::db::{row_excerpt, row_fields};
    Ok(row_fields(row)
        .and_then(|f| build_event(f, crate::sources::spacedrive::SOURCE_NAME).map_err(|e| e.0))
        .map_err(|reason| (reason, row_excerpt(row))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ELEMENT: &str =
        r#"{"timestamp":"2025-12-03T10:15:00.123Z","event_type":"sync_error","summary":"boom"}"#;

    #[test]
    fn an_export_reads_in_both_shapes() {
        let array = format!("[{ELEMENT},{ELEMENT}, 7]");
        let (events, rejects) = spacedrive_export(array.as_bytes(), Some("dev-a")).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].device_id.as_deref(), Some("dev-a"));
        assert_eq!(rejects.len(), 1, "{rejects:?}");
        let lines = format!("{ELEMENT}\n{ELEMENT}\n");
        let (as_lines, none) = spacedrive_export(lines.as_bytes(), Some("dev-a")).unwrap();
        assert_eq!((as_lines, none.len()), (events[..2].to_vec(), 0));
    }

    #[test]
    fn a_row_decodes_as_the_source_decodes_it() {
        let text = |s: &str| Value::Text(s.into());
        let mut values: [Value; 12] = std::array::from_fn(|_| Value::Null);
        values[0] = text("2025-12-03T10:15:00.123+00:00");
        values[2] = text("SyncError");
        values[5] = text("boom");
        values[10] = text(" 12 ");
        let e = spacedrive_row(&values, &[false; 12]).unwrap().unwrap();
        assert_eq!(
            (e.event_type.as_str(), e.record_count),
            ("sync_error", Some(12))
        );
        // Bytes that are not UTF-8, stored as TEXT: rejected, with the row's excerpt.
        values[5] = Value::Blob(vec![b'a', 0xff]);
        let mut as_text = [false; 12];
        as_text[5] = true;
        let (reason, excerpt) = spacedrive_row(&values, &as_text).unwrap().unwrap_err();
        assert_eq!(reason, "column summary is not valid UTF-8");
        assert!(excerpt.contains("SyncError|"), "{excerpt}");
    }
}
