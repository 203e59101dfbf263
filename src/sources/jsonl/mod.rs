//! `jsonl:PATH` / `jsonl:-`: syncscope's own JSON lines (one event per line, the model's field
//! names), followed like `tail -F` by the generic followed-lines source.

use std::path::Path;
use std::sync::Arc;

use color_eyre::eyre::Result;

use super::registry::{Kind, Spec};
use super::{lines, Input};
use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;

pub const KIND: Kind = Kind {
    name: kind::JSONL,
    help: "PATH or - : one JSON event per line, followed like tail -F",
    example: "/var/log/app/events.jsonl",
    config: None,
    parse: |rest| Ok(Arc::new(JsonlSpec(Input::parse(rest)?))),
};

/// `jsonl:` and what it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlSpec(pub Input);

impl Spec for JsonlSpec {
    fn key(&self) -> String {
        format!("{}:{}", kind::JSONL, self.0.display())
    }
    fn path(&self) -> Option<&Path> {
        self.0.path()
    }
    fn build(&self, _key: String, _opts: &IngestOptions) -> Result<Box<dyn Source>> {
        Ok(Box::new(lines::JsonlSource::new(self.0.clone())))
    }
}
