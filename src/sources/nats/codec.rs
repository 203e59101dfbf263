//! The JetStream message of a forwarded event, and of a batch's CI state and rejects. One
//! module, so the state-update types can change in one place.
//!
//! Version 2 (what this forwarder writes) is binary: its first byte is the version, `2`, then
//! the kind (`1` an event: its fields in a fixed order, see [`encode_event`]; `2` a batch:
//! JSON after the two bytes). Version 1 (forwarders before it) is JSON, first byte `{`, and is
//! still read:
//! ```text
//! {"t":"event","src":"jsonl:/var/log/a.jsonl","key":-8812…,"event":{"ts":1764…,"source":"jsonl",…},"refs":[…]}
//! {"t":"batch","src":"gitlab:https://…","ci":[…],"rejects":[{"location":…,"reason":…,"excerpt":…}]}
//! ```
//! Any other first byte is refused, naming it (a newer format: upgrade this consumer).
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

/// A message in version 2: an event through [`encode_event`], a batch as its two bytes and JSON.
pub fn encode(m: &Message) -> Vec<u8> {
    match m {
        Message::Event {
            src,
            key,
            event,
            refs,
        } => match event.as_ref().clone().into_event() {
            Ok(e) => encode_event(src, *key, &e, refs),
            // A severity this build does not know: version 1 carries it as text.
            Err(_) => encode_v1(m),
        },
        Message::Batch { .. } => {
            let mut out = vec![VERSION, KIND_BATCH];
            out.extend_from_slice(&encode_v1(m));
            out
        }
    }
}

/// A message in version 1 (JSON), as forwarders before version 2 wrote it.
pub fn encode_v1(m: &Message) -> Vec<u8> {
    // Serializing these plain structs cannot fail (no maps with non-string keys).
    serde_json::to_vec(m).unwrap_or_default()
}

/// A message of either version; anything else is an error saying what it is.
pub fn decode(bytes: &[u8]) -> Result<Message, String> {
    match bytes.first() {
        Some(b'{') => {
            serde_json::from_slice(bytes).map_err(|e| format!("not a syncscope message: {e}"))
        }
        Some(&VERSION) => decode_v2(bytes).map_err(|e| format!("a version 2 message: {e}")),
        Some(&b) => Err(format!(
            "not a syncscope message of a known format: its first byte is {b:#04x} (this syncscope reads version 1, JSON, and version 2; a newer forwarder's format needs a newer consumer)"
        )),
        None => Err("an empty message".into()),
    }
}

// ---- version 2: binary -------------------------------------------------------------------

/// The first byte of a version 2 message (a version 1 message is JSON: its first byte is `{`).
pub const VERSION: u8 = 2;
const KIND_EVENT: u8 = 1;
const KIND_BATCH: u8 = 2;

