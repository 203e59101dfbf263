//! Retention: every table of the store is pruned, in steps short enough that ingest never
//! waits long for one (the writer runs one step between commits).
//!
//! What goes, by table ([`TABLES`] says it for each, and a test fails when a table or column
//! is added without it):
//! - events (with their `event_counts`, text index blocks, `batches` and `rejects`) received
//!   more than the retention ago (receive time, not event time: a backfill of old events
//!   stays for the whole span);
//! - `ref_state` and `gerrit_deleted_projects` are kept: they are the replication state as
//!   the plugin keeps it, one row per ref (a deletion the mirror refused must stay shown,
//!   however old), bounded by the refs that exist;
//! - `ci_pipelines` created more than `max(retention, 31 days)` ago, with their `ci_jobs`,
//!   and then every `ci_patterns` row no job names. The floor keeps the 30 nights the
//!   prevalence and NEW marks read: a pattern is NEW when no night the store keeps (at least
//!   the 30 before) had it. People's `ci_issue_links` are kept;
//! - `relay_targets` not scraped for longer than the retention (a target no longer watched);
//! - interned `strings` no row uses any more ([`STRING_COLUMNS`]), with their `string_ids`
//!   rows and their share of the string text index (rebuilt from what is left).
//!
//! Strings are found unused by marking: the writer's [`Marks`] bitmap gets every string id
//! the stored rows hold (read in chunks between commits) and every id the writer hands out
//! meanwhile (the interner marks them), then unmarked strings below the limit taken at the
//! start are deleted, in chunks. The highest string id is never deleted, so ids never go
//! back: an id deleted is never handed out again (the writer's caches are emptied after each
//! chunk; readers look ids up per query).

use color_eyre::eyre::{Result, WrapErr};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::writer::{Writer, PRUNE_CHUNK};

/// Events read per marking step, and strings looked at per sweeping step.
const MARK_CHUNK: i64 = 100_000;
const SWEEP_CHUNK: i64 = 20_000;
/// Rows of a small table deleted per step.
const TABLE_CHUNK: i64 = 2_000;
/// CI history is kept at least this long (the 30 nights of prevalence, and a day).
pub const CI_FLOOR_SECS: i64 = (crate::model::ci::PREVALENCE_LONG as i64 + 1) * 86_400;

/// Every column that holds a `strings` id. A string none of them names is deleted.
pub const STRING_COLUMNS: &[(&str, &str)] = &[
    ("events", "source"),
    ("events", "device"),
    ("events", "event_type"),
    ("events", "category"),
    ("events", "corr"),
    ("events", "peer"),
    ("events", "model_types"),
    ("events", "subject"),
    ("event_counts", "source"),
    ("ref_state", "ref"),
    ("ref_state", "remote"),
    ("ref_state", "project"),
    ("ref_state", "instance"),
];

