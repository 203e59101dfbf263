//! `syncscope demo`: the simulator ([`crate::demo`]) and the real ingest loop into a store,
//! which is temporary unless `--db` is given.
//!
//! [`start_background`] starts both and returns at once; a front end (the TUI, or the headless
//! progress loop of [`run`]) shows the store while they run, then calls
//! [`Background::stop`].

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use color_eyre::eyre::{eyre, Result, WrapErr};
use tokio_util::sync::CancellationToken;

use super::Outcome;
use crate::cli::DemoArgs;
use crate::demo::{self, Demo, DemoOptions};
use crate::ingest::{self, IngestOptions, IngestReport};
use crate::model::LogZone;

/// The ingest options of the demo: fast polling and scraping, statuses kept in the store
/// only (whatever shows the demo owns the terminal), the log read in UTC as it is written.
pub fn ingest_options() -> IngestOptions {
    IngestOptions {
        once: false,
        retention_days: 7,
        retention_secs: None,
        poll_interval: Duration::from_millis(150),
        scrape_interval: Duration::from_secs(1),
        batch_size: 5000,
        log_status: false,
        kinds: crate::ingest::kinds::KindSettings::default().with_log_zone(LogZone::Utc),
    }
}

/// The demo's scratch directory: the simulated files and, without `--db`, the store.
/// Removed when dropped, unless kept.
#[derive(Debug)]
pub struct Workspace {
    pub dir: PathBuf,
    pub keep: bool,
}

impl Workspace {
    pub fn create(keep: bool) -> Result<Workspace> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("syncscope-demo-{}-{nanos:08x}", std::process::id()));
        std::fs::create_dir(&dir)
            .wrap_err_with(|| format!("cannot create the demo directory {}", dir.display()))?;
        Ok(Workspace { dir, keep })
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running demo: the simulator, the ingest loop feeding the store, and their scratch space.
pub struct Background {
    /// The store being filled.
    pub db: PathBuf,
    /// Cancelling stops the ingest (Ctrl-C handlers, the TUI's quit); [`Background::stop`]
    /// then stops the simulator.
    pub cancel: CancellationToken,
    demo: Option<Demo>,
    ingest: Option<JoinHandle<Result<IngestReport>>>,
    pub workspace: Workspace,
}

impl Background {
    pub fn demo(&self) -> Option<&Demo> {
        self.demo.as_ref()
    }

    /// Whether the demo still runs (false once cancelled, or when a part stopped on an error:
    /// a front end then calls [`Background::stop`], which returns the error).
    pub fn is_running(&self) -> bool {
        !self.cancel.is_cancelled()
            && self.ingest.as_ref().is_some_and(|t| !t.is_finished())
            && self.demo.as_ref().is_some_and(Demo::is_running)
    }

