//! What the benches share: a deterministic generator of Spacedrive-shaped sync events
//! (about 20 devices, sessions with random UUID correlation ids, JSON details), its JSONL
//! encoding, argument parsing and small statistics helpers.
#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use syncscope::model::{format_rfc3339, Event, Severity, Timestamp};

/// The first number among the arguments (`cargo bench --bench X -- 20000`), else `default`.
/// Cargo adds `--bench`; other flags are ignored.
pub fn count_arg(default: u64) -> u64 {
    std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// splitmix64: small, fast, and the same sequence on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }
}

const MODELS: &[&str] = &["entry", "tag", "location", "object", "label", "volume"];
const STATES: &[&str] = &[
    "Ready",
    "Backfilling",
    "CatchingUp",
    "Paused",
    "Uninitialized",
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Backfill,
    CatchUp,
}

struct Session {
    corr: String,
    device: usize,
    peer: usize,
    kind: Kind,
    /// Steps left before the session ends.
    left: u32,
    batch: u32,
    records: i64,
}

/// An endless, deterministic stream of events in time order, the way a fleet of ~20
/// Spacedrive devices logs them: backfill and catch-up sessions (started, requests and
/// responses, batch ingestion, completed or failed) interleaved with state transitions,
/// peer connections and errors.
pub struct Generator {
    rng: Rng,
    devices: Vec<String>,
    sessions: Vec<Session>,
    ts: i64,
    /// Mean gap between two events, in nanoseconds.
    gap: i64,
}

impl Generator {
    /// Events start at `start` and are on average `gap` apart.
    pub fn new(seed: u64, start: Timestamp, gap: Duration) -> Self {
        let mut rng = Rng::new(seed);
        let devices = (0..20).map(|_| rng.uuid()).collect();
        Generator {
            rng,
            devices,
            sessions: Vec::new(),
            ts: start.as_nanos(),
            gap: gap.as_nanos().max(2) as i64,
        }
    }

    fn event(
        &mut self,
        device: usize,
        ty: &str,
        cat: &str,
        sev: Severity,
        summary: String,
    ) -> Event {
        self.ts += 1 + self.rng.below(2 * self.gap as u64) as i64;
        let mut e = Event::new(
            Timestamp::from_nanos(self.ts),
            "spacedrive",
            ty,
            cat,
            sev,
            summary,
        );
        e.device_id = Some(self.devices[device].clone());
        e
    }

