//! The demo's story: what goes wrong, when, in every cycle of virtual time. Real systems take
//! hours (Gerrit retries every minute, an ngit relay is Dead after 24 h of failures, a
//! Spacedrive batch comes every 30 s); here everything is compressed into one 150 s cycle that
//! repeats, so the whole story plays within a few minutes.
//!
//! | cycle time | Gerrit | ngit | Spacedrive |
//! |---|---|---|---|
//! | 0-3 s | start-up `..all..` push to mirror-us | flaky relay live again | catch-up with the phone |
//! | 12-24 s | | flaky relay drops, reconnects (Syncing, Degraded), drops | |
//! | 25 s | mirror-eu refuses connections: pushes fail (`Connection refused`, stack trace) and are rescheduled every 5 s; new changes are consolidated into the pending push | | |
//! | 30 s | | | Ready -> Backfilling from the desktop: backfill session (correlation id), batches getting slower |
//! | 40-50 s | | a new relay is discovered and connects | |
//! | 58 s | | | the backfill buffer overflows (1,247 updates dropped: error), stuck dependencies (warning), -> CatchingUp -> Ready |
//! | 60-85 s | | a relay is rate-limited | |
//! | 70-110 s | | a relay flaps (0 <-> 2) | |
//! | 75 s | mirror-eu is back: the next retry succeeds (`N retries`) | | |
//! | 90 s | | the flaky relay is Dead | |
//! | 95-125 s | | | the NAS drops, comes back with a 35-day-old watermark, its backfill fails |
//! | 100 s | a non-fast-forward push to GitHub is rejected | the second ngit target answers 500 for 12 s | |
//! | 110 s | a `dropped-output` on the primary's stream | | |
//! | 140-150 s | | the flaky relay reconnects (Syncing, then live, stabilising) | |
//!
//! The demo opens at [`OPENING`] (54 s), so the first trouble shows within seconds.
//!
//! Filler traffic (ref updates replicated to every remote, peers backfilling from this device,
//! catch-up sessions) makes up the requested `--rate`.

use super::{Vt, SEC};

/// The length of one story cycle.
pub const CYCLE: Vt = 150 * SEC;

/// Where the demo opens: 54 s into the first cycle, with what happened before already in the
/// systems' files (as when a monitor is attached to running systems): the mirror has been
/// refusing pushes for half a minute, a relay is retrying, a backfill is about to overflow.
/// The background traffic starts here; only the story has a past.
pub const OPENING: Vt = 54 * SEC;

/// Gerrit: the mirror whose pushes fail.
pub const MIRROR_DOWN_FROM: Vt = 25 * SEC;
pub const MIRROR_DOWN_UNTIL: Vt = 75 * SEC;
/// Gerrit: how long a failed push waits before its retry (`replicationRetry`).
pub const RETRY_AFTER: Vt = 5 * SEC;
/// Gerrit: how long a scheduled push waits (`replicationDelay`).
pub const PUSH_DELAY: Vt = 2 * SEC;
/// Gerrit: the rejected non-fast-forward push.
pub const NON_FAST_FORWARD_AT: Vt = 100 * SEC;
/// Gerrit: the stream overflow.
pub const DROPPED_OUTPUT_AT: Vt = 110 * SEC;

/// ngit: the second target answers 500 in this window.
pub const METRICS_UNAVAILABLE: (Vt, Vt) = (100 * SEC, 112 * SEC);

/// Spacedrive: the backfill session that overflows.
pub const BACKFILL_AT: Vt = 30 * SEC;
pub const OVERFLOW_AT: Vt = 58 * SEC;
/// Spacedrive: the NAS story.
pub const NAS_DROPS_AT: Vt = 95 * SEC;
pub const NAS_BACK_AT: Vt = 110 * SEC;
pub const NAS_BACKFILL_FAILS_AT: Vt = 125 * SEC;

/// Where `vt` falls in its cycle, and which cycle it is.
pub fn in_cycle(vt: Vt) -> (u64, Vt) {
    (vt / CYCLE, vt % CYCLE)
}

/// Whether `mirror-eu` refuses connections at `vt`.
pub fn mirror_down(vt: Vt) -> bool {
    let (_, t) = in_cycle(vt);
    (MIRROR_DOWN_FROM..MIRROR_DOWN_UNTIL).contains(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_is_down_in_every_cycle() {
        assert!(!mirror_down(10 * SEC));
        assert!(mirror_down(30 * SEC));
        assert!(mirror_down(CYCLE + 30 * SEC));
        assert!(!mirror_down(CYCLE + 80 * SEC));
    }
}
