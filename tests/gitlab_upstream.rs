//! The `gitlab` source against a stand-in that answers where GitLab's own code differs from the
//! simple model (its `lib/api/ci/` and `app/finders/ci/` and REST docs): trigger jobs only under
//! `/bridges`, child pipelines left out of the nightly listing (`source=parent_pipeline`),
//! multi-project downstream pipelines, `manual` pipelines, an erased log answered `200` with an
//! empty body, runner timestamps, `updated_after` as `>=` with millisecond times, `403` for a
//! project with CI/CD disabled, and `301` to another host. Each request is logged with whether
//! it carried the token.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::Scratch;
use serde_json::{json, Value};

const TOKEN: &str = "glpat-upstream-SECRET-42aa";

#[derive(Clone, Debug)]
enum Log {
    Text(String),
    /// `200` with an empty body; the job has `erased_at`.
    Erased,
    /// `200` with an empty body; no trace artifact left (expired).
    Expired,
    /// `200` with an empty body; the trace artifact is empty too: the job printed nothing.
    Empty,
    /// An error status, every time.
    Status(u16),
    /// `200` with an empty body although the job has a trace of some size (not served now).
    Unserved,
}

#[derive(Clone, Debug)]
struct Job {
    id: i64,
    name: &'static str,
    allow_failure: bool,
    log: Log,
}

#[derive(Clone, Debug)]
struct Bridge {
    id: i64,
    name: &'static str,
    status: &'static str,
    allow_failure: bool,
    /// (project id, pipeline id)
    downstream: Option<(i64, i64)>,
}

#[derive(Clone, Debug)]
struct Pl {
    project: i64,
    id: i64,
    status: &'static str,
    source: &'static str,
    user: &'static str,
    created: String,
    updated: String,
    failed_jobs: Vec<Job>,
    bridges: Vec<Bridge>,
    yaml_errors: Option<&'static str>,
    /// The pipeline schedule that started it.
    schedule: Option<i64>,
}

type Hook = Box<dyn FnMut(&str, &mut World) + Send>;

#[derive(Default)]
struct World {
    /// id -> (path, CI/CD disabled)
    projects: BTreeMap<i64, (&'static str, bool)>,
    pipelines: Vec<Pl>,
    /// (request target, carried the token)
    requests: Vec<(String, bool)>,
    /// Path -> Location answered with a 301.
    redirects: BTreeMap<String, String>,
    /// A `Link: rel="next"` sent with every pipelines listing of this project.
    link_next: Option<(i64, String)>,
    hook: Option<Hook>,
    /// Pipeline schedules: (project, id, description, cron).
    schedules: Vec<(i64, i64, &'static str, &'static str)>,
    /// Milliseconds each log takes to send (a slow instance).
    trace_delay_ms: u64,
}

struct Server {
    world: Arc<Mutex<World>>,
    url: String,
    host: String,
}

fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// 02:00 UTC `days` ago, plus `minutes`.
fn at(days: i64, minutes: i64) -> chrono::DateTime<chrono::Utc> {
    let today = chrono::Utc::now().date_naive();
    (today - chrono::Duration::days(days))
        .and_hms_opt(2, 0, 0)
        .unwrap()
        .and_utc()
        + chrono::Duration::minutes(minutes)
}

fn pl(project: i64, id: i64, days: i64, status: &'static str, jobs: Vec<Job>) -> Pl {
    Pl {
        project,
        id,
        status,
        source: "schedule",
        user: "nightly-dev",
        created: iso(at(days, 0)),
        updated: iso(at(days, 40)),
        failed_jobs: jobs,
        bridges: Vec::new(),
        yaml_errors: None,
        schedule: None,
    }
}

fn job(id: i64, name: &'static str, log: Log) -> Job {
    Job {
        id,
        name,
        allow_failure: false,
        log,
    }
}

fn julia_failure(n: i64) -> String {
    format!(
        "\x1b[0KRunning with gitlab-runner 17.5.0 (8f2e9c1d)\nsection_start:1740895206:step_script\r\x1b[0K$ julia --project -e 'using Pkg; Pkg.test()'\nTest Summary: | Pass  Fail  Total\nTest Failed at /builds/research/GLMModels.jl/test/runtests.jl:{}\n  Expression: coef(m) ≈ [1.0, 2.0]\n   Evaluated: [1.0, 2.{n}] ≈ [1.0, 2.0]\nStacktrace:\n [1] top-level scope\nERROR: LoadError: Some tests did not pass: 41 passed, 1 failed, 0 errored, 0 broken.\nsection_end:1740896587:step_script\r\x1b[0K\n\x1b[31;1mERROR: Job failed: exit code 1\n\x1b[0;m\n",
        40 + n
    )
}

fn disk_full(n: i64) -> String {
    format!("section_start:1:step_script\r\x1b[0K$ make data\nwriting shard {n}\nFATAL: could not write block {} of temporary file: No space left on device\nsection_end:2:step_script\r\x1b[0K\nERROR: Job failed: exit code 1\n", 8000 + n)
}

/// Each line prefixed as a runner with `FF_TIMESTAMPS` writes it.
fn stamped(log: &str) -> String {
    log.split_inclusive('\n')
        .enumerate()
        .map(|(i, l)| {
            let stream = if i % 4 == 3 { "01E" } else { "00O" };
            format!(
                "2026-12-01T02:10:{:02}.{:06}Z {stream} {l}",
                i % 60,
                1000 + i
            )
        })
        .collect()
}

impl Server {
    fn start(world: World) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = listener.local_addr().unwrap().to_string();
        let world = Arc::new(Mutex::new(world));
        let w = world.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let w = w.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &w);
                });
            }
        });
        Server {
            world,
            url: format!("http://{host}/api/v4"),
            host,
        }
    }

    fn requests(&self) -> Vec<(String, bool)> {
        self.world.lock().unwrap().requests.clone()
    }

    fn targets(&self) -> Vec<String> {
        self.requests().into_iter().map(|(t, _)| t).collect()
    }

    fn clear(&self) {
        self.world.lock().unwrap().requests.clear();
    }
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn handle(stream: std::net::TcpStream, world: &Mutex<World>) -> std::io::Result<()> {
    let (target, token) = common::request_target_and_token(&stream)?;
    let delay = world.lock().unwrap().trace_delay_ms;
    if target.ends_with("/trace") && delay > 0 {
        std::thread::sleep(std::time::Duration::from_millis(delay));
    }
    let (status, headers, body) = {
        let mut w = world.lock().unwrap();
        w.requests.push((target.clone(), token.is_some()));
        if let Some(mut hook) = w.hook.take() {
            hook(&target, &mut w);
            w.hook = Some(hook);
        }
        answer(&target, token.as_deref(), &w)
    };
    let mut out = stream;
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&body)?;
    let mut rest = Vec::new();
    let _ = out.read_to_end(&mut rest);
    Ok(())
}

