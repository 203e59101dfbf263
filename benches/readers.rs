//! Readers under load: an ingest at full speed (the store's one writer, batches of 5,000
//! Spacedrive-shaped events) alone, then with eight readers running the queries the TUI's
//! panes run (`load_view` of Overview, Timeline, Relays, Replication and CI) on their own
//! connections, as eight TUIs do: each pane reloads when the store changed, at most every
//! 250 ms (`busy`: back to back, as `events` loops in a shell).
//!
//! `cargo bench --bench readers -- [N] [busy]` (default 1,000,000 events per phase). Both
//! phases write N events into a fresh store, in one run. Targets (issue 16): ingest with
//! eight readers within 10% of alone; reader queries under 20 ms at the 99th percentile.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use syncscope::model::{Event, Timestamp};
use syncscope::store::{self, Batch, Writer};
use syncscope::tui::action::Action;
use syncscope::tui::app::{update, AppState};
use syncscope::tui::theme::ThemeName;
use syncscope::tui::worker::load_view;
use syncscope::tui::Pane;

const BATCH: usize = 5000;
const READERS: usize = 8;
/// The TUI worker's shortest refresh (src/tui/worker.rs MIN_REFRESH).
const REFRESH: Duration = Duration::from_millis(250);
const PANES: [Pane; READERS] = [
    Pane::Overview,
    Pane::Timeline,
    Pane::Relays,
    Pane::Replication,
    Pane::Overview,
    Pane::Timeline,
    Pane::Ci,
    Pane::Timeline,
];

fn events(n: u64) -> Vec<Event> {
    // Ending about now, so the panes' last hour has events.
    let gap = Duration::from_micros(200);
    let start = Timestamp::from_nanos(
        store::unix_now() * 1_000_000_000 - (n as i64) * gap.as_nanos() as i64,
    );
    support::Generator::new(7, start, gap)
        .take(n as usize)
        .collect()
}

/// Writes `evs` into `db` in batches as fast as the writer goes; events per second.
fn ingest(db: &std::path::Path, evs: &[Event], keys: &[i64]) -> f64 {
    let mut w = Writer::open(db).expect("writer");
    let t = Instant::now();
    for (i, (chunk, ks)) in evs.chunks(BATCH).zip(keys.chunks(BATCH)).enumerate() {
        let cp = format!("{}", (i + 1) * BATCH);
        w.commit(&Batch {
            source: "bench",
            events: chunk,
            keys: ks,
            updates: &[],
            rejects: &[],
            checkpoint: Some(&cp),
        })
        .expect("commit");
    }
    evs.len() as f64 / t.elapsed().as_secs_f64()
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    support::ms(sorted[((sorted.len() * p).div_ceil(100)).clamp(1, sorted.len()) - 1])
}

