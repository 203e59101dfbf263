//! Event identity: what makes two readings the same event, and two events distinct.
//!
//! An event's identity is its content key ([`Event::dedup_key`]) plus its *occurrence number*:
//! how many events with the same content key came before it in the same input. Two events that
//! differ only in their position (identical lines of one file, two identical rows of one
//! `sync.db`) get the numbers 0 and 1 and are both stored, in input order; reading the same
//! input again gives the same numbers, so nothing is stored twice. Occurrence 0 keeps the plain
//! content key, so the keys of stores written before occurrences existed still match.

use std::collections::{HashMap, VecDeque};

use xxhash_rust::xxh3::{xxh3_64, Xxh3DefaultBuilder};

use super::Event;

/// How many recent events an [`Occurrences`] remembers: identical events further apart than
/// this in one input are taken for one event read twice (a content key includes the timestamp
/// to the nanosecond, so such twins are events of one instant that far apart in their input).
pub const WINDOW: usize = 16_384;

/// How many of the most recent events' counts a checkpoint carries, so a restarted follow
/// numbers the next identical event as the uninterrupted read would have.
pub const CARRIED: usize = 256;

/// The identity key of occurrence `nth` of an event whose content key is `content`.
pub fn nth_key(content: i64, nth: u32) -> i64 {
    if nth == 0 {
        return content;
    }
    let mut buf = [0u8; 13];
    buf[..8].copy_from_slice(&content.to_le_bytes());
    buf[8] = 0xA7; // keeps these inputs apart from any other 12-byte hash input
    buf[9..].copy_from_slice(&nth.to_le_bytes());
    xxh3_64(&buf) as i64
}

/// Numbers the occurrences of identical events in one input, in input order.
#[derive(Debug, Default)]
pub struct Occurrences {
    /// Content key -> (occurrences so far, position of the last one).
    counts: HashMap<i64, (u32, u64), Xxh3DefaultBuilder>,
    /// Content keys of the last [`WINDOW`] events with their positions, oldest first.
    recent: VecDeque<(i64, u64)>,
    position: u64,
}

/// What a checkpoint keeps of an [`Occurrences`]: `(content key, occurrences so far)` of the
/// most recent events, oldest first.
pub type Carried = Vec<(i64, u32)>;

impl Occurrences {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resumes where a checkpoint left off.
    pub fn resume(carried: &[(i64, u32)]) -> Self {
        let mut o = Occurrences::new();
        for &(key, n) in carried {
            o.position += 1;
            o.counts.insert(key, (n, o.position));
            o.recent.push_back((key, o.position));
        }
        o
    }

    /// The identity key of the next event of the input.
    pub fn key(&mut self, e: &Event) -> i64 {
        self.next(e.dedup_key())
    }

    /// The identity key of the next event, whose content key is `content`.
    pub fn next(&mut self, content: i64) -> i64 {
        self.position += 1;
        let pos = self.position;
        let entry = self.counts.entry(content).or_insert((0, pos));
        let nth = entry.0;
        *entry = (nth.saturating_add(1), pos);
        self.recent.push_back((content, pos));
        if self.recent.len() > WINDOW {
            if let Some((old, at)) = self.recent.pop_front() {
                if self.counts.get(&old).is_some_and(|&(_, last)| last == at) {
                    self.counts.remove(&old);
                }
            }
        }
        nth_key(content, nth)
    }

    /// The counts a checkpoint carries: those of the last [`CARRIED`] distinct content keys.
    pub fn carried(&self) -> Carried {
        let mut out: Carried = Vec::new();
        for &(key, at) in self.recent.iter().rev() {
            if out.len() == CARRIED {
                break;
            }
            // Each key once, from its last occurrence.
            if let Some(&(n, last)) = self.counts.get(&key) {
                if last == at {
                    out.push((key, n));
                }
            }
        }
        out.reverse();
        out
    }

    /// Forgets everything: the input starts over (a new file, a truncated one).
    pub fn reset(&mut self) {
        self.counts.clear();
        self.recent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_events_are_numbered_and_a_reread_numbers_them_again() {
        let mut a = Occurrences::new();
        let first: Vec<i64> = [1, 2, 1, 1, 3].iter().map(|&k| a.next(k)).collect();
        assert_eq!(first[0], 1, "occurrence 0 is the content key itself");
        assert_ne!(first[0], first[2]);
        assert_ne!(first[2], first[3]);
        let distinct: std::collections::HashSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), 5);
        let mut b = Occurrences::new();
        let again: Vec<i64> = [1, 2, 1, 1, 3].iter().map(|&k| b.next(k)).collect();
        assert_eq!(first, again);
    }

    #[test]
    fn a_resumed_count_continues_where_it_stopped() {
        let mut whole = Occurrences::new();
        let all: Vec<i64> = [5, 6, 5, 7, 5, 6].iter().map(|&k| whole.next(k)).collect();
        let mut head = Occurrences::new();
        for &k in &[5, 6, 5] {
            head.next(k);
        }
        let carried = head.carried();
        assert_eq!(carried, vec![(6, 1), (5, 2)]);
        let mut tail = Occurrences::resume(&carried);
        let rest: Vec<i64> = [7, 5, 6].iter().map(|&k| tail.next(k)).collect();
        assert_eq!(&all[3..], &rest[..]);
    }

    #[test]
    fn memory_is_bounded_by_the_window() {
        let mut o = Occurrences::new();
        for k in 0..(WINDOW as i64 * 3) {
            o.next(k);
        }
        assert!(o.counts.len() <= WINDOW && o.recent.len() <= WINDOW);
        assert_eq!(o.carried().len(), CARRIED);
        o.reset();
        assert_eq!(o.next(0), 0);
    }
}
