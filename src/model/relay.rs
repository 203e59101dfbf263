//! ngit (GRASP) relays: what the codes of `ngit_sync_relay_connected` and
//! `ngit_sync_relay_status` mean, the display state derived from both, and a tracker that turns
//! successive scrapes of one `/metrics` target into relay state (time in state, failure streak,
//! flapping) and events: transitions, the alert rules, and the target going down or coming back.
//!
//! ngit exports neither a failure streak (`ngit_sync_relay_failures` is never set) nor a dead
//! count (`ngit_sync_relays_dead_total` is always 0), so both are derived here from scrape deltas.
//! No I/O: the ngit source feeds readings in and stores the events and state out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Event, Severity, Timestamp};

/// The system name on every event this module makes.
pub const SOURCE: &str = crate::model::names::system::NGIT;

/// How long two reconnects may be apart and still count as flapping.
const FLAP_WINDOW_NS: i64 = 120_000_000_000;
/// Reconnect signals within the window that make a relay "flapping".
const FLAP_SIGNALS: usize = 2;
const HOUR_NS: i64 = 3_600_000_000_000;
/// The seed's alert rules.
const ALERT_SYNCING_NS: i64 = HOUR_NS;
const ALERT_DEAD_NS: i64 = 24 * HOUR_NS;
const ALERT_DISCONNECTING_NS: i64 = 60_000_000_000;
const ALERT_DEGRADED_RELAYS: usize = 5;
/// How long a relay that vanished from `/metrics` stays in the default lists (as GONE).
pub const GONE_LISTED_NS: i64 = HOUR_NS;

/// `ngit_sync_relay_connected`: the connection lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "i64", into = "i64")]
pub enum Connection {
    Disconnected,
    Connecting,
    Syncing,
    Connected,
    ConnectedHistoricSyncFailures,
    Disconnecting,
    Unknown(i64),
}

impl From<i64> for Connection {
    fn from(code: i64) -> Self {
        match code {
            0 => Connection::Disconnected,
            1 => Connection::Connecting,
            2 => Connection::Syncing,
            3 => Connection::Connected,
            4 => Connection::ConnectedHistoricSyncFailures,
            5 => Connection::Disconnecting,
            other => Connection::Unknown(other),
        }
    }
}

impl From<Connection> for i64 {
    fn from(c: Connection) -> i64 {
        c.code()
    }
}

impl Connection {
    pub fn code(self) -> i64 {
        match self {
            Connection::Disconnected => 0,
            Connection::Connecting => 1,
            Connection::Syncing => 2,
            Connection::Connected => 3,
            Connection::ConnectedHistoricSyncFailures => 4,
            Connection::Disconnecting => 5,
            Connection::Unknown(c) => c,
        }
    }

    pub fn name(self) -> String {
        match self {
            Connection::Disconnected => "Disconnected".into(),
            Connection::Connecting => "Connecting".into(),
            Connection::Syncing => "Syncing".into(),
            Connection::Connected => "Connected".into(),
            Connection::ConnectedHistoricSyncFailures => "ConnectedHistoricSyncFailures".into(),
            Connection::Disconnecting => "Disconnecting".into(),
            Connection::Unknown(c) => format!("unknown({c})"),
        }
    }

    /// A socket is up (what `ngit_sync_relays_connected_total` should count).
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            Connection::Syncing | Connection::Connected | Connection::ConnectedHistoricSyncFailures
        )
    }
}

/// `ngit_sync_relay_status`: the health ngit computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "i64", into = "i64")]
pub enum Health {
    Healthy,
    Disconnected,
    Degraded,
    Dead,
    RateLimited,
    PolicyLimited,
    Unknown(i64),
}

impl From<i64> for Health {
    fn from(code: i64) -> Self {
        match code {
            1 => Health::Healthy,
            2 => Health::Disconnected,
            3 => Health::Degraded,
            4 => Health::Dead,
            5 => Health::RateLimited,
            6 => Health::PolicyLimited,
            other => Health::Unknown(other),
        }
    }
}

impl From<Health> for i64 {
    fn from(h: Health) -> i64 {
        h.code()
    }
}

