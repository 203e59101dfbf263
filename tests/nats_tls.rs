//! TLS and user/password against a real `nats-server -js` on 127.0.0.1: a CA and a server
//! certificate generated here with the openssl CLI, a server config with `tls {}` and
//! `authorization { users }`. The forwarder and the consumer take the CA and the user from
//! `[nats]` in the config (or the CA from SYNCSCOPE_NATS_CA_FILE) and the password from the
//! environment; a wrong password, a wrong CA, no CA and a plain `nats://` client against the
//! TLS-only server each fail with a clear error that names no secret. Skipped by name when
//! nats-server or openssl is missing; under env CI a missing tool is a failure.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bin, free_port, have_tool, KillOnDrop, Scratch};

const NATS: &str = "/usr/sbin/nats-server";
const OPENSSL: &str = "/usr/bin/openssl";
const PASSWORD: &str = "pa55-Wörd-9f3c";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new(OPENSSL)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`NAME.pem`, `NAME.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &format!("/CN=syncscope test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    dir.join(pem)
}

/// `server.pem` / `server.key` for 127.0.0.1 and localhost, signed by the CA `ca`.
fn make_server_cert(dir: &Path, ca: &str) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext file");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    );
    (dir.join("server.pem"), dir.join("server.key"))
}

/// nats-server with JetStream, TLS required and one user `alice`.
fn start_server(dir: &Path, cert: &Path, key: &Path) -> (KillOnDrop, u16) {
    let port = free_port();
    let conf = dir.join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            r#"listen: "127.0.0.1:{port}"
jetstream {{ store_dir: "{store}" }}
tls {{ cert_file: "{cert}", key_file: "{key}", timeout: 5 }}
authorization {{ users = [ {{ user: "alice", password: "{PASSWORD}" }} ] }}
"#,
            store = dir.join("js").display(),
            cert = cert.display(),
            key = key.display(),
        ),
    )
    .expect("server config");
    let child = Command::new(NATS)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server");
    let server = KillOnDrop(child);
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "nats-server did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}

fn write_jsonl(path: &Path, n: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("jsonl"));
    for i in 0..n {
        writeln!(
            f,
            r#"{{"timestamp":"2026-11-30T10:{:02}:{:02}.{:03}Z","device_id":"dev-{}","event_type":"sync_error","category":"error","severity":"error","summary":"tls event {i}"}}"#,
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000,
            i % 5
        )
        .expect("write");
    }
}

/// `syncscope --db DB --config CONFIG ...` with no NATS variables of the caller's.
fn cmd(dir: &Path, db: &Path, config: &Path) -> Command {
    let mut c = Command::new(bin());
    c.arg("--db").arg(db).arg("--config").arg(config);
    for v in [
        "SYNCSCOPE_DB",
        "SYNCSCOPE_CONFIG",
        "SYNCSCOPE_NATS_TOKEN",
        "SYNCSCOPE_NATS_USER",
        "SYNCSCOPE_NATS_PASSWORD",
        "SYNCSCOPE_NATS_CA_FILE",
    ] {
        c.env_remove(v);
    }
    c.env("XDG_CONFIG_HOME", dir.join("xdg-config"));
    c.env("XDG_DATA_HOME", dir.join("xdg-data"));
    c.env("XDG_STATE_HOME", dir.join("xdg-state"));
    c.env("NO_COLOR", "1");
    c.stdin(Stdio::null());
    c
}

fn forward(dir: &Path, config: &Path, url: &str, src: &str) -> Command {
    let mut c = cmd(dir, &dir.join("unused.db"), config);
    c.args([
        "ingest",
        "-q",
        "--once",
        "--forward",
        url,
        "--forward-state",
    ])
    .arg(dir.join("fwd.json"))
    .args(["--source", src]);
    c
}

fn consume(dir: &Path, db: &Path, config: &Path, url: &str) -> Command {
    let mut c = cmd(dir, db, config);
    c.args(["ingest", "-q", "--once", "--source"])
        .arg(format!("nats:{url}"));
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("run syncscope")
}

fn ok(c: Command, what: &str) {
    let out = run(c);
    assert!(
        out.status.success(),
        "{what} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `c`, requires a failure and returns its stderr, checked to name no secret.
fn fails(c: Command, what: &str) -> String {
    let t0 = Instant::now();
    let out = run(c);
    assert!(!out.status.success(), "{what} must fail");
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "{what}: took {:?}",
        t0.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !err.contains(PASSWORD),
        "{what}: the password printed: {err}"
    );
    assert!(
        !err.contains("wrong-pass"),
        "{what}: a password printed: {err}"
    );
    err
}

fn identities(db: &Path) -> (BTreeSet<(i64, i64)>, u64) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open store");
    let mut st = conn.prepare("SELECT ts, key FROM events").expect("prepare");
    let rows: Vec<(i64, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    let n = rows.len() as u64;
    (rows.into_iter().collect(), n)
}

fn config(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("config");
    p
}

#[test]
fn tls_with_a_user_and_password_from_config_and_environment_end_to_end() {
    let name = "tls_with_a_user_and_password_from_config_and_environment_end_to_end";
    if !have_tool(NATS, "nats-server", name) || !have_tool(OPENSSL, "openssl", name) {
        return;
    }
    let s = Scratch::new();
    let d = s.dir.path();
    let ca = make_ca(d, "ca");
    let other_ca = make_ca(d, "other-ca");
    let (cert, key) = make_server_cert(d, "ca");
    let (_server, port) = start_server(d, &cert, &key);
    let url = format!("tls://127.0.0.1:{port}/SECURE");
    let plain_url = format!("nats://127.0.0.1:{port}/SECURE");
    let input = d.join("a.jsonl");
    write_jsonl(&input, 500);
    let src = format!("jsonl:{}", input.display());

    // What a direct ingest stores: the reference.
    let none = config(d, "none.toml", "");
    let reference = d.join("reference.db");
    let mut c = cmd(d, &reference, &none);
    c.args(["ingest", "-q", "--once", "--source", &src]);
    ok(c, "reference ingest");
    let want = identities(&reference);
    assert_eq!(want.1, 500);

    let good = config(
        d,
        "good.toml",
        &format!("[nats]\nuser = \"alice\"\nca_file = \"{}\"\n", ca.display()),
    );
    let with_password = |mut c: Command, pw: &str| {
        c.env("SYNCSCOPE_NATS_PASSWORD", pw);
        c
    };

    // A wrong password: refused, saying which settings to check.
    let err = fails(
        with_password(forward(d, &good, &url, &src), "wrong-pass"),
        "forwarder with a wrong password",
    );
    assert!(err.contains("refused the credentials"), "{err}");
    let err = fails(
        with_password(consume(d, &d.join("c.db"), &good, &url), "wrong-pass"),
        "consumer with a wrong password",
    );
    assert!(err.contains("refused the credentials"), "{err}");
    // No password at all: a user without one is refused before connecting.
    let err = fails(forward(d, &good, &url, &src), "a user without a password");
    assert!(err.contains("without a password"), "{err}");

    // A CA that did not sign the server's certificate.
    let wrong_ca = config(
        d,
        "wrong-ca.toml",
        &format!(
            "[nats]\nuser = \"alice\"\nca_file = \"{}\"\n",
            other_ca.display()
        ),
    );
    let err = fails(
        with_password(forward(d, &wrong_ca, &url, &src), PASSWORD),
        "forwarder with a wrong CA",
    );
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("ca_file"), "{err}");
    let err = fails(
        with_password(consume(d, &d.join("c.db"), &wrong_ca, &url), PASSWORD),
        "consumer with a wrong CA",
    );
    assert!(err.contains("certificate"), "{err}");
    // No CA: the system's roots do not know the test CA.
    let no_ca = config(d, "no-ca.toml", "[nats]\nuser = \"alice\"\n");
    let err = fails(
        with_password(forward(d, &no_ca, &url, &src), PASSWORD),
        "forwarder without the CA",
    );
    assert!(err.contains("certificate"), "{err}");
    // A CA file that is not a certificate.
    let junk = config(d, "junk.pem", "not a certificate\n");
    let junk_ca = config(
        d,
        "junk-ca.toml",
        &format!(
            "[nats]\nuser = \"alice\"\nca_file = \"{}\"\n",
            junk.display()
        ),
    );
    let err = fails(
        with_password(forward(d, &junk_ca, &url, &src), PASSWORD),
        "forwarder with a CA file that is no certificate",
    );
    assert!(err.contains("junk.pem"), "{err}");
    // The refused consumers stored nothing.
    assert!(!d.join("c.db").exists() || identities(&d.join("c.db")).1 == 0);

    // The right CA (from the config for the forwarder, from the environment for the
    // consumer), the user from the config, the password from the environment; with a
    // nats:// URL too, since the CA turns TLS on.
    ok(
        with_password(forward(d, &good, &url, &src), PASSWORD),
        "forwarder over TLS",
    );
    let user_only = config(d, "user-only.toml", "[nats]\nuser = \"alice\"\n");
    let db = d.join("consumer.db");
    let mut c = with_password(consume(d, &db, &user_only, &plain_url), PASSWORD);
    c.env("SYNCSCOPE_NATS_CA_FILE", &ca);
    ok(c, "consumer over TLS");
    assert_eq!(identities(&db), want, "the consumer's store");
    // Forwarding again publishes nothing new; consuming again stores nothing twice.
    ok(
        with_password(forward(d, &good, &url, &src), PASSWORD),
        "forwarder again",
    );
    let mut c = with_password(consume(d, &db, &user_only, &url), PASSWORD);
    c.env("SYNCSCOPE_NATS_CA_FILE", &ca);
    ok(c, "consumer again");
    assert_eq!(identities(&db), want, "nothing twice");
}
