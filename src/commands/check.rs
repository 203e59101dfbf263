//! `syncscope check`: is the store sound? SQLite's integrity check and syncscope's own cheap
//! invariants; `--recover NEW` copies what is readable of a damaged store into a new one.
//! The checked store is never written.

use std::path::Path;

use color_eyre::eyre::{bail, Result, WrapErr};
use rusqlite::{Connection, OpenFlags};

use super::Outcome;
use crate::cli::CheckArgs;
use crate::sanitize::one_line;
use crate::store::open::{self as store_open, Header};
use crate::store::schema::{self, LATEST_VERSION};

/// At most this many problems from `PRAGMA integrity_check`.
const MAX_PROBLEMS: u32 = 100;

pub fn run(args: CheckArgs, db: std::path::PathBuf) -> Result<Outcome> {
    if let Some(new) = &args.recover {
        let lines = recover(&db, new)?;
        for l in &lines {
            eprintln!("{}", one_line(l));
        }
        let problems = problems(new)?;
        if problems.is_empty() {
            println!("ok: recovered into {}", new.display());
            eprintln!(
                "check it (`syncscope events --db {}`), then, with nothing running on the store, move it in place of {} (and remove {}-wal, {}-shm)",
                new.display(),
                db.display(),
                db.display(),
                db.display()
            );
            return Ok(Outcome::Ok);
        }
        print_problems(new, &problems);
        return Ok(Outcome::CheckFailed);
    }
    let problems = problems(&db)?;
    if problems.is_empty() {
        println!("ok");
        return Ok(Outcome::Ok);
    }
    print_problems(&db, &problems);
    println!(
        "to recover: `syncscope check --db {} --recover NEW` copies what is readable into a new store NEW (or `sqlite3 {} .recover | sqlite3 NEW`); sources read again from their checkpoints, and what is stored twice is stored once",
        db.display(),
        db.display()
    );
    Ok(Outcome::CheckFailed)
}

fn print_problems(db: &Path, problems: &[String]) {
    println!("store {}: {} problem(s):", db.display(), problems.len());
    for p in problems {
        println!("  {}", one_line(p));
    }
}

/// Opens an existing store without creating, upgrading or writing it.
fn open_untouched(db: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .wrap_err_with(|| format!("cannot open store {}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA query_only=1;")?;
    Ok(conn)
}

/// What is wrong with the store at `db` (empty: nothing). A store of a newer schema is
/// refused (an error), as by every command.
pub fn problems(db: &Path) -> Result<Vec<String>> {
    let header = store_open::inspect(db)?;
    match header {
        Header::Missing => bail!("no store at {}", db.display()),
        Header::Empty => return Ok(Vec::new()),
        Header::NotSqlite => {
            return Ok(vec![
                "the file does not start with a SQLite header: it is damaged, or not a store"
                    .into(),
            ])
        }
        Header::Truncated(n) => {
            return Ok(vec![format!(
                "the file is {n} bytes, shorter than a SQLite header"
            )])
        }
        Header::Sqlite { user_version } if user_version > LATEST_VERSION => {
            return Err(store_open::newer_error(db, user_version))
        }
        Header::Sqlite { .. } => {}
    }
    let conn = open_untouched(db)?;
    let version = match store_open::checked_version(&conn, db) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("newer syncscope") => return Err(e),
        Err(e) => return Ok(vec![format!("{e:#}")]),
    };
    let mut out = Vec::new();
    let integrity: Result<Vec<String>, rusqlite::Error> = (|| {
        let mut st = conn.prepare(&format!("PRAGMA integrity_check({MAX_PROBLEMS})"))?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect()
    })();
    match integrity {
        Ok(rows) if rows == ["ok"] => {}
        Ok(rows) => out.extend(rows),
        Err(e) => out.push(format!("the integrity check could not finish: {e}")),
    }
    if out.is_empty() && version == LATEST_VERSION {
        out.extend(invariants(&conn)?);
    }
    Ok(out)
}