fn reply(v: Value) -> Reply {
    (
        200,
        vec![("Content-Type".into(), "application/json".into())],
        v.to_string().into_bytes(),
    )
}

fn error(status: u16, message: &str) -> Reply {
    (
        status,
        vec![("Content-Type".into(), "application/json".into())],
        json!({ "message": message }).to_string().into_bytes(),
    )
}

fn query(target: &str) -> (String, BTreeMap<String, String>) {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let mut m = BTreeMap::new();
    for kv in q.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        m.insert(
            k.replace("%5B%5D", "[]"),
            v.replace("%3A", ":")
                .replace("%2F", "/")
                .replace("%2B", "+"),
        );
    }
    (path.to_string(), m)
}

fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .timestamp_millis()
}

fn pipeline_json(w: &World, p: &Pl) -> Value {
    let path = w.projects[&p.project].0;
    json!({"id": p.id, "iid": p.id - 900, "project_id": p.project, "sha": "8f2e9c1d4b7a", "ref": "main",
           "status": p.status, "source": p.source, "created_at": p.created, "updated_at": p.updated,
           "web_url": format!("https://gitlab.example.com/{path}/-/pipelines/{}", p.id)})
}

fn find_job<'a>(w: &'a World, project: i64, id: &str) -> Option<(&'a Pl, &'a Job)> {
    w.pipelines
        .iter()
        .filter(|p| p.project == project)
        .find_map(|p| {
            p.failed_jobs
                .iter()
                .find(|j| j.id.to_string() == id)
                .map(|j| (p, j))
        })
}

