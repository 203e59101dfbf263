//! The JSON form of an event: what `jsonl` lines, `sd sync events` exports and syncscope's own
//! JSON export share. Both spellings of names are accepted (`event_type`/`eventType`,
//! `state_transition`/`StateTransition`, `info`/`Info`); optional fields may be absent or null.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{canonical_type, parse_rfc3339, Event, Severity};

/// Spacedrive's event types with their default category and severity (format doc, section 2).
const KNOWN_TYPES: &[(&str, &str, Severity)] = &[
    ("state_transition", "lifecycle", Severity::Info),
    ("backfill_session_started", "lifecycle", Severity::Info),
    ("backfill_session_completed", "lifecycle", Severity::Info),
    ("backfill_session_failed", "lifecycle", Severity::Error),
    ("catch_up_session_started", "lifecycle", Severity::Debug),
    ("catch_up_session_completed", "lifecycle", Severity::Debug),
    ("batch_ingestion", "data_flow", Severity::Debug),
    ("backfill_request_sent", "network", Severity::Debug),
    ("backfill_request_received", "network", Severity::Debug),
    ("backfill_response_sent", "network", Severity::Debug),
    ("peer_connected", "network", Severity::Info),
    ("peer_disconnected", "network", Severity::Info),
    ("sync_error", "error", Severity::Error),
];

const KNOWN_CATEGORIES: &[&str] = &["lifecycle", "data_flow", "network", "error"];

/// The category given to an event whose type is unknown and which names none.
pub const DEFAULT_CATEGORY: &str = "other";

#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(borrow, alias = "time")]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "deviceId")]
    device_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "eventType", alias = "type")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "level")]
    severity: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "message")]
    summary: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    details: Option<&'a RawValue>,
    #[serde(borrow, default, alias = "correlationId")]
    correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "peerDeviceId")]
    peer_device_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, alias = "modelTypes")]
    model_types: Option<ModelTypes<'a>>,
    #[serde(default, alias = "recordCount")]
    record_count: Option<i64>,
    #[serde(default, alias = "durationMs")]
    duration_ms: Option<i64>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    subject: Option<Cow<'a, str>>,
}

/// `model_types` as Spacedrive writes it: a comma-separated string or an array of names,
/// read straight into the comma-separated form (no intermediate buffering of the value).
struct ModelTypes<'a>(Cow<'a, str>);

/// One borrowed-when-possible string inside the `model_types` array.
#[derive(Deserialize)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for ModelTypes<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ModelTypes<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(ModelTypes(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(ModelTypes(Cow::Owned(v.to_string())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = String::new();
                while let Some(Name(name)) = seq.next_element()? {
                    if !out.is_empty() {
                        out.push(',');
                    }
                    out.push_str(&name);
                }
                Ok(ModelTypes(Cow::Owned(out)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Why a JSON event could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct WireError(pub String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event's fields as read from any input, before normalisation. Sources that do not read
/// JSON (a `sync.db` row) fill this directly so every input is normalised the same way.
#[derive(Debug, Default)]
pub struct EventFields<'a> {
    pub timestamp: Option<Cow<'a, str>>,
    pub device_id: Option<Cow<'a, str>>,
    pub event_type: Option<Cow<'a, str>>,
    pub category: Option<Cow<'a, str>>,
    pub severity: Option<Cow<'a, str>>,
    pub summary: Option<Cow<'a, str>>,
    /// JSON text (pretty or compact). Text that is not JSON is kept as a JSON string.
    pub details: Option<Cow<'a, str>>,
    /// `details` is known to be valid JSON already (it came out of a JSON parser).
    pub details_is_json: bool,
    pub correlation_id: Option<Cow<'a, str>>,
    pub peer_device_id: Option<Cow<'a, str>>,
    /// Comma-separated.
    pub model_types: Option<Cow<'a, str>>,
    pub record_count: Option<i64>,
    pub duration_ms: Option<i64>,
    pub source: Option<Cow<'a, str>>,
    pub subject: Option<Cow<'a, str>>,
}

/// Reads one JSON event object. `default_source` names the system when the object does not.
pub fn parse_wire_event(bytes: &[u8], default_source: &str) -> Result<Event, WireError> {
    // Validating the whole line once lets the parser skip validating each string.
    let text = std::str::from_utf8(bytes).map_err(|e| {
        WireError(format!(
            "not UTF-8: invalid byte at offset {}",
            e.valid_up_to()
        ))
    })?;
    let w: WireEvent<'_> = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        WireError(if e.is_syntax() || e.is_eof() {
            format!("invalid JSON: {msg}")
        } else {
            msg
        })
    })?;
    let fields = EventFields {
        timestamp: w.timestamp,
        device_id: w.device_id,
        event_type: w.event_type,
        category: w.category,
        severity: w.severity,
        summary: w.summary,
        details: w.details.map(|r| Cow::Borrowed(r.get())),
        details_is_json: true,
        correlation_id: w.correlation_id,
        peer_device_id: w.peer_device_id,
        model_types: w.model_types.map(|m| m.0),
        record_count: w.record_count,
        duration_ms: w.duration_ms,
        source: w.source,
        subject: w.subject,
    };
    build_event(fields, default_source)
}

