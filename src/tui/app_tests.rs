//! `update` unit tests: actions in, state out, no terminal.

use super::*;
use crate::model::Event;
use std::time::Duration;

const T0: i64 = 1_800_000_000_000_000_000;

fn state() -> AppState {
    AppState::new(
        "/tmp/s.db".into(),
        ThemeName::Dark,
        (100, 30),
        Timestamp::from_nanos(T0),
    )
}

fn ev(i: i64, corr: Option<&str>) -> StoredEvent {
    let mut e = Event::new(
        Timestamp::from_nanos(T0 - i * 1_000_000_000),
        "spacedrive",
        "batch_ingestion",
        "data_flow",
        if i % 5 == 0 {
            Severity::Error
        } else {
            Severity::Info
        },
        format!("row {i}"),
    );
    e.correlation_id = corr.map(str::to_string);
    StoredEvent {
        id: 1000 - i,
        key: i,
        event: e,
    }
}

/// Feeds the window the worker would answer for the current request.
fn load(s: &mut AppState, rows: Vec<StoredEvent>, anchor_index: usize) {
    let request = s.request();
    update(
        s,
        Action::Loaded(Box::new(Loaded {
            request,
            status: StatusData {
                max_id: 5000,
                systems: vec!["gerrit".into(), "ngit".into(), "spacedrive".into()],
                ..StatusData::default()
            },
            data: Some(ViewData::Events(EventsWindow {
                rows,
                anchor_index,
                more_before: false,
                more_after: true,
                session: None,
                session_ids: Vec::new(),
            })),
            error: None,
            took: Duration::from_millis(1),
        })),
    );
}

fn timeline() -> AppState {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Timeline));
    load(&mut s, (0..40).map(|i| ev(i, Some("sess-1"))).collect(), 0);
    s
}

#[test]
fn panes_switch_by_number_and_tab_and_drill_downs_pop_with_esc() {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Relays));
    assert_eq!(s.pane, Pane::Relays);
    update(&mut s, Action::NextPane);
    assert_eq!(s.pane, Pane::Timeline);
    update(&mut s, Action::PrevPane);
    update(&mut s, Action::PrevPane);
    assert_eq!(s.pane, Pane::Replication);
    s.stack.push(Drill::Refs { remote: "r".into() });
    assert_eq!(update(&mut s, Action::Back), None);
    assert!(s.stack.is_empty());
    assert!(!s.quit);
    // q quits only from a top-level pane: in a drill-down it says how to go back.
    s.stack.push(Drill::Refs { remote: "r".into() });
    assert_eq!(update(&mut s, Action::Quit), None);
    assert_eq!(s.stack.len(), 1);
    assert!(s.flash.as_ref().unwrap().0.contains("Esc goes back"));
    assert_eq!(update(&mut s, Action::Back), None);
    assert_eq!(update(&mut s, Action::Quit), Some(Command::Quit));
    assert!(s.quit);
}

#[test]
fn filters_are_scoped_per_pane_and_come_back() {
    let mut s = timeline();
    s.filters.text = "Connection refused".into();
    update(&mut s, Action::GoPane(Pane::Replication));
    assert!(s.filters.is_empty(), "the Timeline's filter leaked");
    update(&mut s, Action::ErrorsOnly);
    update(&mut s, Action::GoPane(Pane::Timeline));
    assert_eq!(s.filters.text, "Connection refused");
    assert_eq!(s.filters.min_severity, None);
    update(&mut s, Action::NextPane);
    update(&mut s, Action::GoPane(Pane::Replication));
    assert_eq!(s.filters.min_severity, Some(Severity::Error));
}

#[test]
fn enter_on_a_relay_is_a_drill_down_with_its_own_events_and_esc_returns() {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Relays));
    s.stack.push(Drill::RelayEvents {
        target: "http://t/metrics".into(),
        relay: "wss://r".into(),
    });
    let f = s.request().view.filter().cloned().unwrap();
    assert_eq!(
        (f.devices, f.subjects),
        (
            vec!["http://t/metrics".to_string()],
            vec!["wss://r".to_string()]
        )
    );
    assert!(s.filters.is_empty(), "no hidden filter");
    update(&mut s, Action::Quit);
    assert!(!s.quit);
    update(&mut s, Action::Back);
    assert_eq!((s.pane, s.stack.len()), (Pane::Relays, 0));
}