/// As GitLab answers: `lib/api/ci/pipelines.rb`, `jobs.rb`, `app/finders/ci/pipelines_finder.rb`.
fn answer(target: &str, token: Option<&str>, w: &World) -> Reply {
    let (path, q) = query(target);
    if let Some(to) = w.redirects.get(&path) {
        return (301, vec![("Location".into(), to.clone())], Vec::new());
    }
    if token != Some(TOKEN) {
        return error(401, "401 Unauthorized");
    }
    let parts: Vec<&str> = path.trim_start_matches("/api/v4/").split('/').collect();
    let project = |key: &str| -> Option<i64> {
        let key = key.replace("%2F", "/");
        w.projects
            .iter()
            .find(|(id, (p, _))| id.to_string() == key || *p == key)
            .map(|(id, _)| *id)
    };
    let Some(pid) = parts.get(1).and_then(|p| project(p)) else {
        return error(404, "404 Project Not Found");
    };
    let (ppath, disabled) = w.projects[&pid];
    // Builds disabled: `read_pipeline` / `read_build` are prevented.
    if disabled && parts.len() > 2 {
        return error(403, "403 Forbidden");
    }
    let pipeline = |id: &str| {
        w.pipelines
            .iter()
            .find(|p| p.project == pid && p.id.to_string() == id)
    };
    match parts.as_slice() {
        ["projects", _] => reply(json!({
            "id": pid, "path_with_namespace": ppath, "web_url": format!("https://gitlab.example.com/{ppath}"),
            "archived": false, "jobs_enabled": !disabled,
            "builds_access_level": if disabled { "disabled" } else { "enabled" }})),
        ["projects", _, "pipelines"] => {
            let after = q.get("updated_after").map(|a| ms(a));
            let rows: Vec<Value> = w
                .pipelines
                .iter()
                .filter(|p| p.project == pid)
                // `source` filters exactly: child pipelines are `parent_pipeline`,
                // multi-project ones `pipeline`.
                .filter(|p| q.get("source").is_none_or(|s| s == p.source))
                .filter(|p| q.get("username").is_none_or(|u| u == p.user))
                // `updated_at >= updated_after` (UpdatedAtFilterable#updated_after).
                .filter(|p| after.is_none_or(|a| ms(&p.updated) >= a))
                .map(|p| pipeline_json(w, p))
                .collect();
            let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
            if let Some((lp, link)) = &w.link_next {
                if *lp == pid {
                    headers.push(("Link".into(), format!("<{link}>; rel=\"next\"")));
                }
            }
            (200, headers, Value::Array(rows).to_string().into_bytes())
        }
        ["projects", _, "pipeline_schedules"] => reply(Value::Array(
            w.schedules
                .iter()
                .filter(|(p, ..)| *p == pid)
                .map(|(_, id, d, cron)| json!({"id": id, "description": d, "ref": "main", "cron": cron, "cron_timezone": "UTC", "active": true, "owner": {"username": "alice"}}))
                .collect(),
        )),
        // Newest first by id (`sort=desc`); no `updated_after` on older GitLab versions.
        ["projects", _, "pipeline_schedules", sid, "pipelines"] => {
            let mut rows: Vec<&Pl> = w
                .pipelines
                .iter()
                .filter(|p| p.project == pid && p.schedule.map(|s| s.to_string()).as_deref() == Some(*sid))
                .collect();
            rows.sort_by_key(|p| std::cmp::Reverse(p.id));
            reply(Value::Array(rows.into_iter().map(|p| pipeline_json(w, p)).collect()))
        }
        ["projects", _, "pipelines", id] => match pipeline(id) {
            Some(p) => {
                let mut v = pipeline_json(w, p);
                v["yaml_errors"] = json!(p.yaml_errors);
                v["detailed_status"] = json!({"group": p.status, "label": p.status, "text": p.status});
                reply(v)
            }
            None => error(404, "404 Not found"),
        },
        ["projects", _, "pipelines", id, "jobs"] => match pipeline(id) {
            // Trigger jobs are never in this list.
            Some(p) => reply(Value::Array(
                p.failed_jobs
                    .iter()
                    .map(|j| json!({"id": j.id, "name": j.name, "stage": "test", "status": "failed",
                        "allow_failure": j.allow_failure, "failure_reason": "script_failure",
                        "finished_at": p.updated,
                        "web_url": format!("https://gitlab.example.com/{ppath}/-/jobs/{}", j.id)}))
                    .collect(),
            )),
            None => error(404, "404 Not found"),
        },
        ["projects", _, "pipelines", id, "bridges"] => match pipeline(id) {
            Some(p) => reply(Value::Array(
                p.bridges
                    .iter()
                    .map(|b| {
                        let down = b.downstream.and_then(|(dp, did)| {
                            w.pipelines
                                .iter()
                                .find(|x| x.project == dp && x.id == did)
                                .map(|x| pipeline_json(w, x))
                        });
                        json!({"id": b.id, "name": b.name, "stage": "trigger", "status": b.status,
                            "allow_failure": b.allow_failure,
                            "failure_reason": if b.status == "failed" { json!("downstream_pipeline_creation_failed") } else { Value::Null },
                            "web_url": format!("https://gitlab.example.com/{ppath}/-/jobs/{}", b.id),
                            "downstream_pipeline": down})
                    })
                    .collect(),
            )),
            None => error(404, "404 Not found"),
        },
        ["projects", _, "jobs", id] => match find_job(w, pid, id) {
            Some((_, j)) => {
                let (erased, artifacts) = match &j.log {
                    Log::Erased => (json!("2026-11-30T08:00:00.000Z"), json!([])),
                    Log::Expired => (Value::Null, json!([])),
                    Log::Empty => (Value::Null, json!([{"file_type": "trace", "size": 0}])),
                    Log::Unserved => (Value::Null, json!([{"file_type": "trace", "size": 4096}])),
                    _ => (Value::Null, json!([{"file_type": "trace", "size": 1234}])),
                };
                reply(json!({"id": j.id, "name": j.name, "status": "failed", "erased_at": erased, "artifacts": artifacts}))
            }
            None => error(404, "404 Not found"),
        },
        ["projects", _, "jobs", id, "trace"] => match find_job(w, pid, id) {
            // `build.trace.raw || ''`: a log that is gone is an empty 200.
            Some((_, j)) => match &j.log {
                Log::Text(t) => (200, vec![("Content-Type".into(), "text/plain".into())], t.clone().into_bytes()),
                Log::Status(s) => error(*s, "403 Forbidden"),
                _ => (200, vec![("Content-Type".into(), "text/plain".into())], Vec::new()),
            },
            None => error(404, "404 Not found"),
        },
        _ => error(404, "404 Route Not Found"),
    }
}

fn config(s: &Scratch, body: &str) -> std::path::PathBuf {
    let path = s.path("syncscope.toml");
    std::fs::write(
        &path,
        format!("[gitlab]\ntimezone = \"UTC\"\nmax_in_flight = 2\n{body}"),
    )
    .unwrap();
    path
}

