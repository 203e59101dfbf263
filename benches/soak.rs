//! The soak: `syncscope demo --rate RATE` with its UI in a pseudo-terminal for MINUTES,
//! sampled every interval: resident memory, WAL and store size, open file descriptors, the
//! events and strings the store holds, the ingest rate, and key latency (a key until the
//! screen shows the pane it asked for). Fails (exit 1) when they do not stay flat.
//!
//! `cargo bench --bench soak -- [MINUTES] [RATE] [every=SECS] [retention=SPAN]`
//! (defaults: 2 minutes, 20,000 events/s, a sample every 10 s under 10 minutes and every
//! 60 s from 10 on, a retention of a third of the run capped at 10m).
//!
//! Flat means, comparing the last sample with the first one after the warm-up (the
//! retention plus two retention runs, when the store is full): RSS grew at most 20% + 16 MiB;
//! open fds at most 4 more; the store file (with its WAL) at most 30% + 16 MiB larger; the
//! WAL file (it keeps its high-water size) likewise at every sample; the events held at most what the retention allows
//! (rate x (retention + one retention interval) x 1.25); key latency median at most
//! max(2 x the first, 60 ms); and the ingest rate at least half the first. The store must
//! also not hold more strings at the end than 1.5 x after the warm-up.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

#[path = "../tests/common/pty.rs"]
#[allow(dead_code)]
mod pty;
use pty::Pty;

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_syncscope"))
}

struct Sample {
    at: Duration,
    rss_mib: f64,
    wal_mib: f64,
    store_mib: f64,
    fds: usize,
    events: i64,
    strings: i64,
    rate: f64,
    key_med_ms: f64,
    key_max_ms: f64,
}

fn rss_mib(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn mib(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0
}

/// Events and strings the store holds, and the highest event id (read-only, as any reader).
fn store_counts(db: &Path) -> (i64, i64, i64) {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return (0, 0, 0);
    };
    let _ = c.busy_timeout(Duration::from_secs(5));
    let q = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap_or(0);
    (
        q("SELECT coalesce(sum(n), 0) FROM event_counts"),
        q("SELECT count(*) FROM strings"),
        q("SELECT coalesce(max(id), 0) FROM events"),
    )
}

