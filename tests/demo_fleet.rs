//! `syncscope demo --fleet --headless` against the real servers it starts (nats-server with
//! JetStream and Prometheus, child processes): the forwarded kinds end in the store exactly as
//! a direct ingest of the same simulated files stores them (nothing lost, nothing twice, across
//! a `kill -9` of a forwarder, which is reported and restarted), the relays come from the
//! `prometheus:` source, Prometheus scrapes `syncscope serve` (`up == 1`), and afterwards no
//! child process is left (checked by pid) and no temporary directory. Also: Ctrl-C, a server
//! killed under the demo, a `kill -9` of the demo itself, a missing or failing server, and the
//! UI (what runs where printed first, a dead forwarder a fault on the sources line). Skipped
//! by name when nats-server or prometheus is missing (under env CI that is a failure).

mod common;

use common::pty::Pty;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bin, have_tool, Scratch};
use serde_json::Value;

const NATS: &str = "/usr/sbin/nats-server";
const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The demo as a child, its stderr collected line by line; killed when dropped.
struct Demo {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Demo {
    fn start(tmp: &Path, args: &[&str], env: &[(&str, &str)]) -> Demo {
        let mut c = Command::new(bin());
        c.arg("demo").arg("--fleet").args(args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SYNCSCOPE_") {
                c.env_remove(&k);
            }
        }
        c.env("TMPDIR", tmp).env("NO_COLOR", "1");
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("start the demo");
        let err = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { return };
                l.lock().unwrap().push(line);
            }
        });
        Demo {
            child: Some(child),
            lines,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits for a line `pick` answers for; panics with stderr after `secs`.
    fn wait_line<T>(
        &mut self,
        secs: u64,
        what: &str,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = self.lines.lock().unwrap().iter().find_map(|l| pick(l)) {
                return v;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && start.elapsed() < Duration::from_secs(secs),
                "no {what} (exit {exited:?}) in:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the exit; the status code and all of stderr.
    fn finish(&mut self, secs: u64) -> (Option<i32>, String) {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the demo did not end within {secs} s:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status.code(), self.text())
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every `pid N` of a line.
fn pids_in(line: &str) -> Vec<u32> {
    line.split("pid ")
        .skip(1)
        .filter_map(|s| {
            s.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|d| d.parse().ok())
        })
        .collect()
}

/// Processes whose command line mentions `needle` (a demo's directory), by pid.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) {
            out.push((pid, cmd));
        }
    }
    out
}

/// A pid that is gone (or a zombie: dead, its parent not yet done with it), or reused by a
/// process that has nothing to do with the demo.
fn gone(pid: u32, dir: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next());
    if matches!(state, Some('Z' | 'X')) {
        return true;
    }
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Err(_) => true,
        Ok(c) => !String::from_utf8_lossy(&c).contains(dir),
    }
}

fn query(base: &str, q: &str) -> Option<Vec<Value>> {
    let mut u = reqwest::Url::parse(&format!("{base}/api/v1/query")).ok()?;
    u.query_pairs_mut().append_pair("query", q);
    let body = reqwest::blocking::get(u).ok()?.text().ok()?;
    let v: Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"].as_array().cloned()
}

fn first_value(r: &[Value]) -> Option<String> {
    r.first()
        .and_then(|x| x["value"][1].as_str())
        .map(str::to_string)
}