#[test]
fn a_refs_history_lists_only_its_remotes_pushes() {
    let mut s = state();
    s.stack.push(Drill::RefHistory {
        remote: "ssh://m-eu/p.git".into(),
        project: "p".into(),
        ref_name: "refs/heads/main".into(),
    });
    let f = s.request().view.filter().cloned().unwrap();
    assert_eq!(f.peers, ["ssh://m-eu/p.git"]);
}

#[test]
fn ctrl_c_quits_from_anywhere() {
    let mut s = timeline();
    update(&mut s, Action::StartFilter);
    assert_eq!(update(&mut s, Action::ForceQuit), Some(Command::Quit));
    let mut h = state();
    update(&mut h, Action::ShowHelp);
    assert_eq!(update(&mut h, Action::ForceQuit), Some(Command::Quit));
}

#[test]
fn moving_down_anchors_the_list_and_top_resumes_live() {
    let mut s = timeline();
    assert_eq!(s.request().view.anchor(), Some(Anchor::Start));
    update(&mut s, Action::Down);
    update(&mut s, Action::Down);
    assert_eq!(s.selected_event().unwrap().event.summary, "row 2");
    assert_eq!(s.timeline.screen_row, 2);
    let Some(Anchor::At(c)) = s.request().view.anchor() else {
        panic!("not anchored: {:?}", s.request())
    };
    assert_eq!(c.key, 2);
    update(&mut s, Action::PageDown);
    assert_eq!(s.selected_event().unwrap().event.summary, "row 27");
    assert_eq!(s.timeline.screen_row, s.list_rows() - 1);
    update(&mut s, Action::Up);
    assert_eq!(s.selected_event().unwrap().event.summary, "row 26");
    update(&mut s, Action::Top);
    assert_eq!(s.request().view.anchor(), Some(Anchor::Start));
    update(&mut s, Action::Bottom);
    assert_eq!(s.request().view.anchor(), Some(Anchor::End));
}

#[test]
fn severity_keys_and_source_cycling_filter_the_timeline() {
    let mut s = timeline();
    update(&mut s, Action::Down);
    update(&mut s, Action::ErrorsOnly);
    let f = s.request().view.filter().cloned().unwrap();
    assert_eq!(f.min_severity, Some(Severity::Error));
    // A new filter starts from the top again.
    assert_eq!(s.request().view.anchor(), Some(Anchor::Start));
    update(&mut s, Action::WarningsUp);
    assert_eq!(
        s.request().view.filter().unwrap().min_severity,
        Some(Severity::Warning)
    );
    update(&mut s, Action::AllSeverities);
    assert_eq!(s.request().view.filter().unwrap().min_severity, None);
    update(&mut s, Action::CycleSource);
    assert_eq!(s.request().view.filter().unwrap().sources, ["gerrit"]);
    update(&mut s, Action::CycleSource);
    update(&mut s, Action::CycleSource);
    assert_eq!(s.filters.source.as_deref(), Some("spacedrive"));
    update(&mut s, Action::CycleSource);
    assert_eq!(s.filters.source, None);
    assert!(s.filters.describe().is_empty());
}

#[test]
fn the_filter_applies_as_you_type_and_esc_clears_it() {
    let mut s = timeline();
    update(&mut s, Action::StartFilter);
    assert_eq!(s.mode, Mode::Input);
    for c in "row 1".chars() {
        update(&mut s, Action::Input(InputKey::Char(c)));
    }
    assert_eq!(
        s.request().view.filter().unwrap().grep.as_deref(),
        Some("row 1")
    );
    update(&mut s, Action::Input(InputKey::Backspace));
    assert_eq!(s.filters.text, "row ");
    // Keys in the field are text: `q` does not quit.
    update(&mut s, Action::Input(InputKey::Char('q')));
    assert!(!s.quit);
    update(&mut s, Action::Submit);
    assert_eq!(s.mode, Mode::Normal);
    assert_eq!(s.filters.text, "row q");
    // Esc in normal mode clears the filters.
    update(&mut s, Action::Back);
    assert!(s.filters.is_empty());
    // Esc while typing cancels the filter too.
    update(&mut s, Action::StartFilter);
    update(&mut s, Action::Input(InputKey::Char('x')));
    update(&mut s, Action::Back);
    assert_eq!((s.mode, s.filters.text.as_str()), (Mode::Normal, ""));
}