impl Health {
    pub fn code(self) -> i64 {
        match self {
            Health::Healthy => 1,
            Health::Disconnected => 2,
            Health::Degraded => 3,
            Health::Dead => 4,
            Health::RateLimited => 5,
            Health::PolicyLimited => 6,
            Health::Unknown(c) => c,
        }
    }

    pub fn name(self) -> String {
        match self {
            Health::Healthy => "Healthy".into(),
            Health::Disconnected => "Disconnected".into(),
            Health::Degraded => "Degraded".into(),
            Health::Dead => "Dead".into(),
            Health::RateLimited => "RateLimited".into(),
            Health::PolicyLimited => "PolicyLimited".into(),
            Health::Unknown(c) => format!("unknown({c})"),
        }
    }
}

/// A gauge value as a state code (gauges are floats on the wire).
pub fn code_of(value: f64) -> i64 {
    if value.is_finite() && value.fract() == 0.0 {
        value as i64
    } else {
        -1
    }
}

/// What to show for a relay: both gauges read together, first match wins (ngit.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    Dead,
    PolicyLimited,
    RateLimited,
    Connecting,
    Syncing,
    LivePartialHistory,
    LiveStabilising,
    Live,
    Disconnecting,
    Retrying,
    Idle,
    Unknown,
    /// The relay's series vanished from `/metrics` (ngit stopped tracking it): its last known
    /// state is all there is.
    Gone,
}

impl Display {
    pub fn of(connection: Option<Connection>, health: Option<Health>) -> Display {
        use Connection as C;
        match (connection, health) {
            (_, Some(Health::Dead)) => Display::Dead,
            (_, Some(Health::PolicyLimited)) => Display::PolicyLimited,
            (_, Some(Health::RateLimited)) => Display::RateLimited,
            (Some(C::Connecting), _) => Display::Connecting,
            (Some(C::Syncing), _) => Display::Syncing,
            (Some(C::ConnectedHistoricSyncFailures), _) => Display::LivePartialHistory,
            (Some(C::Connected), Some(Health::Degraded)) => Display::LiveStabilising,
            (Some(C::Connected), _) => Display::Live,
            (Some(C::Disconnecting), _) => Display::Disconnecting,
            (Some(C::Disconnected), Some(Health::Degraded)) => Display::Retrying,
            (Some(C::Disconnected), Some(Health::Disconnected)) => Display::Idle,
            _ => Display::Unknown,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Display::Dead => "DEAD",
            Display::PolicyLimited => "POLICY-LIMITED",
            Display::RateLimited => "RATE-LIMITED",
            Display::Connecting => "CONNECTING",
            Display::Syncing => "SYNCING",
            Display::LivePartialHistory => "LIVE (partial history)",
            Display::LiveStabilising => "LIVE, STABILISING",
            Display::Live => "LIVE",
            Display::Disconnecting => "DISCONNECTING",
            Display::Retrying => "RETRYING",
            Display::Idle => "IDLE",
            Display::Unknown => "UNKNOWN",
            Display::Gone => "GONE",
        }
    }

    /// How worrying the state is.
    pub fn severity(self) -> Severity {
        match self {
            Display::Dead => Severity::Error,
            Display::PolicyLimited
            | Display::RateLimited
            | Display::LivePartialHistory
            | Display::LiveStabilising
            | Display::Disconnecting
            | Display::Retrying
            | Display::Unknown
            | Display::Gone => Severity::Warning,
            Display::Connecting | Display::Syncing | Display::Live | Display::Idle => {
                Severity::Info
            }
        }
    }
}

/// One relay as one scrape shows it; a missing series is `None` (or 0 for a counter).
#[derive(Debug, Clone, PartialEq)]
pub struct RelayReading {
    pub relay: String,
    pub connection: Option<Connection>,
    pub health: Option<Health>,
    /// `ngit_sync_connection_attempts_total{result="success"}`.
    pub ok: u64,
    /// `ngit_sync_connection_attempts_total{result="failure"}`.
    pub fail: u64,
}

