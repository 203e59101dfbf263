//! The Prometheus text exposition an ngit relay serves (`ngit-metrics:`), decoded as the
//! source decodes a body (lossy UTF-8), and the relay readings made of it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syncscope::sources::ngit::{exposition, readings};
use syncscope_fuzz::check_text;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let e = exposition::parse(&text);
    for err in &e.errors {
        check_text(&err.reason);
    }
    for s in &e.samples {
        assert!(!s.name.is_empty(), "a sample without a name: {s:?}");
    }
    let _ = readings(&e);
});
