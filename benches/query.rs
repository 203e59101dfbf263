//! Query latency on a big store, and the memory of `events` over it.
//!
//! `cargo bench --bench query -- [N]` (default 10,000,000): builds (once, cached as
//! `target/bench-store-N-vV.db`) a store of N Spacedrive-shaped events about 40 ms apart
//! through the real writer, then times, on a fresh read-only connection, with random
//! parameters each time:
//! - the newest 100 errors;
//! - all events of one correlation id;
//! - one page (50) of the timeline at an arbitrary time, unfiltered and warnings-and-up;
//! - counts per severity over the last hour;
//!
//! each at most 20 ms (median and maximum printed), plus queries that are not targets but
//! that a user will run (a source filter, a type filter, a text search), and the peak RSS of
//! `syncscope events` streaming from the store (target: at most 64 MiB).
//!
//! The text search (issue 13): the first screen (50 rows) of a filter on a text that matches
//! nothing, on one that matches a handful of events (`RARE_TEXT`, 5 events in 10M), and on the
//! short correlation id of a random session, each at most 50 ms; what each pane of the UI really
//! loads (the app's own request for a 200×50 screen, answered by the query worker's own
//! `load_view` and status reads, on a warm connection), each at most 20 ms;
//! what the text index costs (its size, and rebuilding it as the migration does).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use syncscope::model::{Severity, Timestamp};
use syncscope::store::query::Cursor;
use syncscope::store::{self, EventFilter, Reader};
use syncscope::tui::action::Action;
use syncscope::tui::app::{update, AppState};
use syncscope::tui::theme::ThemeName;
use syncscope::tui::worker::{load_view, Anchor, ViewRequest};
use syncscope::tui::Pane;

use support::{count_arg, median_max, ms, run_peak_rss_mib, store_for, Rng, RARE_TEXT};

const SAMPLES: usize = 40;

