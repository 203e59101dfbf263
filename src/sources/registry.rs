//! The one table of source kinds. A kind is its folder (`sources/<kind>/`) and one row here:
//! its name, what follows the colon (the help text), an example, its config section (its own
//! type, in its folder: see [`super::settings`]), and how its `WHERE` is parsed into a [`Spec`]
//! (which knows its key, its file and how it is built). `SourceSpec::parse`, the `--source`
//! help, `sources` listings and the config (which sections it accepts) read this table.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use color_eyre::eyre::{bail, Result};

use super::settings::{KindSettings, Section};
use super::{gerrit, gitlab, jsonl, nats, ngit, prometheus, spacedrive};
use crate::ingest::{IngestOptions, Planned, Source};

/// One kind of source.
pub struct Kind {
    /// `KIND` of `KIND:WHERE`, and the prefix of every key of this kind.
    pub name: &'static str,
    /// What follows the colon, and what the source does.
    pub help: &'static str,
    /// A `WHERE` this kind parses (tests parse every example and its key back).
    pub example: &'static str,
    /// The config file section the kind reads besides `sources` (`[gitlab]`), if any: its
    /// name and its parser (into the kind's type, which its `build` reads from
    /// [`IngestOptions::kinds`]). Kinds may share one (`[gerrit]`).
    pub config: Option<Section>,
    /// Parses the `WHERE`.
    pub parse: fn(&str) -> Result<Arc<dyn Spec>>,
}

/// Every kind this build knows, in the order the help lists them.
pub const KINDS: &[Kind] = &[
    jsonl::KIND,
    spacedrive::spec::DB,
    spacedrive::spec::JSON,
    gerrit::spec::EVENTS,
    gerrit::spec::LOG,
    gerrit::spec::REST,
    gerrit::spec::SSH,
    gitlab::spec::KIND,
    ngit::spec::METRICS,
    prometheus::spec::KIND,
    nats::spec::KIND,
];

/// A parsed `WHERE` of one kind.
pub trait Spec: Send + Sync {
    /// The stable name under which the source's checkpoint and status are stored
    /// (`KIND:…`; stored checkpoints are keyed by it, so its format never changes).
    fn key(&self) -> String;
    /// The file the source reads, if any.
    fn path(&self) -> Option<&Path> {
        None
    }
    /// The running source, with the options it reads (its section in `opts.kinds`).
    fn build(&self, key: String, opts: &IngestOptions) -> Result<Box<dyn Source>>;
    /// This source as its config section makes it, when the section changes its identity
    /// (`[prometheus] selector` for a source that names none); `None` when it does not.
    fn configured(&self, _settings: &KindSettings) -> Result<Option<Arc<dyn Spec>>> {
        Ok(None)
    }
}

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// `jsonl, spacedrive-db, …`
pub fn kind_names() -> String {
    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// The `--source` help: one line per kind.
pub fn source_help() -> String {
    let mut s = String::from(
        "A source as KIND:WHERE (repeatable). Without any, the config's `sources` are used.\n",
    );
    for k in KINDS {
        s.push_str(&format!("  {}:{}\n", k.name, k.help));
    }
    s
}

/// The short `--source` help: the kinds.
pub fn source_short_help() -> String {
    format!(
        "A source as KIND:WHERE (repeatable), KIND one of {}; without any, the config's `sources`",
        kind_names()
    )
}

/// A parsed `KIND:WHERE`.
#[derive(Clone)]
pub struct SourceSpec {
    kind: &'static Kind,
    spec: Arc<dyn Spec>,
}

impl fmt::Debug for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceSpec({})", self.key())
    }
}

/// Two specs are the same source when they have the same key (the key is the source's identity
/// in the store).
impl PartialEq for SourceSpec {
    fn eq(&self, other: &Self) -> bool {
        self.kind.name == other.kind.name && self.key() == other.key()
    }
}
impl Eq for SourceSpec {}

