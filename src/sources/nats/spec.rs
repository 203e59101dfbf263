//! `nats:nats://HOST:PORT/STREAM`: its row of the registry, and its config section `[nats]`
//! (the type, [`NatsConfig`], is beside the connection it configures; the environment's
//! `SYNCSCOPE_NATS_*` win over it, applied by [`NatsConfig::with_env`] when a source or the
//! forwarder is built).

use std::sync::Arc;

use color_eyre::eyre::Result;

use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::sources::registry::{Kind, Spec};
use crate::sources::settings::{KindConfig, Section};

pub use super::NatsConfig;

impl KindConfig for NatsConfig {
    const NAME: &'static str = "nats";
}

/// `[nats]`, read by `nats:` sources and `ingest --forward`.
pub const SECTION: Section = Section::of::<NatsConfig>();

pub const KIND: Kind = Kind {
    name: kind::NATS,
    help: "nats://HOST:PORT/STREAM : a JetStream stream fed by `ingest --forward`, read by a durable consumer named after the store ([nats] in the config)",
    example: "nats://127.0.0.1:4222/SYNCSCOPE",
    config: Some(SECTION),
    parse: |rest| Ok(Arc::new(NatsSpec(super::NatsTarget::parse(rest)?))),
};

/// A JetStream stream to consume.
#[derive(Debug, Clone)]
pub struct NatsSpec(pub super::NatsTarget);

impl Spec for NatsSpec {
    fn key(&self) -> String {
        format!("{}:{}", kind::NATS, self.0.display())
    }
    /// With the `[nats]` credentials, the environment's over them.
    fn build(&self, _key: String, opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(super::consume::NatsSource::new(
            self.0.clone(),
            opts.kinds.get::<NatsConfig>().with_env(),
        )))
    }
}
