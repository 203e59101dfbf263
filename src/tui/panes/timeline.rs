//! The Timeline pane (every event, newest first, live) and the shared event table, also used
//! by a ref's history.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row};
use ratatui::Frame;

use crate::sanitize::one_line;
use crate::tui::app::{contains_ci, AppState};
use crate::tui::theme::{severity_label, Theme};
use crate::tui::view::{message, title_line};
use crate::tui::worker::EventsWindow;

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    let following = state.paused.is_none()
        && matches!(state.timeline.anchor, crate::tui::worker::Anchor::Start);
    let note = if following {
        format!(
            "following newest · {}/{} hold still · {} follows again",
            state.key("down"),
            state.key("up"),
            state.key("top")
        )
    } else {
        format!("held · {}: back to newest and follow", state.key("top"))
    };
    title_line(
        frame,
        title,
        theme,
        "Timeline: every event, newest first",
        &note,
    );
    match state.window() {
        Some(w) => table(frame, body, state, theme, w),
        None => message(frame, body, theme.dim, "loading…"),
    }
}

/// A ref's replication events and log lines.
pub fn render_history(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    remote: &str,
    project: &str,
    ref_name: &str,
) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    title_line(
        frame,
        title,
        theme,
        &breadcrumb(remote, project, ref_name),
        &format!(
            "this remote's events of the ref · {}",
            state.hint_for(&["enter", "correlation"])
        ),
    );
    match state.window() {
        Some(w) if w.rows.is_empty() => message(
            frame,
            body,
            theme.dim,
            "no stored events for this ref (pruned, or only known from the REST status)",
        ),
        Some(w) => table(frame, body, state, theme, w),
        None => message(frame, body, theme.dim, "loading…"),
    }
}

/// `Replication › mirror-eu/platform/core › refs/heads/master`: the remote compact, so the
/// ref is not cut away; the project named when the remote does not say it.
fn breadcrumb(remote: &str, project: &str, ref_name: &str) -> String {
    let r = super::overview::compact_remote(remote);
    if r.ends_with(project) {
        format!("Replication › {r} › {ref_name}")
    } else {
        format!("Replication › {r} › {project} {ref_name}")
    }
}

/// One relay's events (its state changes), newest first.
pub fn render_relay(
    frame: &mut Frame,
    area: Rect,
    state: &AppState,
    theme: &Theme,
    target: &str,
    relay: &str,
) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    title_line(
        frame,
        title,
        theme,
        &format!(
            "Relays › {relay} on {}",
            super::relays::short_target(target)
        ),
        &state.hint_for(&["enter", "back"]),
    );
    match state.window() {
        Some(w) if w.rows.is_empty() && state.filters.is_empty() => message(
            frame,
            body,
            theme.dim,
            "no stored events for this relay (pruned, or it never changed state)",
        ),
        Some(w) => table(frame, body, state, theme, w),
        None => message(frame, body, theme.dim, "loading…"),
    }
}

