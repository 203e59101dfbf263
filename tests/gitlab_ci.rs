//! `gitlab:URL` and `syncscope failures` end to end, against a local HTTP server answering in
//! the shapes of GitLab's REST API (as the GitLab format document describes them: projects, pipelines, jobs, traces):
//! several projects, pages by `X-Next-Page` and by `Link`, a 429 with `Retry-After`, a 404
//! project, an erased log, a retried pipeline, logs with ANSI escapes and sections. Requests
//! are counted: a second run with nothing new makes only the checkpoint queries.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::Scratch;
use serde_json::{json, Value};

const TOKEN: &str = "glpat-test-SECRET-7f3a9c";

#[derive(Clone)]
struct Pipeline {
    project: i64,
    id: i64,
    status: &'static str,
    created: String,
    updated: String,
    /// (job id, name, allow_failure, failure_reason, log: None = erased)
    failed_jobs: Vec<(i64, &'static str, bool, &'static str, Option<String>)>,
}

#[derive(Default)]
struct World {
    /// id -> path
    projects: BTreeMap<i64, &'static str>,
    pipelines: Vec<Pipeline>,
    /// Request lines seen, in order.
    requests: Vec<String>,
    /// Paths whose next answer is a 429.
    throttle_once: Vec<String>,
    /// `127.0.0.1:PORT`, for the `Link` headers.
    host: String,
    /// Paths whose next answer is a 503.
    fail_once: Vec<String>,
    /// Requests being answered now, and the most at once.
    in_flight: usize,
    max_in_flight: usize,
}

struct Server {
    world: Arc<Mutex<World>>,
    url: String,
}

fn iso(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// 02:00 UTC, `days` ago.
fn night_time(days: i64, minute: i64) -> chrono::DateTime<chrono::Utc> {
    let today = chrono::Utc::now().date_naive();
    (today - chrono::Duration::days(days))
        .and_hms_opt(2, 0, 0)
        .unwrap()
        .and_utc()
        + chrono::Duration::minutes(minute)
}

fn julia_test_failure(night: i64) -> String {
    let mut log = String::new();
    log.push_str("\x1b[0KRunning with gitlab-runner 17.5.0 (8f2e9c1d)\n");
    log.push_str("section_start:1740895204:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1mPreparing the \"docker\" executor\x1b[0;m\nsection_end:1740895205:prepare_executor\r\x1b[0K\n");
    log.push_str("section_start:1740895206:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage of the job script\x1b[0;m\n");
    log.push_str("\x1b[32;1m$ julia --project -e 'using Pkg; Pkg.test()'\x1b[0;m\n");
    // Megabytes of progress before the failure: streamed, never kept whole.
    for i in 0..40_000 {
        log.push_str(&format!(
            "  Downloading artifact {i}\r  Progress: {}%\r\x1b[K  Installed artifact {i}\n",
            i % 100
        ));
    }
    log.push_str(&format!("Test Summary: | Pass  Fail  Total\nTest Failed at ~/builds/rz4y4fdk/0/research/GLMModels.jl/test/runtests.jl:{}\n  Expression: \x1b[1mcoef(m) ≈ [1.0, 2.0]\x1b[0m\n   Evaluated: [1.0, 2.{night}] ≈ [1.0, 2.0]\nStacktrace:\n [1] top-level scope at /tmp/jl_0uu{night}To/x.jl:3\n", 40 + night));
    log.push_str(
        "ERROR: LoadError: Some tests did not pass: 41 passed, 1 failed, 0 errored, 0 broken.\n",
    );
    log.push_str("section_end:1740896587:step_script\r\x1b[0K\n");
    log.push_str("section_start:1740896588:cleanup_file_variables\r\x1b[0K\x1b[0K\x1b[36;1mCleaning up project directory and file based variables\x1b[0;m\nsection_end:1740896589:cleanup_file_variables\r\x1b[0K\n");
    log.push_str("\x1b[31;1mERROR: Job failed: exit code 1\n\x1b[0;m\n");
    log
}

fn oom(n: i64) -> String {
    format!("section_start:1:step_script\r\x1b[0K$ python train.py\nepoch {n}\n/usr/bin/bash: line 143:   {} Killed   python train.py\nsection_end:2:step_script\r\x1b[0K\n\x1b[31;1mERROR: Job failed: exit code 137\n\x1b[0;m\n", 300 + n)
}

fn lint(n: i64) -> String {
    format!("section_start:1:step_script\r\x1b[0K$ ruff check .\nsrc/etl/load.py:{}:5: F401 `os` imported but unused\nFound 1 error.\nsection_end:2:step_script\r\x1b[0K\nERROR: Job failed: exit code 1\n", 10 + n)
}

fn pipeline(
    project: i64,
    id: i64,
    days: i64,
    status: &'static str,
    jobs: Vec<(i64, &'static str, bool, &'static str, Option<String>)>,
) -> Pipeline {
    Pipeline {
        project,
        id,
        status,
        created: iso(night_time(days, 0)),
        updated: iso(night_time(days, 40)),
        failed_jobs: jobs,
    }
}

/// Three nights of history (3, 2 and 1 nights ago).
fn history() -> World {
    let mut w = World::default();
    w.projects.insert(533, "research/GLMModels.jl");
    w.projects.insert(534, "tools/build");
    w.projects.insert(535, "data/etl");
    for (i, d) in [3i64, 2, 1].into_iter().enumerate() {
        let i = i as i64;
        w.pipelines.push(pipeline(
            533,
            1000 + i,
            d,
            "failed",
            vec![(
                5000 + i,
                "test 1.10",
                false,
                "script_failure",
                Some(julia_test_failure(d)),
            )],
        ));
        w.pipelines
            .push(pipeline(534, 2000 + i, d, "success", vec![]));
    }
    w.pipelines.push(pipeline(535, 3000, 3, "success", vec![]));
    w.pipelines.push(pipeline(535, 3001, 2, "success", vec![]));
    w.pipelines.push(pipeline(
        535,
        3002,
        1,
        "failed",
        vec![(7002, "train", false, "script_failure", Some(oom(1)))],
    ));
    w
}

impl Server {
    fn start(world: World) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let host = listener.local_addr().unwrap().to_string();
        let url = format!("http://{host}/api/v4");
        let mut world = world;
        world.host = host;
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
        Server { world, url }
    }

    fn requests(&self) -> Vec<String> {
        self.world.lock().unwrap().requests.clone()
    }

    fn clear(&self) {
        self.world.lock().unwrap().requests.clear();
    }
}

