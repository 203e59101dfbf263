//! WAL checkpoints on a thread of their own, so the single writer mostly only writes.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1000 pages: the
//! writer stops to copy every page back into the database file and to fsync it, a quarter of
//! its time in a bulk ingest. Here the writer's commit hook asks a thread with its own
//! connection to run that PASSIVE checkpoint (which never blocks the writer or readers) each
//! time the WAL has grown by that much, while the writer goes on.
//!
//! A checkpoint that overlaps commits never leaves the WAL fully copied back, and only a
//! fully copied WAL starts over from its beginning. So once the WAL is a few times that size,
//! the writer itself copies back, when the thread is idle, the little the thread has not (the
//! commits since its last pass); its next transaction then starts the WAL over. If the thread
//! is stuck or gone, the writer checkpoints everything itself, as SQLite would, so the WAL
//! stays bounded either way.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

/// WAL sizes, in pages, that call for checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Growth of the WAL since the last request that makes the thread checkpoint.
    pub thread: i32,
    /// Size at which the writer finishes an idle thread's work so the WAL can start over.
    pub restart: i32,
    /// Size at which the writer waits for a busy thread, then checkpoints itself.
    pub writer: i32,
}

impl Default for Limits {
    /// SQLite's own 1000 pages for the thread (16 MiB at our page size).
    fn default() -> Self {
        Limits {
            thread: 1000,
            restart: 4000,
            writer: 16000,
        }
    }
}

/// What the writer's hook and the thread share.
struct Shared {
    limits: Limits,
    state: Mutex<State>,
    /// Signalled on every change of `state`.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// A checkpoint is asked for and the thread has not started it yet.
    wanted: bool,
    /// WAL size (pages) at the last request; 0 after the WAL started over.
    requested_at: i32,
    /// The thread is checkpointing now.
    busy: bool,
    /// The writer is closing: the thread exits.
    stop: bool,
    /// The thread has exited: the writer checkpoints itself.
    gone: bool,
    /// Checkpoints the thread ran.
    passes: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(st)
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The checkpoint thread of one writer connection; dropping it stops and joins the thread.
pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to the store at `path` and hooks `writer`'s
    /// commits to it.
    pub fn start(path: &Path, writer: &mut Connection) -> Result<Checkpointer> {
        Checkpointer::start_with(path, writer, Limits::default())
    }

    pub fn start_with(
        path: &Path,
        writer: &mut Connection,
        limits: Limits,
    ) -> Result<Checkpointer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .wrap_err_with(|| format!("cannot open store {} to checkpoint it", path.display()))?;
        conn.busy_timeout(super::BUSY_TIMEOUT)?;
        conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        let shared = Arc::new(Shared {
            limits,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("syncscope-wal".into())
            .spawn(move || {
                run(&theirs, &conn);
                theirs.lock().gone = true;
                theirs.changed.notify_all();
            })
            .wrap_err("cannot start the WAL checkpoint thread")?;
        let hooked = Arc::clone(&shared);
        writer.wal_hook(Some(move |wal: &mut Wal, pages| {
            hook(&hooked, wal, pages);
            Ok(())
        }))?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }
}

/// The thread: one PASSIVE checkpoint per request (requests made meanwhile fold into one).
fn run(shared: &Shared, conn: &Connection) {
    loop {
        {
            let mut st = shared.lock();
            while !st.wanted && !st.stop {
                st = shared.wait(st);
            }
            if st.stop {
                return;
            }
            st.wanted = false;
            st.busy = true;
        }
        // PASSIVE copies what no reader still needs and never waits. A failure (disk full,
        // I/O error) shows up again in the writer's own commits, which report it.
        let _ = conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE);
        {
            let mut st = shared.lock();
            st.busy = false;
            st.passes += 1;
        }
        shared.changed.notify_all();
    }
}

/// After each commit, with `pages` in the WAL: ask the thread, or checkpoint here (see the
/// module's text). The commit has happened whatever this does, so a checkpoint that cannot
/// run now (SQLITE_BUSY) is simply tried again at a later commit.
fn hook(shared: &Shared, wal: &mut Wal, pages: i32) {
    let limits = shared.limits;
    let mut st = shared.lock();
    if pages < st.requested_at {
        st.requested_at = 0; // the WAL started over
    }
    if pages < limits.thread {
        return;
    }
    if !st.gone && st.busy && pages >= limits.writer {
        while st.busy && !st.gone {
            st = shared.wait(st);
        }
    }
    let here = st.gone || (!st.busy && pages >= limits.restart) || pages >= limits.writer;
    if here {
        st.wanted = false;
        st.requested_at = 0;
        drop(st);
        let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
    } else if !st.busy && pages >= st.requested_at + limits.thread && pages < limits.restart {
        st.wanted = true;
        st.requested_at = pages;
        drop(st);
        shared.changed.notify_all();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 16 * 1024;
    /// Small limits, so a test writes a few MiB instead of hundreds.
    const SMALL: Limits = Limits {
        thread: 10,
        restart: 40,
        writer: 160,
    };

    /// A new store with an empty WAL (the schema's pages copied back).
    fn store(dir: &tempfile::TempDir) -> (std::path::PathBuf, Connection) {
        let path = dir.path().join("s.db");
        let w = super::super::open(&path).unwrap();
        w.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
        (path, w)
    }

    fn wal_pages(path: &Path) -> u64 {
        let wal = path.with_extension("db-wal");
        std::fs::metadata(wal).map(|m| m.len() / PAGE).unwrap_or(0)
    }

    /// 3000 commits of one 64 KiB row (5 WAL pages each): 15,000 pages in all.
    fn write(w: &Connection) {
        w.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let blob = vec![7u8; 64 * 1024];
        for _ in 0..3000 {
            w.execute("INSERT INTO t VALUES (?1)", [&blob]).unwrap();
        }
    }

    #[test]
    fn with_the_thread_the_wal_stays_bounded_and_every_row_lands_in_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut w) = store(&dir);
        let ck = Checkpointer::start_with(&path, &mut w, SMALL).unwrap();
        write(&w);
        // The file keeps its largest size; it never held more than the writer's limit.
        let most = wal_pages(&path);
        assert!(
            most <= (SMALL.writer + 10) as u64,
            "WAL reached {most} pages"
        );
        assert!(ck.shared.lock().passes > 0, "the thread never checkpointed");
        drop(w);
        drop(ck);
        // The last connection to close copied back the rest and removed the WAL.
        assert_eq!(wal_pages(&path), 0);
        let r = Connection::open(&path).unwrap();
        let n: i64 = r
            .query_row("SELECT count(*) FROM t", [], |x| x.get(0))
            .unwrap();
        assert_eq!(n, 3000);
    }

    #[test]
    fn without_the_thread_the_writer_checkpoints_itself() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut w) = store(&dir);
        let shared = Arc::new(Shared {
            limits: SMALL,
            state: Mutex::new(State {
                gone: true,
                ..State::default()
            }),
            changed: Condvar::new(),
        });
        w.wal_hook(Some(move |wal: &mut Wal, pages| {
            hook(&shared, wal, pages);
            Ok(())
        }))
        .unwrap();
        write(&w);
        let most = wal_pages(&path);
        assert!(
            most <= (SMALL.thread + 5) as u64,
            "WAL reached {most} pages"
        );
    }
}
