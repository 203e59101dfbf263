//! Rendered-buffer snapshots of every pane at 80×24 (colour, mono, light), 200×50 and the
//! minimum 60×15, from a
//! store filled with the real samples (through the real parsers and writer). Times of day
//! are redacted (they depend on the machine's zone); ages are computed from a fixed "now".

use std::fmt::Write as _;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;

use super::action::Action;
use super::app::{update, AppState, Drill};
use super::keymap::Keymap;
use super::theme::ThemeName;
use super::view::view;
use super::worker::{load_view, Loaded, StatusData, ViewData};
use super::Pane;
use crate::model::relay::TargetState;
use crate::model::Timestamp;
use crate::store::{self, Reader};

/// 2025-12-03T13:10:00Z: just after the Spacedrive samples' last session.
const NOW: i64 = 1_764_767_400_000_000_000;

fn fixture(p: &str) -> String {
    format!("{}/tests/fixtures/{p}", env!("CARGO_MANIFEST_DIR"))
}

/// The samples ingested into a fresh store.
fn sample_store() -> (tempfile::TempDir, Reader) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let sync_db = dir.path().join("sync.db");
    std::fs::copy(fixture("sync.db"), &sync_db).unwrap();
    let specs = [
        format!("spacedrive-db:{}", sync_db.display()),
        format!(
            "spacedrive-json:{}",
            fixture("device_b_sd_events_with_device.json")
        ),
        format!(
            "gerrit-events:{}",
            fixture("gerrit/mixed_stream_events.jsonl")
        ),
        format!("gerrit-log:{}", fixture("gerrit/replication_log.txt")),
    ]
    .iter()
    .map(|s| crate::sources::SourceSpec::parse(s).unwrap())
    .collect::<Vec<_>>();
    let opts = crate::ingest::IngestOptions {
        once: true,
        log_status: false,
        retention_days: 0,
        kinds: crate::ingest::kinds::KindSettings::default()
            .with_log_zone(crate::model::LogZone::Utc),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sources = crate::sources::plan(&specs, &opts).unwrap();
    rt.block_on(crate::ingest::run(
        db.clone(),
        sources,
        opts,
        tokio_util::sync::CancellationToken::new(),
    ))
    .unwrap();
    (dir, store::open_reader(&db).unwrap())
}

/// Two relay targets as the tracker leaves them after scraping the samples.
fn relay_targets() -> Vec<TargetState> {
    let mut out = Vec::new();
    for (url, file) in [
        ("http://relay-a:7334/metrics", "ngit/metrics-real-v3.txt"),
        ("http://relay-b:7334/metrics", "ngit/metrics-sample.txt"),
    ] {
        let text = std::fs::read_to_string(fixture(file)).unwrap();
        let readings =
            crate::sources::ngit::readings(&crate::sources::ngit::exposition::parse(&text));
        let mut t = TargetState::new(url);
        t.observe(Timestamp::from_nanos(NOW - 7_200_000_000_000), &readings);
        t.observe(Timestamp::from_nanos(NOW - 60_000_000_000), &readings);
        out.push(t);
    }
    let mut down = TargetState::new("http://relay-c:7334/metrics");
    down.scrape_failed(
        Timestamp::from_nanos(NOW - 300_000_000_000),
        "connection refused",
    );
    out.push(down);
    out
}

/// Loads what the state's screen needs (as the worker would) and applies it.
fn load(state: &mut AppState, r: &Reader) {
    let req = state.request();
    let mut data = load_view(r, &req, Timestamp::from_nanos(NOW)).unwrap();
    match &mut data {
        ViewData::Relays(d) => {
            d.targets = relay_targets();
            d.strips.clear();
        }
        ViewData::Overview(o) => o.relays = relay_targets(),
        _ => {}
    }
    let status = StatusData {
        sources: crate::tui::worker::source_lines(r, &r.freshness().unwrap()).unwrap(),
        rows: r.total_events().unwrap(),
        events_per_sec: 42.0,
        systems: r.event_sources().unwrap(),
        ..StatusData::default()
    };
    update(
        state,
        Action::Loaded(Box::new(Loaded {
            request: req,
            status,
            data: Some(data),
            error: None,
            took: std::time::Duration::ZERO,
        })),
    );
}

