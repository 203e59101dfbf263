//! `syncscope demo --fleet`: the fleet's shape on loopback, every part a real process.
//!
//! - a real `nats-server -js` (its JetStream store in the demo's directory);
//! - three "hosts": `syncscope ingest --forward` processes running the simulated Gerrit
//!   primary (stream + replication_log), the legacy Gerrit, and the Spacedrive device, each
//!   publishing to the stream with its own state file ([`forwarder`]);
//! - a real Prometheus scraping the simulated ngit relays' `/metrics` (job `ngit`) and
//!   `syncscope serve` (job `syncscope`) every second ([`servers`]);
//! - the jump host (this process): an ingest into the store of `nats:` (the stream),
//!   `prometheus:` (the relays, through Prometheus' API) and `gitlab:` (the simulated API,
//!   polled directly as a jump host would), beside the TUI or the headless progress lines.
//!
//! Stopping (the duration, Ctrl-C, SIGTERM, the TUI's quit) is orderly: the forwarders and
//! the jump host's ingest stop, the simulator finishes its files, each forwarder runs once
//! more with `--once` and the jump host consumes the stream with `--once`, so the store ends
//! with exactly what the simulated systems wrote; then serve, Prometheus and nats-server go.
//! On an error or a panic every child is killed at once ([`procs::Proc`] kills on drop) and
//! the demo's directory removed.

pub mod forwarder;
pub mod procs;
pub mod servers;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use tokio_util::sync::CancellationToken;

use self::forwarder::{Host, Launch, Supervisor};
use self::procs::{find_tool, Proc};
use self::servers::{Nats, Prometheus, Serve};
use crate::cli::DemoArgs;
use crate::commands::demo::Workspace;
use crate::commands::Outcome;
use crate::demo::{self as sim, Demo, DemoOptions};
use crate::ingest::{self, IngestOptions, IngestReport, Planned};
use crate::model::names::kind;
use crate::sources::SourceSpec;

/// How long the `--once` passes at the end may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// A running fleet demo (see the module doc).
pub struct Fleet {
    pub db: PathBuf,
    /// Cancelling stops the ingest and the forwarders; [`Fleet::stop`] does the rest.
    pub cancel: CancellationToken,
    /// What runs where, one line each (printed at start).
    pub places: Vec<String>,
    nats: Option<Nats>,
    prometheus: Option<Prometheus>,
    serve: Option<Serve>,
    demo: Option<Demo>,
    ingest: Option<JoinHandle<Result<IngestReport>>>,
    hosts: Vec<Host>,
    launch: Option<Launch>,
    nats_spec: Option<String>,
    opts: IngestOptions,
    pub workspace: Workspace,
}

impl Fleet {
    /// Checks that nats-server and Prometheus are installed (before anything starts), then
    /// starts every part. `echo`: forwarder deaths on stderr too (headless).
    pub fn start(args: &DemoArgs, db: Option<PathBuf>, echo: bool) -> Result<Fleet> {
        let nats_bin = find_tool("nats-server", "SYNCSCOPE_DEMO_NATS_SERVER")?;
        let prom_bin = find_tool("prometheus", "SYNCSCOPE_DEMO_PROMETHEUS")?;
        let exe = std::env::current_exe().wrap_err("cannot find syncscope's own executable")?;
        let workspace = Workspace::create(args.keep)?;
        let dir = workspace.dir.clone();
        let db = db.unwrap_or_else(|| dir.join("syncscope-demo.db"));
        if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .wrap_err_with(|| format!("cannot create {}", parent.display()))?;
        }
        // Created before anything runs: a bad --db fails here, and serve finds a store.
        drop(crate::store::open(&db)?);
        // The children's config: no user config is read; serve counts CI nights where the
        // simulated GitLab has them (UTC), as the jump host's gitlab: source does.
        let config = dir.join("children.toml");
        std::fs::write(
            &config,
            "# syncscope demo --fleet: the config of its children\n[gitlab]\ntimezone = \"UTC\"\n",
        )
        .wrap_err_with(|| format!("cannot write {}", config.display()))?;
        let mut opts = crate::commands::demo::ingest_options();
        let mut f = Fleet {
            db: db.clone(),
            cancel: CancellationToken::new(),
            places: Vec::new(),
            nats: None,
            prometheus: None,
            serve: None,
            demo: None,
            ingest: None,
            hosts: Vec::new(),
            launch: None,
            nats_spec: None,
            opts: opts.clone(),
            workspace,
        };
        // From here on an error drops `f`: whatever started is stopped.
        let nats = servers::start_nats(&nats_bin, &dir.join("nats"))?;
        let url = nats.stream_url();
        f.places.push(format!(
            "nats-server: {url} (pid {}; JetStream stream {}; monitoring http://127.0.0.1:{}/jsz)",
            nats.proc.pid(),
            servers::STREAM,
            nats.monitor_port
        ));
        f.nats = Some(nats);

