//! The Session pane: one correlation id (a Gerrit push, a Spacedrive sync session, a CI
//! pipeline) across all sources, oldest first, with duration, records and rate per step and
//! the gaps between steps marked.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Cell, Row};
use ratatui::Frame;

use super::millis;
use crate::sanitize::one_line;
use crate::tui::app::AppState;
use crate::tui::theme::{severity_label, Theme};
use crate::tui::view::{message, title_line};

/// A pause between two steps longer than this is marked as a gap.
pub const GAP_SECS: i64 = 30;

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, corr: Option<&str>) {
    let [title, summary, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(area);
    let Some(corr) = corr else {
        title_line(frame, title, theme, "Session", "");
        message(
            frame,
            summary,
            theme.dim,
            &format!("no session open: select an event with a correlation id (Timeline, Overview) and press {}, or {}corr ID", state.key("correlation"), state.key("command")),
        );
        return;
    };
    // A prefix shows the full id it stands for.
    let full = match state.window().map(|w| w.session_ids.as_slice()) {
        Some([one]) if one != corr => format!("{one} (from {corr})"),
        _ => corr.to_string(),
    };
    title_line(
        frame,
        title,
        theme,
        &format!("Session {full}"),
        &format!(
            "every source, oldest first · {}",
            state.hint_for(&["enter", "copy"])
        ),
    );
    let Some(w) = state.window() else {
        message(frame, body, theme.dim, "loading…");
        return;
    };
    if let Some(s) = &w.session {
        let dur = match (s.first, s.last) {
            (Some(a), Some(b)) => (b.as_nanos() - a.as_nanos()) / 1_000_000,
            _ => 0,
        };
        let rate = if dur > 0 && s.records > 0 {
            format!(" · {:.0} records/s", s.records as f64 * 1000.0 / dur as f64)
        } else {
            String::new()
        };
        let text = format!(
            "{} events over {} · {} records{rate} · {} errors, {} warnings · sources: {}",
            s.events,
            millis(dur),
            s.records,
            s.errors,
            s.warnings,
            one_line(&s.sources.join(", "))
        );
        let style = if s.errors > 0 { theme.bad } else { theme.text };
        message(frame, summary, style, &text);
    }
    if w.rows.is_empty() {
        // Say why nothing matched.
        message(
            frame,
            body,
            theme.dim,
            &format!(
                "no stored event has the correlation id {corr}: an id matches exactly, or by a prefix of at least 4 characters{}",
                if corr.chars().count() < 4 { " (this one is shorter)" } else { "" }
            ),
        );
        return;
    }
    if w.session_ids.len() > 1 {
        let shown: Vec<&str> = w
            .session_ids
            .iter()
            .take(3)
            .map(|s| super::overview::short_id(s))
            .collect();
        message(
            frame,
            summary,
            theme.warn,
            &format!(
                "{corr} is the prefix of {} sessions ({}…): give more of the id",
                w.session_ids.len(),
                shown.join(", ")
            ),
        );
    }
    let wide = area.width >= 120;
    let height = body.height.saturating_sub(1) as usize;
    let first = state.first_visible();
    let selected = state.selected_index();
    let start = w
        .session
        .as_ref()
        .and_then(|s| s.first)
        .unwrap_or(w.rows[0].event.timestamp);
    // The fixed columns and the 9 spaces between the 10 columns.
    let fixed = if wide {
        6 + 9 + 14 + 10 + 7 + 26 + 7 + 8 + 9 + 9
    } else {
        5 + 8 + 7 + 20 + 7 + 8 + 9 + 9
    };
    let summary_w = (area.width as usize).saturating_sub(fixed).max(10);
    let rows = w
        .rows
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, e)| {
            let ev = &e.event;
            let gap = i
                .checked_sub(1)
                .and_then(|p| w.rows.get(p))
                .map(|prev| {
                    (ev.timestamp.as_nanos() - prev.event.timestamp.as_nanos()) / 1_000_000_000
                })
                .filter(|g| *g > GAP_SECS)
                .map(|g| format!("⋯{}", super::age(g)))
                .unwrap_or_default();
            let offset = (ev.timestamp.as_nanos() - start.as_nanos()) / 1_000_000;
            let rate = match (ev.record_count, ev.duration_ms) {
                (Some(r), Some(d)) if d > 0 => format!("{:.0}/s", r as f64 * 1000.0 / d as f64),
                _ => String::new(),
            };
            let style = if Some(i) == selected {
                theme.selected
            } else {
                theme.text
            };
            Row::new(vec![
                Cell::from(gap).style(theme.warn),
                Cell::from(format!("+{}", millis(offset.max(0)))).style(theme.dim),
                Cell::from(super::when(ev.timestamp, state.now)).style(theme.dim),
                Cell::from(one_line(&ev.source).into_owned()),
                Cell::from(severity_label(ev.severity)).style(theme.severity(ev.severity)),
                Cell::from(super::ellipsize(
                    &one_line(&ev.event_type),
                    if wide { 26 } else { 20 },
                )),
                Cell::from(ev.duration_ms.map(millis).unwrap_or_default()),
                Cell::from(ev.record_count.map(|r| r.to_string()).unwrap_or_default()),
                Cell::from(rate),
                Cell::from(super::timeline::highlight(
                    &super::shifted(&one_line(&ev.summary), state.hscroll, summary_w),
                    state.match_text(),
                    theme,
                )),
            ])
            .style(style)
        });
    // At 80 columns the source gives way (the step names it); records and rate stay.
    let widths = [
        Constraint::Length(if wide { 6 } else { 5 }),
        Constraint::Length(if wide { 9 } else { 8 }),
        Constraint::Length(if wide { 14 } else { 0 }),
        Constraint::Length(if wide { 10 } else { 0 }),
        Constraint::Length(7),
        Constraint::Length(if wide { 26 } else { 20 }),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Min(10),
    ];
    super::table(
        frame,
        body,
        theme,
        &[
            "GAP", "AT", "TIME", "SOURCE", "SEV", "STEP", "DUR", "RECORDS", "RATE", "SUMMARY",
        ],
        &widths,
        rows,
    );
}
