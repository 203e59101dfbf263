//! Gerrit's `replication_log` and `pull_replication_log`: records of `[TS] MESSAGE [CONTEXT ...]`
//! with multi-line stack traces after them, in every layout of gerrit.md §4: current (Flogger
//! context suffix), <= 3.1 (`[TS] [ID] MESSAGE`), 3.2-3.4, pull (`[ID] ...` messages, no
//! context) and the JSON variant (`{"timestamp":...,"message":...}`). Server-local timestamps
//! are read in a configured zone. The push id (`pushOneId`, or the `[ID]` a line names) becomes
//! the correlation id, so one push can be followed from scheduling to completion.

use chrono::{DateTime, NaiveDateTime};

pub use crate::model::LogZone;
use crate::model::{Event, Severity, Timestamp};

/// One log record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    pub timestamp: Timestamp,
    pub message: String,
    /// The `[CONTEXT k="v" ...]` pairs.
    pub context: Vec<(String, String)>,
    /// The id column of the <= 3.1 layout.
    pub legacy_id: Option<String>,
    /// Continuation lines (a stack trace).
    pub trace: Vec<String>,
}

/// Whether `line` starts a record (anything else continues the one before it).
pub fn is_record_start(line: &str) -> bool {
    let b = line.as_bytes();
    (b.len() > 5 && b[0] == b'[' && b[1..5].iter().all(u8::is_ascii_digit) && b[5] == b'-')
        || line.starts_with("{\"")
}

/// Reads the first line of a record.
pub fn parse_record_start(line: &str, zone: &LogZone) -> Result<LogRecord, String> {
    if line.starts_with('{') {
        return parse_json_record(line, zone);
    }
    let close = line
        .find("] ")
        .or_else(|| line.strip_suffix(']').map(|s| s.len()))
        .ok_or_else(|| "no ']' after the timestamp".to_string())?;
    let ts_text = &line[1..close];
    let local = fast_timestamp(ts_text)
        .ok_or(())
        .or_else(|_| NaiveDateTime::parse_from_str(ts_text, "%Y-%m-%d %H:%M:%S,%3f"))
        .or_else(|_| NaiveDateTime::parse_from_str(ts_text, "%Y-%m-%d %H:%M:%S%.f"))
        .map_err(|_| format!("timestamp '{ts_text}' is not yyyy-MM-dd HH:mm:ss,SSS"))?;
    let timestamp = zone.to_utc(local).ok_or_else(|| {
        format!(
            "timestamp '{ts_text}' does not exist in the log's zone or is out of range (1677-2262)"
        )
    })?;
    let mut rest = line.get(close + 2..).unwrap_or_default();
    // <= 3.1: `[ID] ` (or `[] `) right after the timestamp.
    let mut legacy_id = None;
    if let Some(after) = rest.strip_prefix("[] ") {
        rest = after;
    } else if rest.len() > 10
        && rest.starts_with('[')
        && rest.as_bytes()[9] == b']'
        && rest[1..9].bytes().all(|b| b.is_ascii_hexdigit())
        && rest[10..].starts_with(' ')
        && !rest[10..].trim_start().starts_with("push ")
    {
        legacy_id = Some(rest[1..9].to_string());
        rest = &rest[11..];
    }
    let (message, context) = split_context(rest);
    Ok(LogRecord {
        timestamp,
        message: message.to_string(),
        context,
        legacy_id,
        trace: Vec::new(),
    })
}

/// `yyyy-MM-dd HH:mm:ss,SSS` exactly, read without a format string (the usual layout; anything
/// else, leap seconds included, is left to chrono).
fn fast_timestamp(t: &str) -> Option<NaiveDateTime> {
    let b = t.as_bytes();
    if b.len() != 23 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b',' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if sec > 59 {
        return None;
    }
    Some(date.and_time(chrono::NaiveTime::from_hms_milli_opt(h, mi, sec, ms)?))
}

