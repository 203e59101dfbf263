//! Gerrit events as the replication-status plugin counts them (gerrit.md §5): distinct events
//! of one second never merged (seconds going backwards in a merged multi-site stream, identical
//! lines), one event never stored twice (a stream re-read from its start, a resumed follow),
//! state per `instanceId` (`status --instance`, `[gerrit] instance_id`), deleted refs and
//! projects, `eventCreatedOn` in milliseconds. Inputs in tests/fixtures/gerrit, written from
//! gerrit.md.

mod common;

use common::{fixture, Scratch};
use serde_json::Value;

const CORE: &str = "ssh://replication@mirror.example.org:29418/core.git";
const WEB: &str = "ssh://replication@mirror.example.org:29418/web/site.git";

fn ingest(s: &Scratch, spec: &str) {
    let out = s.ingest_once(&[spec.to_string()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status(s: &Scratch, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    let out = s.run(&all);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn status_json(s: &Scratch, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let (code, text) = status(s, &all);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("status json: {e}: {text}"));
    (code, v)
}

/// A copy of a fixture at a path of this scratch directory (a source read from its start).
fn copy(s: &Scratch, name: &str, to: &str) -> String {
    let p = s.path(to);
    std::fs::copy(fixture(&format!("gerrit/{name}")), &p).expect("copy fixture");
    format!("gerrit-events:{}", p.display())
}

#[test]
fn same_second_events_are_never_merged_and_never_stored_twice() {
    let s = Scratch::new();
    // 10 lines: a ref scheduled again in a second that comes back after the next one, two
    // sites whose seconds interleave, an identical line twice in one second.
    let live = copy(&s, "multisite_stream.jsonl", "live.jsonl");
    ingest(&s, &live);
    assert_eq!(s.count(&[]), 10, "every line is an event");
    // Master on primary-a: scheduled again after its failure, as the plugin says.
    let (_, v) = status_json(
        &s,
        &[
            "--instance",
            "primary-a",
            "--project",
            "core",
            "--remote",
            CORE,
        ],
    );
    let master = &v["remotes"][CORE]["status"]["refs/heads/master"];
    assert_eq!(master["status"], "SCHEDULED", "{v}");
    assert_eq!(master["retrying"], true);

    // The same input read again from its start (another path: no checkpoint) stores nothing.
    ingest(&s, &copy(&s, "multisite_stream.jsonl", "again.jsonl"));
    assert_eq!(s.count(&[]), 10, "a re-read stores nothing new");

    // The followed file grows: a third identical scheduling of master in that second is a new
    // event (the numbering resumes from the checkpoint), then its success.
    let more = std::fs::read(fixture("gerrit/multisite_stream_more.jsonl")).expect("fixture");
    let path = s.path("live.jsonl");
    let mut all = std::fs::read(&path).expect("read");
    all.extend_from_slice(&more);
    std::fs::write(&path, &all).expect("append");
    ingest(&s, &live);
    assert_eq!(
        s.count(&[]),
        12,
        "the resumed follow stores the 2 new lines"
    );
    let same = s
        .events_json(&["--event-type", "ref-replication-scheduled"])
        .into_iter()
        .filter(|e| e["device_id"] == "primary-a" && e["subject"] == "refs/heads/master")
        .count();
    assert_eq!(same, 3, "three identical lines of one second, three events");

    // The whole grown file from its start, and the live one again: nothing new.
    let grown = s.path("grown.jsonl");
    std::fs::write(&grown, &all).expect("write");
    ingest(&s, &format!("gerrit-events:{}", grown.display()));
    ingest(&s, &live);
    assert_eq!(s.count(&[]), 12);

    // Stream order is kept within a second: primary-a's master events of the second that came
    // back are in the order they were read.
    let mut a: Vec<Value> = s
        .events_json(&[])
        .into_iter()
        .filter(|e| e["device_id"] == "primary-a" && e["subject"] == "refs/heads/master")
        .collect();
    // By time, not by the text: RFC 3339 with `Z` writes as many fraction digits as it needs.
    a.sort_by_key(|e| {
        chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap_or_default())
            .expect("an RFC 3339 timestamp")
    });
    let kinds: Vec<&str> = a
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        kinds,
        [
            "ref-replication-scheduled",
            "ref-replicated",
            "ref-replication-scheduled",
            "ref-replication-scheduled",
            "ref-replicated"
        ]
    );
}

#[test]
fn status_answers_as_each_instances_plugin() {
    let s = Scratch::new();
    ingest(&s, &copy(&s, "multisite_stream.jsonl", "m.jsonl"));
    let pair = ["--project", "core", "--remote", CORE];
    let ask = |inst: &str| {
        let mut a = vec!["--instance", inst];
        a.extend_from_slice(&pair);
        status_json(&s, &a)
    };
    // primary-a: its own events only; the failure forwarded from primary-b is not its own.
    let (code, v) = ask("primary-a");
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["instance"], "primary-a");
    let refs = &v["remotes"][CORE]["status"];
    assert_eq!(refs["refs/heads/master"]["status"], "SCHEDULED");
    assert_eq!(refs["refs/heads/stable"]["status"], "SUCCEEDED");
    assert_eq!(v["status"], "OK");
    // primary-b: its master failed for good.
    let (code, v) = ask("primary-b");
    assert_eq!(code, Some(1));
    assert_eq!(v["status"], "FAILED");
    assert_eq!(
        v["remotes"][CORE]["status"].as_object().map(|o| o.len()),
        Some(1)
    );
    // The node without an id: the events without one.
    let (code, v) = ask("none");
    assert_eq!(code, Some(0));
    assert_eq!(v["instance"], Value::Null);
    assert_eq!(
        v["remotes"][CORE]["status"]["refs/heads/master"]["status"],
        "SUCCEEDED"
    );
    // Nobody asked: one answer per instance, each saying whose it is.
    let (code, v) = status_json(&s, &pair);
    assert_eq!(code, Some(1));
    let list = v.as_array().expect("one payload per instance");
    let mut who: Vec<Value> = list.iter().map(|p| p["instance"].clone()).collect();
    who.sort_by_key(|w| w.to_string());
    assert_eq!(
        who,
        [
            Value::String("primary-a".into()),
            Value::String("primary-b".into()),
            Value::Null
        ]
    );
    // The table shows them side by side in an INSTANCE column.
    let (_, table) = status(&s, &[]);
    assert!(table.contains("INSTANCE"), "{table}");
    for i in ["primary-a", "primary-b", "none"] {
        assert!(table.contains(i), "{i}: {table}");
    }
    // One instance only: no INSTANCE column.
    let (_, one) = status(&s, &["--instance", "primary-a"]);
    assert!(!one.contains("INSTANCE"), "{one}");
    // `[gerrit] instance_id` in the config answers as that node; --instance wins.
    let cfg = s.path("syncscope.toml");
    std::fs::write(&cfg, "[gerrit]\ninstance_id = \"primary-b\"\n").expect("config");
    let cfg = cfg.to_str().expect("utf-8").to_string();
    let (code, v) = status_json(
        &s,
        &["--config", &cfg, "--project", "core", "--remote", CORE],
    );
    assert_eq!((code, v["instance"].clone()), (Some(1), "primary-b".into()));
    let (code, _) = status_json(
        &s,
        &[
            "--config",
            &cfg,
            "--instance",
            "primary-a",
            "--project",
            "core",
            "--remote",
            CORE,
        ],
    );
    assert_eq!(code, Some(0));
}

