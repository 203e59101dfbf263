//! kill -9 of every source kind that is not a plain file: `spacedrive-db`, `gerrit-rest`,
//! `ngit-metrics` and `gitlab` against local stand-ins that serve fast, and `gerrit-ssh` through
//! a real `sshd`. Each kind is ingested by the real binary, SIGKILLed at 20 random instants
//! (seeded; the seed is printed, and `SYNCSCOPE_KILL_SEED=N` repeats a run) while its upstream
//! grows between rounds, restarted, and at the end the store holds exactly what the upstream
//! served: the same events as one clean ingest of the final upstream into a fresh store, none
//! lost, none twice.
//!
//! `gerrit-ssh` differs as Gerrit does: `stream-events` never replays, so the events in flight
//! when the ingest dies (sent by Gerrit, not yet committed) are gone upstream too. There the
//! test checks what can be true: each connection's events are stored as a prefix of what it sent,
//! never twice, and the connection the ingest ends on is stored whole.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Scratch;
use serde_json::{json, Value};

/// Kills per kind.
const ROUNDS: usize = 20;
/// The longest one ingest may take to finish (a loaded 2-core box is slow).
const FINISH: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Seeded instants

/// splitmix64: small, seeded, good enough to spread kill instants.
struct Rng(u64);

impl Rng {
    fn from_env(kind: &str) -> Rng {
        let seed = std::env::var("SYNCSCOPE_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{kind}: kill instants from seed {seed} (SYNCSCOPE_KILL_SEED={seed} repeats them)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..=max
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

// ---------------------------------------------------------------------------------------------
// Running the ingest

/// One `syncscope ingest` child; SIGKILLed and reaped when dropped. Its stderr goes to a file.
struct Ingest {
    child: Child,
    stderr: PathBuf,
    done: bool,
}

impl Ingest {
    fn spawn(mut cmd: Command, stderr: PathBuf) -> Ingest {
        let err = File::create(&stderr).expect("stderr file");
        let child = cmd
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn syncscope ingest");
        Ingest {
            child,
            stderr,
            done: false,
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGKILL unless it already ended: true when it was still running (the kill landed).
    fn kill9(&mut self) -> bool {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            self.done = true;
            assert_eq!(
                st.code(),
                Some(0),
                "ingest failed by itself: {}",
                self.stderr_text()
            );
            return false;
        }
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
        self.done = true;
        true
    }

    /// Waits for it to end by itself; it must succeed within [`FINISH`].
    fn finish(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                self.done = true;
                assert_eq!(st.code(), Some(0), "ingest failed: {}", self.stderr_text());
                return;
            }
            assert!(
                start.elapsed() < FINISH,
                "ingest did not finish within {FINISH:?}: {}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How one kind's `ingest --once` is run against a store.
type MakeCmd<'a> = &'a dyn Fn(&Scratch) -> Command;

/// Runs `ingest --once` to its end on `s`; returns how long it took.
fn run_to_end(s: &Scratch, make: MakeCmd, tag: &str) -> Duration {
    let start = Instant::now();
    let mut p = Ingest::spawn(make(s), s.path(&format!("stderr-{tag}.txt")));
    p.finish();
    start.elapsed()
}

/// The kill rounds of one kind: `grow(round)` adds to the upstream, then an `ingest --once` is
/// SIGKILLed after a random delay (up to about one whole ingest of the first round, measured on a
/// throwaway store), 20 times; then one ingest runs to its end. Returns the log of the rounds.
fn kill_rounds(kind: &str, s: &Scratch, make: MakeCmd, grow: &mut dyn FnMut(usize)) -> Vec<String> {
    let mut rng = Rng::from_env(kind);
    grow(0);
    let whole = run_to_end(&Scratch::new(), make, "calibrate");
    let max_ms = (whole.as_millis() as u64 * 6 / 5).max(20);
    let mut log = vec![format!(
        "{kind}: one whole ingest takes {} ms; kills within 0..={max_ms} ms",
        whole.as_millis()
    )];
    let mut landed = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            grow(round);
        }
        let ms = rng.upto(max_ms);
        let mut p = Ingest::spawn(make(s), s.path(&format!("stderr-{round}.txt")));
        std::thread::sleep(Duration::from_millis(ms));
        let hit = p.kill9();
        landed += usize::from(hit);
        log.push(format!(
            "round {round}: {} at {ms} ms, {} events stored",
            if hit { "SIGKILL" } else { "ended before" },
            s.count(&[])
        ));
    }
    run_to_end(s, make, "final");
    eprintln!("{}", log.join("\n"));
    assert!(
        landed >= ROUNDS / 4,
        "only {landed} of {ROUNDS} kills landed while the ingest ran: {log:#?}"
    );
    log
}

/// The events of `source` as comparable identities (every field but the store's row id and
/// `drop`), with how often each is stored.
fn identities(s: &Scratch, source: &str, drop: &[&str]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for mut e in s.events_json(&["--source", source]) {
        let o = e.as_object_mut().expect("event object");
        o.remove("id");
        for d in drop {
            o.remove(*d);
        }
        *out.entry(e.to_string()).or_insert(0) += 1;
    }
    out
}

/// The killed store holds exactly what one clean ingest of the final upstream stores.
fn assert_same_as_clean(kind: &str, s: &Scratch, make: MakeCmd, source: &str, drop: &[&str]) {
    let clean = Scratch::new();
    run_to_end(&clean, make, "clean");
    let want = identities(&clean, source, drop);
    let got = identities(s, source, drop);
    let twice: Vec<&String> = got.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k).collect();
    assert!(twice.is_empty(), "{kind}: stored twice: {twice:#?}");
    let lost: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "{kind}: lost {} {lost:#?}\nnot in a clean ingest {} {extra:#?}",
        lost.len(),
        extra.len()
    );
    assert_eq!(got, want, "{kind}");
    assert!(!want.is_empty(), "{kind}: the upstream served nothing");
    eprintln!("{kind}: {} events, each stored once", want.len());
}

// ---------------------------------------------------------------------------------------------
// A loopback HTTP stand-in

type Answer = (u16, &'static str, Vec<u8>);
type Handler = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// Serves `answer(request target)` on 127.0.0.1, each connection on its own thread; returns
/// `http://127.0.0.1:PORT`.
fn serve(answer: Handler) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut stream) = conn else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let Ok((target, _)) = common::request_target_and_token(&stream) else {
                    return;
                };
                let (status, ctype, body) = answer(&target);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    base
}

fn once(s: &Scratch, source: &str) -> Command {
    let mut c = s.cmd();
    c.args(["ingest", "--once", "-q", "--batch-size", "7", "--source", source]);
    c
}

// ---------------------------------------------------------------------------------------------
// spacedrive-db

const SD_DEVICE: &str = "cd613e30-d8f1-6adf-91b7-584a2265b1f5";

/// Appends `n` rows the way Spacedrive does (AUTOINCREMENT ids), numbered from `*next`.
fn insert_sd_rows(db: &Path, next: &mut u64, n: u64) {
    let mut conn = rusqlite::Connection::open(db).expect("open sync.db");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    let tx = conn.transaction().expect("begin");
    for _ in 0..n {
        let k = *next;
        *next += 1;
        let (ty, cat, sev) = match k % 3 {
            0 => ("batch_ingestion", "data_flow", "debug"),
            1 => ("state_transition", "lifecycle", "info"),
            _ => ("sync_error", "error", "warning"),
        };
        tx.execute(
            "INSERT INTO sync_event_log (timestamp, device_id, event_type, category, severity,
               summary, details, correlation_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                format!(
                    "2025-12-06T{:02}:{:02}:{:02}.{:06}+00:00",
                    k / 3600 % 24,
                    k / 60 % 60,
                    k % 60,
                    k * 37 % 1_000_000
                ),
                SD_DEVICE,
                ty,
                cat,
                sev,
                format!("killed row {k}"),
                k.is_multiple_of(2).then(|| format!(r#"{{"k": {k}}}"#)),
                format!("kill-session-{}", k / 10),
            ],
        )
        .expect("insert row");
    }
    tx.commit().expect("commit");
}

#[test]
fn kill_9_spacedrive_db() {
    let s = Scratch::new();
    let db = s.copy_fixture("sync.db");
    let source = format!("spacedrive-db:{}", db.display());
    let make = |s: &Scratch| once(s, &source);
    let mut next = 0;
    kill_rounds("spacedrive-db", &s, &make, &mut |_| {
        insert_sd_rows(&db, &mut next, 150)
    });
    assert_eq!(s.count(&["--grep", "killed row"]), next);
    assert_same_as_clean("spacedrive-db", &s, &make, "spacedrive", &[]);
}

// ---------------------------------------------------------------------------------------------
// gerrit-rest

/// The replication-status answer: `refs` refs of every round so far, each with its own time.
fn rest_body(rounds: usize, refs: usize) -> String {
    let mut status = serde_json::Map::new();
    for r in 0..rounds {
        for k in 0..refs {
            let failed = (r + k) % 5 == 0;
            status.insert(
                format!("refs/heads/r{r}-b{k}"),
                json!({"type": "PUSH", "status": if failed { "FAILED" } else { "SUCCEEDED" },
                       "when": 1_764_000_000 + (r * 1000 + k) as i64}),
            );
        }
    }
    let body = json!({"remotes": {"https://mirror.example.org/core.git": {"status": status}},
                      "status": "OK", "project": "core"});
    // Gerrit's XSSI prefix, as it sends it.
    format!(")]}}'\n{body}")
}

#[test]
fn kill_9_gerrit_rest() {
    let s = Scratch::new();
    let body = Arc::new(Mutex::new(String::new()));
    let shared = body.clone();
    let base = serve(Arc::new(move |_| {
        (200, "application/json", shared.lock().expect("lock").clone().into_bytes())
    }));
    let source = format!(
        "gerrit-rest:{base}/a/projects/core/remotes/https%3A%2F%2Fmirror.example.org%2Fcore.git/replication-status"
    );
    let make = |s: &Scratch| {
        let mut c = once(s, &source);
        c.env("SYNCSCOPE_GERRIT_USER", "mon")
            .env("SYNCSCOPE_GERRIT_PASSWORD", "s3cret")
            .env_remove("SYNCSCOPE_GERRIT_CREDENTIALS");
        c
    };
    kill_rounds("gerrit-rest", &s, &make, &mut |round| {
        *body.lock().expect("lock") = rest_body(round + 1, 60);
    });
    assert_eq!(
        s.count(&["--event-type", "rest_ref_status"]),
        (ROUNDS * 60) as u64
    );
    assert_same_as_clean("gerrit-rest", &s, &make, "gerrit", &[]);
}

// ---------------------------------------------------------------------------------------------
// ngit-metrics

/// An ngit exposition (v3 names) with `n` relays, every one connected and healthy.
fn ngit_exposition(n: usize) -> String {
    let relay = |i: usize| format!("ws://10.0.{}.{}:7000", i / 200, i % 200);
    let mut t = String::from(
        "# HELP ngit_build_info Build information\n# TYPE ngit_build_info gauge\n\
         ngit_build_info{commit=\"unknown\",version=\"3.0.10\"} 1\n\
         # HELP ngit_sync_connection_attempts_total Total connection attempts by relay and result\n\
         # TYPE ngit_sync_connection_attempts_total counter\n",
    );
    for i in 0..n {
        t.push_str(&format!(
            "ngit_sync_connection_attempts_total{{relay=\"{}\",result=\"success\"}} 1\n",
            relay(i)
        ));
    }
    t.push_str("# HELP ngit_sync_relay_connected Relay connection status\n# TYPE ngit_sync_relay_connected gauge\n");
    for i in 0..n {
        t.push_str(&format!("ngit_sync_relay_connected{{relay=\"{}\"}} 3\n", relay(i)));
    }
    t.push_str("# HELP ngit_sync_relay_status Relay health status\n# TYPE ngit_sync_relay_status gauge\n");
    for i in 0..n {
        t.push_str(&format!("ngit_sync_relay_status{{relay=\"{}\"}} 1\n", relay(i)));
    }
    t
}

#[test]
fn kill_9_ngit_metrics() {
    let s = Scratch::new();
    let body = Arc::new(Mutex::new(String::new()));
    let shared = body.clone();
    let base = serve(Arc::new(move |_| {
        (
            200,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.lock().expect("lock").clone().into_bytes(),
        )
    }));
    let source = format!("ngit-metrics:{base}/metrics");
    let make = |s: &Scratch| once(s, &source);
    kill_rounds("ngit-metrics", &s, &make, &mut |round| {
        *body.lock().expect("lock") = ngit_exposition((round + 1) * 25);
    });
    assert_eq!(
        s.count(&["--event-type", "relay_seen"]),
        (ROUNDS * 25) as u64
    );
    // A scrape's events carry the scrape's time (and its state, since when): compare the rest.
    assert_same_as_clean("ngit-metrics", &s, &make, "ngit", &["timestamp", "details"]);
}
