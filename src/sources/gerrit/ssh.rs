//! `gerrit-ssh:[user@]host[:port]`: runs the system's `ssh` client (batch mode, so never a
//! password prompt; the user's ssh config and agent apply) with `gerrit stream-events`
//! subscribed to the replication events, reads its output as `gerrit-events:` does, and when the
//! stream drops reconnects with capped exponential backoff and jitter. Gerrit does not replay
//! what happened meanwhile, so each outage is stored as a visible gap event.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use color_eyre::eyre::{bail, Result, WrapErr};

use super::events::StreamLines;
use crate::ingest::{SourceCtx, SourceState};
use crate::model::{format_rfc3339, gerrit, Event, Severity, Timestamp};
use crate::sources::backoff::{self, Backoff};
use crate::sources::lines::{read_pipe, Pending, PipeReader};
use crate::sources::Source;

/// What the stream subscribes to (gerrit.md §1); `dropped-output` always comes.
/// `ref-updated` tells of refs deleted on the primary (a zero `newRev`), which leave the
/// plugin's answer.
const SUBSCRIBE: &[&str] = &[
    "ref-updated",
    "ref-replication-scheduled",
    "ref-replicated",
    "ref-replication-done",
    "project-deletion-replication-scheduled",
    "project-deletion-replication-succeeded",
    "project-deletion-replication-failed",
    "project-deletion-replication-done",
    "fetch-ref-replication-scheduled",
    "fetch-ref-replicated",
    "fetch-ref-replication-done",
];
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(60);
/// A new connection still running after this long is up (ssh prints nothing on success).
const GRACE: Duration = Duration::from_secs(2);

/// Where to connect: `[user@]host[:port]`, port 29418 by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub destination: String,
    pub port: u16,
}

impl SshTarget {
    pub fn parse(text: &str) -> Result<SshTarget, String> {
        let text = text.trim();
        let (dest, port) = match text.rsplit_once(':') {
            Some((d, p)) => (
                d,
                p.parse::<u16>()
                    .map_err(|_| format!("'{text}': port '{p}' is not a number"))?,
            ),
            None => (text, 29418),
        };
        let host = dest.rsplit('@').next().unwrap_or_default();
        if host.is_empty() || dest.starts_with('-') || dest.contains(char::is_whitespace) {
            return Err(format!("'{text}' is not [user@]host[:port]"));
        }
        Ok(SshTarget {
            destination: dest.to_string(),
            port,
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new("ssh");
        c.args(["-p", &self.port.to_string()])
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "ConnectTimeout=15"])
            .args(["-o", "ServerAliveInterval=15"])
            .args(["-o", "ServerAliveCountMax=3"])
            .arg("-T")
            .arg(&self.destination)
            .args(["gerrit", "stream-events"]);
        for t in SUBSCRIBE {
            c.args(["-s", t]);
        }
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut c);
        c
    }
}

/// ssh ends when the ingest does, even by `kill -9`: otherwise it stays connected to Gerrit,
/// its output unread, until Gerrit next writes to it (Linux: `PR_SET_PDEATHSIG`, sent when the
/// thread that started it, the source's, ends).
fn die_with_parent(c: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
        unsafe {
            let parent = libc::getpid();
            c.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent died before the prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = c;
}

pub struct SshStreamSource {
    key: String,
    target: SshTarget,
    /// Gerrit's `replicationRetry` plus slack.
    retry_window: Duration,
}

impl SshStreamSource {
    pub fn new(key: String, target: SshTarget) -> Self {
        SshStreamSource {
            key,
            target,
            retry_window: super::config::GerritConfig::default().retry_window(),
        }
    }

    /// Sets `replicationRetry` plus slack: a failure not retried within it is given up.
    pub fn with_retry_window(mut self, window: Duration) -> Self {
        self.retry_window = window;
        self
    }
}

/// The last lines ssh wrote on stderr (why it failed).
fn collect_stderr(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut err) = child.stderr.take() {
        let shared = lines.clone();
        let _ = std::thread::Builder::new()
            .name("ssh-stderr".into())
            .spawn(move || {
                let mut text = String::new();
                let _ = err.read_to_string(&mut text);
                if let Ok(mut l) = shared.lock() {
                    *l = text
                        .lines()
                        .filter(|l| !l.trim().is_empty())
                        .map(|l| crate::sanitize::one_line(l).into_owned())
                        .collect();
                }
            });
    }
    lines
}

/// Waits up to `d` for `child` to exit; true when it is still running (the connection is up).
fn still_running_after(child: &mut Child, d: Duration, ctx: &SourceCtx) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until && !ctx.cancelled() {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    matches!(child.try_wait(), Ok(None))
}

/// A small jitter (up to a fifth of `d`) so many monitors do not reconnect in step.
fn gap_event(key: &str, from: Timestamp, to: Timestamp) -> Event {
    let hms = |t: Timestamp| t.to_datetime().format("%H:%M:%S").to_string();
    let mut e = Event::new(
        from,
        gerrit::SOURCE,
        "stream_gap",
        "stream",
        Severity::Warning,
        format!(
            "stream lost {}-{} UTC, events in between may be missing",
            hms(from),
            hms(to)
        ),
    );
    e.device_id = Some(key.to_string());
    e.details = Some(
        serde_json::json!({
            "from": format_rfc3339(from),
            "to": format_rfc3339(to),
            "seconds": (to.as_nanos() - from.as_nanos()) / 1_000_000_000,
        })
        .to_string(),
    );
    e.duration_ms = Some((to.as_nanos() - from.as_nanos()) / 1_000_000);
    e
}

