//! Command-line definitions (clap). Behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::export::Format;
use crate::model::Severity;

#[derive(Debug, Parser)]
#[command(
    name = "syncscope",
    version,
    about = "Replication and sync health monitor: Gerrit replication, ngit relays, Spacedrive sync logs, GitLab CI",
    long_about = "Without a subcommand, opens the terminal UI on the store and runs the config's \
sources in the background (--no-ingest: read-only, while a separate `syncscope ingest` writes).\n\
Try it with no set-up: `syncscope demo`."
)]
pub struct Cli {
    /// The store (SQLite). Default: syncscope.db in the XDG data dir, created on first use.
    #[arg(long, global = true, env = "SYNCSCOPE_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// The config file. Default: syncscope.toml in the XDG config dir (optional there).
    #[arg(long, global = true, env = "SYNCSCOPE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print full error reports (with backtraces when RUST_BACKTRACE is set).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Open the UI read-only: no sources are started (a separate `syncscope ingest` writes).
    #[arg(long)]
    pub no_ingest: bool,

    /// Colour theme of the UI: dark, light or mono (NO_COLOR forces mono).
    #[arg(long, value_name = "THEME")]
    pub theme: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read sources into the store: once (--once), or following them until Ctrl-C / SIGTERM.
    Ingest(IngestArgs),
    /// Query stored events: filter, then print as json, jsonl, sql, markdown or a table.
    Events(Box<EventsArgs>),
    /// List what could not be read, where, and why.
    Rejects(RejectsArgs),
    /// Show each source's health and what it delivered (as last recorded in the store).
    Sources(SourcesArgs),
    /// Show every ngit relay's connection and health (exit 1 if one is Dead or a target down).
    Relays(RelaysArgs),
    /// Gerrit replication status per remote and ref, as the replication-status plugin reports
    /// it (exit 1 if anything shown is FAILED).
    Status(StatusArgs),
    /// GitLab CI nightly failures: last night's failed and passed-with-warnings pipelines with
    /// their failed jobs and error patterns; --patterns by prevalence, --history per project;
    /// `failures link PATTERN ISSUE_URL` (exit 1 if a pipeline failed on the night asked).
    Failures(FailuresArgs),
    /// Simulate every system (real wire formats, real parsers, real ingest) into a temporary
    /// store: a failing Gerrit mirror, a dying ngit relay, an overflowing Spacedrive backfill.
    Demo(DemoArgs),
    /// Serve the store's derived state as Prometheus metrics on GET /metrics (read-only,
    /// beside any running ingest).
    Serve(ServeArgs),
    /// Check the store: SQLite's integrity check and syncscope's own invariants; prints `ok`
    /// or the problems and how to recover (exit 1 on problems). Never writes the store.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Copy what is readable of a damaged store into a new store at NEW (which must not
    /// exist), then check that.
    #[arg(long, value_name = "NEW")]
    pub recover: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: a free one; the bound address is printed on stderr).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub listen: String,

    /// A ref SCHEDULED for longer than this many seconds is counted stuck. Default 3600.
    #[arg(long, value_name = "SECS")]
    pub stuck_after: Option<i64>,
}

