//! The store under what nobody plans for (issue 16): two writers, a store of a newer or older
//! syncscope, a truncated or overwritten file, and the file modes a store is created with.
//! Every test runs the real binary; every child is killed when the test ends.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::pty::Pty;
use common::Scratch;
use syncscope::store::schema::LATEST_VERSION;

/// A child killed (SIGKILL) and reaped when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn line(i: u64) -> String {
    format!(
        r#"{{"timestamp":"2025-12-01T{:02}:{:02}:{:02}Z","device_id":"dev-{}","event_type":"sync_started","category":"lifecycle","severity":"info","summary":"reliability event {i}"}}"#,
        i / 3600 % 24,
        i / 60 % 60,
        i % 60,
        i % 3
    )
}

fn write_events(path: &Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in from..to {
        writeln!(f, "{}", line(i)).unwrap();
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn wait_count(s: &Scratch, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.count(&[]) != want {
        assert!(
            Instant::now() < deadline,
            "the store never held {want} events"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A store of `n` events, written by `ingest --once` (so checkpointed into the file).
fn store_with(n: u64) -> (Scratch, String) {
    let s = Scratch::new();
    let input = s.path("events.jsonl");
    write_events(&input, 0, n);
    let src = format!("jsonl:{}", input.display());
    let out = s.ingest_once(std::slice::from_ref(&src));
    assert!(out.status.success(), "{}", stderr(&out));
    (s, src)
}

fn config_with_source(s: &Scratch, src: &str) -> PathBuf {
    let cfg = s.path("syncscope.toml");
    std::fs::write(&cfg, format!("sources = [{src:?}]\n")).unwrap();
    cfg
}

fn tui(s: &Scratch, extra: &[&str]) -> Pty {
    let db = s.db();
    let mut args = vec!["--db", db.to_str().unwrap()];
    args.extend_from_slice(extra);
    Pty::spawn(&args, 100, 30, &[("NO_COLOR", "1")], s.dir.path())
}

fn raw_text(p: &Pty) -> String {
    String::from_utf8_lossy(&p.raw()).into_owned()
}

/// Everything the program wrote, once it holds `text` (the output of a program that has
/// exited may still be on its way through the PTY); what there is after 10 s otherwise.
fn raw_with(p: &Pty, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let raw = raw_text(p);
        if raw.contains(text) || Instant::now() > deadline {
            return raw;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------------------------
// One writer per store

#[test]
fn a_second_writer_is_refused_at_once_naming_the_first_and_readers_are_not() {
    let s = Scratch::new();
    let input = s.path("events.jsonl");
    write_events(&input, 0, 100);
    let src = format!("jsonl:{}", input.display());
    let first = Killed(
        s.cmd()
            .args(["ingest", "-q", "--poll-interval-ms", "50", "--source", &src])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_count(&s, 100);

    // A second ingest: refused at once, naming the first by pid and command line.
    let started = Instant::now();
    let out = s.ingest_once(std::slice::from_ref(&src));
    let took = started.elapsed();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
    assert!(err.contains("being written by another process"), "{err}");
    assert!(err.contains(&format!("pid {}", first.0.id())), "{err}");
    assert!(err.contains("ingest -q --poll-interval-ms 50"), "{err}");
    assert!(err.contains("since 20"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // The UI with sources is a writer too: refused before it takes the screen.
    let cfg = config_with_source(&s, &src);
    let mut ui = tui(&s, &["--config", cfg.to_str().unwrap()]);
    let code = ui.wait_exit(20);
    let shown = raw_with(&ui, "being written by another process");
    assert_eq!(code, 2, "{shown}");
    assert!(
        shown.contains("being written by another process"),
        "{shown}"
    );

    // Readers are never refused.
    assert_eq!(s.count(&[]), 100);
    for args in [&["sources"][..], &["status"], &["rejects"], &["check"]] {
        let out = s.run(args);
        assert!(
            matches!(out.status.code(), Some(0) | Some(1)),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    // serve too: its /metrics answers beside the writer.
    let port = common::free_port();
    let _serve = Killed(
        s.cmd()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        use std::io::Read;
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut text = String::new();
            let _ = c.read_to_string(&mut text);
            break text;
        }
        assert!(Instant::now() < deadline, "serve never listened");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut ro = tui(&s, &["--no-ingest"]);
    ro.wait_for("Overview", 20);
    ro.send("q");
    assert_eq!(ro.wait_exit(10), 0);

    // The store syncscope created is owner-only, and its WAL and shared memory too.
    #[cfg(unix)]
    {
        let wal = PathBuf::from(format!("{}-wal", s.db().display()));
        let shm = PathBuf::from(format!("{}-shm", s.db().display()));
        assert_eq!(mode(&s.db()), 0o600);
        assert_eq!((mode(&wal), mode(&shm)), (0o600, 0o600));
        assert_eq!(
            mode(&PathBuf::from(format!("{}.lock", s.db().display()))),
            0o600
        );
    }

    // kill -9 releases the lock: the next writer goes on where the first stopped.
    drop(first);
    write_events(&input, 100, 150);
    let out = s.ingest_once(std::slice::from_ref(&src));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.count(&[]), 150);
}

#[test]
fn a_lock_file_left_by_a_dead_process_does_not_block() {
    let (s, src) = store_with(10);
    let lock = PathBuf::from(format!("{}.lock", s.db().display()));
    std::fs::write(
        &lock,
        "pid=999999\nsince=2020-01-01 00:00:00 UTC\ncmd=syncscope ingest\n",
    )
    .unwrap();
    let out = s.ingest_once(std::slice::from_ref(&src));
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(
        !text.contains("999999"),
        "the new writer says who it is: {text}"
    );
}

#[cfg(unix)]
#[test]
fn a_store_and_the_folders_syncscope_creates_are_owner_only() {
    let s = Scratch::new();
    let input = s.path("events.jsonl");
    write_events(&input, 0, 5);
    let db = s.path("made/by/syncscope/store.db");
    let out = Command::new(common::bin())
        .args(["--db", db.to_str().unwrap(), "ingest", "--once", "-q"])
        .arg("--source")
        .arg(format!("jsonl:{}", input.display()))
        .env("XDG_CONFIG_HOME", s.path("xdg"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&db), 0o600);
    for d in ["made", "made/by", "made/by/syncscope"] {
        assert_eq!(mode(&s.path(d)), 0o700, "{d}");
    }
}

// ---------------------------------------------------------------------------------------------
// A store of another syncscope

fn set_version(db: &Path, v: i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.pragma_update(None, "user_version", v).unwrap();
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
}

#[test]
fn a_store_of_a_newer_syncscope_is_refused_by_every_command_and_left_untouched() {
    let (s, src) = store_with(20);
    let newer = LATEST_VERSION + 3;
    set_version(&s.db(), newer);
    let before = std::fs::read(s.db()).unwrap();
    let cfg = config_with_source(&s, &src);
    let want = |text: &str, what: &str| {
        for needle in [
            format!("schema version {newer}"),
            "written by a newer syncscope".to_string(),
            format!("knows up to {LATEST_VERSION}"),
        ] {
            assert!(text.contains(&needle), "{what}: {needle:?} missing: {text}");
        }
    };
    let commands: Vec<Vec<String>> = vec![
        vec![
            "ingest".into(),
            "--once".into(),
            "--source".into(),
            src.clone(),
        ],
        vec!["events".into()],
        vec!["events".into(), "--count".into()],
        vec!["status".into()],
        vec!["sources".into()],
        vec!["relays".into()],
        vec!["failures".into()],
        vec!["rejects".into()],
        vec!["check".into()],
        vec![
            "check".into(),
            "--recover".into(),
            s.path("new.db").display().to_string(),
        ],
    ];
    for args in &commands {
        let out = s.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        want(&stderr(&out), &format!("{args:?}"));
    }
    assert!(!s.path("new.db").exists());
    for extra in [&["--no-ingest"][..], &["--config", cfg.to_str().unwrap()]] {
        let mut ui = tui(&s, extra);
        assert_eq!(ui.wait_exit(20), 2, "{extra:?}");
        want(
            &raw_with(&ui, "written by a newer syncscope"),
            &format!("tui {extra:?}"),
        );
    }
    assert!(
        std::fs::read(s.db()).unwrap() == before,
        "the store changed"
    );
}

/// A store made by an older syncscope (schema 5), as `schema.rs` builds one.
fn old_store(s: &Scratch) {
    let mut c = rusqlite::Connection::open(s.db()).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    syncscope::store::schema::migrate_to(&mut c, 5).unwrap();
    c.execute_batch(
        "INSERT INTO strings (id, text) VALUES (1, 'jsonl'), (2, 'sync_started'), (3, 'lifecycle');
         INSERT INTO events (id, ts, key, source, event_type, category, severity, summary)
         VALUES (1, 1764547200000000000, 42, 1, 2, 3, 1, 'an old event');
         INSERT INTO event_counts (minute, source, severity, n) VALUES (29409120, 1, 1, 1);",
    )
    .unwrap();
}

fn version_of(db: &Path) -> i64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_reader_never_upgrades_an_older_store_and_a_writer_does() {
    let s = Scratch::new();
    old_store(&s);
    for args in [&["events"][..], &["status"], &["sources"], &["failures"]] {
        let out = s.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for needle in [
            "schema version 5",
            &format!("older than this syncscope's {LATEST_VERSION}"),
            "a writer (`syncscope ingest`",
        ] {
            assert!(err.contains(needle), "{args:?}: {needle:?}: {err}");
        }
    }
    let mut ui = tui(&s, &["--no-ingest"]);
    assert_eq!(ui.wait_exit(20), 2);
    assert!(raw_with(&ui, "schema version 5").contains("schema version 5"));
    // check reads without upgrading either.
    assert_eq!(s.ok(&["check"]).trim(), "ok");
    assert_eq!(version_of(&s.db()), 5, "no reader upgraded it");

    let input = s.path("events.jsonl");
    write_events(&input, 0, 3);
    let out = s.ingest_once(&[format!("jsonl:{}", input.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(version_of(&s.db()), LATEST_VERSION);
    assert_eq!(s.count(&[]), 4, "the old event and the three new ones");
    assert_eq!(s.ok(&["check"]).trim(), "ok");
}

// ---------------------------------------------------------------------------------------------
// A damaged store

const PAGE: u64 = 16384;

#[derive(Debug, Clone, Copy)]
enum Damage {
    Truncated,
    PagesOverwritten,
    HeaderOverwritten,
}

fn damage(db: &Path, how: Damage) {
    let len = std::fs::metadata(db).unwrap().len();
    assert!(
        len > 8 * PAGE,
        "a store of {len} bytes is too small to damage"
    );
    let f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    use std::os::unix::fs::FileExt;
    match how {
        Damage::Truncated => f.set_len(len / 2).unwrap(),
        Damage::PagesOverwritten => {
            // Every third page after the first two, half of each.
            let mut p = 2;
            while (p + 1) * PAGE <= len {
                f.write_all_at(&vec![0xA5; PAGE as usize / 2], p * PAGE + 100)
                    .unwrap();
                p += 3;
            }
        }
        Damage::HeaderOverwritten => f.write_all_at(&[0x5A; 4096], 0).unwrap(),
    }
}

#[test]
fn a_damaged_store_gives_a_clear_error_naming_it_never_a_panic() {
    for how in [
        Damage::Truncated,
        Damage::PagesOverwritten,
        Damage::HeaderOverwritten,
    ] {
        let (s, src) = store_with(6000);
        damage(&s.db(), how);
        let db = s.db().display().to_string();
        // Every command that reads everything fails, with the file named, without a panic.
        for args in [
            vec!["events", "--limit", "0", "--format", "jsonl"],
            vec!["status"],
            vec!["check"],
            vec!["ingest", "--once", "--source", &src],
        ] {
            let out = s.run(&args);
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "{how:?} {args:?}: {err}");
            let code = out.status.code();
            if args[0] == "status" || args[0] == "ingest" {
                // These may not touch a damaged page; if they fail, they say where.
                assert!(matches!(code, Some(0..=2)), "{how:?} {args:?}: {code:?}");
                if code == Some(2) {
                    assert!(err.contains(&db), "{how:?} {args:?}: {err}");
                }
                continue;
            }
            if args[0] == "check" {
                assert_eq!(code, Some(1), "{how:?}: {err}");
                let said = String::from_utf8_lossy(&out.stdout).into_owned();
                assert!(said.contains("problem"), "{how:?}: {said}");
                assert!(said.contains("to recover"), "{how:?}: {said}");
                continue;
            }
            assert_eq!(code, Some(2), "{how:?} {args:?}: {err}");
            assert!(err.contains(&db), "{how:?} {args:?}: {err}");
            assert!(err.contains("damaged"), "{how:?} {args:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{how:?} {args:?}: {err}");
        }
        // The UI either says so and exits, or shows the failed query; never a panic.
        let mut ui = tui(&s, &["--no-ingest"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = ui.screen();
            if screen.contains("failed") || screen.contains("damaged") {
                ui.send("q");
                break;
            }
            if raw_text(&ui).contains(&db) && raw_text(&ui).contains("damaged") {
                break;
            }
            assert!(Instant::now() < deadline, "{how:?}: {screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let code = ui.wait_exit(20);
        assert!(code == 0 || code == 2, "{how:?}: exit {code}");
        assert!(!raw_text(&ui).contains("panicked"), "{how:?}");
    }
}

#[test]
fn check_recovers_what_is_readable_of_a_damaged_store() {
    let (s, src) = store_with(6000);
    assert_eq!(s.ok(&["check"]).trim(), "ok");
    damage(&s.db(), Damage::PagesOverwritten);
    let new = s.path("recovered.db");
    let out = s.run(&["check", "--recover", new.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("events: "), "{err}");
    // The new store is sound, holds some of the events, each once, and greps.
    let n = Scratch::new();
    std::fs::copy(&new, n.db()).unwrap();
    assert_eq!(n.ok(&["check"]).trim(), "ok");
    let events = n.events_json(&[]);
    assert!(
        !events.is_empty() && events.len() < 6000,
        "{}",
        events.len()
    );
    let mut summaries: Vec<&str> = events
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    let all = summaries.len();
    summaries.sort();
    summaries.dedup();
    assert_eq!(summaries.len(), all, "nothing twice");
    let one = summaries[0].to_string();
    assert_eq!(n.count(&["--grep", &one]), 1, "{one}");
    // Put in place, the recovered store takes the source again from its start: every event
    // of the source once, nothing twice.
    assert!(err.contains("checkpoints dropped"), "{err}");
    std::fs::copy(&new, s.db()).unwrap();
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", s.db().display()));
    }
    let out = s.ingest_once(std::slice::from_ref(&src));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.count(&[]), 6000);
    assert_eq!(s.ok(&["check"]).trim(), "ok");
    // Never over an existing file.
    let again = s.run(&["check", "--recover", new.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("exists"));
}

/// Bytes changed at random places of the header (the magic kept, so SQLite reads it) and of
/// the pages, seeded: every command ends with an answer or a clear error, never a panic.
#[test]
fn random_damage_never_panics() {
    let (base, src) = store_with(3000);
    let pristine = std::fs::read(base.db()).unwrap();
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let db = base.db().display().to_string();
    let mut failed = 0;
    for round in 0..16 {
        let mut bytes = pristine.clone();
        let flips = 1 + next() % 8;
        for _ in 0..flips {
            let at = if round % 2 == 0 {
                16 + (next() % 84) as usize
            } else {
                100 + (next() % (bytes.len() as u64 - 100)) as usize
            };
            bytes[at] = next() as u8;
        }
        std::fs::write(base.db(), &bytes).unwrap();
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{db}{ext}"));
        }
        for args in [
            vec!["events", "--limit", "0", "--format", "jsonl"],
            vec!["status"],
            vec!["check"],
            vec!["ingest", "--once", "-q", "--source", &src],
            vec!["events", "--count"],
        ] {
            let out = base.run(&args);
            let err = stderr(&out);
            assert!(
                !err.contains("panicked") && matches!(out.status.code(), Some(0..=2)),
                "round {round} {args:?}: {:?} {err}",
                out.status.code()
            );
            if out.status.code() == Some(2) {
                failed += 1;
                assert!(
                    err.contains(&db),
                    "round {round} {args:?}: the store unnamed: {err}"
                );
                assert_eq!(
                    err.trim().lines().count(),
                    1,
                    "round {round} {args:?}: {err}"
                );
            }
        }
    }
    assert!(
        failed > 0,
        "no damage was noticed: the test damages nothing"
    );
}

#[test]
fn the_demo_on_a_store_another_process_writes_is_refused_at_once() {
    let s = Scratch::new();
    let input = s.path("events.jsonl");
    write_events(&input, 0, 10);
    let src = format!("jsonl:{}", input.display());
    let _first = Killed(
        s.cmd()
            .args(["ingest", "-q", "--source", &src])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_count(&s, 10);
    let started = Instant::now();
    let out = s.run(&["demo", "--headless", "--duration", "5"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(stderr(&out).contains("being written by another process"));
}
