//! The real binary in a real pseudo-terminal: keys in, screen out.

mod common;

use common::pty::Pty;
use common::{fixture, Scratch};

const EVIL: &str = r#"{"timestamp":"2026-11-26T10:00:00Z","device_id":"dev-1","event_type":"sync_error","severity":"error","summary":"evil \u001b]0;pwned\u0007 \u001b[2J\u001b[31mRED \u202eTXET end","correlation_id":"evil-session-1","details":{"k":"\u001b[1mbold"}}"#;

/// A store with the Gerrit and Spacedrive samples and one hostile event.
fn sample_store() -> Scratch {
    let s = Scratch::new();
    let evil = s.path("evil.jsonl");
    std::fs::write(&evil, format!("{EVIL}\n")).unwrap();
    let mut sources = common::sample_sources(&s);
    sources.push(format!(
        "gerrit-events:{}",
        fixture("gerrit/mixed_stream_events.jsonl").display()
    ));
    sources.push(format!("jsonl:{}", evil.display()));
    let out = s.ingest_once(&sources);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

fn open(s: &Scratch, cols: u16, rows: u16, env: &[(&str, &str)]) -> Pty {
    let db = s.db();
    Pty::spawn(
        &["--db", db.to_str().unwrap(), "--no-ingest"],
        cols,
        rows,
        env,
        s.dir.path(),
    )
}

#[test]
fn filter_then_enter_then_c_reaches_the_session_and_q_restores_the_terminal() {
    let s = sample_store();
    let mut t = open(&s, 100, 30, &[]);
    t.wait_for("newest errors", 10);
    t.send("4");
    t.wait_for("Timeline: every event", 15);
    t.send("/");
    t.type_slowly("Backfill completed: 72");
    // Live as you type: the list narrows before Enter.
    t.wait_until(5, "only matching rows", |screen| {
        screen.contains("Backfill completed: 72,500") && !screen.contains("batch_ingestion")
    });
    t.send("\r");
    t.send("\r");
    t.wait_for("Event ", 15);
    t.wait_for("correlation  34ecf2ed", 15);
    t.send("c");
    t.wait_for("Session 34ecf2ed-e4cd-6075-2055-2f5f4b2220a4", 15);
    // Found 2: the header counted the records twice (the batches and the completion's total).
    t.wait_for("72500 records", 15);
    assert!(!t.screen().contains("145000 records"));
    // The STEP column is cut (with an ellipsis) below 120 columns.
    t.wait_for("backfill_session_st", 15);
    // Esc goes back through the views; q quits from a top-level pane only.
    t.send("\x1b");
    t.wait_for("Event ", 15);
    t.send("q");
    t.wait_for("Esc goes back", 15);
    t.send("\x1b");
    t.wait_for("Timeline: every event", 15);
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
    assert!(
        t.left_alternate_screen(),
        "the alternate screen was not left"
    );
    assert!(t.is_cooked(), "raw mode was not undone");
}

#[test]
fn no_color_shows_severity_without_colours() {
    let s = sample_store();
    let mut t = open(&s, 100, 30, &[("NO_COLOR", "1")]);
    t.wait_for("newest errors", 10);
    t.send("4");
    t.wait_for("✖ ERROR", 15);
    t.wait_for("▲ WARN", 15);
    let (coloured, bold_error) = t.with_screen(|scr| {
        let (rows, cols) = scr.size();
        let mut coloured = 0;
        let mut bold_error = false;
        for r in 0..rows.get() {
            for c in 0..cols.get() {
                if let Some(cell) = scr.cell(r, c) {
                    if cell.fgcolor() != vt100::Color::Default
                        || cell.bgcolor() != vt100::Color::Default
                    {
                        coloured += 1;
                    }
                    if cell.contents() == "✖" && cell.bold() {
                        bold_error = true;
                    }
                }
            }
        }
        (coloured, bold_error)
    });
    assert_eq!(coloured, 0, "NO_COLOR must not paint any cell");
    assert!(
        bold_error,
        "errors are shown by weight when there is no colour"
    );
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
}

#[test]
fn a_hostile_event_cannot_inject_escape_sequences() {
    let s = sample_store();
    let mut t = open(&s, 120, 30, &[]);
    t.wait_for("newest errors", 10);
    t.send("4");
    t.wait_for("evil", 15);
    // Its text is shown, defused: control pictures instead of controls, no bidi override.
    t.wait_for("␛]0;pwned␇", 15);
    t.send("/");
    t.type_slowly("evil");
    t.send("\r\r");
    t.wait_for("correlation  evil-session-1", 15);
    let raw = t.raw();
    for bad in [
        &b"\x1b]0;pwned"[..],
        b"\x1b[2J",
        b"\x1b[31mRED",
        "\u{202e}".as_bytes(),
        b"\x1b[1mbold",
    ] {
        assert!(
            !raw.windows(bad.len()).any(|w| w == bad),
            "{:?} reached the terminal",
            String::from_utf8_lossy(bad)
        );
    }
    t.send("\x1b");
    t.wait_for("Timeline: every event", 15);
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
}

#[test]
fn sigterm_and_sighup_restore_the_terminal() {
    let s = sample_store();
    for sig in [libc::SIGTERM, libc::SIGHUP] {
        let mut t = open(&s, 100, 30, &[]);
        t.wait_for("newest errors", 10);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(t.pid(), sig) };
        t.wait_exit(10);
        assert!(
            t.left_alternate_screen(),
            "signal {sig}: alternate screen not left"
        );
        assert!(t.is_cooked(), "signal {sig}: raw mode not undone");
    }
}

