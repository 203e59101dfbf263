//! Shared helpers for the integration tests: run the real `syncscope` binary against
//! a store in a temporary directory, with the fixtures copied from `tests/fixtures`.
#![allow(dead_code)]

pub mod pty;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A loopback port nobody listens on now (for a server a test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A server a test started: killed and reaped when dropped, so a failing test leaves none.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// True when `tool` (from Debian's `package`) is installed: [`have_tools`] of one.
pub fn have_tool(tool: &str, package: &str, test: &str) -> bool {
    have_tools(test, &[(tool, package)])
}

/// Where the tests require every tool and server to be there: `SYNCSCOPE_REQUIRE_TOOLS=1`
/// (`.ci/run` sets it) or `CI` set. There, a test that cannot run fails; elsewhere it is skipped.
pub fn tools_required() -> bool {
    std::env::var("SYNCSCOPE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
        || std::env::var_os("CI").is_some()
}

/// The one convention for a test that cannot run here: it prints `SKIPPED <test>: <why>` (so a
/// skip is never read as a pass), or fails where [`tools_required`]. Returns whether to go on.
pub fn skip(test: &str, why: &str) -> bool {
    assert!(
        !tools_required(),
        "{test} cannot run: {why} (SYNCSCOPE_REQUIRE_TOOLS=1 or CI: a test that cannot run fails)"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// A program by path, or by name on `PATH` (and in /usr/sbin, /usr/bin, /sbin).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        return Path::new(tool).is_file().then(|| PathBuf::from(tool));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// True when every `(tool, Debian package)` is installed; otherwise [`skip`]s `test`, naming
/// what is missing.
pub fn have_tools(test: &str, tools: &[(&str, &str)]) -> bool {
    let missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| find_tool(t).is_none())
        .map(|(t, p)| format!("{t} (apt-get install {p})"))
        .collect();
    missing.is_empty() || skip(test, &format!("needs {}", missing.join(", ")))
}

/// The binary Cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_syncscope"))
}

/// A fixture file in `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A scratch directory with a store path inside it; removed when dropped.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    /// `SYNCSCOPE_NOW` for every command of this scratch ([`Scratch::with_now`]).
    now: Option<String>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("tempdir"),
            now: None,
        }
    }

    /// Every command of this scratch runs with the clock set to `rfc3339` (`SYNCSCOPE_NOW`), so
    /// relative times (`--since 2d`, "today") against fixed fixture dates never drift with the
    /// calendar.
    pub fn with_now(mut self, rfc3339: &str) -> Self {
        self.now = Some(rfc3339.to_string());
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The store every command of this scratch uses.
    pub fn db(&self) -> PathBuf {
        self.path("store.db")
    }

    /// Copy a fixture into the scratch directory (so tests never touch the originals).
    pub fn copy_fixture(&self, name: &str) -> PathBuf {
        let to = self.path(name);
        std::fs::copy(fixture(name), &to).expect("copy fixture");
        to
    }

    /// A `syncscope` command with `--db` set to this scratch's store and no config file
    /// (an empty XDG config dir, so the user's own config never leaks into a test).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--db").arg(self.db());
        c.env_remove("SYNCSCOPE_DB");
        c.env_remove("SYNCSCOPE_CONFIG");
        c.env_remove("RUST_BACKTRACE");
        match &self.now {
            Some(now) => c.env("SYNCSCOPE_NOW", now),
            None => c.env_remove("SYNCSCOPE_NOW"),
        };
        c.env("XDG_CONFIG_HOME", self.path("xdg-config"));
        c.env("XDG_DATA_HOME", self.path("xdg-data"));
        c.env("NO_COLOR", "1");
        c.stdin(Stdio::null());
        c
    }

    /// Run `syncscope --db STORE ARGS...` and return its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run syncscope")
    }

    /// Run and require exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "syncscope {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// `ingest --once` of the given source specs.
    pub fn ingest_once(&self, sources: &[String]) -> Output {
        let mut c = self.cmd();
        c.arg("ingest").arg("--once").arg("-q");
        for s in sources {
            c.arg("--source").arg(s);
        }
        c.output().expect("run ingest")
    }

    /// Number of events matching the filter args (`events --count`).
    pub fn count(&self, filter: &[&str]) -> u64 {
        let mut args = vec!["events", "--count", "--limit", "0"];
        args.extend_from_slice(filter);
        let out = self.run(&args);
        if out.status.code() == Some(2)
            && String::from_utf8_lossy(&out.stderr).contains("no store at")
        {
            // An ingest started in the background may not have created the store yet.
            return 0;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim().parse().unwrap_or_else(|_| {
            panic!(
                "events --count printed {text:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// All matching events as parsed JSON objects (`events --format json --limit 0`).
    pub fn events_json(&self, filter: &[&str]) -> Vec<serde_json::Value> {
        let mut args = vec!["events", "--format", "json", "--limit", "0"];
        args.extend_from_slice(filter);
        let out = self.run(&args);
        match out.status.code() {
            Some(0) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&out.stdout).expect("events json parses");
                v.as_array().expect("json array").clone()
            }
            Some(1) => Vec::new(),
            other => panic!(
                "events {filter:?} exited {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Open the store read-only with rusqlite for assertions the CLI does not print.
    pub fn store(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            self.db(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("open store")
    }
}

/// The device the `device_b_sd_events*.json` exports were taken from.
pub const SAMPLE_DEV_B: &str = "1e2feb89-414c-343c-1027-c4d1c386bbc4";

/// Specs for the two Spacedrive samples: the sync.db of device cd613e30, and device 1e2feb89's
/// default `sd sync events` export (no device in it: named with `,device=`).
pub fn sample_sources(s: &Scratch) -> Vec<String> {
    let db = s.copy_fixture("sync.db");
    let json = s.copy_fixture("device_b_sd_events.json");
    vec![
        format!("spacedrive-db:{}", db.display()),
        format!("spacedrive-json:{},device={SAMPLE_DEV_B}", json.display()),
    ]
}

/// Reads an HTTP request's head from a local GitLab stand-in's connection: the request target
/// and the `PRIVATE-TOKEN` header, if any (what the stand-ins answer by and count).
#[allow(dead_code)]
pub fn request_target_and_token(
    stream: &std::net::TcpStream,
) -> std::io::Result<(String, Option<String>)> {
    use std::io::{BufRead, BufReader};
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut token = None;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("private-token") {
                token = Some(v.trim().to_string());
            }
        }
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    Ok((target, token))
}

/// Writes an executable script (mode 0755).
pub fn write_exec(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A new passphrase-less ed25519 key pair at `path` (and `path.pub`), by `ssh-keygen`.
pub fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen failed");
}
