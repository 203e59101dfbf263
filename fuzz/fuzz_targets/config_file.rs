//! The config file (`syncscope.toml`) and the GitLab rules file: read as the program reads
//! them; a rules file that reads compiles or says why.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use syncscope::config::Config;
use syncscope::model::ci::{parse_rules, Rules};
use syncscope_fuzz::check_text;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::parse(text, Path::new("fuzz.toml")) {
        check_text(&format!("{e:#}"));
    }
    if let Ok(specs) = parse_rules(text) {
        let _ = Rules::compile(&specs);
    }
});