/// The event table: time, source, severity, type, subject, summary; the selection reversed,
/// the filter's text underlined in the summary.
pub fn table(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, w: &EventsWindow) {
    if w.rows.is_empty() {
        // Say why: which filters found nothing.
        let why = if state.filters.is_empty() {
            "no events yet".to_string()
        } else {
            format!(
                "no stored event matches {} ({} clears the filters)",
                state.filters.describe(),
                state.key("back")
            )
        };
        message(frame, area, theme.dim, &why);
        return;
    }
    let wide = area.width >= 120;
    let height = area.height.saturating_sub(1) as usize;
    let first = state.first_visible();
    let selected = state.selected_index();
    let needle = state.match_text();
    // Time (with the date when a row is not from today), source, severity, type, subject,
    // summary.
    let time_w = super::time_width(
        w.rows
            .iter()
            .skip(first)
            .take(height)
            .map(|e| &e.event.timestamp),
        state.now,
    );
    let type_w = if wide { 26 } else { 20 };
    let fixed = time_w + 10 + 7 + type_w + if wide { 30 } else { 0 } + 5;
    let summary_w = (area.width as usize).saturating_sub(fixed).max(10);
    let rows = w
        .rows
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(i, e)| {
            let ev = &e.event;
            let style = if Some(i) == selected {
                theme.selected
            } else {
                theme.text
            };
            let subject = ev.subject.as_deref().unwrap_or("");
            // Two neighbours that would read the same say what tells them apart.
            let twin = [i.checked_sub(1), Some(i + 1)]
                .into_iter()
                .flatten()
                .filter_map(|j| w.rows.get(j))
                .find(|o| looks_alike(o, e));
            let summary = match twin {
                Some(o) => format!("{} ({})", one_line(&ev.summary), what_differs(e, o)),
                None => one_line(&ev.summary).into_owned(),
            };
            Row::new(vec![
                Cell::from(super::when(ev.timestamp, state.now)).style(theme.dim),
                Cell::from(highlight(&ev.source, needle, theme)),
                Cell::from(severity_label(ev.severity)).style(theme.severity(ev.severity)),
                Cell::from(highlight(
                    &super::ellipsize(&one_line(&ev.event_type), type_w),
                    needle,
                    theme,
                )),
                Cell::from(highlight(
                    &super::ellipsize(&one_line(subject), 30),
                    needle,
                    theme,
                )),
                Cell::from(highlight(
                    &super::shifted(&summary, state.hscroll, summary_w),
                    needle,
                    theme,
                )),
            ])
            .style(style)
        });
    let widths = if wide {
        vec![
            Constraint::Length(time_w as u16),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(type_w as u16),
            Constraint::Length(30),
            Constraint::Length(summary_w as u16),
        ]
    } else {
        vec![
            Constraint::Length(time_w as u16),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(type_w as u16),
            Constraint::Length(0),
            Constraint::Length(summary_w as u16),
        ]
    };
    super::table(
        frame,
        area,
        theme,
        &["TIME", "SOURCE", "SEV", "TYPE", "SUBJECT", "SUMMARY"],
        &widths,
        rows,
    );
}

/// Two events whose rows would show the same text (the second shown, to the second).
pub fn looks_alike(a: &crate::model::StoredEvent, b: &crate::model::StoredEvent) -> bool {
    let (x, y) = (&a.event, &b.event);
    a.id != b.id
        && x.timestamp.as_nanos() / 1_000_000_000 == y.timestamp.as_nanos() / 1_000_000_000
        && x.source == y.source
        && x.severity == y.severity
        && x.event_type == y.event_type
        && x.subject == y.subject
        && x.summary == y.summary
}

/// What tells `a` from its look-alike `b`: the first field that differs (device, peer,
/// session, the time in milliseconds, the details), else its store id.
pub fn what_differs(a: &crate::model::StoredEvent, b: &crate::model::StoredEvent) -> String {
    let (x, y) = (&a.event, &b.event);
    let short = |s: &str| super::overview::short_id(s).to_string();
    if x.device_id != y.device_id {
        return format!("device {}", short(x.device_id.as_deref().unwrap_or("-")));
    }
    if x.peer_device_id != y.peer_device_id {
        return format!("peer {}", short(x.peer_device_id.as_deref().unwrap_or("-")));
    }
    if x.correlation_id != y.correlation_id {
        return format!(
            "session {}",
            short(x.correlation_id.as_deref().unwrap_or("-"))
        );
    }
    if x.timestamp != y.timestamp {
        let ms = (x.timestamp.as_nanos() / 1_000_000) % 1000;
        return format!(".{ms:03}s");
    }
    if x.details != y.details {
        return "other details: Enter".to_string();
    }
    format!("#{}", a.id)
}

/// `text` with every occurrence of `needle` (case-insensitive) styled as a match.
pub fn highlight<'a>(text: &str, needle: &str, theme: &Theme) -> Line<'a> {
    let text = one_line(text).into_owned();
    if needle.is_empty() || !contains_ci(&text, needle) {
        return Line::from(text);
    }
    let lower = text.to_lowercase();
    let n = needle.to_lowercase();
    // Lowercasing can change byte lengths; only highlight when it did not.
    if lower.len() != text.len() {
        return Line::from(text);
    }
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(pos) = lower[at..].find(&n) {
        let start = at + pos;
        let end = start + n.len();
        if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            break;
        }
        spans.push(Span::raw(text[at..start].to_string()));
        spans.push(Span::styled(text[start..end].to_string(), theme.highlight));
        at = end;
    }
    spans.push(Span::raw(text[at..].to_string()));
    Line::from(spans)
}
