//! One poll of the `gitlab` source: every project's listings (a window each), the jobs of
//! pipelines not seen at their `updated_at` (downstream pipelines included), every log not read
//! before; then one batch per project with the checkpoint.

use std::collections::{BTreeMap, BTreeSet};

use color_eyre::eyre::Result;

use super::client::{ApiError, Client};
use super::scan::{self, ApiPipeline, Found, PipelineJobs};
use super::{
    job_event, parallel_tick, pipeline_event, ApiProjectSettings, Checkpoint, GitlabSource,
    ProjectInfo, Retry, DEFAULT_HISTORY, RELIST_SECS, REMEMBER_EXTRA_NIGHTS,
};
use crate::ingest::progress::Progress;
use crate::ingest::{SourceCtx, SourceState};
use crate::model::ci::{
    analyze, night_label, night_of, Analysis, CiJob, CiPipeline, CiUpdate, LogState,
};
use crate::model::parse_rfc3339;

/// Polls a pipeline with an unread log is asked for again before its logs are given up.
const MAX_ATTEMPTS: u32 = 3;

/// Milliseconds of an RFC 3339 time (GitLab's JSON times have milliseconds).
pub(super) fn millis(text: &str) -> Option<i64> {
    parse_rfc3339(text)
        .ok()
        .map(|t| t.as_nanos().div_euclid(1_000_000))
}

pub(super) fn unix(text: &str) -> Option<i64> {
    millis(text).map(|m| m.div_euclid(1000))
}

/// A pipeline to process, with its jobs (None: nothing to list, e.g. still running).
struct Work {
    pl: ApiPipeline,
    night: String,
    jobs: Option<PipelineJobs>,
}

/// What one project's listings found.
#[derive(Default)]
struct ProjectScan {
    work: Vec<Work>,
    /// Listing key -> the newest `updated_at` it returned.
    windows: Vec<(String, String)>,
    /// Retried pipelines GitLab no longer has.
    gone: Vec<String>,
    error: Option<ApiError>,
    /// Reported, the rest of the project kept.
    notes: Vec<(String, ApiError)>,
    /// The project's pipeline schedules, listed now.
    schedules: Option<Vec<scan::ApiSchedule>>,
}

/// A log to read.
struct TraceJob {
    project: i64,
    found: Found,
    /// The nightly pipeline it belongs to.
    pipeline: i64,
    night: String,
    give_up: bool,
}

/// What the poll found out, beyond the batches.
#[derive(Default)]
pub(super) struct PollOutcome {
    /// Faults: per project or job, with GitLab's answer.
    pub errors: Vec<(String, ApiError)>,
    /// Said once, not a fault (a project with CI/CD disabled, left out).
    pub notes: Vec<String>,
    /// Projects read without error this poll (or known to have CI/CD disabled).
    pub read: usize,
    /// Projects left out because CI/CD is disabled in them.
    pub disabled: usize,
}

/// The listing's new window: the newest `updated_at` it returned, if not older than `after`.
fn record_window(scan: &mut ProjectScan, key: String, after: &str, list: &[ApiPipeline]) {
    let newest = list
        .iter()
        .filter_map(|pl| millis(&pl.updated_at).map(|m| (m, &pl.updated_at)))
        .max();
    if let Some((m, n)) = newest {
        if millis(after).is_none_or(|a| m >= a) {
            scan.windows.push((key, n.clone()));
        }
    }
}

impl GitlabSource {
    fn downstream(&self) -> bool {
        self.cfg.downstream.unwrap_or(true)
    }

