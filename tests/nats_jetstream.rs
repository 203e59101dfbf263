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

/// Store rows now (0 while the store does not exist yet).
fn count_now(db: &Path) -> u64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)))
        .map(|n| n as u64)
        .unwrap_or(0)
}

/// The consumer acknowledges a batch with `AckPolicy::All`, which acknowledges every message
/// the server delivered below it: messages delivered to a consumer killed before it committed
/// them (its prefetched pull) must still reach the store, delivered again, not acknowledged
/// away by the next consumer's first batch.
#[test]
fn a_consumer_killed_with_messages_in_flight_loses_none_of_them() {
    if !have_tool(
        NATS,
        "nats-server",
        "a_consumer_killed_with_messages_in_flight_loses_none_of_them",
    ) {
        return;
    }
    let s = Scratch::new();
    let d = s.dir.path();
    let server = Server::start(&d.join("nats"), &[]);
    let url = server.url("INFLIGHT");
    let a = d.join("a.jsonl");
    write_jsonl(&a, "a", 60_000);
    let src = format!("jsonl:{}", a.display());
    let (want, want_n) = reference(d, std::slice::from_ref(&src));
    ok(forwarder(d, &url, "f.json", &src, true), "forwarder --once");
    let db = store(d, "consumer");
    // Killed twice while it is reading the stream (a batch committed, more delivered).
    let mut killed_at = Vec::new();
    for round in 1..=2u64 {
        let before = count_now(&db);
        let c = spawn(consumer(d, &db, &url, false));
        let t0 = Instant::now();
        while count_now(&db) < before + 5_000 && t0.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(5));
        }
        kill9(c);
        let n = count_now(&db);
        killed_at.push(n);
        assert!(
            n < want_n,
            "round {round}: the consumer finished before it was killed"
        );
    }
    ok(consumer(d, &db, &url, true), "consumer --once");
    let (got, n) = identities(&db);
    let lost = want.difference(&got).count();
    assert_eq!(
        lost, 0,
        "{lost} events lost (killed at {killed_at:?} stored)"
    );
    assert_eq!(n, want_n, "every event once (killed at {killed_at:?})");
}

/// Runs `f` against the server's JetStream (for what a test does as an administrator).
fn with_js<T>(url: &str, f: impl AsyncFnOnce(async_nats::jetstream::Context) -> T) -> T {
    let server = url
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .expect("url");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let client = async_nats::connect(server).await.expect("connect");
        f(async_nats::jetstream::new(client)).await
    })
}

/// Messages removed from the stream before the consumer read them (a purge below a sequence,
/// one deleted by hand) leave gaps in the sequences it is delivered: the consumer sees them
/// gone instead of holding its acknowledgements for ever, and ends with everything else.
#[test]
fn messages_removed_from_the_stream_do_not_hold_the_consumer() {
    if !have_tool(
        NATS,
        "nats-server",
        "messages_removed_from_the_stream_do_not_hold_the_consumer",
    ) {
        return;
    }
    let s = Scratch::new();
    let d = s.dir.path();
    let server = Server::start(&d.join("nats"), &[]);
    let url = server.url("REMOVED");
    let a = d.join("a.jsonl");
    write_jsonl(&a, "a", 10_000);
    let src = format!("jsonl:{}", a.display());
    let (_, want_n) = reference(d, std::slice::from_ref(&src));
    ok(forwarder(d, &url, "f.json", &src, true), "forwarder --once");
    let last = with_js(&url, async |js| {
        let mut stream = js.get_stream("REMOVED").await.expect("stream");
        stream
            .purge()
            .sequence(1000)
            .await
            .expect("purge below 1000");
        for seq in 5000..5005 {
            stream.delete_message(seq).await.expect("delete");
        }
        stream.info().await.expect("info").state.last_sequence
    });
    let db = store(d, "consumer");
    let t0 = Instant::now();
    let mut c = spawn(consumer(d, &db, &url, true));
    let status = loop {
        if let Some(st) = c.try_wait().expect("wait") {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            kill9(c);
            panic!("the consumer still waits for removed messages after 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "consumer --once: {status:?}");
    assert_eq!(count_now(&db), want_n - 999 - 5);
    // Everything acknowledged: a following run has nothing left.
    let (floor, pending) = with_js(&url, async |js| {
        let stream = js.get_stream("REMOVED").await.expect("stream");
        let mut names = stream.consumer_names();
        use futures_util::StreamExt;
        let name = names.next().await.expect("a consumer").expect("name");
        let mut c: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(&name).await.expect("consumer");
        let info = c.info().await.expect("info");
        (info.ack_floor.stream_sequence, info.num_ack_pending)
    });
    assert_eq!((floor, pending), (last, 0));
}

/// A durable consumer created by an older syncscope (`AckPolicy::Explicit`, which a consumer
/// keeps for life) is still acknowledged message by message: nothing comes again.
#[test]
fn a_consumer_created_with_explicit_acks_keeps_working() {
    if !have_tool(
        NATS,
        "nats-server",
        "a_consumer_created_with_explicit_acks_keeps_working",
    ) {
        return;
    }
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    let s = Scratch::new();
    let d = s.dir.path();
    let server = Server::start(&d.join("nats"), &[]);
    let db = store(d, "consumer");
    // The store (and its id) first, from an empty stream.
    ok(
        consumer(d, &db, &server.url("EMPTY"), true),
        "consumer of EMPTY",
    );
    let id: i64 = rusqlite::Connection::open(&db)
        .expect("store")
        .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
            r.get(0)
        })
        .expect("store id");
    let name = format!("syncscope-{id:016x}");
    let url = server.url("OLD");
    let a = d.join("a.jsonl");
    write_jsonl(&a, "a", 3_000);
    let src = format!("jsonl:{}", a.display());
    let (want, want_n) = reference(d, std::slice::from_ref(&src));
    ok(forwarder(d, &url, "f.json", &src, true), "forwarder --once");
    with_js(&url, async |js| {
        let stream = js.get_stream("OLD").await.expect("stream");
        stream
            .create_consumer(pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(10),
                ..Default::default()
            })
            .await
            .expect("create the old consumer");
    });
    ok(consumer(d, &db, &url, true), "consumer --once");
    assert_eq!(identities(&db), (want, want_n));
    let (policy, pending, waiting) = with_js(&url, async |js| {
        let stream = js.get_stream("OLD").await.expect("stream");
        let mut c: async_nats::jetstream::consumer::PullConsumer =
            stream.get_consumer(&name).await.expect("consumer");
        let info = c.info().await.expect("info");
        (
            info.config.ack_policy,
            info.num_ack_pending,
            info.num_pending,
        )
    });
    assert_eq!(policy, AckPolicy::Explicit);
    assert_eq!((pending, waiting), (0, 0), "every message acknowledged");
}
