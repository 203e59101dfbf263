//! End-to-end tests of `syncscope ingest`, `events`, `rejects` as a user runs them: counts and
//! dedup of the two Spacedrive samples, every filter (checked against the fixtures read
//! independently with rusqlite and serde_json), every output format, the input variants of the
//! format document (tests/fixtures/variants), rejects, errors and stdin.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{fixture, sample_sources, Scratch};
use serde_json::{json, Value};

const DEV_A: &str = "cd613e30-d8f1-6adf-91b7-584a2265b1f5";
const DEV_B: &str = "1e2feb89-414c-343c-1027-c4d1c386bbc4";
const VAR_DEV: &str = "aaaa1111-0000-4000-8000-000000000001";
const VAR_PEER: &str = "bbbb2222-0000-4000-8000-000000000002";
const VAR_CORR: &str = "c0ffee00-1111-4222-8333-444455556666";
const EXP_DEV: &str = "dddd4444-0000-4000-8000-000000000004";
const EXP_PEER: &str = "eeee5555-0000-4000-8000-000000000005";
const EXP_CORR: &str = "f00dbabe-0000-4000-8000-000000000006";

// ---------------------------------------------------------------------------------------------
// The fixtures, read without syncscope.

/// One fixture event as the fixture files hold it.
#[derive(Debug, Clone)]
struct Fx {
    ts: i64,
    device: Option<String>,
    event_type: String,
    category: String,
    severity: String,
    summary: String,
    details: Option<Value>,
    corr: Option<String>,
    peer: Option<String>,
    model_types: Option<Vec<String>>,
    record_count: Option<i64>,
    duration_ms: Option<i64>,
}

type Key = (i64, String, String);

impl Fx {
    fn key(&self) -> Key {
        (
            self.ts,
            self.device.clone().unwrap_or_default(),
            self.summary.clone(),
        )
    }
    fn is(&self, device: &str) -> bool {
        self.device.as_deref() == Some(device)
    }
}

/// RFC 3339 text to UTC nanoseconds.
fn nanos(ts: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .unwrap_or_else(|e| panic!("{ts}: {e}"))
        .timestamp_nanos_opt()
        .expect("in range")
}

