//! GitLab CI nightly failures, without I/O: job logs cleaned and kept bounded ([`log`]), error
//! patterns from ordered rules or a masked fingerprint ([`fingerprint`]), and "nights".
//!
//! A night is labelled by the date of the morning it ends: pipelines created from 12:00 on
//! D-1 to 11:59 on D (in the configured zone) belong to night D, so a 22:00 and a 02:00
//! schedule fall in the same night.

pub mod fingerprint;
pub mod log;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use crate::model::gerrit_log::LogZone;
use crate::model::Timestamp;
pub use log::{LogScanner, ScannedLog};

/// The event source name of GitLab CI events.
pub const SOURCE: &str = "gitlab";
/// The default rules, shipped in `assets/ci-rules.toml`.
pub const DEFAULT_RULES: &str = include_str!("../../../assets/ci-rules.toml");
/// Nights of a project's strip.
pub const STRIP_NIGHTS: u32 = 14;
/// Prevalence windows.
pub const PREVALENCE_SHORT: u32 = 14;
pub const PREVALENCE_LONG: u32 = 30;
/// The hour (local) a night starts the day before its label.
pub const NIGHT_START_HOUR: i64 = 12;
/// Bytes of a log's end stored with a failed job.
pub const STORED_TAIL_BYTES: usize = 4096;
/// Bytes of the excerpt stored with a failed job.
pub const STORED_EXCERPT_BYTES: usize = 2048;

/// One rule as written in a rules file or the config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    pub regex: String,
    /// A known issue for every pattern of this rule.
    #[serde(default)]
    pub issue: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default, rename = "rule")]
    rules: Vec<RuleSpec>,
}

/// Reads a rules file (`[[rule]]` tables).
pub fn parse_rules(text: &str) -> Result<Vec<RuleSpec>, String> {
    toml::from_str::<RulesFile>(text)
        .map(|f| f.rules)
        .map_err(|e| e.to_string().trim_end().to_string())
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub regex: regex::Regex,
    pub issue: Option<String>,
}

/// The ordered rules: the first that matches names the pattern.
#[derive(Debug, Clone, Default)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    pub fn compile(specs: &[RuleSpec]) -> Result<Rules, String> {
        let mut out = Vec::with_capacity(specs.len());
        for s in specs {
            let regex = regex::Regex::new(&s.regex)
                .map_err(|e| format!("rule '{}': bad regex: {e}", s.name))?;
            if regex.captures_len() != 2 {
                return Err(format!(
                    "rule '{}': the regex needs exactly one capture group (the pattern's identity), it has {}",
                    s.name,
                    regex.captures_len() - 1
                ));
            }
            out.push(Rule {
                name: s.name.clone(),
                regex,
                issue: s.issue.clone(),
            });
        }
        Ok(Rules(out))
    }

    /// The shipped defaults.
    pub fn defaults() -> Result<Rules, String> {
        Rules::compile(&parse_rules(DEFAULT_RULES)?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternKind {
    /// A rule matched; the identity is its masked capture.
    Rule,
    /// No rule matched; the identity is the masked decisive line(s).
    Fingerprint,
}

impl PatternKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PatternKind::Rule => "rule",
            PatternKind::Fingerprint => "fingerprint",
        }
    }
    pub fn parse(s: &str) -> PatternKind {
        if s == "rule" {
            PatternKind::Rule
        } else {
            PatternKind::Fingerprint
        }
    }
}

/// An error pattern: what groups failures together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pattern {
    /// 12 hex digits, stable across runs and stores (a hash of kind, name and identity).
    pub id: String,
    pub kind: PatternKind,
    /// The rule's name, or `unmatched`.
    pub name: String,
    /// The masked text that is the same for every failure of the pattern.
    pub identity: String,
    /// The rule's issue URL, if it names one.
    pub issue_url: Option<String>,
}