/// Every table and how retention bounds it; its columns that are not string ids (those are in
/// [`STRING_COLUMNS`]). A test compares this with the schema.
pub const TABLES: &[(&str, &str, &[&str])] = &[
    (
        "events",
        "received before the cutoff",
        &[
            "id",
            "ts",
            "key",
            "severity",
            "summary",
            "details",
            "record_count",
            "duration_ms",
        ],
    ),
    (
        "event_counts",
        "with their events",
        &["minute", "severity", "n"],
    ),
    (
        "batches",
        "received before the cutoff",
        &[
            "id",
            "received",
            "source",
            "max_event",
            "inserted",
            "duplicates",
            "rejected",
        ],
    ),
    (
        "rejects",
        "received before the cutoff",
        &["id", "source", "location", "reason", "excerpt", "received"],
    ),
    (
        "text_blocks",
        "with their events",
        &["block", "bits", "ids", "digits"],
    ),
    ("strings", "when no row uses them", &["id", "text"]),
    ("string_ids_main", "with their strings", &["text", "id"]),
    ("string_ids_recent", "with their strings", &["text", "id"]),
    (
        "string_blocks",
        "rebuilt from the strings left",
        &["block", "bits"],
    ),
    (
        "ref_state",
        "refs deleted before the cutoff",
        &[
            "direction",
            "status",
            "when_s",
            "retrying",
            "attempts",
            "last_success",
            "last_failure",
            "last_error",
            "scheduled_since",
            "event_id",
            "deleted_at",
        ],
    ),
    (
        "gerrit_deleted_projects",
        "deleted before the cutoff",
        &["project", "deleted_at", "event_id"],
    ),
    (
        "ci_pipelines",
        "created before max(cutoff, 31 days)",
        &[
            "project",
            "id",
            "project_url",
            "night",
            "status",
            "warnings",
            "ref",
            "sha",
            "source",
            "web_url",
            "created_at",
            "updated_at",
            "downstream_failed",
        ],
    ),
    (
        "ci_jobs",
        "with their pipelines",
        &[
            "project",
            "id",
            "pipeline",
            "name",
            "stage",
            "status",
            "allow_failure",
            "failure_reason",
            "web_url",
            "finished_at",
            "log_state",
            "pattern",
            "section",
            "excerpt",
            "tail",
            "chain",
        ],
    ),
    (
        "ci_patterns",
        "when no job names them",
        &["id", "kind", "name", "identity", "rule_issue"],
    ),
    (
        "ci_issue_links",
        "kept: what people linked (one row per pattern)",
        &["pattern", "issue_url", "linked"],
    ),
    (
        "relay_targets",
        "not scraped since the cutoff",
        &["source", "target", "last_scrape", "state"],
    ),
    (
        "checkpoints",
        "kept: one per source; without it a source would read pruned events again",
        &["source", "state", "updated"],
    ),
    (
        "source_status",
        "kept: one per source",
        &["source", "state", "message", "since", "updated"],
    ),
    ("meta", "kept: a few named values", &["key", "value"]),
];

/// String ids in use, as a bitmap below `limit` (ids at or above it are never deleted).
pub(super) struct Marks {
    bits: Vec<u64>,
    limit: i64,
}

impl Marks {
    pub(super) fn new(limit: i64) -> Self {
        let words = (limit.max(0) as usize).div_ceil(64);
        Marks {
            bits: vec![0; words],
            limit,
        }
    }

    pub(super) fn mark(&mut self, id: i64) {
        if (0..self.limit).contains(&id) {
            self.bits[id as usize / 64] |= 1 << (id % 64);
        }
    }

    fn is_marked(&self, id: i64) -> bool {
        !(0..self.limit).contains(&id) || self.bits[id as usize / 64] & (1 << (id % 64)) != 0
    }
}

/// What one retention run deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub events: u64,
    pub strings: u64,
    pub ci_pipelines: u64,
    pub ci_jobs: u64,
    pub ci_patterns: u64,
    pub relay_targets: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Events with ids up to `upto`, in chunks.
    Events { upto: Option<i64> },
    /// Batches, rejects, CI, relay targets.
    Tables,
    /// Marking the string ids of events above `cursor`.
    MarkEvents { cursor: i64 },
    /// Marking the string ids of the other tables that hold them.
    MarkState,
    /// Deleting unmarked strings above `cursor`.
    Sweep { cursor: i64 },
}

/// A retention run in progress (see [`Writer::prune_step`]).
pub struct Pruning {
    cutoff: i64,
    ci_cutoff: i64,
    phase: Phase,
    pub done: Pruned,
}

impl Pruning {
    /// A run deleting what was received (or happened) more than `span_secs` before `now`
    /// (Unix seconds).
    pub fn new(span_secs: u64, now: i64) -> Self {
        let cutoff = now.saturating_sub(span_secs.min(i64::MAX as u64) as i64);
        Pruning {
            cutoff,
            ci_cutoff: cutoff.min(now.saturating_sub(CI_FLOOR_SECS)),
            phase: Phase::Events { upto: None },
            done: Pruned::default(),
        }
    }
}

/// Reads a retention span: `0` (keep everything), `90s`, `10m`, `12h`, `7d`, `2w`; a bare
/// number is days (as `--retention-days`). Returns seconds.
pub fn parse_span(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..end]
        .parse()
        .map_err(|_| format!("cannot read the retention {t:?}: use e.g. 10m, 12h, 7d or 0"))?;
    let per = match t[end..].trim() {
        "" | "d" | "day" | "days" => 86_400,
        "s" | "sec" | "secs" => 1,
        "m" | "min" | "mins" => 60,
        "h" | "hour" | "hours" => 3600,
        "w" | "week" | "weeks" => 7 * 86_400,
        u => {
            return Err(format!(
                "unknown unit {u:?} in the retention {t:?}: s, m, h, d or w"
            ))
        }
    };
    n.checked_mul(per)
        .filter(|&s| s <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("the retention {t:?} is too long"))
}