fn ingest(s: &Scratch, url: &str, cfg: &std::path::Path, token: &str) -> std::process::Output {
    s.cmd()
        .arg("--config")
        .arg(cfg)
        .args(["ingest", "--once", "--source"])
        .arg(format!("gitlab:{url}"))
        .env("SYNCSCOPE_GITLAB_TOKEN", token)
        .output()
        .expect("run ingest")
}

fn failures(s: &Scratch, args: &[&str]) -> Value {
    let mut all = vec!["failures", "--format", "json"];
    all.extend_from_slice(args);
    let out = s.cmd().env("TZ", "UTC").args(&all).output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn night(days: i64) -> String {
    (chrono::Utc::now().date_naive() - chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

fn pipeline_of<'a>(v: &'a Value, project: &str, id: i64) -> &'a Value {
    v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["project"] == project && p["id"] == id)
        .unwrap_or_else(|| panic!("{project} #{id} not in {v:#}"))
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn a_redirect_to_another_host_never_gets_the_token() {
    let s = Scratch::new();
    // The other host logs what reached it.
    let other = Server::start(World::default());
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.projects.insert(534, ("tools/build", false));
    w.projects.insert(535, ("data/etl", false));
    w.pipelines.push(pl(533, 1000, 1, "success", vec![]));
    w.pipelines.push(pl(535, 3000, 1, "success", vec![]));
    let server = Server::start(w);
    {
        let mut w = server.world.lock().unwrap();
        // Moved to another host.
        w.redirects.insert(
            "/api/v4/projects/old%2Fmoved".into(),
            format!("http://{}/api/v4/projects/533", other.host),
        );
        // Renamed on the same host: followed, with the token.
        w.redirects.insert(
            "/api/v4/projects/research%2Fold-name".into(),
            format!("http://{}/api/v4/projects/533", server.host),
        );
        // A next page on another host.
        w.link_next = Some((
            535,
            format!("http://{}/api/v4/projects/535/pipelines?page=2", other.host),
        ));
    }
    let cfg = config(
        &s,
        "projects = [\"old/moved\", \"research/old-name\", \"data/etl\"]\n",
    );
    let out = ingest(&s, &server.url, &cfg, TOKEN);
    let err = stderr(&out);
    assert!(
        other.requests().is_empty(),
        "the other host was asked (token sent: {:?})",
        other.requests()
    );
    assert!(
        err.contains("old/moved") && err.contains("HTTP 301 redirect points to another origin"),
        "{err}"
    );
    assert!(
        err.contains("the next page link points to another origin"),
        "{err}"
    );
    assert!(!err.contains(TOKEN));
    // The same-host redirect was followed with the token, and its project read.
    let reqs = server.requests();
    assert!(
        reqs.iter()
            .any(|(t, tok)| t == "/api/v4/projects/533" && *tok),
        "{reqs:#?}"
    );
    assert_eq!(out.status.code(), Some(0), "one project was read: {err}");
    let v = failures(&s, &["--history"]);
    let names: Vec<&str> = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["research/GLMModels.jl"], "{v:#}");
}

