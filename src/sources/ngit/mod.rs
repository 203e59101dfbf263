//! ngit (GRASP) relays: what one scrape of a relay's `/metrics` says about each relay it syncs
//! with, joined on the `relay` label across `ngit_sync_relay_connected`,
//! `ngit_sync_relay_status` and `ngit_sync_connection_attempts_total` (v1 and v3 layouts alike).
//! [`crate::model::relay::TargetState`] turns successive readings into state and events.

pub mod exposition;
pub mod spec;

use std::collections::BTreeMap;
use std::time::Duration;

use color_eyre::eyre::{eyre, Result};

use crate::ingest::SourceCtx;
use crate::model::relay::{code_of, Connection, Health, RelayReading, TargetState};
use crate::model::{Reject, Timestamp};
use crate::sources::client::{self, Client};
use crate::sources::lines::Pending;
use crate::sources::poll::{self, Every, Polled};
use crate::sources::Source;
use exposition::Exposition;

/// The longest a scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// A bigger answer is not a metrics page.
const MAX_EXPOSITION: usize = 16 << 20;
/// What a scrape accepts: the text exposition first.
const ACCEPT: &str = "text/plain;version=0.0.4, */*;q=0.1";

/// `ngit-metrics:URL`: scrapes a relay's `/metrics` every scrape interval; stores relay
/// transitions, alerts and the target going down or up as events, and the whole derived state
/// (per relay: connection, health, since, streak, flapping) as a relay state update
/// ([`crate::store::relays::update`], where `syncscope relays` reads it) in the same
/// transaction. The checkpoint holds the same state: what a restarted source resumes from
/// (on this host, even when its batches are forwarded to stores elsewhere).
pub struct MetricsSource {
    url: String,
}

impl MetricsSource {
    pub fn new(url: String) -> Self {
        MetricsSource { url }
    }
}

/// Why a scrape gave no exposition, and what came instead (for the reject).
struct Failed {
    reason: String,
    excerpt: Option<Vec<u8>>,
}

/// One scrape: the exposition, or why there is none. An answer that is not an exposition (an
/// HTML error page, a login form) is a failure, never an empty list of relays.
fn scrape(client: &Client, url: &str, timeout: Duration) -> Result<(Exposition, String), Failed> {
    let r = client::get(client, url, ACCEPT, MAX_EXPOSITION, timeout).map_err(|reason| Failed {
        reason,
        excerpt: None,
    })?;
    let body = String::from_utf8_lossy(&r.body).into_owned();
    if r.status != 200 {
        let first = body.lines().next().unwrap_or_default().trim();
        return Err(Failed {
            reason: format!("HTTP {} {}: {}", r.status, r.reason, clip(first)),
            excerpt: Some(r.body),
        });
    }
    let e = exposition::parse(&body);
    if e.samples.is_empty() && !e.errors.is_empty() {
        let what = r
            .content_type
            .as_deref()
            .map_or(String::new(), |t| format!(" ({t})"));
        return Err(Failed {
            reason: format!(
                "the answer{what} is not a metrics exposition: line {}: {}",
                e.errors[0].line, e.errors[0].reason
            ),
            excerpt: Some(r.body),
        });
    }
    Ok((e, body))
}

fn clip(s: &str) -> String {
    crate::sanitize::one_line(&s.chars().take(120).collect::<String>()).into_owned()
}

impl Source for MetricsSource {
    fn run(self: Box<Self>, ctx: &SourceCtx) -> Result<()> {
        client::parse_url(&self.url).map_err(|e| eyre!(e))?;
        let mut state: TargetState = ctx
            .checkpoint
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_else(|| TargetState::new(&self.url));
        let timeout = SCRAPE_TIMEOUT.min(ctx.scrape_interval.max(Duration::from_secs(1)));
        let http = client::build(&self.url, timeout).map_err(|e| eyre!(e))?;
        let url = self.url.as_str();
        let scrape_once = |ctx: &SourceCtx| -> Result<Polled> {
            let at = Timestamp::now();
            let mut pending = Pending::new();
            let polled = match scrape(&http, url, timeout) {
                Ok((e, body)) => {
                    for err in &e.errors {
                        let line = body.lines().nth(err.line - 1).unwrap_or_default();
                        pending.reject(Reject::new(
                            format!("{url} line {}", err.line),
                            err.reason.clone(),
                            line.as_bytes(),
                        ));
                    }
                    for ev in state.observe(at, &readings(&e)) {
                        pending.push(ev);
                    }
                    Polled::ok("")
                }
                Err(Failed { reason, excerpt }) => {
                    if let Some(body) = excerpt {
                        pending.reject(Reject::new(url.to_string(), reason.clone(), &body));
                    }
                    for ev in state.scrape_failed(at, &reason) {
                        pending.push(ev);
                    }
                    // A target down is a reading (stored as such), not a failed ingest.
                    Polled::backoff(format!("target down: {reason}"))
                }
            };
            let checkpoint = serde_json::to_string(&state)
                .map_err(|e| eyre!("cannot save the state of {url}: {e}"))?;
            pending.update(crate::store::relays::update(&state));
            pending.send(ctx, Some(checkpoint))?;
            Ok(polled)
        };
        poll::run(
            ctx,
            &Every::new(ctx.scrape_interval).verb("scrape"),
            scrape_once,
        )
    }
}