/// The 108 events of tests/fixtures/sync.db (device A) and device B's default export
/// (tests/fixtures/device_b_sd_events.json).
fn fixture_events() -> Vec<Fx> {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("sync.db");
    std::fs::copy(fixture("sync.db"), &db).expect("copy sync.db");
    let conn = rusqlite::Connection::open(&db).expect("open sync.db copy");
    let mut st = conn
        .prepare(
            "SELECT timestamp, device_id, event_type, category, severity, summary, details,
                    correlation_id, peer_device_id, model_types, record_count, duration_ms
             FROM sync_event_log ORDER BY id",
        )
        .expect("prepare");
    let mut out: Vec<Fx> = st
        .query_map([], |r| {
            let ts: String = r.get(0)?;
            let details: Option<String> = r.get(6)?;
            let models: Option<String> = r.get(9)?;
            Ok(Fx {
                ts: nanos(&ts),
                device: r.get(1)?,
                event_type: r.get(2)?,
                category: r.get(3)?,
                severity: r.get(4)?,
                summary: r.get(5)?,
                details: details.map(|d| serde_json::from_str(&d).expect("details json")),
                corr: r.get(7)?,
                peer: r.get(8)?,
                model_types: models.map(|m| m.split(',').map(String::from).collect()),
                record_count: r.get(10)?,
                duration_ms: r.get(11)?,
            })
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(out.len(), 54, "sync.db fixture rows");

    // Device B's default export (what the samples ingest, device named on the source): no
    // device, category or model types in it. Its `--with-device` twin, the same export, says
    // which category each event has.
    let text = std::fs::read(fixture("device_b_sd_events.json")).expect("read export");
    let arr: Vec<Value> = serde_json::from_slice(&text).expect("export parses");
    assert_eq!(arr.len(), 54, "export fixture elements");
    let twin: Vec<Value> = serde_json::from_slice(
        &std::fs::read(fixture("device_b_sd_events_with_device.json")).expect("read export"),
    )
    .expect("export parses");
    assert_eq!(twin.len(), 54, "export fixture elements");
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    for (v, w) in arr.iter().zip(&twin) {
        assert_eq!(
            v["timestamp"], w["timestamp"],
            "the two shapes list the same events"
        );
        for absent in ["id", "device_id", "category", "model_types"] {
            assert!(v.get(absent).is_none(), "default shape has no {absent}");
        }
        out.push(Fx {
            ts: nanos(v["timestamp"].as_str().expect("timestamp")),
            device: Some(DEV_B.to_string()),
            event_type: s(v, "event_type").expect("event_type"),
            category: s(w, "category").expect("category"),
            severity: s(v, "severity").expect("severity"),
            summary: s(v, "summary").expect("summary"),
            details: v.get("details").filter(|d| !d.is_null()).cloned(),
            corr: s(v, "correlation_id"),
            peer: s(v, "peer_device_id"),
            model_types: None,
            record_count: v.get("record_count").and_then(Value::as_i64),
            duration_ms: v.get("duration_ms").and_then(Value::as_i64),
        });
    }
    out
}

fn json_key(v: &Value) -> Key {
    (
        nanos(v["timestamp"].as_str().expect("timestamp")),
        v.get("device_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        v["summary"].as_str().expect("summary").to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// Running syncscope.

/// A scratch store holding both samples (108 events).
fn ingested() -> Scratch {
    let s = Scratch::new();
    let out = s.ingest_once(&sample_sources(&s));
    assert_ok(&out, "ingest of the samples");
    s
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} exited {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// Exit 2 with one line on stderr that names `needle`, and no backtrace or report decoration.
fn assert_clean_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2; stderr: {err}\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one-line message: {err:?}"
    );
    assert!(err.starts_with("syncscope: "), "{err:?}");
    for n in needles {
        assert!(err.contains(n), "stderr should name {n:?}: {err:?}");
    }
    for bad in ["BACKTRACE", "backtrace", "panicked", "Location:", "\u{1b}"] {
        assert!(!err.contains(bad), "no {bad:?} in {err:?}");
    }
}

/// `events --count` with the exit code checked: 0 when something matched, 1 when nothing did.
fn count(s: &Scratch, filter: &[&str]) -> usize {
    let mut args = vec!["events", "--count"];
    args.extend_from_slice(filter);
    let out = s.run(&args);
    let n: usize = stdout(&out)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("events --count {filter:?}: {}", stderr(&out)));
    let want = if n == 0 { 1 } else { 0 };
    assert_eq!(
        out.status.code(),
        Some(want),
        "exit code of --count {filter:?}"
    );
    n
}

/// Checks that `events FILTER` selects exactly the fixture events `pred` accepts (by count and by
/// identity), and returns how many that is.
fn check(s: &Scratch, fx: &[Fx], filter: &[&str], pred: impl Fn(&Fx) -> bool) -> usize {
    let mut want: Vec<Key> = fx.iter().filter(|e| pred(e)).map(Fx::key).collect();
    want.sort();
    assert_eq!(count(s, filter), want.len(), "count of {filter:?}");
    let mut got: Vec<Key> = s.events_json(filter).iter().map(json_key).collect();
    got.sort();
    assert_eq!(got, want, "events of {filter:?}");
    want.len()
}

/// Like [`check`], for a filter that must select some but not all events (so it filters).
fn check_some(s: &Scratch, fx: &[Fx], filter: &[&str], pred: impl Fn(&Fx) -> bool) -> usize {
    let n = check(s, fx, filter, pred);
    assert!(
        n > 0 && n < fx.len(),
        "{filter:?} selected {n} of {}: not a useful check",
        fx.len()
    );
    n
}

/// `events ARGS -f json` parsed (exit 0 required).
fn json_of(s: &Scratch, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["events", "--format", "json"];
    a.extend_from_slice(args);
    let text = s.ok(&a);
    let v: Value = serde_json::from_str(&text).expect("json parses");
    v.as_array().expect("array").clone()
}

fn run_with_stdin(s: &Scratch, args: &[&str], input: &[u8]) -> Output {
    let mut c: Command = s.cmd();
    c.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn syncscope");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("stdin writer");
    out
}

fn events_in_store(db: &Path) -> i64 {
    if !db.exists() {
        return 0;
    }
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open store");
    c.query_row(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'events')
                THEN (SELECT count(*) FROM events) ELSE 0 END",
        [],
        |r| r.get(0),
    )
    .expect("count events")
}

fn dir_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

fn variant(name: &str) -> PathBuf {
    fixture(&format!("variants/{name}"))
}

fn spec(kind: &str, p: &Path) -> String {
    format!("{kind}:{}", p.display())
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Counts and dedup.

#[test]
fn samples_give_108_events_and_a_second_ingest_adds_nothing() {
    let s = Scratch::new();
    let sources = sample_sources(&s);
    assert_ok(&s.ingest_once(&sources), "first ingest");
    assert_eq!(count(&s, &[]), 108);
    assert_eq!(count(&s, &["--device", DEV_A]), 54);
    assert_eq!(count(&s, &["--device", DEV_B]), 54);
    let batches_before: i64 = s
        .store()
        .query_row("SELECT coalesce(max(id), 0) FROM batches", [], |r| r.get(0))
        .expect("batches");

    let out = s.ingest_once(&sources);
    assert_ok(&out, "second ingest");
    assert_eq!(count(&s, &[]), 108, "a second ingest --once adds nothing");
    let (inserted, new_inserted): (i64, i64) = s
        .store()
        .query_row(
            "SELECT sum(inserted), coalesce(sum(CASE WHEN id > ?1 THEN inserted END), 0) FROM batches",
            [batches_before],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("batches");
    assert_eq!(inserted, 108, "batches record 108 inserted in all");
    assert_eq!(new_inserted, 0, "the second run's batches inserted nothing");

    // Without -q the summary says so.
    let mut c = s.cmd();
    c.args(["ingest", "--once"]);
    for src in &sources {
        c.arg("--source").arg(src);
    }
    let out = c.output().expect("run");
    assert_ok(&out, "third ingest");
    let err = stderr(&out);
    assert!(err.contains("0 new"), "{err}");
    assert!(!err.contains("54 new"), "{err}");
}

#[test]
fn an_export_of_the_db_rows_is_stored_once() {
    let s = ingested();

    // syncscope's own JSON export of device A's rows, read back as a Spacedrive export.
    let own = s.path("own_export.json");
    let out = s.run(&[
        "events",
        "--format",
        "json",
        "--source",
        "spacedrive",
        "--device",
        "cd613e30",
        "--limit",
        "0",
        "-o",
        own.to_str().expect("utf-8 path"),
    ]);
    assert_ok(&out, "export");
    let exported: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&own).expect("read export")).expect("parses");
    assert_eq!(exported.len(), 54);
    let out = s.ingest_once(&[spec("spacedrive-json", &own)]);
    assert_ok(&out, "ingest of own export");
    assert_eq!(count(&s, &[]), 108, "own export deduplicated");

    // A hand-made `sd sync events` export of the same rows, written from sync.db with rusqlite:
    // PascalCase types, timestamps re-expressed at +02:00, model_types as arrays.
    let fx = fixture_events();
    let plus2 = chrono::FixedOffset::east_opt(2 * 3600).expect("offset");
    let hand: Vec<Value> = fx
        .iter()
        .filter(|e| e.is(DEV_A))
        .map(|e| {
            let ts = chrono::DateTime::from_timestamp_nanos(e.ts)
                .with_timezone(&plus2)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
            let mut o = json!({
                "timestamp": ts,
                "device_id": e.device,
                "event_type": pascal(&e.event_type),
                "category": e.category,
                "severity": e.severity,
                "summary": e.summary,
            });
            let m = o.as_object_mut().expect("object");
            if let Some(d) = &e.details {
                m.insert("details".into(), d.clone());
            }
            if let Some(c) = &e.corr {
                m.insert("correlation_id".into(), json!(c));
            }
            if let Some(p) = &e.peer {
                m.insert("peer_device_id".into(), json!(p));
            }
            if let Some(mt) = &e.model_types {
                m.insert("model_types".into(), json!(mt));
            }
            if let Some(n) = e.record_count {
                m.insert("record_count".into(), json!(n));
            }
            if let Some(n) = e.duration_ms {
                m.insert("duration_ms".into(), json!(n));
            }
            o
        })
        .collect();
    assert_eq!(hand.len(), 54);
    assert!(hand[0]["timestamp"]
        .as_str()
        .expect("ts")
        .ends_with("+02:00"));
    let hand_path = s.path("hand_export.json");
    std::fs::write(&hand_path, serde_json::to_vec_pretty(&hand).expect("json")).expect("write");
    let out = s.ingest_once(&[spec("spacedrive-json", &hand_path)]);
    assert_ok(&out, "ingest of hand-made export");
    assert_eq!(count(&s, &[]), 108, "hand-made export deduplicated");
    let (ins, dup): (i64, i64) = s
        .store()
        .query_row(
            "SELECT sum(inserted), sum(duplicates) FROM batches WHERE source = ?1",
            [spec("spacedrive-json", &hand_path)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("batches of the hand-made export");
    assert_eq!((ins, dup), (0, 54));
}

// ---------------------------------------------------------------------------------------------
// 2. Filters.

#[test]
fn since_and_until_absolute_are_inclusive_and_offset_aware() {
    let s = ingested();
    let fx = fixture_events();
    let t = nanos;
    check_some(&s, &fx, &["--since", "2025-12-03T11:09:22Z"], |e| {
        e.ts >= t("2025-12-03T11:09:22Z")
    });
    // Row 14 is exactly 11:09:22: --since is inclusive, and +02:00 is read as an offset.
    let a = check_some(&s, &fx, &["--since", "2025-12-03T13:09:22+02:00"], |e| {
        e.ts >= t("2025-12-03T11:09:22Z")
    });
    let b = check_some(
        &s,
        &fx,
        &["--since", "2025-12-03T11:09:22.000000001Z"],
        |e| e.ts > t("2025-12-03T11:09:22Z"),
    );
    assert_eq!(a, b + 1, "exactly one event at 11:09:22");
    check_some(&s, &fx, &["--until", "2025-12-03T12:20:36Z"], |e| {
        e.ts <= t("2025-12-03T12:20:36Z")
    });
    // Nanosecond precision at the bound (row 4 is at 10:29:33.245631564).
    let incl = check_some(
        &s,
        &fx,
        &["--until", "2025-12-03T10:29:33.245631564Z"],
        |e| e.ts <= t("2025-12-03T10:29:33.245631564Z"),
    );
    let excl = check_some(
        &s,
        &fx,
        &["--until", "2025-12-03T10:29:33.245631563Z"],
        |e| e.ts < t("2025-12-03T10:29:33.245631564Z"),
    );
    assert_eq!(incl, excl + 1);
    check_some(
        &s,
        &fx,
        &[
            "--since",
            "2025-12-03T06:00:00-05:00",
            "--until",
            "2025-12-03T12:00:00Z",
        ],
        |e| e.ts >= t("2025-12-03T11:00:00Z") && e.ts <= t("2025-12-03T12:00:00Z"),
    );
    // An empty window: nothing, exit 1, and json prints an empty array.
    check(
        &s,
        &fx,
        &[
            "--since",
            "2025-12-03T12:00:00Z",
            "--until",
            "2025-12-03T11:00:00Z",
        ],
        |_| false,
    );
    let out = s.run(&["events", "--since", "2030-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).trim(), "[]");
}

#[test]
fn since_and_until_relative_forms() {
    // The fixtures are fixed dates in the past (2025-12-03): relative times select all or none,
    // on a fixed clock a year later (on the calendar's, `1000d` would stop selecting them all
    // in 2028).
    let s = ingested().with_now("2026-12-01T12:00:00Z");
    let fx = fixture_events();
    for old in [
        "100000 hours ago",
        "5000 days ago",
        "200 weeks ago",
        "1000d",
    ] {
        check(&s, &fx, &["--since", old], |_| true);
        check(&s, &fx, &["--until", old], |_| false);
    }
    for recent in [
        "2 days ago",
        "1 hour ago",
        "30m",
        "yesterday",
        "today",
        "now",
    ] {
        check(&s, &fx, &["--since", recent], |_| false);
        check(&s, &fx, &["--until", recent], |_| true);
    }
}

#[test]
fn severity_lists_and_min_severity() {
    let s = ingested();
    let fx = fixture_events();
    check_some(&s, &fx, &["--severity", "error"], |e| e.severity == "error");
    check_some(&s, &fx, &["--severity", "Warning"], |e| {
        e.severity == "warning"
    });
    check_some(&s, &fx, &["--severity", "error,warning"], |e| {
        e.severity == "error" || e.severity == "warning"
    });
    check_some(&s, &fx, &["--severity", "debug,INFO"], |e| {
        e.severity == "debug" || e.severity == "info"
    });
    let rank = |s: &str| {
        ["debug", "info", "warning", "error"]
            .iter()
            .position(|x| *x == s)
    };
    check_some(&s, &fx, &["--min-severity", "warning"], |e| {
        rank(&e.severity) >= Some(2)
    });
    check_some(&s, &fx, &["--min-severity", "info"], |e| {
        rank(&e.severity) >= Some(1)
    });
    check(&s, &fx, &["--min-severity", "debug"], |_| true);
    check_some(&s, &fx, &["--min-severity", "Error"], |e| {
        e.severity == "error"
    });
}

#[test]
fn event_type_in_both_spellings() {
    let s = ingested();
    let fx = fixture_events();
    let a = check_some(&s, &fx, &["--event-type", "state_transition"], |e| {
        e.event_type == "state_transition"
    });
    let b = check_some(&s, &fx, &["--event-type", "StateTransition"], |e| {
        e.event_type == "state_transition"
    });
    assert_eq!(a, b);
    check_some(
        &s,
        &fx,
        &["--event-type", "SyncError,backfill_session_failed"],
        |e| e.event_type == "sync_error" || e.event_type == "backfill_session_failed",
    );
    check_some(&s, &fx, &["--event-type", "BatchIngestion"], |e| {
        e.event_type == "batch_ingestion"
    });
    check(&s, &fx, &["--event-type", "no_such_type"], |_| false);
}

#[test]
fn category_and_source() {
    let s = ingested();
    let fx = fixture_events();
    check_some(&s, &fx, &["--category", "data_flow"], |e| {
        e.category == "data_flow"
    });
    check_some(&s, &fx, &["--category", "error,network"], |e| {
        e.category == "error" || e.category == "network"
    });
    check(&s, &fx, &["--source", "spacedrive"], |_| true);
    check(&s, &fx, &["--source", "jsonl"], |_| false);
    check(&s, &fx, &["--source", "gerrit,spacedrive"], |_| true);
}

#[test]
fn device_and_peer_by_full_id_and_prefix() {
    let s = ingested();
    let fx = fixture_events();
    check_some(&s, &fx, &["--device", DEV_A], |e| e.is(DEV_A));
    check_some(&s, &fx, &["--device", "cd613e30"], |e| e.is(DEV_A));
    check_some(&s, &fx, &["--device", "1e2f"], |e| e.is(DEV_B));
    check(&s, &fx, &["--device", &format!("{DEV_A},1e2f")], |_| true);
    // Shorter than 4 characters is not a prefix.
    check(&s, &fx, &["--device", "cd6"], |_| false);
    check(&s, &fx, &["--device", "ffff0000"], |_| false);

    check_some(&s, &fx, &["--peer", DEV_B], |e| {
        e.peer.as_deref() == Some(DEV_B)
    });
    check_some(&s, &fx, &["--peer", "cd613e30"], |e| {
        e.peer.as_deref() == Some(DEV_A)
    });
    check_some(&s, &fx, &["--peer", "cd61,1e2feb89"], |e| e.peer.is_some());
}

#[test]
fn correlation_id_full_and_prefix() {
    let s = ingested();
    let fx = fixture_events();
    let full = "7ce42c82-1807-2e8c-35bf-992dc9e9c616";
    let n = check_some(&s, &fx, &["--correlation-id", full], |e| {
        e.corr.as_deref() == Some(full)
    });
    assert_eq!(
        n, 10,
        "session 7ce42c82 in sync.db: start, 8 batches, completion"
    );
    check_some(&s, &fx, &["--correlation-id", "7ce42c82"], |e| {
        e.corr.as_deref() == Some(full)
    });
    check_some(&s, &fx, &["--correlation-id", "7ce4,5c47577b"], |e| {
        e.corr
            .as_deref()
            .is_some_and(|c| c.starts_with("7ce4") || c.starts_with("5c47577b"))
    });
    check(&s, &fx, &["--correlation-id", "00000000"], |_| false);
}

#[test]
fn grep_is_a_case_insensitive_substring() {
    let s = ingested();
    let fx = fixture_events();
    let has = |needle: &str| {
        let n = needle.to_lowercase();
        move |e: &Fx| e.summary.to_lowercase().contains(&n)
    };
    let a = check_some(
        &s,
        &fx,
        &["--grep", "backfill completed"],
        has("backfill completed"),
    );
    let b = check_some(
        &s,
        &fx,
        &["--grep", "BACKFILL COMPLETED"],
        has("backfill completed"),
    );
    assert_eq!(a, b);
    check_some(
        &s,
        &fx,
        &["--grep", "ready → backfilling"],
        has("ready → backfilling"),
    );
    check_some(&s, &fx, &["--grep", "10,000"], has("10,000"));
    // LIKE wildcards are plain characters.
    check(&s, &fx, &["--grep", "%"], |_| false);
    check(&s, &fx, &["--grep", "50_"], |_| false);
}

/// The text of every column a row shows, as `events --format json` prints the row.
fn shown_text(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = [
        "summary",
        "source",
        "device_id",
        "event_type",
        "category",
        "correlation_id",
        "peer_device_id",
        "subject",
    ]
    .iter()
    .filter_map(|k| v.get(*k).and_then(Value::as_str).map(String::from))
    .collect();
    if let Some(m) = v.get("model_types").and_then(Value::as_array) {
        let names: Vec<&str> = m.iter().filter_map(Value::as_str).collect();
        out.push(names.join(","));
    }
    out
}

#[test]
fn grep_matches_every_shown_column_and_says_why_when_nothing_does() {
    let s = ingested();
    let all = json_of(&s, &["--limit", "0"]);
    assert_eq!(all.len(), 108);
    for needle in [
        "7ce42c82",
        "CD613E30",
        "batch_ingestion",
        "_",
        "spacedrive",
        "data_flow",
        "Backfill",
        "1e2feb89",
    ] {
        let n = needle.to_lowercase();
        let mut want: Vec<Key> = all
            .iter()
            .filter(|v| shown_text(v).iter().any(|t| t.to_lowercase().contains(&n)))
            .map(json_key)
            .collect();
        want.sort();
        let mut got: Vec<Key> = json_of(&s, &["--limit", "0", "--grep", needle])
            .iter()
            .map(json_key)
            .collect();
        got.sort();
        assert!(!want.is_empty(), "{needle} is shown somewhere");
        assert_eq!(got, want, "--grep {needle}");
    }
    // Only in a column, never in a summary: the correlation id of a session.
    let corr_only = json_of(&s, &["--limit", "0", "--grep", "7ce42c82-1807"]);
    assert_eq!(corr_only.len(), 10);

    let out = s.run(&["events", "--grep", "no such text anywhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no event contains \"no such text anywhere\""),
        "{}",
        stderr(&out)
    );
    let out = s.run(&["events", "--count", "--correlation-id", "00000000"]);
    assert_eq!(stdout(&out).trim(), "0");
    assert!(
        stderr(&out).contains("no correlation id is or starts with 00000000"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&[
        "events",
        "--correlation-id",
        "7ce42c82",
        "--grep",
        "no such text anywhere",
    ]);
    assert!(
        stderr(&out).contains("no event contains"),
        "{}",
        stderr(&out)
    );
    let out = s.run(&[
        "events",
        "--correlation-id",
        "7ce42c82",
        "--severity",
        "error",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no event matches all of them"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn limit_prints_the_newest_n_in_time_order_and_reverse_flips_it() {
    let s = ingested();
    let fx = fixture_events();
    let mut all: Vec<i64> = fx.iter().map(|e| e.ts).collect();
    all.sort_unstable();
    let times = |v: &[Value]| -> Vec<i64> {
        v.iter()
            .map(|e| nanos(e["timestamp"].as_str().expect("ts")))
            .collect()
    };

    let got = times(&json_of(&s, &["--limit", "5"]));
    assert_eq!(got, all[all.len() - 5..].to_vec(), "newest 5, oldest first");
    let got = times(&json_of(&s, &["--limit", "5", "--reverse"]));
    let mut want: Vec<i64> = all[all.len() - 5..].to_vec();
    want.reverse();
    assert_eq!(got, want, "newest 5, newest first");
    let got = times(&json_of(&s, &["--limit", "0"]));
    assert_eq!(got, all, "--limit 0 is everything, in time order");
    let got = times(&json_of(&s, &["--reverse"]));
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(got, rev, "--reverse is newest first");
    let got = times(&json_of(&s, &["--limit", "500"]));
    assert_eq!(got.len(), 108);

    // With a filter: the newest 3 batch ingestions of device B.
    let mut b: Vec<i64> = fx
        .iter()
        .filter(|e| e.is(DEV_B) && e.event_type == "batch_ingestion")
        .map(|e| e.ts)
        .collect();
    b.sort_unstable();
    let got = times(&json_of(
        &s,
        &[
            "--limit",
            "3",
            "--device",
            "1e2feb89",
            "--event-type",
            "batch_ingestion",
        ],
    ));
    assert_eq!(got, b[b.len() - 3..].to_vec());
    // Every other format obeys --limit too.
    let out = s.ok(&["events", "--limit", "4", "--format", "jsonl"]);
    assert_eq!(out.lines().count(), 4);
    let out = s.ok(&["events", "--limit", "4", "--format", "table"]);
    assert_eq!(out.lines().count(), 5, "header + 4");
}

#[test]
fn default_limit_is_the_newest_1000() {
    let s = Scratch::new();
    let path = s.path("many.jsonl");
    let mut text = String::new();
    for i in 0..1005 {
        text.push_str(&format!(
            "{{\"timestamp\":\"2025-12-03T10:00:00Z\",\"event_type\":\"batch_ingestion\",\"summary\":\"event {i:04}\",\"record_count\":{i}}}\n"
        ));
    }
    // Same timestamp everywhere would make "newest" ambiguous: give each its own second.
    let text: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let ts = chrono::DateTime::from_timestamp(1_764_756_000 + i as i64, 0)
                .expect("ts")
                .to_rfc3339();
            l.replace("2025-12-03T10:00:00Z", &ts) + "\n"
        })
        .collect();
    std::fs::write(&path, text).expect("write");
    assert_ok(&s.ingest_once(&[spec("jsonl", &path)]), "ingest");
    assert_eq!(count(&s, &[]), 1005);
    let out = s.ok(&["events", "--format", "jsonl"]);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl line"))
        .collect();
    assert_eq!(lines.len(), 1000, "default --limit is 1000");
    assert_eq!(
        lines[0]["summary"], "event 0005",
        "the oldest 5 are left out"
    );
    assert_eq!(lines[999]["summary"], "event 1004");
    assert_eq!(s.events_json(&[]).len(), 1005, "--limit 0 is all");
}

#[test]
fn filters_combine_with_and() {
    let s = ingested();
    let fx = fixture_events();
    check_some(
        &s,
        &fx,
        &[
            "--device",
            "cd61",
            "--event-type",
            "BatchIngestion",
            "--since",
            "2025-12-03T11:00:00Z",
        ],
        |e| {
            e.is(DEV_A)
                && e.event_type == "batch_ingestion"
                && e.ts >= nanos("2025-12-03T11:00:00Z")
        },
    );
    check_some(
        &s,
        &fx,
        &["--severity", "warning,error", "--category", "error"],
        |e| (e.severity == "warning" || e.severity == "error") && e.category == "error",
    );
    check_some(
        &s,
        &fx,
        &[
            "--min-severity",
            "info",
            "--grep",
            "peer",
            "--device",
            DEV_B,
        ],
        |e| e.severity != "debug" && e.summary.to_lowercase().contains("peer") && e.is(DEV_B),
    );
    check_some(
        &s,
        &fx,
        &[
            "--peer",
            "cd613e30",
            "--correlation-id",
            "5c47577b",
            "--until",
            "2025-12-03T12:10:30Z",
        ],
        |e| {
            e.peer.as_deref() == Some(DEV_A)
                && e.corr.as_deref().is_some_and(|c| c.starts_with("5c47577b"))
                && e.ts <= nanos("2025-12-03T12:10:30Z")
        },
    );
    check(
        &s,
        &fx,
        &[
            "--device",
            "cd61",
            "--severity",
            "error",
            "--category",
            "network",
        ],
        |e| e.is(DEV_A) && e.severity == "error" && e.category == "network",
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Formats.

/// The fields of `sd sync events` exports (format doc, sections 1 and 5) plus id, source, subject.
const JSON_FIELDS: &[&str] = &[
    "id",
    "timestamp",
    "device_id",
    "event_type",
    "category",
    "severity",
    "summary",
    "details",
    "correlation_id",
    "peer_device_id",
    "model_types",
    "record_count",
    "duration_ms",
    "source",
    "subject",
];

#[test]
fn json_uses_the_spacedrive_field_names_and_matches_the_fixtures() {
    let s = ingested();
    let fx = fixture_events();
    let out = s.ok(&["events", "--format", "json", "--limit", "0"]);
    let v: Value = serde_json::from_str(&out).expect("json parses");
    let arr = v.as_array().expect("a JSON array");
    assert_eq!(arr.len(), 108);
    let mut ids = BTreeSet::new();
    for e in arr {
        let o = e.as_object().expect("object");
        for k in o.keys() {
            assert!(JSON_FIELDS.contains(&k.as_str()), "unexpected field {k}");
        }
        for k in [
            "id",
            "timestamp",
            "event_type",
            "category",
            "severity",
            "summary",
            "source",
        ] {
            assert!(o.contains_key(k), "{k} missing in {e}");
        }
        assert!(
            ids.insert(e["id"].as_i64().expect("integer id")),
            "ids unique"
        );
        let ts = e["timestamp"].as_str().expect("ts");
        assert!(
            ts.ends_with('Z') && !ts.contains("+00:00"),
            "UTC as Spacedrive's JSON export writes it: {ts}"
        );
        let key = json_key(e);
        let f = fx
            .iter()
            .find(|f| f.key() == key)
            .unwrap_or_else(|| panic!("no fixture event for {e}"));
        assert_eq!(e["source"], "spacedrive");
        assert_eq!(e["device_id"].as_str(), f.device.as_deref());
        assert_eq!(e["event_type"], f.event_type.as_str());
        assert_eq!(e["category"], f.category.as_str());
        assert_eq!(e["severity"], f.severity.as_str());
        assert_eq!(e.get("details"), f.details.as_ref(), "details of {key:?}");
        assert_eq!(
            e.get("correlation_id").and_then(Value::as_str),
            f.corr.as_deref()
        );
        assert_eq!(
            e.get("peer_device_id").and_then(Value::as_str),
            f.peer.as_deref()
        );
        assert_eq!(
            e.get("model_types"),
            f.model_types.as_ref().map(|m| json!(m)).as_ref()
        );
        assert_eq!(
            e.get("record_count").and_then(Value::as_i64),
            f.record_count
        );
        assert_eq!(e.get("duration_ms").and_then(Value::as_i64), f.duration_ms);
        assert!(
            o.get("subject").is_none(),
            "Spacedrive events have no subject"
        );
    }
    // One well-known event in full (format doc, section 4).
    let overflow = arr
        .iter()
        .find(|e| e["summary"] == "Buffer overflow: 2,105 updates dropped during backfill")
        .expect("sync.db row 22");
    assert_eq!(overflow["timestamp"], "2025-12-03T11:12:39.909954310Z");
    assert_eq!(overflow["details"]["dropped_count"], 2105);
    assert_eq!(
        overflow["correlation_id"],
        "64b2d2bc-815a-47c5-f0df-b4a5d8a064df"
    );
    // Nothing matched: an empty array and exit 1.
    let out = s.run(&["events", "--format", "json", "--grep", "no such text"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("parses");
    assert_eq!(v, json!([]));
}

#[test]
fn jsonl_is_one_object_per_line_like_json() {
    let s = ingested();
    let arr = s.events_json(&[]);
    let out = s.ok(&["events", "--format", "jsonl", "--limit", "0"]);
    assert!(out.ends_with('\n'));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 108);
    assert_eq!(lines, arr, "jsonl holds the json array's objects, in order");
    let out = s.run(&[
        "events",
        "--format",
        "jsonl",
        "--severity",
        "error",
        "--device",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

fn sql_rows(c: &rusqlite::Connection) -> Vec<Vec<rusqlite::types::Value>> {
    let mut st = c
        .prepare(
            "SELECT timestamp, device_id, event_type, category, severity, summary, details,
                    correlation_id, peer_device_id, model_types, record_count, duration_ms
             FROM sync_event_log ORDER BY id",
        )
        .expect("prepare");
    st.query_map([], |r| {
        (0..12)
            .map(|i| r.get::<_, rusqlite::types::Value>(i))
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

#[test]
fn sql_loads_into_an_empty_database_with_rusqlite_and_sqlite3() {
    use rusqlite::types::Value as Sql;
    let s = ingested();
    let more = s.ingest_once(&[
        spec("jsonl", &variant("mixed.jsonl")),
        spec("spacedrive-json", &variant("export_variants.json")),
    ]);
    assert_ok(&more, "ingest variants");
    let total = count(&s, &[]);
    assert_eq!(total, 108 + 11 + 5);

    let sql_path = s.path("out.sql");
    s.ok(&[
        "events",
        "--format",
        "sql",
        "--limit",
        "0",
        "-o",
        sql_path.to_str().expect("utf-8"),
    ]);
    let sql = std::fs::read_to_string(&sql_path).expect("read sql");
    assert!(
        sql.contains("CREATE TABLE IF NOT EXISTS sync_event_log"),
        "schema included"
    );
    assert_eq!(
        sql.matches("INSERT INTO sync_event_log").count(),
        total,
        "one INSERT per event"
    );
    assert!(sql.contains(&format!("-- Events: {total}")));
    let json = s.events_json(&[]);

    let a = rusqlite::Connection::open(s.path("a.db")).expect("open");
    a.execute_batch(&sql)
        .expect("the SQL export runs in rusqlite");
    let rows = sql_rows(&a);
    assert_eq!(rows.len(), total);
    let text = |v: &Sql| match v {
        Sql::Text(t) => Some(t.clone()),
        Sql::Null => None,
        other => panic!("expected text, got {other:?}"),
    };
    let int = |v: &Sql| match v {
        Sql::Integer(n) => Some(*n),
        Sql::Null => None,
        other => panic!("expected an integer, got {other:?}"),
    };
    for (row, e) in rows.iter().zip(&json) {
        let js = |k: &str| e.get(k).and_then(Value::as_str).map(String::from);
        // The SQL export keeps Spacedrive's to_rfc3339 form (+00:00), JSON its `Z` form.
        assert_eq!(
            text(&row[0]),
            js("timestamp").map(|t| t.replace('Z', "+00:00"))
        );
        // Spacedrive's column is NOT NULL: an event without a device has ''.
        assert_eq!(text(&row[1]), Some(js("device_id").unwrap_or_default()));
        assert_eq!(text(&row[2]), js("event_type"));
        assert_eq!(text(&row[3]), js("category"));
        assert_eq!(text(&row[4]), js("severity"));
        assert_eq!(text(&row[5]), js("summary"), "summaries survive quoting");
        let details = text(&row[6]).map(|d| serde_json::from_str::<Value>(&d).expect("details"));
        assert_eq!(details.as_ref(), e.get("details"));
        assert_eq!(text(&row[7]), js("correlation_id"));
        assert_eq!(text(&row[8]), js("peer_device_id"));
        let models = e.get("model_types").map(|m| {
            m.as_array()
                .expect("array")
                .iter()
                .map(|x| x.as_str().expect("str"))
                .collect::<Vec<_>>()
                .join(",")
        });
        assert_eq!(
            text(&row[9]),
            models,
            "model_types as Spacedrive's comma list"
        );
        assert_eq!(int(&row[10]), e.get("record_count").and_then(Value::as_i64));
        assert_eq!(int(&row[11]), e.get("duration_ms").and_then(Value::as_i64));
    }
    let quoted = rows
        .iter()
        .filter_map(|r| text(&r[5]))
        .find(|t| t.starts_with("Peer's"))
        .expect("the quote/newline summary");
    assert_eq!(
        quoted,
        "Peer's \"name\" has a quote; DROP TABLE sync_event_log; --\nsecond line"
    );

    // The same file through the sqlite3 command-line shell.
    if !common::have_tools(
        "sql_loads_into_an_empty_database_with_rusqlite_and_sqlite3 (its `sqlite3 new.db < out.sql` half)",
        &[("sqlite3", "sqlite3")],
    ) {
        return;
    }
    let Ok(status) = Command::new("sqlite3").arg("--version").output() else {
        panic!("sqlite3 is installed but does not run");
    };
    assert!(status.status.success());
    let b_path = s.path("b.db");
    let out = Command::new("sqlite3")
        .arg(&b_path)
        .stdin(std::fs::File::open(&sql_path).expect("open sql"))
        .output()
        .expect("run sqlite3");
    assert_ok(&out, "sqlite3 new.db < out.sql");
    assert!(
        out.stderr.is_empty(),
        "sqlite3 complained: {}",
        stderr(&out)
    );
    let b = rusqlite::Connection::open(&b_path).expect("open");
    assert_eq!(sql_rows(&b), rows, "sqlite3 loads the same rows");
}

/// `|` characters in a markdown line that are not escaped by a backslash.
fn unescaped_pipes(line: &str) -> usize {
    let mut n = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '|' => n += 1,
            _ => {}
        }
    }
    n
}

#[test]
fn markdown_has_title_count_header_and_escaped_pipes() {
    let s = Scratch::new();
    assert_ok(
        &s.ingest_once(&[spec("jsonl", &variant("mixed.jsonl"))]),
        "ingest",
    );
    let out = s.ok(&["events", "--format", "markdown"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "# Sync Event Log");
    assert!(out.contains("\n**Exported**: "), "{out}");
    assert!(out.contains("\n**Event Count**: 11\n"), "{out}");
    let header = lines
        .iter()
        .position(|l| *l == "| Timestamp | Event Type | Severity | Summary |")
        .expect("table header");
    assert!(lines[header + 1].starts_with("|---"));
    let rows: Vec<&str> = lines[header + 2..].to_vec();
    assert_eq!(rows.len(), 11, "one row per event, none split by a newline");
    for r in &rows {
        // Four cells: the unescaped `|` are exactly the five borders.
        assert_eq!(unescaped_pipes(r), 5, "row {r:?}");
        assert!(!r.contains('\u{1b}'));
    }
    assert!(
        out.contains(
            "| 2025-12-03 10:03:00 | SyncError | Warning | Stuck dependencies \\| 12 records waiting for 3 missing parents |"
        ),
        "{out}"
    );
    assert!(
        out.contains("Catch-up done \\| back\\\\slash \\| two pipes |"),
        "{out}"
    );
    // The count line follows --limit and filters.
    let out = s.ok(&["events", "--format", "markdown", "--limit", "3"]);
    assert!(out.contains("**Event Count**: 3\n"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("| 2025-")).count(), 3);
    let out = s.ok(&["events", "--format", "markdown", "--severity", "warning"]);
    assert!(out.contains("**Event Count**: 2\n"), "{out}");
}

#[test]
fn table_is_aligned_and_never_prints_control_characters() {
    let s = ingested();
    assert_ok(
        &s.ingest_once(&[spec("jsonl", &variant("mixed.jsonl"))]),
        "ingest",
    );
    let out = s.run(&["events", "--format", "table", "--limit", "0"]);
    assert_ok(&out, "table");
    assert!(
        !out.stdout.contains(&0x1b),
        "an ESC byte reached the output"
    );
    assert!(!out.stdout.contains(&0x07), "a BEL byte reached the output");
    let text = stdout(&out);
    assert!(
        text.contains("Catch-up ␛[31mred␛[0m ␛]0;pwned␇ started"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 108 + 11, "header + one line per event");
    assert!(lines[0].starts_with("TIME (UTC)"));
    // Columns: time 23, source 10, severity 8, type 26, device 8, then the summary.
    let seps = [23, 34, 43, 70, 79];
    for l in &lines {
        let chars: Vec<char> = l.chars().collect();
        assert!(chars.len() > 80, "{l:?}");
        for p in seps {
            assert_eq!(chars[p], ' ', "column separator at {p} in {l:?}");
        }
        assert!(!chars.iter().any(|c| c.is_control()), "{l:?}");
    }
    let field = |l: &str, a: usize, b: usize| -> String {
        l.chars()
            .skip(a)
            .take(b - a)
            .collect::<String>()
            .trim_end()
            .to_string()
    };
    assert_eq!(field(lines[0], 35, 43), "SEVERITY");
    for l in &lines[1..] {
        let time = field(l, 0, 23);
        chrono::NaiveDateTime::parse_from_str(&time, "%Y-%m-%d %H:%M:%S%.3f")
            .unwrap_or_else(|e| panic!("time column {time:?}: {e}"));
        assert!(
            ["spacedrive", "jsonl"].contains(&field(l, 24, 34).as_str()),
            "{l}"
        );
        assert!(
            ["debug", "info", "warning", "error"].contains(&field(l, 35, 43).as_str()),
            "{l}"
        );
    }
    // Times are UTC: 12:00+02:00 shows as 10:00.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("2025-12-03 10:00:00.000 jsonl      info     state_transition")),
        "{text}"
    );
    // A summary with a newline stays on its line.
    assert!(
        text.contains("DROP TABLE sync_event_log; -- second line"),
        "{text}"
    );
}

#[test]
fn output_file_is_written_atomically() {
    let s = ingested();
    let before = dir_names(s.dir.path());
    let target = s.path("export.json");
    let out = s.run(&[
        "events",
        "--limit",
        "0",
        "-o",
        target.to_str().expect("utf-8"),
    ]);
    assert_ok(&out, "events -o");
    assert!(out.stdout.is_empty(), "nothing on stdout with -o");
    let written = std::fs::read(&target).expect("file written");
    assert_eq!(
        written,
        s.ok(&["events", "--limit", "0"]).into_bytes(),
        "-o writes what stdout would show"
    );
    let v: Value = serde_json::from_slice(&written).expect("parses");
    assert_eq!(v.as_array().map(Vec::len), Some(108));
    let after = dir_names(s.dir.path());
    let new: Vec<&String> = after.difference(&before).collect();
    assert_eq!(new, vec!["export.json"], "no temporary file left behind");

    // A second run replaces the file; every format can go to a file.
    for fmt in ["json", "jsonl", "sql", "markdown", "table"] {
        let out = s.run(&[
            "events",
            "--severity",
            "error",
            "--format",
            fmt,
            "-o",
            target.to_str().expect("utf-8"),
        ]);
        assert_ok(&out, fmt);
        let text = std::fs::read_to_string(&target).expect("read");
        assert!(text.contains("Buffer overflow"), "{fmt}: {text}");
        assert!(
            !text.contains("Stuck dependencies"),
            "{fmt}: replaced, not appended"
        );
    }
    assert_eq!(dir_names(s.dir.path()), after, "still no temporary files");
}

#[test]
fn output_into_a_missing_directory_fails_and_leaves_nothing() {
    let s = ingested();
    let before = dir_names(s.dir.path());
    let target = s.path("no_such_dir").join("out.json");
    let shown = target.to_str().expect("utf-8");
    let out = s.run(&["events", "-o", shown]);
    assert_clean_error(&out, &[shown]);
    assert!(out.stdout.is_empty());
    assert!(
        !s.path("no_such_dir").exists(),
        "the directory is not created"
    );
    assert_eq!(dir_names(s.dir.path()), before, "nothing left behind");

    // The output path is a directory.
    let dir = s.path("a_dir");
    std::fs::create_dir(&dir).expect("mkdir");
    let out = s.run(&["events", "-o", dir.to_str().expect("utf-8")]);
    assert_clean_error(&out, &[dir.to_str().expect("utf-8"), "directory"]);
    assert!(dir_names(&dir).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 4. Input variants of the format document.

fn without_id(mut v: Value) -> Value {
    v.as_object_mut().expect("object").remove("id");
    v
}

#[test]
fn jsonl_variants_are_normalised() {
    let s = Scratch::new();
    let out = s.ingest_once(&[spec("jsonl", &variant("mixed.jsonl"))]);
    assert_ok(&out, "ingest mixed.jsonl");
    let got: Vec<Value> = s.events_json(&[]).into_iter().map(without_id).collect();
    let want = vec![
        json!({"timestamp": "2025-12-03T10:00:00Z", "device_id": VAR_DEV,
               "event_type": "state_transition", "category": "lifecycle", "severity": "info",
               "summary": "Ready → Backfilling", "details": {"from": "Ready", "to": "Backfilling"},
               "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:01:00.500Z", "device_id": VAR_DEV,
               "event_type": "batch_ingestion", "category": "data_flow", "severity": "debug",
               "summary": "camelCase batch of 500 records", "correlation_id": VAR_CORR,
               "peer_device_id": VAR_PEER, "model_types": ["entry", "tag"],
               "record_count": 500, "duration_ms": 1200, "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:02:00.123456789Z", "device_id": VAR_DEV,
               "event_type": "batch_ingestion", "category": "data_flow", "severity": "debug",
               "summary": "snake_case batch of 1,000 records", "correlation_id": VAR_CORR,
               "peer_device_id": VAR_PEER, "model_types": ["entry", "tag", "location"],
               "record_count": 1000, "duration_ms": 2000, "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:03:00Z", "device_id": VAR_DEV,
               "event_type": "sync_error", "category": "error", "severity": "warning",
               "summary": "Stuck dependencies | 12 records waiting for 3 missing parents",
               "details": {"total_dependencies": 3, "total_waiting_updates": 12},
               "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:04:00Z", "device_id": VAR_DEV,
               "event_type": "backfill_session_failed", "category": "lifecycle",
               "severity": "error", "summary": "Backfill failed: peer went away",
               "correlation_id": VAR_CORR, "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:05:00Z", "device_id": VAR_DEV,
               "event_type": "peer_disconnected", "category": "network", "severity": "info",
               "summary": "All optional fields null", "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:06:00Z",
               "event_type": "peer_connected", "category": "network", "severity": "info",
               "summary": "No device id in this line", "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:07:00Z", "device_id": VAR_DEV,
               "event_type": "WatermarkReset", "category": "maintenance", "severity": "error",
               "summary": "Unknown event type kept as given", "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:08:00Z", "device_id": VAR_DEV,
               "event_type": "catch_up_session_started", "category": "lifecycle",
               "severity": "debug",
               "summary": "Catch-up \u{1b}[31mred\u{1b}[0m \u{1b}]0;pwned\u{7} started",
               "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:09:00Z", "device_id": VAR_DEV,
               "event_type": "catch_up_session_completed", "category": "lifecycle",
               "severity": "warning", "summary": "Catch-up done | back\\slash | two pipes",
               "source": "jsonl"}),
        json!({"timestamp": "2025-12-03T10:10:00Z", "device_id": VAR_DEV,
               "event_type": "sync_error", "category": "error", "severity": "error",
               "summary": "Peer's \"name\" has a quote; DROP TABLE sync_event_log; --\nsecond line",
               "source": "jsonl"}),
    ];
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w);
    }

    // Stored as UTC: the 12:00+02:00 event is the one at 10:00Z, however the bound is written.
    let one = s.events_json(&[
        "--since",
        "2025-12-03T12:00:00+02:00",
        "--until",
        "2025-12-03T04:30:00-05:30",
    ]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["summary"], "Ready → Backfilling");
    let ts: i64 = s
        .store()
        .query_row(
            "SELECT ts FROM events WHERE summary = 'camelCase batch of 500 records'",
            [],
            |r| r.get(0),
        )
        .expect("stored ts");
    assert_eq!(
        ts,
        nanos("2025-12-03T10:01:00.5Z"),
        "04:31:00.5-05:30 is 10:01:00.5 UTC"
    );

    // The spellings work in filters too.
    assert_eq!(count(&s, &["--event-type", "BatchIngestion"]), 2);
    assert_eq!(
        count(&s, &["--event-type", "catch_up_session_completed"]),
        1
    );
    assert_eq!(count(&s, &["--event-type", "WatermarkReset"]), 1);
    assert_eq!(count(&s, &["--category", "maintenance"]), 1);
    assert_eq!(count(&s, &["--severity", "warning"]), 2);
    assert_eq!(count(&s, &["--severity", "error"]), 3);
    assert_eq!(
        count(&s, &["--device", "aaaa"]),
        10,
        "all but the line without a device"
    );
    assert_eq!(count(&s, &["--peer", "bbbb2222"]), 2);
    assert_eq!(count(&s, &["--correlation-id", "c0ffee00"]), 3);
    assert_eq!(count(&s, &["--source", "jsonl"]), 11);
    // Ingesting the file again adds nothing.
    assert_ok(
        &s.ingest_once(&[spec("jsonl", &variant("mixed.jsonl"))]),
        "again",
    );
    assert_eq!(count(&s, &[]), 11);
}

#[test]
fn spacedrive_export_variants_are_normalised() {
    let s = Scratch::new();
    let out = s.ingest_once(&[spec("spacedrive-json", &variant("export_variants.json"))]);
    assert_ok(&out, "ingest export_variants.json");
    let got: Vec<Value> = s.events_json(&[]).into_iter().map(without_id).collect();
    let want = vec![
        json!({"timestamp": "2025-12-04T09:00:00Z", "device_id": EXP_DEV,
               "event_type": "peer_connected", "category": "network", "severity": "info",
               "summary": "Peer eeee5555 connected", "peer_device_id": EXP_PEER,
               "source": "spacedrive"}),
        json!({"timestamp": "2025-12-04T09:00:30.250Z", "device_id": EXP_DEV,
               "event_type": "batch_ingestion", "category": "data_flow", "severity": "debug",
               "summary": "Ingested batch of 2,000 records", "correlation_id": EXP_CORR,
               "peer_device_id": EXP_PEER, "model_types": ["entry", "tag"],
               "record_count": 2000, "duration_ms": 900, "source": "spacedrive"}),
        json!({"timestamp": "2025-12-04T09:01:00Z",
               "event_type": "sync_error", "category": "error", "severity": "warning",
               "summary": "Watermark too old: 35 days (threshold: 25 days), forcing full sync",
               "details": {"watermark_age_days": 35, "threshold_days": 25, "action": "force_full_sync"},
               "source": "spacedrive"}),
        json!({"timestamp": "2025-12-04T09:02:00.987654321Z", "device_id": EXP_DEV,
               "event_type": "backfill_session_completed", "category": "lifecycle",
               "severity": "info", "summary": "Backfill completed: 2,000 records",
               "correlation_id": EXP_CORR, "model_types": ["entry", "tag"],
               "record_count": 2000, "duration_ms": 900, "source": "spacedrive"}),
        json!({"timestamp": "2025-12-04T09:03:00Z", "device_id": EXP_DEV,
               "event_type": "ConflictResolved", "category": "Conflict", "severity": "error",
               "summary": "Unknown type from a newer Spacedrive", "source": "spacedrive"}),
    ];
    assert_eq!(got, want);
    assert_eq!(count(&s, &["--device", EXP_DEV]), 4);
    assert_eq!(
        count(&s, &["--category", "data_flow"]),
        1,
        "DataFlow is data_flow"
    );
    let out = s.run(&["rejects", "-f", "json"]);
    assert_ok(&out, "rejects");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).expect("json"),
        json!([])
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Rejects.

#[test]
fn bad_lines_are_rejected_with_their_line_numbers_and_good_ones_kept() {
    let s = Scratch::new();
    let path = s.path("events.jsonl");
    let good = |n: u32, what: &str| {
        format!(
            "{{\"timestamp\":\"2025-12-03T10:00:0{n}Z\",\"device_id\":\"{VAR_DEV}\",\"event_type\":\"peer_connected\",\"summary\":\"{what}\"}}"
        )
    };
    let long = format!(
        "{{\"timestamp\":\"2025-12-03T10:00:07Z\",\"event_type\":\"peer_connected\",\"summary\":\"{}\"}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let lines = [
        good(1, "good one"),                                                          // 1
        "{\"timestamp\": \"2025-12-03T10:00:02Z\", \"event_type\": \"x\", \"summary\": ".into(), // 2
        String::new(),                                                                // 3 (blank)
        good(4, "good four") + "\r",                                                  // 4 (CRLF)
        "{\"event_type\":\"peer_connected\",\"summary\":\"no time\"}".into(),         // 5
        "{\"timestamp\":\"last tuesday\",\"event_type\":\"peer_connected\",\"summary\":\"bad time\"}".into(), // 6
        long,                                                                         // 7
        good(8, "good eight"),                                                        // 8
        "not json at all".into(),                                                     // 9
    ];
    let mut text = lines.join("\n");
    text.push('\n');
    text.push_str(&good(9, "good ten, no newline at the end")); // 10
    std::fs::write(&path, text).expect("write");

    let mut c = s.cmd();
    c.args(["ingest", "--once", "--source", &spec("jsonl", &path)]);
    let out = c.output().expect("run ingest");
    // Rejects are reported, not fatal: ingest exits 0 (src/commands/ingest.rs).
    assert_ok(&out, "ingest with bad lines");
    let err = stderr(&out);
    assert!(err.contains("4 new"), "{err}");
    assert!(err.contains("5 rejected"), "{err}");
    assert!(
        err.contains("syncscope rejects"),
        "points to the rejects command: {err}"
    );

    let summaries: Vec<String> = s
        .events_json(&[])
        .iter()
        .map(|e| e["summary"].as_str().expect("summary").to_string())
        .collect();
    assert_eq!(
        summaries,
        [
            "good one",
            "good four",
            "good eight",
            "good ten, no newline at the end"
        ]
    );

    let out = s.run(&["rejects", "-f", "json"]);
    assert_ok(&out, "rejects -f json");
    let rejects: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .expect("rejects -f json parses")
        .as_array()
        .expect("array")
        .clone();
    let shown = path.display().to_string();
    let mut by_loc: Vec<(String, String)> = rejects
        .iter()
        .map(|r| {
            assert_eq!(r["source"], spec("jsonl", &path).as_str());
            assert!(r["excerpt"].as_str().expect("excerpt").len() <= 200);
            assert!(r["received"].as_str().is_some_and(|t| !t.is_empty()));
            (
                r["location"].as_str().expect("location").to_string(),
                r["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    by_loc.sort();
    let want_lines = [2, 5, 6, 7, 9];
    let mut want_locs: Vec<String> = want_lines.iter().map(|n| format!("{shown}:{n}")).collect();
    want_locs.sort();
    assert_eq!(
        by_loc.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        want_locs,
        "one reject per bad line, at FILE:LINE"
    );
    let reason = |n: u32| {
        by_loc
            .iter()
            .find(|(l, _)| *l == format!("{shown}:{n}"))
            .map(|(_, r)| r.clone())
            .expect("reject")
    };
    assert!(reason(2).contains("invalid JSON"), "{}", reason(2));
    assert!(reason(5).contains("timestamp"), "{}", reason(5));
    assert!(reason(6).contains("last tuesday"), "{}", reason(6));
    assert!(reason(6).contains("RFC 3339"), "{}", reason(6));
    assert!(reason(7).contains("longer than"), "{}", reason(7));
    assert!(reason(9).contains("invalid JSON"), "{}", reason(9));

    let table = s.ok(&["rejects"]);
    for n in want_lines {
        assert!(
            table.contains(&format!("{shown}:{n}\n")),
            "table lists line {n}: {table}"
        );
    }
    assert_eq!(table.matches("  reason: ").count(), 5, "{table}");
    assert!(!table.contains('\u{1b}'));
}

// ---------------------------------------------------------------------------------------------
// 6. Errors.

#[test]
fn a_missing_source_fails_before_anything_is_written() {
    let s = Scratch::new();
    let mut sources = sample_sources(&s);
    let missing = s.path("missing.jsonl");
    sources.push(spec("jsonl", &missing));
    let out = s.ingest_once(&sources);
    assert_clean_error(&out, &[missing.to_str().expect("utf-8")]);
    assert_eq!(events_in_store(&s.db()), 0, "nothing half-written");

    let missing_db = s.path("missing_sync.db");
    let out = s.ingest_once(&[sources[1].clone(), spec("spacedrive-db", &missing_db)]);
    assert_clean_error(&out, &[missing_db.to_str().expect("utf-8")]);
    assert_eq!(events_in_store(&s.db()), 0);
}

#[test]
fn a_directory_given_as_a_source_file_fails_cleanly() {
    let s = Scratch::new();
    let good = sample_sources(&s);
    let dir = s.path("a_directory");
    std::fs::create_dir(&dir).expect("mkdir");
    for kind in ["jsonl", "spacedrive-json", "spacedrive-db"] {
        let out = s.ingest_once(&[good[0].clone(), good[1].clone(), spec(kind, &dir)]);
        assert_clean_error(&out, &[dir.to_str().expect("utf-8"), "directory"]);
        assert_eq!(events_in_store(&s.db()), 0, "{kind}: nothing half-written");
    }
}

#[test]
fn an_unreadable_source_fails_cleanly() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let good = sample_sources(&s);
    let p = s.path("secret.jsonl");
    std::fs::copy(variant("mixed.jsonl"), &p).expect("copy");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let mut c = s.cmd();
    if std::fs::File::open(&p).is_ok() {
        // Root reads a mode-000 file: the ingest runs as nobody instead (never skipped).
        use std::os::unix::process::CommandExt;
        std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod scratch");
        c.uid(65534).gid(65534);
    }
    let out = c
        .args(["ingest", "--once", "-q", "--source", &good[0], "--source"])
        .arg(spec("jsonl", &p))
        .output()
        .expect("run ingest");
    assert_clean_error(&out, &[p.to_str().expect("utf-8"), "ermission"]);
    assert_eq!(events_in_store(&s.db()), 0);
}

#[test]
fn a_file_that_is_not_a_sync_db_fails_a_once_run_quickly() {
    let s = Scratch::new();
    let junk = s.path("not_a_db.db");
    std::fs::write(&junk, vec![b'x'; 8192]).expect("write junk");
    let t = std::time::Instant::now();
    let out = s.ingest_once(&[spec("spacedrive-db", &junk)]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "gave up after {:?}",
        t.elapsed()
    );
    assert_clean_error(&out, &[junk.to_str().expect("utf-8"), "not a database"]);

    // A real SQLite file without Spacedrive's table: same.
    let other = s.path("other.db");
    rusqlite::Connection::open(&other)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x);"))
        .expect("make other db");
    let out = s.ingest_once(&[spec("spacedrive-db", &other)]);
    assert_clean_error(&out, &[other.to_str().expect("utf-8"), "sync_event_log"]);
}

#[test]
fn readers_never_create_a_store() {
    let s = Scratch::new();
    for args in [
        &["events"][..],
        &["events", "--count"],
        &["sources"],
        &["rejects"],
    ] {
        let out = s.run(args);
        assert_clean_error(&out, &["no store at", s.db().to_str().expect("utf-8")]);
        assert!(!s.db().exists(), "{args:?} created a store");
    }
}

#[test]
fn follow_into_a_file_writes_as_it_grows() {
    let s = ingested();
    let out_file = s.path("live.jsonl");
    let mut child = s
        .cmd()
        .args([
            "events", "--follow", "--format", "jsonl", "--limit", "5", "-o",
        ])
        .arg(&out_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn events --follow");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut lines = 0;
    while std::time::Instant::now() < deadline {
        lines = std::fs::read_to_string(&out_file)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines == 5 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        lines, 5,
        "the newest 5 events are in the file while it runs"
    );
}

#[test]
fn bad_command_line_values_exit_2_with_one_line() {
    let s = ingested();
    let out = s.run(&["events", "--since", "the day before"]);
    assert_clean_error(&out, &["--since", "the day before"]);
    let out = s.run(&["events", "--until", "2025-13-45"]);
    assert_clean_error(&out, &["--until", "2025-13-45"]);
    let out = s.run(&["events", "--count", "--since", "soonish"]);
    assert_clean_error(&out, &["soonish"]);
    let out = s.run(&["ingest", "--once", "--source", "kafka:topic"]);
    assert_clean_error(&out, &["kafka"]);

    // Usage errors from the argument parser: exit 2, one line naming the value.
    for (args, value) in [
        (&["events", "--format", "xml"][..], "xml"),
        (&["events", "--severity", "loud"][..], "loud"),
        (&["events", "--limit", "many"][..], "many"),
        (&["events", "--bogus"][..], "--bogus"),
    ] {
        let out = s.run(args);
        assert_clean_error(&out, &[value, "--help"]);
        assert!(out.stdout.is_empty());
    }
    // Help is not an error.
    let out = s.run(&["events", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--correlation-id"));
    let out = s.run(&["events", "--format", "xml"]);
    assert!(
        stderr(&out).contains("json, jsonl, sql, markdown, table"),
        "lists the formats"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Standard input.

#[test]
fn jsonl_and_spacedrive_json_from_stdin() {
    let s = Scratch::new();
    let input = "{\"timestamp\":\"2025-12-03T10:00:00Z\",\"device_id\":\"feed0001\",\"event_type\":\"PeerConnected\",\"summary\":\"from stdin one\"}\n\
                 {broken\n\
                 {\"timestamp\":\"2025-12-03T11:00:00+01:00\",\"device_id\":\"feed0001\",\"event_type\":\"peer_disconnected\",\"summary\":\"from stdin two\"}\n\
                 {\"timestamp\":\"2025-12-03T10:00:02Z\",\"device_id\":\"feed0001\",\"event_type\":\"sync_error\",\"summary\":\"from stdin three\"}";
    let out = run_with_stdin(
        &s,
        &["ingest", "--once", "-q", "--source", "jsonl:-"],
        input.as_bytes(),
    );
    assert_ok(&out, "ingest jsonl:-");
    let evs = s.events_json(&[]);
    let mut got: Vec<(&str, &str, &str)> = evs
        .iter()
        .map(|e| {
            (
                e["timestamp"].as_str().expect("ts"),
                e["event_type"].as_str().expect("type"),
                e["summary"].as_str().expect("summary"),
            )
        })
        .collect();
    // "one" and "two" are the same instant (11:00+01:00 is 10:00Z): compare as a set.
    got.sort();
    assert_eq!(
        got,
        [
            ("2025-12-03T10:00:00Z", "peer_connected", "from stdin one"),
            (
                "2025-12-03T10:00:00Z",
                "peer_disconnected",
                "from stdin two"
            ),
            ("2025-12-03T10:00:02Z", "sync_error", "from stdin three"),
        ]
    );
    assert!(evs.iter().all(|e| e["source"] == "jsonl"));
    let rejects: Value =
        serde_json::from_str(&s.ok(&["rejects", "-f", "json"])).expect("rejects json");
    let locs: Vec<&str> = rejects
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["location"].as_str().expect("location"))
        .collect();
    assert_eq!(locs, ["stdin:2"]);

    // A Spacedrive export piped in.
    let export = std::fs::read(variant("export_variants.json")).expect("read");
    let out = run_with_stdin(
        &s,
        &["ingest", "--once", "-q", "--source", "spacedrive-json:-"],
        &export,
    );
    assert_ok(&out, "ingest spacedrive-json:-");
    assert_eq!(count(&s, &["--source", "spacedrive"]), 5);
    assert_eq!(count(&s, &[]), 8);
}