#[test]
fn n_and_shift_n_jump_between_matches() {
    let mut s = timeline();
    s.filters.text = "row 1".into();
    load(&mut s, (0..40).map(|i| ev(i, None)).collect(), 0);
    update(&mut s, Action::NextMatch);
    assert_eq!(s.selected_event().unwrap().event.summary, "row 1");
    update(&mut s, Action::NextMatch);
    assert_eq!(s.selected_event().unwrap().event.summary, "row 10");
    update(&mut s, Action::PrevMatch);
    assert_eq!(s.selected_event().unwrap().event.summary, "row 1");
    update(&mut s, Action::PrevMatch);
    assert!(s.flash.as_ref().unwrap().0.contains("no more matches"));
}

#[test]
fn enter_shows_the_event_and_c_opens_its_session() {
    let mut s = timeline();
    update(&mut s, Action::Down);
    update(&mut s, Action::Enter);
    let Some(Drill::Event(e)) = s.top() else {
        panic!("no detail view")
    };
    assert_eq!(e.event.summary, "row 1");
    assert_eq!(s.request().view, ViewRequest::Nothing);
    update(&mut s, Action::Correlation);
    assert_eq!(
        s.top(),
        Some(&Drill::Session {
            corr: "sess-1".into()
        })
    );
    let ViewRequest::Events {
        filter,
        order,
        session,
        ..
    } = s.request().view
    else {
        panic!()
    };
    assert_eq!(filter.correlation_ids, ["sess-1"]);
    assert_eq!(
        (order, session.as_deref()),
        (Order::OldestFirst, Some("sess-1"))
    );
    assert_eq!(s.session.as_deref(), Some("sess-1"));
    update(&mut s, Action::Back);
    update(&mut s, Action::Back);
    assert_eq!((s.pane, s.stack.len()), (Pane::Timeline, 0));
    // The Session pane keeps the last one.
    update(&mut s, Action::GoPane(Pane::Session));
    assert!(matches!(s.request().view, ViewRequest::Events { .. }));
}

#[test]
fn c_without_a_correlation_id_says_so() {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Timeline));
    load(&mut s, vec![ev(1, None)], 0);
    update(&mut s, Action::Correlation);
    assert!(s.stack.is_empty());
    assert!(s.flash.as_ref().unwrap().0.contains("no correlation id"));
}

#[test]
fn pause_freezes_the_state_panes_too() {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Replication));
    let answer = |s: &AppState, failed: u64| {
        Action::Loaded(Box::new(Loaded {
            request: s.request(),
            status: StatusData::default(),
            data: Some(ViewData::Remotes(vec![crate::store::RemoteSummary {
                remote: "m".into(),
                failed,
                ..Default::default()
            }])),
            error: None,
            took: Duration::ZERO,
        }))
    };
    let a = answer(&s, 0);
    update(&mut s, a);
    update(&mut s, Action::TogglePause);
    let a = answer(&s, 3);
    update(&mut s, a);
    assert_eq!(s.remotes().0[0].failed, 0, "a paused pane changed");
    update(&mut s, Action::TogglePause);
    let a = answer(&s, 3);
    update(&mut s, a);
    assert_eq!(s.remotes().0[0].failed, 3);
}

#[test]
fn pause_freezes_at_a_store_id_and_resumes() {
    let mut s = timeline();
    update(&mut s, Action::TogglePause);
    assert_eq!(s.request().paused_upto, Some(5000));
    update(&mut s, Action::TogglePause);
    assert_eq!(s.request().paused_upto, None);
}