/// syncscope's own invariants, where cheap: the per-minute counts add up to the events.
fn invariants(conn: &Connection) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let (events, counted): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM events), (SELECT coalesce(sum(n), 0) FROM event_counts)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .wrap_err("cannot count the events")?;
    if events != counted {
        out.push(format!(
            "the per-minute counts (event_counts) add up to {counted} events, the events table holds {events}"
        ));
    }
    let negative: i64 = conn
        .query_row("SELECT count(*) FROM event_counts WHERE n <= 0", [], |r| {
            r.get(0)
        })
        .wrap_err("cannot read event_counts")?;
    if negative > 0 {
        out.push(format!("{negative} per-minute counts are zero or negative"));
    }
    Ok(out)
}

/// Copies what is readable of the store at `old` into a new store at `new` (of the same
/// schema, then upgraded); derived counts and indexes are rebuilt from what was copied.
/// Returns what it did, table by table.
pub fn recover(old: &Path, new: &Path) -> Result<Vec<String>> {
    if new.exists() {
        bail!("{} exists: --recover writes a new store", new.display());
    }
    match store_open::inspect(old)? {
        Header::Missing => bail!("no store at {}", old.display()),
        Header::Sqlite { user_version } if user_version > LATEST_VERSION => {
            return Err(store_open::newer_error(old, user_version))
        }
        Header::Sqlite { .. } => {}
        _ => bail!(
            "store {}: its SQLite header is gone, so nothing in it can be read: restore it from a backup, or start a new store (the sources are read again)",
            old.display()
        ),
    }
    let version = {
        let c = open_untouched(old)?;
        store_open::checked_version(&c, old)
            .wrap_err("cannot read the schema version: nothing can be recovered")?
    };
    crate::store::lock::create_store_dir(new)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    drop(
        opts.open(new)
            .wrap_err_with(|| format!("cannot create {}", new.display()))?,
    );
    let mut conn = Connection::open(new)?;
    conn.execute_batch("PRAGMA page_size=16384;")?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    // Each row copied commits on its own (a read error never takes others with it); the new
    // store is synced when closed.
    conn.execute_batch("PRAGMA synchronous=OFF;")?;
    schema::migrate_to(&mut conn, version)?;
    conn.execute(
        "ATTACH DATABASE ?1 AS old",
        [old.to_string_lossy().as_ref()],
    )
    .wrap_err_with(|| format!("cannot read {}", old.display()))?;
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut report = Vec::new();
    let mut lost = false;
    for t in &tables {
        let (said, whole) = copy_table(&conn, t)?;
        report.push(said);
        lost |= !whole;
    }
    if lost {
        // Where each source stopped no longer says what is stored: every source reads again
        // from its start, and what is stored already is not stored twice.
        conn.execute("DELETE FROM checkpoints", [])?;
        report.push(
            "checkpoints dropped: rows were lost, so every source is read again from its start (nothing already stored is stored twice)".into(),
        );
    }
    rebuild_derived(&conn, version)?;
    conn.execute_batch("DETACH DATABASE old;")?;
    schema::migrate(&mut conn)?;
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA wal_checkpoint(TRUNCATE);")?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(report)
}

