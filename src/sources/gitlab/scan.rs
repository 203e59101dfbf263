//! What one project's pipelines hold, as GitLab's API really answers: the pipeline listings
//! (one window per listing), the failed jobs of each pipeline, its trigger jobs (bridges: GitLab
//! lists them only under `/pipelines/:id/bridges`) followed to their child and multi-project
//! downstream pipelines, pipelines that failed before any job ran (`yaml_errors`), and job logs
//! told apart as read, empty, erased or expired (GitLab answers an erased log with an empty
//! `200`, so `GET /jobs/:id` says which).

use serde::{Deserialize, Serialize};

use super::client::{encode, ApiError, Client};
use crate::model::ci::{pipeline_failure, without_log, Analysis, LogState, ScannedLog};

/// Downstream levels followed at most (GitLab nests child pipelines two deep; multi-project
/// chains can go further, and a loop must end).
pub const MAX_DEPTH: u32 = 4;

#[derive(Debug, Clone, Deserialize)]
pub struct ApiPipeline {
    pub id: i64,
    pub status: String,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub sha: Option<String>,
    pub source: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub web_url: Option<String>,
}

/// A pipeline schedule (`GET /projects/:id/pipeline_schedules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSchedule {
    pub id: i64,
    pub description: Option<String>,
    pub cron: Option<String>,
}

