//! The one clock (`SYNCSCOPE_NOW`): relative times are measured from it, so a test of fixed
//! fixture dates means the same on any day; a malformed value is refused, never ignored.

mod common;

use common::{sample_sources, Scratch};

/// The Spacedrive samples (dated 2025-12-03) ingested.
fn samples(s: &Scratch) -> u64 {
    let out = s.ingest_once(&sample_sources(s));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.count(&[])
}

#[test]
fn relative_times_count_from_syncscope_now() {
    // The day after the samples: all of them are within 2 days, none within the last hour.
    let s = Scratch::new().with_now("2025-12-04T00:00:00Z");
    let all = samples(&s);
    assert!(all > 50, "{all}");
    assert_eq!(s.count(&["--since", "2 days ago"]), all);
    assert_eq!(s.count(&["--since", "2d"]), all);
    assert_eq!(s.count(&["--since", "yesterday"]), all);
    assert_eq!(s.count(&["--since", "1 hour ago"]), 0);
    assert_eq!(s.count(&["--until", "2d"]), 0);
    // A year later, the same store: none within 2 days, all within 1000.
    let mut c = s.cmd();
    let out = c
        .env("SYNCSCOPE_NOW", "2026-12-04T00:00:00+01:00")
        .args(["events", "--count", "--limit", "0", "--since", "2 days ago"])
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[test]
fn a_malformed_syncscope_now_is_refused() {
    let s = Scratch::new();
    let out = s
        .cmd()
        .env("SYNCSCOPE_NOW", "yesterday at noon")
        .args(["events", "--count"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SYNCSCOPE_NOW")
            && err.contains("yesterday at noon")
            && err.contains("RFC 3339"),
        "{err}"
    );
    assert!(
        !s.db().exists(),
        "nothing was done with a clock it could not read"
    );
}
