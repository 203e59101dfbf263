//! The relays of a fleet, as one `prometheus:` source sees them: one [`TargetState`] per
//! Prometheus `instance` (each like one `ngit-metrics:` URL), carried from poll to poll and
//! saved as the source's checkpoint (where `syncscope relays` and the TUI read it).
//!
//! A target that vanishes from Prometheus's answer (neither its `up` nor any ngit series is
//! there any more: its scrape job was removed) goes the way a vanished relay does: at the poll
//! that no longer shows it every relay of it goes GONE (a `relay_gone` event each, exactly as
//! when an exposition stops listing a relay), and the target stays listed for
//! [`GONE_LISTED_NS`] after that; then it is dropped from the state. If it comes back within
//! that hour its relays return (`relay_returned`); later it is a new target.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::relay::{RelayReading, TargetState, GONE_LISTED_NS};
use super::{Event, Timestamp};

/// What one poll says of one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetReading {
    /// `up == 1` (or no `up` series but ngit series): the relays it exports.
    Up(Vec<RelayReading>),
    /// `up != 1`: Prometheus could not scrape it; why.
    Down(String),
}

/// Every instance of one `prometheus:` source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetState {
    /// Per instance, its state (the target name is the instance).
    pub targets: BTreeMap<String, TargetState>,
    /// Instances absent from the last answers, and since when (ns).
    #[serde(default)]
    pub vanished: BTreeMap<String, i64>,
}

impl FleetState {
    /// One successful poll: `readings` has every instance the answer shows. Returns the events
    /// of every target, in instance order.
    pub fn observe(
        &mut self,
        at: Timestamp,
        readings: &BTreeMap<String, TargetReading>,
    ) -> Vec<Event> {
        let mut out = Vec::new();
        for (instance, reading) in readings {
            self.vanished.remove(instance);
            let t = self
                .targets
                .entry(instance.clone())
                .or_insert_with(|| TargetState::new(instance));
            out.extend(match reading {
                TargetReading::Up(r) => t.observe(at, r),
                TargetReading::Down(reason) => t.scrape_failed(at, reason),
            });
        }
        let now = at.as_nanos();
        let mut dropped = Vec::new();
        for (instance, t) in self.targets.iter_mut() {
            if readings.contains_key(instance) {
                continue;
            }
            match self.vanished.get(instance) {
                None => {
                    self.vanished.insert(instance.clone(), now);
                    // Its series are gone: every relay it listed goes GONE, as in one scrape.
                    if t.up {
                        out.extend(t.observe(at, &[]));
                    } else {
                        for st in t.relays.values_mut() {
                            if st.present {
                                st.present = false;
                                st.gone_since = Some(now);
                            }
                        }
                    }
                }
                Some(&since) if now - since > GONE_LISTED_NS => dropped.push(instance.clone()),
                Some(_) => {}
            }
        }
        for instance in dropped {
            self.targets.remove(&instance);
            self.vanished.remove(&instance);
        }
        out
    }

    /// The targets to show: all of them (a vanished one is listed for an hour).
    pub fn into_targets(self) -> Vec<TargetState> {
        self.targets.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::relay::{Connection, Display, Health};

    const S: i64 = 1_000_000_000;

    fn live(relay: &str) -> RelayReading {
        RelayReading {
            relay: relay.into(),
            connection: Some(Connection::from(3)),
            health: Some(Health::from(1)),
            ok: 1,
            fail: 0,
        }
    }

    fn poll(items: &[(&str, TargetReading)]) -> BTreeMap<String, TargetReading> {
        items
            .iter()
            .map(|(i, r)| (i.to_string(), r.clone()))
            .collect()
    }

    #[test]
    fn each_instance_is_a_target_like_one_scrape() {
        let mut f = FleetState::default();
        let a = [live("wss://a")];
        let evs = f.observe(
            Timestamp::from_nanos(S),
            &poll(&[
                ("h1:7334", TargetReading::Up(a.to_vec())),
                ("h2:7334", TargetReading::Up(a.to_vec())),
            ]),
        );
        // The same as two ngit-metrics targets scraped once each.
        let mut one = TargetState::new("h1:7334");
        let mut expected = one.observe(Timestamp::from_nanos(S), &a);
        let mut two = TargetState::new("h2:7334");
        expected.extend(two.observe(Timestamp::from_nanos(S), &a));
        assert_eq!(evs, expected);
        assert_eq!(f.targets["h1:7334"], one);
        let evs = f.observe(
            Timestamp::from_nanos(2 * S),
            &poll(&[
                ("h1:7334", TargetReading::Up(a.to_vec())),
                ("h2:7334", TargetReading::Down("up == 0".into())),
            ]),
        );
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0].event_type, "scrape_failed");
        assert_eq!(evs[0].device_id.as_deref(), Some("h2:7334"));
        assert!(!f.targets["h2:7334"].up);
        assert_eq!(
            f.targets["h2:7334"].relays["wss://a"].display(),
            Display::Unknown
        );
    }

    #[test]
    fn a_vanished_target_goes_gone_then_is_dropped_after_an_hour() {
        let mut f = FleetState::default();
        let a = [live("wss://a")];
        f.observe(
            Timestamp::from_nanos(S),
            &poll(&[("h1", TargetReading::Up(a.to_vec()))]),
        );
        let evs = f.observe(Timestamp::from_nanos(2 * S), &poll(&[]));
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(evs[0].event_type, "relay_gone");
        assert_eq!(f.targets["h1"].relays["wss://a"].display(), Display::Gone);
        assert!(f
            .observe(Timestamp::from_nanos(3 * S), &poll(&[]))
            .is_empty());
        assert!(f.targets.contains_key("h1"), "listed for an hour");
        // Back within the hour: its relay returns.
        let evs = f.observe(
            Timestamp::from_nanos(4 * S),
            &poll(&[("h1", TargetReading::Up(a.to_vec()))]),
        );
        assert_eq!(evs[0].event_type, "relay_returned", "{evs:?}");
        f.observe(Timestamp::from_nanos(5 * S), &poll(&[]));
        f.observe(Timestamp::from_nanos(5 * S + GONE_LISTED_NS), &poll(&[]));
        assert!(f.targets.contains_key("h1"));
        f.observe(Timestamp::from_nanos(6 * S + GONE_LISTED_NS), &poll(&[]));
        assert!(f.targets.is_empty() && f.vanished.is_empty(), "{f:?}");
    }

    #[test]
    fn a_target_that_vanishes_while_down_keeps_quiet() {
        let mut f = FleetState::default();
        let a = [live("wss://a")];
        f.observe(
            Timestamp::from_nanos(S),
            &poll(&[("h1", TargetReading::Up(a.to_vec()))]),
        );
        f.observe(
            Timestamp::from_nanos(2 * S),
            &poll(&[("h1", TargetReading::Down("x".into()))]),
        );
        assert!(f
            .observe(Timestamp::from_nanos(3 * S), &poll(&[]))
            .is_empty());
        assert_eq!(f.targets["h1"].relays["wss://a"].display(), Display::Gone);
    }
}
