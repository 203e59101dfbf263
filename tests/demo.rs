//! `syncscope demo --headless` end to end: the real binary runs the simulator and the real
//! ingest into a store, then the real `status`, `relays` and `events` commands read it.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};

use common::Scratch;
use serde_json::Value;

fn spawn_demo(s: &Scratch, seed: &str) -> Child {
    s.cmd()
        .args([
            "demo",
            "--headless",
            "--duration",
            "8",
            "--rate",
            "500",
            "--seed",
            seed,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run syncscope demo")
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().expect("wait for the demo");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    err
}

fn json(s: &Scratch, args: &[&str]) -> Value {
    let out = s.run(args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn jsonl(s: &Scratch, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["events", "--format", "jsonl", "--limit", "0"];
    all.extend_from_slice(args);
    s.ok(&all)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn headless_demo_fills_every_part_of_the_store() {
    let s = Scratch::new();
    let err = finish(spawn_demo(&s, "1"));
    assert!(err.contains(&s.db().display().to_string()), "{err}");
    assert!(err.contains("0 rejected"), "{err}");
    assert!(!err.contains(" 1 rejected"), "{err}");

    // Gerrit ref state, in both layouts' keys (targetUri and a <= 3.3 targetNode).
    let status = json(&s, &["status", "--format", "json"]);
    let payloads = status.as_array().expect("payloads");
    let remotes: Vec<&str> = payloads
        .iter()
        .flat_map(|p| p["remotes"].as_object().unwrap().keys().map(String::as_str))
        .collect();
    assert!(remotes
        .iter()
        .any(|r| r.starts_with("ssh://replication@mirror-eu.example.org")));
    assert!(remotes.contains(&"backup.example.org:29418"), "{remotes:?}");
    // The failing mirror: its refs are being retried, with the log's error joined.
    let eu = payloads
        .iter()
        .flat_map(|p| p["remotes"].as_object().unwrap().iter())
        .filter(|(r, _)| r.contains("mirror-eu"))
        .flat_map(|(_, v)| v["status"].as_object().unwrap().values())
        .collect::<Vec<_>>();
    assert!(
        eu.iter().any(|r| r["retrying"] == true),
        "no mirror-eu ref retrying"
    );
    assert!(eu.iter().any(|r| r["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("Connection refused"))));

    // Relays of both ngit targets, one of them retrying.
    let relays = json(&s, &["relays", "--format", "json"]);
    let relays = relays.as_array().expect("relays");
    let targets: std::collections::HashSet<&str> = relays
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 2, "{targets:?}");
    assert!(targets.iter().all(|t| t.starts_with("http://127.0.0.1:")));
    assert!(relays.len() >= 10, "{}", relays.len());
    assert!(relays
        .iter()
        .any(|r| r["relay"] == "wss://relay.flaky.example" && r["state"] == "RETRYING"));

    // GitLab CI: the real gitlab source read the simulated API: recurring patterns over the
    // nights, a NEW one last night, a project passing with warnings.
    // Nights counted in UTC, as the simulated API writes them.
    let utc = |args: &[&str]| -> Value {
        let out = s.cmd().env("TZ", "UTC").args(args).output().expect("run");
        serde_json::from_slice(&out.stdout).expect("failures json")
    };
    let pats = utc(&["failures", "--format", "json", "--patterns"]);
    let pats = pats.as_array().expect("patterns");
    assert!(pats.iter().any(|p| p["is_new"] == true), "{pats:#?}");
    assert!(
        pats.iter()
            .any(|p| p["name"] == "Julia: test failed" && p["nights_30"].as_u64() >= Some(10)),
        "{pats:#?}"
    );
    let h = utc(&["failures", "--format", "json", "--history"]);
    let strips = h["projects"].as_array().expect("strips");
    assert_eq!(strips.len(), 6, "{h:#}");
    assert!(strips
        .iter()
        .any(|p| p["project"] == "web/frontend" && p["strip"].as_str().unwrap().contains('W')));
    // A nightly that failed inside its child pipeline: the child's job, with the way to it.
    let night = utc(&[
        "failures",
        "--format",
        "json",
        "--project",
        "infra/terraform-modules",
    ]);
    let child_job = night["pipelines"][0]["jobs"][0].clone();
    assert!(
        child_job["chain"]
            .as_str()
            .is_some_and(|c| c.starts_with("integration -> child pipeline #")),
        "{night:#}"
    );
    assert_eq!(child_job["name"], "apply");

    // The backfill session, found by its correlation id, and the overflow it ends with.
    let errors = jsonl(&s, &["--min-severity", "error"]);
    let overflow = errors
        .iter()
        .find(|e| {
            e["source"] == "spacedrive"
                && e["summary"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Buffer overflow"))
        })
        .unwrap_or_else(|| panic!("no overflow among {errors:?}"));
    let corr = overflow["correlation_id"]
        .as_str()
        .expect("a correlation id");
    let session = jsonl(
        &s,
        &["--source", "spacedrive", "--correlation-id", &corr[..8]],
    );
    let types: Vec<&str> = session
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.first(),
        Some(&"backfill_session_started"),
        "{types:?}"
    );
    assert!(types.iter().filter(|t| **t == "batch_ingestion").count() >= 5);
    assert!(types.contains(&"sync_error"));

    // Nothing could not be read.
    let rejects = json(&s, &["rejects", "--format", "json"]);
    assert_eq!(rejects.as_array().map(Vec::len), Some(0), "{rejects}");
}

/// A run's events per (source, device, category), in store order, with the events of one
/// timestamp sorted (their order in the store follows a hash that includes the time), the
/// last timestamp's events left out (a run may stop in the middle of them), times left out.
fn sequences(s: &Scratch) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for e in jsonl(s, &["--source", "gerrit,spacedrive"]) {
        let key = format!("{} {} {}", e["source"], e["device_id"], e["category"]);
        let what = format!(
            "{} | {} | {} | {}",
            e["event_type"], e["summary"], e["correlation_id"], e["subject"]
        );
        groups
            .entry(key)
            .or_default()
            .push((e["timestamp"].as_str().unwrap().to_string(), what));
    }
    groups
        .into_iter()
        .map(|(k, evs)| {
            let mut out = Vec::new();
            let mut i = 0;
            while i < evs.len() {
                let j = (i..evs.len())
                    .find(|&j| evs[j].0 != evs[i].0)
                    .unwrap_or(evs.len());
                if j == evs.len() {
                    break;
                }
                let mut tie: Vec<String> = evs[i..j].iter().map(|e| e.1.clone()).collect();
                tie.sort();
                out.extend(tie);
                i = j;
            }
            (k, out)
        })
        .collect()
}

#[test]
fn the_same_seed_writes_the_same_events() {
    let (a, b, c) = (Scratch::new(), Scratch::new(), Scratch::new());
    let runs = [
        spawn_demo(&a, "42"),
        spawn_demo(&b, "42"),
        spawn_demo(&c, "43"),
    ];
    for r in runs {
        finish(r);
    }
    let (x, y, z) = (sequences(&a), sequences(&b), sequences(&c));
    assert_eq!(
        x.keys().filter(|k| k.starts_with("\"gerrit\"")).count(),
        y.keys().filter(|k| k.starts_with("\"gerrit\"")).count()
    );
    let mut compared = 0;
    for (k, xs) in &x {
        let ys = y
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing in the second run"));
        let n = xs.len().min(ys.len());
        assert!(n > 0 || k.contains("stream"), "{k}: nothing to compare");
        for i in 0..n {
            assert_eq!(xs[i], ys[i], "{k}: event {i} differs");
        }
        compared += n;
    }
    assert!(compared > 1000, "only {compared} events compared");
    // Another seed, other events.
    let differs = x.iter().any(|(k, xs)| {
        z.get(k)
            .is_some_and(|zs| zs.iter().take(50).ne(xs.iter().take(50)))
    });
    assert!(differs);
}
