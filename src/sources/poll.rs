//! The one poll loop of every polling source (`gerrit-rest:`, `ngit-metrics:`, `gitlab:`, and
//! any new one such as `prometheus:`): a polling source is a [`Poller`], one `poll()` that
//! reads the upstream once, sends what it found through the [`SourceCtx`] (events, rejects,
//! checkpoint: one batch, one transaction) and says how it went. [`run`] does the rest:
//!
//! - polls every `interval`; after a failed poll waits the one [`Backoff`] instead (reset by
//!   the next good poll), so a down upstream is asked less and less often, up to the cap;
//! - reports the source's status: `ok` (or whatever a good poll says, e.g. `fault` when some
//!   projects failed) after a good poll, the failure's state (`backoff` or `fault`) with
//!   "; next poll in N s" after a failed one;
//! - stops when the ingest is cancelled, and after one poll with `--once` (a failure the
//!   poller marks [`Polled::fatal`] then ends the run with an error naming the source).
//!
//! ```ignore
//! struct Mine { url: String }
//! impl Poller for Mine {
//!     fn poll(&mut self, ctx: &SourceCtx) -> Result<Polled> {
//!         // read, ctx.send_batch(...), then:
//!         Ok(Polled::ok(""))
//!     }
//! }
//! poll::run(ctx, &Every::new(ctx.scrape_interval), Mine { url })
//! ```

use std::time::Duration;

use color_eyre::eyre::{bail, Result};

use crate::ingest::{SourceCtx, SourceState};
use crate::sources::backoff::{self, Backoff};

/// How one poll went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// The upstream was read: the next poll comes after the interval, the backoff is reset.
    /// `state` is usually `Ok`; a poll that read the upstream but not all of it may say `Fault`.
    Read { state: SourceState, message: String },
    /// The upstream could not be read: the next poll comes after the backoff.
    Failed {
        state: SourceState,
        reason: String,
        /// With `--once`, this failure fails the ingest (else it is a reading, e.g. "target
        /// down", stored like any other).
        fatal: bool,
    },
}

impl Polled {
    pub fn ok(message: impl Into<String>) -> Polled {
        Polled::Read {
            state: SourceState::Ok,
            message: message.into(),
        }
    }

    /// A failure that backs off; with `--once` the run still ends normally.
    pub fn backoff(reason: impl Into<String>) -> Polled {
        Polled::Failed {
            state: SourceState::Backoff,
            reason: reason.into(),
            fatal: false,
        }
    }

    /// A fault that backs off; with `--once` it fails the ingest.
    pub fn fatal(reason: impl Into<String>) -> Polled {
        Polled::Failed {
            state: SourceState::Fault,
            reason: reason.into(),
            fatal: true,
        }
    }
}

/// A polling source: one read of its upstream per call.
pub trait Poller {
    /// Reads the upstream once and sends what it found through `ctx`. An `Err` stops the
    /// source (the store or the ingest failed, not the upstream).
    fn poll(&mut self, ctx: &SourceCtx) -> Result<Polled>;
}

impl<F: FnMut(&SourceCtx) -> Result<Polled>> Poller for F {
    fn poll(&mut self, ctx: &SourceCtx) -> Result<Polled> {
        self(ctx)
    }
}

/// The cadence of a poll loop.
#[derive(Debug, Clone)]
pub struct Every {
    pub interval: Duration,
    /// The backoff after failures (base: the interval, the policy's cap).
    pub backoff: Backoff,
    /// The word in the status line: "next poll in 5 s" / "next scrape in 5 s".
    pub verb: &'static str,
}

impl Every {
    pub fn new(interval: Duration) -> Every {
        Every {
            interval,
            backoff: Backoff::new(interval),
            verb: "poll",
        }
    }

    pub fn verb(mut self, verb: &'static str) -> Every {
        self.verb = verb;
        self
    }
}

