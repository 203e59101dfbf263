//! `gitlab:URL`: GitLab CI's nightly pipelines, incrementally. The first run fills
//! `history_nights` of history; after that each poll asks, per project, only for pipelines
//! updated after the saved checkpoint (`updated_after`), lists the failed jobs of pipelines not
//! seen or changed, and reads the logs of failed jobs never read before (streamed, only the
//! pattern, excerpt and tail kept). The checkpoint (projects resolved, per-project
//! `updated_after`, pipelines and logs seen) commits with the data, so a restart costs no
//! history again. At most `max_in_flight` requests run at once; 401/403/404 and exhausted
//! retries are reported per project while the others go on. The token (from an environment
//! variable or a file) is sent as `PRIVATE-TOKEN` and appears in no message.

pub mod client;
pub mod config;
mod poll;
pub mod scan;
pub mod spec;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde::{Deserialize, Serialize};

use self::config::GitlabConfig;
use crate::ingest::{SourceCtx, SourceState};
use crate::model::ci::{parse_rules, CiJob, CiPipeline, Rules, SOURCE};
use crate::model::LogZone;
use crate::model::{Event, Reject, Severity, Timestamp};
use crate::sources::poll::{Every, Polled};
use crate::sources::Source;
use client::{encode, ApiError, Client};

pub const DEFAULT_TOKEN_ENV: &str = "SYNCSCOPE_GITLAB_TOKEN";
const DEFAULT_HISTORY: u32 = 30;
const DEFAULT_POLL: u64 = 300;
const DEFAULT_IN_FLIGHT: usize = 4;
/// A group's or the token's project list is read again after this many seconds.
const RELIST_SECS: i64 = 3600;
/// Pipelines and logs remembered this many nights beyond the history.
const REMEMBER_EXTRA_NIGHTS: i64 = 3;

/// The API base of `gitlab:URL`: `https://host/api/v4` as given, or `/api/v4` added to a bare
/// instance URL.
pub fn api_base(text: &str) -> Result<String, String> {
    let t = text.trim().trim_end_matches('/');
    let Some((scheme, rest)) = t.split_once("://") else {
        return Err(format!(
            "gitlab needs the API URL, http(s)://HOST/api/v4, not '{text}'"
        ));
    };
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.starts_with('/') {
        return Err(format!(
            "gitlab needs the API URL, http(s)://HOST/api/v4, not '{text}'"
        ));
    }
    if t.contains('?') || t.contains('#') || t.contains('@') {
        return Err(format!("gitlab: '{text}': give the API URL without query, fragment or credentials (the token goes in an environment variable or file)"));
    }
    if t.ends_with("/api/v4") {
        Ok(t.to_string())
    } else {
        Ok(format!("{t}/api/v4"))
    }
}

/// The token: the configured (or default) environment variable, else the file it names.
fn token(cfg: &GitlabConfig) -> Result<Option<String>> {
    let var = cfg.token_env.as_deref().unwrap_or(DEFAULT_TOKEN_ENV);
    if let Ok(t) = std::env::var(var) {
        let t = t.trim().to_string();
        if !t.is_empty() {
            return Ok(Some(t));
        }
    }
    let Some(file) = cfg.token_file.clone() else {
        return Ok(None);
    };
    let path = crate::sources::expand_tilde(&file);
    let text = std::fs::read_to_string(&path)
        .wrap_err_with(|| format!("cannot read the GitLab token file {}", path.display()))?;
    let t = text.lines().next().unwrap_or_default().trim().to_string();
    if t.is_empty() {
        bail!("the GitLab token file {} is empty", path.display());
    }
    Ok(Some(t))
}