#[test]
fn y_copies_the_selected_row_sanitized() {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Timeline));
    let mut evil = ev(0, Some("c1"));
    evil.event.summary = "x\x1b]52;c;AAAA\x07y".into();
    load(&mut s, vec![evil], 0);
    let Some(Command::Copy(t)) = update(&mut s, Action::Copy) else {
        panic!()
    };
    assert!(t.contains("[c1]") && !t.contains('\x1b'), "{t:?}");
}

#[test]
fn commands_set_filters_jump_and_report_errors() {
    let mut s = state();
    let run = |s: &mut AppState, line: &str| {
        update(s, Action::StartCommand);
        for c in line.chars() {
            update(s, Action::Input(InputKey::Char(c)));
        }
        update(s, Action::Submit)
    };
    run(&mut s, "since 2h");
    assert_eq!(s.pane, Pane::Timeline);
    assert_eq!(
        s.filters.since,
        Some(Timestamp::from_nanos(T0 - 7200 * 1_000_000_000))
    );
    run(&mut s, "source gerrit");
    assert_eq!(s.filters.source.as_deref(), Some("gerrit"));
    run(&mut s, "goto 2027-01-15T08:00:00Z");
    assert!(matches!(s.timeline.anchor, Anchor::At(_)));
    run(&mut s, "goto 14:02");
    let Anchor::At(c) = s.timeline.anchor else {
        panic!()
    };
    assert!(c.ts <= T0 && c.ts > T0 - 86_400 * 1_000_000_000);
    run(&mut s, "frobnicate");
    assert!(s.flash.as_ref().unwrap().0.contains("unknown command"));
    run(&mut s, "since yesterdayish");
    assert!(s.flash.as_ref().unwrap().0.starts_with(":since"));
    run(&mut s, "theme light");
    assert_eq!(s.theme, ThemeName::Light);
    run(&mut s, "corr abc-123");
    assert_eq!(s.session.as_deref(), Some("abc-123"));
    assert_eq!(run(&mut s, "q"), Some(Command::Quit));
}

/// A night with two patterns (one NEW) over two pipelines.
pub(crate) fn ci_data() -> crate::tui::worker::CiData {
    use crate::model::ci::NightCell;
    use crate::store::ci::{CiHistory, CiJobRow, CiNight, CiPatternRow, CiPipelineRow, CiStrip};
    let pattern = |id: &str, name: &str, identity: &str, jobs: u32, new: bool| CiPatternRow {
        id: id.into(),
        kind: "rule".into(),
        name: name.into(),
        identity: identity.into(),
        issue_url: (id == "aaaa00000001").then(|| "https://issues.example/42".into()),
        jobs_last_night: jobs,
        projects_last_night: if jobs > 0 {
            vec!["web/app".into()]
        } else {
            vec![]
        },
        nights_14: if new { 1 } else { 9 },
        nights_30: if new { 1 } else { 20 },
        first_seen: if new {
            "2026-11-25".into()
        } else {
            "2026-10-20".into()
        },
        last_seen: "2026-11-25".into(),
        is_new: new,
        projects: vec!["web/app".into()],
        examples: vec![],
    };
    let job = |id: i64, name: &str, pattern: &str| CiJobRow {
        id,
        name: name.into(),
        stage: Some("test".into()),
        allow_failure: false,
        failure_reason: Some("script_failure".into()),
        web_url: Some(format!("https://gitlab.example/web/app/-/jobs/{id}")),
        log_state: "fetched".into(),
        pattern_id: Some(pattern.into()),
        pattern_name: Some("test failure".into()),
        pattern_identity: Some("test_login".into()),
        pattern_new: pattern == "bbbb00000002",
        issue_url: None,
        section: Some("step_script".into()),
        excerpt: Some("FAILED tests/test_login.py::test_login - \x1b[31mAssertionError".into()),
        tail: Some("ERROR: Job failed: exit code 1".into()),
        chain: None,
    };
    crate::tui::worker::CiData {
        night: Some(CiNight {
            night: "2026-11-25".into(),
            pipelines: vec![CiPipelineRow {
                project: "web/app".into(),
                project_url: None,
                id: 901,
                status: "failed".into(),
                cell: NightCell::Failed,
                ref_name: Some("main".into()),
                web_url: None,
                created_at: 0,
                updated_at: 0,
                downstream_failed: false,
                jobs: vec![
                    job(7001, "pytest", "aaaa00000001"),
                    job(7002, "build", "bbbb00000002"),
                ],
            }],
            failed: 1,
            warnings: 0,
            passed: 3,
            other: 0,
            projects: 4,
        }),
        patterns: vec![
            pattern("cccc00000003", "timeout", "job timed out", 0, false),
            pattern(
                "aaaa00000001",
                "Python: test failed",
                "test_login",
                1,
                false,
            ),
            pattern("bbbb00000002", "Rust: compile error", "E0425", 1, true),
        ],
        history: CiHistory {
            nights: vec!["2026-11-24".into(), "2026-11-25".into()],
            projects: vec![CiStrip {
                project: "web/app".into(),
                cells: vec![NightCell::Passed, NightCell::Failed],
            }],
        },
    }
}

