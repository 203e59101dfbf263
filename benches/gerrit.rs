//! Gerrit sources through to the store: `gerrit stream-events` lines and `replication_log`
//! lines, generated (N each, default 1,000,000) and ingested with `--once` by the real ingest
//! loop into an on-disk store, ref state included. Target: at least 200,000 lines/s each.

mod support;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use syncscope::ingest::{self, IngestOptions};
use syncscope::model::LogZone;
use syncscope::sources::SourceSpec;
use syncscope::store;
use tokio_util::sync::CancellationToken;

use support::{count_arg, Rng};

const REMOTES: &[&str] = &[
    "ssh://replication@mirror-eu.example.com:29418",
    "ssh://replication@mirror-us.example.com:29418",
    "https://github.com/example-org",
    "file:///mnt/dr/git",
];

/// A push of one ref to one remote: scheduled, replicated (sometimes failed and retried), done.
fn write_stream(path: &Path, n: u64) {
    let mut out = BufWriter::new(File::create(path).expect("create stream"));
    let mut rng = Rng::new(3);
    let mut t = 1_741_944_600u64;
    let mut written = 0;
    while written < n {
        t += rng.below(3);
        let project = format!("platform/p{}", rng.below(200));
        let reff = format!(
            "refs/changes/{}/{}/{}",
            rng.below(100),
            rng.below(100_000),
            rng.below(9)
        );
        let remote = REMOTES[rng.below(REMOTES.len() as u64) as usize];
        let uri = format!("{remote}/{project}.git");
        let node = "mirror-eu.example.com:29418";
        let mut line = |kind: &str, extra: &str| {
            let _ = writeln!(
                out,
                r#"{{"targetNode":"{node}",{extra}"project":"{project}","ref":"{reff}","targetUri":"{uri}","type":"{kind}","eventCreatedOn":{t},"instanceId":"primary-1"}}"#
            );
            written += 1;
        };
        line("ref-replication-scheduled", "");
        if rng.chance(10) {
            line(
                "ref-replicated",
                r#""refStatus":"REJECTED_OTHER_REASON","status":"failed","#,
            );
            line("ref-replication-scheduled", "");
        }
        line(
            "ref-replicated",
            r#""refStatus":"OK","status":"succeeded","#,
        );
        line("ref-replication-done", r#""nodesCount":1,"#);
    }
    out.flush().expect("flush stream");
}

fn write_log(path: &Path, n: u64) {
    let mut out = BufWriter::new(File::create(path).expect("create log"));
    let mut rng = Rng::new(5);
    let mut ms = 0u64;
    let mut written = 0;
    while written < n {
        let id = format!("{:08x}", rng.next() as u32);
        let project = format!("platform/p{}", rng.below(200));
        let uri = format!(
            "{}/{project}.git",
            REMOTES[rng.below(REMOTES.len() as u64) as usize]
        );
        let fail = rng.chance(5);
        let took = rng.below(3000);
        let mut texts = vec![
            format!("scheduled {project}:[refs/heads/main] => [{id}] push {uri} [refs/heads/main] to run after 15s"),
            format!("Replication to {uri} started..."),
        ];
        if fail {
            texts.push(format!("Cannot replicate to {uri}"));
        }
        texts.push(format!(
            "Replication to {uri} completed in {took}ms, 15007ms delay, 0 retries"
        ));
        for (i, text) in texts.iter().enumerate() {
            ms += 1 + rng.below(50);
            let (s, m) = (ms / 1000, ms % 1000);
            let _ = writeln!(
                out,
                "[2025-03-14 {:02}:{:02}:{:02},{m:03}] {text} [CONTEXT PLUGIN=\"replication\" TRACE_ID=\"1741944599866-3f2a9c1e\" project=\"{project}\" pushOneId=\"{id}\" ]",
                (s / 3600) % 24,
                (s / 60) % 60,
                s % 60
            );
            written += 1;
            if fail && i == 2 {
                let _ = writeln!(out, "org.eclipse.jgit.errors.TransportException: {uri}: Connection timed out\n\tat org.eclipse.jgit.transport.sshd.SshdSessionFactory.getSession(SshdSessionFactory.java:259)");
                written += 2;
            }
        }
    }
    out.flush().expect("flush log");
}

fn ingest_file(db: &Path, spec: &str) -> (Duration, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let opts = IngestOptions {
        once: true,
        log_status: false,
        kinds: syncscope::ingest::kinds::KindSettings::default().with_log_zone(LogZone::Utc),
        ..IngestOptions::default()
    };
    let spec = SourceSpec::parse(spec).expect("spec");
    let t = Instant::now();
    rt.block_on(ingest::run(
        db.to_path_buf(),
        syncscope::sources::plan(&[spec], &opts).expect("build"),
        opts.clone(),
        CancellationToken::new(),
    ))
    .expect("ingest");
    let d = t.elapsed();
    let stored = store::open_reader(db)
        .expect("open")
        .total_events()
        .expect("count");
    (d, stored)
}

fn main() {
    // As the program does, so the in-process ingest runs as it would.
    syncscope::tune_allocator();
    let n = count_arg(1_000_000);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("work dir");
    let stream = work.path().join("stream.jsonl");
    let log = work.path().join("replication_log");
    write_stream(&stream, n);
    write_log(&log, n);
    let lines = |p: &Path| {
        std::fs::read(p)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
            .unwrap_or(0)
    };
    for (name, path, spec) in [
        (
            "gerrit stream-events",
            &stream,
            format!("gerrit-events:{}", stream.display()),
        ),
        (
            "replication_log",
            &log,
            format!("gerrit-log:{}", log.display()),
        ),
    ] {
        let total = lines(path);
        let db = work.path().join(format!("{}.db", name.replace(' ', "-")));
        let (d, stored) = ingest_file(&db, &spec);
        let rate = total as f64 / d.as_secs_f64();
        println!(
            "{name}: {total} lines -> {stored} events in {:.2} s: {rate:.0} lines/s (target >= 200000) {}",
            d.as_secs_f64(),
            if rate >= 200_000.0 { "ok" } else { "BELOW TARGET" }
        );
        assert!(stored > 0);
    }
    let states: i64 = rusqlite::Connection::open(work.path().join("gerrit-stream-events.db"))
        .and_then(|c| c.query_row("SELECT count(*) FROM ref_state", [], |r| r.get(0)))
        .unwrap_or(0);
    println!("ref states derived from the stream: {states}");
}
