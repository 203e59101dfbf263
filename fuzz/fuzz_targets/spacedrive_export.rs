//! An `sd sync events` export (`spacedrive-export:`), both shapes: a JSON array, or one
//! object per line. The first byte says whether the source names a device. What is read is
//! clean; an array and the same elements one per line give the same events.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use syncscope::fuzzing::spacedrive_export;
use syncscope_fuzz::{check_event, check_text};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, data)) = data.split_first() else {
        return;
    };
    let device = (flags & 1 == 1).then_some("dev-a");
    let Ok((events, rejects)) = spacedrive_export(data, device) else {
        return;
    };
    for e in &events {
        check_event(e);
    }
    for r in &rejects {
        check_text(&r.reason);
    }
    // The other shape of the same export.
    if let Ok(elements) = serde_json::from_slice::<Vec<Box<RawValue>>>(data) {
        let objects: Vec<&str> = elements.iter().map(|r| r.get()).collect();
        if objects.iter().all(|o| o.starts_with('{')) {
            let lines = objects.join("\n");
            let (as_lines, _) = spacedrive_export(lines.as_bytes(), device)
                .expect("the same elements one per line read");
            assert_eq!(events, as_lines, "an array and its lines differ");
        }
    }
});
