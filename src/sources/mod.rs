//! Sources: each real system's wire format turned into the common [`Event`](crate::model::Event).
//!
//! A source is named on the command line or in the config as `KIND:WHERE`
//! (`jsonl:/var/log/app/events.jsonl`, `spacedrive-db:~/…/sync.db`, `spacedrive-json:-`).
//! Each kind is a folder here and one row of [`registry::KINDS`].

pub mod backoff;
pub mod client;
pub mod gerrit;
pub mod gitlab;
pub mod jsonl;
pub mod lines;
pub mod nats;
pub mod ngit;
pub mod poll;
pub mod prometheus;
pub mod registry;
pub mod settings;
pub mod spacedrive;

use std::path::{Path, PathBuf};

use color_eyre::eyre::{bail, Result};

pub use crate::ingest::Source;
pub use registry::{plan, Kind, SourceSpec, KINDS};

/// Where a file-like source reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn parse(text: &str) -> Result<Input> {
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

    /// The file, when not standard input.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Input::Stdin => None,
            Input::File(p) => Some(p),
        }
    }

    /// A file path: `-` is refused (`KIND needs a file path, not -`).
    pub fn file(text: &str, kind: &str) -> Result<PathBuf> {
        match Input::parse(text)? {
            Input::File(p) => Ok(p),
            Input::Stdin => bail!("{kind} needs a file path, not -"),
        }
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

/// The option that names the device of a `spacedrive-json:` export.
pub const DEVICE_OPTION: &str = ",device=";

/// The option that names the Gerrit node a `gerrit-rest:` endpoint answers for.
pub const INSTANCE_OPTION: &str = ",instance=";

/// A trailing `,NAME=VALUE` option of a source, and how to explain a bad value.
pub(crate) struct SourceOption {
    kind: &'static str,
    option: &'static str,
    /// What the value is, for the messages (`device id`).
    what: &'static str,
    example: &'static str,
}

pub(crate) const DEVICE: SourceOption = SourceOption {
    kind: crate::model::names::kind::SPACEDRIVE_JSON,
    option: DEVICE_OPTION,
    what: "device id",
    example: "spacedrive-json:PATH,device=6f1c0000-0000-4000-8000-000000000001",
};

pub(crate) const INSTANCE: SourceOption = SourceOption {
    kind: crate::model::names::kind::GERRIT_REST,
    option: INSTANCE_OPTION,
    what: "instance id",
    example: "gerrit-rest:URL,instance=primary-1 (or ,instance=none for the node without an id)",
};

/// `WHERE,device=ID` -> (`WHERE`, `Some(ID)`); `WHERE` -> (`WHERE`, None): the last occurrence
/// of the option, so its value never holds another one.
pub(crate) fn split_option<'a>(
    rest: &'a str,
    opt: &SourceOption,
) -> Result<(&'a str, Option<String>)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rest(url: String, instance: Option<String>) -> SourceSpec {
        SourceSpec::new(&gerrit::spec::REST, gerrit::spec::RestSpec(url, instance))
    }
    fn sd_json(input: Input, device: Option<String>) -> SourceSpec {
        SourceSpec::new(
            &spacedrive::spec::JSON,
            spacedrive::spec::JsonSpec(input, device),
        )
    }
    fn jsonl(input: Input) -> SourceSpec {
        SourceSpec::new(&jsonl::KIND, jsonl::JsonlSpec(input))
    }

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
            sd_json(
                Input::File(PathBuf::from("/x/b.json")),
                Some("6f1c-01".into())
            )
        );
        assert_eq!(s.key(), "spacedrive-json:/x/b.json,device=6f1c-01");
        assert_eq!(s.path(), Some(Path::new("/x/b.json")));
        let stdin = SourceSpec::parse("spacedrive-json:-,device=d").unwrap();
        assert_eq!(stdin, sd_json(Input::Stdin, Some("d".into())));
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
        assert_eq!(s, rest(url.into(), Some("primary-b".into())));
        assert_eq!(s.key(), format!("gerrit-rest:{url},instance=primary-b"));
        let none = SourceSpec::parse(&format!("gerrit-rest:{url}/,instance=none")).unwrap();
        assert_eq!(none, rest(format!("{url}/"), Some("none".into())));
        let plain = SourceSpec::parse(&format!("gerrit-rest:{url}")).unwrap();
        assert_eq!(plain, rest(url.into(), None));
        assert_eq!(plain.key(), format!("gerrit-rest:{url}"));
        // `=` and even `,instance=` inside the URL are the URL's: the option only follows it.
        let odd = "https://g.example/a/projects/a%3Db,instance=x/remotes/m=1/replication-status";
        assert_eq!(
            SourceSpec::parse(&format!("gerrit-rest:{odd}")).unwrap(),
            rest(odd.into(), None)
        );
        assert_eq!(
            SourceSpec::parse(&format!("gerrit-rest:{odd},instance=n2")).unwrap(),
            rest(odd.into(), Some("n2".into()))
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
        let d = jsonl(Input::File(dir.path().to_path_buf()));
        assert!(d
            .preflight(false)
            .unwrap_err()
            .to_string()
            .contains("is a directory"));
        let missing = jsonl(Input::File(dir.path().join("nope")));
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
