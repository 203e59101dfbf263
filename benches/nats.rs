//! Events through NATS JetStream, end to end, against a real `nats-server -js` started here.
//!
//! `cargo bench --bench nats -- [N]` (default 300,000): N Spacedrive-shaped events in three
//! JSONL files (N/3 each), then:
//! - **jsonl**: `ingest --once` of the three files straight into a store (the baseline);
//! - **forward**: three forwarders at once (`forward::run`, one per file, concurrently) into
//!   a fresh stream;
//! - **consume**: a `nats:` source (`--once`) of that stream into a new store, alone;
//! - **end to end**: a following consumer and three forwarders started together on another
//!   stream, timed until the store holds all N events.
//!
//! Targets: end to end >= 100,000 events/s; consume >= 0.7 x jsonl.

mod support;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use syncscope::ingest::{self, IngestOptions};
use syncscope::model::Timestamp;
use syncscope::sources::nats::{forward, NatsConfig, NatsTarget};
use syncscope::sources::SourceSpec;
use tokio_util::sync::CancellationToken;

use support::{count_arg, write_jsonl, Generator};

const NATS: &str = "/usr/sbin/nats-server";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn opts() -> IngestOptions {
    IngestOptions {
        once: true,
        log_status: false,
        ..IngestOptions::default()
    }
}

fn count(db: &Path) -> u64 {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)))
        .map(|n| n as u64)
        .unwrap_or(0)
}

/// CPU seconds (user + system) a process used so far, from `/proc/PID/stat`.
fn cpu_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// CPU used by this bench and by nats-server since the last call, per event, and what that
/// allows at most on this machine's cores.
struct Cpu {
    server: String,
    at: (f64, f64),
    cores: f64,
}