/// The rules: the config's, then its rules file's, then (unless turned off) the defaults.
pub fn rules(cfg: &GitlabConfig) -> Result<Rules> {
    let mut specs = cfg.rules.clone();
    if let Some(f) = &cfg.rules_file {
        let path = crate::sources::expand_tilde(f);
        let text = std::fs::read_to_string(&path)
            .wrap_err_with(|| format!("cannot read the rules file {}", path.display()))?;
        specs.extend(parse_rules(&text).map_err(|e| eyre!("rules file {}: {e}", path.display()))?);
    }
    if cfg.default_rules.unwrap_or(true) {
        specs.extend(parse_rules(crate::model::ci::DEFAULT_RULES).map_err(|e| eyre!("{e}"))?);
    }
    Rules::compile(&specs).map_err(|e| eyre!("[gitlab] rules: {e}"))
}

/// A project as resolved (and remembered in the checkpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectInfo {
    pub id: i64,
    pub path: String,
    pub web_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiProject {
    id: i64,
    path_with_namespace: String,
    web_url: Option<String>,
    #[serde(default)]
    archived: bool,
}

/// `GET /projects/:id`: whether CI/CD is on (`jobs_enabled`, or `builds_access_level` on
/// newer versions).
#[derive(Debug, Deserialize)]
struct ApiProjectSettings {
    jobs_enabled: Option<bool>,
    builds_access_level: Option<String>,
}

impl ApiProjectSettings {
    fn ci_disabled(&self) -> bool {
        self.jobs_enabled == Some(false) || self.builds_access_level.as_deref() == Some("disabled")
    }
}

/// What the source remembers between polls and runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    /// Configured name (id or path) -> project.
    #[serde(default)]
    projects: BTreeMap<String, ProjectInfo>,
    /// When the group's or the token's projects were last listed (Unix seconds).
    #[serde(default)]
    listed_at: Option<i64>,
    /// Checkpoints of earlier versions: project id -> the newest `updated_at` over all its
    /// listings. Read as the start of each listing's window, then dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    updated_after: BTreeMap<String, String>,
    /// `PROJECT_ID FILTER` -> the newest `updated_at` that listing returned (as GitLab wrote
    /// it, milliseconds): one window per listing, so a pipeline updated between two listings is
    /// not skipped. GitLab's `updated_after` is `>=`: the newest comes back and is known.
    #[serde(default)]
    windows: BTreeMap<String, String>,
    /// `project:pipeline` -> `updated_at` of the pipeline as last processed.
    #[serde(default)]
    pipelines: BTreeMap<String, String>,
    /// `project:job` -> night, for every failed job whose log was read (or found erased).
    #[serde(default)]
    logs: BTreeMap<String, String>,
    /// `project:pipeline` -> polls that could not finish it (a log read failed for a reason
    /// that may pass): asked for directly until done, its logs given up after a few polls.
    /// The windows move on regardless.
    #[serde(default)]
    retry: BTreeMap<String, Retry>,
    /// Project id -> when it was last found with CI/CD disabled (Unix seconds): left out,
    /// its settings checked again hourly.
    #[serde(default)]
    disabled: BTreeMap<String, i64>,
    /// Project id -> its pipeline schedules as last listed (with `schedules` in the config),
    /// listed again hourly.
    #[serde(default)]
    schedules: BTreeMap<String, Schedules>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Schedules {
    listed_at: i64,
    list: Vec<scan::ApiSchedule>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Retry {
    attempts: u32,
    night: String,
}
pub struct GitlabSource {
    base: String,
    cfg: GitlabConfig,
    rules: Rules,
    zone: LogZone,
}

impl GitlabSource {
    pub fn new(base: String, cfg: GitlabConfig) -> Result<GitlabSource> {
        let rules = rules(&cfg)?;
        let zone = match cfg.timezone.as_deref() {
            Some(z) => LogZone::parse(z).map_err(|e| eyre!("[gitlab] timezone: {e}"))?,
            None => LogZone::Local,
        };
        if cfg.projects.is_empty() && cfg.group.is_none() && !cfg.all_projects {
            bail!("gitlab: no projects: set [gitlab] projects = [...], group = \"...\" or all_projects = true in the config");
        }
        Ok(GitlabSource {
            base,
            cfg,
            rules,
            zone,
        })
    }
}

/// Runs `f` over `items` on at most `n` threads; results in the items' order.
fn parallel<T: Sync, R: Send>(items: &[T], n: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    parallel_tick(items, n, f, || {})
}

/// [`parallel`], calling `tick` on the calling thread about once a second meanwhile (to report
/// progress from the thread that owns the source's status).
fn parallel_tick<T: Sync, R: Send>(
    items: &[T],
    n: usize,
    f: impl Fn(&T) -> R + Sync,
    mut tick: impl FnMut(),
) -> Vec<R> {
    /// Counts a worker out when it ends, panicking or not.
    struct Live<'a>(&'a AtomicUsize);
    impl Drop for Live<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let next = AtomicUsize::new(0);
    let workers = n.clamp(1, items.len().max(1));
    let live = AtomicUsize::new(workers);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                let _live = Live(&live);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else {
                        return;
                    };
                    let r = f(item);
                    if let Ok(mut o) = out.lock() {
                        o[i] = Some(r);
                    }
                }
            });
        }
        let mut last = std::time::Instant::now();
        while live.load(Ordering::Acquire) > 0 {
            std::thread::sleep(Duration::from_millis(10));
            if last.elapsed() >= Duration::from_secs(1) {
                tick();
                last = std::time::Instant::now();
            }
        }
    });
    out.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

