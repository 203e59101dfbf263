//! `prometheus:URL[,selector={...}]`: the ngit relays of a whole fleet, read from a Prometheus
//! HTTP API (Prometheus, Thanos, Mimir and VictoriaMetrics answer alike) instead of scraping
//! each relay's `/metrics`.
//!
//! Every scrape interval one instant query (`GET URL/api/v1/query`) asks for
//! `ngit_sync_relay_connected`, `ngit_sync_relay_status`, `ngit_sync_relay_failures`,
//! `ngit_sync_connection_attempts_total` and `up`, the selector ANDed in. The samples are
//! grouped by `instance`: each instance is a target, its samples joined on `relay` exactly as
//! one `ngit-metrics:` exposition is ([`crate::sources::ngit::readings`]), and fed to the
//! same [`TargetState`](crate::model::relay::TargetState), so the events and the state are
//! those `ngit-metrics:` would derive from the same data. `up != 1` is that target down (the
//! "target down" of a failed scrape). Which instances are targets: every instance with ngit
//! series, every instance already known, and, when a selector is given, every instance of
//! `up` it selects (without one, `up` of other jobs is not an ngit relay). A target that
//! vanishes from the answer: see [`crate::model::fleet`].
//!
//! A Prometheus that cannot be asked (unreachable, an HTTP error, an answer that is not the
//! API's JSON, `status: error`) leaves every target as it was (nothing is invented about
//! relays nobody could see) and the source backs off with the reason.

pub mod api;
pub mod config;
pub mod spec;

use std::collections::BTreeMap;
use std::time::Duration;

use color_eyre::eyre::{bail, eyre, Result, WrapErr};

use crate::ingest::SourceCtx;
use crate::model::fleet::{FleetState, TargetReading};
use crate::model::{Event, Reject, Timestamp};
use crate::sources::lines::Pending;
use crate::sources::ngit::exposition::{Exposition, Sample};
use crate::sources::poll::{self, Every};
use crate::sources::Source;

/// The option that ANDs a label selector into every query.
pub const SELECTOR_OPTION: &str = ",selector=";

/// The longest a query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// A bigger answer is not one of a relay fleet.
const MAX_ANSWER: usize = 64 << 20;

/// The families asked for; `up` says whether Prometheus could scrape each instance.
const FAMILIES: [&str; 5] = [
    "ngit_sync_relay_connected",
    "ngit_sync_relay_status",
    "ngit_sync_relay_failures",
    "ngit_sync_connection_attempts_total",
    "up",
];

/// `URL[,selector={...}]` -> (the API base URL, the selector's matchers without braces).
pub fn parse_where(rest: &str) -> Result<(String, Option<String>)> {
    let (url, selector) = match rest.split_once(SELECTOR_OPTION) {
        Some((u, s)) => (u, Some(s)),
        None => (rest, None),
    };
    let url = url.trim_end_matches('/');
    let url = url.strip_suffix("/api/v1/query").unwrap_or(url);
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || reqwest::Url::parse(url).is_err()
    {
        bail!("prometheus needs the HTTP API's base URL, http(s)://HOST:PORT (optionally with a path prefix), optionally followed by ,selector={{job=\"ngit\"}}, not '{}'", rest.escape_debug());
    }
    let selector = match selector {
        Some(s) => Some(matchers(s)?).filter(|m| !m.is_empty()),
        None => None,
    };
    Ok((url.to_string(), selector))
}

/// `{job="ngit",env="prod"}` or `job="ngit",env="prod"` -> `job="ngit",env="prod"`.
pub fn matchers(selector: &str) -> Result<String> {
    let s = selector.trim();
    let inner = match s.strip_prefix('{') {
        Some(r) => r.strip_suffix('}').ok_or_else(|| {
            eyre!(
                "prometheus: the selector '{}' opens a brace it does not close",
                s.escape_debug()
            )
        })?,
        None => s,
    };
    if inner.chars().any(char::is_control) {
        bail!(
            "prometheus: the selector '{}' has a control character",
            s.escape_debug()
        );
    }
    let inner = inner.trim().trim_end_matches(',');
    if !inner.is_empty() && !inner.contains(['=', '~']) {
        bail!(
            "prometheus: the selector '{}' has no label matcher (write {{job=\"ngit\"}})",
            s.escape_debug()
        );
    }
    Ok(inner.to_string())
}