impl SourceSpec {
    pub fn parse(text: &str) -> Result<SourceSpec> {
        let Some((name, rest)) = text.split_once(':') else {
            bail!(
                "source '{text}' has no kind: write KIND:WHERE, with KIND one of {}",
                kind_names()
            );
        };
        let Some(kind) = kind(name) else {
            bail!(
                "unknown source kind '{name}' in '{text}': expected one of {}",
                kind_names()
            );
        };
        Ok(SourceSpec {
            kind,
            spec: (kind.parse)(rest)?,
        })
    }

    /// A spec of `kind` built in code (the demo names its files this way).
    pub fn new(kind: &'static Kind, spec: impl Spec + 'static) -> SourceSpec {
        SourceSpec {
            kind,
            spec: Arc::new(spec),
        }
    }

    pub fn kind(&self) -> &'static Kind {
        self.kind
    }

    /// The stable name under which the source's checkpoint and status are stored.
    pub fn key(&self) -> String {
        self.spec.key()
    }

    /// The file the source reads, if any.
    pub fn path(&self) -> Option<&Path> {
        self.spec.path()
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

    /// This source with what its config section says of its identity (see
    /// [`Spec::configured`]): call once, on a spec from the command line or the config, before
    /// its key is used.
    pub fn configured(self, settings: &KindSettings) -> Result<SourceSpec> {
        Ok(match self.spec.configured(settings)? {
            Some(spec) => SourceSpec {
                kind: self.kind,
                spec,
            },
            None => self,
        })
    }

    /// The running source, with the options it reads.
    pub fn build(&self, opts: &IngestOptions) -> Result<Box<dyn Source>> {
        self.spec.build(self.key(), opts)
    }
}

/// The sources `texts` (`KIND:WHERE` each) as their config sections make them (see
/// [`SourceSpec::configured`]): what `ingest` and the UI's own ingest run, so that one source
/// of the config has one key whichever runs it.
pub fn parse_configured(texts: &[String], settings: &KindSettings) -> Result<Vec<SourceSpec>> {
    texts
        .iter()
        .map(|t| SourceSpec::parse(t).and_then(|s| s.configured(settings)))
        .collect()
}

