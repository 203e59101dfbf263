//! The zone of server-local timestamps (Gerrit's replication_log, CI job logs).

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, TimeZone};

use super::Timestamp;

/// The zone a log's local timestamps are in.
#[derive(Debug, Clone, PartialEq)]
pub enum LogZone {
    Utc,
    /// This machine's zone.
    Local,
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl LogZone {
    /// `UTC`, `local`, `+01:00`, or an IANA name such as `Europe/Berlin`.
    pub fn parse(text: &str) -> Result<LogZone, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" {
            return Ok(LogZone::Utc);
        }
        if t.eq_ignore_ascii_case("local") {
            return Ok(LogZone::Local);
        }
        if t.starts_with(['+', '-']) {
            return DateTime::parse_from_str(
                &format!("2000-01-01 00:00 {t}"),
                "%Y-%m-%d %H:%M %:z",
            )
            .map(|d| LogZone::Fixed(*d.offset()))
            .map_err(|_| format!("'{t}' is not an offset like +01:00"));
        }
        t.parse::<chrono_tz::Tz>().map(LogZone::Named).map_err(|_| {
            format!("'{t}' is not a time zone (UTC, local, +01:00 or a name like Europe/Berlin)")
        })
    }

    pub(crate) fn to_utc(&self, local: NaiveDateTime) -> Option<Timestamp> {
        fn pick<Tz: TimeZone>(r: LocalResult<DateTime<Tz>>) -> Option<Timestamp> {
            match r {
                LocalResult::Single(d) => Timestamp::from_datetime(&d),
                // The repeated hour when clocks go back: the first of the two.
                LocalResult::Ambiguous(a, _) => Timestamp::from_datetime(&a),
                LocalResult::None => None,
            }
        }
        let r = match self {
            LogZone::Utc => Timestamp::from_datetime(&local.and_utc()),
            LogZone::Local => pick(chrono::Local.from_local_datetime(&local)),
            LogZone::Fixed(o) => pick(o.from_local_datetime(&local)),
            LogZone::Named(tz) => pick(tz.from_local_datetime(&local)),
        };
        // A time skipped when clocks go forward: read it one hour later.
        r.or_else(|| self.to_utc(local + chrono::Duration::hours(1)))
    }
}
