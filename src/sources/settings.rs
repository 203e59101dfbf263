//! The kinds' config sections: each kind that reads a section of the config file (`[gitlab]`)
//! has its typed config in its folder (`sources/<kind>/config.rs`), implementing
//! [`KindConfig`], and names its [`Section`] in its registry row. The config file keeps the
//! sections as raw TOML tables; [`parse`] checks them against the registry (an unknown
//! section, or an unknown key in a known one, is an error naming it) and parses each with its
//! kind's type into [`KindSettings`], which a kind's `build` reads with [`KindSettings::get`].
//!
//! The environment's overrides (`SYNCSCOPE_NATS_*`) are applied by the kind that reads them,
//! in its folder; [`KindSettings::log_zone`] is the one knob shared by kinds (`[ingest]
//! log_timezone`, `--log-timezone`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::ingest::kinds::Parsed;
pub use crate::ingest::kinds::{KindConfig, KindSettings};

/// A config section a kind reads: its name and how it is parsed (into the kind's own type).
#[derive(Clone, Copy)]
pub struct Section {
    pub name: &'static str,
    /// Parses the section out of the whole config text (so that an error points at its line).
    parse: fn(&str) -> Result<Parsed, String>,
    /// The type it parses into (kinds sharing a section share its type: a test checks).
    pub type_id: fn() -> std::any::TypeId,
    /// Its name (`syncscope::sources::gitlab::config::GitlabConfig`).
    pub type_name: fn() -> &'static str,
}

impl Section {
    /// The section of the type `T` (`Section::of::<GitlabConfig>()`).
    pub const fn of<T: KindConfig>() -> Section {
        Section {
            name: T::NAME,
            parse: parse_as::<T>,
            type_id: std::any::TypeId::of::<T>,
            type_name: std::any::type_name::<T>,
        }
    }
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.name)
    }
}

/// The section `T::NAME` of the config text `text`, as `T` (its defaults when absent). Read
/// from the text itself, not from a parsed value, so that toml's errors name the line, the
/// column and the key.
fn parse_as<T: KindConfig>(text: &str) -> Result<Parsed, String> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| e.to_string())?;
    let t = serde::de::DeserializeSeed::deserialize(OnlySection::<T>(PhantomData), de)
        .map_err(|e| e.to_string().trim_end().to_string())?;
    Ok(Arc::new(t.unwrap_or_default()))
}

/// Visits a document's top level and deserializes only the table `T::NAME`.
struct OnlySection<T>(PhantomData<T>);

impl<'de, T: KindConfig> serde::de::DeserializeSeed<'de> for OnlySection<T> {
    type Value = Option<T>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: KindConfig> serde::de::Visitor<'de> for OnlySection<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a config file with a [{}] table", T::NAME)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut out = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == T::NAME {
                out = Some(map.next_value::<T>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// Every section some kind of the registry reads, each once, in the registry's order.
pub fn sections() -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for s in super::KINDS.iter().filter_map(|k| k.config) {
        if !out.iter().any(|o| o.name == s.name) {
            out.push(s);
        }
    }
    out
}

/// The sections of the config text `text` checked and parsed, `names` the top-level names
/// in it that are none of the config's own: a name no kind reads is refused, and so is a key
/// the kind does not know or a value of the wrong type (each message names the section and
/// the key; the caller adds the file).
pub fn parse<'a>(
    text: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<KindSettings, String> {
    let known = sections();
    let mut settings = KindSettings::default();
    for name in names {
        let Some(section) = known.iter().find(|s| s.name == name) else {
            let names: Vec<_> = known.iter().map(|s| format!("[{}]", s.name)).collect();
            return Err(format!(
                "`{}` is no source kind's section: they are {}",
                crate::sanitize::one_line(name),
                names.join(", ")
            ));
        };
        let value = (section.parse)(text).map_err(|e| format!("[{name}]: {e}"))?;
        settings.insert_parsed(section.name, value);
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::gerrit::config::GerritConfig;
    use crate::sources::gitlab::config::GitlabConfig;
    use std::collections::BTreeMap;

    fn raw(text: &str) -> Result<KindSettings, String> {
        // The config's own tables are not the kinds' (Config::parse passes only the others).
        let top: BTreeMap<String, toml::Value> = toml::from_str(text).unwrap();
        parse(text, top.keys().filter(|k| *k != "ingest"))
    }

    #[test]
    fn each_section_parses_into_its_kinds_type() {
        let s = raw("[gitlab]\nprojects = [\"g/a\"]\n[gerrit]\ninstance_id = \"p1\"\n").unwrap();
        assert_eq!(s.get::<GitlabConfig>().projects, ["g/a"]);
        assert_eq!(s.get::<GerritConfig>().instance_id.as_deref(), Some("p1"));
        assert!(s.has("gitlab") && !s.has("nats"));
        // An absent section is its defaults.
        let none = raw("").unwrap();
        assert_eq!(*none.get::<GitlabConfig>(), GitlabConfig::default());
    }

    #[test]
    fn unknown_sections_and_keys_are_refused_by_name() {
        let e = raw("[gitlb]\nx = 1\n").unwrap_err();
        assert!(e.contains("gitlb") && e.contains("[gitlab]"), "{e}");
        let e = raw("[gitlab]\ntoken = \"x\"\n").unwrap_err();
        assert!(e.contains("[gitlab]") && e.contains("token"), "{e}");
        let e = raw("gerrit = 3\n").unwrap_err();
        assert!(e.contains("[gerrit]") && e.contains("line 1"), "{e}");
        // A wrong type points at its line and names the key.
        let e = raw("[ingest]\n[gerrit]\nreplication_retry = \"x\"\n").unwrap_err();
        assert!(
            e.contains("replication_retry") && e.contains("line 3") && e.contains("u32"),
            "{e}"
        );
    }

    #[test]
    fn secrets_never_reach_a_debug_print() {
        let s = raw("[nats]\ntoken = \"s3cret\"\n").unwrap();
        let d = format!("{s:?}");
        assert!(d.contains("nats") && !d.contains("s3cret"), "{d}");
    }
}
