//! `[gitlab]` of the config file: the `gitlab:` kind's own section.

use serde::Deserialize;

/// `[gitlab]`: how the `gitlab:URL` source reads GitLab CI's nightly pipelines. The token is
/// read from an environment variable or a file, never from the config or the command line.
#[derive(Debug, Default, Deserialize, PartialEq, Clone)]
#[serde(deny_unknown_fields)]
pub struct GitlabConfig {
    /// The environment variable holding the token. Default `SYNCSCOPE_GITLAB_TOKEN`.
    pub token_env: Option<String>,
    /// A file whose first line is the token (`~` expanded); used when the variable is unset.
    pub token_file: Option<String>,
    /// Project ids or paths (`group/sub/project`).
    #[serde(default)]
    pub projects: Vec<String>,
    /// A group (id or path): its projects and its subgroups' (archived ones left out).
    pub group: Option<String>,
    /// With `group`: also the projects shared into the group from elsewhere. Default false
    /// (`with_shared=false`).
    #[serde(default)]
    pub group_shared: bool,
    /// Every project the token is a member of.
    #[serde(default)]
    pub all_projects: bool,
    /// Pipeline sources that count as nightly. Default `["schedule"]`; `[]` with no
    /// `usernames` counts every pipeline.
    pub pipeline_sources: Option<Vec<String>>,
    /// The precise route: only the pipelines of these pipeline schedules (by description, or
    /// id) count among `source=schedule` ones, whoever owns the schedule.
    #[serde(default)]
    pub schedules: Vec<String>,
    /// Pipelines triggered by these users count as nightly too (`nightly-dev`).
    #[serde(default)]
    pub usernames: Vec<String>,
    /// Nights of history filled on the first run. Default 30.
    pub history_nights: Option<u32>,
    /// Seconds between polls while following. Default 300.
    pub poll_interval_secs: Option<u64>,
    /// The zone whose noon-to-noon defines a night (`UTC`, `local`, `Europe/Berlin`). Default local.
    pub timezone: Option<String>,
    /// Requests in flight at most. Default 4.
    pub max_in_flight: Option<usize>,
    /// Look at the jobs of passed pipelines for allowed-to-fail failures ("passed with
    /// warnings"): one request per passed pipeline. Default true.
    pub check_warnings: Option<bool>,
    /// Follow trigger jobs (bridges) to their child and multi-project downstream pipelines:
    /// one more request per finished nightly pipeline, two per failed downstream one.
    /// Default true.
    pub downstream: Option<bool>,
    /// A rules file (`[[rule]]` tables), tried after the rules below and before the defaults.
    pub rules_file: Option<String>,
    /// Use the shipped rules (assets/ci-rules.toml) after yours. Default true.
    pub default_rules: Option<bool>,
    /// Error rules, tried first: `[[gitlab.rule]]` with name, regex (one capture group), issue.
    #[serde(default, rename = "rule")]
    pub rules: Vec<crate::model::ci::RuleSpec>,
}

impl crate::sources::settings::KindConfig for GitlabConfig {
    const NAME: &'static str = "gitlab";
}

/// `[gitlab]`, read by `gitlab:` (and by `failures` and `serve`: where nights are counted).
pub const SECTION: crate::sources::settings::Section =
    crate::sources::settings::Section::of::<GitlabConfig>();
