//! The child processes of `demo --fleet`: each is killed and reaped when its [`Proc`] is
//! dropped (on exit, on error, on a panic that unwinds), runs in its own process group (a
//! Ctrl-C at the terminal reaches the demo, which stops its children in order), and on Linux
//! is killed by the kernel if the thread that started it dies (`PR_SET_PDEATHSIG`), so even
//! a `kill -9` of the demo leaves nothing running. Its stderr is read by a thread that keeps
//! the last lines, sanitised, for the reports of a child that died.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use color_eyre::eyre::{bail, Result, WrapErr};

use crate::sanitize::one_line;

/// Lines of a child's stderr kept for its reports.
const TAIL_LINES: usize = 40;

/// A running child process, stopped when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    /// Set once the child was waited for.
    status: Option<ExitStatus>,
    tail: Arc<Mutex<VecDeque<String>>>,
    reader: Option<JoinHandle<()>>,
}

/// Everything of the caller's environment a child must not inherit: the demo never reads the
/// user's store, config or credentials, and neither do its children.
pub fn clean_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("SYNCSCOPE_") {
            cmd.env_remove(&k);
        }
    }
}

impl Proc {
    /// Starts `cmd` (stdin and stdout closed, stderr read into the tail). `name` names it in
    /// messages.
    pub fn spawn(name: &str, mut cmd: Command) -> Result<Proc> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
            #[cfg(target_os = "linux")]
            {
                // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated.
                let parent = std::process::id() as libc::pid_t;
                unsafe {
                    cmd.pre_exec(move || {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                        if libc::getppid() != parent {
                            // The demo died between fork and prctl.
                            libc::_exit(1);
                        }
                        Ok(())
                    });
                }
            }
        }
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .spawn()
            .wrap_err_with(|| format!("cannot start {name} ({program})"))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let reader = child.stderr.take().map(|err| {
            let tail = tail.clone();
            std::thread::Builder::new()
                .name("syncscope-fleet-stderr".into())
                .spawn(move || {
                    let mut r = BufReader::new(err);
                    let mut buf = Vec::new();
                    loop {
                        buf.clear();
                        match r.read_until(b'\n', &mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let line = one_line(String::from_utf8_lossy(&buf).trim_end()).into_owned();
                        if line.is_empty() {
                            continue;
                        }
                        if let Ok(mut t) = tail.lock() {
                            if t.len() == TAIL_LINES {
                                t.pop_front();
                            }
                            t.push_back(line);
                        }
                    }
                })
        });
        let reader = match reader {
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e).wrap_err("cannot start a thread reading a child's stderr");
            }
            None => None,
        };
        Ok(Proc {
            name: name.to_string(),
            child,
            status: None,
            tail,
            reader,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status once the child has ended (reaped), else None.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
            if self.status.is_some() {
                self.settle();
            }
        }
        self.status
    }

    /// After the exit: lets the stderr reader take the last words (the pipe closes with
    /// the child; a grandchild holding it open is not waited for long).
    fn settle(&mut self) {
        let start = Instant::now();
        while let Some(t) = &self.reader {
            if t.is_finished() {
                if let Some(t) = self.reader.take() {
                    let _ = t.join();
                }
            } else if start.elapsed() > Duration::from_millis(500) {
                return;
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// The last stderr lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The last stderr line that is not empty, for a one-line report.
    pub fn last_line(&self) -> String {
        self.tail()
            .pop()
            .unwrap_or_else(|| "(nothing on stderr)".into())
    }

    /// How it ended, in words: "exited with status 2", "was killed by signal 9".
    pub fn describe(status: ExitStatus) -> String {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(s) = status.signal() {
                return format!("was killed by signal {s}");
            }
        }
        match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "ended".into(),
        }
    }

    /// Waits up to `timeout` for the child to end by itself.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (an orderly stop: a forwarder saves its state), then SIGKILL after `grace`.
    pub fn terminate(&mut self, grace: Duration) -> ExitStatus {
        if let Some(s) = self.exited() {
            return s;
        }
        #[cfg(unix)]
        {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: a plain syscall on our own, not yet reaped, child.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            if let Some(s) = self.wait_timeout(grace) {
                return s;
            }
        }
        #[cfg(not(unix))]
        let _ = grace;
        self.kill()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> ExitStatus {
        if let Some(s) = self.exited() {
            return s;
        }
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(s) => {
                self.status = Some(s);
                self.settle();
                s
            }
            // Already reaped elsewhere: nothing is left to kill.
            Err(_) => self.status.unwrap_or_else(killed_status),
        }
    }

    /// Waits until the tail has a line for which `pick` answers, while the child runs.
    pub fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T> {
        let start = Instant::now();
        loop {
            if let Some(v) = self.tail().iter().find_map(|l| pick(l)) {
                return Ok(v);
            }
            if let Some(s) = self.exited() {
                bail!("{} {}: {}", self.name, Proc::describe(s), self.last_line());
            }
            if start.elapsed() > timeout {
                bail!(
                    "{} did not start within {} s: {}",
                    self.name,
                    timeout.as_secs(),
                    self.last_line()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits until something accepts connections on 127.0.0.1:`port`, while the child runs.
    pub fn wait_listening(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return Ok(());
            }
            if let Some(s) = self.exited() {
                bail!(
                    "{} {} before listening on 127.0.0.1:{port}: {}",
                    self.name,
                    Proc::describe(s),
                    self.last_line()
                );
            }
            if start.elapsed() > timeout {
                bail!(
                    "{} did not listen on 127.0.0.1:{port} within {} s: {}",
                    self.name,
                    timeout.as_secs(),
                    self.last_line()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(unix)]
fn killed_status() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(libc::SIGKILL)
}

#[cfg(not(unix))]
fn killed_status() -> ExitStatus {
    ExitStatus::default()
}

impl Drop for Proc {
    fn drop(&mut self) {
        // kill() lets the reader finish; one still blocked (a grandchild holding the pipe)
        // is left to end by itself rather than waited for.
        self.kill();
        self.settle();
    }
}

/// A loopback port nobody listens on now, for a server about to be started.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .wrap_err("cannot find a free port on 127.0.0.1")?;
    Ok(l.local_addr()
        .wrap_err("a listener without an address")?
        .port())
}

/// Where Debian and the usual installs put servers, besides `PATH` (nats-server is in
/// /usr/sbin, which is not on a user's `PATH`).
const SYSTEM_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The server binary `name`: `$override_var` if set (it must exist), else the first in
/// `PATH` and the system directories. The error names the binary and how to install it.
pub fn find_tool(name: &str, override_var: &str) -> Result<PathBuf> {
    const INSTALL: &str = "apt-get install nats-server prometheus";
    if let Some(p) = std::env::var_os(override_var) {
        let p = PathBuf::from(p);
        if is_executable(&p) {
            return Ok(p);
        }
        bail!(
            "demo --fleet needs {name}: {override_var} names {}, which is not an executable file (install it: {INSTALL})",
            one_line(&p.display().to_string())
        );
    }
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let found = path_dirs
        .iter()
        .cloned()
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| is_executable(p));
    match found {
        Some(p) => Ok(p),
        None => bail!(
            "demo --fleet needs {name}, which is not installed (looked in PATH and {}): {INSTALL} (or set {override_var} to the binary)",
            SYSTEM_DIRS.join(", ")
        ),
    }
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_killed_and_reaped_when_dropped() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo started >&2; exec sleep 30"]);
        let mut p = Proc::spawn("sleeper", c).unwrap();
        let pid = p.pid();
        p.wait_for_line(Duration::from_secs(10), |l| (l == "started").then_some(()))
            .unwrap();
        assert!(p.exited().is_none());
        drop(p);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn terminate_asks_first_and_the_tail_is_sanitised() {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "trap 'printf \"bye\\033[2J\\n\" >&2; exit 3' TERM; echo up >&2; while :; do sleep 0.05; done",
        ]);
        let mut p = Proc::spawn("trapper", c).unwrap();
        p.wait_for_line(Duration::from_secs(10), |l| (l == "up").then_some(()))
            .unwrap();
        let s = p.terminate(Duration::from_secs(10));
        assert_eq!(Proc::describe(s), "exited with status 3");
        assert!(!p.last_line().contains('\u{1b}'), "{:?}", p.tail());
        assert!(p.last_line().starts_with("bye"), "{:?}", p.tail());
    }

    #[test]
    fn a_child_that_dies_early_is_described_with_its_last_words() {
        let mut c = Command::new("sh");
        c.args(["-c", "echo 'bind: address in use' >&2; exit 1"]);
        let mut p = Proc::spawn("server", c).unwrap();
        let port = free_port().unwrap();
        let e = p.wait_listening(port, Duration::from_secs(10)).unwrap_err();
        let msg = format!("{e}");
        assert!(msg.contains("server exited with status 1"), "{msg}");
        assert!(msg.contains("address in use"), "{msg}");
    }

    #[test]
    fn a_missing_tool_is_named_with_how_to_install_it() {
        let e = find_tool("no-such-server-xyz", "SYNCSCOPE_TEST_NO_SUCH_VAR").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("no-such-server-xyz"), "{msg}");
        assert!(
            msg.contains("apt-get install nats-server prometheus"),
            "{msg}"
        );
        assert!(find_tool("sh", "SYNCSCOPE_TEST_NO_SUCH_VAR").is_ok());
    }
}