impl Cpu {
    fn phase(&mut self, what: &str, n: u64, wall: Duration) {
        let now = (cpu_of("self"), cpu_of(&self.server));
        let (own, server) = (now.0 - self.at.0, now.1 - self.at.1);
        self.at = now;
        let per = (own + server) / n as f64;
        println!(
            "      {what}: CPU {own:.2} s syncscope + {server:.2} s nats-server = {:.1} us per event \
             (nats-server {:.0}%); cores busy {:.2} of {:.0}; at most {:.0} events/s on {:.0} cores",
            per * 1e6,
            100.0 * server / (own + server).max(1e-9),
            (own + server) / wall.as_secs_f64(),
            self.cores,
            self.cores / per,
            self.cores,
        );
    }
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn forward_all(
    rt: &tokio::runtime::Runtime,
    target: &NatsTarget,
    files: &[PathBuf],
    work: &Path,
    tag: &str,
) {
    rt.block_on(async {
        let runs = files.iter().enumerate().map(|(i, f)| {
            let spec = SourceSpec::parse(&format!("jsonl:{}", f.display())).expect("spec");
            forward::run(
                target.clone(),
                NatsConfig::default(),
                work.join(format!("{tag}-{i}.json")),
                syncscope::sources::plan(&[spec], &opts()).expect("build"),
                opts(),
                CancellationToken::new(),
            )
        });
        for r in futures_util::future::join_all(runs).await {
            r.expect("forward");
        }
    });
}

fn main() {
    syncscope::tune_allocator();
    let n = count_arg(300_000);
    if !Path::new(NATS).is_file() {
        assert!(std::env::var_os("CI").is_none(), "CI must provide {NATS}");
        println!("SKIPPED: nats bench: needs {NATS}");
        return;
    }
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("bench work dir");
    let w = work.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let server = Server(
        Command::new(NATS)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(w.join("nats"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server"),
    );
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }

    let start = Timestamp::from_nanos(1_793_491_200_000_000_000);
    let mut files = Vec::new();
    let mut line = Vec::with_capacity(1024);
    let mut g = Generator::new(42, start, Duration::from_millis(40));
    for i in 0..3 {
        let p = w.join(format!("events-{i}.jsonl"));
        let mut out = BufWriter::new(File::create(&p).expect("jsonl"));
        let part = n / 3 + u64::from(i < n % 3);
        for e in g.by_ref().take(part as usize) {
            line.clear();
            write_jsonl(&e, &mut line);
            out.write_all(&line).expect("write");
        }
        out.flush().expect("flush");
        files.push(p);
    }
    println!("generated {n} events in 3 JSONL files");
    let mut cpu = Cpu {
        server: server.0.id().to_string(),
        at: (0.0, 0.0),
        cores: std::thread::available_parallelism().map_or(1, |c| c.get()) as f64,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let specs = |f: &[PathBuf]| -> Vec<SourceSpec> {
        f.iter()
            .map(|p| SourceSpec::parse(&format!("jsonl:{}", p.display())).expect("spec"))
            .collect()
    };

    let db = w.join("jsonl.db");
    cpu.phase("generating", n, Duration::from_secs(1));
    let t = Instant::now();
    rt.block_on(ingest::run(
        db.clone(),
        syncscope::sources::plan(&specs(&files), &opts()).expect("build"),
        opts(),
        CancellationToken::new(),
    ))
    .expect("jsonl ingest");
    let jsonl = t.elapsed();
    assert_eq!(count(&db), n);
    println!(
        "  jsonl ingest      {:>9.0} events/s ({:.2} s)",
        rate(n, jsonl),
        jsonl.as_secs_f64()
    );
    cpu.phase("jsonl", n, jsonl);

    let url = format!("nats://127.0.0.1:{port}/BENCH");
    let target = NatsTarget::parse(&url).expect("target");
    let t = Instant::now();
    forward_all(&rt, &target, &files, w, "fwd");
    let fwd = t.elapsed();
    println!(
        "  3 forwarders      {:>9.0} events/s ({:.2} s)",
        rate(n, fwd),
        fwd.as_secs_f64()
    );
    cpu.phase("forwarders", n, fwd);

    let db = w.join("consumer.db");
    let spec = SourceSpec::parse(&format!("nats:{url}")).expect("spec");
    let t = Instant::now();
    rt.block_on(ingest::run(
        db.clone(),
        syncscope::sources::plan(&[spec], &opts()).expect("build"),
        opts(),
        CancellationToken::new(),
    ))
    .expect("consume");
    let consume = t.elapsed();
    assert_eq!(count(&db), n, "the consumer stored every event once");
    println!(
        "  consumer alone    {:>9.0} events/s ({:.2} s) = {:.2} x jsonl",
        rate(n, consume),
        consume.as_secs_f64(),
        jsonl.as_secs_f64() / consume.as_secs_f64()
    );
    cpu.phase("consumer", n, consume);

    // End to end: a following consumer and the forwarders at once, on a new stream.
    let url = format!("nats://127.0.0.1:{port}/E2E");
    let target = NatsTarget::parse(&url).expect("target");
    let db = w.join("e2e.db");
    let spec = SourceSpec::parse(&format!("nats:{url}")).expect("spec");
    let cancel = CancellationToken::new();
    let follow = IngestOptions {
        once: false,
        log_status: false,
        poll_interval: Duration::from_millis(50),
        ..IngestOptions::default()
    };
    let t = Instant::now();
    let planned = syncscope::sources::plan(&[spec], &follow).expect("build");
    let consumer = rt.spawn(ingest::run(db.clone(), planned, follow, cancel.clone()));
    forward_all(&rt, &target, &files, w, "e2e");
    while count(&db) < n {
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "end to end stalled at {}",
            count(&db)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let e2e = t.elapsed();
    cancel.cancel();
    rt.block_on(consumer).expect("join").expect("consumer");
    assert_eq!(count(&db), n);
    println!(
        "  end to end        {:>9.0} events/s ({:.2} s)",
        rate(n, e2e),
        e2e.as_secs_f64()
    );
    cpu.phase("end to end", n, e2e);
    println!(
        "targets: end to end >= 100000 events/s: {}; consumer >= 0.7 x jsonl: {}",
        if rate(n, e2e) >= 100_000.0 {
            "met"
        } else {
            "NOT met"
        },
        if jsonl.as_secs_f64() / consume.as_secs_f64() >= 0.7 {
            "met"
        } else {
            "NOT met"
        }
    );
}