#[test]
fn failures_in_child_and_multi_project_pipelines_belong_to_the_nightly() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.projects.insert(534, ("tools/build", false));
    w.projects.insert(535, ("data/etl", false));
    w.projects.insert(540, ("infra/deploy", false));
    // 533: the nightly fails through `trigger: strategy: depend` on a child pipeline.
    let mut parent = pl(533, 1000, 1, "failed", vec![]);
    parent.bridges.push(Bridge {
        id: 5100,
        name: "trigger-tests",
        status: "failed",
        allow_failure: false,
        downstream: Some((533, 1001)),
    });
    w.pipelines.push(parent);
    let mut child = pl(
        533,
        1001,
        1,
        "failed",
        vec![job(5101, "test 1.10", Log::Text(julia_failure(1)))],
    );
    child.source = "parent_pipeline";
    // The child's own child fails too (two levels).
    child.bridges.push(Bridge {
        id: 5102,
        name: "nested",
        status: "failed",
        allow_failure: false,
        downstream: Some((533, 1002)),
    });
    w.pipelines.push(child);
    let mut grandchild = pl(
        533,
        1002,
        1,
        "failed",
        vec![job(5103, "docs", Log::Text(disk_full(1)))],
    );
    grandchild.source = "parent_pipeline";
    w.pipelines.push(grandchild);
    // 534: passes, while the multi-project pipeline it triggered (no `strategy: depend`) failed.
    let mut p534 = pl(534, 2000, 1, "success", vec![]);
    p534.bridges.push(Bridge {
        id: 6100,
        name: "deploy",
        status: "success",
        allow_failure: false,
        downstream: Some((540, 4000)),
    });
    // A trigger that failed without creating a pipeline.
    p534.bridges.push(Bridge {
        id: 6101,
        name: "notify",
        status: "failed",
        allow_failure: true,
        downstream: None,
    });
    w.pipelines.push(p534);
    let mut multi = pl(
        540,
        4000,
        1,
        "failed",
        vec![job(8100, "apply", Log::Text(disk_full(2)))],
    );
    multi.source = "pipeline";
    w.pipelines.push(multi);
    // 535: fails before any job runs.
    let mut yaml = pl(535, 3000, 1, "failed", vec![]);
    yaml.yaml_errors = Some("jobs:test config contains unknown keys: scrip");
    w.pipelines.push(yaml);
    let server = Server::start(w);
    let cfg = config(
        &s,
        "projects = [\"research/GLMModels.jl\", \"tools/build\", \"data/etl\"]\n",
    );
    let out = ingest(&s, &server.url, &cfg, TOKEN);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reqs = server.targets();
    // R = 3 resolved + 3 listings; per finished nightly its jobs and bridges (3 x 2); per
    // failed downstream pipeline its jobs and bridges (3 x 2); the zero-job pipeline's detail
    // (and the child-less downstream ones none); 3 logs.
    assert_eq!(reqs.len(), 3 + 3 + 6 + 6 + 1 + 3, "{reqs:#?}");

    let v = failures(&s, &[]);
    assert_eq!(v["night"], night(1));
    let glm = pipeline_of(&v, "research/GLMModels.jl", 1000);
    assert_eq!(glm["cell"], "failed");
    let jobs = glm["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{glm:#}");
    let test = jobs.iter().find(|j| j["name"] == "test 1.10").unwrap();
    assert_eq!(test["pattern_name"], "Julia: test failed");
    assert_eq!(test["chain"], "trigger-tests -> child pipeline #1001");
    let docs = jobs.iter().find(|j| j["name"] == "docs").unwrap();
    assert_eq!(
        docs["chain"],
        "trigger-tests -> child pipeline #1001 -> nested -> child pipeline #1002"
    );
    assert!(docs["pattern_identity"]
        .as_str()
        .unwrap()
        .contains("No space left on device"));
    // The child pipelines are not nightlies of their own.
    assert!(v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["id"] != 1001 && p["id"] != 1002));

    // GitLab says 534 passed; its downstream failed, so the nightly did.
    let build = pipeline_of(&v, "tools/build", 2000);
    assert_eq!(build["status"], "success");
    assert_eq!(build["cell"], "failed");
    assert_eq!(build["downstream_failed"], true);
    let apply = build["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "apply")
        .unwrap();
    assert_eq!(apply["chain"], "deploy -> infra/deploy pipeline #4000");
    assert_eq!(
        apply["pattern_id"], docs["pattern_id"],
        "the same failure in two projects is one pattern"
    );
    let notify = build["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "notify")
        .unwrap();
    assert_eq!(notify["allow_failure"], true);
    assert_eq!(notify["log_state"], "none");
    assert!(notify["pattern_identity"]
        .as_str()
        .unwrap()
        .contains("downstream_pipeline_creation_failed"));

    let etl = pipeline_of(&v, "data/etl", 3000);
    let only = &etl["jobs"][0];
    assert_eq!(only["pattern_name"], "pipeline configuration error");
    assert_eq!(
        only["pattern_identity"],
        "jobs:test config contains unknown keys: scrip"
    );
    assert_eq!(only["log_state"], "none");

    let table = String::from_utf8_lossy(
        &s.cmd()
            .env("TZ", "UTC")
            .args(["failures"])
            .output()
            .unwrap()
            .stdout,
    )
    .to_string();
    assert!(
        table.contains("via trigger-tests -> child pipeline #1001"),
        "{table}"
    );
    assert!(table.contains("a downstream pipeline failed"), "{table}");
    let (_, h) = (0, failures(&s, &["--history"]));
    let strip = |name: &str| {
        h["projects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["project"] == name)
            .unwrap()["strip"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(strip("tools/build").ends_with('F'), "{h:#}");

    // Its pipeline event is an error, not "passed"; the downstream job's event names the way.
    let errs = s.events_json(&[
        "--source",
        "gitlab",
        "--severity",
        "error",
        "--grep",
        "tools/build",
    ]);
    assert!(
        errs.iter().any(|e| e["summary"]
            .as_str()
            .unwrap()
            .contains("failed in a downstream pipeline (GitLab says success)")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e["summary"].as_str().unwrap().contains(
            "job apply failed in pipeline #2000 (via deploy -> infra/deploy pipeline #4000)"
        )),
        "{errs:#?}"
    );

    // Nothing new: one listing per project, nothing downstream asked again.
    server.clear();
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    let reqs = server.targets();
    assert_eq!(reqs.len(), 3, "{reqs:#?}");
}

#[test]
fn manual_pipelines_and_unreadable_logs_do_not_pin_the_window() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.pipelines.push(pl(533, 1000, 5, "manual", vec![]));
    w.pipelines.push(pl(
        533,
        1001,
        4,
        "failed",
        vec![job(5001, "test", Log::Status(403))],
    ));
    w.pipelines.push(pl(533, 1002, 1, "success", vec![]));
    let newest = w.pipelines[2].updated.clone();
    let server = Server::start(w);
    let cfg = config(&s, "projects = [\"533\"]\n");
    let out = ingest(&s, &server.url, &cfg, TOKEN);
    let err = stderr(&out);
    assert!(err.contains("job 5001") && err.contains("403"), "{err}");
    let v = failures(&s, &["--night", &night(4)]);
    let j = &pipeline_of(&v, "research/GLMModels.jl", 1001)["jobs"][0];
    assert_eq!(j["log_state"], "unreadable");
    assert_eq!(
        j["pattern_identity"],
        "no log; failure_reason script_failure"
    );
    // Next polls: the window is past all three; the log is not asked again.
    for _ in 0..2 {
        server.clear();
        let out = ingest(&s, &server.url, &cfg, TOKEN);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let reqs = server.targets();
        assert_eq!(reqs.len(), 1, "{reqs:#?}");
        let want = newest.replace(':', "%3A");
        assert!(
            reqs[0].contains(&format!("updated_after={want}")),
            "{} vs {want}",
            reqs[0]
        );
    }
    // The manual pipeline is played and fails: its `updated_at` moves, it is listed again.
    {
        let mut w = server.world.lock().unwrap();
        let m = w.pipelines.iter_mut().find(|p| p.id == 1000).unwrap();
        m.status = "failed";
        m.updated = iso(chrono::Utc::now() - chrono::Duration::minutes(1));
        m.failed_jobs
            .push(job(5000, "deploy", Log::Text(disk_full(3))));
    }
    server.clear();
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    let v = failures(&s, &["--night", &night(5)]);
    assert_eq!(
        pipeline_of(&v, "research/GLMModels.jl", 1000)["jobs"][0]["log_state"],
        "fetched"
    );
}

#[test]
fn erased_expired_and_empty_logs_are_told_apart() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.pipelines.push(pl(
        533,
        1000,
        1,
        "failed",
        vec![
            job(5000, "erased", Log::Erased),
            job(5001, "expired", Log::Expired),
            job(5002, "silent", Log::Empty),
        ],
    ));
    let server = Server::start(w);
    let cfg = config(&s, "projects = [\"533\"]\n");
    let out = ingest(&s, &server.url, &cfg, TOKEN);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = failures(&s, &[]);
    let jobs = pipeline_of(&v, "research/GLMModels.jl", 1000)["jobs"]
        .as_array()
        .unwrap()
        .clone();
    let by = |n: &str| jobs.iter().find(|j| j["name"] == n).unwrap().clone();
    assert_eq!(by("erased")["log_state"], "erased");
    assert_eq!(
        by("erased")["pattern_identity"],
        "no log; failure_reason script_failure"
    );
    assert_eq!(by("expired")["log_state"], "erased");
    assert_eq!(by("silent")["log_state"], "empty");
    assert_eq!(
        by("silent")["pattern_identity"],
        "empty log; failure_reason script_failure"
    );
    // One trace and one job detail each; never again.
    let reqs = server.targets();
    assert_eq!(reqs.iter().filter(|r| r.ends_with("/trace")).count(), 3);
    assert_eq!(
        reqs.iter()
            .filter(|r| r.contains("/jobs/50") && !r.ends_with("/trace"))
            .count(),
        3
    );
}

#[test]
fn runner_timestamps_give_the_same_pattern() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.pipelines.push(pl(
        533,
        1000,
        2,
        "failed",
        vec![job(5000, "test", Log::Text(julia_failure(1)))],
    ));
    w.pipelines.push(pl(
        533,
        1001,
        1,
        "failed",
        vec![job(5001, "test", Log::Text(stamped(&julia_failure(2))))],
    ));
    w.pipelines.push(pl(
        533,
        1002,
        1,
        "failed",
        vec![job(5002, "data", Log::Text(stamped(&disk_full(4))))],
    ));
    w.pipelines.push(pl(
        533,
        1003,
        2,
        "failed",
        vec![job(5003, "data", Log::Text(disk_full(5)))],
    ));
    let server = Server::start(w);
    let cfg = config(&s, "projects = [\"533\"]\n");
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    let pats = failures(&s, &["--patterns"]);
    let pats = pats.as_array().unwrap();
    assert_eq!(pats.len(), 2, "{pats:#?}");
    for p in pats {
        assert_eq!(p["nights_14"], 2, "{p:#}");
        assert_eq!(p["is_new"], false);
        assert!(!p["identity"].as_str().unwrap().contains("<time>"), "{p:#}");
    }
    assert_eq!(
        pats.iter()
            .filter(|p| p["name"] == "Julia: test failed")
            .count(),
        1
    );
    let v = failures(&s, &[]);
    let j = &pipeline_of(&v, "research/GLMModels.jl", 1001)["jobs"][0];
    assert!(
        j["tail"]
            .as_str()
            .unwrap()
            .ends_with("ERROR: Job failed: exit code 1"),
        "{j:#}"
    );
    assert_eq!(j["section"], "step_script");
}

#[test]
fn a_pipeline_updated_between_two_listings_is_not_lost() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.pipelines.push(pl(533, 1000, 3, "success", vec![]));
    let mut bot = pl(533, 1001, 3, "success", vec![]);
    bot.source = "push";
    w.pipelines.push(bot);
    let server = Server::start(w);
    let cfg = config(
        &s,
        "projects = [\"533\"]\npipeline_sources = [\"schedule\"]\nusernames = [\"nightly-dev\"]\n",
    );
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    // Between the schedule listing and the username listing of the next poll, the scheduled
    // pipeline 1000 is retried and fails (updated now), and a push pipeline of the bot user
    // ends a moment later.
    server.world.lock().unwrap().hook = Some(Box::new(|target: &str, w: &mut World| {
        if !target.contains("username=") || w.pipelines.iter().any(|p| p.id == 1002) {
            return;
        }
        let now = chrono::Utc::now();
        let x = w.pipelines.iter_mut().find(|p| p.id == 1000).unwrap();
        x.status = "failed";
        x.updated = iso(now - chrono::Duration::milliseconds(1500));
        x.failed_jobs
            .push(job(5000, "test", Log::Text(julia_failure(3))));
        let mut y = pl(533, 1002, 0, "success", vec![]);
        y.source = "push";
        y.updated = iso(now);
        w.pipelines.push(y);
    }));
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    server.world.lock().unwrap().hook = None;
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    let v = failures(&s, &["--night", &night(3)]);
    let x = pipeline_of(&v, "research/GLMModels.jl", 1000);
    assert_eq!(x["cell"], "failed", "{v:#}");
    assert_eq!(x["jobs"][0]["pattern_name"], "Julia: test failed");
}