/// What is known of one relay across scrapes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayState {
    pub connection: Option<Connection>,
    pub health: Option<Health>,
    /// When the connection state last changed (ns).
    pub connection_since: i64,
    /// When the health last changed (ns).
    pub health_since: i64,
    pub ok: u64,
    pub fail: u64,
    /// Failed attempts since the relay last came up live (derived: ngit does not export it).
    pub streak: u64,
    pub last_failure: Option<i64>,
    /// A success was counted since the last failure; the streak resets once the relay is live.
    success_pending: bool,
    /// Reconnect signals (a success counted, a 0 <-> 2 flip) within the flap window.
    signals: Vec<i64>,
    pub flapping: bool,
    /// In the last scrape (v3 forgets relays it stops tracking).
    pub present: bool,
    /// When its series vanished from the scrape (ns); None while present.
    #[serde(default)]
    pub gone_since: Option<i64>,
    /// Since when its state cannot be known because the target is down (ns).
    #[serde(default)]
    pub unknown_since: Option<i64>,
    alert_syncing: bool,
    alert_dead: bool,
    alert_disconnecting: bool,
}

impl RelayState {
    /// What to show now: GONE when its series vanished, UNKNOWN while its target is down
    /// (what the relay does then cannot be seen), else what the two gauges say.
    pub fn display(&self) -> Display {
        if !self.present {
            Display::Gone
        } else if self.unknown_since.is_some() {
            Display::Unknown
        } else {
            self.last_known()
        }
    }

    /// What the two gauges said at the last scrape that had them.
    pub fn last_known(&self) -> Display {
        Display::of(self.connection, self.health)
    }

    /// When the relay entered what it shows now (vanished, unknown, or its gauges' state).
    pub fn since(&self) -> i64 {
        self.gone_since
            .filter(|_| !self.present)
            .or(self.unknown_since)
            .unwrap_or(self.connection_since.max(self.health_since))
    }

    /// Listed without `--all`: tracked, or gone within the last [`GONE_LISTED_NS`].
    pub fn listed_at(&self, now_ns: i64) -> bool {
        self.present
            || self
                .gone_since
                .is_some_and(|g| now_ns - g <= GONE_LISTED_NS)
    }
}

/// One `/metrics` target and its relays, carried from scrape to scrape (and saved as the
/// source's checkpoint, so a restart neither forgets streaks nor repeats events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetState {
    pub target: String,
    /// The last scrape succeeded (Prometheus' `up`).
    pub up: bool,
    pub last_scrape: Option<i64>,
    pub down_since: Option<i64>,
    pub error: Option<String>,
    pub relays: BTreeMap<String, RelayState>,
    alert_degraded: bool,
}

impl TargetState {
    pub fn new(target: &str) -> Self {
        TargetState {
            target: target.to_string(),
            up: true,
            last_scrape: None,
            down_since: None,
            error: None,
            relays: BTreeMap::new(),
            alert_degraded: false,
        }
    }

    fn event(
        &self,
        at: i64,
        event_type: &str,
        category: &str,
        severity: Severity,
        summary: String,
    ) -> Event {
        let mut e = Event::new(
            Timestamp::from_nanos(at),
            SOURCE,
            event_type,
            category,
            severity,
            summary,
        );
        e.device_id = Some(self.target.clone());
        e
    }

    /// A scrape could not be made or read: the target is down (one event when it goes down).
    pub fn scrape_failed(&mut self, at: Timestamp, reason: &str) -> Vec<Event> {
        let at = at.as_nanos();
        self.last_scrape = Some(at);
        self.error = Some(reason.to_string());
        if !self.up && self.down_since.is_some() {
            return Vec::new();
        }
        self.up = false;
        self.down_since = Some(at);
        for st in self.relays.values_mut() {
            st.unknown_since.get_or_insert(at);
        }
        vec![self.event(
            at,
            "scrape_failed",
            "scrape",
            Severity::Error,
            format!("{} is down: {reason}", self.target),
        )]
    }

