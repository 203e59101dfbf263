//! What a source kind's `build` reads besides its `WHERE`: its config section, typed
//! ([`KindConfig`], defined in the kind's folder), and the knobs kinds share (the log zone).
//! The registry checks and parses the sections (`sources::settings`); the ingest only carries
//! them, in [`crate::ingest::IngestOptions::kinds`].

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::model::LogZone;

/// A kind's typed config section (`[gitlab]`): deny_unknown_fields, every key optional.
pub trait KindConfig: DeserializeOwned + Default + Clone + Send + Sync + 'static {
    /// The section's name in the config file (`gitlab` for `[gitlab]`).
    const NAME: &'static str;
}

/// A parsed section, of its kind's type.
pub type Parsed = Arc<dyn Any + Send + Sync>;

/// The parsed sections of the kinds, and the knobs they share.
#[derive(Clone)]
pub struct KindSettings {
    parsed: BTreeMap<&'static str, Parsed>,
    /// The zone of server-local log timestamps (Gerrit's replication_log): `[ingest]
    /// log_timezone`, `--log-timezone`. Default local.
    pub log_zone: LogZone,
}

impl Default for KindSettings {
    fn default() -> Self {
        KindSettings {
            parsed: BTreeMap::new(),
            log_zone: LogZone::Local,
        }
    }
}

/// Names only (a section may hold secrets, as `[nats]` does).
impl fmt::Debug for KindSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindSettings")
            .field("sections", &self.parsed.keys().collect::<Vec<_>>())
            .field("log_zone", &self.log_zone)
            .finish()
    }
}

impl KindSettings {
    /// The section of `T` as the config gave it, else its defaults.
    pub fn get<T: KindConfig>(&self) -> Cow<'_, T> {
        match self.parsed.get(T::NAME).and_then(|p| p.downcast_ref::<T>()) {
            Some(t) => Cow::Borrowed(t),
            None => Cow::Owned(T::default()),
        }
    }

    /// These settings with `value` as its section (the demo's `[gitlab]`, tests).
    pub fn with<T: KindConfig>(mut self, value: T) -> KindSettings {
        self.parsed.insert(T::NAME, Arc::new(value));
        self
    }

    /// These settings with `zone` as the log zone.
    pub fn with_log_zone(mut self, zone: LogZone) -> KindSettings {
        self.log_zone = zone;
        self
    }

    /// Sets the section `name`, parsed by its kind (the registry's parser).
    pub fn insert_parsed(&mut self, name: &'static str, value: Parsed) {
        self.parsed.insert(name, value);
    }

    /// Whether the section `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.parsed.contains_key(name)
    }
}
