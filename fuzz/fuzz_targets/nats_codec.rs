//! A NATS message of syncscope's forwarding (`nats:` consume): decoded; what decodes encodes
//! and decodes to the same message, and its event converts to the model and back unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syncscope::sources::nats::codec::{decode, encode, Message, WireEvent};
use syncscope_fuzz::check_event;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = decode(data) else {
        return;
    };
    let bytes = encode(&m);
    let again = decode(&bytes).expect("an encoded message decodes");
    // Version 1 reads some fields leniently (a severity in any case): what decodes is the same
    // event for the store, and encoding is canonical (the second encoding is the first).
    assert_eq!(encode(&again), bytes, "encoding is canonical");
    match (&m, &again) {
        (
            Message::Event {
                src,
                key,
                event,
                refs,
            },
            Message::Event {
                src: s2,
                key: k2,
                event: e2,
                refs: r2,
            },
        ) => {
            assert_eq!((src, key, refs), (s2, k2, r2));
            assert_eq!(
                event.as_ref().clone().into_event(),
                e2.as_ref().clone().into_event(),
                "the same event for the store"
            );
        }
        (a, b) => assert_eq!(a, b),
    }
    if let Message::Event { event, .. } = m {
        if let Ok(e) = (*event).into_event() {
            check_event(&e);
            let back = WireEvent::from_event(&e)
                .into_event()
                .expect("a model event converts back");
            assert_eq!(e, back);
        }
    }
});
