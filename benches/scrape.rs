//! One ngit `/metrics` scrape, from text to relay state and events.
//!
//! `cargo bench --bench scrape -- [N]` (default 500 relays): builds a v3-layout exposition with
//! N relays (connection, health, attempts of both results, policy refusals, plus the process
//! and aggregate families a real relay serves) and times parsing it, joining the relays and
//! updating the tracker, 200 times. Target: under 5 ms for 500 relays.

mod support;

use std::fmt::Write;
use std::time::{Duration, Instant};

use syncscope::model::relay::TargetState;
use syncscope::model::Timestamp;
use syncscope::sources::ngit::{self, exposition};

use support::{count_arg, median_max, ms, Rng};

fn exposition_text(relays: u64, rng: &mut Rng) -> String {
    let mut t = String::new();
    let url = |i: u64| format!("wss://relay-{i}.example.org/path?x={i}");
    let _ = writeln!(
        t,
        "# HELP ngit_build_info Build information\n# TYPE ngit_build_info gauge"
    );
    let _ = writeln!(
        t,
        "ngit_build_info{{commit=\"unknown\",version=\"3.0.10\"}} 1"
    );
    let _ = writeln!(t, "# HELP ngit_sync_connection_attempts_total Total connection attempts by relay and result\n# TYPE ngit_sync_connection_attempts_total counter");
    for i in 0..relays {
        let _ = writeln!(
            t,
            "ngit_sync_connection_attempts_total{{relay=\"{}\",result=\"failure\"}} {}",
            url(i),
            rng.below(40)
        );
        let _ = writeln!(
            t,
            "ngit_sync_connection_attempts_total{{relay=\"{}\",result=\"success\"}} {}",
            url(i),
            rng.below(5)
        );
    }
    let _ = writeln!(t, "# HELP ngit_sync_policy_refusals_total Policy refusals\n# TYPE ngit_sync_policy_refusals_total counter");
    for i in (0..relays).step_by(7) {
        let _ = writeln!(
            t,
            "ngit_sync_policy_refusals_total{{category=\"auth_required\",relay=\"{}\"}} 1",
            url(i)
        );
    }
    let _ = writeln!(t, "# HELP ngit_sync_relay_connected Relay connection status (0=disconnected, 1=connecting, 2=syncing, 3=connected, 4=connected_historic_sync_failures)\n# TYPE ngit_sync_relay_connected gauge");
    for i in 0..relays {
        let _ = writeln!(
            t,
            "ngit_sync_relay_connected{{relay=\"{}\"}} {}",
            url(i),
            rng.below(6)
        );
    }
    let _ = writeln!(t, "# HELP ngit_sync_relay_status Relay health status (1=healthy, 2=disconnected, 3=degraded, 4=dead, 5=rate_limited, 6=policy_limited)\n# TYPE ngit_sync_relay_status gauge");
    for i in 0..relays {
        let _ = writeln!(
            t,
            "ngit_sync_relay_status{{relay=\"{}\"}} {}",
            url(i),
            1 + rng.below(6)
        );
    }
    for name in [
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_resident_memory_bytes",
        "ngit_sync_relays_tracked_total",
    ] {
        let _ = writeln!(t, "# TYPE {name} gauge\n{name} {}", rng.below(1_000_000));
    }
    let _ = writeln!(t, "\n# HELP ngit_uptime_seconds Seconds since server startup\n# TYPE ngit_uptime_seconds counter\nngit_uptime_seconds 285");
    t
}

fn main() {
    let relays = count_arg(500);
    let mut rng = Rng::new(11);
    // Two scrapes to alternate between, so the tracker sees changes every time.
    let texts = [
        exposition_text(relays, &mut rng),
        exposition_text(relays, &mut rng),
    ];
    let mut state = TargetState::new("http://127.0.0.1:7334/metrics");
    let mut samples: Vec<Duration> = Vec::new();
    let mut events = 0usize;
    for i in 0..200 {
        let text = &texts[i % 2];
        let t = Instant::now();
        let e = exposition::parse(text);
        let readings = ngit::readings(&e);
        events += state
            .observe(Timestamp::from_nanos(i as i64 * 5_000_000_000), &readings)
            .len();
        samples.push(t.elapsed());
        assert_eq!(readings.len() as u64, relays);
        assert!(e.errors.is_empty());
    }
    let mut parse_only: Vec<Duration> = (0..200)
        .map(|i| {
            let t = Instant::now();
            let e = exposition::parse(&texts[i % 2]);
            let n = e.samples.len();
            let d = t.elapsed();
            assert!(n > 0);
            d
        })
        .collect();
    let (pmed, pmax) = median_max(&mut parse_only);
    println!(
        "parse only: median {:.2} ms, max {:.2} ms",
        ms(pmed),
        ms(pmax)
    );
    let (med, max) = median_max(&mut samples);
    println!(
        "scrape of {relays} relays ({} KiB of text): parse + join + track median {:.2} ms, max {:.2} ms \
         (target < 5 ms for 500) {}; {events} events over 200 scrapes",
        texts[0].len() / 1024,
        ms(med),
        ms(max),
        if relays > 500 || max < Duration::from_millis(5) { "ok" } else { "ABOVE TARGET" }
    );
}
