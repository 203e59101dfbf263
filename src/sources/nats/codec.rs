//! The JetStream message of a forwarded event, and of a batch's CI state and rejects: JSON,
//! stable field names, the identity key with the event. One module, so the state-update types
//! can change in one place.
//!
//! ```text
//! {"t":"event","src":"jsonl:/var/log/a.jsonl","key":-8812…,"event":{"ts":1764…,"source":"jsonl",…},"refs":[…]}
//! {"t":"batch","src":"gitlab:https://…","ci":[…],"rejects":[{"location":…,"reason":…,"excerpt":…}]}
//! ```
//! `Nats-Msg-Id` of an event: `HASH(src):TS:KEY` (the key carries the occurrence number, so two
//! identical events of one input get two ids); of a batch message: `HASH(src):b:HASH(payload)`.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_128, xxh3_64};

use crate::model::gerrit::RefUpdate;
use crate::model::{Event, Reject, Severity, Timestamp};
use crate::store::StateUpdate;

/// What one message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Message {
    Event {
        /// The forwarding source's key (`jsonl:/path`).
        src: String,
        /// The identity key the forwarder's source gave the event (occurrence included).
        key: i64,
        event: Box<WireEvent>,
        /// The ref state changes the event carries, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refs: Vec<RefUpdate>,
    },
    Batch {
        src: String,
        /// The batch's state updates of other domains than refs (CI, relays), in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        updates: Vec<StateUpdate>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        rejects: Vec<WireReject>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    pub event_type: String,
    pub category: String,
    pub severity: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_types: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireReject {
    pub location: String,
    pub reason: String,
    pub excerpt: String,
}

impl WireEvent {
    pub fn from_event(e: &Event) -> WireEvent {
        WireEvent {
            ts: e.timestamp.as_nanos(),
            source: e.source.clone(),
            device_id: e.device_id.clone(),
            event_type: e.event_type.clone(),
            category: e.category.clone(),
            severity: e.severity.as_str().to_string(),
            summary: e.summary.clone(),
            details: e.details.clone(),
            correlation_id: e.correlation_id.clone(),
            peer_device_id: e.peer_device_id.clone(),
            model_types: e.model_types.clone(),
            record_count: e.record_count,
            duration_ms: e.duration_ms,
            subject: e.subject.clone(),
        }
    }

    pub fn into_event(self) -> Result<Event, String> {
        let severity = Severity::parse(&self.severity)
            .ok_or_else(|| format!("unknown severity '{}'", self.severity))?;
        Ok(Event {
            timestamp: Timestamp::from_nanos(self.ts),
            source: self.source,
            device_id: self.device_id,
            event_type: self.event_type,
            category: self.category,
            severity,
            summary: self.summary,
            details: self.details,
            correlation_id: self.correlation_id,
            peer_device_id: self.peer_device_id,
            model_types: self.model_types,
            record_count: self.record_count,
            duration_ms: self.duration_ms,
            subject: self.subject,
        })
    }
}

impl WireReject {
    pub fn from_reject(r: &Reject) -> WireReject {
        WireReject {
            location: r.location.clone(),
            reason: r.reason.clone(),
            excerpt: r.excerpt.clone(),
        }
    }

    pub fn into_reject(self) -> Reject {
        Reject {
            location: self.location,
            reason: self.reason,
            excerpt: self.excerpt,
        }
    }
}

fn source_hash(src: &str) -> String {
    format!("{:032x}", xxh3_128(src.as_bytes()))
}

/// `Nats-Msg-Id` of an event of source `src` (header-safe: hex and digits only).
pub fn event_id(src: &str, ts: i64, key: i64) -> String {
    format!("{}:{ts}:{key}", source_hash(src))
}

/// `Nats-Msg-Id` of a batch message: the same content from the same source is the same id.
pub fn batch_id(src: &str, payload: &[u8]) -> String {
    format!("{}:b:{:016x}", source_hash(src), xxh3_64(payload))
}

pub fn encode(m: &Message) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string keys).
    serde_json::to_vec(m).unwrap_or_default()
}

pub fn decode(bytes: &[u8]) -> Result<Message, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not a syncscope message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            timestamp: Timestamp::from_nanos(1_764_000_000_123_456_789),
            source: "gerrit".into(),
            device_id: Some("site-a".into()),
            event_type: "ref-replicated".into(),
            category: "replication".into(),
            severity: Severity::Warning,
            summary: "push failed\u{1b}[2J".into(),
            details: Some("{\"a\":1}".into()),
            correlation_id: None,
            peer_device_id: None,
            model_types: None,
            record_count: Some(3),
            duration_ms: None,
            subject: Some("refs/heads/main".into()),
        }
    }

    #[test]
    fn an_event_round_trips_with_its_key() {
        let e = event();
        let m = Message::Event {
            src: "gerrit-events:/x".into(),
            key: e.dedup_key(),
            event: Box::new(WireEvent::from_event(&e)),
            refs: vec![],
        };
        let back = decode(&encode(&m)).unwrap();
        assert_eq!(back, m);
        let Message::Event { event, key, .. } = back else {
            panic!("not an event")
        };
        let e2 = event.into_event().unwrap();
        assert_eq!(e2, e);
        assert_eq!(key, e2.dedup_key());
    }

    #[test]
    fn ids_differ_by_occurrence_and_source_and_are_stable() {
        let a = event_id("jsonl:/a", 5, 1);
        assert_eq!(a, event_id("jsonl:/a", 5, 1));
        assert_ne!(a, event_id("jsonl:/a", 5, 2));
        assert_ne!(a, event_id("jsonl:/b", 5, 1));
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'-' || b.is_ascii_digit()));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"\xff\x00").is_err());
        assert!(decode(br#"{"t":"event"}"#).is_err());
    }
}