#[test]
fn a_project_with_ci_disabled_is_said_once_and_left_out() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.projects.insert(536, ("docs/handbook", true));
    w.pipelines.push(pl(533, 1000, 1, "success", vec![]));
    let server = Server::start(w);
    let cfg = config(&s, "projects = [\"533\", \"docs/handbook\"]\n");
    let out = ingest(&s, &server.url, &cfg, TOKEN);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("docs/handbook") && err.contains("CI/CD is disabled"),
        "{err}"
    );
    assert!(!err.contains("read_api"), "not a scope problem: {err}");
    for _ in 0..2 {
        server.clear();
        let out = ingest(&s, &server.url, &cfg, TOKEN);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(!err.contains("403"), "{err}");
        let reqs = server.targets();
        assert!(
            reqs.iter().all(|r| !r.contains("/projects/536")),
            "{reqs:#?}"
        );
    }
    let rejects =
        String::from_utf8_lossy(&s.cmd().args(["rejects"]).output().unwrap().stdout).to_string();
    assert_eq!(rejects.matches("CI/CD is disabled").count(), 1, "{rejects}");
}

#[test]
fn a_bad_token_on_an_existing_store_exits_2() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.projects.insert(534, ("tools/build", false));
    w.pipelines.push(pl(533, 1000, 1, "success", vec![]));
    let server = Server::start(w);
    let cfg = config(&s, "projects = [\"533\", \"tools/build\"]\n");
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    let out = ingest(&s, &server.url, &cfg, "glpat-expired-000");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("401 Unauthorized") && err.contains("tools/build"),
        "{err}"
    );
    assert!(!err.contains("glpat-expired-000"));
}

