//! The common event model every source is turned into. No I/O here.
//!
//! Field names follow Spacedrive's `sync_event_log` table so that syncscope's JSON export reads
//! like `sd sync events` output; `source` and `subject` are added so other systems fit without
//! schema changes.

pub mod ci;
pub mod fleet;
pub mod gerrit;
pub mod identity;
pub mod names;
pub mod relay;
mod severity;
mod time;
mod wire;
mod zone;

pub use severity::Severity;
pub use time::{
    check_clock_env, format_rfc3339, format_rfc3339_z, now_utc, parse_rfc3339, parse_time_spec,
    Timestamp, NOW_ENV,
};
pub use wire::{build_event, known_type_defaults, parse_wire_event, EventFields, WireError};
pub use zone::LogZone;

use xxhash_rust::xxh3::Xxh3;

/// One event from any system, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened (UTC, nanoseconds since the Unix epoch).
    pub timestamp: Timestamp,
    /// Which system it came from: `spacedrive`, `gerrit`, `ngit`, `gitlab`, `jsonl`, ...
    pub source: String,
    /// The machine or site that logged it.
    pub device_id: Option<String>,
    pub event_type: String,
    pub category: String,
    pub severity: Severity,
    pub summary: String,
    /// A JSON value as compact text.
    pub details: Option<String>,
    pub correlation_id: Option<String>,
    pub peer_device_id: Option<String>,
    /// Comma-separated model names, as in Spacedrive's table (`entry,tag,location`).
    pub model_types: Option<String>,
    pub record_count: Option<i64>,
    pub duration_ms: Option<i64>,
    /// What the event is about: a ref, a relay URL, a pipeline.
    pub subject: Option<String>,
}

/// An event read back from the store, with its store id.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    /// The dedup key under which it is stored; `(timestamp, key)` orders and pages events.
    pub key: i64,
    pub event: Event,
}

impl Event {
    /// An event with only what every event has; the optional fields are set after.
    pub fn new(
        timestamp: Timestamp,
        source: &str,
        event_type: &str,
        category: &str,
        severity: Severity,
        summary: String,
    ) -> Event {
        Event {
            timestamp,
            source: source.into(),
            device_id: None,
            event_type: event_type.into(),
            category: category.into(),
            severity,
            summary,
            details: None,
            correlation_id: None,
            peer_device_id: None,
            model_types: None,
            record_count: None,
            duration_ms: None,
            subject: None,
        }
    }

    /// About how many bytes the event holds in memory (for bounding batches).
    pub fn approx_size(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<Event>()
            + self.source.len()
            + self.event_type.len()
            + self.category.len()
            + self.summary.len()
            + opt(&self.device_id)
            + opt(&self.details)
            + opt(&self.correlation_id)
            + opt(&self.peer_device_id)
            + opt(&self.model_types)
            + opt(&self.subject)
    }

    /// The content key: source, device, timestamp, event type (spelling-insensitive), summary
    /// and correlation id. With the event's occurrence number in its input (see
    /// [`identity`]) it is the identity under which the event is stored once however often it
    /// is read. Spacedrive events leave the device out: `sd sync events` exports by default
    /// without it, and the same event read from the device's `sync.db` must be the same event
    /// (the writer keeps the device of whichever reading names it, see `store::writer`).
    pub fn dedup_key(&self) -> i64 {
        let mut h = Xxh3::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(self.source.as_bytes());
        if !self.device_blind() {
            field(self.device_id.as_deref().unwrap_or("").as_bytes());
        }
        field(&self.timestamp.as_nanos().to_le_bytes());
        field(canonical_type(&self.event_type).as_bytes());
        field(self.summary.as_bytes());
        field(self.correlation_id.as_deref().unwrap_or("").as_bytes());
        h.digest() as i64
    }

    /// Events whose identity leaves the device out (Spacedrive's: see [`Event::dedup_key`]).
    pub fn device_blind(&self) -> bool {
        is_device_blind(&self.source)
    }