/// Builds every source for [`crate::ingest::run`], each with its key.
pub fn plan(specs: &[SourceSpec], opts: &IngestOptions) -> Result<Vec<Planned>> {
    specs
        .iter()
        .map(|s| {
            Ok(Planned {
                key: s.key(),
                source: s.build(opts)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_its_example_and_its_key_parses_back() {
        let mut names = std::collections::BTreeSet::new();
        for k in KINDS {
            assert!(names.insert(k.name), "{} listed twice", k.name);
            assert!(!k.help.is_empty() && !k.example.is_empty(), "{}", k.name);
            let text = format!("{}:{}", k.name, k.example);
            let spec = SourceSpec::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(spec.kind().name, k.name);
            let key = spec.key();
            assert!(
                crate::model::names::kind::is(&key, k.name),
                "{key} is not of {}",
                k.name
            );
            let again = SourceSpec::parse(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
            assert_eq!(again, spec, "{text}");
            assert_eq!(again.key(), key);
            // The help lists it, with what follows the colon.
            assert!(source_help().contains(&format!("{}:{}", k.name, k.help)));
            assert!(source_short_help().contains(k.name));
            // It builds (with the settings of its config section).
            let config = crate::config::Config::parse(
                "[gitlab]\nprojects = [\"group/app\"]\n",
                Path::new("c.toml"),
            )
            .unwrap();
            let opts = IngestOptions {
                kinds: config.settings().clone(),
                ..IngestOptions::default()
            };
            spec.build(&opts).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        assert_eq!(
            kind_names(),
            "jsonl, spacedrive-db, spacedrive-json, gerrit-events, gerrit-log, gerrit-rest, gerrit-ssh, gitlab, ngit-metrics, prometheus, nats"
        );
    }

    /// The claim of the design: a kind with settings touches its folder and its row, never
    /// the config or the ingest. Neither names a kind's folder or a section's type.
    #[test]
    fn the_config_and_the_ingest_name_no_kind() {
        let files = [
            ("config.rs", include_str!("../config.rs")),
            ("ingest/mod.rs", include_str!("../ingest/mod.rs")),
            ("ingest/kinds.rs", include_str!("../ingest/kinds.rs")),
        ];
        // Each section's type (`GitlabConfig`) and its folder (`sources::gitlab`), from its
        // path (`syncscope::sources::gitlab::config::GitlabConfig`), and every folder.
        let mut words: Vec<String> = Vec::new();
        for s in KINDS.iter().filter_map(|k| k.config) {
            let path = (s.type_name)();
            words.extend(path.rsplit("::").next().map(str::to_string));
            let folder = path.split("::").skip_while(|p| *p != "sources").nth(1);
            words.extend(folder.map(|f| format!("sources::{f}")));
        }
        for folder in [
            "jsonl",
            "spacedrive",
            "gerrit",
            "gitlab",
            "ngit",
            "prometheus",
            "nats",
        ] {
            words.push(format!("sources::{folder}"));
        }
        assert!(words.contains(&"GitlabConfig".to_string()), "{words:?}");
        for (name, text) in files {
            // Their code, not their tests (which try the shipped example's sections).
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            for w in &words {
                assert!(!code.contains(w.as_str()), "{name} names {w}");
            }
        }
    }

    #[test]
    fn sources_of_the_config_are_keyed_as_their_sections_say() {
        let c = crate::config::Config::parse(
            "sources = [\"prometheus:http://h:9090\", \"prometheus:http://i:9090,selector={job=\\\"x\\\"}\", \"jsonl:-\"]\n[prometheus]\nselector = '{job=\"ngit\"}'\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let keys: Vec<_> = parse_configured(&c.sources, c.settings())
            .unwrap()
            .iter()
            .map(|s| s.key())
            .collect();
        assert_eq!(
            keys,
            [
                "prometheus:http://h:9090,selector={job=\"ngit\"}",
                "prometheus:http://i:9090,selector={job=\"x\"}",
                "jsonl:-"
            ]
        );
    }

    #[test]
    fn config_sections_are_the_configs() {
        let sections: Vec<_> = KINDS
            .iter()
            .filter_map(|k| k.config.map(|s| s.name))
            .collect();
        assert_eq!(
            sections,
            ["gerrit", "gerrit", "gitlab", "prometheus", "nats"]
        );
        let unique: Vec<_> = super::super::settings::sections()
            .iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(unique, ["gerrit", "gitlab", "prometheus", "nats"]);
        // Kinds that share a section share its type.
        for a in KINDS.iter().filter_map(|k| k.config) {
            for b in KINDS.iter().filter_map(|k| k.config) {
                if a.name == b.name {
                    assert_eq!((a.type_id)(), (b.type_id)(), "[{}]", a.name);
                }
            }
        }
        // Each is a section the config file accepts, parsed by its kind.
        for s in &unique {
            let text = format!("[{s}]\n");
            let c = crate::config::Config::parse(&text, Path::new("c.toml"))
                .unwrap_or_else(|e| panic!("[{s}]: {e}"));
            assert!(c.settings().has(s), "[{s}]");
        }
        // And no other: every other table the config accepts is not a kind's.
        for other in ["ingest", "events", "tui", "keys"] {
            assert!(!unique.contains(&other));
            crate::config::Config::parse(&format!("[{other}]\n"), Path::new("c.toml")).unwrap();
        }
        for s in ["gitlb", "relays", "spacedrive", "ngit"] {
            let e = crate::config::Config::parse(&format!("[{s}]\n"), Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(s) && e.contains("c.toml"), "{e}");
        }
        // The shipped example has exactly the kinds' sections besides the common ones.
        let example: toml::Table =
            toml::from_str(include_str!("../../assets/syncscope.example.toml")).unwrap();
        let tables: Vec<_> = example
            .iter()
            .filter(|(_, v)| v.is_table())
            .map(|(k, _)| k.as_str())
            .filter(|k| !["ingest", "events", "tui", "keys"].contains(k))
            .collect();
        let mut want = unique.clone();
        want.sort();
        assert_eq!(tables, want);
    }
}
