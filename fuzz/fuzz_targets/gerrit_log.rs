//! Gerrit's `replication_log` / `pull_replication_log` fed a whole chunk: records of several
//! lines (stack traces, CONTEXT lines), with pauses at lines the input picks. The first byte
//! chooses pull or push and the pauses. What comes out is clean; the checkpoint state
//! survives its JSON text; reading the same chunk again gives the same events.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syncscope::model::{Event, LogZone};
use syncscope::sources::gerrit::log_lines::{LogLines, LogState};
use syncscope::sources::lines::{LineFormat, Parsed};
use syncscope_fuzz::{check_event, check_text, lines};

fn read(flags: u8, data: &[u8]) -> (Vec<Event>, usize, LogLines) {
    let zone = LogZone::parse("Europe/Berlin").expect("a known zone");
    let mut f = LogLines::new(flags & 1 == 1, zone);
    let mut events = Vec::new();
    let mut rejects = 0;
    let mut emit = |p: Parsed<'_>| match p {
        Parsed::Event(e, _) => events.push(e),
        Parsed::Reject { reason, .. } => {
            check_text(&reason);
            rejects += 1;
        }
    };
    for (number, offset, line) in lines(data) {
        f.feed(line, number, offset, &mut emit);
        // A pause after this line, by the line number's bit in the flags.
        if flags & (2 << (number % 7)) != 0 {
            f.idle(&mut emit);
        }
    }
    f.flush(&mut emit);
    (events, rejects, f)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let (events, rejects, f) = read(flags, data);
    for e in &events {
        check_event(e);
    }
    let state = f.state();
    let text = serde_json::to_string(&state).expect("a state serializes");
    let back: LogState = serde_json::from_str(&text).expect("a state reads back");
    assert_eq!(state, back, "the checkpoint state changed through {text}");
    let (again, rejects_again, _) = read(flags, data);
    assert_eq!(events, again, "the same chunk read twice differs");
    assert_eq!(rejects, rejects_again);
});