fn parse_json_record(line: &str, zone: &LogZone) -> Result<LogRecord, String> {
    #[derive(serde::Deserialize)]
    struct J {
        timestamp: String,
        message: String,
    }
    let j: J = serde_json::from_str(line).map_err(|e| format!("invalid JSON log line: {e}"))?;
    let timestamp = DateTime::parse_from_str(&j.timestamp, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .ok()
        .and_then(|d| Timestamp::from_datetime(&d))
        .or_else(|| crate::model::parse_rfc3339(&j.timestamp).ok())
        .or_else(|| {
            NaiveDateTime::parse_from_str(&j.timestamp, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .and_then(|l| zone.to_utc(l))
        })
        .ok_or_else(|| format!("timestamp '{}' is not readable", j.timestamp))?;
    let (message, context) = split_context(&j.message);
    Ok(LogRecord {
        timestamp,
        message: message.to_string(),
        context,
        legacy_id: None,
        trace: Vec::new(),
    })
}

/// The pairs of a line that is only a `[CONTEXT k="v" ... ]` suffix: Flogger writes it on a
/// line of its own after a message that has a newline or is over 1,000 characters (and after
/// its stack trace).
pub fn context_line(line: &str) -> Option<Vec<(String, String)>> {
    let t = line.trim();
    if !(t.starts_with("[CONTEXT") && t.ends_with(']')) {
        return None;
    }
    let (rest, pairs) = split_context(t);
    rest.is_empty().then_some(pairs)
}

/// Splits ` [CONTEXT k="v" ... ]` off the end of a message (also when it follows a newline, as
/// in a JSON record of a multi-line message).
fn split_context(text: &str) -> (&str, Vec<(String, String)>) {
    let Some(at) = text
        .rfind("[CONTEXT")
        .filter(|&i| i == 0 || text[..i].ends_with(char::is_whitespace))
    else {
        return (text.trim_end(), Vec::new());
    };
    let mut pairs = Vec::new();
    let mut s = &text[at + "[CONTEXT".len()..];
    loop {
        s = s.trim_start();
        if s.is_empty() || s.starts_with(']') {
            break;
        }
        let Some(eq) = s.find("=\"") else { break };
        let key = s[..eq].trim().to_string();
        let mut value = String::new();
        let mut chars = s[eq + 2..].char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(n);
                    }
                }
                '"' => {
                    end = Some(eq + 2 + i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        pairs.push((key, value));
        match end {
            Some(e) => s = &s[e..],
            None => break,
        }
    }
    (text[..at].trim_end(), pairs)
}

/// The first word of `s` that is a URI (`scheme://...` or scp-like `user@host:path`).
fn first_uri(s: &str) -> Option<String> {
    s.split_whitespace()
        .map(|w| w.trim_end_matches(['.', ',', ';', ':', ']', ')']))
        .map(|w| w.trim_start_matches(['[', '(']))
        .find(|w| w.contains("://") || (w.contains('@') && w.contains(':') && !w.contains('{')))
        .map(String::from)
}

/// `[0123abcd]` anywhere in `s`: a push id.
fn bracket_id(s: &str) -> Option<String> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(9)).find_map(|i| {
        (b[i] == b'[' && b[i + 9] == b']' && b[i + 1..i + 9].iter().all(|c| c.is_ascii_hexdigit()))
            .then(|| s[i + 1..i + 9].to_string())
    })
}

