//! NATS JetStream between hosts: `ingest --forward nats://HOST:PORT/STREAM` publishes the events
//! of the sources it runs ([`forward`]); `--source nats:nats://HOST:PORT/STREAM` consumes them
//! into a store ([`consume`]). The message format is in [`codec`], the forwarder's checkpoints
//! in [`state`].

pub mod codec;
pub mod consume;
pub mod floor;
pub mod forward;
pub mod spec;
pub mod state;

use std::time::Duration;

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use serde::Deserialize;

/// How long JetStream remembers a `Nats-Msg-Id` to drop a message published twice.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// `nats://HOST:PORT/STREAM` (or `tls://`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsTarget {
    /// `nats://HOST:PORT`, as the client connects.
    pub server: String,
    pub stream: String,
}

impl NatsTarget {
    pub fn parse(text: &str) -> Result<NatsTarget> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| eyre!("'{text}': expected nats://HOST:PORT/STREAM"))?;
        if scheme != "nats" && scheme != "tls" {
            bail!("'{text}': the scheme must be nats:// or tls://, not {scheme}://");
        }
        let (authority, stream) = rest
            .split_once('/')
            .ok_or_else(|| eyre!("'{text}': no stream: expected nats://HOST:PORT/STREAM"))?;
        if authority.contains('@') {
            bail!("{scheme}://…@…: credentials in the URL are refused (they would show in ps and shell history): set SYNCSCOPE_NATS_TOKEN or SYNCSCOPE_NATS_USER/SYNCSCOPE_NATS_PASSWORD, or [nats] in the config");
        }
        if authority.is_empty() {
            bail!("'{text}': no host: expected nats://HOST:PORT/STREAM");
        }
        let stream = stream.trim_end_matches('/');
        valid_stream_name(stream).map_err(|e| eyre!("'{text}': {e}"))?;
        Ok(NatsTarget {
            server: format!("{scheme}://{authority}"),
            stream: stream.to_string(),
        })
    }

    pub fn display(&self) -> String {
        format!("{}/{}", self.server, self.stream)
    }
}

/// A stream name is one subject token: letters, digits, `-` and `_` (JetStream also refuses
/// spaces, `.`, `*`, `>` and path separators; we keep to the portable set).
fn valid_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the stream name is empty".into());
    }
    if name.len() > 64 {
        return Err(format!(
            "the stream name '{name}' is longer than 64 characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "the stream name '{}' has '{}': use letters, digits, - and _",
            crate::sanitize::one_line(name),
            c.escape_default()
        ));
    }
    Ok(())
}

/// `[nats]` in the config: credentials and TLS. The environment (`SYNCSCOPE_NATS_TOKEN`,
/// `SYNCSCOPE_NATS_USER`, `SYNCSCOPE_NATS_PASSWORD`, `SYNCSCOPE_NATS_CA_FILE`) wins over it;
/// never the command line.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    pub token: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// PEM file of the CA that signed the server's certificate (turns TLS on).
    pub ca_file: Option<String>,
    /// PEM client certificate and key, for servers that verify clients.
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    /// Require TLS even without a CA file (the system's roots are used).
    #[serde(default)]
    pub tls: bool,
}

/// Secrets never reach a debug print.
impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |o: &Option<String>| o.as_ref().map(|_| "<hidden>");
        f.debug_struct("NatsConfig")
            .field("token", &hidden(&self.token))
            .field("user", &self.user)
            .field("password", &hidden(&self.password))
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("tls", &self.tls)
            .finish()
    }
}

impl NatsConfig {
    /// The config with the environment's credentials over it.
    pub fn with_env(&self) -> NatsConfig {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut c = self.clone();
        if let Some(t) = env("SYNCSCOPE_NATS_TOKEN") {
            c.token = Some(t);
        }
        if let Some(u) = env("SYNCSCOPE_NATS_USER") {
            c.user = Some(u);
        }
        if let Some(p) = env("SYNCSCOPE_NATS_PASSWORD") {
            c.password = Some(p);
        }
        if let Some(p) = env("SYNCSCOPE_NATS_CA_FILE") {
            c.ca_file = Some(p);
        }
        c
    }