#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Events per second written by the simulated systems (1 to 100000).
    #[arg(long, default_value_t = 200, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rate: u32,

    /// Seed of the simulation: the same seed and rate write the same events (times aside).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,

    /// No screen: print the store path and a progress line every few seconds on stderr.
    #[arg(long)]
    pub headless: bool,

    /// Stop after SECS seconds (default: run until Ctrl-C / SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,

    /// Retention of the demo's store, as a span (10m, 12h, 7d; 0 keeps everything). Default 7d.
    #[arg(long, value_name = "SPAN", value_parser = crate::store::retention::parse_span)]
    pub retention: Option<u64>,

    /// Keep the demo's directory (the simulated systems' files and, without --db, the store).
    #[arg(long)]
    pub keep: bool,

    /// The fleet's shape on loopback: a real nats-server and Prometheus (child processes),
    /// three forwarder processes publishing the simulated systems to JetStream, this process
    /// as the jump host consuming them, and `syncscope serve` scraped by that Prometheus.
    #[arg(long)]
    pub fleet: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this project.
    #[arg(long, value_name = "P")]
    pub project: Option<String>,

    /// Only this remote (the target URI, or the node name for Gerrit <= 3.3).
    #[arg(long, value_name = "R")]
    pub remote: Option<String>,

    /// Answer as the replication-status plugin on this node would: only events stamped with
    /// this `instanceId` (`none`: the node without one). Default `[gerrit] instance_id`, else
    /// every instance side by side.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = RejectFormat::Table)]
    pub format: RejectFormat,

    /// A ref SCHEDULED for longer than this many seconds is flagged stuck. Default 3600.
    #[arg(long, value_name = "SECS")]
    pub stuck_after: Option<i64>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FailuresArgs {
    #[command(subcommand)]
    pub action: Option<FailuresAction>,

    /// The night (the date of its morning, YYYY-MM-DD). Default: the latest with pipelines.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub night: Option<String>,

    /// Only this project (path with namespace).
    #[arg(long, value_name = "P")]
    pub project: Option<String>,

    /// Output format: table for people, json for scripts, markdown for the nightly report.
    #[arg(short, long, value_enum, default_value_t = FailuresFormat::Table)]
    pub format: FailuresFormat,

    /// The error patterns of the last 30 nights, most prevalent first, NEW ones marked.
    #[arg(long, conflicts_with = "history")]
    pub patterns: bool,

    /// Each project's strip of the last 14 nights (failed / passed with warnings / passed / no run).
    #[arg(long)]
    pub history: bool,
}

#[derive(Debug, Subcommand)]
pub enum FailuresAction {
    /// Attach a known issue to an error pattern; it stays across runs and shows wherever the
    /// pattern does.
    Link {
        /// The pattern's id (or a unique prefix of at least 4 characters).
        pattern: String,
        /// The issue's URL.
        issue_url: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailuresFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct RelaysArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = RejectFormat::Table)]
    pub format: RejectFormat,

    /// Also list relays their target no longer tracks.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct SourcesArgs {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = RejectFormat::Table)]
    pub format: RejectFormat,
    /// List the source kinds this build knows (KIND:WHERE, what it reads, its config
    /// section) instead of the ingested sources; reads no store.
    #[arg(long)]
    pub kinds: bool,
}

#[derive(Debug, Default, Args)]
pub struct IngestArgs {
    /// A source as KIND:WHERE (repeatable); the kinds and their help come from the sources'
    /// registry. Without any, the config's `sources` are used.
    #[arg(
        short,
        long = "source",
        value_name = "KIND:WHERE",
        help = crate::sources::registry::source_short_help(),
        long_help = crate::sources::registry::source_help()
    )]
    pub sources: Vec<String>,

    /// Read what is there now and exit, instead of following.
    #[arg(long)]
    pub once: bool,

    /// Prune events received more than N days ago (0 keeps everything). Default 7.
    #[arg(long, value_name = "N")]
    pub retention_days: Option<u32>,

    /// The retention as a span: 10m, 12h, 7d, 2w (0 keeps everything); instead of
    /// --retention-days. Every table is pruned by it (see README, Retention).
    #[arg(long, value_name = "SPAN", conflicts_with = "retention_days",
          value_parser = crate::store::retention::parse_span)]
    pub retention: Option<u64>,

    /// How often to look for new data when following, in milliseconds. Default 500.
    #[arg(long, value_name = "MS")]
    pub poll_interval_ms: Option<u64>,

    /// How often `/metrics` targets (ngit-metrics) are scraped, in milliseconds. Default 5000.
    #[arg(long, value_name = "MS")]
    pub scrape_interval_ms: Option<u64>,

    /// The zone of server-local log timestamps (Gerrit's replication_log): UTC, local,
    /// +01:00, -03:00, or a name like Europe/Berlin. Default local.
    #[arg(long, value_name = "ZONE", allow_hyphen_values = true)]
    pub log_timezone: Option<String>,

    /// Events per transaction. Default 5000.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,

    /// Publish the sources' events to this JetStream stream instead of a store
    /// (nats://HOST:PORT/STREAM; credentials from [nats] in the config or SYNCSCOPE_NATS_*).
    #[arg(long, value_name = "nats://HOST:PORT/STREAM")]
    pub forward: Option<String>,

    /// Where --forward keeps its acknowledged checkpoints. Default: in the XDG state directory.
    #[arg(long, value_name = "PATH", requires = "forward")]
    pub forward_state: Option<std::path::PathBuf>,

    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args, Clone)]
