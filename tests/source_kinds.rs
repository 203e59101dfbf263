//! The table of source kinds, as the real binary shows it: `sources --kinds`, the `--source`
//! help, and the errors of a source it does not know.

mod common;

use common::bin;

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("run syncscope")
}

const KINDS: [&str; 11] = [
    "jsonl",
    "spacedrive-db",
    "spacedrive-json",
    "gerrit-events",
    "gerrit-log",
    "gerrit-rest",
    "gerrit-ssh",
    "gitlab",
    "ngit-metrics",
    "prometheus",
    "nats",
];

#[test]
fn sources_kinds_lists_every_kind_with_an_example_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("never.db");
    let out = run(&[
        "--db",
        db.to_str().unwrap(),
        "sources",
        "--kinds",
        "-f",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<_> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(names, KINDS);
    let gitlab = rows.iter().find(|r| r["kind"] == "gitlab").unwrap();
    assert_eq!(gitlab["config"], "gitlab");
    assert!(!db.exists(), "listing kinds reads no store");
    let table = run(&["--db", db.to_str().unwrap(), "sources", "--kinds"]);
    let text = String::from_utf8(table.stdout).unwrap();
    for k in KINDS {
        assert!(text.contains(&format!("    e.g. {k}:")), "{k}: {text}");
    }
    // `ingest --help` lists the same kinds with what follows the colon (compared with runs of
    // white space as one: clap wraps the help to the width).
    let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = words(&String::from_utf8(run(&["ingest", "--help"]).stdout).unwrap());
    for r in &rows {
        let line = words(&format!(
            "{}:{}",
            r["kind"].as_str().unwrap(),
            r["where"].as_str().unwrap()
        ));
        assert!(help.contains(&line), "{line} not in:\n{help}");
    }
}

#[test]
fn an_unknown_kind_names_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let out = run(&[
        "--db",
        db.to_str().unwrap(),
        "ingest",
        "--once",
        "--source",
        "kafka:topic",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "unknown source kind 'kafka' in 'kafka:topic': expected one of jsonl, spacedrive-db"
        ),
        "{err}"
    );
}
