//! `--retention SPAN` end to end: the real binary prunes events and the strings only they
//! used, and refuses a span it cannot read.

mod common;

use common::Scratch;

fn scalar(db: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open store");
    c.query_row(sql, [], |r| r.get(0)).expect(sql)
}

#[test]
fn ingest_prunes_old_events_and_the_strings_only_they_used() {
    let s = Scratch::new();
    let file = s.path("events.jsonl");
    let lines: String = (0..20)
        .map(|i| {
            format!(
                "{{\"timestamp\":\"2026-11-30T00:00:{i:02}Z\",\"event_type\":\"sync_error\",\"summary\":\"e {i}\",\"correlation_id\":\"sess-old-{i}\"}}\n"
            )
        })
        .collect();
    std::fs::write(&file, lines).expect("write events");
    let src = format!("jsonl:{}", file.display());
    let out = s.ingest_once(std::slice::from_ref(&src));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.count(&[]), 20);
    // Received two hours ago, as far as the store knows.
    rusqlite::Connection::open(s.db())
        .expect("open")
        .execute("UPDATE batches SET received = received - 7200", [])
        .expect("age");
    // One newer event keeps its session id.
    std::fs::write(
        s.path("new.jsonl"),
        "{\"timestamp\":\"2026-11-30T01:00:00Z\",\"event_type\":\"sync_error\",\"summary\":\"new\",\"correlation_id\":\"sess-new\"}\n",
    )
    .expect("write");
    let out = s.run(&[
        "ingest",
        "--once",
        "--retention",
        "1h",
        "--source",
        &src,
        "--source",
        &format!("jsonl:{}", s.path("new.jsonl").display()),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retention: pruned 20 events"), "{err}");
    assert_eq!(s.count(&[]), 1);
    // All went but, perhaps, the highest string id when the run began (never deleted, so ids
    // never go back), which the next run takes.
    assert!(
        scalar(
            &s.db(),
            "SELECT count(*) FROM strings WHERE text LIKE 'sess-old-%'"
        ) <= 1
    );
    let out = s.run(&["ingest", "--once", "--retention", "1h", "--source", &src]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        scalar(
            &s.db(),
            "SELECT count(*) FROM strings WHERE text LIKE 'sess-old-%'"
        ),
        0
    );
    assert_eq!(
        scalar(
            &s.db(),
            "SELECT count(*) FROM strings WHERE text = 'sess-new'"
        ),
        1
    );
    let found = s.ok(&["events", "--grep", "sess-new", "--count"]);
    assert_eq!(found.trim(), "1");
}

#[test]
fn a_span_that_cannot_be_read_is_refused_by_name() {
    let s = Scratch::new();
    let out = s.run(&[
        "ingest",
        "--once",
        "--retention",
        "10x",
        "--source",
        "jsonl:-",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--retention"));
    let out = s.run(&["demo", "--headless", "--retention", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention"));
    let out = s.run(&[
        "ingest",
        "--once",
        "--retention",
        "1h",
        "--retention-days",
        "3",
        "--source",
        "jsonl:-",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
