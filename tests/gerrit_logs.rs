//! `replication_log` and `pull_replication_log` read as the plugins' code writes them
//! (gerrit.md §4, §4.2.1): every message template typed with the severity of the code's own log
//! level, the `[CONTEXT ...]` suffix found on a line of its own, stack-trace tabs kept, lines of
//! binary garbage rejected by line number and never glued onto a record, every layout (current,
//! <= 3.1, 3.2, JSON), read in a zone that is not UTC, given as `--log-timezone -03:00`.
//! Inputs in tests/fixtures/gerrit, written from gerrit.md.

mod common;

use common::{fixture, Scratch};
use serde_json::Value;

/// `ingest --once --log-timezone -03:00` (a negative offset as its own argument) of a log.
fn ingest_log(s: &Scratch, kind: &str, name: &str) {
    let out = s
        .cmd()
        .args([
            "ingest",
            "--once",
            "-q",
            "--log-timezone",
            "-03:00",
            "--source",
        ])
        .arg(format!(
            "{kind}:{}",
            fixture(&format!("gerrit/{name}")).display()
        ))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every event, oldest first.
fn events(s: &Scratch) -> Vec<Value> {
    let mut ev = s.events_json(&[]);
    let at = |e: &Value| {
        chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap_or_default())
            .expect("rfc 3339 timestamp")
    };
    ev.sort_by_key(at);
    ev
}

/// (type, severity, push id) of each event, oldest first.
fn typed(ev: &[Value]) -> Vec<(String, String, Option<String>)> {
    ev.iter()
        .map(|e| {
            (
                e["event_type"].as_str().unwrap_or_default().to_string(),
                e["severity"].as_str().unwrap_or_default().to_string(),
                e["correlation_id"].as_str().map(String::from),
            )
        })
        .collect()
}

fn want(rows: &[(&str, &str, Option<&str>)]) -> Vec<(String, String, Option<String>)> {
    rows.iter()
        .map(|(t, s, c)| (t.to_string(), s.to_string(), c.map(String::from)))
        .collect()
}

#[test]
fn every_push_template_typed_with_the_codes_level() {
    let s = Scratch::new();
    ingest_log(&s, "gerrit-log", "replication_log_templates.txt");
    let ev = events(&s);
    let (a, b, c, d, e) = (
        Some("aa000001"),
        Some("bb000002"),
        Some("cc000003"),
        Some("dd000004"),
        Some("ee000008"),
    );
    assert_eq!(
        typed(&ev),
        want(&[
            ("log_scheduling", "debug", None),
            ("log_scheduled", "debug", a),
            ("log_consolidated", "info", a),
            ("log_started", "debug", a),
            ("log_refs", "debug", a),
            ("log_ref_failed", "error", a),
            // A push whose ref was rejected still logs `completed in`: it ends with an error.
            ("log_completed", "error", a),
            ("log_scheduled", "debug", b),
            ("log_started", "debug", b),
            ("log_transport_error", "error", b),
            ("log_scheduled", "debug", b),
            ("log_transport_error", "error", b),
            ("log_gave_up", "error", b),
            ("log_gave_up", "error", b),
            ("log_started", "debug", c),
            // Over 1,000 characters: its CONTEXT (and push id) on the next line.
            ("log_refs", "debug", c),
            ("log_refs", "debug", c),
            ("log_refs", "debug", c),
            ("log_completed", "info", c),
            ("log_missing_repository", "info", d),
            ("log_missing_repository", "warning", d),
            ("log_rescheduled_or_canceled", "warning", d),
            ("log_rescheduled_or_canceled", "warning", d),
            ("log_rescheduled_or_canceled", "warning", d),
            ("log_ref_failed", "error", e),
            ("log_ref_failed", "error", e),
            ("log_replication_error", "error", e),
            ("log_replication_error", "error", e),
            ("log_replication_error", "error", e),
            ("log_replication_error", "error", e),
            ("log_project_deletion", "info", None),
            ("log_project_deletion", "info", None),
            ("log_project_deletion", "info", None),
            ("log_project_deletion_error", "error", None),
            ("log_project_deletion_error", "error", None),
            ("log_project_deletion_error", "error", None),
            ("log_canceled_at_shutdown", "warning", None),
        ])
    );
    // Per push id, exactly its records.
    for (id, n) in [
        ("aa000001", 6),
        ("bb000002", 7),
        ("cc000003", 5),
        ("dd000004", 5),
        ("ee000008", 6),
    ] {
        assert_eq!(
            s.events_json(&["--correlation-id", id]).len(),
            n,
            "push {id}"
        );
    }
    // -03:00: 06:30:00,007 local is 09:30:00.007 UTC.
    assert!(
        ev[0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("2025-03-14T09:30:00.007")),
        "{}",
        ev[0]["timestamp"]
    );
    // The CONTEXT line is not text of the record; the garbage after it is not either.
    let long = &ev[15];
    let summary = long["summary"].as_str().unwrap_or_default();
    assert!(
        !summary.contains("CONTEXT") && !summary.contains("garbage"),
        "{summary}"
    );
    assert!(long["details"]["trace"].is_null(), "{long}");
    // Stack-trace tabs are kept byte for byte.
    let trace = ev[9]["details"]["trace"].as_str().unwrap_or_default();
    assert!(
        trace.contains("\n\tat org.eclipse.jgit.transport.TransportHttp.connect(TransportHttp.java:700)\n\t... 12 more"),
        "{trace:?}"
    );
    // A multi-line message keeps its second line; its CONTEXT line is read as context.
    let del = &ev[33];
    assert!(del["details"]["trace"]
        .as_str()
        .is_some_and(|t| t == "\tRepository not found"));
    assert_eq!(del["details"]["context"]["PLUGIN"], "replication");
    // The two garbage lines are rejected with their line numbers.
    let out = s.run(&["rejects", "--format", "json"]);
    let rejects: Value = serde_json::from_slice(&out.stdout).expect("rejects json");
    let mut lines: Vec<String> = rejects
        .as_array()
        .expect("list")
        .iter()
        .map(|r| {
            let loc = r["location"].as_str().unwrap_or_default();
            loc.rsplit(':').next().unwrap_or_default().to_string()
        })
        .collect();
    lines.sort();
    assert_eq!(lines, ["21", "45"], "{rejects}");
    let reasons = rejects.to_string();
    assert!(reasons.contains("binary byte 0x00") && reasons.contains("not UTF-8"));
}

