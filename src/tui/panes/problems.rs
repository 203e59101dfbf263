//! What is broken right now, by name: the Overview's state lines, built from its data
//! (pure, so the Overview draws them and Enter opens what a line names), and the short forms
//! the UI shows of remotes, ids and errors.

use super::age;
use crate::model::names::system;
use crate::model::relay::{Display, Health};
use crate::model::Severity;
use crate::sanitize::one_line;
use crate::tui::worker::OverviewData;
use crate::tui::Pane;

/// Where Enter on an Overview line goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Open {
    /// A Gerrit remote's refs.
    Remote(String),
    /// One relay's events: (target, relay).
    Relay(String, String),
    /// A pane.
    Pane(Pane),
    /// A correlation id across sources.
    Session(String),
    /// A CI pattern's failed jobs of the night (pattern id).
    CiPattern(String),
}

/// One line of the Overview's state list: a problem by name, or a system's OK line.
#[derive(Debug, Clone, PartialEq)]
pub struct StateLine {
    /// The system: `Gerrit`, `ngit`, `Spacedrive`, `CI`.
    pub system: &'static str,
    /// Error and Warning lines are problems; Info is OK; Debug is "no data".
    pub severity: Severity,
    /// The state word: `FAILED`, `RETRYING`, `DEAD`, `DOWN`, `ERRORS`, `NEW`, `OK`.
    pub state: &'static str,
    /// What is in that state; cut first (with an ellipsis) when the line is too long.
    pub name: String,
    /// Counts, since when, the last error.
    pub tail: String,
    pub open: Open,
}

impl StateLine {
    pub fn is_problem(&self) -> bool {
        self.severity >= Severity::Warning
    }
}

/// At most this many problem lines per system; the rest is one "+N more" line.
pub(crate) const PER_SYSTEM: usize = 3;

