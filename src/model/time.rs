//! Timestamps: UTC nanoseconds, RFC 3339 in and out, and the `--since`/`--until` language.

use chrono::{DateTime, Duration, Local, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// A UTC instant with nanosecond precision (as Spacedrive writes), stored as an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_nanos(n: i64) -> Self {
        Timestamp(n)
    }
    pub const fn as_nanos(self) -> i64 {
        self.0
    }
    pub fn from_datetime<Tz: TimeZone>(dt: &DateTime<Tz>) -> Option<Self> {
        dt.timestamp_nanos_opt().map(Timestamp)
    }
    /// Now, by [`now_utc`] (the one clock).
    pub fn now() -> Self {
        Timestamp(now_utc().timestamp_nanos_opt().unwrap_or(i64::MAX))
    }
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.0)
    }
}

/// The environment variable that sets the clock: an RFC 3339 instant that "now" starts from
/// (it then runs on from there), so tests and reproducible reports see fixed dates as the same
/// distance in the past whatever the calendar says.
pub const NOW_ENV: &str = "SYNCSCOPE_NOW";

/// `SYNCSCOPE_NOW` as read once: the instant it names and when the process read it.
fn fixed_clock() -> Option<(DateTime<Utc>, std::time::Instant)> {
    static CLOCK: std::sync::OnceLock<Option<(DateTime<Utc>, std::time::Instant)>> =
        std::sync::OnceLock::new();
    *CLOCK.get_or_init(|| {
        let text = std::env::var(NOW_ENV).ok()?;
        let at = DateTime::parse_from_rfc3339(text.trim()).ok()?;
        Some((at.with_timezone(&Utc), std::time::Instant::now()))
    })
}

/// The one wall clock of the program: the system's, or [`NOW_ENV`]'s instant plus the time
/// since it was read. Every "now" that decides what a user sees (`--since 2d`, "today", ages,
/// history windows, event times of scrapes) is taken here.
pub fn now_utc() -> DateTime<Utc> {
    match fixed_clock() {
        Some((at, read)) => at + Duration::from_std(read.elapsed()).unwrap_or(Duration::zero()),
        None => Utc::now(),
    }
}

/// A `SYNCSCOPE_NOW` that is set but not RFC 3339 is an error (checked at start), never a
/// silent fall back to the system clock.
pub fn check_clock_env() -> Result<(), String> {
    match std::env::var(NOW_ENV) {
        Ok(text) => DateTime::parse_from_rfc3339(text.trim())
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "{NOW_ENV}='{}' is not an RFC 3339 instant (2026-12-02T03:00:00Z): {e}",
                    clip(&text)
                )
            }),
        Err(std::env::VarError::NotPresent) => Ok(()),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{NOW_ENV} is not UTF-8")),
    }
}

/// Parses any RFC 3339 timestamp (any offset, 0-9 fractional digits, `T`, `t` or a space).
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    let dt = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|e| format!("timestamp '{}' is not RFC 3339: {e}", clip(text)))?;
    Timestamp::from_datetime(&dt)
        .ok_or_else(|| format!("timestamp '{}' is out of range", clip(text)))
}

