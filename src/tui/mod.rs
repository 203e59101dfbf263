//! The terminal UI. One `select!` loop owns the [`app::AppState`]: terminal input becomes
//! actions through the keymap, the query worker's answers arrive as actions too, `update`
//! applies them, and `view` draws the visible window at most 15 times a second.
//!
//! Where things live: `app` (state + pure `update`, routing keys to the pane on screen),
//! `action`, `keymap` (the one key table), `command` (the `:` line), `filters` (filter and
//! find), `sort` (sortable columns), `export` (`:w`), `worker` (the query worker), `view`
//! (layout, status bar, help), `panes/` (one per pane: its accessors, keys and render),
//! `theme`, `terminal` (raw mode, 16 colours, restore on quit, panic and signals).

pub mod action;
pub mod app;
pub mod command;
pub mod export;
pub mod filters;
pub mod keymap;
pub mod panes;
pub mod sort;
pub mod terminal;
pub mod theme;
pub mod view;
pub mod worker;

#[cfg(test)]
mod render_tests;

use std::path::PathBuf;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::ingest::IngestOptions;
use crate::model::Timestamp;
use crate::sources::SourceSpec;
use action::Action;
use app::{update, AppState, Command};
use keymap::Keymap;
use theme::ThemeName;
use worker::QueryWorker;

/// The panes, switched with 1-6 and Tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Overview,
    Replication,
    Relays,
    Timeline,
    Session,
    /// GitLab CI nightly failures.
    Ci,
}

impl Pane {
    pub const ALL: [Pane; 6] = [
        Pane::Overview,
        Pane::Replication,
        Pane::Relays,
        Pane::Timeline,
        Pane::Session,
        Pane::Ci,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Pane::Overview => "Overview",
            Pane::Replication => "Replication",
            Pane::Relays => "Relays",
            Pane::Timeline => "Timeline",
            Pane::Session => "Session",
            Pane::Ci => "CI",
        }
    }

    /// For narrow terminals.
    pub fn short(self) -> &'static str {
        match self {
            Pane::Overview => "Overview",
            Pane::Replication => "Repl",
            Pane::Relays => "Relays",
            Pane::Timeline => "Timeline",
            Pane::Session => "Session",
            Pane::Ci => "CI",
        }
    }
}

/// Redraws at most this often (the dirty flag gates it further).
const FRAME: Duration = Duration::from_millis(66);
/// Ticks move ages and expire messages.
const TICK: Duration = Duration::from_millis(250);

pub struct TuiOptions {
    pub db: PathBuf,
    /// Sources to ingest in the background while the UI runs (None: read-only).
    pub ingest: Option<(Vec<SourceSpec>, IngestOptions)>,
    pub theme: ThemeName,
    pub keymap: Keymap,
    /// What the store is called on the status bar (the demo says so).
    pub label: Option<String>,
    /// Quit by itself after this long (`demo --duration`).
    pub duration: Option<Duration>,
}

/// Runs the UI until the user quits (or SIGTERM/SIGHUP). The terminal is restored on every
/// way out, a panic included. An ingest error is returned after the terminal is back.
pub fn run(opts: TuiOptions) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?;
    runtime.block_on(run_async(opts))
}

async fn run_async(opts: TuiOptions) -> Result<()> {
    let cancel = CancellationToken::new();
    let ingesting = opts
        .ingest
        .as_ref()
        .is_some_and(|(specs, _)| !specs.is_empty());
    // With sources, this process is the store's one writer for the UI's life (refused at
    // once if another is), and opens it once before the screen is taken: an old store is
    // upgraded here, so what the upgrade says on stderr is seen, and a store the sources are
    // to fill exists before the reader opens it. Without sources nothing is written.
    let _writer_lock = if ingesting {
        let lock = crate::store::lock::acquire(&opts.db)?;
        drop(crate::store::open(&opts.db)?);
        Some(lock)
    } else {
        None
    };
    // Why the in-process ingest stopped (a full disk: the store cannot record it), for the
    // status line.
    let (stopped_tx, stopped_rx) = mpsc::channel::<String>(1);
    let ingest = match opts.ingest {
        Some((specs, iopts)) if !specs.is_empty() => {
            let db = opts.db.clone();
            let c = cancel.clone();
            let sources = crate::sources::plan(&specs, &iopts)?;
            Some(tokio::spawn(async move {
                let r = crate::ingest::run(db, sources, iopts, c.clone()).await;
                if let Err(e) = &r {
                    // After the UI quit nobody listens: the error is printed below.
                    let _ = stopped_tx.try_send(format!("{e:#}"));
                }
                r
            }))
        }
        _ => None,
    };
    let (tx, rx) = mpsc::channel(8);
    let worker = match QueryWorker::start(opts.db.clone(), tx) {
        Ok(b) => b,
        Err(e) => {
            cancel.cancel();
            return Err(e);
        }
    };
    let label = opts.label.unwrap_or_else(|| opts.db.display().to_string());
    let ingesting = ingest.is_some();
    let result = {
        let mut term = terminal::Terminal::enter()?;
        let size = term.size();
        let mut state = AppState::new(label, opts.theme, size, Timestamp::now());
        state.ingesting = ingesting;
        state.set_keymap(&opts.keymap);
        let run = ui_loop(&mut term, state, &opts.keymap, worker, rx, stopped_rx);
        match opts.duration {
            Some(d) => tokio::time::timeout(d, run).await.unwrap_or(Ok(())),
            None => run.await,
        }
    };
    cancel.cancel();
    if let Some(task) = ingest {
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(Err(e))) => {
                eprintln!(
                    "syncscope: ingest stopped with an error: {}",
                    crate::sanitize::one_line(&format!("{e:#}"))
                )
            }
            Ok(Err(e)) => eprintln!("syncscope: the ingest task panicked: {e}"),
            Err(_) => eprintln!("syncscope: ingest did not stop within 10 s"),
            Ok(Ok(Ok(_))) => {}
        }
    }
    result
}

