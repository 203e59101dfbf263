//! One module per pane (and drill-down view): each has a `render` that reads the state.

pub mod ci;
pub mod detail;
pub mod overview;
pub mod problems;
pub mod relays;
pub mod replication;
pub mod session;
pub mod timeline;

use chrono::{Local, TimeZone};
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Row, Table};
use ratatui::Frame;

use crate::model::Timestamp;
use crate::tui::theme::Theme;

/// The TIME column's width for these rows: 8 when all are from today, 14 with the date.
pub fn time_width<'a>(rows: impl IntoIterator<Item = &'a Timestamp>, now: Timestamp) -> usize {
    let today = Local.timestamp_nanos(now.as_nanos()).date_naive();
    if rows
        .into_iter()
        .all(|t| Local.timestamp_nanos(t.as_nanos()).date_naive() == today)
    {
        8
    } else {
        14
    }
}

/// Seconds as people read them at a glance.
pub fn age(secs: i64) -> String {
    crate::commands::age(secs)
}

/// A duration in milliseconds, short: `850ms`, `12.5s`, `3m10s`.
pub fn millis(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms}ms"),
        1000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// A list as every pane draws it: the theme's header row over the rows on screen.
pub fn table<'a>(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    header: &[&'a str],
    widths: &[Constraint],
    rows: impl IntoIterator<Item = Row<'a>>,
) {
    let header = Row::new(header.iter().copied()).style(theme.header);
    frame.render_widget(
        Table::new(rows, widths.iter().copied())
            .header(header)
            .column_spacing(1),
        area,
    );
}

/// A list with its header row given (a sortable table's, from `sort::header`).
pub fn table_with_header<'a>(
    frame: &mut Frame,
    area: Rect,
    header: Row<'a>,
    widths: &[Constraint],
    rows: impl IntoIterator<Item = Row<'a>>,
) {
    frame.render_widget(
        Table::new(rows, widths.iter().copied())
            .header(header)
            .column_spacing(1),
        area,
    );
}

/// The first row to draw so that the selected one is on a screen of `height` rows.
pub fn first_row(selected: usize, height: usize) -> usize {
    selected.saturating_sub(height.saturating_sub(1))
}

/// The display width of `s` (what the terminal takes for it).
pub fn width_of(s: &str) -> usize {
    ratatui::text::Span::raw(s).width()
}

/// `s` shifted left by the horizontal scroll (`…` marks the hidden start), then cut to
/// `width` with an ellipsis.
pub fn shifted(s: &str, hscroll: u16, width: usize) -> String {
    if hscroll == 0 {
        return ellipsize(s, width);
    }
    let rest: String = s.chars().skip(hscroll as usize).collect();
    if rest.is_empty() {
        return if s.is_empty() {
            String::new()
        } else {
            "…".into()
        };
    }
    ellipsize(&format!("…{rest}"), width)
}

/// `s` cut to `width` columns with an ellipsis where it was cut (never silently).
pub fn ellipsize(s: &str, width: usize) -> String {
    if width_of(s) <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in s.chars() {
        let cw = width_of(c.encode_utf8(&mut [0; 4]));
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

/// A time as a list shows it: the clock for today, the date too for any other day (local
/// time), so rows of three days never look mis-ordered. At most 14 columns.
pub fn when(ts: Timestamp, now: Timestamp) -> String {
    let dt = Local.timestamp_nanos(ts.as_nanos());
    let today = Local.timestamp_nanos(now.as_nanos()).date_naive();
    if dt.date_naive() == today {
        dt.format("%H:%M:%S").to_string()
    } else {
        dt.format("%m-%d %H:%M:%S").to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ellipsize_marks_every_cut() {
        assert_eq!(
            super::ellipsize("ws://relay.slow.example:7777", 26),
            "ws://relay.slow.example:7…"
        );
        assert_eq!(super::ellipsize("short", 26), "short");
        assert_eq!(super::ellipsize("abc", 1), "…");
        assert_eq!(super::ellipsize("日本語テキスト", 7), "日本語…");
        // Scrolled right: the hidden start is marked too, and the end shows.
        let s = "ws://relay.slow.example:7777";
        assert_eq!(super::shifted(s, 0, 10), "ws://rela…");
        assert_eq!(super::shifted(s, 16, 14), "…example:7777");
        assert_eq!(super::shifted(s, 100, 10), "…");
    }
}
