//! `spacedrive-db:PATH`: follows a live Spacedrive `sync.db` by row id.
//!
//! The database belongs to Spacedrive: it is opened read-only (`SQLITE_OPEN_READ_ONLY` plus
//! `PRAGMA query_only`), never created, never migrated, and each poll is one short read. Pruning
//! gaps in ids are normal. A missing file, `SQLITE_BUSY`, a missing table or a replaced file
//! (other inode, or ids lower than the last seen) is a fault that is reported and retried.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{bail, Result};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::SOURCE_NAME;
use crate::ingest::follow::FileId;
use crate::ingest::{SourceCtx, SourceState};
use crate::model::identity::{Carried, Occurrences};
use crate::model::{build_event, EventFields, Reject};
use crate::sources::backoff::{self, Backoff};
use crate::sources::lines::Pending;
use crate::sources::Source;

/// In `--once` mode, how many times a busy or locked database is retried before giving up
/// (other faults, such as a file that is not a database, end a `--once` run at once).
const ONCE_RETRIES: u32 = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbCheckpoint {
    pub dev: u64,
    pub ino: u64,
    pub last_id: i64,
    /// Occurrence counts of the last rows read, so two identical rows (distinct ids) on either
    /// side of a page or a restart are both stored (absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub occ: Carried,
}

pub struct SyncDbSource {
    path: PathBuf,
}

impl SyncDbSource {
    pub fn new(path: PathBuf) -> Self {
        SyncDbSource { path }
    }
}

struct Live {
    conn: Connection,
    id: FileId,
}

/// A problem reading the database, with what to tell the user. Following, every fault is
/// retried (the file may be replaced or created); with `--once`, only a busy or locked one.
struct Fault {
    msg: String,
    busy: bool,
}

impl Fault {
    fn new(msg: String) -> Self {
        Fault { msg, busy: false }
    }

    fn sql(shown: &str, e: rusqlite::Error) -> Self {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        Fault {
            msg: format!("{shown}: {e}"),
            busy,
        }
    }
}

impl Source for SyncDbSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let mut cp: Option<DbCheckpoint> = ctx
            .checkpoint
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok());
        let mut live: Option<Live> = None;
        let mut backoff = Backoff::new(ctx.poll_interval);
        let mut failures = 0u32;
        loop {
            if ctx.cancelled() {
                return Ok(());
            }
            match self.poll(ctx, &mut live, &mut cp) {
                Ok(more) => {
                    failures = 0;
                    backoff.reset();
                    ctx.status(SourceState::Ok, "");
                    if more {
                        continue;
                    }
                    if ctx.once || !ctx.pause() {
                        return Ok(());
                    }
                }
                Err(Fault { msg, busy }) => {
                    live = None;
                    failures += 1;
                    if ctx.once && (!busy || failures > ONCE_RETRIES) {
                        bail!("{msg}");
                    }
                    let wait = backoff.next();
                    ctx.status(
                        SourceState::Backoff,
                        format!("{msg}; retrying in {}", backoff::shown(wait)),
                    );
                    if !ctx.sleep(wait) {
                        return Ok(());
                    }
                }
            }
        }
    }
}

impl SyncDbSource {
    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    fn open(&self) -> Result<Live, Fault> {
        let shown = self.shown();
        let meta =
            std::fs::metadata(&self.path).map_err(|e| Fault::new(format!("{shown}: {e}")))?;
        if meta.is_dir() {
            return Err(Fault::new(format!(
                "{shown}: is a directory, not a database file"
            )));
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| Fault::sql(&format!("{shown}: cannot open read-only"), e))?;
        conn.busy_timeout(Duration::from_millis(250))
            .and_then(|_| conn.execute_batch("PRAGMA query_only=1;"))
            .map_err(|e| Fault::sql(&shown, e))?;
        Ok(Live {
            conn,
            id: FileId::of(&meta),
        })
    }

