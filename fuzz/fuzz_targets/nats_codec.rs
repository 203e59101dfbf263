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
    let again = decode(&encode(&m)).expect("an encoded message decodes");
    assert_eq!(m, again);
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
