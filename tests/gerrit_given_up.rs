//! A push that failed (of the kind the plugin retries) and is not scheduled again within
//! `replicationRetry` plus slack, with no `*-done`, has failed for good: one error event,
//! judged by the stream's own clock (never the wall clock), so the same input read again stores
//! nothing new and a file followed in parts gives what a whole read gives.

mod common;

use common::Scratch;
use serde_json::Value;

const URI: &str = "ssh://r@m:29418/p.git";

fn ev(kind: &str, r: &str, extra: &str, t: i64) -> String {
    format!(
        r#"{{"targetNode":"m:29418",{extra}"project":"p","ref":"{r}","targetUri":"{URI}","type":"{kind}","eventCreatedOn":{t},"instanceId":"primary-1"}}"#
    )
}

fn failed(r: &str, t: i64) -> String {
    ev(
        "ref-replicated",
        r,
        r#""refStatus":"REJECTED_OTHER_REASON","status":"failed","#,
        t,
    )
}

fn ok(r: &str, t: i64) -> String {
    ev(
        "ref-replicated",
        r,
        r#""refStatus":"OK","status":"succeeded","#,
        t,
    )
}

fn done(r: &str, t: i64) -> String {
    format!(
        r#"{{"project":"p","ref":"{r}","nodesCount":1,"type":"ref-replication-done","eventCreatedOn":{t},"instanceId":"primary-1"}}"#
    )
}

fn ingest(s: &Scratch, path: &std::path::Path) {
    let out = s.ingest_once(&[format!("gerrit-events:{}", path.display())]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Errors as (timestamp, type, subject, summary).
fn errors(s: &Scratch) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = s
        .events_json(&["--min-severity", "error"])
        .iter()
        .map(|e: &Value| {
            let f = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (f("timestamp"), f("event_type"), f("subject"), f("summary"))
        })
        .collect();
    v.sort();
    v
}

/// Every event's (id, timestamp, type, summary), sorted.
fn all(s: &Scratch) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = s
        .events_json(&[])
        .iter()
        .map(|e: &Value| {
            let f = |k: &str| match &e[k] {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            (f("id"), f("timestamp"), f("event_type"), f("summary"))
        })
        .collect();
    v.sort();
    v
}

/// The stream: ref a fails at 1000 and is never retried; b fails and is retried within the
/// window; c fails, is given up, then its late `*-done` comes (no second error); an unrelated
/// event of ref d past every window.
fn lines() -> Vec<String> {
    vec![
        ev("ref-replication-scheduled", "refs/heads/a", "", 990),
        failed("refs/heads/a", 1000),
        failed("refs/heads/b", 1000),
        ev("ref-replication-scheduled", "refs/heads/b", "", 1050),
        ok("refs/heads/b", 1060),
        failed("refs/heads/c", 1001),
        // Exactly at the end of a's window (1000 + 60 + 60): not past it yet.
        ev("ref-replication-scheduled", "refs/heads/d", "", 1120),
        // Past a's and c's windows.
        ev("ref-replication-scheduled", "refs/heads/d", "", 1200),
        ok("refs/heads/d", 1201),
        done("refs/heads/c", 1300),
    ]
}

#[test]
fn a_failure_no_retry_follows_is_given_up_once() {
    let s = Scratch::new();
    let p = s.path("live.jsonl");
    std::fs::write(&p, lines().join("\n") + "\n").expect("write");
    ingest(&s, &p);
    let err = errors(&s);
    let given_up: Vec<_> = err
        .iter()
        .filter(|e| e.1 == "ref-replication-given-up")
        .collect();
    assert_eq!(given_up.len(), 2, "a and c, not b: {err:?}");
    assert_eq!(given_up[0].0, "1970-01-01T00:18:40Z", "{err:?}");
    assert_eq!(given_up[0].2, "refs/heads/a");
    assert_eq!(
        given_up[0].3,
        format!("p refs/heads/a -> {URI}: failed (REJECTED_OTHER_REASON) and not retried within 2m: given up")
    );
    assert_eq!(given_up[1].2, "refs/heads/c");
    // Nothing else is an error: b was retried, c's late done is not a second error.
    assert_eq!(err.len(), 2, "{err:?}");

    // Read again: nothing new.
    let before = all(&s);
    let again = s.ingest_once(&[format!("gerrit-events:{}", p.display())]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(all(&s), before);
    // Read again from its start into a fresh store of the same file content: the same events.
    let s2 = Scratch::new();
    let p2 = s2.path("live.jsonl");
    std::fs::copy(&p, &p2).expect("copy");
    ingest(&s2, &p2);
    assert_eq!(all(&s2), before);
}

#[test]
fn a_failure_rescheduled_in_time_is_no_error() {
    let s = Scratch::new();
    let p = s.path("retried.jsonl");
    let l = [
        failed("refs/heads/a", 1000),
        ev("ref-replication-scheduled", "refs/heads/a", "", 1119),
        failed("refs/heads/a", 1130),
        ev("ref-replication-scheduled", "refs/heads/a", "", 1200),
        ok("refs/heads/a", 1210),
        ev("ref-replication-scheduled", "refs/heads/z", "", 5000),
    ];
    std::fs::write(&p, l.join("\n") + "\n").expect("write");
    ingest(&s, &p);
    assert_eq!(errors(&s), [], "retried each time within the window");
}

#[test]
fn followed_in_two_halves_gives_what_a_whole_read_gives() {
    let l = lines();
    // Split after c's failure: a and c are watched across the checkpoint.
    let (first, second) = l.split_at(6);
    let whole = Scratch::new();
    let wp = whole.path("live.jsonl");
    std::fs::write(&wp, l.join("\n") + "\n").expect("write");
    ingest(&whole, &wp);

    let parts = Scratch::new();
    let pp = parts.path("live.jsonl");
    std::fs::write(&pp, first.join("\n") + "\n").expect("write");
    ingest(&parts, &pp);
    assert_eq!(errors(&parts), [], "no window has ended yet");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&pp)
        .expect("open");
    std::io::Write::write_all(&mut f, (second.join("\n") + "\n").as_bytes()).expect("append");
    drop(f);
    ingest(&parts, &pp);
    assert_eq!(errors(&parts), errors(&whole));
    assert_eq!(all(&parts), all(&whole));
}

#[test]
fn replication_retry_is_configurable() {
    let s = Scratch::new();
    let p = s.path("live.jsonl");
    let l = [
        failed("refs/heads/a", 1000),
        ev("ref-replication-scheduled", "refs/heads/z", "", 1200),
        ev("ref-replication-scheduled", "refs/heads/z", "", 1500),
    ];
    std::fs::write(&p, l.join("\n") + "\n").expect("write");
    let cfg = s.path("syncscope.toml");
    std::fs::write(&cfg, "[gerrit]\nreplication_retry = 5\n").expect("write");
    let out = s
        .cmd()
        .arg("--config")
        .arg(&cfg)
        .args(["ingest", "--once", "-q", "--source"])
        .arg(format!("gerrit-events:{}", p.display()))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = errors(&s);
    assert_eq!(err.len(), 1, "{err:?}");
    // 5 minutes plus the minute's slack: at 1360, seen at 1500 (not at 1200).
    assert_eq!(err[0].0, "1970-01-01T00:22:40Z");
    assert!(
        err[0].3.ends_with("not retried within 6m: given up"),
        "{err:?}"
    );
}
