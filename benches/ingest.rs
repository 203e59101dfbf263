//! Ingest throughput and memory, end to end.
//!
//! `cargo bench --bench ingest -- [N]` (default 1,000,000): writes N Spacedrive-shaped events
//! (about 20 devices, random UUID correlation ids per session, JSON details) to a JSONL file,
//! then, alternating, in one run:
//! - **ours**: `syncscope::ingest::run` with a `jsonl:` source and `--once` into an on-disk
//!   store with the real schema (every index, dedup, interning, checkpoints);
//! - **ceiling**: the same line reader and parser on one thread, the same batches over the same
//!   bounded channel into a table with the same columns as plain values: no secondary index,
//!   no dedup key, no interning, the same pragmas;
//! - **grown**: ours, with N new events (the generator's events 10N..11N, later than every
//!   stored one) into a copy of a store of 10N events (built once through the writer and
//!   cached in target/tmp with the new events, so the CI-size run stays fast).
//!
//! Then the real binary's peak RSS for `ingest` and for `events` over that store.
//! Targets: ours >= 300,000 events/s and >= 0.66 x ceiling; grown >= 0.8 x ours (best of the
//! rounds each); peak RSS <= 64 MiB.

mod support;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use syncscope::ingest::follow::{Line, LineReader};
use syncscope::ingest::{self, IngestOptions};
use syncscope::model::{parse_wire_event, Event, Timestamp};
use syncscope::sources::SourceSpec;
use syncscope::store;
use tokio_util::sync::CancellationToken;

use support::{count_arg, run_peak_rss_mib, write_jsonl, Generator};

const BATCH: usize = 5000;
const CHANNEL_BATCHES: usize = 4;

fn main() {
    // As the program does, so the in-process ingest runs as it would.
    syncscope::tune_allocator();
    support::launcher_if_requested();
    let n = count_arg(1_000_000);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench work dir");
    let file = work.path().join("events.jsonl");

    let t = Instant::now();
    let bytes = generate(&file, n);
    println!(
        "generated {n} events, {:.1} MiB of JSONL, in {:.1} s",
        bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );

    let rounds = if n >= 500_000 { 2 } else { 3 };
    let (mut ours, mut ceil, mut grown) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let db = work.path().join(format!("ceiling-{round}.db"));
        let d = ceiling(&file, &db, n);
        println!(
            "  round {round}: ceiling {:>9.0} events/s ({:.2} s)",
            rate(n, d),
            d.as_secs_f64()
        );
        ceil.push(d);
        remove_store(&db);

        let db = work.path().join(format!("ours-{round}.db"));
        let d = ours_run(&file, &db, n);
        println!(
            "  round {round}: ours    {:>9.0} events/s ({:.2} s)",
            rate(n, d),
            d.as_secs_f64()
        );
        ours.push(d);
        if round < rounds {
            remove_store(&db);
        }

        // The same number of new events into a store that already holds ten times as many.
        let d = grown_run(work.path(), n);
        println!(
            "  round {round}: grown   {:>9.0} events/s ({:.2} s) into a store of {} events",
            rate(n, d),
            d.as_secs_f64(),
            10 * n
        );
        grown.push(d);
    }
    let best_ours = ours.iter().min().copied().unwrap_or_default();
    let grown = grown.iter().min().copied().unwrap_or_default();
    let best_ceil = ceil.iter().min().copied().unwrap_or_default();
    let ratio = best_ceil.as_secs_f64() / best_ours.as_secs_f64();
    println!("ingest of {n} events (best of {rounds}):");
    println!(
        "  ours     {:>9.0} events/s   target >= 300000  {}",
        rate(n, best_ours),
        verdict(rate(n, best_ours) >= 300_000.0)
    );
    println!("  ceiling  {:>9.0} events/s", rate(n, best_ceil));
    let growth = best_ours.as_secs_f64() / grown.as_secs_f64();
    println!(
        "  grown    {:>9.0} events/s into {} stored: {growth:.2} x empty  target >= 0.80    {}",
        rate(n, grown),
        10 * n,
        verdict(growth >= 0.8)
    );
    println!(
        "  ratio    {ratio:>9.2}            target >= 0.66    {}",
        verdict(ratio >= 0.66)
    );

    // The real binary, as a user runs it: wall time and peak memory.
    let store = work.path().join(format!("ours-{rounds}.db"));
    let fresh = work.path().join("binary.db");
    let t = Instant::now();
    let (ok, rss) = run_peak_rss_mib(
        bin(&fresh)
            .args(["ingest", "--once", "-q", "--source"])
            .arg(format!("jsonl:{}", file.display())),
    );
    let wall = t.elapsed();
    assert!(ok, "syncscope ingest failed");
    println!("binary `ingest --once`: {:.0} events/s including start-up; peak RSS {rss:.1} MiB (target <= 64) {}", rate(n, wall), verdict(rss <= 64.0));
    // Memory does not grow with the size of each event either: 200 KB details each.
    let big = work.path().join("big.jsonl");
    let n_big = (n / 500).clamp(50, 2000);
    let mut out = BufWriter::new(File::create(&big).expect("create big jsonl"));
    let blob = "x".repeat(200_000);
    for i in 0..n_big {
        writeln!(
            out,
            r#"{{"timestamp":"2026-11-01T00:00:00.{i:09}Z","event_type":"batch_ingestion","summary":"big {i}","details":{{"blob":"{blob}"}}}}"#
        )
        .expect("write big jsonl");
    }
    out.flush().expect("flush big jsonl");
    drop(out);
    let (ok, rss) = run_peak_rss_mib(
        bin(&work.path().join("big.db"))
            .args(["ingest", "--once", "-q", "--source"])
            .arg(format!("jsonl:{}", big.display())),
    );
    assert!(ok, "syncscope ingest of big events failed");
    println!(
        "binary `ingest --once` of {n_big} events of 200 KB: peak RSS {rss:.1} MiB (target <= 64) {}",
        verdict(rss <= 64.0)
    );
    for args in [
        &["events", "--limit", "0", "--format", "jsonl"][..],
        &["events", "--limit", "0", "--format", "json"],
        &["events", "--limit", "0", "--format", "sql"],
        &[
            "events",
            "--limit",
            "1000",
            "--min-severity",
            "warning",
            "--format",
            "table",
        ],
    ] {
        let t = Instant::now();
        let (ok, rss) = run_peak_rss_mib(bin(&store).args(args));
        assert!(ok, "syncscope {args:?} failed");
        println!(
            "binary `{}`: {:.2} s, peak RSS {rss:.1} MiB (target <= 64) {}",
            args.join(" "),
            t.elapsed().as_secs_f64(),
            verdict(rss <= 64.0)
        );
    }
}

