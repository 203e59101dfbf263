//! One module per subcommand; each returns how the process should exit.

pub mod check;
pub mod demo;
pub mod events;
pub mod failures;
pub mod ingest;
pub mod rejects;
pub mod relays;
pub mod serve;
pub mod sources;
pub mod status;
pub mod tui;

/// A successful run's outcome, mapped to the exit code by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: a check failed (a source in fault), or nothing matched where that matters.
    CheckFailed,
}

/// A duration in seconds as people read it at a glance: `42s`, `17m`, `5h`, `3d`.
pub fn age(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
