//! `/metrics` of a big store: `cargo bench --bench serve -- [N]` (default 10,000,000 events,
//! of which min(50,000, N/2) are Gerrit `ref-replicated` events of as many distinct refs over
//! 200 projects and 4 remotes, 2% of them failed). Builds (once, cached as
//! `target/tmp/bench-serve-N-vV.db`) the store: Spacedrive-shaped events through the real
//! writer, the Gerrit events through the real `syncscope ingest --once`. Then times:
//! - the page in process (read in one transaction + rendered) on a warm reader, as `serve`
//!   keeps one;
//! - `GET /metrics` of the real `syncscope serve` over loopback (what Prometheus waits for).
//!
//! Target: under 100 ms each (median and maximum printed).

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use syncscope::model::Timestamp;
use syncscope::serve::metrics;
use syncscope::store;

use support::{count_arg, median_max, ms, Generator, Rng, START};

const SAMPLES: usize = 20;
const REMOTES: &[&str] = &[
    "ssh://replication@mirror-eu.example.com:29418",
    "ssh://replication@mirror-us.example.com:29418",
    "https://github.com/example-org",
    "file:///mnt/dr/git",
];

fn write_refs(path: &Path, refs: u64) {
    let mut out = BufWriter::new(File::create(path).expect("create stream"));
    let mut rng = Rng::new(11);
    let t0 = START / 1_000_000_000;
    for i in 0..refs {
        let project = format!("platform/p{}", i % 200);
        let remote = REMOTES[((i / 200) % 4) as usize];
        let reff = format!("refs/changes/{}/{}/1", i % 100, i);
        let status = if rng.chance(2) {
            r#""refStatus":"REJECTED_OTHER_REASON","status":"failed","#
        } else {
            r#""refStatus":"OK","status":"succeeded","#
        };
        writeln!(
            out,
            r#"{{"targetNode":"mirror",{status}"project":"{project}","ref":"{reff}","targetUri":"{remote}/{project}.git","type":"ref-replicated","eventCreatedOn":{},"instanceId":"primary-1"}}"#,
            t0 + i as i64
        )
        .expect("write stream");
    }
    out.flush().expect("flush stream");
}

fn ref_count(db: &Path) -> i64 {
    store::open_reader(db)
        .and_then(|r| {
            Ok(r.connection()
                .query_row("SELECT count(*) FROM ref_state", [], |r| r.get(0))?)
        })
        .unwrap_or(-1)
}

fn store_with_refs(n: u64, refs: u64) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let db = dir.join(format!(
        "bench-serve-{n}-v{}.db",
        store::schema::LATEST_VERSION
    ));
    if let Ok(r) = store::open_reader(&db) {
        // The Gerrit ingest adds a few events of its own (a failure's alert): at least n.
        if r.total_events().unwrap_or(0) >= n && ref_count(&db) == refs as i64 {
            println!("using the cached store {}", db.display());
            return db;
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let t = Instant::now();
    {
        let mut w = store::Writer::open(&db).expect("open writer");
        let mut gen = Generator::new(42, Timestamp::from_nanos(START), Duration::from_millis(40));
        let mut left = n - refs;
        let mut batch = Vec::with_capacity(20_000);
        while left > 0 {
            batch.clear();
            batch.extend(gen.by_ref().take(left.min(20_000) as usize));
            left -= batch.len() as u64;
            w.commit_batch("spacedrive", &batch, &[], None)
                .expect("commit");
        }
    }
    let stream = dir.join(format!("bench-serve-refs-{refs}.jsonl"));
    write_refs(&stream, refs);
    let st = Command::new(env!("CARGO_BIN_EXE_syncscope"))
        .arg("--db")
        .arg(&db)
        .args(["ingest", "--once", "-q", "--source"])
        .arg(format!("gerrit-events:{}", stream.display()))
        .env("XDG_CONFIG_HOME", dir.join("bench-serve-xdg"))
        .status()
        .expect("run ingest");
    assert!(st.success(), "ingest of the refs failed");
    let _ = std::fs::remove_file(&stream);
    assert_eq!(ref_count(&db), refs as i64, "every ref is in ref_state");
    println!(
        "built a store of {n} events ({refs} refs) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    db
}

fn get(addr: &str) -> (Duration, usize) {
    let t = Instant::now();
    let mut c = TcpStream::connect(addr).expect("connect to serve");
    write!(c, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).expect("answer");
    let took = t.elapsed();
    assert!(raw.starts_with(b"HTTP/1.1 200") || raw.starts_with(b"HTTP/1.0 200"));
    (took, raw.len())
}

fn main() {
    support::launcher_if_requested();
    let n = count_arg(10_000_000);
    let refs = (n / 2).min(50_000);
    let db = store_with_refs(n, refs);
    let reader = store::open_reader(&db).expect("open store");
    let n = reader.total_events().expect("count events");
    let today = chrono::Utc::now().date_naive();

    let mut samples = Vec::new();
    let mut reads = Vec::new();
    let mut size = 0;
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let now = Timestamp::now();
        let snap = metrics::collect(&reader, today, now, 3600).expect("collect");
        reads.push(t.elapsed());
        let page = metrics::render(&snap, now);
        samples.push(t.elapsed());
        size = page.len();
        assert!(page.contains("syncscope_gerrit_ref_failed{"));
    }
    let (rmed, rmax) = median_max(&mut reads);
    println!(
        "  of which reading the store: median {:.1} ms, max {:.1} ms",
        ms(rmed),
        ms(rmax)
    );
    let (med, max) = median_max(&mut samples);
    println!(
        "page in process ({n} events, {refs} refs, {} KiB): median {:.1} ms, max {:.1} ms (target < 100 ms)",
        size / 1024,
        ms(med),
        ms(max)
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_syncscope"))
        .arg("--db")
        .arg(&db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "XDG_CONFIG_HOME",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-serve-xdg"),
        )
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let mut line = String::new();
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    err.read_line(&mut line).expect("serve's address");
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    let addr = line
        .trim()
        .trim_start_matches("syncscope serve: listening on http://")
        .trim_end_matches("/metrics")
        .to_string();
    let mut samples = Vec::new();
    let mut bytes = 0;
    for _ in 0..SAMPLES {
        let (d, b) = get(&addr);
        samples.push(d);
        bytes = b;
    }
    let _ = child.kill();
    let _ = child.wait();
    let (med, max) = median_max(&mut samples);
    println!(
        "GET /metrics of syncscope serve ({} KiB): median {:.1} ms, max {:.1} ms (target < 100 ms)",
        bytes / 1024,
        ms(med),
        ms(max)
    );
}
