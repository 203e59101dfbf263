//! GitLab CI nightly state: written by the writer in the transaction of the events that report
//! it ([`apply`]), read as exactly what the `failures` command and the CI pane show: a night's
//! failed and passed-with-warnings pipelines with their failed jobs, the error patterns by
//! prevalence, and each project's strip of nights.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use color_eyre::eyre::{bail, Result, WrapErr};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::Reader;
use crate::model::ci::{
    night_label, nights_ending, parse_night, CiUpdate, NightCell, PREVALENCE_LONG, PREVALENCE_SHORT,
};

/// Example job URLs kept per pattern.
pub const EXAMPLES: usize = 3;

/// Applies CI state changes (upserts; applying twice changes nothing).
pub(crate) fn apply(tx: &Transaction<'_>, updates: &[&CiUpdate]) -> Result<()> {
    if updates.is_empty() {
        return Ok(());
    }
    let mut pipe = tx.prepare_cached(
        "INSERT INTO ci_pipelines (project, id, project_url, night, status, warnings, ref, sha, source, web_url, created_at, updated_at, downstream_failed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (project, id) DO UPDATE SET project_url = coalesce(excluded.project_url, project_url),
            night = excluded.night, status = excluded.status, warnings = excluded.warnings,
            downstream_failed = excluded.downstream_failed,
            ref = excluded.ref, sha = excluded.sha, source = excluded.source, web_url = excluded.web_url,
            created_at = excluded.created_at, updated_at = excluded.updated_at
         WHERE excluded.updated_at >= updated_at",
    )?;
    let mut job = tx.prepare_cached(
        "INSERT INTO ci_jobs (project, id, pipeline, name, stage, status, allow_failure, failure_reason, web_url, finished_at, log_state, pattern, section, excerpt, tail, chain)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, coalesce(?11, 'pending'), ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (project, id) DO UPDATE SET pipeline = excluded.pipeline, name = excluded.name,
            stage = excluded.stage, status = excluded.status, allow_failure = excluded.allow_failure,
            failure_reason = excluded.failure_reason, web_url = excluded.web_url,
            finished_at = excluded.finished_at,
            log_state = coalesce(?11, log_state),
            pattern = coalesce(excluded.pattern, pattern), section = coalesce(excluded.section, section),
            excerpt = coalesce(excluded.excerpt, excerpt), tail = coalesce(excluded.tail, tail),
            chain = excluded.chain",
    )?;
    let mut prune = tx.prepare_cached(
        "DELETE FROM ci_jobs WHERE project = ?1 AND pipeline = ?2
           AND id NOT IN (SELECT value FROM json_each(?3))",
    )?;
    let mut pat = tx.prepare_cached(
        "INSERT INTO ci_patterns (id, kind, name, identity, rule_issue) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (id) DO UPDATE SET rule_issue = excluded.rule_issue",
    )?;
    for u in updates {
        match u {
            CiUpdate::Pipeline(p) => {
                pipe.execute(params![
                    p.project,
                    p.id,
                    p.project_url,
                    p.night,
                    p.status,
                    p.warnings,
                    p.ref_name,
                    p.sha,
                    p.source,
                    p.web_url,
                    p.created_at,
                    p.updated_at,
                    p.downstream_failed
                ])?;
            }
            CiUpdate::Jobs {
                project,
                pipeline,
                jobs,
            } => {
                let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
                prune.execute(params![project, pipeline, serde_json::to_string(&ids)?])?;
                for j in jobs {
                    let state = j.log.as_stored();
                    let a = j.analysis.as_ref();
                    if let Some(a) = a {
                        pat.execute(params![
                            a.pattern.id,
                            a.pattern.kind.as_str(),
                            a.pattern.name,
                            a.pattern.identity,
                            a.pattern.issue_url
                        ])?;
                    }
                    job.execute(params![
                        j.project,
                        j.id,
                        j.pipeline,
                        j.name,
                        j.stage,
                        j.status,
                        j.allow_failure,
                        j.failure_reason,
                        j.web_url,
                        j.finished_at,
                        state,
                        a.map(|a| &a.pattern.id),
                        a.and_then(|a| a.section.as_ref()),
                        a.map(|a| &a.excerpt),
                        a.map(|a| &a.tail),
                        j.chain,
                    ])?;
                }
            }
        }
    }
    Ok(())
}