// Which optional fields follow (one bit each, in this order).
const F_DEVICE: u8 = 1;
const F_DETAILS: u8 = 1 << 1;
const F_CORRELATION: u8 = 1 << 2;
const F_PEER: u8 = 1 << 3;
const F_MODELS: u8 = 1 << 4;
const F_SUBJECT: u8 = 1 << 5;
const F_RECORDS: u8 = 1 << 6;
const F_DURATION: u8 = 1 << 7;

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// The message of one event, version 2, straight from the event (nothing copied twice):
/// `2, 1, src, key (i64 LE), ts (i64 LE), severity rank, source, event_type, category,
/// summary, flags, the optional fields flagged, refs (JSON, length 0 when none)`; every text
/// a LEB128 length and its UTF-8 bytes.
pub fn encode_event(src: &str, key: i64, e: &Event, refs: &[RefUpdate]) -> Vec<u8> {
    let opt = |o: &Option<String>| o.as_deref().map_or(0, str::len);
    let mut out = Vec::with_capacity(
        48 + src.len()
            + e.source.len()
            + e.event_type.len()
            + e.category.len()
            + e.summary.len()
            + opt(&e.device_id)
            + opt(&e.details)
            + opt(&e.correlation_id)
            + opt(&e.peer_device_id)
            + opt(&e.model_types)
            + opt(&e.subject),
    );
    out.push(VERSION);
    out.push(KIND_EVENT);
    put_str(&mut out, src);
    out.extend_from_slice(&key.to_le_bytes());
    out.extend_from_slice(&e.timestamp.as_nanos().to_le_bytes());
    out.push(e.severity.rank() as u8);
    put_str(&mut out, &e.source);
    put_str(&mut out, &e.event_type);
    put_str(&mut out, &e.category);
    put_str(&mut out, &e.summary);
    let strs = [
        (F_DEVICE, &e.device_id),
        (F_DETAILS, &e.details),
        (F_CORRELATION, &e.correlation_id),
        (F_PEER, &e.peer_device_id),
        (F_MODELS, &e.model_types),
        (F_SUBJECT, &e.subject),
    ];
    let ints = [(F_RECORDS, e.record_count), (F_DURATION, e.duration_ms)];
    let flags = strs
        .iter()
        .filter(|(_, v)| v.is_some())
        .fold(0u8, |f, (bit, _)| f | bit)
        | ints
            .iter()
            .filter(|(_, v)| v.is_some())
            .fold(0u8, |f, (bit, _)| f | bit);
    out.push(flags);
    for (_, v) in strs {
        if let Some(s) = v {
            put_str(&mut out, s);
        }
    }
    for (_, v) in ints {
        if let Some(n) = v {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    if refs.is_empty() {
        put_len(&mut out, 0);
    } else {
        // Serializing these plain structs cannot fail (no maps with non-string keys).
        let json = serde_json::to_vec(refs).unwrap_or_default();
        put_len(&mut out, json.len());
        out.extend_from_slice(&json);
    }
    out
}

/// Reads a version 2 message; every error names the field and the byte where it failed.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {what} at byte {} needs {n} byte(s), {} left",
                    self.at,
                    self.bytes.len() - self.at
                )
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn byte(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn i64(&mut self, what: &str) -> Result<i64, String> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    fn len(&mut self, what: &str) -> Result<usize, String> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte(what)?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return usize::try_from(n).map_err(|_| format!("{what}: length {n} too large"));
            }
        }
        Err(format!("{what}: a length longer than 64 bits"))
    }

    fn str(&mut self, what: &str) -> Result<String, String> {
        let n = self.len(what)?;
        let at = self.at;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} at byte {at} is not UTF-8"))
    }
}