fn main() {
    support::launcher_if_requested();
    let n = count_arg(10_000_000);
    let db = store_for(n);
    let reader = store::open_reader(&db).expect("open store");
    let (first_id, last_id) = id_range(&reader);
    let (oldest, newest) = time_range(&reader);
    println!(
        "store: {n} events over {:.1} days, {:.0} MiB on disk",
        (newest - oldest) as f64 / 86_400e9,
        std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0
    );

    let mut rng = Rng::new(7);
    let mut results = Vec::new();

    let errors = EventFilter {
        severities: vec![Severity::Error],
        ..Default::default()
    };
    results.push(time("newest 100 errors", true, || {
        let page = fresh(&db).page_before(&errors, None, 100).expect("errors");
        assert_eq!(page.len(), 100, "the store has at least 100 errors");
    }));

    results.push(time("all events of one correlation id", true, || {
        let r = fresh(&db);
        let corr = random_corr(&r, &mut rng, first_id, last_id);
        let f = EventFilter {
            correlation_ids: vec![corr],
            ..Default::default()
        };
        let mut got = 0;
        r.for_each_event(&f, None, false, |_| {
            got += 1;
            Ok(())
        })
        .expect("session");
        assert!(got >= 2, "a session has at least a start and an end");
    }));

    let all = EventFilter::default();
    results.push(time(
        "timeline page (50) at an arbitrary time",
        true,
        || {
            let at = oldest + (rng.next() % (newest - oldest) as u64) as i64;
            let page = fresh(&db)
                .page_before(
                    &all,
                    Some(Cursor {
                        ts: at,
                        key: i64::MAX,
                    }),
                    50,
                )
                .expect("page");
            assert!(page.len() == 50 || at - oldest < 3_600_000_000_000);
        },
    ));

    let warn = EventFilter {
        min_severity: Some(Severity::Warning),
        ..Default::default()
    };
    results.push(time(
        "warnings-and-up page (50) at an arbitrary time",
        true,
        || {
            let at = oldest + (rng.next() % (newest - oldest) as u64) as i64;
            fresh(&db)
                .page_before(
                    &warn,
                    Some(Cursor {
                        ts: at,
                        key: i64::MAX,
                    }),
                    50,
                )
                .expect("page");
        },
    ));

    let hour_ago = Timestamp::from_nanos(newest - 3_600_000_000_000);
    results.push(time("counts per severity, last hour", true, || {
        // Not minute-aligned: the first minute is counted from the events themselves.
        let since =
            Timestamp::from_nanos(hour_ago.as_nanos() + (rng.next() % 60_000_000_000) as i64);
        let c = fresh(&db).counts_by_severity(since).expect("counts");
        assert!(c.iter().sum::<u64>() > 0);
    }));

    // Not targets; printed so their cost is known.
    let source = EventFilter {
        sources: vec!["jsonl".into()],
        ..Default::default()
    };
    results.push(time("source-filtered page (50), newest", false, || {
        fresh(&db).page_before(&source, None, 50).expect("page");
    }));
    let failed = EventFilter {
        event_types: vec!["backfill_session_failed".into()],
        ..Default::default()
    };
    results.push(time(
        "type filter (no index): newest 50 backfill failures",
        false,
        || {
            fresh(&db).page_before(&failed, None, 50).expect("page");
        },
    ));
    let grep = EventFilter {
        grep: Some("unreachable".into()),
        ..Default::default()
    };
    results.push(time(
        "text search: newest 50 summaries with 'unreachable'",
        false,
        || {
            fresh(&db).page_before(&grep, None, 50).expect("page");
        },
    ));
    results.push(time("total events (from per-minute counts)", false, || {
        assert_eq!(fresh(&db).total_events().expect("total"), n);
    }));

    // Issue 13: search the first screen, fresh connection per run (a new `events` or UI).
    let mut search = Vec::new();
    let nothing = EventFilter {
        grep: Some("no event says zqxj this".into()),
        ..Default::default()
    };
    search.push(time(
        "filter, text matching nothing: first screen (50)",
        true,
        || {
            let page = fresh(&db).page_before(&nothing, None, 50).expect("page");
            assert!(page.is_empty());
        },
    ));
    let rare = EventFilter {
        grep: Some("relay.rare.example lost".into()),
        ..Default::default()
    };
    let rare_n = fresh(&db).count_events(&rare).expect("count");
    search.push(time(
        &format!("filter, text matching {rare_n} events: first screen"),
        true,
        || {
            let page = fresh(&db).page_before(&rare, None, 50).expect("page");
            assert_eq!(page.len() as u64, rare_n.min(50));
            assert!(page.iter().all(|e| e.event.summary.starts_with(RARE_TEXT)));
        },
    ));
    search.push(time(
        "filter, short correlation id (8 chars) as text: first screen",
        true,
        || {
            let r = fresh(&db);
            let corr = random_corr(&r, &mut rng, first_id, last_id);
            let f = EventFilter {
                grep: Some(corr[..8].to_string()),
                ..Default::default()
            };
            let page = r.page_before(&f, None, 50).expect("page");
            assert!(!page.is_empty());
        },
    ));
    search.push(time(
        "find: count of a text matching nothing (whole store)",
        true,
        || {
            assert_eq!(fresh(&db).count_events(&nothing).expect("count"), 0);
        },
    ));
    search.push(time(
        "filter, common word ('completed'): first screen",
        false,
        || {
            let f = EventFilter {
                grep: Some("completed".into()),
                ..Default::default()
            };
            assert_eq!(
                fresh(&db).page_before(&f, None, 50).expect("page").len(),
                50
            );
        },
    ));
    search.push(time("why empty: text matching nothing", false, || {
        let why = fresh(&db).why_empty(&nothing).expect("why");
        assert!(why.to_string().contains("no event contains"));
    }));

    // What each pane really loads: the request the app builds for the screen
    // (`AppState::request`, a 200×50 terminal) answered by the query worker's own `load_view`,
    // plus its status-bar reads, on one warm connection (the worker's). Not look-alikes: a
    // change to a pane's queries changes these figures.
    let warm = fresh(&db);
    let now = Timestamp::from_nanos(newest + 1_000_000_000);
    let mut panes = Vec::new();
    let state = |pane: Pane| {
        let mut st = AppState::new("bench".into(), ThemeName::Dark, (200, 50), now);
        update(&mut st, Action::GoPane(pane));
        st
    };
    let mut pane_load = |name: String, st: &AppState, rng: &mut Rng, arbitrary: bool| {
        let base = st.request();
        panes.push(time(&name, true, || {
            let mut req = base.clone();
            if arbitrary {
                // Scrolled to an arbitrary instant (a page up / jump), anchored on a row there.
                let at = oldest + (rng.next() % (newest - oldest) as u64) as i64;
                if let ViewRequest::Events { anchor, .. } = &mut req.view {
                    *anchor = Anchor::At(Cursor {
                        ts: at,
                        key: i64::MAX,
                    });
                }
            }
            load_view(&warm, &req, now).expect("load the pane");
            // The status bar, answered with every pane.
            warm.freshness().expect("freshness");
            warm.event_sources().expect("systems");
        }));
    };
    for pane in [Pane::Overview, Pane::Replication, Pane::Relays, Pane::Ci] {
        pane_load(
            format!("pane: {}", pane.title()),
            &state(pane),
            &mut rng,
            false,
        );
    }
    let timeline = state(Pane::Timeline);
    pane_load(
        "pane: Timeline, live (newest)".into(),
        &timeline,
        &mut rng,
        false,
    );
    pane_load(
        "pane: Timeline at an arbitrary time".into(),
        &timeline,
        &mut rng,
        true,
    );
    let mut warnings = state(Pane::Timeline);
    warnings.filters.min_severity = Some(Severity::Warning);
    pane_load(
        "pane: Timeline, warnings and up, arbitrary time".into(),
        &warnings,
        &mut rng,
        true,
    );
    let mut session = state(Pane::Session);
    session.session = Some(random_corr(&warm, &mut rng, first_id, last_id));
    update(&mut session, Action::GoPane(Pane::Session));
    pane_load(
        "pane: Session of a random id".into(),
        &session,
        &mut rng,
        false,
    );
    let mut rare_screen = state(Pane::Timeline);
    rare_screen.filters.text = "relay.rare.example lost".into();
    pane_load(
        "pane: Timeline filtered on a rare text".into(),
        &rare_screen,
        &mut rng,
        false,
    );

    println!("queries on {n} events ({SAMPLES} runs each, fresh connection per run):");
    for (name, target, med, max) in &results {
        let verdict = match target {
            false => "",
            true if max.as_secs_f64() <= 0.020 => "target <= 20 ms: ok",
            true => "target <= 20 ms: ABOVE TARGET",
        };
        println!(
            "  {name:<58} median {:>7.2} ms  max {:>7.2} ms  {verdict}",
            ms(*med),
            ms(*max)
        );
    }

    for (title, list, limit) in [
        ("text search on", &search, 0.050),
        (
            "the panes' own loads (app request + worker load_view, warm connection) on",
            &panes,
            0.020,
        ),
    ] {
        println!("{title} {n} events ({SAMPLES} runs each):");
        for (name, target, med, max) in list {
            let verdict = match target {
                false => String::new(),
                true if max.as_secs_f64() <= limit => format!("target <= {} ms: ok", limit * 1e3),
                true => format!("target <= {} ms: ABOVE TARGET", limit * 1e3),
            };
            println!(
                "  {name:<58} median {:>7.2} ms  max {:>7.2} ms  {verdict}",
                ms(*med),
                ms(*max)
            );
        }
    }
    index_cost(&db, n);

    let stream = n.min(1_000_000).to_string();
    for args in [
        vec!["events", "--limit", stream.as_str(), "--format", "jsonl"],
        vec![
            "events",
            "--severity",
            "error",
            "--limit",
            "100",
            "--format",
            "table",
        ],
    ] {
        let t = Instant::now();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_syncscope"));
        cmd.arg("--db")
            .arg(&db)
            .args(&args)
            .env_remove("SYNCSCOPE_CONFIG");
        let (ok, rss) = run_peak_rss_mib(&mut cmd);
        assert!(ok, "syncscope {args:?} failed");
        println!(
            "binary `{}` on {n} events: {:.2} s, peak RSS {rss:.1} MiB (target <= 64) {}",
            args.join(" "),
            t.elapsed().as_secs_f64(),
            if rss <= 64.0 { "ok" } else { "ABOVE TARGET" }
        );
    }
}

