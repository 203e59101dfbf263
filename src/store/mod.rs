//! The embedded SQLite store: one writer (ingest), any number of readers (CLI, TUI, sqlite3).
//!
//! WAL mode lets readers and the writer proceed without waiting on each other. Nothing here
//! knows about terminals.

pub mod checkpointer;
pub mod ci;
pub mod explain;
mod insert;
mod interner;
pub mod lock;
pub mod metrics;
pub mod open;
pub mod overview;
pub mod query;
pub mod refs;
mod rekey;
pub mod relays;
pub mod retention;
pub mod schema;
pub mod textindex;
pub mod update;
pub mod views;
pub mod writer;

use std::path::Path;
use std::time::Duration;

use color_eyre::eyre::{bail, Result, WrapErr};
use rusqlite::{Connection, OpenFlags};

pub use ci::{CiHistory, CiJobRow, CiNight, CiPatternRow, CiPipelineRow, CiStrip};
pub use explain::{EmptyReason, IdMatch};
pub use query::{EventFilter, Reader, RejectRow, SourceOverview, SourceStatusRow};
pub use refs::RemoteSummary;
pub use update::StateUpdate;
pub use views::SessionSummary;
pub use writer::{Batch, BatchOutcome, Writer};

/// How long a connection waits on a lock before reporting `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the store at `path` and brings its schema up to date: the
/// writer's open (see [`open`] for what is refused). The caller holds the writer's lock
/// ([`lock::acquire`]) where one writer per store matters.
pub fn open(path: &Path) -> Result<Connection> {
    if path.is_dir() {
        bail!(
            "store {} is a directory, not a database file",
            path.display()
        );
    }
    lock::create_store_dir(path)?;
    let header = open::inspect(path)?;
    open::check_header(path, header)?;
    if header == open::Header::Missing {
        open::create(path)?;
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .wrap_err_with(|| format!("cannot open store {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Nothing is written before the version is known to be ours.
    open::checked_version(&conn, path)?;
    // Takes effect only when the file is new (before WAL mode is set); harmless otherwise.
    conn.execute_batch("PRAGMA page_size=16384;")?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .wrap_err_with(|| open::damaged(path))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!(
            "store {}: cannot switch to WAL mode (got {mode}); is it on a network file system?",
            path.display()
        );
    }
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=OFF;",
    )?;
    schema::migrate(&mut conn).wrap_err_with(|| format!("store {}", path.display()))?;
    Ok(conn)
}

/// Opens an existing store for reading only. A reader never creates a store (a mistyped
/// `--db` is an error, not an empty answer), never upgrades one (an older schema is an error
/// that says a writer upgrades it), and never writes.
pub fn open_reader(path: &Path) -> Result<Reader> {
    let header = open::inspect(path)?;
    match header {
        open::Header::Missing => bail!(
            "no store at {}: run `syncscope ingest` first, or give the store with --db",
            path.display()
        ),
        open::Header::Empty => bail!(
            "store {} is empty (0 bytes): nothing has been ingested into it yet",
            path.display()
        ),
        _ => open::check_header(path, header)?,
    }
    if path.is_dir() {
        bail!(
            "store {} is a directory, not a database file",
            path.display()
        );
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .wrap_err_with(|| format!("cannot open store {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch("PRAGMA query_only=1;")?;
    let v = open::checked_version(&conn, path)?;
    if v < schema::LATEST_VERSION {
        return Err(open::older_error(path, v));
    }
    conn.execute_batch("PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=OFF;")?;
    Ok(Reader::new(conn))
}

/// Current wall-clock time as Unix seconds.
pub fn unix_now() -> i64 {
    crate::model::now_utc().timestamp()
}