/// Key presses switching panes; how long each took until the screen showed the pane.
fn key_latency(ui: &mut Pty, n: usize) -> (f64, f64) {
    let mut l = Vec::new();
    for i in 0..n {
        let (key, want) = if i % 2 == 0 {
            ("4", "Timeline")
        } else {
            ("3", "Relays")
        };
        let t = Instant::now();
        ui.send(key);
        ui.wait_until(20, want, |s| {
            s.lines().nth(1).is_some_and(|l| l.starts_with(want))
        });
        l.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    let (med, max) = support::median_max(&mut l);
    (support::ms(med), support::ms(max))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let nums: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let named = |k: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let minutes = nums.first().copied().unwrap_or(2).max(1);
    let rate = nums.get(1).copied().unwrap_or(20_000);
    let every = named("every")
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(if minutes >= 10 {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(10)
        });
    let retention_secs = match named("retention") {
        Some(s) => syncscope::store::retention::parse_span(&s).expect("retention=SPAN"),
        None => (minutes * 60 / 3).clamp(30, 600),
    };
    // The writer prunes every tenth of the retention (at most every 5 s).
    let prune_every = (retention_secs / 10).max(5);
    let warm = Duration::from_secs(retention_secs + 2 * prune_every + 5);
    let total = Duration::from_secs(minutes * 60);
    assert!(
        warm + every * 2 <= total,
        "a {minutes}-minute soak is too short for a {retention_secs} s retention (warm-up {warm:?})"
    );
    let home = tempfile::tempdir().expect("home");
    let db = home.path().join("soak.db");
    let wal = home.path().join("soak.db-wal");
    println!(
        "soak: demo --rate {rate} --retention {retention_secs}s for {minutes} min, a sample every {} s (warm-up {} s); {} cores, load before: {}",
        every.as_secs(),
        warm.as_secs(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let mut ui = Pty::spawn(
        &[
            "--db",
            db.to_str().expect("utf-8 path"),
            "demo",
            "--rate",
            &rate.to_string(),
            "--retention",
            &format!("{retention_secs}s"),
        ],
        160,
        45,
        &[],
        home.path(),
    );
    ui.wait_for("Spacedrive", 60);
    let pid = ui.pid();
    let start = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let (mut last_id, mut last_at) = (store_counts(&db).2, Instant::now());
    println!(
        "\n{:>6} {:>9} {:>9} {:>10} {:>5} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "min",
        "RSS MiB",
        "WAL MiB",
        "store MiB",
        "fds",
        "events",
        "strings",
        "ev/s",
        "key med",
        "key max"
    );
    loop {
        let next = every * (samples.len() as u32 + 1);
        if next > total {
            break;
        }
        while start.elapsed() < next {
            std::thread::sleep(Duration::from_millis(200));
        }
        let (key_med_ms, key_max_ms) = key_latency(&mut ui, 10);
        let (events, strings, max_id) = store_counts(&db);
        let now = Instant::now();
        let rate_now = (max_id - last_id) as f64 / now.duration_since(last_at).as_secs_f64();
        (last_id, last_at) = (max_id, now);
        let s = Sample {
            at: start.elapsed(),
            rss_mib: rss_mib(pid),
            wal_mib: mib(&wal),
            store_mib: mib(&db) + mib(&wal),
            fds: fds(pid),
            events,
            strings,
            rate: rate_now,
            key_med_ms,
            key_max_ms,
        };
        println!(
            "{:>6.1} {:>9.1} {:>9.1} {:>10.1} {:>5} {:>11} {:>9} {:>9.0} {:>7.1}ms {:>7.1}ms{}",
            s.at.as_secs_f64() / 60.0,
            s.rss_mib,
            s.wal_mib,
            s.store_mib,
            s.fds,
            s.events,
            s.strings,
            s.rate,
            s.key_med_ms,
            s.key_max_ms,
            if s.at < warm { "  (warm-up)" } else { "" }
        );
        samples.push(s);
    }
    ui.send("q");
    let code = ui.wait_exit(60);
    println!(
        "load after: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut failures = Vec::new();
    if code != 0 {
        failures.push(format!("the demo exited with {code}"));
    }
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= warm).collect();
    let (Some(first), Some(last)) = (after.first(), after.last()) else {
        println!("FAILED: no sample after the warm-up");
        std::process::exit(1);
    };
    let bound_events = (rate * (retention_secs + prune_every)) as f64 * 1.25;
    let checks: [(&str, bool, String); 8] = [
        (
            "RSS",
            last.rss_mib <= first.rss_mib * 1.2 + 16.0,
            format!("{:.1} -> {:.1} MiB", first.rss_mib, last.rss_mib),
        ),
        (
            "open fds",
            last.fds <= first.fds + 4,
            format!("{} -> {}", first.fds, last.fds),
        ),
        (
            "store size",
            last.store_mib <= first.store_mib * 1.3 + 16.0,
            format!("{:.1} -> {:.1} MiB", first.store_mib, last.store_mib),
        ),
        (
            // The WAL file keeps its high-water size (the checkpointer starts it over, SQLite
            // does not shrink it): flat means it stopped growing.
            "WAL size",
            after
                .iter()
                .all(|s| s.wal_mib <= first.wal_mib * 1.3 + 16.0),
            format!(
                "{:.1} -> max {:.1} MiB",
                first.wal_mib,
                after.iter().map(|s| s.wal_mib).fold(0.0, f64::max)
            ),
        ),
        (
            "events held (retention)",
            after.iter().all(|s| s.events as f64 <= bound_events),
            format!(
                "max {} (bound {bound_events:.0})",
                after.iter().map(|s| s.events).max().unwrap_or(0)
            ),
        ),
        (
            "strings held",
            last.strings as f64 <= first.strings as f64 * 1.5,
            format!("{} -> {}", first.strings, last.strings),
        ),
        (
            "key latency",
            last.key_med_ms <= (first.key_med_ms * 2.0).max(60.0),
            format!(
                "median {:.1} -> {:.1} ms",
                first.key_med_ms, last.key_med_ms
            ),
        ),
        (
            "ingest rate",
            last.rate >= first.rate * 0.5,
            format!("{:.0} -> {:.0} ev/s", first.rate, last.rate),
        ),
    ];
    println!("\nflat after the warm-up (first sample after it -> last):");
    for (name, ok, what) in &checks {
        println!(
            "  {name:<24} {what:<40} {}",
            if *ok { "ok" } else { "NOT FLAT" }
        );
        if !ok {
            failures.push(format!("{name}: {what}"));
        }
    }
    if failures.is_empty() {
        println!("soak: flat");
    } else {
        println!("soak FAILED: {}", failures.join("; "));
        std::process::exit(1);
    }
}
