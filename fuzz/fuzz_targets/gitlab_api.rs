//! Bodies of the GitLab API answers the `gitlab:` source reads (pipelines, jobs, bridges,
//! pipeline and job details, schedules, error bodies), decoded as its client decodes them.
#![no_main]
use libfuzzer_sys::fuzz_target;
// Links the counting allocator (64 MiB per input).
use syncscope_fuzz as _;

fuzz_target!(|data: &[u8]| {
    let _ = syncscope::fuzzing::gitlab_payloads(data);
});