#[test]
fn a_small_terminal_gets_a_message_and_resizing_brings_the_layout_back() {
    let s = sample_store();
    let mut t = open(&s, 50, 10, &[]);
    t.wait_for("terminal too small: 50×10, need 60×15", 10);
    t.resize(100, 30);
    t.wait_for("newest errors", 10);
    t.resize(70, 12);
    t.wait_for("terminal too small: 70×12", 10);
    t.resize(80, 24);
    t.wait_for("Overview", 10);
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
}

#[test]
fn replication_drills_from_remote_to_refs_to_history() {
    let s = sample_store();
    let mut t = open(&s, 120, 30, &[]);
    t.wait_for("newest errors", 10);
    t.send("2");
    t.wait_for("Replication:", 15);
    t.wait_for("mirror-eu", 15);
    t.send("\r");
    t.wait_for("worst first", 15);
    t.wait_for("refs/heads/master", 15);
    t.send("j");
    t.send("\r");
    t.wait_for("platform/core › refs/heads/master", 15);
    t.wait_for("ref-replicated", 15);
    t.send("\x1b");
    t.wait_for("worst first", 15);
    t.send("\x1b");
    t.wait_for("Replication:", 15);
    t.send("?");
    t.wait_for("This pane", 15);
    t.send("\x1b");
    t.wait_until(5, "help closed", |s| !s.contains("This pane"));
    t.send("\x03");
    assert_eq!(t.wait_exit(10), 0);
    assert!(t.is_cooked());
}