/// The screen as text, with style changes marked inline: `{fg=Red,B}text{}`.
fn styled(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut last = String::new();
        for x in 0..buf.area.width {
            let cell = &buf[(x, y)];
            let mut tag = Vec::new();
            if cell.fg != Color::Reset {
                tag.push(format!("fg={:?}", cell.fg));
            }
            if cell.bg != Color::Reset {
                tag.push(format!("bg={:?}", cell.bg));
            }
            for (m, name) in [
                (Modifier::BOLD, "B"),
                (Modifier::DIM, "D"),
                (Modifier::REVERSED, "R"),
                (Modifier::UNDERLINED, "U"),
            ] {
                if cell.modifier.contains(m) {
                    tag.push(name.to_string());
                }
            }
            let tag = tag.join(",");
            if tag != last {
                let _ = write!(out, "{{{tag}}}");
                last = tag;
            }
            out.push_str(cell.symbol());
        }
        out.push('\n');
    }
    out
}

fn render(state: &AppState, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view(f, state, &Keymap::default())).unwrap();
    t.backend().buffer().clone()
}

fn screens() -> Vec<(&'static str, AppState)> {
    let (_dir, r) = sample_store();
    let mut list = Vec::new();
    let base = |theme| {
        AppState::new(
            "/var/lib/syncscope/store.db".into(),
            theme,
            (80, 24),
            Timestamp::from_nanos(NOW),
        )
    };
    for (name, pane) in [
        ("overview", Pane::Overview),
        ("replication", Pane::Replication),
        ("relays", Pane::Relays),
        ("timeline", Pane::Timeline),
    ] {
        let mut s = base(ThemeName::Dark);
        update(&mut s, Action::GoPane(pane));
        load(&mut s, &r);
        list.push((name, s));
    }
    // The Session pane, reached with c from the timeline's backfill session.
    let mut s = base(ThemeName::Dark);
    update(&mut s, Action::GoPane(Pane::Timeline));
    s.filters.text = "Backfill completed: 72".into();
    load(&mut s, &r);
    update(&mut s, Action::Correlation);
    update(&mut s, Action::Back);
    s.filters = Default::default();
    update(&mut s, Action::GoPane(Pane::Session));
    load(&mut s, &r);
    list.push(("session", s));
    // The CI pane, from a night built by hand (the samples have no GitLab data).
    for (name, drill) in [("ci", false), ("ci_job", true)] {
        let mut s = base(ThemeName::Dark);
        update(&mut s, Action::GoPane(Pane::Ci));
        let request = s.request();
        update(
            &mut s,
            Action::Loaded(Box::new(Loaded {
                request,
                status: StatusData::default(),
                data: Some(ViewData::Ci(Box::new(super::app::tests::ci_data()))),
                error: None,
                took: std::time::Duration::ZERO,
            })),
        );
        if drill {
            update(&mut s, Action::Enter);
            update(&mut s, Action::Enter);
        }
        list.push((name, s));
    }
    // A remote's refs.
    let mut s = base(ThemeName::Dark);
    update(&mut s, Action::GoPane(Pane::Replication));
    load(&mut s, &r);
    update(&mut s, Action::Enter);
    assert!(matches!(s.top(), Some(Drill::Refs { .. })));
    load(&mut s, &r);
    list.push(("refs", s));
    // A relay's events: a drill-down with its breadcrumb.
    let mut s = base(ThemeName::Dark);
    update(&mut s, Action::GoPane(Pane::Relays));
    load(&mut s, &r);
    update(&mut s, Action::Enter);
    assert!(matches!(s.top(), Some(Drill::RelayEvents { .. })));
    load(&mut s, &r);
    list.push(("relay_events", s));
    // A filter that finds nothing says which.
    let mut s = base(ThemeName::Dark);
    update(&mut s, Action::GoPane(Pane::Timeline));
    s.filters.text = "no event says this".into();
    load(&mut s, &r);
    list.push(("timeline_nothing", s));
    // Help over the Timeline: the pane's keys first.
    let mut s = base(ThemeName::Dark);
    update(&mut s, Action::GoPane(Pane::Timeline));
    load(&mut s, &r);
    update(&mut s, Action::ShowHelp);
    list.push(("help", s));
    // A store nobody writes: STALE with the newest event's age.
    let mut s = base(ThemeName::Dark);
    load(&mut s, &r);
    s.status.unchanged_for = std::time::Duration::from_secs(60);
    s.status.newest = Some(Timestamp::from_nanos(NOW - 3 * 3_600_000_000_000));
    list.push(("overview_stale", s));
    list
}

