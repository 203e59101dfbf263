//! `ingest --forward nats://…` and `nats:` sources against a real `nats-server -js` on
//! 127.0.0.1 (started here, in a temporary directory): three forwarders of two source kinds
//! into one stream, two stores consuming it; `kill -9` of a forwarder, a consumer and the
//! server at seeded random instants; a token-protected server. Every store is compared with a
//! store that ingested the same inputs directly: the same identities, each once. Skipped by
//! name when nats-server is missing; under env CI a missing server is a failure.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, free_port, have_tool, Scratch};

const NATS: &str = "/usr/sbin/nats-server";

/// A nats-server with JetStream, its store in `dir`; killed (-9) when dropped.
struct Server {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    extra: Vec<String>,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            dir: dir.to_path_buf(),
            port: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.restart();
        s
    }

    fn restart(&mut self) {
        std::fs::create_dir_all(&self.dir).expect("server dir");
        let child = Command::new(NATS)
            .args(["-js", "-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .arg("-sd")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "nats-server did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self, stream: &str) -> String {
        format!("nats://127.0.0.1:{}/{stream}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A deterministic generator for the kill instants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// `n` distinct events, and every 50th line repeated verbatim (two events: occurrences).
fn write_jsonl(path: &Path, tag: &str, n: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("jsonl"));
    for i in 0..n {
        let line = format!(
            r#"{{"timestamp":"2026-11-30T{:02}:{:02}:{:02}.{:03}Z","device_id":"{tag}-dev-{}","event_type":"sync_error","category":"error","severity":"error","summary":"{tag} event {i}","details":{{"n":{i}}}}}"#,
            (i / 3_600_000) % 24,
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000,
            i % 7
        );
        writeln!(f, "{line}").expect("write");
        if i % 50 == 0 {
            writeln!(f, "{line}").expect("write");
        }
    }
    writeln!(f, "not an event").expect("write");
}

/// A scratch store under `dir`.
fn store(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.db"))
}

fn cmd(dir: &Path, db: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--db").arg(db);
    c.env_remove("SYNCSCOPE_DB");
    c.env_remove("SYNCSCOPE_CONFIG");
    c.env_remove("SYNCSCOPE_NATS_TOKEN");
    c.env_remove("SYNCSCOPE_NATS_USER");
    c.env_remove("SYNCSCOPE_NATS_PASSWORD");
    c.env("XDG_CONFIG_HOME", dir.join("xdg-config"));
    c.env("XDG_DATA_HOME", dir.join("xdg-data"));
    c.env("XDG_STATE_HOME", dir.join("xdg-state"));
    c.env("NO_COLOR", "1");
    c.stdin(Stdio::null());
    c
}

fn forwarder(dir: &Path, url: &str, state: &str, source: &str, once: bool) -> Command {
    let mut c = cmd(dir, &dir.join("unused.db"));
    c.args(["ingest", "-q", "--forward", url, "--forward-state"])
        .arg(dir.join(state))
        .args(["--source", source]);
    if once {
        c.arg("--once");
    }
    c
}

fn consumer(dir: &Path, db: &Path, url: &str, once: bool) -> Command {
    let mut c = cmd(dir, db);
    c.args(["ingest", "-q", "--source"])
        .arg(format!("nats:{url}"));
    if once {
        c.arg("--once");
    }
    c
}

fn ok(mut c: Command, what: &str) -> Output {
    let out = c.output().expect("run syncscope");
    assert!(
        out.status.success(),
        "{what} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::null()).stderr(Stdio::null());
    c.spawn().expect("spawn syncscope")
}

fn kill9(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// The stored events' identities, `(ts, key)`, with how many rows each has.
fn identities(db: &Path) -> (BTreeSet<(i64, i64)>, u64) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open store");
    let mut st = conn.prepare("SELECT ts, key FROM events").expect("prepare");
    let rows: Vec<(i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let n = rows.len() as u64;
    (rows.into_iter().collect(), n)
}

fn reject_count(db: &Path) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open store");
    conn.query_row("SELECT count(*) FROM rejects", [], |r| r.get(0))
        .expect("rejects")
}

/// What a direct `ingest --once` of `sources` stores: the reference.
fn reference(dir: &Path, sources: &[String]) -> (BTreeSet<(i64, i64)>, u64) {
    let db = store(dir, "reference");
    let mut c = cmd(dir, &db);
    c.args(["ingest", "--once", "-q"]);
    for s in sources {
        c.arg("--source").arg(s);
    }
    ok(c, "reference ingest");
    identities(&db)
}

fn gerrit_input(dir: &Path) -> PathBuf {
    let to = dir.join("gerrit.jsonl");
    let mut text = std::fs::read_to_string(common::fixture("gerrit/push_stream_v3.5plus.jsonl"))
        .expect("fixture");
    text.push_str(
        &std::fs::read_to_string(common::fixture("gerrit/mixed_stream_events.jsonl"))
            .expect("fixture"),
    );
    std::fs::write(&to, text).expect("gerrit input");
    to
}

#[test]
fn three_forwarders_into_one_stream_two_stores_get_every_event_once() {
    if !have_tool(
        NATS,
        "nats-server",
        "three_forwarders_into_one_stream_two_stores_get_every_event_once",
    ) {
        return;
    }
    let s = Scratch::new();
    let d = s.dir.path();
    let server = Server::start(&d.join("nats"), &[]);
    let url = server.url("EVENTS");
    let (a, b) = (d.join("a.jsonl"), d.join("b.jsonl"));
    write_jsonl(&a, "a", 3000);
    write_jsonl(&b, "b", 2000);
    let g = gerrit_input(d);
    let sources = [
        format!("jsonl:{}", a.display()),
        format!("jsonl:{}", b.display()),
        format!("gerrit-events:{}", g.display()),
    ];
    let (want, want_n) = reference(d, &sources);
    assert_eq!(want.len() as u64, want_n);
    assert!(want_n > 5000, "{want_n}");

    // Three forwarders at once, separate processes.
    let fwd: Vec<Child> = sources
        .iter()
        .enumerate()
        .map(|(i, src)| {
            let mut c = forwarder(d, &url, &format!("fwd{i}.json"), src, true);
            c.stdout(Stdio::null()).stderr(Stdio::piped());
            c.spawn().expect("forwarder")
        })
        .collect();
    for c in fwd {
        let out = c.wait_with_output().expect("forwarder");
        assert!(
            out.status.success(),
            "forwarder: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Forwarding the same inputs again publishes nothing new (checkpoints after the acks).
    ok(
        forwarder(d, &url, "fwd0.json", &sources[0], true),
        "forwarder again",
    );

    for name in ["one", "two"] {
        let db = store(d, name);
        ok(consumer(d, &db, &url, true), "consumer");
        let (got, n) = identities(&db);
        assert_eq!(n, want_n, "{name}: events stored");
        assert_eq!(got, want, "{name}: identities");
        // The rejected lines travelled too: one per jsonl input.
        assert!(reject_count(&db) >= 2, "{name}: rejects");
        // A second --once run finds nothing more.
        ok(consumer(d, &db, &url, true), "consumer again");
        assert_eq!(identities(&db).1, want_n, "{name}: nothing twice");
    }
    // The ref state derived from the Gerrit events is the same as the direct ingest's.
    let status = |db: &Path| {
        let mut c = cmd(d, db);
        c.args(["status", "--format", "json"]);
        String::from_utf8(c.output().expect("status").stdout).expect("utf-8")
    };
    let direct = status(&store(d, "reference"));
    assert!(
        direct.contains("refs/"),
        "status of the direct ingest: {direct}"
    );
    assert_eq!(status(&store(d, "one")), direct);
}

#[test]
fn kill_9_of_forwarder_consumer_and_server_loses_nothing_and_stores_nothing_twice() {
    if !have_tool(
        NATS,
        "nats-server",
        "kill_9_of_forwarder_consumer_and_server_loses_nothing_and_stores_nothing_twice",
    ) {
        return;
    }
    let seed: u64 = std::env::var("SYNCSCOPE_TEST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_2026);
    eprintln!("seed {seed}");
    let mut rng = Rng(seed | 1);
    let s = Scratch::new();
    let d = s.dir.path();
    let mut server = Server::start(&d.join("nats"), &[]);
    let url = server.url("FLEET");
    let (a, b) = (d.join("a.jsonl"), d.join("b.jsonl"));
    write_jsonl(&a, "a", 20_000);
    write_jsonl(&b, "b", 10_000);
    let g = gerrit_input(d);
    let sources = [
        format!("jsonl:{}", a.display()),
        format!("jsonl:{}", b.display()),
        format!("gerrit-events:{}", g.display()),
    ];
    let (want, want_n) = reference(d, &sources);
    let db = store(d, "consumer");

    // Round 1: everything following; a forwarder killed, then the consumer, then the server.
    let f0 = spawn(forwarder(d, &url, "f0.json", &sources[0], false));
    let f1 = spawn(forwarder(d, &url, "f1.json", &sources[1], false));
    let c0 = spawn(consumer(d, &db, &url, false));
    std::thread::sleep(rng.ms(300, 1500));
    kill9(f0);
    std::thread::sleep(rng.ms(100, 800));
    kill9(c0);
    let f0 = spawn(forwarder(d, &url, "f0.json", &sources[0], false));
    let c0 = spawn(consumer(d, &db, &url, false));
    std::thread::sleep(rng.ms(200, 1200));
    server.kill9();
    std::thread::sleep(rng.ms(100, 1000));
    server.restart();
    let f2 = spawn(forwarder(d, &url, "f2.json", &sources[2], false));
    std::thread::sleep(rng.ms(500, 1500));
    kill9(c0);
    kill9(f0);
    kill9(f1);
    kill9(f2);

    // Round 2: each forwarder to the end of its input, then the consumer to the end of the stream.
    for (i, src) in sources.iter().enumerate() {
        ok(
            forwarder(d, &url, &format!("f{i}.json"), src, true),
            "forwarder --once",
        );
    }
    ok(consumer(d, &db, &url, true), "consumer --once");
    let (got, n) = identities(&db);
    let lost: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "lost {lost:?}, extra {extra:?} (seed {seed})"
    );
    assert_eq!(n, want_n, "seed {seed}");

    // A second store, started after all this, gets exactly the same.
    let db2 = store(d, "second");
    ok(consumer(d, &db2, &url, true), "second consumer");
    assert_eq!(
        identities(&db2),
        (want, want_n),
        "second store (seed {seed})"
    );
}

#[test]
fn a_token_from_the_environment_works_and_a_wrong_one_is_refused_clearly() {
    if !have_tool(
        NATS,
        "nats-server",
        "a_token_from_the_environment_works_and_a_wrong_one_is_refused_clearly",
    ) {
        return;
    }
    let s = Scratch::new();
    let d = s.dir.path();
    let server = Server::start(&d.join("nats"), &["--auth", "s3cret-token"]);
    let url = server.url("AUTH");
    let a = d.join("a.jsonl");
    write_jsonl(&a, "a", 100);
    let src = format!("jsonl:{}", a.display());
    let (want, want_n) = reference(d, std::slice::from_ref(&src));

    // No token, a wrong token: refused, saying so, the secret never printed.
    let out = forwarder(d, &url, "f.json", &src, true)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let mut wrong = forwarder(d, &url, "f.json", &src, true);
    wrong.env("SYNCSCOPE_NATS_TOKEN", "wrong-token");
    let out = wrong.output().expect("run");
    assert!(!out.status.success(), "a wrong token must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused the credentials"), "{err}");
    assert!(!err.contains("wrong-token"), "{err}");
    // Credentials in the URL are refused before anything connects.
    let bad = format!("nats://x:s3cret-token@127.0.0.1:{}/AUTH", server.port);
    let out = forwarder(d, &bad, "f.json", &src, true)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("credentials in the URL are refused"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");

    // The right token, from the environment, on both ends.
    let mut right = forwarder(d, &url, "f.json", &src, true);
    right.env("SYNCSCOPE_NATS_TOKEN", "s3cret-token");
    ok(right, "forwarder with the token");
    let db = store(d, "auth");
    let mut c = consumer(d, &db, &url, true);
    c.env("SYNCSCOPE_NATS_TOKEN", "s3cret-token");
    ok(c, "consumer with the token");
    assert_eq!(identities(&db), (want, want_n));
}
