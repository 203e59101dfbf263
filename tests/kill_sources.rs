//! kill -9 of every source kind that is not a plain file: `spacedrive-db`, `gerrit-rest`,
//! `ngit-metrics` and `gitlab` against local stand-ins that serve fast, and `gerrit-ssh` through
//! a real `sshd`. Each kind is ingested by the real binary, SIGKILLed at 20 random instants
//! (seeded; the seed is printed, and `SYNCSCOPE_KILL_SEED=N` repeats a run) while its upstream
//! grows between rounds, restarted, and at the end the store holds exactly what the upstream
//! served: the same events as one clean ingest of the final upstream into a fresh store, none
//! lost, none twice.
//!
//! `gerrit-ssh` differs as Gerrit does: `stream-events` never replays, so the events in flight
//! when the ingest dies (sent by Gerrit, not yet committed) are gone upstream too. There the
//! test checks what can be true: each connection's events are stored as a prefix of what it sent,
//! never twice, and the connection the ingest ends on is stored whole.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{keygen, write_exec, Scratch};
use serde_json::{json, Value};

/// Kills per kind.
const ROUNDS: usize = 20;
/// The longest one ingest may take to finish (a loaded 2-core box is slow).
const FINISH: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Seeded instants

/// splitmix64: small, seeded, good enough to spread kill instants.
struct Rng(u64);