/// Normalises fields into an [`Event`]: required fields checked, names canonicalised, Spacedrive's
/// defaults applied for a known type's missing category or severity.
pub fn build_event(w: EventFields<'_>, default_source: &str) -> Result<Event, WireError> {
    let ts_text = w
        .timestamp
        .ok_or_else(|| WireError("missing field `timestamp`".into()))?;
    let timestamp = parse_rfc3339(&ts_text).map_err(WireError)?;
    let raw_type = w
        .event_type
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| WireError("missing field `event_type`".into()))?;
    let summary = w
        .summary
        .ok_or_else(|| WireError("missing field `summary`".into()))?;

    let canon = canonical_type(&raw_type);
    let known = KNOWN_TYPES.iter().find(|(name, _, _)| *name == canon);
    let event_type = match known {
        Some((name, _, _)) => (*name).to_string(),
        None => raw_type.into_owned(),
    };
    let severity = match w
        .severity
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) => Severity::parse(s).ok_or_else(|| {
            WireError(format!(
                "unknown severity '{s}' (expected debug, info, warning or error)"
            ))
        })?,
        None => known.map(|k| k.2).unwrap_or(Severity::Info),
    };
    let category = match w
        .category
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(c) => {
            let canon = canonical_type(c);
            match KNOWN_CATEGORIES.iter().find(|k| **k == canon) {
                Some(k) => (*k).to_string(),
                None => c.to_string(),
            }
        }
        None => known.map(|k| k.1).unwrap_or(DEFAULT_CATEGORY).to_string(),
    };
    let details = match w.details.as_deref().map(str::trim) {
        None | Some("") | Some("null") => None,
        Some(text) => Some(compact_json(text, w.details_is_json)),
    };

    Ok(Event {
        timestamp,
        source: w
            .source
            .filter(|s| !s.is_empty())
            .map(Cow::into_owned)
            .unwrap_or_else(|| default_source.to_string()),
        device_id: non_empty(w.device_id),
        event_type,
        category,
        severity,
        summary: summary.into_owned(),
        details,
        correlation_id: non_empty(w.correlation_id),
        peer_device_id: non_empty(w.peer_device_id),
        model_types: non_empty(w.model_types),
        record_count: w.record_count,
        duration_ms: w.duration_ms,
        subject: non_empty(w.subject),
    })
}

fn non_empty(v: Option<Cow<'_, str>>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(Cow::into_owned)
}

/// Details are stored as compact JSON; text that is not JSON is kept as a JSON string.
fn compact_json(text: &str, known_valid: bool) -> String {
    let valid = known_valid || serde_json::from_str::<&RawValue>(text).is_ok();
    if !valid {
        return serde_json::Value::String(text.to_string()).to_string();
    }
    if memchr::memchr3(b'\n', b'\r', b'\t', text.as_bytes()).is_none() {
        return text.to_string();
    }
    minify_json(text)
}

