//! `gerrit-events:` and `syncscope status` end to end, on the real sample streams
//! (tests/fixtures/gerrit) and on streams written here for the layouts the samples lack:
//! the answer must equal what the replication-status plugin answers for the same events.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{fixture, Scratch};
use serde_json::Value;

fn ingest_fixtures(s: &Scratch) {
    let out = s.ingest_once(&[
        format!(
            "gerrit-events:{}",
            fixture("gerrit/push_stream_v3.5plus.jsonl").display()
        ),
        format!(
            "gerrit-events:{}",
            fixture("gerrit/mixed_stream_events.jsonl").display()
        ),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ingest --once` of the sample replication_log, written in CET.
fn ingest_sample_log(s: &Scratch) -> std::process::Output {
    s.cmd()
        .args([
            "ingest",
            "--once",
            "-q",
            "--log-timezone",
            "Europe/Berlin",
            "--source",
        ])
        .arg(format!(
            "gerrit-log:{}",
            fixture("gerrit/replication_log.txt").display()
        ))
        .output()
        .expect("run")
}

fn status_json(s: &Scratch, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["status", "--format", "json"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status json: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), v)
}

/// The plugin's fields of a payload (extra fields are allowed next to them).
fn plugin_view(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("instance");
        o.remove("deletions_not_replicated");
    }
    if let Some(remotes) = v["remotes"].as_object_mut() {
        for remote in remotes.values_mut() {
            if let Some(refs) = remote["status"].as_object_mut() {
                for r in refs.values_mut() {
                    let keep = serde_json::json!({
                        "type": r["type"], "status": r["status"], "when": r["when"]
                    });
                    *r = keep;
                }
            }
        }
    }
    v
}

fn sample(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(&format!("gerrit/{name}"))).expect("fixture");
    serde_json::from_str(text.trim_start_matches(")]}'").trim()).expect("sample json")
}

#[test]
fn the_answer_equals_the_plugins_for_the_same_events() {
    let s = Scratch::new();
    ingest_fixtures(&s);
    let (code, v) = status_json(
        &s,
        &[
            "--project",
            "tools/build",
            "--remote",
            "https://github.com/example-org/tools-build.git",
        ],
    );
    assert_eq!(code, Some(1), "FAILED exits 1");
    assert_eq!(plugin_view(&v), sample("replication_status_failed.json"));
    assert_eq!(
        plugin_view(&v),
        sample("replication_status_raw_http_body.txt")
    );

    let (code, v) = status_json(
        &s,
        &[
            "--project",
            "platform/core",
            "--remote",
            "ssh://replication@mirror-eu.example.com:29418/platform/core.git",
        ],
    );
    assert_eq!(code, Some(0));
    assert_eq!(plugin_view(&v), sample("replication_status_ok.json"));

    let (code, v) = status_json(
        &s,
        &[
            "--project",
            "platform/core",
            "--remote",
            "ssh://unknown.example.com/platform/core.git",
        ],
    );
    assert_eq!(code, Some(0), "an unknown pair answers like the plugin");
    assert_eq!(
        plugin_view(&v),
        sample("replication_status_unknown_remote_empty.json")
    );
    assert_eq!(v["instance"], Value::Null);
}

#[test]
fn all_pairs_worst_first_and_the_table() {
    let s = Scratch::new();
    ingest_fixtures(&s);
    let (code, v) = status_json(&s, &[]);
    assert_eq!(code, Some(1));
    let list = v.as_array().expect("array of payloads");
    assert!(list.len() >= 9, "{list:#?}");
    assert_eq!(list[0]["status"], "FAILED", "worst first");
    assert!(list
        .iter()
        .all(|p| p["remotes"].as_object().map(|m| m.len()) == Some(1)));
    let all_refs: Vec<String> = list
        .iter()
        .flat_map(|p| {
            p["remotes"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
                .flat_map(|r| {
                    r["status"]
                        .as_object()
                        .into_iter()
                        .flat_map(|s| s.keys().cloned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        !all_refs.iter().any(|r| r == "..all.."),
        "..all.. is never a ref"
    );

    let (code, _) = status_json(&s, &["--project", "platform/core"]);
    assert_eq!(code, Some(0), "platform/core is OK everywhere");

    let table = s.run(&["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    let first = text.lines().next().unwrap_or_default();
    assert!(first.starts_with("FAILED"), "{text}");
    assert!(text.contains("REJECTED_NONFASTFORWARD"), "{text}");
    assert!(text.contains("NOT_ATTEMPTED"), "{text}");
}

fn stream(s: &Scratch, name: &str, lines: &[&str]) -> String {
    let p = s.path(name);
    std::fs::write(&p, lines.join("\n") + "\n").expect("write stream");
    format!("gerrit-events:{}", p.display())
}

#[test]
fn retries_attempts_older_and_pull_layouts_and_bad_lines() {
    let s = Scratch::new();
    let src = stream(
        &s,
        "layouts.jsonl",
        &[
            // <= 3.3: targetNode only.
            r#"{"project":"old","ref":"refs/heads/main","targetNode":"mirror:29418","type":"ref-replication-scheduled","eventCreatedOn":100}"#,
            r#"{"project":"old","ref":"refs/heads/main","targetNode":"mirror:29418","status":"failed","refStatus":"REJECTED_OTHER_REASON","type":"ref-replicated","eventCreatedOn":101}"#,
            r#"{"project":"old","ref":"refs/heads/main","targetNode":"mirror:29418","type":"ref-replication-scheduled","eventCreatedOn":102}"#,
            // A failure without a reschedule.
            r#"{"project":"old","ref":"refs/heads/dev","targetNode":"mirror:29418","type":"ref-replication-scheduled","eventCreatedOn":103}"#,
            r#"{"project":"old","ref":"refs/heads/dev","targetNode":"mirror:29418","status":"failed","type":"ref-replicated","eventCreatedOn":104}"#,
            r#"{"project":"old","ref":"refs/heads/dev","nodesCount":1,"type":"ref-replication-done","eventCreatedOn":104}"#,
            // Pull, <= 3.4 and >= 3.5.
            r#"{"project":"pulled","ref":"refs/heads/a","sourceNode":"primary:8080","status":"succeeded","refUpdateResult":"FAST_FORWARD","type":"fetch-ref-replicated","eventCreatedOn":105}"#,
            r#"{"refUpdateResult":"NEW","project":"pulled","ref":"refs/heads/b","status":"succeeded","targetUri":"http://primary:8080/pulled.git","type":"fetch-ref-replicated","eventCreatedOn":105}"#,
            // Whole-project push and the noise of an ssh session.
            r#"{"project":"old","ref":"..all..","targetNode":"mirror:29418","type":"ref-replication-scheduled","eventCreatedOn":106}"#,
            "Connection to gerrit.example.com closed by remote host.",
            r#"{"type":"dropped-output","eventCreatedOn":107}"#,
            r#"{"project":"old","ref":"refs/heads/x","targetNode":"mirror:29418","status":"failed","type":"ref-replicated""#,
        ],
    );
    let out = s.ingest_once(std::slice::from_ref(&src));
    assert_eq!(out.status.code(), Some(0));
    let (code, v) = status_json(&s, &["--project", "old", "--remote", "mirror:29418"]);
    assert_eq!(code, Some(1), "refs/heads/dev failed for good");
    let refs = &v["remotes"]["mirror:29418"]["status"];
    assert_eq!(refs["refs/heads/main"]["status"], "SCHEDULED");
    assert_eq!(refs["refs/heads/main"]["retrying"], true);
    assert_eq!(refs["refs/heads/main"]["attempts"], 2);
    assert_eq!(
        refs["refs/heads/main"]["last_error"],
        "REJECTED_OTHER_REASON"
    );
    assert_eq!(refs["refs/heads/dev"]["status"], "FAILED");
    assert_eq!(refs["refs/heads/dev"]["retrying"], false);
    assert!(refs.get("..all..").is_none());
    assert!(
        refs.get("refs/heads/x").is_none(),
        "a truncated line changes nothing"
    );
    let (_, v) = status_json(&s, &["--project", "pulled"]);
    let pulls: Vec<&Value> = v.as_array().expect("array").iter().collect();
    assert_eq!(pulls.len(), 2);
    for p in pulls {
        let remote = p["remotes"].as_object().expect("remotes");
        let (name, st) = remote.iter().next().expect("one remote");
        assert!(name == "primary:8080" || name == "http://primary:8080/pulled.git");
        for r in st["status"].as_object().expect("refs").values() {
            assert_eq!(
                (r["type"].as_str(), r["status"].as_str()),
                (Some("PULL"), Some("SUCCEEDED"))
            );
        }
    }
    // The bad lines are rejects at their line numbers; the dropped-output is a warning event.
    let rejects = s.run(&["rejects", "--format", "json"]);
    let rejects: Value = serde_json::from_slice(&rejects.stdout).expect("rejects json");
    let mut lines: Vec<String> = rejects
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["location"].as_str())
        .map(|l| l.rsplit(':').next().unwrap_or_default().to_string())
        .collect();
    lines.sort();
    assert_eq!(lines, ["10", "12"]);
    let dropped = s.events_json(&["--event-type", "dropped-output"]);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0]["severity"], "warning");

    // Read again (a second ingest, or the same stream on stdin): nothing counts twice.
    let out = s.ingest_once(std::slice::from_ref(&src));
    assert_eq!(out.status.code(), Some(0));
    let mut child = s
        .cmd()
        .args(["ingest", "--once", "-q", "--source", "gerrit-events:-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn");
    let text = std::fs::read(s.path("layouts.jsonl")).expect("read");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&text)
        .expect("write stdin");
    assert!(child.wait().expect("wait").success());
    let (_, v) = status_json(&s, &["--project", "old", "--remote", "mirror:29418"]);
    assert_eq!(
        v["remotes"]["mirror:29418"]["status"]["refs/heads/main"]["attempts"],
        2
    );
}

/// A fake `ssh` first on PATH: each run appends its arguments to `calls`, then plays the
/// script `run-N.sh` (N = 1, 2, ...; the last one again when there are no more).
fn fake_ssh(s: &Scratch, runs: &[&str]) -> std::ffi::OsString {
    use std::os::unix::fs::PermissionsExt;
    let bin = s.path("bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    for (i, body) in runs.iter().enumerate() {
        std::fs::write(s.path(&format!("run-{}.sh", i + 1)), body).expect("write run");
    }
    let dir = s.dir.path().display().to_string();
    let script = format!(
        "#!/bin/sh\n\
         echo \"$@\" >> '{dir}/calls'\n\
         n=$(wc -l < '{dir}/calls' | tr -d ' ')\n\
         [ -f '{dir}/run-'$n'.sh' ] || n={last}\n\
         exec sh '{dir}/run-'$n'.sh'\n",
        last = runs.len()
    );
    let ssh = bin.join("ssh");
    std::fs::write(&ssh, script).expect("write fake ssh");
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut joined = bin.into_os_string();
    joined.push(":");
    joined.push(path);
    joined
}

#[test]
fn gerrit_ssh_reads_the_stream_and_marks_the_gap_when_it_drops() {
    let s = Scratch::new();
    let push = fixture("gerrit/push_stream_v3.5plus.jsonl");
    let mixed = fixture("gerrit/mixed_stream_events.jsonl");
    let path = fake_ssh(
        &s,
        &[
            // First connection: some events, then the connection drops.
            &format!(
                "head -n 20 '{}'\necho 'Connection to gerrit closed by remote host.' >&2\nexit 255\n",
                push.display()
            ),
            // Second: the rest, then it stays connected.
            &format!(
                "tail -n +21 '{}'\ncat '{}'\nexec sleep 60\n",
                push.display(),
                mixed.display()
            ),
        ],
    );
    let mut child = s
        .cmd()
        .env("PATH", &path)
        .args([
            "ingest",
            "-q",
            "--source",
            "gerrit-ssh:mon@gerrit.example.com",
        ])
        .spawn()
        .expect("spawn ingest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.count(&["--source", "gerrit"]) < 53 + 9 + 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} events",
            s.count(&["--source", "gerrit"])
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));

    let gaps = s.events_json(&["--event-type", "stream_gap"]);
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    let summary = gaps[0]["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("stream lost ") && summary.contains("may be missing"),
        "{summary}"
    );
    assert_eq!(s.count(&["--source", "gerrit"]), 53 + 9 + 1);
    let calls = std::fs::read_to_string(s.path("calls")).expect("calls");
    let first = calls.lines().next().unwrap_or_default();
    assert!(first.contains("-p 29418"), "{first}");
    assert!(first.contains("BatchMode=yes"), "{first}");
    assert!(
        first.contains("mon@gerrit.example.com gerrit stream-events"),
        "{first}"
    );
    assert!(first.contains("-s ref-replicated"), "{first}");
    // The state is the same as from the files.
    let (_, v) = status_json(
        &s,
        &[
            "--project",
            "tools/build",
            "--remote",
            "https://github.com/example-org/tools-build.git",
        ],
    );
    assert_eq!(plugin_view(&v), sample("replication_status_failed.json"));
}

#[test]
fn gerrit_ssh_once_reports_why_ssh_failed() {
    let s = Scratch::new();
    let path = fake_ssh(
        &s,
        &["echo 'mon@gerrit.example.com: Permission denied (publickey).' >&2\nexit 255\n"],
    );
    let out = s
        .cmd()
        .env("PATH", &path)
        .args([
            "ingest",
            "--once",
            "-q",
            "--source",
            "gerrit-ssh:mon@gerrit.example.com:29418",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Permission denied (publickey)"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn replication_log_records_with_traces_zones_and_push_ids() {
    let s = Scratch::new();
    let out = ingest_sample_log(&s);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 46 lines, 4 of them a stack trace: 42 records.
    assert_eq!(s.count(&["--source", "gerrit"]), 42);
    let push = s.events_json(&["--correlation-id", "e1f20c47"]);
    let kinds: Vec<&str> = push
        .iter()
        .filter_map(|e| e["event_type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "log_scheduled",
            "log_started",
            "log_transport_error",
            "log_consolidated",
            "log_started",
            "log_refs",
            "log_completed"
        ]
    );
    // 10:31:30,020 CET is 09:31:30.020 UTC.
    assert_eq!(push[0]["timestamp"], "2025-03-14T09:31:30.020Z");
    let err = &push[2];
    assert_eq!(
        err["severity"], "error",
        "`Cannot replicate to` is logged at error level"
    );
    assert!(err["details"]["trace"]
        .as_str()
        .unwrap_or_default()
        .contains("SshdSessionFactory.getSession"));
    assert_eq!(push[6]["duration_ms"], 885);

    // A bad zone is a usage error.
    let out = s.run(&[
        "ingest",
        "--once",
        "--log-timezone",
        "Mars/Olympus",
        "--source",
        "jsonl:-",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_followed_log_keeps_a_trace_with_its_record_across_writes() {
    let s = Scratch::new();
    let log = s.path("replication_log");
    std::fs::write(&log, "[2025-03-14 10:32:06,118] Cannot replicate to ssh://r@m/p.git [CONTEXT pushOneId=\"e1f20c47\" ]\n").expect("write");
    let mut child = s
        .cmd()
        .args([
            "ingest",
            "-q",
            "--poll-interval-ms",
            "100",
            "--log-timezone",
            "UTC",
            "--source",
        ])
        .arg(format!("gerrit-log:{}", log.display()))
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open");
    f.write_all(
        b"org.eclipse.jgit.errors.TransportException: Connection timed out\n\tat a.B(B.java:1)\n",
    )
    .expect("append");
    f.write_all(b"[2025-03-14 10:33:07,012] Replication to ssh://r@m/p.git completed in 885ms, 97107ms delay, 1 retries [CONTEXT pushOneId=\"e1f20c47\" ]\nthis line has no record\n")
        .expect("append");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.count(&["--source", "gerrit"]) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "records did not arrive"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    let events = s.events_json(&["--correlation-id", "e1f20c47"]);
    assert_eq!(events.len(), 2);
    assert!(events[0]["summary"]
        .as_str()
        .unwrap_or_default()
        .ends_with("Connection timed out"));
    assert!(events[0]["details"]["trace"]
        .as_str()
        .unwrap_or_default()
        .contains("B.java:1"));
    assert_eq!(
        s.count(&["--source", "gerrit"]),
        2,
        "the stray line is a reject, not a record"
    );
}

#[test]
fn log_errors_are_joined_to_their_refs_by_push_id() {
    let s = Scratch::new();
    ingest_fixtures(&s);
    let out = ingest_sample_log(&s);
    assert_eq!(out.status.code(), Some(0));
    let (_, v) = status_json(
        &s,
        &[
            "--project",
            "tools/build",
            "--remote",
            "file:///mnt/dr/git/tools/build.git",
        ],
    );
    let r = &v["remotes"]["file:///mnt/dr/git/tools/build.git"]["status"]["refs/tags/v2.4.0"];
    assert_eq!(r["status"], "FAILED", "the log does not change the status");
    assert!(
        r["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("repository not found"),
        "{r}"
    );
    // A transport error (its text in the stack trace) on a push that later succeeded.
    let remote = "ssh://replication@mirror-us.example.com:29418/web/frontend.git";
    let (_, v) = status_json(&s, &["--project", "web/frontend", "--remote", remote]);
    let r = &v["remotes"][remote]["status"]["refs/heads/master"];
    assert_eq!(r["status"], "SUCCEEDED");
    assert!(
        r["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("Connection timed out"),
        "{r}"
    );
    // Only stored events count: the same log again changes nothing and adds nothing.
    let before = s.count(&["--source", "gerrit"]);
    let out = ingest_sample_log(&s);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(s.count(&["--source", "gerrit"]), before);
}

/// An HTTP server that answers 401 without the expected basic auth, else the current answer.
struct RestServer {
    url: String,
    answer: std::sync::Arc<std::sync::Mutex<(u16, String)>>,
}

impl RestServer {
    fn start(auth: &'static str, first: (u16, String)) -> RestServer {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let answer = std::sync::Arc::new(std::sync::Mutex::new(first));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let authorized = req.lines().any(|l| {
                    l.to_ascii_lowercase().starts_with("authorization:") && l.contains(auth)
                });
                let (status, body) = if authorized {
                    shared.lock().expect("lock").clone()
                } else {
                    (401, "Unauthorized".to_string())
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body.as_bytes());
            }
        });
        RestServer {
            url: format!(
                "http://127.0.0.1:{port}/a/projects/tools%2Fbuild/remotes/https%3A%2F%2Fgithub.com%2Fexample-org%2Ftools-build.git/replication-status"
            ),
            answer,
        }
    }
}

fn rest_ingest(s: &Scratch, url: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut c = s.cmd();
    c.env_remove("SYNCSCOPE_GERRIT_USER")
        .env_remove("SYNCSCOPE_GERRIT_PASSWORD")
        .env_remove("SYNCSCOPE_GERRIT_CREDENTIALS");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(["ingest", "--once", "-q", "--source"])
        .arg(format!("gerrit-rest:{url}"))
        .output()
        .expect("run")
}

#[test]
fn gerrit_rest_with_credentials_and_gerrits_own_errors() {
    let s = Scratch::new();
    // base64("mon:s3cret")
    let server = RestServer::start(
        "Basic bW9uOnMzY3JldA==",
        (
            200,
            std::fs::read_to_string(fixture("gerrit/replication_status_raw_http_body.txt"))
                .expect("fixture"),
        ),
    );
    let out = rest_ingest(&s, &server.url, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401") && err.contains("SYNCSCOPE_GERRIT_USER"),
        "{err}"
    );
    assert!(!err.contains("s3cret"));

    let out = rest_ingest(
        &s,
        &server.url,
        &[
            ("SYNCSCOPE_GERRIT_USER", "mon"),
            ("SYNCSCOPE_GERRIT_PASSWORD", "s3cret"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = s.events_json(&["--event-type", "rest_ref_status"]);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["severity"], "warning");
    let (code, v) = status_json(
        &s,
        &[
            "--project",
            "tools/build",
            "--remote",
            "https://github.com/example-org/tools-build.git",
        ],
    );
    assert_eq!(code, Some(1));
    assert_eq!(plugin_view(&v), sample("replication_status_failed.json"));

    // Credentials from a file; Gerrit's 403 message is shown.
    let creds = s.path("gerrit-creds");
    std::fs::write(&creds, "mon:s3cret\n").expect("write creds");
    server.answer.lock().expect("lock").0 = 403;
    server.answer.lock().expect("lock").1 = "Administrate Server or Project owner required".into();
    let out = rest_ingest(
        &s,
        &server.url,
        &[(
            "SYNCSCOPE_GERRIT_CREDENTIALS",
            creds.to_str().expect("utf-8"),
        )],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("403") && err.contains("Administrate Server or Project owner required"),
        "{err}"
    );
    assert!(!err.contains("s3cret"));
}

#[test]
fn gerrit_rest_fills_what_streams_missed_but_never_rolls_back() {
    let s = Scratch::new();
    ingest_fixtures(&s);
    let body = |status: &str, when: i64| {
        format!("{{\"remotes\":{{\"https://github.com/example-org/tools-build.git\":{{\"status\":{{\"refs/heads/main\":{{\"type\":\"PUSH\",\"status\":\"{status}\",\"when\":{when}}},\"refs/heads/lost\":{{\"type\":\"PUSH\",\"status\":\"SUCCEEDED\",\"when\":{when}}}}}}}}},\"status\":\"OK\",\"project\":\"tools/build\"}}")
    };
    let server = RestServer::start(
        "Basic bW9uOnMzY3JldA==",
        (200, body("SUCCEEDED", 1741944000)),
    );
    let env = [
        ("SYNCSCOPE_GERRIT_USER", "mon"),
        ("SYNCSCOPE_GERRIT_PASSWORD", "s3cret"),
    ];
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    let remote = "https://github.com/example-org/tools-build.git";
    let (_, v) = status_json(&s, &["--project", "tools/build", "--remote", remote]);
    let refs = &v["remotes"][remote]["status"];
    assert_eq!(
        refs["refs/heads/main"]["status"], "FAILED",
        "an older snapshot does not roll back"
    );
    assert_eq!(
        refs["refs/heads/lost"]["status"], "SUCCEEDED",
        "what the stream missed is filled in"
    );
    *server.answer.lock().expect("lock") = (200, body("SUCCEEDED", 1741950000));
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    let (code, v) = status_json(&s, &["--project", "tools/build", "--remote", remote]);
    assert_eq!(
        v["remotes"][remote]["status"]["refs/heads/main"]["status"],
        "SUCCEEDED"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn gerrit_ssh_never_merges_an_event_after_a_reconnect_or_a_restart() {
    let s = Scratch::new();
    // Gerrit never sends an event twice: the same line after a reconnect, or after a restart
    // of the ingest, is a new event of the same second (a ref scheduled again).
    let line = r#"{"targetNode":"m:29418","project":"core","ref":"refs/heads/master","targetUri":"ssh://r@m:29418/core.git","type":"ref-replication-scheduled","eventCreatedOn":1741944600,"instanceId":"primary-1"}"#;
    let path = fake_ssh(
        &s,
        &[
            &format!("echo '{line}'\nexit 255\n"),
            &format!("echo '{line}'\nexec sleep 60\n"),
            &format!("echo '{line}'\nexec sleep 60\n"),
        ],
    );
    let scheduled = || s.count(&["--event-type", "ref-replication-scheduled"]);
    let follow_until = |n: u64| {
        let mut child = s
            .cmd()
            .env("PATH", &path)
            .args([
                "ingest",
                "-q",
                "--source",
                "gerrit-ssh:mon@gerrit.example.com",
            ])
            .spawn()
            .expect("spawn ingest");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while scheduled() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} events",
                scheduled()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        assert_eq!(child.wait().expect("wait").code(), Some(0));
    };
    follow_until(2);
    follow_until(3);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(scheduled(), 3, "one event per line sent, none merged");
}

#[test]
fn a_rest_answer_that_omits_a_ref_retires_it_and_deletions_stay_apart() {
    let s = Scratch::new();
    let remote = "ssh://replication@mirror.example.org:29418/web/site.git";
    let body = |refs: &[&str]| {
        let list: Vec<String> = refs
            .iter()
            .map(|r| {
                format!(
                    "\"{r}\":{{\"type\":\"PUSH\",\"status\":\"SUCCEEDED\",\"when\":1741950000}}"
                )
            })
            .collect();
        format!(
            ")]}}'\n{{\"remotes\":{{\"{remote}\":{{\"status\":{{{}}}}}}},\"status\":\"OK\",\"project\":\"web/site\"}}",
            list.join(",")
        )
    };
    // The stream: feature-x deleted on the primary, its deletion refused by the mirror.
    let out = s.ingest_once(&[format!(
        "gerrit-events:{}",
        fixture("gerrit/deletions_stream.jsonl").display()
    )]);
    assert_eq!(out.status.code(), Some(0));
    let server = RestServer::start(
        "Basic bW9uOnMzY3JldA==",
        (200, body(&["refs/heads/main", "refs/heads/feature-y"])),
    );
    let env = [
        ("SYNCSCOPE_GERRIT_USER", "mon"),
        ("SYNCSCOPE_GERRIT_PASSWORD", "s3cret"),
    ];
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    let pair = ["--project", "web/site", "--remote", remote];
    let (code, v) = status_json(&s, &pair);
    assert_eq!(code, Some(0), "{v}");
    let mut refs: Vec<String> = v["remotes"][remote]["status"]
        .as_object()
        .expect("refs")
        .keys()
        .cloned()
        .collect();
    refs.sort();
    assert_eq!(refs, ["refs/heads/feature-y", "refs/heads/main"]);
    assert_eq!(
        v["instance"], "primary-a",
        "the answer fills the pair's instance"
    );
    assert!(
        v["deletions_not_replicated"]["refs/heads/feature-x"].is_object(),
        "a REST poll that does not list it leaves the refused deletion apart: {v}"
    );
    // feature-y is deleted: the next answer omits it, and it is retired.
    *server.answer.lock().expect("lock") = (200, body(&["refs/heads/main"]));
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    let (code, v) = status_json(&s, &pair);
    assert_eq!(code, Some(0));
    let refs: Vec<&String> = v["remotes"][remote]["status"]
        .as_object()
        .expect("refs")
        .keys()
        .collect();
    assert_eq!(refs, ["refs/heads/main"], "{v}");
    let retired = s.events_json(&["--event-type", "rest_ref_retired"]);
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0]["subject"], "refs/heads/feature-y");
    // Polled again: nothing new.
    let before = s.count(&[]);
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    assert_eq!(s.count(&[]), before);
}

#[test]
fn a_rest_answer_polled_again_after_a_lost_checkpoint_is_the_same_event() {
    let s = Scratch::new();
    let body = |status: &str, when: i64| {
        format!("{{\"remotes\":{{\"https://h.example/p.git\":{{\"status\":{{\"refs/heads/main\":{{\"type\":\"PUSH\",\"status\":\"{status}\",\"when\":{when}}}}}}}}},\"status\":\"OK\",\"project\":\"p\"}}")
    };
    let server = RestServer::start("Basic bW9uOnMzY3JldA==", (200, body("FAILED", 1741944000)));
    let env = [
        ("SYNCSCOPE_GERRIT_USER", "mon"),
        ("SYNCSCOPE_GERRIT_PASSWORD", "s3cret"),
    ];
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    *server.answer.lock().expect("lock") = (200, body("SUCCEEDED", 1741944060));
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    assert_eq!(s.count(&["--event-type", "rest_ref_status"]), 2);
    // What the last poll saw is lost (a store copied without its checkpoints, say): the same
    // answer polled again is the same fact, stored once.
    {
        let c = rusqlite::Connection::open(s.db()).expect("open store");
        c.execute("DELETE FROM checkpoints", []).expect("forget");
    }
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    assert_eq!(s.count(&["--event-type", "rest_ref_status"]), 2);
}

/// Two primaries report refs/heads/main to one remote; the REST answers below are one node's.
fn two_instances(s: &Scratch) -> RestServer {
    let line = |instance: &str, status: &str, when: i64| {
        format!(
            r#"{{"targetNode":"m:29418","project":"core","ref":"refs/heads/main","targetUri":"ssh://r@m:29418/core.git","status":"{status}","refStatus":"REJECTED_OTHER_REASON","type":"ref-replicated","eventCreatedOn":{when},"instanceId":"{instance}"}}"#
        )
    };
    let lines = [
        line("primary-a", "failed", 1741944600),
        line("primary-b", "failed", 1741944601),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = s.ingest_once(&[stream(s, "two.jsonl", &refs)]);
    assert_eq!(out.status.code(), Some(0));
    let body = "{\"remotes\":{\"ssh://r@m:29418/core.git\":{\"status\":{\"refs/heads/main\":{\"type\":\"PUSH\",\"status\":\"SUCCEEDED\",\"when\":1741950000},\"refs/heads/rest-only\":{\"type\":\"PUSH\",\"status\":\"SUCCEEDED\",\"when\":1741950000}}}},\"status\":\"OK\",\"project\":\"core\"}";
    RestServer::start("Basic bW9uOnMzY3JldA==", (200, body.to_string()))
}

/// The refs of the pair on `instance`, with their status.
fn instance_refs(s: &Scratch, instance: &str) -> Vec<(String, String)> {
    let remote = "ssh://r@m:29418/core.git";
    let (_, v) = status_json(
        s,
        &[
            "--project",
            "core",
            "--remote",
            remote,
            "--instance",
            instance,
        ],
    );
    let mut refs: Vec<(String, String)> = v["remotes"][remote]["status"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(r, st)| (r.clone(), st["status"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    refs.sort();
    refs
}

#[test]
fn a_rest_source_that_names_its_instance_answers_for_that_node_only() {
    let env = [
        ("SYNCSCOPE_GERRIT_USER", "mon"),
        ("SYNCSCOPE_GERRIT_PASSWORD", "s3cret"),
    ];
    let s = Scratch::new();
    let server = two_instances(&s);
    let out = rest_ingest(&s, &format!("{},instance=primary-b", server.url), &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        instance_refs(&s, "primary-a"),
        [("refs/heads/main".to_string(), "FAILED".to_string())],
        "primary-a's rows are not primary-b's answer"
    );
    assert_eq!(
        instance_refs(&s, "primary-b"),
        [
            ("refs/heads/main".to_string(), "SUCCEEDED".to_string()),
            ("refs/heads/rest-only".to_string(), "SUCCEEDED".to_string())
        ],
        "the answer is primary-b's, a ref only it names included"
    );
    assert!(instance_refs(&s, "none").is_empty());
    let ev = s.events_json(&["--event-type", "rest_ref_status"]);
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e["device_id"] == "primary-b"), "{ev:?}");
    // primary-b's next answer omits main: retired on primary-b only.
    *server.answer.lock().expect("lock") = (200, "{\"remotes\":{\"ssh://r@m:29418/core.git\":{\"status\":{\"refs/heads/rest-only\":{\"type\":\"PUSH\",\"status\":\"SUCCEEDED\",\"when\":1741950000}}}},\"status\":\"OK\",\"project\":\"core\"}".into());
    let out = rest_ingest(&s, &format!("{},instance=primary-b", server.url), &env);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        instance_refs(&s, "primary-a"),
        [("refs/heads/main".to_string(), "FAILED".to_string())]
    );
    assert_eq!(
        instance_refs(&s, "primary-b"),
        [("refs/heads/rest-only".to_string(), "SUCCEEDED".to_string())]
    );

    // Without the option: the answer fills the ref on every instance that has it, and a ref no
    // stream reported goes, with two instances seen, to the node without an id (a guess).
    let s = Scratch::new();
    let server = two_instances(&s);
    assert_eq!(rest_ingest(&s, &server.url, &env).status.code(), Some(0));
    for instance in ["primary-a", "primary-b"] {
        assert_eq!(
            instance_refs(&s, instance),
            [("refs/heads/main".to_string(), "SUCCEEDED".to_string())],
            "{instance}"
        );
    }
    assert_eq!(
        instance_refs(&s, "none"),
        [("refs/heads/rest-only".to_string(), "SUCCEEDED".to_string())]
    );

    // `instance=none`: the node without an id, whose rows are none of the streams'.
    let s = Scratch::new();
    let server = two_instances(&s);
    let out = rest_ingest(&s, &format!("{},instance=none", server.url), &env);
    assert_eq!(out.status.code(), Some(0));
    for instance in ["primary-a", "primary-b"] {
        assert_eq!(
            instance_refs(&s, instance),
            [("refs/heads/main".to_string(), "FAILED".to_string())],
            "{instance}"
        );
    }
    assert_eq!(
        instance_refs(&s, "none"),
        [
            ("refs/heads/main".to_string(), "SUCCEEDED".to_string()),
            ("refs/heads/rest-only".to_string(), "SUCCEEDED".to_string())
        ]
    );
}
