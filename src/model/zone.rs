//! The zone of server-local timestamps (Gerrit's replication_log, CI job logs).

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, TimeZone, Utc};

use super::Timestamp;

/// The longest run of local hours a zone skips that is read forward (Samoa skipped 24).
const MAX_GAP_HOURS: u32 = 48;

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

    /// The instant of a local time: None when it is out of the store's range (1677-2262) or
    /// does not exist. A time skipped when clocks go forward is read an hour later (as often
    /// as needed: a zone may skip a whole day, as Samoa did in 2011).
    pub(crate) fn to_utc(&self, local: NaiveDateTime) -> Option<Timestamp> {
        let mut at = local;
        for _ in 0..=MAX_GAP_HOURS {
            match self.instant(at) {
                Some(d) => return Timestamp::from_datetime(&d),
                None => at = at.checked_add_signed(chrono::Duration::hours(1))?,
            }
        }
        None
    }

    /// The instant of a local time, None in a gap (the first of two in a repeated hour).
    fn instant(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        fn pick<Tz: TimeZone>(r: LocalResult<DateTime<Tz>>) -> Option<DateTime<Utc>> {
            match r {
                LocalResult::Single(d) => Some(d.with_timezone(&Utc)),
                // The repeated hour when clocks go back: the first of the two.
                LocalResult::Ambiguous(a, _) => Some(a.with_timezone(&Utc)),
                LocalResult::None => None,
            }
        }
        match self {
            LogZone::Utc => Some(local.and_utc()),
            LogZone::Local => pick(chrono::Local.from_local_datetime(&local)),
            LogZone::Fixed(o) => pick(o.from_local_datetime(&local)),
            LogZone::Named(tz) => pick(tz.from_local_datetime(&local)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// Found by fuzzing (fuzz target gerrit_log): a time past 2262 is out of the store's
    /// range, which was taken for a skipped hour and retried an hour later, recursively,
    /// until the stack overflowed (SIGSEGV).
    #[test]
    fn a_time_out_of_range_is_none_in_every_zone() {
        for zone in ["UTC", "local", "+05:30", "Europe/Berlin"] {
            let z = LogZone::parse(zone).unwrap();
            for t in [
                "9999-12-31 23:59:59",
                "2262-04-12 12:00:00",
                "1000-01-01 00:00:00",
            ] {
                assert_eq!(z.to_utc(at(t)), None, "{t} in {zone}");
            }
            let max = NaiveDateTime::MAX;
            assert_eq!(z.to_utc(max), None, "the last NaiveDateTime in {zone}");
        }
    }

    #[test]
    fn a_skipped_time_is_read_an_hour_later() {
        let berlin = LogZone::parse("Europe/Berlin").unwrap();
        let skipped = berlin.to_utc(at("2025-03-30 02:30:00")).unwrap();
        assert_eq!(
            crate::model::format_rfc3339(skipped),
            "2025-03-30T01:30:00+00:00"
        );
        // Samoa went from 29 to 31 December 2011.
        let apia = LogZone::parse("Pacific/Apia").unwrap();
        let day = apia.to_utc(at("2011-12-30 12:00:00")).unwrap();
        assert_eq!(
            crate::model::format_rfc3339(day),
            "2011-12-30T10:00:00+00:00"
        );
    }
}