#[test]
fn ci_patterns_new_first_then_jobs_then_a_job_and_its_url() {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Ci));
    assert_eq!(s.request().view, ViewRequest::Ci);
    let request = s.request();
    update(
        &mut s,
        Action::Loaded(Box::new(Loaded {
            request,
            status: StatusData::default(),
            data: Some(ViewData::Ci(Box::new(ci_data()))),
            error: None,
            took: Duration::ZERO,
        })),
    );
    let (list, i) = s.ci_patterns();
    let ids: Vec<&str> = list.iter().map(|p| p.id.as_str()).collect();
    // Last night's patterns first, the NEW one on top; the one not seen last night last.
    assert_eq!(ids, ["bbbb00000002", "aaaa00000001", "cccc00000003"]);
    assert_eq!(i, 0);
    update(&mut s, Action::Down);
    assert_eq!(s.ci_selected.as_deref(), Some("aaaa00000001"));
    update(&mut s, Action::Enter);
    assert_eq!(
        s.top(),
        Some(&Drill::CiJobs {
            pattern: "aaaa00000001".into()
        })
    );
    // The drill-downs read the pane's data: nothing new to load.
    assert_eq!(s.request().view, ViewRequest::Ci);
    assert_eq!(s.ci_jobs("aaaa00000001").len(), 1);
    assert_eq!(
        update(&mut s, Action::Copy),
        Some(Command::Copy(
            "https://gitlab.example/web/app/-/jobs/7001".into()
        ))
    );
    update(&mut s, Action::Enter);
    assert_eq!(
        s.top(),
        Some(&Drill::CiJob {
            project: "web/app".into(),
            job: 7001
        })
    );
    assert_eq!(
        update(&mut s, Action::Copy),
        Some(Command::Copy(
            "https://gitlab.example/web/app/-/jobs/7001".into()
        ))
    );
    update(&mut s, Action::Back);
    update(&mut s, Action::Back);
    assert_eq!((s.pane, s.stack.len()), (Pane::Ci, 0));
    // The text filter narrows the patterns.
    s.filters.text = "e0425".into();
    assert_eq!(s.ci_patterns().0.len(), 1);
}

#[test]
fn a_ci_jobs_log_opens_at_its_end_where_the_job_failed() {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Ci));
    let request = s.request();
    update(
        &mut s,
        Action::Loaded(Box::new(Loaded {
            request,
            status: StatusData::default(),
            data: Some(ViewData::Ci(Box::new(ci_data()))),
            error: None,
            took: Duration::ZERO,
        })),
    );
    s.stack.push(Drill::CiJob {
        project: "web/app".into(),
        job: 7001,
    });
    // 0 lines up from the end: the failure is on screen.
    assert_eq!(s.detail_scroll, 0);
    let n = s.ci_log_lines("web/app", 7001) as u16;
    assert_eq!(n, 4);
    update(&mut s, Action::Up);
    assert_eq!(s.detail_scroll, 1);
    update(&mut s, Action::Top);
    assert_eq!(s.detail_scroll, n);
    update(&mut s, Action::Up);
    assert_eq!(s.detail_scroll, n, "scrolled past the top");
    update(&mut s, Action::Bottom);
    assert_eq!(s.detail_scroll, 0);
}

