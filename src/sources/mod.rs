//! Sources: each real system's wire format turned into the common [`Event`](crate::model::Event).
//!
//! A source is named on the command line or in the config as `KIND:WHERE`
//! (`jsonl:/var/log/app/events.jsonl`, `spacedrive-db:~/…/sync.db`, `spacedrive-json:-`).

pub mod exposition;
pub mod gerrit_given_up;
pub mod gerrit_ordinals;
pub mod gerrit_rest;
pub mod gerrit_ssh;
pub mod gitlab;
pub mod http;
pub mod jsonl;
pub mod nats;
pub mod ngit;
pub mod spacedrive;

use std::path::{Path, PathBuf};

use color_eyre::eyre::{bail, Result};

use crate::ingest::SourceCtx;

/// A running source: reads, parses and sends batches through `ctx` until done or cancelled.
pub trait Source: Send {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()>;
}

/// The kinds of source this build knows, with what follows the colon.
pub const KINDS: &[(&str, &str)] = &[
    (
        "jsonl",
        "PATH or - : one JSON event per line, followed like tail -F",
    ),
    (
        "spacedrive-db",
        "PATH : a live Spacedrive sync.db, read-only, following new rows",
    ),
    (
        "spacedrive-json",
        "PATH or - [,device=ID] : an `sd sync events` JSON export (either shape); device= names the device a default export was taken from",
    ),
    (
        "gerrit-events",
        "PATH or - : `gerrit stream-events` output (every layout), followed like tail -F",
    ),
    (
        "gerrit-log",
        "PATH : Gerrit's replication_log or pull_replication_log (any layout), followed",
    ),
    (
        "gerrit-rest",
        "URL [,instance=ID] : .../a/projects/P/remotes/R/replication-status, polled every scrape interval; instance= names the node that answers (none: the node without an id)",
    ),
    (
        "gerrit-ssh",
        "[USER@]HOST[:PORT] : `ssh ... gerrit stream-events`, reconnecting when it drops",
    ),
    (
        "gitlab",
        "URL : a GitLab API (https://HOST/api/v4): nightly pipelines, failed jobs and their error patterns ([gitlab] in the config)",
    ),
    (
        "nats",
        "nats://HOST:PORT/STREAM : a JetStream stream fed by `ingest --forward`, read by a durable consumer named after the store ([nats] in the config)",
    ),
    (
        "ngit-metrics",
        "URL : an ngit (GRASP) relay's http://HOST:PORT/metrics, scraped every scrape interval",
    ),
];

/// Where a file-like source reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    fn parse(text: &str) -> Result<Input> {
        if text == "-" {
            return Ok(Input::Stdin);
        }
        if text.is_empty() {
            bail!("missing path after the colon");
        }
        let expanded = expand_tilde(text);
        let abs = std::path::absolute(&expanded).unwrap_or(expanded);
        Ok(Input::File(abs))
    }

    pub fn display(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

/// `~/x` and `~` are the user's home, as a shell would have it.
pub fn expand_tilde(text: &str) -> PathBuf {
    if text == "~" || text.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            let mut p = PathBuf::from(home);
            if text.len() > 2 {
                p.push(&text[2..]);
            }
            return p;
        }
    }
    PathBuf::from(text)
}

/// A parsed `KIND:WHERE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Jsonl(Input),
    SpacedriveDb(PathBuf),
    /// An export, and the device it was taken from when the user names it (`,device=ID`).
    SpacedriveJson(Input, Option<String>),
    /// `gerrit stream-events` lines.
    GerritEvents(Input),
    /// `replication_log` / `pull_replication_log`.
    GerritLog(PathBuf),
    /// The replication-status REST endpoint of one project/remote pair, and the node that
    /// answers when the user names it (`,instance=ID`, `none` for the node without an id).
    GerritRest(String, Option<String>),
    /// `gerrit stream-events` over the system's ssh.
    GerritSsh(gerrit_ssh::SshTarget),
    /// A `/metrics` URL.
    NgitMetrics(String),
    /// A GitLab API base URL (`https://HOST/api/v4`).
    Gitlab(String),
    /// A JetStream stream, with the `[nats]` credentials (set by [`SourceSpec::with_nats`]).
    Nats(nats::NatsTarget, Box<nats::NatsConfig>),
}