impl Pattern {
    pub fn new(kind: PatternKind, name: &str, identity: &str, issue_url: Option<String>) -> Self {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(kind.as_str().as_bytes());
        h.update(&[0]);
        h.update(name.as_bytes());
        h.update(&[0]);
        h.update(identity.as_bytes());
        Pattern {
            id: format!("{:012x}", h.digest() >> 16),
            kind,
            name: name.to_string(),
            identity: identity.to_string(),
            issue_url,
        }
    }
}

/// What a failed job's log says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    pub pattern: Pattern,
    /// The matched lines (bounded).
    pub excerpt: String,
    /// The section the decisive line was printed in (`step_script`).
    pub section: Option<String>,
    /// The log's last lines (bounded).
    pub tail: String,
}

/// The text rules are matched against: the failure reason, the kept error lines with their
/// context, and the tail.
fn match_text(log: Option<&ScannedLog>, failure_reason: Option<&str>) -> String {
    let mut text = String::new();
    if let Some(r) = failure_reason {
        text.push_str("failure_reason: ");
        text.push_str(r);
        text.push('\n');
    }
    if let Some(log) = log {
        for c in &log.candidates {
            text.push_str(&c.line);
            text.push('\n');
            for l in &c.context {
                text.push_str(l);
                text.push('\n');
            }
        }
        for (l, _) in &log.tail {
            text.push_str(l);
            text.push('\n');
        }
    }
    text
}

/// Up to `max` bytes of `s`, cut at a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The last `max` bytes of `s`, starting at a line.
fn clip_end(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    let t = &s[start..];
    t.find('\n').map_or(t, |i| &t[i + 1..])
}

/// The lines around byte `at` of `text`: the line it is in and the next few.
fn lines_at(text: &str, at: usize, count: usize) -> String {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let excerpt: Vec<&str> = text[start..].lines().take(count).collect();
    clip(&excerpt.join("\n"), STORED_EXCERPT_BYTES).to_string()
}

/// The pattern, excerpt and tail of a failed job, from its scanned log (None: the log was
/// erased or could not be read) and GitLab's `failure_reason`.
pub fn analyze(log: Option<&ScannedLog>, failure_reason: Option<&str>, rules: &Rules) -> Analysis {
    let text = match_text(log, failure_reason);
    let tail = log
        .map(|l| {
            let all: Vec<&str> = l.tail.iter().map(|(t, _)| t.as_str()).collect();
            clip_end(&all.join("\n"), STORED_TAIL_BYTES).to_string()
        })
        .unwrap_or_default();
    for rule in &rules.0 {
        if let Some(c) = rule.regex.captures(&text) {
            let (Some(whole), Some(cap)) = (c.get(0), c.get(1)) else {
                continue;
            };
            let identity = fingerprint::mask_capture(cap.as_str());
            let section = log.and_then(|l| section_of(l, cap.as_str()));
            return Analysis {
                pattern: Pattern::new(PatternKind::Rule, &rule.name, &identity, rule.issue.clone()),
                excerpt: lines_at(&text, whole.start(), 6),
                section,
                tail,
            };
        }
    }
    let (identity, excerpt, section) = match log.and_then(fingerprint::decisive) {
        Some((line, section)) => (fingerprint::mask(&line), line, section),
        None => {
            let why = match (log, failure_reason) {
                (None, Some(r)) => format!("no log; failure_reason {r}"),
                (None, None) => "no log".to_string(),
                (Some(_), Some(r)) => format!("empty log; failure_reason {r}"),
                (Some(_), None) => "empty log".to_string(),
            };
            (why.clone(), why, None)
        }
    };
    Analysis {
        pattern: Pattern::new(PatternKind::Fingerprint, "unmatched", &identity, None),
        excerpt: clip(&excerpt, STORED_EXCERPT_BYTES).to_string(),
        section,
        tail,
    }
}

/// A failure without a log: its pattern is `name` with the masked `text` (a pipeline that
/// failed before any job ran, a trigger job whose downstream pipeline cannot be read).
pub fn without_log(name: &str, text: &str) -> Analysis {
    let text = crate::sanitize::one_line(text);
    let text = clip(text.trim(), STORED_EXCERPT_BYTES);
    Analysis {
        pattern: Pattern::new(
            PatternKind::Fingerprint,
            name,
            &fingerprint::mask(text),
            None,
        ),
        excerpt: text.to_string(),
        section: None,
        tail: String::new(),
    }
}

