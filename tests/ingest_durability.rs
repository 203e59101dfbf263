//! Durability of `syncscope ingest` under real-world abuse: kill -9 at arbitrary instants,
//! files rotated and truncated under a follower, a live Spacedrive `sync.db` in WAL mode written
//! by another process, standard input pipes, and readers running next to the writer.
//!
//! Every test runs the real binary as a child process, waits with a timeout (a hang fails, it
//! never blocks CI), and kills its children when it ends, passing or not.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::Scratch;

/// How long new data may take to show up in the store (a shared 2-core CI box can be slow).
const APPEAR: Duration = Duration::from_secs(30);
/// How long a follower may take to exit after SIGTERM.
const STOP: Duration = Duration::from_secs(10);
/// The device of the `sync.db` fixture.
const FIXTURE_DEVICE: &str = "cd613e30-d8f1-6adf-91b7-584a2265b1f5";
/// Rows in the fixture's `sync_event_log`.
const FIXTURE_ROWS: u64 = 54;

// ---------------------------------------------------------------------------------------------
// Child processes

/// A running `syncscope`; SIGKILLed and reaped when dropped, so a failing test leaves nothing
/// behind. Its stderr goes to a file in the scratch directory, shown when something fails.
struct Proc {
    child: Child,
    stderr: PathBuf,
    exited: Option<ExitStatus>,
}