fn bin(db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_syncscope"));
    c.arg("--db")
        .arg(db)
        .env_remove("SYNCSCOPE_CONFIG")
        .env("XDG_CONFIG_HOME", db.with_extension("xdg"));
    c
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "BELOW TARGET"
    }
}

fn remove_store(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

fn generate(path: &Path, n: u64) -> u64 {
    let start = Timestamp::from_nanos(1_793_491_200_000_000_000); // 2026-11-01T00:00:00Z
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create jsonl"));
    let mut line = Vec::with_capacity(1024);
    let mut bytes = 0;
    for e in Generator::new(42, start, Duration::from_millis(40)).take(n as usize) {
        line.clear();
        write_jsonl(&e, &mut line);
        bytes += line.len() as u64;
        out.write_all(&line).expect("write jsonl");
    }
    out.flush().expect("flush jsonl");
    bytes
}

/// `n` new events (the generator's events `10n..11n`, later than every stored one) ingested
/// into a copy of the cached store of `10n` events (built once under target/tmp).
fn grown_run(work: &Path, n: u64) -> Duration {
    let base = support::store_for(10 * n);
    let db = work.join("grown.db");
    remove_store(&db);
    std::fs::copy(&base, &db).expect("copy the cached store");
    // On disk before the clock starts: the copy's writeback is not the ingest's cost.
    File::open(&db)
        .and_then(|f| f.sync_all())
        .expect("sync the copy");
    // The new events, cached beside the store (generating 10n events to skip them takes long).
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-grown-{n}.jsonl"));
    if !file.exists() {
        let part = file.with_extension("part");
        let start = Timestamp::from_nanos(support::START);
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&part).expect("create jsonl"));
        let mut line = Vec::with_capacity(1024);
        let gen = Generator::new(42, start, Duration::from_millis(40));
        for e in gen.skip(10 * n as usize).take(n as usize) {
            line.clear();
            write_jsonl(&e, &mut line);
            out.write_all(&line).expect("write jsonl");
        }
        out.flush().expect("flush jsonl");
        drop(out);
        std::fs::rename(&part, &file).expect("rename jsonl");
    }
    let d = ingest_into(&file, &db, 11 * n);
    remove_store(&db);
    d
}