/// The one instant query of a poll.
pub fn query_text(selector: Option<&str>) -> String {
    let names = FAMILIES.join("|");
    match selector {
        Some(m) => format!("{{__name__=~\"{names}\",{m}}}"),
        None => format!("{{__name__=~\"{names}\"}}"),
    }
}

/// Why a poll gave no answer, and the body that came instead (for the reject).
#[derive(Debug)]
pub struct Failed {
    pub reason: String,
    pub excerpt: Option<Vec<u8>>,
}

/// The one HTTP call: `GET endpoint?query=...`, the body of a 200, or why not. (Prometheus
/// answers 400/422/503 with its error JSON: its text is the reason.)
fn fetch(
    client: &reqwest::blocking::Client,
    endpoint: &reqwest::Url,
    timeout: Duration,
) -> Result<Vec<u8>, Failed> {
    let fail = |reason: String| Failed {
        reason,
        excerpt: None,
    };
    let r = client
        .get(endpoint.clone())
        .timeout(timeout)
        .send()
        .map_err(|e| {
            fail(format!(
                "cannot query {}: {}",
                api_base(endpoint),
                crate::sources::client::describe(e, timeout)
            ))
        })?;
    let status = r.status();
    // The one client's bounded read (a larger answer is an error, read no further).
    let body = crate::sources::client::read_body(r, MAX_ANSWER, timeout).map_err(|e| {
        fail(format!(
            "cannot read the answer of {}: {e}",
            api_base(endpoint)
        ))
    })?;
    if !status.is_success() {
        let why = match api::parse(&body) {
            Err(e) if e.starts_with("Prometheus answered") => e,
            _ => {
                let text = String::from_utf8_lossy(&body);
                let first = text
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .chars()
                    .take(120)
                    .collect::<String>();
                crate::sanitize::one_line(&first).into_owned()
            }
        };
        return Err(Failed {
            reason: format!("HTTP {status}: {why}"),
            excerpt: Some(body),
        });
    }
    Ok(body)
}

fn api_base(endpoint: &reqwest::Url) -> String {
    let mut u = endpoint.clone();
    u.set_query(None);
    crate::sanitize::one_line(u.as_str().trim_end_matches("/api/v1/query")).into_owned()
}

/// What an answer says of each instance, and how many samples had no `instance` label (they
/// belong to no target).
pub fn readings_of(
    answer: &api::Answer,
    fleet: &FleetState,
    selected: bool,
) -> (BTreeMap<String, TargetReading>, usize) {
    let mut series: BTreeMap<&str, Exposition> = BTreeMap::new();
    let mut up: BTreeMap<&str, f64> = BTreeMap::new();
    let mut orphans = 0;
    for s in &answer.samples {
        let (Some(instance), Some(name)) = (s.label("instance"), s.label("__name__")) else {
            orphans += 1;
            continue;
        };
        if name == "up" {
            // Two jobs scraping one instance: it is down when either cannot scrape it.
            let v = up.entry(instance).or_insert(s.value);
            if s.value != 1.0 {
                *v = s.value;
            }
            continue;
        }
        series.entry(instance).or_default().samples.push(Sample {
            name: name.to_string(),
            labels: s
                .labels
                .iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            value: s.value,
            timestamp_ms: None,
        });
    }
    let mut out = BTreeMap::new();
    for (instance, value) in &up {
        if !(selected || series.contains_key(instance) || fleet.targets.contains_key(*instance)) {
            continue;
        }
        if *value != 1.0 {
            out.insert(
                instance.to_string(),
                TargetReading::Down(format!("Prometheus cannot scrape it (up == {value})")),
            );
        }
    }
    for (instance, e) in &series {
        if out.contains_key(*instance) {
            continue;
        }
        out.insert(
            instance.to_string(),
            TargetReading::Up(crate::sources::ngit::readings(e)),
        );
    }
    // Up, known, but no ngit series now: a relay that tracks nothing (its relays go GONE).
    for (instance, value) in &up {
        if *value == 1.0
            && !out.contains_key(*instance)
            && (selected || fleet.targets.contains_key(*instance))
        {
            out.insert(instance.to_string(), TargetReading::Up(Vec::new()));
        }
    }
    (out, orphans)
}

/// One Prometheus and the state of its targets: what a poll does, apart from storing.
pub struct Poller {
    client: reqwest::blocking::Client,
    endpoint: reqwest::Url,
    selected: bool,
    pub fleet: FleetState,
}

/// What one successful poll gave.
#[derive(Debug, Default)]
pub struct Polled {
    pub events: Vec<Event>,
    pub targets: usize,
    pub down: usize,
    pub orphans: usize,
    pub warnings: Vec<String>,
}

