//! Event identity on the real binary (issue 12): one event is stored once however it is read
//! (a device's `sync.db`, its default `sd sync events` export, its `--with-device` export, in
//! any order, re-read, overlapping), two events that differ only in their position are both
//! stored, and the exports are laid out as Spacedrive's.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Output;

use common::{fixture, Scratch};
use serde_json::Value;

const DEV_A: &str = "cd613e30-d8f1-6adf-91b7-584a2265b1f5";
const DEV_B: &str = common::SAMPLE_DEV_B;

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} exited {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spec(kind: &str, p: &Path) -> String {
    format!("{kind}:{}", p.display())
}

/// (inserted, duplicates, rejected) over every batch of `source`.
fn batches(s: &Scratch, source: &str) -> (i64, i64, i64) {
    s.store()
        .query_row(
            "SELECT coalesce(sum(inserted), 0), coalesce(sum(duplicates), 0), coalesce(sum(rejected), 0)
             FROM batches WHERE source = ?1",
            [source],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("batches")
}

/// Events with no device.
fn unattributed(s: &Scratch) -> i64 {
    s.store()
        .query_row(
            "SELECT count(*) FROM events WHERE device IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("count")
}

#[derive(Clone, Copy, Debug)]
enum Reading {
    Db,
    Default,
    WithDevice,
}

/// Device A read three ways, in the given order: each event once, all of them device A's.
fn read_device_a(order: &[Reading]) {
    let s = Scratch::new();
    let db = s.copy_fixture("sync.db");
    let default = s.copy_fixture("device_a_sd_events.json");
    let with_device = s.copy_fixture("device_a_sd_events_with_device.json");
    let mut seen_device = false;
    for (i, r) in order.iter().enumerate() {
        let src = match r {
            Reading::Db => spec("spacedrive-db", &db),
            Reading::Default => spec("spacedrive-json", &default),
            Reading::WithDevice => spec("spacedrive-json", &with_device),
        };
        ok(
            &s.ingest_once(std::slice::from_ref(&src)),
            &format!("{r:?}"),
        );
        let want = if i == 0 { (54, 0, 0) } else { (0, 54, 0) };
        assert_eq!(batches(&s, &src), want, "{order:?}: reading {r:?}");
        assert_eq!(s.count(&[]), 54, "{order:?} after {r:?}");
        seen_device |= !matches!(r, Reading::Default);
        let anonymous = if seen_device { 0 } else { 54 };
        assert_eq!(unattributed(&s), anonymous, "{order:?} after {r:?}");
    }
    assert_eq!(s.count(&["--device", DEV_A]), 54, "{order:?}");
    let sql = s.ok(&["events", "--format", "sql", "--limit", "0"]);
    assert_eq!(sql.matches("INSERT INTO sync_event_log").count(), 54);
    assert!(
        !sql.contains("+00:00', '', '"),
        "no device_id '' for a known device:\n{sql}"
    );
    assert_eq!(sql.matches(&format!("', '{DEV_A}', '")).count(), 54);
}

#[test]
fn both_export_shapes_and_the_sync_db_in_every_order_store_each_event_once() {
    use Reading::*;
    for order in [
        [Db, Default, WithDevice],
        [Db, WithDevice, Default],
        [Default, Db, WithDevice],
        [Default, WithDevice, Db],
        [WithDevice, Default, Db],
        [WithDevice, Db, Default],
    ] {
        read_device_a(&order);
    }
}

#[test]
fn a_default_export_is_attributed_to_the_device_named_on_the_source() {
    let s = Scratch::new();
    let b = s.copy_fixture("device_b_sd_events.json");
    let named = format!("{},device={DEV_B}", spec("spacedrive-json", &b));
    ok(&s.ingest_once(std::slice::from_ref(&named)), "named export");
    assert_eq!(s.count(&["--device", DEV_B]), 54);
    assert_eq!(unattributed(&s), 0);
    // The same export without the option: the same events, nothing new, device kept.
    let plain = spec("spacedrive-json", &b);
    ok(&s.ingest_once(std::slice::from_ref(&plain)), "plain export");
    assert_eq!(batches(&s, &plain), (0, 54, 0));
    // Its --with-device twin: the same events again.
    let twin = spec(
        "spacedrive-json",
        &s.copy_fixture("device_b_sd_events_with_device.json"),
    );
    ok(
        &s.ingest_once(std::slice::from_ref(&twin)),
        "with-device export",
    );
    assert_eq!(batches(&s, &twin), (0, 54, 0));
    assert_eq!(s.count(&[]), 54);
    let sql = s.ok(&["events", "--format", "sql", "--limit", "0"]);
    assert_eq!(sql.matches(&format!("', '{DEV_B}', '")).count(), 54);
}

#[test]
fn naming_another_device_than_the_export_s_own_rejects_its_events() {
    let s = Scratch::new();
    let with_device = s.copy_fixture("device_a_sd_events_with_device.json");
    let wrong = format!("{},device={DEV_B}", spec("spacedrive-json", &with_device));
    let out = s.ingest_once(std::slice::from_ref(&wrong));
    assert_eq!(batches(&s, &wrong), (0, 0, 54), "{out:?}");
    let rejects = s.ok(&["rejects", "--limit", "100"]);
    assert!(
        rejects.contains(&format!(
            "the event names device {DEV_A} but the source was given device={DEV_B}"
        )),
        "{rejects}"
    );
    assert!(rejects.contains("element 54"), "{rejects}");
}

#[test]
fn overlapping_exports_of_one_device_store_each_event_once() {
    // Two days' exports of one device overlap: day 1 holds the oldest 40, day 2 the newest 40.
    let s = Scratch::new();
    let all: Vec<Value> =
        serde_json::from_slice(&std::fs::read(fixture("device_a_sd_events.json")).expect("read"))
            .expect("parses");
    let (day2, day1) = (&all[..40], &all[14..]);
    let p1 = s.path("day1.json");
    let p2 = s.path("day2.json");
    std::fs::write(&p1, serde_json::to_vec_pretty(day1).expect("json")).expect("write");
    std::fs::write(&p2, serde_json::to_vec_pretty(day2).expect("json")).expect("write");
    let (s1, s2) = (
        format!("{},device={DEV_A}", spec("spacedrive-json", &p1)),
        format!("{},device={DEV_A}", spec("spacedrive-json", &p2)),
    );
    ok(&s.ingest_once(&[s1.clone(), s2.clone()]), "two exports");
    assert_eq!(s.count(&[]), 54);
    ok(
        &s.ingest_once(&[spec("spacedrive-db", &s.copy_fixture("sync.db"))]),
        "db",
    );
    assert_eq!(s.count(&[]), 54);
}

#[test]
fn identical_lines_of_one_jsonl_file_are_all_stored_and_a_reread_adds_nothing() {
    let s = Scratch::new();
    let line = r#"{"timestamp":"2025-12-03T10:15:00Z","device_id":"d1","event_type":"peer_disconnected","severity":"warning","summary":"Peer nas disconnected: timeout"}"#;
    let other = r#"{"timestamp":"2025-12-03T10:15:01Z","device_id":"d1","event_type":"peer_connected","summary":"Peer nas connected"}"#;
    let path = s.path("app.jsonl");
    std::fs::write(&path, format!("{line}\n{other}\n{line}\n")).expect("write");
    let src = spec("jsonl", &path);
    ok(&s.ingest_once(std::slice::from_ref(&src)), "first read");
    assert_eq!(s.count(&[]), 3, "the repeated line is a second event");

    // Appended after a restart: the checkpoint carries the count, so it is the third.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    writeln!(f, "{line}").expect("append");
    drop(f);
    ok(&s.ingest_once(std::slice::from_ref(&src)), "resumed read");
    assert_eq!(batches(&s, &src), (4, 0, 0));
    assert_eq!(s.count(&[]), 4);

    // The same file under another name (a rotated file read again): nothing new.
    let copy = s.path("app.jsonl.1");
    std::fs::copy(&path, &copy).expect("copy");
    let again = spec("jsonl", &copy);
    ok(&s.ingest_once(std::slice::from_ref(&again)), "re-read");
    assert_eq!(batches(&s, &again), (0, 4, 0));
    let stored = s.events_json(&["--reverse"]);
    let summaries: Vec<&str> = stored
        .iter()
        .map(|e| e["summary"].as_str().expect("summary"))
        .collect();
    assert_eq!(
        summaries,
        [
            "Peer nas connected",
            "Peer nas disconnected: timeout",
            "Peer nas disconnected: timeout",
            "Peer nas disconnected: timeout"
        ]
    );
    // Stored in input order: the ids of the three twins grow.
    let ids: Vec<i64> = stored[1..]
        .iter()
        .map(|e| e["id"].as_i64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "{ids:?}");

    // Piped twice through stdin: the same numbers, nothing new.
    for _ in 0..2 {
        let mut c = s.cmd();
        c.args(["ingest", "--once", "-q", "--source", "jsonl:-"]);
        c.stdin(std::fs::File::open(&path).expect("open"));
        ok(&c.output().expect("run"), "stdin");
    }
    assert_eq!(s.count(&[]), 4);
}

#[test]
fn two_identical_sync_db_rows_are_two_events_and_a_reread_adds_nothing() {
    let s = Scratch::new();
    let db = s.copy_fixture("sync.db");
    {
        let c = rusqlite::Connection::open(&db).expect("open copy");
        // Row 5 logged again with the same content (a distinct id), after the last row.
        c.execute(
            "INSERT INTO sync_event_log (timestamp, device_id, event_type, category, severity, summary,
                details, correlation_id, peer_device_id, model_types, record_count, duration_ms)
             SELECT timestamp, device_id, event_type, category, severity, summary, details,
                correlation_id, peer_device_id, model_types, record_count, duration_ms
             FROM sync_event_log WHERE id = 5",
            [],
        )
        .expect("insert twin");
    }
    let src = spec("spacedrive-db", &db);
    ok(&s.ingest_once(std::slice::from_ref(&src)), "first read");
    assert_eq!(s.count(&[]), 55);
    ok(&s.ingest_once(std::slice::from_ref(&src)), "second read");
    assert_eq!(s.count(&[]), 55);
    // A copy of the database (another source): every row is stored already.
    let copy = s.path("copy.db");
    std::fs::copy(&db, &copy).expect("copy");
    let again = spec("spacedrive-db", &copy);
    ok(&s.ingest_once(std::slice::from_ref(&again)), "copy");
    assert_eq!(batches(&s, &again), (0, 55, 0));
    // And the device's export, which lists the twin twice too.
    let export = spec(
        "spacedrive-json",
        &s.copy_fixture("device_a_sd_events.json"),
    );
    ok(&s.ingest_once(std::slice::from_ref(&export)), "export");
    assert_eq!(batches(&s, &export), (0, 54, 0));
    assert_eq!(s.count(&[]), 55);
}

/// `YYYY-MM-DD HH:MM:SS` of an RFC 3339 time.
fn md_time(ts: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(ts)
        .expect("rfc3339")
        .to_utc()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn markdown_and_json_exports_are_laid_out_as_spacedrive_s() {
    let s = Scratch::new();
    ok(
        &s.ingest_once(&[spec("spacedrive-db", &s.copy_fixture("sync.db"))]),
        "db",
    );
    // Spacedrive's own export of these rows, newest first.
    let theirs: Vec<Value> =
        serde_json::from_slice(&std::fs::read(fixture("device_a_sd_events.json")).expect("read"))
            .expect("parses");

    let md = s.ok(&["events", "--format", "markdown", "--limit", "0"]);
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines[0], "# Sync Event Log");
    assert_eq!(lines[1], "");
    let exported = lines[2].strip_prefix("**Exported**: ").expect("exported");
    assert!(
        chrono::DateTime::parse_from_rfc3339(exported).is_ok(),
        "{exported}"
    );
    assert!(exported.ends_with("+00:00"), "{exported}");
    assert_eq!(lines[3], "**Event Count**: 54");
    assert_eq!(lines[4], "");
    assert_eq!(lines[5], "| Timestamp | Event Type | Severity | Summary |");
    assert_eq!(lines[6], "|-----------|------------|----------|----------|");
    let rows: Vec<String> = theirs
        .iter()
        .map(|e| {
            format!(
                "| {} | {} | {} | {} |",
                md_time(e["timestamp"].as_str().expect("ts")),
                pascal(e["event_type"].as_str().expect("type")),
                pascal(e["severity"].as_str().expect("severity")),
                e["summary"].as_str().expect("summary").replace('|', "\\|")
            )
        })
        .collect();
    // Newest first; events of one instant (two rows of one nanosecond here) in either order.
    let by_time = |rows: &[String]| {
        let mut v = rows.to_vec();
        v.sort_by(|a, b| b[..21].cmp(&a[..21]).then(a.cmp(b)));
        v
    };
    let got: Vec<String> = lines[7..].iter().map(|l| l.to_string()).collect();
    assert_eq!(by_time(&got), by_time(&rows), "Spacedrive's spellings");
    assert!(
        got.windows(2).all(|w| w[0][..21] >= w[1][..21]),
        "newest first: {got:#?}"
    );

    // JSON: the same instants written as Spacedrive writes them (Z, 0/3/6/9 digits).
    let ours = s.events_json(&["--reverse"]);
    assert_eq!(ours.len(), theirs.len());
    let pair = |v: &Value| (v["timestamp"].to_string(), v["summary"].to_string());
    let mut a: Vec<_> = ours.iter().map(pair).collect();
    let mut b: Vec<_> = theirs.iter().map(pair).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "timestamps written as Spacedrive writes them");
    assert!(ours.iter().all(|o| o["device_id"] == DEV_A));
    // --reverse turns the markdown around (oldest first).
    let md = s.ok(&[
        "events",
        "--format",
        "markdown",
        "--limit",
        "0",
        "--reverse",
    ]);
    let last = md.lines().last().expect("rows");
    assert_eq!(last, rows[0]);
}
