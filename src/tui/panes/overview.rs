//! The Overview pane: the 3 a.m. answer at a glance. One line per system, the event rate per
//! severity over the last hour, the newest errors.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};
use ratatui::Frame;

pub use super::problems::{compact_remote, short_error, short_id, state_lines, Open, StateLine};
use super::{ellipsize, width_of};
use crate::model::Severity;
use crate::sanitize::one_line;
use crate::tui::app::AppState;
use crate::tui::theme::{severity_label, Theme};
use crate::tui::view::{message, title_line};
use crate::tui::worker::OverviewData;

/// What the pane shows, from the state (its part of `AppState`).
impl AppState {
    /// The Overview's state lines (what is broken, by name), as drawn.
    pub fn overview_lines(&self) -> Vec<crate::tui::panes::overview::StateLine> {
        match self.data() {
            Some(crate::tui::worker::ViewData::Overview(o))
                if self.top().is_none() || self.pane == crate::tui::Pane::Overview =>
            {
                crate::tui::panes::overview::state_lines(o, self.now.as_nanos() / 1_000_000_000)
            }
            _ => Vec::new(),
        }
    }
}

/// Whether everything the store knows of is well (and there is something it knows of).
pub fn all_ok(lines: &[StateLine]) -> bool {
    !lines.is_empty() && lines.iter().all(|l| !l.is_problem())
}

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let Some(crate::tui::worker::ViewData::Overview(o)) = state.data() else {
        title_line(frame, area, theme, "Overview", "");
        let [_, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
        message(frame, rest, theme.dim, "loading…");
        return;
    };
    let now = state.now.as_nanos() / 1_000_000_000;
    let lines = state_lines(o, now);
    let shown = lines.len().clamp(1, MAX_STATE_LINES);
    let rest = area.height.saturating_sub(1 + shown as u16);
    let rates_h = if rest >= 9 { 5 } else { 0 };
    let [title, systems, rates, errors] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(shown as u16),
        Constraint::Length(rates_h),
        Constraint::Min(0),
    ])
    .areas(area);
    let problems = lines.iter().filter(|l| l.is_problem()).count();
    let stale = state.stale();
    let headline = if lines.is_empty() {
        "Overview: no data yet".to_string()
    } else if problems > 0 {
        format!(
            "Overview: {problems} problem{}, worst first",
            if problems == 1 { "" } else { "s" }
        )
    } else if stale.is_some() {
        "Overview: no problems in the stored data (STALE)".to_string()
    } else {
        "Overview: All OK".to_string()
    };
    title_line(
        frame,
        title,
        theme,
        &headline,
        &state.hint_for(&["enter", "correlation"]),
    );
    render_state_lines(frame, systems, state, &lines, theme);
    if rates_h > 0 {
        render_rates(frame, rates, o, theme);
    }
    render_errors(frame, errors, state, o, lines.len(), theme);
}

/// The state list shows at most this many lines (the rest is in the panes).
pub const MAX_STATE_LINES: usize = 9;