impl Poller {
    pub fn new(base: &str, selector: Option<&str>, fleet: FleetState) -> Result<Poller> {
        let mut endpoint =
            reqwest::Url::parse(&format!("{}/api/v1/query", base.trim_end_matches('/')))
                .wrap_err_with(|| format!("prometheus: bad URL '{}'", base.escape_debug()))?;
        endpoint
            .query_pairs_mut()
            .append_pair("query", &query_text(selector));
        // The one HTTP client (same-origin redirects only, the user agent, TLS).
        let client = crate::sources::client::build(base, QUERY_TIMEOUT)
            .map_err(|e| eyre!("cannot build the HTTP client of the prometheus source: {e}"))?;
        Ok(Poller {
            client,
            endpoint,
            selected: selector.is_some(),
            fleet,
        })
    }

    /// One query and what it changes.
    pub fn poll(&mut self, at: Timestamp, timeout: Duration) -> Result<Polled, Failed> {
        let body = fetch(&self.client, &self.endpoint, timeout)?;
        let answer = api::parse(&body).map_err(|reason| Failed {
            reason,
            excerpt: Some(body.clone()),
        })?;
        let (readings, orphans) = readings_of(&answer, &self.fleet, self.selected);
        let events = self.fleet.observe(at, &readings);
        Ok(Polled {
            events,
            targets: self.fleet.targets.len(),
            down: self.fleet.targets.values().filter(|t| !t.up).count(),
            orphans,
            warnings: answer.warnings,
        })
    }
}

/// The source: polls every scrape interval, stores the events and the whole [`FleetState`]
/// as its checkpoint in the same transaction.
pub struct PrometheusSource {
    key: String,
    base: String,
    selector: Option<String>,
}

impl PrometheusSource {
    pub fn new(key: String, base: String, selector: Option<String>) -> Self {
        PrometheusSource {
            key,
            base,
            selector,
        }
    }
}

impl Source for PrometheusSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        let fleet: FleetState = ctx
            .checkpoint
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let poller = Poller::new(&self.base, self.selector.as_deref(), fleet)?;
        let timeout = QUERY_TIMEOUT.min(ctx.scrape_interval.max(Duration::from_secs(1)));
        // The one poll loop: every scrape interval, the one backoff after a failed query.
        poll::run(
            ctx,
            &Every::new(ctx.scrape_interval).verb("query"),
            FleetPoll {
                source: *self,
                listed: poller.fleet.targets.keys().cloned().collect(),
                poller,
                timeout,
            },
        )
    }
}

/// One poll of the source: the query, its events and the whole state as the checkpoint.
struct FleetPoll {
    source: PrometheusSource,
    poller: Poller,
    timeout: Duration,
    /// The instances the store was last given.
    listed: Vec<String>,
}

impl poll::Poller for FleetPoll {
    fn poll(&mut self, ctx: &SourceCtx) -> Result<poll::Polled> {
        let mut pending = Pending::new();
        let outcome = match self.poller.poll(Timestamp::now(), self.timeout) {
            Ok(p) => {
                for ev in p.events {
                    pending.push(ev);
                }
                let mut note = format!("{} targets, {} down", p.targets, p.down);
                if p.orphans > 0 {
                    note.push_str(&format!(
                        "; {} samples without an instance label left out",
                        p.orphans
                    ));
                }
                for w in &p.warnings {
                    note.push_str("; Prometheus warns: ");
                    note.push_str(&crate::sanitize::one_line(w));
                }
                poll::Polled::ok(note)
            }
            Err(Failed { reason, excerpt }) => {
                if let Some(body) = excerpt {
                    pending.reject(Reject::new(self.source.base.clone(), reason.clone(), &body));
                }
                poll::Polled::backoff(reason)
            }
        };
        // Each instance's state reaches the store's relay domain; an instance dropped from
        // the fleet leaves it.
        for t in self.poller.fleet.targets.values() {
            pending.update(crate::store::relays::update(t));
        }
        for gone in self.listed.iter() {
            if !self.poller.fleet.targets.contains_key(gone) {
                pending.update(crate::store::relays::retired(gone));
            }
        }
        self.listed = self.poller.fleet.targets.keys().cloned().collect();
        let checkpoint = serde_json::to_string(&self.poller.fleet)
            .map_err(|e| eyre!("cannot save the state of {}: {e}", self.source.key))?;
        pending.send(ctx, Some(checkpoint))?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
