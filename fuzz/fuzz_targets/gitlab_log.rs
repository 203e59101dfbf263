//! A GitLab job log through the scanner and the fingerprint (`gitlab:` source): the log cut
//! into pieces where the input says (as the API's chunks come) scans as the whole does, and
//! its analysis and masks run. The first byte picks the piece size.
#![no_main]
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
// Links the counting allocator (64 MiB per input).
use syncscope::model::ci::log::LogScanner;
use syncscope::model::ci::{analyze, fingerprint, Rules};
use syncscope_fuzz as _;

/// Compiled once: the default rules are what the source uses without a rules file.
static RULES: LazyLock<Rules> =
    LazyLock::new(|| Rules::defaults().expect("the default rules compile"));

fuzz_target!(|data: &[u8]| {
    let Some((&size, log)) = data.split_first() else {
        return;
    };
    let mut whole = LogScanner::new();
    whole.feed(log);
    let whole = whole.finish();
    let mut pieces = LogScanner::new();
    for piece in log.chunks(usize::from(size) + 1) {
        pieces.feed(piece);
    }
    let pieces = pieces.finish();
    assert_eq!(
        whole,
        pieces,
        "pieces of {} bytes scan differently",
        usize::from(size) + 1
    );
    let rules = &*RULES;
    let a = analyze(Some(&whole), Some("script_failure"), rules);
    let _ = fingerprint::mask(&a.excerpt);
    let _ = fingerprint::decisive(&whole);
    let _ = analyze(None, None, rules);
});