impl GitlabSource {
    /// The projects to read: the remembered ones, resolving what is missing or stale.
    fn resolve(
        &self,
        client: &Client,
        cp: &mut Checkpoint,
        errors: &mut Vec<(String, ApiError)>,
    ) -> Result<Vec<ProjectInfo>, ApiError> {
        let now = crate::store::unix_now();
        let mut out: Vec<ProjectInfo> = Vec::new();
        let named: Vec<&String> = self.cfg.projects.iter().collect();
        let missing: Vec<&String> = named
            .iter()
            .filter(|n| !cp.projects.contains_key(n.as_str()))
            .copied()
            .collect();
        let found = parallel(&missing, self.in_flight(), |name| {
            client.get_one::<ApiProject>(&format!("/projects/{}", encode(name)))
        });
        for (name, r) in missing.iter().zip(found) {
            match r {
                Ok(p) => {
                    cp.projects.insert(
                        (*name).clone(),
                        ProjectInfo {
                            id: p.id,
                            path: p.path_with_namespace,
                            web_url: p.web_url,
                        },
                    );
                }
                Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
                Err(e) => errors.push(((*name).clone(), e)),
            }
        }
        for n in &named {
            if let Some(p) = cp.projects.get(n.as_str()) {
                out.push(p.clone());
            }
        }
        if self.cfg.group.is_some() || self.cfg.all_projects {
            let stale = cp.listed_at.is_none_or(|t| now - t >= RELIST_SECS);
            if stale {
                let mut listed = Vec::new();
                if let Some(g) = &self.cfg.group {
                    match client.get_all::<ApiProject>(&format!(
                        "/groups/{}/projects?include_subgroups=true&archived=false&with_shared={}&simple=true&per_page=100",
                        encode(g),
                        self.cfg.group_shared
                    )) {
                        Ok(v) => listed.extend(v),
                        Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
                        Err(e) => errors.push((format!("group {g}"), e)),
                    }
                }
                if self.cfg.all_projects {
                    match client.get_all::<ApiProject>(
                        "/projects?membership=true&archived=false&simple=true&per_page=100",
                    ) {
                        Ok(v) => listed.extend(v),
                        Err(ApiError::Cancelled) => return Err(ApiError::Cancelled),
                        Err(e) => errors.push(("the token's projects".into(), e)),
                    }
                }
                if !listed.is_empty() || errors.is_empty() {
                    cp.projects.retain(|k, _| named.contains(&k));
                    for p in listed.into_iter().filter(|p| !p.archived) {
                        cp.projects.insert(
                            format!("#{}", p.id),
                            ProjectInfo {
                                id: p.id,
                                path: p.path_with_namespace,
                                web_url: p.web_url,
                            },
                        );
                    }
                    cp.listed_at = Some(now);
                }
            }
            for (k, p) in &cp.projects {
                if k.starts_with('#') && !out.iter().any(|o| o.id == p.id) {
                    out.push(p.clone());
                }
            }
        }
        Ok(out)
    }