/// Runs `f` SAMPLES times; returns (name, is a target, median, max).
fn time(name: &str, target: bool, mut f: impl FnMut()) -> (String, bool, Duration, Duration) {
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    let (med, max) = median_max(&mut samples);
    (name.to_string(), target, med, max)
}

/// The text index's size, and the time to build it from scratch as the migration to schema
/// v6 does (in a transaction rolled back, so the cached store is unchanged).
fn index_cost(db: &Path, n: u64) {
    let mut conn = store::open(db).expect("open for writing");
    let size: (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT coalesce(sum(length(bits)), 0) FROM text_blocks),
                    (SELECT coalesce(sum(length(bits)), 0) FROM string_blocks),
                    (SELECT count(*) FROM strings)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("index size");
    let file = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0) as f64;
    println!(
        "text index: {:.1} MiB of event filters + {:.1} MiB of string filters ({} strings) = {:.2}% of the {:.0} MiB store",
        size.0 as f64 / 1048576.0,
        size.1 as f64 / 1048576.0,
        size.2,
        (size.0 + size.1) as f64 / file * 100.0,
        file / 1048576.0
    );
    let tx = conn.transaction().expect("transaction");
    tx.execute_batch(
        "DELETE FROM text_blocks; DELETE FROM string_blocks;
         DELETE FROM meta WHERE key IN ('text_events_upto', 'text_strings_upto');",
    )
    .expect("clear the index");
    let t = Instant::now();
    let indexed = store::textindex::update(&tx).expect("rebuild");
    let secs = t.elapsed().as_secs_f64();
    drop(tx);
    assert_eq!(indexed, n);
    println!(
        "text index built from scratch (the v5 -> v6 migration) over {n} events: {secs:.1} s, {:.2} µs per event",
        secs * 1e6 / n as f64
    );
}

/// A new read-only connection, as a new `syncscope events` or TUI start would have.
fn fresh(db: &Path) -> Reader {
    store::open_reader(db).expect("open store")
}

fn id_range(r: &Reader) -> (i64, i64) {
    r.connection()
        .query_row("SELECT min(id), max(id) FROM events", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("id range")
}

fn time_range(r: &Reader) -> (i64, i64) {
    r.connection()
        .query_row("SELECT min(ts), max(ts) FROM events", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("time range")
}

/// The correlation id of a random event that has one.
fn random_corr(r: &Reader, rng: &mut Rng, first: i64, last: i64) -> String {
    loop {
        let id = first + (rng.next() % (last - first + 1) as u64) as i64;
        let found: Option<String> = r
            .connection()
            .query_row(
                "SELECT s.text FROM events e JOIN strings s ON s.id = e.corr WHERE e.id = ?1",
                [id],
                |row| row.get(0),
            )
            .ok();
        if let Some(c) = found {
            return c;
        }
    }
}