impl Proc {
    fn spawn(s: &Scratch, args: &[&str], stdin: Stdio) -> Proc {
        static N: AtomicUsize = AtomicUsize::new(0);
        let stderr = s.path(&format!("stderr-{}.txt", N.fetch_add(1, Ordering::Relaxed)));
        let err = File::create(&stderr).expect("create stderr file");
        let child = s
            .cmd()
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn syncscope");
        Proc {
            child,
            stderr,
            exited: None,
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The exit status if the child has exited (reaping it), without waiting.
    fn status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited
    }

    fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(st) = self.status() {
                return Some(st);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (unless it already exited by itself); returns how it ended.
    fn kill9(&mut self) -> ExitStatus {
        if let Some(st) = self.status() {
            return st;
        }
        self.child.kill().expect("SIGKILL");
        let st = self.child.wait().expect("wait");
        self.exited = Some(st);
        st
    }

    /// SIGTERM, then the exit status, which must come within [`STOP`].
    fn terminate(&mut self) -> ExitStatus {
        assert!(
            self.status().is_none(),
            "syncscope exited before SIGTERM with {:?}; stderr:\n{}",
            self.exited,
            self.stderr_text()
        );
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits");
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        let r = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(r, 0, "kill(SIGTERM) failed");
        match self.wait_timeout(STOP) {
            Some(st) => st,
            None => panic!(
                "syncscope did not exit within {STOP:?} of SIGTERM; stderr:\n{}",
                self.stderr_text()
            ),
        }
    }

    /// SIGTERM and require a clean exit (code 0).
    fn stop_ok(&mut self) {
        let st = self.terminate();
        assert_eq!(
            st.code(),
            Some(0),
            "exit after SIGTERM: {st:?}; stderr:\n{}",
            self.stderr_text()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` until it holds; fails (with the child's stderr) on timeout or if the child dies.
fn wait_until(p: &mut Proc, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if let Some(st) = p.status() {
            panic!(
                "waiting for {what}: syncscope exited with {st:?}; stderr:\n{}",
                p.stderr_text()
            );
        }
        if start.elapsed() > APPEAR {
            panic!(
                "waiting for {what}: timed out after {APPEAR:?}; stderr:\n{}",
                p.stderr_text()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `events --count` prints exactly `want`; fails on timeout or if it goes past.
fn wait_count(s: &Scratch, p: &mut Proc, want: u64) {
    let mut last = 0;
    wait_until(p, &format!("{want} events"), || {
        last = s.count(&[]);
        assert!(last <= want, "expected {want} events, store has {last}");
        last == want
    });
}

// ---------------------------------------------------------------------------------------------
// Store inspection

/// A number from the store, or None while it does not exist or lacks the table.
fn query_i64(s: &Scratch, sql: &str) -> Option<i64> {
    if !s.db().exists() {
        return None;
    }
    let conn = rusqlite::Connection::open_with_flags(
        s.db(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .ok()
        .flatten()
}

fn sum(s: &Scratch, column: &str) -> i64 {
    query_i64(
        s,
        &format!("SELECT coalesce(sum({column}), 0) FROM batches"),
    )
    .unwrap_or(0)
}

/// The state the writer recorded for a source (`waiting`, `ok`, `backoff`, ...).
fn status_of(s: &Scratch, source: &str) -> Option<String> {
    let conn = s.db().exists().then(|| s.store())?;
    conn.query_row(
        "SELECT state FROM source_status WHERE source = ?1",
        [source],
        |r| r.get(0),
    )
    .ok()
}

fn reject_locations(s: &Scratch) -> Vec<String> {
    let conn = s.store();
    let mut st = conn
        .prepare("SELECT location FROM rejects ORDER BY location")
        .expect("prepare");
    let rows = st.query_map([], |r| r.get(0)).expect("query rejects");
    rows.collect::<Result<_, _>>().expect("read rejects")
}

/// No event was stored twice and every batch went in whole: the checkpoints were committed with
/// the data they describe.
fn assert_no_duplicates(s: &Scratch) {
    assert_eq!(
        sum(s, "duplicates"),
        0,
        "some event was read twice (a checkpoint was not committed with its batch)"
    );
}

// ---------------------------------------------------------------------------------------------
// Test data

const TYPES: &[(&str, &str, &str)] = &[
    ("sync_started", "lifecycle", "info"),
    ("batch_ingested", "data_flow", "debug"),
    ("state_transition", "lifecycle", "info"),
    ("batch_ingestion", "data_flow", "debug"),
    ("peer_connected", "network", "info"),
    ("sync_error", "error", "warning"),
];

/// A valid event with Spacedrive's field names, unique per (phase, i): day `phase + 1` of
/// December 2025, `i` milliseconds into it, and a summary naming both.
fn event_line(phase: u32, i: u64) -> String {
    assert!(phase < 28 && i < 86_400_000);
    let (ms, secs) = (i % 1000, i / 1000);
    let (ty, cat, sev) = TYPES[(i % TYPES.len() as u64) as usize];
    let mut line = format!(
        r#"{{"timestamp":"2025-12-{:02}T{:02}:{:02}:{:02}.{ms:03}Z","device_id":"dev-{}","event_type":"{ty}","category":"{cat}","severity":"{sev}","summary":"phase {phase} event {i}","correlation_id":"corr-{phase}-{}""#,
        phase + 1,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        i % 3,
        i / 500,
    );
    if i.is_multiple_of(4) {
        line.push_str(&format!(r#","details":{{"n":{i},"phase":{phase}}}"#));
    }
    if ty == "batch_ingestion" {
        line.push_str(&format!(
            r#","peer_device_id":"peer-{}","model_types":["entry","tag"],"record_count":{},"duration_ms":{}"#,
            i % 5,
            i * 7 % 10_000,
            i % 3000
        ));
    }
    line.push('}');
    line
}

/// A line that cannot be an event, of several kinds.
fn bad_line(k: u64) -> String {
    match k % 6 {
        0 => format!("{{not json at all {k}"),
        1 => format!(
            r#"{{"device_id":"dev-x","event_type":"sync_started","summary":"no timestamp {k}"}}"#
        ),
        2 => format!(
            r#"{{"timestamp":"yesterday-ish {k}","event_type":"sync_started","summary":"bad time"}}"#
        ),
        3 => format!(
            r#"{{"timestamp":"2025-11-01T00:00:00Z","event_type":"sync_started","severity":"catastrophic","summary":"bad severity {k}"}}"#
        ),
        4 => format!(r#"[{k}, "an array, not an object"]"#),
        _ => format!(
            r#"{{"timestamp":"2025-11-01T00:00:{:02}Z","event_type":"batch_ingestion","summary":"count is text {k}","record_count":"many"}}"#,
            k % 60
        ),
    }
}

fn append_lines(w: &mut impl Write, phase: u32, range: std::ops::Range<u64>) {
    let mut text = String::new();
    for i in range {
        text.push_str(&event_line(phase, i));
        text.push('\n');
    }
    w.write_all(text.as_bytes()).expect("append lines");
    w.flush().expect("flush");
}

/// Writes the kill -9 test's input: `valid` events with bad lines, two blank lines and one
/// over-long line sprinkled in. Returns the (1-based) line numbers of the bad lines.
fn write_kill_file(path: &Path, valid: u64) -> Vec<u64> {
    let mut w = BufWriter::new(File::create(path).expect("create input"));
    let mut line_no = 0u64;
    let mut bad = Vec::new();
    let mut put = |w: &mut BufWriter<File>, text: &str| {
        w.write_all(text.as_bytes()).expect("write");
        w.write_all(b"\n").expect("write");
        line_no += 1;
        line_no
    };
    for i in 0..valid {
        if i % 3989 == 1000 {
            bad.push(put(&mut w, &bad_line(i)));
        }
        if i == valid / 4 || i == valid * 3 / 4 {
            put(&mut w, "   "); // blank: skipped, neither an event nor a reject
        }
        if i == valid / 2 {
            // Valid JSON, but longer than the 1 MiB line limit: rejected without being held.
            let long = format!(
                r#"{{"timestamp":"2025-11-02T00:00:00Z","event_type":"sync_started","summary":"{}"}}"#,
                "x".repeat(1536 * 1024)
            );
            bad.push(put(&mut w, &long));
        }
        put(&mut w, &event_line(0, i));
    }
    w.flush().expect("flush input");
    bad
}

// ---------------------------------------------------------------------------------------------
// 1. kill -9

#[test]
fn kill_9_at_any_instant_loses_nothing_and_stores_nothing_twice() {
    const VALID: u64 = 200_000;
    let s = Scratch::new();
    let input = s.path("events.jsonl");
    let bad = write_kill_file(&input, VALID);
    assert!(bad.len() > 40);
    let src = format!("jsonl:{}", input.display());
    let args = [
        "ingest",
        "--once",
        "-q",
        "--batch-size",
        "1000",
        "--source",
        &src,
    ];

    // Deterministic, varying kill instants between 50 and 400 ms after the start.
    let delays_ms = [50u64, 400, 120, 275, 85, 330, 190, 60];
    let mut log = Vec::new();
    let mut mid_ingest = 0;
    let mut last = 0;
    for ms in delays_ms {
        let mut p = Proc::spawn(&s, &args, Stdio::null());
        std::thread::sleep(Duration::from_millis(ms));
        let st = p.kill9();
        let n = s.count(&[]);
        log.push(format!("SIGKILL at {ms} ms ({st}): {n} events"));
        assert!(n >= last, "the event count went back: {log:#?}");
        if n > 0 && n < VALID {
            mid_ingest += 1;
        }
        last = n;
    }
    eprintln!("{log:#?}");
    assert!(
        mid_ingest > 0,
        "no kill landed in the middle of the ingest (make the file bigger or kill sooner): {log:#?}"
    );

    // Finally, let it run to completion.
    let mut p = Proc::spawn(&s, &args, Stdio::null());
    let st = p.wait_timeout(Duration::from_secs(120)).unwrap_or_else(|| {
        panic!(
            "the final ingest did not finish; stderr:\n{}",
            p.stderr_text()
        )
    });
    assert_eq!(st.code(), Some(0), "stderr:\n{}", p.stderr_text());

    let bad_count = bad.len() as i64;
    assert_eq!(s.count(&[]), VALID, "{log:#?}");
    assert_eq!(sum(&s, "inserted"), VALID as i64, "inserted per batch");
    assert_no_duplicates(&s);
    // Each bad line rejected exactly once, under its own line number.
    assert_eq!(
        query_i64(&s, "SELECT count(*) FROM rejects"),
        Some(bad_count)
    );
    assert_eq!(
        sum(&s, "rejected"),
        bad_count,
        "a bad line was read (and rejected) again after a kill"
    );
    let mut want: Vec<String> = bad
        .iter()
        .map(|n| format!("{}:{n}", input.display()))
        .collect();
    want.sort();
    assert_eq!(reject_locations(&s), want);
}

// ---------------------------------------------------------------------------------------------
// 2. Following a file through creation, rotation and truncation

#[test]
fn follow_through_creation_rotation_and_truncation() {
    let s = Scratch::new();
    let file = s.path("app.jsonl");
    let src = format!("jsonl:{}", file.display());
    let mut p = Proc::spawn(
        &s,
        &["ingest", "--poll-interval-ms", "50", "--source", &src],
        Stdio::null(),
    );
    wait_until(&mut p, "the follower to wait for the missing file", || {
        status_of(&s, &src).as_deref() == Some("waiting")
    });

    // The file appears and grows.
    let mut w = File::create(&file).expect("create");
    append_lines(&mut w, 1, 0..60);
    std::thread::sleep(Duration::from_millis(100));
    append_lines(&mut w, 1, 60..100);
    wait_count(&s, &mut p, 100);

    // A line without its newline is not an event yet...
    w.write_all(event_line(1, 100).as_bytes()).expect("write");
    w.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(800)); // 16 poll intervals
    assert_eq!(s.count(&[]), 100, "a line was stored before its newline");
    // ...until its newline arrives.
    w.write_all(b"\n").expect("write");
    wait_count(&s, &mut p, 101);

    // Rotation by rename: the producer still writes to the old file, ending without a
    // newline, before it opens the new one. All of that is read, then the new file.
    let rotated = s.path("app.jsonl.1");
    std::fs::rename(&file, &rotated).expect("rotate");
    append_lines(&mut w, 2, 0..20);
    w.write_all(event_line(2, 20).as_bytes()).expect("write");
    w.flush().expect("flush");
    drop(w);
    let mut w = File::create(&file).expect("create new file");
    append_lines(&mut w, 3, 0..50);
    wait_count(&s, &mut p, 101 + 21 + 50);

    // Truncation in place; the new content is shorter than what had been read, so the follower
    // can tell, and starts over from the top of the same file.
    let mut w = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&file)
        .expect("truncate");
    append_lines(&mut w, 4, 0..10);
    wait_count(&s, &mut p, 182);
    append_lines(&mut w, 4, 10..20);
    wait_count(&s, &mut p, 192);

    p.stop_ok();
    assert_eq!(s.count(&[]), 192);
    assert_eq!(
        s.count(&["--grep", "phase 2 event 20"]),
        1,
        "unterminated last line of the rotated file"
    );
    assert_no_duplicates(&s);
    assert_eq!(query_i64(&s, "SELECT count(*) FROM rejects"), Some(0));

    // A restart resumes at the saved checkpoint: nothing new, nothing read twice.
    let out = s.ingest_once(std::slice::from_ref(&src));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.count(&[]), 192);
    assert_no_duplicates(&s);
}

// ---------------------------------------------------------------------------------------------
// 3. A live Spacedrive sync.db in WAL mode

/// Inserts `n` rows the way Spacedrive does (no id: AUTOINCREMENT), numbered from `*next`.
fn insert_sd_rows(conn: &rusqlite::Connection, next: &mut u64, n: u64) {
    let mut st = conn
        .prepare_cached(
            "INSERT INTO sync_event_log (timestamp, device_id, event_type, category, severity,
               summary, details, correlation_id, peer_device_id, model_types, record_count, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .expect("prepare insert");
    for _ in 0..n {
        let k = *next;
        *next += 1;
        let ts = format!(
            "2025-12-05T{:02}:{:02}:{:02}.{:06}+00:00",
            k / 3600 % 24,
            k / 60 % 60,
            k % 60,
            k * 37 % 1_000_000
        );
        let ingest = k.is_multiple_of(3);
        let (ty, cat, sev) = if ingest {
            ("batch_ingestion", "data_flow", "debug")
        } else if k % 3 == 1 {
            ("state_transition", "lifecycle", "info")
        } else {
            ("sync_error", "error", "warning")
        };
        let details = k.is_multiple_of(2).then(|| format!(r#"{{"k": {k}}}"#));
        st.execute(rusqlite::params![
            ts,
            FIXTURE_DEVICE,
            ty,
            cat,
            sev,
            format!("live row {k}"),
            details,
            format!("live-session-{}", k / 10),
            ingest.then_some("1e2feb89-414c-343c-1027-c4d1c386bbc4"),
            ingest.then_some("entry,tag"),
            ingest.then_some(k as i64 * 10),
            ingest.then_some(k as i64 + 100),
        ])
        .expect("insert row");
    }
}

#[test]
fn live_spacedrive_db_in_wal_mode_written_by_another_process() {
    let s = Scratch::new();
    let db = s.copy_fixture("sync.db");
    let w = rusqlite::Connection::open(&db).expect("open the copy for writing");
    let mode: String = w
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .expect("switch to WAL");
    assert_eq!(mode, "wal");
    w.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");

    let src = format!("spacedrive-db:{}", db.display());
    // A small page size, so the reader pages through rows as well as polling.
    let mut p = Proc::spawn(
        &s,
        &[
            "ingest",
            "--poll-interval-ms",
            "50",
            "--batch-size",
            "7",
            "--source",
            &src,
        ],
        Stdio::null(),
    );
    let mut expected = FIXTURE_ROWS;
    wait_count(&s, &mut p, expected);

    let mut next = 0;
    let tx = |sql: &str| w.execute_batch(sql).expect(sql);
    // One transaction while the ingest is following.
    tx("BEGIN");
    insert_sd_rows(&w, &mut next, 25);
    tx("COMMIT");
    expected += 25;
    wait_count(&s, &mut p, expected);
    // Several small transactions in a row.
    for _ in 0..3 {
        tx("BEGIN");
        insert_sd_rows(&w, &mut next, 10);
        tx("COMMIT");
        std::thread::sleep(Duration::from_millis(30));
    }
    expected += 30;
    wait_count(&s, &mut p, expected);

    // A writer holding its transaction open for a while: the ingest keeps polling, sees none of
    // the uncommitted rows, and takes them once committed.
    tx("BEGIN IMMEDIATE");
    insert_sd_rows(&w, &mut next, 6);
    let held = Instant::now();
    let mut more = true;
    while held.elapsed() < Duration::from_millis(1200) {
        assert!(
            p.status().is_none(),
            "ingest died under a busy writer: {}",
            p.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(150));
        if more && held.elapsed() > Duration::from_millis(500) {
            insert_sd_rows(&w, &mut next, 4);
            more = false;
        }
    }
    assert_eq!(s.count(&[]), expected, "uncommitted rows were read");
    tx("COMMIT");
    expected += 10;
    wait_count(&s, &mut p, expected);
    assert_eq!(status_of(&s, &src).as_deref(), Some("ok"));

    // Retention deletes old rows (a gap in ids), then more arrive.
    let gone = w
        .execute("DELETE FROM sync_event_log WHERE id <= 60", [])
        .expect("prune");
    assert_eq!(gone, 60);
    tx("BEGIN");
    insert_sd_rows(&w, &mut next, 15);
    tx("COMMIT");
    expected += 15;
    wait_count(&s, &mut p, expected);

    // Every row pruned (max(id) now below what was read), a few polls, then new rows.
    w.execute("DELETE FROM sync_event_log", [])
        .expect("prune all");
    std::thread::sleep(Duration::from_millis(400));
    tx("BEGIN");
    insert_sd_rows(&w, &mut next, 10);
    tx("COMMIT");
    expected += 10;
    wait_count(&s, &mut p, expected);

    p.stop_ok();
    assert_eq!(expected, FIXTURE_ROWS + next);
    assert_eq!(s.count(&[]), expected);
    assert_eq!(s.count(&["--device", FIXTURE_DEVICE]), expected);
    assert_eq!(s.count(&["--grep", "live row"]), next);
    assert_no_duplicates(&s);
    assert_eq!(query_i64(&s, "SELECT count(*) FROM rejects"), Some(0));
}

// ---------------------------------------------------------------------------------------------
// 4. The foreign sync.db is never written

struct FileState {
    bytes: Vec<u8>,
    mtime: SystemTime,
    dir: Vec<String>,
}

fn file_state(path: &Path) -> FileState {
    let dir = path.parent().expect("parent");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    FileState {
        bytes: std::fs::read(path).expect("read sync.db"),
        mtime: std::fs::metadata(path)
            .and_then(|m| m.modified())
            .expect("mtime"),
        dir: names,
    }
}

fn assert_untouched(path: &Path, before: &FileState, when: &str) {
    let now = file_state(path);
    assert_eq!(now.dir, ["sync.db"], "{when}: files next to sync.db");
    assert!(now.bytes == before.bytes, "{when}: sync.db bytes changed");
    assert_eq!(now.mtime, before.mtime, "{when}: sync.db mtime changed");
}

#[test]
fn foreign_sync_db_is_never_written() {
    let s = Scratch::new();
    let dir = s.path("spacedrive-library");
    std::fs::create_dir(&dir).expect("mkdir");
    let db = dir.join("sync.db");
    std::fs::copy(common::fixture("sync.db"), &db).expect("copy fixture");
    let before = file_state(&db);
    assert_eq!(before.dir, ["sync.db"]);
    let src = format!("spacedrive-db:{}", db.display());

    let out = s.ingest_once(std::slice::from_ref(&src));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.count(&[]), FIXTURE_ROWS);
    assert_untouched(&db, &before, "after ingest --once");

    // Following, into a fresh store.
    let f = Scratch::new();
    let mut p = Proc::spawn(
        &f,
        &["ingest", "--poll-interval-ms", "50", "--source", &src],
        Stdio::null(),
    );
    wait_count(&f, &mut p, FIXTURE_ROWS);
    std::thread::sleep(Duration::from_millis(1000)); // ~20 more polls
    assert_untouched(&db, &before, "while following");
    p.stop_ok();
    assert_untouched(&db, &before, "after following");
}

// ---------------------------------------------------------------------------------------------
// 5. Standard input

#[test]
fn stdin_is_read_to_its_end_then_ingest_exits() {
    let s = Scratch::new();
    let mut p = Proc::spawn(
        &s,
        &["ingest", "--poll-interval-ms", "50", "--source", "jsonl:-"],
        Stdio::piped(),
    );
    let mut stdin = p.child.stdin.take().expect("stdin pipe");
    append_lines(&mut stdin, 5, 0..150);
    stdin
        .write_all(format!("{}\n", bad_line(0)).as_bytes())
        .expect("write");
    append_lines(&mut stdin, 5, 150..199);
    // The last line has no newline: at the end of input it is still a whole line.
    stdin
        .write_all(event_line(5, 199).as_bytes())
        .expect("write");
    drop(stdin);

    let st = p.wait_timeout(APPEAR).unwrap_or_else(|| {
        panic!(
            "ingest did not exit at the end of stdin; stderr:\n{}",
            p.stderr_text()
        )
    });
    assert_eq!(st.code(), Some(0), "stderr:\n{}", p.stderr_text());
    assert_eq!(s.count(&[]), 200);
    assert_eq!(reject_locations(&s), ["stdin:151"]);
    assert_no_duplicates(&s);
}

#[test]
fn stdin_lines_are_stored_while_the_pipe_stays_open_and_sigterm_stops_it() {
    let s = Scratch::new();
    let mut p = Proc::spawn(
        &s,
        &["ingest", "--poll-interval-ms", "50", "--source", "jsonl:-"],
        Stdio::piped(),
    );
    let mut stdin = p.child.stdin.take().expect("stdin pipe");
    append_lines(&mut stdin, 6, 0..40);
    wait_count(&s, &mut p, 40);
    append_lines(&mut stdin, 6, 40..65);
    wait_count(&s, &mut p, 65);
    // The producer is still there (stdin open, idle): SIGTERM must stop the ingest anyway.
    p.stop_ok();
    drop(stdin);
    assert_eq!(s.count(&[]), 65);
    assert_no_duplicates(&s);
}

// ---------------------------------------------------------------------------------------------
// 6. Readers next to the writer

#[test]
fn readers_never_block_the_writer_nor_get_busy() {
    let s = Scratch::new();
    let file = s.path("busy.jsonl");
    append_lines(&mut File::create(&file).expect("create"), 7, 0..500);
    let src = format!("jsonl:{}", file.display());
    let mut p = Proc::spawn(
        &s,
        &["ingest", "--poll-interval-ms", "50", "--source", &src],
        Stdio::null(),
    );
    wait_count(&s, &mut p, 500);

    // A producer appending steadily until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = Arc::clone(&stop);
        let file = file.clone();
        std::thread::spawn(move || {
            let mut w = OpenOptions::new().append(true).open(&file).expect("open");
            let mut n = 500;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
                append_lines(&mut w, 7, n..n + 100);
                n += 100;
                std::thread::sleep(Duration::from_millis(25));
            }
            n
        })
    };

    // `events --count` over and over: each exits 0 with nothing on stderr, promptly.
    let reader_count = |last: u64| -> u64 {
        let t = Instant::now();
        let out = s.run(&["events", "--count", "--limit", "0"]);
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "reader failed: {err}");
        assert!(err.is_empty(), "reader complained: {err}");
        assert!(
            took < Duration::from_secs(5),
            "a reader took {took:?}: was it blocked?"
        );
        let n: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a count");
        assert!(n >= last, "count went back from {last} to {n}");
        n
    };
    let mut last = 500;
    for _ in 0..8 {
        last = reader_count(last);
        std::thread::sleep(Duration::from_millis(50));
    }

    // A read transaction held open for over a second (no busy timeout: any lock conflict would
    // be an immediate SQLITE_BUSY): its snapshot stays put while the ingest keeps committing.
    let r = s.store();
    r.busy_timeout(Duration::ZERO).expect("busy timeout");
    r.execute_batch("BEGIN").expect("BEGIN");
    let count_sql = "SELECT count(*) FROM events";
    let c0: i64 = r.query_row(count_sql, [], |x| x.get(0)).expect("read");
    let held = Instant::now();
    let mut grew_to = None;
    while held.elapsed() < Duration::from_millis(1200) || grew_to.is_none() {
        assert!(
            held.elapsed() < APPEAR,
            "ingest made no progress while a reader held a transaction; stderr:\n{}",
            p.stderr_text()
        );
        assert!(p.status().is_none(), "ingest died: {}", p.stderr_text());
        last = reader_count(last);
        if last > c0 as u64 {
            grew_to = Some(last);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let c1: i64 = r
        .query_row(count_sql, [], |x| x.get(0))
        .expect("read again");
    assert_eq!(c0, c1, "a read transaction's snapshot moved");
    r.execute_batch("COMMIT").expect("COMMIT");
    drop(r);

    stop.store(true, Ordering::Relaxed);
    let total = producer.join().expect("producer");
    wait_count(&s, &mut p, total);
    p.stop_ok();
    assert_eq!(s.count(&[]), total);
    assert_no_duplicates(&s);
}
