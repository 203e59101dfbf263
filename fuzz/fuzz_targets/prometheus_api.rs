//! The answer of Prometheus' HTTP query API (`prometheus:` source): parsed, and the fleet
//! readings made of it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use syncscope::model::fleet::FleetState;
use syncscope::sources::prometheus::{api, readings_of};
use syncscope_fuzz::check_text;

fuzz_target!(|data: &[u8]| {
    match api::parse(data) {
        Ok(answer) => {
            let _ = readings_of(&answer, &FleetState::default(), true);
            let _ = readings_of(&answer, &FleetState::default(), false);
        }
        Err(reason) => check_text(&reason),
    }
    let _ = api::value_of(&String::from_utf8_lossy(data));
});
