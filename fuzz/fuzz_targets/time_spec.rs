//! The time language of `--since`/`--until`, and RFC 3339: an RFC 3339 time that reads
//! formats (both forms) and reads back to the same instant.
#![no_main]
use libfuzzer_sys::fuzz_target;
// Links the counting allocator (64 MiB per input).
use syncscope::model::{format_rfc3339, format_rfc3339_z, parse_rfc3339, parse_time_spec};
use syncscope_fuzz as _;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = chrono::DateTime::from_timestamp(1_764_633_600, 123_456_789).unwrap_or_default();
    let _ = parse_time_spec(text, now);
    if let Ok(ts) = parse_rfc3339(text) {
        assert_eq!(parse_rfc3339(&format_rfc3339(ts)), Ok(ts));
        assert_eq!(parse_rfc3339(&format_rfc3339_z(ts)), Ok(ts));
        assert_eq!(parse_time_spec(text, now), Ok(ts));
    }
});