#[test]
fn demo_shows_every_pane_with_live_data_and_cleans_up() {
    let s = Scratch::new();
    let tmp = s.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut t = Pty::spawn(
        &["demo", "--rate", "500", "--seed", "3"],
        120,
        32,
        &[("TMPDIR", tmp.to_str().unwrap())],
        s.dir.path(),
    );
    t.wait_for("Overview", 20);
    t.wait_until(30, "the overview filled from every system", |screen| {
        screen.contains("Gerrit") && screen.contains("ngit") && screen.contains("Spacedrive")
    });
    t.send("2");
    t.wait_for("Replication:", 10);
    t.wait_for("mirror-eu", 20);
    t.send("3");
    t.wait_for("Relays:", 10);
    t.wait_for("relay.flaky.example", 20);
    t.send("4");
    t.wait_for("Timeline: every event", 10);
    t.wait_for("gerrit", 10);
    // From an error with a session id to the session's steps.
    t.send("e");
    t.wait_for("✖ ERROR", 30);
    t.send("/");
    t.type_slowly("Buffer overflow");
    t.send("\r");
    t.wait_for("Buffer overflow", 10);
    // The filtered list may still be re-reading under load (the demo's GitLab history is
    // being ingested): c before its rows are back selects nothing, so try again.
    for _ in 0..20 {
        t.send("c");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < until && !t.screen().contains("backfill_session_started")
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if t.screen().contains("backfill_session_started") {
            break;
        }
    }
    t.wait_for("Session ", 10);
    t.wait_for("backfill_session_started", 10);
    t.send("5");
    t.wait_for("Session ", 10);
    // Last night's CI failures, grouped by pattern, and a job's log excerpt (the text filter
    // of the timeline would narrow the patterns too: clear it first).
    t.send(":");
    t.type_slowly("clear");
    t.send("\r");
    t.send("6");
    t.wait_for("CI night ", 30);
    t.wait_for("Julia: test failed", 30);
    t.wait_for("last 14 nights per project", 10);
    t.send("\r");
    t.wait_for("failed jobs", 10);
    t.send("\r");
    // Finding 12: the log opens at its end, where the job failed, and scrolls back to the top.
    t.wait_for("Cleaning up project directory", 10);
    t.send("g");
    t.wait_for("excerpt", 10);
    t.send("\x1b");
    t.wait_for("failed jobs", 10);
    t.send("\x1b");
    t.wait_for("CI night ", 10);
    t.send("p");
    t.wait_for("PAUSED", 15);
    t.send("p");
    t.wait_until(5, "live again", |s| !s.contains("PAUSED"));
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
    assert!(t.left_alternate_screen());
    assert!(t.is_cooked());
    // The temporary store and the simulated systems' files are gone.
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_panic_restores_the_terminal_and_prints_the_report_after() {
    let s = sample_store();
    let mut t = open(&s, 100, 30, &[("SYNCSCOPE_TEST_PANIC", "1")]);
    let code = t.wait_exit(20);
    assert_ne!(code, 0);
    assert!(
        t.left_alternate_screen(),
        "alternate screen not left after a panic"
    );
    assert!(t.is_cooked(), "raw mode not undone after a panic");
    // The report is printed on the restored screen, after leaving the alternate one.
    let raw = String::from_utf8_lossy(&t.raw()).into_owned();
    let left = raw.rfind("\x1b[?1049l").expect("left");
    assert!(
        raw[left..].contains("on purpose"),
        "no panic report after restore"
    );
}

/// The demo at 80×24 with a fresh temporary directory.
fn demo_80x24(s: &Scratch) -> Pty {
    let tmp = s.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    Pty::spawn(
        &["demo", "--rate", "500", "--seed", "1"],
        80,
        24,
        &[("TMPDIR", tmp.to_str().unwrap()), ("NO_COLOR", "1")],
        s.dir.path(),
    )
}

#[test]
fn the_overview_names_the_failing_mirror_and_its_error_at_80x24() {
    let s = Scratch::new();
    let mut t = demo_80x24(&s);
    // Found 1: the first screen said "all 17 remotes OK" while mirror-eu refused pushes.
    t.wait_until(
        10,
        "mirror-eu and its error named on the Overview",
        |screen| {
            screen.contains("Overview: ")
                && screen.contains("mirror-eu/")
                && screen.contains("Connection refused")
        },
    );
    assert!(!t.screen().contains("All OK"));
    // Enter on a Gerrit line opens what it names; Esc comes back to the Overview. The
    // first state line (row 2) is selected at start.
    let screen = t.screen();
    let Some(row) = screen
        .lines()
        .position(|l| l.starts_with("Gerrit ") && l.contains("mirror-eu/"))
    else {
        panic!("no Gerrit line:\n{screen}")
    };
    for _ in 2..row {
        t.send("j");
    }
    t.send("\r");
    t.wait_for("Replication › mirror-eu/", 10);
    t.wait_for("refs/", 10);
    t.send("\x1b");
    t.wait_for("Overview: ", 10);
    t.send("q");
    assert_eq!(t.wait_exit(20), 0);
}

#[test]
fn the_refs_list_shows_ref_names_and_errors_at_80x24() {
    let s = sample_store();
    let mut t = open(&s, 80, 24, &[]);
    t.wait_for("Overview", 10);
    t.send("2");
    t.wait_for("mirror-eu", 15);
    t.send("\r");
    t.wait_for("worst first", 15);
    // Found 2: identical rows without the ref or the error at 80 columns.
    t.wait_for("REF", 15);
    t.wait_for("refs/heads/master", 15);
    t.wait_for("LAST ERROR", 15);
    t.send("\x1b");
    t.wait_for("Replication:", 15);
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
}

#[test]
fn an_unwritten_store_is_stale_not_live() {
    let s = sample_store();
    let mut t = open(&s, 80, 24, &[]);
    t.wait_for("Overview", 10);
    // Found 3: --no-ingest on a store nobody writes said LIVE.
    t.wait_for("STALE · newest", 10);
    assert!(!t.screen().contains(" LIVE "), "{}", t.screen());
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
}

#[test]
fn help_scrolls_to_its_last_key_at_80x24() {
    let s = sample_store();
    let mut t = open(&s, 80, 24, &[]);
    t.wait_for("Overview", 10);
    t.send("?");
    t.wait_for("This pane", 15);
    // Found 6: help was cut at 80×24 (19 of 32 keys) and any key closed it.
    assert!(!t.screen().contains("quit from anywhere"));
    t.send("x");
    t.wait_for("This pane", 2);
    t.send("G");
    t.wait_for("quit from anywhere", 15);
    t.send("\x1b");
    t.wait_until(5, "help closed", |s| !s.contains("quit from anywhere"));
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
}

#[test]
fn the_too_small_message_is_whole_at_30x8() {
    let s = sample_store();
    let mut t = open(&s, 30, 8, &[]);
    t.wait_until(10, "the whole message", |screen| {
        let flat: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
        flat.contains("terminal too small: 30×8, need 60×15")
    });
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
}

/// The rows of the table under the header line that starts with `header`.
fn rows_under(screen: &str, header: &str) -> Vec<String> {
    screen
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(header))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// The sample store plus three more Gerrit remotes (one of them failing).
fn store_with_remotes() -> Scratch {
    let s = sample_store();
    let extra = s.path("remotes.jsonl");
    let line = |host: &str, status: &str, t: u32| {
        format!(
            r#"{{"type":"ref-replicated","project":"x/{host}","ref":"refs/heads/main","targetNode":"{host}:29418","targetUri":"ssh://r@{host}.example.org:29418/x/{host}.git","status":"{status}","refStatus":"OK","eventCreatedOn":{t}}}"#
        )
    };
    let text = [
        line("charlie", "succeeded", 1_700_000_001),
        line("alpha", "failed", 1_700_000_002),
        line("bravo", "succeeded", 1_700_000_003),
    ]
    .join("\n");
    std::fs::write(&extra, format!("{text}\n")).unwrap();
    let out = s.ingest_once(&[format!("gerrit-events:{}", extra.display())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

#[test]
fn sort_find_and_write_at_80x24() {
    let s = store_with_remotes();
    let mut t = open(&s, 80, 24, &[]);
    t.wait_for("Overview", 10);

    // Sort: Shift + the column's letter, again to reverse; the header marks it.
    t.send("2");
    t.wait_for("Replication:", 15);
    t.wait_for("STATUS", 15);
    t.send("R");
    t.wait_for("REMOTE▲", 15);
    let remote = |l: &String| l.split_whitespace().nth(1).unwrap_or("").to_string();
    let up: Vec<String> = rows_under(&t.screen(), "STATUS")
        .iter()
        .map(remote)
        .collect();
    assert!(up.len() >= 2, "too few remotes to see a sort: {up:?}");
    let mut sorted = up.clone();
    sorted.sort();
    assert_eq!(up, sorted, "not sorted by remote");
    t.send("R");
    t.wait_for("REMOTE▼", 15);
    let down: Vec<String> = rows_under(&t.screen(), "STATUS")
        .iter()
        .map(remote)
        .collect();
    let mut reversed = up.clone();
    reversed.reverse();
    assert_eq!(down, reversed, "the second press did not reverse");

    // :w writes exactly the rows shown, in their order.
    let out = s.path("remotes.csv");
    t.send(":");
    t.type_slowly(&format!("w {}", out.display()));
    t.send("\r");
    t.wait_for("wrote ", 15);
    let csv = std::fs::read_to_string(&out).expect("the :w file");
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("status,remote,"), "{csv}");
    let written: Vec<String> = lines
        .map(|l| {
            let short = l.split(',').nth(1).unwrap_or("");
            short.to_string()
        })
        .collect();
    assert_eq!(written.len(), down.len(), "{csv}");
    for (w, shown) in written.iter().zip(&down) {
        let shown = shown.trim_end_matches('…');
        assert!(
            w.contains(shown.split('/').next().unwrap_or(shown)),
            "{w} vs {shown}"
        );
    }

    // Find: matches in any column (here TYPE) are highlighted and jumped to; nothing hidden.
    t.send("4");
    t.wait_for("Timeline: every event", 15);
    t.wait_until(5, "the timeline filled", |screen| {
        rows_under(screen, "TIME").len() >= 15
    });
    let before = rows_under(&t.screen(), "TIME").len();
    t.send("f");
    t.type_slowly("state_transition");
    t.send("\r");
    t.wait_for("find: \"state_transition\"", 15);
    t.wait_until(5, "the find field closed", |screen| {
        !screen.lines().any(|l| l.starts_with("find: "))
    });
    let screen = t.screen();
    assert!(rows_under(&screen, "TIME").len() >= before, "find hid rows");
    assert!(screen.contains("batch_ingestion"), "find hid rows");
    // The selection (reversed) is on a matching row.
    let selected_matches = t.with_screen(|scr| {
        (2..22).any(|r| {
            scr.cell(r, 30).is_some_and(|c| c.inverse())
                && scr
                    .contents_between(r, 0, r, 80)
                    .contains("state_transition")
        })
    });
    assert!(
        selected_matches,
        "the selection is not on a match:\n{screen}"
    );
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
}

#[test]
fn a_16_colour_terminal_gets_no_256_colour_codes() {
    let s = sample_store();
    // Found 11: 256-colour codes were sent with TERM=screen.
    let mut t = open(&s, 80, 24, &[("TERM", "screen")]);
    t.wait_for("newest errors", 10);
    t.send("4");
    t.wait_for("✖ ERROR", 15);
    let raw = String::from_utf8_lossy(&t.raw()).into_owned();
    assert!(
        !raw.contains("38;5;") && !raw.contains("48;5;"),
        "256-colour codes sent"
    );
    let sgr: Vec<&str> = raw
        .split("\x1b[")
        .filter(|p| p.contains('m'))
        .map(|p| &p[..p.find('m').unwrap_or(0) + 1])
        .filter(|p| p.len() < 12)
        .collect();
    // Errors are red (31), in the classic code.
    assert!(
        sgr.iter()
            .any(|p| p.starts_with("31;") || p.starts_with("31m")),
        "no colour at all: {sgr:?}"
    );
    t.send("q");
    assert_eq!(t.wait_exit(10), 0);
    // A terminal that announces 256 colours still gets them.
    let mut rich = open(&s, 80, 24, &[]);
    rich.wait_for("newest errors", 10);
    assert!(String::from_utf8_lossy(&rich.raw()).contains("38;5;"));
    rich.send("q");
    assert_eq!(rich.wait_exit(10), 0);
}