/// Attaches a known issue to a pattern (a unique prefix of its id, at least 4 characters);
/// it stays across runs. Returns the pattern's full id.
pub fn link_issue(conn: &Connection, pattern: &str, issue_url: &str) -> Result<String> {
    let pattern = pattern.trim();
    if pattern.len() < 4 {
        bail!("give at least 4 characters of the pattern id (see `syncscope failures --patterns`)");
    }
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM ci_patterns WHERE substr(id, 1, length(?1)) = ?1 LIMIT 2")?
        .query_map([pattern], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let id = match ids.as_slice() {
        [one] => one.clone(),
        [] => {
            bail!("no error pattern {pattern} in the store (see `syncscope failures --patterns`)")
        }
        _ => bail!("{pattern} names more than one pattern: give more of its id"),
    };
    conn.execute(
        "INSERT INTO ci_issue_links (pattern, issue_url, linked) VALUES (?1, ?2, ?3)
         ON CONFLICT (pattern) DO UPDATE SET issue_url = excluded.issue_url, linked = excluded.linked",
        params![id, issue_url, super::unix_now()],
    )
    .wrap_err("cannot store the link")?;
    Ok(id)
}

/// An error pattern as a pane or report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiPatternRow {
    /// 12 hex digits (`syncscope failures link ID URL`).
    pub id: String,
    /// `rule` or `fingerprint`.
    pub kind: String,
    /// The rule's name, or `unmatched`.
    pub name: String,
    /// The masked text shared by every failure of the pattern.
    pub identity: String,
    /// The linked issue, else the rule's own.
    pub issue_url: Option<String>,
    /// Failed jobs and projects it hit on the night asked.
    pub jobs_last_night: u32,
    pub projects_last_night: Vec<String>,
    /// On how many of the last 14 and 30 nights (up to the night asked) it was seen.
    pub nights_14: u32,
    pub nights_30: u32,
    /// Nights (`YYYY-MM-DD`) it was first and last seen, up to the night asked.
    pub first_seen: String,
    pub last_seen: String,
    /// First seen on the night asked.
    pub is_new: bool,
    /// Every project it hit in the last 30 nights.
    pub projects: Vec<String>,
    /// Up to [`EXAMPLES`] job URLs, newest first.
    pub examples: Vec<String>,
}

/// A failed (or allowed-to-fail) job of a night.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiJobRow {
    pub id: i64,
    pub name: String,
    pub stage: Option<String>,
    pub allow_failure: bool,
    pub failure_reason: Option<String>,
    pub web_url: Option<String>,
    /// `fetched`, `erased` (the log is gone or expired), `empty` (the job printed nothing),
    /// `unreadable` (a permanent error), `none` (a trigger job or a pipeline that failed before
    /// any job), `pending` (not read yet).
    pub log_state: String,
    /// The bridges and downstream pipelines leading to the job, when it ran in a child or
    /// multi-project pipeline of the nightly.
    pub chain: Option<String>,
    pub pattern_id: Option<String>,
    pub pattern_name: Option<String>,
    pub pattern_identity: Option<String>,
    /// The pattern was first seen on this night.
    pub pattern_new: bool,
    pub issue_url: Option<String>,
    /// The section the error was printed in (`step_script`).
    pub section: Option<String>,
    pub excerpt: Option<String>,
    pub tail: Option<String>,
}

/// A failed or passed-with-warnings pipeline of a night.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiPipelineRow {
    pub project: String,
    pub project_url: Option<String>,
    pub id: i64,
    pub status: String,
    pub cell: NightCell,
    pub ref_name: Option<String>,
    pub web_url: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// A downstream pipeline failed (the cell is failed even if `status` is success).
    pub downstream_failed: bool,
    /// Failed jobs first, then allowed-to-fail ones.
    pub jobs: Vec<CiJobRow>,
}