    /// `model_types` as a list (the JSON export's form).
    pub fn model_type_list(&self) -> Vec<&str> {
        self.model_types
            .as_deref()
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Whether events of system `source` are identified without their device.
pub fn is_device_blind(source: &str) -> bool {
    source == names::system::SPACEDRIVE
}

/// The PascalCase spelling of a snake_case name (`state_transition` -> `StateTransition`).
pub fn pascal_type(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `StateTransition`, `state_transition` and `STATE_TRANSITION` all become `state_transition`.
pub fn canonical_type(name: &str) -> std::borrow::Cow<'_, str> {
    let needs_work = name
        .bytes()
        .any(|b| b.is_ascii_uppercase() || b == b'-' || b == b' ');
    if !needs_work {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower_or_digit = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower_or_digit {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower_or_digit = false;
        } else if c == '-' || c == ' ' {
            out.push('_');
            prev_lower_or_digit = false;
        } else {
            prev_lower_or_digit = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A line, row or element that could not be read: where, why, and its first bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// e.g. `/var/log/app/events.jsonl:17`, `sync.db row 42`, `export.json element 3 (line 40)`.
    pub location: String,
    pub reason: String,
    /// At most the first 200 bytes of the input, lossily decoded.
    pub excerpt: String,
}

/// How many bytes of a bad input are kept in a reject.
pub const REJECT_EXCERPT_BYTES: usize = 200;

impl Reject {
    pub fn new(location: impl Into<String>, reason: impl Into<String>, raw: &[u8]) -> Self {
        let cut = raw.len().min(REJECT_EXCERPT_BYTES);
        Reject {
            location: location.into(),
            reason: reason.into(),
            excerpt: String::from_utf8_lossy(&raw[..cut]).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: &str, summary: &str) -> Event {
        Event {
            timestamp: Timestamp::from_nanos(1_764_756_900_123_456_789),
            source: "spacedrive".into(),
            device_id: Some("6f1c".into()),
            event_type: ty.into(),
            category: "lifecycle".into(),
            severity: Severity::Info,
            summary: summary.into(),
            details: None,
            correlation_id: Some("0b8e".into()),
            peer_device_id: None,
            model_types: None,
            record_count: None,
            duration_ms: None,
            subject: None,
        }
    }

    #[test]
    fn pascal_type_is_the_other_spelling() {
        assert_eq!(pascal_type("watermark_reset"), "WatermarkReset");
        assert_eq!(
            canonical_type(&pascal_type("batch_ingestion")),
            "batch_ingestion"
        );
    }

    #[test]
    fn canonical_type_folds_spellings() {
        assert_eq!(canonical_type("StateTransition"), "state_transition");
        assert_eq!(canonical_type("state_transition"), "state_transition");
        assert_eq!(canonical_type("STATE_TRANSITION"), "state_transition");
        assert_eq!(canonical_type("ref-replicated"), "ref_replicated");
        assert_eq!(
            canonical_type("BackfillSessionStarted"),
            "backfill_session_started"
        );
    }

    #[test]
    fn dedup_key_ignores_type_spelling_and_non_key_fields() {
        let a = ev("state_transition", "Ready → Backfilling");
        let mut b = ev("StateTransition", "Ready → Backfilling");
        b.details = Some("{\"x\":1}".into());
        b.severity = Severity::Warning;
        assert_eq!(a.dedup_key(), b.dedup_key());
    }

    #[test]
    fn dedup_key_changes_with_each_key_field() {
        let base = ev("state_transition", "Ready → Backfilling");
        let k = base.dedup_key();
        let mut v = base.clone();
        v.summary.push('!');
        assert_ne!(k, v.dedup_key());
        let mut v = base.clone();
        v.timestamp = Timestamp::from_nanos(v.timestamp.as_nanos() + 1);
        assert_ne!(k, v.dedup_key());
        let mut v = base.clone();
        v.correlation_id = None;
        assert_ne!(k, v.dedup_key());
        let mut v = base.clone();
        v.source = "jsonl".into();
        assert_ne!(k, v.dedup_key());
        // Field boundaries matter: moving text between fields is a different event.
        let mut v = base.clone();
        v.correlation_id = Some("Ready → Backfilling0b8e".into());
        v.summary = String::new();
        assert_ne!(k, v.dedup_key());
    }

    #[test]
    fn the_device_is_identity_except_for_spacedrive() {
        let sd = ev("state_transition", "Ready → Backfilling");
        let mut no_device = sd.clone();
        no_device.device_id = None;
        assert_eq!(
            sd.dedup_key(),
            no_device.dedup_key(),
            "a default `sd sync events` export names no device"
        );
        let mut other = sd.clone();
        other.source = "jsonl".into();
        let mut other_dev = other.clone();
        other_dev.device_id = Some("6f1cx".into());
        assert_ne!(other.dedup_key(), other_dev.dedup_key());
        other_dev.device_id = None;
        assert_ne!(other.dedup_key(), other_dev.dedup_key());
        other_dev.device_id = Some("6f1c".into());
        other_dev.summary = "Ready → Backfillin".into();
        other.summary = "Ready → Backfillin".into();
        assert_eq!(other.dedup_key(), other_dev.dedup_key());
    }

    #[test]
    fn reject_keeps_only_200_bytes() {
        let raw = vec![b'x'; 1000];
        let r = Reject::new("f:1", "bad", &raw);
        assert_eq!(r.excerpt.len(), 200);
    }
}