impl SourceSpec {
    pub fn parse(text: &str) -> Result<SourceSpec> {
        let Some((kind, rest)) = text.split_once(':') else {
            bail!(
                "source '{text}' has no kind: write KIND:WHERE, with KIND one of {}",
                kind_names()
            );
        };
        let spec = match kind {
            "jsonl" => SourceSpec::Jsonl(Input::parse(rest)?),
            "spacedrive-json" => {
                let (path, device) = split_option(rest, &DEVICE)?;
                SourceSpec::SpacedriveJson(Input::parse(path)?, device)
            }
            "gerrit-events" => SourceSpec::GerritEvents(Input::parse(rest)?),
            "gerrit-log" => match Input::parse(rest)? {
                Input::File(p) => SourceSpec::GerritLog(p),
                Input::Stdin => bail!("gerrit-log needs a file path, not -"),
            },
            "gerrit-rest" => {
                let endpoint = |url: &str| {
                    (url.starts_with("http://") || url.starts_with("https://"))
                        && url.trim_end_matches('/').ends_with("/replication-status")
                };
                // The option only ever follows the whole endpoint URL (which ends with
                // /replication-status), so a URL with `=` or `,instance=` inside is never split.
                let (url, instance) = if endpoint(rest) {
                    (rest, None)
                } else {
                    split_option(rest, &INSTANCE)?
                };
                if !endpoint(url) {
                    bail!("gerrit-rest needs the endpoint URL, http(s)://HOST/a/projects/PROJECT/remotes/REMOTE/replication-status (project and remote URL-encoded), optionally followed by ,instance=ID, not '{rest}'");
                }
                SourceSpec::GerritRest(url.to_string(), instance)
            }
            "gerrit-ssh" => SourceSpec::GerritSsh(
                gerrit_ssh::SshTarget::parse(rest).map_err(|e| color_eyre::eyre::eyre!("{e}"))?,
            ),
            "ngit-metrics" => {
                http::Url::parse(rest).map_err(|e| color_eyre::eyre::eyre!("{e}"))?;
                SourceSpec::NgitMetrics(rest.to_string())
            }
            "gitlab" => SourceSpec::Gitlab(
                gitlab::api_base(rest).map_err(|e| color_eyre::eyre::eyre!("{e}"))?,
            ),
            "nats" => SourceSpec::Nats(nats::NatsTarget::parse(rest)?, Box::default()),
            "spacedrive-db" => match Input::parse(rest)? {
                Input::File(p) => SourceSpec::SpacedriveDb(p),
                Input::Stdin => bail!("spacedrive-db needs a file path, not -"),
            },
            other => bail!(
                "unknown source kind '{other}' in '{text}': expected one of {}",
                kind_names()
            ),
        };
        Ok(spec)
    }

    /// The stable name under which the source's checkpoint and status are stored.
    pub fn key(&self) -> String {
        match self {
            SourceSpec::Jsonl(i) => format!("jsonl:{}", i.display()),
            SourceSpec::SpacedriveDb(p) => format!("spacedrive-db:{}", p.display()),
            SourceSpec::SpacedriveJson(i, None) => format!("spacedrive-json:{}", i.display()),
            SourceSpec::SpacedriveJson(i, Some(d)) => {
                format!("spacedrive-json:{}{DEVICE_OPTION}{d}", i.display())
            }
            SourceSpec::GerritEvents(i) => format!("gerrit-events:{}", i.display()),
            SourceSpec::GerritSsh(t) => format!("gerrit-ssh:{}:{}", t.destination, t.port),
            SourceSpec::GerritLog(p) => format!("gerrit-log:{}", p.display()),
            SourceSpec::GerritRest(u, None) => format!("gerrit-rest:{u}"),
            SourceSpec::GerritRest(u, Some(i)) => format!("gerrit-rest:{u}{INSTANCE_OPTION}{i}"),
            SourceSpec::NgitMetrics(url) => format!("ngit-metrics:{url}"),
            SourceSpec::Gitlab(url) => format!("gitlab:{url}"),
            SourceSpec::Nats(t, _) => format!("nats:{}", t.display()),
        }
    }