/// One night: the failed and passed-with-warnings pipelines, and counts of the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiNight {
    pub night: String,
    /// Failed first, then passed with warnings; by project.
    pub pipelines: Vec<CiPipelineRow>,
    pub failed: u32,
    pub warnings: u32,
    pub passed: u32,
    /// Canceled, skipped, still running.
    pub other: u32,
    pub projects: u32,
}

/// One project's strip: what its nightly pipelines did on each night, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiStrip {
    pub project: String,
    pub cells: Vec<NightCell>,
}

impl CiStrip {
    /// `FFWP.P...` oldest first.
    pub fn symbols(&self) -> String {
        self.cells.iter().map(|c| c.symbol()).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CiHistory {
    /// The nights of the strips, oldest first.
    pub nights: Vec<String>,
    /// Projects with a nightly pipeline in those nights, by name.
    pub projects: Vec<CiStrip>,
}

/// `(pattern, night, project, job url, finished)` of every analysed failed job up to a night.
type Hit = (String, String, String, Option<String>, i64);

impl Reader {
    /// The latest night with a nightly pipeline in the store.
    pub fn ci_latest_night(&self) -> Result<Option<NaiveDate>> {
        let n: Option<String> = self
            .connection()
            .query_row("SELECT max(night) FROM ci_pipelines", [], |r| r.get(0))
            .wrap_err("cannot read CI nights")?;
        n.map(|s| parse_night(&s).map_err(color_eyre::eyre::Report::msg))
            .transpose()
    }

    /// The night "last night" means on `today` (the local date, the label of the night that
    /// ended this morning): the latest night with pipelines up to `today`, else the latest.
    /// A pipeline started this afternoon belongs to tomorrow's night and does not move it.
    pub fn ci_default_night(&self, today: NaiveDate) -> Result<Option<NaiveDate>> {
        let n: Option<String> = self
            .connection()
            .query_row(
                "SELECT max(night) FROM ci_pipelines WHERE night <= ?1",
                [night_label(today)],
                |r| r.get(0),
            )
            .wrap_err("cannot read CI nights")?;
        match n {
            Some(s) => Ok(Some(
                parse_night(&s).map_err(color_eyre::eyre::Report::msg)?,
            )),
            None => self.ci_latest_night(),
        }
    }

    fn ci_hits(&self, upto: &str, project: Option<&str>) -> Result<Vec<Hit>> {
        let mut st = self.connection().prepare_cached(
            "SELECT j.pattern, p.night, j.project, j.web_url, coalesce(j.finished_at, p.updated_at)
             FROM ci_jobs j JOIN ci_pipelines p ON p.project = j.project AND p.id = j.pipeline
             WHERE j.pattern IS NOT NULL AND j.status = 'failed' AND p.night <= ?1
               AND (?2 IS NULL OR j.project = ?2)",
        )?;
        let rows = st
            .query_map(params![upto, project], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<Vec<Hit>>>()?;
        Ok(rows)
    }

    /// The error patterns seen in the 30 nights up to `night` (default: the latest), most
    /// prevalent first (nights of 14, nights of 30, jobs on the night), NEW ones marked.
    pub fn ci_patterns(
        &self,
        night: Option<NaiveDate>,
        project: Option<&str>,
    ) -> Result<Vec<CiPatternRow>> {
        let Some(night) = night.map_or_else(|| self.ci_latest_night(), |n| Ok(Some(n)))? else {
            return Ok(Vec::new());
        };
        let last = night_label(night);
        let short: BTreeSet<String> = nights_ending(night, PREVALENCE_SHORT)
            .into_iter()
            .map(night_label)
            .collect();
        let long_from = night_label(night - chrono::Duration::days(i64::from(PREVALENCE_LONG) - 1));
        #[derive(Default)]
        struct Acc {
            first: String,
            last: String,
            nights14: BTreeSet<String>,
            nights30: BTreeSet<String>,
            jobs_last: u32,
            projects_last: BTreeSet<String>,
            projects: BTreeSet<String>,
            examples: Vec<(i64, String)>,
        }
        let mut acc: HashMap<String, Acc> = HashMap::new();
        for (pattern, n, proj, url, finished) in self.ci_hits(&last, project)? {
            let a = acc.entry(pattern).or_default();
            if a.first.is_empty() || n < a.first {
                a.first.clone_from(&n);
            }
            if n > a.last {
                a.last.clone_from(&n);
            }
            if n >= long_from {
                a.nights30.insert(n.clone());
                a.projects.insert(proj.clone());
                if let Some(u) = url {
                    a.examples.push((finished, u));
                }
            }
            if short.contains(&n) {
                a.nights14.insert(n.clone());
            }
            if n == last {
                a.jobs_last += 1;
                a.projects_last.insert(proj);
            }
        }
        let mut meta = self.connection().prepare_cached(
            "SELECT c.kind, c.name, c.identity, coalesce(l.issue_url, c.rule_issue)
             FROM ci_patterns c LEFT JOIN ci_issue_links l ON l.pattern = c.id WHERE c.id = ?1",
        )?;
        let mut out = Vec::new();
        for (id, mut a) in acc {
            if a.nights30.is_empty() {
                continue;
            }
            let Some((kind, name, identity, issue_url)) = meta
                .query_row([&id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .optional()?
            else {
                continue;
            };
            a.examples.sort_by(|x, y| y.cmp(x));
            let mut examples: Vec<String> = Vec::new();
            for (_, u) in a.examples {
                if !examples.contains(&u) && examples.len() < EXAMPLES {
                    examples.push(u);
                }
            }
            out.push(CiPatternRow {
                is_new: a.first == last,
                id,
                kind,
                name,
                identity,
                issue_url,
                jobs_last_night: a.jobs_last,
                projects_last_night: a.projects_last.into_iter().collect(),
                nights_14: a.nights14.len() as u32,
                nights_30: a.nights30.len() as u32,
                first_seen: a.first,
                last_seen: a.last,
                projects: a.projects.into_iter().collect(),
                examples,
            });
        }
        out.sort_by(|a, b| {
            (b.nights_14, b.nights_30, b.jobs_last_night)
                .cmp(&(a.nights_14, a.nights_30, a.jobs_last_night))
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// The failed and passed-with-warnings pipelines of `night` (default: the latest), with
    /// their failed jobs, patterns and excerpts. None when the store has no CI data.
    pub fn ci_night(
        &self,
        night: Option<NaiveDate>,
        project: Option<&str>,
    ) -> Result<Option<CiNight>> {
        let Some(night) = night.map_or_else(|| self.ci_latest_night(), |n| Ok(Some(n)))? else {
            return Ok(None);
        };
        let label = night_label(night);
        // Patterns first seen on this night.
        let mut firsts: HashMap<String, String> = HashMap::new();
        for (pattern, n, ..) in self.ci_hits(&label, None)? {
            let e = firsts.entry(pattern).or_insert_with(|| n.clone());
            if n < *e {
                *e = n;
            }
        }
        let mut st = self.connection().prepare_cached(
            "SELECT project, id, project_url, status, warnings, ref, web_url, created_at, updated_at, downstream_failed
             FROM ci_pipelines WHERE night = ?1 AND (?2 IS NULL OR project = ?2)
             ORDER BY project, id",
        )?;
        let mut pipes: Vec<CiPipelineRow> = Vec::new();
        let (mut failed, mut warnings, mut passed, mut other) = (0, 0, 0, 0);
        let mut projects = BTreeSet::new();
        let rows = st.query_map(params![label, project], |r| {
            let status: String = r.get(3)?;
            let warn: bool = r.get(4)?;
            let downstream_failed: bool = r.get(9)?;
            Ok(CiPipelineRow {
                project: r.get(0)?,
                id: r.get(1)?,
                project_url: r.get(2)?,
                cell: NightCell::of(&status, warn, downstream_failed),
                downstream_failed,
                status,
                ref_name: r.get(5)?,
                web_url: r.get(6)?,
                created_at: r.get(7)?,
                updated_at: r.get(8)?,
                jobs: Vec::new(),
            })
        })?;
        for p in rows {
            let p = p?;
            projects.insert(p.project.clone());
            match p.cell {
                NightCell::Failed => failed += 1,
                NightCell::Warnings => warnings += 1,
                NightCell::Passed => passed += 1,
                _ => other += 1,
            }
            if matches!(p.cell, NightCell::Failed | NightCell::Warnings) {
                pipes.push(p);
            }
        }
        let mut jobs = self.connection().prepare_cached(
            "SELECT j.id, j.name, j.stage, j.allow_failure, j.failure_reason, j.web_url, j.log_state,
                    j.pattern, c.name, c.identity, coalesce(l.issue_url, c.rule_issue), j.section, j.excerpt, j.tail, j.chain
             FROM ci_jobs j LEFT JOIN ci_patterns c ON c.id = j.pattern
                  LEFT JOIN ci_issue_links l ON l.pattern = j.pattern
             WHERE j.project = ?1 AND j.pipeline = ?2 AND j.status = 'failed'
             ORDER BY j.allow_failure, j.stage, j.name, j.id",
        )?;
        for p in &mut pipes {
            let rows = jobs.query_map(params![p.project, p.id], |r| {
                let pattern: Option<String> = r.get(7)?;
                Ok(CiJobRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    stage: r.get(2)?,
                    allow_failure: r.get(3)?,
                    failure_reason: r.get(4)?,
                    web_url: r.get(5)?,
                    log_state: r.get(6)?,
                    pattern_new: pattern
                        .as_ref()
                        .and_then(|id| firsts.get(id))
                        .is_some_and(|f| *f == label),
                    pattern_id: pattern,
                    pattern_name: r.get(8)?,
                    pattern_identity: r.get(9)?,
                    issue_url: r.get(10)?,
                    section: r.get(11)?,
                    excerpt: r.get(12)?,
                    tail: r.get(13)?,
                    chain: r.get(14)?,
                })
            })?;
            p.jobs = rows.collect::<rusqlite::Result<_>>()?;
        }
        pipes.sort_by(|a, b| {
            b.cell
                .cmp(&a.cell)
                .then(a.project.cmp(&b.project))
                .then(a.id.cmp(&b.id))
        });
        Ok(Some(CiNight {
            night: label,
            pipelines: pipes,
            failed,
            warnings,
            passed,
            other,
            projects: projects.len() as u32,
        }))
    }

    /// Each project's strip of the `nights` nights ending with `last` (default: the latest).
    pub fn ci_history(
        &self,
        last: Option<NaiveDate>,
        nights: u32,
        project: Option<&str>,
    ) -> Result<CiHistory> {
        let Some(last) = last.map_or_else(|| self.ci_latest_night(), |n| Ok(Some(n)))? else {
            return Ok(CiHistory {
                nights: Vec::new(),
                projects: Vec::new(),
            });
        };
        let days: Vec<String> = nights_ending(last, nights.max(1))
            .into_iter()
            .map(night_label)
            .collect();
        let index: HashMap<&str, usize> = days
            .iter()
            .enumerate()
            .map(|(i, d)| (d.as_str(), i))
            .collect();
        let mut st = self.connection().prepare_cached(
            "SELECT project, night, status, warnings, downstream_failed FROM ci_pipelines
             WHERE night >= ?1 AND night <= ?2 AND (?3 IS NULL OR project = ?3)",
        )?;
        let mut strips: BTreeMap<String, Vec<NightCell>> = BTreeMap::new();
        let rows = st.query_map(params![days[0], days[days.len() - 1], project], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        for row in rows {
            let (proj, n, status, warn, downstream) = row?;
            let Some(&i) = index.get(n.as_str()) else {
                continue;
            };
            let cells = strips
                .entry(proj)
                .or_insert_with(|| vec![NightCell::NoRun; days.len()]);
            cells[i] = cells[i].max(NightCell::of(&status, warn, downstream));
        }
        Ok(CiHistory {
            nights: days,
            projects: strips
                .into_iter()
                .map(|(project, cells)| CiStrip { project, cells })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ci::{analyze, CiJob, CiPipeline, LogScanner, LogState, Rules};
    use crate::model::{Event, Severity, Timestamp};
    use crate::store::{Batch, Writer};

    fn pipeline(project: &str, id: i64, night: &str, status: &str, warnings: bool) -> CiUpdate {
        CiUpdate::Pipeline(CiPipeline {
            project: project.into(),
            project_url: Some(format!("https://gl.example/{project}")),
            id,
            night: night.into(),
            status: status.into(),
            warnings,
            ref_name: Some("main".into()),
            sha: None,
            source: Some("schedule".into()),
            web_url: Some(format!("https://gl.example/{project}/-/pipelines/{id}")),
            created_at: id,
            updated_at: id,
            downstream_failed: false,
        })
    }

    fn failed(project: &str, pipeline: i64, id: i64, log: &str, allow: bool) -> CiJob {
        let mut s = LogScanner::new();
        s.feed(log.as_bytes());
        let a = analyze(
            Some(&s.finish()),
            Some("script_failure"),
            &Rules::defaults().unwrap(),
        );
        CiJob {
            project: project.into(),
            id,
            pipeline,
            name: format!("job{id}"),
            stage: Some("test".into()),
            status: "failed".into(),
            allow_failure: allow,
            failure_reason: Some("script_failure".into()),
            web_url: Some(format!("https://gl.example/{project}/-/jobs/{id}")),
            finished_at: Some(id),
            log: LogState::Fetched,
            analysis: Some(a),
            chain: None,
        }
    }

    fn commit(w: &mut Writer, ci: Vec<CiUpdate>) {
        let ci: Vec<crate::store::StateUpdate> =
            ci.into_iter().map(crate::store::StateUpdate::Ci).collect();
        let e = Event::new(
            Timestamp::from_nanos(1),
            "gitlab",
            "ci_job_failed",
            "ci",
            Severity::Error,
            "x".into(),
        );
        let keys = vec![e.dedup_key()];
        w.commit(&Batch {
            source: "gitlab:test",
            events: &[e],
            keys: &keys,
            updates: &ci,
            rejects: &[],
            checkpoint: None,
        })
        .unwrap();
    }

    const OOM: &str = "ERROR: Job failed: exit code 137\n";
    const TEST: &str =
        "Test Failed at /builds/a/b/test/x.jl:3\n  Expression: f(1) == 2\nStacktrace:\n";

    #[test]
    fn nights_patterns_strips_retries_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut w = Writer::open(&path).unwrap();
        // Night 1: a/x fails OOM. Night 2: a/x fails OOM again, b/y fails a new test failure,
        // c/z passes with warnings; a retried pipeline of b goes failed -> success on night 2.
        commit(
            &mut w,
            vec![
                pipeline("a/x", 10, "2025-03-01", "failed", false),
                CiUpdate::Jobs {
                    project: "a/x".into(),
                    pipeline: 10,
                    jobs: vec![failed("a/x", 10, 100, OOM, false)],
                },
            ],
        );
        commit(
            &mut w,
            vec![
                pipeline("a/x", 20, "2025-03-02", "failed", false),
                CiUpdate::Jobs {
                    project: "a/x".into(),
                    pipeline: 20,
                    jobs: vec![failed("a/x", 20, 200, OOM, false)],
                },
                pipeline("b/y", 21, "2025-03-02", "failed", false),
                CiUpdate::Jobs {
                    project: "b/y".into(),
                    pipeline: 21,
                    jobs: vec![failed("b/y", 21, 210, TEST, false)],
                },
                pipeline("b/y", 22, "2025-03-02", "failed", false),
                CiUpdate::Jobs {
                    project: "b/y".into(),
                    pipeline: 22,
                    jobs: vec![failed("b/y", 22, 220, OOM, false)],
                },
                pipeline("c/z", 23, "2025-03-02", "success", true),
                CiUpdate::Jobs {
                    project: "c/z".into(),
                    pipeline: 23,
                    jobs: vec![failed("c/z", 23, 230, TEST, true)],
                },
            ],
        );
        // The retry: pipeline 22 now passed, its failed job gone.
        commit(
            &mut w,
            vec![
                pipeline("b/y", 22, "2025-03-02", "success", false),
                CiUpdate::Jobs {
                    project: "b/y".into(),
                    pipeline: 22,
                    jobs: vec![],
                },
            ],
        );
        // An older answer never rolls a pipeline back.
        let mut stale = pipeline("b/y", 22, "2025-03-02", "failed", false);
        if let CiUpdate::Pipeline(p) = &mut stale {
            p.updated_at = 1;
        }
        commit(&mut w, vec![stale]);
        drop(w);
        let r = crate::store::open_reader(&path).unwrap();
        assert_eq!(
            r.ci_latest_night().unwrap(),
            Some(parse_night("2025-03-02").unwrap())
        );

        let n = r.ci_night(None, None).unwrap().unwrap();
        assert_eq!(n.night, "2025-03-02");
        assert_eq!((n.failed, n.warnings, n.passed, n.projects), (2, 1, 1, 3));
        let listed: Vec<(&str, i64, NightCell)> = n
            .pipelines
            .iter()
            .map(|p| (p.project.as_str(), p.id, p.cell))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("a/x", 20, NightCell::Failed),
                ("b/y", 21, NightCell::Failed),
                ("c/z", 23, NightCell::Warnings)
            ]
        );
        let oom = &n.pipelines[0].jobs[0];
        assert_eq!(oom.pattern_name.as_deref(), Some("out of memory / killed"));
        assert!(!oom.pattern_new);
        let test = &n.pipelines[1].jobs[0];
        assert!(test.pattern_new);
        assert_eq!(
            test.web_url.as_deref(),
            Some("https://gl.example/b/y/-/jobs/210")
        );
        assert!(test
            .excerpt
            .as_deref()
            .unwrap()
            .contains("Expression: f(1) == 2"));

        let pats = r.ci_patterns(None, None).unwrap();
        assert_eq!(pats.len(), 2);
        assert_eq!(pats[0].name, "out of memory / killed");
        assert_eq!(
            (
                pats[0].nights_14,
                pats[0].nights_30,
                pats[0].jobs_last_night
            ),
            (2, 2, 1)
        );
        assert_eq!(pats[0].first_seen, "2025-03-01");
        assert!(!pats[0].is_new && pats[1].is_new);
        assert_eq!(pats[1].projects, vec!["b/y".to_string(), "c/z".to_string()]);
        assert_eq!(
            pats[0].examples,
            vec![
                "https://gl.example/a/x/-/jobs/200".to_string(),
                "https://gl.example/a/x/-/jobs/100".to_string()
            ]
        );
        // On night 1 only the OOM existed, and it was new then.
        let then = r
            .ci_patterns(Some(parse_night("2025-03-01").unwrap()), None)
            .unwrap();
        assert_eq!(then.len(), 1);
        assert!(then[0].is_new);

        let h = r.ci_history(None, 14, None).unwrap();
        assert_eq!(h.nights.len(), 14);
        let strips: Vec<(String, String)> = h
            .projects
            .iter()
            .map(|s| (s.project.clone(), s.symbols()[11..].to_string()))
            .collect();
        assert_eq!(
            strips,
            vec![
                ("a/x".into(), ".FF".into()),
                ("b/y".into(), "..F".into()),
                ("c/z".into(), "..W".into())
            ]
        );

        // A link stays and shows wherever the pattern does.
        let conn = crate::store::open(&path).unwrap();
        let id = link_issue(
            &conn,
            &pats[0].id[..6],
            "https://gl.example/infra/-/issues/9",
        )
        .unwrap();
        assert_eq!(id, pats[0].id);
        assert!(link_issue(&conn, "zzzz", "u").is_err());
        assert!(link_issue(&conn, "ab", "u").is_err());
        let pats = r.ci_patterns(None, None).unwrap();
        assert_eq!(
            pats[0].issue_url.as_deref(),
            Some("https://gl.example/infra/-/issues/9")
        );
        let n = r.ci_night(None, Some("a/x")).unwrap().unwrap();
        assert_eq!(
            n.pipelines[0].jobs[0].issue_url.as_deref(),
            Some("https://gl.example/infra/-/issues/9")
        );
    }
}