    /// Takes a listed (or directly asked) pipeline if it changed since it was processed.
    fn consider(
        &self,
        p: &ProjectInfo,
        pl: ApiPipeline,
        cp: &Checkpoint,
        seen: &mut BTreeSet<i64>,
        scan: &mut ProjectScan,
    ) {
        if !seen.insert(pl.id) {
            return;
        }
        let key = format!("{}:{}", p.id, pl.id);
        if cp.pipelines.get(&key) == Some(&pl.updated_at) && !cp.retry.contains_key(&key) {
            return;
        }
        let Ok(created) = parse_rfc3339(&pl.created_at) else {
            scan.notes.push((
                format!("{} pipeline #{}", p.path, pl.id),
                ApiError::Transport(format!(
                    "created_at '{}' is not an RFC 3339 time: pipeline left out",
                    crate::sanitize::one_line(&pl.created_at)
                )),
            ));
            return;
        };
        let night = night_label(night_of(created, &self.zone));
        scan.work.push(Work {
            pl,
            night,
            jobs: None,
        });
    }

    fn scan_project(
        &self,
        client: &Client,
        p: &ProjectInfo,
        cp: &Checkpoint,
        since: &str,
        progress: &Progress,
    ) -> ProjectScan {
        let mut scan = ProjectScan::default();
        let mut seen = BTreeSet::new();
        // The precise route: the schedules named in the config.
        let mut chosen: Vec<i64> = Vec::new();
        if !self.cfg.schedules.is_empty() {
            let now = crate::store::unix_now();
            let list = match cp.schedules.get(&p.id.to_string()) {
                Some(s) if now - s.listed_at < RELIST_SECS => s.list.clone(),
                _ => match client.get_all::<scan::ApiSchedule>(&format!(
                    "/projects/{}/pipeline_schedules?per_page=100",
                    p.id
                )) {
                    Ok(v) => {
                        scan.schedules = Some(v.clone());
                        v
                    }
                    Err(e) => {
                        scan.error = Some(e);
                        return scan;
                    }
                },
            };
            chosen = list
                .iter()
                .filter(|s| s.chosen(&self.cfg.schedules))
                .map(|s| s.id)
                .collect();
        }
        for filter in self.filters() {
            let precise = !self.cfg.schedules.is_empty() && filter == "source=schedule";
            if precise && chosen.is_empty() {
                // No schedule of this project is one of those named.
                continue;
            }
            let key = format!("{} {filter}", p.id);
            let after = cp
                .windows
                .get(&key)
                .or_else(|| cp.updated_after.get(&p.id.to_string()))
                .cloned()
                .unwrap_or_else(|| since.to_string());
            let amp = if filter.is_empty() { "" } else { "&" };
            let path = format!(
                "/projects/{}/pipelines?{filter}{amp}updated_after={}&order_by=updated_at&sort=desc&per_page=100",
                p.id,
                super::encode(&after)
            );
            let mut list = match client.get_all::<ApiPipeline>(&path) {
                Ok(l) => l,
                Err(e) => {
                    scan.error = Some(e);
                    return scan;
                }
            };
            if precise {
                // Which of them the named schedules started: asked after the listing, so
                // every pipeline listed is already there (the newest 100 of each schedule).
                let mut ids = BTreeSet::new();
                for sid in &chosen {
                    match client.get_one::<Vec<ApiPipeline>>(&format!(
                        "/projects/{}/pipeline_schedules/{sid}/pipelines?sort=desc&per_page=100",
                        p.id
                    )) {
                        Ok(v) => ids.extend(v.into_iter().map(|pl| pl.id)),
                        Err(e) => {
                            scan.error = Some(e);
                            return scan;
                        }
                    }
                }
                let window = list.clone();
                list.retain(|pl| ids.contains(&pl.id));
                // The window still covers every schedule's pipelines.
                record_window(&mut scan, key, &after, &window);
                for pl in list {
                    self.consider(p, pl, cp, &mut seen, &mut scan);
                }
                continue;
            }
            record_window(&mut scan, key, &after, &list);
            for pl in list {
                self.consider(p, pl, cp, &mut seen, &mut scan);
            }
        }
        progress.inc("projects", 1);
        // Pipelines with work left that the windows moved past: asked for directly.
        let prefix = format!("{}:", p.id);
        for key in cp.retry.keys().filter(|k| k.starts_with(&prefix)) {
            let Some(id) = key[prefix.len()..].parse::<i64>().ok() else {
                continue;
            };
            if seen.contains(&id) {
                continue;
            }
            match client.get_one::<ApiPipeline>(&format!("/projects/{}/pipelines/{id}", p.id)) {
                Ok(pl) => self.consider(p, pl, cp, &mut seen, &mut scan),
                Err(ApiError::Http { status: 404, .. }) => scan.gone.push(key.clone()),
                Err(e) => {
                    scan.error = Some(e);
                    return scan;
                }
            }
        }
        let check_warnings = self.cfg.check_warnings.unwrap_or(true);
        let downstream = self.downstream();
        let project = p.id.to_string();
        progress.add_total("pipelines", scan.work.len() as u64);
        for w in &mut scan.work {
            progress.inc("pipelines", 1);
            let failed = w.pl.status == "failed";
            let success = w.pl.status == "success";
            if failed || (success && (check_warnings || downstream)) {
                match scan::pipeline_jobs(client, &project, w.pl.id, failed, downstream) {
                    Ok(j) => w.jobs = Some(j),
                    Err(e) => {
                        scan.error = Some(e);
                        return scan;
                    }
                }
            } else if success || w.pl.status == "canceled" || w.pl.status == "skipped" {
                // Finished with nothing failed to list.
                w.jobs = Some(PipelineJobs::default());
            }
        }
        scan
    }