/// Runs `poller` until cancelled (or once, with `--once`). See the module doc.
pub fn run(ctx: &SourceCtx, every: &Every, mut poller: impl Poller) -> Result<()> {
    let mut backoff = every.backoff.clone();
    loop {
        if ctx.cancelled() {
            return Ok(());
        }
        let wait = match poller.poll(ctx)? {
            Polled::Read { state, message } => {
                backoff.reset();
                ctx.status(state, message);
                every.interval
            }
            Polled::Failed {
                state,
                reason,
                fatal,
            } => {
                if ctx.once {
                    ctx.status(state, reason.clone());
                    if fatal {
                        bail!("{}: {reason}", ctx.key);
                    }
                    return Ok(());
                }
                let wait = backoff.next();
                ctx.status(
                    state,
                    format!("{reason}; next {} in {}", every.verb, backoff::shown(wait)),
                );
                wait
            }
        };
        if ctx.once || !ctx.sleep(wait) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::SourceMsg;
    use tokio::sync::mpsc;

    /// The statuses a run reported, in order.
    fn statuses(rx: &mut mpsc::Receiver<SourceMsg>) -> Vec<(SourceState, String)> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            if let SourceMsg::Status { state, message, .. } = m {
                out.push((state, message));
            }
        }
        out
    }

    fn fast() -> Every {
        Every {
            interval: Duration::from_millis(5),
            backoff: Backoff::with_cap(Duration::from_millis(5), Duration::from_millis(40)),
            verb: "scrape",
        }
    }

    #[test]
    fn backs_off_on_failures_resets_on_success_and_stops_when_cancelled() {
        let (tx, mut rx) = mpsc::channel(100);
        let ctx = SourceCtx::for_test("t:x", false, tx);
        let mut n = 0;
        let mut gaps = Vec::new();
        let mut last = std::time::Instant::now();
        let poller = |ctx: &SourceCtx| -> Result<Polled> {
            n += 1;
            gaps.push(last.elapsed());
            last = std::time::Instant::now();
            Ok(match n {
                1..=3 => Polled::backoff(format!("down {n}")),
                4 => Polled::ok("fine"),
                5 => Polled::fatal("401"),
                _ => {
                    ctx.cancel.cancel();
                    Polled::ok("")
                }
            })
        };
        run(&ctx, &fast(), poller).unwrap();
        assert_eq!(n, 6);
        let s = statuses(&mut rx);
        let shown: Vec<(SourceState, &str)> = s
            .iter()
            .map(|(st, m)| (*st, m.split(';').next().unwrap_or("")))
            .collect();
        assert_eq!(
            shown,
            [
                (SourceState::Backoff, "down 1"),
                (SourceState::Backoff, "down 2"),
                (SourceState::Backoff, "down 3"),
                (SourceState::Ok, "fine"),
                (SourceState::Fault, "401"),
                (SourceState::Ok, ""),
            ]
        );
        assert!(s[0].1.contains("; next scrape in 0.0"), "{}", s[0].1);
        // After a failure the wait is the backoff's (never below the interval); the wait
        // after the success is the interval, and the failure after it starts from the base.
        assert!(gaps[1..].iter().all(|g| *g >= Duration::from_millis(5)));
        assert!(gaps[4] < Duration::from_millis(40), "{gaps:?}");
    }

    #[test]
    fn once_polls_once() {
        for (polled, fails) in [
            (Polled::ok("x"), false),
            (Polled::backoff("target down"), false),
            (Polled::fatal("HTTP 401"), true),
        ] {
            let (tx, mut rx) = mpsc::channel(100);
            let ctx = SourceCtx::for_test("gerrit-rest:u", true, tx);
            let mut n = 0;
            let p = polled.clone();
            let r = run(&ctx, &fast(), |_: &SourceCtx| {
                n += 1;
                Ok(p.clone())
            });
            assert_eq!(n, 1);
            assert_eq!(r.is_err(), fails, "{polled:?}");
            if let Err(e) = r {
                assert_eq!(e.to_string(), "gerrit-rest:u: HTTP 401");
            }
            // No "next poll" promised when there is none.
            assert!(statuses(&mut rx).iter().all(|(_, m)| !m.contains("next")));
        }
    }

    #[test]
    fn a_store_failure_stops_the_source() {
        let (tx, _rx) = mpsc::channel(100);
        let ctx = SourceCtx::for_test("t:x", false, tx);
        let r = run(&ctx, &fast(), |_: &SourceCtx| -> Result<Polled> {
            Err(color_eyre::eyre::eyre!("the store writer stopped"))
        });
        assert!(r.is_err());
    }
}