    fn options(&self) -> Result<async_nats::ConnectOptions> {
        let mut o = async_nats::ConnectOptions::new()
            .name("syncscope")
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None::<usize>);
        match (&self.token, &self.user, &self.password) {
            (Some(_), Some(_), _) => {
                bail!("[nats]: give a token or a user and password, not both")
            }
            (Some(t), None, _) => o = o.token(t.clone()),
            (None, Some(u), Some(p)) => o = o.user_and_password(u.clone(), p.clone()),
            (None, Some(_), None) => {
                bail!("[nats]: a user without a password (set SYNCSCOPE_NATS_PASSWORD)")
            }
            (None, None, Some(_)) => bail!("[nats]: a password without a user"),
            (None, None, None) => {}
        }
        if let Some(ca) = &self.ca_file {
            let p = crate::sources::expand_tilde(ca);
            check_pem(&p, "ca_file", "CERTIFICATE")?;
            o = o.add_root_certificates(p).require_tls(true);
        }
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => {
                let (c, k) = (
                    crate::sources::expand_tilde(c),
                    crate::sources::expand_tilde(k),
                );
                check_pem(&c, "cert_file", "CERTIFICATE")?;
                check_pem(&k, "key_file", "PRIVATE KEY")?;
                o = o.add_client_certificate(c, k);
            }
            (None, None) => {}
            _ => bail!("[nats]: cert_file and key_file go together"),
        }
        if self.tls {
            o = o.require_tls(true);
        }
        Ok(o)
    }

    /// Connects to `target`'s server; a refused authorization says so.
    pub async fn connect(&self, target: &NatsTarget) -> Result<async_nats::Client> {
        let options = self.options()?;
        options.connect(target.server.as_str()).await.map_err(|e| {
            let text = e.to_string();
            let lower = text.to_ascii_lowercase();
            let hint = if matches!(e.kind(), async_nats::ConnectErrorKind::AuthorizationViolation)
                || lower.contains("authorization")
            {
                ": the server refused the credentials (SYNCSCOPE_NATS_TOKEN / SYNCSCOPE_NATS_USER / SYNCSCOPE_NATS_PASSWORD or [nats] in the config)"
            } else if lower.contains("certificate") || lower.contains("unknownissuer") {
                ": the server's TLS certificate was not accepted (is ca_file in [nats] or SYNCSCOPE_NATS_CA_FILE the CA that signed it, and is the host in it?)"
            } else if matches!(e.kind(), async_nats::ConnectErrorKind::Tls)
                || lower.contains("tls")
            {
                ": TLS failed (ca_file, cert_file, key_file and tls in [nats]; a server that requires TLS needs its CA in ca_file)"
            } else {
                ""
            };
            eyre!("cannot connect to NATS at {}: {text}{hint}", target.server)
        })
    }
}

/// `[nats] KEY = PATH` names a readable PEM file with a `-----BEGIN …LABEL-----` block (the
/// client would otherwise take a file without one as an empty set of certificates).
fn check_pem(path: &std::path::Path, key: &str, label: &str) -> Result<()> {
    let text = std::fs::read(path)
        .wrap_err_with(|| format!("[nats] {key} {}: cannot read it", path.display()))?;
    let found = text.split(|&b| b == b'\n').any(|l| {
        l.starts_with(b"-----BEGIN ") && l.windows(label.len()).any(|w| w == label.as_bytes())
    });
    if !found {
        bail!(
            "[nats] {key} {}: no PEM {label} in it (expected a -----BEGIN {label}----- block)",
            path.display()
        );
    }
    Ok(())
}

/// The subject token of a source: its kind (`jsonl`, `gerrit-events`, ...), with anything
/// but letters, digits, `-` and `_` made `_`, so every subject is `STREAM.<kind>`.
pub fn subject_token(source_key: &str) -> String {
    let kind = source_key.split(':').next().unwrap_or("");
    let t: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "source".into()
    } else {
        t
    }
}

/// The stream, created when missing: every subject `STREAM.>`, file storage, the duplicate
/// window of [`DUPLICATE_WINDOW`].
pub async fn ensure_stream(
    js: &async_nats::jetstream::Context,
    target: &NatsTarget,
) -> Result<async_nats::jetstream::stream::Stream> {
    use async_nats::jetstream::stream;
    js.get_or_create_stream(stream::Config {
        name: target.stream.clone(),
        subjects: vec![format!("{}.>", target.stream)],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    })
    .await
    .wrap_err_with(|| {
        format!(
            "cannot open or create the JetStream stream {}",
            target.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_refuses_credentials_in_the_url() {
        let t = NatsTarget::parse("nats://127.0.0.1:4222/EVENTS").unwrap();
        assert_eq!(t.server, "nats://127.0.0.1:4222");
        assert_eq!(t.stream, "EVENTS");
        let e = NatsTarget::parse("nats://alice:secret@host:4222/EVENTS").unwrap_err();
        assert!(
            e.to_string().contains("credentials in the URL are refused"),
            "{e}"
        );
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(NatsTarget::parse("nats://host:4222").is_err());
        assert!(NatsTarget::parse("nats://host:4222/").is_err());
        assert!(NatsTarget::parse("nats://host:4222/A.B").is_err());
        assert!(NatsTarget::parse("http://host:4222/A").is_err());
    }

    #[test]
    fn subjects_are_one_valid_token() {
        assert_eq!(subject_token("jsonl:/var/log/a.jsonl"), "jsonl");
        assert_eq!(subject_token("gerrit-events:-"), "gerrit-events");
        assert_eq!(subject_token("we.ird*>:x"), "we_ird__");
    }

    #[test]
    fn token_and_user_are_exclusive() {
        let c = NatsConfig {
            token: Some("t".into()),
            user: Some("u".into()),
            ..Default::default()
        };
        assert!(c.options().is_err());
        let c = NatsConfig {
            user: Some("u".into()),
            ..Default::default()
        };
        assert!(c.options().is_err());
    }
}