fn page_size() -> usize {
    2
}

fn handle(stream: std::net::TcpStream, world: &Mutex<World>) -> std::io::Result<()> {
    let (target, token) = common::request_target_and_token(&stream)?;
    {
        let mut w = world.lock().unwrap();
        w.in_flight += 1;
        w.max_in_flight = w.max_in_flight.max(w.in_flight);
    }
    // Slow enough that concurrent requests overlap.
    std::thread::sleep(std::time::Duration::from_millis(15));
    let (status, headers, body) = answer(&target, token.as_deref(), world);
    world.lock().unwrap().in_flight -= 1;
    let mut out = stream;
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    // Logs go out in pieces, as a real server streams them.
    for chunk in body.chunks(50_000) {
        out.write_all(chunk)?;
    }
    let mut rest = Vec::new();
    let _ = out.read_to_end(&mut rest);
    Ok(())
}

fn query(target: &str) -> (String, BTreeMap<String, String>) {
    let (path, q) = target.split_once('?').unwrap_or((target, ""));
    let mut m = BTreeMap::new();
    for kv in q.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = v.replace("%3A", ":").replace("%2F", "/");
        m.insert(k.replace("%5B%5D", "[]"), v);
    }
    (path.to_string(), m)
}

type Reply = (u16, Vec<(String, String)>, Vec<u8>);

fn json_reply(v: Value) -> Reply {
    (
        200,
        vec![("Content-Type".into(), "application/json".into())],
        v.to_string().into_bytes(),
    )
}

fn not_found(what: &str) -> Reply {
    (
        404,
        vec![],
        json!({"message": format!("404 {what} Not Found")})
            .to_string()
            .into_bytes(),
    )
}