        let demo = sim::start(
            DemoOptions {
                rate: args.rate,
                seed: args.seed,
                dir: dir.join("systems"),
            },
            CancellationToken::new(),
        )?;
        let [primary, legacy, log, sync_db] = &demo.files[..] else {
            bail!("the simulator's files are not the four expected");
        };
        let hosts = forwarder::hosts(&dir, primary, legacy, log, sync_db);
        let relays: Vec<String> = demo
            .metrics_urls
            .iter()
            .map(|u| servers::target_of(u))
            .collect();
        let gitlab_url = demo.gitlab_url.clone();
        opts.kinds = opts.kinds.with(demo.gitlab.clone());
        f.opts = opts.clone();
        f.demo = Some(demo);

        let serve = servers::start_serve(&exe, &db, &config)?;
        f.places.push(format!(
            "serve: {} (pid {}; syncscope serve on the store, scraped as job {})",
            serve.url,
            serve.proc.pid(),
            servers::SERVE_JOB
        ));
        let serve_target = servers::target_of(&serve.url);
        f.serve = Some(serve);

        let prom =
            servers::start_prometheus(&prom_bin, &dir.join("prometheus"), &relays, &serve_target)?;
        f.places.push(format!(
            "prometheus: {} (pid {}; UI and API; targets at {}/targets; config {})",
            prom.url,
            prom.proc.pid(),
            prom.url,
            prom.config.display()
        ));
        let prom_url = prom.url.clone();
        f.prometheus = Some(prom);
        for u in &f
            .demo
            .as_ref()
            .map(|d| d.metrics_urls.clone())
            .unwrap_or_default()
        {
            f.places.push(format!(
                "relay: {u} (a simulated ngit relay, scraped as job {})",
                servers::RELAY_JOB
            ));
        }
        f.places
            .push(format!("gitlab: {gitlab_url} (the simulated GitLab API)"));

