//! `prometheus:URL` against a REAL Prometheus (/usr/bin/prometheus, started here in a temp dir
//! on a free loopback port, scrape interval 1 s) scraping two `/metrics` endpoints served by
//! the demo's relay server: both targets up with their relays in `syncscope relays`, then one
//! endpoint stopped -> `up == 0` -> that target down.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fixture, free_port, have_tool, KillOnDrop, Scratch};
use serde_json::Value;
use syncscope::demo::ngit::Reply;
use syncscope::demo::server::MetricsServer;
use syncscope::demo::DemoStats;
use tokio_util::sync::CancellationToken;

const PROMETHEUS: &str = "/usr/bin/prometheus";

fn prometheus(dir: &Path, targets: &[String]) -> (KillOnDrop, String, PathBuf) {
    let port = free_port();
    let list = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: ngit\n    scrape_timeout: 900ms\n    static_configs:\n      - targets: [{list}]\n"
        ),
    )
    .expect("write prometheus.yml");
    let log = dir.join("prometheus.log");
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("start prometheus");
    (KillOnDrop(child), format!("http://127.0.0.1:{port}"), log)
}

/// `GET base/api/v1/query?query=q` with the crate's own client, the result vector.
fn query(base: &str, q: &str) -> Option<Vec<Value>> {
    let mut u = reqwest::Url::parse(&format!("{base}/api/v1/query")).ok()?;
    u.query_pairs_mut().append_pair("query", q);
    let body = reqwest::blocking::get(u).ok()?.text().ok()?;
    let v: Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"].as_array().cloned()
}

fn wait_for(what: &str, log: &Path, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}; prometheus log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn serve(text: &str) -> (String, CancellationToken, std::thread::JoinHandle<()>) {
    let (server, url) = MetricsServer::bind().expect("bind /metrics");
    server.endpoint().set(Reply::Metrics(text.to_string()));
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let stats = Arc::new(DemoStats::default());
    let t = std::thread::spawn(move || {
        let _ = server.serve(&c, &stats);
    });
    let hostport = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();
    (hostport, cancel, t)
}

fn rows(s: &Scratch) -> Vec<Value> {
    let out = s.run(&["relays", "--format", "json"]);
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap_or_else(|e| {
            panic!(
                "relays --format json: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_real_prometheus_scraping_two_relays_then_one_stopped() {
    if !have_tool(
        PROMETHEUS,
        "prometheus",
        "a_real_prometheus_scraping_two_relays_then_one_stopped",
    ) {
        return;
    }
    let sample = std::fs::read_to_string(fixture("ngit/metrics-sample.txt")).expect("fixture");
    let v3 = std::fs::read_to_string(fixture("ngit/metrics-real-v3.txt")).expect("fixture");
    let (a, stop_a, ta) = serve(&sample);
    let (b, stop_b, tb) = serve(&v3);
    let s = Scratch::new();
    let (_prom, base, log) = prometheus(s.dir.path(), &[a.clone(), b.clone()]);
    let up = |instance: &str, want: &str| {
        query(&base, &format!("up{{instance=\"{instance}\"}}")).is_some_and(|r| {
            r.first()
                .and_then(|x| x["value"][1].as_str())
                .is_some_and(|v| v == want)
        })
    };
    wait_for("both targets up", &log, || up(&a, "1") && up(&b, "1"));
    wait_for("the relay series", &log, || {
        query(&base, "count(ngit_sync_relay_connected) by (instance)").is_some_and(|r| r.len() == 2)
    });

    let source = format!("prometheus:{base},selector={{job=\"ngit\"}}");
    s.ok(&["ingest", "--once", "-q", "--source", &source]);
    let r = rows(&s);
    let of = |r: &[Value], t: &str| -> Vec<Value> {
        r.iter().filter(|x| x["target"] == t).cloned().collect()
    };
    let ra = of(&r, &a);
    let rb = of(&r, &b);
    assert_eq!(ra.len(), 10, "the sample's ten relays: {r:#?}");
    assert!(ra.iter().all(|x| x["scrape_ok"] == true));
    let live = ra
        .iter()
        .find(|x| x["relay"] == "wss://gitnostr.com")
        .expect("gitnostr relay");
    assert_eq!(live["state"], "LIVE", "{live:#?}");
    assert!(
        !rb.is_empty() && rb.iter().all(|x| x["scrape_ok"] == true),
        "{r:#?}"
    );
    // The same as ngit-metrics: the relays of the target scraped directly.
    let direct = Scratch::new();
    let direct_out = direct.run(&[
        "ingest",
        "--once",
        "-q",
        "--source",
        &format!("ngit-metrics:http://{b}/metrics"),
    ]);
    assert!(direct_out.status.success());
    let names = |rows: &[Value]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = rows
            .iter()
            .map(|x| (x["relay"].to_string(), x["state"].to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&rb), names(&rows(&direct)));

    // One endpoint stopped: Prometheus' up == 0, that target down, the other still up.
    stop_b.cancel();
    let _ = tb.join();
    wait_for("up == 0 for the stopped one", &log, || up(&b, "0"));
    let out = s.run(&["ingest", "--once", "-q", "--source", &source]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = rows(&s);
    let rb = of(&r, &b);
    assert!(!rb.is_empty());
    assert!(
        rb.iter().all(|x| x["scrape_ok"] == false
            && x["scrape_error"]
                .as_str()
                .is_some_and(|e| e.contains("up == 0"))),
        "{rb:#?}"
    );
    assert!(rb.iter().all(|x| x["state"] == "UNKNOWN"), "{rb:#?}");
    assert!(of(&r, &a).iter().all(|x| x["scrape_ok"] == true));
    let table = s.run(&["relays"]);
    assert_eq!(table.status.code(), Some(1), "a target down exits 1");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains(&b) && text.contains("DOWN"), "{text}");
    let events = s.ok(&[
        "events",
        "--format",
        "jsonl",
        "--event-type",
        "scrape_failed",
    ]);
    assert_eq!(events.lines().count(), 1, "{events}");
    assert!(events.contains(&b), "{events}");
    stop_a.cancel();
    let _ = ta.join();
}

/// A Prometheus that answers `status: error`: the source says why, the body is a reject,
/// no target is invented.
#[test]
fn an_error_answer_backs_off_with_the_reason_and_invents_nothing() {
    use syncscope::demo::server::{Loopback, Response};
    let server = Loopback::bind("prometheus").expect("bind");
    let base = format!("http://127.0.0.1:{}", server.port);
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let t = std::thread::spawn(move || {
        server.serve(
            &c,
            |_, _| {
                Response::new(
                    422,
                    "application/json",
                    r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples"}"#,
                )
            },
            || {},
        )
    });
    let s = Scratch::new();
    let out = s.run(&[
        "ingest",
        "--once",
        "--source",
        &format!("prometheus:{base}"),
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("backoff: HTTP 422 Unprocessable Entity: Prometheus answered an error (execution): query processing would load too many samples"),
        "{err}"
    );
    assert!(rows(&s).is_empty());
    let rejects = s.ok(&["rejects", "--format", "json"]);
    assert!(rejects.contains("too many samples"), "{rejects}");
    cancel.cancel();
    let _ = t.join();
}
