//! Job-log fingerprinting throughput: the streamed scan (escapes, `\r` rewrites, sections,
//! error lines kept, the tail) plus the rules and the masked fingerprint, over realistic CI logs.
//!
//! `cargo bench --bench fingerprint -- [MB]` (default 256): generates logs of about 4 MiB each
//! (cargo and pip progress with `\r` rewrites and ANSI colours, collapsible sections, test output,
//! a few error-looking lines early on, a failure at the end: a Rust compile error, a Julia test
//! failure, an OOM kill or an unmatched error), feeds each to `LogScanner` in 64 KiB chunks as
//! the HTTP stream would, then analyses it with the default rules. Half the logs carry the
//! runner's `FF_TIMESTAMPS` prefixes (`2026-12-01T02:10:00.123456Z 00O `), stripped before
//! anything else: they must give the same four patterns. Target: at least 50 MB/s.

mod support;

use std::time::{Duration, Instant};

use syncscope::model::ci::{analyze, LogScanner, Rules};

use support::{count_arg, Rng};

const LOG_BYTES: usize = 4 << 20;
const CHUNK: usize = 64 * 1024;

fn log(rng: &mut Rng, kind: u64) -> Vec<u8> {
    let mut s = String::with_capacity(LOG_BYTES + 4096);
    s.push_str(
        "\x1b[0KRunning with gitlab-runner 17.5.0 (8f2e9c1d)\n\x1b[0K  on ci-large-3 rz4y4fdk\n",
    );
    s.push_str("section_start:1740895204:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1mPreparing the \"docker\" executor\x1b[0;m\nsection_end:1740895205:prepare_executor\r\x1b[0K\n");
    s.push_str("section_start:1740895206:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage of the job script\x1b[0;m\n\x1b[32;1m$ make ci\x1b[0;m\n");
    let mut i = 0u64;
    while s.len() < LOG_BYTES {
        i += 1;
        match rng.below(10) {
            0..=3 => s.push_str(&format!(
                "\x1b[1m\x1b[32m   Compiling\x1b[0m crate-{} v0.{}.{}\n",
                rng.below(5000),
                rng.below(30),
                rng.below(10)
            )),
            4..=5 => s.push_str(&format!(
                "Downloading pkg_{}-1.{}.0-py3-none-any.whl ({} kB)\r\x1b[K   ━━━━━━━━━━━━━━━━ {}/{} kB {} MB/s eta 0:00:0{}\n",
                rng.below(900),
                rng.below(40),
                rng.below(900),
                rng.below(900),
                rng.below(900),
                rng.below(90),
                rng.below(9)
            )),
            6..=7 => s.push_str(&format!(
                "test tests::module_{}::case_{} ... \x1b[32mok\x1b[0m\n",
                rng.below(200),
                i
            )),
            8 => s.push_str(&format!(
                "section_start:{}:sub_{}[collapsed=true]\r\x1b[0K  running step {}\nsection_end:{}:sub_{}\r\x1b[0K\n",
                1_740_895_300 + i,
                i % 7,
                i,
                1_740_895_301 + i,
                i % 7
            )),
            _ => {
                if rng.below(2000) == 0 {
                    s.push_str("WARNING: deprecated option --foo; Exception handling changed in 2.0\n");
                } else {
                    s.push_str(&format!(
                        "  [{}/{}] {}\n",
                        i,
                        i + rng.below(1000),
                        "x".repeat(rng.below(120) as usize)
                    ));
                }
            }
        }
    }
    match kind % 4 {
        0 => s.push_str("\x1b[0m\x1b[1m\x1b[38;5;9merror[E0425]\x1b[0m\x1b[1m: cannot find value `foo` in this scope\x1b[0m\n  --> src/lib.rs:12:5\n"),
        1 => s.push_str("Test Failed at /builds/research/GLMModels.jl/test/runtests.jl:42\n  Expression: coef(m) ≈ [1.0, 2.0]\n   Evaluated: [1.0, 2.1] ≈ [1.0, 2.0]\nStacktrace:\n"),
        2 => s.push_str("/usr/bin/bash: line 143:   312 Killed   python train.py\n"),
        _ => s.push_str("ERROR: failed to publish artifact build-2025-03-02T06:41:19Z to 10.0.4.17:8443 after 12.5s\n"),
    }
    s.push_str("section_end:1740896587:step_script\r\x1b[0K\n\x1b[31;1mERROR: Job failed: exit code 1\n\x1b[0;m\n");
    s.into_bytes()
}

/// `log` as a runner with `FF_TIMESTAMPS` writes it: every line prefixed with its time and
/// stream.
fn stamped(log: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(log.len() + log.len() / 2);
    for (i, line) in log.split_inclusive(|&b| b == b'\n').enumerate() {
        let stream = if i % 5 == 4 { "01E" } else { "00O" };
        out.extend_from_slice(
            format!(
                "2026-12-01T02:{:02}:{:02}.{:06}Z {stream} ",
                (i / 60) % 60,
                i % 60,
                (i * 7919) % 1_000_000
            )
            .as_bytes(),
        );
        out.extend_from_slice(line);
    }
    out
}

fn main() {
    let mb = count_arg(256);
    let rules = Rules::defaults().expect("default rules");
    let mut rng = Rng::new(7);
    let plain: Vec<Vec<u8>> = (0..4).map(|k| log(&mut rng, k)).collect();
    let logs: Vec<Vec<u8>> = plain
        .iter()
        .cloned()
        .chain(plain.iter().map(|l| stamped(l)))
        .collect();
    let per_log = logs.iter().map(Vec::len).sum::<usize>() / logs.len();
    let total_logs = ((mb as usize) << 20).div_ceil(per_log).max(1);
    // Warm-up: compile the lazily built regexes.
    let mut s = LogScanner::new();
    s.feed(&logs[0]);
    let _ = analyze(Some(&s.finish()), Some("script_failure"), &rules);

    let mut bytes = 0usize;
    let mut scan_time = Duration::ZERO;
    let mut analyze_time = Duration::ZERO;
    let mut patterns = std::collections::BTreeSet::new();
    let start = Instant::now();
    for i in 0..total_logs {
        let log = &logs[i % logs.len()];
        let t = Instant::now();
        let mut s = LogScanner::new();
        for c in log.chunks(CHUNK) {
            s.feed(c);
        }
        let scanned = s.finish();
        let t2 = Instant::now();
        let a = analyze(Some(&scanned), Some("script_failure"), &rules);
        analyze_time += t2.elapsed();
        scan_time += t2 - t;
        patterns.insert(format!("{}: {}", a.pattern.name, a.pattern.identity));
        bytes += log.len();
    }
    let wall = start.elapsed();
    let mbs = |d: Duration| bytes as f64 / (1 << 20) as f64 / d.as_secs_f64();
    println!(
        "fingerprint: {} logs (half with runner timestamps) of {:.1} MiB, {:.0} MiB in {:.2} s: {:.0} MB/s (scan {:.0} MB/s, rules and fingerprint {:.2} ms a log); target >= 50 MB/s",
        total_logs,
        per_log as f64 / (1 << 20) as f64,
        bytes as f64 / (1 << 20) as f64,
        wall.as_secs_f64(),
        mbs(wall),
        mbs(scan_time),
        analyze_time.as_secs_f64() * 1000.0 / total_logs as f64
    );
    for p in &patterns {
        println!("  pattern {p}");
    }
    assert_eq!(
        patterns.len(),
        4,
        "each kind of log has its own pattern, with and without runner timestamps"
    );
}
