//! The JSON event line (`jsonl:` sources, `model::wire`): what parses is clean on a terminal,
//! and survives syncscope's own JSON export: read back, the same identity, and the export of
//! what was read back is the same text (a fixed point after one round).
#![no_main]
use libfuzzer_sys::fuzz_target;
use syncscope::export::{EventWriter, Format};
use syncscope::model::{parse_wire_event, Event, StoredEvent};
use syncscope_fuzz::check_event;

fn export(e: &Event) -> Vec<u8> {
    let mut out = Vec::new();
    let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let mut w = EventWriter::begin_at(Format::Jsonl, &mut out, 1, at).expect("a Vec takes it");
    let stored = StoredEvent {
        id: 1,
        key: e.dedup_key(),
        event: e.clone(),
    };
    w.write(&stored).expect("a Vec takes it");
    w.finish().expect("a Vec takes it");
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(e) = parse_wire_event(data, "jsonl") else {
        return;
    };
    check_event(&e);
    let text = export(&e);
    let back = parse_wire_event(text.trim_ascii_end(), "jsonl").unwrap_or_else(|err| {
        panic!(
            "the export of an event does not read back: {err}\n{}",
            String::from_utf8_lossy(&text)
        )
    });
    assert_eq!(
        e.dedup_key(),
        back.dedup_key(),
        "identity changed: {e:?}\n{back:?}"
    );
    assert_eq!(export(&back), text, "not a fixed point: {e:?}\n{back:?}");
});
