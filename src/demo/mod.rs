//! `syncscope demo`: a simulator that writes the real wire formats of the systems syncscope
//! reads, so the real sources, parsers and ingest loop can be watched without any set-up:
//!
//! - Gerrit: two `stream-events` files (a >= 3.5 primary and a <= 3.3 legacy server) and the
//!   primary's `replication_log` ([`gerrit`]);
//! - ngit: two relays' `/metrics` expositions (v3 metric set) served over HTTP on 127.0.0.1
//!   ([`ngit`], [`server`]);
//! - Spacedrive: a `sync.db` written through its own SQLite connection ([`spacedrive`]);
//! - GitLab CI: a REST API on 127.0.0.1 with 30 nights of nightly pipelines ([`gitlab`]).
//!
//! Time is virtual: every simulator works through an agenda of actions ordered by virtual
//! time, and the driver advances virtual time with the wall clock (never ahead of it; behind
//! it when the machine cannot keep up). What each source writes is a function of the seed and
//! the rate alone; only the timestamps (start time + virtual time) change from run to run.
//! The story ([`story`]) repeats every [`story::CYCLE`] of virtual time.

pub mod fleet;
pub mod gerrit;
pub mod gitlab;
pub mod ngit;
pub mod server;
pub mod spacedrive;
pub mod story;

use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use color_eyre::eyre::{eyre, Result, WrapErr};
use tokio_util::sync::CancellationToken;

use crate::model::Timestamp;
use crate::sources::gerrit::spec as gerrit_spec;
use crate::sources::gitlab::spec as gitlab_spec;
use crate::sources::ngit::spec as ngit_spec;
use crate::sources::spacedrive::spec as spacedrive_spec;
use crate::sources::{Input, SourceSpec};

/// Nanoseconds of virtual time.
pub type Vt = u64;
pub const SEC: Vt = 1_000_000_000;
pub const MS: Vt = 1_000_000;

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Events per second across the file sources (Gerrit lines and Spacedrive rows).
    pub rate: u32,
    /// The seed of every random choice: the same seed and rate give the same events.
    pub seed: u64,
    /// Where the simulated systems' files go (created if missing).
    pub dir: PathBuf,
}

/// What the simulator has done so far (read while it runs).
#[derive(Debug, Default)]
pub struct DemoStats {
    /// Virtual time reached, ms.
    pub virtual_ms: AtomicU64,
    /// Lines written to the Gerrit stream-events files and the replication_log.
    pub gerrit_lines: AtomicU64,
    /// Rows inserted into the Spacedrive sync.db.
    pub spacedrive_rows: AtomicU64,
    /// `/metrics` requests answered.
    pub scrapes: AtomicU64,
}

/// A running simulator: the sources to ingest and the threads that feed them.
pub struct Demo {
    /// The sources to hand to [`crate::ingest::run`].
    pub specs: Vec<SourceSpec>,
    /// The files and URLs behind `specs`, for display.
    pub files: Vec<PathBuf>,
    pub metrics_urls: Vec<String>,
    /// The simulated GitLab API, and the `[gitlab]` settings to read it with.
    pub gitlab_url: String,
    pub gitlab: crate::sources::gitlab::config::GitlabConfig,
    pub stats: Arc<DemoStats>,
    cancel: CancellationToken,
    threads: Vec<(&'static str, JoinHandle<Result<()>>)>,
}

impl Demo {
    /// Whether every simulator thread is still running.
    pub fn is_running(&self) -> bool {
        self.threads.iter().all(|(_, t)| !t.is_finished())
    }