#[test]
fn every_pull_template_and_the_older_and_json_layouts() {
    let s = Scratch::new();
    ingest_log(&s, "gerrit-log", "pull_replication_log_templates.txt");
    let (x, y) = (Some("ee000005"), Some("ff000006"));
    assert_eq!(
        typed(&events(&s)),
        want(&[
            ("log_scheduling", "debug", None),
            ("log_scheduled", "debug", x),
            ("log_started", "debug", x),
            // The second line of the same attempt, not a second start.
            ("log_fetch_running", "debug", x),
            ("log_ref_failed", "warning", x),
            ("log_completed", "info", x),
            ("log_transport_error", "error", y),
            // The fetch is given up: an error, with its id from the middle of the message.
            ("log_gave_up", "error", y),
            ("log_nothing_replicated", "info", Some("ff000007")),
            ("log_ref_failed", "error", Some("ff000009")),
            ("log_completed", "info", None),
        ])
    );

    for (name, rows) in [
        (
            "replication_log_v31.txt",
            want(&[
                ("log_scheduled", "debug", Some("0a0b0c0d")),
                ("log_started", "debug", Some("0a0b0c0d")),
                ("log_ref_failed", "error", Some("0a0b0c0d")),
                ("log_completed", "error", Some("0a0b0c0d")),
            ]),
        ),
        (
            "replication_log_v32.txt",
            want(&[
                ("log_scheduled", "debug", Some("1a1b1c1d")),
                ("log_started", "debug", Some("1a1b1c1d")),
                ("log_gave_up", "error", Some("1a1b1c1d")),
            ]),
        ),
        (
            "replication_log.json",
            want(&[
                ("log_started", "debug", Some("2a2b2c2d")),
                ("log_transport_error", "error", Some("2a2b2c2d")),
            ]),
        ),
    ] {
        let s = Scratch::new();
        ingest_log(&s, "gerrit-log", name);
        let ev = events(&s);
        assert_eq!(typed(&ev), rows, "{name}");
        if name.ends_with(".json") {
            assert!(!ev[1]["summary"]
                .as_str()
                .unwrap_or_default()
                .contains("CONTEXT"));
            assert!(ev[0]["timestamp"]
                .as_str()
                .is_some_and(|t| t.starts_with("2025-03-14T09:30:00.112")));
        }
    }
}

#[test]
fn identical_log_records_of_one_millisecond_are_two_events_and_a_reread_adds_none() {
    let s = Scratch::new();
    let p = s.path("replication_log");
    // <= 3.1 shows a consolidation as a second identical `scheduled` line with the same id.
    let line = "[2025-03-14 06:30:00,001] [0a0b0c0d] scheduled core:refs/heads/master => [0a0b0c0d] push ssh://m/core.git to run after 15s\n";
    std::fs::write(&p, format!("{line}{line}")).expect("write");
    let spec = format!("gerrit-log:{}", p.display());
    let run = |spec: &str| {
        s.cmd()
            .args([
                "ingest",
                "--once",
                "-q",
                "--log-timezone=UTC",
                "--source",
                spec,
            ])
            .output()
            .expect("run")
    };
    assert_eq!(run(&spec).status.code(), Some(0));
    assert_eq!(s.count(&[]), 2);
    let copy = s.path("replication_log.1");
    std::fs::copy(&p, &copy).expect("copy");
    assert_eq!(
        run(&format!("gerrit-log:{}", copy.display())).status.code(),
        Some(0)
    );
    assert_eq!(
        s.count(&[]),
        2,
        "the same records read again are stored once"
    );
}