#[test]
fn deleted_refs_and_projects_leave_the_answer() {
    let s = Scratch::new();
    ingest(&s, &copy(&s, "deletions_stream.jsonl", "d.jsonl"));
    let (code, v) = status_json(&s, &["--project", "web/site", "--remote", WEB]);
    assert_eq!(
        code,
        Some(0),
        "a deletion not replicated is not FAILED: {v}"
    );
    let refs = v["remotes"][WEB]["status"].as_object().expect("refs");
    assert_eq!(
        refs.keys().collect::<Vec<_>>(),
        ["refs/heads/main"],
        "deleted refs are not in the plugin's answer"
    );
    assert_eq!(v["status"], "OK");
    let apart = v["deletions_not_replicated"]
        .as_object()
        .expect("shown apart");
    assert_eq!(apart.keys().collect::<Vec<_>>(), ["refs/heads/feature-x"]);
    assert_eq!(
        apart["refs/heads/feature-x"]["last_error"],
        "REJECTED_NODELETE"
    );
    let (code, table) = status(&s, &["--project", "web/site"]);
    assert_eq!(code, Some(0));
    assert!(table.contains("deletion not replicated"), "{table}");
    assert!(!table.contains("old-branch"), "{table}");
    assert!(!table.contains("FAILED"), "{table}");
    // The refused deletion is an error event (a person must act on the mirror).
    let refused: Vec<Value> = s
        .events_json(&["--event-type", "ref-replicated"])
        .into_iter()
        .filter(|e| {
            e["subject"] == "refs/heads/feature-x"
                && e["summary"]
                    .as_str()
                    .is_some_and(|t| t.contains("REJECTED_NODELETE"))
        })
        .collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["severity"], "error");
    assert!(refused[0]["summary"]
        .as_str()
        .is_some_and(|t| t.contains("deletion not replicated")));

    // The deleted project: its refs are history, `status` says when it was deleted.
    let (code, text) = status(&s, &["--project", "legacy/tool"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("project legacy/tool was deleted") && text.contains("2025-03-14T09:30:21"),
        "{text}"
    );
    let (code, v) = status_json(&s, &["--project", "legacy/tool"]);
    assert_eq!((code, v["status"].clone()), (Some(0), "DELETED".into()));
    assert_eq!(v["deleted"], 1_741_944_621);
    // Nothing FAILED anywhere now.
    assert_eq!(status(&s, &[]).0, Some(0));
}