/// What is broken right now, by name and worst first, then the systems that are OK. Pure: the
/// Overview draws it and Enter opens what a line names.
pub fn state_lines(o: &OverviewData, now: i64) -> Vec<StateLine> {
    let mut problems: Vec<StateLine> = Vec::new();
    let mut fine: Vec<StateLine> = Vec::new();
    let since = |t: Option<i64>| t.map(|t| format!("since {}", age(now - t)));

    // Gerrit: each remote with FAILED or retrying refs.
    let trouble: Vec<_> = o
        .remotes
        .iter()
        .filter(|r| r.is_failed() || r.retrying > 0)
        .collect();
    for r in trouble.iter().take(PER_SYSTEM) {
        // What decides first: the error, since when, then how many refs.
        let mut tail: Vec<String> = r
            .last_error
            .as_deref()
            .map(short_error)
            .into_iter()
            .collect();
        tail.extend(since(o.remote_since.get(&r.remote).copied()));
        if r.failed > 0 {
            tail.push(format!("{} refs failed", r.failed));
        }
        if r.retrying > 0 {
            tail.push(format!("{} retrying", r.retrying));
        }
        problems.push(StateLine {
            system: "Gerrit",
            severity: if r.is_failed() {
                Severity::Error
            } else {
                Severity::Warning
            },
            state: if r.is_failed() { "FAILED" } else { "RETRYING" },
            name: compact_remote(&r.remote),
            tail: tail.join(" · "),
            open: Open::Remote(r.remote.clone()),
        });
    }
    if trouble.len() > PER_SYSTEM {
        problems.push(more(
            "Gerrit",
            trouble.len() - PER_SYSTEM,
            "remotes",
            Pane::Replication,
        ));
    }
    if trouble.is_empty() && !o.remotes.is_empty() {
        fine.push(ok_line(
            "Gerrit",
            format!("all {} remotes", o.remotes.len()),
            Pane::Replication,
        ));
    }

    // ngit: targets down (their relays are unknown, not listed), then dead and degraded relays.
    let mut relay_problems = Vec::new();
    let mut live = 0;
    for t in &o.relays {
        if !t.up {
            let mut tail: Vec<String> = since(t.down_since.map(|d| d / 1_000_000_000))
                .into_iter()
                .collect();
            let unknown = t.relays.values().filter(|r| r.present).count();
            if unknown > 0 {
                tail.push(format!("{unknown} relays unknown"));
            }
            tail.extend(t.error.as_deref().map(short_error));
            relay_problems.push(StateLine {
                system: system::NGIT,
                severity: Severity::Error,
                state: "DOWN",
                name: format!("target {}", super::relays::short_target(&t.target)),
                tail: tail.join(" · "),
                open: Open::Pane(Pane::Relays),
            });
            continue;
        }
        // A relay whose series vanished is GONE (a warning) for as long as it is listed.
        for (name, r) in t
            .relays
            .iter()
            .filter(|(_, r)| r.listed_at(now.saturating_mul(1_000_000_000)))
        {
            let d = r.display();
            let (state, severity) = match (d, r.health) {
                (Display::Dead, _) => ("DEAD", Severity::Error),
                (Display::Gone, _) => ("GONE", Severity::Warning),
                (_, Some(Health::Degraded)) => ("DEGRADED", Severity::Warning),
                _ if r.flapping => ("FLAPPING", Severity::Warning),
                _ => {
                    live += 1;
                    continue;
                }
            };
            let mut tail: Vec<String> =
                since(Some(r.since() / 1_000_000_000)).into_iter().collect();
            if r.streak > 0 {
                tail.push(format!("{} failed attempts", r.streak));
            }
            relay_problems.push(StateLine {
                system: system::NGIT,
                severity,
                state,
                name: name.clone(),
                tail: tail.join(" · "),
                open: Open::Relay(t.target.clone(), name.clone()),
            });
        }
    }
    relay_problems.sort_by_key(|l| std::cmp::Reverse(l.severity));
    let n = relay_problems.len();
    problems.extend(relay_problems.into_iter().take(PER_SYSTEM));
    if n > PER_SYSTEM {
        problems.push(more(system::NGIT, n - PER_SYSTEM, "relays", Pane::Relays));
    }
    if n == 0 && !o.relays.is_empty() {
        fine.push(ok_line(
            system::NGIT,
            format!("{live} relays live"),
            Pane::Relays,
        ));
    }

    // Spacedrive: the sessions with errors in the last hour.
    for g in o.session_errors.iter().take(PER_SYSTEM) {
        let mut name = Vec::new();
        name.extend(g.device.as_deref().map(|d| short_id(d).to_string()));
        name.extend(g.corr.as_deref().map(|c| short_id(c).to_string()));
        let mut tail = vec![format!(
            "{}{} ago",
            if g.count > 1 {
                format!("{}× · ", g.count)
            } else {
                String::new()
            },
            age(now - g.newest.as_nanos() / 1_000_000_000)
        )];
        tail.push(g.error.clone());
        problems.push(StateLine {
            system: "Spacedrive",
            severity: Severity::Error,
            state: "ERRORS",
            name: if name.is_empty() {
                "no session".into()
            } else {
                name.join(" ")
            },
            tail: tail.join(" · "),
            open: match &g.corr {
                Some(c) => Open::Session(c.clone()),
                None => Open::Pane(Pane::Timeline),
            },
        });
    }
    if o.session_error_groups > PER_SYSTEM {
        problems.push(more(
            "Spacedrive",
            o.session_error_groups - PER_SYSTEM,
            "sessions",
            Pane::Timeline,
        ));
    }
    let sd_events = o.last_hour.iter().any(|(s, _)| s == system::SPACEDRIVE);
    if o.session_errors.is_empty() && (sd_events || !o.open_sessions.is_empty()) {
        fine.push(ok_line(
            "Spacedrive",
            format!("no errors in the last hour · {}", open_sessions(o, now)),
            Pane::Timeline,
        ));
    }

    // CI: last night's NEW patterns by name.
    for (id, name, identity, jobs) in o.ci_new.iter().take(PER_SYSTEM) {
        problems.push(StateLine {
            system: "CI",
            severity: Severity::Error,
            state: "NEW",
            name: name.clone(),
            tail: format!("{jobs} jobs · {identity}"),
            open: Open::CiPattern(id.clone()),
        });
    }
    if o.ci_new.len() > PER_SYSTEM {
        problems.push(more(
            "CI",
            o.ci_new.len() - PER_SYSTEM,
            "new patterns",
            Pane::Ci,
        ));
    }
    if let Some((night, hit, _)) = &o.ci {
        if o.ci_new.is_empty() {
            let failed = night.failed > 0;
            let line = StateLine {
                system: "CI",
                severity: if failed {
                    Severity::Warning
                } else {
                    Severity::Info
                },
                state: if failed { "FAILED" } else { "OK" },
                name: format!("night {}", night.night),
                tail: format!(
                    "{} failed pipelines · {hit} known patterns, none new",
                    night.failed
                ),
                open: Open::Pane(Pane::Ci),
            };
            if failed {
                problems.push(line);
            } else {
                fine.push(line);
            }
        }
    }
    // Worst first; a system's lines keep their order.
    problems.sort_by_key(|l| std::cmp::Reverse(l.severity));
    problems.extend(fine);
    problems
}

/// "12 open sessions", "50+ open sessions", and the window when a fast store shortened it.
fn open_sessions(o: &OverviewData, now: i64) -> String {
    use crate::tui::worker::{OPEN_SESSIONS_SCAN, OPEN_SESSIONS_SHOWN};
    let n = o.open_sessions.len();
    let count = if n as u64 >= OPEN_SESSIONS_SHOWN {
        format!("{n}+")
    } else {
        n.to_string()
    };
    match o.open_since {
        Some(t) => format!(
            "{count} open sessions in the newest {OPEN_SESSIONS_SCAN} events (last {})",
            age(now - t.as_nanos().div_euclid(1_000_000_000))
        ),
        None => format!("{count} open sessions"),
    }
}

fn more(system: &'static str, n: usize, what: &str, pane: Pane) -> StateLine {
    StateLine {
        system,
        severity: Severity::Warning,
        state: "…",
        name: format!("{n} more {what}"),
        tail: String::new(),
        open: Open::Pane(pane),
    }
}