        let launch = Launch {
            exe,
            url: url.clone(),
            config,
            poll_ms: opts.poll_interval.as_millis() as u64,
        };
        let mut planned = Vec::new();
        for h in &hosts {
            let p = launch.spawn(h)?;
            f.places.push(format!(
                "forwarder {}: pid {} -> {url}: {}",
                h.name,
                p.pid(),
                h.sources.join(" ")
            ));
            planned.push(Planned {
                key: forwarder::key(h),
                source: Box::new(Supervisor {
                    host: h.clone(),
                    launch: launch.clone(),
                    first: Some(p),
                    echo,
                }),
            });
        }
        let nats_spec = format!("{}:{url}", kind::NATS);
        let specs = [
            nats_spec.clone(),
            format!(
                "{}:{prom_url},selector={{job=\"{}\"}}",
                kind::PROMETHEUS,
                servers::RELAY_JOB
            ),
            format!("{}:{gitlab_url}", kind::GITLAB),
        ]
        .iter()
        .map(|s| SourceSpec::parse(s))
        .collect::<Result<Vec<_>>>()?;
        f.places.push(format!(
            "jump host (this process, pid {}): {} into {}",
            std::process::id(),
            specs
                .iter()
                .map(SourceSpec::key)
                .collect::<Vec<_>>()
                .join(" "),
            db.display()
        ));
        let mut sources = crate::sources::plan(&specs, &opts)?;
        sources.extend(planned);
        f.hosts = hosts;
        f.launch = Some(launch);
        f.nats_spec = Some(nats_spec);
        f.ingest = Some(spawn_ingest(db, sources, opts, f.cancel.clone())?);
        Ok(f)
    }

    pub fn demo(&self) -> Option<&Demo> {
        self.demo.as_ref()
    }

    /// Whether every part still runs (a dead forwarder is restarted, not counted here).
    pub fn is_running(&mut self) -> bool {
        let servers_up = [
            self.nats.as_mut().map(|n| &mut n.proc),
            self.prometheus.as_mut().map(|p| &mut p.proc),
            self.serve.as_mut().map(|s| &mut s.proc),
        ]
        .into_iter()
        .all(|p| p.is_some_and(|p| p.exited().is_none()));
        servers_up
            && self.ingest.as_ref().is_some_and(|t| !t.is_finished())
            && self.demo.as_ref().is_some_and(Demo::is_running)
    }

    /// Which server ended by itself, if one did: "prometheus was killed by signal 9: …".
    pub fn dead_server(&mut self) -> Option<String> {
        [
            self.nats.as_mut().map(|n| &mut n.proc),
            self.prometheus.as_mut().map(|p| &mut p.proc),
            self.serve.as_mut().map(|s| &mut s.proc),
        ]
        .into_iter()
        .flatten()
        .find_map(|p| {
            p.exited()
                .map(|s| format!("{} {}: {}", p.name, Proc::describe(s), p.last_line()))
        })
    }

    /// The orderly stop of the module doc; what the jump host stored per source.
    pub fn stop(mut self) -> Result<IngestReport> {
        self.shutdown(true)
    }

    fn shutdown(&mut self, drain: bool) -> Result<IngestReport> {
        self.cancel.cancel();
        let followed = match self.ingest.take() {
            Some(t) => t
                .join()
                .map_err(|_| eyre!("the fleet's ingest thread panicked"))
                .and_then(|r| r),
            None => Ok(IngestReport::new()),
        };
        let sim = self.demo.take().map_or(Ok(()), Demo::stop);
        let dead = self.dead_server();
        let mut result = followed.and_then(|r| sim.map(|()| r));
        if let Some(d) = dead {
            result = result.and(Err(eyre!("{d}")));
        }
        if drain {
            if let Ok(report) = &mut result {
                match self.drain() {
                    Ok(more) => {
                        for (k, v) in more {
                            *report.entry(k).or_default() += v;
                        }
                    }
                    Err(e) => result = Err(e),
                }
            }
        }
        // serve reads the store, Prometheus scrapes serve, the stream goes last.
        for p in [
            self.serve.take().map(|s| s.proc),
            self.prometheus.take().map(|p| p.proc),
            self.nats.take().map(|n| n.proc),
        ]
        .into_iter()
        .flatten()
        {
            let mut p = p;
            p.terminate(Duration::from_secs(5));
        }
        result
    }

    /// Every forwarder once more with `--once` (what a stopped follower had not had
    /// acknowledged), then the stream consumed with `--once` into the store.
    fn drain(&mut self) -> Result<IngestReport> {
        let (Some(launch), Some(spec)) = (self.launch.take(), self.nats_spec.take()) else {
            return Ok(IngestReport::new());
        };
        for h in &self.hosts {
            launch.run_once(h, DRAIN_TIMEOUT)?;
        }
        let mut opts = self.opts.clone();
        opts.once = true;
        let sources = crate::sources::plan(&[SourceSpec::parse(&spec)?], &opts)?;
        let t = spawn_ingest(self.db.clone(), sources, opts, CancellationToken::new())?;
        t.join()
            .map_err(|_| eyre!("the fleet's final ingest thread panicked"))?
            .wrap_err("the jump host's last pass over the stream")
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // An error or a panic: no last pass, every child killed (by the Procs' drops too).
        let _ = self.shutdown(false);
    }
}

/// The jump host's ingest on a thread with its own runtime (lower priority: the UI first).
fn spawn_ingest(
    db: PathBuf,
    sources: Vec<Planned>,
    opts: IngestOptions,
    cancel: CancellationToken,
) -> Result<JoinHandle<Result<IngestReport>>> {
    std::thread::Builder::new()
        .name("syncscope-fleet-ingest".into())
        .spawn(move || {
            crate::ingest::lower_thread_priority(10);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .on_thread_start(|| crate::ingest::lower_thread_priority(10))
                .enable_all()
                .build()
                .wrap_err("cannot start the async runtime");
            let r = rt.and_then(|rt| rt.block_on(ingest::run(db, sources, opts, cancel.clone())));
            cancel.cancel();
            r
        })
        .wrap_err("cannot start the fleet's ingest")
}

