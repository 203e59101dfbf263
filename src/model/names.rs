//! Typed names: the systems events come from (`Event::source`) and the source kinds of
//! `KIND:WHERE` (the prefix of a source's stored key). Code names them through these constants,
//! never through string literals.

/// The systems an event comes from (`Event::source`, the `--systems` filter).
pub mod system {
    pub const GERRIT: &str = "gerrit";
    pub const NGIT: &str = "ngit";
    pub const SPACEDRIVE: &str = "spacedrive";
    pub const GITLAB: &str = "gitlab";
    /// Lines of syncscope's own JSONL that name no system.
    pub const JSONL: &str = "jsonl";
}

/// The source kinds (`KIND` of `KIND:WHERE`); a source's key starts with `KIND:`.
pub mod kind {
    pub const JSONL: &str = "jsonl";
    pub const SPACEDRIVE_DB: &str = "spacedrive-db";
    pub const SPACEDRIVE_JSON: &str = "spacedrive-json";
    pub const GERRIT_EVENTS: &str = "gerrit-events";
    pub const GERRIT_LOG: &str = "gerrit-log";
    pub const GERRIT_REST: &str = "gerrit-rest";
    pub const GERRIT_SSH: &str = "gerrit-ssh";
    pub const GITLAB: &str = "gitlab";
    pub const NGIT_METRICS: &str = "ngit-metrics";
    pub const PROMETHEUS: &str = "prometheus";
    pub const NATS: &str = "nats";

    /// The key prefix of a source of `kind` (`ngit-metrics:`).
    pub fn prefix(kind: &str) -> String {
        format!("{kind}:")
    }

    /// Whether a stored source key is one of `kind` (`ngit-metrics:http://…` is `ngit-metrics`).
    pub fn is(key: &str, kind: &str) -> bool {
        key.strip_prefix(kind).is_some_and(|r| r.starts_with(':'))
    }
}
