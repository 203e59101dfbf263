//! `gerrit-ssh:` against a real `sshd` on 127.0.0.1, through the system's real `ssh` client:
//! the daemon's forced command plays Gerrit's `stream-events` (the first connection drops
//! half-way, the second delivers the rest), as Gerrit's own SSH daemon would. Skipped, with
//! the reason printed, when `sshd` or `ssh-keygen` is not installed (`.ci/run` installs
//! openssh-server).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{fixture, free_port, keygen, write_exec, KillOnDrop, Scratch};

const SSHD: &str = "/usr/sbin/sshd";

fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[test]
fn gerrit_ssh_streams_from_a_real_sshd_and_marks_the_drop() {
    if !common::have_tools(
        "gerrit_ssh_streams_from_a_real_sshd_and_marks_the_drop",
        &[
            (SSHD, "openssh-server"),
            ("ssh", "openssh-client"),
            ("ssh-keygen", "openssh-client"),
        ],
    ) {
        return;
    }
    let s = Scratch::new();
    let d = s.dir.path();
    let (host_key, user_key) = (d.join("host_key"), d.join("user_key"));
    keygen(&host_key);
    keygen(&user_key);
    std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).expect("authorized_keys");
    // sshd needs its privilege separation directory (root only; a user's sshd does without).
    let _ = std::fs::create_dir_all("/run/sshd");

    // The forced command: first connection half the stream then a drop, then the rest.
    let push = fixture("gerrit/push_stream_v3.5plus.jsonl");
    let mixed = fixture("gerrit/mixed_stream_events.jsonl");
    let counter = d.join("connections");
    write_exec(
        &d.join("stream.sh"),
        &format!(
            "#!/bin/sh\n\
             echo \"$SSH_ORIGINAL_COMMAND\" >> '{c}'\n\
             n=$(wc -l < '{c}' | tr -d ' ')\n\
             if [ \"$n\" = 1 ]; then head -n 20 '{p}'; exit 1; fi\n\
             tail -n +21 '{p}'; cat '{m}'; exec sleep 60\n",
            c = counter.display(),
            p = push.display(),
            m = mixed.display()
        ),
    );
    let port = free_port();
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nForceCommand {d}/stream.sh\nLogLevel ERROR\n",
            hk = host_key.display(),
            d = d.display()
        ),
    )
    .expect("sshd_config");
    let _sshd = KillOnDrop(
        Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()
            .expect("start sshd"),
    );
    // Wait for it to listen.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }

    // The real ssh client, with this test's keys and known_hosts instead of ~/.ssh (ssh
    // reads those from the passwd home, which a test must not touch).
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let client_config = d.join("ssh_config");
    std::fs::write(
        &client_config,
        format!(
            "Host *\n  IdentityFile {k}\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  \
             StrictHostKeyChecking accept-new\n  LogLevel ERROR\n",
            k = user_key.display(),
            d = d.display()
        ),
    )
    .expect("ssh_config");
    let real_ssh = tool("ssh").expect("ssh");
    write_exec(
        &bin.join("ssh"),
        &format!(
            "#!/bin/sh\nexec '{}' -F '{}' \"$@\"\n",
            real_ssh.display(),
            client_config.display()
        ),
    );
    let mut path = bin.into_os_string();
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());

    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let mut ingest = s
        .cmd()
        .env("PATH", &path)
        .args(["ingest", "-q", "--source"])
        .arg(format!("gerrit-ssh:{user}@127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ingest");
    let want = 53 + 9 + 1; // both streams and the gap
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.count(&["--source", "gerrit"]) < want {
        if Instant::now() > deadline {
            let _ = ingest.kill();
            let out = ingest.wait_with_output().expect("output");
            panic!(
                "only {} events; ingest said: {}",
                s.count(&["--source", "gerrit"]),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(ingest.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(ingest.wait().expect("wait").code(), Some(0));

    assert_eq!(s.count(&["--source", "gerrit"]), want);
    let gaps = s.events_json(&["--event-type", "stream_gap"]);
    assert_eq!(gaps.len(), 1, "{gaps:#?}");
    // Gerrit got the command syncscope asked for.
    let asked = std::fs::read_to_string(&counter).expect("connections");
    let first = asked.lines().next().unwrap_or_default();
    assert!(first.starts_with("gerrit stream-events"), "{first}");
    assert!(first.contains("-s ref-replicated"), "{first}");
    // The derived state is the one the files give.
    let out = s.run(&[
        "status",
        "--format",
        "json",
        "--project",
        "tools/build",
        "--remote",
        "https://github.com/example-org/tools-build.git",
    ]);
    assert_eq!(out.status.code(), Some(1), "status exits 1 on FAILED");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"FAILED\"") && text.contains("REJECTED_NONFASTFORWARD"),
        "{text}"
    );
}
