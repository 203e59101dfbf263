//! `syncscope serve` end to end: the real binary on an ephemeral loopback port, its `/metrics`
//! read back with the project's own exposition parser and compared with `status --format json`
//! on the same store; a real Prometheus scraping it and answering a PromQL query; the alert
//! rules in assets/ checked by promtool.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, free_port, have_tool, KillOnDrop, Scratch};
use serde_json::Value;
use syncscope::sources::ngit::exposition::{self, Exposition};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROMTOOL: &str = "/usr/bin/promtool";

fn ingest_gerrit(s: &Scratch) {
    let out = s.ingest_once(&[
        format!(
            "gerrit-events:{}",
            fixture("gerrit/push_stream_v3.5plus.jsonl").display()
        ),
        format!(
            "gerrit-events:{}",
            fixture("gerrit/deletions_stream.jsonl").display()
        ),
        format!(
            "gerrit-events:{}",
            fixture("gerrit/multisite_stream.jsonl").display()
        ),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `serve --listen 127.0.0.1:0` and returns it with the address it printed.
fn serve(s: &Scratch, extra: &[&str]) -> (KillOnDrop, SocketAddr) {
    let mut child = s
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start serve");
    let stderr = child.stderr.take().expect("stderr");
    let running = KillOnDrop(child);
    let mut line = String::new();
    let mut lines = BufReader::new(stderr);
    lines.read_line(&mut line).expect("read serve's stderr");
    // Keep reading (and echoing) what it says after, so its stderr never closes.
    std::thread::spawn(move || {
        for l in lines.lines().map_while(Result::ok) {
            eprintln!("serve: {l}");
        }
    });
    let addr = line
        .trim()
        .strip_prefix("syncscope serve: listening on http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("serve printed {line:?}"));
    (running, addr.parse().expect("an address"))
}

/// One HTTP/1.0 request: (status, headers, body).
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(c, "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).expect("read answer");
    let raw = String::from_utf8(raw).expect("utf-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_string(), body.to_string())
}

fn scrape(addr: SocketAddr) -> (String, Exposition) {
    let (status, head, body) = http(addr, "GET", "/metrics");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let parsed = exposition::parse(&body);
    assert!(parsed.errors.is_empty(), "{:?}\n{body}", parsed.errors);
    (body, parsed)
}

fn value(e: &Exposition, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = e
        .family(name)
        .filter(|s| labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

#[test]
fn metrics_answer_what_status_answers() {
    let s = Scratch::new();
    ingest_gerrit(&s);
    let out = s.run(&["status", "--format", "json"]);
    let payloads: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .expect("status json")
        .as_array()
        .expect("an array of payloads")
        .clone();
    assert!(payloads.len() >= 3, "{payloads:?}");
    let (_srv, addr) = serve(&s, &[]);
    let (body, m) = scrape(addr);

    // One (gerrit_instance, project, remote) per payload, none more.
    assert_eq!(
        m.family("syncscope_gerrit_remote_failed").count(),
        payloads.len(),
        "{body}"
    );
    let mut saw_failed = false;
    for p in &payloads {
        let project = p["project"].as_str().unwrap();
        let instance = p["instance"].as_str().unwrap_or("none");
        let (remote, refs) = p["remotes"].as_object().unwrap().iter().next().unwrap();
        let refs = refs["status"].as_object().unwrap();
        let l = [
            ("gerrit_instance", instance),
            ("project", project),
            ("remote", remote.as_str()),
        ];
        let with = |k: &'static str, v: &'static str| {
            let mut x = l.to_vec();
            x.push((k, v));
            x
        };
        for st in [
            "SUCCEEDED",
            "FAILED",
            "NOT_ATTEMPTED",
            "SCHEDULED",
            "UNKNOWN",
        ] {
            let n = refs.values().filter(|r| r["status"] == st).count() as f64;
            assert_eq!(
                value(&m, "syncscope_gerrit_refs", &with("status", st)),
                Some(n),
                "{l:?} {st}"
            );
        }
        for d in ["PUSH", "PULL"] {
            let n = refs.values().filter(|r| r["type"] == d).count() as f64;
            assert_eq!(
                value(
                    &m,
                    "syncscope_gerrit_refs_by_direction",
                    &with("direction", d)
                ),
                Some(n)
            );
        }
        for (flag, name) in [
            ("retrying", "syncscope_gerrit_refs_retrying"),
            ("stuck", "syncscope_gerrit_refs_stuck"),
        ] {
            let n = refs.values().filter(|r| r[flag] == true).count() as f64;
            assert_eq!(value(&m, name, &l), Some(n), "{name} {l:?}");
        }
        let not_deleted = p["deletions_not_replicated"]
            .as_object()
            .map_or(0, |o| o.len()) as f64;
        assert_eq!(
            value(&m, "syncscope_gerrit_deletions_not_replicated", &l),
            Some(not_deleted)
        );
        let failed = p["status"] == "FAILED";
        saw_failed |= failed;
        assert_eq!(
            value(&m, "syncscope_gerrit_remote_failed", &l),
            Some(if failed { 1.0 } else { 0.0 })
        );
        let age = value(&m, "syncscope_gerrit_oldest_failure_age_seconds", &l);
        assert_eq!(age.is_some(), failed, "{l:?}");
        assert!(age.unwrap_or(0.0) > 0.0 || !failed);
        let mut failing: Vec<&str> = refs
            .iter()
            .filter(|(_, r)| r["status"] == "FAILED" || r["status"] == "UNKNOWN")
            .map(|(n, _)| n.as_str())
            .collect();
        failing.sort();
        let mut listed: Vec<&str> = m
            .family("syncscope_gerrit_ref_failed")
            .filter(|s| l.iter().all(|(k, v)| s.label(k) == Some(*v)))
            .filter_map(|s| s.label("ref"))
            .collect();
        listed.sort();
        assert_eq!(listed, failing, "{l:?}");
    }
    assert!(saw_failed, "the fixtures have a failing remote");
    // Every family is declared, and the sources are there.
    for name in m.samples.iter().map(|s| s.name.as_str()) {
        assert!(m.types.contains_key(name), "{name} has no TYPE");
        assert!(m.help.contains_key(name), "{name} has no HELP");
    }
    assert_eq!(m.types["syncscope_source_events_stored_total"], "counter");
    let stored: f64 = m
        .family("syncscope_source_events_stored_total")
        .map(|s| s.value)
        .sum();
    assert_eq!(stored as u64, s.count(&[]), "{body}");
}

#[test]
fn serve_answers_404_405_and_a_pointer_at_root() {
    let s = Scratch::new();
    ingest_gerrit(&s);
    let (_srv, addr) = serve(&s, &[]);
    let (st, _, body) = http(addr, "GET", "/");
    assert_eq!(st, 200);
    assert!(body.contains("/metrics"), "{body}");
    assert_eq!(http(addr, "GET", "/nope").0, 404);
    assert_eq!(http(addr, "POST", "/metrics").0, 405);
    // Still serving after those.
    scrape(addr);
}

#[test]
fn a_missing_store_is_a_500_that_names_it_then_served_once_ingested() {
    let s = Scratch::new();
    let (_srv, addr) = serve(&s, &[]);
    let (st, _, body) = http(addr, "GET", "/metrics");
    assert_eq!(st, 500);
    assert!(body.contains("no store at"), "{body}");
    ingest_gerrit(&s);
    let (_, m) = scrape(addr);
    assert!(m.family("syncscope_gerrit_refs").count() > 0);
}

fn pct(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_serve_and_promql_finds_the_failing_refs() {
    if !have_tool(
        PROMETHEUS,
        "prometheus",
        "a_real_prometheus_scrapes_serve_and_promql_finds_the_failing_refs",
    ) {
        return;
    }
    let s = Scratch::new();
    ingest_gerrit(&s);
    let (_srv, addr) = serve(&s, &[]);
    let port = free_port();
    let cfg = s.path("prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: syncscope\n    static_configs:\n      - targets: ['{addr}']\n",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("assets/alerts.yml")
                .display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(s.path("prometheus.log")).unwrap();
    let _prom = KillOnDrop(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", s.path("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let api: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let query = |q: &str| -> Option<Value> {
        let c = TcpStream::connect(api).ok()?;
        drop(c);
        let (st, _, body) = http(api, "GET", &format!("/api/v1/query?query={}", pct(q)));
        (st == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    };
    let remote = "https://github.com/example-org/tools-build.git";
    let q = format!("syncscope_gerrit_ref_failed{{job=\"syncscope\",remote=\"{remote}\"}} == 1");
    let deadline = Instant::now() + Duration::from_secs(90);
    let result = loop {
        if let Some(v) = query(&q) {
            let r = v["data"]["result"].as_array().cloned().unwrap_or_default();
            if !r.is_empty() {
                break r;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never answered {q}; its log:\n{}",
            std::fs::read_to_string(s.path("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let refs: Vec<&str> = result
        .iter()
        .filter_map(|r| r["metric"]["ref"].as_str())
        .collect();
    assert!(refs.contains(&"refs/heads/main"), "{result:?}");
    for r in &result {
        assert_eq!(r["metric"]["remote"], remote);
        assert_eq!(r["metric"]["project"], "tools/build");
    }
    // The remote's FAILED count agrees with what status says of it.
    let out = s.run(&["status", "--format", "json", "--remote", remote]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("status json");
    let payloads = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
    let failed: usize = payloads
        .iter()
        .map(|p| {
            p["remotes"][remote]["status"].as_object().map_or(0, |o| {
                o.values().filter(|r| r["status"] == "FAILED").count()
            })
        })
        .sum();
    let q = format!("sum(syncscope_gerrit_refs{{remote=\"{remote}\",status=\"FAILED\"}})");
    let v = query(&q).expect("query answered");
    let n: f64 = v["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|x| x.parse().ok())
        .unwrap_or(-1.0);
    assert_eq!(n, failed as f64, "{v}");
    assert_eq!(refs.len(), failed, "{result:?}");
}

#[test]
fn promtool_accepts_the_alert_rules_and_they_fire_when_they_should() {
    if !have_tool(
        PROMTOOL,
        "prometheus",
        "promtool_accepts_the_alert_rules_and_they_fire_when_they_should",
    ) {
        return;
    }
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/alerts.yml");
    let out = Command::new(PROMTOOL)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("run promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS"), "{text}");
    // And they fire when they should (and only then): promtool's rule unit tests.
    let tests = fixture("alerts_test.yml");
    let out = Command::new(PROMTOOL)
        .args(["test", "rules"])
        .arg(&tests)
        .output()
        .expect("run promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
}