pub struct EventsArgs {
    /// Only events at or after this time: "2 hours ago", "30m", "yesterday", "2025-12-03 10:00", RFC 3339.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only events at or before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Only these severities (comma list, exact): debug, info, warning, error.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub severity: Vec<Severity>,

    /// Only this severity and above.
    #[arg(long, value_name = "SEVERITY")]
    pub min_severity: Option<Severity>,

    /// Only these event types (comma list; StateTransition and state_transition both work).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub event_type: Vec<String>,

    /// Only these categories (comma list): lifecycle, data_flow, network, error, ...
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub category: Vec<String>,

    /// Only these systems (comma list): spacedrive, jsonl, gerrit, ngit, gitlab, ...
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub source: Vec<String>,

    /// Only these devices (comma list; an id or a prefix of 4+ characters).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub device: Vec<String>,

    /// Only events involving these peers (comma list; id or prefix).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub peer: Vec<String>,

    /// Only this session / push / pipeline (comma list; id or prefix of 4+ characters).
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub correlation_id: Vec<String>,

    /// Only events about these subjects (ref, relay URL, pipeline; comma list).
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub subject: Vec<String>,

    /// Only events whose summary contains TEXT (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,

    /// At most N events: the newest N, printed in time order (0 = no limit). Default 1000.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// Newest first (markdown, which lists the newest first as Spacedrive's does: oldest first).
    #[arg(long)]
    pub reverse: bool,

    /// Output format. Default json.
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,

    /// Write to FILE (atomically) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Keep running and print new events as they are stored (jsonl or table), like tail -f.
    #[arg(short = 'F', long, conflicts_with = "reverse")]
    pub follow: bool,

    /// Print only the number of matching events.
    #[arg(long, conflicts_with_all = ["format", "output"])]
    pub count: bool,
}

#[derive(Debug, Args)]
pub struct RejectsArgs {
    /// Only rejects of sources whose name contains TEXT.
    #[arg(long, value_name = "TEXT")]
    pub source: Option<String>,

    /// At most N rejects, newest first.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: u64,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = RejectFormat::Table)]
    pub format: RejectFormat,
}

/// `table` for people, `json` for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RejectFormat {
    Table,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn severity_lists_parse() {
        let cli =
            Cli::try_parse_from(["syncscope", "events", "--severity", "error,Warning"]).unwrap();
        let Some(Command::Events(a)) = cli.command else {
            panic!()
        };
        assert_eq!(a.severity, vec![Severity::Error, Severity::Warning]);
        assert!(Cli::try_parse_from(["syncscope", "events", "--severity", "loud"]).is_err());
    }

    #[test]
    fn demo_options() {
        let cli =
            Cli::try_parse_from(["syncscope", "demo", "--rate", "20000", "--headless"]).unwrap();
        let Some(Command::Demo(a)) = cli.command else {
            panic!()
        };
        assert_eq!(
            (a.rate, a.seed, a.headless, a.duration),
            (20_000, 1, true, None)
        );
        assert!(Cli::try_parse_from(["syncscope", "demo", "--rate", "0"]).is_err());
    }
}