/// Valid JSON text without the whitespace between tokens, keys kept in their order.
fn minify_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// The default severity and category Spacedrive gives an event type, if the type is known.
pub fn known_type_defaults(event_type: &str) -> Option<(&'static str, &'static str, Severity)> {
    let canon = canonical_type(event_type);
    KNOWN_TYPES.iter().find(|(n, _, _)| *n == canon).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacedrive_export_object() {
        let line = br#"{"timestamp":"2025-12-03T10:15:32.5+00:00","device_id":"6f1c","event_type":"batch_ingestion",
            "category":"data_flow","severity":"debug","summary":"Ingested batch","correlation_id":"0b8e",
            "peer_device_id":"a93d","model_types":["entry","tag","location"],"record_count":45000,"duration_ms":28000}"#;
        let e = parse_wire_event(line, "spacedrive").unwrap();
        assert_eq!(e.source, "spacedrive");
        assert_eq!(e.event_type, "batch_ingestion");
        assert_eq!(e.model_types.as_deref(), Some("entry,tag,location"));
        assert_eq!(e.record_count, Some(45000));
        assert_eq!(e.severity, Severity::Debug);
        assert_eq!(e.peer_device_id.as_deref(), Some("a93d"));
    }

    #[test]
    fn pascal_case_names_defaults_and_camel_fields() {
        let line = br#"{"timestamp":"2025-12-03T10:15:00Z","deviceId":"6f1c","eventType":"BackfillSessionFailed",
            "summary":"failed","correlationId":"c1","modelTypes":"entry,tag","details":null}"#;
        let e = parse_wire_event(line, "spacedrive").unwrap();
        assert_eq!(e.event_type, "backfill_session_failed");
        assert_eq!(e.category, "lifecycle");
        assert_eq!(e.severity, Severity::Error);
        assert_eq!(e.device_id.as_deref(), Some("6f1c"));
        assert_eq!(e.correlation_id.as_deref(), Some("c1"));
        assert_eq!(e.details, None);
    }

    #[test]
    fn unknown_type_and_category_kept_as_given() {
        let line = br#"{"timestamp":"2025-12-03T10:15:00Z","event_type":"WatermarkReset","category":"Maintenance",
            "severity":"Warning","summary":"x","source":"gerrit","subject":"refs/heads/main"}"#;
        let e = parse_wire_event(line, "jsonl").unwrap();
        assert_eq!(e.event_type, "WatermarkReset");
        assert_eq!(e.category, "Maintenance");
        assert_eq!(e.severity, Severity::Warning);
        assert_eq!(e.source, "gerrit");
        assert_eq!(e.subject.as_deref(), Some("refs/heads/main"));
        assert_eq!(e.device_id, None);
    }

    #[test]
    fn model_types_as_string_array_escaped_or_wrong() {
        let parse = |mt: &str| {
            let line = format!(
                r#"{{"timestamp":"2025-12-03T10:15:00Z","event_type":"x","summary":"s","model_types":{mt}}}"#
            );
            parse_wire_event(line.as_bytes(), "jsonl").map(|e| e.model_types)
        };
        assert_eq!(parse(r#""entry,tag""#), Ok(Some("entry,tag".into())));
        assert_eq!(parse(r#"["entry","tag"]"#), Ok(Some("entry,tag".into())));
        assert_eq!(parse(r#"["en\"try"]"#), Ok(Some("en\"try".into())));
        assert_eq!(parse("[]"), Ok(None));
        assert_eq!(parse("null"), Ok(None));
        let err = parse("42").unwrap_err().0;
        assert!(err.contains("a string or an array of strings"), "{err}");
        assert!(parse("[1]").is_err());
    }

    #[test]
    fn pretty_details_keep_their_key_order_and_string_contents() {
        let text = "{\n  \"z\": 1,\n  \"a\": \"x  \\\" y\\n\",\n  \"m\": [1, 2]\n}";
        assert_eq!(
            compact_json(text, true),
            "{\"z\":1,\"a\":\"x  \\\" y\\n\",\"m\":[1,2]}"
        );
    }

    #[test]
    fn pretty_details_are_compacted() {
        let line = b"{\"timestamp\":\"2025-12-03T10:15:00Z\",\"event_type\":\"sync_error\",\"summary\":\"s\",\n\"details\": {\n  \"dropped_count\": 1247\n}}";
        let e = parse_wire_event(line, "spacedrive").unwrap();
        assert_eq!(e.details.as_deref(), Some("{\"dropped_count\":1247}"));
        assert_eq!(e.category, "error");
    }

    #[test]
    fn bad_events_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"event_type\":\"x\",\"summary\":\"s\"}", "missing field `timestamp`"),
            (b"{\"timestamp\":\"2025-12-03T10:15:00Z\",\"event_type\":\"x\",\"summary\":\"\xff\"}", "not UTF-8: invalid byte at offset 64"),
            (b"{\"timestamp\":\"2025-12-03T10:15:00Z\",\"summary\":\"s\"}", "missing field `event_type`"),
            (b"{\"timestamp\":\"2025-12-03T10:15:00Z\",\"event_type\":\"x\"}", "missing field `summary`"),
            (b"{\"timestamp\":\"last tuesday\",\"event_type\":\"x\",\"summary\":\"s\"}", "not RFC 3339"),
            (b"{\"timestamp\":\"2025-12-03T10:15:00Z\",\"event_type\":\"x\",\"summary\":\"s\",\"severity\":\"loud\"}", "unknown severity 'loud'"),
            (b"{\"timestamp\":", "invalid JSON"),
            (b"[1,2]", "invalid type"),
            (b"{\"timestamp\":\"2025-12-03T10:15:00Z\",\"event_type\":\"x\",\"summary\":\"s\",\"record_count\":\"many\"}", "invalid type"),
        ];
        for (input, want) in cases {
            let err = parse_wire_event(input, "jsonl").unwrap_err();
            assert!(
                err.0.contains(want),
                "{:?}: got {}",
                String::from_utf8_lossy(input),
                err.0
            );
        }
    }
}
