//! What a store file is before SQLite touches it, and the rules of opening one (issue 16):
//! - a store of a newer schema is refused by every command and left untouched;
//! - a damaged or foreign file is a clear error naming it, never a panic;
//! - only a writer creates or upgrades a store; a reader on an older schema says so and stops
//!   (an older ingest may still be writing it);
//! - a store syncscope creates is owner-only (0600; SQLite gives -wal and -shm the same mode)
//!   and appears whole: made under a temporary name, then linked into place.

use std::io::Read;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{bail, Result, WrapErr};
use rusqlite::{Connection, OpenFlags};

use super::schema::LATEST_VERSION;

/// The first 16 bytes of every SQLite database.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Size of the database header.
const HEADER: usize = 100;

/// What the file at a store path is, from its header alone (nothing is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    Missing,
    /// Zero bytes: SQLite takes it as a new, empty database.
    Empty,
    /// Shorter than a SQLite header.
    Truncated(u64),
    /// Not a SQLite header.
    NotSqlite,
    /// A SQLite database; the schema version its header holds (a committed migration still in
    /// the WAL is not in the header yet: SQLite's own answer is checked after opening).
    Sqlite {
        user_version: i64,
    },
}

pub fn inspect(path: &Path) -> Result<Header> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Header::Missing),
        Err(e) => return Err(e).wrap_err_with(|| format!("cannot read store {}", path.display())),
    };
    let mut head = Vec::with_capacity(HEADER);
    (&mut f)
        .take(HEADER as u64)
        .read_to_end(&mut head)
        .wrap_err_with(|| format!("cannot read store {}", path.display()))?;
    Ok(match head.len() {
        0 => Header::Empty,
        n if n < MAGIC.len() || &head[..MAGIC.len()] != MAGIC => Header::NotSqlite,
        n if n < HEADER => Header::Truncated(n as u64),
        _ => Header::Sqlite {
            user_version: i64::from(i32::from_be_bytes([head[60], head[61], head[62], head[63]])),
        },
    })
}

/// The refusal of a store a newer syncscope wrote.
pub fn newer_error(path: &Path, version: i64) -> color_eyre::Report {
    color_eyre::eyre::eyre!(
        "store {} has schema version {version}, written by a newer syncscope (this one knows up to {LATEST_VERSION}): left untouched; use that syncscope, or upgrade this one",
        path.display()
    )
}

/// Refuses what no command may open: a newer schema, a damaged header, a foreign file.
pub fn check_header(path: &Path, header: Header) -> Result<()> {
    match header {
        Header::Sqlite { user_version } if user_version > LATEST_VERSION => {
            Err(newer_error(path, user_version))
        }
        Header::NotSqlite => bail!(
            "store {} is damaged or not a store: it does not start with a SQLite header (run `syncscope check --db {}`)",
            path.display(),
            path.display()
        ),
        Header::Truncated(n) => bail!(
            "store {} is damaged: {n} bytes, shorter than a SQLite header (run `syncscope check --db {}`)",
            path.display(),
            path.display()
        ),
        _ => Ok(()),
    }
}

/// The schema version SQLite sees (the WAL included), refused when newer than ours, and a
/// SQLite database that is not a store (tables but no schema version) refused too.
pub fn checked_version(conn: &Connection, path: &Path) -> Result<i64> {
    let v = super::schema::version(conn).wrap_err_with(|| damaged(path))?;
    if v < 0 {
        bail!(
            "{}: its schema version is {v}, which no syncscope writes",
            damaged(path)
        );
    }
    if v > LATEST_VERSION {
        return Err(newer_error(path, v));
    }
    if v == 0 {
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )
            .wrap_err_with(|| damaged(path))?;
        if tables > 0 {
            bail!(
                "{} is a SQLite database but not a syncscope store (it has tables and no schema version): left untouched",
                path.display()
            );
        }
    }
    Ok(v)
}

/// "store X is damaged or unreadable", for errors SQLite gives while opening.
pub fn damaged(path: &Path) -> String {
    format!(
        "store {} is damaged or unreadable (run `syncscope check --db {}`)",
        path.display(),
        path.display()
    )
}

/// The reader's refusal of an older schema.
pub fn older_error(path: &Path, version: i64) -> color_eyre::Report {
    color_eyre::eyre::eyre!(
        "store {} has schema version {version}, older than this syncscope's {LATEST_VERSION}: a writer (`syncscope ingest`, or the UI with sources) upgrades it; a reader never changes a store (an older ingest may still be writing it)",
        path.display()
    )
}

/// An error of a command on the store at `path`, said so that the person at the terminal
/// knows what happened to which file: a full disk is named as such (SQLite says "database or
/// disk is full") with `ENOSPC`, a damaged file as damaged, with how to check it. Other
/// errors are returned as they are.
pub fn explain(path: &Path, e: color_eyre::Report) -> color_eyre::Report {
    use rusqlite::ErrorCode;
    let code = |want: &[ErrorCode]| {
        e.chain().any(|c| {
            c.downcast_ref::<rusqlite::Error>()
                .and_then(rusqlite::Error::sqlite_error_code)
                .is_some_and(|code| want.contains(&code))
                || c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    want == [ErrorCode::DiskFull] && io.raw_os_error() == Some(libc::ENOSPC)
                })
        })
    };
    let said = e.chain().any(|c| {
        let t = c.to_string();
        t.contains("ENOSPC") || t.contains("is damaged")
    });
    if said {
        e
    } else if code(&[ErrorCode::DiskFull]) {
        e.wrap_err(format!(
            "store {}: the disk is full (ENOSPC); what was committed is kept: free space and start again",
            path.display()
        ))
    } else if code(&[ErrorCode::DatabaseCorrupt, ErrorCode::NotADatabase])
        || e.chain().any(|c| {
            matches!(
                c.downcast_ref::<rusqlite::Error>(),
                Some(
                    rusqlite::Error::FromSqlConversionFailure(..)
                        | rusqlite::Error::Utf8Error(..)
                        | rusqlite::Error::InvalidColumnType(..)
                        | rusqlite::Error::IntegralValueOutOfRange(..)
                )
            )
        })
    {
        // A value of the wrong type where the schema has one type: a damaged page.
        e.wrap_err(damaged(path))
    } else {
        e
    }
}

