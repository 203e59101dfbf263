//! The Overview's reads one by one: what each of the calls behind `load_view` of the Overview
//! costs, on a store nobody writes and (`load`) while one writer commits batches of 5,000 as
//! fast as it goes. The readers bench times the whole pane under eight readers; this one says
//! which read that time is.
//!
//! `cargo bench --bench overview -- [N] [load]` (default 1,000,000 Spacedrive-shaped events,
//! the newest now); 40 rounds, 50 ms apart; median and max per read.

mod support;

use std::time::{Duration, Instant};

use syncscope::model::{Event, Severity, Timestamp};
use syncscope::store::{self, Batch, EventFilter, Writer};
use syncscope::tui::worker::SESSION_ERRORS_NAMED;

const ROUNDS: usize = 40;

fn commit_all(w: &mut Writer, source: &str, evs: &[Event]) {
    let keys: Vec<i64> = evs.iter().map(Event::dedup_key).collect();
    for (i, (c, k)) in evs.chunks(5000).zip(keys.chunks(5000)).enumerate() {
        let cp = format!("{i}");
        w.commit(&Batch {
            source,
            events: c,
            keys: k,
            updates: &[],
            rejects: &[],
            checkpoint: Some(&cp),
        })
        .expect("commit");
    }
}

fn main() {
    let n = support::count_arg(1_000_000);
    let load = std::env::args().any(|a| a == "load");
    let gap = Duration::from_micros(200);
    let now_ns = store::unix_now() * 1_000_000_000;
    let start = Timestamp::from_nanos(now_ns - n as i64 * gap.as_nanos() as i64);
    let evs: Vec<Event> = support::Generator::new(7, start, gap)
        .take(n as usize)
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("overview.db");
    let mut w = Writer::open(&db).expect("writer");
    commit_all(&mut w, "bench", &evs);
    drop(evs);
    let writer = std::thread::spawn(move || {
        if load {
            let more: Vec<Event> = support::Generator::new(
                8,
                Timestamp::from_nanos(now_ns),
                Duration::from_micros(20),
            )
            .take(2_000_000)
            .collect();
            commit_all(&mut w, "bench-load", &more);
        }
    });
    std::thread::sleep(Duration::from_millis(300));

    let r = store::open_reader(&db).expect("reader");
    let now = Timestamp::now();
    let hour_ago = Timestamp::from_nanos(now.as_nanos() - 3_600_000_000_000);
    let ten_minutes_ago = Timestamp::from_nanos(now.as_nanos() - 600_000_000_000);
    let mut times: Vec<(&str, Vec<Duration>)> = Vec::new();
    let mut time = |name: &'static str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        let d = t.elapsed();
        match times.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(d),
            None => times.push((name, vec![d])),
        }
    };
    for _ in 0..ROUNDS {
        std::thread::sleep(Duration::from_millis(50));
        time("relay targets", &mut || {
            drop(r.relay_targets().expect("relays"))
        });
        time("remote summaries", &mut || {
            drop(r.remote_summaries().expect("remotes"))
        });
        time("Spacedrive errors, last hour (500)", &mut || {
            drop(
                r.session_errors(hour_ago, None, 500, SESSION_ERRORS_NAMED)
                    .expect("errors"),
            )
        });
        time("CI patterns", &mut || {
            drop(r.ci_patterns(None, None).expect("ci"))
        });
        let mut open_from = ten_minutes_ago;
        time("time of the 5,000th newest", &mut || {
            if let Some(t) = r.ts_of_nth_newest(5000).expect("nth") {
                open_from = open_from.max(t);
            }
        });
        time("open sessions", &mut || {
            drop(r.open_sessions(open_from, 50).expect("sessions"))
        });
        time("counts per source, last hour", &mut || {
            drop(r.counts_by_source(hour_ago).expect("counts"))
        });
        time("rate per minute, 60 min", &mut || {
            drop(r.rate_per_minute(now, 60).expect("rate"))
        });
        time("newest 14 errors", &mut || {
            let f = EventFilter {
                min_severity: Some(Severity::Error),
                ..EventFilter::default()
            };
            drop(r.page_before(&f, None, 14).expect("newest"));
        });
        time("CI night", &mut || {
            drop(r.ci_night(None, None).expect("night"))
        });
    }
    writer.join().expect("writer thread");
    println!(
        "{n} events, {}",
        if load {
            "one writer committing"
        } else {
            "nobody writing"
        }
    );
    println!("{:38} {:>9} {:>9}", "read", "p50", "max");
    let mut total = 0.0;
    for (name, mut v) in times {
        v.sort();
        let p50 = support::ms(v[v.len() / 2]);
        total += p50;
        println!(
            "{name:38} {p50:>7.3}ms {:>7.3}ms",
            support::ms(v[v.len() - 1])
        );
    }
    println!("{:38} {total:>7.3}ms", "sum of the medians");
}
