//! One module per pane (and drill-down view): each has a `render` that reads the state.

pub mod ci;
pub mod detail;
pub mod overview;
pub mod relays;
pub mod replication;
pub mod session;
pub mod timeline;

use chrono::{Local, TimeZone};

use crate::model::Timestamp;

/// A timestamp as the panes show it: local time, with the date when the screen is wide.
pub fn clock(ts: Timestamp, wide: bool) -> String {
    let dt = Local.timestamp_nanos(ts.as_nanos());
    if wide {
        dt.format("%m-%d %H:%M:%S%.3f").to_string()
    } else {
        dt.format("%H:%M:%S").to_string()
    }
}

/// Seconds as people read them at a glance.
pub fn age(secs: i64) -> String {
    crate::commands::age(secs)
}

/// A duration in milliseconds, short: `850ms`, `12.5s`, `3m10s`.
pub fn millis(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms}ms"),
        1000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}