impl Rng {
    fn from_env(kind: &str) -> Rng {
        let seed = std::env::var("SYNCSCOPE_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!(
            "{kind}: kill instants from seed {seed} (SYNCSCOPE_KILL_SEED={seed} repeats them)"
        );
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..=max
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// Running the ingest

/// One `syncscope ingest` child; SIGKILLed and reaped when dropped. Its stderr goes to a file.
struct Ingest {
    child: Child,
    stderr: PathBuf,
    done: bool,
}

impl Ingest {
    fn spawn(mut cmd: Command, stderr: PathBuf) -> Ingest {
        let err = File::create(&stderr).expect("stderr file");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn syncscope ingest");
        Ingest {
            child,
            stderr,
            done: false,
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGKILL unless it already ended: true when it was still running (the kill landed).
    fn kill9(&mut self) -> bool {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            self.done = true;
            assert_eq!(
                st.code(),
                Some(0),
                "ingest failed by itself: {}",
                self.stderr_text()
            );
            return false;
        }
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
        self.done = true;
        true
    }

    /// Waits for it to end by itself; it must succeed within [`FINISH`].
    fn finish(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                self.done = true;
                assert_eq!(st.code(), Some(0), "ingest failed: {}", self.stderr_text());
                return;
            }
            assert!(
                start.elapsed() < FINISH,
                "ingest did not finish within {FINISH:?}: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How one kind's `ingest --once` is run against a store.
type MakeCmd<'a> = &'a dyn Fn(&Scratch) -> Command;

/// Runs `ingest --once` to its end on `s`; returns how long it took.
fn run_to_end(s: &Scratch, make: MakeCmd, tag: &str) -> Duration {
    let start = Instant::now();
    let mut p = Ingest::spawn(make(s), s.path(&format!("stderr-{tag}.txt")));
    p.finish();
    start.elapsed()
}

/// The kill rounds of one kind: `grow(round)` adds to the upstream, then an `ingest --once` is
/// SIGKILLed after a random delay (within 80% of one whole ingest of the first round, measured
/// on a throwaway store), 20 times; then one ingest runs to its end. At least 3 kills must land
/// while the ingest runs. Returns the log of the rounds.
fn kill_rounds(kind: &str, s: &Scratch, make: MakeCmd, grow: &mut dyn FnMut(usize)) -> Vec<String> {
    let mut rng = Rng::from_env(kind);
    grow(0);
    let whole = run_to_end(&Scratch::new(), make, "calibrate");
    // A first ingest (the history) is the longest; the later ones take only what is new, so the
    // kills fall within 80% of it, most of them while the process runs.
    let max_ms = (whole.as_millis() as u64 * 4 / 5).max(20);
    let mut log = vec![format!(
        "{kind}: one whole ingest takes {} ms; kills within 0..={max_ms} ms",
        whole.as_millis()
    )];
    let mut landed = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            grow(round);
        }
        let ms = rng.upto(max_ms);
        let mut p = Ingest::spawn(make(s), s.path(&format!("stderr-{round}.txt")));
        std::thread::sleep(Duration::from_millis(ms));
        let hit = p.kill9();
        landed += usize::from(hit);
        log.push(format!(
            "round {round}: {} at {ms} ms, {} events stored",
            if hit { "SIGKILL" } else { "ended before" },
            s.count(&[])
        ));
    }
    run_to_end(s, make, "final");
    eprintln!("{}", log.join("\n"));
    assert!(
        landed >= 3,
        "only {landed} of {ROUNDS} kills landed while the ingest ran: {log:#?}"
    );
    log
}

/// The events of `source` as comparable identities (every field but the store's row id and
/// `drop`), with how often each is stored.
fn identities(s: &Scratch, source: &str, drop: &[&str]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for mut e in s.events_json(&["--source", source]) {
        let o = e.as_object_mut().expect("event object");
        o.remove("id");
        for d in drop {
            o.remove(*d);
        }
        *out.entry(e.to_string()).or_insert(0) += 1;
    }
    out
}

/// The killed store holds exactly what one clean ingest of the final upstream stores.
fn assert_same_as_clean(kind: &str, s: &Scratch, make: MakeCmd, source: &str, drop: &[&str]) {
    let clean = Scratch::new();
    run_to_end(&clean, make, "clean");
    let want = identities(&clean, source, drop);
    let got = identities(s, source, drop);
    let twice: Vec<&String> = got
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(twice.is_empty(), "{kind}: stored twice: {twice:#?}");
    let lost: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "{kind}: lost {} {lost:#?}\nnot in a clean ingest {} {extra:#?}",
        lost.len(),
        extra.len()
    );
    assert_eq!(got, want, "{kind}");
    assert!(!want.is_empty(), "{kind}: the upstream served nothing");
    eprintln!("{kind}: {} events, each stored once", want.len());
}

// ---------------------------------------------------------------------------------------------
// A loopback HTTP stand-in

type Answer = (u16, &'static str, Vec<u8>);
type Handler = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// Serves `answer(request target)` on 127.0.0.1, each connection on its own thread; returns
/// `http://127.0.0.1:PORT`.
fn serve(answer: Handler) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut stream) = conn else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let Ok((target, _)) = common::request_target_and_token(&stream) else {
                    return;
                };
                let (status, ctype, body) = answer(&target);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    base
}

fn once(s: &Scratch, source: &str) -> Command {
    let mut c = s.cmd();
    c.args([
        "ingest",
        "--once",
        "-q",
        "--batch-size",
        "7",
        "--source",
        source,
    ]);
    c
}

// ---------------------------------------------------------------------------------------------
// spacedrive-db

const SD_DEVICE: &str = "cd613e30-d8f1-6adf-91b7-584a2265b1f5";

/// Appends `n` rows the way Spacedrive does (AUTOINCREMENT ids), numbered from `*next`.
fn insert_sd_rows(db: &Path, next: &mut u64, n: u64) {
    let mut conn = rusqlite::Connection::open(db).expect("open sync.db");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    let tx = conn.transaction().expect("begin");
    for _ in 0..n {
        let k = *next;
        *next += 1;
        let (ty, cat, sev) = match k % 3 {
            0 => ("batch_ingestion", "data_flow", "debug"),
            1 => ("state_transition", "lifecycle", "info"),
            _ => ("sync_error", "error", "warning"),
        };
        tx.execute(
            "INSERT INTO sync_event_log (timestamp, device_id, event_type, category, severity,
               summary, details, correlation_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                format!(
                    "2025-12-06T{:02}:{:02}:{:02}.{:06}+00:00",
                    k / 3600 % 24,
                    k / 60 % 60,
                    k % 60,
                    k * 37 % 1_000_000
                ),
                SD_DEVICE,
                ty,
                cat,
                sev,
                format!("killed row {k}"),
                k.is_multiple_of(2).then(|| format!(r#"{{"k": {k}}}"#)),
                format!("kill-session-{}", k / 10),
            ],
        )
        .expect("insert row");
    }
    tx.commit().expect("commit");
}

#[test]
fn kill_9_spacedrive_db() {
    let s = Scratch::new();
    let db = s.copy_fixture("sync.db");
    let source = format!("spacedrive-db:{}", db.display());
    let make = |s: &Scratch| once(s, &source);
    let mut next = 0;
    kill_rounds("spacedrive-db", &s, &make, &mut |_| {
        insert_sd_rows(&db, &mut next, 150)
    });
    assert_eq!(s.count(&["--grep", "killed row"]), next);
    assert_same_as_clean("spacedrive-db", &s, &make, "spacedrive", &[]);
}

// ---------------------------------------------------------------------------------------------
// gerrit-rest

/// The replication-status answer: `refs` refs of every round so far, each with its own time.
fn rest_body(rounds: usize, refs: usize) -> String {
    let mut status = serde_json::Map::new();
    for r in 0..rounds {
        for k in 0..refs {
            let failed = (r + k) % 5 == 0;
            status.insert(
                format!("refs/heads/r{r}-b{k}"),
                json!({"type": "PUSH", "status": if failed { "FAILED" } else { "SUCCEEDED" },
                       "when": 1_764_000_000 + (r * 1000 + k) as i64}),
            );
        }
    }
    let body = json!({"remotes": {"https://mirror.example.org/core.git": {"status": status}},
                      "status": "OK", "project": "core"});
    // Gerrit's XSSI prefix, as it sends it.
    format!(")]}}'\n{body}")
}

#[test]
fn kill_9_gerrit_rest() {
    let s = Scratch::new();
    let body = Arc::new(Mutex::new(String::new()));
    let shared = body.clone();
    let base = serve(Arc::new(move |_| {
        (
            200,
            "application/json",
            shared.lock().expect("lock").clone().into_bytes(),
        )
    }));
    let source = format!(
        "gerrit-rest:{base}/a/projects/core/remotes/https%3A%2F%2Fmirror.example.org%2Fcore.git/replication-status"
    );
    let make = |s: &Scratch| {
        let mut c = once(s, &source);
        c.env("SYNCSCOPE_GERRIT_USER", "mon")
            .env("SYNCSCOPE_GERRIT_PASSWORD", "s3cret")
            .env_remove("SYNCSCOPE_GERRIT_CREDENTIALS");
        c
    };
    kill_rounds("gerrit-rest", &s, &make, &mut |round| {
        *body.lock().expect("lock") = rest_body(round + 1, 60);
    });
    assert_eq!(
        s.count(&["--event-type", "rest_ref_status"]),
        (ROUNDS * 60) as u64
    );
    assert_same_as_clean("gerrit-rest", &s, &make, "gerrit", &[]);
}

// ---------------------------------------------------------------------------------------------
// ngit-metrics

/// An ngit exposition (v3 names) with `n` relays, every one connected and healthy.
fn ngit_exposition(n: usize) -> String {
    let relay = |i: usize| format!("ws://10.0.{}.{}:7000", i / 200, i % 200);
    let mut t = String::from(
        "# HELP ngit_build_info Build information\n# TYPE ngit_build_info gauge\n\
         ngit_build_info{commit=\"unknown\",version=\"3.0.10\"} 1\n\
         # HELP ngit_sync_connection_attempts_total Total connection attempts by relay and result\n\
         # TYPE ngit_sync_connection_attempts_total counter\n",
    );
    for i in 0..n {
        t.push_str(&format!(
            "ngit_sync_connection_attempts_total{{relay=\"{}\",result=\"success\"}} 1\n",
            relay(i)
        ));
    }
    t.push_str("# HELP ngit_sync_relay_connected Relay connection status\n# TYPE ngit_sync_relay_connected gauge\n");
    for i in 0..n {
        t.push_str(&format!(
            "ngit_sync_relay_connected{{relay=\"{}\"}} 3\n",
            relay(i)
        ));
    }
    t.push_str(
        "# HELP ngit_sync_relay_status Relay health status\n# TYPE ngit_sync_relay_status gauge\n",
    );
    for i in 0..n {
        t.push_str(&format!(
            "ngit_sync_relay_status{{relay=\"{}\"}} 1\n",
            relay(i)
        ));
    }
    t
}

#[test]
fn kill_9_ngit_metrics() {
    let s = Scratch::new();
    let body = Arc::new(Mutex::new(String::new()));
    let shared = body.clone();
    let base = serve(Arc::new(move |_| {
        (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.lock().expect("lock").clone().into_bytes(),
        )
    }));
    let source = format!("ngit-metrics:{base}/metrics");
    let make = |s: &Scratch| once(s, &source);
    kill_rounds("ngit-metrics", &s, &make, &mut |round| {
        *body.lock().expect("lock") = ngit_exposition((round + 1) * 25);
    });
    assert_eq!(
        s.count(&["--event-type", "relay_seen"]),
        (ROUNDS * 25) as u64
    );
    // A scrape's events carry the scrape's time (and its state, since when): compare the rest.
    assert_same_as_clean("ngit-metrics", &s, &make, "ngit", &["timestamp", "details"]);
}

// ---------------------------------------------------------------------------------------------
// gitlab

/// A nightly pipeline of project 533: id, created and updated (RFC 3339, ms), its failed jobs.
#[derive(Clone)]
struct Pipeline {
    id: i64,
    created: String,
    updated: String,
    jobs: Vec<i64>,
}

fn job_log(job: i64) -> String {
    if job % 2 == 0 {
        format!(
            "section_start:1:step_script\r\x1b[0K$ make data\nwriting shard {job}\nFATAL: could not write block {} of temporary file: No space left on device\nsection_end:2:step_script\r\x1b[0K\nERROR: Job failed: exit code 1\n",
            8000 + job
        )
    } else {
        format!(
            "$ julia --project -e 'using Pkg; Pkg.test()'\nTest Failed at /builds/research/GLMModels.jl/test/runtests.jl:{}\n  Expression: coef(m) ≈ [1.0, 2.0]\nERROR: LoadError: Some tests did not pass: 41 passed, 1 failed, 0 errored, 0 broken.\nERROR: Job failed: exit code 1\n",
            40 + job % 7
        )
    }
}

/// GitLab's answers (`lib/api/ci/pipelines.rb`, `jobs.rb`) for what the source asks, on one
/// project: `updated_after` as `>=`, newest first, failed jobs, no bridges, plain-text traces.
fn gitlab_answer(target: &str, pipelines: &[Pipeline]) -> Answer {
    let ok = |v: Value| (200, "application/json", v.to_string().into_bytes());
    let missing = (
        404,
        "application/json",
        br#"{"message":"404 Not found"}"#.to_vec(),
    );
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(|v| v.replace("%3A", ":").replace("%2B", "+"))
    };
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.timestamp_millis())
            .unwrap_or(i64::MIN)
    };
    let json = |p: &Pipeline| {
        json!({"id": p.id, "iid": p.id - 900, "project_id": 533, "sha": "8f2e9c1d4b7a",
               "ref": "main", "status": "failed", "source": "schedule",
               "created_at": p.created, "updated_at": p.updated,
               "web_url": format!("https://gitlab.example.com/research/glm/-/pipelines/{}", p.id)})
    };
    let find = |id: &str| pipelines.iter().find(|p| p.id.to_string() == id);
    let job_of = |id: &str| {
        pipelines
            .iter()
            .find_map(|p| p.jobs.iter().find(|j| j.to_string() == id).map(|j| (p, *j)))
    };
    let parts: Vec<&str> = path.trim_start_matches("/api/v4/").split('/').collect();
    match parts.as_slice() {
        ["projects", "533"] => ok(json!({"id": 533, "path_with_namespace": "research/glm",
            "web_url": "https://gitlab.example.com/research/glm", "archived": false,
            "jobs_enabled": true, "builds_access_level": "enabled"})),
        ["projects", "533", "pipelines"] => {
            let after = param("updated_after").map(|a| ms(&a));
            let mut rows: Vec<&Pipeline> = pipelines
                .iter()
                .filter(|_| param("source").is_none_or(|s| s == "schedule"))
                .filter(|p| after.is_none_or(|a| ms(&p.updated) >= a))
                .collect();
            rows.sort_by_key(|p| std::cmp::Reverse(ms(&p.updated)));
            ok(Value::Array(rows.into_iter().map(json).collect()))
        }
        ["projects", "533", "pipeline_schedules"] => ok(json!([])),
        ["projects", "533", "pipelines", id] => match find(id) {
            Some(p) => {
                let mut v = json(p);
                v["yaml_errors"] = Value::Null;
                v["detailed_status"] =
                    json!({"group": "failed", "label": "failed", "text": "failed"});
                ok(v)
            }
            None => missing,
        },
        ["projects", "533", "pipelines", id, "jobs"] => match find(id) {
            Some(p) => ok(Value::Array(
                p.jobs
                    .iter()
                    .map(|j| {
                        json!({"id": j, "name": format!("test {j}"), "stage": "test",
                        "status": "failed", "allow_failure": false,
                        "failure_reason": "script_failure", "finished_at": p.updated,
                        "web_url": format!("https://gitlab.example.com/research/glm/-/jobs/{j}")})
                    })
                    .collect(),
            )),
            None => missing,
        },
        ["projects", "533", "pipelines", id, "bridges"] => match find(id) {
            Some(_) => ok(json!([])),
            None => missing,
        },
        ["projects", "533", "jobs", id] => match job_of(id) {
            Some((_, j)) => ok(
                json!({"id": j, "name": format!("test {j}"), "status": "failed",
                "erased_at": null, "artifacts": [{"file_type": "trace", "size": 1234}]}),
            ),
            None => missing,
        },
        ["projects", "533", "jobs", id, "trace"] => match job_of(id) {
            Some((_, j)) => (200, "text/plain", job_log(j).into_bytes()),
            None => missing,
        },
        _ => (
            404,
            "application/json",
            br#"{"message":"404 Route Not Found"}"#.to_vec(),
        ),
    }
}

