//! Stream-order numbers for events that share one timestamp (a Gerrit `eventCreatedOn` second or
//! millisecond, a `replication_log` millisecond): the n-th event of a timestamp gets `n`
//! nanoseconds added, so two identical lines of one second are two events (a ref scheduled again
//! in the same second after a failure) and events of one second keep their stream order.
//!
//! The number of a timestamp continues when that timestamp comes back after others (a merged
//! multi-site stream whose seconds interleave, an event posted after one of the next second):
//! the next number of each recent timestamp is remembered. The numbering is a function of the
//! input read since the start of the file (or of the stream), so reading the same input again
//! from its start gives every event the same identity, and it is carried in the source's
//! checkpoint so a resumed follow continues it.
//!
//! Memory is bounded: at most [`KEEP`] timestamps are remembered. When one is forgotten (the
//! oldest first), its next number is folded into `floor`, and any timestamp at or before the
//! newest forgotten one starts at `floor`: a forgotten timestamp that comes back never reuses a
//! number it gave out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Timestamps remembered.
pub const KEEP: usize = 256;
/// The highest number given: one million events of one millisecond (or second). Beyond it the
/// last number repeats (and identical lines of that timestamp would be stored once).
pub const MAX_ORDINAL: u32 = 999_999;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ordinals {
    /// Timestamp (ns, before numbering) -> the next number it gives.
    #[serde(default, rename = "next")]
    next: BTreeMap<i64, u32>,
    /// The newest forgotten timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forgotten: Option<i64>,
    /// The highest next number of a forgotten timestamp.
    #[serde(default)]
    floor: u32,
}

impl Ordinals {
    pub fn is_empty(&self) -> bool {
        self.next.is_empty() && self.forgotten.is_none()
    }

    /// The newest timestamp numbered (ns, before numbering): the last event read.
    pub fn newest(&self) -> Option<i64> {
        self.next.keys().next_back().copied().or(self.forgotten)
    }

    /// The number of the next event at `base` (ns).
    pub fn next(&mut self, base: i64) -> u32 {
        if let Some(n) = self.next.get_mut(&base) {
            let o = *n;
            *n = n.saturating_add(1).min(MAX_ORDINAL);
            return o;
        }
        let start = if self.forgotten.is_some_and(|f| base <= f) {
            self.floor
        } else {
            0
        };
        self.next.insert(base, (start + 1).min(MAX_ORDINAL));
        if self.next.len() > KEEP {
            if let Some((b, n)) = self.next.pop_first() {
                self.floor = self.floor.max(n);
                self.forgotten = Some(self.forgotten.map_or(b, |f| f.max(b)));
            }
        }
        start
    }

    /// `ts` (ns) with its number added.
    pub fn number(&mut self, ts: i64) -> i64 {
        ts.saturating_add(i64::from(self.next(ts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_timestamp_is_the_last_event_read_even_once_forgotten() {
        let mut o = Ordinals::default();
        assert_eq!(o.newest(), None);
        o.next(20);
        o.next(10);
        assert_eq!(o.newest(), Some(20));
        for t in 0..KEEP as i64 + 5 {
            o.next(100 + t);
        }
        assert_eq!(o.newest(), Some(100 + KEEP as i64 + 4));
    }

    #[test]
    fn a_second_that_comes_back_continues_its_numbers() {
        let mut o = Ordinals::default();
        assert_eq!(
            [o.next(10), o.next(10), o.next(11), o.next(10)],
            [0, 1, 0, 2]
        );
        assert_eq!(o.next(9), 0);
        // Through JSON (the checkpoint) the numbering goes on.
        let mut back: Ordinals = serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert_eq!((back.next(10), back.next(11)), (3, 1));
    }

    #[test]
    fn forgotten_seconds_never_reuse_a_number() {
        let mut o = Ordinals::default();
        let mut given = std::collections::HashSet::new();
        // Second 0 gets 5 events, then KEEP newer seconds push it out.
        for _ in 0..5 {
            assert!(given.insert((0, o.next(0))));
        }
        for s in 1..=(KEEP as i64 + 10) {
            assert!(given.insert((s, o.next(s))));
        }
        assert_eq!(o.next.len(), KEEP);
        for _ in 0..3 {
            let n = o.next(0);
            assert!(given.insert((0, n)), "second 0 number {n} given twice");
        }
        // A second newer than every forgotten one starts at 0.
        assert_eq!(o.next(10_000), 0);
    }

    #[test]
    fn numbers_stop_at_the_maximum() {
        let mut o = Ordinals::default();
        o.next.insert(5, MAX_ORDINAL);
        assert_eq!((o.next(5), o.next(5)), (MAX_ORDINAL, MAX_ORDINAL));
    }
}
