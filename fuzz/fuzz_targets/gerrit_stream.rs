//! `gerrit stream-events` lines, as the `gerrit-ssh:`/`gerrit-stream:` sources read them (with
//! the given-up watch and the numbering of one second's events): what comes out is clean, and
//! the checkpoint state survives its JSON text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syncscope::sources::gerrit::events::{StreamLines, StreamState};
use syncscope::sources::lines::{LineFormat, Parsed};
use syncscope_fuzz::{check_event, check_text, lines};

fuzz_target!(|data: &[u8]| {
    let mut f = StreamLines::default();
    let mut emit = |p: Parsed<'_>| match p {
        Parsed::Event(e, _) => check_event(&e),
        Parsed::Reject { reason, .. } => check_text(&reason),
    };
    for (number, offset, line) in lines(data) {
        f.feed(line, number, offset, &mut emit);
    }
    f.flush(&mut emit);
    let state = f.state();
    let text = serde_json::to_string(&state).expect("a state serializes");
    let back: StreamState = serde_json::from_str(&text).expect("a state reads back");
    assert_eq!(state, back, "the checkpoint state changed through {text}");
    if let Some(pipe) = f.pipe_checkpoint() {
        assert!(serde_json::from_str::<serde_json::Value>(&pipe).is_ok());
    }
});
