//! One event, whole: every field, and its details JSON pretty-printed.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::model::{format_rfc3339, StoredEvent};
use crate::sanitize::{multi_line, one_line};
use crate::tui::app::AppState;
use crate::tui::theme::{severity_label, Theme};
use crate::tui::view::{scrolled_text, title_line};

pub fn render(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, e: &StoredEvent) {
    let [title, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    title_line(
        frame,
        title,
        theme,
        &format!("Event {}", e.id),
        &state.hint_for(&["down", "correlation", "copy", "back"]),
    );
    let ev = &e.event;
    let mut lines: Vec<Line> = Vec::new();
    let mut field = |name: &str, value: String, style| {
        lines.push(Line::from(vec![
            Span::styled(format!("{name:<13}"), theme.key),
            Span::styled(one_line(&value).into_owned(), style),
        ]));
    };
    field("time", format_rfc3339(ev.timestamp), theme.text);
    field("source", ev.source.clone(), theme.text);
    field(
        "severity",
        severity_label(ev.severity).trim().to_string(),
        theme.severity(ev.severity),
    );
    field("type", ev.event_type.clone(), theme.text);
    field("category", ev.category.clone(), theme.text);
    for (name, v) in [
        ("subject", &ev.subject),
        ("correlation", &ev.correlation_id),
        ("device", &ev.device_id),
        ("peer", &ev.peer_device_id),
        ("models", &ev.model_types),
    ] {
        if let Some(v) = v {
            field(name, v.clone(), theme.text);
        }
    }
    if let Some(r) = ev.record_count {
        field("records", r.to_string(), theme.text);
    }
    if let Some(d) = ev.duration_ms {
        field("duration", super::millis(d), theme.text);
    }
    field("summary", ev.summary.clone(), theme.text);
    if let Some(d) = &ev.details {
        lines.push(Line::styled("details", theme.key));
        let pretty = serde_json::from_str::<serde_json::Value>(d)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| d.clone());
        for l in multi_line(&pretty).lines() {
            lines.push(Line::styled(format!("  {l}"), theme.text));
        }
    }
    scrolled_text(frame, body, lines, state.detail_scroll);
}
