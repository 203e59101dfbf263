//! One module per subcommand; each returns how the process should exit.

pub mod events;
pub mod ingest;
pub mod rejects;
pub mod relays;
pub mod sources;
pub mod status;

/// A successful run's outcome, mapped to the exit code by `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: a check failed (a source in fault), or nothing matched where that matters.
    CheckFailed,
}