    fn in_flight(&self) -> usize {
        self.cfg.max_in_flight.unwrap_or(DEFAULT_IN_FLIGHT).max(1)
    }

    /// The pipeline listings of one project: one query per nightly filter.
    fn filters(&self) -> Vec<String> {
        let mut sources = self
            .cfg
            .pipeline_sources
            .clone()
            .unwrap_or_else(|| vec!["schedule".into()]);
        if !self.cfg.schedules.is_empty() && !sources.iter().any(|s| s == "schedule") {
            sources.push("schedule".into());
        }
        let mut f: Vec<String> = sources
            .iter()
            .map(|s| format!("source={}", encode(s)))
            .collect();
        f.extend(
            self.cfg
                .usernames
                .iter()
                .map(|u| format!("username={}", encode(u))),
        );
        if f.is_empty() {
            f.push(String::new());
        }
        f
    }
}

fn pipeline_corr(project: &str, id: i64) -> String {
    format!("{}:{project}#{id}", crate::model::names::system::GITLAB)
}

fn pipeline_event(p: &CiPipeline) -> Event {
    let (severity, what) = match (p.status.as_str(), p.warnings) {
        ("failed", _) if p.downstream_failed => (
            Severity::Error,
            "failed (in a downstream pipeline)".to_string(),
        ),
        ("failed", _) => (Severity::Error, "failed".to_string()),
        (s, _) if p.downstream_failed => (
            Severity::Error,
            format!("failed in a downstream pipeline (GitLab says {s})"),
        ),
        ("success", true) => (Severity::Warning, "passed with warnings".to_string()),
        ("success", false) => (Severity::Info, "passed".to_string()),
        (s, _) => (Severity::Debug, s.to_string()),
    };
    let mut e = Event::new(
        Timestamp::from_nanos(p.updated_at.saturating_mul(1_000_000_000)),
        SOURCE,
        "ci_pipeline",
        "ci",
        severity,
        format!(
            "{}: nightly pipeline #{} {what} on {} (night {})",
            p.project,
            p.id,
            p.ref_name.as_deref().unwrap_or("?"),
            p.night
        ),
    );
    e.device_id = Some(p.project.clone());
    e.correlation_id = Some(pipeline_corr(&p.project, p.id));
    e.subject = p.web_url.clone();
    e.details = serde_json::to_string(&serde_json::json!({
        "night": p.night, "status": p.status, "warnings": p.warnings, "web_url": p.web_url,
        "ref": p.ref_name, "sha": p.sha, "source": p.source,
        "downstream_failed": p.downstream_failed,
    }))
    .ok();
    e
}

fn job_event(j: &CiJob, pipeline_updated: i64) -> Event {
    let (severity, ty, what) = if j.allow_failure {
        (
            Severity::Warning,
            "ci_job_allowed_failure",
            "failed (allowed to fail)",
        )
    } else {
        (Severity::Error, "ci_job_failed", "failed")
    };
    let a = j.analysis.as_ref();
    let pattern = a
        .map(|a| format!("{}: {}", a.pattern.name, a.pattern.identity))
        .unwrap_or_default();
    let at = j.finished_at.unwrap_or(pipeline_updated);
    let via = j
        .chain
        .as_deref()
        .map(|c| format!(" (via {c})"))
        .unwrap_or_default();
    let mut e = Event::new(
        Timestamp::from_nanos(at.saturating_mul(1_000_000_000)),
        SOURCE,
        ty,
        "ci",
        severity,
        format!(
            "{}: job {} {what} in pipeline #{}{via}: {}",
            j.project,
            j.name,
            j.pipeline,
            crate::model::ci::clip(&pattern, 300)
        ),
    );
    e.device_id = Some(j.project.clone());
    e.correlation_id = Some(pipeline_corr(&j.project, j.pipeline));
    e.subject = j.web_url.clone();
    e.details = serde_json::to_string(&serde_json::json!({
        "job_id": j.id, "job": j.name, "stage": j.stage, "web_url": j.web_url,
        "failure_reason": j.failure_reason,
        "pattern": a.map(|a| &a.pattern.id), "pattern_name": a.map(|a| &a.pattern.name),
        "identity": a.map(|a| &a.pattern.identity), "section": a.and_then(|a| a.section.as_ref()),
        "excerpt": a.map(|a| &a.excerpt),
        "log": j.log.as_stored().unwrap_or("read"), "chain": j.chain,
    }))
    .ok();
    e
}

