//! Writing events out: `json` (Spacedrive's export field names plus `id`, `source`, `subject`),
//! `jsonl`, `sql` (Spacedrive's `sync_event_log` schema), `markdown` and an aligned `table`.
//! Every format streams one event at a time.

mod atomic;
mod formats;

pub use atomic::{write_output, write_stream, Output};
pub use formats::{EventWriter, Format, SQL_SCHEMA};