fn main() {
    let n = support::count_arg(1_000_000);
    let busy = std::env::args().any(|a| a == "busy");
    let evs = events(n);
    let keys: Vec<i64> = evs.iter().map(Event::dedup_key).collect();
    let dir = tempfile::tempdir().expect("tempdir");

    // Warm the code and the page cache once (not counted), then alone.
    ingest(
        &dir.path().join("warm.db"),
        &evs[..evs.len().min(50_000)],
        &keys[..evs.len().min(50_000)],
    );
    let alone = ingest(&dir.path().join("alone.db"), &evs, &keys);

    // With eight readers on the store being written.
    let db = dir.path().join("loaded.db");
    {
        // The store exists (and has a first batch) before the readers open it.
        let mut w = Writer::open(&db).expect("writer");
        w.commit(&Batch {
            source: "seed",
            events: &evs[..1],
            keys: &keys[..1],
            updates: &[],
            rejects: &[],
            checkpoint: None,
        })
        .expect("seed");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let times: Arc<Mutex<Vec<(Pane, Duration, bool)>>> = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = PANES
        .iter()
        .map(|&pane| {
            let (db, stop, times) = (db.clone(), stop.clone(), times.clone());
            std::thread::spawn(move || {
                let r = store::open_reader(&db).expect("reader");
                let mut st =
                    AppState::new("bench".into(), ThemeName::Dark, (160, 45), Timestamp::now());
                update(&mut st, Action::GoPane(pane));
                let mut mine = Vec::new();
                let mut seen = -1i64;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let version: i64 = r
                        .connection()
                        .query_row("PRAGMA data_version", [], |x| x.get(0))
                        .expect("data_version");
                    if version != seen {
                        seen = version;
                        let req = st.request();
                        let t = Instant::now();
                        load_view(&r, &req, Timestamp::now()).expect("load_view");
                        mine.push((pane, t.elapsed(), mine.is_empty()));
                    }
                    if !busy {
                        std::thread::sleep(REFRESH.saturating_sub(started.elapsed()));
                    }
                }
                times.lock().expect("times").extend(mine);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let loaded = ingest(&db, &evs[1..], &keys[1..]);
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().expect("reader thread");
    }
    let times = times.lock().expect("times");
    let ratio = loaded / alone;
    let pr = pruning_phase(&dir.path().join("pruned.db"), &evs, &keys);
    println!(
        "\nreaders under load: {n} events per phase, {READERS} readers ({}), {} cores, load {}",
        if busy {
            "back to back"
        } else {
            "TUI-paced, every 250 ms when the store changed"
        },
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("{:<40} {:>12}", "ingest alone", format!("{alone:.0} ev/s"));
    println!(
        "{:<40} {:>12}  {:.1}% of alone (target >= 90%){}",
        "ingest with 8 readers",
        format!("{loaded:.0} ev/s"),
        ratio * 100.0,
        if ratio >= 0.9 { "" } else { "  MISSED" }
    );
    println!(
        "\n{:<14} {:>8} {:>9} {:>9} {:>9}",
        "pane query", "queries", "p50", "p99", "max"
    );
    let mut all: Vec<Duration> = times.iter().map(|t| t.1).collect();
    all.sort();
    for pane in [
        Pane::Overview,
        Pane::Timeline,
        Pane::Relays,
        Pane::Replication,
        Pane::Ci,
    ] {
        let mut d: Vec<Duration> = times.iter().filter(|t| t.0 == pane).map(|t| t.1).collect();
        d.sort();
        println!(
            "{:<14} {:>8} {:>7.2}ms {:>7.2}ms {:>7.2}ms",
            pane.title(),
            d.len(),
            pct(&d, 50),
            pct(&d, 99),
            pct(&d, 100)
        );
    }
    // Each reader's first query prepares its statements and reads a cold cache (start-up, which
    // the tui bench times as "start to first frame"): shown apart, and the rest on its own.
    let mut first: Vec<Duration> = times.iter().filter(|t| t.2).map(|t| t.1).collect();
    first.sort();
    let mut steady: Vec<Duration> = times.iter().filter(|t| !t.2).map(|t| t.1).collect();
    steady.sort();
    let mut steady_overview: Vec<Duration> = times
        .iter()
        .filter(|t| !t.2 && t.0 == Pane::Overview)
        .map(|t| t.1)
        .collect();
    steady_overview.sort();
    println!(
        "{:<14} {:>8} {:>7.2}ms {:>7.2}ms {:>7.2}ms  (each reader's first query: start-up)",
        "first",
        first.len(),
        pct(&first, 50),
        pct(&first, 99),
        pct(&first, 100)
    );
    println!(
        "{:<14} {:>8} {:>7.2}ms {:>7.2}ms {:>7.2}ms  (the rest; Overview alone: p99 {:.2}ms)",
        "after first",
        steady.len(),
        pct(&steady, 50),
        pct(&steady, 99),
        pct(&steady, 100),
        pct(&steady_overview, 99)
    );
    let p99 = pct(&all, 99);
    println!(
        "{:<14} {:>8} {:>7.2}ms {:>7.2}ms {:>7.2}ms  (target p99 < 20 ms){}",
        "all",
        all.len(),
        pct(&all, 50),
        p99,
        pct(&all, 100),
        if p99 < 20.0 { "" } else { "  MISSED" }
    );
    println!(
        "\nretention while ingesting: {} old events (and their strings) pruned in {} steps between the commits of {n} new ones",
        pr.pruned, pr.steps
    );
    println!(
        "{:<40} {:>12}  {:.1}% of alone",
        "ingest while pruning",
        format!("{:.0} ev/s", pr.rate),
        pr.rate / alone * 100.0
    );
    println!(
        "{:<40} {:>9.1}ms  (longest commit beside it: {:.1}ms)",
        "longest prune step",
        support::ms(pr.longest_step),
        support::ms(pr.longest_commit)
    );
    println!("all targets met: {}", ratio >= 0.9 && p99 < 20.0);
}

struct PruneRun {
    pruned: u64,
    steps: u64,
    rate: f64,
    longest_step: Duration,
    longest_commit: Duration,
}

fn step(w: &mut Writer, run: &mut Option<syncscope::store::retention::Pruning>, pr: &mut PruneRun) {
    if let Some(r) = run.as_mut() {
        let s = Instant::now();
        let done = w.prune_step(r).expect("prune step");
        pr.longest_step = pr.longest_step.max(s.elapsed());
        pr.steps += 1;
        if done {
            pr.pruned = r.done.events;
            *run = None;
        }
    }
}

/// A store holding `evs` received two days ago takes `evs` again (a day later, other
/// sessions) with a one-day retention running step by step between the commits, as the
/// ingest's writer loop runs it.
fn pruning_phase(db: &std::path::Path, evs: &[Event], keys: &[i64]) -> PruneRun {
    let mut w = Writer::open(db).expect("writer");
    for (chunk, ks) in evs.chunks(BATCH).zip(keys.chunks(BATCH)) {
        w.commit(&Batch {
            source: "old",
            events: chunk,
            keys: ks,
            updates: &[],
            rejects: &[],
            checkpoint: None,
        })
        .expect("commit");
    }
    w.connection()
        .execute("UPDATE batches SET received = received - 2 * 86400", [])
        .expect("age");
    let newer: Vec<Event> = evs
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.timestamp = Timestamp::from_nanos(e.timestamp.as_nanos() + 86_400_000_000_000);
            e.correlation_id = e.correlation_id.map(|c| format!("{c}-new"));
            e
        })
        .collect();
    let new_keys: Vec<i64> = newer.iter().map(Event::dedup_key).collect();
    let mut run = Some(syncscope::store::retention::Pruning::new(
        86_400,
        store::unix_now(),
    ));
    let mut pr = PruneRun {
        pruned: 0,
        steps: 0,
        rate: 0.0,
        longest_step: Duration::ZERO,
        longest_commit: Duration::ZERO,
    };
    let t = Instant::now();
    for (chunk, ks) in newer.chunks(BATCH).zip(new_keys.chunks(BATCH)) {
        let c = Instant::now();
        w.commit(&Batch {
            source: "new",
            events: chunk,
            keys: ks,
            updates: &[],
            rejects: &[],
            checkpoint: None,
        })
        .expect("commit");
        pr.longest_commit = pr.longest_commit.max(c.elapsed());
        step(&mut w, &mut run, &mut pr);
    }
    pr.rate = newer.len() as f64 / t.elapsed().as_secs_f64();
    while run.is_some() {
        step(&mut w, &mut run, &mut pr);
    }
    pr
}