/// `syncscope --db DB ARGS` (no user config), stdout.
fn cli(db: &Path, home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("SYNCSCOPE_DB")
        .env_remove("SYNCSCOPE_CONFIG")
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("XDG_DATA_HOME", home.join("xdg-data"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run syncscope");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The store's Gerrit and Spacedrive events as sorted JSON lines without the store's row id.
fn forwarded_events(db: &Path, home: &Path) -> Vec<String> {
    let (code, out, err) = cli(
        db,
        home,
        &[
            "events",
            "--source",
            "gerrit,spacedrive",
            "--format",
            "jsonl",
            "--limit",
            "0",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let mut v: Vec<String> = out
        .lines()
        .map(|l| {
            let mut e: serde_json::Map<String, Value> = serde_json::from_str(l).expect("jsonl");
            e.remove("id");
            serde_json::to_string(&e).expect("json")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_fleet_on_loopback_forwards_exactly_once_and_leaves_nothing_behind() {
    let name = "the_fleet_on_loopback_forwards_exactly_once_and_leaves_nothing_behind";
    if !have_tool(NATS, "nats-server", name) || !have_tool(PROMETHEUS, "prometheus", name) {
        return;
    }
    let s = Scratch::new();
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut demo = Demo::start(
        &tmp,
        &[
            "--headless",
            "--duration",
            "40",
            "--rate",
            "300",
            "--seed",
            "5",
            "--keep",
        ],
        &[],
    );
    let jump = demo.wait_line(120, "what runs where", |l| {
        l.trim_start()
            .starts_with("jump host")
            .then(|| l.to_string())
    });
    let text = demo.text();
    let dir = text
        .lines()
        .find_map(|l| l.split_once("; store ").map(|(_, p)| p.trim().to_string()))
        .map(|p| PathBuf::from(p).parent().unwrap().to_path_buf())
        .expect("the store line");
    assert!(dir.starts_with(&tmp), "{dir:?} not under TMPDIR");
    let dir_s = dir.display().to_string();
    let place = |label: &str| -> String {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} line in:\n{text}"))
            .trim()
            .to_string()
    };
    let prom = place("prometheus:").split(' ').next().unwrap().to_string();
    let serve = place("serve:").split(' ').next().unwrap().to_string();
    assert!(
        place("nats-server:").starts_with("nats://127.0.0.1:"),
        "{text}"
    );
    let relays: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("relay: http://"))
        .map(|r| r.split('/').next().unwrap().to_string())
        .collect();
    assert_eq!(relays.len(), 2, "{text}");
    let demo_pid = pids_in(&jump)[0];
    let mut pids: Vec<u32> = text
        .lines()
        .take_while(|l| !l.trim_start().starts_with("jump host"))
        .flat_map(pids_in)
        .collect();
    assert_eq!(
        pids.len(),
        6,
        "nats, serve, prometheus, three forwarders: {text}"
    );
    assert!(!pids.contains(&demo_pid));
    let host2 = text
        .lines()
        .find(|l| l.trim_start().starts_with("forwarder host-2:"))
        .map(|l| pids_in(l)[0])
        .expect("host-2");

    // Prometheus scrapes serve and both relays.
    let start = Instant::now();
    loop {
        let up = |job: &str| {
            query(&prom, &format!("sum(up{{job=\"{job}\"}})")).and_then(|r| first_value(&r))
        };
        let serve_up = query(
            &prom,
            &format!(
                "up{{job=\"syncscope\",instance=\"{}\"}}",
                serve
                    .trim_start_matches("http://")
                    .trim_end_matches("/metrics")
            ),
        )
        .and_then(|r| first_value(&r));
        if serve_up.as_deref() == Some("1") && up("ngit").as_deref() == Some("2") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "serve up {serve_up:?}, relays up {:?}:\n{}",
            up("ngit"),
            demo.text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // What Prometheus read from serve is syncscope's own state.
    let series = query(
        &prom,
        "count({job=\"syncscope\",__name__=~\"syncscope_.+\"})",
    )
    .and_then(|r| first_value(&r))
    .and_then(|v| v.parse::<u64>().ok())
    .unwrap_or(0);
    assert!(series > 0, "no syncscope_ series scraped from serve");
    // The forwarders' health reaches Prometheus too (through the jump host's store and
    // serve): three of them ok.
    let start = Instant::now();
    loop {
        let ok = query(
            &prom,
            "sum(syncscope_source_state{job=\"syncscope\",source=~\"forwarder:host-.\",state=\"ok\"})",
        )
        .and_then(|r| first_value(&r));
        if ok.as_deref() == Some("3") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "forwarders ok in Prometheus: {ok:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // A forwarder killed: reported, restarted, and nothing lost or doubled (below).
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: a signal to the demo's own forwarder, by the pid it printed.
    assert_eq!(
        unsafe { libc::kill(host2 as libc::pid_t, libc::SIGKILL) },
        0
    );
    let dead = format!("forwarder host-2 (pid {host2}) was killed by signal 9");
    demo.wait_line(30, &dead, |l| l.contains(&dead).then_some(()));
    let again = demo.wait_line(30, "host-2 restarted", |l| {
        l.split_once("forwarder host-2 restarted: pid ")
            .and_then(|(_, p)| p.trim().parse::<u32>().ok())
    });
    pids.push(again);
    // The TUI's sources pane reads the same status from the store.
    let db = dir.join("syncscope-demo.db");
    let start = Instant::now();
    loop {
        let (_, out, _) = cli(&db, s.dir.path(), &["sources", "--format", "json"]);
        if out.contains("forwarder:host-2")
            && out.contains(&format!("pid {again}"))
            && out.contains("(restart 1)")
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "sources: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }

    let (code, err) = demo.finish(240);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("nats:nats://127.0.0.1:"), "{err}");

    // No child left: every pid printed is gone, and nothing mentions the demo's directory.
    for p in &pids {
        assert!(gone(*p, &dir_s), "pid {p} still runs:\n{err}");
    }
    let left = processes_mentioning(&dir_s);
    assert!(left.is_empty(), "left running: {left:?}");

    // Exactly once: the store holds what a direct ingest of the same files stores.
    let systems = dir.join("systems");
    let direct = s.path("direct.db");
    let f = |n: &str| systems.join(n).display().to_string();
    let (code, _, e) = cli(
        &direct,
        s.dir.path(),
        &[
            "ingest",
            "--once",
            "-q",
            "--log-timezone",
            "UTC",
            "--source",
            &format!("gerrit-events:{}", f("gerrit-primary.stream.jsonl")),
            "--source",
            &format!("gerrit-log:{}", f("replication_log")),
            "--source",
            &format!("gerrit-events:{}", f("gerrit-legacy.stream.jsonl")),
            "--source",
            &format!("spacedrive-db:{}", f("sync.db")),
        ],
    );
    assert_eq!(code, Some(0), "{e}");
    let fleet = forwarded_events(&db, s.dir.path());
    let want = forwarded_events(&direct, s.dir.path());
    assert!(want.len() > 3000, "only {} events written", want.len());
    let kinds = |v: &[String]| {
        let mut m = BTreeMap::new();
        for e in v {
            let k = serde_json::from_str::<Value>(e).unwrap()["source"].to_string();
            *m.entry(k).or_insert(0) += 1;
        }
        m
    };
    assert_eq!(kinds(&fleet), kinds(&want));
    assert!(
        fleet == want,
        "the fleet's store differs from a direct ingest"
    );
    // The replication state derived from them too, but for `last_error`: the stream's
    // status and the log's message of one failure carry the same time, and which of the two
    // is kept follows the order they reach the store in (the stream and the log are two
    // sources, in a direct ingest as over JetStream).
    let status = |db: &Path| {
        let out = cli(db, s.dir.path(), &["status", "--format", "json"]).1;
        let mut v: Value = serde_json::from_str(&out).expect("status json");
        strip(&mut v, "last_error");
        v
    };
    assert!(
        status(&db) == status(&direct),
        "the derived replication status differs"
    );

    // Relays from the prometheus: source (the jump host's only way to them): the relays of
    // both targets. The story has the second target answering 500 for a while, so only one
    // of them need be up at the end.
    let (_, out, e) = cli(&db, s.dir.path(), &["relays", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out} {e}"));
    for r in &relays {
        assert!(
            rows.iter().any(|x| x["target"] == r.as_str()
                && x["relay"].as_str().is_some_and(|n| n.starts_with("wss://"))),
            "no relays of {r}: {rows:#?}"
        );
    }
    assert!(rows.iter().any(|x| x["scrape_ok"] == true), "{rows:#?}");
    // And the CI nights from the simulated GitLab.
    let (_, out, _) = cli(
        &db,
        s.dir.path(),
        &["events", "--source", "gitlab", "--count", "--limit", "0"],
    );
    assert!(
        out.trim().parse::<u64>().unwrap_or(0) > 0,
        "no gitlab events"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

/// Removes every `key` field, at any depth.
fn strip(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            m.remove(key);
            m.values_mut().for_each(|x| strip(x, key));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip(x, key)),
        _ => {}
    }
}

/// A fake server binary: prints `words` on stderr and exits 1.
fn failing_tool(dir: &Path, name: &str, words: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\necho '{words}' >&2\nexit 1\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn a_missing_or_failing_server_is_named_and_nothing_is_left_running() {
    let s = Scratch::new();
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // Not installed: named, with how to install it; nothing started.
    for var in ["SYNCSCOPE_DEMO_NATS_SERVER", "SYNCSCOPE_DEMO_PROMETHEUS"] {
        // The other one present (any executable does: nothing starts before both are found).
        let other = if var.contains("NATS") {
            "SYNCSCOPE_DEMO_PROMETHEUS"
        } else {
            "SYNCSCOPE_DEMO_NATS_SERVER"
        };
        let mut demo = Demo::start(
            &tmp,
            &["--headless", "--duration", "5"],
            &[(var, "/nonexistent/server"), (other, "/bin/sh")],
        );
        let (code, err) = demo.finish(60);
        assert_eq!(code, Some(2), "{err}");
        let tool = if var.contains("NATS") {
            "nats-server"
        } else {
            "prometheus"
        };
        assert!(err.contains(&format!("demo --fleet needs {tool}")), "{err}");
        assert!(
            err.contains("apt-get install nats-server prometheus"),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "a directory left"
    );

    let name = "a_missing_or_failing_server_is_named_and_nothing_is_left_running";
    if !have_tool(NATS, "nats-server", name) {
        return;
    }
    // Prometheus fails at start after nats-server, the simulator and serve are up: the error
    // says why, and all of them are stopped, the directory removed.
    let fake = failing_tool(
        s.dir.path(),
        "prometheus",
        "error: cannot bind the web port",
    );
    let fake = fake.display().to_string();
    let mut demo = Demo::start(
        &tmp,
        &["--headless", "--duration", "30"],
        &[("SYNCSCOPE_DEMO_PROMETHEUS", &fake)],
    );
    let (code, err) = demo.finish(120);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("prometheus exited with status 1"), "{err}");
    assert!(err.contains("cannot bind the web port"), "{err}");
    let tmp_s = tmp.display().to_string();
    let left = processes_mentioning(&tmp_s);
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "a directory left"
    );
}

/// The demo's own pid and the pids of what it started, from its "what runs where" lines.
fn started(demo: &mut Demo) -> (u32, Vec<u32>, String) {
    demo.wait_line(120, "what runs where", |l| {
        l.trim_start().starts_with("jump host").then_some(())
    });
    let text = demo.text();
    let mut own = 0;
    let mut pids = Vec::new();
    for l in text.lines() {
        if l.trim_start().starts_with("jump host") {
            own = pids_in(l)[0];
            break;
        }
        pids.extend(pids_in(l));
    }
    (own, pids, text)
}

#[test]
fn ctrl_c_or_a_dead_server_stops_it_all_and_a_killed_demo_takes_its_children_along() {
    let name = "ctrl_c_or_a_dead_server_stops_it_all_and_a_killed_demo_takes_its_children_along";
    if !have_tool(NATS, "nats-server", name) || !have_tool(PROMETHEUS, "prometheus", name) {
        return;
    }
    let s = Scratch::new();
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let tmp_s = tmp.display().to_string();

    // SIGINT (Ctrl-C): the orderly stop, exit 0, every child gone, the directory removed.
    let mut demo = Demo::start(&tmp, &["--headless"], &[]);
    let (own, pids, text) = started(&mut demo);
    assert_eq!(pids.len(), 6, "{text}");
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: a signal to the demo this test started.
    assert_eq!(unsafe { libc::kill(own as libc::pid_t, libc::SIGINT) }, 0);
    let (code, err) = demo.finish(240);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("stopping"), "{err}");
    for p in &pids {
        assert!(gone(*p, &tmp_s), "pid {p} still runs:\n{err}");
    }
    assert!(processes_mentioning(&tmp_s).is_empty());
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "a directory left"
    );

    // A server killed under it: the demo stops with an error naming it, and cleans up.
    let mut demo = Demo::start(&tmp, &["--headless"], &[]);
    let (_, pids, text) = started(&mut demo);
    let prom = text
        .lines()
        .find(|l| l.trim_start().starts_with("prometheus:"))
        .map(|l| pids_in(l)[0])
        .expect("prometheus line");
    // SAFETY: a signal to the Prometheus the demo started, by the pid it printed.
    assert_eq!(unsafe { libc::kill(prom as libc::pid_t, libc::SIGKILL) }, 0);
    let (code, err) = demo.finish(120);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("prometheus was killed by signal 9"), "{err}");
    for p in &pids {
        assert!(gone(*p, &tmp_s), "pid {p} still runs:\n{err}");
    }
    assert!(processes_mentioning(&tmp_s).is_empty());
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "a directory left"
    );

    // SIGKILL of the demo: nothing can clean up, yet the kernel stops every child with it.
    let mut demo = Demo::start(&tmp, &["--headless"], &[]);
    let (own, pids, text) = started(&mut demo);
    assert_eq!(pids.len(), 6, "{text}");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(own as libc::pid_t, libc::SIGKILL) }, 0);
    let _ = demo.finish(60);
    let start = Instant::now();
    while !processes_mentioning(&tmp_s).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "left running after kill -9 of the demo: {:?}",
            processes_mentioning(&tmp_s)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in &pids {
        assert!(gone(*p, &tmp_s), "pid {p} still runs");
    }
}

#[test]
fn the_ui_shows_what_runs_where_first_then_a_dead_forwarder_as_a_fault() {
    let name = "the_ui_shows_what_runs_where_first_then_a_dead_forwarder_as_a_fault";
    if !have_tool(NATS, "nats-server", name) || !have_tool(PROMETHEUS, "prometheus", name) {
        return;
    }
    let s = Scratch::new();
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let tmp_s = tmp.display().to_string();
    let mut t = Pty::spawn(
        &["demo", "--fleet", "--rate", "200"],
        220,
        40,
        &[("TMPDIR", tmp.to_str().unwrap()), ("NO_COLOR", "1")],
        s.dir.path(),
    );
    t.wait_until(120, "the sources line", |screen| {
        screen.contains("forwarder:host-3") && screen.contains("nats:")
    });
    // What runs where came first, on the normal screen, before the UI took it.
    let raw = String::from_utf8_lossy(&t.raw()).into_owned();
    let ui = raw.find("\x1b[?1049h").expect("the UI's screen");
    let before = &raw[..ui];
    for what in [
        "nats-server: nats://127.0.0.1:",
        "prometheus: http://127.0.0.1:",
        "serve: http://127.0.0.1:",
    ] {
        assert!(
            before.contains(what),
            "{what} not printed before the UI:\n{before}"
        );
    }
    let pids: Vec<u32> = before
        .lines()
        .take_while(|l| !l.trim_start().starts_with("jump host"))
        .flat_map(pids_in)
        .collect();
    assert_eq!(pids.len(), 6, "{before}");
    let host3 = before
        .lines()
        .find(|l| l.trim_start().starts_with("forwarder host-3:"))
        .map(|l| pids_in(l)[0])
        .expect("host-3");
    // SAFETY: a signal to the demo's own forwarder, by the pid it printed.
    assert_eq!(
        unsafe { libc::kill(host3 as libc::pid_t, libc::SIGKILL) },
        0
    );
    t.wait_until(30, "host-3's fault on the sources line", |screen| {
        screen.contains(&format!("(pid {host3}) was killed by signal 9"))
    });
    t.send("q");
    assert_eq!(t.wait_exit(240), 0, "{}", t.screen());
    assert!(t.is_cooked());
    let start = Instant::now();
    while !processes_mentioning(&tmp_s).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "left running: {:?}",
            processes_mentioning(&tmp_s)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in &pids {
        assert!(gone(*p, &tmp_s), "pid {p} still runs");
    }
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "a directory left"
    );
}
