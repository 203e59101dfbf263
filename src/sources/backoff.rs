//! The one retry backoff every source uses: capped exponential growth with full jitter. After
//! the n-th failure in a row the ceiling is `base * 2^n` (at most the cap) and the wait is drawn
//! uniformly between the base and that ceiling: on average it doubles, it spreads widely, and
//! it is never below the base (full jitter down to zero would retry a down upstream at once).
//!
//! Policy, the same for every source:
//! - the **base** is the source's own cadence: a polling source's interval (its first retry
//!   comes no sooner than its next regular poll would), or [`DEFAULT_BASE`] for a stream that
//!   reconnects;
//! - the **cap** is [`DEFAULT_CAP`] (or the base, if the base is longer). A source overrides
//!   only the cap, and only with a reason written beside the override (today: GitLab's
//!   per-request retries, which run inside one poll);
//! - a wait is never zero, never below the base, never above the cap;
//! - [`Backoff::reset`] after a success brings the next wait back to the base.
//!
//! Jitter keeps a fleet of sources (or many syncscope hosts) that lost the same upstream at
//! the same instant from retrying in lockstep.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The base of a source that has no interval of its own (a reconnecting stream).
pub const DEFAULT_BASE: Duration = Duration::from_secs(1);
/// The longest wait between two attempts, for every source unless it says why not.
pub const DEFAULT_CAP: Duration = Duration::from_secs(60);
/// A zero base is taken as this (a wait is never zero).
const MIN_BASE: Duration = Duration::from_millis(1);

/// Capped exponential backoff with full jitter above the base: `next()` after each failure,
/// `reset()` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// Failures since the last reset.
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// The policy's backoff for a source whose cadence is `base` ([`DEFAULT_CAP`] cap).
    pub fn new(base: Duration) -> Backoff {
        Backoff::with_cap(base, DEFAULT_CAP)
    }

    /// The same, with the cap a source truly needs (say why where you call it). A cap below
    /// the base is raised to the base.
    pub fn with_cap(base: Duration, cap: Duration) -> Backoff {
        let base = base.max(MIN_BASE);
        let mut h = RandomState::new().build_hasher();
        h.write_u128(base.as_nanos());
        Backoff {
            base,
            cap: cap.max(base),
            failures: 0,
            rng: h.finish() | 1,
        }
    }

    pub fn base(&self) -> Duration {
        self.base
    }

    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The wait before the next attempt (after a failure); grows until the cap.
    // Not an Iterator: a backoff never ends, an Option would be noise at every call site.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.failures.min(31))
            .min(self.cap);
        let span = ceiling.saturating_sub(self.base).as_nanos() as u64;
        let pick = match span {
            0 => 0,
            s => self.random() % (s + 1),
        };
        (self.base + Duration::from_nanos(pick)).min(self.cap)
    }

    /// After a success: the next failure waits about the base again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// xorshift64*: plenty for jitter, seeded per backoff from the process's random state.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// `d` for a status line: `0.5 s`, `12 s`.
pub fn shown(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn never_zero_never_below_the_base_never_above_the_cap() {
        for base in [Duration::ZERO, Duration::from_millis(3), S, 5 * S, 90 * S] {
            let mut b = Backoff::new(base);
            for _ in 0..500 {
                let w = b.next();
                assert!(!w.is_zero(), "{base:?}");
                assert!(w >= base.max(MIN_BASE), "{w:?} < {base:?}");
                assert!(w <= DEFAULT_CAP.max(base), "{w:?} above the cap");
            }
        }
        let mut b = Backoff::with_cap(S / 2, 5 * S);
        assert!((0..500).all(|_| b.next() <= 5 * S));
        // A cap below the base is the base.
        let mut b = Backoff::with_cap(10 * S, S);
        assert_eq!(b.cap(), 10 * S);
        assert_eq!(b.next(), 10 * S);
    }

    #[test]
    fn grows_to_the_cap_then_stays_under_it() {
        // Averaged over many runs: each step's wait is larger than the one before until the
        // cap, and after enough failures the waits spread over base..cap (mean ~cap/2).
        let runs = 400;
        let steps = 12;
        let mut mean = vec![0f64; steps];
        for _ in 0..runs {
            let mut b = Backoff::new(S);
            for m in mean.iter_mut() {
                *m += b.next().as_secs_f64() / runs as f64;
            }
        }
        assert!(mean[0] < 2.5, "{mean:?}");
        for i in 1..5 {
            assert!(mean[i] > mean[i - 1] * 1.3, "step {i}: {mean:?}");
        }
        assert!(mean[steps - 1] > 25.0, "{mean:?}");
        assert!(mean[steps - 1] <= 60.0, "{mean:?}");
    }

    #[test]
    fn reset_brings_the_wait_back_to_the_base() {
        let mut b = Backoff::new(S);
        for _ in 0..20 {
            b.next();
        }
        b.reset();
        let w = b.next();
        assert!(w >= S && w <= 2 * S, "{w:?}");
    }

    #[test]
    fn jitter_spreads_the_waits() {
        // Sources that failed at the same instant do not retry in lockstep: the third wait of
        // 200 fresh backoffs takes many distinct values over its range.
        let thirds: Vec<Duration> = (0..200)
            .map(|_| {
                let mut b = Backoff::new(S);
                b.next();
                b.next();
                b.next()
            })
            .collect();
        let mut distinct = thirds.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 150, "{}", distinct.len());
        let lo = thirds.iter().min().copied().unwrap_or_default();
        let hi = thirds.iter().max().copied().unwrap_or_default();
        assert!(hi - lo > 4 * S && hi <= 8 * S, "{lo:?}..{hi:?}");
        // And one backoff's successive waits differ.
        let mut b = Backoff::new(S);
        let ws: Vec<Duration> = (0..10).map(|_| b.next()).collect();
        assert!(ws.windows(2).any(|w| w[0] != w[1]), "{ws:?}");
    }

    #[test]
    fn waits_as_shown() {
        assert_eq!(shown(Duration::from_millis(500)), "0.5 s");
        assert_eq!(shown(42 * S), "42 s");
    }
}
