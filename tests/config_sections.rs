//! The sources' config sections through the real binary: the kinds' own sections (`[gitlab]`,
//! `[gerrit]`, `[prometheus]`, `[nats]`) are accepted, any other section is refused naming the
//! file and the section, a typo or a wrong type inside one names the file, the key and its
//! line; the shared log zone of `[ingest] log_timezone` reaches the `gerrit-log:` kind as
//! `--log-timezone` does.

mod common;

use common::{fixture, Scratch};

/// `syncscope --config FILE ingest --once -q --source ...`: its exit code and stderr.
fn ingest_with(s: &Scratch, config: &str, sources: &[String]) -> (Option<i32>, String) {
    let path = s.path("syncscope.toml");
    std::fs::write(&path, config).expect("write config");
    let mut c = s.cmd();
    c.arg("--config")
        .arg(&path)
        .args(["ingest", "--once", "-q"]);
    for src in sources {
        c.arg("--source").arg(src);
    }
    let out = c.output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn empty_jsonl(s: &Scratch) -> String {
    let f = s.path("empty.jsonl");
    std::fs::write(&f, "").expect("write");
    format!("jsonl:{}", f.display())
}

#[test]
fn the_kinds_sections_are_accepted_and_the_shipped_example_loads() {
    let s = Scratch::new();
    let src = empty_jsonl(&s);
    let text = "[gerrit]\ninstance_id = \"p1\"\nreplication_retry = 2\n\
                [gitlab]\nprojects = [\"g/a\"]\n\
                [prometheus]\nselector = '{job=\"ngit\"}'\n\
                [nats]\ntls = true\n";
    let (code, err) = ingest_with(&s, text, std::slice::from_ref(&src));
    assert_eq!(code, Some(0), "{err}");
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/syncscope.example.toml"),
    )
    .expect("example");
    let (code, err) = ingest_with(&s, &example, &[src]);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn an_unknown_section_or_key_is_refused_naming_the_file_and_the_key() {
    let s = Scratch::new();
    let src = empty_jsonl(&s);
    let file = s.path("syncscope.toml").display().to_string();
    for (text, words) in [
        ("[gitlb]\nprojects = []\n", vec!["gitlb", "[gitlab]"]),
        ("sorces = []\n", vec!["sorces"]),
        (
            "[gitlab]\ntoken = \"x\"\n",
            vec!["[gitlab]", "token", "line 2"],
        ),
        (
            "[ingest]\nretention_days = 3\n[gerrit]\nreplication_retry = \"five\"\n",
            vec!["[gerrit]", "replication_retry", "line 4"],
        ),
        ("[nats]\nuser = 7\n", vec!["[nats]", "user"]),
        (
            "[prometheus]\nselektor = 'x'\n",
            vec!["[prometheus]", "selektor"],
        ),
    ] {
        let (code, err) = ingest_with(&s, text, std::slice::from_ref(&src));
        assert_eq!(code, Some(2), "{text}: {err}");
        assert!(err.contains(&file), "{text}: the file: {err}");
        for w in words {
            assert!(err.contains(w), "{text}: {w}: {err}");
        }
        // Nothing was ingested: the config is read before anything runs.
        assert!(!s.db().exists(), "{text}");
    }
}

#[test]
fn the_log_timezone_of_the_config_reaches_the_gerrit_log_kind() {
    let log = format!(
        "gerrit-log:{}",
        fixture("gerrit/replication_log.txt").display()
    );
    let times = |s: &Scratch| -> Vec<String> {
        let mut t: Vec<String> = s
            .events_json(&[])
            .iter()
            .map(|e| e["timestamp"].as_str().unwrap_or_default().to_string())
            .collect();
        t.sort();
        t
    };
    // From the command line.
    let flag = Scratch::new();
    let out = flag
        .cmd()
        .args(["ingest", "--once", "-q", "--log-timezone", "-03:00"])
        .arg("--source")
        .arg(&log)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    // From the config.
    let conf = Scratch::new();
    let (code, err) = ingest_with(
        &conf,
        "[ingest]\nlog_timezone = \"-03:00\"\n",
        std::slice::from_ref(&log),
    );
    assert_eq!(code, Some(0), "{err}");
    // In UTC.
    let utc = Scratch::new();
    let (code, err) = ingest_with(
        &utc,
        "[ingest]\nlog_timezone = \"UTC\"\n",
        std::slice::from_ref(&log),
    );
    assert_eq!(code, Some(0), "{err}");
    let (f, c, u) = (times(&flag), times(&conf), times(&utc));
    assert!(!f.is_empty());
    assert_eq!(f, c, "the config's zone is the flag's");
    assert_ne!(f, u, "and it is not UTC's");
}