/// A page of `rows`, with the next page told by `X-Next-Page` (or by `Link` when `link`).
fn paged(rows: Vec<Value>, page: usize, target: &str, link: bool, host: &str) -> Reply {
    let n = page_size();
    let start = (page - 1) * n;
    let slice: Vec<Value> = rows.iter().skip(start).take(n).cloned().collect();
    let more = rows.len() > start + n;
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-Page".into(), page.to_string()),
    ];
    if link {
        if more {
            let base = target.split('?').next().unwrap_or("");
            let q: Vec<&str> = target
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.starts_with("page="))
                .collect();
            headers.push(("Link".into(), format!("<http://{host}{base}?{}&page={}>; rel=\"next\", <http://{host}{base}?page=1>; rel=\"first\"", q.join("&"), page + 1)));
        }
    } else {
        headers.push((
            "X-Next-Page".into(),
            if more {
                (page + 1).to_string()
            } else {
                String::new()
            },
        ));
    }
    // Totals lie (as when there are more than 10,000 rows): never trusted.
    headers.push(("X-Total".into(), "1".into()));
    (200, headers, Value::Array(slice).to_string().into_bytes())
}

fn answer(target: &str, token: Option<&str>, world: &Mutex<World>) -> Reply {
    let mut w = world.lock().unwrap();
    w.requests.push(target.to_string());
    if token != Some(TOKEN) {
        return (401, vec![], br#"{"message":"401 Unauthorized"}"#.to_vec());
    }
    if let Some(i) = w
        .throttle_once
        .iter()
        .position(|p| target.starts_with(p.as_str()))
    {
        w.throttle_once.remove(i);
        return (
            429,
            vec![
                ("Retry-After".into(), "1".into()),
                ("RateLimit-Remaining".into(), "0".into()),
            ],
            b"Retry later".to_vec(),
        );
    }
    if let Some(i) = w
        .fail_once
        .iter()
        .position(|p| target.starts_with(p.as_str()))
    {
        w.fail_once.remove(i);
        return (
            503,
            vec![],
            b"<html>503 Service Temporarily Unavailable</html>".to_vec(),
        );
    }
    let (path, q) = query(target);
    let parts: Vec<&str> = path.trim_start_matches("/api/v4/").split('/').collect();
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let find = |key: &str| -> Option<i64> {
        let key = key.replace("%2F", "/");
        w.projects
            .iter()
            .find(|(id, p)| id.to_string() == key || **p == key)
            .map(|(id, _)| *id)
    };
    match parts.as_slice() {
        ["groups", g, "projects"] => {
            assert_eq!(q.get("include_subgroups").map(String::as_str), Some("true"));
            let g = g.replace("%2F", "/");
            // Projects shared into the group come too unless `with_shared=false`.
            let shared = q.get("with_shared").map(String::as_str) != Some("false");
            let rows: Vec<Value> = w
                .projects
                .iter()
                .filter(|(_, p)| p.starts_with(&format!("{g}/")) || (shared && p.starts_with("shared-in/")))
                .map(|(id, p)| json!({"id": id, "path_with_namespace": p, "web_url": format!("https://gitlab.example.com/{p}"), "archived": false}))
                .collect();
            paged(rows, page, target, false, &w.host)
        }
        ["projects", p] => match find(p) {
            Some(id) => json_reply(
                json!({"id": id, "name": "x", "path_with_namespace": w.projects[&id], "web_url": format!("https://gitlab.example.com/{}", w.projects[&id]), "default_branch": "main", "archived": false}),
            ),
            None => not_found("Project"),
        },
        ["projects", p, "pipelines"] => {
            let Some(id) = find(p) else {
                return not_found("Project");
            };
            let after = q.get("updated_after").cloned().unwrap_or_default();
            assert_eq!(q.get("source").map(String::as_str), Some("schedule"));
            let mut rows: Vec<&Pipeline> = w
                .pipelines
                .iter()
                .filter(|pl| {
                    pl.project == id
                        && (after.is_empty()
                            || chrono::DateTime::parse_from_rfc3339(&pl.updated).unwrap()
                                >= chrono::DateTime::parse_from_rfc3339(&after).unwrap())
                })
                .collect();
            rows.sort_by(|a, b| b.updated.cmp(&a.updated));
            let rows: Vec<Value> = rows
                .iter()
                .map(|pl| json!({"id": pl.id, "iid": pl.id - 900, "project_id": id, "sha": "8f2e9c1d4b7a", "ref": "main", "status": pl.status, "source": "schedule", "created_at": pl.created, "updated_at": pl.updated, "web_url": format!("https://gitlab.example.com/{}/-/pipelines/{}", w.projects[&id], pl.id)}))
                .collect();
            paged(rows, page, target, id == 533, &w.host)
        }
        ["projects", p, "pipelines", pid, "jobs"] => {
            let Some(id) = find(p) else {
                return not_found("Project");
            };
            assert!(
                target.contains("scope[]=failed") || target.contains("scope%5B%5D=failed"),
                "{target}"
            );
            let Some(pl) = w
                .pipelines
                .iter()
                .find(|pl| pl.project == id && pl.id.to_string() == *pid)
            else {
                return not_found("Pipeline");
            };
            let rows: Vec<Value> = pl
                .failed_jobs
                .iter()
                .map(|(jid, name, allow, reason, _)| json!({"id": jid, "name": name, "stage": "test", "status": "failed", "allow_failure": allow, "failure_reason": reason, "created_at": pl.created, "started_at": pl.created, "finished_at": pl.updated, "duration": 1432.7, "web_url": format!("https://gitlab.example.com/{}/-/jobs/{jid}", w.projects[&id]), "pipeline": {"id": pl.id, "project_id": id, "status": pl.status}, "user": {"username": "nightly-dev"}}))
                .collect();
            paged(rows, page, target, false, &w.host)
        }
        // Trigger jobs: none in these pipelines.
        ["projects", p, "pipelines", _, "bridges"] => match find(p) {
            Some(_) => paged(Vec::new(), page, target, false, &w.host),
            None => not_found("Project"),
        },
        ["projects", p, "jobs", jid, "trace"] => {
            let Some(id) = find(p) else {
                return not_found("Project");
            };
            for pl in w.pipelines.iter().filter(|pl| pl.project == id) {
                for (j, _, _, _, log) in &pl.failed_jobs {
                    if j.to_string() == *jid {
                        return match log {
                            Some(l) => (
                                200,
                                vec![("Content-Type".into(), "text/plain".into())],
                                l.clone().into_bytes(),
                            ),
                            None => not_found(""),
                        };
                    }
                }
            }
            not_found("")
        }
        _ => not_found("Route"),
    }
}

fn config(s: &Scratch, extra: &str) -> std::path::PathBuf {
    let path = s.path("syncscope.toml");
    std::fs::write(
        &path,
        format!("[gitlab]\nprojects = [\"research/GLMModels.jl\", \"534\", \"data/etl\", \"gone/project\"]\ntimezone = \"UTC\"\nmax_in_flight = 2\n{extra}"),
    )
    .unwrap();
    path
}

fn ingest(
    s: &Scratch,
    server: &Server,
    cfg: &std::path::Path,
    token: &str,
) -> std::process::Output {
    s.cmd()
        .arg("--config")
        .arg(cfg)
        .args(["ingest", "--once", "--source"])
        .arg(format!("gitlab:{}", server.url))
        .env("SYNCSCOPE_GITLAB_TOKEN", token)
        .output()
        .expect("run ingest")
}

fn failures_json(s: &Scratch, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["failures", "--format", "json"];
    all.extend_from_slice(args);
    let out = run_utc(s, &all);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "failures json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// `syncscope ARGS` with nights counted in UTC, as the simulated server writes them.
fn run_utc(s: &Scratch, args: &[&str]) -> std::process::Output {
    s.cmd()
        .env("TZ", "UTC")
        .args(args)
        .output()
        .expect("run syncscope")
}

fn night(days: i64) -> String {
    (chrono::Utc::now().date_naive() - chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

fn count(reqs: &[String], needle: &str) -> usize {
    reqs.iter().filter(|r| r.contains(needle)).count()
}

#[test]
fn incremental_nights_counted_requests_retries_and_patterns() {
    let s = Scratch::new();
    let mut w = history();
    w.throttle_once
        .push("/api/v4/projects/534/pipelines".into());
    w.fail_once
        .push("/api/v4/projects/535/pipelines/3002/jobs".into());
    let server = Server::start(w);
    let cfg = config(&s, "");

    // First run: the history.
    let t = std::time::Instant::now();
    let out = ingest(&s, &server, &cfg, TOKEN);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(1),
        "the 429's Retry-After was honoured"
    );
    assert!(
        stderr.contains("gone/project") && stderr.contains("404 Project Not Found"),
        "{stderr}"
    );
    let reqs = server.requests();
    // 4 projects resolved (one 404); pipelines: 533 two pages by Link, 534 a 429 then one
    // page, 535 two pages by X-Next-Page; jobs of 4 failed + 5 passed pipelines; 4 logs.
    assert_eq!(count(&reqs, "/trace"), 4, "{reqs:#?}");
    assert_eq!(count(&reqs, "/pipelines?"), 2 + 3 + 2, "{reqs:#?}");
    // One more: the 503 retried.
    assert_eq!(count(&reqs, "/jobs?"), 9 + 1, "{reqs:#?}");
    // And one trigger-job (bridges) listing per finished pipeline: 9.
    assert_eq!(count(&reqs, "/bridges?"), 9, "{reqs:#?}");
    assert_eq!(reqs.len(), 4 + 7 + 10 + 9 + 4, "{reqs:#?}");
    assert!(
        server.world.lock().unwrap().max_in_flight <= 2,
        "max_in_flight = 2 honoured"
    );

    let (code, v) = failures_json(&s, &[]);
    assert_eq!(code, Some(1), "failures on the night asked exit 1");
    assert_eq!(v["night"], night(1));
    let pipes = v["pipelines"].as_array().unwrap();
    assert_eq!(pipes.len(), 2, "{v:#}");
    let glm = pipes
        .iter()
        .find(|p| p["project"] == "research/GLMModels.jl")
        .unwrap();
    let job = &glm["jobs"][0];
    assert_eq!(job["pattern_name"], "Julia: test failed");
    assert_eq!(job["pattern_identity"], "coef(m) ≈ [1.0, 2.0]");
    assert_eq!(job["section"], "step_script");
    assert_eq!(
        job["web_url"],
        "https://gitlab.example.com/research/GLMModels.jl/-/jobs/5002"
    );
    assert!(job["excerpt"]
        .as_str()
        .unwrap()
        .contains("Expression: coef(m)"));
    assert!(!job["tail"].as_str().unwrap().contains('\x1b'));
    assert!(job["tail"].as_str().unwrap().len() <= 4096);

    // Second run, nothing new: only the checkpoint queries (one listing per project, and
    // the project that could not be resolved is asked for again).
    server.clear();
    let out = ingest(&s, &server, &cfg, TOKEN);
    assert_eq!(out.status.code(), Some(0));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3 + 1, "{reqs:#?}");
    assert_eq!(count(&reqs, "/pipelines?"), 3);
    assert!(
        reqs.iter()
            .all(|r| r.contains("updated_after=") || r.contains("gone")),
        "{reqs:#?}"
    );

    // Last night: 533 fails twice (one log erased), 534 passes with warnings, 535's failure
    // of the night before is retried and passes; 535 fails with a new pattern.
    {
        let mut w = server.world.lock().unwrap();
        w.pipelines.push(pipeline(
            533,
            1003,
            0,
            "failed",
            vec![
                (
                    5003,
                    "test 1.10",
                    false,
                    "script_failure",
                    Some(julia_test_failure(0)),
                ),
                (5004, "docs", false, "script_failure", None),
            ],
        ));
        w.pipelines.push(pipeline(
            534,
            2003,
            0,
            "success",
            vec![(6003, "lint", true, "script_failure", Some(lint(0)))],
        ));
        w.pipelines.push(pipeline(
            535,
            3003,
            0,
            "failed",
            vec![(7003, "train", false, "script_failure", Some(oom(0)))],
        ));
        let retried = w.pipelines.iter_mut().find(|p| p.id == 3002).unwrap();
        retried.status = "success";
        retried.failed_jobs.clear();
        retried.updated = iso(chrono::Utc::now() - chrono::Duration::minutes(5));
    }
    server.clear();
    let out = ingest(&s, &server, &cfg, TOKEN);
    assert_eq!(out.status.code(), Some(0));
    let reqs = server.requests();
    // R = 3 projects, P = 2 failed pipelines, J = 4 failed jobs (one allowed to fail), and
    // S = 2 passed pipelines checked for warnings; +1 for the unresolved project; each
    // finished pipeline's trigger jobs listed once (P + S).
    let (r, p, j, sp) = (3, 2, 4, 2);
    assert!(
        reqs.len() <= r + 2 * (p + sp) + j + 1,
        "{} requests: {reqs:#?}",
        reqs.len()
    );
    assert_eq!(
        count(&reqs, "/trace"),
        4,
        "each new failed job's log once, the erased one too: {reqs:#?}"
    );

    let (code, v) = failures_json(&s, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(v["night"], night(0));
    let statuses: Vec<(String, String)> = v["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["project"].as_str().unwrap().to_string(),
                p["cell"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("data/etl".into(), "failed".into()),
            ("research/GLMModels.jl".into(), "failed".into()),
            ("tools/build".into(), "warnings".into())
        ]
    );
    // The night before: the retried pipeline passed.
    let (code, before) = failures_json(&s, &["--night", &night(1)]);
    assert_eq!(code, Some(1));
    assert!(
        before["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["project"] != "data/etl"),
        "{before:#}"
    );
    let erased = v["pipelines"][1]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "docs")
        .unwrap()
        .clone();
    assert_eq!(erased["log_state"], "erased");

    // Patterns by prevalence: the Julia failure on 4 nights, not new; the OOM seen on night 1
    // (retried since, still seen then) and tonight; the lint fingerprint is NEW.
    let (_, pats) = failures_json(&s, &["--patterns"]);
    let pats = pats.as_array().unwrap();
    assert_eq!(pats[0]["name"], "Julia: test failed");
    assert_eq!(pats[0]["nights_14"], 4);
    assert_eq!(pats[0]["is_new"], false);
    let new: Vec<&Value> = pats.iter().filter(|p| p["is_new"] == true).collect();
    assert!(new.iter().any(|p| p["kind"] == "fingerprint" && p["identity"].as_str().unwrap().contains("F401")), "{pats:#?}");

    // A known issue, linked once, shows wherever the pattern does, and stays across runs.
    let julia = pats[0]["id"].as_str().unwrap().to_string();
    let out = run_utc(
        &s,
        &[
            "failures",
            "link",
            &julia[..6],
            "https://gitlab.example.com/research/GLMModels.jl/-/issues/12",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        run_utc(&s, &["failures", "link", "zzzz", "https://x/1"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run_utc(&s, &["failures", "link", &julia, "not a url"])
            .status
            .code(),
        Some(2)
    );
    server.clear();
    assert_eq!(ingest(&s, &server, &cfg, TOKEN).status.code(), Some(0));
    let (_, pats) = failures_json(&s, &["--patterns"]);
    assert_eq!(
        pats[0]["issue_url"],
        "https://gitlab.example.com/research/GLMModels.jl/-/issues/12"
    );
    let (_, v) = failures_json(&s, &["--project", "research/GLMModels.jl"]);
    let test_job = v["pipelines"][0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "test 1.10")
        .unwrap()
        .clone();
    assert_eq!(
        test_job["issue_url"],
        "https://gitlab.example.com/research/GLMModels.jl/-/issues/12"
    );
    let table = run_utc(&s, &["failures"]);
    assert_eq!(table.status.code(), Some(1));
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.contains("FAILED")
            && table.contains("WARNINGS")
            && table.contains("NEW")
            && table.contains("issue https://gitlab.example.com/research/GLMModels.jl/-/issues/12"),
        "{table}"
    );
    let md = String::from_utf8_lossy(&run_utc(&s, &["failures", "--format", "markdown"]).stdout)
        .to_string();
    assert!(
        md.starts_with(&format!("## Nightly CI: {}", night(0)))
            && md.contains("### Failed")
            && md.contains("### Passed with warnings")
            && md.contains("| Pattern |"),
        "{md}"
    );
    let pt = String::from_utf8_lossy(&run_utc(&s, &["failures", "--patterns"]).stdout).to_string();
    let ht = String::from_utf8_lossy(&run_utc(&s, &["failures", "--history"]).stdout).to_string();
    assert!(
        pt.contains("NEW") && pt.contains("e.g. https://gitlab.example.com/"),
        "{pt}"
    );
    assert!(ht.contains("research/GLMModels.jl  ..........FFFF"), "{ht}");
    // A night without failures exits 0.
    assert_eq!(
        run_utc(&s, &["failures", "--night", &night(20)])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run_utc(&s, &["failures", "--night", "yesterday"])
            .status
            .code(),
        Some(2)
    );

    // History strips: 14 nights, oldest first.
    let (_, h) = failures_json(&s, &["--history"]);
    let strip = |name: &str| -> String {
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
    assert_eq!(&strip("research/GLMModels.jl")[10..], "FFFF");
    assert_eq!(&strip("tools/build")[10..], "PPPW");
    assert_eq!(&strip("data/etl")[10..], "PPPF");

    // Events: failed jobs as errors, the allowed failure a warning, one pipeline one session.
    let errs = s.events_json(&[
        "--source",
        "gitlab",
        "--severity",
        "error",
        "--event-type",
        "ci_job_failed",
    ]);
    assert_eq!(errs.len(), 3 + 1 + 2 + 1, "{errs:#?}");
    let corr = errs
        .iter()
        .find(|e| e["summary"].as_str().unwrap().contains("docs"))
        .unwrap()["correlation_id"]
        .clone();
    let session = s.events_json(&["--correlation-id", corr.as_str().unwrap()]);
    assert_eq!(
        session.len(),
        3,
        "the pipeline and its two failed jobs: {session:#?}"
    );

    // The token is nowhere: not in the store, not in any output.
    let db = std::fs::read(s.db()).unwrap();
    let needle = TOKEN.as_bytes();
    assert!(!db.windows(needle.len()).any(|w| w == needle));
    for args in [
        vec!["failures"],
        vec!["failures", "--format", "markdown"],
        vec!["sources"],
        vec!["rejects"],
    ] {
        let o = run_utc(&s, &args);
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains(TOKEN)
                && !String::from_utf8_lossy(&o.stderr).contains(TOKEN)
        );
    }
}

#[test]
fn a_bad_token_is_reported_per_project_without_being_printed() {
    let s = Scratch::new();
    let server = Server::start(history());
    let cfg = config(&s, "");
    let bad = "glpat-WRONG-0000-1111";
    let out = ingest(&s, &server, &cfg, bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("401 Unauthorized") && stderr.contains("research/GLMModels.jl"),
        "{stderr}"
    );
    assert!(!stderr.contains(bad) && !String::from_utf8_lossy(&out.stdout).contains(bad));
    // And the token never goes on the command line: there is no option for it.
    let help = run_utc(&s, &["ingest", "--help"]);
    assert!(!String::from_utf8_lossy(&help.stdout)
        .to_lowercase()
        .contains("token"));
}

#[test]
fn a_group_with_subgroups_and_paged_project_lists() {
    let s = Scratch::new();
    let mut w = history();
    w.projects.insert(536, "research/sub/Deep.jl");
    // Another group's project shared into research: not research's own.
    w.projects.insert(537, "shared-in/Other.jl");
    w.pipelines.push(pipeline(
        536,
        4000,
        1,
        "failed",
        vec![(8000, "test", false, "script_failure", Some(oom(5)))],
    ));
    let server = Server::start(w);
    let path = s.path("group.toml");
    std::fs::write(
        &path,
        "[gitlab]\ngroup = \"research\"\ntimezone = \"UTC\"\n",
    )
    .unwrap();
    let out = ingest(&s, &server, &path, TOKEN);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, h) = failures_json(&s, &["--history"]);
    let names: Vec<&str> = h["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["research/GLMModels.jl", "research/sub/Deep.jl"]);
    // The group's list is not asked again within the hour.
    server.clear();
    assert_eq!(ingest(&s, &server, &path, TOKEN).status.code(), Some(0));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    assert_eq!(count(&reqs, "/groups/"), 0);
}