#[test]
fn kill_9_gitlab() {
    let s = Scratch::new();
    let world: Arc<Mutex<Vec<Pipeline>>> = Arc::default();
    let shared = world.clone();
    let base = serve(Arc::new(move |target| {
        let pipelines = shared.lock().expect("lock").clone();
        gitlab_answer(target, &pipelines)
    }));
    let cfg = s.path("syncscope.toml");
    std::fs::write(
        &cfg,
        "[gitlab]\ntimezone = \"UTC\"\nmax_in_flight = 2\nprojects = [\"533\"]\n",
    )
    .expect("config");
    let source = format!("gitlab:{base}/api/v4");
    let make = |s: &Scratch| {
        let mut c = s.cmd();
        c.arg("--config")
            .arg(&cfg)
            .args(["ingest", "--once", "-q", "--source", &source])
            .env("SYNCSCOPE_GITLAB_TOKEN", "glpat-kill-test");
        c
    };
    const PER_ROUND: i64 = 3;
    kill_rounds("gitlab", &s, &make, &mut |round| {
        // Pipelines as GitLab makes them: updated now, after every earlier one.
        let iso = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let now = chrono::Utc::now();
        let mut w = world.lock().expect("lock");
        for k in 0..PER_ROUND {
            let id = 1000 + round as i64 * PER_ROUND + k;
            w.push(Pipeline {
                id,
                created: iso(now - chrono::Duration::seconds(90)),
                updated: iso(now + chrono::Duration::milliseconds(k)),
                jobs: vec![id * 10, id * 10 + 1],
            });
        }
        drop(w);
        // Two rounds never share a millisecond.
        std::thread::sleep(Duration::from_millis(5));
    });
    assert_same_as_clean("gitlab", &s, &make, "gitlab", &[]);
    let pipelines = s
        .store()
        .query_row("SELECT count(*) FROM ci_pipelines", [], |r| {
            r.get::<_, i64>(0)
        })
        .expect("ci_pipelines");
    assert_eq!(pipelines, ROUNDS as i64 * PER_ROUND);
}

