//! Answers of Gerrit's replication-status REST endpoint (`gerrit-rest:`), two polls in a row
//! through the saved checkpoint. Every ref of a first answer is one change; an answer polled
//! again unchanged is no change at all (nothing stored twice). The first byte says whether the
//! second answer is the first again; the rest is split at 0xff.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syncscope::fuzzing::gerrit_rest_answers;
use syncscope_fuzz::{check_event, split2};

/// The (remote, ref) pairs an answer lists, as serde reads its maps (the last of a repeated key).
fn pairs(body: &str) -> Option<usize> {
    let json = body.trim_start().strip_prefix(")]}'").unwrap_or(body);
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let remotes = v.get("remotes")?.as_object()?;
    Some(
        remotes
            .values()
            .map(|r| {
                r.get("status")
                    .and_then(|s| s.as_object())
                    .map_or(0, |s| s.len())
            })
            .sum(),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let (a, b) = split2(data);
    let first = String::from_utf8_lossy(a);
    let second = if flags & 1 == 1 {
        first.clone()
    } else {
        String::from_utf8_lossy(b)
    };
    let polls = gerrit_rest_answers(&first, &second);
    for (e, _) in polls.iter().flatten().flatten() {
        check_event(e);
    }
    if let Ok(changes) = &polls[0] {
        if let Some(n) = pairs(&first) {
            assert_eq!(
                changes.len(),
                n,
                "a first answer of {n} refs gave {} changes",
                changes.len()
            );
        }
        if flags & 1 == 1 {
            let again = polls[1].as_ref().expect("the same answer parses again");
            assert!(again.is_empty(), "the same answer again gave {again:?}");
        }
    }
});
