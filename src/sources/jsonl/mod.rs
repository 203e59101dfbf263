//! `jsonl:PATH` / `jsonl:-`: syncscope's own JSON lines (one event per line, the model's field
//! names), followed like `tail -F` by the generic followed-lines source.

use std::path::Path;
use std::sync::Arc;

use color_eyre::eyre::Result;

use super::lines::{FollowedLines, LineFormat, NoState, Parsed};
use super::registry::{Kind, Spec};
use super::Input;
use crate::ingest::{IngestOptions, Source};
use crate::model::names::kind;
use crate::model::parse_wire_event;

/// The system name given to lines that do not name one.
pub const DEFAULT_SOURCE: &str = crate::model::names::system::JSONL;

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
        Ok(Box::new(FollowedLines::new(self.0.clone(), JsonlLines)))
    }
}

/// One event per line with the event model's field names; nothing kept between lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonlLines;

impl LineFormat for JsonlLines {
    type State = NoState;

    fn feed<'b>(
        &mut self,
        bytes: &'b [u8],
        number: u64,
        _offset: u64,
        emit: &mut dyn FnMut(Parsed<'b>),
    ) {
        match parse_wire_event(bytes, DEFAULT_SOURCE) {
            Ok(e) => emit(Parsed::Event(e, Vec::new())),
            Err(e) => emit(Parsed::Reject {
                number,
                reason: e.0,
                bytes,
            }),
        }
    }

    fn state(&self) -> NoState {
        NoState {}
    }

    fn resume(&mut self, _state: NoState) {}
}