    fn background(&mut self) -> Event {
        let d = self.rng.below(self.devices.len() as u64) as usize;
        let p =
            (d + 1 + self.rng.below(self.devices.len() as u64 - 1) as usize) % self.devices.len();
        let peer = self.devices[p].clone();
        match self.rng.below(10) {
            0..=3 => {
                let from = STATES[self.rng.below(STATES.len() as u64) as usize];
                let to = STATES[self.rng.below(STATES.len() as u64) as usize];
                let mut e = self.event(
                    d,
                    "state_transition",
                    "lifecycle",
                    Severity::Info,
                    format!("{from} → {to}"),
                );
                e.details = Some(format!(
                    r#"{{"from":"{from}","to":"{to}","reason":"peer set changed"}}"#
                ));
                e
            }
            4..=6 => {
                let mut e = self.event(
                    d,
                    "peer_connected",
                    "network",
                    Severity::Info,
                    format!("Peer {} connected", &peer[..8]),
                );
                e.peer_device_id = Some(peer);
                e
            }
            7..=8 => {
                let mut e = self.event(
                    d,
                    "peer_disconnected",
                    "network",
                    Severity::Warning,
                    format!("Peer {} disconnected: timeout", &peer[..8]),
                );
                e.peer_device_id = Some(peer);
                e.details = Some(r#"{"reason":"keepalive timeout","after_ms":30000}"#.into());
                e
            }
            _ => {
                let mut e = self.event(
                    d,
                    "sync_error",
                    "error",
                    Severity::Error,
                    "Buffer overflow: dropped updates during backfill".into(),
                );
                e.details = Some(format!(
                    r#"{{"dropped_count":{},"buffer_capacity":10000}}"#,
                    self.rng.below(5000)
                ));
                e
            }
        }
    }

    fn open_session(&mut self) -> Event {
        let n = self.devices.len() as u64;
        let device = self.rng.below(n) as usize;
        let peer = (device + 1 + self.rng.below(n - 1) as usize) % self.devices.len();
        let kind = if self.rng.chance(40) {
            Kind::Backfill
        } else {
            Kind::CatchUp
        };
        let s = Session {
            corr: self.rng.uuid(),
            device,
            peer,
            kind,
            left: if kind == Kind::Backfill {
                10 + self.rng.below(60) as u32
            } else {
                2 + self.rng.below(10) as u32
            },
            batch: 0,
            records: 0,
        };
        let (ty, sev, what) = match kind {
            Kind::Backfill => ("backfill_session_started", Severity::Info, "Backfill"),
            Kind::CatchUp => ("catch_up_session_started", Severity::Debug, "Catch-up"),
        };
        let peer_id = self.devices[peer].clone();
        let mut e = self.event(
            device,
            ty,
            "lifecycle",
            sev,
            format!("{what} session started with {}", &peer_id[..8]),
        );
        e.correlation_id = Some(s.corr.clone());
        e.peer_device_id = Some(peer_id);
        self.sessions.push(s);
        e
    }

    fn step(&mut self, i: usize) -> Event {
        let mut s = self.sessions.swap_remove(i);
        s.left -= 1;
        let peer_id = self.devices[s.peer].clone();
        let mut e = if s.left == 0 {
            let failed = s.kind == Kind::Backfill && self.rng.chance(8);
            let (ty, sev, summary) = match (s.kind, failed) {
                (Kind::Backfill, true) => (
                    "backfill_session_failed",
                    Severity::Error,
                    format!(
                        "Backfill failed after {} records: peer unreachable",
                        s.records
                    ),
                ),
                (Kind::Backfill, false) => (
                    "backfill_session_completed",
                    Severity::Info,
                    format!("Backfill completed: {} records", s.records),
                ),
                _ => (
                    "catch_up_session_completed",
                    Severity::Debug,
                    format!("Catch-up completed: {} records", s.records),
                ),
            };
            let dur = 1000 + self.rng.below(120_000) as i64;
            let mut e = self.event(s.device, ty, "lifecycle", sev, summary);
            e.record_count = Some(s.records);
            e.duration_ms = Some(dur);
            e.details = Some(format!(
                r#"{{"batches":{},"records":{},"duration_ms":{dur}}}"#,
                s.batch, s.records
            ));
            e
        } else if self.rng.chance(25) {
            let mut e = self.event(
                s.device,
                "backfill_request_sent",
                "network",
                Severity::Debug,
                format!("Requested batch {} from {}", s.batch + 1, &peer_id[..8]),
            );
            e.details = Some(format!(
                r#"{{"batch_size":10000,"watermark":"{}"}}"#,
                format_rfc3339(Timestamp::from_nanos(self.ts))
            ));
            e
        } else {
            s.batch += 1;
            let records = 100 + self.rng.below(10_000) as i64;
            s.records += records;
            let m = self.rng.below(MODELS.len() as u64 - 2) as usize;
            let models = MODELS[m..m + 3].join(",");
            let dur = 20 + self.rng.below(3000) as i64;
            let sev = if dur > 2800 {
                Severity::Warning
            } else {
                Severity::Debug
            };
            let mut e = self.event(
                s.device,
                "batch_ingestion",
                "data_flow",
                sev,
                format!("Ingested batch {} ({records} records)", s.batch),
            );
            e.model_types = Some(models);
            e.record_count = Some(records);
            e.duration_ms = Some(dur);
            e.details = Some(format!(
                r#"{{"batch":{},"records":{records},"bytes":{},"watermark":"{}"}}"#,
                s.batch,
                records * 212,
                format_rfc3339(Timestamp::from_nanos(self.ts))
            ));
            e
        };
        e.correlation_id = Some(s.corr.clone());
        e.peer_device_id = Some(peer_id);
        if s.left > 0 {
            self.sessions.push(s);
        }
        e
    }
}

impl Iterator for Generator {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        if self.rng.chance(5) {
            return Some(self.background());
        }
        if self.sessions.len() < 12 && (self.sessions.is_empty() || self.rng.chance(10)) {
            return Some(self.open_session());
        }
        let i = self.rng.below(self.sessions.len() as u64) as usize;
        Some(self.step(i))
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json writes a correctly escaped JSON string.
    serde_json::to_writer(&mut *out, s).ok();
}

/// One JSONL line with Spacedrive's export field names (what `jsonl:` and `sd sync events` read).
pub fn write_jsonl(e: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"timestamp\":");
    json_str(out, &format_rfc3339(e.timestamp));
    let opt = |out: &mut Vec<u8>, name: &str, v: &Option<String>| {
        if let Some(v) = v {
            write!(out, ",\"{name}\":").ok();
            json_str(out, v);
        }
    };
    opt(out, "device_id", &e.device_id);
    out.extend_from_slice(b",\"event_type\":");
    json_str(out, &e.event_type);
    out.extend_from_slice(b",\"category\":");
    json_str(out, &e.category);
    out.extend_from_slice(b",\"severity\":");
    json_str(out, e.severity.as_str());
    out.extend_from_slice(b",\"summary\":");
    json_str(out, &e.summary);
    if let Some(d) = &e.details {
        out.extend_from_slice(b",\"details\":");
        out.extend_from_slice(d.as_bytes());
    }
    opt(out, "correlation_id", &e.correlation_id);
    opt(out, "peer_device_id", &e.peer_device_id);
    if let Some(m) = &e.model_types {
        out.extend_from_slice(b",\"model_types\":[");
        for (i, name) in m.split(',').enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json_str(out, name);
        }
        out.push(b']');
    }
    if let Some(n) = e.record_count {
        write!(out, ",\"record_count\":{n}").ok();
    }
    if let Some(n) = e.duration_ms {
        write!(out, ",\"duration_ms\":{n}").ok();
    }
    out.extend_from_slice(b"}\n");
}

