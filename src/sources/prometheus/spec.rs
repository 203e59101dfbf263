//! `prometheus:URL[,selector={...}]`: its row of the registry.

use std::sync::Arc;

use color_eyre::eyre::{Result, WrapErr};

use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::sources::registry::{Kind, Spec};
use crate::sources::settings::KindSettings;

pub const KIND: Kind = Kind {
    name: kind::PROMETHEUS,
    help: "URL [,selector={job=\"ngit\"}] : the ngit relays of a fleet from a Prometheus HTTP API (http://HOST:9090), each instance a target, queried every scrape interval",
    example: "http://127.0.0.1:9090,selector={job=\"ngit\"}",
    config: Some(super::config::SECTION),
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
    /// A source that names no selector takes the config's `[prometheus] selector` (its key,
    /// and so its stored state, then names that selector); one that names its own keeps it.
    fn configured(&self, settings: &KindSettings) -> Result<Option<Arc<dyn Spec>>> {
        let config = settings.get::<super::config::PrometheusConfig>();
        match (&self.selector, config.selector.as_deref()) {
            (None, Some(sel)) => {
                let m = super::matchers(sel).wrap_err("[prometheus] selector in the config")?;
                Ok(Some(m).filter(|m| !m.is_empty()).map(|m| {
                    Arc::new(PrometheusSpec {
                        url: self.url.clone(),
                        selector: Some(m),
                    }) as Arc<dyn Spec>
                }))
            }
            _ => Ok(None),
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