async fn ui_loop(
    term: &mut terminal::Terminal,
    mut state: AppState,
    keymap: &Keymap,
    mut worker: QueryWorker,
    mut rx: mpsc::Receiver<Box<worker::Loaded>>,
    mut ingest_stopped: mpsc::Receiver<String>,
) -> Result<()> {
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut signals = terminal::Signals::new()?;
    worker.request(state.request());
    term.draw(&state, keymap)?;
    // Debug builds only: lets the PTY tests check that a panic restores the terminal.
    #[cfg(debug_assertions)]
    if std::env::var_os("SYNCSCOPE_TEST_PANIC").is_some() {
        panic!("SYNCSCOPE_TEST_PANIC: a panic after the first frame, on purpose");
    }
    let mut dirty = false;
    loop {
        let mut actions: Vec<Action> = Vec::new();
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind == KeyEventKind::Press => {
                    if let Some(a) = keymap.action(state.mode, &k) {
                        actions.push(a);
                    }
                }
                Some(Ok(TermEvent::Resize(w, h))) => actions.push(Action::Resize(w, h)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e).wrap_err("cannot read the terminal"),
                None => return Ok(()),
            },
            Some(loaded) = rx.recv() => {
                actions.push(Action::Loaded(loaded));
                // Coalesce a burst of answers into one frame.
                while let Ok(more) = rx.try_recv() {
                    actions.push(Action::Loaded(more));
                }
            }
            Some(why) = ingest_stopped.recv() => actions.push(Action::IngestStopped(why)),
            _ = tick.tick() => actions.push(Action::Tick(Timestamp::now().as_nanos())),
            _ = frame.tick() => {
                if dirty {
                    term.draw(&state, keymap)?;
                    dirty = false;
                }
                continue;
            }
            _ = signals.recv() => return Ok(()),
        }
        let input_action = actions
            .iter()
            .any(|a| !matches!(a, Action::Loaded(_) | Action::Tick(_)));
        // A tick alone redraws only when what it moves is shown: the second (ages, the
        // pause clock) or a message expiring.
        let ticks_only = actions.iter().all(|a| matches!(a, Action::Tick(_)));
        let (second_before, flash_before) =
            (state.now.as_nanos() / 1_000_000_000, state.flash.is_some());
        for a in actions {
            match update(&mut state, a) {
                Some(Command::Quit) => return Ok(()),
                Some(Command::Copy(text)) => term.copy(&text),
                Some(Command::Redraw) => term.clear()?,
                Some(Command::Write(path, table)) => {
                    // The one write the UI does; the result is said on the message line.
                    let msg = match export::write(&path, &table) {
                        Ok(()) => format!(
                            "wrote {} {} to {}",
                            table.rows.len(),
                            table.what,
                            path.display()
                        ),
                        Err(e) => format!(":w failed: {e:#}"),
                    };
                    update(&mut state, Action::Notice(msg));
                }
                None => {}
            }
        }
        worker.request(state.request());
        let moved = state.now.as_nanos() / 1_000_000_000 != second_before
            || state.flash.is_some()
            || flash_before;
        if ticks_only && !moved {
            continue;
        }
        if input_action {
            // Keys answer at once, not at the next frame tick.
            term.draw(&state, keymap)?;
            dirty = false;
        } else {
            dirty = true;
        }
    }
}

/// The default store label and the `NO_COLOR` rule, for the entry points.
pub fn theme_from_env(configured: Option<&str>) -> ThemeName {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    ThemeName::resolve(configured, no_color)
}