/// Long work on a terminal shows a bar with what is done of what is known; `-q` and a
/// non-terminal stderr never do.
#[test]
fn a_long_fill_shows_progress_on_a_terminal_only() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    for i in 0..12 {
        w.pipelines.push(pl(
            533,
            1000 + i,
            1 + i,
            "failed",
            vec![job(5000 + i, "test", Log::Text(disk_full(i)))],
        ));
    }
    w.trace_delay_ms = 250;
    let server = Server::start(w);
    let cfg = config(&s, "projects = [\"533\"]\n");
    let db = s.db();
    let args = |quiet: bool| -> Vec<String> {
        let mut a = vec![
            "--db".to_string(),
            db.display().to_string(),
            "--config".into(),
            cfg.display().to_string(),
            "ingest".into(),
            "--once".into(),
        ];
        if quiet {
            a.push("-q".into());
        }
        a.extend(["--source".into(), format!("gitlab:{}", server.url)]);
        a
    };
    let a = args(false);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut pty = common::pty::Pty::spawn(
        &a,
        120,
        10,
        &[("SYNCSCOPE_GITLAB_TOKEN", TOKEN)],
        s.dir.path(),
    );
    pty.wait_until(20, "a progress bar", |screen| {
        screen.contains("gitlab") && screen.contains("logs ") && screen.contains("eta")
    });
    assert_eq!(pty.wait_exit(30), 0, "{}", pty.screen());
    let raw = String::from_utf8_lossy(&pty.raw()).to_string();
    assert!(raw.contains("projects 1/1"), "{raw}");

    // Quiet, on a terminal: no bar (a fresh store, so the logs are read again).
    std::fs::remove_file(&db).unwrap();
    let a = args(true);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut pty = common::pty::Pty::spawn(
        &a,
        120,
        10,
        &[("SYNCSCOPE_GITLAB_TOKEN", TOKEN)],
        s.dir.path(),
    );
    assert_eq!(pty.wait_exit(30), 0, "{}", pty.screen());
    let raw = String::from_utf8_lossy(&pty.raw()).to_string();
    assert!(!raw.contains("eta") && !raw.contains("logs "), "{raw}");

    // Not a terminal: no bar.
    std::fs::remove_file(&db).unwrap();
    let out = ingest(&s, &server.url, &cfg, TOKEN);
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert!(!err.contains("eta") && !err.contains('\r'), "{err}");
}