    /// The file the source reads, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            SourceSpec::Jsonl(Input::File(p))
            | SourceSpec::GerritEvents(Input::File(p))
            | SourceSpec::SpacedriveJson(Input::File(p), _)
            | SourceSpec::SpacedriveDb(p)
            | SourceSpec::GerritLog(p) => Some(p),
            _ => None,
        }
    }

    /// Checks, before anything is written, that the source can be read. With `once`, the file
    /// must exist now; when following, a missing file is waited for (like `tail -F`), but a
    /// directory or an unreadable file is still an error.
    pub fn preflight(&self, once: bool) -> Result<()> {
        let Some(path) = self.path() else {
            return Ok(());
        };
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => bail!("{}: is a directory, not a file", path.display()),
            Ok(_) => {
                if let Err(e) = std::fs::File::open(path) {
                    bail!("{}: cannot read: {e}", path.display());
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !once => Ok(()),
            Err(e) => bail!("{}: cannot read: {e}", path.display()),
        }
    }

    pub fn build(&self) -> Result<Box<dyn Source>> {
        self.build_with(&crate::config::GitlabConfig::default())
    }

    /// The source, with the `[gitlab]` settings a `gitlab:` source reads.
    pub fn build_with(&self, gitlab: &crate::config::GitlabConfig) -> Result<Box<dyn Source>> {
        Ok(match self {
            SourceSpec::Gitlab(url) => Box::new(gitlab::GitlabSource::new(
                self.key(),
                url.clone(),
                gitlab.clone(),
            )?),
            SourceSpec::Jsonl(input) => Box::new(jsonl::JsonlSource::new(input.clone())),
            SourceSpec::SpacedriveDb(path) => {
                Box::new(spacedrive::db::SyncDbSource::new(path.clone()))
            }
            SourceSpec::SpacedriveJson(input, device) => Box::new(
                spacedrive::export::ExportSource::new(input.clone(), device.clone()),
            ),
            SourceSpec::GerritEvents(input) => Box::new(jsonl::JsonlSource::with_format(
                input.clone(),
                jsonl::LineFormat::GerritStream,
            )),
            SourceSpec::GerritLog(p) => Box::new(jsonl::JsonlSource::with_format(
                Input::File(p.clone()),
                jsonl::LineFormat::GerritLog {
                    pull: p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("pull_replication_log")),
                    zone: None,
                },
            )),
            SourceSpec::GerritSsh(t) => {
                Box::new(gerrit_ssh::SshStreamSource::new(self.key(), t.clone()))
            }
            SourceSpec::GerritRest(u, instance) => Box::new(gerrit_rest::RestSource::new(
                self.key(),
                u.clone(),
                instance.as_deref().map(gerrit_rest::answering_instance),
            )),
            SourceSpec::NgitMetrics(url) => Box::new(ngit::MetricsSource::new(url.clone())),
            SourceSpec::Nats(t, c) => Box::new(nats::consume::NatsSource::new(
                t.clone(),
                c.as_ref().clone(),
            )),
        })
    }

    /// A `nats:` source reads with these credentials (the config's, with the environment's
    /// over them); other kinds are unchanged.
    pub fn with_nats(self, config: &nats::NatsConfig) -> SourceSpec {
        match self {
            SourceSpec::Nats(t, _) => SourceSpec::Nats(t, Box::new(config.with_env())),
            other => other,
        }
    }
}

/// The option that names the device of a `spacedrive-json:` export.
pub const DEVICE_OPTION: &str = ",device=";

/// The option that names the Gerrit node a `gerrit-rest:` endpoint answers for.
pub const INSTANCE_OPTION: &str = ",instance=";

/// A trailing `,NAME=VALUE` option of a source, and how to explain a bad value.
struct SourceOption {
    kind: &'static str,
    option: &'static str,
    /// What the value is, for the messages (`device id`).
    what: &'static str,
    example: &'static str,
}

const DEVICE: SourceOption = SourceOption {
    kind: "spacedrive-json",
    option: DEVICE_OPTION,
    what: "device id",
    example: "spacedrive-json:PATH,device=6f1c0000-0000-4000-8000-000000000001",
};

const INSTANCE: SourceOption = SourceOption {
    kind: "gerrit-rest",
    option: INSTANCE_OPTION,
    what: "instance id",
    example: "gerrit-rest:URL,instance=primary-1 (or ,instance=none for the node without an id)",
};

/// `WHERE,device=ID` -> (`WHERE`, `Some(ID)`); `WHERE` -> (`WHERE`, None): the last occurrence
/// of the option, so its value never holds another one.
fn split_option<'a>(rest: &'a str, opt: &SourceOption) -> Result<(&'a str, Option<String>)> {
    let Some((head, value)) = rest.rsplit_once(opt.option) else {
        return Ok((rest, None));
    };
    let name = opt.option.trim_start_matches(',');
    let value = value.trim();
    if value.is_empty() {
        bail!(
            "{}: `{name}` needs the {}, as in {}",
            opt.kind,
            opt.what,
            opt.example
        );
    }
    if value
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == ',')
    {
        bail!(
            "{}: {} '{}' has a space, comma or control character",
            opt.kind,
            opt.what,
            value.escape_debug()
        );
    }
    Ok((head, Some(value.to_string())))
}