/// Median and maximum of a set of durations.
pub fn median_max(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let med = samples.get(samples.len() / 2).copied().unwrap_or_default();
    let max = samples.last().copied().unwrap_or_default();
    (med, max)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

const LAUNCH_ENV: &str = "SYNCSCOPE_BENCH_MEASURE";

/// Runs `cmd` to completion and returns its exit status and peak resident set size in MiB.
///
/// A process spawned straight from the bench would inherit the bench's own high-water mark
/// (Linux keeps the pre-exec peak in `ru_maxrss`), so the bench re-runs itself as a small
/// launcher first: the launcher, still tiny, spawns `cmd` and reports its peak from `wait4`.
pub fn run_peak_rss_mib(cmd: &mut std::process::Command) -> (bool, f64) {
    let mut launcher = std::process::Command::new(std::env::current_exe().expect("bench exe"));
    launcher
        .env(LAUNCH_ENV, "1")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => launcher.env(k, v),
            None => launcher.env_remove(k),
        };
    }
    let out = launcher
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run launcher");
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: f64 = text.trim().parse().unwrap_or(f64::NAN);
    (out.status.success(), kib / 1024.0)
}

/// In the launcher (see [`run_peak_rss_mib`]): run the command given as arguments with its
/// output discarded, print its peak RSS in KiB, exit with its status. Call first in `main`.
pub fn launcher_if_requested() {
    if std::env::var_os(LAUNCH_ENV).is_none() {
        return;
    }
    let mut args = std::env::args_os().skip(1);
    let program = args.next().expect("launcher: program");
    let child = std::process::Command::new(program)
        .args(args)
        .env_remove(LAUNCH_ENV)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("launcher: spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills for the child just spawned.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "launcher: wait4 failed");
    std::mem::forget(child);
    println!("{}", usage.ru_maxrss);
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    std::process::exit(if ok { 0 } else { 1 });
}

/// The summary of the few rare events of a bench store (one per 2,000,000 events).
pub const RARE_TEXT: &str = "wss://relay.rare.example lost: Connection refused";

/// Events per transaction while building a bench store.
const BUILD_BATCH: usize = 20_000;
/// The first event of a bench store: 2026-11-01T00:00:00Z.
pub const START: i64 = 1_793_491_200_000_000_000;

/// The cached store of `n` events, built through the real writer when missing.
pub fn store_for(n: u64) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let db = dir.join(format!(
        "bench-store-{n}-v{}.db",
        syncscope::store::schema::LATEST_VERSION
    ));
    if let Ok(r) = syncscope::store::open_reader(&db) {
        if r.total_events().unwrap_or(0) == n {
            println!("using the cached store {}", db.display());
            return db;
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let t = std::time::Instant::now();
    let mut w = syncscope::store::Writer::open(&db).expect("open writer");
    let mut gen = Generator::new(
        42,
        Timestamp::from_nanos(START),
        std::time::Duration::from_millis(40),
    );
    let mut left = n;
    let mut batch = Vec::with_capacity(BUILD_BATCH);
    let mut index = 0u64;
    while left > 0 {
        batch.clear();
        batch.extend(gen.by_ref().take(left.min(BUILD_BATCH as u64) as usize));
        left -= batch.len() as u64;
        // A handful of rare events (one per 2,000,000), for a text search that finds few.
        if index % 100 == 50 && batch.len() > 7 {
            batch[7].summary = format!("{RARE_TEXT} (batch {index})");
        }
        index += 1;
        // Every fifth batch as `jsonl` events, so a source filter has something to find.
        let source = if left.is_multiple_of(5 * BUILD_BATCH as u64) {
            "jsonl"
        } else {
            "spacedrive"
        };
        for e in &mut batch {
            e.source = source.into();
        }
        w.commit_batch(source, &batch, &[], None).expect("commit");
    }
    w.connection()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    println!(
        "built a store of {n} events in {:.1} s ({:.0} events/s through Writer::commit_batch)",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );
    db
}

/// A store of `n` events whose newest one is now (its newest hour full, as a store written in
/// the last minutes): built fresh through the real writer each time (a cached one would age).
pub fn store_ending_now(n: u64) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let db = dir.join(format!("bench-now-store-{n}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let t = std::time::Instant::now();
    let gap = std::time::Duration::from_millis(40);
    // The generator's gaps average `gap`: start so the last event lands about now.
    let start = Timestamp::now().as_nanos() - (n as i64) * gap.as_nanos() as i64;
    let mut w = syncscope::store::Writer::open(&db).expect("open writer");
    let mut gen = Generator::new(42, Timestamp::from_nanos(start), gap);
    let mut left = n;
    let mut batch = Vec::with_capacity(BUILD_BATCH);
    while left > 0 {
        batch.clear();
        batch.extend(gen.by_ref().take(left.min(BUILD_BATCH as u64) as usize));
        left -= batch.len() as u64;
        w.commit_batch("spacedrive", &batch, &[], None)
            .expect("commit");
    }
    w.connection()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    println!(
        "built a store of {n} events ending now in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    db
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the state (field 3).
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos((ticks(11) + ticks(12)) * 1_000_000_000 / hz)
}