/// A pipeline that failed with no failed job (nothing ran: a YAML or config error): the pattern
/// comes from GitLab's `yaml_errors`, else the pipeline's `detailed_status` label.
pub fn pipeline_failure(yaml_errors: Option<&str>, status_label: Option<&str>) -> Analysis {
    match yaml_errors.map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => without_log("pipeline configuration error", e),
        None => without_log(
            "pipeline failed before any job",
            &format!(
                "pipeline {} with no failed job",
                status_label.unwrap_or("failed")
            ),
        ),
    }
}

/// The section of the first kept line containing `needle`.
fn section_of(log: &ScannedLog, needle: &str) -> Option<String> {
    let first_line = needle.lines().next().unwrap_or(needle);
    for c in &log.candidates {
        if c.line.contains(first_line) || c.context.iter().any(|l| l.contains(first_line)) {
            return c.section.clone();
        }
    }
    log.tail
        .iter()
        .find(|(l, _)| l.contains(first_line))
        .and_then(|(_, s)| s.clone())
}

/// The local wall-clock time of `ts` in `zone`.
pub fn local_time(ts: Timestamp, zone: &LogZone) -> NaiveDateTime {
    let utc = ts.to_datetime();
    match zone {
        LogZone::Utc => utc.naive_utc(),
        LogZone::Local => utc.with_timezone(&chrono::Local).naive_local(),
        LogZone::Fixed(o) => utc.with_timezone(o).naive_local(),
        LogZone::Named(tz) => utc.with_timezone(tz).naive_local(),
    }
}

/// The night a pipeline created at `ts` belongs to (see the module doc).
pub fn night_of(ts: Timestamp, zone: &LogZone) -> NaiveDate {
    (local_time(ts, zone) + Duration::hours(24 - NIGHT_START_HOUR)).date()
}

/// A night as stored and printed: `YYYY-MM-DD`.
pub fn night_label(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn parse_night(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| format!("'{s}' is not a night: write YYYY-MM-DD (the date of the morning)"))
}

/// The `n` nights ending with `last`, oldest first.
pub fn nights_ending(last: NaiveDate, n: u32) -> Vec<NaiveDate> {
    (0..i64::from(n))
        .rev()
        .map(|i| last - Duration::days(i))
        .collect()
}

/// What one project's nightly pipelines did on one night.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NightCell {
    NoRun,
    Passed,
    /// Canceled, skipped, still running.
    Other,
    Warnings,
    Failed,
}

impl NightCell {
    /// The cell of one pipeline (a failed downstream pipeline fails it).
    pub fn of(status: &str, warnings: bool, downstream_failed: bool) -> NightCell {
        if downstream_failed {
            return NightCell::Failed;
        }
        match status {
            "failed" => NightCell::Failed,
            "success" if warnings => NightCell::Warnings,
            "success" => NightCell::Passed,
            _ => NightCell::Other,
        }
    }
    /// One character of a strip: `F` failed, `W` passed with warnings, `P` passed,
    /// `?` canceled/running, `.` no run.
    pub fn symbol(self) -> char {
        match self {
            NightCell::Failed => 'F',
            NightCell::Warnings => 'W',
            NightCell::Passed => 'P',
            NightCell::Other => '?',
            NightCell::NoRun => '.',
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            NightCell::Failed => "failed",
            NightCell::Warnings => "passed_with_warnings",
            NightCell::Passed => "passed",
            NightCell::Other => "other",
            NightCell::NoRun => "no_run",
        }
    }
}