#[test]
fn every_pane_at_80x24_200x50_and_the_minimum_in_each_theme() {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d\d-\d\d \d\d:\d\d:\d\d\.\d\d\d", "MM-DD hh:mm:ss.mmm");
    settings.add_filter(r"\b\d\d:\d\d:\d\d\b", "hh:mm:ss");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, mut state) in screens() {
            for (w, h) in [(80u16, 24u16), (200, 50), (60, 15)] {
                update(&mut state, Action::Resize(w, h));
                for theme in [ThemeName::Dark, ThemeName::Mono, ThemeName::Light] {
                    state.theme = theme;
                    let buf = render(&state, w, h);
                    let t = match theme {
                        ThemeName::Mono => "mono",
                        ThemeName::Light => "light",
                        ThemeName::Dark => "colour",
                    };
                    if w == 60 {
                        // The minimum size, in the default theme.
                        if theme == ThemeName::Dark {
                            insta::assert_snapshot!(
                                format!("{name}_{w}x{h}_minimum"),
                                styled(&buf)
                            );
                        }
                    } else if w == 80 {
                        insta::assert_snapshot!(format!("{name}_{w}x{h}_{t}"), styled(&buf));
                    } else {
                        // The wide screens as text (the styles are those of the 80×24 ones).
                        let text: String = (0..h)
                            .map(|y| {
                                let mut line: String =
                                    (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
                                line.truncate(line.trim_end().len());
                                line + "\n"
                            })
                            .collect();
                        if theme == ThemeName::Dark {
                            insta::assert_snapshot!(format!("{name}_{w}x{h}"), text);
                        }
                    }
                }
            }
        }
    });
}

#[test]
fn mono_paints_no_colour_and_colour_marks_errors_red() {
    let (_dir, r) = sample_store();
    let mut s = AppState::new(
        "s".into(),
        ThemeName::Mono,
        (100, 30),
        Timestamp::from_nanos(NOW),
    );
    update(&mut s, Action::GoPane(Pane::Timeline));
    load(&mut s, &r);
    let buf = render(&s, 100, 30);
    assert!(buf
        .content
        .iter()
        .all(|c| c.fg == Color::Reset && c.bg == Color::Reset));
    s.theme = ThemeName::Dark;
    let buf = render(&s, 100, 30);
    let has_red_error = buf
        .content
        .iter()
        .any(|c| c.symbol() == "✖" && c.fg == Color::Red);
    let s = styled(&buf);
    assert!(has_red_error || !s.contains('✖'), "{s}");
}

#[test]
fn help_lists_every_binding_of_the_table() {
    let km = Keymap::default();
    let mut s = AppState::new(
        "s".into(),
        ThemeName::Dark,
        (200, 50),
        Timestamp::from_nanos(NOW),
    );
    update(&mut s, Action::ShowHelp);
    let buf = render(&s, 200, 50);
    let text: String = buf.content.iter().map(|c| c.symbol()).collect();
    for b in &km.bindings {
        assert!(text.contains(b.help), "help misses {:?}", b.name);
    }
}

#[test]
fn the_filter_line_shows_what_is_typed_with_the_cursor() {
    let mut s = AppState::new(
        "s".into(),
        ThemeName::Dark,
        (80, 24),
        Timestamp::from_nanos(NOW),
    );
    update(&mut s, Action::StartFilter);
    for c in "mirror".chars() {
        update(&mut s, Action::Input(super::action::InputKey::Char(c)));
    }
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| view(f, &s, &Keymap::default())).unwrap();
    let line: String = (0..80)
        .map(|x| t.backend().buffer()[(x, 22)].symbol().to_string())
        .collect();
    assert!(line.starts_with("/mirror"), "{line:?}");
    t.backend_mut().assert_cursor_position((7, 22));
}