    /// Stops the simulator (cancels the token it was started with) and waits for its threads;
    /// the first error a thread ended with, if any.
    pub fn stop(self) -> Result<()> {
        self.cancel.cancel();
        let mut first = None;
        for (name, t) in self.threads {
            let r = t
                .join()
                .map_err(|_| eyre!("the demo's {name} thread panicked"))
                .and_then(|r| r);
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// Starts the simulators and the `/metrics` servers (127.0.0.1 only) in threads that run until
/// `cancel` fires, and returns the sources to ingest.
pub fn start(opts: DemoOptions, cancel: CancellationToken) -> Result<Demo> {
    std::fs::create_dir_all(&opts.dir)
        .wrap_err_with(|| format!("cannot create {}", opts.dir.display()))?;
    let rate = opts.rate.max(1);
    let mut seeds = Rng::new(opts.seed);
    // Virtual time starts at the story's opening, which is now; its past is written at once.
    let opening = story::OPENING;
    // A whole second, so that timestamps cut to the second or the millisecond (Gerrit's
    // stream and log) group the same events together in every run of a seed.
    let now = Timestamp::now().as_nanos();
    let base = now - now.rem_euclid(1_000_000_000) - opening as i64;
    let stats = Arc::new(DemoStats::default());

    let files = gerrit::Files::new(&opts.dir);
    let gerrit = gerrit::GerritSim::create(seeds.fork(), rate, base, opening, &files)?;
    let sd_path = opts.dir.join("sync.db");
    let sd = spacedrive::SpacedriveSim::create(seeds.fork(), rate, base, opening, &sd_path)?;
    let mut relays = ngit::NgitSim::new(seeds.fork());
    // The relays' state at the opening, ready before the first scrape can come.
    relays.advance(opening);

    let mut threads = Vec::new();
    let mut metrics_urls = Vec::new();
    let mut endpoints = Vec::new();
    for _ in 0..relays.instance_count() {
        let (server, url) = server::MetricsServer::bind()?;
        metrics_urls.push(url);
        let endpoint = server.endpoint();
        endpoint.set(relays.render(endpoints.len(), opening));
        endpoints.push(endpoint);
        let c = cancel.clone();
        let st = stats.clone();
        let t = std::thread::Builder::new()
            .name("syncscope-demo-http".into())
            .spawn(move || server.serve(&c, &st))
            .wrap_err("cannot start the demo's /metrics server")?;
        threads.push(("metrics server", t));
    }

    let (gitlab_server, gitlab_url) = gitlab::GitlabServer::bind(&mut seeds.fork())?;
    let c = cancel.clone();
    let t = std::thread::Builder::new()
        .name("syncscope-demo-gitlab".into())
        .spawn(move || gitlab_server.serve(&c))
        .wrap_err("cannot start the demo's GitLab API")?;
    threads.push(("GitLab API", t));

    let driver = Driver {
        gerrit,
        sd,
        relays,
        endpoints,
        stats: stats.clone(),
    };
    let c = cancel.clone();
    let t = std::thread::Builder::new()
        .name("syncscope-demo".into())
        .spawn(move || {
            crate::ingest::lower_thread_priority(10);
            let r = driver.run(&c);
            if r.is_err() {
                // Nothing more will be written: let the rest stop too.
                c.cancel();
            }
            r
        })
        .wrap_err("cannot start the demo simulator")?;
    threads.push(("simulator", t));

    let mut specs = vec![
        SourceSpec::new(
            &gerrit_spec::EVENTS,
            gerrit_spec::EventsSpec(Input::File(files.primary.clone())),
        ),
        SourceSpec::new(
            &gerrit_spec::EVENTS,
            gerrit_spec::EventsSpec(Input::File(files.legacy.clone())),
        ),
        SourceSpec::new(&gerrit_spec::LOG, gerrit_spec::LogSpec(files.log.clone())),
        SourceSpec::new(
            &spacedrive_spec::DB,
            spacedrive_spec::DbSpec(sd_path.clone()),
        ),
    ];
    specs.extend(
        metrics_urls
            .iter()
            .map(|u| SourceSpec::new(&ngit_spec::METRICS, ngit_spec::MetricsSpec(u.clone()))),
    );
    specs.push(SourceSpec::new(
        &gitlab_spec::KIND,
        gitlab_spec::GitlabSpec(gitlab_url.clone()),
    ));
    Ok(Demo {
        specs,
        files: vec![files.primary, files.legacy, files.log, sd_path],
        metrics_urls,
        gitlab_url,
        gitlab: gitlab::demo_config(),
        stats,
        cancel,
        threads,
    })
}

/// How far virtual time may move in one step, so a slow step never makes a huge burst.
const MAX_STEP: Vt = 250 * MS;
/// How often the driver wakes.
const TICK: Duration = Duration::from_millis(40);

struct Driver {
    gerrit: gerrit::GerritSim,
    sd: spacedrive::SpacedriveSim,
    relays: ngit::NgitSim,
    endpoints: Vec<Arc<server::Endpoint>>,
    stats: Arc<DemoStats>,
}

impl Driver {
    fn run(mut self, cancel: &CancellationToken) -> Result<()> {
        let start = Instant::now();
        // The story's past, at once.
        let mut vt: Vt = story::OPENING;
        self.step(vt)?;
        while !cancel.is_cancelled() {
            let wall =
                story::OPENING + u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX / 2);
            let target = wall.min(vt + MAX_STEP);
            if target > vt {
                vt = target;
                self.step(vt)?;
            }
            // Behind the wall clock: go on at once (the story slows down, nothing is skipped).
            let behind = wall.saturating_sub(vt) > MAX_STEP;
            if !behind {
                std::thread::sleep(TICK);
            }
        }
        self.gerrit.finish()?;
        self.sd.finish()?;
        Ok(())
    }

    fn step(&mut self, vt: Vt) -> Result<()> {
        let g = self.gerrit.advance(vt)?;
        let s = self.sd.advance(vt)?;
        self.relays.advance(vt);
        self.publish(vt);
        self.stats.gerrit_lines.fetch_add(g, Ordering::Relaxed);
        self.stats.spacedrive_rows.fetch_add(s, Ordering::Relaxed);
        self.stats.virtual_ms.store(vt / MS, Ordering::Relaxed);
        Ok(())
    }

    fn publish(&self, vt: Vt) {
        for (i, e) in self.endpoints.iter().enumerate() {
            e.set(self.relays.render(i, vt));
        }
    }
}

/// splitmix64: tiny, fast, and the same everywhere (no crate, no platform dependence).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_5EED)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A new generator for a part of the simulation, independent of how much this one is used
    /// later.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }

    /// Uniform in `0..n` (`n` > 0; 0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `n` lower-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(n);
        let mut bits = 0u64;
        for i in 0..n {
            if i.is_multiple_of(16) {
                bits = self.next_u64();
            }
            s.push(char::from(DIGITS[(bits & 15) as usize]));
            bits >>= 4;
        }
        s
    }

