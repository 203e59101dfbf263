//! `syncscope.toml`: every source and option of the command line can be set here; the command
//! line wins. See `assets/syncscope.example.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use color_eyre::eyre::{Result, WrapErr};
use serde::Deserialize;

use crate::export::Format;
use crate::sources::settings::KindSettings;

/// Unknown top-level keys and sections are refused by [`Config::parse`] (the kinds' sections
/// are collected by `flatten`, which `deny_unknown_fields` cannot be combined with).
#[derive(Debug, Default, Deserialize)]
pub struct Config {
    /// The store path (`~` expanded).
    pub db: Option<String>,
    /// Sources as `KIND:WHERE`.
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub events: EventsConfig,
    #[serde(default)]
    pub tui: TuiConfig,
    /// The sources' own sections (`[gitlab]`, `[gerrit]`, `[prometheus]`, `[nats]`: each
    /// kind's, see `sources::settings`), as written; [`Config::parse`] checks and parses them.
    #[serde(flatten)]
    pub kinds: BTreeMap<String, toml::Value>,
    /// `kinds` parsed by their kinds (what [`Config::settings`] answers).
    #[serde(skip)]
    settings: KindSettings,
    /// Key overrides of the UI: action name → a key or a list of keys (`quit = "x"`).
    #[serde(default)]
    pub keys: BTreeMap<String, KeyList>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TuiConfig {
    /// dark, light or mono.
    pub theme: Option<String>,
}

/// One key or several.
#[derive(Debug, Deserialize, PartialEq, Clone)]
#[serde(untagged)]
pub enum KeyList {
    One(String),
    Many(Vec<String>),
}

impl KeyList {
    pub fn keys(&self) -> Vec<String> {
        match self {
            KeyList::One(k) => vec![k.clone()],
            KeyList::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub retention_days: Option<u32>,
    pub poll_interval_ms: Option<u64>,
    pub scrape_interval_ms: Option<u64>,
    pub log_timezone: Option<String>,
    pub batch_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    pub format: Option<Format>,
    pub limit: Option<u64>,
}

/// The line (from 1) where the top-level key or table `name` is written, if it is written
/// plainly (`name = …`, `name.x = …`, `[name]`, `[name.x]`, `[[name]]`).
fn line_of(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches('[').trim_start();
            l.strip_prefix(name)
                .and_then(|r| r.trim_start().chars().next())
                .is_some_and(|c| matches!(c, '=' | '.' | ']'))
        })
        .map(|i| i + 1)
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "syncscope")
}

/// Where the config is read from when `--config` is not given.
pub fn default_config_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("syncscope.toml"))
}

/// Where the store lives when neither `--db` nor the config names it.
pub fn default_db_path() -> PathBuf {
    project_dirs()
        .map(|d| d.data_dir().join("syncscope.db"))
        .unwrap_or_else(|| PathBuf::from("syncscope.db"))
}

