use std::io::Write;

use color_eyre::eyre::Result;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::model::{canonical_type, format_rfc3339, format_rfc3339_z, pascal_type, StoredEvent};
use crate::sanitize::one_line;

/// The output formats of `syncscope events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A JSON array with Spacedrive's export field names plus id, source and subject.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// CREATE TABLE sync_event_log + one INSERT per event: `sqlite3 new.db < out.sql`.
    Sql,
    /// Spacedrive's report: title, export time, count, table, newest first.
    Markdown,
    /// Aligned columns for a terminal.
    Table,
}

/// The JSON shape of one event, field order as Spacedrive exports it.
#[derive(Serialize)]
struct JsonEvent<'a> {
    id: i64,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<&'a str>,
    event_type: &'a str,
    category: &'a str,
    severity: &'a str,
    summary: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_device_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_types: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<i64>,
    source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
}

fn json_event(s: &StoredEvent) -> JsonEvent<'_> {
    let e = &s.event;
    let details = e.details.as_deref().map(|d| {
        RawValue::from_string(d.to_string()).unwrap_or_else(|_| {
            // Stored details are JSON; if not, keep the text as a JSON string.
            let quoted = serde_json::Value::String(d.to_string()).to_string();
            RawValue::from_string(quoted).unwrap_or_else(|_| Box::<RawValue>::default())
        })
    });
    JsonEvent {
        id: s.id,
        timestamp: format_rfc3339_z(e.timestamp),
        device_id: e.device_id.as_deref(),
        event_type: &e.event_type,
        category: &e.category,
        severity: e.severity.as_str(),
        summary: &e.summary,
        details,
        correlation_id: e.correlation_id.as_deref(),
        peer_device_id: e.peer_device_id.as_deref(),
        // A list with no name in it (text of commas and spaces) is no list: read back, it is none.
        model_types: Some(e.model_type_list()).filter(|l| !l.is_empty()),
        record_count: e.record_count,
        duration_ms: e.duration_ms,
        source: &e.source,
        subject: e.subject.as_deref(),
    }
}

/// The `sync_event_log` schema of Spacedrive, so an export loads into an empty database.
pub const SQL_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS sync_event_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  timestamp TEXT NOT NULL,
  device_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  category TEXT NOT NULL,
  severity TEXT NOT NULL,
  summary TEXT NOT NULL,
  details TEXT,
  correlation_id TEXT,
  peer_device_id TEXT,
  model_types TEXT,
  record_count INTEGER,
  duration_ms INTEGER
);
CREATE INDEX IF NOT EXISTS idx_sync_event_log_timestamp ON sync_event_log(timestamp);
CREATE INDEX IF NOT EXISTS idx_sync_event_log_type ON sync_event_log(event_type);
CREATE INDEX IF NOT EXISTS idx_sync_event_log_correlation ON sync_event_log(correlation_id);
";

/// A SQL string literal. Text with NUL (which a literal cannot hold) becomes a cast blob.
fn sql_text(out: &mut String, s: &str) {
    if s.contains('\0') {
        out.push_str("CAST(X'");
        for b in s.as_bytes() {
            out.push_str(&format!("{b:02X}"));
        }
        out.push_str("' AS TEXT)");
        return;
    }
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
}

fn sql_opt_text(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => sql_text(out, s),
        None => out.push_str("NULL"),
    }
}

fn sql_opt_int(out: &mut String, v: Option<i64>) {
    match v {
        Some(v) => out.push_str(&v.to_string()),
        None => out.push_str("NULL"),
    }
}

/// A table cell: one line, and a `|` (and the `\\` that could escape it) escaped so the
/// table holds (Spacedrive writes both as they are, which breaks its table).
fn markdown_cell(s: &str) -> String {
    one_line(s).replace('\\', "\\\\").replace('|', "\\|")
}

/// Pads or cuts `s` to exactly `width` characters.
fn fit(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        let mut out = s.to_string();
        out.extend(std::iter::repeat_n(' ', width - n));
        out
    } else {
        let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Writes events one at a time in the chosen format.
pub struct EventWriter<'w> {
    format: Format,
    out: &'w mut dyn Write,
    written: u64,
    line: String,
}