fn render_state_lines(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    lines: &[StateLine],
    theme: &Theme,
) {
    if lines.is_empty() {
        message(
            frame,
            area,
            theme.dim,
            "nothing stored yet: add sources (gerrit-events, ngit-metrics, spacedrive-db, gitlab-ci)",
        );
        return;
    }
    let width = area.width as usize;
    let out: Vec<Line> = lines
        .iter()
        .take(area.height as usize)
        .enumerate()
        .map(|(i, l)| {
            let style = match l.severity {
                Severity::Error => theme.bad,
                Severity::Warning => theme.warn,
                Severity::Info => theme.ok,
                Severity::Debug => theme.dim,
            };
            let head = format!("{:<11}", l.system);
            let state_word = format!("{:<8} ", l.state);
            let tail = if l.tail.is_empty() {
                String::new()
            } else {
                format!(" · {}", one_line(&l.tail))
            };
            // The name gives way first (down to 14 columns), then the tail is cut.
            let fixed = width_of(&head) + width_of(&state_word);
            let room = width.saturating_sub(fixed);
            let name = one_line(&l.name).into_owned();
            let name_w = width_of(&name).min(room.saturating_sub(width_of(&tail)).max(24));
            let name = ellipsize(&name, name_w);
            let tail = super::shifted(&tail, state.hscroll, room.saturating_sub(width_of(&name)));
            let selected = state.overview_selected == i;
            let mut spans = vec![
                Span::styled(head, theme.key),
                Span::styled(state_word, style),
                Span::styled(name, theme.text),
                Span::styled(tail, theme.dim),
            ];
            if selected {
                for s in &mut spans {
                    s.style = s.style.patch(theme.selected);
                }
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(out), area);
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One sparkline per severity over the last hour, a column a minute (the newest right).
fn render_rates(frame: &mut Frame, area: Rect, o: &OverviewData, theme: &Theme) {
    let mut lines = vec![Line::styled("events per minute, last hour", theme.header)];
    let width = (area.width as usize).saturating_sub(24);
    let shown = &o.rates[o.rates.len().saturating_sub(width)..];
    for sev in [
        Severity::Error,
        Severity::Warning,
        Severity::Info,
        Severity::Debug,
    ] {
        let r = sev.rank() as usize;
        let max = shown.iter().map(|m| m[r]).max().unwrap_or(0);
        let bars: String = shown
            .iter()
            .map(|m| match (m[r], max) {
                (0, _) | (_, 0) => ' ',
                (v, max) => BARS[((v * 7).div_ceil(max) as usize).min(7)],
            })
            .collect();
        lines.push(Line::from(vec![
            Span::styled(severity_label(sev), theme.severity(sev)),
            Span::styled(format!(" {:>8} ", format!("max {max}")), theme.dim),
            Span::styled(bars, theme.severity(sev)),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn render_errors(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    o: &OverviewData,
    before: usize,
    theme: &Theme,
) {
    if area.height < 2 {
        return;
    }
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    frame.render_widget(
        Paragraph::new(Line::styled("newest errors", theme.header)),
        title,
    );
    if o.newest_errors.is_empty() {
        message(frame, body, theme.ok, "no errors stored");
        return;
    }
    let height = body.height as usize;
    let summary_w = (body.width as usize).saturating_sub(14 + 10 + 22 + 3);
    let sel = state.overview_selected.checked_sub(before);
    let first = super::first_row(sel.unwrap_or(0), height);
    let rows = o
        .newest_errors
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, e)| {
            let style = if Some(i) == sel {
                theme.selected
            } else {
                theme.text
            };
            Row::new(vec![
                Cell::from(super::when(e.event.timestamp, state.now)).style(theme.dim),
                Cell::from(one_line(&e.event.source).into_owned()),
                Cell::from(one_line(&e.event.event_type).into_owned()).style(theme.bad),
                Cell::from(super::shifted(
                    &one_line(&e.event.summary),
                    state.hscroll,
                    summary_w,
                )),
            ])
            .style(style)
        });
    let widths = [
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Length(22),
        Constraint::Min(10),
    ];
    frame.render_widget(Table::new(rows, widths).column_spacing(1), body);
}

/// The Overview's keys. Enter on a state line opens what it names; on an error, the event.
pub(crate) fn enter(state: &mut AppState) {
    let lines = state.overview_lines();
    match lines.get(state.overview_selected) {
        Some(l) => open_line(state, l.open.clone()),
        None => crate::tui::app::open_selected_event(state),
    }
}

pub(crate) fn move_by(state: &mut AppState, delta: i64) {
    let n = match state.data() {
        Some(crate::tui::worker::ViewData::Overview(o)) => {
            o.newest_errors.len() + state.overview_lines().len()
        }
        _ => 0,
    };
    state.overview_selected =
        (state.overview_selected as i64 + delta).clamp(0, n.saturating_sub(1) as i64) as usize;
}

/// Enter on an Overview line: its detail, on top of the Overview (Esc comes back).
fn open_line(state: &mut AppState, open: Open) {
    match open {
        Open::Remote(remote) => {
            state.remote_selected = Some(remote.clone());
            state.ref_selected = 0;
            state.stack.push(crate::tui::app::Drill::Refs { remote });
        }
        Open::Relay(target, relay) => {
            state.relay_selected = Some((target.clone(), relay.clone()));
            state.history_nav = crate::tui::app::EventsNav::default();
            state
                .stack
                .push(crate::tui::app::Drill::RelayEvents { target, relay });
        }
        Open::Session(corr) => crate::tui::app::open_session(state, corr),
        Open::CiPattern(pattern) => {
            state.ci_selected = Some(pattern.clone());
            state.ci_job_selected = 0;
            state.stack.push(crate::tui::app::Drill::CiJobs { pattern });
        }
        Open::Pane(p) => crate::tui::app::switch_pane(state, p),
    }
}
