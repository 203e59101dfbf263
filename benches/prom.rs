//! One `prometheus:` poll of a fleet: the HTTP query on loopback, the API's JSON parsed, the
//! samples grouped by instance and joined on `relay`, every target's state updated.
//!
//! `cargo bench --bench prom -- [N]` (default 1,000 relays: 10 instances x 100): serves two
//! canned `/api/v1/query` answers (alternating, so the state changes every poll) from a
//! loopback server in this process and polls 100 times. Prints the CPU time per poll of the
//! whole process (the canned server's share included, so an upper bound) and, separately, of
//! parse + join + state alone. Target: under 50 ms of CPU for 1,000 relays.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use syncscope::demo::server::{Loopback, Response};
use syncscope::model::fleet::FleetState;
use syncscope::model::Timestamp;
use syncscope::sources::prometheus::{api, readings_of, Poller};
use tokio_util::sync::CancellationToken;

use support::{count_arg, median_max, ms, Rng};

const INSTANCES: u64 = 10;

fn answer(relays: u64, rng: &mut Rng) -> String {
    let per = (relays / INSTANCES).max(1);
    let mut items = Vec::new();
    for i in 0..INSTANCES {
        let instance = format!("relay-host-{i}.example.org:7334");
        let item = |name: &str, extra: &[(&str, String)], value: String| {
            let mut m = serde_json::Map::new();
            m.insert("__name__".into(), name.into());
            m.insert("instance".into(), instance.clone().into());
            m.insert("job".into(), "ngit".into());
            for (k, v) in extra {
                m.insert((*k).into(), v.clone().into());
            }
            serde_json::json!({"metric": m, "value": [1.7e9, value]})
        };
        items.push(item("up", &[], "1".into()));
        for r in 0..per {
            let relay = format!("wss://relay-{r}.example.net/path?x={r}");
            let rl = [("relay", relay.clone())];
            items.push(item(
                "ngit_sync_relay_connected",
                &rl,
                rng.below(5).to_string(),
            ));
            items.push(item(
                "ngit_sync_relay_status",
                &rl,
                (1 + rng.below(6)).to_string(),
            ));
            for result in ["success", "failure"] {
                items.push(item(
                    "ngit_sync_connection_attempts_total",
                    &[("relay", relay.clone()), ("result", result.into())],
                    rng.below(40).to_string(),
                ));
            }
        }
    }
    serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": items}})
        .to_string()
}

/// CPU time (user + system) of this whole process.
fn process_cpu() -> Duration {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn main() {
    let relays = count_arg(1000);
    let mut rng = Rng::new(15);
    let bodies = Arc::new([answer(relays, &mut rng), answer(relays, &mut rng)]);
    let server = Loopback::bind("prometheus").expect("bind");
    let base = format!("http://127.0.0.1:{}", server.port);
    let cancel = CancellationToken::new();
    let (c, b) = (cancel.clone(), bodies.clone());
    let n = Arc::new(AtomicUsize::new(0));
    let served = n.clone();
    let t = std::thread::spawn(move || {
        server.serve(
            &c,
            |_, _| {
                let i = served.fetch_add(1, Ordering::Relaxed);
                Response::new(200, "application/json", b[i % 2].as_bytes())
            },
            || {},
        )
    });

    let polls = 100;
    let mut poller =
        Poller::new(&base, Some("job=\"ngit\""), FleetState::default()).expect("poller");
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    let mut events = 0;
    for i in 0..polls {
        let (c0, w0) = (process_cpu(), Instant::now());
        let p = poller
            .poll(
                Timestamp::from_nanos(i as i64 * 5_000_000_000),
                Duration::from_secs(10),
            )
            .unwrap_or_else(|f| panic!("poll: {}", f.reason));
        cpu.push(process_cpu() - c0);
        wall.push(w0.elapsed());
        events += p.events.len();
        assert_eq!(p.targets as u64, INSTANCES);
    }
    let shown: usize = poller.fleet.targets.values().map(|t| t.relays.len()).sum();
    assert_eq!(shown as u64, (relays / INSTANCES).max(1) * INSTANCES);

    // parse + join + state, no HTTP: the thread's own CPU.
    let mut fleet = FleetState::default();
    let mut core = Vec::new();
    for i in 0..polls {
        let c0 = thread_cpu();
        let a = api::parse(bodies[i % 2].as_bytes()).expect("parse");
        let (r, _) = readings_of(&a, &fleet, true);
        fleet.observe(Timestamp::from_nanos(i as i64 * 5_000_000_000), &r);
        core.push(thread_cpu() - c0);
    }
    cancel.cancel();
    let _ = t.join();

    let (cmed, cmax) = median_max(&mut cpu);
    let (wmed, _) = median_max(&mut wall);
    let (kmed, kmax) = median_max(&mut core);
    println!(
        "prometheus poll of {shown} relays ({INSTANCES} instances, {} KiB answer): process CPU per poll median {:.2} ms, max {:.2} ms (wall median {:.2} ms) \
         (target < 50 ms for 1000) {}; {events} events over {polls} polls",
        bodies[0].len() / 1024,
        ms(cmed),
        ms(cmax),
        ms(wmed),
        if relays > 1000 || cmed < Duration::from_millis(50) { "ok" } else { "ABOVE TARGET" }
    );
    println!(
        "  parse + join + state alone: thread CPU median {:.2} ms, max {:.2} ms",
        ms(kmed),
        ms(kmax)
    );
}
