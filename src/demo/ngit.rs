//! The simulated ngit-grasp relays: two instances, each with the relays it syncs with, whose
//! connection and health follow scripts over the story cycle; rendered as the v3 `/metrics`
//! exposition (families sorted by name, series by label values, label pairs by name, the
//! `ngit_uptime_seconds` trailer after a blank line). See [`super::story`].

use std::fmt::Write as _;

use super::story::{in_cycle, METRICS_UNAVAILABLE};
use super::{Rng, Vt, MS, SEC};

/// What a `/metrics` request gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200 with this exposition.
    Metrics(String),
    /// 500 `Metrics temporarily unavailable` (ngit v3 does this).
    Unavailable,
}

/// How a relay behaves over a cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Script {
    /// Live and healthy.
    Steady,
    /// Live with partial history (ConnectedHistoricSyncFailures).
    Partial,
    /// Drops, reconnects, drops, retries with backoff, Dead, reconnects at the end.
    Flaky,
    /// Rate-limited for a while.
    Busy,
    /// Refuses our subscription policy (v3 status 6).
    Policy,
    /// Stays in Syncing most of the cycle.
    Slow,
    /// Flaps between Disconnected and Syncing for a while.
    Flapping,
    /// Discovered mid-cycle, connects, forgotten near the end.
    New,
}