fn kind_names() -> String {
    KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds_and_paths() {
        let s = SourceSpec::parse("jsonl:/var/log/a.jsonl").unwrap();
        assert_eq!(s.key(), "jsonl:/var/log/a.jsonl");
        assert_eq!(SourceSpec::parse("jsonl:-").unwrap().key(), "jsonl:-");
        let rel = SourceSpec::parse("spacedrive-db:sync.db").unwrap();
        assert!(rel.path().unwrap().is_absolute());
        let err = SourceSpec::parse("kafka:topic").unwrap_err().to_string();
        assert!(err.contains("unknown source kind 'kafka'"), "{err}");
        assert!(SourceSpec::parse("nocolon").is_err());
        assert!(SourceSpec::parse("jsonl:").is_err());
        assert!(SourceSpec::parse("spacedrive-db:-").is_err());
    }

    #[test]
    fn a_spacedrive_export_may_name_its_device() {
        let s = SourceSpec::parse("spacedrive-json:/x/b.json,device=6f1c-01").unwrap();
        assert_eq!(
            s,
            SourceSpec::SpacedriveJson(
                Input::File(PathBuf::from("/x/b.json")),
                Some("6f1c-01".into())
            )
        );
        assert_eq!(s.key(), "spacedrive-json:/x/b.json,device=6f1c-01");
        assert_eq!(s.path(), Some(Path::new("/x/b.json")));
        let stdin = SourceSpec::parse("spacedrive-json:-,device=d").unwrap();
        assert_eq!(
            stdin,
            SourceSpec::SpacedriveJson(Input::Stdin, Some("d".into()))
        );
        let plain = SourceSpec::parse("spacedrive-json:/x/b.json").unwrap();
        assert_eq!(plain.key(), "spacedrive-json:/x/b.json");
        for bad in [
            "spacedrive-json:/x/b.json,device=",
            "spacedrive-json:/x/b.json,device=a b",
        ] {
            let err = SourceSpec::parse(bad).unwrap_err().to_string();
            assert!(err.contains("device"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_gerrit_rest_source_may_name_its_instance() {
        let url = "https://g.example/a/projects/core/remotes/m/replication-status";
        let s = SourceSpec::parse(&format!("gerrit-rest:{url},instance=primary-b")).unwrap();
        assert_eq!(
            s,
            SourceSpec::GerritRest(url.into(), Some("primary-b".into()))
        );
        assert_eq!(s.key(), format!("gerrit-rest:{url},instance=primary-b"));
        let none = SourceSpec::parse(&format!("gerrit-rest:{url}/,instance=none")).unwrap();
        assert_eq!(
            none,
            SourceSpec::GerritRest(format!("{url}/"), Some("none".into()))
        );
        let plain = SourceSpec::parse(&format!("gerrit-rest:{url}")).unwrap();
        assert_eq!(plain, SourceSpec::GerritRest(url.into(), None));
        assert_eq!(plain.key(), format!("gerrit-rest:{url}"));
        // `=` and even `,instance=` inside the URL are the URL's: the option only follows it.
        let odd = "https://g.example/a/projects/a%3Db,instance=x/remotes/m=1/replication-status";
        assert_eq!(
            SourceSpec::parse(&format!("gerrit-rest:{odd}")).unwrap(),
            SourceSpec::GerritRest(odd.into(), None)
        );
        assert_eq!(
            SourceSpec::parse(&format!("gerrit-rest:{odd},instance=n2")).unwrap(),
            SourceSpec::GerritRest(odd.into(), Some("n2".into()))
        );
        for bad in [
            format!("gerrit-rest:{url},instance="),
            format!("gerrit-rest:{url},instance=a b"),
            format!("gerrit-rest:{url},device=x"),
            "gerrit-rest:https://g.example/a/projects/core,instance=x".to_string(),
        ] {
            assert!(SourceSpec::parse(&bad).is_err(), "{bad}");
        }
        let err = SourceSpec::parse(&format!("gerrit-rest:{url},instance="))
            .unwrap_err()
            .to_string();
        assert!(err.contains("instance"), "{err}");
    }

    #[test]
    fn tilde_is_home() {
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(expand_tilde("~/x.db"), PathBuf::from(home).join("x.db"));
        }
        assert_eq!(expand_tilde("/a/~b"), PathBuf::from("/a/~b"));
    }

    #[test]
    fn preflight_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let d = SourceSpec::Jsonl(Input::File(dir.path().to_path_buf()));
        assert!(d
            .preflight(false)
            .unwrap_err()
            .to_string()
            .contains("is a directory"));
        let missing = SourceSpec::Jsonl(Input::File(dir.path().join("nope")));
        assert!(
            missing.preflight(false).is_ok(),
            "followers wait for the file"
        );
        assert!(missing
            .preflight(true)
            .unwrap_err()
            .to_string()
            .contains("nope"));
    }
}