    /// A project that answered 403: is CI/CD disabled in it?
    fn ci_disabled(client: &Client, p: &ProjectInfo) -> bool {
        client
            .get_one::<ApiProjectSettings>(&format!("/projects/{}", p.id))
            .is_ok_and(|s| s.ci_disabled())
    }

    /// One poll: every project, then every new log. Sends the batches.
    pub(super) fn poll(
        &self,
        ctx: &SourceCtx,
        client: &Client,
        cp: &mut Checkpoint,
    ) -> Result<PollOutcome> {
        let mut out = PollOutcome::default();
        let all = match self.resolve(client, cp, &mut out.errors) {
            Ok(p) => p,
            Err(_) => return Ok(out),
        };
        let now = crate::store::unix_now();
        // Projects with CI/CD disabled stay out until their settings change (checked hourly).
        let mut projects = Vec::new();
        for p in all {
            let id = p.id.to_string();
            match cp.disabled.get(&id) {
                Some(&at) if now - at < RELIST_SECS => out.disabled += 1,
                Some(_) => {
                    if Self::ci_disabled(client, &p) {
                        cp.disabled.insert(id, now);
                        out.disabled += 1;
                    } else {
                        cp.disabled.remove(&id);
                        out.notes
                            .push(format!("{}: CI/CD is enabled again: read again", p.path));
                        projects.push(p);
                    }
                }
                None => projects.push(p),
            }
        }
        let history = i64::from(self.cfg.history_nights.unwrap_or(DEFAULT_HISTORY));
        let since_ts = crate::model::now_utc() - chrono::Duration::days(history + 1);
        let since = since_ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        // What is done of what is known: a bar on a terminal, the status for the TUI.
        let progress = Progress::items(
            crate::model::names::kind::GITLAB,
            &["projects", "pipelines", "logs"],
            ctx.progress_bar,
        );
        progress.add_total("projects", projects.len() as u64);
        let busy = || ctx.status(SourceState::Busy, progress.status());
        let mut scans = parallel_tick(
            &projects,
            self.in_flight(),
            |p| self.scan_project(client, p, cp, &since, &progress),
            busy,
        );
        for (p, scan) in projects.iter().zip(scans.iter_mut()) {
            if matches!(scan.error, Some(ApiError::Http { status: 403, .. }))
                && Self::ci_disabled(client, p)
            {
                cp.disabled.insert(p.id.to_string(), now);
                out.disabled += 1;
                out.notes.push(format!(
                    "{}: CI/CD is disabled in the project's settings (its pipelines answer 403): left out until that changes (checked again hourly)",
                    p.path
                ));
                scan.error = None;
                scan.work.clear();
                scan.windows.clear();
            }
        }

        // The logs to read: failed jobs never read before.
        let mut traces: Vec<TraceJob> = Vec::new();
        for (p, scan) in projects.iter().zip(&scans) {
            if scan.error.is_some() {
                continue;
            }
            for w in &scan.work {
                let Some(jobs) = &w.jobs else { continue };
                let key = format!("{}:{}", p.id, w.pl.id);
                let give_up = cp
                    .retry
                    .get(&key)
                    .is_some_and(|r| r.attempts + 1 >= MAX_ATTEMPTS);
                for f in jobs.jobs.iter().filter(|f| f.preset.is_none()) {
                    if !cp.logs.contains_key(&f.log_key()) {
                        traces.push(TraceJob {
                            project: p.id,
                            found: f.clone(),
                            pipeline: w.pl.id,
                            night: w.night.clone(),
                            give_up,
                        });
                    }
                }
            }
        }
        let rules = &self.rules;
        progress.add_total("logs", traces.len() as u64);
        let read = parallel_tick(
            &traces,
            self.in_flight(),
            |t| {
                let reason = t.found.job.failure_reason.as_deref();
                let r = scan::read_log(client, &t.found.project, t.found.job.id);
                progress.inc("logs", 1);
                match r {
                    Ok((state, log)) => Ok((state, analyze(log.as_ref(), reason, rules), None)),
                    Err(ApiError::Cancelled) => Err(ApiError::Cancelled),
                    // Asking again will not help (or has not): the failure reason stands for it.
                    Err(e) if scan::permanent(&e) || t.give_up => {
                        Ok((LogState::Unreadable, analyze(None, reason, rules), Some(e)))
                    }
                    Err(e) => Err(e),
                }
            },
            busy,
        );
        progress.finish();
        let mut analyses: BTreeMap<(i64, String), (LogState, Analysis)> = BTreeMap::new();
        for (t, r) in traces.iter().zip(read) {
            let what = format!(
                "{} job {}",
                projects
                    .iter()
                    .find(|p| p.id == t.project)
                    .map_or("?", |p| p.path.as_str()),
                t.found.job.id
            );
            match r {
                Ok((state, a, err)) => {
                    if let Some(e) = err {
                        out.errors
                            .push((format!("{what} (log not read, not asked again)"), e));
                    }
                    analyses.insert((t.project, t.found.log_key()), (state, a));
                    cp.logs.insert(t.found.log_key(), t.night.clone());
                }
                Err(ApiError::Cancelled) => {}
                Err(e) => out
                    .errors
                    .push((format!("{what} of pipeline #{}", t.pipeline), e)),
            }
        }

        // One batch per project.
        for (p, scan) in projects.iter().zip(scans) {
            if let Some(e) = scan.error {
                if e != ApiError::Cancelled {
                    out.errors.push((p.path.clone(), e));
                }
                continue;
            }
            out.read += 1;
            out.errors.extend(
                scan.notes
                    .into_iter()
                    .map(|(w, e)| (format!("{}: {w}", p.path), e)),
            );
            for k in scan.gone {
                cp.retry.remove(&k);
            }
            let mut events = Vec::new();
            let mut ci = Vec::new();
            for w in scan.work {
                let key = format!("{}:{}", p.id, w.pl.id);
                let (downstream_failed, downstream_warning) =
                    w.jobs.as_ref().map_or((false, false), |j| {
                        (j.downstream_failed, j.downstream_warning)
                    });
                if let Some(j) = &w.jobs {
                    out.errors.extend(j.notes.iter().map(|(c, e)| {
                        (format!("{} pipeline #{} {c}", p.path, w.pl.id), e.clone())
                    }));
                }
                let warnings = w.pl.status == "success"
                    && (downstream_warning
                        || w.jobs
                            .as_ref()
                            .is_some_and(|j| j.jobs.iter().any(|f| f.job.allow_failure)));
                let updated = unix(&w.pl.updated_at).unwrap_or(0);
                let pipe = CiPipeline {
                    project: p.path.clone(),
                    project_url: p.web_url.clone(),
                    id: w.pl.id,
                    night: w.night.clone(),
                    status: w.pl.status.clone(),
                    warnings,
                    ref_name: w.pl.ref_name.clone(),
                    sha: w.pl.sha.clone(),
                    source: w.pl.source.clone(),
                    web_url: w.pl.web_url.clone(),
                    created_at: unix(&w.pl.created_at).unwrap_or(0),
                    updated_at: updated,
                    downstream_failed,
                };
                events.push(pipeline_event(&pipe));
                ci.push(CiUpdate::Pipeline(pipe));
                let Some(jobs) = w.jobs else {
                    // Not finished: listed again when it is (its `updated_at` moves).
                    cp.pipelines.insert(key, w.pl.updated_at.clone());
                    continue;
                };
                let mut rows = Vec::new();
                let mut all_read = true;
                for f in jobs.jobs {
                    let lk = f.log_key();
                    let (log, analysis) = match (f.preset, analyses.remove(&(p.id, lk.clone()))) {
                        (Some(a), _) if !cp.logs.contains_key(&lk) => {
                            cp.logs.insert(lk.clone(), w.night.clone());
                            (LogState::NoLog, Some(a))
                        }
                        (Some(_), _) => (LogState::Unchanged, None),
                        (None, Some((state, a))) => (state, Some(a)),
                        (None, None) => {
                            if !cp.logs.contains_key(&lk) {
                                all_read = false;
                            }
                            (LogState::Unchanged, None)
                        }
                    };
                    let job = CiJob {
                        project: p.path.clone(),
                        id: f.job.id,
                        pipeline: w.pl.id,
                        name: f.job.name.clone(),
                        stage: f.job.stage.clone(),
                        status: f.job.status.clone(),
                        allow_failure: f.job.allow_failure,
                        failure_reason: f.job.failure_reason.clone(),
                        web_url: f.job.web_url.clone(),
                        finished_at: f.job.finished_at.as_deref().and_then(unix),
                        log,
                        analysis,
                        chain: f.chain,
                    };
                    if job.analysis.is_some() {
                        events.push(job_event(&job, updated));
                    }
                    rows.push(job);
                }
                ci.push(CiUpdate::Jobs {
                    project: p.path.clone(),
                    pipeline: w.pl.id,
                    jobs: rows,
                });
                if all_read {
                    cp.pipelines.insert(key.clone(), w.pl.updated_at.clone());
                    cp.retry.remove(&key);
                } else {
                    // The windows move on; this pipeline is asked for directly next time.
                    let r = cp.retry.entry(key).or_insert(Retry {
                        attempts: 0,
                        night: w.night.clone(),
                    });
                    r.attempts += 1;
                }
            }
            for (k, n) in scan.windows {
                cp.windows.insert(k, n);
            }
            if let Some(list) = scan.schedules {
                cp.schedules.insert(
                    p.id.to_string(),
                    super::Schedules {
                        listed_at: crate::store::unix_now(),
                        list,
                    },
                );
            }
            cp.updated_after.remove(&p.id.to_string());
            if !events.is_empty() || !ci.is_empty() {
                let ci = ci.into_iter().map(crate::store::StateUpdate::Ci).collect();
                ctx.send_unkeyed(events, ci, Vec::new(), None)?;
            }
        }
        out.read += out.disabled;
        // Forget what is older than the history.
        let horizon = night_label(
            (crate::model::now_utc() - chrono::Duration::days(history + REMEMBER_EXTRA_NIGHTS))
                .date_naive(),
        );
        cp.logs.retain(|_, night| *night >= horizon);
        cp.retry.retain(|_, r| r.night >= horizon);
        let cutoff =
            crate::model::now_utc().timestamp() - (history + REMEMBER_EXTRA_NIGHTS) * 86_400;
        cp.pipelines
            .retain(|_, u| unix(u).is_none_or(|t| t >= cutoff));
        Ok(out)
    }
}