/// Spacedrive's `DateTime<Utc>::to_rfc3339()` form: `2025-12-03T10:15:00.123456789+00:00`.
pub fn format_rfc3339(ts: Timestamp) -> String {
    ts.to_datetime()
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// The JSON form Spacedrive's export writes (serde's `DateTime<Utc>`): `Z`, and 0, 3, 6 or 9
/// fractional digits, e.g. `2025-12-03T10:15:00.123Z`.
pub fn format_rfc3339_z(ts: Timestamp) -> String {
    ts.to_datetime()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn clip(text: &str) -> &str {
    match text.char_indices().nth(60) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Parses the time language of `--since` / `--until`, relative to `now`:
/// `now`, `today`, `yesterday`, `2 hours ago`, `1 hour ago`, `30m`, `2h`, `7d ago`, `1 week ago`,
/// an RFC 3339 timestamp, `2025-12-03`, `2025-12-03 10:15[:00]` (dates without an offset are local time).
pub fn parse_time_spec(text: &str, now: DateTime<Utc>) -> Result<Timestamp, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let local_midnight = |days_back: i64| -> Result<Timestamp, String> {
        let today = now.with_timezone(&Local).date_naive();
        let day = today - Duration::days(days_back);
        local_naive(day.and_hms_opt(0, 0, 0).unwrap_or_default(), t)
    };
    match lower.as_str() {
        "now" => return ts_of(now, t),
        "today" => return local_midnight(0),
        "yesterday" => return local_midnight(1),
        _ => {}
    }
    if let Some(d) = parse_relative(&lower) {
        let when = now
            .checked_sub_signed(d)
            .ok_or_else(|| format!("'{t}' is too far back"))?;
        return ts_of(when, t);
    }
    if let Ok(ts) = parse_rfc3339(t) {
        return Ok(ts);
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return local_naive(n, t);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return local_naive(d.and_hms_opt(0, 0, 0).unwrap_or_default(), t);
    }
    Err(format!(
        "cannot read the time '{t}': use e.g. \"2 hours ago\", \"30m\", \"yesterday\", \"2025-12-03 10:00\" or RFC 3339"
    ))
}

fn ts_of(dt: DateTime<Utc>, text: &str) -> Result<Timestamp, String> {
    Timestamp::from_datetime(&dt).ok_or_else(|| format!("'{text}' is out of range"))
}

fn local_naive(n: NaiveDateTime, text: &str) -> Result<Timestamp, String> {
    let dt = Local
        .from_local_datetime(&n)
        .earliest()
        .ok_or_else(|| format!("'{text}' does not exist in the local time zone"))?;
    ts_of(dt.with_timezone(&Utc), text)
}

/// `2 hours ago`, `2 hours`, `2h`, `2h ago`, `an hour ago`, `90 s`, `1 week ago`.
fn parse_relative(lower: &str) -> Option<Duration> {
    let s = lower.strip_suffix(" ago").unwrap_or(lower).trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (count, unit) = if digits_end == 0 {
        let rest = s.strip_prefix("an ").or_else(|| s.strip_prefix("a "))?;
        (1i64, rest.trim())
    } else {
        (s[..digits_end].parse::<i64>().ok()?, s[digits_end..].trim())
    };
    let secs_per = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return None,
    };
    Duration::try_seconds(count.checked_mul(secs_per)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-12-03T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap()
    }

    #[test]
    fn rfc3339_any_offset_and_precision() {
        let a = parse_rfc3339("2025-12-03T10:15:00Z").unwrap();
        let b = parse_rfc3339("2025-12-03T10:15:00+00:00").unwrap();
        let c = parse_rfc3339("2025-12-03T12:15:00+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        let n = parse_rfc3339("2025-12-03T10:15:00.123456789+00:00").unwrap();
        assert_eq!(n.as_nanos() - a.as_nanos(), 123_456_789);
        assert_eq!(format_rfc3339(n), "2025-12-03T10:15:00.123456789+00:00");
        assert_eq!(format_rfc3339(a), "2025-12-03T10:15:00+00:00");
        let ms = parse_rfc3339("2025-12-03T10:15:32.5+00:00").unwrap();
        assert_eq!(format_rfc3339(ms), "2025-12-03T10:15:32.500+00:00");
        assert!(parse_rfc3339("yesterday-ish").is_err());
        assert!(parse_rfc3339("2025-13-03T10:15:00Z").is_err());
    }

    #[test]
    fn relative_times() {
        let n = now();
        let h2 = parse_time_spec("2 hours ago", n).unwrap();
        assert_eq!(format_rfc3339(h2), "2025-12-03T10:00:00+00:00");
        assert_eq!(
            parse_time_spec("1 hour ago", n).unwrap(),
            parse_time_spec("1h", n).unwrap()
        );
        assert_eq!(
            parse_time_spec("an hour ago", n).unwrap(),
            parse_time_spec("60m", n).unwrap()
        );
        let d7 = parse_time_spec("7 days ago", n).unwrap();
        assert_eq!(format_rfc3339(d7), "2025-11-26T12:00:00+00:00");
        assert_eq!(parse_time_spec("1 week ago", n).unwrap(), d7);
        assert_eq!(
            parse_time_spec("now", n).unwrap(),
            Timestamp::from_datetime(&n).unwrap()
        );
        assert_eq!(
            parse_time_spec("2025-12-03T10:15:00Z", n).unwrap(),
            parse_rfc3339("2025-12-03T10:15:00Z").unwrap()
        );
        assert!(parse_time_spec("2 fortnights ago", n).is_err());
        assert!(parse_time_spec("", n).is_err());
    }

    #[test]
    fn calendar_words_are_local_midnights() {
        let n = now();
        let today = parse_time_spec("today", n).unwrap();
        let yesterday = parse_time_spec("yesterday", n).unwrap();
        let diff_h = (today.as_nanos() - yesterday.as_nanos()) / 3_600_000_000_000;
        assert!((23..=25).contains(&diff_h), "{diff_h}");
        assert!(today.as_nanos() <= Timestamp::from_datetime(&n).unwrap().as_nanos());
        assert!(parse_time_spec("2025-12-03", n).is_ok());
        assert!(parse_time_spec("2025-12-03 10:15", n).is_ok());
    }
}
