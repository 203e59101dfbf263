//! `syncscope relays`: every ngit relay's connection and health, as the last scrape of each
//! `ngit-metrics:` target left them (its derived state, in `relay_targets`: see
//! [`crate::store::relays`]).

use std::io::Write;

use color_eyre::eyre::Result;
use serde::Serialize;

use super::Outcome;
use crate::cli::{RejectFormat, RelaysArgs};
use crate::model::relay::{Display, Health, RelayState, TargetState};
use crate::model::{format_rfc3339, Severity, Timestamp};
use crate::sanitize::one_line;
use crate::store;

/// One line of `relays --format json`.
#[derive(Debug, Serialize)]
struct Row {
    target: String,
    relay: Option<String>,
    /// GONE (vanished from /metrics), UNKNOWN (its target is down), or what its gauges say.
    state: Option<&'static str>,
    /// What its gauges said at the last scrape that had them.
    last_state: Option<&'static str>,
    connection: Option<String>,
    connection_code: Option<i64>,
    health: Option<String>,
    health_code: Option<i64>,
    since: Option<String>,
    failure_streak: Option<u64>,
    flapping: Option<bool>,
    attempts_ok: Option<u64>,
    attempts_failed: Option<u64>,
    tracked: Option<bool>,
    last_scrape: Option<String>,
    scrape_ok: bool,
    scrape_error: Option<String>,
}

fn time(ns: Option<i64>) -> Option<String> {
    ns.map(|n| format_rfc3339(Timestamp::from_nanos(n)))
}

fn row(t: &TargetState, relay: Option<(&String, &RelayState)>) -> Row {
    let mut r = Row {
        target: t.target.clone(),
        relay: None,
        state: None,
        last_state: None,
        connection: None,
        connection_code: None,
        health: None,
        health_code: None,
        since: None,
        failure_streak: None,
        flapping: None,
        attempts_ok: None,
        attempts_failed: None,
        tracked: None,
        last_scrape: time(t.last_scrape),
        scrape_ok: t.up && t.last_scrape.is_some(),
        scrape_error: t.error.clone(),
    };
    if let Some((name, s)) = relay {
        r.relay = Some(name.clone());
        r.state = Some(s.display().label());
        r.last_state = Some(s.last_known().label());
        r.connection = s.connection.map(|c| c.name());
        r.connection_code = s.connection.map(|c| c.code());
        r.health = s.health.map(|h| h.name());
        r.health_code = s.health.map(|h| h.code());
        r.since = time(Some(s.since()));
        r.failure_streak = Some(s.streak);
        r.flapping = Some(s.flapping);
        r.attempts_ok = Some(s.ok);
        r.attempts_failed = Some(s.fail);
        r.tracked = Some(s.present);
    }
    r
}

fn rank(s: &RelayState) -> (u8, bool) {
    let sev = match s.display().severity() {
        Severity::Error => 3,
        Severity::Warning => 2,
        Severity::Info => 1,
        Severity::Debug => 0,
    };
    (sev, s.flapping)
}

fn age(ns: i64, now: i64) -> String {
    super::age((now - ns) / 1_000_000_000)
}

/// Exit 1 when a relay is Dead or a target is down, so cron and monitoring can call it.
pub fn run(args: RelaysArgs, db: std::path::PathBuf) -> Result<Outcome> {
    let reader = store::open_reader(&db)?;
    let (targets, unreadable) = reader.relay_targets()?;
    for u in &unreadable {
        eprintln!(
            "syncscope: saved relay state is unreadable ({}); it is rebuilt on the next scrape",
            one_line(u)
        );
    }
    let now = Timestamp::now().as_nanos();
    // Gone relays stay listed for an hour (GONE_LISTED_NS), then only with --all.
    let shown = |s: &RelayState| args.all || s.listed_at(now);
    let mut failed = false;
    let mut rows = Vec::new();
    for t in &targets {
        let mut relays: Vec<(&String, &RelayState)> =
            t.relays.iter().filter(|(_, s)| shown(s)).collect();
        relays.sort_by(|a, b| rank(b.1).cmp(&rank(a.1)).then(a.0.cmp(b.0)));
        failed |= !t.up
            || relays
                .iter()
                .any(|(_, s)| s.present && s.health == Some(Health::Dead));
        if relays.is_empty() {
            rows.push(row(t, None));
        }
        rows.extend(relays.into_iter().map(|r| row(t, Some(r))));
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        RejectFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        RejectFormat::Table => {
            if targets.is_empty() {
                writeln!(
                    out,
                    "no ngit-metrics or prometheus targets in {} (ingest --source ngit-metrics:URL or prometheus:URL)",
                    db.display()
                )?;
            }
            for t in &targets {
                let scraped = t
                    .last_scrape
                    .map_or("never".into(), |s| format!("{} ago", age(s, now)));
                let up = if t.up {
                    "up".to_string()
                } else {
                    format!(
                        "DOWN for {}: {}",
                        t.down_since.map_or("?".into(), |d| age(d, now)),
                        one_line(t.error.as_deref().unwrap_or(""))
                    )
                };
                let dead = t
                    .relays
                    .values()
                    .filter(|s| s.present && s.display() == Display::Dead)
                    .count();
                let connected = t
                    .relays
                    .values()
                    .filter(|s| s.present && s.connection.is_some_and(|c| c.is_connected()))
                    .count();
                let tracked = t.relays.values().filter(|s| s.present).count();
                let gone = t
                    .relays
                    .values()
                    .filter(|s| s.listed_at(now) && !s.present)
                    .count();
                let gone = if gone > 0 {
                    format!(", gone {gone}")
                } else {
                    String::new()
                };
                writeln!(
                    out,
                    "{}  {up}  last scrape {scraped}  relays {tracked}, connected {connected}, dead {dead}{gone}",
                    one_line(&t.target)
                )?;
                let mut relays: Vec<(&String, &RelayState)> =
                    t.relays.iter().filter(|(_, s)| shown(s)).collect();
                relays.sort_by(|a, b| rank(b.1).cmp(&rank(a.1)).then(a.0.cmp(b.0)));
                for (name, s) in relays {
                    writeln!(
                        out,
                        "  {:<22} {:<40} {:<38} {:>6}  streak {:<3}{}{}",
                        s.display().label(),
                        one_line(name),
                        format!(
                            "{}/{}",
                            s.connection.map_or("-".into(), |c| c.name()),
                            s.health.map_or("-".into(), |h| h.name())
                        ),
                        age(s.since(), now),
                        s.streak,
                        if s.flapping { "  FLAPPING" } else { "" },
                        match s.display() {
                            Display::Gone | Display::Unknown =>
                                format!("  (last known {})", s.last_known().label()),
                            _ => String::new(),
                        }
                    )?;
                }
            }
        }
    }
    Ok(if failed {
        Outcome::CheckFailed
    } else {
        Outcome::Ok
    })
}