/// A nightly pipeline as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiPipeline {
    /// `path_with_namespace`.
    pub project: String,
    pub project_url: Option<String>,
    pub id: i64,
    pub night: String,
    pub status: String,
    /// Passed with warnings (an `allow_failure` job failed).
    pub warnings: bool,
    pub ref_name: Option<String>,
    pub sha: Option<String>,
    pub source: Option<String>,
    pub web_url: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// A downstream pipeline (child or multi-project, through a bridge) failed: the nightly
    /// failed even when GitLab says this pipeline passed (a trigger without `strategy: depend`).
    pub downstream_failed: bool,
}

/// How a failed job's log was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogState {
    /// Read and analysed.
    Fetched,
    /// Erased or expired: 404, or GitLab's empty `200` for a job with `erased_at` or no
    /// trace artifact left.
    Erased,
    /// Read: the job really printed nothing.
    Empty,
    /// The log answered a permanent error (403, 410, ...) or kept failing: not asked again.
    Unreadable,
    /// The failure has no log: a trigger job (bridge) or a pipeline that failed before any job.
    NoLog,
    /// Not read in this update (read before, or to be read).
    Unchanged,
}

/// A failed job (or an allowed-to-fail one) as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiJob {
    pub project: String,
    pub id: i64,
    pub pipeline: i64,
    pub name: String,
    pub stage: Option<String>,
    pub status: String,
    pub allow_failure: bool,
    pub failure_reason: Option<String>,
    pub web_url: Option<String>,
    /// Unix seconds.
    pub finished_at: Option<i64>,
    pub log: LogState,
    /// Set when the log was analysed in this update.
    pub analysis: Option<Analysis>,
    /// Where the job ran when not in the nightly pipeline itself: the bridges and downstream
    /// pipelines leading to it (`trigger-tests -> child pipeline #1235`).
    pub chain: Option<String>,
}

impl LogState {
    /// As stored (`ci_jobs.log_state`); None: leave the stored state.
    pub fn as_stored(self) -> Option<&'static str> {
        match self {
            LogState::Fetched => Some("fetched"),
            LogState::Erased => Some("erased"),
            LogState::Empty => Some("empty"),
            LogState::Unreadable => Some("unreadable"),
            LogState::NoLog => Some("none"),
            LogState::Unchanged => None,
        }
    }
}