/// The (connection, health) a script shows at `t` ms into cycle `cycle`, and whether a
/// connection attempt ends at `t` (Some(true) success, Some(false) failure).
fn script_state(s: Script, cycle: u64, t: u64) -> (Option<i64>, Option<i64>, Option<bool>) {
    let sec = |x: u64| x * 1000;
    match s {
        Script::Steady => (Some(3), Some(1), None),
        Script::Partial => (Some(4), Some(1), None),
        Script::Busy => {
            if (sec(60)..sec(85)).contains(&t) {
                (Some(3), Some(5), None)
            } else {
                (Some(3), Some(1), None)
            }
        }
        Script::Policy => (Some(3), Some(6), None),
        Script::Slow => {
            let attempt = (t == 0).then_some(true);
            if t < sec(130) {
                (Some(2), Some(1), attempt)
            } else {
                (Some(3), Some(1), None)
            }
        }
        Script::Flapping => {
            if (sec(70)..sec(110)).contains(&t) {
                let phase = (t - sec(70)) % sec(6);
                if phase < sec(3) {
                    (Some(2), Some(1), (phase == 0).then_some(true))
                } else {
                    (Some(0), Some(3), None)
                }
            } else {
                (Some(3), Some(1), None)
            }
        }
        Script::New => {
            if t < sec(40) || t >= sec(145) {
                (None, None, None)
            } else if t < sec(41) {
                (Some(0), None, None)
            } else if t < sec(43) {
                (Some(0), Some(2), None)
            } else if t == sec(43) {
                (Some(1), Some(2), None)
            } else if t < sec(50) {
                (Some(2), Some(1), (t == sec(43) + 500).then_some(true))
            } else {
                (Some(3), Some(1), None)
            }
        }
        Script::Flaky => {
            // Failed attempts with growing backoff, then Dead; retried once a "day".
            const FAILS: [u64; 6] = [26, 30, 38, 54, 86, 120];
            if FAILS.iter().any(|&f| t == sec(f)) {
                let h = if t >= sec(90) { 4 } else { 3 };
                return (Some(1), Some(h), None);
            }
            if FAILS.iter().any(|&f| t == sec(f) + 500) {
                let h = if t >= sec(90) { 4 } else { 3 };
                return (Some(0), Some(h), Some(false));
            }
            if t < sec(12) {
                // Live; after the previous cycle's recovery the streak is reset now.
                (
                    Some(3),
                    Some(if cycle > 0 && t < 500 { 3 } else { 1 }),
                    None,
                )
            } else if t < sec(14) {
                (Some(0), Some(3), None)
            } else if t == sec(14) {
                (Some(1), Some(3), None)
            } else if t < sec(24) {
                (Some(2), Some(3), (t == sec(14) + 500).then_some(true))
            } else if t < sec(90) {
                (Some(0), Some(3), None)
            } else if t < sec(140) {
                (Some(0), Some(4), None)
            } else if t == sec(140) {
                (Some(1), Some(4), None)
            } else if t < sec(146) {
                (Some(2), Some(3), (t == sec(140) + 500).then_some(true))
            } else {
                (Some(3), Some(3), None)
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Relay {
    url: &'static str,
    script: Script,
    connection: Option<i64>,
    health: Option<i64>,
    ok: u64,
    fail: u64,
    policy_refusals: u64,
}

#[derive(Debug, Clone)]
struct Instance {
    /// Sorted by URL, as the exposition lists them.
    relays: Vec<Relay>,
    /// Answers 500 during the story's window.
    flaky_endpoint: bool,
    events_synced: u64,
    ws_total: u64,
    repositories: u64,
}

/// The simulated relays of every instance.
pub struct NgitSim {
    rng: Rng,
    instances: Vec<Instance>,
    /// The last simulated step (ms of virtual time), None before the first.
    step: Option<u64>,
}

/// Relays are simulated in steps of this much virtual time (ngit refreshes every 2 s; finer
/// steps let a 1 s scrape see transient states).
const STEP_MS: u64 = 500;

fn relay(url: &'static str, script: Script) -> Relay {
    Relay {
        url,
        script,
        connection: None,
        health: None,
        ok: 0,
        fail: 0,
        policy_refusals: 0,
    }
}

impl NgitSim {
    pub fn new(rng: Rng) -> NgitSim {
        let mut eu = vec![
            relay("wss://relay.example.com", Script::Steady),
            relay("wss://nostr.example.org", Script::Steady),
            relay("wss://git.example.net/relay", Script::Steady),
            relay("wss://relay.flaky.example", Script::Flaky),
            relay("wss://relay.busy.example", Script::Busy),
            relay("wss://relay.paywall.example", Script::Policy),
            relay("ws://relay.slow.example:7777", Script::Slow),
            relay("wss://relay.flapping.example", Script::Flapping),
            relay("wss://relay.new.example", Script::New),
        ];
        let mut us = vec![
            relay("wss://relay.example.com", Script::Steady),
            relay("wss://nostr.example.org", Script::Steady),
            relay("wss://relay.archive.example", Script::Partial),
        ];
        eu.sort_by_key(|r| r.url);
        us.sort_by_key(|r| r.url);
        let instance = |relays, flaky_endpoint, repositories| Instance {
            relays,
            flaky_endpoint,
            events_synced: 0,
            ws_total: 0,
            repositories,
        };
        NgitSim {
            rng,
            instances: vec![instance(eu, false, 42), instance(us, true, 17)],
            step: None,
        }
    }

    pub fn instance_count(&self) -> usize {
        self.instances.len()
    }

    /// Simulates every step up to `vt`.
    pub fn advance(&mut self, vt: Vt) {
        let last = vt / MS / STEP_MS * STEP_MS;
        let mut next = self.step.map_or(0, |s| s + STEP_MS);
        while next <= last {
            self.simulate(next);
            self.step = Some(next);
            next += STEP_MS;
        }
    }

    fn simulate(&mut self, ms: u64) {
        let (cycle, t) = in_cycle(ms * MS);
        let t = t / MS;
        for inst in &mut self.instances {
            for r in &mut inst.relays {
                let (c, h, attempt) = script_state(r.script, cycle, t);
                r.connection = c;
                r.health = h;
                match attempt {
                    Some(true) => r.ok += 1,
                    Some(false) => r.fail += 1,
                    None => {}
                }
                if r.script == Script::Policy && t == 0 {
                    r.policy_refusals += 1;
                }
                if matches!(c, Some(2..=4)) {
                    inst.events_synced += self.rng.below(4);
                }
            }
            inst.ws_total += self.rng.below(2);
        }
    }

    /// What instance `i` answers at `vt`.
    pub fn render(&self, i: usize, vt: Vt) -> Reply {
        let Some(inst) = self.instances.get(i) else {
            return Reply::Unavailable;
        };
        let (_, t) = in_cycle(vt);
        if inst.flaky_endpoint && (METRICS_UNAVAILABLE.0..METRICS_UNAVAILABLE.1).contains(&t) {
            return Reply::Unavailable;
        }
        Reply::Metrics(exposition(inst, vt))
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn exposition(inst: &Instance, vt: Vt) -> String {
    let mut o = String::with_capacity(6000);
    let tracked: Vec<&Relay> = inst
        .relays
        .iter()
        .filter(|r| r.connection.is_some() || r.health.is_some())
        .collect();
    family(&mut o, "ngit_build_info", "gauge", "Build information");
    o.push_str("ngit_build_info{commit=\"unknown\",version=\"3.0.10\"} 1\n");
    family(
        &mut o,
        "ngit_repositories_total",
        "gauge",
        "Total repositories hosted",
    );
    let _ = writeln!(o, "ngit_repositories_total {}", inst.repositories);
    family(
        &mut o,
        "ngit_sync_connection_attempts_total",
        "counter",
        "Total connection attempts by relay and result",
    );
    for r in &inst.relays {
        if r.fail > 0 {
            let _ = writeln!(
                o,
                "ngit_sync_connection_attempts_total{{relay=\"{}\",result=\"failure\"}} {}",
                r.url, r.fail
            );
        }
        if r.ok > 0 {
            let _ = writeln!(
                o,
                "ngit_sync_connection_attempts_total{{relay=\"{}\",result=\"success\"}} {}",
                r.url, r.ok
            );
        }
    }
    family(
        &mut o,
        "ngit_sync_events_synced_total",
        "counter",
        "Total events synced (newly saved events only)",
    );
    let _ = writeln!(o, "ngit_sync_events_synced_total {}", inst.events_synced);
    family(
        &mut o,
        "ngit_sync_naughty_relays_total",
        "gauge",
        "Number of relays on naughty list by category",
    );
    for c in [
        "dns_lookup_failed",
        "protocol_error",
        "tls_certificate_invalid",
    ] {
        let _ = writeln!(o, "ngit_sync_naughty_relays_total{{category=\"{c}\"}} 0");
    }
    let refusing: Vec<&Relay> = inst
        .relays
        .iter()
        .filter(|r| r.policy_refusals > 0)
        .collect();
    if !refusing.is_empty() {
        family(
            &mut o,
            "ngit_sync_policy_refusals_total",
            "counter",
            "Relay policy refusals by relay and category",
        );
        for r in refusing {
            let _ = writeln!(
                o,
                "ngit_sync_policy_refusals_total{{category=\"authentication_required\",relay=\"{}\"}} {}",
                r.url, r.policy_refusals
            );
        }
    }
    family(
        &mut o,
        "ngit_sync_relay_connected",
        "gauge",
        "Relay connection status (0=disconnected, 1=connecting, 2=syncing, 3=connected, 4=connected_historic_sync_failures)",
    );
    for r in &tracked {
        if let Some(c) = r.connection {
            let _ = writeln!(o, "ngit_sync_relay_connected{{relay=\"{}\"}} {c}", r.url);
        }
    }
    family(
        &mut o,
        "ngit_sync_relay_status",
        "gauge",
        "Relay health status (1=healthy, 2=disconnected, 3=degraded, 4=dead, 5=rate_limited, 6=policy_limited)",
    );
    for r in &tracked {
        if let Some(h) = r.health {
            let _ = writeln!(o, "ngit_sync_relay_status{{relay=\"{}\"}} {h}", r.url);
        }
    }
    let connected = tracked
        .iter()
        .filter(|r| matches!(r.connection, Some(2..=5)))
        .count();
    family(
        &mut o,
        "ngit_sync_relays_connected_total",
        "gauge",
        "Number of currently connected relays",
    );
    let _ = writeln!(o, "ngit_sync_relays_connected_total {connected}");
    family(
        &mut o,
        "ngit_sync_relays_dead_total",
        "gauge",
        "Number of relays marked as dead",
    );
    // Never updated by ngit: always 0.
    o.push_str("ngit_sync_relays_dead_total 0\n");
    family(
        &mut o,
        "ngit_sync_relays_tracked_total",
        "gauge",
        "Total number of relays discovered and tracked",
    );
    let _ = writeln!(o, "ngit_sync_relays_tracked_total {}", tracked.len());
    family(
        &mut o,
        "ngit_sync_retained_state_current",
        "gauge",
        "Current retained sync-manager entries by fixed state class",
    );
    let syncing = tracked.iter().filter(|r| r.connection == Some(2)).count();
    let waiting = tracked.iter().filter(|r| r.connection == Some(0)).count();
    for (class, n) in [
        ("pending_batches", syncing * 3),
        ("pending_subscriptions", syncing),
        ("queued_connection_attempts", waiting),
    ] {
        let _ = writeln!(
            o,
            "ngit_sync_retained_state_current{{class=\"{class}\"}} {n}"
        );
    }
    family(
        &mut o,
        "ngit_websocket_connections_active",
        "gauge",
        "Current active WebSocket connections",
    );
    let _ = writeln!(o, "ngit_websocket_connections_active {}", connected + 2);
    family(
        &mut o,
        "ngit_websocket_connections_total",
        "counter",
        "Total WebSocket connections since startup",
    );
    let _ = writeln!(o, "ngit_websocket_connections_total {}", inst.ws_total);
    family(
        &mut o,
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
    );
    let _ = writeln!(
        o,
        "process_resident_memory_bytes {}",
        48_000_000 + inst.ws_total * 4096
    );
    family(
        &mut o,
        "process_threads",
        "gauge",
        "Number of OS threads in the process.",
    );
    o.push_str("process_threads 12\n");
    o.push('\n');
    family(
        &mut o,
        "ngit_uptime_seconds",
        "counter",
        "Seconds since server startup",
    );
    let _ = writeln!(o, "ngit_uptime_seconds {}", vt / SEC);
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::relay::{Display, TargetState};
    use crate::model::Timestamp;
    use crate::sources::ngit::exposition::parse;
    use crate::sources::ngit::readings;

    fn at(
        sim: &mut NgitSim,
        i: usize,
        vt: Vt,
    ) -> Option<crate::sources::ngit::exposition::Exposition> {
        sim.advance(vt);
        match sim.render(i, vt) {
            Reply::Metrics(text) => Some(parse(&text)),
            Reply::Unavailable => None,
        }
    }

    #[test]
    fn expositions_parse_and_the_flaky_relay_dies() {
        let mut sim = NgitSim::new(Rng::new(3));
        let mut target = TargetState::new("http://127.0.0.1:1/metrics");
        let mut shown = Vec::new();
        let mut vt = 0;
        while vt < super::super::story::CYCLE + 20 * SEC {
            let e = at(&mut sim, 0, vt).unwrap();
            assert!(e.errors.is_empty(), "{:?}", e.errors);
            let r = readings(&e);
            assert!((8..=9).contains(&r.len()), "{}", r.len());
            target.observe(Timestamp::from_nanos(vt as i64), &r);
            let flaky = &target.relays["wss://relay.flaky.example"];
            let d = flaky.display();
            if shown.last() != Some(&d) {
                shown.push(d);
            }
            vt += SEC;
        }
        for d in [
            Display::Live,
            Display::Syncing,
            Display::Retrying,
            Display::Dead,
        ] {
            assert!(shown.contains(&d), "{d:?} not in {shown:?}");
        }
        let flaky = &target.relays["wss://relay.flaky.example"];
        assert!(flaky.fail >= 6, "{}", flaky.fail);
        assert!(target.relays.len() == 9);
    }

    #[test]
    fn the_second_target_goes_down_for_a_while() {
        let mut sim = NgitSim::new(Rng::new(3));
        let e = at(&mut sim, 1, 5 * SEC).unwrap();
        assert_eq!(readings(&e).len(), 3);
        assert!(at(&mut sim, 1, 105 * SEC).is_none());
        assert!(at(&mut sim, 1, 115 * SEC).is_some());
    }
}