#[test]
fn look_alike_rows_say_what_differs() {
    use crate::tui::panes::timeline::{looks_alike, what_differs};
    let a = ev(1, Some("s-aaaaaaaa-1"));
    let mut b = a.clone();
    b.id += 1;
    b.event.correlation_id = Some("s-bbbbbbbb-2".into());
    assert!(looks_alike(&a, &b));
    assert_eq!(what_differs(&b, &a), "session s-bbbbbb");
    let mut c = a.clone();
    c.id += 2;
    assert_eq!(what_differs(&c, &a), format!("#{}", c.id));
    let mut d = a.clone();
    d.id += 3;
    d.event.summary = "other".into();
    assert!(!looks_alike(&a, &d));
}

#[test]
fn help_scrolls_with_the_move_keys_and_esc_closes_it() {
    let mut s = state();
    update(&mut s, Action::ShowHelp);
    assert_eq!(s.mode, Mode::Help);
    update(&mut s, Action::Down);
    update(&mut s, Action::Down);
    assert_eq!((s.mode, s.help_scroll), (Mode::Help, 2));
    update(&mut s, Action::Up);
    assert_eq!(s.help_scroll, 1);
    update(&mut s, Action::Back);
    assert_eq!((s.mode, s.help_scroll), (Mode::Normal, 0));
}

#[test]
fn flash_messages_expire_with_ticks() {
    let mut s = state();
    update(&mut s, Action::AllSeverities);
    assert!(s.flash.is_some());
    for i in 0..FLASH_TICKS {
        update(&mut s, Action::Tick(T0 + i as i64));
    }
    assert!(s.flash.is_none());
}

#[test]
fn resize_keeps_the_selection_on_screen() {
    let mut s = timeline();
    update(&mut s, Action::PageDown);
    update(&mut s, Action::Resize(80, 10));
    assert!(s.timeline.screen_row < s.list_rows());
}

#[test]
fn the_remotes_filter_matches_every_column_shown() {
    let mut s = state();
    update(&mut s, Action::GoPane(Pane::Replication));
    let request = s.request();
    let remote = |name: &str, failed: u64, err: Option<&str>| crate::store::RemoteSummary {
        remote: name.into(),
        failed,
        last_error: err.map(str::to_string),
        ..Default::default()
    };
    update(
        &mut s,
        Action::Loaded(Box::new(Loaded {
            request,
            status: StatusData::default(),
            data: Some(ViewData::Remotes(vec![
                remote("ssh://m-eu/p.git", 2, Some("x: Connection refused")),
                remote("ssh://m-us/p.git", 0, None),
            ])),
            error: None,
            took: Duration::ZERO,
        })),
    );
    s.filters.text = "connection refused".into();
    let shown: Vec<&str> = s.remotes().0.iter().map(|r| r.remote.as_str()).collect();
    assert_eq!(shown, ["ssh://m-eu/p.git"]);
    s.filters.text = "failed".into();
    assert_eq!(s.remotes().0.len(), 1, "the STATUS column is matched too");
}

#[test]
fn an_ingest_that_stopped_is_said_until_quit_and_the_ui_goes_on() {
    let mut s = state();
    s.ingesting = true;
    assert!(update(
        &mut s,
        Action::IngestStopped("store x: the disk is full (ENOSPC)".into())
    )
    .is_none());
    assert_eq!(
        s.ingest_stopped.as_deref(),
        Some("store x: the disk is full (ENOSPC)")
    );
    assert!(!s.ingesting, "nothing ingests now: the store may go stale");
    // Keys still work, and the fault stays.
    update(&mut s, Action::NextPane);
    assert_ne!(s.pane, Pane::Overview);
    update(&mut s, Action::Tick(T0 + 60_000_000_000));
    assert!(s.ingest_stopped.is_some());
}