// ---------------------------------------------------------------------------------------------
// gerrit-ssh

const SSHD: &str = "/usr/sbin/sshd";
/// Events each connection sends (Gerrit's `stream-events` after the connection opens).
const PER_CONNECTION: u64 = 200;

/// A real sshd on 127.0.0.1 whose forced command plays Gerrit: each connection logs its pid
/// (the id of its events, and of the `sleep` it becomes) and sends [`PER_CONNECTION`] new
/// events, then stays open. Returns the sshd, the ingest's PATH (an `ssh` with this test's
/// keys) and the source spec.
fn gerrit_sshd(s: &Scratch) -> (common::KillOnDrop, std::ffi::OsString, String) {
    let d = s.dir.path();
    let (host_key, user_key) = (d.join("host_key"), d.join("user_key"));
    keygen(&host_key);
    keygen(&user_key);
    std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
    let _ = std::fs::create_dir_all("/run/sshd");
    // Single-quoted JSON with the connection's pid and the event number spliced in.
    let line = "'{\"targetNode\":\"m:29418\",\"project\":\"core\",\"ref\":\"refs/heads/c'$$-$i'\",\"targetUri\":\"ssh://r@m:29418/core.git\",\"status\":\"succeeded\",\"refStatus\":\"OK\",\"type\":\"ref-replicated\",\"eventCreatedOn\":'$((1764000000 + i))',\"instanceId\":\"primary-1\"}'";
    write_exec(
        &d.join("stream.sh"),
        &format!(
            "#!/bin/sh\necho $$ >> '{c}'\ni=0\nwhile [ $i -lt {PER_CONNECTION} ]; do\n  echo {line}\n  i=$((i+1))\ndone\nexec sleep 120\n",
            c = d.join("connections").display(),
        ),
    );
    let port = common::free_port();
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nForceCommand {d}/stream.sh\nLogLevel ERROR\n",
            hk = host_key.display(),
            d = d.display()
        ),
    )
    .expect("sshd_config");
    let sshd = common::KillOnDrop(
        Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()
            .expect("start sshd"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let client_config = d.join("ssh_config");
    std::fs::write(
        &client_config,
        format!(
            "Host *\n  IdentityFile {k}\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  \
             StrictHostKeyChecking accept-new\n  LogLevel ERROR\n",
            k = user_key.display(),
            d = d.display()
        ),
    )
    .expect("ssh_config");
    let real_ssh = common::find_tool("ssh").expect("ssh");
    write_exec(
        &bin.join("ssh"),
        &format!(
            "#!/bin/sh\necho $$ >> '{}'\nexec '{}' -F '{}' \"$@\"\n",
            d.join("ssh-clients").display(),
            real_ssh.display(),
            client_config.display()
        ),
    );
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    (sshd, path, format!("gerrit-ssh:{user}@127.0.0.1:{port}"))
}

/// The connections the stand-in served, oldest first (each one's pid).
fn connections(s: &Scratch) -> Vec<String> {
    std::fs::read_to_string(s.path("connections"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Per connection, the event numbers stored for it; fails on a ref stored twice.
fn stored_by_connection(s: &Scratch) -> BTreeMap<String, Vec<u64>> {
    let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for e in s.events_json(&["--event-type", "ref-replicated"]) {
        let text = e.to_string();
        let Some(at) = text.find("refs/heads/c") else {
            panic!("a ref-replicated event the stand-in never sent: {text}");
        };
        let tail = &text[at + "refs/heads/c".len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .collect();
        let (conn, i) = name.split_once('-').expect("c<pid>-<i>");
        assert!(
            seen.insert(name.clone()),
            "stored twice: refs/heads/c{name}"
        );
        by.entry(conn.to_string())
            .or_default()
            .push(i.parse().expect("event number"));
    }
    for v in by.values_mut() {
        v.sort_unstable();
    }
    by
}

#[test]
fn kill_9_gerrit_ssh_through_a_real_sshd() {
    if !common::have_tools(
        "kill_9_gerrit_ssh_through_a_real_sshd",
        &[
            (SSHD, "openssh-server"),
            ("ssh", "openssh-client"),
            ("ssh-keygen", "openssh-client"),
        ],
    ) {
        return;
    }
    let s = Scratch::new();
    let (_sshd, path, source) = gerrit_sshd(&s);
    let follow = |s: &Scratch, tag: &str| {
        let mut c = s.cmd();
        c.env("PATH", &path)
            .args(["ingest", "-q", "--batch-size", "7", "--source", &source]);
        Ingest::spawn(c, s.path(&format!("stderr-{tag}.txt")))
    };
    let stored = || s.count(&["--event-type", "ref-replicated"]);
    // How long a connection takes to be stored whole: the range of the kill instants.
    let start = Instant::now();
    let mut p = follow(&s, "calibrate");
    while stored() < PER_CONNECTION {
        assert!(start.elapsed() < FINISH, "{}", p.stderr_text());
        std::thread::sleep(Duration::from_millis(10));
    }
    let max_ms = (start.elapsed().as_millis() as u64 * 6 / 5).max(20);
    p.kill9();
    let mut rng = Rng::from_env("gerrit-ssh");
    let mut log = vec![format!("gerrit-ssh: kills within 0..={max_ms} ms")];
    let mut landed = 0;
    for round in 0..ROUNDS {
        let ms = rng.upto(max_ms);
        let mut p = follow(&s, &round.to_string());
        std::thread::sleep(Duration::from_millis(ms));
        let hit = p.kill9();
        assert!(
            hit,
            "a following ingest ended by itself: {}",
            p.stderr_text()
        );
        landed += 1;
        log.push(format!(
            "round {round}: SIGKILL at {ms} ms, {} events stored, {} connections",
            stored(),
            connections(&s).len()
        ));
    }
    // The last run: its connection is stored whole, then SIGTERM ends it cleanly.
    let before = connections(&s).len();
    let mut p = follow(&s, "final");
    let start = Instant::now();
    let last = loop {
        let c = connections(&s);
        if c.len() > before {
            let last = c[before].clone();
            if stored_by_connection(&s).get(&last).map_or(0, Vec::len) as u64 == PER_CONNECTION {
                break last;
            }
        }
        assert!(start.elapsed() < FINISH, "{}", p.stderr_text());
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: signalling our own, not yet reaped, child.
    unsafe { libc::kill(p.child.id() as libc::pid_t, libc::SIGTERM) };
    p.finish();
    eprintln!("{}", log.join("\n"));

    let by = stored_by_connection(&s);
    let served = connections(&s);
    for (conn, got) in &by {
        assert!(
            served.contains(conn),
            "events of a connection never made: {conn}"
        );
        let prefix: Vec<u64> = (0..got.len() as u64).collect();
        assert_eq!(
            got, &prefix,
            "connection {conn}: what is stored is not what it sent, in order, up to a point"
        );
    }
    assert_eq!(by[&last].len() as u64, PER_CONNECTION);
    // Every run after one that had stored events says what it never read: a gap from the last
    // event read to its connection (Gerrit does not replay). The last run follows stored events.
    let gaps = s.events_json(&["--event-type", "stream_gap"]);
    assert!(
        !gaps.is_empty() && gaps.len() <= served.len(),
        "{} gaps for {} connections",
        gaps.len(),
        served.len()
    );
    let newest_gap = gaps
        .iter()
        .filter_map(|g| g["details"]["to"].as_str())
        .max()
        .expect("a gap says until when");
    let final_started = std::fs::metadata(s.path("stderr-final.txt"))
        .and_then(|m| m.modified())
        .map(chrono::DateTime::<chrono::Utc>::from)
        .expect("the final run's start");
    assert!(
        chrono::DateTime::parse_from_rfc3339(newest_gap).expect("rfc 3339") >= final_started,
        "the last run, after stored events, recorded no gap: newest gap to {newest_gap}"
    );
    let whole = by
        .values()
        .filter(|v| v.len() as u64 == PER_CONNECTION)
        .count();
    eprintln!(
        "gerrit-ssh: {landed} kills, {} connections, {} with events stored ({whole} whole), {} events",
        served.len(),
        by.len(),
        stored()
    );
    // A SIGKILLed ingest leaves no ssh behind, connected to Gerrit with no reader (each would
    // live until Gerrit next wrote to it).
    let clients: Vec<libc::pid_t> = std::fs::read_to_string(s.path("ssh-clients"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(clients.len() > ROUNDS, "{clients:?}");
    let alive = |pid: libc::pid_t| {
        // Alive and not a zombie: /proc/PID/stat's state field.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|st| {
                st.rsplit(')')
                    .next()
                    .map(|r| !r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left: Vec<libc::pid_t> = clients.clone();
    while !left.is_empty() && Instant::now() < deadline {
        left.retain(|p| alive(*p));
        std::thread::sleep(Duration::from_millis(50));
    }
    let orphans = left.len();
    for pid in left {
        // SAFETY: kill(2) of an ssh this test's ingests started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert_eq!(
        orphans,
        0,
        "of {} ssh clients, {orphans} outlived their SIGKILLed ingest",
        clients.len()
    );
    // The `sleep`s the forced commands became (their pids are the connection ids): ended here,
    // by id, rather than left to their timeout.
    for pid in served.iter().filter_map(|p| p.parse::<libc::pid_t>().ok()) {
        // SAFETY: kill(2) of a process this test's sshd started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}
