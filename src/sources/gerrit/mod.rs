//! Gerrit: `gerrit-events:` (stream-events lines), `gerrit-log:` (replication_log),
//! `gerrit-rest:` (replication-status polled) and `gerrit-ssh:` (stream-events over ssh).

pub mod config;
pub mod events;
pub mod given_up;
pub mod log;
pub mod log_lines;
pub mod ordinals;
pub mod rest;
pub mod spec;
pub mod ssh;
pub mod stream;
