//! Spacedrive's sync event log: the live `sync.db` (`db`) and `sd sync events` exports
//! (`export`). Both produce events with source `spacedrive`, so the same event read from a
//! device's database and from its export is stored once.

pub mod db;
pub mod export;
pub mod spec;

/// The system name of every Spacedrive event.
pub const SOURCE_NAME: &str = crate::model::names::system::SPACEDRIVE;