#[test]
fn event_created_on_in_milliseconds_is_read_by_magnitude() {
    let s = Scratch::new();
    let p = s.path("ms.jsonl");
    std::fs::write(
        &p,
        concat!(
            r#"{"project":"ms","ref":"refs/heads/main","targetUri":"https://h.example/ms.git","type":"ref-replication-scheduled","eventCreatedOn":1741944615123}"#,
            "\n",
            r#"{"refStatus":"OK","project":"ms","ref":"refs/heads/main","status":"succeeded","targetUri":"https://h.example/ms.git","type":"ref-replicated","eventCreatedOn":1741944615123}"#,
            "\n",
        ),
    )
    .expect("write");
    ingest(&s, &format!("gerrit-events:{}", p.display()));
    assert_eq!(s.count(&[]), 2);
    let ev = s.events_json(&["--event-type", "ref-replicated"]);
    assert!(
        ev[0]["timestamp"]
            .as_str()
            .is_some_and(|t| t.starts_with("2025-03-14T09:30:15.123")),
        "{}",
        ev[0]["timestamp"]
    );
    let (code, v) = status_json(
        &s,
        &["--project", "ms", "--remote", "https://h.example/ms.git"],
    );
    assert_eq!(code, Some(0));
    let main = &v["remotes"]["https://h.example/ms.git"]["status"]["refs/heads/main"];
    assert_eq!(
        (main["status"].clone(), main["when"].clone()),
        ("SUCCEEDED".into(), 1_741_944_615.into())
    );
}

#[test]
fn a_push_failed_for_good_is_an_error_a_retried_one_a_warning() {
    let s = Scratch::new();
    let p = s.path("sev.jsonl");
    let ev = |kind: &str, r: &str, extra: &str, t: i64| {
        format!(
            r#"{{"targetNode":"m:29418",{extra}"project":"p","ref":"{r}","targetUri":"ssh://r@m:29418/p.git","type":"{kind}","eventCreatedOn":{t},"instanceId":"primary-1"}}"#
        )
    };
    let done = |r: &str, t: i64| {
        format!(
            r#"{{"project":"p","ref":"{r}","nodesCount":1,"type":"ref-replication-done","eventCreatedOn":{t},"instanceId":"primary-1"}}"#
        )
    };
    let lines = [
        // Retried, then replicated: a warning, and a done that is no error.
        ev("ref-replication-scheduled", "refs/heads/a", "", 1),
        ev(
            "ref-replicated",
            "refs/heads/a",
            r#""refStatus":"REJECTED_OTHER_REASON","status":"failed","#,
            2,
        ),
        ev("ref-replication-scheduled", "refs/heads/a", "", 3),
        ev(
            "ref-replicated",
            "refs/heads/a",
            r#""refStatus":"OK","status":"succeeded","#,
            4,
        ),
        done("refs/heads/a", 4),
        // Failed without a retry (no refStatus), then done: failed for good.
        ev("ref-replication-scheduled", "refs/heads/b", "", 5),
        ev("ref-replicated", "refs/heads/b", r#""status":"failed","#, 6),
        done("refs/heads/b", 6),
        // A rejection no retry fixes.
        ev(
            "ref-replicated",
            "refs/heads/c",
            r#""refStatus":"REJECTED_NONFASTFORWARD","status":"failed","#,
            7,
        ),
    ];
    std::fs::write(&p, lines.join("\n") + "\n").expect("write");
    ingest(&s, &format!("gerrit-events:{}", p.display()));
    let mut ev = s.events_json(&[]);
    ev.sort_by_key(|e| e["timestamp"].as_str().unwrap_or_default().to_string());
    let sev: Vec<(&str, &str)> = ev
        .iter()
        .map(|e| {
            (
                e["subject"].as_str().unwrap_or_default(),
                e["severity"].as_str().unwrap_or_default(),
            )
        })
        .filter(|(_, s)| *s != "debug")
        .collect();
    assert_eq!(
        sev,
        [
            ("refs/heads/a", "warning"),
            ("refs/heads/a", "info"),
            ("refs/heads/b", "error"),
            ("refs/heads/b", "error"),
            ("refs/heads/c", "error"),
        ]
    );
}