fn print_places(args: &DemoArgs, f: &Fleet) {
    let temporary = f.db.starts_with(&f.workspace.dir) && !args.keep;
    eprintln!(
        "syncscope demo --fleet: {} events/s, seed {}; store {}{}",
        args.rate,
        args.seed,
        f.db.display(),
        if temporary {
            " (removed on exit; --keep keeps it)"
        } else {
            ""
        }
    );
    for p in &f.places {
        eprintln!("  {p}");
    }
}

/// `syncscope demo --fleet`.
pub fn run(args: DemoArgs, db: Option<PathBuf>, theme: Option<&str>) -> Result<Outcome> {
    use std::io::IsTerminal;
    if args.headless {
        return run_headless(&args, db);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the demo's UI needs a terminal; without one use `syncscope demo --fleet --headless`"
        );
    }
    if let Some(t) = theme.filter(|t| crate::tui::theme::ThemeName::parse(t).is_none()) {
        bail!("unknown theme {t:?}: dark, light or mono");
    }
    let f = Fleet::start(&args, db, false)?;
    print_places(&args, &f);
    // A moment to read (or copy) the addresses before the UI takes the screen.
    std::thread::sleep(Duration::from_secs(2));
    let ui = crate::tui::run(crate::tui::TuiOptions {
        db: f.db.clone(),
        ingest: None,
        theme: crate::tui::theme_from_env(theme),
        keymap: crate::tui::keymap::Keymap::default(),
        label: Some(format!("demo --fleet {}", f.db.display())),
        duration: args.duration.map(Duration::from_secs),
    });
    eprintln!("syncscope demo --fleet: stopping (a last pass over every forwarder and the stream)");
    let stopped = f.stop();
    ui?;
    stopped?;
    Ok(Outcome::Ok)
}

fn run_headless(args: &DemoArgs, db: Option<PathBuf>) -> Result<Outcome> {
    let mut f = Fleet::start(args, db, true)?;
    print_places(args, &f);
    eprintln!(
        "  watch it: syncscope --db {} sources   (or events -F, status, relays, failures)",
        f.db.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let cancel = f.cancel.clone();
    let duration = args.duration.map(Duration::from_secs);
    let started = Instant::now();
    let mut reader = None;
    let failed = rt.block_on(async {
        crate::commands::ingest::spawn_signal_handler(cancel.clone())?;
        let mut tick = tokio::time::interval(Duration::from_secs(3));
        tick.tick().await;
        let deadline = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = &mut deadline => break,
                _ = tick.tick() => {
                    if cancel.is_cancelled() {
                        break;
                    }
                    if !f.is_running() {
                        return Ok::<_, color_eyre::Report>(true);
                    }
                    progress(&f, started, &mut reader);
                }
            }
        }
        Ok(false)
    })?;
    if failed {
        // A part stopped on its own: say which, kill the rest (no last pass).
        let why = f
            .dead_server()
            .unwrap_or_else(|| "a part of the demo stopped".into());
        f.cancel.cancel();
        let r = f.shutdown(false);
        return Err(match r {
            Err(e) => e.wrap_err(why),
            Ok(_) => eyre!("{why}"),
        });
    }
    eprintln!("syncscope demo --fleet: stopping (a last pass over every forwarder and the stream)");
    let keep_dir = f.workspace.dir.clone();
    let mut report = f.stop()?;
    // The forwarders' rows count nothing (they publish, the nats: row stores).
    report.retain(|k, _| !k.starts_with("forwarder:"));
    crate::commands::ingest::print_report(&report);
    if args.keep {
        eprintln!("kept {}", keep_dir.display());
    }
    Ok(Outcome::Ok)
}

/// One line on stderr: what the simulator wrote, what the store holds.
fn progress(f: &Fleet, started: Instant, reader: &mut Option<crate::store::Reader>) {
    let Some(d) = f.demo() else {
        return;
    };
    if reader.is_none() {
        *reader = crate::store::open_reader(&f.db).ok();
    }
    let stored = reader
        .as_ref()
        .and_then(|r| r.max_event_id().ok())
        .map_or(String::new(), |n| format!("; store: {n} events"));
    eprintln!(
        "demo --fleet {:>4} s: {} Gerrit lines, {} Spacedrive rows written, {} relay scrapes{stored}",
        started.elapsed().as_secs(),
        d.stats.gerrit_lines.load(Ordering::Relaxed),
        d.stats.spacedrive_rows.load(Ordering::Relaxed),
        d.stats.scrapes.load(Ordering::Relaxed),
    );
}