impl Source for SshStreamSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        // One numbering of same-second events across reconnects and restarts (the checkpoint):
        // Gerrit never sends an event twice, so an event after a reconnect is a new one even
        // when it is identical to one before it in the same second.
        let mut parser = StreamLines::default().with_retry_window(self.retry_window);
        if let Some(o) = ctx
            .checkpoint
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
        {
            parser.ordinals = o;
        }
        // A previous run read this stream up to its last event; what Gerrit sent from then until
        // this run connects was never read (Gerrit does not replay): a gap, as for a drop.
        let mut lost_since: Option<Timestamp> = parser.ordinals.newest().map(Timestamp::from_nanos);
        // The policy's backoff: a stream has no interval, so the default base (1 s).
        let mut backoff = Backoff::new(backoff::DEFAULT_BASE);
        loop {
            if ctx.cancelled() {
                return Ok(());
            }
            let started = Instant::now();
            let mut child = match self.target.command().spawn() {
                Ok(c) => c,
                Err(e) if ctx.once => {
                    bail!("cannot run ssh for {}: {e}", self.key)
                }
                Err(e) => {
                    let wait = backoff.next();
                    ctx.status(
                        SourceState::Fault,
                        format!("cannot run ssh: {e}; retrying in {}", backoff::shown(wait)),
                    );
                    if !ctx.sleep(wait) {
                        return Ok(());
                    }
                    continue;
                }
            };
            let stderr = collect_stderr(&mut child);
            let Some(stdout) = child.stdout.take() else {
                bail!("ssh for {} has no output pipe", self.key);
            };
            let pipe = PipeReader::spawn(stdout, "ssh")?;
            if still_running_after(&mut child, GRACE, ctx) {
                ctx.status(SourceState::Ok, "");
                if let Some(from) = lost_since.take() {
                    let mut p = Pending::new();
                    p.push(gap_event(&self.key, from, Timestamp::now()));
                    p.send(ctx, None)?;
                }
            }
            let name = format!(
                "{} (connected {})",
                self.key,
                Timestamp::now().to_datetime().format("%Y-%m-%d %H:%M:%S")
            );
            read_pipe(ctx, pipe, &name, &mut parser, true)?;
            if ctx.cancelled() {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(());
            }
            let status = child.wait().wrap_err("cannot wait for ssh")?;
            let why = stderr
                .lock()
                .ok()
                .and_then(|l| l.last().cloned())
                .unwrap_or_default();
            let ended = if status.success() {
                "the stream ended".to_string()
            } else {
                format!("ssh exited with {status}")
            };
            let why = if why.is_empty() {
                ended
            } else {
                format!("{ended}: {why}")
            };
            if ctx.once {
                if status.success() {
                    return Ok(());
                }
                bail!("{}: {why}", self.key);
            }
            lost_since.get_or_insert_with(Timestamp::now);
            if started.elapsed() >= STABLE {
                backoff.reset();
            }
            let wait = backoff.next();
            ctx.status(
                SourceState::Backoff,
                format!("{why}; reconnecting in {}", backoff::shown(wait)),
            );
            if !ctx.sleep(wait) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = SshTarget::parse("mon@gerrit.example.com").unwrap();
        assert_eq!(
            (t.destination.as_str(), t.port),
            ("mon@gerrit.example.com", 29418)
        );
        let t = SshTarget::parse("gerrit:2222").unwrap();
        assert_eq!((t.destination.as_str(), t.port), ("gerrit", 2222));
        for bad in ["", "-oProxyCommand=x", "a b", "host:port", "user@"] {
            assert!(SshTarget::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_is_batch_mode_with_the_subscriptions() {
        let c = SshTarget::parse("mon@g:29418").unwrap().command();
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(c.get_program(), "ssh");
        assert!(args.windows(2).any(|w| w == ["-o", "BatchMode=yes"]));
        assert!(args.windows(2).any(|w| w == ["-p", "29418"]));
        let at = args.iter().position(|a| a == "mon@g").unwrap();
        assert_eq!(args[at + 1..at + 3], ["gerrit", "stream-events"]);
        assert!(args.windows(2).any(|w| w == ["-s", "ref-replicated"]));
        assert!(args.windows(2).any(|w| w == ["-s", "fetch-ref-replicated"]));
    }

    #[test]
    fn a_gap_says_when() {
        let from = Timestamp::from_nanos(1_741_960_931_000_000_000); // 14:02:11 UTC
        let to = Timestamp::from_nanos(1_741_960_960_000_000_000); // 14:02:40 UTC
        let e = gap_event("gerrit-ssh:g", from, to);
        assert_eq!(
            e.summary,
            "stream lost 14:02:11-14:02:40 UTC, events in between may be missing"
        );
        assert_eq!(e.duration_ms, Some(29_000));
        assert_eq!(e.severity, Severity::Warning);
    }
}
