//! `gitlab:URL`: its row of the registry (settings in the config's `[gitlab]`).

use std::sync::Arc;

use color_eyre::eyre::{eyre, Result};

use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::sources::registry::{Kind, Spec};

pub const KIND: Kind = Kind {
    name: kind::GITLAB,
    help: "URL : a GitLab API (https://HOST/api/v4): nightly pipelines, failed jobs and their error patterns ([gitlab] in the config)",
    example: "https://gitlab.example.com/api/v4",
    config: Some(super::config::SECTION),
    parse: |rest| {
        Ok(Arc::new(GitlabSpec(
            super::api_base(rest).map_err(|e| eyre!("{e}"))?,
        )))
    },
};

/// A GitLab API base URL (`https://HOST/api/v4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitlabSpec(pub String);

impl Spec for GitlabSpec {
    fn key(&self) -> String {
        format!("{}:{}", kind::GITLAB, self.0)
    }
    fn build(&self, _key: String, opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(super::GitlabSource::new(
            self.0.clone(),
            opts.kinds.get::<super::config::GitlabConfig>().into_owned(),
        )?))
    }
}