impl ApiSchedule {
    /// Named in the config by its id or its description.
    pub fn chosen(&self, names: &[String]) -> bool {
        names.iter().any(|n| {
            *n == self.id.to_string()
                || Some(n.trim()) == self.description.as_deref().map(str::trim)
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ApiDetailedStatus {
    label: Option<String>,
}

/// `GET /projects/:id/pipelines/:pipeline_id`: what the list leaves out.
#[derive(Debug, Clone, Deserialize)]
struct ApiPipelineDetail {
    yaml_errors: Option<String>,
    #[serde(default)]
    detailed_status: Option<ApiDetailedStatus>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiJob {
    pub id: i64,
    pub name: String,
    pub stage: Option<String>,
    pub status: String,
    #[serde(default)]
    pub allow_failure: bool,
    pub failure_reason: Option<String>,
    pub web_url: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ApiDownstream {
    id: i64,
    /// Newer GitLab versions; else the project comes from `web_url`.
    project_id: Option<i64>,
    status: String,
    web_url: Option<String>,
}

/// A trigger job: `trigger:` in the YAML (`strategy: depend` makes its status the downstream
/// pipeline's).
#[derive(Debug, Clone, Deserialize)]
struct ApiBridge {
    id: i64,
    name: String,
    stage: Option<String>,
    status: String,
    #[serde(default)]
    allow_failure: bool,
    failure_reason: Option<String>,
    web_url: Option<String>,
    finished_at: Option<String>,
    downstream_pipeline: Option<ApiDownstream>,
}

#[derive(Debug, Clone, Deserialize)]
struct ApiArtifact {
    file_type: Option<String>,
    size: Option<u64>,
}

/// `GET /projects/:id/jobs/:job_id`: whether its log was erased or has expired.
#[derive(Debug, Clone, Deserialize)]
struct ApiJobDetail {
    erased_at: Option<String>,
    #[serde(default)]
    artifacts: Vec<ApiArtifact>,
}

/// A failed job of a nightly, in its own pipeline or downstream of it.
#[derive(Debug, Clone)]
pub struct Found {
    pub job: ApiJob,
    /// The project the job ran in, as the API names it (an id): its log is read there.
    pub project: String,
    /// The bridges and pipelines leading to it; None in the nightly pipeline itself.
    pub chain: Option<String>,
    /// A failure without a log (a trigger job, a pipeline that failed before any job):
    /// its analysis now.
    pub preset: Option<Analysis>,
}

impl Found {
    /// The checkpoint key of its log.
    pub fn log_key(&self) -> String {
        format!("{}:{}", self.project, self.job.id)
    }
}

/// What the jobs of one pipeline are, downstream included.
#[derive(Debug, Default)]
pub struct PipelineJobs {
    pub jobs: Vec<Found>,
    /// A downstream pipeline failed through a trigger job that may not fail.
    pub downstream_failed: bool,
    /// A downstream pipeline failed through an `allow_failure` trigger job.
    pub downstream_warning: bool,
    /// Downstream pipelines that could not be read (reported, the rest kept).
    pub notes: Vec<(String, ApiError)>,
}

/// The project part of a pipeline's web URL (`https://host/group/sub/p/-/pipelines/5` ->
/// `group/sub/p`).
fn project_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let path = rest.split_once('/')?.1;
    let project = path.split_once("/-/")?.0;
    (!project.is_empty()).then(|| project.to_string())
}

fn bridge_job(b: &ApiBridge) -> ApiJob {
    ApiJob {
        id: b.id,
        name: b.name.clone(),
        stage: b.stage.clone(),
        status: b.status.clone(),
        allow_failure: b.allow_failure,
        failure_reason: b.failure_reason.clone(),
        web_url: b.web_url.clone(),
        finished_at: b.finished_at.clone(),
    }
}

/// The failed jobs of pipeline `id` of `project` (an API id or encoded path) and, when
/// `downstream`, of the pipelines its trigger jobs started. When `failed`, a pipeline with
/// nothing failed in it gets its pattern from `yaml_errors` (one more request).
pub fn pipeline_jobs(
    client: &Client,
    project: &str,
    id: i64,
    failed: bool,
    downstream: bool,
) -> Result<PipelineJobs, ApiError> {
    let mut out = PipelineJobs::default();
    walk(
        client, project, id, failed, downstream, None, 0, false, &mut out,
    )?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn walk(
    client: &Client,
    project: &str,
    id: i64,
    failed: bool,
    downstream: bool,
    chain: Option<&str>,
    depth: u32,
    allowed: bool,
    out: &mut PipelineJobs,
) -> Result<(), ApiError> {
    let before = out.jobs.len();
    let jobs = client.get_all::<ApiJob>(&format!(
        "/projects/{project}/pipelines/{id}/jobs?scope[]=failed&per_page=100"
    ))?;
    for j in jobs.into_iter().filter(|j| j.status == "failed") {
        let mut job = j;
        job.allow_failure |= allowed;
        out.jobs.push(Found {
            job,
            project: project.to_string(),
            chain: chain.map(str::to_string),
            preset: None,
        });
    }
    if downstream {
        let bridges = client.get_all::<ApiBridge>(&format!(
            "/projects/{project}/pipelines/{id}/bridges?per_page=100"
        ))?;
        for b in bridges {
            follow(client, project, &b, chain, depth, allowed, out)?;
        }
    }
    if failed && out.jobs.len() == before {
        // Failed, and nothing in it failed: it failed before any job ran.
        let d: ApiPipelineDetail =
            client.get_one(&format!("/projects/{project}/pipelines/{id}"))?;
        let label = d.detailed_status.and_then(|s| s.label);
        out.jobs.push(Found {
            job: ApiJob {
                // Not a job: a negative id never collides with one.
                id: -id,
                name: format!("pipeline #{id}"),
                stage: None,
                status: "failed".into(),
                allow_failure: allowed,
                failure_reason: Some("pipeline_error".into()),
                web_url: None,
                finished_at: None,
            },
            project: project.to_string(),
            chain: chain.map(str::to_string),
            preset: Some(pipeline_failure(d.yaml_errors.as_deref(), label.as_deref())),
        });
    }
    Ok(())
}

/// One trigger job: its downstream pipeline's failures, or itself when it failed without one.
fn follow(
    client: &Client,
    project: &str,
    b: &ApiBridge,
    chain: Option<&str>,
    depth: u32,
    allowed: bool,
    out: &mut PipelineJobs,
) -> Result<(), ApiError> {
    let prefix = chain.map(|c| format!("{c} -> ")).unwrap_or_default();
    let allowed = allowed || b.allow_failure;
    let Some(d) = b.downstream_pipeline.as_ref() else {
        if b.status == "failed" {
            let mut job = bridge_job(b);
            job.allow_failure = allowed;
            out.jobs.push(Found {
                preset: Some(without_log(
                    "trigger job failed",
                    &format!(
                        "no downstream pipeline; failure_reason {}",
                        b.failure_reason.as_deref().unwrap_or("unknown")
                    ),
                )),
                job,
                project: project.to_string(),
                chain: Some(format!(
                    "{prefix}{} (trigger job, no downstream pipeline)",
                    b.name
                )),
            });
        }
        return Ok(());
    };
    if d.status != "failed" {
        if b.status == "failed" {
            // The trigger failed on its own (its downstream was canceled, say).
            let mut job = bridge_job(b);
            job.allow_failure = allowed;
            out.jobs.push(Found {
                preset: Some(without_log(
                    "trigger job failed",
                    &format!(
                        "downstream pipeline {}; failure_reason {}",
                        d.status,
                        b.failure_reason.as_deref().unwrap_or("unknown")
                    ),
                )),
                job,
                project: project.to_string(),
                chain: Some(format!("{prefix}{} (trigger job)", b.name)),
            });
        }
        return Ok(());
    }
    if allowed {
        out.downstream_warning = true;
    } else {
        out.downstream_failed = true;
    }
    let (target, label) = match (d.project_id, d.web_url.as_deref().and_then(project_of_url)) {
        (Some(pid), _) if pid.to_string() == project => {
            (pid.to_string(), format!("child pipeline #{}", d.id))
        }
        (Some(pid), Some(path)) => (pid.to_string(), format!("{path} pipeline #{}", d.id)),
        (Some(pid), None) => (pid.to_string(), format!("project {pid} pipeline #{}", d.id)),
        (None, Some(path)) => (encode(&path), format!("{path} pipeline #{}", d.id)),
        (None, None) => (
            project.to_string(),
            format!("downstream pipeline #{}", d.id),
        ),
    };
    let here = format!("{prefix}{} -> {label}", b.name);
    if depth + 1 >= MAX_DEPTH {
        out.notes.push((
            here.clone(),
            ApiError::Transport(format!(
                "downstream deeper than {MAX_DEPTH} levels: not followed"
            )),
        ));
        return Ok(());
    }
    match walk(
        client,
        &target,
        d.id,
        true,
        true,
        Some(&here),
        depth + 1,
        allowed,
        out,
    ) {
        Ok(()) => Ok(()),
        Err(ApiError::Cancelled) => Err(ApiError::Cancelled),
        // Another project's pipeline the token cannot read: the trigger stands for it.
        Err(
            e @ ApiError::Http {
                status: 401..=499, ..
            },
        )
        | Err(e @ ApiError::OtherOrigin { .. }) => {
            let mut job = bridge_job(b);
            job.allow_failure = allowed;
            out.jobs.push(Found {
                preset: Some(without_log(
                    "downstream pipeline not readable",
                    &format!("{label} failed; cannot read it: {e}"),
                )),
                job,
                project: project.to_string(),
                chain: Some(here.clone()),
            });
            out.notes.push((here, e));
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// A failed job's log: read, empty, erased or expired. GitLab answers a log that is gone with
/// `200` and an empty body (`build.trace.raw || ''`), or 404; an empty answer is checked
/// against the job (`erased_at`, the `trace` artifact).
pub fn read_log(
    client: &Client,
    project: &str,
    job: i64,
) -> Result<(LogState, Option<ScannedLog>), ApiError> {
    let log = match client.trace(project, job)? {
        None => return Ok((LogState::Erased, None)),
        Some(log) if log.bytes > 0 => return Ok((LogState::Fetched, Some(log))),
        Some(log) => log,
    };
    let d: ApiJobDetail = client.get_one(&format!("/projects/{project}/jobs/{job}"))?;
    let trace = d
        .artifacts
        .iter()
        .find(|a| a.file_type.as_deref() == Some("trace"));
    match (d.erased_at, trace) {
        (Some(_), _) | (None, None) => Ok((LogState::Erased, None)),
        (None, Some(a)) if a.size.unwrap_or(0) == 0 => Ok((LogState::Empty, Some(log))),
        (None, Some(a)) => Err(ApiError::Transport(format!(
            "the log of job {job} is {} bytes but GitLab sent none",
            a.size.unwrap_or(0)
        ))),
    }
}

/// A read failure that will not change by asking again (403, 410, ...); 429 and 5xx, transport
/// errors and redirects may.
pub fn permanent(e: &ApiError) -> bool {
    matches!(e, ApiError::Http { status, .. } if (400..500).contains(status) && *status != 429)
}

/// For the fuzz target `gitlab_api`: `body` read as each answer this file asks GitLab for,
/// exactly as the client decodes it, and what is derived from each without another request
/// (a bridge as a job, a downstream project from its URL, a pipeline's failure without jobs).
/// How many decodings succeeded.
#[doc(hidden)]
pub fn fuzz_payloads(body: &[u8]) -> usize {
    let mut ok = 0;
    if let Ok(list) = serde_json::from_slice::<Vec<ApiPipeline>>(body) {
        ok += 1;
        for p in &list {
            let _ = p.web_url.as_deref().map(project_of_url);
        }
    }
    if let Ok(list) = serde_json::from_slice::<Vec<ApiJob>>(body) {
        ok += 1;
        for j in &list {
            let _ = j.web_url.as_deref().map(project_of_url);
        }
    }
    if let Ok(list) = serde_json::from_slice::<Vec<ApiBridge>>(body) {
        ok += 1;
        for b in &list {
            let _ = bridge_job(b);
            if let Some(d) = &b.downstream_pipeline {
                let _ = d.web_url.as_deref().map(project_of_url);
            }
        }
    }
    if let Ok(d) = serde_json::from_slice::<ApiPipelineDetail>(body) {
        ok += 1;
        let label = d.detailed_status.and_then(|s| s.label);
        let _ = pipeline_failure(d.yaml_errors.as_deref(), label.as_deref());
    }
    if let Ok(d) = serde_json::from_slice::<ApiJobDetail>(body) {
        ok += 1;
        let _ = d
            .artifacts
            .iter()
            .find(|a| a.file_type.as_deref() == Some("trace"));
    }
    if let Ok(list) = serde_json::from_slice::<Vec<ApiSchedule>>(body) {
        ok += 1;
        let names: Vec<String> = list.iter().filter_map(|s| s.description.clone()).collect();
        for s in &list {
            let _ = s.chosen(&names);
        }
    }
    let _ = super::client::error_message(body);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downstream_projects_from_urls() {
        assert_eq!(
            project_of_url("https://gl.example/group/sub/p/-/pipelines/5").as_deref(),
            Some("group/sub/p")
        );
        assert_eq!(project_of_url("https://gl.example/"), None);
        assert!(permanent(&ApiError::Http {
            status: 403,
            message: String::new()
        }));
        assert!(!permanent(&ApiError::Http {
            status: 503,
            message: String::new()
        }));
        assert!(!permanent(&ApiError::Transport(String::new())));
    }
}