    /// Reads one page of new rows. Ok(true) when there may be more right away.
    fn poll(
        &self,
        ctx: &SourceCtx,
        live: &mut Option<Live>,
        cp: &mut Option<DbCheckpoint>,
    ) -> Result<bool, Fault> {
        let shown = self.shown();
        let now_id =
            FileId::of_path(&self.path).map_err(|e| Fault::new(format!("{shown}: {e}")))?;
        if live.as_ref().is_none_or(|l| l.id != now_id) {
            *live = Some(self.open()?);
        }
        let Some(l) = live.as_ref() else {
            return Err(Fault::new(format!("{shown}: not open")));
        };
        let sql_fault = |e: rusqlite::Error| Fault::sql(&shown, e);
        let has_table: Option<i64> = l
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sync_event_log'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_fault)?;
        if has_table.is_none() {
            return Err(Fault::new(format!("{shown}: has no sync_event_log table (not a Spacedrive sync.db, or not created yet)")));
        }
        let mut state = cp.clone().unwrap_or(DbCheckpoint {
            dev: l.id.dev,
            ino: l.id.ino,
            ..DbCheckpoint::default()
        });
        if (state.dev, state.ino) != (l.id.dev, l.id.ino) {
            // Replaced by a new file: read it from the start (dedup keeps events once).
            state = DbCheckpoint {
                dev: l.id.dev,
                ino: l.id.ino,
                ..DbCheckpoint::default()
            };
        }
        let max_id: Option<i64> = l
            .conn
            .query_row("SELECT max(id) FROM sync_event_log", [], |r| r.get(0))
            .map_err(sql_fault)?;
        if max_id.unwrap_or(0) < state.last_id {
            // Ids went back: the log was recreated. Start over.
            state.last_id = 0;
            state.occ.clear();
        }
        let mut st = l
            .conn
            .prepare_cached(
                "SELECT id, timestamp, device_id, event_type, category, severity, summary, details,
                        correlation_id, peer_device_id, model_types, record_count, duration_ms
                 FROM sync_event_log WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(sql_fault)?;
        let mut rows = st
            .query(rusqlite::params![state.last_id, ctx.batch_size as i64])
            .map_err(sql_fault)?;
        let mut pending = Pending::resuming(Occurrences::resume(&state.occ));
        let mut n = 0usize;
        let mut full = false;
        while let Some(row) = rows.next().map_err(sql_fault)? {
            n += 1;
            let id: i64 = row.get(0).map_err(sql_fault)?;
            state.last_id = state.last_id.max(id);
            match row_fields(row).and_then(|f| build_event(f, SOURCE_NAME).map_err(|e| e.0)) {
                Ok(e) => pending.push(e),
                Err(reason) => pending.reject(Reject::new(
                    format!("{shown} row {id}"),
                    reason,
                    row_excerpt(row).as_bytes(),
                )),
            }
            if pending.full(ctx.batch_size) {
                // The rest of the page on the next poll: the checkpoint is this row.
                full = true;
                break;
            }
        }
        drop(rows);
        state.occ = pending.carried();
        let changed = cp.as_ref() != Some(&state);
        if n > 0 || changed {
            let text = serde_json::to_string(&state).unwrap_or_default();
            pending
                .send(ctx, Some(text))
                .map_err(|e| Fault::new(format!("{e}")))?;
        }
        *cp = Some(state);
        Ok(full || n == ctx.batch_size)
    }
}

fn text_col<'r>(
    row: &'r rusqlite::Row<'_>,
    i: usize,
    name: &str,
) -> Result<Option<Cow<'r, str>>, String> {
    match row.get_ref(i).map_err(|e| e.to_string())? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(|s| Some(Cow::Borrowed(s)))
            .map_err(|_| format!("column {name} is not valid UTF-8")),
        ValueRef::Integer(i) => Ok(Some(Cow::Owned(i.to_string()))),
        ValueRef::Real(f) => Ok(Some(Cow::Owned(f.to_string()))),
        ValueRef::Blob(_) => Err(format!("column {name} holds a blob, expected text")),
    }
}

fn int_col(row: &rusqlite::Row<'_>, i: usize, name: &str) -> Result<Option<i64>, String> {
    match row.get_ref(i).map_err(|e| e.to_string())? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(v) => Ok(Some(v)),
        ValueRef::Real(f) => Ok(Some(f as i64)),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| format!("column {name} is not an integer")),
        ValueRef::Blob(_) => Err(format!("column {name} holds a blob, expected an integer")),
    }
}

pub(crate) fn row_fields<'r>(row: &'r rusqlite::Row<'_>) -> Result<EventFields<'r>, String> {
    let ts = text_col(row, 1, "timestamp")?;
    if matches!(
        row.get_ref(1),
        Ok(ValueRef::Integer(_)) | Ok(ValueRef::Real(_))
    ) {
        return Err("column timestamp is a number, expected RFC 3339 text".into());
    }
    Ok(EventFields {
        timestamp: ts,
        device_id: text_col(row, 2, "device_id")?,
        event_type: text_col(row, 3, "event_type")?,
        category: text_col(row, 4, "category")?,
        severity: text_col(row, 5, "severity")?,
        summary: text_col(row, 6, "summary")?,
        details: text_col(row, 7, "details")?,
        details_is_json: false,
        correlation_id: text_col(row, 8, "correlation_id")?,
        peer_device_id: text_col(row, 9, "peer_device_id")?,
        model_types: text_col(row, 10, "model_types")?,
        record_count: int_col(row, 11, "record_count")?,
        duration_ms: int_col(row, 12, "duration_ms")?,
        source: None,
        subject: None,
    })
}

/// The row's text as `a|b|c`, for a reject's excerpt.
pub(crate) fn row_excerpt(row: &rusqlite::Row<'_>) -> String {
    let mut out = String::new();
    for i in 1..13 {
        if i > 1 {
            out.push('|');
        }
        match row.get_ref(i) {
            Ok(ValueRef::Text(t)) => out.push_str(&String::from_utf8_lossy(t)),
            Ok(ValueRef::Integer(v)) => out.push_str(&v.to_string()),
            Ok(ValueRef::Real(v)) => out.push_str(&v.to_string()),
            Ok(ValueRef::Blob(b)) => out.push_str(&format!("<blob {} bytes>", b.len())),
            _ => {}
        }
        if out.len() > crate::model::REJECT_EXCERPT_BYTES {
            break;
        }
    }
    out
}