/// Makes a new store at `path` whole: an owner-only file under a temporary name, the schema
/// and WAL mode in it, then linked into place (a reader never sees it half made). Loses no
/// race: if a store appeared at `path` meanwhile, that one stays and this one is removed.
pub fn create(path: &Path) -> Result<()> {
    let tmp: PathBuf = {
        let mut name = std::ffi::OsString::from(".");
        name.push(path.file_name().unwrap_or_default());
        name.push(format!(".new-{}", std::process::id()));
        path.with_file_name(name)
    };
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    drop(
        opts.open(&tmp)
            .wrap_err_with(|| format!("cannot create store {}", path.display()))?,
    );
    let made = (|| -> Result<()> {
        let mut conn = Connection::open_with_flags(
            &tmp,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA page_size=16384;")?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("cannot switch to WAL mode (got {mode}); is it on a network file system?");
        }
        super::schema::migrate(&mut conn)?;
        conn.close().map_err(|(_, e)| e)?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e.into()),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    made.wrap_err_with(|| format!("cannot create store {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart_without_opening() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        assert_eq!(inspect(&p).unwrap(), Header::Missing);
        std::fs::write(&p, b"").unwrap();
        assert_eq!(inspect(&p).unwrap(), Header::Empty);
        std::fs::write(&p, b"SQLite format 3\0abc").unwrap();
        assert_eq!(inspect(&p).unwrap(), Header::Truncated(19));
        std::fs::write(&p, vec![0xAB; 4096]).unwrap();
        assert_eq!(inspect(&p).unwrap(), Header::NotSqlite);
        std::fs::remove_file(&p).unwrap();
        create(&p).unwrap();
        assert_eq!(
            inspect(&p).unwrap(),
            Header::Sqlite {
                user_version: LATEST_VERSION
            }
        );
        assert!(check_header(&p, Header::NotSqlite)
            .unwrap_err()
            .to_string()
            .contains("s.db is damaged or not a store"));
    }

    #[cfg(unix)]
    #[test]
    fn a_created_store_is_owner_only_and_its_wal_follows() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new/dir/s.db");
        let w = crate::store::Writer::open(&p).unwrap();
        w.connection()
            .execute_batch("INSERT INTO meta (key, value) VALUES ('x', 1)")
            .unwrap();
        let mode = |q: &Path| std::fs::metadata(q).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        let wal = p.with_file_name("s.db-wal");
        let shm = p.with_file_name("s.db-shm");
        assert!(wal.exists() && shm.exists());
        assert_eq!((mode(&wal), mode(&shm)), (0o600, 0o600));
        assert_eq!(mode(&super::super::lock::lock_path(&p)), 0o600);
        assert_eq!(mode(&dir.path().join("new/dir")), 0o700);
        assert_eq!(mode(&dir.path().join("new")), 0o700);
    }

    #[test]
    fn a_full_disk_and_a_damaged_page_are_named_with_the_store() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        );
        let e = color_eyre::Report::new(full).wrap_err("cannot store a batch from jsonl:x");
        let said = format!("{:#}", explain(Path::new("/srv/s.db"), e));
        assert!(
            said.starts_with("store /srv/s.db: the disk is full (ENOSPC)"),
            "{said}"
        );
        assert!(said.contains("database or disk is full"), "{said}");
        // Said once, however many layers pass it on.
        let again = explain(Path::new("/srv/s.db"), color_eyre::eyre::eyre!("{said}"));
        assert_eq!(format!("{again:#}"), said);
        let corrupt = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            None,
        );
        let said = format!(
            "{:#}",
            explain(Path::new("/srv/s.db"), color_eyre::Report::new(corrupt))
        );
        assert!(said.starts_with("store /srv/s.db is damaged"), "{said}");
        let other = explain(
            Path::new("/srv/s.db"),
            color_eyre::eyre::eyre!("no such pane"),
        );
        assert_eq!(other.to_string(), "no such pane");
    }

    #[test]
    fn a_negative_schema_version_is_damage_not_a_migration() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.db");
        drop(crate::store::Writer::open(&p).unwrap());
        Connection::open(&p)
            .unwrap()
            .pragma_update(None, "user_version", -7)
            .unwrap();
        for err in [
            crate::store::Writer::open(&p).err().unwrap().to_string(),
            crate::store::open_reader(&p).err().unwrap().to_string(),
        ] {
            assert!(err.contains("is damaged"), "{err}");
            assert!(err.contains("-7"), "{err}");
        }
    }

    #[test]
    fn a_foreign_sqlite_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("other.db");
        Connection::open(&p)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let before = std::fs::read(&p).unwrap();
        let err = crate::store::Writer::open(&p).err().unwrap().to_string();
        assert!(err.contains("not a syncscope store"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), before);
    }
}