/// A number just before `unit` in `s` (`completed in 612ms` -> 612 for "ms,"...).
fn number_before(s: &str, marker: &str) -> Option<i64> {
    let at = s.find(marker)?;
    let head = &s[..at];
    let digits: String = head
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

/// What the log said about each push id: its project, URI and refs, from its `scheduled` and
/// `consolidated` lines, so a later error can be joined to the refs it hit. Bounded.
#[derive(Debug, Default)]
pub struct PushIndex {
    pushes: std::collections::HashMap<String, (String, String, Vec<String>)>,
    /// Push ids with a ref rejected since their last `completed in`.
    rejected: std::collections::HashSet<String>,
}

/// How many pushes are remembered before the index starts over.
const PUSH_INDEX_MAX: usize = 50_000;

impl PushIndex {
    /// A push whose refs were rejected still logs `completed in`: that record is an error, so
    /// the push ends with an error-severity event (the summary is left as logged).
    pub fn settle(&mut self, event: &mut Event) {
        let Some(id) = event.correlation_id.as_deref() else {
            return;
        };
        match event.event_type.as_str() {
            "log_ref_failed" if event.severity == Severity::Error => {
                if self.rejected.len() >= PUSH_INDEX_MAX {
                    self.rejected.clear();
                }
                self.rejected.insert(id.to_string());
            }
            "log_completed" if self.rejected.remove(id) => event.severity = Severity::Error,
            _ => {}
        }
    }

    /// Learns from `event` (made from a record) and returns the error notes it carries for the
    /// ref state: the error text, for each ref it hit.
    pub fn notes(&mut self, event: &Event) -> Vec<crate::model::gerrit::RefUpdate> {
        use crate::model::gerrit::{Direction, RefUpdate};
        let kind = event.event_type.as_str();
        let id = event.correlation_id.clone();
        let uri = event.peer_device_id.clone();
        if kind == "log_scheduled" || kind == "log_consolidated" {
            if let (Some(id), Some(uri)) = (id, uri.clone()) {
                // `... => [ID] push URI [r1 r2] ...`: the refs after the URI.
                let refs: Vec<String> = event
                    .summary
                    .split_once(&format!("{uri} ["))
                    .and_then(|(_, rest)| rest.split_once(']'))
                    .map(|(list, _)| list.split_whitespace().map(String::from).collect())
                    .unwrap_or_default();
                let project = event.subject.clone().unwrap_or_default();
                if self.pushes.len() >= PUSH_INDEX_MAX {
                    self.pushes.clear();
                }
                self.pushes.insert(id, (project, uri, refs));
            }
            return Vec::new();
        }
        let error = matches!(
            kind,
            "log_ref_failed" | "log_transport_error" | "log_replication_error" | "log_gave_up"
        );
        if !error {
            return Vec::new();
        }
        let when = event.timestamp.as_nanos().div_euclid(1_000_000_000);
        let note = |project: &str, remote: &str, r: &str| RefUpdate {
            instance: None,
            only_instance: false,
            kind: crate::model::gerrit::UpdateKind::Replication,
            project: project.to_string(),
            remote: remote.to_string(),
            ref_name: r.to_string(),
            direction: if event.category.starts_with("pull") {
                Direction::Pull
            } else {
                Direction::Push
            },
            status: None,
            when,
            detail: Some(event.summary.clone()),
            newer_only: false,
        };
        let known = id.as_deref().and_then(|i| self.pushes.get(i));
        if kind == "log_ref_failed" {
            // The line names its ref; the project comes from the context or the push.
            let project = known.map(|k| k.0.clone());
            return match (project, uri, event.subject.as_deref()) {
                (Some(p), Some(u), Some(r)) => vec![note(&p, &u, r)],
                _ => Vec::new(),
            };
        }
        match known {
            Some((project, remote, refs)) => {
                refs.iter().map(|r| note(project, remote, r)).collect()
            }
            None => Vec::new(),
        }
    }
}

/// The event a record stands for.
pub fn record_event(rec: &LogRecord, pull: bool) -> Event {
    let m = rec.message.as_str();
    let ctx = |k: &str| {
        rec.context
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    // Pull log messages start with their id: `[id] ...`.
    let pull_id = (m.len() > 11 && m.starts_with('[') && m.as_bytes()[9] == b']')
        .then(|| m[1..9].to_string())
        .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()));
    let push_id = ctx("pushOneId")
        .or_else(|| rec.legacy_id.clone())
        .or(pull_id)
        .or_else(|| bracket_id(m));

    use Severity::*;
    // Levels as the plugins' code logs them (gerrit.md §4.2.1): what a person must act on is an
    // error; what the plugin retries or cancels by itself a warning.
    let (kind, severity) = if m.starts_with("scheduling replication") {
        ("log_scheduling", Debug)
    } else if m.starts_with("scheduled ") {
        ("log_scheduled", Debug)
    } else if m.starts_with("consolidated ") {
        ("log_consolidated", Info)
    } else if m.contains("cancelled after maximum number of retries")
        || m.starts_with("Giving up after")
        || m.contains("Terminal failure. Cannot replicate")
    {
        ("log_gave_up", Error)
    } else if m.contains("Running fetch from") {
        // Pull: the second line of an attempt whose `... started for refs` came first.
        ("log_fetch_running", Debug)
    } else if m.contains("Replication to ") && m.ends_with("started...")
        || m.contains("replication from ") && m.contains(" started for refs")
    {
        ("log_started", Debug)
    } else if m.contains(" completed in ") {
        ("log_completed", Info)
    } else if m.starts_with("Push to ") || m.starts_with("Pushing ") {
        ("log_refs", Debug)
    } else if m.starts_with("Failed replicate") || m.contains("] Failed replicate") {
        // Pull: a lock failure is retried.
        let sev = if m.ends_with("result LOCK_FAILURE") {
            Warning
        } else {
            Error
        };
        ("log_ref_failed", sev)
    } else if m.starts_with("Cannot replicate to ") && !m.contains(';')
        || m.contains("Cannot replicate from ")
    {
        ("log_transport_error", Error)
    } else if m.starts_with("Cannot replicate")
        || m.starts_with("Unexpected error during replication")
        || m.starts_with("Missing repository could not be created")
    {
        ("log_replication_error", Error)
    } else if m.starts_with("Cannot delete project")
        || m.starts_with("Error deleting remote repository")
        || m.starts_with("Couldn't perform project deletion")
    {
        ("log_project_deletion_error", Error)
    } else if m.starts_with("Missing repository created") {
        ("log_missing_repository", Warning)
    } else if m.starts_with("Created remote repository")
        || m.starts_with("Created local repository")
    {
        ("log_missing_repository", Info)
    } else if m.contains("was canceled")
        || m.starts_with("Rescheduling replication")
        || m.contains("was canceled and thus won't be rescheduled")
    {
        ("log_rescheduled_or_canceled", Warning)
    } else if m.starts_with("Canceled ") {
        ("log_canceled_at_shutdown", Warning)
    } else if m.starts_with("Deleting project")
        || m.starts_with("Deleted remote repository")
        || m.starts_with("Deleted local repository")
    {
        ("log_project_deletion", Info)
    } else if m.contains("finished but no refs were replicated") {
        ("log_nothing_replicated", Info)
    } else {
        ("log_message", Info)
    };

    let uri = first_uri(m);
    let project = ctx("project").or_else(|| {
        ["scheduling replication ", "scheduled ", "consolidated "]
            .iter()
            .find_map(|p| m.strip_prefix(p))
            .and_then(|r| r.split(":[").next().or_else(|| r.split(':').next()))
            .map(|p| p.trim().to_string())
            .filter(|p| !p.contains(' ') && !p.contains("://"))
    });
    let failed_ref = m
        .split("Failed replicate of ")
        .nth(1)
        .and_then(|r| r.split(" to ").next())
        .map(String::from)
        .or_else(|| {
            m.split(" from ")
                .nth(1)
                .filter(|_| kind == "log_ref_failed")
                .and_then(|r| r.split(':').next())
                .map(String::from)
        });
    let duration = (kind == "log_completed")
        .then(|| number_before(m, "ms, ").or_else(|| number_before(m, "ms")))
        .flatten();
    // Written straight from borrowed parts, fields (and context keys) in sorted order, as a
    // `serde_json::Map` would write them (the later of two equal context keys wins).
    #[derive(serde::Serialize)]
    struct Details<'a> {
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        context: std::collections::BTreeMap<&'a str, &'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        delay_ms: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        retries: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        trace: Option<String>,
    }
    let details = Details {
        context: rec
            .context
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
        delay_ms: number_before(m, "ms delay"),
        retries: number_before(m, " retries"),
        trace: (!rec.trace.is_empty()).then(|| rec.trace.join("\n")),
    };
    let has_details = !details.context.is_empty()
        || details.delay_ms.is_some()
        || details.retries.is_some()
        || details.trace.is_some();
    let mut summary = m.to_string();
    if let Some(first) = rec.trace.first() {
        summary.push_str(": ");
        summary.push_str(first.trim());
    }
    Event {
        timestamp: rec.timestamp,
        source: crate::model::gerrit::SOURCE.into(),
        device_id: None,
        event_type: kind.into(),
        category: if pull {
            "pull_replication_log"
        } else {
            "replication_log"
        }
        .into(),
        severity,
        summary,
        details: has_details
            .then(|| serde_json::to_string(&details).ok())
            .flatten(),
        correlation_id: push_id,
        peer_device_id: uri,
        model_types: None,
        record_count: None,
        duration_ms: duration,
        subject: failed_ref.or(project),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cet() -> LogZone {
        LogZone::parse("Europe/Berlin").unwrap()
    }

    fn rec(line: &str) -> LogRecord {
        parse_record_start(line, &cet()).unwrap()
    }

    /// Found by fuzzing: the input fuzz/gerrit_log saved (its first byte is the target's flags),
    /// a record of the year 9999, overflowed the stack; now a reject naming the timestamp.
    #[test]
    fn a_record_out_of_range_is_rejected() {
        let input = include_bytes!("../../../tests/fixtures/fuzz/gerrit_log-year-9999");
        let line = std::str::from_utf8(&input[1..]).unwrap().trim_end();
        for zone in [LogZone::Utc, cet()] {
            let e = parse_record_start(line, &zone).unwrap_err();
            assert!(
                e.contains("'9999-12-31 23:59:59,999'") && e.contains("out of range"),
                "{e}"
            );
        }
        let json = r#"{"timestamp":"9999-12-31T23:59:59.999","message":"x"}"#;
        assert!(parse_record_start(json, &cet()).is_err());
    }

    #[test]
    fn fast_timestamps_read_as_chrono_reads_them() {
        for t in [
            "2025-03-14 10:30:00,112",
            "1999-12-31 23:59:59,999",
            "2024-02-29 00:00:00,000",
            "2025-02-29 00:00:00,000",
            "2025-03-14 24:00:00,000",
            "2025-03-14 10:30:60,000",
            "2025-03-14 10:30:00.112",
            "2025-03-14 10:30:00,1120",
            "2025-03-14 10:3a:00,112",
            "+025-03-14 10:30:00,112",
        ] {
            let chrono = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S,%3f").ok();
            // None leaves it to chrono (the signed year, the leap second and every error).
            if let Some(fast) = fast_timestamp(t) {
                assert_eq!(Some(fast), chrono, "{t}");
            }
        }
        for t in ["2025-03-14 10:30:00,112", "2024-02-29 00:00:00,000"] {
            assert!(fast_timestamp(t).is_some(), "{t}");
        }
    }

    #[test]
    fn details_are_the_json_a_map_would_write() {
        let r = rec(
            "[2025-03-14 10:30:00,112] Replication to ssh://h/p.git completed in 612ms, 15007ms delay, 2 retries [CONTEXT b=\"2\" a=\"q\\\"uote\" b=\"3\" ]",
        );
        let mut r2 = r.clone();
        r2.trace = vec!["java.io.IOException: x\ty".into(), "\tat y".into()];
        for r in [r, r2] {
            let e = record_event(&r, false);
            let mut want = serde_json::Map::new();
            let c: serde_json::Map<String, serde_json::Value> = r
                .context
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            want.insert("context".into(), c.into());
            want.insert("delay_ms".into(), 15007.into());
            want.insert("retries".into(), 2.into());
            if !r.trace.is_empty() {
                want.insert("trace".into(), r.trace.join("\n").into());
            }
            assert_eq!(
                e.details.as_deref(),
                Some(serde_json::Value::Object(want).to_string().as_str())
            );
        }
        let plain = record_event(&rec("[2025-03-14 10:30:00,112] something else"), false);
        assert_eq!(plain.details, None);
    }

    #[test]
    fn zones() {
        assert_eq!(LogZone::parse("UTC").unwrap(), LogZone::Utc);
        assert!(matches!(
            LogZone::parse("+01:00").unwrap(),
            LogZone::Fixed(_)
        ));
        assert!(matches!(
            LogZone::parse("Europe/Berlin").unwrap(),
            LogZone::Named(_)
        ));
        assert!(LogZone::parse("Mars/Olympus").is_err());
        let local =
            NaiveDateTime::parse_from_str("2025-03-14 10:30:00,112", "%Y-%m-%d %H:%M:%S,%3f")
                .unwrap();
        // 10:30 CET (winter) is 09:30 UTC.
        assert_eq!(
            cet().to_utc(local).map(crate::model::format_rfc3339),
            Some("2025-03-14T09:30:00.112+00:00".into())
        );
        // Summer: CEST, two hours.
        let summer =
            NaiveDateTime::parse_from_str("2025-07-01 12:00:00,000", "%Y-%m-%d %H:%M:%S,%3f")
                .unwrap();
        assert_eq!(
            cet().to_utc(summer).map(crate::model::format_rfc3339),
            Some("2025-07-01T10:00:00+00:00".into())
        );
    }

    #[test]
    fn current_layout_with_context() {
        let r = rec(
            r#"[2025-03-14 10:30:15,738] Replication to ssh://replication@mirror-eu.example.com:29418/platform/core.git completed in 612ms, 15007ms delay, 0 retries [CONTEXT PLUGIN="replication" RECEIVE_ID="platform/core-1" TRACE_ID="17 41" project="platform/core" pushOneId="6c1e0f3a" ]"#,
        );
        assert!(r.message.ends_with("0 retries"), "{}", r.message);
        assert_eq!(r.context.len(), 5);
        assert_eq!(r.context[2], ("TRACE_ID".into(), "17 41".into()));
        let e = record_event(&r, false);
        assert_eq!(e.event_type, "log_completed");
        assert_eq!(e.correlation_id.as_deref(), Some("6c1e0f3a"));
        assert_eq!(e.duration_ms, Some(612));
        assert_eq!(
            e.peer_device_id.as_deref(),
            Some("ssh://replication@mirror-eu.example.com:29418/platform/core.git")
        );
        assert_eq!(e.subject.as_deref(), Some("platform/core"));
        let d: serde_json::Value = serde_json::from_str(e.details.as_deref().unwrap()).unwrap();
        assert_eq!(
            (d["delay_ms"].as_i64(), d["retries"].as_i64()),
            (Some(15007), Some(0))
        );
    }

    #[test]
    fn scheduled_lines_name_their_push_id_and_failures_their_ref() {
        let e = record_event(&rec("[2025-03-14 10:30:00,119] scheduled platform/core:[refs/changes/42/1042/3, refs/changes/42/1042/meta] => [6c1e0f3a] push ssh://r@m:29418/platform/core.git [refs/changes/42/1042/3 refs/changes/42/1042/meta] to run after 15s"), false);
        assert_eq!(
            (e.event_type.as_str(), e.correlation_id.as_deref()),
            ("log_scheduled", Some("6c1e0f3a"))
        );
        assert_eq!(e.subject.as_deref(), Some("platform/core"));
        let e = record_event(
            &rec(
                r#"[2025-03-14 10:30:56,402] Failed replicate of refs/heads/main to https://github.com/example-org/tools-build.git: status REJECTED_NONFASTFORWARD [CONTEXT project="tools/build" pushOneId="0d7b2e55" ]"#,
            ),
            false,
        );
        assert_eq!(e.event_type, "log_ref_failed");
        assert_eq!(
            e.severity,
            Severity::Error,
            "a rejection: the code logs it as an error"
        );
        assert_eq!(e.subject.as_deref(), Some("refs/heads/main"));
        assert_eq!(
            e.peer_device_id.as_deref(),
            Some("https://github.com/example-org/tools-build.git")
        );
        let e = record_event(&rec("[2025-03-14 10:35:35,016] Cannot replicate to file:///mnt/dr/git/tools/build.git; repository not found"), false);
        assert_eq!(
            (e.event_type.as_str(), e.severity),
            ("log_replication_error", Severity::Error)
        );
        let e = record_event(
            &rec(
                "[2025-03-14 10:35:09,440] Replication [3e8d0c52] to ssh://r@m/p.git was canceled",
            ),
            false,
        );
        assert_eq!(e.correlation_id.as_deref(), Some("3e8d0c52"));
    }

    #[test]
    fn older_pull_and_json_layouts() {
        let r = rec("[2020-05-01 12:00:00,001] [0a1b2c3d] Replication to ssh://r@m/p.git completed in 10ms, 5ms delay, 0 retries");
        assert_eq!(r.legacy_id.as_deref(), Some("0a1b2c3d"));
        assert_eq!(
            record_event(&r, false).correlation_id.as_deref(),
            Some("0a1b2c3d")
        );
        let r = rec("[2020-05-01 12:00:00,001] [] Replication to ssh://r@m/p.git started...");
        assert_eq!(r.legacy_id, None);
        assert!(r.message.starts_with("Replication to"));
        let e = record_event(&rec("[2025-03-14 10:30:00,000] [9f8e7d6c] Replication from http://primary:8080/repo1.git completed in 77ms, 12ms delay, 0 retries, E2E 90ms"), true);
        assert_eq!(
            (e.correlation_id.as_deref(), e.duration_ms),
            (Some("9f8e7d6c"), Some(77))
        );
        assert_eq!(e.category, "pull_replication_log");
        let e = record_event(&rec("[2025-03-14 10:30:00,000] [9f8e7d6c] Failed replicate http://primary:8080/repo1.git from refs/heads/x: result LOCK_FAILURE"), true);
        assert_eq!(
            (e.event_type.as_str(), e.subject.as_deref()),
            ("log_ref_failed", Some("refs/heads/x"))
        );
        let j = parse_record_start(r#"{"timestamp":"2025-03-14T10:30:00.112+0100","message":"Replication to ssh://r@m/p.git started... [CONTEXT pushOneId=\"6c1e0f3a\" ]","@version":1}"#, &cet()).unwrap();
        assert_eq!(
            crate::model::format_rfc3339(j.timestamp),
            "2025-03-14T09:30:00.112+00:00"
        );
        assert_eq!(
            record_event(&j, false).correlation_id.as_deref(),
            Some("6c1e0f3a")
        );
    }

    #[test]
    fn record_starts_and_bad_heads() {
        assert!(is_record_start("[2025-03-14 10:30:00,112] x"));
        assert!(is_record_start("{\"timestamp\":1}"));
        assert!(!is_record_start("\tat org.eclipse.jgit.Foo(Foo.java:1)"));
        assert!(!is_record_start(
            "org.eclipse.jgit.errors.TransportException: boom"
        ));
        assert!(parse_record_start("[2025-13-45 99:00:00,000] x", &cet())
            .unwrap_err()
            .contains("timestamp"));
    }

    #[test]
    fn a_trace_joins_its_record() {
        let mut r = rec("[2025-03-14 10:32:06,118] Cannot replicate to ssh://r@m/web/frontend.git [CONTEXT pushOneId=\"e1f20c47\" ]");
        r.trace.push("org.eclipse.jgit.errors.TransportException: ssh://r@m/web/frontend.git: Connection timed out".into());
        r.trace.push("\tat org.eclipse.jgit.Foo(Foo.java:1)".into());
        let e = record_event(&r, false);
        assert_eq!(e.event_type, "log_transport_error");
        assert!(e.summary.ends_with("Connection timed out"), "{}", e.summary);
        let d: serde_json::Value = serde_json::from_str(e.details.as_deref().unwrap()).unwrap();
        assert!(d["trace"].as_str().unwrap().contains("Foo.java:1"));
    }
}
