//! One writer per store: an advisory lock (`flock`) on `<store>.lock`, held for the writer's
//! life. The kernel releases it when the process ends in any way (kill -9 included), so a
//! lock file left by a dead process never blocks; the file only says who holds it now.
//!
//! Within one process the lock is shared: the UI holds it for its life and its in-process
//! ingest opens the store again under the same lock (the registry below).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use color_eyre::eyre::{bail, Result, WrapErr};

/// The lock held by this process on one store; released when the last clone is dropped.
#[derive(Clone)]
pub struct WriterLock {
    _held: Arc<Held>,
}

struct Held {
    /// Keeps the `flock` (released when the file is closed).
    _file: File,
}

/// The locks this process holds, by lock file path.
static HELD: Mutex<Vec<(PathBuf, Weak<Held>)>> = Mutex::new(Vec::new());

/// The lock file of the store at `store`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    store.with_file_name(name)
}

/// Creates the store's folder if needed (owner-only, as syncscope creates it).
pub fn create_store_dir(store: &Path) -> Result<()> {
    if let Some(parent) = store.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(parent).wrap_err_with(|| {
                format!("cannot create the store's folder {}", parent.display())
            })?;
        }
    }
    Ok(())
}

/// Takes the writer's lock of the store at `store`, or refuses at once, naming the process
/// that holds it.
pub fn acquire(store: &Path) -> Result<WriterLock> {
    create_store_dir(store)?;
    let path = lock_path(store);
    // The same file however it was named (relative, through links).
    let key = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
        .map(|d| d.join(name))
        .unwrap_or_else(|_| path.clone()),
        _ => path.clone(),
    };
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    held.retain(|(_, w)| w.strong_count() > 0);
    if let Some(h) = held
        .iter()
        .find(|(p, _)| *p == key)
        .and_then(|(_, w)| w.upgrade())
    {
        return Ok(WriterLock { _held: h });
    }
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts
        .open(&path)
        .wrap_err_with(|| format!("cannot open the store's lock file {}", path.display()))?;
    if !try_lock(&file).wrap_err_with(|| format!("cannot lock {}", path.display()))? {
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        bail!(
            "store {} is being written by another process ({}): one writer per store; stop it, or read beside it (`syncscope --no-ingest`, `events`, `status`, `serve`)",
            store.display(),
            describe_holder(&text)
        );
    }
    // Say who holds it now (what a refused writer prints). Best effort: on a full disk the
    // lock holds all the same, and a refused writer then says it cannot tell who.
    let me = holder_text();
    let _ = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(me.as_bytes()));
    let h = Arc::new(Held { _file: file });
    held.push((key, Arc::downgrade(&h)));
    Ok(WriterLock { _held: h })
}

/// An exclusive, non-blocking `flock`: false when another open file holds it.
fn try_lock(file: &File) -> std::io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor this function borrows; no pointers.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(false);
        }
        Err(e)
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(true)
    }
}

/// `pid=…`, `since=…` and `cmd=…` lines of this process.
fn holder_text() -> String {
    let cmd = std::fs::read("/proc/self/cmdline")
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" "));
    format!(
        "pid={}\nsince={}\ncmd={}\n",
        std::process::id(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
        crate::sanitize::one_line(&cmd)
    )
}

/// The holder as a refused writer says it: `pid 123, `syncscope ingest …`, since …`.
fn describe_holder(text: &str) -> String {
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| crate::sanitize::one_line(v.trim()))
            .filter(|v| !v.is_empty())
    };
    match (field("pid="), field("cmd="), field("since=")) {
        (Some(pid), cmd, since) => format!(
            "pid {pid}{}{}",
            cmd.map(|c| format!(", `{c}`")).unwrap_or_default(),
            since.map(|s| format!(", since {s}")).unwrap_or_default()
        ),
        _ => "it has not said which yet".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_file_sits_beside_the_store() {
        assert_eq!(
            lock_path(Path::new("/a/b/s.db")),
            PathBuf::from("/a/b/s.db.lock")
        );
        assert_eq!(lock_path(Path::new("s.db")), PathBuf::from("s.db.lock"));
    }

    #[test]
    fn one_process_shares_its_lock_and_releases_it_with_the_last_holder() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let a = acquire(&db).unwrap();
        let b = acquire(&db).unwrap();
        // Another open file description (as another process would have) is refused.
        let other = File::open(lock_path(&db)).unwrap();
        assert!(!try_lock(&other).unwrap());
        drop(a);
        assert!(!try_lock(&other).unwrap(), "still held by b");
        drop(b);
        assert!(try_lock(&other).unwrap(), "released by the last holder");
    }

    #[test]
    fn the_holder_is_described_from_its_file() {
        let text = holder_text();
        let d = describe_holder(&text);
        assert!(d.starts_with(&format!("pid {}", std::process::id())), "{d}");
        assert!(d.contains("since "), "{d}");
        assert_eq!(describe_holder(""), "it has not said which yet");
        // A hostile lock file cannot put control characters on the terminal.
        assert!(!describe_holder("pid=1\ncmd=\u{1b}[2Jx\n").contains('\u{1b}'));
    }
}