/// `schedules = ["Nightly build"]`: only that schedule's pipelines, whoever owns it; not the
/// hourly schedule's, not the bot's pushes.
#[test]
fn the_precise_nightly_route_takes_the_named_schedules_only() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.projects.insert(534, ("tools/build", false));
    w.schedules.push((533, 11, "Nightly build", "0 2 * * *"));
    w.schedules.push((533, 12, "Hourly smoke", "0 * * * *"));
    w.schedules.push((534, 21, "weekly", "0 3 * * 0"));
    let mut nightly = pl(
        533,
        1000,
        1,
        "failed",
        vec![job(5000, "test", Log::Text(julia_failure(1)))],
    );
    nightly.schedule = Some(11);
    nightly.user = "alice";
    w.pipelines.push(nightly);
    let mut hourly = pl(
        533,
        1001,
        1,
        "failed",
        vec![job(5001, "smoke", Log::Text(disk_full(1)))],
    );
    hourly.schedule = Some(12);
    w.pipelines.push(hourly);
    let mut weekly = pl(
        534,
        2000,
        1,
        "failed",
        vec![job(6000, "slow", Log::Text(disk_full(2)))],
    );
    weekly.schedule = Some(21);
    w.pipelines.push(weekly);
    let server = Server::start(w);
    let cfg = config(
        &s,
        "projects = [\"533\", \"534\"]\nschedules = [\"Nightly build\"]\n",
    );
    let out = ingest(&s, &server.url, &cfg, TOKEN);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = failures(&s, &[]);
    let ids: Vec<i64> = v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1000], "{v:#}");
    let reqs = server.targets();
    // 534 has no such schedule: its schedules are listed, its pipelines never.
    assert!(
        reqs.iter().all(|r| !r.contains("/projects/534/pipelines")),
        "{reqs:#?}"
    );
    assert_eq!(
        reqs.iter()
            .filter(|r| r.contains("/pipeline_schedules/11/pipelines"))
            .count(),
        1
    );
    // Next poll: the schedule lists are remembered (hourly); one listing and one schedule page.
    server.clear();
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    let reqs = server.targets();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
}

/// A log that fails for a reason that may pass does not pin the window either: its pipeline is
/// asked for directly on the next polls, read when it can be, given up after three.
#[test]
fn a_log_that_fails_for_now_is_retried_directly_then_given_up() {
    let s = Scratch::new();
    let mut w = World::default();
    w.projects.insert(533, ("research/GLMModels.jl", false));
    w.pipelines.push(pl(
        533,
        1000,
        3,
        "failed",
        vec![job(5000, "never", Log::Unserved)],
    ));
    w.pipelines.push(pl(
        533,
        1001,
        2,
        "failed",
        vec![job(5001, "later", Log::Unserved)],
    ));
    w.pipelines.push(pl(533, 1002, 1, "success", vec![]));
    let server = Server::start(w);
    let cfg = config(&s, "projects = [\"533\"]\n");
    let out = ingest(&s, &server.url, &cfg, TOKEN);
    assert!(
        stderr(&out).contains("GitLab sent none"),
        "{}",
        stderr(&out)
    );
    let v = failures(&s, &["--night", &night(3)]);
    assert_eq!(
        pipeline_of(&v, "research/GLMModels.jl", 1000)["jobs"][0]["log_state"],
        "pending"
    );
    // Poll 2: the window is past both; they are asked for directly. 5001's log is there now.
    {
        let mut w = server.world.lock().unwrap();
        let p = w.pipelines.iter_mut().find(|p| p.id == 1001).unwrap();
        p.failed_jobs[0].log = Log::Text(disk_full(7));
    }
    server.clear();
    ingest(&s, &server.url, &cfg, TOKEN);
    let reqs = server.targets();
    assert!(
        reqs.iter()
            .any(|r| r == "/api/v4/projects/533/pipelines/1000"),
        "{reqs:#?}"
    );
    assert!(
        reqs.iter()
            .any(|r| r == "/api/v4/projects/533/pipelines/1001"),
        "{reqs:#?}"
    );
    assert!(
        reqs[0].contains("updated_after=") && !reqs[0].contains(&night(3)),
        "{reqs:#?}"
    );
    let v = failures(&s, &["--night", &night(2)]);
    assert_eq!(
        pipeline_of(&v, "research/GLMModels.jl", 1001)["jobs"][0]["log_state"],
        "fetched"
    );
    // Poll 3: 5000 is given up, with the failure reason's pattern.
    server.clear();
    ingest(&s, &server.url, &cfg, TOKEN);
    let v = failures(&s, &["--night", &night(3)]);
    let j = &pipeline_of(&v, "research/GLMModels.jl", 1000)["jobs"][0];
    assert_eq!(j["log_state"], "unreadable");
    assert_eq!(
        j["pattern_identity"],
        "no log; failure_reason script_failure"
    );
    // Then nothing is asked again.
    server.clear();
    assert_eq!(ingest(&s, &server.url, &cfg, TOKEN).status.code(), Some(0));
    assert_eq!(server.targets().len(), 1, "{:#?}", server.targets());
}
