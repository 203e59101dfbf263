//! `gerrit-events:`, `gerrit-log:`, `gerrit-rest:` and `gerrit-ssh:`: their rows of the registry
//! (settings in the config's `[gerrit]`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use color_eyre::eyre::{bail, eyre, Result};

use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::sources::lines::FollowedLines;
use crate::sources::registry::{Kind, Spec};
use crate::sources::{split_option, Input, INSTANCE, INSTANCE_OPTION};

pub const EVENTS: Kind = Kind {
    name: kind::GERRIT_EVENTS,
    help: "PATH or - : `gerrit stream-events` output (every layout), followed like tail -F",
    example: "/var/log/gerrit/stream.jsonl",
    config: Some(super::config::SECTION),
    parse: |rest| Ok(Arc::new(EventsSpec(Input::parse(rest)?))),
};

pub const LOG: Kind = Kind {
    name: kind::GERRIT_LOG,
    help: "PATH : Gerrit's replication_log or pull_replication_log (any layout), followed",
    example: "/var/gerrit/logs/replication_log",
    config: None,
    parse: |rest| Ok(Arc::new(LogSpec(Input::file(rest, kind::GERRIT_LOG)?))),
};

pub const REST: Kind = Kind {
    name: kind::GERRIT_REST,
    help: "URL [,instance=ID] : .../a/projects/P/remotes/R/replication-status, polled every scrape interval; instance= names the node that answers (none: the node without an id)",
    example: "https://gerrit.example.com/a/projects/core/remotes/mirror/replication-status,instance=primary-1",
    config: None,
    parse: parse_rest,
};

pub const SSH: Kind = Kind {
    name: kind::GERRIT_SSH,
    help: "[USER@]HOST[:PORT] : `ssh ... gerrit stream-events`, reconnecting when it drops",
    example: "monitor@gerrit.example.com:29418",
    config: Some(super::config::SECTION),
    parse: |rest| {
        Ok(Arc::new(SshSpec(
            super::ssh::SshTarget::parse(rest).map_err(|e| eyre!("{e}"))?,
        )))
    },
};

/// `[gerrit] replication_retry` plus the slack.
fn retry_window(opts: &IngestOptions) -> std::time::Duration {
    opts.kinds
        .get::<super::config::GerritConfig>()
        .retry_window()
}

fn parse_rest(rest: &str) -> Result<Arc<dyn Spec>> {
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
    Ok(Arc::new(RestSpec(url.to_string(), instance)))
}

/// `gerrit stream-events` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsSpec(pub Input);

impl Spec for EventsSpec {
    fn key(&self) -> String {
        format!("{}:{}", kind::GERRIT_EVENTS, self.0.display())
    }
    fn path(&self) -> Option<&Path> {
        self.0.path()
    }
    fn build(&self, _key: String, opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(FollowedLines::new(
            self.0.clone(),
            super::events::StreamLines::default().with_retry_window(retry_window(opts)),
        )))
    }
}

/// `replication_log` / `pull_replication_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSpec(pub PathBuf);

impl Spec for LogSpec {
    fn key(&self) -> String {
        format!("{}:{}", kind::GERRIT_LOG, self.0.display())
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.0)
    }
    fn build(&self, _key: String, opts: &IngestOptions) -> Result<Box<dyn Source>> {
        let pull = self
            .0
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pull_replication_log"));
        Ok(Box::new(FollowedLines::new(
            Input::File(self.0.clone()),
            super::log_lines::LogLines::new(pull, opts.kinds.log_zone.clone()),
        )))
    }
}

/// The replication-status REST endpoint of one project/remote pair, and the node that
/// answers when the user names it (`,instance=ID`, `none` for the node without an id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestSpec(pub String, pub Option<String>);

impl Spec for RestSpec {
    fn key(&self) -> String {
        match &self.1 {
            None => format!("{}:{}", kind::GERRIT_REST, self.0),
            Some(i) => format!("{}:{}{INSTANCE_OPTION}{i}", kind::GERRIT_REST, self.0),
        }
    }
    fn build(&self, _key: String, _opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(super::rest::RestSource::new(
            self.0.clone(),
            self.1.as_deref().map(super::rest::answering_instance),
        )))
    }
}

/// `gerrit stream-events` over the system's ssh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec(pub super::ssh::SshTarget);

impl Spec for SshSpec {
    fn key(&self) -> String {
        format!(
            "{}:{}:{}",
            kind::GERRIT_SSH,
            self.0.destination,
            self.0.port
        )
    }
    fn build(&self, key: String, opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(
            super::ssh::SshStreamSource::new(key, self.0.clone())
                .with_retry_window(retry_window(opts)),
        ))
    }
}