    /// A successful scrape: updates every relay and returns what changed, as events.
    pub fn observe(&mut self, at: Timestamp, readings: &[RelayReading]) -> Vec<Event> {
        let at = at.as_nanos();
        let mut out = Vec::new();
        if !self.up {
            let down = self.down_since.map_or(0, |d| (at - d) / 1_000_000_000);
            out.push(self.event(
                at,
                "scrape_recovered",
                "scrape",
                Severity::Info,
                format!("{} is up again after {down} s down", self.target),
            ));
        }
        self.up = true;
        self.down_since = None;
        self.error = None;
        self.last_scrape = Some(at);
        for st in self.relays.values_mut() {
            st.unknown_since = None;
        }

        let mut seen = std::collections::HashSet::with_capacity(readings.len());
        for reading in readings {
            seen.insert(reading.relay.as_str());
            let events = self.observe_relay(at, reading);
            out.extend(events);
        }
        let target = self.target.clone();
        let mut forgotten = Vec::new();
        for (relay, st) in self.relays.iter_mut() {
            if st.present && !seen.contains(relay.as_str()) {
                st.present = false;
                st.gone_since = Some(at);
                forgotten.push((relay.clone(), st.clone()));
            }
        }
        for (relay, st) in forgotten {
            let was = st.last_known();
            let mut e = self.event(
                at,
                "relay_gone",
                "relay",
                Severity::Warning,
                format!(
                    "{relay}: GONE from the metrics of {target}, last {} ({}) for {} s",
                    was.label(),
                    names((st.connection, st.health)),
                    (at - st.connection_since.max(st.health_since)).max(0) / 1_000_000_000
                ),
            );
            e.details = Some(details(&st, (st.connection, st.health)));
            e.subject = Some(relay);
            out.push(e);
        }

        let degraded = self
            .relays
            .values()
            .filter(|s| s.present && s.health == Some(Health::Degraded))
            .count();
        if degraded > ALERT_DEGRADED_RELAYS && !self.alert_degraded {
            self.alert_degraded = true;
            out.push(self.event(
                at,
                "alert_relays_degraded",
                "alert",
                Severity::Warning,
                format!("{degraded} relays of {target} are Degraded (more than {ALERT_DEGRADED_RELAYS})"),
            ));
        } else if degraded <= ALERT_DEGRADED_RELAYS && self.alert_degraded {
            self.alert_degraded = false;
            out.push(self.event(
                at,
                "alert_resolved",
                "alert",
                Severity::Info,
                format!("{degraded} relays of {target} are Degraded now (at most {ALERT_DEGRADED_RELAYS})"),
            ));
        }
        out
    }