fn ok_line(system: &'static str, name: String, pane: Pane) -> StateLine {
    StateLine {
        system,
        severity: Severity::Info,
        state: "OK",
        name,
        tail: String::new(),
        open: Open::Pane(pane),
    }
}

/// A remote as the Overview names it: the host's first label and the repository
/// (`ssh://replication@mirror-eu.example.org:29418/platform/core.git` → `mirror-eu/platform/core`):
/// what tells remotes apart when one host holds many projects. The full URL is in the pane.
pub fn compact_remote(remote: &str) -> String {
    let short = super::replication::short_remote(remote, usize::MAX);
    if short.contains("://") {
        return short;
    }
    let (host, path) = short.split_once('/').unwrap_or((&short, ""));
    let host = host.split(':').next().unwrap_or(host);
    let is_ip = host.chars().all(|c| c.is_ascii_digit() || c == '.');
    let host = if is_ip {
        host
    } else {
        host.split('.').next().unwrap_or(host)
    };
    let path = path.strip_suffix(".git").unwrap_or(path);
    if path.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{path}")
    }
}

/// The first 8 characters of an id (a UUID's first group): what the UI shows of it. Every
/// lookup by id accepts this prefix.
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(8) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

/// The decisive part of an error text: its first line's last clause (a Java stack trace's
/// `...TransportException: ssh://x: Connection refused` → `Connection refused`).
pub fn short_error(e: &str) -> String {
    let first = one_line(e.lines().next().unwrap_or(e)).into_owned();
    let last = first.rsplit(": ").next().unwrap_or(&first).trim();
    if last.chars().count() >= 4 {
        last.to_string()
    } else {
        first.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vanished_relay_is_named_gone_for_an_hour_never_live() {
        use crate::model::relay::{Connection, Health, RelayReading, TargetState};
        use crate::model::Timestamp;
        let t0: i64 = 1_800_000_000;
        let reading = |relay: &str| RelayReading {
            relay: relay.into(),
            connection: Some(Connection::from(3)),
            health: Some(Health::from(1)),
            ok: 1,
            fail: 0,
        };
        let mut t = TargetState::new("http://127.0.0.1:7334/metrics");
        t.observe(
            Timestamp::from_nanos(t0 * 1_000_000_000),
            &[reading("wss://a.example"), reading("wss://b.example")],
        );
        t.observe(
            Timestamp::from_nanos((t0 + 60) * 1_000_000_000),
            &[reading("wss://a.example")],
        );
        let o = OverviewData {
            relays: vec![t],
            ..OverviewData::default()
        };
        let lines = state_lines(&o, t0 + 120);
        let gone: Vec<&StateLine> = lines.iter().filter(|l| l.state == "GONE").collect();
        assert_eq!(gone.len(), 1, "{lines:?}");
        assert_eq!(gone[0].name, "wss://b.example");
        assert_eq!(gone[0].severity, Severity::Warning);
        // Past the hour it is no longer listed, and the rest is fine.
        let later = state_lines(&o, t0 + 60 + 3601);
        assert!(later.iter().all(|l| l.state != "GONE"), "{later:?}");
    }

    #[test]
    fn errors_and_remotes_are_named_by_what_decides() {
        assert_eq!(
            short_error("Cannot replicate to ssh://r@m:29418/p.git: org.eclipse.jgit.errors.TransportException: ssh://r@m:29418/p.git: Connection refused\n\tat x"),
            "Connection refused"
        );
        assert_eq!(
            short_error("REJECTED_OTHER_REASON"),
            "REJECTED_OTHER_REASON"
        );
        assert_eq!(
            compact_remote("ssh://replication@mirror-eu.example.org:29418/platform/core.git"),
            "mirror-eu/platform/core"
        );
        assert_eq!(compact_remote("file:///var/x.git"), "file:///var/x.git");
        assert_eq!(compact_remote("10.0.0.2:29418/a.git"), "10.0.0.2/a");
        assert_eq!(short_id("7ceff8ba-1234-5678"), "7ceff8ba");
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn open_sessions_say_when_the_count_is_capped_and_the_window_shortened() {
        use crate::model::Timestamp;
        let now = 1_800_000_000;
        let session = |i: usize| (format!("s{i}"), Timestamp::from_nanos(now * 1_000_000_000));
        let mut o = OverviewData {
            open_sessions: (0..3).map(session).collect(),
            ..OverviewData::default()
        };
        assert_eq!(open_sessions(&o, now), "3 open sessions");
        o.open_sessions = (0..50).map(session).collect();
        assert_eq!(open_sessions(&o, now), "50+ open sessions");
        o.open_since = Some(Timestamp::from_nanos((now - 2) * 1_000_000_000));
        let line = open_sessions(&o, now);
        assert!(
            line.starts_with(&format!(
                "50+ open sessions in the newest {} events (last 2",
                crate::tui::worker::OPEN_SESSIONS_SCAN
            )),
            "{line}"
        );
    }
}
