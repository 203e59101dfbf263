//! `[prometheus]` of the config file: the `prometheus:` kind's own section.

use serde::Deserialize;

/// `[prometheus]`: `selector = '{job="ngit"}'` is ANDed into the queries of every
/// `prometheus:URL` source that names no `,selector=` of its own.
#[derive(Debug, Default, Deserialize, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    pub selector: Option<String>,
}

impl crate::sources::settings::KindConfig for PrometheusConfig {
    const NAME: &'static str = "prometheus";
}

pub const SECTION: crate::sources::settings::Section =
    crate::sources::settings::Section::of::<PrometheusConfig>();
