//! `nats:nats://HOST:PORT/STREAM`: its row of the registry.

use std::sync::Arc;

use color_eyre::eyre::Result;

use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::sources::registry::{Kind, Spec};

pub const KIND: Kind = Kind {
    name: kind::NATS,
    help: "nats://HOST:PORT/STREAM : a JetStream stream fed by `ingest --forward`, read by a durable consumer named after the store ([nats] in the config)",
    example: "nats://127.0.0.1:4222/SYNCSCOPE",
    config: Some(crate::model::names::section::NATS),
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
            opts.nats.with_env(),
        )))
    }
}