impl Config {
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            color_eyre::eyre::eyre!("config {}: {}", path.display(), e.to_string().trim_end())
        })?;
        let sections = crate::sources::settings::sections();
        if let Some(name) = config
            .kinds
            .keys()
            .find(|k| !sections.iter().any(|s| s.name == k.as_str()))
        {
            let line = line_of(text, name)
                .map(|n| format!(" (line {n})"))
                .unwrap_or_default();
            let names: Vec<_> = sections.iter().map(|s| format!("[{}]", s.name)).collect();
            color_eyre::eyre::bail!(
                "config {}: unknown field or section `{}`{line}: the config file knows db, sources, [ingest], [events], [tui], [keys] and the sources' {}",
                path.display(),
                crate::sanitize::one_line(name),
                names.join(", ")
            );
        }
        config.settings = crate::sources::settings::parse(text, config.kinds.keys())
            .map_err(|e| color_eyre::eyre::eyre!("config {}: {e}", path.display()))?;
        Ok(config)
    }

    /// The sources' sections, parsed by their kinds (`settings().get::<TheKindsConfig>()`).
    /// The log zone is not among them: it is the ingest's (`[ingest] log_timezone`).
    pub fn settings(&self) -> &KindSettings {
        &self.settings
    }

    /// Loads `explicit` (which must exist), else the default path if it exists, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => match default_config_path() {
                Some(p) => (p, false),
                None => return Ok(Config::default()),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&text, &path),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Config::default())
            }
            Err(e) => Err(e).wrap_err_with(|| format!("cannot read config {}", path.display())),
        }
    }

    /// The store path: `--db`, else the config's `db`, else the XDG default.
    pub fn db_path(&self, cli: Option<&Path>) -> PathBuf {
        match (cli, &self.db) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(d)) => crate::sources::expand_tilde(d),
            (None, None) => default_db_path(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../assets/syncscope.example.toml");
        let c = Config::parse(text, Path::new("example")).unwrap();
        assert!(!c.sources.is_empty());
        for s in &c.sources {
            crate::sources::SourceSpec::parse(s).unwrap();
        }
        assert_eq!(c.ingest.retention_days, Some(7));
        // Its [gitlab] section builds a source with its rules.
        let gitlab = c
            .settings()
            .get::<crate::sources::gitlab::config::GitlabConfig>();
        assert_eq!(gitlab.rules.len(), 1);
        crate::sources::gitlab::rules(&gitlab).unwrap();
        // Every section it has is a kind's, parsed by that kind.
        assert!(!c.kinds.is_empty());
        for name in c.kinds.keys() {
            assert!(c.settings().has(name), "[{name}]");
        }
        assert!(Config::parse("[gitlab]\ntoken = \"x\"", Path::new("c.toml")).is_err());
        // Its theme and key overrides are valid too.
        assert!(crate::tui::theme::ThemeName::parse(c.tui.theme.as_deref().unwrap()).is_some());
        crate::commands::tui::keymap(&c).unwrap();
    }

    #[test]
    fn source_options_in_the_config() {
        let text = "sources = [\"gerrit-rest:https://g/a/projects/p/remotes/r/replication-status,instance=primary-b\", \"spacedrive-json:/x.json,device=d1\"]";
        let c = Config::parse(text, Path::new("c.toml")).unwrap();
        let specs: Vec<_> = c
            .sources
            .iter()
            .map(|s| crate::sources::SourceSpec::parse(s).unwrap())
            .collect();
        assert_eq!(
            specs[0],
            crate::sources::SourceSpec::new(
                &crate::sources::gerrit::spec::REST,
                crate::sources::gerrit::spec::RestSpec(
                    "https://g/a/projects/p/remotes/r/replication-status".into(),
                    Some("primary-b".into())
                )
            )
        );
        assert!(specs[1].key().ends_with(",device=d1"));
    }

    #[test]
    fn typos_are_errors_naming_the_file() {
        let err = Config::parse("db = \"x\"\nsorces = []", Path::new("/etc/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/etc/x.toml") && err.contains("sorces") && err.contains("line 2"),
            "{err}"
        );
        let err = Config::parse("[tui]\n\n[ gitlb . x ]\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gitlb") && err.contains("line 3"), "{err}");
        // A section no kind reads, and a typo in a kind's section, name the file and the key.
        for (text, word) in [
            ("[gitlb]\nprojects = []", "gitlb"),
            ("[gerrit]\ninstance = \"p\"", "instance"),
            ("[nats]\ntoken_file = \"/x\"", "token_file"),
            ("[prometheus]\nselector = 3", "selector"),
        ] {
            let err = Config::parse(text, Path::new("/etc/x.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("/etc/x.toml") && err.contains(word), "{err}");
        }
        let err = Config::parse("[ingest]\nretention_days = \"a week\"", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention_days"), "{err}");
    }

    #[test]
    fn bad_keys_in_the_config_are_errors_naming_them() {
        let c = Config::parse("[keys]\nquit = \"j\"", Path::new("c.toml")).unwrap();
        let e = crate::commands::tui::keymap(&c).unwrap_err().to_string();
        assert!(e.contains("quit") && e.contains("down"), "{e}");
        let c = Config::parse("[keys]\nquit = [\"x\", \"F1\"]", Path::new("c.toml")).unwrap();
        assert!(crate::commands::tui::keymap(&c).is_err(), "F1 is help's");
        assert!(Config::parse("[tui]\nthem = \"x\"", Path::new("c.toml")).is_err());
    }

    #[test]
    fn missing_explicit_config_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/syncscope.toml"))).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/syncscope.toml"));
    }
}