impl Writer {
    /// Runs a whole retention run now (`span_secs == 0` keeps everything).
    pub fn prune_span(&mut self, span_secs: u64, now: i64) -> Result<Pruned> {
        if span_secs == 0 {
            return Ok(Pruned::default());
        }
        let mut run = Pruning::new(span_secs, now);
        while !self.prune_step(&mut run)? {}
        Ok(run.done)
    }

    /// One bounded step of `run`, in a transaction of its own. Returns true when the run is
    /// over. Call it between commits until then.
    pub fn prune_step(&mut self, run: &mut Pruning) -> Result<bool> {
        let r = self.step(run).wrap_err("retention failed");
        if r.is_err() {
            self.interned.marks = None;
            self.interned.forget_deleted();
        }
        r
    }

    fn step(&mut self, run: &mut Pruning) -> Result<bool> {
        let cutoff = run.cutoff;
        match run.phase {
            Phase::Events { upto: None } => {
                let upto: Option<i64> = self
                    .conn
                    .query_row(
                        "SELECT max(max_event) FROM batches WHERE received < ?1",
                        [cutoff],
                        |r| r.get(0),
                    )
                    .wrap_err("cannot find events to prune")?;
                match upto {
                    Some(upto) => {
                        // The highest id ever used, so ids never go back if the table empties.
                        self.conn.execute(
                            "INSERT INTO meta (key, value) SELECT 'event_id_hwm', max(id) FROM events HAVING max(id) IS NOT NULL
                             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                            [],
                        )?;
                        run.phase = Phase::Events { upto: Some(upto) };
                    }
                    None => run.phase = Phase::Tables,
                }
            }
            Phase::Events { upto: Some(upto) } => {
                let n = self.prune_chunk(upto).wrap_err("cannot prune old events")?;
                run.done.events += n;
                if n < PRUNE_CHUNK as u64 {
                    run.phase = Phase::Tables;
                }
            }
            Phase::Tables => {
                if self.prune_tables(run)? {
                    let low: i64 = self.conn.query_row(
                        "SELECT coalesce(min(id), 0) - 1 FROM events",
                        [],
                        |r| r.get(0),
                    )?;
                    let limit: i64 = self.conn.query_row(
                        "SELECT coalesce(max(id), 0) FROM strings",
                        [],
                        |r| r.get(0),
                    )?;
                    self.interned.start_marks(limit);
                    run.phase = Phase::MarkEvents { cursor: low };
                }
            }
            Phase::MarkEvents { cursor } => {
                let mut st = self.conn.prepare_cached(
                    "SELECT id, source, device, event_type, category, corr, peer, model_types, subject
                     FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
                )?;
                let mut rows = st.query(params![cursor, MARK_CHUNK])?;
                let (mut last, mut n) = (cursor, 0);
                let marks = self
                    .interned
                    .marks
                    .as_mut()
                    .ok_or_else(|| color_eyre::eyre::eyre!("string marks lost"))?;
                while let Some(r) = rows.next()? {
                    last = r.get(0)?;
                    for c in 1..9 {
                        if let Some(id) = r.get::<_, Option<i64>>(c)? {
                            marks.mark(id);
                        }
                    }
                    n += 1;
                }
                run.phase = if n < MARK_CHUNK {
                    Phase::MarkState
                } else {
                    Phase::MarkEvents { cursor: last }
                };
            }
            Phase::MarkState => {
                for (table, col) in STRING_COLUMNS.iter().filter(|(t, _)| *t != "events") {
                    let mut st = self
                        .conn
                        .prepare(&format!("SELECT DISTINCT {col} FROM {table}"))?;
                    let mut rows = st.query([])?;
                    let marks = self
                        .interned
                        .marks
                        .as_mut()
                        .ok_or_else(|| color_eyre::eyre::eyre!("string marks lost"))?;
                    while let Some(r) = rows.next()? {
                        if let Some(id) = r.get::<_, Option<i64>>(0)? {
                            marks.mark(id);
                        }
                    }
                }
                run.phase = Phase::Sweep { cursor: 0 };
            }
            Phase::Sweep { cursor } => {
                let (next, deleted) = self.sweep_chunk(cursor)?;
                run.done.strings += deleted;
                match next {
                    Some(c) => run.phase = Phase::Sweep { cursor: c },
                    None => {
                        self.interned.marks = None;
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// One chunk of the small tables; true when nothing is left to delete.
    fn prune_tables(&mut self, run: &mut Pruning) -> Result<bool> {
        let (cutoff, ci_cutoff) = (run.cutoff, run.ci_cutoff);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM batches WHERE received < ?1", [cutoff])?;
        tx.execute("DELETE FROM rejects WHERE received < ?1", [cutoff])?;
        let old: Vec<(String, i64)> = {
            let mut st = tx.prepare_cached(
                "SELECT project, id FROM ci_pipelines WHERE created_at < ?1 LIMIT ?2",
            )?;
            let rows = st.query_map(params![ci_cutoff, TABLE_CHUNK], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut jobs = 0u64;
        for (project, id) in &old {
            jobs += tx
                .prepare_cached("DELETE FROM ci_jobs WHERE project = ?1 AND pipeline = ?2")?
                .execute(params![project, id])? as u64;
            tx.prepare_cached("DELETE FROM ci_pipelines WHERE project = ?1 AND id = ?2")?
                .execute(params![project, id])?;
        }
        let patterns = if old.is_empty() {
            0
        } else {
            tx.execute(
                "DELETE FROM ci_patterns WHERE NOT EXISTS (SELECT 1 FROM ci_jobs j WHERE j.pattern = ci_patterns.id)",
                [],
            )? as u64
        };
        let relays = tx.execute(
            "DELETE FROM relay_targets WHERE coalesce(last_scrape, 0) < ?1",
            [cutoff],
        )? as u64;
        tx.commit()?;
        let d = &mut run.done;
        d.ci_pipelines += old.len() as u64;
        d.ci_jobs += jobs;
        d.ci_patterns += patterns;
        d.relay_targets += relays;
        Ok((old.len() as i64) < TABLE_CHUNK)
    }

    /// Deletes the unmarked strings among the next [`SWEEP_CHUNK`] above `cursor`; returns
    /// where to go on from (None: done) and how many went.
    fn sweep_chunk(&mut self, cursor: i64) -> Result<(Option<i64>, u64)> {
        let Some(limit) = self.interned.marks.as_ref().map(|m| m.limit) else {
            return Ok((None, 0));
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let indexed: i64 = tx
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [super::textindex::STRINGS_UPTO],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let mut gone: Vec<(i64, String)> = Vec::new();
        let mut last = None;
        {
            let marks = self
                .interned
                .marks
                .as_ref()
                .ok_or_else(|| color_eyre::eyre::eyre!("string marks lost"))?;
            let mut st = tx.prepare_cached(
                "SELECT id, text FROM strings WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT ?3",
            )?;
            let mut rows = st.query(params![cursor, limit, SWEEP_CHUNK])?;
            let mut n = 0;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                last = Some(id);
                n += 1;
                if !marks.is_marked(id) {
                    gone.push((id, r.get(1)?));
                }
            }
            if n < SWEEP_CHUNK {
                last = None;
            }
        }
        let mut blocks: Vec<i64> = Vec::new();
        for (id, text) in &gone {
            tx.prepare_cached("DELETE FROM strings WHERE id = ?1")?
                .execute([id])?;
            tx.prepare_cached("DELETE FROM string_ids_recent WHERE text = ?1 AND id = ?2")?
                .execute(params![text, id])?;
            tx.prepare_cached("DELETE FROM string_ids_main WHERE text = ?1 AND id = ?2")?
                .execute(params![text, id])?;
            let b = id >> super::textindex::STRING_BLOCK_SHIFT;
            if *id <= indexed && blocks.last() != Some(&b) {
                blocks.push(b);
            }
        }
        for b in blocks {
            super::textindex::rebuild_string_block(&tx, b)?;
        }
        tx.commit()?;
        if !gone.is_empty() {
            self.interned.forget_deleted();
        }
        Ok((last, gone.len() as u64))
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
