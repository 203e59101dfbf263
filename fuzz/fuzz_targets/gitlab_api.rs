//! Bodies of the GitLab API answers the `gitlab:` source reads (pipelines, jobs, bridges,
//! pipeline and job details, schedules, error bodies), decoded as its client decodes them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = syncscope::fuzzing::gitlab_payloads(data);
});
