//! `[gerrit]` of the config file: the Gerrit kinds' own section.

use serde::Deserialize;

/// `[gerrit]`.
#[derive(Debug, Default, Deserialize, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
pub struct GerritConfig {
    /// `status` answers as the replication-status plugin on the node with this
    /// `gerrit.instanceId` would (`none`: the node without one); `--instance` wins.
    pub instance_id: Option<String>,
    /// Gerrit's `remote.NAME.replicationRetry`, in minutes as there (default 1): a failed push
    /// not scheduled again within it plus a minute's slack is given up, an error event.
    pub replication_retry: Option<u32>,
}

impl GerritConfig {
    /// `replication_retry` plus the slack.
    pub fn retry_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(
            u64::from(self.replication_retry.unwrap_or(1)) * 60 + super::given_up::SLACK_SECS,
        )
    }
}

impl crate::sources::settings::KindConfig for GerritConfig {
    const NAME: &'static str = "gerrit";
}

/// `[gerrit]`, read by `gerrit-events:` and `gerrit-ssh:` (their retry window) and `status`.
pub const SECTION: crate::sources::settings::Section =
    crate::sources::settings::Section::of::<GerritConfig>();
