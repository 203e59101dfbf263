//! `spacedrive-db:PATH` and `spacedrive-json:PATH|-[,device=ID]`: their rows of the registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use color_eyre::eyre::Result;

use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::sources::registry::{Kind, Spec};
use crate::sources::{split_option, Input, DEVICE, DEVICE_OPTION};

pub const DB: Kind = Kind {
    name: kind::SPACEDRIVE_DB,
    help: "PATH : a live Spacedrive sync.db, read-only, following new rows",
    example: "/home/me/.local/share/spacedrive/sync.db",
    config: None,
    parse: |rest| Ok(Arc::new(DbSpec(Input::file(rest, kind::SPACEDRIVE_DB)?))),
};

pub const JSON: Kind = Kind {
    name: kind::SPACEDRIVE_JSON,
    help: "PATH or - [,device=ID] : an `sd sync events` JSON export (either shape); device= names the device a default export was taken from",
    example: "/tmp/events.json,device=6f1c0000-0000-4000-8000-000000000001",
    config: None,
    parse: |rest| {
        let (path, device) = split_option(rest, &DEVICE)?;
        Ok(Arc::new(JsonSpec(Input::parse(path)?, device)))
    },
};

/// A live `sync.db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbSpec(pub PathBuf);

impl Spec for DbSpec {
    fn key(&self) -> String {
        format!("{}:{}", kind::SPACEDRIVE_DB, self.0.display())
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.0)
    }
    fn build(&self, _key: String, _opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(super::db::SyncDbSource::new(self.0.clone())))
    }
}

/// An export, and the device it was taken from when the user names it (`,device=ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSpec(pub Input, pub Option<String>);

impl Spec for JsonSpec {
    fn key(&self) -> String {
        match &self.1 {
            None => format!("{}:{}", kind::SPACEDRIVE_JSON, self.0.display()),
            Some(d) => format!(
                "{}:{}{DEVICE_OPTION}{d}",
                kind::SPACEDRIVE_JSON,
                self.0.display()
            ),
        }
    }
    fn path(&self) -> Option<&Path> {
        self.0.path()
    }
    fn build(&self, _key: String, _opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(super::export::ExportSource::new(
            self.0.clone(),
            self.1.clone(),
        )))
    }
}
