//! `prometheus:URL[,selector={...}]`: its row of the registry.

use std::sync::Arc;

use color_eyre::eyre::Result;

use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::sources::registry::{Kind, Spec};

pub const KIND: Kind = Kind {
    name: kind::PROMETHEUS,
    help: "URL [,selector={job=\"ngit\"}] : the ngit relays of a fleet from a Prometheus HTTP API (http://HOST:9090), each instance a target, queried every scrape interval",
    example: "http://127.0.0.1:9090,selector={job=\"ngit\"}",
    config: Some(crate::model::names::section::PROMETHEUS),
    parse: |rest| {
        let (url, selector) = super::parse_where(rest)?;
        Ok(Arc::new(PrometheusSpec { url, selector }))
    },
};

/// A Prometheus HTTP API base URL and the label matchers ANDed into its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusSpec {
    pub url: String,
    pub selector: Option<String>,
}

impl Spec for PrometheusSpec {
    fn key(&self) -> String {
        match &self.selector {
            None => format!("{}:{}", kind::PROMETHEUS, self.url),
            Some(m) => format!(
                "{}:{}{}{{{m}}}",
                kind::PROMETHEUS,
                self.url,
                super::SELECTOR_OPTION
            ),
        }
    }
    fn build(&self, key: String, _opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(super::PrometheusSource::new(
            key,
            self.url.clone(),
            self.selector.clone(),
        )))
    }
}