    /// Stops everything, waits for it (what was read is committed), and returns what the
    /// ingest stored per source. The scratch directory goes when `self` is dropped.
    pub fn stop(mut self) -> Result<IngestReport> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<IngestReport> {
        self.cancel.cancel();
        let report = match self.ingest.take() {
            Some(t) => t
                .join()
                .map_err(|_| eyre!("the demo's ingest thread panicked"))
                .and_then(|r| r),
            None => Ok(IngestReport::new()),
        };
        let sim = self.demo.take().map_or(Ok(()), Demo::stop);
        let report = report?;
        sim?;
        Ok(report)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Starts the simulator and the ingest (on a thread with its own async runtime) and returns
/// at once. `db`: the store to fill; None for one in the scratch directory.
pub fn start_background(args: &DemoArgs, db: Option<PathBuf>) -> Result<Background> {
    let workspace = Workspace::create(args.keep)?;
    let db = db.unwrap_or_else(|| workspace.dir.join("syncscope-demo.db"));
    // Its folder owner-only, as every folder syncscope makes for a store.
    crate::store::lock::create_store_dir(&db)?;
    // The store is created before anything runs, so a bad --db (or one another process is
    // writing) fails here, not in a thread.
    drop(crate::store::lock::acquire(&db)?);
    drop(crate::store::open(&db)?);
    let cancel = CancellationToken::new();
    // The simulator has its own token: it stops after the ingest has finished, so the last
    // scrapes never find the /metrics servers gone.
    let demo = demo::start(
        DemoOptions {
            rate: args.rate,
            seed: args.seed,
            dir: workspace.dir.join("systems"),
        },
        CancellationToken::new(),
    )?;
    let specs = demo.specs.clone();
    let mut opts = ingest_options();
    opts.kinds = opts.kinds.with(demo.gitlab.clone());
    opts.retention_secs = args.retention;
    let (c, store) = (cancel.clone(), db.clone());
    let ingest = std::thread::Builder::new()
        .name("syncscope-demo-ingest".into())
        .spawn(move || {
            // The UI in this process answers keys first; the demo's systems and their
            // ingest take the CPU that is left.
            crate::ingest::lower_thread_priority(10);
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .on_thread_start(|| crate::ingest::lower_thread_priority(10))
                .enable_all()
                .build()
                .wrap_err("cannot start the async runtime");
            let r = rt.and_then(|rt| {
                let sources = crate::sources::plan(&specs, &opts)?;
                rt.block_on(ingest::run(store, sources, opts, c.clone()))
            });
            // However it ended, the simulator has no reader any more.
            c.cancel();
            r
        });
    let ingest = match ingest {
        Ok(t) => t,
        Err(e) => {
            cancel.cancel();
            let _ = demo.stop();
            return Err(e).wrap_err("cannot start the demo's ingest");
        }
    };
    Ok(Background {
        db,
        cancel,
        demo: Some(demo),
        ingest: Some(ingest),
        workspace,
    })
}

/// `syncscope demo`. `db` is the store given with `--db`, if any; `theme` from `--theme`.
pub fn run(args: DemoArgs, db: Option<PathBuf>, theme: Option<&str>) -> Result<Outcome> {
    use std::io::IsTerminal;
    if args.fleet {
        return crate::demo::fleet::run(args, db, theme);
    }
    if args.headless {
        return run_headless(&args, db);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        color_eyre::eyre::bail!(
            "the demo's UI needs a terminal; without one use `syncscope demo --headless`"
        );
    }
    if let Some(t) = theme.filter(|t| crate::tui::theme::ThemeName::parse(t).is_none()) {
        color_eyre::eyre::bail!("unknown theme {t:?}: dark, light or mono");
    }
    let bg = start_background(&args, db)?;
    let temporary = bg.db.starts_with(&bg.workspace.dir) && !args.keep;
    let label = format!(
        "demo {}{}",
        bg.db.display(),
        if temporary { " (temporary)" } else { "" }
    );
    let ui = crate::tui::run(crate::tui::TuiOptions {
        db: bg.db.clone(),
        ingest: None,
        theme: crate::tui::theme_from_env(theme),
        keymap: crate::tui::keymap::Keymap::default(),
        label: Some(label),
        duration: args.duration.map(std::time::Duration::from_secs),
    });
    bg.cancel.cancel();
    let stopped = bg.stop();
    ui?;
    stopped?;
    Ok(Outcome::Ok)
}

fn run_headless(args: &DemoArgs, db: Option<PathBuf>) -> Result<Outcome> {
    let bg = start_background(args, db)?;
    let shown = bg.db.display().to_string();
    let temporary = bg.db.starts_with(&bg.workspace.dir) && !args.keep;
    eprintln!(
        "syncscope demo: {} events/s, seed {}; store {shown}{}",
        args.rate,
        args.seed,
        if temporary {
            " (removed on exit; --keep keeps it)"
        } else {
            ""
        }
    );
    if let Some(d) = bg.demo() {
        for s in &d.specs {
            eprintln!("  source {}", s.key());
        }
    }
    eprintln!(
        "  watch it: syncscope --db {shown} events -F --format table   (or status, relays, sources)"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    let cancel = bg.cancel.clone();
    let duration = args.duration.map(Duration::from_secs);
    let started = std::time::Instant::now();
    rt.block_on(async {
        super::ingest::spawn_signal_handler(cancel.clone())?;
        let mut tick = tokio::time::interval(Duration::from_secs(3));
        tick.tick().await;
        let deadline = async {
            match duration {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline);
        let mut reader = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = &mut deadline => break,
                _ = tick.tick() => {
                    if !bg.is_running() {
                        // A part stopped on an error: stop the rest; stop() reports it.
                        cancel.cancel();
                        break;
                    }
                    progress(&bg, started, &mut reader);
                }
            }
        }
        Ok::<(), color_eyre::Report>(())
    })?;
    let keep_dir = bg.workspace.dir.clone();
    let report = bg.stop()?;
    super::ingest::print_report(&report);
    if args.keep {
        eprintln!("kept {}", keep_dir.display());
    }
    Ok(Outcome::Ok)
}

/// One line on stderr: how far the story is, what was written, what is stored.
fn progress(
    bg: &Background,
    started: std::time::Instant,
    reader: &mut Option<crate::store::Reader>,
) {
    let Some(d) = bg.demo() else {
        return;
    };
    let st = &d.stats;
    let vt = st.virtual_ms.load(Ordering::Relaxed);
    let cycle_ms = demo::story::CYCLE / demo::MS;
    let t = vt % cycle_ms;
    if reader.is_none() && bg.db.exists() {
        *reader = crate::store::open_reader(&bg.db).ok();
    }
    let stored = reader
        .as_ref()
        .and_then(|r| r.max_event_id().ok())
        .map_or(String::new(), |n| format!("; store: {n} events"));
    let opening = demo::story::OPENING / demo::MS;
    let behind = (opening + started.elapsed().as_millis() as u64).saturating_sub(vt);
    let lag = if behind > 2000 {
        format!(
            " (story {} s behind the clock: lower --rate)",
            behind / 1000
        )
    } else {
        String::new()
    };
    eprintln!(
        "demo {:>4} s: story {}:{:02}/{}:{:02} of cycle {}{lag}: {} Gerrit lines, {} Spacedrive rows, {} scrapes{stored}",
        started.elapsed().as_secs(),
        t / 60_000,
        t / 1000 % 60,
        cycle_ms / 60_000,
        cycle_ms / 1000 % 60,
        vt / cycle_ms + 1,
        st.gerrit_lines.load(Ordering::Relaxed),
        st.spacedrive_rows.load(Ordering::Relaxed),
        st.scrapes.load(Ordering::Relaxed),
    );
}

/// Whether `--db` was given on the command line (the SYNCSCOPE_DB variable does not count:
/// a demo never writes into the store a user works with unless asked in so many words).
pub fn db_given_on_command_line() -> bool {
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == "--db" || a.starts_with("--db=")
    })
}

/// For callers that only have a path: the store of a demo run given `--db`.
pub fn explicit_db(db: Option<&Path>) -> Option<PathBuf> {
    if db_given_on_command_line() {
        db.map(Path::to_path_buf)
    } else {
        None
    }
}