/// Copies one table: in one statement when it reads whole, else row by row, skipping over
/// unreadable stretches of a rowid table. Returns what it did, and whether the table was
/// read whole.
fn copy_table(conn: &Connection, table: &str) -> Result<(String, bool)> {
    let cols: Vec<String> = conn
        .prepare(&format!("PRAGMA main.table_info(\"{table}\")"))?
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<Result<_, _>>()?;
    let list = cols
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    // One statement: all of it or (on an unreadable page) none of it.
    let bulk = conn.execute(
        &format!(
            "INSERT OR IGNORE INTO main.\"{table}\" ({list}) SELECT {list} FROM old.\"{table}\""
        ),
        [],
    );
    if let Ok(n) = bulk {
        return Ok((format!("{table}: {n} rows copied"), true));
    }
    let marks = (1..=cols.len())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut insert = conn.prepare(&format!(
        "INSERT OR IGNORE INTO main.\"{table}\" ({list}) VALUES ({marks})"
    ))?;
    let has_rowid = conn
        .prepare(&format!("SELECT rowid FROM old.\"{table}\" LIMIT 0"))
        .is_ok();
    let mut copied = 0u64;
    let mut first_error: Option<String> = None;
    if let Err(e) = conn.prepare(&format!("SELECT {list} FROM old.\"{table}\" LIMIT 0")) {
        return Ok((format!("{table}: unreadable ({e})"), false));
    }
    if !has_rowid {
        let mut st = conn.prepare(&format!("SELECT {list} FROM old.\"{table}\""))?;
        let mut rows = st.query([])?;
        loop {
            match rows.next() {
                Ok(Some(r)) => {
                    let vals: Vec<rusqlite::types::Value> = (0..cols.len())
                        .map(|i| r.get(i))
                        .collect::<Result<_, _>>()?;
                    insert.execute(rusqlite::params_from_iter(vals))?;
                    copied += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    first_error = Some(e.to_string());
                    break;
                }
            }
        }
    } else {
        let mut st = conn.prepare(&format!(
            "SELECT rowid, {list} FROM old.\"{table}\" WHERE rowid > ?1 ORDER BY rowid"
        ))?;
        let mut after = i64::MIN;
        let mut gap: i64 = 1;
        // Far enough past any id a store holds to give up skipping.
        const GIVE_UP: i64 = 1 << 48;
        loop {
            let mut rows = st.query([after])?;
            let mut progressed = false;
            let failed = loop {
                match rows.next() {
                    Ok(Some(r)) => {
                        after = r.get(0)?;
                        let vals: Vec<rusqlite::types::Value> = (1..=cols.len())
                            .map(|i| r.get(i))
                            .collect::<Result<_, _>>()?;
                        insert.execute(rusqlite::params_from_iter(vals))?;
                        copied += 1;
                        progressed = true;
                    }
                    Ok(None) => break false,
                    Err(e) => {
                        first_error.get_or_insert_with(|| e.to_string());
                        break true;
                    }
                }
            };
            if !failed {
                break;
            }
            if progressed {
                gap = 1;
            }
            // Skip over the unreadable stretch, further each time it is still unreadable.
            if after == i64::MIN {
                after = 0;
            }
            after = after.saturating_add(gap);
            gap = gap.saturating_mul(2);
            if gap > GIVE_UP {
                break;
            }
        }
    }
    Ok(match first_error {
        Some(e) => (
            format!("{table}: {copied} rows copied; the rest is unreadable ({e})"),
            false,
        ),
        None => (format!("{table}: {copied} rows copied (row by row)"), true),
    })
}

/// The per-minute counts, the string lookup tiers and the text index, rebuilt from what was
/// copied (rows may be missing from any table).
fn rebuild_derived(conn: &Connection, version: i64) -> Result<()> {
    if version >= 2 {
        conn.execute_batch(
            "DELETE FROM event_counts;
             INSERT INTO event_counts (minute, source, severity, n)
                 SELECT (ts - ((ts % 60000000000) + 60000000000) % 60000000000) / 60000000000,
                        source, severity, count(*)
                 FROM events GROUP BY 1, 2, 3;",
        )
        .wrap_err("cannot count the recovered events")?;
    }
    if version >= 7 {
        conn.execute_batch(
            "DELETE FROM string_ids_main; DELETE FROM string_ids_recent;
             INSERT OR IGNORE INTO string_ids_main (text, id) SELECT text, id FROM strings ORDER BY text;",
        )
        .wrap_err("cannot index the recovered strings")?;
    }
    if version >= 8 {
        conn.execute_batch("DELETE FROM text_blocks; DELETE FROM string_blocks;")?;
        conn.execute(
            "DELETE FROM meta WHERE key IN (?1, ?2)",
            [
                crate::store::textindex::EVENTS_UPTO,
                crate::store::textindex::STRINGS_UPTO,
            ],
        )?;
        crate::store::textindex::update(conn)
            .wrap_err("cannot rebuild the text index of the recovered events")?;
    }
    Ok(())
}
