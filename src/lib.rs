//! syncscope: ingests replication and sync events from Gerrit, ngit relays, Spacedrive and
//! GitLab CI into one SQLite store, and shows them on the command line (and the TUI).
//!
//! Where things live:
//! - `model`: the common event model, timestamps, severities (no I/O)
//! - `store`: schema and migrations, the single writer, read queries
//! - `ingest`: the loop (sources -> bounded channel -> writer thread), file following
//! - `sources`: one module per real system's wire format
//! - `export`: output formats of `syncscope events`
//! - `cli`, `config`, `commands`: the command line
//! - `tui`: the terminal UI (the only module that knows ratatui and crossterm)
//! - `demo`: the simulator behind `syncscope demo` (real wire formats of every system)
//! - `sanitize`: making untrusted text safe for a terminal

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod ingest;
pub mod model;
pub mod sanitize;
pub mod serve;
pub mod sources;
pub mod store;
pub mod tui;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use commands::Outcome;

/// mimalloc instead of the system allocator, for every binary that links this crate (the
/// program, its tests and its benchmarks): ingest makes and frees a dozen strings per event
/// on three threads, and glibc's allocator spent more time freeing batches than parsing them
/// (Gerrit `replication_log` parsing: 2.2 -> 1.2 CPU-s per 400,000 lines). Not in a fuzz
/// build (`--cfg fuzzing`): the fuzz targets count every allocation with their own.
#[cfg(not(fuzzing))]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc options (numbers of `mi_option_t` in the vendored mimalloc 3 header).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Returns freed memory to the system after 10 ms instead of a second, and in small pieces
/// (no transparent huge pages): mimalloc's defaults held on to freed batches and raised
/// ingest's peak RSS from 51 to 99 MiB (now 58). An immediate return cost a quarter of the
/// `replication_log` throughput in `madvise` calls. Call first thing in `main`, before any
/// thread starts.
pub fn tune_allocator() {
    // SAFETY: plain setters of the allocator's options; called before other threads exist.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
    }
    // mimalloc reads that one at start-up, before `main`: tell the kernel too.
    #[cfg(target_os = "linux")]
    // SAFETY: a process flag; no pointers.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// The program: parse arguments, run the command, map the outcome to an exit code
/// (0 ok, 1 nothing matched / check failed, 2 usage or I/O error with a one-line message).
pub fn main_entry() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap prints them.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("syncscope: {}", usage_error_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    if let Err(e) = model::check_clock_env() {
        eprintln!("syncscope: {e}");
        return ExitCode::from(2);
    }
    let ui = match &cli.command {
        None => true,
        Some(Command::Demo(d)) => !d.headless,
        Some(_) => false,
    };
    if ui && std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // The UI's query worker turns superseded queries into (ignored) errors: with
        // RUST_BACKTRACE set, each would capture a backtrace (milliseconds, and ~100 MB once
        // symbolized). Panics keep theirs (RUST_BACKTRACE); RUST_LIB_BACKTRACE=1 restores
        // these. Set before any thread exists.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let verbose = cli.verbose || std::env::var_os("RUST_BACKTRACE").is_some();
    if verbose {
        use std::io::IsTerminal;
        let plain = std::env::var_os("NO_COLOR").is_some() || !std::io::stderr().is_terminal();
        let theme = if plain {
            color_eyre::config::Theme::new()
        } else {
            color_eyre::config::Theme::dark()
        };
        let _ = color_eyre::config::HookBuilder::default()
            .theme(theme)
            .install();
    }
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            if verbose {
                eprintln!("syncscope: {e:?}");
            } else {
                let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
                eprintln!("syncscope: {}", sanitize::one_line(&chain.join(": ")));
            }
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> color_eyre::Result<Outcome> {
    if let Some(Command::Demo(a)) = cli.command {
        // No set-up: no config is read, and only a --db on the command line is used (never
        // the configured store or SYNCSCOPE_DB).
        let db = commands::demo::explicit_db(cli.db.as_deref());
        return commands::demo::run(a, db, cli.theme.as_deref());
    }
    let config = config::Config::load(cli.config.as_deref())?;
    let db = config.db_path(cli.db.as_deref());
    let Some(command) = cli.command else {
        return commands::tui::run(cli.no_ingest, cli.theme.as_deref(), &config, db.clone())
            .map_err(|e| store::open::explain(&db, e));
    };
    let on = db.clone();
    let outcome = match command {
        Command::Ingest(a) => commands::ingest::run(a, &config, db),
        Command::Events(a) => commands::events::run(*a, &config, db),
        Command::Rejects(a) => commands::rejects::run(a, db),
        Command::Sources(a) => commands::sources::run(a, db),
        Command::Relays(a) => commands::relays::run(a, db),
        Command::Status(a) => commands::status::run(a, &config, db),
        Command::Failures(a) => commands::failures::run(a, &config, db),
        Command::Serve(a) => commands::serve::run(a, &config, db),
        Command::Check(a) => commands::check::run(a, db),
        Command::Demo(_) => unreachable!("handled above"),
    };
    outcome.map_err(|e| store::open::explain(&on, e))
}

/// clap's usage error on one line: the message and its hints, without the usage block.
fn usage_error_line(rendered: &str) -> String {
    let mut parts = Vec::new();
    let mut in_usage = false;
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") {
            in_usage = true;
            continue;
        }
        if line.is_empty() {
            in_usage = false;
            continue;
        }
        if in_usage || line.starts_with("For more information") {
            continue;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    format!("{} (see --help)", sanitize::one_line(&parts.join(" ")))
}

/// `syncscope events | head` is not an error.
fn is_broken_pipe(e: &color_eyre::Report) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}

#[cfg(test)]
mod allocator_tests {
    /// The option numbers still name what they did when written: their defaults in options.c
    /// (no test calls `tune_allocator`).
    #[test]
    fn mimalloc_option_numbers_match_the_header() {
        // SAFETY: reads of options.
        let (purge, thp) = unsafe {
            (
                libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(super::MI_OPTION_ALLOW_THP),
            )
        };
        assert_eq!((purge, thp), (1000, 1), "purge_delay 1000 ms, allow_thp on");
    }
}
