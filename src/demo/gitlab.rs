//! A simulated GitLab REST API on 127.0.0.1 for `syncscope demo`: six projects with 30 nights
//! of scheduled pipelines, a few recurring failure patterns (a Julia test failure, a dependency
//! conflict, OOM kills, a flaky network), a NEW failure last night, a passed-with-warnings
//! project, an erased log, a nightly that fails inside its child pipeline (a trigger job with
//! `strategy: depend`, listed only under `/bridges`; the child left out of the nightly
//! listing as `source=parent_pipeline`), and a pipeline that fails last night and passes on
//! retry a little after the demo starts. The real `gitlab:` source reads it (paging, incremental polling,
//! streamed logs), so the CI data in the demo's store went through the real code.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use color_eyre::eyre::Result;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::server::{Loopback, Response};
use super::Rng;
use crate::sources::gitlab::config::GitlabConfig;

/// Nights of history served.
pub const NIGHTS: i64 = 30;
/// The retried pipeline passes this long after the demo starts.
pub const RETRY_AFTER: Duration = Duration::from_secs(20);
const HOST: &str = "gitlab.demo.example";

const PROJECTS: &[(i64, &str)] = &[
    (101, "research/GLMModels.jl"),
    (102, "research/MixedModels.jl"),
    (103, "tools/build"),
    (104, "data/etl"),
    (105, "web/frontend"),
    (106, "infra/terraform-modules"),
];

#[derive(Debug, Clone)]
struct Job {
    id: i64,
    name: &'static str,
    allow_failure: bool,
    failure_reason: &'static str,
    /// None: the log was erased.
    log: Option<String>,
}