    fn observe_relay(&mut self, at: i64, r: &RelayReading) -> Vec<Event> {
        let mut out = Vec::new();
        let first = !self.relays.contains_key(&r.relay);
        let st = self.relays.entry(r.relay.clone()).or_insert(RelayState {
            connection: r.connection,
            health: r.health,
            connection_since: at,
            health_since: at,
            ok: r.ok,
            fail: r.fail,
            streak: 0,
            last_failure: None,
            success_pending: false,
            signals: Vec::new(),
            flapping: false,
            present: true,
            gone_since: None,
            unknown_since: None,
            alert_syncing: false,
            alert_dead: false,
            alert_disconnecting: false,
        });
        let before = (st.connection, st.health);
        let shown_before = st.last_known();
        let returned = !first && !st.present;

        // Counters: a counter that went down was reset (relay restarted): count from zero.
        let d_ok = if r.ok >= st.ok { r.ok - st.ok } else { r.ok };
        let d_fail = if r.fail >= st.fail {
            r.fail - st.fail
        } else {
            r.fail
        };
        st.ok = r.ok;
        st.fail = r.fail;
        if first {
            st.streak = if r.ok == 0 { r.fail } else { 0 };
        } else if d_fail > 0 {
            st.streak += d_fail;
            st.last_failure = Some(at);
            st.success_pending = false;
        }
        if d_ok > 0 {
            st.success_pending = true;
        }
        if st.success_pending
            && matches!(
                r.connection,
                Some(Connection::Connected | Connection::ConnectedHistoricSyncFailures)
            )
        {
            st.streak = 0;
            st.success_pending = false;
        }

        // Flapping: reconnects (successes counted, 0 <-> 2 flips) close together.
        if !first {
            let flip = matches!(
                (st.connection, r.connection),
                (Some(Connection::Disconnected), Some(Connection::Syncing))
                    | (Some(Connection::Syncing), Some(Connection::Disconnected))
            );
            // A reconnect shows as a success counted, a 0 -> 2 flip, or both: count it once.
            let n = (d_ok as usize).max(usize::from(flip));
            st.signals.extend(std::iter::repeat_n(at, n.min(16)));
        }
        st.signals.retain(|&t| at - t <= FLAP_WINDOW_NS);
        let was_flapping = st.flapping;
        st.flapping = st.signals.len() >= FLAP_SIGNALS;

        if st.connection != r.connection {
            st.connection = r.connection;
            st.connection_since = at;
        }
        if st.health != r.health {
            st.health = r.health;
            st.health_since = at;
        }
        st.present = true;
        st.gone_since = None;
        let st = st.clone();
        let shown = st.display();
        let now = (st.connection, st.health);
        let mut relay_event = |event_type: &str, category: &str, severity, summary: String| {
            let mut e = self.event(at, event_type, category, severity, summary);
            e.subject = Some(r.relay.clone());
            e.details = Some(details(&st, before));
            out.push(e);
        };

        if first {
            relay_event(
                "relay_seen",
                "relay",
                shown.severity(),
                format!("{}: {} ({})", r.relay, shown.label(), names(now)),
            );
        } else if returned {
            relay_event(
                "relay_returned",
                "relay",
                shown.severity(),
                format!(
                    "{}: back in the metrics, {} ({})",
                    r.relay,
                    shown.label(),
                    names(now)
                ),
            );
        } else if now != before {
            let (event_type, severity) = if shown == Display::Dead && shown_before == Display::Dead
            {
                // Still Dead; ngit retries once a day: a change worth recording, not alarming.
                ("relay_state_changed", Severity::Info)
            } else if shown == Display::Dead {
                ("relay_dead", Severity::Error)
            } else if shown_before == Display::Dead {
                ("relay_recovered", Severity::Info)
            } else {
                ("relay_state_changed", shown.severity())
            };
            relay_event(
                event_type,
                "relay",
                severity,
                format!(
                    "{}: {} -> {} ({})",
                    r.relay,
                    shown_before.label(),
                    shown.label(),
                    names(now)
                ),
            );
        }
        if st.flapping && !was_flapping {
            relay_event(
                "relay_flapping",
                "relay",
                Severity::Warning,
                format!(
                    "{}: flapping, {} reconnects within {} s",
                    r.relay,
                    st.signals.len(),
                    FLAP_WINDOW_NS / 1_000_000_000
                ),
            );
        } else if !st.flapping && was_flapping {
            relay_event(
                "relay_stable",
                "relay",
                Severity::Info,
                format!("{}: no longer flapping", r.relay),
            );
        }

        // The alert rules, each raised once per episode.
        let mut alerts: Vec<(&str, Severity, String, bool)> = Vec::new();
        let syncing = st.connection == Some(Connection::Syncing);
        let syncing_long = syncing && at - st.connection_since > ALERT_SYNCING_NS;
        let dead_long = st.health == Some(Health::Dead) && at - st.health_since > ALERT_DEAD_NS;
        let disconnecting_long = st.connection == Some(Connection::Disconnecting)
            && at - st.connection_since > ALERT_DISCONNECTING_NS;
        alerts.push((
            "alert_relay_syncing_long",
            Severity::Warning,
            format!(
                "{}: Syncing for more than 1 h (historic sync not finishing)",
                r.relay
            ),
            syncing_long,
        ));
        alerts.push((
            "alert_relay_dead_long",
            Severity::Error,
            format!("{}: Dead for more than 1 day", r.relay),
            dead_long,
        ));
        alerts.push((
            "alert_relay_disconnecting_long",
            Severity::Warning,
            format!("{}: Disconnecting for more than 1 min (stuck)", r.relay),
            disconnecting_long,
        ));
        let mut raised = Vec::new();
        for (event_type, severity, summary, active) in alerts {
            let flag = match event_type {
                "alert_relay_syncing_long" => st.alert_syncing,
                "alert_relay_dead_long" => st.alert_dead,
                _ => st.alert_disconnecting,
            };
            if active && !flag {
                relay_event(event_type, "alert", severity, summary);
            }
            raised.push(active);
        }
        if let Some(s) = self.relays.get_mut(&r.relay) {
            *s = st;
            s.alert_syncing = raised[0];
            s.alert_dead = raised[1];
            s.alert_disconnecting = raised[2];
        }
        out
    }
}