fn decode_v2(bytes: &[u8]) -> Result<Message, String> {
    let mut r = Reader { bytes, at: 1 };
    match r.byte("the message kind")? {
        KIND_EVENT => {}
        KIND_BATCH => {
            let m: Message = serde_json::from_slice(&bytes[2..])
                .map_err(|e| format!("a batch message that is not valid: {e}"))?;
            return match m {
                Message::Batch { .. } => Ok(m),
                Message::Event { .. } => Err("a batch message holding an event".into()),
            };
        }
        k => {
            return Err(format!(
                "unknown message kind {k} (format version {VERSION})"
            ))
        }
    }
    let src = r.str("src")?;
    let key = r.i64("key")?;
    let ts = r.i64("ts")?;
    let rank = r.byte("severity")?;
    let severity = Severity::from_rank(i64::from(rank))
        .ok_or_else(|| format!("unknown severity rank {rank}"))?;
    let source = r.str("source")?;
    let event_type = r.str("event_type")?;
    let category = r.str("category")?;
    let summary = r.str("summary")?;
    let flags = r.byte("flags")?;
    let mut opt = |bit: u8, what: &str| -> Result<Option<String>, String> {
        if flags & bit != 0 {
            r.str(what).map(Some)
        } else {
            Ok(None)
        }
    };
    let device_id = opt(F_DEVICE, "device_id")?;
    let details = opt(F_DETAILS, "details")?;
    let correlation_id = opt(F_CORRELATION, "correlation_id")?;
    let peer_device_id = opt(F_PEER, "peer_device_id")?;
    let model_types = opt(F_MODELS, "model_types")?;
    let subject = opt(F_SUBJECT, "subject")?;
    let record_count = if flags & F_RECORDS != 0 {
        Some(r.i64("record_count")?)
    } else {
        None
    };
    let duration_ms = if flags & F_DURATION != 0 {
        Some(r.i64("duration_ms")?)
    } else {
        None
    };
    let n = r.len("refs")?;
    let refs = if n == 0 {
        Vec::new()
    } else {
        serde_json::from_slice(r.take(n, "refs")?).map_err(|e| format!("refs: {e}"))?
    };
    if r.at != bytes.len() {
        return Err(format!(
            "{} byte(s) after the end of the event, at byte {}",
            bytes.len() - r.at,
            r.at
        ));
    }
    Ok(Message::Event {
        src,
        key,
        event: Box::new(WireEvent {
            ts,
            source,
            device_id,
            event_type,
            category,
            severity: severity.as_str().to_string(),
            summary,
            details,
            correlation_id,
            peer_device_id,
            model_types,
            record_count,
            duration_ms,
            subject,
        }),
        refs,
    })
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
    fn version_2_is_binary_and_round_trips_every_optional_field() {
        let full = event();
        let mut bare = event();
        bare.device_id = None;
        bare.details = None;
        bare.record_count = None;
        bare.subject = None;
        let mut rest = event();
        rest.correlation_id = Some("c-1".into());
        rest.peer_device_id = Some("peer".into());
        rest.model_types = Some("entry,tag".into());
        rest.duration_ms = Some(-7);
        rest.summary = "ünïcode \u{0} and a very long summary ".repeat(20);
        for e in [full, bare, rest] {
            let bytes = encode_event("jsonl:/a", 42, &e, &[]);
            assert_eq!(bytes[0], VERSION);
            let Message::Event {
                src,
                key,
                event,
                refs,
            } = decode(&bytes).unwrap()
            else {
                panic!("not an event")
            };
            assert_eq!((src.as_str(), key, refs.len()), ("jsonl:/a", 42, 0));
            assert_eq!(event.into_event().unwrap(), e);
        }
    }

    #[test]
    fn version_2_carries_ref_updates_and_batches() {
        let r = RefUpdate {
            instance: Some("node-1".into()),
            only_instance: false,
            kind: crate::model::gerrit::UpdateKind::Replication,
            project: "p".into(),
            remote: "r".into(),
            ref_name: "refs/heads/main".into(),
            direction: crate::model::gerrit::Direction::Push,
            status: Some(crate::model::gerrit::RefStatus::Failed),
            when: 5,
            detail: Some("x".into()),
            newer_only: false,
        };
        let m = Message::Event {
            src: "gerrit-events:/x".into(),
            key: -1,
            event: Box::new(WireEvent::from_event(&event())),
            refs: vec![r.clone(), r],
        };
        let bytes = encode(&m);
        assert_eq!(bytes[0], VERSION);
        assert_eq!(decode(&bytes).unwrap(), m);
        let b = Message::Batch {
            src: "gitlab:https://x".into(),
            updates: vec![],
            rejects: vec![WireReject {
                location: "l".into(),
                reason: "r".into(),
                excerpt: "e".into(),
            }],
        };
        let bytes = encode(&b);
        assert_eq!(&bytes[..2], &[VERSION, KIND_BATCH]);
        assert_eq!(decode(&bytes).unwrap(), b);
    }

    #[test]
    fn version_1_from_an_older_forwarder_is_still_read() {
        let e = event();
        let m = Message::Event {
            src: "jsonl:/a".into(),
            key: 9,
            event: Box::new(WireEvent::from_event(&e)),
            refs: vec![],
        };
        let v1 = encode_v1(&m);
        assert_eq!(v1[0], b'{');
        assert_eq!(decode(&v1).unwrap(), m);
    }

    #[test]
    fn an_unknown_version_and_a_damaged_message_are_refused_clearly() {
        let e = decode(&[7, 1, 2, 3]).unwrap_err();
        assert!(e.contains("0x07") && e.contains("newer"), "{e}");
        let bytes = encode_event("jsonl:/a", 1, &event(), &[]);
        for cut in 1..bytes.len() {
            let e = decode(&bytes[..cut]).unwrap_err();
            assert!(e.contains("version 2"), "{e}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).unwrap_err().contains("after the end"));
        let mut bad = bytes;
        // The source's text (after version, kind, src, key, ts, severity) made invalid UTF-8.
        let at = 2 + 1 + "jsonl:/a".len() + 16 + 1 + 1;
        bad[at] = 0xff;
        assert!(decode(&bad).unwrap_err().contains("not UTF-8"));
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn a_version_1_severity_in_any_case_re_encodes_to_the_same_event() {
        // Found by the nats_codec fuzz target: v1 reads `"wArning"`, v2 writes the rank, so the
        // decoded messages differ in their text while the event is the same; re-encoding is
        // canonical from there on.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/fuzz/nats_codec-v1-severity-case.json"
        );
        let bytes = std::fs::read(path).unwrap();
        let m = decode(&bytes).unwrap();
        let once = encode(&m);
        let again = decode(&once).unwrap();
        assert_eq!(encode(&again), once);
        let event = |m: &Message| match m {
            Message::Event { event, .. } => event.as_ref().clone().into_event().unwrap(),
            Message::Batch { .. } => panic!("an event message"),
        };
        assert_eq!(event(&m), event(&again));
        assert_eq!(event(&m).severity, Severity::Warning);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"\xff\x00").is_err());
        assert!(decode(br#"{"t":"event"}"#).is_err());
    }
}