const CONNECTED: &str = "ngit_sync_relay_connected";
const STATUS: &str = "ngit_sync_relay_status";
const ATTEMPTS: &str = "ngit_sync_connection_attempts_total";

/// Every relay the exposition tracks, sorted by URL: those with a connection or a health
/// series (v3 deletes both when it forgets a relay but keeps its attempt counters). A relay may
/// lack one series (a fresh one has no health for ~2 s, no attempts before its first try):
/// a missing gauge is `None`, a missing counter 0.
pub fn readings(e: &Exposition) -> Vec<RelayReading> {
    let mut by_relay: BTreeMap<&str, RelayReading> = BTreeMap::new();
    for s in &e.samples {
        let Some(relay) = s.label("relay") else {
            continue;
        };
        let r = by_relay.entry(relay).or_insert_with(|| RelayReading {
            relay: relay.to_string(),
            connection: None,
            health: None,
            ok: 0,
            fail: 0,
        });
        match s.name.as_str() {
            CONNECTED => r.connection = Some(Connection::from(code_of(s.value))),
            STATUS => r.health = Some(Health::from(code_of(s.value))),
            ATTEMPTS => {
                let n = if s.value.is_finite() && s.value >= 0.0 {
                    s.value as u64
                } else {
                    0
                };
                match s.label("result") {
                    Some("success") => r.ok = n,
                    Some("failure") => r.fail = n,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    by_relay
        .into_values()
        .filter(|r| r.connection.is_some() || r.health.is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::relay::Display;
    use crate::sources::ngit::exposition::parse;

    #[test]
    fn every_state_of_the_sample_exposition() {
        let e = parse(include_str!(
            "../../../tests/fixtures/ngit/metrics-sample.txt"
        ));
        let r = readings(&e);
        let shown: Vec<(&str, i64, i64, u64, u64, Display)> = r
            .iter()
            .map(|r| {
                (
                    r.relay.as_str(),
                    r.connection.map_or(-9, Connection::code),
                    r.health.map_or(-9, Health::code),
                    r.ok,
                    r.fail,
                    Display::of(r.connection, r.health),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("wss://git.example.invalid", 0, 3, 0, 3, Display::Retrying),
                ("wss://git.shakespeare.diy", 1, 3, 1, 6, Display::Connecting),
                ("wss://gitnostr.com", 3, 1, 2, 1, Display::Live),
                ("wss://nos.lol", 4, 1, 1, 0, Display::LivePartialHistory),
                ("wss://relay.damus.io", 3, 5, 1, 0, Display::RateLimited),
                ("wss://relay.ngit.dev", 3, 1, 1, 0, Display::Live),
                ("wss://relay.nostr.band", 0, 4, 1, 31, Display::Dead),
                ("wss://relay.nostr.wine", 0, 2, 0, 0, Display::Idle),
                ("wss://relay.primal.net", 2, 3, 3, 4, Display::Syncing),
                (
                    "wss://relay.snort.social",
                    3,
                    6,
                    1,
                    0,
                    Display::PolicyLimited
                ),
            ]
        );
    }

    #[test]
    fn missing_series_and_forgotten_relays() {
        let e = parse(
            "ngit_sync_relay_connected{relay=\"wss://new\"} 0\n\
             ngit_sync_connection_attempts_total{relay=\"wss://forgotten\",result=\"failure\"} 7\n\
             ngit_sync_relay_status{relay=\"wss://odd\"} 9\n",
        );
        let r = readings(&e);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].relay, "wss://new");
        assert_eq!(r[0].health, None);
        assert_eq!(r[1].health, Some(Health::Unknown(9)));
        assert_eq!(r[1].connection, None);
    }

    #[test]
    fn the_real_v3_captures_as_two_successive_scrapes() {
        use crate::model::relay::TargetState;
        use crate::model::{Severity, Timestamp};
        let start = parse(include_str!(
            "../../../tests/fixtures/ngit/metrics-real-v3-t0-startup.txt"
        ));
        let later = parse(include_str!(
            "../../../tests/fixtures/ngit/metrics-real-v3.txt"
        ));
        let mut t = TargetState::new("http://127.0.0.1:7410/metrics");
        let e = t.observe(Timestamp::from_nanos(0), &readings(&start));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].summary.contains("ws://127.0.0.1:7411: SYNCING"),
            "{}",
            e[0].summary
        );
        let e = t.observe(Timestamp::from_nanos(420_000_000_000), &readings(&later));
        let got: Vec<(&str, Option<&str>, Severity)> = e
            .iter()
            .map(|e| (e.event_type.as_str(), e.subject.as_deref(), e.severity))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "relay_state_changed",
                    Some("ws://127.0.0.1:7411"),
                    Severity::Warning
                ),
                ("relay_seen", Some("ws://127.0.0.1:7413"), Severity::Warning),
                ("relay_seen", Some("ws://127.0.0.1:7419"), Severity::Warning),
                (
                    "relay_seen",
                    Some("wss://127.0.0.1:7411"),
                    Severity::Warning
                ),
            ]
        );
        assert_eq!(t.relays["ws://127.0.0.1:7411"].streak, 3);
        assert_eq!(t.relays["ws://127.0.0.1:7419"].streak, 4);
    }
}