    /// A UUID-shaped id (8-4-4-4-12).
    pub fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// Actions ordered by virtual time, ties in the order they were scheduled.
pub struct Agenda<A> {
    heap: BinaryHeap<Entry<A>>,
    seq: u64,
}

struct Entry<A> {
    at: Vt,
    seq: u64,
    action: A,
}

impl<A> PartialEq for Entry<A> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<A> Eq for Entry<A> {}
impl<A> PartialOrd for Entry<A> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<A> Ord for Entry<A> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: the earliest entry must compare greatest.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

impl<A> Default for Agenda<A> {
    fn default() -> Self {
        Agenda {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<A> Agenda<A> {
    pub fn at(&mut self, at: Vt, action: A) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            action,
        });
    }

    /// The next action due at or before `until`.
    pub fn pop_due(&mut self, until: Vt) -> Option<(Vt, A)> {
        if self.heap.peek().is_some_and(|e| e.at <= until) {
            self.heap.pop().map(|e| (e.at, e.action))
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// The interval between two filler actions that each make about `per_action` events, so that
/// they add up to `share` percent of `rate` events per second.
pub fn filler_interval(rate: u32, share: u64, per_action: f64) -> Vt {
    let per_sec = f64::from(rate.max(1)) * share as f64 / 100.0;
    ((per_action / per_sec) * SEC as f64).max(1.0) as Vt
}

/// Replaces `path` by `path.1` once it is bigger than `max` bytes (a rotation by rename, which
/// the followers finish reading before they move on), so a long fast demo does not fill the
/// disk. True when rotated.
pub fn rotate_if_big(path: &Path, max: u64) -> Result<bool> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len <= max {
        return Ok(false);
    }
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    std::fs::rename(path, &old).wrap_err_with(|| format!("cannot rotate {}", path.display()))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_repeatable_and_spread() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u64> = (0..100).map(|_| a.below(10)).collect();
        let ys: Vec<u64> = (0..100).map(|_| b.below(10)).collect();
        assert_eq!(xs, ys);
        assert!((0..10).all(|d| xs.contains(&d)));
        assert_ne!(Rng::new(8).next_u64(), Rng::new(7).next_u64());
        let u = a.uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(u.matches('-').count(), 4);
    }

    #[test]
    fn agenda_orders_by_time_then_insertion() {
        let mut a = Agenda::default();
        a.at(5, "c");
        a.at(1, "a");
        a.at(5, "d");
        a.at(2, "b");
        assert_eq!(a.pop_due(4), Some((1, "a")));
        assert_eq!(a.pop_due(4), Some((2, "b")));
        assert_eq!(a.pop_due(4), None);
        assert_eq!(a.pop_due(9), Some((5, "c")));
        assert_eq!(a.pop_due(9), Some((5, "d")));
        assert!(a.is_empty());
    }

    #[test]
    fn filler_interval_meets_the_rate() {
        // 1000 events/s, half of them, 10 per action: 50 actions/s.
        assert_eq!(filler_interval(1000, 50, 10.0), 20 * MS);
    }
}