#[derive(Debug, Clone)]
struct Pipeline {
    project: i64,
    id: i64,
    status: &'static str,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    failed: Vec<Job>,
    /// `schedule` for the nightlies, `parent_pipeline` for a child pipeline.
    source: &'static str,
    /// Trigger jobs: (job id, name, the child pipeline's id).
    bridges: Vec<(i64, &'static str, i64)>,
}

struct World {
    pipelines: Vec<Pipeline>,
    /// The pipeline that passes on retry, and when.
    retry: Option<(usize, Instant)>,
}

fn header(job: &str) -> String {
    format!(
        "\x1b[0KRunning with gitlab-runner 17.5.0 (8f2e9c1d)\n\x1b[0K  on ci-large-3 rz4y4fdk\nsection_start:1740895204:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1mPreparing the \"docker\" executor\x1b[0;m\nsection_end:1740895205:prepare_executor\r\x1b[0K\nsection_start:1740895206:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage of the job script\x1b[0;m\n\x1b[32;1m$ {job}\x1b[0;m\n"
    )
}

fn footer(code: u32) -> String {
    format!("section_end:1740896587:step_script\r\x1b[0K\nsection_start:1740896588:cleanup_file_variables\r\x1b[0K\x1b[0K\x1b[36;1mCleaning up project directory and file based variables\x1b[0;m\nsection_end:1740896589:cleanup_file_variables\r\x1b[0K\n\x1b[31;1mERROR: Job failed: exit code {code}\n\x1b[0;m\n")
}

fn progress(rng: &mut Rng, lines: u64) -> String {
    let mut s = String::new();
    for i in 0..lines {
        s.push_str(&format!(
            "   Installed {} ──── v{}.{}.{}\r\x1b[K  Progress [{}%]\n",
            rng.hex(8),
            rng.below(3),
            rng.below(20),
            rng.below(10),
            i * 100 / lines.max(1)
        ));
    }
    s
}

fn julia_test(rng: &mut Rng) -> String {
    format!(
        "{}{}Test Summary: | Pass  Fail  Total\nTest Failed at ~/builds/rz4y4fdk/0/research/GLMModels.jl/test/runtests.jl:{}\n  Expression: isapprox(coef(m), [1.0, 2.0]; atol = 1e-8)\n   Evaluated: isapprox([1.0, 2.{}], [1.0, 2.0]; atol = 1.0e-8)\nStacktrace:\n [1] top-level scope at /tmp/jl_{}/runtests.jl:{}\nERROR: LoadError: Some tests did not pass: 231 passed, 1 failed, 0 errored, 0 broken.\n{}",
        header("julia --project -e 'using Pkg; Pkg.test()'"),
        progress(rng, 400),
        40 + rng.below(5),
        rng.below(1000),
        rng.hex(6),
        rng.below(90),
        footer(1)
    )
}

fn unsatisfiable(rng: &mut Rng) -> String {
    format!(
        "{}{}ERROR: LoadError: Unsatisfiable requirements detected for package StatsModels [3eaba693]:\n StatsModels [3eaba693] log:\n ├─possible versions are: 0.6.0-0.7.{} or uninstalled\n └─restricted to versions 0.8 by MixedModels [ff71e718] — no versions left\n{}",
        header("julia --project -e 'using Pkg; Pkg.instantiate()'"),
        progress(rng, 120),
        rng.below(4),
        footer(1)
    )
}

fn oom(rng: &mut Rng) -> String {
    format!(
        "{}epoch 1/20\r{}\nepoch 7/20 loss={}.{}\n/usr/bin/bash: line 143:   {} Killed                  python train.py --batch 512\n{}",
        header("python train.py --batch 512"),
        progress(rng, 80),
        rng.below(3),
        rng.below(1000),
        300 + rng.below(5000),
        footer(137)
    )
}

fn network(_rng: &mut Rng) -> String {
    format!(
        "{}Cloning into 'vendor/protobuf'...\nfatal: unable to access 'https://mirror-eu.example.com/protobuf.git/': Could not resolve host: mirror-eu.example.com\n{}",
        header("git submodule update --init"),
        footer(128)
    )
}

fn lint(rng: &mut Rng) -> String {
    format!(
        "{}src/components/Table.tsx\n  {}:{}  warning  'row' is defined but never used  @typescript-eslint/no-unused-vars\n\n✖ 1 problem (0 errors, 1 warning)\nERROR: eslint found problems (max-warnings 0)\n{}",
        header("npm run lint -- --max-warnings 0"),
        10 + rng.below(80),
        5 + rng.below(20),
        footer(1)
    )
}

fn terraform(rng: &mut Rng) -> String {
    format!(
        "{}{}\x1b[31m╷\x1b[0m\n\x1b[31m│\x1b[0m \x1b[1m\x1b[31mError: \x1b[0m\x1b[1mProvider produced inconsistent final plan\x1b[0m\n\x1b[31m│\x1b[0m When expanding the plan for module.vpc.aws_subnet.private[{}] to include new values\n\x1b[31m╵\x1b[0m\n{}",
        header("terraform apply -auto-approve"),
        progress(rng, 200),
        rng.below(3),
        footer(1)
    )
}

fn type_error(rng: &mut Rng) -> String {
    format!(
        "{}{}\n  ● renders the table\n\nTypeError: Cannot read properties of undefined (reading 'map')\n    at Table (/builds/web/frontend/src/components/Table.tsx:{}:21)\n{}",
        header("npm test -- --ci"),
        progress(rng, 50),
        30 + rng.below(9),
        footer(1)
    )
}

/// The 30 nights, deterministic for a seed; `now` is the demo's start.
fn world(seed: &mut Rng, now: DateTime<Utc>, started: Instant) -> World {
    let mut rng = seed.fork();
    let today = now.date_naive();
    let mut pipelines = Vec::new();
    let mut next_pipeline = 90_000;
    let mut next_job = 4_400_000;
    let mut retry = None;
    for back in (0..NIGHTS).rev() {
        let day = today - chrono::Duration::days(back);
        for &(project, _) in PROJECTS {
            let created = day.and_hms_opt(1, 0, 0).map(|t| t.and_utc()).unwrap_or(now)
                + chrono::Duration::minutes(project - 100);
            let updated = created + chrono::Duration::minutes(30 + (rng.below(20) as i64));
            let mut failed = Vec::new();
            let mut job =
                |name: &'static str, allow: bool, reason: &'static str, log: Option<String>| {
                    next_job += 1;
                    Job {
                        id: next_job,
                        name,
                        allow_failure: allow,
                        failure_reason: reason,
                        log,
                    }
                };
            let last = back == 0;
            match project {
                101 if rng.percent(60) || last => failed.push(job(
                    "test 1.10",
                    false,
                    "script_failure",
                    Some(julia_test(&mut rng)),
                )),
                102 if back % 6 == 2 || back == 1 => failed.push(job(
                    "test 1.10",
                    false,
                    "script_failure",
                    Some(unsatisfiable(&mut rng)),
                )),
                103 if back == 9 || back == 4 || last => failed.push(job(
                    "vendor",
                    false,
                    "script_failure",
                    Some(network(&mut rng)),
                )),
                104 if back % 3 == 0 => {
                    failed.push(job("train", false, "script_failure", Some(oom(&mut rng))))
                }
                105 => {
                    if back < 10 {
                        failed.push(job("lint", true, "script_failure", Some(lint(&mut rng))));
                    }
                    if last {
                        failed.push(job(
                            "test",
                            false,
                            "script_failure",
                            Some(type_error(&mut rng)),
                        ));
                    }
                }
                106 if back == 5 => failed.push(job("plan", false, "runner_system_failure", None)),
                _ => {}
            }
            let status = if failed.iter().any(|j| !j.allow_failure) {
                "failed"
            } else {
                "success"
            };
            next_pipeline += 1;
            if project == 103 && last {
                retry = Some((pipelines.len(), started + RETRY_AFTER));
            }
            let id = next_pipeline;
            let mut bridges = Vec::new();
            let mut status = status;
            if project == 106 && (last || back == 2) {
                // The nightly's integration tests run in a child pipeline, and fail there.
                next_pipeline += 1;
                next_job += 1;
                bridges.push((next_job, "integration", next_pipeline));
                next_job += 1;
                let child = Job {
                    id: next_job,
                    name: "apply",
                    allow_failure: false,
                    failure_reason: "script_failure",
                    log: Some(terraform(&mut rng)),
                };
                pipelines.push(Pipeline {
                    project,
                    id: next_pipeline,
                    status: "failed",
                    created: created + chrono::Duration::minutes(5),
                    updated: updated - chrono::Duration::minutes(1),
                    failed: vec![child],
                    source: "parent_pipeline",
                    bridges: Vec::new(),
                });
                // `strategy: depend`: the trigger job and the nightly fail with the child.
                status = "failed";
            }
            pipelines.push(Pipeline {
                project,
                id,
                status,
                created,
                updated,
                failed,
                source: "schedule",
                bridges,
            });
        }
    }
    World { pipelines, retry }
}

pub struct GitlabServer {
    server: Loopback,
    world: Arc<Mutex<World>>,
}

/// The `[gitlab]` settings the demo's source reads with: the six projects, UTC nights, a short
/// poll, and a token variable nobody sets (a real token never goes to the simulator).
pub fn demo_config() -> GitlabConfig {
    GitlabConfig {
        token_env: Some("SYNCSCOPE_DEMO_GITLAB_TOKEN".into()),
        projects: PROJECTS.iter().map(|(id, _)| id.to_string()).collect(),
        timezone: Some("UTC".into()),
        poll_interval_secs: Some(5),
        history_nights: Some(NIGHTS as u32),
        ..GitlabConfig::default()
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl GitlabServer {
    /// Binds 127.0.0.1 on a free port; the server and its API base URL.
    pub fn bind(rng: &mut Rng) -> Result<(GitlabServer, String)> {
        let server = Loopback::bind("GitLab API")?;
        let url = format!("http://127.0.0.1:{}/api/v4", server.port);
        let world = world(rng, Utc::now(), Instant::now());
        Ok((
            GitlabServer {
                server,
                world: Arc::new(Mutex::new(world)),
            },
            url,
        ))
    }

    /// Answers requests until `cancel` fires.
    pub fn serve(self, cancel: &CancellationToken) -> Result<()> {
        let world = self.world.clone();
        self.server.serve(
            cancel,
            |_method, target| {
                let (status, headers, content_type, body) = match world.lock() {
                    Ok(mut w) => route(&mut w, target),
                    Err(_) => (500, Vec::new(), "text/plain", b"poisoned".to_vec()),
                };
                Response {
                    status,
                    headers,
                    content_type,
                    body,
                }
            },
            || {},
        );
        Ok(())
    }
}

type Answer = (u16, Vec<(&'static str, String)>, &'static str, Vec<u8>);

fn not_found(what: &str) -> Answer {
    (
        404,
        Vec::new(),
        "application/json",
        json!({"message": format!("404 {what} Not Found")})
            .to_string()
            .into_bytes(),
    )
}

fn route(w: &mut World, target: &str) -> Answer {
    if let Some((i, at)) = w.retry {
        if Instant::now() >= at {
            // Someone pressed "Retry": the network was back.
            if let Some(p) = w.pipelines.get_mut(i) {
                p.status = "success";
                p.failed.clear();
                p.updated = Utc::now();
            }
            w.retry = None;
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let q: BTreeMap<&str, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.replace("%3A", ":")))
        .collect();
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let parts: Vec<&str> = path.trim_start_matches("/api/v4/").split('/').collect();
    let project = |s: &str| {
        PROJECTS
            .iter()
            .find(|(id, p)| id.to_string() == s || p.replace('/', "%2F") == s)
            .copied()
    };
    match parts.as_slice() {
        ["projects", p] => match project(p) {
            Some((id, path)) => json_answer(
                json!({"id": id, "name": path.rsplit('/').next(), "path_with_namespace": path, "web_url": format!("https://{HOST}/{path}"), "default_branch": "main", "archived": false}),
                None,
            ),
            None => not_found("Project"),
        },
        ["projects", p, "pipelines"] => {
            let Some((id, path)) = project(p) else {
                return not_found("Project");
            };
            let after = q
                .get("updated_after")
                .and_then(|a| DateTime::parse_from_rfc3339(a).ok());
            let mut rows: Vec<&Pipeline> = w
                .pipelines
                .iter()
                .filter(|pl| pl.project == id && after.is_none_or(|a| pl.updated >= a))
                // `source=` filters exactly: child pipelines are not nightlies.
                .filter(|pl| q.get("source").is_none_or(|s| s == pl.source))
                .collect();
            rows.sort_by_key(|p| std::cmp::Reverse(p.updated));
            let rows: Vec<Value> = rows
                .iter()
                .map(|pl| json!({"id": pl.id, "iid": pl.id - 89_000, "project_id": id, "sha": format!("{:040x}", pl.id * 7919), "ref": "main", "status": pl.status, "source": pl.source, "created_at": iso(pl.created), "updated_at": iso(pl.updated), "web_url": format!("https://{HOST}/{path}/-/pipelines/{}", pl.id)}))
                .collect();
            page_of(rows, page, per_page)
        }
        ["projects", p, "pipelines", pid, "jobs"] => {
            let Some((id, path)) = project(p) else {
                return not_found("Project");
            };
            let Some(pl) = w
                .pipelines
                .iter()
                .find(|pl| pl.project == id && pl.id.to_string() == *pid)
            else {
                return not_found("Pipeline");
            };
            let rows: Vec<Value> = pl
                .failed
                .iter()
                .map(|j| json!({"id": j.id, "name": j.name, "stage": "test", "status": "failed", "allow_failure": j.allow_failure, "failure_reason": j.failure_reason, "created_at": iso(pl.created), "started_at": iso(pl.created), "finished_at": iso(pl.updated), "duration": 1432.7, "web_url": format!("https://{HOST}/{path}/-/jobs/{}", j.id), "pipeline": {"id": pl.id, "project_id": id, "status": pl.status}, "user": {"username": "nightly-dev"}}))
                .collect();
            page_of(rows, page, per_page)
        }
        ["projects", p, "pipelines", pid, "bridges"] => {
            let Some((id, path)) = project(p) else {
                return not_found("Project");
            };
            let Some(pl) = w
                .pipelines
                .iter()
                .find(|pl| pl.project == id && pl.id.to_string() == *pid)
            else {
                return not_found("Pipeline");
            };
            let rows: Vec<Value> = pl
                .bridges
                .iter()
                .map(|(jid, name, child)| {
                    let down = w.pipelines.iter().find(|c| c.project == id && c.id == *child);
                    json!({"id": jid, "name": name, "stage": "test", "status": down.map_or("failed", |c| c.status),
                        "allow_failure": false, "failure_reason": down.filter(|c| c.status == "failed").map(|_| "script_failure"),
                        "finished_at": iso(pl.updated), "web_url": format!("https://{HOST}/{path}/-/jobs/{jid}"),
                        "downstream_pipeline": down.map(|c| json!({"id": c.id, "project_id": id, "sha": format!("{:040x}", c.id * 7919), "ref": "main",
                            "status": c.status, "created_at": iso(c.created), "updated_at": iso(c.updated),
                            "web_url": format!("https://{HOST}/{path}/-/pipelines/{}", c.id)}))})
                })
                .collect();
            page_of(rows, page, per_page)
        }
        ["projects", p, "jobs", jid, "trace"] => {
            let Some((id, _)) = project(p) else {
                return not_found("Project");
            };
            let log = w
                .pipelines
                .iter()
                .filter(|pl| pl.project == id)
                .flat_map(|pl| pl.failed.iter())
                .find(|j| j.id.to_string() == *jid)
                .and_then(|j| j.log.clone());
            match log {
                Some(l) => (200, Vec::new(), "text/plain", l.into_bytes()),
                None => not_found(""),
            }
        }
        _ => not_found("Route"),
    }
}

fn json_answer(v: Value, headers: Option<Vec<(&'static str, String)>>) -> Answer {
    (
        200,
        headers.unwrap_or_default(),
        "application/json",
        v.to_string().into_bytes(),
    )
}

fn page_of(rows: Vec<Value>, page: usize, per_page: usize) -> Answer {
    let start = (page - 1) * per_page;
    let more = rows.len() > start + per_page;
    let slice: Vec<Value> = rows.into_iter().skip(start).take(per_page).collect();
    json_answer(
        Value::Array(slice),
        Some(vec![
            ("X-Page", page.to_string()),
            ("X-Per-Page", per_page.to_string()),
            (
                "X-Next-Page",
                if more {
                    (page + 1).to_string()
                } else {
                    String::new()
                },
            ),
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_world_has_its_story() {
        let w = world(&mut Rng::new(1), Utc::now(), Instant::now());
        let nightly: Vec<&Pipeline> = w
            .pipelines
            .iter()
            .filter(|p| p.source == "schedule")
            .collect();
        assert_eq!(nightly.len(), PROJECTS.len() * NIGHTS as usize);
        assert_eq!(w.pipelines.len(), nightly.len() + 2, "two child pipelines");
        let last_night: Vec<&Pipeline> =
            nightly.iter().rev().take(PROJECTS.len()).copied().collect();
        assert!(last_night
            .iter()
            .any(|p| p.project == 106 && p.status == "failed" && !p.bridges.is_empty()));
        assert!(last_night
            .iter()
            .any(|p| p.project == 105 && p.status == "failed"));
        assert!(w.retry.is_some());
        assert!(w
            .pipelines
            .iter()
            .any(|p| p.failed.iter().any(|j| j.log.is_none())));
        let mut w = w;
        let (s, h, _, body) = route(
            &mut w,
            "/api/v4/projects/101/pipelines?source=schedule&per_page=20&page=2",
        );
        assert_eq!(s, 200);
        assert!(h.iter().any(|(k, v)| *k == "X-Next-Page" && v.is_empty()));
        let rows: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(rows.len(), 10);
    }
}