impl<'w> EventWriter<'w> {
    /// Starts the output. `count` is the number of events that will follow (markdown prints it).
    pub fn begin(format: Format, out: &'w mut dyn Write, count: u64) -> Result<Self> {
        Self::begin_at(format, out, count, crate::model::now_utc())
    }

    /// [`EventWriter::begin`] with the export time given.
    pub fn begin_at(
        format: Format,
        out: &'w mut dyn Write,
        count: u64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self> {
        let now = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match format {
            Format::Json => out.write_all(b"[")?,
            Format::Jsonl => {}
            Format::Sql => {
                writeln!(
                    out,
                    "-- Spacedrive sync_event_log export written by syncscope"
                )?;
                writeln!(out, "-- Exported at: {now}")?;
                writeln!(out, "-- Events: {count}")?;
                writeln!(out, "BEGIN TRANSACTION;")?;
                out.write_all(SQL_SCHEMA.as_bytes())?;
            }
            Format::Markdown => {
                // Spacedrive's layout (spacedrive.md section 6), its spellings and its time form.
                writeln!(out, "# Sync Event Log\n")?;
                writeln!(out, "**Exported**: {}", at.to_rfc3339())?;
                writeln!(out, "**Event Count**: {count}\n")?;
                writeln!(out, "| Timestamp | Event Type | Severity | Summary |")?;
                writeln!(out, "|-----------|------------|----------|----------|")?;
            }
            Format::Table => {
                writeln!(
                    out,
                    "{} {} {} {} {} SUMMARY",
                    fit("TIME (UTC)", 23),
                    fit("SOURCE", 10),
                    fit("SEVERITY", 8),
                    fit("TYPE", 26),
                    fit("DEVICE", 8)
                )?;
            }
        }
        Ok(EventWriter {
            format,
            out,
            written: 0,
            line: String::with_capacity(1024),
        })
    }

    pub fn write(&mut self, s: &StoredEvent) -> Result<()> {
        let e = &s.event;
        self.line.clear();
        match self.format {
            Format::Json => {
                self.out
                    .write_all(if self.written == 0 { b"\n " } else { b",\n " })?;
                serde_json::to_writer(&mut *self.out, &json_event(s))?;
            }
            Format::Jsonl => {
                serde_json::to_writer(&mut *self.out, &json_event(s))?;
                self.out.write_all(b"\n")?;
            }
            Format::Sql => {
                let l = &mut self.line;
                l.push_str("INSERT INTO sync_event_log (timestamp, device_id, event_type, category, severity, summary, details, correlation_id, peer_device_id, model_types, record_count, duration_ms) VALUES (");
                sql_text(l, &format_rfc3339(e.timestamp));
                l.push_str(", ");
                sql_text(l, e.device_id.as_deref().unwrap_or(""));
                l.push_str(", ");
                sql_text(l, &e.event_type);
                l.push_str(", ");
                sql_text(l, &e.category);
                l.push_str(", ");
                sql_text(l, e.severity.as_str());
                l.push_str(", ");
                sql_text(l, &e.summary);
                l.push_str(", ");
                sql_opt_text(l, e.details.as_deref());
                l.push_str(", ");
                sql_opt_text(l, e.correlation_id.as_deref());
                l.push_str(", ");
                sql_opt_text(l, e.peer_device_id.as_deref());
                l.push_str(", ");
                sql_opt_text(l, e.model_types.as_deref());
                l.push_str(", ");
                sql_opt_int(l, e.record_count);
                l.push_str(", ");
                sql_opt_int(l, e.duration_ms);
                l.push_str(");\n");
                self.out.write_all(l.as_bytes())?;
            }
            Format::Markdown => {
                writeln!(
                    self.out,
                    "| {} | {} | {} | {} |",
                    e.timestamp.to_datetime().format("%Y-%m-%d %H:%M:%S"),
                    markdown_cell(&pascal_type(&canonical_type(&e.event_type))),
                    pascal_type(e.severity.as_str()),
                    markdown_cell(&e.summary)
                )?;
            }
            Format::Table => {
                let time = e.timestamp.to_datetime().format("%Y-%m-%d %H:%M:%S%.3f");
                let device = e.device_id.as_deref().unwrap_or("-");
                writeln!(
                    self.out,
                    "{} {} {} {} {} {}",
                    fit(&time.to_string(), 23),
                    fit(&one_line(&e.source), 10),
                    fit(e.severity.as_str(), 8),
                    fit(&one_line(&e.event_type), 26),
                    fit(&one_line(device), 8),
                    one_line(&e.summary)
                )?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Pushes what was written so far to the output (for following).
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    pub fn finish(self) -> Result<u64> {
        match self.format {
            Format::Json if self.written == 0 => self.out.write_all(b"]\n")?,
            Format::Json => self.out.write_all(b"\n]\n")?,
            Format::Sql => self.out.write_all(b"COMMIT;\n")?,
            _ => {}
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Severity, Timestamp};

    fn stored(summary: &str) -> StoredEvent {
        StoredEvent {
            id: 7,
            key: 1,
            event: Event {
                timestamp: Timestamp::from_nanos(1_764_756_932_500_000_000),
                source: "spacedrive".into(),
                device_id: Some("6f1c".into()),
                event_type: "batch_ingestion".into(),
                category: "data_flow".into(),
                severity: Severity::Debug,
                summary: summary.into(),
                details: Some("{\"a\":1}".into()),
                correlation_id: Some("0b8e".into()),
                peer_device_id: None,
                model_types: Some("entry,tag".into()),
                record_count: Some(45000),
                duration_ms: Some(28000),
                subject: None,
            },
        }
    }

    fn render(format: Format, events: &[StoredEvent]) -> String {
        let mut buf = Vec::new();
        let mut w = EventWriter::begin(format, &mut buf, events.len() as u64).unwrap();
        for e in events {
            w.write(e).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(buf).unwrap()
    }

    /// Found by the fuzz target jsonl_event (its input is the fixture): `model_types` of only
    /// commas and spaces was exported as `[]`, which reads back as none, so an export of the
    /// export differed. No names: no `model_types`.
    #[test]
    fn model_types_without_a_name_are_left_out() {
        let input =
            include_bytes!("../../tests/fixtures/fuzz/jsonl_event-model-types-of-commas.json");
        let e = crate::model::parse_wire_event(input, "jsonl").unwrap();
        assert_eq!(e.model_types.as_deref(), Some(" , "));
        let export = |e: &Event| {
            let mut out = Vec::new();
            let mut w = EventWriter::begin(Format::Jsonl, &mut out, 1).unwrap();
            w.write(&StoredEvent {
                id: 1,
                key: 0,
                event: e.clone(),
            })
            .unwrap();
            w.finish().unwrap();
            String::from_utf8(out).unwrap()
        };
        let text = export(&e);
        assert!(!text.contains("model_types"), "{text}");
        let back = crate::model::parse_wire_event(text.trim_end().as_bytes(), "jsonl").unwrap();
        assert_eq!(export(&back), text);
    }

    #[test]
    fn json_uses_spacedrive_names_and_parses() {
        let out = render(Format::Json, &[stored("a"), stored("b")]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let first = &v[0];
        assert_eq!(first["timestamp"], "2025-12-03T10:15:32.500Z");
        assert_eq!(first["model_types"], serde_json::json!(["entry", "tag"]));
        assert_eq!(first["details"]["a"], 1);
        assert_eq!(first["source"], "spacedrive");
        assert_eq!(first["id"], 7);
        assert!(
            first.get("peer_device_id").is_none(),
            "empty optional fields are omitted"
        );
        assert_eq!(render(Format::Json, &[]).trim(), "[]");
        // What syncscope exports, syncscope (and any Spacedrive reader) reads back.
        let back = crate::model::parse_wire_event(first.to_string().as_bytes(), "x").unwrap();
        assert_eq!(back, stored("a").event);
    }

    #[test]
    fn sql_quotes_and_loads() {
        let evil = "it's \"quoted\"; DROP TABLE x; --\nsecond line \0 nul";
        let out = render(Format::Sql, &[stored(evil), stored("plain")]);
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(&out).unwrap();
        let got: Vec<String> = c
            .prepare("SELECT summary FROM sync_event_log ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got, vec![evil.to_string(), "plain".to_string()]);
    }

    #[test]
    fn markdown_escapes_pipes_and_newlines() {
        let out = render(Format::Markdown, &[stored("a | b\nc")]);
        assert!(out.starts_with("# Sync Event Log"));
        assert!(out.contains("**Event Count**: 1"));
        assert!(out.contains("| Timestamp | Event Type | Severity | Summary |"));
        assert!(out.contains("| a \\| b c |"), "{out}");
    }

    #[test]
    fn markdown_is_spacedrive_s_layout() {
        let at = chrono::DateTime::from_timestamp_nanos(1_764_760_000_123_456_789);
        let mut newest = stored("Ready → Paused");
        newest.event.timestamp = Timestamp::from_nanos(1_764_757_201_000_000_000);
        newest.event.event_type = "state_transition".into();
        newest.event.severity = Severity::Info;
        let mut older = stored("Backfill failed: peer 'nas' went offline | retry later");
        older.event.event_type = "BackfillSessionFailed".into();
        older.event.severity = Severity::Error;
        let mut buf = Vec::new();
        let mut w = EventWriter::begin_at(Format::Markdown, &mut buf, 2, at).unwrap();
        w.write(&newest).unwrap();
        w.write(&older).unwrap();
        w.finish().unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "# Sync Event Log\n\n\
             **Exported**: 2025-12-03T11:06:40.123456789+00:00\n\
             **Event Count**: 2\n\n\
             | Timestamp | Event Type | Severity | Summary |\n\
             |-----------|------------|----------|----------|\n\
             | 2025-12-03 10:20:01 | StateTransition | Info | Ready → Paused |\n\
             | 2025-12-03 10:15:32 | BackfillSessionFailed | Error | Backfill failed: peer 'nas' went offline \\| retry later |\n"
        );
    }

    #[test]
    fn sql_insert_lines_are_spacedrive_s_byte_for_byte() {
        // The line Spacedrive's `--format sql` writes for this event (spacedrive.md section 6):
        // to_rfc3339() time, snake_case names, compact details, model types comma-joined.
        let out = render(Format::Sql, &[stored("it's done")]);
        let want = "INSERT INTO sync_event_log (timestamp, device_id, event_type, category, severity, summary, details, correlation_id, peer_device_id, model_types, record_count, duration_ms) VALUES ('2025-12-03T10:15:32.500+00:00', '6f1c', 'batch_ingestion', 'data_flow', 'debug', 'it''s done', '{\"a\":1}', '0b8e', NULL, 'entry,tag', 45000, 28000);\n";
        assert!(out.contains(want), "{out}");
        let mut bare = stored("x");
        bare.event.details = None;
        bare.event.correlation_id = None;
        bare.event.model_types = None;
        bare.event.record_count = None;
        bare.event.duration_ms = None;
        bare.event.timestamp = Timestamp::from_nanos(1_764_756_900_000_000_000);
        let out = render(Format::Sql, &[bare]);
        assert!(out.contains("VALUES ('2025-12-03T10:15:00+00:00', '6f1c', 'batch_ingestion', 'data_flow', 'debug', 'x', NULL, NULL, NULL, NULL, NULL, NULL);\n"), "{out}");
    }

    #[test]
    fn table_is_aligned_and_sanitized() {
        let out = render(Format::Table, &[stored("x\x1b[31mred"), stored("ok")]);
        assert!(!out.contains('\x1b'));
        let lines: Vec<&str> = out.lines().collect();
        let col = |l: &str| l.find("debug").unwrap();
        assert_eq!(col(lines[1]), col(lines[2]));
        assert!(lines[1].contains("2025-12-03 10:15:32.500"));
    }
}
