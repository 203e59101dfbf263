//! `ngit-metrics:URL`: its row of the registry.

use std::sync::Arc;

use color_eyre::eyre::{eyre, Result};

use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::sources::client;
use crate::sources::registry::{Kind, Spec};

pub const METRICS: Kind = Kind {
    name: kind::NGIT_METRICS,
    help: "URL : an ngit (GRASP) relay's http://HOST:PORT/metrics, scraped every scrape interval",
    example: "http://127.0.0.1:9090/metrics",
    config: None,
    parse: |rest| {
        client::parse_url(rest).map_err(|e| eyre!("{e}"))?;
        Ok(Arc::new(MetricsSpec(rest.to_string())))
    },
};

/// A relay's `/metrics` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSpec(pub String);

impl Spec for MetricsSpec {
    fn key(&self) -> String {
        format!("{}:{}", kind::NGIT_METRICS, self.0)
    }
    fn build(&self, _key: String, _opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(super::MetricsSource::new(self.0.clone())))
    }
}