impl Source for GitlabSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let token = token(&self.cfg)?;
        let backoff = Duration::from_millis(500);
        let client = Client::new(
            self.base.clone(),
            token.clone(),
            ctx.cancel.clone(),
            backoff,
        )
        .map_err(|e| eyre!("{e}"))?;
        let mut cp: Checkpoint = ctx
            .checkpoint
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let poll = Duration::from_secs(self.cfg.poll_interval_secs.unwrap_or(DEFAULT_POLL).max(1));
        let poll_once = |ctx: &SourceCtx| -> Result<Polled> {
            let before = client.requests.load(Ordering::Relaxed);
            let outcome = self.poll(ctx, &client, &mut cp)?;
            let errors = &outcome.errors;
            let made = client.requests.load(Ordering::Relaxed) - before;
            let checkpoint = serde_json::to_string(&cp).map_err(|e| eyre!("{e}"))?;
            let mut rejects: Vec<Reject> = errors
                .iter()
                .map(|(what, e)| Reject::new(format!("{} {what}", self.base), e.to_string(), b""))
                .collect();
            // Said once (the checkpoint remembers it), not a fault.
            rejects.extend(
                outcome
                    .notes
                    .iter()
                    .map(|n| Reject::new(self.base.clone(), n.clone(), b"")),
            );
            ctx.send_unkeyed(Vec::new(), Vec::new(), rejects, Some(checkpoint))?;
            let disabled = match outcome.disabled {
                0 => String::new(),
                1 => "; 1 project with CI/CD disabled left out".to_string(),
                n => format!("; {n} projects with CI/CD disabled left out"),
            };
            if errors.is_empty() {
                return Ok(Polled::ok(format!("{made} requests{disabled}")));
            }
            let list: Vec<String> = errors.iter().map(|(w, e)| format!("{w}: {e}")).collect();
            let msg = client::redact(&format!("{}{disabled}", list.join("; ")), token.as_deref());
            // No project could be read (every one answered 401, say), on a fresh store or an
            // old one alike: the poll failed (backoff; with --once, the ingest fails). Some
            // read: a fault to show, the next poll on time.
            Ok(if outcome.read == 0 {
                Polled::fatal(msg)
            } else {
                Polled::Read {
                    state: SourceState::Fault,
                    message: msg,
                }
            })
        };
        crate::sources::poll::run(ctx, &Every::new(poll), poll_once)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls() {
        assert_eq!(
            api_base("https://gitlab.example.com").unwrap(),
            "https://gitlab.example.com/api/v4"
        );
        assert_eq!(
            api_base("https://gitlab.example.com/api/v4/").unwrap(),
            "https://gitlab.example.com/api/v4"
        );
        assert_eq!(
            api_base("http://127.0.0.1:8080/gl/api/v4").unwrap(),
            "http://127.0.0.1:8080/gl/api/v4"
        );
        for bad in [
            "gitlab.example.com",
            "ftp://x",
            "https://",
            "https://u:tok@x/api/v4",
            "https://x/api/v4?private_token=1",
        ] {
            assert!(api_base(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parallel_keeps_order_and_bounds_threads() {
        let items: Vec<u32> = (0..50).collect();
        let live = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let out = parallel(&items, 4, |i| {
            let n = live.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(1));
            live.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 4);
    }
}