fn names((c, h): (Option<Connection>, Option<Health>)) -> String {
    let c = c.map_or_else(|| "no connection series".to_string(), |c| c.name());
    let h = h.map_or_else(|| "no health series".to_string(), |h| h.name());
    format!("{c}/{h}")
}

fn details(st: &RelayState, before: (Option<Connection>, Option<Health>)) -> String {
    // Codes and names only (no outside text): written directly, no JSON tree.
    let code = |c: Option<i64>| c.map_or("null".to_string(), |c| c.to_string());
    let name = |n: Option<String>| n.map_or("null".to_string(), |n| format!("\"{n}\""));
    format!(
        "{{\"connection\":{},\"connection_name\":{},\"health\":{},\"health_name\":{},\"previous_connection\":{},\"previous_health\":{},\"attempts_ok\":{},\"attempts_failed\":{},\"failure_streak\":{},\"flapping\":{}}}",
        code(st.connection.map(Connection::code)),
        name(st.connection.map(Connection::name)),
        code(st.health.map(Health::code)),
        name(st.health.map(Health::name)),
        code(before.0.map(Connection::code)),
        code(before.1.map(Health::code)),
        st.ok,
        st.fail,
        st.streak,
        st.flapping,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_800_000_000 * S;

    fn reading(relay: &str, conn: i64, health: i64, ok: u64, fail: u64) -> RelayReading {
        RelayReading {
            relay: relay.into(),
            connection: Some(Connection::from(conn)),
            health: Some(Health::from(health)),
            ok,
            fail,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_nanos(T0 + secs * S)
    }

    fn types(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.event_type.as_str()).collect()
    }

    #[test]
    fn codes_and_names_round_trip_and_unknown_values_are_kept() {
        for code in 0..=5 {
            assert_eq!(Connection::from(code).code(), code);
        }
        for code in 1..=6 {
            assert_eq!(Health::from(code).code(), code);
        }
        assert_eq!(Connection::from(7).name(), "unknown(7)");
        assert_eq!(Health::from(6).name(), "PolicyLimited");
        assert_eq!(code_of(3.0), 3);
        assert_eq!(code_of(f64::NAN), -1);
        assert_eq!(code_of(2.5), -1);
        let json = serde_json::to_string(&Connection::Syncing).unwrap();
        assert_eq!(json, "2");
    }

    #[test]
    fn display_follows_the_documented_order() {
        use Connection as C;
        use Health as H;
        let d = |c, h| Display::of(Some(c), Some(h));
        assert_eq!(d(C::Connected, H::Dead), Display::Dead);
        assert_eq!(d(C::Connected, H::PolicyLimited), Display::PolicyLimited);
        assert_eq!(d(C::Syncing, H::RateLimited), Display::RateLimited);
        assert_eq!(d(C::Connecting, H::Degraded), Display::Connecting);
        assert_eq!(d(C::Syncing, H::Healthy), Display::Syncing);
        assert_eq!(
            d(C::ConnectedHistoricSyncFailures, H::Healthy),
            Display::LivePartialHistory
        );
        assert_eq!(d(C::Connected, H::Degraded), Display::LiveStabilising);
        assert_eq!(d(C::Connected, H::Healthy), Display::Live);
        assert_eq!(d(C::Disconnecting, H::Healthy), Display::Disconnecting);
        assert_eq!(d(C::Disconnected, H::Degraded), Display::Retrying);
        assert_eq!(d(C::Disconnected, H::Disconnected), Display::Idle);
        assert_eq!(Display::of(Some(C::Disconnected), None), Display::Unknown);
        assert_eq!(Display::of(None, None), Display::Unknown);
    }

    #[test]
    fn going_dead_is_an_error_and_recovering_an_info_event() {
        let mut t = TargetState::new("http://127.0.0.1:7334/metrics");
        let e = t.observe(at(0), &[reading("wss://a", 3, 1, 1, 0)]);
        assert_eq!(types(&e), ["relay_seen"]);
        assert!(
            t.observe(at(5), &[reading("wss://a", 3, 1, 1, 0)])
                .is_empty(),
            "no change, no event"
        );
        let e = t.observe(at(10), &[reading("wss://a", 0, 3, 1, 1)]);
        assert_eq!(types(&e), ["relay_state_changed"]);
        assert_eq!(e[0].severity, Severity::Warning);
        assert_eq!(e[0].subject.as_deref(), Some("wss://a"));
        assert_eq!(
            e[0].device_id.as_deref(),
            Some("http://127.0.0.1:7334/metrics")
        );
        assert!(
            e[0].summary.contains("LIVE -> RETRYING"),
            "{}",
            e[0].summary
        );
        let e = t.observe(at(20), &[reading("wss://a", 0, 4, 1, 3)]);
        assert_eq!(types(&e), ["relay_dead"]);
        assert_eq!(e[0].severity, Severity::Error);
        assert_eq!(t.relays["wss://a"].streak, 3);
        let e = t.observe(at(30), &[reading("wss://a", 2, 1, 2, 3)]);
        assert_eq!(types(&e), ["relay_recovered"]);
        assert_eq!(e[0].severity, Severity::Info);
        assert_eq!(
            t.relays["wss://a"].streak, 3,
            "not live yet: the streak stands"
        );
        t.observe(at(40), &[reading("wss://a", 3, 1, 2, 3)]);
        assert_eq!(
            t.relays["wss://a"].streak, 0,
            "live after a success: streak reset"
        );
        let details: serde_json::Value =
            serde_json::from_str(e[0].details.as_deref().unwrap()).unwrap();
        assert_eq!(details["previous_health"], 4);
        assert_eq!(details["health_name"], "Healthy");
    }

    #[test]
    fn flapping_is_detected_from_reconnects_and_flips() {
        let mut t = TargetState::new("tgt");
        t.observe(at(0), &[reading("r", 2, 1, 1, 0)]);
        t.observe(at(8), &[reading("r", 0, 3, 1, 0)]);
        let e = t.observe(at(16), &[reading("r", 2, 1, 2, 0)]);
        assert!(types(&e).contains(&"relay_flapping"), "{:?}", types(&e));
        assert!(t.relays["r"].flapping);
        // Quiet for longer than the window: stable again.
        t.observe(at(100), &[reading("r", 3, 1, 2, 0)]);
        let e = t.observe(at(400), &[reading("r", 3, 1, 2, 0)]);
        assert_eq!(types(&e), ["relay_stable"]);
    }

    #[test]
    fn the_alert_rules_fire_once_per_episode() {
        let mut t = TargetState::new("tgt");
        t.observe(
            at(0),
            &[reading("slow", 2, 1, 1, 0), reading("gone", 0, 4, 0, 9)],
        );
        let e = t.observe(
            at(3_601),
            &[reading("slow", 2, 1, 1, 0), reading("gone", 0, 4, 0, 9)],
        );
        assert_eq!(types(&e), ["alert_relay_syncing_long"]);
        let e = t.observe(
            at(86_401),
            &[reading("slow", 2, 1, 1, 0), reading("gone", 0, 4, 0, 10)],
        );
        assert_eq!(
            types(&e),
            ["alert_relay_dead_long"],
            "syncing alert not repeated"
        );
        assert_eq!(e[0].severity, Severity::Error);
        // Dead relays keep retrying (0 <-> 1): the dead clock is the health's, not the pair's.
        let e = t.observe(
            at(86_500),
            &[reading("slow", 3, 1, 1, 0), reading("gone", 1, 4, 0, 10)],
        );
        assert_eq!(types(&e), ["relay_state_changed", "relay_state_changed"]);
        // Syncing again later is a new episode.
        t.observe(
            at(90_000),
            &[reading("slow", 2, 1, 2, 0), reading("gone", 0, 4, 0, 10)],
        );
        let e = t.observe(
            at(93_700),
            &[reading("slow", 2, 1, 2, 0), reading("gone", 0, 4, 0, 10)],
        );
        assert_eq!(types(&e), ["alert_relay_syncing_long"]);
    }

    #[test]
    fn more_than_five_degraded_relays_is_an_alert() {
        let mut t = TargetState::new("tgt");
        let relays = |health: i64, n: usize| -> Vec<RelayReading> {
            (0..n)
                .map(|i| reading(&format!("r{i}"), 0, health, 0, 0))
                .collect()
        };
        t.observe(at(0), &relays(2, 6));
        let e = t.observe(at(5), &relays(3, 5));
        assert!(!types(&e).contains(&"alert_relays_degraded"));
        let mut six = relays(3, 6);
        six[5].health = Some(Health::Degraded);
        let e = t.observe(at(10), &six);
        assert!(
            types(&e).contains(&"alert_relays_degraded"),
            "{:?}",
            types(&e)
        );
        let e = t.observe(at(15), &relays(1, 6));
        assert!(types(&e).contains(&"alert_resolved"), "{:?}", types(&e));
    }

    #[test]
    fn a_down_target_is_state_reported_once_and_its_recovery_too() {
        let mut t = TargetState::new("tgt");
        t.observe(at(0), &[reading("r", 3, 1, 1, 0)]);
        let e = t.scrape_failed(at(5), "connection refused");
        assert_eq!(types(&e), ["scrape_failed"]);
        assert_eq!(e[0].severity, Severity::Error);
        assert!(!t.up);
        assert!(t.scrape_failed(at(10), "connection refused").is_empty());
        assert_eq!(
            t.relays["r"].display(),
            Display::Unknown,
            "a down target's relays are not shown LIVE"
        );
        assert_eq!(t.relays["r"].last_known(), Display::Live, "last state kept");
        assert_eq!(
            t.relays["r"].since(),
            at(5).as_nanos(),
            "unknown since it went down"
        );
        let e = t.observe(at(20), &[reading("r", 3, 1, 1, 0)]);
        assert_eq!(types(&e), ["scrape_recovered"]);
        assert!(e[0].summary.contains("15 s"), "{}", e[0].summary);
        assert!(t.up);
        assert_eq!(t.relays["r"].display(), Display::Live);
        assert_eq!(t.relays["r"].unknown_since, None);
    }

    #[test]
    fn forgotten_relays_and_counter_resets() {
        let mut t = TargetState::new("tgt");
        t.observe(at(0), &[reading("a", 3, 1, 5, 2), reading("b", 3, 1, 1, 0)]);
        let e = t.observe(at(5), &[reading("a", 0, 3, 0, 1)]);
        assert_eq!(types(&e), ["relay_state_changed", "relay_gone"]);
        assert_eq!(e[1].subject.as_deref(), Some("b"));
        assert_eq!(e[1].severity, Severity::Warning);
        assert!(e[1].summary.contains("GONE"), "{}", e[1].summary);
        assert!(e[1].summary.contains("last LIVE"), "{}", e[1].summary);
        assert!(!t.relays["b"].present);
        assert_eq!(t.relays["b"].display(), Display::Gone);
        assert_eq!(t.relays["b"].last_known(), Display::Live);
        assert_eq!(t.relays["b"].since(), at(5).as_nanos());
        assert!(t.relays["b"].listed_at(at(5 + 3600).as_nanos()));
        assert!(!t.relays["b"].listed_at(at(5 + 3601).as_nanos()));
        // Still gone at the next scrape: no new event, the time it went stays.
        let e = t.observe(at(10), &[reading("a", 0, 3, 0, 1)]);
        assert!(e.is_empty(), "{:?}", types(&e));
        assert_eq!(t.relays["b"].since(), at(5).as_nanos());
        // Back: one event, tracked and shown by its gauges again.
        let e = t.observe(
            at(20),
            &[reading("a", 0, 3, 0, 1), reading("b", 3, 1, 1, 0)],
        );
        assert_eq!(types(&e), ["relay_returned"]);
        assert_eq!(t.relays["b"].display(), Display::Live);
        assert_eq!(t.relays["b"].gone_since, None);
        assert_eq!(
            t.relays["a"].streak, 1,
            "a counter that went back restarted from zero"
        );
    }

    #[test]
    fn state_survives_a_restart_through_its_json() {
        let mut t = TargetState::new("tgt");
        t.observe(at(0), &[reading("a", 0, 3, 0, 4)]);
        let saved = serde_json::to_string(&t).unwrap();
        let mut back: TargetState = serde_json::from_str(&saved).unwrap();
        assert_eq!(back, t);
        assert!(
            back.observe(at(5), &[reading("a", 0, 3, 0, 4)]).is_empty(),
            "nothing repeated"
        );
    }
}
