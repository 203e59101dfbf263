//! The consumer's acknowledgement floor under `AckPolicy::All`.
//!
//! There, acknowledging stream sequence S acknowledges every message at or below S that the
//! server delivered, whoever it went to: a consumer killed before it committed, a pull dropped
//! by a reconnect, a prefetch past the end of a `--once` run. So S is acknowledged only once
//! every sequence from the server's floor up to S is committed in this store, or is no longer
//! in the stream (removed by a limit or by hand). A sequence missing below what was committed
//! (a gap) holds the acknowledgements back until the server delivers it again (after its
//! acknowledgement wait) or the stream shows it gone; what was committed above it meanwhile
//! is kept, with its message, to be acknowledged at once when the gap fills.

use std::collections::BTreeMap;

/// Committed stream sequences and the floor below which all are done. `M`: what an
/// acknowledgement is sent with (the delivered message).
#[derive(Debug)]
pub struct AckFloor<M> {
    /// Every sequence at or below is committed here, gone from the stream, or was acknowledged
    /// before this consumer started.
    floor: u64,
    /// The floor the server was last told (by an acknowledgement sent).
    told: u64,
    /// Committed above the floor, with a gap below them.
    above: BTreeMap<u64, M>,
}

/// What to acknowledge after a commit.
#[derive(Debug, PartialEq)]
pub struct Acks<M> {
    /// Acknowledges everything up to the new floor (None: the floor did not move past what
    /// the server was told, or only through sequences that are gone).
    pub floor: Option<M>,
    /// Deliveries at or below a floor already told (the server lost an acknowledgement or
    /// delivered again): acknowledged one by one, all of them committed long ago.
    pub again: Vec<M>,
}

impl<M> AckFloor<M> {
    /// Starts at the server's acknowledgement floor.
    pub fn new(floor: u64) -> AckFloor<M> {
        AckFloor {
            floor,
            told: floor,
            above: BTreeMap::new(),
        }
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    /// The first missing sequence, when something committed waits above it.
    pub fn gap(&self) -> Option<u64> {
        (!self.above.is_empty()).then_some(self.floor + 1)
    }

    /// How many committed messages wait above a gap.
    pub fn held(&self) -> usize {
        self.above.len()
    }

    /// Records what one commit stored (its messages in any order, repeats allowed) and says
    /// what to acknowledge.
    pub fn committed(&mut self, messages: impl IntoIterator<Item = (u64, M)>) -> Acks<M> {
        let mut again = Vec::new();
        let mut next = None;
        for (seq, m) in messages {
            if self.above.is_empty() && seq == self.floor + 1 {
                // The usual case, in order with nothing missing: no bookkeeping.
                self.floor = seq;
                next = Some(m);
            } else if seq <= self.told {
                again.push(m);
            } else if seq > self.floor {
                self.above.insert(seq, m);
            }
            // told < seq <= floor: covered by the next acknowledgement of the floor.
        }
        let floor = match self.advance() {
            Some(m) => Some(m),
            None if self.floor > self.told => next,
            None => None,
        };
        if floor.is_some() {
            self.told = self.floor;
        }
        Acks { floor, again }
    }

    /// Sequences up to `seq` are not in the stream (below its first sequence, or deleted):
    /// nothing will ever deliver them.
    pub fn gone_through(&mut self, seq: u64) -> Option<M> {
        if seq > self.floor {
            self.floor = seq;
            // Anything committed at or below is covered now too.
            let keep = self.above.split_off(&(seq + 1));
            let covered = std::mem::replace(&mut self.above, keep);
            let mut last = covered.into_values().last();
            if let Some(next) = self.advance() {
                last = Some(next);
            }
            if last.is_some() {
                self.told = self.floor;
            }
            return last;
        }
        None
    }

    /// Moves the floor over every committed sequence right above it; the message at the new
    /// floor when it moved past what the server was told.
    fn advance(&mut self) -> Option<M> {
        let mut last = None;
        while let Some(entry) = self.above.first_entry() {
            if *entry.key() != self.floor + 1 {
                break;
            }
            self.floor += 1;
            last = Some(entry.remove());
        }
        if last.is_some() && self.floor > self.told {
            self.told = self.floor;
            return last;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, u64)> {
        range.map(|s| (s, s)).collect()
    }

    #[test]
    fn contiguous_commits_acknowledge_their_last_message() {
        let mut f = AckFloor::new(0);
        let a = f.committed(seqs(1..=100));
        assert_eq!(a.floor, Some(100));
        assert!(a.again.is_empty());
        assert_eq!(f.committed(seqs(101..=150)).floor, Some(150));
        assert_eq!(f.gap(), None);
        assert_eq!(f.floor(), 150);
    }

    #[test]
    fn a_gap_holds_the_acknowledgement_until_it_is_delivered_again() {
        // 1-10 went to a consumer killed before committing: the server's floor is 0.
        let mut f = AckFloor::new(0);
        let a = f.committed(seqs(11..=40));
        assert_eq!(a.floor, None, "acknowledging 40 would acknowledge 1-10 too");
        assert_eq!(f.gap(), Some(1));
        assert_eq!(f.held(), 30);
        // Delivered again, out of order, in two commits.
        assert_eq!(f.committed(seqs(6..=10)).floor, None);
        assert_eq!(f.gap(), Some(1));
        let a = f.committed(seqs(1..=5));
        assert_eq!(a.floor, Some(40));
        assert_eq!(f.gap(), None);
        assert_eq!(f.held(), 0);
    }

    #[test]
    fn only_the_contiguous_part_is_acknowledged() {
        let mut f = AckFloor::new(100);
        let mut batch = seqs(101..=120);
        batch.retain(|(s, _)| *s != 111);
        assert_eq!(f.committed(batch).floor, Some(110));
        assert_eq!(f.gap(), Some(111));
        assert_eq!(f.committed(seqs(111..=111)).floor, Some(120));
    }

    #[test]
    fn a_delivery_at_or_below_the_told_floor_is_acknowledged_alone() {
        let mut f = AckFloor::new(50);
        let a = f.committed(vec![(49, 49), (51, 51), (50, 50), (52, 52)]);
        assert_eq!(a.floor, Some(52));
        assert_eq!(a.again, vec![49, 50]);
        // Repeats of what waits above a gap are kept once.
        let mut f = AckFloor::new(0);
        f.committed(seqs(3..=4));
        f.committed(seqs(3..=4));
        assert_eq!(f.held(), 2);
        assert_eq!(f.committed(seqs(1..=2)).floor, Some(4));
    }

    #[test]
    fn sequences_gone_from_the_stream_close_the_gap() {
        let mut f = AckFloor::new(0);
        assert_eq!(f.committed(seqs(6..=9)).floor, None);
        // 1-5 were removed (a limit, a purge): nothing will deliver them.
        assert_eq!(f.gone_through(5), Some(9));
        assert_eq!(f.floor(), 9);
        assert_eq!(f.gap(), None);
        // Gone with nothing committed after: the floor moves, nothing to acknowledge yet.
        assert_eq!(f.gone_through(12), None);
        assert_eq!(f.committed(seqs(13..=13)).floor, Some(13));
        // A gone range that covers committed messages acknowledges the last of them.
        let mut f = AckFloor::new(0);
        f.committed(vec![(3, 3), (5, 5), (8, 8)]);
        assert_eq!(f.gone_through(6), Some(5));
        assert_eq!(f.gap(), Some(7));
        assert_eq!(f.gone_through(2), None, "below the floor: nothing changes");
    }
}