/// CI state changes a batch carries, applied in the transaction of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CiUpdate {
    Pipeline(CiPipeline),
    /// The failed jobs of a pipeline now (latest attempts): others stored for it are dropped
    /// (a retried job that passed); analyses already stored stay when a job comes unanalysed.
    Jobs {
        project: String,
        pipeline: i64,
        jobs: Vec<CiJob>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> ScannedLog {
        let mut s = LogScanner::new();
        s.feed(text.as_bytes());
        s.finish()
    }

    fn pattern_of(text: &str, reason: Option<&str>) -> Pattern {
        let rules = Rules::defaults().unwrap();
        analyze(Some(&scan(text)), reason, &rules).pattern
    }

    #[test]
    fn default_rules_compile_with_one_group_each() {
        let r = Rules::defaults().unwrap();
        assert!(r.0.len() >= 20);
        let bad = Rules::compile(&[RuleSpec {
            name: "x".into(),
            regex: "a(b)(c)".into(),
            issue: None,
        }])
        .unwrap_err();
        assert!(bad.contains("exactly one capture group"), "{bad}");
        assert!(Rules::compile(&[RuleSpec {
            name: "x".into(),
            regex: "(".into(),
            issue: None
        }])
        .is_err());
    }

    const FOOTER: &str = "\x1b[31;1mERROR: Job failed: exit code 1\n\x1b[0;m\n";

    fn job(body: &str) -> String {
        format!(
            "\x1b[0KRunning with gitlab-runner 17.5.0 (8f2e9c1d)\nsection_start:1740895206:step_script\r\x1b[0K$ make test\n{body}\nsection_end:1740896587:step_script\r\x1b[0K\n{FOOTER}"
        )
    }

    #[test]
    fn rules_name_common_failures() {
        let cases = [
            ("Test Summary: | Pass  Fail  Total\nTest Failed at /builds/research/GLMModels.jl/test/runtests.jl:42\n  Expression: coef(m) ≈ [1.0, 2.0]\n   Evaluated: [1.0, 2.1] ≈ [1.0, 2.0]\nStacktrace:\n", "Julia: test failed", "coef(m) ≈ [1.0, 2.0]"),
            ("ERROR: LoadError: UndefVarError: `fitt` not defined\nStacktrace:", "Julia: undefined variable", "UndefVarError: `fitt` not defined"),
            ("ERROR: Unsatisfiable requirements detected for package DataFrames [a93c6f00]:", "Julia: unsatisfiable requirements", "Unsatisfiable requirements detected for package DataFrames"),
            ("error[E0308]: mismatched types\n --> src/main.rs:4:18", "Rust: compile error", "error[E0308]: mismatched types"),
            ("Traceback (most recent call last):\n  File \"/tmp/x.py\", line 1\nModuleNotFoundError: No module named 'numpy'", "Python: syntax or import error", "ModuleNotFoundError: No module named 'numpy'"),
            ("# example.com/m\n./main.go:12:2: undefined: foo", "Go: compile error", "./main.go:12:2: undefined: foo"),
            ("--- FAIL: TestParse (0.00s)\n    parse_test.go:20: got 1", "Go: test failed", "TestParse"),
            ("fatal: unable to access 'https://gitlab.example.com/a/b.git/': Could not resolve host: gitlab.example.com", "network / clone failure", "fatal: unable to access 'https://gitlab.example.com/a/b.git/'"),
            ("npm ERR! code ERESOLVE\nnpm ERR! ERESOLVE unable to resolve dependency tree", "JS: dependency resolution", "code ERESOLVE"),
            ("src/a.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.", "TypeScript: compile error", "error TS2322: Type 'string' is not assignable to type 'number'."),
            ("/usr/bin/bash: line 143:   312 Killed   julia --project test/runtests.jl\nERROR: Job failed: exit code 137", "out of memory / killed", "Killed"),
        ];
        for (body, name, identity) in cases {
            let p = pattern_of(&job(body), Some("script_failure"));
            assert_eq!(
                (p.name.as_str(), p.identity.as_str()),
                (name, identity),
                "{body}"
            );
        }
        let p = pattern_of(
            "Running with gitlab-runner\nERROR: Job failed: execution took longer than 1h0m0s seconds\n",
            Some("job_execution_timeout"),
        );
        assert_eq!(p.name, "timeout");
        // No log at all: the failure reason.
        let rules = Rules::defaults().unwrap();
        let a = analyze(None, Some("runner_system_failure"), &rules);
        assert_eq!(a.pattern.name, "runner system failure");
        let a = analyze(None, Some("script_failure"), &rules);
        assert_eq!(a.pattern.identity, "no log; failure_reason script_failure");
    }

    #[test]
    fn section_and_excerpt_come_with_the_pattern() {
        let rules = Rules::defaults().unwrap();
        let log = scan(&job(
            "error[E0425]: cannot find value `foo` in this scope\n  --> src/lib.rs:12:5",
        ));
        let a = analyze(Some(&log), Some("script_failure"), &rules);
        assert_eq!(a.section.as_deref(), Some("step_script"));
        assert!(a.excerpt.starts_with("error[E0425]"), "{}", a.excerpt);
        assert!(
            a.tail.ends_with("ERROR: Job failed: exit code 1"),
            "{}",
            a.tail
        );
    }

    /// Real-looking failures no default rule knows: the same failure on two nights or two
    /// projects is one pattern; different failures are not.
    #[test]
    fn fingerprints_group_the_same_failure_and_split_different_ones() {
        let same = [
            (
                job("Fetching https://cdn.example.com/pkg?id=18842\nERROR: failed to publish artifact build-2025-03-02T06:41:19Z to 10.0.4.17:8443 (request 550e8400-e29b-41d4-a716-446655440000) after 12.5s"),
                job("Fetching https://cdn.example.com/pkg?id=99\nERROR: failed to publish artifact build-2025-03-05T06:12:01Z to 10.0.4.18:8443 (request 123e4567-e89b-12d3-a456-426614174000) after 3.1s"),
            ),
            (
                job("thread 'main' panicked at src/bin/gen.rs:88:14:\ncalled `Option::unwrap()` on a `None` value\nnote: run with `RUST_BACKTRACE=1`"),
                job("thread 'main' panicked at src/bin/gen.rs:91:14:\ncalled `Option::unwrap()` on a `None` value\nnote: run with `RUST_BACKTRACE=1`"),
            ),
            (
                job("Traceback (most recent call last):\n  File \"/builds/data/etl/run.py\", line 12, in <module>\n    main()\nKeyError: 'station_4471'"),
                job("Traceback (most recent call last):\n  File \"/builds/ml/etl/run.py\", line 19, in <module>\n    main()\nKeyError: 'station_4471'"),
            ),
            (
                job("cp: cannot stat '/tmp/jl_0uu9To/Artifacts.toml': No such file or directory"),
                job("cp: cannot stat '/tmp/jl_Xk3pQa/Artifacts.toml': No such file or directory"),
            ),
            (
                job("FATAL: could not write block 8812 of temporary file: No space left on device"),
                job("FATAL: could not write block 17 of temporary file: No space left on device"),
            ),
            (
                job("make: *** [Makefile:31: docs] Error 2\nbuild of commit 8f2e9c1d4b7a failed"),
                job("make: *** [Makefile:33: docs] Error 2\nbuild of commit 0a1b2c3d4e5f failed"),
            ),
        ];
        for (a, b) in &same {
            let (pa, pb) = (pattern_of(a, None), pattern_of(b, None));
            assert_eq!(pa.kind, PatternKind::Fingerprint, "{}", pa.identity);
            assert_eq!(pa, pb, "{a}\n---\n{b}");
        }
        let different = [
            (
                job("thread 'main' panicked at src/bin/gen.rs:88:14:\ncalled `Option::unwrap()` on a `None` value"),
                job("thread 'main' panicked at src/bin/gen.rs:88:14:\nindex out of bounds: the len is 3 but the index is 7"),
            ),
            (
                job("Traceback (most recent call last):\n  File \"run.py\", line 12\nKeyError: 'station_4471'"),
                job("Traceback (most recent call last):\n  File \"run.py\", line 12\nValueError: could not convert string to float: 'n/a'"),
            ),
            (
                job("FATAL: could not write block 8812 of temporary file: No space left on device"),
                job("FATAL: could not open file \"base/16384/2619\": Permission denied"),
            ),
            (
                job("ERROR: failed to publish artifact to 10.0.4.17:8443"),
                job("ERROR: failed to fetch artifact from 10.0.4.17:8443"),
            ),
        ];
        for (a, b) in &different {
            assert_ne!(
                pattern_of(a, None).id,
                pattern_of(b, None).id,
                "{a}\n---\n{b}"
            );
        }
        // The same failure in a project whose build dir differs, found in a longer log.
        let long = format!(
            "{}{}",
            "ok line 1\n".repeat(20_000),
            job("FATAL: could not write block 3 of temporary file: No space left on device")
        );
        assert_eq!(pattern_of(&long, None), pattern_of(&same[4].0, None));
    }

    /// `FF_TIMESTAMPS` logs: the same failure is the same pattern with and without the
    /// runner's prefixes, for rules anchored at `^` and for fingerprints.
    #[test]
    fn runner_timestamps_do_not_change_the_pattern() {
        let stamp = |log: &str| -> String {
            log.split_inclusive('\n')
                .enumerate()
                .map(|(n, l)| {
                    format!(
                        "2026-12-01T02:10:{:02}.{:06}Z 0{}O {l}",
                        n % 60,
                        n * 7,
                        n % 2
                    )
                })
                .collect()
        };
        for body in [
            "ERROR: LoadError: UndefVarError: `fitt` not defined\nStacktrace:",
            "thread 'main' panicked at src/bin/gen.rs:88:14:\ncalled `Option::unwrap()` on a `None` value",
            "FATAL: could not write block 8812 of temporary file: No space left on device",
        ] {
            let plain = job(body);
            let a = pattern_of(&plain, Some("script_failure"));
            let b = pattern_of(&stamp(&plain), Some("script_failure"));
            assert_eq!(a, b, "{body}");
            assert!(!b.identity.contains("<time>"), "{}", b.identity);
        }
        let rules = Rules::defaults().unwrap();
        let t = analyze(Some(&scan(&stamp(&job("boom")))), None, &rules);
        assert!(
            t.tail.ends_with("ERROR: Job failed: exit code 1"),
            "{}",
            t.tail
        );
    }

    #[test]
    fn pipelines_without_jobs_get_a_pattern_from_their_errors() {
        let a = pipeline_failure(Some("jobs:test config contains unknown keys: scrip"), None);
        assert_eq!(a.pattern.name, "pipeline configuration error");
        assert_eq!(
            a.pattern.identity,
            "jobs:test config contains unknown keys: scrip"
        );
        let b = pipeline_failure(
            Some("jobs:test config contains unknown keys: scrip\n"),
            Some("failed"),
        );
        assert_eq!(a.pattern.id, b.pattern.id);
        let c = pipeline_failure(None, Some("failed"));
        assert_eq!(c.pattern.identity, "pipeline failed with no failed job");
        assert_ne!(a.pattern.id, c.pattern.id);
        // Untrusted text stays on one line without control characters.
        let d = pipeline_failure(Some("bad \x1b[31mkey\x07"), None);
        assert!(!d.excerpt.chars().any(char::is_control), "{:?}", d.excerpt);
    }

    #[test]
    fn a_rule_from_the_config_comes_with_its_issue() {
        let rules = Rules::compile(&[RuleSpec {
            name: "flaky mirror".into(),
            regex: r"(mirror \S+ is down)".into(),
            issue: Some("https://gitlab.example.com/infra/-/issues/7".into()),
        }])
        .unwrap();
        let a = analyze(Some(&scan(&job("mirror eu-3 is down"))), None, &rules);
        assert_eq!(
            a.pattern.issue_url.as_deref(),
            Some("https://gitlab.example.com/infra/-/issues/7")
        );
        assert_eq!(a.pattern.identity, "mirror eu-3 is down");
        assert_eq!(a.pattern.id.len(), 12);
    }

    #[test]
    fn nights_end_at_noon_in_the_zone() {
        let utc = LogZone::Utc;
        let at = |s: &str| crate::model::parse_rfc3339(s).unwrap();
        let d = |s: &str| parse_night(s).unwrap();
        assert_eq!(night_of(at("2025-03-01T22:00:00Z"), &utc), d("2025-03-02"));
        assert_eq!(night_of(at("2025-03-02T06:00:04Z"), &utc), d("2025-03-02"));
        assert_eq!(night_of(at("2025-03-02T11:59:59Z"), &utc), d("2025-03-02"));
        assert_eq!(night_of(at("2025-03-02T12:00:00Z"), &utc), d("2025-03-03"));
        let berlin = LogZone::parse("Europe/Berlin").unwrap();
        // 11:30 UTC is 12:30 in Berlin: the next night there.
        assert_eq!(
            night_of(at("2025-03-02T11:30:00Z"), &berlin),
            d("2025-03-03")
        );
        assert_eq!(
            nights_ending(d("2025-03-02"), 3),
            vec![d("2025-02-28"), d("2025-03-01"), d("2025-03-02")]
        );
        assert!(parse_night("yesterday").is_err());
        assert_eq!(NightCell::of("success", true, false), NightCell::Warnings);
        assert_eq!(NightCell::of("success", true, true), NightCell::Failed);
        assert_eq!(NightCell::of("manual", false, false), NightCell::Other);
        assert!(NightCell::Failed > NightCell::Warnings && NightCell::Warnings > NightCell::Passed);
    }
}