fn ours_run(file: &Path, db: &Path, n: u64) -> Duration {
    ingest_into(file, db, n)
}

/// Ingests `file` into `db` with the real pipeline; the store must then hold `total` events.
fn ingest_into(file: &Path, db: &Path, total: u64) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let spec = SourceSpec::parse(&format!("jsonl:{}", file.display())).expect("source spec");
    let opts = IngestOptions {
        once: true,
        log_status: false,
        batch_size: BATCH,
        ..IngestOptions::default()
    };
    let t = Instant::now();
    let report = rt
        .block_on(ingest::run(
            db.to_path_buf(),
            syncscope::sources::plan(&[spec], &opts).expect("build"),
            opts.clone(),
            CancellationToken::new(),
        ))
        .expect("ingest run");
    let d = t.elapsed();
    let stored = store::open_reader(db)
        .expect("open store")
        .total_events()
        .expect("count");
    assert_eq!(
        stored, total,
        "ours stored {stored} of {total} events: {report:?}"
    );
    d
}

/// The same reading and parsing pipeline as the jsonl source, writing plain rows.
fn ceiling(file: &Path, db: &Path, n: u64) -> Duration {
    let mut conn = Connection::open(db).expect("open ceiling db");
    conn.execute_batch(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE events (
            id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, source TEXT NOT NULL, device TEXT,
            event_type TEXT NOT NULL, category TEXT NOT NULL, severity INTEGER NOT NULL,
            summary TEXT NOT NULL, details TEXT, corr TEXT, peer TEXT, model_types TEXT,
            record_count INTEGER, duration_ms INTEGER, subject TEXT);",
    )
    .expect("ceiling schema");
    let t = Instant::now();
    let write_cpu0 = thread_cpu();
    let (tx, rx) = sync_channel::<Vec<Event>>(CHANNEL_BATCHES);
    let path = file.to_path_buf();
    let parser = std::thread::spawn(move || {
        let mut lines = LineReader::new(File::open(path).expect("open jsonl"), 0, 1);
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(line) = lines.next_line().expect("read jsonl") {
            if let Line::Text { bytes, .. } = line {
                if let Ok(e) = parse_wire_event(bytes, "jsonl") {
                    batch.push(e);
                }
            }
            if batch.len() == BATCH {
                tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                    .expect("send batch");
            }
        }
        if !batch.is_empty() {
            tx.send(batch).expect("send batch");
        }
        thread_cpu()
    });
    let mut stored = 0u64;
    for batch in rx {
        let t = conn.transaction().expect("begin");
        {
            let mut st = t
                .prepare_cached(
                    "INSERT INTO events (ts, source, device, event_type, category, severity, summary,
                     details, corr, peer, model_types, record_count, duration_ms, subject)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .expect("prepare insert");
            for e in &batch {
                st.execute(rusqlite::params![
                    e.timestamp.as_nanos(),
                    e.source,
                    e.device_id,
                    e.event_type,
                    e.category,
                    e.severity.rank(),
                    e.summary,
                    e.details,
                    e.correlation_id,
                    e.peer_device_id,
                    e.model_types,
                    e.record_count,
                    e.duration_ms,
                    e.subject
                ])
                .expect("insert");
            }
        }
        t.commit().expect("commit");
        stored += batch.len() as u64;
    }
    let parse_cpu = parser.join().expect("parser thread");
    let write_cpu = thread_cpu();
    let d = t.elapsed();
    println!(
        "    ceiling threads: parse {:.2} s CPU, write {:.2} s CPU",
        parse_cpu.as_secs_f64(),
        (write_cpu - write_cpu0).as_secs_f64()
    );
    assert_eq!(stored, n, "ceiling stored {stored} of {n}");
    d
}

/// CPU time the calling thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
