//! The demo's "hosts": each a separate `syncscope ingest --forward` process (this executable)
//! running some of the simulated systems' sources and publishing to JetStream, with its own
//! state file. A [`Supervisor`] watches one of them from inside the jump host's ingest, as a
//! source: its status (pid, sources) is the store's, so the TUI's sources pane shows it, and a
//! forwarder that dies is a source fault there (and a line on stderr when headless), then
//! restarted after a pause; its state file makes the restart resend nothing twice.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use color_eyre::eyre::{bail, Result};

use super::procs::{clean_env, Proc};
use crate::ingest::{SourceCtx, SourceState};
use crate::sources::Source;

/// How long a forwarder may take to save its state and exit after SIGTERM.
const GRACE: Duration = Duration::from_secs(10);
/// The pause before a dead forwarder is started again.
const RESTART_AFTER: Duration = Duration::from_secs(2);

/// One simulated host: a forwarder process of its own.
#[derive(Debug, Clone)]
pub struct Host {
    /// `host-1`, …: names the forwarder in messages and its source key.
    pub name: String,
    /// Its sources, `KIND:WHERE`.
    pub sources: Vec<String>,
    /// Its `--forward-state` file.
    pub state: PathBuf,
}

/// What every forwarder is started with.
#[derive(Debug, Clone)]
pub struct Launch {
    /// This executable.
    pub exe: PathBuf,
    /// `nats://127.0.0.1:PORT/STREAM`.
    pub url: String,
    /// The children's config file (the user's config is never read).
    pub config: PathBuf,
    /// The demo's poll interval, ms.
    pub poll_ms: u64,
}

impl Launch {
    /// `syncscope ingest --forward URL --forward-state STATE --source …` for `host`.
    pub fn command(&self, host: &Host, once: bool) -> Command {
        let mut cmd = Command::new(&self.exe);
        clean_env(&mut cmd);
        // --db is never opened by a forwarder; it names a file inside the demo's directory
        // so that no default store is ever looked at.
        let unused = host.state.with_extension("unused.db");
        cmd.arg("--db")
            .arg(unused)
            .arg("--config")
            .arg(&self.config)
            .args(["ingest", "--forward", &self.url, "--forward-state"])
            .arg(&host.state)
            .arg("--poll-interval-ms")
            .arg(self.poll_ms.to_string())
            // The simulator writes Gerrit's replication_log in UTC.
            .args(["--log-timezone", "UTC"]);
        for s in &host.sources {
            cmd.arg("--source").arg(s);
        }
        if once {
            cmd.arg("--once");
        }
        cmd
    }

    pub fn spawn(&self, host: &Host) -> Result<Proc> {
        Proc::spawn(
            &format!("forwarder {}", host.name),
            self.command(host, false),
        )
    }

    /// `--once`: forwards what the sources hold now (what a stopped follower had not yet
    /// had acknowledged), then exits; an error when it fails.
    pub fn run_once(&self, host: &Host, timeout: Duration) -> Result<()> {
        let mut p = Proc::spawn(
            &format!("forwarder {} (--once)", host.name),
            self.command(host, true),
        )?;
        match p.wait_timeout(timeout) {
            Some(s) if s.success() => Ok(()),
            Some(s) => bail!("{} {}: {}", p.name, Proc::describe(s), p.last_line()),
            None => bail!(
                "{} did not finish within {} s: {}",
                p.name,
                timeout.as_secs(),
                p.last_line()
            ),
        }
    }
}

/// The source key a host's forwarder reports under.
pub fn key(host: &Host) -> String {
    format!("forwarder:{}", host.name)
}

/// Watches one forwarder process from the jump host's ingest (see the module doc).
pub struct Supervisor {
    pub host: Host,
    pub launch: Launch,
    /// The process already started (its pid printed at start), if any.
    pub first: Option<Proc>,
    /// Print deaths and restarts on stderr (headless; the TUI shows the source status).
    pub echo: bool,
}

impl Supervisor {
    fn describe(&self, pid: u32) -> String {
        format!("pid {pid}: {}", self.host.sources.join(" "))
    }
}

impl Source for Supervisor {
    fn run(mut self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let mut restarts = 0u32;
        let mut next = self.first.take();
        loop {
            let mut p = match next.take() {
                Some(p) => p,
                None => match self.launch.spawn(&self.host) {
                    Ok(p) => {
                        if self.echo {
                            eprintln!(
                                "syncscope demo: forwarder {} restarted: pid {}",
                                self.host.name,
                                p.pid()
                            );
                        }
                        p
                    }
                    Err(e) => {
                        let msg = format!("{e:#}; trying again in {} s", RESTART_AFTER.as_secs());
                        ctx.status(SourceState::Fault, msg.clone());
                        if self.echo {
                            eprintln!("syncscope demo: {msg}");
                        }
                        if !ctx.sleep(RESTART_AFTER) {
                            return Ok(());
                        }
                        continue;
                    }
                },
            };
            let pid = p.pid();
            let running = if restarts == 0 {
                self.describe(pid)
            } else {
                format!("{} (restart {restarts})", self.describe(pid))
            };
            ctx.status(SourceState::Ok, running);
            let status = loop {
                if ctx.cancelled() {
                    // An orderly stop: the forwarder saves what JetStream acknowledged.
                    p.terminate(GRACE);
                    return Ok(());
                }
                if let Some(s) = p.exited() {
                    break s;
                }
                ctx.sleep(Duration::from_millis(100));
            };
            let msg = format!(
                "forwarder {} (pid {pid}) {}: {}; restarting in {} s",
                self.host.name,
                Proc::describe(status),
                p.last_line(),
                RESTART_AFTER.as_secs()
            );
            ctx.status(SourceState::Fault, msg.clone());
            if self.echo {
                eprintln!("syncscope demo: {msg}");
            }
            drop(p);
            restarts += 1;
            if !ctx.sleep(RESTART_AFTER) {
                return Ok(());
            }
        }
    }
}

/// The hosts of the demo: the Gerrit primary (its stream and replication_log), the legacy
/// Gerrit, and the Spacedrive device; two source kinds over three forwarders.
pub fn hosts(
    dir: &Path,
    gerrit_primary: &Path,
    gerrit_legacy: &Path,
    gerrit_log: &Path,
    sync_db: &Path,
) -> Vec<Host> {
    use crate::model::names::kind;
    let src = |k: &str, p: &Path| format!("{k}:{}", p.display());
    let host = |n: usize, sources: Vec<String>| Host {
        name: format!("host-{n}"),
        sources,
        state: dir.join(format!("host-{n}.forward-state")),
    };
    vec![
        host(
            1,
            vec![
                src(kind::GERRIT_EVENTS, gerrit_primary),
                src(kind::GERRIT_LOG, gerrit_log),
            ],
        ),
        host(2, vec![src(kind::GERRIT_EVENTS, gerrit_legacy)]),
        host(3, vec![src(kind::SPACEDRIVE_DB, sync_db)]),
    ]
}
